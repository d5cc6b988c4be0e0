//! BLS12-381 G1 and G2 on `blst` (through `blstrs` for the field and group arithmetic).
//!
//! Multi-scalar multiplication calls `blst`'s Pippenger directly on affine points, on the calling
//! thread: the caller decides about parallelism (see `msm_parallel`).

use std::sync::OnceLock;

use blst::{blst_p1, blst_p1_affine, blst_p2, blst_p2_affine, limb_t};
use blstrs::{G1Affine, G1Projective, G2Affine, G2Projective, Scalar};
use ff::PrimeField;
use group::Group;
use group::prime::PrimeCurveAffine;

use crate::error::DecodeError;
use crate::group::{Curve, expect_len};

/// RFC 9380 suite for hashing to G1.
pub const G1_SUITE: &str = "BLS12381G1_XMD:SHA-256_SSWU_RO_";
/// RFC 9380 suite for hashing to G2.
pub const G2_SUITE: &str = "BLS12381G2_XMD:SHA-256_SSWU_RO_";

/// Below this many points a windowed double-and-add per point beats Pippenger's set-up.
const PIPPENGER_MIN: usize = 8;

/// The BLS12-381 base field modulus, big-endian.
const P_BE: [u8; 48] = [
    0x1a, 0x01, 0x11, 0xea, 0x39, 0x7f, 0xe6, 0x9a, 0x4b, 0x1b, 0xa7, 0xb6, 0x43, 0x4b, 0xac, 0xd7,
    0x64, 0x77, 0x4b, 0x84, 0xf3, 0x85, 0x12, 0xbf, 0x67, 0x30, 0xd2, 0xa0, 0xf6, 0xb0, 0xf6, 0x24,
    0x1e, 0xab, 0xff, 0xfe, 0xb1, 0x53, 0xff, 0xff, 0xb9, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xaa, 0xab,
];

/// Reads a big-endian base-field element, rejecting values not below the modulus.
fn fp_from_be(bytes: &[u8]) -> Result<blst::blst_fp, DecodeError> {
    // Big-endian byte strings of equal length compare like the integers they encode.
    if bytes >= &P_BE[..] {
        return Err(DecodeError::NonCanonicalPoint);
    }
    let mut fp = blst::blst_fp::default();
    // SAFETY: `bytes` is 48 bytes long (checked by callers); the output is a stack value.
    unsafe { blst::blst_fp_from_bendian(&mut fp, bytes.as_ptr()) };
    Ok(fp)
}

/// Validates the flag bits of an uncompressed encoding; `Ok(true)` means the point at infinity.
fn uncompressed_flags(bytes: &[u8]) -> Result<bool, DecodeError> {
    let flags = bytes[0] & 0xe0;
    match flags {
        0x00 => Ok(false),
        0x40 if bytes[0] == 0x40 && bytes[1..].iter().all(|b| *b == 0) => Ok(true),
        _ => Err(DecodeError::NonCanonicalPoint),
    }
}

/// Uncompressed G1 decoding that checks the curve equation but not subgroup membership.
///
/// `blst`'s own deserializer always checks the subgroup (about 55 us a point); bulk commitment
/// points are instead checked in aggregate (see `commit`).
fn g1_on_curve(bytes: &[u8]) -> Result<blst_p1_affine, DecodeError> {
    if uncompressed_flags(bytes)? {
        return Ok(blst_p1_affine::default());
    }
    let p = blst_p1_affine {
        x: fp_from_be(&bytes[..48])?,
        y: fp_from_be(&bytes[48..96])?,
    };
    // SAFETY: plain read of a stack value.
    if !unsafe { blst::blst_p1_affine_on_curve(&p) } {
        return Err(DecodeError::NotOnCurve);
    }
    Ok(p)
}

/// Uncompressed G2 decoding without the subgroup check; coordinates are encoded `c1 || c0`.
fn g2_on_curve(bytes: &[u8]) -> Result<blst_p2_affine, DecodeError> {
    if uncompressed_flags(bytes)? {
        return Ok(blst_p2_affine::default());
    }
    let x = blst::blst_fp2 {
        fp: [fp_from_be(&bytes[48..96])?, fp_from_be(&bytes[..48])?],
    };
    let y = blst::blst_fp2 {
        fp: [fp_from_be(&bytes[144..192])?, fp_from_be(&bytes[96..144])?],
    };
    let p = blst_p2_affine { x, y };
    // SAFETY: plain read of a stack value.
    if !unsafe { blst::blst_p2_affine_on_curve(&p) } {
        return Err(DecodeError::NotOnCurve);
    }
    Ok(p)
}

