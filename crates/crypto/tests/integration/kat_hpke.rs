//! RFC 9180 Appendix A.2.1: mode_base, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//! ChaCha20Poly1305 (kem_id 32, kdf_id 1, aead_id 3).
//!
//! Values are from the RFC text; they match `test-vectors-5f503c5.json` shipped with hpke 0.13.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use keyquorum_crypto::encrypt::EncryptionSecretKey;
use sha2::{Digest, Sha256};

type Kem = X25519HkdfSha256;
type Kdf = HkdfSha256;
type Aead = ChaCha20Poly1305;

const INFO: &str = "4f6465206f6e2061204772656369616e2055726e";
const IKM_E: &str = "909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b";
const PK_EM: &str = "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a";
const SK_EM: &str = "f4ec9b33b792c372c1d2c2063507b684ef925b8c75a42dbcbf57d63ccd381600";
const IKM_R: &str = "1ac01f181fdf9f352797655161c58b75c656a6cc2716dcb66372da835542e1df";
const PK_RM: &str = "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a";
const SK_RM: &str = "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb";
const ENC: &str = "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a";
const SHARED_SECRET: &str = "0bbe78490412b4bbea4812666f7916932b828bba79942424abb65244930d69a7";
const KEY: &str = "ad2744de8e17f4ebba575b3f5f5a8fa1f69c2a07f6e7500bc60ca6e3e3ec1c91";
const BASE_NONCE: &str = "5c4d98150661b848853b547f";

/// Sequence numbers 0 and 1: (aad, nonce, ct); pt is the same for both.
const PT: &str = "4265617574792069732074727574682c20747275746820626561757479";
const ENCRYPTIONS: [(&str, &str, &str); 2] = [
    (
        "436f756e742d30",
        "5c4d98150661b848853b547f",
        "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28",
    ),
    (
        "436f756e742d31",
        "5c4d98150661b848853b547e",
        "6b53c051e4199c518de79594e1c4ab18b96f081549d45ce015be002090bb119e85285337cc95ba5f59992dc98c",
    ),
];

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn key_pair(sk: &str) -> <Kem as hpke::Kem>::PrivateKey {
    <Kem as hpke::Kem>::PrivateKey::from_bytes(&h(sk)).unwrap()
}

/// Hands out fixed bytes and insists they are consumed exactly, so the test proves hpke's
/// `GenerateKeyPair` is `DeriveKeyPair` of 32 RNG bytes and can be fed the vector's ikmE.
struct FixedRng {
    bytes: Vec<u8>,
    pos: usize,
}

impl FixedRng {
    fn exhausted(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

impl hpke::rand_core::RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        let end = self.pos + dst.len();
        assert!(
            end <= self.bytes.len(),
            "hpke drew more randomness than ikmE"
        );
        dst.copy_from_slice(&self.bytes[self.pos..end]);
        self.pos = end;
    }
}

impl hpke::rand_core::CryptoRng for FixedRng {}

#[test]
fn derive_keypair_matches_vector() {
    for (ikm, sk, pk) in [(IKM_R, SK_RM, PK_RM), (IKM_E, SK_EM, PK_EM)] {
        let (sk_x, pk_x) = Kem::derive_keypair(&h(ikm));
        assert_eq!(sk_x.to_bytes().as_slice(), h(sk));
        assert_eq!(pk_x.to_bytes().as_slice(), h(pk));
    }
}

#[test]
fn encryption_secret_key_from_seed_is_derive_keypair() {
    let seed: [u8; 32] = h(IKM_R).try_into().unwrap();
    let sk = EncryptionSecretKey::from_seed(&seed);
    assert_eq!(sk.to_bytes().as_slice(), h(SK_RM));
    assert_eq!(sk.public_key().as_bytes().as_slice(), h(PK_RM));
    let raw: [u8; 32] = h(SK_RM).try_into().unwrap();
    assert_eq!(
        EncryptionSecretKey::from_bytes(&raw)
            .public_key()
            .as_bytes()
            .as_slice(),
        h(PK_RM)
    );
}

