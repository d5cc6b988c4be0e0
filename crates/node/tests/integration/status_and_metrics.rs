//! What a node serves about itself: `/status` and `/metrics`.
//!
//! Four drivers run the first view change against the in-process contract. Then:
//! - every member's share index is the same number while the ceremony runs
//!   (`pending.share_index`), once the view is active (`share_index`), and in the chain's magic
//!   block (`index`, 1-based);
//! - a node's status server answers `/metrics` in the OpenMetrics text format, checked line by
//!   line by a strict reader below (families declared once, samples belonging to the family
//!   declared before them, histogram buckets cumulative, one `# EOF` at the end), with every
//!   metric docs/architecture.md lists, and `/status` carries the same traffic counters typed.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use common::Harness;
use keyquorum_contract::ContractConfig;
use keyquorum_contract::config::KeyMode;
use keyquorum_node::status::{self, Status, StatusHandle};

fn config() -> ContractConfig {
    // The contract's default key mode (resharing).
    common::small_network("status-and-metrics", 4, 3, KeyMode::Reshare)
}

#[test]
fn the_share_index_is_one_based_everywhere() {
    let mut h = Harness::new(config(), &[100, 99, 98, 97]);
    let mut pending: BTreeMap<usize, u64> = BTreeMap::new();
    let stop = h.height + 60;
    while h.contract.state().current_view < 1 {
        assert!(h.height < stop, "view 1 not activated");
        h.step();
        for (i, s) in h.status.iter().enumerate() {
            if let Some(p) = &s.lock().unwrap().pending
                && let Some(x) = p.share_index
            {
                pending.insert(i, x);
            }
        }
    }
    h.step();
    let block = h
        .contract
        .state()
        .views
        .get(&1)
        .expect("view 1 is recorded")
        .magic_block
        .block
        .clone();
    assert_eq!(block.members.len(), 4);
    for m in &block.members {
        let i = h.index_of(&m.identity.0);
        let s = h.status[i].lock().unwrap().clone();
        assert_eq!(s.view, 1);
        assert_eq!(s.share_index, Some(m.index), "node {i} once active");
        assert_eq!(s.threshold, Some(block.t), "node {i}");
        assert_eq!(pending.get(&i), Some(&m.index), "node {i} while pending");
    }
    let mut indices: Vec<u64> = block.members.iter().map(|m| m.index).collect();
    indices.sort();
    assert_eq!(indices, [1, 2, 3, 4]);
}

/// One family of an exposition: its type, unit and samples `(name, labels, value)`.
#[derive(Debug, Default)]
struct MetricFamily {
    kind: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

fn valid_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_' || x == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

/// Parses `{k="v",...}` (OpenMetrics escapes `\\`, `\"`, `\n`); returns the labels and the rest.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let Some(mut rest) = s.strip_prefix('{') else {
        return Ok((labels, s));
    };
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let (key, r) = rest.split_once("=\"").ok_or("label without =\"")?;
        if !valid_name(key) || key.starts_with("__") {
            return Err(format!("bad label name {key:?}"));
        }
        let mut value = String::new();
        let mut chars = r.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (_, '\n') => return Err("newline in label value".into()),
                (_, c) => value.push(c),
            }
        };
        if labels.insert(key.to_string(), value).is_some() {
            return Err(format!("label {key} twice"));
        }
        rest = &r[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("labels not separated by ','".into());
        }
    }
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad value {s:?}")),
    }
}

