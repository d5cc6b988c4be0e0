//! Four `keyquorum node` processes against the coordinator contract on anvil
//! (`--chain evm`): the contract deployed with `keyquorum deploy`, each node registering from
//! its own funded chain key, the view change started on chain by a node once it is due, the
//! DKG's posts through the contract, the magic block's partial signatures combined off chain
//! and the view activated on chain by a member, and the group key the contract holds the one
//! every member reports; then the next view change, activated with the handover signature of
//! the first view's committee as well. One node runs `--fault forge-ack-aggregate`: its
//! publications carry a forged ack aggregate, every board disqualifies it as a dealer, and an
//! honest node proves the fault on chain from the post itself (`proveBadAckAggregate`), which
//! slashes it and pays the reporter. anvil is the pinned npm package in `contracts/` (`npm ci`
//! there); without it the test fails saying so.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, NodeSpec, Proc, log_file, new_key, wait_for};
use keyquorum_devchain::Client as HttpClient;
use keyquorum_evm::alloy_primitives::{Address, U256};
use keyquorum_evm::anvil::Anvil;
use keyquorum_evm::client::{BoardInput, Client, Follower, chain_key};
use keyquorum_evm::{Coordinator, g1_point};
use keyquorum_node::status::Status as NodeStatus;

const NODES: usize = 4;
/// The node that forges its ack aggregates.
const FORGER: usize = 3;
const STAKE: u64 = 1000;
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
        .args(["--stake", &STAKE.to_string(), "--no-beacon"])
        .arg("--http-listen")
        .arg(format!("127.0.0.1:{}", n.status))
        .env("KEYQUORUM_LOG", "info,keyquorum_node=debug,libp2p=warn")
        .stdout(Stdio::null())
        .stderr(log_file(dir, &format!("node{i}.log")));
    if i == FORGER {
        cmd.args(["--fault", "forge-ack-aggregate"]);
    }
    if i.is_multiple_of(2) {
        cmd.arg("--passphrase-file").arg(dir.join("pass"));
    } else {
        cmd.env("KEYQUORUM_PASSPHRASE", "integration-test-passphrase");
    }
    Proc(cmd.spawn().unwrap())
}

/// Every `Slashed` log of the contract so far.
async fn slashes(reader: &Client, from: u64) -> Vec<Coordinator::Slashed> {
    let mut follower = Follower::new(reader.provider().clone(), reader.contract(), from, 0);
    let Ok((blocks, _)) = follower.poll().await else {
        return Vec::new();
    };
    blocks
        .into_iter()
        .flat_map(|b| b.inputs)
        .filter_map(|i| match i {
            BoardInput::Slashed(s) => Some(s),
            _ => None,
        })
        .collect()
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
             contribute_blocks = 6\nshare_blocks = 6\npublish_blocks = 6\nwait_blocks = 8\n\
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
    let mut accounts = Vec::new();
    for i in 0..NODES {
        let key = chain_key(format!("evm processes node {i}").as_bytes());
        accounts.push(key.address());
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
    // The forger's contribution is in no group key, so the magic block leaves it out; the
    // honest nodes hold shares at distinct seats.
    let mut indices = Vec::new();
    for (i, s) in statuses.iter().enumerate() {
        assert_eq!(s.group_key.as_deref(), Some(group_key.as_str()));
        assert!(s.magic_block_mismatch.is_none());
        if i == FORGER {
            assert_eq!(s.share_index, None, "the forger is no member");
        } else {
            indices.push(s.share_index.expect("every honest node is a member"));
        }
    }
    indices.sort();
    indices.dedup();
    assert!(indices.len() == NODES - 1 && indices.iter().all(|i| (1..=4).contains(i)));

    // The forger was slashed in view 1's ceremony on an honest node's proof, built from its
    // own signed post on chain: its stake dropped by the amount, the reporter was paid.
    let forger = accounts[FORGER];
    let slash = wait_for("the forger slashed", Duration::from_secs(30), async || {
        slashes(&reader, deployed_at).await.into_iter().next()
    })
    .await;
    assert_eq!(slash.culprit, forger);
    assert_eq!(slash.fault, "bad_ack_signature");
    assert!(
        accounts.contains(&slash.reporter) && slash.reporter != forger,
        "{slash:?}"
    );
    assert!(slash.reward > U256::ZERO && slash.amount > slash.reward);
    let view_1_ceremony = reader
        .read(Coordinator::activeCeremonyCall {})
        .await
        .unwrap();
    assert_eq!(slash.ceremony, view_1_ceremony);
    let stake = reader
        .read(Coordinator::stakeOfCall { account: forger })
        .await
        .unwrap();
    assert_eq!(stake.stake + slash.amount, U256::from(STAKE));
    for honest in accounts.iter().filter(|a| **a != forger) {
        let s = reader
            .read(Coordinator::stakeOfCall { account: *honest })
            .await
            .unwrap();
        assert_eq!(s.stake, U256::from(STAKE));
    }

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

    // The forger, still a member, forged again in view 2's ceremony: slashed again there, once.
    let view_2_ceremony = reader
        .read(Coordinator::activeCeremonyCall {})
        .await
        .unwrap();
    let all = wait_for(
        "the forger slashed in view 2",
        Duration::from_secs(30),
        async || {
            let all = slashes(&reader, deployed_at).await;
            all.iter()
                .any(|s| s.ceremony == view_2_ceremony)
                .then_some(all)
        },
    )
    .await;
    assert_eq!(all.len(), 2, "one slash per ceremony: {all:?}");
    assert!(all.iter().all(|s| s.culprit == forger));
}
