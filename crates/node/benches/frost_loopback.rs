//! `POST /sign` with the view's signing key (FROST(secp256k1, SHA-256), RFC 9591 mode) over
//! loopback libp2p: the whole request as a client sees it, `t = floor(2n/3) + 1` of `n`.
//!
//! One process holds the committee: `n` network stacks of `keyquorum-net` on 127.0.0.1 (TCP,
//! Noise, Yamux), each member with its own [`SignService`], its own nonce store (a redb file
//! written durably, as on a node) and the node's event-loop dispatch of FROST rounds
//! ([`SignService::spawn_frost_answer`]). Member 0 coordinates: it serves `POST /sign` over
//! HTTP, asks every member for a commitment, takes the first `t`, asks those for their shares,
//! aggregates and verifies the signature. What is timed is one request from the client's
//! connect to the signature in the answer; connections between members are made before.
//!
//! Two committees:
//! - `all_online`: every member is up (a coordinator asks all and the first `t` sign);
//! - `threshold_online`: only `t` members are up; the others cannot be reached, so the
//!   request signs with exactly those that can.
//!
//! Every member's work runs on this machine's cores, so the time is the sum of the committee's
//! CPU over the cores, not the latency of a network of machines (see docs/performance.md).
//! `KQ_BENCH_NS` (default "256") lists the committee sizes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use keyquorum_contract::hex::Hex;
use keyquorum_contract::signing_key::{SigningCurve, SigningKeyMember, SigningKeyRecord};
use keyquorum_contract::state::IdentityKey;
use keyquorum_crypto::Curve;
use keyquorum_crypto::frost::{self as schnorr, Mode};
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::secret::Secret;
use keyquorum_net::NetEvent;
use keyquorum_node::config::Fault;
use keyquorum_node::keys::NodeKeys;
use keyquorum_node::metrics::Metrics;
use keyquorum_node::sign::frost::{FrostView, NonceDb, frost_session};
use keyquorum_node::sign::{SignConfig, SignService, Token, http};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type SigningScalar = <SigningCurve as Curve>::Scalar;

const TOKEN: &str = "bench-token";

fn sizes() -> Vec<usize> {
    std::env::var("KQ_BENCH_NS")
        .unwrap_or_else(|_| "256".to_string())
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("KQ_BENCH_NS: bad size {s:?}"))
        })
        .collect()
}

fn node_keys(n: usize) -> Vec<Arc<NodeKeys>> {
    (0..n)
        .map(|i| {
            let mut master = [7u8; 32];
            master[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Arc::new(NodeKeys::from_master(&master))
        })
        .collect()
}

fn identity(keys: &NodeKeys) -> Vec<u8> {
    keys.identity().public().to_bytes().to_vec()
}

/// A signing key of threshold `t` for the members with `keys` (indices 1..=n), as the chain
/// records it, and every member's share (dealt here: the ceremony is not what is timed).
fn signing_key(keys: &[Arc<NodeKeys>], t: usize) -> (SigningKeyRecord, Vec<SigningScalar>) {
    let poly = Polynomial::<SigningScalar>::random(t - 1, None, &mut ChaCha20Rng::seed_from_u64(1));
    let point = |s: &SigningScalar| {
        let p = (k256::ProjectivePoint::GENERATOR * s).to_affine();
        Hex(SigningCurve::point_bytes(&p)
            .try_into()
            .expect("a compressed point"))
    };
    let mut members = Vec::new();
    let mut shares = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let x = SigningScalar::from(i as u64 + 1);
        let share = poly.evaluate(&x);
        members.push(SigningKeyMember {
            identity: IdentityKey::from_slice(&identity(k)).expect("an identity key"),
            index: Hex(SigningCurve::encode_scalar(&x)),
            public_share: point(&share),
        });
        shares.push(share);
    }
    let record = SigningKeyRecord {
        session_id: Hex([9; 32]),
        threshold: t as u32,
        group_key: point(&poly.constant()),
        members,
        qualified: (0..keys.len() as u32).collect(),
        dealers: Vec::new(),
        excluded: Vec::new(),
    };
    (record, shares)
}

/// A committee on loopback: member 0's `POST /sign` address, what keeps it running, and the
/// group key.
struct Committee {
    addr: SocketAddr,
    group_key: <SigningCurve as Curve>::Affine,
    _nets: Vec<keyquorum_net::NetworkHandle>,
    _dir: tempfile::TempDir,
}

