//! Schnorr signatures on demand with the view's secp256k1 signing key
//! ([`keyquorum_contract::signing_key`]): FROST(secp256k1, SHA-256) as RFC 9591 specifies it, or
//! its BIP-340 mode, run by the key's committee over `keyquorum-net` (kind
//! [`keyquorum_net::FROST_KIND`]) with the roles of `keyquorum-signing`.
//!
//! # Rounds
//! The member asked over HTTP coordinates. Each attempt draws a fresh 32-byte signing session
//! and
//! 1. commits itself and asks every other member not yet named a culprit to commit
//!    ([`FrostRequest::Commit`]); a member draws its nonces, stores them durably ([`NonceDb`])
//!    and only then answers with its commitments. The first `t` commitments (its own included)
//!    fix the signer set;
//! 2. sends the signing request (message, mode and commitment list) to those signers
//!    ([`FrostRequest::Sign`]); each takes its nonces out of the store, durably, before it
//!    computes its share, so a nonce pair signs at most once even across a crash;
//! 3. aggregates the shares and verifies the signature under the group key before it is
//!    returned. When the sum does not verify, every share is checked against its signer's
//!    commitment and public key share (RFC 9591 section 5.4) and the signers of invalid
//!    shares are named;
//! 4. whatever the outcome, tells the members whose nonces no round two took to drop them
//!    ([`FrostRequest::Release`], in the background), so that they do not fill the members'
//!    stores until their time to live.
//!
//! # Retries
//! A signer whose share is invalid, that refuses round two or answers it with something that
//! is not its share package, or that does not answer it within the round's timeout, is a
//! culprit ([`Culprit`], [`SignerFault`]). [`Signing`] then starts a new attempt with a new
//! session, so every member draws fresh nonces (no commitment serves two attempts), leaving
//! out every culprit named so far, as long as at least `t` members (the coordinator
//! included) remain and fewer than [`MAX_ATTEMPTS`] attempts were made. An attempt that
//! gets fewer than `t` commitments in round one ends the request: fewer members cannot give
//! more commitments; the members that gave none are named as culprits. The request's
//! [`Failure`] names every culprit of every attempt. [`Session`] and [`Signing`] decide;
//! the node's signing service does the I/O (`SignService::sign_schnorr`).
//!
//! A member that refuses a round because the request's view is not its active one is no
//! culprit: around a view change honest members move to the new view at slightly different
//! blocks, and a coordinator still catching up asks for a view that is over. It is counted
//! apart ([`Failure::other_view`]) and left out of later attempts like a culprit (an honest
//! member would refuse again; a faulty one that commits and then claims another view cannot
//! hold every attempt), and a request that falls short because of such members fails as a
//! view change under way (retry), not as their fault.
//!
//! A member's nonces are stored under a hash of the coordinator's identity and the signing
//! session, so a round-two request from anyone but the coordinator that asked for them finds
//! none. Every package is matched to the member the network authenticated: a commitment or
//! share naming another signer, or for another session, is refused and counted.
//!
//! The message is signed as given (no domain separation is added): BIP-340 signatures verify
//! under the x-only key in any BIP-340 verifier.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use keyquorum_contract::signing_key::{SigningCurve, SigningKeyRecord};
use keyquorum_crypto::Curve;
use keyquorum_crypto::frost::{
    self, FrostError, Identifier, KeyPackage, Mode, PublicKeyPackage, SignatureShare, bip340,
};
use keyquorum_crypto::secret::{Secret, SecretBytes};
use keyquorum_signing::{
    CommitmentPackage, Coordinator, CoordinatorError, NonceStore, SessionId as SigningSession,
    SharePackage, Signer, SigningRequest,
};
use redb::{Database, ReadableDatabase, TableDefinition};
use sha2::{Digest, Sha256};

use crate::keys::NodeKeys;

/// Longest message a Schnorr signature is made on: a BLS request's bound.
pub const MAX_MESSAGE_LEN: usize = keyquorum_beacon::sign::MAX_MESSAGE_LEN;

const REQUEST_COMMIT: u8 = 1;
const REQUEST_SIGN: u8 = 2;
const REQUEST_RELEASE: u8 = 3;
const ANSWER_OK: u8 = 0;
const ANSWER_REFUSED: u8 = 1;

/// The Schnorr scheme of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// FROST(secp256k1, SHA-256), RFC 9591: 65-byte signatures `R || z` under the 33-byte key.
    Frost,
    /// BIP-340: 64-byte signatures under the 32-byte x-only key.
    Bip340,
}

impl Scheme {
    /// The scheme of a request's `scheme` field.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "frost-secp256k1" => Some(Scheme::Frost),
            "bip340" => Some(Scheme::Bip340),
            _ => None,
        }
    }

    /// The request spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Frost => "frost-secp256k1",
            Scheme::Bip340 => "bip340",
        }
    }

    fn mode(self) -> Mode {
        match self {
            Scheme::Frost => Mode::Rfc9591,
            Scheme::Bip340 => Mode::Bip340,
        }
    }
}

/// Why a member refused a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrostRefusal {
    /// Another view, or a sender that is not a member.
    OtherView = 1,
    /// This member holds no share of the key.
    NoShare = 2,
    /// The request does not decode.
    Malformed = 3,
    /// No stored nonces for this coordinator and session (never committed, or spent).
    NoNonces = 4,
    /// The signer refused the request (mode, list without its commitment, below threshold).
    Refused = 5,
    /// The nonce store failed.
    Store = 6,
    /// The coordinator already released this session ([`FrostRequest::Release`] came first),
    /// or used it before.
    SessionUsed = 7,
    /// The coordinator has as many nonce pairs waiting at this member as it may
    /// ([`NonceDbError::CoordinatorFull`]): its own doing, so the member is no culprit.
    CoordinatorFull = 8,
}

impl FrostRefusal {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => FrostRefusal::OtherView,
            2 => FrostRefusal::NoShare,
            3 => FrostRefusal::Malformed,
            4 => FrostRefusal::NoNonces,
            5 => FrostRefusal::Refused,
            6 => FrostRefusal::Store,
            7 => FrostRefusal::SessionUsed,
            8 => FrostRefusal::CoordinatorFull,
            _ => return None,
        })
    }

    /// Stable name for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            FrostRefusal::OtherView => "other_view",
            FrostRefusal::NoShare => "no_share",
            FrostRefusal::Malformed => "malformed",
            FrostRefusal::NoNonces => "no_nonces",
            FrostRefusal::Refused => "refused",
            FrostRefusal::Store => "store",
            FrostRefusal::SessionUsed => "session_used",
            FrostRefusal::CoordinatorFull => "coordinator_full",
        }
    }
}

