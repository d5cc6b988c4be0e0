//! The driver: the node's deterministic core, between the chain, the peers and the participant
//! state machine. It does no I/O itself besides its database: it consumes chain blocks and
//! peer messages and returns [`Effect`]s (messages to send, transactions to submit) for the
//! runtime to carry out, only after the inputs that caused them are durable.
//!
//! # Following the chain
//! Blocks are processed strictly in height order, each event in block order. The rules that
//! turn the contract's events into this node's participant inputs are the contract crate's
//! [`Follower`] (the same one the contract's and the node's test chains use); the driver acts
//! on its [`Step`]s and keeps what the follower does not: storage, secrets, effects, reports.
//! - `Registered`/`NetworkUpdated` keep a registry of network identities: the peer id and
//!   addresses each validator signed into its registration, which the runtime binds the
//!   validator's identity to so that its messages go straight to that peer. `Registered` and
//!   `VerifiableKeySet` also record each validator's encryption keys;
//! - a ceremony start ([`Step::CeremonyStarted`]) starts a participant if this node deals or
//!   plays in the ceremony (the previous view's share is loaded for a resharing dealer) and
//!   feeds it `Start`, once the spec is found to name for each player the keys that player
//!   registered and set (a chain naming its own key would read that player's shares);
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
//!   A member of the previous committee that is not in the new ceremony follows the ceremony's
//!   board as an observer for this purpose;
//! - `ViewActivated` promotes the new share to the view's share and drops shares older than the
//!   previous view; `CeremonyFailed`/`ViewChangeAborted` drop the ceremony.
//!
//! # Crash safety
//! Each block and each batch of peer messages is one database transaction holding the inputs
//! consumed and the new state; it commits before the effects are returned. An empty block (no
//! transaction, no end-of-block event) moves only the cursor and is not written on its own
//! (see [`Driver::process_block`]): after a crash it is processed again, to the same state.
//! A ceremony's participant is a deterministic function of its seed (stored sealed when the
//! ceremony starts, before `Start`) and its logged inputs, so [`Driver::open`] rebuilds it by
//! replay after a crash and returns the effects again: the same deals, acks and posts, byte for
//! byte (BLS signatures and the seeded randomness are deterministic). Re-sending is harmless (peers and the board
//! drop duplicates); posts already on the board are not re-submitted.
//!
//! # A lost database
//! A node that lost its database follows the chain again from the start; one that was down
//! follows it from where it stopped. A ceremony, of a view or of its signing key, selected while
//! it is still catching up (the runtime tells it the chain's height, [`Driver::set_head`]) is
//! only followed until the node has caught up. If it may have dealt in it by then, the seed
//! behind that is gone and dealing again would be equivocation, so the node sits the ceremony
//! out (it keeps following the board, says so in the log and on `/status`: `sitting_out` or
//! `signing_key_sitting_out`); otherwise it takes part from there. It may have dealt if the
//! board shows its contribution, or if the board cannot show it yet (the complaint variant's
//! deals, before the reports) and its database has not caught up with the chain before: a
//! database that did is the node's record, and has none of this ceremony (`catch_up`). A node
//! that takes part after the deal window closed (the ack-or-reveal contribution phase, the
//! complaint variant's reports) plays only and never deals: its deals could no longer count,
//! and one drawn from a fresh seed could contradict one a superseded copy of its database
//! made.
//!
//! # Files
//! One concern per file: `events` (chain events through the follower), `ceremony` (the
//! running ceremony's lifecycle and the participant's actions), `catch_up` (joining or
//! sitting out a ceremony selected while catching up), `replay` (resuming after a restart),
//! `magic` (checking and signing magic blocks, activating views), `peers` (direct
//! messages), `faults` (fault injection), `storage` (sealed secrets and commits),
//! `kinds` (message kinds read from the engine's tags), `beacon` (the chain and group of
//! each view's beacon), `outbox` (the observations it
//! reports) and `runner` (participant or board).
//!
//! # Reports
//! The core writes neither `/status` nor the metrics: it records what happened as typed
//! [`Observation`]s (a ceremony selected, an outcome recorded, a view activated, a magic block
//! refused, a fault seen, ...) that the caller drains after each call
//! ([`Driver::drain_observations`]) and hands to the node's one [`crate::report::Reporter`].
//!
//! # Peers
//! A direct message is consumed only if it comes from the identity its content names: the
//! network layer attributes each request to the identity whose signed record the sender
//! presented on its authenticated connection, and a deal must come from its dealer, an ack from
//! its player. Without this check anyone could send garbage "from" an honest dealer and make a
//! player refuse that dealer's real share later.

