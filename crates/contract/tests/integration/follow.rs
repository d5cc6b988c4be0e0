//! The follower against the contract, for random committees and faults: an observer that sees
//! every event (in block order, after the fact) and feeds a board only what its
//! [`Follower`] yields ends every ceremony with the contract's own result. For each ceremony:
//! - the board inputs it yields are exactly the contract's `PostAccepted`/`PostRejected`/
//!   `BoardDeadline` events of that ceremony, in order, and nothing of any other ceremony;
//! - a ceremony that made a magic block: the block rebuilt from the observer's board with the
//!   contract's construction ([`MagicBlock::from_board`]) is the event's block, hash included;
//!
//! Nodes are simulated with the shared test chain ([`common::Sim`]), whose nodes are driven by
//! the same follower.

use crate::common;

use common::*;
use keyquorum_contract::follow::{Follower, Step};
use keyquorum_contract::magic::{MagicBlock, MagicBlockPlace};
use keyquorum_contract::{Event, KeyMode};
use keyquorum_dkg::board::Board;
use keyquorum_dkg::messages::SignedPost;
use proptest::prelude::*;

/// One board input, as the contract emitted it or as the follower yielded it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BoardInput {
    Post(Vec<u8>),
    Deadline,
}

/// The board inputs the contract applied to ceremony `(view, ceremony)`, in order.
fn contract_inputs(events: &[(u64, Event)], view: u64, ceremony_number: u32) -> Vec<BoardInput> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            _ if e
                .board_post()
                .is_some_and(|(v, s, _)| (v, s) == (view, ceremony_number)) =>
            {
                Some(BoardInput::Post(e.board_post().unwrap().2.to_vec()))
            }
            Event::BoardDeadline {
                view: v,
                ceremony_number: s,
                ..
            } if (*v, *s) == (view, ceremony_number) => Some(BoardInput::Deadline),
            _ => None,
        })
        .collect()
}

struct Observed {
    view: u64,
    ceremony_number: u32,
    board: Board<keyquorum_contract::Group>,
    inputs: Vec<BoardInput>,
}

/// Follows every event as an observer; checks each ceremony as it ends. Returns the number of
/// ceremonies and of magic blocks checked.
fn check_observer(sim: &Sim) -> (usize, usize) {
    let mut follower = Follower::new(None);
    let mut live: Option<Observed> = None;
    let mut checked = 0;
    let mut blocks = 0;
    let mut steps = Vec::new();
    let mut last_height = None;
    for (h, e) in &sim.events {
        if last_height.is_some_and(|l| l != *h) {
            steps.extend(follower.end_block());
        }
        last_height = Some(*h);
        steps.extend(follower.event(e));
        for step in std::mem::take(&mut steps) {
            match step {
                Step::CeremonyStarted {
                    view,
                    ceremony_number,
                    ceremony,
                    ..
                } => {
                    assert!(live.is_none(), "a ceremony starts while another runs");
                    live = Some(Observed {
                        view,
                        ceremony_number,
                        board: Board::new(ceremony),
                        inputs: Vec::new(),
                    });
                }
                Step::CeremonyRefused { reason, .. } => panic!("refused: {reason}"),
                Step::Posts(posts) => {
                    let o = live.as_mut().expect("posts only of a followed ceremony");
                    for p in posts {
                        let signed = SignedPost::decode(&p, o.board.ceremony().n()).unwrap();
                        let _ = o.board.apply(&signed);
                        o.inputs.push(BoardInput::Post(p));
                    }
                }
                Step::Deadline => {
                    let o = live
                        .as_mut()
                        .expect("deadlines only of a followed ceremony");
                    o.board.advance();
                    o.inputs.push(BoardInput::Deadline);
                }
                Step::MagicBlock {
                    view,
                    ceremony_number,
                    hash,
                    block,
                    index,
                } => {
                    assert_eq!(index, None, "an observer is no member");
                    let o = live
                        .as_ref()
                        .expect("a magic block of the followed ceremony");
                    assert_eq!((o.view, o.ceremony_number), (view, ceremony_number));
                    let place = MagicBlockPlace {
                        chain_id: CHAIN.into(),
                        view,
                        ceremony_number,
                        key_mode: if o.board.ceremony().reshare().is_some() {
                            KeyMode::Reshare
                        } else {
                            KeyMode::Fresh
                        },
                        previous_hash: block.previous_hash.0,
                        first_round: block.first_round,
                        beacon: sim.contract.config().beacon,
                    };
                    let rebuilt = MagicBlock::from_board(&place, &o.board, |id| {
                        (0..sim.nodes.len())
                            .find(|i| identity(*i).public().to_bytes() == id.0)
                            .map(network)
                    })
                    .expect("the observer's board succeeded");
                    assert_eq!(rebuilt, *block);
                    assert_eq!(rebuilt.hash(), hash);
                    blocks += 1;
                }
                Step::CeremonyEnded {
                    view,
                    ceremony_number,
                    ..
                } => {
                    let o = live.take().expect("only a followed ceremony ends");
                    assert_eq!((o.view, o.ceremony_number), (view, ceremony_number));
                    assert_eq!(
                        o.inputs,
                        contract_inputs(&sim.events, view, ceremony_number)
                    );
                    checked += 1;
                }
                Step::ViewActivated { member, .. } => assert_eq!(member, None),
            }
        }
    }
    (checked, blocks)
}

fn plan_from(bits: u32, nodes: usize) -> FaultPlan {
    let pick = |shift: u32| -> std::collections::BTreeSet<usize> {
        (0..nodes)
            .filter(|i| (bits >> (shift + *i as u32)) & 1 == 1)
            .take(1)
            .collect()
    };
    FaultPlan {
        silent: pick(0),
        late_contribution: pick(8),
        drop_acks: pick(16),
        drop_publication: pick(24),
        ..Default::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    /// Random registries (5 to 8 nodes, random stakes) and one random fault of each kind in
    /// the first ceremony of each of the first two view changes.
    #[test]
    fn an_observer_following_the_events_has_the_contracts_board(
        stakes in proptest::collection::vec(10u64..1000, 5..=8),
        faults in any::<(u32, u32)>(),
    ) {
        let nodes = stakes.len();
        let mut sim = Sim::new(config(), &stakes);
        sim.faults.insert((1, 0), plan_from(faults.0, nodes));
        sim.faults.insert((2, 0), plan_from(faults.1, nodes));
        // Faults may fail ceremonies or abort a view change; a fixed span of blocks covers
        // several ceremonies either way.
        for _ in 0..60 {
            sim.step();
        }
        let (ceremonies, blocks) = check_observer(&sim);
        prop_assert!(ceremonies >= 2, "only {ceremonies} ceremonies checked");
        prop_assert!(blocks >= 1, "no magic block checked");
    }
}
