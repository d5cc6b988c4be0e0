//! What the sections process tests share: starting `keyquorum sections node`, reading a node's
//! `GET /sections`, and checking a view as a client would, from the genesis key alone.

use std::path::Path;
use std::process::{Command, Stdio};

use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_node::keystore::{self, Passphrase};
use keyquorum_node::sections_node::http::SectionView;
use keyquorum_node::sections_node::identity::section_node_key;
use keyquorum_sections::Name;
use keyquorum_sections::keys::{decode_key, decode_signature};
use keyquorum_sections::wire::decode_sap;

use super::{BIN, NodeSpec, PASSPHRASE, Proc, log_file};

/// Starts `keyquorum sections node` for `nodes[i]` in `dir/node{i}`, joining through node 0
/// when `genesis_key` is given, with `extra` arguments.
pub fn start(
    dir: &Path,
    nodes: &[NodeSpec],
    i: usize,
    genesis_key: Option<&str>,
    round_ms: &str,
    extra: &[&str],
) -> Proc {
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
        .args(["--round-ms", round_ms])
        .args(extra)
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
        cmd.env("KEYQUORUM_PASSPHRASE", PASSPHRASE);
    }
    Proc(cmd.spawn().unwrap())
}

/// The section name of the node holding keystore `n`, as its section node key fixes it.
pub fn name_of(n: &NodeSpec) -> Name {
    let keys = keystore::read(&n.key, &Passphrase::new(PASSPHRASE)).unwrap();
    Name::of(&tbls::public_key::<MinPk>(&section_node_key(&keys)))
}

/// The node's `GET /sections`, if it answers.
pub async fn view(n: &NodeSpec) -> Option<SectionView> {
    reqwest::get(format!("http://127.0.0.1:{}/sections", n.status))
        .await
        .ok()?
        .json::<SectionView>()
        .await
        .ok()
}

/// What a client does with a node's view: the chain from the genesis key, its end, and the
/// SAP's signature by the section key, which must list the view's elders.
pub fn verify(v: &SectionView, genesis_hex: &str) {
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
    let mut prefix = Vec::new();
    sap.prefix.encode(&mut prefix);
    assert_eq!(hex::encode(prefix), v.prefix);
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
