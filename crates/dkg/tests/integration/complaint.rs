//! Complaint-and-reconstruct ceremonies end to end on both curves, fresh and reshared, with
//! misbehaving dealers and players written here as tampering of honest nodes' traffic.

use std::sync::Arc;

use ff::Field;
use group::Group;
use group::prime::PrimeCurveAffine;
use keyquorum_crypto::commit::EvalCommitment;
use keyquorum_crypto::poly::{Polynomial, lagrange_at_zero};
use keyquorum_crypto::verifiable_encrypt::{self, KeyReveal, VerifiableCiphertext};
use keyquorum_crypto::{Bls12381G1, Curve, Secp256k1};
use keyquorum_dkg::board::{Evidence, FailureReason, FaultKind, Outcome, Role};
use keyquorum_dkg::complaint::messages::{
    CommitmentStatement, ComplaintPost, Deal, DealComplaint, Disclosure, Dispute, FeldmanPost,
    HeardEntry, PAIR_LEN, Report, SignedComplaintPost, SignedPedersen, pair_aad, seal_deal,
    seal_pair,
};
use keyquorum_dkg::complaint::{
    BadPostSignatures, ComplaintBoard, ComplaintBoardError, ComplaintBoardPhase,
    ComplaintParticipant, PostToCheck, post_signatures, verify_equivocation, verify_exclusion,
};
use keyquorum_dkg::identity::{IdentityPublicKey, IdentitySignature, Purpose};
use keyquorum_dkg::participant::{Action, DkgOutput, Input, Observation, Participant as Node};
use keyquorum_dkg::testing::ceremony::*;
use keyquorum_dkg::{Ceremony, CeremonyConfig, Params};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

type Tamper<'a, C> = Box<dyn FnMut(usize, Action<C>) -> Vec<Action<C>> + 'a>;

fn config<C: Curve>(members: &[MemberKeys], params: Params) -> CeremonyConfig<C> {
    complaint_variant(fresh_config::<C>(members, params), members)
}

fn nodes<C: Curve>(
    ceremony: &Arc<Ceremony<C>>,
    members: Vec<MemberKeys>,
    old_shares: Vec<Option<keyquorum_crypto::secret::Secret<C::Scalar>>>,
) -> Vec<Box<dyn Node<C>>> {
    members
        .into_iter()
        .zip(old_shares)
        .enumerate()
        .map(|(i, (m, old))| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
            Box::new(
                ComplaintParticipant::new(ceremony.clone(), m.identity, m.verifiable, old, seed)
                    .unwrap(),
            ) as Box<dyn Node<C>>
        })
        .collect()
}

fn honest<C: Curve>() -> Tamper<'static, C> {
    Box::new(|_, a| vec![a])
}

struct Run<C: Curve> {
    ceremony: Arc<Ceremony<C>>,
    results: Vec<RunResult<C>>,
    events: Vec<BoardEvent>,
}

/// A fresh ceremony of `n` members under `params`, with `silent` nodes and tampering.
fn fresh_run<C: Curve>(params: Params, silent: &[usize], tamper: Tamper<'_, C>) -> Run<C> {
    let n = params.n();
    let members: Vec<MemberKeys> = (0..n as u32).map(member).collect();
    let ceremony = Ceremony::new(config::<C>(&members, params)).unwrap();
    let mut tamper = tamper;
    let (results, events) = run_nodes(
        nodes(&ceremony, members, vec![None; n]),
        silent,
        &mut *tamper,
    );
    Run {
        ceremony,
        results,
        events,
    }
}

/// Honest nodes all finished with the same public output; every share matches its public share.
fn check_agreement<C: Curve>(results: &[RunResult<C>], honest: &[usize]) -> Vec<Box<DkgOutput<C>>> {
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
        assert_eq!(o.exclusions, outs[0].exclusions);
        if let (Some(j), Some(x)) = (o.player_index, &o.secret_share) {
            assert_eq!(
                C::Point::generator() * x.expose(),
                o.public.public_shares[j as usize].to_curve()
            );
        }
    }
    outs
}

/// The group secret interpolated from `t` shares has the group key as its public key.
fn check_group_secret<C: Curve>(ceremony: &Ceremony<C>, outs: &[Box<DkgOutput<C>>]) {
    let t = ceremony.t();
    let with_share: Vec<_> = outs.iter().filter(|o| o.secret_share.is_some()).collect();
    assert!(with_share.len() >= t);
    let xs: Vec<C::Scalar> = with_share[..t]
        .iter()
        .map(|o| ceremony.player_indices()[o.player_index.unwrap() as usize])
        .collect();
    let l = lagrange_at_zero(&xs).unwrap();
    let mut secret = C::Scalar::ZERO;
    for (o, li) in with_share[..t].iter().zip(&l) {
        secret += *o.secret_share.as_ref().unwrap().expose() * li;
    }
    assert_eq!(
        C::Point::generator() * secret,
        outs[0].public.group_key.to_curve()
    );
}

/// Replays the board from its events alone and checks it reaches the nodes' result.
fn replay<C: Curve>(run: &Run<C>, expected: &DkgOutput<C>) -> ComplaintBoard<C> {
    let board = board_of(run);
    match board.outcome() {
        Some(Outcome::Success { output, exclusions }) => {
            assert_eq!(*output, expected.public);
            assert_eq!(*exclusions, expected.exclusions);
        }
        other => panic!("replayed board did not succeed: {other:?}"),
    }
    // No exclusion's evidence contradicts it.
    for e in &expected.exclusions {
        assert_ne!(
            verify_exclusion(&run.ceremony, e),
            Some(false),
            "evidence for {e:?}"
        );
    }
    board
}

/// The board of a run, replayed from its events alone.
fn board_of<C: Curve>(run: &Run<C>) -> ComplaintBoard<C> {
    let mut board = ComplaintBoard::new(run.ceremony.clone());
    for e in &run.events {
        feed(&mut board, e);
    }
    board
}

/// Feeds one board event to `board`, as a node does (a post that does not decode is dropped).
fn feed<C: Curve>(board: &mut ComplaintBoard<C>, e: &BoardEvent) {
    match e {
        BoardEvent::Post(p) => {
            let ceremony = board.ceremony().clone();
            if let Ok(s) =
                SignedComplaintPost::<C>::decode(p, ceremony.n(), ceremony.dealer_count())
            {
                let _ = board.apply(&s);
            }
        }
        BoardEvent::Deadline => board.advance(),
    }
}

/// The identity of player `j`: who an exclusion names as its reporter.
fn player_id<C: Curve>(ceremony: &Ceremony<C>, j: u32) -> Option<&IdentityPublicKey> {
    Some(&ceremony.players()[j as usize].identity)
}

fn exclusion<C: Curve>(
    out: &DkgOutput<C>,
    role: Role,
    index: u32,
) -> Option<&keyquorum_dkg::board::Exclusion> {
    out.exclusions
        .iter()
        .find(|e| e.role == role && e.index == index)
}

fn all_honest<C: Curve>(n: usize, t: usize, k: usize) {
    let run = fresh_run::<C>(Params::new(n, t, k).unwrap(), &[], honest());
    let outs = check_agreement(&run.results, &(0..n).collect::<Vec<_>>());
    assert_eq!(outs[0].public.qualified, (0..n as u32).collect::<Vec<_>>());
    assert!(outs[0].exclusions.is_empty());
    check_group_secret(&run.ceremony, &outs);
    replay(&run, &outs[0]);
    // The happy path takes four deadlines: deal, report, Feldman, complain.
    let deadlines = run
        .events
        .iter()
        .filter(|e| matches!(e, BoardEvent::Deadline))
        .count();
    assert_eq!(deadlines, 4);
}

#[test]
fn fresh_bls_all_honest() {
    all_honest::<Bls12381G1>(4, 3, 3);
    all_honest::<Bls12381G1>(7, 5, 5);
}

#[test]
fn fresh_secp_all_honest() {
    all_honest::<Secp256k1>(5, 3, 4);
    all_honest::<Secp256k1>(1, 1, 1);
}

#[test]
fn silent_node_is_excluded() {
    // n = 7, t = k = 5: the silent dealer's deal is missed by all six others, and it does not
    // send the pairs again.
    let run = fresh_run::<Bls12381G1>(Params::new(7, 5, 5).unwrap(), &[3], honest());
    let honest_nodes = [0, 1, 2, 4, 5, 6];
    let outs = check_agreement(&run.results, &honest_nodes);
    assert_eq!(outs[0].public.qualified, vec![0, 1, 2, 4, 5, 6]);
    let d = exclusion(&outs[0], Role::Dealer, 3).unwrap();
    assert_eq!(d.fault, FaultKind::MissingJustification { complaints: 6 });
    assert!(matches!(&d.evidence, Evidence::Reports(r) if r.len() == 6));
    assert_eq!(verify_exclusion(&run.ceremony, d), Some(true));
    // A missed deal is claimed, not proven: nobody is paid for the absence.
    assert_eq!(d.reporter, None);
    let p = exclusion(&outs[0], Role::Player, 3).unwrap();
    assert_eq!(p.fault, FaultKind::MissedReport);
    assert_eq!(p.reporter, None);
    assert_eq!(verify_exclusion(&run.ceremony, p), None);
    assert!(!p.fault.is_misbehaviour() && !d.fault.is_misbehaviour());
    assert_eq!(outs[0].exclusions.len(), 2);
    check_group_secret(&run.ceremony, &outs);
    replay(&run, &outs[0]);
}

/// Re-encrypts dealer `dealer`'s deal to `victim` with a pair that does not open the commitment.
fn corrupt_deal<C: Curve>(
    ceremony: &Arc<Ceremony<C>>,
    dealer: usize,
    victim: usize,
) -> impl FnMut(usize, Action<C>) -> Vec<Action<C>> {
    let ceremony = ceremony.clone();
    let key = member(dealer as u32).identity;
    let victim_id = member(victim as u32).identity.public().clone();
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    move |i, a| match a {
        Action::Send { to, payload } if i == dealer && to == victim_id => {
            let deal = Deal::<C>::decode(&payload, ceremony.n()).unwrap();
            let signed = SignedPedersen::new(&key, ceremony.id(), deal.dealer, deal.commitment);
            let bad = seal_deal(
                &key,
                ceremony.id(),
                &signed,
                (
                    victim as u32,
                    ceremony.verifiable_key(victim as u32).unwrap(),
                ),
                &C::Scalar::ONE,
                &C::Scalar::ONE,
                &mut rng,
            );
            vec![Action::Send {
                to,
                payload: bad.encode(),
            }]
        }
        other => vec![other],
    }
}

fn is_post_of<C: Curve>(a: &Action<C>, kind: fn(&ComplaintPost<C>) -> bool) -> bool {
    match a {
        Action::Post(p) => {
            let s = SignedComplaintPost::<C>::decode(p, 64, 64).unwrap();
            kind(&s.post)
        }
        _ => false,
    }
}

#[test]
fn bad_share_is_proven_and_disqualifies_its_dealer() {
    let params = Params::new(7, 5, 5).unwrap();
    let members: Vec<MemberKeys> = (0..7).map(member).collect();
    let ceremony = Ceremony::new(config::<Bls12381G1>(&members, params)).unwrap();
    let run = fresh_run::<Bls12381G1>(params, &[], Box::new(corrupt_deal(&ceremony, 1, 4)));
    let outs = check_agreement(&run.results, &[0, 2, 3, 4, 5, 6]);
    // Player 4's complaint reveals the key of its ciphertext: the board decrypts a pair that does
    // not open dealer 1's commitment, and dealer 1 is out without answering anything.
    assert_eq!(outs[0].public.qualified, vec![0, 2, 3, 4, 5, 6]);
    let e = exclusion(&outs[0], Role::Dealer, 1).unwrap();
    assert_eq!(e.fault, FaultKind::BadDeal { player: 4 });
    assert!(e.fault.is_misbehaviour());
    assert_eq!(verify_exclusion(&run.ceremony, e), Some(true));
    assert_eq!(e.reporter.as_ref(), player_id(&run.ceremony, 4));
    // The same evidence does not convict the dealer of a bad deal to another player, nor
    // player 4 of a false complaint.
    let mut other = e.clone();
    other.fault = FaultKind::BadDeal { player: 5 };
    assert_eq!(verify_exclusion(&run.ceremony, &other), Some(false));
    let mut flipped = e.clone();
    flipped.role = Role::Player;
    flipped.index = 4;
    flipped.identity = run.ceremony.players()[4].identity.clone();
    flipped.fault = FaultKind::FalseComplaint { dealer: 1 };
    assert_eq!(verify_exclusion(&run.ceremony, &flipped), Some(false));
    // Nothing was sent again, so the justify phase was skipped.
    let board = replay(&run, &outs[0]);
    assert!(board.missed_deals(1).is_empty());
    let deadlines = run
        .events
        .iter()
        .filter(|e| matches!(e, BoardEvent::Deadline))
        .count();
    assert_eq!(deadlines, 4);
    check_group_secret(&run.ceremony, &outs);
}

