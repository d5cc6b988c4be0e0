//! Identity keys of participants: BLS signatures with public keys in G2 and signatures in G1
//! (the IETF `BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_` ciphersuite).
//!
//! Signatures in G1 make signing cheap (a participant signs one ack per dealer), and acks for one
//! dealer are signatures on one message, so the dealer publishes a single aggregate signature
//! verified against the sum of the ackers' keys. That is only sound against rogue keys because
//! every identity key is registered with a proof of possession ([`IdentityPublicKey::verify_pop`]),
//! which the registry (the coordinator contract) checks before a key can enter a committee.
//!
//! Every signed payload is domain-separated: the signed message is
//! `tagged_hash("keyquorum/<purpose>/v1", [payload])`, so a signature for one purpose is never
//! valid for another.

use core::fmt;

use blst::BLST_ERROR;
use blst::min_sig::{PublicKey, SecretKey, Signature};
use keyquorum_crypto::aggregate::{self as bls_aggregate, PopVerifiedKey};
use keyquorum_crypto::batch::HashedMessages;
use keyquorum_crypto::hash::tagged_hash;
use keyquorum_crypto::tbls::{self, MinSig};
use rayon::prelude::*;
use zeroize::Zeroize;

/// Signature ciphersuite DST.
pub const SIG_DST: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_";
/// Proof-of-possession DST.
pub const POP_DST: &[u8] = b"BLS_POP_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_";

/// Length of an encoded identity public key (compressed G2).
pub const PUBLIC_KEY_LEN: usize = 96;
/// Length of an encoded signature (compressed G1).
pub const SIGNATURE_LEN: usize = 48;

/// What a signature is for; part of the signed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A post on the board (contribution, publication, complaint, ...).
    Post,
    /// A player's acknowledgement of a dealer's share.
    Ack,
    /// A direct message (deal, commitment, echo, ...).
    Message,
    /// An address record or other node metadata.
    Record,
    /// A transaction to the coordinator contract.
    Transaction,
    /// A committee member's word that a magic block (its hash is the payload) is the one its
    /// own board defines.
    Endorsement,
}

impl Purpose {
    fn tag(self) -> &'static str {
        match self {
            Purpose::Post => "keyquorum/post/v1",
            Purpose::Ack => "keyquorum/ack/v1",
            Purpose::Message => "keyquorum/message/v1",
            Purpose::Record => "keyquorum/record/v1",
            Purpose::Transaction => "keyquorum/tx/v1",
            Purpose::Endorsement => "keyquorum/endorse/v1",
        }
    }

    /// The 32-byte message actually signed for `payload`.
    pub fn digest(self, payload: &[u8]) -> [u8; 32] {
        tagged_hash(self.tag(), &[payload])
    }
}

/// Identity errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// A key failed to decode or validate (wrong length, off-curve, identity, outside G2).
    #[error("invalid identity public key")]
    BadPublicKey,
    /// A signature failed to decode.
    #[error("invalid signature encoding")]
    BadSignatureEncoding,
    /// Key material too short or otherwise unusable.
    #[error("invalid secret key material")]
    BadSecret,
}

/// A participant's identity secret key. Zeroized on drop; redacted in `Debug`.
pub struct IdentityKeypair {
    sk: SecretKey,
    public: IdentityPublicKey,
}

impl fmt::Debug for IdentityKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IdentityKeypair(public: {:?}, secret: <redacted>)",
            self.public
        )
    }
}

impl Clone for IdentityKeypair {
    fn clone(&self) -> Self {
        IdentityKeypair {
            sk: self.sk.clone(),
            public: self.public.clone(),
        }
    }
}

impl Drop for IdentityKeypair {
    fn drop(&mut self) {
        let mut bytes = self.sk.to_bytes();
        bytes.zeroize();
        // blst keeps the scalar inside `SecretKey`; overwrite it with a fixed valid key.
        if let Ok(zero_like) = SecretKey::key_gen(&[0u8; 32], &[]) {
            self.sk = zero_like;
        }
    }
}

impl IdentityKeypair {
    /// Derives a key from at least 32 bytes of secret seed material (IETF KeyGen).
    pub fn from_seed(seed: &[u8]) -> Result<Self, IdentityError> {
        let sk = SecretKey::key_gen(seed, b"keyquorum identity")
            .map_err(|_| IdentityError::BadSecret)?;
        let pk = sk.sk_to_pk();
        Ok(IdentityKeypair {
            public: IdentityPublicKey {
                bytes: pk.to_bytes(),
                pk,
            },
            sk,
        })
    }

