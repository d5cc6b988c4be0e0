//! Threshold BLS signatures on BLS12-381, in both layouts, following the IETF BLS signature
//! draft (draft-irtf-cfrg-bls-signature-05, proof-of-possession scheme) with RFC 9380
//! hash-to-curve.
//!
//! A threshold signature is an ordinary BLS signature: partial signatures by `t` holders of
//! Shamir shares of a secret key combine, by Lagrange interpolation in the exponent, into exactly
//! the signature the full key would have produced. Verifiers therefore need nothing
//! threshold-specific, and the combined signature verifies with any implementation of the same
//! ciphersuite (the integration tests check this against `blst`'s own verification).
//!
//! # Layouts
//! - [`MinPk`]: public keys in G1 (48 bytes), signatures in G2 (96 bytes). The Ethereum consensus
//!   ciphersuite `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`.
//! - [`MinSig`]: public keys in G2 (96 bytes), signatures in G1 (48 bytes), ciphersuite
//!   `BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_`.
//!
//! # Validation
//! Points that come off the wire go through the decoders ([`decode_public_key`],
//! [`decode_signature`], [`PartialSignature::from_bytes`]), which check the encoding and subgroup
//! membership. The verification functions repeat the subgroup checks on their inputs anyway: the
//! check costs a small fraction of a pairing, and it keeps verification sound for affine points
//! built some other way. [`combine`] does not verify: combine only partials that passed
//! [`partial_verify`] or [`batch_partial_verify`], or verify the result.
//!
//! # Secrets
//! Secret keys and shares are [`Secret`]s: wiped on drop, redacted in `Debug`, never logged here.

use core::fmt::Debug;

use blst::{blst_fp12, blst_p1_affine, blst_p2_affine};
use blstrs::{G1Affine, G2Affine, Scalar};
use ff::{Field, PrimeField};
use group::prime::PrimeCurveAffine;
use group::{Curve as _, Group};
use rand_core::{CryptoRng, RngCore};

use crate::error::{CryptoError, DecodeError};
use crate::group::Curve;
use crate::poly::lagrange_at_zero;
use crate::secret::Secret;
use crate::{Bls12381G1, Bls12381G2};

/// The ciphersuite tag of [`MinPk`] signatures: the IETF proof-of-possession scheme with
/// signatures in G2 (`BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`), which is also the tag of
/// Ethereum's consensus-layer signatures. Any implementation of that ciphersuite (for example
/// `blst`'s `min_pk` verification with this tag) verifies [`MinPk`] signatures.
pub const MIN_PK_POP_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// A BLS layout: which group holds public keys and which holds signatures, with the matching
/// IETF ciphersuite tags.
pub trait Variant: 'static + Copy + Clone + Debug + Default + PartialEq + Eq + Send + Sync {
    /// The group of public keys.
    type Public: Curve<Scalar = Scalar>;
    /// The group of signatures (and of hashed messages).
    type Signature: Curve<Scalar = Scalar>;

    /// Stable name of the layout.
    const NAME: &'static str;
    /// Ciphersuite DST for signing messages (IETF POP scheme).
    const SIG_DST: &'static [u8];
    /// DST for proofs of possession (IETF `PopProve`).
    const POP_DST: &'static [u8];

    /// Whether `e(pk, h) == e(G, sig)`, where `G` generates the public-key group and `h` is a
    /// hashed message, computed as one two-term multi-Miller loop and one final exponentiation.
    ///
    /// Pure arithmetic: no validation of the inputs, identity points are handled by the
    /// definition `e(O, .) = e(., O) = 1`.
    fn pairing_check(
        pk: &<Self::Public as Curve>::Affine,
        h: &<Self::Signature as Curve>::Affine,
        sig: &<Self::Signature as Curve>::Affine,
    ) -> bool;
}

/// Public keys in G1, signatures in G2 (the Ethereum consensus layout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MinPk;

/// Public keys in G2, signatures in G1 (short signatures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MinSig;

impl Variant for MinPk {
    type Public = Bls12381G1;
    type Signature = Bls12381G2;

    const NAME: &'static str = "MinPk";
    const SIG_DST: &'static [u8] = MIN_PK_POP_DST;
    const POP_DST: &'static [u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

    fn pairing_check(pk: &G1Affine, h: &G2Affine, sig: &G2Affine) -> bool {
        // e(pk, h) * e(-G1, sig) == 1; negating in G1 is the cheaper side.
        pairing_product_is_one(&[(*pk, *h), (-G1Affine::generator(), *sig)])
    }
}

