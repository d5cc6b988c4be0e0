//! Member lists a new elder gathers from the other elders of its SAP.
//!
//! Elders select the next elders from the members they know, so a node promoted to elder asks
//! the others for their lists. An entry of a list is the answering elder's word alone: nothing
//! in a peer record ties it to the node it names beyond the proof of possession of its DKG
//! keys, so one faulty elder could list made-up members (ground to sort first, and so be
//! selected) or a real member's name with keys and an address of its own. The asker therefore
//! takes a record only once more elders than the SAP tolerates faulty list it, byte for byte:
//! with `n` elders, `f = n - supermajority(n)` of them may be faulty, and `f + 1` identical
//! listings include an honest one. A member every honest elder knows is listed by the
//! `n - 1 - f >= f + 1` honest elders other than the asker (`supermajority(n) > 2n/3`). A
//! member only a minority of the elders knows (a leave or a refusal that reached some of them)
//! is not taken, which also keeps a member that left through most elders from coming back
//! through a stale list.
//!
//! Each answer also names the members that left through the answering elder: the same
//! `f + 1` reports of one name tell the asker that member left (through them, while the asker
//! was down, or before the asker was promoted, when as a plain member it heard of no leave),
//! and it drops it ([`MemberTally::departed`]), so that it selects from the list the others
//! select from. Only such reports remove a member, never its absence from a list: an elder
//! promoted at the same SAP answers with what it knew as a plain member, and a member missing
//! from its list is no evidence of anything. An honest elder reports a departure only for a
//! member that asked it to be removed, so faulty elders alone cannot remove anyone.
//!
//! A tally belongs to one ask: the generation of the SAP it was made for and the elders asked.
//! Each elder's first answer counts, later ones are refused, and answers for another ask are
//! the caller's to drop ([`MemberTally::generation`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::Name;
use crate::elders::Peer;
use crate::session::supermajority;

/// Why an answer was not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TallyRefusal {
    /// The sender is not one of the elders asked.
    #[error("not asked")]
    NotAsked,
    /// The sender answered this ask already.
    #[error("answered already")]
    AnsweredAlready,
}

/// The listings of one ask ([module docs](self)).
#[derive(Debug)]
pub struct MemberTally {
    generation: u64,
    asked: BTreeSet<Name>,
    answered: BTreeSet<Name>,
    needed: usize,
    /// Per name, each distinct record listed and how many elders listed it. Bounded by the
    /// answers: one per elder asked, each of a bounded length.
    listings: BTreeMap<Name, Vec<(Peer, usize)>>,
    /// Per name, how many elders reported it departed (bounded as `listings`).
    departures: BTreeMap<Name, usize>,
    taken: BTreeSet<Name>,
}

impl MemberTally {
    /// A tally for asking `asked` (the other elders of a SAP of `elder_count` elders, at
    /// `generation`).
    pub fn new(generation: u64, asked: BTreeSet<Name>, elder_count: usize) -> Self {
        MemberTally {
            generation,
            asked,
            answered: BTreeSet::new(),
            needed: listings_needed(elder_count),
            listings: BTreeMap::new(),
            departures: BTreeMap::new(),
            taken: BTreeSet::new(),
        }
    }

    /// The generation of the SAP the ask was made for.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How many identical listings a record needs.
    pub fn needed(&self) -> usize {
        self.needed
    }

    /// Of `ours` (the asker's members), the names at least [`MemberTally::needed`] elders
    /// reported departed.
    pub fn departed(&self, ours: impl IntoIterator<Item = Name>) -> Vec<Name> {
        ours.into_iter()
            .filter(|name| self.departures.get(name).copied().unwrap_or(0) >= self.needed)
            .collect()
    }

    /// Counts `from`'s answer: `peers`, the records of its list the asker does not know yet
    /// and found valid, and `departed`, the members it reports left. Returns the records that
    /// reached [`MemberTally::needed`] listings with it, each name once per tally. An answer
    /// naming one member twice counts once for it.
    pub fn count(
        &mut self,
        from: Name,
        peers: Vec<Peer>,
        departed: &[Name],
    ) -> Result<Vec<Peer>, TallyRefusal> {
        if !self.asked.contains(&from) {
            return Err(TallyRefusal::NotAsked);
        }
        if !self.answered.insert(from) {
            return Err(TallyRefusal::AnsweredAlready);
        }
        let names: BTreeSet<&Name> = departed.iter().collect();
        for name in names {
            *self.departures.entry(*name).or_default() += 1;
        }
        let mut seen = BTreeSet::new();
        let mut reached = Vec::new();
        for peer in peers {
            let name = peer.name();
            if !seen.insert(name) || self.taken.contains(&name) {
                continue;
            }
            let records = self.listings.entry(name).or_default();
            let count = match records.iter_mut().find(|(p, _)| *p == peer) {
                Some((_, count)) => {
                    *count += 1;
                    *count
                }
                None => {
                    records.push((peer.clone(), 1));
                    1
                }
            };
            if count >= self.needed {
                self.taken.insert(name);
                self.listings.remove(&name);
                reached.push(peer);
            }
        }
        Ok(reached)
    }
}

