//! # keyquorum-sim
//!
//! A deterministic simulator for whole ceremonies: `n` participants in one process, virtual time,
//! an in-memory board (the chain: blocks of posts and phase deadlines in one global order) and a
//! network with random delays, drops (retransmitted after a timeout) and temporary partitions,
//! all derived from one seed. Any mix of adversaries can be placed on the participants
//! ([`AdversaryKind`]). After each run [`checks`] asserts the protocol's guarantees:
//!
//! 1. honest participants that finished agree on the qualified set, group key and public key
//!    shares; within the fault bound (at most `n - k` corrupt players, and at most the old
//!    committee's `n - k` corrupt dealers when resharing; see [`checks::FaultBound`]) every
//!    honest participant finished;
//! 2. each honest player's public key share is its secret share times the generator;
//! 3. any `t` honest players' partial signatures combine into a signature that verifies under the
//!    group key (BLS12-381); on secp256k1 any `t` honest shares interpolate to the group secret;
//! 4. within the fault bound, no honest participant was excluded and every honest dealer
//!    qualified;
//! 5. a participant that crashed and replayed its persisted inputs sent exactly the same messages
//!    as before the crash, and (if it finished) agrees with everyone else;
//! 6. when resharing, the group key did not change.
//!
//! Beyond the fault bound the protocol promises no liveness: an adversary that large may exclude
//! honest dealers (silent members beyond `n - k`, for instance, leave the ceremony short of its
//! quorum) and stop the ceremony. Such a run is not failed for it, and not called ok either: it passes only
//! the safety checks (1, 2, 3, 5, 6 as far as there is an output) and reports
//! [`RunReport::beyond_fault_bound`], with what the honest members lost.
//!
//! Timing assumption: honest messages arrive before the phase deadline that needs them (phases
//! are longer than the worst delay plus retransmissions and partitions, which heal within a
//! phase). Deadlines are the protocol's only notion of time, as on a chain.
//!
//! [`sections`] simulates the chainless sections of `keyquorum-sections` the same way: seeded
//! networks of section nodes joining, leaving and splitting under faults, with their own
//! invariants (key chains from genesis, one key per session, no spam start, no honest
//! exclusion, and liveness within the fault bound).

#![warn(missing_docs)]

pub mod adversary;
pub mod checks;
pub mod engine;
pub mod sections;

use std::fmt;

pub use adversary::AdversaryKind;
use keyquorum_crypto::index::IndexScheme;
use keyquorum_dkg::Variant;

/// Which curve a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CurveChoice {
    /// BLS12-381 G1 keys (threshold signatures in G2).
    #[value(name = "bls12-381", alias = "bls12381", alias = "bls")]
    Bls12381,
    /// secp256k1.
    #[value(alias = "secp")]
    Secp256k1,
}

impl fmt::Display for CurveChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match clap::ValueEnum::to_possible_value(self) {
            Some(v) => f.write_str(v.get_name()),
            None => write!(f, "{self:?}"),
        }
    }
}

/// How a run's ceremonies assign share indices ([`IndexScheme`]), as the command line names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum IndicesChoice {
    /// `1..=n` in committee order.
    #[default]
    Sequential,
    /// The hash of each member's public key, reduced below the group order (seed 003, step 1).
    #[value(alias = "key_hash", alias = "public-key-hash")]
    KeyHash,
    /// Powers of a root of unity of order `next_power_of_two(n)`: BLS12-381 at any size,
    /// secp256k1 (whose scalar field has roots of unity of order at most 64) up to 64 members.
    #[value(alias = "roots_of_unity")]
    RootsOfUnity,
}

impl From<IndicesChoice> for IndexScheme {
    fn from(i: IndicesChoice) -> IndexScheme {
        match i {
            IndicesChoice::Sequential => IndexScheme::Sequential,
            IndicesChoice::KeyHash => IndexScheme::PublicKeyHash,
            IndicesChoice::RootsOfUnity => IndexScheme::RootsOfUnity,
        }
    }
}

