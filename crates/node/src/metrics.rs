//! The node's metrics: a `prometheus-client` registry, served at `/metrics` in the OpenMetrics
//! text format (content type [`CONTENT_TYPE`]).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `keyquorum_messages_sent_total`, `keyquorum_bytes_sent_total` | counter | `kind` (deal, ack, pull, tx kinds) |
//! | `keyquorum_messages_received_total`, `keyquorum_bytes_received_total` | counter | `kind` |
//! | `keyquorum_phase_duration_seconds` (`_bucket`, `_sum`, `_count`) | histogram | `phase` |
//! | `keyquorum_faults_seen_total` | counter | `fault` |
//! | `keyquorum_view`, `keyquorum_chain_height` | gauge | |
//! | `keyquorum_chain_head` (the chain's head as the node last read it; above `keyquorum_chain_height` while it processes older blocks) | gauge | |
//! | `keyquorum_evicted` (1 while the chain has this node off its candidate list after an eviction) | gauge | |
//! | `keyquorum_registration_refused` (1 while the chain refuses this node's registration: for a full candidate list or an account registered with another identity on an EVM chain, for want of free balance) | gauge | |
//! | `keyquorum_stake_below_minimum` (1 while this node's stake is below the chain's minimum, so never listed) | gauge | |
//! | `keyquorum_sends_pending` (this node's transactions still pending on the chain after their receipt wait) | gauge | |
//! | `keyquorum_send_fee_bumps` (replacements with higher fees sent for those pending transactions) | gauge | |
//! | `keyquorum_chain_refused` (1 while this node refuses the chain: another chain under it, a block its own execution of the contract does not reproduce, or on an EVM chain a reorg deeper than the confirmation depth or an undecodable log) | gauge | |
//! | `keyquorum_chain_unreachable` (1 while every read of the chain has failed for 10 s or more) | gauge | |
//! | `keyquorum_ceremonies_total` | counter | `result` (`success`, `failure`) |
//! | `keyquorum_fault_proofs_total` | counter | `result` (`proved`, `settled`, `refused`) |
//! | `keyquorum_transactions_reverted_total` (this node's transactions mined and reverted: fee paid, nothing applied) | counter | `kind` (tx kinds, `start_view_change`) |
//! | `keyquorum_magic_block_mismatches_total` | counter | `what` (first field that differs) |
//! | `keyquorum_beacon_rounds_total`, `keyquorum_beacon_late_rounds_total` | counter | |
//! | `keyquorum_beacon_partials_total` | counter | `member` (committee position), `result` |
//! | `keyquorum_beacon_combine_seconds`, `keyquorum_beacon_round_latency_seconds` | histogram | |
//! | `keyquorum_beacon_sync_requests_total` | counter | `result` (`rounds`, `empty`, `refused`, `unanswered`, `rate_limited`) |
//! | `keyquorum_beacon_sync_answers_total` | counter | `result` (`served`, `rate_limited`) |
//! | `keyquorum_beacon_synced_rounds_total` | counter | |
//! | `keyquorum_sign_requests_total` | counter | `result` (`signed`, `rejected`) |
//! | `keyquorum_sign_rejections_total` | counter | `reason` (error code of `POST /sign`) |
//! | `keyquorum_sign_partials_total` | counter | `member`, `result` (`valid`, `invalid`, `refused`, `unreachable`, `other_view`) |
//! | `keyquorum_sign_answers_total` | counter | `result` |
//! | `keyquorum_sign_frost_attempts_total` | counter | `result` (`signed`, `culprits`, `no_commitments`, `other_view`, `failed`) |
//! | `keyquorum_sign_frost_culprits_total` | counter | `member`, `fault` (`invalid_share`, `unresponsive`, `refused`, `malformed`) |
//! | `keyquorum_sign_combine_seconds`, `keyquorum_sign_request_seconds` | histogram | |
//!
//! Callers name a metric by its exposed name ([`Metrics::add`], [`Metrics::set`]) or use the
//! shorthands ([`Metrics::sent`], [`Metrics::received`], [`Metrics::phase`], [`Metrics::fault`]).
//! The set of metrics is closed: every name and label key is declared here once, so a name the
//! registry does not know is a programming error (a debug assertion, and a warning in release
//! builds), not a new series.
//!
//! Traffic is also offered typed ([`Metrics::traffic`], in the node's `/status` JSON), so
//! programs that want the numbers never parse the exposition text.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use serde::{Deserialize, Serialize};

