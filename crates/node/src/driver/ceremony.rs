//! The running ceremony's lifecycle: starting it in a seat, feeding it (every input logged before
//! it is consumed), turning its actions into effects and records, and ending it.

use super::*;

pub(super) fn exclusions(ex: &[keyquorum_dkg::board::Exclusion]) -> Vec<ExclusionRecord> {
    ex.iter()
        .map(|e| ExclusionRecord {
            role: match e.role {
                Role::Dealer => "dealer".into(),
                Role::Player => "player".into(),
            },
            index: e.index,
            identity: hex_id(&e.identity),
            fault: fault_name(&e.fault),
        })
        .collect()
}

impl Driver {
    pub(super) fn make_live(
        &self,
        id: [u8; 32],
        ceremony: Arc<Ceremony<G>>,
        node: Runner,
        seed: [u8; 32],
    ) -> Live {
        // Bad-share targets: one more player than a dealer may reveal for, so the deviation
        // cannot be papered over with reveals (the dealer then fails its publication).
        let mut bad_targets = BTreeSet::new();
        if self.fault == Fault::BadShare {
            // The complaint variant needs no more: one verifiable complaint disqualifies the
            // dealer.
            let want = match ceremony.config().variant {
                Variant::AckReveal => ceremony.params().max_reveals() + 1,
                Variant::Complaint => 1,
            };
            for (j, p) in ceremony.players().iter().enumerate() {
                if bad_targets.len() == want {
                    break;
                }
                if p.identity != self.me {
                    bad_targets.insert(j as u32);
                }
            }
        }
        let fault_seed = tagged_hash("keyquorum/node/fault-rng/v1", &[&seed]);
        Live {
            id,
            ceremony,
            node,
            seed: Zeroizing::new(seed),
            outbox: HashMap::new(),
            fault: FaultState {
                contribution_hash: None,
                bad_targets,
                rng: ChaCha20Rng::from_seed(fault_seed),
            },
        }
    }

    /// The participant for `seat`, and the seat it takes: a player only, for a reshare dealer
    /// without its share of the previous view that the new committee seats. `None` when it
    /// cannot take part.
    pub(super) fn new_participant(
        &mut self,
        ceremony: &Arc<Ceremony<G>>,
        view: u64,
        seed: [u8; 32],
        mut seat: Seat,
    ) -> Result<Option<(Runner, Seat)>, DriverError> {
        let deals = seat != Seat::Player && ceremony.dealer_position(&self.me).is_some();
        let old_share = if ceremony.reshare().is_some() && deals {
            let s = self.scalar(&format!("share/{}", view - 1))?;
            if s.is_none() {
                // A reshare dealer deals its share of the previous view; without it the node
                // cannot deal, at this try or the view's next ones. Seated in the new
                // committee too, it still plays: it acks, so its dealers need not reveal its
                // share on chain nor name it for withheld acks. (Its missed contribution is an
                // absence, which keeps it out of the new view's members all the same.)
                let plays = ceremony.player_position(&self.me).is_some();
                if self.no_old_share.is_news(view) {
                    warn!(
                        view,
                        previous = view - 1,
                        plays,
                        "this node is a dealer of this view's reshare but holds no share of the \
                         previous view (was its database lost or replaced?): it cannot deal, \
                         and takes part as a player if the new committee seats it; the \
                         reshare goes on if enough other previous members deal"
                    );
                } else {
                    debug!(
                        view,
                        "again a reshare dealer without a share of the previous view"
                    );
                }
                if !plays {
                    return Ok(None);
                }
                seat = Seat::Player;
            }
            s
        } else {
            None
        };
        // The variant is the chain's: the spec the contract selected the committee with.
        let (identity, c) = (self.keys.identity().clone(), ceremony.clone());
        let participant = match (ceremony.config().variant, seat == Seat::Player) {
            (Variant::AckReveal, false) => {
                AckRevealParticipant::new(c, identity, self.keys.encryption_copy(), old_share, seed)
                    .map(|n| Runner::Participant(Box::new(n)))
            }
            (Variant::AckReveal, true) => {
                AckRevealParticipant::new_player(c, identity, self.keys.encryption_copy(), seed)
                    .map(|n| Runner::Participant(Box::new(n)))
            }
            (Variant::Complaint, false) => {
                ComplaintParticipant::new(c, identity, self.keys.verifiable_copy(), old_share, seed)
                    .map(|n| Runner::ComplaintParticipant(Box::new(n)))
            }
            (Variant::Complaint, true) => {
                ComplaintParticipant::new_player(c, identity, self.keys.verifiable_copy(), seed)
                    .map(|n| Runner::ComplaintParticipant(Box::new(n)))
            }
        };
        match participant {
            Ok(n) => Ok(Some((n, seat))),
            Err(e) => {
                warn!(error = %e, view, "cannot take part in this ceremony");
                Ok(None)
            }
        }
    }

