//! A node that lost its database mid-ceremony and follows the chain again from the start.
//!
//! If its contribution is on the board already, the seed behind it is gone: dealing again
//! with a fresh seed would post a second, different contribution, which the board punishes as
//! equivocation. The node sits the ceremony out instead (no contribution, no deals, no acks),
//! says so on its status, and nobody is slashed for misbehaviour. If its contribution is not on
//! the board yet, it takes part once it has caught up with the chain.

use crate::common;

use common::Harness;
use keyquorum_contract::config::KeyMode;
use keyquorum_contract::tx::TxBody;
use keyquorum_contract::{ContractConfig, Event, ViewChangePhase};
use keyquorum_node::store::Seat;

const STAKES: [u64; 5] = [100, 99, 98, 97, 96];
const LOST: usize = 1;

fn config() -> ContractConfig {
    let mut c = common::small_network("lost-database", 5, 4, KeyMode::Fresh);
    c.phases.contribute = 3;
    c
}

/// The contribution posts node `i` submitted (tag 1 after the 48-byte signature).
fn contributions(h: &Harness, i: usize) -> usize {
    h.submitted[i]
        .iter()
        .filter(|b| matches!(b, TxBody::DkgPost { post } if post.get(48) == Some(&1)))
        .count()
}

fn dealer_position(h: &Harness, i: usize) -> Option<u32> {
    let board = h.contract.board()?;
    board
        .ceremony()
        .dealer_position(h.keys[i].identity().public())
}

#[test]
fn a_node_whose_contribution_is_on_the_board_sits_the_ceremony_out() {
    let mut h = Harness::new(config(), &STAKES);
    // Down from the block where its contribution lands: it never sees it, so it sends no ack
    // and no log (phases close early, and a node that saw its contribution land with every
    // ack in would have posted its final log in the same block).
    h.run_until(40, |h| {
        h.pending.iter().any(|(i, b)| {
            *i == LOST && matches!(b, TxBody::DkgPost { post } if post.get(48) == Some(&1))
        })
    });
    h.drivers[LOST] = None;
    h.step();
    assert_eq!(h.contract.state().phase(), ViewChangePhase::Share);
    assert!(
        dealer_position(&h, LOST).is_some_and(|d| h
            .contract
            .board()
            .unwrap()
            .contribution(d)
            .is_some())
    );
    assert_eq!(contributions(&h, LOST), 1);
    h.restart_with_lost_database(LOST);
    // It replayed the ceremony's start from the chain but dealt nothing and posted nothing.
    assert_eq!(
        contributions(&h, LOST),
        1,
        "a second contribution was posted"
    );
    let d = h.driver(LOST);
    let rec = d
        .state()
        .ceremony
        .as_ref()
        .expect("it follows the ceremony");
    assert_eq!(rec.seat, Seat::SittingOut);
    let shown = h.status[LOST].lock().unwrap().sitting_out.clone().unwrap();
    assert_eq!(
        (shown.ceremony.as_str(), shown.variant.as_str()),
        ("view", "ack-reveal")
    );
    assert_eq!((shown.view, shown.ceremony_number), (1, 0));
    assert_eq!(
        shown.reason,
        keyquorum_node::status::SAT_OUT_CONTRIBUTION_ON_BOARD
    );
    assert!(shown.member_of_next);
    assert_eq!(h.status[LOST].lock().unwrap().signing_key_sitting_out, None);

    h.run_until(60, |h| h.contract.state().current_view == 1);
    assert_eq!(contributions(&h, LOST), 1);
    // Nobody misbehaved: at most the absence of the node that sat out is recorded.
    for r in &h.contract.state().slashings {
        assert!(!r.misbehaviour, "{r:?}");
    }
    assert!(
        !h.blocks
            .iter()
            .flat_map(|b| b.txs.iter().flat_map(|t| t.events.iter()))
            .any(|e| matches!(e, Event::PostRejected { .. })),
        "a post was rejected as a fault"
    );
    // The others made the view without it; it follows along.
    let block = &h.contract.view(1).unwrap().magic_block.block;
    assert!(
        block
            .member_by_identity(&h.keys[LOST].identity().public().to_bytes())
            .is_none()
    );
    assert_eq!(h.driver(LOST).state().current_view, 1);
}

