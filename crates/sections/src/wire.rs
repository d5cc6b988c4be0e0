//! The wire encoding of every message nodes of a section exchange ([`Message`]).
//!
//! One tag byte, then the fields in a fixed order: integers big-endian, keys and signatures
//! compressed (48 and 96 bytes), names and session ids 32 bytes, peers, prefixes and SAPs in the
//! encodings their signatures cover ([`Peer::encode`], [`Prefix::encode`], [`Sap::encode`]),
//! counts and byte strings prefixed by a `u32` length. The encoding is canonical:
//! [`Message::decode`] accepts exactly the bytes [`Message::encode`] produces, so
//! `encode(decode(b)) == b` for every accepted `b`. Every count and length is bounded before
//! anything is allocated, and a start's session id is not sent but recomputed from its fields,
//! so it cannot disagree with them.
//!
//! Decoding checks encodings only (points on the curve and in the subgroup, canonical scalars,
//! sorted sets, UTF-8 addresses); whether a message is acceptable (signatures, senders, sessions)
//! is the [`crate::coordinator::Coordinator`]'s to decide.

use std::collections::BTreeSet;

use keyquorum_crypto::encrypt::{self, EncryptionPublicKey};
use keyquorum_crypto::tbls::{MinPk, PartialSignature};
use keyquorum_dkg::identity::{IdentityPublicKey, IdentitySignature};
use keyquorum_dkg::wire::{Reader, WireError};

use crate::dkg::{DkgKeys, DkgMessage, MAX_POST_LEN, MAX_POSTS_PER_AUTHOR};
use crate::elders::{MAX_ADDR_LEN, Peer};
use crate::keys::{
    KEY_LEN, PublicKey, SIGNATURE_LEN, Signature, decode_key, decode_signature, key_bytes,
    signature_bytes,
};
use crate::name::{Name, Prefix};
use crate::sap::{Sap, SignedSap};
use crate::session::{DkgStart, FailureObservation, MAX_CANDIDATES, NodeSignature, SessionId};

/// Longest message accepted, checked before anything is read.
pub const MAX_MESSAGE_LEN: usize = 64 << 20;

/// Longest engine message a [`DkgMessage::Direct`] carries (an encrypted share or an ack).
pub const MAX_DIRECT_LEN: usize = 64 * 1024;

/// Most posts a vote carries.
pub const MAX_VOTE_POSTS: usize = MAX_CANDIDATES * MAX_POSTS_PER_AUTHOR;

const TAG_START: u8 = 1;
const TAG_FAILURE: u8 = 2;
const TAG_FAILURE_AGREEMENT: u8 = 3;
const TAG_DKG_DIRECT: u8 = 4;
const TAG_DKG_POST: u8 = 5;
const TAG_DKG_VOTE: u8 = 6;
const TAG_SAP_SHARE: u8 = 7;
const TAG_LINK_SHARE: u8 = 8;
const TAG_NEW_ELDERS: u8 = 9;
const TAG_DKG_BEHIND: u8 = 10;

/// Every message of the sections protocol.
// Messages are short-lived values decoded, handled once and dropped; boxing the signature-sized
// variants would add an allocation per message for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A current elder's signature on a start, to the candidates.
    Start {
        /// The start.
        start: DkgStart,
        /// The elder's signature.
        signature: NodeSignature,
    },
    /// A candidate's signed failure observation, to the other candidates.
    Failure {
        /// The observation.
        observation: FailureObservation,
        /// The candidate's signature.
        signature: NodeSignature,
    },
    /// A failure agreement, to the current elders: the agreeing candidates' signatures on one
    /// observation.
    FailureAgreement {
        /// The failed session.
        session: SessionId,
        /// The agreed non-participants.
        excluded: BTreeSet<Name>,
        /// The candidates' signatures.
        signatures: Vec<NodeSignature>,
    },
    /// A DKG message between candidates.
    Dkg(DkgMessage),
    /// A new elder's partial signature on the new SAP, to the current elders.
    SapShare {
        /// The session.
        session: SessionId,
        /// The new SAP.
        sap: Sap,
        /// The partial signature with the new key share.
        partial: PartialSignature<MinPk>,
    },
    /// A current elder's partial signature on the new key, to the other current elders.
    LinkShare {
        /// The session.
        session: SessionId,
        /// The new section key.
        new_key: PublicKey,
        /// The partial signature with the current key share.
        partial: PartialSignature<MinPk>,
    },
    /// The new SAP with both signatures.
    NewElders(SignedSap),
}

