//! A node's sections state in redb ([`keyquorum_sections::store::ElderStore`]): the record, the
//! section key share sealed with the node's storage key, and the input log.
//!
//! Tables:
//! - `sections_state`: `"record"` -> [`ElderRecord::encode`]; `"share"` -> the share
//!   ([`keyquorum_sections::store::encode_share`]) sealed by [`NodeKeys::seal`] under the label
//!   `sections/share/<section key hex>`, so a sealed share moved to another key's slot does not
//!   open, and nothing secret is ever written in the clear; `"kept"` (while there are any) ->
//!   the shares of superseded sessions kept until a SAP applies and those of the split keys of
//!   the record's open splits ([`keyquorum_sections::coordinator::Coordinator::kept_shares`],
//!   [`keyquorum_sections::store::encode_kept_shares`]), sealed under
//!   `sections/kept/<section key hex>`;
//! - `sections_inputs`: sequence number -> the session the input belongs to as a candidate
//!   ([`LoggedInput::candidate_session`]; 32 bytes, zero for none) and the encoded
//!   [`LoggedInput`];
//! - `sections_node`: what the network runtime keeps beside the protocol's record:
//!   `"members"` -> the members this node admitted or learnt ([`encode_members`]),
//!   `"absentees"` -> the members it holds absent ([`Absentees::encode`]), and
//!   `"signed_sap"` -> the last SAP it applied, with both signatures, in the wire encoding of
//!   [`Message::NewElders`], so a client can check the current authority and not only the chain;
//!   `"params"` (elder count and minimum section size, each u64 little-endian) and `"round_ms"`
//!   (u32 big-endian), the network parameters the node first ran with, which a restart must
//!   repeat ([`SectionsStore::bind_params`]).
//!
//! Each method is one redb write transaction, durable (fsync) when it returns, so the
//! write-ahead order [`keyquorum_sections::store::PersistentCoordinator`] keeps survives a
//! crash at any point.

use std::path::Path;
use std::sync::Arc;

use keyquorum_dkg::wire::{Reader, WireError, Writer};
use keyquorum_sections::Name;
use keyquorum_sections::absence::Absentees;
use keyquorum_sections::elders::Member;
use keyquorum_sections::keys::key_bytes;
use keyquorum_sections::sap::KeyShare;
use keyquorum_sections::sap::SignedSap;
use keyquorum_sections::session::SessionId;
use keyquorum_sections::store::{
    ElderRecord, ElderStore, KeptShares, LoggedInput, Stored, decode_kept_shares, decode_share,
    encode_kept_shares, encode_share,
};
use keyquorum_sections::wire::{Message, decode_peer};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::keys::NodeKeys;
use crate::sections_node::join::NetworkParams;

const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("sections_state");
const INPUTS: TableDefinition<u64, &[u8]> = TableDefinition::new("sections_inputs");
const NODE: TableDefinition<&str, &[u8]> = TableDefinition::new("sections_node");

/// Most members a store keeps (a section splits long before).
pub const MAX_STORED_MEMBERS: usize = 1024;

/// Most names of departed members kept ([`SectionsStore::save_departed`]): the oldest go first.
pub const MAX_DEPARTED: usize = 1024;

