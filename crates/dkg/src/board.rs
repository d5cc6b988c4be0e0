//! The bulletin board of the ack-or-reveal variant: the rules for accepting posts and the
//! deterministic computation of the qualified set.
//!
//! This is the one implementation of those rules. Every participant replays the board (the
//! chain's ordered posts and phase deadlines) through a [`Board`], and the coordinator contract
//! runs the same [`Board`], so all of them agree on the qualified set, the group key and the
//! exclusions from chain data alone (seed 001: "the qualified set can be deterministically
//! computed by each party using the publicly verifiable information available on the
//! blockchain").
//!
//! # Phases (seed 000/001)
//! 1. **Contribute**: each dealer posts its commitment ([`Contribution`]). Accepted once, from a
//!    dealer, with `n + 1` points on the curve; when resharing, the value at zero must be the
//!    dealer's old public key share. A second, different contribution is equivocation. That the
//!    points lie on a polynomial of degree below `t` (and in the prime-order subgroup) is checked
//!    once, on the sum of the qualified commitments, in step 4.
//! 2. **Share**: off the board. Dealers send encrypted shares; players ack valid ones.
//! 3. **Publish**: each dealer posts its log ([`Publication`]): the ackers (bitmap + one aggregate
//!    signature) and the plaintext shares of the players that did not ack. A dealer reveals only
//!    if the reveals stay within [`Params::max_reveals`](crate::params::Params::max_reveals);
//!    otherwise it publishes its acks alone. A dealer that every player acked has a final log
//!    before the share deadline and may post it during the share phase of the first attempt.
//! 4. **Done**: the outcome. A dealer qualifies if its contribution and publication are valid and
//!    every active player is covered by an ack or a reveal. With at least the quorum of qualified
//!    dealers the group key and public key shares are the sums of the qualified commitments
//!    (Lagrange-weighted by old indices when resharing). The sums must be in the prime-order
//!    subgroup and pass the dual-code degree check; if not, the dealers whose own commitments fail
//!    are disqualified with their signed contribution as evidence and the sums recomputed. This
//!    costs one MSM per ceremony instead of one per dealer: players accept a share that matches
//!    its point `E_j`, which is sound whatever the rest of the vector is, and a vector that is
//!    not a low-degree polynomial is caught here before it can enter the key.
//!
//! # Closing a phase early
//! Deadlines bound a phase when someone is silent; when every post a phase expects is in
//! ([`Board::all_posts_in`]) nothing posted later in that phase can change the outcome, so the
//! coordinator may end the phase at once. Replicas need not evaluate the rule themselves: the
//! end of a phase reaches them as one deadline input, early or not.
//!
//! # Retries without a full restart
//! If fewer than the quorum qualify, the culprits are named: dealers that missed a phase or posted
//! something invalid, and players that more publications report as not having acked than there
//! can be lying dealers ([`Ceremony::dealer_fault_bound`]: `f = n - k` for a fresh key, the old
//! committee's bound when resharing), so such a player really did not answer an honest dealer.
//! The next attempt drops them and reruns only the publish phase: honest dealers'
//! contributions, shares and acks stay valid, since nothing in them depends on the attempt. This
//! is the improvement over Züs' full wipe-and-restart (0chain issue 190).
//!
//! # Who is blamed for a missing ack
//! A dealer whose publication leaves players uncovered (more non-ackers than the reveal bound)
//! is excluded from the attempt as [`FaultKind::IncompletePublication`] but not penalised
//! ([`Penalty::None`]): the board cannot tell a dealer that withheld shares from players that
//! withheld acks, or from a lost message. The players its publication (and any other) reports
//! are named on success and on failure ([`Board::named`], [`FaultKind::WithheldAck`]) with the
//! reporting publications as evidence; a report that reveals the player's share shows the
//! share was valid, but not that the player received it, so a name alone costs nothing. Only
//! when an attempt fails and more than the dealers' fault bound report a player is it excluded
//! (and charged as absent).
//!
//! # Success needs a usable key
//! An attempt with enough qualified dealers still fails ([`FailureReason`]) when fewer than `t`
//! players remain active, when the group key is the identity, or when a reshare does not keep
//! the old group key.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use ff::Field;
use group::prime::PrimeCurveAffine;
use keyquorum_crypto::Curve;
use keyquorum_crypto::commit::{DualCode, EvalCommitment, mul_generator};
use keyquorum_crypto::hash::tagged_hash;
use rayon::prelude::*;
use thiserror::Error;

use crate::ceremony::Ceremony;
use crate::identity::{self, IdentityPublicKey, IdentitySignature, Purpose};
use crate::messages::{Contribution, Post, Publication, SignedPost, ack_payload};

/// How many attempts a ceremony makes before giving up.
pub const MAX_ATTEMPTS: u32 = 3;

/// Board phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BoardPhase {
    /// Dealers post commitments.
    Contribute,
    /// Shares and acks travel off the board.
    Share,
    /// Dealers post their logs.
    Publish,
    /// The outcome is final.
    Done,
}

impl BoardPhase {
    /// Every phase, in order.
    pub const ALL: [BoardPhase; 4] = [
        BoardPhase::Contribute,
        BoardPhase::Share,
        BoardPhase::Publish,
        BoardPhase::Done,
    ];

    /// The phase's stable name, as stored on chain and in evidence records.
    pub fn as_str(self) -> &'static str {
        match self {
            BoardPhase::Contribute => "contribute",
            BoardPhase::Share => "share",
            BoardPhase::Publish => "publish",
            BoardPhase::Done => "done",
        }
    }
}

impl fmt::Display for BoardPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a post was refused. Refusals change nothing on the board.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BoardError {
    /// The post belongs to another session.
    #[error("post for another session")]
    WrongSession,
    /// The post is not allowed in the current phase.
    #[error("post not allowed in phase {0}")]
    WrongPhase(BoardPhase),
    /// The author is not a dealer of this ceremony.
    #[error("author {0} is not a dealer")]
    NotADealer(u32),
    /// The author's signature does not verify (the post cannot be attributed).
    #[error("bad signature")]
    BadSignature,
    /// The same post again (idempotent: nothing changes).
    #[error("duplicate post")]
    Duplicate,
    /// The author is already disqualified.
    #[error("dealer {0} is disqualified")]
    Disqualified(u32),
    /// Authentic but invalid: recorded as a fault of the author.
    #[error("invalid post from dealer {dealer}: {fault}")]
    Fault {
        /// Author.
        dealer: u32,
        /// What was wrong.
        fault: FaultKind,
    },
    /// A publication for another attempt.
    #[error("publication for attempt {got}, current attempt is {current}")]
    WrongAttempt {
        /// Attempt in the post.
        got: u32,
        /// Current attempt.
        current: u32,
    },
    /// A publication before the dealer's contribution was accepted.
    #[error("publication without an accepted contribution")]
    NoContribution,
}

