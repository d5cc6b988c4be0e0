//! The simulated sections network: nodes around real coordinators, the virtual clock and its
//! events, the drivers' routing, the adversaries, and the run's scenario (see the parent module).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use blstrs::Scalar;
use keyquorum_crypto::hash::tagged_hash;
use keyquorum_crypto::tbls::{self, MinPk, PartialSignature};
use keyquorum_sections::catch_up::{self, SectionAnswer};
use keyquorum_sections::chain::Link;
use keyquorum_sections::coordinator::{Coordinator, Dropped, Output};
use keyquorum_sections::dkg::DkgDrop;
use keyquorum_sections::dkg::{DkgMessage, MAX_ROUNDS, START_GRACE, VOTE_SLACK};
use keyquorum_sections::elders::{Member, Peer, SectionParams, StartSigner, next_starts};
use keyquorum_sections::keys::{KEY_LEN, PublicKey, key_bytes};
use keyquorum_sections::routing::{self, Delivery};
use keyquorum_sections::sap::{self, HandoverError, Sap, SignedSap};
use keyquorum_sections::session::{DkgStart, FailureObservation, NodeSignature};
use keyquorum_sections::simulation::secret;
use keyquorum_sections::store::{LoggedInput, MemoryStore, PersistError, PersistentCoordinator};
use keyquorum_sections::wire::Message;
use keyquorum_sections::{KeyChain, Name, Prefix, SessionId, supermajority};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::invariants::{
    NodeView, Violation, check_key_tree, check_not_nested, check_quiet, check_quiet_beyond_bound,
};
use super::{SectionFault, SectionsConfig, SectionsReport};

/// Most messages a node keeps for sessions it does not know yet (as the node runtime does).
const MAX_EARLY: usize = 256;
/// Events one quiet-down may take before the run is failed as not settling.
const EVENT_BUDGET: u64 = 1_000_000;
/// The same beyond the fault bound, where not settling is no violation (faulty candidates past
/// what a DKG tolerates can keep every session from completing) and the run ends there instead:
/// smaller, as such a run's sessions and records keep growing and each event costs more.
const EVENT_BUDGET_BEYOND_BOUND: u64 = 30_000;
/// Mixed into the seed of the catch-up delays' stream.
const CATCH_UP_STREAM: u64 = 0x6361_7463_6875_7021;
/// Deadlines a node passes one session at most (as the node runtime does).
const MAX_DEADLINES: u32 = MAX_ROUNDS + START_GRACE + VOTE_SLACK + 2;

struct SimNode {
    key_seed: u64,
    member: Member,
    /// The coordinator with what it persisted: every node logs as the runtime does, so a
    /// [`SectionFault::Crash`] node restarts from it.
    persistent: PersistentCoordinator<MemoryStore>,
    fault: Option<SectionFault>,
    /// Crashed, or left and stopped.
    down: bool,
    /// Restarts so far: deadlines armed before a restart are not the restarted node's.
    incarnation: u32,
    /// Whether its crash is scheduled or past (a crash fault crashes once a run).
    crashed: bool,
    /// When it went down and came back (a crash fault).
    crashed_at: Option<u64>,
    restarted_at: Option<u64>,
    /// Left the members; stops once a SAP without it applies.
    leaving: bool,
    early: VecDeque<(Name, Message, Option<SectionFault>)>,
    deadlines: BTreeMap<SessionId, u32>,
    /// The generation's agreed exclusions and the starts signed, as the runtime keeps them.
    start_signer: StartSigner,
    /// The key each session gave this node a share of.
    shares: BTreeMap<SessionId, [u8; KEY_LEN]>,
    /// Sessions this faulty node acts in.
    acting: BTreeSet<SessionId>,
    /// The last signed SAP it applied (what it answers a section query with).
    signed: Option<SignedSap>,
    /// Section queries sent (which peers are next in turn), and when it last sent them.
    catch_up_turn: usize,
    catch_up_asked: Option<u64>,
}

enum Event {
    Deliver {
        from: Name,
        to: Name,
        bytes: Vec<u8>,
        tag: Option<SectionFault>,
    },
    Deadline {
        node: Name,
        session: SessionId,
        incarnation: u32,
    },
    Crash(Name),
    /// A crashed [`SectionFault::Crash`] node starts again from its store.
    Restart(Name),
    /// A section query from `from` reaches `to`.
    Query {
        from: Name,
        to: Name,
    },
    /// `from`'s answer to `to`'s section query.
    Answer {
        from: Name,
        to: Name,
        bytes: Vec<u8>,
        tag: Option<SectionFault>,
    },
}

struct Work {
    at: Name,
    input: LoggedInput,
    tag: Option<SectionFault>,
}

/// A start as its signers saw it: prefix, generation, candidates.
struct StartInfo {
    prefix: Prefix,
    generation: u64,
    candidates: Vec<Name>,
    /// When an elder first signed it.
    signed_at: u64,
    /// When an honest candidate last took a share from its DKG.
    last_share_at: Option<u64>,
}

struct World {
    cfg: SectionsConfig,
    params: SectionParams,
    rng: ChaCha20Rng,
    /// Draws the delays of section queries and answers.
    catch_up_rng: ChaCha20Rng,
    now: u64,
    seq: u64,
    events: BTreeMap<(u64, u64), Event>,
    work: VecDeque<Work>,
    nodes: BTreeMap<Name, SimNode>,
    members: Vec<Member>,
    genesis_key: PublicKey,
    next_node: u64,
    spam: BTreeSet<SessionId>,
    starts: BTreeMap<SessionId, StartInfo>,
    /// Sessions honest nodes started, by prefix and generation.
    started: BTreeMap<(Prefix, u64), BTreeSet<SessionId>>,
    /// Every handover honest elders made: (parent key, new key) to the parent key and SAP.
    handed: BTreeMap<([u8; KEY_LEN], [u8; KEY_LEN]), (PublicKey, Sap)>,
    /// Handovers only nodes not held to agree made, by the same key: a faulty node acts as an
    /// honest elder whenever it may not misbehave (a faulty sole elder, say), and its SAP's key
    /// must have its place in the tree for the honest handovers from it to be checked.
    handed_by_others: BTreeMap<([u8; KEY_LEN], [u8; KEY_LEN]), (PublicKey, Sap)>,
    /// The SAP honest elders handed each (parent key, prefix) over to first.
    handed_to: BTreeMap<([u8; KEY_LEN], Prefix), Sap>,
    agreed: BTreeSet<SessionId>,
    excluded_nodes: BTreeSet<Name>,
    violations: Vec<Violation>,
    report: SectionsReport,
    /// Sessions whose checked agreement is in the report already.
    recorded_agreements: BTreeSet<SessionId>,
    /// Digests of the honest section answers whose encoding was checked to decode to them.
    checked_answers: BTreeSet<[u8; 32]>,
}

pub(super) fn run(cfg: &SectionsConfig) -> SectionsReport {
    let mut world = World::new(cfg);
    let result = world.scenario();
    world.finish(result)
}

fn may_come_later(d: &Dropped) -> bool {
    matches!(
        d,
        Dropped::UnknownSession | Dropped::FutureGeneration { .. }
    )
}

