//! secp256k1 on `k256`.
//!
//! Points encode as 33-byte SEC1 compressed points; the identity, which SEC1 encodes as a single
//! zero byte, is given the fixed 33-byte encoding of all zeros so that every encoding has one
//! length. The group has cofactor 1, so every point on the curve is in the group.
//!
//! Multiplying the generator uses `k256`'s precomputed table with constant-time lookups for
//! secret and public scalars alike: it is already fast, so there is no separate variable-time
//! path.

use std::sync::OnceLock;

use elliptic_curve::hash2curve::{ExpandMsgXmd, GroupDigest};
use elliptic_curve::sec1::{EncodedPoint, FromEncodedPoint, ToEncodedPoint};
use ff::PrimeField;
use k256::{AffinePoint, ProjectivePoint, Scalar, Secp256k1 as K256};

use crate::error::DecodeError;
use crate::group::{Curve, expect_len};

/// RFC 9380 suite for hashing to secp256k1.
pub const SUITE: &str = "secp256k1_XMD:SHA-256_SSWU_RO_";

/// secp256k1: 33-byte compressed points.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Secp256k1;

const IDENTITY_COMPRESSED: [u8; 33] = [0u8; 33];
const IDENTITY_UNCOMPRESSED: [u8; 65] = [0u8; 65];

impl Curve for Secp256k1 {
    type Scalar = Scalar;
    type Point = ProjectivePoint;
    type Affine = AffinePoint;

    const NAME: &'static str = "Secp256k1";
    const POINT_LEN: usize = 33;
    const UNCOMPRESSED_LEN: usize = 65;
    const HAS_COFACTOR: bool = false;

    fn msm(points: &[AffinePoint], scalars: &[Scalar]) -> ProjectivePoint {
        crate::msm::pippenger(points, scalars)
    }

    fn mul_generator_secret(s: &Scalar) -> ProjectivePoint {
        // Radix-16 digits, each looked up in a precomputed table by a constant-time select.
        <ProjectivePoint as elliptic_curve::ops::MulByGenerator>::mul_by_generator(s)
    }

    fn encode_point(p: &AffinePoint, out: &mut Vec<u8>) {
        if bool::from(group::prime::PrimeCurveAffine::is_identity(p)) {
            out.extend_from_slice(&IDENTITY_COMPRESSED);
        } else {
            out.extend_from_slice(p.to_encoded_point(true).as_bytes());
        }
    }

    fn decode_point(bytes: &[u8]) -> Result<AffinePoint, DecodeError> {
        expect_len(bytes, 33)?;
        if bytes == IDENTITY_COMPRESSED {
            return Ok(AffinePoint::IDENTITY);
        }
        if bytes[0] != 0x02 && bytes[0] != 0x03 {
            return Err(DecodeError::NonCanonicalPoint);
        }
        let ep =
            EncodedPoint::<K256>::from_bytes(bytes).map_err(|_| DecodeError::NonCanonicalPoint)?;
        let p: Option<AffinePoint> = AffinePoint::from_encoded_point(&ep).into();
        // k256 rejects x >= p and x with no square root in the same way.
        let p = p.ok_or(DecodeError::NotOnCurve)?;
        if p.to_encoded_point(true).as_bytes() != bytes {
            return Err(DecodeError::NonCanonicalPoint);
        }
        Ok(p)
    }

    fn encode_point_uncompressed(p: &AffinePoint, out: &mut Vec<u8>) {
        if bool::from(group::prime::PrimeCurveAffine::is_identity(p)) {
            out.extend_from_slice(&IDENTITY_UNCOMPRESSED);
        } else {
            out.extend_from_slice(p.to_encoded_point(false).as_bytes());
        }
    }

    fn decode_point_unchecked_subgroup(bytes: &[u8]) -> Result<AffinePoint, DecodeError> {
        expect_len(bytes, 65)?;
        if bytes == IDENTITY_UNCOMPRESSED {
            return Ok(AffinePoint::IDENTITY);
        }
        if bytes[0] != 0x04 {
            return Err(DecodeError::NonCanonicalPoint);
        }
        let ep =
            EncodedPoint::<K256>::from_bytes(bytes).map_err(|_| DecodeError::NonCanonicalPoint)?;
        let p: Option<AffinePoint> = AffinePoint::from_encoded_point(&ep).into();
        let p = p.ok_or(DecodeError::NotOnCurve)?;
        if p.to_encoded_point(false).as_bytes() != bytes {
            return Err(DecodeError::NonCanonicalPoint);
        }
        Ok(p)
    }

    fn in_subgroup(_p: &AffinePoint) -> bool {
        true
    }

    fn hash_to_point(msg: &[u8], dst: &[u8]) -> ProjectivePoint {
        K256::hash_from_bytes::<ExpandMsgXmd<sha2::Sha256>>(&[msg], &[dst])
            .expect("DST and message lengths are within RFC 9380 bounds")
    }

    fn pedersen_h() -> AffinePoint {
        static H: OnceLock<AffinePoint> = OnceLock::new();
        *H.get_or_init(|| {
            let dst = format!("KEYQUORUM-V01-CS01-with-{SUITE}");
            group::Curve::to_affine(&Self::hash_to_point(
                b"keyquorum pedersen generator",
                dst.as_bytes(),
            ))
        })
    }

    fn encode_scalar(s: &Scalar) -> [u8; 32] {
        s.to_repr().into()
    }

    fn decode_scalar(bytes: &[u8]) -> Result<Scalar, DecodeError> {
        expect_len(bytes, 32)?;
        let mut repr = k256::FieldBytes::default();
        repr.copy_from_slice(bytes);
        Option::from(Scalar::from_repr(repr)).ok_or(DecodeError::NonCanonicalScalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn generator_multiplication_matches_generic() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
        for _ in 0..32 {
            let s = Secp256k1::random_scalar(&mut rng);
            assert_eq!(
                Secp256k1::mul_generator_secret(&s),
                ProjectivePoint::GENERATOR * s
            );
            assert_eq!(
                // Public scalar: test values.
                Secp256k1::mul_generator_public_vartime(&s),
                Secp256k1::mul_generator_secret(&s)
            );
        }
        assert_eq!(
            Secp256k1::mul_generator_secret(&Scalar::ZERO),
            ProjectivePoint::IDENTITY
        );
    }
}
