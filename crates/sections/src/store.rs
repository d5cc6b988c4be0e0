//! What an elder persists to survive a crash, and the storage interface that keeps it.
//!
//! A coordinator's state is a function of two things: its [`ElderRecord`] (the genesis key, the
//! key chain, the SAP, its share of the section key, and the sessions superseded in this
//! generation) and the inputs it has taken since ([`LoggedInput`]: messages with their
//! authenticated senders, and DKG deadlines). The DKG is deterministic in the node key and its
//! inputs ([`crate::dkg`]), so replaying the logged inputs on the restored record rebuilds every
//! running session and re-emits the same messages; a restarted node therefore neither deals a
//! second polynomial (equivocation) nor backs a second key.
//!
//! [`PersistentCoordinator`] keeps the discipline: it logs an input before the coordinator sees
//! it (so nothing leaves the node that the log cannot reproduce), rewrites the record when a SAP
//! applies or a catch-up moves the node on, after the coordinator verified both signatures of
//! the SAP that moved it and together with that signed SAP ([`ElderStore::save_section`]) (and
//! then drops the log: the inputs are for sessions of an older generation, but for our run of
//! the DKG that made the SAP if it is still going, whose inputs stay, followed by its start
//! ([`LoggedInput::LateRun`]), so that a restart rebuilds it; the SAP or catch-up itself is not
//! logged, it lives in the record)
//! and when a session is superseded (the record keeps the superseded id, so replayed elder signatures
//! cannot authorise it again, while the inputs it took for the session as a candidate are removed,
//! [`LoggedInput::candidate_session`]; a share its run already gave is kept sealed beside the
//! section key share, [`Coordinator::kept_shares`]; what it took for the session as an elder
//! stays, since the session may still be the latest start it signed), and when the node
//! signs a link as an elder (the record keeps the successor it chose for the key,
//! [`crate::successor`], which the log alone would lose with a superseded session's inputs).
//!
//! At a split, a parent elder that lands in one half applies that half's SAP and clears its
//! log, while it still serves the other half's handover with the parent key
//! ([`Coordinator::open_split`], until it signed that half's link or stopped waiting,
//! [`crate::coordinator::MAX_OPEN_SPLIT_SAPS`]): the record keeps the split
//! ([`ElderRecord::open_splits`]: the parent's SAP, the generation, our half's link, and the
//! attempt of the other half's next start, past each of its failed starts) and the store its
//! share of the parent key, sealed with the kept shares, so a restart in between still signs
//! the other half's start, at the attempt the other elders sign, and its link. A restored open
//! split must lie on the record's chain, and one the record shows closed is dropped
//! ([`Coordinator::restore`]). The progress of that handover itself (the
//! start signed, the partials taken) is in the log only between two SAPs of its half: a crash
//! loses what was taken before the last one, though not its choice of successor, which the
//! record holds; the elder takes part again once it signs that start anew.
//!
//! The store seals the section key share and the kept shares (those of superseded sessions and
//! of open splits) at rest; [`ElderStore`]
//! implementations decide how (the node's redb store seals them with its storage key, as it
//! does DKG shares).

use std::collections::{BTreeMap, BTreeSet};

use blstrs::Scalar;
use keyquorum_crypto::Bls12381G1;
use keyquorum_crypto::Curve;
use keyquorum_crypto::secret::Secret;
use keyquorum_dkg::wire::{Reader, WireError};
use zeroize::Zeroizing;

use crate::catch_up::SectionAnswer;
use crate::chain::{KeyChain, Link, MAX_CHAIN_LINKS};
use crate::coordinator::{Coordinator, Dropped, Output};
use crate::keys::{KEY_LEN, PublicKey, key_bytes, signature_bytes};
use crate::name::Name;
use crate::sap::{KeyShare, Sap, SignedSap};
use crate::session::{DkgStart, SessionId};
use crate::successor::Successor;
use crate::wire::{self, Message};

/// An elder's (or member's) durable state as of its last applied SAP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElderRecord {
    /// The genesis key everything verifies from.
    pub genesis_key: PublicKey,
    /// The section key chain.
    pub chain: KeyChain,
    /// The section's authority.
    pub sap: Sap,
    /// Sessions of the current generation superseded by a later authorised start, with their
    /// generation.
    pub superseded: Vec<(SessionId, u64)>,
    /// The links this node signed as an elder, for the keys whose handovers it still serves:
    /// its choice of one successor per key ([`crate::successor`]).
    pub linked: Vec<Successor>,
    /// The splits this node handed over one half of as an elder of the split key and applied
    /// that half's SAP, while it still serves the other half's handover
    /// ([`Coordinator::open_split`]); its share of each split key is kept sealed with the kept
    /// shares ([`Coordinator::kept_shares`]). In increasing generation, at most
    /// [`MAX_OPEN_SPLITS`].
    pub open_splits: Vec<SplitRecord>,
}

