//! The complaint-and-reconstruct variant: Pedersen commitments, complaints and justifications, a
//! maximum clique of mutual validity, Feldman values, and reconstruction of dealers that fail
//! after qualifying. It follows the Chainlink design of seed 003 (steps 3 to 7), which is the
//! "New-DKG" of Gennaro, Jarecki, Krawczyk and Rabin ("Secure Distributed Key Generation for
//! Discrete-Log Based Cryptosystems", J. Cryptology 2007) as Stinson and Strobl present it (ACISP
//! 2001, section 2.4, which seed 003 cites), with the board (the chain) as the broadcast and
//! fallback channel.
//!
//! [`ComplaintParticipant`] is the participant (a sans-IO state machine implementing [`Participant`]);
//! [`ComplaintBoard`] holds every rule that decides qualification and the result, computed from
//! board posts alone, so that nodes and the coordinator contract run one implementation.
//!
//! # Protocol
//! `n` players with indices `x_1..x_n`, threshold `t` (polynomials of degree `t - 1`), quorum `k`,
//! tolerated faults `f = n - k`. For a fresh key the dealers are the players; when resharing they
//! are the old committee (below). Each step ends with a board deadline, in board order.
//!
//! 1. **Deal** (direct messages). Dealer `i` draws `f_i` and a blinding polynomial `f'_i` and
//!    sends player `j` a [`Deal`]: the Pedersen commitment in evaluation form
//!    `C_i = (f_i(0) G + f'_i(0) H, ..., f_i(x_n) G + f'_i(x_n) H)`, the dealer's signature on its
//!    hash ([`CommitmentStatement`](messages::CommitmentStatement)), and `(s_ij, s'_ij) =
//!    (f_i(x_j), f'_i(x_j))` encrypted to player `j`'s verifiable-encryption key
//!    ([`keyquorum_crypto::verifiable_encrypt`]: hashed ElGamal on secp256k1 with a proof of
//!    knowledge of the ephemeral key) bound to (session, dealer, player, hash), with the dealer's
//!    signature on the ciphertext ([`share_payload`](messages::share_payload)). A player accepts
//!    the pair if it opens `C_ij`
//!    (`s G + s' H = C_ij`) and `C_i` lies on a polynomial of degree `< t` (dual-code check with a
//!    Fiat-Shamir seed, as in [`crate::board`]). Commitments do not go on the board (seed 003,
//!    step 3), so a dealer could show different ones to different players.
//! 2. **Report** (posts). Every player posts, for each dealer it heard from, the hash and the
//!    dealer's signature on it, and which dealers' pairs verified: at the deal deadline, or
//!    as soon as it holds a verified pair from every dealer, since no later deal could change
//!    that report (the board takes reports in the deal phase too). Two different signed hashes of
//!    one dealer (in any reports) are self-contained proof of equivocation: the dealer is
//!    disqualified with both statements as evidence ([`verify_equivocation`]). A player that
//!    received two deals under different signed commitments from one dealer reports the first
//!    and adds the second statement to its report (`Report::conflicting`, at most one), which
//!    convicts the dealer the same way (a second deal that comes after the report is dropped:
//!    the player holds its pair from the first, so the second can no longer change its share).
//!    For a signed deal whose pair does not verify the player posts a verifiable complaint
//!    ([`DealComplaint`]): the commitment and the dealer-signed
//!    ciphertext from the deal, and the Diffie-Hellman value of that one ciphertext with a
//!    Chaum-Pedersen proof that it is the right one. The board judges it on arrival, from the
//!    report alone: it decrypts the pair and checks it against the commitment. A bad pair (or an
//!    undecryptable ciphertext, one without a valid proof of its ephemeral key, or a malformed
//!    commitment) disqualifies the dealer (`BadDeal`, the report is the evidence); a pair that
//!    opens the commitment, a missing reveal or a reveal whose proof fails excludes the
//!    complainer (`FalseComplaint`) and its report is refused. Only the complainer's own pair
//!    becomes public, which it knew already, and which the dealer failed to give it. A
//!    complaint about a dealer already disqualified is checked for form (the heard hash, the
//!    dealer's signature on the ciphertext) but not judged: no verdict on it could change who
//!    qualifies, and so `f` dealers that deal bad pairs to every player cost each verifier `f`
//!    judgements, not `f (n - 1)`.
//! 3. **Justify** (posts). A dealer that some reporting players did not hear from (neither
//!    valid nor complained about: a lost deal, or a player claiming one) posts its full
//!    commitment and their pairs encrypted again to their keys, under the same context (the
//!    answer of GJKR step 1(c), without the reveal). The board checks the commitment and each
//!    ciphertext's form and proof of knowledge; a missing or invalid answer, or a commitment other
//!    than the one the dealer signed, disqualifies the dealer. The player decrypts its pair from
//!    the board; the edge counts as valid unless the pair is bad. Then a **dispute** phase
//!    (posts, only if some pair was sent again): a player whose pair sent again does not open
//!    `C_ij` posts the key of that ciphertext with its proof ([`Dispute`]),
//!    judged as in step 2: a bad pair disqualifies the dealer (`BadDeal`), a good one (or a
//!    reveal about a pair nobody sent the player) excludes the player.
//! 4. **Qualify** (computed). Fresh key: an edge `i - j` exists iff `j` holds a verified pair from
//!    `i` and `i` one from `j` (reported valid or justified); `Q` is a maximum clique among the
//!    reporting, non-disqualified participants, the lexicographically smallest among the largest
//!    ([`clique`]: minimum vertex cover of the sparse complement, exact). Participants outside it
//!    are excluded for this key (seed 003 step 5). `|Q| >= `
//!    [`dealer_quorum`](crate::ceremony::Ceremony::dealer_quorum) or the ceremony fails naming the
//!    culprits. `Q` is fixed before any value in the exponent is public: Pedersen commitments hide
//!    `f_i(0)` unconditionally, so who qualifies cannot depend on the key (GJKR's fix of the
//!    Pedersen/Feldman DKG, where a rushing adversary could bias the key by choosing whom to
//!    disqualify after seeing the `f_i(0) G`).
//! 5. **Feldman** (posts). Each dealer in `Q` posts `F_i = (f_i(0) G, f_i(x_1) G, ...)` (seed 003
//!    step 6, GJKR step 4(a)). The board checks its size and degree; players check `s_ij G = F_ij`.
//! 6. **Complain** (posts). Every qualified player posts a complaint: for each dealer whose
//!    check fails its pair `(s_ij, s'_ij)`, with the dealer's Pedersen commitment if the board
//!    does not have it yet, and nothing when every check passes (the empty complaint lets the
//!    phase close before its deadline). Since the pair opens `C_ij` (binding under the
//!    discrete logarithm of `H`), a pair that contradicts `F_ij` proves the dealer's fault; one
//!    that does not is a false complaint, the complainer's fault.
//! 7. **Reconstruct** (posts). For each dealer in `Q` that failed 5-6 (no post, bad post, proven
//!    complaint, points outside the subgroup), every qualified player posts its pair, the first
//!    `f + 1` qualified players also the commitment if it is missing. The board takes the `t`
//!    valid pairs of the lowest-numbered players (valid pairs revealed earlier count too) and
//!    interpolates `f_i`, whose contribution stays in the key: a dealer cannot bias the key by
//!    dropping out after seeing the others' values (seed 003 step 7, GJKR step 4(c)). It is still excluded for the
//!    future, with evidence. The posts' signatures are checked at the deadline in one batch (up
//!    to `n` posts, one multi-pairing instead of two pairings each); a post whose signature
//!    fails counts as never posted.
//! 8. **Output**. Group key `sum_{i in Q} F_i0` (reconstructed dealers: `f_i(0) G`), public
//!    shares `Y_j = sum_i F_ij`, player share `x_j = sum_i s_ij` (reconstructed: `f_i(x_j)`), after
//!    a subgroup check of the sums as in [`crate::board`]; each player checks `x_j G = Y_j`.
//!
//! The justify phase is skipped when no deal was missed, the dispute phase when no deal was sent
//! again, and the reconstruct phase when no
//! qualified dealer failed, so the happy path has four deadlines (deal, report, Feldman,
//! complain). A coordinator that closes a phase once every post it expects is in
//! ([`ComplaintBoard::all_posts_in`]) ends the deal and report phases with the last report, the
//! Feldman phase with the last Feldman post and the complain phase with the last complaint, so
//! that the happy path waits out no deadline: it takes as long as its work and its network.
//!
//! # Verifiable complaints and false complainers
//! GJKR (step 1(b)-(c)) settles a complaint by having the dealer publish the complainer's share.
//! Those reveals must be bounded (`f` corrupt players plus the reveals must stay below `t`, so at
//! most `t - 1 - f` answers), and with the board unable to tell a true complaint from a false one,
//! more false complainers than that bound could disqualify any honest dealer. Here a complaint is
//! settled the way ETHDKG settles disputes on chain (Schindler, Judmayer, Stifter and Weippl,
//! "ETHDKG: Distributed Key Generation with Ethereum Smart Contracts", 2019): the complainer
//! reveals the Diffie-Hellman key of the one ciphertext with a Chaum-Pedersen proof of equal
//! discrete logarithms (Chaum and Pedersen, "Wallet Databases with Observers", CRYPTO 1992), and
//! anyone decrypts and checks the share. No complaint needs an answer from the accused dealer:
//! - A complaint about a received deal proves itself or its author's fault, as above; its only
//!   public data is the complainer's pair and the key of its one ciphertext. Revealing that key
//!   tells nothing about other ciphertexts: the dealer proved knowledge of the ephemeral key, so
//!   the reveal is simulatable ([`keyquorum_crypto::verifiable_encrypt`], "Why it is sound").
//! - A lost deal is answered by sending the ciphertext again on the board, which reveals
//!   nothing, so there is no bound on how many: lost messages never enter the complaint path,
//!   and a player that claims a loss gets its pair, nothing more.
//!
//! So false complaints never decide who qualifies, for every `(n, t, k)`
//! [`Params::new`](crate::params::Params::new) accepts: a true complaint disqualifies the dealer,
//! a false one its author (with the report as evidence for slashing), and claimed losses cost
//! the dealer board space only. A false complaint about a dealer some earlier post already
//! disqualified goes unjudged, and so unpunished; it gains its author nothing, as that dealer is
//! out whatever the verdict.
//!
//! # Resharing
//! The old committee deals `f_i` with `f_i(0)` = its old share; the group key must stay the same.
//! - The blinding polynomial has `f'_i(0) = 0`, so `C_i0` must equal the dealer's old public share
//!   `Y_i` and everyone checks that in step 1 and on justifications (and `F_i0 = Y_i` in step 5).
//!   This gives up hiding of `f_i(0)`, which is public anyway (`Y_i`); with `t - 1` corrupt pairs
//!   and `f'_i(0) = 0` the adversary can compute every `f_i(x_j) G`, which step 5 publishes anyway
//!   for qualified dealers and which, as in Feldman VSS, reveals no share.
//!   Binding then guarantees that a dealer's polynomial really starts at its old share.
//! - Qualification is bipartite: `P` = the players with an accepted report, `Q` = the dealers
//!   from which every player in `P` holds a verified pair (reported valid, or justified). After
//!   justification that is every dealer not disqualified; players outside `P` get no share. It
//!   needs `|Q| >=` the dealer quorum (at least the old threshold) and `|P| >= k`.
//! - A dealer in `Q` that fails the Feldman phase is dropped, not reconstructed: the key is fixed
//!   (`sum_Q lambda_i Y_i` is the old key for any `Q` of at least the old threshold), so dropping
//!   cannot bias it, and reconstruction would publish `f_i(0)`, an old share of the group secret.
//!   Weights are the Lagrange coefficients at zero of the remaining dealers' old indices.
//!
//! # Caveats
//! - Synchrony: as in GJKR, correctness assumes honest messages and posts arrive before the
//!   deadlines; otherwise honest parties are complained about or left out of the clique. There
//!   is one attempt, no retry.
//! - With the rules above (every complaint answered or the dealer disqualified) the mutual-validity
//!   graph is complete among reporting, non-disqualified participants, so in practice the clique
//!   removes exactly those that did not report. The general clique search is kept because it is
//!   what seed 003 specifies and it bounds its own cost (`O(1.47^c)` for `c` excluded vertices,
//!   limited by `n - quorum`, plus `O(n^2)` edge tests).
//! - Reconstruction needs `t` valid pairs, and the Feldman check needs `t` honest qualified
//!   players (a wrong `F_i` of degree `< t` agrees with `f_i` on at most `t - 1` of them). Both
//!   hold in the synchronous model, where all `n - f >= t` honest players qualify. If honest
//!   players were left out and corrupt qualified players withhold their pairs, a fresh ceremony
//!   fails (naming them) rather than dropping the dealer, since dropping would let the adversary
//!   bias the key.
//! - Reconstructing an honest dealer that merely crashed in step 5 publishes its `f_i`; the key
//!   stays secret through the other honest contributions.
//! - Each player needs a verifiable-encryption key in the ceremony
//!   ([`CeremonyConfig::verifiable_keys`](crate::CeremonyConfig::verifiable_keys)), on top of its
//!   HPKE key (which this variant does not use). Ciphertexts are 177 bytes instead of 112, and a
//!   complaint carries the dealer's commitment (`n + 1` uncompressed points) and 97 bytes of
//!   reveal. Judging a complaint costs one signature verification, one degree check (shared with
//!   every other check of that commitment), two proof verifications (four scalar
//!   multiplications on secp256k1) and one commitment opening.
//! - Commitments travel point-to-point; the board sees a dealer's commitment only when it is
//!   justified or disclosed by a player, accepted by its signed hash. Evidence that needs a
//!   commitment carries the post that brought it.
//! - Costs: one BLS verification per post and per distinct signed hash, and one degree check per
//!   distinct commitment: every pure check (signatures, degree checks, openings of public pairs,
//!   the subgroup check of the sums) runs through
//!   [`Ceremony::check_once`](crate::ceremony::Ceremony::check_once) keyed by a hash of all its
//!   inputs, so a node's participant and its board replica share the answers (and so do all the
//!   simulated nodes of one process). A deal is read only if the transport authenticated its
//!   dealer as the sender (see `docs/protocol.md`, "Direct messages and their senders"). A player
//!   verifies the dealer's signature on a deal's ciphertext only when its pair fails, i.e. when
//!   it will complain (the complaint carries it): a pair that opens the dealer's signed
//!   commitment is the dealer's whatever that signature, and the statement inside the deal
//!   (which goes into the report) is verified in any case. Each degree check is an MSM of `n + 1` points plus
//!   `O(n^2)` field operations for its weights, so a player checking `n` dealers does `O(n^3)`
//!   field work, as in the ack-or-reveal variant. Reports carry 84 bytes per dealer heard from
//!   (about 8 KB at `n = 100`): the price of self-contained equivocation evidence with
//!   point-to-point commitments. Evidence is checked by [`verify_exclusion`].

