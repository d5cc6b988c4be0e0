//! Threshold BLS end to end, in both layouts: any `t` of `n` partial signatures combine to the
//! one signature of the shared key, which verifies with our `verify` and with `blst`'s ordinary
//! (non-threshold) verification for the same ciphersuite; `t - 1` partials do not suffice; bad
//! partials are rejected and named; malformed inputs are refused.
//!
//! Property tests run with a fixed proptest seed and no failure persistence, so every run
//! explores the same cases.

use blst::BLST_ERROR;
use blstrs::Scalar;
use group::Curve as _;
use group::Group;
use group::prime::PrimeCurveAffine;
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk, MinSig, PartialSignature, PublicKey, Variant};
use keyquorum_crypto::{CryptoError, Curve, DecodeError};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// `blst`'s own implementation of the same ciphersuite, as an independent reference.
trait Reference: Variant {
    /// IETF `Verify` with subgroup checks and key validation, on compressed encodings.
    fn blst_verify(pk: &[u8], msg: &[u8], sig: &[u8]) -> bool;
    /// `blst` signing of `msg` under `dst` with a big-endian secret key.
    fn blst_sign(sk: &[u8; 32], msg: &[u8], dst: &[u8]) -> Vec<u8>;
}

impl Reference for MinPk {
    fn blst_verify(pk: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        let (Ok(pk), Ok(sig)) = (
            blst::min_pk::PublicKey::from_bytes(pk),
            blst::min_pk::Signature::from_bytes(sig),
        ) else {
            return false;
        };
        sig.verify(true, msg, Self::SIG_DST, &[], &pk, true) == BLST_ERROR::BLST_SUCCESS
    }

    fn blst_sign(sk: &[u8; 32], msg: &[u8], dst: &[u8]) -> Vec<u8> {
        let sk = blst::min_pk::SecretKey::from_bytes(sk).expect("valid key");
        sk.sign(msg, dst, &[]).to_bytes().to_vec()
    }
}

impl Reference for MinSig {
    fn blst_verify(pk: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        let (Ok(pk), Ok(sig)) = (
            blst::min_sig::PublicKey::from_bytes(pk),
            blst::min_sig::Signature::from_bytes(sig),
        ) else {
            return false;
        };
        sig.verify(true, msg, Self::SIG_DST, &[], &pk, true) == BLST_ERROR::BLST_SUCCESS
    }

    fn blst_sign(sk: &[u8; 32], msg: &[u8], dst: &[u8]) -> Vec<u8> {
        let sk = blst::min_sig::SecretKey::from_bytes(sk).expect("valid key");
        sk.sign(msg, dst, &[]).to_bytes().to_vec()
    }
}

/// A `t`-of-`n` sharing of a random secret key at indices `1..=n`.
struct Dealt<V: Variant> {
    secret: Secret<Scalar>,
    group_pk: PublicKey<V>,
    indices: Vec<Scalar>,
    shares: Vec<Secret<Scalar>>,
    public_shares: Vec<PublicKey<V>>,
}

fn deal<V: Variant>(t: usize, n: usize, rng: &mut ChaCha20Rng) -> Dealt<V> {
    let f = Polynomial::<Scalar>::random(t - 1, None, rng);
    let secret = Secret::new(f.constant());
    let indices: Vec<Scalar> = (1..=n as u64).map(Scalar::from).collect();
    let shares: Vec<Secret<Scalar>> = indices.iter().map(|x| Secret::new(f.evaluate(x))).collect();
    let public_shares = shares.iter().map(tbls::public_key::<V>).collect();
    Dealt {
        group_pk: tbls::public_key::<V>(&secret),
        secret,
        indices,
        shares,
        public_shares,
    }
}

fn partials<V: Variant>(d: &Dealt<V>, msg: &[u8]) -> Vec<PartialSignature<V>> {
    d.shares
        .iter()
        .zip(&d.indices)
        .map(|(s, i)| tbls::partial_sign::<V>(s, *i, msg))
        .collect()
}

