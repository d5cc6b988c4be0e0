//! A node re-executes the embedded chain's blocks with its own contract and refuses the chain
//! from the first block its contract does not reproduce.
//!
//! The chain here runs the contract over HTTP, as `keyquorum chain` does, and announces its
//! genesis configuration at `/query/config`. The lying chain announces one configuration and
//! runs another: the same, except that the node's genesis balance is larger than announced, so
//! the chain locks a stake that the announced genesis cannot back (as a chain that credits a
//! favoured validator would). The node (`runtime::run` with the adapter `keyquorum node`
//! builds) stops following at the block that applied the registration and says so in
//! `/status` and `/metrics`. Against the honest chain the same node registers and follows on,
//! and once restarted it re-executes the chain from its first block before following on.

use std::time::Duration;

use clap::Parser;
use keyquorum_contract::{Contract, ContractConfig, Event};
use keyquorum_devchain::{Chain, ChainConfig, StateMachine, TxHash, TxRejection};
use keyquorum_node::chain::replica::config_digest;
use keyquorum_node::cli::NodeArgs;
use keyquorum_node::status::Status;
use keyquorum_node::{ContractMachine, DevchainClient, NodeKeys, runtime};

/// Stake the node registers with.
const STAKE: u64 = 100;

/// Runs the contract of one configuration and announces another at `/query/config`.
struct Announcing {
    machine: ContractMachine,
    announced: serde_json::Value,
}

impl StateMachine for Announcing {
    type Event = Event;

    fn check_tx(&self, tx: &[u8]) -> Result<TxHash, TxRejection> {
        self.machine.check_tx(tx)
    }

    fn apply_tx(&mut self, tx: &[u8], height: u64) -> Result<Vec<Event>, TxRejection> {
        self.machine.apply_tx(tx, height)
    }

    fn end_block(&mut self, height: u64) -> Vec<Event> {
        self.machine.end_block(height)
    }

    fn query(&self, path: &str) -> Option<serde_json::Value> {
        match path {
            "config" => Some(self.announced.clone()),
            _ => self.machine.query(path),
        }
    }
}

#[derive(Parser)]
struct NodeCommand {
    #[command(flatten)]
    node: NodeArgs,
}

fn keys() -> NodeKeys {
    NodeKeys::from_master(&[11; 32])
}

/// The node's genesis balance is `balance`; no view change starts while the test runs.
fn contract_config(balance: u64) -> ContractConfig {
    let mut c =
        ContractConfig::defaults("replica-test", 4).fund(keys().identity().public(), balance);
    c.first_view_change = 1_000_000;
    c
}

/// What the node showed once it registered or refused the chain.
struct Seen {
    status: Status,
    metrics: String,
    /// Height of the block with the node's registration, as the chain recorded it, and whether
    /// the chain applied it.
    registration: Option<(u64, bool)>,
}

/// A running `keyquorum node` (its runtime in this process) and its status server's client.
struct RunningNode {
    client: keyquorum_devchain::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), keyquorum_node::runtime::NodeError>>,
}

impl RunningNode {
    async fn status(&self) -> Option<Status> {
        self.client.get::<Status>("/status").await.ok()
    }

