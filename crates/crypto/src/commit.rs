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
//! `(sum_i r_i s_i) G == sum_i sum_k (r_i x^k) A_ik`. Coefficient-form commitments hold points
//! of the prime-order subgroup (their decoder checks every point), so if any share is wrong the
//! two sides differ except with probability `2^-128` over the weights. On failure it falls back
//! to one-by-one checks so it names exactly the bad dealers.
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
//! BLS12-381 G1 has a cofactor `h` (`3 * 11^2 * 10177^2 * 859267^2 * 52437899^2`). Points
//! decoded with `Curve::decode_point_unchecked_subgroup` (evaluation-form commitments, see
//! [`EvalCommitment::decode_uncompressed`]) are on the curve but may carry a component `T` of
//! small order `q | h`. A random linear combination does not catch such a component: a check
//! `sum_i r_i D_i == 0` with `D_i = T` of order `q` passes whenever `r_i = 0 mod q`, that is
//! with probability `1/q`, which is `1/3` for G1 (and `1/13` for G2), not `2^-128`. The
//! `2^-128` bound of the random-weight checks holds only for points known to be in the
//! prime-order subgroup. So:
//! - [`batch_verify_eval`] checks subgroup membership of each point it compares a share with (one
//!   point per dealer) before the random linear combination; a point outside the subgroup names
//!   its dealer, as the one-by-one check `s G == E_j` would (`s G` is in the subgroup). With all
//!   compared points in the subgroup, a batch containing a wrong share passes with probability
//!   at most `2^-128`, so it accepts exactly what the one-by-one check accepts except with that
//!   probability.
//! - The rest of a commitment is never checked point by point. The DKG checks subgroup
//!   membership of each output point it computes from such commitments (the column sums
//!   `Y_j = sum_i w_i E_ij`: group key and public key shares), one check per output point
//!   instead of one per input point. A sum of points with small-order components can still be in
//!   the subgroup when the components cancel (dealers colluding); the output is then exactly the
//!   one valid commitments with the same sum would give, and every share checked against a point
//!   was checked against a subgroup point. The dual-code degree check on the sums is likewise
//!   run only on subgroup points, so its `1/|F|` bound holds.

use ff::{Field, PrimeField};
use group::Group;
use group::prime::PrimeCurveAffine;
use rand_core::{CryptoRng, RngCore};
use rayon::prelude::*;

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

