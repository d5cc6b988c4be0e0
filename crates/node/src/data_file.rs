//! Opening one of the node's redb data files so that a storage fault is never taken for a new
//! node.
//!
//! Only a missing file is created. An existing file that is empty (0 bytes: truncated, not
//! written by redb), that fails redb's integrity check on open, or on which redb panics, is
//! refused as [`DataFileError::Empty`] or [`DataFileError::Damaged`], naming the file: starting
//! such a store over would silently drop what it held (a beacon's stored rounds, a sections
//! node's share, the FROST nonces a signer already committed to). Only those two advise moving
//! the file aside. A file another process holds open is [`DataFileError::InUse`], and one that
//! cannot be read for another reason (permissions, an I/O error, a file format this build does
//! not read) is [`DataFileError::Unusable`]: neither is damage, and moving such a file aside
//! would discard a healthy store.
//!
//! A new file is made under a temporary name beside it (`<name>.creating`) and linked into
//! place once `init` succeeded, so a process killed while creating it leaves no empty file
//! under the real name, which would then be refused for good; a leftover temporary file is
//! never a store and is made again at the next start. Two processes creating one store at
//! once meet redb's lock on the temporary file, or the name already taken: the second is told
//! the file is in use.
//!
//! The node's own database (`node.redb`, [`crate::store`]) applies the same rules with its own
//! error type, whose advice speaks of ceremonies.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use redb::Database;

/// Why a data file was not opened.
#[derive(Debug, thiserror::Error)]
pub enum DataFileError {
    /// The file exists but holds nothing.
    #[error(
        "data file {} is empty (0 bytes); refusing to start over in it. Restore it from a \
         backup, or move it aside to start this store anew",
        path.display()
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// Another process has the file open.
    #[error(
        "data file {} is in use by another process (is a node already running on this data \
         directory?); stop that process first",
        path.display()
    )]
    InUse {
        /// The file.
        path: PathBuf,
    },
    /// The file exists but cannot be read back intact.
    #[error(
        "data file {} is damaged ({reason}); refusing to start. Restore it from a backup, or \
         move it aside to start this store anew",
        path.display()
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The file could not be read for a reason other than damage.
    #[error("data file {} cannot be used: {reason}", path.display())]
    Unusable {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A new file could not be created (permissions, a full disk).
    #[error("data file {}: {reason}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// Opens `path` with redb's integrity check and runs `init` on the database (creating tables,
/// reading back what the caller needs at start), under the rules of the module docs. `init`'s
/// own error comes back as the inner result, for the caller to judge; a panic in it is damage.
pub fn open<T, E>(
    path: &Path,
    init: impl FnOnce(Database) -> Result<T, E>,
) -> Result<Result<T, E>, DataFileError> {
    let file = || path.to_path_buf();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        keyquorum_devchain::data_dir::create(dir).map_err(|reason| DataFileError::Create {
            path: file(),
            reason,
        })?;
    }
    let existed = match std::fs::metadata(path) {
        Ok(m) if m.len() == 0 => return Err(DataFileError::Empty { path: file() }),
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(DataFileError::Unusable {
                path: file(),
                reason: e.to_string(),
            });
        }
    };
    if existed {
        // redb may panic on pages altered outside it: that is a damaged file, not a crash.
        return match catch_unwind(AssertUnwindSafe(|| create(path).map(init))) {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(e)) => Err(classify(path, e)),
            Err(p) => Err(DataFileError::Damaged {
                path: file(),
                reason: format!("storage library panicked: {}", panic_text(&*p)),
            }),
        };
    }
    let creating = creating_path(path);
    let create_error = |reason: String| DataFileError::Create {
        path: file(),
        reason,
    };
    let db = match catch_unwind(AssertUnwindSafe(|| create(&creating))) {
        Ok(Ok(db)) => db,
        // Another process is creating this store right now.
        Ok(Err(
            e @ (redb::DatabaseError::DatabaseAlreadyOpen
            | redb::DatabaseError::LockProtocolMismatch),
        )) => return Err(classify(path, e)),
        // What a killed creation left: never a store, so it is made again.
        _ => {
            std::fs::remove_file(&creating)
                .map_err(|e| create_error(format!("{}: {e}", creating.display())))?;
            create(&creating).map_err(|e| create_error(e.to_string()))?
        }
    };
    let initialised = catch_unwind(AssertUnwindSafe(|| init(db))).map_err(|p| {
        let _ = std::fs::remove_file(&creating);
        create_error(format!("storage library panicked: {}", panic_text(&*p)))
    })?;
    match initialised {
        Ok(store) => {
            // The open database keeps writing to the file under its new name.
            match link_into_place(&creating, path) {
                Ok(()) => Ok(Ok(store)),
                Err(e) => {
                    drop(store);
                    let _ = std::fs::remove_file(&creating);
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        // Another process created the store meanwhile.
                        Err(DataFileError::InUse { path: file() })
                    } else {
                        Err(create_error(e.to_string()))
                    }
                }
            }
        }
        Err(e) => {
            let _ = std::fs::remove_file(&creating);
            Ok(Err(e))
        }
    }
}

/// Opens or creates the redb file at `path`, checking its integrity.
fn create(path: &Path) -> Result<Database, redb::DatabaseError> {
    Database::builder()
        .set_check_integrity_on_open(true)
        .create(path)
}

/// Where a new `path` is made before it is renamed into place.
fn creating_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".creating");
    path.with_file_name(name)
}