/// A participant's fault.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Commitment of the wrong size.
    CommitmentSize {
        /// Points expected (`n + 1`).
        expected: usize,
        /// Points posted.
        actual: usize,
    },
    /// Commitment values do not lie on a polynomial of degree below `t`.
    CommitmentDegree,
    /// When resharing: the commitment's value at zero is not the dealer's old public key share.
    ResharePublicShareMismatch,
    /// Two different contributions signed by the same dealer.
    Equivocation,
    /// Publication names a commitment other than the dealer's contribution.
    PublicationCommitmentMismatch,
    /// Publication names players outside the committee or excluded ones, or both acks and
    /// reveals for one player.
    PublicationBadPlayers,
    /// The aggregate ack signature does not verify against the named ackers.
    BadAckSignature,
    /// A revealed share does not match the commitment.
    BadReveal {
        /// Player whose share was revealed.
        player: u32,
    },
    /// Reveals beyond the secrecy bound.
    TooManyReveals {
        /// Reveals posted.
        reveals: usize,
        /// Bound.
        max: usize,
    },
    /// Commitment points outside the prime-order subgroup (found when a sum failed the check).
    PointOutsideSubgroup,
    /// No contribution by the contribute deadline.
    MissedContribution,
    /// No publication by the publish deadline.
    MissedPublication,
    /// Publication does not cover every active player: more players than the reveal bound did
    /// not ack. Not qualified in this attempt, but not attributable to the dealer (the players
    /// may have withheld their acks), so not penalised; the players are named
    /// ([`FaultKind::WithheldAck`]).
    IncompletePublication {
        /// Players neither acked nor revealed.
        missing: usize,
    },
    /// A player that more than the dealers' fault bound of publications report as not acking:
    /// at least one honest dealer did not get its ack (unresponsive; excluded, absence).
    UnresponsivePlayer {
        /// Number of publications missing this player's ack.
        reports: usize,
    },
    /// A player that some publications report as not acking, too few to exclude it: named,
    /// neither excluded nor penalised (one report may come from a lying dealer, and a lost
    /// message looks the same as a withheld ack).
    WithheldAck {
        /// Publications missing this player's ack.
        reports: usize,
        /// How many of them reveal the player's share, verified against the dealer's
        /// commitment (the share was valid: the player had nothing to complain about).
        revealed: usize,
    },
    /// Complaint variant: a report with a dealer signature that does not verify, that
    /// validates a dealer it did not hear from, or with a complaint whose ciphertext the dealer
    /// did not sign or whose commitment is not the one heard.
    BadReport,
    /// Complaint variant: no report by the report deadline.
    MissedReport,
    /// Complaint variant: a justification that leaves a missed deal unsent, sends one nobody
    /// missed, or sends a ciphertext that is malformed or whose proof of knowledge fails.
    BadJustification {
        /// Player whose pair is wrong or missing.
        player: u32,
    },
    /// Complaint variant: missed deals not sent again by the justify deadline.
    MissingJustification {
        /// Players that missed the dealer's deal.
        complaints: usize,
    },
    /// Complaint variant: a deal proven bad by a player's verifiable complaint (its ciphertext
    /// does not decrypt under the proven key, or its pair does not open the commitment).
    BadDeal {
        /// The complaining player.
        player: u32,
    },
    /// Complaint variant: outside the maximum clique of mutual validity (or, when resharing, the
    /// qualified set).
    NotInClique,
    /// Complaint variant: a Feldman value contradicted by a player's pair that opens the
    /// dealer's Pedersen commitment (the contribution is reconstructed).
    BadFeldman {
        /// The complaining player.
        player: u32,
    },
    /// Complaint variant: no Feldman commitment by the deadline (the contribution is
    /// reconstructed).
    MissedFeldman,
    /// Complaint variant: a complaint that proves nothing: about a deal whose pair opens the
    /// commitment, with a missing or invalid reveal, or about Feldman values its pair agrees
    /// with.
    FalseComplaint {
        /// Dealer complained about.
        dealer: u32,
    },
    /// Complaint variant: a reconstruction pair that does not open the dealer's commitment.
    BadReconstructionShare {
        /// Dealer being reconstructed.
        dealer: u32,
    },
    /// Complaint variant: a qualified player did not post its pair for a failed dealer and
    /// reconstruction fell short.
    MissedReconstruction {
        /// Dealer being reconstructed.
        dealer: u32,
    },
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::CommitmentSize { expected, actual } => {
                write!(f, "commitment of {actual} points, {expected} expected")
            }
            FaultKind::CommitmentDegree => f.write_str("commitment of too high a degree"),
            FaultKind::ResharePublicShareMismatch => {
                f.write_str("reshared commitment does not start with the old public key share")
            }
            FaultKind::Equivocation => f.write_str("two different signed commitments"),
            FaultKind::PublicationCommitmentMismatch => {
                f.write_str("publication names another commitment")
            }
            FaultKind::PublicationBadPlayers => f.write_str("publication names invalid players"),
            FaultKind::BadAckSignature => f.write_str("aggregate ack signature does not verify"),
            FaultKind::BadReveal { player } => {
                write!(
                    f,
                    "revealed share of player {player} does not match the commitment"
                )
            }
            FaultKind::TooManyReveals { reveals, max } => {
                write!(
                    f,
                    "{reveals} shares revealed, at most {max} keep the secret safe"
                )
            }
            FaultKind::PointOutsideSubgroup => {
                f.write_str("commitment points outside the prime-order subgroup")
            }
            FaultKind::MissedContribution => f.write_str("no contribution by the deadline"),
            FaultKind::MissedPublication => f.write_str("no publication by the deadline"),
            FaultKind::IncompletePublication { missing } => {
                write!(
                    f,
                    "publication leaves {missing} players without an ack or a reveal"
                )
            }
            FaultKind::UnresponsivePlayer { reports } => {
                write!(f, "{reports} dealers report no ack from this player")
            }
            FaultKind::WithheldAck { reports, revealed } => {
                write!(
                    f,
                    "{reports} dealers report no ack from this player, {revealed} of them with a valid revealed share"
                )
            }
            FaultKind::BadReport => f.write_str("report with an invalid dealer statement"),
            FaultKind::MissedReport => f.write_str("no report by the deadline"),
            FaultKind::BadJustification { player } => {
                write!(f, "justification for player {player} is wrong or missing")
            }
            FaultKind::MissingJustification { complaints } => {
                write!(f, "{complaints} complaints left unanswered")
            }
            FaultKind::BadDeal { player } => {
                write!(f, "deal to player {player} proven bad by its complaint")
            }
            FaultKind::NotInClique => f.write_str("outside the clique of mutual validity"),
            FaultKind::BadFeldman { player } => {
                write!(f, "Feldman values contradicted by player {player}'s pair")
            }
            FaultKind::MissedFeldman => f.write_str("no Feldman commitment by the deadline"),
            FaultKind::FalseComplaint { dealer } => {
                write!(f, "complaint against dealer {dealer} proves nothing")
            }
            FaultKind::BadReconstructionShare { dealer } => {
                write!(
                    f,
                    "reconstruction pair for dealer {dealer} does not open its commitment"
                )
            }
            FaultKind::MissedReconstruction { dealer } => {
                write!(f, "no reconstruction pair for dealer {dealer}")
            }
        }
    }
}

/// What recording a fault costs its culprit (the contract maps these to stake; see
/// `docs/protocol.md`, "Penalties").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Penalty {
    /// Proven by the culprit's own signed data: slashed.
    Misbehaviour,
    /// A post missing by a deadline (the chain shows it), or a player that failed at least
    /// one honest dealer: the absence penalty.
    Absence,
    /// Not attributable (an honest participant can end up here through others' faults or a
    /// lost message): named, never penalised.
    None,
}

impl Penalty {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Penalty::Misbehaviour => "misbehaviour",
            Penalty::Absence => "absence",
            Penalty::None => "none",
        }
    }
}

