//! Ack-or-reveal ceremonies end to end on both curves, fresh and reshared.

use std::sync::Arc;

use ff::Field;
use group::Group;
use group::prime::PrimeCurveAffine;
use keyquorum_crypto::poly::lagrange_at_zero;
use keyquorum_crypto::{Bls12381G1, Curve, Secp256k1};
use keyquorum_dkg::ackreveal::AckRevealParticipant;
use keyquorum_dkg::board::Role;
use keyquorum_dkg::identity::{IdentitySignature, Purpose};
use keyquorum_dkg::messages::{Ack, Deal, Direct, Post, Publication, SignedPost};
use keyquorum_dkg::participant::{Action, Input, Observation, Participant};
use keyquorum_dkg::testing::ceremony::*;
use keyquorum_dkg::{Ceremony, Params};

fn check_agreement<C: Curve>(
    results: &[RunResult<C>],
    honest: &[usize],
) -> Vec<Box<keyquorum_dkg::participant::DkgOutput<C>>> {
    let outs: Vec<_> = honest
        .iter()
        .map(|i| match &results[*i] {
            RunResult::Ok(o) => o.clone(),
            RunResult::Failed(f) => panic!("node {i} failed: {f:?}"),
            RunResult::Pending => panic!("node {i} did not finish"),
        })
        .collect();
    for o in &outs {
        assert_eq!(o.public, outs[0].public);
        let idx = o.player_index.unwrap() as usize;
        let x = o.secret_share.as_ref().unwrap();
        assert_eq!(
            (C::Point::generator() * x.expose()),
            o.public.public_shares[idx].to_curve()
        );
    }
    outs
}

fn fresh<C: Curve>(n: usize, t: usize, k: usize, silent: &[usize]) {
    let members: Vec<MemberKeys> = (0..n as u32).map(member).collect();
    let cfg = fresh_config::<C>(&members, Params::new(n, t, k).unwrap());
    let ceremony = Ceremony::new(cfg).unwrap();
    let results = run(ceremony.clone(), members, vec![None; n], silent);
    let honest: Vec<usize> = (0..n).filter(|i| !silent.contains(i)).collect();
    let outs = check_agreement(&results, &honest);
    // Group secret = interpolation of any t honest shares; its public key is the group key.
    let xs: Vec<C::Scalar> = honest[..t]
        .iter()
        .map(|i| ceremony.player_indices()[*i])
        .collect();
    let l = lagrange_at_zero(&xs).unwrap();
    let mut secret = C::Scalar::ZERO;
    for (o, li) in outs[..t].iter().zip(&l) {
        secret += *o.secret_share.as_ref().unwrap().expose() * li;
    }
    assert_eq!(
        C::Point::generator() * secret,
        outs[0].public.group_key.to_curve()
    );
    for s in silent {
        assert!(!outs[0].public.qualified.contains(&(*s as u32)));
    }
}

#[test]
fn fresh_bls_all_honest() {
    fresh::<Bls12381G1>(4, 3, 3, &[]);
    fresh::<Bls12381G1>(7, 5, 5, &[]);
}

#[test]
fn fresh_secp_all_honest() {
    fresh::<Secp256k1>(5, 3, 4, &[]);
}

#[test]
fn fresh_with_silent_node_retries_without_it() {
    // n = 7, t = k = 5: f = 2; one silent node means one missing ack per dealer (<= max reveals).
    fresh::<Bls12381G1>(7, 5, 5, &[3]);
    // n = 4, t = k = 3: f = 1, max reveals 1; the silent node is within both.
    fresh::<Secp256k1>(4, 3, 3, &[0]);
}

#[test]
fn reshare_keeps_the_group_key() {
    let n = 5;
    let members: Vec<MemberKeys> = (0..n as u32).map(member).collect();
    let cfg = fresh_config::<Bls12381G1>(&members, Params::new(n, 3, 4).unwrap());
    let c1 = Ceremony::new(cfg).unwrap();
    let r1 = run(c1.clone(), members, vec![None; n], &[]);
    let outs = check_agreement(&r1, &(0..n).collect::<Vec<_>>());
    // New committee: members 1..5 stay, 0 leaves, 5 and 6 join.
    let old: Vec<MemberKeys> = (0..n as u32).map(member).collect();
    let new: Vec<MemberKeys> = (1..7u32).map(member).collect();
    let mut cfg2 = fresh_config::<Bls12381G1>(&new, Params::new(6, 4, 5).unwrap());
    cfg2.epoch = 2;
    cfg2.reshare = Some(reshare_of(&old, &c1, &outs[0]));
    let c2 = Ceremony::new(cfg2).unwrap();
    // Participants: union of old and new; node i of `all` is member i.
    let all: Vec<MemberKeys> = (0..7u32).map(member).collect();
    let old_shares: Vec<_> = (0..7)
        .map(|i| {
            if i < n {
                outs[i].secret_share.clone()
            } else {
                None
            }
        })
        .collect();
    let r2 = run(c2, all, old_shares, &[]);
    let outs2 = check_agreement(&r2, &(1..7).collect::<Vec<_>>());
    assert_eq!(outs2[0].public.group_key, outs[0].public.group_key);
}

