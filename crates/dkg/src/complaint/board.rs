//! The board rules of the complaint-and-reconstruct variant: which posts count, who qualifies,
//! which qualified dealers are reconstructed, and the public result.
//!
//! This is the one implementation of those rules. Participants replay the board (posts and phase
//! deadlines in chain order) through a [`ComplaintBoard`], and the coordinator contract can run the
//! same code, so everyone derives the same qualified set, group key and exclusions from the chain
//! alone. Nothing here uses direct messages or secrets: every decision rests on signed posts.
//!
//! See the [module docs](super) for the protocol and its rationale. Phases and what each
//! deadline decides:
//!
//! | phase | posts accepted | at the deadline |
//! |---|---|---|
//! | [`Deal`](ComplaintBoardPhase::Deal) | [`Report`] (honest players post one here once every deal verified) | - |
//! | [`Report`](ComplaintBoardPhase::Report) | [`Report`] (complaints judged as they arrive) | missed deals fixed |
//! | [`Justify`](ComplaintBoardPhase::Justify) | [`Justification`] | missed deals not sent again disqualify; qualification unless a deal was sent again |
//! | [`Dispute`](ComplaintBoardPhase::Dispute) | [`Dispute`] (judged as they arrive) | qualification |
//! | [`Feldman`](ComplaintBoardPhase::Feldman) | [`FeldmanPost`] | - |
//! | [`Complain`](ComplaintBoardPhase::Complain) | [`Disclosure`] (complaints, from qualified players; empty for none) | failed qualified dealers |
//! | [`Reconstruct`](ComplaintBoardPhase::Reconstruct) | [`Disclosure`] (pairs; signatures checked at the deadline) | the posts' signatures in one batch; interpolation; outcome |
//!
//! The justify phase is skipped when no deal was missed, the dispute phase when no deal was sent
//! again, and the reconstruct phase when no
//! qualified dealer failed (always when resharing, where failed dealers are dropped instead).
//!
//! # Evidence in this variant
//! [`Evidence`] is shared with the ack-or-reveal board. Here `SignedPosts` items are encoded
//! [`SignedComplaintPost`]s or encoded [`CommitmentStatement`]s (a dealer's signature on a
//! commitment hash, lifted from a report):
//! - equivocation: two items, each a statement or a signed [`Justification`], with different
//!   hashes ([`verify_equivocation`]);
//! - a bad justification, report or Feldman post: the post itself (for a player left without its
//!   deal, that player's report first);
//! - a deal proven bad by a complaint in a report (`BadDeal`), or a false complaint in a report
//!   (`FalseComplaint`): the report alone, which carries the dealer-signed ciphertext, the
//!   commitment and the reveal;
//! - a pair sent again in a justification and proven bad (`BadDeal`), or falsely accused
//!   (`FalseComplaint`), in the dispute phase: the dispute post, then the justification;
//! - faults judged against a Pedersen commitment (`BadFeldman`, `FalseComplaint`,
//!   `BadReconstructionShare`): the posts concerned, then the post that carried the commitment
//!   and the dealer-signed hash it matches.
//!
//! `Reports` holds encoded signed [`Report`]s (the missed deals of `MissingJustification`, or the
//! missing mutual validity of `NotInClique`). `Absence` uses the ack-or-reveal phase names: [`BoardPhase::Share`] for a missing
//! report (the dealing and reporting round), [`BoardPhase::Publish`] for a missing Feldman post or
//! reconstruction pair.
//!
//! # Reporters
//! Each fault names its reporter ([`Exclusion::reporter`]) where it is decided, from the post that
//! decided it: the order of the evidence items cannot tell, as the evidence of a fault judged
//! against a Pedersen commitment ends with the dealer's own commitment proof. A reporter is a
//! player whose own signed post proved the fault and that nobody else could have posted in its
//! place: the player whose complaint or dispute proved a bad deal to it, whose complaint proved
//! wrong Feldman values against its pair (`BadFeldman`), or whose report asked for the deal a
//! justification left out (`BadJustification`). Equivocation has none: its evidence is the
//! dealer's two statements, which any player that saw them can copy into its report and race
//! to the board. Absences (`MissingJustification` included: a missed deal is claimed, not
//! proven) and faults the culprit's own post proves (a bad report, a false complaint or dispute,
//! a bad reconstruction pair, a malformed justification or Feldman post) have none either, and
//! a reporter is never the culprit itself.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ff::Field;
use group::prime::PrimeCurveAffine;
use keyquorum_crypto::Curve;
use keyquorum_crypto::commit::{EvalCommitment, mul_generator};
use keyquorum_crypto::hash::tagged_hash;
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::verifiable_encrypt::{self, VerifiableCiphertext};
use thiserror::Error;

use super::checks::{self, BadPostSignatures, PostToCheck};
use super::clique::maximum_clique;
use super::messages::{
    CommitmentStatement, ComplaintPost, DealComplaint, Disclosure, Dispute, FeldmanPost,
    Justification, PAIR_CIPHERTEXT_LEN, PAIR_LEN, Report, SignedComplaintPost, feldman_hash,
    pair_aad, pedersen_hash,
};
use super::verdict::{Verdict, judge};
use crate::board::{
    BoardPhase, Evidence, Exclusion, FailureReason, FaultKind, Outcome, PublicOutput, Role,
    is_identity, other_than, weighted_column_sums,
};
use crate::ceremony::Ceremony;
use crate::identity::{IdentityPublicKey, IdentitySignature, Purpose, SIGNATURE_LEN};

/// Phases of the complaint variant's board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ComplaintBoardPhase {
    /// Dealers send deals off the board; a player that verified every deal reports already.
    Deal,
    /// Players post reports (the rest of them).
    Report,
    /// Dealers send missed deals again, on the board.
    Justify,
    /// Players prove bad pairs sent again.
    Dispute,
    /// Qualified dealers post Feldman commitments.
    Feldman,
    /// Players post pairs that contradict Feldman values.
    Complain,
    /// Players post their pairs for failed qualified dealers.
    Reconstruct,
    /// The outcome is final.
    Done,
}

/// Why a post was refused. Refusals change nothing, except [`ComplaintBoardError::Fault`], which
/// records the author's fault with the post as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ComplaintBoardError {
    /// The post belongs to another session.
    #[error("post for another session")]
    WrongSession,
    /// The post is not allowed in the current phase.
    #[error("post not allowed in phase {0:?}")]
    WrongPhase(ComplaintBoardPhase),
    /// The author is not a participant in the post's role.
    #[error("{0:?} {1} does not exist")]
    UnknownAuthor(Role, u32),
    /// The author's signature does not verify (the post cannot be attributed).
    #[error("bad signature")]
    BadSignature,
    /// A second post of the same kind by the same author (the first one counts).
    #[error("duplicate post")]
    Duplicate,
    /// The author is already excluded.
    #[error("{0:?} {1} is excluded")]
    Excluded(Role, u32),
    /// A Feldman post by a dealer outside the qualified set, or a justification nobody asked for.
    #[error("post not expected from dealer {0}")]
    Unexpected(u32),
    /// Authentic but invalid: recorded as a fault of the author.
    #[error("invalid post from {role:?} {index}: {fault:?}")]
    Fault {
        /// Role of the author.
        role: Role,
        /// Author.
        index: u32,
        /// What was wrong.
        fault: FaultKind,
    },
}

/// Who qualified: dealers whose contributions form the key and players that receive shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qualification {
    /// Qualified dealers, ascending (`Q`).
    pub dealers: Vec<u32>,
    /// Qualified players, ascending (`P`; equal to `Q` for a fresh key).
    pub players: Vec<u32>,
}

type Signed = Vec<u8>;

/// A recorded fault: what, its evidence, and the player whose signed post proved it when that
/// is not the culprit's own post ([`Exclusion::reporter`]). The reporter is named where the
/// fault is decided, from the post that decided it, not read back from the evidence, whose
/// last item is often the dealer's commitment proof.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Proven {
    fault: FaultKind,
    evidence: Evidence,
    reporter: Option<u32>,
}

impl Proven {
    /// A fault proven by the culprit's own posts, or an absence: nobody reported it.
    fn own(fault: FaultKind, evidence: Evidence) -> Self {
        Proven {
            fault,
            evidence,
            reporter: None,
        }
    }
}

