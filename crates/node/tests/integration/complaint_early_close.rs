//! The complaint variant's phases close early, in a view's ceremony (`variant = complaint`) and in
//! a view's signing-key ceremony: the deal and report phases end at the block of the last
//! report (players report as soon as every deal verified), the Feldman and complain phases at
//! the block of their last post (every qualified player complains, empty for none), a phase a
//! silent member owes a post in runs to its deadline, and the outcome is the one of a chain
//! that waits every deadline out.

use keyquorum_contract::config::{DkgVariant, KeyMode, SigningKeyConfig};
use keyquorum_contract::signing_key::{SigningCurve, SigningKeyRecord};
use keyquorum_contract::{ContractConfig, Event, MagicBlock, ViewChangePhase};
use keyquorum_dkg::complaint::messages::{ComplaintPost, SignedComplaintPost};
use keyquorum_node::Fault;

use crate::common;

use common::Harness;

const N: usize = 4;
/// Phases long enough that closing at a deadline cannot be mistaken for closing early.
const LEN: u64 = 20;

fn config(close_early: bool) -> ContractConfig {
    let mut c = common::small_network("complaint-early-close", N as u32, 3, KeyMode::Reshare);
    c.committee.min_size = N as u32;
    c.dkg.variant = DkgVariant::Complaint;
    c.dkg.signing_key = Some(SigningKeyConfig::SECP256K1_FROST);
    c.phases.contribute = LEN;
    c.phases.share = LEN;
    c.phases.publish = LEN;
    c.phases.wait = LEN;
    c.phases.close_early = close_early;
    c.view_length = 1000;
    c
}

/// Runs until view 1's signing key is made, with member 3 silent if `silent`.
fn run(close_early: bool, silent: bool) -> Harness {
    let faults: &[(usize, Fault)] = if silent { &[(3, Fault::Silent)] } else { &[] };
    run_with(close_early, faults)
}

/// Runs until view 1's signing key is made, with these members faulty.
fn run_with(close_early: bool, faults: &[(usize, Fault)]) -> Harness {
    let stakes: Vec<u64> = (0..N as u64).map(|i| 100 - i).collect();
    let mut h = Harness::new(config(close_early), &stakes);
    h.set_verifiable_keys();
    for (i, fault) in faults {
        h.set_fault(*i, *fault);
    }
    h.run_until(40 * LEN, |h| created(h).is_some());
    h
}

/// Dealer 1 withholds a deal and its justification, dealer 2 its Feldman values, in the
/// signing-key ceremony.
const SIGNING_KEY_FAULTS: &[(usize, Fault)] = &[
    (1, Fault::SigningKeyWithhold),
    (2, Fault::SigningKeySkipFeldman),
];

fn created(h: &Harness) -> Option<SigningKeyRecord> {
    h.events().find_map(|e| match e {
        Event::SigningKeyCreated { view: 1, key } => Some(key.clone()),
        _ => None,
    })
}

/// Every event with the height of its block, in chain order.
fn timeline(h: &Harness) -> Vec<(u64, &Event)> {
    h.blocks
        .iter()
        .flat_map(|b| {
            b.txs
                .iter()
                .flat_map(|t| t.events.iter())
                .chain(&b.end_block_events)
                .map(move |e| (b.height, e))
        })
        .collect()
}

/// View 1's accepted signing-key board posts, each with the height of its block.
fn signing_posts(h: &Harness) -> Vec<(u64, ComplaintPost<SigningCurve>)> {
    timeline(h)
        .into_iter()
        .filter_map(|(at, e)| match e {
            Event::SigningKeyBoardPost {
                view: 1,
                post,
                accepted: true,
            } => {
                let signed = SignedComplaintPost::<SigningCurve>::decode(&post.0, N, N).unwrap();
                Some((at, signed.post))
            }
            _ => None,
        })
        .collect()
}

/// One phase: the height it began at and the deadline announced for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Phase {
    began: u64,
    deadline: u64,
}

/// View 1's ceremony: its deal phase, its report, Feldman and complain phases (each a publish
/// phase on chain), the height its wait phase began at, and the heights of the last report and
/// Feldman posts.
struct ViewPhases {
    deal: Phase,
    publish: Vec<Phase>,
    wait: u64,
    last_report: u64,
    last_feldman: u64,
    last_complaint: u64,
}

