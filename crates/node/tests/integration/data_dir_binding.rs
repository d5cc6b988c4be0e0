//! A node data directory belongs to one identity and one chain: `runtime::run`, the function
//! `keyquorum node` runs, refuses to start on a directory another identity's keystore made, on
//! one that followed another chain, and on one that processed blocks its chain no longer has,
//! naming the file; the directory is left as it was. Without the check such a node kept its
//! stored view, registration and nonce and followed nothing, or skipped the new chain's first
//! blocks.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use keyquorum_node::chain::{
    Blocks, ChainAction, ChainClient, ChainStatus, Prepared, Sender, SignatureRoute, SubmitOutcome,
    Unprepared,
};
use keyquorum_node::store::{NodeState, Store};
use keyquorum_node::{NodeKeys, runtime};

use crate::restored_from_backup::{NoTransactions, node_config, two_workers};

/// A chain with a fixed genesis and head that serves no blocks.
#[derive(Clone)]
struct Idle {
    genesis: &'static str,
    origin: Option<&'static str>,
    head: u64,
}

impl ChainClient for Idle {
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
            chain_id: "binding-test".into(),
            genesis: self.genesis.into(),
            origin: self.origin.map(str::to_owned),
            height: self.head,
            beacon: Default::default(),
        })
    }

    async fn blocks(&self, _: u64, wait_ms: u64) -> Result<Blocks, NoTransactions> {
        tokio::time::sleep(Duration::from_millis(wait_ms.min(100))).await;
        Ok(Blocks {
            blocks: Vec::new(),
            height: self.head,
        })
    }

    async fn submit(&self, _: (), _: Option<[u8; 32]>) -> Result<SubmitOutcome, NoTransactions> {
        Err(NoTransactions)
    }
}

/// `chain`, telling `followed` when the node first asks it for blocks: only the follower does,
/// once the node has checked and bound its data directory to the chain.
#[derive(Clone)]
struct Watched {
    chain: Idle,
    followed: Arc<Notify>,
}

impl ChainClient for Watched {
    type Error = NoTransactions;
    type Tx = ();

    fn signature_route(&self) -> SignatureRoute {
        self.chain.signature_route()
    }

    fn prepare(
        &self,
        action: &ChainAction,
        sender: Sender<'_>,
    ) -> Result<Prepared<()>, Unprepared> {
        self.chain.prepare(action, sender)
    }

    async fn status(&self) -> Result<ChainStatus, NoTransactions> {
        self.chain.status().await
    }

    async fn blocks(&self, from: u64, wait_ms: u64) -> Result<Blocks, NoTransactions> {
        self.followed.notify_one();
        self.chain.blocks(from, wait_ms).await
    }

    async fn submit(
        &self,
        tx: (),
        retry_of: Option<[u8; 32]>,
    ) -> Result<SubmitOutcome, NoTransactions> {
        self.chain.submit(tx, retry_of).await
    }
}

/// Runs the node on `dir` against `chain` until it follows the chain, then stops it: `Ok` if
/// it got that far, its error if it returned first. (A fixed time to run was not enough on a
/// loaded machine: a stop that came before the node reached its chain check ended it with `Ok`
/// unchecked.)
fn start(dir: &std::path::Path, master: u8, chain: Idle) -> Result<(), runtime::NodeError> {
    let config = node_config(dir, &[]);
    let rt = two_workers();
    rt.block_on(async move {
        let followed = Arc::new(Notify::new());
        let chain = Watched {
            chain,
            followed: followed.clone(),
        };
        let (stop_tx, stop) = tokio::sync::oneshot::channel::<()>();
        let mut node = tokio::spawn(runtime::run(
            config,
            NodeKeys::from_master(&[master; 32]),
            chain,
            async move {
                let _ = stop.await;
            },
            None,
        ));
        tokio::select! {
            returned = &mut node => return returned.unwrap(),
            _ = followed.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(60)) => {
                panic!("the node neither returned nor followed its chain in a minute")
            }
        }
        stop_tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(20), node)
            .await
            .expect("the node stops")
            .unwrap()
    })
}

fn cursor(dir: &std::path::Path) -> u64 {
    Store::open(&dir.join("node.redb"))
        .unwrap()
        .load_state()
        .unwrap()
        .map_or(0, |s| s.cursor)
}

