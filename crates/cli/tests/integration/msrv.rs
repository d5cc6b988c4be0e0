//! The declared minimum supported Rust version holds for the dependency graph: every workspace
//! crate declares a `rust-version` at least as new as the newest one declared by anything it
//! builds with (normal and build dependencies, transitively, as `Cargo.lock` resolves them).
//!
//! This catches a dependency update that silently raises the MSRV (redb did), from
//! `cargo metadata` alone. Our own code is checked by building it with the declared toolchain,
//! which `.ci/run` does (the declared version is the toolchain CI builds with).

use std::collections::{BTreeSet, HashMap};

/// `major.minor[.patch]` as three numbers (`1.88` and `1.88.0` are the same version).
fn version(v: &str) -> [u64; 3] {
    let mut out = [0; 3];
    for (slot, part) in out.iter_mut().zip(v.split('.')) {
        *slot = part.parse().unwrap_or(0);
    }
    out
}

#[test]
fn every_crate_declares_a_rust_version_its_dependencies_accept() {
    let meta = crate::common::cargo_metadata();
    let packages: HashMap<&str, &serde_json::Value> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().expect("id"), p))
        .collect();
    let nodes: HashMap<&str, &serde_json::Value> = meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve graph")
        .iter()
        .map(|n| (n["id"].as_str().expect("id"), n))
        .collect();
    let mut problems = Vec::new();
    for member in meta["workspace_members"].as_array().expect("members") {
        let member = member.as_str().expect("member id");
        let declared = packages[member]["rust_version"]
            .as_str()
            .unwrap_or_else(|| panic!("{member} declares no rust-version"));
        let mut seen = BTreeSet::new();
        let mut stack = vec![member];
        while let Some(id) = stack.pop() {
            for dep in nodes[id]["deps"].as_array().expect("deps") {
                // Dev-dependencies (benchmark peers, test tools) are not part of the build a
                // user makes; normal (`kind: null`) and build dependencies are.
                let builds = dep["dep_kinds"]
                    .as_array()
                    .expect("dep kinds")
                    .iter()
                    .any(|k| k["kind"].is_null() || k["kind"] == "build");
                let pkg = dep["pkg"].as_str().expect("pkg");
                if builds && seen.insert(pkg) {
                    stack.push(pkg);
                }
            }
        }
        for dep in seen {
            if let Some(needed) = packages[dep]["rust_version"].as_str()
                && version(needed) > version(declared)
            {
                problems.push(format!(
                    "{} declares rust-version {declared} but {} {} needs {needed}",
                    packages[member]["name"].as_str().unwrap_or(member),
                    packages[dep]["name"].as_str().unwrap_or(dep),
                    packages[dep]["version"].as_str().unwrap_or("?"),
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
