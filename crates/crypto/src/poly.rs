//! Polynomials over the scalar field, Lagrange interpolation and FFT evaluation domains.
//!
//! A secret sharing of degree `t - 1` is a polynomial `f` with `f(0)` the secret; participant `i`
//! holds `f(x_i)` for its index `x_i` (see [`crate::index`]). Any `t` shares determine `f(0)` by
//! Lagrange interpolation at zero, which this module computes for arbitrary distinct non-zero
//! indices with a single field inversion (Montgomery's batch inversion).

use ff::{Field, PrimeField};
use group::Group;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroize;

use crate::error::CryptoError;
use crate::group::{Curve, scalar_from_wide};

/// A polynomial with scalar coefficients, lowest degree first. Coefficients are wiped on drop,
/// since dealers' polynomials are secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Polynomial<F: Field> {
    coeffs: Vec<F>,
}

impl<F: Field> core::fmt::Debug for Polynomial<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Polynomial(degree {}, <redacted>)",
            self.coeffs.len().saturating_sub(1)
        )
    }
}

impl<F: Field> Drop for Polynomial<F> {
    fn drop(&mut self) {
        for c in self.coeffs.iter_mut() {
            // SAFETY: `c` is a valid, aligned element; volatile so the wipe is not elided.
            unsafe { core::ptr::write_volatile(c, F::ZERO) };
        }
        core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
    }
}

impl<F: PrimeField> Polynomial<F> {
    /// The polynomial of degree below `points.len()` through `points`, in `O(k^2)` field
    /// operations (`M(x) = prod (x - x_i)`, each Lagrange basis polynomial `M / (x - x_i)` by
    /// synthetic division). Two points with the same `x` are refused.
    pub fn interpolate(points: &[(F, F)]) -> Result<Self, CryptoError> {
        let k = points.len();
        if k == 0 {
            return Err(CryptoError::NotEnough { needed: 1, got: 0 });
        }
        // M(x) = prod (x - x_i), coefficients lowest first.
        let mut m = vec![F::ZERO; k + 1];
        m[0] = F::ONE;
        for (i, (xi, _)) in points.iter().enumerate() {
            for d in (0..=i + 1).rev() {
                let lower = if d > 0 { m[d - 1] } else { F::ZERO };
                m[d] = lower - *xi * m[d];
            }
        }
        let mut quotients = Vec::with_capacity(k);
        let mut denominators = Vec::with_capacity(k);
        for (xi, _) in points {
            // q = M / (x - x_i); q(x_i) = prod_{j != i} (x_i - x_j), zero iff some x repeats.
            let mut q = vec![F::ZERO; k];
            q[k - 1] = m[k];
            for d in (1..k).rev() {
                q[d - 1] = m[d] + *xi * q[d];
            }
            let qx = q.iter().rev().fold(F::ZERO, |acc, c| acc * xi + c);
            quotients.push(q);
            denominators.push(qx);
        }
        batch_invert(&mut denominators).map_err(|_| CryptoError::BadIndices)?;
        let mut coeffs = vec![F::ZERO; k];
        for ((q, inv), (_, yi)) in quotients.iter().zip(&denominators).zip(points) {
            let scale = *inv * yi;
            for (c, qd) in coeffs.iter_mut().zip(q) {
                *c += *qd * scale;
            }
        }
        Ok(Self::from_coefficients(coeffs))
    }

    /// A polynomial from its coefficients (lowest degree first). An empty list is the zero
    /// polynomial of degree 0.
    pub fn from_coefficients(mut coeffs: Vec<F>) -> Self {
        if coeffs.is_empty() {
            coeffs.push(F::ZERO);
        }
        Polynomial { coeffs }
    }

    /// A uniformly random polynomial of degree `degree` with the given constant term, or a random
    /// one. Randomness comes from the caller.
    pub fn random<R: RngCore + CryptoRng>(degree: usize, constant: Option<F>, rng: &mut R) -> Self {
        let mut coeffs = Vec::with_capacity(degree + 1);
        for _ in 0..=degree {
            let mut wide = [0u8; 64];
            rng.fill_bytes(&mut wide);
            coeffs.push(scalar_from_wide::<F>(&wide));
            wide.zeroize();
        }
        if let Some(c) = constant {
            coeffs[0] = c;
        }
        Polynomial { coeffs }
    }

