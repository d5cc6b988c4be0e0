//! Clean restarts: blocks, state and pending transactions survive; replay checks determinism.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::TempDir;
use keyquorum_devchain::testkit::{KvMachine, KvTx};
use keyquorum_devchain::{Chain, ChainConfig, ChainError, TxStatus};
use serde_json::json;

fn config(dir: &Path, block_ms: u64) -> ChainConfig {
    ChainConfig {
        data_dir: dir.to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        block_ms,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_blocks_state_and_pending() {
    let dir = TempDir::new("restart");

    // Run 1: ten transactions, all included.
    let chain = Chain::start(config(dir.path(), 30), KvMachine::new(2))
        .await
        .unwrap();
    let mut hashes = Vec::new();
    for i in 1..=10u64 {
        let tx = KvTx::signed("dave", i, &format!("k{}", i % 3), &format!("v{i}")).to_bytes();
        hashes.push(chain.submit(tx).await.unwrap());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while chain.tx_status(hashes[9]).await.unwrap() == TxStatus::Pending {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // What run 1 committed is read once it has stopped: it makes a block every 30 ms, empty
    // or not, so a read taken before the stop can miss the last one. The handle keeps the
    // database open until it is dropped.
    let handle = chain.handle();
    chain.stop().await.unwrap();
    let height = handle.height();
    let blocks = handle.blocks_from(1, 100_000).unwrap();
    drop(handle);

    // Run 2: a long block interval, so nothing new is committed; the state is rebuilt by
    // replay. Five more transactions are acknowledged but stay pending.
    let chain = Chain::start(config(dir.path(), 60_000), KvMachine::new(2))
        .await
        .unwrap();
    assert_eq!(chain.height(), height);
    assert_eq!(chain.blocks_from(1, 100_000).unwrap(), blocks);
    let status = chain.status().await.unwrap();
    assert_eq!(status.height, height);
    assert_eq!(status.block_hash, blocks.last().unwrap().hash);
    assert_eq!(status.pending_txs, 0);
    assert_eq!(chain.query("kv/k1").await.unwrap(), Some(json!("v10")));
    for h in &hashes {
        assert!(matches!(
            chain.tx_status(*h).await.unwrap(),
            TxStatus::Included { .. }
        ));
    }
    // Included transactions stay duplicates after a restart.
    let first = KvTx::signed("dave", 1, "k1", "v1").to_bytes();
    assert!(matches!(
        chain.submit(first).await,
        Err(keyquorum_devchain::SubmitError::Rejected(r)) if r.code == "stale_nonce"
    ));
    let mut pending = Vec::new();
    for i in 11..=15u64 {
        let tx = KvTx::signed("dave", i, "late", &format!("v{i}")).to_bytes();
        pending.push(chain.submit(tx).await.unwrap());
    }
    assert_eq!(chain.status().await.unwrap().pending_txs, 5);
    chain.stop().await.unwrap();

    // Run 3: the pending transactions are re-queued (read with the long interval again: at
    // 30 ms the first block may have taken them before the read)...
    let chain = Chain::start(config(dir.path(), 60_000), KvMachine::new(2))
        .await
        .unwrap();
    assert_eq!(chain.status().await.unwrap().pending_txs, 5);
    chain.stop().await.unwrap();
    // ...and land in the first new block, in order.
    let chain = Chain::start(config(dir.path(), 30), KvMachine::new(2))
        .await
        .unwrap();
    assert!(
        chain
            .wait_for_height(height + 1, Duration::from_secs(5))
            .await
    );
    let b = chain.block(height + 1).unwrap().unwrap();
    assert_eq!(b.txs.iter().map(|r| r.hash).collect::<Vec<_>>(), pending);
    assert!(b.txs.iter().all(|r| r.rejected.is_none()));
    assert_eq!(chain.query("kv/late").await.unwrap(), Some(json!("v15")));
    assert_eq!(chain.status().await.unwrap().pending_txs, 0);
    chain.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_divergence_and_double_open_are_refused() {
    let dir = TempDir::new("diverge");
    let chain = Chain::start(config(dir.path(), 20), KvMachine::new(2))
        .await
        .unwrap();
    assert!(chain.wait_for_height(3, Duration::from_secs(5)).await);

    // The same data dir cannot be opened twice.
    let second = Chain::start(config(dir.path(), 20), KvMachine::new(2)).await;
    match second {
        Err(e @ ChainError::DataFileInUse { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("in use by another process") && !msg.contains("backup"),
                "{msg}"
            );
        }
        other => panic!("expected in use, got {:?}", other.err()),
    }
    chain.stop().await.unwrap();

    // Different genesis parameters emit different end_block events: refused at height 2.
    match Chain::start(config(dir.path(), 20), KvMachine::new(3)).await {
        Err(ChainError::ReplayDiverged { height, .. }) => assert_eq!(height, 2),
        other => panic!("expected divergence, got {:?}", other.err()),
    }
    // The right parameters still work.
    let chain = Chain::start(config(dir.path(), 20), KvMachine::new(2))
        .await
        .unwrap();
    assert!(chain.height() >= 3);
    chain.stop().await.unwrap();
}

/// [`KvMachine`] saying what its genesis is.
struct WithGenesis(KvMachine, [u8; 32]);

impl keyquorum_devchain::StateMachine for WithGenesis {
    type Event = keyquorum_devchain::testkit::KvEvent;

    fn check_tx(
        &self,
        tx: &[u8],
    ) -> Result<keyquorum_devchain::TxHash, keyquorum_devchain::TxRejection> {
        self.0.check_tx(tx)
    }

    fn apply_tx(
        &mut self,
        tx: &[u8],
        height: u64,
    ) -> Result<Vec<Self::Event>, keyquorum_devchain::TxRejection> {
        self.0.apply_tx(tx, height)
    }

    fn end_block(&mut self, height: u64) -> Vec<Self::Event> {
        self.0.end_block(height)
    }

    fn query(&self, path: &str) -> Option<serde_json::Value> {
        self.0.query(path)
    }

    fn genesis_id(&self) -> Option<[u8; 32]> {
        Some(self.1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_file_of_another_genesis_is_refused_naming_both() {
    let dir = TempDir::new("genesis");
    let chain = Chain::start(
        config(dir.path(), 20),
        WithGenesis(KvMachine::new(2), [1; 32]),
    )
    .await
    .unwrap();
    assert!(chain.wait_for_height(3, Duration::from_secs(5)).await);
    let path = chain.config().db_path();
    chain.stop().await.unwrap();

    // The same blocks would even replay here (same phase length): the record still refuses.
    let e = match Chain::start(
        config(dir.path(), 20),
        WithGenesis(KvMachine::new(2), [2; 32]),
    )
    .await
    {
        Ok(_) => panic!("a chain of another genesis was opened"),
        Err(e) => e,
    };
    assert!(matches!(e, ChainError::OtherGenesis { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(&hex::encode([1u8; 32])), "{msg}");
    assert!(msg.contains(&hex::encode([2u8; 32])), "{msg}");

    // Its own genesis still opens it, with its blocks.
    let chain = Chain::start(
        config(dir.path(), 20),
        WithGenesis(KvMachine::new(2), [1; 32]),
    )
    .await
    .unwrap();
    assert!(chain.height() >= 3);
    chain.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_whose_blocks_do_not_replay_records_no_genesis() {
    // A file from before the record: blocks, no genesis.
    let dir = TempDir::new("genesis-old");
    let chain = Chain::start(config(dir.path(), 20), KvMachine::new(2))
        .await
        .unwrap();
    assert!(chain.wait_for_height(3, Duration::from_secs(5)).await);
    chain.stop().await.unwrap();
    // Started with the wrong parameters: the replay refuses, and nothing is recorded...
    match Chain::start(
        config(dir.path(), 20),
        WithGenesis(KvMachine::new(3), [9; 32]),
    )
    .await
    {
        Err(ChainError::ReplayDiverged { .. }) => {}
        other => panic!("expected divergence, got {:?}", other.err()),
    }
    // ...so the right ones still open it, and are recorded from then on.
    let chain = Chain::start(
        config(dir.path(), 20),
        WithGenesis(KvMachine::new(2), [1; 32]),
    )
    .await
    .unwrap();
    chain.stop().await.unwrap();
    assert!(matches!(
        Chain::start(
            config(dir.path(), 20),
            WithGenesis(KvMachine::new(2), [9; 32])
        )
        .await,
        Err(ChainError::OtherGenesis { .. })
    ));
}

/// Runs a chain until it has a few blocks, so that its data file is a real database.
async fn make_chain(dir: &Path) -> std::path::PathBuf {
    let chain = Chain::start(config(dir, 10), KvMachine::new(2))
        .await
        .unwrap();
    for i in 1..=20u64 {
        let tx = KvTx::signed("erin", i, &format!("k{i}"), &"v".repeat(2000)).to_bytes();
        chain.submit(tx).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while chain.height() < 30 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let path = chain.config().db_path();
    chain.stop().await.unwrap();
    path
}

fn assert_refused(r: Result<Chain, ChainError>, path: &Path) {
    let e = match r {
        Ok(_) => panic!("a damaged data file was accepted"),
        Err(e) => e,
    };
    assert!(matches!(e, ChainError::DataFile { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("restore it from a backup"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_data_file_is_refused_not_a_new_chain() {
    let dir = TempDir::new("empty-file");
    let path = make_chain(dir.path()).await;
    std::fs::File::create(&path).unwrap(); // truncated to 0 bytes
    assert_refused(
        Chain::start(config(dir.path(), 10), KvMachine::new(2)).await,
        &path,
    );
    // Nothing was written over it.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    // Removing it is the deliberate way to a new chain.
    std::fs::remove_file(&path).unwrap();
    let chain = Chain::start(config(dir.path(), 60_000), KvMachine::new(2))
        .await
        .unwrap();
    assert_eq!(chain.height(), 0);
    chain.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeroed_pages_are_refused_with_a_typed_error() {
    use std::io::{Seek, SeekFrom, Write};
    let dir = TempDir::new("zeroed-pages");
    let path = make_chain(dir.path()).await;
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len >= 16 * 4096, "database of {len} bytes");
    // Zero every other 4 KiB page of the middle half of the file (some of them are free pages,
    // whose loss would not matter; most hold blocks).
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    for page in (len / 4 / 4096..3 * len / 4 / 4096).step_by(2) {
        f.seek(SeekFrom::Start(page * 4096)).unwrap();
        f.write_all(&[0u8; 4096]).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    assert_refused(
        Chain::start(config(dir.path(), 10), KvMachine::new(2)).await,
        &path,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_a_chain_and_a_data_dir_that_is_a_file_are_named() {
    let dir = TempDir::new("not-a-chain");
    let path = make_chain(dir.path()).await;
    std::fs::write(&path, vec![0xA5; 8192]).unwrap();
    assert_refused(
        Chain::start(config(dir.path(), 10), KvMachine::new(2)).await,
        &path,
    );
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let e = Chain::start(config(&file, 10), KvMachine::new(2))
        .await
        .err()
        .expect("a regular file is no data directory");
    assert!(matches!(e, ChainError::DataDir { .. }), "{e:?}");
    assert!(e.to_string().contains(&file.display().to_string()), "{e}");
}

/// Another program's redb file in the chain's place (a node's database, whose `meta` table has
/// other types) is refused naming the file, not with the storage library's bare "meta is of
/// type ..." error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_programs_database_is_refused_naming_the_file() {
    let dir = TempDir::new("foreign-file");
    let path = config(dir.path(), 10).db_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        let db = redb::Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        let meta: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
        w.open_table(meta).unwrap().insert("k", &b"v"[..]).unwrap();
        w.commit().unwrap();
    }
    let e = match Chain::start(config(dir.path(), 10), KvMachine::new(2)).await {
        Ok(_) => panic!("another program's database was accepted"),
        Err(e) => e,
    };
    assert!(matches!(e, ChainError::DataFile { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("is not a chain data file"), "{msg}");
}
