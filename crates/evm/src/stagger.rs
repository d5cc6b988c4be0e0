//! Who sends a transaction that several members could send, and when: the staggering that
//! keeps the honest members of a committee from all sending the same fraud proof, or the same
//! activation, at once.
//!
//! On an EVM chain a copy that reaches gas estimation after the first one is mined is refused
//! for free, but copies mined in the same block as the first revert and each costs its sender
//! the gas. So the members take turns.
//!
//! ## Fraud proofs
//! Every node's board replica finds a fault the contract can check at the same point of the
//! log, so without a rule every honest member would send the same proof together. The contract
//! slashes once per culprit and ceremony (a late copy reverts as `AlreadySlashed`).
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
//!   A turn also lasts [`MIN_TURN_MS`] at least, counted from when the node began to hold the
//!   proof (after a restart, from its replay), for chains whose blocks are shorter than a
//!   send's round trip; and while the follower confirms no new block (a chain that mines only
//!   on demand), rank `r` sends after `r * IDLE_TURN_MS`, as for activations below.
//!   The turn is `confirmations + 2` blocks long because a transaction sent at the start of a
//!   turn is mined in the next block at the latest on a live chain, and the follower reports
//!   that block `confirmations` blocks later; one more block is slack for the sender's round
//!   trip. Rank 0 sends as soon as it sees the fault; a later rank sends only when every rank
//!   before it has had its turn without a settlement (it is down, slow or out of funds). A
//!   proof that still meets an earlier one is refused at estimation or, in the same block,
//!   reverts as `AlreadySlashed` (`crate::client::Revert::Mined` names the replayed reason).
//!
//! A node outside the provers (not in the committee, the culprit, or absent from the board)
//! does not send the proof: the committee's honest members are the ones following the
//! ceremony's board, and any one of them suffices.
//!
//! ## Activations
//! Every member of a new committee collects the partial signatures on its magic block off
//! chain and, once it holds a threshold of them, can activate the view; the contract takes the
//! first `activate` and refuses the others (a copy mined in the same block reverts, about
//! 130,000 gas).
//!
//! - The *activators* are the new committee's members (the block's member list, by account).
//! - Ranks as for proofs, with `keccak256(ACTIVATOR_RANK_TAG || block hash || activator)`:
//!   another order for every magic block.
//! - Unlike a fault, which every replica finds in the same block, the signatures are complete
//!   at a slightly different moment on each member (the partials travel off chain), so each
//!   member counts its turns from `collected_at`, the confirmed block at which it held them:
//!   the activator of rank `r` sends once its follower has confirmed
//!   `collected_at + r * (confirmations + 2)` and it has held them for `r * MIN_TURN_MS` (a
//!   turn of 2 s at least, for chains whose blocks come faster than the members combine),
//!   unless its follower has seen the view activated by then. Members hold the signatures
//!   within a block or so of each other (each partial goes to every member at once); the
//!   turn's one block of slack has to cover that and the sender's round trip, so a member
//!   whose partials
//!   arrive later than that may still send a copy beside an earlier rank's.
//! - The contract takes an activation only until the ceremony's wait deadline (`waitEnd`), and
//!   a committee can have more ranks than that window has turns. So every member that has not
//!   seen the view activated sends at its *last call*, two turns before the deadline
//!   (`waitEnd - 2 (confirmations + 2)`), whatever its rank: copies then may revert, but only
//!   when the earlier ranks failed, and a view that any live member can activate is activated.
//!   From `waitEnd - confirmations` on, a transaction could no longer be mined in time, and the
//!   activation is dropped.
//! - A chain that mines only when a transaction comes (anvil's default) confirms no block
//!   while every member waits its turn, so a rank-0 member that is down would stall the view.
//!   There the turns run on the clock instead: the activator of rank `r` also sends once its
//!   follower has confirmed no new block for `r * IDLE_TURN_MS` while it held the signatures.
//!   Such a chain mines each transaction in its own block, so an earlier copy is seen at gas
//!   estimation and costs nothing.
//! - A node holding the signatures without finding its own account among the activators (its
//!   registration not seen by this follower) goes after all of them rather than never: an
//!   activation left unsent stalls the view change, a copy costs only gas.
//!
//! ## View-change starts
//! The contract starts a view change only when someone calls `startViewChange` once one is due
//! (the start block reached, or a ceremony's wait phase over without an activation), and takes
//! the first call; copies in the same block revert.
//!
//! - The *starters* are the active view's members (by account), or every registered account
//!   before the first view: the nodes most likely up.
//! - Ranks as above, with `keccak256(STARTER_RANK_TAG || due block || starter)`, another order
//!   for every start. The starter of rank `r` calls once the next block is
//!   `due + r * START_TURN_BLOCKS` or later and it has found the start due for
//!   `r * MIN_TURN_MS` (fast blocks are shorter than a send's round trip), or once the head has
//!   not moved for `r * IDLE_TURN_MS` (a chain that mines only when a transaction comes). A
//!   node that is not a starter goes after all of them, so a view change starts while any
//!   registered node is up.
//! - The call is checked against the head, where every node reads whether a view change is
//!   running, so a turn is two blocks: one for the call to be mined, one of slack. A start has
//!   no deadline, so the turns cost only time.
//!
//! [`proof_turn`], [`activation_turn`] and [`start_turn`] are the whole rule, pure: block heights in, a
//! decision out. The node asks them at each confirmed block for the proofs and activations it
//! holds (`keyquorum-node`'s `chain::evm`).

