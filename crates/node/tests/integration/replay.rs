//! Persistence and replay, in one process: four drivers follow a contract run block by block
//! (the same events the chain serves), their direct messages routed between them. One driver is
//! dropped in the middle of the share phase, as if killed, and reopened on its database: it
//! must come back with exactly the deals and acks it had produced (byte for byte, so it can
//! never send two different shares), its commitment must not be posted twice, and the view
//! change must then complete, fresh and then resharing, with everyone agreeing on the key.

use std::collections::BTreeMap;

use keyquorum_contract::config::KeyMode;
use keyquorum_contract::tx::TxBody;
use keyquorum_contract::{ContractConfig, Event};
use keyquorum_node::chain::ChainAction;
use keyquorum_node::driver::{EMPTY_BLOCKS_PER_CHECKPOINT, Effect};
use keyquorum_node::store::{NodeState, Store};

use crate::common;

use common::Harness;

const N: usize = 4;
const STAKES: [u64; N] = [100, 99, 98, 97];
const CRASH: usize = 1;

fn config() -> ContractConfig {
    common::small_network("replay-test", N as u32, 3, KeyMode::Reshare)
}

/// Whether the contract's view change is in its share phase.
fn share_phase(h: &Harness) -> bool {
    h.contract
        .state()
        .change
        .as_ref()
        .is_some_and(|c| c.phase == keyquorum_contract::ViewChangePhase::Share)
}

fn harness(config: ContractConfig) -> Harness {
    Harness::new(config, &STAKES)
}

#[test]
fn a_killed_driver_replays_to_the_same_messages_and_the_view_changes_complete() {
    let mut h = harness(config());
    while !share_phase(&h) {
        h.step();
        assert!(h.height < 50);
    }
    // Kill it: drop the driver without any shutdown; whatever it committed is all there is.
    let before = h.sent[CRASH].clone();
    assert!(!before.is_empty(), "it had dealt and acked");
    h.drivers[CRASH] = None;
    // The chain moves on for a block while it is down.
    h.step();
    let effects = h.reopen(CRASH);
    let resent: Vec<(Vec<u8>, Vec<u8>)> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { to, payload, .. } => Some((to.clone(), payload.clone())),
            _ => None,
        })
        .collect();
    // Replay produced exactly the messages it had sent, byte for byte (deals carry HPKE
    // ciphertexts drawn from the seeded RNG: a different seed or order would differ).
    assert_eq!(resent, before);
    // Its contribution is on the board already: not submitted again (signature 48 bytes, then
    // tag 1). Its log, which it posted early in the share phase, may be submitted again, byte
    // for byte.
    for e in &effects {
        if let Effect::Submit(s) = e
            && let ChainAction::Tx(TxBody::DkgPost { post }) = &s.action
        {
            assert_ne!(post.get(48), Some(&1), "contribution submitted again");
            assert!(h.posts(CRASH).contains(post), "a post it had not made");
        }
    }
    h.apply(CRASH, effects);
    h.redeliver();
    while h.contract.state().current_view < 2 {
        h.step();
        assert!(h.height < 200, "view changes did not complete");
    }
    // No fault was recorded against anyone, in particular no equivocation by the restarted node.
    assert!(
        h.contract.state().slashings.is_empty(),
        "{:?}",
        h.contract.state().slashings
    );
    // One contribution per ceremony (signature 48 bytes, tag 1, then the session id).
    let mut contributions: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for p in h.posts(CRASH).iter().filter(|p| p.get(48) == Some(&1)) {
        let previous = contributions.insert(p[49..81].to_vec(), p.clone());
        assert!(previous.is_none_or(|q| &q == p));
    }
    assert_eq!(contributions.len(), 2);
    let v1 = h.contract.view(1).unwrap().magic_block.block.clone();
    let v2 = h.contract.view(2).unwrap().magic_block.block.clone();
    assert_eq!(v1.group_key, v2.group_key);
    assert_eq!(v1.members.len(), N);
    for (i, d) in h.drivers.iter().enumerate() {
        let d = d.as_ref().unwrap();
        assert_eq!(d.state().current_view, 2, "node {i}");
        let share = d.state().shares.iter().find(|s| s.view == 2).unwrap();
        assert_eq!(share.group_key, hex::encode(v2.group_key.0), "node {i}");
        // The previous view's share is kept for the handover, older ones are not.
        assert!(d.state().shares.iter().all(|s| s.view >= 1));
        assert!(d.state().ceremony.is_none());
    }
    // Both view changes were signed by both committees.
    assert!(h.events().any(|e| matches!(
        e,
        Event::MagicBlockSigned {
            view: 2,
            role: keyquorum_contract::SignerRole::Old,
            ..
        }
    )));
}

