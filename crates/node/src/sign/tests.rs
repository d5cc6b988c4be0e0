//! `POST /sign` over a real loopback HTTP server: every rejection with its status and code, a
//! one-member signature, and the answers a member gives other members.

use std::net::SocketAddr;

use keyquorum_beacon::info::DEFAULT_BEACON_ID;
use keyquorum_beacon::sign::{PartialAnswer, Refusal, SignRequest};
use keyquorum_beacon::{ChainInfo, SchemeId};
use keyquorum_crypto::poly::Polynomial;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::store::BeaconMemberRecord;

pub(super) const TOKEN: &str = "s3cret-token";

fn identity(i: usize) -> Vec<u8> {
    vec![i as u8 + 1; 96]
}

/// A view of `n` members with threshold `t`, this node member `own` (or none), and the shares.
fn view(n: usize, t: usize, own: Option<usize>) -> (BeaconViewRecord, Vec<Scalar>) {
    let poly = Polynomial::<Scalar>::random(t - 1, None, &mut ChaCha20Rng::seed_from_u64(9));
    let mut members = Vec::new();
    let mut shares = Vec::new();
    for i in 0..n {
        let share = poly.evaluate(&Scalar::from(i as u64 + 1));
        let public = tbls::public_key::<MinPk>(&Secret::new(share));
        members.push(BeaconMemberRecord {
            identity: hex::encode(identity(i)),
            index: i as u64 + 1,
            public_share: hex::encode(public.to_compressed()),
        });
        shares.push(share);
    }
    let group_key = tbls::public_key::<MinPk>(&Secret::new(poly.constant()));
    let info = ChainInfo::for_view(
        None,
        SchemeId::PedersenBlsChained,
        &group_key.to_compressed(),
        [7; 32],
        1_700_000_000,
        3,
        DEFAULT_BEACON_ID,
    )
    .unwrap();
    let record = BeaconViewRecord {
        view: 4,
        ended: Vec::new(),
        magic_block_hash: hex::encode([7u8; 32]),
        chain_info: info.to_json(),
        threshold: t as u32,
        members,
        own_index: own.map(|i| i as u64 + 1),
    };
    (record, shares)
}

pub(super) fn sign_view(n: usize, t: usize, own: Option<usize>) -> SignView {
    let (record, shares) = view(n, t, own);
    let share = own.map(|i| (i as u64 + 1, Secret::new(shares[i])));
    SignView::new(&record, share).unwrap()
}

fn service(config: SignConfig, token: Option<&str>) -> SignService {
    SignService::new(
        config,
        token.map(|t| Token::new(t.as_bytes())),
        Arc::new(Metrics::new()),
        Fault::None,
    )
}

