//! Following the contract: its events, in block order, turned into the inputs of one seat's
//! DKG participant (or of an observer's board) and the steps around them.
//!
//! A node never reads the contract's state to take part in a view change; it follows the
//! events ([`crate::events`]). The rules of that translation are written here once, and the
//! node's driver, the contract's test chain and the node's chain test all use this
//! [`Follower`]:
//! - `CommitteeSelected` starts a ceremony: its [`CeremonySpec`] must build
//!   the ceremony whose id the event names (else the ceremony is refused and not followed), and
//!   the seat's [`SeatRole`] in it follows from the ceremony's dealer and player lists. A ceremony
//!   still running when the next one is selected ends first;
//! - `PostAccepted` and `PostRejected` of the followed ceremony are its board posts (both
//!   changed the contract's board, so every replica applies both); a run of consecutive posts,
//!   with no other event between them, comes out as one [`Step::Posts`] batch, which the
//!   participant verifies in one batch and which acts exactly as the same posts one by one;
//! - `BoardDeadline` of the followed ceremony is one [`Step::Deadline`];
//! - `CeremonyFailed` of the followed ceremony and `ViewChangeAborted` end it; `ViewActivated`
//!   ends it too, after announcing the view with this seat's place in its magic block;
//! - `MagicBlockCreated` is the block to check and sign, with this seat's member index.
//!
//! Events of other ceremonies (a late post of a failed ceremony, a deadline of a ceremony this
//! follower never saw start) are ignored, as the contract ignores them for the current board.
//! The contract emits exactly its board's inputs in the order it applied them, so a board fed
//! these steps is the contract's board.
//!
//! # Why here
//! The contract defines the events, and it already builds ceremonies from specs with
//! `keyquorum-dkg`; the follower needs nothing else, so it lives next to the events it reads.
//! Like the contract it is deterministic and does no I/O: no storage, no clock, no logging.
//! What a caller persists, signs or logs stays with the caller. The follower's own memory is a
//! [`Position`] (the followed ceremony and the last magic block), which a caller that restarts
//! stores with its state and hands back to [`Follower::resume`]; between blocks nothing else
//! is held (posts are flushed by [`Follower::end_block`]).

use std::sync::Arc;

use keyquorum_dkg::Ceremony;
use keyquorum_dkg::identity::IdentityPublicKey;
use serde::{Deserialize, Serialize};

use crate::Group;
use crate::events::Event;
use crate::hex::Hex;
use crate::magic::MagicBlock;
use crate::state::CeremonySpec;

/// The ceremony a follower follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowedCeremony {
    /// View being created.
    pub view: u64,
    /// Ceremony number within the view change.
    pub ceremony_number: u32,
    /// Session id.
    pub id: Hex<32>,
}

/// The last magic block a follower saw created, until its view is activated or its ceremony
/// fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedMagicBlock {
    /// View.
    pub view: u64,
    /// Ceremony that made it.
    pub ceremony_number: u32,
    /// Its hash.
    pub hash: Hex<32>,
    /// This seat's member index in it, if a member.
    pub index: Option<u64>,
}

/// What a follower remembers between blocks; stored by callers that restart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The followed ceremony.
    pub ceremony: Option<FollowedCeremony>,
    /// The magic block awaiting activation.
    pub magic: Option<CreatedMagicBlock>,
}

/// The seat's part in a ceremony.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatRole {
    /// Deals only (an old member in a reshare that is not in the new committee).
    Dealer,
    /// Plays only (a new member in a reshare).
    Player,
    /// Deals and plays.
    DealerAndPlayer,
    /// Neither: it can only follow the board.
    Outside,
}

impl SeatRole {
    /// The seat `me` (none: a node without an identity on chain) has in `ceremony`.
    pub fn of(ceremony: &Ceremony<Group>, me: Option<&IdentityPublicKey>) -> SeatRole {
        let Some(me) = me else {
            return SeatRole::Outside;
        };
        match (
            ceremony.dealer_position(me).is_some(),
            ceremony.player_position(me).is_some(),
        ) {
            (true, true) => SeatRole::DealerAndPlayer,
            (true, false) => SeatRole::Dealer,
            (false, true) => SeatRole::Player,
            (false, false) => SeatRole::Outside,
        }
    }

