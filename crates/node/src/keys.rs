//! A node's keys, all derived from one 32-byte master seed held in the encrypted keystore.
//!
//! One secret in the keystore means one passphrase-protected file to back up, and every key the
//! node uses follows from it by a domain-separated hash, so no two purposes ever share a key:
//! - the identity key (BLS, what the chain and the DKG know the node by),
//! - the share-encryption key (X25519, what dealers encrypt shares to),
//! - the verifiable-encryption key (secp256k1, what complaint-variant dealers encrypt shares to,
//!   so that a complaint about a share can be checked by anyone),
//! - the libp2p transport key (Ed25519, the peer id; stable across restarts so the address
//!   hint on chain stays right),
//! - the storage key (ChaCha20-Poly1305, for ceremony seeds and secret shares at rest).
//!
//! Nothing here implements `Display`, and `Debug` prints public parts only.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use keyquorum_crypto::encrypt::EncryptionSecretKey;
use keyquorum_crypto::hash::tagged_hash;
use keyquorum_crypto::verifiable_encrypt::{
    VerifiableEncryptionPublicKey, VerifiableEncryptionSecretKey,
};
use keyquorum_dkg::identity::IdentityKeypair;
use keyquorum_net::Keypair;
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

/// Length of the master seed.
pub const MASTER_SEED_LEN: usize = 32;

/// Errors of sealed storage values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// Too short, tampered with, sealed under another key or another label.
    #[error("sealed value does not decrypt (wrong key, label or corrupted)")]
    Open,
}

/// Every key of a node. Secret parts are wiped on drop.
pub struct NodeKeys {
    identity: IdentityKeypair,
    encryption: EncryptionSecretKey,
    verifiable: VerifiableEncryptionSecretKey,
    p2p: Keypair,
    storage: Zeroizing<[u8; 32]>,
    master: Zeroizing<[u8; MASTER_SEED_LEN]>,
}

impl fmt::Debug for NodeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKeys")
            .field("identity", self.identity.public())
            .field("peer_id", &self.p2p.public().to_peer_id())
            .field("secrets", &format_args!("<redacted>"))
            .finish()
    }
}

fn derive(master: &[u8; MASTER_SEED_LEN], purpose: &str) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(tagged_hash(
        &format!("keyquorum/node-key/{purpose}/v1"),
        &[master],
    ))
}

/// The verifiable-encryption key of a master seed: the derived 32 bytes as a secp256k1 scalar,
/// hashed again in the (about `2^-128` likely) case that they are not a valid non-zero one.
fn verifiable_key(master: &[u8; MASTER_SEED_LEN]) -> VerifiableEncryptionSecretKey {
    let mut candidate = derive(master, "verifiable-encryption");
    loop {
        if let Ok(k) = VerifiableEncryptionSecretKey::from_bytes(&candidate) {
            return k;
        }
        candidate = Zeroizing::new(tagged_hash(
            "keyquorum/node-key/verifiable-encryption/retry/v1",
            &[candidate.as_slice()],
        ));
    }
}

impl NodeKeys {
    /// Keys from a master seed.
    pub fn from_master(master: &[u8; MASTER_SEED_LEN]) -> Self {
        let identity = IdentityKeypair::from_seed(derive(master, "identity").as_slice())
            .expect("a 32-byte seed is enough for BLS KeyGen");
        let encryption = EncryptionSecretKey::from_seed(&derive(master, "encryption"));
        let verifiable = verifiable_key(master);
        let mut p2p_seed = derive(master, "libp2p");
        let p2p = Keypair::ed25519_from_bytes(p2p_seed.as_mut_slice())
            .expect("any 32 bytes are an ed25519 secret key");
        NodeKeys {
            identity,
            encryption,
            verifiable,
            p2p,
            storage: derive(master, "storage"),
            master: Zeroizing::new(*master),
        }
    }

