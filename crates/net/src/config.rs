//! Network configuration.
//!
//! Two keys are involved on purpose: `keypair` is the libp2p transport key
//! (peer id, Noise handshake) and may be rotated freely, while `signer` is the
//! validator identity that the chain knows. The address record is what ties
//! the two together.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use libp2p::Multiaddr;
use libp2p::identity::Keypair;

use crate::identity::{IdentitySigner, IdentityVerifier, SharedSigner, SharedVerifier};

/// Default limit on an encoded request (4 MiB).
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 4 * 1024 * 1024;
/// Default limit on an encoded response (64 KiB).
pub const DEFAULT_MAX_RESPONSE_SIZE: usize = 64 * 1024;

/// How [`crate::NetworkHandle::send`] retries transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, including the first one (at least 1 is used).
    pub attempts: u32,
    /// Delay before the second attempt; doubled for each further attempt.
    pub base_delay: Duration,
    /// Cap on a single delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Delay after failed attempt number `attempt` (1-based), before jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// Configuration of a [`crate::Network`].
#[derive(Clone)]
pub struct NetConfig {
    /// libp2p transport key; determines the local peer id.
    pub keypair: Keypair,
    /// Validator identity used to sign the local address record.
    pub signer: SharedSigner,
    /// Verifies other validators' identity signatures.
    pub verifier: SharedVerifier,
    /// Address to listen on, e.g. `/ip4/0.0.0.0/tcp/9000`.
    pub listen: Multiaddr,
    /// Addresses to advertise in addition to the listen addresses
    /// (e.g. a public address behind NAT).
    pub external_addresses: Vec<Multiaddr>,
    /// Bootstrap nodes; each address must end in `/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// Largest encoded request accepted or sent.
    pub max_request_size: usize,
    /// Largest encoded response accepted or sent.
    pub max_response_size: usize,
    /// Time allowed for one request/response exchange.
    pub request_timeout: Duration,
    /// Retry behaviour of `send`.
    pub retry: RetryPolicy,
    /// Time allowed for one DHT query (publish or lookup).
    pub dht_query_timeout: Duration,
    /// How long an unused connection is kept open.
    pub idle_connection_timeout: Duration,
    /// Capacity of the [`crate::NetEvent`] channel; when it is full, incoming
    /// requests are answered with a "busy" status instead of queuing.
    pub event_buffer: usize,
    /// Reject requests for sessions without an allow-list (default: deliver
    /// them, with `from_identity` for the application to judge).
    pub reject_unlisted_sessions: bool,
}

impl NetConfig {
    /// Configuration with defaults for everything but the keys.
    pub fn new(
        keypair: Keypair,
        signer: impl IdentitySigner,
        verifier: impl IdentityVerifier,
        listen: Multiaddr,
    ) -> Self {
        NetConfig {
            keypair,
            signer: Arc::new(signer),
            verifier: Arc::new(verifier),
            listen,
            external_addresses: Vec::new(),
            bootstrap: Vec::new(),
            max_request_size: DEFAULT_MAX_REQUEST_SIZE,
            max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
            request_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            dht_query_timeout: Duration::from_secs(10),
            idle_connection_timeout: Duration::from_secs(60),
            event_buffer: 1024,
            reject_unlisted_sessions: false,
        }
    }
}

impl fmt::Debug for NetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetConfig")
            .field("peer_id", &self.keypair.public().to_peer_id())
            .field("listen", &self.listen)
            .field("external_addresses", &self.external_addresses)
            .field("bootstrap", &self.bootstrap)
            .field("max_request_size", &self.max_request_size)
            .field("max_response_size", &self.max_response_size)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("dht_query_timeout", &self.dht_query_timeout)
            .field("idle_connection_timeout", &self.idle_connection_timeout)
            .field("event_buffer", &self.event_buffer)
            .field("reject_unlisted_sessions", &self.reject_unlisted_sessions)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        assert_eq!(p.delay(1), Duration::from_millis(100));
        assert_eq!(p.delay(2), Duration::from_millis(200));
        assert_eq!(p.delay(4), Duration::from_millis(800));
        assert_eq!(p.delay(5), Duration::from_millis(1000));
        assert_eq!(p.delay(100), Duration::from_millis(1000));
    }
}