pub mod board;
mod checks;
pub mod clique;
mod evidence;
pub mod messages;
mod verdict;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use ff::Field;
use keyquorum_crypto::Curve;
use keyquorum_crypto::commit::EvalCommitment;
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::verifiable_encrypt::{
    self, KeyReveal, VerifiableCiphertext, VerifiableEncryptionSecretKey,
};
use rand_chacha::ChaCha20Rng;

pub use board::{
    ComplaintBoard, ComplaintBoardError, ComplaintBoardPhase, Qualification, author_key,
    check_authentic, verify_equivocation,
};
pub use checks::{BadPostSignatures, PostToCheck, post_signatures};
pub use evidence::verify_exclusion;
use messages::{
    ComplaintPost, Deal, DealComplaint, Disclosure, Dispute, FeldmanPost, HeardEntry,
    Justification, PAIR_LEN, Report, SignedComplaintPost, SignedPedersen, pair_aad, seal_deal,
    seal_pair,
};

use crate::board::{Outcome, Role, share_matches};
use crate::ceremony::Ceremony;
use crate::identity::{IdentityKeypair, IdentityPublicKey, IdentitySignature};
use crate::participant::{
    Action, DkgOutput, Failure, FailureReason, Input, Observation, Participant, ParticipantError,
    Seating, check_sender,
};

