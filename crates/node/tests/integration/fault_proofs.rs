//! A dealer with the `forge-ack-aggregate` fault: its publication carries a forged ack
//! aggregate, signed by it. The embedded chain's contract judges it from its own board
//! (`bad_ack_signature`, slashed, left out of the magic block); every node that sees the post
//! refused asks for a fault proof naming that post, which an EVM adapter turns into
//! `proveBadAckAggregate` (`keyquorum_evm::proofs`) and the runtime drops on the embedded chain.

use keyquorum_contract::Event;
use keyquorum_contract::config::KeyMode;
use keyquorum_node::Fault;

use crate::common;
use common::Harness;

#[test]
fn a_forged_ack_aggregate_is_refused_slashed_and_reported_for_a_proof_by_every_node() {
    const N: usize = 4;
    const FORGER: usize = 3;
    let config = common::small_network("forge-ack-test", N as u32, 3, KeyMode::Fresh);
    let stakes: Vec<u64> = (0..N as u64).map(|i| 100 - i).collect();
    let mut h = Harness::new(config, &stakes);
    h.set_fault(FORGER, Fault::ForgeAckAggregate);
    h.run_until(120, |h| h.contract.state().current_view >= 1);

    let forger = h.keys[FORGER].identity().public().to_bytes();
    let records = &h.contract.state().slashings;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].identity.0, forger);
    assert_eq!(records[0].fault, "bad_ack_signature");
    let block = &h.contract.view(1).unwrap().magic_block.block;
    assert_eq!(block.members.len(), N - 1);
    assert!(block.members.iter().all(|m| m.identity.0 != forger));

    let rejected: Vec<(u32, Vec<u8>)> = h
        .events()
        .filter_map(|e| match e {
            Event::PostRejected { dealer, post, .. } => Some((*dealer, post.0.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(rejected.len(), 1, "only the forged publication is refused");
    for (i, reports) in h.fault_reports.iter().enumerate() {
        assert_eq!(reports.len(), 1, "node {i}: {reports:?}");
        assert_eq!(
            (reports[0].dealer, &reports[0].post),
            (rejected[0].0, &rejected[0].1)
        );
        assert_eq!(reports[0].view, 1);
    }
}
