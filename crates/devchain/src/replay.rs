//! Re-executing a chain's blocks through a fresh state machine and checking every recorded
//! outcome: the rule that both the chain's own recovery and a follower that trusts nothing it
//! is told use.
//!
//! A block records each transaction's events or rejection and the events of its end. Those
//! records are claims of whoever produced the block; the transactions themselves are the only
//! input (signed by their senders, checked again by the state machine). [`Replay::apply`]
//! applies a block's transactions and its end to its own state machine and refuses the block
//! when anything differs: a gap in the heights, a broken hash chain, a receipt whose hash is not
//! its transaction's, an outcome or an event that the state machine does not reproduce. The chain runs it over its stored blocks at every
//! start ([`ChainError::ReplayDiverged`](crate::ChainError::ReplayDiverged)); a follower runs it
//! over the blocks it is served, so a chain that seats a committee its own rules did not choose,
//! credits a stake nobody locked or invents a post is caught at the block that does it.
//!
//! The comparison is of the events' JSON, as the chain stores and serves them: the state
//! machine's events must serialize deterministically (no maps with random order, no floats).
//! A block refused before any of it ran (a gap, a broken hash chain, a receipt naming another
//! transaction) leaves the replay as it was, so the right block can still follow: a follower
//! served another chain for a while can take up its own again. Once a block's re-execution
//! differs, the state machine may hold part of that block, so a [`Replay`] refuses everything
//! after it.

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::Serialize;
use serde_json::Value;

use crate::block::{Block, GENESIS_PARENT};
use crate::engine::panic_message;
use crate::state_machine::{StateMachine, TxRejection};

/// Why a block was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The block does not follow the last one applied.
    #[error("block {got} follows block {last}")]
    Gap {
        /// Height of the last block applied (0 before the first).
        last: u64,
        /// Height of the refused block.
        got: u64,
    },
    /// The block's parent hash is not the last block's hash, or its own hash is not the hash
    /// of its contents.
    #[error("hash chain broken at block {height}")]
    HashChain {
        /// Height of the refused block.
        height: u64,
    },
    /// Re-executing the block gave other outcomes or events than the block records.
    #[error("replay diverged at height {height}: {detail}")]
    Diverged {
        /// Height of the refused block.
        height: u64,
        /// What differed: the transaction or the end of the block, recorded and re-executed.
        detail: String,
    },
    /// An earlier block was refused; nothing after it is applied.
    #[error("an earlier block (height {height}) was refused")]
    Poisoned {
        /// Height of the first refused block.
        height: u64,
    },
}

impl ReplayError {
    /// Height of the refused block.
    pub fn height(&self) -> u64 {
        match self {
            ReplayError::Gap { got, .. } => *got,
            ReplayError::HashChain { height }
            | ReplayError::Diverged { height, .. }
            | ReplayError::Poisoned { height } => *height,
        }
    }
}

pub(crate) fn to_json<E: Serialize>(events: Vec<E>) -> Vec<Value> {
    events
        .into_iter()
        .map(|e| {
            serde_json::to_value(&e)
                .unwrap_or_else(|err| Value::String(format!("unserializable event: {err}")))
        })
        .collect()
}

/// Runs `apply_tx`, turning a panic into a rejection (the chain records it so, and every
/// replay panics the same way, so the outcome stays deterministic).
pub(crate) fn apply_one<S: StateMachine>(
    sm: &mut S,
    tx: &[u8],
    height: u64,
) -> (Vec<Value>, Option<TxRejection>) {
    match catch_unwind(AssertUnwindSafe(|| sm.apply_tx(tx, height))) {
        Ok(Ok(events)) => (to_json(events), None),
        Ok(Err(rejection)) => (Vec::new(), Some(rejection)),
        Err(p) => (
            Vec::new(),
            Some(TxRejection::new("panic", panic_message(&*p))),
        ),
    }
}

