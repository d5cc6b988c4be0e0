//! Ceremonies: the view change's schedule. Committee selection at the start (a new ceremony
//! numbered within the view change), the `DkgPost`s the board accepts, the phase deadlines the
//! board advances on, early close, and what happens when a ceremony fails (a new one without its
//! culprits, or the view change abandoned until `retry_delay` later).

use std::collections::BTreeSet;

use keyquorum_dkg::SessionId;
use keyquorum_dkg::board::{BoardError, BoardPhase, Exclusion, Outcome, Penalty, check_authentic};
use keyquorum_dkg::complaint::messages::{ComplaintPost, SignedComplaintPost};
use keyquorum_dkg::complaint::{
    ComplaintBoard, ComplaintBoardError, ComplaintBoardPhase, author_key,
    check_authentic as check_complaint_authentic,
};
use keyquorum_dkg::identity::IdentityPublicKey;
use keyquorum_dkg::messages::{Post, SignedPost};
use keyquorum_dkg::wire::WireError;

use crate::config::{DkgVariant, KeyMode};
use crate::error::Rejection;
use crate::events::{CommitteeEntry, Event};
use crate::hex::{Bytes, Hex};
use crate::magic::MagicBlockMember;
use crate::select::select_committee;
use crate::state::{
    BoardInput, CeremonySpec, FaultCeremony, IdentityKey, SpecParticipant, SpecReshare, ViewChange,
    ViewChangePhase,
};
use crate::tx::NetworkIdentity;

use super::slashing::fault_reason;
use super::{Contract, Group, Live, LiveBoard, genesis_seed, key_of};

/// The domain bound into the session id: chain id, view and ceremony number.
pub(super) fn session_domain(chain_id: &str, view: u64, ceremony_number: u32) -> Vec<u8> {
    format!("keyquorum-contract/{chain_id}/view/{view}/session/{ceremony_number}").into_bytes()
}

/// The identities of the exclusions that carry a penalty: the culprits banned from the rest of
/// a view change and left out of the new committee.
pub(super) fn penalised(exclusions: &[Exclusion]) -> BTreeSet<IdentityKey> {
    exclusions
        .iter()
        .filter(|e| e.fault.penalty() != Penalty::None)
        .map(|e| key_of(&e.identity))
        .collect()
}

/// A post of the running ceremony, decoded for its variant's board.
pub(super) enum AuthenticPost {
    AckReveal(SignedPost<Group>),
    Complaint(SignedComplaintPost<Group>),
}

/// A `DkgPost`'s post as `sender` may post it to the running ceremony: it decodes for the
/// ceremony's variant, belongs to the session, names an author that exists (a dealer; in the
/// complaint variant a dealer or a player, by the kind of post), that author is the sender, and
/// its signature is the author's (the board's own check, [`check_authentic`] or
/// [`check_complaint_authentic`]; the complaint board checks a reconstruction post's signature
/// only at the reconstruct deadline, so here the sender check is what keeps another member from
/// spending a player's one reconstruction post). Shared by [`Contract::check_tx`] and the block.
pub(super) fn authentic_post(
    live: &Live,
    sender: &IdentityPublicKey,
    post: &[u8],
) -> Result<AuthenticPost, Rejection> {
    let ceremony = &live.ceremony;
    match &live.board {
        LiveBoard::AckReveal(_) => {
            let signed = SignedPost::<Group>::decode(post, ceremony.n()).map_err(|e| {
                undecoded(SignedPost::<Group>::claimed_session(post), ceremony.id(), e)
            })?;
            if signed.post.session() != ceremony.id() {
                return Err(Rejection::WrongSession);
            }
            let dealer = signed.post.dealer();
            let author = ceremony
                .dealers()
                .get(dealer as usize)
                .ok_or(Rejection::Board(BoardError::NotADealer(dealer)))?;
            if &author.identity != sender {
                return Err(Rejection::NotPostAuthor);
            }
            check_authentic(ceremony, &signed).map_err(Rejection::Board)?;
            Ok(AuthenticPost::AckReveal(signed))
        }
        LiveBoard::Complaint(_) => {
            let signed =
                SignedComplaintPost::<Group>::decode(post, ceremony.n(), ceremony.dealer_count())
                    .map_err(|e| {
                    undecoded(
                        SignedComplaintPost::<Group>::claimed_session(post),
                        ceremony.id(),
                        e,
                    )
                })?;
            if signed.post.session() != ceremony.id() {
                return Err(Rejection::WrongSession);
            }
            let (role, index) = signed.post.author();
            let author = author_key(ceremony, role, index).ok_or(Rejection::ComplaintBoard(
                ComplaintBoardError::UnknownAuthor(role, index),
            ))?;
            if author != sender {
                return Err(Rejection::NotPostAuthor);
            }
            check_complaint_authentic(ceremony, &signed).map_err(Rejection::ComplaintBoard)?;
            Ok(AuthenticPost::Complaint(signed))
        }
    }
}

