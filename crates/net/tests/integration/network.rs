//! End-to-end tests over loopback TCP. All nodes live in one process; every
//! test bounds its waits so a regression fails quickly instead of hanging.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;
use keyquorum_net::testing::{TestIdentity, verify_test_signature};
use keyquorum_net::{
    AddressRecord, BEACON_PARTIAL_KIND, BEACON_SYNC_KIND, IdentitySigner, KAD_PROTOCOL,
    MAX_BEACON_PAYLOAD, MAX_SECTIONS_JOIN_PAYLOAD, MAX_SECTIONS_PAYLOAD, MAX_SIGN_ANSWER,
    MAX_SIGN_PAYLOAD, MAX_SYNC_ANSWER, MAX_SYNC_REQUEST, NetConfig, NetError, NetEvent,
    NetworkHandle, RemoteError, RetryPolicy, SECTIONS_JOIN_KIND, SECTIONS_MESSAGE_KIND,
    SIGN_REQUEST_KIND, beacon_session, beacon_sync_session, dht_key,
};
use libp2p::identity::Keypair;
use libp2p::kad::store::{MemoryStore, RecordStore};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{Multiaddr, PeerId, identify, kad, multiaddr::Protocol};
use tokio::sync::mpsc;

const SESSION: [u8; 32] = [0x5e; 32];
const KIND_PUSH: u8 = 1;
const KIND_PULL: u8 = 2;
/// Size of the share-like payload returned for pull requests.
const PULL_LEN: usize = 32 * 1024;

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn loopback() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0".parse().unwrap()
}

fn test_config(identity: &TestIdentity, keypair: Keypair, listen: Multiaddr) -> NetConfig {
    let mut cfg = NetConfig::new(keypair, identity.clone(), verify_test_signature, listen);
    cfg.request_timeout = Duration::from_secs(3);
    cfg.dht_query_timeout = Duration::from_secs(3);
    cfg.retry = RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(500),
    };
    cfg
}

/// What a node's responder task observed.
#[derive(Debug)]
enum Seen {
    Request {
        from: PeerId,
        from_identity: Option<Vec<u8>>,
        kind: u8,
        len: usize,
    },
    Rejected {
        from: PeerId,
        from_identity: Option<Vec<u8>>,
        reason: RemoteError,
    },
}

struct Node {
    handle: NetworkHandle,
    identity: TestIdentity,
    /// First listen address, with `/p2p/<peer id>`.
    addr: Multiaddr,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl Node {
    fn pk(&self) -> Vec<u8> {
        self.identity.public_key()
    }

    fn peer(&self) -> PeerId {
        self.handle.local_peer_id()
    }

    /// Listen address without the peer id.
    fn bare_addr(&self) -> Multiaddr {
        let mut a = self.addr.clone();
        a.pop();
        a
    }
}

/// Answers pushes with `b"ack"` + payload length, pulls with `PULL_LEN`
/// bytes of data, and `reply_len` overrides both when set.
fn spawn_responder(
    mut events: mpsc::Receiver<NetEvent>,
    reply_len: Option<usize>,
) -> mpsc::UnboundedReceiver<Seen> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                NetEvent::Request {
                    from,
                    from_identity,
                    kind,
                    payload,
                    reply,
                    ..
                } => {
                    let response = match (reply_len, kind) {
                        (Some(n), _) => vec![7; n],
                        (None, KIND_PULL) => pull_data(),
                        (None, _) => {
                            let mut r = b"ack".to_vec();
                            r.extend_from_slice(&(payload.len() as u32).to_be_bytes());
                            r
                        }
                    };
                    let _ = reply.send(response);
                    let _ = tx.send(Seen::Request {
                        from,
                        from_identity,
                        kind,
                        len: payload.len(),
                    });
                }
                NetEvent::Rejected {
                    from,
                    from_identity,
                    reason,
                    ..
                } => {
                    let _ = tx.send(Seen::Rejected {
                        from,
                        from_identity,
                        reason,
                    });
                }
                _ => {}
            }
        }
    });
    rx
}

fn pull_data() -> Vec<u8> {
    (0..PULL_LEN).map(|i| (i % 251) as u8).collect()
}

async fn start(cfg: NetConfig, identity: TestIdentity, reply_len: Option<usize>) -> Node {
    let (handle, events) = keyquorum_net::Network::new(cfg).expect("network starts");
    let addrs = within(Duration::from_secs(5), handle.listen_addrs())
        .await
        .expect("listening");
    let addr = addrs[0].clone().with(Protocol::P2p(handle.local_peer_id()));
    Node {
        handle,
        identity,
        addr,
        seen: spawn_responder(events, reply_len),
    }
}

async fn node(bootstrap: Vec<Multiaddr>) -> Node {
    let id = TestIdentity::generate();
    let mut cfg = test_config(&id, Keypair::generate_ed25519(), loopback());
    cfg.bootstrap = bootstrap;
    start(cfg, id, None).await
}

