//! The node's beacon wiring, with committees in memory: partials delivered with the identity
//! the network layer would authenticate, rounds stored in real redb files.

use std::collections::VecDeque;

use keyquorum_beacon::info::DEFAULT_BEACON_ID;
use keyquorum_beacon::sync::{MAX_SYNC_ROUNDS, SyncRequest, decode_rounds, encode_rounds};
use keyquorum_beacon::{SchemeId, verify_round};
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::tbls;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::store::BeaconMemberRecord;

const GENESIS: i64 = 1_700_000_000;
const N: usize = 4;
const T: usize = 3;

fn identity(i: usize) -> Vec<u8> {
    vec![i as u8 + 1; 96]
}

struct Committee {
    record: BeaconViewRecord,
    shares: Vec<Scalar>,
    secret: Scalar,
}

fn committee(seed: u64) -> Committee {
    committee_on(seed, SchemeId::PedersenBlsChained, 3)
}

/// A committee signing on a chain of `scheme` with `period` seconds between rounds.
fn committee_on(seed: u64, scheme: SchemeId, period: u32) -> Committee {
    let poly = Polynomial::<Scalar>::random(T - 1, None, &mut ChaCha20Rng::seed_from_u64(seed));
    let mut members = Vec::new();
    let mut shares = Vec::new();
    for i in 0..N {
        let share = poly.evaluate(&Scalar::from(i as u64 + 1));
        let public = tbls::public_key::<Scheme>(&Secret::new(share));
        members.push(BeaconMemberRecord {
            identity: hex::encode(identity(i)),
            index: i as u64 + 1,
            public_share: hex::encode(<G as Curve>::point_bytes(&public)),
        });
        shares.push(share);
    }
    let group_key = tbls::public_key::<Scheme>(&Secret::new(poly.constant()));
    let info = ChainInfo::for_view(
        None,
        scheme,
        &<G as Curve>::point_bytes(&group_key),
        [7; 32],
        GENESIS,
        period,
        DEFAULT_BEACON_ID,
    )
    .unwrap();
    Committee {
        record: BeaconViewRecord {
            view: 1,
            ended: Vec::new(),
            magic_block_hash: hex::encode([7u8; 32]),
            chain_info: info.to_json(),
            threshold: T as u32,
            members,
            own_index: None,
        },
        shares,
        secret: poly.constant(),
    }
}

struct Node {
    beacon: Beacon,
    metrics: Arc<Metrics>,
    store: Arc<BeaconStore>,
}

fn node(c: &Committee, i: usize, dir: &std::path::Path, corrupt: bool) -> Node {
    let store = Arc::new(BeaconStore::open(&dir.join(format!("beacon{i}.redb"))).unwrap());
    let metrics = Arc::new(Metrics::new());
    let mut record = c.record.clone();
    record.own_index = Some(i as u64 + 1);
    let beacon = Beacon::new(
        &record,
        Some((i as u64 + 1, Secret::new(c.shares[i]))),
        store.clone(),
        metrics.clone(),
        corrupt,
    )
    .unwrap();
    Node {
        beacon,
        metrics,
        store,
    }
}

/// Ticks every node at `now_ms` and delivers every partial until none is left; `up[i]` false
/// means node `i` neither sends nor receives.
///
/// As the runtime does, each node that is up first asks for rounds it lacks, when a request is
/// due, and the member asked answers if it is up.
fn run(nodes: &mut [Node], up: &[bool], now_ms: u64) {
    let mut queue: VecDeque<(usize, Outgoing)> = VecDeque::new();
    for i in 0..nodes.len() {
        if !up[i] {
            continue;
        }
        while let Some(ask) = nodes[i].beacon.sync_due(now_ms) {
            let to = (0..N).find(|j| identity(*j) == ask.to).unwrap();
            let answer = if up[to] {
                Ok(sync::answer(
                    Some(&nodes[to].store),
                    &ask.request.to_bytes(),
                ))
            } else {
                Err("unreachable".to_owned())
            };
            let more = nodes[i].beacon.on_sync_answer(&ask, answer, now_ms);
            queue.extend(more.into_iter().map(|o| (i, o)));
        }
    }
    for (i, n) in nodes.iter_mut().enumerate() {
        if up[i] {
            queue.extend(n.beacon.tick(now_ms).into_iter().map(|o| (i, o)));
        }
    }
    while let Some((from, o)) = queue.pop_front() {
        let to = (0..N).find(|j| identity(*j) == o.to).unwrap();
        let session = nodes[from].beacon.session();
        if !up[to] {
            let more = nodes[from]
                .beacon
                .on_sent(&session, &o, SendOutcome::Failed, now_ms);
            queue.extend(more.into_iter().map(|o| (from, o)));
            continue;
        }
        // As the runtime does: the partial first, then the answer (the round, if the sender
        // is behind).
        if let Ok(more) =
            nodes[to]
                .beacon
                .on_partial(&session, Some(&identity(from)), &o.payload, now_ms)
        {
            queue.extend(more.into_iter().map(|o| (to, o)));
        }
        let answer = nodes[to].beacon.answer(&session, &o.payload);
        let more = nodes[from]
            .beacon
            .on_sent(&session, &o, SendOutcome::Answered(answer), now_ms);
        queue.extend(more.into_iter().map(|o| (from, o)));
    }
}

fn at_round(r: u64) -> u64 {
    (GENESIS as u64 + (r - 1) * 3) * 1000 + 100
}

#[test]
fn a_committee_produces_verified_rounds_and_a_restart_keeps_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let c = committee(1);
    let mut nodes: Vec<Node> = (0..N).map(|i| node(&c, i, dir.path(), false)).collect();
    for r in 1..=3 {
        run(&mut nodes, &[true; N], at_round(r));
    }
    let info = nodes[0].beacon.info().clone();
    // Each round is combined by at least one member; the others may take it from the answer
    // to their partial. The counter counts exactly the rounds combined here.
    assert!(
        nodes
            .iter()
            .map(|n| n.metrics.beacon_rounds().0)
            .sum::<u64>()
            >= 3
    );
    for n in &nodes {
        assert_eq!(n.beacon.last_round(), 3);
        let combined = n.store.timings(&info.hash(), 1, 3).unwrap();
        let combined = combined
            .iter()
            .filter(|s| s.timing.unwrap().origin == RoundOrigin::Combined)
            .count();
        assert_eq!(n.metrics.beacon_rounds().0, combined as u64);
        for r in 1..=3 {
            let round = n.store.round(&info.hash(), r).unwrap().unwrap();
            verify_round(&info, &round).unwrap();
            // One value per round across the committee.
            assert_eq!(
                round,
                nodes[0].store.round(&info.hash(), r).unwrap().unwrap()
            );
        }
    }
    // Restart every node on its stored rounds: the chain goes on from round 3.
    drop(nodes);
    let mut nodes: Vec<Node> = (0..N).map(|i| node(&c, i, dir.path(), false)).collect();
    assert!(nodes.iter().all(|n| n.beacon.last_round() == 3));
    run(&mut nodes, &[true; N], at_round(4));
    let r4 = nodes[1].store.round(&info.hash(), 4).unwrap().unwrap();
    let r3 = nodes[1].store.round(&info.hash(), 3).unwrap().unwrap();
    assert_eq!(r4.previous_signature, Some(r3.signature));
    verify_round(&info, &r4).unwrap();
}

