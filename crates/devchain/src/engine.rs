//! The engine thread: sole owner of the state machine and sole writer of the database.
//!
//! It receives [`Command`]s from the handles and produces a block whenever the block interval
//! elapses. Commands that arrive together are handled as one batch so that the accepted
//! transactions of the batch share one fsync (group commit); a transaction is acknowledged only
//! after that commit returned.

use std::collections::{HashSet, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::{broadcast, oneshot, watch};

use crate::block::{Block, TxReceipt, block_hash};
use crate::config::ChainConfig;
use crate::error::{ChainError, SubmitError};
use crate::replay::{Replay, ReplayError, apply_one, prepare_one, to_json};
use crate::state_machine::{StateMachine, TxHash, TxRejection};
use crate::store::{PendingTx, Store};

/// Most commands handled in one batch.
const MAX_BATCH: usize = 1024;

/// A snapshot of the chain for `GET /status`: the API's type, with the state machine's
/// status as JSON.
pub type ChainStatus = crate::api::Status<Value>;

/// Where a transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// Accepted (durably) and waiting for a block.
    Pending,
    /// In the block at `height`, at position `index`.
    Included {
        /// Block height.
        height: u64,
        /// Position in the block.
        index: u32,
    },
    /// Never accepted.
    Unknown,
}

pub(crate) enum Command {
    Submit {
        tx: Vec<u8>,
        reply: oneshot::Sender<Result<TxHash, SubmitError>>,
    },
    Query {
        path: String,
        reply: oneshot::Sender<Option<Value>>,
    },
    Status {
        reply: oneshot::Sender<ChainStatus>,
    },
    TxStatus {
        hash: TxHash,
        reply: oneshot::Sender<Result<TxStatus, ChainError>>,
    },
    Stop,
}

pub(crate) struct Limits {
    block_interval: Duration,
    max_block_txs: usize,
    max_block_bytes: usize,
    max_pending_txs: usize,
    max_pending_bytes: usize,
}

impl Limits {
    pub fn from_config(c: &ChainConfig) -> Self {
        Self {
            block_interval: Duration::from_millis(c.block_ms),
            max_block_txs: c.max_block_txs,
            max_block_bytes: c.max_block_bytes,
            max_pending_txs: c.max_pending_txs,
            max_pending_bytes: c.max_pending_bytes,
        }
    }
}

pub(crate) struct Engine<S> {
    sm: S,
    store: Store,
    limits: Limits,
    height: u64,
    last_hash: [u8; 32],
    mempool: VecDeque<PendingTx>,
    pending_hashes: HashSet<TxHash>,
    pending_bytes: usize,
    next_seq: u64,
    height_tx: watch::Sender<u64>,
    blocks_tx: broadcast::Sender<Arc<Block>>,
}

pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_owned()
    }
}

impl<S: StateMachine> Engine<S> {
    /// Rebuilds the state by replaying every stored block through `sm` (which must be in its
    /// initial state), checking the hash chain and that the replayed outcomes equal the stored
    /// ones, then reloads the pending transactions into the mempool.
    pub fn recover(
        sm: S,
        store: Store,
        limits: Limits,
        height_tx: watch::Sender<u64>,
        blocks_tx: broadcast::Sender<Arc<Block>>,
    ) -> Result<Self, ChainError> {
        let mut replay = Replay::new(sm);
        store.for_each_block(|b| {
            replay.apply(&b).map_err(|e| match e {
                ReplayError::Diverged { height, detail } => {
                    ChainError::ReplayDiverged { height, detail }
                }
                other => ChainError::Corrupt(other.to_string()),
            })
        })?;
        let (sm, height, last_hash) = replay.into_parts();

        let pending = store.pending()?;
        let next_seq = pending.last().map_or(0, |p| p.seq + 1);
        let pending_hashes = pending.iter().map(|p| p.hash).collect();
        let pending_bytes = pending.iter().map(|p| p.tx.len()).sum();
        height_tx.send_replace(height);
        Ok(Self {
            sm,
            store,
            limits,
            height,
            last_hash,
            mempool: pending.into(),
            pending_hashes,
            pending_bytes,
            next_seq,
            height_tx,
            blocks_tx,
        })
    }