    pub(super) fn enter_effect(&self, ceremony: &Ceremony<G>, id: [u8; 32]) -> Effect {
        let mut members: Vec<Vec<u8>> = Vec::new();
        for p in ceremony.dealers().iter().chain(ceremony.players()) {
            let b = p.identity.to_bytes().to_vec();
            if !members.contains(&b) {
                members.push(b);
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

    pub(super) fn is_ceremony(&self, view: u64, ceremony_number: u32) -> bool {
        self.state
            .ceremony
            .as_ref()
            .is_some_and(|s| s.view == view && s.ceremony_number == ceremony_number)
    }

    /// Starts ceremony `(view, ceremony_number)` of `ceremony` (defined by `spec`) in `seat`.
    pub(super) fn start_ceremony(
        &mut self,
        (view, ceremony_number): (u64, u32),
        ceremony: Arc<Ceremony<G>>,
        spec: &CeremonySpec,
        seat: Seat,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        let id = *ceremony.id();
        let sid = session_hex(&id);
        let record = CeremonyRecord {
            view,
            ceremony_number,
            session_id: sid.clone(),
            spec: spec.clone(),
            inputs: 0,
            done: false,
            seat,
        };
        if !seat.runs_participant() {
            self.state.ceremony = Some(record);
            let runner = Runner::board_only(&ceremony);
            self.live = Some(self.make_live(id, ceremony, runner, [0; 32]));
            return Ok(());
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(seed.as_mut());
        let Some((runner, taken)) = self.new_participant(&ceremony, view, *seed, seat)? else {
            return Ok(());
        };
        if taken != seat {
            self.observe_seat(&ceremony, taken);
        }
        // The seed is durable before the participant produces anything.
        self.put_secret(batch, &format!("seed/{sid}"), seed.as_slice())?;
        self.state.ceremony = Some(CeremonyRecord {
            seat: taken,
            ..record
        });
        self.live = Some(self.make_live(id, ceremony.clone(), runner, *seed));
        effects.push(self.enter_effect(&ceremony, id));
        self.feed(Input::Start, batch, effects)
    }

    pub(super) fn end_ceremony(
        &mut self,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        self.live = None;
        if let Some(rec) = self.state.ceremony.take() {
            let mut id = [0u8; 32];
            if hex::decode_to_slice(&rec.session_id, &mut id).is_ok() {
                batch.delete_inputs(&id)?;
                self.recent.push_back(id);
                if self.recent.len() > RECENT_CEREMONIES {
                    self.recent.pop_front();
                }
                effects.push(Effect::LeaveSession { session: id });
            }
            self.delete_secret(batch, &format!("seed/{}", rec.session_id))?;
        }
        Ok(())
    }

    pub(super) fn feed(
        &mut self,
        input: Input,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        let (Some(live), Some(rec)) = (self.live.as_mut(), self.state.ceremony.as_mut()) else {
            return Ok(());
        };
        if rec.done {
            return Ok(());
        }
        batch.append_input(&live.id, rec.inputs, &input)?;
        rec.inputs += 1;
        let actions = live.node.handle(input);
        self.carry_out(actions, batch, effects, None)
    }

    /// Feeds a run of board posts as one batch. They are logged one by one, as
    /// `Input::BoardPost`, so the log replays to the same state either way.
    pub(super) fn feed_posts(
        &mut self,
        posts: Vec<Vec<u8>>,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        if posts.is_empty() {
            return Ok(());
        }
        let (Some(live), Some(rec)) = (self.live.as_mut(), self.state.ceremony.as_mut()) else {
            return Ok(());
        };
        if rec.done {
            return Ok(());
        }
        for p in &posts {
            batch.append_input(&live.id, rec.inputs, &Input::BoardPost(p.clone()))?;
            rec.inputs += 1;
        }
        let actions = live.node.handle_posts(&posts);
        self.carry_out(actions, batch, effects, None)
    }

    /// Turns the participant's actions into effects. In replay (`on_board` given), posts that
    /// are already on the board are not submitted again and observations are not counted again.
    pub(super) fn carry_out(
        &mut self,
        actions: Vec<Action<G>>,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
        on_board: Option<&HashSet<Vec<u8>>>,
    ) -> Result<(), DriverError> {
        for a in actions {
            match a {
                Action::Send { to, payload } => {
                    let kind = direct_kind(&payload);
                    let payload = self.corrupt_deal(payload);
                    let to = to.to_bytes().to_vec();
                    if kind == "deal"
                        && let Some(live) = &mut self.live
                    {
                        live.outbox.insert(to.clone(), payload.clone());
                    }
                    let session = self.live.as_ref().map(|l| l.id).unwrap_or_default();
                    effects.push(Effect::Send {
                        session,
                        to,
                        kind,
                        payload,
                    });
                }
                Action::Post(bytes) => {
                    let bytes = self.forge_publication(bytes);
                    let forged = self.note_post(&bytes);
                    let kind = post_kind(&bytes);
                    if on_board.is_none_or(|b| !b.contains(&bytes)) {
                        effects.push(Effect::Submit(Box::new(Submission {
                            action: ChainAction::Tx(TxBody::DkgPost { post: bytes }),
                            kind,
                            expires: None,
                        })));
                    }
                    if let Some(f) = forged
                        && on_board.is_none_or(|b| !b.contains(&f))
                    {
                        warn!("fault injection: posting a second, different contribution");
                        effects.push(Effect::Submit(Box::new(Submission {
                            action: ChainAction::Tx(TxBody::DkgPost { post: f }),
                            kind: "contribution",
                            expires: None,
                        })));
                    }
                }
                Action::Finished(out) => {
                    let (view, ceremony_number, sid) = match &self.state.ceremony {
                        Some(r) => (r.view, r.ceremony_number, r.session_id.clone()),
                        None => continue,
                    };
                    let ceremony = self.live.as_ref().map(|l| l.ceremony.clone());
                    let Some(ceremony) = ceremony else { continue };
                    let has_share = out.secret_share.is_some();
                    if let Some(share) = &out.secret_share {
                        let bytes = Zeroizing::new(G::encode_scalar(share.expose()));
                        self.put_secret(batch, &format!("output/{sid}"), bytes.as_slice())?;
                    }
                    let qualified_identities = out
                        .public
                        .qualified
                        .iter()
                        .filter_map(|d| ceremony.dealers().get(*d as usize))
                        .map(|p| hex_id(&p.identity))
                        .collect();
                    let record = OutputRecord {
                        view,
                        ceremony_number,
                        session_id: sid,
                        success: true,
                        player_index: out.player_index,
                        group_key: Some(hex::encode(G::point_bytes(&out.public.group_key))),
                        qualified: out.public.qualified.clone(),
                        qualified_identities,
                        exclusions: exclusions(&out.exclusions),
                        has_share,
                    };
                    if on_board.is_none() {
                        info!(
                            view,
                            ceremony_number,
                            group_key = %record.group_key.clone().unwrap_or_default(),
                            qualified = ?record.qualified,
                            excluded = record.exclusions.len(),
                            "ceremony finished"
                        );
                    }
                    self.record_output(record, on_board.is_some());
                }
                Action::Failed(f) => {
                    let Some(r) = &self.state.ceremony else {
                        continue;
                    };
                    let record = OutputRecord {
                        view: r.view,
                        ceremony_number: r.ceremony_number,
                        session_id: r.session_id.clone(),
                        success: false,
                        player_index: None,
                        group_key: None,
                        qualified: f.qualified.clone(),
                        qualified_identities: Vec::new(),
                        exclusions: exclusions(&f.exclusions),
                        has_share: false,
                    };
                    if on_board.is_none() {
                        warn!(view = r.view, ceremony_number = r.ceremony_number, reason = f.reason.as_str(), qualified = ?f.qualified, "ceremony failed for this node");
                    }
                    self.record_output(record, on_board.is_some());
                }
                Action::Observed(o) => {
                    if on_board.is_some() {
                        continue;
                    }
                    match o {
                        ParticipantObservation::BadShare { dealer } => {
                            warn!(
                                dealer,
                                "received a share that does not match its commitment"
                            );
                            self.fault_seen("bad_share_received");
                        }
                        ParticipantObservation::BadAck { player } => {
                            warn!(player, "an ack did not verify");
                            self.fault_seen("bad_ack_received");
                        }
                        ParticipantObservation::Malformed(m) => {
                            debug!(reason = %m, "malformed message");
                            self.fault_seen("malformed_message");
                        }
                        ParticipantObservation::WrongSender { role, index } => {
                            debug!(
                                ?role,
                                index, "dropping a message whose sender is not its author"
                            );
                            self.fault_seen("wrong_sender");
                        }
                        // The contract refused the same post (it runs the same board) and
                        // reports it as PostRejected or not at all; nothing to add here.
                        ParticipantObservation::Refused(_) => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// Records this node's outcome of a ceremony; `replayed` when it is not newly finished
    /// (a replay after a restart), so it is not counted again.
    pub(super) fn record_output(&mut self, record: OutputRecord, replayed: bool) {
        if let Some(r) = &mut self.state.ceremony {
            r.done = true;
        }
        self.state
            .outputs
            .retain(|o| o.session_id != record.session_id);
        self.state.outputs.push(record.clone());
        self.observe(Observation::OutcomeRecorded { record, replayed });
        while self.state.outputs.len() > KEPT_OUTPUTS {
            self.state.outputs.remove(0);
        }
    }
}