struct DealerState<C: Curve> {
    index: u32,
    f: Polynomial<C::Scalar>,
    blind: Polynomial<C::Scalar>,
    signed: SignedPedersen<C>,
}

struct Heard<C: Curve> {
    commitment: EvalCommitment<C>,
    hash: [u8; 32],
    signature: IdentitySignature,
}

type Pair<C> = (Secret<<C as Curve>::Scalar>, Secret<<C as Curve>::Scalar>);

struct PlayerState<C: Curve> {
    index: u32,
    heard: BTreeMap<u32, Heard<C>>,
    /// Verified pairs `(s_ij, s'_ij)` per dealer, from deals or justifications.
    pairs: BTreeMap<u32, Pair<C>>,
    /// Complaints about signed deals whose pairs did not verify, per dealer.
    complaints: BTreeMap<u32, DealComplaint<C>>,
    /// Reveals of pairs sent again in justifications that did not verify, per dealer (posted in
    /// the dispute phase).
    reveals: BTreeMap<u32, KeyReveal>,
    /// The first dealer-signed statement of a commitment other than the one heard from that
    /// dealer: equivocation evidence for the report. One is enough to convict its dealer, so
    /// no more are kept.
    conflicting: Option<HeardEntry>,
    reported: bool,
    /// The signed report, once posted before the deal deadline: posted again at that deadline
    /// if the board does not have it by then.
    early_report: Option<Vec<u8>>,
}

