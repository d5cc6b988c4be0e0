//! The BLS layout sections use everywhere: public keys in G1 (48 bytes), signatures in G2
//! (96 bytes), ciphersuite `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_` (`tbls::MinPk`).

use keyquorum_crypto::group::Curve;
use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_crypto::{Bls12381G1, Bls12381G2, CryptoError};

/// A node or section public key (G1).
pub type PublicKey = tbls::PublicKey<MinPk>;
/// A BLS signature (G2).
pub type Signature = tbls::Signature<MinPk>;

/// Compressed length of a [`PublicKey`].
pub const KEY_LEN: usize = 48;
/// Compressed length of a [`Signature`].
pub const SIGNATURE_LEN: usize = 96;

/// The 48-byte compressed encoding of a public key.
pub fn key_bytes(key: &PublicKey) -> [u8; KEY_LEN] {
    let mut out = Vec::with_capacity(KEY_LEN);
    Bls12381G1::encode_point(key, &mut out);
    let mut bytes = [0u8; KEY_LEN];
    bytes.copy_from_slice(&out);
    bytes
}

/// The 96-byte compressed encoding of a signature.
pub fn signature_bytes(sig: &Signature) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGNATURE_LEN);
    Bls12381G2::encode_point(sig, &mut out);
    out
}

/// Decodes a public key: canonical, in the subgroup, not the identity.
pub fn decode_key(bytes: &[u8]) -> Result<PublicKey, CryptoError> {
    tbls::decode_public_key::<MinPk>(bytes)
}

/// Decodes a signature: canonical and in the subgroup.
pub fn decode_signature(bytes: &[u8]) -> Result<Signature, CryptoError> {
    tbls::decode_signature::<MinPk>(bytes)
}
