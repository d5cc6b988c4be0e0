//! Phases close at the block where their last expected post lands, wait for their deadline
//! when a member is silent, and give the same outcome as waiting every deadline out.

use crate::common;

use common::*;

use keyquorum_contract::state::{EvidenceRecord, SlashingRecord};
use keyquorum_contract::{ContractConfig, Event, ViewChangePhase};
use keyquorum_dkg::messages::{Post, SignedPost};
use keyquorum_dkg::params::MAX_PARTICIPANTS;

/// Phases long enough that closing at a deadline cannot be mistaken for closing early.
const LEN: u64 = 20;

fn long_phases(close_early: bool) -> ContractConfig {
    let mut c = config();
    c.phases.contribute = LEN;
    c.phases.share = LEN;
    c.phases.publish = LEN;
    c.phases.wait = LEN;
    c.phases.close_early = close_early;
    c.view_length = 5;
    c
}

/// Heights at which `view` (session 0) entered each phase, in order.
fn phase_heights(sim: &Sim, view: u64) -> Vec<(ViewChangePhase, u32, u64)> {
    sim.events
        .iter()
        .filter_map(|(h, e)| match e {
            Event::PhaseChanged {
                view: v,
                ceremony_number: 0,
                attempt,
                phase,
                ..
            } if *v == view => Some((*phase, *attempt, *h)),
            _ => None,
        })
        .collect()
}

fn selected_at(sim: &Sim, view: u64) -> u64 {
    sim.events
        .iter()
        .find_map(|(h, e)| match e {
            Event::CommitteeSelected { view: v, .. } if *v == view => Some(*h),
            _ => None,
        })
        .expect("committee selected")
}

/// Height of the last accepted post of a kind in `view`.
fn last_post(sim: &Sim, view: u64, kind: &str) -> u64 {
    sim.events
        .iter()
        .filter_map(|(h, e)| match e {
            Event::PostAccepted {
                view: v, kind: k, ..
            } if *v == view && k == kind => Some(*h),
            _ => None,
        })
        .max()
        .expect("posts of that kind")
}

#[test]
fn each_phase_closes_at_the_block_of_its_last_expected_post() {
    let mut sim = Sim::new(long_phases(true), &[60, 50, 40, 30, 20, 10]);
    sim.run_until(3 * LEN, |s| s.contract.state().current_view == 2);
    for view in [1, 2] {
        let start = selected_at(&sim, view);
        let contributed = last_post(&sim, view, "contribution");
        let published = last_post(&sim, view, "publication");
        let signed = sim
            .events
            .iter()
            .find_map(|(h, e)| match e {
                Event::MagicBlockSigned {
                    view: v,
                    complete: true,
                    ..
                } if *v == view => Some(*h),
                _ => None,
            })
            .expect("magic block signed");
        let activated = sim
            .events
            .iter()
            .find_map(|(h, e)| match e {
                Event::ViewActivated { view: v, .. } if *v == view => Some(*h),
                _ => None,
            })
            .expect("view activated");
        // Every dealer posts its contribution in the first block; every dealer's log is final
        // once the contributions are on chain (every player acks at once), so it is posted in
        // the share phase, in the next block.
        assert_eq!(contributed, start + 1, "view {view}");
        assert_eq!(published, start + 2, "view {view}");
        assert_eq!(
            phase_heights(&sim, view),
            vec![
                (ViewChangePhase::Contribute, 0, start),
                (ViewChangePhase::Share, 0, contributed),
                (ViewChangePhase::Publish, 0, published),
                (ViewChangePhase::Wait, 0, published),
                (ViewChangePhase::Idle, 0, signed),
            ],
            "view {view}"
        );
        assert_eq!(activated, signed);
        let record = sim.contract.view(view).unwrap();
        assert_eq!(
            record.activated_at,
            signed + 1,
            "the view starts in the block after its signatures"
        );
        // The view's API gives that height, not the signed bound of the magic block.
        let served = sim.contract.query(&format!("views/{view}")).unwrap();
        assert_eq!(served["first_round"], record.activated_at, "{served}");
        assert!(record.activated_at < record.magic_block.block.first_round);
        // The view change took 3 blocks where its deadlines alone allow 4 * LEN.
        assert!(signed - start < LEN);
    }
    // The reshare's signatures under both keys were needed before the wait phase closed.
    assert!(sim.events.iter().any(|(_, e)| matches!(
        e,
        Event::MagicBlockSigned {
            view: 2,
            role: keyquorum_contract::SignerRole::Old,
            ..
        }
    )));
    // Logs posted in the share phase were taken as they were, no post refused.
    assert!(
        sim.rejections
            .iter()
            .all(|(_, _, kind, _)| *kind != "dkg_post"),
        "{:?}",
        sim.rejections
    );
    let early_logs = sim
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::PostAccepted { kind, .. } if kind == "publication"))
        .count();
    assert_eq!(early_logs, 6 + 6);
}

