//! DKG sessions, their signed start and failure observations (seed 002, "SessionId", "Pre-DKG
//! preparations", "Handling a failure").
//!
//! A session is named by a domain-separated hash of its prefix, its generation (the length of
//! the section key chain when it starts), its attempt (how many failure agreements the elders
//! checked for the prefix at that generation before signing it) and its sorted candidate list,
//! so a different candidate set, a later generation or a restart is a different session. A
//! restart may select the same candidates as a start its generation already replaced; the
//! attempt keeps its id fresh, since a candidate refuses a superseded session for good. Elders sign the [`DkgStart`] individually
//! with their node keys; candidates sign [`FailureObservation`]s the same way.

use std::collections::BTreeSet;

use blstrs::Scalar;
use keyquorum_crypto::hash::tagged_hash;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk};

use crate::elders::{MAX_ADDR_LEN, Peer};
use crate::keys::{PublicKey, Signature};
use crate::name::{Name, Prefix};

const SESSION_TAG: &str = "keyquorum-sections/session-id/v1";
const START_TAG: &str = "keyquorum-sections/dkg-start/v1";
const FAILURE_TAG: &str = "keyquorum-sections/dkg-failure/v1";

/// Most candidates a start may list; bounds the work a hostile start can cause.
pub const MAX_CANDIDATES: usize = 1024;

/// The smallest count strictly greater than two thirds of `n`: `floor(2n / 3) + 1`.
///
/// `supermajority(7) = 5`, `supermajority(4) = 3`, `supermajority(1) = 1`.
pub fn supermajority(n: usize) -> usize {
    2 * n / 3 + 1
}

/// The id of one DKG session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub [u8; 32]);

impl SessionId {
    /// The id of the session for `candidates` (sorted by name, as [`DkgStart::new`] keeps them)
    /// at `generation` under `prefix`, after `attempt` checked failure agreements.
    pub fn new(prefix: &Prefix, candidates: &[Peer], generation: u64, attempt: u32) -> Self {
        let mut bytes = Vec::new();
        prefix.encode(&mut bytes);
        bytes.extend_from_slice(&generation.to_be_bytes());
        bytes.extend_from_slice(&attempt.to_be_bytes());
        bytes.extend_from_slice(&(candidates.len() as u32).to_be_bytes());
        for c in candidates {
            c.encode(&mut bytes);
        }
        SessionId(tagged_hash(SESSION_TAG, &[&bytes]))
    }
}

/// A node's signature on a message, with the key that proves its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeSignature {
    /// The signer's node key.
    pub signer: PublicKey,
    /// Its signature.
    pub signature: Signature,
}

impl NodeSignature {
    pub(crate) fn sign(node_key: &Secret<Scalar>, msg: &[u8]) -> Self {
        NodeSignature {
            signer: tbls::public_key::<MinPk>(node_key),
            signature: tbls::sign::<MinPk>(node_key, msg),
        }
    }

    pub(crate) fn verify(&self, msg: &[u8]) -> bool {
        tbls::verify::<MinPk>(&self.signer, msg, &self.signature).is_ok()
    }
}

/// Why a start is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// No candidates, or more than [`MAX_CANDIDATES`].
    #[error("bad candidate count {0}")]
    CandidateCount(usize),
    /// Candidates not strictly ascending by name (unsorted or repeated).
    #[error("candidates not strictly sorted by name")]
    Unsorted,
    /// A candidate's address is longer than [`MAX_ADDR_LEN`].
    #[error("candidate address too long")]
    AddressTooLong,
    /// A candidate's name is not under the start's prefix.
    #[error("candidate outside the prefix")]
    OutsidePrefix,
    /// The session id is not the hash of the other fields.
    #[error("session id does not match the start's fields")]
    SessionMismatch,
    /// Two candidates list the same DKG identity or encryption key.
    #[error("two candidates share a DKG key")]
    DuplicateDkgKey,
}

