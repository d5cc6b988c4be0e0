//! The threshold round engine: t-of-n production at several sizes, culprits named, senders
//! checked, catch-up in order, one value per round, view changes; every produced round goes
//! through the same verifier as drand's published rounds (`verify_round`, after a trip through
//! drand's JSON).

use crate::common;

use std::collections::BTreeSet;

use blstrs::Scalar;
use common::*;
use keyquorum_beacon::scheme::round_message;
use keyquorum_beacon::{
    Action, BlsUnchainedG1Rfc9380, ChainInfo, DrandScheme, Engine, EngineConfig, EngineError,
    MemberId, PartialBeacon, PedersenBlsChained, PedersenBlsUnchained, Rejected, Round, RoundStore,
    SchemeId, SigningShare, ViewGroup, verify_round,
};
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::{Curve, tbls};
use proptest::prelude::*;

/// Every node stored rounds `1..=last`, the same ones, chained to each other, and each one
/// verifies with the drand verifier after a trip through drand's JSON.
fn assert_chain<S: DrandScheme>(nodes: &[Node<S>], up: &[bool], info: &ChainInfo, last: u64) {
    let reference = &nodes[up.iter().position(|u| *u).unwrap()].store;
    assert_eq!(reference.last_round(), last);
    for (node, _) in nodes.iter().zip(up).filter(|(_, u)| **u) {
        assert_eq!(node.store.0, reference.0);
    }
    for r in 1..=last {
        let round = reference.get(r).unwrap();
        let wire = Round::from_json(round.to_json().as_bytes()).unwrap();
        verify_round(info, &wire).unwrap_or_else(|e| panic!("round {r}: {e}"));
        if S::ID.is_chained() {
            let expected_prev = if r == 1 {
                info.group_hash().to_vec()
            } else {
                reference.get(r - 1).unwrap().signature
            };
            assert_eq!(round.previous_signature, Some(expected_prev));
        } else {
            assert_eq!(round.previous_signature, None);
        }
    }
}

#[test]
fn t_of_n_chained_rounds_verify_with_the_drand_verifier() {
    for (seed, (n, t)) in [(1, 1), (2, 2), (4, 3), (7, 5), (10, 7), (16, 11)]
        .into_iter()
        .enumerate()
    {
        let dealt = deal::<PedersenBlsChained>(n, t, None, seed as u64);
        let info = first_chain(&dealt.group, 1);
        let mut nodes = nodes(&dealt, &info);
        let up = vec![true; n];
        for now in 1..=3 {
            tick(&mut nodes, &up, now);
        }
        assert_chain(&nodes, &up, &info, 3);
        // The produced signature is the one the full key gives.
        let r1 = nodes[0].store.get(1).unwrap();
        let msg = round_message(SchemeId::PedersenBlsChained, info.group_hash(), 1);
        let full = tbls::sign::<PedersenBlsChained>(&Secret::new(dealt.secret), &msg);
        assert_eq!(
            r1.signature,
            blstrs::G2Affine::to_compressed(&full).to_vec()
        );
        assert!(nodes.iter().all(|n| n.culprits.is_empty()));
    }
}

#[test]
fn unchained_schemes_and_keys_in_g2_work_alike() {
    let dealt = deal::<PedersenBlsUnchained>(5, 4, None, 40);
    let info = first_chain(&dealt.group, 2);
    let mut ns = nodes(&dealt, &info);
    let up = vec![true; 5];
    tick(&mut ns, &up, 2);
    assert_chain(&ns, &up, &info, 2);

    let dealt = deal::<BlsUnchainedG1Rfc9380>(5, 3, None, 41);
    let info = first_chain(&dealt.group, 3);
    assert_eq!(info.public_key().len(), 96);
    let mut ns = nodes(&dealt, &info);
    tick(&mut ns, &up, 2);
    assert_chain(&ns, &up, &info, 2);
}

/// A partial for `round` under a wrong share, with `member`'s index.
fn forged<S: DrandScheme>(
    dealt: &Dealt<S>,
    member: usize,
    msg: &[u8],
    round: u64,
    seed: u64,
) -> PartialBeacon
where
    S::Public: Curve<Scalar = Scalar>,
{
    let wrong = Secret::new(<S::Public as Curve>::random_scalar(&mut rng(seed)));
    let index = dealt.group.members()[member].share_index;
    PartialBeacon {
        round,
        partial: tbls::partial_sign::<S>(&wrong, index, msg).to_bytes(),
    }
}

