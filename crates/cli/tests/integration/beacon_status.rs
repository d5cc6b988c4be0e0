//! The beacon's state on `/status`, per-round timings on `/beacon/rounds`, and a node whose
//! beacon is turned off, with real processes over loopback: `keyquorum chain` and four
//! `keyquorum node`s (committee of 4, t = 3), one started with `--no-beacon`. The three others
//! are exactly t, so rounds are produced without the fourth. Checked over HTTP:
//! - the node without a beacon answers every beacon path with a JSON 503, says so on
//!   `/status`, sent no partial and created no beacon database;
//! - a member's `/status` names the chain, its scheme, its membership and its latest round,
//!   with nothing missing while the committee is up;
//! - its `/beacon/rounds` gives every stored round its scheduled time, stored time and latency.

use crate::common;

use std::time::Duration;

use common::{FRESH_KEYS, Proc, Testnet, beacon_contract, contract_status, http_get, wait_for};
use keyquorum_beacon::ChainInfo;
use keyquorum_node::beacon::rounds::RoundsJson;
use keyquorum_node::status::Status;
use serde_json::Value;

const NODES: usize = 4;
const NO_BEACON: usize = 3;

async fn status(port: u16) -> Option<Status> {
    match http_get(port, "/status").await? {
        (200, body) => Some(serde_json::from_str(&body).unwrap()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_beacon_and_a_node_can_run_without_one() {
    let _network = crate::common::network_slot().await;
    let net = Testnet::new(
        NODES,
        &beacon_contract("beacon-status-test", 1000, FRESH_KEYS),
        None,
    );
    let (dir, nodes, chain_port) = (net.dir(), &net.nodes, net.chain_port);
    let _procs: Vec<Proc> = (0..NODES)
        .map(|i| {
            if i == NO_BEACON {
                net.start_with(i, None, &["--no-beacon"])
            } else {
                net.start(i, None)
            }
        })
        .collect();

    // View 1 is active on every node and a member has stored three rounds.
    let member = wait_for("three rounds", Duration::from_secs(150), async || {
        for n in &nodes[..NO_BEACON] {
            let s = status(n.status).await?;
            if s.view >= 1 && s.beacon.member && s.beacon.latest_round >= 3 {
                return Some(n.status);
            }
        }
        None
    })
    .await;
    wait_for(
        "view 1 on the node without a beacon",
        Duration::from_secs(30),
        async || (status(nodes[NO_BEACON].status).await?.view >= 1).then_some(()),
    )
    .await;

    assert!(contract_status(chain_port).await.unwrap().view >= 1);

    // The member's status.
    let (_, body) = http_get(member, "/info").await.unwrap();
    let info = ChainInfo::from_json(body.as_bytes()).unwrap();
    let s = status(member).await.unwrap().beacon;
    assert!(s.enabled && s.member);
    assert_eq!(s.view, Some(1));
    assert_eq!(s.scheme.as_deref(), Some("pedersen-bls-chained"));
    assert_eq!(s.chain_hash, Some(hex::encode(info.hash())));
    assert!(s.due_round >= s.latest_round);
    // The status is written every 100 ms, so at a round boundary one round may show as due.
    assert!(s.missing <= 1, "{s:?}");
    assert_eq!(s.catching_up, s.missing > 0);

    // Its round timings.
    let (code, body) = http_get(member, "/beacon/rounds").await.unwrap();
    assert_eq!(code, 200, "{body}");
    let rounds: RoundsJson = serde_json::from_str(&body).unwrap();
    assert_eq!(rounds.chain_hash, hex::encode(info.hash()));
    assert!(rounds.latest_round >= 3);
    assert_eq!(rounds.rounds.len() as u64, rounds.latest_round);
    for r in &rounds.rounds {
        let scheduled = info.time_of_round(r.round).unwrap() * 1000;
        assert_eq!(r.scheduled_ms, Some(scheduled));
        let latency = r.latency_ms.expect("a timed round");
        assert_eq!(latency, r.stored_ms.unwrap() as i64 - scheduled);
        // One clock for every process: never stored before the round starts.
        assert!(latency >= 0, "round {}: {latency} ms", r.round);
    }

    // The node without a beacon.
    let off = nodes[NO_BEACON].status;
    for path in ["/info", "/public/latest", "/public/1", "/beacon/rounds"] {
        let (code, body) = http_get(off, path).await.unwrap();
        assert_eq!(code, 503, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(
            v["error"].as_str().unwrap().contains("disabled"),
            "{path}: {body}"
        );
    }
    let s = status(off).await.unwrap();
    assert!(!s.beacon.enabled);
    assert_eq!(s.beacon.view, None);
    assert_eq!(s.beacon.latest_round, 0);
    assert!(
        s.traffic
            .by_kind
            .get("beacon_partial")
            .is_none_or(|k| k.messages_sent == 0),
        "{:?}",
        s.traffic
    );
    assert!(
        !dir.join(format!("node{NO_BEACON}"))
            .join("beacon.redb")
            .exists()
    );
}