/// BLS12-381 G1: 48-byte compressed points.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bls12381G1;

/// BLS12-381 G2: 96-byte compressed points.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bls12381G2;

fn scalar_from_be(bytes: &[u8]) -> Result<Scalar, DecodeError> {
    expect_len(bytes, 32)?;
    let mut b = [0u8; 32];
    b.copy_from_slice(bytes);
    Option::from(Scalar::from_bytes_be(&b)).ok_or(DecodeError::NonCanonicalScalar)
}

fn scalars_le(scalars: &[Scalar]) -> Vec<[u8; 32]> {
    scalars.iter().map(|s| s.to_bytes_le()).collect()
}

/// The bit length of the largest of the little-endian scalars (0 if all are zero). An MSM's
/// scalars are public (its cost already depends on them), so its window count may too: random
/// 128-bit weights then cost half the windows of full-size scalars.
fn max_bit_length(le: &[[u8; 32]]) -> usize {
    let mut or = [0u8; 32];
    for s in le {
        for (o, b) in or.iter_mut().zip(s) {
            *o |= b;
        }
    }
    or.iter()
        .rposition(|b| *b != 0)
        .map_or(0, |i| 8 * i + 8 - or[i].leading_zeros() as usize)
}

/// Distinguishes an encoding error from an off-curve point for blst's deserializers.
fn classify(err: blst::BLST_ERROR) -> DecodeError {
    match err {
        blst::BLST_ERROR::BLST_POINT_NOT_ON_CURVE => DecodeError::NotOnCurve,
        blst::BLST_ERROR::BLST_POINT_NOT_IN_GROUP => DecodeError::NotInSubgroup,
        _ => DecodeError::NonCanonicalPoint,
    }
}

/// A blstrs point from blst's representation of it (through blstrs' `AsMut`, no layout
/// assumption of our own).
fn affine_from_raw<A, R>(raw: R) -> A
where
    A: group::prime::PrimeCurveAffine + AsMut<R>,
{
    let mut out = A::identity();
    *out.as_mut() = raw;
    out
}

/// [`affine_from_raw`] for projective points.
fn projective_from_raw<P, R>(raw: R) -> P
where
    P: group::Group + AsMut<R>,
{
    let mut out = P::identity();
    *out.as_mut() = raw;
    out
}

