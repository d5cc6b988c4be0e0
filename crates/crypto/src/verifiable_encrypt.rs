//! Share encryption whose decryption can be proven in public: hashed ElGamal (ECIES) over
//! secp256k1 with a proof of knowledge of the ephemeral key, and a Chaum-Pedersen proof for
//! revealing the Diffie-Hellman value of one ciphertext.
//!
//! This serves complaints that anyone can check: a recipient that received a bad share reveals
//! the key of that one ciphertext with a proof that it is the right one, so anyone can decrypt
//! the ciphertext and check the plaintext against the dealer's commitment. A true complaint then
//! convicts the dealer with public evidence; a false one convicts its author.
//!
//! # Construction
//! secp256k1 (prime order `q`, cofactor 1, generator `G`), SHA-256, ChaCha20-Poly1305.
//! - Keys: secret `d` in `[1, q)`, public `D = d G` (33-byte SEC1 compressed, never the
//!   identity).
//! - [`seal`] to `D` under a context [`ShareAad`] `a`: draw `r`, `R = r G`, `Z = r D`; prove
//!   knowledge of `r` with a Schnorr proof whose challenge hashes `(D, R, a)`; the AEAD key is
//!   `k = H_key(D, R, Z, a)` and the AEAD's associated data is `a`, with a zero nonce (each key
//!   encrypts one message: `R` is fresh). Ciphertext: `R || c_R || s_R || AEAD(k, 0, m, a)`.
//! - [`open`] with `d`: check the proof of knowledge, `Z = d R`, derive `k`, decrypt.
//! - [`reveal_key`] with `d`: `Z = d R` and a Chaum-Pedersen proof that
//!   `log_G D = log_R Z`, whose Fiat-Shamir challenge hashes `(D, R, Z, A_1, A_2, a, ciphertext)`
//!   under its own domain tag.
//! - [`open_revealed`], by anyone with `D`, `a`, the ciphertext and the reveal: check both
//!   proofs, derive `k` from the revealed `Z`, decrypt.
//!
//! Every hash is [`tagged_hash`] with a distinct tag; challenges are the 32-byte digest reduced
//! modulo `q` (bias below `2^-127`, since `q > 2^256 - 2^129`).
//!
//! # Why it is sound
//! - Secrecy of other ciphertexts: a reveal publishes `Z = d R` for one `R`. Because the dealer
//!   proved knowledge of `r` with `R` (bound to the context), whoever made `R` could compute
//!   `Z = r D` already, so the reveal adds nothing about `d` beyond a zero-knowledge proof
//!   (Chaum-Pedersen is special honest-verifier zero knowledge, made non-interactive in the
//!   random-oracle model). Without that proof of knowledge a corrupt dealer could copy an honest
//!   dealer's `R'` into its own ciphertext to the same recipient, and the recipient's complaint
//!   would then reveal `d R'`, the key of the honest dealer's share: [`reveal_key`] refuses to
//!   reveal for a ciphertext whose proof fails, and such a ciphertext is itself public evidence
//!   against its (signing) author. The key of any other ciphertext needs `d R''` for an `R''`
//!   whose discrete log its honest maker keeps: that is computational Diffie-Hellman.
//! - Soundness of a reveal: Chaum-Pedersen is special sound, so a verifying reveal has
//!   `Z = d R` for the `d` of the registered `D` except with negligible probability; the
//!   recipient cannot make a good ciphertext look bad by revealing a wrong `Z`.
//! - Binding to the context: `a` (session, dealer, recipient, commitment hash) enters the key
//!   derivation, the AEAD associated data and both challenges, so a ciphertext or a reveal moved
//!   to another context fails; the reveal's challenge also hashes the whole ciphertext.
//! - Determinism of the verdict: for a given `(D, a, ciphertext)` every verifier derives the same
//!   key from a valid reveal, and ChaCha20-Poly1305 either opens or not, so everybody reaches the
//!   same verdict. (A dealer could not craft an AEAD ciphertext that opens under two keys to
//!   fool some verifiers: there is only one `Z` for which a reveal verifies.)
//!
//! Why not HPKE over X25519 as in [`crate::encrypt`]: X25519 has cofactor 8 and an x-only
//! Montgomery ladder, so a Chaum-Pedersen proof over it would need cofactor clearing and a
//! prime-order group API it does not offer; secp256k1 has both, and `k256` is already a
//! dependency. The curve here is fixed whatever curve the DKG uses.
//!
//! Randomness comes from the caller's RNG (a seeded RNG replays to identical bytes), as in
//! [`crate::encrypt`].

