//! Polynomial commitments for verifiable secret sharing: Feldman and Pedersen, in coefficient form
//! and in evaluation form, with batched share verification.
//!
//! # Coefficient form
//! A dealer with polynomial `f(x) = a_0 + a_1 x + ... + a_{t-1} x^{t-1}` publishes the Feldman
//! commitment `A_k = a_k G` ([`FeldmanCommitment`]); with a second, blinding polynomial `f'` it
//! publishes the Pedersen commitment `C_k = a_k G + b_k H` ([`PedersenCommitment`]), which hides
//! `f(0)` unconditionally. Participant `x` checks its share `s = f(x)` by
//! `s G == sum_k x^k A_k`.
//!
//! [`batch_verify_feldman`] checks the shares of many dealers for one participant with a single
//! multi-scalar multiplication: with independent random 128-bit weights `r_i`,
//! `(sum_i r_i s_i) G == sum_i sum_k (r_i x^k) A_ik`. If any share is wrong the two sides differ
//! except with probability `2^-128` over the weights (the group has prime order). On failure it
//! falls back to one-by-one checks so it names exactly the bad dealers.
//!
//! # Evaluation form
//! The same Feldman commitment can be published as the values of `f` in the exponent at the
//! points `(0, x_1, ..., x_n)`: `E_0 = f(0) G` (the dealer's public contribution) and
//! `E_j = f(x_j) G` (participant `j`'s public share). [`EvalCommitment`] holds such a vector.
//! Knowing `t` of the values determines the others, so this is the coefficient commitment in
//! Lagrange basis; its advantages for a DKG are that a participant verifies its share with one
//! point (`s_j G == E_j`, batched over dealers with one small MSM) instead of a size-`t`
//! evaluation, that public key shares of the group are plain sums of the dealers' vectors, and that
//! it works with any indices (no FFT needed).
//!
//! That a vector is a commitment to a polynomial of degree below `t` is checked with the dual
//! code ([`DualCode`], after Cascudo and David, SCRAPE, 2017): for points `p_0..p_n` and
//! `v_j = prod_{l != j} (p_j - p_l)^-1`, the values `E_j` lie on a polynomial of degree `< t` iff
//! `sum_j v_j m(p_j) E_j = 0` for every polynomial `m` of degree `<= n - t`. Checking one `m` with
//! uniformly random coefficients catches a vector that is not a codeword except with probability
//! `1/|F|`. The check is linear, so it can be run once on a sum of dealers' vectors, and only when
//! the sum fails is it run per dealer.
//!
//! # Subgroup membership of bulk points
//! BLS12-381 G1 has a cofactor. Points decoded with `Curve::decode_point_unchecked_subgroup`
//! are on the curve but may carry a small-order component. Verification equations here are sums
//! of products, so a torsion component in a dealer's point either makes the check fail or cancels
//! within the sum; protocols that accept such points must check subgroup membership of every
//! point they output (aggregated public key shares and group key), which costs one check per
//! output point instead of one per input point. Keyquorum's DKG does exactly that.

use ff::{Field, PrimeField};
use group::Group;
use group::prime::PrimeCurveAffine;
use rand_core::{CryptoRng, RngCore};

use crate::error::{CryptoError, DecodeError};
use crate::group::Curve;
use crate::hash::expand_message_xmd;
use crate::poly::{Domain, Polynomial, batch_invert};
use sha2::{Digest, Sha256};

/// A 128-bit random weight as a scalar, for random linear combinations.
fn random_weight<F: PrimeField, R: RngCore + CryptoRng>(rng: &mut R) -> F {
    let hi = rng.next_u64();
    let lo = rng.next_u64();
    F::from(hi) * F::from(1u64 << 32).square() + F::from(lo)
}

/// `1, x, x^2, ..., x^(t-1)`.
fn powers<F: Field>(x: &F, t: usize) -> Vec<F> {
    let mut out = Vec::with_capacity(t);
    let mut acc = F::ONE;
    for _ in 0..t {
        out.push(acc);
        acc *= x;
    }
    out
}

/// `scalar * G` for the fixed generator.
pub fn mul_generator<C: Curve>(s: &C::Scalar) -> C::Point {
    C::mul_generator(s)
}

