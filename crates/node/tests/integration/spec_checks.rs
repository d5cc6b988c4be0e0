//! Nodes check the keys a ceremony spec names before they encrypt a share to them.
//!
//! The chain selects a ceremony's committee and writes each player's share-encryption key
//! (and, in the complaint variant, its verifiable-encryption key) into the spec. A chain that
//! named a key of its own for one player (and announced the session id that spec makes, so the
//! spec is self-consistent) would read every share dealt to that player. Each node records the
//! keys every node registered with and set, and refuses a spec that names others: nobody
//! deals, plays or posts, and each counts the refusal. Untampered, the same networks complete
//! their view changes (every other test of this suite).

use crate::common;

use common::Harness;
use keyquorum_contract::config::{DkgVariant, KeyMode};
use keyquorum_contract::hex::Hex;
use keyquorum_contract::tx::TxBody;
use keyquorum_contract::{CeremonySpec, ContractConfig, Event};
use keyquorum_crypto::encrypt::EncryptionSecretKey;
use keyquorum_crypto::verifiable_encrypt::VerifiableEncryptionSecretKey;
use keyquorum_node::store::Store;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const N: usize = 4;

fn network(chain_id: &str, variant: DkgVariant) -> ContractConfig {
    let mut c = common::small_network(chain_id, N as u32, 3, KeyMode::Fresh);
    c.dkg.variant = variant;
    c
}

fn harness(config: ContractConfig) -> Harness {
    let stakes: Vec<u64> = (0..N as u64).map(|i| 100 - i).collect();
    let mut h = Harness::new(config, &stakes);
    h.set_verifiable_keys();
    h
}

/// Runs `config`'s network with every ceremony spec rewritten by `rewrite` (and announced
/// under the session id the rewritten spec makes) until well past the first committee's
/// selection.
fn with_rewritten_specs(
    config: ContractConfig,
    rewrite: impl Fn(&mut CeremonySpec) + Send + 'static,
) -> Harness {
    let mut h = harness(config);
    h.tamper = Some(Box::new(move |e: &mut Event| {
        if let Event::CommitteeSelected {
            session_id, spec, ..
        } = e
        {
            rewrite(spec);
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
    h
}

/// No node sent a message or posted, each counted the refused spec, and no view was made.
fn assert_nobody_took_part(h: &Harness) {
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

#[test]
fn a_spec_naming_an_encryption_key_a_player_did_not_register_gets_nobody_to_take_part() {
    let chains_key = EncryptionSecretKey::from_seed(&[0x5e; 32]).public_key();
    let h = with_rewritten_specs(network("spec-checks", DkgVariant::AckReveal), move |spec| {
        spec.players[1].encryption_key = Hex(chains_key.to_bytes())
    });
    assert_nobody_took_part(&h);
}

#[test]
fn a_spec_naming_a_verifiable_key_a_player_did_not_set_gets_nobody_to_take_part() {
    let chains_key =
        VerifiableEncryptionSecretKey::generate(&mut ChaCha20Rng::from_seed([0x5e; 32]))
            .public_key();
    let h = with_rewritten_specs(
        network("spec-checks-complaint", DkgVariant::Complaint),
        move |spec| spec.verifiable_keys[1] = Hex(chains_key.to_bytes()),
    );
    assert_nobody_took_part(&h);
}

/// Drops every node and rewrites its stored state as a database made before the key records
/// existed would read (no keys recorded, not recorded from the start), or as a new one that
/// lost them (`from_start`), then reopens it.
fn without_key_records(h: &mut Harness, from_start: bool) {
    for i in 0..N {
        h.drivers[i] = None;
        let store = Store::open(&h.paths[i]).unwrap();
        let mut state = store.load_state().unwrap().unwrap();
        state.encryption_keys.clear();
        state.keys_recorded_from_start = from_start;
        let mut b = store.begin().unwrap();
        b.put_state(&state).unwrap();
        b.commit().unwrap();
        drop(store);
        let effects = h.reopen(i);
        h.apply(i, effects);
    }
}

/// All `N` nodes registered, before the first view change.
fn registered_network() -> Harness {
    let mut config = network("spec-checks-upgrade", DkgVariant::AckReveal);
    config.first_view_change = 6;
    let mut h = harness(config);
    h.run_until(5, |h| {
        h.events()
            .filter(|e| matches!(e, Event::Registered { .. }))
            .count()
            == N
    });
    h
}

/// A database from before the key records holds no key of the nodes registered before its
/// upgrade; its node takes the spec's keys for those (as it did before the check existed)
/// instead of sitting out every ceremony, and view 1 is made. A database that records keys
/// from the start and has none for a player refuses the spec: nobody takes part.
#[test]
fn a_database_from_before_the_key_records_takes_part_and_a_newer_one_refuses_unknown_keys() {
    let mut h = registered_network();
    without_key_records(&mut h, false);
    h.run_until(80, |h| h.contract.state().current_view >= 1);
    assert_eq!(h.contract.state().current_view, 1);

    let mut h = registered_network();
    without_key_records(&mut h, true);
    h.run_until(40, |h| {
        h.events()
            .any(|e| matches!(e, Event::CommitteeSelected { .. }))
    });
    for _ in 0..20 {
        h.step();
    }
    assert_nobody_took_part(&h);
}
