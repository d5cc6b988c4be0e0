//! Fuzz harness of what the node decodes from its own data file: the participant input log
//! entries ([`decode_input`]) and the state record ([`decode_state`]). A data file can be
//! damaged or edited, so these decoders must give a typed error, never a panic.
//!
//! Inputs are random bytes and, mostly, valid encodings with mutations (`keyquorum_dkg::testing::
//! fuzzing`): every kind of input log entry, and the state of a node that followed a view
//! change (registry, running ceremony with its spec, outputs, shares, pending magic block).
//! Properties: no panic; an input entry that decodes re-encodes to exactly its bytes; a state
//! that decodes re-encodes to JSON that decodes to the same state. `KQ_FUZZ_CASES=<n>` sets the
//! number of cases (see `docs/testing.md`).

use crate::common;

use std::sync::OnceLock;

use common::Harness;
use keyquorum_contract::{ContractConfig, Size};
use keyquorum_dkg::participant::Input;
use keyquorum_dkg::testing::fuzzing;
use keyquorum_node::NodeKeys;
use keyquorum_node::store::{decode_input, decode_state, encode_input};
use proptest::prelude::*;

/// Input log entries of every kind.
fn input_corpus() -> Vec<Vec<u8>> {
    let from = NodeKeys::from_master(&[3; 32]).identity().public().clone();
    [
        Input::Start,
        Input::Deadline,
        Input::BoardPost(vec![0x5a; 120]),
        Input::Message {
            from,
            payload: vec![16; 64],
        },
    ]
    .iter()
    .map(encode_input)
    .collect()
}

/// Stored states of nodes that ran a view change: in the middle of it and after it.
fn state_corpus() -> &'static Vec<Vec<u8>> {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut c = ContractConfig::defaults("fuzz-store", 4);
        c.committee.min_size = 4;
        c.committee.threshold = Size::Count(3);
        c.committee.quorum = Size::Count(3);
        c.first_view_change = 2;
        let mut h = Harness::new(c, &[100, 99, 98, 97]);
        let mut out = Vec::new();
        for _ in 0..4 {
            h.step();
        }
        out.push(serde_json::to_vec(h.driver(0).state()).unwrap());
        h.run_until(200, |h| h.contract.state().current_view >= 1);
        out.push(serde_json::to_vec(h.driver(1).state()).unwrap());
        out
    })
}

proptest! {
    #![proptest_config(fuzzing::config(2000))]

    #[test]
    fn input_log_entries_decode_to_typed_errors_or_their_own_bytes(
        bytes in fuzzing::input(input_corpus(), 200),
    ) {
        if let Ok(input) = decode_input(&bytes) {
            prop_assert_eq!(encode_input(&input), bytes);
        }
    }

    #[test]
    fn stored_states_decode_to_typed_errors_or_stable_states(
        bytes in fuzzing::input(state_corpus().clone(), 400),
    ) {
        if let Ok(state) = decode_state(&bytes) {
            let again = decode_state(&serde_json::to_vec(&state).unwrap()).unwrap();
            prop_assert_eq!(again, state);
        }
    }
}

#[test]
fn the_corpora_decode() {
    for b in input_corpus() {
        decode_input(&b).unwrap();
    }
    for b in state_corpus() {
        let s = decode_state(b).unwrap();
        assert!(!s.registry.is_empty());
    }
}

/// The running ceremony was stored as `session` before it was named `ceremony`: a data file
/// written then still loads, to the same state.
#[test]
fn a_state_stored_under_the_earlier_field_name_loads() {
    let stored = &state_corpus()[0];
    let current = decode_state(stored).unwrap();
    assert!(
        current.ceremony.is_some(),
        "the corpus state runs a ceremony"
    );
    let mut old: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(stored).unwrap();
    let record = old.remove("ceremony").expect("stored as `ceremony`");
    assert!(!old.contains_key("session"));
    old.insert("session".into(), record);
    let old = serde_json::to_vec(&old).unwrap();
    assert_eq!(decode_state(&old).unwrap(), current);
}
