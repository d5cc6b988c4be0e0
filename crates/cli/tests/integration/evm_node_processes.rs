//! Four `keyquorum node` processes against the coordinator contract on anvil
//! (`--chain evm`): the contract deployed with `keyquorum deploy`, each node registering from
//! its own funded chain key, the view change started on chain by a node once it is due, the
//! DKG's posts through the contract, the magic block's partial signatures combined off chain
//! and the view activated on chain by a member, and the group key the contract holds the one
//! every member reports; then the next view change, activated with the handover signature of
//! the first view's committee as well. anvil is the pinned npm package in `contracts/` (`npm ci`
//! there); without it the test fails saying so.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, NodeSpec, Proc, log_file, new_key, wait_for};
use keyquorum_devchain::Client as HttpClient;
use keyquorum_evm::alloy_primitives::{Address, U256};
use keyquorum_evm::anvil::Anvil;
use keyquorum_evm::client::{Client, chain_key};
use keyquorum_evm::{Coordinator, g1_point};
use keyquorum_node::status::Status as NodeStatus;

const NODES: usize = 4;
const CHAIN_NAME: &str = "kq-evm-processes";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn node_status(port: u16) -> Option<NodeStatus> {
    HttpClient::new(&format!("http://127.0.0.1:{port}"))
        .ok()?
        .with_timeout(Duration::from_secs(5))
        .get("/status")
        .await
        .ok()
}

