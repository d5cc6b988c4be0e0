//! Fuzz harness of the client's decoders: what a chain (or anything listening on its port)
//! answers is untrusted input to a node.
//!
//! Inputs are well-formed answers of every kind (events page with blocks, status, submit
//! answer, transaction lookup, error body) with their JSON values replaced by values of other
//! types and edge values, or their bytes mutated, or random bytes; each is decoded as every
//! answer type under a success status and an error status. Properties: no panic; a success
//! status gives the value or a `Decode` error, an error status gives an `Api` error (with the
//! body's code) or a `Decode` error, both carrying the status; whatever decodes re-encodes to
//! JSON that decodes to the same value. `KQ_FUZZ_CASES=<n>` sets the number of cases (see
//! `docs/testing.md`).

use std::fmt::Debug;

use keyquorum_devchain::api::{
    Block, ErrorBody, EventsPage, Status, Submitted, TxLookup, TxReceipt, TxRejection,
};
use keyquorum_devchain::client::decode;
use keyquorum_devchain::{ClientError, block_hash};
use keyquorum_dkg::testing::fuzzing;
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn block(height: u64) -> Block {
    let txs = vec![
        TxReceipt {
            hash: [height as u8; 32],
            tx: b"raw transaction".to_vec(),
            events: vec![json!({"type": "PostAccepted", "post": "00ff", "dealer": 3})],
            rejected: None,
        },
        TxReceipt {
            hash: [0xee; 32],
            tx: vec![0, 1, 2],
            events: vec![],
            rejected: Some(TxRejection::new("stale_nonce", "nonce 3 already used")),
        },
    ];
    Block {
        height,
        hash: block_hash(
            height,
            &[7; 32],
            1_700_000_000_000,
            txs.iter().map(|t| &t.hash),
        ),
        parent_hash: [7; 32],
        time_ms: 1_700_000_000_000,
        txs,
        end_block_events: vec![json!({"type": "BoardDeadline", "view": 2})],
    }
}

/// One well-formed answer of every kind, as JSON.
fn answers() -> Vec<Value> {
    let page = EventsPage {
        from: 5,
        next: 7,
        height: 9,
        blocks: vec![block(5), block(6)],
    };
    vec![
        serde_json::to_value(page).unwrap(),
        serde_json::to_value(Status {
            height: 9,
            block_hash: [3; 32],
            pending_txs: 2,
            state: Some(json!({"chain_id": "kq", "view": 1, "phase": "share"})),
        })
        .unwrap(),
        serde_json::to_value(Submitted { hash: [4; 32] }).unwrap(),
        serde_json::to_value(TxLookup::Included {
            hash: [5; 32],
            height: 3,
            index: 1,
            events: vec![json!({"type": "Registered"})],
            rejected: Some(TxRejection::new("bad_signature", "no")),
        })
        .unwrap(),
        serde_json::to_value(TxLookup::Pending { hash: [6; 32] }).unwrap(),
        serde_json::to_value(ErrorBody {
            error: "duplicate_tx".into(),
            reason: "already submitted".into(),
        })
        .unwrap(),
        serde_json::to_value(block(1)).unwrap(),
    ]
}

/// Values that stand in for a field: other types, boundary numbers, bad hex.
fn replacement() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(-1)),
        Just(json!(u64::MAX)),
        Just(json!(1.5e300)),
        Just(json!("zz")),
        Just(json!("0".repeat(63))),
        Just(json!([])),
        Just(json!({})),
        Just(json!(true)),
        Just(json!({"error": 1, "reason": null})),
        any::<u64>().prop_map(|n| json!(n)),
        "[a-z0-9_]{0,70}".prop_map(Value::String),
    ]
}

/// Every node of a JSON tree in pre-order, as JSON pointers.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                pointers(c, format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A change to a JSON answer: a node replaced, a key removed, or an unknown key added.
#[derive(Debug, Clone)]
enum JsonMutation {
    Replace(usize, Value),
    Remove(usize),
    AddKey(usize),
}

fn json_mutation() -> impl Strategy<Value = JsonMutation> {
    prop_oneof![
        3 => (any::<usize>(), replacement()).prop_map(|(i, v)| JsonMutation::Replace(i, v)),
        1 => any::<usize>().prop_map(JsonMutation::Remove),
        1 => any::<usize>().prop_map(JsonMutation::AddKey),
    ]
}

