//! The demo's secp256k1 signing keys (`--curve secp256k1`): each view's key as the chain
//! records it (`SigningKeyRecord`: group key, qualified dealers, exclusions with the board's
//! fault), and one BIP-340 signature by the view's committee, asked for with `POST /sign`
//! (`"scheme": "bip340"`) while the view is active and checked with `k256`'s BIP-340 verifier
//! under the x-only group key before it is reported.

use std::time::{Duration, Instant};

use keyquorum_contract::signing_key::SigningKeyRecord;
use serde_json::{Value, json};

use crate::demo_sign::post_sign;

/// A view's BIP-340 signature, as a member returned it and the demo checked it.
#[derive(Debug, Clone)]
pub struct Bip340 {
    /// The signed message.
    pub message: Vec<u8>,
    /// The x-only group key (32 bytes).
    pub public_key: [u8; 32],
    /// The signature (64 bytes).
    pub signature: Vec<u8>,
    /// The status port of the member that coordinated it.
    pub port: u16,
}

impl Bip340 {
    /// `{message, public_key, signature}`, hex.
    pub fn json(&self) -> Value {
        json!({
            "message": hex::encode(&self.message),
            "public_key": hex::encode(self.public_key),
            "signature": hex::encode(&self.signature),
        })
    }
}

/// The x-only form (BIP-340) of a compressed SEC1 key: its x coordinate, if the key is a
/// point of secp256k1.
pub fn x_only(group_key: &[u8; 33]) -> Option<[u8; 32]> {
    k256::PublicKey::from_sec1_bytes(group_key).ok()?;
    // The x coordinate names the point up to its sign, which BIP-340 fixes (even y).
    group_key[1..].try_into().ok()
}

/// Whether `signature` is a valid BIP-340 signature on `message` under the x-only `key`, by
/// `k256`.
pub fn verifies(key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let (Ok(vk), Ok(sig)) = (
        k256::schnorr::VerifyingKey::from_bytes(key),
        k256::schnorr::Signature::try_from(signature),
    ) else {
        return false;
    };
    vk.verify_raw(message, &sig).is_ok()
}

/// How long the demo keeps asking for a view's BIP-340 signature: the members learn the key
/// from the same block the demo saw, a little later.
const SIGN_WAIT: Duration = Duration::from_secs(30);

/// Asks the members at `ports` (share holders first) for a BIP-340 signature on `message`
/// with `key`, until one answers with a signature that verifies under the key's x-only form.
pub async fn sign_bip340(
    ports: &[u16],
    token: &str,
    message: &[u8],
    key: &SigningKeyRecord,
) -> Result<Bip340, String> {
    let public_key = x_only(&key.group_key.0)
        .ok_or_else(|| format!("group key {} is not a point", hex::encode(key.group_key.0)))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| e.to_string())?;
    let body = json!({ "scheme": "bip340", "message": hex::encode(message) }).to_string();
    let deadline = Instant::now() + SIGN_WAIT;
    let mut last = String::from("no node to ask");
    loop {
        for &port in ports {
            let (status, text) = match post_sign(&http, port, token, &body).await {
                Ok(answer) => answer,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            if status != 200 {
                last = format!("node :{port} answered {status}: {text}");
                continue;
            }
            let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let field = |name: &str| hex::decode(answer[name].as_str().unwrap_or("")).ok();
            let (Some(signed_key), Some(signature)) = (field("public_key"), field("signature"))
            else {
                return Err(format!("node :{port}: unreadable answer {text}"));
            };
            if signed_key != public_key {
                return Err(format!(
                    "node :{port} signed under {}, not the view's x-only key {}",
                    hex::encode(&signed_key),
                    hex::encode(public_key)
                ));
            }
            if !verifies(&public_key, message, &signature) {
                return Err(format!(
                    "node :{port}'s BIP-340 signature does not verify: {text}"
                ));
            }
            return Ok(Bip340 {
                message: message.to_vec(),
                public_key,
                signature,
                port,
            });
        }
        if Instant::now() > deadline {
            return Err(format!("no BIP-340 signature: {last}"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::schnorr::SigningKey;

    #[test]
    fn bip340_checks_are_k256s_under_the_x_only_key() {
        let sk = SigningKey::from_bytes(&[7; 32]).unwrap();
        let x: [u8; 32] = sk.verifying_key().to_bytes().into();
        let sig = sk.sign_raw(b"m", &[1; 32]).unwrap().to_bytes();
        assert!(verifies(&x, b"m", &sig));
        assert!(!verifies(&x, b"n", &sig));
        let other: [u8; 32] = SigningKey::from_bytes(&[8; 32])
            .unwrap()
            .verifying_key()
            .to_bytes()
            .into();
        assert!(!verifies(&other, b"m", &sig));
        assert!(!verifies(&x, b"m", &sig[..63]));
        // Both compressed forms of the key have the same x-only form.
        for prefix in [2u8, 3] {
            let mut c = [prefix; 33];
            c[1..].copy_from_slice(&x);
            assert_eq!(x_only(&c), Some(x));
        }
        let mut bad = [2u8; 33];
        bad[1..].copy_from_slice(&[0xff; 32]);
        assert_eq!(x_only(&bad), None);
    }
}
