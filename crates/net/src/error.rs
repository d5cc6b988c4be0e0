//! Error types.
//!
//! Errors are split by who can act on them: [`NetError`] is what callers of
//! the handle see, [`RecordError`] explains why an address record was
//! discarded, and [`RemoteError`] is the status a remote node put in its
//! response. [`NetError::is_retryable`] encodes the retry policy in one place
//! so that the send loop does not have to guess which failures are transient.

use libp2p::PeerId;

/// Errors returned by [`crate::NetworkHandle`] and [`crate::Network::new`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The configuration is unusable (bad bootstrap address, zero limits, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Building the libp2p transport or behaviour failed.
    #[error("transport setup failed: {0}")]
    Transport(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    /// No valid address record was found for the identity (and no hint
    /// allowed reaching it).
    #[error("no valid address record found for the identity")]
    NotFound,
    /// The DHT rejected or could not complete an operation.
    #[error("dht operation failed: {0}")]
    Dht(String),
    /// The encoded message exceeds the configured limit; nothing was sent.
    #[error("message of {size} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge { size: usize, max: usize },
    /// Dialing the peer failed.
    #[error("cannot reach {target}: {reason}")]
    Dial { target: String, reason: String },
    /// No response arrived within the per-request timeout.
    #[error("request timed out")]
    Timeout,
    /// The connection closed before the response arrived.
    #[error("connection to {peer} closed before a response arrived")]
    ConnectionClosed { peer: PeerId },
    /// The remote does not speak the keyquorum DKG protocol.
    #[error("peer {peer} does not support the keyquorum dkg protocol")]
    UnsupportedProtocol { peer: PeerId },
    /// I/O failure on the request stream (includes a remote resetting the
    /// stream because our request exceeded its limit).
    #[error("stream error with {peer}: {reason}")]
    Stream { peer: PeerId, reason: String },
    /// The remote answered with an error status.
    #[error("remote refused the request: {0}")]
    Remote(RemoteError),
    /// The target is this node itself.
    #[error("refusing to send a request to the local node")]
    SelfTarget,
    /// All attempts failed; `last` is the error of the final attempt.
    #[error("all {attempts} attempts failed; last error: {last}")]
    RetriesExhausted { attempts: u32, last: Box<NetError> },
    /// The network task has stopped.
    #[error("network task is not running")]
    Shutdown,
}

impl NetError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            NetError::NotFound
            | NetError::Dht(_)
            | NetError::Dial { .. }
            | NetError::Timeout
            | NetError::ConnectionClosed { .. }
            | NetError::Stream { .. } => true,
            NetError::Remote(e) => e.is_retryable(),
            _ => false,
        }
    }
}

/// Error status carried in a response from the remote node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// Our verified identity is not in the session's allow-list.
    #[error("not a member of the session")]
    NotMember,
    /// The remote only accepts sessions it has an allow-list for.
    #[error("unknown session")]
    UnknownSession,
    /// The remote's event queue was full.
    #[error("remote is busy")]
    Busy,
    /// The remote application dropped the request without replying.
    #[error("remote application did not reply")]
    NoReply,
    /// The remote application's reply exceeded the response size limit.
    #[error("remote reply exceeds the response size limit")]
    ResponseTooLarge,
    /// The remote could not parse our request.
    #[error("malformed request")]
    Malformed,
    /// A status code this version does not know.
    #[error("unknown status code {0}")]
    Unknown(u8),
}

impl RemoteError {
    /// Only congestion is transient; every other status would repeat.
    pub fn is_retryable(&self) -> bool {
        matches!(self, RemoteError::Busy)
    }
}

/// Why an address record was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    #[error("record encoding is malformed: {0}")]
    Malformed(&'static str),
    #[error("record exceeds the maximum encoded size")]
    TooLarge,
    #[error("record is stored under a key that does not match its identity")]
    KeyMismatch,
    #[error("record belongs to a different identity")]
    IdentityMismatch,
    #[error("record names a different peer id")]
    PeerMismatch,
    #[error("record signature is invalid")]
    BadSignature,
}
