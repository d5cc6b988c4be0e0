//! What one node does in one view change, timed whole: the ack-or-reveal participant state
//! machine (`AckRevealParticipant`) driven through a complete fresh-key ceremony on BLS12-381 G1 at
//! `t = k = floor(2n/3) + 1`, everyone honest, fed the inputs a node receives in the order it
//! receives them:
//!
//! 1. set-up: build the ceremony from its configuration (session id, indices, dual-code weights);
//! 2. deal: `Start` draws the polynomial, commits to it (`n + 1` constant-time multiplications),
//!    signs the contribution post and seals `n` shares with HPKE;
//! 3. receive the other `n - 1` deals (held until their commitments are on the board);
//! 4. replay the contribute phase of the board: all `n` contribution posts as the chain orders
//!    them (decode `n (n + 1)` points, check every post's signature), then open and check the
//!    `n` received shares against the commitments and sign `n` acks;
//! 5. receive the `n - 1` acks for its own deal; at the share deadline verify them (in
//!    aggregate) and post its publication;
//! 6. replay the publish phase: all `n` publications (post signatures and aggregate ack
//!    signatures of `n` ackers each);
//! 7. finalize at the publish deadline: the qualified set, the group key and all `n` public key
//!    shares (column sums of the commitments, their subgroup and degree checks), the own share;
//! 8. sign the magic block with the new share (threshold BLS partial signature, MinPk).
//!
//! Posts are fed per board phase through `AckRevealParticipant::handle_board_posts` (batched
//! signature checks, batched share checks), as the node driver feeds them per chain block; a
//! batch acts exactly as its posts fed one by one.
//! Everything the other participants do is prepared outside the timed closure.
//!
//! Each size runs with a rayon pool of one thread and of every core (`KQ_BENCH_THREADS`,
//! comma-separated, default `1,<cores>`). In the same run, the peers doing their per-participant
//! work: commonware-cryptography's BLS12-381 DKG (with its `Sequential` strategy, and with its
//! `Rayon` strategy at the other thread counts) and frost-secp256k1's DKG (up to
//! `KQ_PEER_MAX_N`, default 256; `KQ_PEERS=commonware` or `frost` runs one of them; see
//! `crates/bench` for what their closures contain).
//!
//! `KQ_BENCH_NS` (comma-separated) selects the committee sizes; default `64,256,1024`.

use std::sync::Arc;
use std::time::Duration;

use blstrs::Scalar;
use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use keyquorum_crypto::commit::EvalCommitment;
use keyquorum_crypto::encrypt::{self, EncryptionSecretKey, ShareAad};
use keyquorum_crypto::hash::tagged_hash;
use keyquorum_crypto::index::IndexScheme;
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_crypto::{Bls12381G1, Curve};
use keyquorum_dkg::ackreveal::AckRevealParticipant;
use keyquorum_dkg::board::share_matches;
use keyquorum_dkg::identity::{IdentityKeypair, IdentitySignature, Purpose, SIG_DST};
use keyquorum_dkg::messages::{
    Ack, Contribution, Deal, Direct, Post, Publication, SignedPost, ack_payload, commitment_hash,
};
use keyquorum_dkg::participant::{Action, Input};
use keyquorum_dkg::{Ceremony, CeremonyConfig, Member, Params, Variant};
use rand_chacha_03::ChaCha20Rng;
use rand_core_06::SeedableRng;
use rayon::prelude::*;

type C = Bls12381G1;

fn sizes() -> Vec<usize> {
    std::env::var("KQ_BENCH_NS")
        .unwrap_or_else(|_| "64,256,1024".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn thread_counts() -> Vec<usize> {
    let all = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut v: Vec<usize> = std::env::var("KQ_BENCH_THREADS")
        .unwrap_or_else(|_| format!("1,{all}"))
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|t| *t > 0)
        .collect();
    v.dedup();
    v
}

/// `KQ_BENCH_PHASES=N` prints each step's CPU and wall time over `N` untimed passes (a set
/// variable that is not a number means one pass).
fn phase_passes() -> usize {
    std::env::var("KQ_BENCH_PHASES")
        .map(|v| v.parse().unwrap_or(1))
        .unwrap_or(0)
}

fn seed_of(i: usize) -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
    seed[31] = 1;
    seed
}

/// Everything node 0 receives in one ceremony, prepared ahead.
struct Setup {
    config: CeremonyConfig<C>,
    identity: IdentityKeypair,
    my_seed: [u8; 32],
    /// Deals from dealers `1..n` to node 0 (direct messages with their senders).
    deals: Vec<Input>,
    /// Acks from players `1..n` for node 0's deal.
    acks: Vec<Input>,
    /// The board's contribution posts in order (node 0's own first).
    contributions: Vec<Vec<u8>>,
    /// The board's publication posts in order (node 0's own first).
    publications: Vec<Vec<u8>>,
}

