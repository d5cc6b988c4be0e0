//! Error types.

use crate::config::ConfigError;
use crate::state_machine::{TxHash, TxRejection};

/// Why the chain could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database failed. The chain halts: the in-memory state may be ahead of the disk, and a
    /// restart rebuilds it from the committed blocks.
    #[error("storage error: {0}")]
    Storage(redb::Error),
    /// Filesystem or socket error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The HTTP API could not listen on its address (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: std::net::SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The database file exists but cannot be used: empty, or damaged. The chain refuses to
    /// start rather than begin a new chain over it.
    #[error(
        "chain data file {} {problem}; restore it from a backup, or remove it to start a new \
         chain deliberately",
        path.display()
    )]
    DataFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// Another process (a chain already running on this data directory) has the data file
    /// open.
    #[error(
        "chain data file {} is in use by another process (is a chain already running on this \
         data directory?)",
        path.display()
    )]
    DataFileInUse {
        /// The file.
        path: std::path::PathBuf,
    },
    /// The data file cannot be opened for a reason other than damage (permissions, I/O).
    #[error("chain data file {} cannot be used: {reason}", path.display())]
    DataFileUnusable {
        /// The file.
        path: std::path::PathBuf,
        /// What failed.
        reason: String,
    },
    /// The data directory cannot be created or used (a regular file of that name, permissions).
    #[error("chain data directory: {reason}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why ([`crate::data_dir::create`]).
        reason: String,
    },
    /// The data file holds a chain of another genesis than the machine's (another
    /// configuration): its blocks would not replay.
    #[error(
        "chain data file {} holds a chain started with genesis {stored}, and this configuration's \
         genesis is {given}: start the chain with the settings the file was created with, or use \
         another data directory for a new chain",
        path.display()
    )]
    OtherGenesis {
        /// The file.
        path: std::path::PathBuf,
        /// The genesis recorded in the file, hex.
        stored: String,
        /// The machine's genesis, hex.
        given: String,
    },
    /// The stored data is inconsistent (bad encoding, gap in heights, broken hash chain).
    #[error("corrupt chain data: {0}")]
    Corrupt(String),
    /// Replaying the stored blocks produced different results than when they were produced: the
    /// state machine is not deterministic, or its code or genesis parameters changed.
    #[error("replay diverged at height {height}: {detail}")]
    ReplayDiverged {
        /// First block whose replay differs.
        height: u64,
        /// What differed.
        detail: String,
    },
    /// The engine thread panicked (e.g. in [`StateMachine::end_block`](crate::StateMachine::end_block)).
    #[error("engine panicked: {0}")]
    Panic(String),
    /// The engine thread is gone (stopped or failed).
    #[error("chain is not running")]
    Halted,
}

/// Why a submitted transaction was not accepted. Nothing changed in any case.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// Zero-length transaction.
    #[error("empty transaction")]
    Empty,
    /// Larger than `max_tx_bytes`.
    #[error("transaction of {size} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Size of the transaction.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// Refused by [`StateMachine::check_tx`](crate::StateMachine::check_tx).
    #[error("{0}")]
    Rejected(TxRejection),
    /// Already pending, or already applied in a block.
    #[error("transaction {} already submitted", hex::encode(.0))]
    Duplicate(TxHash),
    /// The mempool holds `max_pending_txs` transactions.
    #[error("mempool full")]
    MempoolFull,
    /// The engine's command queue is full; retry later.
    #[error("chain busy")]
    Busy,
    /// The chain is stopping or stopped.
    #[error("chain is not running")]
    Halted,
    /// Writing the transaction failed (the chain halts).
    #[error("storage error: {0}")]
    Storage(String),
}

impl SubmitError {
    /// Stable error code, the `error` field of the HTTP answer.
    pub fn code(&self) -> &str {
        match self {
            Self::Empty => "empty_tx",
            Self::TooLarge { .. } => "tx_too_large",
            Self::Rejected(r) => &r.code,
            Self::Duplicate(_) => "duplicate_tx",
            Self::MempoolFull => "mempool_full",
            Self::Busy => "busy",
            Self::Halted => "halted",
            Self::Storage(_) => "storage",
        }
    }

    /// Human-readable reason, the `reason` field of the HTTP answer.
    pub fn reason(&self) -> String {
        match self {
            Self::Rejected(r) => r.reason.clone(),
            other => other.to_string(),
        }
    }
}
