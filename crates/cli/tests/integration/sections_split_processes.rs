//! A section split on real processes: `keyquorum sections node`s over libp2p on loopback, with
//! the smallest sizes that split (three elders, halves of at least two members).
//!
//! Four node keys are chosen so that two names start with bit 0 and two with bit 1. The genesis
//! node and two joiners grow the root section to three elders (three members cannot give two
//! halves of two, so no split); the fourth join gives two halves of two, so the three root
//! elders sign two starts, one per child prefix, each child's two members run their DKG over
//! the network, and the root elders hand over to both. Every node then follows its own half:
//! its key chain, fetched over HTTP, verifies from the genesis key; the two children's keys
//! differ and are both signed by the root's last key, and both chains share every earlier link.

use crate::common;

use std::time::Duration;

use common::sections::{name_of, start, verify, view};
use common::{NodeSpec, Proc, new_key, wait_for};
use keyquorum_node::sections_node::http::SectionView;
use keyquorum_sections::Name;

const ROUND_MS: &str = "1000";
const PARAMS: [&str; 4] = ["--elder-count", "3", "--min-section-size", "2"];

/// Node keys of one first name bit, with their names.
type Side = Vec<(Name, NodeSpec)>;

/// `per_bit` node keys whose names start with bit 0 and as many with bit 1, each side in the
/// order made (key files stay where `new_key` wrote them).
fn keys_by_first_bit(dir: &std::path::Path, per_bit: usize) -> (Side, Side) {
    let (mut zeros, mut ones) = (Vec::new(), Vec::new());
    let mut i = 0;
    while zeros.len() < per_bit || ones.len() < per_bit {
        assert!(i < 128, "no {per_bit} names of each bit among 128 keys");
        let spec = new_key(dir, i);
        let name = name_of(&spec);
        let side = if name.bit(0) == 0 {
            &mut zeros
        } else {
            &mut ones
        };
        if side.len() < per_bit {
            side.push((name, spec));
        }
        i += 1;
    }
    (zeros, ones)
}

/// Four node keys, two of each first name bit, the genesis node's first.
fn keys_for_a_split(dir: &std::path::Path) -> (Vec<NodeSpec>, Vec<Name>) {
    let (zeros, ones) = keys_by_first_bit(dir, 2);
    // The nodes are indexed by their order here.
    zeros
        .into_iter()
        .zip(ones)
        .flat_map(|(z, o)| [z, o])
        .map(|(name, spec)| (spec, name))
        .unzip()
}

