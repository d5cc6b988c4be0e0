//! Encryption of secret shares to one recipient with HPKE (RFC 9180).
//!
//! Suite: base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305. Every
//! ciphertext is bound to its protocol context by a [`ShareAad`]: the same canonical bytes go into
//! the HPKE `info` string (so the key schedule depends on them) and into the AEAD associated data,
//! so a ciphertext moved to another session, dealer, recipient or commitment fails to open.
//!
//! Sealing draws exactly 32 bytes from the caller's RNG, so a protocol state machine driven by a
//! seeded RNG replays to byte-identical ciphertexts.

use core::fmt;

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, HpkeError, Kem as _, OpModeR, OpModeS, Serializable};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{CryptoError, DecodeError};
use crate::secret::SecretBytes;

type Kem = X25519HkdfSha256;
type Kdf = HkdfSha256;
type Aead = ChaCha20Poly1305;
type HpkePrivateKey = <Kem as hpke::Kem>::PrivateKey;
type HpkePublicKey = <Kem as hpke::Kem>::PublicKey;
type HpkeEncappedKey = <Kem as hpke::Kem>::EncappedKey;

/// Length of an X25519 public key and of the HPKE encapsulated key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of the Poly1305 tag appended to every AEAD ciphertext.
pub const TAG_LEN: usize = 16;
/// Default bound on share plaintexts, for [`Ciphertext::from_bytes`] callers without a better one.
pub const MAX_SHARE_PLAINTEXT_LEN: usize = 64;
/// Domain-separation prefix of the [`ShareAad`] encoding.
pub const SHARE_AAD_PREFIX: &[u8; 18] = b"keyquorum-share-v1";
/// Length of [`ShareAad::to_bytes`].
pub const SHARE_AAD_LEN: usize = SHARE_AAD_PREFIX.len() + 32 + 4 + 4 + 32;

/// The canonical u-coordinates of the points of order 1, 2, 4 and 8 (little-endian).
///
/// A clamped X25519 scalar is a multiple of the cofactor 8, so Diffie-Hellman with any of these
/// yields the all-zero shared secret. Non-canonical encodings (u >= p, top bit set) are rejected
/// before this list is consulted, so their aliases (p, p + 1) need not be listed.
const LOW_ORDER_POINTS: [[u8; 32]; 5] = [
    // u = 0: the point of order 2 (and the x-only image of the identity).
    [0; 32],
    // u = 1: order 4.
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    // u = p - 1: order 4 (on the twist).
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // The two u-coordinates of the order-8 points: the roots of x(2P) = 1.
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ],
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef,
        0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f,
        0x11, 0x57,
    ],
];

/// An X25519 public key to which shares are encrypted.
///
/// Always a canonical encoding of a point that is not of low order (see [`Self::from_bytes`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncryptionPublicKey([u8; PUBLIC_KEY_LEN]);

impl EncryptionPublicKey {
    /// Decodes a public key.
    ///
    /// Rejects a wrong length, non-canonical encodings (top bit set, or u >= 2^255 - 19) so that
    /// every key has exactly one encoding, and the low-order points, for which X25519 yields an
    /// all-zero shared secret (reported as [`DecodeError::Identity`]: they become the identity
    /// once the cofactor is cleared).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; PUBLIC_KEY_LEN] = bytes.try_into().map_err(|_| DecodeError::Length {
            expected: PUBLIC_KEY_LEN,
            actual: bytes.len(),
        })?;
        if !is_canonical_u(&arr) {
            return Err(DecodeError::NonCanonicalPoint.into());
        }
        if LOW_ORDER_POINTS.contains(&arr) {
            return Err(DecodeError::Identity.into());
        }
        Ok(EncryptionPublicKey(arr))
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.0
    }

    /// Borrows the 32-byte encoding.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.0
    }

    fn to_hpke(self) -> HpkePublicKey {
        // Infallible: the length is right and X25519 accepts every 32-byte string.
        HpkePublicKey::from_bytes(&self.0).expect("32-byte X25519 public key")
    }
}

impl fmt::Debug for EncryptionPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionPublicKey({})", hex::encode(self.0))
    }
}