    /// The secret key bytes, for an encrypted keystore only.
    pub fn secret_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.sk.to_bytes())
    }

    /// Restores a key from [`IdentityKeypair::secret_bytes`].
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        let sk = SecretKey::from_bytes(bytes).map_err(|_| IdentityError::BadSecret)?;
        let pk = sk.sk_to_pk();
        Ok(IdentityKeypair {
            public: IdentityPublicKey {
                bytes: pk.to_bytes(),
                pk,
            },
            sk,
        })
    }

    /// The public key.
    pub fn public(&self) -> &IdentityPublicKey {
        &self.public
    }

    /// Signs `payload` for `purpose`.
    pub fn sign(&self, purpose: Purpose, payload: &[u8]) -> IdentitySignature {
        let digest = purpose.digest(payload);
        IdentitySignature(self.sk.sign(&digest, SIG_DST, &[]).to_bytes())
    }

    /// [`IdentityKeypair::sign`], hashing the message through `hashes` (when it is for
    /// [`SIG_DST`]): the same signature, and the hash stays for verifying signatures on the
    /// same message later in this process (see [`keyquorum_crypto::batch::HashedMessages`]).
    pub fn sign_remembered(
        &self,
        purpose: Purpose,
        payload: &[u8],
        hashes: &HashedMessages,
    ) -> IdentitySignature {
        if hashes.dst() != SIG_DST {
            return self.sign(purpose, payload);
        }
        IdentitySignature(hashes.sign(&self.sk, &purpose.digest(payload)))
    }

    /// Proof of possession of this key (IETF PopProve).
    pub fn proof_of_possession(&self) -> IdentitySignature {
        IdentitySignature(self.sk.sign(&self.public.bytes, POP_DST, &[]).to_bytes())
    }
}

/// A validated identity public key (in G2, not the identity).
#[derive(Clone)]
pub struct IdentityPublicKey {
    bytes: [u8; PUBLIC_KEY_LEN],
    pk: PublicKey,
}

impl PartialEq for IdentityPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl Eq for IdentityPublicKey {}

impl PartialOrd for IdentityPublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for IdentityPublicKey {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.bytes.cmp(&other.bytes)
    }
}

impl core::hash::Hash for IdentityPublicKey {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state)
    }
}

impl fmt::Debug for IdentityPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityPublicKey({}..)", hex::encode(&self.bytes[..6]))
    }
}

impl IdentityPublicKey {
    /// Decodes and validates a compressed G2 key (on the curve, in the subgroup, not the identity).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        if bytes.len() != PUBLIC_KEY_LEN {
            return Err(IdentityError::BadPublicKey);
        }
        let pk = PublicKey::key_validate(bytes).map_err(|_| IdentityError::BadPublicKey)?;
        let mut b = [0u8; PUBLIC_KEY_LEN];
        b.copy_from_slice(bytes);
        if pk.to_bytes() != b {
            return Err(IdentityError::BadPublicKey);
        }
        Ok(IdentityPublicKey { bytes: b, pk })
    }

    /// The canonical encoding.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.bytes
    }

    /// The canonical encoding, borrowed.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.bytes
    }

    /// Verifies a signature on `payload` for `purpose`.
    pub fn verify(&self, purpose: Purpose, payload: &[u8], sig: &IdentitySignature) -> bool {
        let Ok(s) = Signature::sig_validate(&sig.0, true) else {
            return false;
        };
        let digest = purpose.digest(payload);
        s.verify(false, &digest, SIG_DST, &[], &self.pk, false) == BLST_ERROR::BLST_SUCCESS
    }

    /// Verifies a signature on a message already hashed for its purpose
    /// ([`Purpose::digest`]): `verify(purpose, payload, sig)` is
    /// `verify_digest(&purpose.digest(payload), sig)`.
    pub fn verify_digest(&self, digest: &[u8; 32], sig: &IdentitySignature) -> bool {
        let Ok(s) = Signature::sig_validate(&sig.0, true) else {
            return false;
        };
        s.verify(false, digest, SIG_DST, &[], &self.pk, false) == BLST_ERROR::BLST_SUCCESS
    }

    /// The key as a point of the `MinSig` layout's public-key group.
    fn affine(&self) -> blstrs::G2Affine {
        let mut p = blstrs::G2Affine::default();
        *p.as_mut() = self.point();
        p
    }

    /// The key as a raw affine point, for batch verification.
    pub(crate) fn point(&self) -> blst::blst_p2_affine {
        blst::blst_p2_affine::from(self.pk)
    }

    /// Verifies a proof of possession (IETF PopVerify).
    pub fn verify_pop(&self, pop: &IdentitySignature) -> bool {
        let Ok(s) = Signature::sig_validate(&pop.0, true) else {
            return false;
        };
        s.verify(false, &self.bytes, POP_DST, &[], &self.pk, false) == BLST_ERROR::BLST_SUCCESS
    }
}

