//! How the node talks to a chain: the chain-agnostic [`ChainClient`] trait and the types it
//! speaks ([`ChainStatus`], [`ChainBlock`], [`ChainTx`], [`Blocks`], [`SubmitOutcome`]), and one
//! adapter per chain ([`devchain`]: keyquorum's embedded chain over its HTTP API).
//!
//! The node needs only three things from a chain, so other chains can be added behind the same
//! trait: its status (the chain id, which every transaction signature binds), the committed
//! blocks in order with the contract's events (long-polled), and a way to submit a transaction.
//!
//! Transactions are typed ([`ChainAction`]): the node says what it does (register, post a
//! signed DKG post, a partial signature on a magic block, activate a view with the combined
//! signatures) and each adapter turns that into its chain's transaction
//! ([`ChainClient::prepare`]): the embedded chain signs it with the node's identity key and
//! nonce into its binary encoding, an EVM chain maps it to a call of the coordinator contract
//! ([`evm`]). Where the chain collects the magic block's partial signatures itself (the
//! embedded chain) the node submits them; where it verifies only a combined threshold
//! signature (the EVM contract) the node combines them with its peers off chain
//! ([`SignatureRoute`], `crate::activation`). Likewise, where the chain slashes a board fault
//! only on a proof (the EVM contract), every node that sees a post refused as a fault holds a
//! [`ChainAction::ProveFault`] until the adapter says it is its turn ([`ChainClient::proof_due`]:
//! the committee's members take turns, so one proof is normally all that is sent) and the
//! adapter builds the proof from its own board replica; a proof that meets an earlier one is
//! refused as already proven.
//! Everything the node knows about ceremonies comes from the events, in block order: the
//! contract publishes exactly the inputs of the board (`PostAccepted`, `PostRejected`,
//! `BoardDeadline`) in the order it applied them, so the node's participant sees the same board
//! as the contract without deriving any deadline itself.
//!
//! The driver and the runtime see only this module's types. Each adapter converts its chain's
//! own wire types (for the embedded chain, `keyquorum_devchain::api`, defined once next to
//! the server that speaks them) into these, and owns its typed errors
//! ([`ChainClient::Error`]).

use std::future::Future;

use keyquorum_contract::Event;

pub mod devchain;
pub mod evm;
pub mod replica;

pub use devchain::{ContractMachine, DevchainClient, DevchainError};
pub use evm::EvmChainClient;

use keyquorum_contract::tx::TxBody;
use keyquorum_dkg::identity::IdentityKeypair;

/// What the node asks a chain to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainAction {
    /// One of the contract's transactions (register, stake, post, a partial signature on a
    /// magic block).
    Tx(TxBody),
    /// Activate a view: its magic block with the combined signatures, for chains that verify
    /// a threshold signature rather than collect partials ([`SignatureRoute::OffChain`]).
    Activate(Activation),
    /// Prove the fault of a post the chain's board refused, for chains that slash only on a
    /// proof ([`ChainClient::takes_fault_proofs`]). The adapter builds the proof from its own
    /// replica of the board, never from this report, and refuses the action when that board
    /// names no fault it can prove.
    ProveFault(FaultReport),
}

/// A post the chain's board refused as a fault of its author (a `PostRejected` event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultReport {
    /// The ceremony's view.
    pub view: u64,
    /// The ceremony's number within the view.
    pub ceremony_number: u32,
    /// The author's dealer position.
    pub dealer: u32,
    /// The refused post as the chain logged it (`SignedPost::encode`).
    pub post: Vec<u8>,
}

impl ChainAction {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ChainAction::Tx(body) => body.kind(),
            ChainAction::Activate(_) => "activate",
            ChainAction::ProveFault(_) => "fault_proof",
        }
    }
}

/// Whether a node sends a transaction it holds that other members could send too: a fault
/// proof ([`ChainClient::proof_due`]) or an activation ([`ChainClient::activation_due`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Send it now.
    Now,
    /// Not this node's turn yet: ask again at the next block.
    Later,
    /// Another member's transaction settled it already (the culprit is slashed for the fault,
    /// the view is activated): drop it.
    Settled,
    /// This node has nothing to send (no fault the chain can check, or not one of the nodes
    /// that prove it; a magic block the chain no longer awaits): drop it.
    Never,
}

