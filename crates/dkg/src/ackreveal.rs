//! The ack-or-reveal participant (seed 001, "The view change process"), as a sans-IO state
//! machine.
//!
//! A participant may be a dealer, a player, or both (a fresh key: every member is both; a
//! reshare: the old committee deals to the new one). It consumes [`Input`]s: direct messages,
//! board posts in chain order, and phase deadlines in chain order; it produces [`Action`]s:
//! messages to send, posts to submit, and finally the output. It has no clock, no I/O and no
//! randomness of its own: randomness comes from a seed given at construction, so replaying the
//! same inputs reproduces the same outputs byte for byte. That is also how it recovers from a
//! crash: persist the seed and every input before acting on it, and after a restart replay them;
//! a restarted dealer can never send two different commitments or shares.
//!
//! Steps (seed 001 numbering):
//! - *Contribute*: a dealer draws `f` of degree `t - 1` (when resharing, with `f(0)` its old
//!   share) and posts `E = (f(0) G, f(x_1) G, ..., f(x_n) G)`.
//! - *Share*: it sends each player `f(x_j)` encrypted with HPKE, bound to (session, dealer, player,
//!   commitment hash). A player that receives a share matching `E_j` signs an ack over
//!   (session, dealer, commitment hash) and returns it.
//! - *Publish*: at the share deadline the dealer posts the aggregate of the acks and, if the
//!   non-ackers are few enough for secrecy, their shares in the clear. A dealer that every
//!   player acked posts this log as soon as the last ack verifies, still in the share phase: it
//!   is final, and the share phase can then end before its deadline.
//! - *Wait*: at the publish deadline everyone computes the same outcome from the board
//!   ([`crate::board`]); a player's final share is the (weighted) sum of its shares from the
//!   qualified dealers, taken from its deals or from the board's reveals. It is checked against
//!   the player's public key share; a mismatch is a [`FailureReason::ShareMismatch`] and the
//!   share is not released.
//!
//! A deal or ack is read only if the transport authenticated its claimed dealer or player as
//! the sender ([`Input::Message`]); deals and acks wait as bounded candidates until one verifies,
//! so a bad one never blocks the real one (`docs/protocol.md`, "Direct messages and their
//! senders").

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use ff::Field;
use keyquorum_crypto::Curve;
use keyquorum_crypto::commit::{EvalCommitment, batch_verify_eval};
use keyquorum_crypto::encrypt::{self, Ciphertext, EncryptionSecretKey, ShareAad};
use keyquorum_crypto::hash::tagged_hash;
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::secret::Secret;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use rayon::prelude::*;

use crate::board::{Board, BoardPhase, Outcome, Role, share_matches};
use crate::ceremony::Ceremony;
use crate::identity::{self, IdentityKeypair, IdentityPublicKey, IdentitySignature, Purpose};
use crate::messages::{
    Ack, Contribution, Deal, Direct, Post, Publication, SignedPost, ack_payload,
};
use crate::participant::{
    Action, DkgOutput, Failure, FailureReason, Input, Observation, Participant, ParticipantError,
    Seating, check_sender,
};

/// Distinct unverified ack signatures kept per player. Only the player itself gets past the
/// sender check with an ack in its name, and an honest player's ack is deterministic (one
/// signature, resent as the same bytes), so more than one candidate means the player itself
/// misbehaves. When the list is full the candidates are verified one by one: a valid one is kept
/// alone and settles the player, invalid ones are dropped. The real ack is therefore never lost,
/// memory stays at this many signatures per player, and a flood costs its sender one
/// verification per this many messages.
const MAX_ACK_CANDIDATES: usize = 4;

/// Distinct deals kept per dealer while its contribution is not on the board yet (they cannot be
/// checked before). Only the dealer itself gets past the sender check with a deal in its name and
/// an honest dealer sends one deal per player (a restart resends the same bytes), so its real
/// deal is always among the first; a dealer that sends more can only crowd out its own. Memory
/// stays at this many ciphertexts per dealer.
const MAX_PENDING_DEALS: usize = 4;

struct DealerRole<C: Curve> {
    index: u32,
    poly: Polynomial<C::Scalar>,
    commitment: EvalCommitment<C>,
    hash: [u8; 32],
    /// Ack candidates per player (see [`MAX_ACK_CANDIDATES`]).
    acks: BTreeMap<u32, Vec<IdentitySignature>>,
    /// Players whose single candidate is known to verify.
    settled: BTreeSet<u32>,
    published_attempt: Option<u32>,
    /// The log posted during the share phase, if any (see `publish_early`).
    early_log: Option<Vec<u8>>,
    /// Early publication was tried and an ack did not verify.
    early_failed: bool,
}

