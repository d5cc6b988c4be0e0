//! Beacon rounds in redb (`beacon.redb` next to the node's database), one table of rounds
//! keyed by `(chain hash, round)`, one of chain infos keyed by chain hash, and one of when this
//! node stored each round and how it got it ([`RoundTiming`]), under the same key.
//!
//! # Versions
//! The store records its layout version in a `meta` table. Version 1 (no `meta` table) had
//! rounds and chains only; opening one adds the timing table and records version 2, and the
//! rounds stored before have no timing ([`BeaconStore::timings`] says so, it invents none).
//! A store of a later version than this code knows is refused.
//!
//! Every round from elsewhere (a peer's answer, a fetched batch, an ended chain) is verified
//! under its chain's info ([`verify_round`], the beacon crate's verifier) before it is written;
//! a round this node's engine combined was checked by the engine under the same key and
//! message before it was output, and is not checked twice. A round already stored is never
//! replaced: a second, different value for a round is refused ([`BeaconStoreError::Conflict`]),
//! the same value again is a no-op. A round is written in its own transaction with immediate
//! durability, so a restart finds every round the node served.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use keyquorum_beacon::engine::RoundStore;
use keyquorum_beacon::{ChainInfo, Round, VerifyError, verify_round};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tracing::warn;

const ROUNDS: TableDefinition<(&[u8; 32], u64), &[u8]> = TableDefinition::new("rounds");
const CHAINS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("chains");
/// `(chain hash, round)` to [`RoundTiming::to_bytes`].
const TIMINGS: TableDefinition<(&[u8; 32], u64), &[u8]> = TableDefinition::new("round_timings");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const VERSION_KEY: &str = "version";
/// The layout this code writes (see the module docs).
pub const STORE_VERSION: u64 = 2;
/// Most rounds [`BeaconStore::timings`] returns at once.
pub const MAX_TIMINGS: u64 = 1000;

/// How this node got a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundOrigin {
    /// Combined here from the members' partials.
    Combined,
    /// Taken, verified, from a member's answer to one of this node's partials.
    Synced,
}

impl RoundOrigin {
    /// The name the HTTP API uses.
    pub fn name(self) -> &'static str {
        match self {
            RoundOrigin::Combined => "combined",
            RoundOrigin::Synced => "synced",
        }
    }
}

/// When this node stored a round (Unix milliseconds, its own clock) and how it got it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundTiming {
    /// When the round was written.
    pub stored_ms: u64,
    /// How the round was obtained.
    pub origin: RoundOrigin,
}

impl RoundTiming {
    const LEN: usize = 9;

    /// `stored_ms` (8 bytes big-endian), then the origin (0 combined, 1 synced).
    fn to_bytes(self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..8].copy_from_slice(&self.stored_ms.to_be_bytes());
        out[8] = match self.origin {
            RoundOrigin::Combined => 0,
            RoundOrigin::Synced => 1,
        };
        out
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, BeaconStoreError> {
        let corrupt = || BeaconStoreError::Corrupt("round timing".into());
        let bytes: &[u8; Self::LEN] = bytes.try_into().map_err(|_| corrupt())?;
        let origin = match bytes[8] {
            0 => RoundOrigin::Combined,
            1 => RoundOrigin::Synced,
            _ => return Err(corrupt()),
        };
        let mut ms = [0u8; 8];
        ms.copy_from_slice(&bytes[..8]);
        Ok(RoundTiming {
            stored_ms: u64::from_be_bytes(ms),
            origin,
        })
    }

    /// Milliseconds from the round's scheduled start under `info` (`genesis + (round - 1) *
    /// period`) to its storage; negative if this node's clock is behind the schedule's. `None`
    /// when the round has no representable start.
    pub fn latency_ms(&self, info: &ChainInfo, round: u64) -> Option<i64> {
        let start_ms = info.time_of_round(round)?.checked_mul(1000)?;
        i64::try_from(self.stored_ms).ok()?.checked_sub(start_ms)
    }
}

/// A stored round's number and timing (`None` for rounds stored by a version-1 store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredRound {
    /// Round number.
    pub round: u64,
    /// When and how it was stored.
    pub timing: Option<RoundTiming>,
}

/// Why the beacon store refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum BeaconStoreError {
    /// The data file could not be opened.
    #[error(transparent)]
    File(crate::data_file::DataFileError),
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
    /// The store was written by a later version of keyquorum.
    #[error("beacon database has layout version {0}; this build knows up to {STORE_VERSION}")]
    UnknownVersion(u64),
}

