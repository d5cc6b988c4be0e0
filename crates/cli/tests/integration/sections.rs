//! `keyquorum sections demo`, run as a binary: the printed key chain verifies from the printed
//! genesis key, one key per elder change, and a bad node count is a usage error.

use std::process::Command;

use keyquorum_sections::KeyChain;
use keyquorum_sections::keys::{decode_key, key_bytes};

const BIN: &str = env!("CARGO_BIN_EXE_keyquorum");

#[test]
fn the_demo_prints_a_key_chain_that_verifies_from_the_genesis_key() {
    let out = Command::new(BIN)
        .args(["sections", "demo", "--nodes", "4", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let genesis = decode_key(&hex::decode(json["genesis_key"].as_str().unwrap()).unwrap()).unwrap();
    let chain: KeyChain = serde_json::from_value(json["chain"].clone()).unwrap();
    chain.verify_from(&genesis).unwrap();
    // Genesis alone, then one handover per joiner (each older than the elders before it).
    assert_eq!(chain.key_count(), 4);
    assert_eq!(
        hex::encode(key_bytes(&chain.last_key(&genesis))),
        json["section_key"].as_str().unwrap()
    );
    assert_eq!(json["elders"].as_array().unwrap().len(), 4);
    // A chain with one link changed does not verify from the same genesis key.
    let mut tampered = json["chain"].clone();
    tampered[1]["signature"] = tampered[0]["signature"].clone();
    let tampered: KeyChain = serde_json::from_value(tampered).unwrap();
    assert!(tampered.verify_from(&genesis).is_err());
}

#[test]
fn a_node_count_out_of_range_is_a_usage_error() {
    let out = Command::new(BIN)
        .args(["sections", "demo", "--nodes", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--nodes"));
}

/// `keyquorum demo --mode sections --format json`: a network grown from the genesis node to a
/// split, one elder leaving, one candidate crashed during a DKG. Checked as a client would,
/// with blst alone: every section's key chain runs from the genesis key, each key signed by its
/// parent over its 48 bytes (`BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`); the halves'
/// chains part at one key; a failure agreement excluded the crashed node; the elder that left
/// is no elder of any section.
#[test]
fn the_sections_demo_grows_to_a_split_through_a_leave_and_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("sections.html");
    let out = Command::new(BIN)
        .args(["demo", "--mode", "sections", "--json", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hex_of = |v: &serde_json::Value| hex::decode(v.as_str().unwrap()).unwrap();
    let genesis = hex_of(&json["genesis_key"]);
    let sections = json["sections"].as_array().unwrap();
    assert!(sections.len() >= 2, "no split: {json}");
    let mut last_keys = std::collections::BTreeSet::new();
    for s in sections {
        let chain = s["key_chain"].as_array().unwrap();
        let mut parent = genesis.clone();
        for link in chain {
            assert_eq!(hex_of(&link["parent_key"]), parent);
            let key = hex_of(&link["key"]);
            let pk = blst::min_pk::PublicKey::key_validate(&parent).unwrap();
            let sig =
                blst::min_pk::Signature::sig_validate(&hex_of(&link["signature"]), true).unwrap();
            assert_eq!(
                sig.verify(
                    true,
                    &key,
                    b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_",
                    &[],
                    &pk,
                    true
                ),
                blst::BLST_ERROR::BLST_SUCCESS
            );
            parent = key;
        }
        last_keys.insert(parent);
        assert!(!s["elders"].as_array().unwrap().is_empty());
    }
    assert_eq!(
        last_keys.len(),
        sections.len(),
        "two sections end in one key"
    );
    let crashed = json["crashed"].as_array().unwrap();
    assert_eq!(crashed.len(), 1);
    assert!(
        json["failure_agreements"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["excluded"].as_array().unwrap().contains(&crashed[0])),
        "{json}"
    );
    let left: Vec<&serde_json::Value> = json["departures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["elder"] == true)
        .map(|d| &d["name"])
        .collect();
    assert_eq!(left.len(), 1, "{json}");
    for s in sections {
        assert!(!s["elders"].as_array().unwrap().contains(left[0]));
    }
    assert!(
        std::fs::read_to_string(&report)
            .unwrap()
            .contains("Failure agreements")
    );
    // The timeline: the nodes join one by one, the first handover is to two elders, and the
    // split is two handovers signed by one key, to the two halves.
    let timeline = json["timeline"].as_array().unwrap();
    let of = |kind: &str| -> Vec<&serde_json::Value> {
        timeline.iter().filter(|e| e["event"] == kind).collect()
    };
    assert_eq!(of("joined").len(), 19);
    assert_eq!(timeline[0]["event"], "joined");
    let handed = of("handed_over");
    assert_eq!(handed[0]["elders"], 2);
    assert_eq!(hex_of(&handed[0]["parent_key"]), genesis);
    let split: Vec<&&serde_json::Value> = handed
        .iter()
        .filter(|h| h["prefix"].as_str().unwrap().len() == 1)
        .take(2)
        .collect();
    assert_eq!(split.len(), 2);
    assert_eq!(split[0]["parent_key"], split[1]["parent_key"]);
    assert_ne!(split[0]["prefix"], split[1]["prefix"]);
    assert_eq!(of("left").len(), 1);
    assert!(!of("failure_agreed").is_empty());

    let refused = Command::new(BIN)
        .args(["demo", "--mode", "sections", "--faulty", "1"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("an option of the contract demo"));
}

#[test]
fn more_elders_than_the_handover_checks_cover_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["sections", "node", "--elder-count", "13", "--key-file"])
        .arg(dir.path().join("missing.key"))
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--p2p-listen",
            "/ip4/127.0.0.1/tcp/0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--elder-count must be between 1 and 12"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