    /// The coefficients, lowest degree first.
    pub fn coefficients(&self) -> &[F] {
        &self.coeffs
    }

    /// The degree (number of coefficients minus one; trailing zeros are not trimmed).
    pub fn degree(&self) -> usize {
        self.coeffs.len() - 1
    }

    /// `f(x)` by Horner's rule.
    pub fn evaluate(&self, x: &F) -> F {
        let mut acc = F::ZERO;
        for c in self.coeffs.iter().rev() {
            acc = acc * x + c;
        }
        acc
    }

    /// `f(0)`.
    pub fn constant(&self) -> F {
        self.coeffs[0]
    }
}

/// Inverts every element in place with one field inversion. Fails if any element is zero.
pub fn batch_invert<F: Field>(values: &mut [F]) -> Result<(), CryptoError> {
    let mut prefix = Vec::with_capacity(values.len());
    let mut acc = F::ONE;
    for v in values.iter() {
        prefix.push(acc);
        acc *= v;
    }
    let mut inv = Option::<F>::from(acc.invert()).ok_or(CryptoError::BadIndices)?;
    for (v, p) in values.iter_mut().zip(prefix).rev() {
        let next = inv * *v;
        *v = inv * p;
        inv = next;
    }
    Ok(())
}

/// Lagrange coefficients `l_i(x)` for the given distinct indices, evaluated at `x`:
/// `l_i(x) = prod_{j != i} (x - x_j) / (x_i - x_j)`.
///
/// Costs `O(k^2)` multiplications and one inversion. Fails on repeated indices, or when `x`
/// is one of the indices (then the interpolant is the share itself).
pub fn lagrange_at<F: PrimeField>(indices: &[F], x: &F) -> Result<Vec<F>, CryptoError> {
    let k = indices.len();
    if k == 0 {
        return Err(CryptoError::NotEnough { needed: 1, got: 0 });
    }
    // numerator_i = prod_{j != i} (x - x_j) = full / (x - x_i); computed without division as
    // prefix/suffix products so that `x` may be anything not equal to an index.
    let diffs: Vec<F> = indices.iter().map(|xi| *x - xi).collect();
    let mut prefix = vec![F::ONE; k + 1];
    for i in 0..k {
        prefix[i + 1] = prefix[i] * diffs[i];
    }
    let mut suffix = vec![F::ONE; k + 1];
    for i in (0..k).rev() {
        suffix[i] = suffix[i + 1] * diffs[i];
    }
    let mut denominators = Vec::with_capacity(k);
    for (i, xi) in indices.iter().enumerate() {
        let mut d = F::ONE;
        for (j, xj) in indices.iter().enumerate() {
            if i != j {
                d *= *xi - xj;
            }
        }
        denominators.push(d);
    }
    batch_invert(&mut denominators)?;
    if indices.contains(x) {
        return Err(CryptoError::BadIndices);
    }
    Ok((0..k)
        .map(|i| prefix[i] * suffix[i + 1] * denominators[i])
        .collect())
}

/// Lagrange coefficients at zero for distinct non-zero indices.
pub fn lagrange_at_zero<F: PrimeField>(indices: &[F]) -> Result<Vec<F>, CryptoError> {
    lagrange_at(indices, &F::ZERO)
}

/// Interpolates `f(0)` from `(x_i, f(x_i))` pairs (at least `degree + 1` of them).
pub fn interpolate_at_zero<F: PrimeField>(points: &[(F, F)]) -> Result<F, CryptoError> {
    let xs: Vec<F> = points.iter().map(|p| p.0).collect();
    let l = lagrange_at_zero(&xs)?;
    Ok(points.iter().zip(l).map(|(p, li)| p.1 * li).sum())
}

/// Interpolation in the exponent: given `Y_i = f(x_i) * G`, returns `f(0) * G` with one MSM.
pub fn interpolate_in_exponent<C: Curve>(
    indices: &[C::Scalar],
    values: &[C::Affine],
) -> Result<C::Point, CryptoError> {
    if indices.len() != values.len() {
        return Err(CryptoError::LengthMismatch("indices and values"));
    }
    let l = lagrange_at_zero(indices)?;
    Ok(C::msm(values, &l))
}

/// A multiplicative subgroup of the scalar field of order `2^k`: `{1, w, w^2, ...}`.
///
/// Exists for BLS12-381 (2-adicity 32), not in practice for secp256k1 (2-adicity 6).
#[derive(Debug, Clone)]
pub struct Domain<F: PrimeField> {
    size: usize,
    log_size: u32,
    omega: F,
}