/// A Feldman commitment in coefficient form: `A_k = a_k G`, `k = 0..t-1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeldmanCommitment<C: Curve> {
    points: Vec<C::Affine>,
}

impl<C: Curve> FeldmanCommitment<C> {
    /// Commits to a polynomial.
    pub fn from_polynomial(f: &Polynomial<C::Scalar>) -> Self {
        let proj: Vec<C::Point> = f.coefficients().iter().map(mul_generator::<C>).collect();
        FeldmanCommitment {
            points: C::batch_normalize(&proj),
        }
    }

    /// Wraps already-validated points.
    pub fn from_points(points: Vec<C::Affine>) -> Result<Self, CryptoError> {
        if points.is_empty() {
            return Err(CryptoError::NotEnough { needed: 1, got: 0 });
        }
        Ok(FeldmanCommitment { points })
    }

    /// The commitment points `A_0..A_{t-1}`.
    pub fn points(&self) -> &[C::Affine] {
        &self.points
    }

    /// The number of coefficients `t` (the threshold).
    pub fn threshold(&self) -> usize {
        self.points.len()
    }

    /// `A_0 = f(0) G`: the dealer's public contribution.
    pub fn constant(&self) -> &C::Affine {
        &self.points[0]
    }

    /// `f(x) G = sum_k x^k A_k` (one MSM of size `t`).
    pub fn evaluate(&self, x: &C::Scalar) -> C::Point {
        C::msm(&self.points, &powers(x, self.points.len()))
    }

    /// Whether `share = f(x)`.
    pub fn verify_share(&self, x: &C::Scalar, share: &C::Scalar) -> bool {
        mul_generator::<C>(share) == self.evaluate(x)
    }

    /// Element-wise sum of commitments of equal threshold (the group's public polynomial).
    pub fn sum<'a>(commitments: impl IntoIterator<Item = &'a Self>) -> Result<Self, CryptoError>
    where
        C: 'a,
    {
        let mut acc: Option<Vec<C::Point>> = None;
        for c in commitments {
            match &mut acc {
                None => acc = Some(c.points.iter().map(|p| p.to_curve()).collect()),
                Some(a) => {
                    if a.len() != c.points.len() {
                        return Err(CryptoError::LengthMismatch("commitment thresholds differ"));
                    }
                    for (x, y) in a.iter_mut().zip(&c.points) {
                        *x += y.to_curve();
                    }
                }
            }
        }
        let acc = acc.ok_or(CryptoError::NotEnough { needed: 1, got: 0 })?;
        Ok(FeldmanCommitment {
            points: C::batch_normalize(&acc),
        })
    }

    /// Public key shares `f(x_i) G` for every index, one MSM each.
    pub fn public_key_shares(&self, indices: &[C::Scalar]) -> Vec<C::Affine> {
        let proj: Vec<C::Point> = indices.iter().map(|x| self.evaluate(x)).collect();
        C::batch_normalize(&proj)
    }

    /// Public key shares at the first `n` points of a root-of-unity domain, with one FFT.
    pub fn public_key_shares_fft(
        &self,
        domain: &Domain<C::Scalar>,
        n: usize,
    ) -> Result<Vec<C::Affine>, CryptoError> {
        if n > domain.size() {
            return Err(CryptoError::LengthMismatch(
                "more participants than domain size",
            ));
        }
        let coeffs: Vec<C::Point> = self.points.iter().map(|p| p.to_curve()).collect();
        let evals = domain.fft_in_exponent::<C>(&coeffs)?;
        Ok(C::batch_normalize(&evals[..n]))
    }

    /// Canonical encoding: the compressed points in order.
    pub fn encode(&self, out: &mut Vec<u8>) {
        for p in &self.points {
            C::encode_point(p, out);
        }
    }

    /// Decodes exactly `threshold` fully validated points.
    pub fn decode(bytes: &[u8], threshold: usize) -> Result<Self, DecodeError> {
        let expected = threshold * C::POINT_LEN;
        if bytes.len() != expected || threshold == 0 {
            return Err(DecodeError::Length {
                expected,
                actual: bytes.len(),
            });
        }
        let points = bytes
            .chunks_exact(C::POINT_LEN)
            .map(C::decode_point)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FeldmanCommitment { points })
    }
}

