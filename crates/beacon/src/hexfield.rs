//! Hex fields of drand's JSON, with their length checked before anything is decoded.

/// Why a hex field is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// The field decodes to the wrong number of bytes.
    #[error("expected {expected} bytes ({} hex characters), got {actual} hex characters", 2 * expected)]
    Length {
        /// Bytes required.
        expected: usize,
        /// Hex characters received.
        actual: usize,
    },
    /// The field decodes to more bytes than allowed.
    #[error("more than {max} bytes ({actual} hex characters)")]
    TooLong {
        /// Largest number of bytes allowed.
        max: usize,
        /// Hex characters received.
        actual: usize,
    },
    /// Not an even-length string of hex digits.
    #[error("not hex")]
    NotHex,
}

/// Decodes exactly `len` bytes.
pub(crate) fn decode_exact(s: &str, len: usize) -> Result<Vec<u8>, HexError> {
    if s.len() != 2 * len {
        return Err(HexError::Length {
            expected: len,
            actual: s.len(),
        });
    }
    hex::decode(s).map_err(|_| HexError::NotHex)
}

/// Decodes at most `max` bytes.
pub(crate) fn decode_bounded(s: &str, max: usize) -> Result<Vec<u8>, HexError> {
    if s.len() > 2 * max {
        return Err(HexError::TooLong {
            max,
            actual: s.len(),
        });
    }
    hex::decode(s).map_err(|_| HexError::NotHex)
}
