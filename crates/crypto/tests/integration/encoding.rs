//! Encoding round-trips and rejection of every kind of bad encoding, on all three groups.

use group::Curve as _;
use group::Group;
use group::prime::PrimeCurveAffine;
use keyquorum_crypto::{Bls12381G1, Bls12381G2, Curve, DecodeError, Secp256k1};
use proptest::prelude::*;
use rand_core::SeedableRng;

fn random_point<C: Curve>(seed: u64) -> C::Affine {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    (C::Point::generator() * C::random_scalar(&mut rng)).to_affine()
}

fn round_trips<C: Curve>(seed: u64) {
    let p = random_point::<C>(seed);
    let bytes = C::point_bytes(&p);
    assert_eq!(bytes.len(), C::POINT_LEN);
    assert_eq!(C::decode_point(&bytes).unwrap(), p);
    assert_eq!(C::decode_point_nonzero(&bytes).unwrap(), p);
    let mut unc = Vec::new();
    C::encode_point_uncompressed(&p, &mut unc);
    assert_eq!(unc.len(), C::UNCOMPRESSED_LEN);
    assert_eq!(C::decode_point_unchecked_subgroup(&unc).unwrap(), p);
    // Identity: encodable, decodable, refused where it is not allowed.
    let id = C::Affine::identity();
    let idb = C::point_bytes(&id);
    assert_eq!(C::decode_point(&idb).unwrap(), id);
    assert_eq!(C::decode_point_nonzero(&idb), Err(DecodeError::Identity));
    // Scalars.
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed ^ 0x5555);
    let s = C::random_scalar(&mut rng);
    assert_eq!(C::decode_scalar(&C::encode_scalar(&s)).unwrap(), s);
}

