//! The operator's reference of the contract configuration (`docs/architecture.md`, "The
//! contract configuration") names every key a configuration file can hold.

use keyquorum_contract::config::{ContractConfig, KeyMode, SigningKeyConfig, ViewKeyMode};
use keyquorum_dkg::identity::IdentityKeypair;
use serde_json::Value;

const ARCHITECTURE: &str = include_str!("../../../../docs/architecture.md");

/// The keys in the first column of the section's table.
fn documented_keys() -> Vec<String> {
    let start = ARCHITECTURE
        .find("## The contract configuration\n")
        .expect("the section exists");
    let section = &ARCHITECTURE[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |e| e + 3);
    section[..end]
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(key, _)| key.to_string()))
        .collect()
}

/// Every key path of `value`: tables are entered, a list of tables is one key.
fn key_paths(value: &Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                key_paths(child, &path, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

#[test]
fn every_configuration_key_is_in_the_operators_reference() {
    // Every optional part present, so that its keys are printed too.
    let mut config = ContractConfig::defaults("docs", 7)
        .fund(IdentityKeypair::from_seed(&[7; 32]).unwrap().public(), 10);
    config.key_mode_overrides.push(ViewKeyMode {
        view: 3,
        mode: KeyMode::Fresh,
    });
    config.dkg.signing_key = Some(SigningKeyConfig::SECP256K1_FROST);
    config.validate().unwrap();
    let mut paths = Vec::new();
    key_paths(&serde_json::to_value(&config).unwrap(), "", &mut paths);
    assert!(paths.len() > 20, "{paths:?}");

    let documented = documented_keys();
    let missing: Vec<&String> = paths
        .iter()
        .filter(|path| {
            // A key, or the table it is in when the row describes the table's values (the
            // thresholds' `percent` or `count`, the signing key's fields).
            let parent = path.rsplit_once('.').map(|(p, _)| p);
            !documented
                .iter()
                .any(|d| d == *path || Some(d.as_str()) == parent)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/architecture.md: {missing:?}"
    );
    // No row for a key that does not exist.
    let stale: Vec<&String> = documented
        .iter()
        .filter(|d| {
            !paths
                .iter()
                .any(|p| p == *d || p.starts_with(&format!("{d}.")))
        })
        .collect();
    assert!(stale.is_empty(), "documented but not a key: {stale:?}");
}
