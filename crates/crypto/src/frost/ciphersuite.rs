//! The FROST(secp256k1, SHA-256) ciphersuite of RFC 9591 section 6.5, and the BIP-340 mode.
//!
//! Elements are SEC1 compressed points (33 bytes) and scalars 32-byte big-endian integers below
//! the group order; the identity has no encoding, so serialising it fails and deserialising
//! refuses it (RFC 9591 section 6.5, `SerializeElement`/`DeserializeElement`).
//!
//! The hash functions, with `contextString = "FROST-secp256k1-SHA256-v1"`:
//! - `H1(m)`, `H2(m)`, `H3(m)`: `hash_to_field(m, 1)` of RFC 9380 section 5.2 with
//!   `expand_message_xmd` (SHA-256), `L = 48`, and DST `contextString || "rho"`, `"chal"`,
//!   `"nonce"` respectively;
//! - `H4(m) = SHA-256(contextString || "msg" || m)`, `H5(m) = SHA-256(contextString || "com" || m)`.
//!
//! The BIP-340 mode keeps these functions with its own context string,
//! `"FROST-secp256k1-SHA256-TR-v1"` (so its binding factors are separated from the RFC suite's;
//! the string is the one ZcashFoundation's `frost-secp256k1-tr` uses, which makes the two
//! interoperate), and replaces `H2` by BIP-340's tagged-hash challenge (see
//! [`super::challenge`]). No BIP-341 taproot tweak is applied to the key.

use elliptic_curve::hash2curve::{ExpandMsgXmd, hash_to_field};
use k256::{AffinePoint, Scalar};
use sha2::{Digest, Sha256};

use super::error::FrostError;
use crate::error::DecodeError;
use crate::group::Curve;
use crate::secp256k1::Secp256k1;

/// RFC 9591 section 6.5 context string.
pub const CONTEXT_STRING: &[u8] = b"FROST-secp256k1-SHA256-v1";

/// Context string of the BIP-340 mode: the RFC suite's hashes, separated by name.
pub const BIP340_CONTEXT_STRING: &[u8] = b"FROST-secp256k1-SHA256-TR-v1";

/// Which Schnorr signature the signers produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// FROST(secp256k1, SHA-256) exactly as RFC 9591 specifies: 65-byte signatures
    /// `SerializeElement(R) || SerializeScalar(z)`.
    Rfc9591,
    /// BIP-340: even-y group key and group commitment, tagged-hash challenge, 64-byte signatures
    /// `x(R) || z` under the 32-byte x-only key.
    Bip340,
}

impl Mode {
    /// The context string prefixed to every hash of this mode.
    pub fn context_string(self) -> &'static [u8] {
        match self {
            Mode::Rfc9591 => CONTEXT_STRING,
            Mode::Bip340 => BIP340_CONTEXT_STRING,
        }
    }
}

fn hash_to_scalar(mode: Mode, label: &[u8], parts: &[&[u8]]) -> Scalar {
    let mut out = [Scalar::ZERO];
    hash_to_field::<ExpandMsgXmd<Sha256>, Scalar>(parts, &[mode.context_string(), label], &mut out)
        .expect("a 48-byte output and a DST below 255 bytes are within RFC 9380 bounds");
    out[0]
}

fn prefixed_sha256(mode: Mode, label: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(mode.context_string());
    h.update(label);
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// `H1`: binding factors. `parts` are concatenated.
pub fn h1(mode: Mode, parts: &[&[u8]]) -> Scalar {
    hash_to_scalar(mode, b"rho", parts)
}

/// `H2`: the RFC 9591 challenge (not used by the BIP-340 mode).
pub fn h2(parts: &[&[u8]]) -> Scalar {
    hash_to_scalar(Mode::Rfc9591, b"chal", parts)
}

/// `H3`: nonce derivation.
pub fn h3(mode: Mode, parts: &[&[u8]]) -> Scalar {
    hash_to_scalar(mode, b"nonce", parts)
}

/// `H4`: message hash for the binding factor input.
pub fn h4(mode: Mode, msg: &[u8]) -> [u8; 32] {
    prefixed_sha256(mode, b"msg", &[msg])
}

/// `H5`: hash of the encoded commitment list for the binding factor input.
pub fn h5(mode: Mode, encoded_commitment_list: &[u8]) -> [u8; 32] {
    prefixed_sha256(mode, b"com", &[encoded_commitment_list])
}

/// `SerializeElement`: 33-byte compressed point; the identity has no encoding.
pub fn serialize_element(p: &AffinePoint) -> Result<[u8; 33], FrostError> {
    if bool::from(group::prime::PrimeCurveAffine::is_identity(p)) {
        return Err(FrostError::Decode(DecodeError::Identity));
    }
    let mut v = Vec::with_capacity(33);
    Secp256k1::encode_point(p, &mut v);
    let mut out = [0u8; 33];
    out.copy_from_slice(&v);
    Ok(out)
}

/// `DeserializeElement`: canonical compressed point on the curve, not the identity.
pub fn deserialize_element(bytes: &[u8]) -> Result<AffinePoint, FrostError> {
    // The all-zero string is keyquorum's identity encoding elsewhere; here it is refused with
    // every other identity encoding.
    Ok(Secp256k1::decode_point_nonzero(bytes)?)
}

/// `SerializeScalar`: 32-byte big-endian.
pub fn serialize_scalar(s: &Scalar) -> [u8; 32] {
    Secp256k1::encode_scalar(s)
}

/// `DeserializeScalar`: exactly 32 bytes encoding an integer below the group order.
pub fn deserialize_scalar(bytes: &[u8]) -> Result<Scalar, FrostError> {
    Ok(Secp256k1::decode_scalar(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_neither_serialised_nor_accepted() {
        assert_eq!(
            serialize_element(&AffinePoint::IDENTITY),
            Err(FrostError::Decode(DecodeError::Identity))
        );
        assert_eq!(
            deserialize_element(&[0u8; 33]),
            Err(FrostError::Decode(DecodeError::Identity))
        );
        assert!(deserialize_element(&[0u8]).is_err());
    }

    #[test]
    fn scalars_at_or_above_the_order_are_refused() {
        let order = hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
            .unwrap();
        assert_eq!(
            deserialize_scalar(&order),
            Err(FrostError::Decode(DecodeError::NonCanonicalScalar))
        );
        assert!(deserialize_scalar(&[0u8; 31]).is_err());
    }

    #[test]
    fn modes_separate_their_hashes() {
        assert_ne!(h1(Mode::Rfc9591, &[b"x"]), h1(Mode::Bip340, &[b"x"]));
        assert_ne!(h4(Mode::Rfc9591, b"x"), h4(Mode::Bip340, b"x"));
        // Concatenation: parts are one message.
        assert_eq!(
            h1(Mode::Rfc9591, &[b"ab", b"c"]),
            h1(Mode::Rfc9591, &[b"abc"])
        );
    }
}