fn honest<S: DrandScheme>(
    dealt: &Dealt<S>,
    member: usize,
    msg: &[u8],
    round: u64,
) -> PartialBeacon {
    let index = dealt.group.members()[member].share_index;
    PartialBeacon {
        round,
        partial: tbls::partial_sign::<S>(&Secret::new(dealt.shares[member]), index, msg).to_bytes(),
    }
}

/// An observer (no share) fed `order` (member, bad?) partials for round 1: returns what it
/// stored and the culprits it named.
fn observe(
    dealt: &Dealt<PedersenBlsChained>,
    info: &ChainInfo,
    order: &[(usize, bool)],
) -> (Option<Round>, BTreeSet<MemberId>) {
    let mut engine = Engine::new(
        info.clone(),
        dealt.group.clone(),
        None,
        EngineConfig::default(),
    )
    .unwrap();
    let mut store = MemStore::default();
    assert!(engine.tick(1, &store).is_empty());
    let msg = round_message(SchemeId::PedersenBlsChained, info.group_hash(), 1);
    let mut culprits = BTreeSet::new();
    for (i, &(member, bad)) in order.iter().enumerate() {
        let p = if bad {
            forged(dealt, member, &msg, 1, 1000 + i as u64)
        } else {
            honest(dealt, member, &msg, 1)
        };
        match engine.on_partial(Some(member as MemberId), &p, &store) {
            Ok(actions) => {
                for a in actions {
                    match a {
                        Action::Store(r) => {
                            assert!(store.0.insert(r.round, r).is_none());
                        }
                        Action::Culprit { member, round } => {
                            assert_eq!(round, 1);
                            assert!(culprits.insert(member), "named twice");
                        }
                        Action::Broadcast(_) => panic!("an observer does not sign"),
                    }
                }
            }
            Err(Rejected::Stale { round: 1 }) => assert!(store.get(1).is_some()),
            Err(e) => panic!("{e}"),
        }
    }
    (store.get(1), culprits)
}

