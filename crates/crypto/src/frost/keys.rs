//! Signer identifiers and the key material a FROST signer and a coordinator hold.
//!
//! keyquorum's DKG leaves participant `i` with the share `f(x_i)` of the group secret `f(0)` at
//! its index `x_i` (see [`crate::index`]), the group key `f(0) G` and every verifying share
//! `f(x_j) G`. RFC 9591 calls the index the identifier (a non-zero scalar), the share the
//! signing share and `f(0) G` the group public key (section 5, Appendix C); these types hold
//! exactly that and nothing protocol-specific.

use core::cmp::Ordering;
use core::fmt;
use std::collections::BTreeMap;

use k256::{AffinePoint, Scalar};

use super::ciphersuite::{deserialize_scalar, serialize_scalar};
use super::error::FrostError;
use crate::group::Curve;
use crate::secp256k1::Secp256k1;
use crate::secret::Secret;

/// A participant identifier: a non-zero scalar, the evaluation point of its share.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Identifier(Scalar);

impl Identifier {
    /// The identifier for a scalar index; zero is refused.
    pub fn new(index: Scalar) -> Result<Self, FrostError> {
        if bool::from(index.is_zero()) {
            return Err(FrostError::ZeroIdentifier);
        }
        Ok(Identifier(index))
    }

    /// The identifier `i` for the sequential index `i` (see [`crate::index::sequential`]).
    pub fn from_u64(i: u64) -> Result<Self, FrostError> {
        Self::new(Scalar::from(i))
    }

    /// The scalar.
    pub fn scalar(&self) -> &Scalar {
        &self.0
    }

    /// `SerializeScalar(identifier)`.
    pub fn to_bytes(&self) -> [u8; 32] {
        serialize_scalar(&self.0)
    }

    /// Decodes a canonical, non-zero identifier.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FrostError> {
        Self::new(deserialize_scalar(bytes)?)
    }
}

impl fmt::Debug for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes();
        let first = bytes.iter().position(|b| *b != 0).unwrap_or(31);
        write!(f, "Identifier(0x{})", hex::encode(&bytes[first..]))
    }
}

// RFC 9591 sorts commitment lists by identifier read as an integer; the big-endian encoding
// orders the same way.
impl Ord for Identifier {
    fn cmp(&self, other: &Self) -> Ordering {
        self.to_bytes().cmp(&other.to_bytes())
    }
}

impl PartialOrd for Identifier {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// What one signer holds: its identifier, its secret share, its verifying share and the group key.
pub struct KeyPackage {
    identifier: Identifier,
    signing_share: Secret<Scalar>,
    verifying_share: AffinePoint,
    group_key: AffinePoint,
}

impl fmt::Debug for KeyPackage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPackage")
            .field("identifier", &self.identifier)
            .field("signing_share", &self.signing_share)
            .field("verifying_share", &self.verifying_share)
            .field("group_key", &self.group_key)
            .finish()
    }
}

impl KeyPackage {
    /// A signer's key package. The verifying share is recomputed from the share; a zero share or
    /// an identity group key is refused (neither comes out of an honest DKG).
    pub fn new(
        identifier: Identifier,
        signing_share: Secret<Scalar>,
        group_key: AffinePoint,
    ) -> Result<Self, FrostError> {
        if bool::from(signing_share.expose().is_zero()) {
            return Err(FrostError::Decode(crate::error::DecodeError::ZeroScalar));
        }
        if bool::from(group::prime::PrimeCurveAffine::is_identity(&group_key)) {
            return Err(FrostError::IdentityGroupKey);
        }
        let verifying_share =
            group::Curve::to_affine(&Secp256k1::mul_generator_secret(signing_share.expose()));
        Ok(KeyPackage {
            identifier,
            signing_share,
            verifying_share,
            group_key,
        })
    }

    /// This signer's identifier.
    pub fn identifier(&self) -> Identifier {
        self.identifier
    }

    /// The secret share.
    pub fn signing_share(&self) -> &Secret<Scalar> {
        &self.signing_share
    }

    /// `signing_share * G`.
    pub fn verifying_share(&self) -> &AffinePoint {
        &self.verifying_share
    }

    /// The group public key.
    pub fn group_key(&self) -> &AffinePoint {
        &self.group_key
    }
}

/// The public key material a coordinator verifies signature shares against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyPackage {
    group_key: AffinePoint,
    threshold: usize,
    verifying_shares: BTreeMap<Identifier, AffinePoint>,
}

impl PublicKeyPackage {
    /// The group key, the threshold and every participant's verifying share. Identity points
    /// and thresholds of zero or above the number of participants are refused.
    pub fn new(
        group_key: AffinePoint,
        threshold: usize,
        verifying_shares: impl IntoIterator<Item = (Identifier, AffinePoint)>,
    ) -> Result<Self, FrostError> {
        if bool::from(group::prime::PrimeCurveAffine::is_identity(&group_key)) {
            return Err(FrostError::IdentityGroupKey);
        }
        let mut map = BTreeMap::new();
        for (id, share) in verifying_shares {
            if bool::from(group::prime::PrimeCurveAffine::is_identity(&share)) {
                return Err(FrostError::Decode(crate::error::DecodeError::Identity));
            }
            if map.insert(id, share).is_some() {
                return Err(FrostError::DuplicateIdentifier(id));
            }
        }
        if threshold == 0 || threshold > map.len() {
            return Err(FrostError::NotEnoughSigners {
                needed: threshold.max(1),
                got: map.len(),
            });
        }
        Ok(PublicKeyPackage {
            group_key,
            threshold,
            verifying_shares: map,
        })
    }

    /// The group public key.
    pub fn group_key(&self) -> &AffinePoint {
        &self.group_key
    }

    /// The minimum number of signers.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Number of participants holding shares.
    pub fn participants(&self) -> usize {
        self.verifying_shares.len()
    }

    /// A participant's verifying share.
    pub fn verifying_share(&self, id: &Identifier) -> Result<&AffinePoint, FrostError> {
        self.verifying_shares
            .get(id)
            .ok_or(FrostError::UnknownParticipant(*id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_nonzero_canonical_and_ordered_as_integers() {
        assert_eq!(Identifier::from_u64(0), Err(FrostError::ZeroIdentifier));
        assert_eq!(
            Identifier::from_bytes(&[0u8; 32]),
            Err(FrostError::ZeroIdentifier)
        );
        let a = Identifier::from_u64(2).unwrap();
        let b = Identifier::from_u64(256).unwrap();
        assert!(a < b);
        assert_eq!(Identifier::from_bytes(&b.to_bytes()).unwrap(), b);
        assert_eq!(format!("{b:?}"), "Identifier(0x0100)");
    }

    #[test]
    fn key_package_debug_hides_the_share() {
        let kp = KeyPackage::new(
            Identifier::from_u64(1).unwrap(),
            Secret::new(Scalar::from(0x1234_5678u64)),
            AffinePoint::GENERATOR,
        )
        .unwrap();
        let text = format!("{kp:?}");
        assert!(text.contains("<redacted>"));
        assert!(!text.contains("12345678"));
    }
}