/// The content type of [`Metrics::render`]'s output (OpenMetrics 1.0 text).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One label, its key fixed per family.
type Labels = Vec<(&'static str, String)>;

/// A counter family with one label.
struct Counters {
    /// Exposed name (with the `_total` suffix the encoder adds).
    name: String,
    label: &'static str,
    family: Family<Labels, Counter>,
}

/// Positions of the labelled counters in [`COUNTERS`].
const MESSAGES_SENT: usize = 0;
const BYTES_SENT: usize = 1;
const MESSAGES_RECEIVED: usize = 2;
const BYTES_RECEIVED: usize = 3;
const FAULTS: usize = 4;
const CEREMONIES: usize = 5;
const FAULT_PROOFS: usize = 7;
const REVERTED: usize = 8;

/// `(registered name, label key, help)`; the exposed name gets `_total` appended, and the
/// encoder ends each help text with a full stop.
const COUNTERS: [(&str, &str, &str); 9] = [
    (
        "keyquorum_messages_sent",
        "kind",
        "Messages delivered to peers or submitted to the chain, by kind",
    ),
    (
        "keyquorum_bytes_sent",
        "kind",
        "Payload bytes delivered to peers or submitted to the chain, by kind",
    ),
    (
        "keyquorum_messages_received",
        "kind",
        "Messages received from peers, by kind",
    ),
    (
        "keyquorum_bytes_received",
        "kind",
        "Payload bytes received from peers, by kind",
    ),
    (
        "keyquorum_faults_seen",
        "fault",
        "Faults observed: exclusions recorded on chain, refused posts, bad shares and acks",
    ),
    (
        "keyquorum_ceremonies",
        "result",
        "Ceremonies this node finished, by result",
    ),
    (
        "keyquorum_magic_block_mismatches",
        "what",
        "Magic blocks not signed because they differ from the one the node's own board defines",
    ),
    (
        "keyquorum_fault_proofs",
        "result",
        "Fraud proofs this node held, by result: proved by its transaction, settled by another \
         member's proof first, refused by the chain for another reason",
    ),
    (
        "keyquorum_transactions_reverted",
        "kind",
        "This node's transactions mined and reverted, by kind: their fee was paid and nothing \
         applied (usually another member's copy in the same block; a refusal before sending is \
         free and not counted)",
    ),
];

/// What became of a fraud proof this node held: its transaction slashed the culprit; another
/// member's proof did first (seen before this node's turn, or this node's proof refused or
/// reverted as `AlreadySlashed`); the chain refused it for another reason.
pub const FAULT_PROOF_RESULTS: [&str; 3] = ["proved", "settled", "refused"];

/// Exposed names of the gauges.
const VIEW: &str = "keyquorum_view";
const CHAIN_HEIGHT: &str = "keyquorum_chain_height";
const CHAIN_HEAD: &str = "keyquorum_chain_head";
const EVICTED: &str = "keyquorum_evicted";
const REGISTRATION_REFUSED: &str = "keyquorum_registration_refused";
const STAKE_BELOW_MINIMUM: &str = "keyquorum_stake_below_minimum";
const SENDS_PENDING: &str = "keyquorum_sends_pending";
const SEND_FEE_BUMPS: &str = "keyquorum_send_fee_bumps";
const CHAIN_REFUSED: &str = "keyquorum_chain_refused";
const CHAIN_UNREACHABLE: &str = "keyquorum_chain_unreachable";

/// Message and byte counts in both directions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficCounts {
    /// Messages delivered to peers or submitted to the chain.
    pub messages_sent: u64,
    /// Payload bytes delivered to peers or submitted to the chain.
    pub bytes_sent: u64,
    /// Messages received from peers.
    pub messages_received: u64,
    /// Payload bytes received from peers.
    pub bytes_received: u64,
}

