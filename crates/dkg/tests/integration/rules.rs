//! Board rules on blame, naming and parameter edge cases: who is penalised for a missing ack,
//! the reshare quorum and fault bound, and the checks before an outcome is declared.

use std::collections::BTreeSet;
use std::sync::Arc;

use ff::Field;
use group::prime::PrimeCurveAffine;
use keyquorum_crypto::commit::{EvalCommitment, mul_generator};
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::{Bls12381G1, Curve};
use keyquorum_dkg::ackreveal::AckRevealParticipant;
use keyquorum_dkg::board::{
    Board, BoardError, BoardPhase, Evidence, FailureReason, FaultKind, Outcome, Penalty, Role,
};
use keyquorum_dkg::ceremony::CHECK_CACHE_CAPACITY;
use keyquorum_dkg::complaint::ComplaintParticipant;
use keyquorum_dkg::identity::{self, Purpose};
use keyquorum_dkg::messages::{Contribution, Direct, Post, Publication, SignedPost, ack_payload};
use keyquorum_dkg::participant::{Action, Participant};
use keyquorum_dkg::testing::ceremony::*;
use keyquorum_dkg::{Ceremony, Params, Reshare, Variant};
use rand_core::SeedableRng;

type C = Bls12381G1;
type Scalar = <C as Curve>::Scalar;

/// A hand-built board: dealers' polynomials are known, so any publication can be made.
struct Transcript {
    ceremony: Arc<Ceremony<C>>,
    dealers: Vec<MemberKeys>,
    players: Vec<MemberKeys>,
    polys: Vec<Polynomial<Scalar>>,
    hashes: Vec<[u8; 32]>,
    board: Board<C>,
}

impl Transcript {
    /// Posts every dealer's commitment to its polynomial and moves to the publish phase.
    fn new(
        ceremony: Arc<Ceremony<C>>,
        dealers: Vec<MemberKeys>,
        players: Vec<MemberKeys>,
        polys: Vec<Polynomial<Scalar>>,
    ) -> Self {
        let mut board = Board::new(ceremony.clone());
        let mut hashes = Vec::new();
        for (d, f) in polys.iter().enumerate() {
            let post = Post::Contribution(Contribution {
                session: *ceremony.id(),
                dealer: d as u32,
                commitment: EvalCommitment::feldman(f, ceremony.player_indices()),
            });
            let Post::Contribution(c) = &post else {
                unreachable!()
            };
            hashes.push(c.commitment_hash());
            let signature = dealers[d]
                .identity
                .sign(Purpose::Post, &post.signed_payload());
            board.apply(&SignedPost { post, signature }).unwrap();
        }
        board.advance();
        board.advance();
        assert_eq!(board.phase(), BoardPhase::Publish);
        Transcript {
            ceremony,
            dealers,
            players,
            polys,
            hashes,
            board,
        }
    }

    /// Dealer `d`'s signed publication with acks from `acks` and reveals for `reveals`.
    fn publication(&self, d: usize, acks: &[u32], reveals: &[u32]) -> SignedPost<C> {
        let payload = ack_payload(self.ceremony.id(), d as u32, &self.hashes[d]);
        let sigs: Vec<_> = acks
            .iter()
            .map(|j| {
                self.players[*j as usize]
                    .identity
                    .sign(Purpose::Ack, &payload)
            })
            .collect();
        let post = Post::Publication(Publication {
            session: *self.ceremony.id(),
            attempt: self.board.attempt(),
            dealer: d as u32,
            commitment_hash: self.hashes[d],
            acks: acks.to_vec(),
            ack_signature: identity::aggregate(&sigs),
            reveals: reveals
                .iter()
                .map(|j| {
                    let x = self.ceremony.player_indices()[*j as usize];
                    (*j, self.polys[d].evaluate(&x))
                })
                .collect(),
        });
        let signature = self.dealers[d]
            .identity
            .sign(Purpose::Post, &post.signed_payload());
        SignedPost { post, signature }
    }

    fn publish(&mut self, d: usize, acks: &[u32], reveals: &[u32]) {
        let p = self.publication(d, acks, reveals);
        self.board.apply(&p).unwrap();
    }
}

