//! drand's own JavaScript client (the npm package `drand-client`, pinned in
//! `interop/drand-js/package-lock.json`) run on an endpoint in drand's HTTP format, through
//! `interop/drand-js/verify.mjs`: what a drand user's code accepts, checked by drand's code.
//!
//! `.ci/run` installs the package (`npm ci`); a test run without it installs it on first use,
//! which needs Node.js, npm and the npm registry.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use keyquorum_beacon::ChainInfo;

/// The directory holding `verify.mjs` and its `node_modules`.
fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop/drand-js")
}

/// Installs the pinned client once per test process (tests of this binary run in parallel).
fn installed() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = interop_dir();
        if !dir.join("node_modules/drand-client/package.json").is_file() {
            let out = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .output()
                .unwrap_or_else(|e| {
                    panic!(
                        "drand's JavaScript client needs Node.js and npm (`npm ci` in {}): {e}",
                        dir.display()
                    )
                });
            assert!(
                out.status.success(),
                "npm ci in {} failed:\n{}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        dir
    })
}

/// drand's client fetches each of `rounds` (numbers, or `latest`) from `base_url`, trusting
/// the hash and public key of `trusted`, and verifies it: whether every round verified, and
/// what the client printed (one JSON line per round, then its error output).
pub fn verify(base_url: &str, trusted: &ChainInfo, rounds: &[String]) -> (bool, String) {
    let dir = installed();
    let out = Command::new("node")
        .arg(dir.join("verify.mjs"))
        .arg(base_url)
        .arg(hex::encode(trusted.hash()))
        .arg(hex::encode(trusted.public_key()))
        .args(rounds)
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .output()
        .expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.code() {
        Some(0) => (true, text),
        Some(1) => (false, text),
        other => panic!("verify.mjs exited with {other:?}:\n{text}"),
    }
}