async fn within<F: Future>(limit: Duration, f: F) -> F::Output {
    tokio::time::timeout(limit, f)
        .await
        .expect("operation finished in time")
}

/// Retries `f` until it succeeds or `limit` passes.
async fn eventually<T, E: std::fmt::Debug, F, Fut>(limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => panic!("gave up: {e:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn next_seen(node: &mut Node) -> Seen {
    within(Duration::from_secs(5), node.seen.recv())
        .await
        .expect("responder alive")
}

fn sorted(mut v: Vec<Multiaddr>) -> Vec<Multiaddr> {
    v.sort_by_key(|a| a.to_string());
    v
}

/// (a) Discovery by identity and request/response among three nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_discover_and_exchange() {
    init_tracing();
    let boot = node(vec![]).await;
    let n1 = node(vec![boot.addr.clone()]).await;
    let n2 = node(vec![boot.addr.clone()]).await;
    let mut nodes = [boot, n1, n2];

    for n in &nodes {
        let h = n.handle.clone();
        eventually(Duration::from_secs(10), || {
            let h = h.clone();
            async move { h.publish_address_record().await }
        })
        .await;
    }

    for i in 0..3 {
        for j in 0..3 {
            if i == j {
                continue;
            }
            let h = nodes[i].handle.clone();
            let pk = nodes[j].pk();
            let got = eventually(Duration::from_secs(10), || {
                let (h, pk) = (h.clone(), pk.clone());
                async move { h.lookup(&pk).await }
            })
            .await;
            assert_eq!(sorted(got), vec![nodes[j].bare_addr()], "lookup {i} -> {j}");
        }
    }

    for i in 0..3 {
        for j in 0..3 {
            if i == j {
                continue;
            }
            let payload = vec![i as u8; 1000 + j];
            let resp = nodes[i]
                .handle
                .send(nodes[j].pk(), SESSION, KIND_PUSH, payload)
                .await
                .expect("push delivered");
            let mut expected = b"ack".to_vec();
            expected.extend_from_slice(&((1000 + j) as u32).to_be_bytes());
            assert_eq!(resp, expected);
            let from_pk = nodes[i].pk();
            let from_peer = nodes[i].peer();
            match next_seen(&mut nodes[j]).await {
                Seen::Request {
                    from,
                    from_identity,
                    kind,
                    len,
                } => {
                    assert_eq!(from, from_peer);
                    assert_eq!(from_identity, Some(from_pk));
                    assert_eq!(kind, KIND_PUSH);
                    assert_eq!(len, 1000 + j);
                }
                other => panic!("unexpected {other:?}"),
            }

            // Pull: the response carries the data.
            let data = nodes[i]
                .handle
                .send(nodes[j].pk(), SESSION, KIND_PULL, b"give".to_vec())
                .await
                .expect("pull answered");
            assert_eq!(data, pull_data());
            assert!(matches!(
                next_seen(&mut nodes[j]).await,
                Seen::Request {
                    kind: KIND_PULL,
                    ..
                }
            ));
        }
    }
}

#[derive(NetworkBehaviour)]
struct AttackerBehaviour {
    identify: identify::Behaviour,
    kad: kad::Behaviour<MemoryStore>,
}

/// A plain libp2p node speaking the keyquorum DHT protocol without any
/// record validation; it serves whatever we plant in its store.
struct Attacker {
    peer: PeerId,
    addr: Multiaddr,
    plant: mpsc::UnboundedSender<kad::Record>,
}

async fn spawn_attacker(bootstrap: &Multiaddr) -> Attacker {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| {
            let peer = key.public().to_peer_id();
            // Filtering without ever storing: it serves only what we plant.
            let mut cfg = kad::Config::new(KAD_PROTOCOL);
            cfg.set_record_filtering(kad::StoreInserts::FilterBoth);
            let mut kad = kad::Behaviour::with_config(peer, MemoryStore::new(peer), cfg);
            kad.set_mode(Some(kad::Mode::Server));
            AttackerBehaviour {
                identify: identify::Behaviour::new(identify::Config::new(
                    "/keyquorum/1.0.0".into(),
                    key.public(),
                )),
                kad,
            }
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm.listen_on(loopback()).unwrap();
    let listen = loop {
        if let libp2p::swarm::SwarmEvent::NewListenAddr { address, .. } =
            swarm.select_next_some().await
        {
            break address;
        }
    };
    let peer = *swarm.local_peer_id();
    if let Some(Protocol::P2p(bp)) = bootstrap.iter().last() {
        let mut a = bootstrap.clone();
        a.pop();
        swarm.behaviour_mut().kad.add_address(&bp, a);
    }
    swarm.dial(bootstrap.clone()).unwrap();
    let (plant, mut planted) = mpsc::unbounded_channel::<kad::Record>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                ev = swarm.select_next_some() => {
                    if let libp2p::swarm::SwarmEvent::Behaviour(AttackerBehaviourEvent::Identify(
                        identify::Event::Received { peer_id, info, .. },
                    )) = ev {
                        for a in info.listen_addrs {
                            swarm.behaviour_mut().kad.add_address(&peer_id, a);
                        }
                    }
                }
                rec = planted.recv() => match rec {
                    Some(r) => { swarm.behaviour_mut().kad.store_mut().put(r).unwrap(); }
                    None => break,
                },
            }
        }
    });
    Attacker {
        peer,
        addr: listen,
        plant,
    }
}