    /// Whether the seat runs a participant (deals or plays).
    pub fn takes_part(self) -> bool {
        self != SeatRole::Outside
    }

    /// Whether the seat deals.
    pub fn deals(self) -> bool {
        matches!(self, SeatRole::Dealer | SeatRole::DealerAndPlayer)
    }

    /// Stable name for logs and status.
    pub fn as_str(self) -> &'static str {
        match self {
            SeatRole::Dealer => "dealer",
            SeatRole::Player => "player",
            SeatRole::DealerAndPlayer => "dealer+player",
            SeatRole::Outside => "observer",
        }
    }
}

/// Why a followed ceremony ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyEnd {
    /// `CeremonyFailed`: the next ceremony (if any) starts with its own `CommitteeSelected`.
    Failed,
    /// `ViewChangeAborted`.
    Aborted,
    /// `ViewActivated`: the view change is over.
    ViewActivated,
    /// Another ceremony was selected while this one still ran.
    Superseded,
}

/// One thing for the seat to do, in order.
#[derive(Debug, Clone)]
pub enum Step {
    /// A ceremony starts. A seat that [takes part](SeatRole::takes_part) builds its participant on
    /// `ceremony` and feeds it `Input::Start`; the steps that follow belong to this ceremony.
    CeremonyStarted {
        /// View being created.
        view: u64,
        /// Ceremony number.
        ceremony_number: u32,
        /// The ceremony, built from the event's spec; its id is the event's session id.
        ceremony: Arc<Ceremony<Group>>,
        /// This seat's part in it.
        role: SeatRole,
        /// The event's definition of the ceremony (for callers that store it).
        spec: Box<CeremonySpec>,
    },
    /// A `CommitteeSelected` whose spec does not define the ceremony it names: not followed.
    CeremonyRefused {
        /// View.
        view: u64,
        /// Ceremony.
        ceremony_number: u32,
        /// What is wrong.
        reason: String,
    },
    /// Board posts of the followed ceremony, each one `Input::BoardPost`, in the contract's
    /// order; one batch of consecutive posts.
    Posts(Vec<Vec<u8>>),
    /// A board phase deadline of the followed ceremony: `Input::Deadline`.
    Deadline,
    /// The followed ceremony is over: drop its participant.
    CeremonyEnded {
        /// View.
        view: u64,
        /// Ceremony.
        ceremony_number: u32,
        /// Why.
        why: CeremonyEnd,
    },
    /// A magic block to check and sign (with the new share as a member, with the previous
    /// view's share as a member of the previous committee).
    MagicBlock {
        /// View.
        view: u64,
        /// Ceremony that made it.
        ceremony_number: u32,
        /// Its hash as the contract computed it.
        hash: [u8; 32],
        /// The block.
        block: Box<MagicBlock>,
        /// This seat's member index in it, if a member.
        index: Option<u64>,
    },
    /// A view is active. `member` is `(ceremony, index)` when this seat is a member of it, by
    /// the magic block created for it (same view and hash).
    ViewActivated {
        /// View.
        view: u64,
        /// Its magic block's hash.
        hash: [u8; 32],
        /// This seat's place in it: the ceremony whose output is the view's share, and the
        /// member index.
        member: Option<(u32, u64)>,
    },
}

/// Turns events into [`Step`]s for one seat. See the module docs.
#[derive(Debug, Clone)]
pub struct Follower {
    me: Option<IdentityPublicKey>,
    position: Position,
    posts: Vec<Vec<u8>>,
}

impl Follower {
    /// A follower for the seat of identity `me`, or for an observer of every ceremony
    /// (`None`: it takes part in nothing and is a member of nothing), from the chain's start.
    pub fn new(me: Option<IdentityPublicKey>) -> Self {
        Self::resume(me, Position::default())
    }

