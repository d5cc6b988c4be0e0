//! Batch verification of many BLS signatures on distinct messages, public keys in G2 and
//! signatures in G1 (the `BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_` layout of identity keys),
//! some of them aggregates by sets of keys.
//!
//! # The check
//! Item `k` claims `e(sig_k, G2) == e(H(m_k), P_k)`, where `P_k` is one key or the sum of a set of
//! keys (a proof-of-possession aggregate). With independent random non-zero weights `r_k` from
//! a set of `2^128` values (`lo + z^2 hi` with 64-bit halves, see `Weight`: a multiplication by
//! one costs about half a 128-bit one through the GLV endomorphism) all items are checked at once
//! by
//!
//! ```text
//!     e(sum_k r_k sig_k, G2) == prod_k e(r_k H(m_k), P_k) == prod_i e(X_i, K_i),
//!     X_i = sum of r_k H(m_k) over the items k whose signers include key K_i,
//! ```
//!
//! regrouping the right side by key, so the multi-Miller loop has one term per distinct key
//! plus one, instead of one or two per item. For an aggregate signed by a set that holds most
//! keys, `r_k H(m_k)` is added once to a common sum that every key of the universe receives and
//! subtracted from the few keys outside the set, so a dense set costs its complement, not its
//! size (the same trick as aggregating public keys against a precomputed full sum, done on the
//! cheaper G1 side). The common sum and `sum_k r_k sig_k` are multi-scalar multiplications
//! (blst's Pippenger on the points and their endomorphism images with 64-bit scalars); only the
//! items whose weighted hash some key needs on its own (single signers, sparse sets, keys outside
//! a dense set) are multiplied one by one. The keys' Miller-loop lines are computed once per key
//! list ([`PreparedKeys`]), so a batch evaluates them instead of redoing the G2 arithmetic.
//! A process that signed a message itself keeps its hash ([`HashedMessages`]) so that the batch
//! does not hash it again.
//!
//! # Soundness
//! The inputs must be points of the prime-order subgroups: keys validated (and possession
//! proven), signatures subgroup-checked by the caller, hashes are subgroup points by
//! construction. Then if some item is false, the two sides differ except with probability at
//! most `2^-128` over the weights (Bellare, Garay and Rabin, "Fast batch verification for
//! modular exponentiation and digital signatures", Eurocrypt 1998: the small-exponents test).
//! Without subgroup checks the bound would not hold: a small-order component of order `q`
//! vanishes whenever its weight is a multiple of `q` (see `commit`).
//!
//! The weights are derived by hashing every input (messages, signatures, signer sets), so the
//! result is a deterministic function of the batch, independent of thread count, and a batch
//! built to fool the check must hit a `2^-128` event per attempt.
//!
//! A `true` answer means every item verifies (up to that bound); on `false` the caller checks
//! the items one by one to find the culprits, so the per-item answers are what counts.

use blst::{blst_fp12, blst_p1, blst_p1_affine, blst_p2_affine};
use blstrs::{G1Affine, G1Projective, Scalar};
use group::Curve as _;
use group::Group;
use group::prime::PrimeCurveAffine;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use std::collections::HashMap;
use std::sync::Mutex;

use crate::Bls12381G1;
use crate::group::Curve;
use crate::pairing::PreparedKeys;

/// Who signed one item: indices into the key list.
#[derive(Debug, Clone, Copy)]
pub enum Signers<'a> {
    /// One key.
    One(usize),
    /// An aggregate by a set of keys, strictly ascending, all below the universe size given to
    /// [`verify_grouped`].
    Set(&'a [u32]),
}

/// One claimed signature.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    /// The signers.
    pub signers: Signers<'a>,
    /// The signed message (hashed to G1 with the DST given to [`verify_grouped`]).
    pub msg: &'a [u8],
    /// The signature, already checked to be in the prime-order subgroup of G1.
    pub sig: blst_p1_affine,
}

/// Why a batch could not even be formed (the caller then checks items one by one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// A signer index is out of range, or a set is empty or not strictly ascending.
    BadSigners(usize),
}