fn rng(seed: u64) -> rand_chacha::ChaCha20Rng {
    rand_chacha::ChaCha20Rng::seed_from_u64(seed)
}

fn fresh_ceremony(n: usize, t: usize, k: usize) -> (Arc<Ceremony<C>>, Vec<MemberKeys>) {
    let members: Vec<MemberKeys> = (0..n as u32).map(member).collect();
    let ceremony = Ceremony::new(fresh_config::<C>(&members, Params::new(n, t, k).unwrap()));
    (ceremony.unwrap(), members)
}

fn random_polys(count: usize, t: usize, seed: u64) -> Vec<Polynomial<Scalar>> {
    let mut r = rng(seed);
    (0..count)
        .map(|_| Polynomial::random(t - 1, None, &mut r))
        .collect()
}

fn all(n: usize) -> Vec<u32> {
    (0..n as u32).collect()
}

fn named_players(board: &Board<C>) -> BTreeSet<u32> {
    board
        .named()
        .iter()
        .inspect(|e| {
            assert_eq!(e.role, Role::Player);
            assert!(matches!(e.fault, FaultKind::WithheldAck { .. }));
            assert_eq!(e.fault.penalty(), Penalty::None);
        })
        .map(|e| e.index)
        .collect()
}

/// The case with real participants: n = 7, t = k = 5 (at most 2 reveals). Players 1
/// and 2 never ack dealer 0 and player 3's ack to it is lost. Dealer 0 cannot cover three
/// players, so it is excluded from the attempt, without a penalty, and the three players are
/// named with its publication as evidence. Everyone else qualifies.
#[test]
fn withheld_acks_exclude_a_dealer_without_penalty_and_name_the_players() {
    let (ceremony, members) = fresh_ceremony(7, 5, 5);
    let ids: Vec<_> = members
        .iter()
        .map(|m| m.identity.public().clone())
        .collect();
    let nodes: Vec<Box<dyn Participant<C>>> = members
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let mut seed = [3u8; 32];
            seed[0] = i as u8;
            Box::new(
                AckRevealParticipant::new(ceremony.clone(), m.identity, m.encryption, None, seed)
                    .unwrap(),
            ) as Box<dyn Participant<C>>
        })
        .collect();
    let mut tamper = |from: usize, a: Action<C>| match &a {
        Action::Send { to, payload }
            if (1..=3).contains(&from)
                && *to == ids[0]
                && matches!(Direct::decode(payload), Ok(Direct::Ack(_))) =>
        {
            Vec::new()
        }
        _ => vec![a],
    };
    let (results, events) = run_nodes(nodes, &[], &mut tamper);
    for (i, r) in results.iter().enumerate() {
        assert!(matches!(r, RunResult::Ok(_)), "node {i} did not succeed");
    }

    // Replay the board as the contract does.
    let mut board = Board::new(ceremony.clone());
    for e in &events {
        match e {
            BoardEvent::Post(p) => {
                let _ = board.apply(&SignedPost::decode(p, 7).unwrap());
            }
            BoardEvent::Deadline => board.advance(),
        }
    }
    let Some(Outcome::Success { output, exclusions }) = board.outcome() else {
        panic!("{:?}", board.outcome())
    };
    assert_eq!(output.qualified, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(exclusions.len(), 1);
    let e = &exclusions[0];
    assert_eq!((e.role, e.index), (Role::Dealer, 0));
    assert_eq!(e.fault, FaultKind::IncompletePublication { missing: 3 });
    assert_eq!(e.fault.penalty(), Penalty::None);
    assert!(!e.fault.is_misbehaviour());

    assert_eq!(named_players(&board), BTreeSet::from([1, 2, 3]));
    let p0 = board.publication(0).unwrap().clone();
    for n in board.named() {
        assert_eq!(
            n.fault,
            FaultKind::WithheldAck {
                reports: 1,
                revealed: 0
            }
        );
        let Evidence::Reports(posts) = &n.evidence else {
            panic!("{:?}", n.evidence)
        };
        let signed = SignedPost::<C>::decode(&posts[0], 7).unwrap();
        assert_eq!(signed.post, Post::Publication(p0.clone()));
        assert!(!p0.acks.contains(&n.index));
    }
}