/// A node's traffic counters: totals, and the same by message kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// Sums over every kind.
    #[serde(flatten)]
    pub total: TrafficCounts,
    /// Per kind (deal, ack, pull, transaction kinds).
    pub by_kind: BTreeMap<String, TrafficCounts>,
}

/// The node's metrics.
pub struct Metrics {
    registry: Registry,
    counters: Vec<Counters>,
    phase_duration: Family<Labels, Histogram, fn() -> Histogram>,
    view: Gauge,
    chain_height: Gauge,
    chain_head: Gauge,
    evicted: Gauge,
    registration_refused: Gauge,
    stake_below_minimum: Gauge,
    sends_pending: Gauge,
    send_fee_bumps: Gauge,
    chain_refused: Gauge,
    chain_unreachable: Gauge,
    /// Message kinds seen, so [`Metrics::traffic`] can list them (the registry's families do
    /// not offer iteration).
    kinds: Mutex<BTreeSet<String>>,
    beacon: BeaconMetrics,
    /// On-demand signing's metrics (see [`crate::sign`]).
    pub sign: crate::sign::SignMetrics,
}

/// The beacon's metrics (see [`crate::beacon`]).
struct BeaconMetrics {
    rounds: Counter,
    late: Counter,
    partials: Family<Labels, Counter>,
    combine: Histogram,
    latency: Histogram,
    sync_requests: Family<Labels, Counter>,
    sync_answers: Family<Labels, Counter>,
    synced: Counter,
}

impl BeaconMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = BeaconMetrics {
            rounds: Counter::default(),
            late: Counter::default(),
            partials: Family::default(),
            // Half a millisecond to about 8 s, doubling.
            combine: Histogram::new(exponential_buckets(0.0005, 2.0, 15)),
            // Ten milliseconds to about 40 s, doubling.
            latency: Histogram::new(exponential_buckets(0.01, 2.0, 13)),
            sync_requests: Family::default(),
            sync_answers: Family::default(),
            synced: Counter::default(),
        };
        registry.register(
            "keyquorum_beacon_rounds",
            "Beacon rounds verified and stored",
            m.rounds.clone(),
        );
        registry.register(
            "keyquorum_beacon_late_rounds",
            "Beacon rounds stored after their period was over",
            m.late.clone(),
        );
        registry.register(
            "keyquorum_beacon_partials",
            "Beacon partials received, by sender's committee position and result",
            m.partials.clone(),
        );
        registry.register_with_unit(
            "keyquorum_beacon_combine",
            "Time from the engine call that completed a beacon round to the round being stored (combine, verify, store)",
            Unit::Seconds,
            m.combine.clone(),
        );
        registry.register_with_unit(
            "keyquorum_beacon_round_latency",
            "Time from a beacon round's start to its storage on this node",
            Unit::Seconds,
            m.latency.clone(),
        );
        registry.register(
            "keyquorum_beacon_sync_requests",
            "Requests this node sent for beacon rounds it lacked, by what the answer gave",
            m.sync_requests.clone(),
        );
        registry.register(
            "keyquorum_beacon_sync_answers",
            "Requests for beacon rounds other nodes sent this node, by how they were answered",
            m.sync_answers.clone(),
        );
        registry.register(
            "keyquorum_beacon_synced_rounds",
            "Beacon rounds fetched from another node, verified and stored",
            m.synced.clone(),
        );
        m
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Phase durations from a quarter second to about 17 minutes, doubling.
fn phase_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.25, 2.0, 13))
}

