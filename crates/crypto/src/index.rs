//! Participant indices: the evaluation points `x_i` at which participants hold shares.
//!
//! Three schemes, all giving distinct non-zero scalars:
//! - [`sequential`]: `1, 2, ..., n` (small integers; the usual choice).
//! - [`from_public_key`]: derived from a participant's public key as in the Chainlink design
//!   (seed 003, step 1): Keccak-256 of the key bytes read as a big-endian integer, re-hashed until it
//!   is below the group order and non-zero. Indices then need no coordination, at the cost of
//!   full-size scalars.
//! - [`roots_of_unity`]: `w^0, w^1, ..., w^(n-1)` for a primitive `2^k`-th root of unity `w`
//!   (BLS12-381 only: its scalar field has 2-adicity 32, secp256k1's only 6). Then every public key
//!   share is one output of a single FFT over the commitment.

use ff::{Field, PrimeField};
use sha3::{Digest, Keccak256};

use crate::error::CryptoError;
use crate::group::Curve;
use crate::poly::Domain;

/// How indices are assigned to the members of a committee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexScheme {
    /// `1..=n` in committee order.
    Sequential,
    /// Keccak-256 of each member's public key (seed 003, step 1).
    PublicKeyHash,
    /// Powers of a root of unity of order `next_power_of_two(n)` (BLS12-381 only).
    RootsOfUnity,
}

/// `1, 2, ..., n`.
pub fn sequential<F: PrimeField>(n: usize) -> Vec<F> {
    (1..=n as u64).map(F::from).collect()
}

/// The index of a participant derived from its public key bytes (seed 003, step 1).
///
/// The rejection loop terminates with overwhelming probability: a 256-bit hash is below the
/// secp256k1 order with probability `1 - 2^-128` and below the BLS12-381 order with probability
/// about 0.45.
pub fn from_public_key<C: Curve>(public_key: &[u8]) -> C::Scalar {
    let mut digest: [u8; 32] = Keccak256::digest(public_key).into();
    loop {
        if let Ok(s) = C::decode_scalar(&digest)
            && !bool::from(s.is_zero())
        {
            return s;
        }
        digest = Keccak256::digest(digest).into();
    }
}

/// `w^0, ..., w^(n-1)` for the smallest power-of-two domain holding `n` elements.
pub fn roots_of_unity<F: PrimeField>(n: usize) -> Result<Vec<F>, CryptoError> {
    Ok(Domain::<F>::new(n)?.elements(n))
}

/// Indices for a committee whose members' public keys are given in committee order.
pub fn assign<C: Curve>(
    scheme: IndexScheme,
    public_keys: &[Vec<u8>],
) -> Result<Vec<C::Scalar>, CryptoError> {
    let n = public_keys.len();
    let xs = match scheme {
        IndexScheme::Sequential => sequential(n),
        IndexScheme::PublicKeyHash => public_keys
            .iter()
            .map(|pk| from_public_key::<C>(pk))
            .collect(),
        IndexScheme::RootsOfUnity => roots_of_unity(n)?,
    };
    check_distinct(&xs)?;
    Ok(xs)
}

/// Fails if two indices coincide or one is zero (zero is where the secret lives).
pub fn check_distinct<F: PrimeField>(xs: &[F]) -> Result<(), CryptoError> {
    let mut reprs: Vec<Vec<u8>> = Vec::with_capacity(xs.len());
    for x in xs {
        if bool::from(x.is_zero()) {
            return Err(CryptoError::BadIndices);
        }
        reprs.push(x.to_repr().as_ref().to_vec());
    }
    reprs.sort_unstable();
    if reprs.windows(2).any(|w| w[0] == w[1]) {
        return Err(CryptoError::BadIndices);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bls12381G1, Secp256k1};

    #[test]
    fn public_key_indices_follow_keccak() {
        // Keccak-256("") = c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470,
        // which is below the secp256k1 order, so it is the index itself.
        let x = from_public_key::<Secp256k1>(b"");
        assert_eq!(
            hex::encode(Secp256k1::encode_scalar(&x)),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
        // For BLS12-381 the same digest is above the order (0x73ed...), so it is re-hashed once.
        let y = from_public_key::<Bls12381G1>(b"");
        let rehash: [u8; 32] = Keccak256::digest(
            hex::decode("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
                .unwrap(),
        )
        .into();
        let expect = Bls12381G1::decode_scalar(&rehash);
        match expect {
            Ok(s) => assert_eq!(y, s),
            Err(_) => {
                // Re-hashed more than once; the result must still be canonical and non-zero.
                assert!(!bool::from(y.is_zero()));
            }
        }
    }

    #[test]
    fn schemes_give_distinct_nonzero_indices() {
        let keys: Vec<Vec<u8>> = (0u32..50).map(|i| i.to_be_bytes().to_vec()).collect();
        for scheme in [
            IndexScheme::Sequential,
            IndexScheme::PublicKeyHash,
            IndexScheme::RootsOfUnity,
        ] {
            let xs = assign::<Bls12381G1>(scheme, &keys).unwrap();
            assert_eq!(xs.len(), 50);
            check_distinct(&xs).unwrap();
        }
        assert!(assign::<Secp256k1>(IndexScheme::RootsOfUnity, &vec![vec![0u8]; 100]).is_err());
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let keys = vec![b"a".to_vec(), b"a".to_vec()];
        assert_eq!(
            assign::<Secp256k1>(IndexScheme::PublicKeyHash, &keys),
            Err(CryptoError::BadIndices)
        );
    }
}
