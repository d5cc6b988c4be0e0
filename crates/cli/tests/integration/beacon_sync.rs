//! Nodes that sign nothing serve the beacon, and a member back from a crash catches up, with
//! real processes over loopback: `keyquorum chain` and five `keyquorum node`s for a committee
//! of four (t = 3), so one node is outside the committee. Checked over HTTP:
//! - the node outside the committee serves the committee's chain: `keyquorum beacon verify`
//!   verifies its `/public/latest`, its `/beacon/rounds` marks every round as fetched
//!   (`synced`), and it serves the same value for every round as the members;
//! - a member killed with SIGKILL while the three others (t) go on for several rounds, then
//!   restarted, serves the rounds it missed: it fetched them in batches (fewer sync requests
//!   than rounds fetched, in its metrics) and marks them `synced`, and it keeps up afterwards.

use crate::common;

use std::time::Duration;

use common::{
    FRESH_KEYS, NodeSpec, Proc, Testnet, beacon_contract, beacon_verify, http_get, info, latest_on,
    metric_sum, round, wait_for,
};
use keyquorum_beacon::{ChainInfo, verify_round_number};
use keyquorum_contract::hex::Hex;
use keyquorum_contract::query::ViewAnswer;
use keyquorum_devchain::Client;
use keyquorum_node::beacon::rounds::RoundsJson;

const NODES: usize = 5;

/// The positions (in `nodes`) of view 1's committee, once the view is active.
async fn committee(chain_port: u16, nodes: &[NodeSpec]) -> Option<Vec<usize>> {
    let answer: ViewAnswer = Client::new(&format!("http://127.0.0.1:{chain_port}"))
        .ok()?
        .with_timeout(Duration::from_secs(5))
        .get("/views/1")
        .await
        .ok()?;
    let ViewAnswer::ActiveOrPast(view) = answer else {
        return None;
    };
    let id =
        |n: &NodeSpec| -> Hex<96> { serde_json::from_value(n.identity.clone().into()).unwrap() };
    Some(
        view.committee
            .iter()
            .map(|m| nodes.iter().position(|n| id(n) == m.identity).unwrap())
            .collect(),
    )
}

async fn rounds_json(port: u16, query: &str) -> RoundsJson {
    let (code, body) = http_get(port, &format!("/beacon/rounds{query}"))
        .await
        .unwrap();
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Every round `1..=upto` of `chain` served by each of `ports` verifies and is the same on all.
async fn same_rounds(ports: &[u16], chain: &ChainInfo, upto: u64) {
    for r in 1..=upto {
        let mut values = Vec::new();
        for &port in ports {
            let got = round(port, &r.to_string())
                .await
                .unwrap_or_else(|| panic!("round {r} missing on port {port}"));
            verify_round_number(chain, &got, r).unwrap();
            values.push(got);
        }
        assert!(
            values.windows(2).all(|w| w[0] == w[1]),
            "two values for round {r}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_outside_the_committee_serves_the_beacon_and_a_restarted_member_catches_up() {
    let _network = crate::common::network_slot().await;
    let net = Testnet::new(
        NODES,
        &beacon_contract("beacon-sync-test", 1000, FRESH_KEYS),
        None,
    );
    let nodes = &net.nodes;
    let mut procs: Vec<Option<Proc>> = (0..NODES).map(|i| Some(net.start(i, None))).collect();

    let members = wait_for("view 1", Duration::from_secs(150), async || {
        committee(net.chain_port, nodes).await
    })
    .await;
    assert_eq!(members.len(), 4);
    let outsider = (0..NODES).find(|i| !members.contains(i)).unwrap();
    let (member, killed) = (members[0], members[3]);
    let port = |i: usize| nodes[i].status;

    // The committee produces rounds.
    let chain = wait_for("rounds", Duration::from_secs(60), async || {
        let i = info(port(member)).await?;
        (latest_on(port(member), &i).await? >= 2).then_some(i)
    })
    .await;

    // The node outside the committee serves them, fetched and verified.
    let served = wait_for(
        "rounds on the node outside the committee",
        Duration::from_secs(30),
        async || {
            let latest = latest_on(port(outsider), &chain).await?;
            (latest >= 2).then_some(latest)
        },
    )
    .await;
    let (verified, output) = beacon_verify(port(outsider));
    assert!(verified, "{output}");
    let rounds = rounds_json(port(outsider), "").await;
    assert_eq!(rounds.chain_hash, hex::encode(chain.hash()));
    assert_eq!(
        rounds.rounds.iter().map(|r| r.round).collect::<Vec<_>>(),
        (1..=rounds.latest_round).collect::<Vec<_>>()
    );
    assert!(
        rounds
            .rounds
            .iter()
            .all(|r| r.origin.as_deref() == Some("synced")),
        "{rounds:?}"
    );
    same_rounds(&[port(outsider), port(member)], &chain, served).await;

    // A member is killed; the three others are t, so rounds go on without it.
    procs[killed] = None;
    let missed_from = latest_on(port(member), &chain).await.unwrap();
    wait_for(
        "rounds with a member down",
        Duration::from_secs(60),
        async || (latest_on(port(member), &chain).await? >= missed_from + 5).then_some(()),
    )
    .await;
    procs[killed] = Some(net.start(killed, None));
    let target = latest_on(port(member), &chain).await.unwrap();
    wait_for("catch-up", Duration::from_secs(60), async || {
        (latest_on(port(killed), &chain).await? >= target).then_some(())
    })
    .await;

    // It fetched what it missed, in batches, and marks those rounds as fetched.
    let (_, metrics) = http_get(port(killed), "/metrics").await.unwrap();
    let batches = metric_sum(
        &metrics,
        "keyquorum_beacon_sync_requests_total",
        "result=\"rounds\"",
    );
    let fetched = metric_sum(&metrics, "keyquorum_beacon_synced_rounds_total", "");
    eprintln!("restarted member: {fetched} rounds fetched in {batches} requests");
    assert!(batches >= 1.0, "{metrics}");
    assert!(fetched >= 4.0 && fetched > batches, "{metrics}");
    let rounds = rounds_json(
        port(killed),
        &format!("?from={}&to={target}", missed_from + 1),
    )
    .await;
    assert!(
        rounds
            .rounds
            .iter()
            .filter(|r| r.origin.as_deref() == Some("synced"))
            .count()
            >= 4,
        "{rounds:?}"
    );

    // Everyone keeps up and agrees on every round.
    let upto = wait_for(
        "rounds after the restart",
        Duration::from_secs(60),
        async || {
            let mut lowest = u64::MAX;
            for i in [member, killed, outsider] {
                lowest = lowest.min(latest_on(port(i), &chain).await?);
            }
            (lowest >= target + 2).then_some(lowest)
        },
    )
    .await;
    same_rounds(&[port(member), port(killed), port(outsider)], &chain, upto).await;
    let (verified, output) = beacon_verify(port(killed));
    assert!(verified, "{output}");
}
