//! Members gone without leaving: who an elder skips when it selects, and how a member that was
//! only slow comes back (seed 002, "Handling a failure": the restart runs "without those
//! nodes"; this module keeps them out of the elder changes after it too).
//!
//! A failure agreement ([`crate::coordinator::Coordinator::handle_failure`] forms it,
//! [`crate::coordinator::Coordinator::handle_failure_agreement`] checks it) is signed by more
//! than `n - supermajority(n)` candidates, so within the fault bound at least one honest
//! candidate saw the named nodes not take part: it is proof that they were absent at the
//! session's generation. Without a record of it a crashed member ranks as before at the next
//! elder change, is picked again, and costs one failed DKG at every generation.
//!
//! The rule, per member name, over two numbers each node keeps ([`Absentees`]):
//! - `excluded_at`: the highest generation of a checked agreement that named it;
//! - `alive_at`: the highest generation of an [`AliveStatement`] it signed, applied only once
//!   the node has reached that generation itself (no statement signed ahead of an exclusion
//!   can answer it); one ahead is kept per member until then ([`Absentees::reached`]).
//!
//! The member is *absent*, and [`crate::elders::StartSigner`] skips it when it selects, while
//! `excluded_at` is set and `alive_at` is not above it. Both are maxima, so once a member is
//! recorded excluded the result does not depend on the order the agreements and statements
//! arrive in. A statement of a member never excluded creates no entry (the member sends its
//! statement again at every SAP and periodically, so one that arrives before the agreement it
//! answers is sent again after it).
//!
//! Coming back: a member signs a statement for the generation it is at. An agreement at
//! generation `g` is answered only by a statement of a later generation, that is once the
//! restart's handover (or any later one) reached the member. So a node that was only slow is
//! eligible again one generation after its exclusion, and a node that crashed stays skipped
//! until it runs again and has caught up. A statement is a signature by the member's own node
//! key, so nobody else can bring a member back, and no single node can make one absent (that
//! takes an agreement), apart from what a start signed by a supermajority of the elders shows:
//! a candidate holds absent whom that start skipped (`StartSigner::started`), so an elder
//! promoted after an agreement selects as the elders that saw it.
//!
//! What a node holds is its own: nothing agrees on it or hands it over. Elders whose records
//! differ select different candidates and sign different starts, none of which may reach a
//! supermajority until the records agree; the member's repeated statements make them converge.
//! An elder that missed an agreement while it was an elder keeps selecting the member it named
//! (see "Absent members" in `docs/protocol.md`).
//!
//! Cost: a statement not above what is held for its member is dropped before its signature is
//! checked, and [`Taken`] says whether the record changed, so a caller stores it only then.

use std::collections::{BTreeMap, BTreeSet};

use blstrs::Scalar;
use keyquorum_crypto::secret::Secret;
use keyquorum_dkg::wire::{Reader, WireError};

use crate::elders::Member;
use crate::name::Name;
use crate::session::NodeSignature;
use crate::wire;

const ALIVE_TAG: &[u8] = b"keyquorum-sections/alive/v1";

/// Most member names a record holds; a section splits long before.
pub const MAX_ABSENTEES: usize = 1024;

/// Why an exclusion or a statement was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AbsenceError {
    /// The statement's signature does not verify.
    #[error("bad alive statement signature")]
    BadSignature,
    /// A statement for a generation this node has not reached.
    #[error("alive statement for generation {got}, ahead of ours ({current})")]
    FutureGeneration {
        /// The statement's generation.
        got: u64,
        /// Our chain's key count.
        current: u64,
    },
    /// The record holds [`MAX_ABSENTEES`] names already.
    #[error("too many recorded members")]
    Full,
}

/// A member's signed statement that it runs at `generation` (the length of its key chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AliveStatement {
    /// The generation the member has reached.
    pub generation: u64,
    /// The member's signature with its node key.
    pub signature: NodeSignature,
}

impl AliveStatement {
    fn signing_bytes(generation: u64) -> Vec<u8> {
        let mut bytes = ALIVE_TAG.to_vec();
        bytes.extend_from_slice(&generation.to_be_bytes());
        bytes
    }

