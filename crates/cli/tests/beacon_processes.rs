//! The random beacon end to end over loopback with real processes: `keyquorum chain` and four
//! `keyquorum node`s (committee of 4, t = 3). One node sends beacon partials that do not
//! verify (it still combines its own good partial with the others'). One honest member is
//! killed with SIGKILL while a view is active: rounds go on (the bad node's own partial makes
//! the third). Then a second honest member is killed too, so no node holds t good partials and
//! rounds stall, and both are restarted. What is checked, all over HTTP:
//! - rounds are produced in view 1 (fresh key), with one member down too; the stalled rounds
//!   are caught up when the killed members are back, and the first one killed, which missed
//!   rounds the others produced, has them too; rounds go on in view 2 (reshare) on the same
//!   chain;
//! - view 3 (fresh key) starts a new chain whose info names the first chain;
//! - every round every node serves verifies with `keyquorum-beacon` under the chain's info,
//!   and no round has two values across the nodes; `keyquorum beacon verify --url` verifies
//!   the latest round of a node;
//! - honest nodes name the member that sent bad partials in their metrics.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keyquorum_beacon::{ChainInfo, Round, verify_round_number};
use keyquorum_contract::query::ContractStatus;
use keyquorum_devchain::Client;

const BIN: &str = env!("CARGO_BIN_EXE_keyquorum");
const NODES: usize = 4;
const BAD_BEACON: usize = 3;
const KILLED: usize = 1;
const KILLED_TOO: usize = 2;

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
        .arg("--passphrase-file")
        .arg(dir.join("pass"))
        .env("KEYQUORUM_LOG", "info,keyquorum_node=debug,libp2p=warn")
        .stdout(Stdio::null())
        .stderr(log_file(dir, &format!("node{i}.log")));
    if i == BAD_BEACON {
        cmd.args(["--fault", "bad-beacon"]);
    }
    Proc(cmd.spawn().unwrap())
}

const CONTRACT: &str = r#"
chain_id = "beacon-processes-test"
first_view_change = 20
view_length = 150
retry_delay = 5
max_ceremonies_per_view = 3
key_mode = "reshare"
key_mode_overrides = [{ view = 3, mode = "fresh" }]
[committee]
max_size = 4
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
[slashing]
misbehaviour_percent = 10
absence_percent = 0
"#;

async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.ok()?))
}

async fn info(port: u16) -> Option<ChainInfo> {
    match http_get(port, "/info").await? {
        (200, body) => Some(ChainInfo::from_json(body.as_bytes()).unwrap()),
        _ => None,
    }
}

async fn round(port: u16, which: &str) -> Option<Round> {
    match http_get(port, &format!("/public/{which}")).await? {
        (200, body) => Some(Round::from_json(body.as_bytes()).unwrap()),
        _ => None,
    }
}

async fn contract_status(chain_port: u16) -> Option<ContractStatus> {
    Client::new(&format!("http://127.0.0.1:{chain_port}"))
        .ok()?
        .status::<ContractStatus>()
        .await
        .ok()?
        .state
}

async fn wait_for<T>(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The latest round a node serves on `chain`.
async fn latest_on(port: u16, chain: &ChainInfo) -> Option<u64> {
    let i = info(port).await?;
    if i.hash() != chain.hash() {
        return None;
    }
    Some(round(port, "latest").await?.round)
}

/// Every round `1..=upto` of `chain` from every node that serves it verifies, and every node
/// serves the same value for it.
async fn check_rounds(nodes: &[NodeSpec], chain: &ChainInfo, upto: u64) {
    let mut seen: BTreeMap<u64, Round> = BTreeMap::new();
    for n in nodes {
        if info(n.status).await.map(|i| i.hash()) != Some(chain.hash()) {
            continue;
        }
        for r in 1..=upto {
            let Some(got) = round(n.status, &r.to_string()).await else {
                // A node that lost nothing serves every round from 1; one that joined or
                // stalled serves what it stored.
                continue;
            };
            verify_round_number(chain, &got, r).unwrap();
            match seen.get(&r) {
                Some(other) => assert_eq!(other, &got, "two values for round {r}"),
                None => {
                    seen.insert(r, got);
                }
            }
        }
    }
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        (1..=upto).collect::<Vec<_>>(),
        "every round is served by some node"
    );
}