use alloy_primitives::{Address, keccak256};

/// The domain tag of a prover's rank hash.
pub const RANK_TAG: &[u8] = b"keyquorum-evm/prover-rank/v1";

/// The domain tag of an activator's rank hash.
pub const ACTIVATOR_RANK_TAG: &[u8] = b"keyquorum-evm/activator-rank/v1";

/// The domain tag of a view-change starter's rank hash.
pub const STARTER_RANK_TAG: &[u8] = b"keyquorum-evm/starter-rank/v1";

/// Blocks between two starters' turns: the call is read against the head, not a confirmed
/// block, so one block to be mined and one of slack.
pub const START_TURN_BLOCKS: u64 = 2;

/// How long a chain that confirms no new block counts as one activation turn, in
/// milliseconds: 30 s, longer than the block interval of the chains the coordinator targets, so
/// a chain that mines on its own never reaches it between two blocks.
pub const IDLE_TURN_MS: u64 = 30_000;

/// The shortest activation turn, in milliseconds: on a chain with fast blocks `confirmations +
/// 2` blocks can be shorter than the spread of the moments the members combine the signatures
/// (the partials travel off chain) plus a send's round trip.
pub const MIN_TURN_MS: u64 = 2_000;

/// The clock as an activation's or a start's turns read it: how long this node has held the
/// signatures (found the start due), and how long of that no new block came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Held {
    /// Milliseconds since this node held the signatures, or found the start due.
    pub held_ms: u64,
    /// Milliseconds without a new block (confirmed, for an activation; the head, for a
    /// start), while it held them.
    pub idle_ms: u64,
}

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

/// What fixes the turns of one activation: the block and who may activate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationSchedule {
    /// The magic block's hash.
    pub block_hash: [u8; 32],
    /// The new committee's accounts (any order: the ranks do not depend on it).
    pub activators: Vec<Address>,
    /// The confirmed block at which this node held the combined signatures.
    pub collected_at: u64,
    /// The last block in which the contract takes the activation (the ceremony's wait
    /// deadline, `waitEnd`).
    pub last_block: u64,
}

/// What a node does with a transaction it holds (a fraud proof or an activation), at a given
/// confirmed height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Send it now.
    Send,
    /// Not this node's turn yet: ask again at a later block (or, for an activation, later on
    /// the clock).
    Wait {
        /// The first confirmed height of this node's turn by the blocks (an activation's or a
        /// proof's turn may also wait for the clock past it).
        at: u64,
    },
    /// Settled by another member's transaction (the culprit slashed in that ceremony, the view
    /// activated): drop it.
    Settled,
    /// This node is not among the provers of a fault: it never sends this proof.
    NotListed,
    /// Past the last block in which the contract takes it: drop it.
    TooLate,
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