#[test]
fn bad_partials_from_up_to_n_minus_t_members_are_named_and_the_round_is_right() {
    for (seed, (n, t)) in [(3, 2), (4, 3), (7, 5), (10, 7), (10, 4)]
        .into_iter()
        .enumerate()
    {
        let dealt = deal::<PedersenBlsChained>(n, t, None, 100 + seed as u64);
        let info = first_chain(&dealt.group, 4);
        let msg = round_message(SchemeId::PedersenBlsChained, info.group_hash(), 1);
        let expected = tbls::sign::<PedersenBlsChained>(&Secret::new(dealt.secret), &msg);
        // The last n - t members are bad and speak first.
        let bad: Vec<usize> = (t..n).collect();
        let order: Vec<(usize, bool)> = bad
            .iter()
            .map(|&m| (m, true))
            .chain((0..t).map(|m| (m, false)))
            .collect();
        let (round, culprits) = observe(&dealt, &info, &order);
        let round = round.expect("t honest partials give the round");
        assert_eq!(
            round.signature,
            expected.to_compressed().to_vec(),
            "n={n} t={t}"
        );
        verify_round(&info, &round).unwrap();
        let bad_ids: BTreeSet<MemberId> = bad.iter().map(|&m| m as MemberId).collect();
        assert_eq!(culprits, bad_ids, "n={n} t={t}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any number of bad members up to n - t, in any arrival order: the round is the full
    /// key's signature, nobody honest is named, and a bad member whose partial arrived before
    /// the round completed is named.
    #[test]
    fn any_arrival_order_gives_the_right_round_and_only_true_culprits(
        n in 1usize..9,
        t_frac in 0.0f64..1.0,
        bad_seed in any::<u64>(),
        order_seed in any::<u64>(),
    ) {
        let t = 1 + ((n - 1) as f64 * t_frac) as usize;
        let dealt = deal::<PedersenBlsChained>(n, t, None, bad_seed ^ 7);
        let info = first_chain(&dealt.group, 5);
        // Choose up to n - t bad members and a permutation of everyone.
        let mut r = rng(bad_seed);
        let mut members: Vec<usize> = (0..n).collect();
        shuffle(&mut members, &mut r);
        let nbad = (rand_core::RngCore::next_u64(&mut r) as usize) % (n - t + 1);
        let bad: BTreeSet<usize> = members[..nbad].iter().copied().collect();
        let mut order: Vec<usize> = (0..n).collect();
        shuffle(&mut order, &mut rng(order_seed));
        let order: Vec<(usize, bool)> = order.iter().map(|&m| (m, bad.contains(&m))).collect();
        let (round, culprits) = observe(&dealt, &info, &order);
        let round = round.expect("at least t honest members");
        let msg = round_message(SchemeId::PedersenBlsChained, info.group_hash(), 1);
        let expected = tbls::sign::<PedersenBlsChained>(&Secret::new(dealt.secret), &msg);
        prop_assert_eq!(round.signature, expected.to_compressed().to_vec());
        for c in &culprits {
            prop_assert!(bad.contains(&(*c as usize)), "honest member {} named", c);
        }
        // Bad partials delivered before the t-th honest one were all examined.
        let mut honest_seen = 0;
        for (m, is_bad) in &order {
            if *is_bad {
                if honest_seen < t {
                    prop_assert!(culprits.contains(&(*m as MemberId)), "culprit {} missed", m);
                }
            } else {
                honest_seen += 1;
            }
        }
    }
}

fn shuffle<T>(v: &mut [T], r: &mut impl rand_core::RngCore) {
    for i in (1..v.len()).rev() {
        let j = (r.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

#[test]
fn senders_are_checked() {
    let dealt = deal::<PedersenBlsChained>(4, 3, None, 200);
    let info = first_chain(&dealt.group, 6);
    let mut engine = Engine::new(
        info.clone(),
        dealt.group.clone(),
        None,
        EngineConfig { max_catch_up: 4 },
    )
    .unwrap();
    let mut store = MemStore::default();
    engine.tick(1, &store);
    let msg = round_message(SchemeId::PedersenBlsChained, info.group_hash(), 1);
    let p1 = honest(&dealt, 1, &msg, 1);
    // A peer outside the view, and a member position beyond the committee.
    assert_eq!(
        engine.on_partial(None, &p1, &store),
        Err(Rejected::NotAMember)
    );
    assert_eq!(
        engine.on_partial(Some(4), &p1, &store),
        Err(Rejected::NotAMember)
    );
    // Member 0 relaying member 1's partial (a spoofed sender).
    assert_eq!(
        engine.on_partial(Some(0), &p1, &store),
        Err(Rejected::SpoofedIndex { member: 0 })
    );
    // Garbage, and a point that is not on the curve.
    let garbage = PartialBeacon {
        round: 1,
        partial: vec![1, 2, 3],
    };
    assert!(matches!(
        engine.on_partial(Some(1), &garbage, &store),
        Err(Rejected::Malformed { member: 1, .. })
    ));
    let mut off_curve = p1.clone();
    off_curve.partial[32..].fill(0xff);
    assert!(matches!(
        engine.on_partial(Some(1), &off_curve, &store),
        Err(Rejected::Malformed { member: 1, .. })
    ));
    // One partial per member and round.
    assert_eq!(engine.on_partial(Some(1), &p1, &store), Ok(vec![]));
    assert_eq!(
        engine.on_partial(Some(1), &p1, &store),
        Err(Rejected::Duplicate {
            member: 1,
            round: 1
        })
    );
    // Bounded future: rounds 1..=4 are accepted, 5 is not.
    let far = PartialBeacon {
        round: 5,
        ..honest(&dealt, 2, &msg, 5)
    };
    assert_eq!(
        engine.on_partial(Some(2), &far, &store),
        Err(Rejected::TooFarAhead { round: 5, limit: 5 })
    );
    // A bad partial completes the threshold, is named, and its sender is then ignored.
    let bad = forged(&dealt, 2, &msg, 1, 9);
    let p0 = honest(&dealt, 0, &msg, 1);
    assert_eq!(engine.on_partial(Some(0), &p0, &store), Ok(vec![]));
    assert_eq!(
        engine.on_partial(Some(2), &bad, &store),
        Ok(vec![Action::Culprit {
            member: 2,
            round: 1
        }])
    );
    assert_eq!(
        engine.on_partial(Some(2), &honest(&dealt, 2, &msg, 1), &store),
        Err(Rejected::KnownBad {
            member: 2,
            round: 1
        })
    );
    let actions = engine
        .on_partial(Some(3), &honest(&dealt, 3, &msg, 1), &store)
        .unwrap();
    let [Action::Store(r1)] = &actions[..] else {
        panic!("{actions:?}")
    };
    verify_round(&info, r1).unwrap();
    store.0.insert(1, r1.clone());
    // A stored round is stale.
    assert_eq!(
        engine.on_partial(Some(3), &honest(&dealt, 3, &msg, 1), &store),
        Err(Rejected::Stale { round: 1 })
    );
    // Refused as stale before its point is decoded (most partials arrive after their round is
    // complete, and decoding is most of a partial's cost): bytes that are no point at all.
    let mut undecodable = honest(&dealt, 3, &msg, 1);
    undecodable.partial[40] ^= 0xff;
    undecodable.partial[32] |= 0x20;
    assert_eq!(
        engine.on_partial(Some(3), &undecodable, &store),
        Err(Rejected::Stale { round: 1 })
    );
    // The same bytes for the next round are decoded, and refused.
    undecodable.round = 2;
    assert!(matches!(
        engine.on_partial(Some(3), &undecodable, &store),
        Err(Rejected::Malformed { member: 3, .. })
    ));
}

#[test]
fn rounds_missed_without_a_quorum_are_caught_up_in_order() {
    let dealt = deal::<PedersenBlsChained>(4, 3, None, 300);
    let info = first_chain(&dealt.group, 7);
    let mut ns = nodes(&dealt, &info);
    // Two of four up: below t = 3, nothing is produced for five rounds.
    let few = [true, true, false, false];
    for now in 1..=5 {
        tick(&mut ns, &few, now);
    }
    assert!(ns.iter().all(|n| n.store.0.is_empty()));
    // A third member returns during round 6: rounds 1..=6 are produced in order at once.
    let quorum = [true, true, true, false];
    tick(&mut ns, &quorum, 6);
    assert_chain(&ns, &quorum, &info, 6);
    assert!(ns[3].store.0.is_empty());
}

/// The engine signs by the clock it is given now, not the furthest one it was ever given: a
/// clock that jumped ahead once and was set right does not leave the node signing each round
/// as soon as the one before is stored (which would let `t - 1` others make rounds early).
#[test]
fn a_clock_set_back_after_a_jump_ahead_stops_early_signing() {
    let dealt = deal::<PedersenBlsChained>(3, 2, None, 500);
    let info = first_chain(&dealt.group, 9);
    let mut ns = nodes(&dealt, &info);
    let node = &mut ns[0];
    node.engine.tick(1_000, &node.store);
    tick(&mut ns, &[true; 3], 2);
    assert_chain(&ns, &[true; 3], &info, 2);
    let node = &mut ns[0];
    let early: Vec<u64> = node
        .engine
        .tick(2, &node.store)
        .iter()
        .filter_map(|a| match a {
            keyquorum_beacon::engine::Action::Broadcast(p) if p.round > 2 => Some(p.round),
            _ => None,
        })
        .collect();
    assert!(
        early.is_empty(),
        "partials signed before their time: {early:?}"
    );
    tick(&mut ns, &[true; 3], 3);
    assert_chain(&ns, &[true; 3], &info, 3);
}

#[test]
fn a_stored_round_is_never_produced_again_and_a_restart_continues_the_chain() {
    let dealt = deal::<PedersenBlsChained>(3, 2, None, 400);
    let info = first_chain(&dealt.group, 8);
    let mut ns = nodes(&dealt, &info);
    let up = [true; 3];
    tick(&mut ns, &up, 2);
    assert_chain(&ns, &up, &info, 2);
    // Restart every engine on its store: ticking the same round produces nothing.
    let mut restarted = nodes(&dealt, &info);
    for (r, n) in restarted.iter_mut().zip(&ns) {
        r.store = n.store.clone();
    }
    for node in restarted.iter_mut() {
        assert!(node.engine.tick(2, &node.store).is_empty());
    }
    tick(&mut restarted, &up, 4);
    assert_chain(&restarted, &up, &info, 4);
    assert_eq!(restarted[0].store.get(2), ns[0].store.get(2));
}

#[test]
fn a_reshare_continues_the_chain_and_a_fresh_key_starts_a_linked_one() {
    let scheme = SchemeId::PedersenBlsChained;
    let view1 = deal::<PedersenBlsChained>(4, 3, None, 500);
    let info1 = ChainInfo::for_view(
        None,
        scheme,
        &group_key_bytes(&view1.group),
        [1; 32],
        GENESIS,
        3,
        BEACON_ID,
    )
    .unwrap();
    assert_eq!(info1.link().unwrap().previous_chain_hash, None);
    let mut ns = nodes(&view1, &info1);
    tick(&mut ns, &[true; 4], 3);
    assert_chain(&ns, &[true; 4], &info1, 3);

    // Reshare to five members, threshold four: same group key, so the same chain.
    let view2 = deal::<PedersenBlsChained>(5, 4, Some(view1.secret), 501);
    assert_eq!(view2.group.group_key(), view1.group.group_key());
    let info2 = ChainInfo::for_view(
        Some(&info1),
        scheme,
        &group_key_bytes(&view2.group),
        [2; 32],
        GENESIS + 1000,
        3,
        BEACON_ID,
    )
    .unwrap();
    assert_eq!(info2, info1);
    let mut ns2 = nodes(&view2, &info2);
    for n in ns2.iter_mut() {
        n.store = ns[0].store.clone();
    }
    tick(&mut ns2, &[true; 5], 5);
    assert_chain(&ns2, &[true; 5], &info1, 5);

    // A fresh key: a new chain from round 1, linked to the old one through its metadata.
    let view3 = deal::<PedersenBlsChained>(4, 3, None, 502);
    let info3 = ChainInfo::for_view(
        Some(&info2),
        scheme,
        &group_key_bytes(&view3.group),
        [3; 32],
        GENESIS + 5000,
        3,
        BEACON_ID,
    )
    .unwrap();
    assert_ne!(info3.hash(), info1.hash());
    let link = info3.link().unwrap();
    assert_eq!(link.previous_chain_hash, Some(info1.hash()));
    assert_eq!(link.magic_block_hash, [3; 32]);
    let decoded = ChainInfo::from_json(info3.to_json().as_bytes()).unwrap();
    assert_eq!(decoded, info3);
    // Tampering with the link is caught: it is hashed into the group hash.
    let tampered = info3
        .to_json()
        .replace(&hex::encode(info1.hash()), &hex::encode([0xaa; 32]));
    assert_eq!(
        ChainInfo::from_json(tampered.as_bytes()),
        Err(keyquorum_beacon::InfoError::LinkMismatch)
    );
    let mut ns3 = nodes(&view3, &info3);
    tick(&mut ns3, &[true; 4], 2);
    assert_chain(&ns3, &[true; 4], &info3, 2);
    // The old chain's rounds do not verify on the new chain.
    assert!(verify_round(&info3, &ns[0].store.get(1).unwrap()).is_err());
}

#[test]
fn engines_refuse_inconsistent_set_ups() {
    let dealt = deal::<PedersenBlsChained>(4, 3, None, 600);
    let other = deal::<PedersenBlsChained>(4, 3, None, 601);
    let info = first_chain(&dealt.group, 9);
    let other_info = first_chain(&other.group, 9);
    let cfg = EngineConfig::default();
    assert_eq!(
        Engine::new(other_info, dealt.group.clone(), None, cfg).err(),
        Some(EngineError::ChainMismatch)
    );
    let wrong_share = SigningShare {
        member: 0,
        share: Secret::new(dealt.shares[1]),
    };
    assert_eq!(
        Engine::new(info.clone(), dealt.group.clone(), Some(wrong_share), cfg).err(),
        Some(EngineError::ShareMismatch(0))
    );
    let outsider = SigningShare {
        member: 4,
        share: Secret::new(dealt.shares[0]),
    };
    assert_eq!(
        Engine::new(info.clone(), dealt.group.clone(), Some(outsider), cfg).err(),
        Some(EngineError::NotAMember(4))
    );
    assert_eq!(
        Engine::new(
            info,
            dealt.group.clone(),
            None,
            EngineConfig { max_catch_up: 0 }
        )
        .err(),
        Some(EngineError::ZeroWindow)
    );
    // Shares of one dealing with the key of another.
    assert_eq!(
        ViewGroup::new(3, dealt.group.members().to_vec(), *other.group.group_key()).err(),
        Some(EngineError::SharesDoNotMatchGroupKey)
    );
    assert!(matches!(
        ViewGroup::new(5, dealt.group.members().to_vec(), *dealt.group.group_key()),
        Err(EngineError::BadThreshold { threshold: 5, n: 4 })
    ));
}

#[test]
fn partial_wire_encoding_roundtrips_and_is_bounded() {
    let dealt = deal::<PedersenBlsChained>(2, 2, None, 700);
    let p = honest(&dealt, 0, b"m", 42);
    let bytes = p.to_bytes();
    assert_eq!(
        PartialBeacon::from_bytes::<PedersenBlsChained>(&bytes),
        Ok(p)
    );
    assert!(PartialBeacon::from_bytes::<PedersenBlsChained>(&bytes[..bytes.len() - 1]).is_err());
}
