//! `keyquorum node --restored-from-backup` through the node's runtime: the arguments are parsed
//! as the `keyquorum node` subcommand parses them and handed to `runtime::run`, the function the
//! command runs, against a chain that serves one empty block and says its head is further on.
//! With the flag, the database forgets it caught up (durably: it is read back after the node
//! stopped), although the node processed a block after opening it, and the FROST nonces waiting
//! for a round two are gone; without it, both stay.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use keyquorum_crypto::secret::SecretBytes;
use keyquorum_node::chain::{
    Blocks, ChainAction, ChainBlock, ChainClient, ChainStatus, Prepared, Sender, SignatureRoute,
    SubmitOutcome, Unprepared,
};
use keyquorum_node::cli::NodeArgs;
use keyquorum_node::config::NodeConfig;
use keyquorum_node::sign::frost::NonceDb;
use keyquorum_node::status::Status;
use keyquorum_node::store::{NodeState, Store};
use keyquorum_node::{NodeKeys, runtime};
use keyquorum_signing::{NonceStore, SessionId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The chain's head as this chain reports it; it serves block 1 only, so the node stays behind.
const HEAD: u64 = 10;

/// A chain that serves one empty block and then none, with its head at [`HEAD`].
#[derive(Clone)]
struct OneBlockChain;

#[derive(Debug, thiserror::Error)]
#[error("this chain takes no transactions")]
pub(crate) struct NoTransactions;

impl ChainClient for OneBlockChain {
    type Error = NoTransactions;
    type Tx = ();

    fn signature_route(&self) -> SignatureRoute {
        SignatureRoute::OnChain
    }

    fn prepare(&self, action: &ChainAction, _: Sender<'_>) -> Result<Prepared<()>, Unprepared> {
        Err(Unprepared {
            kind: action.kind(),
            why: NoTransactions.to_string(),
        })
    }

    async fn status(&self) -> Result<ChainStatus, NoTransactions> {
        Ok(ChainStatus {
            chain_id: "restored-from-backup-test".into(),
            genesis: "test:restored-from-backup".into(),
            origin: None,
            height: HEAD,
            beacon: Default::default(),
        })
    }

    async fn blocks(&self, from: u64, wait_ms: u64) -> Result<Blocks, NoTransactions> {
        if from == 1 {
            let block = ChainBlock {
                height: 1,
                time_ms: 1,
                txs: Vec::new(),
                end_block_events: Vec::new(),
            };
            return Ok(Blocks {
                blocks: vec![block],
                height: HEAD,
            });
        }
        tokio::time::sleep(Duration::from_millis(wait_ms.min(100))).await;
        Ok(Blocks {
            blocks: Vec::new(),
            height: HEAD,
        })
    }

    async fn submit(&self, _: (), _: Option<[u8; 32]>) -> Result<SubmitOutcome, NoTransactions> {
        Err(NoTransactions)
    }
}

/// A chain that never answers: the node waits for it for as long as it runs.
#[derive(Clone)]
struct Unreachable;

impl ChainClient for Unreachable {
    type Error = NoTransactions;
    type Tx = ();

    fn signature_route(&self) -> SignatureRoute {
        SignatureRoute::OnChain
    }

    fn prepare(&self, action: &ChainAction, _: Sender<'_>) -> Result<Prepared<()>, Unprepared> {
        Err(Unprepared {
            kind: action.kind(),
            why: NoTransactions.to_string(),
        })
    }

    async fn status(&self) -> Result<ChainStatus, NoTransactions> {
        Err(NoTransactions)
    }

    async fn blocks(&self, _: u64, _: u64) -> Result<Blocks, NoTransactions> {
        Err(NoTransactions)
    }

    async fn submit(&self, _: (), _: Option<[u8; 32]>) -> Result<SubmitOutcome, NoTransactions> {
        Err(NoTransactions)
    }
}

/// `keyquorum node`'s arguments.
#[derive(Parser)]
struct NodeCommand {
    #[command(flatten)]
    node: NodeArgs,
}

/// The configuration `keyquorum node` takes from its arguments for a node on `dir` listening
/// on free local ports, without a beacon, plus `flags`.
pub(crate) fn node_config(dir: &std::path::Path, flags: &[&str]) -> NodeConfig {
    let mut args = vec![
        "keyquorum-node",
        "--data-dir",
        dir.to_str().unwrap(),
        "--p2p-listen",
        "/ip4/127.0.0.1/tcp/0",
        "--http-listen",
        "127.0.0.1:0",
        "--no-beacon",
    ];
    args.extend_from_slice(flags);
    NodeCommand::try_parse_from(args)
        .unwrap()
        .node
        .load()
        .unwrap()
}

/// A runtime of two workers, as a node process has.
pub(crate) fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn keys() -> NodeKeys {
    NodeKeys::from_master(&[7; 32])
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A data directory whose database caught up with the chain before, holding one nonce pair
/// waiting for its round two.
fn backup(dir: &std::path::Path) {
    let store = Store::open(&dir.join("node.redb")).unwrap();
    let mut batch = store.begin().unwrap();
    batch
        .put_state(&NodeState {
            cursor: 1,
            caught_up: true,
            ..Default::default()
        })
        .unwrap();
    batch.commit().unwrap();
    let nonces = NonceDb::open(&dir.join("frost-nonces.redb"), Arc::new(keys())).unwrap();
    nonces
        .for_coordinator(b"a coordinator", now_ms())
        .persist(&SessionId([1; 32]), &SecretBytes::new(vec![2; 64]))
        .unwrap();
    assert_eq!(nonces.pending().unwrap(), 1);
}

/// Runs `keyquorum node` with `flags` on `dir` until it has processed block 1, then stops it;
/// returns the stored state and the nonce pairs still waiting, read as soon as `runtime::run`
/// has returned, in the same process and runtime: it must have closed every store by then
/// (redb refuses to open a file that is still held).
fn run_node(dir: &std::path::Path, flags: &[&str]) -> (NodeState, u64) {
    let config = node_config(dir, flags);
    let rt = two_workers();
    let dir = dir.to_path_buf();
    rt.block_on(async move {
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let (stop_tx, stop) = tokio::sync::oneshot::channel::<()>();
        let node = tokio::spawn(runtime::run(
            config,
            keys(),
            OneBlockChain,
            async move {
                let _ = stop.await;
            },
            Some(ready_tx),
        ));
        let info = tokio::time::timeout(Duration::from_secs(20), ready)
            .await
            .expect("the node listens")
            .unwrap();
        let client =
            keyquorum_devchain::Client::new(&format!("http://{}", info.status_addr)).unwrap();
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let Ok(s) = client.get::<Status>("/status").await
                    && s.height == 1
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("block 1 processed");
        // A scraper's keep-alive connection, open while the node stops: the status server must
        // not keep its stores through it.
        let mut scrape = tokio::net::TcpStream::connect(info.status_addr)
            .await
            .unwrap();
        scrape
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: node\r\n\r\n")
            .await
            .unwrap();
        let mut answer = [0u8; 12];
        scrape.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"HTTP/1.1 200");
        stop_tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(20), node)
            .await
            .expect("the node stops")
            .unwrap()
            .unwrap();
        let state = Store::open(&dir.join("node.redb"))
            .expect("run released node.redb")
            .load_state()
            .unwrap()
            .unwrap();
        let pending = NonceDb::open(&dir.join("frost-nonces.redb"), Arc::new(keys()))
            .expect("run released frost-nonces.redb")
            .pending()
            .unwrap();
        (state, pending)
    })
}

