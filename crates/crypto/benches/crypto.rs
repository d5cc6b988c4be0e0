//! Criterion benchmarks of the crypto core (single thread):
//! - verifying all `n` dealers' shares for one participant, one by one vs batched;
//! - computing all `n` public key shares from a commitment, one by one vs one FFT;
//! - recovering a threshold signature from `t` partials;
//! - multiplying the G1 generator by one scalar: the constant-time comb that
//!   `mul_generator_secret` uses, blst's constant-time GLV multiplication, and the variable-time
//!   comb for public scalars.
//!
//! `t = floor(2n/3) + 1`. Verification uses a full-size participant index. Set `KQ_BENCH_NS` (comma-separated) to choose the sizes; default
//! `64,256,1024`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ff::Field;
use keyquorum_crypto::commit::{FeldmanCommitment, batch_verify_feldman};
use keyquorum_crypto::poly::{Domain, Polynomial};
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk, PartialSignature};
use keyquorum_crypto::{Bls12381G1, Curve};
use rand_core::SeedableRng;

type C = Bls12381G1;
type F = <C as Curve>::Scalar;

fn sizes() -> Vec<usize> {
    std::env::var("KQ_BENCH_NS")
        .unwrap_or_else(|_| "64,256,1024".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn threshold(n: usize) -> usize {
    2 * n / 3 + 1
}

fn verify_shares(c: &mut Criterion) {
    let mut g = c.benchmark_group("verify_all_dealers_shares");
    g.sample_size(10);
    for n in sizes() {
        let t = threshold(n);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(n as u64);
        // A full-size index (as derived from a public key): small sequential indices make the
        // powers x^k sparse and flatter the one-by-one path.
        let x = keyquorum_crypto::index::from_public_key::<C>(b"participant");
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            let f = Polynomial::<F>::random(t - 1, None, &mut rng);
            items.push((FeldmanCommitment::<C>::from_polynomial(&f), f.evaluate(&x)));
        }
        let refs: Vec<(&FeldmanCommitment<C>, F)> = items.iter().map(|(c, s)| (c, *s)).collect();
        g.bench_with_input(BenchmarkId::new("one_by_one", n), &n, |b, _| {
            b.iter(|| assert!(refs.iter().all(|(c, s)| c.verify_share(&x, s))))
        });
        g.bench_with_input(BenchmarkId::new("batched", n), &n, |b, _| {
            b.iter(|| assert!(batch_verify_feldman(&x, &refs, &mut rng).is_ok()))
        });
    }
    g.finish();
}

fn public_key_shares(c: &mut Criterion) {
    let mut g = c.benchmark_group("all_public_key_shares");
    g.sample_size(10);
    for n in sizes() {
        let t = threshold(n);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7 + n as u64);
        let f = Polynomial::<F>::random(t - 1, None, &mut rng);
        let commitment = FeldmanCommitment::<C>::from_polynomial(&f);
        let domain = Domain::<F>::new(n).unwrap();
        let roots = domain.elements(n);
        g.bench_with_input(BenchmarkId::new("one_by_one", n), &n, |b, _| {
            b.iter(|| commitment.public_key_shares(&roots))
        });
        g.bench_with_input(BenchmarkId::new("fft", n), &n, |b, _| {
            b.iter(|| commitment.public_key_shares_fft(&domain, n).unwrap())
        });
    }
    g.finish();
}

fn recover_signature(c: &mut Criterion) {
    let mut g = c.benchmark_group("recover_threshold_signature");
    g.sample_size(20);
    for (n, t) in [
        (500usize, 333usize),
        (256, threshold(256)),
        (1024, threshold(1024)),
    ] {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        let f = Polynomial::<F>::random(t - 1, None, &mut rng);
        let msg = b"beacon round 42";
        let partials: Vec<PartialSignature<MinPk>> = (1..=n as u64)
            .take(t)
            .map(|i| {
                let x = F::from(i);
                tbls::partial_sign::<MinPk>(&Secret::new(f.evaluate(&x)), x, msg)
            })
            .collect();
        let group_key = C::mul_generator(&f.constant());
        let sig = tbls::combine::<MinPk>(t, &partials).unwrap();
        tbls::verify::<MinPk>(&group::Curve::to_affine(&group_key), msg, &sig).unwrap();
        g.bench_with_input(
            BenchmarkId::new("combine", format!("{n}/{t}")),
            &t,
            |b, _| b.iter(|| tbls::combine::<MinPk>(t, &partials).unwrap()),
        );
        let _ = F::ZERO;
    }
    g.finish();
}

fn generator_multiplication(c: &mut Criterion) {
    use group::Group;
    let mut g = c.benchmark_group("g1_generator_mul");
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let s = F::random(&mut rng);
    g.bench_function("secret_comb", |b| b.iter(|| C::mul_generator_secret(&s)));
    g.bench_function("blst_glv", |b| {
        b.iter(|| blstrs::G1Projective::generator() * s)
    });
    g.bench_function("public_vartime_comb", |b| {
        // Public scalar: a benchmark's random value.
        b.iter(|| C::mul_generator_public_vartime(&s))
    });
    g.finish();
}

criterion_group!(
    benches,
    verify_shares,
    public_key_shares,
    recover_signature,
    generator_multiplication
);
criterion_main!(benches);