    /// The statement of the node holding `node_key` at `generation`.
    pub fn sign(node_key: &Secret<Scalar>, generation: u64) -> Self {
        AliveStatement {
            generation,
            signature: NodeSignature::sign(node_key, &Self::signing_bytes(generation)),
        }
    }

    /// The member the statement is about: its signer.
    pub fn member(&self) -> Name {
        Name::of(&self.signature.signer)
    }

    /// Whether the signature verifies.
    pub fn verify(&self) -> bool {
        self.signature.verify(&Self::signing_bytes(self.generation))
    }

    /// Encoding: the generation (u64 big-endian), the signer's key, the signature.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.generation.to_be_bytes().to_vec();
        wire::put_node_signature(&mut out, &self.signature);
        out
    }

    /// Decodes [`AliveStatement::encode`] (the signature is not checked here).
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let generation = r.u64()?;
        let signature = wire::read_node_signature(&mut r)?;
        r.finish()?;
        Ok(AliveStatement {
            generation,
            signature,
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Entry {
    excluded_at: Option<u64>,
    alive_at: Option<u64>,
}

impl Entry {
    fn absent(&self) -> bool {
        match (self.excluded_at, self.alive_at) {
            (Some(excluded), Some(alive)) => alive <= excluded,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// What taking an [`AliveStatement`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Taken {
    /// Nothing: not above what is held for the member, or the member was never excluded.
    Unchanged,
    /// Kept, in memory only, until this node reaches the statement's generation
    /// ([`Absentees::reached`]).
    Pending,
    /// The record changed (store it), the member stays as it was.
    Recorded,
    /// The record changed and the member is absent no more.
    Back,
}

/// One node's record of absent members (see the module docs for the rule), and per member at
/// most one verified statement for a generation this node has not reached yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Absentees {
    entries: BTreeMap<Name, Entry>,
    /// Not stored: a member re-sends its statement at every SAP and periodically.
    pending: BTreeMap<Name, AliveStatement>,
}

impl Absentees {
    /// A checked failure agreement of a session at `generation` named `excluded`. Returns
    /// whether any of them became absent by it. Refused whole, changing nothing, if the new
    /// names do not all fit within [`MAX_ABSENTEES`].
    pub fn excluded(
        &mut self,
        generation: u64,
        excluded: impl IntoIterator<Item = Name>,
    ) -> Result<bool, AbsenceError> {
        let names: BTreeSet<Name> = excluded.into_iter().collect();
        let new = names
            .iter()
            .filter(|n| !self.entries.contains_key(n))
            .count();
        if self.entries.len() + new > MAX_ABSENTEES {
            return Err(AbsenceError::Full);
        }
        let mut changed = false;
        for name in names {
            let entry = self.entries.entry(name).or_default();
            let was = entry.absent();
            entry.excluded_at = entry.excluded_at.max(Some(generation));
            changed |= !was && entry.absent();
        }
        Ok(changed)
    }

    /// A member's statement, taken by a node whose chain holds `current` keys. A statement not
    /// above what is held for its member, or of a member never excluded, changes nothing and
    /// is dropped before its signature is checked (the check costs a pairing); otherwise it is
    /// refused if its signature does not verify. One ahead of `current` is kept (one per
    /// member, the highest) until [`Absentees::reached`] applies it.
    pub fn alive(
        &mut self,
        statement: &AliveStatement,
        current: u64,
    ) -> Result<Taken, AbsenceError> {
        let member = statement.member();
        if statement.generation > current {
            if self
                .pending
                .get(&member)
                .is_some_and(|p| p.generation >= statement.generation)
            {
                return Ok(Taken::Unchanged);
            }
            if !self.pending.contains_key(&member) && self.pending.len() >= MAX_ABSENTEES {
                return Err(AbsenceError::Full);
            }
            if !statement.verify() {
                return Err(AbsenceError::BadSignature);
            }
            self.pending.insert(member, *statement);
            return Ok(Taken::Pending);
        }
        let answers = self.entries.get(&member).is_some_and(|e| {
            e.excluded_at.is_some() && e.alive_at.is_none_or(|a| a < statement.generation)
        });
        if !answers {
            return Ok(Taken::Unchanged);
        }
        if !statement.verify() {
            return Err(AbsenceError::BadSignature);
        }
        Ok(self.record_alive(member, statement.generation))
    }

    /// This node's chain now holds `current` keys: applies the kept statements it reached.
    /// Returns the most any of them did.
    pub fn reached(&mut self, current: u64) -> Taken {
        let due: Vec<AliveStatement> = self
            .pending
            .values()
            .filter(|s| s.generation <= current)
            .copied()
            .collect();
        let mut taken = Taken::Unchanged;
        for statement in due {
            let member = statement.member();
            self.pending.remove(&member);
            taken = taken.max(self.record_alive(member, statement.generation));
        }
        taken
    }

    /// Records a verified statement of `member` at `generation`; no entry is created for a
    /// member never excluded.
    fn record_alive(&mut self, member: Name, generation: u64) -> Taken {
        let Some(entry) = self.entries.get_mut(&member) else {
            return Taken::Unchanged;
        };
        if entry.alive_at.is_some_and(|a| a >= generation) {
            return Taken::Unchanged;
        }
        let was = entry.absent();
        entry.alive_at = Some(generation);
        if was && !entry.absent() {
            Taken::Back
        } else {
            Taken::Recorded
        }
    }

    /// Whether `name` was held absent at a generation before `generation` (and may be back
    /// since): it failed a DKG it was selected for before. A node restarted from its store
    /// replays this generation's agreements onto the stored record, which they already name
    /// at `generation`; they count as they did before the restart.
    pub fn excluded_before(&self, name: &Name, generation: u64) -> bool {
        self.entries
            .get(name)
            .and_then(|e| e.excluded_at)
            .is_some_and(|g| g < generation)
    }

    /// Whether `name` is absent.
    pub fn is_absent(&self, name: &Name) -> bool {
        self.entries.get(name).is_some_and(Entry::absent)
    }

    /// Every absent name.
    pub fn absent(&self) -> BTreeSet<Name> {
        self.entries
            .iter()
            .filter(|(_, e)| e.absent())
            .map(|(n, _)| *n)
            .collect()
    }

    /// Forgets the names that are not among `members` (they left).
    pub fn retain_members(&mut self, members: &[Member]) {
        let names: BTreeSet<Name> = members.iter().map(|m| m.peer.name()).collect();
        self.entries.retain(|n, _| names.contains(n));
        self.pending.retain(|n, _| names.contains(n));
    }

    /// Canonical encoding: the entry count (u32), then per name ascending: the name and each of
    /// `excluded_at`, `alive_at` as 0, or 1 and the generation (u64 big-endian).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = (self.entries.len() as u32).to_be_bytes().to_vec();
        for (name, entry) in &self.entries {
            out.extend_from_slice(&name.0);
            for generation in [entry.excluded_at, entry.alive_at] {
                match generation {
                    None => out.push(0),
                    Some(g) => {
                        out.push(1);
                        out.extend_from_slice(&g.to_be_bytes());
                    }
                }
            }
        }
        out
    }

    /// Decodes [`Absentees::encode`], refusing any other bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let n = r.count("absentees", MAX_ABSENTEES)?;
        let mut entries = BTreeMap::new();
        let mut last: Option<Name> = None;
        for _ in 0..n {
            let name = Name(r.array()?);
            if last.is_some_and(|l| l >= name) {
                return Err(WireError::NonCanonical("absentees order"));
            }
            last = Some(name);
            let mut generations = [None, None];
            for g in &mut generations {
                *g = match r.array::<1>()?[0] {
                    0 => None,
                    1 => Some(r.u64()?),
                    _ => return Err(WireError::NonCanonical("absentee generation")),
                };
            }
            let [excluded_at, alive_at] = generations;
            // Only an exclusion creates an entry.
            if excluded_at.is_none() {
                return Err(WireError::NonCanonical("absentee never excluded"));
            }
            entries.insert(
                name,
                Entry {
                    excluded_at,
                    alive_at,
                },
            );
        }
        r.finish()?;
        Ok(Absentees {
            entries,
            pending: BTreeMap::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(i: u64) -> (Secret<Scalar>, Name) {
        let sk = Secret::new(Scalar::from(i + 1));
        let name = Name::of(&keyquorum_crypto::tbls::public_key::<
            keyquorum_crypto::tbls::MinPk,
        >(&sk));
        (sk, name)
    }

    #[test]
    fn only_a_later_statement_of_its_own_brings_an_excluded_member_back() {
        let (sk, x) = node(1);
        let (other_sk, _) = node(2);
        let mut a = Absentees::default();
        assert!(a.excluded(3, [x]).unwrap());
        assert!(a.is_absent(&x));
        // A statement of the exclusion's generation or before does not answer it.
        assert_eq!(
            a.alive(&AliveStatement::sign(&sk, 3), 3),
            Ok(Taken::Recorded)
        );
        assert_eq!(
            a.alive(&AliveStatement::sign(&sk, 2), 3),
            Ok(Taken::Unchanged)
        );
        assert!(a.is_absent(&x));
        // A forged one, or another node's (never excluded), changes nothing.
        let mut forged = AliveStatement::sign(&sk, 4);
        forged.signature.signature = AliveStatement::sign(&other_sk, 4).signature.signature;
        assert_eq!(a.alive(&forged, 4), Err(AbsenceError::BadSignature));
        assert_eq!(
            a.alive(&AliveStatement::sign(&other_sk, 4), 4),
            Ok(Taken::Unchanged)
        );
        assert!(a.is_absent(&x));
        // Its own statement of a later generation does.
        assert_eq!(a.alive(&AliveStatement::sign(&sk, 4), 4), Ok(Taken::Back));
        assert!(!a.is_absent(&x));
        // A second agreement later makes it absent again.
        assert!(a.excluded(5, [x]).unwrap());
        assert_eq!(a.absent(), BTreeSet::from([x]));
    }

    #[test]
    fn a_statement_ahead_of_us_is_kept_and_applied_once_we_reach_it() {
        let (sk, x) = node(1);
        let (other_sk, _) = node(2);
        let mut a = Absentees::default();
        a.excluded(3, [x]).unwrap();
        // The member applied generation 4 before this elder did.
        assert_eq!(
            a.alive(&AliveStatement::sign(&sk, 4), 3),
            Ok(Taken::Pending)
        );
        assert!(a.is_absent(&x));
        // A lower or equal one does not replace it; a forged one is refused.
        assert_eq!(
            a.alive(&AliveStatement::sign(&sk, 4), 3),
            Ok(Taken::Unchanged)
        );
        let mut forged = AliveStatement::sign(&sk, 6);
        forged.signature.signature = AliveStatement::sign(&other_sk, 6).signature.signature;
        assert_eq!(a.alive(&forged, 3), Err(AbsenceError::BadSignature));
        assert_eq!(a.reached(3), Taken::Unchanged);
        assert!(a.is_absent(&x));
        assert_eq!(a.reached(4), Taken::Back);
        assert!(!a.is_absent(&x));
        assert_eq!(a.reached(5), Taken::Unchanged);
        // Pending statements of those who left are forgotten.
        a.excluded(5, [x]).unwrap();
        a.alive(&AliveStatement::sign(&sk, 7), 5).unwrap();
        a.retain_members(&[]);
        assert_eq!(a.reached(9), Taken::Unchanged);
        assert_eq!(a, Absentees::default());
    }

    #[test]
    fn a_statement_not_above_the_record_is_dropped_before_its_signature_is_checked() {
        let (sk, x) = node(1);
        let (other_sk, y) = node(2);
        let mut a = Absentees::default();
        a.excluded(3, [x]).unwrap();
        a.alive(&AliveStatement::sign(&sk, 4), 4).unwrap();
        // A bad signature at or below what is held: not checked, nothing changes.
        let mut forged = AliveStatement::sign(&sk, 4);
        forged.signature.signature = AliveStatement::sign(&other_sk, 4).signature.signature;
        let before = a.clone();
        assert_eq!(a.alive(&forged, 9), Ok(Taken::Unchanged));
        assert_eq!(a, before);
        // A member never excluded gets no entry.
        assert_eq!(
            a.alive(&AliveStatement::sign(&other_sk, 5), 9),
            Ok(Taken::Unchanged)
        );
        assert!(!a.entries.contains_key(&y));
        assert_eq!(a, before);
    }

    #[test]
    fn the_record_does_not_depend_on_the_order_it_was_told_things_in() {
        let (sk, x) = node(1);
        let (_, y) = node(2);
        let steps: [&dyn Fn(&mut Absentees); 3] = [
            &|a| {
                a.excluded(3, [x, y]).unwrap();
            },
            &|a| {
                a.alive(&AliveStatement::sign(&sk, 4), 9).unwrap();
            },
            &|a| {
                a.excluded(2, [x]).unwrap();
            },
        ];
        let orders = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        // Once a member is excluded (here at generation 1), statements and later agreements
        // may come in any order. (A statement of a member never excluded is not kept: the
        // member sends it again at every SAP and periodically.)
        let mut records = orders.iter().map(|order| {
            let mut a = Absentees::default();
            a.excluded(1, [x]).unwrap();
            for i in order {
                steps[*i](&mut a);
            }
            a
        });
        let first = records.next().unwrap();
        assert_eq!(first.absent(), BTreeSet::from([y]));
        assert!(records.all(|r| r == first));
    }

    #[test]
    fn the_record_encodes_canonically_and_is_bounded() {
        let (sk, x) = node(1);
        let (_, y) = node(2);
        let mut a = Absentees::default();
        a.excluded(3, [x, y]).unwrap();
        a.alive(&AliveStatement::sign(&sk, 4), 4).unwrap();
        let bytes = a.encode();
        assert_eq!(Absentees::decode(&bytes).unwrap(), a);
        assert!(Absentees::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(Absentees::decode(&[bytes.as_slice(), &[0]].concat()).is_err());
        assert!(Absentees::decode(&u32::MAX.to_be_bytes()).is_err());
        // Names out of order, an entry with nothing in it, a bad flag.
        let mut swapped = 2u32.to_be_bytes().to_vec();
        let (lo, hi) = if x < y { (x, y) } else { (y, x) };
        for n in [hi, lo] {
            swapped.extend_from_slice(&n.0);
            swapped.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 3, 0]);
        }
        assert!(Absentees::decode(&swapped).is_err());
        // An entry never excluded, with or without a statement.
        for body in [[0u8, 0].as_slice(), &[0, 1, 0, 0, 0, 0, 0, 0, 0, 4]] {
            let mut empty = 1u32.to_be_bytes().to_vec();
            empty.extend_from_slice(&x.0);
            empty.extend_from_slice(body);
            assert!(Absentees::decode(&empty).is_err());
        }
        let mut flag = 1u32.to_be_bytes().to_vec();
        flag.extend_from_slice(&x.0);
        flag.extend_from_slice(&[2, 0]);
        assert!(Absentees::decode(&flag).is_err());
        // Forgetting those who left.
        a.retain_members(&[]);
        assert_eq!(a, Absentees::default());
        let statement = AliveStatement::sign(&sk, 7);
        assert_eq!(
            AliveStatement::decode(&statement.encode()).unwrap(),
            statement
        );
        // The bound.
        let mut full = Absentees::default();
        let names = (0..MAX_ABSENTEES as u64).map(|i| {
            let mut n = [0u8; 32];
            n[..8].copy_from_slice(&i.to_be_bytes());
            Name(n)
        });
        full.excluded(1, names.take(MAX_ABSENTEES - 1)).unwrap();
        // Room for one name, not two: the agreement changes nothing.
        let before = full.clone();
        assert_eq!(full.excluded(2, [x, y]), Err(AbsenceError::Full));
        assert_eq!(full, before);
        assert!(!full.is_absent(&x) && !full.is_absent(&y));
        full.excluded(2, [x]).unwrap();
        assert_eq!(full.excluded(1, [y]), Err(AbsenceError::Full));
    }
}
