//! The view's signing key ([`keyquorum_contract::signing_key`]): this node's participant in the
//! secp256k1 complaint ceremony its committee runs after the view activates, fed from the
//! `SigningKey*` events exactly as the contract feeds its board, with deals point to point.
//!
//! When the chain's keys live as long as the chain, the ceremony reshares the latest key: its
//! holders deal their shares (also those no longer in the committee, who deal without playing)
//! and the view's members play. Before taking part a node checks the ceremony against what it
//! recorded itself (`check_signing_members`): the players are the view's members, the
//! thresholds the view's, each player's encryption keys the ones it registered and set on
//! chain, and a reshare's dealers, public key shares, threshold and group key those of the
//! latest key it recorded. A holder deals only a share that matches its public key share,
//! and plays only when it has none.
//!
//! Crash safety is the view ceremonies': the seed is sealed before `Start`, every input is
//! logged under the session id before it is consumed, and [`Driver::open`] rebuilds the
//! participant by replay (its posts are submitted again; the contract refuses duplicates).
//! A node that finds a signing-key ceremony started while it was catching up follows its board
//! until caught up, then applies the view ceremonies' rule (module docs of `catch_up`): it sits
//! out if it may have dealt with a seed it no longer has (its signed commitment or its report is
//! on the board, or the board cannot show that yet and its database is new), and otherwise
//! takes part, its participant fed everything the board has seen: as a full participant
//! until the reports close (deals reported missing go on the board as justifications), as a
//! player only in the justification phase (a deal started then is too late; it never deals,
//! and the fresh key's clique leaves it without a share).
//!
//! When the contract announces the key (`SigningKeyCreated`), the node computes the record from
//! its own replica of the board with the contract's function
//! ([`SigningKeyRecord::from_board`]) and keeps its share only if the two are equal; a
//! difference is logged and counted as a magic-block-style mismatch, and the key is not used.

use keyquorum_contract::signing_key::{
    SigningCurve, SigningKeyRecord, SigningKeyReshare, signing_ceremony,
};

use super::catch_up::{DealTrace, complaint_deal_trace, complaint_deal_window_open, joining_seat};
use super::runner::follow_complaint_board;
use super::*;
use crate::status::SAT_OUT_SIGNING_KEY;
use crate::store::{SigningCeremonyRecord, SigningKeyHeld};

/// The running signing-key ceremony in this node.
pub(super) struct SigningLive {
    pub(super) id: [u8; 32],
    pub(super) view: u64,
    pub(super) ceremony: Arc<Ceremony<SigningCurve>>,
    pub(super) runner: SigningRunner,
    /// Last block of the board phase in progress (posts made in it expire then).
    pub(super) deadline: u64,
    /// Seeds the randomness of an injected fault (`faults`), from the ceremony's seed.
    pub(super) fault_seed: [u8; 32],
}

/// What runs the signing-key ceremony in this node: its participant, or the board alone while
/// the node catches up with the chain or sits the ceremony out.
pub(super) enum SigningRunner {
    Participant(Box<ComplaintParticipant<SigningCurve>>),
    Board(Box<ComplaintBoard<SigningCurve>>),
}

impl SigningRunner {
    /// The ceremony's board as this node has it.
    fn board(&self) -> &ComplaintBoard<SigningCurve> {
        match self {
            SigningRunner::Participant(p) => p.board(),
            SigningRunner::Board(b) => b,
        }
    }

    fn handle(&mut self, input: Input) -> Vec<Action<SigningCurve>> {
        match self {
            SigningRunner::Participant(p) => p.handle(input),
            SigningRunner::Board(b) => {
                follow_complaint_board(b, input);
                Vec::new()
            }
        }
    }
}

