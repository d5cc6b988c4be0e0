//! keyquorum's embedded development chain: a single-process chain for one machine that orders
//! transactions into blocks and runs a deterministic [`StateMachine`] (the coordinator contract
//! in production, [`testkit::KvMachine`] in tests), persisted in redb and served over an HTTP
//! JSON API ([`http`]) whose messages are defined once in [`api`] and read with the typed
//! [`Client`].
//!
//! # Design
//!
//! * **One engine thread** owns the state machine and is the only database writer. HTTP
//!   handlers and [`ChainHandle`]s send it commands (submit, query, status) over a bounded
//!   queue; block reads go straight to the database (redb readers are MVCC snapshots).
//! * **Blocks** are produced every `block_ms`, even when empty, so heights measure time for
//!   phase deadlines. The engine takes the mempool in FIFO order (bounded by `max_block_txs` /
//!   `max_block_bytes`), applies each transaction, calls `end_block`, and commits the block in
//!   one redb transaction that also indexes its transactions and deletes them from the pending
//!   table. Only then is the block visible: [`ChainHandle::subscribe`], `/events`, the height
//!   and state queries all see committed blocks only. A transaction refused by `apply_tx` is
//!   still recorded in its block with the rejection, so every admitted transaction lands in a
//!   block (an applied one in exactly one; a refused one may be submitted again, since it
//!   changed nothing).
//! * **Acknowledged means durable.** `POST /tx` runs `check_tx`, rejects duplicates (a pending or
//!   applied hash), writes the transaction to the pending table and answers 200 only after
//!   that commit returned (fsync; concurrent submissions share one commit). A `kill -9` at any
//!   moment therefore loses neither a committed block nor an acknowledged transaction; the next
//!   start re-queues the pending ones ahead of new submissions.
//! * **Event sourcing, no state snapshots.** Only blocks (raw transactions plus their recorded
//!   outcomes) are stored. Each start replays all blocks through a fresh state machine, checks
//!   the hash chain, and compares every replayed outcome and event with the stored one: a
//!   non-deterministic or changed state machine (or different genesis parameters) is refused
//!   with [`ChainError::ReplayDiverged`] instead of silently forking. This keeps the state
//!   machine free of any persistence code and makes the contract's determinism tested on every
//!   restart; the cost is replay time, linear in the chain length, which is fine for a dev
//!   chain (snapshots could be added behind an optional trait method later).
//! * **Failures.** A database error halts the engine (in-memory state may then be ahead of the
//!   disk; a restart rebuilds it). A panic in `apply_tx`/`check_tx` becomes a `"panic"`
//!   rejection; a panic in `end_block` halts the chain.
//!
//! # Use
//!
//! ```no_run
//! # async fn f() -> Result<(), keyquorum_devchain::ChainError> {
//! use keyquorum_devchain::{ChainConfig, ChainConfigOverrides, run_until_ctrl_c, testkit::KvMachine};
//! let config = ChainConfig::load(None, &ChainConfigOverrides {
//!     data_dir: Some("/tmp/chain".into()),
//!     block_ms: Some(500),
//!     ..Default::default()
//! })?;
//! run_until_ctrl_c(config, KvMachine::new(10)).await
//! # }
//! ```

#![warn(missing_docs)]

pub mod api;
mod block;
mod chain;
pub mod client;
mod config;
pub mod data_dir;
mod engine;
mod error;
pub mod http;
mod replay;
pub mod serve;
mod state_machine;
mod store;
pub mod testkit;

pub use block::{Block, GENESIS_PARENT, TxReceipt, block_hash, parse_hash};
pub use chain::{Chain, ChainHandle, run, run_until_ctrl_c};
pub use client::{Client, ClientError};
pub use config::{ChainConfig, ChainConfigOverrides, ConfigError, MAX_BLOCK_MS};
pub use engine::{ChainStatus, TxStatus};
pub use error::{ChainError, SubmitError};
pub use replay::{Replay, ReplayError};
pub use state_machine::{StateMachine, TxHash, TxRejection};
