//! The node's database (redb): everything needed to resume after `kill -9`.
//!
//! Tables:
//! - `meta`: `"state"` -> the [`NodeState`] as JSON (chain cursor, nonce, registry, the running
//!   ceremony's definition, finished outputs' public parts, which views' shares are held), and
//!   `"active_block"` -> the active view's magic block as JSON (its committee signs the next
//!   handover, so a restarted node checks handover partials against it);
//! - `inputs`: `(session id, sequence)` -> one encoded participant [`Input`], in the order the
//!   participant consumed them;
//! - `secrets`: label -> a value sealed with the node's storage key ([`NodeKeys::seal`]): each
//!   ceremony's participant seed (`seed/<session id>`), its secret share once finished
//!   (`output/<session id>`), and the share of each view held (`share/<view>`).
//!
//! The driver writes one transaction per chain block or per batch of peer messages, containing
//! the inputs it is about to consume and the new state, and commits it (fsync) before any
//! resulting message, post or signature leaves the process. A block without transactions or
//! events, which moves only the cursor and causes nothing to be sent, is written with the next
//! transaction (or after 64 such heights); after a crash it is processed again. A crash
//! therefore leaves either none or all of a batch, and the replay of seed plus logged inputs
//! reproduces every output byte for byte.
//!
//! # Storage faults
//! Only a missing file means a new node. An existing file that is empty (0 bytes) or fails
//! redb's integrity check on open (every page checksum of the committed trees is verified) is
//! refused with [`StoreError::EmptyFile`] or [`StoreError::Damaged`], naming the file: a node
//! that silently started over would deal again with a fresh seed in a ceremony it already
//! contributed to, and be slashed for equivocation. A panic inside redb on damaged data is
//! caught and reported the same way; a file another process holds is [`StoreError::InUse`],
//! not damage. The node's other data files follow the same rules ([`crate::data_file`]).
//!
//! # Whose file, on which chain
//! `meta` also records, at the first start, the identity whose storage key seals the secrets
//! (`"identity"`) and the chain the state follows (`"chain"`, [`ChainStatus::genesis`]); a
//! start with another keystore or on another chain is refused ([`StoreError::OtherIdentity`],
//! [`StoreError::OtherChain`]), and so is a chain of that genesis that lacks blocks the file
//! processed ([`StoreError::AheadOfChain`]: restarted or cut short). Such a node would keep its
//! stored view, registration and nonce and follow nothing, or skip the new chain's first
//! blocks. A file written before these records takes the first identity whose keys open its
//! sealed secrets and the first chain that has the blocks it processed.
//!
//! [`ChainStatus::genesis`]: crate::chain::ChainStatus::genesis
//! [`NodeKeys::seal`]: crate::keys::NodeKeys::seal

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use keyquorum_contract::CeremonySpec;
use keyquorum_contract::follow::Position;
use keyquorum_contract::magic::MagicBlock;
use keyquorum_contract::tx::NetworkIdentity;
use keyquorum_dkg::identity::{IdentityPublicKey, PUBLIC_KEY_LEN};
use keyquorum_dkg::participant::Input;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Key in `meta` of the active view's magic block (JSON).
const ACTIVE_BLOCK: &str = "active_block";
/// Key in `meta` of the identity (public key, hex) whose storage key seals the secrets.
const IDENTITY: &str = "identity";
/// Key in `meta` of the chain whose blocks the state follows ([`ChainStatus::genesis`]).
///
/// [`ChainStatus::genesis`]: crate::chain::ChainStatus::genesis
const CHAIN: &str = "chain";
/// `meta` key of [`Store::bind_chain_origin`].
const CHAIN_ORIGIN: &str = "chain_origin";
const INPUTS: TableDefinition<(&[u8; 32], u64), &[u8]> = TableDefinition::new("inputs");
const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed.
    #[error("database: {0}")]
    Db(#[from] redb::Error),
    /// Stored data does not decode.
    #[error("database content: {0}")]
    Corrupt(String),
    /// The data file exists but holds nothing: it was truncated, not created by this node.
    #[error(
        "node data file {} is empty (0 bytes); refusing to start over in it. Restore it from a \
         backup; without one, move it aside to start as a new node, which then follows the \
         chain from the start and sits out any ceremony it had already contributed to",
        path.display()
    )]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// Another process (a node already running on this data directory) has the file open.
    #[error(
        "node data file {} is in use by another process (is a node already running on this \
         data directory?); stop that process first",
        path.display()
    )]
    InUse {
        /// The file.
        path: PathBuf,
    },
    /// The data file cannot be read for a reason other than damage (permissions, I/O, a file
    /// format this build does not read).
    #[error("node data file {} cannot be used: {reason}", path.display())]
    Unusable {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The data file is another node's: its secrets are sealed for another identity.
    #[error(
        "node data file {} belongs to the node with identity {stored}, not to this node \
         ({given}): start it with that node's keystore, or give this node its own data directory",
        path.display()
    )]
    OtherIdentity {
        /// The file.
        path: PathBuf,
        /// The identity it belongs to (the start of its public key, hex).
        stored: String,
        /// This node's identity (the start of its public key, hex).
        given: String,
    },
    /// The data file follows another chain than the one the node is connected to.
    #[error(
        "node data file {} follows another chain ({stored}), not this one ({given}): point the \
         node at that chain, or give it another data directory for this one",
        path.display()
    )]
    OtherChain {
        /// The file.
        path: PathBuf,
        /// The chain it follows.
        stored: String,
        /// The chain the node is connected to.
        given: String,
    },
    /// The data file has processed blocks the chain does not have.
    #[error(
        "node data file {} has processed the chain up to height {processed}, but the chain is \
         at height {height}: it lost blocks or was started over. Refusing to follow it: the \
         blocks this node acted on are not the chain's. Restore the chain's data, or give this \
         node another data directory",
        path.display()
    )]
    AheadOfChain {
        /// The file.
        path: PathBuf,
        /// The last height it processed.
        processed: u64,
        /// The chain's height.
        height: u64,
    },
    /// The data file exists but cannot be read back intact.
    #[error(
        "node data file {} is damaged ({reason}); refusing to start. Restore it from a backup; \
         without one, move it aside to start as a new node, which then follows the chain from \
         the start and sits out any ceremony it had already contributed to",
        path.display()
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// The start of a long hex string, for messages.
fn short(hex: &str) -> String {
    match hex.get(..16) {
        Some(start) if hex.len() > 16 => format!("{start}..."),
        _ => hex.to_string(),
    }
}

