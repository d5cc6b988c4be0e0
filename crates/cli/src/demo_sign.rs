//! The demo's on-demand signature: after the view changes, one `POST /sign` to a member of the
//! active committee, checked with `blst`'s own BLS verification (proof-of-possession tag,
//! `min_pk`) on the signed bytes built from the request, under the key the node names.

use std::time::Duration;

use keyquorum_beacon::sign::signing_bytes;
use keyquorum_crypto::tbls::MIN_PK_POP_DST;
use serde_json::Value;

/// The domain the demo signs under.
pub const DOMAIN: &str = "keyquorum.demo/v1";

/// A signature made on demand, as the node returned it and the demo checked it.
#[derive(Debug, Clone)]
pub struct OnDemand {
    /// The node's answer: `{signature, public_key, view, domain, message}`.
    pub answer: Value,
    /// The status port of the member that signed.
    pub port: u16,
    /// The last view the demo reported on: the chain goes on changing views while the demo
    /// finishes, so the node may sign in a later one.
    pub reported_view: u64,
}

impl OnDemand {
    /// The JSON output: the node's answer, and when it signed in a view after the last one the
    /// demo reported, that view and why (the chain went on, and a reshare keeps the key).
    pub fn json(&self) -> Value {
        let mut out = self.answer.clone();
        if let (Some(v), Some(map)) = (self.answer["view"].as_u64(), out.as_object_mut())
            && v > self.reported_view
        {
            map.insert("reported_view".into(), self.reported_view.into());
            map.insert(
                "note".into(),
                format!(
                    "signed in view {v}: the chain went on changing views after view {}, and \
                     resharing kept the key",
                    self.reported_view
                )
                .into(),
            );
        }
        out
    }

    /// The text line.
    pub fn line(&self) -> String {
        let a = &self.answer;
        let view = match a["view"].as_u64() {
            Some(v) if v > self.reported_view => format!(
                "view {v}: the chain went on changing views after view {}, and resharing kept \
                 the key",
                self.reported_view
            ),
            _ => format!("view {}", a["view"]),
        };
        format!(
            "on-demand signature (POST /sign to the node on :{}, {view}, verified with blst): \
             domain {:?}, message {}, signature {}",
            self.port,
            a["domain"].as_str().unwrap_or(""),
            a["message"].as_str().unwrap_or(""),
            a["signature"].as_str().unwrap_or(""),
        )
    }
}

/// Whether `signature` (hex) is a valid signature of `group_key` (hex) on `message` in the
/// proof-of-possession ciphersuite, by `blst`.
fn verifies(group_key: &str, signature: &str, message: &[u8]) -> bool {
    let (Ok(pk), Ok(sig)) = (hex::decode(group_key), hex::decode(signature)) else {
        return false;
    };
    let (Ok(pk), Ok(sig)) = (
        blst::min_pk::PublicKey::key_validate(&pk),
        blst::min_pk::Signature::sig_validate(&sig, true),
    ) else {
        return false;
    };
    sig.verify(true, message, MIN_PK_POP_DST, &[], &pk, true) == blst::BLST_ERROR::BLST_SUCCESS
}

/// `POST /sign` with `body` on the node at `port`: its status and body, or why no answer came.
pub async fn post_sign(
    http: &reqwest::Client,
    port: u16,
    token: &str,
    body: &str,
) -> Result<(u16, String), String> {
    let answer = http
        .post(format!("http://127.0.0.1:{port}/sign"))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("node :{port}: {e}"))?;
    Ok((
        answer.status().as_u16(),
        answer.text().await.unwrap_or_default(),
    ))
}

/// Asks the members at `ports` in turn (the active committee first) to sign `message` until
/// one answers with a signature that verifies under `group_key`.
pub async fn sign_once(
    ports: &[u16],
    token: &str,
    message: &[u8],
    group_key: &str,
    reported_view: u64,
) -> Result<OnDemand, String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| e.to_string())?;
    let body = serde_json::json!({ "domain": DOMAIN, "message": hex::encode(message) });
    let signed = signing_bytes(DOMAIN.as_bytes(), message).map_err(|e| e.to_string())?;
    let mut last = String::from("no node to ask");
    for &port in ports {
        let (status, text) = match post_sign(&http, port, token, &body.to_string()).await {
            Ok(answer) => answer,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status != 200 {
            last = format!("node :{port} answered {status}: {text}");
            continue;
        }
        let key = answer["public_key"].as_str().unwrap_or("");
        let sig = answer["signature"].as_str().unwrap_or("");
        if key != group_key {
            return Err(format!(
                "node :{port} signed under {key}, not the group key {group_key}"
            ));
        }
        if !verifies(key, sig, &signed) {
            return Err(format!("node :{port}'s signature does not verify: {text}"));
        }
        return Ok(OnDemand {
            answer,
            port,
            reported_view,
        });
    }
    Err(format!("no on-demand signature: {last}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyquorum_crypto::tbls::{self, MinPk};

    #[test]
    fn a_signature_by_a_later_view_says_why_the_view_differs() {
        let signed = |view: u64| OnDemand {
            answer: serde_json::json!({ "view": view, "domain": DOMAIN, "message": "6d" }),
            port: 1,
            reported_view: 3,
        };
        let later = signed(7).line();
        assert!(
            later.contains("view 7: the chain went on changing views after view 3"),
            "{later}"
        );
        let same = signed(3).line();
        assert!(
            same.contains(":1, view 3, verified") && !same.contains("went on"),
            "{same}"
        );
    }

    #[test]
    fn the_check_is_blsts_with_the_pop_tag_on_the_signed_bytes() {
        let sk = tbls::secret_key_from_bytes(&[7; 32]).unwrap();
        let pk = hex::encode(tbls::public_key::<MinPk>(&sk).to_compressed());
        let bytes = signing_bytes(DOMAIN.as_bytes(), b"m").unwrap();
        let sig = hex::encode(tbls::sign::<MinPk>(&sk, &bytes).to_compressed());
        assert!(verifies(&pk, &sig, &bytes));
        assert!(!verifies(&pk, &sig, b"m"));
        let other = tbls::secret_key_from_bytes(&[3; 32]).unwrap();
        let other_pk = hex::encode(tbls::public_key::<MinPk>(&other).to_compressed());
        assert!(!verifies(&other_pk, &sig, &bytes));
        assert!(!verifies("zz", &sig, &bytes));
    }
}

#[cfg(test)]
mod json_tests {
    use super::*;

    #[test]
    fn a_signature_in_a_later_view_says_why_in_json() {
        let on_demand = |view: u64| OnDemand {
            answer: serde_json::json!({ "view": view, "signature": "ab" }),
            port: 1,
            reported_view: 2,
        };
        let later = on_demand(7).json();
        assert_eq!(later["reported_view"], 2);
        assert!(later["note"].as_str().unwrap().contains("signed in view 7"));
        let same = on_demand(2).json();
        assert!(same.get("note").is_none() && same.get("reported_view").is_none());
    }
}
