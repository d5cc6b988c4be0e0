//! Aggregation and signature verification (RFC 9591 sections 5.3, 5.4 and Appendix B).
//!
//! The coordinator sums the shares, `z = sum_i z_i`, and the signature is `(R, z)`. It verifies
//! the result before releasing it; only when that fails does it check every share, so the cost of
//! naming culprits is paid only when there are some (section 5.4: FROST identifies misbehaving
//! signers but does not recover from them). Shares that cancel each other's errors still sum to
//! a valid signature, which is then the correct output.
//!
//! RFC 9591 verification (Appendix B, prime-order group): `z G == R + c PK`. BIP-340
//! verification is `k256`'s, on the 64-byte encoding under the x-only key.

use elliptic_curve::ops::LinearCombination;
use elliptic_curve::point::AffineCoordinates;
use k256::{AffinePoint, ProjectivePoint, Scalar};

use super::bip340;
use super::challenge::compute_challenge;
use super::ciphersuite::{Mode, deserialize_element, serialize_element, serialize_scalar};
use super::error::FrostError;
use super::keys::{Identifier, PublicKeyPackage};
use super::sign::{SignatureShare, SigningContext, verify_signature_share};
use crate::group::Curve;
use crate::secp256k1::Secp256k1;

/// Length of an RFC 9591 signature: `SerializeElement(R) || SerializeScalar(z)`.
pub const SIGNATURE_LEN: usize = 65;

/// A Schnorr signature `(R, z)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    r: AffinePoint,
    z: Scalar,
}

impl Signature {
    /// The commitment `R`.
    pub fn r(&self) -> &AffinePoint {
        &self.r
    }

    /// The response `z`.
    pub fn z(&self) -> &Scalar {
        &self.z
    }

    /// The RFC 9591 encoding (Appendix A).
    pub fn to_bytes(&self) -> Result<[u8; SIGNATURE_LEN], FrostError> {
        let mut out = [0u8; SIGNATURE_LEN];
        out[..33].copy_from_slice(&serialize_element(&self.r)?);
        out[33..].copy_from_slice(&serialize_scalar(&self.z));
        Ok(out)
    }

    /// Decodes the RFC 9591 encoding: a canonical, non-identity `R` and a canonical `z`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FrostError> {
        crate::group::expect_len(bytes, SIGNATURE_LEN)?;
        Ok(Signature {
            r: deserialize_element(&bytes[..33])?,
            z: Secp256k1::decode_scalar(&bytes[33..])?,
        })
    }

    /// The BIP-340 encoding `x(R) || z` (meaningful for signatures of the BIP-340 mode, whose
    /// `R` has even `y`).
    pub fn to_bip340_bytes(&self) -> [u8; bip340::SIGNATURE_LEN] {
        let mut out = [0u8; bip340::SIGNATURE_LEN];
        out[..32].copy_from_slice(&self.r.x());
        out[32..].copy_from_slice(&serialize_scalar(&self.z));
        out
    }
}

/// `aggregate`: `(R, sum z_i)`. There must be exactly one share per signer in the list.
pub fn aggregate(
    ctx: &SigningContext,
    shares: &[(Identifier, SignatureShare)],
) -> Result<Signature, FrostError> {
    let list = ctx.commitment_list();
    if shares.len() != list.len() {
        return Err(FrostError::ShareSetMismatch);
    }
    let mut seen = vec![false; list.len()];
    let mut z = Scalar::ZERO;
    for (id, share) in shares {
        let pos = list.position(id).ok_or(FrostError::ShareSetMismatch)?;
        if seen[pos] {
            return Err(FrostError::DuplicateIdentifier(*id));
        }
        seen[pos] = true;
        z += share.scalar();
    }
    Ok(Signature {
        r: *ctx.group_commitment(),
        z,
    })
}

/// Aggregates, verifies the signature under the context's key and, if it fails, verifies every
/// share against `public` and names the culprits.
pub fn aggregate_verified(
    ctx: &SigningContext,
    public: &PublicKeyPackage,
    shares: &[(Identifier, SignatureShare)],
) -> Result<Signature, FrostError> {
    if public.group_key() != ctx.dealt_group_key() {
        return Err(FrostError::GroupKeyMismatch);
    }
    let signature = aggregate(ctx, shares)?;
    if verify(ctx.mode(), ctx.group_key(), ctx.message(), &signature).is_ok() {
        return Ok(signature);
    }
    let mut culprits = Vec::new();
    for (id, share) in shares {
        let verifying_share = public.verifying_share(id)?;
        if verify_signature_share(ctx, id, verifying_share, share).is_err() {
            culprits.push(*id);
        }
    }
    if culprits.is_empty() {
        // Every share verifies yet the sum does not: impossible for consistent inputs, so the
        // public key package does not belong to this group key.
        return Err(FrostError::InvalidSignature);
    }
    Err(FrostError::InvalidSignatureShares(culprits))
}

/// Verifies a signature of the mode under `group_key` (in the BIP-340 mode, any key with the
/// same x-coordinate).
pub fn verify(
    mode: Mode,
    group_key: &AffinePoint,
    msg: &[u8],
    signature: &Signature,
) -> Result<(), FrostError> {
    match mode {
        Mode::Rfc9591 => {
            let c = compute_challenge(mode, &signature.r, group_key, msg)?;
            // z G - c PK == R
            let lhs = ProjectivePoint::lincomb(
                &ProjectivePoint::GENERATOR,
                &signature.z,
                &ProjectivePoint::from(*group_key),
                &-c,
            );
            if lhs == ProjectivePoint::from(signature.r) {
                Ok(())
            } else {
                Err(FrostError::InvalidSignature)
            }
        }
        Mode::Bip340 => bip340::verify(
            &bip340::x_only(group_key)?,
            msg,
            &signature.to_bip340_bytes(),
        ),
    }
}
