//! Fuzz harness of magic-block decoding and verification: the JSON a node or a light client
//! reads from the chain's API or from a file (`SignedMagicBlock` through serde), then
//! `MagicBlock::hash` and `verify_magic_block_chain`.
//!
//! The corpus is a signed three-block chain (fresh key, reshare, fresh key). Inputs are random
//! bytes, the chain's JSON with byte mutations, and structure-aware mutations that replace up to
//! three values anywhere in a block's JSON tree, mostly with a value of the same type at a
//! boundary (numbers at 0, off by one and at `u32::MAX` and `u64::MAX`; hex with a flipped
//! digit, odd, too long, empty or not hex; arrays emptied, doubled, reversed, shortened; a
//! missing signature filled in), sometimes with another type, so that the verifier sees
//! well-formed but hostile blocks. Properties:
//! nothing panics; what decodes re-encodes to JSON that decodes to the same block; and a chain
//! with a mutated block verifies only if the mutation changed nothing the verifier covers (the
//! block, its hash, its signatures; the first block's handover signature is not covered).
//! `KQ_FUZZ_CASES=<n>` sets the number of cases (see `docs/testing.md`).

use std::sync::OnceLock;

use keyquorum_contract::config::KeyMode;
use keyquorum_contract::hex::{Bytes, Hex};
use keyquorum_contract::magic::{MagicBlockMember, signing_message};
use keyquorum_contract::tx::SignerRole;
use keyquorum_contract::{MagicBlock, SignedMagicBlock, verify_magic_block_chain};
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_crypto::{Bls12381G1, Bls12381G2, Curve};
use keyquorum_dkg::testing::fuzzing;
use proptest::prelude::*;
use serde_json::Value;

type Scalar = <Bls12381G1 as Curve>::Scalar;

fn key(i: u64) -> Secret<Scalar> {
    Secret::new(Scalar::from(7000 + i))
}

fn public(sk: &Secret<Scalar>) -> Hex<48> {
    Hex::from_slice(&Bls12381G1::point_bytes(&tbls::public_key::<MinPk>(sk))).unwrap()
}

fn sig(sk: &Secret<Scalar>, role: SignerRole, hash: &[u8; 32]) -> Hex<96> {
    let s = tbls::sign::<MinPk>(sk, &signing_message(role, hash));
    Hex::from_slice(&Bls12381G2::point_bytes(&s)).unwrap()
}

fn block(
    view: u64,
    sk: &Secret<Scalar>,
    mode: KeyMode,
    previous: Option<&SignedMagicBlock>,
) -> SignedMagicBlock {
    let b = MagicBlock {
        chain_id: "fuzz".into(),
        view,
        ceremony_number: 1,
        key_mode: mode,
        session_id: Hex([view as u8; 32]),
        n: 3,
        t: 2,
        k: 2,
        group_key: public(sk),
        members: (1..=2u64)
            .map(|i| MagicBlockMember {
                index: i,
                identity: Hex([i as u8; 96]),
                encryption_key: Hex([i as u8 + 10; 32]),
                peer_id: Bytes(vec![i as u8, 2, 3]),
                addresses: vec![format!("/ip4/127.0.0.1/tcp/{}", 4000 + i)],
                public_share: public(&key(100 + i)),
            })
            .collect(),
        previous_hash: previous.map(|p| p.hash).unwrap_or_default(),
        first_round: view * 50,
        beacon: Default::default(),
    };
    let hash = b.hash();
    SignedMagicBlock {
        block: b,
        hash: Hex(hash),
        signature: Some(sig(sk, SignerRole::New, &hash)),
        // Both later blocks follow a view under key 1.
        previous_signature: previous.map(|_| sig(&key(1), SignerRole::Old, &hash)),
    }
}

/// Fresh key 1, reshare (key 1 kept), fresh key 2; and its genesis key.
fn chain() -> &'static (Vec<SignedMagicBlock>, [u8; 48]) {
    static CHAIN: OnceLock<(Vec<SignedMagicBlock>, [u8; 48])> = OnceLock::new();
    CHAIN.get_or_init(|| {
        let b1 = block(1, &key(1), KeyMode::Fresh, None);
        let b2 = block(2, &key(1), KeyMode::Reshare, Some(&b1));
        let b3 = block(3, &key(2), KeyMode::Fresh, Some(&b2));
        let genesis = b1.block.group_key.0;
        let c = vec![b1, b2, b3];
        assert_eq!(verify_magic_block_chain(&genesis, &c), Ok(()));
        (c, genesis)
    })
}

fn corpus() -> Vec<Vec<u8>> {
    chain()
        .0
        .iter()
        .map(|b| serde_json::to_vec(b).unwrap())
        .collect()
}