macro_rules! bls_curve {
    (
        $curve:ident, $proj:ident, $aff:ident, $raw_aff:ident, $raw:ident,
        $compressed:expr, $uncompressed:expr, $suite:expr,
        $uncompress:ident, $deserialize:ident, $in_group:ident, $on_curve:ident,
        $pippenger:ident, $scratch:ident, $add_many:ident, $hash:ident, $to_affines:ident,
        $mul_generator_secret:path
    ) => {
        impl Curve for $curve {
            type Scalar = Scalar;
            type Point = $proj;
            type Affine = $aff;

            const NAME: &'static str = stringify!($curve);
            const POINT_LEN: usize = $compressed;
            const UNCOMPRESSED_LEN: usize = $uncompressed;
            const HAS_COFACTOR: bool = true;

            fn msm(points: &[$aff], scalars: &[Scalar]) -> $proj {
                let n = points.len().min(scalars.len());
                if n == 0 {
                    return $proj::identity();
                }
                if n < PIPPENGER_MIN {
                    let mut acc = $proj::identity();
                    for (p, s) in points.iter().zip(scalars) {
                        acc += p.to_curve() * s;
                    }
                    return acc;
                }
                let le = scalars_le(&scalars[..n]);
                let nbits = max_bit_length(&le);
                if nbits == 0 {
                    return $proj::identity();
                }
                // SAFETY: the pointer arrays, scalar buffers and scratch space outlive the
                // call, and blst reads exactly `n` entries.
                unsafe {
                    let point_ptrs: Vec<*const $raw_aff> = points[..n]
                        .iter()
                        .map(|p| p.as_ref() as *const $raw_aff)
                        .collect();
                    let scalar_ptrs: Vec<*const u8> = le.iter().map(|s| s.as_ptr()).collect();
                    let words = blst::$scratch(n) / core::mem::size_of::<limb_t>();
                    let mut scratch = vec![0 as limb_t; words + 1];
                    let mut out = $raw::default();
                    blst::$pippenger(
                        &mut out,
                        point_ptrs.as_ptr(),
                        n,
                        scalar_ptrs.as_ptr(),
                        nbits,
                        scratch.as_mut_ptr(),
                    );
                    projective_from_raw(out)
                }
            }

            fn mul_generator_secret(s: &Scalar) -> $proj {
                $mul_generator_secret(s)
            }

            fn mul_generator_public_vartime(s: &Scalar) -> $proj {
                // Variable time: the comb indexes its table by the scalar's bytes.
                static TABLE: OnceLock<crate::group::CombTable<$aff>> = OnceLock::new();
                TABLE
                    .get_or_init(|| crate::group::CombTable::new($proj::generator()))
                    .mul(&s.to_bytes_le())
            }

            fn sum(points: &[$aff]) -> $proj {
                if points.is_empty() {
                    return $proj::identity();
                }
                // SAFETY: as in `msm`; blst reads `points.len()` affine points.
                unsafe {
                    let ptrs: Vec<*const $raw_aff> = points
                        .iter()
                        .map(|p| p.as_ref() as *const $raw_aff)
                        .collect();
                    let mut out = $raw::default();
                    blst::$add_many(&mut out, ptrs.as_ptr(), ptrs.len());
                    projective_from_raw(out)
                }
            }

            fn batch_normalize(points: &[$proj]) -> Vec<$aff> {
                // One field inversion for all points (Montgomery's trick, in blst); points at
                // infinity are kept out of the batch because their zero Z would poison it.
                let finite: Vec<usize> = (0..points.len())
                    .filter(|i| !bool::from(points[*i].is_identity()))
                    .collect();
                let mut out = vec![$aff::identity(); points.len()];
                if finite.is_empty() {
                    return out;
                }
                let mut affine = vec![$raw_aff::default(); finite.len()];
                // SAFETY: the pointer array and output buffer hold exactly `finite.len()`
                // entries.
                unsafe {
                    let ptrs: Vec<*const $raw> = finite
                        .iter()
                        .map(|i| points[*i].as_ref() as *const $raw)
                        .collect();
                    blst::$to_affines(affine.as_mut_ptr(), ptrs.as_ptr(), ptrs.len());
                    for (i, a) in finite.iter().zip(affine) {
                        *out[*i].as_mut() = a;
                    }
                }
                out
            }

            fn encode_point(p: &$aff, out: &mut Vec<u8>) {
                out.extend_from_slice(&p.to_compressed());
            }

            fn decode_point(bytes: &[u8]) -> Result<$aff, DecodeError> {
                expect_len(bytes, $compressed)?;
                let mut raw = $raw_aff::default();
                // SAFETY: `bytes` has exactly the compressed length blst reads.
                let err = unsafe { blst::$uncompress(&mut raw, bytes.as_ptr()) };
                if err != blst::BLST_ERROR::BLST_SUCCESS {
                    return Err(classify(err));
                }
                // SAFETY: plain read of a decoded affine point.
                if !unsafe { blst::$in_group(&raw) } {
                    return Err(DecodeError::NotInSubgroup);
                }
                let p: $aff = affine_from_raw(raw);
                // Canonical: re-encoding must give the same bytes (rejects e.g. non-zero padding
                // in the infinity encoding, which blst tolerates in some versions).
                if p.to_compressed().as_slice() != bytes {
                    return Err(DecodeError::NonCanonicalPoint);
                }
                Ok(p)
            }

            fn encode_point_uncompressed(p: &$aff, out: &mut Vec<u8>) {
                out.extend_from_slice(&p.to_uncompressed());
            }

            fn decode_point_unchecked_subgroup(bytes: &[u8]) -> Result<$aff, DecodeError> {
                expect_len(bytes, $uncompressed)?;
                // The flag bits and both coordinates are checked canonical by the decoder, so
                // the encoding is the unique one for this point.
                let raw = $deserialize(bytes)?;
                Ok(affine_from_raw(raw))
            }

            fn in_subgroup(p: &$aff) -> bool {
                bool::from(p.is_torsion_free())
            }

            fn hash_to_point(msg: &[u8], dst: &[u8]) -> $proj {
                $proj::hash_to_curve(msg, dst, &[])
            }

            fn pedersen_h() -> $aff {
                static H: OnceLock<$aff> = OnceLock::new();
                *H.get_or_init(|| {
                    let dst = format!("KEYQUORUM-V01-CS01-with-{}", $suite);
                    group::Curve::to_affine(&$proj::hash_to_curve(
                        b"keyquorum pedersen generator",
                        dst.as_bytes(),
                        &[],
                    ))
                })
            }

            fn encode_scalar(s: &Scalar) -> [u8; 32] {
                s.to_bytes_be()
            }

            fn decode_scalar(bytes: &[u8]) -> Result<Scalar, DecodeError> {
                scalar_from_be(bytes)
            }
        }
    };
}