#[test]
fn a_silent_member_keeps_each_phase_it_owes_open_until_the_deadline() {
    let mut sim = Sim::new(long_phases(true), &[60, 50, 40, 30, 20, 10]);
    sim.faults.insert(
        (1, 0),
        FaultPlan {
            silent: set(&[5]),
            ..Default::default()
        },
    );
    sim.run_until(6 * LEN, |s| s.contract.state().current_view == 1);
    let start = selected_at(&sim, 1);
    let phases = phase_heights(&sim, 1);
    // Contribute: dealer 5 never contributes, so the phase runs to its deadline. Share: no
    // dealer hears from player 5, so no log is final early and the phase runs to its deadline.
    // Publish: once the five active dealers' logs (revealing player 5's shares) are in, the
    // phase closes; so does the wait phase once the block is signed.
    let share = start + LEN;
    let publish = share + LEN;
    assert_eq!(phases[0], (ViewChangePhase::Contribute, 0, start));
    assert_eq!(phases[1], (ViewChangePhase::Share, 0, share));
    assert_eq!(phases[2], (ViewChangePhase::Publish, 0, publish));
    assert_eq!(phases[3], (ViewChangePhase::Wait, 0, publish + 1));
    assert_eq!(phases[4], (ViewChangePhase::Idle, 0, publish + 2));
    assert_eq!(last_post(&sim, 1, "publication"), publish + 1);
    // No log was posted before the share deadline.
    assert!(
        sim.events
            .iter()
            .filter(|(_, e)| matches!(e, Event::PostAccepted { kind, .. } if kind == "publication"))
            .all(|(h, _)| *h > share)
    );
    assert_eq!(
        sim.contract
            .view(1)
            .unwrap()
            .magic_block
            .block
            .members
            .len(),
        5
    );
}

#[test]
fn a_missing_publication_keeps_the_publish_phase_open_until_the_deadline() {
    let mut sim = Sim::new(long_phases(true), &[60, 50, 40, 30, 20, 10]);
    // Player 1 never acks: no dealer's log is final early. Dealer 3 never publishes.
    sim.faults.insert(
        (1, 0),
        FaultPlan {
            drop_acks: set(&[1]),
            drop_publication: set(&[3]),
            ..Default::default()
        },
    );
    sim.run_until(6 * LEN, |s| s.contract.state().current_view == 1);
    let start = selected_at(&sim, 1);
    let phases = phase_heights(&sim, 1);
    assert_eq!(phases[1], (ViewChangePhase::Share, 0, start + 1));
    assert_eq!(phases[2], (ViewChangePhase::Publish, 0, start + 1 + LEN));
    assert_eq!(phases[3], (ViewChangePhase::Wait, 0, start + 1 + 2 * LEN));
}

/// A slashing record without the heights, which early closing moves.
fn normalized(r: &SlashingRecord) -> SlashingRecord {
    let mut r = r.clone();
    r.height = 0;
    if let EvidenceRecord::MissingSignature { magic_block_hash } = &mut r.evidence {
        // The hash covers the block's first round, and the detail names the deadline: heights.
        *magic_block_hash = Default::default();
        r.detail.clear();
    }
    r
}