/// A replacement for `old`: mostly of the same JSON type (so the block still decodes and
/// reaches the verifier) at the boundaries decoders and checks care about, sometimes of another
/// type. `choice` selects among them.
fn hostile_for(old: &Value, choice: u8) -> Value {
    use serde_json::json;
    let other = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1.5),
        json!({}),
        json!([[]]),
    ];
    if choice % 8 == 7 {
        return other[(choice as usize / 8) % other.len()].clone();
    }
    match old {
        Value::Number(n) => {
            let x = n.as_u64().unwrap_or(0);
            let options = [
                0,
                1,
                x.wrapping_add(1),
                x.saturating_sub(1),
                u32::MAX as u64,
                u64::MAX,
            ];
            json!(options[choice as usize % options.len()])
        }
        Value::String(h) => {
            let mut flipped = h.clone().into_bytes();
            if let Some(c) = flipped.first_mut() {
                *c = if *c == b'0' { b'1' } else { b'0' };
            }
            let options = [
                String::from_utf8(flipped).unwrap_or_default(),
                h[..h.len() / 2].to_string(),
                h.get(1..).unwrap_or_default().to_string(),
                format!("{h}00"),
                String::new(),
                "zz".repeat(h.len() / 2),
                "fresh".into(),
                "reshare".into(),
            ];
            json!(options[choice as usize % options.len()])
        }
        Value::Array(items) => {
            let options = [
                json!([]),
                json!(
                    items
                        .iter()
                        .chain(items.iter())
                        .cloned()
                        .collect::<Vec<_>>()
                ),
                json!(items.iter().rev().cloned().collect::<Vec<_>>()),
                json!(items.iter().skip(1).cloned().collect::<Vec<_>>()),
            ];
            options[choice as usize % options.len()].clone()
        }
        Value::Null => json!("ab".repeat(96)),
        _ => json!(null),
    }
}

/// Replaces the `pick`-th node (in a depth-first walk) of `v` with a hostile value for it.
fn replace_nth(v: &mut Value, pick: &mut usize, choice: u8) -> bool {
    if *pick == 0 {
        *v = hostile_for(v, choice);
        return true;
    }
    *pick -= 1;
    match v {
        Value::Array(items) => items.iter_mut().any(|x| replace_nth(x, pick, choice)),
        Value::Object(map) => map.values_mut().any(|x| replace_nth(x, pick, choice)),
        _ => false,
    }
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(map) => map.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// A block of the chain (by index) with up to three values replaced, as JSON bytes.
fn structured() -> impl Strategy<Value = (usize, Vec<u8>)> {
    (
        0usize..3,
        proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    )
        .prop_map(|(i, edits)| {
            let mut v = serde_json::to_value(&chain().0[i]).unwrap();
            for (pick, choice) in edits {
                let mut pick = pick % count_nodes(&v);
                replace_nth(&mut v, &mut pick, choice);
            }
            (i, serde_json::to_vec(&v).unwrap())
        })
}

/// Decodes `bytes` as a signed magic block and exercises everything a reader does with one.
/// Returns the block if it decoded.
fn decode_and_use(bytes: &[u8]) -> Option<SignedMagicBlock> {
    let b = serde_json::from_slice::<SignedMagicBlock>(bytes).ok()?;
    let again: SignedMagicBlock = serde_json::from_slice(&serde_json::to_vec(&b).unwrap())
        .expect("what decodes re-encodes to JSON that decodes");
    assert_eq!(again, b);
    assert_eq!(b.block.hash(), again.block.hash());
    let _ = b.block.first_difference(&chain().0[0].block);
    let _ = verify_magic_block_chain(&b.block.group_key.0, std::slice::from_ref(&b));
    Some(b)
}

proptest! {
    #![proptest_config(fuzzing::config(512))]

    /// Random and byte-mutated JSON: typed errors or a block that round-trips; never a panic.
    #[test]
    fn decoding_bytes(bytes in fuzzing::input(corpus(), 2000)) {
        decode_and_use(&bytes);
    }

    /// Structure-aware mutations of one block of the chain: the chain with that block replaced
    /// verifies only if the block is unchanged.
    #[test]
    fn decoding_and_verifying_mutated_blocks((i, bytes) in structured()) {
        let (blocks, genesis) = chain();
        if let Some(b) = decode_and_use(&bytes) {
            let mut c = blocks.clone();
            c[i] = b.clone();
            if verify_magic_block_chain(genesis, &c).is_ok() {
                // Everything the verifier covers is unchanged: the block, its hash, its
                // signature, and the handover signature except on the first block, whose
                // previous committee's key the verifier does not have.
                prop_assert_eq!(&b.block, &blocks[i].block);
                prop_assert_eq!(b.hash, blocks[i].hash);
                prop_assert_eq!(b.signature, blocks[i].signature);
                if i > 0 {
                    prop_assert_eq!(b.previous_signature, blocks[i].previous_signature);
                }
            }
            let _ = verify_magic_block_chain(genesis, &c[i..]);
        }
    }
}

/// The structure-aware strategy reaches the verifier: some mutations decode, and the chain
/// rejects them (a harness whose inputs never decode would test nothing).
#[test]
fn mutations_decode_and_are_refused() {
    let (blocks, genesis) = chain();
    let mut v = serde_json::to_value(&blocks[1]).unwrap();
    v["block"]["view"] = serde_json::json!(u64::MAX);
    let b: SignedMagicBlock = serde_json::from_value(v).unwrap();
    let mut c = blocks.clone();
    c[1] = b;
    assert!(verify_magic_block_chain(genesis, &c).is_err());
    let mut v = serde_json::to_value(&blocks[2]).unwrap();
    v["block"]["members"] = serde_json::json!([]);
    assert!(serde_json::from_value::<SignedMagicBlock>(v.clone()).is_ok());
    c = blocks.clone();
    c[2] = serde_json::from_value(v).unwrap();
    assert!(verify_magic_block_chain(genesis, &c).is_err());
    let mut v = serde_json::to_value(&blocks[0]).unwrap();
    v["hash"] = serde_json::json!("ab");
    assert!(serde_json::from_value::<SignedMagicBlock>(v).is_err());
}