/// A round request between members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrostRequest {
    /// Round one: commit for `session` of `view`'s key.
    Commit {
        /// View.
        view: u64,
        /// Signing session.
        session: [u8; 32],
    },
    /// Round two: sign `request` with the nonces committed for its session.
    Sign {
        /// View.
        view: u64,
        /// The signing request.
        request: SigningRequest,
    },
    /// The coordinator is done with `session`: drop its nonces unused, and refuse a commit
    /// request for it still on its way. Sent to the members whose commitments the attempt did
    /// not use, so that their pairs do not wait out [`NONCE_TTL_MS`].
    Release {
        /// View (not checked: releasing is harmless in any view).
        view: u64,
        /// Signing session.
        session: [u8; 32],
    },
}

impl FrostRequest {
    /// Wire encoding: tag, view, then the session or the encoded signing request.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            FrostRequest::Commit { view, session } => {
                [&[REQUEST_COMMIT][..], &view.to_be_bytes(), session].concat()
            }
            FrostRequest::Release { view, session } => {
                [&[REQUEST_RELEASE][..], &view.to_be_bytes(), session].concat()
            }
            FrostRequest::Sign { view, request } => [
                &[REQUEST_SIGN][..],
                &view.to_be_bytes(),
                &request.to_bytes(),
            ]
            .concat(),
        }
    }

    /// Whether `bytes` is a [`FrostRequest::Release`] (by its tag; for counting answers).
    pub fn is_release(bytes: &[u8]) -> bool {
        bytes.first() == Some(&REQUEST_RELEASE)
    }

    /// Decodes [`FrostRequest::to_bytes`] for a key of `members` members.
    pub fn from_bytes(bytes: &[u8], members: usize) -> Option<Self> {
        let (&tag, rest) = bytes.split_first()?;
        if rest.len() < 8 {
            return None;
        }
        let (view, rest) = rest.split_at(8);
        let view = u64::from_be_bytes(view.try_into().ok()?);
        match tag {
            REQUEST_COMMIT => Some(FrostRequest::Commit {
                view,
                session: rest.try_into().ok()?,
            }),
            REQUEST_RELEASE => Some(FrostRequest::Release {
                view,
                session: rest.try_into().ok()?,
            }),
            REQUEST_SIGN => Some(FrostRequest::Sign {
                view,
                request: SigningRequest::from_bytes(rest, MAX_MESSAGE_LEN, members).ok()?,
            }),
            _ => None,
        }
    }
}

fn answer_ok(bytes: Vec<u8>) -> Vec<u8> {
    [&[ANSWER_OK][..], &bytes].concat()
}

fn answer_refused(r: FrostRefusal) -> Vec<u8> {
    vec![ANSWER_REFUSED, r as u8]
}

/// A member's answer: the package bytes, or the refusal.
pub fn parse_answer(bytes: &[u8]) -> Result<&[u8], Option<FrostRefusal>> {
    match bytes.split_first() {
        Some((&ANSWER_OK, rest)) => Ok(rest),
        Some((&ANSWER_REFUSED, [code])) => Err(FrostRefusal::from_byte(*code)),
        _ => Err(None),
    }
}

/// The view's signing key as the signing service uses it.
#[derive(Debug)]
pub struct FrostView {
    view: u64,
    session: keyquorum_net::SessionId,
    public: PublicKeyPackage,
    /// Members' identities and FROST identifiers, in committee order.
    members: Vec<(Vec<u8>, Identifier)>,
    own: Option<usize>,
    /// This node's identifier and share, checked against its public key share.
    share: Option<(Identifier, Secret<<SigningCurve as Curve>::Scalar>)>,
    threshold: usize,
}

/// The network session of a signing key's FROST rounds (its allow-list is the key's committee).
pub fn frost_session(key: &SigningKeyRecord) -> keyquorum_net::SessionId {
    let mut h = Sha256::new();
    h.update(b"keyquorum/frost-session/v1");
    h.update(key.session_id.0);
    h.finalize().into()
}

impl FrostView {
    /// The key of `view` as the chain recorded it, with this node's `(position, share)` if it
    /// holds one.
    pub fn new(
        view: u64,
        key: &SigningKeyRecord,
        share: Option<(u32, Secret<<SigningCurve as Curve>::Scalar>)>,
    ) -> Result<Self, String> {
        let group_key = SigningCurve::decode_point_nonzero(&key.group_key.0)
            .map_err(|e| format!("group key: {e}"))?;
        let mut members = Vec::with_capacity(key.members.len());
        let mut shares = Vec::with_capacity(key.members.len());
        for m in &key.members {
            let id = Identifier::from_bytes(&m.index.0).map_err(|e| format!("index: {e}"))?;
            let point = SigningCurve::decode_point(&m.public_share.0)
                .map_err(|e| format!("public share: {e}"))?;
            members.push((m.identity.0.to_vec(), id));
            shares.push((id, point));
        }
        let threshold = key.threshold as usize;
        let public =
            PublicKeyPackage::new(group_key, threshold, shares).map_err(|e| e.to_string())?;
        let (own, key_package) = match share {
            Some((position, share)) => {
                let p = position as usize;
                let (_, id) = members.get(p).ok_or("own position out of range")?;
                let kp =
                    KeyPackage::new(*id, share.clone(), group_key).map_err(|e| e.to_string())?;
                // The share must be the one the chain's record names for this member.
                if kp.verifying_share() != public.verifying_share(id).map_err(|e| e.to_string())? {
                    return Err("own share does not match its public key share".into());
                }
                (Some(p), Some((*id, share)))
            }
            None => (None, None),
        };
        Ok(FrostView {
            view,
            session: frost_session(key),
            public,
            members,
            own,
            share: key_package,
            threshold,
        })
    }

    /// The view.
    pub fn view(&self) -> u64 {
        self.view
    }

    /// The network session of its rounds.
    pub fn session(&self) -> keyquorum_net::SessionId {
        self.session
    }

    /// The members' identities, in committee order.
    pub fn committee(&self) -> Vec<Vec<u8>> {
        self.members.iter().map(|(i, _)| i.clone()).collect()
    }