/// Drivers follow phases that the contract closes before their deadlines (the end of a phase
/// reaches them as a `BoardDeadline` event, early or not): both view changes complete in a
/// handful of blocks where the deadlines alone would take over a hundred, and every driver ends
/// with the same key and shares as when every deadline is waited out.
#[test]
fn drivers_follow_phases_that_close_early() {
    const LEN: u64 = 30;
    let run = |close_early: bool| {
        let mut c = config();
        c.phases.contribute = LEN;
        c.phases.share = LEN;
        c.phases.publish = LEN;
        c.phases.wait = LEN;
        c.phases.close_early = close_early;
        let mut h = harness(c);
        while h.contract.state().current_view < 2 {
            h.step();
            assert!(h.height < 20 * LEN, "view changes did not complete");
        }
        assert!(h.contract.state().slashings.is_empty());
        let v1 = h.contract.view(1).unwrap().magic_block.block.clone();
        let v2 = h.contract.view(2).unwrap().magic_block.block.clone();
        assert_eq!(v1.group_key, v2.group_key);
        let mut shares = Vec::new();
        for (i, d) in h.drivers.iter().enumerate() {
            let d = d.as_ref().unwrap();
            assert_eq!(d.state().current_view, 2, "node {i}");
            assert!(d.state().ceremony.is_none(), "node {i}");
            let mut own: Vec<_> = d
                .state()
                .shares
                .iter()
                .map(|s| {
                    assert_eq!(s.group_key, hex::encode(v2.group_key.0), "node {i}");
                    (s.view, s.index)
                })
                .collect();
            own.sort();
            shares.push(own);
        }
        // Who is in the view, at which index (keys differ between runs: nodes draw their
        // polynomials from the OS).
        let members: Vec<_> = v2.members.iter().map(|m| (m.index, m.identity)).collect();
        (h.height, shares, members)
    };
    let (early_height, early_shares, early_members) = run(true);
    let (waited_height, waited_shares, waited_members) = run(false);
    // Start at block 2, then two view changes of a few blocks each, two blocks apart.
    assert!(early_height < LEN, "{early_height} blocks");
    assert!(waited_height > 7 * LEN, "{waited_height} blocks");
    assert_eq!(early_shares, waited_shares);
    assert_eq!(early_members, waited_members);
}

/// The active view's magic block names the committee that signs the next handover; a node that
/// combines handover partials off chain (the EVM coordinator) checks them against it, so it
/// must survive a restart, and each activation replaces it.
#[test]
fn a_reopened_driver_still_holds_the_active_views_magic_block() {
    let mut h = harness(config());
    h.run_until(200, |h| h.contract.state().current_view == 1);
    let first = h
        .driver(0)
        .active_block()
        .cloned()
        .expect("recorded at activation");
    assert_eq!(first.view, 1);
    h.run_until(400, |h| h.contract.state().current_view == 2);
    let second = h
        .driver(0)
        .active_block()
        .cloned()
        .expect("recorded at activation");
    assert_eq!(second.view, 2);
    assert_eq!(second.previous_hash.0, first.hash());
    assert_eq!(
        h.driver(0).state().current_hash,
        Some(hex::encode(second.hash()))
    );
    h.drivers[0] = None;
    h.reopen(0);
    assert_eq!(h.driver(0).active_block(), Some(&second));
}

/// Whether the last block holds nothing: no transaction and no end-of-block event.
fn last_block_empty(h: &Harness) -> bool {
    let b = h.blocks.last().unwrap();
    b.txs.is_empty() && b.end_block_events.is_empty()
}