/// Waits until nodes `up` all hold a SAP of `generation` with `elders` elders, all elders, and
/// returns their views.
async fn settled(
    nodes: &[NodeSpec],
    up: &[usize],
    generation: u64,
    elders: usize,
) -> Vec<SectionView> {
    wait_for(
        &format!("generation {generation} at nodes {up:?}"),
        Duration::from_secs(90),
        async || {
            let mut views = Vec::new();
            for &i in up {
                let v = view(&nodes[i]).await?;
                if v.generation != generation || !v.elder || v.elders.len() != elders {
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
async fn a_section_splits_over_the_network_and_the_key_chain_branches() {
    let _network = crate::common::network_slot().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _logs = crate::common::LogsOnFailure(dir);
    std::fs::write(dir.join("pass"), format!("{}\n", common::PASSPHRASE)).unwrap();
    let (mut nodes, names) = keys_for_a_split(dir);
    // A fifth node of the genesis node's half (first name bit 0), to join after the split.
    let fifth = (100..)
        .map(|i| new_key(dir, i))
        .find(|spec| name_of(spec).bit(0) == 0)
        .unwrap();
    nodes.push(fifth);
    let dir_of = |i: usize| dir.join(format!("node{i}"));
    let spawn = |i: usize, genesis: Option<&str>| start(dir, &nodes, i, genesis, ROUND_MS, &PARAMS);

    let mut procs: Vec<Proc> = vec![spawn(0, None)];
    let genesis = wait_for("the genesis node", Duration::from_secs(30), async || {
        view(&nodes[0]).await
    })
    .await;
    let genesis_hex = genesis.genesis_key.clone();
    // The chain file is written at the start, before any handover (before, only at a change).
    wait_for(
        "the genesis node's chain file",
        Duration::from_secs(10),
        async || {
            std::fs::read(dir_of(0).join("key_chain.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<SectionView>(&b).ok())
                .filter(|v| v.genesis_key == genesis_hex)
        },
    )
    .await;

    // Two joins: two, then three elders in the root section; no split yet.
    for i in 1..3 {
        procs.push(spawn(i, Some(&genesis_hex)));
        let up: Vec<usize> = (0..=i).collect();
        let views = settled(&nodes, &up, i as u64 + 1, i + 1).await;
        for v in &views {
            verify(v, &genesis_hex);
            assert_eq!(v.prefix_bits, 0);
            assert_eq!(v.key_chain, views[0].key_chain);
        }
    }
    let root = view(&nodes[0]).await.unwrap();

    // The fourth join splits the section: each node ends in its own half with two elders.
    procs.push(spawn(3, Some(&genesis_hex)));
    let views = settled(&nodes, &[0, 1, 2, 3], 4, 2).await;
    for (v, name) in views.iter().zip(&names) {
        verify(v, &genesis_hex);
        assert_eq!(v.prefix_bits, 1);
        // The node is in the half its name's first bit picks, with the other node of that half.
        let expected = format!("0001{:02x}", name.bit(0) << 7);
        assert_eq!(v.prefix, expected);
        let mut elders: Vec<String> = v.elders.iter().map(|e| e.name.clone()).collect();
        elders.sort();
        let mut half: Vec<String> = names
            .iter()
            .filter(|n| n.bit(0) == name.bit(0))
            .map(|n| hex::encode(n.0))
            .collect();
        half.sort();
        assert_eq!(elders, half);
        // The chain branches from the root's: every root link, then the child's key signed by
        // the root's last key.
        let links = v.key_chain.links();
        assert_eq!(links[..2], root.key_chain.links()[..]);
        assert_eq!(
            hex::encode(keyquorum_sections::keys::key_bytes(&links[2].parent_key)),
            root.section_key
        );
    }
    // Nodes 0 and 2 hold bit 0, nodes 1 and 3 bit 1: one key per half, both children of the root.
    assert_eq!(views[0].key_chain, views[2].key_chain);
    assert_eq!(views[1].key_chain, views[3].key_chain);
    assert_ne!(views[0].section_key, views[1].section_key);
    // The chain file of each half holds what HTTP serves.
    for i in [0, 1] {
        let file: SectionView =
            serde_json::from_slice(&std::fs::read(dir_of(i).join("key_chain.json")).unwrap())
                .unwrap();
        verify(&file, &genesis_hex);
        assert_eq!(file.key_chain, views[i].key_chain);
    }

    // The fifth node is given a bootstrap peer of the other half first (node 1), then the
    // genesis node of its own half: it passes over the first one's section and joins its own,
    // as its third elder. Before, the first answer that verified ended the join ("the
    // bootstrap peer's section does not hold our name").
    let other = &nodes[1];
    let other_half = format!("/ip4/127.0.0.1/tcp/{}/p2p/{}", other.p2p, other.peer_id);
    let mut extra = PARAMS.to_vec();
    extra.extend(["--bootstrap", &other_half]);
    procs.push(start(dir, &nodes, 4, Some(&genesis_hex), ROUND_MS, &extra));
    for v in settled(&nodes, &[0, 2, 4], 5, 3).await {
        verify(&v, &genesis_hex);
        assert_eq!(v.prefix, "000100");
    }
    drop(procs);
}

/// A plain member down while its section splits comes back on the parent's SAP, whose elders
/// are all in the other half (they have the lowest names), as are all the peers it knows: they
/// answer its catch-up with the other half's branch, which it cannot take. It says so once,
/// and restarted with `--bootstrap` at a node of its own half it catches up from that node.
/// Before, it stayed on the parent's SAP for good with nothing logged, and the `--bootstrap`
/// of a restart was not asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_down_during_a_split_catches_up_through_a_bootstrap_peer_of_its_half() {
    const PARAMS: [&str; 4] = ["--elder-count", "2", "--min-section-size", "3"];
    let _network = crate::common::network_slot().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _logs = crate::common::LogsOnFailure(dir);
    std::fs::write(dir.join("pass"), format!("{}\n", common::PASSPHRASE)).unwrap();
    // Three names of each first bit; the member that goes down has the highest of bit 1, so
    // neither the root nor its half selects it.
    let (mut zeros, mut ones) = keys_by_first_bit(dir, 3);
    zeros.sort_by_key(|(n, _)| *n);
    ones.sort_by_key(|(n, _)| *n);
    // 0-2: the zeros (0 the genesis node), 3: the member that goes down, 4-5: the other ones.
    let nodes: Vec<NodeSpec> = zeros
        .into_iter()
        .chain([ones.remove(2)])
        .chain(ones)
        .map(|(_, spec)| spec)
        .collect();
    let spawn = |i: usize, genesis: Option<&str>| start(dir, &nodes, i, genesis, ROUND_MS, &PARAMS);
    let members_at_genesis = async |count: usize| {
        wait_for(
            &format!("{count} members at the genesis node"),
            Duration::from_secs(90),
            async || view(&nodes[0]).await.filter(|v| v.members == count),
        )
        .await
    };

    let mut procs: Vec<Option<Proc>> = vec![Some(spawn(0, None))];
    let genesis = wait_for("the genesis node", Duration::from_secs(30), async || {
        view(&nodes[0]).await
    })
    .await
    .genesis_key;
    for i in 1..=3 {
        procs.push(Some(spawn(i, Some(&genesis))));
        members_at_genesis(i + 1).await;
    }
    let parent = wait_for(
        "the member's parent SAP",
        Duration::from_secs(60),
        async || {
            view(&nodes[3])
                .await
                .filter(|v| v.generation == 2 && v.prefix_bits == 0)
        },
    )
    .await;
    assert!(!parent.elder);
    procs[3] = None;

    // Two more of bit 1: the halves hold three each, and the section splits without it.
    for i in 4..=5 {
        procs.push(Some(spawn(i, Some(&genesis))));
    }
    let half = wait_for("the split", Duration::from_secs(120), async || {
        let v = view(&nodes[4]).await?;
        (v.generation == 3 && v.prefix_bits == 1 && v.elder).then_some(v)
    })
    .await;
    verify(&half, &genesis);

    // Back on its own: it asks the peers it knows, all of the other half.
    procs[3] = Some(spawn(3, None));
    let log = dir.join("node3.log");
    wait_for(
        "the other-half warning",
        Duration::from_secs(60),
        async || {
            std::fs::read_to_string(&log)
                .ok()
                .filter(|l| l.contains("our section split while this node was away"))
        },
    )
    .await;
    assert_eq!(view(&nodes[3]).await.unwrap().generation, 2);

    // Restarted with a bootstrap peer of its half, it catches up from it.
    procs[3] = None;
    let boot = &nodes[4];
    let bootstrap = format!("/ip4/127.0.0.1/tcp/{}/p2p/{}", boot.p2p, boot.peer_id);
    let mut extra = PARAMS.to_vec();
    extra.extend(["--bootstrap", &bootstrap]);
    procs[3] = Some(start(dir, &nodes, 3, None, ROUND_MS, &extra));
    let caught_up = wait_for(
        "the member's catch-up",
        Duration::from_secs(60),
        async || {
            view(&nodes[3])
                .await
                .filter(|v| v.generation >= 3 && v.prefix_bits == 1)
        },
    )
    .await;
    verify(&caught_up, &genesis);
    assert_eq!(
        caught_up.key_chain.links()[..2],
        half.key_chain.links()[..2]
    );
    drop(procs);
}
