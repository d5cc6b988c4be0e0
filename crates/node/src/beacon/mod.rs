//! The random beacon on the node: the beacon crate's sans-IO round engine of the active view,
//! fed with partials from the network and ticked with the wall clock, its rounds verified and
//! stored in redb ([`store`]) and served over HTTP in drand's format ([`http`]).
//!
//! # What happens
//! - When a view is activated (or the node restarts in one), the driver has fixed the view's
//!   chain and group ([`crate::store::BeaconViewRecord`]); [`Beacon::new`] builds the engine on
//!   them with this node's share, if it holds one. The engine is deterministic: the runtime
//!   passes the time ([`Beacon::tick`]) and every authenticated partial
//!   ([`Beacon::on_partial`]), and carries out what comes back ([`Outgoing`]).
//! - Partials travel as requests of kind [`keyquorum_net::BEACON_PARTIAL_KIND`] in the view's
//!   session ([`keyquorum_net::beacon_session`]), whose allow-list is the committee. A partial
//!   is attributed to the member whose identity the network layer authenticated; one from
//!   anyone else, or for another session, is dropped and counted. The engine checks the rest
//!   (own share index, one per member and round, bounded window) and names members whose
//!   partials do not verify under their public key shares; both are counted per member. A
//!   partial for a round already complete, or a second one, is counted `late` without being
//!   decoded, whatever its bytes.
//! - The runtime reports what became of each partial sent ([`Beacon::on_sent`]). While its
//!   round is open, a partial is sent again at each tick, but only to the members that did not
//!   take it: unreachable, or answering [`NOT_RUNNING`] because they run no beacon of this view
//!   (not yet, or no longer), and not while a send to them awaits its answer ([`delivery`]).
//! - Rounds the engine produces (verified by it under the chain's key) are stored, with when
//!   this node stored them ([`store::RoundTiming`]), before they are served; a reshare
//!   continues the chain (same chain hash, the stored rounds go on), a fresh key starts a new
//!   chain whose info names the previous one. The ended chain's rounds stay stored and served
//!   ([`http`]), and every node fetches those it lacks, up to the chain's last possible round,
//!   from the nodes that ran it ([`ended`]), so a node that joined after the change serves the
//!   ended chain too. A round whose write fails is kept and written again, at the next tick or
//!   round, before any later one: the stored rounds never skip one that this node produced
//!   (it fetches only rounds after its last, so such a gap would stay).
//! - A node that signs nothing in the view (outside the committee) and a member that was down
//!   while the others went on fetch the rounds they lack from the committee in bounded batches
//!   ([`sync`]), each round checked against the one before it and verified before it is
//!   stored, and serve them alike. A member that is one round behind also gets that round as
//!   the answer to its partial ([`Beacon::answer`], [`Beacon::on_round`]).
//!
//! # Metrics
//! `keyquorum_beacon_rounds_total` (rounds combined and stored here; rounds learnt from a
//! member's answer are not counted), `keyquorum_beacon_sync_requests_total{result}` and
//! `keyquorum_beacon_synced_rounds_total` (rounds fetched in batches, [`sync`], or learnt
//! from a member's answer: every round stored here with origin `synced`),
//! `keyquorum_beacon_late_rounds_total` (rounds combined here and stored a period or more after
//! their start), `keyquorum_beacon_partials_total{member, result}`,
//! `keyquorum_beacon_combine_seconds` (the engine call that completed a round, through storing
//! it) and `keyquorum_beacon_round_latency_seconds` (from a round's start time to its storage).

pub mod delivery;
pub mod ended;
pub mod http;
pub mod rounds;
pub mod store;
pub mod sync;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use group::prime::PrimeCurveAffine;
use keyquorum_beacon::engine::RoundStore;
use keyquorum_beacon::engine::{Action, Engine, EngineConfig, Member, MemberId, PartialBeacon};
use keyquorum_beacon::engine::{Rejected, SigningShare, ViewGroup};
use keyquorum_beacon::scheme::DrandScheme;
use keyquorum_beacon::sync::{SyncAnswer, check_link, decode_answer};
use keyquorum_beacon::{ChainInfo, PedersenBlsChained, PedersenBlsUnchained, Round, SchemeId};
use keyquorum_crypto::Curve;
use keyquorum_crypto::secret::Secret;
use keyquorum_net::SessionId;
use tracing::{debug, info, warn};