/// `scalar * G` for the fixed generator, in constant time ([`Curve::mul_generator_secret`]):
/// every commitment and share check here multiplies secrets (coefficients, evaluations, shares).
pub fn mul_generator<C: Curve>(s: &C::Scalar) -> C::Point {
    C::mul_generator_secret(s)
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
    // sum r_i x^k A_ik - (sum r_i s_i) G == 0, the secret side in constant time.
    if bool::from((C::msm(&points, &scalars) - C::mul_generator_secret(&lhs)).is_identity()) {
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
    /// [`Self::encoded_uncompressed`]: the received bytes when decoded, else built on first
    /// use. Posts embedding the commitment are encoded (for their signature and for evidence)
    /// several times; converting `n + 1` points each time would dominate that.
    encoded: std::sync::OnceLock<std::sync::Arc<[u8]>>,
}

impl<C: Curve> PartialEq for EvalCommitment<C> {
    fn eq(&self, other: &Self) -> bool {
        self.points == other.points
    }
}

impl<C: Curve> Eq for EvalCommitment<C> {}

impl<C: Curve> EvalCommitment<C> {
    /// Commits to `f` at `0` and at each index (Feldman: `f(p) G`). The values of `f` are
    /// secret: each is multiplied in constant time, the `n + 1` multiplications spread over the
    /// rayon pool.
    pub fn feldman(f: &Polynomial<C::Scalar>, indices: &[C::Scalar]) -> Self {
        let mut proj = Vec::with_capacity(indices.len() + 1);
        proj.push(mul_generator::<C>(&f.constant()));
        proj.par_extend(
            indices
                .par_iter()
                .with_min_len(16)
                .map(|x| mul_generator::<C>(&f.evaluate(x))),
        );
        EvalCommitment {
            points: C::batch_normalize(&proj),
            digest: Default::default(),
            encoded: Default::default(),
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
            encoded: Default::default(),
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
            encoded: Default::default(),
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
        let _ = c.encoded.set(bytes.into());
        Ok(c)
    }

    /// The concatenated uncompressed encodings of the points (what
    /// [`EvalCommitment::decode_uncompressed`] reads), kept after the first use.
    pub fn encoded_uncompressed(&self) -> &[u8] {
        self.encoded.get_or_init(|| {
            let mut buf = Vec::with_capacity(C::UNCOMPRESSED_LEN * self.points.len());
            for p in &self.points {
                C::encode_point_uncompressed(p, &mut buf);
            }
            buf.into()
        })
    }

    /// SHA-256 of the concatenated uncompressed encodings of the points: what hashes that
    /// bind a commitment (dealer statements, ack payloads) include instead of the points.
    pub fn digest(&self) -> [u8; 32] {
        *self
            .digest
            .get_or_init(|| Sha256::digest(self.encoded_uncompressed()).into())
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

    /// Whether `share` is participant `j`'s Feldman share: `share G == E_{j+1}`, in constant time
    /// in `share` (a secret).
    pub fn verify_share(&self, j: usize, share: &C::Scalar) -> bool {
        match self.share_point(j) {
            Some(p) => mul_generator::<C>(share) == p.to_curve(),
            None => false,
        }
    }

    /// [`EvalCommitment::verify_share`] for a share that is already public (revealed on the
    /// board): variable time, see [`Curve::mul_generator_public_vartime`].
    pub fn verify_revealed_share(&self, j: usize, share: &C::Scalar) -> bool {
        match self.share_point(j) {
            // Public scalar: the share was published in the clear.
            Some(p) => C::mul_generator_public_vartime(share) == p.to_curve(),
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
/// Accepts exactly the items [`EvalCommitment::verify_share`] accepts, except with probability
/// at most `2^-128`: each compared point `E_ij` is first checked to be in the prime-order
/// subgroup (see the module docs for why the random weights alone do not suffice), and a
/// commitment without a point for `j` or with one outside the subgroup is bad outright. The
/// secret side, `(sum r_i s_i) G`, is one constant-time multiplication.
///
/// Returns the positions of the bad dealers on failure, in increasing order: all of them, found
/// one by one when the combined check fails.
pub fn batch_verify_eval<C: Curve, R: RngCore + CryptoRng>(
    j: usize,
    items: &[(&EvalCommitment<C>, C::Scalar)],
    rng: &mut R,
) -> Result<(), Vec<usize>> {
    let mut points = Vec::with_capacity(items.len() + 1);
    let mut scalars = Vec::with_capacity(items.len() + 1);
    let mut lhs = C::Scalar::ZERO;
    let mut bad = Vec::new();
    let mut positions = Vec::with_capacity(items.len());
    // Subgroup checks are the bulk of the per-item work and independent: run them over the
    // rayon pool; the weights are still drawn in item order, so the result does not change.
    let usable: Vec<Option<&C::Affine>> = items
        .par_iter()
        .map(|(c, _)| {
            c.share_point(j)
                .filter(|p| !C::HAS_COFACTOR || C::in_subgroup(p))
        })
        .collect();
    for (pos, ((_, s), point)) in items.iter().zip(usable).enumerate() {
        match point {
            Some(p) => {
                let r: C::Scalar = random_weight(rng);
                lhs += r * s;
                points.push(*p);
                scalars.push(r);
                positions.push(pos);
            }
            _ => bad.push(pos),
        }
    }
    if points.is_empty() {
        return if bad.is_empty() { Ok(()) } else { Err(bad) };
    }
    // The weights and points are public; `lhs` combines secret shares, so it is multiplied in
    // constant time instead of joining the (variable-time) MSM.
    let combined =
        crate::group::msm_parallel::<C>(&points, &scalars, 64) - C::mul_generator_secret(&lhs);
    if !bool::from(combined.is_identity()) {
        bad.extend(
            positions
                .into_iter()
                .filter(|pos| !items[*pos].0.verify_share(j, &items[*pos].1)),
        );
    }
    if bad.is_empty() {
        Ok(())
    } else {
        bad.sort_unstable();
        Err(bad)
    }
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
        let mut v = if points
            .iter()
            .enumerate()
            .all(|(k, p)| *p == F::from(k as u64))
        {
            consecutive_denominators(n1)
        } else {
            denominators(&points)
        };
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
            .par_iter()
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
        bool::from(crate::group::msm_parallel::<C>(values, &w, 64).is_identity())
    }

    /// Same check with precomputed weights (from [`DualCode::weights`]).
    pub fn is_codeword_with<C: Curve<Scalar = F>>(values: &[C::Affine], weights: &[F]) -> bool {
        values.len() == weights.len()
            && bool::from(crate::group::msm_parallel::<C>(values, weights, 64).is_identity())
    }
}

/// `d_j = prod_{l != j} (p_j - p_l)` for arbitrary distinct points: `O(n^2)` multiplications,
/// spread over the rayon pool (each `d_j` is independent).
fn denominators<F: PrimeField>(points: &[F]) -> Vec<F> {
    points
        .par_iter()
        .enumerate()
        .map(|(j, pj)| {
            points
                .iter()
                .enumerate()
                .filter(|(l, _)| *l != j)
                .fold(F::ONE, |d, (_, pl)| d * (*pj - pl))
        })
        .collect()
}

/// [`denominators`] for the points `0, 1, ..., m - 1` (sequential indices with the point zero),
/// in `O(m)`: `prod_{l != j} (j - l) = j! (m - 1 - j)! (-1)^(m - 1 - j)`.
fn consecutive_denominators<F: PrimeField>(m: usize) -> Vec<F> {
    let mut factorial = Vec::with_capacity(m);
    factorial.push(F::ONE);
    for k in 1..m {
        factorial.push(factorial[k - 1] * F::from(k as u64));
    }
    (0..m)
        .map(|j| {
            let d = factorial[j] * factorial[m - 1 - j];
            if (m - 1 - j) % 2 == 1 { -d } else { d }
        })
        .collect()
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

    #[test]
    fn consecutive_denominators_match_the_general_product() {
        for m in 1..48usize {
            let points: Vec<blstrs::Scalar> = (0..m as u64).map(blstrs::Scalar::from).collect();
            assert_eq!(
                consecutive_denominators::<blstrs::Scalar>(m),
                denominators(&points),
                "m = {m}"
            );
        }
    }

    #[test]
    fn dual_code_weights_do_not_depend_on_the_denominator_path() {
        // Sequential indices take the factorial path; the same points shifted by a constant
        // multiple take the general one. Both must accept exactly the codewords.
        let mut rng = R::seed_from_u64(5);
        for (n, t) in [(4usize, 2usize), (7, 5), (16, 11)] {
            let seq = index::sequential::<blstrs::Scalar>(n);
            let scaled: Vec<blstrs::Scalar> = seq
                .iter()
                .map(|x| *x * blstrs::Scalar::from(3u64))
                .collect();
            for xs in [&seq, &scaled] {
                let code = DualCode::new(xs, t).unwrap();
                let f = Polynomial::<blstrs::Scalar>::random(t - 1, None, &mut rng);
                let good = EvalCommitment::<Bls12381G1>::feldman(&f, xs);
                assert!(code.is_codeword::<Bls12381G1>(good.points(), &[9; 32]));
                let g = Polynomial::<blstrs::Scalar>::random(t, None, &mut rng);
                let bad = EvalCommitment::<Bls12381G1>::feldman(&g, xs);
                assert!(!code.is_codeword::<Bls12381G1>(bad.points(), &[9; 32]));
            }
        }
    }

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

    /// A point of order 3 on the G1 curve, outside the prime-order subgroup: `(0, 2)` on
    /// `y^2 = x^3 + 4` (a point with `x = 0` on `y^2 = x^3 + b` has order 3).
    fn order_three_point() -> blstrs::G1Affine {
        let mut bytes = [0u8; 96];
        bytes[95] = 2;
        let t = Bls12381G1::decode_point_unchecked_subgroup(&bytes).unwrap();
        assert!(!Bls12381G1::in_subgroup(&t));
        let t3 = t.to_curve() + t.to_curve() + t.to_curve();
        assert!(bool::from(t3.is_identity()));
        t
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        /// The batched share check names exactly the dealers the one-by-one check names, with
        /// one bad item at every position, of every kind: a wrong share, a wrong point, a point
        /// with a small-order component (which random weights alone let through a third of
        /// the time), a commitment too short to have a point for the player.
        #[test]
        fn batched_share_check_names_the_same_dealers_as_one_by_one(seed in any::<u64>(), items in 1usize..7) {
            let mut rng = R::seed_from_u64(seed);
            let (t, n) = (3, 5);
            let j = 2;
            let xs = index::sequential::<blstrs::Scalar>(n);
            let polys: Vec<_> = (0..items)
                .map(|_| Polynomial::<blstrs::Scalar>::random(t - 1, None, &mut rng))
                .collect();
            let good: Vec<_> = polys
                .iter()
                .map(|f| EvalCommitment::<Bls12381G1>::feldman(f, &xs))
                .collect();
            let shares: Vec<_> = polys.iter().map(|f| f.evaluate(&xs[j])).collect();
            let refs: Vec<_> = good.iter().zip(shares.iter().copied()).collect();
            prop_assert_eq!(batch_verify_eval(j, &refs, &mut rng), Ok(()));
            let t3 = order_three_point();
            for bad in 0..items {
                for kind in 0..4 {
                    let mut commits = good.clone();
                    let mut s = shares.clone();
                    match kind {
                        0 => s[bad] += blstrs::Scalar::ONE,
                        1 | 2 => {
                            let mut pts = commits[bad].points().to_vec();
                            let extra = if kind == 1 {
                                <Bls12381G1 as Curve>::Point::generator()
                            } else {
                                t3.to_curve()
                            };
                            pts[j + 1] = (pts[j + 1].to_curve() + extra).to_affine();
                            commits[bad] = EvalCommitment::from_points(pts).unwrap();
                        }
                        _ => {
                            let pts = commits[bad].points()[..j + 1].to_vec();
                            commits[bad] = EvalCommitment::from_points(pts).unwrap();
                        }
                    }
                    let refs: Vec<_> = commits.iter().zip(s.iter().copied()).collect();
                    let one_by_one: Vec<usize> = refs
                        .iter()
                        .enumerate()
                        .filter(|(_, (c, s))| !c.verify_share(j, s))
                        .map(|(i, _)| i)
                        .collect();
                    prop_assert_eq!(&one_by_one, &vec![bad]);
                    prop_assert_eq!(batch_verify_eval(j, &refs, &mut rng), Err(one_by_one));
                }
            }
        }
    }

    #[test]
    fn a_small_order_component_never_passes_the_batch() {
        // Before subgroup checks of the compared points, this passed whenever the weight was a
        // multiple of 3: about a third of the seeds.
        let t3 = order_three_point();
        let xs = index::sequential::<blstrs::Scalar>(4);
        for seed in 0..60u64 {
            let mut rng = R::seed_from_u64(seed);
            let f = Polynomial::<blstrs::Scalar>::random(2, None, &mut rng);
            let g = Polynomial::<blstrs::Scalar>::random(2, None, &mut rng);
            let e = EvalCommitment::<Bls12381G1>::feldman(&f, &xs);
            let mut pts = e.points().to_vec();
            pts[1] = (pts[1].to_curve() + t3.to_curve()).to_affine();
            let tainted = EvalCommitment::from_points(pts).unwrap();
            let other = EvalCommitment::<Bls12381G1>::feldman(&g, &xs);
            let items = [(&tainted, f.evaluate(&xs[0])), (&other, g.evaluate(&xs[0]))];
            assert_eq!(
                batch_verify_eval(0, &items, &mut rng),
                Err(vec![0]),
                "seed {seed}"
            );
        }
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