/// A player whose share a qualified dealer revealed is named with that reveal counted, on the
/// success path, and not excluded.
#[test]
fn revealed_players_are_named_on_success() {
    let (ceremony, members) = fresh_ceremony(7, 5, 5);
    let polys = random_polys(7, 5, 1);
    let mut tr = Transcript::new(ceremony, members, (0..7).map(member).collect(), polys);
    tr.publish(0, &[0, 1, 2, 3, 4], &[5, 6]);
    for d in 1..7 {
        tr.publish(d, &all(7)[..6], &[6]);
    }
    tr.board.advance();
    assert!(matches!(
        tr.board.outcome(),
        Some(Outcome::Success { exclusions, .. }) if exclusions.is_empty()
    ));
    assert_eq!(named_players(&tr.board), BTreeSet::from([5, 6]));
    let six = tr.board.named().iter().find(|e| e.index == 6).unwrap();
    assert_eq!(
        six.fault,
        FaultKind::WithheldAck {
            reports: 7,
            revealed: 7
        }
    );
    assert_eq!(tr.board.active_players(), all(7));
}

/// A publication that names a player twice (acked and revealed) is the dealer's fault, and a
/// refused one leaves the way open for nobody else: the dealer is disqualified.
#[test]
fn a_player_named_twice_is_a_bad_publication() {
    let (ceremony, members) = fresh_ceremony(7, 5, 5);
    let polys = random_polys(7, 5, 2);
    let mut tr = Transcript::new(ceremony, members, (0..7).map(member).collect(), polys);
    let twice = tr.publication(0, &[0, 1, 2, 3, 4], &[4, 5, 6]);
    assert_eq!(
        tr.board.apply(&twice),
        Err(BoardError::Fault {
            dealer: 0,
            fault: FaultKind::PublicationBadPlayers
        })
    );
    assert!(
        tr.board
            .faults()
            .any(|(d, f)| d == 0 && *f == FaultKind::PublicationBadPlayers)
    );
    // Each player once, acked or revealed, is accepted.
    let once = tr.publication(1, &[0, 1, 2, 3, 4], &[5, 6]);
    assert_eq!(tr.board.apply(&once), Ok(()));
}

/// Once every player is excluded, the dealers' empty publications cover everyone active; the
/// board must not call that a success.
#[test]
fn no_success_with_fewer_than_t_active_players() {
    let (ceremony, members) = fresh_ceremony(4, 3, 3);
    let polys = random_polys(4, 3, 2);
    let mut tr = Transcript::new(ceremony, members, (0..4).map(member).collect(), polys);
    for d in 0..4 {
        tr.publish(d, &[], &[]);
    }
    tr.board.advance();
    assert!(matches!(
        tr.board.outcome(),
        Some(Outcome::Failure { retrying: true, .. })
    ));
    assert!(tr.board.active_players().is_empty());
    for d in 0..4 {
        tr.publish(d, &[], &[]);
    }
    tr.board.advance();
    assert_eq!(tr.board.phase(), BoardPhase::Done);
    assert!(
        matches!(
            tr.board.outcome(),
            Some(Outcome::Failure {
                retrying: false,
                ..
            })
        ),
        "{:?}",
        tr.board.outcome()
    );
    assert_eq!(
        tr.board.failure_reason(),
        Some(FailureReason::TooFewPlayers { active: 0, t: 3 })
    );
}

/// Constant terms that cancel give the identity as group key: refused.
#[test]
fn no_success_with_the_identity_as_group_key() {
    let (ceremony, members) = fresh_ceremony(4, 3, 3);
    let mut polys = random_polys(4, 3, 3);
    let others: Scalar = polys[1..].iter().map(|p| p.constant()).sum();
    let mut coeffs = polys[0].coefficients().to_vec();
    coeffs[0] = -others;
    polys[0] = Polynomial::from_coefficients(coeffs);
    let mut tr = Transcript::new(ceremony, members, (0..4).map(member).collect(), polys);
    for d in 0..4 {
        tr.publish(d, &all(4), &[]);
    }
    tr.board.advance();
    assert_eq!(tr.board.phase(), BoardPhase::Done);
    assert!(
        matches!(tr.board.outcome(), Some(Outcome::Failure { .. })),
        "{:?}",
        tr.board.outcome()
    );
    assert_eq!(tr.board.failure_reason(), Some(FailureReason::IdentityKey));
}