/// The sample names a family of `kind` may have.
fn sample_names(family: &str, kind: &str) -> Vec<String> {
    match kind {
        "counter" => vec![format!("{family}_total"), format!("{family}_created")],
        "gauge" | "unknown" => vec![family.to_string()],
        "histogram" => ["_bucket", "_sum", "_count", "_created"]
            .iter()
            .map(|s| format!("{family}{s}"))
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads an OpenMetrics text exposition strictly, by the rules of the OpenMetrics 1.0 text
/// format that a scraper relies on.
fn parse_openmetrics(text: &str) -> Result<BTreeMap<String, MetricFamily>, String> {
    let body = text
        .strip_suffix("# EOF\n")
        .ok_or("does not end with \"# EOF\\n\"")?;
    let mut families: BTreeMap<String, MetricFamily> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut closed: BTreeSet<String> = BTreeSet::new();
    for (n, line) in body.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.is_empty() {
            return Err(at("empty line".into()));
        }
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (what, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let rest = parts.next().unwrap_or("");
            if !valid_name(name) {
                return Err(at(format!("bad metric name {name:?}")));
            }
            if current.as_deref() != Some(name) {
                if let Some(c) = current.take() {
                    closed.insert(c);
                }
                if closed.contains(name) || families.contains_key(name) {
                    return Err(at(format!("family {name} is not contiguous")));
                }
                families.insert(name.to_string(), MetricFamily::default());
                current = Some(name.to_string());
            }
            let f = families.get_mut(name).expect("inserted above");
            match what {
                "TYPE" => {
                    if !f.kind.is_empty() || !f.samples.is_empty() {
                        return Err(at("TYPE after samples or twice".into()));
                    }
                    let known = [
                        "counter",
                        "gauge",
                        "histogram",
                        "gaugehistogram",
                        "summary",
                        "info",
                        "stateset",
                        "unknown",
                    ];
                    if !known.contains(&rest) {
                        return Err(at(format!("unknown type {rest:?}")));
                    }
                    f.kind = rest.to_string();
                }
                "HELP" => {}
                "UNIT" => {
                    if !name.ends_with(&format!("_{rest}")) {
                        return Err(at("the name does not end with its unit".into()));
                    }
                }
                _ => return Err(at(format!("unknown descriptor {what:?}"))),
            }
            continue;
        }
        if line.starts_with('#') {
            return Err(at("comment other than HELP, TYPE, UNIT, EOF".into()));
        }
        let family = current
            .clone()
            .ok_or_else(|| at("sample before any family".into()))?;
        let f = families.get_mut(&family).expect("current exists");
        let end = line
            .find(['{', ' '])
            .ok_or_else(|| at("sample without value".into()))?;
        let name = &line[..end];
        if !sample_names(&family, &f.kind).iter().any(|s| s == name) {
            return Err(at(format!(
                "sample {name} does not belong to {} family {family}",
                f.kind
            )));
        }
        let (labels, rest) = parse_labels(&line[end..]).map_err(at)?;
        let value = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("no space before the value".into()))?;
        // An optional timestamp may follow; this exposition has none.
        let value = parse_value(value).map_err(at)?;
        if f.kind == "counter" && (value.is_nan() || value < 0.0) {
            return Err(at("negative counter".into()));
        }
        f.samples.push((name.to_string(), labels, value));
    }
    for (name, f) in &families {
        if f.kind.is_empty() {
            return Err(format!("family {name} has no TYPE"));
        }
        if f.kind == "histogram" {
            check_histogram(name, f)?;
        }
    }
    Ok(families)
}

/// Buckets of each series are cumulative, end at `+Inf`, and `+Inf` equals `_count`.
fn check_histogram(name: &str, f: &MetricFamily) -> Result<(), String> {
    // Per series (labels without `le`): its buckets (le, count) and its `_count`.
    type Series = (Vec<(f64, f64)>, Option<f64>);
    let mut series: BTreeMap<BTreeMap<String, String>, Series> = BTreeMap::new();
    for (sample, labels, v) in &f.samples {
        let mut key = labels.clone();
        if sample.ends_with("_bucket") {
            let le = key
                .remove("le")
                .ok_or(format!("{name}: bucket without le"))?;
            let le = parse_value(&le)?;
            series.entry(key).or_default().0.push((le, *v));
        } else if sample.ends_with("_count") {
            series.entry(key).or_default().1 = Some(*v);
        }
    }
    for (labels, (buckets, count)) in series {
        let ordered = buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1);
        let last = buckets.last().copied();
        if !ordered || last.map(|b| b.0) != Some(f64::INFINITY) || last.map(|b| b.1) != count {
            return Err(format!(
                "{name}{labels:?}: buckets {buckets:?}, count {count:?}"
            ));
        }
    }
    Ok(())
}

/// The metric names docs/architecture.md lists in its "Metrics" section.
fn documented_metrics() -> Vec<String> {
    let doc = include_str!("../../../../docs/architecture.md");
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Metrics"))
        .expect("docs/architecture.md has a Metrics section");
    let mut names: Vec<String> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with("keyquorum_") && valid_name(s))
        .map(str::to_string)
        .collect();
    names.dedup();
    names
}