fn dberr<E: Into<redb::Error>>(e: E) -> StoreError {
    StoreError::Db(e.into())
}

/// How the node takes part in a ceremony.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seat {
    /// Deals and/or plays; the participant is rebuilt from its sealed seed and logged inputs.
    #[default]
    Participant,
    /// Follows the board only: a member of the previous committee that is not in this ceremony
    /// still signs the handover, and checks the magic block against its own board first.
    Observer,
    /// Selected while the node was catching up with the chain: it follows the board and, once
    /// caught up, takes part or sits out (see the driver's module docs).
    CatchingUp,
    /// It may have dealt (lost database) but the state behind that is gone: dealing again with
    /// a fresh seed would be equivocation, so it only follows the board.
    SittingOut,
    /// Caught up after the deal window closed, with no trace of dealing: it plays (receives,
    /// reports, complains, posts its pairs) but never deals, since a deal could no longer count
    /// and, drawn from a fresh seed, could contradict one a lost or superseded copy of its
    /// database made. Rebuilt from its sealed seed and logged inputs like a participant.
    Player,
}

impl Seat {
    /// Whether a participant runs in this seat (rebuilt from its seed and logged inputs after
    /// a restart), rather than the board alone.
    pub fn runs_participant(self) -> bool {
        matches!(self, Seat::Participant | Seat::Player)
    }
}

/// The ceremony the node takes part in (its record in the state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CeremonyRecord {
    /// View being created.
    pub view: u64,
    /// Ceremony number within the view change (0 for the first; serialised as `session`).
    #[serde(rename = "session")]
    pub ceremony_number: u32,
    /// Session id (hex).
    pub session_id: String,
    /// The contract's definition of the ceremony.
    pub spec: CeremonySpec,
    /// Inputs logged so far.
    pub inputs: u64,
    /// The participant finished (success or failure).
    pub done: bool,
    /// How the node takes part.
    #[serde(default)]
    pub seat: Seat,
}

/// An exclusion as the node saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExclusionRecord {
    /// `dealer` or `player`.
    pub role: String,
    /// Position in that role.
    pub index: u32,
    /// Identity (hex).
    pub identity: String,
    /// Fault name.
    pub fault: String,
}

/// The public part of a finished ceremony (the secret share is sealed separately).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    /// View.
    pub view: u64,
    /// Ceremony number within the view change (0 for the first; serialised as `session`).
    #[serde(rename = "session")]
    pub ceremony_number: u32,
    /// Session id (hex).
    pub session_id: String,
    /// Succeeded.
    pub success: bool,
    /// Own player position, if a player.
    pub player_index: Option<u32>,
    /// Group key (hex, compressed G1).
    pub group_key: Option<String>,
    /// Qualified dealers (positions).
    pub qualified: Vec<u32>,
    /// Qualified dealers (identities, hex).
    pub qualified_identities: Vec<String>,
    /// Exclusions.
    pub exclusions: Vec<ExclusionRecord>,
    /// Whether `output/<session id>` holds a share.
    pub has_share: bool,
}

/// A view whose share the node holds in `share/<view>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareRecord {
    /// View.
    pub view: u64,
    /// Ceremony number within the view change (0 for the first; serialised as `session`).
    #[serde(rename = "session")]
    pub ceremony_number: u32,
    /// Member index in that view's magic block.
    pub index: u64,
    /// Group key (hex).
    pub group_key: String,
}