/// The elders' order to run a DKG among `candidates`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DkgStart {
    /// [`SessionId::new`] of the other fields.
    pub session: SessionId,
    /// The candidates, sorted by name; a candidate's share index is its position plus one.
    pub candidates: Vec<Peer>,
    /// Length of the section key chain the session starts on.
    pub generation: u64,
    /// The prefix of the section the new key will serve (the current one, or a child at a split).
    pub prefix: Prefix,
    /// How many failure agreements for `prefix` at `generation` the signing elders checked
    /// before this start: 0 for a first selection, one more than the failed session's for a
    /// restart.
    pub attempt: u32,
}

impl DkgStart {
    /// The first start for `candidates` (sorted here) at `generation` under `prefix`.
    pub fn new(prefix: Prefix, candidates: Vec<Peer>, generation: u64) -> Self {
        Self::at_attempt(prefix, candidates, generation, 0)
    }

    /// The start for `candidates` (sorted here) at `generation` under `prefix` after `attempt`
    /// failure agreements.
    pub fn at_attempt(
        prefix: Prefix,
        mut candidates: Vec<Peer>,
        generation: u64,
        attempt: u32,
    ) -> Self {
        candidates.sort_by_key(Peer::name);
        DkgStart {
            session: SessionId::new(&prefix, &candidates, generation, attempt),
            candidates,
            generation,
            prefix,
            attempt,
        }
    }

    /// Checks bounds, order, prefix and the session id.
    pub fn check(&self) -> Result<(), StartError> {
        let n = self.candidates.len();
        if n == 0 || n > MAX_CANDIDATES {
            return Err(StartError::CandidateCount(n));
        }
        if self.candidates.iter().any(|c| c.addr.len() > MAX_ADDR_LEN) {
            return Err(StartError::AddressTooLong);
        }
        let names: Vec<Name> = self.candidates.iter().map(Peer::name).collect();
        if !names.windows(2).all(|w| w[0] < w[1]) {
            return Err(StartError::Unsorted);
        }
        if !names.iter().all(|n| self.prefix.matches(n)) {
            return Err(StartError::OutsidePrefix);
        }
        // A candidate copying another's DKG keys would make the ceremony unbuildable.
        let identities: BTreeSet<_> = self.candidates.iter().map(|c| &c.dkg.identity).collect();
        let encryption: BTreeSet<_> = self
            .candidates
            .iter()
            .map(|c| c.dkg.encryption.to_bytes())
            .collect();
        if identities.len() != n || encryption.len() != n {
            return Err(StartError::DuplicateDkgKey);
        }
        if SessionId::new(
            &self.prefix,
            &self.candidates,
            self.generation,
            self.attempt,
        ) != self.session
        {
            return Err(StartError::SessionMismatch);
        }
        Ok(())
    }

    /// The names of the candidates, in order.
    pub fn names(&self) -> Vec<Name> {
        self.candidates.iter().map(Peer::name).collect()
    }

    /// The bytes elders sign: the session id binds every other field.
    pub fn signing_bytes(&self) -> [u8; 32] {
        tagged_hash(START_TAG, &[&self.session.0])
    }

    /// An elder's signature on this start.
    pub fn sign(&self, node_key: &Secret<Scalar>) -> NodeSignature {
        NodeSignature::sign(node_key, &self.signing_bytes())
    }

    /// Whether `sig` is a valid signature on this start (by whoever holds `sig.signer`).
    pub fn verify(&self, sig: &NodeSignature) -> bool {
        sig.verify(&self.signing_bytes())
    }
}

/// A candidate's observation that `session` failed because `non_participants` did not take part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureObservation {
    /// The failed session.
    pub session: SessionId,
    /// Who did not participate (non-empty, all candidates of the session).
    pub non_participants: BTreeSet<Name>,
}

impl FailureObservation {
    /// The bytes candidates sign: session id, then the sorted names.
    pub fn signing_bytes(&self) -> [u8; 32] {
        let mut names = Vec::with_capacity(32 * self.non_participants.len());
        for n in &self.non_participants {
            names.extend_from_slice(&n.0);
        }
        tagged_hash(FAILURE_TAG, &[&self.session.0, &names])
    }