/// (b) Forged records served by a non-validating DHT node are ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_records_are_ignored() {
    init_tracing();
    let boot = node(vec![]).await;
    let victim = node(vec![boot.addr.clone()]).await;
    let looker = node(vec![boot.addr.clone()]).await;
    // Control node whose verifier accepts any signature: shows that the
    // forged records do reach lookups and only the verification drops them.
    let control = {
        let id = TestIdentity::generate();
        let mut cfg = test_config(&id, Keypair::generate_ed25519(), loopback());
        cfg.verifier = std::sync::Arc::new(|_: &[u8], _: &[u8], _: &[u8]| true);
        cfg.bootstrap = vec![boot.addr.clone()];
        start(cfg, id, None).await
    };
    let attacker = spawn_attacker(&boot.addr).await;
    for n in [&looker, &control] {
        n.handle
            .add_address_hint(attacker.peer, vec![attacker.addr.clone()])
            .await
            .unwrap();
    }

    let victim_pk = victim.pk();
    let key = kad::RecordKey::new(&dht_key(&victim_pk));
    let fake_addr: Multiaddr = "/ip4/127.0.0.1/tcp/9".parse().unwrap();
    let attacker_id = TestIdentity::generate();

    // 1: victim's identity, garbage signature, maximal sequence.
    let mut forged = AddressRecord {
        identity_public_key: victim_pk.clone(),
        peer_id: attacker.peer,
        addresses: vec![fake_addr.clone()],
        sequence: u64::MAX,
        signature: vec![0xab; 64],
    };
    attacker
        .plant
        .send(kad::Record::new(key.clone(), forged.encode().unwrap()))
        .unwrap();
    let seen_by_control = eventually(Duration::from_secs(10), || {
        let h = control.handle.clone();
        let pk = victim_pk.clone();
        async move { h.lookup(&pk).await }
    })
    .await;
    assert_eq!(seen_by_control, vec![fake_addr.clone()]);
    assert!(matches!(
        looker.handle.lookup(&victim_pk).await,
        Err(NetError::NotFound)
    ));

    // 2: victim's identity, signed by another identity's key.
    forged.signature = attacker_id.sign(&forged.signing_message().unwrap());
    attacker
        .plant
        .send(kad::Record::new(key.clone(), forged.encode().unwrap()))
        .unwrap();
    assert!(matches!(
        looker.handle.lookup(&victim_pk).await,
        Err(NetError::NotFound)
    ));

    // 3: a correctly self-signed record of another identity, planted under
    // the victim's key.
    let own =
        AddressRecord::new_signed(&attacker_id, attacker.peer, vec![fake_addr.clone()], 1).unwrap();
    attacker
        .plant
        .send(kad::Record::new(key.clone(), own.encode().unwrap()))
        .unwrap();
    assert!(matches!(
        looker.handle.lookup(&victim_pk).await,
        Err(NetError::NotFound)
    ));

    // Once the victim publishes, its genuine record wins although the forged
    // one claims a higher sequence number.
    forged.signature = vec![1; 64];
    attacker
        .plant
        .send(kad::Record::new(key.clone(), forged.encode().unwrap()))
        .unwrap();
    eventually(Duration::from_secs(10), || {
        let h = victim.handle.clone();
        async move { h.publish_address_record().await }
    })
    .await;
    let got = looker
        .handle
        .lookup(&victim_pk)
        .await
        .expect("genuine record");
    assert_eq!(got, vec![victim.bare_addr()]);
    let record = looker.handle.lookup_record(&victim_pk).await.unwrap();
    assert_eq!(record.peer_id, victim.peer());
    assert_ne!(record.sequence, u64::MAX);
}