/// The magic block awaiting signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingMagic {
    /// View.
    pub view: u64,
    /// Ceremony number within the view change (0 for the first; serialised as `session`).
    #[serde(rename = "session")]
    pub ceremony_number: u32,
    /// Block hash (hex).
    pub hash: String,
    /// Own index in the block, if a member.
    pub index: Option<u64>,
    /// Group key (hex).
    pub group_key: String,
    /// Member identities (hex), in index order.
    pub members: Vec<String>,
    /// The block itself (for the view's beacon group).
    #[serde(default)]
    pub block: Option<keyquorum_contract::magic::MagicBlock>,
}

/// A member of a view's beacon group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeaconMemberRecord {
    /// Identity (hex).
    pub identity: String,
    /// Share index in the view's magic block.
    pub index: u64,
    /// Public key share (hex, compressed G1).
    pub public_share: String,
}

/// The beacon of the active view, fixed when the view was activated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeaconViewRecord {
    /// View.
    pub view: u64,
    /// Hash of the view's magic block (hex).
    pub magic_block_hash: String,
    /// The chain the view signs on, as drand's chain info JSON.
    pub chain_info: String,
    /// Signing threshold `t`.
    pub threshold: u32,
    /// The committee in magic block order.
    pub members: Vec<BeaconMemberRecord>,
    /// Own index, if this node holds a share of the view.
    pub own_index: Option<u64>,
    /// Chains that fresh-key view changes ended, the latest last (at most
    /// `driver::MAX_ENDED_CHAINS`): what this node fetches of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ended: Vec<EndedChainRecord>,
}

/// A chain a fresh-key view change ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndedChainRecord {
    /// The chain, as drand's chain info JSON.
    pub chain_info: String,
    /// The last round it can have: the one in progress when the chain after it began.
    pub last_round: u64,
    /// Identities (hex) of the committee that signed it, who hold its rounds.
    pub committee: Vec<String>,
}

/// The signing-key ceremony this node takes part in ([`keyquorum_contract::signing_key`]); its
/// seed is sealed as `seed/<session id>` and its inputs are logged under its session id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningCeremonyRecord {
    /// The view whose committee makes the key.
    pub view: u64,
    /// Session id (hex).
    pub session_id: String,
    /// The ceremony's definition, from `SigningKeyStarted`.
    pub spec: CeremonySpec,
    /// The key it reshares, from `SigningKeyStarted` (absent: a new key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reshare: Option<keyquorum_contract::signing_key::SigningKeyReshare>,
    /// Inputs logged.
    pub inputs: u64,
    /// Last block of the board phase in progress (its posts expire then).
    #[serde(default)]
    pub deadline: u64,
    /// This node's player position, once its participant finished with a share (sealed as
    /// `signing-output/<session id>`).
    #[serde(default)]
    pub output_position: Option<u32>,
    /// Whether it deals and plays, follows the board until caught up, or sits out (never an
    /// observer: only the view's committee, and the holders of a key it reshares, follow
    /// this ceremony).
    #[serde(default)]
    pub seat: Seat,
}

/// A view's signing key as this node holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyHeld {
    /// View.
    pub view: u64,
    /// The record the chain announced, which this node's own board gave too.
    pub key: keyquorum_contract::signing_key::SigningKeyRecord,
    /// This node's position among the members, when it holds a share (sealed as
    /// `signing-share/<view>`).
    pub own_position: Option<u32>,
}

/// The board's phase, as the chain's last `PhaseChanged` named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseRecord {
    /// `idle`, `contribute`, `share`, `publish` or `wait`.
    pub name: String,
    /// Last block of the phase.
    pub deadline: u64,
    /// Board attempt of the ceremony in progress.
    pub attempt: u32,
}