struct PlayerRole<C: Curve> {
    index: u32,
    shares: BTreeMap<u32, Secret<C::Scalar>>,
    /// Deals that arrived before their dealer's contribution (see [`MAX_PENDING_DEALS`]). A deal
    /// that fails its check is dropped, not remembered, so a later good one from the same dealer
    /// still counts.
    pending: BTreeMap<u32, Vec<Deal>>,
}

/// One participant of an ack-or-reveal ceremony.
pub struct AckRevealParticipant<C: Curve> {
    ceremony: Arc<Ceremony<C>>,
    identity: IdentityKeypair,
    encryption: EncryptionSecretKey,
    rng: ChaCha20Rng,
    board: Board<C>,
    dealer: Option<DealerRole<C>>,
    player: Option<PlayerRole<C>>,
    started: bool,
    done: bool,
}

impl<C: Curve> core::fmt::Debug for AckRevealParticipant<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AckRevealParticipant")
            .field("identity", self.identity.public())
            .field("dealer", &self.dealer.as_ref().map(|d| d.index))
            .field("player", &self.player.as_ref().map(|p| p.index))
            .field("phase", &self.board.phase())
            .finish_non_exhaustive()
    }
}

impl<C: Curve> Participant<C> for AckRevealParticipant<C> {
    fn handle(&mut self, input: Input) -> Vec<Action<C>> {
        AckRevealParticipant::handle(self, input)
    }

