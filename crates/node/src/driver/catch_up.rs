//! A node catching up with the chain (after a restart or a lost database): a ceremony selected
//! below the chain's head is followed until the node has caught up, then joined or sat out (module
//! docs of [`super`], "A lost database").

use super::*;

impl Driver {
    /// The chain's height as the runtime last saw it. A ceremony selected below it was selected
    /// while this node was catching up; once the node has processed the head, it takes part
    /// in that ceremony or sits it out (module docs, "A lost database").
    pub fn set_head(&mut self, height: u64) -> Result<Vec<Effect>, DriverError> {
        let head = self.head.map_or(height, |h| h.max(height));
        self.head = Some(head);
        let mut effects = Vec::new();
        if self.state.cursor > head && self.catching_up() {
            let mut batch = self.store.begin()?;
            self.settle_catching_up(&mut batch, &mut effects)?;
            self.commit(batch)?;
        }
        Ok(effects)
    }

    pub(super) fn catching_up(&self) -> bool {
        self.state
            .ceremony
            .as_ref()
            .is_some_and(|s| s.seat == Seat::CatchingUp)
    }

    /// Caught up with the chain, in a ceremony selected meanwhile: if this node's contribution
    /// is on the board, the seed behind it is lost (a node that had it would have resumed the
    /// ceremony, not started it again), so it sits the ceremony out; otherwise it takes part
    /// from here, its participant fed everything the board has seen so far.
    pub(super) fn settle_catching_up(
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
        // In the complaint variant deals leave no trace on the chain, so a dealer cannot tell
        // whether it dealt before its state was lost: it sits out rather than risk dealing
        // twice ([`Runner::may_have_dealt`]).
        let contributed = ceremony
            .dealer_position(&self.me)
            .is_some_and(|d| live.node.may_have_dealt(d));
        if contributed {
            error!(
                view = rec.view,
                ceremony_number = rec.ceremony_number,
                "this node's contribution is on the board but its state for it is lost \
                 (database lost or restored from an old backup?); sitting this ceremony out \
                 instead of dealing again"
            );
            self.fault_seen("sat_out_lost_state");
            self.observe(Observation::CeremonySatOut {
                view: rec.view,
                ceremony_number: rec.ceremony_number,
            });
            rec.seat = Seat::SittingOut;
            self.state.ceremony = Some(rec);
            return Ok(());
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(seed.as_mut());
        let Some(runner) = self.new_participant(&ceremony, rec.view, *seed)? else {
            rec.seat = Seat::Observer;
            self.state.ceremony = Some(rec);
            return Ok(());
        };
        info!(
            view = rec.view,
            ceremony_number = rec.ceremony_number,
            "caught up with the chain; taking part in the running ceremony"
        );
        let seen = batch.inputs(&id)?;
        batch.delete_inputs(&id)?;
        self.put_secret(batch, &format!("seed/{}", rec.session_id), seed.as_slice())?;
        rec.seat = Seat::Participant;
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