/// Everything the node persists besides inputs and secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    /// Next block height to process.
    pub cursor: u64,
    /// Next transaction nonce, as the chain counts it.
    pub nonce: u64,
    /// Whether the chain has our registration.
    pub registered: bool,
    /// Height of the block that deregistered this node (a `Deregister` signed with its key, by
    /// its operator), cleared when it registers again. A node that finds itself unregistered
    /// registers by itself only if this is unset: `--rejoin` clears it for one start
    /// ([`Store::forget_deregistration`]).
    #[serde(default)]
    pub deregistered_at: Option<u64>,
    /// Started with `--rejoin` and not caught up with the chain since: a deregistration in a
    /// block processed meanwhile was signed before the operator asked to rejoin, so it is not
    /// recorded in [`NodeState::deregistered_at`]; one processed after the catch-up is.
    #[serde(default)]
    pub rejoining: bool,
    /// Whether the chain has our verifiable-encryption key (complaint-variant ceremonies select
    /// only nodes that set one).
    #[serde(default)]
    pub verifiable_key_set: bool,
    /// The `crash` fault fired already.
    pub crashed_once: bool,
    /// Registered nodes (identity hex -> network identity): address hints.
    pub registry: BTreeMap<String, NetworkIdentity>,
    /// Registered nodes' verifiable-encryption keys (identity hex to key hex), from
    /// `VerifiableKeySet`: the keys a complaint-variant ceremony's players must have.
    #[serde(default)]
    pub verifiable_keys: BTreeMap<String, String>,
    /// Registered nodes' share-encryption keys (identity hex to key hex), from `Registered`:
    /// the keys every ceremony's players must have.
    #[serde(default)]
    pub encryption_keys: BTreeMap<String, String>,
    /// Whether this database recorded those keys (`encryption_keys`, `verifiable_keys`) from
    /// the chain's first block: true for every database made since they are recorded. An
    /// older one lacks the keys of nodes registered before its upgrade, and a spec naming a
    /// key it has no record of is then taken as it is (as before the check existed) instead
    /// of refused; a key it did record must still match.
    #[serde(default)]
    pub keys_recorded_from_start: bool,
    /// Whether this database has once processed the chain up to the head the runtime reported.
    /// From then on it is the node's only record (one database per key): a ceremony it has no
    /// record of, started while it later catches up again after being down, is one this node
    /// did not deal in. A new database (a lost one replaced) cannot say that of the ceremonies it
    /// catches up on first, and neither can a database restored from a backup, which
    /// [`Store::mark_restored_from_backup`] makes forget it caught up. "The head" is the chain
    /// endpoint's: an endpoint lagging behind the chain would make a new database mark itself
    /// caught up early, so the node must follow an authoritative endpoint.
    #[serde(default)]
    pub caught_up: bool,
    /// The board's phase as the last processed block left it, so that `/status` shows it
    /// again after a restart instead of nothing until the next change.
    #[serde(default)]
    pub phase: Option<PhaseRecord>,
    /// The running ceremony. Stored as `ceremony`; a state written under its earlier name,
    /// `session`, still loads.
    #[serde(alias = "session")]
    pub ceremony: Option<CeremonyRecord>,
    /// Recently finished ceremonies, newest last.
    pub outputs: Vec<OutputRecord>,
    /// Views whose shares are held, newest last (the current and the previous one).
    pub shares: Vec<ShareRecord>,
    /// The magic block being signed.
    pub pending_magic: Option<PendingMagic>,
    /// The active view.
    pub current_view: u64,
    /// Hash (hex) of the active view's magic block, as the chain activated it: the previous
    /// hash every next magic block must name.
    #[serde(default)]
    pub current_hash: Option<String>,
    /// Where the event follower stands (the ceremony it follows, the last magic block): the
    /// follower resumes from it. A state written before it was stored resumes from `ceremony`.
    #[serde(default)]
    pub follower: Position,
    /// The active view's beacon (absent before the first view, or for a view whose magic block
    /// this node did not record).
    #[serde(default)]
    pub beacon: Option<BeaconViewRecord>,
    /// The running signing-key ceremony.
    #[serde(default)]
    pub signing_ceremony: Option<SigningCeremonyRecord>,
    /// Signing keys of the current and previous views, newest last.
    #[serde(default)]
    pub signing_keys: Vec<SigningKeyHeld>,
    /// The chain's slashing records of signing-key faults in the current and previous views:
    /// who sits out the next signing-key ceremony, which the node checks the chain's spec
    /// against ([`keyquorum_contract::signing_key::sitting_out`]).
    #[serde(default)]
    pub signing_key_slashings: Vec<keyquorum_contract::SlashingRecord>,
}

/// Encodes a participant input for the log. A direct message is stored with its authenticated
/// sender (tag 4; tag 1, a message without its sender, is no longer written or read).
pub fn encode_input(input: &Input) -> Vec<u8> {
    match input {
        Input::Start => vec![0],
        Input::Message { from, payload } => [&[4u8][..], from.as_bytes(), payload].concat(),
        Input::BoardPost(p) => [&[2u8][..], p].concat(),
        Input::Deadline => vec![3],
    }
}

/// Decodes [`encode_input`].
pub fn decode_input(bytes: &[u8]) -> Result<Input, StoreError> {
    let corrupt = || StoreError::Corrupt("input log entry".into());
    match bytes.split_first() {
        Some((0, [])) => Ok(Input::Start),
        Some((4, m)) if m.len() >= PUBLIC_KEY_LEN => {
            let (from, payload) = m.split_at(PUBLIC_KEY_LEN);
            Ok(Input::Message {
                from: IdentityPublicKey::from_bytes(from).map_err(|_| corrupt())?,
                payload: payload.to_vec(),
            })
        }
        Some((2, p)) => Ok(Input::BoardPost(p.to_vec())),
        Some((3, [])) => Ok(Input::Deadline),
        _ => Err(corrupt()),
    }
}

