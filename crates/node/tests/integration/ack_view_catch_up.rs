//! A member down from before an ack-or-reveal view ceremony starts until its contribution
//! phase is over, back on its own database. The board shows it contributed nothing, and a
//! contribution would now be refused, so it is seated as a player only: it deals nothing,
//! receives the other dealers' deals and acks them in the share phase, so that no dealer has to
//! reveal its share. Having missed its contribution as a dealer, it leaves the new view's
//! committee (an absence, never misbehaviour).

use keyquorum_contract::config::KeyMode;
use keyquorum_contract::state::FaultRole;
use keyquorum_contract::tx::TxBody;
use keyquorum_contract::{ContractConfig, Event};
use keyquorum_crypto::Bls12381G1;
use keyquorum_dkg::board::BoardPhase;
use keyquorum_dkg::messages::{Post, Publication, SignedPost};
use keyquorum_node::store::Seat;

use crate::common;

use common::Harness;

const N: usize = 4;
const AWAY: usize = 2;

fn config() -> ContractConfig {
    // Quorum 3 of 4: the ceremony completes with the three dealers that stayed up.
    common::small_network("ack-view-catch-up", N as u32, 3, KeyMode::Reshare)
}

fn contributions(h: &Harness, i: usize) -> usize {
    h.submitted[i]
        .iter()
        .filter(|b| matches!(b, TxBody::DkgPost { .. }))
        .count()
}

fn board_phase(h: &Harness) -> Option<BoardPhase> {
    h.contract.board().map(|b| b.phase())
}

/// Node `AWAY`'s part in the view change under way, as `/status` shows it.
fn pending_role(h: &Harness) -> String {
    let status = h.status[AWAY].lock().unwrap();
    let pending = status.pending.as_ref().expect("a view change is pending");
    pending.role.clone()
}

#[test]
fn a_member_back_after_the_contribution_phase_of_an_ack_view_ceremony_acks_as_a_player_only() {
    let stakes: Vec<u64> = (0..N as u64).map(|i| 100 - i).collect();
    let mut h = Harness::new(config(), &stakes);
    h.set_verifiable_keys();
    h.run_until(40, |h| h.height + 1 == h.contract.state().next_start);
    let head = h.height;
    h.drivers[AWAY].as_mut().unwrap().set_head(head).unwrap();
    assert!(h.driver(AWAY).state().caught_up);
    h.drivers[AWAY] = None;
    h.run_until(20, |h| {
        board_phase(h).is_some_and(|p| p > BoardPhase::Contribute)
    });
    assert_eq!(
        board_phase(&h),
        Some(BoardPhase::Share),
        "back in the share phase"
    );
    assert_eq!(contributions(&h, AWAY), 0);
    let sent = h.sent[AWAY].len();

    let effects = h.reopen(AWAY);
    h.catch_up_to_head(AWAY, effects);
    h.step();
    let seat = h.driver(AWAY).state().ceremony.as_ref().map(|r| r.seat);
    assert_eq!(seat, Some(Seat::Player));
    assert_eq!(h.status[AWAY].lock().unwrap().sitting_out, None);
    assert_eq!(pending_role(&h), "player");

    let me = h.keys[AWAY].identity().public().to_bytes();
    let position = h
        .contract
        .ceremony()
        .expect("the ceremony runs")
        .players()
        .iter()
        .position(|p| p.identity.to_bytes() == me)
        .expect("it is a player") as u32;

    h.run_until(60, |h| h.contract.state().current_view == 1);
    // Its acks count: every dealer's publication names it among the ackers, so no dealer had
    // to reveal its share on the board.
    let publications: Vec<Publication<Bls12381G1>> = h
        .events()
        .filter_map(|e| match e {
            Event::PostAccepted {
                view: 1,
                kind,
                post,
                ..
            } if kind == "publication" => {
                match SignedPost::<Bls12381G1>::decode(&post.0, N).unwrap().post {
                    Post::Publication(p) => Some(p),
                    other => panic!("{other:?}"),
                }
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        publications.len(),
        N - 1,
        "the dealers that stayed up publish"
    );
    for p in &publications {
        assert!(
            p.acks.contains(&position),
            "dealer {} lacks its ack",
            p.dealer
        );
        assert!(p.reveals.iter().all(|(player, _)| *player != position));
    }
    assert_eq!(
        contributions(&h, AWAY),
        0,
        "it posted after its contribution phase"
    );
    assert!(h.sent[AWAY].len() > sent, "it sent nothing");

    // A dealer that missed its contribution leaves the committee, as Züs removes a miner that
    // misses a phase: an absence, never misbehaviour, and nothing against it as a player.
    let block = &h.contract.view(1).unwrap().magic_block.block;
    assert!(block.member_by_identity(&me).is_none());
    assert_eq!(block.members.len(), N - 1);
    assert!(h.driver(AWAY).state().shares.iter().all(|s| s.view != 1));
    assert!(
        !h.events().any(|e| matches!(e, Event::PostRejected { .. })),
        "a post was rejected"
    );
    let against_it: Vec<_> = h
        .contract
        .state()
        .slashings
        .iter()
        .filter(|r| r.identity.0 == me)
        .collect();
    assert!(
        !against_it.is_empty(),
        "its missed contribution is not recorded"
    );
    for r in against_it {
        assert_eq!(
            (r.role, r.fault.as_str()),
            (FaultRole::Dealer, "missed_contribution")
        );
        assert!(!r.misbehaviour, "{r:?}");
    }
}