mod beacon;
mod catch_up;
mod ceremony;
mod events;
mod faults;
mod history;
mod kinds;
mod magic;
mod outbox;
mod peers;
mod replay;
mod runner;
mod signing_key;
mod storage;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use ff::Field;
use keyquorum_contract::config::{BeaconConfig, KeyMode};
use keyquorum_contract::follow::{FollowedCeremony, Follower, SeatRole, Step};
use keyquorum_contract::hex::Hex;
use keyquorum_contract::magic::{BuildError, MagicBlock, MagicBlockPlace, signing_message};
use keyquorum_contract::tx::{NetworkIdentity, SignerRole, TxBody};
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
use keyquorum_dkg::complaint::messages::{
    Deal as ComplaintDeal, SignedComplaintPost, SignedPedersen, pedersen_hash, seal_deal,
};
use keyquorum_dkg::complaint::{ComplaintBoard, ComplaintBoardPhase, ComplaintParticipant};
use keyquorum_dkg::identity::{IdentityPublicKey, Purpose};
use keyquorum_dkg::messages::{Contribution, Deal, Direct, Post, SignedPost};
use keyquorum_dkg::participant::{Action, Input, Observation as ParticipantObservation};
use keyquorum_dkg::preverify::preverify_posts;
use keyquorum_dkg::{Ceremony, Member, Variant};
use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, RngCore, SeedableRng};
use tracing::{debug, error, info, warn};
use zeroize::Zeroizing;

use crate::chain::{ChainAction, ChainBlock};
use crate::config::Fault;
use crate::keys::NodeKeys;
use crate::report::Observation;
use crate::status::{MagicBlockMismatch, PendingStatus};
use crate::store::{
    Batch, CeremonyRecord, ExclusionRecord, NodeState, OutputRecord, PendingMagic, PhaseRecord,
    Seat, ShareRecord, Store, StoreError,
};

pub use beacon::{MAX_ENDED_CHAINS, beacon_genesis_time, ended_chains, scheme_id};
use faults::FaultState;
use kinds::{direct_kind, post_kind};
use outbox::pending_status;
use runner::{Live, Runner};
pub use signing_key::HeldSigningKey;
/// The group of keys and commitments (BLS12-381 G1, signatures in G2).
pub type G = Group;
type Scalar = <G as Curve>::Scalar;

/// Network message kind: an encoded `Direct` (deal or ack); the response is empty.
pub const KIND_DIRECT: u8 = 1;
/// Network message kind: a player asks a dealer for its deal; the response is the deal.
pub const KIND_PULL: u8 = 2;

/// Session ids of finished ceremonies kept, whose late messages are acknowledged and dropped.
const RECENT_CEREMONIES: usize = 8;
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
    pub action: ChainAction,
    /// For logs and metrics.
    pub kind: &'static str,
    /// Last height at which it is useful (its phase's deadline).
    pub expires: Option<u64>,
}

