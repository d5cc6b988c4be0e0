//! `keyquorum demo` end to end (four node processes, a fresh key then a reshare) with `--format
//! json`: the beacon field carries the chain info as served and every round fetched, every
//! round verifies under its chain's info, no round has two values, and the rounds span the
//! view change on one chain, numbered from 1 without a gap; the sign field carries a threshold
//! signature made on demand by the last view's committee, which `blst` verifies under the last
//! view's group key on the signed bytes built here from the domain and message. Rounds carry the
//! latency the serving node's timing gives (its stored time less the round's scheduled start),
//! and the HTML report plots them with the view changes marked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use keyquorum_beacon::{ChainInfo, Round, verify_round_number};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_keyquorum");

/// Runs `keyquorum demo` with `args` and its data under `dir`; fails the test, with the demo's
/// stderr, if the demo fails.
fn run_demo(args: &[&str], dir: &Path) -> Output {
    let out = Command::new(BIN)
        .arg("demo")
        .args(args)
        .arg("--data-dir")
        .arg(dir.join("work"))
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The demo's `--format json` report.
fn demo_json(args: &[&str], dir: &Path) -> Value {
    let out = run_demo(&[args, &["--format", "json"]].concat(), dir);
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// The strings of a JSON array (node names), as a set.
fn strings(array: &Value) -> BTreeSet<&str> {
    array
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_str().expect("a string"))
        .collect()
}

/// Each `(args, expected)` is a usage error (exit status 2) whose message contains `expected`.
fn assert_usage_errors(cases: &[(&[&str], &str)]) {
    for (args, expected) in cases {
        let refused = Command::new(BIN)
            .arg("demo")
            .args(*args)
            .output()
            .expect("the binary runs");
        assert_eq!(refused.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn the_demo_reports_verified_beacon_rounds_across_the_view_change() {
    let _network = crate::common::network_slot_blocking();
    let dir = tempfile::tempdir().unwrap();
    // One-second blocks make every phase its minimum of three blocks, so each view lasts
    // several 3 s beacon rounds.
    let report_path = dir.path().join("report.html");
    let report: Value = demo_json(
        &[
            "--nodes",
            "4",
            "--committee",
            "3",
            "--faulty",
            "0",
            "--views",
            "2",
            "--block-ms",
            "1000",
            "--report",
            report_path.to_str().unwrap(),
        ],
        dir.path(),
    );
    let beacon = &report["beacon"];

    let mut chains = BTreeMap::new();
    for served in beacon["chains"].as_array().expect("chains") {
        let info = ChainInfo::from_json(served.to_string().as_bytes()).unwrap();
        assert_eq!(
            served["hash"].as_str(),
            Some(hex::encode(info.hash()).as_str())
        );
        chains.insert(hex::encode(info.hash()), info);
    }
    assert_eq!(chains.len(), 1, "a reshare keeps the chain");

    let mut seen: BTreeMap<(String, u64), String> = BTreeMap::new();
    let mut views = BTreeSet::new();
    let mut timed = 0;
    for r in beacon["rounds"].as_array().expect("rounds") {
        let chain = r["chain_hash"].as_str().unwrap().to_owned();
        let info = &chains[&chain];
        let number = r["round"].as_u64().unwrap();
        let drand = serde_json::json!({
            "round": number,
            "randomness": r["randomness"],
            "signature": r["signature"],
            "previous_signature": r["previous_signature"],
        });
        let round = Round::from_json(drand.to_string().as_bytes()).unwrap();
        let randomness = verify_round_number(info, &round, number).unwrap();
        assert_eq!(
            r["randomness"].as_str(),
            Some(hex::encode(randomness).as_str())
        );
        let value = r["signature"].as_str().unwrap().to_owned();
        assert!(
            seen.insert((chain, number), value).is_none(),
            "round {number} reported twice"
        );
        views.insert(r["view"].as_u64().unwrap());
        if let Some(latency) = r["latency_ms"].as_i64() {
            timed += 1;
            let scheduled = info.time_of_round(number).unwrap() * 1000;
            let stored = r["stored_ms"]
                .as_i64()
                .expect("a timed round has its stored time");
            assert_eq!(latency, stored - scheduled, "round {number}");
            assert!(r["synced"].is_boolean());
            // All processes share this machine's clock: nothing is stored before its round
            // starts, and rounds of a healthy committee are not stored minutes late.
            assert!(
                (0..120_000).contains(&latency),
                "round {number}: {latency} ms"
            );
        }
    }
    let total = seen.len();
    assert!(
        timed * 2 >= total,
        "only {timed} of {total} rounds carry a latency"
    );
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("<svg"), "no latency plot in the report");
    assert_eq!(html.matches("<circle class=\"round\"").count(), timed);
    assert!(html.contains(">view 1<") && html.contains(">view 2<"));
    assert!(!html.contains("<script"));
    let numbers: Vec<u64> = seen.keys().map(|(_, n)| *n).collect();
    assert_eq!(numbers, (1..=numbers.len() as u64).collect::<Vec<_>>());
    assert_eq!(
        views,
        BTreeSet::from([1, 2]),
        "rounds from both views: {numbers:?}"
    );

    let sign = &report["sign"];
    // The demo asks once view 2 is active; on a loaded machine the chain can have activated
    // view 3 by the time the committee answers. Every view after the first is a reshare here,
    // so the signing view's key is view 2's either way.
    assert!(sign["view"].as_u64().is_some_and(|v| v >= 2), "{sign}");
    let last_view = report["views"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["view"] == 2)
        .expect("view 2 reported");
    assert_eq!(sign["public_key"], last_view["group_public_key"], "{sign}");
    let domain = sign["domain"].as_str().unwrap();
    let message = hex::decode(sign["message"].as_str().unwrap()).unwrap();
    let mut signed = b"keyquorum/sign/v1".to_vec();
    signed.push(domain.len() as u8);
    signed.extend_from_slice(domain.as_bytes());
    signed.extend_from_slice(&message);
    let pk = blst::min_pk::PublicKey::key_validate(
        &hex::decode(sign["public_key"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let sig = blst::min_pk::Signature::sig_validate(
        &hex::decode(sign["signature"].as_str().unwrap()).unwrap(),
        true,
    )
    .unwrap();
    assert_eq!(
        sig.verify(
            true,
            &signed,
            b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_",
            &[],
            &pk,
            true
        ),
        blst::BLST_ERROR::BLST_SUCCESS
    );
}

/// `--variant complaint`: the chain runs the complaint variant, the faulty node's bad pair is
/// proven by its player's complaint, it is excluded from the first view, and the magic-block
/// chain of the fresh key and its reshare verifies (the demo fails otherwise). The equivocation
/// fault, which only the ack-or-reveal variant has, is a usage error there.
#[test]
fn the_demo_runs_the_complaint_variant_with_a_bad_dealer() {
    let _network = crate::common::network_slot_blocking();
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.html");
    let out = run_demo(
        &[
            "--variant",
            "complaint",
            "--fault",
            "bad-share",
            "--nodes",
            "5",
            "--committee",
            "4",
            "--views",
            "2",
            "--report",
            report_path.to_str().unwrap(),
        ],
        dir.path(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("chain of 2 magic blocks verified"), "{text}");
    assert!(
        text.contains("excluded    node-3 as dealer: bad_deal"),
        "{text}"
    );
    assert!(text.contains("  unqualified node-3 ("), "{text}");
    assert_usage_errors(&[(
        &["--variant", "complaint", "--fault", "equivocate"],
        "--fault bad-share",
    )]);
}

/// `--signing-key-lifetime chain`: view 1's committee makes the secp256k1 key with two faulty
/// dealers (equivocation, a withheld deal), who are slashed and leave the committee; view 2's
/// committee (two spare nodes in their place) receives the same key by a reshare from the
/// holders that were not slashed, and its BIP-340 signature verifies under view 1's x-only
/// key. Counts that leave the reshare too few holders are usage errors.
#[test]
fn the_demos_reshared_signing_key_keeps_its_group_key_across_committees() {
    let _network = crate::common::network_slot_blocking();
    let dir = tempfile::tempdir().unwrap();
    let report: Value = demo_json(
        &[
            "--variant",
            "complaint",
            "--curve",
            "secp256k1",
            "--signing-key-lifetime",
            "chain",
            "--nodes",
            "9",
            "--committee",
            "7",
            "--views",
            "2",
        ],
        dir.path(),
    );
    let views = report["views"].as_array().unwrap();
    assert_eq!(views.len(), 2, "{report}");
    let (first, second) = (&views[0]["signing_key"], &views[1]["signing_key"]);
    assert_eq!(first["reshared_from"], Value::Null, "{first}");
    assert_eq!(second["reshared_from"], 1, "{second}");
    // The slashed members left the committee, so nobody in it sat the reshare out.
    assert_eq!(second["sat_out"], serde_json::json!([]), "{second}");
    assert_eq!(first["group_key"], second["group_key"], "{report}");
    let culprits: BTreeSet<&str> = first["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["role"] == "dealer" && !e["slashed"].is_null())
        .map(|e| e["node"].as_str().unwrap())
        .collect();
    assert_eq!(culprits, BTreeSet::from(["node-5", "node-6"]), "{first}");
    // The culprits left; the spares joined and hold shares of the same key.
    let members = strings(&views[1]["members"]);
    assert!(
        members.contains("node-7") && members.contains("node-8"),
        "{report}"
    );
    assert!(members.is_disjoint(&culprits), "{report}");
    // The reshare's dealers are view 1's holders that were not slashed.
    let qualified = strings(&second["qualified"]);
    assert_eq!(
        qualified,
        BTreeSet::from(["node-0", "node-1", "node-2", "node-3", "node-4"]),
        "{second}"
    );
    let x_only = hex::decode(first["x_only"].as_str().unwrap()).unwrap();
    let bip340 = &second["bip340"];
    let message = hex::decode(bip340["message"].as_str().unwrap()).unwrap();
    let signature = hex::decode(bip340["signature"].as_str().unwrap()).unwrap();
    let vk = k256::schnorr::VerifyingKey::from_bytes(&x_only).unwrap();
    vk.verify_raw(
        &message,
        &k256::schnorr::Signature::try_from(&signature[..]).unwrap(),
    )
    .expect("view 2's signature verifies under view 1's key");

    assert_usage_errors(&[
        (
            &["--signing-key-lifetime", "chain"][..],
            "add --curve secp256k1",
        ),
        (
            &[
                "--variant",
                "complaint",
                "--curve",
                "secp256k1",
                "--signing-key-lifetime",
                "chain",
                "--faulty",
                "3",
            ][..],
            "sit out view 2's reshare",
        ),
    ]);
}

/// `--variant complaint --curve secp256k1`: seven nodes for seven seats, three of them faulty in
/// the view's signing-key ceremony only (seed 003's dealer faults, one each). The view's key is
/// a 33-byte compressed secp256k1 point; the committee's BIP-340 signature verifies with `k256`
/// under its x-only form; the equivocating dealer is excluded for `equivocation`, the one that
/// withheld a deal (also when asked on chain) for `missing_justification`, and the one that
/// posted no Feldman values for `missed_feldman`, its contribution reconstructed into the key
/// (still qualified); each of the three is slashed, shown next to its exclusion. The view
/// change itself excludes nobody. Combinations that cannot work are usage errors.
#[test]
fn the_demo_makes_a_secp256k1_key_despite_seed_003_faults_and_signs_bip340() {
    let _network = crate::common::network_slot_blocking();
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.html");
    let report: Value = demo_json(
        &[
            "--variant",
            "complaint",
            "--curve",
            "secp256k1",
            "--nodes",
            "7",
            "--committee",
            "7",
            "--views",
            "1",
            "--report",
            report_path.to_str().unwrap(),
        ],
        dir.path(),
    );
    let views = report["views"].as_array().unwrap();
    assert_eq!(views.len(), 1, "{report}");
    let view = &views[0];
    assert_eq!(view["excluded"], serde_json::json!([]), "{view}");
    let key = &view["signing_key"];

    let group_key = hex::decode(key["group_key"].as_str().unwrap()).unwrap();
    assert_eq!(group_key.len(), 33, "{key}");
    assert!(matches!(group_key[0], 2 | 3), "{key}");
    k256::PublicKey::from_sec1_bytes(&group_key).expect("a point of secp256k1");
    assert_eq!(
        key["x_only"].as_str(),
        Some(hex::encode(&group_key[1..]).as_str())
    );

    let bip340 = &key["bip340"];
    let public = hex::decode(bip340["public_key"].as_str().unwrap()).unwrap();
    assert_eq!(public, group_key[1..], "{bip340}");
    let message = hex::decode(bip340["message"].as_str().unwrap()).unwrap();
    let signature = hex::decode(bip340["signature"].as_str().unwrap()).unwrap();
    assert_eq!(signature.len(), 64);
    let vk = k256::schnorr::VerifyingKey::from_bytes(&public).unwrap();
    let sig = k256::schnorr::Signature::try_from(&signature[..]).unwrap();
    vk.verify_raw(&message, &sig)
        .expect("the BIP-340 signature verifies");
    assert!(vk.verify_raw(b"another message", &sig).is_err());

    let dealers: BTreeMap<&str, (&str, bool)> = key["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["role"] == "dealer")
        .map(|e| {
            (
                e["node"].as_str().unwrap(),
                (
                    e["fault"].as_str().unwrap(),
                    e["reconstructed"].as_bool().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(
        dealers,
        BTreeMap::from([
            ("node-4", ("equivocation", false)),
            ("node-5", ("missing_justification", false)),
            ("node-6", ("missed_feldman", true)),
        ]),
        "{key}"
    );
    let qualified = strings(&key["qualified"]);
    assert_eq!(
        qualified,
        BTreeSet::from(["node-0", "node-1", "node-2", "node-3", "node-6"]),
        "{key}"
    );
    // Each culprit is slashed next to its exclusion, 10% of its stake (the demo's rate for
    // both kinds), at the rate its proof allows; nobody else is.
    let slashed: BTreeMap<&str, (&str, &str, u64, u64)> = key["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["slashed"].is_null())
        .map(|e| {
            let s = &e["slashed"];
            (
                e["node"].as_str().unwrap(),
                (
                    s["fault"].as_str().unwrap(),
                    s["penalty"].as_str().unwrap(),
                    s["amount"].as_u64().unwrap(),
                    s["stake_after"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(
        slashed.keys().copied().collect::<Vec<_>>(),
        ["node-4", "node-5", "node-6"],
        "{key}"
    );
    for (node, penalty) in [
        ("node-4", "misbehaviour"),
        ("node-5", "absence"),
        ("node-6", "absence"),
    ] {
        let (fault, got, amount, after) = slashed[node];
        assert_eq!((fault, got), (dealers[node].0, penalty), "{node}: {key}");
        assert!(
            amount > 0 && (amount + after) / 10 == amount,
            "{node}: {key}"
        );
    }

    assert_usage_errors(&[
        (
            &["--curve", "secp256k1"][..],
            "--curve secp256k1 needs --variant complaint",
        ),
        (
            &[
                "--variant",
                "complaint",
                "--curve",
                "secp256k1",
                "--fault",
                "bad-share",
            ][..],
            "--fault bad-share is a view-change fault",
        ),
        (
            &[
                "--variant",
                "complaint",
                "--curve",
                "secp256k1",
                "--threshold",
                "6",
                "--faulty",
                "3",
            ][..],
            "fewer than the threshold",
        ),
    ]);
}

/// A demo whose reader went away (`keyquorum demo | head -1`) runs to its end and exits 0; it
/// used to panic at its next line of output.
#[test]
fn a_demo_runs_to_its_end_when_its_output_is_closed() {
    use std::io::Read;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Command::new(BIN)
        .args(["demo", "--nodes", "4", "--committee", "4", "--faulty", "0"])
        .args(["--views", "1", "--block-ms", "100", "--data-dir"])
        .arg(dir.path().join("work"))
        .arg("--report")
        .arg(dir.path().join("report.html"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(demo.stdout.take());
    let mut err = String::new();
    demo.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = demo.wait().unwrap();
    assert!(status.success(), "{status:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}
