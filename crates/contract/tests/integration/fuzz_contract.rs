//! Fuzz harness of the contract's transaction handler (`check_tx`, `apply_tx`, `end_block`).
//!
//! Each case starts from a contract snapshot taken from a simulated chain at every phase change
//! of its first view change (registry only, contribute, share, wait; the publish phase closes in
//! the block its last log lands, so no block ends inside it) and applies a sequence of hostile
//! transactions: random bytes; correctly signed transactions of every kind from registered,
//! funded and unknown keys with boundary amounts and right or wrong nonces; DKG posts of the
//! recorded ceremony with mutated bytes, signed again by their dealer; and any of these with
//! mutated transaction bytes. Properties: nothing panics; a transaction that decodes re-encodes
//! to its bytes; a refused transaction changes nothing (state and board); an accepted one
//! advances its sender's nonce by one and no other nonce; the supply always adds up; and block
//! ends keep the supply. `KQ_FUZZ_CASES=<n>` sets the number of cases (see `docs/testing.md`).

use crate::common;
use keyquorum_dkg::testing::fuzzing;

use std::sync::OnceLock;

use common::*;
use keyquorum_contract::hex::Bytes;
use keyquorum_contract::tx::{NetworkIdentity, SignerRole, TxBody};
use keyquorum_contract::{Contract, Event, Group, Transaction, ViewChangePhase};
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_dkg::identity::{Purpose, SIGNATURE_LEN};
use keyquorum_dkg::messages::{Post, SignedPost};
use proptest::prelude::*;

/// Registered nodes of the snapshots (identities `0..NODES`); identities up to `FUNDED` hold a
/// balance, the ones above hold nothing.
const NODES: usize = 5;
const KEYS: usize = FUNDED + 2;

struct Snapshots {
    contracts: Vec<Contract>,
    /// Signed DKG posts the ceremony put on chain.
    posts: Vec<Vec<u8>>,
}

fn snapshots() -> &'static Snapshots {
    static S: OnceLock<Snapshots> = OnceLock::new();
    S.get_or_init(|| {
        let mut sim = Sim::new(config(), &[100; NODES]);
        // A snapshot at each block where the phase changes, through the first view change.
        let mut contracts = vec![sim.contract.clone()];
        for _ in 0..40 {
            sim.step();
            let phase = sim.contract.state().phase();
            if contracts.last().is_some_and(|c| c.state().phase() != phase) {
                contracts.push(sim.contract.clone());
            }
            if sim.contract.state().current_view >= 1 && phase == ViewChangePhase::Idle {
                break;
            }
        }
        let posts = sim
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::PostAccepted { post, .. } => Some(post.0.clone()),
                _ => None,
            })
            .collect();
        Snapshots { contracts, posts }
    })
}

/// What a step sends.
#[derive(Debug, Clone)]
enum Body {
    Register,
    AddStake,
    Unbond,
    Deregister,
    Transfer(usize),
    ClaimUnbonded,
    UpdateNetwork(usize),
    DkgPost(usize, Vec<fuzzing::Mutation>),
    MagicBlockSignature(bool, u64),
}

#[derive(Debug, Clone)]
enum Step {
    /// Random bytes as a transaction.
    Random(Vec<u8>),
    /// A signed transaction from key `sender` with nonce `next + nonce_offset`, possibly with
    /// mutated bytes.
    Signed {
        sender: usize,
        body: Body,
        amount: u64,
        nonce_offset: i8,
        mutations: Vec<fuzzing::Mutation>,
    },
    /// End the block.
    EndBlock,
}

fn step() -> impl Strategy<Value = Step> {
    let amount = prop_oneof![
        Just(0u64),
        Just(1u64),
        Just(100u64),
        Just(FUND),
        Just(FUND + 1),
        Just(u64::MAX),
        any::<u64>()
    ];
    let body = prop_oneof![
        1 => Just(Body::Register),
        1 => Just(Body::AddStake),
        1 => Just(Body::Unbond),
        1 => Just(Body::Deregister),
        1 => (0..KEYS).prop_map(Body::Transfer),
        1 => Just(Body::ClaimUnbonded),
        1 => (0..KEYS).prop_map(Body::UpdateNetwork),
        3 => (any::<usize>(), proptest::collection::vec(fuzzing::mutation(), 0..3))
            .prop_map(|(i, m)| Body::DkgPost(i, m)),
        1 => (any::<bool>(), 0u64..4).prop_map(|(r, v)| Body::MagicBlockSignature(r, v)),
    ];
    let mutations = prop_oneof![
        3 => Just(Vec::new()),
        1 => proptest::collection::vec(fuzzing::mutation(), 1..4),
    ];
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..600).prop_map(Step::Random),
        8 => (0..KEYS, body, amount, -2i8..3, mutations).prop_map(
            |(sender, body, amount, nonce_offset, mutations)| Step::Signed {
                sender,
                body,
                amount,
                nonce_offset,
                mutations,
            }
        ),
        1 => Just(Step::EndBlock),
    ]
}

fn network_of(i: usize, amount: u64) -> NetworkIdentity {
    let mut n = network(i);
    // Occasionally a peer id that another node already uses.
    if amount.is_multiple_of(3) {
        n.peer_id = network(amount as usize % NODES).peer_id;
    }
    if amount.is_multiple_of(5) {
        n.peer_id = Bytes(Vec::new());
    }
    n
}

