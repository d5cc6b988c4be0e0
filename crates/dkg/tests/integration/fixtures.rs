//! Test fixtures are shared through the `testing` feature, never by including another crate's
//! files with `#[path]`: an included file compiles as part of each includer, with its own copy
//! of every type and its dependencies declared again by every crate.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "target") {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_test_includes_another_crates_files_by_path() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    rust_files(&crates, &mut files);
    assert!(files.len() > 50, "the workspace's crates were not found");
    let offenders: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            text.lines()
                .any(|l| {
                    let l = l.trim_start();
                    l.starts_with("#[path") && l.contains("../../")
                })
                .then(|| f.display().to_string())
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "use a crate's `testing` feature instead of #[path] includes: {offenders:?}"
    );
}