/// A uniform delay in `[min_delay, max_delay]`, plus `rto` for each of up to two lost sends.
fn transmission_delay(net: &super::SectionsNet, rng: &mut ChaCha20Rng) -> u64 {
    let mut delay = net.min_delay + rng.next_u64() % (net.max_delay - net.min_delay + 1);
    for _ in 0..2 {
        if ((rng.next_u64() % 1000) as u32) < net.drop_per_mille {
            delay += net.rto;
        }
    }
    delay
}

fn flip_last(bytes: &mut [u8]) {
    if let Some(b) = bytes.last_mut() {
        *b ^= 1;
    }
}

impl World {
    fn new(cfg: &SectionsConfig) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(cfg.seed);
        let key_seed = Self::key_seed(cfg.seed, 0);
        let peer = Peer::new(&secret(key_seed), "sim:0".into());
        let (genesis_sap, share) = sap::genesis(peer.clone(), &mut rng);
        let genesis_key = genesis_sap.section_key;
        let coordinator = Coordinator::new(
            secret(key_seed),
            genesis_key,
            KeyChain::genesis(),
            genesis_sap,
            Some(share),
        )
        .expect("the genesis chain ends in the genesis key");
        let member = Member { peer, age: 255 };
        let mut nodes = BTreeMap::new();
        nodes.insert(
            member.peer.name(),
            SimNode::new(key_seed, member.clone(), coordinator, None),
        );
        World {
            cfg: cfg.clone(),
            params: SectionParams {
                elder_count: cfg.elder_count,
                min_section_size: cfg.min_section_size,
            },
            rng,
            catch_up_rng: ChaCha20Rng::seed_from_u64(cfg.seed ^ CATCH_UP_STREAM),
            now: 0,
            seq: 0,
            events: BTreeMap::new(),
            work: VecDeque::new(),
            nodes,
            members: vec![member],
            genesis_key,
            next_node: 1,
            spam: BTreeSet::new(),
            starts: BTreeMap::new(),
            started: BTreeMap::new(),
            handed: BTreeMap::new(),
            handed_by_others: BTreeMap::new(),
            handed_to: BTreeMap::new(),
            agreed: BTreeSet::new(),
            recorded_agreements: BTreeSet::new(),
            checked_answers: BTreeSet::new(),
            excluded_nodes: BTreeSet::new(),
            violations: Vec::new(),
            report: SectionsReport {
                seed: cfg.seed,
                beyond_bound: cfg.beyond_bound,
                ..SectionsReport::default()
            },
        }
    }

    /// Node keys differ between runs: run seeds below 2^32 never share one.
    fn key_seed(run_seed: u64, node: u64) -> u64 {
        run_seed.wrapping_mul(1 << 32).wrapping_add(node)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n.max(1)
    }

    fn honest(&self, name: &Name) -> bool {
        self.nodes.get(name).is_some_and(|n| n.fault.is_none())
    }

    fn faulty(&self, name: &Name) -> bool {
        self.nodes.get(name).is_some_and(|n| n.fault.is_some())
    }

    // ----- the scenario -----

    fn scenario(&mut self) -> Result<(), Violation> {
        self.settle_and_check()?;
        let joins = self.cfg.joins;
        // Faulty joiners come after the first elder set, so growth has honest elders to start
        // from (a faulty node in a two-node section is beyond any bound anyway).
        let mut faulty_slots = BTreeSet::new();
        let first = self.cfg.elder_count.min(joins);
        let room = joins - first;
        while faulty_slots.len() < self.cfg.faulty.min(room) {
            faulty_slots.insert(first + self.below(room as u64) as usize);
        }
        let mut leave_after = BTreeSet::new();
        while leave_after.len() < self.cfg.leaves.min(room) {
            leave_after.insert(first + self.below(room as u64) as usize);
        }
        for i in 0..joins {
            let fault = faulty_slots.contains(&i).then(|| {
                let kinds = if self.cfg.faults.is_empty() {
                    SectionFault::ALL.to_vec()
                } else {
                    self.cfg.faults.clone()
                };
                kinds[self.below(kinds.len() as u64) as usize]
            });
            self.join(fault);
            let last = i + 1 == joins && !leave_after.contains(&i);
            self.after_step(last)?;
            if leave_after.contains(&i) {
                self.leave();
                self.after_step(i + 1 == joins)?;
            }
        }
        Ok(())
    }

    /// After a step: the network runs until it is quiet and is checked, or, with probability
    /// `unsettled_per_mille` (never after the last step), runs only up to two DKG rounds, so
    /// that the next step changes the members while sessions run.
    fn after_step(&mut self, last: bool) -> Result<(), Violation> {
        if !last
            && self.cfg.unsettled_per_mille > 0
            && (self.below(1000) as u32) < self.cfg.unsettled_per_mille
        {
            let end = self.now + self.below(2 * self.cfg.net.round);
            self.report.unsettled_steps += 1;
            return self.run_until(end);
        }
        self.settle_and_check()
    }

    fn join(&mut self, fault: Option<SectionFault>) {
        let index = self.next_node;
        self.next_node += 1;
        let key_seed = Self::key_seed(self.cfg.seed, index);
        let peer = Peer::new(&secret(key_seed), format!("sim:{index}"));
        let name = peer.name();
        // The newest chain an honest member holds (a handover may be under way: members that
        // have not applied it yet would hand the joiner a chain it could not catch up from).
        let Some(reference) = self
            .nodes
            .values()
            .filter(|n| {
                n.fault.is_none()
                    && !n.down
                    && !n.leaving
                    && n.coordinator().sap().prefix.matches(&name)
            })
            .max_by_key(|n| n.coordinator().chain().key_count())
        else {
            return;
        };
        let coordinator = Coordinator::new(
            secret(key_seed),
            self.genesis_key,
            reference.coordinator().chain().clone(),
            reference.coordinator().sap().clone(),
            None,
        )
        .expect("an honest member's chain verifies and ends in its SAP's key");
        let signed = reference.signed.clone();
        let age = 1 + self.below(254) as u8;
        let member = Member { peer, age };
        if let Some(kind) = fault {
            *self.report.placed.entry(kind).or_default() += 1;
            self.report.faulty_nodes.push((name, kind));
        }
        self.report
            .timeline
            .push(super::SectionEvent::Joined { name, fault });
        let mut node = SimNode::new(key_seed, member.clone(), coordinator, fault);
        node.signed = signed;
        self.nodes.insert(name, node);
        self.members.push(member);
        self.elect_everywhere();
    }

    /// An honest member of a section larger than a full elder set leaves (elders included).
    fn leave(&mut self) {
        let eligible: Vec<Name> = self
            .members
            .iter()
            .map(|m| m.peer.name())
            .filter(|n| {
                let node = &self.nodes[n];
                if node.fault.is_some() || node.down || node.leaving {
                    return false;
                }
                let sap = node.coordinator().sap();
                if self.cfg.elders_leave && !sap.names().contains(n) {
                    return false;
                }
                let prefix = sap.prefix;
                let size = self
                    .members
                    .iter()
                    .filter(|m| prefix.matches(&m.peer.name()))
                    .count();
                size > self.cfg.elder_count
            })
            .collect();
        if eligible.is_empty() {
            return;
        }
        let name = eligible[self.below(eligible.len() as u64) as usize];
        let elder = {
            let c = self.nodes[&name].coordinator();
            c.sap().names().contains(&name)
        };
        self.report
            .departures
            .push(super::Departure { name, elder });
        self.report
            .timeline
            .push(super::SectionEvent::Left(super::Departure { name, elder }));
        self.members.retain(|m| m.peer.name() != name);
        let node = self.nodes.get_mut(&name).expect("a member is a node");
        // It stops once quiet if it is no elder then (a candidate of a session that runs still
        // takes part), or once a SAP without it applies.
        node.leaving = true;
        self.elect_everywhere();
    }

    fn elect_everywhere(&mut self) {
        let names: Vec<Name> = self.nodes.keys().copied().collect();
        for n in names {
            self.elect(n);
        }
        self.drain();
    }

    /// As an elder: signs the starts the members call for, once each (the runtime's rule).
    fn elect(&mut self, at: Name) {
        let node = self.nodes.get_mut(&at).expect("known");
        if node.down {
            return;
        }
        let starts = node.start_signer.starts_to_sign(
            node.persistent.coordinator(),
            &self.members,
            &self.params,
        );
        for start in starts {
            self.work.push_back(Work {
                at,
                input: LoggedInput::SignStart(start),
                tag: None,
            });
        }
    }

    // ----- time and the network -----

    fn schedule(&mut self, delay: u64, event: Event) {
        self.seq += 1;
        self.events.insert((self.now + delay, self.seq), event);
    }

    fn send(&mut self, from: Name, to: Name, message: &Message, tag: Option<SectionFault>) {
        if from == to {
            self.work.push_back(Work {
                at: to,
                input: LoggedInput::Message {
                    from,
                    message: message.clone(),
                },
                tag,
            });
            return;
        }
        let delay = self.net_delay();
        self.schedule(
            delay,
            Event::Deliver {
                from,
                to,
                bytes: message.encode(),
                tag,
            },
        );
    }

    /// One transmission's delay, its resends included.
    fn net_delay(&mut self) -> u64 {
        transmission_delay(&self.cfg.net, &mut self.rng)
    }

    /// The delay of a section query or answer, drawn apart so that catching up leaves the
    /// rest of a seed's run as it was.
    fn catch_up_delay(&mut self) -> u64 {
        transmission_delay(&self.cfg.net, &mut self.catch_up_rng)
    }

    /// Runs every event until nothing is in flight and no deadline is pending.
    fn settle(&mut self) -> Result<(), Violation> {
        self.run_until(u64::MAX)
    }

    /// Runs every event due by `end` (or until quiet).
    fn run_until(&mut self, end: u64) -> Result<(), Violation> {
        let mut events = 0u64;
        loop {
            self.drain();
            if let Some(v) = self.violations.first() {
                return Err(v.clone());
            }
            if self
                .events
                .first_key_value()
                .is_none_or(|((at, _), _)| *at > end)
            {
                if end != u64::MAX {
                    self.now = self.now.max(end);
                }
                return Ok(());
            }
            let Some(((at, _), event)) = self.events.pop_first() else {
                return Ok(());
            };
            events += 1;
            let budget = if self.cfg.beyond_bound {
                EVENT_BUDGET_BEYOND_BOUND
            } else {
                EVENT_BUDGET
            };
            if events > budget {
                return Err(Violation::NoQuiet { events });
            }
            self.now = at;
            match event {
                Event::Deliver {
                    from,
                    to,
                    bytes,
                    tag,
                } => self.deliver(from, to, &bytes, tag),
                Event::Deadline {
                    node,
                    session,
                    incarnation,
                } => self.deadline(node, session, incarnation),
                Event::Query { from, to } => self.answer_query(from, to),
                Event::Answer {
                    from,
                    to,
                    bytes,
                    tag,
                } => self.take_answer(from, to, &bytes, tag),
                Event::Crash(name) => {
                    if let Some(node) = self.nodes.get_mut(&name)
                        && let Some(kind) = node.fault
                    {
                        node.down = true;
                        node.crashed_at = Some(at);
                        *self.report.acted.entry(kind).or_default() += 1;
                    }
                }
                Event::Restart(name) => self.restart(name),
            }
        }
    }

    fn deliver(&mut self, from: Name, to: Name, bytes: &[u8], tag: Option<SectionFault>) {
        if self.nodes.get(&to).is_none_or(|n| n.down) {
            return;
        }
        match Message::decode(bytes) {
            Ok(message) => self.work.push_back(Work {
                at: to,
                input: LoggedInput::Message { from, message },
                tag,
            }),
            Err(_) if tag.is_none() && self.honest(&from) => {
                self.violations
                    .push(Violation::HonestBadEncoding { node: from });
            }
            Err(_) => self.refused(to, tag),
        }
    }

    /// Schedules `at`'s next deadline of `session` a DKG round from now, for the node as it
    /// runs since its last restart.
    fn next_deadline(&mut self, at: Name, session: SessionId, incarnation: u32) {
        let round = self.cfg.net.round;
        self.schedule(
            round,
            Event::Deadline {
                node: at,
                session,
                incarnation,
            },
        );
    }

    fn deadline(&mut self, at: Name, session: SessionId, incarnation: u32) {
        let Some(node) = self.nodes.get_mut(&at) else {
            return;
        };
        if node.down || node.incarnation != incarnation {
            return;
        }
        if !node.coordinator().knows(&session) {
            node.deadlines.remove(&session);
            return;
        }
        let Some(passed) = node.deadlines.get_mut(&session) else {
            return;
        };
        *passed += 1;
        if *passed < MAX_DEADLINES {
            self.next_deadline(at, session, incarnation);
        } else {
            node.deadlines.remove(&session);
        }
        self.work.push_back(Work {
            at,
            input: LoggedInput::Deadline(session),
            tag: None,
        });
    }

    /// Schedules the one crash of a [`SectionFault::Crash`] node, which has just signed a start
    /// as an elder or started a DKG as a candidate, and its restart: anywhere from the DKG's
    /// first round to past its end, so that some restarts resume a running DKG or handover and
    /// some find it decided without them.
    fn crash_later(&mut self, at: Name) {
        self.nodes.get_mut(&at).expect("known").crashed = true;
        let round = self.cfg.net.round;
        let when = self.below(3 * round);
        let downtime = 1 + self.below(4 * round);
        self.schedule(when, Event::Crash(at));
        self.schedule(when + downtime, Event::Restart(at));
    }

    /// A crashed node starts again as `keyquorum sections node` does on a data directory that
    /// holds its state: the coordinator restored from its record and logged inputs, whose
    /// replayed outputs go out again; of the runtime's own state only what it persists (the
    /// absentees and the last signed SAP); its starts signed again and its section asked for.
    fn restart(&mut self, at: Name) {
        let Some(old) = self.nodes.remove(&at) else {
            return;
        };
        if !old.down || old.leaving {
            self.nodes.insert(at, old);
            return;
        }
        let (persistent, replay) =
            PersistentCoordinator::restore(secret(old.key_seed), old.persistent.into_store())
                .unwrap_or_else(|e| unreachable!("a memory store restores what it saved: {e:?}"));
        let node = SimNode {
            key_seed: old.key_seed,
            member: old.member,
            persistent,
            fault: old.fault,
            down: false,
            leaving: false,
            incarnation: old.incarnation + 1,
            crashed: true,
            crashed_at: old.crashed_at,
            restarted_at: Some(self.now),
            early: VecDeque::new(),
            deadlines: BTreeMap::new(),
            start_signer: StartSigner::with_absentees(old.start_signer.absentees().clone()),
            // The checker's memory of the keys it backed, not the node's.
            shares: old.shares,
            acting: old.acting,
            signed: old.signed,
            catch_up_turn: 0,
            catch_up_asked: None,
        };
        self.nodes.insert(at, node);
        self.report.restarted_nodes += 1;
        for output in replay {
            self.route(at, output);
        }
        self.drain();
        self.elect(at);
        self.ask_for_section(at);
    }

    fn refused(&mut self, at: Name, tag: Option<SectionFault>) {
        if let Some(kind) = tag
            && self.honest(&at)
        {
            *self.report.refused.entry(kind).or_default() += 1;
        }
    }

    // ----- the drivers -----

    /// Takes every queued input, and what it leads to.
    fn drain(&mut self) {
        while let Some(Work { at, input, tag }) = self.work.pop_front() {
            self.take(at, input, tag);
        }
    }

    fn take(&mut self, at: Name, input: LoggedInput, tag: Option<SectionFault>) {
        let Some(node) = self.nodes.get_mut(&at) else {
            return;
        };
        if node.down {
            return;
        }
        let before = (
            node.coordinator().chain().key_count(),
            node.coordinator().sap().prefix,
        );
        let signed = input.signed_sap().cloned();
        let caught_up = matches!(input, LoggedInput::CatchUp(_));
        let taken = node.persistent.take(&input).map_err(|e| match e {
            PersistError::Dropped(d) => d,
            // Its `log` and `save` only encode.
            PersistError::Store(_) | PersistError::Empty => {
                unreachable!("a memory store does not fail")
            }
        });
        match taken {
            Err(d) => {
                // The runtime's rule: a known peer's message showing the section moved on
                // makes the node ask for the section record soon.
                if catch_up::shows_section_ahead(&d)
                    && let LoggedInput::Message { from, .. } = &input
                    && catch_up::may_hasten(node.coordinator().sap(), &self.members, from)
                {
                    self.ask_for_section(at);
                }
                self.check_restart_consistent(at, &input, tag, &d);
                let node = self.nodes.get_mut(&at).expect("known");
                if d == Dropped::Handover(HandoverError::CombinedInvalid) && node.fault.is_none() {
                    self.report.failed_combinations += 1;
                }
                if may_come_later(&d)
                    && let LoggedInput::Message { from, message } = input
                {
                    if node.early.len() >= MAX_EARLY {
                        node.early.pop_front();
                    }
                    node.early.push_back((from, message, tag));
                }
                self.refused(at, tag);
            }
            Ok(outputs) => {
                for output in outputs {
                    self.route(at, output);
                }
            }
        }
        let node = self.nodes.get_mut(&at).expect("known");
        let after = (
            node.coordinator().chain().key_count(),
            node.coordinator().sap().prefix,
        );
        if before != after {
            if let Some(signed) = signed.filter(|s| s.sap == *node.coordinator().sap()) {
                if caught_up && node.fault.is_none() {
                    self.report.catch_ups += 1;
                }
                node.signed = Some(signed);
            }
            // A SAP applied: a leaver that serves no more ([`SimNode::serves`]) stops; kept
            // messages may now be acceptable; the elders select for the new generation.
            if node.leaving && !node.serves() {
                node.down = true;
                return;
            }
            self.retry_early(at);
            self.elect(at);
        }
    }

    /// Sends a section query to the next peers in turn ([`catch_up::catch_up_targets`], as the
    /// runtime does), at most once a DKG round.
    fn ask_for_section(&mut self, at: Name) {
        let (now, round) = (self.now, self.cfg.net.round);
        let node = self.nodes.get_mut(&at).expect("known");
        if node.down || node.catch_up_asked.is_some_and(|t| now < t + round) {
            return;
        }
        node.catch_up_asked = Some(now);
        let targets = catch_up::catch_up_targets(
            node.coordinator().sap(),
            &self.members,
            &at,
            node.catch_up_turn,
        );
        node.catch_up_turn = node.catch_up_turn.wrapping_add(1);
        for peer in targets {
            let delay = self.catch_up_delay();
            self.schedule(
                delay,
                Event::Query {
                    from: at,
                    to: peer.name(),
                },
            );
        }
    }

    /// A peer answers a section query with its record and signed SAP; a faulty one with a
    /// forged newer SAP (a key of its own, "signed" by itself as the parent).
    fn answer_query(&mut self, from: Name, to: Name) {
        let Some(node) = self.nodes.get(&to).filter(|n| !n.down) else {
            return;
        };
        let answer = SectionAnswer::new(node.coordinator().record(), node.signed.clone());
        let (answer, tag) = match node.fault {
            None | Some(SectionFault::Crash) => (answer, None),
            Some(kind) => {
                self.report.forged_answers += 1;
                (forged_answer(answer, node.key_seed), Some(kind))
            }
        };
        let bytes = answer.encode();
        // Its askers mostly drop it unread (`take_answer`), so an honest answer's encoding is
        // checked here, once per distinct answer.
        if tag.is_none()
            && self.honest(&to)
            && self
                .checked_answers
                .insert(tagged_hash("keyquorum/sim/section-answer", &[&bytes]))
            && SectionAnswer::decode(&bytes).as_ref() != Ok(&answer)
        {
            self.violations
                .push(Violation::HonestBadEncoding { node: to });
        }
        let delay = self.catch_up_delay();
        self.schedule(
            delay,
            Event::Answer {
                from: to,
                to: from,
                bytes,
                tag,
            },
        );
    }

    fn take_answer(&mut self, from: Name, to: Name, bytes: &[u8], tag: Option<SectionFault>) {
        if self.nodes.get(&to).is_none_or(|n| n.down) {
            return;
        }
        // As the runtime screens answers: one no further than the node's chain, seen from its
        // first bytes, is not decoded and changes nothing.
        let c = self.nodes[&to].coordinator();
        if catch_up::not_ahead(bytes, c.genesis_key(), c.chain()) {
            return;
        }
        match SectionAnswer::decode(bytes) {
            Ok(answer) => {
                let key = self.nodes[&to].coordinator().sap().section_key;
                let before = self.report.refused.clone();
                self.take(to, LoggedInput::CatchUp(answer), tag);
                if tag.is_some() && self.honest(&to) {
                    if self.report.refused != before {
                        self.report.forged_refused += 1;
                    }
                    if self.nodes[&to].coordinator().sap().section_key != key {
                        self.violations
                            .push(Violation::ForgedSapAdopted { node: to });
                    }
                }
            }
            Err(_) if tag.is_none() && self.honest(&from) => {
                self.violations
                    .push(Violation::HonestBadEncoding { node: from });
            }
            Err(_) => self.refused(to, tag),
        }
    }

    fn retry_early(&mut self, at: Name) {
        let node = self.nodes.get_mut(&at).expect("known");
        for (from, message, tag) in node.early.drain(..) {
            self.work.push_back(Work {
                at,
                input: LoggedInput::Message { from, message },
                tag,
            });
        }
    }

    /// Sends a node's output where the protocol says ([`routing::deliveries`], as `keyquorum
    /// sections node` does), after the simulator's own bookkeeping and checks.
    fn route(&mut self, at: Name, output: Output) {
        let honest = self.honest(&at);
        // A crash fault runs an honest coordinator: what it backs and hands over is held to
        // the honest nodes' rules, before and after its restart.
        let held = honest || self.nodes[&at].fault == Some(SectionFault::Crash);
        let deliveries = routing::deliveries(self.nodes[&at].coordinator(), &self.members, &output);
        match output {
            Output::DkgStarted {
                session,
                candidates,
            } => {
                let node = self.nodes.get_mut(&at).expect("known");
                node.deadlines.insert(session, 0);
                let incarnation = node.incarnation;
                self.next_deadline(at, session, incarnation);
                self.retry_early(at);
                if held && self.spam.contains(&session) {
                    self.violations
                        .push(Violation::SpamStarted { node: at, session });
                }
                if honest {
                    if let Some(info) = self.starts.get(&session)
                        && self
                            .started
                            .entry((info.prefix, info.generation))
                            .or_default()
                            .insert(session)
                    {
                        self.report.sessions += 1;
                    }
                } else {
                    self.misbehave_at_start(at, session, &candidates);
                }
            }
            Output::Dkg { .. }
            | Output::Restart { .. }
            | Output::AgreementAgain { .. }
            | Output::LinkShare { .. } => {}
            Output::StartSigned { start, .. } => {
                let node = &self.nodes[&at];
                if node.fault == Some(SectionFault::Crash)
                    && !node.crashed
                    && self.may_act(at, &start.names())
                {
                    self.crash_later(at);
                }
                let now = self.now;
                self.starts.entry(start.session).or_insert(StartInfo {
                    prefix: start.prefix,
                    generation: start.generation,
                    candidates: start.names(),
                    signed_at: now,
                    last_share_at: None,
                });
            }
            Output::BroadcastFailure { observation, .. } => {
                let node = self.nodes.get_mut(&at).expect("known");
                node.deadlines.remove(&observation.session);
            }
            Output::FailureAgreed {
                session,
                prefix,
                generation,
                attempt,
                excluded,
            } => {
                if held {
                    self.agreed_failure(session, &excluded);
                    if self.recorded_agreements.insert(session) {
                        let agreed = super::AgreedFailure {
                            prefix,
                            generation,
                            excluded: excluded.iter().copied().collect(),
                        };
                        self.report
                            .timeline
                            .push(super::SectionEvent::FailureAgreed(agreed.clone()));
                        self.report.agreements.push(agreed);
                    }
                }
                let node = self.nodes.get_mut(&at).expect("known");
                // Bounded by the members; the simulator's sections stay far below it.
                let _ = node
                    .start_signer
                    .agreement_checked(prefix, generation, attempt, excluded);
                self.elect(at);
            }
            Output::ReplacedStartFailed {
                prefix,
                generation,
                attempt,
                ..
            } => {
                let node = self.nodes.get_mut(&at).expect("known");
                node.start_signer
                    .replaced_start_failed(prefix, generation, attempt);
                self.elect(at);
            }
            Output::SapShare { session, sap, .. } => {
                let node = self.nodes.get_mut(&at).expect("known");
                node.deadlines.remove(&session);
                let key = key_bytes(&sap.section_key);
                if node.incarnation > 0 && !node.shares.contains_key(&session) {
                    self.report.shares_after_restart += 1;
                }
                if honest && let Some(info) = self.starts.get_mut(&session) {
                    info.last_share_at = Some(self.now);
                }
                if held && *node.shares.entry(session).or_insert(key) != key {
                    self.violations
                        .push(Violation::TwoKeysOneSession { node: at, session });
                }
            }
            Output::NewElders(signed) => {
                if held {
                    let parent = key_bytes(&signed.parent_key);
                    let slot = (parent, signed.sap.prefix);
                    let checked = self.fork_is_a_violation(&signed.parent_key);
                    match self.handed_to.get(&slot) {
                        Some(sap) if *sap != signed.sap && checked => {
                            self.violations.push(Violation::ConflictingSap {
                                prefix: signed.sap.prefix,
                            });
                        }
                        Some(_) => {}
                        None => {
                            self.handed_to.insert(slot, signed.sap.clone());
                            self.report.timeline.push(super::SectionEvent::HandedOver {
                                prefix: signed.sap.prefix,
                                parent_key: signed.parent_key,
                                key: signed.sap.section_key,
                                elders: signed.sap.elders.len(),
                            });
                        }
                    }
                    self.handed
                        .entry((parent, key_bytes(&signed.sap.section_key)))
                        .or_insert_with(|| (signed.parent_key, signed.sap.clone()));
                } else {
                    let parent = key_bytes(&signed.parent_key);
                    self.handed_by_others
                        .entry((parent, key_bytes(&signed.sap.section_key)))
                        .or_insert_with(|| (signed.parent_key, signed.sap.clone()));
                }
            }
        }
        for Delivery { to, message } in deliveries {
            match message {
                Message::Dkg(message) => self.send_dkg(at, to, message),
                message @ (Message::SapShare { .. } | Message::LinkShare { .. }) => {
                    self.send_handover(at, to, message)
                }
                message => self.send(at, to, &message, None),
            }
        }
    }

    /// A failure agreement an honest elder checked: within the bound it must name only faulty
    /// nodes; the membership drops the named nodes.
    fn agreed_failure(&mut self, session: SessionId, excluded: &BTreeSet<Name>) {
        // An agreement needs more than n - supermajority(n) signers: with no more faulty
        // candidates than that, one honest candidate observed the named node fail, which an
        // honest node never does. Beyond that many faulty candidates, naming honest nodes is
        // within the adversary's power (and not a broken invariant).
        let faulty = self.starts.get(&session).map_or(0, |info| {
            let n = info.candidates.len();
            let f = info.candidates.iter().filter(|c| self.faulty(c)).count();
            f.saturating_sub(n - supermajority(n))
        });
        if faulty == 0
            && let Some(node) = excluded
                .iter()
                .find(|n| self.honest(n) || self.up_for(n, &session))
        {
            self.violations.push(Violation::HonestExcluded {
                session,
                node: *node,
            });
        }
        if self.agreed.insert(session) {
            self.report.restarts += 1;
        }
        for n in excluded {
            if self.excluded_nodes.insert(*n)
                && let Some(kind) = self.nodes.get(n).and_then(|n| n.fault)
            {
                *self.report.excluded.entry(kind).or_default() += 1;
            }
        }
    }

    // ----- adversaries -----

    /// Whether faulty node `at` may act in a session of `candidates`: always beyond the bound;
    /// within it, only while the faulty candidates and the faulty current elders are at most
    /// what the protocol tolerates.
    fn may_act(&self, at: Name, candidates: &[Name]) -> bool {
        if self.cfg.beyond_bound {
            return true;
        }
        // A split's halves run independent sessions; a half whose DKG fails after the other
        // half was handed over cannot restart (the parent's elders in that other half no
        // longer sign for it: docs/protocol.md, "Sections"), so within the bound the faults
        // stay out of split sessions.
        let sap = self.nodes[&at].coordinator().sap();
        if candidates.iter().any(|n| !sap.prefix.matches(n))
            || self
                .starts
                .values()
                .any(|i| i.candidates == candidates && i.prefix != sap.prefix)
        {
            return false;
        }
        let tolerated = |names: &[Name]| {
            let faulty = names.iter().filter(|n| self.faulty(n)).count();
            faulty <= names.len() - supermajority(names.len())
        };
        tolerated(candidates) && tolerated(&self.nodes[&at].coordinator().sap().names())
    }

    fn misbehave_at_start(&mut self, at: Name, session: SessionId, candidates: &[Peer]) {
        let names: Vec<Name> = candidates.iter().map(Peer::name).collect();
        if !self.may_act(at, &names) {
            return;
        }
        let node = self.nodes.get_mut(&at).expect("known");
        node.acting.insert(session);
        let Some(kind) = node.fault else { return };
        let node_key = secret(node.key_seed);
        let elders = node.coordinator().sap().names();
        let crash_due = !node.crashed;
        let honest: Vec<Name> = names.iter().filter(|n| self.honest(n)).copied().collect();
        match kind {
            SectionFault::Silent => {
                let when = self.below(self.cfg.net.round / 2);
                self.schedule(when, Event::Crash(at));
            }
            SectionFault::Crash if crash_due => self.crash_later(at),
            SectionFault::Crash => {}
            SectionFault::FalseBlame => {
                if honest.is_empty() {
                    return;
                }
                let blamed = honest[self.below(honest.len() as u64) as usize];
                let observation = FailureObservation {
                    session,
                    non_participants: [blamed].into(),
                };
                let signature = observation.sign(&node_key);
                for to in names.iter().filter(|n| **n != at) {
                    let message = Message::Failure {
                        observation: observation.clone(),
                        signature,
                    };
                    self.send(at, *to, &message, Some(kind));
                }
                for to in &elders {
                    let message = Message::FailureAgreement {
                        session,
                        excluded: [blamed].into(),
                        signatures: vec![signature],
                    };
                    self.send(at, *to, &message, Some(kind));
                }
                *self.report.acted.entry(kind).or_default() += 1;
            }
            SectionFault::SpamStart => {
                let Some(spam) = self.spam_start(session, candidates) else {
                    return;
                };
                // Every faulty elder of the section colludes, short of a supermajority of the
                // elders by construction (else the start would be authorised, not spam).
                let mut signers: Vec<u64> = elders
                    .iter()
                    .filter(|n| self.faulty(n))
                    .map(|n| self.nodes[n].key_seed)
                    .collect();
                signers.truncate(supermajority(elders.len()) - 1);
                if !elders.contains(&at) {
                    signers.push(self.nodes[&at].key_seed);
                }
                self.spam.insert(spam.session);
                self.report.spam_starts += 1;
                for seed in signers {
                    let signature = spam.sign(&secret(seed));
                    for to in spam.names() {
                        let message = Message::Start {
                            start: spam.clone(),
                            signature,
                        };
                        self.send(at, to, &message, Some(kind));
                    }
                }
                *self.report.acted.entry(kind).or_default() += 1;
            }
            SectionFault::Spoof => {
                // A start "signed" by an honest elder, and a failure observation "signed" by an
                // honest candidate: the signer field names them, the signature is ours.
                let honest_elder = elders.iter().find(|n| self.honest(n)).copied();
                if let (Some(elder), Some(spam)) =
                    (honest_elder, self.spam_start(session, candidates))
                {
                    let signature = NodeSignature {
                        signer: self.nodes[&elder].member.peer.node_key,
                        signature: spam.sign(&node_key).signature,
                    };
                    self.spam.insert(spam.session);
                    for to in spam.names() {
                        let message = Message::Start {
                            start: spam.clone(),
                            signature,
                        };
                        self.send(at, to, &message, Some(kind));
                    }
                    *self.report.acted.entry(kind).or_default() += 1;
                }
                if let Some(victim) = honest.first().copied() {
                    let observation = FailureObservation {
                        session,
                        non_participants: [victim].into(),
                    };
                    let signature = NodeSignature {
                        signer: self.nodes[&victim].member.peer.node_key,
                        signature: observation.sign(&node_key).signature,
                    };
                    for to in names.iter().filter(|n| **n != at) {
                        let message = Message::Failure {
                            observation: observation.clone(),
                            signature,
                        };
                        self.send(at, *to, &message, Some(kind));
                    }
                    *self.report.acted.entry(kind).or_default() += 1;
                }
            }
            SectionFault::BadPost
            | SectionFault::BadShare
            | SectionFault::Equivocate
            | SectionFault::BadHandover => {}
        }
    }

    /// A start the elders never sign: the session's candidates with the first one's address
    /// changed (one id is one candidate list, addresses included).
    fn spam_start(&self, session: SessionId, candidates: &[Peer]) -> Option<DkgStart> {
        let info = self.starts.get(&session)?;
        let mut spam: Vec<Peer> = candidates.to_vec();
        spam.first_mut()?.addr = format!("spam:{}", self.seq);
        Some(DkgStart::new(info.prefix, spam, info.generation))
    }

    /// A DKG message out, corrupted or doubled if this node acts in its session.
    fn send_dkg(&mut self, at: Name, to: Name, mut message: DkgMessage) {
        let node = &self.nodes[&at];
        let kind = node
            .fault
            .filter(|_| node.acting.contains(&message.session()));
        match (kind, &mut message) {
            (Some(SectionFault::BadPost), DkgMessage::Post { post, .. }) => flip_last(post),
            (Some(SectionFault::BadPost), DkgMessage::Vote { posts, .. }) => {
                posts.iter_mut().for_each(|p| flip_last(p))
            }
            (Some(SectionFault::BadShare), DkgMessage::Direct { payload, .. }) => {
                let middle = payload.len() / 2;
                if let Some(b) = payload.get_mut(middle) {
                    *b ^= 0x40;
                }
            }
            (
                Some(SectionFault::Equivocate),
                DkgMessage::Vote {
                    session,
                    round,
                    posts,
                },
            ) if to != at => {
                // The conflicting vote goes first, so the receiver keeps it and refuses ours.
                let mut other = posts.clone();
                if other.pop().is_none() {
                    other.push(vec![0; 8]);
                }
                let conflicting = DkgMessage::Vote {
                    session: *session,
                    round: *round,
                    posts: other,
                };
                self.send(at, to, &Message::Dkg(conflicting), kind);
                *self
                    .report
                    .acted
                    .entry(SectionFault::Equivocate)
                    .or_default() += 1;
                self.send(at, to, &Message::Dkg(message), kind);
                return;
            }
            _ => {
                self.send(at, to, &Message::Dkg(message), None);
                return;
            }
        }
        if let Some(kind) = kind {
            *self.report.acted.entry(kind).or_default() += 1;
        }
        self.send(at, to, &Message::Dkg(message), kind);
    }

    /// A handover partial out, corrupted if this node lies about handovers and acts in the
    /// session: as a new elder it acts where it acts in the DKG; as a current elder, where its
    /// start is one it may act in and no split.
    fn send_handover(&mut self, at: Name, to: Name, message: Message) {
        let kind = SectionFault::BadHandover;
        if to == at || self.nodes[&at].fault != Some(kind) {
            self.send(at, to, &message, None);
            return;
        }
        match message {
            Message::SapShare {
                session,
                sap,
                partial,
            } if self.nodes[&at].acting.contains(&session) => {
                // Another SAP for the session (its elder list differs from the start's), then
                // ours with a wrong signature share.
                let mut other = sap.clone();
                if let Some(elder) = other.elders.first_mut() {
                    elder.addr = format!("lie:{}", self.seq);
                }
                let other = Message::SapShare {
                    session,
                    sap: other,
                    partial,
                };
                self.send(at, to, &other, Some(kind));
                let wrong = Message::SapShare {
                    session,
                    sap,
                    partial: self.wrong_partial(at, partial),
                };
                self.send(at, to, &wrong, Some(kind));
                *self.report.acted.entry(kind).or_default() += 2;
            }
            Message::LinkShare {
                session,
                new_key,
                partial,
            } if self.starts.get(&session).is_some_and(|info| {
                // Within the bound, faults leave split sessions alone (see `may_act`): the
                // handover must be from the start's own prefix.
                let parent = self.nodes[&at].coordinator().handover_parent(&session);
                parent.is_some_and(|p| p.prefix == info.prefix)
                    && self.may_act(at, &info.candidates)
            }) =>
            {
                let partial = if self.below(2) == 0 {
                    self.wrong_partial(at, partial)
                } else {
                    // Claims the share index of another signer.
                    PartialSignature {
                        index: partial.index + Scalar::from(1u64),
                        sig: partial.sig,
                    }
                };
                let lie = Message::LinkShare {
                    session,
                    new_key,
                    partial,
                };
                self.send(at, to, &lie, Some(kind));
                *self.report.acted.entry(kind).or_default() += 1;
            }
            message => self.send(at, to, &message, None),
        }
    }

    /// `partial` with its index kept and a signature share that is a valid point but not the
    /// signer's share of the message.
    fn wrong_partial(&self, at: Name, partial: PartialSignature<MinPk>) -> PartialSignature<MinPk> {
        let node_key = secret(self.nodes[&at].key_seed);
        PartialSignature {
            index: partial.index,
            sig: tbls::sign::<MinPk>(&node_key, b"keyquorum-sim/wrong-partial"),
        }
    }

    // ----- checks -----

    /// A restarted node replays what it logged and sends the same messages again, which the
    /// others drop as duplicates; a message of its own (untagged) that an honest node refuses
    /// as conflicting with one it sent before its crash means the restart lost state.
    fn check_restart_consistent(
        &mut self,
        at: Name,
        input: &LoggedInput,
        tag: Option<SectionFault>,
        dropped: &Dropped,
    ) {
        let LoggedInput::Message { from, .. } = input else {
            return;
        };
        let conflicting = matches!(
            dropped,
            Dropped::Equivocation | Dropped::Dkg(DkgDrop::Equivocation)
        );
        let restarted = self
            .nodes
            .get(from)
            .is_some_and(|n| n.fault == Some(SectionFault::Crash) && n.incarnation > 0);
        if conflicting && tag.is_none() && restarted && self.honest(&at) {
            self.violations
                .push(Violation::RestartConflicts { node: *from });
        }
    }

    fn settle_and_check(&mut self) -> Result<(), Violation> {
        self.settle()?;
        // Leavers that serve no more stop once quiet (no session of theirs runs).
        for node in self.nodes.values_mut() {
            if node.leaving && !node.serves() {
                node.down = true;
            }
        }
        // Between steps the membership drops the nodes checked agreements named (during the
        // step the elders' own exclusions keep them out, as in the runtime); the elders select
        // again.
        let excluded = &self.excluded_nodes;
        self.members.retain(|m| !excluded.contains(&m.peer.name()));
        self.elect_everywhere();
        self.settle()?;
        // The runtime's periodic ask: every node asks its peers for their section record once
        // the network is quiet, and catches up with handovers it missed.
        let names: Vec<Name> = self.nodes.keys().copied().collect();
        for name in names {
            self.nodes.get_mut(&name).expect("known").catch_up_asked = None;
            self.ask_for_section(name);
        }
        self.settle()?;
        let views = self.views();
        if self.cfg.beyond_bound {
            check_quiet_beyond_bound(&self.genesis_key, &views)?;
            self.note_beyond_bound(&views);
        } else {
            check_quiet(&self.genesis_key, &views)?;
        }
        self.check_handovers()?;
        if !self.cfg.beyond_bound {
            self.check_liveness(&views)?;
        }
        Ok(())
    }

    /// The honest elders' handovers form a tree ([`check_key_tree`]), in which the keys only
    /// other nodes handed over to have their places.
    fn check_handovers(&self) -> Result<(), Violation> {
        let pairs = |map: &BTreeMap<_, (PublicKey, Sap)>| -> Vec<(PublicKey, Sap)> {
            map.values()
                .map(|(parent, sap)| (*parent, sap.clone()))
                .collect()
        };
        check_key_tree(
            &self.genesis_key,
            &pairs(&self.handed),
            &pairs(&self.handed_by_others),
            |parent| self.fork_is_a_violation(parent),
        )
    }

    /// Keeps the most of each [`super::invariants::BeyondBound`] count seen at a quiet point.
    fn note_beyond_bound(&mut self, views: &[NodeView]) {
        let now = super::invariants::beyond_bound_counts(views);
        let most = &mut self.report.beyond_bound_counts;
        most.elders_without_share = most.elders_without_share.max(now.elders_without_share);
        most.lagging = most.lagging.max(now.lagging);
    }

    /// The checks of a run beyond the bound, on whatever state the network reached.
    fn safety_beyond_bound(&self) -> Result<(), Violation> {
        check_quiet_beyond_bound(&self.genesis_key, &self.views())?;
        self.check_handovers()
    }

    /// Whether two handovers of section key `parent` to different SAPs break an invariant:
    /// always within the bound; beyond it, for every key some honest elder handed over to.
    /// Faulty nodes run an honest coordinator, which links one successor per key, so a fork of
    /// such a key is a fault of the honest rules however many of its elders are faulty. Only
    /// the handovers to a key no honest elder completed are recorded without its elders
    /// (faulty candidates beyond the bound made it), so its children are placed in the tree but
    /// not checked.
    fn fork_is_a_violation(&self, parent: &PublicKey) -> bool {
        !self.cfg.beyond_bound
            || *parent == self.genesis_key
            || self
                .handed
                .values()
                .any(|(_, sap)| sap.section_key == *parent)
    }

    /// What the snapshot checks see of the nodes held to agree ([`Self::held_to_agree`]).
    fn views(&self) -> Vec<NodeView> {
        // The session each key came from, as the honest candidates took their shares.
        let session_of_key: BTreeMap<[u8; KEY_LEN], SessionId> = self
            .nodes
            .values()
            .filter(|n| n.fault.is_none())
            .flat_map(|n| n.shares.iter().map(|(session, key)| (*key, *session)))
            .collect();
        self.nodes
            .iter()
            .filter(|(name, n)| self.held_to_agree(name, n))
            .map(|(name, n)| {
                let key = key_bytes(&n.coordinator().sap().section_key);
                NodeView {
                    name: *name,
                    chain: n.coordinator().chain().clone(),
                    sap: n.coordinator().sap().clone(),
                    share_key: n.coordinator().our_share().map(|s| s.section_key),
                    // `shares` has every key its runs gave it a share of, before the crash
                    // and after.
                    missed_dkg: !n.shares.values().any(|k| *k == key)
                        && session_of_key
                            .get(&key)
                            .is_some_and(|session| self.ran_while_down(n, session)),
                }
            })
            .collect()
    }

    /// Whether crash fault `name` ran all of `session` up: it had not gone down when the
    /// session ended (its crash not even scheduled), or it restarted before an elder signed the
    /// session's start. A failure agreement must not name it then.
    fn up_for(&self, name: &Name, session: &SessionId) -> bool {
        let Some(node) = self.nodes.get(name) else {
            return false;
        };
        if node.fault != Some(SectionFault::Crash) {
            return false;
        }
        !node.crashed
            || self
                .starts
                .get(session)
                .zip(node.restarted_at)
                .is_some_and(|(info, restarted)| info.signed_at > restarted)
    }

    /// Whether the DKG of `session` ran while crash fault `node` was down: started before it
    /// came back, and some honest candidate took its share after it went down.
    fn ran_while_down(&self, node: &SimNode, session: &SessionId) -> bool {
        let (Some(crashed), Some(restarted)) = (node.crashed_at, node.restarted_at) else {
            return false;
        };
        self.starts.get(session).is_some_and(|info| {
            info.signed_at <= restarted && info.last_share_at.is_some_and(|at| at >= crashed)
        })
    }

    /// Whether the quiet checks hold `node` to its section's chain, SAP and share: the honest
    /// nodes that run, and the [`SectionFault::Crash`] nodes that run and are still members
    /// (a restart must leave a node where its section is; one a failure agreement named is
    /// no member any more and may lag).
    fn held_to_agree(&self, name: &Name, node: &SimNode) -> bool {
        if node.down {
            return false;
        }
        match node.fault {
            None => true,
            Some(SectionFault::Crash) => {
                !self.excluded_nodes.contains(name)
                    && self.members.iter().any(|m| m.peer.name() == *name)
            }
            Some(_) => false,
        }
    }

    /// Within the bound: each section holds the elders (or has made the split) its members call
    /// for, and each generation restarted at most once per faulty candidate it had.
    fn check_liveness(&self, views: &[NodeView]) -> Result<(), Violation> {
        check_not_nested(views)?;
        let mut seen = BTreeSet::new();
        for v in views {
            if !seen.insert(v.sap.prefix) {
                continue;
            }
            let starts = next_starts(
                &v.sap,
                v.chain.key_count(),
                &self.members,
                &self.params,
                &BTreeSet::new(),
                false,
            );
            if !starts.is_empty() {
                return Err(Violation::NotLive {
                    prefix: v.sap.prefix,
                    detail: if starts.len() == 2 {
                        "the split was not made".into()
                    } else {
                        "the elder change was not made".into()
                    },
                });
            }
        }
        for ((prefix, generation), sessions) in &self.started {
            let faulty: BTreeSet<&Name> = sessions
                .iter()
                .filter_map(|s| self.starts.get(s))
                .flat_map(|info| info.candidates.iter())
                .filter(|n| self.faulty(n))
                .collect();
            // Sessions superseded by a membership change are not restarts: count the checked
            // failure agreements.
            let restarts = sessions.iter().filter(|s| self.agreed.contains(s)).count();
            if restarts > faulty.len() {
                return Err(Violation::TooManyRestarts {
                    prefix: *prefix,
                    generation: *generation,
                    restarts,
                    faulty: faulty.len(),
                });
            }
        }
        Ok(())
    }

    fn finish(mut self, result: Result<(), Violation>) -> SectionsReport {
        self.report.violation = match result {
            // Liveness, which a run beyond the bound does not check: it ends there, with the
            // safety checks of a quiet network run on the state it reached.
            Err(Violation::NoQuiet { .. }) if self.cfg.beyond_bound => {
                self.report.did_not_settle = true;
                self.safety_beyond_bound().err()
            }
            result => result.err(),
        };
        if self.cfg.beyond_bound {
            let views = self.views();
            self.note_beyond_bound(&views);
        }
        self.report.handovers = self.handed.len() as u64;
        let mut children: BTreeMap<[u8; KEY_LEN], BTreeSet<Prefix>> = BTreeMap::new();
        for (parent, prefix) in self.handed_to.keys() {
            children.entry(*parent).or_default().insert(*prefix);
        }
        self.report.splits = children.values().filter(|p| p.len() == 2).count() as u64;
        self.report.sections = self
            .nodes
            .values()
            .filter(|n| n.fault.is_none() && !n.down)
            .map(|n| n.coordinator().sap().prefix)
            .collect::<BTreeSet<_>>()
            .len();
        let restarted: Vec<&SimNode> = self
            .nodes
            .iter()
            .filter(|(name, n)| n.incarnation > 0 && self.held_to_agree(name, n))
            .map(|(_, n)| n)
            .collect();
        let without_share = restarted
            .iter()
            .filter(|n| {
                let c = n.coordinator();
                c.sap().names().contains(&c.name()) && c.our_share().is_none()
            })
            .count();
        self.report.restarted_checked = restarted.len() as u64;
        self.report.restarted_without_share = without_share as u64;
        self.report.ticks = self.now;
        self.report.genesis_key = Some(self.genesis_key);
        let mut sections: BTreeMap<Prefix, super::FinalSection> = BTreeMap::new();
        for (name, node) in &self.nodes {
            if node.fault.is_some() || node.down || !self.held_to_agree(name, node) {
                continue;
            }
            let c = node.coordinator();
            sections
                .entry(c.sap().prefix)
                .or_insert_with(|| super::FinalSection {
                    prefix: c.sap().prefix,
                    elders: c.sap().names(),
                    chain: c.chain().clone(),
                });
        }
        self.report.final_sections = sections.into_values().collect();
        self.report
    }
}

