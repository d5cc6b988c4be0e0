//! End to end over loopback with real processes: `keyquorum chain` and five `keyquorum node`s.
//! One node is Byzantine (it equivocates as a dealer), one is killed with SIGKILL in the middle of
//! the first ceremony and restarted; together they complete a fresh view change and then a
//! resharing view change, agree on the group key, and the chain of magic blocks verifies.

use crate::common;

use std::time::Duration;

use common::{Proc, Testnet, contract_status, wait_for};
use keyquorum_contract::hex::Hex;
use keyquorum_contract::query::{ActiveView, ViewAnswer};
use keyquorum_contract::{
    KeyMode, SignedMagicBlock, SlashingRecord, ViewChangePhase, verify_magic_block_chain,
};
use keyquorum_devchain::Client;
use keyquorum_node::status::Status as NodeStatus;

const NODES: usize = 5;
const BYZANTINE: usize = 4;
const CRASHED: usize = 2;

/// The fault node `i` runs with.
fn fault(i: usize) -> Option<&'static str> {
    (i == BYZANTINE).then_some("equivocate")
}

const CONTRACT: &str = r#"
chain_id = "node-processes-test"
first_view_change = 40
view_length = 2
retry_delay = 5
max_ceremonies_per_view = 3
key_mode = "reshare"
key_mode_overrides = []
[committee]
max_size = 5
min_size = 4
threshold = { percent = 66 }
quorum = { percent = 75 }
keep_previous_percent = 70
min_stake = 1
[phases]
contribute = 12
share = 15
# Room for the crashed node to restart, catch up and publish on a loaded machine.
publish = 20
wait = 12
# The crash below must land inside the first ceremony: phases run to their deadlines here
# instead of closing when their last post lands.
close_early = false
[slashing]
misbehaviour_percent = 10
absence_percent = 0
"#;

/// `GET path` on a local port, decoded as `T` (`None` while the server does not answer).
async fn get<T: serde::de::DeserializeOwned>(port: u16, path: &str) -> Option<T> {
    Client::new(&format!("http://127.0.0.1:{port}"))
        .ok()?
        .with_timeout(Duration::from_secs(5))
        .get(path)
        .await
        .ok()
}

async fn active_view(chain_port: u16, view: u64) -> ActiveView {
    match get(chain_port, &format!("/views/{view}")).await {
        Some(ViewAnswer::ActiveOrPast(v)) => v,
        other => panic!("view {view} is not active: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_processes_fresh_then_reshare_with_a_crash_and_a_byzantine_node() {
    let _network = crate::common::network_slot().await;
    let net = Testnet::new(NODES, CONTRACT, None);
    let (dir, nodes, chain_port) = (net.dir(), &net.nodes, net.chain_port);
    let mut procs: Vec<Option<Proc>> = (0..NODES).map(|i| Some(net.start(i, fault(i)))).collect();

    // All five register before the first view change.
    wait_for("registrations", Duration::from_secs(30), async || {
        let s = contract_status(chain_port).await?;
        (s.registered_nodes == NODES as u64).then_some(())
    })
    .await;

    // Kill one node in the middle of the first ceremony (share phase: its commitment is on the
    // board, deals and acks are in flight), then restart it.
    wait_for("view 1 share phase", Duration::from_secs(60), async || {
        let s = contract_status(chain_port).await?;
        (s.pending_view == Some(1) && s.phase == ViewChangePhase::Share).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    procs[CRASHED] = None; // SIGKILL
    tokio::time::sleep(Duration::from_millis(600)).await;
    procs[CRASHED] = Some(net.start(CRASHED, fault(CRASHED)));

    // A fresh view and then a reshare.
    wait_for("view 2", Duration::from_secs(150), async || {
        let s = contract_status(chain_port).await?;
        (s.view >= 2).then_some(())
    })
    .await;

    let v1 = active_view(chain_port, 1).await;
    let v2 = active_view(chain_port, 2).await;
    assert_eq!(v1.key_mode, KeyMode::Fresh);
    assert_eq!(v2.key_mode, KeyMode::Reshare);
    let group_key = v1.group_key;
    assert_eq!(v2.group_key, group_key, "a reshare keeps the group key");

    // The Byzantine node was excluded for equivocation, with evidence on chain; the crashed
    // node was not penalised at all (it resumed and never sent a second commitment).
    let records: Vec<SlashingRecord> = get(chain_port, "/query/slashings").await.unwrap();
    let id =
        |i: usize| -> Hex<96> { serde_json::from_value(nodes[i].identity.clone().into()).unwrap() };
    assert!(
        records
            .iter()
            .any(|r| r.identity == id(BYZANTINE) && r.fault == "equivocation" && r.view == 1),
        "{records:?}"
    );
    assert!(
        records.iter().all(|r| r.identity != id(CRASHED)),
        "{records:?}"
    );
    let members1: Vec<Hex<96>> = v1.committee.iter().map(|m| m.identity).collect();
    assert_eq!(members1.len(), NODES - 1);
    assert!(!members1.contains(&id(BYZANTINE)));
    assert!(members1.contains(&id(CRASHED)));

    // Every member of view 2 agrees on the group key and knows its index.
    for m in &v2.committee {
        let i = (0..NODES).position(|i| m.identity == id(i)).unwrap();
        let s = wait_for("node status", Duration::from_secs(10), async || {
            let s: NodeStatus = get(nodes[i].status, "/status").await?;
            (s.view >= 2).then_some(s)
        })
        .await;
        assert_eq!(s.group_key, Some(hex::encode(group_key.0)), "node {i}");
        assert_eq!(s.share_index, Some(m.index), "node {i}");
    }

    // The magic blocks form a verified chain from the first group key (threshold BLS, MinPk).
    let mut blocks = Vec::new();
    for v in 1..=2 {
        let b: SignedMagicBlock = get(chain_port, &format!("/views/{v}/magic-block"))
            .await
            .unwrap();
        blocks.push(b);
    }
    verify_magic_block_chain(&group_key.0, &blocks).unwrap();

    // The restarted node logged its replay.
    let log = std::fs::read_to_string(dir.join(format!("node{CRASHED}.log"))).unwrap();
    assert!(log.contains("resuming ceremony by replay"), "{log}");
}