/// Four ack-or-reveal participants (n = 4, t = k = 3: one reveal allowed per dealer) on BLS.
fn four_nodes() -> (
    Arc<Ceremony<Bls12381G1>>,
    Vec<AckRevealParticipant<Bls12381G1>>,
) {
    let members: Vec<MemberKeys> = (0..4).map(member).collect();
    let cfg = fresh_config::<Bls12381G1>(&members, Params::new(4, 3, 3).unwrap());
    let ceremony = Ceremony::new(cfg).unwrap();
    let nodes = members
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            AckRevealParticipant::new(
                ceremony.clone(),
                m.identity,
                m.encryption,
                None,
                [i as u8; 32],
            )
            .unwrap()
        })
        .collect();
    (ceremony, nodes)
}

/// The deals a participant sends at the start, by player (none to itself), and its
/// contribution post.
fn start(node: &mut AckRevealParticipant<Bls12381G1>) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut deals = vec![Vec::new(); 4];
    let mut post = None;
    for a in node.handle(Input::Start) {
        match a {
            Action::Send { payload, .. } => {
                let Ok(Direct::Deal(d)) = Direct::decode(&payload) else {
                    panic!("not a deal")
                };
                deals[d.player as usize] = payload;
            }
            Action::Post(p) => post = Some(p),
            _ => {}
        }
    }
    (deals, post.unwrap())
}

fn message(from: &AckRevealParticipant<Bls12381G1>, payload: &[u8]) -> Input {
    Input::Message {
        from: from.identity().clone(),
        payload: payload.to_vec(),
    }
}

fn observations(actions: &[Action<Bls12381G1>]) -> Vec<Observation> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Observed(o) => Some(o.clone()),
            _ => None,
        })
        .collect()
}

/// The ack in `actions`, if the participant sent one.
fn sent_ack(actions: &[Action<Bls12381G1>]) -> Option<Vec<u8>> {
    actions.iter().find_map(|a| match a {
        Action::Send { payload, .. } if matches!(Direct::decode(payload), Ok(Direct::Ack(_))) => {
            Some(payload.clone())
        }
        _ => None,
    })
}

/// `deal` with one ciphertext byte changed: it no longer decrypts.
fn spoiled(deal: &[u8], byte: usize) -> Vec<u8> {
    let Ok(Direct::Deal(mut d)) = Direct::decode(deal) else {
        panic!("not a deal")
    };
    d.ciphertext[byte] ^= 1;
    Direct::Deal(d).encode()
}

#[test]
fn messages_whose_sender_is_not_their_author_are_dropped() {
    let (_, mut nodes) = four_nodes();
    let (deals, contribution) = start(&mut nodes[1]);
    let (mut player, spoofer) = (nodes.remove(2), nodes.remove(2));
    let dealer = nodes.remove(1);

    // Dealer 1's real deal, sent on by participant 3: dropped unread, nothing kept for later.
    let out = player.handle(message(&spoofer, &deals[2]));
    assert_eq!(
        observations(&out),
        vec![Observation::WrongSender {
            role: Role::Dealer,
            index: 1
        }]
    );
    let out = player.handle(Input::BoardPost(contribution.clone()));
    assert_eq!(sent_ack(&out), None);
    assert!(player.received_from().is_empty());
    // The same deal from its dealer is taken.
    let ack = sent_ack(&player.handle(message(&dealer, &deals[2]))).unwrap();
    assert_eq!(player.received_from(), vec![1]);

    // Player 2's ack, sent on by participant 3, is dropped too; from player 2 it counts.
    let mut dealer = dealer;
    let out = dealer.handle(message(&spoofer, &ack));
    assert_eq!(
        observations(&out),
        vec![Observation::WrongSender {
            role: Role::Player,
            index: 2
        }]
    );
    assert!(dealer.acked_by().is_empty());
    assert!(dealer.handle(message(&player, &ack)).is_empty());
    assert_eq!(dealer.acked_by(), vec![2]);
}

