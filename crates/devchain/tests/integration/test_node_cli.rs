//! The `devchain-test-node` helper's command line: the flags are spelled as in `keyquorum`
//! (`--data-dir`, `--http-listen`) and it follows the same exit-code scheme (2 for a usage
//! error, shown in `--help`).

use std::process::{Command, Output};

const NODE: &str = env!("CARGO_BIN_EXE_devchain-test-node");

fn run(args: &[&str]) -> Output {
    Command::new(NODE)
        .args(args)
        .output()
        .expect("run devchain-test-node")
}

#[test]
fn help_names_the_shared_flags_and_the_exit_codes() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "--data-dir",
        "--http-listen",
        "--block-ms",
        "--phase-len",
        "--config",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    assert!(
        text.contains("Exit status: 0 success; 1 the run failed"),
        "{text}"
    );
    assert!(text.contains("2 usage error"), "{text}");
}

#[test]
fn usage_errors_exit_2() {
    // The old hand-parsed spellings are unknown flags now.
    assert_eq!(run(&["--data", "x"]).status.code(), Some(2));
    assert_eq!(run(&["--listen", "127.0.0.1:0"]).status.code(), Some(2));
    assert_eq!(
        run(&["--http-listen", "not-an-address"]).status.code(),
        Some(2)
    );
    assert_eq!(run(&["--block-ms"]).status.code(), Some(2));
    // A configuration file that cannot be read is a usage error too, as for `keyquorum chain`.
    let missing = std::env::temp_dir().join("devchain-test-node-no-such-config.toml");
    let out = run(&["--config", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!out.stderr.is_empty());
}
