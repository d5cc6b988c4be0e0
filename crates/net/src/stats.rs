//! Counters of a running network, shared by the handle and the swarm task.
//!
//! They exist to make the cost of peer resolution observable: a DHT record lookup is a
//! Kademlia walk over several remote nodes, while a peer bound from chain data is reached
//! with a single dial, so the number of walks is what tells the two apart.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of [`crate::NetworkHandle::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetStats {
    /// DHT record lookups started (Kademlia walks; concurrent lookups of the same identity
    /// share one walk and count once).
    pub dht_lookups: u64,
    /// Requests to a bound identity whose dial failed, after which the identity was looked
    /// up in the DHT instead.
    pub binding_fallbacks: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    dht_lookups: AtomicU64,
    binding_fallbacks: AtomicU64,
}

impl Counters {
    pub(crate) fn dht_lookup(&self) {
        self.dht_lookups.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn binding_fallback(&self) {
        self.binding_fallbacks.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> NetStats {
        NetStats {
            dht_lookups: self.dht_lookups.load(Ordering::Relaxed),
            binding_fallbacks: self.binding_fallbacks.load(Ordering::Relaxed),
        }
    }
}
