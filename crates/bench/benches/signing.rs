//! FROST signing with keyquorum's `frost` module against ZcashFoundation's `frost-secp256k1`,
//! on the same shares, in one run.
//!
//! `KQ_BENCH_NS` (default "256,1024") lists the group sizes; `t = floor(2n/3) + 1` signers
//! sign. Two costs per library:
//! - `signer`: one signer's round one (nonces and commitments) and round two (binding factors,
//!   group commitment, challenge, share) over the other `t - 1` signers' commitments;
//! - `coordinator`: binding factors, group commitment and challenge, aggregation of `t` shares
//!   and verification of the signature (shares are checked one by one only when it fails, in
//!   both libraries, and here it never does).
//!
//! Everything else (dealing, the other signers' rounds) runs outside the timed closures.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use frost_secp256k1 as zf;
use keyquorum_bench::default_threshold;
use keyquorum_crypto::frost::{
    self, CommitmentList, Identifier, KeyPackage, Mode, PublicKeyPackage, SignatureShare,
    SigningCommitments, SigningContext,
};
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::{Curve, Secp256k1};
use rand_chacha_03::ChaCha20Rng;
use rand_core_06::{RngCore, SeedableRng};

type Scalar = <Secp256k1 as Curve>::Scalar;

const MSG: &[u8] = b"keyquorum FROST benchmark message";

fn sizes() -> Vec<usize> {
    std::env::var("KQ_BENCH_NS")
        .unwrap_or_else(|_| "256,1024".to_string())
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("KQ_BENCH_NS: bad size {s:?}"))
        })
        .collect()
}

struct Setup {
    t: usize,
    keys: Vec<KeyPackage>,
    public: PublicKeyPackage,
    /// Commitments of signers 1..t (signer 0 is the measured one).
    others: Vec<(Identifier, SigningCommitments)>,
    /// A complete signing operation: list and every share.
    list: CommitmentList,
    shares: Vec<(Identifier, SignatureShare)>,
    zf_keys: Vec<zf::keys::KeyPackage>,
    zf_public: zf::keys::PublicKeyPackage,
    zf_others: BTreeMap<zf::Identifier, zf::round1::SigningCommitments>,
    zf_package: zf::SigningPackage,
    zf_shares: BTreeMap<zf::Identifier, zf::round2::SignatureShare>,
}

fn zf_id(id: &Identifier) -> zf::Identifier {
    zf::Identifier::deserialize(&id.to_bytes()).unwrap()
}

fn zf_commitments(c: &SigningCommitments) -> zf::round1::SigningCommitments {
    zf::round1::SigningCommitments::new(
        zf::round1::NonceCommitment::deserialize(&Secp256k1::point_bytes(c.hiding())).unwrap(),
        zf::round1::NonceCommitment::deserialize(&Secp256k1::point_bytes(c.binding())).unwrap(),
    )
}

fn setup(n: usize, t: usize, seed: u64) -> Setup {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let f = Polynomial::<Scalar>::random(t - 1, None, &mut rng);
    let group_key = Secp256k1::batch_normalize(&[Secp256k1::mul_generator(&f.constant())])[0];
    let keys: Vec<KeyPackage> = (1..=n as u64)
        .map(|i| {
            KeyPackage::new(
                Identifier::from_u64(i).unwrap(),
                Secret::new(f.evaluate(&Scalar::from(i))),
                group_key,
            )
            .unwrap()
        })
        .collect();
    let public = PublicKeyPackage::new(
        group_key,
        t,
        keys.iter().map(|k| (k.identifier(), *k.verifying_share())),
    )
    .unwrap();

    let mut nonces = Vec::new();
    for key in &keys[..t] {
        nonces.push(frost::commit_with_rng(key.signing_share(), &mut rng).unwrap());
    }
    let entries: Vec<_> = keys[..t]
        .iter()
        .zip(&nonces)
        .map(|(k, n)| (k.identifier(), *n.commitments()))
        .collect();
    let list = CommitmentList::new(entries.clone(), n).unwrap();
    let ctx = SigningContext::new(Mode::Rfc9591, &group_key, &list, MSG).unwrap();
    let shares: Vec<_> = keys[..t]
        .iter()
        .zip(nonces)
        .map(|(k, n)| (k.identifier(), frost::sign(k, n, &ctx).unwrap()))
        .collect();

    let zf_key = zf::VerifyingKey::deserialize(&Secp256k1::point_bytes(&group_key)).unwrap();
    let zf_share = |k: &KeyPackage| {
        zf::keys::VerifyingShare::deserialize(&Secp256k1::point_bytes(k.verifying_share())).unwrap()
    };
    let zf_keys: Vec<_> = keys[..t]
        .iter()
        .map(|k| {
            zf::keys::KeyPackage::new(
                zf_id(&k.identifier()),
                zf::keys::SigningShare::deserialize(&Secp256k1::encode_scalar(
                    k.signing_share().expose(),
                ))
                .unwrap(),
                zf_share(k),
                zf_key,
                t as u16,
            )
        })
        .collect();
    let zf_public = zf::keys::PublicKeyPackage::new(
        keys.iter()
            .map(|k| (zf_id(&k.identifier()), zf_share(k)))
            .collect(),
        zf_key,
        Some(t as u16),
    );
    let zf_all: BTreeMap<_, _> = entries
        .iter()
        .map(|(id, c)| (zf_id(id), zf_commitments(c)))
        .collect();
    let mut zf_others = zf_all.clone();
    zf_others.remove(&zf_id(&keys[0].identifier()));
    let zf_shares = shares
        .iter()
        .map(|(id, s)| {
            (
                zf_id(id),
                zf::round2::SignatureShare::deserialize(&s.to_bytes()).unwrap(),
            )
        })
        .collect();
    Setup {
        t,
        others: entries[1..].to_vec(),
        keys,
        public,
        list,
        shares,
        zf_keys,
        zf_public,
        zf_others,
        zf_package: zf::SigningPackage::new(zf_all, MSG),
        zf_shares,
    }
}

