//! Sections on real processes: `keyquorum sections node`s over libp2p on loopback, no chain.
//!
//! A genesis node draws the genesis key alone; three nodes join one by one through it, and
//! each join promotes the joiner by a DKG among the new elders over the network, handed over
//! by the current elders. Every node's key chain, fetched over HTTP, verifies from the genesis
//! key, ends in the section key, and the SAP carries that key's signature. One of three elders
//! is refused when it asks to leave (the other two could sign no start) and comes back. Then an
//! elder is killed and restarted on its data directory: it comes back with the same chain and
//! its key share, and takes part as candidate and as handing-over elder when a fifth node joins (the
//! DKG needs every candidate, the start all but one of the four elders). Last, the fifth node
//! stops and leaves with `keyquorum sections leave`: the other four elders remove it and hand
//! over to themselves by a DKG among the four. Apart: a joiner whose bootstrap peer is down
//! warns at its first failed ask.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::sections::{name_of, verify, view};
use common::{BIN, NodeSpec, Proc, new_key, wait_for};
use keyquorum_node::sections_node::http::SectionView;

const NODES: usize = 5;
const ROUND_MS: &str = "1000";

/// `keyquorum sections leave` for node `i` (stopped).
fn leave_command(dir: &Path, nodes: &[NodeSpec], i: usize) -> Command {
    let mut c = Command::new(BIN);
    c.args(["sections", "leave", "--data-dir"])
        .arg(dir.join(format!("node{i}")))
        .arg("--key-file")
        .arg(&nodes[i].key)
        .arg("--passphrase-file")
        .arg(dir.join("pass"))
        .env("KEYQUORUM_LOG", "warn");
    c
}

fn start(dir: &Path, nodes: &[NodeSpec], i: usize, genesis_key: Option<&str>) -> Proc {
    common::sections::start(dir, nodes, i, genesis_key, ROUND_MS, &[])
}

