//! A member down while a complaint-variant view ceremony starts, back on its own database: the
//! ceremony's start is history it catches up on, and in the deal phase the board cannot show
//! yet whether it dealt (deals go point to point, and no player reports before it holds every
//! deal, its own included). Its database had caught up with the chain
//! before, so it was down, not dealing: it joins, its posts are accepted and nobody is slashed.
//! Started as a restored backup (`--restored-from-backup`), the same database forgets it caught
//! up: a backup may be older than a copy that dealt, so it sits the ceremony out.

use keyquorum_contract::config::{DkgVariant, KeyMode};
use keyquorum_contract::tx::TxBody;
use keyquorum_contract::{ContractConfig, Event};
use keyquorum_dkg::complaint::ComplaintBoardPhase;
use keyquorum_node::store::Seat;

use crate::common;

use common::Harness;

const N: usize = 4;
const AWAY: usize = 2;

fn config() -> ContractConfig {
    let mut c = common::small_network("view-catch-up", N as u32, 3, KeyMode::Reshare);
    c.dkg.variant = DkgVariant::Complaint;
    c
}

fn dkg_posts(h: &Harness, i: usize) -> usize {
    h.submitted[i]
        .iter()
        .filter(|b| matches!(b, TxBody::DkgPost { .. }))
        .count()
}

/// Node `AWAY` caught up with the chain, then down while view 1's ceremony starts, then back
/// on its own database (started as a restored backup if `restored`), told the chain's head.
fn down_while_the_ceremony_starts(restored: bool) -> (Harness, usize) {
    let stakes: Vec<u64> = (0..N as u64).map(|i| 100 - i).collect();
    let mut h = Harness::new(config(), &stakes);
    h.set_verifiable_keys();
    h.run_until(40, |h| h.height + 1 == h.contract.state().next_start);
    let head = h.height;
    h.drivers[AWAY].as_mut().unwrap().set_head(head).unwrap();
    assert!(h.driver(AWAY).state().caught_up);
    h.drivers[AWAY] = None;
    h.step();
    assert!(h.contract.state().change.is_some(), "the ceremony started");
    h.step();
    let sent = h.sent[AWAY].len();
    assert_eq!(dkg_posts(&h, AWAY), 0);
    let effects = if restored {
        h.reopen_restored_from_backup(AWAY)
    } else {
        h.reopen(AWAY)
    };
    h.catch_up_to_head(AWAY, effects);
    h.step();
    (h, sent)
}

#[test]
fn a_member_down_when_a_complaint_view_ceremony_started_joins_once_caught_up() {
    let (mut h, sent) = down_while_the_ceremony_starts(false);
    let seat = h.driver(AWAY).state().ceremony.as_ref().map(|r| r.seat);
    assert_eq!(seat, Some(Seat::Participant));
    assert!(h.sent[AWAY].len() > sent, "it dealt nothing");
    h.run_until(60, |h| h.contract.state().current_view == 1);
    assert!(dkg_posts(&h, AWAY) > 0, "it posted nothing");
    assert!(
        !h.events().any(|e| matches!(e, Event::PostRejected { .. })),
        "a post was rejected"
    );
    let block = &h.contract.view(1).unwrap().magic_block.block;
    assert!(
        block
            .member_by_identity(&h.keys[AWAY].identity().public().to_bytes())
            .is_some(),
        "it took part and is a member"
    );
    assert!(h.contract.state().slashings.is_empty());
}

#[test]
fn a_restored_backup_sits_out_a_complaint_view_ceremony_started_while_it_was_down() {
    let (mut h, sent) = down_while_the_ceremony_starts(true);
    let seat = h.driver(AWAY).state().ceremony.as_ref().map(|r| r.seat);
    assert_eq!(seat, Some(Seat::SittingOut));
    let shown = h.status[AWAY].lock().unwrap().sitting_out.clone().unwrap();
    assert_eq!(
        (shown.ceremony.as_str(), shown.variant.as_str(), shown.view),
        ("view", "complaint", 1)
    );
    // The board could not show yet whether it dealt; it stays a candidate for the next one.
    assert_eq!(shown.reason, keyquorum_node::status::SAT_OUT_NO_RECORD);
    assert!(shown.member_of_next);
    h.run_until(60, |h| h.contract.state().current_view == 1);
    // No deal, no post: nothing that could contradict what a later copy of its database dealt.
    assert_eq!(h.sent[AWAY].len(), sent, "it dealt");
    assert_eq!(dkg_posts(&h, AWAY), 0);
    for r in &h.contract.state().slashings {
        assert!(!r.misbehaviour, "{r:?}");
    }
    // Sitting out ended once caught up: the next ceremony is not held back.
    assert!(h.driver(AWAY).state().caught_up);
}

/// The contract's complaint board phase, if a view ceremony runs.
fn board_phase(h: &Harness) -> Option<ComplaintBoardPhase> {
    h.contract.complaint_board().map(|b| b.phase())
}

/// Node `AWAY` caught up with the chain, then down from before view 1's ceremony starts until
/// its board is `past` (no deal of it anywhere), then back on its own database.
fn down_past(past: ComplaintBoardPhase) -> (Harness, usize) {
    let stakes: Vec<u64> = (0..N as u64).map(|i| 100 - i).collect();
    let mut h = Harness::new(config(), &stakes);
    h.set_verifiable_keys();
    h.run_until(40, |h| h.height + 1 == h.contract.state().next_start);
    let head = h.height;
    h.drivers[AWAY].as_mut().unwrap().set_head(head).unwrap();
    h.drivers[AWAY] = None;
    h.run_until(20, |h| board_phase(h).is_some_and(|p| p > past));
    let sent = h.sent[AWAY].len();
    let effects = h.reopen(AWAY);
    h.catch_up_to_head(AWAY, effects);
    h.step();
    (h, sent)
}