use crate::driver::G;
use crate::metrics::Metrics;
use crate::store::BeaconViewRecord;
use store::{BeaconStore, ChainRounds, RoundOrigin, RoundTiming};
use sync::{SyncAsk, SyncResult, Syncer};

/// The layout of keys, shares and partials: the same in both schemes a view can run (keys in
/// G1, signatures in G2), which differ only in the message a round signs.
type Scheme = PedersenBlsChained;
type Scalar = <G as Curve>::Scalar;
type KeyPoint = <G as Curve>::Affine;

/// The round engine of the view's scheme (its magic block's).
#[derive(Debug)]
enum SchemeEngine {
    Chained(Engine<PedersenBlsChained>),
    Unchained(Engine<PedersenBlsUnchained>),
}

impl SchemeEngine {
    /// The engine for `info`'s scheme, refused for a scheme whose keys are not in G1.
    fn new(
        info: ChainInfo,
        threshold: usize,
        members: &[(Scalar, KeyPoint)],
        group_key: KeyPoint,
        me: Option<SigningShare>,
    ) -> Result<Self, String> {
        fn build<S: DrandScheme<Public = G>>(
            info: ChainInfo,
            threshold: usize,
            members: &[(Scalar, KeyPoint)],
            group_key: KeyPoint,
            me: Option<SigningShare>,
        ) -> Result<Engine<S>, String> {
            let members = members
                .iter()
                .map(|&(share_index, public_share)| Member::<S> {
                    share_index,
                    public_share,
                })
                .collect();
            let group = ViewGroup::new(threshold, members, group_key).map_err(|e| e.to_string())?;
            Engine::new(info, group, me, EngineConfig::default()).map_err(|e| e.to_string())
        }
        match info.scheme() {
            SchemeId::PedersenBlsChained => {
                build(info, threshold, members, group_key, me).map(SchemeEngine::Chained)
            }
            SchemeId::PedersenBlsUnchained => {
                build(info, threshold, members, group_key, me).map(SchemeEngine::Unchained)
            }
            other => Err(format!("scheme {other} has no keys in G1")),
        }
    }

    fn tick(&mut self, round: u64, store: &impl RoundStore) -> Vec<Action> {
        match self {
            SchemeEngine::Chained(e) => e.tick(round, store),
            SchemeEngine::Unchained(e) => e.tick(round, store),
        }
    }

    fn on_partial(
        &mut self,
        sender: Option<MemberId>,
        message: &PartialBeacon,
        store: &impl RoundStore,
    ) -> Result<Vec<Action>, Rejected> {
        match self {
            SchemeEngine::Chained(e) => e.on_partial(sender, message, store),
            SchemeEngine::Unchained(e) => e.on_partial(sender, message, store),
        }
    }
}

/// Why a view's beacon cannot run.
#[derive(Debug, thiserror::Error)]
pub enum BeaconError {
    /// The recorded view does not describe a usable group or chain.
    #[error("beacon of view {view}: {what}")]
    BadView {
        /// The view.
        view: u64,
        /// What is wrong.
        what: String,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] store::BeaconStoreError),
}

/// A partial to send to one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The member's identity (bytes).
    pub to: Vec<u8>,
    /// The round the partial is for.
    pub round: u64,
    /// [`PartialBeacon::to_bytes`].
    pub payload: Vec<u8>,
}

/// The answer to a partial from a node that runs no beacon in the partial's session (it has
/// not started the view's beacon yet, or has gone on to another view): the partial was not
/// taken, and its sender sends it again at a later tick. One byte, which no round's JSON is.
pub const NOT_RUNNING: &[u8] = &[0];

/// Most rounds combined here whose write failed kept to write again ([`Beacon`]'s
/// `unstored`). A chained engine stops at the first such round, so only an unchained chain
/// under a lasting storage failure fills it; rounds combined past it are dropped, and the
/// store will lack them under its later rounds (fetching takes only rounds after the last).
const MAX_UNSTORED: usize = 1024;