/// Most open splits a record holds: a half's split stays open for at most
/// [`crate::coordinator::MAX_OPEN_SPLIT_SAPS`] further SAPs of that half, and each SAP applied
/// opens at most one (of the generation it left).
pub const MAX_OPEN_SPLITS: usize = crate::coordinator::MAX_OPEN_SPLIT_SAPS as usize + 1;

/// A split of a key this node was an elder of, whose half it applied while the other half is
/// not linked ([`ElderRecord::open_splits`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitRecord {
    /// The split key's handover our share of that key was taken from: the id the share is
    /// kept under ([`Coordinator::kept_shares`]).
    pub session: SessionId,
    /// The generation of the split key's starts.
    pub generation: u64,
    /// The authority of the split key.
    pub parent: Sap,
    /// Our half's link from the split key (`half.parent_key == parent.section_key`).
    pub half: Successor,
    /// The attempt of the next start we sign for the other half: one more than the latest of
    /// its failed starts whose failure agreement we checked or refused as replaced
    /// ([`crate::coordinator::Output::FailureAgreed`],
    /// [`crate::coordinator::Output::ReplacedStartFailed`]). The log that would count them
    /// again is cleared by our half's SAPs, so without it a restarted elder would sign the
    /// other half's start at attempt 0 while the others sign a later one.
    pub attempt: u32,
}

impl ElderRecord {
    /// Canonical encoding of the public parts (the shares are stored apart, sealed): the
    /// genesis key, the chain's links, the SAP, the superseded sessions and the signed links,
    /// each list after its `u32` count; then, only if there are any, the open splits after
    /// their count, each as its session id, its generation (`u64`), the split key's SAP, and
    /// its half's prefix and key; then, only if one of them is not 0, each open split's
    /// attempt (`u32`) in the same order. A record without open splits is encoded as before
    /// they were kept, and one whose open splits are all at attempt 0 as before their attempts
    /// were kept, so older records (and catch-up answers, which hold no open split) decode
    /// unchanged.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = key_bytes(&self.genesis_key).to_vec();
        out.extend_from_slice(&(self.chain.links().len() as u32).to_be_bytes());
        for link in self.chain.links() {
            out.extend_from_slice(&key_bytes(&link.key));
            out.extend_from_slice(&key_bytes(&link.parent_key));
            out.extend_from_slice(&signature_bytes(&link.signature));
        }
        out.extend_from_slice(&self.sap.encode());
        out.extend_from_slice(&(self.superseded.len() as u32).to_be_bytes());
        for (id, generation) in &self.superseded {
            out.extend_from_slice(&id.0);
            out.extend_from_slice(&generation.to_be_bytes());
        }
        out.extend_from_slice(&(self.linked.len() as u32).to_be_bytes());
        for link in &self.linked {
            out.extend_from_slice(&key_bytes(&link.parent_key));
            link.prefix.encode(&mut out);
            out.extend_from_slice(&key_bytes(&link.key));
        }
        if !self.open_splits.is_empty() {
            out.extend_from_slice(&(self.open_splits.len() as u32).to_be_bytes());
            for split in &self.open_splits {
                out.extend_from_slice(&split.session.0);
                out.extend_from_slice(&split.generation.to_be_bytes());
                out.extend_from_slice(&split.parent.encode());
                split.half.prefix.encode(&mut out);
                out.extend_from_slice(&key_bytes(&split.half.key));
            }
            if self.open_splits.iter().any(|split| split.attempt != 0) {
                for split in &self.open_splits {
                    out.extend_from_slice(&split.attempt.to_be_bytes());
                }
            }
        }
        out
    }

    /// Decodes [`ElderRecord::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let genesis_key = wire::read_key(&mut r)?;
        let n = r.count("chain links", MAX_CHAIN_LINKS)?;
        let mut links = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            links.push(Link {
                key: wire::read_key(&mut r)?,
                parent_key: wire::read_key(&mut r)?,
                signature: wire::read_signature(&mut r)?,
            });
        }
        let chain = KeyChain::from_links(links).map_err(|_| WireError::NonCanonical("chain"))?;
        let sap = wire::read_sap(&mut r)?;
        let n = r.count(
            "superseded sessions",
            crate::coordinator::MAX_PENDING_STARTS * 4,
        )?;
        let mut superseded = Vec::with_capacity(n);
        for _ in 0..n {
            superseded.push((SessionId(r.array()?), r.u64()?));
        }
        // Two per key (the halves of a split) for each key a handover is kept for.
        let n = r.count("linked keys", crate::coordinator::MAX_PENDING_STARTS * 2)?;
        let mut linked = Vec::with_capacity(n);
        for _ in 0..n {
            linked.push(Successor {
                parent_key: wire::read_key(&mut r)?,
                prefix: wire::read_prefix(&mut r)?,
                key: wire::read_key(&mut r)?,
            });
        }
        let mut open_splits: Vec<SplitRecord> = Vec::new();
        if r.remaining() > 0 {
            let n = r.count("open splits", MAX_OPEN_SPLITS)?;
            if n == 0 {
                return Err(WireError::NonCanonical("empty open splits"));
            }
            for _ in 0..n {
                let session = SessionId(r.array()?);
                let generation = r.u64()?;
                let parent = wire::read_sap(&mut r)?;
                let half = Successor {
                    parent_key: parent.section_key,
                    prefix: wire::read_prefix(&mut r)?,
                    key: wire::read_key(&mut r)?,
                };
                if open_splits
                    .last()
                    .is_some_and(|last| last.generation >= generation)
                {
                    return Err(WireError::NonCanonical("open splits order"));
                }
                open_splits.push(SplitRecord {
                    session,
                    generation,
                    parent,
                    half,
                    attempt: 0,
                });
            }
            if r.remaining() > 0 {
                for split in &mut open_splits {
                    split.attempt = r.u32()?;
                }
                if open_splits.iter().all(|split| split.attempt == 0) {
                    return Err(WireError::NonCanonical("open split attempts all 0"));
                }
            }
        }
        r.finish()?;
        Ok(ElderRecord {
            genesis_key,
            chain,
            sap,
            superseded,
            linked,
            open_splits,
        })
    }
}

