//! The driver: the node's deterministic core, between the chain, the peers and the participant
//! state machine. It does no I/O itself besides its database: it consumes chain blocks and
//! peer messages and returns [`Effect`]s (messages to send, transactions to submit) for the
//! runtime to carry out, only after the inputs that caused them are durable.
//!
//! # Following the chain
//! Blocks are processed strictly in height order, each event in block order. The rules that
//! turn the contract's events into this node's participant inputs are the contract crate's
//! [`Follower`] (the same one the contract's and the node's test chains use); the driver acts
//! on its [`Step`]s and keeps what the follower does not: storage, secrets, effects, metrics.
//! - `Registered`/`NetworkUpdated` keep a registry of network identities (address hints);
//! - a ceremony start ([`Step::CeremonyStarted`]) starts a participant if this node deals or
//!   plays in the ceremony (the previous view's share is loaded for a resharing dealer) and
//!   feeds it `Start`;
//! - board posts and deadlines of the ceremony feed `BoardPost` and `Deadline`: the contract
//!   emits exactly the board's inputs in the order it applied them, so the node's board is the
//!   contract's board. A run of consecutive posts of a block comes as one batch
//!   ([`AckRevealParticipant::handle_board_posts`]: one multi-pairing for their signatures, one
//!   batch check for the deals waiting for the contributions among them), which acts exactly
//!   as feeding them one by one; they are logged one by one. Replays after a restart and the
//!   catch-up of a ceremony batch the same way. Where the follower stands is stored with the
//!   state, so it resumes with the node;
//! - `MagicBlockCreated` is checked before anything is signed: the node rebuilds the magic
//!   block from its own board with the contract's construction ([`MagicBlock::from_board`]) and
//!   its own record of the previous view's hash and the registry, and compares every field and
//!   the hash. Only an identical block is signed, with the new share (new committee) and with
//!   the previous view's share (old committee); any difference is logged as an error, counted
//!   in `keyquorum_magic_block_mismatches_total` and shown on `/status`, and nothing is signed.
//!   A member of the previous committee that is not in the new session follows the session's
//!   board as an observer for this purpose;
//! - `ViewActivated` promotes the new share to the view's share and drops shares older than the
//!   previous view; `CeremonyFailed`/`ViewChangeAborted` drop the session.
//!
//! # Crash safety
//! Each block and each batch of peer messages is one database transaction holding the inputs
//! consumed and the new state; it commits before the effects are returned. A session's
//! participant is a deterministic function of its seed (stored sealed when the session starts,
//! before `Start`) and its logged inputs, so [`Driver::open`] rebuilds it by replay after a crash
//! and returns the effects again: the same deals, acks and posts, byte for byte (BLS signatures
//! and the seeded randomness are deterministic). Re-sending is harmless (peers and the board
//! drop duplicates); posts already on the board are not re-submitted.
//!
//! # A lost database
//! A node that lost its database follows the chain again from the start. A session selected
//! while it is still catching up (the runtime tells it the chain's height, [`Driver::set_head`])
//! is only followed until the node has caught up; if this node's own contribution is on the
//! board by then, the seed behind it is gone and dealing again would be equivocation, so the
//! node sits the session out (it keeps following the board, says so in the log and on
//! `/status`); otherwise it takes part from there.
//!
//! # Peers
//! A direct message is consumed only if it comes from the identity its content names: the
//! network layer attributes each request to the identity whose signed record the sender
//! presented on its authenticated connection, and a deal must come from its dealer, an ack from
//! its player. Without this check anyone could send garbage "from" an honest dealer and make a
//! player refuse that dealer's real share later.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ff::Field;
use keyquorum_contract::config::KeyMode;
use keyquorum_contract::follow::{FollowedCeremony, Follower, SeatRole, Step};
use keyquorum_contract::hex::Hex;
use keyquorum_contract::magic::{MagicBlock, MagicBlockPlace, signing_message};
use keyquorum_contract::tx::{SignerRole, TxBody};
use keyquorum_contract::{CeremonySpec, Event, Group, Transaction, fault_name};
use keyquorum_crypto::Curve;
use keyquorum_crypto::commit::EvalCommitment;
use keyquorum_crypto::encrypt::{self, ShareAad};
use keyquorum_crypto::hash::tagged_hash;
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_dkg::ackreveal::AckRevealParticipant;
use keyquorum_dkg::board::{Board, BoardPhase, Role};
use keyquorum_dkg::identity::{IdentityPublicKey, Purpose};
use keyquorum_dkg::messages::{Contribution, Deal, Direct, Post, SignedPost};
use keyquorum_dkg::participant::{Action, Input, Observation};
use keyquorum_dkg::preverify::preverify_posts;
use keyquorum_dkg::{Ceremony, Member};
use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, RngCore, SeedableRng};
use tracing::{debug, error, info, warn};
use zeroize::Zeroizing;

use crate::chain::ChainBlock;
use crate::config::Fault;
use crate::keys::NodeKeys;
use crate::metrics::Metrics;
use crate::status::{MagicBlockMismatch, PendingStatus, SittingOutStatus, Status};
use crate::store::{
    Batch, ExclusionRecord, NodeState, OutputRecord, PendingMagic, Seat, SessionRecord,
    ShareRecord, Store, StoreError,
};

/// The group of keys and commitments (BLS12-381 G1, signatures in G2).
pub type G = Group;
type Scalar = <G as Curve>::Scalar;

/// Network message kind: an encoded `Direct` (deal or ack); the response is empty.
pub const KIND_DIRECT: u8 = 1;
/// Network message kind: a player asks a dealer for its deal; the response is the deal.
pub const KIND_PULL: u8 = 2;

/// Finished sessions whose late messages are acknowledged and dropped.
const RECENT_SESSIONS: usize = 8;
/// Finished outputs kept in the state.
const KEPT_OUTPUTS: usize = 8;

/// Driver errors: storage only (everything from the chain or peers is validated and, when
/// wrong, logged and dropped).
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored secret does not open (wrong key file for this data directory?).
    #[error("stored secret {0} does not open with this key")]
    Secret(String),
}

/// A transaction for the runtime to sign and submit.
#[derive(Debug, Clone)]
pub struct Submission {
    /// What.
    pub body: TxBody,
    /// For logs and metrics.
    pub kind: &'static str,
    /// Last height at which it is useful (its phase's deadline).
    pub expires: Option<u64>,
}

