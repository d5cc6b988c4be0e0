//! Golden vectors: named byte strings compared with a committed JSON file.
//!
//! A vector file maps each name to `{"note": what the object is, "hex": its encoding}`. A test
//! collects the vectors it builds into a [`Vectors`] and calls [`Vectors::check`], which fails
//! naming every vector that differs from the file (changed, missing from the file, or no longer
//! built). Setting `KQ_UPDATE_VECTORS=1` rewrites the file instead, for an intentional change of
//! encoding; the diff of the file then shows exactly which encodings changed.
//!
//! Shared by the test suites of several crates, so there is one reader and
//! one writer of the format.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The environment variable that rewrites vector files instead of checking them.
pub const UPDATE_ENV: &str = "KQ_UPDATE_VECTORS";

/// Vectors built by one test, checked against one file.
pub struct Vectors {
    path: PathBuf,
    entries: BTreeMap<String, (String, Vec<u8>)>,
}

impl Vectors {
    /// Vectors for `file` under `dir` (a crate's `tests/vectors`).
    pub fn new(dir: &str, file: &str) -> Self {
        Vectors {
            path: PathBuf::from(dir).join(file),
            entries: BTreeMap::new(),
        }
    }

    /// Adds a vector. Names are unique within a file.
    pub fn add(&mut self, name: &str, note: &str, bytes: &[u8]) {
        let previous = self
            .entries
            .insert(name.to_string(), (note.to_string(), bytes.to_vec()));
        assert!(previous.is_none(), "vector {name} added twice");
    }

    /// The bytes of a vector added earlier.
    pub fn get(&self, name: &str) -> &[u8] {
        &self.entries[name].1
    }

    fn to_json(&self) -> String {
        let map: serde_json::Map<String, serde_json::Value> = self
            .entries
            .iter()
            .map(|(name, (note, bytes))| {
                (
                    name.clone(),
                    serde_json::json!({ "note": note, "hex": hex::encode(bytes) }),
                )
            })
            .collect();
        let mut text = serde_json::to_string_pretty(&serde_json::Value::Object(map))
            .expect("a map of strings serializes");
        text.push('\n');
        text
    }

    /// Compares with the file (or rewrites it when [`UPDATE_ENV`] is `1`); panics naming every
    /// vector that differs.
    pub fn check(self) {
        if std::env::var(UPDATE_ENV).is_ok_and(|v| v == "1") {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)
                    .unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
            }
            std::fs::write(&self.path, self.to_json())
                .unwrap_or_else(|e| panic!("writing {}: {e}", self.path.display()));
            return;
        }
        let text = std::fs::read_to_string(&self.path).unwrap_or_else(|e| {
            panic!(
                "reading {}: {e} (run with {UPDATE_ENV}=1 to create it)",
                self.path.display()
            )
        });
        let file: BTreeMap<String, serde_json::Value> = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not a vector file: {e}", self.path.display()));
        let mut differences = Vec::new();
        for (name, (_, bytes)) in &self.entries {
            let Some(expected) = file
                .get(name)
                .and_then(|v| v.get("hex"))
                .and_then(|h| h.as_str())
            else {
                differences.push(format!("{name}: not in the file"));
                continue;
            };
            let Ok(expected) = hex::decode(expected) else {
                differences.push(format!("{name}: the file's hex does not decode"));
                continue;
            };
            if &expected != bytes {
                let at = expected
                    .iter()
                    .zip(bytes)
                    .position(|(a, b)| a != b)
                    .unwrap_or(expected.len().min(bytes.len()));
                differences.push(format!(
                    "{name}: differs at byte {at} (file {} bytes, built {} bytes)",
                    expected.len(),
                    bytes.len()
                ));
            }
        }
        for name in file.keys() {
            if !self.entries.contains_key(name) {
                differences.push(format!("{name}: in the file but no longer built"));
            }
        }
        assert!(
            differences.is_empty(),
            "{} vector(s) differ from {} (if the change of encoding is intended, rerun with \
             {UPDATE_ENV}=1 and commit the file):\n  {}",
            differences.len(),
            self.path.display(),
            differences.join("\n  ")
        );
    }
}
