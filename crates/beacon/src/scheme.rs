//! The four BLS12-381 beacon schemes of drand, as drand defines them.
//!
//! Every scheme signs, in round `r`, a 32-byte digest with an ordinary BLS signature under the
//! group key, using RFC 9380 hash-to-curve (`expand_message_xmd` with SHA-256, SSWU, random
//! oracle) and the *basic* ciphersuite of the IETF BLS draft (tags ending in `_NUL_`, no proof
//! of possession in the tag). The randomness of the round is `sha256(signature)`.
//!
//! | scheme id | public key | signature | hash-to-curve DST | message |
//! |---|---|---|---|---|
//! | `pedersen-bls-chained` | G1 (48 B) | G2 (96 B) | `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_` | `sha256(prev_sig \|\| r)` |
//! | `pedersen-bls-unchained` | G1 (48 B) | G2 (96 B) | `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_` | `sha256(r)` |
//! | `bls-unchained-g1-rfc9380` | G2 (96 B) | G1 (48 B) | `BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_` | `sha256(r)` |
//! | `bls-unchained-on-g1` | G2 (96 B) | G1 (48 B) | `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_` | `sha256(r)` |
//!
//! `r` is the round as 8 bytes big-endian. In the chained scheme `prev_sig` is the signature of
//! round `r - 1`, and for round 1 the chain's genesis seed (the `groupHash` of its chain info).
//! `bls-unchained-on-g1` is drand's deprecated short-signature scheme: it hashes to G1 under the
//! *G2* tag, which is not what RFC 9380 prescribes for G1; it is kept because chains signed
//! that way exist. Source: drand's `crypto/schemes.go` (`NewPedersenBLSChained`,
//! `NewPedersenBLSUnchained`, `NewPedersenBLSUnchainedG1`, `NewPedersenBLSUnchainedSwapped`)
//! and `RandomnessFromSignature`.
//!
//! Each scheme is a type implementing [`tbls::Variant`] with its own tag, so the threshold
//! signing, combination and verification of `keyquorum-crypto` apply to it unchanged (that
//! crate's own `MinPk`/`MinSig` use the proof-of-possession tags, which drand does not).

use core::fmt;

use blstrs::{G1Affine, G2Affine};
use keyquorum_crypto::tbls::{self, MinPk, MinSig, Variant};
use keyquorum_crypto::{Bls12381G1, Bls12381G2};
use sha2::{Digest, Sha256};

/// RFC 9380 / IETF BLS basic-scheme tag for signatures in G2.
pub const DST_G2_NUL: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_";
/// RFC 9380 / IETF BLS basic-scheme tag for signatures in G1.
pub const DST_G1_NUL: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_";

/// A drand scheme, by its identifier (the `schemeID` of chain info).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemeId {
    /// `pedersen-bls-chained`, drand's default and original scheme.
    PedersenBlsChained,
    /// `pedersen-bls-unchained`.
    PedersenBlsUnchained,
    /// `bls-unchained-g1-rfc9380` (drand's `quicknet`).
    BlsUnchainedG1Rfc9380,
    /// `bls-unchained-on-g1`, deprecated (G1 signatures hashed under the G2 tag).
    BlsUnchainedOnG1,
}

impl SchemeId {
    /// Every scheme, default first.
    pub const ALL: [SchemeId; 4] = [
        SchemeId::PedersenBlsChained,
        SchemeId::PedersenBlsUnchained,
        SchemeId::BlsUnchainedG1Rfc9380,
        SchemeId::BlsUnchainedOnG1,
    ];

    /// drand's default scheme, assumed when chain info names none.
    pub const DEFAULT: SchemeId = SchemeId::PedersenBlsChained;

