//! FROST signing rounds between the members of a view's signing key (the node's `POST /sign`
//! with a Schnorr scheme): one request of kind [`FROST_KIND`] per round and member, in the
//! session of the view's signing key, whose allow-list is that key's committee.
//!
//! Requests are bounded by [`MAX_FROST_PAYLOAD`] on both sides (a round-two request carries the
//! message and one commitment pair per signer), answers by [`MAX_FROST_ANSWER`] at the asking
//! side.

use crate::error::NetError;
use crate::handle::NetworkHandle;
use crate::wire::SessionId;

/// Message kind of a FROST round request (commit or sign).
pub const FROST_KIND: u8 = 9;
/// Largest FROST request: a tag, the view, and a signing request with a message of at most
/// 64 KiB and one 98-byte commitment entry for each of up to 1024 signers.
pub const MAX_FROST_PAYLOAD: usize = 1 + 8 + 1 + 32 + 1 + 4 + 65536 + 4 + 1024 * 98;
/// Largest FROST answer: a status byte and a commitment package (the larger package).
pub const MAX_FROST_ANSWER: usize = 1 + 1 + 32 + 32 + 66;

impl NetworkHandle {
    /// Sends one FROST round request to the member `identity`, one attempt (a round is not
    /// repeated blindly: a commitment request draws fresh nonces); returns its answer, refused
    /// when longer than [`MAX_FROST_ANSWER`].
    pub async fn send_frost(
        &self,
        identity: Vec<u8>,
        session: SessionId,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, NetError> {
        if payload.len() > MAX_FROST_PAYLOAD {
            return Err(NetError::MessageTooLarge {
                size: payload.len(),
                max: MAX_FROST_PAYLOAD,
            });
        }
        let answer = self
            .send_single(identity, session, FROST_KIND, payload)
            .await?;
        if answer.len() > MAX_FROST_ANSWER {
            return Err(NetError::Remote(crate::RemoteError::Malformed));
        }
        Ok(answer)
    }
}
