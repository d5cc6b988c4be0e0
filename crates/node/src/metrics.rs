//! Prometheus metrics, rendered in the text exposition format at `/metrics`.
//!
//! A handful of labelled counters and gauges do not justify a metrics framework: this is a map
//! from (name, labels) to a value behind a mutex, updated a few hundred times per ceremony.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `keyquorum_messages_sent_total`, `keyquorum_bytes_sent_total` | counter | `kind` (deal, ack, pull, tx kinds) |
//! | `keyquorum_messages_received_total`, `keyquorum_bytes_received_total` | counter | `kind` |
//! | `keyquorum_phase_duration_seconds_sum`, `_count` | summary | `phase` |
//! | `keyquorum_faults_seen_total` | counter | `fault` |
//! | `keyquorum_view`, `keyquorum_chain_height` | gauge | |
//! | `keyquorum_ceremonies_total` | counter | `result` |
//! | `keyquorum_magic_block_mismatches_total` | counter | `what` (first field that differs) |

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

const HELP: &[(&str, &str, &str)] = &[
    (
        "keyquorum_messages_sent_total",
        "counter",
        "Messages delivered to peers or submitted to the chain, by kind.",
    ),
    (
        "keyquorum_bytes_sent_total",
        "counter",
        "Payload bytes delivered to peers or submitted to the chain, by kind.",
    ),
    (
        "keyquorum_messages_received_total",
        "counter",
        "Messages received from peers, by kind.",
    ),
    (
        "keyquorum_bytes_received_total",
        "counter",
        "Payload bytes received from peers, by kind.",
    ),
    (
        "keyquorum_phase_duration_seconds",
        "summary",
        "Wall time of each contract phase as this node observed it.",
    ),
    (
        "keyquorum_faults_seen_total",
        "counter",
        "Faults observed: exclusions recorded on chain, refused posts, bad shares and acks.",
    ),
    ("keyquorum_view", "gauge", "The active view."),
    (
        "keyquorum_chain_height",
        "gauge",
        "Last chain block processed.",
    ),
    (
        "keyquorum_ceremonies_total",
        "counter",
        "Ceremonies this node finished, by result.",
    ),
    (
        "keyquorum_magic_block_mismatches_total",
        "counter",
        "Magic blocks not signed because they differ from the one the node's own board defines.",
    ),
];

/// The node's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    values: Mutex<BTreeMap<(String, String), f64>>,
}

fn labels(l: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in l.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let v = v
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = write!(s, "{k}=\"{v}\"");
    }
    s
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `v` to a counter.
    pub fn add(&self, name: &str, l: &[(&str, &str)], v: f64) {
        if let Ok(mut m) = self.values.lock() {
            *m.entry((name.to_string(), labels(l))).or_insert(0.0) += v;
        }
    }

    /// Sets a gauge.
    pub fn set(&self, name: &str, l: &[(&str, &str)], v: f64) {
        if let Ok(mut m) = self.values.lock() {
            m.insert((name.to_string(), labels(l)), v);
        }
    }

    /// Counts one message of `bytes` bytes sent.
    pub fn sent(&self, kind: &str, bytes: usize) {
        self.add("keyquorum_messages_sent_total", &[("kind", kind)], 1.0);
        self.add(
            "keyquorum_bytes_sent_total",
            &[("kind", kind)],
            bytes as f64,
        );
    }

    /// Counts one message of `bytes` bytes received.
    pub fn received(&self, kind: &str, bytes: usize) {
        self.add("keyquorum_messages_received_total", &[("kind", kind)], 1.0);
        self.add(
            "keyquorum_bytes_received_total",
            &[("kind", kind)],
            bytes as f64,
        );
    }

    /// Records one observed phase duration.
    pub fn phase(&self, phase: &str, seconds: f64) {
        self.add(
            "keyquorum_phase_duration_seconds_sum",
            &[("phase", phase)],
            seconds,
        );
        self.add(
            "keyquorum_phase_duration_seconds_count",
            &[("phase", phase)],
            1.0,
        );
    }

    /// Counts a fault.
    pub fn fault(&self, fault: &str) {
        self.add("keyquorum_faults_seen_total", &[("fault", fault)], 1.0);
    }

    /// A value, for tests and reports.
    pub fn get(&self, name: &str, l: &[(&str, &str)]) -> f64 {
        self.values
            .lock()
            .ok()
            .and_then(|m| m.get(&(name.to_string(), labels(l))).copied())
            .unwrap_or(0.0)
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let values = match self.values.lock() {
            Ok(m) => m.clone(),
            Err(_) => return String::new(),
        };
        let mut out = String::new();
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for ((n, l), v) in &values {
                let family = n
                    .strip_suffix("_sum")
                    .or_else(|| n.strip_suffix("_count"))
                    .filter(|_| *kind == "summary")
                    .unwrap_or(n);
                if family != *name {
                    continue;
                }
                if l.is_empty() {
                    let _ = writeln!(out, "{n} {v}");
                } else {
                    let _ = writeln!(out, "{n}{{{l}}} {v}");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.sent("deal", 120);
        m.sent("deal", 120);
        m.received("ack", 90);
        m.phase("share", 1.5);
        m.fault("bad \"share\"");
        m.set("keyquorum_view", &[], 2.0);
        let text = m.render();
        assert!(text.contains("keyquorum_messages_sent_total{kind=\"deal\"} 2"));
        assert!(text.contains("keyquorum_bytes_sent_total{kind=\"deal\"} 240"));
        assert!(text.contains("keyquorum_phase_duration_seconds_count{phase=\"share\"} 1"));
        assert!(text.contains("keyquorum_faults_seen_total{fault=\"bad \\\"share\\\"\"} 1"));
        assert!(text.contains("\nkeyquorum_view 2\n"));
        assert!(text.contains("# TYPE keyquorum_phase_duration_seconds summary"));
        assert_eq!(
            m.get("keyquorum_bytes_received_total", &[("kind", "ack")]),
            90.0
        );
    }
}
