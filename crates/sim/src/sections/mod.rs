//! Sections in the simulator: seeded runs of whole networks of section nodes, each driven through
//! the real [`keyquorum_sections::coordinator::Coordinator`] (no protocol rule is re-implemented
//! here), over a virtual clock and a network that delays, reorders and drops messages.
//!
//! # A run
//! One seed draws everything: node keys (hence names), ages, the order of joins and leaves, which
//! joiners are faulty and how, and every delay. A run starts from the genesis node alone and then
//! takes steps: a node joins (with a random age, so some joins change the elders and some do not),
//! or a member leaves (elders included; a leaving elder keeps serving its handover until a SAP
//! without it applies and no split of a key it held a share of waits for its other half, a
//! leaving candidate its session until the network is quiet, then they stop). A joiner starts from the newest chain and SAP an honest member of its section holds.
//! Joins go on past the first split. After every step the network runs until it is quiet, the
//! membership drops the nodes a checked failure agreement named, and the invariants are checked
//! ([`invariants`]). With [`SectionsConfig::unsettled_per_mille`], a step is instead followed by
//! the next up to two DKG rounds later, so the members change while sessions run (the elders
//! sign a start for the new members, which supersedes the running session); the next quiet
//! step checks everything. A generation's restarts are its checked failure agreements (a session
//! superseded by a membership change is not one).
//!
//! # What the simulator plays
//! The driver of each node does what `keyquorum sections node` does around its coordinator: it
//! sends each output where the protocol says, passes a DKG deadline every round, keeps messages
//! for sessions it does not know yet and offers them again when a session starts or a SAP
//! applies, and as an elder signs the starts [`keyquorum_sections::elders::next_starts`] computes
//! after every membership change, applied SAP and checked failure agreement (with the
//! generation's agreed exclusions). It catches up as the runtime does
//! ([`keyquorum_sections::catch_up`]): once the network is quiet (the runtime's periodic ask),
//! and when a known peer's message shows the section moved on, it sends section queries to the
//! next peers in turn, and the coordinator takes an answer only if its chain extends ours from
//! a key we trust. Queries and answers draw their delays from a stream of their own, so a seed
//! runs as it would without them until a node actually catches up. Every faulty node but a
//! crash fault answers with a forged newer SAP (a key of its own, linked by its own signature); an honest node
//! taking one is [`Violation::ForgedSapAdopted`]. Membership is not agreed by the protocol: the simulator
//! gives every node the same member list, and removes from it the nodes a checked failure
//! agreement named (the membership layer demoting them), so a section does not select a crashed
//! node again at its next generation.
//!
//! # The network
//! A message takes a uniform delay in `[min_delay, max_delay]` ticks; each transmission is lost
//! with probability `drop_per_mille` and sent again after `rto`, at most twice, so every message
//! arrives within `max_delay + 2 rto` (eventual delivery, no partitions: liveness is asserted).
//! Delays are independent, so messages overtake each other. A DKG round lasts `round` ticks,
//! longer than a post's forward and a vote's delivery together (the timing assumption of
//! `keyquorum_sections::dkg`). The transport authenticates senders as Noise does in the node:
//! the `from` a coordinator sees is the real sender. What a faulty node can claim is another
//! node's signature inside a message ([`SectionFault::Spoof`]), which the coordinator must
//! refuse. A faulty node lies in the partial signatures of a handover
//! ([`SectionFault::BadHandover`]) on top of what its coordinator sends: the honest elders
//! refuse a partial for another SAP or under another signer's index, and leave a wrong signature
//! share out of the set they combine (they hold no public shares to check it alone; the report
//! counts the combinations that failed).
//!
//! # Adversaries and the fault bound
//! Faulty nodes run an honest coordinator and add their fault on top ([`SectionFault`]). In a
//! run within the bound, a faulty node acts in a session only while the session's faulty
//! candidates are at most `n - supermajority(n)` of its `n` candidates and the faulty current
//! elders at most `m - supermajority(m)` of its `m` elders (the bound `docs/protocol.md` states
//! for sections); liveness is then asserted: every section reaches the elders (or the split)
//! its members call for, and a generation needs at most as many restarts as it had faulty
//! candidates. In every run, a checked failure agreement of a session with at most
//! `n - supermajority(n)` faulty candidates must name no honest node. Within the bound, faults
//! leave split sessions alone (see [`invariants::Violation::NestedSections`] and
//! `docs/protocol.md`). A run beyond the bound ([`SectionsConfig::beyond_bound`]) lets faulty
//! nodes act always, in split sessions too, and checks only safety: no honest node holds
//! shares of two keys for one session; honest elders never emit different signed SAPs for one
//! parent key and prefix, and their handovers form a tree (for every parent key an honest elder
//! handed over to: faulty nodes run an honest coordinator, which links one successor per key);
//! every chain verifies; and the chains of a section's honest nodes, and of a section and one
//! within it, never diverge ([`invariants::check_quiet_beyond_bound`]). Agreement is not
//! checked then: with more faulty candidates than a DKG tolerates the honest ones may take
//! different posts, so an honest node's share need not match its SAP, and a failure agreement
//! may exclude an honest node, which then lags its section. Nor is settling: a run beyond the
//! bound whose network does not go quiet within a smaller event budget ends there, reported as
//! not settled ([`SectionsReport::did_not_settle`]), after the same safety checks on the state
//! it reached.
//!
//! # Crashes and restarts
//! Every node runs its coordinator through
//! [`keyquorum_sections::store::PersistentCoordinator`] over a
//! [`keyquorum_sections::store::MemoryStore`], as the runtime does over its redb store. A
//! [`SectionFault::Crash`] node is honest but for one crash, after which it restarts from that
//! store as `keyquorum sections node` does: the record restored and the logged inputs
//! replayed, their outputs sent again, its starts signed again and its section asked for; of
//! the driver's own state only what the runtime stores survives (the absentees, the last
//! signed SAP). It counts against the fault bound like the other kinds but is held to more:
//! what it backs and hands over is checked as an honest node's ([`Violation::TwoKeysOneSession`],
//! [`Violation::ConflictingSap`]), a message of its own that an honest node refuses as
//! conflicting with one it sent before the crash is [`Violation::RestartConflicts`], and once
//! quiet, if it is still a member (no failure agreement named it), its chain, SAP and share are
//! checked with its section's. A failure agreement of a session it ran all of up (signed
//! after its restart, or before its crash was due) must not name it
//! ([`Violation::HonestExcluded`]). One thing is allowed it that an honest node is not: being
//! an elder without a share, when the DKG of its SAP's key ran while it was down
//! ([`invariants::NodeView::missed_dkg`]): a restored run asks the others for the votes it
//! missed, but not every such node can take its share that way (docs/protocol.md, "Catch-up"),
//! and the report counts the elders left without one.