/// (c) Size limits are enforced on both sides without sending or buffering
/// the oversize message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_messages_are_rejected() {
    init_tracing();
    let mut receiver = node(vec![]).await;
    let sender = node(vec![]).await;
    sender
        .handle
        .add_address_hint(receiver.peer(), vec![receiver.bare_addr()])
        .await
        .unwrap();

    // Just under the 4 MiB default goes through.
    let ok_len = 4 * 1024 * 1024 - 4096;
    let resp = within(
        Duration::from_secs(10),
        sender
            .handle
            .send(receiver.peer(), SESSION, KIND_PUSH, vec![1; ok_len]),
    )
    .await
    .expect("large but legal request");
    assert_eq!(&resp[..3], b"ack");
    assert!(matches!(next_seen(&mut receiver).await, Seen::Request { len, .. } if len == ok_len));

    // Over the local limit: refused before anything is sent.
    let started = Instant::now();
    let err = sender
        .handle
        .send(
            receiver.peer(),
            SESSION,
            KIND_PUSH,
            vec![0; 5 * 1024 * 1024],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::MessageTooLarge { max, .. } if max == 4 * 1024 * 1024));
    assert!(started.elapsed() < Duration::from_secs(1));

    // A sender with a larger limit: the receiver's codec resets the stream.
    let big_sender = {
        let id = TestIdentity::generate();
        let mut cfg = test_config(&id, Keypair::generate_ed25519(), loopback());
        cfg.max_request_size = 16 * 1024 * 1024;
        cfg.retry.attempts = 1;
        start(cfg, id, None).await
    };
    big_sender
        .handle
        .add_address_hint(receiver.peer(), vec![receiver.bare_addr()])
        .await
        .unwrap();
    let err = within(
        Duration::from_secs(10),
        big_sender.handle.send(
            receiver.peer(),
            SESSION,
            KIND_PUSH,
            vec![0; 5 * 1024 * 1024],
        ),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            NetError::Stream { .. } | NetError::ConnectionClosed { .. }
        ),
        "unexpected {err:?}"
    );
    assert!(
        receiver.seen.try_recv().is_err(),
        "oversize request delivered"
    );

    // Responses: a reply over the responder's own limit becomes an error
    // status; one over the requester's limit is refused by its codec.
    let chatty = {
        let id = TestIdentity::generate();
        let cfg = test_config(&id, Keypair::generate_ed25519(), loopback());
        start(cfg, id, Some(100 * 1024)).await
    };
    let very_chatty = {
        let id = TestIdentity::generate();
        let mut cfg = test_config(&id, Keypair::generate_ed25519(), loopback());
        cfg.max_response_size = 1024 * 1024;
        start(cfg, id, Some(100 * 1024)).await
    };
    for n in [&chatty, &very_chatty] {
        sender
            .handle
            .add_address_hint(n.peer(), vec![n.bare_addr()])
            .await
            .unwrap();
    }
    let err = sender
        .handle
        .send(chatty.peer(), SESSION, KIND_PULL, vec![])
        .await
        .unwrap_err();
    assert!(
        matches!(err, NetError::Remote(RemoteError::ResponseTooLarge)),
        "{err:?}"
    );
    let err = within(
        Duration::from_secs(15),
        sender
            .handle
            .send(very_chatty.peer(), SESSION, KIND_PULL, vec![]),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, NetError::RetriesExhausted { last, .. }
            if matches!(**last, NetError::Stream { .. } | NetError::ConnectionClosed { .. })),
        "{err:?}"
    );
}

/// (d) Session allow-lists admit members only, based on the identity the
/// requester proves with its own signed record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_members_are_rejected() {
    init_tracing();
    let mut receiver = node(vec![]).await;
    let member = node(vec![]).await;
    let outsider = node(vec![]).await;
    for n in [&member, &outsider] {
        n.handle
            .add_address_hint(receiver.peer(), vec![receiver.bare_addr()])
            .await
            .unwrap();
    }
    receiver
        .handle
        .set_session_members(SESSION, vec![member.pk()])
        .await
        .unwrap();

    let resp = member
        .handle
        .send(receiver.peer(), SESSION, KIND_PUSH, b"hi".to_vec())
        .await
        .expect("member admitted");
    assert_eq!(&resp[..3], b"ack");
    assert!(matches!(
        next_seen(&mut receiver).await,
        Seen::Request { from_identity: Some(id), .. } if id == member.pk()
    ));

    let err = outsider
        .handle
        .send(receiver.peer(), SESSION, KIND_PUSH, b"hi".to_vec())
        .await
        .unwrap_err();
    assert!(
        matches!(err, NetError::Remote(RemoteError::NotMember)),
        "{err:?}"
    );
    match next_seen(&mut receiver).await {
        Seen::Rejected {
            from,
            from_identity,
            reason,
        } => {
            assert_eq!(from, outsider.peer());
            assert_eq!(from_identity, Some(outsider.pk()));
            assert_eq!(reason, RemoteError::NotMember);
        }
        other => panic!("unexpected {other:?}"),
    }

    // Other sessions are unaffected; clearing the list opens this one.
    let other_session = [0x77; 32];
    outsider
        .handle
        .send(receiver.peer(), other_session, KIND_PUSH, vec![])
        .await
        .expect("no allow-list for this session");
    receiver.handle.clear_session(SESSION).await.unwrap();
    outsider
        .handle
        .send(receiver.peer(), SESSION, KIND_PUSH, vec![])
        .await
        .expect("allow-list cleared");
}