/// Something for the runtime to do.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Deliver a direct message (retrying until delivered or the ceremony ends).
    Send {
        /// The ceremony's session id.
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
        /// The ceremony's session id.
        session: [u8; 32],
        /// Dealer identity.
        from: Vec<u8>,
    },
    /// Sign and submit a transaction.
    Submit(Box<Submission>),
    /// A ceremony starts: admit its members, bind them to their registered network identities.
    EnterSession {
        /// The ceremony's session id.
        session: [u8; 32],
        /// Dealers and players (identity bytes).
        members: Vec<Vec<u8>>,
        /// `(identity, network identity)` of the members in the registry.
        networks: Vec<(Vec<u8>, NetworkIdentity)>,
    },
    /// Another node registered or changed its network identity: bind its identity to it.
    Learn {
        /// Identity (bytes).
        identity: Vec<u8>,
        /// The network identity it signed on chain.
        network: NetworkIdentity,
    },
    /// A ceremony is over: stop its retries.
    LeaveSession {
        /// The ceremony's session id.
        session: [u8; 32],
    },
    /// The `crash` fault: abort now (state is durable).
    Crash,
    /// A view is active (or the node restarted in one): run the beacon of
    /// [`NodeState::beacon`], with this node's share of the view if it holds one
    /// ([`Driver::beacon_share`]).
    StartBeacon {
        /// The view.
        view: u64,
    },
    /// A view's signing key is recorded (or the node restarted in a view that has one): sign
    /// with it on demand ([`Driver::signing_key`]).
    StartSigningKey {
        /// The view.
        view: u64,
    },
}

/// A direct message from a peer (or the answer to a pull).
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Session id the sender tagged it with.
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
    /// Acknowledged but dropped (finished ceremony, wrong sender, garbage).
    Ignored,
    /// Not answered, so the sender retries: a ceremony this node has not seen start yet.
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

/// The node's core. See the module docs.
pub struct Driver {
    store: Store,
    keys: Arc<NodeKeys>,
    fault: Fault,
    me: IdentityPublicKey,
    state: NodeState,
    live: Option<Live>,
    /// The running signing-key ceremony (see `signing_key`).
    signing: Option<signing_key::SigningLive>,
    /// Secrets written in the batch being built (not yet readable from the store).
    fresh_secrets: HashMap<String, Vec<u8>>,
    recent: VecDeque<[u8; 32]>,
    /// What happened since the caller last drained it (module docs, "Reports").
    observations: Vec<Observation>,
    /// Last block of the contract's phase in progress (posts made in it expire then).
    phase_deadline: u64,
    /// The chain's height as last reported by the runtime (unknown: not catching up).
    head: Option<u64>,
    /// Turns the contract's events into this node's steps (the rules of following the chain).
    follower: Follower,
    /// Production time (Unix ms) of the block being processed: a new beacon chain's genesis
    /// follows from its activation block's time.
    block_time_ms: u64,
    /// The active view's magic block, if this node recorded it (it saw the block while it was
    /// being signed): its committee signs the next handover. Stored apart from the state.
    active_block: Option<MagicBlock>,
    /// The beacon the contract configures for a fresh key's view, as the chain reported it when
    /// the node started (see [`Driver::set_configured_beacon`]).
    configured_beacon: BeaconConfig,
    /// The cursor of the state last written to the database (see [`Driver::process_block`] on
    /// empty blocks).
    stored_cursor: u64,
    /// Abandoned view changes already warned about.
    aborts: AbortLog,
    /// Events of replayed blocks, said once caught up ([`history`]).
    history: history::HistoryTally,
    /// The last view whose reshare this node was a dealer of without a share of the view
    /// before: warned once per view, not at every retry.
    no_old_share: crate::repeat_log::RepeatLog<u64>,
    /// Whether this process has seen the node process the chain's head
    /// ([`Driver::reached_head`]).
    head_reached: bool,
    /// The last view this node was warned to be listed in without a share of
    /// ([`Driver::warn_no_share`]).
    no_share: crate::repeat_log::RepeatLog<u64>,
}

