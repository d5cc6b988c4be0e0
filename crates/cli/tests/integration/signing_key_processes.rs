//! A view's secp256k1 signing key end to end with real processes: `keyquorum chain` with a
//! contract configured with `[dkg.signing_key]` (complaint variant, secp256k1, key-hash
//! indices) and four `keyquorum node`s. After view 1 activates, its committee makes the key
//! (deals point to point over libp2p, reports and Feldman values through the chain); the key
//! is on chain (`signing_key_created`) and every node's `/status` shows the same one; the
//! members' indices are the key hashes of their identity keys. `POST /sign` on a member then
//! returns a FROST(secp256k1, SHA-256) signature that verifies under RFC 9591 and a BIP-340
//! signature that verifies with `k256`'s BIP-340 verifier under the x-only key; an unknown
//! scheme is refused. One node runs with `--fault bad-signature-share`: whenever a coordinator
//! picks it, its share fails, it is named (and only it) and the request signs without it.

use crate::common;

use std::time::Duration;

use common::{Testnet, contract_status, http_get, wait_for};
use keyquorum_contract::signing_key::{SigningCurve, SigningKeyRecord};
use keyquorum_crypto::Curve;
use keyquorum_crypto::frost::{self, Mode};
use keyquorum_crypto::index;
use keyquorum_node::status::Status as NodeStatus;

const NODES: usize = 4;
const SIGN_TOKEN: &str = "signing-key-test-token";
/// The node that answers FROST round two with invalid shares.
const BAD_SHARES: usize = 3;

const CONTRACT: &str = r#"
chain_id = "signing-key-processes-test"
first_view_change = 20
view_length = 1000
retry_delay = 5
max_ceremonies_per_view = 3
key_mode = "reshare"
key_mode_overrides = []
[committee]
max_size = 4
min_size = 4
threshold = { count = 3 }
quorum = { percent = 75 }
keep_previous_percent = 70
min_stake = 1
[phases]
contribute = 10
share = 15
publish = 10
wait = 12
[slashing]
misbehaviour_percent = 10
absence_percent = 0
[dkg.signing_key]
variant = "complaint"
curve = "secp256k1"
indices = "key-hash"
"#;

/// The key of the chain's `signing_key_created` event for `view`, if there is one yet.
async fn chain_key(chain_port: u16, view: u64) -> Option<SigningKeyRecord> {
    let (_, body) = http_get(chain_port, "/events?from=1").await?;
    let page: serde_json::Value = serde_json::from_str(&body).ok()?;
    let mut stack = vec![&page];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Object(m) => {
                if m.get("event").and_then(|e| e.as_str()) == Some("signing_key_created")
                    && m.get("view").and_then(|v| v.as_u64()) == Some(view)
                {
                    return serde_json::from_value(m["key"].clone()).ok();
                }
                stack.extend(m.values());
            }
            serde_json::Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    None
}

async fn node_status(port: u16) -> Option<NodeStatus> {
    let (code, body) = http_get(port, "/status").await?;
    (code == 200).then(|| serde_json::from_str(&body).ok())?
}

