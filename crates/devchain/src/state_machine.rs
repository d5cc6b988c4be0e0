//! The deterministic state machine the chain runs.

use serde::{Deserialize, Serialize};

/// A 32-byte transaction hash, as defined by [`StateMachine::check_tx`].
pub type TxHash = [u8; 32];

/// Why a transaction was refused: a stable machine-readable `code` (e.g. `"bad_signature"`,
/// `"stale_nonce"`) and a human-readable `reason`.
///
/// Served over HTTP as `{"error": code, "reason": reason}` and recorded in blocks for
/// transactions that were accepted into the mempool but failed when applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {reason}")]
pub struct TxRejection {
    /// Stable identifier of the rule that refused the transaction.
    pub code: String,
    /// Explanation for humans.
    pub reason: String,
}

impl TxRejection {
    /// Builds a rejection from a code and a reason.
    pub fn new(code: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            reason: reason.into(),
        }
    }
}

/// A deterministic application run by the chain (the coordinator contract in production, a
/// toy key-value store in tests).
///
/// The chain is event-sourced: it persists blocks of raw transactions, never the state, and
/// rebuilds the state on every start by replaying all blocks from the initial state passed to
/// [`Chain::start`](crate::Chain::start). Therefore:
///
/// * [`apply_tx`](Self::apply_tx) and [`end_block`](Self::end_block) must be pure functions of
///   the current state, their arguments and nothing else (no clock, randomness, I/O or
///   `HashMap` iteration order leaking into results). Replay compares the events it recomputes
///   with the stored ones and refuses to start on any difference.
/// * The initial state must be the same on every start (same genesis parameters).
///
/// All methods run on the chain's single engine thread, one at a time, so the machine needs
/// `Send` but not `Sync`.
pub trait StateMachine: Send + 'static {
    /// An event emitted by a transaction or at the end of a block. Serialized to JSON when the
    /// block is produced; that JSON is what `/events` and [`Block`](crate::Block) carry.
    type Event: Serialize;

    /// Cheap pre-check used before a transaction enters the mempool (decoding, signature,
    /// nonce against the *current* state). Must not change anything. Returns the transaction
    /// hash, which must be a function of `tx` alone (e.g. SHA-256 of the bytes): the chain uses
    /// it to index included transactions and to reject duplicates of pending and applied ones
    /// (a transaction `apply_tx` refused changed nothing and may be submitted again).
    ///
    /// Passing `check_tx` does not guarantee that `apply_tx` accepts the transaction later
    /// (the state may change in between, e.g. two transactions with the same nonce).
    fn check_tx(&self, tx: &[u8]) -> Result<TxHash, TxRejection>;

    /// The hash `check_tx` gives `tx`, whatever the state: a block's receipts name their
    /// transactions by it, and a replay refuses a receipt whose hash is not its bytes' (a chain
    /// could otherwise label one transaction with another's hash). `None`, the default, for a
    /// machine that does not say; its receipts' hashes are then not checked.
    fn tx_hash(&self, tx: &[u8]) -> Option<TxHash> {
        let _ = tx;
        None
    }

    /// Validates and applies one transaction in the block at `height`. On `Err` the state must
    /// be unchanged; the chain still records the transaction in the block, with the rejection,
    /// so every transaction admitted to the mempool ends up in a block (and an applied one in
    /// exactly one).
    fn apply_tx(&mut self, tx: &[u8], height: u64) -> Result<Vec<Self::Event>, TxRejection>;

    /// What the machine's genesis is (its parameters, initial balances and so on), as a digest:
    /// a chain's blocks replay only on a machine of the same genesis. The chain records it in
    /// its data file once a start's stored blocks replayed on it (at once for a new file) and
    /// then refuses to open the file with a machine that gives another
    /// ([`ChainError::OtherGenesis`](crate::ChainError::OtherGenesis)), naming both, instead
    /// of failing the replay at the first block that differs, or not at all when the
    /// difference has not mattered yet. `None`, the default, for a machine that does not say;
    /// its replay still refuses a divergence.
    fn genesis_id(&self) -> Option<[u8; 32]> {
        None
    }

    /// Called with all of a block's transactions before the first is applied, to prepare work
    /// that is cheaper for the block as a whole (verifying the transactions' signatures in one
    /// batch, say). Must not change what [`StateMachine::apply_tx`] and
    /// [`StateMachine::end_block`] answer: the chain calls it when it makes a block and when it
    /// replays one, a follower when it re-executes one. The default does nothing.
    fn prepare_block(&mut self, txs: &[&[u8]]) {
        let _ = txs;
    }

    /// Called once per block after its transactions (phase deadlines, timeouts, ...). Blocks are
    /// produced at a fixed interval even when empty, so heights measure time.
    fn end_block(&mut self, height: u64) -> Vec<Self::Event>;

    /// Read-only queries for the HTTP API; `None` means "not found" (HTTP 404). The chain
    /// routes `GET /status` to `"status"` (served as the `state` of the chain's
    /// [`Status`](crate::api::Status)), `GET /views/current`, `GET /views/{v}` and `GET /views/{v}/magic-block` to the
    /// same paths, and `GET /query/{*path}` to `path` verbatim.
    fn query(&self, path: &str) -> Option<serde_json::Value>;
}
