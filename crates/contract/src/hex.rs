//! Byte strings that serialize as lowercase hex in JSON (queries, events, configuration).
//!
//! The contract's binary encodings never go through serde; serde is only for the JSON the chain
//! serves, where hex is what people and tools expect for keys, hashes and signatures.

use core::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Lowercase hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
}

/// Decodes hex (either case); `None` on odd length or a non-hex digit.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    ::hex::decode(s).ok()
}

/// A fixed-length byte string (keys, hashes, signatures), hex in JSON. Usable as a JSON map key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hex<const N: usize>(pub [u8; N]);

impl<const N: usize> Hex<N> {
    /// From a slice of exactly `N` bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Hex)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> Default for Hex<N> {
    fn default() -> Self {
        Hex([0u8; N])
    }
}

impl<const N: usize> fmt::Debug for Hex<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Short prefix: full keys make test failures unreadable.
        let shown = &self.0[..N.min(6)];
        write!(f, "{}", encode(shown))?;
        if N > 6 {
            write!(f, "..")?;
        }
        Ok(())
    }
}

impl<const N: usize> fmt::Display for Hex<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode(&self.0))
    }
}

impl<const N: usize> Serialize for Hex<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(&self.0))
    }
}

impl<'de, const N: usize> Deserialize<'de> for Hex<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const N: usize>;
        impl<const N: usize> Visitor<'_> for V<N> {
            type Value = Hex<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} bytes as hex", N)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Hex<N>, E> {
                decode(v)
                    .and_then(|b| Hex::from_slice(&b))
                    .ok_or_else(|| E::custom(format!("expected {N} bytes of hex")))
            }
        }
        d.deserialize_str(V::<N>)
    }
}

/// A variable-length byte string, hex in JSON.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() <= 16 {
            f.write_str(&encode(&self.0))
        } else {
            write!(f, "{}..({} bytes)", encode(&self.0[..8]), self.0.len())
        }
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        decode(&s)
            .map(Bytes)
            .ok_or_else(|| de::Error::custom("expected hex"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let h = Hex([0xab, 0x01, 0xff]);
        let j = serde_json::to_string(&h).unwrap();
        assert_eq!(j, "\"ab01ff\"");
        assert_eq!(serde_json::from_str::<Hex<3>>(&j).unwrap(), h);
        assert!(serde_json::from_str::<Hex<3>>("\"ab01\"").is_err());
        assert!(serde_json::from_str::<Hex<3>>("\"zz01ff\"").is_err());
        assert_eq!(decode("ABcd"), Some(vec![0xab, 0xcd]));
        assert_eq!(decode("abc"), None);
        let b = Bytes(vec![1, 2, 3]);
        let j = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<Bytes>(&j).unwrap(), b);
    }
}