impl SimNode {
    fn coordinator(&self) -> &Coordinator {
        self.persistent.coordinator()
    }

    /// Whether the section still needs this node to sign: as an elder of its SAP, or as an
    /// elder of a split key with a half still to hand over (a leaving elder serves its
    /// handovers, and at a split that is both halves').
    fn serves(&self) -> bool {
        let c = self.coordinator();
        c.sap().names().contains(&self.member.peer.name())
            || c.open_split().is_some_and(|open| !open.halves.is_empty())
    }

    fn new(
        key_seed: u64,
        member: Member,
        coordinator: Coordinator,
        fault: Option<SectionFault>,
    ) -> Self {
        let persistent = PersistentCoordinator::create(coordinator, MemoryStore::default())
            .expect("a memory store takes every record");
        SimNode {
            key_seed,
            member,
            persistent,
            fault,
            down: false,
            incarnation: 0,
            crashed: false,
            crashed_at: None,
            restarted_at: None,
            leaving: false,
            early: VecDeque::new(),
            deadlines: BTreeMap::new(),
            start_signer: StartSigner::default(),
            shares: BTreeMap::new(),
            acting: BTreeSet::new(),
            signed: None,
            catch_up_turn: 0,
            catch_up_asked: None,
        }
    }
}

/// `answer` with one more link and SAP, on a key the forger made itself: the link's signature is
/// its own, not the section key's, so a node that takes it trusts a key no section key vouched
/// for.
fn forged_answer(mut answer: SectionAnswer, key_seed: u64) -> SectionAnswer {
    let forger = secret(key_seed);
    let key = tbls::public_key::<MinPk>(&forger);
    let parent_key = answer.record.sap.section_key;
    let sap = Sap {
        section_key: key,
        ..answer.record.sap.clone()
    };
    let signed = SignedSap {
        sap_signature: tbls::sign::<MinPk>(&forger, &sap.signing_bytes()),
        parent_key,
        parent_signature: tbls::sign::<MinPk>(&forger, &key_bytes(&key)),
        sap: sap.clone(),
    };
    let mut links: Vec<Link> = answer.record.chain.links().to_vec();
    links.push(signed.link());
    if let Ok(chain) = KeyChain::from_links(links) {
        answer.record.chain = chain;
        answer.record.sap = sap;
        answer.signed = Some(signed);
    }
    answer
}
