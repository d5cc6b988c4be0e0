//! Fetching a chain's rounds from a node that has them: one bounded request for a range of
//! rounds, one bounded answer, and the link check that, with [`crate::verify_round`], makes a
//! fetched round as good as one combined from partials.
//!
//! A node that holds no share of the view (outside the committee), or a member that was down
//! while the others went on, gets the rounds it lacks in batches of at most
//! [`MAX_SYNC_ROUNDS`] from a node that stored them, as drand's nodes do when they sync a chain
//! (drand's `chain/beacon/sync_manager.go`: a request from a round, the answer streamed back,
//! every beacon verified and checked against the one before it before it is stored). Rounds are
//! public, so who answered does not matter: a round is taken only when it verifies under the
//! chain's group key and, in a chained scheme, carries the signature of the round this node
//! stored before it ([`check_link`]); the first round of a chain must be round 1, whose
//! previous signature is the chain's seed.
//!
//! # Encodings
//! Request ([`SyncRequest`], [`SYNC_REQUEST_LEN`] bytes): chain hash (32), first round (8,
//! big-endian), number of rounds (4, big-endian, `1..=MAX_SYNC_ROUNDS`).
//!
//! Answer ([`encode_rounds`]): number of rounds (2, big-endian, at most [`MAX_SYNC_ROUNDS`]),
//! then per round: round number (8, big-endian), signature length (1) and signature, previous
//! signature length (1, 0 when absent) and previous signature. Lengths are at most
//! [`MAX_SIGNATURE_LEN`]; nothing may follow the last round.
//!
//! Refusal ([`encode_rate_limited`], [`RATE_LIMITED_LEN`] bytes): [`RATE_LIMITED_MARKER`] (2,
//! where an answer has its count, a value no count can take) and how long the asker should
//! wait before asking that node again, in milliseconds (4, big-endian). A node answers so
//! when the asker has used up its share of the node's sync capacity ([`SyncAnswer`]).

use crate::info::ChainInfo;
use crate::round::{MAX_SIGNATURE_LEN, Round};

/// Most rounds one request asks for and one answer carries.
pub const MAX_SYNC_ROUNDS: u32 = 100;
/// Length of an encoded [`SyncRequest`].
pub const SYNC_REQUEST_LEN: usize = 32 + 8 + 4;
/// Longest encoded answer: [`MAX_SYNC_ROUNDS`] rounds with signatures of the longest length.
pub const MAX_SYNC_ANSWER_LEN: usize =
    2 + MAX_SYNC_ROUNDS as usize * (8 + 1 + MAX_SIGNATURE_LEN + 1 + MAX_SIGNATURE_LEN);

/// Stands in an answer's round count for a refusal (see the module docs).
pub const RATE_LIMITED_MARKER: u16 = u16::MAX;
/// Length of an encoded refusal.
pub const RATE_LIMITED_LEN: usize = 2 + 4;

// The marker is no count an answer can carry.
const _: () = assert!(MAX_SYNC_ROUNDS < RATE_LIMITED_MARKER as u32);

/// Why a request, an answer or a fetched round is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// The request does not have [`SYNC_REQUEST_LEN`] bytes.
    #[error("sync request of {0} bytes")]
    RequestLength(usize),
    /// The request asks for round 0, for no round or for more than [`MAX_SYNC_ROUNDS`].
    #[error("sync request for {count} rounds from round {from}")]
    BadRange {
        /// First round asked for.
        from: u64,
        /// Rounds asked for.
        count: u32,
    },
    /// The answer ends early, has bytes after its last round, or a field out of bounds.
    #[error("malformed sync answer: {0}")]
    Malformed(&'static str),
    /// The answer has more rounds than were asked for.
    #[error("sync answer with {actual} rounds for a request of {asked}")]
    TooMany {
        /// Rounds asked for.
        asked: u32,
        /// Rounds in the answer.
        actual: usize,
    },
    /// A round that is not the next one (the one after the last stored, or round 1).
    #[error("expected round {expected}, got round {actual}")]
    NotNext {
        /// The round that was due.
        expected: u64,
        /// The round received.
        actual: u64,
    },
    /// A chained round whose previous signature is not the stored round's signature.
    #[error("round {0} does not chain to the stored round before it")]
    Unlinked(u64),
}