/// What the board keeps of an accepted report besides its signed bytes: the dealers whose pairs
/// it validated and those it complained about, which is all the later rules read (each
/// complaint was judged on arrival, or skipped for a dealer already disqualified). Not the decoded report: each complaint carries a
/// commitment of `n + 1` points, and with dealers that deal bad pairs to every player the
/// decoded reports would hold `f n^2` points a second time beside their bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReportEdges {
    /// Dealers whose pairs verified, ascending.
    valid: Vec<u32>,
    /// Dealers complained about, ascending.
    complained: Vec<u32>,
}

impl ReportEdges {
    fn of<C: Curve>(r: &Report<C>) -> Self {
        ReportEdges {
            valid: r.valid.clone(),
            complained: r.complaints.iter().map(|c| c.dealer).collect(),
        }
    }

    /// As [`Report::validates`].
    fn validates(&self, dealer: u32) -> bool {
        self.valid.binary_search(&dealer).is_ok()
    }

    /// As [`Report::misses`]: neither validated nor complained about.
    fn misses(&self, dealer: u32) -> bool {
        !self.validates(dealer) && self.complained.binary_search(&dealer).is_err()
    }
}

/// A dealer-signed commitment hash on the board, with the evidence item that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SignedHash {
    hash: [u8; 32],
    item: Signed,
}

/// A commitment on the board: its points, its hash ([`pedersen_hash`] or [`feldman_hash`]) and
/// the post that carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OnBoard<C: Curve> {
    commitment: EvalCommitment<C>,
    hash: [u8; 32],
    post: Signed,
}

impl<C: Curve> OnBoard<C> {
    /// The commitment with its hash, as the cached checks take it.
    fn keyed(&self, dealer: u32) -> (u32, &EvalCommitment<C>, &[u8; 32]) {
        (dealer, &self.commitment, &self.hash)
    }
}

/// The board's state for one ceremony.
#[derive(Debug, Clone)]
pub struct ComplaintBoard<C: Curve> {
    ceremony: Arc<Ceremony<C>>,
    phase: ComplaintBoardPhase,
    /// Statements whose signature verified: (dealer, hash, signature).
    verified: BTreeSet<(u32, [u8; 32], [u8; SIGNATURE_LEN])>,
    /// The first dealer-signed hash per dealer.
    signed_hash: BTreeMap<u32, SignedHash>,
    reports: BTreeMap<u32, (ReportEdges, Signed)>,
    /// Per dealer, the players that missed its deal (reported neither valid nor a complaint),
    /// fixed at the report deadline.
    complaints: BTreeMap<u32, Vec<u32>>,
    /// Full Pedersen commitments on the board, with the post that carried them.
    commitments: BTreeMap<u32, OnBoard<C>>,
    justifications: BTreeMap<u32, (Justification<C>, Signed)>,
    /// Players whose dispute post was accepted.
    disputes: BTreeMap<u32, Signed>,
    dealer_faults: BTreeMap<u32, Proven>,
    player_faults: BTreeMap<u32, Proven>,
    qualification: Option<Qualification>,
    /// Why the ceremony failed, once it did.
    failure: Option<FailureReason>,
    feldman: BTreeMap<u32, OnBoard<C>>,
    complaint_posts: Vec<(Disclosure<C>, Signed)>,
    reconstruction_posts: Vec<(Disclosure<C>, Signed)>,
    /// Players whose reconstruction post was dropped at the reconstruct deadline because its
    /// signature is not theirs (it counts as never posted), ascending.
    dropped_reconstructions: Vec<u32>,
    /// Qualified dealers that failed the Feldman phase: reconstructed (fresh) or dropped (reshare).
    failed: BTreeMap<u32, Proven>,
    /// Pairs known valid from the board, per dealer: player -> f(x_j).
    public_pairs: BTreeMap<u32, BTreeMap<u32, C::Scalar>>,
    /// Reconstructed dealers: `f(0), f(x_1), ..., f(x_n)`.
    reconstructed: BTreeMap<u32, Vec<C::Scalar>>,
    /// The column sums of the Feldman commitments that passed the subgroup check, with the
    /// dealers summed (reused by the outcome).
    feldman_sums: Option<(Vec<u32>, Vec<C::Affine>)>,
    outcome: Option<Outcome<C>>,
}

/// The identity key of the participant at `index` in `role` (`None` if there is none).
pub fn author_key<C: Curve>(
    ceremony: &Ceremony<C>,
    role: Role,
    index: u32,
) -> Option<&IdentityPublicKey> {
    let list = match role {
        Role::Dealer => ceremony.dealers(),
        Role::Player => ceremony.players(),
    };
    list.get(index as usize).map(|p| &p.identity)
}

/// Whether a post is authentic for this ceremony: its session, an author that exists in its
/// role, and that author's signature on it. Returns the encoded post. This is the check
/// [`ComplaintBoard::apply`] starts with, for callers that must refuse a post before it reaches
/// the board (the contract's mempool check); its answer is remembered by the ceremony, so the
/// board does not verify the signature again.
///
/// A reconstruction post's signature is not checked here: the board checks all of them at the
/// reconstruct deadline in one batch ([`post_signatures`](super::post_signatures)), where a post
/// whose signature fails counts as never posted. As a player's first reconstruction post is the
/// one that counts, whoever feeds the board must take a post only from its author, as the
/// contract does (a post's sender must be its author, and the sender signs its transaction).
pub fn check_authentic<C: Curve>(
    ceremony: &Ceremony<C>,
    signed: &SignedComplaintPost<C>,
) -> Result<Vec<u8>, ComplaintBoardError> {
    let post = &signed.post;
    if post.session() != ceremony.id() {
        return Err(ComplaintBoardError::WrongSession);
    }
    let (role, index) = post.author();
    let Some(key) = author_key(ceremony, role, index) else {
        return Err(ComplaintBoardError::UnknownAuthor(role, index));
    };
    let encoded = post.encode();
    let deferred = matches!(post, ComplaintPost::Reconstruction(_));
    if !deferred
        && !checks::post_signature(ceremony, (role, index), key, &encoded, &signed.signature)
    {
        return Err(ComplaintBoardError::BadSignature);
    }
    Ok(encoded)
}

/// Two boards are equal when they are for the same session and hold the same state (what
/// [`ComplaintBoard::apply`] promises to leave unchanged on a refusal).
impl<C: Curve> PartialEq for ComplaintBoard<C> {
    fn eq(&self, other: &Self) -> bool {
        // Destructured so that a new field cannot be left out of the comparison.
        let ComplaintBoard {
            ceremony,
            phase,
            verified,
            signed_hash,
            reports,
            complaints,
            commitments,
            justifications,
            disputes,
            dealer_faults,
            player_faults,
            qualification,
            failure,
            feldman,
            complaint_posts,
            reconstruction_posts,
            dropped_reconstructions,
            failed,
            public_pairs,
            reconstructed,
            feldman_sums,
            outcome,
        } = self;
        ceremony.id() == other.ceremony.id()
            && *phase == other.phase
            && *verified == other.verified
            && *signed_hash == other.signed_hash
            && *reports == other.reports
            && *complaints == other.complaints
            && *commitments == other.commitments
            && *justifications == other.justifications
            && *disputes == other.disputes
            && *dealer_faults == other.dealer_faults
            && *player_faults == other.player_faults
            && *qualification == other.qualification
            && *failure == other.failure
            && *feldman == other.feldman
            && *complaint_posts == other.complaint_posts
            && *reconstruction_posts == other.reconstruction_posts
            && *dropped_reconstructions == other.dropped_reconstructions
            && *failed == other.failed
            && *public_pairs == other.public_pairs
            && *reconstructed == other.reconstructed
            && *feldman_sums == other.feldman_sums
            && *outcome == other.outcome
    }
}

