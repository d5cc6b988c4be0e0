//! Which members have taken this node's partial of a round, so that sending it again reaches
//! only those that have not.
//!
//! The engine asks for this node's partial of the round in progress to be sent again at every
//! tick ([`keyquorum_beacon::engine::Engine::tick`]): a member that was down, or had not
//! started the view's beacon yet, gets it once it is back. Sent again to the whole committee,
//! though, every resend costs `n - 1` requests per member, `n (n - 1)` across the committee,
//! exactly when rounds are slow, which is when the machines are busiest: a congestion
//! collapse (measured at 128 members on two cores: each partial arrived about seven times per
//! round and the rounds fell 30 s behind). So each send's outcome is recorded here: a member
//! that answered the request has the partial ([`Beacon::answer`](super::Beacon::answer) runs
//! in the view's beacon), one that answered [`NOT_RUNNING`](super::NOT_RUNNING) or could not
//! be reached does not, and a send still waiting for its answer is not repeated. A member that
//! took the partial and then restarted, losing it, gets the round from the others instead:
//! from their answers to its own partial or from the batches it fetches ([`super::sync`]).
//!
//! Memory: one entry per member for each round after the last stored one that this node has
//! signed; the engine signs a round only once every earlier one is stored, so that is one
//! round's worth.

use std::collections::{BTreeMap, BTreeSet};

use keyquorum_beacon::engine::MemberId;

/// Per round this node signed: the members that have its partial, and those a send to is
/// waiting for its answer.
#[derive(Debug, Default)]
pub(super) struct Deliveries {
    rounds: BTreeMap<u64, RoundDeliveries>,
}

#[derive(Debug, Default)]
struct RoundDeliveries {
    taken: BTreeSet<MemberId>,
    in_flight: BTreeSet<MemberId>,
}

impl Deliveries {
    /// Whether this node's partial of `round` is to be sent to `member` now: not while the
    /// member has it or a send to it awaits its answer. A `true` records the send as waiting.
    pub(super) fn start(&mut self, round: u64, member: MemberId) -> bool {
        let r = self.rounds.entry(round).or_default();
        if r.taken.contains(&member) {
            return false;
        }
        r.in_flight.insert(member)
    }

    /// The send of `round`'s partial to `member` ended: `taken` when the member answered
    /// from the view's beacon. Ignored for a round already forgotten.
    pub(super) fn finish(&mut self, round: u64, member: MemberId, taken: bool) {
        let Some(r) = self.rounds.get_mut(&round) else {
            return;
        };
        r.in_flight.remove(&member);
        if taken {
            r.taken.insert(member);
        }
    }

    /// Rounds up to `last` are stored: nothing of theirs is sent again.
    pub(super) fn forget_through(&mut self, last: u64) {
        self.rounds = self.rounds.split_off(&last.saturating_add(1));
    }

    /// Rounds with a record (for tests of the bound).
    #[cfg(test)]
    pub(super) fn rounds(&self) -> usize {
        self.rounds.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_is_sent_a_round_again_only_after_a_send_it_did_not_take() {
        let mut d = Deliveries::default();
        assert!(d.start(5, 1));
        assert!(d.start(5, 2));
        // Waiting for the answer: not sent twice.
        assert!(!d.start(5, 1));
        d.finish(5, 1, true);
        d.finish(5, 2, false);
        assert!(!d.start(5, 1), "member 1 has it");
        assert!(d.start(5, 2), "member 2 did not take it");
        // Another round is another partial.
        assert!(d.start(6, 1));
        d.forget_through(5);
        assert_eq!(d.rounds(), 1);
        // An answer for a forgotten round changes nothing.
        d.finish(5, 2, true);
        assert_eq!(d.rounds(), 1);
        d.forget_through(u64::MAX);
        assert_eq!(d.rounds(), 0);
    }
}
