//! Creating a data directory, with a reason an operator can act on when it cannot be.

use std::path::Path;

/// Creates `dir` and its parents if missing. When it cannot, the reason names the path and
/// what is in the way: a file where the directory (or one of its parents) should be is said as
/// such, rather than as the operating system's "File exists" or "Not a directory".
pub fn create(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| match dir.ancestors().find(|a| a.is_file()) {
        Some(file) => format!(
            "{} is a file, not a directory; give a directory, or a path that does not \
                 exist yet",
            file.display()
        ),
        None => format!("{}: {e}", dir.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_in_the_way_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("data");
        std::fs::write(&file, b"x").unwrap();
        for dir in [file.clone(), file.join("sub")] {
            let reason = create(&dir).unwrap_err();
            assert_eq!(
                reason,
                format!(
                    "{} is a file, not a directory; give a directory, or a path that does not \
                     exist yet",
                    file.display()
                )
            );
        }
        let fresh = tmp.path().join("a").join("b");
        create(&fresh).unwrap();
        assert!(fresh.is_dir());
        create(&fresh).unwrap();
    }
}
