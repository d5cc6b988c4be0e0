//! HTTP API tests against an in-process chain on a loopback port.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{TempDir, get, post, request, wait_height};
use keyquorum_devchain::testkit::{KvMachine, KvTx};
use keyquorum_devchain::{Chain, ChainConfig, ChainError};
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

async fn wait_included(addr: std::net::SocketAddr, hash: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(addr, &format!("/tx/{hash}")).await;
        assert_eq!(r.status, 200, "{:?}", r.json());
        let v = r.json();
        if v["status"] == "included" {
            return v;
        }
        assert!(Instant::now() < deadline, "tx {hash} not included");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_error(r: &common::Resp, status: u16, code: &str) {
    let v = r.json();
    assert_eq!(r.status, status, "{v}");
    assert_eq!(v["error"], code, "{v}");
    assert!(v["reason"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_query_and_views() {
    let dir = TempDir::new("api");
    let chain = Chain::start(config(dir.path(), 40), KvMachine::new(2))
        .await
        .unwrap();
    let addr = chain.local_addr();

    let tx = KvTx::signed("alice", 1, "color", "blue").to_bytes();
    let r = post(addr, "/tx", &tx).await;
    assert_eq!(r.status, 200);
    let hash = r.json()["hash"].as_str().unwrap().to_owned();
    assert_eq!(hash, hex::encode(KvTx::hash_of(&tx)));

    let inc = wait_included(addr, &hash).await;
    assert_eq!(inc["events"][0]["type"], "set");
    assert!(inc.get("rejected").is_none());
    assert_eq!(get(addr, "/query/kv/color").await.json(), json!("blue"));
    assert_eq!(
        get(addr, "/query/accounts/alice").await.json(),
        json!({"nonce": 1})
    );

    let s = get(addr, "/status").await;
    assert_eq!(s.status, 200);
    let s = s.json();
    for field in [
        "height",
        "block_hash",
        "pending_txs",
        "view",
        "phase",
        "phase_deadline",
    ] {
        assert!(s.get(field).is_some(), "status lacks {field}: {s}");
    }

    // Phases last 2 blocks, views 8: wait for view 1 so view 0 has a magic block.
    wait_height(addr, 9).await;
    let cur = get(addr, "/views/current").await;
    assert_eq!(cur.status, 200);
    assert!(cur.json()["view"].as_u64().unwrap() >= 1);
    assert_eq!(
        get(addr, "/views/0").await.json()["members"],
        json!(["alice"])
    );
    let mb = get(addr, "/views/0/magic-block").await;
    assert_eq!(mb.status, 200);
    assert_eq!(mb.json()["view"], 0);
    assert_error(&get(addr, "/views/999").await, 404, "not_found");
    assert_error(&get(addr, "/views/999/magic-block").await, 404, "not_found");
    assert_error(&get(addr, "/views/abc").await, 400, "bad_view");
    assert_error(&get(addr, "/views/-1/magic-block").await, 400, "bad_view");
    assert_error(&get(addr, "/query/nothing/here").await, 404, "not_found");

    let b1 = get(addr, "/blocks/1").await;
    assert_eq!(b1.status, 200);
    assert_eq!(b1.json()["height"], 1);
    assert_error(&get(addr, "/blocks/999999").await, 404, "not_found");
    assert_error(&get(addr, "/blocks/x").await, 400, "bad_path");
    assert_error(&get(addr, "/no/such/route").await, 404, "not_found");

    chain.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_and_changes_nothing() {
    let dir = TempDir::new("bad");
    let chain = Chain::start(config(dir.path(), 40), KvMachine::new(5))
        .await
        .unwrap();
    let addr = chain.local_addr();

    let good = KvTx::signed("bob", 7, "k", "original").to_bytes();
    let r = post(addr, "/tx", &good).await;
    assert_eq!(r.status, 200);
    let good_hash = r.json()["hash"].as_str().unwrap().to_owned();
    // Same bytes while pending: duplicate.
    assert_error(&post(addr, "/tx", &good).await, 409, "duplicate_tx");
    wait_included(addr, &good_hash).await;

    let before = chain.status().await.unwrap().state;

    // Garbage, empty, oversized, badly signed, replayed, stale nonce.
    assert_error(
        &post(addr, "/tx", b"\xff\x00garbage").await,
        400,
        "malformed",
    );
    assert_error(&post(addr, "/tx", b"{\"from\":1}").await, 400, "malformed");
    assert_error(&post(addr, "/tx", b"").await, 400, "empty_tx");
    assert_error(
        &post(addr, "/tx", &vec![b'x'; 4096]).await,
        413,
        "tx_too_large",
    );
    let mut forged = KvTx::signed("bob", 8, "k", "forged");
    forged.value = "evil".into();
    assert_error(
        &post(addr, "/tx", &forged.to_bytes()).await,
        400,
        "bad_signature",
    );
    // Replaying the included transaction: its nonce is used up.
    assert_error(&post(addr, "/tx", &good).await, 400, "stale_nonce");
    let same_nonce = KvTx::signed("bob", 7, "k", "replayed").to_bytes();
    assert_error(&post(addr, "/tx", &same_nonce).await, 400, "stale_nonce");
    let older = KvTx::signed("bob", 3, "k", "older").to_bytes();
    assert_error(&post(addr, "/tx", &older).await, 400, "stale_nonce");

    // Wrong methods and malformed parameters.
    for (method, path) in [
        ("GET", "/tx"),
        ("PUT", "/tx"),
        ("DELETE", "/status"),
        ("POST", "/events"),
        ("POST", "/views/current"),
    ] {
        let r = request(addr, method, path, b"").await.unwrap();
        assert_error(&r, 405, "method_not_allowed");
    }
    assert_error(&get(addr, "/tx/zz").await, 400, "bad_hash");
    assert_error(
        &get(addr, &format!("/tx/{}", hex::encode([9u8; 32]))).await,
        404,
        "not_found",
    );
    assert_error(&get(addr, "/events?from=abc").await, 400, "bad_query");
    assert_error(&get(addr, "/events?bogus=1").await, 400, "bad_query");

    // Let a few more blocks pass: nothing but the good transaction ever entered the chain.
    let h = chain.height();
    wait_height(addr, h + 3).await;
    let status = chain.status().await.unwrap();
    assert_eq!(status.pending_txs, 0);
    assert_eq!(
        status.state.as_ref().unwrap()["view"],
        before.unwrap()["view"]
    );
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
    assert_eq!(hex::encode(all[0].hash), good_hash);

    chain.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_paging_and_long_poll() {
    let dir = TempDir::new("events");
    let mut cfg = config(dir.path(), 60);
    cfg.max_events_bytes = 1; // one block per response
    let chain = Chain::start(cfg, KvMachine::new(3)).await.unwrap();
    let addr = chain.local_addr();
    let mut sub = chain.subscribe();

    let tx = KvTx::signed("carol", 1, "a", "b").to_bytes();
    assert_eq!(post(addr, "/tx", &tx).await.status, 200);
    let pushed = tokio::time::timeout(Duration::from_secs(5), sub.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(pushed.height >= 1);

    wait_height(addr, 3).await;
    // Paging: one block per answer because of the byte bound; `next` chains them.
    let mut from = 1;
    let mut parent = hex::encode([0u8; 32]);
    let mut seen_tx = false;
    while from <= 3 {
        let r = get(addr, &format!("/events?from={from}")).await;
        assert_eq!(r.status, 200);
        let v = r.json();
        let blocks = v["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 1, "{v}");
        assert_eq!(blocks[0]["height"], from);
        assert_eq!(blocks[0]["parent_hash"], json!(parent));
        parent = blocks[0]["hash"].as_str().unwrap().to_owned();
        seen_tx |= blocks[0]["txs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["hash"] == json!(hex::encode(KvTx::hash_of(&tx))));
        assert_eq!(v["next"], from + 1);
        from += 1;
    }
    assert!(seen_tx);

    // Long-poll for the next block returns as soon as it exists.
    let h = chain.height();
    let started = Instant::now();
    let r = get(addr, &format!("/events?from={}&wait_ms=10000", h + 1)).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let v = r.json();
    assert_eq!(v["blocks"][0]["height"], h + 1);
    assert_eq!(v["next"], h + 2);

    // Long-poll far ahead times out with an empty list.
    let started = Instant::now();
    let r = get(addr, "/events?from=1000000&wait_ms=300").await;
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250) && waited < Duration::from_secs(3));
    let v = r.json();
    assert_eq!(v["blocks"], json!([]));
    assert_eq!(v["next"], 1_000_000);
    // The height is the chain's, not one made up from the request.
    let head = chain.height();
    let reported = v["height"].as_u64().unwrap();
    assert!(
        reported <= head && reported + 50 >= head,
        "{v}, head {head}"
    );
    let v = get(addr, "/events?from=1000000").await.json();
    assert!(v["height"].as_u64().unwrap() <= chain.height(), "{v}");

    chain.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_limit_and_non_loopback_refused() {
    let dir = TempDir::new("limit");
    let chain = Chain::start(config(dir.path(), 20), KvMachine::new(3))
        .await
        .unwrap();
    let addr = chain.local_addr();
    wait_height(addr, 5).await;
    let v = get(addr, "/events?from=1&limit=2").await.json();
    assert_eq!(v["blocks"].as_array().unwrap().len(), 2);
    assert_eq!(v["next"], 3);
    let v = get(addr, "/events").await.json();
    assert!(v["blocks"].as_array().unwrap().len() >= 5);
    chain.stop().await.unwrap();

    let mut cfg = config(dir.path(), 20);
    cfg.listen = "0.0.0.0:0".parse().unwrap();
    assert!(Chain::start(cfg, KvMachine::new(3)).await.is_err());
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