/// Decodes the stored [`NodeState`] (JSON in the `meta` table).
pub fn decode_state(bytes: &[u8]) -> Result<NodeState, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("state: {e}")))
}

/// The database.
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Opens the database, creating it only when `path` does not exist. An existing file that
    /// is empty or damaged is refused (see the module docs).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        use crate::data_file::DataFileError;
        let existed = path.exists();
        let opened = crate::data_file::open(path, |db| -> Result<Store, StoreError> {
            let w = db.begin_write().map_err(dberr)?;
            {
                w.open_table(META).map_err(dberr)?;
                w.open_table(INPUTS).map_err(dberr)?;
                w.open_table(SECRETS).map_err(dberr)?;
            }
            w.commit().map_err(dberr)?;
            let store = Store {
                db,
                path: path.to_path_buf(),
            };
            // Everything the driver reads at startup must read back now.
            store.load_state()?;
            store.active_block()?;
            Ok(store)
        })
        .map_err(|e| match e {
            DataFileError::Empty { path } => StoreError::EmptyFile { path },
            DataFileError::Damaged { path, reason } => StoreError::Damaged { path, reason },
            DataFileError::InUse { path } => StoreError::InUse { path },
            DataFileError::Unusable { path, reason } => StoreError::Unusable { path, reason },
            DataFileError::Create { path, reason } => StoreError::Unusable { path, reason },
        })?;
        match opened {
            Ok(store) => Ok(store),
            // What the driver needs does not read back from a file that opened: damaged.
            Err(e) if existed => Err(StoreError::Damaged {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Binds the file to `identity` on first use, and refuses it to any other
    /// ([`StoreError::OtherIdentity`]): its secrets are sealed with that identity's storage key,
    /// and its state records that identity's deals and registrations.
    ///
    /// A file written before the record takes the identity only if its sealed secrets open
    /// with `keys` (one start with another node's keystore must not bind it for good).
    pub fn bind_identity(&self, keys: &crate::keys::NodeKeys) -> Result<(), StoreError> {
        let given = hex::encode(keys.identity().public().as_bytes());
        if self.record(IDENTITY)?.is_none()
            && let Some((label, sealed)) = self.first_secret()?
            && keys.open(&label, &sealed).is_err()
        {
            return Err(StoreError::OtherIdentity {
                path: self.path.clone(),
                stored: "another (its secrets do not open with this keystore)".into(),
                given: short(&given),
            });
        }
        self.bind(IDENTITY, &given, |stored| StoreError::OtherIdentity {
            path: self.path.clone(),
            stored: short(stored),
            given: short(&given),
        })
    }

    /// One sealed secret (label and bytes), if any.
    fn first_secret(&self) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let r = self.db.begin_read().map_err(dberr)?;
        let t = r.open_table(SECRETS).map_err(dberr)?;
        let mut iter = t.iter().map_err(dberr)?;
        match iter.next() {
            None => Ok(None),
            Some(entry) => {
                let (k, v) = entry.map_err(dberr)?;
                Ok(Some((k.value().to_string(), v.value().to_vec())))
            }
        }
    }

    /// The value recorded under `key` in `meta`, if any.
    fn record(&self, key: &str) -> Result<Option<String>, StoreError> {
        let r = self.db.begin_read().map_err(dberr)?;
        let t = r.open_table(META).map_err(dberr)?;
        match t.get(key).map_err(dberr)? {
            None => Ok(None),
            Some(v) => String::from_utf8(v.value().to_vec())
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("{key} record: {e}"))),
        }
    }

    /// Binds the file to the chain with `genesis` ([`ChainStatus::genesis`]) on first use and
    /// refuses any other ([`StoreError::OtherChain`]), and refuses a chain of that genesis whose
    /// `height` is below the blocks the file has processed ([`StoreError::AheadOfChain`]): in
    /// both cases the stored state (cursor, registration, nonce, ceremonies) describes blocks
    /// the chain does not have, and following it would skip or contradict them.
    ///
    /// [`ChainStatus::genesis`]: crate::chain::ChainStatus::genesis
    pub fn bind_chain(&self, genesis: &str, height: u64) -> Result<(), StoreError> {
        if let Some(stored) = self.record(CHAIN)?
            && stored != genesis
        {
            return Err(StoreError::OtherChain {
                path: self.path.clone(),
                stored,
                given: genesis.to_string(),
            });
        }
        // Checked before a file written before the record takes this chain's.
        let cursor = self.load_state()?.map_or(0, |s| s.cursor);
        if cursor > height.saturating_add(1) {
            return Err(StoreError::AheadOfChain {
                path: self.path.clone(),
                processed: cursor - 1,
                height,
            });
        }
        self.bind(CHAIN, genesis, |stored| StoreError::OtherChain {
            path: self.path.clone(),
            stored: stored.to_string(),
            given: genesis.to_string(),
        })
    }

    /// Binds the file to the chain instance `origin` ([`crate::chain::ChainStatus::origin`]):
    /// recorded at the first start that has one (a file written before the record takes it
    /// then), and another refused as another chain.
    pub fn bind_chain_origin(&self, origin: &str) -> Result<(), StoreError> {
        self.bind(CHAIN_ORIGIN, origin, |stored| StoreError::OtherChain {
            path: self.path.clone(),
            stored: stored.to_string(),
            given: origin.to_string(),
        })
    }

    /// Records `value` under `key` in `meta` when absent (a new file, or one written before
    /// the record), and refuses another value with `other`.
    fn bind(
        &self,
        key: &str,
        value: &str,
        other: impl FnOnce(&str) -> StoreError,
    ) -> Result<(), StoreError> {
        if let Some(stored) = self.record(key)? {
            return if stored == value {
                Ok(())
            } else {
                Err(other(&stored))
            };
        }
        let batch = self.begin()?;
        batch
            .txn
            .open_table(META)
            .map_err(dberr)?
            .insert(key, value.as_bytes())
            .map_err(dberr)?;
        batch.commit()
    }

    /// The persisted state, if any.
    pub fn load_state(&self) -> Result<Option<NodeState>, StoreError> {
        let r = self.db.begin_read().map_err(dberr)?;
        let t = r.open_table(META).map_err(dberr)?;
        match t.get("state").map_err(dberr)? {
            None => Ok(None),
            Some(v) => decode_state(v.value()).map(Some),
        }
    }

    /// Marks this database as restored from a backup, durably: it forgets that it once caught
    /// up ([`NodeState::caught_up`]), since a ceremony started after the backup was taken may
    /// have been dealt in by the node while a later copy of the database was its record. Until
    /// it catches up again, it sits out every ceremony whose board cannot show yet whether it
    /// dealt, as a new database does.
    pub fn mark_restored_from_backup(&self) -> Result<(), StoreError> {
        let Some(mut state) = self.load_state()? else {
            return Ok(());
        };
        state.caught_up = false;
        let mut batch = self.begin()?;
        batch.put_state(&state)?;
        batch.commit()
    }

    /// Forgets that this node was deregistered ([`NodeState::deregistered_at`]), durably, so
    /// that it registers again (`--rejoin`). Deregistrations in blocks it processes before it
    /// has caught up with the chain are of before this start and not recorded
    /// ([`NodeState::rejoining`]); a later one is.
    pub fn forget_deregistration(&self) -> Result<(), StoreError> {
        let Some(mut state) = self.load_state()? else {
            return Ok(());
        };
        let forgotten = state.deregistered_at.take().is_some();
        if !forgotten && state.rejoining {
            return Ok(());
        }
        state.rejoining = true;
        let mut batch = self.begin()?;
        batch.put_state(&state)?;
        batch.commit()
    }

    /// The active view's magic block, as [`Batch::put_active_block`] last wrote it.
    pub fn active_block(&self) -> Result<Option<MagicBlock>, StoreError> {
        let r = self.db.begin_read().map_err(dberr)?;
        let t = r.open_table(META).map_err(dberr)?;
        match t.get(ACTIVE_BLOCK).map_err(dberr)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(v.value())
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("active magic block: {e}"))),
        }
    }

    /// The logged inputs of a ceremony (by session id), in order.
    pub fn inputs(&self, session: &[u8; 32]) -> Result<Vec<Input>, StoreError> {
        let r = self.db.begin_read().map_err(dberr)?;
        let t = r.open_table(INPUTS).map_err(dberr)?;
        let mut out = Vec::new();
        for entry in t
            .range((session, 0u64)..=(session, u64::MAX))
            .map_err(dberr)?
        {
            let (_, v) = entry.map_err(dberr)?;
            out.push(decode_input(v.value())?);
        }
        Ok(out)
    }

    /// A sealed secret.
    pub fn secret(&self, label: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let r = self.db.begin_read().map_err(dberr)?;
        let t = r.open_table(SECRETS).map_err(dberr)?;
        Ok(t.get(label).map_err(dberr)?.map(|v| v.value().to_vec()))
    }

    /// Starts a batch of writes, durable when committed.
    pub fn begin(&self) -> Result<Batch, StoreError> {
        let mut txn = self.db.begin_write().map_err(dberr)?;
        txn.set_durability(redb::Durability::Immediate)
            .map_err(dberr)?;
        Ok(Batch { txn })
    }
}

