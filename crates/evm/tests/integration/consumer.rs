//! `contracts/src/BeaconConsumer.sol` in revm (Prague): keyquorum's beacon rounds, as its own
//! threshold round engine produces them, verify on chain and record `sha256(signature)`;
//! drand's published mainnet (`pedersen-bls-chained`) and testnet (`pedersen-bls-unchained`)
//! rounds verify under drand's keys; signatures in Ethereum's proof-of-possession ciphersuite,
//! made with blst over keyquorum's signed bytes, verify for their domain and message only.
//! Every tampering, malformed input and invalid point is refused with its typed error.
//!
//! `cargo test -p keyquorum-evm --release --test integration consumer::gas_per_call -- --nocapture` prints the gas
//! table of docs/performance.md.

use crate::common;

use std::collections::{BTreeMap, VecDeque};

use alloy_primitives::{B256, Bytes};
use alloy_sol_types::SolConstructor;
use blstrs::{G1Affine, G2Affine, Scalar};
use common::*;
use keyquorum_beacon::scheme::round_message;
use keyquorum_beacon::{
    Action, ChainInfo, ChainLink, DrandScheme, Engine, EngineConfig, Member, MemberId,
    PedersenBlsChained, PedersenBlsUnchained, Rejected, Round, RoundStore, SchemeId, SigningShare,
    ViewGroup, verify_round,
};
use keyquorum_crypto::Bls12381G1;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls;
use keyquorum_evm::{BeaconConsumer, g1_point, g2_point};

const POP_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

// ---------------------------------------------------------------------------------------------
// Deployment and calls

fn deploy(chain: &mut Chain, key: &[u8], point: &[u8], chained: bool, seed: [u8; 32]) -> Receipt {
    let mut code = BeaconConsumer::BYTECODE.to_vec();
    code.extend(
        BeaconConsumer::constructorCall {
            groupKey_: Bytes::copy_from_slice(key),
            groupKeyPoint_: Bytes::copy_from_slice(point),
            chained_: chained,
            genesisSeed_: B256::from(seed),
        }
        .abi_encode(),
    );
    chain.deploy(code)
}

/// A chain with a consumer of `key` deployed.
fn consumer(key: &[u8; 48], chained: bool, seed: [u8; 32]) -> Chain {
    let mut chain = Chain::new(config(4), &[]);
    deploy(&mut chain, key, &g1_point(key).unwrap(), chained, seed).ok();
    chain
}

fn bytes(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

/// A `verifyRound` call with the signature's EIP-2537 form computed from its compressed form.
fn round_call(
    round: u64,
    previous: &[u8],
    signature: &[u8; 96],
) -> BeaconConsumer::verifyRoundCall {
    round_call_with_point(round, previous, signature, &g2_point(signature).unwrap())
}

fn round_call_with_point(
    round: u64,
    previous: &[u8],
    signature: &[u8],
    point: &[u8],
) -> BeaconConsumer::verifyRoundCall {
    BeaconConsumer::verifyRoundCall {
        round,
        previousSignature: bytes(previous),
        signature: bytes(signature),
        signaturePoint: bytes(point),
    }
}

fn sig96(round: &Round) -> [u8; 96] {
    round.signature.as_slice().try_into().unwrap()
}

fn previous(round: &Round) -> Vec<u8> {
    round.previous_signature.clone().unwrap_or_default()
}

/// Submits `round` and checks that the contract records exactly the randomness keyquorum's
/// (and drand's) verifier computes.
fn submit(chain: &mut Chain, round: &Round, expected: [u8; 32]) -> u64 {
    let r = chain
        .send(
            address_of(1),
            0,
            round_call(round.round, &previous(round), &sig96(round)),
        )
        .ok();
    let events = r.events::<BeaconConsumer::RoundVerified>();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].round, round.round);
    assert_eq!(events[0].randomness.0, expected);
    let recorded = chain.read(BeaconConsumer::randomnessOfCall(round.round));
    assert_eq!(recorded.0, expected);
    r.gas_used
}

// ---------------------------------------------------------------------------------------------
// Points in the precompile encoding, including invalid ones