impl SigningLive {
    /// What the board shows of whether node `me` dealt in this ceremony (nothing to show for a
    /// node that does not deal in it).
    pub(super) fn own_deal_trace(&self, me: &IdentityPublicKey) -> DealTrace {
        match self.ceremony.dealer_position(me) {
            Some(d) => {
                complaint_deal_trace(self.runner.board(), d, self.ceremony.player_position(me))
            }
            None => DealTrace::Absent,
        }
    }
}

fn fault_seed(seed: &[u8]) -> [u8; 32] {
    tagged_hash("keyquorum/node/fault-signing-key/v1", &[seed])
}

/// What `SigningKeyStarted` announces.
struct StartedSigning<'a> {
    view: u64,
    session_id: [u8; 32],
    spec: &'a CeremonySpec,
    reshare: Option<&'a SigningKeyReshare>,
    deadline: u64,
}

/// A view's signing key as this node holds it, with its share if it holds one.
pub type HeldSigningKey = (
    SigningKeyHeld,
    Option<Secret<<SigningCurve as Curve>::Scalar>>,
);

/// Signing keys kept: the last two recorded (a failed ceremony records none, so the latest key,
/// the one a reshare deals from, is always among them).
const KEPT_SIGNING_KEYS: usize = 2;

impl Driver {
    /// The part of an event that concerns signing keys (`true` if it was one of theirs).
    pub(super) fn on_signing_event(
        &mut self,
        e: &Event,
        height: u64,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<bool, DriverError> {
        match e {
            Event::SigningKeyStarted {
                view,
                session_id,
                spec,
                reshare,
                deadline,
            } => {
                self.observe(Observation::SigningKeyCeremonyStarted { view: *view });
                self.end_signing(batch, effects)?;
                let started = StartedSigning {
                    view: *view,
                    session_id: session_id.0,
                    spec,
                    reshare: reshare.as_ref(),
                    deadline: *deadline,
                };
                self.start_signing(started, height, batch, effects)?;
            }
            Event::SigningKeyBoardPost { view, post, .. } => {
                if self.signing.as_ref().is_some_and(|s| s.view == *view) {
                    self.feed_signing(Input::BoardPost(post.0.clone()), batch, effects)?;
                }
            }
            Event::SigningKeyDeadline {
                view,
                next_deadline,
            } => {
                if let Some(s) = self.signing.as_mut().filter(|s| s.view == *view) {
                    if let Some(d) = next_deadline {
                        s.deadline = *d;
                        if let Some(rec) = self.state.signing_ceremony.as_mut() {
                            rec.deadline = *d;
                        }
                    }
                    self.feed_signing(Input::Deadline, batch, effects)?;
                }
            }
            Event::SigningKeyCreated { view, key } => {
                self.on_signing_key_created(*view, key, batch, effects)?;
            }
            Event::SigningKeyFailed { view, reason } => {
                warn!(view, %reason, "no signing key for this view");
                if self.signing.as_ref().is_some_and(|s| s.view == *view) {
                    self.end_signing(batch, effects)?;
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn start_signing(
        &mut self,
        started: StartedSigning<'_>,
        height: u64,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        let StartedSigning {
            view,
            session_id,
            spec,
            reshare,
            deadline,
        } = started;
        let ceremony = match signing_ceremony(spec, reshare) {
            Ok(c) if *c.id() == session_id => c,
            Ok(_) => {
                warn!(
                    view,
                    "signing-key spec does not make the announced session; not taking part"
                );
                return Ok(());
            }
            Err(e) => {
                warn!(view, error = %e, "signing-key spec does not build; not taking part");
                return Ok(());
            }
        };
        let seated = ceremony.player_position(&self.me).is_some()
            || ceremony.dealer_position(&self.me).is_some();
        if !seated || self.fault == Fault::Silent {
            return Ok(());
        }
        if let Err(why) = self.check_signing_members(view, spec, reshare) {
            warn!(
                view,
                why, "signing-key spec is not the view's committee; not taking part"
            );
            self.fault_seen("signing_key_spec_mismatch");
            return Ok(());
        }
        let sid = session_hex(&session_id);
        let mut record = SigningCeremonyRecord {
            view,
            session_id: sid.clone(),
            spec: spec.clone(),
            reshare: reshare.cloned(),
            inputs: 0,
            deadline,
            output_position: None,
            seat: Seat::Participant,
        };
        if self.behind(height) {
            info!(
                view,
                "signing-key ceremony started while catching up; following it until caught up"
            );
            record.seat = Seat::CatchingUp;
            self.state.signing_ceremony = Some(record);
            self.signing = Some(SigningLive {
                id: session_id,
                view,
                runner: SigningRunner::Board(Box::new(ComplaintBoard::new(ceremony.clone()))),
                ceremony,
                deadline,
                fault_seed: [0; 32],
            });
            return Ok(());
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(seed.as_mut());
        let from_view = reshare.map(|r| r.from_view);
        let participant =
            match self.signing_participant(&ceremony, from_view, *seed, Seat::Participant) {
                Some(p) => p,
                None => return Ok(()),
            };
        // The seed is durable before the participant produces anything.
        self.put_secret(batch, &format!("seed/{sid}"), seed.as_slice())?;
        self.state.signing_ceremony = Some(record);
        info!(
            view,
            n = ceremony.n(),
            t = ceremony.t(),
            "signing-key ceremony: taking part"
        );
        self.signing = Some(SigningLive {
            id: session_id,
            view,
            ceremony: ceremony.clone(),
            runner: SigningRunner::Participant(participant),
            deadline,
            fault_seed: fault_seed(seed.as_slice()),
        });
        effects.push(self.signing_enter_effect(&ceremony, session_id));
        self.feed_signing(Input::Start, batch, effects)
    }

    /// Caught up with the chain, in a signing-key ceremony started meanwhile: sits it out if
    /// this node may have dealt in it ([`Driver::may_have_dealt`]), otherwise takes part from
    /// here with a fresh seed, its participant fed `Start` and then every input logged while it
    /// followed the board, in their order (the log is rewritten so, as the participant consumes
    /// it).
    pub(super) fn settle_signing_catching_up(
        &mut self,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        let (Some(mut rec), Some(live)) =
            (self.state.signing_ceremony.clone(), self.signing.as_ref())
        else {
            return Ok(());
        };
        if rec.seat != Seat::CatchingUp {
            return Ok(());
        }
        let (id, view, ceremony) = (live.id, live.view, live.ceremony.clone());
        let trace = live.own_deal_trace(&self.me);
        if self.may_have_dealt(trace) {
            let out =
                self.sat_out_status(SAT_OUT_SIGNING_KEY, &rec.spec, 0, &rec.session_id, trace);
            self.report_sitting_out(out);
            rec.seat = Seat::SittingOut;
            self.state.signing_ceremony = Some(rec);
            return Ok(());
        }
        let seat = joining_seat(complaint_deal_window_open(live.runner.board().phase()));
        let mut seed = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(seed.as_mut());
        let from_view = rec.reshare.as_ref().map(|r| r.from_view);
        let Some(participant) = self.signing_participant(&ceremony, from_view, *seed, seat) else {
            rec.seat = Seat::SittingOut;
            self.state.signing_ceremony = Some(rec);
            return Ok(());
        };
        info!(
            view,
            player_only = seat == Seat::Player,
            "caught up with the chain; taking part in the running signing-key ceremony"
        );
        let seen = batch.inputs(&id)?;
        batch.delete_inputs(&id)?;
        self.put_secret(batch, &format!("seed/{}", rec.session_id), seed.as_slice())?;
        rec.seat = seat;
        rec.inputs = 0;
        self.state.signing_ceremony = Some(rec);
        if let Some(live) = self.signing.as_mut() {
            live.runner = SigningRunner::Participant(participant);
            live.fault_seed = fault_seed(seed.as_slice());
        }
        effects.push(self.signing_enter_effect(&ceremony, id));
        self.feed_signing(Input::Start, batch, effects)?;
        for input in seen {
            self.feed_signing(input, batch, effects)?;
        }
        Ok(())
    }

    /// The chain names the signing-key ceremony's players; a node takes part only if they
    /// are the view's magic block members, in block order, without those a signing-key
    /// slashing it saw makes sit out: the rule the contract applies
    /// ([`keyquorum_contract::signing_key::signing_key_spec`]), recomputed from what this node
    /// checked itself, so a chain cannot drop honest members or shrink the thresholds' `n`.
    ///
    /// The thresholds must be the view's, less at most one for each member left out (what
    /// resolving the view's sizes for fewer members can take away), so a chain cannot lower
    /// `t` to have dealers send their polynomials' constant terms nearly in the clear. Each
    /// player's keys must be the ones it registered and set on chain (`Registered`,
    /// `VerifiableKeySet`, which this node records; [`Driver::check_player_keys`]), so a chain
    /// cannot have pairs encrypted to keys of its choosing.
    ///
    /// A reshare must be of the latest signing key this node recorded (checked against its own
    /// board's record when it held a seat in that ceremony, [`Driver::on_signing_key_created`]),
    /// its dealers that key's members less those sitting out, with their public key shares and
    /// its threshold and group key ([`SigningKeyReshare::reshares`]), so a chain cannot have a
    /// key's holders deal toward another group key or let foreign dealers in.
    fn check_signing_members(
        &self,
        view: u64,
        spec: &CeremonySpec,
        reshare: Option<&SigningKeyReshare>,
    ) -> Result<(), &'static str> {
        if spec.view != view {
            return Err("another view");
        }
        let block = self
            .state
            .beacon
            .as_ref()
            .filter(|b| b.view == view)
            .ok_or("no record of the view's magic block")?;
        let out =
            keyquorum_contract::signing_key::sitting_out(&self.state.signing_key_slashings, view);
        let expected = block
            .members
            .iter()
            .map(|m| m.identity.as_str())
            .filter(|id| !out.iter().any(|o| hex::encode(o.0) == *id));
        let named = spec.players.iter().map(|p| hex::encode(p.identity.0));
        if !expected.map(str::to_owned).eq(named) {
            return Err("players differ from the magic block's members less those sitting out");
        }
        let active = self
            .active_block
            .as_ref()
            .filter(|b| b.view == view)
            .ok_or("no record of the view's magic block")?;
        let left_out = active.n.saturating_sub(spec.n);
        if spec.t.saturating_add(left_out) < active.t || spec.k.saturating_add(left_out) < active.k
        {
            return Err("thresholds below the view's");
        }
        self.check_player_keys(spec, Variant::Complaint)?;
        if let Some(r) = reshare {
            let latest = self
                .state
                .signing_keys
                .iter()
                .filter(|k| k.view < view)
                .max_by_key(|k| k.view)
                .ok_or("a reshare, and this node recorded no signing key")?;
            if latest.view != r.from_view || !r.reshares(latest.view, &latest.key, &out) {
                return Err("the reshare is not of the latest signing key this node recorded");
            }
        }
        Ok(())
    }

    /// This node's participant in `ceremony`; in a reshare of `from_view`'s key, a dealer
    /// deals its share of that key. A holder whose share is gone, or no longer matches its
    /// public key share, plays only (or, if it does not play, sits the ceremony out): dealing
    /// another constant term would be a proven fault.
    fn signing_participant(
        &self,
        ceremony: &Arc<Ceremony<SigningCurve>>,
        from_view: Option<u64>,
        seed: [u8; 32],
        seat: Seat,
    ) -> Option<Box<ComplaintParticipant<SigningCurve>>> {
        let (c, identity, key) = (
            ceremony.clone(),
            self.keys.identity().clone(),
            self.keys.verifiable_copy(),
        );
        let dealer = ceremony.dealer_position(&self.me);
        let old_share = match (from_view, dealer) {
            (Some(from_view), Some(d)) if seat != Seat::Player => {
                let share = self.reshared_share(ceremony, from_view, d);
                if share.is_none() {
                    warn!(
                        from_view,
                        "no usable share of the signing key to reshare; playing only"
                    );
                }
                share
            }
            _ => None,
        };
        let deals = dealer.is_some() && (from_view.is_none() || old_share.is_some());
        let participant = if seat == Seat::Player || !deals {
            ComplaintParticipant::new_player(c, identity, key, seed)
        } else {
            ComplaintParticipant::new(c, identity, key, old_share, seed)
        };
        match participant {
            Ok(p) => Some(Box::new(p)),
            Err(e) => {
                warn!(error = %e, "cannot take part in the signing-key ceremony");
                None
            }
        }
    }

    /// This node's share of `from_view`'s signing key, if it holds one that matches the public
    /// key share the reshare names for dealer position `dealer`.
    fn reshared_share(
        &self,
        ceremony: &Ceremony<SigningCurve>,
        from_view: u64,
        dealer: u32,
    ) -> Option<Secret<<SigningCurve as Curve>::Scalar>> {
        let expected = ceremony.reshare()?.public_shares.get(dealer as usize)?;
        let (_, share) = self.signing_key(from_view).ok().flatten()?;
        let share = share?;
        (SigningCurve::mul_generator_secret(share.expose()).to_affine() == *expected)
            .then_some(share)
    }

    fn signing_enter_effect(&self, ceremony: &Ceremony<SigningCurve>, id: [u8; 32]) -> Effect {
        // Dealers and players: in a reshare the key's holders deal to the new committee.
        let mut members: Vec<Vec<u8>> = Vec::new();
        for m in ceremony.dealers().iter().chain(ceremony.players()) {
            let bytes = m.identity.to_bytes().to_vec();
            if !members.contains(&bytes) {
                members.push(bytes);
            }
        }
        let networks = members
            .iter()
            .filter_map(|m| {
                self.state
                    .registry
                    .get(&hex::encode(m))
                    .map(|n| (m.clone(), n.clone()))
            })
            .collect();
        Effect::EnterSession {
            session: id,
            members,
            networks,
        }
    }

    /// Logs `input`, feeds it to the signing participant and carries out its actions.
    pub(super) fn feed_signing(
        &mut self,
        input: Input,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        let (Some(live), Some(rec)) = (self.signing.as_mut(), self.state.signing_ceremony.as_mut())
        else {
            return Ok(());
        };
        batch.append_input(&live.id, rec.inputs, &input)?;
        rec.inputs += 1;
        let actions = live.runner.handle(input);
        self.carry_out_signing(actions, batch, effects)
    }

    fn carry_out_signing(
        &mut self,
        actions: Vec<Action<SigningCurve>>,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        let Some((id, view, deadline)) = self.signing.as_ref().map(|s| (s.id, s.view, s.deadline))
        else {
            return Ok(());
        };
        for a in actions {
            match a {
                Action::Send { to, payload } => {
                    if let Some(payload) = self.signing_fault_on_deal(payload) {
                        effects.push(Effect::Send {
                            session: id,
                            to: to.to_bytes().to_vec(),
                            kind: direct_kind(&payload),
                            payload,
                        });
                    }
                }
                Action::Post(post) => {
                    if let Some(post) = self.signing_fault_on_post(post) {
                        effects.push(Effect::Submit(Box::new(Submission {
                            kind: "signing_key_post",
                            action: ChainAction::Tx(TxBody::SigningKeyPost { post }),
                            expires: Some(deadline),
                        })));
                    }
                }
                Action::Finished(out) => {
                    if let (Some(position), Some(share)) = (out.player_index, &out.secret_share) {
                        let sid = session_hex(&id);
                        let bytes = Zeroizing::new(SigningCurve::encode_scalar(share.expose()));
                        self.put_secret(batch, &format!("signing-output/{sid}"), bytes.as_slice())?;
                        if let Some(rec) = self.state.signing_ceremony.as_mut() {
                            rec.output_position = Some(position);
                        }
                    }
                    info!(
                        view,
                        group_key = %hex::encode(SigningCurve::point_bytes(&out.public.group_key)),
                        "signing-key ceremony finished"
                    );
                }
                Action::Failed(f) => {
                    warn!(
                        view,
                        reason = f.reason.as_str(),
                        "signing-key ceremony failed for this node"
                    );
                }
                Action::Observed(o) => debug!(view, observation = ?o, "signing-key ceremony"),
            }
        }
        Ok(())
    }

    /// The chain announced view `view`'s signing key: keep this node's share if its own board
    /// gives the same record.
    fn on_signing_key_created(
        &mut self,
        view: u64,
        key: &SigningKeyRecord,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        let ours = self
            .signing
            .as_ref()
            .filter(|s| s.view == view)
            .and_then(|s| SigningKeyRecord::from_board(s.runner.board()));
        let mut own_position = None;
        match &ours {
            Some(mine) if mine == key => {
                let rec = self.state.signing_ceremony.clone();
                if let Some(rec) = rec
                    && let Some(position) = rec.output_position
                    && let Some(share) =
                        self.secret(&format!("signing-output/{}", rec.session_id))?
                {
                    self.put_secret(batch, &format!("signing-share/{view}"), &share)?;
                    own_position = Some(position);
                }
            }
            Some(_) => {
                error!(
                    view,
                    "the chain's signing key differs from this node's board; not using it"
                );
                self.fault_seen("signing_key_mismatch");
            }
            // Not a member (or no board outcome): the chain's record is what there is to show.
            None => {}
        }
        if ours.as_ref().is_none_or(|mine| mine == key) {
            self.state.signing_keys.retain(|k| k.view != view);
            self.state.signing_keys.push(SigningKeyHeld {
                view,
                key: key.clone(),
                own_position,
            });
            while self.state.signing_keys.len() > KEPT_SIGNING_KEYS {
                let old = self.state.signing_keys.remove(0);
                self.delete_secret(batch, &format!("signing-share/{}", old.view))?;
            }
            info!(view, group_key = %hex::encode(key.group_key.0), member = own_position.is_some(), "signing key recorded");
            effects.push(Effect::StartSigningKey { view });
        }
        if self.signing.as_ref().is_some_and(|s| s.view == view) {
            self.end_signing(batch, effects)?;
        }
        Ok(())
    }

    /// Drops the running signing-key ceremony: its input log, seed and unused output.
    pub(super) fn end_signing(
        &mut self,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        self.signing = None;
        if let Some(rec) = self.state.signing_ceremony.take() {
            let mut id = [0u8; 32];
            if hex::decode_to_slice(&rec.session_id, &mut id).is_ok() {
                batch.delete_inputs(&id)?;
                effects.push(Effect::LeaveSession { session: id });
            }
            self.delete_secret(batch, &format!("seed/{}", rec.session_id))?;
            self.delete_secret(batch, &format!("signing-output/{}", rec.session_id))?;
        }
        Ok(())
    }

    /// Rebuilds the running signing-key ceremony after a restart (module docs).
    pub(super) fn resume_signing(&mut self) -> Result<Vec<Effect>, DriverError> {
        let mut effects = Vec::new();
        let Some(rec) = self.state.signing_ceremony.clone() else {
            return Ok(effects);
        };
        let mut id = [0u8; 32];
        hex::decode_to_slice(&rec.session_id, &mut id)
            .map_err(|_| StoreError::Corrupt("signing session id".into()))?;
        let Ok(ceremony) = signing_ceremony(&rec.spec, rec.reshare.as_ref()) else {
            self.state.signing_ceremony = None;
            return Ok(effects);
        };
        if !rec.seat.runs_participant() {
            // Following the board only (catching up, or sitting out): its log rebuilds it.
            let mut board = Box::new(ComplaintBoard::new(ceremony.clone()));
            for input in self.store.inputs(&id)? {
                follow_complaint_board(&mut board, input);
            }
            let live = SigningLive {
                id,
                view: rec.view,
                ceremony,
                runner: SigningRunner::Board(board),
                deadline: rec.deadline,
                fault_seed: [0; 32],
            };
            if rec.seat == Seat::SittingOut {
                let trace = live.own_deal_trace(&self.me);
                let out =
                    self.sat_out_status(SAT_OUT_SIGNING_KEY, &rec.spec, 0, &rec.session_id, trace);
                self.observe(Observation::CeremonySatOut(out));
            }
            self.signing = Some(live);
            return Ok(effects);
        }
        let label = format!("seed/{}", rec.session_id);
        let seed = self
            .secret(&label)?
            .ok_or_else(|| DriverError::Secret(label.clone()))?;
        let seed: [u8; 32] = seed
            .as_slice()
            .try_into()
            .map_err(|_| DriverError::Secret(label))?;
        let from_view = rec.reshare.as_ref().map(|r| r.from_view);
        let Some(participant) = self.signing_participant(&ceremony, from_view, seed, rec.seat)
        else {
            return Ok(effects);
        };
        let mut runner = SigningRunner::Participant(participant);
        let mut actions = Vec::new();
        for input in self.store.inputs(&id)? {
            actions.extend(runner.handle(input));
        }
        self.signing = Some(SigningLive {
            id,
            view: rec.view,
            ceremony: ceremony.clone(),
            runner,
            deadline: rec.deadline,
            fault_seed: fault_seed(&seed),
        });
        effects.push(self.signing_enter_effect(&ceremony, id));
        let mut batch = self.store.begin()?;
        self.carry_out_signing(actions, &mut batch, &mut effects)?;
        self.commit(batch)?;
        Ok(effects)
    }

    /// Whether a direct message belongs to the running signing-key ceremony; if so, the sender
    /// the network authenticated (a member; anything else is dropped).
    pub(super) fn check_signing_message(
        &self,
        m: &Incoming,
    ) -> Option<Result<IdentityPublicKey, Verdict>> {
        let live = self.signing.as_ref().filter(|s| s.id == m.session)?;
        let sitting_out = self
            .state
            .signing_ceremony
            .as_ref()
            .is_some_and(|r| r.seat == Seat::SittingOut);
        // Deals reaching a node that catches up are logged for its participant; one that sits
        // out has no use for them.
        let (Some(from), false) = (&m.from, sitting_out) else {
            return Some(Err(Verdict::Ignored));
        };
        let c = &live.ceremony;
        Some(
            c.players()
                .iter()
                .chain(c.dealers())
                .find(|p| p.identity.as_bytes()[..] == from[..])
                .map(|p| p.identity.clone())
                .ok_or(Verdict::Ignored),
        )
    }

    /// View `view`'s signing key and this node's share of it, if it holds one.
    pub fn signing_key(&self, view: u64) -> Result<Option<HeldSigningKey>, DriverError> {
        let Some(held) = self.state.signing_keys.iter().find(|k| k.view == view) else {
            return Ok(None);
        };
        let share = match held.own_position {
            None => None,
            Some(_) => match self.secret(&format!("signing-share/{view}"))? {
                None => None,
                Some(b) => Some(Secret::new(
                    SigningCurve::decode_scalar(&b)
                        .map_err(|_| DriverError::Secret(format!("signing-share/{view}")))?,
                )),
            },
        };
        Ok(Some((held.clone(), share)))
    }
}