impl fmt::Display for IndicesChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match clap::ValueEnum::to_possible_value(self) {
            Some(v) => f.write_str(v.get_name()),
            None => write!(f, "{self:?}"),
        }
    }
}

/// The protocol variant ([`Variant`]), as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VariantChoice {
    /// Ack-or-reveal: acks or public reveals, the board as broadcast.
    #[value(alias = "ackreveal", alias = "a")]
    AckReveal,
    /// Complaints: Pedersen commitments, complaints, clique, reconstruction.
    #[value(alias = "b")]
    Complaint,
}

impl fmt::Display for VariantChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match clap::ValueEnum::to_possible_value(self) {
            Some(v) => f.write_str(v.get_name()),
            None => write!(f, "{self:?}"),
        }
    }
}

impl From<VariantChoice> for Variant {
    fn from(v: VariantChoice) -> Variant {
        match v {
            VariantChoice::AckReveal => Variant::AckReveal,
            VariantChoice::Complaint => Variant::Complaint,
        }
    }
}

/// Network behaviour of a run (ticks of virtual time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetModel {
    /// Smallest one-way delay.
    pub min_delay: u64,
    /// Largest one-way delay of one transmission.
    pub max_delay: u64,
    /// Probability (per mille) that a transmission is lost and retransmitted.
    pub drop_per_mille: u32,
    /// Retransmission timeout.
    pub rto: u64,
    /// Probability (per mille) that a run has a partition during the share phase.
    pub partition_per_mille: u32,
    /// Ticks between blocks of the board.
    pub block_interval: u64,
    /// Ticks per protocol phase.
    pub phase_length: u64,
}

impl Default for NetModel {
    fn default() -> Self {
        NetModel {
            min_delay: 1,
            max_delay: 80,
            drop_per_mille: 50,
            rto: 60,
            partition_per_mille: 200,
            block_interval: 20,
            phase_length: 1_000,
        }
    }
}

/// One simulation run's configuration.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Committee size `n`.
    pub nodes: usize,
    /// Threshold `t`.
    pub threshold: usize,
    /// Dealer quorum `k`.
    pub quorum: usize,
    /// Number of adversarial participants.
    pub byzantine: usize,
    /// Kinds of adversary to draw from (empty: silent).
    pub faults: Vec<AdversaryKind>,
    /// Seed of everything random in the run.
    pub seed: u64,
    /// Protocol variant.
    pub variant: Variant,
    /// Curve.
    pub curve: CurveChoice,
    /// Share indices of every ceremony of the run.
    pub indices: IndicesChoice,
    /// Run a fresh ceremony, then reshare to a changed committee under the adversaries.
    pub reshare: bool,
    /// When resharing, the new committee's size (`None`: `n`, the old size). Member 0 always
    /// leaves; a larger committee takes new members, a smaller one also loses the old members
    /// past its size. A committee of another size than `n` uses BFT parameters for its size;
    /// the dealers' quorum is still the old threshold.
    pub reshare_committee: Option<usize>,
    /// Network model.
    pub net: NetModel,
}

impl SimConfig {
    /// BFT defaults for `n` (as [`keyquorum_dkg::Params::bft`]): `t = k = n - f` and `f`
    /// adversaries, `f = floor((n - 1) / 3)`.
    pub fn bft(n: usize, seed: u64) -> Self {
        let f = keyquorum_dkg::Params::bft_faults(n);
        SimConfig {
            nodes: n,
            threshold: n - f,
            quorum: n - f,
            byzantine: f,
            faults: AdversaryKind::ALL.to_vec(),
            seed,
            variant: Variant::AckReveal,
            curve: CurveChoice::Bls12381,
            indices: IndicesChoice::Sequential,
            reshare: false,
            reshare_committee: None,
            net: NetModel::default(),
        }
    }
}