fn view_phases(h: &Harness) -> ViewPhases {
    let events = timeline(h);
    let began = |phase: ViewChangePhase| -> Vec<Phase> {
        events
            .iter()
            .filter_map(|(at, e)| match e {
                Event::PhaseChanged {
                    view: 1,
                    ceremony_number: 0,
                    phase: p,
                    deadline,
                    ..
                } if *p == phase => Some(Phase {
                    began: *at,
                    deadline: *deadline,
                }),
                _ => None,
            })
            .collect()
    };
    let last = |kind: &str| {
        events
            .iter()
            .filter_map(|(at, e)| match e {
                Event::PostAccepted {
                    view: 1, kind: k, ..
                } if k == kind => Some(*at),
                _ => None,
            })
            .max()
            .expect("posts of that kind")
    };
    ViewPhases {
        // The complaint variant's first phase is a share phase: deals, point to point.
        deal: began(ViewChangePhase::Share)[0],
        publish: began(ViewChangePhase::Publish),
        wait: began(ViewChangePhase::Wait)[0].began,
        last_report: last("report"),
        last_feldman: last("feldman"),
        last_complaint: last("complaint"),
    }
}

impl ViewPhases {
    /// The height each phase ended at, with its deadline: deal, then the publish phases.
    fn ends(&self) -> Vec<(u64, u64)> {
        let phases: Vec<&Phase> = std::iter::once(&self.deal).chain(&self.publish).collect();
        phases
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let end = phases.get(i + 1).map_or(self.wait, |next| next.began);
                (end, p.deadline)
            })
            .collect()
    }
}

/// View 1's signing-key ceremony: for each board phase the height it ended at and the deadline
/// announced for it, and the heights of the last report and Feldman posts.
struct SigningPhases {
    ends: Vec<(u64, u64)>,
    last_report: u64,
    last_feldman: u64,
    last_complaint: u64,
}

fn signing_phases(h: &Harness) -> SigningPhases {
    let events = timeline(h);
    let mut deadline = events
        .iter()
        .find_map(|(_, e)| match e {
            Event::SigningKeyStarted {
                view: 1, deadline, ..
            } => Some(*deadline),
            _ => None,
        })
        .expect("started");
    let mut ends = Vec::new();
    for (at, e) in &events {
        if let Event::SigningKeyDeadline {
            view: 1,
            next_deadline,
        } = e
        {
            ends.push((*at, deadline));
            deadline = next_deadline.unwrap_or(0);
        }
    }
    let posts = signing_posts(h);
    let last = |kind: fn(&ComplaintPost<SigningCurve>) -> bool| {
        posts
            .iter()
            .filter(|(_, p)| kind(p))
            .map(|(at, _)| *at)
            .max()
            .expect("posts of that kind")
    };
    SigningPhases {
        ends,
        last_report: last(|p| matches!(p, ComplaintPost::Report(_))),
        last_feldman: last(|p| matches!(p, ComplaintPost::Feldman(_))),
        last_complaint: last(|p| matches!(p, ComplaintPost::Complaint(_))),
    }
}

/// What a run decided, without the keys: the signing key's record and view 1's magic block,
/// each with its keys left out (and the block's first round, which is earlier when phases
/// close early).
fn outcome(h: &Harness) -> (SigningKeyRecord, MagicBlock) {
    let mut key = created(h).expect("made");
    key.group_key = Default::default();
    for m in &mut key.members {
        m.public_share = Default::default();
    }
    let mut block = h.contract.view(1).unwrap().magic_block.block.clone();
    block.group_key = Default::default();
    block.first_round = 0;
    for m in &mut block.members {
        m.public_share = Default::default();
    }
    (key, block)
}

/// Asserts that a phase ran to its deadline.
#[track_caller]
fn ran_to_deadline((end, deadline): (u64, u64)) {
    assert_eq!(end, deadline);
}

/// Asserts that a phase closed before its deadline, at the block of its last post.
#[track_caller]
fn closed_early((end, deadline): (u64, u64), last_post: u64) {
    assert_eq!(end, last_post);
    assert!(end < deadline, "{end} {deadline}");
}

