//! Typed errors of FROST signing.

use thiserror::Error;

use super::keys::Identifier;
use crate::error::DecodeError;

/// Why a FROST operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrostError {
    /// An encoding failed to decode (wrong length, non-canonical, identity point, ...).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Identifiers are non-zero scalars (RFC 9591 section 2: zero is where the secret lives).
    #[error("participant identifier is zero")]
    ZeroIdentifier,
    /// The same identifier appears twice in a commitment list or share set.
    #[error("participant {0:?} appears more than once")]
    DuplicateIdentifier(Identifier),
    /// An encoded commitment list is not in strictly ascending identifier order.
    #[error("commitment list is not sorted by identifier")]
    UnsortedCommitments,
    /// A list holds more signers than allowed.
    #[error("too many signers: {actual} > {max}")]
    TooManySigners {
        /// Bound.
        max: usize,
        /// Number seen.
        actual: usize,
    },
    /// Fewer signers than the threshold.
    #[error("need at least {needed} signers, got {got}")]
    NotEnoughSigners {
        /// Threshold.
        needed: usize,
        /// Signers present.
        got: usize,
    },
    /// A participant's own commitment is not in the commitment list (RFC 9591 section 5.2).
    #[error("participant {0:?} has no commitment in the list")]
    MissingCommitment(Identifier),
    /// The list carries a commitment for this participant other than the one its nonces make.
    #[error("the commitment listed for participant {0:?} is not the one its nonces commit to")]
    CommitmentMismatch(Identifier),
    /// A participant is not known to the key material at hand.
    #[error("participant {0:?} is unknown")]
    UnknownParticipant(Identifier),
    /// The group commitment is the identity, which has no encoding (RFC 9591 section 4.6).
    #[error("group commitment is the identity")]
    IdentityGroupCommitment,
    /// The key package's group key is not the one the signing context was made for.
    #[error("signing context is for another group key")]
    GroupKeyMismatch,
    /// The group public key is the identity.
    #[error("group public key is the identity")]
    IdentityGroupKey,
    /// The shares do not match the signers of the commitment list.
    #[error("signature shares do not match the commitment list")]
    ShareSetMismatch,
    /// These participants' signature shares fail verification (RFC 9591 section 5.4).
    #[error("invalid signature shares from {0:?}")]
    InvalidSignatureShares(Vec<Identifier>),
    /// The signature does not verify.
    #[error("signature verification failed")]
    InvalidSignature,
}