    /// The identifier as drand writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemeId::PedersenBlsChained => "pedersen-bls-chained",
            SchemeId::PedersenBlsUnchained => "pedersen-bls-unchained",
            SchemeId::BlsUnchainedG1Rfc9380 => "bls-unchained-g1-rfc9380",
            SchemeId::BlsUnchainedOnG1 => "bls-unchained-on-g1",
        }
    }

    /// Parses an identifier; `None` for anything else (including the schemes on other curves).
    pub fn from_name(name: &str) -> Option<SchemeId> {
        SchemeId::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether round `r` signs the signature of round `r - 1`.
    pub fn is_chained(self) -> bool {
        self == SchemeId::PedersenBlsChained
    }

    /// Length of the compressed group public key.
    pub fn public_key_len(self) -> usize {
        if self.signatures_in_g1() { 96 } else { 48 }
    }

    /// Length of a compressed signature.
    pub fn signature_len(self) -> usize {
        if self.signatures_in_g1() { 48 } else { 96 }
    }

    /// The hash-to-curve domain separation tag of signatures.
    pub fn dst(self) -> &'static [u8] {
        match self {
            SchemeId::BlsUnchainedG1Rfc9380 => DST_G1_NUL,
            _ => DST_G2_NUL,
        }
    }

    fn signatures_in_g1(self) -> bool {
        matches!(
            self,
            SchemeId::BlsUnchainedG1Rfc9380 | SchemeId::BlsUnchainedOnG1
        )
    }
}

impl fmt::Display for SchemeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A drand scheme as a BLS layout with its tag: what the verifier and the engine are generic
/// over.
pub trait DrandScheme: Variant {
    /// The scheme's identifier.
    const ID: SchemeId;
}

/// Implements [`Variant`] for a scheme type: the groups and the pairing check of an existing
/// layout, the scheme's own signature tag.
macro_rules! drand_scheme {
    ($(#[$doc:meta])* $name:ident, $id:expr, $layout:ty, $public:ty, $sig:ty,
     $pk_aff:ty, $sig_aff:ty, $dst:expr, $pop_dst:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name;

        impl Variant for $name {
            type Public = $public;
            type Signature = $sig;

            const NAME: &'static str = $id.as_str_const();
            const SIG_DST: &'static [u8] = $dst;
            // drand signs no proofs of possession with the group key; the IETF tag of the
            // signature group keeps the constant meaningful should anything use it.
            const POP_DST: &'static [u8] = $pop_dst;

            fn pairing_check(pk: &$pk_aff, h: &$sig_aff, sig: &$sig_aff) -> bool {
                // The pairing equation does not depend on the tag, only on the groups.
                <$layout as Variant>::pairing_check(pk, h, sig)
            }
        }

        impl DrandScheme for $name {
            const ID: SchemeId = $id;
        }
    };
}

impl SchemeId {
    /// [`SchemeId::as_str`] usable in constants.
    const fn as_str_const(self) -> &'static str {
        match self {
            SchemeId::PedersenBlsChained => "pedersen-bls-chained",
            SchemeId::PedersenBlsUnchained => "pedersen-bls-unchained",
            SchemeId::BlsUnchainedG1Rfc9380 => "bls-unchained-g1-rfc9380",
            SchemeId::BlsUnchainedOnG1 => "bls-unchained-on-g1",
        }
    }
}

drand_scheme!(
    /// `pedersen-bls-chained`: key in G1, signature in G2 on `sha256(prev_sig || round)`.
    PedersenBlsChained,
    SchemeId::PedersenBlsChained,
    MinPk,
    Bls12381G1,
    Bls12381G2,
    G1Affine,
    G2Affine,
    DST_G2_NUL,
    b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
);

drand_scheme!(
    /// `pedersen-bls-unchained`: key in G1, signature in G2 on `sha256(round)`.
    PedersenBlsUnchained,
    SchemeId::PedersenBlsUnchained,
    MinPk,
    Bls12381G1,
    Bls12381G2,
    G1Affine,
    G2Affine,
    DST_G2_NUL,
    b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
);