impl Variant for MinSig {
    type Public = Bls12381G2;
    type Signature = Bls12381G1;

    const NAME: &'static str = "MinSig";
    const SIG_DST: &'static [u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_";
    const POP_DST: &'static [u8] = b"BLS_POP_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_";

    fn pairing_check(pk: &G2Affine, h: &G1Affine, sig: &G1Affine) -> bool {
        // e(h, pk) * e(-sig, G2) == 1.
        pairing_product_is_one(&[(*h, *pk), (-*sig, G2Affine::generator())])
    }
}

/// `prod_i e(P_i, Q_i) == 1`, with one multi-Miller loop and one final exponentiation.
///
/// Pairs with an identity component contribute 1 and are dropped: blst's multi-Miller loop has
/// no special case for the point at infinity, and the pairing is 1 there by definition.
fn pairing_product_is_one(pairs: &[(G1Affine, G2Affine)]) -> bool {
    let mut ps: Vec<blst_p1_affine> = Vec::with_capacity(pairs.len());
    let mut qs: Vec<blst_p2_affine> = Vec::with_capacity(pairs.len());
    for (p, q) in pairs {
        if bool::from(p.is_identity() | q.is_identity()) {
            continue;
        }
        ps.push(*p.as_ref());
        qs.push(*q.as_ref());
    }
    if ps.is_empty() {
        return true;
    }
    // blst reads consecutive points when the second entry of a pointer list is null.
    let p_ptrs: [*const blst_p1_affine; 2] = [ps.as_ptr(), core::ptr::null()];
    let q_ptrs: [*const blst_p2_affine; 2] = [qs.as_ptr(), core::ptr::null()];
    let mut ml = blst_fp12::default();
    let mut gt = blst_fp12::default();
    // SAFETY: `ps` and `qs` hold `ps.len()` valid affine points each and outlive the calls; the
    // outputs are valid, exclusively borrowed field elements.
    unsafe {
        blst::blst_miller_loop_n(&mut ml, q_ptrs.as_ptr(), p_ptrs.as_ptr(), ps.len());
        blst::blst_final_exp(&mut gt, &ml);
        blst::blst_fp12_is_one(&gt)
    }
}

/// A public key of layout `V` (affine point of the public-key group).
pub type PublicKey<V> = <<V as Variant>::Public as Curve>::Affine;
/// A signature of layout `V` (affine point of the signature group).
pub type Signature<V> = <<V as Variant>::Signature as Curve>::Affine;

/// A signature share: `share * H(msg)` by the holder of the share at `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartialSignature<V: Variant> {
    /// Evaluation point of the signer's share (non-zero, distinct per signer).
    pub index: Scalar,
    /// The signer's share times the hashed message.
    pub sig: Signature<V>,
}

impl<V: Variant> PartialSignature<V> {
    /// Length of [`PartialSignature::to_bytes`]: the 32-byte big-endian index, then the
    /// compressed signature.
    pub const ENCODED_LEN: usize = 32 + <V::Signature as Curve>::POINT_LEN;

    /// Encodes as `index (32 bytes, big-endian) || compressed signature`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::ENCODED_LEN);
        out.extend_from_slice(&V::Signature::encode_scalar(&self.index));
        V::Signature::encode_point(&self.sig, &mut out);
        out
    }

    /// Decodes [`PartialSignature::to_bytes`], checking the index is canonical and non-zero and
    /// the signature is a valid point of the prime-order subgroup.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        crate::group::expect_len(bytes, Self::ENCODED_LEN)?;
        let index = V::Signature::decode_scalar(&bytes[..32])?;
        if bool::from(index.is_zero()) {
            return Err(DecodeError::ZeroScalar);
        }
        let sig = V::Signature::decode_point(&bytes[32..])?;
        Ok(PartialSignature { index, sig })
    }
}

/// Decodes a secret key from its 32-byte big-endian encoding, rejecting zero (whose signatures
/// would all be the identity) and non-canonical encodings.
pub fn secret_key_from_bytes(bytes: &[u8]) -> Result<Secret<Scalar>, CryptoError> {
    let s = Bls12381G1::decode_scalar(bytes)?;
    if bool::from(s.is_zero()) {
        return Err(DecodeError::ZeroScalar.into());
    }
    Ok(Secret::new(s))
}