fn rejects_lengths<C: Curve>(seed: u64) {
    let p = random_point::<C>(seed);
    let bytes = C::point_bytes(&p);
    for len in [0, 1, C::POINT_LEN - 1, C::POINT_LEN + 1] {
        let mut b = bytes.clone();
        b.resize(len, 0);
        assert!(
            matches!(C::decode_point(&b), Err(DecodeError::Length { .. })),
            "len {len}"
        );
    }
    assert!(matches!(
        C::decode_scalar(&[0u8; 31]),
        Err(DecodeError::Length { .. })
    ));
    assert!(matches!(
        C::decode_scalar(&[0u8; 33]),
        Err(DecodeError::Length { .. })
    ));
    // All-ones is above both group orders.
    assert_eq!(
        C::decode_scalar(&[0xff; 32]),
        Err(DecodeError::NonCanonicalScalar)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn round_trip_all_groups(seed in any::<u64>()) {
        round_trips::<Bls12381G1>(seed);
        round_trips::<Bls12381G2>(seed);
        round_trips::<Secp256k1>(seed);
        rejects_lengths::<Bls12381G1>(seed);
        rejects_lengths::<Bls12381G2>(seed);
        rejects_lengths::<Secp256k1>(seed);
    }

    /// Random bytes never panic a decoder, and whatever decodes re-encodes to the same bytes.
    #[test]
    fn random_bytes_decode_canonically_or_fail(
        b48 in proptest::collection::vec(any::<u8>(), 48),
        b96 in proptest::collection::vec(any::<u8>(), 96),
        b33 in proptest::collection::vec(any::<u8>(), 33),
        b65 in proptest::collection::vec(any::<u8>(), 65),
        b32 in proptest::collection::vec(any::<u8>(), 32),
    ) {
        if let Ok(p) = Bls12381G1::decode_point(&b48) { prop_assert_eq!(Bls12381G1::point_bytes(&p), b48.clone()); }
        if let Ok(p) = Bls12381G2::decode_point(&b96) { prop_assert_eq!(Bls12381G2::point_bytes(&p), b96.clone()); }
        if let Ok(p) = Secp256k1::decode_point(&b33) { prop_assert_eq!(Secp256k1::point_bytes(&p), b33.clone()); }
        let _ = Bls12381G1::decode_point_unchecked_subgroup(&b96);
        let _ = Secp256k1::decode_point_unchecked_subgroup(&b65);
        if let Ok(s) = Bls12381G1::decode_scalar(&b32) { prop_assert_eq!(Bls12381G1::encode_scalar(&s).to_vec(), b32.clone()); }
        if let Ok(s) = Secp256k1::decode_scalar(&b32) { prop_assert_eq!(Secp256k1::encode_scalar(&s).to_vec(), b32.clone()); }
    }

    /// Flipping a bit of a valid point gives an error or another valid canonical point, never a
    /// panic, and never the same point.
    #[test]
    fn bit_flips_are_detected(seed in any::<u64>(), bit in 0usize..(33 * 8)) {
        let p = random_point::<Secp256k1>(seed);
        let mut b = Secp256k1::point_bytes(&p);
        b[bit / 8] ^= 1 << (bit % 8);
        if let Ok(q) = Secp256k1::decode_point(&b) { prop_assert_ne!(q, p); }
        let p = random_point::<Bls12381G1>(seed);
        let mut b = Bls12381G1::point_bytes(&p);
        let bit = bit % (48 * 8);
        b[bit / 8] ^= 1 << (bit % 8);
        if let Ok(q) = Bls12381G1::decode_point(&b) { prop_assert_ne!(q, p); }
    }
}

/// Uncompressed encoding of a point on the BLS12-381 G1 curve outside the prime-order subgroup:
/// the first x = 0, 1, 2, ... with x^3 + 4 a square gives one (G1 is a tiny fraction of E(Fp)).
fn g1_point_outside_subgroup() -> [u8; 96] {
    use blst::*;
    for x in 0u64.. {
        // SAFETY: plain field arithmetic on stack values.
        unsafe {
            let mut fx = blst_fp::default();
            blst_fp_from_uint64(&mut fx, [x, 0, 0, 0, 0, 0].as_ptr());
            let mut four = blst_fp::default();
            blst_fp_from_uint64(&mut four, [4u64, 0, 0, 0, 0, 0].as_ptr());
            let mut rhs = blst_fp::default();
            blst_fp_sqr(&mut rhs, &fx);
            let r2 = rhs;
            blst_fp_mul(&mut rhs, &r2, &fx);
            let r3 = rhs;
            blst_fp_add(&mut rhs, &r3, &four);
            let mut y = blst_fp::default();
            if blst_fp_sqrt(&mut y, &rhs) {
                let p = blst_p1_affine { x: fx, y };
                assert!(blst_p1_affine_on_curve(&p));
                if !blst_p1_affine_in_g1(&p) {
                    let mut out = [0u8; 96];
                    blst_p1_affine_serialize(out.as_mut_ptr(), &p);
                    return out;
                }
            }
        }
    }
    unreachable!()
}

#[test]
fn g1_rejects_points_outside_the_subgroup() {
    let unc = g1_point_outside_subgroup();
    // The bulk decoder accepts it (on the curve) and leaves the subgroup check to the caller.
    let q = Bls12381G1::decode_point_unchecked_subgroup(&unc).unwrap();
    assert!(!Bls12381G1::in_subgroup(&q));
    let compressed = q.to_compressed();
    assert_eq!(
        Bls12381G1::decode_point(&compressed),
        Err(DecodeError::NotInSubgroup)
    );
}
#[test]
fn rejects_points_off_the_curve() {
    // Uncompressed G1 with y perturbed: off the curve.
    let p = random_point::<Bls12381G1>(3);
    let mut unc = Vec::new();
    Bls12381G1::encode_point_uncompressed(&p, &mut unc);
    unc[95] ^= 1;
    assert_eq!(
        Bls12381G1::decode_point_unchecked_subgroup(&unc),
        Err(DecodeError::NotOnCurve)
    );
    // secp256k1: x = 5 has no square root of x^3 + 7 (7 + 125 = 132 is a non-residue mod p).
    let mut b = [0u8; 33];
    b[0] = 0x02;
    b[32] = 5;
    let r = Secp256k1::decode_point(&b);
    assert!(r.is_err(), "{r:?}");
    // Uncompressed secp256k1 with a perturbed y.
    let p = random_point::<Secp256k1>(4);
    let mut unc = Vec::new();
    Secp256k1::encode_point_uncompressed(&p, &mut unc);
    unc[64] ^= 1;
    assert!(Secp256k1::decode_point_unchecked_subgroup(&unc).is_err());
    // A bad prefix byte.
    let mut c = Secp256k1::point_bytes(&p);
    c[0] = 0x05;
    assert_eq!(
        Secp256k1::decode_point(&c),
        Err(DecodeError::NonCanonicalPoint)
    );
}

#[test]
fn rejects_non_canonical_field_elements_and_flags() {
    // G1 x-coordinate equal to the field modulus p (not reduced), with the compression flag set.
    let p_hex = "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab";
    let mut b = hex::decode(p_hex).unwrap();
    b[0] |= 0x80;
    assert!(Bls12381G1::decode_point(&b).is_err());
    // Infinity flag with non-zero payload.
    let mut inf = vec![0u8; 48];
    inf[0] = 0xc0;
    inf[47] = 1;
    assert!(Bls12381G1::decode_point(&inf).is_err());
    // Missing compression flag on a compressed-length encoding.
    let p = random_point::<Bls12381G1>(8);
    let mut c = Bls12381G1::point_bytes(&p);
    c[0] &= 0x7f;
    assert!(Bls12381G1::decode_point(&c).is_err());
    // Group orders as scalars are rejected (equal to the modulus, not below).
    let r_bls = "73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001";
    assert_eq!(
        Bls12381G1::decode_scalar(&hex::decode(r_bls).unwrap()),
        Err(DecodeError::NonCanonicalScalar)
    );
    let r_k = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
    assert_eq!(
        Secp256k1::decode_scalar(&hex::decode(r_k).unwrap()),
        Err(DecodeError::NonCanonicalScalar)
    );
    // order - 1 is fine.
    let mut rm1 = hex::decode(r_k).unwrap();
    rm1[31] -= 1;
    assert_eq!(
        Secp256k1::decode_scalar(&rm1).unwrap(),
        -<Secp256k1 as Curve>::Scalar::ONE
    );
}
