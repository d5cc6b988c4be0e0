//! What the process tests share: free loopback ports, node keys, and starting `keyquorum chain`
//! and `keyquorum node` processes that are killed when dropped ([`Testnet`] does all of it for
//! a test), and HTTP GETs on a node's status server.

// Each test module uses its own part of this module.
#![allow(dead_code)]

pub mod drand_js;
pub mod sections;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keyquorum_beacon::{ChainInfo, Round};
use keyquorum_contract::query::ContractStatus;
use keyquorum_devchain::Client;

pub const BIN: &str = env!("CARGO_BIN_EXE_keyquorum");

/// How many networks of processes (a chain or anvil and its nodes) the tests of this binary run
/// at once. The tests spend most of their time waiting out phase deadlines, so two networks fit
/// on CI's two cores (the whole binary passes that way in about half the time of one at a
/// time); more than two would leave a node of a loaded network waiting for CPU past its deadlines.
const NETWORKS_AT_ONCE: usize = 2;

static NETWORK_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(NETWORKS_AT_ONCE);

/// Waits until fewer than [`NETWORKS_AT_ONCE`] other tests of this binary run a network of
/// processes; hold the permit for the whole test. Tests that run single commands do not take one.
pub async fn network_slot() -> tokio::sync::SemaphorePermit<'static> {
    NETWORK_SLOTS
        .acquire()
        .await
        .expect("the semaphore is never closed")
}

/// [`network_slot`] for a test that does not run in a tokio runtime.
pub fn network_slot_blocking() -> tokio::sync::SemaphorePermit<'static> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
        .block_on(network_slot())
}

/// Kills its process when dropped (tests must not leave processes behind).
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Prints the end of every `*.log` file in a test's directory when the test panics, so that a
/// failure in CI shows what the processes saw. Declare it after the directory, so it runs first.
pub struct LogsOnFailure<'a>(pub &'a Path);

impl Drop for LogsOnFailure<'_> {
    fn drop(&mut self) {
        print_logs_if_panicking(self.0);
    }
}

/// Prints the end of every `*.log` file in `dir` when the current thread panics.
fn print_logs_if_panicking(dir: &Path) {
    const TAIL: usize = 60;
    if !std::thread::panicking() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut logs: Vec<PathBuf> = entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    for log in logs {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        eprintln!("===== last {TAIL} lines of {} =====", log.display());
        for line in &lines[lines.len().saturating_sub(TAIL)..] {
            eprintln!("{line}");
        }
    }
}

/// A free loopback port below the kernel's ephemeral range, so that no outgoing connection
/// (nodes polling the chain, dialing each other) can take it between choosing and binding;
/// never one handed out before in this test process, where a port whose node is down (to be
/// restarted on it) binds again and was once given to a second node.
pub fn free_port() -> u16 {
    static TAKEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    keyquorum_node::ports::free_loopback_port(&mut taken).expect("a free port")
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
        cmd.env("KEYQUORUM_PASSPHRASE", PASSPHRASE);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains(PASSPHRASE));
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
        cmd.env("KEYQUORUM_PASSPHRASE", PASSPHRASE);
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
    start_chain_with(dir, contract, nodes, &[])
}

/// [`start_chain`] with `extra` arguments to `keyquorum chain`.
pub fn start_chain_with(
    dir: &Path,
    contract: &str,
    nodes: &[NodeSpec],
    extra: &[&str],
) -> (Proc, u16) {
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
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log_file(dir, "chain.log"))
            .spawn()
            .unwrap(),
    );
    (chain, chain_port)
}

/// [`beacon_contract`]'s key modes for a fresh key at every view change.
pub const FRESH_KEYS: &str = "key_mode = \"fresh\"\nkey_mode_overrides = []";

/// The contract file of the beacon tests: a committee of four, phases long enough for loaded
/// machines, views of `view_length` blocks and the key modes `key_mode` (a TOML line or two:
/// `key_mode` and `key_mode_overrides`).
pub fn beacon_contract(chain_id: &str, view_length: u64, key_mode: &str) -> String {
    format!(
        r#"
chain_id = "{chain_id}"
first_view_change = 20
view_length = {view_length}
retry_delay = 5
max_ceremonies_per_view = 3
{key_mode}
[committee]
max_size = 4
min_size = 4
threshold = {{ percent = 66 }}
quorum = {{ percent = 75 }}
keep_previous_percent = 70
min_stake = 1
[phases]
contribute = 12
share = 15
publish = 12
wait = 12
[slashing]
misbehaviour_percent = 10
absence_percent = 0
"#
    )
}