pub mod invariants;
mod world;

use std::collections::BTreeMap;
use std::fmt;

pub use invariants::Violation;
use keyquorum_sections::elders::{ELDER_COUNT, MIN_SECTION_SIZE};
use keyquorum_sections::{Name, supermajority};

/// What a faulty section node does beyond running its coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum SectionFault {
    /// Crashes during a DKG it is a candidate of, and stays down.
    Silent,
    /// Sends its DKG posts with a corrupted signature.
    BadPost,
    /// Sends corrupted direct DKG messages (encrypted shares and acks).
    BadShare,
    /// Votes twice on each round: a conflicting vote (no posts) before its real one.
    Equivocate,
    /// Signs failure observations naming honest candidates, and sends them with a failure
    /// agreement of its own signature to the elders.
    FalseBlame,
    /// Signs starts for other candidate sets alone (fewer than a supermajority of the elders).
    SpamStart,
    /// Sends starts and failure observations whose signature claims another node's key.
    Spoof,
    /// Sends corrupted handover partials: as a new elder, a SAP partial for another SAP (an
    /// elder's address changed) and then one whose signature share is wrong; as a current
    /// elder, to each other elder either a link partial whose signature share is wrong or one
    /// carrying another elder's share index.
    BadHandover,
    /// Crashes once, at a random point after it signs a start as an elder or a DKG it is a
    /// candidate of starts, and restarts from its stored state up to four DKG rounds later, as
    /// a restarted node does; otherwise honest.
    // The restart is `keyquorum sections node`'s on a data directory that holds its state:
    // the coordinator's record and logged inputs (`PersistentCoordinator`) replayed, their
    // outputs sent again, its starts signed again and its section record asked for.
    Crash,
}

impl SectionFault {
    /// Every kind, in command-line order.
    pub const ALL: [SectionFault; 9] = [
        SectionFault::Silent,
        SectionFault::BadPost,
        SectionFault::BadShare,
        SectionFault::Equivocate,
        SectionFault::FalseBlame,
        SectionFault::SpamStart,
        SectionFault::Spoof,
        SectionFault::BadHandover,
        SectionFault::Crash,
    ];
}