impl FaultKind {
    /// The fault's stable snake_case name, as stored on chain. Written out per kind (never
    /// derived from `Debug`), pinned by a test.
    pub fn code(&self) -> &'static str {
        match self {
            FaultKind::CommitmentSize { .. } => "commitment_size",
            FaultKind::CommitmentDegree => "commitment_degree",
            FaultKind::ResharePublicShareMismatch => "reshare_public_share_mismatch",
            FaultKind::Equivocation => "equivocation",
            FaultKind::PublicationCommitmentMismatch => "publication_commitment_mismatch",
            FaultKind::PublicationBadPlayers => "publication_bad_players",
            FaultKind::BadAckSignature => "bad_ack_signature",
            FaultKind::BadReveal { .. } => "bad_reveal",
            FaultKind::TooManyReveals { .. } => "too_many_reveals",
            FaultKind::PointOutsideSubgroup => "point_outside_subgroup",
            FaultKind::MissedContribution => "missed_contribution",
            FaultKind::MissedPublication => "missed_publication",
            FaultKind::IncompletePublication { .. } => "incomplete_publication",
            FaultKind::UnresponsivePlayer { .. } => "unresponsive_player",
            FaultKind::WithheldAck { .. } => "withheld_ack",
            FaultKind::BadReport => "bad_report",
            FaultKind::MissedReport => "missed_report",
            FaultKind::BadJustification { .. } => "bad_justification",
            FaultKind::MissingJustification { .. } => "missing_justification",
            FaultKind::BadDeal { .. } => "bad_deal",
            FaultKind::NotInClique => "not_in_clique",
            FaultKind::BadFeldman { .. } => "bad_feldman",
            FaultKind::MissedFeldman => "missed_feldman",
            FaultKind::FalseComplaint { .. } => "false_complaint",
            FaultKind::BadReconstructionShare { .. } => "bad_reconstruction_share",
            FaultKind::MissedReconstruction { .. } => "missed_reconstruction",
        }
    }

    /// What the fault costs its culprit. Only faults proven by the culprit's own signed posts
    /// are misbehaviour; faults an honest participant can be dragged into by others (a dealer
    /// whose players withheld acks, a player one dealer reports, a complaint-variant dealer
    /// outside the clique) carry no penalty.
    pub fn penalty(&self) -> Penalty {
        match self {
            FaultKind::CommitmentSize { .. }
            | FaultKind::CommitmentDegree
            | FaultKind::ResharePublicShareMismatch
            | FaultKind::Equivocation
            | FaultKind::PublicationCommitmentMismatch
            | FaultKind::PublicationBadPlayers
            | FaultKind::BadAckSignature
            | FaultKind::BadReveal { .. }
            | FaultKind::TooManyReveals { .. }
            | FaultKind::PointOutsideSubgroup
            | FaultKind::BadReport
            | FaultKind::BadJustification { .. }
            | FaultKind::BadDeal { .. }
            | FaultKind::BadFeldman { .. }
            | FaultKind::FalseComplaint { .. }
            | FaultKind::BadReconstructionShare { .. } => Penalty::Misbehaviour,
            FaultKind::MissedContribution
            | FaultKind::MissedPublication
            | FaultKind::UnresponsivePlayer { .. }
            | FaultKind::MissedReport
            | FaultKind::MissingJustification { .. }
            | FaultKind::MissedFeldman
            | FaultKind::MissedReconstruction { .. } => Penalty::Absence,
            FaultKind::IncompletePublication { .. }
            | FaultKind::WithheldAck { .. }
            | FaultKind::NotInClique => Penalty::None,
        }
    }

    /// Whether the fault is provable misbehaviour (slashable) rather than absence or an
    /// unattributable failure.
    pub fn is_misbehaviour(&self) -> bool {
        self.penalty() == Penalty::Misbehaviour
    }
}

/// Which role a participant was excluded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// As a dealer.
    Dealer,
    /// As a player.
    Player,
}

impl Role {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Dealer => "dealer",
            Role::Player => "player",
        }
    }
}

/// Evidence for a fault that a third party can check against the session and the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// Signed posts by the culprit (encoded [`SignedPost`]s) that break a rule; for faults that
    /// need context (a publication against a contribution) the context posts come first.
    SignedPosts(Vec<Vec<u8>>),
    /// The chain shows no such post before the phase deadline in this attempt.
    Absence {
        /// Phase missed.
        phase: BoardPhase,
        /// Attempt.
        attempt: u32,
    },
    /// The publications (encoded signed posts) that report the player as not acking.
    Reports(Vec<Vec<u8>>),
}

/// An excluded participant with the reason and the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    /// Role.
    pub role: Role,
    /// Position in that role's list.
    pub index: u32,
    /// Identity key.
    pub identity: IdentityPublicKey,
    /// What happened.
    pub fault: FaultKind,
    /// The proof.
    pub evidence: Evidence,
    /// Who proved the fault, when that is someone other than the culprit: the member whose own
    /// signed post established it and that nobody else could have posted in its place (the
    /// complaint, dispute or report of the member the culprit wronged). Each board names it
    /// where it records the fault, so it does not depend on the order of the evidence items.
    /// `None` when the culprit's own posts prove the fault (equivocation included: anyone who
    /// saw both statements could submit them), for absences and other faults others only claim
    /// (a player's missing acks, a missed deal), and for faults nobody proves. The contract pays
    /// this member the reporter's share of a slash.
    pub reporter: Option<IdentityPublicKey>,
}

/// `reporter` unless it is the culprit itself (a member is dealer and player under one
/// identity): nobody is paid for proving its own fault.
pub(crate) fn other_than(
    culprit: &IdentityPublicKey,
    reporter: Option<IdentityPublicKey>,
) -> Option<IdentityPublicKey> {
    reporter.filter(|r| r != culprit)
}

/// The public result of a successful ceremony.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicOutput<C: Curve> {
    /// Group public key.
    pub group_key: C::Affine,
    /// Public key share of each player, in committee order.
    pub public_shares: Vec<C::Affine>,
    /// Qualified dealers, ascending.
    pub qualified: Vec<u32>,
    /// Weight of each qualified dealer's share in a player's final share (1 for a fresh key,
    /// the Lagrange coefficient at zero of the dealer's old index when resharing).
    pub weights: Vec<C::Scalar>,
}

/// Outcome of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<C: Curve> {
    /// Enough dealers qualified.
    Success {
        /// The result.
        output: PublicOutput<C>,
        /// Everyone excluded on the way, with evidence.
        exclusions: Vec<Exclusion>,
    },
    /// Too few qualified; the culprits are named.
    Failure {
        /// Dealers that did qualify.
        qualified: Vec<u32>,
        /// Culprits with evidence.
        exclusions: Vec<Exclusion>,
        /// Whether another attempt follows.
        retrying: bool,
    },
}

/// Why an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// Fewer dealers qualified than the quorum.
    TooFewDealers {
        /// Qualified.
        qualified: usize,
        /// Needed ([`Ceremony::dealer_quorum`]).
        quorum: usize,
    },
    /// Fewer active players than the threshold: the key could never be used.
    TooFewPlayers {
        /// Active players.
        active: usize,
        /// Threshold.
        t: usize,
    },
    /// The qualified commitments sum to the identity as group key.
    IdentityKey,
    /// Resharing: the qualified commitments do not keep the old group key (the old public key
    /// shares are inconsistent with it; no dealer is to blame, each matched its own).
    KeyChanged,
    /// A sum failed a check that no qualified dealer's own commitment fails.
    Unattributable,
    /// Complaint variant, fresh key: `standing` dealers are not disqualified, but no `quorum`
    /// of them validated each other's deals (the maximal clique is smaller). Under the board's
    /// rules every standing pair has validated each other once complaints, justifications and
    /// disputes are judged (each ends in a pair or a fault), so the clique drops nobody standing
    /// and this does not arise; it is kept so that a clique search that comes up short fails
    /// the ceremony with a reason rather than with a panic.
    NoConsistentQuorum {
        /// Dealers not disqualified, with an accepted report.
        standing: usize,
        /// Needed ([`Ceremony::dealer_quorum`]).
        quorum: usize,
    },
    /// Complaint variant, reshare: fewer players reported than `k`.
    TooFewReports {
        /// Players with an accepted report.
        reports: usize,
        /// Needed (`k`).
        needed: usize,
    },
    /// Complaint variant: a qualified dealer that failed its Feldman phase could not be
    /// reconstructed (fewer than `t` valid pairs were posted); dropping it could bias the key.
    Unreconstructed {
        /// The dealer.
        dealer: u32,
        /// Valid pairs posted.
        pairs: usize,
        /// Needed (`t`).
        t: usize,
    },
}