/// With several dealers dealing every player a bad pair, every honest report carries a
/// complaint (the dealer's whole commitment) about each of them, and those dealers, disqualified,
/// are out of the clique as players too. Such an exclusion names one witness, not every report
/// that lacks the member's validity: before, each listed the reports of every honest player,
/// so the exclusions every node keeps and the chain records grew as `f^2 n^2` points.
#[test]
fn clique_exclusions_name_one_witness_however_many_reports_lack_the_member() {
    let params = Params::new(10, 7, 7).unwrap();
    let bad = [1usize, 2, 3];
    let members: Vec<MemberKeys> = (0..10).map(member).collect();
    let ceremony = Ceremony::new(config::<Bls12381G1>(&members, params)).unwrap();
    let mut corrupt: Vec<_> = bad
        .iter()
        .flat_map(|d| {
            (0..10)
                .filter(|v| v != d)
                .map(|v| corrupt_deal(&ceremony, *d, v))
                .collect::<Vec<_>>()
        })
        .collect();
    let tamper = move |i: usize, a: Action<Bls12381G1>| {
        let mut out = vec![a];
        for c in corrupt.iter_mut() {
            out = out.into_iter().flat_map(|a| c(i, a)).collect();
        }
        out
    };
    let run = fresh_run::<Bls12381G1>(params, &[], Box::new(tamper));
    let honest = [0, 4, 5, 6, 7, 8, 9];
    let outs = check_agreement(&run.results, &honest);
    assert_eq!(outs[0].public.qualified, honest.map(|i| i as u32).to_vec());
    let mut witnessed = 0;
    for e in &outs[0].exclusions {
        if e.fault != FaultKind::NotInClique {
            continue;
        }
        let Evidence::Reports(reports) = &e.evidence else {
            panic!("clique evidence {:?}", e.evidence);
        };
        // The member's own report and one qualified player's that lacks mutual validity.
        assert_eq!(reports.len(), 2, "{:?} {}", e.role, e.index);
        witnessed += 1;
    }
    assert_eq!(witnessed, bad.len(), "{:?}", outs[0].exclusions);
    check_group_secret(&run.ceremony, &outs);
    replay(&run, &outs[0]);
}

/// Drops dealer `dealer`'s deal to `victim` (a lost message).
fn lose_deal<C: Curve>(
    dealer: usize,
    victim: usize,
) -> impl FnMut(usize, Action<C>) -> Vec<Action<C>> {
    let victim_id = member(victim as u32).identity.public().clone();
    move |i, a| match a {
        Action::Send { to, .. } if i == dealer && to == victim_id => vec![],
        other => vec![other],
    }
}

#[test]
fn lost_deal_is_sent_again_without_revealing_the_pair() {
    let params = Params::new(7, 5, 5).unwrap();
    let run = fresh_run::<Secp256k1>(params, &[], Box::new(lose_deal(1, 4)));
    let outs = check_agreement(&run.results, &(0..7).collect::<Vec<_>>());
    assert_eq!(outs[0].public.qualified, (0..7).collect::<Vec<_>>());
    assert!(outs[0].exclusions.is_empty());
    let board = replay(&run, &outs[0]);
    assert_eq!(board.missed_deals(1), &[4]);
    // What went on the board is a ciphertext to player 4, not its pair.
    let ct = board.resent_deal(1, 4).unwrap();
    assert_eq!(
        ct.len(),
        keyquorum_dkg::complaint::messages::PAIR_CIPHERTEXT_LEN
    );
    assert!(board.reconstructed(1).is_none());
    check_group_secret(&run.ceremony, &outs);
}

#[test]
fn unanswered_complaint_disqualifies() {
    let params = Params::new(7, 5, 5).unwrap();
    let mut lose = lose_deal::<Secp256k1>(1, 4);
    let tamper = move |i: usize, a: Action<Secp256k1>| {
        // Dealer 1 also stays quiet in the justify phase.
        if i == 1 && is_post_of(&a, |p| matches!(p, ComplaintPost::Justification(_))) {
            return vec![];
        }
        lose(i, a)
    };
    let run = fresh_run::<Secp256k1>(params, &[], Box::new(tamper));
    let outs = check_agreement(&run.results, &[0, 2, 3, 4, 5, 6]);
    assert_eq!(outs[0].public.qualified, vec![0, 2, 3, 4, 5, 6]);
    let e = exclusion(&outs[0], Role::Dealer, 1).unwrap();
    assert_eq!(e.fault, FaultKind::MissingJustification { complaints: 1 });
    assert_eq!(verify_exclusion(&run.ceremony, e), Some(true));
    let mut wrong = e.clone();
    wrong.fault = FaultKind::MissingJustification { complaints: 2 };
    assert_eq!(verify_exclusion(&run.ceremony, &wrong), Some(false));
    // The evidence is player 4's report, which missed dealer 1's deal.
    let Evidence::Reports(reports) = &e.evidence else {
        panic!("wrong evidence {:?}", e.evidence);
    };
    let r = SignedComplaintPost::<Secp256k1>::decode(&reports[0], 7, 7).unwrap();
    let ComplaintPost::Report(r) = r.post else {
        panic!()
    };
    assert_eq!(r.player, 4);
    assert!(r.misses(1));
    // In a fresh key the disqualified dealer is out as a player too; node 1 itself agrees.
    assert!(outs.iter().all(|o| o.player_index != Some(1)));
    let RunResult::Ok(own) = &run.results[1] else {
        panic!("node 1 did not finish")
    };
    assert_eq!(own.public, outs[0].public);
    assert!(own.secret_share.is_none());
    check_group_secret(&run.ceremony, &outs);
    replay(&run, &outs[0]);
}

#[test]
fn equivocating_dealer_is_disqualified_with_evidence() {
    let params = Params::new(7, 5, 5).unwrap();
    let members: Vec<MemberKeys> = (0..7).map(member).collect();
    let ceremony = Ceremony::new(config::<Bls12381G1>(&members, params)).unwrap();
    // Dealer 2 deals a second, self-consistent polynomial to players 4, 5, 6.
    let key = member(2).identity;
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let g = Polynomial::random(4, None, &mut rng);
    let g_blind = Polynomial::random(4, None, &mut rng);
    let xs = ceremony.player_indices().to_vec();
    let other = SignedPedersen::<Bls12381G1>::new(
        &key,
        ceremony.id(),
        2,
        EvalCommitment::pedersen(&g, &g_blind, &xs),
    );
    let ids: Vec<_> = (0..7)
        .map(|i| member(i).identity.public().clone())
        .collect();
    let c2 = ceremony.clone();
    let tamper = move |i: usize, a: Action<Bls12381G1>| match a {
        Action::Send { to, .. } if i == 2 && ids[4..].contains(&to) => {
            let j = ids.iter().position(|x| *x == to).unwrap();
            let deal = seal_deal(
                &key,
                c2.id(),
                &other,
                (j as u32, c2.verifiable_key(j as u32).unwrap()),
                &g.evaluate(&xs[j]),
                &g_blind.evaluate(&xs[j]),
                &mut rng,
            );
            vec![Action::Send {
                to,
                payload: deal.encode(),
            }]
        }
        other => vec![other],
    };
    let run = fresh_run::<Bls12381G1>(params, &[], Box::new(tamper));
    let outs = check_agreement(&run.results, &[0, 1, 3, 4, 5, 6]);
    assert_eq!(outs[0].public.qualified, vec![0, 1, 3, 4, 5, 6]);
    let e = exclusion(&outs[0], Role::Dealer, 2).unwrap();
    assert_eq!(e.fault, FaultKind::Equivocation);
    assert!(e.fault.is_misbehaviour());
    assert!(verify_equivocation(&ceremony, 2, &e.evidence));
    assert_eq!(verify_exclusion(&ceremony, e), Some(true));
    // No reporter: the evidence is dealer 2's two statements, which any player that saw them
    // could have copied into its report and raced to the board.
    assert_eq!(e.reporter, None);
    let mut other_dealer = e.clone();
    other_dealer.index = 3;
    other_dealer.identity = ceremony.dealers()[3].identity.clone();
    assert_eq!(verify_exclusion(&ceremony, &other_dealer), Some(false));
    // The evidence names dealer 2 only, and is not valid when doctored.
    assert!(!verify_equivocation(&ceremony, 3, &e.evidence));
    let Evidence::SignedPosts(items) = &e.evidence else {
        panic!()
    };
    let same = Evidence::SignedPosts(vec![items[0].clone(), items[0].clone()]);
    assert!(!verify_equivocation(&ceremony, 2, &same));
    let mut forged = items.clone();
    let last = forged[1].len() - 1;
    forged[1][last] ^= 1;
    assert!(!verify_equivocation(
        &ceremony,
        2,
        &Evidence::SignedPosts(forged)
    ));
    check_group_secret(&run.ceremony, &outs);
    replay(&run, &outs[0]);
}

/// A dealer that sends one player two deals under different signed commitments (each pair
/// opening its own commitment) is convicted by that player's report alone: the player keeps the
/// first deal and reports the second statement as conflicting.
#[test]
fn a_dealer_that_sends_one_player_two_commitments_is_disqualified_with_evidence() {
    let params = Params::new(7, 5, 5).unwrap();
    let members: Vec<MemberKeys> = (0..7).map(member).collect();
    let ceremony = Ceremony::new(config::<Bls12381G1>(&members, params)).unwrap();
    let key = member(2).identity;
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let g = Polynomial::random(4, None, &mut rng);
    let g_blind = Polynomial::random(4, None, &mut rng);
    let xs = ceremony.player_indices().to_vec();
    let other = SignedPedersen::<Bls12381G1>::new(
        &key,
        ceremony.id(),
        2,
        EvalCommitment::pedersen(&g, &g_blind, &xs),
    );
    let player4 = member(4).identity.public().clone();
    let c2 = ceremony.clone();
    let tamper = move |i: usize, a: Action<Bls12381G1>| match a {
        Action::Send { to, payload } if i == 2 && to == player4 => {
            let second = seal_deal(
                &key,
                c2.id(),
                &other,
                (4, c2.verifiable_key(4).unwrap()),
                &g.evaluate(&xs[4]),
                &g_blind.evaluate(&xs[4]),
                &mut rng,
            );
            vec![
                Action::Send {
                    to: to.clone(),
                    payload,
                },
                Action::Send {
                    to,
                    payload: second.encode(),
                },
            ]
        }
        other => vec![other],
    };
    let run = fresh_run::<Bls12381G1>(params, &[], Box::new(tamper));
    let outs = check_agreement(&run.results, &[0, 1, 3, 4, 5, 6]);
    assert_eq!(outs[0].public.qualified, vec![0, 1, 3, 4, 5, 6]);
    let e = exclusion(&outs[0], Role::Dealer, 2).unwrap();
    assert_eq!(e.fault, FaultKind::Equivocation);
    assert!(verify_equivocation(&ceremony, 2, &e.evidence));
    assert_eq!(verify_exclusion(&ceremony, e), Some(true));
    assert_eq!(e.reporter, None);
    check_group_secret(&run.ceremony, &outs);
    replay(&run, &outs[0]);
}

/// A report whose conflicting statement is not its dealer's, or repeats the heard hash, is its
/// author's fault.
#[test]
fn a_report_with_a_false_conflicting_statement_is_a_bad_report() {
    let params = Params::new(4, 3, 3).unwrap();
    let members: Vec<MemberKeys> = (0..4).map(member).collect();
    let ceremony = Ceremony::new(config::<Bls12381G1>(&members, params)).unwrap();
    let session = *ceremony.id();
    let hash = [1u8; 32];
    let signed = CommitmentStatement::sign(&members[0].identity, session, 0, hash);
    let heard = HeardEntry {
        dealer: 0,
        hash,
        signature: signed.signature,
    };
    let report = |conflicting: HeardEntry| {
        SignedComplaintPost::sign(
            &members[1].identity,
            ComplaintPost::Report(Report {
                session,
                player: 1,
                heard: vec![heard.clone()],
                valid: vec![],
                complaints: vec![],
                conflicting: Some(conflicting),
            }),
        )
    };
    let forged = HeardEntry {
        dealer: 0,
        hash: [2; 32],
        signature: CommitmentStatement::sign(&members[1].identity, session, 0, [2; 32]).signature,
    };
    for conflicting in [heard.clone(), forged] {
        let mut board = ComplaintBoard::new(ceremony.clone());
        board.advance();
        assert_eq!(
            board.apply(&report(conflicting)),
            player_fault(1, FaultKind::BadReport)
        );
        assert!(!board.is_disqualified(0));
    }
}

#[test]
fn claimed_lost_deals_do_not_exclude_an_honest_dealer() {
    // f = 2 corrupt players (5 and 6) both claim they did not get honest dealer 0's deal.
    let params = Params::new(7, 5, 5).unwrap();
    let keys = [member(5).identity, member(6).identity];
    let tamper = move |i: usize, a: Action<Secp256k1>| {
        if (i == 5 || i == 6) && is_post_of(&a, |p| matches!(p, ComplaintPost::Report(_))) {
            let Action::Post(bytes) = a else {
                unreachable!()
            };
            let mut s = SignedComplaintPost::<Secp256k1>::decode(&bytes, 7, 7).unwrap();
            if let ComplaintPost::Report(r) = &mut s.post {
                r.valid.retain(|d| *d != 0);
            }
            let resigned = SignedComplaintPost::sign(&keys[i - 5], s.post);
            return vec![Action::Post(resigned.encode())];
        }
        vec![a]
    };
    let run = fresh_run::<Secp256k1>(params, &[], Box::new(tamper));
    let outs = check_agreement(&run.results, &(0..7).collect::<Vec<_>>());
    assert_eq!(outs[0].public.qualified, (0..7).collect::<Vec<_>>());
    // Not an offence either: the complainers could have lost the deal.
    assert!(outs[0].exclusions.is_empty());
    let board = replay(&run, &outs[0]);
    assert_eq!(board.missed_deals(0), &[5, 6]);
    check_group_secret(&run.ceremony, &outs);
}