/// A request for `count` rounds of the chain `chain`, from round `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncRequest {
    /// The chain's hash ([`ChainInfo::hash`]).
    pub chain: [u8; 32],
    /// First round asked for (at least 1).
    pub from: u64,
    /// Rounds asked for (`1..=MAX_SYNC_ROUNDS`).
    pub count: u32,
}

impl SyncRequest {
    /// The request for the rounds after `last` up to `upto` (at most [`MAX_SYNC_ROUNDS`] of
    /// them); `None` when there is none to ask for.
    pub fn after(chain: [u8; 32], last: u64, upto: u64) -> Option<Self> {
        if upto <= last {
            return None;
        }
        let count = (upto - last).min(u64::from(MAX_SYNC_ROUNDS)) as u32;
        Some(SyncRequest {
            chain,
            from: last.checked_add(1)?,
            count,
        })
    }

    /// See the module docs.
    pub fn to_bytes(&self) -> [u8; SYNC_REQUEST_LEN] {
        let mut out = [0u8; SYNC_REQUEST_LEN];
        out[..32].copy_from_slice(&self.chain);
        out[32..40].copy_from_slice(&self.from.to_be_bytes());
        out[40..].copy_from_slice(&self.count.to_be_bytes());
        out
    }

    /// Decodes [`SyncRequest::to_bytes`]; the range must be one this node may answer.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SyncError> {
        let bytes: &[u8; SYNC_REQUEST_LEN] = bytes
            .try_into()
            .map_err(|_| SyncError::RequestLength(bytes.len()))?;
        let mut chain = [0u8; 32];
        chain.copy_from_slice(&bytes[..32]);
        let from = u64::from_be_bytes(bytes[32..40].try_into().expect("8 bytes"));
        let count = u32::from_be_bytes(bytes[40..].try_into().expect("4 bytes"));
        if from == 0
            || count == 0
            || count > MAX_SYNC_ROUNDS
            || from.checked_add(u64::from(count)).is_none()
        {
            return Err(SyncError::BadRange { from, count });
        }
        Ok(SyncRequest { chain, from, count })
    }

    /// The last round asked for.
    pub fn last(&self) -> u64 {
        self.from + u64::from(self.count) - 1
    }
}

/// Encodes an answer (see the module docs). The caller passes at most [`MAX_SYNC_ROUNDS`]
/// rounds with signatures no longer than [`MAX_SIGNATURE_LEN`], as the store holds them;
/// anything past those bounds is left out rather than encoded out of bounds.
pub fn encode_rounds(rounds: &[Round]) -> Vec<u8> {
    let fits = |r: &&Round| {
        r.signature.len() <= MAX_SIGNATURE_LEN
            && r.previous_signature
                .as_ref()
                .is_none_or(|p| p.len() <= MAX_SIGNATURE_LEN)
    };
    let rounds: Vec<&Round> = rounds
        .iter()
        .take(MAX_SYNC_ROUNDS as usize)
        .take_while(fits)
        .collect();
    let mut out = Vec::with_capacity(2 + rounds.len() * 202);
    out.extend_from_slice(&(rounds.len() as u16).to_be_bytes());
    for r in rounds {
        out.extend_from_slice(&r.round.to_be_bytes());
        out.push(r.signature.len() as u8);
        out.extend_from_slice(&r.signature);
        let previous = r.previous_signature.as_deref().unwrap_or(&[]);
        out.push(previous.len() as u8);
        out.extend_from_slice(previous);
    }
    out
}

/// A decoded answer to a [`SyncRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncAnswer {
    /// Consecutive rounds from the one asked for (possibly none).
    Rounds(Vec<Round>),
    /// The node refused to answer now: ask it again no sooner than `retry_after_ms`.
    RateLimited {
        /// Milliseconds to wait before asking this node again.
        retry_after_ms: u32,
    },
}

