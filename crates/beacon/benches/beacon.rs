//! Criterion benchmark of one beacon round at the end of the engine: combine `t` partial
//! signatures (`pedersen-bls-chained`, signatures in G2) and verify the result with the same
//! verifier drand's rounds go through. Single thread. `t = floor(2n/3) + 1`; set
//! `KQ_BENCH_NS` (comma-separated) to choose the sizes, default `64,256,1024`.

use blstrs::Scalar;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use keyquorum_beacon::scheme::round_message;
use keyquorum_beacon::{ChainInfo, ChainLink, PedersenBlsChained, Round, SchemeId, verify_round};
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, PartialSignature};
use keyquorum_crypto::{Bls12381G1, Bls12381G2, Curve};
use rand_core::SeedableRng;

type S = PedersenBlsChained;

fn sizes() -> Vec<usize> {
    std::env::var("KQ_BENCH_NS")
        .unwrap_or_else(|_| "64,256,1024".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn combine_and_verify(c: &mut Criterion) {
    let mut g = c.benchmark_group("beacon_round_combine_verify");
    g.sample_size(10);
    for n in sizes() {
        let t = 2 * n / 3 + 1;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(n as u64);
        let poly = Polynomial::<Scalar>::random(t - 1, None, &mut rng);
        let key = tbls::public_key::<S>(&Secret::new(poly.constant()));
        let info = ChainInfo::keyquorum(
            SchemeId::PedersenBlsChained,
            &Bls12381G1::point_bytes(&key),
            3,
            1_700_000_000,
            "bench",
            ChainLink {
                magic_block_hash: [7; 32],
                previous_chain_hash: None,
            },
        )
        .unwrap();
        // Round 2 of the chain, chained to some 96-byte previous signature.
        let previous = vec![0xa5u8; 96];
        let msg = round_message(SchemeId::PedersenBlsChained, &previous, 2);
        // The last t members sign (full-size Lagrange work, not the first indices).
        let partials: Vec<PartialSignature<S>> = (n - t + 1..=n)
            .map(|i| {
                let x = Scalar::from(i as u64);
                tbls::partial_sign::<S>(&Secret::new(poly.evaluate(&x)), x, &msg)
            })
            .collect();
        g.bench_with_input(BenchmarkId::new(format!("n{n}"), t), &t, |b, &t| {
            b.iter(|| {
                let sig = tbls::combine::<S>(t, &partials).unwrap();
                let round = Round {
                    round: 2,
                    signature: Bls12381G2::point_bytes(&sig),
                    previous_signature: Some(previous.clone()),
                };
                verify_round(&info, &round).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, combine_and_verify);
criterion_main!(benches);