    /// Whether this node holds a share.
    pub fn is_member(&self) -> bool {
        self.share.is_some() && self.own.is_some()
    }

    fn key_package(&self) -> Option<KeyPackage> {
        let (id, share) = self.share.as_ref()?;
        KeyPackage::new(*id, share.clone(), *self.public.group_key()).ok()
    }

    /// The threshold.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The group key, compressed (33 bytes).
    pub fn group_key(&self) -> [u8; 33] {
        let mut out = Vec::with_capacity(33);
        SigningCurve::encode_point(self.public.group_key(), &mut out);
        out.try_into().unwrap_or([0; 33])
    }

    /// The public key package.
    pub fn public(&self) -> &PublicKeyPackage {
        &self.public
    }

    fn member(&self, identity: &[u8]) -> Option<Identifier> {
        self.members
            .iter()
            .find(|(i, _)| i == identity)
            .map(|(_, id)| *id)
    }
}

/// Where a member's nonces wait between its two rounds: a redb table in
/// `frost-nonces.redb` next to the node's database, each entry sealed with the node's storage
/// key and stamped with the time it was made, plus a table of the keys used, so that a session
/// never gets a second pair. Writes commit durably before they return (redb's default
/// durability), but for a release ([`CoordinatorNonces::release`]), which need not.
///
/// Both tables are bounded, per coordinator. A coordinator asks every member for a commitment
/// and uses the first `t`; it releases the others' nonces ([`FrostRequest::Release`]), but a
/// release can be lost, and any committee member can ask for commitments at will. Entries older
/// than [`NONCE_TTL_MS`] are therefore dropped at the next write (a signing request is long over
/// by then: a reused session then just gets fresh nonces, which `round2` matches against the
/// request's commitment list). Each entry records which coordinator it is for, and each
/// coordinator has a share of its own: a commit request beyond its
/// [`MAX_PENDING_PER_COORDINATOR`] waiting pairs is refused
/// ([`NonceDbError::CoordinatorFull`], which names no culprit), and its oldest used-session mark
/// makes room for a new one beyond [`MAX_USED_PER_COORDINATOR`] (the bounds given to
/// [`NonceDb::with_limits`] replace both). A single store-wide bound would let one member that
/// asks for commitments and never signs fill the store of every other member, whose refusals
/// would then name them, not it. Only committee members reach the store ([`answer`]), so it
/// holds at most a committee's shares.
pub struct NonceDb {
    db: Database,
    keys: Arc<NodeKeys>,
    max_pending: u64,
    max_used: u64,
}

impl std::fmt::Debug for NonceDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceDb")
    }
}

/// Key -> the time the nonces were made (8 bytes, big-endian ms), the coordinator's tag
/// ([`CoordinatorNonces::owner`], 8 bytes) and the sealed nonces.
const PENDING: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("pending-v3");
/// Key -> the time it was used (8 bytes, big-endian ms) and the coordinator's tag (8 bytes).
const USED: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("used-v3");
/// The tables before entries named their coordinator, dropped at open: a pair waiting in them
/// is then simply not found by its round two, and a used mark only ever refused.
const PENDING_V2: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("pending-v2");
const USED_V2: TableDefinition<&[u8; 32], u64> = TableDefinition::new("used-v2");

/// How long a member keeps nonces for a round two, and remembers a used session: ten minutes,
/// far beyond any signing request's timeout.
pub const NONCE_TTL_MS: u64 = 10 * 60 * 1000;

/// Nonce pairs a member holds at once for one coordinator. A pair waits until its round two,
/// its release or [`NONCE_TTL_MS`]: the requests a coordinator signs at once
/// (`sign.max_pending`, 16 by default, up to [`MAX_ATTEMPTS`] attempts each: 48 pairs) fit more
/// than twice over, the rest is for releases lost within the time to live. Beyond it, commit
/// requests are refused with [`FrostRefusal::CoordinatorFull`] until pairs are used, released
/// or expire.
pub const MAX_PENDING_PER_COORDINATOR: u64 = 128;

/// Used sessions a member remembers at once for one coordinator (within [`NONCE_TTL_MS`]);
/// beyond it the oldest mark goes (a mark only refuses a second commit for a session, which
/// would get fresh nonces anyway).
pub const MAX_USED_PER_COORDINATOR: u64 = 1024;

/// A nonce store failure.
#[derive(Debug, thiserror::Error)]
pub enum NonceDbError {
    /// The data file could not be opened.
    #[error(transparent)]
    File(crate::data_file::DataFileError),
    /// redb failed.
    #[error("nonce database: {0}")]
    Db(String),
    /// The session had nonces already.
    #[error("nonces already exist or were used for this session")]
    SessionReused,
    /// A stored entry does not open with this node's key.
    #[error("stored nonces do not open")]
    Sealed,
    /// The coordinator holds as many waiting pairs in this store as it may (see [`NonceDb`]).
    #[error("this coordinator has as many nonce pairs waiting here as it may")]
    CoordinatorFull,
}

fn dberr<E: std::fmt::Display>(e: E) -> NonceDbError {
    NonceDbError::Db(e.to_string())
}

impl NonceDb {
    /// Opens the store, creating it only when `path` does not exist; an empty, damaged or busy
    /// file is refused ([`crate::data_file`]).
    pub fn open(path: &Path, keys: Arc<NodeKeys>) -> Result<Self, NonceDbError> {
        let db = crate::data_file::open(path, |db| -> Result<Database, NonceDbError> {
            let w = db.begin_write().map_err(dberr)?;
            w.delete_table(PENDING_V2).map_err(dberr)?;
            w.delete_table(USED_V2).map_err(dberr)?;
            w.open_table(PENDING).map_err(dberr)?;
            w.open_table(USED).map_err(dberr)?;
            w.commit().map_err(dberr)?;
            Ok(db)
        })
        .map_err(NonceDbError::File)??;
        Ok(NonceDb {
            db,
            keys,
            max_pending: MAX_PENDING_PER_COORDINATOR,
            max_used: MAX_USED_PER_COORDINATOR,
        })
    }