#[test]
fn rounds_missed_without_a_quorum_are_caught_up_when_members_return() {
    let dir = tempfile::tempdir().unwrap();
    let c = committee(2);
    let mut nodes: Vec<Node> = (0..N).map(|i| node(&c, i, dir.path(), false)).collect();
    run(&mut nodes, &[true; N], at_round(1));
    // Two of four down: fewer than t = 3, no round for three periods.
    let half = [true, true, false, false];
    for r in 2..=4 {
        run(&mut nodes, &half, at_round(r));
    }
    assert!(nodes.iter().all(|n| n.beacon.last_round() == 1));
    run(&mut nodes, &[true, true, true, false], at_round(5));
    let info = nodes[0].beacon.info().clone();
    for n in &nodes[..3] {
        assert_eq!(n.beacon.last_round(), 5);
        // Rounds 2..=4 were stored after their period: late.
        let stored = n.store.timings(&info.hash(), 2, 4).unwrap();
        assert_eq!(stored.len(), 3);
        for stored in stored {
            let latency = stored
                .timing
                .unwrap()
                .latency_ms(&info, stored.round)
                .unwrap();
            assert!(latency >= 3000, "round {}: {latency} ms", stored.round);
        }
    }
    // Each was combined late by at least one of them, and counted so.
    let late: u64 = nodes.iter().map(|n| n.metrics.beacon_rounds().1).sum();
    assert!(late >= 3, "{late}");
}

/// A round whose write fails is kept and written again before any later round: the store never
/// holds a round above one it lacks (a gap no fetch would fill, since a node fetches only the
/// rounds after its last). Rounds 2 to 5 are combined in one call after a period without a
/// quorum, and node 0's first write fails.
#[test]
fn a_round_whose_write_failed_is_written_before_any_later_round() {
    for scheme in [SchemeId::PedersenBlsChained, SchemeId::PedersenBlsUnchained] {
        let dir = tempfile::tempdir().unwrap();
        let c = committee_on(3, scheme, 3);
        let mut nodes: Vec<Node> = (0..N).map(|i| node(&c, i, dir.path(), false)).collect();
        let info = nodes[0].beacon.info().clone();
        let no_gap = |n: &Node| {
            let last = n.beacon.last_round();
            for r in 1..=last {
                assert!(
                    n.store.round(&info.hash(), r).unwrap().is_some(),
                    "{scheme:?}: round {r} missing under round {last}"
                );
            }
            assert!(n.store.round(&info.hash(), last + 1).unwrap().is_none());
            last
        };
        run(&mut nodes, &[true; N], at_round(1));
        for r in 2..=4 {
            run(&mut nodes, &[true, true, false, false], at_round(r));
        }
        nodes[0].store.fail_writes(1);
        run(&mut nodes, &[true, true, true, false], at_round(5));
        no_gap(&nodes[0]);
        // The next tick writes what failed, then the chain goes on.
        run(&mut nodes, &[true, true, true, false], at_round(6));
        assert_eq!(no_gap(&nodes[0]), 6, "{scheme:?}");
        for r in 1..=6 {
            let round = nodes[0].store.round(&info.hash(), r).unwrap().unwrap();
            verify_round(&info, &round).unwrap();
        }
    }
}

#[test]
fn a_partial_is_sent_again_only_to_members_that_did_not_take_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = committee(9);
    let mut nodes: Vec<Node> = (0..N).map(|i| node(&c, i, dir.path(), false)).collect();
    // Members 2 and 3 down: with t = 3 of 4, round 1 stays open.
    run(&mut nodes, &[true, true, false, false], at_round(1));
    assert_eq!(nodes[0].beacon.last_round(), 0);
    // A tick later (within the round) member 0 sends its partial again to 2 and 3, whose
    // sends failed, and not to 1, which took it.
    let again = nodes[0].beacon.tick(at_round(1) + 500);
    let to: Vec<Vec<u8>> = again.iter().map(|o| o.to.clone()).collect();
    assert_eq!(to, vec![identity(2), identity(3)]);
    assert!(again.iter().all(|o| o.round == 1));
    // Sends waiting for their answers are not repeated.
    assert!(nodes[0].beacon.tick(at_round(1) + 1000).is_empty());
    // A node running another view's beacon (or none) answers that it did not take it; like
    // a failed send, that has the partial sent again.
    let session = nodes[0].beacon.session();
    assert_eq!(
        nodes[2].beacon.answer(&[0u8; 32], &again[0].payload),
        NOT_RUNNING
    );
    let now = at_round(1) + 1000;
    let not_running = SendOutcome::Answered(NOT_RUNNING.to_vec());
    assert!(
        nodes[0]
            .beacon
            .on_sent(&session, &again[0], not_running, now)
            .is_empty()
    );
    nodes[0]
        .beacon
        .on_sent(&session, &again[1], SendOutcome::Failed, now);
    // An outcome from another view's beacon changes nothing here.
    nodes[0].beacon.on_sent(
        &[0u8; 32],
        &again[0],
        SendOutcome::Answered(Vec::new()),
        now,
    );
    let third = nodes[0].beacon.tick(at_round(1) + 1500);
    assert_eq!(third.len(), 2);
    for o in &third {
        nodes[0]
            .beacon
            .on_sent(&session, o, SendOutcome::Failed, at_round(1) + 1500);
    }
    // Member 2 back: the partials of 0 and 1 reach it, and the round completes.
    run(&mut nodes, &[true, true, true, false], at_round(1) + 2000);
    for n in &nodes[..3] {
        assert_eq!(n.beacon.last_round(), 1);
    }
    // Nothing of a stored round is sent again.
    assert!(nodes[0].beacon.tick(at_round(1) + 2500).is_empty());
}

#[test]
fn a_member_that_lost_partials_in_a_restart_gets_the_round_from_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let c = committee(10);
    let mut nodes: Vec<Node> = (0..N).map(|i| node(&c, i, dir.path(), false)).collect();
    // Members 0 and 1 exchange partials of round 1, which needs t = 3.
    run(&mut nodes, &[true, true, false, false], at_round(1));
    // Member 0 restarts and loses member 1's partial; member 1 does not send it again, as
    // member 0 took it.
    drop(nodes.remove(0));
    nodes.insert(0, node(&c, 0, dir.path(), false));
    run(&mut nodes, &[true, true, true, false], at_round(1) + 1000);
    assert_eq!(nodes[1].beacon.last_round(), 1);
    assert_eq!(nodes[2].beacon.last_round(), 1);
    // Member 0 fetches round 1 once the clock has passed it, and the three produce round 2.
    run(&mut nodes, &[true, true, true, false], at_round(2));
    let info = nodes[0].beacon.info().clone();
    for n in &nodes[..3] {
        assert_eq!(n.beacon.last_round(), 2);
        assert_eq!(
            n.store.round(&info.hash(), 1).unwrap(),
            nodes[1].store.round(&info.hash(), 1).unwrap()
        );
    }
}