fn apply(mut v: Value, mutations: &[JsonMutation]) -> Value {
    for m in mutations {
        let mut all = Vec::new();
        pointers(&v, String::new(), &mut all);
        let pick = |i: &usize| all[i % all.len()].clone();
        match m {
            JsonMutation::Replace(i, with) => {
                let p = pick(i);
                if p.is_empty() {
                    v = with.clone();
                } else if let Some(node) = v.pointer_mut(&p) {
                    *node = with.clone();
                }
            }
            JsonMutation::Remove(i) => {
                let p = pick(i);
                if let Some((parent, key)) = p.rsplit_once('/')
                    && let Some(Value::Object(map)) = v.pointer_mut(parent)
                {
                    map.remove(key);
                }
            }
            JsonMutation::AddKey(i) => {
                let p = pick(i);
                if let Some(Value::Object(map)) = v.pointer_mut(&p) {
                    map.insert("unexpected".into(), json!(1));
                }
            }
        }
    }
    v
}

/// Bytes to decode: a mutated answer (as JSON or as bytes) or random bytes.
fn input() -> impl Strategy<Value = Vec<u8>> {
    let corpus: Vec<Vec<u8>> = answers()
        .iter()
        .map(|v| serde_json::to_vec(v).unwrap())
        .collect();
    let n = answers().len();
    prop_oneof![
        5 => (0..n, proptest::collection::vec(json_mutation(), 1..4))
            .prop_map(move |(i, m)| serde_json::to_vec(&apply(answers()[i].clone(), &m)).unwrap()),
        3 => fuzzing::input(corpus, 256),
    ]
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(200u16),
        Just(400),
        Just(404),
        Just(409),
        Just(413),
        Just(500),
        Just(503),
        100u16..600,
    ]
}

/// Decodes `body` as `T` under `status`, checking the properties of the module docs.
fn check<T: DeserializeOwned + Serialize + PartialEq + Debug>(status: u16, body: &[u8]) {
    match decode::<T>("/fuzz", status, body) {
        Ok(v) => {
            assert!(
                (200..300).contains(&status),
                "an error status decoded as a value"
            );
            let again: T = serde_json::from_slice(&serde_json::to_vec(&v).unwrap()).unwrap();
            assert_eq!(again, v);
        }
        Err(ClientError::Api {
            status: s, code, ..
        }) => {
            assert!(!(200..300).contains(&status));
            assert_eq!(s, status);
            let parsed: ErrorBody = serde_json::from_slice(body).unwrap();
            assert_eq!(parsed.error, code);
        }
        Err(ClientError::Decode { status: s, .. }) => assert_eq!(s, status),
        Err(other) => panic!("decoding gave {other:?}"),
    }
}

fn check_all(status: u16, body: &[u8]) {
    check::<EventsPage>(status, body);
    check::<Status>(status, body);
    check::<Submitted>(status, body);
    check::<TxLookup>(status, body);
    check::<Block>(status, body);
    check::<ErrorBody>(status, body);
}

proptest! {
    #![proptest_config(fuzzing::config(3000))]

    #[test]
    fn decoders_give_values_or_typed_errors(body in input(), status in status()) {
        check_all(status, &body);
        check_all(200, &body);
    }
}

#[test]
fn the_corpus_decodes() {
    let answers = answers();
    let ok = |i: usize| serde_json::to_vec(&answers[i]).unwrap();
    assert_eq!(
        decode::<EventsPage>("/", 200, &ok(0)).unwrap().blocks.len(),
        2
    );
    assert_eq!(decode::<Status>("/", 200, &ok(1)).unwrap().height, 9);
    assert_eq!(decode::<Submitted>("/", 200, &ok(2)).unwrap().hash, [4; 32]);
    assert!(matches!(
        decode::<TxLookup>("/", 200, &ok(3)).unwrap(),
        TxLookup::Included { .. }
    ));
    let e = decode::<Submitted>("/", 409, &ok(5)).unwrap_err();
    assert_eq!(e.code(), Some("duplicate_tx"));
    // A mutation that changes a hash's length is refused, not truncated or padded.
    let short = apply(
        answers[2].clone(),
        &[JsonMutation::Replace(1, json!("00ff"))],
    );
    assert!(decode::<Submitted>("/", 200, &serde_json::to_vec(&short).unwrap()).is_err());
}