    /// Drops every nonce pair waiting for its round two, durably, and returns how many there
    /// were. For a store restored from a backup (`keyquorum node --restored-from-backup`): a
    /// pair in it may have been used in a round two after the backup was taken, and a second
    /// round two with the same nonces and another binding factor reveals the key share. The
    /// used sessions are kept: they only refuse.
    pub fn forget_pending(&self) -> Result<u64, NonceDbError> {
        use redb::ReadableTableMetadata;
        let w = self.db.begin_write().map_err(dberr)?;
        let dropped = {
            let mut pending = w.open_table(PENDING).map_err(dberr)?;
            let n = pending.len().map_err(dberr)?;
            pending.retain(|_, _| false).map_err(dberr)?;
            n
        };
        w.commit().map_err(dberr)?;
        Ok(dropped)
    }

    /// The same store with other per-coordinator bounds than [`MAX_PENDING_PER_COORDINATOR`]
    /// and [`MAX_USED_PER_COORDINATOR`].
    pub fn with_limits(mut self, max_pending: u64, max_used: u64) -> Self {
        self.max_pending = max_pending;
        self.max_used = max_used;
        self
    }

    fn label(key: &[u8; 32]) -> String {
        format!("frost-nonces/{}", hex::encode(key))
    }

    /// The store of the nonces a `coordinator` asked for, at `now_ms` (Unix time).
    pub fn for_coordinator<'a>(
        &'a self,
        coordinator: &'a [u8],
        now_ms: u64,
    ) -> CoordinatorNonces<'a> {
        CoordinatorNonces {
            db: self,
            coordinator,
            now_ms,
        }
    }
}

/// [`NonceDb`] seen by one coordinator: its entries are keyed by the coordinator's identity
/// and the session (module docs).
pub struct CoordinatorNonces<'a> {
    db: &'a NonceDb,
    coordinator: &'a [u8],
    now_ms: u64,
}

impl CoordinatorNonces<'_> {
    /// The entry's key: the coordinator's tag, then 24 bytes of a hash of the coordinator and
    /// the session, so that one coordinator's entries are one range of the table.
    fn key(&self, session: &SigningSession) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"keyquorum/frost-nonce-key/v1");
        h.update((self.coordinator.len() as u64).to_be_bytes());
        h.update(self.coordinator);
        h.update(session.0);
        let digest: [u8; 32] = h.finalize().into();
        let mut key = [0; 32];
        key[..8].copy_from_slice(&self.owner());
        key[8..].copy_from_slice(&digest[..24]);
        key
    }

    fn fresh(&self, made_ms: u64) -> bool {
        made_ms.saturating_add(NONCE_TTL_MS) > self.now_ms
    }

    /// The tag of this coordinator's entries: its share of the store is counted by it.
    fn owner(&self) -> [u8; 8] {
        let mut h = Sha256::new();
        h.update(b"keyquorum/frost-nonce-owner/v1");
        h.update(self.coordinator);
        let digest: [u8; 32] = h.finalize().into();
        let mut tag = [0; 8];
        tag.copy_from_slice(&digest[..8]);
        tag
    }

    /// The time stamp and owner tag that start every entry of both tables.
    fn stamp(&self) -> [u8; 16] {
        let mut stamp = [0; 16];
        stamp[..8].copy_from_slice(&self.now_ms.to_be_bytes());
        stamp[8..].copy_from_slice(&self.owner());
        stamp
    }

    /// Drops the nonces of `session` and marks the session used (while this coordinator's
    /// marks are fewer than half its share: releases of made-up sessions must not push out the
    /// marks of its sessions that signed) so that a commit request for it that arrives later is
    /// refused rather than stored for nothing. Returns whether a pair was dropped. Only the coordinator that asked can
    /// release: the entry's key includes its identity.
    pub fn release(&mut self, session: &SigningSession) -> Result<bool, NonceDbError> {
        use redb::ReadableTable;
        let key = self.key(session);
        let mut w = self.db.db.begin_write().map_err(dberr)?;
        // Not flushed on its own (the next durable write carries it): a release lost in a
        // crash leaves a pair unused until its time to live, and a round two's removal, which
        // is what keeps a pair from signing twice, is always durable.
        w.set_durability(redb::Durability::None).map_err(dberr)?;
        let dropped = {
            let mut pending = w.open_table(PENDING).map_err(dberr)?;
            let dropped = pending.remove(&key).map_err(dberr)?.is_some();
            let mut used = w.open_table(USED).map_err(dberr)?;
            if used.get(&key).map_err(dberr)?.is_none()
                && owned(&used, &self.owner())?.0 < self.db.max_used / 2
            {
                used.insert(&key, self.stamp().as_slice()).map_err(dberr)?;
            }
            dropped
        };
        w.commit().map_err(dberr)?;
        Ok(dropped)
    }
}

/// The time stamp of an entry of either table, if it has one.
fn made_at(entry: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(entry.get(..8)?.try_into().ok()?))
}

/// How many entries of `table` the coordinator tagged `owner` has, and the key of its oldest:
/// its entries are the keys that start with its tag ([`CoordinatorNonces::key`]).
fn owned(
    table: &impl redb::ReadableTable<&'static [u8; 32], &'static [u8]>,
    owner: &[u8; 8],
) -> Result<(u64, Option<[u8; 32]>), NonceDbError> {
    let mut count = 0;
    let mut oldest: Option<(u64, [u8; 32])> = None;
    let (mut first, mut last) = ([0u8; 32], [0xffu8; 32]);
    first[..8].copy_from_slice(owner);
    last[..8].copy_from_slice(owner);
    for item in table.range::<&[u8; 32]>(&first..=&last).map_err(dberr)? {
        let (key, value) = item.map_err(dberr)?;
        let value = value.value();
        count += 1;
        let made = made_at(value).unwrap_or(0);
        if oldest.is_none_or(|(t, _)| made < t) {
            oldest = Some((made, *key.value()));
        }
    }
    Ok((count, oldest.map(|(_, key)| key)))
}