/// Encodes a refusal asking the asker to wait `retry_after_ms` (see the module docs).
pub fn encode_rate_limited(retry_after_ms: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(RATE_LIMITED_LEN);
    out.extend_from_slice(&RATE_LIMITED_MARKER.to_be_bytes());
    out.extend_from_slice(&retry_after_ms.to_be_bytes());
    out
}

/// Decodes an answer to `request`: a refusal of exactly [`RATE_LIMITED_LEN`] bytes, or rounds
/// as [`decode_rounds`] reads them.
pub fn decode_answer(request: &SyncRequest, bytes: &[u8]) -> Result<SyncAnswer, SyncError> {
    if bytes.get(..2) == Some(RATE_LIMITED_MARKER.to_be_bytes().as_slice()) {
        let wait: [u8; 4] = bytes[2..]
            .try_into()
            .map_err(|_| SyncError::Malformed("refusal length"))?;
        return Ok(SyncAnswer::RateLimited {
            retry_after_ms: u32::from_be_bytes(wait),
        });
    }
    decode_rounds(request, bytes).map(SyncAnswer::Rounds)
}

/// Decodes an answer to `request`: at most `request.count` rounds (see the module docs). The
/// rounds are not verified here ([`check_link`] and [`crate::verify_round`] do that).
pub fn decode_rounds(request: &SyncRequest, bytes: &[u8]) -> Result<Vec<Round>, SyncError> {
    if bytes.len() > MAX_SYNC_ANSWER_LEN {
        return Err(SyncError::Malformed("too long"));
    }
    let mut r = Reader(bytes);
    let count = usize::from(u16::from_be_bytes(r.array()?));
    if count > request.count as usize {
        return Err(SyncError::TooMany {
            asked: request.count,
            actual: count,
        });
    }
    let mut rounds = Vec::with_capacity(count);
    for _ in 0..count {
        let round = u64::from_be_bytes(r.array()?);
        let signature = r.signature("signature length")?.to_vec();
        let previous = r.signature("previous signature length")?;
        rounds.push(Round {
            round,
            signature,
            previous_signature: (!previous.is_empty()).then(|| previous.to_vec()),
        });
    }
    if !r.0.is_empty() {
        return Err(SyncError::Malformed("bytes after the last round"));
    }
    Ok(rounds)
}

/// The unread part of an answer.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SyncError> {
        if self.0.len() < n {
            return Err(SyncError::Malformed("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SyncError> {
        Ok(self.take(N)?.try_into().expect("N bytes taken"))
    }

    /// A length byte, at most [`MAX_SIGNATURE_LEN`], and that many bytes.
    fn signature(&mut self, field: &'static str) -> Result<&'a [u8], SyncError> {
        let [len] = self.array::<1>()?;
        if usize::from(len) > MAX_SIGNATURE_LEN {
            return Err(SyncError::Malformed(field));
        }
        self.take(usize::from(len))
    }
}

/// Whether `round` may follow `previous`, this node's last stored round of the chain `info`
/// (`None` when it has none): it must be the next round (round 1 on an empty chain), and in a
/// chained scheme it must carry `previous`'s signature (round 1 carries the chain's seed,
/// which [`crate::verify_round`] checks). The round's own signature is
/// [`crate::verify_round`]'s to check.
pub fn check_link(
    info: &ChainInfo,
    previous: Option<&Round>,
    round: &Round,
) -> Result<(), SyncError> {
    let expected = previous.map_or(1, |p| p.round.saturating_add(1));
    if round.round != expected {
        return Err(SyncError::NotNext {
            expected,
            actual: round.round,
        });
    }
    if let Some(p) = previous
        && info.scheme().is_chained()
        && round.previous_signature.as_deref() != Some(p.signature.as_slice())
    {
        return Err(SyncError::Unlinked(round.round));
    }
    Ok(())
}