/// The plaintext of a stored share: index and secret (32 bytes each), then the section key.
pub fn encode_share(share: &KeyShare) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(64 + KEY_LEN));
    out.extend_from_slice(&Bls12381G1::encode_scalar(&share.index));
    out.extend_from_slice(&Bls12381G1::encode_scalar(share.share.expose()));
    out.extend_from_slice(&key_bytes(&share.section_key));
    out
}

/// Decodes [`encode_share`].
pub fn decode_share(bytes: &[u8]) -> Result<KeyShare, WireError> {
    let mut r = Reader::new(bytes);
    let index = Bls12381G1::decode_scalar(r.fixed(32)?)
        .map_err(|_| WireError::NonCanonical("share index"))?;
    let share: Scalar =
        Bls12381G1::decode_scalar(r.fixed(32)?).map_err(|_| WireError::NonCanonical("share"))?;
    let section_key = wire::read_key(&mut r)?;
    r.finish()?;
    Ok(KeyShare {
        index,
        share: Secret::new(share),
        section_key,
    })
}

/// Our shares of superseded sessions' keys, kept until a SAP applies
/// ([`Coordinator::kept_shares`]).
pub type KeptShares<'a> = [(SessionId, &'a KeyShare)];

/// Most kept shares a store reads back: one per session superseded in a generation.
const MAX_KEPT_SHARES: usize = crate::coordinator::MAX_PENDING_STARTS * 4;

/// The plaintext of stored kept shares: their count (u32 big-endian), then for each its
/// session id and [`encode_share`].
pub fn encode_kept_shares(kept: &KeptShares<'_>) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new((kept.len() as u32).to_be_bytes().to_vec());
    for (id, share) in kept {
        out.extend_from_slice(&id.0);
        out.extend_from_slice(&encode_share(share));
    }
    out
}

/// Decodes [`encode_kept_shares`].
pub fn decode_kept_shares(bytes: &[u8]) -> Result<Vec<(SessionId, KeyShare)>, WireError> {
    const SHARE_LEN: usize = 64 + KEY_LEN;
    let mut r = Reader::new(bytes);
    let n = r.count("kept shares", MAX_KEPT_SHARES)?;
    let mut kept = Vec::with_capacity(n);
    for _ in 0..n {
        let id = SessionId(r.array()?);
        kept.push((id, decode_share(r.fixed(SHARE_LEN)?)?));
    }
    r.finish()?;
    Ok(kept)
}

/// What a store restores: the record, the section key share and the kept shares.
pub type Stored = (ElderRecord, Option<KeyShare>, Vec<(SessionId, KeyShare)>);

/// One input a coordinator took.
// Inputs are short-lived values logged and handled once; boxing the message would add an
// allocation per input for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoggedInput {
    /// A message and its sender as the transport authenticated it.
    Message {
        /// Sender.
        from: Name,
        /// The message.
        message: Message,
    },
    /// A deadline of a session's DKG.
    Deadline(SessionId),
    /// As a current elder: sign a start (and hand over to the key its candidates generate).
    SignStart(DkgStart),
    /// A peer's answer to catch up from ([`crate::catch_up`]).
    CatchUp(SectionAnswer),
    /// Our run of the DKG that made the SAP we hold, still going when that SAP applied
    /// ([`Coordinator::late_run`]): logged by [`PersistentCoordinator`] before it saves the
    /// record of that SAP and keeps the run's inputs when it clears the log, so that a restart
    /// rebuilds the run ([`Coordinator::resume_late_run`]) and it can still end with our share
    /// of that key.
    LateRun {
        /// The run's start.
        start: DkgStart,
        /// How many of the session's logged inputs came before the run started, the
        /// authorising start included: the rebuilt run skips them, as the run did (they were
        /// refused then, and those taken later were logged again when they were).
        skip: u32,
    },
}