/// Errors of the sections store. None carries secret material.
#[derive(Debug, thiserror::Error)]
pub enum SectionsStoreError {
    /// The data file could not be opened.
    #[error(transparent)]
    File(crate::data_file::DataFileError),
    /// redb failed.
    #[error("database: {0}")]
    Db(String),
    /// Stored data does not decode, or the share does not open under the storage key.
    #[error("sections state: {0}")]
    Corrupt(String),
    /// The store is another node's: its share is sealed for another identity.
    #[error(
        "sections data file {} belongs to the node with identity {stored}, not to this node \
         ({given}): start it with that node's keystore, or give this node its own data \
         directory",
        path.display()
    )]
    OtherIdentity {
        /// The file.
        path: std::path::PathBuf,
        /// The start of the identity it belongs to (hex).
        stored: String,
        /// The start of this node's identity (hex).
        given: String,
    },
    /// The store belongs to a network of another DKG round: a node whose rounds end sooner or
    /// later than the other candidates' observes them failing or holds them up.
    #[error(
        "this data directory was started with --round-ms {stored}, not {given}: every node of a \
         network must use the same; restart with it"
    )]
    OtherRound {
        /// The stored round, in milliseconds.
        stored: u32,
        /// The round given.
        given: u32,
    },
    /// The store belongs to a network of other section parameters: every node of a network
    /// must use the same, and a node that changed them would select other elders than its
    /// section and split it elsewhere.
    #[error(
        "this data directory was started with --elder-count {stored_elders} and \
         --min-section-size {stored_min}, not {given_elders} and {given_min}: every node of a \
         network must use the same; restart with them"
    )]
    OtherParams {
        /// The stored elder count.
        stored_elders: usize,
        /// The stored minimum section size.
        stored_min: usize,
        /// The elder count given.
        given_elders: usize,
        /// The minimum section size given.
        given_min: usize,
    },
    /// More members than the store reads back ([`MAX_STORED_MEMBERS`]): not written.
    #[error("{count} members, above the {max} a store keeps")]
    TooManyMembers {
        /// The members offered.
        count: usize,
        /// [`MAX_STORED_MEMBERS`].
        max: usize,
    },
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
    /// Opens the store at `path`, creating it only when the file does not exist (an empty,
    /// damaged or busy file is refused: [`crate::data_file`]); `keys` seal and open the share.
    pub fn open(path: &Path, keys: Arc<NodeKeys>) -> Result<Self, SectionsStoreError> {
        let db = crate::data_file::open(path, |db| -> Result<Database, SectionsStoreError> {
            let w = db.begin_write().map_err(dberr)?;
            {
                w.open_table(STATE).map_err(dberr)?;
                w.open_table(INPUTS).map_err(dberr)?;
                w.open_table(NODE).map_err(dberr)?;
            }
            w.commit().map_err(dberr)?;
            Ok(db)
        })
        .map_err(SectionsStoreError::File)??;
        let store = SectionsStore { db, keys };
        store.bind_identity(path)?;
        Ok(store)
    }

    /// The store at `path` under `keys` whatever identity it belongs to: only for tests of
    /// what another storage key can read.
    #[cfg(test)]
    fn open_as_anyone(path: &Path, keys: Arc<NodeKeys>) -> SectionsStore {
        let db = crate::data_file::open(path, Ok::<_, SectionsStoreError>)
            .unwrap()
            .unwrap();
        SectionsStore { db, keys }
    }

    /// Records the node's identity at the first open and refuses a store of another identity
    /// ([`SectionsStoreError::OtherIdentity`]): its share is sealed with that identity's
    /// storage key, and would otherwise be reported as not opening.
    fn bind_identity(&self, path: &Path) -> Result<(), SectionsStoreError> {
        let ours = self.keys.identity().public().as_bytes().to_vec();
        match self.get_node("identity")? {
            // A store written before the record is bound only by the keystore its share
            // opens with: one start with another must not bind it for good.
            None if self.load().is_err() => Err(SectionsStoreError::OtherIdentity {
                path: path.to_path_buf(),
                stored: "another (its share does not open with this keystore)".into(),
                given: format!("{}...", hex::encode(&ours[..8])),
            }),
            None => self.put_node("identity", &ours),
            Some(stored) if stored == ours => Ok(()),
            Some(stored) => Err(SectionsStoreError::OtherIdentity {
                path: path.to_path_buf(),
                stored: format!("{}...", hex::encode(&stored[..stored.len().min(8)])),
                given: format!("{}...", hex::encode(&ours[..8])),
            }),
        }
    }

    fn share_label(section_key: &[u8]) -> String {
        format!("sections/share/{}", hex::encode(section_key))
    }

    fn kept_label(section_key: &[u8]) -> String {
        format!("sections/kept/{}", hex::encode(section_key))
    }

    fn write_state(
        &self,
        record: &ElderRecord,
        share: Option<&KeyShare>,
        kept: &KeptShares<'_>,
        signed: Option<&SignedSap>,
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
            if kept.is_empty() {
                t.remove("kept").map_err(dberr)?;
            } else {
                let label = Self::kept_label(&key_bytes(&record.sap.section_key));
                let sealed = self.keys.seal(&label, &encode_kept_shares(kept));
                t.insert("kept", sealed.as_slice()).map_err(dberr)?;
            }
        }
        if let Some(signed) = signed {
            let mut t = w.open_table(NODE).map_err(dberr)?;
            let bytes = Message::NewElders(signed.clone()).encode();
            t.insert("signed_sap", bytes.as_slice()).map_err(dberr)?;
        }
        w.commit().map_err(dberr)
    }

    fn put_node(&self, key: &str, value: &[u8]) -> Result<(), SectionsStoreError> {
        let w = self.db.begin_write().map_err(dberr)?;
        {
            let mut t = w.open_table(NODE).map_err(dberr)?;
            t.insert(key, value).map_err(dberr)?;
        }
        w.commit().map_err(dberr)
    }

    fn get_node(&self, key: &str) -> Result<Option<Vec<u8>>, SectionsStoreError> {
        let r = self.db.begin_read().map_err(dberr)?;
        let t = r.open_table(NODE).map_err(dberr)?;
        Ok(t.get(key).map_err(dberr)?.map(|v| v.value().to_vec()))
    }

    /// Records whether this node, having joined, still waits for an elder to admit it: a start
    /// on a store where it does asks the elders again.
    pub fn set_admission_pending(&self, pending: bool) -> Result<(), SectionsStoreError> {
        self.put_node("admission_pending", &[u8::from(pending)])
    }

    /// Whether this node joined and no elder has admitted it yet
    /// ([`SectionsStore::set_admission_pending`]).
    pub fn admission_pending(&self) -> Result<bool, SectionsStoreError> {
        Ok(self.get_node("admission_pending")?.as_deref() == Some(&[1]))
    }

    /// Records that the node left its section (`keyquorum sections leave`), for good.
    pub fn mark_left(&self) -> Result<(), SectionsStoreError> {
        self.put_node("left", &[1])
    }

    /// Whether the node left its section ([`SectionsStore::mark_left`]).
    pub fn has_left(&self) -> Result<bool, SectionsStoreError> {
        Ok(self.get_node("left")?.is_some())
    }

    /// Refuses `params` when the store recorded others ([`SectionsStoreError::OtherParams`],
    /// [`SectionsStoreError::OtherRound`]).
    pub fn check_params(&self, params: &NetworkParams) -> Result<(), SectionsStoreError> {
        if let Some(bytes) = self.get_node("round_ms")? {
            let stored: [u8; 4] = bytes.as_slice().try_into().map_err(|_| {
                SectionsStoreError::Corrupt(format!("DKG round: {} bytes, not 4", bytes.len()))
            })?;
            let stored = u32::from_be_bytes(stored);
            if stored != params.round_ms {
                return Err(SectionsStoreError::OtherRound {
                    stored,
                    given: params.round_ms,
                });
            }
        }
        let params = &params.section;
        let Some(bytes) = self.get_node("params")? else {
            return Ok(());
        };
        if bytes.len() != 16 {
            return Err(SectionsStoreError::Corrupt(format!(
                "section parameters: {} bytes, not 16",
                bytes.len()
            )));
        }
        let elders = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        let min = u64::from_le_bytes(bytes[8..].try_into().expect("8 bytes"));
        if (elders, min) == (params.elder_count as u64, params.min_section_size as u64) {
            return Ok(());
        }
        Err(SectionsStoreError::OtherParams {
            stored_elders: usize::try_from(elders).unwrap_or(usize::MAX),
            stored_min: usize::try_from(min).unwrap_or(usize::MAX),
            given_elders: params.elder_count,
            given_min: params.min_section_size,
        })
    }

    /// Records `params` unless the store has them already, and refuses other ones
    /// ([`SectionsStore::check_params`]); a store written before a record (the section
    /// parameters, or the round, recorded since) takes the first it meets.
    pub fn bind_params(&self, params: &NetworkParams) -> Result<(), SectionsStoreError> {
        self.check_params(params)?;
        if self.get_node("round_ms")?.is_none() {
            self.put_node("round_ms", &params.round_ms.to_be_bytes())?;
        }
        if self.get_node("params")?.is_some() {
            return Ok(());
        }
        let section = &params.section;
        let mut bytes = (section.elder_count as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&(section.min_section_size as u64).to_le_bytes());
        self.put_node("params", &bytes)
    }

    /// Replaces the stored members; refuses more than [`MAX_STORED_MEMBERS`], which
    /// [`SectionsStore::members`] would not read back.
    pub fn save_members(&self, members: &[Member]) -> Result<(), SectionsStoreError> {
        if members.len() > MAX_STORED_MEMBERS {
            return Err(SectionsStoreError::TooManyMembers {
                count: members.len(),
                max: MAX_STORED_MEMBERS,
            });
        }
        self.put_node("members", &encode_members(members))
    }

    /// The stored members (none before the first save).
    pub fn members(&self) -> Result<Vec<Member>, SectionsStoreError> {
        match self.get_node("members")? {
            None => Ok(Vec::new()),
            Some(bytes) => decode_members(&bytes)
                .map_err(|e| SectionsStoreError::Corrupt(format!("members: {e}"))),
        }
    }

    /// Replaces the stored names of members that left through this node, oldest first; refuses
    /// more than [`MAX_DEPARTED`], which [`SectionsStore::departed`] would not read back.
    pub fn save_departed(&self, names: &[Name]) -> Result<(), SectionsStoreError> {
        if names.len() > MAX_DEPARTED {
            return Err(SectionsStoreError::Corrupt(format!(
                "{} departed members, at most {MAX_DEPARTED}",
                names.len()
            )));
        }
        let bytes: Vec<u8> = names.iter().flat_map(|n| n.0).collect();
        self.put_node("departed", &bytes)
    }

    /// The stored names of members that left ([`SectionsStore::save_departed`]; none before the
    /// first save).
    pub fn departed(&self) -> Result<Vec<Name>, SectionsStoreError> {
        let Some(bytes) = self.get_node("departed")? else {
            return Ok(Vec::new());
        };
        if bytes.len() % 32 != 0 || bytes.len() / 32 > MAX_DEPARTED {
            return Err(SectionsStoreError::Corrupt(format!(
                "departed members: {} bytes, not a whole number of names up to {MAX_DEPARTED}",
                bytes.len()
            )));
        }
        Ok(bytes
            .chunks_exact(32)
            .map(|c| Name(c.try_into().expect("32 bytes")))
            .collect())
    }

    /// Replaces the stored record of absent members.
    pub fn save_absentees(&self, absentees: &Absentees) -> Result<(), SectionsStoreError> {
        self.put_node("absentees", &absentees.encode())
    }

    /// The stored record of absent members (empty before the first save).
    pub fn absentees(&self) -> Result<Absentees, SectionsStoreError> {
        match self.get_node("absentees")? {
            None => Ok(Absentees::default()),
            Some(bytes) => Absentees::decode(&bytes)
                .map_err(|e| SectionsStoreError::Corrupt(format!("absentees: {e}"))),
        }
    }

    /// Replaces the last applied SAP.
    pub fn save_signed_sap(&self, signed: &SignedSap) -> Result<(), SectionsStoreError> {
        self.put_node("signed_sap", &Message::NewElders(signed.clone()).encode())
    }

    /// The last applied SAP, if any was applied (the genesis SAP is not signed).
    pub fn signed_sap(&self) -> Result<Option<SignedSap>, SectionsStoreError> {
        let Some(bytes) = self.get_node("signed_sap")? else {
            return Ok(None);
        };
        match Message::decode(&bytes) {
            Ok(Message::NewElders(signed)) => Ok(Some(signed)),
            Ok(_) => Err(SectionsStoreError::Corrupt(
                "signed SAP: wrong message".into(),
            )),
            Err(e) => Err(SectionsStoreError::Corrupt(format!("signed SAP: {e}"))),
        }
    }
}

