//! Board rules that need a hand-built transcript: commitments whose flaws only show in the sum.

use group::Curve as _;
use group::prime::PrimeCurveAffine;
use keyquorum_crypto::commit::EvalCommitment;
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::{Bls12381G1, Curve};
use keyquorum_dkg::board::{Board, BoardPhase, FaultKind, Outcome};
use keyquorum_dkg::identity::{self, Purpose};
use keyquorum_dkg::messages::{Contribution, Post, Publication, SignedPost, ack_payload};
use keyquorum_dkg::testing::ceremony::*;
use keyquorum_dkg::{Ceremony, Params};
use rand_core::SeedableRng;

type C = Bls12381G1;

/// Runs a board where every player acks every dealer, with dealer 0's commitment replaced.
fn outcome_with_dealer0(
    commitment0: impl Fn(&Ceremony<C>, EvalCommitment<C>) -> EvalCommitment<C>,
) -> Outcome<C> {
    outcome_with(|d, ceremony, e| if d == 0 { commitment0(ceremony, e) } else { e })
}

/// Runs a board where every player acks every dealer, with each dealer's commitment passed
/// through `commitment`.
fn outcome_with(
    commitment: impl Fn(usize, &Ceremony<C>, EvalCommitment<C>) -> EvalCommitment<C>,
) -> Outcome<C> {
    let n = 5;
    let members: Vec<MemberKeys> = (0..n as u32).map(member).collect();
    let ceremony =
        Ceremony::new(fresh_config::<C>(&members, Params::new(n, 3, 4).unwrap())).unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
    let mut board = Board::new(ceremony.clone());
    let mut hashes = Vec::new();
    for (d, m) in members.iter().enumerate() {
        let f = Polynomial::random(ceremony.t() - 1, None, &mut rng);
        let e = commitment(
            d,
            &ceremony,
            EvalCommitment::feldman(&f, ceremony.player_indices()),
        );
        let post = Post::Contribution(Contribution {
            session: *ceremony.id(),
            dealer: d as u32,
            commitment: e,
        });
        let Post::Contribution(c) = &post else {
            unreachable!()
        };
        hashes.push(c.commitment_hash());
        let signature = m.identity.sign(Purpose::Post, &post.signed_payload());
        board.apply(&SignedPost { post, signature }).unwrap();
    }
    board.advance();
    board.advance();
    assert_eq!(board.phase(), BoardPhase::Publish);
    for (d, m) in members.iter().enumerate() {
        let payload = ack_payload(ceremony.id(), d as u32, &hashes[d]);
        let sigs: Vec<_> = members
            .iter()
            .map(|p| p.identity.sign(Purpose::Ack, &payload))
            .collect();
        let post = Post::Publication(Publication {
            session: *ceremony.id(),
            attempt: 0,
            dealer: d as u32,
            commitment_hash: hashes[d],
            acks: (0..n as u32).collect(),
            ack_signature: identity::aggregate(&sigs),
            reveals: Vec::new(),
        });
        let signature = m.identity.sign(Purpose::Post, &post.signed_payload());
        board.apply(&SignedPost { post, signature }).unwrap();
    }
    board.advance();
    assert_eq!(board.phase(), BoardPhase::Done);
    board.outcome().unwrap().clone()
}

fn expect_dealer0_excluded(outcome: Outcome<C>, fault: FaultKind) {
    match outcome {
        Outcome::Success { output, exclusions } => {
            assert_eq!(output.qualified, vec![1, 2, 3, 4]);
            let e = exclusions
                .iter()
                .find(|e| e.index == 0)
                .expect("dealer 0 excluded");
            assert_eq!(e.fault, fault);
            assert!(e.fault.is_misbehaviour());
        }
        Outcome::Failure { .. } => panic!("four honest dealers reach k = 4"),
    }
}

#[test]
fn too_high_degree_is_caught_in_the_sum() {
    let outcome = outcome_with_dealer0(|ceremony, _| {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let g = Polynomial::random(ceremony.t(), None, &mut rng); // degree t, one too many
        EvalCommitment::feldman(&g, ceremony.player_indices())
    });
    expect_dealer0_excluded(outcome, FaultKind::CommitmentDegree);
}

