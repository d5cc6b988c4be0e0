//! The random beacon end to end over loopback with real processes: `keyquorum chain` and four
//! `keyquorum node`s (committee of 4, t = 3). One node sends beacon partials that do not
//! verify (it still combines its own good partial with the others'). One honest member is
//! killed with SIGKILL while a view is active: rounds go on (the bad node's own partial makes
//! the third). Then a second honest member is killed too, so no node holds t good partials and
//! rounds stall, and both are restarted. What is checked, all over HTTP:
//! - rounds are produced in view 1 (fresh key), with one member down too; the stalled rounds
//!   are caught up when the killed members are back, and the first one killed, which missed
//!   rounds the others produced, has them too; rounds go on in view 2 (reshare) on the same
//!   chain;
//! - view 3 (fresh key) starts a new chain whose info names the first chain, and the first
//!   chain is still served under its hash (`/{hash}/info`, `/{hash}/public/{round}`), also by
//!   a fifth node started only then, which ran neither chain: it follows the chain's history,
//!   learns of the ended chain from view 3's record and fetches its rounds from the nodes;
//! - every round every node serves verifies with `keyquorum-beacon` under the chain's info,
//!   and no round has two values across the nodes; `keyquorum beacon verify --url` verifies
//!   the latest round of a node, and drand's own JavaScript client (`drand-client`) verifies
//!   every round of a node, the ended chain under its hash (at a node that ran it and at the
//!   late one) and the new chain;
//! - honest nodes name the member that sent bad partials in their metrics and `/status`;
//! - in view 2, `POST /sign` on a member returns a signature that `blst` verifies under the
//!   group key with the proof-of-possession tag, a wrong token gets 401, and a flood of
//!   requests gets 429 (rate limit) or 503 (queue full) for what exceeds the limits.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{
    NodeSpec, Proc, Testnet, beacon_contract, beacon_verify, contract_status, drand_js, http_get,
    info, latest_on, metric_sum, round, wait_for,
};
use keyquorum_beacon::{ChainInfo, Round, verify_round_number};

const NODES: usize = 4;
const BAD_BEACON: usize = 3;
const KILLED: usize = 1;
const KILLED_TOO: usize = 2;

/// The fault node `i` runs with.
fn fault(i: usize) -> Option<&'static str> {
    (i == BAD_BEACON).then_some("bad-beacon")
}

/// `keyquorum beacon verify` and drand's own JavaScript client both verify rounds 1 to `upto`
/// and the latest of `chain` as node 0 serves them.
fn both_clients_verify(nodes: &[NodeSpec], chain: &ChainInfo, upto: u64) {
    let (verified, output) = beacon_verify(nodes[0].status);
    assert!(verified, "{output}");
    let node0 = format!("http://127.0.0.1:{}", nodes[0].status);
    let mut rounds: Vec<String> = (1..=upto).map(|r| r.to_string()).collect();
    rounds.push("latest".into());
    let (verified, output) = drand_js::verify(&node0, chain, &rounds);
    assert!(verified, "{output}");
}

/// Waits for view 2, a reshare, and for two more rounds of `chain` at every node; checks every
/// node still serves `chain` (a reshare keeps the key, so the chain goes on) and returns the
/// lowest latest round among them.
async fn reshare_goes_on(nodes: &[NodeSpec], chain_port: u16, chain: &ChainInfo) -> u64 {
    wait_for("view 2", Duration::from_secs(120), async || {
        (contract_status(chain_port).await?.view >= 2).then_some(())
    })
    .await;
    let target = latest_on(nodes[0].status, chain).await.unwrap() + 2;
    let upto = wait_for("rounds in view 2", Duration::from_secs(60), async || {
        let mut all = Vec::new();
        for n in nodes {
            all.push(latest_on(n.status, chain).await?);
        }
        let min = *all.iter().min()?;
        (min >= target).then_some(min)
    })
    .await;
    for n in nodes {
        assert_eq!(
            info(n.status).await.unwrap(),
            *chain,
            "a reshare keeps the chain"
        );
    }
    upto
}

/// Every round `1..=upto` of `chain` from every node that serves it verifies, and every node
/// serves the same value for it.
async fn check_rounds(nodes: &[NodeSpec], chain: &ChainInfo, upto: u64) {
    let mut seen: BTreeMap<u64, Round> = BTreeMap::new();
    for n in nodes {
        if info(n.status).await.map(|i| i.hash()) != Some(chain.hash()) {
            continue;
        }
        for r in 1..=upto {
            let Some(got) = round(n.status, &r.to_string()).await else {
                // A node that lost nothing serves every round from 1; one that joined or
                // stalled serves what it stored.
                continue;
            };
            verify_round_number(chain, &got, r).unwrap();
            match seen.get(&r) {
                Some(other) => assert_eq!(other, &got, "two values for round {r}"),
                None => {
                    seen.insert(r, got);
                }
            }
        }
    }
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        (1..=upto).collect::<Vec<_>>(),
        "every round is served by some node"
    );
}