/// Checks the shares of many dealers for one participant `x` with one MSM (see the module docs).
///
/// Returns the positions (in `items`) of the dealers whose share is wrong.
pub fn batch_verify_feldman<C: Curve, R: RngCore + CryptoRng>(
    x: &C::Scalar,
    items: &[(&FeldmanCommitment<C>, C::Scalar)],
    rng: &mut R,
) -> Result<(), Vec<usize>> {
    if items.is_empty() {
        return Ok(());
    }
    let total: usize = items.iter().map(|(c, _)| c.threshold()).sum();
    let max_t = items.iter().map(|(c, _)| c.threshold()).max().unwrap_or(0);
    let xp = powers(x, max_t);
    let mut points = Vec::with_capacity(total + 1);
    let mut scalars = Vec::with_capacity(total + 1);
    let mut lhs = C::Scalar::ZERO;
    for (c, s) in items {
        let r: C::Scalar = random_weight(rng);
        lhs += r * s;
        for (p, xk) in c.points.iter().zip(&xp) {
            points.push(*p);
            scalars.push(r * xk);
        }
    }
    // sum r_i x^k A_ik - (sum r_i s_i) G == 0
    points.push(C::Affine::generator());
    scalars.push(-lhs);
    if bool::from(C::msm(&points, &scalars).is_identity()) {
        return Ok(());
    }
    Err(items
        .iter()
        .enumerate()
        .filter(|(_, (c, s))| !c.verify_share(x, s))
        .map(|(i, _)| i)
        .collect())
}

/// A Pedersen commitment in coefficient form: `C_k = a_k G + b_k H`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PedersenCommitment<C: Curve> {
    points: Vec<C::Affine>,
}

impl<C: Curve> PedersenCommitment<C> {
    /// Commits to `f` blinded by `f_blind` (same degree).
    pub fn from_polynomials(
        f: &Polynomial<C::Scalar>,
        f_blind: &Polynomial<C::Scalar>,
    ) -> Result<Self, CryptoError> {
        if f.coefficients().len() != f_blind.coefficients().len() {
            return Err(CryptoError::LengthMismatch("blinding polynomial degree"));
        }
        let h = C::pedersen_h().to_curve();
        let proj: Vec<C::Point> = f
            .coefficients()
            .iter()
            .zip(f_blind.coefficients())
            .map(|(a, b)| mul_generator::<C>(a) + h * b)
            .collect();
        Ok(PedersenCommitment {
            points: C::batch_normalize(&proj),
        })
    }

    /// Wraps already-validated points.
    pub fn from_points(points: Vec<C::Affine>) -> Result<Self, CryptoError> {
        if points.is_empty() {
            return Err(CryptoError::NotEnough { needed: 1, got: 0 });
        }
        Ok(PedersenCommitment { points })
    }

    /// The commitment points.
    pub fn points(&self) -> &[C::Affine] {
        &self.points
    }

    /// The threshold `t`.
    pub fn threshold(&self) -> usize {
        self.points.len()
    }

    /// Whether `(share, blind) = (f(x), f'(x))`: `share G + blind H == sum_k x^k C_k`.
    pub fn verify_share(&self, x: &C::Scalar, share: &C::Scalar, blind: &C::Scalar) -> bool {
        let lhs = mul_generator::<C>(share) + C::pedersen_h().to_curve() * blind;
        lhs == C::msm(&self.points, &powers(x, self.points.len()))
    }
}

/// A commitment in evaluation form: `E_0 = f(0) G, E_j = f(x_j) G` (see the module docs).
#[derive(Debug, Clone)]
pub struct EvalCommitment<C: Curve> {
    points: Vec<C::Affine>,
    /// [`Self::digest`], computed once: from the received bytes when decoded (so a received
    /// commitment is never encoded again), else on first use.
    digest: std::sync::OnceLock<[u8; 32]>,
}

impl<C: Curve> PartialEq for EvalCommitment<C> {
    fn eq(&self, other: &Self) -> bool {
        self.points == other.points
    }
}

impl<C: Curve> Eq for EvalCommitment<C> {}