#[test]
fn a_member_that_missed_rounds_others_completed_syncs_them_and_signs_again() {
    let dir = tempfile::tempdir().unwrap();
    let c = committee(6);
    let mut nodes: Vec<Node> = (0..N).map(|i| node(&c, i, dir.path(), false)).collect();
    run(&mut nodes, &[true; N], at_round(1));
    // Member 3 is down while the others (t = 3 of them) complete rounds 2 and 3.
    for r in 2..=3 {
        run(&mut nodes, &[true, true, true, false], at_round(r));
    }
    assert_eq!(nodes[3].beacon.last_round(), 1);
    // Back, with member 2 down now: the round-4 quorum needs member 3, which must first get
    // rounds 2 and 3 from the others' answers.
    run(&mut nodes, &[true, true, false, true], at_round(4));
    assert_eq!(nodes[3].beacon.last_synced(), 3);
    // In one batch, not a round per partial.
    assert_eq!(nodes[3].metrics.beacon_syncs("rounds"), (1, 2));
    let info = nodes[0].beacon.info().clone();
    for i in [0, 1, 3] {
        assert_eq!(nodes[i].beacon.last_round(), 4, "node {i}");
        for r in 1..=4 {
            assert_eq!(
                nodes[i].store.round(&info.hash(), r).unwrap(),
                nodes[0].store.round(&info.hash(), r).unwrap()
            );
        }
    }
    // A round learnt from a member's answer is counted with the fetched ones: the metric
    // says how many rounds this node stored without combining them.
    run(&mut nodes, &[true, true, true, false], at_round(5));
    let r5 = nodes[0].store.round(&info.hash(), 5).unwrap().unwrap();
    nodes[3]
        .beacon
        .on_round(r5.to_json().as_bytes(), at_round(5));
    assert_eq!(nodes[3].beacon.last_round(), 5);
    assert_eq!(nodes[3].beacon.last_synced(), 5);
    assert_eq!(nodes[3].metrics.beacon_syncs("rounds"), (1, 3));
    // An answer that is not the next round, or does not chain, is ignored.
    let r2 = nodes[0].store.round(&info.hash(), 2).unwrap().unwrap();
    assert!(
        nodes[3]
            .beacon
            .on_round(r2.to_json().as_bytes(), at_round(4))
            .is_empty()
    );
    assert!(
        nodes[3]
            .beacon
            .on_round(b"not json", at_round(4))
            .is_empty()
    );
    assert_eq!(nodes[3].beacon.last_round(), 5);
    assert_eq!(nodes[3].metrics.beacon_syncs("rounds"), (1, 3));
}

#[test]
fn bad_partials_from_a_member_are_rejected_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let c = committee(3);
    // Member 0 sends partials that do not verify; its partial is among the first t any
    // honest node combines, so every round names it.
    let mut nodes: Vec<Node> = (0..N).map(|i| node(&c, i, dir.path(), i == 0)).collect();
    for r in 1..=2 {
        run(&mut nodes, &[true; N], at_round(r));
    }
    let info = nodes[1].beacon.info().clone();
    for n in &nodes[1..] {
        assert_eq!(n.beacon.last_round(), 2);
        assert!(n.metrics.beacon_partials("0", "bad") >= 2);
        for m in 1..N {
            assert_eq!(n.metrics.beacon_partials(&m.to_string(), "bad"), 0);
        }
        // `/status` names the sender, and only it.
        let refused: Vec<_> = n.beacon.refused_partials().collect();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].0, nodes[0].beacon.identities[0].as_slice());
        assert!(refused[0].1 >= 2);
        verify_round(&info, &n.store.round(&info.hash(), 2).unwrap().unwrap()).unwrap();
    }
}

#[test]
fn a_non_member_or_another_sessions_partial_is_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let c = committee(4);
    let mut a = node(&c, 0, dir.path(), false);
    let mut b = node(&c, 1, dir.path(), false);
    let out = a.beacon.tick(at_round(1));
    let payload = out[0].payload.clone();
    let session = b.beacon.session();
    // Not in the committee (unattributed, or an identity outside it).
    assert_eq!(
        b.beacon
            .on_partial(&session, None, &payload, at_round(1))
            .unwrap_err(),
        Dropped::NotAMember
    );
    assert_eq!(
        b.beacon
            .on_partial(&session, Some(&[9u8; 96]), &payload, at_round(1))
            .unwrap_err(),
        Dropped::NotAMember
    );
    assert_eq!(b.metrics.beacon_partials("unknown", "not_member"), 2);
    // Another view's session.
    assert_eq!(
        b.beacon
            .on_partial(&[0u8; 32], Some(&identity(0)), &payload, at_round(1))
            .unwrap_err(),
        Dropped::OtherSession
    );
    // Member 2 relaying member 0's partial: its own index is not in it.
    assert!(matches!(
        b.beacon
            .on_partial(&session, Some(&identity(2)), &payload, at_round(1)),
        Err(Dropped::Rejected(Rejected::SpoofedIndex { member: 2 }))
    ));
    assert_eq!(b.metrics.beacon_partials("2", "rejected"), 1);
    // Truncated.
    assert_eq!(
        b.beacon
            .on_partial(&session, Some(&identity(0)), &payload[..40], at_round(1))
            .unwrap_err(),
        Dropped::Malformed
    );
    // The member's own partial is taken once.
    b.beacon
        .on_partial(&session, Some(&identity(0)), &payload, at_round(1))
        .unwrap();
    assert_eq!(b.metrics.beacon_partials("0", "accepted"), 1);
    assert!(
        b.beacon
            .on_partial(&session, Some(&identity(0)), &payload, at_round(1))
            .is_err()
    );
    assert_eq!(b.metrics.beacon_partials("0", "late"), 1);
}

#[test]
fn the_store_verifies_before_storing_and_never_holds_two_values() {
    let dir = tempfile::tempdir().unwrap();
    let c = committee(5);
    let mut nodes: Vec<Node> = (0..N).map(|i| node(&c, i, dir.path(), false)).collect();
    run(&mut nodes, &[true; N], at_round(1));
    run(&mut nodes, &[true; N], at_round(2));
    let info = nodes[0].beacon.info().clone();
    let r2 = nodes[0].store.round(&info.hash(), 2).unwrap().unwrap();
    let fresh = BeaconStore::open(&dir.path().join("other.redb")).unwrap();
    // Round-trip, idempotent.
    let at = store::RoundTiming {
        stored_ms: at_round(2),
        origin: store::RoundOrigin::Combined,
    };
    assert!(fresh.put_round(&info, &r2, at).unwrap());
    assert!(!fresh.put_round(&info, &r2, at).unwrap());
    assert_eq!(fresh.round(&info.hash(), 2).unwrap(), Some(r2.clone()));
    assert_eq!(fresh.last_round(&info.hash()).unwrap(), 2);
    // A tampered round does not verify and is not stored.
    let mut bad = r2.clone();
    bad.round = 3;
    assert!(matches!(
        fresh.put_round(&info, &bad, at),
        Err(store::BeaconStoreError::Unverified { round: 3, .. })
    ));
    assert_eq!(fresh.round(&info.hash(), 3).unwrap(), None);
    // A second value for a stored round that verifies on its own (round 2 signed with the
    // group secret over another previous signature) is refused: one value per round.
    let fake_previous = vec![0x42u8; 96];
    let message =
        keyquorum_beacon::scheme::round_message(SchemeId::PedersenBlsChained, &fake_previous, 2);
    let other = Round {
        round: 2,
        signature: <keyquorum_crypto::Bls12381G2 as Curve>::point_bytes(&tbls::sign::<Scheme>(
            &Secret::new(c.secret),
            &message,
        )),
        previous_signature: Some(fake_previous),
    };
    verify_round(&info, &other).unwrap();
    assert!(matches!(
        fresh.put_round(&info, &other, at),
        Err(store::BeaconStoreError::Conflict(2))
    ));
    assert_eq!(fresh.round(&info.hash(), 2).unwrap(), Some(r2));
    // Chain infos round-trip.
    fresh.put_chain(&info).unwrap();
    assert_eq!(fresh.chain(&info.hash()).unwrap(), Some(info));
}