impl fmt::Display for SectionFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match clap::ValueEnum::to_possible_value(self) {
            Some(v) => f.write_str(v.get_name()),
            None => write!(f, "{self:?}"),
        }
    }
}

/// Network of a sections run (ticks of virtual time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionsNet {
    /// Smallest one-way delay.
    pub min_delay: u64,
    /// Largest one-way delay of one transmission.
    pub max_delay: u64,
    /// Probability (per mille) that a transmission is lost and sent again.
    pub drop_per_mille: u32,
    /// Time before a lost transmission is sent again.
    pub rto: u64,
    /// Ticks between two DKG deadlines of a node.
    pub round: u64,
}

impl Default for SectionsNet {
    fn default() -> Self {
        SectionsNet {
            min_delay: 1,
            max_delay: 40,
            drop_per_mille: 50,
            rto: 50,
            // A post's send and forward plus a vote's delivery, each at most max + 2 rto, and
            // the candidates' start lag: 4 * 140 < 1000.
            round: 1_000,
        }
    }
}

/// One sections run's configuration.
#[derive(Debug, Clone)]
pub struct SectionsConfig {
    /// Seed of everything random in the run.
    pub seed: u64,
    /// Elders a section selects.
    pub elder_count: usize,
    /// Fewest members each half of a split holds.
    pub min_section_size: usize,
    /// Nodes that join after the genesis node.
    pub joins: usize,
    /// Members that leave (drawn among the honest, elders included).
    pub leaves: usize,
    /// Faulty joiners.
    pub faulty: usize,
    /// Kinds drawn for the faulty joiners (empty: every kind).
    pub faults: Vec<SectionFault>,
    /// Let faulty nodes act beyond the fault bound (safety is checked, liveness is not).
    pub beyond_bound: bool,
    /// Probability (per mille) that a step is followed by the next before the network is quiet
    /// (up to two DKG rounds later), so joins and leaves change the members while sessions run.
    pub unsettled_per_mille: u32,
    /// Whether the members that leave are elders (otherwise any honest member of a section
    /// larger than a full elder set).
    pub elders_leave: bool,
    /// The network.
    pub net: SectionsNet,
}

impl SectionsConfig {
    /// Defaults for `seed`: the protocol's section sizes, joins enough for most runs to split,
    /// two leaves,
    /// and as many faulty joiners as a full elder set tolerates, of every kind.
    pub fn new(seed: u64) -> Self {
        SectionsConfig::sized(seed, ELDER_COUNT, MIN_SECTION_SIZE)
    }

    /// Like [`SectionsConfig::new`] with other section sizes.
    pub fn sized(seed: u64, elder_count: usize, min_section_size: usize) -> Self {
        SectionsConfig {
            seed,
            elder_count,
            min_section_size,
            // Names are random, so the halves are uneven: a third more than twice the minimum
            // splits in most runs. With a minimum below the elder count, at least enough to
            // fill the elder set and then draw the default faulty joiners and leaves.
            joins: (2 * min_section_size + (2 * min_section_size).div_ceil(3))
                .max(2 * elder_count - supermajority(elder_count) + 3),
            leaves: 2,
            faulty: elder_count - supermajority(elder_count),
            faults: SectionFault::ALL.to_vec(),
            beyond_bound: false,
            unsettled_per_mille: 0,
            elders_leave: false,
            net: SectionsNet::default(),
        }
    }

    /// The same configuration for another seed.
    pub fn with_seed(&self, seed: u64) -> Self {
        SectionsConfig {
            seed,
            ..self.clone()
        }
    }
}