/// Whether `u` (little-endian) is below p = 2^255 - 19 with the unused top bit clear.
fn is_canonical_u(u: &[u8; 32]) -> bool {
    if u[31] & 0x80 != 0 {
        return false;
    }
    // With the top bit clear, u >= p exactly when u = 2^255 - 19 + k for k in 0..19, i.e. the
    // encoding is ff..ff7f with a low byte of at least 0xed.
    !(u[31] == 0x7f && u[1..31].iter().all(|&b| b == 0xff) && u[0] >= 0xed)
}

/// An X25519 secret key for receiving encrypted shares.
///
/// Stored as the raw 32-byte HPKE private key (unclamped, as RFC 9180 serializes it), wiped on
/// drop, and redacted in `Debug`.
pub struct EncryptionSecretKey {
    secret: [u8; 32],
    public: EncryptionPublicKey,
}

impl EncryptionSecretKey {
    /// Generates a key from 32 bytes of the RNG, via HPKE `DeriveKeyPair` (as HPKE's own
    /// `GenerateKeyPair` does), so a seeded RNG gives a reproducible key.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut ikm = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(ikm.as_mut());
        Self::from_seed(&ikm)
    }

    /// Derives a key deterministically from a 32-byte seed with HPKE `DeriveKeyPair`
    /// (RFC 9180 section 7.1.3).
    ///
    /// This is not the inverse of [`Self::to_bytes`]: use [`Self::from_bytes`] to reload a key.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let (sk, _) = Kem::derive_keypair(seed);
        Self::from_hpke(&sk)
    }

    /// Rebuilds a key from the raw private key bytes returned by [`Self::to_bytes`].
    ///
    /// Every 32-byte string is a valid X25519 private key (it is clamped when used).
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self::from_hpke(&Self::hpke_key(bytes))
    }

    /// The raw private key bytes (RFC 9180 `SerializePrivateKey`), for an encrypted keystore.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret)
    }

    /// The matching public key.
    pub fn public_key(&self) -> EncryptionPublicKey {
        self.public
    }

    fn from_hpke(sk: &HpkePrivateKey) -> Self {
        let mut secret = [0u8; 32];
        // Write straight into our buffer rather than through a temporary array we would then
        // have to wipe.
        sk.write_exact(&mut secret);
        let mut public = [0u8; PUBLIC_KEY_LEN];
        Kem::sk_to_pk(sk).write_exact(&mut public);
        // A clamped scalar times the base point lies in the prime-order subgroup and is never
        // the identity, so this public key is always valid; keep the invariant explicit anyway.
        debug_assert!(EncryptionPublicKey::from_bytes(&public).is_ok());
        EncryptionSecretKey {
            secret,
            public: EncryptionPublicKey(public),
        }
    }

    fn hpke_key(bytes: &[u8; 32]) -> HpkePrivateKey {
        // Infallible: the length is right and X25519 private keys need no validation.
        HpkePrivateKey::from_bytes(bytes).expect("32-byte X25519 private key")
    }
}

impl Drop for EncryptionSecretKey {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl fmt::Debug for EncryptionSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionSecretKey")
            .field("public", &self.public)
            .field("secret", &format_args!("<redacted>"))
            .finish()
    }
}

/// The context a share ciphertext is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShareAad {
    /// The DKG session.
    pub session_id: [u8; 32],
    /// Index of the dealer that encrypted the share.
    pub dealer: u32,
    /// Index of the recipient.
    pub recipient: u32,
    /// Hash of the dealer's commitment the share must verify against.
    pub commitment_hash: [u8; 32],
}

impl ShareAad {
    /// Canonical encoding: `"keyquorum-share-v1" || session_id || dealer (u32 BE) ||
    /// recipient (u32 BE) || commitment_hash`.
    ///
    /// Every field has a fixed width, so distinct contexts never share an encoding.
    pub fn to_bytes(&self) -> [u8; SHARE_AAD_LEN] {
        let mut out = [0u8; SHARE_AAD_LEN];
        let parts: [&[u8]; 5] = [
            SHARE_AAD_PREFIX,
            &self.session_id,
            &self.dealer.to_be_bytes(),
            &self.recipient.to_be_bytes(),
            &self.commitment_hash,
        ];
        let mut pos = 0;
        for part in parts {
            out[pos..pos + part.len()].copy_from_slice(part);
            pos += part.len();
        }
        debug_assert_eq!(pos, SHARE_AAD_LEN);
        out
    }
}

