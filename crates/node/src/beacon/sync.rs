//! Rounds this node lacks, fetched in bounded batches from the committee, and the answers this
//! node gives to such requests (encodings and checks: `keyquorum_beacon::sync`).
//!
//! # Asking
//! A node that signs nothing in the view (outside the committee, or without its share) asks
//! whenever the clock has passed its last stored round; a member asks when it is two or more
//! rounds behind the clock, which happens when it was down while the others went on (the round
//! in progress is its engine's: it combines that one from partials). It asks for at most
//! [`MAX_SYNC_ROUNDS`] rounds from the one after its last, one request at a time and one
//! member at a time, the members in turn. An answer that filled the request while the node
//! is still behind is followed at once by the next request; otherwise the next waits
//! [`SYNC_RETRY`] and goes to the next member (the one asked may not have the round yet, be
//! down, or have answered with something that did not verify). A member that refused the
//! request for now (rate limited, see below) is not asked again before the wait it named has
//! passed (at most [`MAX_SYNC_BACKOFF`]); the others are asked meanwhile.
//!
//! Each round of an answer is taken in order only when it is the next one and chains to the
//! stored round before it (`keyquorum_beacon::sync::check_link`), and the store verifies it
//! under the group key before writing it; the first round that fails ends the answer. So a
//! lagging node catches up `MAX_SYNC_ROUNDS` rounds per request, and a hostile answer costs it
//! one request.
//!
//! # Answering
//! Anyone may ask (rounds are public, and the network session of these requests has no
//! allow-list): the answer is up to the requested count of consecutive stored rounds of the
//! named chain from the requested round, read in one transaction, and an empty list for a
//! chain or range this node does not have.
//!
//! Each asking peer (its authenticated identity, or its peer id when it presented none) has a
//! token bucket ([`SyncGate`], `beacon.sync_rate_per_sec` and `beacon.sync_burst`): a request
//! past it is refused before any round is read, with the wait until the bucket holds a token
//! again (`keyquorum_beacon::sync::encode_rate_limited`). The refusals are counted in
//! `keyquorum_beacon_sync_answers_total{result="rate_limited"}`, the answers in
//! `{result="served"}`.

use std::collections::HashMap;
use std::time::Duration;

use keyquorum_beacon::sync::{MAX_SYNC_ROUNDS, SyncRequest, encode_rate_limited, encode_rounds};

use super::store::BeaconStore;
use crate::sign::limit::RateLimiter;

/// Wait before asking again after an answer that did not fill the request.
pub const SYNC_RETRY: Duration = Duration::from_millis(500);
/// Longest wait a refusal makes this node keep off the refusing member: a member that names
/// a longer one is asked again after this.
pub const MAX_SYNC_BACKOFF: Duration = Duration::from_secs(60);

/// The answering side's per-peer rate limit (see the module docs). Deterministic: the caller
/// passes the time.
#[derive(Debug)]
pub struct SyncGate {
    limiter: RateLimiter,
}

impl SyncGate {
    /// A bucket per asking peer, refilled at `per_sec` requests a second up to `burst`.
    pub fn new(per_sec: f64, burst: u32) -> Self {
        SyncGate {
            limiter: RateLimiter::new(per_sec, burst),
        }
    }

    /// Takes one request of `peer` at `now_ms`; when its bucket is empty, the refusal to
    /// answer with instead of rounds.
    pub fn admit(&mut self, peer: &str, now_ms: u64) -> Result<(), Vec<u8>> {
        self.limiter.check(peer, now_ms).map_err(|wait_secs| {
            let ms = wait_secs.saturating_mul(1000);
            encode_rate_limited(u32::try_from(ms).unwrap_or(u32::MAX))
        })
    }
}

// A full answer must fit in what the network lets through.
const _: () =
    assert!(keyquorum_beacon::sync::MAX_SYNC_ANSWER_LEN <= keyquorum_net::MAX_SYNC_ANSWER);
const _: () = assert!(keyquorum_beacon::sync::SYNC_REQUEST_LEN <= keyquorum_net::MAX_SYNC_REQUEST);