    /// A follower that continues from `position` (stored after an earlier block).
    pub fn resume(me: Option<IdentityPublicKey>, position: Position) -> Self {
        Follower {
            me,
            position,
            posts: Vec::new(),
        }
    }

    /// What to store to resume after the last block ended.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The followed ceremony, if any.
    pub fn ceremony(&self) -> Option<FollowedCeremony> {
        self.position.ceremony
    }

    fn follows(&self, view: u64, ceremony_number: u32) -> bool {
        self.position
            .ceremony
            .is_some_and(|s| s.view == view && s.ceremony_number == ceremony_number)
    }

    /// The steps of the next event of the block, in block order. Posts are held back until an
    /// event that is not a post (or [`Follower::end_block`]), so that a run of them comes out
    /// as one batch.
    pub fn event(&mut self, event: &Event) -> Vec<Step> {
        if let Some((view, ceremony_number, post)) = event.board_post() {
            if self.follows(view, ceremony_number) {
                self.posts.push(post.to_vec());
            }
            return Vec::new();
        }
        // Every other event sees the posts applied before it, as the contract did.
        let mut steps = self.end_block();
        match event {
            Event::CommitteeSelected {
                view,
                ceremony_number,
                session_id,
                spec,
                ..
            } => {
                self.end_ceremony(CeremonyEnd::Superseded, &mut steps);
                match spec.ceremony() {
                    Ok(ceremony) if ceremony.id() == &session_id.0 => {
                        self.position.ceremony = Some(FollowedCeremony {
                            view: *view,
                            ceremony_number: *ceremony_number,
                            id: *session_id,
                        });
                        steps.push(Step::CeremonyStarted {
                            view: *view,
                            ceremony_number: *ceremony_number,
                            role: SeatRole::of(&ceremony, self.me.as_ref()),
                            ceremony,
                            spec: Box::new(spec.clone()),
                        });
                    }
                    Ok(_) => steps.push(Step::CeremonyRefused {
                        view: *view,
                        ceremony_number: *ceremony_number,
                        reason: "session id does not match the spec".into(),
                    }),
                    Err(e) => steps.push(Step::CeremonyRefused {
                        view: *view,
                        ceremony_number: *ceremony_number,
                        reason: format!("invalid ceremony spec: {e}"),
                    }),
                }
            }
            Event::BoardDeadline {
                view,
                ceremony_number,
                ..
            } if self.follows(*view, *ceremony_number) => {
                steps.push(Step::Deadline);
            }
            Event::MagicBlockCreated {
                view,
                ceremony_number,
                hash,
                magic_block,
            } => {
                let index = self
                    .me
                    .as_ref()
                    .and_then(|me| magic_block.member_by_identity(&me.to_bytes()))
                    .map(|m| m.index);
                self.position.magic = Some(CreatedMagicBlock {
                    view: *view,
                    ceremony_number: *ceremony_number,
                    hash: *hash,
                    index,
                });
                steps.push(Step::MagicBlock {
                    view: *view,
                    ceremony_number: *ceremony_number,
                    hash: hash.0,
                    block: Box::new(magic_block.clone()),
                    index,
                });
            }
            Event::ViewActivated { view, hash, .. } => {
                let member = self
                    .position
                    .magic
                    .take()
                    .filter(|m| m.view == *view && m.hash == *hash)
                    .and_then(|m| m.index.map(|i| (m.ceremony_number, i)));
                steps.push(Step::ViewActivated {
                    view: *view,
                    hash: hash.0,
                    member,
                });
                self.end_ceremony(CeremonyEnd::ViewActivated, &mut steps);
            }
            Event::CeremonyFailed {
                view,
                ceremony_number,
                ..
            } => {
                if self
                    .position
                    .magic
                    .is_some_and(|m| m.view == *view && m.ceremony_number == *ceremony_number)
                {
                    self.position.magic = None;
                }
                if self.follows(*view, *ceremony_number) {
                    self.end_ceremony(CeremonyEnd::Failed, &mut steps);
                }
            }
            Event::ViewChangeAborted { .. } => {
                self.position.magic = None;
                self.end_ceremony(CeremonyEnd::Aborted, &mut steps);
            }
            _ => {}
        }
        steps
    }