/// The view and reason of the last view change abandoned. A committee that cannot form is
/// tried again every `retry_delay` blocks and abandoned again for the same reason; the
/// operator is warned once, and the repeats go to the debug log. A ceremony that failed between
/// two abandonments is warned about itself, so the abandonment after it is news only for
/// another view or reason.
type AbortLog = crate::repeat_log::RepeatLog<(u64, String)>;

/// Heights of empty blocks after which the cursor is written even though nothing else changed:
/// bounds what a restarted node processes again (12.8 s of the demo's 200 ms blocks).
pub const EMPTY_BLOCKS_PER_CHECKPOINT: u64 = 64;

fn hex_id(id: &IdentityPublicKey) -> String {
    hex::encode(id.as_bytes())
}

fn session_hex(id: &[u8; 32]) -> String {
    hex::encode(id)
}

impl Driver {
    /// Opens the driver on its database, resuming where it stopped: the running ceremony's
    /// participant is rebuilt from its sealed seed and logged inputs, and the effects needed to
    /// resume (re-sends, pending posts, pulls, signatures) are returned.
    pub fn open(
        store: Store,
        keys: Arc<NodeKeys>,
        fault: Fault,
    ) -> Result<(Self, Vec<Effect>), DriverError> {
        let state = store.load_state()?.unwrap_or(NodeState {
            cursor: 1,
            keys_recorded_from_start: true,
            ..Default::default()
        });
        let me = keys.identity().public().clone();
        let mut position = state.follower;
        if position.ceremony.is_none()
            && let Some(rec) = &state.ceremony
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
        // Only the block the state names as active: a crash between the two cannot happen (one
        // batch writes both), but a block of another view must never stand in for it.
        let active_block = store
            .active_block()?
            .filter(|b| state.current_hash.as_deref() == Some(hex::encode(b.hash()).as_str()));
        let stored_cursor = state.cursor;
        let phase_deadline = state.phase.as_ref().map_or(0, |p| p.deadline);
        let mut d = Driver {
            store,
            keys,
            fault,
            me,
            state,
            live: None,
            signing: None,
            fresh_secrets: HashMap::new(),
            recent: VecDeque::new(),
            observations: Vec::new(),
            phase_deadline,
            head: None,
            follower,
            block_time_ms: 0,
            active_block,
            configured_beacon: BeaconConfig::default(),
            stored_cursor,
            aborts: AbortLog::default(),
            history: history::HistoryTally::default(),
            no_old_share: Default::default(),
            head_reached: false,
            no_share: Default::default(),
        };
        d.observe_opened();
        let mut effects = d.resume()?;
        effects.extend(d.resume_signing()?);
        if let Some(b) = &d.state.beacon {
            effects.push(Effect::StartBeacon { view: b.view });
        }
        if let Some(k) = d.state.signing_keys.last() {
            effects.push(Effect::StartSigningKey { view: k.view });
        }
        Ok((d, effects))
    }