/// `me`'s place among `members` (left out: `excluded`) when they are sorted by `key`, ties
/// (a 256-bit collision) broken by the address so the order stays total; `None` if `me` is not
/// one of them. A member listed twice counts once.
fn rank_among(
    members: &[Address],
    excluded: Option<Address>,
    me: Address,
    key: impl Fn(Address) -> [u8; 32],
) -> Option<u64> {
    if Some(me) == excluded || !members.contains(&me) {
        return None;
    }
    let mine = (key(me), me);
    let mut ahead: Vec<Address> = members
        .iter()
        .copied()
        .filter(|m| Some(*m) != excluded && *m != me)
        .filter(|m| (key(*m), *m) < mine)
        .collect();
    ahead.sort_unstable();
    ahead.dedup();
    Some(ahead.len() as u64)
}

/// `prover`'s rank among the schedule's provers (0 sends first), if it is one. A prover
/// listed twice counts once.
pub fn prover_rank(schedule: &ProofSchedule, prover: Address) -> Option<u64> {
    rank_among(&schedule.provers, Some(schedule.culprit), prover, |p| {
        rank_key(&schedule.session, schedule.culprit, p)
    })
}

/// The hash that orders the activators of the magic block `block_hash`.
fn activator_key(block_hash: &[u8; 32], activator: Address) -> [u8; 32] {
    let mut input = Vec::with_capacity(ACTIVATOR_RANK_TAG.len() + 32 + 20);
    input.extend_from_slice(ACTIVATOR_RANK_TAG);
    input.extend_from_slice(block_hash);
    input.extend_from_slice(activator.as_slice());
    keccak256(input).0
}

/// `me`'s rank among the schedule's activators (0 sends first); a node not listed ranks after
/// every listed one (module docs).
pub fn activator_rank(schedule: &ActivationSchedule, me: Address) -> u64 {
    rank_among(&schedule.activators, None, me, |a| {
        activator_key(&schedule.block_hash, a)
    })
    .unwrap_or_else(|| {
        let mut listed = schedule.activators.clone();
        listed.sort_unstable();
        listed.dedup();
        listed.len() as u64
    })
}

/// Blocks between two ranks' turns, for a follower at `confirmations` blocks' depth.
pub fn turn_length(confirmations: u64) -> u64 {
    confirmations.saturating_add(2)
}

/// The staggering rule (module docs): whether `me` sends the proof of `schedule`'s fault now
/// that its follower has confirmed block `confirmed`, `settled` saying whether the follower
/// has seen the culprit slashed in that ceremony, `clock` how long this node has held the
/// proof and how long of that no new block was confirmed (each turn lasts [`MIN_TURN_MS`] at
/// least, and runs on the clock, [`IDLE_TURN_MS`] a turn, while no block comes, as an
/// activation's).
pub fn proof_turn(
    schedule: &ProofSchedule,
    me: Address,
    settled: bool,
    confirmed: u64,
    confirmations: u64,
    clock: Held,
) -> Turn {
    if settled {
        return Turn::Settled;
    }
    let Some(rank) = prover_rank(schedule, me) else {
        return Turn::NotListed;
    };
    let at = schedule
        .found_at
        .saturating_add(rank.saturating_mul(turn_length(confirmations)));
    let turns_passed = confirmed >= at && clock.held_ms >= rank.saturating_mul(MIN_TURN_MS);
    if turns_passed || clock.idle_ms >= rank.saturating_mul(IDLE_TURN_MS) {
        Turn::Send
    } else {
        Turn::Wait { at }
    }
}

