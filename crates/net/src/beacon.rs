//! Beacon partial signatures, and partial signatures on demand, between the members of a
//! view's committee.
//!
//! A partial travels as one request of the request-response protocol ([`crate::wire`]) with
//! kind [`BEACON_PARTIAL_KIND`], in the session [`beacon_session`] of the view, whose
//! allow-list the application sets to the committee's identities
//! ([`NetworkHandle::set_session_members`]). So the sender is authenticated as for DKG
//! messages: the receiver attributes the request to the identity whose signed address record
//! the peer presented on its Noise-authenticated connection, and a peer that is not in the
//! committee is refused before the application sees anything. Whether the partial verifies
//! under that member's public key share is the beacon engine's check.
//!
//! Partials are small and fixed-size, so a request of this kind larger than
//! [`MAX_BEACON_PAYLOAD`] is refused by the swarm task without reaching the application.
//! Sending is one attempt, no retries: while the round is open the node sends its partial
//! again on later ticks to the members that did not take it, which is the retry. The response
//! is the application's (the node answers a partial for the round it stored last with that
//! round, so a member one round behind catches up, and answers a partial of a session it runs
//! no beacon in so that the sender knows the partial was not taken).
//!
//! On-demand signatures use the same session with kind [`SIGN_REQUEST_KIND`]: a committee
//! member that was asked to sign sends the request (view, domain, message) to the others, and
//! each answers with its partial signature or a refusal. Requests are bounded by
//! [`MAX_SIGN_PAYLOAD`] on both sides, and answers by [`MAX_SIGN_ANSWER`] at the asking side;
//! the partial comes back on the connection to the member asked, so it is that member's.
//!
//! A node that lacks rounds (outside the committee, or back after being down) asks a node
//! that has them for a range with kind [`BEACON_SYNC_KIND`] in [`beacon_sync_session`], one
//! session for every chain (the request names the chain). Rounds are public, served over HTTP
//! to anyone, so the application sets no allow-list for that session and anyone may ask; what
//! protects the answering node is the size bound on the request ([`MAX_SYNC_REQUEST`], checked
//! by the swarm task), the bound on what it reads to answer, and the application's per-peer
//! rate limit (the node answers a request past it with a short refusal instead of rounds;
//! `from` and `from_identity` of the request name the peer). The asking node refuses an answer longer
//! than [`MAX_SYNC_ANSWER`] and trusts nothing in it: every round is verified before it is
//! stored.

use sha2::{Digest, Sha256};

use crate::error::NetError;
use crate::handle::NetworkHandle;
use crate::wire::SessionId;

/// Message kind of a beacon partial (kinds 1 and 2 are the DKG's direct messages and pulls).
pub const BEACON_PARTIAL_KIND: u8 = 3;
/// Largest beacon payload accepted: an 8-byte round, a 32-byte share index and a 96-byte
/// partial signature (G2) are 136 bytes; the bound leaves room for nothing else.
pub const MAX_BEACON_PAYLOAD: usize = 136;

/// Message kind of an on-demand signing request to a committee member.
pub const SIGN_REQUEST_KIND: u8 = 4;
/// Largest signing request: an 8-byte view, a domain length byte, a domain of at most 64
/// bytes and a message of at most 65536 bytes.
pub const MAX_SIGN_PAYLOAD: usize = 8 + 1 + 64 + 65536;
/// Largest answer to a signing request: a status byte, a 32-byte share index and a 96-byte
/// partial signature (G2).
pub const MAX_SIGN_ANSWER: usize = 1 + 32 + 96;

/// Message kind of a request for a range of a chain's rounds.
pub const BEACON_SYNC_KIND: u8 = 7;
/// Largest sync request: a 32-byte chain hash, an 8-byte first round and a 4-byte count.
pub const MAX_SYNC_REQUEST: usize = 32 + 8 + 4;
/// Largest sync answer accepted: a 2-byte count and 100 rounds of an 8-byte number and two
/// length-prefixed signatures of at most 96 bytes each.
pub const MAX_SYNC_ANSWER: usize = 2 + 100 * (8 + 1 + 96 + 1 + 96);

/// Domain tag of [`beacon_sync_session`].
const BEACON_SYNC_SESSION_TAG: &[u8] = b"keyquorum/net/beacon-sync-session/v1";

/// The session of sync requests: `sha256(tag)`, the same for every chain.
pub fn beacon_sync_session() -> SessionId {
    Sha256::digest(BEACON_SYNC_SESSION_TAG).into()
}

/// Domain tag of [`beacon_session`].
const BEACON_SESSION_TAG: &[u8] = b"keyquorum/net/beacon-session/v1";

/// The session of a view's beacon: `sha256(tag || magic block hash)`, so partials of one view
/// are never taken for another's.
pub fn beacon_session(magic_block_hash: &[u8; 32]) -> SessionId {
    let mut h = Sha256::new();
    h.update(BEACON_SESSION_TAG);
    h.update(magic_block_hash);
    h.finalize().into()
}

impl NetworkHandle {
    /// Sends one beacon partial to the committee member `identity`, one attempt; returns the
    /// member's response.
    pub async fn send_beacon_partial(
        &self,
        identity: Vec<u8>,
        session: SessionId,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, NetError> {
        if payload.len() > MAX_BEACON_PAYLOAD {
            return Err(NetError::MessageTooLarge {
                size: payload.len(),
                max: MAX_BEACON_PAYLOAD,
            });
        }
        self.send_single(identity, session, BEACON_PARTIAL_KIND, payload)
            .await
    }

    /// Asks the node `identity` for a range of rounds, one attempt; returns its answer,
    /// refused when longer than [`MAX_SYNC_ANSWER`].
    pub async fn send_beacon_sync(
        &self,
        identity: Vec<u8>,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, NetError> {
        if payload.len() > MAX_SYNC_REQUEST {
            return Err(NetError::MessageTooLarge {
                size: payload.len(),
                max: MAX_SYNC_REQUEST,
            });
        }
        let answer = self
            .send_single(identity, beacon_sync_session(), BEACON_SYNC_KIND, payload)
            .await?;
        if answer.len() > MAX_SYNC_ANSWER {
            return Err(NetError::Remote(crate::RemoteError::Malformed));
        }
        Ok(answer)
    }

    /// Sends one signing request to the committee member `identity`, one attempt; returns the
    /// member's answer, refused when longer than [`MAX_SIGN_ANSWER`].
    pub async fn send_sign_request(
        &self,
        identity: Vec<u8>,
        session: SessionId,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, NetError> {
        if payload.len() > MAX_SIGN_PAYLOAD {
            return Err(NetError::MessageTooLarge {
                size: payload.len(),
                max: MAX_SIGN_PAYLOAD,
            });
        }
        let answer = self
            .send_single(identity, session, SIGN_REQUEST_KIND, payload)
            .await?;
        if answer.len() > MAX_SIGN_ANSWER {
            return Err(NetError::Remote(crate::RemoteError::Malformed));
        }
        Ok(answer)
    }
}