fn one_label(key: &'static str, value: &str) -> Labels {
    vec![(key, value.to_string())]
}

/// Converts a counter increment; negative or non-finite values cannot be counted.
fn count(v: f64) -> Option<u64> {
    (v.is_finite() && v >= 0.0).then(|| v.round() as u64)
}

/// A gauge value in the registry's `i64`, saturating.
fn gauge_value(v: f64) -> i64 {
    if v.is_nan() { 0 } else { v as i64 }
}

impl Metrics {
    /// Every metric registered, all at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let counters: Vec<Counters> = COUNTERS
            .iter()
            .map(|(name, label, help)| {
                let family = Family::<Labels, Counter>::default();
                registry.register(*name, *help, family.clone());
                Counters {
                    name: format!("{name}_total"),
                    label,
                    family,
                }
            })
            .collect();
        let phase_duration =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(phase_histogram);
        registry.register_with_unit(
            "keyquorum_phase_duration",
            "Wall time of each contract phase as this node observed it",
            Unit::Seconds,
            phase_duration.clone(),
        );
        let view = Gauge::default();
        registry.register(VIEW, "The active view", view.clone());
        let chain_height = Gauge::default();
        registry.register(
            CHAIN_HEIGHT,
            "Last chain block processed",
            chain_height.clone(),
        );
        let chain_head = Gauge::default();
        registry.register(
            CHAIN_HEAD,
            "The chain's head as this node last read it",
            chain_head.clone(),
        );
        let evicted = Gauge::default();
        registry.register(
            EVICTED,
            "1 while the chain has this node off its candidate list after an eviction (never \
             selected until listed again), else 0",
            evicted.clone(),
        );
        let registration_refused = Gauge::default();
        registry.register(
            REGISTRATION_REFUSED,
            "1 while the chain refuses this node's registration: its candidate list is full \
             (EVM; the node registers as soon as a place frees), the account is registered \
             with another identity (EVM) or the account's balance is below the stake \
             (/status names which), else 0",
            registration_refused.clone(),
        );
        let stake_below_minimum = Gauge::default();
        registry.register(
            STAKE_BELOW_MINIMUM,
            "1 while this node's stake is below the chain's minimum (never listed, so never \
             selected; unregistered, its registration is not sent), else 0",
            stake_below_minimum.clone(),
        );
        let sends_pending = Gauge::default();
        registry.register(
            SENDS_PENDING,
            "This node's transactions still pending on the chain after their receipt wait (sent, \
             not mined, not sent again while pending; later ones wait behind their nonce)",
            sends_pending.clone(),
        );
        let send_fee_bumps = Gauge::default();
        registry.register(
            SEND_FEE_BUMPS,
            "Replacements with higher fees sent for this node's pending transactions (same \
             nonce; one is sent each time a transaction stays pending long enough, up to the \
             configured fee cap)",
            send_fee_bumps.clone(),
        );
        let chain_refused = Gauge::default();
        registry.register(
            CHAIN_REFUSED,
            "1 while this node refuses the chain it follows: another chain under it, or a \
             block that the node's own execution of the contract does not reproduce (it \
             follows nothing meanwhile)",
            chain_refused.clone(),
        );
        let chain_unreachable = Gauge::default();
        registry.register(
            CHAIN_UNREACHABLE,
            "1 while every read of the chain (the embedded chain's API or the EVM endpoint) has \
             failed for 10 s or more; 0 once one succeeds",
            chain_unreachable.clone(),
        );
        // Both results exist from the start, so a scraper sees the failure count at zero rather
        // than no series.
        for result in ["success", "failure"] {
            let c = &counters[CEREMONIES];
            let _ = c.family.get_or_create(&one_label(c.label, result));
        }
        for result in FAULT_PROOF_RESULTS {
            let c = &counters[FAULT_PROOFS];
            let _ = c.family.get_or_create(&one_label(c.label, result));
        }
        let beacon = BeaconMetrics::register(&mut registry);
        let sign = crate::sign::SignMetrics::register(&mut registry);
        Metrics {
            beacon,
            sign,
            registry,
            counters,
            phase_duration,
            view,
            chain_height,
            chain_head,
            evicted,
            registration_refused,
            stake_below_minimum,
            sends_pending,
            send_fee_bumps,
            chain_refused,
            chain_unreachable,
            kinds: Mutex::new(BTreeSet::new()),
        }
    }

    /// The labelled counter `name` (exposed name, `_total` included) with label `l`, if `l`
    /// is exactly that counter's one label.
    fn counter(&self, name: &str, l: &[(&str, &str)]) -> Option<(&Counters, Labels)> {
        let c = self.counters.iter().find(|c| c.name == name)?;
        match l {
            [(k, v)] if *k == c.label => Some((c, one_label(c.label, v))),
            _ => None,
        }
    }

    fn gauge(&self, name: &str, l: &[(&str, &str)]) -> Option<&Gauge> {
        if !l.is_empty() {
            return None;
        }
        match name {
            VIEW => Some(&self.view),
            CHAIN_HEIGHT => Some(&self.chain_height),
            CHAIN_HEAD => Some(&self.chain_head),
            EVICTED => Some(&self.evicted),
            REGISTRATION_REFUSED => Some(&self.registration_refused),
            STAKE_BELOW_MINIMUM => Some(&self.stake_below_minimum),
            SENDS_PENDING => Some(&self.sends_pending),
            SEND_FEE_BUMPS => Some(&self.send_fee_bumps),
            CHAIN_REFUSED => Some(&self.chain_refused),
            CHAIN_UNREACHABLE => Some(&self.chain_unreachable),
            _ => None,
        }
    }

    /// Adds `v` to a counter, named by its exposed name.
    pub fn add(&self, name: &str, l: &[(&str, &str)], v: f64) {
        match (self.counter(name, l), count(v)) {
            (Some((c, labels)), Some(v)) => {
                c.family.get_or_create(&labels).inc_by(v);
            }
            _ => unknown(name, l),
        }
    }

    /// Sets a gauge.
    pub fn set(&self, name: &str, l: &[(&str, &str)], v: f64) {
        match self.gauge(name, l) {
            Some(g) => {
                g.set(gauge_value(v));
            }
            None => unknown(name, l),
        }
    }

    fn note_kind(&self, kind: &str) {
        if let Ok(mut k) = self.kinds.lock()
            && !k.contains(kind)
        {
            k.insert(kind.to_string());
        }
    }

    fn inc(&self, index: usize, label: &str, v: u64) {
        let c = &self.counters[index];
        c.family.get_or_create(&one_label(c.label, label)).inc_by(v);
    }

    /// Counts one message of `bytes` bytes sent.
    pub fn sent(&self, kind: &str, bytes: usize) {
        self.note_kind(kind);
        self.inc(MESSAGES_SENT, kind, 1);
        self.inc(BYTES_SENT, kind, bytes as u64);
    }

    /// Counts one message of `bytes` bytes received.
    pub fn received(&self, kind: &str, bytes: usize) {
        self.note_kind(kind);
        self.inc(MESSAGES_RECEIVED, kind, 1);
        self.inc(BYTES_RECEIVED, kind, bytes as u64);
    }

    /// Records one observed phase duration.
    pub fn phase(&self, phase: &str, seconds: f64) {
        self.phase_duration
            .get_or_create(&one_label("phase", phase))
            .observe(seconds);
    }

    /// Counts a beacon partial from committee position `member` (`unknown` for a sender
    /// outside the committee) by what became of it.
    pub fn beacon_partial(&self, member: &str, result: &str) {
        self.beacon
            .partials
            .get_or_create(&vec![
                ("member", member.to_string()),
                ("result", result.to_string()),
            ])
            .inc();
    }

    /// Counts a stored beacon round.
    pub fn beacon_round(&self, late: bool, combine_seconds: f64, latency_seconds: f64) {
        self.beacon.rounds.inc();
        if late {
            self.beacon.late.inc();
        }
        self.beacon.combine.observe(combine_seconds);
        self.beacon.latency.observe(latency_seconds);
    }

    /// Counts a request for rounds by its result, and the rounds it stored.
    pub fn beacon_sync(&self, result: &str, stored: u64) {
        self.beacon
            .sync_requests
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
        self.beacon.synced.inc_by(stored);
    }

    /// Counts a round learnt from a member's answer to this node's partial (verified and
    /// stored, like the rounds a request fetches).
    pub fn beacon_round_from_answer(&self) {
        self.beacon.synced.inc();
    }

    /// Counts a request for rounds another node sent this node, by how it was answered.
    pub fn beacon_sync_answer(&self, result: &str) {
        self.beacon
            .sync_answers
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
    }

    /// Requests for rounds from other nodes answered with `result`.
    pub fn beacon_sync_answers(&self, result: &str) -> u64 {
        self.beacon
            .sync_answers
            .get(&vec![("result", result.to_string())])
            .map(|c| c.get())
            .unwrap_or(0)
    }

    /// Requests for rounds counted with `result`, and rounds stored from answers.
    pub fn beacon_syncs(&self, result: &str) -> (u64, u64) {
        let requests = self
            .beacon
            .sync_requests
            .get(&vec![("result", result.to_string())])
            .map(|c| c.get())
            .unwrap_or(0);
        (requests, self.beacon.synced.get())
    }

    /// Beacon partials counted for `member` with `result`.
    pub fn beacon_partials(&self, member: &str, result: &str) -> u64 {
        self.beacon
            .partials
            .get(&vec![
                ("member", member.to_string()),
                ("result", result.to_string()),
            ])
            .map(|c| c.get())
            .unwrap_or(0)
    }

    /// Beacon rounds stored, and how many of them late.
    pub fn beacon_rounds(&self) -> (u64, u64) {
        (self.beacon.rounds.get(), self.beacon.late.get())
    }

    /// Counts a fault.
    pub fn fault(&self, fault: &str) {
        self.inc(FAULTS, fault, 1);
    }

    /// Counts one of this node's transactions of `kind` mined and reverted.
    pub fn reverted(&self, kind: &str) {
        self.inc(REVERTED, kind, 1);
    }

    /// Counts a fraud proof this node held by what became of it (one of
    /// [`FAULT_PROOF_RESULTS`]).
    pub fn fault_proof(&self, result: &str) {
        debug_assert!(FAULT_PROOF_RESULTS.contains(&result), "{result}");
        self.inc(FAULT_PROOFS, result, 1);
    }

    /// A counter's or gauge's value, for tests and reports (0 for a series never touched).
    pub fn get(&self, name: &str, l: &[(&str, &str)]) -> f64 {
        if let Some((c, labels)) = self.counter(name, l) {
            return c.family.get(&labels).map(|c| c.get() as f64).unwrap_or(0.0);
        }
        if let Some(g) = self.gauge(name, l) {
            return g.get() as f64;
        }
        unknown(name, l);
        0.0
    }

    /// The traffic counters, typed.
    pub fn traffic(&self) -> Traffic {
        let kinds: Vec<String> = match self.kinds.lock() {
            Ok(k) => k.iter().cloned().collect(),
            Err(_) => Vec::new(),
        };
        let value = |index: usize, kind: &str| {
            let c = &self.counters[index];
            c.family
                .get(&one_label(c.label, kind))
                .map(|c| c.get())
                .unwrap_or(0)
        };
        let mut t = Traffic::default();
        for kind in kinds {
            let k = TrafficCounts {
                messages_sent: value(MESSAGES_SENT, &kind),
                bytes_sent: value(BYTES_SENT, &kind),
                messages_received: value(MESSAGES_RECEIVED, &kind),
                bytes_received: value(BYTES_RECEIVED, &kind),
            };
            t.total.messages_sent += k.messages_sent;
            t.total.bytes_sent += k.bytes_sent;
            t.total.messages_received += k.messages_received;
            t.total.bytes_received += k.bytes_received;
            t.by_kind.insert(kind, k);
        }
        t
    }

    /// The OpenMetrics text exposition (ends with `# EOF`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            // Writing to a String cannot fail; a failure would be an encoder bug.
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}