use core::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use elliptic_curve::ops::Reduce;
use ff::Field;
use k256::{AffinePoint, ProjectivePoint, Scalar, U256};
use rand_core::{CryptoRng, RngCore};
use thiserror::Error;
use zeroize::{Zeroize, Zeroizing};

use crate::encrypt::ShareAad;
use crate::error::DecodeError;
use crate::group::Curve;
use crate::hash::tagged_hash;
use crate::secp256k1::Secp256k1;
use crate::secret::SecretBytes;

/// Length of an encoded point (SEC1 compressed).
pub const POINT_LEN: usize = 33;
/// Length of a Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// Length of a proof: challenge then response, 32 bytes each.
pub const PROOF_LEN: usize = 64;
/// Length of a [`KeyReveal`]: the Diffie-Hellman point then its proof.
pub const REVEAL_LEN: usize = POINT_LEN + PROOF_LEN;

const TAG_POK: &str = "keyquorum/venc/secp256k1/ephemeral-pok/v1";
const TAG_DLEQ: &str = "keyquorum/venc/secp256k1/dleq/v1";
const TAG_KEY: &str = "keyquorum/venc/secp256k1/aead-key/v1";

/// Why a verifiable-encryption operation failed. Each variant says whose fault it is where
/// someone's is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifiableEncryptionError {
    /// An encoding failed to decode (wrong length, point off the curve, non-canonical scalar,
    /// identity).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The ciphertext's proof of knowledge of its ephemeral key does not verify for this
    /// recipient and context: the ciphertext's author is at fault.
    #[error("the ciphertext's proof of knowledge of its ephemeral key does not verify")]
    BadCiphertextProof,
    /// The AEAD does not open under the (proven) key: the ciphertext's author is at fault.
    #[error("the ciphertext does not decrypt under its key")]
    Undecryptable,
    /// The revealed Diffie-Hellman value's proof does not verify: the revealer is at fault.
    #[error("the revealed key's proof does not verify")]
    BadRevealProof,
    /// The plaintext is longer than the caller's bound.
    #[error("plaintext of {actual} bytes exceeds the bound {max}")]
    TooLong {
        /// Bound.
        max: usize,
        /// Length found.
        actual: usize,
    },
}

/// A secp256k1 public key that shares are encrypted to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifiableEncryptionPublicKey(AffinePoint);

impl VerifiableEncryptionPublicKey {
    /// Decodes a 33-byte compressed point, refusing the identity and non-canonical encodings.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(VerifiableEncryptionPublicKey(decode_non_identity(bytes)?))
    }

    /// The 33-byte encoding.
    pub fn to_bytes(&self) -> [u8; POINT_LEN] {
        encode(&self.0)
    }
}

impl fmt::Debug for VerifiableEncryptionPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VerifiableEncryptionPublicKey({})",
            hex::encode(self.to_bytes())
        )
    }
}

/// The matching secret key: wiped on drop, redacted in `Debug`.
pub struct VerifiableEncryptionSecretKey {
    secret: Scalar,
    public: VerifiableEncryptionPublicKey,
}

impl VerifiableEncryptionSecretKey {
    /// Draws a key from the RNG.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        loop {
            let d = Scalar::random(&mut *rng);
            if let Ok(k) = Self::from_scalar(d) {
                return k;
            }
        }
    }

    /// Reloads a key from [`Self::to_bytes`]; refuses zero and non-canonical scalars.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, DecodeError> {
        Self::from_scalar(Secp256k1::decode_scalar(bytes)?)
    }

    fn from_scalar(secret: Scalar) -> Result<Self, DecodeError> {
        if bool::from(secret.is_zero()) {
            return Err(DecodeError::ZeroScalar);
        }
        let public =
            VerifiableEncryptionPublicKey(Secp256k1::mul_generator_secret(&secret).to_affine());
        Ok(VerifiableEncryptionSecretKey { secret, public })
    }

    /// The secret scalar's 32-byte big-endian encoding, for an encrypted keystore.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(Secp256k1::encode_scalar(&self.secret))
    }

    /// The public key.
    pub fn public_key(&self) -> VerifiableEncryptionPublicKey {
        self.public
    }
}