async fn post_sign(port: u16, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/sign"))
        .header("Authorization", format!("Bearer {SIGN_TOKEN}"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: {text}")),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_views_committee_makes_a_secp256k1_key_on_chain_and_signs_frost_and_bip340() {
    let _network = crate::common::network_slot().await;
    let net = Testnet::new(NODES, CONTRACT, Some(SIGN_TOKEN));
    let _procs: Vec<_> = (0..NODES)
        .map(|i| net.start(i, (i == BAD_SHARES).then_some("bad-signature-share")))
        .collect();
    wait_for("view 1", Duration::from_secs(150), async || {
        let s = contract_status(net.chain_port).await?;
        (s.view >= 1).then_some(())
    })
    .await;
    let key = wait_for(
        "the signing key on chain",
        Duration::from_secs(120),
        async || chain_key(net.chain_port, 1).await,
    )
    .await;
    assert_eq!(key.members.len(), NODES);
    assert_eq!(key.threshold, 3);
    for m in &key.members {
        let x = index::from_public_key::<SigningCurve>(&m.identity.0);
        assert_eq!(m.index.0, SigningCurve::encode_scalar(&x), "key-hash index");
    }
    let group_key = SigningCurve::decode_point_nonzero(&key.group_key.0).unwrap();
    let x_only = frost::bip340::x_only(&group_key).unwrap();
    // Every node shows the chain's key, checked against its own board, and holds a share.
    for i in 0..NODES {
        let shown = wait_for(
            "the signing key on /status",
            Duration::from_secs(60),
            async || node_status(net.status(i)).await?.signing_key,
        )
        .await;
        assert_eq!(shown.view, 1, "node {i}");
        assert_eq!(shown.group_key, hex::encode(key.group_key.0), "node {i}");
        assert_eq!(shown.x_only_key, hex::encode(x_only), "node {i}");
        assert!(shown.member, "node {i}");
    }

    let message = b"keyquorum: threshold Schnorr from node processes";
    let (code, signed) = post_sign(
        net.status(0),
        serde_json::json!({ "scheme": "frost-secp256k1", "message": hex::encode(message) }),
    )
    .await;
    assert_eq!(code, 200, "{signed}");
    assert_eq!(signed["public_key"], hex::encode(key.group_key.0));
    let sig = hex::decode(signed["signature"].as_str().unwrap()).unwrap();
    assert_eq!(sig.len(), 65);
    let sig = frost::Signature::from_bytes(&sig).unwrap();
    frost::verify(Mode::Rfc9591, &group_key, message, &sig).unwrap();
    assert!(frost::verify(Mode::Rfc9591, &group_key, b"other", &sig).is_err());

    let (code, signed) = post_sign(
        net.status(1),
        serde_json::json!({ "scheme": "bip340", "message": hex::encode(message) }),
    )
    .await;
    assert_eq!(code, 200, "{signed}");
    let public = hex::decode(signed["public_key"].as_str().unwrap()).unwrap();
    assert_eq!(public, x_only);
    let sig = hex::decode(signed["signature"].as_str().unwrap()).unwrap();
    assert_eq!(sig.len(), 64);
    let vk = k256::schnorr::VerifyingKey::from_bytes(&public).unwrap();
    let sig = k256::schnorr::Signature::try_from(&sig[..]).unwrap();
    vk.verify_raw(message, &sig).unwrap();

    // Every coordinator picks the first `t` commitments; whichever request took the faulty
    // node's, its coordinator named that node and no other, and signed without it.
    for round in 0..4 {
        let (code, signed) = post_sign(
            net.status(round % 3),
            serde_json::json!({ "scheme": "frost-secp256k1", "message": hex::encode([round as u8]) }),
        )
        .await;
        assert_eq!(code, 200, "{signed}");
        let sig = hex::decode(signed["signature"].as_str().unwrap()).unwrap();
        let sig = frost::Signature::from_bytes(&sig).unwrap();
        frost::verify(Mode::Rfc9591, &group_key, &[round as u8], &sig).unwrap();
    }
    let bad_identity = node_status(net.status(BAD_SHARES)).await.unwrap().identity;
    let bad_position = key
        .members
        .iter()
        .position(|m| hex::encode(m.identity.0) == bad_identity)
        .unwrap();
    for i in 0..3 {
        let (_, text) = http_get(net.status(i), "/metrics").await.unwrap();
        let retried = metric(
            &text,
            "keyquorum_sign_frost_attempts_total{result=\"culprits\"}",
        );
        let named = metric(
            &text,
            &format!(
                "keyquorum_sign_frost_culprits_total{{member=\"{bad_position}\",fault=\"invalid_share\"}}"
            ),
        );
        assert_eq!(retried, named, "node {i}:\n{text}");
        let others: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("keyquorum_sign_frost_culprits_total{"))
            .filter(|l| !l.contains(&format!("member=\"{bad_position}\"")))
            .collect();
        assert!(others.is_empty(), "node {i}: {others:?}");
    }

    let (code, refused) = post_sign(
        net.status(0),
        serde_json::json!({ "scheme": "ed25519", "message": "00" }),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(refused["error"], "bad_scheme");
}

/// The value of the sample `name` (with its labels as served) in the exposition `text`; 0 when
/// absent.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}