/// A request to send: to whom, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncAsk {
    /// The member's identity (bytes).
    pub to: Vec<u8>,
    /// The request.
    pub request: SyncRequest,
}

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncResult {
    /// No answer (unreachable, timed out, or an answer that does not decode).
    Unanswered,
    /// The member refused for now: ask it again no sooner than this.
    RateLimited {
        /// The wait it named, in milliseconds.
        retry_after_ms: u32,
    },
    /// Rounds stored from the answer; `refused` when a round in it failed the checks.
    Answered {
        /// Rounds stored.
        stored: u64,
        /// Whether a round of the answer was refused.
        refused: bool,
    },
}

impl SyncResult {
    /// Rounds stored from the answer.
    pub fn stored(self) -> u64 {
        match self {
            SyncResult::Answered { stored, .. } => stored,
            SyncResult::Unanswered | SyncResult::RateLimited { .. } => 0,
        }
    }

    /// The label of `keyquorum_beacon_sync_requests_total{result}`.
    pub fn label(self) -> &'static str {
        match self {
            SyncResult::Unanswered => "unanswered",
            SyncResult::RateLimited { .. } => "rate_limited",
            SyncResult::Answered { refused: true, .. } => "refused",
            SyncResult::Answered { stored: 0, .. } => "empty",
            SyncResult::Answered { .. } => "rounds",
        }
    }
}

/// Who to ask next and when (see the module docs).
#[derive(Debug, Default)]
pub struct Syncer {
    next_peer: usize,
    in_flight: Option<SyncRequest>,
    not_before_ms: u64,
    /// Members that refused, and until when they are not asked (at most one entry per peer
    /// passed to [`Syncer::due`], dropped once passed).
    backoff: HashMap<Vec<u8>, u64>,
}

impl Syncer {
    /// The request due now, if any: this node's last stored round of `chain` is `last`, the
    /// clock is in round `now_round`, and `peers` are the nodes to ask.
    pub fn due(
        &mut self,
        chain: [u8; 32],
        last: u64,
        upto: u64,
        now_ms: u64,
        peers: &[Vec<u8>],
    ) -> Option<SyncAsk> {
        if self.in_flight.is_some() || now_ms < self.not_before_ms || peers.is_empty() {
            return None;
        }
        let request = SyncRequest::after(chain, last, upto)?;
        self.backoff.retain(|_, until| *until > now_ms);
        // The next member in turn that is not keeping this node off.
        let turn = (0..peers.len())
            .map(|k| self.next_peer.wrapping_add(k) % peers.len())
            .find(|&i| !self.backoff.contains_key(&peers[i]))?;
        self.next_peer = turn;
        let to = peers[turn].clone();
        self.in_flight = Some(request);
        Some(SyncAsk { to, request })
    }

    /// The answer to `ask` came back with `result`; `behind` says whether this node still
    /// lacks rounds the clock has passed.
    pub fn done(&mut self, ask: &SyncAsk, result: SyncResult, behind: bool, now_ms: u64) {
        let request = &ask.request;
        if self.in_flight.as_ref() == Some(request) {
            self.in_flight = None;
        }
        if let SyncResult::RateLimited { retry_after_ms } = result {
            let wait = u64::from(retry_after_ms).min(MAX_SYNC_BACKOFF.as_millis() as u64);
            self.backoff
                .insert(ask.to.clone(), now_ms.saturating_add(wait.max(1)));
            // Another member may be asked at once; this one is kept off until then.
            self.next_peer = self.next_peer.wrapping_add(1);
            self.not_before_ms = now_ms;
            return;
        }
        let filled = matches!(
            result,
            SyncResult::Answered { stored, refused: false } if stored == u64::from(request.count)
        );
        if filled && behind {
            self.not_before_ms = now_ms;
        } else {
            self.next_peer = self.next_peer.wrapping_add(1);
            self.not_before_ms = now_ms.saturating_add(SYNC_RETRY.as_millis() as u64);
        }
    }
}

/// This node's answer to a sync request (see the module docs): the encoded rounds, or nothing
/// for a request that does not decode.
pub fn answer(store: Option<&BeaconStore>, payload: &[u8]) -> Vec<u8> {
    let Ok(request) = SyncRequest::from_bytes(payload) else {
        return Vec::new();
    };
    debug_assert!(request.count <= MAX_SYNC_ROUNDS);
    let rounds = store
        .and_then(|s| {
            s.rounds_from(&request.chain, request.from, request.count)
                .map_err(|e| tracing::warn!(error = %e, "cannot read beacon rounds to answer"))
                .ok()
        })
        .unwrap_or_default();
    encode_rounds(&rounds)
}
