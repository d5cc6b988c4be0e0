//! Lint-style check that secrets never reach the variable-time generator multiplication.
//!
//! A call site of `mul_generator_public_vartime` cannot be tested for what its scalar means, so
//! the rule is enforced on the source: every call in the workspace must be preceded (on the same
//! line or the line before) by a comment starting `Public scalar:` that says why the scalar is
//! public, and the variable-time comb table may only be built inside the crypto crate's group
//! implementations. Anything else (dealing, share checks, final shares) then goes through the
//! constant-time default.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn variable_time_generator_multiplication_is_justified_at_every_call() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    rust_files(&crates, &mut files);
    assert!(files.len() > 20, "found the workspace sources");
    let this = Path::new(file!()).file_name().unwrap();
    let mut unjustified = Vec::new();
    let mut calls = 0;
    for f in &files {
        if f.file_name() == Some(this) {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("mul_generator_public_vartime(") && !code.contains("fn ") {
                calls += 1;
                let justified = line.contains("Public scalar:")
                    || (i > 0 && lines[i - 1].contains("Public scalar:"));
                if !justified {
                    unjustified.push(format!("{}:{}", f.display(), i + 1));
                }
            }
            if code.contains("CombTable::new(")
                && !f.ends_with("crypto/src/bls12381.rs")
                && !f.ends_with("crypto/src/group.rs")
            {
                unjustified.push(format!("{}:{} builds a comb table", f.display(), i + 1));
            }
        }
    }
    assert!(calls > 0, "the check sees the existing public call sites");
    assert!(
        unjustified.is_empty(),
        "variable-time multiplication without a `Public scalar:` justification: {unjustified:?}"
    );
}