/// Old shares `s_i = F(x_i)` of an old secret and the matching reshare configuration.
struct OldKey {
    shares: Vec<Scalar>,
    reshare: Reshare<C>,
}

fn old_key(old: &[MemberKeys], t_old: usize, seed: u64) -> OldKey {
    old_key_with(old, t_old, seed, None)
}

/// [`old_key`] with the old secret given.
fn old_key_with(old: &[MemberKeys], t_old: usize, seed: u64, secret: Option<Scalar>) -> OldKey {
    let old_params = Params::new(old.len(), t_old, t_old).unwrap();
    let old_ceremony = Ceremony::new(fresh_config::<C>(old, old_params)).unwrap();
    let f = Polynomial::random(t_old - 1, secret, &mut rng(seed));
    let xs = old_ceremony.player_indices().to_vec();
    let shares: Vec<Scalar> = xs.iter().map(|x| f.evaluate(x)).collect();
    let to_affine = |s: &Scalar| <C as Curve>::batch_normalize(&[mul_generator::<C>(s)])[0];
    OldKey {
        reshare: Reshare {
            dealers: old.iter().map(participant).collect(),
            dealer_indices: xs,
            old_threshold: t_old,
            group_key: to_affine(&f.constant()),
            public_shares: shares.iter().map(to_affine).collect(),
        },
        shares,
    }
}

fn reshare_transcript(
    old: Vec<MemberKeys>,
    new: Vec<MemberKeys>,
    params: Params,
    key: &OldKey,
    group_key: <C as Curve>::Affine,
) -> Transcript {
    let mut cfg = fresh_config::<C>(&new, params);
    cfg.epoch = 2;
    let mut reshare = key.reshare.clone();
    reshare.group_key = group_key;
    cfg.reshare = Some(reshare);
    let ceremony = Ceremony::new(cfg).unwrap();
    let mut r = rng(11);
    let polys = key
        .shares
        .iter()
        .map(|s| Polynomial::random(params.t() - 1, Some(*s), &mut r))
        .collect();
    Transcript::new(ceremony, old, new, polys)
}

/// Resharing from 7 old members (t_old = 5, so at most 2 of them can be corrupt) to 4 new ones
/// (t = k = 3, f = 1). Two old dealers' publications leave players 0 and 1 out. Two old dealers
/// may lie, so two reports do not prove that a player failed an honest dealer: they are named,
/// not excluded, although they exceed the new committee's bound f = 1.
#[test]
fn reshare_reports_count_against_the_old_dealers_fault_bound() {
    let old: Vec<MemberKeys> = (0..7).map(member).collect();
    let key = old_key(&old, 5, 4);
    let new: Vec<MemberKeys> = (10..14).map(member).collect();
    let group_key = key.reshare.group_key;
    let mut tr = reshare_transcript(old, new, Params::new(4, 3, 3).unwrap(), &key, group_key);
    assert_eq!(tr.ceremony.dealer_fault_bound(), 2);
    for d in 0..4 {
        tr.publish(d, &all(4), &[]);
    }
    // Dealer 4 does not publish; dealers 5 and 6 leave players 0 and 1 uncovered.
    for d in 5..7 {
        tr.publish(d, &[2, 3], &[]);
    }
    tr.board.advance();
    let Some(Outcome::Failure {
        exclusions,
        retrying,
        ..
    }) = tr.board.outcome()
    else {
        panic!("{:?}", tr.board.outcome())
    };
    assert!(retrying, "dealer 4's absence is progress");
    assert!(
        exclusions.iter().all(|e| e.role == Role::Dealer),
        "{exclusions:?}"
    );
    assert_eq!(tr.board.active_players(), all(4));
    assert_eq!(named_players(&tr.board), BTreeSet::from([0, 1]));
}

