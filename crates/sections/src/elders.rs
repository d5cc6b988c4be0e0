//! Elder selection and the split rule (seed 002, "When does DKG happen?").
//!
//! The elders of a section are its [`ELDER_COUNT`] oldest members, ties broken by name
//! ascending. A DKG runs only when that set differs from the current elders. After a failed DKG
//! the selection runs again with the agreed non-participants excluded, and [`StartSigner`] keeps
//! them out of later generations' selections until each states it runs again
//! ([`crate::absence`]). An elder admits members up to a cap ([`admit`]). A section splits by the
//! next bit of its members' names once both halves reach the configured minimum size; each half
//! then selects its own elders and runs its own session, authorised by the parent's elders.

use std::collections::{BTreeMap, BTreeSet};

use blstrs::Scalar;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk};

use crate::absence::{AbsenceError, Absentees, AliveStatement, Taken};
use crate::coordinator::OpenSplit;
use crate::dkg::DkgKeys;
use crate::keys::{PublicKey, key_bytes};
use crate::name::{Name, Prefix};
use crate::sap::Sap;
use crate::session::DkgStart;

/// The default number of elders of a section.
pub const ELDER_COUNT: usize = 7;

/// The default smallest half a section splits into: as many members as a section has elders,
/// so each child can select a full elder set.
pub const MIN_SECTION_SIZE: usize = ELDER_COUNT;

/// A network's section sizes; every node of a network must use the same, since elders that
/// select differently sign different starts and none gathers a supermajority.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionParams {
    /// How many elders a section selects.
    pub elder_count: usize,
    /// The fewest members each half of a split must hold.
    pub min_section_size: usize,
}

impl Default for SectionParams {
    fn default() -> Self {
        SectionParams {
            elder_count: ELDER_COUNT,
            min_section_size: MIN_SECTION_SIZE,
        }
    }
}

/// Longest network address a peer may announce, in bytes.
pub const MAX_ADDR_LEN: usize = 255;

/// A node as elders and candidates are listed: its node key (which fixes its name), the public
/// keys it runs the DKG with, and its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The node's own BLS key, with which it signs starts and failure observations.
    pub node_key: PublicKey,
    /// The DKG identity and share-encryption keys, derived from the node key's secret
    /// ([`crate::dkg::dkg_secrets`]).
    pub dkg: DkgKeys,
    /// Where to reach it.
    pub addr: String,
}

impl Peer {
    /// The peer record of the node holding `node_key`, reachable at `addr`.
    pub fn new(node_key: &Secret<Scalar>, addr: String) -> Self {
        Peer {
            node_key: tbls::public_key::<MinPk>(node_key),
            dkg: DkgKeys::of(node_key),
            addr,
        }
    }

    /// The node's name.
    pub fn name(&self) -> Name {
        Name::of(&self.node_key)
    }

    /// Canonical encoding: the 48-byte key, the DKG keys ([`DkgKeys::encode`]), the address
    /// length as u16 big-endian, the address.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&key_bytes(&self.node_key));
        self.dkg.encode(out);
        out.extend_from_slice(&(self.addr.len() as u16).to_be_bytes());
        out.extend_from_slice(self.addr.as_bytes());
    }
}

/// A member of a section with its age (older members are trusted first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Key and address.
    pub peer: Peer,
    /// Age; higher is older.
    pub age: u8,
}

/// The default cap on the members an elder admits to its section: above any size a section
/// with the default split size reaches before it splits, and within what a node stores.
pub const MAX_MEMBERS: usize = 512;

/// Why a member was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The section holds its cap of members already.
    #[error("the section is full: {cap} members")]
    SectionFull {
        /// The cap.
        cap: usize,
    },
}

/// Admits `member` to `members` (an entry with the same name is replaced: a member that moved
/// to another address), unless the members under `prefix` other than it number `cap` already.
/// Returns whether `members` changed.
pub fn admit(
    members: &mut Vec<Member>,
    member: Member,
    prefix: &Prefix,
    cap: usize,
) -> Result<bool, AdmitError> {
    if members.contains(&member) {
        return Ok(false);
    }
    let name = member.peer.name();
    let others = members
        .iter()
        .filter(|m| m.peer.name() != name && prefix.matches(&m.peer.name()))
        .count();
    if others >= cap {
        return Err(AdmitError::SectionFull { cap });
    }
    members.retain(|m| m.peer.name() != name);
    members.push(member);
    Ok(true)
}

/// Admits each of `new` as [`admit`] would one after the other, naming each member once
/// instead of at every admission: a list of hundreds learnt at once costs one pass. Stops at
/// the first that would exceed `cap`; returns how many changed `members`, and that error.
pub fn admit_all(
    members: &mut Vec<Member>,
    new: Vec<Member>,
    prefix: &Prefix,
    cap: usize,
) -> (usize, Option<AdmitError>) {
    let mut named: BTreeMap<Name, usize> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (m.peer.name(), i))
        .collect();
    let mut under = named.keys().filter(|n| prefix.matches(n)).count();
    let mut changed = 0;
    for member in new {
        let name = member.peer.name();
        let existing = named.get(&name).copied();
        if existing.is_some_and(|i| members[i] == member) {
            continue;
        }
        let others = under - usize::from(existing.is_some() && prefix.matches(&name));
        if others >= cap {
            return (changed, Some(AdmitError::SectionFull { cap }));
        }
        match existing {
            Some(i) => members[i] = member,
            None => {
                under += usize::from(prefix.matches(&name));
                named.insert(name, members.len());
                members.push(member);
            }
        }
        changed += 1;
    }
    (changed, None)
}

