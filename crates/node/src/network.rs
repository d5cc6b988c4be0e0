//! Glue between the node and `keyquorum-net`: the validator identity (BLS, `Purpose::Record`)
//! that signs and verifies address records, and the network configuration.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use keyquorum_dkg::identity::{IdentityKeypair, IdentityPublicKey, IdentitySignature, Purpose};
use keyquorum_net::{IdentitySigner, IdentityVerifier, Multiaddr, NetConfig, RetryPolicy};
use sha2::{Digest, Sha256};

use crate::keys::NodeKeys;

/// Signs address records with the node's identity key.
pub struct RecordSigner(pub IdentityKeypair);

impl IdentitySigner for RecordSigner {
    fn public_key(&self) -> Vec<u8> {
        self.0.public().to_bytes().to_vec()
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.0.sign(Purpose::Record, msg).0.to_vec()
    }
}

/// Verifies another validator's record signature; never panics on malformed input.
pub fn verify_record(public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let (Ok(pk), Ok(sig)) = (
        IdentityPublicKey::from_bytes(public_key),
        IdentitySignature::from_slice(sig),
    ) else {
        return false;
    };
    pk.verify(Purpose::Record, msg, &sig)
}

/// Most remembered verification results (about 40 bytes each).
const VERIFIED_CACHE: usize = 16_384;

/// [`verify_record`] with a memory of results.
///
/// The same address record reaches a node many times: from several peers in every DHT lookup,
/// in DHT stores, and attached to the first request of each peer. Each check is a BLS pairing
/// plus a subgroup check of the key (about 1.5 ms), done on the network task, which serves
/// every request meanwhile; with a few dozen peers looking each other up at the start of a
/// ceremony that alone delayed deals by seconds. The result is a pure function of the three
/// inputs, so it is remembered under their hash.
#[derive(Default)]
pub struct CachedVerifier {
    seen: Mutex<HashMap<[u8; 32], bool>>,
}

impl IdentityVerifier for CachedVerifier {
    fn verify(&self, public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        let mut h = Sha256::new();
        for part in [public_key, msg, sig] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        let key: [u8; 32] = h.finalize().into();
        if let Some(v) = self.seen.lock().ok().and_then(|m| m.get(&key).copied()) {
            return v;
        }
        let v = verify_record(public_key, msg, sig);
        if let Ok(mut m) = self.seen.lock() {
            if m.len() >= VERIFIED_CACHE {
                m.clear();
            }
            m.insert(key, v);
        }
        v
    }
}

/// The network configuration of a node.
pub fn net_config(keys: &NodeKeys, listen: Multiaddr, bootstrap: Vec<Multiaddr>) -> NetConfig {
    let mut c = NetConfig::new(
        keys.p2p().clone(),
        RecordSigner(keys.identity().clone()),
        CachedVerifier::default(),
        listen,
    );
    c.bootstrap = bootstrap;
    // The driver retries deliveries for as long as the ceremony needs them; each network-level
    // send only gets a short second chance.
    c.retry = RetryPolicy {
        attempts: 2,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(500),
    };
    c.request_timeout = Duration::from_secs(5);
    c.dht_query_timeout = Duration::from_secs(5);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_signatures() {
        let keys = NodeKeys::from_master(&[5; 32]);
        let s = RecordSigner(keys.identity().clone());
        let sig = s.sign(b"record");
        assert!(verify_record(&s.public_key(), b"record", &sig));
        assert!(!verify_record(&s.public_key(), b"other", &sig));
        assert!(!verify_record(&[0; 96], b"record", &sig));
        assert!(!verify_record(&s.public_key(), b"record", &sig[..10]));
        // A record signature is not a post or ack signature.
        let post = keys.identity().sign(Purpose::Post, b"record");
        assert!(!verify_record(&s.public_key(), b"record", &post.0));
        // The cache answers like the function, for good and bad inputs, every time.
        let c = CachedVerifier::default();
        for _ in 0..2 {
            assert!(c.verify(&s.public_key(), b"record", &sig));
            assert!(!c.verify(&s.public_key(), b"other", &sig));
            assert!(!c.verify(&s.public_key(), b"record", &post.0));
        }
    }
}
