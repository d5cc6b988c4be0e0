//! Nodes verify a magic block before they sign it.
//!
//! Five drivers follow the contract (committees of four, chosen by stake): view 1 is made by
//! nodes 0-3; before view 2 node 4 adds stake and takes node 3's seat, so in view 2 node 3 is
//! only in the old committee (it signs the handover), node 4 only in the new one, and nodes 0-2
//! in both. The chain then serves the nodes a view-2 magic block that is not the one the
//! ceremony defined: with a wrong hash, with a foreign group key, or with a changed member list
//! (the hash recomputed, so only a node that rebuilds the block itself can tell). No node signs
//! it, in either role, and each says why in its status and metrics. Untampered, the same run
//! is signed by every node in each of its roles and view 2 activates.

use crate::common;

use common::Harness;
use keyquorum_contract::config::KeyMode;
use keyquorum_contract::hex::Hex;
use keyquorum_contract::tx::{SignerRole, TxBody};
use keyquorum_contract::{ContractConfig, Event, Group, MagicBlock};
use keyquorum_crypto::Curve;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk};

type Scalar = <Group as Curve>::Scalar;

const STAKES: [u64; 5] = [100, 99, 98, 97, 10];

fn config(key_mode: KeyMode) -> ContractConfig {
    let mut c = common::small_network("magic-block-checks", 4, 3, key_mode);
    c.committee.keep_previous_percent = 0;
    c
}

/// Runs to the view-2 magic block (and a block past it), `tamper` rewriting what the nodes are
/// served from view 2 on.
fn run(key_mode: KeyMode, tamper: Option<common::Tamper>) -> Harness {
    let mut h = Harness::new(config(key_mode), &STAKES);
    h.run_until(60, |h| h.contract.state().current_view == 1);
    h.pending.push((4, TxBody::AddStake { amount: 1000 }));
    h.tamper = tamper;
    h.run_until(60, |h| {
        h.blocks.iter().any(|b| {
            b.end_block_events
                .iter()
                .any(|e| matches!(e, Event::MagicBlockCreated { view: 2, .. }))
        })
    });
    h.step();
    h
}

fn roles(h: &Harness, view: u64) -> Vec<(usize, Vec<SignerRole>)> {
    (0..STAKES.len())
        .map(|i| (i, h.signatures(i, view)))
        .collect()
}

/// The view-2 magic block as the nodes were served it.
fn served(h: &Harness) -> MagicBlock {
    h.blocks
        .iter()
        .flat_map(|b| &b.end_block_events)
        .find_map(|e| match e {
            Event::MagicBlockCreated {
                view: 2,
                magic_block,
                ..
            } => Some(magic_block.clone()),
            _ => None,
        })
        .expect("a view-2 magic block was served")
}

/// Nodes 0-3 signed view 1 as new members, and nobody signed anything of view 2. Every node
/// that would have signed the served block (a member of view 1, or named in the block) names
/// the difference it found.
fn assert_refused(h: &Harness, what: &str) {
    for i in 0..4 {
        assert_eq!(
            h.signatures(i, 1),
            vec![SignerRole::New],
            "node {i}, view 1"
        );
    }
    let block = served(h);
    for (i, r) in roles(h, 2) {
        assert!(r.is_empty(), "node {i} signed the view-2 block: {r:?}");
        let named = block
            .member_by_identity(&h.keys[i].identity().public().to_bytes())
            .is_some();
        if i == 4 && !named {
            // Neither in the previous committee nor in the block: nothing to sign, nothing
            // to check.
            continue;
        }
        let status = h.status[i].lock().unwrap().clone();
        let m = status
            .magic_block_mismatch
            .unwrap_or_else(|| panic!("node {i} shows no mismatch"));
        assert_eq!((m.view, m.what.as_str()), (2, what), "node {i}");
        assert_eq!(
            h.metrics[i].get("keyquorum_magic_block_mismatches_total", &[("what", what)]),
            1.0,
            "node {i}"
        );
        assert!(
            h.metrics[i].render().contains(&format!(
                "keyquorum_magic_block_mismatches_total{{what=\"{what}\"}} 1"
            )),
            "node {i}"
        );
    }
    // Nothing combined on chain either: the block stays unsigned.
    let pending = h
        .contract
        .state()
        .change
        .as_ref()
        .and_then(|c| c.magic.clone());
    if let Some(p) = pending {
        assert!(p.new_partials.is_empty() && p.old_partials.is_empty());
    }
}