/// Something for the runtime to do.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Deliver a direct message (retrying until delivered or the session ends).
    Send {
        /// Session.
        session: [u8; 32],
        /// Recipient identity (bytes).
        to: Vec<u8>,
        /// `deal` or `ack`.
        kind: &'static str,
        /// Encoded `Direct`.
        payload: Vec<u8>,
    },
    /// Ask a dealer for our deal (after a restart).
    Pull {
        /// Session.
        session: [u8; 32],
        /// Dealer identity.
        from: Vec<u8>,
    },
    /// Sign and submit a transaction.
    Submit(Box<Submission>),
    /// A session starts: admit its members, learn their address hints.
    EnterSession {
        /// Session.
        session: [u8; 32],
        /// Dealers and players (identity bytes).
        members: Vec<Vec<u8>>,
        /// `(identity, addresses)` from the registry.
        hints: Vec<(Vec<u8>, Vec<String>)>,
    },
    /// A registered node's network identity, to resolve ahead of any ceremony.
    Learn {
        /// Identity (bytes).
        identity: Vec<u8>,
        /// Addresses registered on chain (hints).
        addresses: Vec<String>,
        /// Registered nodes known so far (to spread the lookups over time).
        peers: usize,
    },
    /// A session is over: stop its retries.
    LeaveSession {
        /// Session.
        session: [u8; 32],
    },
    /// The `crash` fault: abort now (state is durable).
    Crash,
}

/// A direct message from a peer (or the answer to a pull).
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Session the sender tagged it with.
    pub session: [u8; 32],
    /// Identity the network layer attributed it to.
    pub from: Option<Vec<u8>>,
    /// Encoded `Direct`.
    pub payload: Vec<u8>,
}

/// What to answer a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Consumed.
    Accepted,
    /// Acknowledged but dropped (finished session, wrong sender, garbage).
    Ignored,
    /// Not answered, so the sender retries: a session this node has not seen start yet.
    Later,
}

/// One of our own transactions as it appeared in a block.
#[derive(Debug, Clone)]
pub struct OwnTx {
    /// Hash.
    pub hash: [u8; 32],
    /// Nonce.
    pub nonce: u64,
    /// Rejection code, if refused.
    pub rejected: Option<String>,
}

/// The result of processing a block.
#[derive(Debug, Default)]
pub struct BlockOutcome {
    /// Effects to carry out.
    pub effects: Vec<Effect>,
    /// Our transactions in the block.
    pub own_txs: Vec<OwnTx>,
}

struct FaultState {
    contribution_hash: Option<[u8; 32]>,
    bad_targets: BTreeSet<u32>,
    rng: ChaCha20Rng,
}

/// What runs a session in this node: the DKG participant, or the board alone for a node that
/// only follows it (see [`Seat`]).
enum Runner {
    Participant(Box<AckRevealParticipant<G>>),
    Board(Box<Board<G>>),
}

impl Runner {
    fn board(&self) -> &Board<G> {
        match self {
            Runner::Participant(n) => n.board(),
            Runner::Board(b) => b,
        }
    }

    fn received_from(&self) -> Vec<u32> {
        match self {
            Runner::Participant(n) => n.received_from(),
            Runner::Board(_) => Vec::new(),
        }
    }

    /// Board posts in board order, with the effect of feeding each as `Input::BoardPost` in
    /// turn: a participant verifies their signatures in one batch and checks the deals waiting
    /// for contributions among them in one batch
    /// ([`AckRevealParticipant::handle_board_posts`]); a board alone pre-verifies the signatures in one
    /// batch and applies the posts.
    fn handle_posts(&mut self, posts: &[Vec<u8>]) -> Vec<Action<G>> {
        match self {
            Runner::Participant(n) => n.handle_board_posts(posts),
            Runner::Board(b) => {
                let n = b.ceremony().n();
                let decoded: Vec<SignedPost<G>> = posts
                    .iter()
                    .filter_map(|p| SignedPost::<G>::decode(p, n).ok())
                    .collect();
                let refs: Vec<&SignedPost<G>> = decoded.iter().collect();
                preverify_posts(b.ceremony(), &refs);
                for signed in &decoded {
                    // Refusals are the contract's too (same board); nothing to add.
                    let _ = b.apply(signed);
                }
                Vec::new()
            }
        }
    }

    /// Feeds logged inputs in order, each run of board posts as one batch
    /// ([`Runner::handle_posts`]).
    fn replay(&mut self, inputs: Vec<Input>) -> Vec<Action<G>> {
        let mut out = Vec::new();
        let mut posts: Vec<Vec<u8>> = Vec::new();
        for input in inputs {
            match input {
                Input::BoardPost(p) => posts.push(p),
                other => {
                    if !posts.is_empty() {
                        out.extend(self.handle_posts(&std::mem::take(&mut posts)));
                    }
                    out.extend(self.handle(other));
                }
            }
        }
        if !posts.is_empty() {
            out.extend(self.handle_posts(&posts));
        }
        out
    }

    /// The participant's actions; a board alone applies posts and deadlines as the
    /// participant's board would, and acts on nothing.
    fn handle(&mut self, input: Input) -> Vec<Action<G>> {
        match self {
            Runner::Participant(n) => n.handle(input),
            Runner::Board(b) => {
                match input {
                    Input::BoardPost(bytes) => {
                        if let Ok(signed) = SignedPost::<G>::decode(&bytes, b.ceremony().n()) {
                            // Refusals are the contract's too (same board); nothing to add.
                            let _ = b.apply(&signed);
                        }
                    }
                    Input::Deadline => b.advance(),
                    _ => {}
                }
                Vec::new()
            }
        }
    }
}

struct Live {
    id: [u8; 32],
    ceremony: Arc<Ceremony<G>>,
    node: Runner,
    seed: Zeroizing<[u8; 32]>,
    /// Deals this node sent, by recipient identity, for pulls.
    outbox: HashMap<Vec<u8>, Vec<u8>>,
    fault: FaultState,
}

/// The node's core. See the module docs.
pub struct Driver {
    store: Store,
    keys: Arc<NodeKeys>,
    fault: Fault,
    me: IdentityPublicKey,
    state: NodeState,
    live: Option<Live>,
    /// Secrets written in the batch being built (not yet readable from the store).
    fresh_secrets: HashMap<String, Vec<u8>>,
    recent: VecDeque<[u8; 32]>,
    metrics: Arc<Metrics>,
    status: Arc<Mutex<Status>>,
    phase: Option<(String, Instant)>,
    phase_deadline: u64,
    /// The chain's height as last reported by the runtime (unknown: not catching up).
    head: Option<u64>,
    /// Turns the contract's events into this node's steps (the rules of following the chain).
    follower: Follower,
}

