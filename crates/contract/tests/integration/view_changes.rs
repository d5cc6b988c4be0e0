//! Full view changes through the contract with the engine's ack-or-reveal nodes simulated in
//! process: a fresh key, a reshare that keeps it, and a fresh key again, with nodes that miss
//! every deadline (contribute, share, publish, wait) and a node that publishes an invalid log.
//! The resulting magic blocks verify from the genesis key; tampered ones do not.

use crate::common;

use std::collections::BTreeSet;

use common::*;
use keyquorum_contract::hex::Hex;
use keyquorum_contract::query::{CurrentView, ViewAnswer};
use keyquorum_contract::state::{EvidenceRecord, FaultRole};
use keyquorum_contract::{
    BeaconConfig, BeaconScheme, ChainError, Contract, Event, Group, KeyMode, SignedMagicBlock,
    ViewChangePhase, verify_magic_block_chain,
};
use keyquorum_crypto::Curve;
use keyquorum_dkg::messages::{Post, SignedPost};

const STAKES: [u64; 8] = [100, 90, 90, 80, 70, 60, 50, 40];

fn key(i: usize) -> Hex<96> {
    Hex(identity(i).public().to_bytes())
}

fn keys(v: &[usize]) -> BTreeSet<Hex<96>> {
    v.iter().map(|i| key(*i)).collect()
}