/// keyquorum: signer 0's round one and round two.
fn keyquorum_signer(s: &Setup, randomness: &[u8; 64]) -> SignatureShare {
    let key = &s.keys[0];
    let mut hiding = [0u8; 32];
    let mut binding = [0u8; 32];
    hiding.copy_from_slice(&randomness[..32]);
    binding.copy_from_slice(&randomness[32..]);
    let nonces = frost::commit(key.signing_share(), &hiding, &binding).unwrap();
    let mut entries = Vec::with_capacity(s.t);
    entries.push((key.identifier(), *nonces.commitments()));
    entries.extend_from_slice(&s.others);
    let list = CommitmentList::new(entries, s.keys.len()).unwrap();
    let ctx = SigningContext::new(Mode::Rfc9591, key.group_key(), &list, MSG).unwrap();
    frost::sign(key, nonces, &ctx).unwrap()
}

/// frost-secp256k1: signer 0's round one and round two.
fn zf_signer(s: &Setup, rng: &mut ChaCha20Rng) -> zf::round2::SignatureShare {
    let key = &s.zf_keys[0];
    let (nonces, commitments) = zf::round1::commit(key.signing_share(), rng);
    let mut all = s.zf_others.clone();
    all.insert(*key.identifier(), commitments);
    let package = zf::SigningPackage::new(all, MSG);
    zf::round2::sign(&package, &nonces, key).unwrap()
}

fn signing(c: &mut Criterion) {
    let mut group = c.benchmark_group("frost_signing");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for n in sizes() {
        let t = default_threshold(n);
        let s = setup(n, t, n as u64);
        // The two coordinators agree before anything is timed.
        let ctx = SigningContext::new(Mode::Rfc9591, s.public.group_key(), &s.list, MSG).unwrap();
        let ours = frost::aggregate_verified(&ctx, &s.public, &s.shares).unwrap();
        let theirs = zf::aggregate(&s.zf_package, &s.zf_shares, &s.zf_public).unwrap();
        assert_eq!(
            theirs.serialize().unwrap(),
            ours.to_bytes().unwrap().to_vec()
        );

        let mut rng = ChaCha20Rng::seed_from_u64(1);
        group.bench_with_input(BenchmarkId::new("signer/keyquorum", n), &s, |b, s| {
            b.iter(|| {
                let mut randomness = [0u8; 64];
                rng.fill_bytes(&mut randomness);
                black_box(keyquorum_signer(s, &randomness))
            })
        });
        group.bench_with_input(BenchmarkId::new("signer/frost_secp256k1", n), &s, |b, s| {
            b.iter(|| black_box(zf_signer(s, &mut rng)))
        });
        group.bench_with_input(BenchmarkId::new("coordinator/keyquorum", n), &s, |b, s| {
            b.iter(|| {
                let ctx =
                    SigningContext::new(Mode::Rfc9591, s.public.group_key(), &s.list, MSG).unwrap();
                black_box(frost::aggregate_verified(&ctx, &s.public, &s.shares).unwrap())
            })
        });
        group.bench_with_input(
            BenchmarkId::new("coordinator/frost_secp256k1", n),
            &s,
            |b, s| {
                b.iter(|| {
                    black_box(zf::aggregate(&s.zf_package, &s.zf_shares, &s.zf_public).unwrap())
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, signing);
criterion_main!(benches);
