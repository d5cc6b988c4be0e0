//! Golden vectors of what goes to the chain and comes back from it: every transaction body, the
//! signed transaction with its signing payload and hash, and the magic block with its hash, its
//! two signing messages and its JSON form.
//!
//! Each object is built from fixed seeds, encoded, and compared with the committed files in
//! `tests/vectors/` (name -> hex, with a note of what the object is); a test fails naming every
//! vector whose bytes changed. Every transaction vector is also decoded again, compared with the
//! object, and re-encoded to the same bytes. After an intentional change of encoding, rewrite
//! the files with
//!
//! ```text
//! KQ_UPDATE_VECTORS=1 cargo test -p keyquorum-contract --release --test integration vectors::
//! ```
//!
//! and commit them: the diff shows which encodings changed.

use keyquorum_contract::config::{BeaconConfig, BeaconScheme, KeyMode};
use keyquorum_contract::hex::{Bytes, Hex};
use keyquorum_contract::magic::{MagicBlock, MagicBlockMember, SignedMagicBlock};
use keyquorum_contract::tx::{
    MAX_TX_LEN, NetworkIdentity, SignerRole, Transaction, TxBody, signing_payload, tx_hash,
};
use keyquorum_crypto::encrypt::EncryptionSecretKey;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_crypto::{Bls12381G1, Bls12381G2, Curve};
use keyquorum_dkg::identity::{IdentityKeypair, Purpose};
use keyquorum_dkg::testing::golden::Vectors;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
const CHAIN: &str = "keyquorum-vectors";

type Scalar = <Bls12381G1 as Curve>::Scalar;

fn identity_key(i: u8) -> IdentityKeypair {
    IdentityKeypair::from_seed(&[0x10 + i; 32]).unwrap()
}

fn encryption_key(i: u8) -> EncryptionSecretKey {
    EncryptionSecretKey::from_seed(&[0x20 + i; 32])
}

fn network(i: u8) -> NetworkIdentity {
    NetworkIdentity {
        peer_id: Bytes(vec![0x00, 0x24, 0x08, 0x01, 0x12, 0x20, i]),
        addresses: vec![
            format!("/ip4/10.0.0.{i}/tcp/4001"),
            format!("/dns4/node{i}.example/udp/4001/quic-v1"),
        ],
    }
}

fn bodies() -> Vec<(&'static str, &'static str, TxBody)> {
    let key = identity_key(0);
    let partial = tbls::partial_sign::<MinPk>(
        &Secret::new(Scalar::from(0x5eed_u64)),
        Scalar::from(3u64),
        b"keyquorum",
    );
    vec![
        (
            "register",
            "register seed 0x10's key with its proof of possession, encryption key of seed \
             0x20, two addresses, stake 1000",
            TxBody::Register {
                pop: key.proof_of_possession(),
                encryption_key: encryption_key(0).public_key(),
                network: network(1),
                stake: 1000,
            },
        ),
        (
            "add-stake",
            "add 250 to the stake",
            TxBody::AddStake { amount: 250 },
        ),
        ("unbond", "unbond 100", TxBody::Unbond { amount: 100 }),
        ("deregister", "leave the registry", TxBody::Deregister),
        (
            "transfer",
            "transfer 42 to seed 0x11's key",
            TxBody::Transfer {
                to: identity_key(1).public().clone(),
                amount: 42,
            },
        ),
        (
            "claim-unbonded",
            "claim the unbonded amounts that are due",
            TxBody::ClaimUnbonded,
        ),
        (
            "update-network",
            "replace the network identity",
            TxBody::UpdateNetwork {
                network: network(2),
            },
        ),
        (
            "dkg-post",
            "a DKG post (opaque bytes here; the post encodings have their own vectors)",
            TxBody::DkgPost {
                post: (0u8..=40).collect(),
            },
        ),
        (
            "magic-block-signature",
            "a handover partial signature (index 3) on the magic block of view 5",
            TxBody::MagicBlockSignature {
                view: 5,
                block_hash: [0x4b; 32],
                role: SignerRole::Old,
                partial,
            },
        ),
        (
            "cancel-leave",
            "cancel a scheduled deregistration",
            TxBody::CancelLeave,
        ),
    ]
}