/// Runs a fresh ceremony in which dealer `bad` misbehaves in the Feldman phase, and the same
/// ceremony honestly; the group key and public shares must be the same (the dealer's contribution
/// is reconstructed, not dropped).
fn feldman_failure<C: Curve>(bad: usize, forge: bool, expect: fn(&FaultKind) -> bool) {
    let params = Params::new(7, 5, 5).unwrap();
    let baseline = fresh_run::<C>(params, &[], honest());
    let base = check_agreement(&baseline.results, &(0..7).collect::<Vec<_>>());
    let key = member(bad as u32).identity;
    let ceremony = baseline.ceremony.clone();
    let tamper = move |i: usize, a: Action<C>| {
        if i != bad || !is_post_of(&a, |p| matches!(p, ComplaintPost::Feldman(_))) {
            return vec![a];
        }
        if !forge {
            return vec![];
        }
        // A well-formed commitment to another polynomial: passes the board's checks, fails
        // every player's.
        let g = Polynomial::<C::Scalar>::random(4, None, &mut ChaCha20Rng::seed_from_u64(8));
        let post = ComplaintPost::Feldman(FeldmanPost {
            session: *ceremony.id(),
            dealer: bad as u32,
            commitment: EvalCommitment::<C>::feldman(&g, ceremony.player_indices()),
        });
        vec![Action::Post(SignedComplaintPost::sign(&key, post).encode())]
    };
    let run = fresh_run::<C>(params, &[], Box::new(tamper));
    let outs = check_agreement(&run.results, &(0..7).collect::<Vec<_>>());
    assert_eq!(outs[0].public.qualified, (0..7).collect::<Vec<_>>());
    assert_eq!(outs[0].public.group_key, base[0].public.group_key);
    assert_eq!(outs[0].public.public_shares, base[0].public.public_shares);
    let e = exclusion(&outs[0], Role::Dealer, bad as u32).unwrap();
    assert!(expect(&e.fault), "unexpected fault {:?}", e.fault);
    if let FaultKind::BadFeldman { player } = e.fault {
        check_bad_feldman_evidence(&run.ceremony, bad as u32, player, &e.evidence);
        assert_eq!(verify_exclusion(&run.ceremony, e), Some(true));
        // The complaining player proved it, though the evidence ends with the dealer's signed
        // commitment statement.
        assert_ne!(player, bad as u32);
        assert_eq!(e.reporter.as_ref(), player_id(&run.ceremony, player));
        // The same evidence does not prove a complaint by another player.
        let mut other = e.clone();
        other.fault = FaultKind::BadFeldman {
            player: (player + 1) % 7,
        };
        assert_eq!(verify_exclusion(&run.ceremony, &other), Some(false));
    } else {
        assert_eq!(verify_exclusion(&run.ceremony, e), None);
        assert_eq!(e.reporter, None);
    }
    assert_eq!(outs[0].exclusions.len(), 1);
    check_group_secret(&run.ceremony, &outs);
    // Every qualified player posts its complaint, with pairs when the values are wrong: the
    // complain phase closes with the last one either way, as does the reconstruct phase.
    use ComplaintBoardPhase::{Complain, Deal, Feldman, Reconstruct, Report};
    let closing = if forge {
        vec![Deal, Report, Feldman, Complain, Reconstruct]
    } else {
        vec![Deal, Report, Complain, Reconstruct]
    };
    assert_eq!(phases_closing_early(&run).0, closing);
    let board = replay(&run, &outs[0]);
    assert!(board.reconstructed(bad as u32).is_some());
    // Shares equal the honest run's: the reconstructed polynomial is the dealer's.
    for (o, b) in outs.iter().zip(&base) {
        assert_eq!(
            o.secret_share.as_ref().unwrap().expose(),
            b.secret_share.as_ref().unwrap().expose()
        );
    }
}

/// Checks `BadFeldman` evidence as a third party would: the dealer's Feldman post, the player's
/// complaint carrying the Pedersen commitment, and the dealer's signature on that commitment's
/// hash; the complained pair opens the commitment and contradicts the Feldman value.
fn check_bad_feldman_evidence<C: Curve>(
    ceremony: &Ceremony<C>,
    dealer: u32,
    player: u32,
    evidence: &Evidence,
) {
    let Evidence::SignedPosts(items) = evidence else {
        panic!("wrong evidence kind")
    };
    assert_eq!(items.len(), 3);
    let n = ceremony.n();
    let post = |b: &[u8]| SignedComplaintPost::<C>::decode(b, n, n).unwrap();
    let (feldman, complaint) = (post(&items[0]), post(&items[1]));
    let dealer_key = &ceremony.dealers()[dealer as usize].identity;
    let player_key = &ceremony.players()[player as usize].identity;
    assert!(dealer_key.verify(
        keyquorum_dkg::identity::Purpose::Post,
        &feldman.post.encode(),
        &feldman.signature
    ));
    assert!(player_key.verify(
        keyquorum_dkg::identity::Purpose::Post,
        &complaint.post.encode(),
        &complaint.signature
    ));
    let ComplaintPost::Feldman(f) = feldman.post else {
        panic!()
    };
    let ComplaintPost::Complaint(d) = complaint.post else {
        panic!()
    };
    let statement =
        keyquorum_dkg::complaint::messages::CommitmentStatement::decode(&items[2]).unwrap();
    assert!(statement.verify(dealer_key) && statement.dealer == dealer);
    let (_, pedersen) = d.commitments.iter().find(|(i, _)| *i == dealer).unwrap();
    assert_eq!(
        keyquorum_dkg::complaint::messages::pedersen_hash::<C>(ceremony.id(), dealer, pedersen),
        statement.hash
    );
    let (_, s, b) = d.shares.iter().find(|(i, _, _)| *i == dealer).unwrap();
    assert!(pedersen.verify_pedersen_share(player as usize, s, b));
    assert!(!f.commitment.verify_share(player as usize, s));
}

#[test]
fn withheld_feldman_values_are_reconstructed() {
    feldman_failure::<Bls12381G1>(2, false, |f| *f == FaultKind::MissedFeldman);
    feldman_failure::<Secp256k1>(6, false, |f| *f == FaultKind::MissedFeldman);
}

#[test]
fn wrong_feldman_values_are_proven_and_reconstructed() {
    feldman_failure::<Bls12381G1>(3, true, |f| {
        matches!(f, FaultKind::BadFeldman { .. }) && f.is_misbehaviour()
    });
}

/// Members `player_only` seated as players only ([`ComplaintParticipant::new_player`]), the
/// others as `nodes` seats them.
fn with_players_only<C: Curve>(
    ceremony: &Arc<Ceremony<C>>,
    mut nodes: Vec<Box<dyn Node<C>>>,
    player_only: &[usize],
) -> Vec<Box<dyn Node<C>>> {
    for &i in player_only {
        let m = member(i as u32);
        let p =
            ComplaintParticipant::new_player(ceremony.clone(), m.identity, m.verifiable, [9; 32]);
        nodes[i] = Box::new(p.unwrap());
    }
    nodes
}

#[test]
fn a_member_seated_as_a_player_only_deals_nothing_and_a_fresh_key_leaves_it_out() {
    let n = 5;
    let members: Vec<MemberKeys> = (0..n as u32).map(member).collect();
    let ceremony =
        Ceremony::new(config::<Secp256k1>(&members, Params::new(n, 3, 4).unwrap())).unwrap();
    let m = member(3);
    let mut alone =
        ComplaintParticipant::new_player(ceremony.clone(), m.identity, m.verifiable, [9; 32])
            .unwrap();
    assert!(alone.handle(Input::Start).is_empty(), "it dealt");
    let seated = with_players_only(&ceremony, nodes(&ceremony, members, vec![None; n]), &[3]);
    let mut sent_by_3 = 0;
    let mut count = |i: usize, a: Action<Secp256k1>| {
        if i == 3 && matches!(a, Action::Send { .. }) {
            sent_by_3 += 1;
        }
        vec![a]
    };
    let (results, _) = run_nodes(seated, &[], &mut count);
    assert_eq!(sent_by_3, 0, "it dealt");
    let outs = check_agreement(&results, &[0, 1, 2, 4]);
    // A fresh key's qualified set is a clique of mutual deals: without its deals it is out.
    assert_eq!(outs[0].public.qualified, vec![0, 1, 2, 4]);
    check_group_secret(&ceremony, &outs);
    match &results[3] {
        RunResult::Ok(o) => assert!(o.secret_share.is_none(), "it holds a share"),
        RunResult::Failed(_) => {}
        RunResult::Pending => panic!("it did not finish"),
    }
    let d = exclusion(&outs[0], Role::Dealer, 3).unwrap();
    assert!(!d.fault.is_misbehaviour(), "{:?}", d.fault);
}

fn reshare<C: Curve>(
    tamper: Tamper<'_, C>,
    silent: &[usize],
) -> (Vec<Box<DkgOutput<C>>>, C::Affine) {
    reshare_seating(tamper, silent, &[])
}

/// [`reshare`], with the members `player_only` seated as players only.
fn reshare_seating<C: Curve>(
    tamper: Tamper<'_, C>,
    silent: &[usize],
    player_only: &[usize],
) -> (Vec<Box<DkgOutput<C>>>, C::Affine) {
    let (run, old_key) = reshare_run(tamper, silent, player_only);
    let honest_players: Vec<usize> = (1..7).filter(|i| !silent.contains(i)).collect();
    let outs2 = check_agreement(&run.results, &honest_players);
    assert_eq!(outs2[0].public.group_key, old_key);
    check_group_secret(&run.ceremony, &outs2);
    replay(&run, &outs2[0]);
    (outs2, old_key)
}

/// A reshare from five members (`n = 5, t = 3`) to six (`n = 6, t = 4, k = 5`): member 0 leaves,
/// 5 and 6 join. Returns the second ceremony's run and the group key of the first.
fn reshare_run<C: Curve>(
    tamper: Tamper<'_, C>,
    silent: &[usize],
    player_only: &[usize],
) -> (Run<C>, C::Affine) {
    let n = 5;
    let members: Vec<MemberKeys> = (0..n as u32).map(member).collect();
    let c1 = Ceremony::new(config::<C>(&members, Params::new(n, 3, 4).unwrap())).unwrap();
    let (r1, _) = run_nodes(nodes(&c1, members, vec![None; n]), &[], &mut *honest());
    let outs = check_agreement(&r1, &(0..n).collect::<Vec<_>>());
    // New committee: members 1..5 stay, 0 leaves, 5 and 6 join.
    let old: Vec<MemberKeys> = (0..n as u32).map(member).collect();
    let new: Vec<MemberKeys> = (1..7u32).map(member).collect();
    // The quorum of old dealers is the old threshold t = 3, so two old members may fail.
    let mut cfg2 = config::<C>(&new, Params::new(6, 4, 5).unwrap());
    cfg2.epoch = 2;
    cfg2.reshare = Some(reshare_of(&old, &c1, &outs[0]));
    let c2 = Ceremony::new(cfg2).unwrap();
    // Participants: node i is member i; old shares for members 0..5.
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
    let mut tamper = tamper;
    let seated = with_players_only(&c2, nodes(&c2, all, old_shares), player_only);
    let (results, events) = run_nodes(seated, silent, &mut *tamper);
    let run = Run {
        ceremony: c2,
        results,
        events,
    };
    (run, outs[0].public.group_key)
}

#[test]
fn reshare_keeps_the_group_key() {
    let (outs, _) = reshare::<Bls12381G1>(honest(), &[]);
    assert_eq!(outs[0].public.qualified, vec![0, 1, 2, 3, 4]);
    assert!(outs[0].exclusions.is_empty());
    let (outs, _) = reshare::<Secp256k1>(honest(), &[]);
    assert_eq!(outs[0].public.qualified, vec![0, 1, 2, 3, 4]);
}

#[test]
fn reshare_drops_a_dealer_that_fails_feldman() {
    // Old member 2 (also new player 1) withholds its Feldman values: it is dropped, not
    // reconstructed, and the remaining four old shares still determine the key.
    let tamper = |i: usize, a: Action<Secp256k1>| {
        if i == 2 && is_post_of(&a, |p| matches!(p, ComplaintPost::Feldman(_))) {
            return vec![];
        }
        vec![a]
    };
    let (outs, _) = reshare::<Secp256k1>(Box::new(tamper), &[]);
    assert_eq!(outs[0].public.qualified, vec![0, 1, 3, 4]);
    let e = exclusion(&outs[0], Role::Dealer, 2).unwrap();
    assert_eq!(e.fault, FaultKind::MissedFeldman);
}

#[test]
fn an_old_member_seated_as_a_player_only_still_gets_its_new_share() {
    // Old member 2 (new player 1) plays without dealing: its dealer seat is missed, not proven
    // at fault, and it holds a share of the same key (check_agreement checks it).
    let (outs, _) = reshare_seating::<Secp256k1>(honest(), &[], &[2]);
    assert_eq!(outs[0].public.qualified, vec![0, 1, 3, 4]);
    assert!(outs[1].secret_share.is_some(), "it holds no share");
    let e = exclusion(&outs[0], Role::Dealer, 2).unwrap();
    assert!(!e.fault.is_misbehaviour(), "{:?}", e.fault);
}