/// An encrypted share: the HPKE encapsulated key followed by the AEAD ciphertext and tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ciphertext {
    enc: [u8; PUBLIC_KEY_LEN],
    /// AEAD ciphertext with the tag appended; at least [`TAG_LEN`] bytes.
    ct: Vec<u8>,
}

impl Ciphertext {
    /// Shortest valid encoding: an encapsulated key and the tag of an empty plaintext.
    pub const MIN_LEN: usize = PUBLIC_KEY_LEN + TAG_LEN;

    /// Encoded length for a plaintext of `plaintext_len` bytes.
    pub const fn encoded_len(plaintext_len: usize) -> usize {
        Self::MIN_LEN + plaintext_len
    }

    /// `enc || ct || tag`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PUBLIC_KEY_LEN + self.ct.len());
        out.extend_from_slice(&self.enc);
        out.extend_from_slice(&self.ct);
        out
    }

    /// Decodes a ciphertext whose plaintext is at most `max_plaintext_len` bytes (for shares,
    /// typically [`MAX_SHARE_PLAINTEXT_LEN`]); the bound is checked before anything is copied.
    ///
    /// Input shorter than [`Self::MIN_LEN`] is reported as [`DecodeError::Length`] with that
    /// minimum as `expected`.
    pub fn from_bytes(bytes: &[u8], max_plaintext_len: usize) -> Result<Self, CryptoError> {
        let max = Self::encoded_len(max_plaintext_len);
        if bytes.len() > max {
            return Err(DecodeError::TooLong {
                what: "share ciphertext",
                max,
                actual: bytes.len(),
            }
            .into());
        }
        if bytes.len() < Self::MIN_LEN {
            return Err(DecodeError::Length {
                expected: Self::MIN_LEN,
                actual: bytes.len(),
            }
            .into());
        }
        let (enc, ct) = bytes.split_at(PUBLIC_KEY_LEN);
        Ok(Ciphertext {
            enc: enc.try_into().expect("split at PUBLIC_KEY_LEN"),
            ct: ct.to_vec(),
        })
    }

    /// Length of the plaintext this ciphertext decrypts to.
    pub fn plaintext_len(&self) -> usize {
        self.ct.len() - TAG_LEN
    }
}

/// Adapts the crate's rand_core 0.6 ChaCha20 RNG to the rand_core 0.9 traits hpke 0.13 expects.
struct HpkeRng(ChaCha20Rng);

impl hpke::rand_core::RngCore for HpkeRng {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.0.fill_bytes(dst)
    }
}

impl hpke::rand_core::CryptoRng for HpkeRng {}