/// What became of an [`Outgoing`] partial, as the runtime reports it ([`Beacon::on_sent`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The member answered ([`Beacon::answer`] on its side, or [`NOT_RUNNING`]).
    Answered(Vec<u8>),
    /// The member could not be reached, or did not answer in time.
    Failed,
}

/// Why a round fetched from another node was not stored.
#[derive(Debug, thiserror::Error)]
pub enum FetchRefused {
    /// Not the next round, or not chained to the stored one.
    #[error(transparent)]
    Link(#[from] keyquorum_beacon::sync::SyncError),
    /// It does not verify, or storage failed.
    #[error(transparent)]
    Store(#[from] store::BeaconStoreError),
}

/// Why a received partial was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Dropped {
    /// For another view's session.
    #[error("partial for another session")]
    OtherSession,
    /// The sender is not a member of the view's committee.
    #[error("sender is not a member of the committee")]
    NotAMember,
    /// Wrong length.
    #[error("malformed partial")]
    Malformed,
    /// The engine refused it.
    #[error(transparent)]
    Rejected(#[from] Rejected),
}

/// The beacon of one view on this node (see the module docs).
#[derive(Debug)]
pub struct Beacon {
    view: u64,
    session: SessionId,
    info: ChainInfo,
    engine: SchemeEngine,
    /// Member identities in committee order (the engine's [`MemberId`]s).
    identities: Vec<Vec<u8>>,
    by_identity: HashMap<Vec<u8>, MemberId>,
    own: Option<MemberId>,
    store: Arc<BeaconStore>,
    last: AtomicU64,
    metrics: Arc<Metrics>,
    /// The `bad-beacon` fault: send partials that do not verify.
    corrupt_partials: bool,
    /// The highest round stored from a member's answer rather than combined here.
    last_synced: u64,
    /// The nodes to fetch missing rounds from: the committee without this node.
    sync_peers: Vec<Vec<u8>>,
    syncer: Syncer,
    /// Which members have this node's partials ([`delivery`]).
    deliveries: delivery::Deliveries,
    /// Partials refused as the sender's fault (undecodable, or not verifying under its public
    /// key share), by member: at most one entry per committee member.
    refused: BTreeMap<MemberId, u64>,
    /// Rounds combined here whose write failed, oldest first. Each is written again before
    /// any later round, so a passing storage failure leaves no gap under a stored round (which
    /// no fetch would fill: a node fetches only rounds after its last).
    unstored: VecDeque<Round>,
}

impl Beacon {
    /// The beacon of the view `record` describes, with this node's `(index, share)` if it
    /// holds one.
    pub fn new(
        record: &BeaconViewRecord,
        share: Option<(u64, Secret<Scalar>)>,
        store: Arc<BeaconStore>,
        metrics: Arc<Metrics>,
        corrupt_partials: bool,
    ) -> Result<Self, BeaconError> {
        let bad = |what: String| BeaconError::BadView {
            view: record.view,
            what,
        };
        let info =
            ChainInfo::from_json(record.chain_info.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&record.magic_block_hash, &mut hash)
            .map_err(|_| bad("magic block hash".into()))?;
        let mut members = Vec::with_capacity(record.members.len());
        let mut identities = Vec::with_capacity(record.members.len());
        for m in &record.members {
            let bytes = hex::decode(&m.public_share).map_err(|_| bad("public share".into()))?;
            let public_share = keyquorum_crypto::tbls::decode_public_key::<Scheme>(&bytes)
                .map_err(|e| bad(e.to_string()))?;
            members.push((Scalar::from(m.index), public_share));
            identities.push(hex::decode(&m.identity).map_err(|_| bad("identity".into()))?);
        }
        let group_key = keyquorum_crypto::tbls::decode_public_key::<Scheme>(info.public_key())
            .map_err(|e| bad(e.to_string()))?;
        let own = match (record.own_index, &share) {
            (Some(index), Some((held, _))) if index == *held => record
                .members
                .iter()
                .position(|m| m.index == index)
                .map(|p| p as MemberId),
            _ => None,
        };
        let me = own.zip(share).map(|(member, (_, share))| SigningShare {
            member,
            share: Secret::new(*share.expose()),
        });
        let engine = SchemeEngine::new(
            info.clone(),
            record.threshold as usize,
            &members,
            group_key,
            me,
        )
        .map_err(bad)?;
        store.put_chain(&info)?;
        let last = store.last_round(&info.hash())?;
        let by_identity = identities
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i as MemberId))
            .collect();
        let sync_peers = identities
            .iter()
            .enumerate()
            .filter(|(i, _)| own != Some(*i as MemberId))
            .map(|(_, id)| id.clone())
            .collect();
        info!(
            view = record.view,
            chain = %hex::encode(info.hash()),
            genesis = info.genesis_time(),
            period = info.period_secs(),
            last_round = last,
            member = own.is_some(),
            "beacon started"
        );
        Ok(Beacon {
            view: record.view,
            session: keyquorum_net::beacon_session(&hash),
            info,
            engine,
            identities,
            by_identity,
            own,
            store,
            last: AtomicU64::new(last),
            metrics,
            corrupt_partials,
            last_synced: 0,
            sync_peers,
            syncer: Syncer::default(),
            refused: BTreeMap::new(),
            unstored: VecDeque::new(),
            deliveries: delivery::Deliveries::default(),
        })
    }