#[test]
fn reshare_with_a_silent_old_member() {
    // Old member 0 (not in the new committee) is silent: dealer 0 is disqualified.
    let (outs, _) = reshare::<Bls12381G1>(honest(), &[0]);
    assert_eq!(outs[0].public.qualified, vec![1, 2, 3, 4]);
    assert!(matches!(
        exclusion(&outs[0], Role::Dealer, 0).unwrap().fault,
        FaultKind::MissingJustification { .. }
    ));
}

#[test]
fn a_reshare_with_fewer_than_k_reports_fails_naming_the_shortfall() {
    // New members 5 and 6 hold no old share and stay silent: every old dealer still qualifies
    // (3 are needed), but only 4 of the 6 new players report and `k = 5` are needed for the
    // new key to be usable.
    let (run, _) = reshare_run::<Secp256k1>(honest(), &[5, 6], &[]);
    for i in 1..5 {
        assert!(
            matches!(run.results[i], RunResult::Failed(_)),
            "node {i} did not fail"
        );
    }
    let reason = board_of(&run).failure_reason().unwrap();
    assert_eq!(
        reason,
        FailureReason::TooFewReports {
            reports: 4,
            needed: 5
        }
    );
    assert_eq!(reason.code(), "too_few_reports");
}

#[test]
fn malformed_resent_ciphertext_disqualifies() {
    // Dealer 1's deal to player 4 is lost; its justification carries a ciphertext whose proof
    // of knowledge of the ephemeral key does not verify.
    let params = Params::new(7, 5, 5).unwrap();
    let mut lose = lose_deal::<Bls12381G1>(1, 4);
    let key = member(1).identity;
    let tamper = move |i: usize, a: Action<Bls12381G1>| {
        if i == 1 && is_post_of(&a, |p| matches!(p, ComplaintPost::Justification(_))) {
            let Action::Post(bytes) = a else {
                unreachable!()
            };
            let mut s = SignedComplaintPost::<Bls12381G1>::decode(&bytes, 7, 7).unwrap();
            if let ComplaintPost::Justification(j) = &mut s.post {
                // The last byte of the proof's response.
                j.deals[0].1[VerifiableCiphertext::HEADER_LEN - 1] ^= 1;
            }
            return vec![Action::Post(
                SignedComplaintPost::sign(&key, s.post).encode(),
            )];
        }
        lose(i, a)
    };
    let run = fresh_run::<Bls12381G1>(params, &[], Box::new(tamper));
    let outs = check_agreement(&run.results, &[0, 2, 3, 4, 5, 6]);
    assert_eq!(outs[0].public.qualified, vec![0, 2, 3, 4, 5, 6]);
    let e = exclusion(&outs[0], Role::Dealer, 1).unwrap();
    assert_eq!(e.fault, FaultKind::BadJustification { player: 4 });
    assert!(e.fault.is_misbehaviour());
    assert_eq!(verify_exclusion(&run.ceremony, e), Some(true));
    let mut other = e.clone();
    other.fault = FaultKind::BadJustification { player: 5 };
    assert_ne!(verify_exclusion(&run.ceremony, &other), Some(true));
    check_group_secret(&run.ceremony, &outs);
    replay(&run, &outs[0]);
}

/// A tamper for `dealer`'s justification post: the pair it sends `player` again becomes a
/// well-formed ciphertext of a wrong pair, re-signed by the dealer. Any other action goes to
/// `next`.
fn resend_wrong_pair(
    params: Params,
    (dealer, player): (usize, u32),
    seed: u64,
    mut next: impl FnMut(usize, Action<Secp256k1>) -> Vec<Action<Secp256k1>>,
) -> impl FnMut(usize, Action<Secp256k1>) -> Vec<Action<Secp256k1>> {
    let n = params.n();
    let members: Vec<MemberKeys> = (0..n as u32).map(member).collect();
    let ceremony = Ceremony::new(config::<Secp256k1>(&members, params)).unwrap();
    let key = member(dealer as u32).identity;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    move |i, a| {
        if i != dealer || !is_post_of(&a, |p| matches!(p, ComplaintPost::Justification(_))) {
            return next(i, a);
        }
        let Action::Post(bytes) = a else {
            unreachable!()
        };
        let mut s = SignedComplaintPost::<Secp256k1>::decode(&bytes, n, n).unwrap();
        if let ComplaintPost::Justification(j) = &mut s.post {
            let signed =
                SignedPedersen::new(&key, ceremony.id(), dealer as u32, j.commitment.clone());
            let one = <Secp256k1 as Curve>::Scalar::ONE;
            let at = j.deals.iter().position(|d| d.0 == player).unwrap();
            j.deals[at].1 = seal_pair(
                ceremony.id(),
                &signed,
                (player, ceremony.verifiable_key(player).unwrap()),
                &one,
                &one,
                &mut rng,
            );
        }
        vec![Action::Post(
            SignedComplaintPost::sign(&key, s.post).encode(),
        )]
    }
}

#[test]
fn bad_resent_pair_is_disputed_and_disqualifies_its_dealer() {
    // Dealer 1's deal to player 4 is lost; its justification sends a well-formed ciphertext of a
    // wrong pair. The board cannot tell; player 4 reveals its key in the dispute phase, before
    // the qualified set is fixed, and dealer 1 is disqualified.
    let params = Params::new(7, 5, 5).unwrap();
    let tamper = resend_wrong_pair(params, (1, 4), 44, lose_deal::<Secp256k1>(1, 4));
    let run = fresh_run::<Secp256k1>(params, &[], Box::new(tamper));
    let outs = check_agreement(&run.results, &[0, 2, 3, 4, 5, 6]);
    assert_eq!(outs[0].public.qualified, vec![0, 2, 3, 4, 5, 6]);
    let e = exclusion(&outs[0], Role::Dealer, 1).unwrap();
    assert_eq!(e.fault, FaultKind::BadDeal { player: 4 });
    assert!(e.fault.is_misbehaviour());
    assert_eq!(verify_exclusion(&run.ceremony, e), Some(true));
    // Player 4's dispute proved it; the last evidence item is the dealer's justification.
    assert_eq!(e.reporter.as_ref(), player_id(&run.ceremony, 4));
    let mut flipped = e.clone();
    flipped.role = Role::Player;
    flipped.index = 4;
    flipped.identity = run.ceremony.players()[4].identity.clone();
    flipped.fault = FaultKind::FalseComplaint { dealer: 1 };
    assert_eq!(verify_exclusion(&run.ceremony, &flipped), Some(false));
    let board = replay(&run, &outs[0]);
    assert!(board.reconstructed(1).is_none());
    // Deal, report, justify, dispute, Feldman, complain.
    let deadlines = run
        .events
        .iter()
        .filter(|e| matches!(e, BoardEvent::Deadline))
        .count();
    assert_eq!(deadlines, 6);
    check_group_secret(&run.ceremony, &outs);
}

/// `player`'s reveal of the key of the pair `dealer` sent it again on `board`, as its dispute
/// carries it.
fn reveal_resent(
    board: &ComplaintBoard<Secp256k1>,
    (dealer, player): (u32, u32),
    rng: &mut ChaCha20Rng,
) -> KeyReveal {
    let hash = *board.signed_hash(dealer).unwrap();
    let resent = board.resent_deal(dealer, player).unwrap();
    let ct = VerifiableCiphertext::from_bytes(resent, PAIR_LEN).unwrap();
    let aad = pair_aad(board.ceremony().id(), dealer, player, &hash);
    verifiable_encrypt::reveal_key(&member(player).verifiable, &aad, &ct, rng).unwrap()
}

#[test]
fn a_dispute_about_a_dealer_already_disqualified_is_not_judged() {
    // Dealer 1's deals to players 4 and 5 are lost; its justification sends player 4 a wrong
    // pair and player 5 a right one. Player 4's dispute convicts dealer 1; a false dispute by
    // player 5 about the same dealer arrives after it and is not judged, as in the report phase.
    let params = Params::new(7, 5, 5).unwrap();
    let mut lose_4 = lose_deal::<Secp256k1>(1, 4);
    let mut lose_5 = lose_deal::<Secp256k1>(1, 5);
    let tamper = resend_wrong_pair(params, (1, 4), 45, move |i, a| {
        lose_4(i, a)
            .into_iter()
            .flat_map(|a| lose_5(i, a))
            .collect()
    });
    let run = fresh_run::<Secp256k1>(params, &[], Box::new(tamper));
    let mut board = ComplaintBoard::new(run.ceremony.clone());
    let mut rng = ChaCha20Rng::seed_from_u64(47);
    let mut disputed = false;
    for e in &run.events {
        match e {
            BoardEvent::Post(p) => {
                let post = SignedComplaintPost::decode(p, 7, 7).unwrap();
                let _ = board.apply(&post);
                if matches!(&post.post, ComplaintPost::Dispute(d) if d.player == 4) {
                    assert!(board.is_disqualified(1));
                    let reveal = reveal_resent(&board, (1, 5), &mut rng);
                    let false_dispute = SignedComplaintPost::sign(
                        &member(5).identity,
                        ComplaintPost::Dispute(Dispute {
                            session: *run.ceremony.id(),
                            player: 5,
                            reveals: vec![(1, reveal)],
                        }),
                    );
                    assert_eq!(board.apply(&false_dispute), Ok(()));
                    // A dispute about a pair the dealer never sent the player is still false.
                    let unsent = SignedComplaintPost::sign(
                        &member(6).identity,
                        ComplaintPost::Dispute(Dispute {
                            session: *run.ceremony.id(),
                            player: 6,
                            reveals: vec![(1, reveal_resent(&board, (1, 5), &mut rng))],
                        }),
                    );
                    assert_eq!(
                        board.apply(&unsent),
                        player_fault(6, FaultKind::FalseComplaint { dealer: 1 })
                    );
                    disputed = true;
                }
            }
            BoardEvent::Deadline => board.advance(),
        }
    }
    assert!(disputed, "player 4 did not dispute");
    let Some(Outcome::Success { output, exclusions }) = board.outcome() else {
        panic!("board failed")
    };
    assert!(!output.qualified.contains(&1));
    assert!(output.qualified.contains(&5));
    assert!(!output.qualified.contains(&6));
    let e = exclusions
        .iter()
        .find(|e| e.role == Role::Dealer && e.index == 1)
        .unwrap();
    assert_eq!(e.fault, FaultKind::BadDeal { player: 4 });
    assert_eq!(verify_exclusion(&run.ceremony, e), Some(true));
    assert!(!exclusions.iter().any(|e| e.index == 5));
}

#[test]
fn dispute_about_a_valid_resent_pair_is_the_complainers_fault() {
    // Player 4 claims it lost dealer 1's deal, then disputes the valid pair sent again. The
    // lock-step driver has no hook at the dispute deadline, so the dispute is applied to a board
    // replaying the run.
    let params = Params::new(7, 5, 5).unwrap();
    let run = fresh_run::<Secp256k1>(
        params,
        &[],
        Box::new({
            let key4 = member(4).identity;
            move |i: usize, a: Action<Secp256k1>| {
                if i == 4 && is_post_of(&a, |p| matches!(p, ComplaintPost::Report(_))) {
                    let Action::Post(bytes) = a else {
                        unreachable!()
                    };
                    let mut s = SignedComplaintPost::<Secp256k1>::decode(&bytes, 7, 7).unwrap();
                    if let ComplaintPost::Report(r) = &mut s.post {
                        r.valid.retain(|d| *d != 1);
                    }
                    return vec![Action::Post(
                        SignedComplaintPost::sign(&key4, s.post).encode(),
                    )];
                }
                vec![a]
            }
        }),
    );
    let outs = check_agreement(&run.results, &(0..7).collect::<Vec<_>>());
    let mut board = ComplaintBoard::new(run.ceremony.clone());
    let mut disputed = false;
    let mut rng = ChaCha20Rng::seed_from_u64(46);
    for e in &run.events {
        match e {
            BoardEvent::Post(p) => {
                let _ = board.apply(&SignedComplaintPost::decode(p, 7, 7).unwrap());
            }
            BoardEvent::Deadline => {
                board.advance();
                if board.phase() == ComplaintBoardPhase::Dispute && !disputed {
                    disputed = true;
                    let reveal = reveal_resent(&board, (1, 4), &mut rng);
                    let dispute = SignedComplaintPost::sign(
                        &member(4).identity,
                        ComplaintPost::Dispute(Dispute {
                            session: *run.ceremony.id(),
                            player: 4,
                            reveals: vec![(1, reveal)],
                        }),
                    );
                    assert_eq!(
                        board.apply(&dispute),
                        player_fault(4, FaultKind::FalseComplaint { dealer: 1 })
                    );
                    // A dispute about a dealer that sent player 4 nothing is false as well.
                    let other = SignedComplaintPost::sign(
                        &member(4).identity,
                        ComplaintPost::Dispute(Dispute {
                            session: *run.ceremony.id(),
                            player: 4,
                            reveals: vec![(2, reveal)],
                        }),
                    );
                    assert_eq!(
                        board.apply(&other),
                        Err(ComplaintBoardError::Excluded(Role::Player, 4))
                    );
                }
            }
        }
    }
    assert!(disputed, "no dispute phase");
    let Some(Outcome::Success { output, exclusions }) = board.outcome() else {
        panic!("board failed")
    };
    // Dealer 1 stays; player 4 is out, with the dispute and the justification as evidence.
    assert!(output.qualified.contains(&1));
    assert!(!output.qualified.contains(&4));
    let e = exclusions
        .iter()
        .find(|e| e.role == Role::Player && e.index == 4)
        .unwrap();
    assert_eq!(e.fault, FaultKind::FalseComplaint { dealer: 1 });
    assert_eq!(verify_exclusion(&run.ceremony, e), Some(true));
    // The player's own dispute proves it: nobody is paid for it, not the dealer whose
    // justification is the evidence's last item.
    assert_eq!(e.reporter, None);
    assert!(exclusions.iter().all(|e| e.index == 4));
    // The honest run itself had no dispute: everyone qualified.
    assert_eq!(outs[0].public.qualified, (0..7).collect::<Vec<_>>());
}