impl<C: Curve> EvalCommitment<C> {
    /// Commits to `f` at `0` and at each index (Feldman: `f(p) G`).
    pub fn feldman(f: &Polynomial<C::Scalar>, indices: &[C::Scalar]) -> Self {
        let mut proj = Vec::with_capacity(indices.len() + 1);
        proj.push(mul_generator::<C>(&f.constant()));
        for x in indices {
            proj.push(mul_generator::<C>(&f.evaluate(x)));
        }
        EvalCommitment {
            points: C::batch_normalize(&proj),
            digest: Default::default(),
        }
    }

    /// Commits to `f` blinded by `f_blind` at `0` and at each index (Pedersen:
    /// `f(p) G + f'(p) H`).
    pub fn pedersen(
        f: &Polynomial<C::Scalar>,
        f_blind: &Polynomial<C::Scalar>,
        indices: &[C::Scalar],
    ) -> Self {
        let h = C::pedersen_h().to_curve();
        let mut proj = Vec::with_capacity(indices.len() + 1);
        proj.push(mul_generator::<C>(&f.constant()) + h * f_blind.constant());
        for x in indices {
            proj.push(mul_generator::<C>(&f.evaluate(x)) + h * f_blind.evaluate(x));
        }
        EvalCommitment {
            points: C::batch_normalize(&proj),
            digest: Default::default(),
        }
    }

    /// Wraps points (`n + 1` of them: the value at zero, then one per participant).
    pub fn from_points(points: Vec<C::Affine>) -> Result<Self, CryptoError> {
        if points.len() < 2 {
            return Err(CryptoError::NotEnough {
                needed: 2,
                got: points.len(),
            });
        }
        Ok(EvalCommitment {
            points,
            digest: Default::default(),
        })
    }

    /// Decodes `n + 1` concatenated uncompressed points (canonical coordinates, on the curve;
    /// subgroup membership is left to the caller, as for
    /// [`Curve::decode_point_unchecked_subgroup`]). The digest is taken from `bytes` directly:
    /// the encoding is canonical, so it equals the digest of the re-encoded points.
    pub fn decode_uncompressed(bytes: &[u8]) -> Result<Self, CryptoError> {
        if !bytes.len().is_multiple_of(C::UNCOMPRESSED_LEN) {
            return Err(CryptoError::Decode(DecodeError::Length {
                expected: C::UNCOMPRESSED_LEN * (bytes.len() / C::UNCOMPRESSED_LEN + 1),
                actual: bytes.len(),
            }));
        }
        let points = bytes
            .chunks_exact(C::UNCOMPRESSED_LEN)
            .map(C::decode_point_unchecked_subgroup)
            .collect::<Result<Vec<_>, _>>()?;
        let c = Self::from_points(points)?;
        let _ = c.digest.set(Sha256::digest(bytes).into());
        Ok(c)
    }

    /// SHA-256 of the concatenated uncompressed encodings of the points: what hashes that
    /// bind a commitment (dealer statements, ack payloads) include instead of the points.
    pub fn digest(&self) -> [u8; 32] {
        *self.digest.get_or_init(|| {
            let mut h = Sha256::new();
            let mut buf = Vec::with_capacity(C::UNCOMPRESSED_LEN);
            for p in &self.points {
                buf.clear();
                C::encode_point_uncompressed(p, &mut buf);
                h.update(&buf);
            }
            h.finalize().into()
        })
    }

    /// All points, value at zero first.
    pub fn points(&self) -> &[C::Affine] {
        &self.points
    }

    /// The number of participants `n`.
    pub fn participants(&self) -> usize {
        self.points.len() - 1
    }

    /// `E_0 = f(0) G` (for Pedersen: `f(0) G + f'(0) H`).
    pub fn constant(&self) -> &C::Affine {
        &self.points[0]
    }

    /// Participant `j`'s point (`j` counts from 0 in committee order).
    pub fn share_point(&self, j: usize) -> Option<&C::Affine> {
        self.points.get(j + 1)
    }

    /// Whether `share` is participant `j`'s Feldman share: `share G == E_{j+1}`.
    pub fn verify_share(&self, j: usize, share: &C::Scalar) -> bool {
        match self.share_point(j) {
            Some(p) => mul_generator::<C>(share) == p.to_curve(),
            None => false,
        }
    }