/// Members: a `u32` count, then per member its age and its peer as a `u32`-length-prefixed
/// [`keyquorum_sections::elders::Peer::encode`].
pub fn encode_members(members: &[Member]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(members.len() as u32);
    for m in members {
        let mut peer = Vec::new();
        m.peer.encode(&mut peer);
        w.u8(m.age).bytes(&peer);
    }
    w.finish()
}

/// Decodes [`encode_members`].
pub fn decode_members(bytes: &[u8]) -> Result<Vec<Member>, WireError> {
    let mut r = Reader::new(bytes);
    let n = r.count("members", MAX_STORED_MEMBERS)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let age = r.u8()?;
        let peer = decode_peer(r.bytes("peer", 4096)?)?;
        out.push(Member { peer, age });
    }
    r.finish()?;
    Ok(out)
}

impl ElderStore for SectionsStore {
    type Error = SectionsStoreError;

    fn save(
        &mut self,
        record: &ElderRecord,
        share: Option<&KeyShare>,
        kept: &KeptShares<'_>,
    ) -> Result<(), SectionsStoreError> {
        self.write_state(record, share, kept, None)
    }

    /// The record, the share and the signed SAP that moved the node on, in one transaction:
    /// a crash leaves either the old three or the new three.
    fn save_section(
        &mut self,
        record: &ElderRecord,
        share: Option<&KeyShare>,
        kept: &KeptShares<'_>,
        signed: &SignedSap,
    ) -> Result<(), SectionsStoreError> {
        self.write_state(record, share, kept, Some(signed))
    }

