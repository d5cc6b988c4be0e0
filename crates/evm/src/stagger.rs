//! Who sends a fraud proof, and when: the staggering that keeps the honest members of a
//! committee from all proving the same fault at once.
//!
//! Every node's board replica finds a fault the contract can check at the same point of the
//! log, so without a rule every honest member would send the same proof together. The contract
//! slashes once per culprit and ceremony: a copy that reaches gas estimation after the first
//! proof is mined is refused for free (`AlreadySlashed`), but copies mined in the same block
//! revert and each costs its sender the gas. So the members take turns:
//!
//! - The *provers* of a fault are the members of the ceremony's committee that look honest on
//!   the board at the moment the fault is found: every dealer still active there (it
//!   contributed and no fault of its own is on the board), the culprit left out. The board is a
//!   function of the log, so every node computes the same set, from data every node has.
//! - Each prover's *rank* is its place when the provers are sorted by
//!   `keccak256(RANK_TAG || session id || culprit || prover)`: a permutation of `0..provers`,
//!   the same on every node, and another for every ceremony and culprit, so no member always
//!   pays for the proofs.
//! - The prover of rank `r` sends once the node's follower has confirmed the block
//!   `found_at + r * (confirmations + 2)`, where `found_at` is the block whose log carried the
//!   refused post, unless by then the follower has seen the culprit slashed in that ceremony.
//!   The turn is `confirmations + 2` blocks long because a proof sent at the start of a turn is
//!   mined in the next block at the latest on a live chain, and the follower reports that block
//!   `confirmations` blocks later; one more block is slack for the sender's round trip. Rank 0
//!   sends as soon as it sees the fault; a later rank sends only when every rank before it has
//!   had its turn without a settlement (it is down, slow or out of funds). A proof that still
//!   meets an earlier one is refused at estimation or, in the same block, reverts as
//!   `AlreadySlashed` (`crate::client::Revert::Mined` names the replayed reason).
//!
//! A node outside the provers (not in the committee, the culprit, or absent from the board)
//! does not send the proof: the committee's honest members are the ones following the
//! ceremony's board, and any one of them suffices.
//!
//! [`proof_turn`] is the whole rule, pure: block heights in, a decision out. The node asks it
//! at each confirmed block for the proofs it holds (`keyquorum-node`'s `chain::evm`).

use alloy_primitives::{Address, keccak256};

/// The domain tag of a prover's rank hash.
pub const RANK_TAG: &[u8] = b"keyquorum-evm/prover-rank/v1";

/// What fixes the turns of one fault: who may prove it and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofSchedule {
    /// The ceremony's session id (the contract's `sessionId`).
    pub session: [u8; 32],
    /// The dealer at fault.
    pub culprit: Address,
    /// The committee's honest-looking members when the fault was found, the culprit left out
    /// (any order: the ranks do not depend on it).
    pub provers: Vec<Address>,
    /// The block whose log carried the refused post.
    pub found_at: u64,
}

/// What a node does with a fraud proof it holds, at a given confirmed height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofTurn {
    /// Send it now.
    Send,
    /// Not this node's turn yet: ask again once block `at` is confirmed.
    Wait {
        /// The first confirmed height at which this node sends.
        at: u64,
    },
    /// The culprit is slashed in that ceremony already: drop the proof.
    Settled,
    /// This node is not among the provers: it never sends this proof.
    NotAProver,
}

/// The hash that orders the provers of `culprit`'s fault in ceremony `session`.
fn rank_key(session: &[u8; 32], culprit: Address, prover: Address) -> [u8; 32] {
    let mut input = Vec::with_capacity(RANK_TAG.len() + 32 + 20 + 20);
    input.extend_from_slice(RANK_TAG);
    input.extend_from_slice(session);
    input.extend_from_slice(culprit.as_slice());
    input.extend_from_slice(prover.as_slice());
    keccak256(input).0
}

/// `prover`'s rank among the schedule's provers (0 sends first), if it is one. A prover
/// listed twice counts once.
pub fn prover_rank(schedule: &ProofSchedule, prover: Address) -> Option<u64> {
    if prover == schedule.culprit || !schedule.provers.contains(&prover) {
        return None;
    }
    let mine = rank_key(&schedule.session, schedule.culprit, prover);
    let mut ahead: Vec<Address> = schedule
        .provers
        .iter()
        .copied()
        .filter(|p| *p != schedule.culprit && *p != prover)
        .filter(|p| {
            // Ties (a 256-bit collision) fall back to the address, so the order stays total.
            (rank_key(&schedule.session, schedule.culprit, *p), *p) < (mine, prover)
        })
        .collect();
    ahead.sort_unstable();
    ahead.dedup();
    Some(ahead.len() as u64)
}

/// Blocks between two ranks' turns, for a follower at `confirmations` blocks' depth.
pub fn turn_length(confirmations: u64) -> u64 {
    confirmations.saturating_add(2)
}