/// Encrypts `plaintext` to `recipient`, bound to `aad`.
///
/// Draws exactly 32 bytes from `rng` (a seed for the ephemeral key's RNG), independent of how
/// much randomness hpke itself consumes, so replays stay aligned across hpke versions.
///
/// # Panics
///
/// Only if ChaCha20-Poly1305 refuses the plaintext, i.e. beyond its 256 GiB limit.
pub fn seal(
    recipient: &EncryptionPublicKey,
    aad: &ShareAad,
    plaintext: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Ciphertext {
    let mut seed = <ChaCha20Rng as SeedableRng>::Seed::default();
    rng.fill_bytes(&mut seed);
    let mut hpke_rng = HpkeRng(ChaCha20Rng::from_seed(seed));
    seed.zeroize();

    let context = aad.to_bytes();
    let (encapped, ct) = hpke::single_shot_seal::<Aead, Kdf, Kem, _>(
        &OpModeS::Base,
        &recipient.to_hpke(),
        &context,
        plaintext,
        &context,
        &mut hpke_rng,
    )
    // Encapsulation cannot fail: `EncryptionPublicKey` excludes the low-order points, the only
    // inputs giving an all-zero DH result. Sealing fails only past the AEAD length limit.
    .expect("HPKE seal to a validated public key");

    let mut enc = [0u8; PUBLIC_KEY_LEN];
    encapped.write_exact(&mut enc);
    Ciphertext { enc, ct }
}

/// Decrypts a share sealed to `recipient` under exactly the context `aad`.
///
/// Any other key, any changed context field, and any modified ciphertext give
/// [`CryptoError::Encryption`].
pub fn open(
    recipient: &EncryptionSecretKey,
    aad: &ShareAad,
    ciphertext: &Ciphertext,
) -> Result<SecretBytes, CryptoError> {
    let encapped = HpkeEncappedKey::from_bytes(&ciphertext.enc).map_err(hpke_error)?;
    let sk = EncryptionSecretKey::hpke_key(&recipient.secret);
    let context = aad.to_bytes();
    let plaintext = hpke::single_shot_open::<Aead, Kdf, Kem>(
        &OpModeR::Base,
        &sk,
        &encapped,
        &context,
        &ciphertext.ct,
        &context,
    )
    .map_err(hpke_error)?;
    Ok(SecretBytes::new(plaintext))
}

fn hpke_error(e: HpkeError) -> CryptoError {
    CryptoError::Encryption(match e {
        HpkeError::DecapError => "invalid encapsulated key",
        HpkeError::OpenError => "decryption failed: wrong key, context or ciphertext",
        _ => "HPKE error",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    // proptest's prelude exports another `RngCore`; name the one our RNGs implement.
    use rand_core::RngCore;

    fn rng(seed: u64) -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(seed)
    }

    fn aad() -> ShareAad {
        ShareAad {
            session_id: [7; 32],
            dealer: 3,
            recipient: 5,
            commitment_hash: [9; 32],
        }
    }

    const SHARE: &[u8] = &[0x42; 32];

    fn sealed() -> (EncryptionSecretKey, Ciphertext) {
        let mut r = rng(1);
        let sk = EncryptionSecretKey::generate(&mut r);
        let ct = seal(&sk.public_key(), &aad(), SHARE, &mut r);
        (sk, ct)
    }

    fn assert_encryption_error(res: Result<SecretBytes, CryptoError>) {
        assert!(
            matches!(res, Err(CryptoError::Encryption(_))),
            "expected an encryption error, got {res:?}"
        );
    }

    #[test]
    fn round_trip() {
        let (sk, ct) = sealed();
        assert_eq!(ct.plaintext_len(), SHARE.len());
        let bytes = ct.to_bytes();
        assert_eq!(bytes.len(), Ciphertext::encoded_len(SHARE.len()));
        let decoded = Ciphertext::from_bytes(&bytes, MAX_SHARE_PLAINTEXT_LEN).unwrap();
        assert_eq!(decoded, ct);
        assert_eq!(open(&sk, &aad(), &decoded).unwrap().expose(), SHARE);
    }

    #[test]
    fn round_trip_empty_and_max_plaintext() {
        let mut r = rng(2);
        let sk = EncryptionSecretKey::generate(&mut r);
        for pt in [&[][..], &[0xAA; MAX_SHARE_PLAINTEXT_LEN][..]] {
            let ct = seal(&sk.public_key(), &aad(), pt, &mut r);
            let ct = Ciphertext::from_bytes(&ct.to_bytes(), MAX_SHARE_PLAINTEXT_LEN).unwrap();
            assert_eq!(open(&sk, &aad(), &ct).unwrap().expose(), pt);
        }
    }

    #[test]
    fn sealing_is_deterministic_and_uses_32_bytes_of_rng() {
        let pk = EncryptionSecretKey::from_seed(&[1; 32]).public_key();
        let mut a = rng(3);
        let mut b = rng(3);
        assert_eq!(
            seal(&pk, &aad(), SHARE, &mut a),
            seal(&pk, &aad(), SHARE, &mut b)
        );
        // The caller's RNG advanced by exactly 32 bytes.
        let mut c = rng(3);
        c.fill_bytes(&mut [0u8; 32]);
        assert_eq!(a.next_u64(), c.next_u64());
        // Fresh randomness gives a fresh ephemeral key.
        assert_ne!(
            seal(&pk, &aad(), SHARE, &mut rng(4)).enc,
            seal(&pk, &aad(), SHARE, &mut rng(5)).enc
        );
    }

    #[test]
    fn wrong_recipient_key_fails() {
        let (_, ct) = sealed();
        let other = EncryptionSecretKey::generate(&mut rng(99));
        assert_encryption_error(open(&other, &aad(), &ct));
    }

    #[test]
    fn every_context_field_is_bound() {
        let (sk, ct) = sealed();
        let base = aad();
        let mut variants = Vec::new();
        let mut a = base;
        a.session_id[31] ^= 1;
        variants.push(a);
        let mut a = base;
        a.dealer += 1;
        variants.push(a);
        let mut a = base;
        a.recipient += 1;
        variants.push(a);
        let mut a = base;
        a.commitment_hash[0] ^= 0x80;
        variants.push(a);
        // Swapping dealer and recipient must not alias either.
        let mut a = base;
        core::mem::swap(&mut a.dealer, &mut a.recipient);
        variants.push(a);
        for v in variants {
            assert_encryption_error(open(&sk, &v, &ct));
        }
        assert!(open(&sk, &base, &ct).is_ok());
    }

    #[test]
    fn aad_encoding_layout() {
        let bytes = aad().to_bytes();
        assert_eq!(&bytes[..18], b"keyquorum-share-v1");
        assert_eq!(&bytes[18..50], &[7; 32]);
        assert_eq!(&bytes[50..54], &3u32.to_be_bytes());
        assert_eq!(&bytes[54..58], &5u32.to_be_bytes());
        assert_eq!(&bytes[58..], &[9; 32]);
    }

    #[test]
    fn ciphertext_length_bounds() {
        let (_, ct) = sealed();
        let bytes = ct.to_bytes();
        // Tighter bound than the plaintext: rejected before copying.
        assert!(matches!(
            Ciphertext::from_bytes(&bytes, SHARE.len() - 1),
            Err(CryptoError::Decode(DecodeError::TooLong { .. }))
        ));
        assert!(Ciphertext::from_bytes(&bytes, SHARE.len()).is_ok());
        for len in [0, 1, PUBLIC_KEY_LEN, Ciphertext::MIN_LEN - 1] {
            assert!(matches!(
                Ciphertext::from_bytes(&bytes[..len], MAX_SHARE_PLAINTEXT_LEN),
                Err(CryptoError::Decode(DecodeError::Length { .. }))
            ));
        }
    }

    #[test]
    fn truncated_and_extended_ciphertexts_fail() {
        let (sk, ct) = sealed();
        let bytes = ct.to_bytes();
        for len in Ciphertext::MIN_LEN..bytes.len() {
            let short = Ciphertext::from_bytes(&bytes[..len], MAX_SHARE_PLAINTEXT_LEN).unwrap();
            assert_encryption_error(open(&sk, &aad(), &short));
        }
        let mut long = bytes.clone();
        long.push(0);
        let long = Ciphertext::from_bytes(&long, MAX_SHARE_PLAINTEXT_LEN).unwrap();
        assert_encryption_error(open(&sk, &aad(), &long));
    }

    #[test]
    fn every_bit_flip_fails() {
        let (sk, ct) = sealed();
        let bytes = ct.to_bytes();
        for i in 0..bytes.len() * 8 {
            let mut m = bytes.clone();
            m[i / 8] ^= 1 << (i % 8);
            let m = Ciphertext::from_bytes(&m, MAX_SHARE_PLAINTEXT_LEN).unwrap();
            assert_encryption_error(open(&sk, &aad(), &m));
        }
    }

    #[test]
    fn low_order_encapsulated_key_fails_cleanly() {
        let (sk, ct) = sealed();
        for point in LOW_ORDER_POINTS {
            let mut bytes = ct.to_bytes();
            bytes[..32].copy_from_slice(&point);
            let m = Ciphertext::from_bytes(&bytes, MAX_SHARE_PLAINTEXT_LEN).unwrap();
            assert_eq!(
                open(&sk, &aad(), &m),
                Err(CryptoError::Encryption("invalid encapsulated key"))
            );
        }
    }

    #[test]
    fn public_key_validation() {
        let pk = EncryptionSecretKey::generate(&mut rng(6)).public_key();
        assert_eq!(EncryptionPublicKey::from_bytes(pk.as_bytes()), Ok(pk));
        assert!(matches!(
            EncryptionPublicKey::from_bytes(&[1; 31]),
            Err(CryptoError::Decode(DecodeError::Length {
                expected: 32,
                actual: 31
            }))
        ));
        assert!(EncryptionPublicKey::from_bytes(&[1; 33]).is_err());
        for point in LOW_ORDER_POINTS {
            assert_eq!(
                EncryptionPublicKey::from_bytes(&point),
                Err(DecodeError::Identity.into())
            );
        }
        // Non-canonical: the top bit, and u in [p, 2^255), which includes the aliases p and p + 1
        // of the low-order points 0 and 1.
        let mut high = pk.to_bytes();
        high[31] |= 0x80;
        let mut p = [0xff; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        let mut p_plus_1 = p;
        p_plus_1[0] = 0xee;
        let max = {
            let mut m = [0xff; 32];
            m[31] = 0x7f;
            m
        };
        for bad in [high, p, p_plus_1, max] {
            assert_eq!(
                EncryptionPublicKey::from_bytes(&bad),
                Err(DecodeError::NonCanonicalPoint.into())
            );
        }
        // p - 1 is canonical (and rejected as low order above); p - 2 is an ordinary point.
        let mut p_minus_2 = p;
        p_minus_2[0] = 0xeb;
        assert!(EncryptionPublicKey::from_bytes(&p_minus_2).is_ok());
    }

    /// Cross-checks the hard-coded list against hpke: DH with each listed point (and its
    /// top-bit alias, which X25519 masks) is refused for giving an all-zero shared secret, while
    /// an ordinary point is accepted.
    #[test]
    fn low_order_points_give_zero_shared_secret() {
        let mut r = HpkeRng(rng(7));
        let try_seal = |u: &[u8; 32], r: &mut HpkeRng| {
            let pk = HpkePublicKey::from_bytes(u).unwrap();
            hpke::single_shot_seal::<Aead, Kdf, Kem, _>(&OpModeS::Base, &pk, b"", b"", b"", r)
                .map(|_| ())
        };
        for point in LOW_ORDER_POINTS {
            assert_eq!(try_seal(&point, &mut r), Err(HpkeError::EncapError));
            let mut alias = point;
            alias[31] |= 0x80;
            assert_eq!(try_seal(&alias, &mut r), Err(HpkeError::EncapError));
        }
        let good = EncryptionSecretKey::from_seed(&[3; 32]).public_key();
        assert_eq!(try_seal(good.as_bytes(), &mut r), Ok(()));
    }

    #[test]
    fn secret_key_serialization() {
        let sk = EncryptionSecretKey::from_seed(&[8; 32]);
        let bytes = sk.to_bytes();
        let back = EncryptionSecretKey::from_bytes(&bytes);
        assert_eq!(back.public_key(), sk.public_key());
        assert_eq!(*back.to_bytes(), *bytes);
        // from_seed runs DeriveKeyPair; it must not be mistaken for a raw-key loader.
        assert_ne!(
            EncryptionSecretKey::from_bytes(&[8; 32]).public_key(),
            sk.public_key()
        );
        // generate() is from_seed() of 32 RNG bytes.
        let mut seed = [0u8; 32];
        rng(10).fill_bytes(&mut seed);
        assert_eq!(
            EncryptionSecretKey::generate(&mut rng(10)).public_key(),
            EncryptionSecretKey::from_seed(&seed).public_key()
        );
    }

    #[test]
    fn secret_key_debug_is_redacted() {
        let sk = EncryptionSecretKey::from_seed(&[0x5a; 32]);
        let text = format!("{sk:?}");
        assert!(text.contains("<redacted>"));
        let secret = sk.to_bytes();
        let hex = hex::encode(&secret[..]);
        assert!(!text.contains(&hex));
        assert!(!text.contains(&hex[..16]));
        assert!(!text.contains(&format!("{:?}", &secret[..4])));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Random truncations, extensions and bit flips never panic and never open.
        #[test]
        fn mutated_ciphertexts_are_rejected(
            kind in 0u8..3,
            pos in any::<prop::sample::Index>(),
            bit in 0u8..8,
            extra in prop::collection::vec(any::<u8>(), 1..48),
        ) {
            let (sk, ct) = sealed();
            let mut bytes = ct.to_bytes();
            match kind {
                0 => bytes.truncate(pos.index(bytes.len())),
                1 => bytes.extend_from_slice(&extra),
                _ => {
                    let i = pos.index(bytes.len());
                    bytes[i] ^= 1 << bit;
                }
            }
            match Ciphertext::from_bytes(&bytes, MAX_SHARE_PLAINTEXT_LEN) {
                Err(e) => prop_assert!(matches!(e, CryptoError::Decode(_))),
                Ok(m) => prop_assert!(matches!(
                    open(&sk, &aad(), &m),
                    Err(CryptoError::Encryption(_))
                )),
            }
        }
    }
}