impl<C: Curve> ComplaintBoard<C> {
    /// An empty board in the deal phase.
    pub fn new(ceremony: Arc<Ceremony<C>>) -> Self {
        ComplaintBoard {
            ceremony,
            phase: ComplaintBoardPhase::Deal,
            verified: BTreeSet::new(),
            signed_hash: BTreeMap::new(),
            reports: BTreeMap::new(),
            complaints: BTreeMap::new(),
            commitments: BTreeMap::new(),
            justifications: BTreeMap::new(),
            disputes: BTreeMap::new(),
            dealer_faults: BTreeMap::new(),
            player_faults: BTreeMap::new(),
            qualification: None,
            failure: None,
            feldman: BTreeMap::new(),
            complaint_posts: Vec::new(),
            reconstruction_posts: Vec::new(),
            dropped_reconstructions: Vec::new(),
            failed: BTreeMap::new(),
            public_pairs: BTreeMap::new(),
            reconstructed: BTreeMap::new(),
            feldman_sums: None,
            outcome: None,
        }
    }

    /// The ceremony.
    pub fn ceremony(&self) -> &Arc<Ceremony<C>> {
        &self.ceremony
    }

    /// Current phase.
    pub fn phase(&self) -> ComplaintBoardPhase {
        self.phase
    }

    /// The outcome, once the phase is [`ComplaintBoardPhase::Done`].
    pub fn outcome(&self) -> Option<&Outcome<C>> {
        self.outcome.as_ref()
    }

    /// The qualified dealers and players, once decided.
    pub fn qualification(&self) -> Option<&Qualification> {
        self.qualification.as_ref()
    }

    /// Why the ceremony failed (`None` before it ended, or after a success).
    pub fn failure_reason(&self) -> Option<FailureReason> {
        self.failure
    }

    /// Whether a dealer is disqualified (before qualification).
    pub fn is_disqualified(&self, dealer: u32) -> bool {
        self.dealer_faults.contains_key(&dealer)
    }

    /// Whether every post the current phase expects is on the board, so that no later post in
    /// this phase can change the outcome and the phase may close before its deadline (the
    /// deadline stays the bound when someone is silent). A phase expects posts from a set the
    /// board already knows, and each member of it posts at most once:
    /// - deal and report: every player has an accepted report or is excluded (a refused report
    ///   excludes its author). A player reports in the deal phase once it holds a verified pair
    ///   from every dealer, so on the happy path the deal phase ends with its last report, and
    ///   a coordinator closes the report phase in the same block;
    /// - justify: every dealer some report missed has an accepted justification or is
    ///   disqualified;
    /// - Feldman: every qualified dealer has an accepted Feldman post or has failed;
    /// - complain: every qualified player has posted its complaint, empty when its pairs agree
    ///   with every Feldman post (the board refuses complaints from other players; they are
    ///   judged at the deadline);
    /// - reconstruct: every qualified player has posted (the board refuses reconstruction posts
    ///   from other players; the signatures of these posts are checked at the deadline, where a
    ///   bad one counts as never posted, and its author could not post again in any case).
    ///
    /// The dispute phase never closes early: disputes come only from players whose check of a
    /// pair sent again failed, which the board cannot know, so that a phase nobody posts in is
    /// exactly one that runs to its deadline. A player missing a deal reports at the deal
    /// deadline, which then bounds the deal phase as before.
    pub fn all_posts_in(&self) -> bool {
        let qualified = || self.qualification.as_ref();
        match self.phase {
            ComplaintBoardPhase::Deal | ComplaintBoardPhase::Report => (0..self.ceremony.n()
                as u32)
                .all(|p| self.reports.contains_key(&p) || self.player_faults.contains_key(&p)),
            ComplaintBoardPhase::Justify => self
                .complaints
                .keys()
                .all(|d| self.justifications.contains_key(d) || self.dealer_faults.contains_key(d)),
            ComplaintBoardPhase::Feldman => qualified().is_some_and(|q| {
                q.dealers
                    .iter()
                    .all(|d| self.feldman.contains_key(d) || self.failed.contains_key(d))
            }),
            ComplaintBoardPhase::Complain => qualified().is_some_and(|q| {
                q.players
                    .iter()
                    .all(|p| self.complaint_posts.iter().any(|(d, _)| d.player == *p))
            }),
            ComplaintBoardPhase::Reconstruct => qualified().is_some_and(|q| {
                q.players.iter().all(|p| {
                    self.reconstruction_posts
                        .iter()
                        .any(|(d, _)| d.player == *p)
                })
            }),
            ComplaintBoardPhase::Dispute | ComplaintBoardPhase::Done => false,
        }
    }

