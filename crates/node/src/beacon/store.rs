//! Beacon rounds in redb (`beacon.redb` next to the node's database), one table of rounds
//! keyed by `(chain hash, round)` and one of chain infos keyed by chain hash.
//!
//! Every round is verified under its chain's info ([`verify_round`], the beacon crate's one
//! verifier) before it is written, and a round already stored is never replaced: a second,
//! different value for a round is refused ([`BeaconStoreError::Conflict`]), the same value
//! again is a no-op. A round is written in its own transaction with immediate durability, so
//! a restart finds every round the node served.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use keyquorum_beacon::engine::RoundStore;
use keyquorum_beacon::{ChainInfo, Round, VerifyError, verify_round};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tracing::warn;

const ROUNDS: TableDefinition<(&[u8; 32], u64), &[u8]> = TableDefinition::new("rounds");
const CHAINS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("chains");

/// Why the beacon store refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum BeaconStoreError {
    /// redb failed.
    #[error("beacon database: {0}")]
    Db(#[from] redb::Error),
    /// Stored data does not decode.
    #[error("beacon database content: {0}")]
    Corrupt(String),
    /// The round does not verify under the chain's info.
    #[error("round {round} does not verify: {error}")]
    Unverified {
        /// The round.
        round: u64,
        /// Why.
        error: VerifyError,
    },
    /// Another value is stored for the round.
    #[error("round {0} is stored with another value")]
    Conflict(u64),
}

fn dberr<E: Into<redb::Error>>(e: E) -> BeaconStoreError {
    BeaconStoreError::Db(e.into())
}

/// The node's beacon rounds.
pub struct BeaconStore {
    db: Database,
}

impl std::fmt::Debug for BeaconStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BeaconStore")
    }
}

impl BeaconStore {
    /// Opens or creates the database (its integrity checked on open, as the node's own).
    pub fn open(path: &Path) -> Result<Self, BeaconStoreError> {
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .create(path)
            .map_err(dberr)?;
        let w = db.begin_write().map_err(dberr)?;
        {
            w.open_table(ROUNDS).map_err(dberr)?;
            w.open_table(CHAINS).map_err(dberr)?;
        }
        w.commit().map_err(dberr)?;
        Ok(BeaconStore { db })
    }

    /// Records a chain's info (idempotent).
    pub fn put_chain(&self, info: &ChainInfo) -> Result<(), BeaconStoreError> {
        let w = self.db.begin_write().map_err(dberr)?;
        {
            let mut t = w.open_table(CHAINS).map_err(dberr)?;
            t.insert(&info.hash(), info.to_json().as_bytes())
                .map_err(dberr)?;
        }
        w.commit().map_err(dberr)
    }

    /// A recorded chain's info.
    pub fn chain(&self, hash: &[u8; 32]) -> Result<Option<ChainInfo>, BeaconStoreError> {
        let r = self.db.begin_read().map_err(dberr)?;
        let t = r.open_table(CHAINS).map_err(dberr)?;
        match t.get(hash).map_err(dberr)? {
            None => Ok(None),
            Some(v) => ChainInfo::from_json(v.value())
                .map(Some)
                .map_err(|e| BeaconStoreError::Corrupt(e.to_string())),
        }
    }

    /// The highest stored round of `chain` (0 when none is).
    pub fn last_round(&self, chain: &[u8; 32]) -> Result<u64, BeaconStoreError> {
        let r = self.db.begin_read().map_err(dberr)?;
        let t = r.open_table(ROUNDS).map_err(dberr)?;
        let last = t
            .range((chain, 0u64)..=(chain, u64::MAX))
            .map_err(dberr)?
            .next_back()
            .transpose()
            .map_err(dberr)?
            .map(|(k, _)| k.value().1)
            .unwrap_or(0);
        Ok(last)
    }

    /// Round `round` of `chain`, if stored.
    pub fn round(&self, chain: &[u8; 32], round: u64) -> Result<Option<Round>, BeaconStoreError> {
        let r = self.db.begin_read().map_err(dberr)?;
        let t = r.open_table(ROUNDS).map_err(dberr)?;
        match t.get((chain, round)).map_err(dberr)? {
            None => Ok(None),
            Some(v) => Round::from_json(v.value())
                .map(Some)
                .map_err(|e| BeaconStoreError::Corrupt(e.to_string())),
        }
    }

    /// Verifies `round` under `info` and stores it. `Ok(false)` when the same round is already
    /// stored; a different stored value is [`BeaconStoreError::Conflict`].
    pub fn put_round(&self, info: &ChainInfo, round: &Round) -> Result<bool, BeaconStoreError> {
        verify_round(info, round).map_err(|error| BeaconStoreError::Unverified {
            round: round.round,
            error,
        })?;
        let chain = info.hash();
        let w = self.db.begin_write().map_err(dberr)?;
        {
            let mut t = w.open_table(ROUNDS).map_err(dberr)?;
            if let Some(existing) = t.get((&chain, round.round)).map_err(dberr)? {
                let existing = Round::from_json(existing.value())
                    .map_err(|e| BeaconStoreError::Corrupt(e.to_string()))?;
                return if existing == *round {
                    Ok(false)
                } else {
                    Err(BeaconStoreError::Conflict(round.round))
                };
            }
            t.insert((&chain, round.round), round.to_json().as_bytes())
                .map_err(dberr)?;
        }
        w.commit().map_err(dberr)?;
        Ok(true)
    }
}

/// One chain's rounds, as the engine reads them. The last round is a counter the owner keeps
/// (the engine asks for it on every call) and advances after each round it stores.
#[derive(Debug)]
pub struct ChainRounds<'a> {
    store: &'a BeaconStore,
    chain: [u8; 32],
    last: &'a AtomicU64,
}

impl<'a> ChainRounds<'a> {
    /// The rounds of `chain`, whose last stored round `last` holds.
    pub fn new(store: &'a BeaconStore, chain: [u8; 32], last: &'a AtomicU64) -> Self {
        ChainRounds { store, chain, last }
    }
}

impl RoundStore for ChainRounds<'_> {
    fn last_round(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }

    fn get(&self, round: u64) -> Option<Round> {
        match self.store.round(&self.chain, round) {
            Ok(r) => r,
            Err(e) => {
                // The engine then waits: it signs nothing it cannot chain to.
                warn!(round, error = %e, "cannot read a stored beacon round");
                None
            }
        }
    }
}
