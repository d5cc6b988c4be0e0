//! The command line's contract, run against the binary: every subcommand's `--help` states the
//! exit codes; a value outside a closed set, or arguments that contradict each other, exit 2
//! naming what is allowed; a run that fails exits 1.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_keyquorum");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("KEYQUORUM_PASSPHRASE")
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn every_help_documents_the_exit_codes() {
    for sub in [
        &[][..],
        &["sim"][..],
        &["chain"],
        &["node"],
        &["keys"],
        &["keys", "new"],
        &["demo"],
        &["beacon"],
        &["beacon", "verify"],
        &["sections"],
        &["sections", "demo"],
        &["deploy"],
    ] {
        let mut args = sub.to_vec();
        args.push("--help");
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        let help = String::from_utf8_lossy(&o.stdout);
        for needle in [
            "Exit status: 0 success",
            "1 the run failed",
            "2 usage error",
        ] {
            assert!(
                help.contains(needle),
                "{args:?} --help lacks {needle:?}:\n{help}"
            );
        }
    }
}

#[test]
fn a_value_outside_a_closed_set_exits_2_and_names_the_allowed_ones() {
    let cases: [(&[&str], &[&str]); 7] = [
        (&["sim", "--variant", "gjkr"], &["ack-reveal", "complaint"]),
        (&["sim", "--curve", "ed25519"], &["bls12-381", "secp256k1"]),
        (
            &["sim", "--fault", "silent,evil"],
            &["silent", "bad-share", "withhold-acks", "spoof"],
        ),
        (&["sim", "--format", "xml"], &["text", "json"]),
        (&["sim", "--mode", "chain"], &["ceremonies", "sections"]),
        (
            &["node", "--fault", "evil"],
            &[
                "none",
                "silent",
                "bad-share",
                "equivocate",
                "crash",
                "bad-beacon",
                "bad-signature-share",
                "signing-key-equivocate",
                "signing-key-withhold",
                "signing-key-skip-feldman",
            ],
        ),
        (&["demo", "--format", "yaml"], &["text", "json"]),
    ];
    for (args, allowed) in cases {
        let o = run(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("invalid value"), "{args:?}: {err}");
        for a in allowed {
            assert!(err.contains(a), "{args:?} does not name {a}: {err}");
        }
    }
}

#[test]
fn the_same_flag_names_the_same_thing_everywhere() {
    // Data directory, listen addresses by protocol, fault kinds: one spelling each.
    let help = |sub: &[&str]| {
        let mut a = sub.to_vec();
        a.push("--help");
        String::from_utf8_lossy(&run(&a).stdout).into_owned()
    };
    let (chain, node, demo, sim) = (
        help(&["chain"]),
        help(&["node"]),
        help(&["demo"]),
        help(&["sim"]),
    );
    for h in [&chain, &node, &demo] {
        assert!(h.contains("--data-dir"), "{h}");
    }
    assert!(chain.contains("--http-listen") && node.contains("--http-listen"));
    assert!(node.contains("--p2p-listen"));
    for h in [&node, &demo, &sim] {
        assert!(h.contains("--fault <KIND>"), "{h}");
    }
    for h in [&demo, &sim] {
        assert!(h.contains("--faulty") && h.contains("--committee") && h.contains("--format"));
    }
    // The old spellings are gone.
    for (h, old) in [
        (&chain, "--data <"),
        (&chain, "--listen <"),
        (&node, "--listen <"),
        (&node, "--status-listen"),
        (&sim, "--byzantine"),
        (&sim, "--faults"),
        (&sim, "--nodes"),
        (&demo, "--dir <"),
        (&demo, "--json"),
    ] {
        assert!(!h.contains(old), "{old} still offered");
    }
}