#[test]
fn honest_transcript_qualifies_everyone() {
    match outcome_with_dealer0(|_, e| e) {
        Outcome::Success { output, exclusions } => {
            assert_eq!(output.qualified, vec![0, 1, 2, 3, 4]);
            assert!(exclusions.is_empty());
        }
        Outcome::Failure { .. } => panic!("honest ceremony failed"),
    }
}

/// A point of small order on the G1 curve: `r * P` for a curve point `P` outside G1.
fn torsion_point() -> blstrs::G1Affine {
    use blst::*;
    let order_le = {
        let mut be = hex_order();
        be.reverse();
        be
    };
    for x in 0u64.. {
        // SAFETY: plain field and curve arithmetic on stack values.
        unsafe {
            let mut fx = blst_fp::default();
            blst_fp_from_uint64(&mut fx, [x, 0, 0, 0, 0, 0].as_ptr());
            let mut four = blst_fp::default();
            blst_fp_from_uint64(&mut four, [4u64, 0, 0, 0, 0, 0].as_ptr());
            let (mut r2, mut r3, mut rhs, mut y) = (
                blst_fp::default(),
                blst_fp::default(),
                blst_fp::default(),
                blst_fp::default(),
            );
            blst_fp_sqr(&mut r2, &fx);
            blst_fp_mul(&mut r3, &r2, &fx);
            blst_fp_add(&mut rhs, &r3, &four);
            if blst_fp_sqrt(&mut y, &rhs) {
                let p = blst_p1_affine { x: fx, y };
                if blst_p1_affine_in_g1(&p) {
                    continue;
                }
                let mut pp = blst_p1::default();
                blst_p1_from_affine(&mut pp, &p);
                let mut t = blst_p1::default();
                blst_p1_mult(&mut t, &pp, order_le.as_ptr(), 255);
                if blst_p1_is_inf(&t) {
                    continue;
                }
                let mut ta = blst_p1_affine::default();
                blst_p1_to_affine(&mut ta, &t);
                let mut out = <blstrs::G1Affine as group::prime::PrimeCurveAffine>::identity();
                *out.as_mut() = ta;
                return out;
            }
        }
    }
    unreachable!()
}

fn hex_order() -> Vec<u8> {
    let h = "73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001";
    (0..32)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

#[test]
fn points_outside_the_subgroup_are_caught_in_the_sum() {
    let t = torsion_point();
    assert!(!<C as Curve>::in_subgroup(&t));
    let outcome = outcome_with_dealer0(|_, e| {
        let mut pts = e.points().to_vec();
        pts[0] = (pts[0].to_curve() + t.to_curve()).to_affine();
        EvalCommitment::from_points(pts).unwrap()
    });
    expect_dealer0_excluded(outcome, FaultKind::PointOutsideSubgroup);
}

#[test]
fn flaws_found_in_successive_passes_end_in_bounded_passes() {
    // Dealer 0 commits to too high a degree, dealer 1 to a point outside the subgroup. The
    // first pass catches dealer 1 (subgroup), the second dealer 0 (degree); the three honest
    // dealers left are below k = 4, so the attempt ends as a failure naming both.
    let t = torsion_point();
    let outcome = outcome_with(|d, ceremony, e| match d {
        0 => {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
            let g = Polynomial::random(ceremony.t(), None, &mut rng);
            EvalCommitment::feldman(&g, ceremony.player_indices())
        }
        1 => {
            let mut pts = e.points().to_vec();
            pts[2] = (pts[2].to_curve() + t.to_curve()).to_affine();
            EvalCommitment::from_points(pts).unwrap()
        }
        _ => e,
    });
    let Outcome::Failure {
        qualified,
        exclusions,
        retrying,
    } = outcome
    else {
        panic!("three honest dealers do not reach k = 4")
    };
    assert_eq!(qualified, vec![2, 3, 4]);
    assert!(!retrying);
    let faults: Vec<_> = exclusions
        .iter()
        .map(|e| (e.index, e.fault.clone()))
        .collect();
    assert_eq!(
        faults,
        vec![
            (0, FaultKind::CommitmentDegree),
            (1, FaultKind::PointOutsideSubgroup)
        ]
    );
}
