//! Nodes check the keys a ceremony spec names before they encrypt a share to them.
//!
//! The chain selects a ceremony's committee and writes each player's share-encryption key
//! into the spec. A chain that named a key of its own for one player (and announced the
//! session id that spec makes, so the spec is self-consistent) would read every share dealt
//! to that player. Each node records the key every node registered with and refuses a spec
//! that names another: nobody deals, plays or posts, and each counts the refusal. Untampered,
//! the same network completes its view changes (every other test of this suite).

use crate::common;

use common::Harness;
use keyquorum_contract::Event;
use keyquorum_contract::config::KeyMode;
use keyquorum_contract::hex::Hex;
use keyquorum_contract::tx::TxBody;
use keyquorum_crypto::encrypt::EncryptionSecretKey;

const N: usize = 4;

#[test]
fn a_spec_naming_an_encryption_key_a_player_did_not_register_gets_nobody_to_take_part() {
    let config = common::small_network("spec-checks", N as u32, 3, KeyMode::Fresh);
    let stakes: Vec<u64> = (0..N as u64).map(|i| 100 - i).collect();
    let mut h = Harness::new(config, &stakes);
    let chains_key = EncryptionSecretKey::from_seed(&[0x5e; 32]).public_key();
    h.tamper = Some(Box::new(move |e: &mut Event| {
        if let Event::CommitteeSelected {
            session_id, spec, ..
        } = e
        {
            spec.players[1].encryption_key = Hex(chains_key.to_bytes());
            *session_id = Hex(*spec.ceremony().unwrap().id());
        }
    }));
    h.run_until(60, |h| {
        h.events()
            .any(|e| matches!(e, Event::CommitteeSelected { .. }))
    });
    for _ in 0..20 {
        h.step();
    }
    for i in 0..N {
        assert!(
            h.sent[i].is_empty(),
            "node {i} sent {} messages",
            h.sent[i].len()
        );
        assert!(
            !h.submitted[i]
                .iter()
                .any(|b| matches!(b, TxBody::DkgPost { .. })),
            "node {i} posted"
        );
        assert!(
            h.metrics[i].get(
                "keyquorum_faults_seen_total",
                &[("fault", "ceremony_spec_mismatch")]
            ) >= 1.0,
            "node {i}"
        );
    }
    assert_eq!(h.contract.state().current_view, 0);
}