#[test]
fn transactions_match_the_vectors() {
    let mut v = Vectors::new(DIR, "transactions.json");
    let key = identity_key(0);
    for (i, (name, note, body)) in bodies().into_iter().enumerate() {
        let nonce = 1000 + i as u64;
        v.add(&format!("tx-body/{name}"), note, &body.encode());
        v.add(
            &format!("tx-signing-payload/{name}"),
            &format!(
                "what the sender signs (Transaction purpose) for this body: chain id \
                 \"{CHAIN}\", sender, nonce {nonce}, body"
            ),
            &signing_payload(CHAIN, key.public(), nonce, &body),
        );
        let tx = Transaction::sign(CHAIN, &key, nonce, body);
        let bytes = tx.encode();
        let decoded = Transaction::decode(&bytes, MAX_TX_LEN).unwrap();
        assert_eq!(decoded, tx);
        assert_eq!(decoded.encode(), bytes);
        assert!(decoded.verify_signature(CHAIN));
        v.add(
            &format!("tx/{name}"),
            &format!("the body above signed by seed 0x10's key with nonce {nonce}"),
            &bytes,
        );
        v.add(
            &format!("tx-hash/{name}"),
            "SHA-256 of the transaction above",
            &tx_hash(&bytes),
        );
    }
    v.check();
}

fn magic_block() -> (MagicBlock, [Secret<Scalar>; 2]) {
    let group_secret = Secret::new(Scalar::from(0xa11ce_u64));
    let previous_secret = Secret::new(Scalar::from(0xb0b_u64));
    let point48 = |s: &Secret<Scalar>| {
        Hex::from_slice(&Bls12381G1::point_bytes(&tbls::public_key::<MinPk>(s))).unwrap()
    };
    let members = [1u8, 2, 4]
        .iter()
        .map(|&i| {
            let net = network(i);
            MagicBlockMember {
                index: i as u64,
                identity: Hex(identity_key(i).public().to_bytes()),
                encryption_key: Hex(encryption_key(i).public_key().to_bytes()),
                peer_id: net.peer_id,
                addresses: net.addresses,
                public_share: point48(&Secret::new(Scalar::from(100 + i as u64))),
            }
        })
        .collect();
    let block = MagicBlock {
        chain_id: CHAIN.into(),
        view: 5,
        ceremony_number: 1,
        key_mode: KeyMode::Reshare,
        session_id: Hex([0x5e; 32]),
        n: 4,
        t: 2,
        k: 3,
        group_key: point48(&group_secret),
        members,
        previous_hash: Hex([0x9b; 32]),
        first_round: 1234,
        beacon: BeaconConfig {
            scheme: BeaconScheme::PedersenBlsUnchained,
            period_secs: 2,
        },
    };
    (block, [group_secret, previous_secret])
}

#[test]
fn magic_block_matches_the_vectors() {
    let mut v = Vectors::new(DIR, "magic_block.json");
    let (block, [group, previous]) = magic_block();
    let hash = block.hash();
    v.add(
        "magic-block",
        "view 5, session 1, a reshare with n = 4, t = 2, k = 3 and members 1, 2, 4 (three \
         members with two addresses each)",
        &block.encode(),
    );
    v.add("magic-block-hash", "SHA-256 of the encoding above", &hash);
    for (name, role) in [
        ("new-committee", SignerRole::New),
        ("handover", SignerRole::Old),
    ] {
        v.add(
            &format!("magic-block-signing-message/{name}"),
            "what the committee in this role signs for the block above",
            &block.signing_message(role),
        );
    }
    let sig = |s: &Secret<Scalar>, role| {
        let point = tbls::sign::<MinPk>(s, &block.signing_message(role));
        Hex::from_slice(&Bls12381G2::point_bytes(&point)).unwrap()
    };
    let signed = SignedMagicBlock {
        block: block.clone(),
        hash: Hex(hash),
        signature: Some(sig(&group, SignerRole::New)),
        previous_signature: Some(sig(&previous, SignerRole::Old)),
    };
    let json = serde_json::to_vec(&signed).unwrap();
    assert_eq!(
        serde_json::from_slice::<SignedMagicBlock>(&json).unwrap(),
        signed
    );
    v.add(
        "signed-magic-block-json",
        "the block above with both signatures, as JSON (how the chain serves it)",
        &json,
    );
    v.check();
}

#[test]
fn identity_purposes_stay_apart_in_transactions() {
    // A transaction signature is a Transaction-purpose signature on the signing payload: the
    // vectors pin the payload, this pins the purpose.
    let key = identity_key(0);
    let body = TxBody::Deregister;
    let tx = Transaction::sign(CHAIN, &key, 7, body.clone());
    let payload = signing_payload(CHAIN, key.public(), 7, &body);
    assert_eq!(tx.signature, key.sign(Purpose::Transaction, &payload));
    assert_ne!(tx.signature, key.sign(Purpose::Post, &payload));
}