/// The elders among `members`, skipping `excluded`: the `elder_count` oldest, ties by name
/// ascending; returned sorted by name, the order of a candidate list.
pub fn select_elders(
    members: &[Member],
    elder_count: usize,
    excluded: &BTreeSet<Name>,
) -> Vec<Peer> {
    let mut ranked: Vec<(&Member, Name)> = members
        .iter()
        .map(|m| (m, m.peer.name()))
        .filter(|(_, name)| !excluded.contains(name))
        .collect();
    ranked.sort_by(|(a, an), (b, bn)| b.age.cmp(&a.age).then(an.cmp(bn)));
    // A name listed twice counts once, at its oldest age.
    let mut seen = BTreeSet::new();
    ranked.retain(|(_, name)| seen.insert(*name));
    ranked.truncate(elder_count);
    ranked.sort_by_key(|(_, name)| *name);
    ranked.into_iter().map(|(m, _)| m.peer.clone()).collect()
}

/// The new elder candidates if the selection differs from `current` elders (by name), `None` if
/// no DKG is needed.
pub fn elder_change(
    current: &BTreeSet<Name>,
    members: &[Member],
    elder_count: usize,
    excluded: &BTreeSet<Name>,
) -> Option<Vec<Peer>> {
    let selected = select_elders(members, elder_count, excluded);
    let names: BTreeSet<Name> = selected.iter().map(Peer::name).collect();
    (names != *current).then_some(selected)
}

/// The two halves of a section under `prefix` if both hold at least `min_size` of its members
/// (members outside the prefix are ignored): `[(prefix0, members0), (prefix1, members1)]`.
pub fn split(
    prefix: &Prefix,
    members: &[Member],
    min_size: usize,
) -> Option<[(Prefix, Vec<Member>); 2]> {
    let zero = prefix.child(0)?;
    let one = prefix.child(1)?;
    let (mut low, mut high) = (Vec::new(), Vec::new());
    for m in members {
        let name = m.peer.name();
        if zero.matches(&name) {
            low.push(m.clone());
        } else if one.matches(&name) {
            high.push(m.clone());
        }
    }
    (low.len() >= min_size && high.len() >= min_size).then_some([(zero, low), (one, high)])
}

/// The starts the elders of `sap` should sign at `generation` (the length of their key chain)
/// for `members` (those outside the prefix are ignored): one for each half if the section
/// splits, else one if its elders change, else none. The `excluded` (a failure agreement's
/// non-participants) are never selected, but still count as members for the split: a split's
/// halves run independent sessions, and once one half's restart excludes a node the other half
/// may already be handed over, so the restart must split the same way.
///
/// `restart`: a session of this generation failed, and this is its restart (seed 002: the DKG
/// runs again without the nodes that did not take part). It runs even onto the current
/// elders, which hands the section over to a new key of the same elders: the excluded are
/// absent until they state they run at a later generation ([`crate::absence`]), and without
/// that later generation a member excluded from its own promotion (a joiner that crashed
/// during its first DKG) could come back only when some other membership change moved the
/// section on.
pub fn next_starts(
    sap: &Sap,
    generation: u64,
    members: &[Member],
    params: &SectionParams,
    excluded: &BTreeSet<Name>,
    restart: bool,
) -> Vec<DkgStart> {
    let members: Vec<Member> = members
        .iter()
        .filter(|m| sap.prefix.matches(&m.peer.name()))
        .cloned()
        .collect();
    if let Some(halves) = split(&sap.prefix, &members, params.min_section_size.max(1)) {
        return halves
            .into_iter()
            .filter_map(|(prefix, half)| {
                // A half whose every member is excluded has no candidates to start.
                let elders = select_elders(&half, params.elder_count, excluded);
                (!elders.is_empty()).then(|| DkgStart::new(prefix, elders, generation))
            })
            .collect();
    }
    let current: BTreeSet<Name> = sap.names().into_iter().collect();
    let candidates = if restart {
        Some(select_elders(&members, params.elder_count, excluded))
    } else {
        elder_change(&current, &members, params.elder_count, excluded)
    };
    candidates
        .filter(|c| !c.is_empty())
        .map(|c| DkgStart::new(sap.prefix, c, generation))
        .into_iter()
        .collect()
}

