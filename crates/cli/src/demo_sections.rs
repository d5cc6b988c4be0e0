//! `keyquorum demo --mode sections`: a network of sections without a chain (seed 002), grown
//! from the genesis node to a split, with one elder leaving and one candidate crashing during a
//! DKG for good.
//!
//! The network is the sections simulator's ([`keyquorum_sim::sections`]), in this process:
//! every node runs the sections coordinator the node runtime runs (elder selection, starts
//! signed by a supermajority of the current elders, the DKG agreed by votes, failure
//! agreements, handovers signed by the new key and then the old elders, splits), its messages
//! cross the wire encoding with the network's delays and losses, and every step is checked
//! against the simulator's invariants (no honest node holds shares of two keys for one session,
//! every key chain verifies from the genesis key, ...). `keyquorum sections node` runs the same
//! coordinator as a process over libp2p.
//!
//! The demo runs the scenario for its seed and moves on to the next seed until one run shows
//! every step: a split, an elder leaving, and the failure agreement that excludes the crashed
//! candidate (the network's randomness, names and ages included, decides which join splits and
//! which DKG the crash hits).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use keyquorum_sections::elders::{ELDER_COUNT, MIN_SECTION_SIZE};
use keyquorum_sections::keys::{PublicKey, key_bytes};
use keyquorum_sections::{KeyChain, Name, Prefix};
use keyquorum_sim::sections::{
    SectionEvent, SectionFault, SectionsConfig, SectionsReport, run_sections,
};

use crate::demo::DemoArgs;
use crate::{CliError, OutputFormat};

/// Seeds tried from `--seed` before the demo gives up.
const SEEDS_TRIED: u64 = 40;

/// Runs the sections demo (see the module docs).
pub fn run(args: &DemoArgs) -> Result<(), CliError> {
    let first = args.seed.unwrap_or(1);
    let json = args.format == OutputFormat::Json;
    let say = |line: String| {
        if json {
            eprintln!("{line}");
        } else {
            out!("{line}");
        }
    };
    let base = scenario(first);
    say(format!(
        "keyquorum demo --mode sections: {} elders a section, halves of at least {} members; {} nodes join the genesis node one by one, one elder leaves, one candidate crashes during a DKG and stays down",
        base.elder_count, base.min_section_size, base.joins
    ));
    say("  (the sections simulator's network in this process: every node runs the sections coordinator over the wire encoding; `keyquorum sections node` runs it over libp2p)".into());
    let mut shown = None;
    for seed in first..first.saturating_add(SEEDS_TRIED) {
        let report = run_sections(&scenario(seed));
        if let Some(v) = &report.violation {
            return Err(CliError::failed(format!(
                "seed {seed}: an invariant broke: {v}"
            )));
        }
        match missing(&report) {
            None => {
                shown = Some(report);
                break;
            }
            Some(what) => say(format!("seed {seed}: {what}; trying the next seed")),
        }
    }
    let Some(report) = shown else {
        return Err(CliError::failed(format!(
            "no seed from {first} to {} showed every step; try another --seed",
            first.saturating_add(SEEDS_TRIED - 1)
        )));
    };
    let genesis = report
        .genesis_key
        .ok_or_else(|| CliError::failed("the run reported no genesis key"))?;
    for s in &report.final_sections {
        s.chain
            .verify_from(&genesis)
            .map_err(|e| CliError::failed(format!("a key chain does not verify: {e}")))?;
    }
    if json {
        out!("{}", json_summary(&report, &genesis));
    } else {
        out_text!("{}", text(&report, &genesis));
    }
    std::fs::write(&args.report, html(&report, &genesis))
        .map_err(|e| CliError::failed(format!("{}: {e}", args.report.display())))?;
    if !json {
        out!("report written to {}", args.report.display());
    }
    Ok(())
}

/// The scenario for `seed`: the protocol's section sizes, joins enough for most seeds to
/// split, one elder leaving and one faulty joiner that crashes during a DKG it is a candidate
/// of and stays down.
fn scenario(seed: u64) -> SectionsConfig {
    let mut cfg = SectionsConfig::sized(seed, ELDER_COUNT, MIN_SECTION_SIZE);
    cfg.leaves = 1;
    cfg.elders_leave = true;
    cfg.faulty = 1;
    cfg.faults = vec![SectionFault::Silent];
    cfg
}

/// What a run lacks of the scenario, if anything.
fn missing(report: &SectionsReport) -> Option<&'static str> {
    if report.splits == 0 || report.final_sections.len() < 2 {
        return Some("no split");
    }
    if !report.departures.iter().any(|d| d.elder) {
        return Some("no elder left");
    }
    if crash_agreement(report).is_none() {
        return Some("the crashed node was in no DKG that failed");
    }
    None
}