/// The combined signatures on a magic block, which activate its view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// The view.
    pub view: u64,
    /// The magic block's hash.
    pub block_hash: [u8; 32],
    /// The new committee's signature (compressed G2).
    pub signature: [u8; 96],
    /// The previous committee's handover signature (none for the first view).
    pub previous_signature: Option<[u8; 96]>,
    /// At least `t` new members' endorsements of the block, by share index.
    pub endorsements: Vec<Endorsement>,
}

/// A committee member's word, under its identity key, that a magic block is the one its own
/// board defines (`Purpose::Endorsement` on the block's hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endorsement {
    /// The member's share index (its seat in the ceremony's committee, plus one).
    pub index: u64,
    /// Its identity key (compressed G2).
    pub identity: [u8; 96],
    /// Its signature.
    pub signature: keyquorum_dkg::identity::IdentitySignature,
}

/// Where the partial signatures on a magic block go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureRoute {
    /// Submitted to the chain, which combines them and activates the view (the embedded chain).
    OnChain,
    /// Sent to the new committee's members, any of which combines them and submits
    /// [`ChainAction::Activate`] (the EVM contract).
    OffChain,
}

/// Who sends a transaction, and the chain's count of its transactions so far (for chains that
/// order a sender's transactions by it; the others ignore it).
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    /// The chain id the embedded chain's transaction signatures bind.
    pub chain_id: &'a str,
    /// The node's identity key.
    pub identity: &'a IdentityKeypair,
    /// The sender's next nonce as the node tracks it.
    pub nonce: u64,
}

/// A transaction ready to submit.
#[derive(Debug, Clone)]
pub struct Prepared<T> {
    /// What its outcome and its inclusion are matched by (the hash where the chain has one).
    pub id: [u8; 32],
    /// Its size in bytes, for the traffic metrics.
    pub len: usize,
    /// The transaction.
    pub tx: T,
}

/// Why an action cannot be made into a transaction of this chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot send {kind} on this chain: {why}")]
pub struct Unprepared {
    /// The action's kind.
    pub kind: &'static str,
    /// Why.
    pub why: String,
}

/// What the node needs to know of a chain before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStatus {
    /// The chain id the contract binds every transaction signature to.
    pub chain_id: String,
    /// What tells this chain apart from others, recorded by the node's data file at its first
    /// start and required at every later one: on the embedded chain `devchain:`, the digest of
    /// the contract's genesis configuration and the hash of block 1 (which covers its time, so
    /// a chain started over with the same configuration differs), on an EVM chain `evm:`, the
    /// chain's numeric id, the coordinator's address and the chain name it was deployed with
    /// (an EVM chain started over with the coordinator redeployed at the same address has the
    /// same: [`ChainStatus::origin`] tells them apart).
    pub genesis: String,
    /// What tells this instance of the chain apart from one started over with the same
    /// `genesis`, when the adapter knows it: on an EVM chain the hash of the block the node
    /// follows the coordinator from (`evm.from_block`), which a chain started over (a
    /// development chain restarted, the coordinator redeployed at the same address) does not
    /// reproduce. Recorded by the data file at the first start that has it and required after
    /// ([`crate::store::Store::bind_chain_origin`]). `None` on the embedded chain, whose
    /// `genesis` covers block 1's hash already.
    pub origin: Option<String>,
    /// The chain's height.
    pub height: u64,
    /// The beacon the contract configures for a fresh key's view: what this node expects in
    /// such a view's magic block ([`keyquorum_contract::BeaconConfig::for_view`]).
    pub beacon: keyquorum_contract::BeaconConfig,
}

/// A transaction as committed in a block.
#[derive(Debug, Clone)]
pub struct ChainTx {
    /// SHA-256 of the bytes.
    pub hash: [u8; 32],
    /// The raw transaction.
    pub tx: Vec<u8>,
    /// Events it produced (none if rejected).
    pub events: Vec<Event>,
    /// `(code, reason)` if the contract refused it when applying it.
    pub rejected: Option<(String, String)>,
}

/// A committed block.
#[derive(Debug, Clone)]
pub struct ChainBlock {
    /// Height.
    pub height: u64,
    /// Production time (Unix ms), informational.
    pub time_ms: u64,
    /// Transactions in order.
    pub txs: Vec<ChainTx>,
    /// Events of the end of the block (deadlines, phase changes, view activation).
    pub end_block_events: Vec<Event>,
}