    fn load(&self) -> Result<Option<Stored>, SectionsStoreError> {
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
        let kept = match t.get("kept").map_err(dberr)? {
            None => Vec::new(),
            Some(sealed) => {
                let label = Self::kept_label(&key_bytes(&record.sap.section_key));
                let plain = self
                    .keys
                    .open(&label, sealed.value())
                    .map_err(|_| SectionsStoreError::Corrupt("kept shares do not open".into()))?;
                decode_kept_shares(&plain)
                    .map_err(|e| SectionsStoreError::Corrupt(format!("kept shares: {e}")))?
            }
        };
        Ok(Some((record, share, kept)))
    }

    fn log(&mut self, input: &LoggedInput) -> Result<(), SectionsStoreError> {
        let mut value = input
            .candidate_session()
            .map(|s| s.0)
            .unwrap_or([0; 32])
            .to_vec();
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

    fn clear_inputs(&mut self, keep: Option<&SessionId>) -> Result<(), SectionsStoreError> {
        let w = self.db.begin_write().map_err(dberr)?;
        {
            let mut t = w.open_table(INPUTS).map_err(dberr)?;
            t.retain(|_, v| keep.is_some_and(|s| v.len() >= 32 && v[..32] == s.0))
                .map_err(dberr)?;
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
    use keyquorum_sections::elders::SectionParams;
    use keyquorum_sections::sap::genesis;
    use keyquorum_sections::store::PersistentCoordinator;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use std::time::Duration;

    fn node_key() -> Secret<Scalar> {
        Secret::new(Scalar::from(4242u64))
    }

    /// A store written before the identity record is bound only by the keystore its share
    /// opens with.
    #[test]
    fn an_unrecorded_store_is_bound_only_by_the_keystore_that_sealed_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sections.redb");
        let keys = Arc::new(NodeKeys::from_master(&[3; 32]));
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let (sap, share) = genesis(Peer::new(&node_key(), "node:1".into()), &mut rng);
        let record = ElderRecord {
            genesis_key: sap.section_key,
            chain: KeyChain::genesis(),
            sap,
            superseded: Vec::new(),
            linked: Vec::new(),
            open_splits: Vec::new(),
        };
        let mut unrecorded = SectionsStore::open_as_anyone(&path, keys.clone());
        unrecorded.save(&record, Some(&share), &[]).unwrap();
        drop(unrecorded);
        let other = Arc::new(NodeKeys::from_master(&[4; 32]));
        let err = SectionsStore::open(&path, other.clone()).unwrap_err();
        assert!(
            err.to_string().contains("does not open with this keystore"),
            "{err}"
        );
        SectionsStore::open(&path, keys).unwrap();
        assert!(matches!(
            SectionsStore::open(&path, other),
            Err(SectionsStoreError::OtherIdentity { .. })
        ));
    }

    #[test]
    fn departed_names_read_back_in_order_and_a_bad_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sections.redb");
        let keys = Arc::new(NodeKeys::from_master(&[3; 32]));
        let store = SectionsStore::open(&path, keys.clone()).unwrap();
        assert_eq!(store.departed().unwrap(), Vec::<Name>::new());
        let names = vec![Name([9; 32]), Name([1; 32]), Name([5; 32])];
        store.save_departed(&names).unwrap();
        drop(store);
        let store = SectionsStore::open(&path, keys).unwrap();
        assert_eq!(store.departed().unwrap(), names);
        assert!(
            store
                .save_departed(&vec![Name([0; 32]); MAX_DEPARTED + 1])
                .is_err()
        );
        store.put_node("departed", &[0; 33]).unwrap();
        assert!(matches!(
            store.departed(),
            Err(SectionsStoreError::Corrupt(_))
        ));
    }

    #[test]
    fn section_parameters_are_bound_at_the_first_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sections.redb");
        let keys = Arc::new(NodeKeys::from_master(&[3; 32]));
        let network = NetworkParams::new(SectionParams::default(), Duration::from_millis(1000));
        let params = network.section;
        let store = SectionsStore::open(&path, keys.clone()).unwrap();
        store.bind_params(&network).unwrap();
        drop(store);
        let store = SectionsStore::open(&path, keys).unwrap();
        store.bind_params(&network).unwrap();
        let other_round = NetworkParams {
            round_ms: 500,
            ..network
        };
        let err = store.bind_params(&other_round).unwrap_err();
        assert!(
            matches!(
                err,
                SectionsStoreError::OtherRound {
                    stored: 1000,
                    given: 500
                }
            ),
            "{err}"
        );
        for other in [
            SectionParams {
                elder_count: params.elder_count + 1,
                ..params
            },
            SectionParams {
                min_section_size: params.min_section_size + 1,
                ..params
            },
        ] {
            let other = NetworkParams {
                section: other,
                ..network
            };
            let err = store.bind_params(&other).unwrap_err();
            assert!(
                matches!(err, SectionsStoreError::OtherParams { stored_elders, stored_min, given_elders, given_min }
                    if (stored_elders, stored_min) == (params.elder_count, params.min_section_size)
                        && (given_elders, given_min) == (other.section.elder_count, other.section.min_section_size)),
                "{err}"
            );
        }
        store.bind_params(&network).unwrap();
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
        let (loaded, loaded_share, kept) = store.load().unwrap().unwrap();
        assert!(kept.is_empty());
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

        // Under another storage key the share does not open; another node's keystore is
        // refused by name before that.
        let other = Arc::new(NodeKeys::from_master(&[4; 32]));
        assert!(matches!(
            SectionsStore::open_as_anyone(&path, other.clone()).load(),
            Err(SectionsStoreError::Corrupt(_))
        ));
        let err = SectionsStore::open(&path, other).unwrap_err();
        assert!(
            matches!(&err, SectionsStoreError::OtherIdentity { path: p, .. } if p == &path),
            "{err}"
        );
        assert!(err.to_string().contains("keystore"), "{err}");
        // Its own still opens it, share and all.
        let store = SectionsStore::open(&path, keys).unwrap();
        assert!(store.load().unwrap().unwrap().1.is_some());
    }