/// The staggering rule for an activation (module docs): whether `me` sends the activation of
/// `schedule`'s block now that its follower has confirmed block `confirmed`, `activated` saying
/// whether the follower has seen that block's view activated, `clock` how long this node has
/// held the signatures and how long of that no new block was confirmed. Never
/// [`Turn::NotListed`]; [`Turn::Wait`] names the height, the clock's part aside.
/// [`Turn::TooLate`] once a transaction sent now would be mined after `schedule.last_block`.
pub fn activation_turn(
    schedule: &ActivationSchedule,
    me: Address,
    activated: bool,
    confirmed: u64,
    confirmations: u64,
    clock: Held,
) -> Turn {
    if activated {
        return Turn::Settled;
    }
    // A transaction sent now is mined after `confirmed + confirmations` at the earliest.
    if confirmed.saturating_add(confirmations) >= schedule.last_block {
        return Turn::TooLate;
    }
    let rank = activator_rank(schedule, me);
    // Two turns before the deadline, so that a follower that skips a few blocks between two
    // asks still finds the last call open.
    let last_call = schedule
        .last_block
        .saturating_sub(turn_length(confirmations).saturating_mul(2));
    let at = schedule
        .collected_at
        .saturating_add(rank.saturating_mul(turn_length(confirmations)))
        .min(last_call);
    let turns_passed = confirmed >= at && clock.held_ms >= rank.saturating_mul(MIN_TURN_MS);
    let idle_turns_passed = clock.idle_ms >= rank.saturating_mul(IDLE_TURN_MS);
    if turns_passed || idle_turns_passed || confirmed >= last_call {
        Turn::Send
    } else {
        Turn::Wait { at }
    }
}

/// `me`'s rank among the starters of the view change due at block `due` (0 calls first); a
/// node not listed ranks after every listed one (module docs).
pub fn starter_rank(due: u64, starters: &[Address], me: Address) -> u64 {
    let key = |a: Address| {
        let mut input = Vec::with_capacity(STARTER_RANK_TAG.len() + 8 + 20);
        input.extend_from_slice(STARTER_RANK_TAG);
        input.extend_from_slice(&due.to_be_bytes());
        input.extend_from_slice(a.as_slice());
        keccak256(input).0
    };
    rank_among(starters, None, me, key).unwrap_or_else(|| {
        let mut listed = starters.to_vec();
        listed.sort_unstable();
        listed.dedup();
        listed.len() as u64
    })
}

