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
