//! What the process tests share: free loopback ports, node keys, and starting `keyquorum chain`
//! and `keyquorum node` processes that are killed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keyquorum_contract::query::ContractStatus;
use keyquorum_devchain::Client;

pub const BIN: &str = env!("CARGO_BIN_EXE_keyquorum");

/// Kills its process when dropped (tests must not leave processes behind).
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port below the kernel's ephemeral range, so that no outgoing connection
/// (nodes polling the chain, dialing each other) can take it between choosing and binding.
pub fn free_port() -> u16 {
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

pub fn log_file(dir: &Path, name: &str) -> Stdio {
    Stdio::from(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(name))
            .unwrap(),
    )
}

pub struct NodeSpec {
    pub key: PathBuf,
    pub peer_id: String,
    pub identity: String,
    pub p2p: u16,
    pub status: u16,
}

pub fn new_key(dir: &Path, i: usize) -> NodeSpec {
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

/// Starts node `i` (bootstrapping from node 0, or node 1 for node 0), with `fault` injected if
/// given; its log goes to `dir/node{i}.log`. When `dir/sign.token` exists, the node serves
/// `POST /sign` with that token.
pub fn start_node(
    dir: &Path,
    chain_port: u16,
    nodes: &[NodeSpec],
    i: usize,
    fault: Option<&str>,
) -> Proc {
    start_node_with(dir, chain_port, nodes, i, fault, &[])
}

/// [`start_node`] with `extra` arguments.
pub fn start_node_with(
    dir: &Path,
    chain_port: u16,
    nodes: &[NodeSpec],
    i: usize,
    fault: Option<&str>,
    extra: &[&str],
) -> Proc {
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
    if let Some(fault) = fault {
        cmd.args(["--fault", fault]);
    }
    let token = dir.join("sign.token");
    if token.exists() {
        cmd.arg("--sign-token-file").arg(token);
    }
    cmd.args(extra);
    Proc(cmd.spawn().unwrap())
}

/// Writes `contract` plus a genesis allocation of 5000 to every node into `dir/contract.toml`
/// and starts `keyquorum chain` on it (200 ms blocks); returns the process and its HTTP port.
pub fn start_chain(dir: &Path, contract: &str, nodes: &[NodeSpec]) -> (Proc, u16) {
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
    std::fs::write(dir.join("contract.toml"), format!("{contract}{genesis}")).unwrap();
    let chain_port = free_port();
    let chain = Proc(
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
    (chain, chain_port)
}

/// The contract's status from the chain (`None` while the chain does not answer).
pub async fn contract_status(chain_port: u16) -> Option<ContractStatus> {
    Client::new(&format!("http://127.0.0.1:{chain_port}"))
        .ok()?
        .status::<ContractStatus>()
        .await
        .ok()?
        .state
}

/// Polls `f` until it gives a value; panics naming `what` after `limit`.
pub async fn wait_for<T>(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