/// A uniformly random ordering of `0..n` (Fisher-Yates; the modulo bias is irrelevant here).
fn shuffled(n: usize, rng: &mut ChaCha20Rng) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

fn pick<V: Variant>(all: &[PartialSignature<V>], order: &[usize]) -> Vec<PartialSignature<V>> {
    order.iter().map(|&i| all[i]).collect()
}

fn any_t_partials_combine<V: Reference>(seed: u64, n: usize, t: usize) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let d = deal::<V>(t, n, &mut rng);
    let msg = format!("checkpoint {seed}").into_bytes();
    let all = partials(&d, &msg);

    // Two independent choices of t signers, in arbitrary order.
    let first = pick(&all, &shuffled(n, &mut rng)[..t]);
    let second = pick(&all, &shuffled(n, &mut rng)[..t]);
    let sig1 = tbls::combine::<V>(t, &first).unwrap();
    let sig2 = tbls::combine::<V>(t, &second).unwrap();
    assert_eq!(sig1, sig2);
    assert_eq!(sig1, tbls::sign::<V>(&d.secret, &msg));

    assert_eq!(tbls::verify::<V>(&d.group_pk, &msg, &sig1), Ok(()));
    let pk_bytes = V::Public::point_bytes(&d.group_pk);
    let sig_bytes = V::Signature::point_bytes(&sig1);
    assert!(V::blst_verify(&pk_bytes, &msg, &sig_bytes));
    assert!(!V::blst_verify(&pk_bytes, b"another message", &sig_bytes));

    // The same signature as blst produces with the reconstructed key.
    let sk_bytes = V::Public::encode_scalar(d.secret.expose());
    assert_eq!(V::blst_sign(&sk_bytes, &msg, V::SIG_DST), sig_bytes);

    assert_eq!(
        tbls::batch_partial_verify::<V, _>(&d.public_shares, &msg, &all, &mut rng),
        Ok(())
    );

    // t - 1 partials are refused, and interpolating them anyway does not give the signature.
    let short = &first[..t - 1];
    assert_eq!(
        tbls::combine::<V>(t, short),
        Err(CryptoError::NotEnough {
            needed: t,
            got: t - 1
        })
    );
    if t >= 2 {
        let wrong = tbls::combine::<V>(t - 1, short).unwrap();
        assert_ne!(wrong, sig1);
        assert_eq!(
            tbls::verify::<V>(&d.group_pk, &msg, &wrong),
            Err(CryptoError::BadSignature)
        );
    }
}

/// How a partial signature gets corrupted.
fn tamper<V: Variant>(
    d: &Dealt<V>,
    pos: usize,
    p: &PartialSignature<V>,
    how: u64,
    msg: &[u8],
) -> PartialSignature<V> {
    let n = d.shares.len();
    let sig = match how % 3 {
        // A valid signature by the right share, on another message.
        0 => tbls::sign::<V>(&d.shares[pos], &[msg, b"!"].concat()),
        // Another signer's share on the right message (or a doubled share if alone).
        1 if n > 1 => tbls::sign::<V>(&d.shares[(pos + 1) % n], msg),
        1 => (p.sig.to_curve().double()).to_affine(),
        // An arbitrary valid group element added on.
        _ => (p.sig.to_curve() + <V::Signature as Curve>::Point::generator()).to_affine(),
    };
    PartialSignature {
        index: p.index,
        sig,
    }
}