fn hex_id(id: &IdentityPublicKey) -> String {
    hex::encode(id.as_bytes())
}

fn session_hex(id: &[u8; 32]) -> String {
    hex::encode(id)
}

fn payload_kind(payload: &[u8]) -> &'static str {
    match payload.first() {
        Some(16) => "deal",
        Some(17) => "ack",
        _ => "direct",
    }
}

impl Driver {
    /// Opens the driver on its database, resuming where it stopped: the running session's
    /// participant is rebuilt from its sealed seed and logged inputs, and the effects needed to
    /// resume (re-sends, pending posts, pulls, signatures) are returned.
    pub fn open(
        store: Store,
        keys: Arc<NodeKeys>,
        fault: Fault,
        metrics: Arc<Metrics>,
        status: Arc<Mutex<Status>>,
    ) -> Result<(Self, Vec<Effect>), DriverError> {
        let state = store.load_state()?.unwrap_or(NodeState {
            cursor: 1,
            ..Default::default()
        });
        let me = keys.identity().public().clone();
        let mut position = state.follower;
        if position.ceremony.is_none()
            && let Some(rec) = &state.session
        {
            let mut id = [0u8; 32];
            if hex::decode_to_slice(&rec.session_id, &mut id).is_ok() {
                position.ceremony = Some(FollowedCeremony {
                    view: rec.view,
                    ceremony_number: rec.ceremony_number,
                    id: Hex(id),
                });
            }
        }
        let follower = Follower::resume(Some(me.clone()), position);
        {
            let mut s = status.lock().expect("status lock");
            s.identity = hex_id(&me);
            s.peer_id = keys.peer_id().to_string();
            s.fault = fault.name().into();
        }
        let mut d = Driver {
            store,
            keys,
            fault,
            me,
            state,
            live: None,
            fresh_secrets: HashMap::new(),
            recent: VecDeque::new(),
            metrics,
            status,
            phase: None,
            phase_deadline: 0,
            head: None,
            follower,
        };
        let effects = d.resume()?;
        d.refresh_status();
        Ok((d, effects))
    }

    /// Next block height to process.
    pub fn cursor(&self) -> u64 {
        self.state.cursor
    }

    /// Next nonce.
    pub fn nonce(&self) -> u64 {
        self.state.nonce
    }

    /// Whether the chain has our registration.
    pub fn registered(&self) -> bool {
        self.state.registered
    }

    /// The persisted state (for tests and reports).
    pub fn state(&self) -> &NodeState {
        &self.state
    }

    /// The running participant's board phase, if any.
    pub fn board_phase(&self) -> Option<BoardPhase> {
        self.live.as_ref().map(|l| l.node.board().phase())
    }

    /// Dealers whose shares the running participant holds.
    pub fn received_from(&self) -> Vec<u32> {
        self.live
            .as_ref()
            .map(|l| l.node.received_from())
            .unwrap_or_default()
    }

    fn secret(&self, label: &str) -> Result<Option<Zeroizing<Vec<u8>>>, DriverError> {
        let sealed = match self.fresh_secrets.get(label) {
            Some(s) => Some(s.clone()),
            None => self.store.secret(label)?,
        };
        match sealed {
            None => Ok(None),
            Some(s) => self
                .keys
                .open(label, &s)
                .map(Some)
                .map_err(|_| DriverError::Secret(label.into())),
        }
    }

    fn scalar(&self, label: &str) -> Result<Option<Secret<Scalar>>, DriverError> {
        Ok(match self.secret(label)? {
            None => None,
            Some(b) => Some(Secret::new(
                G::decode_scalar(&b).map_err(|_| DriverError::Secret(label.into()))?,
            )),
        })
    }

    fn put_secret(
        &mut self,
        batch: &mut Batch,
        label: &str,
        plain: &[u8],
    ) -> Result<(), DriverError> {
        let sealed = self.keys.seal(label, plain);
        batch.put_secret(label, &sealed)?;
        self.fresh_secrets.insert(label.to_string(), sealed);
        Ok(())
    }

    fn delete_secret(&mut self, batch: &mut Batch, label: &str) -> Result<(), DriverError> {
        batch.delete_secret(label)?;
        self.fresh_secrets.remove(label);
        Ok(())
    }

    fn commit(&mut self, mut batch: Batch) -> Result<(), DriverError> {
        self.state.follower = self.follower.position();
        batch.put_state(&self.state)?;
        batch.commit()?;
        self.fresh_secrets.clear();
        Ok(())
    }

