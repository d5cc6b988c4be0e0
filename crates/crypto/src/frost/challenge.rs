//! The signature challenge (RFC 9591 section 4.6, BIP-340) and Lagrange coefficients
//! (RFC 9591 section 4.2).
//!
//! RFC 9591: `c = H2(SerializeElement(R) || SerializeElement(PK) || msg)`.
//! BIP-340: `c = int(hash_{BIP0340/challenge}(x(R) || x(PK) || msg)) mod n`, where
//! `hash_tag(x) = SHA-256(SHA-256(tag) || SHA-256(tag) || x)` and `R`, `PK` have even `y`.

use elliptic_curve::ops::Reduce;
use elliptic_curve::point::AffineCoordinates;
use k256::{AffinePoint, FieldBytes, Scalar, U256};
use sha2::{Digest, Sha256};

use super::ciphersuite::{Mode, h2, serialize_element};
use super::error::FrostError;
use super::keys::Identifier;

/// BIP-340's challenge tag.
pub const BIP340_CHALLENGE_TAG: &[u8] = b"BIP0340/challenge";

/// BIP-340's tagged hash `SHA-256(SHA-256(tag) || SHA-256(tag) || parts...)`.
pub fn bip340_tagged_hash(tag: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let tag_hash = Sha256::digest(tag);
    let mut h = Sha256::new();
    h.update(tag_hash);
    h.update(tag_hash);
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// `compute_challenge(R, PK, msg)` of the mode. In the BIP-340 mode both points must already
/// have even `y` (only their x-coordinates enter the hash).
pub fn compute_challenge(
    mode: Mode,
    group_commitment: &AffinePoint,
    group_key: &AffinePoint,
    msg: &[u8],
) -> Result<Scalar, FrostError> {
    let r = serialize_element(group_commitment).map_err(|_| FrostError::IdentityGroupCommitment)?;
    let pk = serialize_element(group_key).map_err(|_| FrostError::IdentityGroupKey)?;
    Ok(match mode {
        Mode::Rfc9591 => h2(&[&r, &pk, msg]),
        Mode::Bip340 => {
            let digest = bip340_tagged_hash(
                BIP340_CHALLENGE_TAG,
                &[&group_commitment.x(), &group_key.x(), msg],
            );
            <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(digest))
        }
    })
}

/// `derive_interpolating_value(L, x_i)`: the Lagrange coefficient at zero of `id` among the
/// signers `participants`, `prod_{j != i} x_j / (x_j - x_i)`, with one inversion. `id` must be
/// in the list, and is refused if it appears twice; other repeats are the caller's to exclude (a
/// [`super::commitment::CommitmentList`] has none).
pub fn derive_interpolating_value(
    participants: &[Identifier],
    id: &Identifier,
) -> Result<Scalar, FrostError> {
    if !participants.contains(id) {
        return Err(FrostError::UnknownParticipant(*id));
    }
    let xi = id.scalar();
    let mut numerator = Scalar::ONE;
    let mut denominator = Scalar::ONE;
    let mut seen_self = false;
    for xj in participants {
        if xj == id {
            if seen_self {
                return Err(FrostError::DuplicateIdentifier(*id));
            }
            seen_self = true;
            continue;
        }
        numerator *= xj.scalar();
        denominator *= *xj.scalar() - xi;
    }
    // A zero denominator means some x_j == x_i under another name, i.e. a repeat.
    let inverse =
        Option::<Scalar>::from(denominator.invert()).ok_or(FrostError::DuplicateIdentifier(*id))?;
    Ok(numerator * inverse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poly::lagrange_at_zero;

    #[test]
    fn interpolating_value_matches_the_polynomial_module() {
        let ids: Vec<Identifier> = [1u64, 3, 4, 9]
            .iter()
            .map(|i| Identifier::from_u64(*i).unwrap())
            .collect();
        let xs: Vec<Scalar> = ids.iter().map(|i| *i.scalar()).collect();
        let expected = lagrange_at_zero(&xs).unwrap();
        for (id, l) in ids.iter().zip(expected) {
            assert_eq!(derive_interpolating_value(&ids, id).unwrap(), l);
        }
        let outsider = Identifier::from_u64(2).unwrap();
        assert_eq!(
            derive_interpolating_value(&ids, &outsider),
            Err(FrostError::UnknownParticipant(outsider))
        );
        let repeated = vec![ids[0], ids[0], ids[1]];
        assert!(derive_interpolating_value(&repeated, &ids[0]).is_err());
    }
}