fn metric_sum(text: &str, prefix: &str, contains: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix) && l.contains(contains))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_beacon_runs_across_view_changes_with_a_killed_member_and_bad_partials() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("pass"), "integration-test-passphrase\n").unwrap();
    let nodes: Vec<NodeSpec> = (0..NODES).map(|i| new_key(dir, i)).collect();
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

    // View 1 (fresh key): rounds are produced.
    let first = wait_for("view 1's beacon", Duration::from_secs(120), async || {
        let i = info(nodes[0].status).await?;
        (latest_on(nodes[0].status, &i).await? >= 2).then_some(i)
    })
    .await;
    assert!(
        first
            .link()
            .is_some_and(|l| l.previous_chain_hash.is_none())
    );

    // Kill an honest member: the bad-partial node's own partial still makes t good ones at
    // that node, and the others get the rounds from its answers.
    procs[KILLED] = None;
    let before = latest_on(nodes[0].status, &first).await.unwrap();
    wait_for(
        "rounds with a member down",
        Duration::from_secs(30),
        async || (latest_on(nodes[0].status, &first).await? >= before + 2).then_some(()),
    )
    .await;
    // Kill a second one: two good partials at most anywhere, fewer than t.
    procs[KILLED_TOO] = None;
    let before = latest_on(nodes[0].status, &first).await.unwrap();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let stalled = latest_on(nodes[0].status, &first).await.unwrap();
    assert!(
        stalled <= before + 1,
        "rounds went on without a quorum: {before} -> {stalled}"
    );
    procs[KILLED] = Some(start_node(dir, chain_port, &nodes, KILLED));
    procs[KILLED_TOO] = Some(start_node(dir, chain_port, &nodes, KILLED_TOO));
    // The stalled rounds are caught up, on the restarted nodes too (their rounds survived,
    // and the first one killed gets the rounds it missed from the others).
    let target = stalled + 3;
    for i in [0, KILLED, KILLED_TOO] {
        wait_for("catch-up", Duration::from_secs(60), async || {
            (latest_on(nodes[i].status, &first).await? >= target).then_some(())
        })
        .await;
    }

    // View 2 (reshare): the same chain goes on.
    wait_for("view 2", Duration::from_secs(120), async || {
        (contract_status(chain_port).await?.view >= 2).then_some(())
    })
    .await;
    let after_reshare = latest_on(nodes[0].status, &first).await.unwrap() + 2;
    let upto = wait_for("rounds in view 2", Duration::from_secs(60), async || {
        let mut all = Vec::new();
        for n in &nodes {
            all.push(latest_on(n.status, &first).await?);
        }
        let min = *all.iter().min()?;
        (min >= after_reshare).then_some(min)
    })
    .await;
    for n in &nodes {
        assert_eq!(
            info(n.status).await.unwrap(),
            first,
            "a reshare keeps the chain"
        );
    }
    check_rounds(&nodes, &first, upto).await;

    // `keyquorum beacon verify` agrees.
    let out = Command::new(BIN)
        .args(["beacon", "verify", "--url"])
        .arg(format!("http://127.0.0.1:{}", nodes[0].status))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Honest nodes name the member that sent bad partials; latency from the metrics.
    let (_, metrics) = http_get(nodes[0].status, "/metrics").await.unwrap();
    assert!(
        metric_sum(
            &metrics,
            "keyquorum_beacon_partials_total",
            "result=\"bad\""
        ) >= 1.0,
        "{metrics}"
    );
    let sum = metric_sum(&metrics, "keyquorum_beacon_round_latency_seconds_sum", "");
    let count = metric_sum(&metrics, "keyquorum_beacon_round_latency_seconds_count", "");
    let combine = metric_sum(&metrics, "keyquorum_beacon_combine_seconds_sum", "");
    eprintln!(
        "node 0: {count} rounds stored, mean latency from round start {:.3} s (stalled rounds \
         included), mean combine call {:.4} s",
        sum / count,
        combine / count
    );
    for line in metrics.lines().filter(|l| {
        l.starts_with("keyquorum_beacon_round_latency_seconds_bucket")
            || l.starts_with("keyquorum_beacon_late_rounds_total")
    }) {
        eprintln!("node 0: {line}");
    }

    // View 3 (fresh key): a new chain that names the first.
    let second = wait_for("view 3's chain", Duration::from_secs(150), async || {
        let i = info(nodes[0].status).await?;
        (i.hash() != first.hash() && latest_on(nodes[0].status, &i).await? >= 2).then_some(i)
    })
    .await;
    assert_eq!(
        second.link().and_then(|l| l.previous_chain_hash),
        Some(first.hash())
    );
    check_rounds(&nodes, &second, 2).await;
}