/// `f(0), f(1), ..., f(n)` by forward differences (additions only after the first `t` values);
/// the sequential indices are `1..=n`. Set-up only.
fn values_at_0_to_n(f: &Polynomial<Scalar>, n: usize) -> Vec<Scalar> {
    let t = f.coefficients().len();
    let mut diff: Vec<Scalar> = (0..t as u64)
        .map(|x| f.evaluate(&Scalar::from(x)))
        .collect();
    // diff[k] becomes the k-th forward difference at 0.
    for k in 1..t {
        for i in (k..t).rev() {
            diff[i] = diff[i] - diff[i - 1];
        }
    }
    let mut out = Vec::with_capacity(n + 1);
    for _ in 0..=n {
        out.push(diff[0]);
        for k in 0..t - 1 {
            diff[k] = diff[k] + diff[k + 1];
        }
    }
    out
}

fn setup(n: usize) -> Setup {
    let t = 2 * n / 3 + 1;
    let identities: Vec<IdentityKeypair> = (0..n)
        .into_par_iter()
        .map(|i| IdentityKeypair::from_seed(&seed_of(i)).unwrap())
        .collect();
    let encryption: Vec<EncryptionSecretKey> = (0..n)
        .map(|i| EncryptionSecretKey::from_seed(&seed_of(i)))
        .collect();
    let config = CeremonyConfig::<C> {
        domain: b"bench".to_vec(),
        epoch: 1,
        variant: Variant::AckReveal,
        params: Params::new(n, t, t).unwrap(),
        index_scheme: IndexScheme::Sequential,
        players: identities
            .iter()
            .zip(&encryption)
            .map(|(i, e)| Member {
                identity: i.public().clone(),
                encryption: e.public_key(),
            })
            .collect(),
        verifiable_keys: Vec::new(),
        reshare: None,
    };
    let ceremony = Ceremony::new(config.clone()).unwrap();
    let session = *ceremony.id();
    let my_seed = [42u8; 32];

    // Node 0's own deal, as its state machine produces it (deterministic in its seed).
    let mut me = AckRevealParticipant::new(
        ceremony.clone(),
        identities[0].clone(),
        EncryptionSecretKey::from_seed(&seed_of(0)),
        None,
        my_seed,
    )
    .unwrap();
    let start = me.handle(Input::Start);
    let my_contribution = start
        .iter()
        .find_map(|a| match a {
            Action::Post(p) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    let Post::Contribution(c0) = SignedPost::<C>::decode(&my_contribution, n).unwrap().post else {
        panic!("first post is the contribution")
    };
    let my_hash = commitment_hash::<C>(&session, 0, &c0.commitment);

    // The other dealers' commitments and node 0's shares from them.
    let indices = ceremony.player_indices().to_vec();
    assert_eq!(
        indices[n - 1],
        Scalar::from(n as u64),
        "sequential indices 1..=n"
    );
    let others: Vec<(Vec<u8>, Vec<u8>, [u8; 32])> = (1..n)
        .into_par_iter()
        .map(|d| {
            let mut rng = ChaCha20Rng::seed_from_u64(d as u64);
            let f = Polynomial::<Scalar>::random(t - 1, None, &mut rng);
            let proj: Vec<_> = values_at_0_to_n(&f, n)
                .iter()
                // Public scalar: set-up of simulated peers, outside the timed work.
                .map(C::mul_generator_public_vartime)
                .collect();
            let commitment = EvalCommitment::<C>::from_points(C::batch_normalize(&proj)).unwrap();
            let hash = commitment_hash::<C>(&session, d as u32, &commitment);
            let post = Post::Contribution(Contribution {
                session,
                dealer: d as u32,
                commitment,
            });
            let signature = identities[d].sign(Purpose::Post, &post.signed_payload());
            let signed = SignedPost { post, signature }.encode();
            let aad = ShareAad {
                session_id: session,
                dealer: d as u32,
                recipient: 0,
                commitment_hash: hash,
            };
            let share = f.evaluate(&indices[0]);
            let ct = encrypt::seal(
                &ceremony.players()[0].encryption,
                &aad,
                &C::encode_scalar(&share),
                &mut rng,
            );
            let deal = Direct::Deal(Deal {
                session,
                dealer: d as u32,
                player: 0,
                ciphertext: ct.to_bytes(),
            })
            .encode();
            (signed, deal, hash)
        })
        .collect();
    let mut contributions = vec![my_contribution];
    let mut deals = Vec::new();
    let mut hashes = vec![my_hash];
    for (d, (post, deal, hash)) in (1..n).zip(others) {
        contributions.push(post);
        deals.push(Input::Message {
            from: identities[d].public().clone(),
            payload: deal,
        });
        hashes.push(hash);
    }
    let acks: Vec<Input> = (1..n)
        .into_par_iter()
        .map(|j| Input::Message {
            from: identities[j].public().clone(),
            payload: Direct::Ack(Ack {
                session,
                dealer: 0,
                player: j as u32,
                commitment_hash: my_hash,
                signature: identities[j].sign(Purpose::Ack, &ack_payload(&session, 0, &my_hash)),
            })
            .encode(),
        })
        .collect();

    // Node 0's publication, as its state machine produces it from these inputs.
    let mut board_inputs: Vec<Input> = deals.clone();
    board_inputs.extend(contributions.iter().cloned().map(Input::BoardPost));
    board_inputs.extend(acks.iter().cloned());
    board_inputs.extend([Input::Deadline, Input::Deadline]);
    let mut my_publication = None;
    for input in board_inputs {
        for a in me.handle(input) {
            if let Action::Post(p) = a {
                my_publication = Some(p);
            }
        }
    }

    // Everyone acks every dealer: the aggregate of all n ack signatures on dealer d's payload
    // is the signature under the sum of all identity secret keys.
    let key_sum: Scalar = identities
        .iter()
        .map(|k| {
            Option::<Scalar>::from(Scalar::from_bytes_be(&k.secret_bytes())).expect("valid key")
        })
        .sum();
    let summed = blst::min_sig::SecretKey::from_bytes(&key_sum.to_bytes_be()).unwrap();
    let all: Vec<u32> = (0..n as u32).collect();
    let mut publications = vec![my_publication.expect("node 0 published")];
    publications.extend(
        (1..n)
            .into_par_iter()
            .map(|d| {
                let payload = ack_payload(&session, d as u32, &hashes[d]);
                let agg = summed.sign(&Purpose::Ack.digest(&payload), SIG_DST, &[]);
                let post = Post::Publication(Publication::<C> {
                    session,
                    attempt: 0,
                    dealer: d as u32,
                    commitment_hash: hashes[d],
                    acks: all.clone(),
                    ack_signature: Some(IdentitySignature(agg.to_bytes())),
                    reveals: Vec::new(),
                });
                let signature = identities[d].sign(Purpose::Post, &post.signed_payload());
                SignedPost { post, signature }.encode()
            })
            .collect::<Vec<_>>(),
    );
    Setup {
        config,
        identity: identities[0].clone(),
        my_seed,
        deals,
        acks,
        contributions,
        publications,
    }
}

/// Node 0's whole view change (see the module docs); returns its partial signature on the
/// magic block and whether its share matches its public key share.
fn whole_node(s: &Setup) -> (tbls::PartialSignature<MinPk>, bool) {
    whole_node_marked(s, &mut |_| {})
}

/// Process CPU time (user + system, all threads) in seconds, from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of the file (utime, stime) are 11 and 12 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

/// [`whole_node`], calling `mark` after each step with the step's name.
fn whole_node_marked(
    s: &Setup,
    mark: &mut dyn FnMut(&'static str),
) -> (tbls::PartialSignature<MinPk>, bool) {
    let ceremony: Arc<Ceremony<C>> = Ceremony::new(s.config.clone()).unwrap();
    let mut node = AckRevealParticipant::new(
        ceremony,
        s.identity.clone(),
        EncryptionSecretKey::from_seed(&seed_of(0)),
        None,
        s.my_seed,
    )
    .unwrap();
    mark("ceremony set-up");
    let mut sink = node.handle(Input::Start);
    mark("deal");
    for deal in &s.deals {
        sink.extend(node.handle(deal.clone()));
    }
    mark("receive deals");
    sink.extend(node.handle_board_posts(&s.contributions));
    mark("contributions + share checks + acks");
    for ack in &s.acks {
        sink.extend(node.handle(ack.clone()));
    }
    sink.extend(node.handle(Input::Deadline));
    sink.extend(node.handle(Input::Deadline));
    mark("receive acks + publish");
    sink.extend(node.handle_board_posts(&s.publications));
    mark("publications");
    let done = node.handle(Input::Deadline);
    mark("finalize");
    std::hint::black_box(sink);
    let out = done
        .into_iter()
        .find_map(|a| match a {
            Action::Finished(out) => Some(out),
            _ => None,
        })
        .expect("ceremony succeeds");
    let share: &Secret<Scalar> = out.secret_share.as_ref().expect("a player has a share");
    let index = out.player_index.expect("a player has an index") as usize;
    let ok = share_matches::<C>(share.expose(), &out.public.public_shares[index]);
    let block_hash = tagged_hash(
        "keyquorum/bench/magic-block",
        &[&C::point_bytes(&out.public.group_key)],
    );
    let x = node.board().ceremony().player_indices()[index];
    let partial = tbls::partial_sign::<MinPk>(share, x, &block_hash);
    mark("sign magic block");
    (partial, ok)
}

fn bench_node(c: &mut Criterion) {
    let mut g = c.benchmark_group("dkg_per_node");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    for n in sizes() {
        let started = std::time::Instant::now();
        let s = setup(n);
        eprintln!("keyquorum set-up n={n}: {:.1?}", started.elapsed());
        for threads in thread_counts() {
            // Named so that a profiler can tell the node's threads from the set-up's.
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("kq-node-{i}"))
                .build()
                .unwrap();
            for _pass in 0..phase_passes() {
                // CPU seconds (all threads) and wall time per step, a guide to where the time goes.
                let mut last = cpu_seconds();
                let wall = std::time::Instant::now();
                let mut last_wall = wall;
                pool.install(|| {
                    whole_node_marked(&s, &mut |step| {
                        let now = cpu_seconds();
                        eprintln!(
                            "n={n} threads={threads} {step}: {:.2} s CPU, {:.2?} wall",
                            now - last,
                            last_wall.elapsed()
                        );
                        last = now;
                        last_wall = std::time::Instant::now();
                    })
                });
                eprintln!("n={n} threads={threads} wall {:.2?}", wall.elapsed());
            }
            let (partial, ok) = pool.install(|| whole_node(&s));
            assert!(ok, "the share matches its public key share");
            assert_eq!(partial, pool.install(|| whole_node(&s)).0, "deterministic");
            g.bench_with_input(
                BenchmarkId::new(format!("keyquorum_whole_node_bls12381_{threads}t"), n),
                &n,
                |b, _| b.iter(|| pool.install(|| whole_node(&s))),
            );
        }
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

/// Which peers run (`KQ_PEERS`, comma-separated among `commonware` and `frost`; default both).
fn peer_enabled(name: &str) -> bool {
    std::env::var("KQ_PEERS")
        .map(|v| v.split(',').any(|p| p.trim() == name))
        .unwrap_or(true)
}

/// The same per-participant work by the best peers, in the same run: commonware-cryptography's
/// BLS12-381 Joint-Feldman DKG and frost-secp256k1's DKG (see `crates/bench`), one thread;
/// commonware also with its `Rayon` strategy at every other thread count of `KQ_BENCH_THREADS`.
fn peers(c: &mut Criterion) {
    use keyquorum_bench::{commonware_dkg, default_threshold, frost_dkg};
    let mut g = c.benchmark_group("dkg_per_node");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    for n in sizes().into_iter().filter(|n| *n <= peer_max_n()) {
        let t = default_threshold(n);
        if peer_enabled("commonware") {
            let setup = commonware_dkg::setup(n, t, 1);
            for threads in thread_counts() {
                if threads == 1 {
                    // Its `Sequential` strategy, the library's default.
                    g.bench_with_input(
                        BenchmarkId::new("commonware_bls12381_minpk", n),
                        &n,
                        |b, _| b.iter(|| commonware_dkg::run_one_participant(&setup)),
                    );
                    continue;
                }
                // Its `Rayon` strategy on a pool of `threads`, for the ratio at equal cores.
                let strategy = commonware_parallel::Rayon::new(
                    std::num::NonZeroUsize::new(threads).expect("thread counts are positive"),
                )
                .expect("a rayon pool");
                let result = commonware_dkg::run_one_participant_with(&setup, &strategy);
                commonware_dkg::check(&setup, &result);
                g.bench_with_input(
                    BenchmarkId::new(format!("commonware_bls12381_minpk_{threads}t"), n),
                    &n,
                    |b, _| b.iter(|| commonware_dkg::run_one_participant_with(&setup, &strategy)),
                );
            }
        }
        if peer_enabled("frost") {
            let setup = frost_dkg::setup(n, t, 1);
            g.bench_with_input(BenchmarkId::new("frost_secp256k1", n), &n, |b, _| {
                b.iter(|| frost_dkg::run_one_participant(&setup))
            });
        }
    }
    g.finish();
}

fn per_node(c: &mut Criterion) {
    bench_node(c);
    peers(c);
}

criterion_group!(benches, per_node);
criterion_main!(benches);
