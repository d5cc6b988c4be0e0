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
//!    (f_i(x_j), f'_i(x_j))` encrypted with HPKE bound to (session, dealer, player, hash); the
//!    message is signed as a whole. A player accepts the pair if it opens `C_ij`
//!    (`s G + s' H = C_ij`) and `C_i` lies on a polynomial of degree `< t` (dual-code check with a
//!    Fiat-Shamir seed, as in [`crate::board`]). Commitments do not go on the board (seed 003,
//!    step 3), so a dealer could show different ones to different players.
//! 2. **Report** (posts). Every player posts, for each dealer it heard from, the hash and the
//!    dealer's signature on it, and which dealers' pairs verified; every other dealer is
//!    complained about (bad pair, or nothing received). Two different signed hashes of one dealer
//!    (in any reports) are self-contained proof of equivocation: the dealer is disqualified with
//!    both statements as evidence ([`verify_equivocation`]).
//! 3. **Justify** (posts). A dealer answers the complaints against it by posting its full
//!    commitment and the complainers' pairs in the clear (GJKR step 1(c)). A valid answer resolves
//!    a complaint: the player takes the revealed pair and the edge counts as valid. A missing or
//!    invalid answer, or a commitment other than the one the dealer signed, disqualifies it. A
//!    dealer with more than [`Params::max_reveals`](crate::params::Params::max_reveals) complaints
//!    is disqualified without answering, because answering would reveal too much (below).
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
//! 6. **Complain** (posts). A player whose check fails posts its pair `(s_ij, s'_ij)`, with the
//!    dealer's Pedersen commitment if the board does not have it yet. Since the pair opens `C_ij`
//!    (binding under the discrete logarithm of `H`), a pair that contradicts `F_ij` proves the
//!    dealer's fault; one that does not is a false complaint, the complainer's fault.
//! 7. **Reconstruct** (posts). For each dealer in `Q` that failed 5-6 (no post, bad post, proven
//!    complaint, points outside the subgroup), every qualified player posts its pair, the first
//!    `f + 1` qualified players also the commitment if it is missing. The board takes the `t`
//!    valid pairs of the lowest-numbered players (valid pairs revealed earlier count too) and
//!    interpolates `f_i`, whose contribution stays in the key: a dealer cannot bias the key by
//!    dropping out after seeing the others' values (seed 003 step 7, GJKR step 4(c)). It is still excluded for the
//!    future, with evidence.
//! 8. **Output**. Group key `sum_{i in Q} F_i0` (reconstructed dealers: `f_i(0) G`), public
//!    shares `Y_j = sum_i F_ij`, player share `x_j = sum_i s_ij` (reconstructed: `f_i(x_j)`), after
//!    a subgroup check of the sums as in [`crate::board`]; each player checks `x_j G = Y_j`.
//!
//! The justify phase is skipped when there is no complaint and the reconstruct phase when no
//! qualified dealer failed, so the happy path has four deadlines (deal, report, Feldman,
//! complain).
//!
//! # Secrecy bound and false complaints
//! A justification publishes pairs of complaining players. Those may be honest players whose deal
//! was lost, so with `f` corrupt players an honest dealer's polynomial stays hidden only if
//! `f + reveals <= t - 1`: at most `max_reveals = t - 1 - f` answers, the bound of the ack-or-reveal
//! variant. False complaints by corrupt players reveal only their own pairs, which they already
//! know. If `max_reveals >= f` (i.e. `t >= 2f + 1`, e.g. `n = 3f + 1`, `t = k = 2f + 1`), the at most
//! `f` corrupt players cannot push an honest dealer whose deals arrived over the bound: it answers
//! every complaint, stays qualified, and the complainers' edges count as valid (they keep their
//! shares; complaining only costs them reveals). If `max_reveals < f`, a coalition of more than
//! `max_reveals` corrupt players can disqualify any honest dealer by complaining together. That is
//! a liveness and fairness problem, not a secrecy or bias one: it happens before `Q` is fixed,
//! while the commitments hide everything, so the adversary learns nothing it could bias the key
//! with; but the ceremony may fall below the quorum and fail, and the adversary chooses which
//! honest dealers count. Honest complaints from lost messages count against the same bound.
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
//! - Complaints about deals are not publicly verifiable (the ciphertexts are not on the board,
//!   unlike a PVSS); they are resolved by the dealer revealing, so a network that drops deals costs
//!   honest dealers reveals, and [`Params::max_reveals`](crate::params::Params::max_reveals) may be
//!   exhausted by a lossy network. Beyond the tolerated faults, or with `max_reveals = 0`, false
//!   complainers alone can disqualify honest dealers this way. Deals are HPKE X25519;
//!   `keyquorum_crypto::verifiable_encrypt` is the encryption whose proven key reveals would let
//!   the board check a complaint itself (`docs/protocol.md`, "Complaints are not yet publicly
//!   verifiable").
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
//!   verifies the signature on a whole deal only when its pair fails, i.e. when it will complain:
//!   a pair that opens the dealer's signed commitment is the dealer's whatever the signature on
//!   the whole, and the statement inside the deal (which goes into the report) is verified in
//!   any case. Each degree check is an MSM of `n + 1` points plus
//!   `O(n^2)` field operations for its weights, so a player checking `n` dealers does `O(n^3)`
//!   field work, as in the ack-or-reveal variant. Reports carry 84 bytes per dealer heard from
//!   (about 8 KB at `n = 100`): the price of self-contained equivocation evidence with
//!   point-to-point commitments. Evidence is checked by [`verify_exclusion`].