#[test]
fn bad_deals_from_the_dealer_do_not_block_its_good_one() {
    let (_, mut nodes) = four_nodes();
    let (deals, contribution) = start(&mut nodes[1]);
    let mut player = nodes.remove(2);
    let dealer = nodes.remove(1);

    // Before the contribution is on the board: bad deals wait next to the good one.
    assert!(
        player
            .handle(message(&dealer, &spoiled(&deals[2], 0)))
            .is_empty()
    );
    assert!(
        player
            .handle(message(&dealer, &spoiled(&deals[2], 1)))
            .is_empty()
    );
    assert!(player.handle(message(&dealer, &deals[2])).is_empty());
    let out = player.handle(Input::BoardPost(contribution.clone()));
    assert_eq!(
        observations(&out),
        vec![
            Observation::BadShare { dealer: 1 },
            Observation::BadShare { dealer: 1 }
        ]
    );
    assert!(sent_ack(&out).is_some());
    assert_eq!(player.received_from(), vec![1]);

    // After it: a bad deal is not remembered against the dealer.
    let (_, mut nodes) = four_nodes();
    start(&mut nodes[1]);
    let mut player = nodes.remove(2);
    player.handle(Input::BoardPost(contribution));
    let out = player.handle(message(&dealer, &spoiled(&deals[2], 0)));
    assert_eq!(
        observations(&out),
        vec![Observation::BadShare { dealer: 1 }]
    );
    assert!(sent_ack(&player.handle(message(&dealer, &deals[2]))).is_some());
    assert_eq!(player.received_from(), vec![1]);

    // Waiting deals are bounded per dealer (only the dealer itself can fill its own list).
    let (_, mut nodes) = four_nodes();
    let mut player = nodes.remove(2);
    for byte in 0..4 {
        assert!(
            player
                .handle(message(&dealer, &spoiled(&deals[2], byte)))
                .is_empty()
        );
    }
    let out = player.handle(message(&dealer, &spoiled(&deals[2], 4)));
    assert!(matches!(
        observations(&out)[..],
        [Observation::Malformed(_)]
    ));
}

/// Runs four participants in lock step with `tamper` and returns each dealer's publication.
fn publications(
    tamper: &mut dyn FnMut(usize, Action<Bls12381G1>) -> Vec<Action<Bls12381G1>>,
) -> Vec<Publication<Bls12381G1>> {
    let (ceremony, nodes) = four_nodes();
    let nodes: Vec<Box<dyn Participant<Bls12381G1>>> = nodes
        .into_iter()
        .map(|n| Box::new(n) as Box<dyn Participant<Bls12381G1>>)
        .collect();
    let (results, events) = run_nodes(nodes, &[], tamper);
    check_agreement(&results, &[0, 1, 2, 3]);
    let mut out: Vec<Publication<Bls12381G1>> = events
        .iter()
        .filter_map(|e| match e {
            BoardEvent::Post(p) => match SignedPost::<Bls12381G1>::decode(p, ceremony.n()) {
                Ok(SignedPost {
                    post: Post::Publication(p),
                    ..
                }) => Some(p),
                _ => None,
            },
            BoardEvent::Deadline => None,
        })
        .collect();
    out.sort_by_key(|p| p.dealer);
    out
}

fn is_deal(a: &Action<Bls12381G1>) -> Option<(u32, u32)> {
    match a {
        Action::Send { payload, .. } => match Direct::decode(payload) {
            Ok(Direct::Deal(d)) => Some((d.dealer, d.player)),
            _ => None,
        },
        _ => None,
    }
}

#[test]
fn forged_deals_and_acks_ahead_of_the_real_ones_block_nothing() {
    // Participant 0 sends each of its deals a second time relabelled as dealer 3's; they arrive
    // before dealer 3's real deals.
    let pubs = publications(&mut |i, a| match (i, is_deal(&a)) {
        (0, Some((0, _))) => {
            let Action::Send { to, payload } = &a else {
                unreachable!()
            };
            let Ok(Direct::Deal(d)) = Direct::decode(payload) else {
                unreachable!()
            };
            let forged = Direct::Deal(Deal { dealer: 3, ..d }).encode();
            vec![
                Action::Send {
                    to: to.clone(),
                    payload: forged,
                },
                a,
            ]
        }
        _ => vec![a],
    });
    for p in &pubs {
        assert_eq!(p.acks, vec![0, 1, 2, 3], "dealer {}", p.dealer);
        assert!(p.reveals.is_empty());
    }

    // Dealer 1 sends player 2 a spoiled deal ahead of the real one.
    let pubs = publications(&mut |i, a| match (i, is_deal(&a)) {
        (1, Some((1, 2))) => {
            let Action::Send { to, payload } = &a else {
                unreachable!()
            };
            vec![
                Action::Send {
                    to: to.clone(),
                    payload: spoiled(payload, 3),
                },
                a,
            ]
        }
        _ => vec![a],
    });
    assert_eq!(pubs[1].acks, vec![0, 1, 2, 3]);
    assert!(pubs[1].reveals.is_empty());

    // Player 2 sends dealer 1 more wrong acks than fit in its candidate list before the real
    // one; it is still found.
    let pubs = publications(&mut |i, a| match &a {
        Action::Send { to, payload } if i == 2 => match Direct::decode(payload) {
            Ok(Direct::Ack(ack)) if ack.dealer == 1 => {
                let mut out: Vec<_> = (0..6u8)
                    .map(|b| Action::Send {
                        to: to.clone(),
                        payload: Direct::Ack(Ack {
                            signature: IdentitySignature([b; 48]),
                            ..ack.clone()
                        })
                        .encode(),
                    })
                    .collect();
                out.push(a.clone());
                out
            }
            _ => vec![a],
        },
        _ => vec![a],
    });
    assert_eq!(pubs[1].acks, vec![0, 1, 2, 3]);
    assert!(pubs[1].reveals.is_empty());
}