impl NonceStore for CoordinatorNonces<'_> {
    type Error = NonceDbError;

    fn persist(
        &mut self,
        session: &SigningSession,
        nonces: &SecretBytes,
    ) -> Result<(), Self::Error> {
        use redb::ReadableTable;
        let key = self.key(session);
        let owner = self.owner();
        let mut entry = self.stamp().to_vec();
        entry.extend_from_slice(&self.db.keys.seal(&NonceDb::label(&key), nonces.expose()));
        let w = self.db.db.begin_write().map_err(dberr)?;
        {
            let mut used = w.open_table(USED).map_err(dberr)?;
            let mut pending = w.open_table(PENDING).map_err(dberr)?;
            used.retain(|_, e| made_at(e).is_some_and(|t| self.fresh(t)))
                .map_err(dberr)?;
            pending
                .retain(|_, e| made_at(e).is_some_and(|t| self.fresh(t)))
                .map_err(dberr)?;
            // A pair still waiting refuses a second one even when its used mark made room.
            if used.get(&key).map_err(dberr)?.is_some()
                || pending.get(&key).map_err(dberr)?.is_some()
            {
                return Err(NonceDbError::SessionReused);
            }
            if owned(&pending, &owner)?.0 >= self.db.max_pending {
                return Err(NonceDbError::CoordinatorFull);
            }
            if let (marks, Some(oldest)) = owned(&used, &owner)?
                && marks >= self.db.max_used
            {
                used.remove(&oldest).map_err(dberr)?;
            }
            used.insert(&key, self.stamp().as_slice()).map_err(dberr)?;
            pending.insert(&key, entry.as_slice()).map_err(dberr)?;
        }
        w.commit().map_err(dberr)
    }

    fn take(&mut self, session: &SigningSession) -> Result<Option<SecretBytes>, Self::Error> {
        let key = self.key(session);
        let w = self.db.db.begin_write().map_err(dberr)?;
        let sealed = {
            let mut pending = w.open_table(PENDING).map_err(dberr)?;
            let removed = pending.remove(&key).map_err(dberr)?;
            removed.map(|v| v.value().to_vec())
        };
        // Removed durably before the nonces are used.
        w.commit().map_err(dberr)?;
        match sealed {
            None => Ok(None),
            // Past their time: as if dropped already.
            Some(e) if !made_at(&e).is_some_and(|t| self.fresh(t)) => Ok(None),
            Some(e) => {
                let plain = self
                    .db
                    .keys
                    .open(&NonceDb::label(&key), e.get(16..).unwrap_or_default())
                    .map_err(|_| NonceDbError::Sealed)?;
                Ok(Some(SecretBytes::new(plain.to_vec())))
            }
        }
    }
}

impl NonceDb {
    /// Nonce entries waiting for their round two (for tests and metrics).
    pub fn pending(&self) -> Result<u64, NonceDbError> {
        use redb::ReadableTableMetadata;
        let r = self.db.begin_read().map_err(dberr)?;
        let t = r.open_table(PENDING).map_err(dberr)?;
        t.len().map_err(dberr)
    }
}

/// The member side: the answer to a round request from `from` (as the network authenticated
/// it) in `session`, with 64 bytes of fresh randomness for a commitment, at `now_ms` (Unix
/// time, for the nonce store's bounds).
pub fn answer(
    view: Option<&FrostView>,
    nonces: Option<&NonceDb>,
    session: &keyquorum_net::SessionId,
    from: Option<&[u8]>,
    payload: &[u8],
    randomness: &[u8; 64],
    now_ms: u64,
) -> Vec<u8> {
    let Some(v) = view.filter(|v| v.session == *session) else {
        return answer_refused(FrostRefusal::OtherView);
    };
    let Some(from) = from.filter(|f| v.member(f).is_some()) else {
        return answer_refused(FrostRefusal::OtherView);
    };
    let (Some(key), Some(nonces)) = (v.key_package(), nonces) else {
        return answer_refused(FrostRefusal::NoShare);
    };
    let Some(request) = FrostRequest::from_bytes(payload, v.members.len()) else {
        return answer_refused(FrostRefusal::Malformed);
    };
    let mut store = nonces.for_coordinator(from, now_ms);
    match request {
        FrostRequest::Release { session, .. } => match store.release(&SigningSession(session)) {
            Ok(_) => answer_ok(Vec::new()),
            Err(_) => answer_refused(FrostRefusal::Store),
        },
        FrostRequest::Commit { view, .. } | FrostRequest::Sign { view, .. } if view != v.view => {
            answer_refused(FrostRefusal::OtherView)
        }
        FrostRequest::Commit { session, .. } => {
            // The mode matters in round two only.
            let signer = Signer::new(key, Mode::Rfc9591, v.threshold);
            match signer.round1(SigningSession(session), randomness, &mut store) {
                Ok(package) => answer_ok(package.to_bytes()),
                Err(keyquorum_signing::SignerError::Store(NonceDbError::SessionReused)) => {
                    answer_refused(FrostRefusal::SessionUsed)
                }
                Err(keyquorum_signing::SignerError::Store(NonceDbError::CoordinatorFull)) => {
                    answer_refused(FrostRefusal::CoordinatorFull)
                }
                Err(_) => answer_refused(FrostRefusal::Store),
            }
        }
        FrostRequest::Sign { request, .. } => {
            let signer = Signer::new(key, request.mode, v.threshold);
            match signer.round2(&request, &mut store) {
                Ok(package) => answer_ok(package.to_bytes()),
                Err(keyquorum_signing::SignerError::NoncesUnavailable) => {
                    answer_refused(FrostRefusal::NoNonces)
                }
                Err(keyquorum_signing::SignerError::Store(_)) => {
                    answer_refused(FrostRefusal::Store)
                }
                Err(_) => answer_refused(FrostRefusal::Refused),
            }
        }
    }
}

/// A finished Schnorr signature, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchnorrSignature {
    /// The scheme.
    pub scheme: Scheme,
    /// FROST: `R` compressed and `z` (65 bytes); BIP-340: `x(R) || z` (64 bytes).
    pub signature: Vec<u8>,
    /// FROST: the compressed group key (33 bytes); BIP-340: its x-only form (32 bytes).
    pub public_key: Vec<u8>,
}

/// How many signer sets one Schnorr signing request tries before it fails (see the module
/// docs).
pub const MAX_ATTEMPTS: usize = 3;

/// What a signer did wrong in an attempt; it is left out of the request's later attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SignerFault {
    /// Its signature share does not verify against its commitment and public key share (RFC
    /// 9591 section 5.4).
    InvalidShare,
    /// No answer within the round's timeout, or the network could not reach it.
    Unresponsive,
    /// It refused the round (for round two: a commitment it does not honour).
    Refused,
    /// Its answer does not decode, or names another signer or session.
    Malformed,
}

impl SignerFault {
    /// Stable name for metrics and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            SignerFault::InvalidShare => "invalid_share",
            SignerFault::Unresponsive => "unresponsive",
            SignerFault::Refused => "refused",
            SignerFault::Malformed => "malformed",
        }
    }
}

