//! HTTP API tests against an in-process chain on a loopback port, through the typed client
//! (server and client share the types of `keyquorum_devchain::api`); raw requests only for what
//! the client never sends (wrong methods, malformed parameters).

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{TempDir, client, request, wait_height};
use keyquorum_devchain::api::{Block, EventsQuery, TxLookup};
use keyquorum_devchain::testkit::{KvMachine, KvTx};
use keyquorum_devchain::{Chain, ChainConfig, ChainError, Client, ClientError};
use serde_json::{Value, json};

fn config(dir: &Path, block_ms: u64) -> ChainConfig {
    ChainConfig {
        data_dir: dir.to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        block_ms,
        max_tx_bytes: 2048,
        ..Default::default()
    }
}

async fn wait_included(chain: &Client, hash: &[u8; 32]) -> TxLookup {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = chain.tx(hash).await.unwrap();
        if matches!(found, TxLookup::Included { .. }) {
            return found;
        }
        assert!(Instant::now() < deadline, "tx not included");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The call failed with the API error `code` and HTTP `status`, with a reason.
fn assert_api_error<T: std::fmt::Debug>(r: Result<T, ClientError>, status: u16, code: &str) {
    match r {
        Err(ClientError::Api {
            status: s,
            code: c,
            reason,
            ..
        }) => {
            assert_eq!((s, c.as_str()), (status, code), "{reason}");
            assert!(!reason.is_empty());
        }
        other => panic!("expected HTTP {status} {code}, got {other:?}"),
    }
}

/// A raw answer is the API's error body with `code` and HTTP `status`.
fn assert_raw_error(r: &common::Resp, status: u16, code: &str) {
    let e = keyquorum_devchain::client::decode::<Value>("raw", r.status, &r.body);
    assert_api_error(e, status, code);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_query_and_views() {
    let dir = TempDir::new("api");
    let chain = Chain::start(config(dir.path(), 40), KvMachine::new(2))
        .await
        .unwrap();
    let api = client(chain.local_addr());

    let tx = KvTx::signed("alice", 1, "color", "blue").to_bytes();
    let submitted = api.submit(tx.clone()).await.unwrap();
    assert_eq!(submitted.hash, KvTx::hash_of(&tx));

    let TxLookup::Included {
        hash,
        events,
        rejected,
        height,
        index,
    } = wait_included(&api, &submitted.hash).await
    else {
        unreachable!()
    };
    assert_eq!(hash, submitted.hash);
    assert_eq!(events[0]["type"], "set");
    assert!(rejected.is_none());
    let block = api.block(height).await.unwrap();
    assert_eq!(block.txs[index as usize].tx, tx);
    assert_eq!(block.computed_hash(), block.hash);
    assert_eq!(
        api.get::<Value>("/query/kv/color").await.unwrap(),
        json!("blue")
    );
    assert_eq!(
        api.get::<Value>("/query/accounts/alice").await.unwrap(),
        json!({"nonce": 1})
    );

    // The state machine's status, decoded as its own type.
    #[derive(serde::Deserialize)]
    struct KvStatus {
        view: u64,
        phase: String,
        phase_deadline: u64,
    }
    let s = api.status::<KvStatus>().await.unwrap();
    let state = s.state.expect("the machine has a status");
    assert!(state.phase_deadline > 0 && !state.phase.is_empty());
    assert!(s.height >= height);
    assert_eq!(api.block(s.height).await.unwrap().hash, s.block_hash);

    // Phases last 2 blocks, views 8: wait for view 1 so view 0 has a magic block.
    wait_height(&api, 9).await;
    let cur: Value = api.get("/views/current").await.unwrap();
    assert!(cur["view"].as_u64().unwrap() >= 1);
    assert!(state.view <= cur["view"].as_u64().unwrap());
    assert_eq!(
        api.get::<Value>("/views/0").await.unwrap()["members"],
        json!(["alice"])
    );
    let mb: Value = api.get("/views/0/magic-block").await.unwrap();
    assert_eq!(mb["view"], 0);
    assert_api_error(api.get::<Value>("/views/999").await, 404, "not_found");
    assert_api_error(
        api.get::<Value>("/views/999/magic-block").await,
        404,
        "not_found",
    );
    assert_api_error(api.get::<Value>("/views/abc").await, 400, "bad_view");
    assert_api_error(
        api.get::<Value>("/views/-1/magic-block").await,
        400,
        "bad_view",
    );
    assert_api_error(
        api.get::<Value>("/query/nothing/here").await,
        404,
        "not_found",
    );

    assert_eq!(api.block(1).await.unwrap().height, 1);
    assert_api_error(api.block(999_999).await, 404, "not_found");
    assert_api_error(api.get::<Block>("/blocks/x").await, 400, "bad_path");
    assert_api_error(api.get::<Value>("/no/such/route").await, 404, "not_found");
    // An answer of another shape than asked for is a decode error, not a panic or a default.
    let e = api.get::<Block>("/views/current").await.unwrap_err();
    assert!(
        matches!(e, ClientError::Decode { status: 200, .. }),
        "{e:?}"
    );

    chain.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_and_changes_nothing() {
    let dir = TempDir::new("bad");
    let chain = Chain::start(config(dir.path(), 40), KvMachine::new(5))
        .await
        .unwrap();
    let addr = chain.local_addr();
    let api = client(addr);

    let good = KvTx::signed("bob", 7, "k", "original").to_bytes();
    let good_hash = api.submit(good.clone()).await.unwrap().hash;
    // Same bytes while pending: duplicate.
    assert_api_error(api.submit(good.clone()).await, 409, "duplicate_tx");
    wait_included(&api, &good_hash).await;

    // Garbage, empty, oversized, badly signed, replayed, stale nonce.
    assert_api_error(
        api.submit(b"\xff\x00garbage".to_vec()).await,
        400,
        "malformed",
    );
    assert_api_error(api.submit(b"{\"from\":1}".to_vec()).await, 400, "malformed");
    assert_api_error(api.submit(Vec::new()).await, 400, "empty_tx");
    assert_api_error(api.submit(vec![b'x'; 4096]).await, 413, "tx_too_large");
    let mut forged = KvTx::signed("bob", 8, "k", "forged");
    forged.value = "evil".into();
    assert_api_error(api.submit(forged.to_bytes()).await, 400, "bad_signature");
    // Replaying the included transaction: its nonce is used up.
    assert_api_error(api.submit(good).await, 400, "stale_nonce");
    let same_nonce = KvTx::signed("bob", 7, "k", "replayed").to_bytes();
    assert_api_error(api.submit(same_nonce).await, 400, "stale_nonce");
    let older = KvTx::signed("bob", 3, "k", "older").to_bytes();
    assert_api_error(api.submit(older).await, 400, "stale_nonce");

    // Wrong methods and malformed parameters.
    for (method, path) in [
        ("GET", "/tx"),
        ("PUT", "/tx"),
        ("DELETE", "/status"),
        ("POST", "/events"),
        ("POST", "/views/current"),
    ] {
        let r = request(addr, method, path, b"").await.unwrap();
        assert_raw_error(&r, 405, "method_not_allowed");
    }
    assert_api_error(api.get::<TxLookup>("/tx/zz").await, 400, "bad_hash");
    assert_api_error(api.tx(&[9; 32]).await, 404, "not_found");
    assert_raw_error(
        &request(addr, "GET", "/events?from=abc", b"").await.unwrap(),
        400,
        "bad_query",
    );
    assert_raw_error(
        &request(addr, "GET", "/events?bogus=1", b"").await.unwrap(),
        400,
        "bad_query",
    );
    // A page of no block would make a poller ask again at the same height forever.
    assert_raw_error(
        &request(addr, "GET", "/events?from=1&limit=0", b"")
            .await
            .unwrap(),
        400,
        "bad_query",
    );

    // Let a few more blocks pass: nothing but the good transaction ever entered the chain.
    let h = chain.height();
    wait_height(&api, h + 3).await;
    let status = chain.status().await.unwrap();
    // (The test machine's view follows the height alone, so it is no witness here.)
    assert_eq!(status.pending_txs, 0);
    assert_eq!(chain.query("kv/k").await.unwrap(), Some(json!("original")));
    assert_eq!(
        chain.query("accounts/bob").await.unwrap(),
        Some(json!({"nonce": 7}))
    );
    let all: Vec<_> = chain
        .blocks_from(1, 10_000)
        .unwrap()
        .into_iter()
        .flat_map(|b| b.txs)
        .collect();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].hash, good_hash);

    chain.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mempool_answers_503() {
    let dir = TempDir::new("full");
    let mut cfg = config(dir.path(), 60_000); // no block during the test
    cfg.max_pending_txs = 1;
    let chain = Chain::start(cfg, KvMachine::new(5)).await.unwrap();
    let api = client(chain.local_addr());
    api.submit(KvTx::signed("dan", 1, "a", "1").to_bytes())
        .await
        .unwrap();
    let full = api
        .submit(KvTx::signed("dan", 2, "a", "2").to_bytes())
        .await;
    assert_api_error(full, 503, "mempool_full");
    chain.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_paging_and_long_poll() {
    let dir = TempDir::new("events");
    let mut cfg = config(dir.path(), 60);
    cfg.max_events_bytes = 1; // one block per response
    let chain = Chain::start(cfg, KvMachine::new(3)).await.unwrap();
    let api = client(chain.local_addr());
    let mut sub = chain.subscribe();

    let tx = KvTx::signed("carol", 1, "a", "b").to_bytes();
    api.submit(tx.clone()).await.unwrap();
    let pushed = tokio::time::timeout(Duration::from_secs(5), sub.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(pushed.height >= 1);

    wait_height(&api, 3).await;
    // Paging: one block per answer because of the byte bound; `next` chains them.
    let mut from = 1;
    let mut parent = [0u8; 32];
    let mut seen_tx = false;
    while from <= 3 {
        let page = api
            .events(EventsQuery {
                from: Some(from),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.blocks.len(), 1, "{page:?}");
        let block = &page.blocks[0];
        assert_eq!(block.height, from);
        assert_eq!(block.parent_hash, parent);
        assert_eq!(block.computed_hash(), block.hash);
        parent = block.hash;
        seen_tx |= block.txs.iter().any(|t| t.hash == KvTx::hash_of(&tx));
        assert_eq!((page.from, page.next), (from, from + 1));
        from += 1;
    }
    assert!(seen_tx);

    // Long-poll for the next block returns as soon as it exists.
    let h = chain.height();
    let started = Instant::now();
    let page = api
        .events(EventsQuery {
            from: Some(h + 1),
            wait_ms: Some(10_000),
            limit: None,
        })
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(page.blocks[0].height, h + 1);
    assert_eq!(page.next, h + 2);

    // Long-poll far ahead times out with an empty list.
    let started = Instant::now();
    let far = EventsQuery {
        from: Some(1_000_000),
        wait_ms: Some(300),
        limit: None,
    };
    let page = api.events(far).await.unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250) && waited < Duration::from_secs(3));
    assert!(page.blocks.is_empty());
    assert_eq!(page.next, 1_000_000);
    // The height is the chain's, not one made up from the request.
    let head = chain.height();
    assert!(
        page.height <= head && page.height + 50 >= head,
        "{page:?}, head {head}"
    );
    let page = api
        .events(EventsQuery {
            from: Some(1_000_000),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(page.height <= chain.height(), "{page:?}");

    chain.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_limit_and_non_loopback_refused() {
    let dir = TempDir::new("limit");
    let chain = Chain::start(config(dir.path(), 20), KvMachine::new(3))
        .await
        .unwrap();
    let api = client(chain.local_addr());
    wait_height(&api, 5).await;
    let page = api
        .events(EventsQuery {
            from: Some(1),
            limit: Some(2),
            wait_ms: None,
        })
        .await
        .unwrap();
    assert_eq!(page.blocks.len(), 2);
    assert_eq!(page.next, 3);
    let page = api.events(EventsQuery::default()).await.unwrap();
    assert!(page.blocks.len() >= 5);
    chain.stop().await.unwrap();

    let mut cfg = config(dir.path(), 20);
    cfg.listen = "0.0.0.0:0".parse().unwrap();
    assert!(Chain::start(cfg, KvMachine::new(3)).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_is_a_typed_timeout_and_a_closed_port_a_transport_error() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            open.push(s);
        }
    });
    let api = client(addr).with_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let e = api.status::<Value>().await.unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // A long poll's timeout is the client's plus the wait asked for.
    let started = Instant::now();
    let e = api
        .events(EventsQuery {
            from: Some(1),
            wait_ms: Some(300),
            limit: None,
        })
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    assert!(started.elapsed() >= Duration::from_millis(500));
    held.abort();

    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = free.local_addr().unwrap();
    drop(free);
    let e = client(closed).status::<Value>().await.unwrap_err();
    assert!(
        matches!(e, ClientError::Transport { .. }) && !e.is_timeout() && e.status().is_none(),
        "{e:?}"
    );
}

/// A loopback TCP relay in front of `target` that counts the connections it accepts.
async fn counting_relay(target: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (addr, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_reuses_its_connection() {
    let dir = TempDir::new("reuse");
    let chain = Chain::start(config(dir.path(), 20), KvMachine::new(3))
        .await
        .unwrap();
    let (relay, accepted) = counting_relay(chain.local_addr()).await;
    let api = client(relay);
    // Sequential requests of every kind, errors included, through clones of one client.
    for i in 0..40u64 {
        let c = api.clone();
        c.status::<Value>().await.unwrap();
        c.events(EventsQuery {
            from: Some(1),
            limit: Some(1),
            wait_ms: None,
        })
        .await
        .unwrap();
        assert_api_error(c.tx(&[i as u8; 32]).await, 404, "not_found");
        c.submit(KvTx::signed("erin", i + 1, "k", "v").to_bytes())
            .await
            .unwrap();
    }
    let opened = accepted.load(Ordering::SeqCst);
    // 160 requests over a kept-alive connection. A few more are tolerated: on a loaded machine
    // the pool may get a request before the previous one's connection is back in it, and opens
    // another. Without reuse it would be one per request.
    assert!(
        (1..=8).contains(&opened),
        "{opened} connections for 160 sequential requests"
    );
    chain.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_in_use_is_named_in_the_error() {
    let dir = TempDir::new("in-use");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let mut cfg = config(dir.path(), 20);
    cfg.listen = addr;
    let e = match Chain::start(cfg, KvMachine::new(3)).await {
        Ok(_) => panic!("started on a port in use"),
        Err(e) => e,
    };
    assert!(matches!(e, ChainError::Bind { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&addr.to_string()), "{msg}");
    let os = std::io::Error::from(std::io::ErrorKind::AddrInUse).to_string();
    assert!(
        msg.to_lowercase().contains("in use") || msg.contains(&os),
        "{msg}"
    );
}
