//! Multi-pairing checks against a fixed list of G2 keys whose Miller-loop lines are computed
//! once and reused by every batch that checks signatures under those keys.
//!
//! The optimal ate Miller loop for a pair `(P, Q)` walks the bits of the curve parameter `z`,
//! doubling (and at the set bits adding) a G2 point that starts at `Q`; each step yields a line
//! whose coefficients depend only on `Q`, evaluated at `P` (two coordinates scale two of its
//! three coefficients) and multiplied into the running `Fp12` value. For a fixed key the 68 lines
//! can be computed once ([`blst::blst_precompute_lines`]) and only evaluated afterwards, which
//! removes the G2 arithmetic (roughly two fifths of a multi-Miller loop's work per pair) from every
//! later check. blst offers this for one pair at a time (`blst_miller_loop_lines`, which squares
//! the accumulator per pair); [`PreparedKeys::multi_pairing_is_one`] shares one squaring per step
//! between all pairs, as blst's own `blst_miller_loop_n` does, and follows the step schedule of
//! blst's `miller_loop_lines` exactly, so it computes the same Miller-loop value (tested against
//! blst below).
//!
//! Only public values enter here (keys, hashes, signatures): nothing needs to be constant time.

use blst::{blst_fp, blst_fp6, blst_fp12, blst_p1_affine, blst_p2_affine};
use rayon::prelude::*;

/// Lines per key: one doubling for the top bit of `|z|`, then five groups of one addition and
/// `k` doublings (`k = 2, 3, 9, 32, 16`), as laid out by `blst_precompute_lines`.
const LINES: usize = 68;
/// `(first line, doublings after it)` of each addition group, in loop order.
const GROUPS: [(usize, usize); 5] = [(1, 2), (4, 3), (8, 9), (18, 32), (51, 16)];

/// Validated G2 keys with their Miller-loop lines (about 20 KB per key), stored step by step so
/// that a step reads the lines of all keys from one contiguous block.
pub struct PreparedKeys {
    keys: Vec<blst_p2_affine>,
    /// `lines[s * keys.len() + i]`: line `s` of key `i`.
    lines: Vec<blst_fp6>,
}

impl core::fmt::Debug for PreparedKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PreparedKeys")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl PreparedKeys {
    /// Computes the lines of every key (over the current rayon pool). Keys must be points of the
    /// prime-order subgroup other than the identity (validated identity keys are).
    pub fn new(keys: Vec<blst_p2_affine>) -> Self {
        let per_key: Vec<[blst_fp6; LINES]> = keys
            .par_iter()
            .map(|q| {
                let mut lines = [blst_fp6::default(); LINES];
                // SAFETY: `lines` has the 68 entries blst writes; `q` is a valid point.
                unsafe { blst::blst_precompute_lines(lines.as_mut_ptr(), q) };
                lines
            })
            .collect();
        let n = keys.len();
        let mut lines = vec![blst_fp6::default(); LINES * n];
        for (i, key_lines) in per_key.iter().enumerate() {
            for (s, line) in key_lines.iter().enumerate() {
                lines[s * n + i] = *line;
            }
        }
        PreparedKeys { keys, lines }
    }

    /// The keys, in the order given to [`PreparedKeys::new`].
    pub fn keys(&self) -> &[blst_p2_affine] {
        &self.keys
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// `prod_k e(g1s[k], keys[slots[k]]) * e(extra_g1, G2) == 1` with one final exponentiation
    /// (`extra_g1` paired with the G2 generator, whose lines are computed here). The Miller loops
    /// run in chunks over the rayon pool; the answer does not depend on its size. G1 points must
    /// not be the identity (leave such pairs out: they contribute 1); slots must be below
    /// [`PreparedKeys::len`].
    pub fn multi_pairing_is_one(
        &self,
        g1s: &[blst_p1_affine],
        slots: &[usize],
        extra_g1: Option<&blst_p1_affine>,
    ) -> bool {
        let n = g1s.len().min(slots.len());
        let threads = rayon::current_num_threads().max(1);
        let chunk = n.div_ceil(threads).max(8);
        let mut parts: Vec<blst_fp12> = g1s[..n]
            .par_chunks(chunk)
            .zip(slots[..n].par_chunks(chunk))
            .map(|(p, s)| {
                let nk = self.keys.len();
                miller_loop_with_lines(p, |step, k| &self.lines[step * nk + s[k]])
            })
            .collect();
        if let Some(p) = extra_g1 {
            let mut g2_lines = [blst_fp6::default(); LINES];
            // SAFETY: 68 entries as blst writes; blst's static generator.
            unsafe {
                blst::blst_precompute_lines(g2_lines.as_mut_ptr(), blst::blst_p2_affine_generator())
            };
            parts.push(miller_loop_with_lines(
                core::slice::from_ref(p),
                |step, _| &g2_lines[step],
            ));
        }
        let Some(first) = parts.first().copied() else {
            return true;
        };
        let ml = parts[1..].iter().fold(first, |acc, x| {
            let mut out = blst_fp12::default();
            // SAFETY: valid field elements.
            unsafe { blst::blst_fp12_mul(&mut out, &acc, x) };
            out
        });
        let mut gt = blst_fp12::default();
        // SAFETY: valid field elements.
        unsafe {
            blst::blst_final_exp(&mut gt, &ml);
            blst::blst_fp12_is_one(&gt)
        }
    }
}