/// One long-poll answer.
#[derive(Debug, Clone)]
pub struct Blocks {
    /// Consecutive blocks from the requested height (possibly none).
    pub blocks: Vec<ChainBlock>,
    /// The chain's height when it answered.
    pub height: u64,
}

/// Unbonded stake due back to the node's balance ([`ChainClient::matured_unbonding`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaturedUnbonding {
    /// How much is due.
    pub amount: u64,
    /// The chain's active view when it was read.
    pub view: u64,
}

/// What became of a submitted transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Durably queued; it will be in a block.
    Accepted,
    /// Already pending or included (same bytes).
    Duplicate,
    /// Included in a block and applied: nothing more to wait for (chains whose submission
    /// waits for the receipt).
    Included,
    /// Refused by the contract, finally, and without effect on the sender's other
    /// transactions (chains that number them themselves).
    Reverted {
        /// The contract's error name.
        code: String,
        /// Explanation.
        reason: String,
        /// Mined and reverted, so its fee was paid; `false` when refused before sending (at
        /// estimation, free).
        mined: bool,
    },
    /// Refused by the pre-check (`code` is the contract's rejection code).
    Rejected {
        /// Machine-readable code.
        code: String,
        /// Explanation.
        reason: String,
    },
    /// The chain is overloaded; try again later.
    Busy,
    /// Sent, and not seen in a block yet (chains whose submission waits for the receipt: the
    /// wait timed out). Submitted again with `handle` as its `retry_of`
    /// ([`ChainClient::submit`]), the same transaction is looked up rather than sent again:
    /// its outcome once mined, this again while it is pending, and a new send only when the
    /// chain dropped it.
    Unconfirmed {
        /// The send, as the adapter knows it (on the EVM chain, its first transaction's hash).
        handle: [u8; 32],
    },
}

