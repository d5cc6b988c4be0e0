//! redb persistence: blocks, pending transactions and the transaction index.
//!
//! Tables:
//! * `blocks`: height -> block JSON ([`Block`]), the source of truth;
//! * `pending`: sequence number -> tx hash (32 bytes) || raw tx, accepted but not yet in a block;
//! * `tx_index`: tx hash -> (height, position), for duplicate detection and `GET /tx/{hash}`;
//! * `meta`: format version.
//!
//! Every write is one redb transaction committed with [`redb::Durability::Immediate`] (fsync
//! before `commit` returns): acknowledging a transaction and committing a block (which inserts
//! the block, indexes its transactions and deletes them from `pending`) are each atomic.

use std::panic::catch_unwind;
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::ChainError;
use crate::block::Block;
use crate::engine::panic_message;
use crate::state_machine::TxHash;

const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const PENDING: TableDefinition<u64, &[u8]> = TableDefinition::new("pending");
const TX_INDEX: TableDefinition<&[u8; 32], (u64, u32)> = TableDefinition::new("tx_index");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// `"machine"` -> the state machine's [`StateMachine::genesis_id`](crate::StateMachine::genesis_id).
const GENESIS: TableDefinition<&str, &[u8]> = TableDefinition::new("genesis");

const FORMAT_VERSION: u64 = 1;

pub(crate) fn db_err<E: Into<redb::Error>>(e: E) -> ChainError {
    ChainError::Storage(e.into())
}

/// Starts a write transaction that is durable (fsynced) when `commit` returns.
fn begin_write(db: &Database) -> Result<redb::WriteTransaction, ChainError> {
    let mut w = db.begin_write().map_err(db_err)?;
    w.set_durability(redb::Durability::Immediate)
        .map_err(db_err)?;
    Ok(w)
}

/// A transaction waiting for a block.
#[derive(Clone, Debug)]
pub(crate) struct PendingTx {
    pub seq: u64,
    pub hash: TxHash,
    pub tx: Vec<u8>,
}

/// Shared handle to the database. Writes happen only on the engine thread; reads anywhere.
#[derive(Clone)]
pub(crate) struct Store {
    db: Arc<Database>,
}