/// Why a post that did not decode is refused: another session's post (a node retrying one of
/// an earlier ceremony, whose committee may not decode for this one) is the free
/// [`Rejection::WrongSession`] that timing explains, as it is when it decodes; anything else is
/// malformed, at the sender's cost.
pub(super) fn undecoded(claimed: Option<SessionId>, ours: &SessionId, e: WireError) -> Rejection {
    if claimed.is_some_and(|s| &s != ours) {
        Rejection::WrongSession
    } else {
        Rejection::MalformedPost(e)
    }
}

/// A stable name of a complaint-variant post's kind, for events and logs.
fn complaint_kind(post: &ComplaintPost<Group>) -> &'static str {
    match post {
        ComplaintPost::Report(_) => "report",
        ComplaintPost::Justification(_) => "justification",
        ComplaintPost::Dispute(_) => "dispute",
        ComplaintPost::Feldman(_) => "feldman",
        ComplaintPost::Complaint(_) => "complaint",
        ComplaintPost::Reconstruction(_) => "reconstruction",
    }
}

impl Contract {
    /// A `DkgPost`: the contract checks that the post belongs here (phase, ceremony, author) and
    /// hands it to the board, which alone decides what it means.
    pub(super) fn dkg_post(
        &mut self,
        sender: &IdentityPublicKey,
        post: &[u8],
        height: u64,
    ) -> Result<Vec<Event>, Rejection> {
        let change = self.state.change.as_ref().ok_or(Rejection::NoViewChange)?;
        if !matches!(
            change.phase,
            ViewChangePhase::Contribute | ViewChangePhase::Share | ViewChangePhase::Publish
        ) {
            return Err(Rejection::WrongPhase {
                phase: change.phase,
            });
        }
        if height > change.deadline {
            return Err(Rejection::DeadlinePassed {
                deadline: change.deadline,
            });
        }
        let (view, ceremony_number) = (change.view, change.ceremony_number);
        let live = self.live.as_mut().ok_or(Rejection::NoViewChange)?;
        // The board changes only on success or on a fault of the author (documented by
        // `Board::apply` and `ComplaintBoard::apply`); every other refusal leaves it as it was,
        // so it is a rejection here.
        let (author, kind, result) = match (authentic_post(live, sender, post)?, &mut live.board) {
            (AuthenticPost::AckReveal(signed), LiveBoard::AckReveal(board)) => {
                let kind = match &signed.post {
                    Post::Contribution(_) => "contribution",
                    Post::Publication(_) => "publication",
                };
                let result = match board.apply(&signed) {
                    Ok(()) => Ok(()),
                    Err(BoardError::Fault { fault, .. }) => Err(fault),
                    Err(e) => return Err(Rejection::Board(e)),
                };
                (signed.post.dealer(), kind, result)
            }
            (AuthenticPost::Complaint(signed), LiveBoard::Complaint(board)) => {
                let kind = complaint_kind(&signed.post);
                let result = match board.apply(&signed) {
                    Ok(()) => Ok(()),
                    Err(ComplaintBoardError::Fault { fault, .. }) => Err(fault),
                    Err(e) => return Err(Rejection::ComplaintBoard(e)),
                };
                (signed.post.author().1, kind, result)
            }
            // `authentic_post` decodes for the running board's variant.
            _ => return Err(Rejection::NoViewChange),
        };
        let event = match result {
            Ok(()) => Event::PostAccepted {
                view,
                ceremony_number,
                dealer: author,
                kind: kind.to_string(),
                post: Bytes(post.to_vec()),
            },
            Err(fault) => Event::PostRejected {
                view,
                ceremony_number,
                dealer: author,
                reason: fault_reason(&fault),
                post: Bytes(post.to_vec()),
            },
        };
        if let Some(c) = self.state.change.as_mut() {
            c.board_log.push(BoardInput::Post {
                post: Bytes(post.to_vec()),
            });
        }
        Ok(vec![event])
    }

