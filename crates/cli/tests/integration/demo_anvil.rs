//! `keyquorum demo --chain anvil --format json` end to end: four `keyquorum node --chain evm`
//! processes against the coordinator contract on an anvil the demo starts, with one-second
//! blocks. The demo deploys the contract with `keyquorum deploy`'s code, each node registers
//! from its own funded account, the nodes start each view change on chain and post the DKG
//! through the contract, and a member activates the view. View 1 makes a fresh key; view 2
//! reshares it (view 1's members deal, the key stays) and is activated with the handover
//! signature of view 1's committee as well. One node runs `--fault forge-ack-aggregate`: every
//! board disqualifies it as a dealer in view 1, and an honest node proves the fault on chain
//! from the post itself (`proveBadAckAggregate`), which slashes it and pays the reporter; the
//! honest members take turns, so one proof is mined. Left out of view 1's block, it deals
//! nothing in the reshare, where it only plays and gets a share of the kept key. The demo itself fails unless the group key the contract
//! holds after each activation is the magic block's, every node reports it, each committee
//! signature verifies with blst and the chain of magic blocks verifies from the first key.
//! anvil is the pinned npm package in `contracts/` (`npm ci` there); without it the demo
//! fetches the same pinned package, or fails saying so.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_keyquorum");
const NODES: usize = 4;
/// The demo's faulty node ranks last in the first committee.
const FORGER: &str = "node-3";

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anvil_demo_slashes_the_forger_on_chain_and_reshares_the_key() {
    let _network = crate::common::network_slot().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _logs = crate::common::LogsOnFailure(dir);
    let out = Command::new(BIN)
        .args([
            "demo",
            "--chain",
            "anvil",
            "--nodes",
            "4",
            "--committee",
            "4",
        ])
        .args(["--views", "2", "--format", "json", "--report"])
        .arg(dir.join("report.html"))
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "demo failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(report["chain"], "anvil");
    assert_eq!(report["faulty"], serde_json::json!([FORGER]));

    // Every node registered with its stake; the forger lost stake, the others none.
    let stakes = report["stakes"].as_array().unwrap();
    assert_eq!(stakes.len(), NODES);
    let mut honest_accounts = BTreeSet::new();
    let mut registered_forger = 0;
    let mut forger_account = String::new();
    for s in stakes {
        let registered = u64_of(&s["registered"]);
        let now = u64_of(&s["stake"]);
        if s["node"] == FORGER {
            assert_eq!(s["faulty"], true);
            assert!(now < registered, "{s}");
            registered_forger = registered;
            forger_account = s["account"].as_str().unwrap().to_owned();
        } else {
            assert_eq!(now, registered, "an honest stake changed: {s}");
            honest_accounts.insert(s["account"].as_str().unwrap().to_owned());
        }
    }

    let views = report["views"].as_array().unwrap();
    assert_eq!(views.len(), 2, "{views:?}");
    let mut stake_before = registered_forger;
    let mut keys = Vec::new();
    let mut slashes = 0;
    for (i, v) in views.iter().enumerate() {
        let view = i as u64 + 1;
        assert_eq!(u64_of(&v["view"]), view);
        assert_eq!(v["activated"], true, "{v}");
        // View 1 makes the key, view 2 reshares it; the previous committee hands over.
        assert_eq!(v["key_mode"], if view == 1 { "fresh" } else { "reshare" });
        assert_eq!(v["previous_signature"].is_string(), view > 1, "{v}");
        assert_eq!(v["signature"]["verified"], true);
        let activation = &v["activation"];
        assert!(u64_of(&activation["block"]) > 0 && u64_of(&activation["gas_used"]) > 0);
        assert_eq!(activation["tx_hash"].as_str().unwrap().len(), 66);
        let key = v["group_public_key"].as_str().unwrap().to_owned();

        // Every node follows the view with its key. In view 1 the forger's contribution is in
        // no group key, so the magic block leaves it out; in view 2 it only plays (view 1's
        // members deal) and takes a seat. The members hold distinct seats.
        let nodes = v["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), NODES);
        let mut indices = BTreeSet::new();
        for n in nodes {
            assert!(u64_of(&n["view"]) >= view);
            assert!(n["magic_block_mismatch"].is_null(), "{n}");
            if u64_of(&n["view"]) == view {
                assert!(
                    n["group_key"].is_null() || n["group_key"] == key.as_str(),
                    "{n}"
                );
            }
            if n["node"] == FORGER && view == 1 {
                assert!(n["share_index"].is_null(), "the forger is no member: {n}");
            } else {
                assert_eq!(n["group_key"], key.as_str(), "{n}");
                indices.insert(u64_of(&n["share_index"]));
            }
        }
        let members = if view == 1 { NODES - 1 } else { NODES };
        assert_eq!(indices.len(), members);
        assert!(indices.iter().all(|i| (1..=NODES as u64).contains(i)));
        assert_eq!(
            v["members"].as_array().unwrap().contains(&FORGER.into()),
            view > 1
        );
        keys.push(key);
        let view_slashes = v["slashes"].as_array().unwrap();
        if view > 1 {
            assert!(
                view_slashes.is_empty(),
                "nothing to slash: {view_slashes:?}"
            );
            continue;
        }

        // The forger, a dealer of view 1's ceremony, was slashed in it on an honest node's
        // proof, once: its stake dropped by the amount, the reporter was paid.
        let ceremony = u64_of(&v["ceremony_number"]);
        assert_eq!(
            view_slashes.len(),
            1,
            "one slash per ceremony: {view_slashes:?}"
        );
        let s = &view_slashes[0];
        assert_eq!(s["culprit"], FORGER);
        assert_eq!(s["culprit_account"], forger_account.as_str());
        assert_eq!(s["fault"], "bad_ack_signature");
        assert_eq!(u64_of(&s["ceremony_number"]), ceremony);
        assert!(
            honest_accounts.contains(s["reporter_account"].as_str().unwrap()),
            "{s}"
        );
        let (amount, reward) = (u64_of(&s["amount"]), u64_of(&s["reward"]));
        assert!(reward > 0 && amount > reward, "{s}");
        assert_eq!(u64_of(&s["burned"]), amount - reward);
        assert_eq!(u64_of(&s["stake_after"]) + amount, stake_before, "{s}");
        stake_before = u64_of(&s["stake_after"]);
        slashes += 1;
    }
    assert_eq!(slashes, 1);
    assert_eq!(keys[0], keys[1], "the reshare keeps the key");
    let last_stake = stakes.iter().find(|s| s["node"] == FORGER).unwrap()["stake"].clone();
    assert_eq!(u64_of(&last_stake), stake_before);

    // Gas per kind of transaction: registrations, both kinds of post, two activations and
    // the proof that landed.
    let gas = report["gas"].as_array().unwrap();
    let kind = |k: &str| {
        gas.iter()
            .find(|g| g["kind"] == k)
            .unwrap_or_else(|| panic!("no {k} in {gas:?}"))
    };
    assert_eq!(u64_of(&kind("register")["count"]), NODES as u64);
    assert!(u64_of(&kind("post (contribution)")["gas_used"]) > 0);
    assert!(u64_of(&kind("post (publication)")["gas_used"]) > 0);
    let activate = kind("activate");
    assert_eq!(
        u64_of(&activate["count"]) - u64_of(&activate["reverted"]),
        2
    );
    // The new committee's members take turns activating a view (`keyquorum_evm::stagger`):
    // without turns each member that combined the signatures activates at once, and the
    // copies mined with the first revert (three of five activations did, in a run before the
    // turns). One duplicate is tolerated, as for the proofs below.
    assert!(u64_of(&activate["reverted"]) <= 1, "{activate}");
    // The nodes take turns starting a view change too: without turns every node starts it in
    // the same block (six of eight calls reverted in a run before the turns).
    let start = kind("startViewChange");
    assert!(u64_of(&start["reverted"]) <= 1, "{start}");
    // The honest members take turns proving a fault (`keyquorum_evm::stagger`): each fault is
    // proven by one mined transaction. Without turns the three honest members all prove each
    // fault from the same confirmed block, and the copies mined with the first revert. A
    // duplicate remains possible when the first prover is held up for a whole turn (its own
    // posts go first) on a loaded machine, so one is tolerated.
    let proofs = kind("proveBadAckAggregate");
    assert_eq!(
        u64_of(&proofs["count"]) - u64_of(&proofs["reverted"]),
        1,
        "{proofs}"
    );
    assert!(u64_of(&proofs["reverted"]) <= 1, "{proofs}");
}

#[test]
fn the_anvil_demo_refuses_what_the_contract_cannot_do() {
    for (args, says) in [
        (&["--variant", "complaint"][..], "ack-or-reveal"),
        (
            &["--curve", "secp256k1", "--variant", "complaint"][..],
            "secp256k1",
        ),
        (&["--fault", "equivocate"][..], "forge-ack-aggregate"),
        (
            &["--nodes", "4", "--committee", "4", "--faulty", "2"][..],
            "quorum",
        ),
    ] {
        let out = Command::new(BIN)
            .args(["demo", "--chain", "anvil"])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(says) && err.contains("anvil"),
            "{args:?}: {err}"
        );
    }
}