fn view2(
    f: impl Fn(&mut Hex<32>, &mut keyquorum_contract::MagicBlock) + 'static,
) -> common::Tamper {
    Box::new(move |e: &mut Event| {
        if let Event::MagicBlockCreated {
            view: 2,
            hash,
            magic_block,
            ..
        } = e
        {
            f(hash, magic_block);
        }
    })
}

#[test]
fn an_honest_chain_is_signed_by_both_committees() {
    for mode in [KeyMode::Fresh, KeyMode::Reshare] {
        let mut h = run(mode, None);
        h.run_until(20, |h| h.contract.state().current_view == 2);
        let block = h.contract.view(2).unwrap().magic_block.block.clone();
        let members: Vec<usize> = block
            .members
            .iter()
            .map(|m| h.index_of(&m.identity.0))
            .collect();
        assert_eq!(members.len(), 4);
        assert!(members.contains(&4) && !members.contains(&3), "{members:?}");
        assert_eq!(h.signatures(3, 2), vec![SignerRole::Old], "{mode:?}");
        assert_eq!(h.signatures(4, 2), vec![SignerRole::New], "{mode:?}");
        for i in 0..3 {
            let mut r = h.signatures(i, 2);
            r.sort();
            assert_eq!(
                r,
                vec![SignerRole::New, SignerRole::Old],
                "{mode:?} node {i}"
            );
        }
        for i in 0..STAKES.len() {
            assert!(h.status[i].lock().unwrap().magic_block_mismatch.is_none());
        }
    }
}

#[test]
fn a_wrong_hash_gets_no_signature() {
    let h = run(
        KeyMode::Fresh,
        Some(view2(|hash, _| {
            hash.0[0] ^= 1;
        })),
    );
    assert_refused(&h, "hash");
}

#[test]
fn a_foreign_group_key_gets_no_signature() {
    for mode in [KeyMode::Fresh, KeyMode::Reshare] {
        let h = run(
            mode,
            Some(view2(|hash, block| {
                let foreign = tbls::public_key::<MinPk>(&Secret::new(Scalar::from(7u64)));
                block.group_key = Hex::from_slice(&Group::point_bytes(&foreign)).unwrap();
                *hash = Hex(block.hash());
            })),
        );
        assert_refused(&h, "group key");
    }
}

#[test]
fn a_changed_member_list_gets_no_signature() {
    let h = run(
        KeyMode::Fresh,
        Some(view2(|hash, block| {
            block.members.pop();
            *hash = Hex(block.hash());
        })),
    );
    assert_refused(&h, "members");
    // Dropping the first member instead.
    let h = run(
        KeyMode::Fresh,
        Some(view2(|hash, block| {
            block.members.remove(0);
            *hash = Hex(block.hash());
        })),
    );
    assert_refused(&h, "members");
    // Swapping a member's identity for an outsider's is caught the same way.
    let h = run(
        KeyMode::Reshare,
        Some(view2(|hash, block| {
            block.members[0].identity = Hex([0x11; 96]);
            *hash = Hex(block.hash());
        })),
    );
    assert_refused(&h, "members");
}

/// A block naming another beacon (scheme or period) than the one the contract's rule gives
/// (the configured one for a fresh key, the active view's for a reshare) is refused, the hash
/// recomputed so only the node's own rebuild can tell.
#[test]
fn a_changed_beacon_gets_no_signature() {
    use keyquorum_contract::config::BeaconScheme;
    for mode in [KeyMode::Fresh, KeyMode::Reshare] {
        let h = run(
            mode,
            Some(view2(|hash, block| {
                block.beacon.period_secs += 1;
                *hash = Hex(block.hash());
            })),
        );
        assert_refused(&h, "beacon");
        let h = run(
            mode,
            Some(view2(|hash, block| {
                block.beacon.scheme = match block.beacon.scheme {
                    BeaconScheme::PedersenBlsChained => BeaconScheme::PedersenBlsUnchained,
                    BeaconScheme::PedersenBlsUnchained => BeaconScheme::PedersenBlsChained,
                };
                *hash = Hex(block.hash());
            })),
        );
        assert_refused(&h, "beacon");
    }
}