/// The starts that finish `open`, a split handed over for one half only
/// ([`crate::coordinator::Coordinator::open_split`]): one per open half, its elders selected
/// from the members under it however few they are (none for a half whose every member is
/// excluded), at the split key's generation. The members may no longer call for that split, but
/// the elders that linked the first half can link no other successor of the key
/// ([`crate::successor`]).
pub fn open_split_starts(
    open: &OpenSplit,
    members: &[Member],
    params: &SectionParams,
    excluded: &BTreeSet<Name>,
) -> Vec<DkgStart> {
    open.halves
        .iter()
        .filter_map(|half| {
            let under: Vec<Member> = members
                .iter()
                .filter(|m| half.matches(&m.peer.name()))
                .cloned()
                .collect();
            let elders = select_elders(&under, params.elder_count, excluded);
            (!elders.is_empty()).then(|| DkgStart::new(*half, elders, open.generation))
        })
        .collect()
}

/// The members under `start`'s prefix that rank above its lowest-ranked candidate and are
/// not candidates: those its elders skipped. Empty if a candidate is not among `members`
/// (this node cannot rank it).
fn skipped_by(start: &DkgStart, members: &[Member]) -> BTreeSet<Name> {
    let candidates: BTreeSet<Name> = start.names().into_iter().collect();
    let mut ranked: Vec<(u8, Name)> = members
        .iter()
        .map(|m| (m.age, m.peer.name()))
        .filter(|(_, name)| start.prefix.matches(name))
        .collect();
    ranked.sort_by(|(a, an), (b, bn)| b.cmp(a).then(an.cmp(bn)));
    let mut seen = BTreeSet::new();
    ranked.retain(|(_, name)| seen.insert(*name));
    if !candidates
        .iter()
        .all(|c| ranked.iter().any(|(_, name)| name == c))
    {
        return BTreeSet::new();
    }
    let mut skipped = BTreeSet::new();
    let mut left = candidates.len();
    for (_, name) in ranked {
        if left == 0 {
            break;
        }
        if candidates.contains(&name) {
            left -= 1;
        } else {
            skipped.insert(name);
        }
    }
    skipped
}

/// An elder's bookkeeping around [`next_starts`]: the members it holds absent
/// ([`crate::absence`]: named by a checked failure agreement and not back since), which it
/// never selects, and the starts it signed already, so that each is signed once. The node
/// runtime and the simulator both sign through it.
#[derive(Debug, Clone, Default)]
pub struct StartSigner {
    absentees: Absentees,
    signed: BTreeSet<crate::session::SessionId>,
    /// Per prefix and generation, the attempt of the next start: one more than the latest
    /// failed session whose agreement we checked ([`crate::session::DkgStart::attempt`]).
    attempts: BTreeMap<(Prefix, u64), u32>,
    /// The prefixes and generations whose restart runs even onto the current elders
    /// ([`next_starts`] with `restart`): a checked agreement there named a member not held
    /// absent at an earlier generation.
    rekeys: BTreeSet<(Prefix, u64)>,
}

impl StartSigner {
    /// A signer that holds `absentees` (as stored).
    pub fn with_absentees(absentees: Absentees) -> Self {
        StartSigner {
            absentees,
            signed: BTreeSet::new(),
            attempts: BTreeMap::new(),
            rekeys: BTreeSet::new(),
        }
    }

    /// The members held absent, and those that came back.
    pub fn absentees(&self) -> &Absentees {
        &self.absentees
    }

    /// A checked failure agreement of a session at `generation` named `excluded`: left out of
    /// every start from now on, until each states it is alive at a later generation. Returns
    /// whether the record changed.
    pub fn agreed(
        &mut self,
        generation: u64,
        excluded: impl IntoIterator<Item = Name>,
    ) -> Result<bool, AbsenceError> {
        self.absentees.excluded(generation, excluded)
    }

    /// As an elder: a failure agreement we checked
    /// ([`crate::coordinator::Output::FailureAgreed`]) for the session of `prefix` at
    /// `generation` and `attempt`. Records `excluded` as [`StartSigner::agreed`] does, and makes
    /// the starts we sign for that prefix and generation from now on the next attempt: the
    /// restart may select the same candidates as a start this generation already replaced,
    /// which its candidates refuse as superseded, and whose id we signed already. Elders that
    /// checked the same agreement sign the same restart; a node restarted from its store
    /// replays the agreement and so counts it again. Returns whether the absentee record
    /// changed.
    ///
    /// The restart runs even onto the current elders (a new key of theirs, so that the section
    /// reaches the later generation the excluded must state they run at) only if the agreement
    /// names a member not held absent at an earlier generation: a member that fails every DKG
    /// it is selected for costs one such handover, and is then back only when another change
    /// moves the section on.
    pub fn agreement_checked(
        &mut self,
        prefix: Prefix,
        generation: u64,
        attempt: u32,
        excluded: impl IntoIterator<Item = Name>,
    ) -> Result<bool, AbsenceError> {
        self.replaced_start_failed(prefix, generation, attempt);
        let excluded: Vec<Name> = excluded.into_iter().collect();
        let first = excluded
            .iter()
            .any(|n| !self.absentees.excluded_before(n, generation));
        let recorded = self.agreed(generation, excluded)?;
        if first {
            self.rekeys.insert((prefix, generation));
        }
        Ok(recorded)
    }

