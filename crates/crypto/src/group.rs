//! The prime-order groups keyquorum runs on, behind one trait.
//!
//! Protocol code is generic over [`Curve`]: a prime-order group with its scalar field, multi-scalar
//! multiplication, hash-to-curve and a canonical byte encoding. Three groups implement it:
//! BLS12-381 G1 and G2 (on `blst`, through `blstrs`) and secp256k1 (on `k256`). The choice of
//! libraries follows measurements on the target machines: `blst` is the fastest BLS12-381
//! implementation for every operation we use and `k256` is constant-time pure Rust.
//!
//! # Decoding is validation
//! Every point or scalar that crosses a trust boundary goes through a decoder here, and the decoder
//! is the only place where validity is established:
//! - scalars must be the canonical big-endian encoding of an integer below the group order;
//! - points must have the exact length, a canonical encoding, lie on the curve and, for BLS12-381,
//!   lie in the prime-order subgroup ([`Curve::decode_point`]).
//!
//! [`Curve::decode_point_unchecked_subgroup`] is the one exception: it checks the curve equation but
//! not subgroup membership, for bulk data whose subgroup membership is established afterwards on an
//! aggregate (see `commit::EvalCommitment` for the argument). Callers must not use such points in
//! any other way.
//!
//! # Secret and public scalars
//! Multiplying the generator by a scalar has two entry points, and the choice is a security
//! decision made at each call site:
//! - [`Curve::mul_generator_secret`] (and [`Curve::mul_generator`], the same function under the
//!   default name) runs in time independent of the scalar: on BLS12-381 G1 a signed-digit comb
//!   whose additions are complete and whose table rows are read whole (`fixed_base`), on G2
//!   `blst`'s windowed GLS multiplication with constant-time table lookups, and `k256`'s
//!   constant-time precomputed-table multiplication for secp256k1. Every secret goes through it: polynomial coefficients and
//!   evaluations (a dealer's commitment), received and final shares, a resharing dealer's old
//!   share, and anything derived from them (the left side of a batched share check).
//! - [`Curve::mul_generator_public_vartime`] may take time and touch memory depending on the
//!   scalar: for BLS12-381 it is a byte-wise comb ([`CombTable`]) that indexes its table by the
//!   scalar's bytes and skips zero bytes, several times faster and leaking the scalar through the
//!   cache and the branch predictor. It is only for scalars that are public anyway (revealed
//!   shares on the board, values reconstructed in the clear, benchmarks); each call site says why
//!   its scalar is public.

use core::fmt::Debug;

use ff::PrimeField;
use group::Group;
use group::prime::PrimeCurveAffine;

use crate::error::DecodeError;

