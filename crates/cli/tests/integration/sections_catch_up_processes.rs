//! A member that missed a handover catches up, on real processes: `keyquorum sections node`s
//! over libp2p on loopback, two elders a section.
//!
//! Four node keys are ranked by name (elders are chosen by name among members of one age). The
//! first is the genesis node; the third joins and the two become the elders; the last joins as
//! a member only (it ranks below both). That member is stopped, and the second joins: it ranks
//! above the third, so the elders change by a DKG and a handover the stopped member never hears
//! of. Restarted on its data directory, the member asks its peers for their section record and
//! reaches the current generation: the same key chain and SAP as the others, verified from the
//! genesis key, and its log says it caught up.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::sections::{name_of, verify, view};
use common::{NodeSpec, Proc, new_key, wait_for};
use keyquorum_node::sections_node::http::SectionView;

const ROUND_MS: &str = "1000";
const PARAMS: [&str; 2] = ["--elder-count", "2"];

fn start(dir: &Path, nodes: &[NodeSpec], i: usize, genesis_key: Option<&str>) -> Proc {
    common::sections::start(dir, nodes, i, genesis_key, ROUND_MS, &PARAMS)
}

/// Waits until nodes `up` all hold the SAP of `generation`; returns their views.
async fn at_generation(nodes: &[NodeSpec], up: &[usize], generation: u64) -> Vec<SectionView> {
    wait_for(
        &format!("generation {generation} at nodes {up:?}"),
        Duration::from_secs(90),
        async || {
            let mut views = Vec::new();
            for &i in up {
                let v = view(&nodes[i]).await?;
                if v.generation != generation {
                    return None;
                }
                views.push(v);
            }
            Some(views)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_down_during_a_handover_catches_up_after_its_restart() {
    let _network = crate::common::network_slot().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _logs = crate::common::LogsOnFailure(dir);
    std::fs::write(dir.join("pass"), "integration-test-passphrase\n").unwrap();
    // Ranked by name: nodes[0] < nodes[1] < nodes[2] < nodes[3].
    let mut nodes: Vec<NodeSpec> = (0..4).map(|i| new_key(dir, i)).collect();
    nodes.sort_by_cached_key(name_of);
    let (genesis_node, joiner, first_elder, member) = (0, 1, 2, 3);

    let mut procs: Vec<Option<Proc>> = vec![Some(start(dir, &nodes, genesis_node, None))];
    let genesis = wait_for("the genesis node", Duration::from_secs(30), async || {
        view(&nodes[genesis_node]).await
    })
    .await;
    let genesis_hex = genesis.genesis_key.clone();
    let boot = Some(genesis_hex.as_str());

    procs.push(Some(start(dir, &nodes, first_elder, boot)));
    let views = at_generation(&nodes, &[genesis_node, first_elder], 2).await;
    assert!(views.iter().all(|v| v.elder && v.elders.len() == 2));

    // The member ranks below both elders: it joins without a DKG and learns generation 2.
    procs.push(Some(start(dir, &nodes, member, boot)));
    wait_for(
        "the member's admission",
        Duration::from_secs(60),
        async || {
            let v = view(&nodes[genesis_node]).await?;
            (v.members == 3).then_some(())
        },
    )
    .await;
    let before = at_generation(&nodes, &[member], 2).await.remove(0);
    assert!(!before.elder);
    procs[2] = None;

    // The joiner ranks above the first elder: the elders change while the member is down.
    procs.push(Some(start(dir, &nodes, joiner, boot)));
    let views = at_generation(&nodes, &[genesis_node, joiner, first_elder], 3).await;
    for v in &views {
        verify(v, &genesis_hex);
        assert_eq!(v.key_chain, views[0].key_chain);
    }
    assert!(views[0].elder && views[1].elder && !views[2].elder);
    // Past the network's retries of the handover's messages to the stopped member (about five
    // seconds; twice that on a loaded machine), so only catching up can bring it the new SAP.
    tokio::time::sleep(Duration::from_secs(12)).await;

    procs[2] = Some(start(dir, &nodes, member, boot));
    let caught_up = at_generation(&nodes, &[member], 3).await.remove(0);
    verify(&caught_up, &genesis_hex);
    assert_eq!(caught_up.key_chain, views[0].key_chain);
    assert_eq!(caught_up.section_key, views[0].section_key);
    assert_eq!(caught_up.elders, views[0].elders);
    assert!(!caught_up.elder);
    let log = std::fs::read_to_string(dir.join(format!("node{member}.log"))).unwrap();
    assert!(log.contains("caught up with the section"), "{log}");
    drop(procs);
}