    /// As an elder: a valid failure agreement for a start of `prefix` at `generation` and
    /// `attempt` that we replaced by a later one
    /// ([`crate::coordinator::Output::ReplacedStartFailed`]). Its absentees are not ours to
    /// hold, but the elders that stood by that start took the agreement and sign the restart at
    /// the next attempt; moving there too keeps our next start the same as theirs, where
    /// otherwise neither our replacing start nor their restart might gather a supermajority.
    pub fn replaced_start_failed(&mut self, prefix: Prefix, generation: u64, attempt: u32) {
        let next = self.attempts.entry((prefix, generation)).or_insert(0);
        *next = (*next).max(attempt.saturating_add(1));
    }

    /// What a `coordinator` output changes in our record, as its driver takes it: a failure
    /// agreement we checked as an elder ([`crate::coordinator::Output::FailureAgreed`],
    /// [`StartSigner::agreement_checked`]), one we refused for a start we replaced
    /// ([`crate::coordinator::Output::ReplacedStartFailed`],
    /// [`StartSigner::replaced_start_failed`]), and one we formed as a candidate
    /// ([`crate::coordinator::Output::Restart`]). A candidate records the absentees of an
    /// agreement it formed, so that once an elder of the restart it selects as the elders that
    /// checked it; but not when, as an elder, it signed another start at the same attempt that
    /// names any of them ([`crate::coordinator::Coordinator::named_in_another_start`]): they
    /// may have left this start for that one, so their absence proves nothing, and its own
    /// elder check refuses the agreement. Recording it anyway made two elders that had
    /// authorised different starts each hold absent the other's candidates, and their starts
    /// never met again. Returns whether the absentee record changed.
    pub fn observe(
        &mut self,
        coordinator: &crate::coordinator::Coordinator,
        output: &crate::coordinator::Output,
    ) -> Result<bool, AbsenceError> {
        use crate::coordinator::Output;
        match output {
            Output::FailureAgreed {
                prefix,
                generation,
                attempt,
                excluded,
                ..
            } => self.agreement_checked(*prefix, *generation, *attempt, excluded.iter().copied()),
            Output::ReplacedStartFailed {
                prefix,
                generation,
                attempt,
                ..
            } => {
                self.replaced_start_failed(*prefix, *generation, *attempt);
                Ok(false)
            }
            Output::Restart {
                session,
                generation,
                excluded,
                ..
            } if !coordinator.named_in_another_start(session, excluded) => {
                self.agreed(*generation, excluded.iter().copied())
            }
            _ => Ok(false),
        }
    }

    /// A member's statement that it is alive, taken at our `generation`
    /// ([`Absentees::alive`]).
    pub fn alive(
        &mut self,
        statement: &AliveStatement,
        generation: u64,
    ) -> Result<Taken, AbsenceError> {
        self.absentees.alive(statement, generation)
    }

    /// Our chain reached `generation`: applies the statements kept for it
    /// ([`Absentees::reached`]).
    pub fn reached(&mut self, generation: u64) -> Taken {
        self.absentees.reached(generation)
    }

    /// A start that a supermajority of the current elders signed, in which this node is a
    /// candidate. Each member of `members` under the start's prefix that ranks above its
    /// lowest-ranked candidate (age, then name, as [`select_elders`] ranks) but is not a
    /// candidate was skipped by those elders, which only an absence they hold (or this
    /// generation's failure agreement) makes them do. This node holds the skipped absent as
    /// of the start's generation too, so that once it is an elder it selects as they did.
    /// Every new elder is a candidate of such a start, so the elders that hold an absence
    /// never shrink below a supermajority through promotions, and their starts keep gathering
    /// one. A name inferred wrongly (a member those elders do not know yet) is back with its
    /// next alive statement, which a member that is not an elder re-sends periodically.
    /// Returns whether the record changed.
    pub fn started(&mut self, start: &DkgStart, members: &[Member]) -> Result<bool, AbsenceError> {
        let skipped = skipped_by(start, members);
        if skipped.is_empty() {
            return Ok(false);
        }
        self.absentees.excluded(start.generation, skipped)
    }

    /// Forgets the absence of those no longer among `members`.
    pub fn retain_members(&mut self, members: &[Member]) {
        self.absentees.retain_members(members);
    }

