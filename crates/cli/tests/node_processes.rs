//! End to end over loopback with real processes: `keyquorum chain` and five `keyquorum node`s.
//! One node is Byzantine (it equivocates as a dealer), one is killed with SIGKILL in the middle of
//! the first ceremony and restarted; together they complete a fresh view change and then a
//! resharing view change, agree on the group key, and the chain of magic blocks verifies.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keyquorum_contract::hex::Hex;
use keyquorum_contract::query::{ActiveView, ContractStatus, ViewAnswer};
use keyquorum_contract::{
    KeyMode, SignedMagicBlock, SlashingRecord, ViewChangePhase, verify_magic_block_chain,
};
use keyquorum_devchain::Client;
use keyquorum_node::status::Status as NodeStatus;

const BIN: &str = env!("CARGO_BIN_EXE_keyquorum");
const NODES: usize = 5;
const BYZANTINE: usize = 4;
const CRASHED: usize = 2;

/// Kills its process when dropped (tests must not leave processes behind).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port below the kernel's ephemeral range, so that no outgoing connection
/// (nodes polling the chain, dialing each other) can take it between choosing and binding.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (from, to) = (10_000u64, u64::from(low.max(12_000)));
    for _ in 0..10_000 {
        let i = NEXT.fetch_add(1, Ordering::Relaxed);
        let x = (u64::from(std::process::id()) * 7919 + i * 104_729) % (to - from);
        let port = (from + x) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

fn log_file(dir: &Path, name: &str) -> Stdio {
    Stdio::from(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(name))
            .unwrap(),
    )
}

struct NodeSpec {
    key: PathBuf,
    peer_id: String,
    identity: String,
    p2p: u16,
    status: u16,
}

fn new_key(dir: &Path, i: usize) -> NodeSpec {
    let key = dir.join(format!("node{i}.key"));
    let mut cmd = Command::new(BIN);
    cmd.args(["keys", "new", "--key-file"]).arg(&key).args([
        "--kdf-memory-kib",
        "8192",
        "--kdf-passes",
        "1",
    ]);
    // Both passphrase sources: a file for even nodes, the environment for odd ones.
    if i.is_multiple_of(2) {
        cmd.arg("--passphrase-file").arg(dir.join("pass"));
    } else {
        cmd.env("KEYQUORUM_PASSPHRASE", "integration-test-passphrase");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("integration-test-passphrase"));
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_string()
    };
    NodeSpec {
        key,
        peer_id: field("peer_id"),
        identity: field("identity"),
        p2p: free_port(),
        status: free_port(),
    }
}

fn start_node(dir: &Path, chain_port: u16, nodes: &[NodeSpec], i: usize) -> Proc {
    let n = &nodes[i];
    let boot = &nodes[if i == 0 { 1 } else { 0 }];
    let mut cmd = Command::new(BIN);
    cmd.arg("node")
        .arg("--data-dir")
        .arg(dir.join(format!("node{i}")))
        .arg("--chain-url")
        .arg(format!("http://127.0.0.1:{chain_port}"))
        .arg("--p2p-listen")
        .arg(format!("/ip4/127.0.0.1/tcp/{}", n.p2p))
        .arg("--bootstrap")
        .arg(format!(
            "/ip4/127.0.0.1/tcp/{}/p2p/{}",
            boot.p2p, boot.peer_id
        ))
        .arg("--key-file")
        .arg(&n.key)
        .arg("--stake")
        .arg((1000 - 10 * i).to_string())
        .arg("--http-listen")
        .arg(format!("127.0.0.1:{}", n.status))
        .env("KEYQUORUM_LOG", "info,keyquorum_node=debug,libp2p=warn")
        .stdout(Stdio::null())
        .stderr(log_file(dir, &format!("node{i}.log")));
    if i.is_multiple_of(2) {
        cmd.arg("--passphrase-file").arg(dir.join("pass"));
    } else {
        cmd.env("KEYQUORUM_PASSPHRASE", "integration-test-passphrase");
    }
    if i == BYZANTINE {
        cmd.args(["--fault", "equivocate"]);
    }
    Proc(cmd.spawn().unwrap())
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
publish = 12
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

/// The contract's part of the chain's `/status`.
async fn contract_status(chain_port: u16) -> Option<ContractStatus> {
    Client::new(&format!("http://127.0.0.1:{chain_port}"))
        .ok()?
        .status::<ContractStatus>()
        .await
        .ok()?
        .state
}

async fn active_view(chain_port: u16, view: u64) -> ActiveView {
    match get(chain_port, &format!("/views/{view}")).await {
        Some(ViewAnswer::ActiveOrPast(v)) => v,
        other => panic!("view {view} is not active: {other:?}"),
    }
}

async fn wait_for<T>(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_processes_fresh_then_reshare_with_a_crash_and_a_byzantine_node() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("pass"), "integration-test-passphrase\n").unwrap();
    let nodes: Vec<NodeSpec> = (0..NODES).map(|i| new_key(dir, i)).collect();
    // Every node is funded at genesis with more than it stakes.
    let genesis: String = nodes
        .iter()
        .map(|n| {
            format!(
                "[[genesis]]\nidentity = \"{}\"\nbalance = 5000\n",
                n.identity
            )
        })
        .collect();
    std::fs::write(dir.join("contract.toml"), format!("{CONTRACT}{genesis}")).unwrap();

    let chain_port = free_port();
    let _chain = Proc(
        Command::new(BIN)
            .arg("chain")
            .arg("--data-dir")
            .arg(dir.join("chain"))
            .arg("--http-listen")
            .arg(format!("127.0.0.1:{chain_port}"))
            .args(["--block-ms", "200", "--contract"])
            .arg(dir.join("contract.toml"))
            .stdout(Stdio::null())
            .stderr(log_file(dir, "chain.log"))
            .spawn()
            .unwrap(),
    );
    let mut procs: Vec<Option<Proc>> = (0..NODES)
        .map(|i| Some(start_node(dir, chain_port, &nodes, i)))
        .collect();

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
    tokio::time::sleep(Duration::from_millis(1200)).await;
    procs[CRASHED] = Some(start_node(dir, chain_port, &nodes, CRASHED));

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