/// A prime-order group used by keyquorum, with its scalar field.
pub trait Curve: 'static + Copy + Clone + Debug + Default + PartialEq + Eq + Send + Sync {
    /// The scalar field, of prime order equal to the group order.
    type Scalar: PrimeField + Send + Sync + Debug;
    /// A group element in projective coordinates, for arithmetic.
    type Point: group::Group<Scalar = Self::Scalar>
        + group::Curve<AffineRepr = Self::Affine>
        + Send
        + Sync
        + Debug;
    /// A group element in affine coordinates, for storage, encoding and MSM input.
    type Affine: PrimeCurveAffine<Curve = Self::Point, Scalar = Self::Scalar>
        + Copy
        + Clone
        + Debug
        + PartialEq
        + Eq
        + Send
        + Sync;

    /// Stable name of the group, used in domain separation tags and session ids.
    const NAME: &'static str;
    /// Length of the canonical (compressed) point encoding.
    const POINT_LEN: usize;
    /// Length of the uncompressed point encoding (bulk transport, skips square roots).
    const UNCOMPRESSED_LEN: usize;
    /// Length of a scalar encoding (big-endian).
    const SCALAR_LEN: usize = 32;
    /// Whether the group has a non-trivial cofactor (then subgroup checks are needed).
    const HAS_COFACTOR: bool;

    /// Multi-scalar multiplication `sum_i scalars[i] * points[i]`, in VARIABLE time: for
    /// public scalars only (its cost depends on the scalars, their bit length included).
    ///
    /// The slices must have equal length; extra elements of the longer one are ignored.
    fn msm(points: &[Self::Affine], scalars: &[Self::Scalar]) -> Self::Point;

    /// `s * G` for the fixed generator, in constant time: safe for secret scalars (see the
    /// module docs). This is the default.
    fn mul_generator_secret(s: &Self::Scalar) -> Self::Point;

    /// The default name of [`Curve::mul_generator_secret`]: constant time.
    fn mul_generator(s: &Self::Scalar) -> Self::Point {
        Self::mul_generator_secret(s)
    }

    /// `s * G` in VARIABLE time, for PUBLIC scalars only: timing and memory access depend on
    /// `s` (see the module docs). Never call it with a coefficient, a share or anything derived
    /// from one.
    fn mul_generator_public_vartime(s: &Self::Scalar) -> Self::Point {
        Self::mul_generator_secret(s)
    }

    /// Sum of many affine points (cheaper than adding them one by one in projective form).
    fn sum(points: &[Self::Affine]) -> Self::Point {
        let mut acc = Self::Point::identity();
        for p in points {
            acc += p.to_curve();
        }
        acc
    }

    /// Appends the canonical compressed encoding of `p` to `out`.
    fn encode_point(p: &Self::Affine, out: &mut Vec<u8>);
    /// Decodes a canonical compressed point, checking it is on the curve and in the prime-order
    /// subgroup. The identity is accepted; callers that must exclude it use
    /// [`Curve::decode_point_nonzero`].
    fn decode_point(bytes: &[u8]) -> Result<Self::Affine, DecodeError>;
    /// Appends the uncompressed encoding of `p` to `out`.
    fn encode_point_uncompressed(p: &Self::Affine, out: &mut Vec<u8>);
    /// Decodes an uncompressed point, checking the encoding and the curve equation but NOT
    /// subgroup membership. See the module documentation before using it.
    fn decode_point_unchecked_subgroup(bytes: &[u8]) -> Result<Self::Affine, DecodeError>;
    /// Whether `p` lies in the prime-order subgroup (always true without a cofactor).
    fn in_subgroup(p: &Self::Affine) -> bool;

    /// Hash to the group as in RFC 9380 (`_XMD:SHA-256_SSWU_RO_` suite of the group).
    fn hash_to_point(msg: &[u8], dst: &[u8]) -> Self::Point;

    /// The second generator `H` of Pedersen commitments, nobody knows `log_G H`.
    ///
    /// `H = hash_to_point("keyquorum pedersen generator", "KEYQUORUM-V01-CS01-with-<suite>")`,
    /// where `<suite>` is the RFC 9380 suite id of the group. Hash-to-curve output has no known
    /// discrete logarithm relative to the fixed generator.
    fn pedersen_h() -> Self::Affine;

    /// Canonical big-endian encoding of a scalar.
    fn encode_scalar(s: &Self::Scalar) -> [u8; 32];
    /// Decodes a canonical big-endian scalar (exactly 32 bytes, below the group order).
    fn decode_scalar(bytes: &[u8]) -> Result<Self::Scalar, DecodeError>;

    /// Decodes a point and rejects the identity.
    fn decode_point_nonzero(bytes: &[u8]) -> Result<Self::Affine, DecodeError> {
        let p = Self::decode_point(bytes)?;
        if bool::from(p.is_identity()) {
            return Err(DecodeError::Identity);
        }
        Ok(p)
    }

    /// Canonical encoding as a fresh vector.
    fn point_bytes(p: &Self::Affine) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::POINT_LEN);
        Self::encode_point(p, &mut v);
        v
    }

    /// Converts many projective points to affine with one field inversion.
    fn batch_normalize(points: &[Self::Point]) -> Vec<Self::Affine> {
        let mut out = vec![Self::Affine::identity(); points.len()];
        <Self::Point as group::Curve>::batch_normalize(points, &mut out);
        out
    }

    /// Reduces 64 uniformly random bytes to a scalar with negligible bias.
    fn scalar_from_wide(bytes: &[u8; 64]) -> Self::Scalar {
        scalar_from_wide(bytes)
    }

    /// A uniformly random scalar.
    fn random_scalar<R: rand_core::RngCore + rand_core::CryptoRng>(rng: &mut R) -> Self::Scalar {
        let mut wide = [0u8; 64];
        rng.fill_bytes(&mut wide);
        let s = Self::scalar_from_wide(&wide);
        zeroize::Zeroize::zeroize(&mut wide);
        s
    }

    /// Hashes arbitrary data to a scalar (RFC 9380 `expand_message_xmd` with SHA-256, 64 bytes).
    fn hash_to_scalar(msg: &[u8], dst: &[u8]) -> Self::Scalar {
        let wide = crate::hash::expand_message_xmd::<64>(msg, dst);
        Self::scalar_from_wide(&wide)
    }
}

