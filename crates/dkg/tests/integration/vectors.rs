//! Golden vectors of everything the DKG puts on the wire or the board: session ids, identity
//! keys and signatures, share ciphertexts, and every post and direct message of both protocol
//! variants, on both curves.
//!
//! Each object is built from fixed seeds, encoded, and compared with the committed files in
//! `tests/vectors/` (name -> hex, with a note of what the object is); a test fails naming every
//! vector whose bytes changed. Each vector is also decoded again, compared with the object, and
//! re-encoded to the same bytes. After an intentional change of encoding, rewrite the files with
//!
//! ```text
//! KQ_UPDATE_VECTORS=1 cargo test -p keyquorum-dkg --release --test integration vectors::
//! ```
//!
//! and commit them: the diff shows which encodings changed.

use std::sync::Arc;

use ff::Field;
use keyquorum_crypto::commit::EvalCommitment;
use keyquorum_crypto::encrypt::{self, Ciphertext, EncryptionSecretKey, ShareAad};
use keyquorum_crypto::index::IndexScheme;
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::verifiable_encrypt::{
    self, VerifiableCiphertext, VerifiableEncryptionSecretKey,
};
use keyquorum_crypto::{Bls12381G1, Curve, Secp256k1};
use keyquorum_dkg::complaint::messages::{
    CommitmentStatement, ComplaintPost, Deal as ComplaintDeal, DealComplaint, Disclosure, Dispute,
    FeldmanPost, HeardEntry, Justification, PAIR_LEN, Report, SignedComplaintPost, SignedPedersen,
    pair_aad, seal_deal, seal_pair,
};
use keyquorum_dkg::identity::{self, IdentityKeypair, IdentityPublicKey, Purpose};
use keyquorum_dkg::messages::{
    Ack, Contribution, Deal, Direct, Post, Publication, SignedPost, ack_payload,
};
use keyquorum_dkg::testing::golden::Vectors;
use keyquorum_dkg::{Ceremony, CeremonyConfig, Member, Params, Reshare, Variant};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
const N: usize = 4;

fn identity_key(i: u8) -> IdentityKeypair {
    IdentityKeypair::from_seed(&[0x10 + i; 32]).unwrap()
}

fn encryption_key(i: u8) -> EncryptionSecretKey {
    EncryptionSecretKey::from_seed(&[0x20 + i; 32])
}

fn verifiable_key(i: u8) -> VerifiableEncryptionSecretKey {
    let mut seed = [0u8; 32];
    seed[31] = 0x30 + i;
    VerifiableEncryptionSecretKey::from_bytes(&seed).unwrap()
}

fn participants(count: u8, offset: u8) -> Vec<Member> {
    (offset..offset + count)
        .map(|i| Member {
            identity: identity_key(i).public().clone(),
            encryption: encryption_key(i).public_key(),
        })
        .collect()
}

fn config<C: Curve>(variant: Variant, scheme: IndexScheme) -> CeremonyConfig<C> {
    CeremonyConfig {
        domain: b"keyquorum-vectors".to_vec(),
        epoch: 7,
        variant,
        params: Params::new(N, 2, 4).unwrap(),
        index_scheme: scheme,
        players: participants(N as u8, 0),
        verifiable_keys: match variant {
            Variant::Complaint => (0..N as u8)
                .map(|i| verifiable_key(i).public_key())
                .collect(),
            Variant::AckReveal => Vec::new(),
        },
        reshare: None,
    }
}

/// A reshare from a committee of three (members 4..7) to the four players.
fn reshare_config<C: Curve>() -> CeremonyConfig<C> {
    let mut rng = ChaCha20Rng::seed_from_u64(0x5e5);
    let old = Polynomial::<C::Scalar>::random(1, None, &mut rng);
    let xs = keyquorum_crypto::index::sequential::<C::Scalar>(3);
    let commitment = EvalCommitment::<C>::feldman(&old, &xs);
    let mut c = config::<C>(Variant::AckReveal, IndexScheme::Sequential);
    c.reshare = Some(Reshare {
        dealers: participants(3, 4),
        dealer_indices: xs,
        old_threshold: 2,
        group_key: *commitment.constant(),
        public_shares: commitment.points()[1..].to_vec(),
    });
    c
}