    /// The posts held back (the block ended, or the caller needs the board current now). A
    /// batch may be cut anywhere: the participant acts the same on posts one by one.
    pub fn end_block(&mut self) -> Vec<Step> {
        if self.posts.is_empty() {
            Vec::new()
        } else {
            vec![Step::Posts(std::mem::take(&mut self.posts))]
        }
    }

    fn end_ceremony(&mut self, why: CeremonyEnd, steps: &mut Vec<Step>) {
        if let Some(s) = self.position.ceremony.take() {
            steps.push(Step::CeremonyEnded {
                view: s.view,
                ceremony_number: s.ceremony_number,
                why,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeyMode;
    use crate::hex::Bytes;
    use crate::state::SpecParticipant;
    use keyquorum_crypto::encrypt::EncryptionSecretKey;
    use keyquorum_dkg::identity::IdentityKeypair;

    fn identity(i: u8) -> IdentityKeypair {
        IdentityKeypair::from_seed(&[i + 1; 32]).unwrap()
    }

    fn spec(view: u64, ceremony_number: u32, members: &[u8]) -> CeremonySpec {
        CeremonySpec {
            domain: Bytes(b"follow-test".to_vec()),
            view,
            ceremony_number,
            n: members.len() as u32,
            t: 2,
            k: members.len() as u32,
            players: members
                .iter()
                .map(|i| SpecParticipant {
                    identity: Hex(identity(*i).public().to_bytes()),
                    encryption_key: Hex(EncryptionSecretKey::from_seed(&[*i; 32])
                        .public_key()
                        .to_bytes()),
                })
                .collect(),
            reshare: None,
            variant: crate::config::DkgVariant::AckReveal,
            verifiable_keys: Vec::new(),
        }
    }

    fn selected(view: u64, ceremony_number: u32, members: &[u8]) -> Event {
        let spec = spec(view, ceremony_number, members);
        let id = *spec.ceremony().unwrap().id();
        Event::CommitteeSelected {
            view,
            ceremony_number,
            key_mode: KeyMode::Fresh,
            session_id: Hex(id),
            committee: Vec::new(),
            dealers: Vec::new(),
            spec,
        }
    }

    fn accepted(view: u64, ceremony_number: u32, post: u8) -> Event {
        Event::PostAccepted {
            view,
            ceremony_number,
            dealer: 0,
            kind: "contribution".into(),
            post: Bytes(vec![post]),
        }
    }

    fn deadline(view: u64, ceremony_number: u32) -> Event {
        Event::BoardDeadline {
            view,
            ceremony_number,
            attempt: 0,
        }
    }

    fn posts(steps: &[Step]) -> Vec<Vec<Vec<u8>>> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Posts(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    }

    fn run(f: &mut Follower, events: &[Event]) -> Vec<Step> {
        let mut out: Vec<Step> = events.iter().flat_map(|e| f.event(e)).collect();
        out.extend(f.end_block());
        out
    }

    #[test]
    fn roles_come_from_the_ceremony() {
        let me = identity(1).public().clone();
        let steps = run(&mut Follower::new(Some(me)), &[selected(1, 0, &[0, 1, 2])]);
        assert!(matches!(
            steps[..],
            [Step::CeremonyStarted {
                role: SeatRole::DealerAndPlayer,
                ..
            }]
        ));
        let outsider = identity(9).public().clone();
        let steps = run(
            &mut Follower::new(Some(outsider)),
            &[selected(1, 0, &[0, 1, 2])],
        );
        assert!(matches!(
            steps[..],
            [Step::CeremonyStarted {
                role: SeatRole::Outside,
                ..
            }]
        ));
    }

    #[test]
    fn a_spec_that_does_not_match_its_id_is_refused_and_not_followed() {
        let mut e = selected(1, 0, &[0, 1, 2]);
        if let Event::CommitteeSelected { session_id, .. } = &mut e {
            session_id.0[0] ^= 1;
        }
        let mut f = Follower::new(None);
        let steps = run(&mut f, &[e, accepted(1, 0, 7), deadline(1, 0)]);
        assert!(
            matches!(steps[..], [Step::CeremonyRefused { .. }]),
            "{steps:?}"
        );
        assert_eq!(f.ceremony(), None);
    }

    #[test]
    fn consecutive_posts_are_one_batch_and_flushed_before_other_events() {
        let mut f = Follower::new(None);
        let steps = run(
            &mut f,
            &[
                selected(1, 0, &[0, 1, 2]),
                accepted(1, 0, 1),
                accepted(1, 0, 2),
                deadline(1, 0),
                accepted(1, 0, 3),
            ],
        );
        assert!(matches!(steps[0], Step::CeremonyStarted { .. }));
        assert!(matches!(&steps[1], Step::Posts(p) if p == &vec![vec![1], vec![2]]));
        assert!(matches!(steps[2], Step::Deadline));
        assert!(matches!(&steps[3], Step::Posts(p) if p == &vec![vec![3]]));
        assert_eq!(steps.len(), 4);
    }

    #[test]
    fn foreign_ceremonies_are_ignored() {
        let mut f = Follower::new(None);
        let steps = run(
            &mut f,
            &[
                accepted(1, 0, 1),
                deadline(1, 0),
                selected(1, 1, &[0, 1, 2]),
                accepted(1, 0, 2),
                deadline(1, 0),
                accepted(2, 1, 3),
                Event::CeremonyFailed {
                    view: 1,
                    ceremony_number: 0,
                    reason: "x".into(),
                    culprits: Vec::new(),
                    next_ceremony_number: None,
                },
                accepted(1, 1, 4),
            ],
        );
        assert_eq!(posts(&steps), vec![vec![vec![4]]]);
        assert!(!steps.iter().any(|s| matches!(s, Step::Deadline)));
        assert!(
            !steps
                .iter()
                .any(|s| matches!(s, Step::CeremonyEnded { .. }))
        );
    }

    #[test]
    fn ceremonies_end_on_failure_abort_activation_and_a_new_selection() {
        let mut f = Follower::new(None);
        let ended = |steps: &[Step]| {
            steps
                .iter()
                .filter_map(|s| match s {
                    Step::CeremonyEnded { why, .. } => Some(*why),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        let s = run(
            &mut f,
            &[selected(1, 0, &[0, 1, 2]), selected(1, 1, &[0, 1, 3])],
        );
        assert_eq!(ended(&s), [CeremonyEnd::Superseded]);
        let s = run(
            &mut f,
            &[Event::ViewChangeAborted {
                view: 1,
                ceremony_number: 1,
                reason: "x".into(),
                retry_at: 9,
            }],
        );
        assert_eq!(ended(&s), [CeremonyEnd::Aborted]);
        let s = run(
            &mut f,
            &[
                selected(1, 2, &[0, 1, 2]),
                Event::ViewActivated {
                    view: 1,
                    first_round: 5,
                    hash: Hex([3; 32]),
                },
                accepted(1, 2, 1),
            ],
        );
        assert_eq!(ended(&s), [CeremonyEnd::ViewActivated]);
        assert!(posts(&s).is_empty(), "posts after the end are not followed");
    }

    #[test]
    fn a_resumed_follower_continues_where_it_stopped() {
        let events = [
            selected(1, 0, &[0, 1, 2]),
            accepted(1, 0, 1),
            deadline(1, 0),
            accepted(1, 0, 2),
            accepted(1, 1, 3),
            deadline(1, 0),
        ];
        for cut in 0..=events.len() {
            let mut whole = Follower::new(None);
            let all = run(&mut whole, &events);
            let mut first = Follower::new(None);
            let mut got = run(&mut first, &events[..cut]);
            let mut second = Follower::resume(None, first.position());
            got.extend(run(&mut second, &events[cut..]));
            assert_eq!(format!("{all:?}"), format!("{got:?}"), "cut at {cut}");
        }
    }
}