/// The reconstruction posts of a run in which dealer 2 withholds its Feldman values, in board
/// order, with the run.
fn reconstruction_run() -> (Run<Bls12381G1>, Vec<SignedComplaintPost<Bls12381G1>>) {
    let params = Params::new(7, 5, 5).unwrap();
    let tamper = |i: usize, a: Action<Bls12381G1>| {
        if i == 2 && is_post_of(&a, |p| matches!(p, ComplaintPost::Feldman(_))) {
            vec![]
        } else {
            vec![a]
        }
    };
    let run = fresh_run::<Bls12381G1>(params, &[], Box::new(tamper));
    let posts: Vec<_> = run
        .events
        .iter()
        .filter_map(|e| match e {
            BoardEvent::Post(p) => SignedComplaintPost::<Bls12381G1>::decode(p, 7, 7).ok(),
            BoardEvent::Deadline => None,
        })
        .filter(|s| matches!(s.post, ComplaintPost::Reconstruction(_)))
        .collect();
    assert_eq!(posts.len(), 7);
    (run, posts)
}

/// The signature checks of `posts`, with their encodings, under the signatures `sigs`.
fn checks_of<'a>(
    posts: &'a [SignedComplaintPost<Bls12381G1>],
    encoded: &'a [Vec<u8>],
    sigs: &'a [IdentitySignature],
) -> Vec<PostToCheck<'a>> {
    posts
        .iter()
        .zip(encoded)
        .zip(sigs)
        .map(|((s, e), signature)| PostToCheck {
            author: s.post.author(),
            encoded: e,
            signature,
        })
        .collect()
}

#[test]
fn reconstruction_signatures_are_checked_in_one_batch_that_names_a_bad_item() {
    let (run, posts) = reconstruction_run();
    let ceremony = &run.ceremony;
    let encoded: Vec<Vec<u8>> = posts.iter().map(|s| s.post.encode()).collect();
    let genuine: Vec<_> = posts.iter().map(|s| s.signature).collect();
    ceremony.forget_checks();
    assert_eq!(
        post_signatures(ceremony, &checks_of(&posts, &encoded, &genuine)),
        Ok(())
    );
    // Item 3 carries item 4's signature (a valid signature, on another post); item 5 one that
    // does not decode. The batch fails and the items on their own name exactly those two.
    let mut bad = genuine.clone();
    bad[3] = genuine[4];
    bad[5].0 = [0xff; 48];
    ceremony.forget_checks();
    assert_eq!(
        post_signatures(ceremony, &checks_of(&posts, &encoded, &bad)),
        Err(BadPostSignatures { items: vec![3, 5] })
    );
    // The same answers as checking each post's signature on its own.
    for (i, (c, s)) in checks_of(&posts, &encoded, &bad)
        .iter()
        .zip(&bad)
        .enumerate()
    {
        let key = &ceremony.players()[c.author.1 as usize].identity;
        assert_eq!(
            key.verify(Purpose::Post, c.encoded, s),
            ![3, 5].contains(&i),
            "item {i}"
        );
    }
    // An author outside the ceremony fails too, without failing the others.
    let mut stranger = checks_of(&posts, &encoded, &genuine);
    stranger[0].author = (Role::Player, 7);
    assert_eq!(
        post_signatures(ceremony, &stranger),
        Err(BadPostSignatures { items: vec![0] })
    );
}

#[test]
fn a_reconstruction_post_whose_signature_fails_at_the_deadline_counts_as_never_posted() {
    // Player 0's reconstruction post is replaced by one with wrong pairs under its genuine
    // signature. The board takes it on arrival (its signature waits for the batch at the
    // deadline) and then drops it: its wrong pairs convict nobody, the key is reconstructed from
    // the other players' pairs, and the outcome is the nodes', as if the post had been refused
    // on arrival.
    let (run, posts) = reconstruction_run();
    let expected = check_agreement(&run.results, &(0..7).collect::<Vec<_>>());
    let mut forged = posts
        .iter()
        .find(|s| s.post.author().1 == 0)
        .unwrap()
        .clone();
    if let ComplaintPost::Reconstruction(d) = &mut forged.post {
        for (_, s, _) in &mut d.shares {
            *s += <Bls12381G1 as Curve>::Scalar::ONE;
        }
    }
    run.ceremony.forget_checks();
    let mut board = ComplaintBoard::new(run.ceremony.clone());
    let mut seen = false;
    for e in &run.events {
        match e {
            BoardEvent::Post(p) => {
                let s = SignedComplaintPost::<Bls12381G1>::decode(p, 7, 7).unwrap();
                if matches!(s.post, ComplaintPost::Reconstruction(ref d) if d.player == 0) {
                    assert_eq!(board.apply(&forged), Ok(()));
                    seen = true;
                } else {
                    let _ = board.apply(&s);
                }
            }
            BoardEvent::Deadline => board.advance(),
        }
    }
    assert!(seen);
    let Some(Outcome::Success { output, exclusions }) = board.outcome() else {
        panic!("board failed: {:?}", board.outcome())
    };
    assert_eq!(*output, expected[0].public);
    assert_eq!(*exclusions, expected[0].exclusions);
    assert!(board.reconstructed(2).is_some());
    // The drop is on record, naming its player, for a chain that reported the post as taken.
    assert_eq!(board.dropped_reconstructions(), &[0]);
}

#[test]
fn reconstruction_short_of_t_pairs_fails_instead_of_dropping() {
    // Dealer 2 withholds its Feldman values and, with players 5 and 6, its reconstruction pairs:
    // 4 < t = 5 pairs. Dropping dealer 2 would let it bias the key, so the ceremony fails.
    let params = Params::new(7, 5, 5).unwrap();
    let tamper = |i: usize, a: Action<Secp256k1>| {
        let withhold = (i == 2 && is_post_of(&a, |p| matches!(p, ComplaintPost::Feldman(_))))
            || ([2, 5, 6].contains(&i)
                && is_post_of(&a, |p| matches!(p, ComplaintPost::Reconstruction(_))));
        if withhold { vec![] } else { vec![a] }
    };
    let run = fresh_run::<Secp256k1>(params, &[], Box::new(tamper));
    for i in [0, 1, 3, 4] {
        let RunResult::Failed(f) = &run.results[i] else {
            panic!("node {i} did not fail")
        };
        assert_eq!(f.qualified, (0..7).collect::<Vec<_>>());
        let faults: Vec<(Role, u32, FaultKind)> = f
            .exclusions
            .iter()
            .map(|e| (e.role, e.index, e.fault.clone()))
            .collect();
        assert_eq!(
            faults,
            vec![
                (Role::Dealer, 2, FaultKind::MissedFeldman),
                (
                    Role::Player,
                    2,
                    FaultKind::MissedReconstruction { dealer: 2 }
                ),
                (
                    Role::Player,
                    5,
                    FaultKind::MissedReconstruction { dealer: 2 }
                ),
                (
                    Role::Player,
                    6,
                    FaultKind::MissedReconstruction { dealer: 2 }
                ),
            ]
        );
    }
    // The chain's reason names the dealer and the pairs it lacks.
    assert_eq!(
        board_of(&run).failure_reason(),
        Some(FailureReason::Unreconstructed {
            dealer: 2,
            pairs: 4,
            t: 5
        })
    );
}

/// A failed ceremony says why (before, every complaint-variant failure read "0 dealers
/// qualified").
#[test]
fn a_failed_ceremony_names_its_shortfall() {
    let params = Params::new(7, 5, 5).unwrap();
    let run = fresh_run::<Secp256k1>(params, &[4, 5, 6], Box::new(|_, a| vec![a]));
    let reason = board_of(&run).failure_reason();
    assert_eq!(
        reason,
        Some(FailureReason::TooFewDealers {
            qualified: 4,
            quorum: 5
        })
    );
    assert_eq!(reason.unwrap().to_string(), "4 dealers qualified, 5 needed");
}

#[test]
fn false_feldman_complaint_is_the_complainers_fault() {
    // An honest run, replayed on a board; in the complain phase player 5 posts its true pair from
    // dealer 0 as a "complaint" although it matches dealer 0's Feldman values.
    let params = Params::new(7, 5, 5).unwrap();
    let captured: std::rc::Rc<std::cell::RefCell<Option<Vec<u8>>>> = Default::default();
    let sink = captured.clone();
    let id5 = member(5).identity.public().clone();
    let tamper = move |i: usize, a: Action<Secp256k1>| {
        if let Action::Send { to, payload } = &a
            && i == 0
            && *to == id5
        {
            *sink.borrow_mut() = Some(payload.clone());
        }
        vec![a]
    };
    let run = fresh_run::<Secp256k1>(params, &[], Box::new(tamper));
    let outs = check_agreement(&run.results, &(0..7).collect::<Vec<_>>());
    let c = &run.ceremony;
    let deal = Deal::<Secp256k1>::decode(captured.borrow().as_ref().unwrap(), 7).unwrap();
    let aad = pair_aad(c.id(), 0, 5, &deal.statement().hash);
    let ct = VerifiableCiphertext::from_bytes(&deal.ciphertext, PAIR_LEN).unwrap();
    let pt = verifiable_encrypt::open(&member(5).verifiable, &aad, &ct).unwrap();
    let s = Secp256k1::decode_scalar(&pt.expose()[..32]).unwrap();
    let b = Secp256k1::decode_scalar(&pt.expose()[32..]).unwrap();
    let complaint = SignedComplaintPost::sign(
        &member(5).identity,
        ComplaintPost::Complaint(Disclosure {
            session: *c.id(),
            player: 5,
            shares: vec![(0, s, b)],
            commitments: vec![(0, deal.commitment.clone())],
        }),
    );

    let mut board = ComplaintBoard::new(c.clone());
    let (last, rest) = run.events.split_last().unwrap();
    assert!(matches!(last, BoardEvent::Deadline));
    for e in rest {
        match e {
            BoardEvent::Post(p) => {
                let post = SignedComplaintPost::decode(p, 7, 7).unwrap();
                // Player 5's own complaint (empty: it has none) gives way to the false one.
                if !matches!(&post.post, ComplaintPost::Complaint(d) if d.player == 5) {
                    board.apply(&post).unwrap();
                }
            }
            BoardEvent::Deadline => board.advance(),
        }
    }
    assert_eq!(board.phase(), ComplaintBoardPhase::Complain);
    board.apply(&complaint).unwrap();
    board.advance();
    let Some(Outcome::Success { output, exclusions }) = board.outcome() else {
        panic!("board failed")
    };
    // Dealer 0 keeps its place and its Feldman values; player 5 is named.
    assert_eq!(output.group_key, outs[0].public.group_key);
    assert_eq!(output.qualified, (0..7).collect::<Vec<_>>());
    assert!(board.reconstructed(0).is_none());
    assert_eq!(exclusions.len(), 1);
    assert_eq!(
        (
            exclusions[0].role,
            exclusions[0].index,
            &exclusions[0].fault
        ),
        (Role::Player, 5, &FaultKind::FalseComplaint { dealer: 0 })
    );
    assert!(exclusions[0].fault.is_misbehaviour());
    assert_eq!(verify_exclusion(c, &exclusions[0]), Some(true));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Arbitrary bytes as messages and posts, in every phase, never panic a node.
    #[test]
    fn nodes_survive_garbage(garbage in proptest::collection::vec(
        proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400), 1..8)) {
        let params = Params::new(4, 3, 3).unwrap();
        let members: Vec<MemberKeys> = (0..4).map(member).collect();
        let ceremony = Ceremony::new(config::<Bls12381G1>(&members, params)).unwrap();
        let peer = members[1].identity.public().clone();
        let mut node = nodes(&ceremony, members, vec![None; 4]).remove(0);
        node.handle(Input::Start);
        for _ in 0..7 {
            for g in &garbage {
                node.handle(Input::Message { from: peer.clone(), payload: g.clone() });
                node.handle(Input::BoardPost(g.clone()));
                let mut tagged = vec![0u8; 48];
                tagged.push(0x41 + (g.len() % 5) as u8);
                tagged.extend_from_slice(g);
                node.handle(Input::BoardPost(tagged));
            }
            node.handle(Input::Deadline);
        }
    }
}

#[test]
fn dealer_that_does_not_report_is_left_out_of_the_clique() {
    // Node 5 deals correctly but never posts its report: no edges, so it is outside the maximum
    // clique, as a dealer too, although nobody complained about its deals.
    let params = Params::new(7, 5, 5).unwrap();
    let tamper = |i: usize, a: Action<Bls12381G1>| {
        if i == 5 && is_post_of(&a, |p| matches!(p, ComplaintPost::Report(_))) {
            return vec![];
        }
        vec![a]
    };
    let run = fresh_run::<Bls12381G1>(params, &[], Box::new(tamper));
    let outs = check_agreement(&run.results, &[0, 1, 2, 3, 4, 6]);
    assert_eq!(outs[0].public.qualified, vec![0, 1, 2, 3, 4, 6]);
    let faults: Vec<(Role, u32, FaultKind)> = outs[0]
        .exclusions
        .iter()
        .map(|e| (e.role, e.index, e.fault.clone()))
        .collect();
    assert_eq!(
        faults,
        vec![
            (Role::Dealer, 5, FaultKind::NotInClique),
            (Role::Player, 5, FaultKind::MissedReport),
        ]
    );
    let board = replay(&run, &outs[0]);
    assert!(board.missed_deals(5).is_empty());
    check_group_secret(&run.ceremony, &outs);
}