impl Drop for VerifiableEncryptionSecretKey {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl fmt::Debug for VerifiableEncryptionSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiableEncryptionSecretKey")
            .field("public", &self.public)
            .field("secret", &format_args!("<redacted>"))
            .finish()
    }
}

/// A Fiat-Shamir proof `(c, s)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Proof {
    c: Scalar,
    s: Scalar,
}

impl Proof {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&Secp256k1::encode_scalar(&self.c));
        out.extend_from_slice(&Secp256k1::encode_scalar(&self.s));
    }

    fn read(bytes: &[u8]) -> Result<Self, DecodeError> {
        expect_len(bytes, PROOF_LEN)?;
        Ok(Proof {
            c: Secp256k1::decode_scalar(&bytes[..32])?,
            s: Secp256k1::decode_scalar(&bytes[32..])?,
        })
    }
}

/// A ciphertext: ephemeral point, its proof of knowledge, AEAD ciphertext with tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiableCiphertext {
    ephemeral: AffinePoint,
    proof: Proof,
    body: Vec<u8>,
}

impl VerifiableCiphertext {
    /// Bytes before the AEAD body.
    pub const HEADER_LEN: usize = POINT_LEN + PROOF_LEN;

    /// Length of the encoding of a ciphertext of `plaintext_len` bytes.
    pub const fn encoded_len(plaintext_len: usize) -> usize {
        Self::HEADER_LEN + plaintext_len + TAG_LEN
    }

    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::HEADER_LEN + self.body.len());
        out.extend_from_slice(&encode(&self.ephemeral));
        self.proof.write(&mut out);
        out.extend_from_slice(&self.body);
        out
    }

    /// Decodes [`Self::to_bytes`] of a plaintext of at most `max_plaintext_len` bytes. Checks
    /// the encodings only; the proof is checked by [`open`] and [`open_revealed`].
    pub fn from_bytes(
        bytes: &[u8],
        max_plaintext_len: usize,
    ) -> Result<Self, VerifiableEncryptionError> {
        if bytes.len() < Self::encoded_len(0) {
            return Err(DecodeError::Length {
                expected: Self::encoded_len(0),
                actual: bytes.len(),
            }
            .into());
        }
        let plaintext_len = bytes.len() - Self::encoded_len(0);
        if plaintext_len > max_plaintext_len {
            return Err(VerifiableEncryptionError::TooLong {
                max: max_plaintext_len,
                actual: plaintext_len,
            });
        }
        Ok(VerifiableCiphertext {
            ephemeral: decode_non_identity(&bytes[..POINT_LEN])?,
            proof: Proof::read(&bytes[POINT_LEN..Self::HEADER_LEN])?,
            body: bytes[Self::HEADER_LEN..].to_vec(),
        })
    }
}

/// A recipient's reveal of one ciphertext's Diffie-Hellman value `Z = d R`, with a
/// Chaum-Pedersen proof that `log_G D = log_R Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyReveal {
    shared: AffinePoint,
    proof: Proof,
}

impl KeyReveal {
    /// Canonical encoding: `Z` (33 bytes), `c`, `s`.
    pub fn to_bytes(&self) -> [u8; REVEAL_LEN] {
        let mut out = Vec::with_capacity(REVEAL_LEN);
        out.extend_from_slice(&encode(&self.shared));
        self.proof.write(&mut out);
        out.try_into().expect("fixed length")
    }

    /// Decodes [`Self::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        expect_len(bytes, REVEAL_LEN)?;
        Ok(KeyReveal {
            shared: decode_non_identity(&bytes[..POINT_LEN])?,
            proof: Proof::read(&bytes[POINT_LEN..])?,
        })
    }
}