/// One participant of a complaint-and-reconstruct ceremony.
///
/// Like [`AckRevealParticipant`](crate::ackreveal::AckRevealParticipant) it has no I/O, clock or randomness of
/// its own: all randomness comes from the seed, so replaying the inputs reproduces the outputs.
pub struct ComplaintParticipant<C: Curve> {
    ceremony: Arc<Ceremony<C>>,
    identity: IdentityKeypair,
    encryption: VerifiableEncryptionSecretKey,
    rng: ChaCha20Rng,
    board: ComplaintBoard<C>,
    dealer: Option<DealerState<C>>,
    player: Option<PlayerState<C>>,
    started: bool,
    done: bool,
}

impl<C: Curve> core::fmt::Debug for ComplaintParticipant<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ComplaintParticipant")
            .field("identity", self.identity.public())
            .field("dealer", &self.dealer.as_ref().map(|d| d.index))
            .field("player", &self.player.as_ref().map(|p| p.index))
            .field("phase", &self.board.phase())
            .finish_non_exhaustive()
    }
}

impl<C: Curve> Participant<C> for ComplaintParticipant<C> {
    fn handle(&mut self, input: Input) -> Vec<Action<C>> {
        ComplaintParticipant::handle(self, input)
    }

    fn identity(&self) -> &IdentityPublicKey {
        self.identity.public()
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

impl<C: Curve> ComplaintParticipant<C> {
    /// A participant with its keys (the verifiable-encryption key is the one the ceremony lists
    /// for this player, [`CeremonyConfig::verifiable_keys`](crate::CeremonyConfig)), its
    /// previous share when it deals in a reshare, and a secret 32-byte seed for all its
    /// randomness.
    pub fn new(
        ceremony: Arc<Ceremony<C>>,
        identity: IdentityKeypair,
        encryption: VerifiableEncryptionSecretKey,
        old_share: Option<Secret<C::Scalar>>,
        seed: [u8; 32],
    ) -> Result<Self, ParticipantError> {
        let seating = Seating::new(&ceremony, identity.public(), old_share, seed)?;
        Ok(Self::seated(ceremony, identity, encryption, seating))
    }

    /// A participant that plays and never deals, even where the ceremony names it a dealer: for
    /// a member joining after the deal window closed (its deals could no longer count, and
    /// drawn from a fresh seed they could contradict ones it made before losing its state).
    /// Fails if it is not a player.
    pub fn new_player(
        ceremony: Arc<Ceremony<C>>,
        identity: IdentityKeypair,
        encryption: VerifiableEncryptionSecretKey,
        seed: [u8; 32],
    ) -> Result<Self, ParticipantError> {
        let seating = Seating::player_only(&ceremony, identity.public(), seed)?;
        Ok(Self::seated(ceremony, identity, encryption, seating))
    }

    fn seated(
        ceremony: Arc<Ceremony<C>>,
        identity: IdentityKeypair,
        encryption: VerifiableEncryptionSecretKey,
        seating: Seating<C>,
    ) -> Self {
        let Seating {
            dealer,
            player,
            old_share,
            mut rng,
        } = seating;
        let dealer = match dealer {
            None => None,
            Some(index) => {
                let (constant, blind_constant) = match &old_share {
                    None => (None, None),
                    // f'(0) = 0 makes C_0 the old public share (see the module docs).
                    Some(old) => (Some(*old.expose()), Some(C::Scalar::ZERO)),
                };
                let degree = ceremony.t() - 1;
                let f = Polynomial::random(degree, constant, &mut rng);
                let blind = Polynomial::random(degree, blind_constant, &mut rng);
                let commitment = EvalCommitment::pedersen(&f, &blind, ceremony.player_indices());
                let signed = SignedPedersen::new(&identity, ceremony.id(), index, commitment);
                Some(DealerState {
                    index,
                    f,
                    blind,
                    signed,
                })
            }
        };
        let player = player.map(|index| PlayerState {
            index,
            heard: BTreeMap::new(),
            pairs: BTreeMap::new(),
            complaints: BTreeMap::new(),
            reveals: BTreeMap::new(),
            conflicting: None,
            reported: false,
            early_report: None,
        });
        ComplaintParticipant {
            board: ComplaintBoard::new(ceremony.clone()),
            ceremony,
            identity,
            encryption,
            rng,
            dealer,
            player,
            started: false,
            done: false,
        }
    }

    /// The participant's view of the board.
    pub fn board(&self) -> &ComplaintBoard<C> {
        &self.board
    }

    /// The identity key.
    pub fn identity(&self) -> &IdentityPublicKey {
        self.identity.public()
    }

    /// Whether the ceremony ended for this participant.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Dealers whose pairs this player holds verified.
    pub fn verified_dealers(&self) -> Vec<u32> {
        self.player
            .as_ref()
            .map(|p| p.pairs.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Feeds one input; returns the actions to take, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Action<C>> {
        let mut out = Vec::new();
        let mut queue = VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            for a in self.step(input) {
                match a {
                    // Messages to oneself are handled at once instead of being sent.
                    Action::Send { to, payload } if &to == self.identity.public() => {
                        queue.push_back(Input::Message { from: to, payload })
                    }
                    other => out.push(other),
                }
            }
        }
        out
    }

    fn step(&mut self, input: Input) -> Vec<Action<C>> {
        if self.done {
            return Vec::new();
        }
        match input {
            Input::Start => self.start(),
            Input::Message { from, payload } => {
                match Deal::<C>::decode(&payload, self.ceremony.n()) {
                    Ok(d) => match check_sender(&self.ceremony, &from, Role::Dealer, d.dealer) {
                        Ok(()) => self.on_deal(d),
                        Err(o) => vec![Action::Observed(o)],
                    },
                    Err(e) => malformed(e.to_string()),
                }
            }
            Input::BoardPost(bytes) => self.on_board_post(&bytes),
            Input::Deadline => self.on_deadline(),
        }
    }

    fn start(&mut self) -> Vec<Action<C>> {
        if self.started {
            return Vec::new();
        }
        self.started = true;
        let Some(d) = &self.dealer else {
            return Vec::new();
        };
        let session = *self.ceremony.id();
        let xs = self.ceremony.player_indices();
        let mut out = Vec::with_capacity(self.ceremony.n());
        for (j, p) in self.ceremony.players().iter().enumerate() {
            let Some(key) = self.ceremony.verifiable_key(j as u32) else {
                continue;
            };
            let share = Secret::new(d.f.evaluate(&xs[j]));
            let blind = Secret::new(d.blind.evaluate(&xs[j]));
            let deal = seal_deal(
                &self.identity,
                &session,
                &d.signed,
                (j as u32, key),
                share.expose(),
                blind.expose(),
                &mut self.rng,
            );
            out.push(Action::Send {
                to: p.identity.clone(),
                payload: deal.encode(),
            });
        }
        out
    }

    fn on_deal(&mut self, deal: Deal<C>) -> Vec<Action<C>> {
        let Some(p) = &self.player else {
            return malformed("deal to a non-player".into());
        };
        if deal.session != *self.ceremony.id()
            || deal.player != p.index
            || deal.dealer as usize >= self.ceremony.dealer_count()
        {
            return malformed("deal for another session, player or dealer".into());
        }
        if p.reported {
            // A copy of a deal the report already took (a retransmission, or a pull answered
            // after the report went out early) is no fault.
            if p.pairs.contains_key(&deal.dealer)
                && p.heard
                    .get(&deal.dealer)
                    .is_some_and(|h| h.hash == deal.statement().hash)
            {
                return Vec::new();
            }
            // The report is posted; a late deal is answered by the justification instead.
            return malformed("deal after the report".into());
        }
        // A deal under another commitment than the one heard from its dealer is equivocation
        // (seed 003 step 3.2) even when both go to this player alone: the first such statement
        // the dealer signed is kept for the report, where the board convicts the dealer with
        // it; the deal itself is dropped.
        if let Some(heard) = p.heard.get(&deal.dealer) {
            let statement = deal.statement();
            if statement.hash != heard.hash {
                if !checks::statement(&self.ceremony, &statement) {
                    return malformed("deal signature does not verify".into());
                }
                let p = self.player.as_mut().expect("checked above");
                if p.conflicting.is_none() {
                    p.conflicting = Some(HeardEntry {
                        dealer: deal.dealer,
                        hash: statement.hash,
                        signature: statement.signature,
                    });
                }
                return malformed(format!("dealer {} signed a second commitment", deal.dealer));
            }
        }
        // Deals are checked as they arrive (the commitment travels with them), so keeping the
        // first one heard and replacing it only by one whose pair verifies bounds memory at one
        // deal per dealer, and a bad deal never blocks a good one that follows.
        if p.pairs.contains_key(&deal.dealer) {
            return Vec::new();
        }
        let replaces = p.heard.contains_key(&deal.dealer);
        // The statement goes into the report, so it must be the dealer's (verified once per
        // ceremony: every player receives the same one).
        let statement = deal.statement();
        if !checks::statement(&self.ceremony, &statement) {
            return malformed("deal signature does not verify".into());
        }
        let pair = self.open_deal(&deal, &statement.hash);
        // A pair that opens the dealer's signed commitment is the dealer's whatever the signature
        // on the ciphertext, so that signature matters only for a deal this player will complain
        // about (the complaint carries it): it is checked then, and an unsigned deal is dropped
        // instead, as if it had not arrived.
        if pair.is_none()
            && !checks::share_signature(
                &self.ceremony,
                (deal.dealer, deal.player, &statement.hash),
                &deal.ciphertext,
                &deal.signature,
            )
        {
            return malformed("deal signature does not verify".into());
        }
        if pair.is_none() && replaces {
            return vec![Action::Observed(Observation::BadShare {
                dealer: deal.dealer,
            })];
        }
        let complaint = match pair {
            Some(_) => None,
            None => {
                let aad = pair_aad(&deal.session, deal.dealer, deal.player, &statement.hash);
                Some(DealComplaint {
                    dealer: deal.dealer,
                    commitment: deal.commitment.clone(),
                    ciphertext: deal.ciphertext.clone(),
                    signature: deal.signature,
                    reveal: verdict::reveal_for(
                        &self.encryption,
                        &aad,
                        &deal.ciphertext,
                        &mut self.rng,
                    ),
                })
            }
        };
        let p = self.player.as_mut().expect("checked above");
        p.heard.insert(
            deal.dealer,
            Heard {
                commitment: deal.commitment,
                hash: statement.hash,
                signature: statement.signature,
            },
        );
        match (pair, complaint) {
            (Some(pair), _) => {
                p.complaints.remove(&deal.dealer);
                p.pairs.insert(deal.dealer, pair);
                self.report_once_every_deal_verified()
            }
            (None, complaint) => {
                p.complaints.extend(complaint.map(|c| (deal.dealer, c)));
                vec![Action::Observed(Observation::BadShare {
                    dealer: deal.dealer,
                })]
            }
        }
    }

    /// Decrypts an encrypted pair for this player and returns it if it opens `commitment`.
    fn open_pair(
        &self,
        dealer: u32,
        commitment: &EvalCommitment<C>,
        hash: &[u8; 32],
        ciphertext: &[u8],
    ) -> Option<Pair<C>> {
        let j = self.player.as_ref()?.index;
        let aad = pair_aad(self.ceremony.id(), dealer, j, hash);
        let plaintext = VerifiableCiphertext::from_bytes(ciphertext, PAIR_LEN)
            .and_then(|ct| verifiable_encrypt::open(&self.encryption, &aad, &ct))
            .ok()?;
        let bytes = plaintext.expose();
        if bytes.len() != PAIR_LEN {
            return None;
        }
        let s = Secret::new(C::decode_scalar(&bytes[..32]).ok()?);
        let b = Secret::new(C::decode_scalar(&bytes[32..]).ok()?);
        commitment
            .verify_pedersen_share(j as usize, s.expose(), b.expose())
            .then_some((s, b))
    }

    /// The pair in a deal, if the commitment is well formed and the pair opens it.
    fn open_deal(&self, deal: &Deal<C>, hash: &[u8; 32]) -> Option<Pair<C>> {
        let c = &deal.commitment;
        if c.points().len() != self.ceremony.n() + 1
            || !checks::degree(&self.ceremony, deal.dealer, c, hash)
        {
            return None;
        }
        if let Some(r) = self.ceremony.reshare()
            && r.public_shares[deal.dealer as usize] != *c.constant()
        {
            return None;
        }
        self.open_pair(deal.dealer, c, hash, &deal.ciphertext)
    }

    fn on_board_post(&mut self, bytes: &[u8]) -> Vec<Action<C>> {
        let signed = match SignedComplaintPost::<C>::decode(
            bytes,
            self.ceremony.n(),
            self.ceremony.dealer_count(),
        ) {
            Ok(s) => s,
            Err(e) => return vec![Action::Observed(Observation::Refused(e.to_string()))],
        };
        match self.board.apply(&signed) {
            Ok(()) => Vec::new(),
            Err(e) => vec![Action::Observed(Observation::Refused(e.to_string()))],
        }
    }

    fn on_deadline(&mut self) -> Vec<Action<C>> {
        let before = self.board.phase();
        self.board.advance();
        let after = self.board.phase();
        if before == after {
            return Vec::new();
        }
        match after {
            ComplaintBoardPhase::Deal => Vec::new(),
            ComplaintBoardPhase::Report => self.post_report(),
            ComplaintBoardPhase::Justify => self.post_justification(),
            ComplaintBoardPhase::Dispute => {
                self.adopt_resent_pairs();
                self.post_dispute()
            }
            ComplaintBoardPhase::Feldman => {
                self.adopt_resent_pairs();
                self.post_feldman()
            }
            ComplaintBoardPhase::Complain => self.post_complaints(),
            ComplaintBoardPhase::Reconstruct => self.post_reconstruction(),
            ComplaintBoardPhase::Done => self.finish(),
        }
    }

    fn post(&self, post: ComplaintPost<C>) -> Vec<Action<C>> {
        vec![Action::Post(
            SignedComplaintPost::sign(&self.identity, post).encode(),
        )]
    }

    /// Posts the report before the deal deadline once a verified pair from every dealer is in,
    /// and the board closes the deal phase once every player has reported
    /// ([`ComplaintBoard::all_posts_in`]). The player's share cannot change after that: a later
    /// deal from a dealer already verified is dropped. So is a deal under a second commitment
    /// of one dealer, which before the deadline would have gone into the report as proof of
    /// equivocation; a dealer showing other players another commitment is still convicted by
    /// their reports, and one showing this player two has given it a good pair either way. A
    /// player missing a deal, or holding a bad one, waits for the deadline as before, since the
    /// missing deal may still come.
    fn report_once_every_deal_verified(&mut self) -> Vec<Action<C>> {
        let every_deal_verified = self
            .player
            .as_ref()
            .is_some_and(|p| !p.reported && p.pairs.len() == self.ceremony.dealer_count());
        if !every_deal_verified || self.board.phase() != ComplaintBoardPhase::Deal {
            return Vec::new();
        }
        let actions = self.post_report();
        if let (Some(p), [Action::Post(bytes)]) = (self.player.as_mut(), &actions[..]) {
            p.early_report = Some(bytes.clone());
        }
        actions
    }

    fn post_report(&mut self) -> Vec<Action<C>> {
        let Some(p) = &mut self.player else {
            return Vec::new();
        };
        if p.reported {
            // Posted early, when every deal had verified (above). A submission can still miss
            // the board (one that expired with the deal deadline, a crash before it went out):
            // the same bytes again then, which the board takes in the report phase.
            return match &p.early_report {
                Some(bytes) if !self.board.has_report(p.index) => vec![Action::Post(bytes.clone())],
                _ => Vec::new(),
            };
        }
        p.reported = true;
        let report = Report {
            session: *self.ceremony.id(),
            player: p.index,
            heard: p
                .heard
                .iter()
                .map(|(d, h)| HeardEntry {
                    dealer: *d,
                    hash: h.hash,
                    signature: h.signature,
                })
                .collect(),
            valid: p.pairs.keys().copied().collect(),
            complaints: p
                .complaints
                .iter()
                .filter(|(d, _)| !p.pairs.contains_key(d))
                .map(|(_, c)| c.clone())
                .collect(),
            conflicting: p.conflicting.clone(),
        };
        self.post(ComplaintPost::Report(report))
    }

    fn post_justification(&mut self) -> Vec<Action<C>> {
        let Some(d) = &self.dealer else {
            return Vec::new();
        };
        let missed = self.board.missed_deals(d.index);
        if self.board.is_disqualified(d.index) || missed.is_empty() {
            return Vec::new();
        }
        let session = *self.ceremony.id();
        let xs = self.ceremony.player_indices();
        let mut deals = Vec::with_capacity(missed.len());
        for j in missed {
            let Some(key) = self.ceremony.verifiable_key(*j) else {
                continue;
            };
            let x = &xs[*j as usize];
            let share = Secret::new(d.f.evaluate(x));
            let blind = Secret::new(d.blind.evaluate(x));
            let ct = seal_pair(
                &session,
                &d.signed,
                (*j, key),
                share.expose(),
                blind.expose(),
                &mut self.rng,
            );
            deals.push((*j, ct));
        }
        self.post(ComplaintPost::Justification(Justification {
            session,
            dealer: d.index,
            commitment: d.signed.commitment.clone(),
            deals,
        }))
    }

    /// Opens the pairs that dealers sent again to this player in their justifications; prepares
    /// a reveal for each one that does not verify (posted in the dispute phase).
    fn adopt_resent_pairs(&mut self) {
        let Some(j) = self.player.as_ref().map(|p| p.index) else {
            return;
        };
        for d in 0..self.ceremony.dealer_count() as u32 {
            let p = self.player.as_ref().expect("player");
            if p.pairs.contains_key(&d) || p.reveals.contains_key(&d) {
                continue;
            }
            let (Some(ct), Some(commitment), Some(hash)) = (
                self.board.resent_deal(d, j),
                self.board.commitment(d),
                self.board.signed_hash(d),
            ) else {
                continue;
            };
            match self.open_pair(d, commitment, hash, ct) {
                Some(pair) => {
                    self.player.as_mut().expect("player").pairs.insert(d, pair);
                }
                None => {
                    let aad = pair_aad(self.ceremony.id(), d, j, hash);
                    let reveal = verdict::reveal_for(&self.encryption, &aad, ct, &mut self.rng);
                    let p = self.player.as_mut().expect("player");
                    p.reveals.extend(reveal.map(|r| (d, r)));
                }
            }
        }
    }

    fn qualified_dealers(&self) -> Vec<u32> {
        self.board
            .qualification()
            .map(|q| q.dealers.clone())
            .unwrap_or_default()
    }

    /// This participant's player position if it is a qualified player.
    fn qualified_player(&self) -> Option<u32> {
        let p = self.player.as_ref()?;
        let q = self.board.qualification()?;
        q.players.binary_search(&p.index).is_ok().then_some(p.index)
    }

    fn post_feldman(&mut self) -> Vec<Action<C>> {
        let Some(d) = &self.dealer else {
            return Vec::new();
        };
        if self.qualified_dealers().binary_search(&d.index).is_err() {
            return Vec::new();
        }
        let commitment = EvalCommitment::feldman(&d.f, self.ceremony.player_indices());
        self.post(ComplaintPost::Feldman(FeldmanPost {
            session: *self.ceremony.id(),
            dealer: d.index,
            commitment,
        }))
    }

    /// The dealer's commitment as this player received it, if it is the one the dealer signed on
    /// the board (for carrying it in a disclosure).
    fn carried_commitment(&self, dealer: u32) -> Option<(u32, EvalCommitment<C>)> {
        if self.board.commitment(dealer).is_some() {
            return None;
        }
        let h = self.player.as_ref()?.heard.get(&dealer)?;
        (self.board.signed_hash(dealer) == Some(&h.hash)).then(|| (dealer, h.commitment.clone()))
    }

    fn post_complaints(&mut self) -> Vec<Action<C>> {
        let Some(j) = self.qualified_player() else {
            return Vec::new();
        };
        let p = self.player.as_ref().expect("qualified player");
        let mut shares = Vec::new();
        let mut commitments = Vec::new();
        for d in &self.qualified_dealers() {
            let (Some(feldman), Some((s, b))) = (self.board.feldman(*d), p.pairs.get(d)) else {
                continue;
            };
            if !feldman.verify_share(j as usize, s.expose()) {
                shares.push((*d, *s.expose(), *b.expose()));
                commitments.extend(self.carried_commitment(*d));
            }
        }
        // With nothing to complain about, the post is empty: it tells the board that this
        // player has spoken, so the phase can close once every qualified player has
        // ([`ComplaintBoard::all_posts_in`]) instead of waiting out its deadline.
        self.post(ComplaintPost::Complaint(Disclosure {
            session: *self.ceremony.id(),
            player: j,
            shares,
            commitments,
        }))
    }

    /// Reveals of the pairs sent again that did not verify.
    fn post_dispute(&mut self) -> Vec<Action<C>> {
        let Some(p) = &self.player else {
            return Vec::new();
        };
        if p.reveals.is_empty() {
            return Vec::new();
        }
        self.post(ComplaintPost::Dispute(Dispute {
            session: *self.ceremony.id(),
            player: p.index,
            reveals: p.reveals.iter().map(|(d, r)| (*d, *r)).collect(),
        }))
    }

    fn post_reconstruction(&mut self) -> Vec<Action<C>> {
        let Some(j) = self.qualified_player() else {
            return Vec::new();
        };
        let p = self.player.as_ref().expect("qualified player");
        let carry = self.board.is_designated_discloser(j);
        let failed: Vec<u32> = self.board.failed().map(|(d, _)| d).collect();
        let mut shares = Vec::new();
        let mut commitments = Vec::new();
        for d in failed {
            let Some((s, b)) = p.pairs.get(&d) else {
                continue;
            };
            shares.push((d, *s.expose(), *b.expose()));
            if carry {
                commitments.extend(self.carried_commitment(d));
            }
        }
        if shares.is_empty() {
            return Vec::new();
        }
        self.post(ComplaintPost::Reconstruction(Disclosure {
            session: *self.ceremony.id(),
            player: j,
            shares,
            commitments,
        }))
    }

    fn finish(&mut self) -> Vec<Action<C>> {
        self.done = true;
        let (output, exclusions) = match self.board.outcome().cloned() {
            Some(Outcome::Success { output, exclusions }) => (output, exclusions),
            Some(Outcome::Failure {
                qualified,
                exclusions,
                ..
            }) => {
                return vec![Action::Failed(Failure {
                    reason: FailureReason::Board,
                    qualified,
                    exclusions,
                })];
            }
            None => return Vec::new(),
        };
        let mut player_index = None;
        let mut secret_share = None;
        if let Some(j) = self.qualified_player() {
            let p = self.player.as_ref().expect("qualified player");
            let mut x = C::Scalar::ZERO;
            for (d, w) in output.qualified.iter().zip(&output.weights) {
                let s = match self.board.reconstructed(*d) {
                    Some(values) => values[j as usize + 1],
                    None => match p.pairs.get(d) {
                        Some((s, _)) => *s.expose(),
                        // Cannot happen for a qualified player: it holds a verified pair from
                        // every qualified dealer.
                        None => {
                            return vec![Action::Failed(Failure {
                                reason: FailureReason::MissingShare { dealer: *d },
                                qualified: output.qualified.clone(),
                                exclusions,
                            })];
                        }
                    },
                };
                x += *w * s;
            }
            if !share_matches::<C>(&x, &output.public_shares[j as usize]) {
                return vec![Action::Failed(Failure {
                    reason: FailureReason::ShareMismatch,
                    qualified: output.qualified.clone(),
                    exclusions,
                })];
            }
            player_index = Some(j);
            secret_share = Some(Secret::new(x));
        }
        vec![Action::Finished(Box::new(DkgOutput {
            session: *self.ceremony.id(),
            attempt: 0,
            public: output,
            player_index,
            secret_share,
            exclusions,
        }))]
    }
}

fn malformed<C: Curve>(why: String) -> Vec<Action<C>> {
    vec![Action::Observed(Observation::Malformed(why))]
}