pub(super) async fn serve(s: SignService) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = http::routes(s).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Posts `body` with `token` (if any); returns the status and the JSON answer.
pub(super) async fn post(addr: SocketAddr, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST /sign HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    let status = text[9..12].parse().unwrap();
    let json = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

const GOOD: &str = r#"{"domain":"example.org/v1","message":"deadbeef"}"#;

pub(super) fn code(v: &Value) -> &str {
    v["error"].as_str().unwrap_or("")
}

#[tokio::test]
async fn without_a_token_the_endpoint_is_off() {
    let s = service(SignConfig::default(), None);
    let addr = serve(s.clone()).await;
    let (status, body) = post(addr, Some(TOKEN), GOOD).await;
    assert_eq!((status, code(&body)), (404, "sign_disabled"));
    assert!(body["message"].as_str().unwrap().contains("token_file"));
    assert_eq!(s.metrics().sign.rejections("sign_disabled"), 1);
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_unauthorized() {
    let s = service(SignConfig::default(), Some(TOKEN));
    s.set_view(Some(sign_view(1, 1, Some(0))));
    let addr = serve(s.clone()).await;
    for token in [None, Some("wrong"), Some("s3cret-token-and-more"), Some("")] {
        let (status, body) = post(addr, token, GOOD).await;
        assert_eq!((status, code(&body)), (401, "unauthorized"), "{token:?}");
    }
    assert_eq!(s.metrics().sign.rejections("unauthorized"), 4);
}

#[tokio::test]
async fn a_caller_past_its_burst_is_rate_limited() {
    let config = SignConfig {
        rate_per_sec: 0.01,
        burst: 2,
        ..SignConfig::default()
    };
    let s = service(config, Some(TOKEN));
    let addr = serve(s.clone()).await;
    // No view: the first two get past the limiter and stop at the view check.
    for _ in 0..2 {
        let (status, body) = post(addr, Some(TOKEN), GOOD).await;
        assert_eq!((status, code(&body)), (409, "no_active_view"));
    }
    let (status, body) = post(addr, Some(TOKEN), GOOD).await;
    assert_eq!((status, code(&body)), (429, "rate_limited"));
    // One token per 100 s: the wait is what is left of that since the burst was spent (three
    // loopback requests ago, so within a few seconds of 100 even on a loaded machine).
    let wait = body["retry_after_secs"].as_u64().expect("retry_after_secs");
    assert!((95..=100).contains(&wait), "{wait}");
}

#[tokio::test]
async fn malformed_requests_are_refused_with_their_code() {
    // A burst for every case: the limit is checked before the body.
    let config = SignConfig {
        burst: 32,
        ..SignConfig::default()
    };
    let s = service(config, Some(TOKEN));
    s.set_view(Some(sign_view(1, 1, Some(0))));
    let addr = serve(s.clone()).await;
    let long = format!(
        r#"{{"domain":"d","message":"{}"}}"#,
        "00".repeat(keyquorum_beacon::sign::MAX_MESSAGE_LEN + 1)
    );
    let huge = " ".repeat(keyquorum_beacon::sign::MAX_REQUEST_JSON + 1);
    let cases: [(&str, &str); 13] = [
        ("nope", "bad_json"),
        // A field given twice is refused, not read by its last value.
        (
            r#"{"scheme":"bls","scheme":"bip340","message":"00"}"#,
            "bad_json",
        ),
        (
            r#"{"domain":"d","message":"00","message":"01"}"#,
            "bad_json",
        ),
        (r#"{"scheme":"bip340","message":"00""#, "bad_json"),
        // The fields as an array: serde takes it for a struct, the API does not.
        (r#"["d","00"]"#, "bad_json"),
        // A Schnorr request's message follows the same rule as a BLS one's.
        (r#"{"scheme":"bip340","message":"0xdead"}"#, "bad_message"),
        (
            r#"{"scheme":"frost-secp256k1","message":"abc"}"#,
            "bad_message",
        ),
        (r#"{"domain":"d"}"#, "bad_json"),
        (r#"{"domain":"","message":"00"}"#, "bad_domain"),
        (r#"{"domain":"tab\there","message":"00"}"#, "bad_domain"),
        (r#"{"domain":"d","message":"0xdead"}"#, "bad_message"),
        (&long, "message_too_long"),
        (
            &long.replace(r#""domain":"d""#, r#""scheme":"bip340""#),
            "message_too_long",
        ),
    ];
    for (body, expect) in cases {
        let (status, answer) = post(addr, Some(TOKEN), body).await;
        assert_eq!((status, code(&answer)), (400, expect), "{answer}");
        if expect == "bad_message" {
            assert_eq!(answer["message"], "message is not hex", "{answer}");
        }
        if expect == "bad_json" && body.starts_with("{\"scheme\":\"bip340\"") {
            // The shape named is the Schnorr one as well as the BLS one.
            assert!(
                answer["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("bip340")),
                "{answer}"
            );
        }
    }
    // An oversized body is 413, as on the chain's API.
    let (status, answer) = post(addr, Some(TOKEN), &huge).await;
    assert_eq!((status, code(&answer)), (413, "too_large"), "{answer}");
}

#[tokio::test]
async fn without_a_view_or_a_share_the_conflict_is_named() {
    let s = service(SignConfig::default(), Some(TOKEN));
    let addr = serve(s.clone()).await;
    let (status, body) = post(addr, Some(TOKEN), GOOD).await;
    assert_eq!((status, code(&body)), (409, "no_active_view"));
    s.set_view(Some(sign_view(3, 2, None)));
    let (status, body) = post(addr, Some(TOKEN), GOOD).await;
    assert_eq!((status, code(&body)), (409, "not_a_member"));
    assert_eq!(body["view"], 4);
}

/// A Schnorr request before the active view has a signing key (the window after each
/// activation, or a coordinator that makes none) names that view; without an active view it
/// is answered as a BLS request is.
#[tokio::test]
async fn a_schnorr_request_without_a_signing_key_names_the_active_view() {
    let s = service(SignConfig::default(), Some(TOKEN));
    let addr = serve(s.clone()).await;
    let schnorr = r#"{"scheme":"bip340","message":"00"}"#;
    let (status, body) = post(addr, Some(TOKEN), schnorr).await;
    assert_eq!((status, code(&body)), (409, "no_active_view"), "{body}");
    s.set_view(Some(sign_view(1, 1, Some(0))));
    let (status, body) = post(addr, Some(TOKEN), schnorr).await;
    assert_eq!((status, code(&body)), (409, "no_signing_key"), "{body}");
    assert_eq!(body["view"], 4);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("the active view (4)")),
        "{body}"
    );
}

#[tokio::test]
async fn a_full_queue_answers_503() {
    let config = SignConfig {
        max_pending: 1,
        ..SignConfig::default()
    };
    let s = service(config, Some(TOKEN));
    s.set_view(Some(sign_view(1, 1, Some(0))));
    let addr = serve(s.clone()).await;
    let slot = s.try_slot().unwrap();
    let (status, body) = post(addr, Some(TOKEN), GOOD).await;
    assert_eq!((status, code(&body)), (503, "queue_full"));
    drop(slot);
    let (status, _) = post(addr, Some(TOKEN), GOOD).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_one_member_view_signs_and_the_signature_verifies() {
    let s = service(SignConfig::default(), Some(TOKEN));
    s.set_view(Some(sign_view(1, 1, Some(0))));
    let addr = serve(s.clone()).await;
    let (status, body) = post(addr, Some(TOKEN), GOOD).await;
    assert_eq!(status, 200, "{body}");
    let signed: Signed = serde_json::from_value(body).unwrap();
    assert_eq!(signed.view, 4);
    assert_eq!(signed.domain, "example.org/v1");
    assert_eq!(signed.message, "deadbeef");
    let pk = tbls::decode_public_key::<MinPk>(&hex::decode(&signed.public_key).unwrap()).unwrap();
    let sig = tbls::decode_signature::<MinPk>(&hex::decode(&signed.signature).unwrap()).unwrap();
    let msg = SignRequest::new("example.org/v1", &[0xde, 0xad, 0xbe, 0xef])
        .unwrap()
        .signing_bytes();
    tbls::verify::<MinPk>(&pk, &msg, &sig).unwrap();
    assert_eq!(s.metrics().sign.partials(0, "valid"), 1);
}

#[tokio::test]
async fn too_few_partials_by_the_timeout_is_no_quorum_with_the_count() {
    let config = SignConfig {
        timeout_ms: 200,
        ..SignConfig::default()
    };
    let s = service(config, Some(TOKEN));
    // Three members, t = 2, and no network to reach the other two.
    s.set_view(Some(sign_view(3, 2, Some(1))));
    let addr = serve(s.clone()).await;
    let (status, body) = post(addr, Some(TOKEN), GOOD).await;
    assert_eq!((status, code(&body)), (504, "no_quorum"), "{body}");
    assert_eq!(body["valid_partials"], 1);
    assert_eq!(body["threshold"], 2);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("1 valid partials of 2")
    );
}

#[test]
fn members_answer_only_committee_members_in_the_views_session() {
    let s = service(SignConfig::default(), Some(TOKEN));
    let v = sign_view(3, 2, Some(2));
    let session = v.session;
    s.set_view(Some(v));
    let req = PartialRequest {
        view: 4,
        request: SignRequest::new("d", b"m").unwrap(),
    }
    .to_bytes();
    let answer = |session: &SessionId, from: Option<&[u8]>, payload: &[u8]| {
        PartialAnswer::from_bytes(&s.answer(session, from, payload)).unwrap()
    };
    assert!(matches!(
        answer(&session, Some(&identity(0)), &req),
        PartialAnswer::Partial(_)
    ));
    let refused = PartialAnswer::Refused(Refusal::OtherView);
    assert_eq!(answer(&[0; 32], Some(&identity(0)), &req), refused);
    assert_eq!(answer(&session, Some(&identity(7)), &req), refused);
    assert_eq!(answer(&session, None, &req), refused);
    let other_view = PartialRequest {
        view: 3,
        request: SignRequest::new("d", b"m").unwrap(),
    }
    .to_bytes();
    assert_eq!(answer(&session, Some(&identity(0)), &other_view), refused);
    assert_eq!(
        answer(&session, Some(&identity(0)), b"junk"),
        PartialAnswer::Refused(Refusal::Malformed)
    );
    // A node without a share of the view refuses too.
    s.set_view(Some(sign_view(3, 2, None)));
    assert_eq!(
        answer(&session, Some(&identity(0)), &req),
        PartialAnswer::Refused(Refusal::NoShare)
    );
}

#[test]
fn the_bad_beacon_fault_sends_partials_that_do_not_verify() {
    let s = SignService::new(
        SignConfig::default(),
        None,
        Arc::new(Metrics::new()),
        Fault::BadBeacon,
    );
    let v = sign_view(3, 2, Some(0));
    let session = v.session;
    let group = v.group.clone();
    s.set_view(Some(v));
    let request = SignRequest::new("d", b"m").unwrap();
    let req = PartialRequest {
        view: 4,
        request: request.clone(),
    }
    .to_bytes();
    let bytes = s.answer(&session, Some(&identity(1)), &req);
    let mut c = keyquorum_beacon::sign::Collector::new(&group, &request);
    assert_eq!(
        c.add_answer(0, &bytes),
        Err(PartialRejected::Invalid { member: 0 })
    );
}

#[test]
fn tokens_compare_whole_and_never_show() {
    let t = Token::new(b"abc");
    assert!(t.matches(b"abc"));
    assert!(!t.matches(b"abd"));
    assert!(!t.matches(b"ab"));
    assert!(!t.matches(b"abcd"));
    assert_eq!(format!("{t:?}"), "Token(<redacted>)");
}

#[test]
fn the_token_file_is_read_trimmed_and_must_not_be_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "  tok\n").unwrap();
    let config = SignConfig {
        token_file: Some(path.clone()),
        ..SignConfig::default()
    };
    assert!(config.read_token().unwrap().unwrap().matches(b"tok"));
    std::fs::write(&path, "\n").unwrap();
    assert!(config.read_token().unwrap_err().contains("empty"));
    assert!(SignConfig::default().read_token().unwrap().is_none());
    let bad = SignConfig {
        burst: 0,
        ..SignConfig::default()
    };
    assert!(bad.problem().is_some());
    assert!(SignConfig::default().problem().is_none());
}

/// A network node for `keys` on loopback, and its listen addresses.
pub(super) async fn net_node(
    keys: &crate::keys::NodeKeys,
) -> (
    keyquorum_net::NetworkHandle,
    tokio::sync::mpsc::Receiver<keyquorum_net::NetEvent>,
    Vec<keyquorum_net::Multiaddr>,
) {
    let config = crate::network::net_config(keys, "/ip4/127.0.0.1/tcp/0".parse().unwrap(), vec![]);
    let (net, events) = keyquorum_net::Network::new(config).unwrap();
    let addrs = net.listen_addrs().await.unwrap();
    (net, events, addrs)
}

/// Three members with node keys from `seed` and a view of threshold 2 whose committee they
/// are; the view as member 0 holds it.
fn committee_of_three(seed: u8) -> (Vec<crate::keys::NodeKeys>, SignView) {
    let keys: Vec<crate::keys::NodeKeys> = (0..3)
        .map(|i| crate::keys::NodeKeys::from_master(&[i as u8 + seed; 32]))
        .collect();
    let (mut record, shares) = view(3, 2, Some(0));
    for (m, k) in record.members.iter_mut().zip(&keys) {
        m.identity = hex::encode(k.identity().public().to_bytes());
    }
    let sign_view = SignView::new(&record, Some((1, Secret::new(shares[0])))).unwrap();
    (keys, sign_view)
}

/// Members `keys[1..]` of `session` on loopback, reachable from `coordinator` (`keys[0]`),
/// each signing request handed to `on_request` with its reply channel.
async fn members_on_loopback(
    keys: &[crate::keys::NodeKeys],
    coordinator: &keyquorum_net::NetworkHandle,
    session: keyquorum_net::SessionId,
    on_request: impl Fn(tokio::sync::oneshot::Sender<Vec<u8>>) + Clone + Send + 'static,
) -> Vec<keyquorum_net::NetworkHandle> {
    let mut members = Vec::new();
    for k in &keys[1..] {
        let (net, mut events, addrs) = net_node(k).await;
        net.set_session_members(
            session,
            vec![keys[0].identity().public().to_bytes().to_vec()],
        )
        .await
        .unwrap();
        coordinator
            .bind_identity(
                k.identity().public().to_bytes().to_vec(),
                k.peer_id(),
                addrs,
            )
            .await
            .unwrap();
        let on_request = on_request.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let keyquorum_net::NetEvent::Request { kind, reply, .. } = event {
                    assert_eq!(kind, keyquorum_net::SIGN_REQUEST_KIND);
                    on_request(reply);
                }
            }
        });
        members.push(net);
    }
    members
}

/// The signing service of member 0 on `coordinator`'s network with `view`, served over HTTP.
async fn coordinating(
    config: SignConfig,
    coordinator: &keyquorum_net::NetworkHandle,
    view: SignView,
) -> (SignService, SocketAddr) {
    let s = service(config, Some(TOKEN));
    s.set_network(coordinator.clone());
    s.set_view(Some(view));
    let addr = serve(s.clone()).await;
    (s, addr)
}

/// A request whose members answer that they are at another view (a view change under way)
/// fails as retryable, naming them apart from culprits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_at_another_view_make_a_retryable_failure() {
    let (keys, sign_view) = committee_of_three(50);
    let (coordinator, _events, _) = net_node(&keys[0]).await;
    // What a member answers for a view that is not its active one (`SignService::answer`).
    let _members = members_on_loopback(&keys, &coordinator, sign_view.session(), |reply| {
        let refused = PartialAnswer::Refused(keyquorum_beacon::sign::Refusal::OtherView);
        let _ = reply.send(refused.to_bytes());
    })
    .await;
    let config = SignConfig {
        timeout_ms: 5000,
        ..SignConfig::default()
    };
    let (s, addr) = coordinating(config, &coordinator, sign_view).await;
    let (status, body) = post(addr, Some(TOKEN), GOOD).await;
    assert_eq!((status, code(&body)), (503, "view_changing"), "{body}");
    assert_eq!(body["other_view"], serde_json::json!([1, 2]));
    assert_eq!(body["culprits"], serde_json::json!([]));
    assert_eq!(body["valid_partials"], 1);
    assert_eq!(s.metrics().sign.partials(1, "other_view"), 1);
    assert_eq!(s.metrics().sign.partials(2, "refused"), 0);
}

/// Timed-out requests give their pending slot back at the timeout, while the partial requests
/// they sent are still unanswered: members that hold a request do not hold the coordinator's
/// queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_out_requests_free_their_pending_slot_while_members_still_hold_them() {
    let (keys, sign_view) = committee_of_three(40);
    let session = sign_view.session();

    let (coordinator, _events, _) = net_node(&keys[0]).await;
    // Two members that take every signing request and never answer it.
    let (held_tx, mut held_rx) = tokio::sync::mpsc::unbounded_channel();
    let members = members_on_loopback(&keys, &coordinator, session, move |reply| {
        // Kept, unanswered, for the rest of the test.
        let _ = held_tx.send(reply);
    })
    .await;

    let config = SignConfig {
        max_pending: 1,
        timeout_ms: 300,
        rate_per_sec: 100.0,
        burst: 100,
        ..SignConfig::default()
    };
    let (s, addr) = coordinating(config, &coordinator, sign_view).await;

    let mut held = Vec::new();
    for i in 0..3 {
        let body = format!(r#"{{"domain":"example.org/v1","message":"0{i}"}}"#);
        let (status, answer) = post(addr, Some(TOKEN), &body).await;
        // Not `queue_full`: the previous request's slot is free although its partial
        // requests are still held by the members.
        assert_eq!(
            (status, code(&answer)),
            (504, "no_quorum"),
            "request {i}: {answer}"
        );
        assert_eq!(answer["valid_partials"], 1);
        while let Ok(reply) = held_rx.try_recv() {
            held.push(reply);
        }
        assert!(s.try_slot().is_some(), "request {i} kept its slot");
    }
    // The members did get the requests and hold them unanswered (on a loaded machine the
    // first may reach them only after its request timed out).
    if held.is_empty()
        && let Ok(Some(reply)) = tokio::time::timeout(Duration::from_secs(10), held_rx.recv()).await
    {
        held.push(reply);
    }
    assert!(!held.is_empty());
    assert_eq!(s.metrics().sign.rejections("queue_full"), 0);
    assert_eq!(s.metrics().sign.rejections("no_quorum"), 3);
    drop(members);
}

#[test]
fn a_member_answers_a_bounded_number_of_signing_requests_at_once() {
    let s = SignService::disabled(Arc::new(Metrics::new()));
    let mut slots: Vec<_> = (0..MAX_ANSWERING)
        .map(|_| s.answer_slot().expect("a free slot"))
        .collect();
    assert!(s.answer_slot().is_none(), "one more than the bound");
    // An answer made frees its slot.
    slots.pop();
    assert!(s.answer_slot().is_some());
}