    use keyquorum_crypto::{Bls12381G1, Curve};

    #[test]
    fn clearing_the_log_for_a_late_run_keeps_its_inputs_and_its_start_across_a_reopen() {
        use keyquorum_sections::name::Prefix;
        use keyquorum_sections::session::DkgStart;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sections.redb");
        let keys = Arc::new(NodeKeys::from_master(&[3; 32]));
        let mut store = SectionsStore::open(&path, keys.clone()).unwrap();
        let start = DkgStart::new(
            Prefix::ROOT,
            vec![Peer::new(&node_key(), "node:1".into())],
            1,
        );
        let ours = vec![
            LoggedInput::Deadline(start.session),
            LoggedInput::LateRun {
                start: start.clone(),
                skip: 3,
            },
        ];
        store
            .log(&LoggedInput::Deadline(SessionId([9; 32])))
            .unwrap();
        store.log(&ours[0]).unwrap();
        // What the node takes as an elder belongs to no session: it goes too.
        store.log(&LoggedInput::SignStart(start.clone())).unwrap();
        store.log(&ours[1]).unwrap();
        store.clear_inputs(Some(&start.session)).unwrap();
        drop(store);

        let mut store = SectionsStore::open(&path, keys).unwrap();
        assert_eq!(store.inputs().unwrap(), ours);
        store.clear_inputs(None).unwrap();
        assert!(store.inputs().unwrap().is_empty());
    }

