//! A node whose chain stops answering says so: after every read has failed for 10 s, a
//! warning, `chain_unreachable` on `/status` and `keyquorum_chain_unreachable 1` on
//! `/metrics`; once the chain answers again, both clear. Before, the only sign was a height
//! that stopped moving.

use std::time::{Duration, Instant};

use keyquorum_contract::{Contract, ContractConfig};
use keyquorum_devchain::{Chain, ChainConfig};
use keyquorum_node::status::Status;
use keyquorum_node::{ContractMachine, NodeKeys};

use crate::common;

fn contract() -> ContractMachine {
    let keys = NodeKeys::from_master(&[77; 32]);
    let config =
        ContractConfig::defaults("unreachable-test", 1).fund(keys.identity().public(), 1_000);
    ContractMachine(Contract::new(config).unwrap())
}

/// A loopback address for a chain started again on it later: below the ephemeral range, so
/// that no outgoing connection takes its port while the chain is down.
fn restartable_addr() -> std::net::SocketAddr {
    let port = keyquorum_node::ports::free_loopback_port(&mut Default::default()).unwrap();
    ([127, 0, 0, 1], port).into()
}

async fn start_chain(dir: &std::path::Path, listen: std::net::SocketAddr) -> Chain {
    Chain::start(
        ChainConfig {
            data_dir: dir.to_owned(),
            listen,
            block_ms: 50,
            ..ChainConfig::default()
        },
        contract(),
    )
    .await
    .unwrap()
}

async fn get(addr: std::net::SocketAddr, path: &'static str) -> String {
    tokio::task::spawn_blocking(move || common::http_get(addr, path).1)
        .await
        .unwrap()
}

/// Waits until `/status` and `/metrics` agree that the chain is (or is not) unreachable.
async fn until_unreachable(addr: std::net::SocketAddr, unreachable: bool) -> Status {
    let deadline = Instant::now() + Duration::from_secs(40);
    let gauge = format!("keyquorum_chain_unreachable {}", unreachable as u8);
    loop {
        let status: Status = serde_json::from_str(&get(addr, "/status").await).unwrap();
        if status.chain_unreachable.is_some() == unreachable
            && get(addr, "/metrics").await.lines().any(|l| l == gauge)
        {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "unreachable never {unreachable}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reports_a_chain_that_stops_answering_and_clears_it_when_it_is_back() {
    let chain_dir = tempfile::tempdir().unwrap();
    let chain = start_chain(chain_dir.path(), restartable_addr()).await;
    let chain_addr = chain.local_addr();
    let url = format!("http://{chain_addr}");
    let node_dir = tempfile::tempdir().unwrap();
    let (addr, _stop) = common::spawn_node(&url, [77; 32], 100, node_dir.path()).await;
    // Following: blocks processed.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = until_unreachable(addr, false).await;
        if status.height > 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node follows nothing: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let stopped_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    chain.stop().await.unwrap();
    let down = until_unreachable(addr, true).await;
    let reported = down.chain_unreachable.unwrap();
    assert!(
        reported.since_unix_secs >= stopped_at.saturating_sub(1),
        "{reported:?}"
    );
    assert!(!reported.error.is_empty());

    let _chain = start_chain(chain_dir.path(), chain_addr).await;
    until_unreachable(addr, false).await;
}

/// A chain wiped and started again under a running node, on the same address and with the
/// same configuration, is another chain (its block 1 differs). The node refuses it at once,
/// while the new chain's head is still below the blocks the node followed; before, it showed
/// its old height with no warning until the new chain passed that height, which at the new
/// chain's pace would have taken minutes. Once the old chain is back, the node follows it on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_a_chain_wiped_and_started_again_under_it() {
    let chain_dir = tempfile::tempdir().unwrap();
    let chain = start_chain(chain_dir.path(), restartable_addr()).await;
    let chain_addr = chain.local_addr();
    let url = format!("http://{chain_addr}");
    let node_dir = tempfile::tempdir().unwrap();
    let (addr, _stop) = common::spawn_node(&url, [77; 32], 100, node_dir.path()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let followed = loop {
        let status: Status = serde_json::from_str(&get(addr, "/status").await).unwrap();
        if status.height > 20 {
            break status.height;
        }
        assert!(
            Instant::now() < deadline,
            "the node follows nothing: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    chain.stop().await.unwrap();

    // The same configuration on an empty data directory, at a block a second.
    let wiped = tempfile::tempdir().unwrap();
    let new_chain = Chain::start(
        ChainConfig {
            data_dir: wiped.path().to_owned(),
            listen: chain_addr,
            block_ms: 1000,
            ..ChainConfig::default()
        },
        contract(),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let refused = loop {
        let status: Status = serde_json::from_str(&get(addr, "/status").await).unwrap();
        if let Some(refused) = status.chain_refused {
            break refused;
        }
        assert!(
            Instant::now() < deadline,
            "the node never refused the new chain: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Within the deadline the new chain, a block a second, is still below the old height.
    assert!(new_chain.handle().height() < followed);
    assert!(
        refused.reason.contains("the chain was replaced"),
        "{refused:?}"
    );
    assert!(
        get(addr, "/metrics")
            .await
            .lines()
            .any(|l| l == "keyquorum_chain_refused 1")
    );

    // The chain this node followed is restored at the same address: the node takes it up
    // again where it was, with the refusal cleared. Before, it refused for good and had to be
    // restarted.
    new_chain.stop().await.unwrap();
    let _restored = start_chain(chain_dir.path(), chain_addr).await;
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let status: Status = serde_json::from_str(&get(addr, "/status").await).unwrap();
        if status.chain_refused.is_none() && status.height > followed + 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node never took its chain up again: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        get(addr, "/metrics")
            .await
            .lines()
            .any(|l| l == "keyquorum_chain_refused 0")
    );
}

/// A node whose chain has never answered since its start (a wrong chain URL, or the chain not
/// up yet) says so as one that stopped answering does; before, `/status` and the gauge showed
/// nothing wrong, with one info line in the log. Once the chain is there it is followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reports_a_chain_that_never_answered_since_its_start() {
    let chain_addr = restartable_addr();
    let started_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let node_dir = tempfile::tempdir().unwrap();
    let (addr, _stop) = common::spawn_node(
        &format!("http://{chain_addr}"),
        [77; 32],
        100,
        node_dir.path(),
    )
    .await;
    let down = until_unreachable(addr, true).await;
    let reported = down.chain_unreachable.unwrap();
    assert!(reported.since_unix_secs >= started_at, "{reported:?}");
    assert!(!reported.error.is_empty());

    let chain_dir = tempfile::tempdir().unwrap();
    let _chain = start_chain(chain_dir.path(), chain_addr).await;
    until_unreachable(addr, false).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while common::status_of(addr).await.height == 0 {
        assert!(Instant::now() < deadline, "the node follows nothing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
