//! An elder killed during a handover's DKG, restarted once the others agreed that the DKG
//! failed without it, in a section of three elders: a restart start needs all three
//! signatures, so the section moves on only if the restarted elder learns of the agreement it
//! missed and signs the restart. It learns it from the first elder that receives its signature
//! on the failed start again. The section then hands over to the three others and, the
//! absent elder back, to all four.
//!
//! A joiner killed during the DKG that would promote it: the restart without it runs onto the
//! three elders it would have joined, which moves the section to a later generation, at which
//! the restarted joiner states it runs and is selected again.

use crate::common;

use std::time::Duration;

use common::sections::{verify, view};
use common::{NodeSpec, Proc, new_key, wait_for};

const ROUND_MS: &str = "500";

fn start(dir: &std::path::Path, nodes: &[NodeSpec], i: usize, genesis_key: Option<&str>) -> Proc {
    common::sections::start(
        dir,
        nodes,
        i,
        genesis_key,
        ROUND_MS,
        &["--elder-count", "4"],
    )
}

/// Lines of node `i`'s log that hold every one of `needles`.
fn log_lines(dir: &std::path::Path, i: usize, needles: &[&str]) -> usize {
    std::fs::read_to_string(dir.join(format!("node{i}.log")))
        .map(|l| {
            l.lines()
                .filter(|line| needles.iter().all(|n| line.contains(n)))
                .count()
        })
        .unwrap_or(0)
}

/// Keys for four nodes in `dir`, and a section of three elders grown from node 0 by joining
/// nodes 1 and 2: the nodes, the running processes and the genesis key (hex).
async fn three_elders(dir: &std::path::Path) -> (Vec<NodeSpec>, Vec<Option<Proc>>, String) {
    std::fs::write(dir.join("pass"), "integration-test-passphrase\n").unwrap();
    let nodes: Vec<NodeSpec> = (0..4).map(|i| new_key(dir, i)).collect();
    let mut procs: Vec<Option<Proc>> = vec![Some(start(dir, &nodes, 0, None))];
    let genesis = wait_for("the genesis node", Duration::from_secs(30), async || {
        view(&nodes[0]).await
    })
    .await;
    let genesis_hex = genesis.genesis_key.clone();
    for i in 1..3 {
        procs.push(Some(start(dir, &nodes, i, Some(&genesis_hex))));
        wait_for(
            &format!("{} elders", i + 1),
            Duration::from_secs(60),
            async || {
                let v = view(&nodes[0]).await?;
                (v.elders.len() == i + 1 && v.generation == i as u64 + 1).then_some(())
            },
        )
        .await;
    }
    (nodes, procs, genesis_hex)
}

/// Waits until every node of `nodes` is an elder of a section of four on one key, and checks
/// each one's chain from the genesis key.
async fn four_elders_on_one_key(nodes: &[NodeSpec], genesis_hex: &str) {
    let views = wait_for(
        "four elders on one key",
        Duration::from_secs(90),
        async || {
            let mut views = Vec::new();
            for n in nodes {
                let v = view(n).await?;
                if !v.elder || v.elders.len() != 4 {
                    return None;
                }
                views.push(v);
            }
            views
                .iter()
                .all(|v| v.section_key == views[0].section_key)
                .then_some(views)
        },
    )
    .await;
    for v in &views {
        verify(v, genesis_hex);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_elder_restarted_after_a_failed_handover_learns_the_agreement_and_signs_the_restart() {
    let _network = crate::common::network_slot().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _logs = crate::common::LogsOnFailure(dir);
    let (nodes, mut procs, genesis_hex) = three_elders(dir).await;

    // The fourth node joins; elder 1 dies once the DKG that would promote it started there.
    procs.push(Some(start(dir, &nodes, 3, Some(&genesis_hex))));
    wait_for(
        "the four-candidate DKG at elder 1",
        Duration::from_secs(60),
        async || (log_lines(dir, 1, &["DKG started", "candidates=4"]) > 0).then_some(()),
    )
    .await;
    let restarts_before = log_lines(dir, 0, &["signing a start", "candidates=3"]);
    procs[1] = None;
    // The others agree that it failed and sign a restart without elder 1, which cannot be
    // authorised: it needs elder 1's signature too.
    wait_for(
        "the restart signed by elder 0",
        Duration::from_secs(60),
        async || {
            (log_lines(dir, 0, &["signing a start", "candidates=3"]) > restarts_before)
                .then_some(())
        },
    )
    .await;
    procs[1] = Some(start(dir, &nodes, 1, Some(&genesis_hex)));

    four_elders_on_one_key(&nodes, &genesis_hex).await;
    assert!(
        [0, 2, 3]
            .iter()
            .any(|i| log_lines(dir, *i, &["failure agreement sent again"]) > 0),
        "the restarted elder learnt the agreement from another node"
    );
    drop(procs);
}

/// A joiner killed during the DKG that would promote it, restarted once the others agreed
/// that the DKG failed without it: it tells the elders it runs at the generation of their
/// restart, and they select it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_killed_during_its_promotion_is_promoted_after_its_restart() {
    let _network = crate::common::network_slot().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _logs = crate::common::LogsOnFailure(dir);
    let (nodes, mut procs, genesis_hex) = three_elders(dir).await;

    // The fourth node joins and dies once the DKG that would promote it started there.
    procs.push(Some(start(dir, &nodes, 3, Some(&genesis_hex))));
    wait_for(
        "the four-candidate DKG at the joiner",
        Duration::from_secs(60),
        async || (log_lines(dir, 3, &["DKG started", "candidates=4"]) > 0).then_some(()),
    )
    .await;
    procs[3] = None;
    // The three elders agree that it failed and restart the DKG without it, onto themselves.
    wait_for(
        "the failure agreement at elder 0",
        Duration::from_secs(60),
        async || (log_lines(dir, 0, &["failure agreement checked"]) > 0).then_some(()),
    )
    .await;
    procs[3] = Some(start(dir, &nodes, 3, Some(&genesis_hex)));

    four_elders_on_one_key(&nodes, &genesis_hex).await;
    drop(procs);
}

/// A restart with other section parameters than the data directory was started with is a
/// usage error (exit 2), as a join with other parameters than the network's is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_other_section_parameters_exits_2_and_names_both() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _logs = crate::common::LogsOnFailure(dir);
    std::fs::write(dir.join("pass"), "integration-test-passphrase\n").unwrap();
    let nodes = vec![new_key(dir, 0)];
    let first = start(dir, &nodes, 0, None);
    wait_for("the genesis node", Duration::from_secs(30), async || {
        view(&nodes[0]).await
    })
    .await;
    drop(first);
    // The restart's exit status and its log so far.
    let restart = async |round_ms: &str, extra: &[&str]| {
        let mut other = common::sections::start(dir, &nodes, 0, None, round_ms, extra);
        let status = wait_for("the restart to stop", Duration::from_secs(30), async || {
            other.0.try_wait().unwrap()
        })
        .await;
        let log = std::fs::read_to_string(dir.join("node0.log")).unwrap();
        (status.code(), log)
    };
    let (code, log) = restart(ROUND_MS, &["--elder-count", "5"]).await;
    assert_eq!(code, Some(2));
    assert!(
        log.contains("was started with --elder-count 4") && log.contains("not 5"),
        "{log}"
    );
    // Another DKG round is refused the same way: rounds that end at other times make a node
    // observe the others failing.
    let (code, log) = restart("777", &[]).await;
    assert_eq!(code, Some(2));
    assert!(
        log.contains(&format!(
            "this data directory was started with --round-ms {ROUND_MS}, not 777"
        )),
        "{log}"
    );
}