    /// A candidate's signature on this observation.
    pub fn sign(&self, node_key: &Secret<Scalar>) -> NodeSignature {
        NodeSignature::sign(node_key, &self.signing_bytes())
    }

    /// Whether `sig` is a valid signature on this observation.
    pub fn verify(&self, sig: &NodeSignature) -> bool {
        sig.verify(&self.signing_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elders::tests::member;

    #[test]
    fn supermajority_is_strictly_more_than_two_thirds() {
        for n in 1..200usize {
            let s = supermajority(n);
            assert!(3 * s > 2 * n, "n = {n}");
            assert!(3 * (s - 1) <= 2 * n, "n = {n}");
        }
        assert_eq!(supermajority(7), 5);
    }

    #[test]
    fn session_id_binds_candidates_generation_and_prefix() {
        let peers: Vec<Peer> = (0..4).map(|i| member(i, 0).peer).collect();
        let a = DkgStart::new(Prefix::ROOT, peers.clone(), 3);
        // Order of input does not matter: the list is sorted first.
        let mut reversed = peers.clone();
        reversed.reverse();
        assert_eq!(DkgStart::new(Prefix::ROOT, reversed, 3).session, a.session);
        assert_ne!(
            DkgStart::new(Prefix::ROOT, peers.clone(), 4).session,
            a.session
        );
        assert_ne!(
            DkgStart::new(Prefix::ROOT, peers[..3].to_vec(), 3).session,
            a.session
        );
        // A restart of the same candidates is a different session.
        assert_ne!(
            DkgStart::at_attempt(Prefix::ROOT, peers.clone(), 3, 1).session,
            a.session
        );
        let mut moved = peers.clone();
        moved[0].addr.push('0');
        assert_ne!(DkgStart::new(Prefix::ROOT, moved, 3).session, a.session);
        a.check().unwrap();
    }

    /// Pins the canonical encoding: the session id (and so every signature on a start) must not
    /// change between releases for the same prefix, generation, attempt and candidates (each with its
    /// node key, DKG keys and address).
    #[test]
    fn session_id_golden_vector() {
        let peers: Vec<Peer> = (0..3).map(|i| member(i, 0).peer).collect();
        let start = DkgStart::new(Prefix::ROOT.child(1).unwrap(), peers, 5);
        assert_eq!(
            hex::encode(start.session.0),
            "7cd9c87c84b16c47bdb0cc5a57541d5a9274571955271a36e68faa143a173b5f"
        );
    }

    #[test]
    fn malformed_starts_are_rejected() {
        let peers: Vec<Peer> = (0..4).map(|i| member(i, 0).peer).collect();
        let good = DkgStart::new(Prefix::ROOT, peers, 1);
        let mut s = good.clone();
        s.candidates.swap(0, 1);
        assert_eq!(s.check(), Err(StartError::Unsorted));
        let mut s = good.clone();
        s.generation = 2;
        assert_eq!(s.check(), Err(StartError::SessionMismatch));
        let mut s = good.clone();
        s.attempt = 1;
        assert_eq!(s.check(), Err(StartError::SessionMismatch));
        let mut s = good.clone();
        s.candidates[0].addr = "x".repeat(MAX_ADDR_LEN + 1);
        assert_eq!(s.check(), Err(StartError::AddressTooLong));
        let mut s = good.clone();
        // The child prefix the first candidate is not under.
        s.prefix = Prefix::ROOT.child(1 - good.names()[0].bit(0)).unwrap();
        assert_eq!(s.check(), Err(StartError::OutsidePrefix));
        // A candidate listing another's DKG keys.
        let mut s = good.clone();
        s.candidates[1].dkg = s.candidates[0].dkg.clone();
        s.session = SessionId::new(&s.prefix, &s.candidates, s.generation, s.attempt);
        assert_eq!(s.check(), Err(StartError::DuplicateDkgKey));
        let mut s = good;
        s.candidates.clear();
        assert_eq!(s.check(), Err(StartError::CandidateCount(0)));
    }
}