fn ceremony<C: Curve>(config: CeremonyConfig<C>) -> Arc<Ceremony<C>> {
    Ceremony::new(config).unwrap()
}

fn session_ids(v: &mut Vectors) {
    let cases: [(&str, &str, [u8; 32]); 6] = [
        (
            "ackreveal/bls12381g1/sequential",
            "fresh key, ack-or-reveal, BLS12-381 G1, n = 4, t = 2, k = 3, indices 1..n",
            *ceremony::<Bls12381G1>(config(Variant::AckReveal, IndexScheme::Sequential)).id(),
        ),
        (
            "ackreveal/secp256k1/sequential",
            "fresh key, ack-or-reveal, secp256k1, n = 4, t = 2, k = 3, indices 1..n",
            *ceremony::<Secp256k1>(config(Variant::AckReveal, IndexScheme::Sequential)).id(),
        ),
        (
            "ackreveal/bls12381g1/public-key-hash",
            "as ackreveal/bls12381g1/sequential with indices hashed from the identity keys",
            *ceremony::<Bls12381G1>(config(Variant::AckReveal, IndexScheme::PublicKeyHash)).id(),
        ),
        (
            "ackreveal/bls12381g1/roots-of-unity",
            "as ackreveal/bls12381g1/sequential with roots of unity as indices",
            *ceremony::<Bls12381G1>(config(Variant::AckReveal, IndexScheme::RootsOfUnity)).id(),
        ),
        (
            "complaint/secp256k1/sequential",
            "fresh key, complaint variant, secp256k1, n = 4, t = 2, k = 3, indices 1..n",
            *ceremony::<Secp256k1>(config(Variant::Complaint, IndexScheme::Sequential)).id(),
        ),
        (
            "ackreveal/bls12381g1/reshare",
            "reshare from three old members (threshold 2) to the four players, BLS12-381 G1",
            *ceremony::<Bls12381G1>(reshare_config()).id(),
        ),
    ];
    for (name, note, id) in cases {
        v.add(&format!("session-id/{name}"), note, &id);
    }
    let reshare = reshare_config::<Bls12381G1>().reshare.unwrap();
    v.add(
        "session-reshare-digest/bls12381g1",
        "the reshare part of session-id/ackreveal/bls12381g1/reshare",
        &keyquorum_dkg::ceremony::reshare_digest(&reshare),
    );
}

#[test]
fn session_ids_match_the_vectors() {
    let mut v = Vectors::new(DIR, "session_ids.json");
    session_ids(&mut v);
    v.check();
}

#[test]
fn identity_and_encryption_encodings_match_the_vectors() {
    let mut v = Vectors::new(DIR, "identity.json");
    let key = identity_key(0);
    v.add(
        "identity/public-key",
        "identity key of seed [0x10; 32]: compressed G2 (96 bytes)",
        key.public().as_bytes(),
    );
    v.add(
        "identity/proof-of-possession",
        "its proof of possession: compressed G1 (48 bytes)",
        &key.proof_of_possession().0,
    );
    for (name, purpose) in [
        ("post", Purpose::Post),
        ("ack", Purpose::Ack),
        ("message", Purpose::Message),
        ("record", Purpose::Record),
        ("transaction", Purpose::Transaction),
        ("endorsement", Purpose::Endorsement),
    ] {
        v.add(
            &format!("identity/signature/{name}"),
            "its signature on the payload \"keyquorum\" for this purpose (compressed G1)",
            &key.sign(purpose, b"keyquorum").0,
        );
    }
    let sigs: Vec<_> = (0..3)
        .map(|i| identity_key(i).sign(Purpose::Ack, b"keyquorum"))
        .collect();
    v.add(
        "identity/aggregate-signature",
        "aggregate of the Ack signatures of seeds 0x10, 0x11, 0x12 on \"keyquorum\"",
        &identity::aggregate(&sigs).unwrap().0,
    );
    let enc = encryption_key(0);
    v.add(
        "encryption/public-key",
        "X25519 share-encryption key of seed [0x20; 32]",
        enc.public_key().as_bytes(),
    );
    let aad = ShareAad {
        session_id: [0x5a; 32],
        dealer: 1,
        recipient: 2,
        commitment_hash: [0xc0; 32],
    };
    let mut rng = ChaCha20Rng::seed_from_u64(0xc1);
    let ct = encrypt::seal(&enc.public_key(), &aad, &[0x33; 32], &mut rng).to_bytes();
    v.add(
        "encryption/share-ciphertext",
        "HPKE ciphertext of a 32-byte share to that key (session [0x5a; 32], dealer 1, \
         recipient 2, commitment hash [0xc0; 32]; RNG ChaCha20 seed 0xc1)",
        &ct,
    );
    // Decoding gives the object back.
    assert_eq!(
        IdentityPublicKey::from_bytes(v.get("identity/public-key")).unwrap(),
        *key.public()
    );
    let decoded = Ciphertext::from_bytes(&ct, 32).unwrap();
    assert_eq!(decoded.to_bytes(), ct);
    assert_eq!(
        encrypt::open(&enc, &aad, &decoded).unwrap().expose(),
        &[0x33; 32]
    );
    v.check();
}