/// `f + 1` for a SAP of `elder_count` elders, `f = elder_count - supermajority(elder_count)`.
pub fn listings_needed(elder_count: usize) -> usize {
    elder_count.saturating_sub(supermajority(elder_count)) + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elders::tests::member;

    fn peer(seed: u64) -> Peer {
        member(seed, 1).peer
    }

    /// An elder's whole list, every record new to the asker, and no departure.
    fn answer(
        tally: &mut MemberTally,
        from: Name,
        peers: Vec<Peer>,
    ) -> Result<Vec<Peer>, TallyRefusal> {
        tally.count(from, peers, &[])
    }

    fn names(seeds: &[u64]) -> BTreeSet<Name> {
        seeds.iter().map(|s| peer(*s).name()).collect()
    }

    #[test]
    fn listings_needed_exceed_the_faulty_elders_and_fit_the_honest_ones() {
        assert_eq!(listings_needed(1), 1);
        assert_eq!(listings_needed(3), 1);
        assert_eq!(listings_needed(4), 2);
        assert_eq!(listings_needed(7), 3);
        for n in 1..100usize {
            let faulty = n - supermajority(n);
            let needed = listings_needed(n);
            assert!(needed > faulty, "n = {n}");
            // The honest elders other than the asker can always list a member.
            if n > 1 {
                assert!(n - 1 - faulty >= needed, "n = {n}");
            }
        }
    }

    #[test]
    fn a_record_is_taken_once_enough_elders_list_it_identically() {
        // Seven elders: the asker and six others, three listings needed.
        let others = names(&[1, 2, 3, 4, 5, 6]);
        let mut tally = MemberTally::new(9, others, 7);
        assert_eq!(tally.needed(), 3);
        let (a, b) = (peer(1), peer(2));
        let member = peer(40);
        let made_up = peer(41);
        assert_eq!(
            answer(&mut tally, a.name(), vec![member.clone(), made_up.clone()]),
            Ok(vec![])
        );
        // The same record from the same elder again does not count.
        assert_eq!(
            answer(&mut tally, a.name(), vec![member.clone()]),
            Err(TallyRefusal::AnsweredAlready)
        );
        // A list naming it twice counts once.
        assert_eq!(
            answer(&mut tally, b.name(), vec![member.clone(), member.clone()]),
            Ok(vec![])
        );
        assert_eq!(
            answer(&mut tally, peer(3).name(), vec![member.clone()]),
            Ok(vec![member.clone()])
        );
        // Taken once per tally.
        assert_eq!(
            answer(&mut tally, peer(4).name(), vec![member.clone()]),
            Ok(vec![])
        );
        // Nobody else listed the made-up member.
        assert_eq!(answer(&mut tally, peer(5).name(), vec![]), Ok(vec![]));
        assert_eq!(tally.generation(), 9);
    }

    #[test]
    fn faulty_elders_alone_cannot_plant_or_replace_a_record() {
        // Four elders: the asker and three others, one of which may be faulty.
        let mut tally = MemberTally::new(2, names(&[1, 2, 3]), 4);
        let real = peer(40);
        // The faulty elder lists the real member's name at its own address, and a member of
        // its own; the two honest elders list the real record.
        let mut forged = real.clone();
        forged.addr = "10.9.9.9:4000".into();
        assert_eq!(
            answer(&mut tally, peer(1).name(), vec![forged, peer(41)]),
            Ok(vec![])
        );
        assert_eq!(
            answer(&mut tally, peer(2).name(), vec![real.clone()]),
            Ok(vec![])
        );
        assert_eq!(
            answer(&mut tally, peer(3).name(), vec![real.clone()]),
            Ok(vec![real])
        );
    }

    #[test]
    fn only_the_elders_asked_are_counted() {
        let mut tally = MemberTally::new(2, names(&[1, 2, 3]), 4);
        assert_eq!(
            answer(&mut tally, peer(8).name(), vec![peer(40)]),
            Err(TallyRefusal::NotAsked)
        );
    }

    #[test]
    fn a_member_is_departed_once_enough_elders_report_it_and_never_for_being_unlisted() {
        // Four elders: two reports needed of the three others.
        let mut tally = MemberTally::new(5, names(&[1, 2, 3]), 4);
        let (kept, left) = (peer(40), peer(41));
        let ours = [kept.name(), left.name()];
        // A faulty elder reports a member it lists nowhere, and one that is not even ours.
        tally
            .count(peer(1).name(), vec![], &[kept.name(), peer(42).name()])
            .unwrap();
        assert_eq!(tally.departed(ours), vec![]);
        // An elder promoted with this SAP lists neither: no evidence.
        tally.count(peer(2).name(), vec![], &[]).unwrap();
        assert_eq!(tally.departed(ours), vec![]);
        // Reports of `left` from two elders, one of them twice in its answer.
        let mut tally = MemberTally::new(5, names(&[1, 2, 3]), 4);
        tally
            .count(peer(1).name(), vec![], &[left.name(), left.name()])
            .unwrap();
        assert_eq!(tally.departed(ours), vec![]);
        tally.count(peer(3).name(), vec![], &[left.name()]).unwrap();
        assert_eq!(tally.departed(ours), vec![left.name()]);
    }
}
