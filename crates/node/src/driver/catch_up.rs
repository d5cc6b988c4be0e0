//! A node catching up with the chain (after a restart or a lost database): a ceremony started
//! below the chain's head, a view's or the view's signing key's, is followed until the node has
//! caught up, then joined or sat out (module docs of [`super`], "A lost database").
//!
//! The rule, for both kinds of ceremony ([`Driver::may_have_dealt`]): a node that may have dealt
//! with a seed it no longer has sits out, since dealing again with a fresh seed would be
//! equivocation; any other node takes part, its participant fed everything the board has seen.
//! Whether it may have dealt comes from the board ([`DealTrace`]) and, where the board cannot
//! tell yet, from whether its database was the node's record before the ceremony started
//! ([`NodeState::caught_up`]).
//!
//! A node that takes part joins as a full participant only while a deal could still count;
//! past the deal window it is seated as a player only ([`Seat::Player`]) and never deals, in
//! every kind of ceremony:
//! - complaint variant (a view's, and every signing key's), once the reports are closed:
//!   until then a late dealer still counts (players that have not reported take its deals,
//!   and it posts those reported missing on the board as justifications), in the
//!   justification phase a dealer starting only then is too late for both, and after it the
//!   board shows the dealer disqualified, so the node sits out (above). Dealing in the
//!   justification phase would only risk more: a database restored from a backup and started
//!   without `--restored-from-backup` may have been superseded by a copy that dealt, and a
//!   fresh deal would give a player a second commitment signed by the same dealer, which is
//!   proof of equivocation. As a player it proves bad pairs, decrypts pairs sent again and
//!   posts its pairs for reconstruction where qualified. A fresh key qualifies a clique of
//!   mutual deals, so a member that did not deal ends without a share (its missing
//!   justifications are an absence, as they would be had it stayed down); a reshare's players
//!   qualify by their reports alone (a player back this late has missed its own).
//! - ack-or-reveal variant, past the contribution phase: a contribution is refused after its
//!   phase, so deals made now could never be checked; the node receives deals and acks as a
//!   player during the share phase.
//!
//! A dealer that does not play (an old committee member leaving in a reshare) has nothing to
//! do past the deal window but follow the board ([`Seat::Observer`]).

use super::*;
use crate::status::{
    SAT_OUT_CONTRIBUTION_ON_BOARD, SAT_OUT_DISQUALIFIED, SAT_OUT_NO_RECORD, SAT_OUT_SIGNING_KEY,
    SAT_OUT_VIEW, SittingOutStatus,
};

/// What a ceremony's board shows of whether a dealer dealt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DealTrace {
    /// Its contribution (or a fault of it, or its own report) is on the board.
    Shown,
    /// The board would show it by now and does not.
    Absent,
    /// The board cannot show it yet: the complaint variant's deals go point to point, and its
    /// board names them only in the players' reports.
    NotYet,
    /// Nothing of its own is on the board, but the board disqualified it (players complained
    /// of deals they did not get): a dealer that was away while the ceremony ran, or one that
    /// lost its record of dealing to players that then did not report. Taken as [`Self::Shown`].
    Disqualified,
}

/// What a complaint-variant board shows of dealer `dealer` (also player `player`, if it
/// plays): a commitment it signed, carried by a report, its disqualification or its own report
/// are its trace; once the reports are closed every reporting player has named the deals it
/// received, and a dealer none of them names did not deal to any of them.
pub(super) fn complaint_deal_trace<C: Curve>(
    board: &ComplaintBoard<C>,
    dealer: u32,
    player: Option<u32>,
) -> DealTrace {
    if board.signed_hash(dealer).is_some() || player.is_some_and(|p| board.has_report(p)) {
        DealTrace::Shown
    } else if board.is_disqualified(dealer) {
        DealTrace::Disqualified
    } else if board.phase() > ComplaintBoardPhase::Report {
        DealTrace::Absent
    } else {
        DealTrace::NotYet
    }
}

/// Whether a complaint-variant dealer joining at `phase` could still deal: until the reports
/// close. Players that have not reported yet take its deals, and it posts the ones reported
/// missing on the board in the justification phase. A dealer that starts dealing only in the
/// justification phase is too late for both (it ends disqualified, without a share); once
/// that phase is over the board shows it disqualified and the node sits out.
pub(super) fn complaint_deal_window_open(phase: ComplaintBoardPhase) -> bool {
    phase <= ComplaintBoardPhase::Report
}