    /// The beacon the contract configures for a fresh key's view (the chain's status when the
    /// node starts): the value this node expects in such a view's magic block. A reshare's
    /// comes from the active view's block instead ([`BeaconConfig::for_view`]).
    pub fn set_configured_beacon(&mut self, beacon: BeaconConfig) {
        self.configured_beacon = beacon;
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

    /// Whether the chain has our verifiable-encryption key.
    pub fn verifiable_key_set(&self) -> bool {
        self.state.verifiable_key_set
    }

    /// The persisted state (for tests and reports).
    pub fn state(&self) -> &NodeState {
        &self.state
    }

    /// The active view's magic block, if this node recorded it: the committee that signs the
    /// next handover, whose partials a node combining them off chain checks against it. It
    /// survives a restart.
    pub fn active_block(&self) -> Option<&MagicBlock> {
        self.active_block.as_ref()
    }

    /// The running ack-or-reveal participant's board phase, if any.
    pub fn board_phase(&self) -> Option<BoardPhase> {
        self.live.as_ref()?.node.board().map(|b| b.phase())
    }

    /// Dealers whose shares the running participant holds.
    pub fn received_from(&self) -> Vec<u32> {
        self.live
            .as_ref()
            .map(|l| l.node.received_from())
            .unwrap_or_default()
    }

    /// Processes one committed block (blocks below the cursor are skipped: already done).
    ///
    /// A block without transactions or end-of-block events changes nothing but the cursor, so
    /// its processing is not written to the database: most blocks are empty, and writing the
    /// whole state with a synced commit for each was a fifth of an idle node's work. The cursor
    /// is written with the next write of the state (a block that changes something, a batch of
    /// peer messages), once it is [`EMPTY_BLOCKS_PER_CHECKPOINT`] heights past the last one
    /// written, and by [`Driver::checkpoint`]. A node killed in between restarts at an older
    /// cursor and processes those empty blocks again, which changes nothing either; nothing was
    /// sent on their account.
    pub fn process_block(&mut self, block: &ChainBlock) -> Result<BlockOutcome, DriverError> {
        let mut out = BlockOutcome::default();
        if block.height < self.state.cursor {
            return Ok(out);
        }
        self.block_time_ms = block.time_ms;
        let empty = block.txs.is_empty() && block.end_block_events.is_empty();
        // Posts are held back only until the end of the block whose events carried them, so
        // an empty block ends with no steps; taken here, they are still carried out below.
        let early_steps = empty.then(|| self.follower.end_block());
        if early_steps.as_ref().is_some_and(Vec::is_empty) && !self.catch_up_due(block.height) {
            self.state.cursor = block.height + 1;
            if self.state.cursor >= self.stored_cursor + EMPTY_BLOCKS_PER_CHECKPOINT {
                self.checkpoint()?;
            }
            self.observe(Observation::BlockProcessed {
                height: block.height,
            });
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
        let steps = match early_steps {
            Some(steps) => steps,
            None => self.follower.end_block(),
        };
        for step in steps {
            self.on_step(step, block.height, &mut batch, &mut out.effects)?;
        }
        self.state.cursor = block.height + 1;
        if self.catch_up_due(block.height) {
            self.caught_up(&mut batch, &mut out.effects)?;
        }
        if self.head.is_some_and(|h| block.height >= h) {
            // The blocks of before `--rejoin` are processed (as in `set_head`).
            self.state.rejoining = false;
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
        self.observe(Observation::BlockProcessed {
            height: block.height,
        });
        Ok(out)
    }

    /// Whether processing the block at `height` ends a catch-up: the chain's head is reached
    /// while a ceremony is being caught up with, or for the first time.
    fn catch_up_due(&self, height: u64) -> bool {
        self.head.is_some_and(|h| height >= h) && (self.catching_up() || !self.state.caught_up)
    }

    /// Writes the state if its cursor moved past the last one written (empty blocks, see
    /// [`Driver::process_block`]). The runtime calls it when the node stops.
    pub fn checkpoint(&mut self) -> Result<(), DriverError> {
        if self.state.cursor == self.stored_cursor {
            return Ok(());
        }
        let batch = self.store.begin()?;
        self.commit(batch)
    }
}

#[cfg(test)]
mod abort_log_tests {
    use super::AbortLog;

    #[test]
    fn an_abandonment_is_news_once_per_view_and_reason() {
        let mut log = AbortLog::default();
        let short = || "3 eligible nodes, at least 4 needed".to_string();
        assert!(log.is_news((2, short())));
        // The retries every `retry_delay` blocks.
        assert!(!log.is_news((2, short())));
        assert!(!log.is_news((2, short())));
        // Another reason, or another view, is news, and becomes the one repeats are held to.
        assert!(log.is_news((2, "2 eligible nodes, at least 4 needed".into())));
        assert!(log.is_news((2, short())));
        assert!(log.is_news((3, short())));
        assert!(!log.is_news((3, short())));
    }
}