    #[test]
    fn a_signed_sap_is_written_with_its_record_and_only_through_save_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sections.redb");
        let keys = Arc::new(NodeKeys::from_master(&[3; 32]));
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let (sap, share) = genesis(Peer::new(&node_key(), "node:1".into()), &mut rng);
        let signed = keyquorum_sections::sap::SignedSap::genesis(&sap, &share);
        let record = ElderRecord {
            genesis_key: sap.section_key,
            chain: KeyChain::genesis(),
            sap,
            superseded: Vec::new(),
            linked: Vec::new(),
            open_splits: Vec::new(),
        };
        let mut store = SectionsStore::open(&path, keys.clone()).unwrap();
        // A plain save (a superseded session, a late share) leaves the signed SAP alone.
        store.save(&record, Some(&share), &[]).unwrap();
        assert!(store.signed_sap().unwrap().is_none());
        store
            .save_section(&record, Some(&share), &[], &signed)
            .unwrap();
        drop(store);
        let store = SectionsStore::open(&path, keys).unwrap();
        assert_eq!(store.load().unwrap().unwrap().0, record);
        assert_eq!(store.signed_sap().unwrap(), Some(signed));
    }

    #[test]
    fn kept_shares_are_sealed_beside_the_record_and_removed_once_none_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sections.redb");
        let keys = Arc::new(NodeKeys::from_master(&[3; 32]));
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let (sap, share) = genesis(Peer::new(&node_key(), "node:1".into()), &mut rng);
        let (_, kept) = genesis(Peer::new(&node_key(), "node:1".into()), &mut rng);
        let secret = Bls12381G1::encode_scalar(kept.share.expose());
        let session = SessionId([9; 32]);
        let record = ElderRecord {
            genesis_key: sap.section_key,
            chain: KeyChain::genesis(),
            sap,
            superseded: vec![(session, 1)],
            linked: Vec::new(),
            open_splits: Vec::new(),
        };
        let mut store = SectionsStore::open(&path, keys.clone()).unwrap();
        // No section key share: what does not open under another key below is the kept one.
        store.save(&record, None, &[(session, &kept)]).unwrap();
        drop(store);
        let raw = std::fs::read(&path).unwrap();
        assert!(!raw.windows(32).any(|w| w == secret.as_slice()));
        let store = SectionsStore::open(&path, keys.clone()).unwrap();
        let (_, _, loaded) = store.load().unwrap().unwrap();
        let [(id, loaded)] = &loaded[..] else {
            panic!("{loaded:?}")
        };
        assert_eq!(*id, session);
        assert_eq!(Bls12381G1::encode_scalar(loaded.share.expose()), secret);
        assert_eq!(
            (loaded.index, loaded.section_key),
            (kept.index, kept.section_key)
        );
        // Under another storage key they do not open.
        drop(store);
        let other = Arc::new(NodeKeys::from_master(&[4; 32]));
        assert!(matches!(
            SectionsStore::open_as_anyone(&path, other).load(),
            Err(SectionsStoreError::Corrupt(_))
        ));
        let mut store = SectionsStore::open(&path, keys).unwrap();
        store.save(&record, Some(&share), &[]).unwrap();
        assert!(store.load().unwrap().unwrap().2.is_empty());
    }

    #[test]
    fn an_open_split_and_its_sealed_share_of_the_split_key_survive_a_reopen() {
        use keyquorum_sections::name::Prefix;
        use keyquorum_sections::store::SplitRecord;
        use keyquorum_sections::successor::Successor;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sections.redb");
        let keys = Arc::new(NodeKeys::from_master(&[3; 32]));
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let founder = || Peer::new(&node_key(), "node:1".into());
        // The split key and our share of it; the half we applied is the current SAP.
        let (parent, parent_share) = genesis(founder(), &mut rng);
        let (mut half, share) = genesis(founder(), &mut rng);
        half.prefix = Prefix::ROOT.child(0).unwrap();
        let secret = Bls12381G1::encode_scalar(parent_share.share.expose());
        let split = SplitRecord {
            session: SessionId([5; 32]),
            generation: 1,
            half: Successor {
                parent_key: parent.section_key,
                prefix: half.prefix,
                key: half.section_key,
            },
            parent,
            // The other half's start failed once: the restart is at the next attempt.
            attempt: 1,
        };
        let record = ElderRecord {
            genesis_key: split.parent.section_key,
            chain: KeyChain::genesis(),
            sap: half,
            superseded: Vec::new(),
            linked: vec![split.half.clone()],
            open_splits: vec![split.clone()],
        };
        let mut store = SectionsStore::open(&path, keys.clone()).unwrap();
        store
            .save(&record, Some(&share), &[(split.session, &parent_share)])
            .unwrap();
        drop(store);
        let raw = std::fs::read(&path).unwrap();
        assert!(!raw.windows(32).any(|w| w == secret.as_slice()));
        let store = SectionsStore::open(&path, keys).unwrap();
        let (loaded, _, kept) = store.load().unwrap().unwrap();
        assert_eq!(loaded, record);
        let [(id, kept)] = &kept[..] else {
            panic!("{kept:?}")
        };
        assert_eq!(*id, split.session);
        assert_eq!(Bls12381G1::encode_scalar(kept.share.expose()), secret);
        assert_eq!(kept.section_key, split.parent.section_key);
    }

    #[test]
    fn members_and_the_signed_sap_survive_a_reopen_and_bad_bytes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sections.redb");
        let keys = Arc::new(NodeKeys::from_master(&[3; 32]));
        let members: Vec<Member> = (1..4u64)
            .map(|i| Member {
                peer: Peer::new(&Secret::new(Scalar::from(i)), format!("node:{i}")),
                age: i as u8,
            })
            .collect();
        let store = SectionsStore::open(&path, keys.clone()).unwrap();
        assert!(store.members().unwrap().is_empty());
        assert!(store.signed_sap().unwrap().is_none());
        assert_eq!(store.absentees().unwrap(), Absentees::default());
        store.save_members(&members).unwrap();
        // More than it reads back: refused, and what was stored stays.
        let too_many = vec![members[0].clone(); MAX_STORED_MEMBERS + 1];
        assert!(matches!(
            store.save_members(&too_many),
            Err(SectionsStoreError::TooManyMembers { count, max: MAX_STORED_MEMBERS })
                if count == MAX_STORED_MEMBERS + 1
        ));
        assert_eq!(store.members().unwrap(), members);
        let mut absentees = Absentees::default();
        absentees.excluded(2, [members[0].peer.name()]).unwrap();
        store.save_absentees(&absentees).unwrap();
        drop(store);
        let store = SectionsStore::open(&path, keys).unwrap();
        assert_eq!(store.members().unwrap(), members);
        assert_eq!(store.absentees().unwrap(), absentees);
        let bytes = encode_members(&members);
        assert!(decode_members(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_members(&[bytes.as_slice(), &[0]].concat()).is_err());
        assert!(decode_members(&u32::MAX.to_be_bytes()).is_err());
    }
}