#[test]
fn metrics_are_valid_openmetrics_with_every_documented_metric() {
    let mut h = Harness::new(config(), &[100, 99, 98, 97]);
    h.run_until(60, |h| h.contract.state().current_view == 1);
    h.step();
    // Traffic is counted by the runtime around the driver; count some as it would.
    let metrics = h.metrics[0].clone();
    metrics.sent("deal", 300);
    metrics.received("ack", 40);
    // And a transaction mined and reverted, as on an EVM chain (the family shows once a kind
    // has a count).
    metrics.reverted("activate");
    metrics.fault("label \"with\" quotes\\and\nnewline");
    // A refused magic block is the driver's too (magic_block_checks.rs); none here.
    metrics.add(
        "keyquorum_magic_block_mismatches_total",
        &[("what", "members")],
        1.0,
    );
    // The beacon's are the runtime's (crates/node/src/beacon/tests.rs exercises them).
    metrics.beacon_partial("2", "bad");
    metrics.beacon_round(false, 0.004, 0.09);
    metrics.beacon_sync("rounds", 3);
    metrics.beacon_sync_answer("served");
    // On-demand signing's too (crates/node/src/sign/tests.rs exercises them).
    metrics.sign.outcome(None);
    metrics.sign.outcome(Some("unauthorized"));
    metrics.sign.partial(1, "invalid");
    metrics.sign.outcome_member("signed");
    metrics.sign.frost_attempt("culprits");
    metrics.sign.frost_culprit(3, "invalid_share");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let handle = StatusHandle {
        status: Arc::new(Mutex::new(h.status[0].lock().unwrap().clone())),
        metrics: metrics.clone(),
        beacon: Default::default(),
        sign: keyquorum_node::sign::SignService::disabled(metrics.clone()),
    };
    let (addr, server) = rt
        .block_on(status::serve("127.0.0.1:0".parse().unwrap(), handle))
        .unwrap();
    let served = std::thread::spawn(move || {
        (
            common::http_get(addr, "/metrics"),
            common::http_get(addr, "/status"),
        )
    });
    let ((content_type, text), (_, status_json)) = rt.block_on(async {
        loop {
            if served.is_finished() {
                break served.join().unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    });
    rt.block_on(server.stop(std::time::Duration::from_secs(1)));

    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{content_type}"
    );
    let families = parse_openmetrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let documented = documented_metrics();
    assert!(documented.len() >= 10, "{documented:?}");
    for name in &documented {
        let found = families.contains_key(name)
            || families
                .iter()
                .any(|(f, m)| sample_names(f, &m.kind).contains(name));
        assert!(found, "{name} is documented but not served:\n{text}");
    }
    for name in families.keys() {
        assert!(
            documented.iter().any(|d| d.starts_with(name.as_str())),
            "{name} is served but not documented"
        );
    }
    // The values are the driver's: one successful ceremony, view 1, a height, phases timed.
    let value = |sample: &str, labels: &[(&str, &str)]| {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        families
            .values()
            .flat_map(|f| &f.samples)
            .find(|(n, l, _)| n == sample && *l == want)
            .map(|s| s.2)
    };
    assert_eq!(
        value("keyquorum_ceremonies_total", &[("result", "success")]),
        Some(1.0)
    );
    assert_eq!(
        value("keyquorum_ceremonies_total", &[("result", "failure")]),
        Some(0.0)
    );
    assert_eq!(value("keyquorum_view", &[]), Some(1.0));
    assert!(value("keyquorum_chain_height", &[]).unwrap() >= h.height as f64 - 1.0);
    assert!(
        value(
            "keyquorum_phase_duration_seconds_count",
            &[("phase", "share")]
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(
        value("keyquorum_bytes_sent_total", &[("kind", "deal")]),
        Some(300.0)
    );
    assert_eq!(
        value(
            "keyquorum_faults_seen_total",
            &[("fault", "label \"with\" quotes\\and\nnewline")]
        ),
        Some(1.0)
    );

    // `/status` carries the same traffic, typed.
    let status: Status = serde_json::from_str(&status_json).unwrap();
    assert_eq!(status.traffic, metrics.traffic());
    assert_eq!(status.traffic.total.bytes_sent, 300);
    assert_eq!(status.traffic.by_kind["ack"].bytes_received, 40);
    assert_eq!(status.share_index, h.status[0].lock().unwrap().share_index);
}

#[test]
fn the_strict_reader_refuses_broken_expositions() {
    let good = "# TYPE a counter\na_total 1\n# EOF\n";
    assert!(parse_openmetrics(good).is_ok());
    for bad in [
        "# TYPE a counter\na_total 1\n",               // no EOF
        "# TYPE a counter\na 1\n# EOF\n",              // counter without _total
        "# TYPE a counter\na_total{k=\"v} 1\n# EOF\n", // unterminated label
        "# TYPE a counter\na_total -1\n# EOF\n",       // negative counter
        "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\n# EOF\n", // split family
        "a 1\n# EOF\n",                                // no TYPE
        "# TYPE h histogram\nh_bucket{le=\"1.0\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n# EOF\n",
        "# TYPE a gauge\na 1\n\n# EOF\n", // empty line
        "# TYPE a gauge\na one\n# EOF\n", // bad value
    ] {
        assert!(parse_openmetrics(bad).is_err(), "{bad:?}");
    }
}