impl LoggedInput {
    /// The session whose run as a candidate the input belongs to, if any: its inputs are
    /// removed once it is superseded ([`ElderStore::remove_session`]). What the node takes as a
    /// current elder (a start it signs, the handover's partials, a failure agreement) belongs
    /// to none, nor does a new SAP or a catch-up: a session superseded at a candidate may still
    /// be the one its elder side stands by, counts a failure agreement of, or hands over to, so
    /// those inputs stay until the generation moves on.
    pub fn candidate_session(&self) -> Option<SessionId> {
        match self {
            LoggedInput::Deadline(s) => Some(*s),
            LoggedInput::Message { message, .. } => match message {
                Message::Start { .. } | Message::Failure { .. } | Message::Dkg(_) => {
                    message.session()
                }
                Message::FailureAgreement { .. }
                | Message::SapShare { .. }
                | Message::LinkShare { .. }
                | Message::NewElders(_) => None,
            },
            LoggedInput::LateRun { start, .. } => Some(start.session),
            LoggedInput::SignStart(_) | LoggedInput::CatchUp(_) => None,
        }
    }

    /// The signed SAP the input carries, if it is a new SAP or a catch-up answer with one.
    pub fn signed_sap(&self) -> Option<&SignedSap> {
        match self {
            LoggedInput::Message {
                message: Message::NewElders(signed),
                ..
            } => Some(signed),
            LoggedInput::CatchUp(answer) => answer.signed.as_ref(),
            _ => None,
        }
    }

    /// Whether the input moves the section on (a new SAP, a catch-up): such an input is not
    /// logged, since once taken it lives in the record, and if refused it changed nothing.
    pub fn is_section_change(&self) -> bool {
        matches!(
            self,
            LoggedInput::Message {
                message: Message::NewElders(_),
                ..
            } | LoggedInput::CatchUp(_)
        )
    }

    /// Encoding: tag 0, the sender's name, the message's wire encoding; tag 1 and the session
    /// id; tag 2 and the start ([`wire::Message::Start`]'s encoding without the signature); or
    /// tag 3 and the answer ([`SectionAnswer::encode`]); or tag 4, the late run's `skip` (u32
    /// big-endian) and its start (as tag 2's).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            LoggedInput::Message { from, message } => {
                let mut out = vec![0];
                out.extend_from_slice(&from.0);
                out.extend_from_slice(&message.encode());
                out
            }
            LoggedInput::Deadline(s) => {
                let mut out = vec![1];
                out.extend_from_slice(&s.0);
                out
            }
            LoggedInput::SignStart(start) => {
                let mut out = vec![2];
                wire::put_start(&mut out, start);
                out
            }
            LoggedInput::CatchUp(answer) => {
                let mut out = vec![3];
                out.extend_from_slice(&answer.encode());
                out
            }
            LoggedInput::LateRun { start, skip } => {
                let mut out = vec![4];
                out.extend_from_slice(&skip.to_be_bytes());
                wire::put_start(&mut out, start);
                out
            }
        }
    }

    /// Decodes [`LoggedInput::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        match bytes.split_first() {
            Some((0, rest)) if rest.len() >= 32 => Ok(LoggedInput::Message {
                from: Name(rest[..32].try_into().expect("32 bytes")),
                message: Message::decode(&rest[32..])?,
            }),
            Some((1, rest)) => {
                let mut r = Reader::new(rest);
                let s = SessionId(r.array()?);
                r.finish()?;
                Ok(LoggedInput::Deadline(s))
            }
            Some((2, rest)) => {
                let mut r = Reader::new(rest);
                let start = wire::read_start(&mut r)?;
                r.finish()?;
                Ok(LoggedInput::SignStart(start))
            }
            Some((3, rest)) => Ok(LoggedInput::CatchUp(SectionAnswer::decode(rest)?)),
            Some((4, rest)) => {
                let mut r = Reader::new(rest);
                let skip = r.u32()?;
                let start = wire::read_start(&mut r)?;
                r.finish()?;
                Ok(LoggedInput::LateRun { start, skip })
            }
            Some((0, rest)) => Err(WireError::Truncated {
                needed: 32 - rest.len(),
            }),
            Some((tag, _)) => Err(WireError::UnknownTag {
                what: "logged input",
                tag: *tag,
            }),
            None => Err(WireError::Truncated { needed: 1 }),
        }
    }
}

/// Durable storage of one node's section state. Writes are durable when they return.
pub trait ElderStore {
    /// The store's error.
    type Error: core::fmt::Debug;