drand_scheme!(
    /// `bls-unchained-g1-rfc9380`: key in G2, signature in G1 on `sha256(round)`, G1 tag.
    BlsUnchainedG1Rfc9380,
    SchemeId::BlsUnchainedG1Rfc9380,
    MinSig,
    Bls12381G2,
    Bls12381G1,
    G2Affine,
    G1Affine,
    DST_G1_NUL,
    b"BLS_POP_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_"
);

drand_scheme!(
    /// `bls-unchained-on-g1` (deprecated): key in G2, signature in G1 on `sha256(round)`,
    /// hashed under the G2 tag as drand does.
    BlsUnchainedOnG1,
    SchemeId::BlsUnchainedOnG1,
    MinSig,
    Bls12381G2,
    Bls12381G1,
    G2Affine,
    G1Affine,
    DST_G2_NUL,
    b"BLS_POP_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_"
);

/// The 32-byte digest signed in `round`: `sha256(previous_signature || round_be)` for the
/// chained scheme, `sha256(round_be)` for the others (which ignore `previous_signature`).
pub fn round_message(scheme: SchemeId, previous_signature: &[u8], round: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    if scheme.is_chained() {
        h.update(previous_signature);
    }
    h.update(round.to_be_bytes());
    h.finalize().into()
}

/// The randomness of a round: `sha256(signature)` over the compressed signature bytes.
pub fn randomness(signature: &[u8]) -> [u8; 32] {
    Sha256::digest(signature).into()
}

/// Verifies a signature on `message` under `public_key` (both compressed) for scheme `S`:
/// exact lengths, canonical encodings, subgroup membership, non-identity key, pairing check.
pub(crate) fn verify_bytes<S: DrandScheme>(
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    let pk = tbls::decode_public_key::<S>(public_key).map_err(SignatureError::PublicKey)?;
    let sig = tbls::decode_signature::<S>(signature).map_err(SignatureError::Signature)?;
    tbls::verify::<S>(&pk, message, &sig).map_err(|_| SignatureError::DoesNotVerify)
}

/// Why a signature check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The public key does not decode (length, encoding, curve, subgroup, identity).
    #[error("invalid public key: {0}")]
    PublicKey(keyquorum_crypto::CryptoError),
    /// The signature does not decode (length, encoding, curve, subgroup).
    #[error("invalid signature encoding: {0}")]
    Signature(keyquorum_crypto::CryptoError),
    /// Well-formed, but the pairing check fails.
    #[error("signature does not verify")]
    DoesNotVerify,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip_and_shapes_match_drand() {
        for s in SchemeId::ALL {
            assert_eq!(SchemeId::from_name(s.as_str()), Some(s));
            assert_eq!(s.as_str(), s.as_str_const());
        }
        assert_eq!(SchemeId::from_name("bls-bn254-unchained-on-g1"), None);
        assert_eq!(SchemeId::from_name(""), None);
        assert_eq!(PedersenBlsChained::NAME, "pedersen-bls-chained");
        assert_eq!(BlsUnchainedOnG1::SIG_DST, DST_G2_NUL);
        assert_eq!(BlsUnchainedG1Rfc9380::SIG_DST, DST_G1_NUL);
        assert_eq!(SchemeId::DEFAULT.public_key_len(), 48);
        assert_eq!(SchemeId::BlsUnchainedG1Rfc9380.signature_len(), 48);
    }

    #[test]
    fn only_the_chained_message_depends_on_the_previous_signature() {
        let a = round_message(SchemeId::PedersenBlsChained, b"x", 7);
        let b = round_message(SchemeId::PedersenBlsChained, b"y", 7);
        assert_ne!(a, b);
        let c = round_message(SchemeId::PedersenBlsUnchained, b"x", 7);
        let d = round_message(SchemeId::PedersenBlsUnchained, b"y", 7);
        assert_eq!(c, d);
        let expect: [u8; 32] = Sha256::digest(7u64.to_be_bytes()).into();
        assert_eq!(c, expect);
    }
}
