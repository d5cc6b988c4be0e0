//! How the node talks to a chain: the chain-agnostic [`ChainClient`] trait and the types it
//! speaks ([`ChainStatus`], [`ChainBlock`], [`ChainTx`], [`Blocks`], [`SubmitOutcome`]), and one
//! adapter per chain ([`devchain`]: keyquorum's embedded chain over its HTTP API).
//!
//! The node needs only three things from a chain, so other chains can be added behind the same
//! trait: its status (the chain id, which every transaction signature binds), the committed
//! blocks in order with the contract's events (long-polled), and a way to submit a transaction.
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

pub use devchain::{ContractMachine, DevchainClient};

/// What the node needs to know of a chain before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStatus {
    /// The chain id the contract binds every transaction signature to.
    pub chain_id: String,
    /// The chain's height.
    pub height: u64,
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

/// What became of a submitted transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Durably queued; it will be in a block.
    Accepted,
    /// Already pending or included (same bytes).
    Duplicate,
    /// Refused by the pre-check (`code` is the contract's rejection code).
    Rejected {
        /// Machine-readable code.
        code: String,
        /// Explanation.
        reason: String,
    },
    /// The chain is overloaded; try again later.
    Busy,
}

/// A chain the node can follow and submit to.
pub trait ChainClient: Clone + Send + Sync + 'static {
    /// Why a call failed (transport, an error answer the node cannot act on, an undecodable
    /// answer); a refused transaction is a [`SubmitOutcome`], not an error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The chain's status (chain id and height).
    fn status(&self) -> impl Future<Output = Result<ChainStatus, Self::Error>> + Send;
    /// Committed blocks from `from`, waiting up to `wait_ms` for one if none exists yet.
    fn blocks(
        &self,
        from: u64,
        wait_ms: u64,
    ) -> impl Future<Output = Result<Blocks, Self::Error>> + Send;
    /// Submits a raw transaction.
    fn submit(
        &self,
        tx: Vec<u8>,
    ) -> impl Future<Output = Result<SubmitOutcome, Self::Error>> + Send;
}