    pub fn height(&self) -> u64 {
        self.height
    }

    pub fn pending_len(&self) -> usize {
        self.mempool.len()
    }

    /// The engine loop; returns on `Stop`, when every handle is gone, or on a storage error.
    pub fn run(mut self, rx: Receiver<Command>) -> Result<(), ChainError> {
        let interval = self.limits.block_interval;
        let mut next_block = Instant::now() + interval;
        loop {
            let now = Instant::now();
            if now >= next_block {
                self.produce_block()?;
                next_block = (next_block + interval).max(Instant::now());
                continue;
            }
            let first = match rx.recv_timeout(next_block - now) {
                Ok(cmd) => cmd,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            if self.handle_batch(batch)? {
                return Ok(());
            }
        }
    }

    /// Handles a batch of commands; returns whether `Stop` was among them.
    fn handle_batch(&mut self, batch: Vec<Command>) -> Result<bool, ChainError> {
        let mut stop = false;
        let mut accepted: Vec<(PendingTx, oneshot::Sender<Result<TxHash, SubmitError>>)> =
            Vec::new();
        let mut batch_hashes = HashSet::new();
        let mut batch_bytes = 0usize;
        for cmd in batch {
            match cmd {
                Command::Submit { tx, reply } => {
                    match self.precheck(&tx, accepted.len(), batch_bytes, &batch_hashes) {
                        Ok(hash) => {
                            batch_hashes.insert(hash);
                            batch_bytes += tx.len();
                            let seq = self.next_seq;
                            self.next_seq += 1;
                            accepted.push((PendingTx { seq, hash, tx }, reply));
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    }
                }
                Command::Query { path, reply } => {
                    let _ = reply.send(self.query(&path));
                }
                Command::Status { reply } => {
                    let _ = reply.send(ChainStatus {
                        height: self.height,
                        block_hash: self.last_hash,
                        pending_txs: self.mempool.len() as u64,
                        state: self.query("status"),
                    });
                }
                Command::TxStatus { hash, reply } => {
                    let status = if self.pending_hashes.contains(&hash) {
                        Ok(TxStatus::Pending)
                    } else {
                        self.store.tx_location(&hash).map(|loc| match loc {
                            Some((height, index)) => TxStatus::Included { height, index },
                            None => TxStatus::Unknown,
                        })
                    };
                    let _ = reply.send(status);
                }
                Command::Stop => stop = true,
            }
        }
        if !accepted.is_empty() {
            let written = self.store.append_pending(accepted.iter().map(|(p, _)| p));
            if let Err(e) = written {
                for (_, reply) in accepted {
                    let _ = reply.send(Err(SubmitError::Storage(e.to_string())));
                }
                return Err(e);
            }
            for (p, reply) in accepted {
                self.pending_hashes.insert(p.hash);
                self.pending_bytes += p.tx.len();
                let _ = reply.send(Ok(p.hash));
                self.mempool.push_back(p);
            }
        }
        Ok(stop)
    }

    fn query(&self, path: &str) -> Option<Value> {
        match catch_unwind(AssertUnwindSafe(|| self.sm.query(path))) {
            Ok(v) => v,
            Err(p) => {
                tracing::error!(path, "state machine query panicked: {}", panic_message(&*p));
                None
            }
        }
    }

    fn precheck(
        &self,
        tx: &[u8],
        batch_len: usize,
        batch_bytes: usize,
        batch_hashes: &HashSet<TxHash>,
    ) -> Result<TxHash, SubmitError> {
        if tx.is_empty() {
            return Err(SubmitError::Empty);
        }
        if self.mempool.len() + batch_len >= self.limits.max_pending_txs
            || self.pending_bytes + batch_bytes + tx.len() > self.limits.max_pending_bytes
        {
            return Err(SubmitError::MempoolFull);
        }
        let hash = match catch_unwind(AssertUnwindSafe(|| self.sm.check_tx(tx))) {
            Ok(Ok(hash)) => hash,
            Ok(Err(rejection)) => return Err(SubmitError::Rejected(rejection)),
            Err(p) => {
                return Err(SubmitError::Rejected(TxRejection::new(
                    "panic",
                    panic_message(&*p),
                )));
            }
        };
        if self.pending_hashes.contains(&hash) || batch_hashes.contains(&hash) {
            return Err(SubmitError::Duplicate(hash));
        }
        match self.store.tx_location(&hash) {
            Ok(None) => Ok(hash),
            // A transaction the state machine refused changed nothing, so the same bytes may
            // be valid now (say, a nonce whose predecessor had not arrived yet): accept it
            // again. Replays of applied transactions stay duplicates.
            Ok(Some((height, index))) => match self.was_rejected(height, index) {
                Ok(true) => Ok(hash),
                Ok(false) => Err(SubmitError::Duplicate(hash)),
                Err(e) => Err(SubmitError::Storage(e.to_string())),
            },
            Err(e) => Err(SubmitError::Storage(e.to_string())),
        }
    }

    /// Whether the receipt at `(height, index)` records a rejection.
    fn was_rejected(&self, height: u64, index: u32) -> Result<bool, ChainError> {
        let Some(json) = self.store.block_json(height)? else {
            return Ok(false);
        };
        let block: Block = serde_json::from_slice(&json)
            .map_err(|e| ChainError::Corrupt(format!("block {height}: {e}")))?;
        Ok(block
            .txs
            .get(index as usize)
            .is_some_and(|r| r.rejected.is_some()))
    }

    /// Applies the next transactions of the mempool, commits the block, then publishes it.
    fn produce_block(&mut self) -> Result<(), ChainError> {
        let height = self.height + 1;
        let mut take = 0usize;
        let mut bytes = 0usize;
        for p in &self.mempool {
            if take >= self.limits.max_block_txs
                || (take > 0 && bytes + p.tx.len() > self.limits.max_block_bytes)
            {
                break;
            }
            take += 1;
            bytes += p.tx.len();
        }
        let mut seqs = Vec::with_capacity(take);
        let mut txs = Vec::with_capacity(take);
        prepare_one(
            &mut self.sm,
            &self
                .mempool
                .iter()
                .take(take)
                .map(|p| p.tx.as_slice())
                .collect::<Vec<_>>(),
        );
        for p in self.mempool.drain(..take) {
            let (events, rejected) = apply_one(&mut self.sm, &p.tx, height);
            seqs.push(p.seq);
            txs.push(TxReceipt {
                hash: p.hash,
                tx: p.tx,
                events,
                rejected,
            });
        }
        let end_block_events = to_json(self.sm.end_block(height));
        let time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let hash = block_hash(
            height,
            &self.last_hash,
            time_ms,
            txs.iter().map(|r| &r.hash),
        );
        let block = Block {
            height,
            hash,
            parent_hash: self.last_hash,
            time_ms,
            txs,
            end_block_events,
        };
        let json = serde_json::to_vec(&block).expect("blocks serialize to JSON");
        // On failure the in-memory state is ahead of the disk: the caller halts the chain.
        self.store.commit_block(&block, &json, &seqs)?;
        self.height = height;
        self.last_hash = hash;
        self.pending_bytes -= bytes;
        for r in &block.txs {
            self.pending_hashes.remove(&r.hash);
        }
        tracing::debug!(height, txs = block.txs.len(), "block committed");
        self.height_tx.send_replace(height);
        let _ = self.blocks_tx.send(Arc::new(block));
        Ok(())
    }
}