#[cold]
fn unknown(name: &str, l: &[(&str, &str)]) {
    debug_assert!(false, "no metric {name} with labels {l:?}");
    tracing::warn!(metric = name, labels = ?l, "no such metric; not recorded");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openmetrics_text() {
        let m = Metrics::new();
        m.sent("deal", 120);
        m.sent("deal", 120);
        m.received("ack", 90);
        m.phase("share", 1.5);
        m.fault("bad \"share\"");
        m.set("keyquorum_view", &[], 2.0);
        m.add("keyquorum_ceremonies_total", &[("result", "success")], 1.0);
        m.fault_proof("settled");
        let text = m.render();
        assert!(text.contains("keyquorum_messages_sent_total{kind=\"deal\"} 2\n"));
        assert!(text.contains("keyquorum_bytes_sent_total{kind=\"deal\"} 240\n"));
        assert!(text.contains("keyquorum_phase_duration_seconds_count{phase=\"share\"} 1\n"));
        assert!(
            text.contains(
                "keyquorum_phase_duration_seconds_bucket{le=\"2.0\",phase=\"share\"} 1\n"
            ) || text.contains(
                "keyquorum_phase_duration_seconds_bucket{phase=\"share\",le=\"2.0\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("keyquorum_faults_seen_total{fault=\"bad \\\"share\\\"\"} 1\n"));
        assert!(text.contains("\nkeyquorum_view 2\n"));
        assert!(text.contains("keyquorum_ceremonies_total{result=\"success\"} 1\n"));
        // Every fault proof result is exposed from the start, zero until counted.
        assert!(text.contains("keyquorum_fault_proofs_total{result=\"settled\"} 1\n"));
        assert!(text.contains("keyquorum_fault_proofs_total{result=\"proved\"} 0\n"));
        assert!(text.contains("keyquorum_fault_proofs_total{result=\"refused\"} 0\n"));
        assert!(text.contains("# TYPE keyquorum_phase_duration_seconds histogram\n"));
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(
            m.get("keyquorum_bytes_received_total", &[("kind", "ack")]),
            90.0
        );
        assert_eq!(m.get("keyquorum_view", &[]), 2.0);
    }

    #[test]
    fn traffic_sums_every_kind() {
        let m = Metrics::new();
        m.sent("deal", 100);
        m.sent("ack", 10);
        m.sent("ack", 10);
        m.received("deal", 7);
        let t = m.traffic();
        assert_eq!(t.total.messages_sent, 3);
        assert_eq!(t.total.bytes_sent, 120);
        assert_eq!(t.total.bytes_received, 7);
        assert_eq!(t.by_kind["ack"].bytes_sent, 20);
        assert_eq!(t.by_kind["deal"].messages_received, 1);
        // The JSON keeps the totals at the top level, as the demo's `--metrics-out` shows them.
        let j = serde_json::to_value(&t).unwrap();
        assert_eq!(j["bytes_sent"], 120);
        assert_eq!(j["by_kind"]["ack"]["messages_sent"], 2);
        assert_eq!(serde_json::from_value::<Traffic>(j).unwrap(), t);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "no metric")]
    fn an_undeclared_metric_is_a_programming_error() {
        Metrics::new().add("keyquorum_typo_total", &[("kind", "x")], 1.0);
    }
}