#[test]
fn the_restored_from_backup_flag_forgets_catching_up_and_pending_nonces_before_following() {
    let restored = tempfile::tempdir().unwrap();
    backup(restored.path());
    let (state, pending) = run_node(restored.path(), &["--restored-from-backup"]);
    // It followed the chain (block 1 is behind it) on a database that no longer says it
    // caught up: a ceremony started before the head would be sat out, not dealt in again.
    assert_eq!(state.cursor, 2);
    assert!(!state.caught_up);
    assert_eq!(pending, 0);

    let kept = tempfile::tempdir().unwrap();
    backup(kept.path());
    let (state, pending) = run_node(kept.path(), &[]);
    assert_eq!(state.cursor, 2);
    assert!(state.caught_up);
    assert_eq!(pending, 1);
}

/// The flag is for one start, so its mark must be durable before the node waits for anything:
/// a node stopped while it waits for an unreachable chain, then started again without the flag,
/// would otherwise deal again in a ceremony its backup forgot.
#[test]
fn the_restored_from_backup_mark_is_durable_before_the_node_waits_for_the_chain() {
    let restored = tempfile::tempdir().unwrap();
    backup(restored.path());
    let config = node_config(restored.path(), &["--restored-from-backup"]);
    let rt = two_workers();
    rt.block_on(async move {
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        tokio::spawn(runtime::run(
            config,
            keys(),
            Unreachable,
            std::future::pending::<()>(),
            Some(ready_tx),
        ));
        tokio::time::timeout(Duration::from_secs(20), ready)
            .await
            .expect("the node listens")
            .unwrap();
    });
    // Killed while it waits for the chain: the runtime goes with every task.
    drop(rt);
    let state = Store::open(&restored.path().join("node.redb"))
        .unwrap()
        .load_state()
        .unwrap()
        .unwrap();
    assert!(!state.caught_up);
    assert_eq!(state.cursor, 1, "nothing followed");
}

/// The same when the start fails on a port in use: the mark is written before the listeners
/// are bound, so the start after the port is freed, without the flag, still sits out.
#[test]
fn the_restored_from_backup_mark_survives_a_start_refused_for_a_port_in_use() {
    let restored = tempfile::tempdir().unwrap();
    backup(restored.path());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = node_config(restored.path(), &["--restored-from-backup"]);
    config.status_listen = taken.local_addr().unwrap();
    two_workers()
        .block_on(runtime::run(
            config,
            keys(),
            Unreachable,
            std::future::pending::<()>(),
            None,
        ))
        .expect_err("the status port is in use");
    let state = Store::open(&restored.path().join("node.redb"))
        .unwrap()
        .load_state()
        .unwrap()
        .unwrap();
    assert!(!state.caught_up);
}

/// A node told to stop while its chain does not answer stops (it waited for the chain first).
#[test]
fn a_node_waiting_for_its_chain_stops_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let config = node_config(dir.path(), &[]);
    let rt = two_workers();
    rt.block_on(async move {
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let (stop_tx, stop) = tokio::sync::oneshot::channel::<()>();
        let node = tokio::spawn(runtime::run(
            config,
            keys(),
            Unreachable,
            async move {
                let _ = stop.await;
            },
            Some(ready_tx),
        ));
        tokio::time::timeout(Duration::from_secs(20), ready)
            .await
            .expect("the node listens")
            .unwrap();
        stop_tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), node)
            .await
            .expect("the node stops without its chain")
            .unwrap()
            .unwrap();
    });
}