    /// Whether `(share, blind)` is participant `j`'s Pedersen share.
    pub fn verify_pedersen_share(&self, j: usize, share: &C::Scalar, blind: &C::Scalar) -> bool {
        match self.share_point(j) {
            Some(p) => {
                mul_generator::<C>(share) + C::pedersen_h().to_curve() * blind == p.to_curve()
            }
            None => false,
        }
    }
}

/// Checks the Feldman shares of many dealers for participant `j` against evaluation-form
/// commitments with one MSM of one point per dealer: `(sum r_i s_i) G == sum r_i E_ij`.
///
/// Returns the positions of the bad dealers on failure.
pub fn batch_verify_eval<C: Curve, R: RngCore + CryptoRng>(
    j: usize,
    items: &[(&EvalCommitment<C>, C::Scalar)],
    rng: &mut R,
) -> Result<(), Vec<usize>> {
    let mut points = Vec::with_capacity(items.len() + 1);
    let mut scalars = Vec::with_capacity(items.len() + 1);
    let mut lhs = C::Scalar::ZERO;
    let mut missing = Vec::new();
    for (pos, (c, s)) in items.iter().enumerate() {
        match c.share_point(j) {
            Some(p) => {
                let r: C::Scalar = random_weight(rng);
                lhs += r * s;
                points.push(*p);
                scalars.push(r);
            }
            None => missing.push(pos),
        }
    }
    if !missing.is_empty() {
        return Err(missing);
    }
    points.push(C::Affine::generator());
    scalars.push(-lhs);
    if bool::from(C::msm(&points, &scalars).is_identity()) {
        return Ok(());
    }
    Err(items
        .iter()
        .enumerate()
        .filter(|(_, (c, s))| !c.verify_share(j, s))
        .map(|(i, _)| i)
        .collect())
}

/// Dual-code weights for checking that values at points `p_0..p_n` lie on a polynomial of
/// degree below `t` (see the module docs). Computed once per committee.
#[derive(Debug, Clone)]
pub struct DualCode<F: PrimeField> {
    points: Vec<F>,
    v: Vec<F>,
    threshold: usize,
}

impl<F: PrimeField> DualCode<F> {
    /// Weights for the points `(0, x_1, ..., x_n)` and threshold `t` (degree `< t`).
    pub fn new(indices: &[F], threshold: usize) -> Result<Self, CryptoError> {
        let mut points = Vec::with_capacity(indices.len() + 1);
        points.push(F::ZERO);
        points.extend_from_slice(indices);
        let n1 = points.len();
        if threshold == 0 || threshold > indices.len() {
            return Err(CryptoError::BadThreshold {
                threshold,
                n: indices.len(),
            });
        }
        // v_j = prod_{l != j} (p_j - p_l)^-1, O(n^2) multiplications and one inversion.
        let mut v = Vec::with_capacity(n1);
        for (j, pj) in points.iter().enumerate() {
            let mut d = F::ONE;
            for (l, pl) in points.iter().enumerate() {
                if l != j {
                    d *= *pj - pl;
                }
            }
            v.push(d);
        }
        batch_invert(&mut v)?;
        Ok(DualCode {
            points,
            v,
            threshold,
        })
    }

    /// Number of points (`n + 1`).
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Always false: there is at least the point zero.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The threshold `t`.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Check weights `w_j = v_j m(p_j)` for the polynomial `m` of degree `n - t` whose
    /// coefficients are derived from `seed` (a Fiat-Shamir challenge over everything checked,
    /// so that all verifiers get the same answer).
    pub fn weights(&self, seed: &[u8; 32]) -> Vec<F> {
        let deg_m = self.points.len() - 1 - self.threshold;
        let coeffs: Vec<F> = (0..=deg_m as u32)
            .map(|k| {
                let mut msg = [0u8; 36];
                msg[..32].copy_from_slice(seed);
                msg[32..].copy_from_slice(&k.to_be_bytes());
                let wide = expand_message_xmd::<64>(&msg, b"KEYQUORUM-V01-DUALCODE");
                crate::group::scalar_from_wide(&wide)
            })
            .collect();
        let m = Polynomial::from_coefficients(coeffs);
        self.points
            .iter()
            .zip(&self.v)
            .map(|(p, v)| *v * m.evaluate(p))
            .collect()
    }