    /// Replaces the record, the share and the kept shares of superseded sessions (both sealed
    /// at rest; `None` or none removes them).
    fn save(
        &mut self,
        record: &ElderRecord,
        share: Option<&KeyShare>,
        kept: &KeptShares<'_>,
    ) -> Result<(), Self::Error>;
    /// As [`ElderStore::save`] when a SAP applied or a catch-up moved the node on, with the
    /// signed SAP that did it (`signed.sap == record.sap`, both its signatures verified by the
    /// coordinator). A store that keeps the signed SAP beside the record writes both at once,
    /// so that no crash leaves a record with another SAP's signatures; this default keeps the
    /// record only.
    fn save_section(
        &mut self,
        record: &ElderRecord,
        share: Option<&KeyShare>,
        kept: &KeptShares<'_>,
        signed: &SignedSap,
    ) -> Result<(), Self::Error> {
        let _ = signed;
        self.save(record, share, kept)
    }
    /// The record, the share and the kept shares, if a record was saved.
    fn load(&self) -> Result<Option<Stored>, Self::Error>;
    /// Appends an input to the log.
    fn log(&mut self, input: &LoggedInput) -> Result<(), Self::Error>;
    /// The logged inputs, oldest first.
    fn inputs(&self) -> Result<Vec<LoggedInput>, Self::Error>;
    /// Removes the inputs logged for `session` ([`LoggedInput::candidate_session`]).
    fn remove_session(&mut self, session: &SessionId) -> Result<(), Self::Error>;
    /// Removes every logged input but those of session `keep`, if given
    /// ([`LoggedInput::candidate_session`]), in one write.
    fn clear_inputs(&mut self, keep: Option<&SessionId>) -> Result<(), Self::Error>;
}

/// Why a persistent coordinator failed.
#[derive(Debug)]
pub enum PersistError<E> {
    /// The store failed; the input was not taken.
    Store(E),
    /// The coordinator refused the input (it stays logged only if it belongs to a live
    /// session; replaying it refuses it again).
    Dropped(Dropped),
    /// Nothing stored to restore from.
    Empty,
}

/// A coordinator whose every input is logged first and whose record is saved when it changes.
#[derive(Debug)]
pub struct PersistentCoordinator<S: ElderStore> {
    coordinator: Coordinator,
    store: S,
    /// Per session run as a candidate: its inputs logged so far, and how many of them had
    /// been logged when it started (the authorising start included), for
    /// [`LoggedInput::LateRun`]'s `skip`.
    sessions: SessionInputs,
}

/// Counts of the inputs logged per candidate session ([`LoggedInput::candidate_session`]),
/// and where each session started among them.
#[derive(Debug, Default)]
struct SessionInputs(BTreeMap<SessionId, (u32, Option<u32>)>);

impl SessionInputs {
    /// Counts `input` (a late-run entry is not one of its session's inputs); returns its
    /// position among its session's inputs, from 1.
    fn logged(&mut self, input: &LoggedInput) -> Option<(SessionId, u32)> {
        if matches!(input, LoggedInput::LateRun { .. }) {
            return None;
        }
        let session = input.candidate_session()?;
        let entry = self.0.entry(session).or_default();
        entry.0 += 1;
        Some((session, entry.0))
    }

    /// Notes the sessions that `outputs` say started.
    fn started(&mut self, outputs: &[Output]) {
        for output in outputs {
            if let Output::DkgStarted { session, .. } = output {
                let entry = self.0.entry(*session).or_default();
                entry.1 = Some(entry.0);
            }
        }
    }

    /// How many of `session`'s inputs were logged when it started.
    fn skip(&self, session: &SessionId) -> u32 {
        self.0.get(session).and_then(|e| e.1).unwrap_or(0)
    }
}

impl<S: ElderStore> PersistentCoordinator<S> {
    /// Starts from `coordinator`'s current state, saving it as the record.
    pub fn create(coordinator: Coordinator, mut store: S) -> Result<Self, PersistError<S::Error>> {
        let kept: Vec<_> = coordinator.kept_shares().collect();
        store
            .save(&coordinator.record(), coordinator.our_share(), &kept)
            .map_err(PersistError::Store)?;
        store.clear_inputs(None).map_err(PersistError::Store)?;
        Ok(PersistentCoordinator {
            coordinator,
            store,
            sessions: SessionInputs::default(),
        })
    }