/// The ack-or-reveal board checks that a reshare keeps the group key, as the complaint board
/// does: old public key shares inconsistent with the claimed old key give no success.
#[test]
fn reshare_must_keep_the_group_key() {
    let old: Vec<MemberKeys> = (0..4).map(member).collect();
    let key = old_key(&old, 3, 5);
    let new: Vec<MemberKeys> = (0..4).map(member).collect();
    let wrong = <C as Curve>::batch_normalize(&[mul_generator::<C>(&Scalar::from(7u64))])[0];
    let mut tr = reshare_transcript(old, new, Params::new(4, 3, 3).unwrap(), &key, wrong);
    for d in 0..4 {
        tr.publish(d, &all(4), &[]);
    }
    tr.board.advance();
    assert!(
        matches!(tr.board.outcome(), Some(Outcome::Failure { .. })),
        "{:?}",
        tr.board.outcome()
    );
    assert_eq!(tr.board.failure_reason(), Some(FailureReason::KeyChanged));

    // With the right key the same transcript succeeds and keeps it.
    let old: Vec<MemberKeys> = (0..4).map(member).collect();
    let new: Vec<MemberKeys> = (0..4).map(member).collect();
    let right = key.reshare.group_key;
    let mut tr = reshare_transcript(old, new, Params::new(4, 3, 3).unwrap(), &key, right);
    for d in 0..4 {
        tr.publish(d, &all(4), &[]);
    }
    tr.board.advance();
    let Some(Outcome::Success { output, .. }) = tr.board.outcome() else {
        panic!("{:?}", tr.board.outcome())
    };
    assert_eq!(output.group_key, right);
    assert!(!bool::from(output.group_key.is_identity()));
}

/// Resharing to a larger committee: 4 old members (t_old = 3, one may fail) to 7 new ones
/// (t = k = 5). The quorum of old dealers is t_old = 3, so one silent old member (also silent
/// as a new player) does not fail the session, and the key is kept.
#[test]
fn reshare_to_a_larger_committee_survives_a_silent_old_member() {
    let n_old = 4;
    let old: Vec<MemberKeys> = (0..n_old as u32).map(member).collect();
    let c1 = Ceremony::new(fresh_config::<C>(&old, Params::new(n_old, 3, 3).unwrap())).unwrap();
    let r1 = run(c1.clone(), old, vec![None; n_old], &[]);
    let outs: Vec<_> = r1
        .iter()
        .map(|r| match r {
            RunResult::Ok(o) => o.clone(),
            _ => panic!("fresh ceremony failed"),
        })
        .collect();
    let old: Vec<MemberKeys> = (0..n_old as u32).map(member).collect();
    let new: Vec<MemberKeys> = (0..7u32).map(member).collect();
    let mut cfg = fresh_config::<C>(&new, Params::new(7, 5, 5).unwrap());
    cfg.epoch = 2;
    cfg.reshare = Some(reshare_of(&old, &c1, &outs[0]));
    let c2 = Ceremony::new(cfg).unwrap();
    assert_eq!(c2.dealer_quorum(), 3);
    let old_shares = (0..7)
        .map(|i| outs.get(i).and_then(|o| o.secret_share.clone()))
        .collect();
    let silent = 3;
    let r2 = run(c2.clone(), new, old_shares, &[silent]);
    for (i, r) in r2.iter().enumerate() {
        if i == silent {
            continue;
        }
        let RunResult::Ok(o) = r else {
            panic!("node {i} did not succeed")
        };
        assert_eq!(o.public.group_key, outs[0].public.group_key);
        assert_eq!(o.public.qualified, vec![0, 1, 2]);
        let share = o.secret_share.as_ref().unwrap();
        assert!(keyquorum_dkg::board::share_matches::<C>(
            share.expose(),
            &o.public.public_shares[o.player_index.unwrap() as usize]
        ));
    }
}