fn committee_of(sim: &Sim, view: u64, ceremony_number: u32) -> BTreeSet<Hex<96>> {
    sim.events
        .iter()
        .find_map(|(_, e)| match e {
            Event::CommitteeSelected {
                view: v,
                ceremony_number: s,
                committee,
                ..
            } if *v == view && *s == ceremony_number => {
                Some(committee.iter().map(|c| c.identity).collect())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no committee for view {view} ceremony {ceremony_number}"))
}

fn records_of(sim: &Sim, view: u64, i: usize) -> Vec<keyquorum_contract::SlashingRecord> {
    sim.contract
        .state()
        .slashings
        .iter()
        .filter(|r| r.view == view && r.identity == key(i))
        .cloned()
        .collect()
}

/// Every member's DKG output agrees with the magic block: same group key, and its public key
/// share is the one listed for it.
fn check_outputs_match(sim: &Sim, block: &SignedMagicBlock) {
    for m in &block.block.members {
        let node = sim
            .nodes
            .iter()
            .find(|n| n.key.public().to_bytes() == m.identity.0)
            .unwrap();
        let (v, s, out) = node.finished.as_ref().unwrap();
        assert_eq!((*v, *s), (block.block.view, block.block.ceremony_number));
        assert_eq!(
            Group::point_bytes(&out.public.group_key),
            block.block.group_key.0
        );
        let pos = (m.index - 1) as usize;
        assert_eq!(
            Group::point_bytes(&out.public.public_shares[pos]),
            m.public_share.0
        );
    }
}

#[test]
fn fresh_reshare_fresh_with_faults_in_every_phase() {
    let config = config();
    let mut sim = Sim::new(config.clone(), &STAKES);
    // View 1, first session: node 1 misses the contribute deadline, node 3 publishes an invalid
    // log. Too few dealers qualify even after the board's publish retry.
    sim.faults.insert(
        (1, 0),
        FaultPlan {
            late_contribution: set(&[1]),
            invalid_log: set(&[3]),
            ..Default::default()
        },
    );
    // View 2 (reshare): old member 7 misses the publish deadline, new member 1 never acks (its
    // shares are revealed), new member 5 does not sign the magic block (t of 6 is enough).
    sim.faults.insert(
        (2, 0),
        FaultPlan {
            drop_publication: set(&[7]),
            drop_acks: set(&[1]),
            no_new_signature: set(&[5]),
            ..Default::default()
        },
    );
    // View 3 (fresh): half of the new committee misses the wait deadline.
    sim.faults.insert(
        (3, 0),
        FaultPlan {
            no_new_signature: set(&[0, 1, 2]),
            ..Default::default()
        },
    );

    // ---------------------------------------------------------------- view 1: fresh key
    sim.run_until(100, |s| s.contract.state().current_view == 1);
    // Top 6 by stake; after the failed session, the culprits' seats go to the standbys.
    assert_eq!(committee_of(&sim, 1, 0), keys(&[0, 1, 2, 3, 4, 5]));
    assert_eq!(committee_of(&sim, 1, 1), keys(&[0, 2, 4, 5, 6, 7]));
    // The late contribution was refused by the board's phase rule, and changed nothing.
    assert!(
        sim.rejections
            .iter()
            .any(|(_, i, kind, r)| *i == 1 && *kind == "dkg_post" && r.code() == "wrong_phase"),
        "{:?}",
        sim.rejections
    );
    // The invalid log was taken as evidence against its author.
    assert!(sim.events_where(|e| matches!(e,
        Event::PostRejected { view: 1, ceremony_number: 0, reason, .. } if reason.starts_with("bad_ack_signature")
    )).len() == 1);
    // The board retried the publish phase once before the session failed.
    assert!(
        !sim.events_where(|e| matches!(
            e,
            Event::PhaseChanged {
                view: 1,
                ceremony_number: 0,
                attempt: 1,
                phase: ViewChangePhase::Publish,
                ..
            }
        ))
        .is_empty()
    );
    let failed = sim.events_where(|e| matches!(e, Event::CeremonyFailed { view: 1, .. }));
    assert_eq!(failed.len(), 1);
    match failed[0] {
        Event::CeremonyFailed {
            ceremony_number,
            culprits,
            next_ceremony_number,
            ..
        } => {
            assert_eq!(*ceremony_number, 0);
            assert_eq!(
                culprits.iter().copied().collect::<BTreeSet<_>>(),
                keys(&[1, 3])
            );
            assert_eq!(*next_ceremony_number, Some(1));
        }
        _ => unreachable!(),
    }
    // Slashing: misbehaviour costs 10%, absence nothing.
    let r3 = records_of(&sim, 1, 3);
    assert_eq!(r3.len(), 1);
    assert_eq!(r3[0].fault, "bad_ack_signature");
    assert!(r3[0].misbehaviour);
    assert_eq!(r3[0].role, FaultRole::Dealer);
    assert_eq!((r3[0].amount, r3[0].stake_after), (8, 72));
    assert!(matches!(&r3[0].evidence, EvidenceRecord::SignedPosts { posts } if posts.len() == 2));
    assert_eq!(sim.contract.state().nodes[&key(3)].stake, 72);
    let r1 = records_of(&sim, 1, 1);
    assert_eq!(r1.len(), 1);
    assert_eq!(r1[0].fault, "missed_contribution");
    assert!(!r1[0].misbehaviour);
    assert_eq!(r1[0].amount, 0);
    assert!(
        matches!(&r1[0].evidence, EvidenceRecord::Absence { phase, .. } if phase == "contribute")
    );

    let mb1 = sim.contract.view(1).unwrap().magic_block.clone();
    assert_eq!(mb1.block.key_mode, KeyMode::Fresh);
    assert_eq!(mb1.block.ceremony_number, 1);
    assert_eq!((mb1.block.n, mb1.block.t, mb1.block.k), (6, 4, 5));
    assert_eq!(mb1.block.members.len(), 6);
    assert_eq!(mb1.block.previous_hash, Hex::default());
    assert!(mb1.signature.is_some() && mb1.previous_signature.is_none());
    check_outputs_match(&sim, &mb1);
    let genesis = mb1.block.group_key.0;
    verify_magic_block_chain(&genesis, std::slice::from_ref(&mb1)).unwrap();
    // The query API serves the same block and the committee with stakes and addresses.
    let served: SignedMagicBlock =
        serde_json::from_value(sim.contract.query("views/1/magic-block").unwrap()).unwrap();
    assert_eq!(served, mb1);
    let current: CurrentView =
        serde_json::from_value(sim.contract.query("views/current").unwrap()).unwrap();
    assert_eq!(current, sim.contract.query_current_view());
    assert_eq!(current.view, 1);
    let active = current.active.expect("view 1 is active");
    assert_eq!(active.committee.len(), 6);
    assert_eq!(active.committee[0].stake, 100);
    assert!(!active.committee[0].addresses.is_empty());
    assert_eq!(active.magic_block_hash, mb1.hash);
    let view1: ViewAnswer = serde_json::from_value(sim.contract.query("views/1").unwrap()).unwrap();
    assert_eq!(view1, ViewAnswer::ActiveOrPast(active));

    // ---------------------------------------------------------------- view 2: reshare
    sim.run_until(100, |s| {
        s.contract
            .state()
            .change
            .as_ref()
            .is_some_and(|c| c.view == 2 && c.phase == ViewChangePhase::Publish)
    });
    // Restore the contract from its state in the middle of the ceremony (the board is rebuilt
    // by replay) and carry on with the restored one.
    let restored = Contract::from_state(config.clone(), sim.contract.state().clone()).unwrap();
    assert_eq!(restored.state(), sim.contract.state());
    let (a, b) = (restored.board().unwrap(), sim.contract.board().unwrap());
    assert_eq!((a.phase(), a.attempt()), (b.phase(), b.attempt()));
    assert_eq!(
        a.ceremony().id(),
        &sim.contract.state().change.as_ref().unwrap().session_id.0
    );
    sim.contract = restored;
    sim.run_until(100, |s| s.contract.state().current_view == 2);

    // 70% of 6 seats (4) go to the best previous members, the rest by stake.
    assert_eq!(committee_of(&sim, 2, 0), keys(&[0, 1, 2, 3, 4, 5]));
    let mb2 = sim.contract.view(2).unwrap().magic_block.clone();
    assert_eq!(mb2.block.key_mode, KeyMode::Reshare);
    assert_eq!(mb2.block.ceremony_number, 0);
    assert_eq!(
        mb2.block.group_key.0, genesis,
        "a reshare keeps the group key"
    );
    assert_eq!(mb2.block.previous_hash, mb1.hash);
    // Node 1 stays a member: its shares were revealed on chain by the dealers it did not ack.
    assert!(mb2.block.member_by_identity(&key(1).0).is_some());
    assert_eq!(mb2.block.members.len(), 6);
    let pos1 = mb2.block.member_by_identity(&key(1).0).unwrap().index as u32 - 1;
    let revealing = sim
        .events_where(|e| matches!(e, Event::PostAccepted { view: 2, .. }))
        .into_iter()
        .filter(|e| match e {
            Event::PostAccepted { post, .. } => matches!(
                SignedPost::<Group>::decode(&post.0, 64).unwrap().post,
                Post::Publication(p) if p.reveals.iter().any(|(j, _)| *j == pos1)
            ),
            _ => false,
        })
        .count();
    assert_eq!(
        revealing, 5,
        "every qualified dealer revealed node 1's share"
    );
    let r7 = records_of(&sim, 2, 7);
    assert_eq!(r7.len(), 1);
    assert_eq!(r7[0].fault, "missed_publication");
    assert_eq!(r7[0].role, FaultRole::Dealer);
    assert!(
        records_of(&sim, 2, 5).is_empty(),
        "t signatures were enough"
    );
    // Both committees signed under the same key, each on its own role's message: two different
    // signatures, so the new committee's alone is no handover.
    assert!(mb2.signature.is_some() && mb2.previous_signature.is_some());
    assert_ne!(mb2.signature, mb2.previous_signature);
    check_outputs_match(&sim, &mb2);

    // ---------------------------------------------------------------- view 3: fresh key again
    sim.run_until(100, |s| s.contract.state().current_view == 3);
    assert_eq!(committee_of(&sim, 3, 0), keys(&[0, 1, 2, 3, 4, 5]));
    let failed: Vec<_> = sim.events_where(|e| matches!(e, Event::CeremonyFailed { view: 3, .. }));
    assert_eq!(failed.len(), 1);
    match failed[0] {
        Event::CeremonyFailed {
            culprits, reason, ..
        } => {
            assert_eq!(
                culprits.iter().copied().collect::<BTreeSet<_>>(),
                keys(&[0, 1, 2])
            );
            assert!(reason.contains("not signed"), "{reason}");
        }
        _ => unreachable!(),
    }
    for i in [0, 1, 2] {
        let r = records_of(&sim, 3, i);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].fault, "missed_magic_block_signature");
        assert_eq!(r[0].role, FaultRole::Signer);
        assert!(!r[0].misbehaviour);
    }
    // Without the three, five nodes remain: n = 5, t = ceil(3.3) = 4, k = ceil(3.75) = 4.
    assert_eq!(committee_of(&sim, 3, 1), keys(&[3, 4, 5, 6, 7]));
    let mb3 = sim.contract.view(3).unwrap().magic_block.clone();
    assert_eq!(mb3.block.key_mode, KeyMode::Fresh);
    assert_eq!((mb3.block.n, mb3.block.t, mb3.block.k), (5, 4, 4));
    assert_ne!(
        mb3.block.group_key.0, genesis,
        "a fresh view change makes a new key"
    );
    assert_eq!(mb3.block.previous_hash, mb2.hash);
    assert_ne!(mb3.signature, mb3.previous_signature);
    check_outputs_match(&sim, &mb3);

    // ---------------------------------------------------------------- the chain of magic blocks
    let chain = vec![mb1.clone(), mb2.clone(), mb3.clone()];
    verify_magic_block_chain(&genesis, &chain).unwrap();

    // A tampered block fails: first on its stored hash...
    let mut bad = chain.clone();
    bad[1].block.members[0].addresses = vec!["/ip4/6.6.6.6/tcp/1".into()];
    assert_eq!(
        verify_magic_block_chain(&genesis, &bad),
        Err(ChainError::HashMismatch { position: 1 })
    );
    // ...and with the hash recomputed, on the signatures.
    bad[1].hash = Hex(bad[1].block.hash());
    assert_eq!(
        verify_magic_block_chain(&genesis, &bad),
        Err(ChainError::BadSignature {
            position: 1,
            which: "new"
        })
    );
    // A reshare's handover signed only by the new committee (its key confirmation copied into
    // the handover slot, valid under the unchanged key) does not link.
    let mut bad = chain.clone();
    bad[1].previous_signature = bad[1].signature;
    assert_eq!(
        verify_magic_block_chain(&genesis, &bad),
        Err(ChainError::BadSignature {
            position: 1,
            which: "previous"
        })
    );
    // A committee that swaps in its own key cannot link to the previous one.
    let mut bad = chain.clone();
    bad[2].previous_signature = bad[2].signature;
    assert_eq!(
        verify_magic_block_chain(&genesis, &bad),
        Err(ChainError::BadSignature {
            position: 2,
            which: "previous"
        })
    );
    let mut bad = chain.clone();
    bad[2].previous_signature = None;
    assert_eq!(
        verify_magic_block_chain(&genesis, &bad),
        Err(ChainError::MissingSignature {
            position: 2,
            which: "previous"
        })
    );
    // A gap, a wrong genesis key, nothing at all.
    assert_eq!(
        verify_magic_block_chain(&genesis, &[mb1.clone(), mb3.clone()]),
        Err(ChainError::Broken {
            position: 1,
            what: "view number"
        })
    );
    assert_eq!(
        verify_magic_block_chain(&mb3.block.group_key.0, &chain),
        Err(ChainError::GenesisKey { position: 0 })
    );
    assert_eq!(
        verify_magic_block_chain(&genesis, &[]),
        Err(ChainError::Empty)
    );

    // Every event serializes for the chain's event stream.
    for (_, e) in &sim.events {
        let v = serde_json::to_value(e).unwrap();
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(&back, e);
    }
    // And the whole run was deterministic: a second run gives the same state.
    let mut again = Sim::new(config, &STAKES);
    again.faults = sim.faults.clone();
    again.run_until(200, |s| s.contract.state().current_view == 3);
    assert_eq!(again.contract.state().views, sim.contract.state().views);
    assert_eq!(
        again.contract.state().slashings,
        sim.contract.state().slashings
    );
}

/// The beacon a view runs is in its magic block: a fresh key takes the configured scheme and
/// period, a reshare keeps its chain's even when the configuration changed (the chain restarted
/// with another one): the changed values wait for the next fresh key.
#[test]
fn a_reshare_keeps_the_beacon_when_the_configuration_changes() {
    let mut config = config();
    config.beacon = BeaconConfig {
        scheme: BeaconScheme::PedersenBlsUnchained,
        period_secs: 2,
    };
    let mut sim = Sim::new(config.clone(), &STAKES);
    sim.run_until(100, |s| s.contract.state().current_view == 1);
    let mb1 = sim.contract.view(1).unwrap().magic_block.clone();
    assert_eq!(mb1.block.beacon, config.beacon);

    // Restarted with a chained 5 s beacon before view 2 (a reshare) and view 3 (fresh).
    let mut changed = config.clone();
    changed.beacon = BeaconConfig {
        scheme: BeaconScheme::PedersenBlsChained,
        period_secs: 5,
    };
    sim.contract = Contract::from_state(changed.clone(), sim.contract.state().clone()).unwrap();
    sim.run_until(200, |s| s.contract.state().current_view == 2);
    let mb2 = sim.contract.view(2).unwrap().magic_block.clone();
    assert_eq!(mb2.block.key_mode, KeyMode::Reshare);
    assert_eq!(
        mb2.block.beacon, config.beacon,
        "a reshare keeps its chain's beacon"
    );
    sim.run_until(300, |s| s.contract.state().current_view == 3);
    let mb3 = sim.contract.view(3).unwrap().magic_block.clone();
    assert_eq!(mb3.block.key_mode, KeyMode::Fresh);
    assert_eq!(
        mb3.block.beacon, changed.beacon,
        "a fresh key starts a chain as configured"
    );
    let genesis = mb1.block.group_key.0;
    verify_magic_block_chain(&genesis, &[mb1, mb2, mb3]).unwrap();
}