bls_curve!(
    Bls12381G1,
    G1Projective,
    G1Affine,
    blst_p1_affine,
    blst_p1,
    48,
    96,
    G1_SUITE,
    blst_p1_uncompress,
    g1_on_curve,
    blst_p1_affine_in_g1,
    blst_p1_affine_on_curve,
    blst_p1s_mult_pippenger,
    blst_p1s_mult_pippenger_scratch_sizeof,
    blst_p1s_add,
    hash_to_curve,
    blst_p1s_to_affine,
    crate::fixed_base::mul_g1_generator
);

bls_curve!(
    Bls12381G2,
    G2Projective,
    G2Affine,
    blst_p2_affine,
    blst_p2,
    96,
    192,
    G2_SUITE,
    blst_p2_uncompress,
    g2_on_curve,
    blst_p2_affine_in_g2,
    blst_p2_affine_on_curve,
    blst_p2s_mult_pippenger,
    blst_p2s_mult_pippenger_scratch_sizeof,
    blst_p2s_add,
    hash_to_curve,
    blst_p2s_to_affine,
    g2_mul_generator_secret
);

/// `s G` on G2 in constant time: blstrs multiplies through `blst_p2_mult` with all 255 bits,
/// which for scalars below the group order is blst's GLS multiplication with fixed windows and
/// constant-time table gathers (no branch or address depends on the scalar). G2 generator
/// multiplications by secrets are rare (key generation, not per-share work), so no comb here.
fn g2_mul_generator_secret(s: &Scalar) -> G2Projective {
    G2Projective::generator() * s
}

/// The 2-adicity of the BLS12-381 scalar field: roots of unity of every order `2^k`, `k <= 32`.
pub const TWO_ADICITY: u32 = Scalar::S;

#[cfg(test)]
mod tests {
    use super::*;
    use group::Curve as _;