/// The seat of a node that caught up in a running ceremony and may not have dealt in it:
/// a participant while a deal could still count, a player only once the deal window has
/// closed (module docs).
pub(super) fn joining_seat(deal_window_open: bool) -> Seat {
    if deal_window_open {
        Seat::Participant
    } else {
        Seat::Player
    }
}

impl Driver {
    /// The chain's height as the runtime last saw it. A ceremony selected below it was selected
    /// while this node was catching up; once the node has processed the head, it takes part
    /// in that ceremony or sits it out (module docs, "A lost database").
    pub fn set_head(&mut self, height: u64) -> Result<Vec<Effect>, DriverError> {
        let head = self.head.map_or(height, |h| h.max(height));
        if self.head != Some(head) {
            self.observe(Observation::ChainHead { height: head });
        }
        self.head = Some(head);
        let mut effects = Vec::new();
        let settle = self.catching_up() || !self.state.caught_up;
        if self.state.cursor > head {
            self.reached_head();
        }
        if self.state.cursor > head && (settle || self.state.rejoining) {
            let mut batch = self.store.begin()?;
            if settle {
                self.caught_up(&mut batch, &mut effects)?;
            }
            // Every block of before `--rejoin` is processed: a deregistration from now on is
            // a later one, recorded.
            self.state.rejoining = false;
            self.commit(batch)?;
        }
        Ok(effects)
    }

    /// Whether a block at `height` is history this node is catching up on, so that a ceremony
    /// it starts waits until the node has caught up: below the chain's head, or at it for a
    /// database that has not caught up before (a lost one may have processed that block too).
    pub(super) fn behind(&self, height: u64) -> bool {
        self.head
            .is_some_and(|h| height < h || (height == h && !self.state.caught_up))
    }

    /// Whether a ceremony, of the view or of its signing key, waits for this node to catch up.
    pub(super) fn catching_up(&self) -> bool {
        let view = self.state.ceremony.as_ref().map(|s| s.seat);
        let signing = self.state.signing_ceremony.as_ref().map(|s| s.seat);
        view == Some(Seat::CatchingUp) || signing == Some(Seat::CatchingUp)
    }

    /// Caught up with the chain: from now on this database is the node's record
    /// ([`NodeState::caught_up`]); ceremonies started meanwhile are joined or sat out.
    pub(super) fn caught_up(
        &mut self,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        self.settle_catching_up(batch, effects)?;
        self.settle_signing_catching_up(batch, effects)?;
        // After settling: those ceremonies started before this database was the node's record.
        self.state.caught_up = true;
        Ok(())
    }

    /// Whether this node, catching up, may have dealt in a ceremony whose board shows `trace`
    /// of it: the one rule for joining a ceremony started while catching up (module docs).
    /// Where the board cannot tell yet, a database that was the node's record before the
    /// ceremony started would have a record of dealing; a new one may have replaced a lost one
    /// that dealt, and a restored backup may have been superseded by a copy that dealt (which is
    /// why a restored database starts with `--restored-from-backup`, forgetting it caught up).
    pub(super) fn may_have_dealt(&self, trace: DealTrace) -> bool {
        match trace {
            DealTrace::Shown | DealTrace::Disqualified => true,
            DealTrace::Absent => false,
            DealTrace::NotYet => !self.state.caught_up,
        }
    }

    /// Sitting a ceremony out because this node may have dealt in it: said in the log, counted
    /// and shown on `/status`.
    pub(super) fn report_sitting_out(&mut self, out: SittingOutStatus) {
        if out.reason == SAT_OUT_DISQUALIFIED {
            warn!(
                view = out.view,
                ceremony = %out.ceremony,
                reason = %out.reason,
                "the board disqualified this node as a dealer in this ceremony while it was \
                 away (or its database lost the record of its deals); sitting it out"
            );
            self.fault_seen("sat_out_disqualified");
        } else {
            error!(
                view = out.view,
                ceremony = %out.ceremony,
                reason = %out.reason,
                "this node may have dealt in this ceremony but this database has no record of \
                 it (a new database, or one restored from a backup); sitting it out instead of \
                 dealing again"
            );
            self.fault_seen("sat_out_lost_state");
        }
        self.observe(Observation::CeremonySatOut(out));
    }