    /// The view.
    pub fn view(&self) -> u64 {
        self.view
    }
    /// The session partials of this view travel in.
    pub fn session(&self) -> SessionId {
        self.session
    }
    /// The chain.
    pub fn info(&self) -> &ChainInfo {
        &self.info
    }
    /// The committee's identities, in order.
    pub fn committee(&self) -> &[Vec<u8>] {
        &self.identities
    }
    /// Whether this node signs.
    pub fn is_member(&self) -> bool {
        self.own.is_some()
    }
    /// The last stored round.
    pub fn last_round(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }
    /// The highest round stored from a member's answer.
    pub fn last_synced(&self) -> u64 {
        self.last_synced
    }

    /// The partials this node refused as their sender's fault in this view (malformed, under
    /// another member's index, or not verifying): by sender's identity key, how many.
    pub fn refused_partials(&self) -> impl Iterator<Item = (&[u8], u64)> + '_ {
        self.refused.iter().filter_map(|(&member, &count)| {
            Some((self.identities.get(member as usize)?.as_slice(), count))
        })
    }

    /// The clock reads `now_ms` (Unix milliseconds): sign what is due, send again what is
    /// pending.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Outgoing> {
        let now = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
        let round = self.info.current_round(now);
        let started = Instant::now();
        // A chained engine waits for the last round it gave to be stored.
        self.write_unstored(started, now_ms);
        let actions = {
            let rounds = ChainRounds::new(&self.store, self.info.hash(), &self.last);
            self.engine.tick(round, &rounds)
        };
        self.carry_out(actions, started, now_ms)
    }

    /// The answer to a partial: [`NOT_RUNNING`] for another view's session; the stored round
    /// it is for, when that is this node's last round (a member still signing the round the
    /// others just completed gets the round instead of waiting for partials nobody sends any
    /// more); else nothing. A member further behind fetches what it lacks in batches
    /// ([`sync`]) rather than a round per partial.
    pub fn answer(&self, session: &SessionId, payload: &[u8]) -> Vec<u8> {
        if *session != self.session {
            return NOT_RUNNING.to_vec();
        }
        let Ok(message) = PartialBeacon::from_bytes::<Scheme>(payload) else {
            return Vec::new();
        };
        if message.round == 0 || message.round != self.last_round() {
            return Vec::new();
        }
        match self.store.round(&self.info.hash(), message.round) {
            Ok(Some(r)) => r.to_json().into_bytes(),
            _ => Vec::new(),
        }
    }

    /// What became of `sent`, a partial of this view's beacon in `session`: a member that
    /// answered from its beacon has it and is not sent it again ([`delivery`]); one that did
    /// not take it gets it at a later tick. An answer holding a round is taken as
    /// [`Beacon::on_round`] takes it.
    pub fn on_sent(
        &mut self,
        session: &SessionId,
        sent: &Outgoing,
        outcome: SendOutcome,
        now_ms: u64,
    ) -> Vec<Outgoing> {
        if *session != self.session {
            // A send of the beacon of an earlier view.
            return Vec::new();
        }
        let Some(member) = self.by_identity.get(&sent.to).copied() else {
            return Vec::new();
        };
        let answer = match outcome {
            SendOutcome::Answered(answer) if answer != NOT_RUNNING => answer,
            SendOutcome::Answered(_) | SendOutcome::Failed => {
                self.deliveries.finish(sent.round, member, false);
                return Vec::new();
            }
        };
        self.deliveries.finish(sent.round, member, true);
        if answer.is_empty() {
            Vec::new()
        } else {
            self.on_round(&answer, now_ms)
        }
    }

    /// A round a member answered with: stored if it is the next one this node lacks, it
    /// chains to this node's last round and it verifies under the chain; then the engine goes
    /// on from it. Anything else is ignored.
    pub fn on_round(&mut self, answer: &[u8], now_ms: u64) -> Vec<Outgoing> {
        let Ok(round) = Round::from_json(answer) else {
            return Vec::new();
        };
        match self.store_fetched(&round, now_ms) {
            Ok(()) => {
                self.metrics.beacon_round_from_answer();
                debug!(
                    view = self.view,
                    round = round.round,
                    "beacon round synced from a member"
                );
                self.tick(now_ms)
            }
            Err(e) => {
                debug!(error = %e, "beacon round from a member refused");
                Vec::new()
            }
        }
    }

    /// The request for rounds this node lacks that is due now, if any ([`sync`]).
    pub fn sync_due(&mut self, now_ms: u64) -> Option<SyncAsk> {
        let upto = self.sync_upto(now_ms);
        self.syncer.due(
            self.info.hash(),
            self.last_round(),
            upto,
            now_ms,
            &self.sync_peers,
        )
    }

    /// The last round this node should have by now from others: the clock's round, or for a
    /// member the one before (the round in progress is the engine's to combine).
    fn sync_upto(&self, now_ms: u64) -> u64 {
        let now = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
        let clock = self.info.current_round(now);
        if self.own.is_some() {
            clock.saturating_sub(1)
        } else {
            clock
        }
    }

    /// The answer to `ask` (or why there is none): its rounds are stored in order while each
    /// is the next one, chains to the last stored round and verifies ([`sync`]); then the
    /// engine goes on from them.
    pub fn on_sync_answer(
        &mut self,
        ask: &SyncAsk,
        answer: Result<Vec<u8>, String>,
        now_ms: u64,
    ) -> Vec<Outgoing> {
        if ask.request.chain != self.info.hash() {
            // Asked for by the beacon of another view.
            return Vec::new();
        }
        let result = take_sync_answer(
            &self.store,
            &self.info,
            &self.last,
            &self.metrics,
            ask,
            answer,
            now_ms,
        );
        let stored = result.stored();
        if stored > 0 {
            self.last_synced = self.last_synced.max(self.last_round());
            debug!(
                view = self.view,
                stored,
                last = self.last_round(),
                "beacon rounds fetched"
            );
        }
        let behind = self.sync_upto(now_ms) > self.last_round();
        self.syncer.done(ask, result, behind, now_ms);
        if stored > 0 {
            self.tick(now_ms)
        } else {
            Vec::new()
        }
    }

    /// Stores `round`, fetched from another node ([`store_fetched`]).
    fn store_fetched(&mut self, round: &Round, now_ms: u64) -> Result<(), FetchRefused> {
        store_fetched(&self.store, &self.info, &self.last, round, now_ms)?;
        self.last_synced = self.last_synced.max(round.round);
        Ok(())
    }

    /// A partial from the network: `session` and `from` as the network layer authenticated
    /// them.
    pub fn on_partial(
        &mut self,
        session: &SessionId,
        from: Option<&[u8]>,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<Vec<Outgoing>, Dropped> {
        if *session != self.session {
            self.metrics.beacon_partial("unknown", "other_session");
            return Err(Dropped::OtherSession);
        }
        let Some(member) = from.and_then(|id| self.by_identity.get(id)).copied() else {
            self.metrics.beacon_partial("unknown", "not_member");
            return Err(Dropped::NotAMember);
        };
        let label = member.to_string();
        let Ok(message) = PartialBeacon::from_bytes::<Scheme>(payload) else {
            self.metrics.beacon_partial(&label, "malformed");
            *self.refused.entry(member).or_default() += 1;
            return Err(Dropped::Malformed);
        };
        let started = Instant::now();
        let result = {
            let rounds = ChainRounds::new(&self.store, self.info.hash(), &self.last);
            self.engine.on_partial(Some(member), &message, &rounds)
        };
        match result {
            Ok(actions) => {
                self.metrics.beacon_partial(&label, "accepted");
                Ok(self.carry_out(actions, started, now_ms))
            }
            Err(e) => {
                let result = match e {
                    Rejected::Duplicate { .. } | Rejected::Stale { .. } => "late",
                    Rejected::TooFarAhead { .. } => "too_far_ahead",
                    Rejected::SpoofedIndex { .. } | Rejected::Malformed { .. } => {
                        *self.refused.entry(member).or_default() += 1;
                        "rejected"
                    }
                    _ => "rejected",
                };
                self.metrics.beacon_partial(&label, result);
                Err(e.into())
            }
        }
    }

    fn carry_out(&mut self, actions: Vec<Action>, started: Instant, now_ms: u64) -> Vec<Outgoing> {
        let mut out = Vec::new();
        for action in actions {
            match action {
                Action::Broadcast(partial) => {
                    let round = partial.round;
                    let payload = if self.corrupt_partials {
                        corrupt(partial).to_bytes()
                    } else {
                        partial.to_bytes()
                    };
                    for (i, id) in self.identities.iter().enumerate() {
                        let member = i as MemberId;
                        // Only to members that do not have it and are not being sent it.
                        if Some(member) != self.own && self.deliveries.start(round, member) {
                            out.push(Outgoing {
                                to: id.clone(),
                                round,
                                payload: payload.clone(),
                            });
                        }
                    }
                }
                Action::Store(round) => self.store_round(&round, started, now_ms),
                Action::Culprit { member, round } => {
                    warn!(view = self.view, member, round, "bad beacon partial");
                    self.metrics.beacon_partial(&member.to_string(), "bad");
                    *self.refused.entry(member).or_default() += 1;
                }
            }
        }
        self.deliveries.forget_through(self.last_round());
        out
    }

    /// Stores a round combined here, after the rounds combined before it whose write failed.
    fn store_round(&mut self, round: &Round, started: Instant, now_ms: u64) {
        if self.unstored.len() >= MAX_UNSTORED {
            warn!(
                view = self.view,
                round = round.round,
                "beacon round dropped: {MAX_UNSTORED} earlier rounds are still not stored"
            );
            return;
        }
        self.unstored.push_back(round.clone());
        self.write_unstored(started, now_ms);
    }

    /// Writes the rounds combined here and not yet stored, in order, up to the first that
    /// fails. `now_ms` is the clock when the engine call began; a round's stored time adds the
    /// time the call took so far, so it is when the round was written.
    fn write_unstored(&mut self, started: Instant, now_ms: u64) {
        while let Some(round) = self.unstored.front() {
            let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let timing = RoundTiming {
                stored_ms: now_ms.saturating_add(elapsed_ms),
                origin: RoundOrigin::Combined,
            };
            match self.store.put_combined_round(&self.info, round, timing) {
                Ok(written) => {
                    let round = round.round;
                    self.unstored.pop_front();
                    self.last.fetch_max(round, Ordering::Relaxed);
                    if written {
                        self.count_stored(round, timing, started);
                    }
                }
                // Another value is stored, or the stored one does not decode: writing again
                // cannot help, and a round is there.
                Err(
                    e
                    @ (store::BeaconStoreError::Conflict(_) | store::BeaconStoreError::Corrupt(_)),
                ) => {
                    warn!(view = self.view, round = round.round, error = %e, "beacon round not stored");
                    self.unstored.pop_front();
                }
                Err(e) => {
                    warn!(
                        view = self.view,
                        round = round.round,
                        error = %e,
                        "beacon round not stored; it is written again before any later round"
                    );
                    return;
                }
            }
        }
    }

    fn count_stored(&self, round: u64, timing: RoundTiming, started: Instant) {
        // A clock behind the schedule reads as no latency rather than a negative one.
        let latency = timing
            .latency_ms(&self.info, round)
            .map(|ms| ms.max(0) as f64 / 1000.0);
        let late = latency.is_some_and(|l| l >= f64::from(self.info.period_secs()));
        self.metrics.beacon_round(
            late,
            started.elapsed().as_secs_f64(),
            latency.unwrap_or(0.0),
        );
        debug!(view = self.view, round, late, "beacon round stored");
    }
}

