//! Node names and section prefixes.
//!
//! A node's name is the hash of its node key, so a message signed with that key proves its
//! sender's name. A section is responsible for the names under its
//! prefix: the first `bit_count` bits of a name, most significant bit of byte 0 first. A split
//! extends the prefix by one bit (seed 002, "Section Split").

use keyquorum_crypto::hash::tagged_hash;

use crate::keys::{PublicKey, key_bytes};

const NAME_TAG: &str = "keyquorum-sections/name/v1";

/// A node's 256-bit name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(pub [u8; 32]);

impl Name {
    /// The name of the node holding `node_key`.
    pub fn of(node_key: &PublicKey) -> Name {
        Name(tagged_hash(NAME_TAG, &[&key_bytes(node_key)]))
    }

    /// Bit `i` (0 is the most significant bit of byte 0), for `i < 256`.
    pub fn bit(&self, i: u16) -> u8 {
        bit_of(&self.0, i)
    }
}

fn bit_of(bytes: &[u8; 32], i: u16) -> u8 {
    (bytes[usize::from(i / 8)] >> (7 - i % 8)) & 1
}

/// A section prefix: the first `bit_count` bits of the names it holds. Bits past `bit_count` are
/// always zero, so equal prefixes have equal values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Prefix {
    bit_count: u16,
    bits: [u8; 32],
}

/// The prefix's bits, most significant first (`01` for the section of names starting with bits
/// 0 and 1), or `root` for the whole name space.
impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.bit_count == 0 {
            return f.write_str("root");
        }
        (0..self.bit_count).try_for_each(|i| f.write_str(if self.bit(i) == 1 { "1" } else { "0" }))
    }
}

impl Prefix {
    /// The prefix of the whole name space (the genesis section).
    pub const ROOT: Prefix = Prefix {
        bit_count: 0,
        bits: [0; 32],
    };

    /// How many leading bits the prefix fixes.
    pub fn bit_count(&self) -> u16 {
        self.bit_count
    }

    /// Bit `i` of the prefix (the most significant bit of the first byte is bit 0); meaningful
    /// below [`Prefix::bit_count`].
    pub fn bit(&self, i: u16) -> u8 {
        bit_of(&self.bits, i)
    }

    /// Whether `name` lies under this prefix.
    pub fn matches(&self, name: &Name) -> bool {
        (0..self.bit_count).all(|i| bit_of(&self.bits, i) == name.bit(i))
    }

    /// The prefix one bit longer, ending in `bit`; `None` at 256 bits.
    pub fn child(&self, bit: u8) -> Option<Prefix> {
        if self.bit_count >= 256 {
            return None;
        }
        let mut bits = self.bits;
        let i = self.bit_count;
        if bit & 1 == 1 {
            bits[usize::from(i / 8)] |= 1 << (7 - i % 8);
        }
        Some(Prefix {
            bit_count: i + 1,
            bits,
        })
    }

    /// Whether `self` is `other` or one of its two children.
    pub fn is_self_or_child_of(&self, other: &Prefix) -> bool {
        *self == *other
            || (self.bit_count == other.bit_count + 1
                && (0..other.bit_count).all(|i| bit_of(&self.bits, i) == bit_of(&other.bits, i)))
    }

    /// Whether `self` is `other` or lies under it (a descendant after any number of splits).
    pub fn is_self_or_descendant_of(&self, other: &Prefix) -> bool {
        self.bit_count >= other.bit_count
            && (0..other.bit_count).all(|i| bit_of(&self.bits, i) == bit_of(&other.bits, i))
    }

    /// The prefix of `bit_count` bits held in `bytes` (`ceil(bit_count / 8)` of them), as
    /// [`Prefix::encode`] writes them; `None` unless the length fits and every bit past
    /// `bit_count` is zero, so each prefix has one encoding.
    pub fn from_bits(bit_count: u16, bytes: &[u8]) -> Option<Prefix> {
        if bit_count > 256 || bytes.len() != usize::from(bit_count.div_ceil(8)) {
            return None;
        }
        let mut bits = [0u8; 32];
        bits[..bytes.len()].copy_from_slice(bytes);
        if (bit_count..256).any(|i| bit_of(&bits, i) != 0) {
            return None;
        }
        Some(Prefix { bit_count, bits })
    }

    /// Canonical encoding: `bit_count` as u16 big-endian, then the `ceil(bit_count / 8)` bytes
    /// holding the bits.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bit_count.to_be_bytes());
        out.extend_from_slice(&self.bits[..usize::from(self.bit_count.div_ceil(8))]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_displays_as_its_bits() {
        assert_eq!(Prefix::ROOT.to_string(), "root");
        let p = Prefix::ROOT
            .child(0)
            .unwrap()
            .child(1)
            .unwrap()
            .child(1)
            .unwrap();
        assert_eq!(p.to_string(), "011");
    }

    #[test]
    fn children_split_the_name_space_by_the_next_bit() {
        let zero = Prefix::ROOT.child(0).unwrap();
        let one = Prefix::ROOT.child(1).unwrap();
        let mut low = [0u8; 32];
        low[0] = 0b0111_1111;
        let mut high = [0u8; 32];
        high[0] = 0b1000_0000;
        assert!(zero.matches(&Name(low)) && !zero.matches(&Name(high)));
        assert!(one.matches(&Name(high)) && !one.matches(&Name(low)));
        let one_zero = one.child(0).unwrap();
        assert!(one_zero.matches(&Name(high)));
        assert!(one_zero.is_self_or_child_of(&one));
        assert!(!one_zero.is_self_or_child_of(&zero));
        assert!(!one_zero.is_self_or_child_of(&Prefix::ROOT));
        assert!(one_zero.is_self_or_descendant_of(&Prefix::ROOT));
        assert!(one_zero.is_self_or_descendant_of(&one));
        assert!(one_zero.is_self_or_descendant_of(&one_zero));
        assert!(!one_zero.is_self_or_descendant_of(&zero));
        assert!(!one.is_self_or_descendant_of(&one_zero));
    }

    #[test]
    fn encoding_distinguishes_length_and_bits() {
        let mut a = Vec::new();
        Prefix::ROOT.child(0).unwrap().encode(&mut a);
        let mut b = Vec::new();
        Prefix::ROOT.child(1).unwrap().encode(&mut b);
        let mut c = Vec::new();
        Prefix::ROOT.encode(&mut c);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(c, vec![0, 0]);
    }
}