/// The passphrase every test node's key is sealed with.
pub const PASSPHRASE: &str = "integration-test-passphrase";

/// A test network: `n` node keys in a temporary directory and `keyquorum chain` running the
/// given contract with every node funded. Nodes are started with [`Testnet::start`]; the
/// chain is killed and the directory removed when this is dropped (after the node processes
/// the test holds, if it declares them after this).
pub struct Testnet {
    /// The nodes' keys and ports.
    pub nodes: Vec<NodeSpec>,
    /// The chain's HTTP port.
    pub chain_port: u16,
    // Before the directory, so the chain dies before its files go.
    _chain: Proc,
    tmp: tempfile::TempDir,
}

impl Drop for Testnet {
    fn drop(&mut self) {
        print_logs_if_panicking(self.tmp.path());
    }
}

impl Testnet {
    /// Keys for `n` nodes and the chain on `contract`. With `sign_token`, nodes serve
    /// `POST /sign` with that token.
    pub fn new(n: usize, contract: &str, sign_token: Option<&str>) -> Self {
        Self::with_chain_args(n, contract, sign_token, &[])
    }

    /// [`Testnet::new`] with `chain_args` added to `keyquorum chain`'s arguments.
    pub fn with_chain_args(
        n: usize,
        contract: &str,
        sign_token: Option<&str>,
        chain_args: &[&str],
    ) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("pass"), format!("{PASSPHRASE}\n")).unwrap();
        let nodes: Vec<NodeSpec> = (0..n).map(|i| new_key(dir, i)).collect();
        if let Some(token) = sign_token {
            std::fs::write(dir.join("sign.token"), format!("{token}\n")).unwrap();
        }
        let (chain, chain_port) = start_chain_with(dir, contract, &nodes, chain_args);
        Testnet {
            nodes,
            chain_port,
            _chain: chain,
            tmp,
        }
    }

    /// The directory of keys, databases and logs.
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Starts node `i` ([`start_node`]).
    pub fn start(&self, i: usize, fault: Option<&str>) -> Proc {
        start_node(self.dir(), self.chain_port, &self.nodes, i, fault)
    }

    /// Starts node `i` with `extra` arguments ([`start_node_with`]).
    pub fn start_with(&self, i: usize, fault: Option<&str>, extra: &[&str]) -> Proc {
        start_node_with(self.dir(), self.chain_port, &self.nodes, i, fault, extra)
    }

    /// The status port of node `i`.
    pub fn status(&self, i: usize) -> u16 {
        self.nodes[i].status
    }
}

/// `GET path` on a local port: the status code and body (`None` while nothing answers).
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.ok()?))
}

/// The chain a node serves at `/info`.
pub async fn info(port: u16) -> Option<ChainInfo> {
    match http_get(port, "/info").await? {
        (200, body) => Some(ChainInfo::from_json(body.as_bytes()).unwrap()),
        _ => None,
    }
}

/// A round a node serves at `/public/{which}` (`latest` or a number).
pub async fn round(port: u16, which: &str) -> Option<Round> {
    match http_get(port, &format!("/public/{which}")).await? {
        (200, body) => Some(Round::from_json(body.as_bytes()).unwrap()),
        _ => None,
    }
}

/// The latest round a node serves on `chain`.
pub async fn latest_on(port: u16, chain: &ChainInfo) -> Option<u64> {
    let i = info(port).await?;
    if i.hash() != chain.hash() {
        return None;
    }
    Some(round(port, "latest").await?.round)
}

/// The sum of the samples of OpenMetrics `text` whose line starts with `prefix` and contains
/// `contains`.
pub fn metric_sum(text: &str, prefix: &str, contains: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix) && l.contains(contains))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `keyquorum beacon verify --url` on a node's status server (latest round): whether it
/// verified, and what it printed.
pub fn beacon_verify(port: u16) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["beacon", "verify", "--url"])
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
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

/// `cargo metadata` of the workspace as `Cargo.lock` resolves it (`--locked`): the packages and
/// the resolved graph with each package's enabled features.
pub fn cargo_metadata() -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("metadata is JSON")
}