/// (e) A peer that starts listening late is reached within the retry budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_reach_a_late_peer() {
    init_tracing();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let late_addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    let late_key = Keypair::generate_ed25519();
    let late_peer = late_key.public().to_peer_id();

    let sender = {
        let id = TestIdentity::generate();
        let mut cfg = test_config(&id, Keypair::generate_ed25519(), loopback());
        // A budget of about ten seconds: the late peer starts 0.7 s in, and its start-up may
        // take seconds on a loaded machine.
        cfg.retry = RetryPolicy {
            attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(2000),
        };
        start(cfg, id, None).await
    };
    sender
        .handle
        .add_address_hint(late_peer, vec![late_addr.clone()])
        .await
        .unwrap();

    // Nobody listening and a small budget: the error says so.
    let impatient = {
        let id = TestIdentity::generate();
        let mut cfg = test_config(&id, Keypair::generate_ed25519(), loopback());
        cfg.retry.attempts = 2;
        start(cfg, id, None).await
    };
    impatient
        .handle
        .add_address_hint(late_peer, vec![late_addr.clone()])
        .await
        .unwrap();
    let err = impatient
        .handle
        .send(late_peer, SESSION, KIND_PUSH, vec![1])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NetError::RetriesExhausted { attempts: 2, last } if matches!(**last, NetError::Dial { .. })),
        "{err:?}"
    );

    let started = Instant::now();
    let h = sender.handle.clone();
    let pending = tokio::spawn(async move {
        h.send(late_peer, SESSION, KIND_PULL, b"share?".to_vec())
            .await
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    let late = {
        let id = TestIdentity::generate();
        let cfg = test_config(&id, late_key, late_addr);
        start(cfg, id, None).await
    };
    let data = within(Duration::from_secs(30), pending)
        .await
        .unwrap()
        .expect("delivered after retries");
    assert_eq!(data, pull_data());
    assert!(started.elapsed() >= Duration::from_millis(700));
    drop(late);
}

/// Chain-provided address hints (no peer id, no DHT) lead to the identity
/// only after the peer proves it with a signed record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_hint_is_verified_by_handshake() {
    init_tracing();
    let mut target = node(vec![]).await;
    let impostor = node(vec![]).await;
    let sender = node(vec![]).await;

    // A hint pointing at the wrong node is not enough.
    sender
        .handle
        .add_address_hint(target.pk(), vec![impostor.bare_addr()])
        .await
        .unwrap();
    let err = sender
        .handle
        .send(target.pk(), SESSION, KIND_PUSH, vec![1])
        .await
        .unwrap_err();
    assert!(
        err.is_retryable() || matches!(err, NetError::RetriesExhausted { .. }),
        "{err:?}"
    );

    sender
        .handle
        .add_address_hint(target.pk(), vec![target.bare_addr()])
        .await
        .unwrap();
    let resp = sender
        .handle
        .send(target.pk(), SESSION, KIND_PUSH, vec![1, 2, 3])
        .await
        .expect("reached via verified hint");
    assert_eq!(&resp[..3], b"ack");
    assert!(matches!(
        next_seen(&mut target).await,
        Seen::Request { from, from_identity: Some(id), .. } if from == sender.peer() && id == sender.pk()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_is_named_with_the_os_reason() {
    init_tracing();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let listen: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    let id = TestIdentity::generate();
    let cfg = test_config(&id, Keypair::generate_ed25519(), listen);
    let err = match keyquorum_net::Network::new(cfg) {
        Ok(_) => panic!("listening on a taken port succeeded"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(matches!(err, NetError::Listen { .. }), "{text}");
    assert!(
        text.contains(&format!("/ip4/127.0.0.1/tcp/{port}")),
        "{text}"
    );
    // The OS's own words ("Address already in use (os error 98)" on Linux).
    assert!(
        text.to_lowercase().contains("in use"),
        "the OS reason is missing: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_cannot_listen_on_a_running_nodes_port() {
    init_tracing();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    let first_id = TestIdentity::generate();
    let _first = keyquorum_net::Network::new(test_config(
        &first_id,
        Keypair::generate_ed25519(),
        listen.clone(),
    ))
    .expect("the first node listens");
    // libp2p binds its listeners with SO_REUSEPORT: without the check the second one would
    // listen too, and the kernel would split the first node's connections between them.
    let second_id = TestIdentity::generate();
    let err = match keyquorum_net::Network::new(test_config(
        &second_id,
        Keypair::generate_ed25519(),
        listen,
    )) {
        Ok(_) => panic!("a second node listened on a running node's port"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(matches!(err, NetError::Listen { .. }), "{text}");
    assert!(text.to_lowercase().contains("in use"), "{text}");
}

/// A loopback address where nobody listens (the port was bound and released).
fn dead_addr() -> Multiaddr {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
}

/// Three nodes in one DHT, every record published: a lookup would succeed, so a test that
/// sees no lookup shows that none was needed.
async fn published_trio() -> (Node, Node, Node) {
    let boot = node(vec![]).await;
    let target = node(vec![boot.addr.clone()]).await;
    let sender = node(vec![boot.addr.clone()]).await;
    for n in [&boot, &target, &sender] {
        let h = n.handle.clone();
        eventually(Duration::from_secs(10), || {
            let h = h.clone();
            async move { h.publish_address_record().await }
        })
        .await;
    }
    (boot, target, sender)
}

fn assert_from(seen: Seen, sender: &Node) {
    match seen {
        Seen::Request {
            from,
            from_identity,
            ..
        } => {
            assert_eq!(from, sender.peer());
            assert_eq!(from_identity, Some(sender.pk()));
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// An identity bound to its peer id at the right address is reached with no DHT walk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_identity_is_reached_without_a_dht_walk() {
    init_tracing();
    let (boot, mut target, sender) = published_trio().await;
    sender
        .handle
        .bind_identity(target.pk(), target.peer(), vec![target.addr.clone()])
        .await
        .unwrap();
    for i in 0..3u8 {
        let resp = sender
            .handle
            .send(target.pk(), SESSION, KIND_PUSH, vec![i; 10])
            .await
            .expect("delivered to the bound peer");
        assert_eq!(&resp[..3], b"ack");
        assert_from(next_seen(&mut target).await, &sender);
    }
    assert_eq!(sender.handle.stats().dht_lookups, 0);
    assert_eq!(sender.handle.stats().binding_fallbacks, 0);

    // The counter does count walks: an unbound identity is looked up.
    sender
        .handle
        .send(boot.pk(), SESSION, KIND_PUSH, vec![1])
        .await
        .expect("delivered after a lookup");
    assert_eq!(sender.handle.stats().dht_lookups, 1);
}

/// A bound address where nobody listens costs a failed dial, then the DHT finds the identity
/// and its record is used from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bound_address_falls_back_to_the_dht() {
    init_tracing();
    let boot = node(vec![]).await;
    let mut target = node(vec![boot.addr.clone()]).await;
    eventually(Duration::from_secs(10), || {
        let h = target.handle.clone();
        async move { h.publish_address_record().await }
    })
    .await;
    // The sender joins only when it sends: a node that has met the target in the DHT
    // already would dial it at the address the DHT taught it, binding or not.
    let sender = node(vec![]).await;
    sender
        .handle
        .bind_identity(target.pk(), target.peer(), vec![dead_addr()])
        .await
        .unwrap();
    sender
        .handle
        .add_address_hint(boot.peer(), vec![boot.bare_addr()])
        .await
        .unwrap();
    sender
        .handle
        .send(target.pk(), SESSION, KIND_PUSH, vec![1])
        .await
        .expect("delivered through the DHT");
    assert_from(next_seen(&mut target).await, &sender);
    let stats = sender.handle.stats();
    assert_eq!(stats.binding_fallbacks, 1);
    assert_eq!(stats.dht_lookups, 1);

    sender
        .handle
        .send(target.pk(), SESSION, KIND_PUSH, vec![2])
        .await
        .expect("delivered");
    assert_from(next_seen(&mut target).await, &sender);
    assert_eq!(sender.handle.stats(), stats);
}

/// With no DHT to fall back on, a peer whose Noise key is not the bound peer id is refused,
/// whether the binding's address leads to it or names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_another_noise_key_is_refused() {
    init_tracing();
    let target = node(vec![]).await;
    let mut impostor = node(vec![]).await;
    let sender = {
        let id = TestIdentity::generate();
        let mut cfg = test_config(&id, Keypair::generate_ed25519(), loopback());
        cfg.retry.attempts = 1;
        start(cfg, id, None).await
    };

    for addr in [impostor.bare_addr(), impostor.addr.clone()] {
        sender
            .handle
            .bind_identity(target.pk(), target.peer(), vec![addr.clone()])
            .await
            .unwrap();
        let before = sender.handle.stats();
        let err = sender
            .handle
            .send(target.pk(), SESSION, KIND_PUSH, vec![1])
            .await
            .unwrap_err();
        assert!(
            matches!(err, NetError::NotFound | NetError::Dht(_)),
            "{addr}: {err:?}"
        );
        let after = sender.handle.stats();
        assert_eq!(after.binding_fallbacks, before.binding_fallbacks + 1);
        assert_eq!(after.dht_lookups, before.dht_lookups + 1);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        impostor.seen.try_recv().is_err(),
        "the impostor got a request"
    );

    // The same binding at the right address works: only the key was wrong.
    sender
        .handle
        .bind_identity(target.pk(), target.peer(), vec![target.bare_addr()])
        .await
        .unwrap();
    sender
        .handle
        .send(target.pk(), SESSION, KIND_PUSH, vec![1])
        .await
        .expect("delivered to the bound peer");
}

/// Beacon partials: the view's session admits committee members only, and a request of the
/// beacon kind larger than its bound is refused before the application sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beacon_partials_are_bounded_and_from_members_only() {
    init_tracing();
    let mut receiver = node(vec![]).await;
    let member = node(vec![]).await;
    let outsider = node(vec![]).await;
    for n in [&member, &outsider] {
        n.handle
            .bind_identity(receiver.pk(), receiver.peer(), vec![receiver.bare_addr()])
            .await
            .unwrap();
    }
    let session = beacon_session(&[5; 32]);
    receiver
        .handle
        .set_session_members(session, vec![member.pk()])
        .await
        .unwrap();

    member
        .handle
        .send_beacon_partial(receiver.pk(), session, vec![1; MAX_BEACON_PAYLOAD])
        .await
        .expect("a member's partial is admitted");
    match next_seen(&mut receiver).await {
        Seen::Request {
            from_identity,
            kind,
            len,
            ..
        } => {
            assert_eq!(from_identity, Some(member.pk()));
            assert_eq!(kind, BEACON_PARTIAL_KIND);
            assert_eq!(len, MAX_BEACON_PAYLOAD);
        }
        other => panic!("unexpected {other:?}"),
    }

    // One byte over the bound: refused by the sender, and by the receiver when sent anyway.
    let err = member
        .handle
        .send_beacon_partial(receiver.pk(), session, vec![1; MAX_BEACON_PAYLOAD + 1])
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::MessageTooLarge { .. }), "{err:?}");
    let err = member
        .handle
        .send(
            receiver.peer(),
            session,
            BEACON_PARTIAL_KIND,
            vec![1; MAX_BEACON_PAYLOAD + 1],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, NetError::Remote(RemoteError::Malformed)),
        "{err:?}"
    );
    assert!(matches!(
        next_seen(&mut receiver).await,
        Seen::Rejected {
            reason: RemoteError::Malformed,
            ..
        }
    ));

    // Not a member of the committee.
    let err = outsider
        .handle
        .send_beacon_partial(receiver.pk(), session, vec![1; 8])
        .await
        .unwrap_err();
    assert!(
        matches!(err, NetError::Remote(RemoteError::NotMember)),
        "{err:?}"
    );
    assert!(matches!(
        next_seen(&mut receiver).await,
        Seen::Rejected { reason: RemoteError::NotMember, from_identity: Some(id), .. }
            if id == outsider.pk()
    ));
}

/// Signing requests: the view's session admits committee members only, a request larger than
/// its bound is refused on both sides, and an answer larger than a partial is refused at the
/// asking side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_requests_are_bounded_and_from_members_only() {
    init_tracing();
    let mut receiver = node(vec![]).await;
    let member = node(vec![]).await;
    let outsider = node(vec![]).await;
    let id = TestIdentity::generate();
    let verbose = start(
        test_config(&id, Keypair::generate_ed25519(), loopback()),
        id,
        Some(MAX_SIGN_ANSWER + 1),
    )
    .await;
    for n in [&member, &outsider] {
        for to in [&receiver, &verbose] {
            n.handle
                .bind_identity(to.pk(), to.peer(), vec![to.bare_addr()])
                .await
                .unwrap();
        }
    }
    let session = beacon_session(&[6; 32]);
    for to in [&receiver, &verbose] {
        to.handle
            .set_session_members(session, vec![member.pk()])
            .await
            .unwrap();
    }

    let answer = member
        .handle
        .send_sign_request(receiver.pk(), session, vec![1; MAX_SIGN_PAYLOAD])
        .await
        .expect("a member's request is admitted");
    assert!(answer.starts_with(b"ack"));
    match next_seen(&mut receiver).await {
        Seen::Request {
            from_identity,
            kind,
            len,
            ..
        } => {
            assert_eq!(from_identity, Some(member.pk()));
            assert_eq!(kind, SIGN_REQUEST_KIND);
            assert_eq!(len, MAX_SIGN_PAYLOAD);
        }
        other => panic!("unexpected {other:?}"),
    }

    let err = member
        .handle
        .send_sign_request(receiver.pk(), session, vec![1; MAX_SIGN_PAYLOAD + 1])
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::MessageTooLarge { .. }), "{err:?}");
    let err = member
        .handle
        .send(
            receiver.peer(),
            session,
            SIGN_REQUEST_KIND,
            vec![1; MAX_SIGN_PAYLOAD + 1],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, NetError::Remote(RemoteError::Malformed)),
        "{err:?}"
    );
    assert!(matches!(
        next_seen(&mut receiver).await,
        Seen::Rejected {
            reason: RemoteError::Malformed,
            ..
        }
    ));

    let err = outsider
        .handle
        .send_sign_request(receiver.pk(), session, vec![1; 8])
        .await
        .unwrap_err();
    assert!(
        matches!(err, NetError::Remote(RemoteError::NotMember)),
        "{err:?}"
    );

    let err = member
        .handle
        .send_sign_request(verbose.pk(), session, vec![1; 8])
        .await
        .unwrap_err();
    assert!(
        matches!(err, NetError::Remote(RemoteError::Malformed)),
        "{err:?}"
    );
}