/// The memo of checks stays bounded under a flood of distinct inputs, and keeps what was
/// checked recently.
#[test]
fn check_cache_is_bounded() {
    let (ceremony, _) = fresh_ceremony(4, 3, 3);
    let key = |i: u64| {
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&i.to_be_bytes());
        k
    };
    let total = 3 * CHECK_CACHE_CAPACITY as u64 + 17;
    for i in 0..total {
        assert_eq!(ceremony.check_once(key(i), || i % 3 == 0), i % 3 == 0);
        assert!(ceremony.cached_checks() <= CHECK_CACHE_CAPACITY);
    }
    assert!(ceremony.cached_checks() >= CHECK_CACHE_CAPACITY / 2);
    // The latest results are remembered: the check is not run again.
    for i in total - 100..total {
        assert_eq!(
            ceremony.check_once(key(i), || panic!("recomputed {i}")),
            i % 3 == 0
        );
    }
    // Old ones were forgotten and are computed again, correctly.
    let mut ran = false;
    assert!(ceremony.check_once(key(0), || {
        ran = true;
        true
    }));
    assert!(ran);
}

/// `forget_checks` (for benchmarks) empties the memo: a remembered check runs again.
#[test]
fn forgotten_checks_run_again() {
    let (ceremony, _) = fresh_ceremony(4, 3, 3);
    assert!(ceremony.check_once([1; 32], || true));
    assert!(ceremony.check_once([1; 32], || panic!("remembered")));
    ceremony.forget_checks();
    assert_eq!(ceremony.cached_checks(), 0);
    assert!(!ceremony.check_once([1; 32], || false));
}

/// Resharing a previous key that is the identity (old secret zero, old public key shares
/// consistent with it) keeps the key, so only the identity check can refuse it. Both variants'
/// boards do: every participant fails instead of finishing with a key that signs nothing.
#[test]
fn reshare_of_an_identity_key_is_refused_by_both_boards() {
    for variant in [Variant::AckReveal, Variant::Complaint] {
        let old: Vec<MemberKeys> = (0..4).map(member).collect();
        let key = old_key_with(&old, 3, 8, Some(Scalar::ZERO));
        assert!(bool::from(key.reshare.group_key.is_identity()));
        let new: Vec<MemberKeys> = (0..4).map(member).collect();
        let mut cfg = fresh_config::<C>(&new, Params::new(4, 3, 3).unwrap());
        cfg.epoch = 2;
        if variant == Variant::Complaint {
            cfg = complaint_variant(cfg, &new);
        }
        cfg.reshare = Some(key.reshare.clone());
        let ceremony = Ceremony::new(cfg).unwrap();
        let nodes: Vec<Box<dyn Participant<C>>> = new
            .into_iter()
            .zip(&key.shares)
            .enumerate()
            .map(|(i, (m, s))| {
                let mut seed = [5u8; 32];
                seed[0] = i as u8;
                let old = Some(Secret::new(*s));
                match variant {
                    Variant::AckReveal => Box::new(
                        AckRevealParticipant::new(
                            ceremony.clone(),
                            m.identity,
                            m.encryption,
                            old,
                            seed,
                        )
                        .unwrap(),
                    ) as Box<dyn Participant<C>>,
                    Variant::Complaint => Box::new(
                        ComplaintParticipant::new(
                            ceremony.clone(),
                            m.identity,
                            m.verifiable,
                            old,
                            seed,
                        )
                        .unwrap(),
                    ),
                }
            })
            .collect();
        let (results, events) = run_nodes(nodes, &[], &mut |_, a| vec![a]);
        for (i, r) in results.iter().enumerate() {
            assert!(
                matches!(r, RunResult::Failed(_)),
                "{variant:?}: node {i} did not fail"
            );
        }
        if variant == Variant::AckReveal {
            let mut board = Board::new(ceremony.clone());
            for e in &events {
                match e {
                    BoardEvent::Post(p) => {
                        let _ = board.apply(&SignedPost::decode(p, 4).unwrap());
                    }
                    BoardEvent::Deadline => board.advance(),
                }
            }
            assert_eq!(board.failure_reason(), Some(FailureReason::IdentityKey));
        }
    }
}