impl<F: PrimeField> Domain<F> {
    /// The smallest domain with at least `min_size` elements.
    pub fn new(min_size: usize) -> Result<Self, CryptoError> {
        let size = min_size.max(1).next_power_of_two();
        let log_size = size.trailing_zeros();
        if log_size > F::S {
            return Err(CryptoError::NoDomain(size));
        }
        // ROOT_OF_UNITY has order 2^S; square it down to order 2^log_size.
        let mut omega = F::ROOT_OF_UNITY;
        for _ in log_size..F::S {
            omega = omega.square();
        }
        Ok(Domain {
            size,
            log_size,
            omega,
        })
    }

    /// Number of elements.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The generator `w`.
    pub fn omega(&self) -> F {
        self.omega
    }

    /// The first `n` elements `w^0 .. w^(n-1)`.
    pub fn elements(&self, n: usize) -> Vec<F> {
        let mut out = Vec::with_capacity(n);
        let mut x = F::ONE;
        for _ in 0..n {
            out.push(x);
            x *= self.omega;
        }
        out
    }

    /// Evaluates the polynomial in the exponent with coefficients `coeffs` (`coeffs.len() <=
    /// size`) at every domain element: `out[i] = sum_k w^(ik) coeffs[k]`. Radix-2 decimation in
    /// time, `(size / 2) log2(size)` scalar multiplications.
    pub fn fft_in_exponent<C: Curve<Scalar = F>>(
        &self,
        coeffs: &[C::Point],
    ) -> Result<Vec<C::Point>, CryptoError> {
        if coeffs.len() > self.size {
            return Err(CryptoError::LengthMismatch(
                "more coefficients than domain size",
            ));
        }
        let mut a = vec![C::Point::identity(); self.size];
        a[..coeffs.len()].copy_from_slice(coeffs);
        bit_reverse(&mut a, self.log_size);
        let mut half = 1;
        while half < self.size {
            // w_m = w^(size / (2 half)), a primitive (2 half)-th root of unity.
            let mut w_m = self.omega;
            let mut m = self.size / (2 * half);
            while m > 1 {
                w_m = w_m.square();
                m /= 2;
            }
            let twiddles: Vec<F> = {
                let mut t = Vec::with_capacity(half);
                let mut w = F::ONE;
                for _ in 0..half {
                    t.push(w);
                    w *= w_m;
                }
                t
            };
            for start in (0..self.size).step_by(2 * half) {
                for (k, tw) in twiddles.iter().enumerate() {
                    let u = a[start + k];
                    let v = if k == 0 {
                        a[start + k + half]
                    } else {
                        a[start + k + half] * tw
                    };
                    a[start + k] = u + v;
                    a[start + k + half] = u - v;
                }
            }
            half *= 2;
        }
        Ok(a)
    }

    /// The same transform on scalars (used for tests and for dealing at domain points).
    pub fn fft(&self, coeffs: &[F]) -> Result<Vec<F>, CryptoError> {
        if coeffs.len() > self.size {
            return Err(CryptoError::LengthMismatch(
                "more coefficients than domain size",
            ));
        }
        let mut a = vec![F::ZERO; self.size];
        a[..coeffs.len()].copy_from_slice(coeffs);
        bit_reverse(&mut a, self.log_size);
        let mut half = 1;
        while half < self.size {
            let mut w_m = self.omega;
            let mut m = self.size / (2 * half);
            while m > 1 {
                w_m = w_m.square();
                m /= 2;
            }
            for start in (0..self.size).step_by(2 * half) {
                let mut w = F::ONE;
                for k in 0..half {
                    let u = a[start + k];
                    let v = a[start + k + half] * w;
                    a[start + k] = u + v;
                    a[start + k + half] = u - v;
                    w *= w_m;
                }
            }
            half *= 2;
        }
        Ok(a)
    }
}