    /// Rebuilds the running session after a restart.
    fn resume(&mut self) -> Result<Vec<Effect>, DriverError> {
        let mut effects = Vec::new();
        // A magic block we may not have signed before the crash: sign again (the contract
        // refuses duplicates without consuming a nonce).
        if let Some(pm) = self.state.pending_magic.clone() {
            let mut hash = [0u8; 32];
            if hex::decode_to_slice(&pm.hash, &mut hash).is_ok() {
                self.sign_magic_block(pm.view, pm.ceremony_number, &hash, pm.index, &mut effects)?;
            }
        }
        let Some(rec) = self.state.session.clone() else {
            return Ok(effects);
        };
        if rec.done || self.fault == Fault::Silent {
            return Ok(effects);
        }
        let mut id = [0u8; 32];
        hex::decode_to_slice(&rec.session_id, &mut id)
            .map_err(|_| StoreError::Corrupt("session id".into()))?;
        let ceremony = match rec.spec.ceremony() {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "stored session no longer builds; dropping it");
                self.state.session = None;
                return Ok(effects);
            }
        };
        if rec.seat != Seat::Participant {
            // Following the board only: its logged posts and deadlines rebuild it.
            let mut runner = Runner::Board(Box::new(Board::new(ceremony.clone())));
            runner.replay(self.store.inputs(&id)?);
            self.live = Some(self.make_live(id, ceremony, runner, [0; 32]));
            if rec.seat == Seat::SittingOut {
                self.show_sitting_out(rec.view, rec.ceremony_number);
            }
            return Ok(effects);
        }
        let seed = self
            .secret(&format!("seed/{}", rec.session_id))?
            .ok_or_else(|| DriverError::Secret(format!("seed/{}", rec.session_id)))?;
        let seed: [u8; 32] = seed
            .as_slice()
            .try_into()
            .map_err(|_| DriverError::Secret("seed".into()))?;
        let Some(node) = self.new_participant(&ceremony, rec.view, seed)? else {
            return Ok(effects);
        };
        let runner = Runner::Participant(Box::new(node));
        self.live = Some(self.make_live(id, ceremony.clone(), runner, seed));
        effects.push(self.enter_effect(&ceremony, id));
        let inputs = self.store.inputs(&id)?;
        info!(
            view = rec.view,
            ceremony_number = rec.ceremony_number,
            inputs = inputs.len(),
            "resuming ceremony by replay"
        );
        let on_board: HashSet<Vec<u8>> = inputs
            .iter()
            .filter_map(|i| match i {
                Input::BoardPost(p) => Some(p.clone()),
                _ => None,
            })
            .collect();
        let actions = self.live.as_mut().expect("just set").node.replay(inputs);
        let mut batch = self.store.begin()?;
        self.carry_out(actions, &mut batch, &mut effects, Some(&on_board))?;
        self.commit(batch)?;
        self.pull_missing(&mut effects);
        Ok(effects)
    }

    /// Deals we may have missed while down or catching up: ask the dealers (they also keep
    /// retrying).
    fn pull_missing(&self, effects: &mut Vec<Effect>) {
        if let Some(live) = &self.live
            && live.node.board().phase() <= BoardPhase::Share
            && live.ceremony.player_position(&self.me).is_some()
        {
            let have: BTreeSet<u32> = live.node.received_from().into_iter().collect();
            for (d, p) in live.ceremony.dealers().iter().enumerate() {
                if p.identity != self.me
                    && !have.contains(&(d as u32))
                    && live.node.board().contribution(d as u32).is_some()
                {
                    effects.push(Effect::Pull {
                        session: live.id,
                        from: p.identity.to_bytes().to_vec(),
                    });
                }
            }
        }
    }

    fn make_live(
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
            let want = ceremony.params().max_reveals() + 1;
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

    fn new_participant(
        &self,
        ceremony: &Arc<Ceremony<G>>,
        view: u64,
        seed: [u8; 32],
    ) -> Result<Option<AckRevealParticipant<G>>, DriverError> {
        let old_share =
            if ceremony.reshare().is_some() && ceremony.dealer_position(&self.me).is_some() {
                let s = self.scalar(&format!("share/{}", view - 1))?;
                if s.is_none() {
                    warn!(
                        view,
                        "this node deals in a reshare but holds no share of the previous view"
                    );
                }
                s
            } else {
                None
            };
        match AckRevealParticipant::new(
            ceremony.clone(),
            self.keys.identity().clone(),
            self.keys.encryption_copy(),
            old_share,
            seed,
        ) {
            Ok(n) => Ok(Some(n)),
            Err(e) => {
                warn!(error = %e, view, "cannot take part in this session");
                Ok(None)
            }
        }
    }

    fn enter_effect(&self, ceremony: &Ceremony<G>, id: [u8; 32]) -> Effect {
        let mut members: Vec<Vec<u8>> = Vec::new();
        for p in ceremony.dealers().iter().chain(ceremony.players()) {
            let b = p.identity.to_bytes().to_vec();
            if !members.contains(&b) {
                members.push(b);
            }
        }
        let hints = members
            .iter()
            .filter_map(|m| {
                self.state
                    .registry
                    .get(&hex::encode(m))
                    .map(|n| (m.clone(), n.addresses.clone()))
            })
            .collect();
        Effect::EnterSession {
            session: id,
            members,
            hints,
        }
    }

    /// Processes one committed block (blocks below the cursor are skipped: already done).
    pub fn process_block(&mut self, block: &ChainBlock) -> Result<BlockOutcome, DriverError> {
        let mut out = BlockOutcome::default();
        if block.height < self.state.cursor {
            return Ok(out);
        }
        let mut batch = self.store.begin()?;
        let me = self.me.to_bytes();
        for tx in &block.txs {
            if let Some((sender, nonce)) = Transaction::peek_sender_and_nonce(&tx.tx)
                && sender == &me[..]
            {
                if tx.rejected.is_none() {
                    self.state.nonce = self.state.nonce.max(nonce + 1);
                }
                out.own_txs.push(OwnTx {
                    hash: tx.hash,
                    nonce,
                    rejected: tx.rejected.as_ref().map(|r| r.0.clone()),
                });
            }
            for e in &tx.events {
                self.on_event(e, block.height, &mut batch, &mut out.effects)?;
            }
        }
        for e in &block.end_block_events {
            self.on_event(e, block.height, &mut batch, &mut out.effects)?;
        }
        for step in self.follower.end_block() {
            self.on_step(step, block.height, &mut batch, &mut out.effects)?;
        }
        self.state.cursor = block.height + 1;
        if self.head.is_some_and(|h| block.height >= h) && self.catching_up() {
            self.settle_catching_up(&mut batch, &mut out.effects)?;
        }
        // Posts are useful until the end of the phase they were made in.
        for e in &mut out.effects {
            if let Effect::Submit(s) = e
                && s.expires.is_none()
            {
                s.expires = Some(self.phase_deadline.max(block.height));
            }
        }
        self.commit(batch)?;
        self.metrics
            .set("keyquorum_chain_height", &[], block.height as f64);
        {
            let mut s = self.status.lock().expect("status lock");
            s.height = block.height;
        }
        self.refresh_status();
        Ok(out)
    }

    /// One event: the follower's steps for it (the rules of following the chain), then what
    /// the node notes about it besides its ceremony (registry, metrics, logs).
    fn on_event(
        &mut self,
        e: &Event,
        height: u64,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        for step in self.follower.event(e) {
            self.on_step(step, height, batch, effects)?;
        }
        self.note_event(e, height, effects);
        Ok(())
    }

    fn on_step(
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
                warn!(view, ceremony_number, %reason, "not taking part in this ceremony_number");
            }
            Step::Posts(posts) => self.feed_posts(posts, batch, effects)?,
            Step::Deadline => {
                self.feed(Input::Deadline, batch, effects)?;
                if self.fault == Fault::Crash
                    && !self.state.crashed_once
                    && self
                        .live
                        .as_ref()
                        .is_some_and(|l| matches!(l.node, Runner::Participant(_)))
                    && self.board_phase() == Some(BoardPhase::Share)
                {
                    warn!("fault injection: crashing at the start of the share phase");
                    self.state.crashed_once = true;
                    effects.push(Effect::Crash);
                }
            }
            Step::CeremonyEnded { .. } => self.end_session(batch, effects)?,
            Step::MagicBlock {
                view,
                ceremony_number,
                hash,
                block,
                index,
            } => self.on_magic_block(view, ceremony_number, &hash, &block, index, effects)?,
            Step::ViewActivated { view, hash, .. } => {
                self.on_view_activated(view, &hash, batch)?;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn on_ceremony_started(
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
        let hexes = |m: &[Member]| -> Vec<String> {
            m.iter()
                .map(|p| hex::encode(p.identity.to_bytes()))
                .collect()
        };
        {
            let mut s = self.status.lock().expect("status lock");
            s.pending = Some(PendingStatus {
                view,
                ceremony_number,
                attempt: 0,
                key_mode: if reshare { "reshare" } else { "fresh" }.into(),
                committee: hexes(ceremony.players()),
                dealers: if reshare {
                    hexes(ceremony.dealers())
                } else {
                    Vec::new()
                },
                role: role.as_str().into(),
                share_index: ceremony.player_position(&self.me).map(|p| p as u64 + 1),
            });
            s.sitting_out = None;
        }
        info!(
            view,
            ceremony_number,
            n = ceremony.n(),
            role = role.as_str(),
            reshare,
            "committee selected"
        );
        let seat = if role.takes_part() {
            // Selected in a block below the chain's head: this node is catching up (after a
            // restart, or with a lost database) and may have contributed already; it decides
            // once caught up.
            if self.head.is_some_and(|h| height < h) {
                Some(Seat::CatchingUp)
            } else {
                Some(Seat::Participant)
            }
        } else if self.state.shares.iter().any(|s| s.view + 1 == view) {
            // A previous member outside the session signs the handover: it follows the board
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

    fn on_magic_block(
        &mut self,
        view: u64,
        ceremony_number: u32,
        hash: &[u8; 32],
        block: &MagicBlock,
        index: Option<u64>,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        let signs_handover = self.state.shares.iter().any(|s| s.view + 1 == view);
        let signs = self.fault != Fault::Silent && (index.is_some() || signs_handover);
        if signs && let Err(what) = self.check_magic_block(view, ceremony_number, hash, block) {
            self.reject_magic_block(view, ceremony_number, hash, what);
            return Ok(());
        }
        self.state.pending_magic = Some(PendingMagic {
            view,
            ceremony_number,
            hash: hex::encode(hash),
            index,
            group_key: hex::encode(block.group_key.0),
            members: block
                .members
                .iter()
                .map(|m| hex::encode(m.identity.0))
                .collect(),
        });
        info!(view, ceremony_number, hash = %hex::encode(hash), member = index.is_some(), "magic block created");
        if self.fault != Fault::Silent {
            self.sign_magic_block(view, ceremony_number, hash, index, effects)?;
        }
        Ok(())
    }

    /// What the node notes about an event besides the ceremony it follows: the registry of
    /// network identities, phase timings, faults recorded on chain, and the magic block
    /// awaiting signatures when its ceremony fails.
    fn note_event(&mut self, e: &Event, height: u64, effects: &mut Vec<Effect>) {
        match e {
            Event::PostRejected { reason, .. } => {
                let name = reason.split(':').next().unwrap_or(reason);
                self.metrics.fault(name);
            }
            Event::Registered {
                identity, network, ..
            }
            | Event::NetworkUpdated { identity, network } => {
                self.state
                    .registry
                    .insert(hex::encode(identity.0), network.clone());
                if identity.0 == self.me.to_bytes() {
                    if matches!(e, Event::Registered { .. }) {
                        info!(height, "registered on chain");
                        self.state.registered = true;
                    }
                } else {
                    effects.push(Effect::Learn {
                        identity: identity.0.to_vec(),
                        addresses: network.addresses.clone(),
                        peers: self.state.registry.len(),
                    });
                }
            }
            Event::Deregistered { identity, .. } => {
                self.state.registry.remove(&hex::encode(identity.0));
                if identity.0 == self.me.to_bytes() {
                    self.state.registered = false;
                }
            }
            Event::PhaseChanged {
                view,
                ceremony_number,
                attempt,
                phase,
                deadline,
            } => {
                let name = format!("{phase:?}").to_lowercase();
                let now = Instant::now();
                if let Some((prev, since)) = self.phase.take()
                    && prev != "idle"
                {
                    self.metrics
                        .phase(&prev, now.duration_since(since).as_secs_f64());
                }
                self.phase = Some((name.clone(), now));
                self.phase_deadline = *deadline;
                debug!(view, ceremony_number, attempt, phase = %name, deadline, "phase");
                let mut s = self.status.lock().expect("status lock");
                s.phase = name;
                s.phase_deadline = Some(*deadline);
                if let Some(p) = &mut s.pending {
                    p.attempt = *attempt;
                }
            }
            Event::CeremonyFailed {
                view,
                ceremony_number,
                reason,
                ..
            } => {
                warn!(view, ceremony_number, %reason, "ceremony failed");
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
                ..
            } => {
                warn!(view, ceremony_number, %reason, "view change aborted");
                self.state.pending_magic = None;
                self.status.lock().expect("status lock").pending = None;
            }
            Event::Slashed { record } => {
                self.metrics.fault(&record.fault);
                info!(
                    view = record.view,
                    identity = %hex::encode(&record.identity.0[..8]),
                    fault = %record.fault,
                    "fault recorded on chain"
                );
            }
            _ => {}
        }
    }

    fn is_ceremony(&self, view: u64, ceremony_number: u32) -> bool {
        self.state
            .session
            .as_ref()
            .is_some_and(|s| s.view == view && s.ceremony_number == ceremony_number)
    }

    /// Starts ceremony `(view, ceremony_number)` of `ceremony` (defined by `spec`) in `seat`.
    fn start_ceremony(
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
        let record = SessionRecord {
            view,
            ceremony_number,
            session_id: sid.clone(),
            spec: spec.clone(),
            inputs: 0,
            done: false,
            seat,
        };
        if seat != Seat::Participant {
            self.state.session = Some(record);
            let runner = Runner::Board(Box::new(Board::new(ceremony.clone())));
            self.live = Some(self.make_live(id, ceremony, runner, [0; 32]));
            return Ok(());
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(seed.as_mut());
        let Some(node) = self.new_participant(&ceremony, view, *seed)? else {
            return Ok(());
        };
        // The seed is durable before the participant produces anything.
        self.put_secret(batch, &format!("seed/{sid}"), seed.as_slice())?;
        self.state.session = Some(record);
        let runner = Runner::Participant(Box::new(node));
        self.live = Some(self.make_live(id, ceremony.clone(), runner, *seed));
        effects.push(self.enter_effect(&ceremony, id));
        self.feed(Input::Start, batch, effects)
    }

    /// The chain's height as the runtime last saw it. A session selected below it was selected
    /// while this node was catching up; once the node has processed the head, it takes part
    /// in that session or sits it out (module docs, "A lost database").
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

    fn catching_up(&self) -> bool {
        self.state
            .session
            .as_ref()
            .is_some_and(|s| s.seat == Seat::CatchingUp)
    }

    /// Caught up with the chain, in a session selected meanwhile: if this node's contribution
    /// is on the board, the seed behind it is lost (a node that had it would have resumed the
    /// session, not started it again), so it sits the session out; otherwise it takes part
    /// from here, its participant fed everything the board has seen so far.
    fn settle_catching_up(
        &mut self,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        let (Some(mut rec), Some(live)) = (self.state.session.clone(), self.live.as_ref()) else {
            return Ok(());
        };
        if rec.seat != Seat::CatchingUp {
            return Ok(());
        }
        let (id, ceremony) = (live.id, live.ceremony.clone());
        let board = live.node.board();
        let contributed = ceremony.dealer_position(&self.me).is_some_and(|d| {
            board.contribution(d).is_some() || board.faults().any(|(x, _)| x == d)
        });
        if contributed {
            error!(
                view = rec.view,
                ceremony_number = rec.ceremony_number,
                "this node's contribution is on the board but its state for it is lost \
                 (database lost or restored from an old backup?); sitting this session out \
                 instead of dealing again"
            );
            self.metrics.fault("sat_out_lost_state");
            self.show_sitting_out(rec.view, rec.ceremony_number);
            rec.seat = Seat::SittingOut;
            self.state.session = Some(rec);
            return Ok(());
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(seed.as_mut());
        let Some(node) = self.new_participant(&ceremony, rec.view, *seed)? else {
            rec.seat = Seat::Observer;
            self.state.session = Some(rec);
            return Ok(());
        };
        info!(
            view = rec.view,
            ceremony_number = rec.ceremony_number,
            "caught up with the chain; taking part in the running session"
        );
        let seen = batch.inputs(&id)?;
        batch.delete_inputs(&id)?;
        self.put_secret(batch, &format!("seed/{}", rec.session_id), seed.as_slice())?;
        rec.seat = Seat::Participant;
        rec.inputs = 0;
        self.state.session = Some(rec);
        let runner = Runner::Participant(Box::new(node));
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

    fn show_sitting_out(&self, view: u64, ceremony_number: u32) {
        self.status.lock().expect("status lock").sitting_out = Some(SittingOutStatus {
            view,
            ceremony_number,
            reason: "own contribution is on the board but its state is lost".into(),
        });
    }

    fn end_session(
        &mut self,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        self.live = None;
        if let Some(rec) = self.state.session.take() {
            let mut id = [0u8; 32];
            if hex::decode_to_slice(&rec.session_id, &mut id).is_ok() {
                batch.delete_inputs(&id)?;
                self.recent.push_back(id);
                if self.recent.len() > RECENT_SESSIONS {
                    self.recent.pop_front();
                }
                effects.push(Effect::LeaveSession { session: id });
            }
            self.delete_secret(batch, &format!("seed/{}", rec.session_id))?;
        }
        Ok(())
    }

    fn feed(
        &mut self,
        input: Input,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        let (Some(live), Some(rec)) = (self.live.as_mut(), self.state.session.as_mut()) else {
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
    fn feed_posts(
        &mut self,
        posts: Vec<Vec<u8>>,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        if posts.is_empty() {
            return Ok(());
        }
        let (Some(live), Some(rec)) = (self.live.as_mut(), self.state.session.as_mut()) else {
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
    fn carry_out(
        &mut self,
        actions: Vec<Action<G>>,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
        on_board: Option<&HashSet<Vec<u8>>>,
    ) -> Result<(), DriverError> {
        for a in actions {
            match a {
                Action::Send { to, payload } => {
                    let kind = payload_kind(&payload);
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
                    let forged = self.note_post(&bytes);
                    let kind = match bytes.get(48) {
                        Some(1) => "contribution",
                        _ => "publication",
                    };
                    if on_board.is_none_or(|b| !b.contains(&bytes)) {
                        effects.push(Effect::Submit(Box::new(Submission {
                            body: TxBody::DkgPost { post: bytes },
                            kind,
                            expires: None,
                        })));
                    }
                    if let Some(f) = forged
                        && on_board.is_none_or(|b| !b.contains(&f))
                    {
                        warn!("fault injection: posting a second, different contribution");
                        effects.push(Effect::Submit(Box::new(Submission {
                            body: TxBody::DkgPost { post: f },
                            kind: "contribution",
                            expires: None,
                        })));
                    }
                }
                Action::Finished(out) => {
                    let (view, ceremony_number, sid) = match &self.state.session {
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
                        self.metrics.add(
                            "keyquorum_ceremonies_total",
                            &[("result", "success")],
                            1.0,
                        );
                        info!(
                            view,
                            ceremony_number,
                            group_key = %record.group_key.clone().unwrap_or_default(),
                            qualified = ?record.qualified,
                            excluded = record.exclusions.len(),
                            "ceremony finished"
                        );
                    }
                    self.record_output(record);
                }
                Action::Failed(f) => {
                    let Some(r) = &self.state.session else {
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
                        self.metrics.add(
                            "keyquorum_ceremonies_total",
                            &[("result", "failure")],
                            1.0,
                        );
                        warn!(view = r.view, ceremony_number = r.ceremony_number, reason = f.reason.as_str(), qualified = ?f.qualified, "ceremony failed for this node");
                    }
                    self.record_output(record);
                }
                Action::Observed(o) => {
                    if on_board.is_some() {
                        continue;
                    }
                    match o {
                        Observation::BadShare { dealer } => {
                            warn!(
                                dealer,
                                "received a share that does not match its commitment"
                            );
                            self.metrics.fault("bad_share_received");
                        }
                        Observation::BadAck { player } => {
                            warn!(player, "an ack did not verify");
                            self.metrics.fault("bad_ack_received");
                        }
                        Observation::Malformed(m) => {
                            debug!(reason = %m, "malformed message");
                            self.metrics.fault("malformed_message");
                        }
                        Observation::WrongSender { role, index } => {
                            debug!(
                                ?role,
                                index, "dropping a message whose sender is not its author"
                            );
                            self.metrics.fault("wrong_sender");
                        }
                        // The contract refused the same post (it runs the same board) and
                        // reports it as PostRejected or not at all; nothing to add here.
                        Observation::Refused(_) => {}
                    }
                }
            }
        }
        Ok(())
    }

    fn record_output(&mut self, record: OutputRecord) {
        if let Some(r) = &mut self.state.session {
            r.done = true;
        }
        self.state
            .outputs
            .retain(|o| o.session_id != record.session_id);
        self.state.outputs.push(record);
        while self.state.outputs.len() > KEPT_OUTPUTS {
            self.state.outputs.remove(0);
        }
    }

    /// Fault hooks on our own posts: remembers the contribution's hash (for bad shares) and,
    /// for `equivocate`, returns a second, different contribution signed by us.
    fn note_post(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let live = self.live.as_mut()?;
        let signed = SignedPost::<G>::decode(bytes, live.ceremony.n()).ok()?;
        let Post::Contribution(c) = signed.post else {
            return None;
        };
        live.fault.contribution_hash = Some(c.commitment_hash());
        if self.fault != Fault::Equivocate {
            return None;
        }
        let mut rng = ChaCha20Rng::from_seed(tagged_hash(
            "keyquorum/node/fault-equivocate/v1",
            &[live.seed.as_slice()],
        ));
        let poly = Polynomial::random(live.ceremony.t() - 1, None, &mut rng);
        let post = Post::Contribution(Contribution::<G> {
            session: c.session,
            dealer: c.dealer,
            commitment: EvalCommitment::feldman(&poly, live.ceremony.player_indices()),
        });
        let signature = self.keys.identity().sign(Purpose::Post, &post.encode());
        Some(SignedPost { post, signature }.encode())
    }

    /// The `bad-share` fault: replaces the share encrypted to a target player by a random one,
    /// encrypted correctly (so the player can open it and see that it is wrong).
    fn corrupt_deal(&mut self, payload: Vec<u8>) -> Vec<u8> {
        let Some(live) = self.live.as_mut() else {
            return payload;
        };
        if live.fault.bad_targets.is_empty() {
            return payload;
        }
        let (Ok(Direct::Deal(d)), Some(hash)) =
            (Direct::decode(&payload), live.fault.contribution_hash)
        else {
            return payload;
        };
        if !live.fault.bad_targets.contains(&d.player) {
            return payload;
        }
        let Some(player) = live.ceremony.players().get(d.player as usize) else {
            return payload;
        };
        let aad = ShareAad {
            session_id: d.session,
            dealer: d.dealer,
            recipient: d.player,
            commitment_hash: hash,
        };
        let wrong = Scalar::random(&mut live.fault.rng);
        let ct = encrypt::seal(
            &player.encryption,
            &aad,
            &G::encode_scalar(&wrong),
            &mut live.fault.rng,
        );
        debug!(player = d.player, "fault injection: sending a wrong share");
        Direct::Deal(Deal {
            ciphertext: ct.to_bytes(),
            ..d
        })
        .encode()
    }

    /// Rebuilds the magic block of `(view, session)` from this node's own board, previous view
    /// and registry with the contract's construction, and compares it with the chain's block
    /// and hash. `Err` names the first difference.
    fn check_magic_block(
        &self,
        view: u64,
        ceremony_number: u32,
        hash: &[u8; 32],
        block: &MagicBlock,
    ) -> Result<(), String> {
        let Some(live) = self
            .live
            .as_ref()
            .filter(|_| self.is_ceremony(view, ceremony_number))
        else {
            return Err("no board of this session to check it against".into());
        };
        let previous_hash = if view <= 1 {
            [0u8; 32]
        } else {
            let mut h = [0u8; 32];
            match &self.state.current_hash {
                Some(x) if self.state.current_view + 1 == view => {
                    hex::decode_to_slice(x, &mut h)
                        .map_err(|_| "stored previous hash does not decode".to_string())?;
                }
                _ => return Err(format!("view {} is not the active view", view - 1)),
            }
            h
        };
        let place = MagicBlockPlace {
            // Not derived from the board: where the chain puts the view (the hash still binds
            // them, and every committee signs the same bytes).
            chain_id: block.chain_id.clone(),
            first_round: block.first_round,
            view,
            ceremony_number,
            key_mode: if live.ceremony.reshare().is_some() {
                KeyMode::Reshare
            } else {
                KeyMode::Fresh
            },
            previous_hash,
        };
        let registry = &self.state.registry;
        let expected = MagicBlock::from_board(&place, live.node.board(), |id| {
            registry.get(&hex::encode(id.0)).cloned()
        })
        .map_err(|e| e.to_string())?;
        if let Some(what) = expected.first_difference(block) {
            return Err(what.to_string());
        }
        if &expected.hash() != hash {
            return Err("hash".into());
        }
        Ok(())
    }

    /// A magic block that is not the one this node's board defines: nothing is signed.
    fn reject_magic_block(
        &mut self,
        view: u64,
        ceremony_number: u32,
        hash: &[u8; 32],
        what: String,
    ) {
        error!(
            view,
            ceremony_number,
            hash = %hex::encode(hash),
            differs_in = %what,
            "the chain's magic block is not the one this node's board defines; not signing it"
        );
        self.metrics.add(
            "keyquorum_magic_block_mismatches_total",
            &[("what", &what)],
            1.0,
        );
        self.status
            .lock()
            .expect("status lock")
            .magic_block_mismatch = Some(MagicBlockMismatch {
            view,
            ceremony_number,
            hash: hex::encode(hash),
            what,
        });
    }

    fn sign_magic_block(
        &mut self,
        view: u64,
        ceremony_number: u32,
        hash: &[u8; 32],
        index: Option<u64>,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        // With the new share, as a member of the new committee.
        if let Some(index) = index
            && let Some(out) = self
                .state
                .outputs
                .iter()
                .find(|o| o.view == view && o.ceremony_number == ceremony_number && o.has_share)
            && let Some(share) = self.scalar(&format!("output/{}", out.session_id))?
        {
            let message = signing_message(SignerRole::New, hash);
            let partial = tbls::partial_sign::<MinPk>(&share, Scalar::from(index), &message);
            effects.push(Effect::Submit(Box::new(Submission {
                body: TxBody::MagicBlockSignature {
                    view,
                    block_hash: *hash,
                    role: SignerRole::New,
                    partial,
                },
                kind: "magic_block_signature",
                expires: None,
            })));
        }
        // With the previous share, as a member of the previous committee (the handover).
        if view > 1
            && let Some(prev) = self
                .state
                .shares
                .iter()
                .find(|s| s.view == view - 1)
                .cloned()
            && let Some(share) = self.scalar(&format!("share/{}", prev.view))?
        {
            let message = signing_message(SignerRole::Old, hash);
            let partial = tbls::partial_sign::<MinPk>(&share, Scalar::from(prev.index), &message);
            effects.push(Effect::Submit(Box::new(Submission {
                body: TxBody::MagicBlockSignature {
                    view,
                    block_hash: *hash,
                    role: SignerRole::Old,
                    partial,
                },
                kind: "magic_block_signature",
                expires: None,
            })));
        }
        Ok(())
    }

    /// A view is active: the new share (if this node signed its magic block as a member)
    /// becomes the view's share. The ceremony ends with the follower's next step.
    fn on_view_activated(
        &mut self,
        view: u64,
        hash: &[u8; 32],
        batch: &mut Batch,
    ) -> Result<(), DriverError> {
        let pm = self.state.pending_magic.take();
        let mut own_index = None;
        let mut committee = Vec::new();
        let mut group_key = None;
        if let Some(pm) = pm.filter(|p| p.view == view && p.hash == hex::encode(hash)) {
            committee = pm.members.clone();
            group_key = Some(pm.group_key.clone());
            if let Some(index) = pm.index
                && let Some(out) = self
                    .state
                    .outputs
                    .iter()
                    .find(|o| {
                        o.view == view && o.ceremony_number == pm.ceremony_number && o.has_share
                    })
                    .cloned()
                && let Some(share) = self.secret(&format!("output/{}", out.session_id))?
            {
                self.put_secret(batch, &format!("share/{view}"), &share)?;
                self.delete_secret(batch, &format!("output/{}", out.session_id))?;
                self.state.shares.retain(|s| s.view != view);
                self.state.shares.push(ShareRecord {
                    view,
                    ceremony_number: pm.ceremony_number,
                    index,
                    group_key: pm.group_key.clone(),
                });
                own_index = Some(index);
            }
        }
        // Keep the current and the previous view's shares (the previous one signs the next
        // magic block and deals the next reshare); wipe older ones.
        let old: Vec<u64> = self
            .state
            .shares
            .iter()
            .filter(|s| s.view + 1 < view)
            .map(|s| s.view)
            .collect();
        for v in old {
            self.delete_secret(batch, &format!("share/{v}"))?;
        }
        self.state.shares.retain(|s| s.view + 1 >= view);
        self.state.current_view = view;
        self.state.current_hash = Some(hex::encode(hash));
        self.metrics.set("keyquorum_view", &[], view as f64);
        info!(view, member = own_index.is_some(), hash = %hex::encode(hash), "view activated");
        let mut s = self.status.lock().expect("status lock");
        s.view = view;
        s.committee = committee;
        s.group_key = group_key;
        s.share_index = own_index;
        s.pending = None;
        Ok(())
    }

    /// Handles a batch of direct messages; returns one verdict per message and the effects.
    pub fn process_messages(
        &mut self,
        msgs: Vec<Incoming>,
    ) -> Result<(Vec<Verdict>, Vec<Effect>), DriverError> {
        let mut verdicts = Vec::with_capacity(msgs.len());
        let mut effects = Vec::new();
        let mut batch: Option<Batch> = None;
        for m in msgs {
            let from = match self.check_message(&m) {
                Ok(from) => from,
                Err(v) => {
                    verdicts.push(v);
                    continue;
                }
            };
            if batch.is_none() {
                batch = Some(self.store.begin()?);
            }
            let b = batch.as_mut().expect("just set");
            let input = Input::Message {
                from,
                payload: m.payload,
            };
            self.feed(input, b, &mut effects)?;
            verdicts.push(Verdict::Accepted);
        }
        if let Some(b) = batch {
            self.commit(b)?;
        }
        Ok((verdicts, effects))
    }

    /// Whether a message goes to the live participant and, if so, the sender the network layer
    /// authenticated. Whether that sender is the author the message claims is the participant's
    /// rule (`Observation::WrongSender`), not checked here.
    fn check_message(&self, m: &Incoming) -> Result<IdentityPublicKey, Verdict> {
        let Some(live) = &self.live else {
            return Err(if self.recent.contains(&m.session) {
                Verdict::Ignored
            } else {
                Verdict::Later
            });
        };
        if live.id != m.session {
            return Err(if self.recent.contains(&m.session) {
                Verdict::Ignored
            } else {
                Verdict::Later
            });
        }
        if self.state.session.as_ref().is_none_or(|s| s.done) {
            return Err(Verdict::Ignored);
        }
        // Without an authenticated sender a message cannot be attributed to anyone.
        let Some(from) = &m.from else {
            debug!("dropping a message without an authenticated sender");
            return Err(Verdict::Ignored);
        };
        // Members' keys are already validated; only an outsider's is decoded (and checked).
        let known = live
            .ceremony
            .dealers()
            .iter()
            .chain(live.ceremony.players())
            .find(|p| p.identity.as_bytes()[..] == from[..])
            .map(|p| p.identity.clone());
        match known {
            Some(id) => Ok(id),
            None => IdentityPublicKey::from_bytes(from).map_err(|_| Verdict::Ignored),
        }
    }

    /// The deal this node (as a dealer) sent to `requester` in `session`, for a pull.
    pub fn deal_for(&self, session: &[u8; 32], requester: &[u8]) -> Option<Vec<u8>> {
        let live = self.live.as_ref()?;
        if &live.id != session {
            return None;
        }
        live.outbox.get(requester).cloned()
    }

    fn refresh_status(&self) {
        let mut s = self.status.lock().expect("status lock");
        s.registered = self.state.registered;
        if s.view == 0 && self.state.current_view > 0 {
            s.view = self.state.current_view;
            if let Some(sh) = self
                .state
                .shares
                .iter()
                .find(|x| x.view == self.state.current_view)
            {
                s.share_index = Some(sh.index);
                s.group_key = Some(sh.group_key.clone());
            }
        }
        if let Some(o) = self.state.outputs.last() {
            s.qualified = o.qualified_identities.clone();
            s.last_outcome = Some(o.clone());
        }
    }
}

fn exclusions(ex: &[keyquorum_dkg::board::Exclusion]) -> Vec<ExclusionRecord> {
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