fn ackreveal_messages<C: Curve>(v: &mut Vectors) {
    let curve = C::NAME.to_ascii_lowercase();
    let ceremony = ceremony::<C>(config(Variant::AckReveal, IndexScheme::Sequential));
    let session = *ceremony.id();
    let xs = ceremony.player_indices();
    let mut rng = ChaCha20Rng::seed_from_u64(0xa1);
    let f = Polynomial::<C::Scalar>::random(1, None, &mut rng);
    let dealer = 1u32;
    let contribution = Contribution {
        session,
        dealer,
        commitment: EvalCommitment::<C>::feldman(&f, xs),
    };
    let hash = contribution.commitment_hash();
    let acks = [0u32, 2];
    let ack_sigs: Vec<_> = acks
        .iter()
        .map(|j| identity_key(*j as u8).sign(Purpose::Ack, &ack_payload(&session, dealer, &hash)))
        .collect();
    let posts = [
        (
            "contribution",
            "dealer 1's Feldman commitment in evaluation form (n + 1 = 5 uncompressed points)",
            Post::Contribution(contribution.clone()),
        ),
        (
            "publication/acks-and-reveal",
            "dealer 1's publication: players 0 and 2 acked (aggregate signature), player 3's \
             share revealed",
            Post::Publication(Publication {
                session,
                attempt: 0,
                dealer,
                commitment_hash: hash,
                acks: acks.to_vec(),
                ack_signature: identity::aggregate(&ack_sigs),
                reveals: vec![(3, f.evaluate(&xs[3]))],
            }),
        ),
        (
            "publication/reveals-only",
            "dealer 1's publication in attempt 2: no acks, players 0 and 1's shares revealed",
            Post::Publication(Publication {
                session,
                attempt: 2,
                dealer,
                commitment_hash: hash,
                acks: vec![],
                ack_signature: None,
                reveals: vec![(0, f.evaluate(&xs[0])), (1, f.evaluate(&xs[1]))],
            }),
        ),
    ];
    for (name, note, post) in posts {
        let bytes = post.encode();
        assert_eq!(Post::<C>::decode(&bytes, N).unwrap(), post);
        v.add(
            &format!("ackreveal/{curve}/post/{name}"),
            &format!("{note}; session ackreveal/{curve}/sequential"),
            &bytes,
        );
        let signed = SignedPost {
            signature: identity_key(dealer as u8).sign(Purpose::Post, &post.signed_payload()),
            post,
        };
        let signed_bytes = signed.encode();
        let decoded = SignedPost::<C>::decode(&signed_bytes, N).unwrap();
        assert_eq!(decoded, signed);
        assert_eq!(decoded.encode(), signed_bytes);
        v.add(
            &format!("ackreveal/{curve}/signed-post/{name}"),
            "the post above with its author's Post signature in front",
            &signed_bytes,
        );
    }
    let player = 2u32;
    let aad = ShareAad {
        session_id: session,
        dealer,
        recipient: player,
        commitment_hash: hash,
    };
    let mut seal_rng = ChaCha20Rng::seed_from_u64(0xa2);
    let share = C::encode_scalar(&f.evaluate(&xs[player as usize]));
    let ciphertext = encrypt::seal(
        &encryption_key(player as u8).public_key(),
        &aad,
        &share,
        &mut seal_rng,
    )
    .to_bytes();
    let directs = [
        (
            "deal",
            "dealer 1's encrypted share for player 2 (HPKE, RNG ChaCha20 seed 0xa2)",
            Direct::Deal(Deal {
                session,
                dealer,
                player,
                ciphertext,
            }),
        ),
        (
            "ack",
            "player 2's ack of dealer 1's share (Ack signature on the ack payload)",
            Direct::Ack(Ack {
                session,
                dealer,
                player,
                commitment_hash: hash,
                signature: ack_sigs[1],
            }),
        ),
    ];
    for (name, note, direct) in directs {
        let bytes = direct.encode();
        let decoded = Direct::decode(&bytes).unwrap();
        assert_eq!(decoded, direct);
        assert_eq!(decoded.encode(), bytes);
        v.add(&format!("ackreveal/{curve}/direct/{name}"), note, &bytes);
    }
}