    pub(super) fn start_ceremony(
        &mut self,
        view: u64,
        ceremony_number: u32,
        first_ceremony_number: u32,
        banned: BTreeSet<IdentityKey>,
        at: u64,
        events: &mut Vec<Event>,
    ) {
        self.live = None;
        self.state.change = None;
        self.state.next_ceremony_number = ceremony_number + 1;
        let previous = self.state.views.get(&(view - 1)).cloned();
        let key_mode = match &previous {
            Some(_) => self.config.key_mode_for(view),
            None => KeyMode::Fresh,
        };
        let seed = previous
            .as_ref()
            .map(|p| p.seed.0)
            .unwrap_or_else(|| genesis_seed(&self.config.chain_id));
        let c = &self.config.committee;
        let variant = self.config.dkg.variant;
        let candidates: Vec<(IdentityKey, u64)> = self
            .state
            .nodes
            .values()
            .filter(|n| n.stake >= c.min_stake && !n.leaving && !banned.contains(&n.identity))
            // The complaint variant encrypts shares to verifiable keys: a node without one
            // cannot play.
            .filter(|n| variant == DkgVariant::AckReveal || n.verifiable_key.is_some())
            .map(|n| (n.identity, n.stake))
            .collect();
        let previous_members: BTreeSet<IdentityKey> = previous
            .as_ref()
            .map(|p| {
                p.magic_block
                    .block
                    .members
                    .iter()
                    .map(|m| m.identity)
                    .collect()
            })
            .unwrap_or_default();
        let committee = select_committee(
            &candidates,
            &previous_members,
            &seed,
            c.max_size as usize,
            c.keep_previous_percent,
        );
        if committee.len() < c.min_size as usize {
            let reason = format!(
                "{} eligible nodes, at least {} needed",
                committee.len(),
                c.min_size
            );
            return self.abort(view, ceremony_number, at, reason, events);
        }
        let params = match self.config.params_for(committee.len()) {
            Ok(p) => p,
            Err(e) => return self.abort(view, ceremony_number, at, e.to_string(), events),
        };
        let players: Vec<SpecParticipant> = committee
            .iter()
            .map(|id| SpecParticipant {
                identity: *id,
                encryption_key: self.state.nodes[id].encryption_key,
            })
            .collect();
        let reshare = match (key_mode, &previous) {
            (KeyMode::Reshare, Some(prev)) => {
                let block = &prev.magic_block.block;
                let dealers: Vec<&MagicBlockMember> = block
                    .members
                    .iter()
                    .filter(|m| !banned.contains(&m.identity))
                    .collect();
                if dealers.len() < block.t as usize {
                    let reason = format!(
                        "{} previous members in good standing, resharing needs {}",
                        dealers.len(),
                        block.t
                    );
                    return self.abort(view, ceremony_number, at, reason, events);
                }
                Some(SpecReshare {
                    dealers: dealers
                        .iter()
                        .map(|m| SpecParticipant {
                            identity: m.identity,
                            encryption_key: m.encryption_key,
                        })
                        .collect(),
                    dealer_indices: dealers.iter().map(|m| m.index).collect(),
                    old_threshold: block.t,
                    group_key: block.group_key,
                    public_shares: dealers.iter().map(|m| m.public_share).collect(),
                })
            }
            _ => None,
        };
        let spec = CeremonySpec {
            domain: Bytes(session_domain(&self.config.chain_id, view, ceremony_number)),
            view,
            ceremony_number,
            n: params.n() as u32,
            t: params.t() as u32,
            k: params.k() as u32,
            players,
            reshare,
            variant,
            verifiable_keys: match variant {
                DkgVariant::AckReveal => Vec::new(),
                DkgVariant::Complaint => committee
                    .iter()
                    .filter_map(|id| self.state.nodes[id].verifiable_key)
                    .collect(),
            },
        };
        let ceremony = match spec.ceremony() {
            Ok(c) => c,
            Err(e) => return self.abort(view, ceremony_number, at, e.to_string(), events),
        };
        let session_id = Hex(*ceremony.id());
        // The complaint variant has no commitments on chain before the deals: it starts in the
        // share phase (deals point to point), and each of its board phases after that is a
        // publish phase.
        let (first_phase, length) = match variant {
            DkgVariant::AckReveal => (ViewChangePhase::Contribute, self.config.phases.contribute),
            DkgVariant::Complaint => (ViewChangePhase::Share, self.config.phases.share),
        };
        let deadline = at.saturating_add(length);
        events.push(Event::CommitteeSelected {
            view,
            ceremony_number,
            key_mode,
            session_id,
            committee: self.committee_entries(&committee),
            dealers: spec
                .reshare
                .as_ref()
                .map(|r| r.dealers.iter().map(|d| d.identity).collect())
                .unwrap_or_default(),
            spec: spec.clone(),
        });
        events.push(Event::PhaseChanged {
            view,
            ceremony_number,
            attempt: 0,
            phase: first_phase,
            deadline,
        });
        self.live = Some(Live {
            board: LiveBoard::new(&ceremony),
            ceremony,
        });
        self.state.change = Some(ViewChange {
            view,
            ceremony_number,
            first_ceremony_number,
            key_mode,
            phase: first_phase,
            deadline,
            attempt: 0,
            started_at: at,
            seed: Hex(seed),
            session_id,
            spec,
            board_log: Vec::new(),
            banned,
            magic: None,
        });
    }

