//! Committee selection (seed 000/001, Start; 0chain's rules from the protocol lessons).
//!
//! - Candidates are ranked by stake, highest first. Equal stakes are ordered by
//!   `SHA-256(tag || seed || identity)`, where `seed` is the previous view's random seed: as in
//!   0chain (a permutation seeded by the previous round's random seed), nobody can arrange to win
//!   ties, and the order is the same for every node.
//! - `n` is the smaller of the configured maximum and the number of candidates.
//! - Up to `keep_percent` of the `n` seats (rounded down) go first to members of the previous
//!   committee, best ranked first (0chain keeps up to 70% for previous members, for continuity
//!   of the network and, when resharing, of the dealers); the remaining seats go to the best
//!   ranked of everyone else, previous members included.
//! - The committee is listed in rank order, which fixes the share indices `1..=n`.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::state::IdentityKey;

/// The tie-break key of `identity` under `seed`.
pub fn tiebreak(seed: &[u8; 32], identity: &IdentityKey) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"keyquorum/committee-tiebreak/v1");
    h.update(seed);
    h.update(identity.0);
    h.finalize().into()
}

/// Selects the committee from `(identity, stake)` candidates. See the module docs.
pub fn select_committee(
    candidates: &[(IdentityKey, u64)],
    previous: &BTreeSet<IdentityKey>,
    seed: &[u8; 32],
    max: usize,
    keep_percent: u8,
) -> Vec<IdentityKey> {
    let mut ranked: Vec<(u64, [u8; 32], IdentityKey)> = candidates
        .iter()
        .map(|(id, stake)| (*stake, tiebreak(seed, id), *id))
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let n = max.min(ranked.len());
    let keep = n * keep_percent as usize / 100;
    let mut chosen = vec![false; ranked.len()];
    let mut count = 0;
    for (i, r) in ranked.iter().enumerate() {
        if count == keep {
            break;
        }
        if previous.contains(&r.2) {
            chosen[i] = true;
            count += 1;
        }
    }
    for c in chosen.iter_mut() {
        if count == n {
            break;
        }
        if !*c {
            *c = true;
            count += 1;
        }
    }
    ranked
        .iter()
        .zip(chosen)
        .filter(|(_, c)| *c)
        .map(|(r, _)| r.2)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::Hex;

    fn id(i: u8) -> IdentityKey {
        Hex([i; 96])
    }

    #[test]
    fn top_n_by_stake() {
        let c = vec![(id(1), 10), (id(2), 50), (id(3), 30), (id(4), 40)];
        let s = select_committee(&c, &BTreeSet::new(), &[0; 32], 3, 0);
        assert_eq!(s, vec![id(2), id(4), id(3)]);
        // Fewer candidates than seats: everyone.
        assert_eq!(
            select_committee(&c, &BTreeSet::new(), &[0; 32], 9, 0).len(),
            4
        );
    }

    #[test]
    fn ties_follow_the_seed_deterministically() {
        let c: Vec<_> = (1..=8).map(|i| (id(i), 10)).collect();
        let a = select_committee(&c, &BTreeSet::new(), &[1; 32], 4, 0);
        assert_eq!(a, select_committee(&c, &BTreeSet::new(), &[1; 32], 4, 0));
        // The order is the tie-break hash order.
        let mut expect: Vec<_> = (1..=8).map(id).collect();
        expect.sort_by_key(|i| tiebreak(&[1; 32], i));
        assert_eq!(a, expect[..4].to_vec());
        // Some other seed picks a different set (8 choose 4 = 70 subsets).
        let differs =
            (2..20u8).any(|s| select_committee(&c, &BTreeSet::new(), &[s; 32], 4, 0) != a);
        assert!(differs);
        // Input order does not matter.
        let mut rev = c.clone();
        rev.reverse();
        assert_eq!(select_committee(&rev, &BTreeSet::new(), &[1; 32], 4, 0), a);
    }

    #[test]
    fn keeps_a_share_of_the_previous_committee() {
        // Previous members 1..=4 have low stake; newcomers 5..=10 high.
        let c: Vec<_> = (1..=10u8).map(|i| (id(i), i as u64 * 10)).collect();
        let prev: BTreeSet<_> = (1..=4).map(id).collect();
        let none = select_committee(&c, &prev, &[0; 32], 5, 0);
        assert!(none.iter().all(|m| !prev.contains(m)));
        // 70% of 5 seats = 3 kept: the best three previous members, then the two best others.
        let kept = select_committee(&c, &prev, &[0; 32], 5, 70);
        assert_eq!(kept, vec![id(10), id(9), id(4), id(3), id(2)]);
        // 100% but only 4 previous: the fifth seat goes to the best newcomer.
        let all = select_committee(&c, &prev, &[0; 32], 5, 100);
        assert_eq!(all, vec![id(10), id(4), id(3), id(2), id(1)]);
    }
}
