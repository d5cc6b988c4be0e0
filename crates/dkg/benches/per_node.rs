//! Per-participant cost of one ack-or-reveal ceremony, single thread, at `t = floor(2n/3) + 1`:
//! deal (polynomial, commitment of `n + 1` points, `n` encrypted shares), verify everything
//! received (decode the `n` commitments from their uncompressed encodings, decrypt and check
//! `n` shares in one batch, sign `n` acks), and finalize (sum the commitments into the group key
//! and public key shares, check the sums' subgroup membership and degree, sum the own share).
//! Board validation of posts (post signatures, aggregate acks) is the chain's work and is
//! measured separately (`board_validation`).
//!
//! In the same run, the peers doing the same per-participant work: commonware-cryptography's
//! BLS12-381 DKG and frost-secp256k1's DKG (up to `KQ_PEER_MAX_N`, default 256).
//!
//! `KQ_BENCH_NS` (comma-separated) selects the committee sizes; default `64,256,1024`.

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use keyquorum_crypto::commit::{EvalCommitment, batch_verify_eval};
use keyquorum_crypto::encrypt::{self, Ciphertext, EncryptionSecretKey, ShareAad};
use keyquorum_crypto::index::IndexScheme;
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::{Bls12381G1, Curve, Secp256k1};
use keyquorum_dkg::board::{aggregate_commitments, share_matches};
use keyquorum_dkg::identity::{IdentityKeypair, Purpose};
use keyquorum_dkg::messages::{Contribution, Post, ack_payload, commitment_hash};
use keyquorum_dkg::{Ceremony, Params, Participant, SessionConfig, Variant};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn sizes() -> Vec<usize> {
    std::env::var("KQ_BENCH_NS")
        .unwrap_or_else(|_| "64,256,1024".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

struct Setup<C: Curve> {
    ceremony: Arc<Ceremony<C>>,
    identity: IdentityKeypair,
    encryption: EncryptionSecretKey,
    /// Every dealer's contribution post as it sits on the board.
    contributions: Vec<Vec<u8>>,
    /// Participant 0's encrypted share from every dealer.
    deals: Vec<Vec<u8>>,
}

fn setup<C: Curve>(n: usize) -> Setup<C> {
    let t = 2 * n / 3 + 1;
    let keys: Vec<(IdentityKeypair, EncryptionSecretKey)> = (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
            seed[31] = 1;
            (
                IdentityKeypair::from_seed(&seed).unwrap(),
                EncryptionSecretKey::from_seed(&seed),
            )
        })
        .collect();
    let ceremony = Ceremony::new(SessionConfig::<C> {
        domain: b"bench".to_vec(),
        epoch: 1,
        variant: Variant::AckReveal,
        params: Params::new(n, t, t).unwrap(),
        index_scheme: IndexScheme::Sequential,
        players: keys
            .iter()
            .map(|(i, e)| Participant {
                identity: i.public().clone(),
                encryption: e.public_key(),
            })
            .collect(),
        reshare: None,
    })
    .unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(n as u64);
    let mut contributions = Vec::with_capacity(n);
    let mut deals = Vec::with_capacity(n);
    for d in 0..n as u32 {
        let f = Polynomial::<C::Scalar>::random(t - 1, None, &mut rng);
        let commitment = EvalCommitment::<C>::feldman(&f, ceremony.player_indices());
        let hash = commitment_hash::<C>(ceremony.id(), d, &commitment);
        let aad = ShareAad {
            session_id: *ceremony.id(),
            dealer: d,
            recipient: 0,
            commitment_hash: hash,
        };
        let share = f.evaluate(&ceremony.player_indices()[0]);
        let ct = encrypt::seal(
            &ceremony.players()[0].encryption,
            &aad,
            &C::encode_scalar(&share),
            &mut rng,
        );
        deals.push(ct.to_bytes());
        contributions.push(
            Post::Contribution(Contribution {
                session: *ceremony.id(),
                dealer: d,
                commitment,
            })
            .encode(),
        );
    }
    let (identity, encryption) = keys.into_iter().next().unwrap();
    Setup {
        ceremony,
        identity,
        encryption,
        contributions,
        deals,
    }
}

/// One participant's whole ceremony; returns its share check (always true).
fn one_participant<C: Curve>(s: &Setup<C>, rng: &mut ChaCha20Rng) -> bool {
    let ceremony = &s.ceremony;
    let n = ceremony.n();
    let session = *ceremony.id();
    // Deal.
    let f = Polynomial::<C::Scalar>::random(ceremony.t() - 1, None, rng);
    let commitment = EvalCommitment::<C>::feldman(&f, ceremony.player_indices());
    let my_hash = commitment_hash::<C>(&session, 0, &commitment);
    let post = Post::Contribution(Contribution {
        session,
        dealer: 0,
        commitment,
    })
    .encode();
    let _signature = s.identity.sign(Purpose::Post, &post);
    for (j, p) in ceremony.players().iter().enumerate() {
        let aad = ShareAad {
            session_id: session,
            dealer: 0,
            recipient: j as u32,
            commitment_hash: my_hash,
        };
        let share = f.evaluate(&ceremony.player_indices()[j]);
        std::hint::black_box(
            encrypt::seal(&p.encryption, &aad, &C::encode_scalar(&share), rng).to_bytes(),
        );
    }
    // Verify everything received: commitments from the board, shares from the dealers.
    let mut commitments = Vec::with_capacity(n);
    let mut hashes = Vec::with_capacity(n);
    for (d, bytes) in s.contributions.iter().enumerate() {
        let Ok(Post::Contribution(c)) = Post::<C>::decode(bytes, n) else {
            panic!("bad post")
        };
        hashes.push(commitment_hash::<C>(&session, d as u32, &c.commitment));
        commitments.push(c.commitment);
    }
    let mut shares = Vec::with_capacity(n);
    for (d, ct) in s.deals.iter().enumerate() {
        let aad = ShareAad {
            session_id: session,
            dealer: d as u32,
            recipient: 0,
            commitment_hash: hashes[d],
        };
        let ct = Ciphertext::from_bytes(ct, 32).unwrap();
        let pt = encrypt::open(&s.encryption, &aad, &ct).unwrap();
        shares.push(C::decode_scalar(pt.expose()).unwrap());
    }
    let items: Vec<_> = commitments.iter().zip(shares.iter().copied()).collect();
    assert!(batch_verify_eval(0, &items, rng).is_ok());
    for (d, h) in hashes.iter().enumerate() {
        std::hint::black_box(
            s.identity
                .sign(Purpose::Ack, &ack_payload(&session, d as u32, h)),
        );
    }
    // Finalize.
    let dealers: Vec<u32> = (0..n as u32).collect();
    let refs: Vec<&EvalCommitment<C>> = commitments.iter().collect();
    let weights = vec![<C::Scalar as ff::Field>::ONE; n];
    let sums = aggregate_commitments(ceremony, &dealers, &refs, &hashes, &weights).unwrap();
    let x: C::Scalar = shares.iter().copied().sum();
    share_matches::<C>(&x, &sums[1])
}

fn bench_curve<C: Curve>(c: &mut Criterion, label: &str) {
    let mut g = c.benchmark_group("dkg_per_node");
    g.sample_size(10);
    for n in sizes() {
        let s = setup::<C>(n);
        let mut rng = ChaCha20Rng::seed_from_u64(99);
        assert!(one_participant(&s, &mut rng));
        g.bench_with_input(
            BenchmarkId::new(format!("keyquorum_ackreveal_{label}"), n),
            &n,
            |b, _| b.iter(|| one_participant(&s, &mut rng)),
        );
    }
    g.finish();
}

/// Largest `n` at which the peers run (their set-up alone takes minutes above 256).
fn peer_max_n() -> usize {
    std::env::var("KQ_PEER_MAX_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// The same per-participant work by the best peers, in the same run: commonware-cryptography's
/// BLS12-381 Joint-Feldman DKG and frost-secp256k1's DKG (see `crates/peer-bench`).
fn peers(c: &mut Criterion) {
    use keyquorum_peer_bench::{commonware_dkg, default_threshold, frost_dkg};
    let mut g = c.benchmark_group("dkg_per_node");
    g.sample_size(10);
    for n in sizes().into_iter().filter(|n| *n <= peer_max_n()) {
        let t = default_threshold(n);
        let setup = commonware_dkg::setup(n, t, 1);
        g.bench_with_input(
            BenchmarkId::new("commonware_bls12381_minpk", n),
            &n,
            |b, _| b.iter(|| commonware_dkg::run_one_participant(&setup)),
        );
        drop(setup);
        let setup = frost_dkg::setup(n, t, 1);
        g.bench_with_input(BenchmarkId::new("frost_secp256k1", n), &n, |b, _| {
            b.iter(|| frost_dkg::run_one_participant(&setup))
        });
    }
    g.finish();
}

fn per_node(c: &mut Criterion) {
    bench_curve::<Bls12381G1>(c, "bls12381");
    bench_curve::<Secp256k1>(c, "secp256k1");
    peers(c);
}

criterion_group!(benches, per_node);
criterion_main!(benches);