    /// Restores after a crash: the saved record, then every logged input replayed. Returns the
    /// coordinator and the outputs the replay produced (the driver may send them again;
    /// receivers drop what they already have), then each running DKG's request for the votes
    /// it missed while down ([`Coordinator::resume_runs`]).
    pub fn restore(
        node_key: Secret<Scalar>,
        store: S,
    ) -> Result<(Self, Vec<Output>), PersistError<S::Error>> {
        let (record, share, kept) = store
            .load()
            .map_err(PersistError::Store)?
            .ok_or(PersistError::Empty)?;
        let mut coordinator =
            Coordinator::restore(node_key, record, share, kept).map_err(PersistError::Dropped)?;
        let mut outputs = Vec::new();
        let mut sessions = SessionInputs::default();
        let (late, inputs): (Vec<LoggedInput>, Vec<LoggedInput>) = store
            .inputs()
            .map_err(PersistError::Store)?
            .into_iter()
            .partition(|input| matches!(input, LoggedInput::LateRun { .. }));
        // A late run is rebuilt before its inputs, and takes only those it took before: the
        // ones logged after it started. Refused (the record is still the older SAP's: a crash
        // before the SAP's record was saved), its session replays as any other.
        let mut rebuilt = BTreeMap::new();
        for input in &late {
            if let LoggedInput::LateRun { start, skip } = input
                && coordinator.take(input).is_ok()
            {
                rebuilt.insert(start.session, *skip);
            }
        }
        for input in &inputs {
            if let Some((session, position)) = sessions.logged(input)
                && rebuilt.get(&session).is_some_and(|skip| position <= *skip)
            {
                continue;
            }
            if let Ok(out) = coordinator.take(input) {
                sessions.started(&out);
                outputs.extend(out);
            }
        }
        outputs.extend(coordinator.resume_runs());
        Ok((
            PersistentCoordinator {
                coordinator,
                store,
                sessions,
            },
            outputs,
        ))
    }

    /// The coordinator (read only: inputs go through [`PersistentCoordinator::take`]).
    pub fn coordinator(&self) -> &Coordinator {
        &self.coordinator
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives the store back (what survives a crash).
    pub fn into_store(self) -> S {
        self.store
    }

    /// Logs `input`, then hands it to the coordinator; saves the record if the input changed it
    /// (a SAP applied, sessions superseded, or a link signed) and removes what no longer matters from the log.
    pub fn take(&mut self, input: &LoggedInput) -> Result<Vec<Output>, PersistError<S::Error>> {
        let generation = self.coordinator.chain().key_count();
        let had_share = self.coordinator.our_share().is_some();
        let superseded_before: BTreeSet<SessionId> =
            self.coordinator.superseded().map(|(id, _)| id).collect();
        let linked_before = self.coordinator.linked().len();
        // A new SAP or a catch-up is applied from the record, not replayed: it is not logged.
        if !input.is_section_change() {
            self.store.log(input).map_err(PersistError::Store)?;
            self.sessions.logged(input);
        }
        let result = self.coordinator.take(input);
        if let Ok(out) = &result {
            self.sessions.started(out);
        }
        if self.coordinator.chain().key_count() != generation {
            // Every logged input was for the older generation, but our run of the DKG that
            // made this SAP may still be going: its start is logged first (against the older
            // record a restore refuses it), and its inputs stay when the log is cleared, so
            // that a restart rebuilds it and we still take our share of the new key.
            let late = self.coordinator.late_run().cloned();
            if let Some(start) = &late {
                let skip = self.sessions.skip(&start.session);
                let entry = LoggedInput::LateRun {
                    start: start.clone(),
                    skip,
                };
                self.store.log(&entry).map_err(PersistError::Store)?;
            }
            // The coordinator verified the SAP that moved it (both signatures) before it
            // changed: only now is it written.
            let record = self.coordinator.record();
            let share = self.coordinator.our_share();
            let kept: Vec<_> = self.coordinator.kept_shares().collect();
            match input.signed_sap().filter(|s| s.sap == record.sap) {
                Some(signed) => self.store.save_section(&record, share, &kept, signed),
                None => self.store.save(&record, share, &kept),
            }
            .map_err(PersistError::Store)?;
            let keep = late.as_ref().map(|start| start.session);
            self.store
                .clear_inputs(keep.as_ref())
                .map_err(PersistError::Store)?;
            self.sessions.0.retain(|session, _| Some(*session) == keep);
        } else {
            let newly: Vec<SessionId> = self
                .coordinator
                .superseded()
                .map(|(id, _)| id)
                .filter(|id| !superseded_before.contains(id))
                .collect();
            // A share taken after its SAP applied (a run that ended late) is saved too.
            let late_share = !had_share && self.coordinator.our_share().is_some();
            // A link partial leaves only once the choice of successor it makes is durable.
            let linked = self.coordinator.linked().len() != linked_before;
            if !newly.is_empty() || late_share || linked {
                // A share kept from a newly superseded session is sealed before the session's
                // inputs, which could rebuild it, go.
                let kept: Vec<_> = self.coordinator.kept_shares().collect();
                self.store
                    .save(
                        &self.coordinator.record(),
                        self.coordinator.our_share(),
                        &kept,
                    )
                    .map_err(PersistError::Store)?;
                for id in &newly {
                    self.store.remove_session(id).map_err(PersistError::Store)?;
                    self.sessions.0.remove(id);
                }
            }
        }
        result.map_err(PersistError::Dropped)
    }
}

/// An encoded record, the share's plaintext if any, and the kept shares' plaintext.
type StoredRecord = (Vec<u8>, Option<Zeroizing<Vec<u8>>>, Zeroizing<Vec<u8>>);

/// An in-memory [`ElderStore`], for tests and for nodes that do not persist; it "seals" nothing.
#[derive(Debug, Default)]
pub struct MemoryStore {
    record: Option<StoredRecord>,
    signed: Option<SignedSap>,
    inputs: Vec<(Option<SessionId>, Vec<u8>)>,
}

impl MemoryStore {
    /// The signed SAP saved with the record, if a SAP applied or a catch-up moved the node on.
    pub fn signed_sap(&self) -> Option<&SignedSap> {
        self.signed.as_ref()
    }
}

impl ElderStore for MemoryStore {
    type Error = WireError;