fn bad_partials_are_named<V: Variant>(seed: u64, n: usize, bad_mask: u32, kinds: u64) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let t = n.div_ceil(2);
    let d = deal::<V>(t, n, &mut rng);
    let msg = b"epoch 7 randomness".as_slice();
    let mut all = partials(&d, msg);
    let bad: Vec<usize> = (0..n).filter(|i| bad_mask & (1 << i) != 0).collect();
    for (k, &pos) in bad.iter().enumerate() {
        all[pos] = tamper(&d, pos, &all[pos], kinds >> (2 * (k % 32)), msg);
        assert_eq!(
            tbls::partial_verify::<V>(&d.public_shares[pos], msg, &all[pos]),
            Err(CryptoError::BadSignature)
        );
    }
    for i in (0..n).filter(|i| !bad.contains(i)) {
        assert_eq!(
            tbls::partial_verify::<V>(&d.public_shares[i], msg, &all[i]),
            Ok(())
        );
    }
    let verdict = tbls::batch_partial_verify::<V, _>(&d.public_shares, msg, &all, &mut rng);
    if bad.is_empty() {
        assert_eq!(verdict, Ok(()));
    } else {
        assert_eq!(verdict, Err(bad.clone()));
    }

    // The honest partials, if enough, still combine to the group signature.
    let good: Vec<PartialSignature<V>> = (0..n)
        .filter(|i| !bad.contains(i))
        .map(|i| all[i])
        .collect();
    if good.len() >= t {
        let sig = tbls::combine::<V>(t, &good).unwrap();
        assert_eq!(tbls::verify::<V>(&d.group_pk, msg, &sig), Ok(()));
    }
}

fn config(seed: u64, cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// `(n, t)` with `1 <= t <= n <= 20`.
fn threshold_and_size() -> impl Strategy<Value = (usize, usize)> {
    (1usize..=20).prop_flat_map(|n| (Just(n), 1..=n))
}

proptest! {
    #![proptest_config(config(0x6b71_0001, 32))]

    #[test]
    fn any_t_partials_combine_min_pk(seed in any::<u64>(), (n, t) in threshold_and_size()) {
        any_t_partials_combine::<MinPk>(seed, n, t);
    }

    #[test]
    fn any_t_partials_combine_min_sig(seed in any::<u64>(), (n, t) in threshold_and_size()) {
        any_t_partials_combine::<MinSig>(seed, n, t);
    }

    #[test]
    fn bad_partials_are_named_min_pk(
        seed in any::<u64>(),
        n in 1usize..=20,
        mask in any::<u32>(),
        kinds in any::<u64>(),
    ) {
        bad_partials_are_named::<MinPk>(seed, n, mask, kinds);
    }

    #[test]
    fn bad_partials_are_named_min_sig(
        seed in any::<u64>(),
        n in 1usize..=20,
        mask in any::<u32>(),
        kinds in any::<u64>(),
    ) {
        bad_partials_are_named::<MinSig>(seed, n, mask, kinds);
    }
}

/// The extremes the random cases may miss: 1-of-1, n-of-n and 1-of-n at n = 20.
#[test]
fn edge_thresholds() {
    for (n, t) in [(1, 1), (20, 20), (20, 1), (2, 2)] {
        any_t_partials_combine::<MinPk>(1000 + n as u64, n, t);
        any_t_partials_combine::<MinSig>(2000 + n as u64, n, t);
    }
    // Every partial bad, and exactly one bad among many.
    bad_partials_are_named::<MinPk>(3, 20, (1 << 20) - 1, 0x1234_5678);
    bad_partials_are_named::<MinSig>(4, 20, 1 << 13, 2);
}

fn duplicate_and_zero_indices_are_refused<V: Variant>() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let d = deal::<V>(3, 5, &mut rng);
    let all = partials(&d, b"m");
    let dup = [all[0], all[1], all[0]];
    assert_eq!(tbls::combine::<V>(3, &dup), Err(CryptoError::BadIndices));
    // A duplicate beyond the first `threshold` partials is refused too.
    let dup_late = [all[0], all[1], all[2], all[1]];
    assert_eq!(
        tbls::combine::<V>(3, &dup_late),
        Err(CryptoError::BadIndices)
    );
    // Same index, different signature: still a duplicate.
    let mut forged = all[1];
    forged.sig = all[2].sig;
    assert_eq!(
        tbls::combine::<V>(3, &[all[0], all[1], forged]),
        Err(CryptoError::BadIndices)
    );
    let mut zero = all[2];
    zero.index = Scalar::from(0u64);
    assert_eq!(
        tbls::combine::<V>(3, &[all[0], all[1], zero]),
        Err(CryptoError::BadIndices)
    );
    assert_eq!(
        tbls::combine::<V>(0, &all),
        Err(CryptoError::BadThreshold { threshold: 0, n: 5 })
    );
}