    /// The starts `coordinator` should sign for `members` and has not signed yet: what the
    /// members call for ([`next_starts`]) as an elder holding a share of the section key, but
    /// while a split of a key we can sign for is handed over for one half only, the other
    /// half's start instead ([`open_split_starts`]): as an elder of the split key that linked a
    /// half, in place of what the members call for, and after applying a half's SAP, beside our
    /// own section's starts; for every such split
    /// ([`crate::coordinator::Coordinator::open_splits`]).
    pub fn starts_to_sign(
        &mut self,
        coordinator: &crate::coordinator::Coordinator,
        members: &[Member],
        params: &SectionParams,
    ) -> Vec<DkgStart> {
        let generation = coordinator.chain().key_count();
        let open = coordinator.open_splits();
        let excluded = self.absentees.absent();
        let mut starts = Vec::new();
        if coordinator.our_share().is_some() && open.iter().all(|o| o.generation != generation) {
            let restart = self
                .rekeys
                .contains(&(coordinator.sap().prefix, generation));
            starts = next_starts(
                coordinator.sap(),
                generation,
                members,
                params,
                &excluded,
                restart,
            );
        }
        for open in &open {
            starts.extend(open_split_starts(open, members, params, &excluded));
        }
        // An open split's starts are of an older generation (the one before ours, or further
        // back once SAPs of our own half applied meanwhile).
        self.attempts.retain(|(_, g), _| {
            g.saturating_add(1) >= generation || open.iter().any(|o| o.generation == *g)
        });
        self.rekeys.retain(|(_, g)| *g >= generation);
        // The coordinator keeps an open split's attempt across restarts, where ours is lost
        // with the log that counted it.
        for open in &open {
            for half in &open.halves {
                let next = self.attempts.entry((*half, open.generation)).or_insert(0);
                *next = (*next).max(open.attempt);
            }
        }
        let attempts = &self.attempts;
        starts
            .into_iter()
            .map(|start| {
                let attempt = attempts
                    .get(&(start.prefix, start.generation))
                    .copied()
                    .unwrap_or(0);
                DkgStart::at_attempt(start.prefix, start.candidates, start.generation, attempt)
            })
            .filter(|start| self.signed.insert(start.session))
            .collect()
    }