/// Waits until nodes `up` all hold the SAP of generation `generation` with `elders` elders,
/// all elders, on the same section key; returns their views.
async fn settled(nodes: &[NodeSpec], up: &[usize], generation: u64) -> Vec<SectionView> {
    wait_for(
        &format!("generation {generation} at nodes {up:?}"),
        Duration::from_secs(90),
        async || {
            let mut views = Vec::new();
            for &i in up {
                let v = view(&nodes[i]).await?;
                if v.generation != generation || !v.elder || v.elders.len() != up.len() {
                    return None;
                }
                views.push(v);
            }
            views
                .iter()
                .all(|v| v.section_key == views[0].section_key && v.key_chain == views[0].key_chain)
                .then_some(views)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sections_grow_over_the_network_and_an_elder_recovers_from_its_store() {
    let _network = crate::common::network_slot().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _logs = crate::common::LogsOnFailure(dir);
    std::fs::write(dir.join("pass"), "integration-test-passphrase\n").unwrap();
    let nodes: Vec<NodeSpec> = (0..NODES).map(|i| new_key(dir, i)).collect();

    let mut procs: Vec<Option<Proc>> = vec![Some(start(dir, &nodes, 0, None))];
    let genesis = wait_for("the genesis node", Duration::from_secs(30), async || {
        view(&nodes[0]).await
    })
    .await;
    assert_eq!(genesis.generation, 1);
    assert!(genesis.elder && genesis.key_chain.links().is_empty());
    assert_eq!(genesis.section_key, genesis.genesis_key);
    let genesis_hex = genesis.genesis_key.clone();

    for i in 1..4 {
        procs.push(Some(start(dir, &nodes, i, Some(&genesis_hex))));
        let up: Vec<usize> = (0..=i).collect();
        for v in settled(&nodes, &up, i as u64 + 1).await {
            verify(&v, &genesis_hex);
        }
        if i == 2 {
            // One of three elders may not leave: the other two could sign no start (a
            // supermajority of three is three). Refused, its store untouched: it comes back.
            procs[2] = None;
            let out = leave_command(dir, &nodes, 2).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{err}");
            assert!(
                err.contains("error: leave: this node is one of its section's 3 elders")
                    && err.contains("would stall for good"),
                "{err}"
            );
            procs[2] = Some(start(dir, &nodes, 2, Some(&genesis_hex)));
            settled(&nodes, &up, 3).await;
        }
    }
    // The chain file holds what HTTP serves.
    let file: SectionView =
        serde_json::from_slice(&std::fs::read(dir.join("node1").join("key_chain.json")).unwrap())
            .unwrap();
    verify(&file, &genesis_hex);
    assert_eq!(file.generation, 4);

    // Kill an elder and restart it on its store.
    let before = view(&nodes[2]).await.unwrap();
    procs[2] = None;
    procs[2] = Some(start(dir, &nodes, 2, Some(&genesis_hex)));
    let after = wait_for("the restarted elder", Duration::from_secs(30), async || {
        view(&nodes[2]).await
    })
    .await;
    assert_eq!(after.key_chain, before.key_chain);
    assert_eq!(after.section_key, before.section_key);
    assert!(after.elder, "the restarted elder holds its share again");

    // A fifth node joins: the restarted elder must sign, deal and hand over.
    procs.push(Some(start(dir, &nodes, 4, Some(&genesis_hex))));
    let views = settled(&nodes, &[0, 1, 2, 3, 4], 5).await;
    for v in &views {
        verify(v, &genesis_hex);
    }
    assert!(views[0].key_chain.links().len() == 4);

    // The fifth node stops and leaves: the four other elders remove it and hand over to
    // themselves.
    let leaver = hex::encode(name_of(&nodes[4]).0);
    procs[4] = None;
    let out = leave_command(dir, &nodes, 4).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "removed by 4 of 4 elders"
    );
    let views = settled(&nodes, &[0, 1, 2, 3], 6).await;
    for v in &views {
        verify(v, &genesis_hex);
        assert!(v.elders.iter().all(|e| e.name != leaver));
        assert_eq!(v.members, 4);
    }
    drop(procs);
}

/// A joiner whose bootstrap peer is down says so at each failed ask, not only when it gives up
/// (the asks take the network's retries, about five seconds each, ten times over).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_says_at_once_that_its_bootstrap_peer_is_not_reachable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _logs = crate::common::LogsOnFailure(dir);
    std::fs::write(dir.join("pass"), "integration-test-passphrase\n").unwrap();
    let nodes: Vec<NodeSpec> = (0..2).map(|i| new_key(dir, i)).collect();
    let genesis = start(dir, &nodes, 0, None);
    let genesis_hex = wait_for("the genesis node", Duration::from_secs(30), async || {
        view(&nodes[0]).await
    })
    .await
    .genesis_key;
    drop(genesis);
    let _joiner = start(dir, &nodes, 1, Some(&genesis_hex));
    let log = dir.join("node1.log");
    let line = wait_for(
        "the joiner's warning",
        Duration::from_secs(20),
        async || {
            std::fs::read_to_string(&log)
                .ok()?
                .lines()
                .find(|l| l.contains("bootstrap peer not reachable"))
                .map(str::to_owned)
        },
    )
    .await;
    assert!(line.contains(&nodes[0].peer_id), "{line}");
    assert!(line.contains("round=1 of=10"), "{line}");
}

/// One elder a section: each join whose name sorts first replaces the lone elder. A member
/// only the outgoing elder admitted (the genesis node, admitted by nobody but itself) is known
/// to no current elder, so the new elder asks the outgoing one too. Before, the third node,
/// elder after the second, never learnt the genesis node: its member list lacked it for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_lone_elder_learns_the_members_only_the_outgoing_elder_knew() {
    let _network = crate::common::network_slot().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _logs = crate::common::LogsOnFailure(dir);
    std::fs::write(dir.join("pass"), format!("{}\n", common::PASSPHRASE)).unwrap();
    // Names in descending order: each node joins below the one before and takes its place.
    let mut nodes: Vec<NodeSpec> = (0..3).map(|i| new_key(dir, i)).collect();
    nodes.sort_by_key(|n| std::cmp::Reverse(name_of(n)));
    let params = ["--elder-count", "1", "--min-section-size", "20"];
    let spawn = |i: usize, genesis: Option<&str>| {
        common::sections::start(dir, &nodes, i, genesis, ROUND_MS, &params)
    };
    let mut procs = vec![spawn(0, None)];
    let genesis = wait_for("the genesis node", Duration::from_secs(30), async || {
        view(&nodes[0]).await
    })
    .await
    .genesis_key;
    for (i, node) in nodes.iter().enumerate().skip(1) {
        procs.push(spawn(i, Some(&genesis)));
        wait_for(
            &format!("node {i} the lone elder"),
            Duration::from_secs(90),
            async || view(node).await.filter(|v| v.elder && v.elders.len() == 1),
        )
        .await;
    }
    let all: Vec<String> = {
        let mut names: Vec<String> = nodes.iter().map(|n| hex::encode(name_of(n).0)).collect();
        names.sort();
        names
    };
    let last = wait_for(
        "the last elder's members",
        Duration::from_secs(60),
        async || view(&nodes[2]).await.filter(|v| v.member_names == all),
    )
    .await;
    verify(&last, &genesis);
    drop(procs);
}