const CHAIN_A: Idle = Idle {
    genesis: "devchain:aaaa",
    origin: None,
    head: 20,
};

#[test]
fn a_data_dir_is_refused_to_another_identity_and_another_chain() {
    let dir = tempfile::tempdir().unwrap();
    start(dir.path(), 7, CHAIN_A).expect("a new data directory binds to its first chain");
    start(dir.path(), 7, CHAIN_A).expect("and starts again on it");

    let err = start(dir.path(), 8, CHAIN_A).unwrap_err().to_string();
    assert!(
        err.contains("node.redb") && err.contains("belongs to the node with identity"),
        "{err}"
    );
    let other = Idle {
        genesis: "devchain:bbbb",
        ..CHAIN_A
    };
    let err = start(dir.path(), 7, other).unwrap_err().to_string();
    assert!(
        err.contains("node.redb")
            && err.contains("follows another chain (devchain:aaaa), not this one (devchain:bbbb)"),
        "{err}"
    );
    // Neither refusal rebound the directory.
    start(dir.path(), 7, CHAIN_A).expect("its own identity and chain still start");
}

#[test]
fn a_data_dir_that_processed_blocks_its_chain_lacks_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    start(dir.path(), 7, CHAIN_A).unwrap();
    {
        let store = Store::open(&dir.path().join("node.redb")).unwrap();
        let mut batch = store.begin().unwrap();
        batch
            .put_state(&NodeState {
                cursor: 16,
                ..Default::default()
            })
            .unwrap();
        batch.commit().unwrap();
    }
    let restarted = Idle { head: 9, ..CHAIN_A };
    let err = start(dir.path(), 7, restarted).unwrap_err().to_string();
    assert!(
        err.contains("node.redb")
            && err.contains("processed the chain up to height 15, but the chain is at height 9"),
        "{err}"
    );
    assert_eq!(cursor(dir.path()), 16);
    start(dir.path(), 7, CHAIN_A).expect("the chain with those blocks is followed");
}

/// An EVM chain started over with the coordinator redeployed at the same address has the same
/// genesis (chain id, address, chain name) but another origin (the hash of the block the node
/// follows from): once it has more blocks than the file processed, only the origin tells it
/// apart. A file made before origins were recorded takes the first it is given.
#[test]
fn a_data_dir_is_refused_to_a_chain_started_over_with_the_same_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let first = Idle {
        genesis: "evm:31337:0x5fbd:kq",
        origin: None,
        head: 20,
    };
    start(dir.path(), 7, first.clone()).expect("a file without an origin");
    let with_origin = Idle {
        origin: Some("evm-block:0:0xaaaa"),
        ..first
    };
    start(dir.path(), 7, with_origin.clone()).expect("takes the first origin it is given");
    start(dir.path(), 7, with_origin.clone()).expect("and starts again on it");
    let started_over = Idle {
        origin: Some("evm-block:0:0xbbbb"),
        head: 500,
        ..with_origin
    };
    let err = start(dir.path(), 7, started_over).unwrap_err().to_string();
    assert!(
        err.contains("node.redb")
            && err.contains(
                "follows another chain (evm-block:0:0xaaaa), not this one (evm-block:0:0xbbbb)"
            ),
        "{err}"
    );
    start(dir.path(), 7, with_origin).expect("its own chain still starts");
}

/// A start that fails on a port in use, the status server's or libp2p's, leaves no database:
/// before, the new directory was bound to the identity of a node that never ran, and a later
/// start there with the intended keystore was refused as another node's directory.
#[test]
fn a_start_refused_for_a_port_in_use_binds_no_data_dir() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap();
    for port_in_use in ["status", "p2p"] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = node_config(dir.path(), &[]);
        if port_in_use == "status" {
            config.status_listen = busy;
        } else {
            config.listen = format!("/ip4/127.0.0.1/tcp/{}", busy.port());
        }
        let err = two_workers()
            .block_on(runtime::run(
                config,
                NodeKeys::from_master(&[8; 32]),
                CHAIN_A,
                std::future::pending(),
                None,
            ))
            .unwrap_err();
        assert!(
            !dir.path().join("node.redb").exists(),
            "a {port_in_use} port in use ({err}) left a database"
        );
        start(dir.path(), 7, CHAIN_A).expect("another identity then starts there");
    }
}
