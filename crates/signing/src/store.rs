//! Where a signer's nonces live between its two rounds.
//!
//! A FROST nonce pair must sign at most once: two signature shares with the same nonces under
//! different binding factors or challenges reveal the signing share (RFC 9591 section 7.3). The
//! store is what makes that hold across crashes and restarts, so its contract is strict:
//! - [`NonceStore::persist`] returns only once the nonces are durable, and refuses a session it
//!   has ever held nonces for, so one session never has two nonce pairs;
//! - [`NonceStore::take`] removes the nonces, durably, before returning them: a share is computed
//!   only from nonces that can no longer be taken again.
//!
//! A signer that crashes between `take` and sending its share simply cannot sign in that
//! session; that is the price of never reusing a nonce.

use std::collections::{HashMap, HashSet};

use keyquorum_crypto::secret::SecretBytes;
use thiserror::Error;

use crate::messages::SessionId;

/// Errors of the in-memory store.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NonceStoreError {
    /// Nonces were already stored (and perhaps used) for this session.
    #[error("nonces already exist or were used for this session")]
    SessionReused,
}

/// Durable storage of nonces, one pair per session, each taken at most once.
pub trait NonceStore {
    /// Why the store failed.
    type Error: std::error::Error + 'static;

    /// Stores the encoded nonces of `session`, durably, before returning `Ok`. Must refuse a
    /// session that holds or ever held nonces.
    fn persist(&mut self, session: &SessionId, nonces: &SecretBytes) -> Result<(), Self::Error>;

    /// Removes the nonces of `session`, durably, and returns them; `None` if there are none
    /// (never stored, or already taken).
    fn take(&mut self, session: &SessionId) -> Result<Option<SecretBytes>, Self::Error>;
}

/// An in-memory store (tests, and signers that accept losing pending sessions on restart).
#[derive(Debug, Default)]
pub struct MemoryNonceStore {
    pending: HashMap<SessionId, SecretBytes>,
    seen: HashSet<SessionId>,
}

impl MemoryNonceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of sessions whose nonces are stored and not yet taken.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

impl NonceStore for MemoryNonceStore {
    type Error = NonceStoreError;

    fn persist(&mut self, session: &SessionId, nonces: &SecretBytes) -> Result<(), Self::Error> {
        if !self.seen.insert(*session) {
            return Err(NonceStoreError::SessionReused);
        }
        self.pending.insert(*session, nonces.clone());
        Ok(())
    }

    fn take(&mut self, session: &SessionId) -> Result<Option<SecretBytes>, Self::Error> {
        Ok(self.pending.remove(session))
    }
}