/// A signature (compressed G1). Validated when verified, not when decoded.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentitySignature(pub [u8; SIGNATURE_LEN]);

impl fmt::Debug for IdentitySignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentitySignature({}..)", hex::encode(&self.0[..6]))
    }
}

impl IdentitySignature {
    /// From raw bytes (exact length).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, IdentityError> {
        let arr: [u8; SIGNATURE_LEN] = bytes
            .try_into()
            .map_err(|_| IdentityError::BadSignatureEncoding)?;
        Ok(IdentitySignature(arr))
    }
}

/// Aggregates signatures on one message (ack aggregation), with
/// [`keyquorum_crypto::aggregate::aggregate_signatures`] (IETF `Aggregate`, the one
/// implementation; its known-answer tests are in `keyquorum-crypto`). Fails if the list is empty
/// or a signature does not decode to a point on the curve.
///
/// Individual signatures are not subgroup-checked here (about 55 us each): the aggregate is, when
/// it is verified ([`verify_aggregate`]), and verification is linear, so an aggregate that passes
/// proves the same statement whether or not the parts carried small-order components.
pub fn aggregate(sigs: &[IdentitySignature]) -> Option<IdentitySignature> {
    // Decompression (a square root each) is the cost here: spread it over the rayon pool.
    let points: Vec<blstrs::G1Affine> = sigs
        .par_iter()
        .map(|s| Option::from(blstrs::G1Affine::from_compressed_unchecked(&s.0)))
        .collect::<Option<_>>()?;
    let agg = bls_aggregate::aggregate_signatures::<MinSig>(&points).ok()?;
    Some(IdentitySignature(agg.to_compressed()))
}

/// Verifies an aggregate signature by `signers` on one payload (FastAggregateVerify).
///
/// The keys must have had their proofs of possession verified at registration.
pub fn verify_aggregate(
    signers: &[&IdentityPublicKey],
    purpose: Purpose,
    payload: &[u8],
    sig: &IdentitySignature,
) -> bool {
    verify_aggregate_digest(signers, &purpose.digest(payload), sig)
}

/// [`verify_aggregate`] on a message already hashed for its purpose, with
/// [`keyquorum_crypto::aggregate::fast_aggregate_verify`] (the one implementation): identity keys
/// are the `MinSig` layout's public keys, and the digest is the signed message.
pub fn verify_aggregate_digest(
    signers: &[&IdentityPublicKey],
    digest: &[u8; 32],
    sig: &IdentitySignature,
) -> bool {
    let Ok(sig) = tbls::decode_signature::<MinSig>(&sig.0) else {
        return false;
    };
    // The contract admits an identity key only with a verified proof of possession.
    let Ok(keys) = signers
        .iter()
        .map(|k| PopVerifiedKey::<MinSig>::registered(k.affine()))
        .collect::<Result<Vec<_>, _>>()
    else {
        return false;
    };
    bls_aggregate::fast_aggregate_verify(&keys, digest, &sig).is_ok()
}