/// A view whose magic block names `pedersen-bls-unchained` with a 2 s period runs that chain:
/// its rounds, 2 s apart, carry no previous signature and verify under the unchained scheme
/// (a signature on `sha256(round)` alone), and `/info` names the scheme and period in
/// drand's format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_on_the_unchained_scheme_produces_unchained_rounds_at_its_period() {
    use keyquorum_contract::{BeaconConfig, BeaconScheme};
    let dir = tempfile::tempdir().unwrap();
    let block = BeaconConfig {
        scheme: BeaconScheme::PedersenBlsUnchained,
        period_secs: 2,
    };
    let c = committee_on(
        21,
        crate::driver::scheme_id(block.scheme),
        block.period_secs,
    );
    let mut nodes: Vec<Node> = (0..N).map(|i| node(&c, i, dir.path(), false)).collect();
    let at = |r: u64| (GENESIS as u64 + (r - 1) * 2) * 1000 + 100;
    for r in 1..=3 {
        run(&mut nodes, &[true; N], at(r));
    }
    let info = nodes[0].beacon.info().clone();
    assert_eq!(info.scheme(), SchemeId::PedersenBlsUnchained);
    assert_eq!(info.period_secs(), 2);
    for n in &nodes {
        assert_eq!(n.beacon.last_round(), 3);
    }
    for r in 1..=3 {
        let round = nodes[0].store.round(&info.hash(), r).unwrap().unwrap();
        assert_eq!(round.previous_signature, None);
        verify_round(&info, &round).unwrap();
    }
    let beacon = http::BeaconHttp::default();
    let addr = serve_beacon(beacon.clone()).await;
    beacon.set(http::Serving {
        info: info.clone(),
        store: nodes[0].store.clone(),
    });
    let (code, body) = http_get(addr, "/info").await;
    assert_eq!(code, 200, "{body}");
    let served: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(served["schemeID"], "pedersen-bls-unchained");
    assert_eq!(served["period"], 2);
    assert_eq!(ChainInfo::from_json(body.as_bytes()).unwrap(), info);
    let (code, body) = http_get(addr, "/public/latest").await;
    assert_eq!(code, 200, "{body}");
    let latest: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(latest["round"], 3);
    assert!(latest.get("previous_signature").is_none(), "{body}");
    verify_round(&info, &Round::from_json(body.as_bytes()).unwrap()).unwrap();
}

#[test]
fn genesis_follows_the_activation_block_time() {
    use crate::driver::beacon_genesis_time;
    assert_eq!(beacon_genesis_time(1_700_000_000_000, 3), 1_700_000_003);
    assert_eq!(beacon_genesis_time(1_700_000_000_001, 3), 1_700_000_004);
    // Any block time gives a time, without overflow.
    assert_eq!(
        beacon_genesis_time(u64::MAX, u32::MAX),
        (u64::MAX.div_ceil(1000)) as i64 + i64::from(u32::MAX)
    );
}

#[test]
fn every_stored_round_keeps_when_and_how_this_node_stored_it() {
    use store::{RoundOrigin, RoundTiming, StoredRound};
    let dir = tempfile::tempdir().unwrap();
    let c = committee(8);
    let mut nodes: Vec<Node> = (0..N).map(|i| node(&c, i, dir.path(), false)).collect();
    run(&mut nodes, &[true; N], at_round(1));
    // Member 3 misses rounds 2 and 3, then learns them from the others' answers in round 4.
    for r in 2..=3 {
        run(&mut nodes, &[true, true, true, false], at_round(r));
    }
    run(&mut nodes, &[true, true, false, true], at_round(4));
    let info = nodes[0].beacon.info().clone();
    let timings = nodes[3].store.timings(&info.hash(), 1, 10).unwrap();
    assert_eq!(
        timings.iter().map(|t| t.round).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    // Rounds 2 and 3 came from an answer received at round 4's clock: their latency is the
    // whole wait, and they are marked as synced.
    for (r, t) in [(2u64, &timings[1]), (3, &timings[2])] {
        assert_eq!(
            *t,
            StoredRound {
                round: r,
                timing: Some(RoundTiming {
                    stored_ms: at_round(4),
                    origin: RoundOrigin::Synced,
                }),
            }
        );
        let expected = i64::try_from(at_round(4) - at_round(r)).unwrap() + 100;
        assert_eq!(t.timing.unwrap().latency_ms(&info, r), Some(expected));
    }
    // Rounds combined here: stored at the tick's clock (100 ms into the round) plus the time
    // the engine call took, never before it.
    for t in [&timings[0], &timings[3]] {
        let timing = t.timing.unwrap();
        assert_eq!(timing.origin, RoundOrigin::Combined);
        assert!(timing.stored_ms >= at_round(t.round));
        let latency = timing.latency_ms(&info, t.round).unwrap();
        assert!((100..3000).contains(&latency), "latency {latency} ms");
    }
    // Bounded and ordered ranges.
    assert!(
        nodes[0]
            .store
            .timings(&info.hash(), 3, 2)
            .unwrap()
            .is_empty()
    );
    assert_eq!(nodes[0].store.timings(&info.hash(), 2, 3).unwrap().len(), 2);
    let other_chain = [9u8; 32];
    assert!(
        nodes[0]
            .store
            .timings(&other_chain, 1, 10)
            .unwrap()
            .is_empty()
    );
}

/// One HTTP/1.0 GET on loopback: (status code, body).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let code = head.split(' ').nth(1).unwrap().parse().unwrap();
        (code, body.to_owned())
    })
    .await
    .unwrap()
}