    #[test]
    fn msm_matches_naive() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        use rand_core::SeedableRng;
        for n in [0usize, 1, 5, 8, 33, 100] {
            let pts: Vec<G1Affine> = (0..n)
                .map(|_| {
                    (G1Projective::generator() * Bls12381G1::random_scalar(&mut rng)).to_affine()
                })
                .collect();
            let sc: Vec<Scalar> = (0..n)
                .map(|_| Bls12381G1::random_scalar(&mut rng))
                .collect();
            let mut naive = G1Projective::identity();
            for (p, s) in pts.iter().zip(&sc) {
                naive += p.to_curve() * s;
            }
            assert_eq!(Bls12381G1::msm(&pts, &sc), naive, "n = {n}");
            let mut proj: Vec<G1Projective> = pts.iter().map(|p| p.to_curve()).collect();
            if !proj.is_empty() {
                proj[0] = G1Projective::identity();
            }
            let expect: Vec<G1Affine> = proj.iter().map(|p| p.to_affine()).collect();
            assert_eq!(Bls12381G1::batch_normalize(&proj), expect);
            for s in &sc {
                assert_eq!(Bls12381G1::mul_generator(s), G1Projective::generator() * s);
                assert_eq!(Bls12381G2::mul_generator(s), G2Projective::generator() * s);
            }
            let sum: G1Projective = pts.iter().map(|p| p.to_curve()).sum();
            assert_eq!(Bls12381G1::sum(&pts), sum);
        }
    }

    /// The MSM runs only as many bit windows as its largest scalar needs: short scalars of
    /// every length, zeros among them and all of them zero give the naive sum on both groups.
    #[test]
    fn msm_with_short_scalars_matches_naive() {
        use ff::Field;
        use rand_core::{RngCore, SeedableRng};
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        let most = 40;
        let g1: Vec<G1Affine> = (0..most)
            .map(|_| (G1Projective::generator() * Bls12381G1::random_scalar(&mut rng)).to_affine())
            .collect();
        let g2: Vec<G2Affine> = (0..most)
            .map(|_| (G2Projective::generator() * Bls12381G1::random_scalar(&mut rng)).to_affine())
            .collect();
        // 40 points run blst's Pippenger, 8 to 31 its windowed path, fewer our own loop.
        for (n, bits) in [20usize, 40, 8, 31, 5]
            .into_iter()
            .flat_map(|n| [0u32, 1, 7, 8, 9, 63, 64, 65, 127, 128, 129, 200, 254].map(|b| (n, b)))
        {
            let (g1, g2) = (&g1[..n], &g2[..n]);
            let sc: Vec<Scalar> = (0..n)
                .map(|i| {
                    if i % 7 == 3 || bits == 0 {
                        return Scalar::ZERO;
                    }
                    let mut le = [0u8; 32];
                    rng.fill_bytes(&mut le[..(bits as usize).div_ceil(8)]);
                    // Keep exactly `bits` bits, the top one set.
                    let top = (bits - 1) as usize;
                    le[top / 8] &= (((1u16 << (top % 8 + 1)) - 1) & 0xff) as u8;
                    le[top / 8] |= 1 << (top % 8);
                    Scalar::from_bytes_le(&le).unwrap()
                })
                .collect();
            let naive1: G1Projective = g1.iter().zip(&sc).map(|(p, s)| p.to_curve() * s).sum();
            let naive2: G2Projective = g2.iter().zip(&sc).map(|(p, s)| p.to_curve() * s).sum();
            assert_eq!(
                Bls12381G1::msm(g1, &sc),
                naive1,
                "G1, {n} points, {bits} bits"
            );
            assert_eq!(
                Bls12381G2::msm(g2, &sc),
                naive2,
                "G2, {n} points, {bits} bits"
            );
        }
        let le: Vec<[u8; 32]> = [0u64, 1, 255, 256]
            .iter()
            .map(|v| Scalar::from(*v).to_bytes_le())
            .collect();
        assert_eq!(max_bit_length(&le), 9);
        assert_eq!(max_bit_length(&le[..1]), 0);
        assert_eq!(max_bit_length(&[(-Scalar::ONE).to_bytes_le()]), 255);
    }

    proptest::proptest! {
        /// The constant-time and the comb multiplication agree, including on scalars with zero
        /// bytes (which the comb skips) and on the edge values 0, 1 and -1.
        #[test]
        fn secret_and_public_generator_multiplication_agree(
            seed in proptest::prelude::any::<u64>(),
            zero_bytes in proptest::prelude::any::<u32>(),
        ) {
            use rand_core::SeedableRng;
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
            let mut be = Bls12381G1::encode_scalar(&Bls12381G1::random_scalar(&mut rng));
            for (i, b) in be.iter_mut().enumerate() {
                if zero_bytes >> i & 1 == 1 {
                    *b = 0;
                }
            }
            let s = Bls12381G1::decode_scalar(&be).unwrap();
            for s in [s, Scalar::from(0u64), Scalar::from(1u64), -Scalar::from(1u64)] {
                proptest::prop_assert_eq!(
                    Bls12381G1::mul_generator_secret(&s),
                    // Public scalar: test values.
                    Bls12381G1::mul_generator_public_vartime(&s)
                );
                proptest::prop_assert_eq!(
                    Bls12381G2::mul_generator_secret(&s),
                    // Public scalar: test values.
                    Bls12381G2::mul_generator_public_vartime(&s)
                );
                proptest::prop_assert_eq!(
                    Bls12381G1::mul_generator_secret(&s),
                    G1Projective::generator() * s
                );
            }
        }
    }

    #[test]
    fn sum_matches_naive() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
        use rand_core::SeedableRng;
        for n in [0usize, 1, 5, 33] {
            let pts: Vec<G1Affine> = (0..n)
                .map(|_| {
                    (G1Projective::generator() * Bls12381G1::random_scalar(&mut rng)).to_affine()
                })
                .collect();
            let sum: G1Projective = pts.iter().map(|p| p.to_curve()).sum();
            assert_eq!(Bls12381G1::sum(&pts), sum);
        }
    }
}