/// Result of one sections run.
#[derive(Debug, Clone, Default)]
pub struct SectionsReport {
    /// Seed of the run.
    pub seed: u64,
    /// The first broken invariant, if any.
    pub violation: Option<Violation>,
    /// Whether the run let faulty nodes act beyond the fault bound (liveness not checked).
    pub beyond_bound: bool,
    /// Beyond the bound: the network did not go quiet within the event budget, so the run
    /// ended there (a liveness outcome, not a violation).
    pub did_not_settle: bool,
    /// Beyond the bound: what the run let happen that the checks within the bound refuse
    /// (the most of each seen at any quiet point, and at the end).
    pub beyond_bound_counts: invariants::BeyondBound,
    /// Section keys handed over (links added to the key tree).
    pub handovers: u64,
    /// Splits completed.
    pub splits: u64,
    /// DKG sessions started by honest nodes.
    pub sessions: u64,
    /// Sessions restarted after a checked failure agreement.
    pub restarts: u64,
    /// Sections at the end.
    pub sections: usize,
    /// Faulty nodes placed, by kind.
    pub placed: BTreeMap<SectionFault, u64>,
    /// Faulty actions taken, by kind (a crash, a corrupted or forged message sent).
    pub acted: BTreeMap<SectionFault, u64>,
    /// Faulty messages honest coordinators refused with a typed error, by kind.
    pub refused: BTreeMap<SectionFault, u64>,
    /// Faulty nodes a checked failure agreement excluded, by kind.
    pub excluded: BTreeMap<SectionFault, u64>,
    /// Spam starts sent (an honest node starting one is [`Violation::SpamStarted`]).
    pub spam_starts: u64,
    /// Handover partials an honest elder took that completed a threshold without any set of
    /// them combining to a valid signature (a bad partial among them; later partials are
    /// combined with the good ones).
    pub failed_combinations: u64,
    /// Section answers that moved an honest node on (catch-up after missed handovers).
    pub catch_ups: u64,
    /// Forged section answers faulty nodes sent (a newer SAP on a key of their own).
    pub forged_answers: u64,
    /// Forged section answers honest nodes refused.
    pub forged_refused: u64,
    /// Crashed nodes that restarted from their store ([`SectionFault::Crash`]).
    pub restarted_nodes: u64,
    /// Of those, the ones still members at the end, whose chain, SAP and share were checked
    /// with their section's honest nodes'.
    pub restarted_checked: u64,
    /// Of those, the elders of their SAP that hold no share (their DKG ended while they were
    /// down; [`invariants::NodeView::missed_dkg`]).
    pub restarted_without_share: u64,
    /// DKG shares restarted nodes took after their restart (a run resumed from the log, or a
    /// later session's).
    pub shares_after_restart: u64,
    /// Steps followed by the next before the network was quiet.
    pub unsettled_steps: u64,
    /// Virtual ticks the run took.
    pub ticks: u64,
    /// The genesis key.
    pub genesis_key: Option<keyquorum_sections::keys::PublicKey>,
    /// Each section at the end, as its honest running nodes hold it, by prefix.
    pub final_sections: Vec<FinalSection>,
    /// Checked failure agreements, in the order they formed.
    pub agreements: Vec<AgreedFailure>,
    /// Members that left, in order.
    pub departures: Vec<Departure>,
    /// Faulty nodes with their kind, in join order.
    pub faulty_nodes: Vec<(Name, SectionFault)>,
    /// What happened, in order: joins, leaves, handovers and checked failure agreements.
    pub timeline: Vec<SectionEvent>,
}

/// One step of a run, as [`SectionsReport::timeline`] lists it.
#[derive(Debug, Clone)]
pub enum SectionEvent {
    /// A node joined (faulty of that kind, if any).
    Joined {
        /// Its name.
        name: Name,
        /// Its fault.
        fault: Option<SectionFault>,
    },
    /// A member left.
    Left(Departure),
    /// Honest elders handed a section over to a new SAP for the first time.
    HandedOver {
        /// The new SAP's prefix (a child of the parent's at a split).
        prefix: keyquorum_sections::Prefix,
        /// The key that signed the new one.
        parent_key: keyquorum_sections::keys::PublicKey,
        /// The new section key.
        key: keyquorum_sections::keys::PublicKey,
        /// The new SAP's elders.
        elders: usize,
    },
    /// A failure agreement an honest elder checked.
    FailureAgreed(AgreedFailure),
}

/// A section at the end of a run.
#[derive(Debug, Clone)]
pub struct FinalSection {
    /// Its prefix.
    pub prefix: keyquorum_sections::Prefix,
    /// Its SAP's elders, in share-index order.
    pub elders: Vec<Name>,
    /// Its key chain from the genesis key.
    pub chain: keyquorum_sections::KeyChain,
}

/// A failure agreement an honest elder checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreedFailure {
    /// The failed session's section prefix.
    pub prefix: keyquorum_sections::Prefix,
    /// Its generation.
    pub generation: u64,
    /// The candidates it excluded.
    pub excluded: Vec<Name>,
}

/// A member that left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure {
    /// Its name.
    pub name: Name,
    /// Whether it was an elder of its section's SAP when it left.
    pub elder: bool,
}

impl SectionsReport {
    /// Whether no invariant broke.
    pub fn passed(&self) -> bool {
        self.violation.is_none()
    }
}

/// Runs one seeded sections network and checks it (see the module docs).
pub fn run_sections(cfg: &SectionsConfig) -> SectionsReport {
    world::run(cfg)
}