#[test]
fn without_faults_every_phase_closes_at_its_last_post() {
    let h = run(true, false);

    let v = view_phases(&h);
    let ends = v.ends();
    assert_eq!(ends.len(), 4, "deal, report, Feldman and complain phases");
    // Deals travel off chain, but every player reports once every deal verified, and the
    // deal phase ends with the last report; the report phase, with every report in, in the
    // same block.
    closed_early(ends[0], v.last_report);
    closed_early(ends[1], v.last_report);
    // Every qualified dealer's Feldman values in: the same.
    closed_early(ends[2], v.last_feldman);
    // Every qualified player posts its complaint, empty as it has none: the same.
    closed_early(ends[3], v.last_complaint);

    let s = signing_phases(&h);
    assert_eq!(s.ends.len(), 4, "deal, report, Feldman and complain phases");
    closed_early(s.ends[0], s.last_report);
    closed_early(s.ends[1], s.last_report);
    closed_early(s.ends[2], s.last_feldman);
    closed_early(s.ends[3], s.last_complaint);
}

#[test]
fn without_early_close_every_phase_runs_to_its_deadline_with_the_same_outcome() {
    let early = run(true, false);
    let late = run(false, false);

    let v = view_phases(&late);
    assert_eq!(v.ends().len(), 4);
    v.ends().into_iter().for_each(ran_to_deadline);
    let s = signing_phases(&late);
    assert_eq!(s.ends.len(), 4);
    s.ends.into_iter().for_each(ran_to_deadline);
    // Phases run their full length.
    for (a, b) in v.publish.iter().zip(&v.publish[1..]) {
        assert_eq!(b.began, a.began + LEN);
    }

    // The same session, members, indices, qualified dealers and exclusions, in the signing
    // key's record and in view 1's magic block (the keys differ: each node draws its
    // polynomials at random).
    assert_eq!(outcome(&early), outcome(&late));
    let first_round = |h: &Harness| h.contract.view(1).unwrap().magic_block.block.first_round;
    assert!(first_round(&early) + LEN < first_round(&late));
}

#[test]
fn a_silent_member_keeps_the_view_phases_it_owes_a_post_in_open() {
    let h = run(true, true);

    // The silent member dealt nothing, so nobody reports before the deal deadline, and its
    // report never comes: the deal and report phases run to their deadlines. The others ask
    // it for their deals (justify), which it never answers.
    let v = view_phases(&h);
    let ends = v.ends();
    assert_eq!(
        ends.len(),
        5,
        "deal, report, justify, Feldman and complain phases"
    );
    ran_to_deadline(ends[0]);
    ran_to_deadline(ends[1]);
    ran_to_deadline(ends[2]);
    // The qualified dealers (without it) post their Feldman values: that phase closes early.
    closed_early(ends[3], v.last_feldman);
    closed_early(ends[4], v.last_complaint);

    // It is not in view 1, so view 1's signing-key ceremony has nobody silent.
    let s = signing_phases(&h);
    closed_early(s.ends[0], s.last_report);
    closed_early(s.ends[1], s.last_report);
    let key = created(&h).expect("made");
    assert_eq!(key.members.len(), N - 1);
}

#[test]
fn a_withheld_justification_and_a_missing_feldman_post_keep_their_phases_open() {
    let h = run_with(true, SIGNING_KEY_FAULTS);

    let s = signing_phases(&h);
    assert_eq!(
        s.ends.len(),
        6,
        "deal, report, justify, Feldman, complain and reconstruct phases"
    );
    // Dealer 1 withholds a deal, so the player without it reports at the deal deadline.
    ran_to_deadline(s.ends[0]);
    closed_early(s.ends[1], s.last_report);
    // Dealer 1 owes a justification it never posts.
    ran_to_deadline(s.ends[2]);
    // Dealer 2 qualified and owes Feldman values it never posts.
    ran_to_deadline(s.ends[3]);
    // Every qualified player complains (about nothing: dealer 2 posted no values to check).
    closed_early(s.ends[4], s.last_complaint);
    // Every qualified player posts its pair for dealer 2: the reconstruct phase closes early.
    let reconstructions: Vec<u64> = signing_posts(&h)
        .into_iter()
        .filter(|(_, p)| matches!(p, ComplaintPost::Reconstruction(_)))
        .map(|(at, _)| at)
        .collect();
    assert_eq!(reconstructions.len(), 3, "the qualified players 0, 2 and 3");
    closed_early(s.ends[5], *reconstructions.iter().max().unwrap());
    let key = created(&h).expect("made, with dealer 2's contribution reconstructed");
    assert_eq!(key.qualified, vec![0, 2, 3]);
    assert_eq!(key.excluded.len(), 3, "{:?}", key.excluded);
    // The same decisions, exclusions and penalties as a chain that waits every deadline out.
    assert_eq!(outcome(&h), outcome(&run_with(false, SIGNING_KEY_FAULTS)));
}