/// Node `AWAY`'s part in the view change under way, as `/status` shows it.
fn pending_role(h: &Harness) -> String {
    let status = h.status[AWAY].lock().unwrap();
    status
        .pending
        .as_ref()
        .expect("a view change is pending")
        .role
        .clone()
}

/// Back while a deal of it could still count (the reports not yet closed), it deals: players
/// that have not reported take its deals, and it posts those reported missing on the board as
/// justifications. It keeps its seat and its share of view 1, and nothing is recorded against
/// it, not even an absence.
fn joins_and_justifies(past: ComplaintBoardPhase) {
    let (mut h, sent) = down_past(past);
    let seat = h.driver(AWAY).state().ceremony.as_ref().map(|r| r.seat);
    assert_eq!(seat, Some(Seat::Participant));
    assert_eq!(pending_role(&h), "dealer+player");
    h.run_until(60, |h| h.contract.state().current_view == 1);
    assert!(h.sent[AWAY].len() > sent, "it did not deal");
    let me = h.keys[AWAY].identity().public().to_bytes();
    let block = &h.contract.view(1).unwrap().magic_block.block;
    assert!(block.member_by_identity(&me).is_some(), "it lost its seat");
    assert!(h.driver(AWAY).state().shares.iter().any(|s| s.view == 1));
    for r in &h.contract.state().slashings {
        assert_ne!(r.identity.0, me, "{r:?}");
        assert!(!r.misbehaviour, "{r:?}");
    }
}

/// Back in the justification phase, it plays only: no deal, no commitment, nothing
/// `/status` calls sitting out; view 1 is made without it as a dealer, and a fresh key's
/// qualified set is a clique of mutual deals, so it holds no share. Its missing justifications
/// are an absence (as they would be had it stayed down), never misbehaviour.
fn joins_as_a_player_only(past: ComplaintBoardPhase) {
    let (mut h, sent) = down_past(past);
    let seat = h.driver(AWAY).state().ceremony.as_ref().map(|r| r.seat);
    assert_eq!(seat, Some(Seat::Player));
    assert_eq!(h.status[AWAY].lock().unwrap().sitting_out, None);
    assert_eq!(pending_role(&h), "player");
    // A restart shows the view change under way with the same part, not the selected one,
    // and the board's phase as it was (before, none until the next phase change).
    let shown = |h: &Harness| {
        let s = h.status[AWAY].lock().unwrap();
        (s.phase.clone(), s.phase_deadline)
    };
    let before = shown(&h);
    assert!(!before.0.is_empty());
    h.drivers[AWAY] = None;
    h.fresh_status(AWAY);
    let effects = h.reopen(AWAY);
    assert_eq!(pending_role(&h), "player");
    assert_eq!(shown(&h), before);
    h.apply(AWAY, effects);
    h.run_until(60, |h| h.contract.state().current_view == 1);
    assert_eq!(h.sent[AWAY].len(), sent, "it dealt");
    let me = h.keys[AWAY].identity().public().to_bytes();
    let block = &h.contract.view(1).unwrap().magic_block.block;
    assert!(block.member_by_identity(&me).is_none(), "it holds a share");
    assert!(h.driver(AWAY).state().shares.iter().all(|s| s.view != 1));
    assert_eq!(h.status[AWAY].lock().unwrap().sitting_out, None);
    for r in &h.contract.state().slashings {
        assert!(!r.misbehaviour, "{r:?}");
    }
    // A restart rebuilds it as a player only: still no deal.
    h.drivers[AWAY] = None;
    let effects = h.reopen(AWAY);
    h.apply(AWAY, effects);
    assert_eq!(h.sent[AWAY].len(), sent, "it dealt after a restart");
}

#[test]
fn a_member_back_in_the_report_phase_of_a_complaint_view_ceremony_deals_and_keeps_its_share() {
    joins_and_justifies(ComplaintBoardPhase::Deal);
}

#[test]
fn a_member_back_in_the_justification_phase_of_a_complaint_view_ceremony_plays_without_dealing() {
    joins_as_a_player_only(ComplaintBoardPhase::Report);
}

/// Back once the justifications are closed, its database its own record: the board shows no
/// deal of it but disqualified it (the players complained of deals it never sent), so it sits
/// the ceremony out, saying why: disqualified while away, a warning, not lost state. Before, it
/// was told at error level that its database had no record of a contribution on the board.
#[test]
fn a_member_back_after_the_justifications_sits_out_as_disqualified_not_as_lost_state() {
    let (h, _) = down_past(ComplaintBoardPhase::Justify);
    let shown = h.status[AWAY]
        .lock()
        .unwrap()
        .sitting_out
        .clone()
        .expect("it sits the ceremony out");
    assert_eq!(shown.reason, keyquorum_node::status::SAT_OUT_DISQUALIFIED);
    let faults = "keyquorum_faults_seen_total";
    assert_eq!(
        h.metrics[AWAY].get(faults, &[("fault", "sat_out_disqualified")]),
        1.0
    );
    assert_eq!(
        h.metrics[AWAY].get(faults, &[("fault", "sat_out_lost_state")]),
        0.0
    );
}
