//! Crash safety: a chain process is killed with SIGKILL while clients submit transactions
//! concurrently; after a restart on the same data directory every transaction that was
//! answered 200 must be in a block, exactly once, and the hash chain must be intact.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{TempDir, client, request, wait_height};
use keyquorum_devchain::api::{EventsQuery, TxLookup};
use keyquorum_devchain::testkit::KvTx;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const NODE: &str = env!("CARGO_BIN_EXE_devchain-test-node");
const CLIENTS: u64 = 8;
const ROUNDS: u64 = 3;

async fn spawn_node(dir: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(NODE)
        .args(["--data-dir", dir.to_str().unwrap()])
        .args(["--http-listen", "127.0.0.1:0", "--block-ms", "20"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn devchain-test-node");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("node did not start in time")
        .unwrap()
        .expect("node exited before listening");
    let addr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    (child, addr)
}

/// xorshift64*, seeded from the clock (the seed is printed for reproduction).
struct Rng(u64);

impl Rng {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound
    }
}

/// Submits transactions from one account until the connection fails; records what was acked.
/// Raw requests, not the typed client: a 200 status line counts as an acknowledgement even if
/// the kill cuts the body off.
async fn submitter(addr: SocketAddr, id: u64, round: u64, acked: Arc<Mutex<Vec<[u8; 32]>>>) {
    let account = format!("acct{id}");
    for n in 1.. {
        let nonce = round * 1_000_000 + n;
        let tx = KvTx::signed(&account, nonce, &format!("k{id}"), &format!("r{round}n{n}"));
        let bytes = tx.to_bytes();
        let hash = KvTx::hash_of(&bytes);
        match request(addr, "POST", "/tx", &bytes).await {
            Ok(r) if r.status == 200 => {
                // The kill may cut the body off after the status line: a 200 is an ack anyway.
                if let Ok(v) = serde_json::from_slice::<Value>(&r.body) {
                    assert_eq!(v["hash"], Value::from(hex::encode(hash)));
                }
                acked.lock().unwrap().push(hash);
            }
            Ok(r) => panic!("unexpected answer {} {:?}", r.status, r.json()),
            Err(_) => return, // the node was killed
        }
    }
}

/// Reads the whole chain through `/events`, checking heights and the hash chain; returns
/// how many times each transaction hash appears.
async fn read_chain(addr: SocketAddr) -> (u64, HashMap<[u8; 32], usize>) {
    let api = client(addr);
    let mut counts = HashMap::new();
    let mut from = 1u64;
    let mut parent = [0u8; 32];
    loop {
        let page = api
            .events(EventsQuery {
                from: Some(from),
                ..Default::default()
            })
            .await
            .unwrap();
        if page.blocks.is_empty() {
            return (from - 1, counts);
        }
        for b in &page.blocks {
            assert_eq!(b.height, from);
            assert_eq!(b.parent_hash, parent);
            parent = b.hash;
            for t in &b.txs {
                assert!(t.rejected.is_none(), "rejected tx {t:?}");
                *counts.entry(t.hash).or_insert(0) += 1;
            }
            from += 1;
        }
        assert_eq!(page.next, from);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_writes_loses_no_acknowledged_transaction() {
    let dir = TempDir::new("crash");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut last_height = 0;

    for round in 0..ROUNDS {
        let (mut child, addr) = spawn_node(dir.path()).await;
        // Everything committed before the previous kill is still there.
        let (height, counts) = read_chain(addr).await;
        assert!(
            height >= last_height,
            "lost blocks: {height} < {last_height}"
        );
        let before = acked.lock().unwrap().len();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|id| tokio::spawn(submitter(addr, id, round, acked.clone())))
            .collect();
        // The kill comes while clients are writing: after a first acknowledgement (which
        // waits for a durable commit, slow on a loaded disk), at a random point after it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while acked.lock().unwrap().len() == before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no transaction acknowledged in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let delay = rng.next(500);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        child.start_kill().unwrap(); // SIGKILL
        child.wait().await.unwrap();
        for c in clients {
            c.await.unwrap();
        }
        let now = acked.lock().unwrap().len();
        eprintln!(
            "round {round}: height {height} at start ({} txs), killed {delay} ms after the first ack, {} acked",
            counts.len(),
            now - before
        );
        assert!(now > before, "no transaction acknowledged before the kill");
        last_height = height;
    }

    // Final restart: re-queued pending transactions go into the next blocks.
    let (mut child, addr) = spawn_node(dir.path()).await;
    let api = client(addr);
    let start = api.status::<Value>().await.unwrap().height;
    assert!(start >= last_height);
    wait_height(&api, start + 3).await;
    assert_eq!(api.status::<Value>().await.unwrap().pending_txs, 0);
    let (_, counts) = read_chain(addr).await;
    let acked = acked.lock().unwrap().clone();
    let unique: HashSet<_> = acked.iter().collect();
    assert_eq!(unique.len(), acked.len());
    for h in &acked {
        assert_eq!(
            counts.get(h),
            Some(&1),
            "acknowledged tx {} not in exactly one block",
            hex::encode(h)
        );
        let found = api.tx(h).await.unwrap();
        assert!(matches!(found, TxLookup::Included { .. }), "{found:?}");
    }
    eprintln!(
        "{} acknowledged transactions all included; chain holds {}",
        acked.len(),
        counts.len()
    );
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}