/// The staggering rule for a view-change start (module docs): whether `me` calls
/// `startViewChange`, due since block `due`, when the chain's head is `head` (the call would be
/// mined in `head + 1`) and `clock` says how long this node has found it due and how long of
/// that the head has not moved. Only [`Turn::Send`] or [`Turn::Wait`]; [`Turn::Wait`] names
/// the height, the clock's part aside.
pub fn start_turn(due: u64, starters: &[Address], me: Address, head: u64, clock: Held) -> Turn {
    let rank = starter_rank(due, starters, me);
    let at = due.saturating_add(rank.saturating_mul(START_TURN_BLOCKS));
    let turns_passed =
        head.saturating_add(1) >= at && clock.held_ms >= rank.saturating_mul(MIN_TURN_MS);
    if turns_passed || clock.idle_ms >= rank.saturating_mul(IDLE_TURN_MS) {
        Turn::Send
    } else {
        Turn::Wait { at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock that has held for `ms` on a chain that keeps making blocks.
    fn held(ms: u64) -> Held {
        Held {
            held_ms: ms,
            idle_ms: 0,
        }
    }

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
            proof_turn(
                &s,
                Address::repeat_byte(0x99),
                false,
                u64::MAX,
                2,
                held(u64::MAX)
            ),
            Turn::NotListed
        );
        assert_eq!(
            proof_turn(&s, s.culprit, false, u64::MAX, 2, held(u64::MAX)),
            Turn::NotListed
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
                    proof_turn(&s, *p, false, at, confirmations, held(u64::MAX)),
                    Turn::Send
                );
                assert_eq!(
                    proof_turn(&s, *p, false, at + 1, confirmations, held(u64::MAX)),
                    Turn::Send
                );
                if r > 0 {
                    assert_eq!(
                        proof_turn(&s, *p, false, at - 1, confirmations, held(u64::MAX)),
                        Turn::Wait { at }
                    );
                    assert_eq!(
                        proof_turn(&s, *p, false, s.found_at, confirmations, held(u64::MAX)),
                        Turn::Wait { at }
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
                assert_eq!(
                    proof_turn(&s, *p, true, confirmed, 2, held(u64::MAX)),
                    Turn::Settled
                );
            }
        }
    }

    /// Heights near the top of `u64` saturate instead of wrapping to an early turn.
    #[test]
    fn turns_saturate() {
        let mut s = schedule(3);
        s.found_at = u64::MAX - 1;
        for p in s.provers.clone() {
            let turn = proof_turn(&s, p, false, u64::MAX - 1, u64::MAX, held(u64::MAX));
            match prover_rank(&s, p).unwrap() {
                0 => assert_eq!(turn, Turn::Send),
                _ => assert_eq!(turn, Turn::Wait { at: u64::MAX }),
            }
        }
    }

    /// A clock past every turn's floor, on a chain that keeps confirming blocks.
    const LONG: Held = Held {
        held_ms: u64::MAX,
        idle_ms: 0,
    };

    fn activation(activators: usize) -> ActivationSchedule {
        ActivationSchedule {
            block_hash: [9; 32],
            activators: (1..=activators as u8).map(Address::repeat_byte).collect(),
            collected_at: 200,
            last_block: u64::MAX,
        }
    }

    /// Activators get distinct ranks in `0..activators` whatever the list's order, and another
    /// block reorders them; a node not listed comes after all of them.
    #[test]
    fn activator_ranks_are_a_permutation_and_an_unlisted_node_goes_last() {
        for n in [1usize, 2, 4, 7, 64] {
            let s = activation(n);
            let ranks: Vec<u64> = s
                .activators
                .iter()
                .map(|a| activator_rank(&s, *a))
                .collect();
            let mut sorted = ranks.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..n as u64).collect::<Vec<_>>(), "n = {n}");
            let mut reversed = s.clone();
            reversed.activators.reverse();
            reversed.activators.push(reversed.activators[0]);
            for (a, r) in s.activators.iter().zip(&ranks) {
                assert_eq!(activator_rank(&reversed, *a), *r);
            }
            assert_eq!(
                activator_rank(&reversed, Address::repeat_byte(0xee)),
                n as u64
            );
        }
        let s = activation(16);
        let order = |s: &ActivationSchedule| -> Vec<u64> {
            s.activators.iter().map(|a| activator_rank(s, *a)).collect()
        };
        let other_block = ActivationSchedule {
            block_hash: [10; 32],
            ..s.clone()
        };
        assert_ne!(order(&s), order(&other_block));
    }

    /// Rank 0 sends at the block it collected at; rank `r` exactly `r * (confirmations + 2)`
    /// blocks later and not one block sooner; an activated view is never activated again.
    #[test]
    fn an_activator_of_rank_r_sends_only_after_r_turns_unless_activated() {
        for confirmations in [0u64, 1, 12] {
            let s = activation(5);
            let me_unlisted = Address::repeat_byte(0xee);
            for a in s.activators.iter().copied().chain([me_unlisted]) {
                let r = activator_rank(&s, a);
                let at = s.collected_at + r * (confirmations + 2);
                assert_eq!(
                    activation_turn(&s, a, false, at, confirmations, LONG),
                    Turn::Send
                );
                if r > 0 {
                    assert_eq!(
                        activation_turn(&s, a, false, at - 1, confirmations, LONG),
                        Turn::Wait { at }
                    );
                }
                for confirmed in [0, at, u64::MAX] {
                    assert_eq!(
                        activation_turn(&s, a, true, confirmed, confirmations, LONG),
                        Turn::Settled
                    );
                }
            }
        }
        // Heights near the top of `u64` saturate instead of wrapping: every rank's turn is
        // capped by the last call, two turns (four blocks) before the last block.
        let mut s = activation(3);
        s.collected_at = u64::MAX - 5;
        for a in s.activators.clone() {
            let r = activator_rank(&s, a);
            let turn = activation_turn(&s, a, false, u64::MAX - 5, 0, LONG);
            match r {
                0 => assert_eq!(turn, Turn::Send),
                _ => assert_eq!(turn, Turn::Wait { at: u64::MAX - 4 }),
            }
        }
    }

    /// On a chain that confirms no block, rank `r` sends after `r` idle turns of the clock and
    /// not a millisecond sooner, whatever the height.
    #[test]
    fn on_an_idle_chain_an_activator_of_rank_r_sends_after_r_idle_turns() {
        let s = activation(6);
        for a in s.activators.clone() {
            let r = activator_rank(&s, a);
            let turn = |idle_ms| {
                let clock = Held {
                    held_ms: idle_ms,
                    idle_ms,
                };
                activation_turn(&s, a, false, s.collected_at, 2, clock)
            };
            assert_eq!(turn(r * IDLE_TURN_MS), Turn::Send);
            if r > 0 {
                assert_eq!(
                    turn(r * IDLE_TURN_MS - 1),
                    Turn::Wait {
                        at: s.collected_at + r * 4
                    }
                );
            }
        }
    }

    /// Ranks the wait window cannot fit send at the last call, two turns before the deadline;
    /// from `last_block - confirmations` on nothing is sent.
    #[test]
    fn every_activator_not_settled_sends_at_the_last_call_and_none_too_late() {
        for confirmations in [0u64, 1, 2, 6] {
            let mut s = activation(64);
            let turn = confirmations + 2;
            s.last_block = s.collected_at + 5 * turn;
            let last_call = s.last_block - 2 * turn;
            for a in s.activators.clone() {
                let r = activator_rank(&s, a);
                let at = (s.collected_at + r * turn).min(last_call);
                let decide =
                    |confirmed| activation_turn(&s, a, false, confirmed, confirmations, LONG);
                assert_eq!(decide(at), Turn::Send, "rank {r}");
                if at > s.collected_at {
                    assert_eq!(decide(at - 1), Turn::Wait { at }, "rank {r}");
                }
                assert_eq!(decide(s.last_block - confirmations - 1), Turn::Send);
                assert_eq!(decide(s.last_block - confirmations), Turn::TooLate);
                assert_eq!(decide(u64::MAX), Turn::TooLate);
            }
        }
        // A window shorter than one turn: everyone sends at once, as without turns.
        let mut s = activation(4);
        s.last_block = s.collected_at + 3;
        for a in s.activators.clone() {
            assert_eq!(
                activation_turn(&s, a, false, s.collected_at, 1, Held::default()),
                Turn::Send
            );
        }
    }

    /// On a chain with fast blocks, rank `r` also waits `r * MIN_TURN_MS` after it held the
    /// signatures, however many blocks passed; the last call does not wait for the clock.
    #[test]
    fn a_turn_lasts_at_least_the_minimum_time_on_fast_chains() {
        let mut s = activation(8);
        s.last_block = s.collected_at + 1_000;
        for a in s.activators.clone() {
            let r = activator_rank(&s, a);
            let late_enough = s.collected_at + r * 3;
            let turn = |confirmed, held_ms| {
                let clock = Held {
                    held_ms,
                    idle_ms: 0,
                };
                activation_turn(&s, a, false, confirmed, 1, clock)
            };
            assert_eq!(turn(late_enough, r * MIN_TURN_MS), Turn::Send, "rank {r}");
            if r > 0 {
                assert!(
                    matches!(
                        turn(late_enough + 100, r * MIN_TURN_MS - 1),
                        Turn::Wait { .. }
                    ),
                    "rank {r}"
                );
                assert_eq!(turn(s.last_block - 3, 0), Turn::Send, "rank {r}");
            }
        }
    }

    /// On fast blocks a prover of rank `r` also waits `r * MIN_TURN_MS` after it found the
    /// fault.
    #[test]
    fn a_proof_turn_lasts_at_least_the_minimum_time() {
        let s = schedule(5);
        for p in &s.provers {
            let r = prover_rank(&s, *p).unwrap();
            let late = s.found_at + r * 3 + 100;
            assert_eq!(
                proof_turn(&s, *p, false, late, 1, held(r * MIN_TURN_MS)),
                Turn::Send
            );
            if r > 0 {
                assert!(matches!(
                    proof_turn(&s, *p, false, late, 1, held(r * MIN_TURN_MS - 1)),
                    Turn::Wait { .. }
                ));
            }
        }
    }

    /// On a chain that mines only on demand no block comes while the provers wait: rank `r`
    /// sends after `r * IDLE_TURN_MS` without one, so a first prover that is down does not
    /// leave the fault unproven.
    #[test]
    fn a_proof_turn_runs_on_the_clock_while_no_block_comes() {
        let s = schedule(5);
        for p in &s.provers {
            let r = prover_rank(&s, *p).unwrap();
            let idle = |ms| Held {
                held_ms: ms,
                idle_ms: ms,
            };
            assert_eq!(
                proof_turn(&s, *p, false, s.found_at, 1, idle(r * IDLE_TURN_MS)),
                Turn::Send,
                "rank {r}"
            );
            if r > 0 {
                assert_eq!(
                    proof_turn(&s, *p, false, s.found_at, 1, idle(r * IDLE_TURN_MS - 1)),
                    Turn::Wait {
                        at: s.found_at + r * 3
                    },
                    "rank {r}"
                );
            }
        }
        // Settled stays settled, and an outsider stays out, however long the chain idles.
        assert_eq!(
            proof_turn(
                &s,
                s.provers[0],
                true,
                0,
                1,
                Held {
                    held_ms: u64::MAX,
                    idle_ms: u64::MAX
                }
            ),
            Turn::Settled
        );
        assert_eq!(
            proof_turn(
                &s,
                s.culprit,
                false,
                0,
                1,
                Held {
                    held_ms: u64::MAX,
                    idle_ms: u64::MAX
                }
            ),
            Turn::NotListed
        );
    }

    /// Starters get distinct ranks, another order per due block; rank `r` calls when the next
    /// block is `due + 2r`, not a block sooner; a node not listed goes last.
    #[test]
    fn starters_take_turns_of_two_blocks_and_an_unlisted_node_goes_last() {
        let starters: Vec<Address> = (1..=7u8).map(Address::repeat_byte).collect();
        let due = 500;
        let mut ranks: Vec<u64> = starters
            .iter()
            .map(|a| starter_rank(due, &starters, *a))
            .collect();
        let first = ranks.clone();
        ranks.sort_unstable();
        assert_eq!(ranks, (0..7).collect::<Vec<_>>());
        let other: Vec<u64> = starters
            .iter()
            .map(|a| starter_rank(due + 1, &starters, *a))
            .collect();
        assert_ne!(first, other);
        let outsider = Address::repeat_byte(0xee);
        for a in starters.iter().copied().chain([outsider]) {
            let r = starter_rank(due, &starters, a);
            let at = due + r * START_TURN_BLOCKS;
            let floor = Held {
                held_ms: r * MIN_TURN_MS,
                idle_ms: 0,
            };
            assert_eq!(start_turn(due, &starters, a, at - 1, floor), Turn::Send);
            if r > 0 {
                assert_eq!(
                    start_turn(due, &starters, a, at - 2, floor),
                    Turn::Wait { at }
                );
                // Its blocks came, its time did not: fast blocks.
                let early = Held {
                    held_ms: r * MIN_TURN_MS - 1,
                    idle_ms: 0,
                };
                assert_eq!(
                    start_turn(due, &starters, a, at + 5, early),
                    Turn::Wait { at }
                );
                // No block for its idle turns: a chain that mines on demand.
                let idle = Held {
                    held_ms: r * IDLE_TURN_MS,
                    idle_ms: r * IDLE_TURN_MS,
                };
                assert_eq!(start_turn(due, &starters, a, due - 1, idle), Turn::Send);
                let almost = Held {
                    held_ms: r * IDLE_TURN_MS,
                    idle_ms: r * IDLE_TURN_MS - 1,
                };
                assert_eq!(
                    start_turn(due, &starters, a, due - 1, almost),
                    Turn::Wait { at }
                );
            } else {
                // The first starter calls as soon as it is due, whatever the clock.
                assert_eq!(
                    start_turn(due, &starters, a, due - 1, Held::default()),
                    Turn::Send
                );
            }
        }
        assert_eq!(starter_rank(due, &starters, outsider), 7);
        assert_eq!(starter_rank(due, &[], outsider), 0);
    }
}