impl Message {
    /// The session the message belongs to; `None` for a new SAP, which belongs to the section.
    pub fn session(&self) -> Option<SessionId> {
        match self {
            Message::Start { start, .. } => Some(start.session),
            Message::Failure { observation, .. } => Some(observation.session),
            Message::FailureAgreement { session, .. }
            | Message::SapShare { session, .. }
            | Message::LinkShare { session, .. } => Some(*session),
            Message::Dkg(m) => Some(m.session()),
            Message::NewElders(_) => None,
        }
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Message::Start { start, signature } => {
                out.push(TAG_START);
                put_start(&mut out, start);
                put_node_signature(&mut out, signature);
            }
            Message::Failure {
                observation,
                signature,
            } => {
                out.push(TAG_FAILURE);
                out.extend_from_slice(&observation.session.0);
                put_names(&mut out, &observation.non_participants);
                put_node_signature(&mut out, signature);
            }
            Message::FailureAgreement {
                session,
                excluded,
                signatures,
            } => {
                out.push(TAG_FAILURE_AGREEMENT);
                out.extend_from_slice(&session.0);
                put_names(&mut out, excluded);
                put_len(&mut out, signatures.len());
                for s in signatures {
                    put_node_signature(&mut out, s);
                }
            }
            Message::Dkg(DkgMessage::Direct { session, payload }) => {
                out.push(TAG_DKG_DIRECT);
                out.extend_from_slice(&session.0);
                put_bytes(&mut out, payload);
            }
            Message::Dkg(DkgMessage::Post { session, post }) => {
                out.push(TAG_DKG_POST);
                out.extend_from_slice(&session.0);
                put_bytes(&mut out, post);
            }
            Message::Dkg(DkgMessage::Vote {
                session,
                round,
                posts,
            }) => {
                out.push(TAG_DKG_VOTE);
                out.extend_from_slice(&session.0);
                out.extend_from_slice(&round.to_be_bytes());
                put_len(&mut out, posts.len());
                for p in posts {
                    put_bytes(&mut out, p);
                }
            }
            Message::Dkg(DkgMessage::Behind { session, round }) => {
                out.push(TAG_DKG_BEHIND);
                out.extend_from_slice(&session.0);
                out.extend_from_slice(&round.to_be_bytes());
            }
            Message::SapShare {
                session,
                sap,
                partial,
            } => {
                out.push(TAG_SAP_SHARE);
                out.extend_from_slice(&session.0);
                out.extend_from_slice(&sap.encode());
                out.extend_from_slice(&partial.to_bytes());
            }
            Message::LinkShare {
                session,
                new_key,
                partial,
            } => {
                out.push(TAG_LINK_SHARE);
                out.extend_from_slice(&session.0);
                out.extend_from_slice(&key_bytes(new_key));
                out.extend_from_slice(&partial.to_bytes());
            }
            Message::NewElders(signed) => {
                out.push(TAG_NEW_ELDERS);
                out.extend_from_slice(&signed.sap.encode());
                out.extend_from_slice(&signature_bytes(&signed.sap_signature));
                out.extend_from_slice(&key_bytes(&signed.parent_key));
                out.extend_from_slice(&signature_bytes(&signed.parent_signature));
            }
        }
        out
    }

    /// Decodes a message: canonical encodings only, every length bounded, no trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(WireError::TooLong {
                what: "message",
                max: MAX_MESSAGE_LEN,
                actual: bytes.len(),
            });
        }
        let mut r = Reader::new(bytes);
        let tag = r.u8()?;
        let message = match tag {
            TAG_START => Message::Start {
                start: read_start(&mut r)?,
                signature: read_node_signature(&mut r)?,
            },
            TAG_FAILURE => Message::Failure {
                observation: FailureObservation {
                    session: read_session(&mut r)?,
                    non_participants: read_names(&mut r)?,
                },
                signature: read_node_signature(&mut r)?,
            },
            TAG_FAILURE_AGREEMENT => {
                let session = read_session(&mut r)?;
                let excluded = read_names(&mut r)?;
                let n = r.count("signatures", MAX_CANDIDATES)?;
                let mut signatures = Vec::with_capacity(n);
                for _ in 0..n {
                    signatures.push(read_node_signature(&mut r)?);
                }
                Message::FailureAgreement {
                    session,
                    excluded,
                    signatures,
                }
            }
            TAG_DKG_DIRECT => Message::Dkg(DkgMessage::Direct {
                session: read_session(&mut r)?,
                payload: r.bytes("direct message", MAX_DIRECT_LEN)?.to_vec(),
            }),
            TAG_DKG_POST => Message::Dkg(DkgMessage::Post {
                session: read_session(&mut r)?,
                post: r.bytes("post", MAX_POST_LEN)?.to_vec(),
            }),
            TAG_DKG_VOTE => {
                let session = read_session(&mut r)?;
                let round = r.u32()?;
                let n = r.count("vote posts", MAX_VOTE_POSTS)?;
                let mut posts = Vec::new();
                for _ in 0..n {
                    posts.push(r.bytes("post", MAX_POST_LEN)?.to_vec());
                }
                Message::Dkg(DkgMessage::Vote {
                    session,
                    round,
                    posts,
                })
            }
            TAG_DKG_BEHIND => Message::Dkg(DkgMessage::Behind {
                session: read_session(&mut r)?,
                round: r.u32()?,
            }),
            TAG_SAP_SHARE => Message::SapShare {
                session: read_session(&mut r)?,
                sap: read_sap(&mut r)?,
                partial: read_partial(&mut r)?,
            },
            TAG_LINK_SHARE => Message::LinkShare {
                session: read_session(&mut r)?,
                new_key: read_key(&mut r)?,
                partial: read_partial(&mut r)?,
            },
            TAG_NEW_ELDERS => Message::NewElders(SignedSap {
                sap: read_sap(&mut r)?,
                sap_signature: read_signature(&mut r)?,
                parent_key: read_key(&mut r)?,
                parent_signature: read_signature(&mut r)?,
            }),
            tag => {
                return Err(WireError::UnknownTag {
                    what: "sections message",
                    tag,
                });
            }
        };
        r.finish()?;
        Ok(message)
    }
}