async fn committee(n: usize, t: usize, online: usize) -> Committee {
    let keys = node_keys(n);
    let (record, shares) = signing_key(&keys, t);
    let identities: Vec<Vec<u8>> = keys.iter().map(|k| identity(k)).collect();
    let session = frost_session(&record);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = SignConfig {
        // Generous: the whole committee shares this machine's cores.
        timeout_ms: 120_000,
        rate_per_sec: 1e6,
        burst: 1_000_000,
        ..SignConfig::default()
    };
    let service = |i: usize| {
        let s = SignService::new(
            config.clone(),
            (i == 0).then(|| Token::new(TOKEN.as_bytes())),
            Arc::new(Metrics::new()),
            Fault::None,
        );
        let view = FrostView::new(1, &record, Some((i as u32, Secret::new(shares[i]))))
            .expect("the member's view");
        s.set_frost_view(Some(view));
        let db = NonceDb::open(&dir.path().join(format!("{i}.redb")), keys[i].clone())
            .expect("a nonce store");
        s.set_nonce_db(Arc::new(db));
        s
    };
    let coordinator_service = service(0);
    let (coordinator, _events, _) = net_node(&keys[0]).await;
    coordinator_service.set_network(coordinator.clone());
    let mut nets = vec![coordinator.clone()];
    for i in 1..online {
        let member = service(i);
        let (net, mut events, addrs) = net_node(&keys[i]).await;
        net.set_session_members(session, identities.clone())
            .await
            .expect("session members");
        // On a node the coordinator finds members through the DHT; here it is told.
        coordinator
            .bind_identity(identities[i].clone(), keys[i].peer_id(), addrs)
            .await
            .expect("a bound identity");
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let NetEvent::Request {
                    kind: keyquorum_net::FROST_KIND,
                    from_identity,
                    session,
                    payload,
                    reply,
                    ..
                } = event
                {
                    member.spawn_frost_answer(session, from_identity, payload, reply);
                }
            }
        });
        nets.push(net);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a listener");
    let addr = listener.local_addr().expect("its address");
    let app = http::routes(coordinator_service).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let group_key = SigningCurve::decode_point_nonzero(&record.group_key.0).expect("the group key");
    let c = Committee {
        addr,
        group_key,
        _nets: nets,
        _dir: dir,
    };
    // One request to open the connections to every member before anything is timed.
    c.sign(u64::MAX).await;
    c
}

async fn net_node(
    keys: &NodeKeys,
) -> (
    keyquorum_net::NetworkHandle,
    tokio::sync::mpsc::Receiver<NetEvent>,
    Vec<keyquorum_net::Multiaddr>,
) {
    let mut config = keyquorum_node::network::net_config(
        keys,
        "/ip4/127.0.0.1/tcp/0".parse().expect("a multiaddr"),
        vec![],
    );
    // A node's 5 s per request is ample for one member's round (milliseconds), not for a
    // round of the whole committee queued on this machine's cores.
    config.request_timeout = Duration::from_secs(120);
    // Members find each other through the DHT and connect: one process cannot hold the
    // sockets of a whole committee's mesh, so connections close after a few idle seconds.
    config.idle_connection_timeout = Duration::from_secs(15);
    let (net, events) = keyquorum_net::Network::new(config).expect("a network");
    let addrs = net.listen_addrs().await.expect("listen addresses");
    (net, events, addrs)
}

impl Committee {
    /// Signs message `nonce` (8 bytes) through `POST /sign` and checks the signature.
    async fn sign(&self, nonce: u64) {
        let message = nonce.to_be_bytes();
        let body = format!(
            r#"{{"scheme":"frost-secp256k1","message":"{}"}}"#,
            hex::encode(message)
        );
        let mut stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        let request = format!(
            "POST /sign HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\
             Content-Type: application/json\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.expect("request");
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.expect("answer");
        let text = String::from_utf8(out).expect("UTF-8");
        let json = text.split("\r\n\r\n").nth(1).unwrap_or("");
        assert!(text.starts_with("HTTP/1.1 200"), "not signed: {text}");
        let answer: serde_json::Value = serde_json::from_str(json).expect("JSON");
        let signature =
            hex::decode(answer["signature"].as_str().expect("a signature")).expect("hex");
        let signature = schnorr::Signature::from_bytes(&signature).expect("a signature");
        schnorr::verify(Mode::Rfc9591, &self.group_key, &message, &signature)
            .expect("the signature verifies under the group key");
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut g = c.benchmark_group("frost_sign_loopback");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(20));
    for n in sizes() {
        let t = 2 * n / 3 + 1;
        for (name, online) in [("all_online", n), ("threshold_online", t)] {
            let committee = rt.block_on(committee(n, t, online));
            let mut nonce = 0u64;
            g.bench_with_input(
                BenchmarkId::new(name, format!("n={n},t={t}")),
                &committee,
                |b, committee| {
                    b.iter(|| {
                        nonce += 1;
                        rt.block_on(committee.sign(nonce));
                    })
                },
            );
            drop(committee);
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