    pub(crate) fn committee_entries(&self, committee: &[IdentityKey]) -> Vec<CommitteeEntry> {
        committee
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let node = self.state.nodes.get(id);
                CommitteeEntry {
                    index: i as u64 + 1,
                    identity: *id,
                    stake: node.map(|n| n.stake).unwrap_or(0),
                    network: node.map(|n| n.network.clone()).unwrap_or(NetworkIdentity {
                        peer_id: Bytes(Vec::new()),
                        addresses: Vec::new(),
                    }),
                }
            })
            .collect()
    }

    pub(super) fn abort(
        &mut self,
        view: u64,
        ceremony_number: u32,
        at: u64,
        reason: String,
        events: &mut Vec<Event>,
    ) {
        self.live = None;
        self.state.change = None;
        let retry_at = at.saturating_add(self.config.retry_delay);
        self.state.next_start = retry_at;
        events.push(Event::ViewChangeAborted {
            view,
            ceremony_number,
            reason,
            retry_at,
        });
        events.push(Event::PhaseChanged {
            view,
            ceremony_number,
            attempt: 0,
            phase: ViewChangePhase::Idle,
            deadline: retry_at,
        });
    }

    /// Whether every post the current phase expects is in (see [`Contract::end_block`]).
    pub(super) fn phase_complete(&self) -> bool {
        let Some(change) = self.state.change.as_ref() else {
            return false;
        };
        match change.phase {
            ViewChangePhase::Idle => false,
            ViewChangePhase::Contribute | ViewChangePhase::Share | ViewChangePhase::Publish => {
                // The complaint variant closes its deal and report phases with the last
                // report, and its justify, Feldman, complain and reconstruct phases with their
                // last expected post; its dispute phase, whose posts come only from players
                // whose check of a pair sent again failed, runs to its deadline.
                self.live.as_ref().is_some_and(|l| match &l.board {
                    LiveBoard::AckReveal(b) => b.all_posts_in(),
                    LiveBoard::Complaint(b) => b.all_posts_in(),
                })
            }
            ViewChangePhase::Wait => change.magic.as_ref().is_some_and(|m| m.is_complete()),
        }
    }

    /// Ends the current phase at height `at`: its deadline, or the block where its last
    /// expected post landed.
    pub(super) fn on_deadline(&mut self, at: u64, events: &mut Vec<Event>) {
        let Some(change) = self.state.change.as_ref() else {
            return;
        };
        let (view, ceremony_number, attempt, phase) = (
            change.view,
            change.ceremony_number,
            change.attempt,
            change.phase,
        );
        let phases = self.config.phases.clone();
        if phase == ViewChangePhase::Wait {
            return self.wait_deadline(at, events);
        }
        // Contribute, share or publish: one board deadline, exactly as every node sees it.
        let Some(live) = self.live.as_mut() else {
            // Cannot happen (the board exists in these phases); end the ceremony rather than
            // loop.
            return self.fail_ceremony(at, BTreeSet::new(), "board missing".into(), events);
        };
        let dropped = match &mut live.board {
            LiveBoard::AckReveal(b) => {
                b.advance();
                Vec::new()
            }
            LiveBoard::Complaint(b) => advance_reporting_drops(b),
        };
        self.report_dropped_posts(
            (FaultCeremony::ViewChange, view, ceremony_number),
            dropped,
            events,
        );
        let Some(live) = self.live.as_mut() else {
            return;
        };
        /// What a board deadline leads to.
        enum Step {
            /// The next contract phase, with its length.
            Next(ViewChangePhase, u64),
            /// The ack-or-reveal board retries its publish phase without the culprits.
            Retry,
            /// The ceremony is decided.
            Decided,
        }
        let (step, board_attempt, named, failure) = match &live.board {
            LiveBoard::AckReveal(b) => {
                let step = match (phase, b.phase()) {
                    (ViewChangePhase::Contribute, _) => {
                        Step::Next(ViewChangePhase::Share, phases.share)
                    }
                    (ViewChangePhase::Share, _) => {
                        Step::Next(ViewChangePhase::Publish, phases.publish)
                    }
                    (_, BoardPhase::Publish) => Step::Retry,
                    _ => Step::Decided,
                };
                (
                    step,
                    b.attempt(),
                    b.named().to_vec(),
                    b.failure_reason().map(|r| r.to_string()),
                )
            }
            // One attempt; every board phase after the deals is a publish phase.
            LiveBoard::Complaint(b) => {
                let step = match b.phase() {
                    ComplaintBoardPhase::Done => Step::Decided,
                    _ => Step::Next(ViewChangePhase::Publish, phases.publish),
                };
                (
                    step,
                    0,
                    Vec::new(),
                    b.failure_reason().map(|r| r.to_string()),
                )
            }
        };
        let outcome = live.board.outcome().cloned();
        if let Some(c) = self.state.change.as_mut() {
            c.board_log.push(BoardInput::Deadline);
        }
        events.push(Event::BoardDeadline {
            view,
            ceremony_number,
            attempt,
        });
        let (next, length) = match step {
            Step::Next(next, length) => (next, length),
            Step::Retry => {
                // The attempt failed with culprits and the board retries the publish phase
                // without them, keeping every honest contribution, share and ack.
                if let Some(Outcome::Failure { exclusions, .. }) = &outcome {
                    self.record_exclusions(exclusions, &named, at, events);
                }
                (ViewChangePhase::Publish, phases.publish)
            }
            Step::Decided => {
                return match outcome {
                    Some(Outcome::Success { exclusions, .. }) => {
                        self.record_exclusions(&exclusions, &named, at, events);
                        self.create_magic_block(at, &exclusions, events)
                    }
                    Some(Outcome::Failure {
                        qualified,
                        exclusions,
                        ..
                    }) => {
                        self.record_exclusions(&exclusions, &named, at, events);
                        let culprits = penalised(&exclusions);
                        let reason = match failure {
                            Some(r) => r,
                            None => format!("{} dealers qualified", qualified.len()),
                        };
                        self.fail_ceremony(at, culprits, reason, events)
                    }
                    None => self.fail_ceremony(at, BTreeSet::new(), "no outcome".into(), events),
                };
            }
        };
        let deadline = at.saturating_add(length);
        if let Some(c) = self.state.change.as_mut() {
            c.phase = next;
            c.deadline = deadline;
            c.attempt = board_attempt;
        }
        events.push(Event::PhaseChanged {
            view,
            ceremony_number,
            attempt: board_attempt,
            phase: next,
            deadline,
        });
    }

    /// A ceremony failed: its culprits are banned from the rest of this view change and a new
    /// ceremony starts at once (without going back to a full restart), or, after the configured
    /// number of ceremonies, the view change is abandoned until `retry_delay` later.
    pub(super) fn fail_ceremony(
        &mut self,
        at: u64,
        culprits: BTreeSet<IdentityKey>,
        reason: String,
        events: &mut Vec<Event>,
    ) {
        let Some(change) = self.state.change.take() else {
            return;
        };
        self.live = None;
        let next = change.ceremony_number + 1;
        let more = next - change.first_ceremony_number < self.config.max_ceremonies_per_view;
        events.push(Event::CeremonyFailed {
            view: change.view,
            ceremony_number: change.ceremony_number,
            reason: reason.clone(),
            culprits: culprits.iter().copied().collect(),
            next_ceremony_number: more.then_some(next),
        });
        if more {
            let mut banned = change.banned;
            banned.extend(culprits);
            self.start_ceremony(
                change.view,
                next,
                change.first_ceremony_number,
                banned,
                at,
                events,
            );
        } else {
            self.abort(change.view, change.ceremony_number, at, reason, events);
        }
    }
}

