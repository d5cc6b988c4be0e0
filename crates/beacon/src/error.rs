//! Typed errors of chain info, round decoding and verification.

use keyquorum_crypto::CryptoError;
use thiserror::Error;

use crate::hexfield::HexError;
use crate::scheme::{SchemeId, SignatureError};

/// Why chain info is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InfoError {
    /// The JSON is larger than [`crate::info::MAX_INFO_JSON`].
    #[error("chain info too large: {actual} bytes > {max}")]
    TooLarge {
        /// Bound.
        max: usize,
        /// Size received.
        actual: usize,
    },
    /// Not JSON of the expected shape.
    #[error("chain info is not valid JSON: {0}")]
    Json(String),
    /// A required field is absent.
    #[error("chain info lacks {0}")]
    Missing(&'static str),
    /// A hex field is malformed or has the wrong length.
    #[error("chain info field {field}: {error}")]
    Hex {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        error: HexError,
    },
    /// The scheme is not one of the four BLS12-381 schemes.
    #[error("unknown or unsupported scheme {0:?}")]
    UnknownScheme(String),
    /// The public key is not a valid key of the scheme's key group.
    #[error("invalid public key: {0}")]
    PublicKey(CryptoError),
    /// A period of zero seconds.
    #[error("period must be at least one second")]
    ZeroPeriod,
    /// A period that does not fit drand's 32-bit field.
    #[error("period {0} s does not fit 32 bits")]
    PeriodTooLong(u64),
    /// A genesis time before 1970.
    #[error("negative genesis time {0}")]
    NegativeGenesis(i64),
    /// A beacon id too long or with characters outside `[A-Za-z0-9._-]`.
    #[error("invalid beacon id {0:?}")]
    BadBeaconId(String),
    /// The keyquorum link does not hash to the group hash.
    #[error("metadata link does not match the group hash")]
    LinkMismatch,
    /// The published chain hash is not the hash of the info.
    #[error("chain hash mismatch: published {published}, computed {computed}")]
    ChainHashMismatch {
        /// The `hash` field.
        published: String,
        /// Recomputed from the other fields.
        computed: String,
    },
}

/// Why a round's JSON is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RoundDecodeError {
    /// The JSON is larger than [`crate::round::MAX_ROUND_JSON`].
    #[error("round too large: {actual} bytes > {max}")]
    TooLarge {
        /// Bound.
        max: usize,
        /// Size received.
        actual: usize,
    },
    /// Not JSON of the expected shape.
    #[error("round is not valid JSON: {0}")]
    Json(String),
    /// A hex field is malformed or too long.
    #[error("round field {field}: {error}")]
    Hex {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        error: HexError,
    },
    /// The published randomness is not `sha256(signature)`.
    #[error("randomness is not sha256(signature)")]
    RandomnessMismatch,
}

/// Why a round does not verify against a chain.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    /// Round 0 is the genesis, not a signed round.
    #[error("round 0 is not a signed round")]
    RoundZero,
    /// A different round than the one asked for.
    #[error("asked for round {expected}, got round {actual}")]
    WrongRound {
        /// Round requested.
        expected: u64,
        /// Round in the answer.
        actual: u64,
    },
    /// The signature has the wrong length for the scheme.
    #[error("{scheme} signatures are {expected} bytes, got {actual}")]
    SignatureLength {
        /// The chain's scheme.
        scheme: SchemeId,
        /// Required length.
        expected: usize,
        /// Length received.
        actual: usize,
    },
    /// A chained round without the previous signature.
    #[error("chained round {0} lacks the previous signature")]
    MissingPreviousSignature(u64),
    /// A chained round whose previous signature cannot be the one it chains to: the genesis
    /// seed for round 1, a signature's length otherwise.
    #[error("chained round {0} has an impossible previous signature")]
    BadPreviousSignature(u64),
    /// An unchained round carrying a previous signature.
    #[error("unchained round {0} carries a previous signature")]
    UnexpectedPreviousSignature(u64),
    /// The signature check failed.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}
