//! [`Replay`]: a follower's re-execution of served blocks accepts the blocks an honest chain
//! produced and refuses, at the block that does it, each way a chain can misreport one.

use keyquorum_devchain::testkit::{KvEvent, KvMachine, KvTx};
use keyquorum_devchain::{
    Block, GENESIS_PARENT, Replay, ReplayError, StateMachine, TxReceipt, block_hash,
};
use serde_json::json;

fn tx(from: &str, nonce: u64, key: &str, value: &str) -> Vec<u8> {
    KvTx::signed(from, nonce, key, value).to_bytes()
}

fn json_events<E: serde::Serialize>(events: Vec<E>) -> Vec<serde_json::Value> {
    events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

/// The blocks an honest chain makes of `blocks` (each a list of transactions) with a fresh
/// machine: every outcome recorded as the machine gave it, the hash chain intact.
fn produce(blocks: &[Vec<Vec<u8>>]) -> Vec<Block> {
    let mut sm = KvMachine::new(2);
    let mut parent = GENESIS_PARENT;
    let mut out = Vec::new();
    for (i, txs) in blocks.iter().enumerate() {
        let height = i as u64 + 1;
        let txs: Vec<TxReceipt> = txs
            .iter()
            .map(|tx| {
                let (events, rejected) = match sm.apply_tx(tx, height) {
                    Ok(events) => (json_events(events), None),
                    Err(r) => (Vec::new(), Some(r)),
                };
                TxReceipt {
                    hash: KvTx::hash_of(tx),
                    tx: tx.clone(),
                    events,
                    rejected,
                }
            })
            .collect();
        let end_block_events = json_events(sm.end_block(height));
        let time_ms = 1_000 * height;
        let hash = block_hash(height, &parent, time_ms, txs.iter().map(|r| &r.hash));
        out.push(Block {
            height,
            hash,
            parent_hash: parent,
            time_ms,
            txs,
            end_block_events,
        });
        parent = hash;
    }
    out
}

/// Four blocks: a write, a stale nonce (refused) beside a write, an empty block, a write;
/// blocks 2 and 4 end a phase.
fn honest() -> Vec<Block> {
    produce(&[
        vec![tx("alice", 1, "k", "a1")],
        vec![tx("alice", 1, "k", "again"), tx("bob", 1, "j", "b1")],
        vec![],
        vec![tx("carol", 1, "k", "c1")],
    ])
}

/// Replays `blocks` on a fresh machine; the first refusal, if any.
fn replay(blocks: &[Block]) -> Result<Replay<KvMachine>, ReplayError> {
    let mut r = Replay::new(KvMachine::new(2));
    for b in blocks {
        r.apply(b)?;
    }
    Ok(r)
}

/// `blocks` with block `height` changed by `change` and the hash chain made whole again, as a
/// chain that lies about an outcome would serve it (the hashes cover heights, parents, times
/// and transaction hashes, not outcomes, so only a changed transaction list needs rehashing).
fn altered(mut blocks: Vec<Block>, height: u64, change: impl FnOnce(&mut Block)) -> Vec<Block> {
    change(&mut blocks[height as usize - 1]);
    let mut parent = GENESIS_PARENT;
    for b in &mut blocks {
        b.parent_hash = parent;
        b.hash = block_hash(b.height, &parent, b.time_ms, b.txs.iter().map(|r| &r.hash));
        parent = b.hash;
    }
    blocks
}

fn diverged_at(result: Result<Replay<KvMachine>, ReplayError>) -> u64 {
    match result {
        Err(ReplayError::Diverged { height, .. }) => height,
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("the altered block was accepted"),
    }
}

#[test]
fn an_honest_chain_replays_to_the_same_state() {
    let blocks = honest();
    assert!(
        blocks[1].txs[0].rejected.is_some(),
        "the stale nonce is refused"
    );
    assert!(
        !blocks[1].end_block_events.is_empty(),
        "block 2 ends a phase"
    );
    let r = replay(&blocks).unwrap();
    assert_eq!(r.height(), 4);
    assert_eq!(r.last_hash(), blocks[3].hash);
    assert_eq!(r.state().query("kv/k"), Some(json!("c1")));
    assert_eq!(r.state().query("kv/j"), Some(json!("b1")));
}

#[test]
fn a_changed_event_is_refused_at_its_block() {
    let blocks = altered(honest(), 2, |b| {
        b.txs[1].events[0]["value"] = json!("forged");
    });
    assert_eq!(diverged_at(replay(&blocks)), 2);
}

#[test]
fn an_applied_transaction_recorded_as_refused_and_the_reverse_are_refused() {
    let refused = altered(honest(), 1, |b| {
        b.txs[0].events.clear();
        b.txs[0].rejected = Some(keyquorum_devchain::TxRejection::new("stale_nonce", "no"));
    });
    assert_eq!(diverged_at(replay(&refused)), 1);
    let applied = altered(honest(), 2, |b| {
        b.txs[0].rejected = None;
    });
    assert_eq!(diverged_at(replay(&applied)), 2);
}

#[test]
fn changed_end_of_block_events_are_refused() {
    let dropped = altered(honest(), 4, |b| b.end_block_events.clear());
    assert_eq!(diverged_at(replay(&dropped)), 4);
    let invented = altered(honest(), 3, |b| {
        b.end_block_events
            .push(json!({"PhaseStarted": {"view": 9}}));
    });
    assert_eq!(diverged_at(replay(&invented)), 3);
}

#[test]
fn a_transaction_nobody_sent_is_refused() {
    // A transaction the chain slipped in with its own outcome: the machine refuses the
    // forged signature, so the recorded write is not reproduced.
    let mut forged = KvTx::signed("dave", 1, "k", "d1");
    forged.value = "stolen".into();
    let bytes = forged.to_bytes();
    // Recorded exactly as the machine would record it, had the signature been dave's.
    let recorded = json_events(vec![KvEvent::Set {
        from: "dave".into(),
        nonce: 1,
        key: "k".into(),
        value: "stolen".into(),
    }]);
    let blocks = altered(honest(), 3, |b| {
        b.txs.push(TxReceipt {
            hash: KvTx::hash_of(&bytes),
            tx: bytes.clone(),
            events: recorded.clone(),
            rejected: None,
        });
    });
    match replay(&blocks) {
        Err(ReplayError::Diverged { height: 3, detail }) => {
            assert!(detail.contains("bad_signature"), "{detail}")
        }
        other => panic!("not refused for the signature: {:?}", other.err()),
    }
}

#[test]
fn a_receipt_naming_another_transaction_is_refused() {
    // Block 2's write is labelled with block 4's transaction's hash: a follower matching its
    // own transactions by hash would take one for the other.
    let blocks = honest();
    let other = blocks[3].txs[0].hash;
    let blocks = altered(blocks, 2, |b| b.txs[1].hash = other);
    match replay(&blocks) {
        Err(ReplayError::Diverged { height: 2, detail }) => {
            assert!(detail.contains("recorded hash"), "{detail}")
        }
        other => panic!("accepted or refused for another reason: {:?}", other.err()),
    }
}

#[test]
fn gaps_and_broken_hash_chains_are_refused_and_change_nothing() {
    let blocks = honest();
    let mut r = Replay::new(KvMachine::new(2));
    r.apply(&blocks[0]).unwrap();
    assert_eq!(
        r.apply(&blocks[2]),
        Err(ReplayError::Gap { last: 1, got: 3 })
    );
    // Nothing of the refused block ran: the right next block still applies.
    r.apply(&blocks[1]).unwrap();
    r.apply(&blocks[2]).unwrap();
    assert_eq!(r.height(), 3);

    let mut r = Replay::new(KvMachine::new(2));
    r.apply(&blocks[0]).unwrap();
    let mut other_parent = blocks[1].clone();
    other_parent.parent_hash = [7; 32];
    assert_eq!(
        r.apply(&other_parent),
        Err(ReplayError::HashChain { height: 2 })
    );

    let mut r = Replay::new(KvMachine::new(2));
    let mut wrong_hash = blocks[0].clone();
    wrong_hash.time_ms += 1;
    assert_eq!(
        r.apply(&wrong_hash),
        Err(ReplayError::HashChain { height: 1 })
    );
}

#[test]
fn after_a_block_that_ran_and_differs_nothing_applies() {
    let blocks = honest();
    let lying = altered(blocks.clone(), 2, |b| {
        b.end_block_events.push(serde_json::json!("made up"))
    });
    let mut r = Replay::new(KvMachine::new(2));
    r.apply(&blocks[0]).unwrap();
    assert!(matches!(
        r.apply(&lying[1]),
        Err(ReplayError::Diverged { height: 2, .. })
    ));
    // Its state machine may hold part of that block: even the right block is refused.
    assert_eq!(
        r.apply(&blocks[1]),
        Err(ReplayError::Poisoned { height: 2 })
    );
}
