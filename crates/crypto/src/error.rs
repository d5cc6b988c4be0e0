//! Typed errors of the cryptographic core.

use thiserror::Error;

/// Why a byte string is not a valid encoding.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input has the wrong length.
    #[error("wrong length: expected {expected} bytes, got {actual}")]
    Length {
        /// Required length.
        expected: usize,
        /// Length received.
        actual: usize,
    },
    /// A scalar encoding is not below the group order.
    #[error("scalar is not canonical (not below the group order)")]
    NonCanonicalScalar,
    /// The bytes are not a canonical point encoding (flag bits, coordinate range, ...).
    #[error("point encoding is not canonical")]
    NonCanonicalPoint,
    /// The point does not satisfy the curve equation.
    #[error("point is not on the curve")]
    NotOnCurve,
    /// The point is on the curve but outside the prime-order subgroup.
    #[error("point is not in the prime-order subgroup")]
    NotInSubgroup,
    /// The identity element where it is not allowed.
    #[error("identity point not allowed here")]
    Identity,
    /// A zero scalar where it is not allowed.
    #[error("zero scalar not allowed here")]
    ZeroScalar,
    /// A length prefix or count exceeds its bound.
    #[error("{what} too long: {actual} > {max}")]
    TooLong {
        /// What was being decoded.
        what: &'static str,
        /// Bound.
        max: usize,
        /// Value seen.
        actual: usize,
    },
}

/// Errors of the cryptographic operations.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CryptoError {
    /// An encoding failed to decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Two participants share an index, or an index is zero where that is not allowed.
    #[error("indices must be distinct and non-zero")]
    BadIndices,
    /// Not enough inputs (shares, partial signatures, points) for the threshold.
    #[error("need at least {needed} inputs, got {got}")]
    NotEnough {
        /// Required number.
        needed: usize,
        /// Number given.
        got: usize,
    },
    /// Lengths of parallel inputs differ.
    #[error("length mismatch: {0}")]
    LengthMismatch(&'static str),
    /// A polynomial degree / threshold is invalid.
    #[error("invalid threshold {threshold} for {n} participants")]
    BadThreshold {
        /// Threshold requested.
        threshold: usize,
        /// Number of participants.
        n: usize,
    },
    /// The requested FFT domain does not exist in this field.
    #[error("no evaluation domain of size {0} in this field")]
    NoDomain(usize),
    /// A signature does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// A proof of possession does not verify.
    #[error("proof of possession verification failed")]
    BadProofOfPossession,
    /// Encryption or decryption failed.
    #[error("encryption error: {0}")]
    Encryption(&'static str),
}
