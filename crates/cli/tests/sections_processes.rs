//! Sections on real processes: `keyquorum sections node`s over libp2p on loopback, no chain.
//!
//! A genesis node draws the genesis key alone; three nodes join one by one through it, and
//! each join promotes the joiner by a DKG among the new elders over the network, handed over
//! by the current elders. Every node's key chain, fetched over HTTP, verifies from the genesis
//! key, ends in the section key, and the SAP carries that key's signature. Then an elder is
//! killed and restarted on its data directory: it comes back with the same chain and its key
//! share, and takes part as candidate and as handing-over elder when a fifth node joins (the
//! DKG needs every candidate, the start all but one of the four elders).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, NodeSpec, Proc, log_file, new_key, wait_for};
use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_node::sections_node::http::SectionView;
use keyquorum_sections::keys::{decode_key, decode_signature};
use keyquorum_sections::wire::decode_sap;

const NODES: usize = 5;
const ROUND_MS: &str = "600";

fn start(dir: &Path, nodes: &[NodeSpec], i: usize, genesis_key: Option<&str>) -> Proc {
    let n = &nodes[i];
    let mut cmd = Command::new(BIN);
    cmd.args(["sections", "node", "--data-dir"])
        .arg(dir.join(format!("node{i}")))
        .arg("--p2p-listen")
        .arg(format!("/ip4/127.0.0.1/tcp/{}", n.p2p))
        .arg("--key-file")
        .arg(&n.key)
        .arg("--http-listen")
        .arg(format!("127.0.0.1:{}", n.status))
        .args(["--round-ms", ROUND_MS])
        .env("KEYQUORUM_LOG", "info,keyquorum_node=debug,libp2p=warn")
        .stdout(Stdio::null())
        .stderr(log_file(dir, &format!("node{i}.log")));
    if let Some(key) = genesis_key {
        let boot = &nodes[0];
        cmd.arg("--bootstrap")
            .arg(format!(
                "/ip4/127.0.0.1/tcp/{}/p2p/{}",
                boot.p2p, boot.peer_id
            ))
            .args(["--genesis-key", key]);
    }
    if i.is_multiple_of(2) {
        cmd.arg("--passphrase-file").arg(dir.join("pass"));
    } else {
        cmd.env("KEYQUORUM_PASSPHRASE", "integration-test-passphrase");
    }
    Proc(cmd.spawn().unwrap())
}

async fn view(n: &NodeSpec) -> Option<SectionView> {
    reqwest::get(format!("http://127.0.0.1:{}/sections", n.status))
        .await
        .ok()?
        .json::<SectionView>()
        .await
        .ok()
}

/// Waits until nodes `up` all hold the SAP of generation `generation` with `elders` elders,
/// all elders, on the same section key; returns their views.
async fn settled(nodes: &[NodeSpec], up: &[usize], generation: u64) -> Vec<SectionView> {
    wait_for(
        &format!("generation {generation} at nodes {up:?}"),
        Duration::from_secs(90),
        async || {
            let mut views = Vec::new();
            for &i in up {
                let v = view(&nodes[i]).await?;
                if v.generation != generation || !v.elder || v.elders.len() != up.len() {
                    return None;
                }
                views.push(v);
            }
            views
                .iter()
                .all(|v| v.section_key == views[0].section_key && v.key_chain == views[0].key_chain)
                .then_some(views)
        },
    )
    .await
}

/// What a client does with a node's view: the chain from the genesis key, its end, and the
/// SAP's signature by the section key.
fn verify(v: &SectionView, genesis_hex: &str) {
    assert_eq!(v.genesis_key, genesis_hex);
    let genesis = decode_key(&hex::decode(genesis_hex).unwrap()).unwrap();
    v.key_chain.verify_from(&genesis).unwrap();
    let section_key = decode_key(&hex::decode(&v.section_key).unwrap()).unwrap();
    assert_eq!(v.key_chain.last_key(&genesis), section_key);
    let signed = v.signed_sap.as_ref().expect("a SAP past genesis is signed");
    let sap = decode_sap(&hex::decode(&signed.sap).unwrap()).unwrap();
    assert_eq!(sap.section_key, section_key);
    let sig = decode_signature(&hex::decode(&signed.sap_signature).unwrap()).unwrap();
    tbls::verify::<MinPk>(&section_key, &sap.signing_bytes(), &sig).unwrap();
    let mut names: Vec<String> = sap.names().iter().map(|n| hex::encode(n.0)).collect();
    names.sort();
    let mut listed: Vec<String> = v.elders.iter().map(|e| e.name.clone()).collect();
    listed.sort();
    assert_eq!(names, listed);
    // Each key is signed by its predecessor, from the genesis key on.
    let mut parent = genesis;
    for link in v.key_chain.links() {
        assert_eq!(link.parent_key, parent);
        link.verify().unwrap();
        parent = link.key;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sections_grow_over_the_network_and_an_elder_recovers_from_its_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("pass"), "integration-test-passphrase\n").unwrap();
    let nodes: Vec<NodeSpec> = (0..NODES).map(|i| new_key(dir, i)).collect();

    let mut procs: Vec<Option<Proc>> = vec![Some(start(dir, &nodes, 0, None))];
    let genesis = wait_for("the genesis node", Duration::from_secs(30), async || {
        view(&nodes[0]).await
    })
    .await;
    assert_eq!(genesis.generation, 1);
    assert!(genesis.elder && genesis.key_chain.links().is_empty());
    assert_eq!(genesis.section_key, genesis.genesis_key);
    let genesis_hex = genesis.genesis_key.clone();

    for i in 1..4 {
        procs.push(Some(start(dir, &nodes, i, Some(&genesis_hex))));
        let up: Vec<usize> = (0..=i).collect();
        for v in settled(&nodes, &up, i as u64 + 1).await {
            verify(&v, &genesis_hex);
        }
    }
    // The chain file holds what HTTP serves.
    let file: SectionView =
        serde_json::from_slice(&std::fs::read(dir.join("node1").join("key_chain.json")).unwrap())
            .unwrap();
    verify(&file, &genesis_hex);
    assert_eq!(file.generation, 4);

    // Kill an elder and restart it on its store.
    let before = view(&nodes[2]).await.unwrap();
    procs[2] = None;
    procs[2] = Some(start(dir, &nodes, 2, Some(&genesis_hex)));
    let after = wait_for("the restarted elder", Duration::from_secs(30), async || {
        view(&nodes[2]).await
    })
    .await;
    assert_eq!(after.key_chain, before.key_chain);
    assert_eq!(after.section_key, before.section_key);
    assert!(after.elder, "the restarted elder holds its share again");

    // A fifth node joins: the restarted elder must sign, deal and hand over.
    procs.push(Some(start(dir, &nodes, 4, Some(&genesis_hex))));
    let views = settled(&nodes, &[0, 1, 2, 3, 4], 5).await;
    for v in &views {
        verify(v, &genesis_hex);
    }
    assert!(views[0].key_chain.links().len() == 4);
    drop(procs);
}