pub mod board;
mod checks;
pub mod clique;
mod evidence;
pub mod messages;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use ff::Field;
use keyquorum_crypto::Curve;
use keyquorum_crypto::commit::EvalCommitment;
use keyquorum_crypto::encrypt::{self, Ciphertext, EncryptionSecretKey, ShareAad};
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::secret::Secret;
use rand_chacha::ChaCha20Rng;

pub use board::{
    ComplaintBoard, ComplaintBoardError, ComplaintBoardPhase, Qualification, verify_equivocation,
};
pub use evidence::verify_exclusion;
use messages::{
    ComplaintPost, Deal, Disclosure, FeldmanPost, HeardEntry, Justification, PAIR_LEN, Report,
    SignedComplaintPost, SignedPedersen, seal_deal,
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
    reported: bool,
}

/// One participant of a complaint-and-reconstruct ceremony.
///
/// Like [`AckRevealParticipant`](crate::ackreveal::AckRevealParticipant) it has no I/O, clock or randomness of
/// its own: all randomness comes from the seed, so replaying the inputs reproduces the outputs.
pub struct ComplaintParticipant<C: Curve> {
    ceremony: Arc<Ceremony<C>>,
    identity: IdentityKeypair,
    encryption: EncryptionSecretKey,
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
    /// A participant with its keys, its previous share when it deals in a reshare, and a secret
    /// 32-byte seed for all its randomness.
    pub fn new(
        ceremony: Arc<Ceremony<C>>,
        identity: IdentityKeypair,
        encryption: EncryptionSecretKey,
        old_share: Option<Secret<C::Scalar>>,
        seed: [u8; 32],
    ) -> Result<Self, ParticipantError> {
        let Seating {
            dealer,
            player,
            old_share,
            mut rng,
        } = Seating::new(&ceremony, identity.public(), old_share, seed)?;
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
            reported: false,
        });
        Ok(ComplaintParticipant {
            board: ComplaintBoard::new(ceremony.clone()),
            ceremony,
            identity,
            encryption,
            rng,
            dealer,
            player,
            started: false,
            done: false,
        })
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
            let share = Secret::new(d.f.evaluate(&xs[j]));
            let blind = Secret::new(d.blind.evaluate(&xs[j]));
            let deal = seal_deal(
                &self.identity,
                &session,
                &d.signed,
                (j as u32, &p.encryption),
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
            // The report is posted; a late deal is answered by the justification instead.
            return malformed("deal after the report".into());
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
        // on the whole, so that signature matters only for a deal this player will complain about:
        // it is checked then, and an unsigned deal is dropped instead.
        if pair.is_none() && !checks::deal_signature(&self.ceremony, &deal) {
            return malformed("deal signature does not verify".into());
        }
        if pair.is_none() && replaces {
            return vec![Action::Observed(Observation::BadShare {
                dealer: deal.dealer,
            })];
        }
        let p = self.player.as_mut().expect("checked above");
        p.heard.insert(
            deal.dealer,
            Heard {
                commitment: deal.commitment,
                hash: statement.hash,
                signature: statement.signature,
            },
        );
        match pair {
            Some(pair) => {
                p.pairs.insert(deal.dealer, pair);
                Vec::new()
            }
            None => vec![Action::Observed(Observation::BadShare {
                dealer: deal.dealer,
            })],
        }
    }

    /// The pair in a deal, if the commitment is well formed and the pair opens it.
    fn open_deal(&self, deal: &Deal<C>, hash: &[u8; 32]) -> Option<Pair<C>> {
        let j = self.player.as_ref()?.index;
        let c = &deal.commitment;
        if !checks::degree(&self.ceremony, deal.dealer, c, hash) {
            return None;
        }
        if let Some(r) = self.ceremony.reshare()
            && r.public_shares[deal.dealer as usize] != *c.constant()
        {
            return None;
        }
        let aad = ShareAad {
            session_id: deal.session,
            dealer: deal.dealer,
            recipient: j,
            commitment_hash: *hash,
        };
        let plaintext = Ciphertext::from_bytes(&deal.ciphertext, PAIR_LEN)
            .and_then(|ct| encrypt::open(&self.encryption, &aad, &ct))
            .ok()?;
        let bytes = plaintext.expose();
        if bytes.len() != PAIR_LEN {
            return None;
        }
        let s = Secret::new(C::decode_scalar(&bytes[..32]).ok()?);
        let b = Secret::new(C::decode_scalar(&bytes[32..]).ok()?);
        c.verify_pedersen_share(j as usize, s.expose(), b.expose())
            .then_some((s, b))
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
            ComplaintBoardPhase::Feldman => {
                self.adopt_justified_pairs();
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

    fn post_report(&mut self) -> Vec<Action<C>> {
        let Some(p) = &mut self.player else {
            return Vec::new();
        };
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
        };
        self.post(ComplaintPost::Report(report))
    }

    fn post_justification(&mut self) -> Vec<Action<C>> {
        let Some(d) = &self.dealer else {
            return Vec::new();
        };
        let complainers = self.board.complaints_against(d.index);
        if self.board.is_disqualified(d.index)
            || complainers.is_empty()
            || complainers.len() > self.ceremony.params().max_reveals()
        {
            return Vec::new();
        }
        let xs = self.ceremony.player_indices();
        let shares = complainers
            .iter()
            .map(|j| {
                let x = &xs[*j as usize];
                (*j, d.f.evaluate(x), d.blind.evaluate(x))
            })
            .collect();
        self.post(ComplaintPost::Justification(Justification {
            session: *self.ceremony.id(),
            dealer: d.index,
            commitment: d.signed.commitment.clone(),
            shares,
        }))
    }

    /// Takes the pairs that dealers revealed in answer to this player's complaints.
    fn adopt_justified_pairs(&mut self) {
        let Some(p) = &mut self.player else {
            return;
        };
        for d in 0..self.ceremony.dealer_count() as u32 {
            if p.pairs.contains_key(&d) {
                continue;
            }
            if let Some((s, b)) = self.board.justified_pair(d, p.index) {
                p.pairs.insert(d, (Secret::new(s), Secret::new(b)));
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
        for d in self.qualified_dealers() {
            let (Some(feldman), Some((s, b))) = (self.board.feldman(d), p.pairs.get(&d)) else {
                continue;
            };
            if !feldman.verify_share(j as usize, s.expose()) {
                shares.push((d, *s.expose(), *b.expose()));
                commitments.extend(self.carried_commitment(d));
            }
        }
        if shares.is_empty() {
            return Vec::new();
        }
        self.post(ComplaintPost::Complaint(Disclosure {
            session: *self.ceremony.id(),
            player: j,
            shares,
            commitments,
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
