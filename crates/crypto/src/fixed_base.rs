//! Constant-time multiplication of the BLS12-381 G1 generator by secret scalars.
//!
//! # The method
//! A scalar `s < r < 2^255` is recoded into 43 signed digits `d_i` in `[-31, 32]` of radix
//! `2^6` (`s = sum_i d_i 2^(6i)`: a window above 32 borrows from the next one). A table holds
//! `j 2^(6i) G` for every window `i` and `j = 1..=32`, so `s G` is the sum over the windows of
//! one table entry, negated where the digit is negative: 43 mixed additions and no doublings
//! (the comb of Lim and Lee, "More flexible exponentiation with precomputation", CRYPTO 1994,
//! with Booth-style signed digits halving each window's row).
//!
//! # Why it is constant time
//! - The recoding uses the same operations for every scalar: shifts, masks and subtractions, no
//!   branch or index depending on the digits.
//! - Each window reads all 32 entries of its row and keeps the wanted one with masked moves
//!   (`subtle`), so the memory touched is the same for every digit; a zero digit keeps the point
//!   at infinity, encoded `(0, 0)` as `blst` does.
//! - The negation is `blst`'s conditional negation of the `y` coordinate, and the addition is
//!   `blst`'s complete mixed addition (`blst_p1_add_or_double_affine`), which handles the point
//!   at infinity on either side, doubling and opposite points with masked selections.
//!
//! Of the digits, no partial sum but the last can meet its entry or the entry's negative (the
//! entry of window `i` is at least `2^(6i)` in magnitude, the sum so far below it), and the last
//! addition doubles for exactly one scalar below the group order, `14 2^252 - r`; a test pins
//! that case, the only one that needs the addition to be complete.
//!
//! The secret's bytes and digits are wiped after use, as far as this code can reach: copies
//! made by `blst`'s scalar conversion or spilled by the compiler may remain on the stack.
//!
//! `blst`'s own constant-time multiplication (windowed GLV, what [`Curve::mul_generator_secret`]
//! used before) is about 128 doublings and 80 additions (two halves in 5-bit windows, and their
//! tables); the comb's 43 additions and row scans
//! take about a third of its time (24 us against 69 us, `cargo bench -p keyquorum-crypto --bench
//! crypto -- g1_generator_mul`; windows of 4, 5 and 7 bits measured 30, 26 and 28 us). The
//! table is 1376 affine points (129 KiB), built once per process.
//!
//! [`Curve::mul_generator_secret`]: crate::group::Curve::mul_generator_secret

use std::sync::OnceLock;

use blst::{blst_fp, blst_p1, blst_p1_affine};
use blstrs::{G1Affine, G1Projective, Scalar};
use group::Group;
use group::prime::PrimeCurveAffine;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

/// Bits per window.
const WINDOW_BITS: usize = 6;
/// Table entries per window: the digit magnitudes `1..=32`.
const ROW: usize = 1 << (WINDOW_BITS - 1);
/// Windows: `43 * 6 = 258` bits hold a 255-bit scalar and the last borrow.
const WINDOWS: usize = 256_usize.div_ceil(WINDOW_BITS);

/// `table[i * ROW + (j - 1)] = j 2^(6i) G`.
struct GeneratorComb {
    table: Vec<blst_p1_affine>,
}

fn comb() -> &'static GeneratorComb {
    static COMB: OnceLock<GeneratorComb> = OnceLock::new();
    COMB.get_or_init(|| {
        let mut proj = Vec::with_capacity(WINDOWS * ROW);
        let mut window_base = G1Projective::generator();
        for _ in 0..WINDOWS {
            let mut acc = window_base;
            for _ in 0..ROW {
                proj.push(acc);
                acc += window_base;
            }
            // The next window's base is 2^6 window_base.
            for _ in 0..WINDOW_BITS {
                window_base = window_base.double();
            }
        }
        let mut affine = vec![G1Affine::identity(); proj.len()];
        group::Curve::batch_normalize(&proj[..], &mut affine);
        GeneratorComb {
            table: affine.iter().map(|p| *p.as_ref()).collect(),
        }
    })
}

/// The signed radix-`2^6` digits of the little-endian scalar `le` (below `2^255`), each in
/// `[-31, 32]`, least significant first, computed without branches on the scalar.
fn signed_digits(le: &[u8; 32]) -> [i8; WINDOWS] {
    let mut digits = [0i8; WINDOWS];
    let mut borrow = 0u32;
    for (i, digit) in digits.iter_mut().enumerate() {
        let bit = i * WINDOW_BITS;
        // The byte positions depend only on the window, never on the scalar.
        let lo = u32::from(le.get(bit / 8).copied().unwrap_or(0));
        let hi = u32::from(le.get(bit / 8 + 1).copied().unwrap_or(0));
        let v = ((((hi << 8) | lo) >> (bit % 8)) & ((1 << WINDOW_BITS) - 1)) + borrow;
        // v is in 0..=64; a window above 32 becomes v - 64 and carries one into the next.
        borrow = ((ROW as u32).wrapping_sub(v) >> 31) & 1;
        *digit = (v as i32 - ((borrow << WINDOW_BITS) as i32)) as i8;
    }
    digits
}