    fn identity(&self) -> &IdentityPublicKey {
        self.identity.public()
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

impl<C: Curve> AckRevealParticipant<C> {
    /// A participant with its keys, its previous share when it deals in a reshare, and a secret
    /// 32-byte seed for all its randomness.
    pub fn new(
        ceremony: Arc<Ceremony<C>>,
        identity: IdentityKeypair,
        encryption: EncryptionSecretKey,
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
        encryption: EncryptionSecretKey,
        seed: [u8; 32],
    ) -> Result<Self, ParticipantError> {
        let seating = Seating::player_only(&ceremony, identity.public(), seed)?;
        Ok(Self::seated(ceremony, identity, encryption, seating))
    }

    fn seated(
        ceremony: Arc<Ceremony<C>>,
        identity: IdentityKeypair,
        encryption: EncryptionSecretKey,
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
                let constant = old_share.as_ref().map(|s| *s.expose());
                let poly = Polynomial::random(ceremony.t() - 1, constant, &mut rng);
                let commitment = EvalCommitment::feldman(&poly, ceremony.player_indices());
                let hash = crate::messages::commitment_hash::<C>(ceremony.id(), index, &commitment);
                Some(DealerRole {
                    index,
                    poly,
                    commitment,
                    hash,
                    acks: BTreeMap::new(),
                    settled: BTreeSet::new(),
                    published_attempt: None,
                    early_log: None,
                    early_failed: false,
                })
            }
        };
        let player = player.map(|index| PlayerRole {
            index,
            shares: BTreeMap::new(),
            pending: BTreeMap::new(),
        });
        AckRevealParticipant {
            board: Board::new(ceremony.clone()),
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
    pub fn board(&self) -> &Board<C> {
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

    /// Dealers whose shares this player holds (for reports).
    pub fn received_from(&self) -> Vec<u32> {
        self.player
            .as_ref()
            .map(|p| p.shares.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Players whose acks this dealer holds (for reports).
    pub fn acked_by(&self) -> Vec<u32> {
        self.dealer
            .as_ref()
            .map(|d| d.acks.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Feeds one input; returns the actions to take, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Action<C>> {
        let actions = self.step(input);
        self.route(actions)
    }

    /// Returns `actions` for the driver, except messages to oneself, which are handled at once
    /// (in order, after the actions that produced them) instead of being sent.
    fn route(&mut self, actions: Vec<Action<C>>) -> Vec<Action<C>> {
        let mut out = Vec::new();
        let mut queue = VecDeque::new();
        let mut next = actions;
        loop {
            for a in next {
                match a {
                    Action::Send { to, payload } if &to == self.identity.public() => {
                        queue.push_back(Input::Message { from: to, payload })
                    }
                    other => out.push(other),
                }
            }
            match queue.pop_front() {
                Some(input) => next = self.step(input),
                None => return out,
            }
        }
    }

    fn step(&mut self, input: Input) -> Vec<Action<C>> {
        if self.done {
            return Vec::new();
        }
        match input {
            Input::Start => self.start(),
            Input::Message { from, payload } => {
                let direct = match Direct::decode(&payload) {
                    Ok(d) => d,
                    Err(e) => return vec![Action::Observed(Observation::Malformed(e.to_string()))],
                };
                let author = match &direct {
                    Direct::Deal(d) => (Role::Dealer, d.dealer),
                    Direct::Ack(a) => (Role::Player, a.player),
                };
                if let Err(o) = check_sender(&self.ceremony, &from, author.0, author.1) {
                    return vec![Action::Observed(o)];
                }
                match direct {
                    Direct::Deal(d) => self.on_deal(d),
                    Direct::Ack(a) => self.on_ack(a),
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
        let post = Post::Contribution(Contribution {
            session,
            dealer: d.index,
            commitment: d.commitment.clone(),
        });
        let mut out = vec![Action::Post(self.sign_post(post))];
        // Deals can go out at once: players hold them until the commitment is on the board.
        // Each seal draws from its own generator, seeded in player order from the participant's,
        // so the ciphertexts are the same whatever the number of threads sealing them.
        let players = self.ceremony.players();
        let seeds: Vec<zeroize::Zeroizing<[u8; 32]>> = players
            .iter()
            .map(|_| {
                let mut seed = zeroize::Zeroizing::new([0u8; 32]);
                self.rng.fill_bytes(seed.as_mut());
                seed
            })
            .collect();
        let d = self.dealer.as_ref().expect("dealer role checked above");
        let indices = self.ceremony.player_indices();
        let deals: Vec<Action<C>> = players
            .par_iter()
            .zip(seeds.par_iter())
            .enumerate()
            .map(|(j, (p, seed))| {
                let share = Secret::new(d.poly.evaluate(&indices[j]));
                let aad = ShareAad {
                    session_id: session,
                    dealer: d.index,
                    recipient: j as u32,
                    commitment_hash: d.hash,
                };
                let plaintext = zeroize::Zeroizing::new(C::encode_scalar(share.expose()));
                let mut rng = ChaCha20Rng::from_seed(**seed);
                let ct = encrypt::seal(&p.encryption, &aad, plaintext.as_slice(), &mut rng);
                let deal = Direct::Deal(Deal {
                    session,
                    dealer: d.index,
                    player: j as u32,
                    ciphertext: ct.to_bytes(),
                });
                Action::Send {
                    to: p.identity.clone(),
                    payload: deal.encode(),
                }
            })
            .collect();
        out.extend(deals);
        out
    }

    fn sign_post(&self, post: Post<C>) -> Vec<u8> {
        let signature = self.identity.sign(Purpose::Post, &post.signed_payload());
        SignedPost { post, signature }.encode()
    }

    fn on_deal(&mut self, deal: Deal) -> Vec<Action<C>> {
        let Some(p) = &mut self.player else {
            return vec![Action::Observed(Observation::Malformed(
                "deal to a non-player".into(),
            ))];
        };
        if deal.session != *self.ceremony.id()
            || deal.player != p.index
            || deal.dealer as usize >= self.ceremony.dealer_count()
        {
            return vec![Action::Observed(Observation::Malformed(
                "deal for another session, player or dealer".into(),
            ))];
        }
        if p.shares.contains_key(&deal.dealer) {
            return Vec::new();
        }
        if self.board.contribution(deal.dealer).is_none() {
            let waiting = p.pending.entry(deal.dealer).or_default();
            if waiting.contains(&deal) {
                return Vec::new();
            }
            if waiting.len() >= MAX_PENDING_DEALS {
                return vec![Action::Observed(Observation::Malformed(format!(
                    "more than {MAX_PENDING_DEALS} different deals from dealer {} before its \
                     contribution",
                    deal.dealer
                )))];
            }
            waiting.push(deal);
            return Vec::new();
        }
        self.process_deal(deal)
    }

    fn process_deal(&mut self, deal: Deal) -> Vec<Action<C>> {
        self.process_deals(vec![deal])
            .into_iter()
            .map(|(_, a)| a)
            .collect()
    }

    /// Checks the deals that waited for their dealers' contributions (one list per dealer, in
    /// arrival order): in rounds, the next deal of every dealer that has no valid share yet, until
    /// one verifies or none is left. Usually every list holds one deal and this is one batch.
    /// Returns each dealer's actions in the order one list alone would produce them.
    fn process_waiting(&mut self, lists: Vec<Vec<Deal>>) -> BTreeMap<u32, Vec<Action<C>>> {
        let mut lists: Vec<VecDeque<Deal>> = lists.into_iter().map(VecDeque::from).collect();
        let mut out: BTreeMap<u32, Vec<Action<C>>> = BTreeMap::new();
        loop {
            let round: Vec<Deal> = lists.iter_mut().filter_map(VecDeque::pop_front).collect();
            if round.is_empty() {
                return out;
            }
            for (dealer, a) in self.process_deals(round) {
                out.entry(dealer).or_default().push(a);
            }
            let Some(p) = &self.player else {
                return out;
            };
            lists.retain(|l| l.front().is_some_and(|d| !p.shares.contains_key(&d.dealer)));
        }
    }

    /// Opens and checks deals whose dealers' contributions are on the board, and acks the valid
    /// ones, in dealer order.
    ///
    /// The shares are checked in one batch (`batch_verify_eval`: one MSM over the dealers'
    /// points, one constant-time multiplication); if the batch fails, each share is checked on
    /// its own, so exactly the dealers whose shares do not match are named, as with one-by-one
    /// checks. The batch's weights are derived from the deals and commitments, so the outcome
    /// is a function of the inputs alone.
    fn process_deals(&mut self, mut deals: Vec<Deal>) -> Vec<(u32, Action<C>)> {
        deals.retain(|d| self.board.contribution(d.dealer).is_some());
        deals.sort_by_key(|d| d.dealer);
        deals.dedup_by_key(|d| d.dealer);
        if deals.is_empty() {
            return Vec::new();
        }
        let Some(p) = self.player.as_ref() else {
            return Vec::new();
        };
        let player = p.index;
        let board = &self.board;
        let encryption = &self.encryption;
        // Open every deal (HPKE, in parallel).
        let opened: Vec<Option<Secret<C::Scalar>>> = deals
            .par_iter()
            .map(|deal| {
                let (_, hash) = board.contribution(deal.dealer)?;
                let aad = ShareAad {
                    session_id: deal.session,
                    dealer: deal.dealer,
                    recipient: player,
                    commitment_hash: *hash,
                };
                Ciphertext::from_bytes(&deal.ciphertext, 32)
                    .and_then(|ct| encrypt::open(encryption, &aad, &ct))
                    .ok()
                    .and_then(|pt| C::decode_scalar(pt.expose()).ok())
                    .map(Secret::new)
            })
            .collect();
        let mut valid = vec![false; deals.len()];
        let candidates: Vec<usize> = (0..deals.len()).filter(|i| opened[*i].is_some()).collect();
        if !candidates.is_empty() {
            let items: Vec<(&EvalCommitment<C>, C::Scalar)> = candidates
                .iter()
                .map(|i| {
                    let (c, _) = board
                        .contribution(deals[*i].dealer)
                        .expect("deals without a contribution were dropped");
                    (c, *opened[*i].as_ref().expect("candidate").expose())
                })
                .collect();
            let mut seed_input = Vec::with_capacity(candidates.len() * 36);
            for i in &candidates {
                let (_, hash) = board.contribution(deals[*i].dealer).expect("checked");
                seed_input.extend_from_slice(&deals[*i].dealer.to_be_bytes());
                seed_input.extend_from_slice(hash);
                seed_input.extend_from_slice(&deals[*i].ciphertext);
            }
            let seed = tagged_hash(
                "keyquorum/share-batch/v1",
                &[self.ceremony.id(), &player.to_be_bytes(), &seed_input],
            );
            let mut rng = ChaCha20Rng::from_seed(seed);
            let bad: BTreeSet<usize> = match batch_verify_eval(player as usize, &items, &mut rng) {
                Ok(()) => BTreeSet::new(),
                Err(bad) => bad.into_iter().collect(),
            };
            for (pos, i) in candidates.iter().enumerate() {
                valid[*i] = !bad.contains(&pos);
            }
        }
        // Acks for the valid shares (signing in parallel), observations for the others.
        let identity = &self.identity;
        let acks: Vec<Option<Action<C>>> = deals
            .par_iter()
            .zip(valid.par_iter())
            .map(|(deal, ok)| {
                if !ok {
                    return None;
                }
                let (_, hash) = board.contribution(deal.dealer)?;
                let signature = identity.sign_remembered(
                    Purpose::Ack,
                    &ack_payload(&deal.session, deal.dealer, hash),
                    self.ceremony.signed_hashes(),
                );
                let ack = Direct::Ack(Ack {
                    session: deal.session,
                    dealer: deal.dealer,
                    player,
                    commitment_hash: *hash,
                    signature,
                });
                Some(Action::Send {
                    to: self.ceremony.dealers()[deal.dealer as usize]
                        .identity
                        .clone(),
                    payload: ack.encode(),
                })
            })
            .collect();
        let p = self.player.as_mut().expect("only players process deals");
        let mut out = Vec::with_capacity(deals.len());
        for ((deal, share), ack) in deals.iter().zip(opened).zip(acks) {
            match (share, ack) {
                (Some(share), Some(ack)) => {
                    p.shares.insert(deal.dealer, share);
                    out.push((deal.dealer, ack));
                }
                // Not remembered: a later deal from the same dealer is checked on its own.
                _ => {
                    out.push((
                        deal.dealer,
                        Action::Observed(Observation::BadShare {
                            dealer: deal.dealer,
                        }),
                    ));
                }
            }
        }
        out
    }

    fn on_ack(&mut self, ack: Ack) -> Vec<Action<C>> {
        let Some(d) = &mut self.dealer else {
            return vec![Action::Observed(Observation::Malformed(
                "ack to a non-dealer".into(),
            ))];
        };
        if ack.session != *self.ceremony.id()
            || ack.dealer != d.index
            || ack.player as usize >= self.ceremony.n()
            || ack.commitment_hash != d.hash
        {
            return vec![Action::Observed(Observation::Malformed(
                "ack for another session, dealer or commitment".into(),
            ))];
        }
        // Acks are checked in aggregate at publish time (one pairing instead of one per ack).
        // The sender check leaves only the player itself able to send acks in its name; a
        // second, different one is kept as another candidate, and a full list is sorted out at
        // once (see `MAX_ACK_CANDIDATES`).
        if d.settled.contains(&ack.player) {
            return Vec::new();
        }
        let entry = d.acks.entry(ack.player).or_default();
        if entry.contains(&ack.signature) {
            return Vec::new();
        }
        if entry.len() < MAX_ACK_CANDIDATES {
            entry.push(ack.signature);
            return self.publish_early();
        }
        let key = &self.ceremony.players()[ack.player as usize].identity;
        let payload = ack_payload(self.ceremony.id(), d.index, &d.hash);
        match entry.iter().find(|s| key.verify(Purpose::Ack, &payload, s)) {
            Some(good) => {
                *entry = vec![*good];
                d.settled.insert(ack.player);
            }
            None => *entry = vec![ack.signature],
        }
        vec![Action::Observed(Observation::BadAck { player: ack.player })]
    }

    /// In the share phase of the first attempt, a dealer whose every player acked has its final
    /// log: it posts it now instead of at the share deadline (the board accepts it, and the
    /// share phase can then close as soon as every dealer's log is in). The log is the one the
    /// deadline would produce: all acks, no reveals.
    fn publish_early(&mut self) -> Vec<Action<C>> {
        let Some(d) = &self.dealer else {
            return Vec::new();
        };
        if self.board.phase() != BoardPhase::Share
            || self.board.attempt() != 0
            || d.published_attempt.is_some()
            || d.early_failed
            || self.board.contribution(d.index).is_none()
            || d.acks.len() < self.ceremony.n()
        {
            return Vec::new();
        }
        let active = self.board.active_players();
        let (valid, observed) = self.verified_acks(&active);
        if valid.len() < active.len() {
            // A bad ack among the candidates: publish at the deadline as usual. Trying again on
            // every later ack would let a flood of bad acks cost a pairing per player each.
            if let Some(d) = &mut self.dealer {
                d.early_failed = true;
            }
            return observed;
        }
        self.post_log(0, &active, valid, observed)
    }

    /// The valid ack signature of each player that acked, verifying in aggregate first and one by
    /// one only if the aggregate fails.
    fn verified_acks(&self, active: &[u32]) -> (BTreeMap<u32, IdentitySignature>, Vec<Action<C>>) {
        let Some(d) = &self.dealer else {
            return (BTreeMap::new(), Vec::new());
        };
        let payload = ack_payload(self.ceremony.id(), d.index, &d.hash);
        let players = self.ceremony.players();
        let candidates: Vec<(u32, IdentitySignature)> = active
            .iter()
            .filter_map(|j| d.acks.get(j).and_then(|v| v.first()).map(|s| (*j, *s)))
            .collect();
        let all_single = active
            .iter()
            .all(|j| d.acks.get(j).is_none_or(|v| v.len() <= 1));
        if all_single && !candidates.is_empty() {
            let sigs: Vec<IdentitySignature> = candidates.iter().map(|(_, s)| *s).collect();
            let keys: Vec<&IdentityPublicKey> = candidates
                .iter()
                .map(|(j, _)| &players[*j as usize].identity)
                .collect();
            if let Some(agg) = identity::aggregate(&sigs)
                && identity::verify_aggregate(&keys, Purpose::Ack, &payload, &agg)
            {
                return (candidates.into_iter().collect(), Vec::new());
            }
        }
        let mut good = BTreeMap::new();
        let mut observed = Vec::new();
        for j in active {
            let Some(sigs) = d.acks.get(j) else { continue };
            let key = &players[*j as usize].identity;
            match sigs.iter().find(|s| key.verify(Purpose::Ack, &payload, s)) {
                Some(s) => {
                    good.insert(*j, *s);
                }
                None => observed.push(Action::Observed(Observation::BadAck { player: *j })),
            }
        }
        (good, observed)
    }

    /// Feeds several board posts in board order with exactly the effect of feeding each as
    /// [`Input::BoardPost`] in turn: the same state and the same actions in the same order. The
    /// posts are decoded in parallel and their signatures verified in one batch
    /// ([`crate::preverify`]); deals waiting for the contributions among them are checked in one
    /// batch and their acks put where one-by-one feeding puts them, after their contribution.
    ///
    /// One-by-one feeding checks a dealer's waiting deals as soon as its contribution is
    /// applied, and handles this participant's messages to itself (acks, which may post its
    /// log early) before the next post. So a later post of a dealer whose deals wait (an
    /// equivocating contribution, which disqualifies it) or of this participant's own dealer
    /// position is applied only after that work is done: the batch is cut there.
    pub fn handle_board_posts(&mut self, posts: &[Vec<u8>]) -> Vec<Action<C>> {
        if self.done {
            return Vec::new();
        }
        let n = self.ceremony.n();
        let decoded: Vec<Result<SignedPost<C>, String>> = posts
            .par_iter()
            .map(|b| SignedPost::<C>::decode(b, n).map_err(|e| e.to_string()))
            .collect();
        let ok: Vec<&SignedPost<C>> = decoded.iter().filter_map(|d| d.as_ref().ok()).collect();
        crate::preverify::preverify_posts(&self.ceremony, &ok);
        // Each post's actions (before routing), and the contributions whose waiting deals are
        // still to be checked: (post position, dealer, deals).
        let mut segments: Vec<Vec<Action<C>>> = Vec::with_capacity(decoded.len());
        let mut ready: Vec<(usize, u32, Vec<Deal>)> = Vec::new();
        let mut out = Vec::new();
        let mut routed = 0;
        let own = self.dealer.as_ref().map(|d| d.index);
        for (pos, d) in decoded.into_iter().enumerate() {
            let signed = match d {
                Ok(s) => s,
                Err(e) => {
                    segments.push(vec![Action::Observed(Observation::Refused(e))]);
                    continue;
                }
            };
            let dealer = signed.post.dealer();
            // The earlier posts' deferred work must be done before a post that could change
            // what it sees: a post of a dealer whose deals wait to be checked, and a post of this
            // participant's own dealer position (its acks to itself look at its contribution).
            if ready.iter().any(|(_, d, _)| *d == dealer) || Some(dealer) == own {
                self.settle(&mut ready, &mut segments, &mut routed, &mut out);
            }
            let (accepted, observed) = self.apply_post(&signed);
            segments.push(observed.into_iter().collect());
            if accepted
                && matches!(signed.post, Post::Contribution(_))
                && let Some(p) = &mut self.player
                && let Some(deals) = p.pending.remove(&dealer)
            {
                ready.push((pos, dealer, deals));
            }
        }
        self.settle(&mut ready, &mut segments, &mut routed, &mut out);
        out
    }

    /// Completes the segments not routed yet (checks the waiting deals of `ready`) and routes
    /// them in order, as one-by-one feeding routes each post's actions before the next post.
    fn settle(
        &mut self,
        ready: &mut Vec<(usize, u32, Vec<Deal>)>,
        segments: &mut [Vec<Action<C>>],
        routed: &mut usize,
        out: &mut Vec<Action<C>>,
    ) {
        self.check_ready(ready, segments);
        for segment in &mut segments[*routed..] {
            out.extend(self.route(std::mem::take(segment)));
        }
        *routed = segments.len();
    }

    /// Checks the waiting deals of `ready` in one batch and appends each dealer's actions to the
    /// segment of its contribution.
    fn check_ready(
        &mut self,
        ready: &mut Vec<(usize, u32, Vec<Deal>)>,
        segments: &mut [Vec<Action<C>>],
    ) {
        if ready.is_empty() {
            return;
        }
        let lists = ready
            .iter_mut()
            .map(|(_, _, d)| std::mem::take(d))
            .collect();
        let mut by_dealer = self.process_waiting(lists);
        for (pos, dealer, _) in ready.drain(..) {
            if let Some(actions) = by_dealer.remove(&dealer) {
                segments[pos].extend(actions);
            }
        }
    }

    /// Applies a decoded post to the board; whether it was accepted, and the observation if not.
    fn apply_post(&mut self, signed: &SignedPost<C>) -> (bool, Option<Action<C>>) {
        match self.board.apply(signed) {
            Ok(()) => (true, None),
            Err(e) => (
                false,
                Some(Action::Observed(Observation::Refused(e.to_string()))),
            ),
        }
    }

    fn on_board_post(&mut self, bytes: &[u8]) -> Vec<Action<C>> {
        let signed = match SignedPost::<C>::decode(bytes, self.ceremony.n()) {
            Ok(s) => s,
            Err(e) => return vec![Action::Observed(Observation::Refused(e.to_string()))],
        };
        let is_contribution = matches!(signed.post, Post::Contribution(_));
        let dealer = signed.post.dealer();
        if let Err(e) = self.board.apply(&signed) {
            return vec![Action::Observed(Observation::Refused(e.to_string()))];
        }
        if is_contribution
            && let Some(p) = &mut self.player
            && let Some(deals) = p.pending.remove(&dealer)
        {
            return self
                .process_waiting(vec![deals])
                .into_values()
                .flatten()
                .collect();
        }
        Vec::new()
    }

    fn on_deadline(&mut self) -> Vec<Action<C>> {
        self.board.advance();
        match self.board.phase() {
            // Every ack may be in before the contribute phase ends.
            BoardPhase::Share => self.publish_early(),
            BoardPhase::Publish => self.publish(),
            BoardPhase::Done => self.finish(),
            BoardPhase::Contribute => Vec::new(),
        }
    }

    fn publish(&mut self) -> Vec<Action<C>> {
        let attempt = self.board.attempt();
        let Some(d) = &self.dealer else {
            return Vec::new();
        };
        // A disqualified dealer has nothing left to post: the board would refuse it, and on a
        // chain the refusal still costs a transaction.
        if !self.board.is_active_dealer(d.index) || self.board.contribution(d.index).is_none() {
            return Vec::new();
        }
        if d.published_attempt == Some(attempt) {
            // A log posted early but not on the board when the share phase ended is posted
            // again, byte for byte (a copy that lands twice is refused as a duplicate).
            if self.board.publication(d.index).is_none()
                && let Some(bytes) = &d.early_log
            {
                return vec![Action::Post(bytes.clone())];
            }
            return Vec::new();
        }
        let active = self.board.active_players();
        let (valid_acks, out) = self.verified_acks(&active);
        self.post_log(attempt, &active, valid_acks, out)
    }

    /// Posts the log of `attempt`: the valid acks, and the reveals of the other active players
    /// if they stay within the secrecy bound.
    fn post_log(
        &mut self,
        attempt: u32,
        active: &[u32],
        valid_acks: BTreeMap<u32, IdentitySignature>,
        mut out: Vec<Action<C>>,
    ) -> Vec<Action<C>> {
        let Some(d) = self.dealer.as_ref() else {
            return out;
        };
        let acks: Vec<u32> = valid_acks.keys().copied().collect();
        let missing: Vec<u32> = active
            .iter()
            .copied()
            .filter(|j| !valid_acks.contains_key(j))
            .collect();
        // Reveal only within the secrecy bound; otherwise publish acks alone and let the next
        // attempt drop the unresponsive players.
        let reveals = if missing.len() <= self.ceremony.params().max_reveals() {
            missing
                .iter()
                .map(|j| {
                    (
                        *j,
                        d.poly
                            .evaluate(&self.ceremony.player_indices()[*j as usize]),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let sigs: Vec<IdentitySignature> = acks.iter().map(|j| valid_acks[j]).collect();
        let ack_signature = if sigs.is_empty() {
            None
        } else {
            identity::aggregate(&sigs)
        };
        let publication = Publication {
            session: *self.ceremony.id(),
            attempt,
            dealer: d.index,
            commitment_hash: d.hash,
            acks,
            ack_signature,
            reveals,
        };
        let bytes = self.sign_post(Post::Publication(publication));
        if let Some(d) = &mut self.dealer {
            d.published_attempt = Some(attempt);
            if self.board.phase() == BoardPhase::Share {
                d.early_log = Some(bytes.clone());
            }
        }
        out.push(Action::Post(bytes));
        out
    }

    fn finish(&mut self) -> Vec<Action<C>> {
        self.done = true;
        match self.board.outcome().cloned() {
            Some(Outcome::Success { output, exclusions }) => {
                let mut share = None;
                let mut player_index = None;
                if let Some(p) = &self.player
                    && self.board.is_active_player(p.index)
                {
                    let mut x = C::Scalar::ZERO;
                    for (dealer, w) in output.qualified.iter().zip(&output.weights) {
                        let s = match p.shares.get(dealer) {
                            Some(s) => *s.expose(),
                            None => match self
                                .board
                                .publication(*dealer)
                                .and_then(|pb| pb.reveals.iter().find(|(j, _)| *j == p.index))
                            {
                                Some((_, s)) => *s,
                                None => {
                                    return vec![Action::Failed(Failure {
                                        reason: FailureReason::MissingShare { dealer: *dealer },
                                        qualified: output.qualified.clone(),
                                        exclusions,
                                    })];
                                }
                            },
                        };
                        x += *w * s;
                    }
                    // Each summand matched its dealer's commitment, so this holds unless the
                    // board and this player disagree; a share that fails it is never released.
                    if !share_matches::<C>(&x, &output.public_shares[p.index as usize]) {
                        return vec![Action::Failed(Failure {
                            reason: FailureReason::ShareMismatch,
                            qualified: output.qualified.clone(),
                            exclusions,
                        })];
                    }
                    share = Some(Secret::new(x));
                    player_index = Some(p.index);
                }
                vec![Action::Finished(Box::new(DkgOutput {
                    session: *self.ceremony.id(),
                    attempt: self.board.attempt(),
                    public: output,
                    player_index,
                    secret_share: share,
                    exclusions,
                }))]
            }
            Some(Outcome::Failure {
                qualified,
                exclusions,
                ..
            }) => vec![Action::Failed(Failure {
                reason: FailureReason::Board,
                qualified,
                exclusions,
            })],
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use keyquorum_crypto::Bls12381G1;
    use keyquorum_crypto::index::IndexScheme;

    use super::*;
    use crate::participant::FailureReason;
    use crate::{CeremonyConfig, Member, Params, Variant};

    /// Three participants in lock step, with player 0's share from dealer 1 changed after it was
    /// checked and acked: the player must fail with a typed reason instead of releasing a share
    /// that does not match its public key share (in every build, not only with debug asserts).
    #[test]
    fn a_final_share_that_does_not_match_is_a_typed_failure() {
        let keys: Vec<(IdentityKeypair, EncryptionSecretKey)> = (0..3u8)
            .map(|i| {
                let seed = [i + 1; 32];
                (
                    IdentityKeypair::from_seed(&seed).unwrap(),
                    EncryptionSecretKey::from_seed(&seed),
                )
            })
            .collect();
        let ceremony = Ceremony::<Bls12381G1>::new(CeremonyConfig {
            domain: b"share-check".to_vec(),
            epoch: 1,
            variant: Variant::AckReveal,
            params: Params::new(3, 2, 3).unwrap(),
            index_scheme: IndexScheme::Sequential,
            players: keys
                .iter()
                .map(|(i, e)| Member {
                    identity: i.public().clone(),
                    encryption: e.public_key(),
                })
                .collect(),
            verifiable_keys: Vec::new(),
            reshare: None,
        })
        .unwrap();
        let mut nodes: Vec<AckRevealParticipant<Bls12381G1>> = keys
            .into_iter()
            .enumerate()
            .map(|(i, (id, enc))| {
                AckRevealParticipant::new(ceremony.clone(), id, enc, None, [i as u8; 32]).unwrap()
            })
            .collect();
        let ids: Vec<IdentityPublicKey> = nodes.iter().map(|n| n.identity().clone()).collect();
        let mut inbox: VecDeque<(usize, Input)> = (0..3).map(|i| (i, Input::Start)).collect();
        let mut ends: Vec<Option<Action<Bls12381G1>>> = vec![None, None, None];
        let mut corrupted = false;
        for _ in 0..8 {
            while let Some((i, input)) = inbox.pop_front() {
                for a in nodes[i].handle(input) {
                    match a {
                        Action::Send { to, payload } => {
                            let j = ids.iter().position(|x| *x == to).unwrap();
                            let from = ids[i].clone();
                            inbox.push_back((j, Input::Message { from, payload }));
                        }
                        Action::Post(p) => {
                            inbox.extend((0..3).map(|j| (j, Input::BoardPost(p.clone()))))
                        }
                        a @ (Action::Finished(_) | Action::Failed(_)) => ends[i] = Some(a),
                        Action::Observed(_) => {}
                    }
                }
            }
            if !corrupted {
                let p = nodes[0].player.as_mut().unwrap();
                let s = p.shares.get_mut(&1).expect("dealer 1's share arrived");
                *s = Secret::new(*s.expose() + <Bls12381G1 as Curve>::Scalar::ONE);
                corrupted = true;
            }
            if ends.iter().all(Option::is_some) {
                break;
            }
            inbox.extend((0..3).map(|j| (j, Input::Deadline)));
        }
        match &ends[0] {
            Some(Action::Failed(f)) => assert_eq!(f.reason, FailureReason::ShareMismatch),
            other => panic!("expected a share mismatch, got {other:?}"),
        }
        for end in &ends[1..] {
            assert!(matches!(end, Some(Action::Finished(_))), "{end:?}");
        }
    }
}