    /// Players that missed `dealer`'s deal (fixed at the report deadline), ascending: the dealer
    /// must send their pairs again in its justification.
    pub fn missed_deals(&self, dealer: u32) -> &[u32] {
        self.complaints
            .get(&dealer)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Players whose reconstruction post the reconstruct deadline dropped because its signature
    /// is not theirs, ascending: taken when it arrived, it counts as never posted. A chain that
    /// reported the post as taken reports this too, so that nobody counts it.
    pub fn dropped_reconstructions(&self) -> &[u32] {
        &self.dropped_reconstructions
    }

    /// Whether `player`'s report is on the board.
    pub fn has_report(&self, player: u32) -> bool {
        self.reports.contains_key(&player)
    }

    /// The hash the dealer signed first (the commitment that counts).
    pub fn signed_hash(&self, dealer: u32) -> Option<&[u8; 32]> {
        self.signed_hash.get(&dealer).map(|h| &h.hash)
    }

    /// A dealer's full Pedersen commitment, if it is on the board.
    pub fn commitment(&self, dealer: u32) -> Option<&EvalCommitment<C>> {
        self.commitments.get(&dealer).map(|e| &e.commitment)
    }

    /// The ciphertext of `player`'s pair that `dealer` sent again in its accepted justification.
    pub fn resent_deal(&self, dealer: u32, player: u32) -> Option<&[u8]> {
        let (j, _) = self.justifications.get(&dealer)?;
        let i = j.deals.binary_search_by_key(&player, |p| p.0).ok()?;
        Some(&j.deals[i].1)
    }

    /// A qualified dealer's accepted Feldman commitment.
    pub fn feldman(&self, dealer: u32) -> Option<&EvalCommitment<C>> {
        self.feldman.get(&dealer).map(|e| &e.commitment)
    }

    /// Qualified dealers that failed the Feldman phase so far, with their faults.
    pub fn failed(&self) -> impl Iterator<Item = (u32, &FaultKind)> {
        self.failed.iter().map(|(d, p)| (*d, &p.fault))
    }

    /// A reconstructed dealer's values `f(0), f(x_1), ..., f(x_n)`.
    pub fn reconstructed(&self, dealer: u32) -> Option<&[C::Scalar]> {
        self.reconstructed.get(&dealer).map(Vec::as_slice)
    }

    /// The players that must carry missing commitments in their reconstruction posts: the first
    /// `f + 1` qualified players, so that at least one of them is honest.
    pub fn is_designated_discloser(&self, player: u32) -> bool {
        let f = self.ceremony.params().fault_bound();
        self.qualification
            .as_ref()
            .is_some_and(|q| q.players.iter().take(f + 1).any(|p| *p == player))
    }

    /// Applies a signed post. On `Err` the board is unchanged, except that an authentic invalid
    /// post ([`ComplaintBoardError::Fault`]) records its author's fault.
    /// A reconstruction post is stored before its signature is checked, at the deadline (see
    /// [`check_authentic`]).
    pub fn apply(&mut self, signed: &SignedComplaintPost<C>) -> Result<(), ComplaintBoardError> {
        let post = &signed.post;
        let encoded = check_authentic(&self.ceremony, signed)?;
        let mut bytes = Vec::with_capacity(SIGNATURE_LEN + encoded.len());
        bytes.extend_from_slice(&signed.signature.0);
        bytes.extend_from_slice(&encoded);
        debug_assert_eq!(bytes, signed.encode());
        match post {
            ComplaintPost::Report(r) => self.apply_report(r, bytes),
            ComplaintPost::Justification(j) => self.apply_justification(j, bytes),
            ComplaintPost::Dispute(d) => self.apply_dispute(d, bytes),
            ComplaintPost::Feldman(f) => self.apply_feldman(f, bytes),
            ComplaintPost::Complaint(d) => {
                self.expect_phase(ComplaintBoardPhase::Complain)?;
                // Only qualified players hold pairs of the key (and honest ones check Feldman
                // values only then); every one of them posts, empty when it has no complaint,
                // and the phase expects exactly these posts (`all_posts_in`).
                if !self.is_qualified_player(d.player) {
                    return Err(ComplaintBoardError::Excluded(Role::Player, d.player));
                }
                self.store_disclosure(d, bytes, true)
            }
            ComplaintPost::Reconstruction(d) => {
                self.expect_phase(ComplaintBoardPhase::Reconstruct)?;
                // Only qualified players disclose for reconstruction (seed 003 step 7); a player
                // outside the qualified set is excluded from this key and holds no pair that
                // counts. The phase expects exactly these posts (`all_posts_in`).
                if !self.is_qualified_player(d.player) {
                    return Err(ComplaintBoardError::Excluded(Role::Player, d.player));
                }
                self.store_disclosure(d, bytes, false)
            }
        }
    }

    fn expect_phase(&self, phase: ComplaintBoardPhase) -> Result<(), ComplaintBoardError> {
        if self.phase == phase {
            Ok(())
        } else {
            Err(ComplaintBoardError::WrongPhase(self.phase))
        }
    }

    /// Records a fault its author's own post proves (see [`Self::reported`]).
    fn fault(
        &mut self,
        role: Role,
        index: u32,
        fault: FaultKind,
        evidence: Evidence,
    ) -> ComplaintBoardError {
        self.reported(role, index, fault, evidence, None)
    }

    /// Records a fault proven by `reporter`'s signed post (`None`: by nobody else's).
    fn reported(
        &mut self,
        role: Role,
        index: u32,
        fault: FaultKind,
        evidence: Evidence,
        reporter: Option<u32>,
    ) -> ComplaintBoardError {
        let map = match role {
            Role::Dealer => &mut self.dealer_faults,
            Role::Player => &mut self.player_faults,
        };
        map.entry(index).or_insert(Proven {
            fault: fault.clone(),
            evidence,
            reporter,
        });
        ComplaintBoardError::Fault { role, index, fault }
    }

    fn statement_is_valid(&mut self, s: &CommitmentStatement) -> bool {
        let cache_key = (s.dealer, s.hash, s.signature.0);
        if self.verified.contains(&cache_key) {
            return true;
        }
        let ok = checks::statement(&self.ceremony, s);
        if ok {
            self.verified.insert(cache_key);
        }
        ok
    }

    /// Records a dealer-signed hash carried by a report or by the dealer's own justification; a
    /// second, different one is equivocation. It has no reporter: the evidence is the dealer's
    /// two statements alone, which any player that saw them (a report on the board carries
    /// every statement its author heard) can copy into its own report and race to the board, so
    /// naming the carrier would pay whoever relayed or posted first, not whoever was wronged.
    fn note_signed_hash(&mut self, dealer: u32, hash: [u8; 32], item: Signed) -> bool {
        match self.signed_hash.get(&dealer) {
            None => {
                self.signed_hash.insert(dealer, SignedHash { hash, item });
                true
            }
            Some(first) if first.hash == hash => true,
            Some(first) => {
                let evidence = Evidence::SignedPosts(vec![first.item.clone(), item]);
                self.fault(Role::Dealer, dealer, FaultKind::Equivocation, evidence);
                false
            }
        }
    }

    fn apply_report(&mut self, r: &Report<C>, bytes: Signed) -> Result<(), ComplaintBoardError> {
        // A player that verified every dealer's deal reports before the deal deadline; the
        // report is judged the same either way (it depends on no other post of the phase).
        if self.phase != ComplaintBoardPhase::Deal {
            self.expect_phase(ComplaintBoardPhase::Report)?;
        }
        if self.reports.contains_key(&r.player) {
            return Err(ComplaintBoardError::Duplicate);
        }
        if self.player_faults.contains_key(&r.player) {
            return Err(ComplaintBoardError::Excluded(Role::Player, r.player));
        }
        let dealers = self.ceremony.dealer_count();
        let statements: Vec<CommitmentStatement> = r.statements().collect();
        let valid_entries = statements
            .iter()
            .all(|s| (s.dealer as usize) < dealers && self.statement_is_valid(s));
        let heard: BTreeMap<u32, [u8; 32]> = r.heard.iter().map(|e| (e.dealer, e.hash)).collect();
        // A conflicting statement must be a heard dealer's signature on another hash.
        let conflicting = r.conflicting_statement();
        let conflicting_is_valid = conflicting.as_ref().is_none_or(|s| {
            heard.get(&s.dealer).is_some_and(|h| *h != s.hash) && self.statement_is_valid(s)
        });
        let complaints_well_formed = r
            .complaints
            .iter()
            .all(|c| self.complaint_is_authentic(r.player, heard.get(&c.dealer), c));
        if !valid_entries
            || !conflicting_is_valid
            || !r.valid.iter().all(|d| heard.contains_key(d))
            || r.complaints.iter().any(|c| r.validates(c.dealer))
            || !complaints_well_formed
        {
            return Err(self.fault(
                Role::Player,
                r.player,
                FaultKind::BadReport,
                Evidence::SignedPosts(vec![bytes]),
            ));
        }
        // Every complaint is judged now, from the report alone; one false complaint refuses the
        // report and excludes its author, and no dealer is convicted by it. A complaint about a
        // dealer already disqualified is authenticated above but not judged: its verdict could
        // change no one's qualification, and judging every one would let `f` dealers that deal
        // bad pairs to everyone cost each node and the contract `f (n - 1)` decryptions and
        // proof checks instead of `f` (the form checks stay, a signature and a hash each; the
        // complain phase skips failed dealers the same way).
        let mut convicted = Vec::new();
        for c in &r.complaints {
            if self.is_disqualified(c.dealer) {
                continue;
            }
            let hash = heard[&c.dealer];
            let verdict = judge(
                &self.ceremony,
                (c.dealer, &c.commitment, &hash),
                r.player,
                &c.ciphertext,
                c.reveal.as_ref(),
            );
            match verdict {
                Verdict::Dealer => convicted.push(c.dealer),
                Verdict::Complainer => {
                    let fault = FaultKind::FalseComplaint { dealer: c.dealer };
                    return Err(self.fault(
                        Role::Player,
                        r.player,
                        fault,
                        Evidence::SignedPosts(vec![bytes]),
                    ));
                }
            }
        }
        // The conflicting statement comes after the heard one, so it is the dealer's second
        // signed hash on the board: equivocation, with both statements as evidence.
        for s in statements.into_iter().chain(conflicting) {
            self.note_signed_hash(s.dealer, s.hash, s.encode());
        }
        for d in convicted {
            let fault = FaultKind::BadDeal { player: r.player };
            let evidence = Evidence::SignedPosts(vec![bytes.clone()]);
            self.reported(Role::Dealer, d, fault, evidence, Some(r.player));
        }
        self.reports.insert(r.player, (ReportEdges::of(r), bytes));
        Ok(())
    }

    /// Whether a complaint is about a dealer the player heard from, carries the commitment of
    /// the hash it heard, and a ciphertext the dealer signed for this player under that hash.
    fn complaint_is_authentic(
        &self,
        player: u32,
        heard_hash: Option<&[u8; 32]>,
        c: &DealComplaint<C>,
    ) -> bool {
        let Some(hash) = heard_hash else {
            return false;
        };
        pedersen_hash::<C>(self.ceremony.id(), c.dealer, &c.commitment) == *hash
            && checks::share_signature(
                &self.ceremony,
                (c.dealer, player, hash),
                &c.ciphertext,
                &c.signature,
            )
    }

    fn apply_justification(
        &mut self,
        j: &Justification<C>,
        bytes: Signed,
    ) -> Result<(), ComplaintBoardError> {
        let d = j.dealer;
        self.expect_phase(ComplaintBoardPhase::Justify)?;
        if self.justifications.contains_key(&d) {
            return Err(ComplaintBoardError::Duplicate);
        }
        if self.dealer_faults.contains_key(&d) {
            return Err(ComplaintBoardError::Excluded(Role::Dealer, d));
        }
        let complainers = self.missed_deals(d).to_vec();
        if complainers.is_empty() {
            return Err(ComplaintBoardError::Unexpected(d));
        }
        let own = || Evidence::SignedPosts(vec![bytes.clone()]);
        let n = self.ceremony.n();
        if j.commitment.points().len() != n + 1 {
            let fault = FaultKind::CommitmentSize {
                expected: n + 1,
                actual: j.commitment.points().len(),
            };
            return Err(self.fault(Role::Dealer, d, fault, own()));
        }
        let hash = pedersen_hash::<C>(&j.session, d, &j.commitment);
        if !checks::degree(&self.ceremony, d, &j.commitment, &hash) {
            return Err(self.fault(Role::Dealer, d, FaultKind::CommitmentDegree, own()));
        }
        if let Some(r) = self.ceremony.reshare()
            && r.public_shares[d as usize] != *j.commitment.constant()
        {
            let fault = FaultKind::ResharePublicShareMismatch;
            return Err(self.fault(Role::Dealer, d, fault, own()));
        }
        if !self.note_signed_hash(d, hash, bytes.clone()) {
            return Err(ComplaintBoardError::Fault {
                role: Role::Dealer,
                index: d,
                fault: FaultKind::Equivocation,
            });
        }
        // Exactly the players that missed the deal: fewer leaves one without a pair, more is
        // noise on the board.
        let named: Vec<u32> = j.deals.iter().map(|p| p.0).collect();
        if let Some(missing) = complainers.iter().find(|p| !named.contains(p)) {
            let mut ev = vec![self.reports[missing].1.clone()];
            ev.push(bytes.clone());
            // The report of the player left without its pair proves the omission.
            let fault = FaultKind::BadJustification { player: *missing };
            let evidence = Evidence::SignedPosts(ev);
            return Err(self.reported(Role::Dealer, d, fault, evidence, Some(*missing)));
        }
        if let Some(extra) = named.iter().find(|p| !complainers.contains(p)) {
            let fault = FaultKind::BadJustification { player: *extra };
            return Err(self.fault(Role::Dealer, d, fault, own()));
        }
        // Only the ciphertexts' form and proofs can be checked here; whether a pair opens the
        // commitment only its player can tell, and it proves a bad one in the complain phase.
        for (p, ct) in &j.deals {
            if !resent_ciphertext_is_valid(&self.ceremony, d, *p, &hash, ct) {
                let fault = FaultKind::BadJustification { player: *p };
                return Err(self.fault(Role::Dealer, d, fault, own()));
            }
        }
        self.commitments.entry(d).or_insert(OnBoard {
            commitment: j.commitment.clone(),
            hash,
            post: bytes.clone(),
        });
        self.justifications.insert(d, (j.clone(), bytes));
        Ok(())
    }

    fn is_qualified_player(&self, player: u32) -> bool {
        self.qualification
            .as_ref()
            .is_some_and(|q| q.players.binary_search(&player).is_ok())
    }

    fn is_qualified_dealer(&self, dealer: u32) -> bool {
        self.qualification
            .as_ref()
            .is_some_and(|q| q.dealers.binary_search(&dealer).is_ok())
    }

    fn apply_feldman(
        &mut self,
        f: &FeldmanPost<C>,
        bytes: Signed,
    ) -> Result<(), ComplaintBoardError> {
        let d = f.dealer;
        self.expect_phase(ComplaintBoardPhase::Feldman)?;
        if !self.is_qualified_dealer(d) {
            return Err(ComplaintBoardError::Unexpected(d));
        }
        if self.feldman.contains_key(&d) {
            return Err(ComplaintBoardError::Duplicate);
        }
        if self.failed.contains_key(&d) {
            return Err(ComplaintBoardError::Excluded(Role::Dealer, d));
        }
        let n = self.ceremony.n();
        let hash = feldman_hash::<C>(&f.session, d, &f.commitment);
        let fault = if f.commitment.points().len() != n + 1 {
            Some(FaultKind::CommitmentSize {
                expected: n + 1,
                actual: f.commitment.points().len(),
            })
        } else if !checks::degree(&self.ceremony, d, &f.commitment, &hash) {
            Some(FaultKind::CommitmentDegree)
        } else if self
            .ceremony
            .reshare()
            .is_some_and(|r| r.public_shares[d as usize] != *f.commitment.constant())
        {
            Some(FaultKind::ResharePublicShareMismatch)
        } else {
            None
        };
        if let Some(fault) = fault {
            // Not a disqualification: the dealer's contribution is reconstructed (or dropped).
            self.failed.insert(
                d,
                Proven::own(fault.clone(), Evidence::SignedPosts(vec![bytes])),
            );
            return Err(ComplaintBoardError::Fault {
                role: Role::Dealer,
                index: d,
                fault,
            });
        }
        self.feldman.insert(
            d,
            OnBoard {
                commitment: f.commitment.clone(),
                hash,
                post: bytes,
            },
        );
        Ok(())
    }

    fn store_disclosure(
        &mut self,
        d: &Disclosure<C>,
        bytes: Signed,
        complaint: bool,
    ) -> Result<(), ComplaintBoardError> {
        let list = if complaint {
            &mut self.complaint_posts
        } else {
            &mut self.reconstruction_posts
        };
        if list.iter().any(|(p, _)| p.player == d.player) {
            return Err(ComplaintBoardError::Duplicate);
        }
        list.push((d.clone(), bytes));
        Ok(())
    }

    /// Stores the commitments a disclosure carries that hash to their dealer's signed hash.
    fn absorb_commitments(&mut self, d: &Disclosure<C>, bytes: &Signed) {
        let n = self.ceremony.n();
        for (dealer, c) in &d.commitments {
            if self.commitments.contains_key(dealer) {
                continue;
            }
            let Some(signed) = self.signed_hash(*dealer) else {
                continue;
            };
            let hash = pedersen_hash::<C>(&d.session, *dealer, c);
            // The degree check cannot fail for a qualified dealer unless every qualified player
            // that saw the commitment is corrupt; checking it keeps interpolation well defined.
            if hash == *signed
                && c.points().len() == n + 1
                && checks::degree(&self.ceremony, *dealer, c, &hash)
            {
                self.commitments.insert(
                    *dealer,
                    OnBoard {
                        commitment: c.clone(),
                        hash,
                        post: bytes.clone(),
                    },
                );
            }
        }
    }

    /// The phase deadline passed: decide what the phase decides and move on.
    pub fn advance(&mut self) {
        match self.phase {
            ComplaintBoardPhase::Deal => self.phase = ComplaintBoardPhase::Report,
            ComplaintBoardPhase::Report => self.close_reports(),
            ComplaintBoardPhase::Justify => self.close_justifications(),
            ComplaintBoardPhase::Dispute => self.qualify(),
            ComplaintBoardPhase::Feldman => self.phase = ComplaintBoardPhase::Complain,
            ComplaintBoardPhase::Complain => self.close_complaints(),
            ComplaintBoardPhase::Reconstruct => self.close_reconstruction(),
            ComplaintBoardPhase::Done => {}
        }
    }

    fn reports_of(&self, players: &[u32]) -> Vec<Signed> {
        players
            .iter()
            .filter_map(|p| self.reports.get(p).map(|r| r.1.clone()))
            .collect()
    }

    fn close_reports(&mut self) {
        // Complaints were judged as they arrived; what is left are deals that never arrived.
        // Sending them again on the board reveals nothing, so there is no bound on how many.
        let mut open = false;
        for d in 0..self.ceremony.dealer_count() as u32 {
            let missed: Vec<u32> = self
                .reports
                .iter()
                .filter(|(_, (r, _))| r.misses(d))
                .map(|(p, _)| *p)
                .collect();
            if missed.is_empty() {
                continue;
            }
            if !self.dealer_faults.contains_key(&d) {
                open = true;
            }
            self.complaints.insert(d, missed);
        }
        if open {
            self.phase = ComplaintBoardPhase::Justify;
        } else {
            self.qualify();
        }
    }

    fn close_justifications(&mut self) {
        let unanswered: Vec<(u32, Vec<u32>)> = self
            .complaints
            .iter()
            .filter(|(d, _)| {
                !self.dealer_faults.contains_key(d) && !self.justifications.contains_key(d)
            })
            .map(|(d, c)| (*d, c.clone()))
            .collect();
        for (d, complainers) in unanswered {
            let fault = FaultKind::MissingJustification {
                complaints: complainers.len(),
            };
            // Every complainer's report asked for the deal. An absence has no reporter: saying a
            // deal was missed costs nothing and proves nothing, so a reward would go to whoever
            // claims misses against every dealer that later falls silent.
            let evidence = Evidence::Reports(self.reports_of(&complainers));
            self.fault(Role::Dealer, d, fault, evidence);
        }
        // A pair sent again can be checked only by its player: give it a phase to prove a bad
        // one before the qualified set is fixed.
        let resent = self
            .justifications
            .iter()
            .any(|(d, (j, _))| !j.deals.is_empty() && !self.dealer_faults.contains_key(d));
        if resent {
            self.phase = ComplaintBoardPhase::Dispute;
        } else {
            self.qualify();
        }
    }

    /// A player's reveals of bad pairs sent again, each judged now as in [`super::verdict`]: a
    /// bad pair disqualifies its dealer, a good one (or a reveal about a pair nobody sent it, or
    /// one whose proof fails) excludes the player and refuses the post.
    fn apply_dispute(&mut self, d: &Dispute, bytes: Signed) -> Result<(), ComplaintBoardError> {
        self.expect_phase(ComplaintBoardPhase::Dispute)?;
        let j = d.player;
        if self.disputes.contains_key(&j) {
            return Err(ComplaintBoardError::Duplicate);
        }
        if self.player_faults.contains_key(&j) {
            return Err(ComplaintBoardError::Excluded(Role::Player, j));
        }
        let mut convicted = Vec::new();
        for (dealer, reveal) in &d.reveals {
            // As in the report phase: a dealer already disqualified is not judged again.
            if self.is_disqualified(*dealer) && self.resent_deal(*dealer, j).is_some() {
                continue;
            }
            let Some((justification, post)) = self.justifications.get(dealer) else {
                let fault = FaultKind::FalseComplaint { dealer: *dealer };
                return Err(self.fault(Role::Player, j, fault, Evidence::SignedPosts(vec![bytes])));
            };
            let evidence = Evidence::SignedPosts(vec![bytes.clone(), post.clone()]);
            let Some(ct) = self.resent_deal(*dealer, j) else {
                let fault = FaultKind::FalseComplaint { dealer: *dealer };
                return Err(self.fault(Role::Player, j, fault, evidence));
            };
            let hash = pedersen_hash::<C>(self.ceremony.id(), *dealer, &justification.commitment);
            let verdict = judge(
                &self.ceremony,
                (*dealer, &justification.commitment, &hash),
                j,
                ct,
                Some(reveal),
            );
            match verdict {
                Verdict::Dealer => convicted.push((*dealer, evidence)),
                Verdict::Complainer => {
                    let fault = FaultKind::FalseComplaint { dealer: *dealer };
                    return Err(self.fault(Role::Player, j, fault, evidence));
                }
            }
        }
        for (dealer, evidence) in convicted {
            let fault = FaultKind::BadDeal { player: j };
            self.reported(Role::Dealer, dealer, fault, evidence, Some(j));
        }
        self.disputes.insert(j, bytes);
        Ok(())
    }

    /// Whether player `j` holds a verified pair from dealer `i`: it reported the pair valid, or
    /// missed the deal and the dealer's accepted justification sent it again (a bad one is
    /// proven in the dispute phase, which disqualifies the dealer).
    fn validated(&self, dealer: u32, player: u32) -> bool {
        !self.dealer_faults.contains_key(&dealer)
            && self.reports.get(&player).is_some_and(|(r, _)| {
                r.validates(dealer) || self.resent_deal(dealer, player).is_some()
            })
    }

    /// Players with an accepted report and no fault.
    fn reporting_players(&self) -> Vec<u32> {
        self.reports
            .keys()
            .copied()
            .filter(|p| !self.player_faults.contains_key(p))
            .collect()
    }

    fn qualify(&mut self) {
        let quorum = self.ceremony.dealer_quorum();
        let reporting = self.reporting_players();
        let shortfall;
        let qualification = match self.ceremony.reshare() {
            None => {
                // Dealers and players are the same people: a maximum clique of mutual validity
                // among those not disqualified in either role.
                let vertices: Vec<u32> = reporting
                    .iter()
                    .copied()
                    .filter(|v| !self.dealer_faults.contains_key(v))
                    .collect();
                let limit = vertices.len().saturating_sub(quorum);
                shortfall = if vertices.len() < quorum {
                    FailureReason::TooFewDealers {
                        qualified: vertices.len(),
                        quorum,
                    }
                } else {
                    FailureReason::NoConsistentQuorum {
                        standing: vertices.len(),
                        quorum,
                    }
                };
                maximum_clique(
                    &vertices,
                    |a, b| self.validated(a, b) && self.validated(b, a),
                    limit,
                )
                .filter(|q| q.len() >= quorum)
                .map(|q| Qualification {
                    dealers: q.clone(),
                    players: q,
                })
            }
            Some(_) => {
                // Bipartite: every reporting player must hold a verified pair from every qualified
                // dealer (else it could not compute its share). After justification every
                // dealer still standing satisfies this, so Q is the dealers still standing.
                let dealers: Vec<u32> = (0..self.ceremony.dealer_count() as u32)
                    .filter(|d| reporting.iter().all(|p| self.validated(*d, *p)))
                    .collect();
                let k = self.ceremony.params().k();
                shortfall = if dealers.len() < quorum {
                    FailureReason::TooFewDealers {
                        qualified: dealers.len(),
                        quorum,
                    }
                } else {
                    FailureReason::TooFewReports {
                        reports: reporting.len(),
                        needed: k,
                    }
                };
                let enough = dealers.len() >= quorum && reporting.len() >= k;
                enough.then_some(Qualification {
                    dealers,
                    players: reporting,
                })
            }
        };
        match qualification {
            Some(q) => {
                self.qualification = Some(q);
                self.phase = ComplaintBoardPhase::Feldman;
            }
            None => self.fail(shortfall, Vec::new()),
        }
    }

    fn fail(&mut self, reason: FailureReason, extra: Vec<Exclusion>) {
        self.failure = Some(reason);
        let mut exclusions = self.exclusions();
        exclusions.extend(extra);
        self.outcome = Some(Outcome::Failure {
            qualified: self
                .qualification
                .as_ref()
                .map(|q| q.dealers.clone())
                .unwrap_or_default(),
            exclusions,
            retrying: false,
        });
        self.phase = ComplaintBoardPhase::Done;
    }

    fn close_complaints(&mut self) {
        let posts = std::mem::take(&mut self.complaint_posts);
        for (d, bytes) in &posts {
            self.absorb_commitments(d, bytes);
        }
        for (d, bytes) in &posts {
            self.evaluate_complaint(d, bytes);
        }
        self.complaint_posts = posts;
        let qualified = self
            .qualification
            .clone()
            .map(|q| q.dealers)
            .unwrap_or_default();
        for d in &qualified {
            if !self.feldman.contains_key(d) && !self.failed.contains_key(d) {
                let evidence = Evidence::Absence {
                    phase: BoardPhase::Publish,
                    attempt: 0,
                };
                self.failed
                    .insert(*d, Proven::own(FaultKind::MissedFeldman, evidence));
            }
        }
        // Subgroup membership of the sums (see `crate::board`); dealers whose points are outside
        // the subgroup fail too. With Lagrange weights (resharing) the sums depend on the set, so
        // repeat until the set is stable.
        loop {
            let ok: Vec<u32> = self.feldman_ok(&qualified);
            let quorum = self.ceremony.dealer_quorum();
            if self.ceremony.reshare().is_some() && ok.len() < quorum {
                let qualified = ok.len();
                return self.fail(
                    FailureReason::TooFewDealers { qualified, quorum },
                    Vec::new(),
                );
            }
            let sums = self.sums(&ok);
            if !C::HAS_COFACTOR || self.sums_in_subgroup(&ok, &sums) {
                self.feldman_sums = Some((ok, sums));
                break;
            }
            let bad: Vec<u32> = ok
                .iter()
                .copied()
                .filter(|d| {
                    self.feldman[d]
                        .commitment
                        .points()
                        .iter()
                        .any(|p| !C::in_subgroup(p))
                })
                .collect();
            if bad.is_empty() {
                // A sum of subgroup points is in the subgroup; unreachable.
                return self.fail(FailureReason::Unattributable, Vec::new());
            }
            for d in bad {
                let evidence = Evidence::SignedPosts(vec![self.feldman[&d].post.clone()]);
                self.failed
                    .insert(d, Proven::own(FaultKind::PointOutsideSubgroup, evidence));
            }
        }
        if self.ceremony.reshare().is_none() && !self.failed.is_empty() {
            self.phase = ComplaintBoardPhase::Reconstruct;
        } else {
            self.finish();
        }
    }

    /// Whether `sums`, the column sums of the Feldman commitments of `dealers` ([`Self::sums`]),
    /// are in the prime-order subgroup; checked once per ceremony for a set of commitments.
    fn sums_in_subgroup(&self, dealers: &[u32], sums: &[C::Affine]) -> bool {
        let mut transcript = Vec::with_capacity(dealers.len() * 36);
        for d in dealers {
            transcript.extend_from_slice(&d.to_be_bytes());
            transcript.extend_from_slice(&self.feldman[d].hash);
        }
        let key = tagged_hash(
            "keyquorum/check/complaint-sums-subgroup",
            &[self.ceremony.id(), &transcript],
        );
        self.ceremony
            .check_once(key, || sums.iter().all(C::in_subgroup))
    }

    /// Qualified dealers with an accepted Feldman post that did not fail.
    fn feldman_ok(&self, qualified: &[u32]) -> Vec<u32> {
        qualified
            .iter()
            .copied()
            .filter(|d| self.feldman.contains_key(d) && !self.failed.contains_key(d))
            .collect()
    }

    fn evaluate_complaint(&mut self, d: &Disclosure<C>, bytes: &Signed) {
        let j = d.player;
        if (j as usize) >= self.ceremony.n() {
            return;
        }
        for (dealer, s, b) in &d.shares {
            if !self.feldman.contains_key(dealer) || self.failed.contains_key(dealer) {
                continue;
            }
            let feldman = self.feldman[dealer].clone();
            let Some(pedersen) = self.commitments.get(dealer).cloned() else {
                // The complainer had to carry the commitment; without it nothing is proven.
                let fault = FaultKind::FalseComplaint { dealer: *dealer };
                self.fault(
                    Role::Player,
                    j,
                    fault,
                    Evidence::SignedPosts(vec![bytes.clone()]),
                );
                return;
            };
            if !checks::pedersen_share(&self.ceremony, pedersen.keyed(*dealer), j, s, b)
                || checks::feldman_share(&self.ceremony, feldman.keyed(*dealer), j, s)
            {
                let fault = FaultKind::FalseComplaint { dealer: *dealer };
                let ev = self.with_commitment_proof(*dealer, vec![bytes.clone(), feldman.post]);
                self.fault(Role::Player, j, fault, ev);
                return;
            }
            // The pair opens the dealer's Pedersen commitment but contradicts its Feldman value.
            self.public_pairs
                .entry(*dealer)
                .or_default()
                .entry(j)
                .or_insert(*s);
            // Proven by player j's complaint; the dealer's commitment proof completes it.
            let ev = self.with_commitment_proof(*dealer, vec![feldman.post, bytes.clone()]);
            let proven = Proven {
                fault: FaultKind::BadFeldman { player: j },
                evidence: ev,
                reporter: Some(j),
            };
            self.failed.insert(*dealer, proven);
        }
    }

    /// `items` followed by what authenticates the dealer's Pedersen commitment on the board: the
    /// post that carried it and the dealer-signed hash it matches (each once).
    fn with_commitment_proof(&self, dealer: u32, mut items: Vec<Signed>) -> Evidence {
        let carrier = self.commitments.get(&dealer).map(|c| c.post.clone());
        let signed = self.signed_hash.get(&dealer).map(|h| h.item.clone());
        for item in [carrier, signed].into_iter().flatten() {
            if !items.contains(&item) {
                items.push(item);
            }
        }
        Evidence::SignedPosts(items)
    }

    fn close_reconstruction(&mut self) {
        let mut posts = std::mem::take(&mut self.reconstruction_posts);
        self.drop_unsigned(&mut posts);
        for (d, bytes) in &posts {
            self.absorb_commitments(d, bytes);
        }
        for (d, bytes) in &posts {
            let j = d.player;
            for (dealer, s, b) in &d.shares {
                if !self.failed.contains_key(dealer) {
                    continue;
                }
                let Some(pedersen) = self.commitments.get(dealer) else {
                    continue;
                };
                if checks::pedersen_share(&self.ceremony, pedersen.keyed(*dealer), j, s, b) {
                    self.public_pairs
                        .entry(*dealer)
                        .or_default()
                        .entry(j)
                        .or_insert(*s);
                } else {
                    let ev = self.with_commitment_proof(*dealer, vec![bytes.clone()]);
                    let fault = FaultKind::BadReconstructionShare { dealer: *dealer };
                    self.fault(Role::Player, j, fault, ev);
                    break;
                }
            }
        }
        self.reconstruction_posts = posts;
        let t = self.ceremony.t();
        let xs = self.ceremony.player_indices().to_vec();
        let mut missing = Vec::new();
        let failed: Vec<u32> = self.failed.keys().copied().collect();
        for dealer in failed {
            let pairs = self.public_pairs.get(&dealer).cloned().unwrap_or_default();
            if pairs.len() < t {
                missing.push(dealer);
                continue;
            }
            let points: Vec<(C::Scalar, C::Scalar)> = pairs
                .iter()
                .take(t)
                .map(|(j, s)| (xs[*j as usize], *s))
                .collect();
            // Player indices are distinct (checked when the ceremony is built), so this
            // cannot fail; if it did, the dealer is treated as not reconstructible.
            let Ok(f) = Polynomial::interpolate(&points) else {
                missing.push(dealer);
                continue;
            };
            let mut values = Vec::with_capacity(xs.len() + 1);
            values.push(f.constant());
            values.extend(xs.iter().map(|x| f.evaluate(x)));
            self.reconstructed.insert(dealer, values);
        }
        if missing.is_empty() {
            return self.finish();
        }
        let reason = FailureReason::Unreconstructed {
            dealer: missing[0],
            pairs: self.public_pairs.get(&missing[0]).map_or(0, BTreeMap::len),
            t,
        };
        // Too few valid pairs: dropping the dealer now could bias the key, so the ceremony fails,
        // naming the qualified players that withheld their pairs.
        let players = self
            .qualification
            .clone()
            .map(|q| q.players)
            .unwrap_or_default();
        let mut extra = Vec::new();
        for p in players {
            let withheld = missing.iter().find(|d| {
                !self
                    .public_pairs
                    .get(d)
                    .is_some_and(|pairs| pairs.contains_key(&p))
            });
            if let Some(d) = withheld
                && !self.player_faults.contains_key(&p)
            {
                extra.push(Exclusion {
                    role: Role::Player,
                    index: p,
                    identity: self.ceremony.players()[p as usize].identity.clone(),
                    fault: FaultKind::MissedReconstruction { dealer: *d },
                    evidence: Evidence::Absence {
                        phase: BoardPhase::Publish,
                        attempt: 0,
                    },
                    reporter: None,
                });
            }
        }
        self.fail(reason, extra);
    }

    /// Checks the reconstruction posts' signatures, which [`check_authentic`] left for now, in
    /// one batch, and drops the posts whose signature is not their player's: they count as
    /// never posted, as they would had each been checked on arrival.
    fn drop_unsigned(&mut self, posts: &mut Vec<(Disclosure<C>, Signed)>) {
        let signatures: Vec<IdentitySignature> = posts
            .iter()
            .map(|(_, bytes)| {
                let mut sig = [0u8; SIGNATURE_LEN];
                sig.copy_from_slice(&bytes[..SIGNATURE_LEN]);
                IdentitySignature(sig)
            })
            .collect();
        let items = {
            let checks: Vec<PostToCheck<'_>> = posts
                .iter()
                .zip(&signatures)
                .map(|((d, bytes), signature)| PostToCheck {
                    author: (Role::Player, d.player),
                    encoded: &bytes[SIGNATURE_LEN..],
                    signature,
                })
                .collect();
            match checks::post_signatures(&self.ceremony, &checks) {
                Ok(()) => return,
                Err(BadPostSignatures { items }) => items,
            }
        };
        let mut i = 0;
        posts.retain(|(d, _)| {
            let keep = items.binary_search(&i).is_err();
            if !keep {
                self.dropped_reconstructions.push(d.player);
            }
            i += 1;
            keep
        });
        self.dropped_reconstructions.sort_unstable();
    }

    /// Weighted column sums of the given dealers' Feldman commitments (identity points when
    /// there are none).
    fn sums(&self, dealers: &[u32]) -> Vec<C::Affine> {
        if dealers.is_empty() {
            return vec![C::Affine::identity(); self.ceremony.n() + 1];
        }
        let commitments: Vec<&EvalCommitment<C>> = dealers
            .iter()
            .map(|d| &self.feldman[d].commitment)
            .collect();
        weighted_column_sums::<C>(&commitments, &self.ceremony.dealer_weights(dealers))
    }

    fn finish(&mut self) {
        let qualified = self
            .qualification
            .clone()
            .map(|q| q.dealers)
            .unwrap_or_default();
        let ok = self.feldman_ok(&qualified);
        let sums = match self.feldman_sums.take() {
            Some((dealers, sums)) if dealers == ok => sums,
            _ => self.sums(&ok),
        };
        let mut sums: Vec<C::Point> = sums.iter().map(|p| p.to_curve()).collect();
        // Reconstructed dealers (fresh keys only) add their values in the clear.
        let output_dealers = if self.ceremony.reshare().is_none() {
            let mut column = vec![C::Scalar::ZERO; sums.len()];
            for values in self.reconstructed.values() {
                for (c, v) in column.iter_mut().zip(values) {
                    *c += v;
                }
            }
            if !self.reconstructed.is_empty() {
                for (s, c) in sums.iter_mut().zip(&column) {
                    *s += mul_generator::<C>(c);
                }
            }
            qualified
        } else {
            ok
        };
        let sums = C::batch_normalize(&sums);
        if let Some(r) = self.ceremony.reshare()
            && sums[0] != r.group_key
        {
            // The old public shares are inconsistent with the old key; nobody here is to blame.
            return self.fail(FailureReason::KeyChanged, Vec::new());
        }
        if is_identity::<C>(&sums[0]) {
            // A key whose secret is zero signs nothing; nobody can be proven to have caused it.
            return self.fail(FailureReason::IdentityKey, Vec::new());
        }
        let weights = self.ceremony.dealer_weights(&output_dealers);
        let output = PublicOutput {
            group_key: sums[0],
            public_shares: sums[1..].to_vec(),
            qualified: output_dealers,
            weights,
        };
        self.outcome = Some(Outcome::Success {
            output,
            exclusions: self.exclusions(),
        });
        self.phase = ComplaintBoardPhase::Done;
    }

    /// Everyone excluded so far, dealers then players, ascending.
    fn exclusions(&self) -> Vec<Exclusion> {
        let mut out: BTreeMap<(Role, u32), Proven> = BTreeMap::new();
        for (d, fe) in self.dealer_faults.iter().chain(&self.failed) {
            out.entry((Role::Dealer, *d)).or_insert_with(|| fe.clone());
        }
        for (p, fe) in &self.player_faults {
            out.insert((Role::Player, *p), fe.clone());
        }
        let absent = || Evidence::Absence {
            phase: BoardPhase::Share,
            attempt: 0,
        };
        for p in 0..self.ceremony.n() as u32 {
            if !self.reports.contains_key(&p) {
                out.entry((Role::Player, p))
                    .or_insert_with(|| Proven::own(FaultKind::MissedReport, absent()));
            }
        }
        if let Some(q) = &self.qualification {
            for d in 0..self.ceremony.dealer_count() as u32 {
                if q.dealers.binary_search(&d).is_err() {
                    out.entry((Role::Dealer, d)).or_insert_with(|| {
                        Proven::own(
                            FaultKind::NotInClique,
                            self.clique_evidence(Role::Dealer, d, q),
                        )
                    });
                }
            }
            for p in 0..self.ceremony.n() as u32 {
                if q.players.binary_search(&p).is_err() {
                    out.entry((Role::Player, p)).or_insert_with(|| {
                        Proven::own(
                            FaultKind::NotInClique,
                            self.clique_evidence(Role::Player, p, q),
                        )
                    });
                }
            }
        }
        out.into_iter()
            .map(|((role, index), p)| {
                let identity = author_key(&self.ceremony, role, index)
                    .expect("index in range")
                    .clone();
                // Reporters are players (reports, disputes, complaints).
                let reporter = p
                    .reporter
                    .and_then(|j| author_key(&self.ceremony, Role::Player, j))
                    .cloned();
                Exclusion {
                    role,
                    index,
                    reporter: other_than(&identity, reporter),
                    identity,
                    fault: p.fault,
                    evidence: p.evidence,
                }
            })
            .collect()
    }

    /// Evidence that `v` is outside the qualified set, a witness rather than a proof (which
    /// needs every report, see [`super::evidence::verify_exclusion`]): fresh, its own report and
    /// that of the first qualified player it lacks mutual validity with; resharing, for a dealer,
    /// the first report that does not validate it, and for a player its own report.
    ///
    /// One witness, not every such report: a report carries each of its complaints with the
    /// complained-of dealer's whole commitment, so with `f` dealers dealing bad shares every
    /// honest report holds `f (n + 1)` points, and listing all the reports that lack the
    /// validity of each of the `f` excluded members made the exclusions (kept by every node and
    /// recorded on chain) grow as `f^2 n^2` points.
    fn clique_evidence(&self, role: Role, v: u32, q: &Qualification) -> Evidence {
        let absent = Evidence::Absence {
            phase: BoardPhase::Share,
            attempt: 0,
        };
        let involved: Vec<u32> = match (self.ceremony.reshare(), role) {
            (None, _) => {
                if !self.reports.contains_key(&v) {
                    return absent;
                }
                let mut inv = vec![v];
                inv.extend(
                    q.players
                        .iter()
                        .copied()
                        .find(|p| !(self.validated(v, *p) && self.validated(*p, v))),
                );
                inv
            }
            (Some(_), Role::Dealer) => q
                .players
                .iter()
                .copied()
                .find(|p| !self.validated(v, *p))
                .into_iter()
                .collect(),
            (Some(_), Role::Player) => {
                if !self.reports.contains_key(&v) {
                    return absent;
                }
                vec![v]
            }
        };
        Evidence::Reports(self.reports_of(&involved))
    }
}

/// Checks equivocation evidence: two items signed by `dealer` for this session, each an encoded
/// [`CommitmentStatement`] or an encoded signed [`Justification`] post, naming different
/// commitment hashes.
pub fn verify_equivocation<C: Curve>(
    ceremony: &Ceremony<C>,
    dealer: u32,
    evidence: &Evidence,
) -> bool {
    let Evidence::SignedPosts(items) = evidence else {
        return false;
    };
    let Some(key) = ceremony.dealers().get(dealer as usize).map(|p| &p.identity) else {
        return false;
    };
    let hash_of = |item: &[u8]| -> Option<[u8; 32]> {
        if let Ok(s) = CommitmentStatement::decode(item) {
            return (s.session == *ceremony.id() && s.dealer == dealer && s.verify(key))
                .then_some(s.hash);
        }
        let post =
            SignedComplaintPost::<C>::decode(item, ceremony.n(), ceremony.dealer_count()).ok()?;
        let ComplaintPost::Justification(j) = &post.post else {
            return None;
        };
        (j.session == *ceremony.id()
            && j.dealer == dealer
            && key.verify(Purpose::Post, &post.post.encode(), &post.signature))
        .then(|| pedersen_hash::<C>(&j.session, dealer, &j.commitment))
    };
    match items.as_slice() {
        [a, b] => matches!((hash_of(a), hash_of(b)), (Some(x), Some(y)) if x != y),
        _ => false,
    }
}

/// Whether a pair sent again in a justification is a well-formed ciphertext to `player`'s key
/// whose proof of knowledge of its ephemeral key verifies under the pair's context.
pub(crate) fn resent_ciphertext_is_valid<C: Curve>(
    ceremony: &Ceremony<C>,
    dealer: u32,
    player: u32,
    hash: &[u8; 32],
    ciphertext: &[u8],
) -> bool {
    let Some(key) = ceremony.verifiable_key(player) else {
        return false;
    };
    ciphertext.len() == PAIR_CIPHERTEXT_LEN
        && VerifiableCiphertext::from_bytes(ciphertext, PAIR_LEN).is_ok_and(|ct| {
            let aad = pair_aad(ceremony.id(), dealer, player, hash);
            verifiable_encrypt::check_ciphertext(key, &aad, &ct).is_ok()
        })
}