    /// Polls `/status` until `done` holds (at most 60 s).
    async fn wait_for(&self, what: &str, done: impl Fn(&Status) -> bool) -> Status {
        tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                if let Some(s) = self.status().await
                    && done(&s)
                {
                    return s;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting: {what}"))
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
    }
}

/// Starts a node on `data_dir` following the chain at `url`, re-executing it (pinning
/// `pinned`, if any), as `keyquorum node --chain-url URL` does; returns once it listens.
async fn start_node(
    url: &str,
    data_dir: &std::path::Path,
    pinned: Option<[u8; 32]>,
) -> RunningNode {
    let config = NodeCommand::try_parse_from([
        "keyquorum-node",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--chain-url",
        url,
        "--p2p-listen",
        "/ip4/127.0.0.1/tcp/0",
        "--http-listen",
        "127.0.0.1:0",
        "--no-beacon",
        "--stake",
        &STAKE.to_string(),
    ])
    .unwrap()
    .node
    .load()
    .unwrap();
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(runtime::run(
        config,
        keys(),
        DevchainClient::verifying(url, pinned).unwrap(),
        async move {
            let _ = stopped.await;
        },
        Some(ready_tx),
    ));
    let info = tokio::time::timeout(Duration::from_secs(30), ready)
        .await
        .expect("the node listens")
        .unwrap();
    RunningNode {
        client: keyquorum_devchain::Client::new(&format!("http://{}", info.status_addr)).unwrap(),
        stop,
        task,
    }
}

/// The runtime a test's chain and node run on.
fn two_worker_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Starts a chain on `data_dir` (50 ms blocks) whose contract has `actual` and which announces
/// `announced`.
async fn start_chain(
    data_dir: &std::path::Path,
    actual: ContractConfig,
    announced: &ContractConfig,
) -> Chain {
    Chain::start(
        ChainConfig {
            data_dir: data_dir.to_owned(),
            listen: ([127, 0, 0, 1], 0).into(),
            block_ms: 50,
            ..ChainConfig::default()
        },
        Announcing {
            machine: ContractMachine(Contract::new(actual).unwrap()),
            announced: serde_json::to_value(announced).unwrap(),
        },
    )
    .await
    .unwrap()
}

/// Runs a chain whose contract has `actual` and announces `announced`, and a node pinning
/// `pinned` (if any) against it, until the node registered or refused the chain.
fn run(actual: ContractConfig, announced: &ContractConfig, pinned: Option<[u8; 32]>) -> Seen {
    let rt = two_worker_runtime();
    rt.block_on(async move {
        let chain_dir = tempfile::tempdir().unwrap();
        let node_dir = tempfile::tempdir().unwrap();
        let chain = start_chain(chain_dir.path(), actual, announced).await;
        let url = format!("http://{}", chain.local_addr());
        let node = start_node(&url, node_dir.path(), pinned).await;
        let client = node.client.clone();
        let status = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                if let Ok(s) = client.get::<Status>("/status").await
                    && (s.registered || s.chain_refused.is_some())
                {
                    return s;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("the node registered or refused the chain");
        // A few blocks more: a refused chain's later blocks must not reach the node.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let status = if status.chain_refused.is_some() {
            client.get::<Status>("/status").await.unwrap()
        } else {
            status
        };
        let metrics = client.get_text("/metrics").await.unwrap();
        let registration = chain.blocks_from(1, 100_000).unwrap().iter().find_map(|b| {
            b.txs
                .iter()
                .find(|t| {
                    keyquorum_contract::Transaction::decode(&t.tx, usize::MAX)
                        .is_ok_and(|tx| tx.body.kind() == "register")
                })
                .map(|t| (b.height, t.rejected.is_none()))
        });
        node.stop().await;
        chain.stop().await.unwrap();
        Seen {
            status,
            metrics,
            registration,
        }
    })
}

fn refused_gauge(metrics: &str) -> Option<&str> {
    metrics
        .lines()
        .find(|l| l.starts_with("keyquorum_chain_refused "))
        .and_then(|l| l.split_whitespace().nth(1))
}

#[test]
fn a_chain_running_other_rules_than_it_announces_is_refused_at_the_block_that_differs() {
    let announced = contract_config(STAKE - 1);
    let seen = run(contract_config(1_000), &announced, None);
    let (height, applied) = seen.registration.expect("the node sent its registration");
    assert!(applied, "the lying chain locked the stake");
    let refused = seen
        .status
        .chain_refused
        .expect("the node refused the chain");
    assert_eq!(refused.height, height, "{}", refused.reason);
    assert!(
        refused.reason.contains("replay diverged"),
        "{}",
        refused.reason
    );
    assert!(!seen.status.registered);
    // Nothing from the refused block on reached the driver.
    assert!(
        seen.status.height < height,
        "processed {} with block {height} refused",
        seen.status.height
    );
    assert_eq!(refused_gauge(&seen.metrics), Some("1"));
}

#[test]
fn the_same_node_follows_a_chain_that_runs_what_it_announces() {
    let config = contract_config(1_000);
    let seen = run(config.clone(), &config, Some(config_digest(&config)));
    let (_, applied) = seen.registration.expect("the node sent its registration");
    assert!(applied);
    assert!(seen.status.registered);
    assert_eq!(seen.status.chain_refused, None);
    assert_eq!(refused_gauge(&seen.metrics), Some("0"));
}

#[test]
fn a_configuration_other_than_the_pinned_one_is_refused_before_any_block() {
    let config = contract_config(1_000);
    let other = contract_config(999);
    let seen = run(config.clone(), &config, Some(config_digest(&other)));
    let refused = seen
        .status
        .chain_refused
        .expect("the node refused the chain");
    assert_eq!(refused.height, 0);
    assert!(
        refused.reason.contains("not the pinned"),
        "{}",
        refused.reason
    );
    assert_eq!(seen.status.height, 0);
    assert_eq!(seen.registration, None, "nothing was sent");
}

#[test]
fn a_restarted_node_re_executes_the_chain_from_its_first_block_and_follows_on() {
    let config = contract_config(1_000);
    let rt = two_worker_runtime();
    rt.block_on(async move {
        let chain_dir = tempfile::tempdir().unwrap();
        let node_dir = tempfile::tempdir().unwrap();
        let chain = start_chain(chain_dir.path(), config.clone(), &config).await;
        let url = format!("http://{}", chain.local_addr());
        let pinned = Some(config_digest(&config));
        let node = start_node(&url, node_dir.path(), pinned).await;
        let first = node.wait_for("registered", |s| s.registered).await;
        node.stop().await;
        // The chain goes on while the node is down; the restarted node resumes past block 1,
        // so its replica first re-executes everything before its cursor.
        let stopped_at = chain.height();
        while chain.height() < stopped_at + 10 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let node = start_node(&url, node_dir.path(), pinned).await;
        let target = chain.height() + 5;
        let after = node
            .wait_for("followed past the restart", |s| {
                s.height >= target || s.chain_refused.is_some()
            })
            .await;
        assert_eq!(after.chain_refused, None);
        assert!(after.registered);
        assert!(after.height > first.height);
        assert!(node.status().await.is_some());
        node.stop().await;
        chain.stop().await.unwrap();
    });
}

/// What a node's data directory records of its chain (`ChainStatus::genesis`) tells apart two
/// chains of one configuration (a chain started over in a new data directory) and stays the
/// same when a chain restarts on its own data.
#[test]
fn a_chain_started_over_with_the_same_configuration_is_another_chain() {
    use keyquorum_node::chain::ChainClient;
    let rt = two_worker_runtime();
    rt.block_on(async {
        let config = contract_config(1_000);
        let genesis = |chain: &Chain| {
            let client = DevchainClient::new(&format!("http://{}", chain.local_addr())).unwrap();
            async move {
                tokio::time::timeout(Duration::from_secs(20), async {
                    loop {
                        // Refused until the chain made its block 1.
                        if let Ok(s) = client.status().await {
                            return s.genesis;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
                .await
                .expect("the chain makes its block 1")
            }
        };
        let first_dir = tempfile::tempdir().unwrap();
        let first = start_chain(first_dir.path(), config.clone(), &config).await;
        let of_first = genesis(&first).await;
        let digest = hex::encode(config_digest(&config));
        assert!(
            of_first.starts_with(&format!("devchain:{digest}:")),
            "{of_first}"
        );
        first.stop().await.unwrap();

        let other_dir = tempfile::tempdir().unwrap();
        let other = start_chain(other_dir.path(), config.clone(), &config).await;
        assert_ne!(genesis(&other).await, of_first);
        other.stop().await.unwrap();

        let restarted = start_chain(first_dir.path(), config.clone(), &config).await;
        assert_eq!(genesis(&restarted).await, of_first);
        restarted.stop().await.unwrap();
    });
}