/// One atomic group of writes.
pub struct Batch {
    txn: WriteTransaction,
}

impl Batch {
    /// Replaces the state.
    pub fn put_state(&mut self, state: &NodeState) -> Result<(), StoreError> {
        let json = serde_json::to_vec(state).expect("state serializes");
        let mut t = self.txn.open_table(META).map_err(dberr)?;
        t.insert("state", json.as_slice()).map_err(dberr)?;
        Ok(())
    }

    /// Replaces the active view's magic block (`None` removes it). Kept apart from the state,
    /// which is rewritten with every batch, since it is written once per view and holds every
    /// member's keys and addresses.
    pub fn put_active_block(&mut self, block: Option<&MagicBlock>) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(META).map_err(dberr)?;
        match block {
            Some(block) => {
                let json = serde_json::to_vec(block).expect("magic block serializes");
                t.insert(ACTIVE_BLOCK, json.as_slice()).map_err(dberr)?;
            }
            None => {
                t.remove(ACTIVE_BLOCK).map_err(dberr)?;
            }
        }
        Ok(())
    }

    /// Appends one input to a ceremony's log.
    pub fn append_input(
        &mut self,
        session: &[u8; 32],
        seq: u64,
        input: &Input,
    ) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(INPUTS).map_err(dberr)?;
        t.insert((session, seq), encode_input(input).as_slice())
            .map_err(dberr)?;
        Ok(())
    }

    /// A ceremony's log as this batch sees it (including its own uncommitted appends).
    pub fn inputs(&self, session: &[u8; 32]) -> Result<Vec<Input>, StoreError> {
        let t = self.txn.open_table(INPUTS).map_err(dberr)?;
        let mut out = Vec::new();
        for entry in t
            .range((session, 0u64)..=(session, u64::MAX))
            .map_err(dberr)?
        {
            let (_, v) = entry.map_err(dberr)?;
            out.push(decode_input(v.value())?);
        }
        Ok(out)
    }

    /// Drops a ceremony's log.
    pub fn delete_inputs(&mut self, session: &[u8; 32]) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(INPUTS).map_err(dberr)?;
        t.retain_in((session, 0u64)..=(session, u64::MAX), |_, _| false)
            .map_err(dberr)?;
        Ok(())
    }

    /// Stores a sealed secret.
    pub fn put_secret(&mut self, label: &str, sealed: &[u8]) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(SECRETS).map_err(dberr)?;
        t.insert(label, sealed).map_err(dberr)?;
        Ok(())
    }

    /// Deletes a sealed secret.
    pub fn delete_secret(&mut self, label: &str) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(SECRETS).map_err(dberr)?;
        t.remove(label).map_err(dberr)?;
        Ok(())
    }

    /// Makes the batch durable.
    pub fn commit(self) -> Result<(), StoreError> {
        self.txn.commit().map_err(dberr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_roundtrip_in_order_and_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("n.redb")).unwrap();
        let s1 = [1u8; 32];
        let s2 = [2u8; 32];
        let inputs = vec![
            Input::Start,
            Input::Message {
                from: keyquorum_dkg::identity::IdentityKeypair::from_seed(&[3; 32])
                    .unwrap()
                    .public()
                    .clone(),
                payload: vec![9, 9],
            },
            Input::BoardPost(vec![]),
            Input::Deadline,
        ];
        let mut b = store.begin().unwrap();
        for (i, input) in inputs.iter().enumerate() {
            b.append_input(&s1, i as u64, input).unwrap();
        }
        b.append_input(&s2, 0, &Input::Deadline).unwrap();
        let state = NodeState {
            cursor: 7,
            nonce: 3,
            ..Default::default()
        };
        b.put_state(&state).unwrap();
        b.commit().unwrap();
        assert_eq!(store.inputs(&s1).unwrap(), inputs);
        assert_eq!(store.load_state().unwrap(), Some(state));
        // An uncommitted batch leaves nothing behind.
        let mut b = store.begin().unwrap();
        b.append_input(&s1, 4, &Input::Start).unwrap();
        drop(b);
        assert_eq!(store.inputs(&s1).unwrap().len(), 4);
        let mut b = store.begin().unwrap();
        b.delete_inputs(&s1).unwrap();
        b.commit().unwrap();
        assert!(store.inputs(&s1).unwrap().is_empty());
        assert_eq!(store.inputs(&s2).unwrap(), vec![Input::Deadline]);
        assert!(decode_input(&[7]).is_err());
        assert!(decode_input(&[0, 1]).is_err());
        // A message needs a whole, valid sender key.
        assert!(decode_input(&[4; 40]).is_err());
        assert!(decode_input(&[&[4u8][..], &[0; PUBLIC_KEY_LEN]].concat()).is_err());
    }

    fn filled(path: &Path) {
        let store = Store::open(path).unwrap();
        let mut b = store.begin().unwrap();
        // Enough log entries that the committed tree spans most of the file.
        let from = keyquorum_dkg::identity::IdentityKeypair::from_seed(&[3; 32])
            .unwrap()
            .public()
            .clone();
        for i in 0..400u64 {
            let input = Input::Message {
                from: from.clone(),
                payload: vec![i as u8; 1000],
            };
            b.append_input(&[3u8; 32], i, &input).unwrap();
        }
        b.put_state(&NodeState {
            cursor: 42,
            ..Default::default()
        })
        .unwrap();
        b.commit().unwrap();
    }

    #[test]
    fn only_a_missing_file_makes_a_new_node() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("node.redb");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.load_state().unwrap(), None);
        drop(store);
        filled(&path);
        // A healthy file reopens with its content.
        let store = Store::open(&path).unwrap();
        assert_eq!(store.load_state().unwrap().unwrap().cursor, 42);
    }

    #[test]
    fn a_data_directory_that_is_a_file_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        std::fs::write(&data_dir, b"not a directory").unwrap();
        let path = data_dir.join("node.redb");
        let err = Store::open(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "node data file {} cannot be used: {} is a file, not a directory; give a \
                 directory, or a path that does not exist yet",
                path.display(),
                data_dir.display()
            )
        );
    }

    #[test]
    fn an_empty_data_file_is_refused_not_started_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        filled(&path);
        std::fs::File::create(&path).unwrap(); // truncates to 0 bytes
        let err = Store::open(&path).unwrap_err();
        assert!(
            matches!(&err, StoreError::EmptyFile { path: p } if p == &path),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("empty") && text.contains("backup"), "{text}");
        // Nothing was written into it.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn a_data_file_held_by_a_running_node_is_in_use_not_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        let running = Store::open(&path).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(
            matches!(&err, StoreError::InUse { path: p } if p == &path),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("in use") && !text.contains("move it aside"),
            "{text}"
        );
        drop(running);
        Store::open(&path).unwrap();
    }

    #[test]
    fn a_data_file_with_zeroed_pages_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        filled(&path);
        let mut bytes = std::fs::read(&path).unwrap();
        let len = bytes.len();
        assert!(len > 64 * 1024, "{len}");
        bytes[len / 3..2 * len / 3].fill(0);
        std::fs::write(&path, &bytes).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(
            matches!(&err, StoreError::Damaged { path: p, .. } if p == &path),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(
            text.contains("damaged") && text.contains("backup"),
            "{text}"
        );
    }

    fn keys(seed: u8) -> crate::keys::NodeKeys {
        crate::keys::NodeKeys::from_master(&[seed; 32])
    }

    fn identity_start(seed: u8) -> String {
        hex::encode(&keys(seed).identity().public().as_bytes()[..8])
    }

    #[test]
    fn a_data_file_is_refused_to_another_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        let store = Store::open(&path).unwrap();
        store.bind_identity(&keys(1)).unwrap();
        store.bind_identity(&keys(1)).unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        let err = store.bind_identity(&keys(2)).unwrap_err();
        assert!(
            matches!(&err, StoreError::OtherIdentity { path: p, .. } if p == &path),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&path.display().to_string())
                && text.contains(&identity_start(1))
                && text.contains(&identity_start(2))
                && text.contains("keystore"),
            "{text}"
        );
        // The refusal changed nothing: the file is still the first identity's.
        store.bind_identity(&keys(1)).unwrap();
    }

    /// A file written before the record is bound only by a keystore its secrets open with:
    /// one start with another node's keystore must not bind it for good.
    #[test]
    fn an_unrecorded_file_is_bound_only_by_the_keystore_that_sealed_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        let store = Store::open(&path).unwrap();
        let mut batch = store.begin().unwrap();
        batch
            .put_secret("seed/x", &keys(1).seal("seed/x", b"secret"))
            .unwrap();
        batch.commit().unwrap();
        let err = store.bind_identity(&keys(2)).unwrap_err();
        assert!(
            err.to_string().contains("do not open with this keystore"),
            "{err}"
        );
        store.bind_identity(&keys(1)).unwrap();
        assert!(store.bind_identity(&keys(2)).is_err());
    }

    #[test]
    fn a_data_file_is_refused_to_another_chain_and_to_a_shorter_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        // A file written before the record (state at cursor 42) takes the first chain's.
        filled(&path);
        let store = Store::open(&path).unwrap();
        // A chain without its blocks is refused before it is recorded: the right one is
        // still taken after it.
        let err = store.bind_chain("devchain:cc", 3).unwrap_err();
        assert!(matches!(err, StoreError::AheadOfChain { .. }), "{err}");
        store.bind_chain("devchain:aa", 41).unwrap();
        let err = store.bind_chain("devchain:bb", 100).unwrap_err();
        assert!(
            matches!(&err, StoreError::OtherChain { stored, given, .. }
                if stored == "devchain:aa" && given == "devchain:bb"),
            "{err}"
        );
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        // The same chain, holding every block the file processed (up to 41), or more.
        store.bind_chain("devchain:aa", 41).unwrap();
        store.bind_chain("devchain:aa", 1000).unwrap();
        // The same chain without them.
        let err = store.bind_chain("devchain:aa", 40).unwrap_err();
        assert!(
            matches!(
                &err,
                StoreError::AheadOfChain {
                    processed: 41,
                    height: 40,
                    ..
                }
            ),
            "{err}"
        );
        // A new file binds to any chain at any height.
        let fresh = Store::open(&dir.path().join("new.redb")).unwrap();
        fresh.bind_chain("evm:1:0x00:x", 0).unwrap();
    }
}