#[test]
fn duplicate_and_zero_indices_are_refused_both_layouts() {
    duplicate_and_zero_indices_are_refused::<MinPk>();
    duplicate_and_zero_indices_are_refused::<MinSig>();
}

fn identity_public_key_is_refused<V: Variant>() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let d = deal::<V>(2, 3, &mut rng);
    let msg = b"m";
    let all = partials(&d, msg);
    let sig = tbls::combine::<V>(2, &all).unwrap();
    let identity = PublicKey::<V>::identity();
    let refused = Err(CryptoError::Decode(DecodeError::Identity));
    assert_eq!(tbls::verify::<V>(&identity, msg, &sig), refused);
    assert_eq!(tbls::partial_verify::<V>(&identity, msg, &all[0]), refused);
    assert_eq!(
        tbls::verify_pop::<V>(&identity, &tbls::proof_of_possession::<V>(&d.secret)),
        refused
    );
    // The identity key with the identity signature: the classic forgery is refused.
    let identity_sig = tbls::Signature::<V>::identity();
    assert_eq!(tbls::verify::<V>(&identity, msg, &identity_sig), refused);
    assert_eq!(
        tbls::verify::<V>(&d.group_pk, msg, &identity_sig),
        Err(CryptoError::BadSignature)
    );
    // Decoding refuses it before it gets anywhere.
    assert_eq!(
        tbls::decode_public_key::<V>(&V::Public::point_bytes(&identity)),
        Err(CryptoError::Decode(DecodeError::Identity))
    );
    // In a batch, an identity public share marks its partial bad without hiding the others.
    let mut shares = d.public_shares.clone();
    shares[1] = identity;
    assert_eq!(
        tbls::batch_partial_verify::<V, _>(&shares, msg, &all, &mut rng),
        Err(vec![1])
    );
    // A partial with no public share at its position is bad too.
    assert_eq!(
        tbls::batch_partial_verify::<V, _>(&d.public_shares[..2], msg, &all, &mut rng),
        Err(vec![2])
    );
}

#[test]
fn identity_public_key_is_refused_both_layouts() {
    identity_public_key_is_refused::<MinPk>();
    identity_public_key_is_refused::<MinSig>();
}

/// Our proof of possession is the IETF `PopProve`: blst signing the compressed public key under
/// the POP DST gives the same bytes.
fn pop_matches_reference<V: Reference>() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    for _ in 0..4 {
        let sk = Secret::new(V::Public::random_scalar(&mut rng));
        let pk = tbls::public_key::<V>(&sk);
        let pop = tbls::proof_of_possession::<V>(&sk);
        let reference = V::blst_sign(
            &V::Public::encode_scalar(sk.expose()),
            &V::Public::point_bytes(&pk),
            V::POP_DST,
        );
        assert_eq!(V::Signature::point_bytes(&pop), reference);
        assert_eq!(tbls::verify_pop::<V>(&pk, &pop), Ok(()));
        let other = Secret::new(V::Public::random_scalar(&mut rng));
        assert_eq!(
            tbls::verify_pop::<V>(&tbls::public_key::<V>(&other), &pop),
            Err(CryptoError::BadProofOfPossession)
        );
    }
}

#[test]
fn pop_matches_reference_both_layouts() {
    pop_matches_reference::<MinPk>();
    pop_matches_reference::<MinSig>();
}

#[test]
fn partial_signatures_survive_the_wire() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let d = deal::<MinSig>(3, 4, &mut rng);
    let all = partials(&d, b"m");
    let decoded: Vec<PartialSignature<MinSig>> = all
        .iter()
        .map(|p| PartialSignature::from_bytes(&p.to_bytes()).unwrap())
        .collect();
    assert_eq!(decoded, all);
    let mut bytes = all[0].to_bytes();
    bytes.pop();
    assert!(PartialSignature::<MinSig>::from_bytes(&bytes).is_err());
}