#[test]
fn a_node_that_had_not_contributed_takes_part_once_caught_up() {
    let mut h = Harness::new(config(), &STAKES);
    // Down just before the committee is selected, back two blocks later with nothing stored:
    // the selection is history it catches up on, its contribution is not on the board.
    h.run_until(40, |h| h.height + 1 == h.contract.state().next_start);
    h.drivers[LOST] = None;
    h.step();
    assert!(h.contract.state().change.is_some(), "the ceremony started");
    h.step();
    assert_eq!(h.contract.state().phase(), ViewChangePhase::Contribute);
    assert_eq!(contributions(&h, LOST), 0);
    h.restart_with_lost_database(LOST);
    let d = h.driver(LOST);
    assert_eq!(
        d.state().ceremony.as_ref().map(|s| s.seat),
        Some(Seat::Participant)
    );
    assert!(h.status[LOST].lock().unwrap().sitting_out.is_none());
    h.run_until(60, |h| h.contract.state().current_view == 1);
    assert_eq!(contributions(&h, LOST), 1);
    let block = &h.contract.view(1).unwrap().magic_block.block;
    assert!(
        block
            .member_by_identity(&h.keys[LOST].identity().public().to_bytes())
            .is_some(),
        "it took part and is a member"
    );
    assert!(h.contract.state().slashings.is_empty());
}

/// A node that lost its database between views is a dealer of the next reshare (a member of
/// the view before) without the share it would deal. It cannot deal, but it still plays: it
/// acks its dealers, so none of them reveals its share on chain or names it for withheld acks
/// (before, it sat the whole ceremony out and all four did). Its missed contribution is an
/// absence, which keeps it out of the new view (the contract leaves out every absent culprit);
/// the next view seats it as a player only, and it holds a share again. (The harness now sends
/// a transaction refused for its nonce again, as the runtime does: before, the handover
/// partials queued behind a refused one were lost, and a view of four stalled.)
#[test]
fn a_reshare_dealer_without_its_old_share_still_plays() {
    let config = common::small_network("lost-database-reshare", 5, 4, KeyMode::Reshare);
    let mut h = Harness::new(config, &STAKES);
    h.run_until(80, |h| h.contract.state().current_view == 1);
    let me = h.keys[LOST].identity().public().to_bytes();
    let member = |h: &Harness, view: u64| {
        h.contract
            .view(view)
            .unwrap()
            .magic_block
            .block
            .member_by_identity(&me)
            .is_some()
    };
    assert!(member(&h, 1));
    h.restart_with_lost_database(LOST);
    assert_eq!(h.driver(LOST).beacon_share().unwrap(), None);
    // `/status` shows the part it takes, a player's, not the dealer's and player's it was
    // selected for.
    h.run_until(120, |h| {
        h.status[LOST]
            .lock()
            .unwrap()
            .pending
            .as_ref()
            .is_some_and(|p| p.view == 2 && p.role == "player")
    });
    h.run_until(120, |h| h.contract.state().current_view == 2);
    let state = h.contract.state();
    let named: Vec<&str> = state
        .named
        .iter()
        .filter(|r| r.identity.0 == me)
        .map(|r| r.fault.as_str())
        .collect();
    assert!(named.is_empty(), "named {named:?}");
    let charged: Vec<&str> = state
        .slashings
        .iter()
        .filter(|r| r.identity.0 == me)
        .map(|r| r.fault.as_str())
        .collect();
    assert_eq!(charged, ["missed_contribution"]);
    assert!(state.slashings.iter().all(|r| !r.misbehaviour));
    assert!(!member(&h, 2));
    h.run_until(40, |h| h.contract.state().current_view == 3);
    assert!(member(&h, 3));
    let index = h
        .contract
        .view(3)
        .unwrap()
        .magic_block
        .block
        .member_by_identity(&me)
        .map(|m| m.index);
    let share = h.driver(LOST).beacon_share().unwrap();
    assert_eq!(
        share.map(|(index, _)| index),
        index,
        "it holds no share of view 3"
    );
}
