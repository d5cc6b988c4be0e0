//! Per-participant DKG cost of peer implementations.
//!
//! `KQ_BENCH_NS` (default "64,256") lists the ceremony sizes; the threshold is
//! `floor(2n/3) + 1`. Setup (all other participants' messages) runs outside the timed closure.
//! `KQ_BENCH_FROST_MAX_N` (default: no limit) skips FROST above that size.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use keyquorum_bench::{commonware_dkg, default_threshold, frost_dkg};

const SEED: u64 = 0x6b71_7065_6572;

fn sizes() -> Vec<usize> {
    let raw = std::env::var("KQ_BENCH_NS").unwrap_or_else(|_| "64,256".to_string());
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .unwrap_or_else(|_| panic!("KQ_BENCH_NS: bad size {s:?}"))
        })
        .collect()
}

fn frost_max_n() -> usize {
    std::env::var("KQ_BENCH_FROST_MAX_N")
        .ok()
        .map(|v| v.trim().parse().expect("KQ_BENCH_FROST_MAX_N: bad number"))
        .unwrap_or(usize::MAX)
}

fn peer_dkg_per_node(c: &mut Criterion) {
    let mut group = c.benchmark_group("peer_dkg_per_node");
    // Iterations take 0.1 s to several seconds: flat sampling keeps it at ~10 iterations
    // instead of the 55 that linear sampling would need for 10 samples.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));

    for n in sizes() {
        let t = default_threshold(n);

        let started = Instant::now();
        let setup = commonware_dkg::setup(n, t, SEED);
        eprintln!("commonware setup n={n} t={t}: {:.1?}", started.elapsed());
        commonware_dkg::check(&setup, &commonware_dkg::run_one_participant(&setup));
        group.bench_with_input(
            BenchmarkId::new("commonware_bls12381_minpk", n),
            &setup,
            |b, s| b.iter(|| black_box(commonware_dkg::run_one_participant(black_box(s)))),
        );
        drop(setup);

        if n > frost_max_n() {
            eprintln!("skipping frost_secp256k1/{n} (KQ_BENCH_FROST_MAX_N)");
            continue;
        }
        let started = Instant::now();
        let setup = frost_dkg::setup(n, t, SEED);
        eprintln!("frost setup n={n} t={t}: {:.1?}", started.elapsed());
        frost_dkg::check(&setup, &frost_dkg::run_one_participant(&setup));
        group.bench_with_input(BenchmarkId::new("frost_secp256k1", n), &setup, |b, s| {
            b.iter(|| black_box(frost_dkg::run_one_participant(black_box(s))))
        });
    }
    group.finish();
}

criterion_group!(benches, peer_dkg_per_node);
criterion_main!(benches);