async fn serve_beacon(beacon: http::BeaconHttp) -> std::net::SocketAddr {
    let metrics = Arc::new(Metrics::new());
    let handle = crate::status::StatusHandle {
        status: Default::default(),
        metrics: metrics.clone(),
        beacon,
        sign: crate::sign::SignService::disabled(metrics),
    };
    let (addr, _) = crate::status::serve(([127, 0, 0, 1], 0).into(), handle)
        .await
        .unwrap();
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rounds_endpoint_serves_bounded_ranges_with_latencies() {
    let dir = tempfile::tempdir().unwrap();
    let c = committee(9);
    let mut nodes: Vec<Node> = (0..N).map(|i| node(&c, i, dir.path(), false)).collect();
    for r in 1..=3 {
        run(&mut nodes, &[true; N], at_round(r));
    }
    let info = nodes[0].beacon.info().clone();
    let beacon = http::BeaconHttp::default();
    let addr = serve_beacon(beacon.clone()).await;
    // Before the beacon starts: a JSON 404.
    let (code, body) = http_get(addr, "/beacon/rounds").await;
    assert_eq!(code, 404);
    assert!(body.contains("\"error\""), "{body}");
    beacon.set(http::Serving {
        info: info.clone(),
        store: nodes[0].store.clone(),
    });
    let (code, body) = http_get(addr, "/beacon/rounds").await;
    assert_eq!(code, 200, "{body}");
    let answer: rounds::RoundsJson = serde_json::from_str(&body).unwrap();
    assert_eq!(answer.chain_hash, hex::encode(info.hash()));
    assert_eq!(answer.latest_round, 3);
    assert_eq!(answer.period, 3);
    assert_eq!(answer.rounds.len(), 3);
    for (i, r) in answer.rounds.iter().enumerate() {
        let number = i as u64 + 1;
        assert_eq!(r.round, number);
        let scheduled = (GENESIS + (number as i64 - 1) * 3) * 1000;
        assert_eq!(r.scheduled_ms, Some(scheduled));
        let stored = r.stored_ms.unwrap();
        assert_eq!(r.latency_ms, Some(stored as i64 - scheduled));
        assert_eq!(r.origin.as_deref(), Some("combined"));
    }
    let (code, body) = http_get(addr, "/beacon/rounds?from=2&to=2").await;
    assert_eq!(code, 200);
    let answer: rounds::RoundsJson = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer.rounds.iter().map(|r| r.round).collect::<Vec<_>>(),
        [2]
    );
    // Too wide, reversed or not numbers: a JSON 400, never a cut answer.
    for bad in [
        "/beacon/rounds?from=1&to=1001",
        "/beacon/rounds?from=3&to=2",
        "/beacon/rounds?from=x",
        "/beacon/rounds?round=1",
    ] {
        let (code, body) = http_get(addr, bad).await;
        assert_eq!(code, 400, "{bad}: {body}");
        assert!(body.contains("\"error\""), "{bad}: {body}");
    }
    // A field it does not take is named as such, not as a bad number.
    let (_, body) = http_get(addr, "/beacon/rounds?round=1").await;
    assert!(
        body.contains("unknown field `round`") && body.contains("takes from and to"),
        "{body}"
    );
    // drand's paths are unchanged: the round's JSON carries no timing.
    let (code, body) = http_get(addr, "/public/2").await;
    assert_eq!(code, 200);
    assert_eq!(
        body,
        nodes[0]
            .store
            .round(&info.hash(), 2)
            .unwrap()
            .unwrap()
            .to_json()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_beacon_answers_every_beacon_path_with_a_json_503() {
    let addr = serve_beacon(http::BeaconHttp::disabled()).await;
    for path in [
        "/info",
        "/public/latest",
        "/public/1",
        "/beacon/rounds",
        "/beacon/rounds?from=1&to=2",
        "/chains",
        "/0101010101010101010101010101010101010101010101010101010101010101/info",
        "/0101010101010101010101010101010101010101010101010101010101010101/public/1",
    ] {
        let (code, body) = http_get(addr, path).await;
        assert_eq!(code, 503, "{path}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], http::DISABLED, "{path}");
    }
    // The node's own endpoints still answer.
    assert_eq!(http_get(addr, "/status").await.0, 200);
}

/// Rounds `1..=upto` of `c`'s chain, signed with the group secret: the values the committee
/// produces (BLS signatures are unique), without running it.
fn signed_rounds(c: &Committee, upto: u64) -> Vec<Round> {
    let mut previous = ChainInfo::from_json(c.record.chain_info.as_bytes())
        .unwrap()
        .group_hash()
        .to_vec();
    (1..=upto)
        .map(|r| {
            let message =
                keyquorum_beacon::scheme::round_message(SchemeId::PedersenBlsChained, &previous, r);
            let signature =
                <keyquorum_crypto::Bls12381G2 as Curve>::point_bytes(&tbls::sign::<Scheme>(
                    &Secret::new(c.secret),
                    &message,
                ));
            Round {
                round: r,
                signature: signature.clone(),
                previous_signature: Some(std::mem::replace(&mut previous, signature)),
            }
        })
        .collect()
}

/// A node of `c`'s view that holds no share (outside the committee).
fn observer(c: &Committee, dir: &std::path::Path) -> Node {
    let store = Arc::new(BeaconStore::open(&dir.join("observer.redb")).unwrap());
    let metrics = Arc::new(Metrics::new());
    let beacon = Beacon::new(&c.record, None, store.clone(), metrics.clone(), false).unwrap();
    assert!(!beacon.is_member());
    Node {
        beacon,
        metrics,
        store,
    }
}

/// A store holding `rounds` of `c`'s chain.
fn holding(c: &Committee, dir: &std::path::Path, rounds: &[Round]) -> Arc<BeaconStore> {
    let store = Arc::new(BeaconStore::open(&dir.join("holder.redb")).unwrap());
    let info = ChainInfo::from_json(c.record.chain_info.as_bytes()).unwrap();
    store.put_chain(&info).unwrap();
    let at = store::RoundTiming {
        stored_ms: 0,
        origin: store::RoundOrigin::Combined,
    };
    for r in rounds {
        store.put_round(&info, r, at).unwrap();
    }
    store
}

#[test]
fn a_node_outside_the_committee_fetches_the_chain_in_bounded_batches() {
    let dir = tempfile::tempdir().unwrap();
    let c = committee(11);
    let rounds = signed_rounds(&c, 250);
    let holder = holding(&c, dir.path(), &rounds);
    let mut obs = observer(&c, dir.path());
    let info = obs.beacon.info().clone();
    let now = at_round(250);
    let mut asked = Vec::new();
    while let Some(ask) = obs.beacon.sync_due(now) {
        assert!(
            c.record
                .members
                .iter()
                .any(|m| m.identity == hex::encode(&ask.to))
        );
        asked.push((ask.request.from, ask.request.count));
        let answer = sync::answer(Some(&holder), &ask.request.to_bytes());
        // A node outside the committee sends no partial, whatever it learns.
        assert!(obs.beacon.on_sync_answer(&ask, Ok(answer), now).is_empty());
        assert!(asked.len() <= 3, "{asked:?}");
    }
    assert_eq!(asked, [(1, 100), (101, 100), (201, 50)]);
    assert_eq!(obs.beacon.last_round(), 250);
    assert_eq!(obs.metrics.beacon_syncs("rounds"), (3, 250));
    for r in [1, 100, 101, 250] {
        assert_eq!(
            obs.store.round(&info.hash(), r).unwrap().as_ref(),
            Some(&rounds[r as usize - 1])
        );
    }
    assert_eq!(
        obs.store.timings(&info.hash(), 250, 250).unwrap()[0]
            .timing
            .map(|t| t.origin),
        Some(store::RoundOrigin::Synced)
    );

    // Caught up: nothing to ask until the next round starts; then the committee does not
    // have it yet, so the next request waits and goes to the next member.
    assert_eq!(obs.beacon.sync_due(now + 2000), None);
    let ask = obs.beacon.sync_due(at_round(251)).unwrap();
    assert_eq!((ask.request.from, ask.request.count), (251, 1));
    let empty = sync::answer(Some(&holder), &ask.request.to_bytes());
    obs.beacon.on_sync_answer(&ask, Ok(empty), at_round(251));
    assert_eq!(obs.metrics.beacon_syncs("empty").0, 1);
    assert_eq!(obs.beacon.sync_due(at_round(251) + 100), None);
    let again = obs
        .beacon
        .sync_due(at_round(251) + sync::SYNC_RETRY.as_millis() as u64)
        .unwrap();
    assert_eq!(again.request, ask.request);
    assert_ne!(again.to, ask.to);
    // One request at a time.
    assert_eq!(obs.beacon.sync_due(at_round(252)), None);
}

#[test]
fn fetched_rounds_are_stored_only_when_they_chain_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let c = committee(12);
    let rounds = signed_rounds(&c, 6);
    let other = signed_rounds(&committee(13), 6);
    let mut obs = observer(&c, dir.path());
    let info = obs.beacon.info().clone();
    let now = at_round(6);
    let answer_with = |obs: &mut Node, answer: Result<Vec<u8>, String>| {
        let ask = obs.beacon.sync_due(now).unwrap();
        obs.beacon.on_sync_answer(&ask, answer, now);
        // The refusal made the next request wait; the test asks again at once.
        obs.beacon.syncer = sync::Syncer::default();
    };

    // Another chain's rounds: refused, nothing stored.
    answer_with(&mut obs, Ok(encode_rounds(&other)));
    assert_eq!(obs.beacon.last_round(), 0);
    assert_eq!(obs.metrics.beacon_syncs("refused"), (1, 0));
    // A batch that does not start at the next round.
    answer_with(&mut obs, Ok(encode_rounds(&rounds[1..])));
    assert_eq!(obs.beacon.last_round(), 0);
    // Rounds 1 and 2, then a round 3 with round 4's signature: 1 and 2 are kept, the answer
    // ends at the round that fails.
    let mut tampered = rounds[..4].to_vec();
    tampered[2].signature = rounds[3].signature.clone();
    answer_with(&mut obs, Ok(encode_rounds(&tampered)));
    assert_eq!(obs.beacon.last_round(), 2);
    assert_eq!(obs.store.round(&info.hash(), 3).unwrap(), None);
    assert_eq!(obs.metrics.beacon_syncs("refused"), (3, 2));
    // A round 3 that verifies under another previous signature does not chain to round 2.
    let mut rechained = rounds[2].clone();
    rechained.previous_signature = Some(rounds[0].signature.clone());
    answer_with(&mut obs, Ok(encode_rounds(&[rechained])));
    assert_eq!(obs.beacon.last_round(), 2);
    // Bytes that do not decode, no answer at all.
    answer_with(&mut obs, Ok(vec![0, 1, 2]));
    answer_with(&mut obs, Err("unreachable".into()));
    assert_eq!(obs.metrics.beacon_syncs("unanswered").0, 2);
    // An answer to a request for another chain is not this beacon's.
    let mut ask = obs.beacon.sync_due(now).unwrap();
    ask.request.chain = [0; 32];
    obs.beacon
        .on_sync_answer(&ask, Ok(encode_rounds(&rounds[2..])), now);
    assert_eq!(obs.beacon.last_round(), 2);
    // The right rounds go in.
    obs.beacon.syncer = sync::Syncer::default();
    answer_with(&mut obs, Ok(encode_rounds(&rounds[2..])));
    assert_eq!(obs.beacon.last_round(), 6);
    for r in &rounds {
        assert_eq!(
            obs.store.round(&info.hash(), r.round).unwrap().as_ref(),
            Some(r)
        );
    }
}

#[test]
fn a_peer_over_its_sync_rate_is_refused_others_are_not_and_the_bucket_refills() {
    // Two requests at once, then one a second, per asking peer.
    let mut gate = sync::SyncGate::new(1.0, 2);
    let asked = SyncRequest::after([3; 32], 0, 10).unwrap();
    let t0 = 1_000_000;
    assert_eq!(gate.admit("greedy", t0), Ok(()));
    assert_eq!(gate.admit("greedy", t0), Ok(()));
    let refusal = gate.admit("greedy", t0).unwrap_err();
    assert_eq!(
        keyquorum_beacon::sync::decode_answer(&asked, &refusal),
        Ok(keyquorum_beacon::sync::SyncAnswer::RateLimited {
            retry_after_ms: 1000
        })
    );
    // Another peer has its own bucket.
    assert_eq!(gate.admit("patient", t0), Ok(()));
    // Still empty half a second later; one token back after a second; never more than the
    // burst however long the wait.
    assert!(gate.admit("greedy", t0 + 500).is_err());
    assert_eq!(gate.admit("greedy", t0 + 1000), Ok(()));
    assert!(gate.admit("greedy", t0 + 1000).is_err());
    assert_eq!(gate.admit("greedy", t0 + 600_000), Ok(()));
    assert_eq!(gate.admit("greedy", t0 + 600_000), Ok(()));
    assert!(gate.admit("greedy", t0 + 600_000).is_err());
}

#[test]
fn a_refusal_keeps_the_asker_off_that_member_for_the_wait_it_named() {
    let dir = tempfile::tempdir().unwrap();
    let c = committee(14);
    let rounds = signed_rounds(&c, 5);
    let holder = holding(&c, dir.path(), &rounds);
    let mut obs = observer(&c, dir.path());
    let now = at_round(5);
    let first = obs.beacon.sync_due(now).unwrap();
    obs.beacon.on_sync_answer(
        &first,
        Ok(keyquorum_beacon::sync::encode_rate_limited(5000)),
        now,
    );
    assert_eq!(obs.metrics.beacon_syncs("rate_limited"), (1, 0));
    // Another member is asked at once; the one that refused is not asked while its wait runs,
    // even when every other member fails to answer.
    let mut kept_off = Vec::new();
    let mut t = now;
    while t < now + 5000 {
        if let Some(ask) = obs.beacon.sync_due(t) {
            assert_ne!(
                ask.to,
                first.to,
                "asked again {} ms after its refusal",
                t - now
            );
            kept_off.push(ask.to.clone());
            obs.beacon
                .on_sync_answer(&ask, Err("unreachable".into()), t);
        }
        t += 100;
    }
    assert!(
        kept_off.len() >= N - 1,
        "the other members were asked: {kept_off:?}"
    );
    // Once the wait is over, it is asked again in its turn, and its rounds go in.
    let mut t = now + 5000;
    let ask = loop {
        match obs.beacon.sync_due(t) {
            Some(ask) if ask.to == first.to => break ask,
            Some(ask) => {
                obs.beacon
                    .on_sync_answer(&ask, Err("unreachable".into()), t);
            }
            None => {}
        }
        t += 100;
        assert!(t < now + 10_000, "never asked again");
    };
    let answer = sync::answer(Some(&holder), &ask.request.to_bytes());
    obs.beacon.on_sync_answer(&ask, Ok(answer), t);
    assert_eq!(obs.beacon.last_round(), 5);
}

#[test]
fn answers_to_sync_requests_are_consecutive_bounded_and_empty_when_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let c = committee(14);
    let rounds = signed_rounds(&c, 5);
    let holder = holding(&c, dir.path(), &rounds);
    let chain = ChainInfo::from_json(c.record.chain_info.as_bytes())
        .unwrap()
        .hash();
    let ask = |from, count| SyncRequest { chain, from, count };
    let decoded = |req: SyncRequest| {
        decode_rounds(&req, &sync::answer(Some(&holder), &req.to_bytes())).unwrap()
    };
    assert_eq!(decoded(ask(2, 3)), rounds[1..4]);
    assert_eq!(decoded(ask(4, 100)), rounds[3..]);
    assert!(decoded(ask(6, 10)).is_empty());
    assert!(
        decoded(SyncRequest {
            chain: [1; 32],
            from: 1,
            count: 5
        })
        .is_empty()
    );
    // Without a beacon store, or for a request that does not decode.
    assert!(
        decode_rounds(&ask(1, 5), &sync::answer(None, &ask(1, 5).to_bytes()))
            .unwrap()
            .is_empty()
    );
    assert!(sync::answer(Some(&holder), &[0; 3]).is_empty());
    assert!(sync::answer(Some(&holder), &ask(1, MAX_SYNC_ROUNDS + 1).to_bytes()).is_empty());
    // A gap ends the answer: only consecutive rounds are sent.
    let gappy = BeaconStore::open(&dir.path().join("gappy.redb")).unwrap();
    let info = ChainInfo::from_json(c.record.chain_info.as_bytes()).unwrap();
    let at = store::RoundTiming {
        stored_ms: 0,
        origin: store::RoundOrigin::Combined,
    };
    for r in [&rounds[0], &rounds[1], &rounds[3]] {
        gappy.put_round(&info, r, at).unwrap();
    }
    assert_eq!(
        decode_rounds(
            &ask(1, 5),
            &sync::answer(Some(&gappy), &ask(1, 5).to_bytes())
        )
        .unwrap(),
        rounds[..2]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_chains_are_served_under_their_hash() {
    let dir = tempfile::tempdir().unwrap();
    let first = committee(15);
    let first_info = ChainInfo::from_json(first.record.chain_info.as_bytes()).unwrap();
    let first_rounds = signed_rounds(&first, 3);
    let store = holding(&first, dir.path(), &first_rounds);
    // A fresh key: the next chain names the first.
    let mut second = committee(16);
    let second_info = ChainInfo::for_view(
        Some(&first_info),
        SchemeId::PedersenBlsChained,
        ChainInfo::from_json(second.record.chain_info.as_bytes())
            .unwrap()
            .public_key(),
        [8; 32],
        GENESIS + 300,
        3,
        DEFAULT_BEACON_ID,
    )
    .unwrap();
    second.record.chain_info = second_info.to_json();
    let second_rounds = signed_rounds(&second, 2);
    store.put_chain(&second_info).unwrap();
    let at = store::RoundTiming {
        stored_ms: 0,
        origin: store::RoundOrigin::Combined,
    };
    for r in &second_rounds {
        store.put_round(&second_info, r, at).unwrap();
    }

    let beacon = http::BeaconHttp::default();
    let addr = serve_beacon(beacon.clone()).await;
    let first_hash = hex::encode(first_info.hash());
    let second_hash = hex::encode(second_info.hash());
    // Before any chain is served.
    for path in [
        format!("/{first_hash}/info"),
        "/info".into(),
        "/public/1".into(),
    ] {
        let (code, body) = http_get(addr, &path).await;
        assert_eq!(code, 404, "{path}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"], "no beacon chain yet", "{path}");
    }
    beacon.set(http::Serving {
        info: second_info.clone(),
        store: store.clone(),
    });

    let get = |path: String| async move { http_get(addr, &path).await };
    // The current chain at drand's plain paths and under its hash.
    assert_eq!(get("/info".into()).await, (200, second_info.to_json()));
    assert_eq!(
        get(format!("/{second_hash}/info")).await,
        (200, second_info.to_json())
    );
    assert_eq!(
        get("/public/latest".into()).await,
        (200, second_rounds[1].to_json())
    );
    assert_eq!(
        get(format!("/{second_hash}/public/1")).await,
        (200, second_rounds[0].to_json())
    );
    // The ended chain under its hash: its info and every stored round.
    let (code, body) = get(format!("/{first_hash}/info")).await;
    assert_eq!(code, 200);
    assert_eq!(ChainInfo::from_json(body.as_bytes()).unwrap(), first_info);
    assert_eq!(
        second_info.link().and_then(|l| l.previous_chain_hash),
        Some(first_info.hash())
    );
    assert_eq!(
        get(format!("/{first_hash}/public/latest")).await,
        (200, first_rounds[2].to_json())
    );
    for r in &first_rounds {
        let (code, body) = get(format!("/{first_hash}/public/{}", r.round)).await;
        assert_eq!(code, 200);
        let served = Round::from_json(body.as_bytes()).unwrap();
        assert_eq!(&served, r);
        verify_round(&first_info, &served).unwrap();
    }
    // The plain paths are the current chain's, not the ended one's; unknown chains,
    // malformed hashes and rounds. Each answer says why in JSON, as the node's other paths do.
    for (path, code, why) in [
        ("/public/3".to_string(), 404, "round not produced"),
        (format!("/{first_hash}/public/4"), 404, "round not produced"),
        (format!("/{}/info", "ab".repeat(32)), 404, "unknown chain"),
        (
            format!("/{}/public/1", "ab".repeat(32)),
            404,
            "unknown chain",
        ),
        ("/abcd/info".to_string(), 400, "chain hash"),
        (format!("/{}/info", "zz".repeat(32)), 400, "chain hash"),
        (format!("/{first_hash}/public/x"), 400, "round must be"),
        ("/public/x".to_string(), 400, "round must be"),
    ] {
        let (got, body) = get(path.clone()).await;
        assert_eq!(got, code, "{path}: {body}");
        let body: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"));
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(why), "{path}: {body}");
    }
    // The list of chains.
    let (code, body) = get("/chains".into()).await;
    assert_eq!(code, 200);
    let mut listed: Vec<String> = serde_json::from_str(&body).unwrap();
    listed.sort();
    let mut both = vec![first_hash.clone(), second_hash.clone()];
    both.sort();
    assert_eq!(listed, both);
    // The node's other paths are untouched.
    assert_eq!(get("/status".into()).await.0, 200);
    assert_eq!(get("/beacon/rounds".into()).await.0, 200);
}

/// The record of view `view` signing on a fresh-key chain after `previous`'s, its round 1 at
/// `genesis`.
fn fresh_key_view(
    previous: &BeaconViewRecord,
    c: &Committee,
    view: u64,
    genesis: i64,
) -> BeaconViewRecord {
    let old = ChainInfo::from_json(previous.chain_info.as_bytes()).unwrap();
    let group_key = ChainInfo::from_json(c.record.chain_info.as_bytes()).unwrap();
    let info = ChainInfo::for_view(
        Some(&old),
        SchemeId::PedersenBlsChained,
        group_key.public_key(),
        [view as u8; 32],
        genesis,
        3,
        DEFAULT_BEACON_ID,
    )
    .unwrap();
    assert_ne!(info.hash(), old.hash());
    BeaconViewRecord {
        view,
        chain_info: info.to_json(),
        ended: crate::driver::ended_chains(Some(previous), &info),
        ..c.record.clone()
    }
}

#[test]
fn a_fresh_key_names_the_ended_chain_with_its_last_possible_round_and_a_reshare_keeps_it() {
    use crate::driver::{MAX_ENDED_CHAINS, ended_chains};
    let first = committee(21);
    let first_info = ChainInfo::from_json(first.record.chain_info.as_bytes()).unwrap();
    assert!(ended_chains(None, &first_info).is_empty());
    // A reshare continues the chain: nothing ended.
    assert!(ended_chains(Some(&first.record), &first_info).is_empty());
    // A fresh key at round 10's start plus a second: round 10 was the last one in progress.
    let second = fresh_key_view(&first.record, &committee(22), 2, GENESIS + 9 * 3 + 1);
    assert_eq!(second.ended.len(), 1);
    let ended = &second.ended[0];
    assert_eq!(ended.chain_info, first.record.chain_info);
    assert_eq!(ended.last_round, 10);
    let identities: Vec<String> = first
        .record
        .members
        .iter()
        .map(|m| m.identity.clone())
        .collect();
    assert_eq!(ended.committee, identities);
    // A reshare of the second view keeps naming the first chain, once.
    let second_info = ChainInfo::from_json(second.chain_info.as_bytes()).unwrap();
    assert_eq!(ended_chains(Some(&second), &second_info), second.ended);
    // Every fresh key adds the chain it ends, the latest last, at most MAX_ENDED_CHAINS.
    let mut record = second;
    for view in 3..(MAX_ENDED_CHAINS as u64 + 5) {
        let next = fresh_key_view(
            &record,
            &committee(20 + view),
            view,
            GENESIS + view as i64 * 100,
        );
        assert_eq!(
            next.ended.last().map(|e| &e.chain_info),
            Some(&record.chain_info)
        );
        assert!(next.ended.len() <= MAX_ENDED_CHAINS);
        record = next;
    }
    assert_eq!(record.ended.len(), MAX_ENDED_CHAINS);
}

#[test]
fn a_new_node_fetches_an_ended_chain_from_its_committee_up_to_its_last_round() {
    let dir = tempfile::tempdir().unwrap();
    let c = committee(31);
    let info = ChainInfo::from_json(c.record.chain_info.as_bytes()).unwrap();
    let rounds = signed_rounds(&c, 250);
    // A node that has the ended chain's rounds (more than the bound, to show the bound
    // holds): a member of the current committee; the ended chain's committee is down.
    let holder = holding(&c, dir.path(), &rounds);
    let record = ended_record(&c, 230);
    let current = vec![identity(10), identity(11)];
    let me = identity(11);
    let store = Arc::new(BeaconStore::open(&dir.path().join("new.redb")).unwrap());
    let metrics = Arc::new(Metrics::new());
    let mut ended =
        ended::EndedChain::new(&record, &current, &me, store.clone(), metrics.clone()).unwrap();
    // Known, so served under its hash, before any round is.
    assert_eq!(store.chain(&info.hash()).unwrap(), Some(info.clone()));
    let now = at_round(400);
    let mut asked = Vec::new();
    let mut t = now;
    while !ended.finished() {
        if let Some(ask) = ended.sync_due(t) {
            assert_ne!(ask.to, me);
            assert!(ask.request.last() <= 230, "asked past the bound: {ask:?}");
            let answer = if ask.to == identity(10) {
                Ok(sync::answer(Some(&holder), &ask.request.to_bytes()))
            } else {
                Err("unreachable".to_owned())
            };
            asked.push(ask.to.clone());
            ended.on_sync_answer(&ask, answer, t);
        }
        t += 100;
        assert!(t < now + 60_000, "never finished: {asked:?}");
    }
    assert_eq!(ended.last_round(), 230);
    assert_eq!(store.last_round(&info.hash()).unwrap(), 230);
    for r in [1, 100, 230] {
        let got = store.round(&info.hash(), r).unwrap().unwrap();
        assert_eq!(got, rounds[r as usize - 1]);
        verify_round(&info, &got).unwrap();
    }
    assert_eq!(store.round(&info.hash(), 231).unwrap(), None);
    assert_eq!(metrics.beacon_syncs("rounds"), (3, 230));
    // The committee of the ended chain and the current members except this node were asked.
    assert!(asked.contains(&identity(0)) && asked.contains(&identity(10)));
    assert!(!asked.contains(&me));
    assert_eq!(ended.sync_due(t + 3_600_000), None);
}

#[test]
fn fetching_an_ended_chain_stops_after_a_turn_of_members_with_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let c = committee(32);
    let info = ChainInfo::from_json(c.record.chain_info.as_bytes()).unwrap();
    // The chain really ended at round 7; the bound, from the next chain's genesis, is 9.
    let rounds = signed_rounds(&c, 7);
    let holder = holding(&c, dir.path(), &rounds);
    let record = ended_record(&c, 9);
    let store = Arc::new(BeaconStore::open(&dir.path().join("new.redb")).unwrap());
    let metrics = Arc::new(Metrics::new());
    let mut ended =
        ended::EndedChain::new(&record, &[], &identity(3), store.clone(), metrics).unwrap();
    let now = at_round(100);
    // First nobody answers: a turn of the three other members, then a wait.
    let mut t = now;
    let mut asks = 0;
    while t < now + 5_000 {
        if let Some(ask) = ended.sync_due(t) {
            asks += 1;
            ended.on_sync_answer(&ask, Err("unreachable".into()), t);
        }
        t += 100;
    }
    assert_eq!(asks, 3);
    assert!(!ended.finished());
    assert_eq!(
        ended.sync_due(now + ended::ENDED_RETRY.as_millis() as u64 - 1),
        None
    );
    // Then they answer: round 1 to 7 from the first, nothing more from a full turn; done.
    let mut t = now + ended::ENDED_RETRY.as_millis() as u64;
    let mut asks = 0;
    while !ended.finished() {
        if let Some(ask) = ended.sync_due(t) {
            asks += 1;
            ended.on_sync_answer(
                &ask,
                Ok(sync::answer(Some(&holder), &ask.request.to_bytes())),
                t,
            );
        }
        t += 100;
        assert!(asks < 10, "never finished");
    }
    assert_eq!(
        asks, 4,
        "one batch, then one empty answer from each of the three"
    );
    assert_eq!(ended.last_round(), 7);
    assert_eq!(store.last_round(&info.hash()).unwrap(), 7);
    assert_eq!(ended.sync_due(t + 3_600_000), None);
}