/// Section messages and join requests: each kind is refused above its bound by the sender and,
/// when sent anyway, by the receiver before the application sees it; at the bound it arrives
/// attributed to the sender's identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn section_requests_are_bounded_by_kind() {
    init_tracing();
    let mut receiver = node(vec![]).await;
    let sender = node(vec![]).await;
    sender
        .handle
        .bind_identity(receiver.pk(), receiver.peer(), vec![receiver.bare_addr()])
        .await
        .unwrap();
    let receiver_pk = receiver.pk();
    let receiver_peer = receiver.peer();
    for (kind, max) in [
        (SECTIONS_JOIN_KIND, MAX_SECTIONS_JOIN_PAYLOAD),
        (SECTIONS_MESSAGE_KIND, MAX_SECTIONS_PAYLOAD),
    ] {
        let send = |len: usize| {
            let h = sender.handle.clone();
            let to = receiver_pk.clone();
            async move {
                if kind == SECTIONS_JOIN_KIND {
                    h.send_section_join(to, vec![1; len]).await
                } else {
                    h.send_section_message(to, [9; 32], vec![1; len]).await
                }
            }
        };
        let ok = send(max);
        let seen = next_seen(&mut receiver);
        let (sent, seen) = tokio::join!(ok, seen);
        sent.expect("a request at the bound is admitted");
        match seen {
            Seen::Request {
                from_identity,
                kind: k,
                len,
                ..
            } => {
                assert_eq!(from_identity, Some(sender.pk()));
                assert_eq!(k, kind);
                assert_eq!(len, max);
            }
            other => panic!("unexpected {other:?}"),
        }
        let err = send(max + 1).await.unwrap_err();
        assert!(matches!(err, NetError::MessageTooLarge { .. }), "{err:?}");
        let err = sender
            .handle
            .send(receiver_peer, [9; 32], kind, vec![1; max + 1])
            .await
            .unwrap_err();
        assert!(
            matches!(err, NetError::Remote(RemoteError::Malformed)),
            "{err:?}"
        );
        assert!(matches!(
            next_seen(&mut receiver).await,
            Seen::Rejected {
                reason: RemoteError::Malformed,
                ..
            }
        ));
    }
}