/// A member seated as a player only posts no contribution and sends no deal, yet takes its
/// share of the key the others deal: ack-or-reveal qualifies dealers, and every player gets a
/// share of theirs.
#[test]
fn a_member_seated_as_a_player_only_deals_nothing_and_still_gets_its_share() {
    let n = 4;
    let members: Vec<MemberKeys> = (0..n as u32).map(member).collect();
    let cfg = fresh_config::<Bls12381G1>(&members, Params::new(n, 3, 3).unwrap());
    let ceremony = Ceremony::new(cfg).unwrap();
    let nodes: Vec<Box<dyn Participant<Bls12381G1>>> = members
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let (c, seed) = (ceremony.clone(), [i as u8; 32]);
            let node = if i == 2 {
                AckRevealParticipant::new_player(c, m.identity, m.encryption, seed)
            } else {
                AckRevealParticipant::new(c, m.identity, m.encryption, None, seed)
            };
            Box::new(node.unwrap()) as Box<dyn Participant<Bls12381G1>>
        })
        .collect();
    let mut dealt_by_2 = 0;
    let mut count = |i: usize, a: Action<Bls12381G1>| {
        let deals = matches!(&a, Action::Send { payload, .. }
            if matches!(Direct::decode(payload), Ok(Direct::Deal(_))));
        let contributes = matches!(&a, Action::Post(p)
            if matches!(SignedPost::<Bls12381G1>::decode(p, n), Ok(s) if matches!(s.post, Post::Contribution(_))));
        if i == 2 && (deals || contributes) {
            dealt_by_2 += 1;
        }
        vec![a]
    };
    let (results, _) = run_nodes(nodes, &[], &mut count);
    assert_eq!(dealt_by_2, 0, "it dealt");
    let outs = check_agreement(&results, &[0, 1, 2, 3]);
    assert_eq!(outs[0].public.qualified, vec![0, 1, 3]);
}

/// A dealer whose early log the board refused as a fault (here its ack aggregate signs
/// something else) is disqualified, and posts nothing more: before, it posted its early log
/// again when the publish phase began, a post the board could only refuse.
#[test]
fn a_dealer_disqualified_for_its_early_log_does_not_post_it_again() {
    let (ceremony, nodes) = four_nodes();
    let nodes: Vec<Box<dyn Participant<Bls12381G1>>> = nodes
        .into_iter()
        .map(|n| Box::new(n) as Box<dyn Participant<Bls12381G1>>)
        .collect();
    let key0 = member(0).identity;
    let mut logs_by_0 = 0;
    let mut forge = |i: usize, a: Action<Bls12381G1>| {
        let Action::Post(bytes) = &a else {
            return vec![a];
        };
        let Ok(SignedPost {
            post: Post::Publication(mut p),
            ..
        }) = SignedPost::<Bls12381G1>::decode(bytes, 4)
        else {
            return vec![a];
        };
        if i != 0 {
            return vec![a];
        }
        logs_by_0 += 1;
        p.ack_signature = Some(key0.sign(Purpose::Ack, b"something else"));
        let post = Post::Publication(p);
        let signature = key0.sign(Purpose::Post, &post.signed_payload());
        vec![Action::Post(SignedPost { post, signature }.encode())]
    };
    let (results, events) = run_nodes(nodes, &[], &mut forge);
    let outs = check_agreement(&results, &[0, 1, 2, 3]);
    assert_eq!(outs[0].public.qualified, vec![1, 2, 3]);
    // The forged log went out in the share phase, and nothing after it.
    let deadline_before_log = events
        .iter()
        .position(|e| {
            matches!(e, BoardEvent::Post(p) if matches!(
                SignedPost::<Bls12381G1>::decode(p, ceremony.n()),
                Ok(SignedPost { post: Post::Publication(ref l), .. }) if l.dealer == 0
            ))
        })
        .map(|at| {
            events[..at]
                .iter()
                .filter(|e| matches!(e, BoardEvent::Deadline))
                .count()
        });
    assert_eq!(
        deadline_before_log,
        Some(1),
        "an early log, after the contribute deadline"
    );
    assert_eq!(
        logs_by_0, 1,
        "dealer 0 posted its log again after its disqualification"
    );
}