#[test]
fn an_empty_answer_does_not_end_the_fetch_while_the_chains_members_are_only_busy() {
    let dir = tempfile::tempdir().unwrap();
    let c = committee(33);
    let info = ChainInfo::from_json(c.record.chain_info.as_bytes()).unwrap();
    let rounds = signed_rounds(&c, 7);
    let holder = holding(&c, dir.path(), &rounds);
    let record = ended_record(&c, 9);
    let old = record.committee.clone();
    // A member of the current committee that never had the ended chain, and this node.
    let newcomer = identity(10);
    let me = identity(11);
    let store = Arc::new(BeaconStore::open(&dir.path().join("new.redb")).unwrap());
    let metrics = Arc::new(Metrics::new());
    let mut ended = ended::EndedChain::new(
        &record,
        std::slice::from_ref(&newcomer),
        &me,
        store.clone(),
        metrics,
    )
    .unwrap();
    let now = at_round(100);
    // The chain's members all refuse under their rate limits; the newcomer answers, empty.
    let mut t = now;
    let mut refusals = 0;
    while t < now + 30_000 {
        if let Some(ask) = ended.sync_due(t) {
            let answer = if ask.to == newcomer {
                Ok(sync::answer(None, &ask.request.to_bytes()))
            } else {
                refusals += 1;
                Ok(keyquorum_beacon::sync::encode_rate_limited(5_000))
            };
            ended.on_sync_answer(&ask, answer, t);
        }
        assert!(
            !ended.finished(),
            "ended by an empty answer while members were busy"
        );
        t += 100;
    }
    assert!(refusals >= old.len(), "every member was asked: {refusals}");
    // Later they answer: the rounds they hold are fetched, then a full turn ends it.
    let mut t = now + ended::ENDED_RETRY.as_millis() as u64 + 30_000;
    let mut asks = 0;
    while !ended.finished() {
        if let Some(ask) = ended.sync_due(t) {
            asks += 1;
            let answer = if ask.to == newcomer {
                sync::answer(None, &ask.request.to_bytes())
            } else {
                sync::answer(Some(&holder), &ask.request.to_bytes())
            };
            ended.on_sync_answer(&ask, Ok(answer), t);
        }
        t += 100;
        assert!(asks < 20, "never finished");
    }
    assert_eq!(ended.last_round(), 7);
    assert_eq!(store.last_round(&info.hash()).unwrap(), 7);
}

/// The record a fresh key leaves of `c`'s chain, ended at most at `last_round`.
fn ended_record(c: &Committee, last_round: u64) -> crate::store::EndedChainRecord {
    crate::store::EndedChainRecord {
        chain_info: c.record.chain_info.clone(),
        last_round,
        committee: c
            .record
            .members
            .iter()
            .map(|m| m.identity.clone())
            .collect(),
    }
}