/// Whether every item (a key, a digest as [`Purpose::digest`] gives it, a signature) verifies,
/// checked at once: `e(sum_k r_k sig_k, G2) == prod_k e(r_k H(digest_k), key_k)` with one
/// multi-pairing (blst's `verify_multiple_aggregate_signatures`), the signatures
/// subgroup-checked. The weights `r_k` are odd 128-bit numbers drawn from a ChaCha20 stream
/// seeded with SHA-256 of every input, so the answer is a function of the items alone; if some
/// item is false the check passes with probability at most `2^-127` over them (the
/// small-exponents test of Bellare, Garay and Rabin, Eurocrypt 1998). `false` says only that
/// some item is false: a caller that must know which checks them one by one
/// ([`IdentityPublicKey::verify_digest`]), which is also what decides.
pub fn verify_batch(items: &[(&IdentityPublicKey, [u8; 32], &IdentitySignature)]) -> bool {
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};
    use sha2::{Digest, Sha256};

    if items.is_empty() {
        return true;
    }
    let Some(sigs) = items
        .iter()
        .map(|(_, _, s)| Signature::sig_validate(&s.0, true).ok())
        .collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    let mut seed = Sha256::new();
    seed.update(b"keyquorum/identity-batch/v1");
    for (key, digest, sig) in items {
        seed.update(key.bytes);
        seed.update(digest);
        seed.update(sig.0);
    }
    let mut rng = ChaCha20Rng::from_seed(seed.finalize().into());
    let weights: Vec<blst::blst_scalar> = items
        .iter()
        .map(|_| {
            // Little-endian: the low 16 bytes random, the lowest bit set (never zero).
            let mut b = [0u8; 32];
            rng.fill_bytes(&mut b[..16]);
            b[0] |= 1;
            blst::blst_scalar { b }
        })
        .collect();
    let messages: Vec<&[u8]> = items.iter().map(|(_, d, _)| d.as_slice()).collect();
    let keys: Vec<&PublicKey> = items.iter().map(|(k, _, _)| &k.pk).collect();
    let sig_refs: Vec<&Signature> = sigs.iter().collect();
    // Keys are validated when decoded, signatures (subgroup, not the identity) above, as
    // `verify_digest` validates them.
    Signature::verify_multiple_aggregate_signatures(
        &messages, SIG_DST, &keys, false, &sig_refs, false, &weights, 128,
    ) == BLST_ERROR::BLST_SUCCESS
}