/// A start without its session id (recomputed on decoding): prefix, generation, attempt,
/// candidates.
pub(crate) fn put_start(out: &mut Vec<u8>, start: &DkgStart) {
    start.prefix.encode(out);
    out.extend_from_slice(&start.generation.to_be_bytes());
    out.extend_from_slice(&start.attempt.to_be_bytes());
    put_len(out, start.candidates.len());
    for c in &start.candidates {
        c.encode(out);
    }
}

/// Decodes [`put_start`]: one to [`MAX_CANDIDATES`] candidates, strictly sorted by name.
pub(crate) fn read_start(r: &mut Reader<'_>) -> Result<DkgStart, WireError> {
    let prefix = read_prefix(r)?;
    let generation = r.u64()?;
    let attempt = r.u32()?;
    let n = r.count("candidates", MAX_CANDIDATES)?;
    if n == 0 {
        return Err(WireError::NonCanonical("empty candidate list"));
    }
    let mut candidates = Vec::with_capacity(n);
    for _ in 0..n {
        candidates.push(read_peer(r)?);
    }
    if !candidates.windows(2).all(|w| w[0].name() < w[1].name()) {
        return Err(WireError::NonCanonical("candidate order"));
    }
    Ok(DkgStart::at_attempt(
        prefix, candidates, generation, attempt,
    ))
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len as u32).to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

fn put_names(out: &mut Vec<u8>, names: &BTreeSet<Name>) {
    put_len(out, names.len());
    for n in names {
        out.extend_from_slice(&n.0);
    }
}

pub(crate) fn put_node_signature(out: &mut Vec<u8>, sig: &NodeSignature) {
    out.extend_from_slice(&key_bytes(&sig.signer));
    out.extend_from_slice(&signature_bytes(&sig.signature));
}

fn read_session(r: &mut Reader<'_>) -> Result<SessionId, WireError> {
    Ok(SessionId(r.array()?))
}