/// The first failure agreement that excluded the crashed node.
fn crash_agreement(report: &SectionsReport) -> Option<&keyquorum_sim::sections::AgreedFailure> {
    let crashed: Vec<Name> = report.faulty_nodes.iter().map(|(n, _)| *n).collect();
    report
        .agreements
        .iter()
        .find(|a| a.excluded.iter().any(|n| crashed.contains(n)))
}

/// A prefix as its bits, `(root)` for the empty one.
fn prefix_bits(prefix: &Prefix) -> String {
    (0..prefix.bit_count())
        .map(|i| if prefix.bit(i) == 1 { '1' } else { '0' })
        .collect()
}

fn short(name: &Name) -> String {
    hex::encode(&name.0[..4])
}

fn chain_json(chain: &KeyChain) -> serde_json::Value {
    serde_json::to_value(chain).unwrap_or(serde_json::Value::Null)
}

/// The text summary of a run.
fn text(report: &SectionsReport, genesis: &keyquorum_sections::keys::PublicKey) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "seed {}: {} DKG sessions, {} handovers, {} split, {} restart after a failure agreement; every invariant held",
        report.seed, report.sessions, report.handovers, report.splits, report.restarts
    );
    let _ = writeln!(out, "genesis key {}", hex::encode(key_bytes(genesis)));
    for event in &report.timeline {
        let _ = writeln!(out, "  {}", event_line(event));
    }
    for (parent, children) in splits(report) {
        let _ = writeln!(
            out,
            "split: key {}… signed the keys of both halves, {}",
            &hex::encode(key_bytes(&parent))[..16],
            children
                .iter()
                .map(|(prefix, key)| format!(
                    "section {} ({}…)",
                    display_prefix(prefix),
                    &hex::encode(key_bytes(key))[..16]
                ))
                .collect::<Vec<_>>()
                .join(" and ")
        );
    }
    for s in &report.final_sections {
        let _ = writeln!(
            out,
            "section {}: {} elders {}",
            display_prefix(&s.prefix),
            s.elders.len(),
            s.elders.iter().map(short).collect::<Vec<_>>().join(" ")
        );
        let _ = writeln!(
            out,
            "  key chain of {} keys, verified from the genesis key (each key signed by its parent):",
            s.chain.key_count()
        );
        for link in s.chain.links() {
            let _ = writeln!(
                out,
                "    {}… signed by {}…",
                &hex::encode(key_bytes(&link.key))[..16],
                &hex::encode(key_bytes(&link.parent_key))[..16]
            );
        }
    }
    out
}

