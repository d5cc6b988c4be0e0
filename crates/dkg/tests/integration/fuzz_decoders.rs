//! Fuzz harnesses of every decoder that takes bytes from a peer or the chain: posts, signed
//! posts and direct messages of both variants, commitment statements, commitments, identity keys
//! and signatures, share-encryption keys, share ciphertexts and threshold-BLS values.
//!
//! Inputs are random bytes and mutations of the golden vectors (`tests/vectors`), on both
//! curves. Properties: no decoder panics, and whatever decodes re-encodes to exactly the input
//! (one encoding per value); commitments are re-encoded from their points, not from the bytes
//! they keep. Using a decoded value (verifying a signature, opening a ciphertext) does not
//! panic either. `KQ_FUZZ_CASES=<n>` sets the number of cases (see `docs/testing.md`).

use keyquorum_dkg::testing::fuzzing;

use keyquorum_crypto::commit::EvalCommitment;
use keyquorum_crypto::encrypt::{self, Ciphertext, EncryptionPublicKey, EncryptionSecretKey};
use keyquorum_crypto::tbls::{self, MinPk, MinSig, PartialSignature};
use keyquorum_crypto::verifiable_encrypt::{KeyReveal, VerifiableCiphertext};
use keyquorum_crypto::{Bls12381G1, Bls12381G2, Curve, Secp256k1, aggregate};
use keyquorum_dkg::complaint::messages::{
    CommitmentStatement, ComplaintPost, Deal as ComplaintDeal, PAIR_LEN, SignedComplaintPost,
};
use keyquorum_dkg::identity::{
    self, IdentityKeypair, IdentityPublicKey, IdentitySignature, Purpose, SIGNATURE_LEN,
};
use keyquorum_dkg::messages::{Direct, Post, SignedPost};
use proptest::prelude::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
/// The committee size of the vectors.
const N: usize = 4;

fn corpus(files: &[&str]) -> Vec<Vec<u8>> {
    files
        .iter()
        .flat_map(|f| fuzzing::vectors(&format!("{DIR}/{f}")).into_values())
        .collect()
}

/// A commitment re-encoded from its points equals the bytes it was decoded from.
fn assert_canonical_commitment<C: Curve>(c: &EvalCommitment<C>) {
    let fresh = EvalCommitment::<C>::from_points(c.points().to_vec()).unwrap();
    assert_eq!(
        fresh.encoded_uncompressed(),
        c.encoded_uncompressed(),
        "commitment bytes are not the canonical encoding of its points"
    );
}

fn check_ackreveal<C: Curve>(bytes: &[u8]) {
    let key = IdentityKeypair::from_seed(&[0x11; 32]).unwrap();
    if let Ok(p) = Post::<C>::decode(bytes, N) {
        assert_eq!(p.encode(), bytes);
        if let Post::Contribution(c) = &p {
            assert_canonical_commitment(&c.commitment);
            let _ = c.commitment_hash();
        }
    }
    if let Ok(s) = SignedPost::<C>::decode(bytes, N) {
        assert_eq!(s.encode(), bytes);
        let _ = key
            .public()
            .verify(Purpose::Post, &s.post.signed_payload(), &s.signature);
        if let Post::Publication(p) = &s.post
            && let Some(sig) = &p.ack_signature
        {
            let _ = identity::verify_aggregate(&[key.public()], Purpose::Ack, b"x", sig);
        }
    }
    if let Ok(d) = Direct::decode(bytes) {
        assert_eq!(d.encode(), bytes);
        if let Direct::Deal(deal) = &d {
            check_ciphertext(&deal.ciphertext);
        }
    }
}

fn check_complaint<C: Curve>(bytes: &[u8]) {
    let key = IdentityKeypair::from_seed(&[0x11; 32]).unwrap();
    if let Ok(p) = ComplaintPost::<C>::decode(bytes, N, N) {
        assert_eq!(p.encode(), bytes);
        match &p {
            ComplaintPost::Justification(j) => assert_canonical_commitment(&j.commitment),
            ComplaintPost::Feldman(f) => assert_canonical_commitment(&f.commitment),
            ComplaintPost::Complaint(d) | ComplaintPost::Reconstruction(d) => {
                for (_, c) in &d.commitments {
                    assert_canonical_commitment(c);
                }
            }
            ComplaintPost::Report(r) => {
                for s in r.statements() {
                    let _ = s.verify(key.public());
                }
                for c in &r.complaints {
                    assert_canonical_commitment(&c.commitment);
                    if let Some(k) = &c.reveal {
                        assert_eq!(KeyReveal::from_bytes(&k.to_bytes()).as_ref(), Ok(k));
                    }
                }
            }
            ComplaintPost::Dispute(d) => {
                for (_, k) in &d.reveals {
                    assert_eq!(KeyReveal::from_bytes(&k.to_bytes()).as_ref(), Ok(k));
                }
            }
        }
    }
    if let Ok(s) = SignedComplaintPost::<C>::decode(bytes, N, N) {
        assert_eq!(s.encode(), bytes);
        let _ = key
            .public()
            .verify(Purpose::Post, &s.post.encode(), &s.signature);
    }
    if let Ok(d) = ComplaintDeal::<C>::decode(bytes, N) {
        assert_eq!(d.encode(), bytes);
        assert_canonical_commitment(&d.commitment);
        let _ = d.statement().verify(key.public());
        if let Ok(ct) = VerifiableCiphertext::from_bytes(&d.ciphertext, PAIR_LEN) {
            assert_eq!(ct.to_bytes(), d.ciphertext);
        }
    }
    if let Ok(s) = CommitmentStatement::decode(bytes) {
        assert_eq!(s.encode(), bytes);
        let _ = s.verify(key.public());
    }
}