/// Everything the view changes decided, without heights.
fn outcome(sim: &Sim) -> String {
    let mut out = String::new();
    for (view, record) in &sim.contract.state().views {
        let b = &record.magic_block.block;
        out += &format!(
            "view {view}: session {} {:?} n={} t={} k={} key {:?} members {:?}\n",
            b.ceremony_number, b.key_mode, b.n, b.t, b.k, b.group_key, b.members
        );
    }
    for r in &sim.contract.state().slashings {
        out += &format!("{:?}\n", normalized(r));
    }
    for (id, node) in sim.contract.state().nodes.iter() {
        out += &format!("{id:?} stake {}\n", node.stake);
    }
    for (i, n) in sim.nodes.iter().enumerate() {
        for (view, (share, index)) in &n.shares {
            out += &format!(
                "node {i} view {view} index {index} share {:?}\n",
                share.expose()
            );
        }
    }
    out
}

fn run(close_early: bool, faults: &[((u64, u32), FaultPlan)]) -> (String, u64) {
    let mut sim = Sim::new(long_phases(close_early), &[100, 90, 80, 70, 60, 50, 40, 30]);
    for (k, plan) in faults {
        sim.faults.insert(*k, plan.clone());
    }
    sim.run_until(40 * LEN, |s| s.contract.state().current_view == 3);
    (outcome(&sim), sim.height)
}

#[test]
fn outcomes_are_equal_with_and_without_early_close() {
    let scenarios: Vec<Vec<((u64, u32), FaultPlan)>> = vec![
        vec![],
        vec![
            (
                (1, 0),
                FaultPlan {
                    invalid_log: set(&[3]),
                    drop_acks: set(&[1]),
                    ..Default::default()
                },
            ),
            (
                (2, 0),
                FaultPlan {
                    silent: set(&[4]),
                    no_new_signature: set(&[0]),
                    ..Default::default()
                },
            ),
        ],
        vec![
            (
                (1, 0),
                FaultPlan {
                    late_contribution: set(&[1]),
                    invalid_log: set(&[3]),
                    ..Default::default()
                },
            ),
            (
                (3, 0),
                FaultPlan {
                    no_new_signature: set(&[0, 1, 2]),
                    drop_publication: set(&[5]),
                    ..Default::default()
                },
            ),
        ],
    ];
    for (i, faults) in scenarios.iter().enumerate() {
        let (early, early_height) = run(true, faults);
        let (waited, waited_height) = run(false, faults);
        assert_eq!(early, waited, "scenario {i}");
        assert!(
            early_height < waited_height,
            "scenario {i}: {early_height} blocks, {waited_height} waiting"
        );
    }
}

#[test]
fn an_incomplete_log_is_refused_in_the_share_phase() {
    let mut sim = Sim::new(long_phases(true), &[60, 50, 40, 30, 20, 10]);
    // Player 1 never acks, so no honest log is final early; dealer 0's log at the deadline
    // reveals player 1's share. Posting that log during the share phase is refused.
    sim.faults.insert(
        (1, 0),
        FaultPlan {
            drop_acks: set(&[1]),
            ..Default::default()
        },
    );
    let revealing = |s: &Sim| {
        s.events.iter().find_map(|(_, e)| match e {
            Event::PostAccepted { kind, post, .. } if kind == "publication" => {
                let signed =
                    SignedPost::<keyquorum_contract::Group>::decode(&post.0, MAX_PARTICIPANTS)
                        .unwrap();
                match signed.post {
                    Post::Publication(p) if !p.reveals.is_empty() => Some((post.0.clone(), p)),
                    _ => None,
                }
            }
            _ => None,
        })
    };
    sim.run_until(3 * LEN, |s| revealing(s).is_some());
    let (log, p) = revealing(&sim).unwrap();
    // Replay the same session up to its share phase and post that log there.
    let mut replay = Sim::new(long_phases(true), &[60, 50, 40, 30, 20, 10]);
    replay.faults = sim.faults.clone();
    replay.run_until(3 * LEN, |s| {
        s.contract.state().phase() == ViewChangePhase::Share
    });
    let dealer = &replay.contract.ceremony().unwrap().dealers()[p.dealer as usize];
    let author = (0..6)
        .find(|i| identity(*i).public() == &dealer.identity)
        .unwrap();
    let err = replay
        .submit_now((
            author,
            keyquorum_contract::tx::TxBody::DkgPost { post: log },
        ))
        .unwrap_err();
    assert_eq!(err.code(), "wrong_phase", "{err}");
    assert_eq!(replay.contract.state().phase(), ViewChangePhase::Share);
}