/// A member named for an attempt it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Culprit {
    /// Committee position.
    pub position: usize,
    /// Identity key.
    pub identity: Vec<u8>,
    /// What it did.
    pub fault: SignerFault,
}

/// Why one attempt made no signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttemptError {
    /// Listed signers gave no valid share; another signer set may succeed.
    #[error("round two failed: {}", describe(.0))]
    Culprits(Vec<Culprit>),
    /// Listed signers (committee positions) refused round two because they are at another
    /// view now: no culprit, the view changed between the rounds.
    #[error("round two failed: {} signers answered for another view", .0.len())]
    OtherView(Vec<usize>),
    /// Anything other signers cannot fix (an inconsistent key, this node's own share).
    #[error("{0}")]
    Failed(String),
}

fn describe(culprits: &[Culprit]) -> String {
    let named: Vec<String> = culprits
        .iter()
        .map(|c| format!("member {} {}", c.position, c.fault.as_str()))
        .collect();
    named.join(", ")
}

/// Why a Schnorr signing request failed after its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The round the last attempt fell short in: 1 (commitments) or 2 (shares).
    pub round: u8,
    /// The commitments (round 1) or valid shares (round 2) the last attempt got.
    pub signers: usize,
    /// `t`.
    pub threshold: usize,
    /// Attempts made.
    pub attempts: usize,
    /// Every member named, once each, in the order they were named.
    pub culprits: Vec<Culprit>,
    /// The identities of the members that refused a round because the request's view is not
    /// their active one (ascending committee order): not culprits. A view change is under way,
    /// or the coordinator is behind the chain.
    pub other_view: Vec<Vec<u8>>,
}

impl Failure {
    /// Whether the members at another view explain the shortfall: no invalid share, and with
    /// their answers the last attempt would have had `t` (a view change under way, or this
    /// node behind; the client should retry).
    pub fn view_changing(&self) -> bool {
        !self.other_view.is_empty()
            && !self.invalid_shares()
            && self.signers + self.other_view.len() >= self.threshold
    }

    /// Whether a culprit sent an invalid signature share (rather than only failing to answer).
    pub fn invalid_shares(&self) -> bool {
        self.culprits
            .iter()
            .any(|c| c.fault == SignerFault::InvalidShare)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FROST round {}: {} of {} signers after {} attempt(s)",
            self.round, self.signers, self.threshold, self.attempts
        )?;
        if !self.culprits.is_empty() {
            write!(f, "; culprits: {}", describe(&self.culprits))?;
        }
        if !self.other_view.is_empty() {
            write!(f, "; {} members at another view", self.other_view.len())?;
        }
        Ok(())
    }
}

/// One Schnorr signing request across its attempts: which members are still asked, how many
/// attempts are left, and who was named (see the module docs).
#[derive(Debug)]
pub struct Signing {
    scheme: Scheme,
    message: Vec<u8>,
    own: usize,
    max_attempts: usize,
    attempts: usize,
    culprits: Vec<Culprit>,
    /// Members that answered for another view in any attempt.
    other_view: BTreeSet<usize>,
    /// Round and signers of the last attempt that fell short.
    last: Option<(u8, usize)>,
}

impl Signing {
    /// A request to sign `message` in `scheme`, coordinated by committee position `own`, with at
    /// most `max_attempts` attempts.
    pub fn new(scheme: Scheme, message: Vec<u8>, own: usize, max_attempts: usize) -> Self {
        Signing {
            scheme,
            message,
            own,
            max_attempts,
            attempts: 0,
            culprits: Vec::new(),
            other_view: BTreeSet::new(),
            last: None,
        }
    }

    /// The next attempt, in the fresh signing session `id`, leaving out every culprit so far;
    /// `None` when the request is over: attempts used up, a round one fell short, the
    /// coordinator itself was named, or fewer than `t` members remain.
    pub fn next_attempt(&mut self, view: &FrostView, id: [u8; 32]) -> Option<Session> {
        if self.attempts >= self.max_attempts || matches!(self.last, Some((1, _))) {
            return None;
        }
        // Members at another view are left out too, unnamed: an honest one would refuse
        // again, and a faulty one that commits and then claims another view must not hold
        // every attempt.
        let excluded: BTreeSet<usize> = self
            .culprits
            .iter()
            .map(|c| c.position)
            .chain(self.other_view.iter().copied())
            .collect();
        if excluded.contains(&self.own) || view.members.len() - excluded.len() < view.threshold {
            return None;
        }
        self.attempts += 1;
        let mut session = Session::new(view, self.scheme, self.message.clone(), id);
        session.excluded = excluded;
        Some(session)
    }

    /// An attempt fell short in `round` with `signers` commitments or valid shares, naming
    /// `culprits` (each member is kept once, with the first fault it was named for); the
    /// members in `other_view` answered for another view (not culprits, and not asked again).
    pub fn attempt_failed(
        &mut self,
        round: u8,
        signers: usize,
        culprits: Vec<Culprit>,
        other_view: &BTreeSet<usize>,
    ) {
        self.last = Some((round, signers));
        self.other_view.extend(other_view);
        for c in culprits {
            if !self.culprits.iter().any(|k| k.position == c.position) {
                self.culprits.push(c);
            }
        }
    }

    /// Attempts made.
    pub fn attempts(&self) -> usize {
        self.attempts
    }

    /// Every member named so far.
    pub fn culprits(&self) -> &[Culprit] {
        &self.culprits
    }

    /// The request's failure, once [`Signing::next_attempt`] gave `None`.
    pub fn failure(&self, view: &FrostView) -> Failure {
        let (round, signers) = self.last.unwrap_or((1, 0));
        Failure {
            round,
            signers,
            threshold: view.threshold,
            attempts: self.attempts,
            culprits: self.culprits.clone(),
            other_view: self
                .other_view
                .iter()
                .filter_map(|i| view.members.get(*i).map(|(id, _)| id.clone()))
                .collect(),
        }
    }
}

