//! keyquorum-net: the I/O layer that carries DKG messages between validators.
//!
//! The crate deliberately knows nothing about DKG: a message is an opaque
//! payload tagged with a 32-byte session id and a one-byte kind, and every
//! message is a request that gets a response. That single primitive covers
//! both push (dealer sends a share, the response is an acknowledgement) and
//! pull (a player asks a dealer for its share, the response carries it), and
//! gives the sender an end-to-end delivery signal to retry on.
//!
//! Layers, bottom up:
//! - transport: TCP + Noise + Yamux via rust-libp2p; Noise authenticates the
//!   remote peer id, which everything above relies on;
//! - discovery: validators are known on chain by an identity key, not a peer
//!   id. When the application holds a peer id the identity itself named (its
//!   signed registration on chain), it binds the two
//!   ([`NetworkHandle::bind_identity`]) and requests dial that peer at the
//!   given addresses directly, Noise refusing any other key. Otherwise, and
//!   whenever that dial fails, the identity is looked up in a private Kademlia
//!   DHT where each node publishes a signed [`AddressRecord`] keyed by a hash
//!   of its identity key (the approach of step 2 of Chainlink's DKG design);
//!   Identify feeds listen addresses into Kademlia;
//! - messaging: a request-response protocol with a length-prefixed codec and
//!   hard size limits ([`wire`]), per-session allow-lists of identities;
//! - beacon partials and on-demand signing requests ([`beacon`]): the same requests, in a
//!   session per view and with size bounds of their own; requests for a range of beacon
//!   rounds, in one open session;
//! - section messages and joins ([`sections`]): the same requests, with size bounds of their
//!   own;
//! - API: [`Network::new`] spawns a task that owns the swarm and returns a
//!   [`NetworkHandle`] plus a channel of [`NetEvent`]s.
//!
//! The identity signature scheme is injected ([`IdentitySigner`],
//! [`IdentityVerifier`]), so this crate does not depend on the BLS code.
//! Payload bytes are never logged.

pub mod beacon;
mod config;
mod error;
pub mod frost;
mod handle;
mod identity;
mod record;
pub mod sections;
mod stats;
mod task;
pub mod testing;
pub mod wire;

use libp2p::PeerId;
use tokio::sync::oneshot;

pub use beacon::{
    BEACON_PARTIAL_KIND, BEACON_SYNC_KIND, MAX_BEACON_PAYLOAD, MAX_SIGN_ANSWER, MAX_SIGN_PAYLOAD,
    MAX_SYNC_ANSWER, MAX_SYNC_REQUEST, SIGN_REQUEST_KIND, beacon_session, beacon_sync_session,
};
pub use config::{DEFAULT_MAX_REQUEST_SIZE, DEFAULT_MAX_RESPONSE_SIZE, NetConfig, RetryPolicy};
pub use error::{NetError, RecordError, RemoteError};
pub use frost::{FROST_KIND, MAX_FROST_ANSWER, MAX_FROST_PAYLOAD};
pub use handle::{Network, NetworkHandle};
pub use identity::{IdentitySigner, IdentityVerifier, SharedSigner, SharedVerifier};
pub use record::{AddressRecord, DHT_KEY_DOMAIN, MAX_ADDRESSES, MAX_RECORD_BYTES, dht_key};
pub use sections::{
    MAX_SECTIONS_JOIN_PAYLOAD, MAX_SECTIONS_PAYLOAD, SECTIONS_JOIN_KIND, SECTIONS_MESSAGE_KIND,
};
pub use stats::NetStats;
pub use task::KAD_PROTOCOL;
pub use wire::{DKG_PROTOCOL, SessionId};

/// Re-exported so callers use the same `libp2p` types (keys, addresses).
pub use libp2p;
pub use libp2p::{Multiaddr, identity::Keypair};

/// Whom to send to: a validator identity (resolved through its address
/// record) or a libp2p peer directly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Identity(Vec<u8>),
    Peer(PeerId),
}

impl From<PeerId> for Target {
    fn from(p: PeerId) -> Self {
        Target::Peer(p)
    }
}

impl From<Vec<u8>> for Target {
    fn from(id: Vec<u8>) -> Self {
        Target::Identity(id)
    }
}

impl From<&[u8]> for Target {
    fn from(id: &[u8]) -> Self {
        Target::Identity(id.to_vec())
    }
}

/// Events delivered to the application.
#[non_exhaustive]
pub enum NetEvent {
    /// An admitted request. Send the response payload through `reply`;
    /// dropping it answers the peer with [`RemoteError::NoReply`].
    Request {
        from: PeerId,
        /// Identity proven by the record the peer attached, if any.
        from_identity: Option<Vec<u8>>,
        session: SessionId,
        kind: u8,
        payload: Vec<u8>,
        reply: oneshot::Sender<Vec<u8>>,
    },
    /// A request refused by the session allow-list (already answered).
    Rejected {
        from: PeerId,
        from_identity: Option<Vec<u8>>,
        session: SessionId,
        kind: u8,
        reason: RemoteError,
    },
}

impl std::fmt::Debug for NetEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetEvent::Request {
                from,
                from_identity,
                session,
                kind,
                payload,
                ..
            } => f
                .debug_struct("Request")
                .field("from", from)
                .field("identified", &from_identity.is_some())
                .field("session", &wire::short_hex(session))
                .field("kind", kind)
                .field("payload_len", &payload.len())
                .finish_non_exhaustive(),
            NetEvent::Rejected {
                from,
                from_identity,
                session,
                kind,
                reason,
            } => f
                .debug_struct("Rejected")
                .field("from", from)
                .field("identified", &from_identity.is_some())
                .field("session", &wire::short_hex(session))
                .field("kind", kind)
                .field("reason", reason)
                .finish(),
        }
    }
}