#[test]
fn contradicting_arguments_exit_2_with_a_clear_message() {
    let cases: [(&[&str], &str); 75] = [
        (
            &["chain", "--contract", "c.toml", "--committee", "5"],
            "cannot be used with",
        ),
        (
            &["chain", "--contract", "c.toml", "--chain-id", "other"],
            "cannot be used with",
        ),
        (
            &["chain", "--block-ms", "18446744073709551615"],
            "block_ms must be at most 3600000",
        ),
        (
            &[
                "sim",
                "--committee",
                "4",
                "--reshare",
                "--reshare-committee",
                "2",
                "--fault",
                "bad-share",
            ],
            "--fault with no faulty participant (--faulty resolves to 0 with --reshare",
        ),
        (
            &[
                "sim",
                "--mode",
                "sections",
                "--elders",
                "3",
                "--section-fault",
                "silent",
            ],
            "n - supermajority(n) = 3 - 3 = 0",
        ),
        (
            &[
                "sim", "--mode", "sections", "--elders", "7", "--joins", "3", "--leaves", "1",
            ],
            "no joiner comes after the first elder set (--joins 3 is not above --elders 7)",
        ),
        (
            &["demo", "--block-ms", "3600001"],
            "--block-ms must be at most 3600000",
        ),
        (
            &[
                "node",
                "--io-threads",
                "100000",
                "--chain-url",
                "http://127.0.0.1:1",
            ],
            "io_threads must be at most 1024",
        ),
        (
            &["sim", "--faulty", "0", "--fault", "silent"],
            "--fault with no faulty participant",
        ),
        (
            &[
                "sim",
                "--committee",
                "7",
                "--quorum",
                "9",
                "--fault",
                "silent",
            ],
            "need t <= k <= n, got t = 5, k = 9, n = 7",
        ),
        (
            &["sim", "--committee", "100000"],
            "--committee 100000: at most 4096",
        ),
        (
            &["sim", "--seed", "18446744073709551615", "--runs", "2"],
            "run r uses seed + r",
        ),
        (
            &[
                "sim",
                "--mode",
                "sections",
                "--elders",
                "3",
                "--beyond-bound",
                "--section-faulty",
                "0",
            ],
            "--beyond-bound with no faulty joiner",
        ),
        (
            &[
                "sim",
                "--mode",
                "sections",
                "--section-faulty",
                "0",
                "--section-fault",
                "silent",
            ],
            "--section-fault with no faulty joiner",
        ),
        (
            &[
                "sim",
                "--mode",
                "sections",
                "--elders",
                "4",
                "--min-section-size",
                "4294967295",
            ],
            "--min-section-size 4294967295: at most 1024",
        ),
        (
            &[
                "sim",
                "--mode",
                "sections",
                "--elders",
                "4",
                "--min-section-size",
                "500",
            ],
            "(the default for --min-section-size 500): at most 1024",
        ),
        (
            &["demo", "--chain", "anvil", "--trust-chain"],
            "--trust-chain is not available with --chain anvil",
        ),
        (
            &["sim", "--committee", "4096", "--faulty", "0"],
            "a committee of 4096 does not fit in one simulation",
        ),
        (
            &["demo", "--faulty", "0", "--fault", "crash"],
            "--fault crash with --faulty 0: nobody would commit it",
        ),
        (
            &["demo", "--timeout-secs", "0"],
            "--timeout-secs must be at least 1",
        ),
        (
            &[
                "node",
                "--chain",
                "evm",
                "--chain-url",
                "http://127.0.0.1:1",
                "--trust-chain",
            ],
            "--chain-url, --trust-chain are for the embedded chain, and this node runs on an EVM chain",
        ),
        (
            &[
                "node",
                "--contract",
                "0x0000000000000000000000000000000000000001",
            ],
            "--contract is for an EVM chain (--chain evm), and this node runs on the embedded chain",
        ),
        (
            &["account", "transfer", "--to", "zz", "--amount", "1"],
            "--to \"zz\": not hex",
        ),
        (
            &["account", "show", "--identity", "00"],
            "--identity \"00\": not an identity key",
        ),
        (
            &["account", "stake", "--amount", "x"],
            "invalid value 'x' for '--amount <AMOUNT>'",
        ),
        (
            &["demo", "--report", "/nonexistent/dir/r.html"],
            "--report /nonexistent/dir/r.html: the directory /nonexistent/dir does not exist",
        ),
        (
            &[
                "demo",
                "--mode",
                "sections",
                "--report",
                "/nonexistent/dir/r.html",
            ],
            "--report /nonexistent/dir/r.html: the directory /nonexistent/dir does not exist",
        ),
        (
            &["demo", "--metrics-out", "/nonexistent/m.json"],
            "--metrics-out /nonexistent/m.json: the directory /nonexistent does not exist",
        ),
        (
            &["demo", "--committee", "4", "--threshold", "4"],
            "--threshold 4 is above the dealer quorum k = 3",
        ),
        (
            &[
                "demo",
                "--variant",
                "complaint",
                "--curve",
                "secp256k1",
                "--committee",
                "6",
                "--nodes",
                "6",
                "--faulty",
                "3",
            ],
            "the threshold t = 4 (the default: 66% of the committee) with a committee of 6",
        ),
        (
            &[
                "demo",
                "--nodes",
                "5",
                "--committee",
                "5",
                "--threshold",
                "4",
                "--faulty",
                "3",
                "--fault",
                "bad-beacon",
            ],
            "--faulty 3 with --fault bad-beacon leaves 2 honest members in a committee of 5, fewer than the threshold 4",
        ),
        (
            &["demo", "--faulty", "4"],
            "--faulty 4 with --fault equivocate: more dealers disqualified, silent or crashed than the 1 a committee of 7 with quorum k = 6 tolerates",
        ),
        (
            &[
                "demo",
                "--committee",
                "4",
                "--nodes",
                "4",
                "--faulty",
                "2",
                "--fault",
                "silent",
            ],
            "--faulty 2 with --fault silent: more dealers disqualified, silent or crashed than the 1 a committee of 4 with quorum k = 3 tolerates, so the first ceremony fails and its retry, without them, needs 4 other nodes, but --nodes 4 leaves 2: use --nodes 6 or more",
        ),
        (
            &[
                "demo",
                "--variant",
                "complaint",
                "--committee",
                "4",
                "--nodes",
                "4",
                "--faulty",
                "2",
                "--fault",
                "silent",
            ],
            "--faulty 2 with --fault silent: more dealers disqualified, silent or crashed than the 1",
        ),
        (
            &[
                "demo",
                "--committee",
                "7",
                "--nodes",
                "7",
                "--faulty",
                "2",
                "--fault",
                "crash",
            ],
            "--faulty 2 with --fault crash: more dealers disqualified, silent or crashed than the 1 a committee of 7 with quorum k = 6 tolerates, so the first ceremony fails and its retry, without them, needs 7 other nodes, but --nodes 7 leaves 5: use --nodes 9 or more",
        ),
        (
            &[
                "keys",
                "new",
                "--key-file",
                "/nonexistent/never-written.key",
                "--kdf-memory-kib",
                "1",
            ],
            "--kdf-memory-kib / --kdf-passes: invalid key derivation parameters",
        ),
        (
            &[
                "node",
                "--data-dir",
                "/nonexistent/never-written",
                "--bootstrap",
                "/ip4/127.0.0.1/tcp/1",
            ],
            "lacks the peer's id: end it in /p2p/<peer id>",
        ),
        (
            &[
                "sections",
                "node",
                "--key-file",
                "/nonexistent/never-read.key",
                "--data-dir",
                "/nonexistent/never-written",
                "--p2p-listen",
                "/ip4/127.0.0.1/tcp/0",
                "--http-listen",
                "127.0.0.1:0",
                "--bootstrap",
                "/ip4/127.0.0.1/tcp/1",
            ],
            "--bootstrap /ip4/127.0.0.1/tcp/1 lacks the peer's id",
        ),
        (
            &[
                "deploy",
                "--rpc",
                "ws://127.0.0.1:1",
                "--key",
                "0x0000000000000000000000000000000000000000000000000000000000000001",
            ],
            "--rpc: the endpoint must be an http:// or https:// URL, not a ws:// URL",
        ),
        (
            &["sim", "--mode", "sections", "--elders", "13"],
            "--elders must be at most 12",
        ),
        (
            &[
                "demo",
                "--committee",
                "7",
                "--faulty",
                "3",
                "--fault",
                "bad-share",
            ],
            "unless the quorum is the 4 honest dealers",
        ),
        (
            &["demo", "--beacon-rounds", "0"],
            "--beacon-rounds must be 1 to 1000",
        ),
        (
            &["demo", "--beacon-rounds", "1001"],
            "--beacon-rounds must be 1 to 1000",
        ),
        (
            &["demo", "--chain", "anvil", "--beacon-rounds", "5"],
            "--beacon-rounds is not available with --chain anvil",
        ),
        (
            &["sim", "--mode", "sections", "--elders", "0"],
            "--elders must be at least 1",
        ),
        // Faulty joiners and leaves are drawn after the first elder set: a count that does not
        // fit is refused, not cut.
        (
            &[
                "sim",
                "--mode",
                "sections",
                "--elders",
                "4",
                "--joins",
                "5",
                "--section-faulty",
                "3",
            ],
            "--section-faulty 3: only the 1 joiners after the first 4 (--joins 5 minus --elders)",
        ),
        (
            &[
                "sim", "--mode", "sections", "--elders", "4", "--joins", "5", "--leaves", "2",
            ],
            "--leaves 2: only the 1 joiners after the first 4",
        ),
        (
            &["sim", "--committee", "4", "--faulty", "5"],
            "--faulty 5 is larger than the committee",
        ),
        (
            &["sim", "--committee", "4", "--faulty", "4", "--reshare"],
            "--faulty 4 with --reshare and --committee 4: adversaries sit on members of both \
             committees and member 0 leaves, so at most 3 fit",
        ),
        (
            &["sim", "--committee", "1", "--faulty", "1", "--reshare"],
            "so at most 0 fit",
        ),
        (
            &[
                "sim",
                "--committee",
                "7",
                "--faulty",
                "3",
                "--reshare",
                "--reshare-committee",
                "2",
            ],
            "member 0 leaves (and members past --reshare-committee 2), so at most 2 fit",
        ),
        (
            &["sim", "--reshare-committee", "5"],
            "--reshare-committee is the size of the committee --reshare hands the key to",
        ),
        (
            &["sim", "--reshare", "--reshare-committee", "0"],
            "--reshare-committee must be at least 1",
        ),
        // secp256k1's scalars have roots of unity of order 64 at most.
        (
            &[
                "sim",
                "--curve",
                "secp256k1",
                "--indices",
                "roots-of-unity",
                "--committee",
                "40",
                "--reshare",
                "--reshare-committee",
                "65",
            ],
            "--indices roots-of-unity on secp256k1 for a committee of 65: no evaluation \
             domain of size 128 in this field; use --indices sequential or key-hash, or a \
             committee of at most 64",
        ),
        // The new committee is checked up front like the first, not at run time.
        (
            &[
                "sim",
                "--committee",
                "4",
                "--reshare",
                "--reshare-committee",
                "4097",
            ],
            "--reshare-committee 4097: committee size n = 4097 must be between 1 and 4096",
        ),
        // Above the committee limit the limit is named, not a missing domain.
        (
            &[
                "sim",
                "--committee",
                "5000000000",
                "--indices",
                "roots-of-unity",
            ],
            "--committee 5000000000: at most 4096 participants",
        ),
        (
            &["sim", "--fault", ""],
            "a value is required for '--fault <KIND>'",
        ),
        (
            &["sim", "--committee", "0"],
            "--committee must be at least 1",
        ),
        (
            &["sim", "--committee", "4", "--threshold", "9"],
            "threshold",
        ),
        // A value not given is named as the default.
        (
            &["sim", "--committee", "10", "--quorum", "6"],
            "--threshold 7 (the default) with --quorum 6 and --committee 10",
        ),
        (
            &["sim", "--committee", "4", "--quorum", "0"],
            "--quorum must be at least 1",
        ),
        (
            &["sim", "--committee", "4", "--threshold", "0"],
            "--threshold must be at least 1",
        ),
        // Options of one sim mode given to the other would be dropped without a word.
        (
            &["sim", "--mode", "sections", "--committee", "4"],
            "--committee is an option of the ceremonies mode; --mode sections does not use it",
        ),
        (
            &["sim", "--mode", "sections", "--faulty", "1"],
            "--faulty is an option of the ceremonies mode",
        ),
        (
            &["sim", "--mode", "sections", "--fault", "silent"],
            "--fault is an option of the ceremonies mode",
        ),
        (
            &["sim", "--mode", "sections", "--threshold", "3"],
            "--threshold is an option of the ceremonies mode",
        ),
        // Given at its default value, still refused: the user meant it for this run.
        (
            &["sim", "--mode", "sections", "--curve", "bls12381"],
            "--curve is an option of the ceremonies mode",
        ),
        (
            &["sim", "--elders", "4"],
            "--elders is an option of --mode sections; the ceremonies mode (the default) does \
             not use it",
        ),
        (
            &["sim", "--mode", "ceremonies", "--beyond-bound"],
            "--beyond-bound is an option of --mode sections",
        ),
        (
            &["demo", "--nodes", "3", "--committee", "5"],
            "--nodes 3 is fewer than the committee's seats",
        ),
        // Node faults that the embedded demo's view changes would not show.
        (
            &["demo", "--fault", "none"],
            "--fault none makes the faulty nodes honest: leave --fault out",
        ),
        (
            &["demo", "--faulty", "0", "--fault", "none"],
            "--fault none makes the faulty nodes honest: leave --fault out",
        ),
        (
            &["demo", "--fault", "signing-key-withhold"],
            "--fault signing-key-withhold is a fault of the signing key's ceremony",
        ),
        (
            &[
                "demo",
                "--variant",
                "complaint",
                "--fault",
                "forge-ack-aggregate",
            ],
            "--fault forge-ack-aggregate is an ack-or-reveal fault",
        ),
        (
            &["demo", "--fault", "bad-signature-share"],
            "--fault bad-signature-share is a fault of threshold Schnorr signing",
        ),
    ];
    for (args, message) in cases {
        let o = run(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

/// The index scheme and the reshared committee's size reach the runs: the summary names them
/// with every default resolved, and a key reshared from seven members at key-hash indices to
/// four (BFT parameters for four) passes its checks.
#[test]
fn the_sim_runs_every_index_scheme_and_reshares_to_another_size() {
    for (curve, indices, to) in [
        ("secp256k1", "key-hash", "4"),
        ("bls12-381", "roots-of-unity", "10"),
    ] {
        let args = [
            "sim",
            "--committee",
            "7",
            "--variant",
            "complaint",
            "--curve",
            curve,
            "--indices",
            indices,
            "--reshare",
            "--reshare-committee",
            to,
            "--runs",
            "2",
            "--format",
            "json",
        ];
        let o = run(&args);
        let (out, err) = (String::from_utf8_lossy(&o.stdout), stderr(&o));
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        let summary: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
        assert_eq!(summary["passed"], 2, "{out}");
        let p = &summary["parameters"];
        assert_eq!(p["indices"], indices, "{out}");
        assert_eq!(p["curve"], curve, "{out}");
        assert_eq!(p["reshare_committee"], to.parse::<u64>().unwrap(), "{out}");
        assert_eq!(
            (p["committee"].clone(), p["threshold"].clone()),
            (7.into(), 5.into())
        );
    }
}

/// `--seed`, `--runs` (alias `--seeds`) and `--format` belong to both sim modes: the sections
/// mode takes them and does what they say, where every option of the ceremonies mode is
/// refused (above).
#[test]
fn the_shared_sim_options_are_taken_by_mode_sections() {
    let small = [
        "sim", "--mode", "sections", "--elders", "2", "--leaves", "0",
    ];
    for (runs_flag, format) in [("--runs", "json"), ("--seeds", "text")] {
        let args = [
            &small[..],
            &["--seed", "3", runs_flag, "2", "--format", format],
        ]
        .concat();
        let o = run(&args);
        let (out, err) = (String::from_utf8_lossy(&o.stdout), stderr(&o));
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        let runs = format!("{out}{err}");
        assert!(
            runs.contains("seed 3") && runs.contains("seed 4") && !runs.contains("seed 5"),
            "{args:?}: {runs}"
        );
        let json = out.trim_start().starts_with('{');
        assert_eq!(json, format == "json", "{args:?}: {out}");
        if json {
            let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
            assert_eq!(summary["runs"], 2, "{out}");
            // Every run is listed with its own result.
            let results = summary["results"].as_array().expect("results");
            let seeds: Vec<_> = results.iter().map(|r| r["seed"].clone()).collect();
            assert_eq!(seeds, [3, 4], "{out}");
            assert!(results.iter().all(|r| r["result"] == "ok"), "{out}");
        }
    }
}

/// `sim --format json` lists every run (seed, result, key, adversaries), not only the failed
/// ones.
#[test]
fn the_sim_lists_every_run_in_json() {
    let o = run(&[
        "sim",
        "--committee",
        "4",
        "--faulty",
        "1",
        "--fault",
        "silent",
        "--seed",
        "7",
        "--runs",
        "2",
        "--format",
        "json",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    let results = summary["results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "{summary}");
    for (r, seed) in results.iter().zip([7, 8]) {
        assert_eq!(r["seed"], seed, "{summary}");
        assert_eq!(r["result"], "ok", "{summary}");
        assert_eq!(r["key_made"], true, "{summary}");
        assert_eq!(r["adversaries"][0]["kind"], "silent", "{summary}");
    }
    // The fields the help promises, and exclusions in the stable names.
    let help = String::from_utf8_lossy(&run(&["sim", "--help"]).stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let promised = help
        .split("every run under `results`: ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("the help lists the run fields");
    for field in promised.split(", ") {
        assert!(
            results[0].get(field).is_some(),
            "{field} missing: {summary}"
        );
    }
    let o = run(&[
        "sim",
        "--committee",
        "7",
        "--fault",
        "equivocate",
        "--seed",
        "1",
        "--format",
        "json",
    ]);
    let summary: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    let excluded = summary["results"][0]["excluded"].as_array().unwrap();
    assert!(!excluded.is_empty(), "{summary}");
    for e in excluded {
        let e = e.as_str().unwrap();
        assert!(
            e.starts_with("dealer ") && e.ends_with(" equivocation"),
            "{e}: {summary}"
        );
    }
}

/// A crash fault of the sections mode restarts from its store, and the JSON summary counts
/// what became of it.
#[test]
fn the_sections_crash_fault_restarts_and_is_counted() {
    let args = [
        "sim",
        "--mode",
        "sections",
        "--elders",
        "4",
        "--min-section-size",
        "4",
        "--section-fault",
        "crash",
        "--section-faulty",
        "1",
        "--seed",
        "1",
        "--format",
        "json",
    ];
    let o = run(&args);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON summary");
    let crash = &summary["crash_restarts"];
    assert_eq!(crash["restarted"], 1, "{summary}");
    assert_eq!(crash["members_checked"], 1, "{summary}");
    assert_eq!(crash["elders_without_share"], 0, "{summary}");
    assert_eq!(summary["passed"], 1, "{summary}");
}

#[test]
fn a_failed_run_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "correct horse battery staple").unwrap();
    let key = dir.path().join("node.key");
    let key_s = key.to_str().unwrap();
    let pass_s = pass.to_str().unwrap();
    let new_key = [
        "keys",
        "new",
        "--key-file",
        key_s,
        "--passphrase-file",
        pass_s,
        "--kdf-memory-kib",
        "64",
        "--kdf-passes",
        "1",
    ];
    let o = run(&new_key);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The keystore exists now: writing it again fails the run, it is not a usage error.
    let o = run(&new_key);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // A node whose keystore does not open (wrong passphrase) fails its run.
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not the passphrase").unwrap();
    let o = run(&[
        "node",
        "--data-dir",
        dir.path().join("db").to_str().unwrap(),
        "--key-file",
        key_s,
        "--passphrase-file",
        wrong.to_str().unwrap(),
        "--http-listen",
        "127.0.0.1:0",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("error:"), "{err}");
    // A missing keystore is named before the passphrase (unset here) is asked for.
    let missing = dir.path().join("missing.key");
    let o = run(&[
        "node",
        "--data-dir",
        dir.path().join("db2").to_str().unwrap(),
        "--key-file",
        missing.to_str().unwrap(),
        "--http-listen",
        "127.0.0.1:0",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("no keystore at {}", missing.display())),
        "{err}"
    );
}

#[test]
fn a_configuration_that_cannot_be_used_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "stake = 0\n").unwrap();
    let bad_chain = dir.path().join("bad-chain.toml");
    std::fs::write(&bad_chain, "block_ms = \"soon\"\n").unwrap();
    for args in [
        vec!["node", "--config", bad.to_str().unwrap()],
        vec!["node", "--chain-url", "ftp://example"],
        vec!["chain", "--config", bad_chain.to_str().unwrap()],
        vec!["chain", "--fund", "not-an-identity"],
    ] {
        let o = run(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
}

/// An EVM node without the coordinator's address is told to give it, and a deployment whose
/// thresholds some committee size cannot use is refused before anything is sent, naming the
/// size (no chain is needed for either).
#[test]
fn an_evm_set_up_that_cannot_work_is_refused_naming_what_to_change() {
    let o = run(&["node", "--chain", "evm"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("evm.contract (--contract) is required"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("coordinator.toml");
    std::fs::write(
        &config,
        "threshold_percent = 10
min_size = 4
max_size = 4
",
    )
    .unwrap();
    let key = dir.path().join("deployer.key");
    std::fs::write(&key, format!("{:064x}", 7)).unwrap();
    let o = run(&[
        "deploy",
        "--rpc",
        "http://127.0.0.1:1",
        "--key-file",
        key.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("threshold_percent 10 and quorum_percent 75 do not work for a committee of 4"),
        "{err}"
    );
}

/// A node that cannot reach its EVM endpoint names it by its origin, never with the rest of
/// the URL, which may carry an access key.
#[test]
fn a_node_that_cannot_reach_its_rpc_names_the_endpoint_by_its_origin() {
    let dir = tempfile::tempdir().unwrap();
    let keystore = dir.path().join("node.json");
    let o = Command::new(BIN)
        .args([
            "keys",
            "new",
            "--kdf-memory-kib",
            "1024",
            "--kdf-passes",
            "1",
        ])
        .arg("--key-file")
        .arg(&keystore)
        .env("KEYQUORUM_PASSPHRASE", "pw")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let chain_key = dir.path().join("chain.key");
    std::fs::write(&chain_key, format!("{:064x}", 7)).unwrap();
    let o = Command::new(BIN)
        .args([
            "node",
            "--chain",
            "evm",
            "--rpc",
            "http://127.0.0.1:1/s3cr3t-path",
        ])
        .args(["--contract", "0x0000000000000000000000000000000000000001"])
        .arg("--chain-key-file")
        .arg(&chain_key)
        .arg("--key-file")
        .arg(&keystore)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("KEYQUORUM_PASSPHRASE", "pw")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot follow the coordinator on the EVM chain at http://127.0.0.1:1:"),
        "{err}"
    );
    assert!(!err.contains("s3cr3t"), "{err}");
}

/// As every command's help says: a file that cannot be read fails the run (exit 1), whatever
/// flag names it; only what a file says can be a usage error.
#[test]
fn a_file_that_cannot_be_read_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let missing = missing.to_str().unwrap();
    for args in [
        vec!["node", "--config", missing],
        vec!["chain", "--config", missing],
        vec!["chain", "--contract", missing],
        vec![
            "deploy",
            "--rpc",
            "http://127.0.0.1:1",
            "--key-file",
            missing,
        ],
        vec!["deploy", "--rpc", "http://127.0.0.1:1", "--config", missing],
    ] {
        let o = run(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(missing),
            "{args:?}: {err}"
        );
    }
}

/// A node whose log reader goes away (`keyquorum node ... 2>&1 | head`) keeps running: its log
/// lines are lost, the node is not (it used to panic at its next line).
#[test]
fn a_node_outlives_its_closed_log_pipe() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "correct horse battery staple").unwrap();
    let key = dir.path().join("node.key");
    let o = run(&[
        "keys",
        "new",
        "--key-file",
        key.to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
        "--kdf-memory-kib",
        "64",
        "--kdf-passes",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut node = Command::new(env!("CARGO_BIN_EXE_keyquorum"))
        .args(["node", "--data-dir"])
        .arg(dir.path().join("db"))
        .arg("--key-file")
        .arg(&key)
        .arg("--passphrase-file")
        .arg(&pass)
        .args(["--http-listen", "127.0.0.1:0"])
        .args(["--p2p-listen", "/ip4/127.0.0.1/tcp/0"])
        // Nothing listens there: the node logs that it waits for its chain, and retries.
        .args(["--chain-url", "http://127.0.0.1:1"])
        .env("KEYQUORUM_LOG", "debug,libp2p=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(node.stderr.take().unwrap());
    let mut line = String::new();
    log.read_line(&mut line).unwrap();
    assert!(!line.is_empty());
    drop(log);
    // The node logs on (at debug, every poll of the unreachable chain) into the closed pipe.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let exited = node.try_wait().unwrap();
    let _ = node.kill();
    let _ = node.wait();
    assert_eq!(exited, None, "the node exited when its log pipe closed");
}

/// A command that only prints ends when its reader goes away (`keyquorum sim ... | head -1`),
/// as a Unix filter does (by SIGPIPE), without a panic.
#[test]
fn a_printing_command_ends_quietly_when_its_reader_goes_away() {
    use std::io::{BufRead, BufReader, Read};
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    let mut sim = Command::new(env!("CARGO_BIN_EXE_keyquorum"))
        .args(["sim", "--committee", "4", "--runs", "100000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(sim.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(!line.is_empty());
    drop(out);
    let mut err = String::new();
    sim.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = sim.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGPIPE), "{status:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `chain --print-contract` prints and exits like the other printing commands: into a pipe
/// nobody reads, it ends by SIGPIPE. It used to panic (exit 101) on the failed write.
#[test]
fn printing_the_contract_configuration_into_a_closed_pipe_does_not_panic() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Command;
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_keyquorum"))
        .args(["chain", "--print-contract"])
        .stdout(writer)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{:?}: {err}",
        out.status
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// A demo killed outright (SIGKILL: no handler, no `Drop`) leaves no node process behind:
/// each is stopped by the kernel when the demo goes (Linux's parent-death signal).
#[cfg(target_os = "linux")]
#[test]
fn a_killed_demo_leaves_no_node_running() {
    killed_demo_leaves_no_child_running(&[], 4);
}

/// With an EVM chain, anvil is the demo's child too.
#[cfg(target_os = "linux")]
#[test]
fn a_killed_anvil_demo_leaves_no_node_or_anvil_running() {
    killed_demo_leaves_no_child_running(&["--chain", "anvil"], 5);
}

/// Kills (SIGKILL) a four-node demo run with `extra` once it has `children` child processes,
/// and checks that none of them outlives it.
#[cfg(target_os = "linux")]
fn killed_demo_leaves_no_child_running(extra: &[&str], children_wanted: usize) {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_keyquorum"))
        .args([
            "demo",
            "--nodes",
            "4",
            "--committee",
            "4",
            "--faulty",
            "0",
            "--views",
            "1",
        ])
        .args(extra)
        .arg("--data-dir")
        .arg(dir.path().join("demo"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let children = |pid: u32| -> Vec<u32> {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return Vec::new();
        };
        tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .flat_map(|c| {
                c.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let nodes = loop {
        let found = children(demo.id());
        if found.len() >= children_wanted {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "the demo started too few children: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    demo.kill().unwrap();
    demo.wait().unwrap();
    // Gone, or a zombie that nobody reaps in this environment: not running either way.
    let running = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z" && state != "X")
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left: Vec<u32> = nodes.iter().copied().filter(|p| running(*p)).collect();
        if left.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            for p in &left {
                // SAFETY: plain kill(2) of this test's own grandchildren, to clean up.
                unsafe { libc::kill(*p as libc::pid_t, libc::SIGKILL) };
            }
            panic!("child processes {left:?} outlived the killed demo");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The default number of faulty members is what the chosen parameters tolerate: with `k = n`
/// none, so the run is not beyond its fault bound by default.
#[test]
fn the_default_faulty_count_follows_the_quorum() {
    for (quorum, faulty) in [("7", 0), ("6", 1), ("5", 2)] {
        let o = run(&[
            "sim",
            "--committee",
            "7",
            "--threshold",
            "5",
            "--quorum",
            quorum,
            "--runs",
            "1",
            "--format",
            "json",
        ]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(summary["parameters"]["faulty"], faulty, "{summary}");
        assert_eq!(summary["beyond_fault_bound"], 0, "{summary}");
    }
}

/// `chain --print-contract` prints the whole contract configuration the flags give, in the
/// `--contract` file's format: read back as that file, it is the same configuration (same
/// digest), and the committee's smallest size is there to see.
#[test]
fn the_printed_contract_reads_back_as_the_same_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["chain", "--committee", "5", "--print-contract"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let printed = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        printed.contains("max_size = 5\nmin_size = 4\n"),
        "{printed}"
    );
    let file = dir.path().join("contract.toml");
    std::fs::write(&file, &printed).unwrap();
    let again = run(&[
        "chain",
        "--contract",
        file.to_str().unwrap(),
        "--print-contract",
    ]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let digest = |out: &str| out.lines().next().unwrap().to_string();
    assert_eq!(
        digest(&String::from_utf8_lossy(&again.stdout)),
        digest(&printed)
    );
}