#[test]
fn ackreveal_messages_match_the_vectors() {
    let mut v = Vectors::new(DIR, "ackreveal_messages.json");
    ackreveal_messages::<Bls12381G1>(&mut v);
    ackreveal_messages::<Secp256k1>(&mut v);
    v.check();
}

fn complaint_messages<C: Curve>(v: &mut Vectors) {
    let curve = C::NAME.to_ascii_lowercase();
    let ceremony = ceremony::<C>(config(Variant::Complaint, IndexScheme::Sequential));
    let session = *ceremony.id();
    let xs = ceremony.player_indices();
    let mut rng = ChaCha20Rng::seed_from_u64(0xb1);
    let f = Polynomial::<C::Scalar>::random(1, None, &mut rng);
    let b = Polynomial::<C::Scalar>::random(1, None, &mut rng);
    let dealer = 1u32;
    let dealer_key = identity_key(dealer as u8);
    let signed = SignedPedersen::new(
        &dealer_key,
        &session,
        dealer,
        EvalCommitment::pedersen(&f, &b, xs),
    );
    let player = 2u32;
    let mut seal_rng = ChaCha20Rng::seed_from_u64(0xb2);
    let deal = seal_deal(
        &dealer_key,
        &session,
        &signed,
        (player, &verifiable_key(player as u8).public_key()),
        &f.evaluate(&xs[player as usize]),
        &b.evaluate(&xs[player as usize]),
        &mut seal_rng,
    );
    let bytes = deal.encode();
    let decoded = ComplaintDeal::<C>::decode(&bytes, N).unwrap();
    assert_eq!(decoded, deal);
    assert_eq!(decoded.encode(), bytes);
    v.add(
        &format!("complaint/{curve}/direct/deal"),
        &format!(
            "dealer 1's deal to player 2: Pedersen commitment (5 uncompressed points), signed \
             statement, pair encrypted to player 2's verifiable-encryption key (secret scalar \
             0x32; RNG ChaCha20 seed 0xb2), dealer's signature on the ciphertext; session \
             complaint/{curve}/sequential"
        ),
        &bytes,
    );
    let statement = deal.statement();
    let bytes = statement.encode();
    assert_eq!(CommitmentStatement::decode(&bytes).unwrap(), statement);
    v.add(
        &format!("complaint/{curve}/statement"),
        "dealer 1's signed statement of its Pedersen commitment hash (an evidence item)",
        &bytes,
    );
    let pair = |j: u32| (j, f.evaluate(&xs[j as usize]), b.evaluate(&xs[j as usize]));
    let feldman = EvalCommitment::<C>::feldman(&f, xs);
    let aad = pair_aad(&session, dealer, player, &signed.hash);
    let reveal = verifiable_encrypt::reveal_key(
        &verifiable_key(player as u8),
        &aad,
        &VerifiableCiphertext::from_bytes(&deal.ciphertext, PAIR_LEN).unwrap(),
        &mut ChaCha20Rng::seed_from_u64(0xb3),
    )
    .unwrap();
    let resent = seal_pair(
        &session,
        &signed,
        (0, &verifiable_key(0).public_key()),
        &pair(0).1,
        &pair(0).2,
        &mut ChaCha20Rng::seed_from_u64(0xb4),
    );
    let posts = [
        (
            "report",
            "player 3 heard from dealer 1 and validated it",
            3u8,
            ComplaintPost::<C>::Report(Report {
                session,
                player: 3,
                heard: vec![HeardEntry {
                    dealer,
                    hash: signed.hash,
                    signature: signed.signature,
                }],
                valid: vec![1],
                complaints: vec![],
                conflicting: None,
            }),
        ),
        (
            "report/complaint",
            "player 2 heard from dealer 1 and complains about its deal: the deal's commitment, \
             ciphertext and signature, and player 2's key reveal (RNG ChaCha20 seed 0xb3)",
            2u8,
            ComplaintPost::<C>::Report(Report {
                session,
                player: 2,
                heard: vec![HeardEntry {
                    dealer,
                    hash: signed.hash,
                    signature: signed.signature,
                }],
                valid: vec![],
                complaints: vec![DealComplaint {
                    dealer,
                    commitment: signed.commitment.clone(),
                    ciphertext: deal.ciphertext.clone(),
                    signature: deal.signature,
                    reveal: Some(reveal),
                }],
                conflicting: None,
            }),
        ),
        (
            "report/empty",
            "player 0 heard from nobody",
            0,
            ComplaintPost::Report(Report {
                session,
                player: 0,
                heard: vec![],
                valid: vec![],
                complaints: vec![],
                conflicting: None,
            }),
        ),
        (
            "justification",
            "dealer 1 sends player 0, which missed its deal, the pair again encrypted \
             (RNG ChaCha20 seed 0xb4)",
            1,
            ComplaintPost::Justification(Justification {
                session,
                dealer,
                commitment: signed.commitment.clone(),
                deals: vec![(0, resent)],
            }),
        ),
        (
            "feldman",
            "dealer 1's Feldman commitment in evaluation form",
            1,
            ComplaintPost::Feldman(FeldmanPost {
                session,
                dealer,
                commitment: feldman,
            }),
        ),
        (
            "complaint",
            "player 2 discloses its pair from dealer 1 and dealer 1's Pedersen commitment",
            2,
            ComplaintPost::Complaint(Disclosure {
                session,
                player: 2,
                shares: vec![pair(2)],
                commitments: vec![(dealer, signed.commitment.clone())],
            }),
        ),
        (
            "dispute",
            "player 2 reveals the key of a pair dealer 1 sent again (the reveal of \
             report/complaint)",
            2,
            ComplaintPost::Dispute(Dispute {
                session,
                player: 2,
                reveals: vec![(dealer, reveal)],
            }),
        ),
        (
            "reconstruction",
            "player 2 discloses its pair from dealer 1 for reconstruction",
            2,
            ComplaintPost::Reconstruction(Disclosure {
                session,
                player: 2,
                shares: vec![(dealer, C::Scalar::ONE, C::Scalar::ZERO)],
                commitments: vec![],
            }),
        ),
    ];
    for (name, note, author, post) in posts {
        let bytes = post.encode();
        assert_eq!(ComplaintPost::<C>::decode(&bytes, N, N).unwrap(), post);
        v.add(&format!("complaint/{curve}/post/{name}"), note, &bytes);
        let signed_post = SignedComplaintPost::sign(&identity_key(author), post);
        let signed_bytes = signed_post.encode();
        let decoded = SignedComplaintPost::<C>::decode(&signed_bytes, N, N).unwrap();
        assert_eq!(decoded, signed_post);
        assert_eq!(decoded.encode(), signed_bytes);
        v.add(
            &format!("complaint/{curve}/signed-post/{name}"),
            "the post above with its author's Post signature in front",
            &signed_bytes,
        );
    }
}

#[test]
fn complaint_messages_match_the_vectors() {
    let mut v = Vectors::new(DIR, "complaint_messages.json");
    complaint_messages::<Bls12381G1>(&mut v);
    complaint_messages::<Secp256k1>(&mut v);
    v.check();
}
