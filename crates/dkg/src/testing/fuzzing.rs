//! Support for the fuzz harnesses: case counts, a corpus of valid encodings, and mutations.
//!
//! The harnesses are proptest properties, so they run on the stable toolchain with `cargo
//! test`. Random bytes rarely get past the first length check of a decoder, so most inputs are
//! valid encodings (the golden vectors, or posts of a recorded ceremony) with a few
//! [`Mutation`]s applied: bytes flipped, length fields overwritten, bytes inserted or removed,
//! the input truncated or extended.
//!
//! `KQ_FUZZ_CASES` sets the number of cases of every harness (the defaults keep a test run to a
//! few seconds); see `docs/testing.md` for the long run.
//!
//! Shared by the test suites of several crates.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::Config;

/// The environment variable that sets the number of cases.
pub const CASES_ENV: &str = "KQ_FUZZ_CASES";

/// The proptest configuration of a harness: `default` cases unless [`CASES_ENV`] says otherwise.
pub fn config(default: u32) -> Config {
    let cases = std::env::var(CASES_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        // Shrinking a sequence of mutations can take long; a failing input is printed anyway.
        max_shrink_iters: 256,
        ..Config::default()
    }
}

/// The hex of every vector in a golden vector file, by name.
pub fn vectors(path: &str) -> BTreeMap<String, Vec<u8>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    map.into_iter()
        .map(|(name, v)| {
            let hex = v["hex"].as_str().unwrap();
            (name, hex::decode(hex).unwrap())
        })
        .collect()
}

/// One change to a byte string. Positions are taken modulo the length.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// XOR one byte with a non-zero value.
    Flip {
        /// Position.
        pos: usize,
        /// Non-zero mask.
        xor: u8,
    },
    /// Overwrite four bytes with a big-endian `u32` (lengths and counts are `u32`s).
    SetU32 {
        /// Position.
        pos: usize,
        /// The value written.
        value: u32,
    },
    /// Cut the input at `pos`.
    Truncate {
        /// New length (modulo the length).
        pos: usize,
    },
    /// Append bytes.
    Extend(Vec<u8>),
    /// Insert bytes at `pos`.
    Insert {
        /// Position.
        pos: usize,
        /// The bytes inserted.
        bytes: Vec<u8>,
    },
    /// Remove up to `len` bytes at `pos`.
    Remove {
        /// Position.
        pos: usize,
        /// Most bytes removed.
        len: usize,
    },
}

/// A random mutation; `u32` values favour the boundaries decoders check.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    let value = prop_oneof![
        Just(0u32),
        Just(1u32),
        Just(u32::MAX),
        0u32..600,
        any::<u32>()
    ];
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(pos, xor)| Mutation::Flip { pos, xor }),
        2 => (any::<usize>(), value).prop_map(|(pos, value)| Mutation::SetU32 { pos, value }),
        1 => any::<usize>().prop_map(|pos| Mutation::Truncate { pos }),
        1 => proptest::collection::vec(any::<u8>(), 1..64).prop_map(Mutation::Extend),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(pos, bytes)| Mutation::Insert { pos, bytes }),
        1 => (any::<usize>(), 1usize..64).prop_map(|(pos, len)| Mutation::Remove { pos, len }),
    ]
}

/// `bytes` with `mutations` applied in order.
pub fn mutate(bytes: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for m in mutations {
        let at = |pos: usize, len: usize| if len == 0 { 0 } else { pos % len };
        match m {
            Mutation::Flip { pos, xor } => {
                if !b.is_empty() {
                    let i = at(*pos, b.len());
                    b[i] ^= xor;
                }
            }
            Mutation::SetU32 { pos, value } => {
                if b.len() >= 4 {
                    let i = at(*pos, b.len() - 3);
                    b[i..i + 4].copy_from_slice(&value.to_be_bytes());
                }
            }
            Mutation::Truncate { pos } => b.truncate(at(*pos, b.len())),
            Mutation::Extend(extra) => b.extend_from_slice(extra),
            Mutation::Insert { pos, bytes } => {
                let i = at(*pos, b.len() + 1);
                b.splice(i..i, bytes.iter().copied());
            }
            Mutation::Remove { pos, len } => {
                if !b.is_empty() {
                    let i = at(*pos, b.len());
                    let end = (i + len).min(b.len());
                    b.drain(i..end);
                }
            }
        }
    }
    b
}

/// Inputs for a decoder: random bytes, or an entry of `corpus` (chosen by index) with one to
/// six mutations, or an entry as it is.
pub fn input(corpus: Vec<Vec<u8>>, max_random: usize) -> impl Strategy<Value = Vec<u8>> {
    assert!(!corpus.is_empty());
    let n = corpus.len();
    let pick = corpus.clone();
    prop_oneof![
        2 => proptest::collection::vec(any::<u8>(), 0..max_random),
        7 => (0..n, proptest::collection::vec(mutation(), 1..6))
            .prop_map(move |(i, m)| mutate(&corpus[i], &m)),
        1 => (0..n).prop_map(move |i| pick[i].clone()),
    ]
}