/// Gives `from` the name `to`, never replacing a file already there (another process's
/// store: `AlreadyExists`), and makes the new name durable (the directory synced).
fn link_into_place(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::hard_link(from, to)?;
    std::fs::remove_file(from)?;
    let dir = match to.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d,
        None => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

/// What an error opening an existing file says about it.
fn classify(path: &Path, e: redb::DatabaseError) -> DataFileError {
    use redb::{DatabaseError, StorageError};
    let path = path.to_path_buf();
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            DataFileError::InUse { path }
        }
        DatabaseError::Storage(StorageError::Corrupted(m)) => {
            DataFileError::Damaged { path, reason: m }
        }
        // redb's word for a file that is not (or no longer) a redb database.
        DatabaseError::Storage(StorageError::Io(e))
            if e.kind() == std::io::ErrorKind::InvalidData =>
        {
            DataFileError::Damaged {
                path,
                reason: e.to_string(),
            }
        }
        DatabaseError::RepairAborted => DataFileError::Damaged {
            path,
            reason: "it needed a repair, which did not complete".into(),
        },
        DatabaseError::UpgradeRequired(v) => DataFileError::Unusable {
            path,
            reason: format!("it is in redb file format {v}, which this build cannot read"),
        },
        e => DataFileError::Unusable {
            path,
            reason: e.to_string(),
        },
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(db: Database) -> Result<Database, redb::Error> {
        let w = db.begin_write()?;
        w.open_table(redb::TableDefinition::<&str, u64>::new("t"))?;
        w.commit()?;
        Ok(db)
    }

    #[test]
    fn only_a_missing_file_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("x.redb");
        drop(open(&path, tables).unwrap().unwrap());
        // Opened again: the same store.
        drop(open(&path, tables).unwrap().unwrap());
    }

    #[test]
    fn a_creation_cut_short_leaves_no_file_under_the_real_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.redb");
        // A process killed while creating the store: what it left is under the temporary
        // name only, empty or half written.
        std::fs::write(creating_path(&path), b"").unwrap();
        assert!(!path.exists());
        drop(open(&path, tables).unwrap().unwrap());
        assert!(path.exists() && !creating_path(&path).exists());
        // An init that fails leaves nothing behind either.
        let fresh = dir.path().join("y.redb");
        let failed = open(&fresh, |_db| Err::<(), _>("no")).unwrap();
        assert_eq!(failed, Err("no"));
        assert!(!fresh.exists() && !creating_path(&fresh).exists());
        // The renamed store keeps what was written through the open handle.
        let db = open(&dir.path().join("z.redb"), tables).unwrap().unwrap();
        let w = db.begin_write().unwrap();
        w.open_table(redb::TableDefinition::<&str, u64>::new("t"))
            .unwrap()
            .insert("k", 7)
            .unwrap();
        w.commit().unwrap();
        drop(db);
        let db = open(&dir.path().join("z.redb"), tables).unwrap().unwrap();
        let r = redb::ReadableDatabase::begin_read(&db).unwrap();
        let t = r
            .open_table(redb::TableDefinition::<&str, u64>::new("t"))
            .unwrap();
        assert_eq!(
            redb::ReadableTable::get(&t, "k").unwrap().unwrap().value(),
            7
        );
    }

    #[test]
    fn a_store_another_process_is_creating_or_created_is_in_use_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.redb");
        // Another opener holds the temporary file while it creates the store.
        let creating = Database::create(creating_path(&path)).unwrap();
        let e = open(&path, tables).unwrap_err();
        assert!(matches!(e, DataFileError::InUse { .. }), "{e}");
        assert!(creating_path(&path).exists() && !path.exists());
        drop(creating);
        // Another process's store took the name while this one was being made: kept.
        let e = open(&path, |db| {
            drop(tables(Database::create(dir.path().join("x.redb")).unwrap()).unwrap());
            tables(db)
        })
        .err();
        assert!(matches!(e, Some(DataFileError::InUse { .. })), "{e:?}");
        assert!(path.exists() && !creating_path(&path).exists());
        drop(open(&path, tables).unwrap().unwrap());
    }

    #[test]
    fn an_empty_file_is_refused_and_left_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.redb");
        std::fs::write(&path, b"").unwrap();
        let e = open(&path, tables).unwrap_err();
        assert!(matches!(e, DataFileError::Empty { .. }), "{e}");
        assert!(e.to_string().contains("x.redb"), "{e}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn a_file_held_by_another_opener_is_in_use_not_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.redb");
        let held = open(&path, tables).unwrap().unwrap();
        let e = open(&path, tables).unwrap_err();
        assert!(matches!(e, DataFileError::InUse { .. }), "{e}");
        assert!(!e.to_string().contains("move it aside"), "{e}");
        drop(held);
        drop(open(&path, tables).unwrap().unwrap());
    }

    #[test]
    fn only_damage_advises_moving_a_file_aside() {
        use redb::{DatabaseError, StorageError};
        let path = Path::new("x.redb");
        let io = || std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        for (e, kind) in [
            (DatabaseError::LockProtocolMismatch, "in use"),
            (DatabaseError::DatabaseAlreadyOpen, "in use"),
            (
                DatabaseError::Storage(StorageError::Io(io())),
                "cannot be used",
            ),
            (DatabaseError::UpgradeRequired(1), "cannot be used"),
            (
                DatabaseError::Storage(StorageError::Corrupted("bad page".into())),
                "damaged",
            ),
            (DatabaseError::RepairAborted, "damaged"),
        ] {
            let text = classify(path, e).to_string();
            assert!(text.contains(kind), "{text}");
            assert_eq!(text.contains("move it aside"), kind == "damaged", "{text}");
        }
    }

    #[test]
    fn a_garbage_file_is_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.redb");
        std::fs::write(&path, vec![0xA5; 8192]).unwrap();
        let e = open(&path, tables).unwrap_err();
        assert!(matches!(e, DataFileError::Damaged { .. }), "{e}");
    }
}