/// The public key `sk * G` of a secret key (or the public share of a secret share).
pub fn public_key<V: Variant>(sk: &Secret<Scalar>) -> PublicKey<V> {
    (<V::Public as Curve>::Point::generator() * sk.expose()).to_affine()
}

/// Decodes a compressed public key: canonical, in the subgroup, not the identity (IETF
/// `KeyValidate`).
pub fn decode_public_key<V: Variant>(bytes: &[u8]) -> Result<PublicKey<V>, CryptoError> {
    Ok(V::Public::decode_point_nonzero(bytes)?)
}

/// Decodes a compressed signature: canonical and in the subgroup (the identity decodes, and then
/// fails verification).
pub fn decode_signature<V: Variant>(bytes: &[u8]) -> Result<Signature<V>, CryptoError> {
    Ok(V::Signature::decode_point(bytes)?)
}

/// IETF `KeyValidate` on a point: not the identity and in the prime-order subgroup.
pub fn validate_public_key<V: Variant>(pk: &PublicKey<V>) -> Result<(), CryptoError> {
    if bool::from(pk.is_identity()) {
        return Err(DecodeError::Identity.into());
    }
    if !V::Public::in_subgroup(pk) {
        return Err(DecodeError::NotInSubgroup.into());
    }
    Ok(())
}

/// `H(msg)` in the signature group under the ciphersuite DST.
pub fn hash_message<V: Variant>(msg: &[u8]) -> Signature<V> {
    V::Signature::hash_to_point(msg, V::SIG_DST).to_affine()
}

/// IETF `Sign`: `sk * H(msg)`.
///
/// A zero key (which [`secret_key_from_bytes`] refuses) gives the identity, which no valid key
/// verifies.
pub fn sign<V: Variant>(sk: &Secret<Scalar>, msg: &[u8]) -> Signature<V> {
    (V::Signature::hash_to_point(msg, V::SIG_DST) * sk.expose()).to_affine()
}

/// IETF `Verify`: checks `e(pk, H(msg)) == e(G, sig)`.
///
/// Rejects the identity public key (`Decode(Identity)`), points outside the prime-order subgroup,
/// and signatures that do not verify (`BadSignature`; the identity signature always lands here).
pub fn verify<V: Variant>(
    pk: &PublicKey<V>,
    msg: &[u8],
    sig: &Signature<V>,
) -> Result<(), CryptoError> {
    validate_public_key::<V>(pk)?;
    if !V::Signature::in_subgroup(sig) {
        return Err(CryptoError::BadSignature);
    }
    if V::pairing_check(pk, &hash_message::<V>(msg), sig) {
        Ok(())
    } else {
        Err(CryptoError::BadSignature)
    }
}

/// Signs `msg` with the secret share at `index`.
pub fn partial_sign<V: Variant>(
    share: &Secret<Scalar>,
    index: Scalar,
    msg: &[u8],
) -> PartialSignature<V> {
    PartialSignature {
        index,
        sig: sign::<V>(share, msg),
    }
}

/// Verifies a partial signature against the signer's public share `share * G` (which the DKG
/// transcript determines for every index). Same checks as [`verify`].
pub fn partial_verify<V: Variant>(
    pk_share: &PublicKey<V>,
    msg: &[u8],
    partial: &PartialSignature<V>,
) -> Result<(), CryptoError> {
    verify::<V>(pk_share, msg, &partial.sig)
}

/// A uniformly random non-zero 128-bit weight. A batch containing a bad partial passes only if
/// the weights hit one linear relation, probability at most `2^-128`; wider weights would buy
/// nothing.
fn random_weight<R: RngCore + CryptoRng>(rng: &mut R) -> Scalar {
    loop {
        let w = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
        if w != 0 {
            return Scalar::from_u128(w);
        }
    }
}

/// The surviving candidates of a batch check, with one random weight each.
struct Batch<'a, V: Variant> {
    positions: Vec<usize>,
    pks: Vec<PublicKey<V>>,
    sigs: Vec<Signature<V>>,
    weights: Vec<Scalar>,
    h: &'a Signature<V>,
}