#[test]
fn report_with_a_forged_dealer_signature_is_the_reporters_fault() {
    let params = Params::new(7, 5, 5).unwrap();
    let key = member(3).identity;
    let tamper = move |i: usize, a: Action<Secp256k1>| {
        if i == 3 && is_post_of(&a, |p| matches!(p, ComplaintPost::Report(_))) {
            let Action::Post(bytes) = a else {
                unreachable!()
            };
            let mut s = SignedComplaintPost::<Secp256k1>::decode(&bytes, 7, 7).unwrap();
            if let ComplaintPost::Report(r) = &mut s.post {
                // Claim dealer 0 signed another hash.
                r.heard[0].hash[0] ^= 1;
            }
            return vec![Action::Post(
                SignedComplaintPost::sign(&key, s.post).encode(),
            )];
        }
        vec![a]
    };
    let run = fresh_run::<Secp256k1>(params, &[], Box::new(tamper));
    let outs = check_agreement(&run.results, &[0, 1, 2, 4, 5, 6]);
    // Dealer 0 is not blamed (the forged statement does not verify); reporter 3 is.
    assert_eq!(outs[0].public.qualified, vec![0, 1, 2, 4, 5, 6]);
    let p = exclusion(&outs[0], Role::Player, 3).unwrap();
    assert_eq!(p.fault, FaultKind::BadReport);
    assert!(p.fault.is_misbehaviour());
    assert_eq!(verify_exclusion(&run.ceremony, p), Some(true));
    assert_eq!(
        exclusion(&outs[0], Role::Dealer, 3).unwrap().fault,
        FaultKind::NotInClique
    );
    assert!(exclusion(&outs[0], Role::Dealer, 0).is_none());
    check_group_secret(&run.ceremony, &outs);
    replay(&run, &outs[0]);
}

#[test]
fn whole_deal_signature_matters_only_for_bad_pairs_and_senders_must_be_dealers() {
    // The signature on a whole deal is checked only when its pair does not verify (the player
    // would complain): a forged deal with a bad pair is dropped and does not displace the
    // dealer's real deal, and a deal whose pair opens the dealer's signed commitment is accepted
    // whatever the signature on the whole. The statement (the dealer's signature on the
    // commitment) must verify in every case, since it goes into the report. Independently of
    // all that, a deal must come from its dealer as the transport authenticated it.
    type S = <Secp256k1 as Curve>::Scalar;
    let params = Params::new(4, 3, 3).unwrap();
    let members: Vec<MemberKeys> = (0..4).map(member).collect();
    let ceremony = Ceremony::new(config::<Secp256k1>(&members, params)).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let dealer = member(1).identity;
    let forger = member(3).identity;
    let xs = ceremony.player_indices().to_vec();
    let f = Polynomial::<S>::random(2, None, &mut rng);
    let blind = Polynomial::<S>::random(2, None, &mut rng);
    let signed = SignedPedersen::<Secp256k1>::new(
        &dealer,
        ceremony.id(),
        1,
        EvalCommitment::pedersen(&f, &blind, &xs),
    );
    let deal_to = |j: usize, good: bool, rng: &mut ChaCha20Rng| {
        let (s, b) = if good {
            (f.evaluate(&xs[j]), blind.evaluate(&xs[j]))
        } else {
            (S::ONE, S::ONE)
        };
        let key = ceremony.verifiable_key(j as u32).unwrap();
        seal_deal(
            &dealer,
            ceremony.id(),
            &signed,
            (j as u32, key),
            &s,
            &b,
            rng,
        )
    };
    let resign = |mut d: Deal<Secp256k1>| {
        d.signature = forger.sign(Purpose::Message, &d.share_payload(&signed.hash));
        d.encode()
    };
    let node_for = |j: usize| {
        let m = member(j as u32);
        let seed = [j as u8; 32];
        ComplaintParticipant::new(ceremony.clone(), m.identity, m.verifiable, None, seed).unwrap()
    };
    let observed = |actions: Vec<Action<Secp256k1>>| {
        actions.into_iter().find_map(|a| match a {
            Action::Observed(o) => Some(o),
            _ => None,
        })
    };

    let from_dealer = |payload: Vec<u8>| Input::Message {
        from: dealer.public().clone(),
        payload,
    };
    let from_forger = |payload: Vec<u8>| Input::Message {
        from: forger.public().clone(),
        payload,
    };

    // A forged deal with a bad pair is dropped; the dealer's deal still counts.
    let mut p2 = node_for(2);
    let forged = resign(deal_to(2, false, &mut rng));
    assert!(matches!(
        observed(p2.handle(from_dealer(forged))),
        Some(Observation::Malformed(_))
    ));
    assert!(p2.verified_dealers().is_empty());
    let real = deal_to(2, true, &mut rng).encode();
    assert_eq!(observed(p2.handle(from_dealer(real))), None);
    assert_eq!(p2.verified_dealers(), vec![1]);

    // A good pair under someone else's signature on the whole deal is accepted.
    let mut p3 = node_for(3);
    let resigned = resign(deal_to(3, true, &mut rng));
    assert_eq!(observed(p3.handle(from_dealer(resigned))), None);
    assert_eq!(p3.verified_dealers(), vec![1]);

    // The dealer's real deal relayed by anyone else is dropped unread.
    let mut p3 = node_for(3);
    let relayed = deal_to(3, true, &mut rng).encode();
    assert_eq!(
        observed(p3.handle(from_forger(relayed))),
        Some(Observation::WrongSender {
            role: Role::Dealer,
            index: 1
        })
    );
    assert!(p3.verified_dealers().is_empty());

    // A bad pair signed by the dealer is a bad share, complained about in the report.
    let mut p0 = node_for(0);
    let bad = deal_to(0, false, &mut rng).encode();
    assert_eq!(
        observed(p0.handle(from_dealer(bad))),
        Some(Observation::BadShare { dealer: 1 })
    );
    assert!(p0.verified_dealers().is_empty());
    // It does not block the dealer's good deal that follows; a second bad one changes nothing.
    let real = deal_to(0, true, &mut rng).encode();
    assert_eq!(observed(p0.handle(from_dealer(real))), None);
    assert_eq!(p0.verified_dealers(), vec![1]);
    let bad = deal_to(0, false, &mut rng).encode();
    assert_eq!(observed(p0.handle(from_dealer(bad))), None);
    assert_eq!(p0.verified_dealers(), vec![1]);

    // A statement the dealer did not sign is refused even with a good pair.
    let mut p2 = node_for(2);
    let mut unsigned = deal_to(2, true, &mut rng);
    unsigned.commitment_signature = forger.sign(Purpose::Message, b"not the statement");
    unsigned.signature = dealer.sign(Purpose::Message, &unsigned.share_payload(&signed.hash));
    assert!(matches!(
        observed(p2.handle(from_dealer(unsigned.encode()))),
        Some(Observation::Malformed(_))
    ));
    assert!(p2.verified_dealers().is_empty());
}

/// A player reports as soon as it holds a verified pair from every dealer, before the deal
/// deadline, and only once; a player still missing a deal, or holding a bad one, waits for the
/// deadline, when the missing deal may yet have come. A copy of a deal the early report took is
/// no fault.
#[test]
fn a_player_that_verified_every_deal_reports_before_the_deal_deadline() {
    let params = Params::new(4, 3, 3).unwrap();
    let members: Vec<MemberKeys> = (0..4).map(member).collect();
    let ceremony = Ceremony::new(config::<Secp256k1>(&members, params)).unwrap();
    let mut nodes = nodes(&ceremony, members, vec![None; 4]);
    // Every dealer's deal to each player (a dealer's deal to itself it handles at once).
    let mut deals: Vec<Vec<Input>> = vec![Vec::new(); 4];
    for (i, node) in nodes.iter_mut().enumerate() {
        for a in node.handle(Input::Start) {
            if let Action::Send { to, payload } = a {
                let j = (0..4)
                    .find(|j| *member(*j).identity.public() == to)
                    .unwrap();
                deals[j as usize].push(Input::Message {
                    from: member(i as u32).identity.public().clone(),
                    payload,
                });
            }
        }
    }
    let reports = |actions: &[Action<Secp256k1>]| -> Vec<Report<Secp256k1>> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Post(bytes) => match SignedComplaintPost::decode(bytes, 4, 4).unwrap().post
                {
                    ComplaintPost::Report(r) => Some(r),
                    other => panic!("unexpected post {other:?}"),
                },
                Action::Observed(o) => panic!("unexpected observation {o:?}"),
                _ => None,
            })
            .collect()
    };

    // Player 0 holds its own pair; the report goes out with the third dealer's deal.
    let (last, first) = deals[0].split_last().unwrap();
    assert_eq!(first.len(), 2);
    for d in first {
        assert!(reports(&nodes[0].handle(d.clone())).is_empty());
    }
    let actions = nodes[0].handle(last.clone());
    let early = reports(&actions);
    assert_eq!(early.len(), 1);
    assert_eq!(early[0].valid, vec![0, 1, 2, 3]);
    assert!(early[0].complaints.is_empty());
    let [Action::Post(early_bytes)] = &actions[..] else {
        panic!("{actions:?}")
    };
    // The same deal again posts nothing more; nor does the deal deadline once the report is
    // on the board.
    assert!(reports(&nodes[0].handle(last.clone())).is_empty());
    nodes[0].handle(Input::BoardPost(early_bytes.clone()));
    assert!(reports(&nodes[0].handle(Input::Deadline)).is_empty());

    // Player 3's early report has not reached the board by the deal deadline (a submission
    // that expired, a crash before it went out): the same bytes go out again then.
    let posted = |actions: Vec<Action<Secp256k1>>| -> Vec<Vec<u8>> {
        actions
            .into_iter()
            .filter_map(|a| match a {
                Action::Post(bytes) => Some(bytes),
                _ => None,
            })
            .collect()
    };
    let early_3: Vec<Vec<u8>> = deals[3]
        .iter()
        .flat_map(|d| posted(nodes[3].handle(d.clone())))
        .collect();
    assert_eq!(early_3.len(), 1);
    let again = posted(nodes[3].handle(Input::Deadline));
    assert_eq!(again, early_3);

    // Player 1 never gets dealer 3's deal: it reports at the deal deadline, without it.
    for d in deals[1].iter().filter(
        |d| !matches!(d, Input::Message { from, .. } if from == member(3).identity.public()),
    ) {
        assert!(reports(&nodes[1].handle(d.clone())).is_empty());
    }
    let at_deadline = reports(&nodes[1].handle(Input::Deadline));
    assert_eq!(at_deadline.len(), 1);
    assert_eq!(at_deadline[0].valid, vec![0, 1, 2]);

    // Player 2 gets a bad pair from dealer 3 (which it would complain about): it waits for the
    // deadline too, since the dealer's good deal may still follow.
    let corrupted = |input: &Input| match input {
        Input::Message { from, payload } if from == member(3).identity.public() => {
            let mut deal = Deal::<Secp256k1>::decode(payload, 4).unwrap();
            let signed = SignedPedersen::new(
                &member(3).identity,
                ceremony.id(),
                3,
                deal.commitment.clone(),
            );
            let key = ceremony.verifiable_key(2).unwrap();
            deal = seal_deal(
                &member(3).identity,
                ceremony.id(),
                &signed,
                (2, key),
                &<Secp256k1 as Curve>::Scalar::ONE,
                &<Secp256k1 as Curve>::Scalar::ONE,
                &mut ChaCha20Rng::seed_from_u64(5),
            );
            Input::Message {
                from: from.clone(),
                payload: deal.encode(),
            }
        }
        other => other.clone(),
    };
    for d in &deals[2] {
        let actions = nodes[2].handle(corrupted(d));
        assert!(actions.iter().all(|a| !matches!(a, Action::Post(_))));
    }
    let at_deadline = reports(&nodes[2].handle(Input::Deadline));
    assert_eq!(at_deadline.len(), 1);
    assert_eq!(at_deadline[0].valid, vec![0, 1, 2]);
    assert_eq!(at_deadline[0].complaints.len(), 1);
}

/// Players 5 and 6 claim they hold no valid pair from any other dealer (a false complaint each).
fn complain_about_everyone<C: Curve>(n: usize) -> Tamper<'static, C> {
    let keys = [member(5).identity, member(6).identity];
    Box::new(move |i: usize, a: Action<C>| {
        if (i == 5 || i == 6) && is_post_of(&a, |p| matches!(p, ComplaintPost::Report(_))) {
            let Action::Post(bytes) = a else {
                unreachable!()
            };
            let mut s = SignedComplaintPost::<C>::decode(&bytes, n, n).unwrap();
            if let ComplaintPost::Report(r) = &mut s.post {
                r.valid.retain(|d| *d == i as u32);
            }
            let resigned = SignedComplaintPost::sign(&keys[i - 5], s.post);
            return vec![Action::Post(resigned.encode())];
        }
        vec![a]
    })
}

