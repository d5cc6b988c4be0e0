//! The BIP-340 side of the BIP-340 mode: x-only keys and verification.
//!
//! BIP-340 keys and signature nonces are x-coordinates standing for the point with even `y`;
//! [`super::sign::SigningContext`] normalises the group key and the group commitment to that
//! form, and [`super::challenge::compute_challenge`] computes the tagged-hash challenge.
//! Verification is `k256`'s BIP-340 verifier, which checks the signature against the
//! specification independently of the signing code.

use elliptic_curve::point::AffineCoordinates;
use k256::AffinePoint;

use super::ciphersuite::serialize_element;
use super::error::FrostError;
use crate::error::DecodeError;

/// Length of a BIP-340 signature `x(R) || z`.
pub const SIGNATURE_LEN: usize = 64;

/// The 32-byte x-only encoding of a key (the identity has none).
pub fn x_only(key: &AffinePoint) -> Result<[u8; 32], FrostError> {
    serialize_element(key).map_err(|_| FrostError::IdentityGroupKey)?;
    Ok(key.x().into())
}

/// BIP-340 verification of `signature` on `msg` (any length) under the x-only key.
pub fn verify(
    x_only_key: &[u8; 32],
    msg: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), FrostError> {
    let key = k256::schnorr::VerifyingKey::from_bytes(x_only_key)
        .map_err(|_| FrostError::Decode(DecodeError::NotOnCurve))?;
    let signature = k256::schnorr::Signature::try_from(&signature[..])
        .map_err(|_| FrostError::InvalidSignature)?;
    key.verify_raw(msg, &signature)
        .map_err(|_| FrostError::InvalidSignature)
}