/// In-place bit-reversal permutation of a slice of length `2^log_size`.
fn bit_reverse<T>(a: &mut [T], log_size: u32) {
    if log_size == 0 {
        return;
    }
    for i in 0..a.len() {
        let j = i.reverse_bits() >> (usize::BITS - log_size);
        if i < j {
            a.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blstrs::Scalar;
    use proptest::prelude::*;
    use rand_core::SeedableRng;

    fn rng(seed: u64) -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(seed)
    }

    #[test]
    fn interpolation_recovers_the_polynomial_and_refuses_repeated_points() {
        let mut r = rng(1);
        for t in 1..8 {
            let f = Polynomial::<Scalar>::random(t - 1, None, &mut r);
            let points: Vec<(Scalar, Scalar)> = (3..3 + t as u64)
                .map(|i| (Scalar::from(i * i), f.evaluate(&Scalar::from(i * i))))
                .collect();
            let g = Polynomial::interpolate(&points).unwrap();
            assert_eq!(g.coefficients(), f.coefficients());
            if t > 1 {
                let mut repeated = points.clone();
                repeated[1].0 = repeated[0].0;
                assert!(matches!(
                    Polynomial::interpolate(&repeated),
                    Err(CryptoError::BadIndices)
                ));
            }
        }
        assert!(Polynomial::<Scalar>::interpolate(&[]).is_err());
    }

    proptest! {
        #[test]
        fn any_t_shares_interpolate_the_secret(seed in any::<u64>(), t in 1usize..12, extra in 0usize..6, skip in 0usize..6) {
            let mut r = rng(seed);
            let f = Polynomial::<Scalar>::random(t - 1, None, &mut r);
            let n = t + extra;
            let start = skip.min(extra);
            let pts: Vec<(Scalar, Scalar)> = (1..=n as u64)
                .map(|i| (Scalar::from(i), f.evaluate(&Scalar::from(i))))
                .skip(start)
                .take(t)
                .collect();
            prop_assert_eq!(interpolate_at_zero(&pts).unwrap(), f.constant());
        }

        #[test]
        fn fewer_than_t_shares_do_not_determine_the_secret(seed in any::<u64>(), t in 2usize..10) {
            // t-1 shares are consistent with any secret: the interpolant through them differs
            // from f(0) unless by chance.
            let mut r = rng(seed);
            let f = Polynomial::<Scalar>::random(t - 1, None, &mut r);
            let pts: Vec<(Scalar, Scalar)> = (1..t as u64)
                .map(|i| (Scalar::from(i), f.evaluate(&Scalar::from(i))))
                .collect();
            prop_assert_ne!(interpolate_at_zero(&pts).unwrap(), f.constant());
        }
    }

    #[test]
    fn lagrange_rejects_duplicates_and_zero_target_index() {
        let xs = [Scalar::from(1u64), Scalar::from(2u64), Scalar::from(1u64)];
        assert_eq!(lagrange_at_zero(&xs), Err(CryptoError::BadIndices));
        let xs = [Scalar::from(0u64), Scalar::from(2u64)];
        assert_eq!(lagrange_at_zero(&xs), Err(CryptoError::BadIndices));
    }

    #[test]
    fn batch_invert_matches_single() {
        let mut v: Vec<Scalar> = (1..20u64).map(Scalar::from).collect();
        let expect: Vec<Scalar> = v.iter().map(|x| x.invert().unwrap()).collect();
        batch_invert(&mut v).unwrap();
        assert_eq!(v, expect);
        let mut z = vec![Scalar::from(3u64), Scalar::ZERO];
        assert!(batch_invert(&mut z).is_err());
    }

    #[test]
    fn fft_matches_direct_evaluation() {
        use crate::Bls12381G1;
        use group::Curve as _;
        let mut r = rng(3);
        for n in [1usize, 2, 5, 16, 33] {
            let d = Domain::<Scalar>::new(n).unwrap();
            let f = Polynomial::<Scalar>::random(n - 1, None, &mut r);
            let evals = d.fft(f.coefficients()).unwrap();
            for (x, y) in d.elements(d.size()).iter().zip(&evals) {
                assert_eq!(f.evaluate(x), *y);
            }
            let g = blstrs::G1Projective::generator();
            let pts: Vec<_> = f.coefficients().iter().map(|c| g * c).collect();
            let ev = d.fft_in_exponent::<Bls12381G1>(&pts).unwrap();
            for (p, y) in ev.iter().zip(&evals) {
                assert_eq!(p.to_affine(), (g * y).to_affine());
            }
        }
    }

    #[test]
    fn secp256k1_has_no_large_domain() {
        assert!(Domain::<k256::Scalar>::new(64).is_ok());
        assert!(matches!(
            Domain::<k256::Scalar>::new(128),
            Err(CryptoError::NoDomain(128))
        ));
    }
}
