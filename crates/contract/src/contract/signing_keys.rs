//! Signing keys: the secp256k1 key each view's committee makes after the view activates
//! ([`crate::signing_key`]): its ceremony's start, posts and deadlines, and the record.

use std::sync::Arc;

use keyquorum_dkg::Ceremony;
use keyquorum_dkg::complaint::messages::SignedComplaintPost;
use keyquorum_dkg::complaint::{
    ComplaintBoard, ComplaintBoardError, ComplaintBoardPhase, author_key,
    check_authentic as check_complaint_authentic,
};
use keyquorum_dkg::identity::IdentityPublicKey;

use crate::error::Rejection;
use crate::events::Event;
use crate::hex::{Bytes, Hex};
use crate::signing_key::{
    SigningCurve, SigningKeyRecord, SigningKeyRun, signing_ceremony, signing_key_spec,
};
use crate::state::BoardInput;

use super::{Contract, RestoreError};

/// The running signing-key ceremony and its board.
#[derive(Clone)]
pub(super) struct SigningLive {
    pub(super) ceremony: Arc<Ceremony<SigningCurve>>,
    pub(super) board: ComplaintBoard<SigningCurve>,
}

impl SigningLive {
    fn new(ceremony: Arc<Ceremony<SigningCurve>>) -> Self {
        SigningLive {
            board: ComplaintBoard::new(ceremony.clone()),
            ceremony,
        }
    }

    /// The board rebuilt from a stored run's log.
    pub(super) fn restore(run: &SigningKeyRun) -> Result<Self, RestoreError> {
        let mut live = SigningLive::new(signing_ceremony(&run.spec)?);
        for input in &run.board_log {
            match input {
                BoardInput::Post { post } => {
                    let signed = live.decode(&post.0).map_err(|_| RestoreError::BoardLog)?;
                    let _ = live.board.apply(&signed);
                }
                BoardInput::Deadline => live.board.advance(),
            }
        }
        Ok(live)
    }

    fn decode(&self, post: &[u8]) -> Result<SignedComplaintPost<SigningCurve>, Rejection> {
        let c = &self.ceremony;
        SignedComplaintPost::<SigningCurve>::decode(post, c.n(), c.dealer_count())
            .map_err(Rejection::MalformedPost)
    }

    /// `post` as `sender` may post it: it decodes, belongs to this session, its author exists
    /// and is the sender, and its signature is the author's (the board's own check).
    pub(super) fn authentic(
        &self,
        sender: &IdentityPublicKey,
        post: &[u8],
    ) -> Result<SignedComplaintPost<SigningCurve>, Rejection> {
        let signed = self.decode(post)?;
        if signed.post.session() != self.ceremony.id() {
            return Err(Rejection::WrongSession);
        }
        let (role, index) = signed.post.author();
        let author = author_key(&self.ceremony, role, index).ok_or(Rejection::ComplaintBoard(
            ComplaintBoardError::UnknownAuthor(role, index),
        ))?;
        if author != sender {
            return Err(Rejection::NotPostAuthor);
        }
        check_complaint_authentic(&self.ceremony, &signed).map_err(Rejection::ComplaintBoard)?;
        Ok(signed)
    }
}

impl Contract {
    /// View `view` is active: its committee starts making its signing key, if the chain has
    /// one configured. A ceremony of an earlier view still running ends without a key.
    pub(super) fn start_signing_key(&mut self, view: u64, at: u64, events: &mut Vec<Event>) {
        if self.config.dkg.signing_key.is_none() {
            return;
        }
        if let Some(old) = self.state.signing.take() {
            self.signing_live = None;
            events.push(Event::SigningKeyFailed {
                view: old.view,
                reason: format!("view {view} activated before the key was made"),
            });
        }
        let Some(record) = self.state.views.get(&view) else {
            return;
        };
        let nodes = &self.state.nodes;
        let spec = match signing_key_spec(&self.config, &record.magic_block.block, |id| {
            nodes.get(id).and_then(|n| n.verifiable_key)
        }) {
            Ok(spec) => spec,
            Err(e) => {
                events.push(Event::SigningKeyFailed {
                    view,
                    reason: e.to_string(),
                });
                return;
            }
        };
        let ceremony = match signing_ceremony(&spec) {
            Ok(c) => c,
            Err(e) => {
                events.push(Event::SigningKeyFailed {
                    view,
                    reason: e.to_string(),
                });
                return;
            }
        };
        let session_id = Hex(*ceremony.id());
        let deadline = at.saturating_add(self.config.phases.share);
        events.push(Event::SigningKeyStarted {
            view,
            session_id,
            spec: spec.clone(),
            deadline,
        });
        self.signing_live = Some(SigningLive::new(ceremony));
        self.state.signing = Some(SigningKeyRun {
            view,
            session_id,
            spec,
            deadline,
            board_log: Vec::new(),
        });
    }

    /// A `SigningKeyPost`: an authentic post of the running signing-key ceremony goes to its
    /// board, which alone decides what it means; a post the board refuses is taken as its
    /// author's fault, as in the view's ceremonies.
    pub(super) fn signing_key_post(
        &mut self,
        sender: &IdentityPublicKey,
        post: &[u8],
        height: u64,
    ) -> Result<Vec<Event>, Rejection> {
        let (Some(run), Some(live)) = (self.state.signing.as_mut(), self.signing_live.as_mut())
        else {
            return Err(Rejection::NoSigningKeyCeremony);
        };
        if height > run.deadline {
            return Err(Rejection::DeadlinePassed {
                deadline: run.deadline,
            });
        }
        let signed = live.authentic(sender, post)?;
        let accepted = match live.board.apply(&signed) {
            Ok(()) => true,
            // A fault of its author, which the board recorded.
            Err(ComplaintBoardError::Fault { .. }) => false,
            // Nothing changed on the board: refused, as a transaction.
            Err(e) => return Err(Rejection::ComplaintBoard(e)),
        };
        run.board_log.push(BoardInput::Post {
            post: Bytes(post.to_vec()),
        });
        Ok(vec![Event::SigningKeyBoardPost {
            view: run.view,
            post: Bytes(post.to_vec()),
            accepted,
        }])
    }

    /// A board deadline of the signing-key ceremony at height `at`.
    pub(super) fn signing_key_deadline(&mut self, at: u64, events: &mut Vec<Event>) {
        let (Some(run), Some(live)) = (self.state.signing.as_mut(), self.signing_live.as_mut())
        else {
            self.state.signing = None;
            self.signing_live = None;
            return;
        };
        live.board.advance();
        run.board_log.push(BoardInput::Deadline);
        let view = run.view;
        if live.board.phase() != ComplaintBoardPhase::Done {
            run.deadline = at.saturating_add(self.config.phases.publish);
            events.push(Event::SigningKeyDeadline {
                view,
                next_deadline: Some(run.deadline),
            });
            return;
        }
        events.push(Event::SigningKeyDeadline {
            view,
            next_deadline: None,
        });
        let record = SigningKeyRecord::from_board(&live.board);
        self.state.signing = None;
        self.signing_live = None;
        match record {
            Some(key) => {
                if let Some(v) = self.state.views.get_mut(&view) {
                    v.signing_key = Some(key.clone());
                }
                events.push(Event::SigningKeyCreated { view, key });
            }
            None => events.push(Event::SigningKeyFailed {
                view,
                reason: "too few dealers qualified".into(),
            }),
        }
    }
}