impl SimConfig {
    /// The size of the committee the key is reshared to (`n` unless configured).
    pub fn new_committee(&self) -> usize {
        self.reshare_committee.unwrap_or(self.nodes)
    }

    /// The members of a run's second committee, when resharing: member 0 leaves, then members
    /// `1..=m` (past `n - 1`, the newcomers).
    pub fn new_members(&self) -> std::ops::RangeInclusive<usize> {
        1..=self.new_committee()
    }

    /// The most adversaries a run can place: one per member, except that when resharing they
    /// sit only on members of both committees (member 0 and the members past a smaller new
    /// committee leave and stay honest): `min(n - 1, m)`.
    pub fn max_adversaries(&self) -> usize {
        if self.reshare {
            self.nodes.saturating_sub(1).min(self.new_committee())
        } else {
            self.nodes
        }
    }
}

/// Result of one run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Seed of the run.
    pub seed: u64,
    /// Whether every check that applies passed. Beyond the fault bound that is only the safety
    /// checks: see `beyond_fault_bound`.
    pub passed: bool,
    /// Set when the adversaries exceeded the fault bound of the parameters, so the protocol
    /// promised no liveness: `"beyond the fault bound: no guarantee (...)"` with the counts and
    /// what the honest members lost. A passed run with this set is not an ok run.
    pub beyond_fault_bound: Option<String>,
    /// Why not, if not.
    pub failure: Option<String>,
    /// Wall-clock milliseconds.
    pub elapsed_ms: f64,
    /// Qualified dealers (of the last ceremony; of the corrupt members' key, unchecked, when no
    /// honest member finished, which `beyond_fault_bound` then says).
    pub qualified: Vec<u32>,
    /// Excluded participants as `role index (member m) fault` strings (see
    /// [`checks::Summary::excluded`]).
    pub excluded: Vec<String>,
    /// Adversaries placed, as `(position, kind)`.
    pub adversaries: Vec<(usize, AdversaryKind)>,
    /// Attempts used by the last ceremony.
    pub attempts: u32,
    /// Direct messages that honest participants dropped because the author they claim was not
    /// the sender (spoofing), over all ceremonies of the run.
    pub wrong_sender: u64,
    /// Board posts the chain refused because their sender was not the author they name
    /// (forgeries and replays by spoofers), over all ceremonies of the run.
    pub foreign_posts: u64,
    /// Lost-storage members that came back as players and finished holding a share (checked
    /// against their public key share, like every restarted member's), over all ceremonies.
    pub lost_storage_shares: u64,
}

/// Runs one simulated ceremony (or fresh + reshare) and checks it.
pub fn run(cfg: &SimConfig) -> RunReport {
    let start = std::time::Instant::now();
    let mut report = match cfg.curve {
        CurveChoice::Bls12381 => engine::run::<keyquorum_crypto::Bls12381G1>(cfg),
        CurveChoice::Secp256k1 => engine::run::<keyquorum_crypto::Secp256k1>(cfg),
    };
    report.elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn command_line_names_round_trip_and_cover_every_kind() {
        // The default mix (`AdversaryKind::ALL`) is every kind the command line offers.
        assert_eq!(
            AdversaryKind::ALL.as_slice(),
            AdversaryKind::value_variants()
        );
        for k in AdversaryKind::ALL {
            assert_eq!(AdversaryKind::from_str(&k.to_string(), false), Ok(k));
        }
        for c in CurveChoice::value_variants() {
            assert_eq!(CurveChoice::from_str(&c.to_string(), false).as_ref(), Ok(c));
        }
        assert_eq!(CurveChoice::Bls12381.to_string(), "bls12-381");
        assert_eq!(AdversaryKind::BadShare.to_string(), "bad-share");
        // Earlier spellings still parse.
        assert_eq!(
            AdversaryKind::from_str("invalid-signatures", false),
            Ok(AdversaryKind::InvalidSignature)
        );
        assert_eq!(
            Variant::from(VariantChoice::from_str("complaint", false).unwrap()),
            Variant::Complaint
        );
    }
}