/// False complaints must not decide who qualifies: with `t = 1, k = n = 7` the old reveal bound
/// `t - 1 - (n - k)` is 0, and two players that claim to hold no valid pair from any other dealer
/// used to get all five honest dealers disqualified (`TooManyComplaints { max: 0 }`) while they
/// themselves went free. A missed deal is now sent again encrypted on the board, which reveals
/// nothing and so has no bound: every dealer qualifies.
#[test]
fn false_complainers_beyond_the_reveal_bound_do_not_disqualify_honest_dealers() {
    let params = Params::new(7, 1, 7).unwrap();
    assert_eq!(params.max_reveals(), 0);
    let run = fresh_run::<Secp256k1>(params, &[], complain_about_everyone(7));
    let honest_nodes = [0, 1, 2, 3, 4];
    let outs = check_agreement(&run.results, &honest_nodes);
    for d in honest_nodes {
        assert!(outs[0].public.qualified.contains(&(d as u32)), "dealer {d}");
    }
    for e in &outs[0].exclusions {
        assert!(
            e.index == 5 || e.index == 6,
            "honest {:?} {} excluded for {:?}",
            e.role,
            e.index,
            e.fault
        );
    }
    let board = replay(&run, &outs[0]);
    for d in honest_nodes {
        assert_eq!(board.missed_deals(d as u32), &[5, 6]);
    }
    check_group_secret(&run.ceremony, &outs);
}

/// Captures the deals `dealer` sends to `player` (the first one).
type Captured = std::rc::Rc<std::cell::RefCell<Option<Vec<u8>>>>;

#[test]
fn verifiable_false_complaint_excludes_the_complainer() {
    // Player 5 complains about honest dealer 0's deal with the deal's own ciphertext and a valid
    // reveal: the board decrypts a pair that opens the commitment, so player 5 is out, with its
    // report as evidence, and dealer 0 stays.
    let params = Params::new(7, 5, 5).unwrap();
    let captured: Captured = Default::default();
    let sink = captured.clone();
    let id5 = member(5).identity.public().clone();
    let key5 = member(5).identity;
    let mut rng = ChaCha20Rng::seed_from_u64(51);
    let tamper = move |i: usize, a: Action<Secp256k1>| {
        if let Action::Send { to, payload } = &a
            && i == 0
            && *to == id5
        {
            *sink.borrow_mut() = Some(payload.clone());
        }
        if i == 5 && is_post_of(&a, |p| matches!(p, ComplaintPost::Report(_))) {
            let Action::Post(bytes) = a else {
                unreachable!()
            };
            let mut s = SignedComplaintPost::<Secp256k1>::decode(&bytes, 7, 7).unwrap();
            let deal = Deal::<Secp256k1>::decode(sink.borrow().as_ref().unwrap(), 7).unwrap();
            if let ComplaintPost::Report(r) = &mut s.post {
                r.valid.retain(|d| *d != 0);
                r.complaints = vec![complaint_of(&deal, &member(5), &mut rng)];
            }
            return vec![Action::Post(
                SignedComplaintPost::sign(&key5, s.post).encode(),
            )];
        }
        vec![a]
    };
    let run = fresh_run::<Secp256k1>(params, &[], Box::new(tamper));
    let outs = check_agreement(&run.results, &[0, 1, 2, 3, 4, 6]);
    assert_eq!(outs[0].public.qualified, vec![0, 1, 2, 3, 4, 6]);
    let e = exclusion(&outs[0], Role::Player, 5).unwrap();
    assert_eq!(e.fault, FaultKind::FalseComplaint { dealer: 0 });
    assert!(e.fault.is_misbehaviour());
    assert_eq!(verify_exclusion(&run.ceremony, e), Some(true));
    // The evidence does not convict dealer 0.
    let mut flipped = e.clone();
    flipped.role = Role::Dealer;
    flipped.index = 0;
    flipped.identity = run.ceremony.dealers()[0].identity.clone();
    flipped.fault = FaultKind::BadDeal { player: 5 };
    assert_eq!(verify_exclusion(&run.ceremony, &flipped), Some(false));
    assert!(exclusion(&outs[0], Role::Dealer, 0).is_none());
    check_group_secret(&run.ceremony, &outs);
    replay(&run, &outs[0]);
}

/// A complaint about `deal` by its recipient `keys`, with a valid reveal of its key.
fn complaint_of<C: Curve>(
    deal: &Deal<C>,
    keys: &MemberKeys,
    rng: &mut ChaCha20Rng,
) -> DealComplaint<C> {
    let hash = deal.statement().hash;
    let aad = pair_aad(&deal.session, deal.dealer, deal.player, &hash);
    let ct = VerifiableCiphertext::from_bytes(&deal.ciphertext, PAIR_LEN).unwrap();
    DealComplaint {
        dealer: deal.dealer,
        commitment: deal.commitment.clone(),
        ciphertext: deal.ciphertext.clone(),
        signature: deal.signature,
        reveal: Some(verifiable_encrypt::reveal_key(&keys.verifiable, &aad, &ct, rng).unwrap()),
    }
}

/// A board in the report phase of a ceremony of four on secp256k1, with dealer 0's signed
/// commitment and a way to make its deals to any player, with the right pair or a wrong one.
struct ReportPhase {
    ceremony: Arc<Ceremony<Secp256k1>>,
    board: ComplaintBoard<Secp256k1>,
    signed: SignedPedersen<Secp256k1>,
    f: Polynomial<<Secp256k1 as Curve>::Scalar>,
    blind: Polynomial<<Secp256k1 as Curve>::Scalar>,
    rng: ChaCha20Rng,
}

impl ReportPhase {
    fn new() -> Self {
        let members: Vec<MemberKeys> = (0..4).map(member).collect();
        let ceremony =
            Ceremony::new(config::<Secp256k1>(&members, Params::new(4, 3, 3).unwrap())).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(77);
        let f = Polynomial::random(2, None, &mut rng);
        let blind = Polynomial::random(2, None, &mut rng);
        let commitment = EvalCommitment::pedersen(&f, &blind, ceremony.player_indices());
        let signed = SignedPedersen::new(&member(0).identity, ceremony.id(), 0, commitment);
        let mut board = ComplaintBoard::new(ceremony.clone());
        board.advance();
        assert_eq!(board.phase(), ComplaintBoardPhase::Report);
        ReportPhase {
            ceremony,
            board,
            signed,
            f,
            blind,
            rng,
        }
    }

    fn deal(&mut self, player: u32, good: bool) -> Deal<Secp256k1> {
        let x = &self.ceremony.player_indices()[player as usize];
        let (s, b) = if good {
            (self.f.evaluate(x), self.blind.evaluate(x))
        } else {
            (
                self.f.evaluate(x) + <Secp256k1 as Curve>::Scalar::ONE,
                self.blind.evaluate(x),
            )
        };
        seal_deal(
            &member(0).identity,
            self.ceremony.id(),
            &self.signed,
            (player, self.ceremony.verifiable_key(player).unwrap()),
            &s,
            &b,
            &mut self.rng,
        )
    }

    /// `player`'s complaint about a bad deal whose ciphertext has its last byte changed: the
    /// dealer's signature no longer covers it.
    fn complaint_with_a_changed_ciphertext(&mut self, player: u32) -> DealComplaint<Secp256k1> {
        let deal = self.deal(player, false);
        let mut c = complaint_of(&deal, &member(player), &mut self.rng);
        let last = c.ciphertext.len() - 1;
        c.ciphertext[last] ^= 1;
        c
    }

    /// Player `player`'s signed report: heard dealer 0, with `complaint`.
    fn report(
        &self,
        player: u32,
        complaint: DealComplaint<Secp256k1>,
    ) -> SignedComplaintPost<Secp256k1> {
        SignedComplaintPost::sign(
            &member(player).identity,
            ComplaintPost::Report(Report {
                session: *self.ceremony.id(),
                player,
                heard: vec![HeardEntry {
                    dealer: 0,
                    hash: self.signed.hash,
                    signature: self.signed.signature,
                }],
                valid: vec![],
                complaints: vec![complaint],
                conflicting: None,
            }),
        )
    }
}

fn player_fault(index: u32, fault: FaultKind) -> Result<(), ComplaintBoardError> {
    Err(ComplaintBoardError::Fault {
        role: Role::Player,
        index,
        fault,
    })
}

#[test]
fn true_complaint_disqualifies_the_dealer_on_the_board() {
    let mut p = ReportPhase::new();
    let deal = p.deal(2, false);
    let c = complaint_of(&deal, &member(2), &mut p.rng);
    let post = p.report(2, c);
    assert_eq!(p.board.apply(&post), Ok(()));
    assert!(p.board.is_disqualified(0));
    // A second report by the same player is refused and changes nothing.
    let before = p.board.clone();
    assert_eq!(p.board.apply(&post), Err(ComplaintBoardError::Duplicate));
    assert!(p.board == before);
}

#[test]
fn complaint_about_a_valid_share_is_the_complainers_fault() {
    let mut p = ReportPhase::new();
    let deal = p.deal(2, true);
    let c = complaint_of(&deal, &member(2), &mut p.rng);
    assert_eq!(
        p.board.apply(&p.report(2, c)),
        player_fault(2, FaultKind::FalseComplaint { dealer: 0 })
    );
    assert!(!p.board.is_disqualified(0));
}

#[test]
fn a_complaint_about_a_dealer_already_disqualified_is_authenticated_but_not_judged() {
    // Player 1's true complaint convicts dealer 0. Player 2's share was valid, so its complaint
    // is false; but dealer 0 is out already, so it is not judged (the work a node and the
    // contract do stays one judgement per bad dealer however many players it cheated) and
    // player 2 keeps its report.
    let mut p = ReportPhase::new();
    let bad = p.deal(1, false);
    let c = complaint_of(&bad, &member(1), &mut p.rng);
    assert_eq!(p.board.apply(&p.report(1, c)), Ok(()));
    assert!(p.board.is_disqualified(0));
    let good = p.deal(2, true);
    let c = complaint_of(&good, &member(2), &mut p.rng);
    assert_eq!(p.board.apply(&p.report(2, c)), Ok(()));
    assert!(p.board.has_report(2));
    // Its form is still checked: a ciphertext the dealer did not sign is a bad report.
    let c = p.complaint_with_a_changed_ciphertext(3);
    assert_eq!(
        p.board.apply(&p.report(3, c)),
        player_fault(3, FaultKind::BadReport)
    );
    assert!(!p.board.has_report(3));
}

#[test]
fn complaint_with_a_bad_reveal_proof_is_the_complainers_fault() {
    // The deal really is bad, but the reveal is another ciphertext's: the complaint proves
    // nothing, and its author is excluded rather than the dealer.
    let mut p = ReportPhase::new();
    let deal = p.deal(2, false);
    let other = p.deal(2, false);
    let mut c = complaint_of(&deal, &member(2), &mut p.rng);
    c.reveal = complaint_of(&other, &member(2), &mut p.rng).reveal;
    assert_eq!(
        p.board.apply(&p.report(2, c)),
        player_fault(2, FaultKind::FalseComplaint { dealer: 0 })
    );
    assert!(!p.board.is_disqualified(0));
    // Without any reveal it proves nothing either.
    let mut p = ReportPhase::new();
    let deal = p.deal(2, false);
    let mut c = complaint_of(&deal, &member(2), &mut p.rng);
    c.reveal = None;
    assert_eq!(
        p.board.apply(&p.report(2, c)),
        player_fault(2, FaultKind::FalseComplaint { dealer: 0 })
    );
    assert!(!p.board.is_disqualified(0));
}

#[test]
fn complaint_with_a_ciphertext_the_dealer_did_not_sign_is_a_bad_report() {
    // Another player's ciphertext, and a ciphertext with one byte changed: the dealer's
    // signature does not cover them, so they cannot be held against the dealer.
    let mut p = ReportPhase::new();
    let to_3 = p.deal(3, false);
    let to_2 = p.deal(2, false);
    let mut c = complaint_of(&to_2, &member(2), &mut p.rng);
    c.ciphertext = to_3.ciphertext.clone();
    assert_eq!(
        p.board.apply(&p.report(2, c)),
        player_fault(2, FaultKind::BadReport)
    );
    let mut p = ReportPhase::new();
    let c = p.complaint_with_a_changed_ciphertext(2);
    assert_eq!(
        p.board.apply(&p.report(2, c)),
        player_fault(2, FaultKind::BadReport)
    );
    assert!(!p.board.is_disqualified(0));
    // A commitment other than the one heard.
    let mut p = ReportPhase::new();
    let to_2 = p.deal(2, false);
    let mut c = complaint_of(&to_2, &member(2), &mut p.rng);
    let g = Polynomial::random(2, None, &mut p.rng);
    c.commitment = EvalCommitment::pedersen(&g, &p.blind, p.ceremony.player_indices());
    assert_eq!(
        p.board.apply(&p.report(2, c)),
        player_fault(2, FaultKind::BadReport)
    );
}

#[test]
fn complaints_from_another_session_or_an_unknown_sender_are_refused() {
    let mut p = ReportPhase::new();
    let deal = p.deal(2, false);
    let c = complaint_of(&deal, &member(2), &mut p.rng);
    let before = p.board.clone();
    // Another session.
    let mut post = p.report(2, c.clone()).post;
    if let ComplaintPost::Report(r) = &mut post {
        r.session[0] ^= 1;
    }
    let foreign = SignedComplaintPost::sign(&member(2).identity, post);
    assert_eq!(
        p.board.apply(&foreign),
        Err(ComplaintBoardError::WrongSession)
    );
    // A player position outside the committee.
    let mut post = p.report(2, c.clone()).post;
    if let ComplaintPost::Report(r) = &mut post {
        r.player = 9;
    }
    let unknown = SignedComplaintPost::sign(&member(9).identity, post);
    assert_eq!(
        p.board.apply(&unknown),
        Err(ComplaintBoardError::UnknownAuthor(Role::Player, 9))
    );
    // Player 2's complaint signed by player 3.
    let mut spoofed = p.report(2, c);
    spoofed.signature =
        SignedComplaintPost::sign(&member(3).identity, spoofed.post.clone()).signature;
    assert_eq!(
        p.board.apply(&spoofed),
        Err(ComplaintBoardError::BadSignature)
    );
    assert!(p.board == before);
    assert!(!p.board.is_disqualified(0));
}