/// Reduces 64 bytes (big-endian) modulo the field order; the bias is below `2^-250` for our fields.
pub fn scalar_from_wide<F: PrimeField>(bytes: &[u8; 64]) -> F {
    // Horner over 8-byte big-endian limbs: x = sum limb_i * 2^(64 (7-i)).
    let shift = F::from(1u64 << 32).square();
    let mut acc = F::ZERO;
    for chunk in bytes.chunks_exact(8) {
        let mut limb = [0u8; 8];
        limb.copy_from_slice(chunk);
        acc = acc * shift + F::from(u64::from_be_bytes(limb));
    }
    acc
}

/// `sum_i scalars[i] points[i]` ([`Curve::msm`], public scalars only) split over the current
/// rayon pool: one MSM per slice of about `n / threads` (at least `min_points`) points, then
/// their sum. The answer does not depend on the pool; on
/// one thread, or below `min_points` points per thread, it is one MSM on the calling thread.
pub fn msm_parallel<C: Curve>(
    points: &[C::Affine],
    scalars: &[C::Scalar],
    min_points: usize,
) -> C::Point {
    use rayon::prelude::*;
    let n = points.len().min(scalars.len());
    let threads = rayon::current_num_threads().max(1);
    if threads == 1 || n < 2 * min_points.max(1) {
        return C::msm(&points[..n], &scalars[..n]);
    }
    let chunk = n.div_ceil(threads).max(min_points);
    points[..n]
        .par_chunks(chunk)
        .zip(scalars[..n].par_chunks(chunk))
        .map(|(p, s)| C::msm(p, s))
        .reduce(C::Point::identity, |a, b| a + b)
}

/// The generator of `C` in affine form.
pub fn generator<C: Curve>() -> C::Affine {
    C::Affine::generator()
}

/// Helper shared by decoders: check an exact length.
pub(crate) fn expect_len(bytes: &[u8], expected: usize) -> Result<(), DecodeError> {
    if bytes.len() != expected {
        return Err(DecodeError::Length {
            expected,
            actual: bytes.len(),
        });
    }
    Ok(())
}

/// A comb table for multiplying one fixed point: `table[i][d] = d * 256^i * P` for each of the
/// 32 bytes of a scalar, so `s * P` is 32 mixed additions (no doublings). 8192 affine points.
///
/// NOT constant time: [`CombTable::mul`] reads the table at an address given by each scalar byte
/// and skips zero bytes, so cache timing and branch prediction reveal the scalar. Use it for
/// public scalars only (it backs [`Curve::mul_generator_public_vartime`]).
pub struct CombTable<A: PrimeCurveAffine> {
    table: Vec<A>,
}

impl<A: PrimeCurveAffine> CombTable<A>
where
    A::Curve: group::Curve<AffineRepr = A>,
{
    /// Precomputes the table for `base` (a few milliseconds, done once).
    pub fn new(base: A::Curve) -> Self {
        let mut proj = Vec::with_capacity(32 * 256);
        let mut window_base = base;
        for _ in 0..32 {
            let mut acc = A::Curve::identity();
            for _ in 0..256 {
                proj.push(acc);
                acc += window_base;
            }
            // acc = 256 * window_base now.
            window_base = acc;
        }
        let mut table = vec![A::identity(); proj.len()];
        <A::Curve as group::Curve>::batch_normalize(&proj, &mut table);
        CombTable { table }
    }

    /// `s * base` for the little-endian 32-byte scalar `le`, in variable time (public `s` only).
    pub fn mul(&self, le: &[u8; 32]) -> A::Curve {
        let mut acc = A::Curve::identity();
        for (i, byte) in le.iter().enumerate() {
            if *byte != 0 {
                acc += self.table[i * 256 + *byte as usize];
            }
        }
        acc
    }
}