impl Store {
    /// Opens the database, or creates it if the file does not exist: only a missing file means
    /// a new chain. An existing file that is empty, is not a redb file, or fails redb's
    /// integrity check (checksums of every page) is refused with [`ChainError::DataFile`]; so
    /// is one on which redb panics (it does on some damage, e.g. zeroed pages), since starting
    /// over would silently discard the chain. A file another process holds is
    /// [`ChainError::DataFileInUse`], and other failures to open it are
    /// [`ChainError::DataFileUnusable`].
    pub fn open(path: &Path) -> Result<Self, ChainError> {
        let refuse = |problem: String| ChainError::DataFile {
            path: path.to_owned(),
            problem,
        };
        let db = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Database::create(path).map_err(db_err)?
            }
            Err(e) => return Err(ChainError::Io(e)),
            Ok(m) if m.len() == 0 => return Err(refuse("is empty (0 bytes)".into())),
            Ok(_) => {
                // Damage is a property of the file; anything else (already open, I/O) is not.
                let damaged = |e: redb::DatabaseError| match e {
                    redb::DatabaseError::Storage(redb::StorageError::Corrupted(m)) => {
                        Err(format!("is unreadable: {m}"))
                    }
                    // redb's word for a file that is not (or no longer) a redb database.
                    redb::DatabaseError::Storage(redb::StorageError::Io(e))
                        if e.kind() == std::io::ErrorKind::InvalidData =>
                    {
                        Err(format!("is not a chain data file ({e})"))
                    }
                    redb::DatabaseError::UpgradeRequired(v) => Err(format!(
                        "is in redb file format {v}, which this build cannot read"
                    )),
                    e => Ok(e),
                };
                let opened = catch_unwind(
                    || -> Result<Result<Database, redb::DatabaseError>, String> {
                        let mut db = match Database::open(path) {
                            Ok(db) => db,
                            Err(e) => return damaged(e).map(Err),
                        };
                        match db.check_integrity() {
                            Ok(true) => Ok(Ok(db)),
                            // redb repaired damage, possibly by going back to an older commit: a
                            // block acknowledged as durable may be gone.
                            Ok(false) => {
                                Err("was damaged (the storage library had to repair it)".into())
                            }
                            Err(e) => damaged(e).map(Err),
                        }
                    },
                );
                match opened {
                    Ok(Ok(Ok(db))) => db,
                    Ok(Ok(Err(
                        redb::DatabaseError::DatabaseAlreadyOpen
                        | redb::DatabaseError::LockProtocolMismatch,
                    ))) => {
                        return Err(ChainError::DataFileInUse {
                            path: path.to_owned(),
                        });
                    }
                    Ok(Ok(Err(e))) => {
                        return Err(ChainError::DataFileUnusable {
                            path: path.to_owned(),
                            reason: e.to_string(),
                        });
                    }
                    Ok(Err(problem)) => return Err(refuse(problem)),
                    Err(p) => {
                        return Err(refuse(format!(
                            "is unreadable: the storage library failed on it ({})",
                            panic_message(&*p)
                        )));
                    }
                }
            }
        };
        Self::init(db).map_err(|e| match e {
            ChainError::Storage(redb::Error::Corrupted(m)) => refuse(format!("is unreadable: {m}")),
            // A redb file of another program (a node's database, say): its tables have other
            // types than the chain's.
            ChainError::Storage(
                e @ (redb::Error::TableTypeMismatch { .. }
                | redb::Error::TypeDefinitionChanged { .. }
                | redb::Error::TableIsMultimap(_)
                | redb::Error::TableIsNotMultimap(_)),
            ) => refuse(format!("is not a chain data file ({e})")),
            e => e,
        })
    }

    /// The genesis recorded for the chain in this file ([`Store::record_genesis`]), if any.
    pub(crate) fn recorded_genesis(&self) -> Result<Option<Vec<u8>>, ChainError> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = match r.open_table(GENESIS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db_err(e)),
        };
        Ok(t.get("machine")
            .map_err(db_err)?
            .map(|v| v.value().to_vec()))
    }

    /// Records `id` as the genesis of the chain in this file. Called once the stored blocks
    /// replayed on the machine of that genesis, so a file written before the record existed
    /// gets the genesis its blocks were just checked against.
    pub(crate) fn record_genesis(&self, id: [u8; 32]) -> Result<(), ChainError> {
        let w = begin_write(&self.db)?;
        {
            let mut t = w.open_table(GENESIS).map_err(db_err)?;
            t.insert("machine", id.as_slice()).map_err(db_err)?;
        }
        w.commit().map_err(db_err)
    }

    /// Creates missing tables and checks the format version.
    fn init(db: Database) -> Result<Self, ChainError> {
        let w = begin_write(&db)?;
        {
            w.open_table(BLOCKS).map_err(db_err)?;
            w.open_table(PENDING).map_err(db_err)?;
            w.open_table(TX_INDEX).map_err(db_err)?;
            let mut meta = w.open_table(META).map_err(db_err)?;
            let version = meta.get("format").map_err(db_err)?.map(|v| v.value());
            match version {
                None => {
                    meta.insert("format", FORMAT_VERSION).map_err(db_err)?;
                }
                Some(FORMAT_VERSION) => {}
                Some(v) => {
                    return Err(ChainError::Corrupt(format!(
                        "database format {v}, this build reads {FORMAT_VERSION}"
                    )));
                }
            }
        }
        w.commit().map_err(db_err)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Visits every stored block in height order.
    pub fn for_each_block(
        &self,
        mut f: impl FnMut(Block) -> Result<(), ChainError>,
    ) -> Result<(), ChainError> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(BLOCKS).map_err(db_err)?;
        for entry in t.range(0u64..).map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            let block: Block = serde_json::from_slice(v.value()).map_err(|e| {
                ChainError::Corrupt(format!("block {} does not decode: {e}", k.value()))
            })?;
            if block.height != k.value() {
                return Err(ChainError::Corrupt(format!(
                    "block stored under {} claims height {}",
                    k.value(),
                    block.height
                )));
            }
            f(block)?;
        }
        Ok(())
    }

    /// Pending transactions in acceptance order.
    pub fn pending(&self) -> Result<Vec<PendingTx>, ChainError> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(PENDING).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in t.range(0u64..).map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            let bytes = v.value();
            if bytes.len() < 32 {
                return Err(ChainError::Corrupt(format!(
                    "pending entry {} too short",
                    k.value()
                )));
            }
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&bytes[..32]);
            out.push(PendingTx {
                seq: k.value(),
                hash,
                tx: bytes[32..].to_vec(),
            });
        }
        Ok(out)
    }

    /// Durably records accepted transactions (one fsync for the whole batch).
    pub fn append_pending<'a>(
        &self,
        txs: impl IntoIterator<Item = &'a PendingTx>,
    ) -> Result<(), ChainError> {
        let w = begin_write(&self.db)?;
        {
            let mut t = w.open_table(PENDING).map_err(db_err)?;
            let mut buf = Vec::new();
            for p in txs {
                buf.clear();
                buf.extend_from_slice(&p.hash);
                buf.extend_from_slice(&p.tx);
                t.insert(p.seq, buf.as_slice()).map_err(db_err)?;
            }
        }
        w.commit().map_err(db_err)
    }

    /// Atomically stores a block, indexes its transactions and removes them from `pending`.
    pub fn commit_block(
        &self,
        block: &Block,
        json: &[u8],
        included_seqs: &[u64],
    ) -> Result<(), ChainError> {
        let w = begin_write(&self.db)?;
        {
            let mut blocks = w.open_table(BLOCKS).map_err(db_err)?;
            blocks.insert(block.height, json).map_err(db_err)?;
            let mut index = w.open_table(TX_INDEX).map_err(db_err)?;
            for (i, r) in block.txs.iter().enumerate() {
                index
                    .insert(&r.hash, (block.height, i as u32))
                    .map_err(db_err)?;
            }
            let mut pending = w.open_table(PENDING).map_err(db_err)?;
            for seq in included_seqs {
                pending.remove(*seq).map_err(db_err)?;
            }
        }
        w.commit().map_err(db_err)
    }

    /// Where an included transaction is: (height, position in block).
    pub fn tx_location(&self, hash: &TxHash) -> Result<Option<(u64, u32)>, ChainError> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(TX_INDEX).map_err(db_err)?;
        Ok(t.get(hash).map_err(db_err)?.map(|v| v.value()))
    }

    /// The stored JSON of one block.
    pub fn block_json(&self, height: u64) -> Result<Option<Vec<u8>>, ChainError> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(BLOCKS).map_err(db_err)?;
        Ok(t.get(height).map_err(db_err)?.map(|v| v.value().to_vec()))
    }

    /// Consecutive block JSONs from `from`, at most `max_blocks` of them and, past the first,
    /// no more than `max_bytes` in total.
    pub fn blocks_json_from(
        &self,
        from: u64,
        max_blocks: usize,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, ChainError> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(BLOCKS).map_err(db_err)?;
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut bytes = 0usize;
        for entry in t.range(from..).map_err(db_err)? {
            let (_, v) = entry.map_err(db_err)?;
            let json = v.value();
            if out.len() >= max_blocks || (!out.is_empty() && bytes + json.len() > max_bytes) {
                break;
            }
            bytes += json.len();
            out.push(json.to_vec());
        }
        Ok(out)
    }
}