/// The JSON summary of a run.
fn json_summary(report: &SectionsReport, genesis: &keyquorum_sections::keys::PublicKey) -> String {
    let sections: Vec<serde_json::Value> = report
        .final_sections
        .iter()
        .map(|s| {
            serde_json::json!({
                "prefix": prefix_bits(&s.prefix),
                "elders": s.elders.iter().map(|n| hex::encode(n.0)).collect::<Vec<_>>(),
                "key_chain": chain_json(&s.chain),
            })
        })
        .collect();
    let agreements: Vec<serde_json::Value> = report
        .agreements
        .iter()
        .map(|a| {
            serde_json::json!({
                "prefix": prefix_bits(&a.prefix),
                "generation": a.generation,
                "excluded": a.excluded.iter().map(|n| hex::encode(n.0)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let departures: Vec<serde_json::Value> = report
        .departures
        .iter()
        .map(|d| serde_json::json!({"name": hex::encode(d.name.0), "elder": d.elder}))
        .collect();
    let timeline: Vec<serde_json::Value> = report.timeline.iter().map(event_json).collect();
    serde_json::json!({
        "seed": report.seed,
        "timeline": timeline,
        "genesis_key": hex::encode(key_bytes(genesis)),
        "sections": sections,
        "failure_agreements": agreements,
        "departures": departures,
        "crashed": report.faulty_nodes.iter().map(|(n, _)| hex::encode(n.0)).collect::<Vec<_>>(),
        "sessions": report.sessions,
        "handovers": report.handovers,
        "splits": report.splits,
        "restarts": report.restarts,
    })
    .to_string()
}

/// The HTML report of a run.
fn html(report: &SectionsReport, genesis: &keyquorum_sections::keys::PublicKey) -> String {
    let mut h = String::from(
        "<!doctype html><meta charset=\"utf-8\"><title>keyquorum sections report</title><style>body{font:14px system-ui,sans-serif;margin:2em}code{font-size:12px}td,th{padding:2px 8px;text-align:left}</style>",
    );
    let _ = write!(
        h,
        "<h1>keyquorum sections report (seed {})</h1><p>{} DKG sessions, {} handovers, {} split, {} restart after a failure agreement; every invariant held. Genesis key <code>{}</code>.</p>",
        report.seed,
        report.sessions,
        report.handovers,
        report.splits,
        report.restarts,
        hex::encode(key_bytes(genesis))
    );
    h.push_str("<h2>Failure agreements</h2><ul>");
    for a in &report.agreements {
        let names: Vec<String> = a.excluded.iter().map(|n| hex::encode(n.0)).collect();
        let _ = write!(
            h,
            "<li>section {} generation {}: excluded <code>{}</code></li>",
            display_prefix(&a.prefix),
            a.generation,
            names.join(" ")
        );
    }
    h.push_str("</ul>");
    for s in &report.final_sections {
        let _ = write!(
            h,
            "<h2>Section {}</h2><p>Elders: <code>{}</code></p><table><tr><th>key</th><th>parent key</th></tr>",
            display_prefix(&s.prefix),
            s.elders
                .iter()
                .map(|n| hex::encode(n.0))
                .collect::<Vec<_>>()
                .join(" ")
        );
        for link in s.chain.links() {
            let _ = write!(
                h,
                "<tr><td><code>{}</code></td><td><code>{}</code></td></tr>",
                hex::encode(key_bytes(&link.key)),
                hex::encode(key_bytes(&link.parent_key))
            );
        }
        h.push_str("</table>");
    }
    h
}

/// One step of the timeline in the JSON output.
fn event_json(event: &SectionEvent) -> serde_json::Value {
    let hex_key = |k: &PublicKey| hex::encode(key_bytes(k));
    match event {
        SectionEvent::Joined { name, fault } => serde_json::json!({
            "event": "joined",
            "name": hex::encode(name.0),
            "faulty": fault.is_some(),
        }),
        SectionEvent::Left(d) => serde_json::json!({
            "event": "left",
            "name": hex::encode(d.name.0),
            "elder": d.elder,
        }),
        SectionEvent::HandedOver {
            prefix,
            parent_key,
            key,
            elders,
        } => serde_json::json!({
            "event": "handed_over",
            "prefix": prefix_bits(prefix),
            "key": hex_key(key),
            "parent_key": hex_key(parent_key),
            "elders": elders,
        }),
        SectionEvent::FailureAgreed(a) => serde_json::json!({
            "event": "failure_agreed",
            "prefix": prefix_bits(&a.prefix),
            "generation": a.generation,
            "excluded": a.excluded.iter().map(|n| hex::encode(n.0)).collect::<Vec<_>>(),
        }),
    }
}

/// One line of the timeline.
fn event_line(event: &SectionEvent) -> String {
    let key = |k: &PublicKey| format!("{}…", &hex::encode(key_bytes(k))[..16]);
    match event {
        SectionEvent::Joined { name, fault } => format!(
            "node {} joins{}",
            short(name),
            match fault {
                Some(_) => " (it will crash during a DKG and stay down)",
                None => "",
            }
        ),
        SectionEvent::Left(d) => format!(
            "{} {} leaves",
            if d.elder { "elder" } else { "member" },
            short(&d.name)
        ),
        SectionEvent::HandedOver {
            prefix,
            parent_key,
            key: new_key,
            elders,
        } => format!(
            "section {} handed over to {elders} elders: key {} signed by {}",
            display_prefix(prefix),
            key(new_key),
            key(parent_key)
        ),
        SectionEvent::FailureAgreed(a) => {
            let names: Vec<String> = a.excluded.iter().map(short).collect();
            format!(
                "failure agreement in section {} (generation {}): {} did not take part in the DKG; it restarts without {}",
                display_prefix(&a.prefix),
                a.generation,
                names.join(" "),
                if names.len() == 1 { "it" } else { "them" }
            )
        }
    }
}

/// Keys that signed the first keys of two different sections' chains: the splits, each with
/// its children's prefixes and keys.
fn splits(report: &SectionsReport) -> Vec<(PublicKey, Vec<(Prefix, PublicKey)>)> {
    /// A key and the keys it signed (by their bytes), each with the first section holding it.
    type Signed = (PublicKey, BTreeMap<[u8; 48], (Prefix, PublicKey)>);
    let mut children: BTreeMap<[u8; 48], Signed> = BTreeMap::new();
    for s in &report.final_sections {
        for link in s.chain.links() {
            children
                .entry(key_bytes(&link.parent_key))
                .or_insert_with(|| (link.parent_key, BTreeMap::new()))
                .1
                .entry(key_bytes(&link.key))
                .or_insert((s.prefix, link.key));
        }
    }
    children
        .into_values()
        .filter(|(_, c)| c.len() > 1)
        .map(|(parent, c)| (parent, c.into_values().collect()))
        .collect()
}

/// A prefix for a person: its bits, or `(root)`.
fn display_prefix(prefix: &Prefix) -> String {
    let bits = prefix_bits(prefix);
    if bits.is_empty() {
        "(root)".into()
    } else {
        bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_print_as_their_bits() {
        let root = Prefix::ROOT;
        assert_eq!(prefix_bits(&root), "");
        assert_eq!(display_prefix(&root), "(root)");
        let one = root.child(1).unwrap();
        assert_eq!(prefix_bits(&one), "1");
        assert_eq!(prefix_bits(&one.child(0).unwrap()), "10");
    }
}