/// `Kem::decap` is public but `#[doc(hidden)]` in hpke 0.13; it is the only way to observe the
/// KEM shared secret.
#[test]
fn decap_gives_shared_secret() {
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&h(ENC)).unwrap();
    let ss = Kem::decap(&key_pair(SK_RM), None, &enc).unwrap();
    assert_eq!(ss.0.as_slice(), h(SHARED_SECRET));
}

// An independent RFC 9180 section 5.1 key schedule over sha2, so that `key` and `base_nonce`
// (which hpke keeps private) are checked against the vector too.

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
    }
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

const SUITE_ID: &[u8] = &[b'H', b'P', b'K', b'E', 0x00, 0x20, 0x00, 0x01, 0x00, 0x03];

fn labeled_extract(salt: &[u8], label: &[u8], ikm: &[u8]) -> [u8; 32] {
    hmac_sha256(salt, &[b"HPKE-v1", SUITE_ID, label, ikm])
}

fn labeled_expand(prk: &[u8], label: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let l = (len as u16).to_be_bytes();
    let mut out = Vec::new();
    let mut t: Vec<u8> = Vec::new();
    let mut i = 1u8;
    while out.len() < len {
        t = hmac_sha256(prk, &[&t, &l, b"HPKE-v1", SUITE_ID, label, info, &[i]]).to_vec();
        out.extend_from_slice(&t);
        i += 1;
    }
    out.truncate(len);
    out
}

#[test]
fn key_schedule_matches_vector() {
    let psk_id_hash = labeled_extract(b"", b"psk_id_hash", b"");
    let info_hash = labeled_extract(b"", b"info_hash", &h(INFO));
    let context = [&[0u8][..], &psk_id_hash, &info_hash].concat();
    let secret = labeled_extract(&h(SHARED_SECRET), b"secret", b"");
    assert_eq!(labeled_expand(&secret, b"key", &context, 32), h(KEY));
    let base_nonce = labeled_expand(&secret, b"base_nonce", &context, 12);
    assert_eq!(base_nonce, h(BASE_NONCE));
    // nonce = base_nonce XOR I2OSP(seq, Nn)
    for (seq, (_, nonce, _)) in ENCRYPTIONS.iter().enumerate() {
        let mut n = base_nonce.clone();
        n[11] ^= seq as u8;
        assert_eq!(n, h(nonce));
    }
}

#[test]
fn receiver_opens_vector_ciphertexts() {
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&h(ENC)).unwrap();
    let mut ctx =
        hpke::setup_receiver::<Aead, Kdf, Kem>(&OpModeR::Base, &key_pair(SK_RM), &enc, &h(INFO))
            .unwrap();
    for (aad, _, ct) in ENCRYPTIONS {
        assert_eq!(ctx.open(&h(ct), &h(aad)).unwrap(), h(PT));
    }

    // Single-shot open is sequence number 0 only.
    let (aad0, _, ct0) = ENCRYPTIONS[0];
    let pt = hpke::single_shot_open::<Aead, Kdf, Kem>(
        &OpModeR::Base,
        &key_pair(SK_RM),
        &enc,
        &h(INFO),
        &h(ct0),
        &h(aad0),
    )
    .unwrap();
    assert_eq!(pt, h(PT));
    let (aad1, _, ct1) = ENCRYPTIONS[1];
    assert!(
        hpke::single_shot_open::<Aead, Kdf, Kem>(
            &OpModeR::Base,
            &key_pair(SK_RM),
            &enc,
            &h(INFO),
            &h(ct1),
            &h(aad1),
        )
        .is_err()
    );
}

#[test]
fn sender_with_vector_ephemeral_reproduces_enc_and_ciphertexts() {
    let pk_r = <Kem as hpke::Kem>::PublicKey::from_bytes(&h(PK_RM)).unwrap();
    let mut rng = FixedRng {
        bytes: h(IKM_E),
        pos: 0,
    };
    let (enc, mut ctx) =
        hpke::setup_sender::<Aead, Kdf, Kem, _>(&OpModeS::Base, &pk_r, &h(INFO), &mut rng).unwrap();
    assert!(rng.exhausted());
    assert_eq!(enc.to_bytes().as_slice(), h(ENC));
    for (aad, _, ct) in ENCRYPTIONS {
        assert_eq!(ctx.seal(&h(PT), &h(aad)).unwrap(), h(ct));
    }
}