/// An uncompressed ZCash G1 point (96 bytes) in the precompile encoding, unchecked.
fn raw_g1(raw: &[u8; 96]) -> [u8; 128] {
    let mut out = [0u8; 128];
    out[16..64].copy_from_slice(&raw[..48]);
    out[80..128].copy_from_slice(&raw[48..]);
    out
}

/// An uncompressed ZCash G2 point (x.c1, x.c0, y.c1, y.c0) in the precompile encoding
/// (x.c0, x.c1, y.c0, y.c1), unchecked.
fn raw_g2(raw: &[u8; 192]) -> [u8; 256] {
    let mut out = [0u8; 256];
    for (slot, at) in [(0, 48), (1, 0), (2, 144), (3, 96)] {
        out[slot * 64 + 16..slot * 64 + 64].copy_from_slice(&raw[at..at + 48]);
    }
    out
}

/// A point on the G1 curve outside the subgroup: compressed and precompile forms.
fn g1_outside_subgroup() -> ([u8; 48], [u8; 128]) {
    for x in 0u8..=255 {
        let mut c = [0u8; 48];
        c[0] = 0x80;
        c[47] = x;
        if let Some(p) = Option::<G1Affine>::from(G1Affine::from_compressed_unchecked(&c))
            && !bool::from(p.is_torsion_free())
        {
            assert!(bool::from(p.is_on_curve()));
            return (p.to_compressed(), raw_g1(&p.to_uncompressed()));
        }
    }
    unreachable!("a small x gives a point outside G1")
}

/// A point on the G2 curve outside the subgroup: compressed and precompile forms.
fn g2_outside_subgroup() -> ([u8; 96], [u8; 256]) {
    for x in 0u8..=255 {
        let mut c = [0u8; 96];
        c[0] = 0x80;
        c[95] = x;
        if let Some(p) = Option::<G2Affine>::from(G2Affine::from_compressed_unchecked(&c))
            && !bool::from(p.is_torsion_free())
        {
            assert!(bool::from(p.is_on_curve()));
            return (p.to_compressed(), raw_g2(&p.to_uncompressed()));
        }
    }
    unreachable!("a small x gives a point outside G2")
}

// ---------------------------------------------------------------------------------------------
// Rounds from keyquorum's own engine

#[derive(Default)]
struct Store(BTreeMap<u64, Round>);

impl RoundStore for Store {
    fn last_round(&self) -> u64 {
        self.0.keys().next_back().copied().unwrap_or(0)
    }
    fn get(&self, round: u64) -> Option<Round> {
        self.0.get(&round).cloned()
    }
}

/// The group secret of the test committee: a 2-of-3 sharing `f(x) = a0 + a1 x`.
const A0: u64 = 0x6b65_7971_756f_7275;
const A1: u64 = 0x636f_6e73_756d_6572;

fn share(i: u64) -> Scalar {
    Scalar::from(A0) + Scalar::from(A1) * Scalar::from(i)
}