/// `s G` in constant time (see the module docs).
pub(crate) fn mul_g1_generator(s: &Scalar) -> G1Projective {
    let comb = comb();
    let mut le = s.to_bytes_le();
    let mut digits = signed_digits(&le);
    le.zeroize();
    let mut acc = blst_p1::default();
    let mut entry = blst_p1_affine::default();
    for (row, digit) in comb.table.chunks_exact(ROW).zip(digits.iter()) {
        let d = i32::from(*digit);
        let negative = ((d >> 31) & 1) as u32;
        let magnitude = ((d ^ -(negative as i32)) + negative as i32) as u32;
        entry = blst_p1_affine::default();
        for (j, candidate) in row.iter().enumerate() {
            let hit = magnitude.ct_eq(&(j as u32 + 1));
            select_affine(&mut entry, candidate, hit);
        }
        // SAFETY: live stack values of the types blst expects; `entry` is a table point or
        // the point at infinity, both valid inputs of the complete addition.
        unsafe {
            blst::blst_fp_cneg(&mut entry.y, &entry.y, negative == 1);
            blst::blst_p1_add_or_double_affine(&mut acc, &acc, &entry);
        }
    }
    digits.zeroize();
    entry.x.l.zeroize();
    entry.y.l.zeroize();
    let mut out = G1Projective::identity();
    *out.as_mut() = acc;
    out
}

/// `dst = src` where `choice` is set, with masked moves of every limb.
fn select_affine(dst: &mut blst_p1_affine, src: &blst_p1_affine, choice: Choice) {
    select_fp(&mut dst.x, &src.x, choice);
    select_fp(&mut dst.y, &src.y, choice);
}

fn select_fp(dst: &mut blst_fp, src: &blst_fp, choice: Choice) {
    for (d, s) in dst.l.iter_mut().zip(src.l.iter()) {
        d.conditional_assign(s, choice);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ff::{Field, PrimeField};
    use proptest::prelude::*;
    use rand_core::SeedableRng;

    fn reference(s: &Scalar) -> G1Projective {
        G1Projective::generator() * s
    }

    fn scalar_from_le_bits(bits: &[u8; 32]) -> Scalar {
        let mut be = *bits;
        be.reverse();
        Scalar::from_bytes_be(&be).unwrap()
    }

    #[test]
    fn digits_recompose_the_scalar_and_stay_in_range() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        for _ in 0..200 {
            let s = Scalar::random(&mut rng);
            let digits = signed_digits(&s.to_bytes_le());
            let half = ROW as i8;
            assert!(digits.iter().all(|d| (1 - half..=half).contains(d)));
            let mut acc = Scalar::ZERO;
            for d in digits.iter().rev() {
                acc *= Scalar::from(1u64 << WINDOW_BITS);
                let m = Scalar::from(u64::from(d.unsigned_abs()));
                acc += if *d < 0 { -m } else { m };
            }
            assert_eq!(acc, s);
        }
    }

    #[test]
    fn edge_scalars_match_blst() {
        let minus_one = -Scalar::ONE;
        let windows_below_250 = 250 / WINDOW_BITS;
        let mut all_halves = [0u8; 32];
        // Windows of ROW (top bit set) everywhere below bit 250: the largest positive digits.
        for w in 0..windows_below_250 {
            let bit = w * WINDOW_BITS + WINDOW_BITS - 1;
            all_halves[bit / 8] |= 1 << (bit % 8);
        }
        let mut all_above_half = [0u8; 32];
        // Windows of ROW + 1: every window borrows and carries (the lowest digit is 1 - ROW,
        // the later ones, with the incoming borrow, 2 - ROW).
        for w in 0..windows_below_250 {
            for b in [0, WINDOW_BITS - 1] {
                let bit = w * WINDOW_BITS + b;
                all_above_half[bit / 8] |= 1 << (bit % 8);
            }
        }
        let cases = [
            Scalar::ZERO,
            Scalar::ONE,
            Scalar::from(ROW as u64),
            Scalar::from(ROW as u64 + 1),
            Scalar::from(2 * ROW as u64 - 1),
            Scalar::from(2 * ROW as u64),
            minus_one,
            minus_one - Scalar::from(ROW as u64),
            Scalar::from(2u64).pow_vartime([254]),
            scalar_from_le_bits(&all_halves),
            scalar_from_le_bits(&all_above_half),
            Scalar::ROOT_OF_UNITY,
            doubling_scalar(),
        ];
        for s in cases {
            assert_eq!(mul_g1_generator(&s), reference(&s), "scalar {s:?}");
        }
        assert!(bool::from(mul_g1_generator(&Scalar::ZERO).is_identity()));
    }

    /// `14 2^252 - r`: the one scalar whose last addition meets its own entry (the sum of the
    /// lower windows is `7 2^252 mod r`, the top digit 7), so the addition must double.
    fn doubling_scalar() -> Scalar {
        let s = Scalar::from(14u64) * Scalar::from(2u64).pow_vartime([252]);
        assert_eq!(
            hex::encode(s.to_bytes_be()),
            "6c1258acd66282b7ccc627f7f65e27faac425bfd0001a40100000000ffffffff"
        );
        let digits = signed_digits(&s.to_bytes_le());
        assert_eq!(digits[WINDOWS - 1], 7);
        s
    }

    proptest! {
        #[test]
        fn random_scalars_match_blst(seed in any::<[u8; 32]>()) {
            let s = Scalar::random(rand_chacha::ChaCha20Rng::from_seed(seed));
            prop_assert_eq!(mul_g1_generator(&s), reference(&s));
        }
    }
}