/// A chain the node can follow and submit to.
pub trait ChainClient: Clone + Send + Sync + 'static {
    /// Why a call failed (transport, an error answer the node cannot act on, an undecodable
    /// answer); a refused transaction is a [`SubmitOutcome`], not an error.
    type Error: std::error::Error + Send + Sync + 'static;
    /// A transaction ready to submit.
    type Tx: Send + 'static;

    /// Where this chain wants the partial signatures on a magic block.
    fn signature_route(&self) -> SignatureRoute;

    /// Whether the chain slashes a board fault only when someone proves it
    /// ([`ChainAction::ProveFault`]). The embedded chain's contract runs the board and slashes
    /// by itself.
    fn takes_fault_proofs(&self) -> bool {
        false
    }

    /// Whether this node sends its proof of `report`'s fault now
    /// ([`ChainClient::takes_fault_proofs`]), having held it for `held`, `idle` of which the
    /// chain showed no new block; asked again at every block, and every tenth of a second,
    /// until it is sent or dropped: where several nodes can prove one fault, the chain's
    /// adapter staggers them. The default sends at once.
    fn proof_due(
        &self,
        report: &FaultReport,
        held: std::time::Duration,
        idle: std::time::Duration,
    ) -> Due {
        let _ = (report, held, idle);
        Due::Now
    }

    /// Whether the chain takes a node's verifiable-encryption key (`SetVerifiableKey`, for
    /// complaint-variant and signing-key ceremonies). The EVM coordinator runs neither, and has
    /// no such call.
    fn takes_verifiable_keys(&self) -> bool {
        true
    }

    /// Whether this node sends its activation `activation` now, having combined its signatures
    /// when it had processed the chain up to height `collected_at`, and held them for `held`,
    /// `idle` of which the chain showed no new block; asked again at every block, and every
    /// tenth of a second, until it is sent or dropped. Every member of the new committee
    /// combines the same signatures, and where copies of an activation cost their senders (an
    /// EVM chain), the adapter staggers them. The default sends at once.
    fn activation_due(
        &self,
        activation: &Activation,
        collected_at: u64,
        held: std::time::Duration,
        idle: std::time::Duration,
    ) -> Due {
        let _ = (activation, collected_at, held, idle);
        Due::Now
    }

    /// This node off the chain's candidate list after an eviction, as the adapter last
    /// confirmed it with the chain; `None` while it is listed, or on chains without a bounded
    /// list. The adapter notices the eviction and re-enters by itself when it can.
    fn eviction(&self) -> Option<crate::status::EvictedStatus> {
        None
    }

    /// This node's registration, refused because the chain's candidate list is full, as the
    /// adapter last confirmed it; `None` otherwise. The adapter registers by itself as soon as
    /// the chain would take it, so the node does not send the registration again meanwhile.
    fn registration_refused(&self) -> Option<crate::status::RegistrationRefusedStatus> {
        None
    }

    /// This node's stake below the chain's minimum, as the adapter last read it (chains whose
    /// minimum keeps a stake off the candidate list without refusing it: the EVM coordinator);
    /// `None` otherwise. The adapter does not send a registration below the minimum.
    fn stake_below_minimum(&self) -> Option<crate::status::StakeBelowMinimumStatus> {
        None
    }

    /// The adapter's own checks of this node's candidacy failing, until one succeeds; `None`
    /// otherwise, or on chains whose adapter runs none.
    fn candidacy_check_failing(&self) -> Option<crate::status::CandidacyCheckFailingStatus> {
        None
    }

    /// The chain refused: a block this node's own execution of the contract does not
    /// reproduce ([`replica`]), after which the adapter serves no more blocks until
    /// [`ChainClient::retry_refused`] lifts the refusal; `None` while it follows, or on chains
    /// whose adapter does not re-execute.
    fn chain_refused(&self) -> Option<crate::status::ChainRefusedStatus> {
        None
    }

    /// Lifts [`ChainClient::chain_refused`] where the right chain could still follow (the
    /// refused block did not run, or nothing had yet): the adapter then serves blocks again,
    /// each checked as before, so a chain still wrong is refused again. `false` when the
    /// refusal stands for good (a block that ran and differs) or there is none to lift.
    fn retry_refused(&self) -> impl Future<Output = bool> + Send {
        async { false }
    }

    /// Whether [`Blocks::height`] is the chain's head, which never falls below a block the
    /// chain served: then a head below the blocks this node followed means the chain was
    /// reset or replaced under it, which the node's follower checks. `false` where the adapter
    /// reports another height (an EVM chain's confirmed one) and checks resets itself.
    fn head_never_falls(&self) -> bool {
        true
    }

    /// This node's sends still pending on the chain after their receipt wait (the oldest, and
    /// how many), as the adapter last looked them up; `None` when there are none, or on
    /// chains whose submission does not wait for the receipt.
    fn send_pending(&self) -> Option<crate::status::SendPendingStatus> {
        None
    }

    /// This node's unbonded stake that the chain would return to its balance now
    /// (`ClaimUnbonded`), and the view that made it claimable, as the adapter's copy of the
    /// chain's state last showed it; `None` when nothing is due, or where the adapter keeps
    /// no copy of the state (`--trust-chain`, the EVM chain). `identity` is the node's
    /// identity key.
    fn matured_unbonding(&self, identity: &[u8]) -> Option<MaturedUnbonding> {
        let _ = identity;
        None
    }

    /// The kinds of the sends the adapter made on its own (not through
    /// [`ChainClient::submit`]: an EVM node's `start_view_change`) that were mined and reverted
    /// since the last call, each once, for the node's count of fees paid for nothing.
    fn take_reverted(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// Turns `action` from `sender` into this chain's transaction.
    fn prepare(
        &self,
        action: &ChainAction,
        sender: Sender<'_>,
    ) -> Result<Prepared<Self::Tx>, Unprepared>;

    /// The chain's status (chain id and height).
    fn status(&self) -> impl Future<Output = Result<ChainStatus, Self::Error>> + Send;
    /// Committed blocks from `from`, waiting up to `wait_ms` for one if none exists yet.
    fn blocks(
        &self,
        from: u64,
        wait_ms: u64,
    ) -> impl Future<Output = Result<Blocks, Self::Error>> + Send;
    /// Submits a prepared transaction. `retry_of` is the handle of the earlier submission of
    /// the same action answered [`SubmitOutcome::Unconfirmed`], whose outcome this one takes;
    /// `None` for a new submission, sent even if an identical one was just mined (while an
    /// identical one is still pending, the EVM adapter answers `Unconfirmed` with that one's
    /// handle instead of sending a copy). Chains whose submission never answers
    /// `Unconfirmed` ignore it.
    fn submit(
        &self,
        tx: Self::Tx,
        retry_of: Option<[u8; 32]>,
    ) -> impl Future<Output = Result<SubmitOutcome, Self::Error>> + Send;
}