impl FailureReason {
    /// Stable snake_case name.
    pub fn code(&self) -> &'static str {
        match self {
            FailureReason::TooFewDealers { .. } => "too_few_dealers",
            FailureReason::TooFewPlayers { .. } => "too_few_players",
            FailureReason::IdentityKey => "identity_group_key",
            FailureReason::KeyChanged => "reshare_changed_key",
            FailureReason::Unattributable => "unattributable",
            FailureReason::NoConsistentQuorum { .. } => "no_consistent_quorum",
            FailureReason::TooFewReports { .. } => "too_few_reports",
            FailureReason::Unreconstructed { .. } => "unreconstructed",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::TooFewDealers { qualified, quorum } => {
                write!(f, "{qualified} dealers qualified, {quorum} needed")
            }
            FailureReason::TooFewPlayers { active, t } => {
                write!(f, "{active} active players, threshold {t}")
            }
            FailureReason::IdentityKey => f.write_str("the group key is the identity"),
            FailureReason::KeyChanged => f.write_str("resharing did not keep the group key"),
            FailureReason::Unattributable => {
                f.write_str("a sum check failed that no dealer's own check confirms")
            }
            FailureReason::NoConsistentQuorum { standing, quorum } => write!(
                f,
                "no {quorum} of the {standing} dealers standing validated each other's deals"
            ),
            FailureReason::TooFewReports { reports, needed } => {
                write!(f, "{reports} players reported, {needed} needed")
            }
            FailureReason::Unreconstructed { dealer, pairs, t } => write!(
                f,
                "dealer {dealer} could not be reconstructed: {pairs} valid pairs of {t} needed"
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ContributionEntry<C: Curve> {
    commitment: EvalCommitment<C>,
    hash: [u8; 32],
    signed: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PublicationEntry<C: Curve> {
    publication: Publication<C>,
    signed: Vec<u8>,
}

/// A set of player positions as one flag per player, cleared in time proportional to what was
/// set: the per-publication sets of `finish_attempt` at `O(n)` each instead of `O(n log n)`.
struct PlayerFlags {
    flags: Vec<bool>,
    set: Vec<u32>,
}

impl PlayerFlags {
    fn new(n: usize) -> Self {
        PlayerFlags {
            flags: vec![false; n],
            set: Vec::new(),
        }
    }

    /// Adds `players`; positions outside the committee are ignored (no query can ask for them).
    fn set(&mut self, players: impl Iterator<Item = u32>) {
        for j in players {
            if let Some(f) = self.flags.get_mut(j as usize)
                && !*f
            {
                *f = true;
                self.set.push(j);
            }
        }
    }

    fn get(&self, j: u32) -> bool {
        self.flags.get(j as usize).copied().unwrap_or(false)
    }

    fn clear(&mut self) {
        for j in self.set.drain(..) {
            self.flags[j as usize] = false;
        }
    }
}

/// The board's state for one ceremony.
#[derive(Debug, Clone)]
pub struct Board<C: Curve> {
    ceremony: Arc<Ceremony<C>>,
    phase: BoardPhase,
    attempt: u32,
    contributions: BTreeMap<u32, ContributionEntry<C>>,
    publications: BTreeMap<u32, PublicationEntry<C>>,
    /// Dealers disqualified for good, with the first fault and its evidence.
    faults: BTreeMap<u32, (FaultKind, Evidence)>,
    /// Players dropped by earlier attempts.
    excluded_players: BTreeMap<u32, (FaultKind, Evidence)>,
    /// Dealers dropped by earlier attempts for absence.
    absent_dealers: BTreeMap<u32, (FaultKind, Evidence)>,
    /// Players named (not excluded) by the last attempt that ended.
    named: Vec<Exclusion>,
    /// Why the last attempt that ended failed.
    failure: Option<FailureReason>,
    outcome: Option<Outcome<C>>,
}

/// Two boards are equal when they are for the same session and hold the same state (what
/// [`Board::apply`] promises to leave unchanged on a refusal).
impl<C: Curve> PartialEq for Board<C> {
    fn eq(&self, other: &Self) -> bool {
        // Destructured so that a new field cannot be left out of the comparison.
        let Board {
            ceremony,
            phase,
            attempt,
            contributions,
            publications,
            faults,
            excluded_players,
            absent_dealers,
            named,
            failure,
            outcome,
        } = self;
        ceremony.id() == other.ceremony.id()
            && *phase == other.phase
            && *attempt == other.attempt
            && *contributions == other.contributions
            && *publications == other.publications
            && *faults == other.faults
            && *excluded_players == other.excluded_players
            && *absent_dealers == other.absent_dealers
            && *named == other.named
            && *failure == other.failure
            && *outcome == other.outcome
    }
}

impl<C: Curve> Board<C> {
    /// An empty board in the contribute phase.
    pub fn new(ceremony: Arc<Ceremony<C>>) -> Self {
        Board {
            ceremony,
            phase: BoardPhase::Contribute,
            attempt: 0,
            contributions: BTreeMap::new(),
            publications: BTreeMap::new(),
            faults: BTreeMap::new(),
            excluded_players: BTreeMap::new(),
            absent_dealers: BTreeMap::new(),
            named: Vec::new(),
            failure: None,
            outcome: None,
        }
    }

    /// The ceremony.
    pub fn ceremony(&self) -> &Arc<Ceremony<C>> {
        &self.ceremony
    }

    /// Current phase.
    pub fn phase(&self) -> BoardPhase {
        self.phase
    }

    /// Current attempt (0-based).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// A dealer's accepted commitment and its hash.
    pub fn contribution(&self, dealer: u32) -> Option<(&EvalCommitment<C>, &[u8; 32])> {
        self.contributions
            .get(&dealer)
            .filter(|_| !self.faults.contains_key(&dealer))
            .map(|e| (&e.commitment, &e.hash))
    }

    /// A dealer's accepted publication in the current attempt.
    pub fn publication(&self, dealer: u32) -> Option<&Publication<C>> {
        self.publications.get(&dealer).map(|e| &e.publication)
    }

    /// Whether a player is still active (not dropped by an earlier attempt).
    pub fn is_active_player(&self, player: u32) -> bool {
        (player as usize) < self.ceremony.n() && !self.excluded_players.contains_key(&player)
    }

    /// Whether a dealer can still qualify.
    pub fn is_active_dealer(&self, dealer: u32) -> bool {
        (dealer as usize) < self.ceremony.dealer_count()
            && !self.faults.contains_key(&dealer)
            && !self.absent_dealers.contains_key(&dealer)
    }

    /// Active players, ascending.
    pub fn active_players(&self) -> Vec<u32> {
        (0..self.ceremony.n() as u32)
            .filter(|p| self.is_active_player(*p))
            .collect()
    }

    /// The outcome, once the phase is [`BoardPhase::Done`] (or after a failed attempt that retries).
    pub fn outcome(&self) -> Option<&Outcome<C>> {
        self.outcome.as_ref()
    }

    /// Players named by the attempt that ended last for acks that publications lack
    /// ([`FaultKind::WithheldAck`]), with those publications as evidence. They are neither
    /// excluded nor penalised: see [`Penalty::None`]. Replaced at the end of every attempt, on
    /// success and on failure.
    pub fn named(&self) -> &[Exclusion] {
        &self.named
    }

    /// Why the attempt that ended last failed (`None` after a success or before any ended).
    pub fn failure_reason(&self) -> Option<FailureReason> {
        self.failure
    }

    /// Dealers disqualified so far, with their faults.
    pub fn faults(&self) -> impl Iterator<Item = (u32, &FaultKind)> {
        self.faults.iter().map(|(d, (f, _))| (*d, f))
    }

    /// Applies a signed post. On `Err` the board is unchanged, except that an authentic invalid
    /// post ([`BoardError::Fault`]) disqualifies its author with the post as evidence.
    pub fn apply(&mut self, signed: &SignedPost<C>) -> Result<(), BoardError> {
        let mut signed_bytes = check_authentic(&self.ceremony, signed)?;
        let post = &signed.post;
        let result = match post {
            Post::Contribution(c) => self.apply_contribution(c, &mut signed_bytes),
            Post::Publication(p) => self.apply_publication(p, &signed_bytes),
        };
        if let Err(BoardError::Fault { dealer, fault }) = &result {
            let evidence = match fault {
                FaultKind::Equivocation => Evidence::SignedPosts(vec![
                    self.contributions[dealer].signed.clone(),
                    signed_bytes.clone(),
                ]),
                FaultKind::PublicationCommitmentMismatch
                | FaultKind::BadAckSignature
                | FaultKind::BadReveal { .. }
                | FaultKind::PublicationBadPlayers
                | FaultKind::TooManyReveals { .. } => {
                    let mut v = Vec::new();
                    if let Some(c) = self.contributions.get(dealer) {
                        v.push(c.signed.clone());
                    }
                    v.push(signed_bytes.clone());
                    Evidence::SignedPosts(v)
                }
                _ => Evidence::SignedPosts(vec![signed_bytes.clone()]),
            };
            self.faults
                .entry(*dealer)
                .or_insert((fault.clone(), evidence));
        }
        result
    }

    /// Applies a contribution; on success its encoding moves out of `signed` into the board
    /// (at `n = 1024` it is ~100 KB, so it is not copied again), on failure `signed` is left
    /// for the evidence.
    fn apply_contribution(
        &mut self,
        c: &Contribution<C>,
        signed: &mut Vec<u8>,
    ) -> Result<(), BoardError> {
        if let Some(existing) = self.contributions.get(&c.dealer) {
            if existing.signed == *signed || existing.commitment == c.commitment {
                return Err(BoardError::Duplicate);
            }
            return Err(BoardError::Fault {
                dealer: c.dealer,
                fault: FaultKind::Equivocation,
            });
        }
        if self.faults.contains_key(&c.dealer) {
            return Err(BoardError::Disqualified(c.dealer));
        }
        if self.phase != BoardPhase::Contribute {
            return Err(BoardError::WrongPhase(self.phase));
        }
        let fault = |f| BoardError::Fault {
            dealer: c.dealer,
            fault: f,
        };
        let expected = self.ceremony.n() + 1;
        if c.commitment.points().len() != expected {
            return Err(fault(FaultKind::CommitmentSize {
                expected,
                actual: c.commitment.points().len(),
            }));
        }
        // The degree of each commitment is not checked here: checking the sum of the qualified
        // commitments once at the end is as good (see `public_output`) and n times cheaper.
        let hash = c.commitment_hash();
        if let Some(r) = self.ceremony.reshare()
            && r.public_shares[c.dealer as usize] != *c.commitment.constant()
        {
            return Err(fault(FaultKind::ResharePublicShareMismatch));
        }
        self.contributions.insert(
            c.dealer,
            ContributionEntry {
                commitment: c.commitment.clone(),
                hash,
                signed: std::mem::take(signed),
            },
        );
        Ok(())
    }

    fn apply_publication(&mut self, p: &Publication<C>, signed: &[u8]) -> Result<(), BoardError> {
        if self.faults.contains_key(&p.dealer) {
            return Err(BoardError::Disqualified(p.dealer));
        }
        if p.attempt != self.attempt {
            return Err(BoardError::WrongAttempt {
                got: p.attempt,
                current: self.attempt,
            });
        }
        if let Some(existing) = self.publications.get(&p.dealer) {
            if existing.publication == *p {
                return Err(BoardError::Duplicate);
            }
            // A second, different log in the same attempt: keep the first (first come on chain).
            return Err(BoardError::Duplicate);
        }
        // A log is posted in the publish phase, or earlier, in the share phase of the first
        // attempt, by a dealer whose log is already final: every player acked (nothing to wait
        // for, nothing to reveal). Such a post is what it would have been at the share deadline,
        // and it lets the share phase close as soon as every dealer's log is in.
        let early = self.phase == BoardPhase::Share
            && self.attempt == 0
            && p.reveals.is_empty()
            && p.acks.len() == self.ceremony.n();
        if self.phase != BoardPhase::Publish && !early {
            return Err(BoardError::WrongPhase(self.phase));
        }
        if self.absent_dealers.contains_key(&p.dealer) {
            return Err(BoardError::Disqualified(p.dealer));
        }
        let Some(entry) = self.contributions.get(&p.dealer) else {
            return Err(BoardError::NoContribution);
        };
        let fault = |f| BoardError::Fault {
            dealer: p.dealer,
            fault: f,
        };
        if p.commitment_hash != entry.hash {
            return Err(fault(FaultKind::PublicationCommitmentMismatch));
        }
        // Every named player must be active and named once (one flag per player: a set here
        // cost `n log n` per publication, `n^2 log n` per board replay).
        let mut seen = vec![false; self.ceremony.n()];
        for j in p.acks.iter().chain(p.reveals.iter().map(|(j, _)| j)) {
            if !self.is_active_player(*j) || std::mem::replace(&mut seen[*j as usize], true) {
                return Err(fault(FaultKind::PublicationBadPlayers));
            }
        }
        let max = self.ceremony.params().max_reveals();
        if p.reveals.len() > max {
            return Err(fault(FaultKind::TooManyReveals {
                reveals: p.reveals.len(),
                max,
            }));
        }
        if let Some(sig) = &p.ack_signature {
            let players = self.ceremony.players();
            let payload = ack_payload(&p.session, p.dealer, &p.commitment_hash);
            let ok = self
                .ceremony
                .check_once(ack_check_key(&payload, sig, &p.acks), || {
                    let keys: Vec<&IdentityPublicKey> = p
                        .acks
                        .iter()
                        .map(|j| &players[*j as usize].identity)
                        .collect();
                    identity::verify_aggregate(&keys, Purpose::Ack, &payload, sig)
                });
            if !ok {
                return Err(fault(FaultKind::BadAckSignature));
            }
        }
        for (j, s) in &p.reveals {
            if !entry.commitment.verify_revealed_share(*j as usize, s) {
                return Err(fault(FaultKind::BadReveal { player: *j }));
            }
        }
        self.publications.insert(
            p.dealer,
            PublicationEntry {
                publication: p.clone(),
                signed: signed.to_vec(),
            },
        );
        Ok(())
    }

    /// Whether every post the current phase expects is on the board, so that no later post in
    /// this phase can change the outcome and the phase may close before its deadline (the
    /// deadline stays the bound when someone is silent):
    /// - contribute: every dealer has an accepted contribution or is disqualified;
    /// - share: every active dealer with a contribution has posted its final log early (see
    ///   [`Board::apply`]: all players acked); dealers without a contribution can post nothing
    ///   more;
    /// - publish: every active dealer with a contribution has a log in the current attempt.
    ///
    /// What can still arrive once this holds is a duplicate (no effect) or a second, different
    /// contribution, which is equivocation in any phase up to the outcome, so closing early
    /// never cuts off a post that an honest dealer would have made in time.
    pub fn all_posts_in(&self) -> bool {
        let dealers = 0..self.ceremony.dealer_count() as u32;
        match self.phase {
            BoardPhase::Contribute => dealers
                .into_iter()
                .all(|d| self.contributions.contains_key(&d) || self.faults.contains_key(&d)),
            BoardPhase::Share | BoardPhase::Publish => dealers.into_iter().all(|d| {
                !self.is_active_dealer(d)
                    || !self.contributions.contains_key(&d)
                    || self.publications.contains_key(&d)
            }),
            BoardPhase::Done => false,
        }
    }

    /// The phase deadline passed: move to the next phase. At the end of the publish phase this
    /// computes the outcome, and if the attempt failed with culprits and attempts remain, starts
    /// the next attempt (back in the publish phase).
    pub fn advance(&mut self) {
        match self.phase {
            BoardPhase::Contribute => self.phase = BoardPhase::Share,
            BoardPhase::Share => self.phase = BoardPhase::Publish,
            BoardPhase::Publish => self.finish_attempt(),
            BoardPhase::Done => {}
        }
    }

    fn identity_of(&self, role: Role, index: u32) -> IdentityPublicKey {
        match role {
            Role::Dealer => self.ceremony.dealers()[index as usize].identity.clone(),
            Role::Player => self.ceremony.players()[index as usize].identity.clone(),
        }
    }

    /// For each active player that some publication of this attempt reports as not acking:
    /// those publications (signed, in dealer order) and how many of them reveal its share.
    /// Every accepted reveal was verified against the dealer's commitment on arrival.
    fn ack_reports(&self, active: &[u32]) -> BTreeMap<u32, (Vec<Vec<u8>>, usize)> {
        let mut reports: BTreeMap<u32, (Vec<Vec<u8>>, usize)> = BTreeMap::new();
        // One flag per player, reused across publications (sets would cost n^2 log n here).
        let mut acked = PlayerFlags::new(self.ceremony.n());
        let mut revealed = PlayerFlags::new(self.ceremony.n());
        for e in self.publications.values() {
            acked.set(e.publication.acks.iter().copied());
            revealed.set(e.publication.reveals.iter().map(|(j, _)| *j));
            for j in active {
                if !acked.get(*j) {
                    let r = reports.entry(*j).or_default();
                    r.0.push(e.signed.clone());
                    r.1 += usize::from(revealed.get(*j));
                }
            }
            acked.clear();
            revealed.clear();
        }
        reports
    }

    fn finish_attempt(&mut self) {
        let active: Vec<u32> = self.active_players();
        let n_dealers = self.ceremony.dealer_count() as u32;
        let mut exclusions = Vec::new();
        let mut qualified = Vec::new();
        let mut newly_absent = Vec::new();
        let mut covered = PlayerFlags::new(self.ceremony.n());
        for d in 0..n_dealers {
            if let Some((fault, evidence)) =
                self.faults.get(&d).or_else(|| self.absent_dealers.get(&d))
            {
                exclusions.push(Exclusion {
                    role: Role::Dealer,
                    index: d,
                    identity: self.identity_of(Role::Dealer, d),
                    fault: fault.clone(),
                    evidence: evidence.clone(),
                    reporter: None,
                });
                continue;
            }
            let (fault, phase) = if !self.contributions.contains_key(&d) {
                (FaultKind::MissedContribution, BoardPhase::Contribute)
            } else if let Some(p) = self.publications.get(&d) {
                let publication = &p.publication;
                covered.set(publication.acks.iter().copied());
                covered.set(publication.reveals.iter().map(|(j, _)| *j));
                let missing = active.iter().filter(|j| !covered.get(**j)).count();
                covered.clear();
                if missing == 0 {
                    qualified.push(d);
                    continue;
                }
                // Excluded from this attempt only (it may complete the next one once the
                // players that withheld are dropped), and not penalised: nothing on the board
                // tells a dealer that did not send shares from players that withheld acks.
                exclusions.push(Exclusion {
                    role: Role::Dealer,
                    index: d,
                    identity: self.identity_of(Role::Dealer, d),
                    fault: FaultKind::IncompletePublication { missing },
                    evidence: Evidence::SignedPosts(vec![p.signed.clone()]),
                    reporter: None,
                });
                continue;
            } else {
                (FaultKind::MissedPublication, BoardPhase::Publish)
            };
            newly_absent.push((d, fault.clone(), phase));
            exclusions.push(Exclusion {
                role: Role::Dealer,
                index: d,
                identity: self.identity_of(Role::Dealer, d),
                fault,
                evidence: Evidence::Absence {
                    phase,
                    attempt: self.attempt,
                },
                reporter: None,
            });
        }
        for (j, (fault, evidence)) in &self.excluded_players {
            exclusions.push(Exclusion {
                role: Role::Player,
                index: *j,
                identity: self.identity_of(Role::Player, *j),
                fault: fault.clone(),
                evidence: evidence.clone(),
                reporter: None,
            });
        }
        let reports = self.ack_reports(&active);

        // Each pass of this loop either ends it or disqualifies at least one dealer of
        // `qualified` and removes it (`aggregate_commitments` only names dealers it was given),
        // so it runs at most `qualified.len() + 1` times.
        let quorum = self.ceremony.dealer_quorum();
        let mut unusable = None;
        while qualified.len() >= quorum {
            match self.public_output(&qualified) {
                Ok(output) => match self.check_output(&output, active.len()) {
                    Ok(()) => {
                        self.named = self.withheld_acks(reports, &BTreeSet::new());
                        exclusions.sort_by_key(|e| (e.role, e.index));
                        self.failure = None;
                        self.outcome = Some(Outcome::Success { output, exclusions });
                        self.phase = BoardPhase::Done;
                        return;
                    }
                    Err(reason) => {
                        unusable = Some(reason);
                        break;
                    }
                },
                // Some qualified dealers committed to points outside the subgroup or to a
                // vector of too high degree: they are disqualified (their own signed posts
                // prove it) and the outcome recomputed without them.
                Err(bad) if !bad.is_empty() => {
                    for (d, fault) in bad {
                        let evidence =
                            Evidence::SignedPosts(vec![self.contributions[&d].signed.clone()]);
                        self.faults.insert(d, (fault.clone(), evidence.clone()));
                        qualified.retain(|q| *q != d);
                        exclusions.push(Exclusion {
                            role: Role::Dealer,
                            index: d,
                            identity: self.identity_of(Role::Dealer, d),
                            fault,
                            evidence,
                            reporter: None,
                        });
                    }
                }
                // A failed sum check that no dealer's own check confirms (a false positive of
                // a probabilistic check): nobody to blame, the attempt fails.
                Err(_) => {
                    unusable = Some(FailureReason::Unattributable);
                    break;
                }
            }
        }

        // Failure: players that more publications report as not acking than there can be
        // lying dealers failed at least one honest dealer; they are excluded from the next
        // attempt. Players with fewer reports are only named.
        let f = self.ceremony.dealer_fault_bound();
        let mut new_players = Vec::new();
        let mut excluded_now = BTreeSet::new();
        for (j, (posts, _)) in &reports {
            if posts.len() > f {
                let fault = FaultKind::UnresponsivePlayer {
                    reports: posts.len(),
                };
                let evidence = Evidence::Reports(posts.clone());
                exclusions.push(Exclusion {
                    role: Role::Player,
                    index: *j,
                    identity: self.identity_of(Role::Player, *j),
                    fault: fault.clone(),
                    reporter: None,
                    evidence: evidence.clone(),
                });
                excluded_now.insert(*j);
                new_players.push((*j, fault, evidence));
            }
        }
        self.named = self.withheld_acks(reports, &excluded_now);
        exclusions.sort_by_key(|e| (e.role, e.index));
        // Retrying helps only when it drops someone and the output was not refused for a
        // reason that the same dealers would meet again.
        let progress = !new_players.is_empty() || !newly_absent.is_empty();
        let retrying = unusable.is_none() && progress && self.attempt + 1 < MAX_ATTEMPTS;
        self.failure = Some(unusable.unwrap_or(FailureReason::TooFewDealers {
            qualified: qualified.len(),
            quorum,
        }));
        self.outcome = Some(Outcome::Failure {
            qualified,
            exclusions,
            retrying,
        });
        if retrying {
            for (d, fault, phase) in newly_absent {
                self.absent_dealers.insert(
                    d,
                    (
                        fault,
                        Evidence::Absence {
                            phase,
                            attempt: self.attempt,
                        },
                    ),
                );
            }
            for (j, fault, ev) in new_players {
                self.excluded_players.insert(j, (fault, ev));
            }
            self.attempt += 1;
            self.publications.clear();
            self.phase = BoardPhase::Publish;
        } else {
            self.phase = BoardPhase::Done;
        }
    }

    /// The players named for withheld acks: every reported player not in `excluded`.
    fn withheld_acks(
        &self,
        reports: BTreeMap<u32, (Vec<Vec<u8>>, usize)>,
        excluded: &BTreeSet<u32>,
    ) -> Vec<Exclusion> {
        reports
            .into_iter()
            .filter(|(j, _)| !excluded.contains(j))
            .map(|(j, (posts, revealed))| {
                let fault = FaultKind::WithheldAck {
                    reports: posts.len(),
                    revealed,
                };
                let evidence = Evidence::Reports(posts);
                Exclusion {
                    role: Role::Player,
                    index: j,
                    identity: self.identity_of(Role::Player, j),
                    fault,
                    reporter: None,
                    evidence,
                }
            })
            .collect()
    }

    /// Whether a computed output may be declared: enough active players to hold the key, a
    /// group key other than the identity, and, when resharing, the old group key.
    fn check_output(&self, output: &PublicOutput<C>, active: usize) -> Result<(), FailureReason> {
        let t = self.ceremony.t();
        if active < t {
            return Err(FailureReason::TooFewPlayers { active, t });
        }
        if is_identity::<C>(&output.group_key) {
            return Err(FailureReason::IdentityKey);
        }
        if let Some(r) = self.ceremony.reshare()
            && output.group_key != r.group_key
        {
            return Err(FailureReason::KeyChanged);
        }
        Ok(())
    }

    /// Sums the qualified commitments into the group key and public key shares, checking the sums
    /// are in the prime-order subgroup and lie on a polynomial of degree below `t`. On failure
    /// returns the qualified dealers at fault.
    fn public_output(&self, qualified: &[u32]) -> Result<PublicOutput<C>, Vec<(u32, FaultKind)>> {
        let commitments: Vec<&EvalCommitment<C>> = qualified
            .iter()
            .map(|d| &self.contributions[d].commitment)
            .collect();
        let weights = self.ceremony.dealer_weights(qualified);
        let hashes: Vec<[u8; 32]> = qualified
            .iter()
            .map(|d| self.contributions[d].hash)
            .collect();
        let sums =
            aggregate_commitments(&self.ceremony, qualified, &commitments, &hashes, &weights)?;
        let group_key = sums[0];
        Ok(PublicOutput {
            group_key,
            public_shares: sums[1..].to_vec(),
            qualified: qualified.to_vec(),
            weights,
        })
    }
}

/// The group's public values from the qualified dealers' commitments: `Y = sum_i w_i E_i` (the
/// group key first, then each player's public key share), checked to be in the prime-order
/// subgroup and to lie on a polynomial of degree below `t` (see the module docs). On failure,
/// the dealers (from `dealers`) whose own commitments are at fault.
pub fn aggregate_commitments<C: Curve>(
    ceremony: &Ceremony<C>,
    dealers: &[u32],
    commitments: &[&EvalCommitment<C>],
    hashes: &[[u8; 32]],
    weights: &[C::Scalar],
) -> Result<Vec<C::Affine>, Vec<(u32, FaultKind)>> {
    let sums = weighted_column_sums::<C>(commitments, weights);
    // Subgroup membership and degree are checked on the sums, once, and per dealer only when
    // a sum fails. Both properties are preserved by (weighted) sums, so passing sums mean the
    // output is a valid sharing in the prime-order group; dealers whose flaws cancel out in
    // the sum contribute exactly what valid commitments with the same sum would.
    if C::HAS_COFACTOR && sums.par_iter().any(|p| !C::in_subgroup(p)) {
        let bad: Vec<(u32, FaultKind)> = dealers
            .iter()
            .zip(commitments)
            .filter(|(_, c)| c.points().iter().any(|p| !C::in_subgroup(p)))
            .map(|(d, _)| (*d, FaultKind::PointOutsideSubgroup))
            .collect();
        debug_assert!(
            !bad.is_empty(),
            "a sum of subgroup points is in the subgroup"
        );
        return Err(bad);
    }
    let mut transcript = Vec::with_capacity(32 * (dealers.len() + 1));
    transcript.extend_from_slice(ceremony.id());
    for h in hashes {
        transcript.extend_from_slice(h);
    }
    let seed = tagged_hash("keyquorum/degree-check/sum/v1", &[&transcript]);
    if !ceremony.dual_code().is_codeword::<C>(&sums, &seed) {
        let bad: Vec<(u32, FaultKind)> = dealers
            .iter()
            .zip(commitments.iter().zip(hashes))
            .filter(|(d, (c, h))| !commitment_is_valid(ceremony, **d, c, h))
            .map(|(d, _)| (*d, FaultKind::CommitmentDegree))
            .collect();
        debug_assert!(!bad.is_empty(), "a sum of codewords is a codeword");
        return Err(bad);
    }
    Ok(sums)
}

/// `Y_j = sum_i w_i E_ij` for every column `j`. With unit weights this is plain addition (the
/// fresh-key case, `n (n + 1)` additions); with Lagrange weights one MSM per column.
pub fn weighted_column_sums<C: Curve>(
    commitments: &[&EvalCommitment<C>],
    weights: &[C::Scalar],
) -> Vec<C::Affine> {
    let width = commitments.first().map(|c| c.points().len()).unwrap_or(0);
    let unit = weights.iter().all(|w| *w == C::Scalar::ONE);
    // Columns are independent: spread them over the rayon pool (the sums do not depend on it).
    let out: Vec<C::Point> = (0..width)
        .into_par_iter()
        .with_min_len(8)
        .map_init(
            || Vec::with_capacity(commitments.len()),
            |column, j| {
                column.clear();
                column.extend(commitments.iter().map(|c| c.points()[j]));
                if unit {
                    C::sum(column)
                } else {
                    C::msm(column, weights)
                }
            },
        )
        .collect();
    C::batch_normalize(&out)
}

/// The checks [`Board::apply`] makes before it looks at the board: the post is of `ceremony`'s
/// session, names a dealer, and carries that dealer's valid signature (remembered in the
/// ceremony's check cache, [`Ceremony::check_once`]). Usable without a board, say by a mempool's
/// admission check. Returns the signed post's encoding ([`SignedPost::encode`]).
pub fn check_authentic<C: Curve>(
    ceremony: &Ceremony<C>,
    signed: &SignedPost<C>,
) -> Result<Vec<u8>, BoardError> {
    let post = &signed.post;
    if post.session() != ceremony.id() {
        return Err(BoardError::WrongSession);
    }
    let dealer = post.dealer();
    let Some(author) = ceremony.dealers().get(dealer as usize) else {
        return Err(BoardError::NotADealer(dealer));
    };
    let sig_ok = ceremony.check_once(
        post_signature_check_key(dealer, &post_id(post), &signed.signature),
        || {
            author
                .identity
                .verify(Purpose::Post, &post.signed_payload(), &signed.signature)
        },
    );
    if !sig_ok {
        return Err(BoardError::BadSignature);
    }
    Ok(signed.encode())
}

/// A collision-resistant name of a post that is cheap to compute: a contribution is named by
/// its session, dealer and commitment digest (which a decoded commitment already holds, and
/// which with them determines the encoding), a publication by its encoding.
pub(crate) fn post_id<C: Curve>(post: &Post<C>) -> [u8; 32] {
    match post {
        Post::Contribution(c) => tagged_hash(
            "keyquorum/post-id/contribution/v1",
            &[&c.session, &c.dealer.to_be_bytes(), &c.commitment.digest()],
        ),
        Post::Publication(_) => tagged_hash("keyquorum/post-id/publication/v1", &[&post.encode()]),
    }
}

/// The key under which a post's signature check is remembered ([`Ceremony::check_once`]): the
/// author's position, the post's [`post_id`] and the signature. Shared with the batch
/// pre-verification ([`crate::preverify`]), which fills the same entries.
pub(crate) fn post_signature_check_key(
    dealer: u32,
    post_id: &[u8; 32],
    sig: &IdentitySignature,
) -> [u8; 32] {
    tagged_hash(
        "keyquorum/check/post-signature/v2",
        &[&dealer.to_be_bytes(), post_id, &sig.0],
    )
}

/// The key under which an aggregate ack check is remembered: payload, signature, ackers.
pub(crate) fn ack_check_key(payload: &[u8], sig: &IdentitySignature, acks: &[u32]) -> [u8; 32] {
    let mut key_material = Vec::with_capacity(payload.len() + sig.0.len() + 4 * acks.len());
    key_material.extend_from_slice(payload);
    key_material.extend_from_slice(&sig.0);
    for j in acks {
        key_material.extend_from_slice(&j.to_be_bytes());
    }
    tagged_hash("keyquorum/check/ack-aggregate", &[&key_material])
}

/// Checks a player's final share against its public key share.
pub fn share_matches<C: Curve>(share: &C::Scalar, public_share: &C::Affine) -> bool {
    mul_generator::<C>(share) == public_share.to_curve()
}

/// Whether `p` is the identity (a group key must not be).
pub fn is_identity<C: Curve>(p: &C::Affine) -> bool {
    bool::from(p.is_identity())
}

/// The qualified set as the contract and the nodes compute it, for callers that only need it.
pub fn qualified_set<C: Curve>(board: &Board<C>) -> Option<Vec<u32>> {
    match board.outcome()? {
        Outcome::Success { output, .. } => Some(output.qualified.clone()),
        Outcome::Failure { qualified, .. } => Some(qualified.clone()),
    }
}

/// Re-checks a dealer's degree proof (exposed for evidence verification).
pub fn commitment_is_valid<C: Curve>(
    ceremony: &Ceremony<C>,
    dealer: u32,
    commitment: &EvalCommitment<C>,
    hash: &[u8; 32],
) -> bool {
    commitment.points().len() == ceremony.n() + 1
        && DualCode::is_codeword_with::<C>(
            commitment.points(),
            &ceremony
                .dual_code()
                .weights(&ceremony.degree_check_seed(dealer, hash)),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names stored on chain. Changing one changes consensus state: this list is the
    /// contract between versions.
    #[test]
    fn codes_are_pinned() {
        let faults: [(FaultKind, &str, Penalty); 26] = [
            (
                FaultKind::CommitmentSize {
                    expected: 5,
                    actual: 3,
                },
                "commitment_size",
                Penalty::Misbehaviour,
            ),
            (
                FaultKind::CommitmentDegree,
                "commitment_degree",
                Penalty::Misbehaviour,
            ),
            (
                FaultKind::ResharePublicShareMismatch,
                "reshare_public_share_mismatch",
                Penalty::Misbehaviour,
            ),
            (
                FaultKind::Equivocation,
                "equivocation",
                Penalty::Misbehaviour,
            ),
            (
                FaultKind::PublicationCommitmentMismatch,
                "publication_commitment_mismatch",
                Penalty::Misbehaviour,
            ),
            (
                FaultKind::PublicationBadPlayers,
                "publication_bad_players",
                Penalty::Misbehaviour,
            ),
            (
                FaultKind::BadAckSignature,
                "bad_ack_signature",
                Penalty::Misbehaviour,
            ),
            (
                FaultKind::BadReveal { player: 2 },
                "bad_reveal",
                Penalty::Misbehaviour,
            ),
            (
                FaultKind::TooManyReveals { reveals: 4, max: 2 },
                "too_many_reveals",
                Penalty::Misbehaviour,
            ),
            (
                FaultKind::PointOutsideSubgroup,
                "point_outside_subgroup",
                Penalty::Misbehaviour,
            ),
            (
                FaultKind::MissedContribution,
                "missed_contribution",
                Penalty::Absence,
            ),
            (
                FaultKind::MissedPublication,
                "missed_publication",
                Penalty::Absence,
            ),
            (
                FaultKind::IncompletePublication { missing: 3 },
                "incomplete_publication",
                Penalty::None,
            ),
            (
                FaultKind::UnresponsivePlayer { reports: 3 },
                "unresponsive_player",
                Penalty::Absence,
            ),
            (
                FaultKind::WithheldAck {
                    reports: 1,
                    revealed: 0,
                },
                "withheld_ack",
                Penalty::None,
            ),
            (FaultKind::BadReport, "bad_report", Penalty::Misbehaviour),
            (FaultKind::MissedReport, "missed_report", Penalty::Absence),
            (
                FaultKind::BadJustification { player: 1 },
                "bad_justification",
                Penalty::Misbehaviour,
            ),
            (
                FaultKind::MissingJustification { complaints: 2 },
                "missing_justification",
                Penalty::Absence,
            ),
            (
                FaultKind::BadDeal { player: 2 },
                "bad_deal",
                Penalty::Misbehaviour,
            ),
            (FaultKind::NotInClique, "not_in_clique", Penalty::None),
            (
                FaultKind::BadFeldman { player: 1 },
                "bad_feldman",
                Penalty::Misbehaviour,
            ),
            (FaultKind::MissedFeldman, "missed_feldman", Penalty::Absence),
            (
                FaultKind::FalseComplaint { dealer: 1 },
                "false_complaint",
                Penalty::Misbehaviour,
            ),
            (
                FaultKind::BadReconstructionShare { dealer: 1 },
                "bad_reconstruction_share",
                Penalty::Misbehaviour,
            ),
            (
                FaultKind::MissedReconstruction { dealer: 1 },
                "missed_reconstruction",
                Penalty::Absence,
            ),
        ];
        let mut codes = BTreeSet::new();
        for (fault, code, penalty) in &faults {
            assert_eq!(fault.code(), *code);
            assert_eq!(fault.penalty(), *penalty, "{code}");
            assert_eq!(fault.is_misbehaviour(), *penalty == Penalty::Misbehaviour);
            assert!(codes.insert(*code), "{code} twice");
            // Codes are independent of the fields and of Debug.
            assert!(!code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
        assert_eq!(
            FaultKind::BadReveal { player: 7 }.code(),
            FaultKind::BadReveal { player: 0 }.code()
        );
        let phases: Vec<&str> = BoardPhase::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(phases, ["contribute", "share", "publish", "done"]);
        assert_eq!(BoardPhase::Publish.to_string(), "publish");
        assert_eq!(
            (Role::Dealer.as_str(), Role::Player.as_str()),
            ("dealer", "player")
        );
        assert_eq!(
            [Penalty::Misbehaviour, Penalty::Absence, Penalty::None].map(Penalty::as_str),
            ["misbehaviour", "absence", "none"]
        );
        let reasons = [
            FailureReason::TooFewDealers {
                qualified: 1,
                quorum: 2,
            },
            FailureReason::TooFewPlayers { active: 0, t: 2 },
            FailureReason::IdentityKey,
            FailureReason::KeyChanged,
            FailureReason::Unattributable,
            FailureReason::NoConsistentQuorum {
                standing: 4,
                quorum: 5,
            },
            FailureReason::TooFewReports {
                reports: 3,
                needed: 5,
            },
            FailureReason::Unreconstructed {
                dealer: 1,
                pairs: 2,
                t: 3,
            },
        ]
        .map(|r| r.code());
        assert_eq!(
            reasons,
            [
                "too_few_dealers",
                "too_few_players",
                "identity_group_key",
                "reshare_changed_key",
                "unattributable",
                "no_consistent_quorum",
                "too_few_reports",
                "unreconstructed"
            ]
        );
    }
}