/// Runs `prepare_block`; a panic in it is ignored (it must not change any outcome, so the
/// block is applied as it would have been without it).
pub(crate) fn prepare_one<S: StateMachine>(sm: &mut S, txs: &[&[u8]]) {
    if !txs.is_empty() {
        let _ = catch_unwind(AssertUnwindSafe(|| sm.prepare_block(txs)));
    }
}

/// A state machine rebuilt block by block from a chain's blocks, each checked against what it
/// records (see the module docs).
pub struct Replay<S> {
    sm: S,
    height: u64,
    last_hash: [u8; 32],
    refused: Option<u64>,
}

impl<S: StateMachine> Replay<S> {
    /// Starts from `sm`, which must be in its genesis state (the one the chain started from).
    pub fn new(sm: S) -> Self {
        Replay {
            sm,
            height: 0,
            last_hash: GENESIS_PARENT,
            refused: None,
        }
    }

    /// Height of the last block applied (0 before the first).
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Whether a block ran and differed, after which every block is refused.
    pub fn is_poisoned(&self) -> bool {
        self.refused.is_some()
    }

    /// Hash of the last block applied ([`GENESIS_PARENT`] before the first).
    pub fn last_hash(&self) -> [u8; 32] {
        self.last_hash
    }

    /// The state machine, after the last block applied.
    pub fn state(&self) -> &S {
        &self.sm
    }

    /// The state machine, the height and the hash of the last block applied.
    pub fn into_parts(self) -> (S, u64, [u8; 32]) {
        (self.sm, self.height, self.last_hash)
    }

    /// Applies `block`, the block after the last one applied, and checks that re-executing it
    /// gives exactly what it records. A block refused before it ran (a gap, a broken hash
    /// chain, a receipt naming another transaction) changes nothing; after a block that ran
    /// and differs, this replay refuses every block.
    pub fn apply(&mut self, block: &Block) -> Result<(), ReplayError> {
        if let Some(height) = self.refused {
            return Err(ReplayError::Poisoned { height });
        }
        self.check_links(block)?;
        let result = self.execute(block);
        if result.is_err() {
            self.refused = Some(block.height);
        }
        result
    }

    /// What is checked before anything of `b` runs: its place in the chain and its receipts'
    /// transaction hashes.
    fn check_links(&self, b: &Block) -> Result<(), ReplayError> {
        if b.height != self.height + 1 {
            return Err(ReplayError::Gap {
                last: self.height,
                got: b.height,
            });
        }
        if b.parent_hash != self.last_hash || b.computed_hash() != b.hash {
            return Err(ReplayError::HashChain { height: b.height });
        }
        for (i, r) in b.txs.iter().enumerate() {
            if let Some(hash) = self.sm.tx_hash(&r.tx)
                && hash != r.hash
            {
                return Err(ReplayError::Diverged {
                    height: b.height,
                    detail: format!(
                        "tx {i}: recorded hash {}, its bytes hash to {}",
                        hex::encode(r.hash),
                        hex::encode(hash)
                    ),
                });
            }
        }
        Ok(())
    }

    fn execute(&mut self, b: &Block) -> Result<(), ReplayError> {
        let txs: Vec<&[u8]> = b.txs.iter().map(|r| r.tx.as_slice()).collect();
        prepare_one(&mut self.sm, &txs);
        for (i, r) in b.txs.iter().enumerate() {
            let (events, rejected) = apply_one(&mut self.sm, &r.tx, b.height);
            if events != r.events || rejected != r.rejected {
                return Err(ReplayError::Diverged {
                    height: b.height,
                    detail: format!(
                        "tx {i} ({}): recorded events {:?} / rejection {:?}, re-executed {:?} / {:?}",
                        hex::encode(r.hash),
                        r.events,
                        r.rejected,
                        events,
                        rejected
                    ),
                });
            }
        }
        let end = to_json(self.sm.end_block(b.height));
        if end != b.end_block_events {
            return Err(ReplayError::Diverged {
                height: b.height,
                detail: format!(
                    "end of block: recorded {:?}, re-executed {end:?}",
                    b.end_block_events
                ),
            });
        }
        self.height = b.height;
        self.last_hash = b.hash;
        Ok(())
    }
}
