//! Canonical binary encoding of protocol messages.
//!
//! Every message has exactly one encoding: fixed-width big-endian integers, `u32` length prefixes,
//! and no optional padding. Decoders take a bound for every variable-length field and fail with a
//! typed error before allocating anything larger, and a message must be consumed exactly (trailing
//! bytes are an error). Re-encoding a decoded message gives the input bytes back.

use keyquorum_crypto::commit::EvalCommitment;
use keyquorum_crypto::{CryptoError, Curve, DecodeError};

/// Encoding errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The input ended early.
    #[error("truncated input: needed {needed} more bytes")]
    Truncated {
        /// Bytes missing.
        needed: usize,
    },
    /// Bytes remain after the message.
    #[error("{0} trailing bytes")]
    Trailing(usize),
    /// A length or count exceeds its bound.
    #[error("{what} too long: {actual} > {max}")]
    TooLong {
        /// Field.
        what: &'static str,
        /// Bound.
        max: usize,
        /// Value seen.
        actual: usize,
    },
    /// An unknown tag or enum value.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// Field.
        what: &'static str,
        /// Value seen.
        tag: u8,
    },
    /// A field is not canonical (e.g. list not sorted, bitmap padding set).
    #[error("non-canonical {0}")]
    NonCanonical(&'static str),
    /// A point or scalar failed to decode.
    #[error(transparent)]
    Crypto(#[from] DecodeError),
}

/// Appends canonical encodings to a buffer.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer::default()
    }

    /// A writer whose output starts with `prefix`, with room for `capacity` bytes in all.
    pub fn with_prefix(prefix: &[u8], capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity.max(prefix.len()));
        buf.extend_from_slice(prefix);
        Writer { buf }
    }

    /// The bytes written so far.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Big-endian u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Big-endian u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Raw bytes of a length fixed by the format.
    pub fn fixed(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// `u32` length prefix then the bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u32(b.len() as u32);
        self.buf.extend_from_slice(b);
        self
    }

    /// A scalar, 32 bytes big-endian.
    pub fn scalar<C: Curve>(&mut self, s: &C::Scalar) -> &mut Self {
        self.buf.extend_from_slice(&C::encode_scalar(s));
        self
    }

    /// A compressed point.
    pub fn point<C: Curve>(&mut self, p: &C::Affine) -> &mut Self {
        C::encode_point(p, &mut self.buf);
        self
    }

    /// An uncompressed point (bulk commitments).
    pub fn point_uncompressed<C: Curve>(&mut self, p: &C::Affine) -> &mut Self {
        C::encode_point_uncompressed(p, &mut self.buf);
        self
    }
}

/// Reads canonical encodings with bounds.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Fails unless everything was consumed.
    pub fn finish(self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::Trailing(self.buf.len()))
        }
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// `len` raw bytes.
    pub fn fixed(&mut self, len: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < len {
            return Err(WireError::Truncated {
                needed: len - self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(len);
        self.buf = tail;
        Ok(head)
    }

    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.fixed(N)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.fixed(1)?[0])
    }

    /// Big-endian u32.
    pub fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Big-endian u64.
    pub fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Length-prefixed bytes of at most `max` bytes.
    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], WireError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(WireError::TooLong {
                what,
                max,
                actual: len,
            });
        }
        self.fixed(len)
    }

    /// A count of at most `max` items (checked before anything is allocated).
    pub fn count(&mut self, what: &'static str, max: usize) -> Result<usize, WireError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(WireError::TooLong {
                what,
                max,
                actual: len,
            });
        }
        Ok(len)
    }

    /// A canonical scalar.
    pub fn scalar<C: Curve>(&mut self) -> Result<C::Scalar, WireError> {
        Ok(C::decode_scalar(self.fixed(32)?)?)
    }

    /// A fully validated compressed point.
    pub fn point<C: Curve>(&mut self) -> Result<C::Affine, WireError> {
        Ok(C::decode_point(self.fixed(C::POINT_LEN)?)?)
    }

    /// A commitment of `count` uncompressed points on the curve (subgroup not checked: see
    /// `commit` in the crypto crate for where it is checked instead), with its digest taken from
    /// the received bytes.
    pub fn eval_commitment<C: Curve>(
        &mut self,
        count: usize,
    ) -> Result<EvalCommitment<C>, WireError> {
        let bytes = self.fixed(count * C::UNCOMPRESSED_LEN)?;
        EvalCommitment::decode_uncompressed(bytes).map_err(|e| match e {
            CryptoError::Decode(d) => WireError::from(d),
            _ => WireError::NonCanonical("commitment too short"),
        })
    }

    /// An uncompressed point: canonical coordinates on the curve, subgroup NOT checked.
    pub fn point_uncompressed<C: Curve>(&mut self) -> Result<C::Affine, WireError> {
        Ok(C::decode_point_unchecked_subgroup(
            self.fixed(C::UNCOMPRESSED_LEN)?,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_enforced_before_allocation() {
        let mut w = Writer::new();
        w.u32(u32::MAX);
        let bytes = w.finish();
        let mut r = Reader::new(&bytes);
        assert!(matches!(r.bytes("x", 10), Err(WireError::TooLong { .. })));
        let mut r = Reader::new(&bytes);
        assert!(matches!(r.count("x", 10), Err(WireError::TooLong { .. })));
    }

    #[test]
    fn truncation_and_trailing_are_errors() {
        let mut w = Writer::new();
        w.u64(7).bytes(b"abc");
        let bytes = w.finish();
        for cut in 0..bytes.len() {
            let mut r = Reader::new(&bytes[..cut]);
            let res = r.u64().and_then(|_| r.bytes("b", 8).map(|_| ()));
            assert!(res.is_err(), "cut {cut}");
        }
        let mut extended = bytes.clone();
        extended.push(0);
        let mut r = Reader::new(&extended);
        r.u64().unwrap();
        r.bytes("b", 8).unwrap();
        assert_eq!(r.finish(), Err(WireError::Trailing(1)));
    }
}