/// Stores `round` of the chain `info`, fetched from another node, if it is the next round
/// this node lacks (`last` holds its last stored round), it chains to the last stored round
/// and it verifies (the store's check).
fn store_fetched(
    store: &BeaconStore,
    info: &ChainInfo,
    last: &AtomicU64,
    round: &Round,
    now_ms: u64,
) -> Result<(), FetchRefused> {
    let chain = info.hash();
    let previous = match last.load(Ordering::Relaxed) {
        0 => None,
        l => Some(
            store
                .round(&chain, l)?
                .ok_or(store::BeaconStoreError::Corrupt(format!(
                    "last round {l} missing"
                )))?,
        ),
    };
    check_link(info, previous.as_ref(), round)?;
    let timing = RoundTiming {
        stored_ms: now_ms,
        origin: RoundOrigin::Synced,
    };
    store.put_round(info, round, timing)?;
    last.fetch_max(round.round, Ordering::Relaxed);
    Ok(())
}

/// Takes the answer to `ask` into the stored rounds of the chain `info` ([`sync`]): its rounds
/// in order while each is the next one, chains to the last stored round and verifies. Counts
/// the request by what became of it.
fn take_sync_answer(
    store: &BeaconStore,
    info: &ChainInfo,
    last: &AtomicU64,
    metrics: &Metrics,
    ask: &SyncAsk,
    answer: Result<Vec<u8>, String>,
    now_ms: u64,
) -> SyncResult {
    let answer =
        answer.and_then(|bytes| decode_answer(&ask.request, &bytes).map_err(|e| e.to_string()));
    let chain = hex::encode(&info.hash()[..8]);
    let result = match answer {
        Err(e) => {
            debug!(%chain, error = %e, "no beacon rounds from a member");
            SyncResult::Unanswered
        }
        Ok(SyncAnswer::RateLimited { retry_after_ms }) => {
            debug!(%chain, retry_after_ms, "a member refused a request for rounds for now");
            SyncResult::RateLimited { retry_after_ms }
        }
        Ok(SyncAnswer::Rounds(rounds)) => {
            let mut stored = 0;
            let mut refused = false;
            for round in &rounds {
                if round.round <= last.load(Ordering::Relaxed) {
                    // Combined here meanwhile: the store refuses a different value, and the
                    // rounds after it chain to the stored one.
                    continue;
                }
                if let Err(e) = store_fetched(store, info, last, round, now_ms) {
                    warn!(%chain, round = round.round, error = %e, "fetched beacon round refused");
                    refused = true;
                    break;
                }
                stored += 1;
            }
            SyncResult::Answered { stored, refused }
        }
    };
    metrics.beacon_sync(result.label(), result.stored());
    result
}

/// The `bad-beacon` fault: the same round and share index, with a valid point that is not the
/// partial signature (the G2 generator), so it decodes and fails verification.
fn corrupt(mut partial: PartialBeacon) -> PartialBeacon {
    partial.partial.truncate(32);
    partial
        .partial
        .extend_from_slice(&blstrs::G2Affine::generator().to_compressed());
    partial
}

#[cfg(test)]
mod tests;