/// Encrypts `plaintext` to `recipient`, bound to `aad`.
pub fn seal(
    recipient: &VerifiableEncryptionPublicKey,
    aad: &ShareAad,
    plaintext: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> VerifiableCiphertext {
    let aad = aad.to_bytes();
    let r = Zeroizing::new(nonzero_scalar(rng));
    let ephemeral = Secp256k1::mul_generator_secret(&r).to_affine();
    let proof = prove_ephemeral(&recipient.0, &ephemeral, &r, &aad, rng);
    let shared = (ProjectivePoint::from(recipient.0) * *r).to_affine();
    let key = aead_key(&recipient.0, &ephemeral, &shared, &aad);
    let body = ChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
        .encrypt(
            &Nonce::default(),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .expect("ChaCha20-Poly1305 encrypts any message below 2^38 bytes");
    VerifiableCiphertext {
        ephemeral,
        proof,
        body,
    }
}

/// Decrypts with the recipient's key, after checking the ephemeral key's proof.
pub fn open(
    key: &VerifiableEncryptionSecretKey,
    aad: &ShareAad,
    ct: &VerifiableCiphertext,
) -> Result<SecretBytes, VerifiableEncryptionError> {
    let aad = aad.to_bytes();
    check_ephemeral(&key.public.0, ct, &aad)?;
    let shared = (ProjectivePoint::from(ct.ephemeral) * key.secret).to_affine();
    decrypt(&key.public.0, ct, &shared, &aad)
}

/// Reveals the Diffie-Hellman value of `ct` with its proof, so that anyone can decrypt this one
/// ciphertext ([`open_revealed`]). Refuses ([`VerifiableEncryptionError::BadCiphertextProof`])
/// when the ciphertext's own proof fails: revealing `d R` for an `R` its sender cannot prove
/// knowledge of could decrypt someone else's ciphertext (module docs).
pub fn reveal_key(
    key: &VerifiableEncryptionSecretKey,
    aad: &ShareAad,
    ct: &VerifiableCiphertext,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<KeyReveal, VerifiableEncryptionError> {
    let aad = aad.to_bytes();
    check_ephemeral(&key.public.0, ct, &aad)?;
    let r_point = ProjectivePoint::from(ct.ephemeral);
    let shared = (r_point * key.secret).to_affine();
    let w = Zeroizing::new(nonzero_scalar(rng));
    let a1 = Secp256k1::mul_generator_secret(&w).to_affine();
    let a2 = (r_point * *w).to_affine();
    let c = dleq_challenge(&key.public.0, ct, &shared, &a1, &a2, &aad);
    let s = *w + c * key.secret;
    Ok(KeyReveal {
        shared,
        proof: Proof { c, s },
    })
}

/// Decrypts `ct` with a recipient's reveal, checking the ciphertext's proof first (a failure
/// there is the sender's fault, whatever the reveal), then the reveal's proof (the revealer's
/// fault), then the AEAD (the sender's fault).
pub fn open_revealed(
    recipient: &VerifiableEncryptionPublicKey,
    aad: &ShareAad,
    ct: &VerifiableCiphertext,
    reveal: &KeyReveal,
) -> Result<SecretBytes, VerifiableEncryptionError> {
    let aad = aad.to_bytes();
    check_ephemeral(&recipient.0, ct, &aad)?;
    let KeyReveal { shared, proof } = reveal;
    // A1 = s G - c D, A2 = s R - c Z; the challenge must be the hash of them.
    let d = ProjectivePoint::from(recipient.0);
    // Public scalar: the proof's response, read from the reveal.
    let a1 = (Secp256k1::mul_generator_public_vartime(&proof.s) - d * proof.c).to_affine();
    let a2 = (ProjectivePoint::from(ct.ephemeral) * proof.s
        - ProjectivePoint::from(*shared) * proof.c)
        .to_affine();
    if dleq_challenge(&recipient.0, ct, shared, &a1, &a2, &aad) != proof.c {
        return Err(VerifiableEncryptionError::BadRevealProof);
    }
    decrypt(&recipient.0, ct, shared, &aad)
}

/// Checks only the ciphertext's proof of knowledge of its ephemeral key (public: anyone can).
pub fn check_ciphertext(
    recipient: &VerifiableEncryptionPublicKey,
    aad: &ShareAad,
    ct: &VerifiableCiphertext,
) -> Result<(), VerifiableEncryptionError> {
    check_ephemeral(&recipient.0, ct, &aad.to_bytes())
}

fn decrypt(
    recipient: &AffinePoint,
    ct: &VerifiableCiphertext,
    shared: &AffinePoint,
    aad: &[u8],
) -> Result<SecretBytes, VerifiableEncryptionError> {
    let key = aead_key(recipient, &ct.ephemeral, shared, aad);
    ChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
        .decrypt(&Nonce::default(), Payload { msg: &ct.body, aad })
        .map(SecretBytes::new)
        .map_err(|_| VerifiableEncryptionError::Undecryptable)
}

fn prove_ephemeral(
    recipient: &AffinePoint,
    ephemeral: &AffinePoint,
    r: &Scalar,
    aad: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Proof {
    let w = Zeroizing::new(nonzero_scalar(rng));
    let a = Secp256k1::mul_generator_secret(&w).to_affine();
    let c = pok_challenge(recipient, ephemeral, &a, aad);
    Proof { c, s: *w + c * r }
}

fn check_ephemeral(
    recipient: &AffinePoint,
    ct: &VerifiableCiphertext,
    aad: &[u8],
) -> Result<(), VerifiableEncryptionError> {
    let Proof { c, s } = ct.proof;
    // Public scalar: the proof's response, read from the ciphertext.
    let a = (Secp256k1::mul_generator_public_vartime(&s) - ProjectivePoint::from(ct.ephemeral) * c)
        .to_affine();
    if pok_challenge(recipient, &ct.ephemeral, &a, aad) == c {
        Ok(())
    } else {
        Err(VerifiableEncryptionError::BadCiphertextProof)
    }
}

fn pok_challenge(
    recipient: &AffinePoint,
    ephemeral: &AffinePoint,
    a: &AffinePoint,
    aad: &[u8],
) -> Scalar {
    challenge(
        TAG_POK,
        &[&encode(recipient), &encode(ephemeral), &encode(a), aad],
    )
}

fn dleq_challenge(
    recipient: &AffinePoint,
    ct: &VerifiableCiphertext,
    shared: &AffinePoint,
    a1: &AffinePoint,
    a2: &AffinePoint,
    aad: &[u8],
) -> Scalar {
    challenge(
        TAG_DLEQ,
        &[
            &encode(recipient),
            &encode(&ct.ephemeral),
            &encode(shared),
            &encode(a1),
            &encode(a2),
            aad,
            &ct.to_bytes(),
        ],
    )
}

fn challenge(tag: &str, parts: &[&[u8]]) -> Scalar {
    let digest = tagged_hash(tag, parts);
    <Scalar as Reduce<U256>>::reduce_bytes(&digest.into())
}

fn aead_key(
    recipient: &AffinePoint,
    ephemeral: &AffinePoint,
    shared: &AffinePoint,
    aad: &[u8],
) -> Zeroizing<[u8; 32]> {
    let z = Zeroizing::new(encode(shared));
    Zeroizing::new(tagged_hash(
        TAG_KEY,
        &[&encode(recipient), &encode(ephemeral), z.as_ref(), aad],
    ))
}

fn nonzero_scalar(rng: &mut (impl RngCore + CryptoRng)) -> Scalar {
    loop {
        let s = Scalar::random(&mut *rng);
        if !bool::from(s.is_zero()) {
            return s;
        }
    }
}

fn encode(p: &AffinePoint) -> [u8; POINT_LEN] {
    let mut out = Vec::with_capacity(POINT_LEN);
    Secp256k1::encode_point(p, &mut out);
    out.try_into().expect("33-byte point")
}

fn decode_non_identity(bytes: &[u8]) -> Result<AffinePoint, DecodeError> {
    let p = Secp256k1::decode_point(bytes)?;
    if bool::from(group::prime::PrimeCurveAffine::is_identity(&p)) {
        return Err(DecodeError::Identity);
    }
    Ok(p)
}

fn expect_len(bytes: &[u8], expected: usize) -> Result<(), DecodeError> {
    if bytes.len() == expected {
        Ok(())
    } else {
        Err(DecodeError::Length {
            expected,
            actual: bytes.len(),
        })
    }
}
