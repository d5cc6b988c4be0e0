//! Generic multi-scalar multiplication (Pippenger's bucket method) for groups without a native one.
//!
//! BLS12-381 uses `blst`'s own Pippenger; secp256k1's `k256` only offers a linear-time linear
//! combination, which above a few hundred points is several times slower than buckets.

use ff::PrimeField;
use group::Group;
use group::prime::PrimeCurveAffine;

/// Window width (bits) minimising `(bits / c) * (n + 2^(c+1))` group additions for `n` points.
fn window_bits(n: usize) -> usize {
    match n {
        0..=3 => 1,
        4..=31 => 3,
        32..=127 => 5,
        128..=511 => 6,
        512..=2047 => 8,
        2048..=8191 => 10,
        8192..=65535 => 12,
        _ => 14,
    }
}

/// `sum_i scalars[i] * points[i]` by Pippenger's method with fixed windows.
///
/// Constant-time is not a goal: inputs are public (commitments, verification weights).
pub fn pippenger<A>(points: &[A], scalars: &[A::Scalar]) -> A::Curve
where
    A: PrimeCurveAffine,
    A::Scalar: PrimeField + ReprEndianness,
    A::Curve: Group<Scalar = A::Scalar> + core::ops::AddAssign<A>,
{
    let n = points.len().min(scalars.len());
    if n == 0 {
        return A::Curve::identity();
    }
    if n < 4 {
        let mut acc = A::Curve::identity();
        for (p, s) in points.iter().zip(scalars) {
            acc += p.to_curve() * s;
        }
        return acc;
    }
    // Little-endian 256-bit representations for digit extraction.
    let reprs: Vec<[u8; 32]> = scalars[..n].iter().map(le_bytes::<A::Scalar>).collect();
    let c = window_bits(n);
    let num_bits = A::Scalar::NUM_BITS as usize;
    let windows = num_bits.div_ceil(c);
    let mut buckets = vec![A::Curve::identity(); (1 << c) - 1];
    let mut result = A::Curve::identity();
    for w in (0..windows).rev() {
        for _ in 0..c {
            result = result.double();
        }
        for b in buckets.iter_mut() {
            *b = A::Curve::identity();
        }
        let bit0 = w * c;
        for (p, r) in points[..n].iter().zip(&reprs) {
            let digit = extract_bits(r, bit0, c);
            if digit != 0 {
                buckets[digit - 1] += *p;
            }
        }
        // sum_d d * bucket[d] by running sums from the top bucket down.
        let mut running = A::Curve::identity();
        let mut window_sum = A::Curve::identity();
        for b in buckets.iter().rev() {
            running += b;
            window_sum += running;
        }
        result += window_sum;
    }
    result
}

fn le_bytes<S: PrimeField + ReprEndianness>(s: &S) -> [u8; 32] {
    let repr = s.to_repr();
    let bytes = repr.as_ref();
    let mut out = [0u8; 32];
    out[..bytes.len()].copy_from_slice(bytes);
    // `to_repr` is little-endian for BLS12-381 (blstrs) and big-endian for secp256k1 (k256).
    if !S::LE_REPR {
        out[..bytes.len()].reverse();
    }
    out
}

/// Whether `PrimeField::to_repr` is little-endian for a field (see `le_bytes`).
pub trait ReprEndianness {
    /// True when the representation is little-endian.
    const LE_REPR: bool;
}

impl ReprEndianness for blstrs::Scalar {
    const LE_REPR: bool = true;
}

impl ReprEndianness for k256::Scalar {
    const LE_REPR: bool = false;
}

fn extract_bits(le: &[u8; 32], bit0: usize, c: usize) -> usize {
    let mut v: u64 = 0;
    let byte0 = bit0 / 8;
    for i in 0..4 {
        if byte0 + i < 32 {
            v |= (le[byte0 + i] as u64) << (8 * i);
        }
    }
    ((v >> (bit0 % 8)) & ((1u64 << c) - 1)) as usize
}