/// Rounds `1..=last` produced by three engines (threshold 2) exchanging partials, each checked
/// by keyquorum's verifier; with the chain info and the compressed group key.
fn produce<S: DrandScheme<Public = Bls12381G1>>(last: u64) -> (ChainInfo, [u8; 48], Vec<Round>) {
    let members: Vec<Member<S>> = (1..=3)
        .map(|i| Member {
            share_index: Scalar::from(i),
            public_share: tbls::public_key::<S>(&Secret::new(share(i))),
        })
        .collect();
    let group_key = tbls::public_key::<S>(&Secret::new(Scalar::from(A0)));
    let group = ViewGroup::new(2, members, group_key).unwrap();
    let key = group_key.to_compressed();
    let info = ChainInfo::keyquorum(
        S::ID,
        &key,
        3,
        1_700_000_000,
        "consumer-test",
        ChainLink {
            magic_block_hash: [7; 32],
            previous_chain_hash: None,
        },
    )
    .unwrap();
    let mut engines: Vec<Engine<S>> = (0..3u16)
        .map(|m| {
            let me = SigningShare {
                member: m as MemberId,
                share: Secret::new(share(u64::from(m) + 1)),
            };
            Engine::new(
                info.clone(),
                group.clone(),
                Some(me),
                EngineConfig::default(),
            )
            .unwrap()
        })
        .collect();
    let mut stores: Vec<Store> = (0..3).map(|_| Store::default()).collect();
    let apply = |store: &mut Store, from: usize, actions: Vec<Action>, queue: &mut VecDeque<_>| {
        for a in actions {
            match a {
                Action::Broadcast(p) => queue.push_back((from, p)),
                Action::Store(r) => assert!(store.0.insert(r.round, r).is_none()),
                Action::Culprit { member, round } => panic!("member {member} culprit in {round}"),
            }
        }
    };
    for now in 1..=last {
        let mut queue = VecDeque::new();
        for i in 0..3 {
            let actions = engines[i].tick(now, &stores[i]);
            apply(&mut stores[i], i, actions, &mut queue);
        }
        while let Some((from, p)) = queue.pop_front() {
            for j in (0..3).filter(|j| *j != from) {
                match engines[j].on_partial(Some(from as MemberId), &p, &stores[j]) {
                    Ok(actions) => apply(&mut stores[j], j, actions, &mut queue),
                    Err(Rejected::Stale { .. } | Rejected::Duplicate { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }
    let rounds: Vec<Round> = (1..=last).map(|r| stores[0].get(r).unwrap()).collect();
    for r in &rounds {
        verify_round(&info, r).unwrap();
    }
    (info, key, rounds)
}

// ---------------------------------------------------------------------------------------------
// Beacon rounds

#[test]
fn keyquorum_chained_rounds_verify_and_tampered_ones_do_not() {
    let (info, key, rounds) = produce::<PedersenBlsChained>(3);
    let mut chain = consumer(&key, true, *info.group_hash());
    assert!(chain.read(BeaconConsumer::chainedCall {}));
    assert_eq!(chain.read(BeaconConsumer::groupKeyCall {}).as_ref(), key);
    assert_eq!(
        chain.read(BeaconConsumer::groupKeyPointCall {}).as_ref(),
        g1_point(&key).unwrap()
    );
    let (r1, r2, r3) = (&rounds[0], &rounds[1], &rounds[2]);
    // Round 1 chains to the genesis seed, later rounds to the previous signature.
    assert_eq!(previous(r1), info.group_hash());
    assert_eq!(previous(r3), r2.signature);

    let from = address_of(1);
    let sig = sig96(r3);
    let prev = previous(r3);
    // Another valid point (round 2's signature) as round 3's signature.
    chain
        .send(from, 0, round_call(3, &prev, &sig96(r2)))
        .reverts_with::<BeaconConsumer::BadSignature>();
    // The previous signature changed in one byte.
    let mut bad_prev = prev.clone();
    bad_prev[40] ^= 1;
    chain
        .send(from, 0, round_call(3, &bad_prev, &sig))
        .reverts_with::<BeaconConsumer::BadSignature>();
    // Another round number.
    for round in [2, 4, u64::MAX] {
        chain
            .send(from, 0, round_call(round, &prev, &sig))
            .reverts_with::<BeaconConsumer::BadSignature>();
    }
    chain
        .send(from, 0, round_call(0, &prev, &sig))
        .reverts_with::<BeaconConsumer::RoundZero>();
    // The compressed signature changed (the sign flag, then a byte of x) but not its point.
    let point = g2_point(&sig).unwrap();
    for (at, bit) in [(0, 0x20), (50, 0x01)] {
        let mut bad = sig;
        bad[at] ^= bit;
        chain
            .send(from, 0, round_call_with_point(3, &prev, &bad, &point))
            .reverts_with::<BeaconConsumer::SignatureMismatch>();
    }
    // Round 1 carries the genesis seed and nothing else; later rounds a signature's length.
    let mut bad_seed = previous(r1);
    bad_seed[0] ^= 1;
    for p in [bad_seed, r2.signature.clone(), vec![]] {
        chain
            .send(from, 0, round_call(1, &p, &sig96(r1)))
            .reverts_with::<BeaconConsumer::BadPreviousSignature>();
    }
    for p in [info.group_hash().to_vec(), prev[..95].to_vec(), vec![]] {
        chain
            .send(from, 0, round_call(3, &p, &sig))
            .reverts_with::<BeaconConsumer::BadPreviousSignature>();
    }
    // Wrong lengths.
    chain
        .send(from, 0, round_call_with_point(3, &prev, &sig[..95], &point))
        .reverts_with::<BeaconConsumer::BadLength>();
    chain
        .send(
            from,
            0,
            round_call_with_point(3, &prev, &sig, &point[..255]),
        )
        .reverts_with::<BeaconConsumer::BadLength>();
    // Nothing was recorded by the refusals.
    for r in 0..=4 {
        let recorded = chain.read(BeaconConsumer::randomnessOfCall(r));
        assert_eq!(recorded, B256::ZERO);
    }

    for r in &rounds {
        submit(&mut chain, r, r.randomness());
    }
    // The view function agrees and records nothing further; submitting again is harmless.
    let again = chain.read(BeaconConsumer::roundRandomnessCall {
        round: 3,
        previousSignature: bytes(&prev),
        signature: bytes(&sig),
        signaturePoint: bytes(&point),
    });
    assert_eq!(again.0, r3.randomness());
    let r = chain.send(from, 0, round_call(3, &prev, &sig)).ok();
    assert!(r.events::<BeaconConsumer::RoundVerified>().is_empty());
}

/// A signature point that is not the compressed signature's, off the curve or outside G2, is
/// refused: the pairing precompile checks both.
#[test]
fn signatures_off_the_curve_or_outside_g2_are_refused() {
    let (info, key, rounds) = produce::<PedersenBlsChained>(2);
    let mut chain = consumer(&key, true, *info.group_hash());
    let r2 = &rounds[1];
    let sig = sig96(r2);
    let mut off_curve = g2_point(&sig).unwrap();
    // y.c0 + 1 (its last byte is at 191): the same x and sign (y.c1 decides it), no longer
    // on the curve.
    off_curve[191] = off_curve[191].wrapping_add(1);
    chain
        .send(
            address_of(1),
            0,
            round_call_with_point(2, &previous(r2), &sig, &off_curve),
        )
        .reverts_with::<BeaconConsumer::BadSignature>();
    let (outside, outside_point) = g2_outside_subgroup();
    chain
        .send(
            address_of(1),
            0,
            round_call_with_point(2, &previous(r2), &outside, &outside_point),
        )
        .reverts_with::<BeaconConsumer::BadSignature>();
    // The genuine round still verifies.
    submit(&mut chain, r2, r2.randomness());
}

/// One round has one randomness: a second valid signature for a recorded round (which only the
/// key's holders could make, signing another previous signature) is a conflict.
#[test]
fn a_second_randomness_for_a_round_is_a_conflict() {
    let (info, key, rounds) = produce::<PedersenBlsChained>(2);
    let mut chain = consumer(&key, true, *info.group_hash());
    submit(&mut chain, &rounds[1], rounds[1].randomness());
    let other_prev = [0x42u8; 96];
    let forged = tbls::sign::<PedersenBlsChained>(
        &Secret::new(Scalar::from(A0)),
        &round_message(SchemeId::PedersenBlsChained, &other_prev, 2),
    )
    .to_compressed();
    // The signature is valid: the view function accepts it...
    let view = chain.read(BeaconConsumer::roundRandomnessCall {
        round: 2,
        previousSignature: bytes(&other_prev),
        signature: bytes(&forged),
        signaturePoint: bytes(&g2_point(&forged).unwrap()),
    });
    assert_ne!(view, B256::from(rounds[1].randomness()));
    // ...but round 2 already has its randomness.
    chain
        .send(address_of(1), 0, round_call(2, &other_prev, &forged))
        .reverts_with::<BeaconConsumer::RoundConflict>();
}

#[test]
fn keyquorum_unchained_rounds_verify() {
    let (_, key, rounds) = produce::<PedersenBlsUnchained>(2);
    let mut chain = consumer(&key, false, [0; 32]);
    assert!(!chain.read(BeaconConsumer::chainedCall {}));
    let r2 = &rounds[1];
    assert_eq!(r2.previous_signature, None);
    // An unchained round carries no previous signature.
    chain
        .send(
            address_of(1),
            0,
            round_call(2, &rounds[0].signature, &sig96(r2)),
        )
        .reverts_with::<BeaconConsumer::BadPreviousSignature>();
    chain
        .send(address_of(1), 0, round_call(1, &[], &sig96(r2)))
        .reverts_with::<BeaconConsumer::BadSignature>();
    for r in &rounds {
        submit(&mut chain, r, r.randomness());
    }
}

/// A chained round does not verify on an unchained consumer of the same key, nor the reverse:
/// the scheme is the deployment's, not the caller's.
#[test]
fn the_scheme_is_fixed_at_deployment() {
    let (info, key, chained) = produce::<PedersenBlsChained>(2);
    let (_, same_key, unchained) = produce::<PedersenBlsUnchained>(2);
    assert_eq!(key, same_key);
    let mut on_unchained = consumer(&key, false, [0; 32]);
    on_unchained
        .send(address_of(1), 0, round_call(2, &[], &sig96(&chained[1])))
        .reverts_with::<BeaconConsumer::BadSignature>();
    let mut on_chained = consumer(&key, true, *info.group_hash());
    on_chained
        .send(
            address_of(1),
            0,
            round_call(2, &chained[0].signature, &sig96(&unchained[1])),
        )
        .reverts_with::<BeaconConsumer::BadSignature>();
}

fn drand_vector(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../beacon/tests/vectors/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// drand's League of Entropy mainnet (`default`, `pedersen-bls-chained`): published rounds
/// verify under the published key and record the published randomness.
#[test]
fn drand_mainnet_rounds_verify() {
    let info = ChainInfo::from_json(&drand_vector("default-info.json")).unwrap();
    assert_eq!(info.scheme(), SchemeId::PedersenBlsChained);
    let key: [u8; 48] = info.public_key().try_into().unwrap();
    let mut chain = consumer(&key, true, *info.group_hash());
    for name in ["default-1.json", "default-1000.json", "default-72785.json"] {
        let round = Round::from_json(&drand_vector(name)).unwrap();
        let published = verify_round(&info, &round).unwrap();
        submit(&mut chain, &round, published);
        // The neighbouring round number does not verify (round 2 cannot even chain to the
        // genesis seed).
        let next = chain.send(
            address_of(1),
            0,
            round_call(round.round + 1, &previous(&round), &sig96(&round)),
        );
        if round.round == 1 {
            next.reverts_with::<BeaconConsumer::BadPreviousSignature>();
        } else {
            next.reverts_with::<BeaconConsumer::BadSignature>();
        }
    }
}

/// drand's `testnet-unchained-3s` (`pedersen-bls-unchained`).
#[test]
fn drand_unchained_testnet_rounds_verify() {
    let info = ChainInfo::from_json(&drand_vector("testnet-unchained-info.json")).unwrap();
    assert_eq!(info.scheme(), SchemeId::PedersenBlsUnchained);
    let key: [u8; 48] = info.public_key().try_into().unwrap();
    let mut chain = consumer(&key, false, [0; 32]);
    for name in [
        "testnet-unchained-223344.json",
        "testnet-unchained-19369534.json",
    ] {
        let round = Round::from_json(&drand_vector(name)).unwrap();
        let published = verify_round(&info, &round).unwrap();
        submit(&mut chain, &round, published);
    }
}

// ---------------------------------------------------------------------------------------------
// The group key

#[test]
fn invalid_group_keys_are_refused_at_deployment() {
    let (_, key, _) = produce::<PedersenBlsChained>(1);
    let mut chain = Chain::new(config(4), &[]);
    let drand = ChainInfo::from_json(&drand_vector("default-info.json")).unwrap();
    let other: [u8; 48] = drand.public_key().try_into().unwrap();
    let point = g1_point(&key).unwrap();
    // The two forms name different points.
    deploy(&mut chain, &other, &point, true, [0; 32]).reverts_with::<BeaconConsumer::BadGroupKey>();
    // The sign flag flipped.
    let mut flipped = key;
    flipped[0] ^= 0x20;
    deploy(&mut chain, &flipped, &point, true, [0; 32])
        .reverts_with::<BeaconConsumer::BadGroupKey>();
    // Wrong lengths.
    deploy(&mut chain, &key[..47], &point, true, [0; 32])
        .reverts_with::<BeaconConsumer::BadGroupKey>();
    deploy(&mut chain, &key, &point[..127], true, [0; 32])
        .reverts_with::<BeaconConsumer::BadGroupKey>();
    // The identity, as the ZCash encoding writes it and as the precompiles do (whose all-zero
    // point the compressed-form match alone would take for x = 0, y = 0).
    let mut infinity = [0u8; 48];
    infinity[0] = 0xc0;
    deploy(&mut chain, &infinity, &[0; 128], true, [0; 32])
        .reverts_with::<BeaconConsumer::BadGroupKey>();
    infinity[0] = 0x80;
    deploy(&mut chain, &infinity, &[0; 128], true, [0; 32])
        .reverts_with::<BeaconConsumer::BadGroupKey>();
    // On the curve, outside G1.
    let (outside, outside_point) = g1_outside_subgroup();
    deploy(&mut chain, &outside, &outside_point, true, [0; 32])
        .reverts_with::<BeaconConsumer::BadGroupKey>();
    // Off the curve: y + 1 (the same sign).
    let mut off_curve = point;
    off_curve[127] = off_curve[127].wrapping_add(1);
    deploy(&mut chain, &key, &off_curve, true, [0; 32])
        .reverts_with::<BeaconConsumer::BadGroupKey>();
    deploy(&mut chain, &key, &point, true, [0; 32]).ok();
}

// ---------------------------------------------------------------------------------------------
// On-demand signatures

/// keyquorum's signed bytes for `(domain, message)`.
fn signed_bytes(domain: &[u8], message: &[u8]) -> Vec<u8> {
    let mut out = b"keyquorum/sign/v1".to_vec();
    out.push(domain.len() as u8);
    out.extend_from_slice(domain);
    out.extend_from_slice(message);
    out
}

/// A key made with blst and its signature (compressed, EIP-2537 form) on `(domain, message)`.
struct PopSigner(blst::min_pk::SecretKey);

impl PopSigner {
    fn new() -> Self {
        PopSigner(blst::min_pk::SecretKey::key_gen(&[0x5a; 32], b"consumer-test").unwrap())
    }

    fn public_key(&self) -> [u8; 48] {
        self.0.sk_to_pk().compress()
    }

    fn sign(&self, domain: &[u8], message: &[u8]) -> [u8; 256] {
        let sig = self
            .0
            .sign(&signed_bytes(domain, message), POP_DST, &[])
            .compress();
        g2_point(&sig).unwrap()
    }
}

fn signed_call(domain: &[u8], message: &[u8], point: &[u8]) -> BeaconConsumer::verifySignedCall {
    BeaconConsumer::verifySignedCall {
        domain: String::from_utf8(domain.to_vec()).unwrap(),
        message: bytes(message),
        signaturePoint: bytes(point),
    }
}

#[test]
fn pop_signatures_verify_for_their_domain_and_message_only() {
    let signer = PopSigner::new();
    let mut chain = consumer(&signer.public_key(), true, [0; 32]);
    let from = address_of(1);
    let domain = b"example.org/payout";
    let message = b"pay 10 to 0xa0";
    let sig = signer.sign(domain, message);
    chain.send(from, 0, signed_call(domain, message, &sig)).ok();

    // Another domain, another message, or the domain's bytes moved into the message.
    for (d, m) in [
        (&b"example.org/payouT"[..], &message[..]),
        (&b"example.org/payout2"[..], &message[..]),
        (&domain[..], &b"pay 11 to 0xa0"[..]),
        (&domain[..17], &b"tpay 10 to 0xa0"[..]),
    ] {
        chain
            .send(from, 0, signed_call(d, m, &sig))
            .reverts_with::<BeaconConsumer::BadSignature>();
    }
    // A signature under the basic (`_NUL_`) tag on the same bytes is another signature.
    let nul = signer
        .0
        .sign(
            &signed_bytes(domain, message),
            b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_",
            &[],
        )
        .compress();
    chain
        .send(
            from,
            0,
            signed_call(domain, message, &g2_point(&nul).unwrap()),
        )
        .reverts_with::<BeaconConsumer::BadSignature>();
    // A point outside G2.
    let (_, outside) = g2_outside_subgroup();
    chain
        .send(from, 0, signed_call(domain, message, &outside))
        .reverts_with::<BeaconConsumer::BadSignature>();

    // Domains: 1 to 64 printable ASCII bytes.
    let longest = [b'd'; 64];
    let sig = signer.sign(&longest, b"");
    chain.send(from, 0, signed_call(&longest, b"", &sig)).ok();
    let sig = signer.sign(b" ~", b"m");
    chain.send(from, 0, signed_call(b" ~", b"m", &sig)).ok();
    for d in [&b""[..], &[b'd'; 65][..], b"tab\there", b"del\x7f", b"nl\n"] {
        chain
            .send(from, 0, signed_call(d, b"m", &sig))
            .reverts_with::<BeaconConsumer::BadDomain>();
    }
    // Messages: at most 65536 bytes.
    let long = vec![0xabu8; 65536];
    let sig = signer.sign(domain, &long);
    chain.send(from, 0, signed_call(domain, &long, &sig)).ok();
    chain
        .send(from, 0, signed_call(domain, &vec![0xab; 65537], &sig))
        .reverts_with::<BeaconConsumer::MessageTooLong>();
    chain
        .send(from, 0, signed_call(domain, &long, &sig[..255]))
        .reverts_with::<BeaconConsumer::BadLength>();
}

/// A beacon round's signature is not an on-demand signature, whatever the caller claims.
#[test]
fn beacon_signatures_are_not_signed_messages() {
    let (_, key, rounds) = produce::<PedersenBlsUnchained>(1);
    let mut chain = consumer(&key, false, [0; 32]);
    let digest = round_message(SchemeId::PedersenBlsUnchained, &[], 1);
    let point = g2_point(&sig96(&rounds[0])).unwrap();
    chain
        .send(address_of(1), 0, signed_call(b"beacon", &digest, &point))
        .reverts_with::<BeaconConsumer::BadSignature>();
}

// ---------------------------------------------------------------------------------------------
// Gas

/// Gas of each call (revm, Prague; a transaction's whole gas: the 21,000 base, calldata, the
/// precompiles, and storage where the call records). Deterministic: not a timing.
#[test]
fn gas_per_call() {
    let mut rows: Vec<(&str, u64)> = Vec::new();

    let (info, key, rounds) = produce::<PedersenBlsChained>(3);
    let mut chain = Chain::new(config(4), &[]);
    let r = deploy(
        &mut chain,
        &key,
        &g1_point(&key).unwrap(),
        true,
        *info.group_hash(),
    )
    .ok();
    rows.push(("deploy (checks the key: one pairing)", r.gas_used));
    let r3 = &rounds[2];
    let view = chain
        .send(
            address_of(1),
            0,
            BeaconConsumer::roundRandomnessCall {
                round: 3,
                previousSignature: bytes(&previous(r3)),
                signature: bytes(&r3.signature),
                signaturePoint: bytes(&g2_point(&sig96(r3)).unwrap()),
            },
        )
        .ok();
    rows.push(("roundRandomness, chained (verify only)", view.gas_used));
    let first = submit(&mut chain, r3, r3.randomness());
    rows.push(("verifyRound, chained (verify and record)", first));
    let again = chain
        .send(address_of(1), 0, round_call(3, &previous(r3), &sig96(r3)))
        .ok();
    rows.push((
        "verifyRound, chained, round already recorded",
        again.gas_used,
    ));

    let (_, key, rounds) = produce::<PedersenBlsUnchained>(1);
    let mut chain = consumer(&key, false, [0; 32]);
    let unchained = submit(&mut chain, &rounds[0], rounds[0].randomness());
    rows.push(("verifyRound, unchained (verify and record)", unchained));

    let signer = PopSigner::new();
    let mut chain = consumer(&signer.public_key(), true, [0; 32]);
    for len in [32usize, 1024, 65536] {
        let message = vec![0xabu8; len];
        let sig = signer.sign(b"example.org/payout", &message);
        let r = chain
            .send(
                address_of(1),
                0,
                signed_call(b"example.org/payout", &message, &sig),
            )
            .ok();
        let label = match len {
            32 => "verifySigned, 18-byte domain, 32-byte message",
            1024 => "verifySigned, 18-byte domain, 1 KiB message",
            _ => "verifySigned, 18-byte domain, 64 KiB message",
        };
        rows.push((label, r.gas_used));
    }

    println!("| call | gas |");
    println!("|---|---|");
    for (label, gas) in &rows {
        assert!(*gas > 21_000 && *gas < BLOCK_GAS_LIMIT, "{label}: {gas}");
        println!("| {label} | {} |", thousands(*gas));
    }
    // Recording costs a storage write on top of the verification, and only the first time.
    assert!(first > view.gas_used && again.gas_used < first);
}

fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