    fn save(
        &mut self,
        record: &ElderRecord,
        share: Option<&KeyShare>,
        kept: &KeptShares<'_>,
    ) -> Result<(), WireError> {
        self.record = Some((
            record.encode(),
            share.map(encode_share),
            encode_kept_shares(kept),
        ));
        Ok(())
    }

    fn save_section(
        &mut self,
        record: &ElderRecord,
        share: Option<&KeyShare>,
        kept: &KeptShares<'_>,
        signed: &SignedSap,
    ) -> Result<(), WireError> {
        self.save(record, share, kept)?;
        self.signed = Some(signed.clone());
        Ok(())
    }

    fn load(&self) -> Result<Option<Stored>, WireError> {
        let Some((record, share, kept)) = &self.record else {
            return Ok(None);
        };
        let share = match share {
            Some(bytes) => Some(decode_share(bytes)?),
            None => None,
        };
        Ok(Some((
            ElderRecord::decode(record)?,
            share,
            decode_kept_shares(kept)?,
        )))
    }

    fn log(&mut self, input: &LoggedInput) -> Result<(), WireError> {
        self.inputs
            .push((input.candidate_session(), input.encode()));
        Ok(())
    }

    fn inputs(&self) -> Result<Vec<LoggedInput>, WireError> {
        self.inputs
            .iter()
            .map(|(_, bytes)| LoggedInput::decode(bytes))
            .collect()
    }

    fn remove_session(&mut self, session: &SessionId) -> Result<(), WireError> {
        self.inputs.retain(|(s, _)| s.as_ref() != Some(session));
        Ok(())
    }

    fn clear_inputs(&mut self, keep: Option<&SessionId>) -> Result<(), WireError> {
        self.inputs
            .retain(|(s, _)| keep.is_some() && s.as_ref() == keep);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::tests::{key, link};
    use crate::elders::Peer;
    use crate::keys::SIGNATURE_LEN;
    use crate::name::Prefix;
    use crate::sap::genesis;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// A record of a node at the genesis SAP, with a superseded session, a signed link and,
    /// if `splits`, two open splits of that key (generations 1 and 3), all deterministic.
    fn record(splits: bool) -> ElderRecord {
        let founder = Peer::new(&key(1).0, "/ip4/10.0.0.1/tcp/1".into());
        let (sap, _) = genesis(founder, &mut ChaCha20Rng::seed_from_u64(7));
        let half = |bit, seed| Successor {
            parent_key: sap.section_key,
            prefix: Prefix::ROOT.child(bit).unwrap(),
            key: key(seed).1,
        };
        let open_splits = if splits {
            vec![
                SplitRecord {
                    session: SessionId([5; 32]),
                    generation: 1,
                    parent: sap.clone(),
                    half: half(0, 3),
                    attempt: 0,
                },
                SplitRecord {
                    session: SessionId([6; 32]),
                    generation: 3,
                    parent: sap.clone(),
                    half: half(1, 4),
                    attempt: 0,
                },
            ]
        } else {
            Vec::new()
        };
        ElderRecord {
            genesis_key: sap.section_key,
            chain: KeyChain::genesis(),
            superseded: vec![(SessionId([9; 32]), 2)],
            linked: vec![half(1, 2)],
            sap,
            open_splits,
        }
    }

    /// The encoding of `record` as it was before open splits were kept: every field up to the
    /// signed links.
    fn encode_without_splits(record: &ElderRecord) -> Vec<u8> {
        let mut out = key_bytes(&record.genesis_key).to_vec();
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&record.sap.encode());
        out.extend_from_slice(&1u32.to_be_bytes());
        let (id, generation) = record.superseded[0];
        out.extend_from_slice(&id.0);
        out.extend_from_slice(&generation.to_be_bytes());
        out.extend_from_slice(&1u32.to_be_bytes());
        let link = &record.linked[0];
        out.extend_from_slice(&key_bytes(&link.parent_key));
        link.prefix.encode(&mut out);
        out.extend_from_slice(&key_bytes(&link.key));
        out
    }