const SIGN_TOKEN: &str = "process-test-sign-token";

async fn post_sign(port: u16, token: &str, body: &str) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/sign"))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .timeout(Duration::from_secs(20))
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

/// `POST /sign` on committee members: a signature `blst` verifies, 401 for a wrong token, and
/// 429 or 503 for a flood.
async fn check_signing(nodes: &[NodeSpec], chain: &ChainInfo) {
    let body = r#"{"domain":"keyquorum.test/v1","message":"00ff10"}"#;
    let (status, signed) = post_sign(nodes[0].status, SIGN_TOKEN, body).await;
    assert_eq!(status, 200, "{signed}");
    if signed["view"] == 2 {
        // A reshare keeps the key: the chain's key is the view's.
        assert_eq!(
            signed["public_key"].as_str(),
            Some(hex::encode(chain.public_key()).as_str())
        );
    }
    assert_eq!(signed["domain"], "keyquorum.test/v1");
    assert_eq!(signed["message"], "00ff10");
    assert!(signed["view"].as_u64().unwrap() >= 2);
    // The signed bytes as the format defines them, built here independently of the code.
    let mut msg = b"keyquorum/sign/v1".to_vec();
    msg.push(17);
    msg.extend_from_slice(b"keyquorum.test/v1");
    msg.extend_from_slice(&[0x00, 0xff, 0x10]);
    let pk = blst::min_pk::PublicKey::from_bytes(
        &hex::decode(signed["public_key"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let sig = blst::min_pk::Signature::from_bytes(
        &hex::decode(signed["signature"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        sig.verify(
            true,
            &msg,
            b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_",
            &[],
            &pk,
            true
        ),
        blst::BLST_ERROR::BLST_SUCCESS
    );

    let (status, answer) = post_sign(nodes[0].status, "wrong-token", body).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("unauthorized"))
    );

    // A flood from one caller: the burst (10) and the pending bound (16) let some through,
    // the rest are refused with a clear code, and nothing else happens.
    let flood_started = std::time::Instant::now();
    let flood: Vec<_> = (0..40)
        .map(|i| {
            let port = nodes[1].status;
            let body = format!(r#"{{"domain":"flood","message":"{i:02x}"}}"#);
            tokio::spawn(async move { post_sign(port, SIGN_TOKEN, &body).await })
        })
        .collect();
    let mut by_status = BTreeMap::new();
    for f in flood {
        let (status, answer) = f.await.unwrap();
        match status {
            200 => {}
            429 => assert_eq!(answer["error"], "rate_limited"),
            503 => assert_eq!(answer["error"], "queue_full"),
            other => panic!("flood answered {other}: {answer}"),
        }
        *by_status.entry(status).or_insert(0) += 1;
    }
    let flood_secs = flood_started.elapsed().as_secs_f64();
    eprintln!("flood of 40 requests on node 1 in {flood_secs:.2} s: {by_status:?}");
    assert!(
        by_status.get(&200).is_some_and(|&n| n >= 1),
        "{by_status:?}"
    );
    // The limiter (5 a second, a burst of 10, the defaults) lets through at most the burst and
    // what refilled while the flood lasted, however slowly a loaded machine sends it.
    let let_through = 10 + (5.0 * flood_secs).ceil() as usize;
    assert!(
        by_status.get(&429).copied().unwrap_or(0) >= 40usize.saturating_sub(let_through),
        "{by_status:?} in {flood_secs:.2} s"
    );
    let (_, metrics) = http_get(nodes[0].status, "/metrics").await.unwrap();
    for line in metrics.lines().filter(|l| l.starts_with("keyquorum_sign_")) {
        if !line.contains("_bucket") {
            eprintln!("node 0: {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_beacon_runs_across_view_changes_with_a_killed_member_and_bad_partials() {
    let _network = crate::common::network_slot().await;
    // One more key than nodes: the late node, started in view 3.
    let net = Testnet::new(
        NODES + 1,
        &beacon_contract(
            "beacon-processes-test",
            150,
            "key_mode = \"reshare\"\nkey_mode_overrides = [{ view = 3, mode = \"fresh\" }]",
        ),
        Some(SIGN_TOKEN),
    );
    let (nodes, chain_port) = (&net.nodes[..NODES], net.chain_port);
    let mut procs: Vec<Option<Proc>> = (0..NODES).map(|i| Some(net.start(i, fault(i)))).collect();

    // View 1 (fresh key): rounds are produced.
    let first = wait_for("view 1's beacon", Duration::from_secs(120), async || {
        let i = info(nodes[0].status).await?;
        (latest_on(nodes[0].status, &i).await? >= 2).then_some(i)
    })
    .await;
    assert!(
        first
            .link()
            .is_some_and(|l| l.previous_chain_hash.is_none())
    );

    // Kill an honest member: the bad-partial node's own partial still makes t good ones at
    // that node, and the others get the rounds from its answers.
    procs[KILLED] = None;
    let before = latest_on(nodes[0].status, &first).await.unwrap();
    wait_for(
        "rounds with a member down",
        Duration::from_secs(30),
        async || (latest_on(nodes[0].status, &first).await? >= before + 2).then_some(()),
    )
    .await;
    // Kill a second one: two good partials at most anywhere, fewer than t.
    procs[KILLED_TOO] = None;
    // The latest round anywhere: node 0 may still fetch rounds node 3 made before the kill.
    let latest_live = async || {
        let mut latest = 0;
        for i in (0..NODES).filter(|i| ![KILLED, KILLED_TOO].contains(i)) {
            latest = latest.max(latest_on(nodes[i].status, &first).await.unwrap());
        }
        latest
    };
    let before = latest_live().await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let stalled = latest_live().await;
    assert!(
        stalled <= before + 1,
        "rounds went on without a quorum: {before} -> {stalled}"
    );
    procs[KILLED] = Some(net.start(KILLED, None));
    procs[KILLED_TOO] = Some(net.start(KILLED_TOO, None));
    // The stalled rounds are caught up, on the restarted nodes too (their rounds survived,
    // and the first one killed gets the rounds it missed from the others).
    let target = stalled + 3;
    for i in [0, KILLED, KILLED_TOO] {
        wait_for("catch-up", Duration::from_secs(60), async || {
            (latest_on(nodes[i].status, &first).await? >= target).then_some(())
        })
        .await;
    }

    // View 2 (reshare): the same chain goes on.
    let upto = reshare_goes_on(nodes, chain_port, &first).await;
    check_rounds(nodes, &first, upto).await;
    check_signing(nodes, &first).await;

    // `keyquorum beacon verify` agrees, and so does drand's own client, on every round.
    both_clients_verify(nodes, &first, upto);

    // Honest nodes name the member that sent bad partials; latency from the metrics.
    let (_, metrics) = http_get(nodes[0].status, "/metrics").await.unwrap();
    assert!(
        metric_sum(
            &metrics,
            "keyquorum_beacon_partials_total",
            "result=\"bad\""
        ) >= 1.0,
        "{metrics}"
    );
    // And in `/status`, by identity, across views: the bad node and no other.
    let (_, status) = http_get(nodes[0].status, "/status").await.unwrap();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let refused = status["beacon"]["refused_partials"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["identity"], nodes[BAD_BEACON].identity.as_str());
    assert!(refused[0]["count"].as_u64().unwrap() >= 1, "{refused:?}");
    let sum = metric_sum(&metrics, "keyquorum_beacon_round_latency_seconds_sum", "");
    let count = metric_sum(&metrics, "keyquorum_beacon_round_latency_seconds_count", "");
    let combine = metric_sum(&metrics, "keyquorum_beacon_combine_seconds_sum", "");
    eprintln!(
        "node 0: {count} rounds stored, mean latency from round start {:.3} s (stalled rounds \
         included), mean combine call {:.4} s",
        sum / count,
        combine / count
    );
    for line in metrics.lines().filter(|l| {
        l.starts_with("keyquorum_beacon_round_latency_seconds_bucket")
            || l.starts_with("keyquorum_beacon_late_rounds_total")
    }) {
        eprintln!("node 0: {line}");
    }

    // View 3 (fresh key): a new chain that names the first.
    let second = wait_for("view 3's chain", Duration::from_secs(150), async || {
        let i = info(nodes[0].status).await?;
        (i.hash() != first.hash() && latest_on(nodes[0].status, &i).await? >= 2).then_some(i)
    })
    .await;
    assert_eq!(
        second.link().and_then(|l| l.previous_chain_hash),
        Some(first.hash())
    );
    check_rounds(nodes, &second, 2).await;
    // The ended chain is still served, under its hash, with the rounds it had.
    let first_hash = hex::encode(first.hash());
    let (code, body) = http_get(nodes[0].status, &format!("/{first_hash}/info"))
        .await
        .unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(ChainInfo::from_json(body.as_bytes()).unwrap(), first);
    let (code, body) = http_get(nodes[0].status, &format!("/{first_hash}/public/{upto}"))
        .await
        .unwrap();
    assert_eq!(code, 200, "{body}");
    verify_round_number(&first, &Round::from_json(body.as_bytes()).unwrap(), upto).unwrap();

    // A node started now, after the first chain ended, serves it too: it learns of the chain
    // from view 3's record and fetches its rounds from the nodes that have them.
    let late = &net.nodes[NODES];
    let _late = net.start(NODES, None);
    let path = format!("/{first_hash}/public/{upto}");
    let fetched = wait_for(
        "the late node's copy of the ended chain",
        Duration::from_secs(90),
        async || {
            let (code, body) = http_get(late.status, &path).await?;
            (code == 200).then(|| Round::from_json(body.as_bytes()).unwrap())
        },
    )
    .await;
    verify_round_number(&first, &fetched, upto).unwrap();
    let (code, body) = http_get(late.status, &format!("/{first_hash}/info"))
        .await
        .unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(ChainInfo::from_json(body.as_bytes()).unwrap(), first);
    // The same value as the nodes that ran the chain serve.
    let (_, theirs) = http_get(nodes[0].status, &path).await.unwrap();
    assert_eq!(fetched, Round::from_json(theirs.as_bytes()).unwrap());

    // drand's client, given a chain's hash as drand's relays serve several chains, verifies
    // the ended chain at the node that ran it and at the late node, and the new chain.
    let node0 = format!("http://127.0.0.1:{}", nodes[0].status);
    let late_url = format!("http://127.0.0.1:{}/{first_hash}", late.status);
    for url in [format!("{node0}/{first_hash}"), late_url] {
        let (verified, output) = drand_js::verify(&url, &first, &[upto.to_string()]);
        assert!(verified, "{url}: {output}");
    }
    let (verified, output) = drand_js::verify(&node0, &second, &["1".into(), "2".into()]);
    assert!(verified, "{output}");
}

/// A chain configured with `--beacon-scheme pedersen-bls-unchained --beacon-period 2`: view 1's
/// magic block names them, and every node runs that chain: `/info` says so in drand's format,
/// rounds come 2 s apart without a previous signature and verify under the unchained scheme
/// (here, with `keyquorum beacon verify` and with drand's own client); view 2, a reshare,
/// goes on with the same chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_chain_configured_unchained_with_a_2_s_period_runs_that_beacon() {
    let _network = crate::common::network_slot().await;
    let net = Testnet::with_chain_args(
        NODES,
        &beacon_contract(
            "beacon-unchained-test",
            60,
            "key_mode = \"reshare\"\nkey_mode_overrides = []",
        ),
        None,
        &[
            "--beacon-scheme",
            "pedersen-bls-unchained",
            "--beacon-period",
            "2",
        ],
    );
    let (nodes, chain_port) = (&net.nodes[..], net.chain_port);
    let _procs: Vec<Proc> = (0..NODES).map(|i| net.start(i, None)).collect();

    let first = wait_for("view 1's beacon", Duration::from_secs(120), async || {
        let i = info(nodes[0].status).await?;
        (latest_on(nodes[0].status, &i).await? >= 3).then_some(i)
    })
    .await;
    let (_, body) = http_get(nodes[0].status, "/info").await.unwrap();
    let served: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(served["schemeID"], "pedersen-bls-unchained", "{body}");
    assert_eq!(served["period"], 2, "{body}");
    let configured = contract_status(chain_port).await.unwrap().beacon;
    assert_eq!(configured.scheme.as_str(), "pedersen-bls-unchained");
    assert_eq!(configured.period_secs, 2);
    let (_, body) = http_get(nodes[0].status, "/public/2").await.unwrap();
    assert!(!body.contains("previous_signature"), "{body}");

    // View 2 (reshare): the same unchained chain goes on.
    let upto = reshare_goes_on(nodes, chain_port, &first).await;
    check_rounds(nodes, &first, upto).await;
    // The rounds follow the 2 s schedule from the chain's genesis. Checked 36 s or more after
    // it, where the two schedules are six rounds or more apart.
    let unix_now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    let wait = (first.genesis_time() + 36 - unix_now()).max(0) as u64;
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let latest = latest_on(nodes[0].status, &first).await.unwrap();
    let now = unix_now();
    let scheduled = first.current_round(now);
    let at_3_s = (now - first.genesis_time()) as u64 / 3 + 1;
    assert!(at_3_s < scheduled - 3, "{at_3_s} vs {scheduled}");
    // Ahead of where any 3 s schedule could be, and not ahead of the 2 s one: a node a few
    // rounds behind on a loaded machine still tells the two apart.
    assert!(
        (at_3_s + 1..=scheduled).contains(&latest),
        "latest {latest}, scheduled {scheduled}, a 3 s schedule at {at_3_s}"
    );
    for r in 1..=upto {
        assert_eq!(
            round(nodes[0].status, &r.to_string())
                .await
                .unwrap()
                .previous_signature,
            None
        );
    }
    both_clients_verify(nodes, &first, upto);
}