/// The staggering rule (module docs): whether `me` sends the proof of `schedule`'s fault now
/// that its follower has confirmed block `confirmed`, `settled` saying whether the follower
/// has seen the culprit slashed in that ceremony.
pub fn proof_turn(
    schedule: &ProofSchedule,
    me: Address,
    settled: bool,
    confirmed: u64,
    confirmations: u64,
) -> ProofTurn {
    if settled {
        return ProofTurn::Settled;
    }
    let Some(rank) = prover_rank(schedule, me) else {
        return ProofTurn::NotAProver;
    };
    let at = schedule
        .found_at
        .saturating_add(rank.saturating_mul(turn_length(confirmations)));
    if confirmed >= at {
        ProofTurn::Send
    } else {
        ProofTurn::Wait { at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(provers: usize) -> ProofSchedule {
        ProofSchedule {
            session: [7; 32],
            culprit: Address::repeat_byte(0xcc),
            provers: (1..=provers as u8).map(Address::repeat_byte).collect(),
            found_at: 100,
        }
    }

    /// Every prover gets a distinct rank in `0..provers`, whatever order the list is in (each
    /// node builds it from its own replica), and another session or culprit reorders them.
    #[test]
    fn ranks_are_a_permutation_the_same_on_every_node() {
        for n in [1usize, 2, 3, 7, 16, 64] {
            let s = schedule(n);
            let ranks: Vec<u64> = s
                .provers
                .iter()
                .map(|p| prover_rank(&s, *p).unwrap())
                .collect();
            let mut sorted = ranks.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..n as u64).collect::<Vec<_>>(), "n = {n}");

            let mut reversed = s.clone();
            reversed.provers.reverse();
            let mut rotated = s.clone();
            rotated.provers.rotate_left(n / 2);
            for other in [reversed, rotated] {
                for (p, r) in s.provers.iter().zip(&ranks) {
                    assert_eq!(prover_rank(&other, *p), Some(*r));
                }
            }
        }
        let s = schedule(16);
        let order = |s: &ProofSchedule| -> Vec<u64> {
            s.provers
                .iter()
                .map(|p| prover_rank(s, *p).unwrap())
                .collect()
        };
        let other_session = ProofSchedule {
            session: [8; 32],
            ..s.clone()
        };
        let other_culprit = ProofSchedule {
            culprit: Address::repeat_byte(0xcd),
            ..s.clone()
        };
        assert_ne!(order(&s), order(&other_session));
        assert_ne!(order(&s), order(&other_culprit));
    }

    /// The culprit, a node outside the provers and a prover listed twice.
    #[test]
    fn only_the_listed_provers_other_than_the_culprit_have_a_rank() {
        let mut s = schedule(3);
        s.provers.push(s.culprit);
        s.provers.push(s.provers[0]);
        assert_eq!(prover_rank(&s, s.culprit), None);
        assert_eq!(prover_rank(&s, Address::repeat_byte(0x99)), None);
        let mut ranks: Vec<u64> = (1..=3u8)
            .map(|b| prover_rank(&s, Address::repeat_byte(b)).unwrap())
            .collect();
        ranks.sort_unstable();
        assert_eq!(ranks, [0, 1, 2]);
        assert_eq!(
            proof_turn(&s, Address::repeat_byte(0x99), false, u64::MAX, 2),
            ProofTurn::NotAProver
        );
        assert_eq!(
            proof_turn(&s, s.culprit, false, u64::MAX, 2),
            ProofTurn::NotAProver
        );
    }

    /// Rank 0 sends at the block that carried the fault; rank `r` exactly
    /// `r * (confirmations + 2)` blocks later, and not one block sooner.
    #[test]
    fn a_prover_of_rank_r_sends_only_after_r_turns() {
        for confirmations in [0u64, 1, 2, 12] {
            let s = schedule(5);
            for p in &s.provers {
                let r = prover_rank(&s, *p).unwrap();
                let at = s.found_at + r * (confirmations + 2);
                assert_eq!(
                    proof_turn(&s, *p, false, at, confirmations),
                    ProofTurn::Send
                );
                assert_eq!(
                    proof_turn(&s, *p, false, at + 1, confirmations),
                    ProofTurn::Send
                );
                if r > 0 {
                    assert_eq!(
                        proof_turn(&s, *p, false, at - 1, confirmations),
                        ProofTurn::Wait { at }
                    );
                    assert_eq!(
                        proof_turn(&s, *p, false, s.found_at, confirmations),
                        ProofTurn::Wait { at }
                    );
                }
            }
        }
    }

    /// A fault the follower saw slashed is never sent, whatever the rank and height.
    #[test]
    fn a_settled_proof_is_not_sent() {
        let s = schedule(4);
        for p in &s.provers {
            for confirmed in [0, s.found_at, s.found_at + 100, u64::MAX] {
                assert_eq!(proof_turn(&s, *p, true, confirmed, 2), ProofTurn::Settled);
            }
        }
    }

    /// Heights near the top of `u64` saturate instead of wrapping to an early turn.
    #[test]
    fn turns_saturate() {
        let mut s = schedule(3);
        s.found_at = u64::MAX - 1;
        for p in s.provers.clone() {
            let turn = proof_turn(&s, p, false, u64::MAX - 1, u64::MAX);
            match prover_rank(&s, p).unwrap() {
                0 => assert_eq!(turn, ProofTurn::Send),
                _ => assert_eq!(turn, ProofTurn::Wait { at: u64::MAX }),
            }
        }
    }
}
