//! The beacon each driver fixes when a view is activated, over three view changes of a
//! simulated committee (fresh key, reshare, fresh key): the chain's genesis follows from the
//! activation block's time, a reshare continues the chain, a fresh key starts one that names
//! the previous, and every member's recorded group and share build a working beacon.

use crate::common;

use std::sync::Arc;

use common::{Harness, small_network};
use keyquorum_beacon::ChainInfo;
use keyquorum_contract::config::{KeyMode, ViewKeyMode};
use keyquorum_contract::{ContractConfig, Event};
use keyquorum_node::beacon::Beacon;
use keyquorum_node::beacon::store::BeaconStore;
use keyquorum_node::driver::{Effect, beacon_genesis_time};
use keyquorum_node::metrics::Metrics;

fn config() -> ContractConfig {
    let mut c = small_network("beacon-views", 4, 3, KeyMode::Reshare);
    c.key_mode_overrides.push(ViewKeyMode {
        view: 3,
        mode: KeyMode::Fresh,
    });
    c
}

/// The chain every driver records for the active view (all the same), after checking each
/// member's record builds a beacon with its share.
fn chain_of_view(h: &Harness, view: u64, dir: &std::path::Path) -> ChainInfo {
    let mut chains = Vec::new();
    for i in 0..h.drivers.len() {
        let d = h.driver(i);
        let record = d.state().beacon.clone().expect("a beacon for the view");
        assert_eq!(record.view, view);
        assert_eq!(
            Some(&record.magic_block_hash),
            d.state().current_hash.as_ref()
        );
        let share = d.beacon_share().unwrap();
        assert_eq!(
            record.own_index,
            share.as_ref().map(|(index, _)| *index),
            "node {i}"
        );
        // Builds: the threshold and public shares interpolate to the group key, and the
        // node's share matches its public share.
        let store = Arc::new(BeaconStore::open(&dir.join(format!("v{view}n{i}.redb"))).unwrap());
        let beacon = Beacon::new(&record, share, store, Arc::new(Metrics::new()), false).unwrap();
        assert_eq!(beacon.is_member(), record.own_index.is_some());
        chains.push(ChainInfo::from_json(record.chain_info.as_bytes()).unwrap());
    }
    assert!(chains.windows(2).all(|w| w[0] == w[1]));
    chains.remove(0)
}

/// Height of the block that activated `view`.
fn activation_height(h: &Harness, view: u64) -> u64 {
    h.blocks
        .iter()
        .find(|b| {
            b.end_block_events
                .iter()
                .chain(b.txs.iter().flat_map(|t| t.events.iter()))
                .any(|e| matches!(e, Event::ViewActivated { view: v, .. } if *v == view))
        })
        .expect("activation block")
        .height
}

#[test]
fn each_view_fixes_its_chain_reshares_continue_it_and_fresh_keys_link_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(config(), &[100, 99, 98, 97]);
    h.run_until(200, |h| h.contract.state().current_view == 1);
    let first = chain_of_view(&h, 1, dir.path());
    let at = h
        .blocks
        .iter()
        .find(|b| b.height == activation_height(&h, 1))
        .unwrap()
        .time_ms;
    assert_eq!(first.genesis_time(), beacon_genesis_time(at, 3));
    assert_eq!(first.period_secs(), 3);
    assert!(first.link().unwrap().previous_chain_hash.is_none());

    h.run_until(400, |h| h.contract.state().current_view == 2);
    let second = chain_of_view(&h, 2, dir.path());
    assert_eq!(second, first, "a reshare continues the chain");

    h.run_until(600, |h| h.contract.state().current_view == 3);
    let third = chain_of_view(&h, 3, dir.path());
    assert_ne!(third.hash(), first.hash());
    assert_eq!(
        third.link().unwrap().previous_chain_hash,
        Some(first.hash())
    );
    assert!(third.genesis_time() > first.genesis_time());

    // A restarted node runs the active view's beacon again.
    h.drivers[0] = None;
    let effects = h.reopen(0);
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::StartBeacon { view: 3 }))
    );
}