/// A chain that ran view 1's view change and then `empty` empty blocks (no view change follows
/// for 1,000 blocks).
fn idle_after_view_1(empty: u64) -> Harness {
    let mut c = config();
    c.view_length = 1_000;
    let mut h = harness(c);
    while h.contract.state().current_view < 1 || !last_block_empty(&h) {
        h.step();
        assert!(h.height < 100, "view 1 did not settle");
    }
    for _ in 0..empty {
        h.step();
        assert!(last_block_empty(&h), "block {} is not empty", h.height);
    }
    h
}

/// Drops node `i`'s driver, as if killed, and reads the state its database holds.
fn kill_and_read_state(h: &mut Harness, i: usize) -> NodeState {
    h.drivers[i] = None;
    Store::open(&h.paths[i])
        .unwrap()
        .load_state()
        .unwrap()
        .unwrap()
}

/// A block with nothing in it moves only the cursor, so the driver does not write it (most
/// blocks are empty, and a synced write of the whole state per block was most of an idle
/// node's work). Killed after empty blocks, a node restarts at the cursor it last wrote,
/// processes those blocks again and ends exactly where it was; after
/// `EMPTY_BLOCKS_PER_CHECKPOINT` empty blocks the cursor is written anyway.
#[test]
fn empty_blocks_are_not_written_and_a_killed_driver_processes_them_again() {
    const EMPTY: u64 = 5;
    let mut h = idle_after_view_1(EMPTY);
    const NODE: usize = 0;
    let in_memory = h.driver(NODE).state().clone();
    let (sent, submitted) = (h.sent[NODE].len(), h.submitted[NODE].len());
    assert_eq!(in_memory.cursor, h.height + 1);
    let stored = kill_and_read_state(&mut h, NODE);
    assert!(
        stored.cursor + EMPTY <= in_memory.cursor,
        "empty blocks were written: cursor {} on disk, {} in memory",
        stored.cursor,
        in_memory.cursor
    );
    // Everything but the cursor is on disk.
    let only_cursor_moved = NodeState {
        cursor: in_memory.cursor,
        ..stored.clone()
    };
    assert_eq!(only_cursor_moved, in_memory);

    // Reopened, it processes the empty blocks again (with the next one) and ends where it
    // would have been, as the nodes that stayed up are.
    let effects = h.reopen(NODE);
    h.apply(NODE, effects);
    h.step();
    let again = h.driver(NODE).state().clone();
    assert_eq!(
        again,
        NodeState {
            cursor: h.height + 1,
            ..in_memory.clone()
        }
    );
    assert_eq!(again.current_hash, h.driver(1).state().current_hash);
    // Processing them again sent and submitted nothing.
    assert_eq!(h.sent[NODE].len(), sent);
    assert_eq!(h.submitted[NODE].len(), submitted);

    // Enough empty blocks in a row and the cursor is written anyway.
    for _ in 0..EMPTY_BLOCKS_PER_CHECKPOINT {
        h.step();
        assert!(last_block_empty(&h), "block {} is not empty", h.height);
    }
    let in_memory = h.driver(NODE).state().cursor;
    let stored = kill_and_read_state(&mut h, NODE);
    assert!(
        stored.cursor + EMPTY_BLOCKS_PER_CHECKPOINT > in_memory,
        "no checkpoint: cursor {} on disk, {in_memory} in memory",
        stored.cursor
    );
}

/// A node that stops, rather than being killed, writes the cursor of the empty blocks it
/// processed since its last write (`Driver::checkpoint`, which the runtime calls at a stop), so
/// it restarts where it stopped instead of processing them again.
#[test]
fn a_checkpoint_writes_the_cursor_the_empty_blocks_moved() {
    let mut h = idle_after_view_1(5);
    const NODE: usize = 0;
    let in_memory = h.driver(NODE).state().clone();
    h.drivers[NODE].as_mut().unwrap().checkpoint().unwrap();
    assert_eq!(kill_and_read_state(&mut h, NODE), in_memory);
}