/// `prod_k f_{|z|, Q_k}(P_k)`, conjugated for the negative `z`: the Miller-loop value of
/// `blst_miller_loop_n` for the same pairs, with `line(step, k)` giving line `step` of pair `k`'s
/// G2 point. An empty list gives one.
fn miller_loop_with_lines<'a>(
    ps: &[blst_p1_affine],
    line: impl Fn(usize, usize) -> &'a blst_fp6,
) -> blst_fp12 {
    // (-2 x, 2 y) per point: the factors by which a line's second and third coefficients are
    // scaled when it is evaluated at the point (blst's `post_line_by_Px2`).
    let scaled: Vec<(blst_fp, blst_fp)> = ps
        .iter()
        .map(|p| {
            let mut x2 = blst_fp::default();
            let mut y2 = blst_fp::default();
            // SAFETY: valid field elements; outputs are distinct stack values.
            unsafe {
                blst::blst_fp_add(&mut x2, &p.x, &p.x);
                let twice = x2;
                blst::blst_fp_cneg(&mut x2, &twice, true);
                blst::blst_fp_add(&mut y2, &p.y, &p.y);
            }
            (x2, y2)
        })
        .collect();
    // SAFETY: reads blst's static one.
    let mut f = unsafe { *blst::blst_fp12_one() };
    let mul_lines = |f: &mut blst_fp12, step: usize| {
        for (k, (x2, y2)) in scaled.iter().enumerate() {
            let l = line(step, k);
            let mut at = *l;
            // SAFETY: valid field elements; each output is a separate local.
            unsafe {
                blst::blst_fp_mul(&mut at.fp2[1].fp[0], &l.fp2[1].fp[0], x2);
                blst::blst_fp_mul(&mut at.fp2[1].fp[1], &l.fp2[1].fp[1], x2);
                blst::blst_fp_mul(&mut at.fp2[2].fp[0], &l.fp2[2].fp[0], y2);
                blst::blst_fp_mul(&mut at.fp2[2].fp[1], &l.fp2[2].fp[1], y2);
                let acc = *f;
                blst::blst_fp12_mul_by_xy00z0(f, &acc, &at);
            }
        }
    };
    // The first doubling's line; blst starts from it instead of squaring one, the same value.
    mul_lines(&mut f, 0);
    for (first, doublings) in GROUPS {
        mul_lines(&mut f, first);
        for step in first + 1..=first + doublings {
            let acc = f;
            // SAFETY: valid field element.
            unsafe { blst::blst_fp12_sqr(&mut f, &acc) };
            mul_lines(&mut f, step);
        }
    }
    // SAFETY: valid field element, conjugated in place.
    unsafe { blst::blst_fp12_conjugate(&mut f) };
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use blst::min_sig::SecretKey;

    fn key(i: u8) -> blst_p2_affine {
        blst_p2_affine::from(SecretKey::key_gen(&[i; 32], &[]).unwrap().sk_to_pk())
    }

    fn g1(msg: &[u8]) -> blst_p1_affine {
        let mut p = blst::blst_p1::default();
        let mut out = blst_p1_affine::default();
        // SAFETY: live stack values and slices of the stated lengths.
        unsafe {
            blst::blst_hash_to_g1(
                &mut p,
                msg.as_ptr(),
                msg.len(),
                b"t".as_ptr(),
                1,
                core::ptr::null(),
                0,
            );
            blst::blst_p1_to_affine(&mut out, &p);
        }
        out
    }

    /// The Miller-loop value from precomputed lines is blst's `miller_loop_n` value for the same
    /// pairs (equal after the final exponentiation).
    #[test]
    fn lines_give_blsts_miller_loop() {
        let keys: Vec<blst_p2_affine> = (0..5).map(key).collect();
        let prepared = PreparedKeys::new(keys.clone());
        let slots = [3usize, 0, 4, 4, 1];
        let ps: Vec<blst_p1_affine> = (0..slots.len() as u8).map(|i| g1(&[i])).collect();
        let qs: Vec<blst_p2_affine> = slots.iter().map(|s| keys[*s]).collect();
        let mine = miller_loop_with_lines(&ps, |step, k| {
            &prepared.lines[step * prepared.len() + slots[k]]
        });
        let mut theirs = blst_fp12::default();
        let p_ptrs: [*const blst_p1_affine; 2] = [ps.as_ptr(), core::ptr::null()];
        let q_ptrs: [*const blst_p2_affine; 2] = [qs.as_ptr(), core::ptr::null()];
        // SAFETY: `ps` and `qs` hold `ps.len()` points each and outlive the call.
        unsafe {
            blst::blst_miller_loop_n(&mut theirs, q_ptrs.as_ptr(), p_ptrs.as_ptr(), ps.len())
        };
        // SAFETY: valid field elements.
        assert!(unsafe { blst::blst_fp12_finalverify(&mine, &theirs) });
        let other = miller_loop_with_lines(&ps[1..], |step, k| {
            &prepared.lines[step * prepared.len() + slots[k + 1]]
        });
        // SAFETY: valid field elements.
        assert!(!unsafe { blst::blst_fp12_finalverify(&other, &theirs) });
    }

    /// A signature check `e(H, K) e(-sig, G2) == 1` passes for the signer's key and its message,
    /// and fails for another key, another message or a tampered signature, with any thread count.
    #[test]
    fn checks_signatures_against_prepared_keys() {
        let sks: Vec<SecretKey> = (0..3u8)
            .map(|i| SecretKey::key_gen(&[i; 32], &[]).unwrap())
            .collect();
        let prepared = PreparedKeys::new((0..3).map(key).collect());
        let dst = b"t";
        let sig_of = |i: usize, m: &[u8]| {
            let s = sks[i].sign(m, dst, &[]);
            let mut neg = blst::blst_p1::default();
            let mut out = blst_p1_affine::default();
            let a = blst_p1_affine::from(s);
            // SAFETY: live stack values.
            unsafe {
                blst::blst_p1_from_affine(&mut neg, &a);
                blst::blst_p1_cneg(&mut neg, true);
                blst::blst_p1_to_affine(&mut out, &neg);
            }
            out
        };
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let h = g1(b"m");
                assert!(prepared.multi_pairing_is_one(&[h], &[1], Some(&sig_of(1, b"m"))));
                assert!(!prepared.multi_pairing_is_one(&[h], &[2], Some(&sig_of(1, b"m"))));
                assert!(!prepared.multi_pairing_is_one(&[h], &[1], Some(&sig_of(1, b"n"))));
                assert!(!prepared.multi_pairing_is_one(&[h], &[1], Some(&sig_of(0, b"m"))));
                assert!(prepared.multi_pairing_is_one(&[], &[], None));
            });
        }
    }
}
