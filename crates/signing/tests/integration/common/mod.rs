//! Shares dealt with keyquorum's polynomial code, for the signing tests.

// Each test module uses part of this module.
#![allow(dead_code)]

use k256::{ProjectivePoint, Scalar};
use keyquorum_crypto::frost::{Identifier, KeyPackage, PublicKeyPackage};
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::secret::Secret;
use rand_core::SeedableRng;

/// A `t`-of-`n` sharing at indices `1..=n`.
pub struct Dealt {
    pub shares: Vec<Scalar>,
    pub public: PublicKeyPackage,
    pub threshold: usize,
}

impl Dealt {
    pub fn key_package(&self, i: usize) -> KeyPackage {
        KeyPackage::new(
            Identifier::from_u64(i as u64 + 1).unwrap(),
            Secret::new(self.shares[i]),
            *self.public.group_key(),
        )
        .unwrap()
    }
}

pub fn deal(t: usize, n: usize, seed: u64) -> Dealt {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let f = Polynomial::<Scalar>::random(t - 1, None, &mut rng);
    let group_key = group::Curve::to_affine(&(ProjectivePoint::GENERATOR * f.constant()));
    let shares: Vec<Scalar> = (1..=n as u64)
        .map(|i| f.evaluate(&Scalar::from(i)))
        .collect();
    let public = PublicKeyPackage::new(
        group_key,
        t,
        shares.iter().enumerate().map(|(i, s)| {
            (
                Identifier::from_u64(i as u64 + 1).unwrap(),
                group::Curve::to_affine(&(ProjectivePoint::GENERATOR * s)),
            )
        }),
    )
    .unwrap();
    Dealt {
        shares,
        public,
        threshold: t,
    }
}