/// Messages hashed to G1 under one DST, remembered so that a process that signs messages and
/// later verifies signatures on the same messages in a batch hashes each message once (a
/// player signs one ack per dealer, and its replica of the board verifies the aggregate of
/// every dealer's acks). Entries are only ever computed here, from the message, so a hit is
/// exactly `hash_to_g1(msg, dst)`. Bounded: beyond `capacity` messages, new ones are hashed but
/// not remembered.
pub struct HashedMessages {
    dst: Vec<u8>,
    capacity: usize,
    map: Mutex<HashMap<Vec<u8>, blst_p1_affine>>,
}

impl core::fmt::Debug for HashedMessages {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let len = self.map.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("HashedMessages")
            .field("capacity", &self.capacity)
            .field("len", &len)
            .finish_non_exhaustive()
    }
}

impl HashedMessages {
    /// An empty memory for messages hashed with `dst`, holding at most `capacity` of them.
    pub fn new(dst: &[u8], capacity: usize) -> Self {
        HashedMessages {
            dst: dst.to_vec(),
            capacity,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The DST the messages are hashed with.
    pub fn dst(&self) -> &[u8] {
        &self.dst
    }

    /// `H(msg)` if remembered.
    pub fn get(&self, msg: &[u8]) -> Option<blst_p1_affine> {
        self.map.lock().ok()?.get(msg).copied()
    }

    /// `H(msg)`, remembered while there is room.
    pub fn hash(&self, msg: &[u8]) -> blst_p1_affine {
        if let Some(h) = self.get(msg) {
            return h;
        }
        let h = hash_to_g1(msg, &self.dst);
        let mut out = blst_p1_affine::default();
        // SAFETY: valid input point, stack output.
        unsafe { blst::blst_p1_to_affine(&mut out, &h) };
        if let Ok(mut map) = self.map.lock()
            && map.len() < self.capacity
        {
            map.insert(msg.to_vec(), out);
        }
        out
    }

    /// A signature on `msg` under `sk` in the `MinSig` layout (public key in G2, signature in
    /// G1), hashing `msg` through this memory: the same compressed bytes as
    /// `sk.sign(msg, dst, &[])`.
    pub fn sign(&self, sk: &blst::min_sig::SecretKey, msg: &[u8]) -> [u8; 48] {
        let h = self.hash(msg);
        let mut bytes = sk.to_bytes();
        let mut scalar = blst::blst_scalar::default();
        let mut h_proj = blst_p1::default();
        let mut sig = blst_p1::default();
        let mut sig_affine = blst_p1_affine::default();
        let mut out = [0u8; 48];
        // SAFETY: all pointers are to live stack values of the types blst expects.
        unsafe {
            blst::blst_scalar_from_bendian(&mut scalar, bytes.as_ptr());
            blst::blst_p1_from_affine(&mut h_proj, &h);
            // Constant time in the secret scalar (blst's signing multiplication).
            blst::blst_sign_pk_in_g2(&mut sig, &h_proj, &scalar);
            blst::blst_p1_to_affine(&mut sig_affine, &sig);
            blst::blst_p1_affine_compress(out.as_mut_ptr(), &sig_affine);
        }
        bytes.zeroize();
        scalar.b.zeroize();
        out
    }
}

/// `hash_to_g1(msg, dst)` (RFC 9380, `_XMD:SHA-256_SSWU_RO_`).
fn hash_to_g1(msg: &[u8], dst: &[u8]) -> blst_p1 {
    let mut h = blst_p1::default();
    // SAFETY: all pointers are to live stack values or slices of the stated lengths.
    unsafe {
        blst::blst_hash_to_g1(
            &mut h,
            msg.as_ptr(),
            msg.len(),
            dst.as_ptr(),
            dst.len(),
            core::ptr::null(),
            0,
        )
    };
    h
}

/// Whether every item verifies, with one multi-pairing (see the module docs). `keys` are
/// validated G2 keys with their Miller-loop lines; a [`Signers::Set`] indexes
/// `keys[..universe]`. Messages found in `hashed` (when it is for `dst`) are not hashed again.
///
/// Work is spread over the current rayon pool; the answer does not depend on its size.
pub fn verify_grouped(
    keys: &PreparedKeys,
    universe: usize,
    items: &[Item<'_>],
    dst: &[u8],
    hashed: Option<&HashedMessages>,
) -> Result<bool, BatchError> {
    let universe = universe.min(keys.len());
    for (k, item) in items.iter().enumerate() {
        let ok = match item.signers {
            Signers::One(i) => i < keys.len(),
            Signers::Set(set) => {
                !set.is_empty()
                    && set.windows(2).all(|w| w[0] < w[1])
                    && set.last().is_some_and(|j| (*j as usize) < universe)
            }
        };
        if !ok {
            return Err(BatchError::BadSigners(k));
        }
    }
    if items.is_empty() {
        return Ok(true);
    }
    let hashed = hashed.filter(|h| h.dst() == dst);
    let weights = weights(items, dst);
    let dense =
        |item: &Item<'_>| matches!(item.signers, Signers::Set(set) if 2 * set.len() > universe);
    // H(m_k), in parallel: hashing to the curve is the bulk of the per-item work.
    let hashes: Vec<blst_p1_affine> = items
        .par_iter()
        .map(|item| match hashed.and_then(|h| h.get(item.msg)) {
            Some(h) => h,
            None => {
                let mut out = blst_p1_affine::default();
                // SAFETY: valid input point, stack output.
                unsafe { blst::blst_p1_to_affine(&mut out, &hash_to_g1(item.msg, dst)) };
                out
            }
        })
        .collect();
    // r_k H(m_k) one by one where a key needs it alone: single signers, sparse sets, and dense
    // sets with keys outside them (subtracted from those keys). A dense set that covers every
    // key only enters the common sum, computed below as one MSM.
    let weighted: Vec<Option<blst_p1>> = items
        .par_iter()
        .zip(hashes.par_iter())
        .zip(weights.par_iter())
        .map(|((item, h), w)| {
            if dense(item) && matches!(item.signers, Signers::Set(set) if set.len() == universe) {
                return None;
            }
            Some(w.mul(h))
        })
        .collect();
    // sum_k r_k sig_k, and the common sum of the dense sets sum_k r_k H(m_k), as MSMs.
    let all_sigs: Vec<blst_p1_affine> = items.iter().map(|i| i.sig).collect();
    let sig_sum = msm_weights(&all_sigs, &weights);
    let (dense_hashes, dense_weights): (Vec<blst_p1_affine>, Vec<Weight>) = items
        .iter()
        .zip(hashes.iter().zip(&weights))
        .filter(|(item, _)| dense(item))
        .map(|(_, (h, w))| (*h, *w))
        .unzip();
    let common = msm_weights(&dense_hashes, &dense_weights);

    // X_i per key.
    let mut x = vec![G1Projective::identity(); keys.len()];
    let mut in_set = vec![false; universe];
    for (item, w) in items.iter().zip(&weighted) {
        // A set of every key is only in the common sum.
        let Some(w) = w else { continue };
        let mut p = G1Projective::identity();
        *p.as_mut() = *w;
        let w = p;
        match item.signers {
            Signers::One(i) => x[i] += w,
            Signers::Set(set) if dense(item) => {
                for j in set {
                    in_set[*j as usize] = true;
                }
                for (i, member) in in_set.iter_mut().enumerate() {
                    if !*member {
                        x[i] -= w;
                    }
                    *member = false;
                }
            }
            Signers::Set(set) => {
                for j in set {
                    x[*j as usize] += w;
                }
            }
        }
    }
    if !bool::from(common.is_identity()) {
        for xi in &mut x[..universe] {
            *xi += common;
        }
    }
    let x = Bls12381G1::batch_normalize(&x);
    let mut g1s: Vec<blst_p1_affine> = Vec::with_capacity(keys.len());
    let mut slots: Vec<usize> = Vec::with_capacity(keys.len());
    for (i, xi) in x.iter().enumerate() {
        if !bool::from(xi.is_identity()) {
            g1s.push(*xi.as_ref());
            slots.push(i);
        }
    }
    let neg_sig = (-sig_sum).to_affine();
    let extra = (!bool::from(neg_sig.is_identity())).then_some(neg_sig.as_ref());
    Ok(keys.multi_pairing_is_one(&g1s, &slots, extra))
}

/// A batch weight `lo + z^2 hi` with `lo`, `hi` below `2^64`, not both zero (`z` the BLS12-381
/// curve parameter, `z^2` a 128-bit integer).
///
/// On G1, `z^2 P` is `-phi(P)` with the endomorphism `phi(x, y) = (beta x, y)`, so multiplying
/// by a weight takes two 64-bit multiplications sharing their doublings (half the doublings of
/// a 128-bit multiplication), and an MSM over weights is one over twice the points with 64-bit
/// scalars (the same bucket work as 128-bit scalars). The weights are still `2^128` distinct
/// residues: `lo + z^2 hi = lo' + z^2 hi'` would need `lo - lo' = z^2 (hi' - hi)` with the left
/// side below `2^64` and the right side zero or at least `z^2 > 2^127` in absolute value (no
/// reduction modulo the group order happens, as `z^2 2^64 < r`). So the small-exponents bound of
/// the module docs holds with the same `2^-128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Weight {
    lo: u64,
    hi: u64,
}

/// `beta`, the cube root of unity in the base field with `(beta x, -y) = z^2 (x, y)` on G1
/// (big-endian; the pairing with `z^2` is checked by a test).
const BETA_BE: [u8; 48] = [
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5f, 0x19, 0x67, 0x2f, 0xdf, 0x76, 0xce, 0x51,
    0xba, 0x69, 0xc6, 0x07, 0x6a, 0x0f, 0x77, 0xea, 0xdd, 0xb3, 0xa9, 0x3b, 0xe6, 0xf8, 0x96, 0x88,
    0xde, 0x17, 0xd8, 0x13, 0x62, 0x0a, 0x00, 0x02, 0x2e, 0x01, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xfe,
];

fn beta() -> blst::blst_fp {
    static BETA: std::sync::OnceLock<blst::blst_fp> = std::sync::OnceLock::new();
    *BETA.get_or_init(|| {
        let mut fp = blst::blst_fp::default();
        // SAFETY: 48-byte input, stack output.
        unsafe { blst::blst_fp_from_bendian(&mut fp, BETA_BE.as_ptr()) };
        fp
    })
}

/// `z^2 P` for `P` on G1, affine: `(beta x, -y)`; the identity stays the identity.
fn times_z2_affine(p: &blst_p1_affine) -> blst_p1_affine {
    // SAFETY: plain read of a valid point.
    if unsafe { blst::blst_p1_affine_is_inf(p) } {
        return *p;
    }
    let mut out = blst_p1_affine::default();
    // SAFETY: valid field elements, separate outputs.
    unsafe {
        blst::blst_fp_mul(&mut out.x, &p.x, &beta());
        blst::blst_fp_cneg(&mut out.y, &p.y, true);
    }
    out
}

/// `z^2 P` for `P` on G1 in Jacobian coordinates: `(beta X, -Y, Z)`.
fn times_z2(p: &blst_p1) -> blst_p1 {
    let mut out = *p;
    // SAFETY: valid field elements, separate outputs.
    unsafe {
        blst::blst_fp_mul(&mut out.x, &p.x, &beta());
        blst::blst_fp_cneg(&mut out.y, &p.y, true);
    }
    out
}

/// Width-4 non-adjacent form of `k`, least significant digit first: digits in
/// `{0, +-1, +-3, +-5, +-7}`, at most one non-zero digit in any four consecutive ones.
fn wnaf4(k: u64) -> Vec<i8> {
    let mut k = i128::from(k);
    let mut digits = Vec::with_capacity(66);
    while k > 0 {
        if k & 1 == 1 {
            let mut d = (k & 15) as i8;
            if d > 8 {
                d -= 16;
            }
            k -= i128::from(d);
            digits.push(d);
        } else {
            digits.push(0);
        }
        k >>= 1;
    }
    digits
}

/// `P, 3P, 5P, 7P`.
fn odd_multiples(p: &blst_p1) -> [blst_p1; 4] {
    let mut table = [*p; 4];
    let mut twice = blst_p1::default();
    // SAFETY: valid points, outputs are distinct locals.
    unsafe {
        blst::blst_p1_double(&mut twice, p);
        for i in 1..4 {
            let prev = table[i - 1];
            blst::blst_p1_add_or_double(&mut table[i], &prev, &twice);
        }
    }
    table
}

impl Weight {
    /// `(lo + z^2 hi) P`, variable time (weights and points are public): the two halves' digits
    /// in width-4 NAF, one shared run of doublings.
    fn mul(&self, p: &blst_p1_affine) -> blst_p1 {
        let mut base = blst_p1::default();
        // SAFETY: valid point, stack output.
        unsafe { blst::blst_p1_from_affine(&mut base, p) };
        let lo_table = odd_multiples(&base);
        let hi_table = lo_table.map(|q| times_z2(&q));
        let lo = wnaf4(self.lo);
        let hi = wnaf4(self.hi);
        let mut acc = blst_p1::default();
        for i in (0..lo.len().max(hi.len())).rev() {
            let mut doubled = blst_p1::default();
            // SAFETY: valid points, distinct output.
            unsafe { blst::blst_p1_double(&mut doubled, &acc) };
            acc = doubled;
            for (digits, table) in [(&lo, &lo_table), (&hi, &hi_table)] {
                let d = digits.get(i).copied().unwrap_or(0);
                if d == 0 {
                    continue;
                }
                let mut term = table[(d.unsigned_abs() as usize - 1) / 2];
                let mut sum = blst_p1::default();
                // SAFETY: valid points, distinct output.
                unsafe {
                    blst::blst_p1_cneg(&mut term, d < 0);
                    blst::blst_p1_add_or_double(&mut sum, &acc, &term);
                }
                acc = sum;
            }
        }
        acc
    }
}

/// `sum_i w_i P_i`: blst's Pippenger over the points and their images `z^2 P_i` with the 64-bit
/// halves of the weights, split over the rayon pool for large inputs.
fn msm_weights(points: &[blst_p1_affine], weights: &[Weight]) -> G1Projective {
    let n = points.len().min(weights.len());
    if n == 0 {
        return G1Projective::identity();
    }
    let threads = rayon::current_num_threads().max(1);
    let chunk = if threads == 1 || n < 256 {
        n
    } else {
        n.div_ceil(threads)
    };
    points[..n]
        .par_chunks(chunk)
        .zip(weights[..n].par_chunks(chunk))
        .map(|(p, w)| {
            let mut all: Vec<blst_p1_affine> = p.to_vec();
            all.extend(p.iter().map(times_z2_affine));
            let mut le: Vec<[u8; 8]> = w.iter().map(|w| w.lo.to_le_bytes()).collect();
            le.extend(w.iter().map(|w| w.hi.to_le_bytes()));
            let mut out = blst_p1::default();
            // SAFETY: blst reads `all.len()` points and as many 8-byte scalars (the null second
            // pointer means consecutive entries) and writes the result; the scratch space has
            // the size blst asks for.
            unsafe {
                let point_ptrs: [*const blst_p1_affine; 2] = [all.as_ptr(), core::ptr::null()];
                let scalar_ptrs: [*const u8; 2] = [le.as_ptr().cast(), core::ptr::null()];
                let words = blst::blst_p1s_mult_pippenger_scratch_sizeof(all.len())
                    / core::mem::size_of::<blst::limb_t>();
                let mut scratch = vec![0 as blst::limb_t; words + 1];
                blst::blst_p1s_mult_pippenger(
                    &mut out,
                    point_ptrs.as_ptr(),
                    all.len(),
                    scalar_ptrs.as_ptr(),
                    64,
                    scratch.as_mut_ptr(),
                );
            }
            let mut q = G1Projective::identity();
            *q.as_mut() = out;
            q
        })
        .reduce(G1Projective::identity, |a, b| a + b)
}

/// Fiat-Shamir weights over the whole batch (see [`Weight`]).
fn weights(items: &[Item<'_>], dst: &[u8]) -> Vec<Weight> {
    let mut h = Sha256::new();
    h.update(b"keyquorum/batch-verify/v2");
    h.update((dst.len() as u64).to_be_bytes());
    h.update(dst);
    for item in items {
        match item.signers {
            Signers::One(i) => {
                h.update([1u8]);
                h.update((i as u64).to_be_bytes());
            }
            Signers::Set(set) => {
                h.update([2u8]);
                h.update((set.len() as u64).to_be_bytes());
                for j in set {
                    h.update(j.to_be_bytes());
                }
            }
        }
        h.update((item.msg.len() as u64).to_be_bytes());
        h.update(item.msg);
        let mut sig = [0u8; 48];
        // SAFETY: 48-byte output buffer, valid input point.
        unsafe { blst::blst_p1_affine_compress(sig.as_mut_ptr(), &item.sig) };
        h.update(sig);
    }
    let mut rng = ChaCha20Rng::from_seed(h.finalize().into());
    items
        .iter()
        .map(|_| {
            loop {
                let w = Weight {
                    lo: rng.next_u64(),
                    hi: rng.next_u64(),
                };
                if w.lo != 0 || w.hi != 0 {
                    break w;
                }
            }
        })
        .collect()
}

/// `sum_i scalars[i] points[i]` in G1, split over the rayon pool for large inputs
/// ([`crate::group::msm_parallel`] with at least 128 points per thread).
pub fn msm_parallel(points: &[G1Affine], scalars: &[Scalar]) -> G1Projective {
    crate::group::msm_parallel::<Bls12381G1>(points, scalars, 128)
}

/// `prod_i e(g1s[i], g2s[i]) == 1` with one final exponentiation; the Miller loops run in
/// chunks over the rayon pool and their results are multiplied. Points must not be the identity
/// (blst's Miller loop has no special case for it).
pub fn multi_pairing_is_one(g1s: &[blst_p1_affine], g2s: &[blst_p2_affine]) -> bool {
    let n = g1s.len().min(g2s.len());
    if n == 0 {
        return true;
    }
    let threads = rayon::current_num_threads().max(1);
    let chunk = n.div_ceil(threads).max(8);
    let ml = g1s[..n]
        .par_chunks(chunk)
        .zip(g2s[..n].par_chunks(chunk))
        .map(|(p, q)| {
            // blst reads consecutive points when the second entry of a pointer list is null.
            let p_ptrs: [*const blst_p1_affine; 2] = [p.as_ptr(), core::ptr::null()];
            let q_ptrs: [*const blst_p2_affine; 2] = [q.as_ptr(), core::ptr::null()];
            let mut out = blst_fp12::default();
            // SAFETY: `p` and `q` hold `p.len()` valid affine points and outlive the call.
            unsafe {
                blst::blst_miller_loop_n(&mut out, q_ptrs.as_ptr(), p_ptrs.as_ptr(), p.len())
            };
            out
        })
        .reduce_with(|a, b| {
            let mut out = blst_fp12::default();
            // SAFETY: valid field elements.
            unsafe { blst::blst_fp12_mul(&mut out, &a, &b) };
            out
        })
        .expect("at least one chunk");
    let mut gt = blst_fp12::default();
    // SAFETY: valid field elements.
    unsafe {
        blst::blst_final_exp(&mut gt, &ml);
        blst::blst_fp12_is_one(&gt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blst::min_sig::{SecretKey, Signature};
    use ff::Field as _;

    const DST: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_";

    fn sk(i: u32) -> SecretKey {
        let mut ikm = [7u8; 32];
        ikm[..4].copy_from_slice(&i.to_be_bytes());
        SecretKey::key_gen(&ikm, &[]).unwrap()
    }

    fn aff(s: &Signature) -> blst_p1_affine {
        blst_p1_affine::from(*s)
    }

    #[test]
    fn accepts_valid_and_rejects_any_single_bad_item() {
        let n = 9;
        let sks: Vec<SecretKey> = (0..n).map(sk).collect();
        let keys: Vec<blst_p2_affine> = sks
            .iter()
            .map(|k| blst_p2_affine::from(k.sk_to_pk()))
            .collect();
        let keys = PreparedKeys::new(keys);
        let msgs: Vec<Vec<u8>> = (0..12u8).map(|i| vec![i; 32]).collect();
        let dense: Vec<u32> = (0..n).filter(|j| *j != 3).collect();
        let sparse: Vec<u32> = vec![1, 4];
        let mut items: Vec<Item> = Vec::new();
        let mut sigs = Vec::new();
        for (k, m) in msgs.iter().enumerate() {
            let sig = match k % 3 {
                0 => sks[k % n as usize].sign(m, DST, &[]),
                1 => {
                    let parts: Vec<Signature> = dense
                        .iter()
                        .map(|j| sks[*j as usize].sign(m, DST, &[]))
                        .collect();
                    let refs: Vec<&Signature> = parts.iter().collect();
                    blst::min_sig::AggregateSignature::aggregate(&refs, true)
                        .unwrap()
                        .to_signature()
                }
                _ => {
                    let parts: Vec<Signature> = sparse
                        .iter()
                        .map(|j| sks[*j as usize].sign(m, DST, &[]))
                        .collect();
                    let refs: Vec<&Signature> = parts.iter().collect();
                    blst::min_sig::AggregateSignature::aggregate(&refs, true)
                        .unwrap()
                        .to_signature()
                }
            };
            sigs.push(sig);
        }
        for (k, m) in msgs.iter().enumerate() {
            items.push(Item {
                signers: match k % 3 {
                    0 => Signers::One(k % n as usize),
                    1 => Signers::Set(&dense),
                    _ => Signers::Set(&sparse),
                },
                msg: m,
                sig: aff(&sigs[k]),
            });
        }
        assert_eq!(
            verify_grouped(&keys, n as usize, &items, DST, None),
            Ok(true)
        );
        for pos in 0..items.len() {
            // Wrong message, then another signer's signature, at every position.
            let mut bad = items.clone();
            bad[pos].msg = b"other";
            assert_eq!(
                verify_grouped(&keys, n as usize, &bad, DST, None),
                Ok(false)
            );
            let mut bad = items.clone();
            bad[pos].sig = items[(pos + 1) % items.len()].sig;
            assert_eq!(
                verify_grouped(&keys, n as usize, &bad, DST, None),
                Ok(false)
            );
        }
        // A set missing one signer fails; malformed sets are refused.
        let mut bad = items.clone();
        let fewer: Vec<u32> = dense[1..].to_vec();
        bad[1].signers = Signers::Set(&fewer);
        assert_eq!(
            verify_grouped(&keys, n as usize, &bad, DST, None),
            Ok(false)
        );
        let unsorted = [2u32, 1];
        bad[1].signers = Signers::Set(&unsorted);
        assert_eq!(
            verify_grouped(&keys, n as usize, &bad, DST, None),
            Err(BatchError::BadSigners(1))
        );
        assert_eq!(verify_grouped(&keys, n as usize, &[], DST, None), Ok(true));
    }

    #[test]
    fn the_answer_does_not_depend_on_the_thread_count() {
        let sks: Vec<SecretKey> = (0..40).map(sk).collect();
        let keys: Vec<blst_p2_affine> = sks
            .iter()
            .map(|k| blst_p2_affine::from(k.sk_to_pk()))
            .collect();
        let keys = PreparedKeys::new(keys);
        let msgs: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 32]).collect();
        let sigs: Vec<Signature> = sks
            .iter()
            .zip(&msgs)
            .map(|(k, m)| k.sign(m, DST, &[]))
            .collect();
        let mut items: Vec<Item> = (0..40)
            .map(|i| Item {
                signers: Signers::One(i),
                msg: &msgs[i],
                sig: aff(&sigs[i]),
            })
            .collect();
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            assert_eq!(
                pool.install(|| verify_grouped(&keys, 40, &items, DST, None)),
                Ok(true)
            );
        }
        items[17].msg = b"forged";
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            assert_eq!(
                pool.install(|| verify_grouped(&keys, 40, &items, DST, None)),
                Ok(false)
            );
        }
    }

    /// Signing through the memory gives blst's bytes, and a batch that finds its hashes there
    /// gives the same answers as one that hashes, for full, dense and sparse sets.
    #[test]
    fn remembered_hashes_sign_and_verify_as_fresh_ones() {
        let n = 6u32;
        let sks: Vec<SecretKey> = (0..n).map(sk).collect();
        let keys: Vec<blst_p2_affine> = sks
            .iter()
            .map(|k| blst_p2_affine::from(k.sk_to_pk()))
            .collect();
        let keys = PreparedKeys::new(keys);
        let memory = HashedMessages::new(DST, 8);
        let sets: [Vec<u32>; 3] = [(0..n).collect(), vec![0, 1, 2, 4, 5], vec![3]];
        let msgs: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 32]).collect();
        let mut sigs = Vec::new();
        for (set, m) in sets.iter().zip(&msgs) {
            let parts: Vec<Signature> = set
                .iter()
                .map(|j| {
                    let fresh = sks[*j as usize].sign(m, DST, &[]);
                    assert_eq!(memory.sign(&sks[*j as usize], m), fresh.to_bytes());
                    fresh
                })
                .collect();
            let refs: Vec<&Signature> = parts.iter().collect();
            sigs.push(
                blst::min_sig::AggregateSignature::aggregate(&refs, true)
                    .unwrap()
                    .to_signature(),
            );
        }
        assert!(memory.get(&msgs[0]).is_some());
        let items: Vec<Item> = (0..3)
            .map(|k| Item {
                signers: Signers::Set(&sets[k]),
                msg: &msgs[k],
                sig: aff(&sigs[k]),
            })
            .collect();
        for memory in [None, Some(&memory)] {
            assert_eq!(
                verify_grouped(&keys, n as usize, &items, DST, memory),
                Ok(true)
            );
            for pos in 0..items.len() {
                let mut bad = items.clone();
                bad[pos].sig = items[(pos + 1) % items.len()].sig;
                assert_eq!(
                    verify_grouped(&keys, n as usize, &bad, DST, memory),
                    Ok(false)
                );
            }
        }
        // A memory for another DST is not used, and a full memory still hashes and signs.
        let other = HashedMessages::new(b"other", 0);
        assert_eq!(
            verify_grouped(&keys, n as usize, &items, DST, Some(&other)),
            Ok(true)
        );
        assert_eq!(
            HashedMessages::new(DST, 0).sign(&sks[0], &msgs[0]),
            sks[0].sign(&msgs[0], DST, &[]).to_bytes()
        );
    }

    fn z2_scalar() -> Scalar {
        // z^2 = 0xac45a4010001a402_0000000100000000, from its two 64-bit halves.
        let two_64 = Scalar::from(1u64 << 32).square();
        Scalar::from(0xac45a4010001a402u64) * two_64 + Scalar::from(0x0000000100000000u64)
    }

    /// `(beta x, -y)` is `z^2 (x, y)` on G1, affine and Jacobian, and the other cube root of
    /// unity is not.
    #[test]
    fn beta_is_the_endomorphism_of_z_squared() {
        let p = (G1Projective::generator() * Scalar::from(12345u64)).to_affine();
        let expected = (G1Projective::from(p) * z2_scalar()).to_affine();
        let got = times_z2_affine(p.as_ref());
        assert_eq!(&got, expected.as_ref());
        let mut jac = G1Projective::from(p) + G1Projective::from(p);
        let doubled_expected = (jac * z2_scalar()).to_affine();
        let mut out = G1Projective::identity();
        *out.as_mut() = times_z2(jac.as_ref());
        assert_eq!(out.to_affine(), doubled_expected);
        // The other root (beta^2) maps to a different multiple.
        let mut b2 = blst::blst_fp::default();
        // SAFETY: valid field elements.
        unsafe { blst::blst_fp_sqr(&mut b2, &beta()) };
        let mut other = *p.as_ref();
        // SAFETY: valid field elements.
        unsafe {
            blst::blst_fp_mul(&mut other.x, &p.as_ref().x, &b2);
            blst::blst_fp_cneg(&mut other.y, &p.as_ref().y, true);
        }
        assert_ne!(&other, expected.as_ref());
        jac = G1Projective::identity();
        let mut id = G1Projective::identity();
        *id.as_mut() = times_z2(jac.as_ref());
        assert!(bool::from(id.is_identity()));
    }

    /// A weight multiplies and sums as the integer `lo + z^2 hi`, including the edge halves.
    #[test]
    fn weights_act_as_their_integer() {
        let z2 = z2_scalar();
        let as_scalar = |w: &Weight| Scalar::from(w.lo) + z2 * Scalar::from(w.hi);
        let weights = [
            Weight { lo: 1, hi: 0 },
            Weight { lo: 0, hi: 1 },
            Weight {
                lo: u64::MAX,
                hi: u64::MAX,
            },
            Weight {
                lo: 0x8000_0000_0000_0000,
                hi: 7,
            },
            Weight {
                lo: 0x1234_5678_9abc_def1,
                hi: 0x0fed_cba9_8765_4321,
            },
        ];
        let points: Vec<G1Affine> = (1..=weights.len() as u64)
            .map(|i| (G1Projective::generator() * Scalar::from(i * 1000 + 7)).to_affine())
            .collect();
        let mut sum = G1Projective::identity();
        for (w, p) in weights.iter().zip(&points) {
            let expected = G1Projective::from(*p) * as_scalar(w);
            let mut got = G1Projective::identity();
            *got.as_mut() = w.mul(p.as_ref());
            assert_eq!(got, expected, "{w:?}");
            sum += expected;
        }
        let raw: Vec<blst_p1_affine> = points.iter().map(|p| *p.as_ref()).collect();
        assert_eq!(msm_weights(&raw, &weights), sum);
        for k in [0u64, 1, 7, 8, 9, 15, 16, 17, u64::MAX] {
            let value: i128 = wnaf4(k)
                .iter()
                .rev()
                .fold(0i128, |acc, d| 2 * acc + i128::from(*d));
            assert_eq!(value, i128::from(k));
        }
    }
}