impl<V: Variant> Batch<'_, V> {
    /// `e(sum r_i pk_i, H(m)) == e(G, sum r_i sig_i)` over candidates `lo..hi`.
    fn check(&self, lo: usize, hi: usize) -> bool {
        let w = &self.weights[lo..hi];
        let pk = V::Public::msm(&self.pks[lo..hi], w).to_affine();
        let sig = V::Signature::msm(&self.sigs[lo..hi], w).to_affine();
        V::pairing_check(&pk, self.h, &sig)
    }

    /// Names the bad candidates in `lo..hi`, a range whose combined check failed.
    ///
    /// With the same weights the check is multiplicative over a split (the pairing ratio of the
    /// whole is the product of the halves' ratios), so when the left half passes the right one
    /// must fail and needs no check of its own.
    fn bisect(&self, lo: usize, hi: usize, bad: &mut Vec<usize>) {
        if hi - lo == 1 {
            bad.push(self.positions[lo]);
            return;
        }
        let mid = lo + (hi - lo) / 2;
        if self.check(lo, mid) {
            self.bisect(mid, hi, bad);
        } else {
            self.bisect(lo, mid, bad);
            if !self.check(mid, hi) {
                self.bisect(mid, hi, bad);
            }
        }
    }
}

/// Verifies many partial signatures on one message at once; `partials[i]` is checked against
/// `public_shares[i]`.
///
/// Checks `e(sum r_i pk_i, H(m)) == e(G, sum r_i sig_i)` for fresh random 128-bit weights `r_i`:
/// one MSM over the signatures, one over the public shares and one two-term pairing, instead of
/// two pairings per partial. If the combined check fails, bisection names the bad partials
/// (about `2 log2(n)` further checks per bad partial).
///
/// Returns the positions (into `partials`) of the partials that do not verify, in increasing
/// order. A partial without a public share at its position, with an identity public share, or
/// with a point outside the subgroup is reported bad without entering the batch. A valid
/// partial is never reported; a bad one escapes with probability at most `2^-128`.
pub fn batch_partial_verify<V: Variant, R: RngCore + CryptoRng>(
    public_shares: &[PublicKey<V>],
    msg: &[u8],
    partials: &[PartialSignature<V>],
    rng: &mut R,
) -> Result<(), Vec<usize>> {
    let mut bad = Vec::new();
    let mut positions = Vec::with_capacity(partials.len());
    for (i, partial) in partials.iter().enumerate() {
        let usable = public_shares.get(i).is_some_and(|pk| {
            validate_public_key::<V>(pk).is_ok() && V::Signature::in_subgroup(&partial.sig)
        });
        if usable {
            positions.push(i);
        } else {
            bad.push(i);
        }
    }
    if !positions.is_empty() {
        let h = hash_message::<V>(msg);
        let batch = Batch::<V> {
            pks: positions.iter().map(|&i| public_shares[i]).collect(),
            sigs: positions.iter().map(|&i| partials[i].sig).collect(),
            weights: positions.iter().map(|_| random_weight(rng)).collect(),
            positions,
            h: &h,
        };
        let n = batch.positions.len();
        if !batch.check(0, n) {
            batch.bisect(0, n, &mut bad);
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        bad.sort_unstable();
        Err(bad)
    }
}

/// Combines partial signatures into the group signature: `sum_i l_i(0) * sig_i` over the first
/// `threshold` partials, with the Lagrange coefficients at zero from one batch inversion and the
/// sum as one MSM.
///
/// Fails with `BadThreshold` for a zero threshold, `NotEnough` for fewer than `threshold`
/// partials, and `BadIndices` if any two partials (used or not) share an index or an index is
/// zero. Does not verify the partials: see the module documentation.
pub fn combine<V: Variant>(
    threshold: usize,
    partials: &[PartialSignature<V>],
) -> Result<Signature<V>, CryptoError> {
    if threshold == 0 {
        return Err(CryptoError::BadThreshold {
            threshold,
            n: partials.len(),
        });
    }
    if partials.len() < threshold {
        return Err(CryptoError::NotEnough {
            needed: threshold,
            got: partials.len(),
        });
    }
    // Distinctness over all partials, not just the ones used: a repeated index means the caller
    // mixed up its inputs, and silently picking one of them would hide that.
    let mut reprs: Vec<[u8; 32]> = partials.iter().map(|p| p.index.to_repr()).collect();
    reprs.sort_unstable();
    if reprs.windows(2).any(|w| w[0] == w[1]) || partials.iter().any(|p| p.index.is_zero_vartime())
    {
        return Err(CryptoError::BadIndices);
    }
    let used = &partials[..threshold];
    let indices: Vec<Scalar> = used.iter().map(|p| p.index).collect();
    let lambdas = lagrange_at_zero(&indices)?;
    let sigs: Vec<Signature<V>> = used.iter().map(|p| p.sig).collect();
    Ok(V::Signature::msm(&sigs, &lambdas).to_affine())
}

/// IETF `PopProve`: `sk * H_pop(pk)`, where `H_pop` hashes the compressed public key with the
/// POP DST. Shows that the holder of `pk` knows its secret key.
pub fn proof_of_possession<V: Variant>(sk: &Secret<Scalar>) -> Signature<V> {
    let pk_bytes = V::Public::point_bytes(&public_key::<V>(sk));
    (V::Signature::hash_to_point(&pk_bytes, V::POP_DST) * sk.expose()).to_affine()
}

/// IETF `PopVerify`: checks `pop` is a valid proof of possession for `pk`.
///
/// Rejects the identity key (`Decode(Identity)`) and bad proofs (`BadProofOfPossession`).
pub fn verify_pop<V: Variant>(pk: &PublicKey<V>, pop: &Signature<V>) -> Result<(), CryptoError> {
    validate_public_key::<V>(pk)?;
    if !V::Signature::in_subgroup(pop) {
        return Err(CryptoError::BadProofOfPossession);
    }
    let h = V::Signature::hash_to_point(&V::Public::point_bytes(pk), V::POP_DST).to_affine();
    if V::pairing_check(pk, &h, pop) {
        Ok(())
    } else {
        Err(CryptoError::BadProofOfPossession)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(11)
    }

    fn roundtrip<V: Variant>() {
        let mut r = rng();
        let sk = Secret::new(V::Public::random_scalar(&mut r));
        let pk = public_key::<V>(&sk);
        let sig = sign::<V>(&sk, b"hello");
        assert_eq!(verify::<V>(&pk, b"hello", &sig), Ok(()));
        assert_eq!(
            verify::<V>(&pk, b"hellO", &sig),
            Err(CryptoError::BadSignature)
        );
        let pop = proof_of_possession::<V>(&sk);
        assert_eq!(verify_pop::<V>(&pk, &pop), Ok(()));
        // A signature is not a proof of possession: the DSTs differ.
        let pk_bytes = V::Public::point_bytes(&pk);
        assert_eq!(
            verify_pop::<V>(&pk, &sign::<V>(&sk, &pk_bytes)),
            Err(CryptoError::BadProofOfPossession)
        );
        // Identity signature never verifies; identity key is refused outright.
        assert_eq!(
            verify::<V>(&pk, b"hello", &Signature::<V>::identity()),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            verify::<V>(&PublicKey::<V>::identity(), b"hello", &sig),
            Err(CryptoError::Decode(DecodeError::Identity))
        );
    }

    #[test]
    fn sign_verify_pop_both_layouts() {
        roundtrip::<MinPk>();
        roundtrip::<MinSig>();
    }

    #[test]
    fn pairing_product_of_nothing_is_one() {
        assert!(pairing_product_is_one(&[]));
        assert!(pairing_product_is_one(&[(
            G1Affine::identity(),
            G2Affine::generator()
        )]));
        assert!(!pairing_product_is_one(&[(
            G1Affine::generator(),
            G2Affine::generator()
        )]));
    }

    #[test]
    fn partial_signature_encoding_roundtrips() {
        let mut r = rng();
        let sk = Secret::new(Bls12381G1::random_scalar(&mut r));
        let p = partial_sign::<MinSig>(&sk, Scalar::from(7u64), b"m");
        let bytes = p.to_bytes();
        assert_eq!(bytes.len(), PartialSignature::<MinSig>::ENCODED_LEN);
        assert_eq!(PartialSignature::<MinSig>::from_bytes(&bytes), Ok(p));
        let mut zero = bytes.clone();
        zero[..32].fill(0);
        assert_eq!(
            PartialSignature::<MinSig>::from_bytes(&zero),
            Err(DecodeError::ZeroScalar)
        );
    }

    #[test]
    fn secret_key_decoding_rejects_zero() {
        assert_eq!(
            secret_key_from_bytes(&[0u8; 32]).map(|_| ()),
            Err(CryptoError::Decode(DecodeError::ZeroScalar))
        );
        let mut one = [0u8; 32];
        one[31] = 1;
        let sk = secret_key_from_bytes(&one).unwrap();
        assert_eq!(public_key::<MinPk>(&sk), G1Affine::generator());
    }
}
