//! Chain events: the contract's [`Follower`] turns them into steps (the rules), which the driver
//! acts on; the rest of an event (registry, phase timings, faults on chain) is noted here.

use super::history::Replayed;
use super::*;
use crate::chain::FaultReport;

impl Driver {
    /// One event: the follower's steps for it (the rules of following the chain), then what
    /// the node notes about it besides its ceremony (registry, metrics, logs).
    pub(super) fn on_event(
        &mut self,
        e: &Event,
        height: u64,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        if self.on_signing_event(e, height, batch, effects)? {
            return Ok(());
        }
        for step in self.follower.event(e) {
            self.on_step(step, height, batch, effects)?;
        }
        self.note_event(e, height, effects);
        Ok(())
    }

    pub(super) fn on_step(
        &mut self,
        step: Step,
        height: u64,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        match step {
            Step::CeremonyStarted {
                view,
                ceremony_number,
                ceremony,
                role,
                spec,
            } => self.on_ceremony_started(
                view,
                ceremony_number,
                ceremony,
                role,
                &spec,
                height,
                batch,
                effects,
            )?,
            Step::CeremonyRefused {
                view,
                ceremony_number,
                reason,
            } => {
                if self.replayed(Replayed::CeremonyNotJoined, height) {
                    debug!(view, ceremony_number, %reason, "replayed: not taking part in this ceremony");
                } else {
                    warn!(view, ceremony_number, %reason, "not taking part in this ceremony");
                }
            }
            Step::Posts(posts) => self.feed_posts(posts, batch, effects)?,
            Step::Deadline => {
                self.feed(Input::Deadline, batch, effects)?;
                if self.fault == Fault::Crash
                    && !self.state.crashed_once
                    && self.live.as_ref().is_some_and(|l| l.node.is_participant())
                    && self.live.as_ref().is_some_and(|l| match l.node.board() {
                        Some(b) => b.phase() == BoardPhase::Share,
                        // The complaint variant's first board phase after the deals.
                        None => l
                            .node
                            .complaint_board()
                            .is_some_and(|b| b.phase() == ComplaintBoardPhase::Report),
                    })
                {
                    warn!("fault injection: crashing at the start of the share phase");
                    self.state.crashed_once = true;
                    effects.push(Effect::Crash);
                }
            }
            Step::CeremonyEnded { .. } => self.end_ceremony(batch, effects)?,
            Step::MagicBlock {
                view,
                ceremony_number,
                hash,
                block,
                index,
            } => self.on_magic_block(view, ceremony_number, &hash, &block, index, effects)?,
            Step::ViewActivated { view, hash, .. } => {
                self.on_view_activated(view, &hash, height, batch, effects)?;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_ceremony_started(
        &mut self,
        view: u64,
        ceremony_number: u32,
        ceremony: Arc<Ceremony<G>>,
        role: SeatRole,
        spec: &CeremonySpec,
        height: u64,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        let reshare = ceremony.reshare().is_some();
        let pending = pending_status(view, ceremony_number, &ceremony, &self.me, role.as_str());
        self.observe(Observation::CeremonySelected(pending));
        info!(
            view,
            ceremony_number,
            n = ceremony.n(),
            role = role.as_str(),
            reshare,
            "committee selected"
        );
        let seated = role.takes_part() || self.state.shares.iter().any(|s| s.view + 1 == view);
        if seated && let Err(why) = self.check_player_keys(spec, ceremony.config().variant) {
            if self.replayed(Replayed::CeremonyNotJoined, height) {
                debug!(
                    view,
                    ceremony_number,
                    why,
                    "replayed: the ceremony's spec names keys its players did not set"
                );
            } else {
                warn!(
                    view,
                    ceremony_number,
                    why,
                    "the ceremony's spec names keys its players did not set; not taking part"
                );
            }
            self.fault_seen("ceremony_spec_mismatch");
            return Ok(());
        }
        let seat = if role.takes_part() {
            // Selected in a block this node is catching up on (after a restart, or with a lost
            // database): it may have contributed already, and decides once caught up.
            if self.behind(height) {
                Some(Seat::CatchingUp)
            } else {
                Some(Seat::Participant)
            }
        } else if self.state.shares.iter().any(|s| s.view + 1 == view) {
            // A previous member outside the ceremony signs the handover: it follows the board
            // to check the magic block.
            Some(Seat::Observer)
        } else {
            None
        };
        if let Some(seat) = seat
            && self.fault != Fault::Silent
        {
            self.start_ceremony(
                (view, ceremony_number),
                ceremony,
                spec,
                seat,
                batch,
                effects,
            )?;
        }
        Ok(())
    }

    /// A spec names the key each player's shares are encrypted to, so each must be the one the
    /// player registered (`Registered`) and, in the complaint variant, the verifiable-encryption
    /// key it set (`VerifiableKeySet`), both recorded by this node: otherwise a chain could
    /// name keys of its choosing and read the shares. Checked before this node deals, plays or
    /// follows the board to sign the handover, for view-change and signing-key ceremonies alike.
    pub(super) fn check_player_keys(
        &self,
        spec: &CeremonySpec,
        variant: Variant,
    ) -> Result<(), &'static str> {
        for p in &spec.players {
            if !self.key_recorded(
                &self.state.encryption_keys,
                &p.identity,
                &hex::encode(p.encryption_key.0),
            ) {
                return Err("a player's encryption key is not the one it registered");
            }
        }
        if variant == Variant::Complaint {
            self.check_verifiable_keys(spec)?;
        }
        Ok(())
    }

    fn check_verifiable_keys(&self, spec: &CeremonySpec) -> Result<(), &'static str> {
        if spec.verifiable_keys.len() != spec.players.len() {
            return Err("not one verifiable-encryption key per player");
        }
        for (p, key) in spec.players.iter().zip(&spec.verifiable_keys) {
            if !self.key_recorded(&self.state.verifiable_keys, &p.identity, &key.to_string()) {
                return Err("a player's verifiable-encryption key is not the one it set on chain");
            }
        }
        Ok(())
    }

    /// Whether `key` is the one recorded for `identity`; with no record, whether this
    /// database predates the records ([`NodeState::keys_recorded_from_start`]).
    fn key_recorded(
        &self,
        recorded: &std::collections::BTreeMap<String, String>,
        identity: &Hex<96>,
        key: &str,
    ) -> bool {
        match recorded.get(&hex::encode(identity.0)) {
            Some(k) => k == key,
            None => !self.state.keys_recorded_from_start,
        }
    }

    /// What the node notes about an event besides the ceremony it follows: the registry of
    /// network identities, phase timings, faults recorded on chain, and the magic block
    /// awaiting signatures when its ceremony fails.
    pub(super) fn note_event(&mut self, e: &Event, height: u64, effects: &mut Vec<Effect>) {
        match e {
            Event::PostRejected {
                view,
                ceremony_number,
                dealer,
                reason,
                post,
            } => {
                let name = reason.split(':').next().unwrap_or(reason);
                self.fault_seen(name);
                // Where the chain slashes only on a proof, the runtime sends one; the chain's
                // adapter decides whether the fault is provable.
                effects.push(Effect::Submit(Box::new(Submission {
                    action: ChainAction::ProveFault(FaultReport {
                        view: *view,
                        ceremony_number: *ceremony_number,
                        dealer: *dealer,
                        post: post.0.clone(),
                    }),
                    kind: "fault_proof",
                    expires: None,
                })));
            }
            // The board replicas drop the post by themselves; this says whose it was.
            Event::PostDropped {
                ceremony,
                view,
                player,
                identity,
                reason,
                ..
            } => {
                let ours = identity.0 == self.me.to_bytes();
                let kind = if ours {
                    Replayed::PostOfOursDropped
                } else {
                    Replayed::PostDropped
                };
                if self.replayed(kind, height) {
                    debug!(view, player, ?ceremony, %reason, "replayed: a post was dropped at the deadline");
                } else if ours {
                    error!(view, player, ?ceremony, %reason, "this node's post was dropped at the deadline");
                } else {
                    warn!(view, player, ?ceremony, %reason, "a post was dropped at the deadline");
                }
            }
            Event::Registered {
                identity, network, ..
            }
            | Event::NetworkUpdated { identity, network } => {
                self.state
                    .registry
                    .insert(hex::encode(identity.0), network.clone());
                if let Event::Registered { encryption_key, .. } = e {
                    self.state
                        .encryption_keys
                        .insert(hex::encode(identity.0), hex::encode(encryption_key.0));
                }
                if identity.0 == self.me.to_bytes() {
                    if matches!(e, Event::Registered { .. }) {
                        info!(height, "registered on chain");
                        self.state.registered = true;
                        self.state.deregistered_at = None;
                        self.observe(Observation::Registration { registered: true });
                    }
                } else {
                    effects.push(Effect::Learn {
                        identity: identity.0.to_vec(),
                        network: network.clone(),
                    });
                }
            }
            Event::VerifiableKeySet { identity, key } => {
                // Set once per registration, as the contract allows.
                self.state
                    .verifiable_keys
                    .entry(hex::encode(identity.0))
                    .or_insert_with(|| key.to_string());
                if identity.0 == self.me.to_bytes() {
                    info!(height, "verifiable-encryption key set on chain");
                    self.state.verifiable_key_set = true;
                }
            }
            Event::Deregistered { identity, .. } => {
                self.state.registry.remove(&hex::encode(identity.0));
                self.state.verifiable_keys.remove(&hex::encode(identity.0));
                self.state.encryption_keys.remove(&hex::encode(identity.0));
                if identity.0 == self.me.to_bytes() {
                    self.state.registered = false;
                    if self.state.rejoining {
                        info!(
                            height,
                            "deregistered on chain before this start with --rejoin: registering \
                             again once caught up"
                        );
                    } else {
                        info!(height, "deregistered on chain");
                        self.state.deregistered_at = Some(height);
                    }
                    self.observe(Observation::Registration { registered: false });
                }
            }
            Event::LeaveCancelled { identity } if identity.0 == self.me.to_bytes() => {
                info!(
                    height,
                    "scheduled deregistration cancelled: this node is selected again"
                );
            }
            Event::LeaveScheduled { identity } if identity.0 == self.me.to_bytes() => {
                info!(
                    height,
                    "deregistration scheduled: this node is no longer selected, and it is \
                     deregistered once its stake is free (after the views and ceremonies it \
                     sits in)"
                );
            }
            Event::PhaseChanged {
                view,
                ceremony_number,
                attempt,
                phase,
                deadline,
            } => {
                let name = phase.as_str().to_string();
                self.phase_deadline = *deadline;
                self.state.phase = Some(PhaseRecord {
                    name: name.clone(),
                    deadline: *deadline,
                    attempt: *attempt,
                });
                debug!(view, ceremony_number, attempt, phase = %name, deadline, "phase");
                let replayed = self.is_history(height);
                self.observe(Observation::PhaseChanged {
                    phase: name,
                    deadline: *deadline,
                    attempt: *attempt,
                    replayed,
                });
            }
            Event::CeremonyFailed {
                view,
                ceremony_number,
                reason,
                ..
            } => {
                if self.replayed(Replayed::CeremonyFailed, height) {
                    debug!(view, ceremony_number, %reason, "replayed: ceremony failed");
                } else {
                    warn!(view, ceremony_number, %reason, "ceremony failed");
                }
                if self
                    .state
                    .pending_magic
                    .as_ref()
                    .is_some_and(|p| p.view == *view && p.ceremony_number == *ceremony_number)
                {
                    self.state.pending_magic = None;
                }
            }
            Event::ViewChangeAborted {
                view,
                ceremony_number,
                reason,
                retry_at,
            } => {
                if self.replayed(Replayed::ViewChangeAborted, height) {
                    debug!(view, ceremony_number, %reason, retry_at, "replayed: view change aborted");
                } else if self.aborts.is_news((*view, reason.clone())) {
                    warn!(
                        view,
                        ceremony_number,
                        %reason,
                        retry_at,
                        "view change aborted (retries for the same reason are logged at debug level)"
                    );
                } else {
                    debug!(view, ceremony_number, %reason, retry_at, "view change aborted again");
                }
                self.state.pending_magic = None;
                self.observe(Observation::ViewChangeAborted);
            }
            Event::Slashed { record } => {
                self.fault_seen(&record.fault);
                if record.ceremony == keyquorum_contract::state::FaultCeremony::SigningKey {
                    // Kept for the next view's signing-key spec check; older views' go.
                    let current = self.state.current_view;
                    self.state
                        .signing_key_slashings
                        .retain(|r| r.view + 1 >= current);
                    self.state.signing_key_slashings.push(record.clone());
                    if record.identity.0 == self.me.to_bytes() {
                        self.observe(Observation::SigningKeySlashed { view: record.view });
                    }
                }
                let ours = record.identity.0 == self.me.to_bytes();
                let kind = if ours {
                    Replayed::FaultOfOurs
                } else {
                    Replayed::Fault
                };
                let (view, fault, amount) = (record.view, &record.fault, record.amount);
                let identity = hex::encode(&record.identity.0[..8]);
                if self.replayed(kind, height) {
                    debug!(view, %identity, %fault, amount, "replayed: fault recorded on chain");
                } else if ours {
                    warn!(view, %fault, amount, stake_after = record.stake_after, "the chain charged this node a fault");
                } else {
                    info!(view, %identity, %fault, amount, "fault recorded on chain");
                }
            }
            _ => {}
        }
    }
}