/// The coordinator's state of one attempt: the `keyquorum-signing` coordinator and what each
/// member answered in each round.
pub struct Session {
    pub(crate) id: [u8; 32],
    scheme: Scheme,
    coordinator: Coordinator,
    message: Vec<u8>,
    /// Members whose commitments were taken, by committee position.
    pub(crate) signers: BTreeMap<usize, Identifier>,
    threshold: usize,
    /// Members not asked in this attempt (named in an earlier one).
    excluded: BTreeSet<usize>,
    /// Round one: members whose answer was not a commitment, and why.
    commit_faults: BTreeMap<usize, SignerFault>,
    /// Round one: members that refused because this coordinator has its share of their nonce
    /// store waiting already (not culprits).
    coordinator_full: BTreeSet<usize>,
    /// Either round: members that refused because the request's view is not their active one
    /// (not culprits).
    other_view: BTreeSet<usize>,
    /// Round two: signers whose share package was taken.
    shared: BTreeSet<usize>,
    /// Round two: signers whose answer was not a share package, and why.
    share_faults: BTreeMap<usize, SignerFault>,
}

/// Why a package from a member was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TakeError {
    /// The member refused.
    #[error("refused: {}", .0.map_or("unknown", |r| r.as_str()))]
    Refused(Option<FrostRefusal>),
    /// The package does not decode.
    #[error("malformed package")]
    Malformed,
    /// The member was named in an earlier attempt of the request and is not asked.
    #[error("member left out of this attempt")]
    Excluded,
    /// The coordinator rejected it (wrong session, another signer, duplicate, not listed).
    #[error(transparent)]
    Rejected(#[from] keyquorum_signing::Rejected),
}

impl TakeError {
    /// The member's answer as `keyquorum_sign_partials_total` counts it: `other_view` and
    /// `coordinator_full` (no fault of the member), `refused` (a refusal, such as a failed
    /// nonce store), or `invalid`.
    pub fn result(&self) -> &'static str {
        if self.other_view() {
            "other_view"
        } else if self.coordinator_full() {
            "coordinator_full"
        } else if matches!(self, TakeError::Refused(_)) {
            "refused"
        } else {
            "invalid"
        }
    }

    /// Whether the member refused because it is at another view: honest during a view change.
    pub fn other_view(&self) -> bool {
        matches!(self, TakeError::Refused(Some(FrostRefusal::OtherView)))
    }

    /// Whether the member refused because this coordinator used up its share of the member's
    /// nonce store: the coordinator's doing, not the member's fault.
    pub fn coordinator_full(&self) -> bool {
        matches!(
            self,
            TakeError::Refused(Some(FrostRefusal::CoordinatorFull))
        )
    }

    fn fault(&self) -> SignerFault {
        match self {
            TakeError::Refused(_) => SignerFault::Refused,
            _ => SignerFault::Malformed,
        }
    }
}

impl Session {
    /// A signing attempt of `message` in `scheme` with session id `id` (fresh randomness),
    /// open to every member.
    pub fn new(view: &FrostView, scheme: Scheme, message: Vec<u8>, id: [u8; 32]) -> Self {
        Session {
            id,
            scheme,
            coordinator: Coordinator::new(
                SigningSession(id),
                scheme.mode(),
                view.public.clone(),
                message.clone(),
            ),
            message,
            signers: BTreeMap::new(),
            threshold: view.threshold,
            excluded: BTreeSet::new(),
            commit_faults: BTreeMap::new(),
            coordinator_full: BTreeSet::new(),
            other_view: BTreeSet::new(),
            shared: BTreeSet::new(),
            share_faults: BTreeMap::new(),
        }
    }

    /// The round-one request.
    pub fn commit_request(&self, view: &FrostView) -> Vec<u8> {
        FrostRequest::Commit {
            view: view.view,
            session: self.id,
        }
        .to_bytes()
    }

    /// The committee positions asked to commit in this attempt.
    pub fn asked(&self, view: &FrostView) -> Vec<usize> {
        (0..view.members.len())
            .filter(|i| !self.excluded.contains(i))
            .collect()
    }

    /// Takes member `position`'s round-one answer; `true` once `t` commitments are in.
    pub fn take_commitment(
        &mut self,
        view: &FrostView,
        position: usize,
        answer: &[u8],
    ) -> Result<bool, TakeError> {
        if self.signers.len() >= self.threshold {
            return Ok(true);
        }
        if self.excluded.contains(&position) {
            return Err(TakeError::Excluded);
        }
        let taken = self.commitment(view, position, answer);
        match &taken {
            Err(e) if e.other_view() => {
                self.other_view.insert(position);
            }
            Err(e) if e.coordinator_full() => {
                self.coordinator_full.insert(position);
            }
            Err(e) => {
                self.commit_faults.entry(position).or_insert(e.fault());
            }
            Ok(()) => {}
        }
        taken?;
        self.signers.insert(position, view.members[position].1);
        Ok(self.signers.len() >= self.threshold)
    }

    fn commitment(
        &mut self,
        view: &FrostView,
        position: usize,
        answer: &[u8],
    ) -> Result<(), TakeError> {
        let bytes = parse_answer(answer).map_err(TakeError::Refused)?;
        let package = CommitmentPackage::from_bytes(bytes).map_err(|_| TakeError::Malformed)?;
        let sender = view.members.get(position).ok_or(TakeError::Malformed)?.1;
        self.coordinator.on_commitment(sender, &package)?;
        Ok(())
    }

    /// The members asked in round one that gave no commitment (those that gave none in time
    /// are unresponsive), for a round one that fell short; not those at another view, nor
    /// those that refused because this coordinator has its share of their store waiting.
    pub fn commitment_culprits(&self, view: &FrostView) -> Vec<Culprit> {
        self.asked(view)
            .into_iter()
            .filter(|i| {
                !self.signers.contains_key(i)
                    && !self.other_view.contains(i)
                    && !self.coordinator_full.contains(i)
            })
            .map(|i| Culprit {
                position: i,
                identity: view.members[i].0.clone(),
                fault: self
                    .commit_faults
                    .get(&i)
                    .copied()
                    .unwrap_or(SignerFault::Unresponsive),
            })
            .collect()
    }

    /// Ends round one: the round-two request for the signers taken.
    pub fn sign_request(&mut self, view: &FrostView) -> Result<Vec<u8>, String> {
        let request = self
            .coordinator
            .signing_request()
            .map_err(|e| e.to_string())?;
        Ok(FrostRequest::Sign {
            view: view.view,
            request,
        }
        .to_bytes())
    }