/// Requests for beacon rounds: admitted from any node while a view's committee session admits
/// members only, a request larger than its bound is refused on both sides, and an answer
/// larger than a full batch is refused at the asking side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_requests_are_open_to_anyone_and_bounded_both_ways() {
    init_tracing();
    let mut receiver = node(vec![]).await;
    let outsider = node(vec![]).await;
    let id = TestIdentity::generate();
    let verbose = start(
        test_config(&id, Keypair::generate_ed25519(), loopback()),
        id,
        Some(MAX_SYNC_ANSWER + 1),
    )
    .await;
    for to in [&receiver, &verbose] {
        outsider
            .handle
            .bind_identity(to.pk(), to.peer(), vec![to.bare_addr()])
            .await
            .unwrap();
        // The committee's session has an allow-list the outsider is not on.
        to.handle
            .set_session_members(beacon_session(&[7; 32]), vec![vec![1; 32]])
            .await
            .unwrap();
    }

    let answer = outsider
        .handle
        .send_beacon_sync(receiver.pk(), vec![1; MAX_SYNC_REQUEST])
        .await
        .expect("anyone may ask for rounds");
    assert!(answer.starts_with(b"ack"));
    match next_seen(&mut receiver).await {
        Seen::Request {
            from_identity,
            kind,
            len,
            ..
        } => {
            assert_eq!(from_identity, Some(outsider.pk()));
            assert_eq!(kind, BEACON_SYNC_KIND);
            assert_eq!(len, MAX_SYNC_REQUEST);
        }
        other => panic!("unexpected {other:?}"),
    }

    let err = outsider
        .handle
        .send_beacon_sync(receiver.pk(), vec![1; MAX_SYNC_REQUEST + 1])
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::MessageTooLarge { .. }), "{err:?}");
    let err = outsider
        .handle
        .send(
            receiver.peer(),
            beacon_sync_session(),
            BEACON_SYNC_KIND,
            vec![1; MAX_SYNC_REQUEST + 1],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, NetError::Remote(RemoteError::Malformed)),
        "{err:?}"
    );
    assert!(matches!(
        next_seen(&mut receiver).await,
        Seen::Rejected {
            reason: RemoteError::Malformed,
            ..
        }
    ));

    let err = outsider
        .handle
        .send_beacon_sync(verbose.pk(), vec![1; MAX_SYNC_REQUEST])
        .await
        .unwrap_err();
    assert!(
        matches!(err, NetError::Remote(RemoteError::Malformed)),
        "{err:?}"
    );
}
