//! A node's sections state in redb ([`keyquorum_sections::store::ElderStore`]): the record, the
//! section key share sealed with the node's storage key, and the input log.
//!
//! Tables:
//! - `sections_state`: `"record"` -> [`ElderRecord::encode`]; `"share"` -> the share
//!   ([`keyquorum_sections::store::encode_share`]) sealed by [`NodeKeys::seal`] under the label
//!   `sections/share/<section key hex>`, so a sealed share moved to another key's slot does not
//!   open, and nothing secret is ever written in the clear;
//! - `sections_inputs`: sequence number -> the session id (32 bytes, zero for none) and the
//!   encoded [`LoggedInput`].
//!
//! Each method is one redb write transaction, durable (fsync) when it returns, so the
//! write-ahead order [`keyquorum_sections::store::PersistentCoordinator`] keeps survives a
//! crash at any point.

use std::path::Path;
use std::sync::Arc;

use keyquorum_sections::keys::key_bytes;
use keyquorum_sections::sap::KeyShare;
use keyquorum_sections::session::SessionId;
use keyquorum_sections::store::{ElderRecord, ElderStore, LoggedInput, decode_share, encode_share};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::keys::NodeKeys;

const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("sections_state");
const INPUTS: TableDefinition<u64, &[u8]> = TableDefinition::new("sections_inputs");

/// Errors of the sections store. None carries secret material.
#[derive(Debug, thiserror::Error)]
pub enum SectionsStoreError {
    /// redb failed.
    #[error("database: {0}")]
    Db(String),
    /// Stored data does not decode, or the share does not open under the storage key.
    #[error("sections state: {0}")]
    Corrupt(String),
}

fn dberr<E: std::fmt::Display>(e: E) -> SectionsStoreError {
    SectionsStoreError::Db(e.to_string())
}

/// The redb-backed sections store of one node.
pub struct SectionsStore {
    db: Database,
    keys: Arc<NodeKeys>,
}

impl std::fmt::Debug for SectionsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SectionsStore")
    }
}

impl SectionsStore {
    /// Opens (or creates) the store at `path`; `keys` seal and open the share.
    pub fn open(path: &Path, keys: Arc<NodeKeys>) -> Result<Self, SectionsStoreError> {
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .create(path)
            .map_err(dberr)?;
        let w = db.begin_write().map_err(dberr)?;
        {
            w.open_table(STATE).map_err(dberr)?;
            w.open_table(INPUTS).map_err(dberr)?;
        }
        w.commit().map_err(dberr)?;
        Ok(SectionsStore { db, keys })
    }

    fn share_label(section_key: &[u8]) -> String {
        format!("sections/share/{}", hex::encode(section_key))
    }
}

impl ElderStore for SectionsStore {
    type Error = SectionsStoreError;

    fn save(
        &mut self,
        record: &ElderRecord,
        share: Option<&KeyShare>,
    ) -> Result<(), SectionsStoreError> {
        let w = self.db.begin_write().map_err(dberr)?;
        {
            let mut t = w.open_table(STATE).map_err(dberr)?;
            t.insert("record", record.encode().as_slice())
                .map_err(dberr)?;
            match share {
                Some(share) => {
                    let label = Self::share_label(&key_bytes(&share.section_key));
                    let sealed = self.keys.seal(&label, &encode_share(share));
                    t.insert("share", sealed.as_slice()).map_err(dberr)?;
                }
                None => {
                    t.remove("share").map_err(dberr)?;
                }
            }
        }
        w.commit().map_err(dberr)
    }

    fn load(&self) -> Result<Option<(ElderRecord, Option<KeyShare>)>, SectionsStoreError> {
        let r = self.db.begin_read().map_err(dberr)?;
        let t = r.open_table(STATE).map_err(dberr)?;
        let Some(record) = t.get("record").map_err(dberr)? else {
            return Ok(None);
        };
        let record = ElderRecord::decode(record.value())
            .map_err(|e| SectionsStoreError::Corrupt(format!("record: {e}")))?;
        let share = match t.get("share").map_err(dberr)? {
            None => None,
            Some(sealed) => {
                let label = Self::share_label(&key_bytes(&record.sap.section_key));
                let plain = self
                    .keys
                    .open(&label, sealed.value())
                    .map_err(|_| SectionsStoreError::Corrupt("share does not open".into()))?;
                Some(
                    decode_share(&plain)
                        .map_err(|e| SectionsStoreError::Corrupt(format!("share: {e}")))?,
                )
            }
        };
        Ok(Some((record, share)))
    }

