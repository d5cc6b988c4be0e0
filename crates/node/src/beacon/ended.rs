//! Rounds of chains that fresh-key view changes ended, fetched so that every node serves them
//! under `/{chainhash}/...` ([`super::http`]), not only the nodes that ran them.
//!
//! The driver names the ended chains in the view's record
//! ([`crate::store::EndedChainRecord`]): each chain's info, its committee, and the last round
//! it can have (the module docs of the driver's beacon). For each one this node lacks rounds
//! of, an [`EndedChain`] asks for them as [`super::sync`] asks for the current chain's (one
//! bounded batch at a time, the same per-member turns, waits and refusals; every round checked
//! against the one before it and verified under the ended chain's info before it is stored),
//! from the ended chain's committee and then the current one, but never past that last round.
//!
//! The chain's real last round can be below the bound (the old committee stops on the
//! activation, a round or two before the new chain starts), and nothing says where. So a full
//! turn of the members that brings no new round, with every one of them answering, ends the
//! fetching until the node restarts. A turn in which some member did not answer (unreachable,
//! or refusing for now under its rate limit) is tried again after [`ENDED_RETRY`]: an empty
//! answer from a member that never had the chain must not end the fetch while one that has it
//! is only busy.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keyquorum_beacon::ChainInfo;

use super::store::BeaconStore;
use super::sync::{SyncAsk, SyncResult, Syncer};
use super::take_sync_answer;
use crate::metrics::Metrics;
use crate::store::EndedChainRecord;

/// Wait before another turn of the members when one of them did not answer the last one.
pub const ENDED_RETRY: Duration = Duration::from_secs(60);

/// Fetching one ended chain (see the module docs).
#[derive(Debug)]
pub struct EndedChain {
    info: ChainInfo,
    bound: u64,
    store: Arc<BeaconStore>,
    last: AtomicU64,
    metrics: Arc<Metrics>,
    peers: Vec<Vec<u8>>,
    syncer: Syncer,
    /// Answers since the last new round, and whether every one of them was an answer.
    fruitless: usize,
    all_answered: bool,
    /// A turn brought nothing while every member answered: nothing more to fetch.
    finished: bool,
    not_before_ms: u64,
}

impl EndedChain {
    /// The fetching of the chain `record` names, from its committee and then `current`'s
    /// members, leaving out `me`. Records the chain's info in the store, so it is served
    /// before any round is.
    pub fn new(
        record: &EndedChainRecord,
        current: &[Vec<u8>],
        me: &[u8],
        store: Arc<BeaconStore>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        let info = ChainInfo::from_json(record.chain_info.as_bytes()).map_err(|e| e.to_string())?;
        let mut peers: Vec<Vec<u8>> = Vec::new();
        for id in &record.committee {
            peers.push(hex::decode(id).map_err(|_| "committee identity".to_string())?);
        }
        peers.extend(current.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        peers.retain(|p| p.as_slice() != me && seen.insert(p.clone()));
        store.put_chain(&info).map_err(|e| e.to_string())?;
        let last = store.last_round(&info.hash()).map_err(|e| e.to_string())?;
        Ok(EndedChain {
            info,
            bound: record.last_round,
            store,
            last: AtomicU64::new(last),
            metrics,
            peers,
            syncer: Syncer::default(),
            fruitless: 0,
            all_answered: true,
            finished: false,
            not_before_ms: 0,
        })
    }

    /// The chain.
    pub fn info(&self) -> &ChainInfo {
        &self.info
    }

    /// The last stored round.
    pub fn last_round(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }

    /// Whether nothing is left to ask for: every round up to the bound is stored, or a turn
    /// of the members brought nothing more.
    pub fn finished(&self) -> bool {
        self.finished || self.last_round() >= self.bound
    }

    /// The request due now, if any.
    pub fn sync_due(&mut self, now_ms: u64) -> Option<SyncAsk> {
        if self.finished() || now_ms < self.not_before_ms {
            return None;
        }
        self.syncer.due(
            self.info.hash(),
            self.last_round(),
            self.bound,
            now_ms,
            &self.peers,
        )
    }

    /// The answer to `ask` (or why there is none).
    pub fn on_sync_answer(&mut self, ask: &SyncAsk, answer: Result<Vec<u8>, String>, now_ms: u64) {
        if ask.request.chain != self.info.hash() {
            return;
        }
        let result = take_sync_answer(
            &self.store,
            &self.info,
            &self.last,
            &self.metrics,
            ask,
            answer,
            now_ms,
        );
        let behind = self.last_round() < self.bound;
        self.syncer.done(ask, result, behind, now_ms);
        if result.stored() > 0 {
            self.fruitless = 0;
            self.all_answered = true;
            return;
        }
        self.fruitless += 1;
        self.all_answered &= matches!(result, SyncResult::Answered { .. });
        if self.fruitless >= self.peers.len() {
            if self.all_answered {
                self.finished = true;
                tracing::info!(
                    chain = %hex::encode(self.info.hash()),
                    last_round = self.last_round(),
                    "ended beacon chain fetched as far as its members have it"
                );
            } else {
                self.not_before_ms = now_ms.saturating_add(ENDED_RETRY.as_millis() as u64);
            }
            self.fruitless = 0;
            self.all_answered = true;
        }
    }
}
