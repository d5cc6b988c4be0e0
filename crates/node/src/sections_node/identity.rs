//! A section node's identity on the network: its section node key (BLS, public key in G1),
//! which fixes its [`Name`], signs its libp2p address record, so that the identity the
//! transport attributes a request to is the sender's node key and its name follows from it.
//!
//! The key is derived from the node's master seed, so the keystore of `keyquorum keys new`
//! serves sections nodes too.

use blstrs::Scalar;
use keyquorum_crypto::hash::tagged_hash;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_crypto::{Bls12381G1, Curve};
use keyquorum_net::{IdentitySigner, IdentityVerifier};
use keyquorum_sections::Name;
use keyquorum_sections::keys::{decode_key, decode_signature, key_bytes};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zeroize::Zeroizing;

use crate::keys::NodeKeys;

/// Domain of address-record signatures, apart from every protocol signature of the node key.
const RECORD_TAG: &str = "keyquorum-sections/address-record/v1";

/// The section node key of the node holding `keys`.
pub fn section_node_key(keys: &NodeKeys) -> Secret<Scalar> {
    let seed = Zeroizing::new(tagged_hash(
        "keyquorum/node-key/sections/v1",
        &[keys.master()],
    ));
    Secret::new(Bls12381G1::random_scalar(&mut ChaCha20Rng::from_seed(
        *seed,
    )))
}

/// Signs the address record with the section node key.
pub struct SectionRecordSigner(pub Secret<Scalar>);

impl IdentitySigner for SectionRecordSigner {
    fn public_key(&self) -> Vec<u8> {
        key_bytes(&tbls::public_key::<MinPk>(&self.0)).to_vec()
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let digest = tagged_hash(RECORD_TAG, &[msg]);
        keyquorum_sections::keys::signature_bytes(&tbls::sign::<MinPk>(&self.0, &digest))
    }
}

/// Verifies a section node's address record; never panics on malformed input.
pub struct SectionRecordVerifier;

impl IdentityVerifier for SectionRecordVerifier {
    fn verify(&self, public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        let (Ok(key), Ok(sig)) = (decode_key(public_key), decode_signature(sig)) else {
            return false;
        };
        let digest = tagged_hash(RECORD_TAG, &[msg]);
        tbls::verify::<MinPk>(&key, &digest, &sig).is_ok()
    }
}

/// The name of the node whose identity the transport proved, if it is a valid node key.
pub fn name_of_identity(identity: &[u8]) -> Option<Name> {
    decode_key(identity).ok().map(|k| Name::of(&k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_verify_under_the_node_key_only_and_name_the_node() {
        let keys = NodeKeys::from_master(&[9; 32]);
        let signer = SectionRecordSigner(section_node_key(&keys));
        let sig = signer.sign(b"record");
        let v = SectionRecordVerifier;
        assert!(v.verify(&signer.public_key(), b"record", &sig));
        assert!(!v.verify(&signer.public_key(), b"other", &sig));
        assert!(!v.verify(&[0; 48], b"record", &sig));
        assert!(!v.verify(&signer.public_key(), b"record", &sig[..10]));
        let other = SectionRecordSigner(section_node_key(&NodeKeys::from_master(&[8; 32])));
        assert!(!v.verify(&other.public_key(), b"record", &sig));
        // A signature of the node key on the undomained message is not a record signature.
        let raw =
            keyquorum_sections::keys::signature_bytes(&tbls::sign::<MinPk>(&signer.0, b"record"));
        assert!(!v.verify(&signer.public_key(), b"record", &raw));
        let key = decode_key(&signer.public_key()).unwrap();
        assert_eq!(name_of_identity(&signer.public_key()), Some(Name::of(&key)));
        assert_eq!(name_of_identity(&[1; 48]), None);
    }
}