fn start_evm_node(
    dir: &Path,
    rpc: &str,
    contract: Address,
    deployed_at: u64,
    nodes: &[NodeSpec],
    i: usize,
) -> Proc {
    let n = &nodes[i];
    let boot = &nodes[if i == 0 { 1 } else { 0 }];
    let config = dir.join(format!("node{i}.toml"));
    // The chain name and deployment block from the file, the rest from flags.
    std::fs::write(
        &config,
        format!(
            "[evm]\nchain_name = \"{CHAIN_NAME}\"\nfrom_block = {deployed_at}\nconfirmations = 1\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("node")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join(format!("node{i}")))
        .args(["--chain", "evm", "--rpc", rpc, "--contract"])
        .arg(contract.to_string())
        .arg("--chain-key-file")
        .arg(dir.join(format!("node{i}.chain-key")))
        .arg("--p2p-listen")
        .arg(format!("/ip4/127.0.0.1/tcp/{}", n.p2p))
        .arg("--bootstrap")
        .arg(format!(
            "/ip4/127.0.0.1/tcp/{}/p2p/{}",
            boot.p2p, boot.peer_id
        ))
        .arg("--key-file")
        .arg(&n.key)
        .args(["--stake", "1000", "--no-beacon"])
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
    Proc(cmd.spawn().unwrap())
}

fn field<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_run_a_view_change_coordinated_by_the_evm_contract() {
    let _network = crate::common::one_network_at_a_time().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _logs = crate::common::LogsOnFailure(dir);
    // One block a second: the phases' deadlines are block numbers.
    let anvil = Anvil::start(&repo(), Some(1)).unwrap_or_else(|e| panic!("{e}"));
    let ether = U256::from(10u128.pow(18));

    let deployer = chain_key(b"evm processes deployer");
    anvil.fund(deployer.address(), ether).await.unwrap();
    std::fs::write(dir.join("deployer.key"), hex::encode(deployer.to_bytes())).unwrap();
    std::fs::write(
        dir.join("coordinator.toml"),
        format!(
            "chain_name = \"{CHAIN_NAME}\"\nmax_size = 4\nmin_size = 4\nmin_stake = 100\n\
             contribute_blocks = 8\nshare_blocks = 8\npublish_blocks = 8\nwait_blocks = 10\n\
             first_view_change = 0\nview_length = 5\n"
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["deploy", "--rpc", anvil.url(), "--key-file"])
        .arg(dir.join("deployer.key"))
        .arg("--config")
        .arg(dir.join("coordinator.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let contract: Address = field(&text, "contract").parse().unwrap();
    let deployed_at: u64 = field(&text, "block").parse().unwrap();

    std::fs::write(dir.join("pass"), "integration-test-passphrase\n").unwrap();
    let nodes: Vec<NodeSpec> = (0..NODES).map(|i| new_key(dir, i)).collect();
    for i in 0..NODES {
        let key = chain_key(format!("evm processes node {i}").as_bytes());
        anvil.fund(key.address(), ether).await.unwrap();
        std::fs::write(
            dir.join(format!("node{i}.chain-key")),
            hex::encode(key.to_bytes()),
        )
        .unwrap();
    }
    let _procs: Vec<Proc> = (0..NODES)
        .map(|i| start_evm_node(dir, anvil.url(), contract, deployed_at, &nodes, i))
        .collect();

    let reader = Client::connect(anvil.url(), deployer, contract)
        .await
        .unwrap();
    wait_for("registrations", Duration::from_secs(60), async || {
        let n = reader.read(Coordinator::eligibleCountCall {}).await.ok()?;
        (n == U256::from(NODES)).then_some(())
    })
    .await;
    wait_for(
        "the view change started",
        Duration::from_secs(30),
        async || {
            let id = reader.read(Coordinator::runningCall {}).await.ok()?;
            (!id.is_zero()).then_some(())
        },
    )
    .await;
    wait_for("view 1 on chain", Duration::from_secs(120), async || {
        let v = reader.read(Coordinator::currentViewCall {}).await.ok()?;
        (v == 1).then_some(())
    })
    .await;

    // Every member reports the view and the group key the contract verified the signature
    // under.
    let on_chain = reader.read(Coordinator::groupKeyCall {}).await.unwrap();
    let statuses = wait_for(
        "every node in view 1",
        Duration::from_secs(30),
        async || {
            let mut all = Vec::new();
            for n in &nodes {
                let s = node_status(n.status).await?;
                if s.view != 1 || s.group_key.is_none() {
                    return None;
                }
                all.push(s);
            }
            Some(all)
        },
    )
    .await;
    let group_key = statuses[0].group_key.clone().unwrap();
    let mut compressed = [0u8; 48];
    hex::decode_to_slice(&group_key, &mut compressed).unwrap();
    assert_eq!(on_chain.to_vec(), g1_point(&compressed).unwrap().to_vec());
    let mut indices: Vec<u64> = statuses
        .iter()
        .map(|s| {
            assert_eq!(s.group_key.as_deref(), Some(group_key.as_str()));
            assert!(s.magic_block_mismatch.is_none());
            s.share_index.expect("every node is a member")
        })
        .collect();
    indices.sort();
    assert_eq!(indices, vec![1, 2, 3, 4]);

    // The next view change: a fresh key (the contract runs no resharing), activated with the
    // new committee's signature and the previous committee's handover, both combined off chain.
    wait_for("view 2 on chain", Duration::from_secs(120), async || {
        let v = reader.read(Coordinator::currentViewCall {}).await.ok()?;
        (v == 2).then_some(())
    })
    .await;
    let on_chain = reader.read(Coordinator::groupKeyCall {}).await.unwrap();
    let second = wait_for(
        "every node in view 2",
        Duration::from_secs(30),
        async || {
            let mut keys = Vec::new();
            for n in &nodes {
                let s = node_status(n.status).await?;
                if s.view != 2 {
                    return None;
                }
                keys.push(s.group_key?);
            }
            Some(keys)
        },
    )
    .await;
    assert!(second.iter().all(|k| *k == second[0]), "{second:?}");
    assert_ne!(second[0], group_key, "a fresh key");
    hex::decode_to_slice(&second[0], &mut compressed).unwrap();
    assert_eq!(on_chain.to_vec(), g1_point(&compressed).unwrap().to_vec());
}