fn check_ciphertext(bytes: &[u8]) {
    if let Ok(ct) = Ciphertext::from_bytes(bytes, encrypt::MAX_SHARE_PLAINTEXT_LEN) {
        assert_eq!(ct.to_bytes(), bytes);
        let aad = encrypt::ShareAad {
            session_id: [0; 32],
            dealer: 0,
            recipient: 0,
            commitment_hash: [0; 32],
        };
        let _ = encrypt::open(&EncryptionSecretKey::from_seed(&[0x20; 32]), &aad, &ct);
    }
}

fn check_commitments<C: Curve>(bytes: &[u8]) {
    if let Ok(c) = EvalCommitment::<C>::decode_uncompressed(bytes) {
        assert_canonical_commitment(&c);
    }
}

/// Fixed-length values read from the front of the input (and from the whole input, which
/// checks the length bound).
fn check_keys_and_signatures(bytes: &[u8]) {
    let key = IdentityKeypair::from_seed(&[0x10; 32]).unwrap();
    for b in [
        bytes,
        &bytes[..bytes.len().min(96)],
        &bytes[..bytes.len().min(48)],
    ] {
        if let Ok(k) = IdentityPublicKey::from_bytes(b) {
            assert_eq!(k.to_bytes().as_slice(), b);
            let _ = k.verify(
                Purpose::Transaction,
                b"x",
                &key.sign(Purpose::Transaction, b"x"),
            );
        }
        if let Ok(sig) = IdentitySignature::from_slice(b) {
            assert_eq!(sig.0.as_slice(), b);
            let _ = key.public().verify(Purpose::Post, b"x", &sig);
            let _ = key.public().verify_pop(&sig);
            if let Some(agg) = identity::aggregate(&[sig, sig]) {
                let _ = identity::verify_aggregate(&[key.public()], Purpose::Ack, b"x", &agg);
            }
        }
        if let Ok(k) = EncryptionPublicKey::from_bytes(&b[..b.len().min(32)]) {
            assert_eq!(k.as_bytes().as_slice(), &b[..32]);
        }
        check_ciphertext(b);
        if let Ok(p) = PartialSignature::<MinPk>::from_bytes(b) {
            assert_eq!(p.to_bytes(), b);
        }
        if let Ok(p) = PartialSignature::<MinSig>::from_bytes(b) {
            assert_eq!(p.to_bytes(), b);
        }
        if let Ok(k) = tbls::decode_public_key::<MinPk>(b) {
            assert_eq!(Bls12381G1::point_bytes(&k), b);
        }
        if let Ok(s) = tbls::decode_signature::<MinPk>(b) {
            assert_eq!(Bls12381G2::point_bytes(&s), b);
        }
        if b.len() >= SIGNATURE_LEN {
            let (pk, pop) = b.split_at(b.len() - 96.min(b.len()));
            let _ = aggregate::PopVerifiedKey::<MinPk>::from_bytes(pk, pop);
        }
    }
}

proptest! {
    #![proptest_config(fuzzing::config(512))]

    #[test]
    fn ackreveal_decoders(bytes in fuzzing::input(corpus(&["ackreveal_messages.json"]), 1200)) {
        check_ackreveal::<Bls12381G1>(&bytes);
        check_ackreveal::<Secp256k1>(&bytes);
    }

    #[test]
    fn complaint_decoders(bytes in fuzzing::input(corpus(&["complaint_messages.json"]), 1200)) {
        check_complaint::<Bls12381G1>(&bytes);
        check_complaint::<Secp256k1>(&bytes);
    }

    /// Commitments alone: the runs of uncompressed points inside the messages.
    #[test]
    fn commitment_decoder(bytes in fuzzing::input(commitments(), 400)) {
        check_commitments::<Bls12381G1>(&bytes);
        check_commitments::<Secp256k1>(&bytes);
    }

    #[test]
    fn key_and_signature_decoders(bytes in fuzzing::input(corpus(&["identity.json"]), 200)) {
        check_keys_and_signatures(&bytes);
    }
}

/// The commitments of the contribution vectors (skipping the post header and point count).
fn commitments() -> Vec<Vec<u8>> {
    let v = fuzzing::vectors(&format!("{DIR}/ackreveal_messages.json"));
    ["bls12381g1", "secp256k1"]
        .iter()
        .map(|c| v[&format!("ackreveal/{c}/post/contribution")][1 + 32 + 4 + 4..].to_vec())
        .collect()
}