    /// Whether `values` (in the exponent, at `p_0..p_n`) lie on a polynomial of degree `< t`,
    /// with the check polynomial derived from `seed`. One MSM of `n + 1` points.
    pub fn is_codeword<C: Curve<Scalar = F>>(&self, values: &[C::Affine], seed: &[u8; 32]) -> bool {
        if values.len() != self.points.len() {
            return false;
        }
        let w = self.weights(seed);
        bool::from(C::msm(values, &w).is_identity())
    }

    /// Same check with precomputed weights (from [`DualCode::weights`]).
    pub fn is_codeword_with<C: Curve<Scalar = F>>(values: &[C::Affine], weights: &[F]) -> bool {
        values.len() == weights.len() && bool::from(C::msm(values, weights).is_identity())
    }
}

/// Column sums of evaluation-form commitments: `Y_j = sum_i E_ij` for `j = 0..n`.
pub fn sum_eval<'a, C: Curve + 'a>(
    commitments: impl IntoIterator<Item = &'a EvalCommitment<C>>,
) -> Result<Vec<C::Affine>, CryptoError> {
    let commitments: Vec<&EvalCommitment<C>> = commitments.into_iter().collect();
    let first = commitments
        .first()
        .ok_or(CryptoError::NotEnough { needed: 1, got: 0 })?;
    let width = first.points.len();
    if commitments.iter().any(|c| c.points.len() != width) {
        return Err(CryptoError::LengthMismatch("commitment sizes differ"));
    }
    let mut column = Vec::with_capacity(commitments.len());
    let mut out = Vec::with_capacity(width);
    for j in 0..width {
        column.clear();
        column.extend(commitments.iter().map(|c| c.points[j]));
        out.push(C::sum(&column));
    }
    Ok(C::batch_normalize(&out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index;
    use crate::{Bls12381G1, Secp256k1};
    use group::Curve as _;
    use proptest::prelude::*;
    use rand_core::SeedableRng;

    type R = rand_chacha::ChaCha20Rng;

    fn deal<C: Curve>(t: usize, n: usize, rng: &mut R) -> (Polynomial<C::Scalar>, Vec<C::Scalar>) {
        let f = Polynomial::random(t - 1, None, rng);
        let xs = index::sequential::<C::Scalar>(n);
        let shares = xs.iter().map(|x| f.evaluate(x)).collect();
        (f, shares)
    }

    fn feldman_soundness<C: Curve>(seed: u64, t: usize, n: usize, bad: usize) {
        let mut rng = R::seed_from_u64(seed);
        let xs = index::sequential::<C::Scalar>(n);
        let mut commits = Vec::new();
        let mut shares_for_0 = Vec::new();
        for _ in 0..4 {
            let (f, shares) = deal::<C>(t, n, &mut rng);
            commits.push(FeldmanCommitment::<C>::from_polynomial(&f));
            shares_for_0.push(shares[0]);
        }
        for (c, s) in commits.iter().zip(&shares_for_0) {
            assert!(c.verify_share(&xs[0], s));
        }
        let items: Vec<_> = commits.iter().zip(shares_for_0.iter().copied()).collect();
        assert!(batch_verify_feldman(&xs[0], &items, &mut rng).is_ok());
        // Tamper one share: exactly that dealer is named.
        let mut tampered = items.clone();
        tampered[bad % 4].1 += C::Scalar::ONE;
        assert_eq!(
            batch_verify_feldman(&xs[0], &tampered, &mut rng),
            Err(vec![bad % 4])
        );
        assert!(!commits[bad % 4].verify_share(&xs[0], &tampered[bad % 4].1));
        // Tamper one commitment point instead.
        let mut pts = commits[bad % 4].points().to_vec();
        let k = bad % pts.len();
        pts[k] = (pts[k].to_curve() + C::Point::generator()).to_affine();
        let forged = FeldmanCommitment::<C>::from_points(pts).unwrap();
        assert!(!forged.verify_share(&xs[0], &shares_for_0[bad % 4]));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn feldman_rejects_tampering_bls(seed in any::<u64>(), t in 1usize..6, extra in 0usize..4, bad in 0usize..8) {
            feldman_soundness::<Bls12381G1>(seed, t, t + extra, bad);
        }

        #[test]
        fn feldman_rejects_tampering_secp(seed in any::<u64>(), t in 1usize..6, extra in 0usize..4, bad in 0usize..8) {
            feldman_soundness::<Secp256k1>(seed, t, t + extra, bad);
        }

        #[test]
        fn eval_commitment_codeword_iff_low_degree(seed in any::<u64>(), t in 1usize..6, extra in 0usize..5) {
            let mut rng = R::seed_from_u64(seed);
            let n = t + extra;
            let xs = index::sequential::<blstrs::Scalar>(n);
            let f = Polynomial::random(t - 1, None, &mut rng);
            let e = EvalCommitment::<Bls12381G1>::feldman(&f, &xs);
            let dual = DualCode::new(&xs, t).unwrap();
            let challenge = [seed as u8; 32];
            prop_assert!(dual.is_codeword::<Bls12381G1>(e.points(), &challenge));
            for (j, x) in xs.iter().enumerate() {
                prop_assert!(e.verify_share(j, &f.evaluate(x)));
            }
            // Degree t (one too many) is not a codeword unless t = n (then every vector is).
            let g = Polynomial::random(t, None, &mut rng);
            let e2 = EvalCommitment::<Bls12381G1>::feldman(&g, &xs);
            if t < n {
                prop_assert!(!dual.is_codeword::<Bls12381G1>(e2.points(), &challenge));
            }
            // Changing one value breaks it whenever there is redundancy.
            if t < n {
                let mut pts = e.points().to_vec();
                let j = (seed as usize) % pts.len();
                pts[j] = (pts[j].to_curve() + <Bls12381G1 as Curve>::Point::generator()).to_affine();
                prop_assert!(!dual.is_codeword::<Bls12381G1>(&pts, &challenge));
            }
        }
    }

    fn digest_of_decoded_bytes_equals_digest_of_points<C: Curve>() {
        let mut rng = R::seed_from_u64(17);
        let (f, xs) = deal::<C>(3, 5, &mut rng);
        let c = EvalCommitment::<C>::feldman(&f, &xs);
        let mut bytes = Vec::new();
        for p in c.points() {
            C::encode_point_uncompressed(p, &mut bytes);
        }
        let decoded = EvalCommitment::<C>::decode_uncompressed(&bytes).unwrap();
        assert_eq!(decoded, c);
        assert_eq!(decoded.digest(), c.digest());
        assert_eq!(c.digest(), <[u8; 32]>::from(Sha256::digest(&bytes)));
        // A different commitment has a different digest; partial or short input is refused.
        let (g, _) = deal::<C>(3, 5, &mut rng);
        assert_ne!(EvalCommitment::<C>::feldman(&g, &xs).digest(), c.digest());
        assert!(EvalCommitment::<C>::decode_uncompressed(&bytes[1..]).is_err());
        assert!(EvalCommitment::<C>::decode_uncompressed(&bytes[..C::UNCOMPRESSED_LEN]).is_err());
        let mut off_curve = bytes.clone();
        off_curve[C::UNCOMPRESSED_LEN - 1] ^= 1;
        assert!(EvalCommitment::<C>::decode_uncompressed(&off_curve).is_err());
    }

    #[test]
    fn eval_commitment_digest() {
        digest_of_decoded_bytes_equals_digest_of_points::<Bls12381G1>();
        digest_of_decoded_bytes_equals_digest_of_points::<Secp256k1>();
    }

    #[test]
    fn eval_batch_verify_names_bad_dealers() {
        let mut rng = R::seed_from_u64(9);
        let (t, n) = (3, 5);
        let xs = index::sequential::<k256::Scalar>(n);
        let mut commits = Vec::new();
        let mut shares = Vec::new();
        for _ in 0..6 {
            let f = Polynomial::random(t - 1, None, &mut rng);
            commits.push(EvalCommitment::<Secp256k1>::feldman(&f, &xs));
            shares.push(f.evaluate(&xs[2]));
        }
        let mut items: Vec<_> = commits.iter().zip(shares.iter().copied()).collect();
        assert!(batch_verify_eval(2, &items, &mut rng).is_ok());
        items[1].1 += k256::Scalar::ONE;
        items[4].1 = k256::Scalar::ZERO;
        assert_eq!(batch_verify_eval(2, &items, &mut rng), Err(vec![1, 4]));
        assert_eq!(batch_verify_eval(9, &items, &mut rng).unwrap_err().len(), 6);
    }

    #[test]
    fn sums_give_group_key_and_public_shares() {
        let mut rng = R::seed_from_u64(11);
        let (t, n) = (4, 7);
        let xs = index::sequential::<blstrs::Scalar>(n);
        let polys: Vec<_> = (0..5)
            .map(|_| Polynomial::<blstrs::Scalar>::random(t - 1, None, &mut rng))
            .collect();
        let feldman: Vec<_> = polys
            .iter()
            .map(FeldmanCommitment::<Bls12381G1>::from_polynomial)
            .collect();
        let evals: Vec<_> = polys
            .iter()
            .map(|f| EvalCommitment::<Bls12381G1>::feldman(f, &xs))
            .collect();
        let agg = FeldmanCommitment::sum(&feldman).unwrap();
        let cols = sum_eval(&evals).unwrap();
        let pk_shares = agg.public_key_shares(&xs);
        assert_eq!(&cols[1..], &pk_shares[..]);
        assert_eq!(cols[0], *agg.constant());
        let secret: blstrs::Scalar = polys.iter().map(|f| f.constant()).sum();
        assert_eq!(cols[0], mul_generator::<Bls12381G1>(&secret).to_affine());
        // FFT path agrees with one-by-one at root-of-unity indices.
        let d = Domain::<blstrs::Scalar>::new(n).unwrap();
        let roots = d.elements(n);
        assert_eq!(
            agg.public_key_shares_fft(&d, n).unwrap(),
            agg.public_key_shares(&roots)
        );
    }

    #[test]
    fn pedersen_shares_verify_and_hide() {
        let mut rng = R::seed_from_u64(5);
        let f = Polynomial::<k256::Scalar>::random(2, None, &mut rng);
        let b = Polynomial::<k256::Scalar>::random(2, None, &mut rng);
        let c = PedersenCommitment::<Secp256k1>::from_polynomials(&f, &b).unwrap();
        let x = k256::Scalar::from(3u64);
        assert!(c.verify_share(&x, &f.evaluate(&x), &b.evaluate(&x)));
        assert!(!c.verify_share(&x, &(f.evaluate(&x) + k256::Scalar::ONE), &b.evaluate(&x)));
        // C_0 differs from the Feldman A_0: the blinding hides f(0) G.
        let a = FeldmanCommitment::<Secp256k1>::from_polynomial(&f);
        assert_ne!(c.points()[0], *a.constant());
        let xs = index::sequential::<k256::Scalar>(4);
        let e = EvalCommitment::<Secp256k1>::pedersen(&f, &b, &xs);
        assert!(e.verify_pedersen_share(1, &f.evaluate(&xs[1]), &b.evaluate(&xs[1])));
        assert!(!e.verify_pedersen_share(1, &f.evaluate(&xs[1]), &k256::Scalar::ZERO));
    }

    #[test]
    fn decode_rejects_wrong_length_and_bad_points() {
        let mut rng = R::seed_from_u64(1);
        let f = Polynomial::<blstrs::Scalar>::random(2, None, &mut rng);
        let c = FeldmanCommitment::<Bls12381G1>::from_polynomial(&f);
        let mut bytes = Vec::new();
        c.encode(&mut bytes);
        assert_eq!(
            FeldmanCommitment::<Bls12381G1>::decode(&bytes, 3).unwrap(),
            c
        );
        assert!(FeldmanCommitment::<Bls12381G1>::decode(&bytes, 2).is_err());
        assert!(FeldmanCommitment::<Bls12381G1>::decode(&bytes[..100], 3).is_err());
        let mut bad = bytes.clone();
        bad[5] ^= 1;
        assert!(FeldmanCommitment::<Bls12381G1>::decode(&bad, 3).is_err());
    }
}