    fn log(&mut self, input: &LoggedInput) -> Result<(), SectionsStoreError> {
        let mut value = input.session().map(|s| s.0).unwrap_or([0; 32]).to_vec();
        value.extend_from_slice(&input.encode());
        let w = self.db.begin_write().map_err(dberr)?;
        {
            let mut t = w.open_table(INPUTS).map_err(dberr)?;
            let next = t
                .last()
                .map_err(dberr)?
                .map(|(k, _)| k.value() + 1)
                .unwrap_or(0);
            t.insert(next, value.as_slice()).map_err(dberr)?;
        }
        w.commit().map_err(dberr)
    }

    fn inputs(&self) -> Result<Vec<LoggedInput>, SectionsStoreError> {
        let r = self.db.begin_read().map_err(dberr)?;
        let t = r.open_table(INPUTS).map_err(dberr)?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(dberr)? {
            let (_, v) = entry.map_err(dberr)?;
            let bytes = v.value();
            if bytes.len() < 32 {
                return Err(SectionsStoreError::Corrupt("short input".into()));
            }
            out.push(
                LoggedInput::decode(&bytes[32..])
                    .map_err(|e| SectionsStoreError::Corrupt(format!("input: {e}")))?,
            );
        }
        Ok(out)
    }

    fn remove_session(&mut self, session: &SessionId) -> Result<(), SectionsStoreError> {
        let w = self.db.begin_write().map_err(dberr)?;
        {
            let mut t = w.open_table(INPUTS).map_err(dberr)?;
            t.retain(|_, v| v.len() < 32 || v[..32] != session.0)
                .map_err(dberr)?;
        }
        w.commit().map_err(dberr)
    }

    fn clear_inputs(&mut self) -> Result<(), SectionsStoreError> {
        let w = self.db.begin_write().map_err(dberr)?;
        {
            let mut t = w.open_table(INPUTS).map_err(dberr)?;
            t.retain(|_, _| false).map_err(dberr)?;
        }
        w.commit().map_err(dberr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blstrs::Scalar;
    use keyquorum_crypto::secret::Secret;
    use keyquorum_sections::KeyChain;
    use keyquorum_sections::coordinator::Coordinator;
    use keyquorum_sections::elders::Peer;
    use keyquorum_sections::sap::genesis;
    use keyquorum_sections::store::PersistentCoordinator;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn node_key() -> Secret<Scalar> {
        Secret::new(Scalar::from(4242u64))
    }

    #[test]
    fn the_record_and_sealed_share_survive_a_restart_and_open_only_under_the_storage_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sections.redb");
        let keys = Arc::new(NodeKeys::from_master(&[3; 32]));
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let (sap, share) = genesis(Peer::new(&node_key(), "node:1".into()), &mut rng);
        let secret = Bls12381G1::encode_scalar(share.share.expose());
        let coordinator = Coordinator::new(
            node_key(),
            sap.section_key,
            KeyChain::genesis(),
            sap,
            Some(share),
        )
        .unwrap();
        let store = SectionsStore::open(&path, keys.clone()).unwrap();
        let mut node = PersistentCoordinator::create(coordinator, store).unwrap();
        // An input is logged before the coordinator sees it, even one it then refuses.
        let session = SessionId([7; 32]);
        assert!(node.take(&LoggedInput::Deadline(session)).is_err());
        let record = node.coordinator().record();
        drop(node);

        // Nothing secret is in the file in the clear.
        let raw = std::fs::read(&path).unwrap();
        assert!(!raw.windows(32).any(|w| w == secret.as_slice()));

        // Restart: the record, the share and the log come back.
        let store = SectionsStore::open(&path, keys.clone()).unwrap();
        let (loaded, loaded_share) = store.load().unwrap().unwrap();
        assert_eq!(loaded, record);
        let loaded_share = loaded_share.unwrap();
        assert_eq!(
            Bls12381G1::encode_scalar(loaded_share.share.expose()),
            secret
        );
        assert_eq!(
            store.inputs().unwrap(),
            vec![LoggedInput::Deadline(session)]
        );
        let (restored, _) = PersistentCoordinator::restore(node_key(), store).unwrap();
        assert_eq!(restored.coordinator().record(), record);
        assert!(restored.coordinator().our_share().is_some());
        let mut store = restored.into_store();
        // A session's inputs are removed with it.
        store.remove_session(&session).unwrap();
        assert!(store.inputs().unwrap().is_empty());
        drop(store);

        // Under another storage key the share does not open.
        let other = Arc::new(NodeKeys::from_master(&[4; 32]));
        let store = SectionsStore::open(&path, other).unwrap();
        assert!(matches!(store.load(), Err(SectionsStoreError::Corrupt(_))));
    }

    use keyquorum_crypto::{Bls12381G1, Curve};
}