    /// Takes signer `position`'s round-two answer. A listed signer's answer that is not its
    /// share package makes it a culprit of this attempt.
    pub fn take_share(
        &mut self,
        view: &FrostView,
        position: usize,
        answer: &[u8],
    ) -> Result<(), TakeError> {
        let taken = self.share(view, position, answer);
        match &taken {
            Ok(()) => {
                self.shared.insert(position);
            }
            Err(e) if self.awaiting_shares().contains(&position) => {
                if e.other_view() {
                    self.other_view.insert(position);
                } else {
                    self.share_faults.insert(position, e.fault());
                }
            }
            Err(_) => {}
        }
        taken
    }

    fn share(&mut self, view: &FrostView, position: usize, answer: &[u8]) -> Result<(), TakeError> {
        let bytes = parse_answer(answer).map_err(TakeError::Refused)?;
        let package = SharePackage::from_bytes(bytes).map_err(|_| TakeError::Malformed)?;
        let sender = view.members.get(position).ok_or(TakeError::Malformed)?.1;
        self.coordinator.on_share(sender, &package)?;
        Ok(())
    }

    /// A listed signer the network could not reach in round two.
    pub fn share_unanswered(&mut self, position: usize) {
        if self.awaiting_shares().contains(&position) {
            self.share_faults
                .insert(position, SignerFault::Unresponsive);
        }
    }

    /// The listed signers whose round-two answer has not come in yet.
    pub fn awaiting_shares(&self) -> Vec<usize> {
        self.signers
            .keys()
            .filter(|i| {
                !self.shared.contains(i)
                    && !self.share_faults.contains_key(i)
                    && !self.other_view.contains(i)
            })
            .copied()
            .collect()
    }

    /// The members asked in this attempt (this node included) that may hold nonces for it no
    /// round two took: once the attempt is over, each gets [`Session::release_request`].
    /// Members whose answer has not come in are included, since their commit request may still
    /// be on its way; those that refused round one, or answered it for another view, stored
    /// nothing.
    pub fn unused_commitments(&self, view: &FrostView) -> Vec<usize> {
        self.asked(view)
            .into_iter()
            .filter(|i| {
                !self.shared.contains(i)
                    && !self.commit_faults.contains_key(i)
                    && (self.signers.contains_key(i) || !self.other_view.contains(i))
            })
            .collect()
    }

    /// The request that releases this attempt's nonces ([`FrostRequest::Release`]).
    pub fn release_request(&self, view: &FrostView) -> Vec<u8> {
        FrostRequest::Release {
            view: view.view,
            session: self.id,
        }
        .to_bytes()
    }

    /// The members that refused a round of this attempt because they are at another view.
    pub fn other_view(&self) -> &BTreeSet<usize> {
        &self.other_view
    }

    /// The signature shares taken that were not found invalid, once [`Session::finish`]
    /// failed with `failure` (all taken shares if it failed otherwise).
    pub fn valid_shares(&self, failure: &AttemptError) -> usize {
        let invalid = match failure {
            AttemptError::Culprits(c) => c
                .iter()
                .filter(|c| c.fault == SignerFault::InvalidShare)
                .count(),
            AttemptError::OtherView(_) | AttemptError::Failed(_) => 0,
        };
        self.shared.len() - invalid
    }

    /// Ends round two (at the deadline, or once no answer is awaited): the signature, verified
    /// under the group key (RFC 9591 verification, and in the BIP-340 mode `k256`'s BIP-340
    /// verifier on the encoded signature and x-only key); or the signers that sent no share
    /// (unresponsive if they did not answer), or whose shares are invalid.
    pub fn finish(&self, view: &FrostView) -> Result<SchnorrSignature, AttemptError> {
        let culprit = |position: usize, fault| Culprit {
            position,
            identity: view.members[position].0.clone(),
            fault,
        };
        let mut culprits: Vec<Culprit> = self
            .share_faults
            .iter()
            .map(|(i, f)| culprit(*i, *f))
            .collect();
        culprits.extend(
            self.awaiting_shares()
                .into_iter()
                .map(|i| culprit(i, SignerFault::Unresponsive)),
        );
        if !culprits.is_empty() {
            culprits.sort_by_key(|c| c.position);
            return Err(AttemptError::Culprits(culprits));
        }
        let moved: Vec<usize> = self
            .signers
            .keys()
            .filter(|i| self.other_view.contains(i))
            .copied()
            .collect();
        if !moved.is_empty() {
            return Err(AttemptError::OtherView(moved));
        }
        let signature = match self.coordinator.finish() {
            Ok(s) => s,
            Err(CoordinatorError::Frost(FrostError::InvalidSignatureShares(ids))) => {
                let culprits = self
                    .signers
                    .iter()
                    .filter(|(_, id)| ids.contains(id))
                    .map(|(i, _)| culprit(*i, SignerFault::InvalidShare))
                    .collect();
                return Err(AttemptError::Culprits(culprits));
            }
            Err(e) => return Err(AttemptError::Failed(e.to_string())),
        };
        self.encode(view, signature)
            .map_err(|e| AttemptError::Failed(e.to_string()))
    }

    fn encode(
        &self,
        view: &FrostView,
        signature: frost::Signature,
    ) -> Result<SchnorrSignature, FrostError> {
        let group_key = view.public.group_key();
        frost::verify(self.scheme.mode(), group_key, &self.message, &signature)?;
        match self.scheme {
            Scheme::Frost => Ok(SchnorrSignature {
                scheme: self.scheme,
                signature: signature.to_bytes()?.to_vec(),
                public_key: view.group_key().to_vec(),
            }),
            Scheme::Bip340 => {
                let x_only = bip340::x_only(group_key)?;
                let sig = signature.to_bip340_bytes();
                bip340::verify(&x_only, &self.message, &sig)?;
                Ok(SchnorrSignature {
                    scheme: self.scheme,
                    signature: sig.to_vec(),
                    public_key: x_only.to_vec(),
                })
            }
        }
    }
}

/// The `bad-signature-share` fault: a member's round-two answer with the scalar 1 in place of
/// its signature share (a valid encoding that fails RFC 9591's share verification); any other
/// answer unchanged.
pub fn with_wrong_share(answer: Vec<u8>) -> Vec<u8> {
    let Ok(package) =
        parse_answer(&answer).and_then(|b| SharePackage::from_bytes(b).map_err(|_| None))
    else {
        return answer;
    };
    let mut one = [0u8; 32];
    one[31] = 1;
    let Ok(share) = SignatureShare::from_bytes(&one) else {
        return answer;
    };
    answer_ok(SharePackage { share, ..package }.to_bytes())
}