    /// The attempt of the starts we sign for `prefix` at `generation`.
    pub fn attempt(&self, prefix: &Prefix, generation: u64) -> u32 {
        self.attempts
            .get(&(*prefix, generation))
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::chain::tests::key;

    pub(crate) fn member(seed: u64, age: u8) -> Member {
        Member {
            peer: Peer::new(&key(seed).0, format!("10.0.0.{seed}:4000")),
            age,
        }
    }

    proptest::proptest! {
        /// Admitting a list at once ends as admitting its members one by one: the same members
        /// (in another order), the same count of changes, the same refusal.
        #[test]
        fn admitting_a_list_at_once_is_admitting_it_one_by_one(
            before in proptest::collection::vec((0..10u64, 0..3u8), 0..8),
            new in proptest::collection::vec((0..10u64, 0..3u8), 0..10),
            prefix_bit in 0..3u8,
            cap in 0..9usize,
        ) {
            // The empty prefix, or either half.
            let prefix = match prefix_bit {
                2 => Prefix::default(),
                bit => Prefix::default().child(bit).unwrap(),
            };
            let mut one_by_one: Vec<Member> = Vec::new();
            for (seed, age) in &before {
                let _ = admit(&mut one_by_one, member(*seed, *age), &prefix, usize::MAX);
            }
            let mut at_once = one_by_one.clone();
            let new: Vec<Member> = new.iter().map(|(seed, age)| member(*seed, *age)).collect();
            let mut changed = 0;
            let mut refused = None;
            for m in new.clone() {
                match admit(&mut one_by_one, m, &prefix, cap) {
                    Ok(true) => changed += 1,
                    Ok(false) => {}
                    Err(e) => {
                        refused = Some(e);
                        break;
                    }
                }
            }
            let (all_changed, all_refused) = admit_all(&mut at_once, new, &prefix, cap);
            proptest::prop_assert_eq!(all_changed, changed);
            proptest::prop_assert_eq!(all_refused, refused);
            let key = |m: &Member| (m.peer.name(), m.age);
            one_by_one.sort_by_key(key);
            at_once.sort_by_key(key);
            proptest::prop_assert_eq!(at_once, one_by_one);
        }
    }

    #[test]
    fn elders_are_the_oldest_then_lowest_names() {
        // Ten members, ages 0..10; the seven oldest are ages 3..=9.
        let members: Vec<Member> = (0..10).map(|i| member(i, i as u8)).collect();
        let elders = select_elders(&members, 7, &BTreeSet::new());
        let names: BTreeSet<Name> = elders.iter().map(Peer::name).collect();
        let expected: BTreeSet<Name> = (3..10).map(|i| member(i, 0).peer.name()).collect();
        assert_eq!(names, expected);
        // Sorted by name.
        assert!(elders.windows(2).all(|w| w[0].name() < w[1].name()));

        // Equal ages: the lowest names win.
        let same_age: Vec<Member> = (0..10).map(|i| member(i, 5)).collect();
        let mut all: Vec<Name> = same_age.iter().map(|m| m.peer.name()).collect();
        all.sort();
        let picked: Vec<Name> = select_elders(&same_age, 7, &BTreeSet::new())
            .iter()
            .map(Peer::name)
            .collect();
        assert_eq!(picked, all[..7].to_vec());
    }

    #[test]
    fn a_dkg_is_needed_only_when_the_elder_set_changes() {
        let mut members: Vec<Member> = (0..8).map(|i| member(i, 10 + i as u8)).collect();
        let current: BTreeSet<Name> = select_elders(&members, 7, &BTreeSet::new())
            .iter()
            .map(Peer::name)
            .collect();
        assert_eq!(elder_change(&current, &members, 7, &BTreeSet::new()), None);
        // A young joiner does not change the elders.
        members.push(member(20, 0));
        assert_eq!(elder_change(&current, &members, 7, &BTreeSet::new()), None);
        // An old joiner does.
        members.push(member(21, 200));
        let new = elder_change(&current, &members, 7, &BTreeSet::new()).unwrap();
        assert!(new.iter().any(|p| p.name() == member(21, 0).peer.name()));
        // Excluding an elder changes them too, and the excluded node is not selected.
        let gone = member(7, 0).peer.name();
        let excluded = BTreeSet::from([gone]);
        let new = elder_change(&current, &members[..8], 7, &excluded).unwrap();
        assert!(new.iter().all(|p| p.name() != gone));
        assert_eq!(new.len(), 7);
    }

    #[test]
    fn split_happens_only_when_both_halves_reach_the_minimum() {
        let members: Vec<Member> = (0..40).map(|i| member(i, 1)).collect();
        let ones = members.iter().filter(|m| m.peer.name().bit(0) == 1).count();
        let zeros = members.len() - ones;
        let smaller = ones.min(zeros);
        let [(p0, low), (p1, high)] = split(&Prefix::ROOT, &members, smaller).unwrap();
        assert_eq!((low.len(), high.len()), (zeros, ones));
        assert!(low.iter().all(|m| p0.matches(&m.peer.name())));
        assert!(high.iter().all(|m| p1.matches(&m.peer.name())));
        assert!(split(&Prefix::ROOT, &members, smaller + 1).is_none());
    }

    #[test]
    fn the_next_starts_are_a_split_an_elder_change_a_restart_or_nothing() {
        let members: Vec<Member> = (0..12).map(|i| member(i, 1)).collect();
        let params = SectionParams {
            elder_count: 3,
            min_section_size: 2,
        };
        let none = BTreeSet::new();
        let elders = select_elders(&members[..3], 3, &none);
        let sap = Sap {
            prefix: Prefix::ROOT,
            elders: elders.clone(),
            section_key: crate::chain::tests::key(99).1,
        };
        // The elders' own members: no change, no split (three cannot give two halves of two).
        assert!(next_starts(&sap, 4, &members[..3], &params, &none, false).is_empty());
        // The restart of a failed session of this generation runs onto the same elders: a new
        // key, so that those it excluded can state they run at a later generation.
        let restart = next_starts(&sap, 4, &members[..3], &params, &none, true);
        assert_eq!(restart.len(), 1);
        assert_eq!(restart[0].candidates, elders);
        assert_eq!(restart[0].generation, 4);
        // Every member: both halves have two or more, so two starts, one per child, each
        // with the half's elders, on the same generation.
        let starts = next_starts(&sap, 4, &members, &params, &none, false);
        assert_eq!(starts.len(), 2);
        let [(p0, low), (p1, high)] = split(&Prefix::ROOT, &members, 2).unwrap();
        assert_eq!(starts[0].prefix, p0);
        assert_eq!(starts[1].prefix, p1);
        assert_eq!(starts[0].candidates, select_elders(&low, 3, &none));
        assert_eq!(starts[1].candidates, select_elders(&high, 3, &none));
        assert!(
            starts
                .iter()
                .all(|s| s.generation == 4 && s.check().is_ok())
        );
        // A minimum neither half reaches: an elder change in the section instead.
        let big = SectionParams {
            elder_count: 3,
            min_section_size: 12,
        };
        let change = next_starts(&sap, 4, &members, &big, &none, false);
        assert_eq!(change.len(), 1);
        assert_eq!(change[0].prefix, Prefix::ROOT);
        assert_eq!(change[0].candidates, select_elders(&members, 3, &none));
        // Members outside the prefix do not count.
        let child = Sap {
            prefix: p0,
            elders: low[..2].iter().map(|m| m.peer.clone()).collect::<Vec<_>>(),
            section_key: sap.section_key,
        };
        let mut child = child;
        child.elders.sort_by_key(Peer::name);
        let starts = next_starts(&child, 5, &members, &big, &none, false);
        assert!(starts.iter().all(|s| s.prefix == p0));
        assert!(
            starts
                .iter()
                .all(|s| s.names().iter().all(|n| p0.matches(n)))
        );
    }

    /// The coordinator of an elder of `elders` at `generation`: a chain of `generation` keys
    /// (`key(50)` the genesis key), a share of the last.
    fn elder_at(generation: u64, elders: Vec<Peer>) -> crate::coordinator::Coordinator {
        use crate::chain::tests::link;
        let links = (1..generation)
            .map(|g| link(&key(49 + g), &key(50 + g).1))
            .collect();
        let (share, section_key) = key(49 + generation);
        let mut elders = elders;
        elders.sort_by_key(Peer::name);
        let sap = Sap {
            prefix: Prefix::ROOT,
            elders,
            section_key,
        };
        let share = crate::sap::KeyShare {
            index: crate::sap::index_at(0),
            share,
            section_key,
        };
        crate::coordinator::Coordinator::new(
            key(99).0,
            key(50).1,
            crate::chain::KeyChain::from_links(links).unwrap(),
            sap,
            Some(share),
        )
        .unwrap()
    }

    /// A promoted elder never saw the failure agreement that made the other elders skip a
    /// member; without learning it from the start that made it a candidate, it would select
    /// the member, sign another start than they do, and after enough promotions no start would
    /// gather a supermajority.
    #[test]
    fn a_candidate_holds_absent_whom_the_authorising_elders_skipped() {
        // Ages 9 down to 1: seed 0 is the oldest.
        let members: Vec<Member> = (0..9).map(|i| member(i, 9 - i as u8)).collect();
        let x = member(1, 0).peer.name();
        let skipped_x = BTreeSet::from([x]);
        let candidates = select_elders(&members, 5, &skipped_x);
        let start = DkgStart::new(Prefix::ROOT, candidates.clone(), 4);
        let mut promoted = StartSigner::default();
        assert!(promoted.started(&start, &members).unwrap());
        assert_eq!(promoted.absentees().absent(), skipped_x);
        // It now selects as the elders that signed the start did.
        assert_eq!(
            select_elders(&members, 5, &promoted.absentees().absent()),
            candidates
        );
        // Members ranked below the youngest candidate were not skipped by anyone.
        assert!(!promoted.absentees().is_absent(&member(8, 0).peer.name()));
        // A start whose every candidate ranks first skipped nobody.
        let plain = DkgStart::new(
            Prefix::ROOT,
            select_elders(&members, 5, &BTreeSet::new()),
            4,
        );
        assert!(!StartSigner::default().started(&plain, &members).unwrap());
        // A candidate this node does not know cannot be ranked: nothing is inferred.
        let mut unknown = candidates.clone();
        unknown.pop();
        unknown.push(member(20, 0).peer);
        let odd = DkgStart::new(Prefix::ROOT, unknown, 4);
        assert!(!StartSigner::default().started(&odd, &members).unwrap());
        // The absence is as of the start's generation: a statement for a later one ends it.
        let back = crate::absence::AliveStatement::sign(&key(1).0, 5);
        assert_eq!(promoted.alive(&back, 5), Ok(Taken::Back));
        assert!(promoted.absentees().absent().is_empty());
    }

    #[test]
    fn an_absent_member_is_skipped_at_later_generations_until_it_states_it_runs() {
        let params = SectionParams {
            elder_count: 3,
            min_section_size: 100,
        };
        let mut members: Vec<Member> = (0..5).map(|i| member(i, 1)).collect();
        let none = BTreeSet::new();
        // The lowest name is always an elder while it is eligible.
        let seed_of_x = (0..5).min_by_key(|i| member(*i, 1).peer.name()).unwrap();
        let x = member(seed_of_x, 1).peer.name();
        let mut signer = StartSigner::default();
        let first = elder_at(1, select_elders(&members, 3, &none));
        assert!(signer.starts_to_sign(&first, &members, &params).is_empty());

        // A failure agreement of a session at generation 1 names it; the restart without it is
        // handed over, and the elder restarts from its stored record.
        assert!(signer.agreed(1, [x]).unwrap());
        let stored = signer.absentees().encode();
        let mut signer =
            StartSigner::with_absentees(crate::absence::Absentees::decode(&stored).unwrap());
        let without_x = BTreeSet::from([x]);
        let second = elder_at(2, select_elders(&members, 3, &without_x));

        // At generation 2 it is still skipped: no start brings it back, and when an older
        // member joins, the new elders are chosen without it.
        assert!(signer.starts_to_sign(&second, &members, &params).is_empty());
        members.push(member(10, 2));
        let starts = signer.starts_to_sign(&second, &members, &params);
        assert_eq!(starts.len(), 1);
        assert!(!starts[0].names().contains(&x));
        assert!(starts[0].names().contains(&member(10, 2).peer.name()));

        // A statement it signed at generation 1 does not bring it back; one at generation 2
        // does, and it is selected again.
        let x_key = key(seed_of_x).0;
        let stale = crate::absence::AliveStatement::sign(&x_key, 1);
        assert_eq!(signer.alive(&stale, 2), Ok(Taken::Recorded));
        assert!(signer.starts_to_sign(&second, &members, &params).is_empty());
        let fresh = crate::absence::AliveStatement::sign(&x_key, 2);
        assert_eq!(signer.alive(&fresh, 2), Ok(Taken::Back));
        let starts = signer.starts_to_sign(&second, &members, &params);
        assert_eq!(starts.len(), 1);
        assert!(starts[0].names().contains(&x));
        assert_eq!(starts[0].generation, 2);
    }

    /// A joiner excluded from the DKG that would promote it: the restart runs onto the
    /// current elders (a new key, a later generation, at which its statement brings it back).
    /// Excluded again after that, it costs no second such handover.
    #[test]
    fn a_first_exclusion_restarts_onto_the_current_elders_and_a_second_does_not() {
        let params = SectionParams {
            elder_count: 4,
            min_section_size: 100,
        };
        let members: Vec<Member> = (0..4).map(|i| member(i, 1)).collect();
        let none = BTreeSet::new();
        let joiner = members[3].peer.name();
        let elders: Vec<Peer> = members[..3].iter().map(|m| m.peer.clone()).collect();
        let mut signer = StartSigner::default();
        let first = elder_at(1, elders.clone());
        let [promotion] = &signer.starts_to_sign(&first, &members, &params)[..] else {
            panic!("one start");
        };
        assert_eq!(promotion.candidates, select_elders(&members, 4, &none));

        signer
            .agreement_checked(Prefix::ROOT, 1, 0, [joiner])
            .unwrap();
        let [restart] = &signer.starts_to_sign(&first, &members, &params)[..] else {
            panic!("the restart onto the current elders");
        };
        let mut current = elders.clone();
        current.sort_by_key(Peer::name);
        assert_eq!(restart.candidates, current);
        assert_eq!((restart.generation, restart.attempt), (1, 1));

        // At the restart's generation the joiner states it runs and is selected again.
        let second = elder_at(2, elders);
        let back = crate::absence::AliveStatement::sign(&key(3).0, 2);
        assert_eq!(signer.alive(&back, 2), Ok(Taken::Back));
        let [again] = &signer.starts_to_sign(&second, &members, &params)[..] else {
            panic!("the promotion again");
        };
        assert!(again.names().contains(&joiner));
        // Excluded a second time: no handover onto the same elders again.
        signer
            .agreement_checked(Prefix::ROOT, 2, 0, [joiner])
            .unwrap();
        assert!(signer.starts_to_sign(&second, &members, &params).is_empty());
    }

    #[test]
    fn a_join_past_the_cap_is_refused_by_name_and_a_member_may_move() {
        let mut members: Vec<Member> = (0..3).map(|i| member(i, 1)).collect();
        assert_eq!(
            admit(&mut members, member(3, 1), &Prefix::ROOT, 3),
            Err(AdmitError::SectionFull { cap: 3 })
        );
        assert_eq!(members.len(), 3);
        // Already a member: nothing to do, even at the cap; a new address replaces the entry.
        assert_eq!(
            admit(&mut members, member(0, 1), &Prefix::ROOT, 3),
            Ok(false)
        );
        let mut moved = member(0, 1);
        moved.peer.addr = "10.0.0.99:4000".into();
        assert_eq!(
            admit(&mut members, moved.clone(), &Prefix::ROOT, 3),
            Ok(true)
        );
        assert_eq!(members.len(), 3);
        assert!(members.contains(&moved));
        // Below the cap it joins; members outside the prefix do not count.
        assert_eq!(
            admit(&mut members, member(3, 1), &Prefix::ROOT, 4),
            Ok(true)
        );
        let half = Prefix::ROOT.child(member(4, 1).peer.name().bit(0)).unwrap();
        let inside = members
            .iter()
            .filter(|m| half.matches(&m.peer.name()))
            .count();
        assert_eq!(
            admit(&mut members, member(4, 1), &half, inside + 1),
            Ok(true)
        );
    }

    #[test]
    fn a_restart_of_a_split_is_a_split_however_many_it_excludes() {
        // A split's two sessions are independent: when one half's DKG fails and its restart
        // excludes a node, the other half may already be handed over. The restart must stay a
        // split (the excluded node is still a member, just not eligible), or the half's nodes
        // would stay in the parent section while the other half left it.
        let members: Vec<Member> = (0..16).map(|i| member(i, 1)).collect();
        let params = SectionParams {
            elder_count: 3,
            min_section_size: 2,
        };
        let sap = Sap {
            prefix: Prefix::ROOT,
            elders: select_elders(&members, 3, &BTreeSet::new()),
            section_key: key(99).1,
        };
        let [(p0, low), _] = split(&Prefix::ROOT, &members, 2).unwrap();
        // Exclude all but one of the low half: too few left to split on.
        let excluded: BTreeSet<Name> = low[1..].iter().map(|m| m.peer.name()).collect();
        let starts = next_starts(&sap, 4, &members, &params, &excluded, false);
        assert_eq!(starts.len(), 2);
        assert_eq!(starts[0].prefix, p0);
        assert_eq!(starts[0].names(), vec![low[0].peer.name()]);
        assert!(
            starts
                .iter()
                .all(|s| s.names().iter().all(|n| !excluded.contains(n)))
        );
        // Every member of the low half excluded: only the high half starts, never a start
        // without candidates (which no candidate could check).
        let excluded: BTreeSet<Name> = low.iter().map(|m| m.peer.name()).collect();
        let starts = next_starts(&sap, 4, &members, &params, &excluded, false);
        assert_eq!(starts.len(), 1);
        assert_ne!(starts[0].prefix, p0);
        assert!(!starts[0].names().is_empty());
    }
}