    /// Fresh keys from the operating system's randomness.
    pub fn generate() -> Self {
        let mut master = Zeroizing::new([0u8; MASTER_SEED_LEN]);
        OsRng.fill_bytes(master.as_mut());
        Self::from_master(&master)
    }

    /// The master seed, for the keystore only.
    pub(crate) fn master(&self) -> &[u8; MASTER_SEED_LEN] {
        &self.master
    }

    /// The identity key pair.
    pub fn identity(&self) -> &IdentityKeypair {
        &self.identity
    }

    /// The share-encryption secret key.
    pub fn encryption(&self) -> &EncryptionSecretKey {
        &self.encryption
    }

    /// A fresh copy of the share-encryption key (the state machine takes ownership of one).
    pub fn encryption_copy(&self) -> EncryptionSecretKey {
        EncryptionSecretKey::from_bytes(&self.encryption.to_bytes())
    }

    /// The verifiable-encryption public key (registered with `SetVerifiableKey`).
    pub fn verifiable_public(&self) -> VerifiableEncryptionPublicKey {
        self.verifiable.public_key()
    }

    /// A fresh copy of the verifiable-encryption key (the complaint-variant state machine takes
    /// ownership of one).
    pub fn verifiable_copy(&self) -> VerifiableEncryptionSecretKey {
        VerifiableEncryptionSecretKey::from_bytes(&self.verifiable.to_bytes())
            .expect("a valid key re-encodes to a valid key")
    }

    /// The libp2p transport key.
    pub fn p2p(&self) -> &Keypair {
        &self.p2p
    }

    /// The libp2p peer id.
    pub fn peer_id(&self) -> keyquorum_net::libp2p::PeerId {
        self.p2p.public().to_peer_id()
    }

    /// Seals `plaintext` for storage under the storage key; `label` names the slot and must be
    /// given again to open it (a value copied to another slot does not open).
    pub fn seal(&self, label: &str, plaintext: &[u8]) -> Vec<u8> {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(self.storage.as_slice()));
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: label.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 encryption of a short value cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a value sealed by [`NodeKeys::seal`] under the same label.
    pub fn open(&self, label: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < 12 + 16 {
            return Err(SealError::Open);
        }
        let cipher = ChaCha20Poly1305::new(Key::from_slice(self.storage.as_slice()));
        cipher
            .decrypt(
                Nonce::from_slice(&sealed[..12]),
                Payload {
                    msg: &sealed[12..],
                    aad: label.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_deterministic_and_separated() {
        let a = NodeKeys::from_master(&[7; 32]);
        let b = NodeKeys::from_master(&[7; 32]);
        let c = NodeKeys::from_master(&[8; 32]);
        assert_eq!(a.identity().public(), b.identity().public());
        assert_eq!(a.peer_id(), b.peer_id());
        assert_eq!(
            a.encryption().public_key().to_bytes(),
            b.encryption().public_key().to_bytes()
        );
        assert_ne!(a.identity().public(), c.identity().public());
        assert_ne!(a.peer_id(), c.peer_id());
    }

    #[test]
    fn sealing_binds_key_and_label() {
        let a = NodeKeys::from_master(&[1; 32]);
        let b = NodeKeys::from_master(&[2; 32]);
        let sealed = a.seal("share/1", b"secret share");
        assert_eq!(
            a.open("share/1", &sealed).unwrap().as_slice(),
            b"secret share"
        );
        assert_eq!(a.open("share/2", &sealed), Err(SealError::Open));
        assert_eq!(b.open("share/1", &sealed), Err(SealError::Open));
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert_eq!(a.open("share/1", &bad), Err(SealError::Open));
        assert_eq!(a.open("share/1", &sealed[..10]), Err(SealError::Open));
    }

    #[test]
    fn debug_is_redacted() {
        let k = NodeKeys::from_master(&[3; 32]);
        let s = format!("{k:?}");
        assert!(s.contains("redacted"));
        assert!(!s.contains(&hex::encode([3u8; 32])));
        assert!(!s.contains(&hex::encode(k.storage.as_slice())));
    }
}