pub(crate) fn read_key(r: &mut Reader<'_>) -> Result<PublicKey, WireError> {
    decode_key(r.fixed(KEY_LEN)?).map_err(|_| WireError::NonCanonical("public key"))
}

pub(crate) fn read_signature(r: &mut Reader<'_>) -> Result<Signature, WireError> {
    decode_signature(r.fixed(SIGNATURE_LEN)?).map_err(|_| WireError::NonCanonical("signature"))
}

fn read_partial(r: &mut Reader<'_>) -> Result<PartialSignature<MinPk>, WireError> {
    PartialSignature::<MinPk>::from_bytes(r.fixed(PartialSignature::<MinPk>::ENCODED_LEN)?)
        .map_err(|_| WireError::NonCanonical("partial signature"))
}

pub(crate) fn read_node_signature(r: &mut Reader<'_>) -> Result<NodeSignature, WireError> {
    Ok(NodeSignature {
        signer: read_key(r)?,
        signature: read_signature(r)?,
    })
}

/// A set of names, strictly ascending (the order [`put_names`] writes).
fn read_names(r: &mut Reader<'_>) -> Result<BTreeSet<Name>, WireError> {
    let n = r.count("names", MAX_CANDIDATES)?;
    let mut names = Vec::with_capacity(n);
    for _ in 0..n {
        names.push(Name(r.array()?));
    }
    if !names.windows(2).all(|w| w[0] < w[1]) {
        return Err(WireError::NonCanonical("name order"));
    }
    Ok(names.into_iter().collect())
}

pub(crate) fn read_prefix(r: &mut Reader<'_>) -> Result<Prefix, WireError> {
    let bit_count = u16::from_be_bytes(r.array()?);
    if bit_count > 256 {
        return Err(WireError::NonCanonical("prefix length"));
    }
    let bytes = r.fixed(usize::from(bit_count.div_ceil(8)))?;
    Prefix::from_bits(bit_count, bytes).ok_or(WireError::NonCanonical("prefix bits"))
}

fn read_peer(r: &mut Reader<'_>) -> Result<Peer, WireError> {
    let node_key = read_key(r)?;
    let identity = IdentityPublicKey::from_bytes(r.fixed(keyquorum_dkg::identity::PUBLIC_KEY_LEN)?)
        .map_err(|_| WireError::NonCanonical("identity key"))?;
    let pop = IdentitySignature(r.array()?);
    let encryption = EncryptionPublicKey::from_bytes(r.fixed(encrypt::PUBLIC_KEY_LEN)?)
        .map_err(|_| WireError::NonCanonical("encryption key"))?;
    let addr_len = usize::from(u16::from_be_bytes(r.array()?));
    if addr_len > MAX_ADDR_LEN {
        return Err(WireError::TooLong {
            what: "address",
            max: MAX_ADDR_LEN,
            actual: addr_len,
        });
    }
    let addr = std::str::from_utf8(r.fixed(addr_len)?)
        .map_err(|_| WireError::NonCanonical("address"))?
        .to_string();
    Ok(Peer {
        node_key,
        dkg: DkgKeys {
            identity,
            pop,
            encryption,
        },
        addr,
    })
}

pub(crate) fn read_sap(r: &mut Reader<'_>) -> Result<Sap, WireError> {
    let prefix = read_prefix(r)?;
    let n = r.count("elders", MAX_CANDIDATES)?;
    let mut elders = Vec::with_capacity(n);
    for _ in 0..n {
        elders.push(read_peer(r)?);
    }
    Ok(Sap {
        prefix,
        elders,
        section_key: read_key(r)?,
    })
}

/// Decodes one peer in [`Peer::encode`]'s encoding, and nothing after it (a join request's
/// body).
pub fn decode_peer(bytes: &[u8]) -> Result<Peer, WireError> {
    let mut r = Reader::new(bytes);
    let peer = read_peer(&mut r)?;
    r.finish()?;
    Ok(peer)
}

/// Decodes one SAP in [`Sap::encode`]'s encoding, and nothing after it (what a node's HTTP
/// view of its section lists).
pub fn decode_sap(bytes: &[u8]) -> Result<Sap, WireError> {
    let mut r = Reader::new(bytes);
    let sap = read_sap(&mut r)?;
    r.finish()?;
    Ok(sap)
}