#[test]
fn complaint_in_the_wrong_phase_is_refused() {
    let mut p = ReportPhase::new();
    let deal = p.deal(2, false);
    let c = complaint_of(&deal, &member(2), &mut p.rng);
    let post = p.report(2, c);
    p.board.advance();
    assert!(matches!(
        p.board.apply(&post),
        Err(ComplaintBoardError::WrongPhase(_))
    ));
    assert!(!p.board.is_disqualified(0));
}

/// Corrupt players `n - c..n` (the last `c`, `c <= f`): each claims it missed every other
/// dealer's deal (`missers`) or complains about each with the deal's ciphertext and a valid
/// reveal (the others), and, when `bad_dealers` is set, sends the honest players wrong pairs.
fn corrupt_players<C: Curve>(
    ceremony: &Arc<Ceremony<C>>,
    c: usize,
    missers: usize,
    bad_dealers: bool,
) -> Tamper<'static, C> {
    let n = ceremony.n();
    let corrupt: Vec<usize> = (n - c..n).collect();
    let ids: Vec<_> = (0..n as u32)
        .map(|i| member(i).identity.public().clone())
        .collect();
    let ceremony = ceremony.clone();
    let mut received: std::collections::BTreeMap<(usize, u32), Deal<C>> = Default::default();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    Box::new(move |i: usize, a: Action<C>| {
        if !corrupt.contains(&i) {
            if let Action::Send { to, payload } = &a {
                let j = ids.iter().position(|x| x == to).unwrap();
                if corrupt.contains(&j) {
                    let d = Deal::<C>::decode(payload, n).unwrap();
                    received.insert((j, d.dealer), d);
                }
            }
            return vec![a];
        }
        match a {
            Action::Send { to, payload } if bad_dealers => {
                let j = ids.iter().position(|x| *x == to).unwrap();
                if corrupt.contains(&j) {
                    return vec![Action::Send { to, payload }];
                }
                let deal = Deal::<C>::decode(&payload, n).unwrap();
                let signed = SignedPedersen::new(
                    &member(i as u32).identity,
                    ceremony.id(),
                    deal.dealer,
                    deal.commitment,
                );
                let bad = seal_deal(
                    &member(i as u32).identity,
                    ceremony.id(),
                    &signed,
                    (j as u32, ceremony.verifiable_key(j as u32).unwrap()),
                    &C::Scalar::ONE,
                    &C::Scalar::ONE,
                    &mut rng,
                );
                vec![Action::Send {
                    to,
                    payload: bad.encode(),
                }]
            }
            Action::Post(bytes) => {
                let mut s = SignedComplaintPost::<C>::decode(&bytes, n, n).unwrap();
                let ComplaintPost::Report(r) = &mut s.post else {
                    return vec![Action::Post(bytes)];
                };
                let accused: Vec<u32> =
                    r.valid.iter().copied().filter(|d| *d != i as u32).collect();
                r.valid.retain(|d| *d == i as u32);
                if i - (n - c) >= missers {
                    r.complaints = accused
                        .iter()
                        .filter_map(|d| received.get(&(i, *d)))
                        .map(|deal| complaint_of(deal, &member(i as u32), &mut rng))
                        .collect();
                }
                vec![Action::Post(
                    SignedComplaintPost::sign(&member(i as u32).identity, s.post).encode(),
                )]
            }
            other => vec![other],
        }
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Across every `(n, t, k)` that `Params::new` accepts (n up to 7), with up to `f = n - k`
    /// corrupt players complaining falsely (by claiming lost deals, or with verifiable complaints
    /// about valid pairs) and possibly dealing wrong pairs to every honest player: every honest
    /// dealer qualifies, every corrupt dealer complained about is disqualified for it, and all
    /// honest players agree.
    #[test]
    fn false_complaints_never_decide_qualification(
        n in 1usize..=7,
        t_pick in 0usize..64,
        k_pick in 0usize..64,
        c_pick in 0usize..64,
        m_pick in 0usize..64,
        bad_dealers in proptest::prelude::any::<bool>(),
    ) {
        // k in (2n/3, n], t in [2(n - k) + 1, k]: exactly what Params::new accepts.
        let k_min = 2 * n / 3 + 1;
        let k = k_min + k_pick % (n - k_min + 1);
        let t_min = 2 * (n - k) + 1;
        let t = t_min + t_pick % (k - t_min + 1);
        let params = Params::new(n, t, k).unwrap();
        let f = n - k;
        let c = c_pick % (f + 1);
        let missers = m_pick % (c + 1);
        let members: Vec<MemberKeys> = (0..n as u32).map(member).collect();
        let ceremony = Ceremony::new(config::<Secp256k1>(&members, params)).unwrap();
        let run = fresh_run::<Secp256k1>(params, &[], corrupt_players(&ceremony, c, missers, bad_dealers));
        let honest: Vec<usize> = (0..n - c).collect();
        let outs = check_agreement(&run.results, &honest);
        for d in &honest {
            proptest::prop_assert!(outs[0].public.qualified.contains(&(*d as u32)), "dealer {}", d);
        }
        for e in &outs[0].exclusions {
            proptest::prop_assert!(e.index as usize >= n - c, "honest {:?} {} excluded: {:?}", e.role, e.index, e.fault);
            proptest::prop_assert_ne!(verify_exclusion(&run.ceremony, e), Some(false));
        }
        if bad_dealers && !honest.is_empty() {
            for d in n - c..n {
                let e = exclusion(&outs[0], Role::Dealer, d as u32);
                proptest::prop_assert!(
                    matches!(e.map(|e| &e.fault), Some(FaultKind::BadDeal { .. })),
                    "corrupt dealer {} not disqualified for a bad deal: {:?}", d, e
                );
                proptest::prop_assert!(!outs[0].public.qualified.contains(&(d as u32)));
            }
        }
        check_group_secret(&run.ceremony, &outs);
    }
}

/// Replays a run's board and, wherever [`ComplaintBoard::all_posts_in`] holds, checks that the
/// posts that came later in the same phase change nothing, so that closing the phase there
/// gives the outcome of waiting for its deadline. Returns the phases, in order, that would have
/// closed early, and how many posts came after such a close.
fn phases_closing_early<C: Curve>(run: &Run<C>) -> (Vec<ComplaintBoardPhase>, usize) {
    let mut board = ComplaintBoard::new(run.ceremony.clone());
    let mut closed: Option<ComplaintBoard<C>> = None;
    let mut phases = Vec::new();
    let mut after_close = 0;
    for e in &run.events {
        feed(&mut board, e);
        match e {
            BoardEvent::Post(_) => {
                if let Some(at_close) = &closed {
                    after_close += 1;
                    assert!(
                        board == *at_close,
                        "a post after the last expected one of {:?} changed the board",
                        board.phase()
                    );
                }
            }
            BoardEvent::Deadline => closed = None,
        }
        if closed.is_none() && board.all_posts_in() {
            phases.push(board.phase());
            closed = Some(board.clone());
        }
    }
    (phases, after_close)
}

#[test]
fn phases_whose_expected_posts_are_all_in_could_close_with_the_same_outcome() {
    use ComplaintBoardPhase::{Complain, Deal, Feldman, Justify, Reconstruct, Report};
    let params = || Params::new(7, 5, 5).unwrap();
    let run = fresh_run::<Bls12381G1>(params(), &[], honest());
    // Every player verifies every deal and reports in the deal phase, which closes with the
    // last report; the report phase then has all its posts at once. Every qualified player
    // posts a complaint, empty as it has none: no phase waits for its deadline.
    assert_eq!(
        phases_closing_early(&run),
        (vec![Deal, Report, Feldman, Complain], 0)
    );
    // Every member posts everything twice, each copy right after its original: the copy of
    // each early-closing phase's last post comes after the close, and changes nothing.
    let twice = |_: usize, a: Action<Bls12381G1>| {
        if matches!(a, Action::Post(_)) {
            vec![a.clone(), a]
        } else {
            vec![a]
        }
    };
    let run = fresh_run::<Bls12381G1>(params(), &[], Box::new(twice));
    assert_eq!(
        phases_closing_early(&run),
        (vec![Deal, Report, Feldman, Complain], 3)
    );
    // A silent member owes a report and a justification, and nobody holds its deal to report
    // early: only the Feldman and complain phases close early.
    let run = fresh_run::<Secp256k1>(params(), &[3], honest());
    assert_eq!(phases_closing_early(&run).0, vec![Feldman, Complain]);
    // Two players claim to have missed every deal: every dealer owes a justification and
    // posts it, then the dispute phase (which nobody needs to post in) runs to its deadline.
    let run = fresh_run::<Secp256k1>(params(), &[], complain_about_everyone(7));
    assert_eq!(
        phases_closing_early(&run).0,
        vec![Deal, Report, Justify, Feldman, Complain]
    );
    // A qualified dealer withholds its Feldman values: every qualified player posts its pair.
    let (run, _) = reconstruction_run();
    assert_eq!(
        phases_closing_early(&run).0,
        vec![Deal, Report, Complain, Reconstruct]
    );
}

/// Reconstruction posts come from the qualified players, the set the reconstruct phase waits
/// for: one from a player outside it is refused and changes nothing, so it cannot come after
/// the phase closed early and count where it would have counted before the deadline.
#[test]
fn a_reconstruction_post_from_a_player_outside_the_qualified_set_is_refused() {
    // Member 3 is silent (outside the qualified set); dealer 2 withholds its Feldman values.
    let tamper = |i: usize, a: Action<Bls12381G1>| {
        if i == 2 && is_post_of(&a, |p| matches!(p, ComplaintPost::Feldman(_))) {
            vec![]
        } else {
            vec![a]
        }
    };
    let run = fresh_run::<Bls12381G1>(Params::new(7, 5, 5).unwrap(), &[3], Box::new(tamper));
    let mut board = ComplaintBoard::new(run.ceremony.clone());
    for e in &run.events {
        feed(&mut board, e);
        if board.phase() == ComplaintBoardPhase::Reconstruct {
            break;
        }
    }
    assert_eq!(board.phase(), ComplaintBoardPhase::Reconstruct);
    assert_eq!(
        board.qualification().unwrap().players,
        vec![0, 1, 2, 4, 5, 6]
    );
    let post = |player: u32| {
        SignedComplaintPost::sign(
            &member(player).identity,
            ComplaintPost::<Bls12381G1>::Reconstruction(Disclosure {
                session: *run.ceremony.id(),
                player,
                shares: vec![(2, <Bls12381G1 as Curve>::Scalar::ONE, Field::ZERO)],
                commitments: vec![],
            }),
        )
    };
    let before = board.clone();
    assert_eq!(
        board.apply(&post(3)),
        Err(ComplaintBoardError::Excluded(Role::Player, 3))
    );
    assert!(board == before);
    // A qualified player's post is taken (its pair is judged at the deadline).
    assert_eq!(board.apply(&post(4)), Ok(()));
}

/// Complaints come from the qualified players, every one of them (empty when it has none): the
/// set the complain phase waits for. One from a player outside it is refused and changes
/// nothing; an empty one from a qualified player is taken and decides nothing.
#[test]
fn complaints_come_from_qualified_players_and_an_empty_one_decides_nothing() {
    // Member 3 is silent, so outside the qualified set.
    let run = fresh_run::<Bls12381G1>(Params::new(7, 5, 5).unwrap(), &[3], honest());
    let mut board = ComplaintBoard::new(run.ceremony.clone());
    for e in &run.events {
        feed(&mut board, e);
        if board.phase() == ComplaintBoardPhase::Complain {
            break;
        }
    }
    assert_eq!(board.phase(), ComplaintBoardPhase::Complain);
    assert_eq!(
        board.qualification().unwrap().players,
        vec![0, 1, 2, 4, 5, 6]
    );
    let empty = |player: u32| {
        SignedComplaintPost::sign(
            &member(player).identity,
            ComplaintPost::<Bls12381G1>::Complaint(Disclosure {
                session: *run.ceremony.id(),
                player,
                shares: vec![],
                commitments: vec![],
            }),
        )
    };
    let before = board.clone();
    assert_eq!(
        board.apply(&empty(3)),
        Err(ComplaintBoardError::Excluded(Role::Player, 3))
    );
    assert!(board == before);
    for p in [0, 1, 2, 4, 5] {
        assert_eq!(board.apply(&empty(p)), Ok(()));
        assert!(!board.all_posts_in(), "player 6 has not posted");
    }
    assert_eq!(board.apply(&empty(6)), Ok(()));
    assert!(board.all_posts_in());
    board.advance();
    let Some(Outcome::Success { output, exclusions }) = board.outcome() else {
        panic!("board failed")
    };
    assert_eq!(output.qualified, vec![0, 1, 2, 4, 5, 6]);
    // Only the silent member is named, as without any complaint.
    assert!(exclusions.iter().all(|e| e.index == 3), "{exclusions:?}");
}