    /// What `/status` shows of a ceremony this node sits out (`ceremony` names its kind, see
    /// [`SittingOutStatus`]), whose board shows `trace` of this node's deal.
    pub(super) fn sat_out_status(
        &self,
        ceremony: &'static str,
        spec: &CeremonySpec,
        ceremony_number: u32,
        session_id: &str,
        trace: DealTrace,
    ) -> SittingOutStatus {
        let member_of_next = if ceremony == SAT_OUT_SIGNING_KEY {
            let me = self.me.to_bytes();
            !keyquorum_contract::signing_key::sitting_out(
                &self.state.signing_key_slashings,
                spec.view + 1,
            )
            .iter()
            .any(|id| id.0 == me)
        } else {
            self.state.registered
        };
        SittingOutStatus {
            ceremony: ceremony.into(),
            variant: spec.variant.as_str().into(),
            view: spec.view,
            ceremony_number,
            session_id: session_id.into(),
            reason: match trace {
                DealTrace::Shown => SAT_OUT_CONTRIBUTION_ON_BOARD,
                DealTrace::Disqualified => SAT_OUT_DISQUALIFIED,
                DealTrace::Absent | DealTrace::NotYet => SAT_OUT_NO_RECORD,
            }
            .into(),
            member_of_next,
        }
    }

    /// Caught up with the chain, in a view ceremony selected meanwhile: if this node may have
    /// dealt in it ([`Driver::may_have_dealt`]), the seed behind that is lost (a node that had
    /// it would have resumed the ceremony, not started it again), so it sits the ceremony out;
    /// otherwise it takes part from here, its participant fed everything the board has seen so
    /// far.
    fn settle_catching_up(
        &mut self,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        let (Some(mut rec), Some(live)) = (self.state.ceremony.clone(), self.live.as_ref()) else {
            return Ok(());
        };
        if rec.seat != Seat::CatchingUp {
            return Ok(());
        }
        let (id, ceremony) = (live.id, live.ceremony.clone());
        let trace = live.own_deal_trace(&self.me);
        if self.may_have_dealt(trace) {
            let out = self.sat_out_status(
                SAT_OUT_VIEW,
                &rec.spec,
                rec.ceremony_number,
                &rec.session_id,
                trace,
            );
            self.report_sitting_out(out);
            rec.seat = Seat::SittingOut;
            self.state.ceremony = Some(rec);
            return Ok(());
        }
        let seat = joining_seat(live.node.deal_window_open());
        if seat == Seat::Player && ceremony.player_position(&self.me).is_none() {
            // A dealer alone, past the deal window: nothing left to do but follow the board
            // (an old committee member still signs the handover).
            rec.seat = Seat::Observer;
            self.state.ceremony = Some(rec);
            self.observe_seat(&ceremony, Seat::Observer);
            return Ok(());
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(seed.as_mut());
        let Some((runner, seat)) = self.new_participant(&ceremony, rec.view, *seed, seat)? else {
            rec.seat = Seat::Observer;
            self.state.ceremony = Some(rec);
            self.observe_seat(&ceremony, Seat::Observer);
            return Ok(());
        };
        self.observe_seat(&ceremony, seat);
        info!(
            view = rec.view,
            ceremony_number = rec.ceremony_number,
            player_only = seat == Seat::Player,
            "caught up with the chain; taking part in the running ceremony"
        );
        let seen = batch.inputs(&id)?;
        batch.delete_inputs(&id)?;
        self.put_secret(batch, &format!("seed/{}", rec.session_id), seed.as_slice())?;
        rec.seat = seat;
        rec.inputs = 0;
        self.state.ceremony = Some(rec);
        self.live = Some(self.make_live(id, ceremony.clone(), runner, *seed));
        effects.push(self.enter_effect(&ceremony, id));
        // The log is rewritten in the order the participant consumes it: Start first, each run
        // of posts as one batch as when they came from the chain.
        self.feed(Input::Start, batch, effects)?;
        let mut posts = Vec::new();
        for input in seen {
            match input {
                Input::BoardPost(p) => posts.push(p),
                other => {
                    self.feed_posts(std::mem::take(&mut posts), batch, effects)?;
                    self.feed(other, batch, effects)?;
                }
            }
        }
        self.feed_posts(posts, batch, effects)?;
        self.pull_missing(effects);
        Ok(())
    }
}
