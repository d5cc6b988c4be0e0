//! The complaint variant end to end over loopback with real processes: `keyquorum chain` with a
//! contract configured `variant = "complaint"`, and `keyquorum node`s that take the variant from
//! the chain's ceremony spec (they have no flag for it), set their verifiable-encryption keys on
//! chain, deal point to point over libp2p, and complete view 1 with a group key that verifies
//! the view's magic block. Then the same with a dealer that sends one player a bad pair: it is
//! excluded and slashed for `bad_deal`, with its own signed deal as the evidence.

use crate::common;

use std::time::Duration;

use common::{NodeSpec, contract_status, new_key, start_chain, start_node, wait_for};
use keyquorum_contract::hex::Hex;
use keyquorum_contract::query::{ActiveView, ViewAnswer};
use keyquorum_contract::state::EvidenceRecord;
use keyquorum_contract::{SignedMagicBlock, SlashingRecord, verify_magic_block_chain};
use keyquorum_devchain::Client;
use keyquorum_node::status::Status as NodeStatus;

fn contract(chain_id: &str, max_size: usize) -> String {
    format!(
        r#"
chain_id = "{chain_id}"
first_view_change = 40
view_length = 1000
retry_delay = 5
max_ceremonies_per_view = 3
key_mode = "reshare"
key_mode_overrides = []
[committee]
max_size = {max_size}
min_size = 4
threshold = {{ count = 3 }}
quorum = {{ percent = 75 }}
keep_previous_percent = 70
min_stake = 1
[phases]
contribute = 20
share = 20
publish = 20
wait = 12
[slashing]
misbehaviour_percent = 10
absence_percent = 0
[dkg]
variant = "complaint"
"#
    )
}

async fn get<T: serde::de::DeserializeOwned>(port: u16, path: &str) -> Option<T> {
    Client::new(&format!("http://127.0.0.1:{port}"))
        .ok()?
        .with_timeout(Duration::from_secs(5))
        .get(path)
        .await
        .ok()
}

/// The variants named by the chain's `committee_selected` events so far.
async fn selected_variants(port: u16) -> Vec<String> {
    let page: serde_json::Value = get(port, "/events?from=1").await.unwrap();
    let mut out = Vec::new();
    let mut stack = vec![&page];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Object(m) => {
                if m.get("event").and_then(|e| e.as_str()) == Some("committee_selected") {
                    let variant = m["spec"]
                        .get("variant")
                        .and_then(|v| v.as_str())
                        .unwrap_or("ack-reveal");
                    out.push(variant.to_string());
                }
                stack.extend(m.values());
            }
            serde_json::Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    out
}

/// Runs `nodes.len()` node processes (node `faulty` with `--fault bad-share`, if given) until
/// view 1 is active; returns it with its signed magic block and the slashing records.
async fn run(
    chain_id: &str,
    count: usize,
    faulty: Option<usize>,
) -> (
    Vec<NodeSpec>,
    ActiveView,
    SignedMagicBlock,
    Vec<SlashingRecord>,
    u16,
) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _logs = crate::common::LogsOnFailure(dir);
    std::fs::write(dir.join("pass"), "integration-test-passphrase\n").unwrap();
    let nodes: Vec<NodeSpec> = (0..count).map(|i| new_key(dir, i)).collect();
    let (_chain, chain_port) = start_chain(dir, &contract(chain_id, count), &nodes);
    let _procs: Vec<_> = (0..count)
        .map(|i| {
            let fault = (Some(i) == faulty).then_some("bad-share");
            start_node(dir, chain_port, &nodes, i, fault)
        })
        .collect();
    wait_for("view 1", Duration::from_secs(150), async || {
        let s = contract_status(chain_port).await?;
        (s.view >= 1).then_some(())
    })
    .await;
    let view = match get(chain_port, "/views/1").await {
        Some(ViewAnswer::ActiveOrPast(v)) => v,
        other => panic!("view 1 is not active: {other:?}"),
    };
    let block: SignedMagicBlock = get(chain_port, "/views/1/magic-block").await.unwrap();
    let records: Vec<SlashingRecord> = get(chain_port, "/query/slashings").await.unwrap();
    let variants = selected_variants(chain_port).await;
    assert!(!variants.is_empty());
    assert!(variants.iter().all(|v| v == "complaint"), "{variants:?}");
    // Every member agrees on the group key and knows its index.
    for m in &view.committee {
        let i = nodes
            .iter()
            .position(|n| n.identity == hex::encode(m.identity.0))
            .unwrap();
        let s = wait_for("node status", Duration::from_secs(20), async || {
            let s: NodeStatus = get(nodes[i].status, "/status").await?;
            (s.view >= 1).then_some(s)
        })
        .await;
        assert_eq!(s.group_key, Some(hex::encode(view.group_key.0)), "node {i}");
        assert_eq!(s.share_index, Some(m.index), "node {i}");
    }
    (nodes, view, block, records, chain_port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_complete_a_complaint_variant_view_change() {
    let _network = crate::common::network_slot().await;
    let (_nodes, view, block, records, _) = run("complaint-processes", 4, None).await;
    assert_eq!(view.committee.len(), 4);
    assert!(records.is_empty(), "{records:?}");
    assert_eq!(block.block.group_key, view.group_key);
    verify_magic_block_chain(&view.group_key.0, &[block]).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complaint_variant_dealer_with_a_bad_pair_is_excluded_and_slashed() {
    let _network = crate::common::network_slot().await;
    const FAULTY: usize = 4;
    let (nodes, view, block, records, _) = run("complaint-fault-processes", 5, Some(FAULTY)).await;
    let faulty: Hex<96> = serde_json::from_value(nodes[FAULTY].identity.clone().into()).unwrap();
    assert_eq!(view.committee.len(), 4);
    assert!(view.committee.iter().all(|m| m.identity != faulty));
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(
        (r.identity, r.fault.as_str(), r.view),
        (faulty, "bad_deal", 1)
    );
    assert!(r.misbehaviour && r.amount > 0);
    // The evidence is one signed post: the complainer's report, which carries the dealer's
    // signed commitment hash and signed ciphertext (the in-process test checks it with the
    // evidence verifier).
    assert!(
        matches!(&r.evidence, EvidenceRecord::SignedPosts { posts } if posts.len() == 1),
        "{:?}",
        r.evidence
    );
    verify_magic_block_chain(&view.group_key.0, &[block]).unwrap();
}