    /// A chain's links decode as they were encoded, whether a link's parent is the key before
    /// it (a well-formed chain) or not; a parent that is not a valid key is refused wherever
    /// it stands.
    #[test]
    fn a_record_decodes_each_parent_as_a_key_and_leaves_the_order_to_the_chain_check() {
        let (g, k1, k2) = (key(0), key(1), key(2));
        let mut record = record(false);
        record.genesis_key = g.1;
        record.chain = KeyChain::from_links(vec![link(&g, &k1.1), link(&k1, &k2.1)]).unwrap();
        assert_eq!(ElderRecord::decode(&record.encode()).unwrap(), record);
        // A parent other than the key before it decodes as itself; the chain's own check
        // (`KeyChain::verify_from`), not decoding, refuses the link.
        let mut odd = record.clone();
        odd.chain = KeyChain::from_links(vec![link(&g, &k1.1), link(&g, &k2.1)]).unwrap();
        assert_eq!(ElderRecord::decode(&odd.encode()).unwrap(), odd);
        assert_eq!(
            odd.chain.verify_from(&g.1),
            Err(crate::chain::ChainError::WrongParent { position: 1 })
        );
        // Bytes that are no key, as the first link's parent and as the second's.
        let bytes = record.encode();
        for link in 0..2 {
            let parent_at = KEY_LEN + 4 + link * (2 * KEY_LEN + SIGNATURE_LEN) + KEY_LEN;
            let mut bad = bytes.clone();
            bad[parent_at..parent_at + KEY_LEN].fill(0xff);
            assert_eq!(
                ElderRecord::decode(&bad),
                Err(WireError::NonCanonical("public key")),
                "link {link}"
            );
        }
    }

    #[test]
    fn a_record_without_open_splits_keeps_the_older_encoding_and_an_older_record_loads() {
        let old = record(false);
        let bytes = encode_without_splits(&old);
        assert_eq!(old.encode(), bytes);
        assert_eq!(ElderRecord::decode(&bytes).unwrap(), old);
    }

    #[test]
    fn open_splits_follow_the_signed_links_and_round_trip() {
        let record = record(true);
        let bytes = record.encode();
        let mut tail = 2u32.to_be_bytes().to_vec();
        for split in &record.open_splits {
            tail.extend_from_slice(&split.session.0);
            tail.extend_from_slice(&split.generation.to_be_bytes());
            tail.extend_from_slice(&split.parent.encode());
            split.half.prefix.encode(&mut tail);
            tail.extend_from_slice(&key_bytes(&split.half.key));
        }
        assert_eq!(bytes, [encode_without_splits(&record), tail].concat());
        assert_eq!(ElderRecord::decode(&bytes).unwrap(), record);
    }

    #[test]
    fn the_open_splits_encoding_is_canonical_and_bounded() {
        let record = record(true);
        let old = encode_without_splits(&record);
        let bytes = record.encode();
        // No splits is no section at all, not an empty one.
        let empty = [old.as_slice(), &0u32.to_be_bytes()].concat();
        assert_eq!(
            ElderRecord::decode(&empty),
            Err(WireError::NonCanonical("empty open splits"))
        );
        // Splits are in increasing generation, one per generation.
        let mut swapped = record.clone();
        swapped.open_splits.reverse();
        let mut same = record.clone();
        same.open_splits[1].generation = same.open_splits[0].generation;
        for unordered in [swapped, same] {
            assert_eq!(
                ElderRecord::decode(&unordered.encode()),
                Err(WireError::NonCanonical("open splits order"))
            );
        }
        // More than a record can hold is refused before anything is read.
        let too_many = [old.as_slice(), &(MAX_OPEN_SPLITS as u32 + 1).to_be_bytes()].concat();
        assert!(matches!(
            ElderRecord::decode(&too_many),
            Err(WireError::TooLong {
                what: "open splits",
                ..
            })
        ));
        assert!(ElderRecord::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(ElderRecord::decode(&[bytes.as_slice(), &[0]].concat()).is_err());
    }

    #[test]
    fn open_split_attempts_follow_the_open_splits_only_if_one_is_not_0() {
        let mut record = record(true);
        // At attempt 0 the open splits keep the layout they had before their attempts were
        // kept (`open_splits_follow_the_signed_links_and_round_trip`): such a record loads
        // with attempt 0.
        let before = record.encode();
        let loaded = ElderRecord::decode(&before).unwrap();
        assert!(loaded.open_splits.iter().all(|split| split.attempt == 0));
        record.open_splits[1].attempt = 2;
        let bytes = record.encode();
        let attempts = [0u32.to_be_bytes(), 2u32.to_be_bytes()].concat();
        assert_eq!(bytes, [before.as_slice(), &attempts].concat());
        assert_eq!(ElderRecord::decode(&bytes).unwrap(), record);
        // Attempts all 0 are not written, so written they are refused.
        let zeros = [before.as_slice(), &[0; 8]].concat();
        assert_eq!(
            ElderRecord::decode(&zeros),
            Err(WireError::NonCanonical("open split attempts all 0"))
        );
        // One attempt per open split, and nothing after them.
        assert!(ElderRecord::decode(&bytes[..bytes.len() - 4]).is_err());
        assert!(ElderRecord::decode(&[bytes.as_slice(), &[0; 4]].concat()).is_err());
    }
}