fn body_of(c: &Contract, sender: usize, body: &Body, amount: u64) -> TxBody {
    match body {
        Body::Register => match register_body(sender, amount) {
            TxBody::Register {
                pop,
                encryption_key,
                network,
                ..
            } => TxBody::Register {
                // Someone else's proof of possession now and then.
                pop: if amount.is_multiple_of(7) {
                    identity(sender + 1).proof_of_possession()
                } else {
                    pop
                },
                encryption_key,
                network,
                stake: amount,
            },
            other => other,
        },
        Body::AddStake => TxBody::AddStake { amount },
        Body::Unbond => TxBody::Unbond { amount },
        Body::Deregister => TxBody::Deregister,
        Body::Transfer(to) => TxBody::Transfer {
            to: identity(*to).public().clone(),
            amount,
        },
        Body::ClaimUnbonded => TxBody::ClaimUnbonded,
        Body::UpdateNetwork(i) => TxBody::UpdateNetwork {
            network: network_of(*i, amount),
        },
        Body::DkgPost(i, m) => {
            let posts = &snapshots().posts;
            let post = &posts[i % posts.len()];
            if m.is_empty() {
                return TxBody::DkgPost { post: post.clone() };
            }
            // Mutate the post and sign it again as its dealer, so that it reaches the board.
            let body = fuzzing::mutate(&post[SIGNATURE_LEN..], m);
            let post = match (c.ceremony(), Post::<Group>::decode(&body, 64)) {
                (Some(ceremony), Ok(p)) => {
                    let dealer = ceremony.dealers().get(p.dealer() as usize);
                    let key = (0..KEYS)
                        .map(identity)
                        .find(|k| dealer.is_some_and(|d| &d.identity == k.public()));
                    match key {
                        Some(k) => SignedPost {
                            signature: k.sign(Purpose::Post, &p.signed_payload()),
                            post: p,
                        }
                        .encode(),
                        None => body,
                    }
                }
                _ => body,
            };
            TxBody::DkgPost { post }
        }
        Body::MagicBlockSignature(old, index) => {
            let (view, block_hash) = c
                .state()
                .change
                .as_ref()
                .and_then(|ch| ch.magic.as_ref().map(|m| (ch.view, m.signed.hash.0)))
                .unwrap_or((amount, [amount as u8; 32]));
            TxBody::MagicBlockSignature {
                view,
                block_hash,
                role: if *old {
                    SignerRole::Old
                } else {
                    SignerRole::New
                },
                partial: tbls::partial_sign::<MinPk>(
                    &Secret::new(Scalar::from(amount | 1)),
                    Scalar::from(index + 1),
                    &block_hash,
                ),
            }
        }
    }
}

fn nonces(c: &Contract) -> Vec<u64> {
    (0..KEYS)
        .map(|i| c.next_nonce(identity(i).public()))
        .collect()
}

fn case(snapshot: usize, steps: &[Step]) -> Result<(), TestCaseError> {
    let contracts = &snapshots().contracts;
    let mut c = contracts[snapshot % contracts.len()].clone();
    let mut height = c.state().last_block.unwrap_or(0) + 1;
    for step in steps {
        let (bytes, sender) = match step {
            Step::EndBlock => {
                let _ = c.end_block(height);
                assert_supply(&c);
                height += 1;
                continue;
            }
            Step::Random(b) => (b.clone(), None),
            Step::Signed {
                sender,
                body,
                amount,
                nonce_offset,
                mutations,
            } => {
                let key = identity(*sender);
                let nonce = c
                    .next_nonce(key.public())
                    .saturating_add_signed(*nonce_offset as i64);
                let tx = Transaction::sign(CHAIN, &key, nonce, body_of(&c, *sender, body, *amount));
                (fuzzing::mutate(&tx.encode(), mutations), Some(*sender))
            }
        };
        if let Ok(tx) = Transaction::decode(&bytes, c.max_tx_len()) {
            prop_assert_eq!(tx.encode(), bytes.clone());
        }
        let _ = c.check_tx(&bytes);
        let before = c.clone();
        let nonces_before = nonces(&c);
        match c.apply_tx(&bytes, height) {
            Ok(_) => {
                let tx = Transaction::decode(&bytes, c.max_tx_len()).unwrap();
                let who = (0..KEYS).find(|i| identity(*i).public() == &tx.sender);
                let mut expected = nonces_before.clone();
                if let Some(i) = who {
                    expected[i] += 1;
                }
                prop_assert_eq!(nonces(&c), expected);
                prop_assert_eq!(c.next_nonce(&tx.sender), before.next_nonce(&tx.sender) + 1);
                if sender.is_none() {
                    // Random bytes are never a valid signed transaction.
                    prop_assert!(false, "random bytes were accepted");
                }
            }
            Err(r) => {
                prop_assert!(
                    c.state() == before.state(),
                    "refusal {r:?} changed the state"
                );
                prop_assert!(
                    c.board() == before.board(),
                    "refusal {r:?} changed the board"
                );
            }
        }
        assert_supply(&c);
    }
    Ok(())
}

proptest! {
    #![proptest_config(fuzzing::config(48))]

    #[test]
    fn transaction_handler(snapshot in any::<usize>(), steps in proptest::collection::vec(step(), 1..16)) {
        case(snapshot, &steps)?;
    }
}

#[test]
fn snapshots_cover_the_phases() {
    let s = snapshots();
    let phases: Vec<ViewChangePhase> = s.contracts.iter().map(|c| c.state().phase()).collect();
    for phase in [
        ViewChangePhase::Idle,
        ViewChangePhase::Contribute,
        ViewChangePhase::Share,
        ViewChangePhase::Wait,
    ] {
        assert!(
            phases.contains(&phase),
            "no snapshot in {phase:?}: {phases:?}"
        );
    }
    assert!(s.posts.len() >= NODES, "too few posts recorded");
}