fn dberr<E: Into<redb::Error>>(e: E) -> BeaconStoreError {
    BeaconStoreError::Db(e.into())
}

/// The node's beacon rounds.
pub struct BeaconStore {
    db: Database,
    /// Writes still to fail, as a failing disk would (tests only).
    #[cfg(test)]
    failing_writes: std::sync::atomic::AtomicU32,
}

impl std::fmt::Debug for BeaconStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BeaconStore")
    }
}

impl BeaconStore {
    /// Makes the next `n` round writes fail.
    #[cfg(test)]
    pub(crate) fn fail_writes(&self, n: u32) {
        self.failing_writes.store(n, Ordering::Relaxed);
    }

    /// Opens the database, creating it only when `path` does not exist; an empty, damaged or
    /// busy file is refused ([`crate::data_file`]).
    pub fn open(path: &Path) -> Result<Self, BeaconStoreError> {
        crate::data_file::open(path, |db| -> Result<_, BeaconStoreError> {
            let w = db.begin_write().map_err(dberr)?;
            {
                // The version first: a later version's tables may not open as this build's.
                let mut meta = w.open_table(META).map_err(dberr)?;
                // No version: a new store, or a version-1 one, whose rounds keep no timing.
                let version = meta
                    .get(VERSION_KEY)
                    .map_err(dberr)?
                    .map(|v| v.value())
                    .unwrap_or(1);
                if version > STORE_VERSION {
                    return Err(BeaconStoreError::UnknownVersion(version));
                }
                meta.insert(VERSION_KEY, STORE_VERSION).map_err(dberr)?;
            }
            w.open_table(ROUNDS).map_err(dberr)?;
            w.open_table(CHAINS).map_err(dberr)?;
            w.open_table(TIMINGS).map_err(dberr)?;
            w.commit().map_err(dberr)?;
            Ok(BeaconStore {
                db,
                #[cfg(test)]
                failing_writes: Default::default(),
            })
        })
        .map_err(BeaconStoreError::File)?
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

    /// Up to `count` stored rounds of `chain` from round `from` on, consecutive: the list ends
    /// before the first round this node does not have (read in one transaction).
    pub fn rounds_from(
        &self,
        chain: &[u8; 32],
        from: u64,
        count: u32,
    ) -> Result<Vec<Round>, BeaconStoreError> {
        let r = self.db.begin_read().map_err(dberr)?;
        let t = r.open_table(ROUNDS).map_err(dberr)?;
        let mut out = Vec::new();
        let Some(to) = from.checked_add(u64::from(count)) else {
            return Ok(out);
        };
        for (i, entry) in t
            .range((chain, from)..(chain, to))
            .map_err(dberr)?
            .enumerate()
        {
            let (key, value) = entry.map_err(dberr)?;
            if key.value().1 != from + i as u64 {
                break;
            }
            out.push(
                Round::from_json(value.value())
                    .map_err(|e| BeaconStoreError::Corrupt(e.to_string()))?,
            );
        }
        Ok(out)
    }

    /// The hashes of every recorded chain, in byte order.
    pub fn chains(&self) -> Result<Vec<[u8; 32]>, BeaconStoreError> {
        let r = self.db.begin_read().map_err(dberr)?;
        let t = r.open_table(CHAINS).map_err(dberr)?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(dberr)? {
            out.push(*entry.map_err(dberr)?.0.value());
        }
        Ok(out)
    }

    /// The layout version of the store (always [`STORE_VERSION`] once opened).
    pub fn version(&self) -> Result<u64, BeaconStoreError> {
        let r = self.db.begin_read().map_err(dberr)?;
        let t = r.open_table(META).map_err(dberr)?;
        Ok(t.get(VERSION_KEY).map_err(dberr)?.map_or(1, |v| v.value()))
    }

    /// The stored rounds of `chain` numbered `from..=to`, at most [`MAX_TIMINGS`] of them
    /// (the first ones), with their timings.
    pub fn timings(
        &self,
        chain: &[u8; 32],
        from: u64,
        to: u64,
    ) -> Result<Vec<StoredRound>, BeaconStoreError> {
        let r = self.db.begin_read().map_err(dberr)?;
        let rounds = r.open_table(ROUNDS).map_err(dberr)?;
        let timings = r.open_table(TIMINGS).map_err(dberr)?;
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        for entry in rounds.range((chain, from)..=(chain, to)).map_err(dberr)? {
            if out.len() as u64 >= MAX_TIMINGS {
                break;
            }
            let (key, _) = entry.map_err(dberr)?;
            let round = key.value().1;
            let timing = match timings.get((chain, round)).map_err(dberr)? {
                Some(v) => Some(RoundTiming::from_bytes(v.value())?),
                None => None,
            };
            out.push(StoredRound { round, timing });
        }
        Ok(out)
    }

    /// Verifies `round` under `info` and stores it, with `timing`, in one transaction.
    /// `Ok(false)` when the same round is already stored (its first timing is kept); a
    /// different stored value is [`BeaconStoreError::Conflict`].
    pub fn put_round(
        &self,
        info: &ChainInfo,
        round: &Round,
        timing: RoundTiming,
    ) -> Result<bool, BeaconStoreError> {
        verify_round(info, round).map_err(|error| BeaconStoreError::Unverified {
            round: round.round,
            error,
        })?;
        self.insert_round(info, round, timing)
    }

    /// Stores a round this node's round engine combined for the chain `info`, with `timing`,
    /// without verifying it again: the engine is built on `info`'s key and scheme and hands
    /// over only a signature it verified under them (`keyquorum_beacon::engine`). Rounds from
    /// anywhere else go through [`BeaconStore::put_round`].
    pub(crate) fn put_combined_round(
        &self,
        info: &ChainInfo,
        round: &Round,
        timing: RoundTiming,
    ) -> Result<bool, BeaconStoreError> {
        self.insert_round(info, round, timing)
    }

    fn insert_round(
        &self,
        info: &ChainInfo,
        round: &Round,
        timing: RoundTiming,
    ) -> Result<bool, BeaconStoreError> {
        #[cfg(test)]
        if self
            .failing_writes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(BeaconStoreError::Db(redb::Error::Io(
                std::io::Error::other("injected write failure"),
            )));
        }
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
            let mut timings = w.open_table(TIMINGS).map_err(dberr)?;
            timings
                .insert((&chain, round.round), timing.to_bytes().as_slice())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_file::DataFileError;

    #[test]
    fn an_empty_beacon_file_is_refused_not_started_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("beacon.redb");
        drop(BeaconStore::open(&path).unwrap());
        std::fs::File::create(&path).unwrap(); // truncates to 0 bytes
        let err = BeaconStore::open(&path).unwrap_err();
        assert!(
            matches!(&err, BeaconStoreError::File(DataFileError::Empty { path: p }) if p == &path),
            "{err}"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn a_version_1_store_opens_as_version_2_without_inventing_timings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("beacon.redb");
        let chain = [3u8; 32];
        // A store as version 1 wrote it: rounds and chains, no meta and no timings.
        {
            let db = Database::create(&path).unwrap();
            let w = db.begin_write().unwrap();
            {
                let mut t = w.open_table(ROUNDS).unwrap();
                t.insert((&chain, 1u64), b"{}".as_slice()).unwrap();
                t.insert((&chain, 2u64), b"{}".as_slice()).unwrap();
                w.open_table(CHAINS).unwrap();
            }
            w.commit().unwrap();
        }
        let store = BeaconStore::open(&path).unwrap();
        assert_eq!(store.version().unwrap(), STORE_VERSION);
        assert_eq!(
            store.timings(&chain, 1, 5).unwrap(),
            [
                StoredRound {
                    round: 1,
                    timing: None
                },
                StoredRound {
                    round: 2,
                    timing: None
                }
            ]
        );
        drop(store);
        // Reopening keeps the version.
        assert_eq!(BeaconStore::open(&path).unwrap().version().unwrap(), 2);
    }

    #[test]
    fn a_store_of_a_later_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("beacon.redb");
        {
            let db = Database::create(&path).unwrap();
            let w = db.begin_write().unwrap();
            w.open_table(META)
                .unwrap()
                .insert(VERSION_KEY, STORE_VERSION + 1)
                .unwrap();
            w.commit().unwrap();
        }
        assert!(matches!(
            BeaconStore::open(&path),
            Err(BeaconStoreError::UnknownVersion(3))
        ));
    }

    #[test]
    fn timings_round_trip_and_refuse_bad_bytes() {
        for origin in [RoundOrigin::Combined, RoundOrigin::Synced] {
            let t = RoundTiming {
                stored_ms: 1_700_000_000_123,
                origin,
            };
            assert_eq!(RoundTiming::from_bytes(&t.to_bytes()).unwrap(), t);
        }
        let mut bad = RoundTiming {
            stored_ms: 1,
            origin: RoundOrigin::Synced,
        }
        .to_bytes();
        bad[8] = 2;
        assert!(RoundTiming::from_bytes(&bad).is_err());
        assert!(RoundTiming::from_bytes(&bad[..8]).is_err());
    }
}