/// Decodes a signature as the verification functions here do (canonical, on the curve, in the
/// prime-order subgroup, not the identity); `None` exactly when they would refuse it outright.
pub(crate) fn decode_signature_checked(sig: &IdentitySignature) -> Option<blst::blst_p1_affine> {
    Signature::sig_validate(&sig.0, true)
        .ok()
        .map(blst::blst_p1_affine::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> IdentityKeypair {
        IdentityKeypair::from_seed(&[i; 32]).unwrap()
    }

    #[test]
    fn a_batch_verifies_exactly_when_every_item_does() {
        let keys: Vec<IdentityKeypair> = (1..=5).map(key).collect();
        let digests: Vec<[u8; 32]> = (0..5u8)
            .map(|i| Purpose::Transaction.digest(&[i]))
            .collect();
        let signed = |k: &IdentityKeypair, d: &[u8; 32]| {
            IdentitySignature(k.sk.sign(d, SIG_DST, &[]).to_bytes())
        };
        let sigs: Vec<IdentitySignature> = keys
            .iter()
            .zip(&digests)
            .map(|(k, d)| signed(k, d))
            .collect();
        // The batch's answer, and whether every item verifies alone.
        let answers = |keys: &[&IdentityPublicKey], sigs: &[IdentitySignature]| {
            let items: Vec<_> = keys
                .iter()
                .zip(&digests)
                .zip(sigs)
                .map(|((k, d), s)| (*k, *d, s))
                .collect();
            let alone = items.iter().all(|(k, d, s)| k.verify_digest(d, s));
            (verify_batch(&items), alone)
        };
        let publics: Vec<&IdentityPublicKey> = keys.iter().map(|k| k.public()).collect();
        assert_eq!(answers(&publics, &sigs), (true, true));
        assert!(verify_batch(&[]));
        // One signature by another key, two swapped, the identity, bytes off the curve, a valid
        // signature under another item's key: each fails the batch as it fails alone.
        let mut wrong = sigs.clone();
        wrong[2] = signed(&key(9), &digests[2]);
        let mut swapped = sigs.clone();
        swapped.swap(0, 1);
        let mut identity = sigs.clone();
        let mut infinity = [0u8; SIGNATURE_LEN];
        infinity[0] = 0xc0;
        identity[4] = IdentitySignature(infinity);
        let mut garbage = sigs.clone();
        garbage[3] = IdentitySignature([0xab; SIGNATURE_LEN]);
        for bad in [&wrong, &swapped, &identity, &garbage] {
            assert_eq!(answers(&publics, bad), (false, false));
        }
        let mut moved = publics.clone();
        moved[0] = keys[1].public();
        assert_eq!(answers(&moved, &sigs), (false, false));
    }

    #[test]
    fn sign_verify_and_domain_separation() {
        let k = key(1);
        let s = k.sign(Purpose::Ack, b"hello");
        assert!(k.public().verify(Purpose::Ack, b"hello", &s));
        assert!(!k.public().verify(Purpose::Post, b"hello", &s));
        assert!(!k.public().verify(Purpose::Ack, b"hellp", &s));
        assert!(!key(2).public().verify(Purpose::Ack, b"hello", &s));
        assert!(k.public().verify_pop(&k.proof_of_possession()));
        assert!(!k.public().verify_pop(&key(2).proof_of_possession()));
    }

    /// Identity keys are the `MinSig` layout of `keyquorum_crypto::tbls` (same ciphersuite tags,
    /// same signatures and proofs), which is what lets ack aggregation delegate to
    /// `keyquorum_crypto::aggregate`.
    #[test]
    fn identity_keys_are_the_min_sig_layout() {
        use keyquorum_crypto::tbls::Variant as _;
        assert_eq!(SIG_DST, MinSig::SIG_DST);
        assert_eq!(POP_DST, MinSig::POP_DST);
        let k = key(3);
        let digest = Purpose::Ack.digest(b"m");
        let sig = tbls::decode_signature::<MinSig>(&k.sign(Purpose::Ack, b"m").0).unwrap();
        assert_eq!(
            tbls::verify::<MinSig>(&k.public().affine(), &digest, &sig),
            Ok(())
        );
        let pop = tbls::decode_signature::<MinSig>(&k.proof_of_possession().0).unwrap();
        assert_eq!(
            tbls::verify_pop::<MinSig>(&k.public().affine(), &pop),
            Ok(())
        );
        // The same aggregate as the crypto crate's, byte for byte.
        let keys: Vec<_> = (1..5).map(key).collect();
        let sigs: Vec<_> = keys.iter().map(|k| k.sign(Purpose::Ack, b"m")).collect();
        let points: Vec<_> = sigs
            .iter()
            .map(|s| tbls::decode_signature::<MinSig>(&s.0).unwrap())
            .collect();
        let direct = bls_aggregate::aggregate_signatures::<MinSig>(&points).unwrap();
        assert_eq!(aggregate(&sigs).unwrap().0, direct.to_compressed());
        assert_eq!(aggregate(&[]), None);
        assert!(!verify_aggregate(&[], Purpose::Ack, b"m", &sigs[0]));
    }

    /// Signing through a memory of hashed messages gives the same signature, and leaves the
    /// hash there for a later batch verification.
    #[test]
    fn remembered_signatures_are_the_same_signatures() {
        let k = key(4);
        let memory = HashedMessages::new(SIG_DST, 2);
        let sig = k.sign_remembered(Purpose::Ack, b"m", &memory);
        assert_eq!(sig, k.sign(Purpose::Ack, b"m"));
        assert!(memory.get(&Purpose::Ack.digest(b"m")).is_some());
        let other = HashedMessages::new(b"another DST", 2);
        assert_eq!(k.sign_remembered(Purpose::Ack, b"m", &other), sig);
        assert!(other.get(&Purpose::Ack.digest(b"m")).is_none());
    }

    #[test]
    fn aggregate_acks() {
        let keys: Vec<_> = (1..6).map(key).collect();
        let sigs: Vec<_> = keys.iter().map(|k| k.sign(Purpose::Ack, b"m")).collect();
        let agg = aggregate(&sigs).unwrap();
        let pks: Vec<&IdentityPublicKey> = keys.iter().map(|k| k.public()).collect();
        assert!(verify_aggregate(&pks, Purpose::Ack, b"m", &agg));
        assert!(!verify_aggregate(&pks[..4], Purpose::Ack, b"m", &agg));
        assert!(!verify_aggregate(&pks, Purpose::Ack, b"n", &agg));
        let mut bad = sigs.clone();
        bad[0].0[5] ^= 1;
        assert!(
            aggregate(&bad).is_none()
                || !verify_aggregate(&pks, Purpose::Ack, b"m", &aggregate(&bad).unwrap())
        );
    }

    #[test]
    fn public_key_validation() {
        assert!(IdentityPublicKey::from_bytes(&[0u8; 96]).is_err());
        assert!(IdentityPublicKey::from_bytes(&[1u8; 95]).is_err());
        let mut inf = [0u8; 96];
        inf[0] = 0xc0;
        assert!(IdentityPublicKey::from_bytes(&inf).is_err());
        let k = key(3);
        assert_eq!(
            IdentityPublicKey::from_bytes(k.public().as_bytes()).unwrap(),
            *k.public()
        );
        assert!(!format!("{k:?}").contains(&format!("{:?}", k.secret_bytes().as_slice())));
    }
}
