//! Messages between the nodes of a section (`keyquorum-sections`), with no chain.
//!
//! A section message travels as one request of the request-response protocol ([`crate::wire`])
//! of kind [`SECTIONS_MESSAGE_KIND`]; its session is the section DKG session it belongs to (all
//! zeros for a new SAP, which belongs to the section). The receiver attributes it to the
//! identity whose signed address record the peer presented on its Noise-authenticated
//! connection, as for DKG messages; the application checks that identity against the sender
//! the message claims. Joining uses [`SECTIONS_JOIN_KIND`]: asking a member for the section's
//! authority and key chain, and asking an elder to be admitted.
//!
//! Both kinds are bounded here, before the application sees anything:
//! [`MAX_SECTIONS_PAYLOAD`] and [`MAX_SECTIONS_JOIN_PAYLOAD`].

use crate::error::NetError;
use crate::handle::NetworkHandle;
use crate::wire::SessionId;

/// Message kind of a section protocol message.
pub const SECTIONS_MESSAGE_KIND: u8 = 5;
/// Message kind of a join request (section query or admission).
pub const SECTIONS_JOIN_KIND: u8 = 6;
/// Largest section message: the biggest honest one is a DKG vote carrying every post of a
/// round, a few kilobytes per candidate for sections of up to seven elders; the bound leaves
/// two orders of magnitude of room and still keeps one request from a faulty peer small.
pub const MAX_SECTIONS_PAYLOAD: usize = 1 << 20;
/// Largest join request: a tag, the section parameters and one peer (node key, DKG keys and
/// an address of at most 255 bytes, under 610 bytes).
pub const MAX_SECTIONS_JOIN_PAYLOAD: usize = 1024;

impl NetworkHandle {
    /// Sends one section message to the node whose identity is `identity`, with the retries of
    /// [`NetworkHandle::send`].
    pub async fn send_section_message(
        &self,
        identity: Vec<u8>,
        session: SessionId,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, NetError> {
        if payload.len() > MAX_SECTIONS_PAYLOAD {
            return Err(NetError::MessageTooLarge {
                size: payload.len(),
                max: MAX_SECTIONS_PAYLOAD,
            });
        }
        self.send(identity, session, SECTIONS_MESSAGE_KIND, payload)
            .await
    }

    /// Sends one join request to `to` (a bootstrap peer or an elder's identity).
    pub async fn send_section_join(
        &self,
        to: impl Into<crate::Target>,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, NetError> {
        if payload.len() > MAX_SECTIONS_JOIN_PAYLOAD {
            return Err(NetError::MessageTooLarge {
                size: payload.len(),
                max: MAX_SECTIONS_JOIN_PAYLOAD,
            });
        }
        self.send(to, [0; 32], SECTIONS_JOIN_KIND, payload).await
    }
}