/// Ends a complaint board's phase; at the reconstruct deadline, the players whose
/// reconstruction post it dropped there, with their identities
/// ([`ComplaintBoard::dropped_reconstructions`]).
pub(super) fn advance_reporting_drops<C: keyquorum_crypto::Curve>(
    board: &mut ComplaintBoard<C>,
) -> Vec<(u32, IdentityKey)> {
    let closing = board.phase() == ComplaintBoardPhase::Reconstruct;
    board.advance();
    if !closing {
        return Vec::new();
    }
    board
        .dropped_reconstructions()
        .iter()
        .filter_map(|&p| {
            let player = board.ceremony().players().get(p as usize)?;
            Some((p, key_of(&player.identity)))
        })
        .collect()
}

impl Contract {
    /// Says which posts a deadline dropped after they were reported taken, and counts each in
    /// its author's `refused_posts`, as if refused on arrival (module docs of [`Event`],
    /// `PostDropped`).
    pub(super) fn report_dropped_posts(
        &mut self,
        (ceremony, view, ceremony_number): (FaultCeremony, u64, u32),
        dropped: Vec<(u32, IdentityKey)>,
        events: &mut Vec<Event>,
    ) {
        for (player, identity) in dropped {
            if let Some(n) = self.state.nodes.get_mut(&identity) {
                n.refused_posts = n.refused_posts.saturating_add(1);
            }
            events.push(Event::PostDropped {
                ceremony,
                view,
                ceremony_number,
                player,
                identity,
                reason: Rejection::ComplaintBoard(ComplaintBoardError::BadSignature)
                    .code()
                    .to_string(),
            });
        }
    }
}
