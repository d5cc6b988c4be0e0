//! Ed25519 identity scheme for tests and local experiments.
//!
//! keyquorum signs address records with the validator's BLS key; this module
//! offers a self-contained stand-in (libp2p's ed25519 keys) so that the
//! network layer can be exercised with real signature checks and without the
//! crypto crate.

use libp2p::identity::ed25519;

use crate::identity::IdentitySigner;

/// An ed25519 identity key, independent of any libp2p network key.
#[derive(Clone)]
pub struct TestIdentity {
    keypair: ed25519::Keypair,
}

impl TestIdentity {
    pub fn generate() -> Self {
        TestIdentity {
            keypair: ed25519::Keypair::generate(),
        }
    }
}

impl std::fmt::Debug for TestIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIdentity")
            .field("public", &self.keypair.public().to_bytes())
            .finish_non_exhaustive()
    }
}

impl IdentitySigner for TestIdentity {
    fn public_key(&self) -> Vec<u8> {
        self.keypair.public().to_bytes().to_vec()
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.keypair.sign(msg)
    }
}

/// Verifier matching [`TestIdentity`]; usable wherever an
/// [`crate::IdentityVerifier`] is expected.
pub fn verify_test_signature(public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    match ed25519::PublicKey::try_from_bytes(public_key) {
        Ok(pk) => pk.verify(msg, sig),
        Err(_) => false,
    }
}
