//! Adversaries: wrappers around an honest participant that tamper with what goes in and out.
//!
//! Wrapping the honest state machine keeps each adversary small and makes it as capable as an
//! honest participant everywhere it does not deviate. Deviations that need protocol knowledge
//! (a wrong share, a second commitment, a wrong reveal) decode the honest messages, change them,
//! and re-sign with the adversary's own key, which it legitimately holds.
//!
//! Each kind has a behaviour in both variants. In the complaint variant
//! ([`keyquorum_dkg::complaint`]) the adversary also replays the board into its own
//! [`ComplaintBoard`], to know the phase, the qualified set and what was revealed:
//! - `Equivocate`: deals a second, self-consistent polynomial pair to the odd players (a second
//!   commitment, correctly signed; when resharing its constant cannot be the old public share).
//! - `BadShare`: sends validly encrypted, correctly signed deals with wrong pairs to the odd
//!   players, and never sends a missed deal again.
//! - `WrongReveal`: either withholds one player's deal and sends it a wrong pair in its
//!   justification, or posts wrong (but low-degree) Feldman values; in both cases any
//!   reconstruction pair it posts is wrong.
//! - `FalseComplaint`: about the even dealers whose pairs verified, either complains in its
//!   report with the dealer's ciphertext and a valid reveal of its key, or claims it missed their
//!   deals and, once they are sent again, reveals their keys in the dispute phase as if the
//!   pairs were wrong.
//! - `WithholdAcks`: either reports no dealer but itself as valid, or withholds its report.
//!
//! `Spoof` behaves the same in both variants: it deals, acks and posts honestly, and besides
//! sends direct messages in other participants' names, always under its own transport identity
//! (the network authenticates senders; the message claims someone else). Next to each of its
//! deals goes a copy relabelled as another dealer's (re-signed with its own key in the complaint
//! variant), sent at the same moment so that it often arrives before that dealer's real deal; next
//! to each of its acks goes a copy claiming another player; and it replays messages between
//! others that it overhears (the engine shows it some), to the same recipient. Every participant
//! must drop all of these ([`Observation::WrongSender`]) and still finish, agree and exclude
//! nobody. It does the same on the board: next to each of its posts goes a copy claiming another
//! member as author (re-signed with its own key; a reconstruction post is copied in every other
//! player's name, to race each for its slot), and it submits again, from its own account, some of
//! the posts others put on the board. The chain takes a post only from its author's own
//! transaction, so the engine refuses all of these (`posted_by_its_author`) and counts them
//! ([`crate::RunReport::foreign_posts`]).

use std::fmt;
use std::sync::Arc;

use ff::Field;
use group::prime::PrimeCurveAffine;
use keyquorum_crypto::Curve;
use keyquorum_crypto::commit::EvalCommitment;
use keyquorum_crypto::encrypt::{self, ShareAad};
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::verifiable_encrypt::{
    self, VerifiableCiphertext, VerifiableEncryptionSecretKey,
};
use keyquorum_dkg::board::Role;
use keyquorum_dkg::complaint::messages::{
    ComplaintPost, Deal as ComplaintDeal, DealComplaint, Disclosure, Dispute, FeldmanPost,
    Justification, PAIR_LEN, Report, SignedComplaintPost, SignedPedersen, pair_aad, pedersen_hash,
    seal_deal, seal_pair,
};
use keyquorum_dkg::complaint::{ComplaintBoard, ComplaintBoardPhase};
use keyquorum_dkg::identity::{IdentityKeypair, IdentityPublicKey, IdentitySignature, Purpose};
use keyquorum_dkg::messages::{Ack, Contribution, Deal, Direct, Post, Publication, SignedPost};
use keyquorum_dkg::participant::{Action, Input, Observation, Participant};
use keyquorum_dkg::{Ceremony, Variant};
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

/// Kinds of adversarial behaviour. The names (`--fault` of `keyquorum sim`, reports) are the
/// kebab-case variant names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum AdversaryKind {
    /// Never sends or posts anything.
    Silent,
    /// Crashes at a random step and restarts later from its persisted inputs (an honest
    /// participant with a crash fault).
    Crash,
    /// Crashes at a random step and restarts later with its storage lost: its seed, the
    /// messages it received and its old share are gone, and only the board can be read again.
    /// It comes back as a player only, fed the board's posts and deadlines so far; a member
    /// that does not play sits the rest out. This is stricter than a node's rule for a lost
    /// database, which also sits out where its deal may be on the board and deals again where
    /// the board shows none while deals still count: here it never deals again (a deal from a
    /// fresh seed could contradict one already on the board), and it pulls nothing it missed.
    LostStorage,
    /// Posts two different commitments (ack-or-reveal) / shows different commitments to
    /// different players (complaint).
    Equivocate,
    /// Sends validly encrypted but wrong shares to some players.
    #[value(alias = "bad-shares")]
    BadShare,
    /// Reveals a wrong share in its published log.
    WrongReveal,
    /// Accuses honest dealers: withholds acks from them (ack-or-reveal) / complains about valid
    /// shares (complaint).
    FalseComplaint,
    /// Never acks anyone.
    WithholdAcks,
    /// Everything it sends arrives after the deadline that needed it.
    Late,
    /// Corrupts the signatures on its acks and posts.
    #[value(alias = "invalid-signatures")]
    InvalidSignature,
    /// Behaves honestly but also sends random bytes to peers and the board.
    Garbage,
    /// Behaves honestly but also sends forged deals and acks in other participants' names, and
    /// replays others' messages, under its own transport identity; likewise submits board posts
    /// in others' names and replays others' posts from its own account.
    Spoof,
}

impl AdversaryKind {
    /// Every kind (the `all` mix).
    pub const ALL: [AdversaryKind; 12] = [
        AdversaryKind::Silent,
        AdversaryKind::Crash,
        AdversaryKind::LostStorage,
        AdversaryKind::Equivocate,
        AdversaryKind::BadShare,
        AdversaryKind::WrongReveal,
        AdversaryKind::FalseComplaint,
        AdversaryKind::WithholdAcks,
        AdversaryKind::Late,
        AdversaryKind::InvalidSignature,
        AdversaryKind::Garbage,
        AdversaryKind::Spoof,
    ];
}

impl fmt::Display for AdversaryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match clap::ValueEnum::to_possible_value(self) {
            Some(v) => f.write_str(v.get_name()),
            None => write!(f, "{self:?}"),
        }
    }
}

/// What the engine should do with one action of a wrapped participant.
pub enum Routed<C: Curve> {
    /// Deliver normally.
    Now(Action<C>),
    /// Deliver after the next phase deadline.
    Late(Action<C>),
    /// Send random bytes to a random participant.
    GarbageMessage(Vec<u8>),
}

/// An adversary wrapped around an honest participant (crash faults are handled by the engine).
pub struct Adversary<C: Curve> {
    kind: AdversaryKind,
    inner: Box<dyn Participant<C>>,
    keys: IdentityKeypair,
    /// Complaint variant: the participant's own verifiable-encryption key (for false reveals).
    verifiable: VerifiableEncryptionSecretKey,
    ceremony: Arc<Ceremony<C>>,
    rng: ChaCha20Rng,
    contribution_hash: Option<[u8; 32]>,
    /// Player whose acks are hidden from the inner dealer (so it reveals, then we corrupt it).
    hidden_player: Option<u32>,
    /// Complaint variant: the adversary's replica of the board.
    board: Option<ComplaintBoard<C>>,
    /// Complaint variant: which of two behaviours `WrongReveal` and `WithholdAcks` show (drawn
    /// once from the adversary's seed).
    alternate: bool,
    /// Complaint variant, `Equivocate`: the second polynomial pair and its signed commitment.
    second_deal: Option<SecondDeal<C>>,
    /// Complaint variant, `FalseComplaint`: the first deal received from each dealer.
    received: std::collections::BTreeMap<u32, ComplaintDeal<C>>,
    /// `Spoof`: overheard messages replayed so far.
    replays: usize,
}

/// Whether the participant rejected the input it just handled (undecodable or refused).
fn rejected<C: Curve>(actions: &[Action<C>]) -> bool {
    actions.iter().any(|a| {
        matches!(
            a,
            Action::Observed(Observation::Malformed(_) | Observation::Refused(_))
        )
    })
}

/// A second polynomial pair dealt by an equivocating dealer.
struct SecondDeal<C: Curve> {
    f: Polynomial<C::Scalar>,
    blind: Polynomial<C::Scalar>,
    signed: SignedPedersen<C>,
}

impl<C: Curve> Adversary<C> {
    /// Wraps `inner`; `keys` and `verifiable` are copies of the participant's own identity and
    /// verifiable-encryption keys.
    pub fn new(
        kind: AdversaryKind,
        inner: Box<dyn Participant<C>>,
        keys: IdentityKeypair,
        verifiable: VerifiableEncryptionSecretKey,
        ceremony: Arc<Ceremony<C>>,
        rng: ChaCha20Rng,
    ) -> Self {
        let mut rng = rng;
        let board = (ceremony.config().variant == Variant::Complaint)
            .then(|| ComplaintBoard::new(ceremony.clone()));
        // Drawn only in the complaint variant, so that ack-or-reveal runs keep their streams.
        let alternate = board.is_some() && rng.next_u32().is_multiple_of(2);
        Adversary {
            kind,
            inner,
            keys,
            verifiable,
            ceremony,
            rng,
            contribution_hash: None,
            hidden_player: None,
            board,
            alternate,
            second_deal: None,
            received: std::collections::BTreeMap::new(),
            replays: 0,
        }
    }

    /// The kind.
    pub fn kind(&self) -> AdversaryKind {
        self.kind
    }

    /// Handles one input and returns its (tampered) actions with routing.
    pub fn handle(&mut self, input: Input) -> Vec<Routed<C>> {
        if self.kind == AdversaryKind::Silent {
            return Vec::new();
        }
        let replay = if self.kind == AdversaryKind::Spoof {
            self.replay_post(&input)
        } else {
            None
        };
        let mut out = self.handle_tampered(input);
        out.extend(replay.map(|p| Routed::Now(Action::Post(p))));
        out
    }

    /// [`Self::handle`] for every kind but `Silent`, without `Spoof`'s replays of board posts.
    fn handle_tampered(&mut self, input: Input) -> Vec<Routed<C>> {
        if self.board.is_some() {
            return self.handle_complaint(input);
        }
        let input = match self.filter_input(input) {
            Some(i) => i,
            None => return Vec::new(),
        };
        let actions = self.inner.handle(input);
        let rejected = rejected(&actions);
        let mut out = Vec::new();
        for a in actions {
            self.tamper(a, &mut out);
        }
        self.add_garbage(rejected, &mut out);
        out
    }

    /// `Garbage`: sometimes adds random bytes, in answer to an input the participant accepted.
    /// Answering rejected inputs too would answer garbage with garbage: every garbage post
    /// reaches every garbage participant, so with more than about eight of them each garbage
    /// post would beget more than one and the run would never end.
    fn add_garbage(&mut self, rejected: bool, out: &mut Vec<Routed<C>>) {
        if self.kind == AdversaryKind::Garbage && !rejected && self.rng.next_u32().is_multiple_of(4)
        {
            let len = (self.rng.next_u32() % 200) as usize;
            let mut junk = vec![0u8; len];
            self.rng.fill_bytes(&mut junk);
            if self.rng.next_u32().is_multiple_of(2) {
                out.push(Routed::Now(Action::Post(junk)));
            } else {
                out.push(Routed::GarbageMessage(junk));
            }
        }
    }

    fn filter_input(&mut self, input: Input) -> Option<Input> {
        if self.kind == AdversaryKind::WrongReveal
            && let Input::Message { payload, .. } = &input
            && let Ok(Direct::Ack(a)) = Direct::decode(payload)
        {
            // Hide one other player's ack so the honest logic reveals that share.
            let me = self.ceremony.player_position(self.keys.public());
            if Some(a.player) != me {
                let hidden = *self.hidden_player.get_or_insert(a.player);
                if a.player == hidden {
                    return None;
                }
            }
        }
        Some(input)
    }

    fn tamper(&mut self, action: Action<C>, out: &mut Vec<Routed<C>>) {
        match self.kind {
            AdversaryKind::Late => match action {
                a @ (Action::Send { .. } | Action::Post(_)) => out.push(Routed::Late(a)),
                a => out.push(Routed::Now(a)),
            },
            AdversaryKind::WithholdAcks | AdversaryKind::FalseComplaint => {
                if let Action::Send { payload, .. } = &action
                    && let Ok(Direct::Ack(a)) = Direct::decode(payload)
                {
                    // FalseComplaint accuses only some dealers; WithholdAcks nobody gets an ack.
                    let me = self.ceremony.dealer_position(self.keys.public());
                    if Some(a.dealer) != me
                        && (self.kind == AdversaryKind::WithholdAcks || a.dealer % 2 == 0)
                    {
                        return;
                    }
                }
                out.push(Routed::Now(action));
            }
            AdversaryKind::InvalidSignature => match action {
                Action::Send { to, mut payload } => {
                    if let Ok(Direct::Ack(_)) = Direct::decode(&payload) {
                        let last = payload.len() - 1;
                        payload[last - 5] ^= 0x01;
                    }
                    out.push(Routed::Now(Action::Send { to, payload }));
                }
                Action::Post(mut bytes) => {
                    if bytes.len() > 10 {
                        bytes[10] ^= 0x01;
                    }
                    out.push(Routed::Now(Action::Post(bytes)));
                }
                a => out.push(Routed::Now(a)),
            },
            AdversaryKind::Equivocate => {
                if let Action::Post(bytes) = &action
                    && let Ok(signed) = SignedPost::<C>::decode(bytes, self.ceremony.n())
                    && let Post::Contribution(c) = &signed.post
                {
                    let f = Polynomial::random(self.ceremony.t() - 1, None, &mut self.rng);
                    let other = Post::Contribution(Contribution {
                        session: c.session,
                        dealer: c.dealer,
                        commitment: EvalCommitment::feldman(&f, self.ceremony.player_indices()),
                    });
                    out.push(Routed::Now(action));
                    out.push(Routed::Now(Action::Post(self.sign(other))));
                    return;
                }
                out.push(Routed::Now(action));
            }
            AdversaryKind::BadShare => {
                if let Action::Post(bytes) = &action
                    && let Ok(signed) = SignedPost::<C>::decode(bytes, self.ceremony.n())
                    && let Post::Contribution(c) = &signed.post
                {
                    self.contribution_hash = Some(c.commitment_hash());
                }
                if let (Action::Send { to, payload }, Some(hash)) =
                    (&action, self.contribution_hash)
                    && let Ok(Direct::Deal(d)) = Direct::decode(payload)
                    && d.player % 2 == 1
                    && Some(d.player) != self.ceremony.player_position(self.keys.public())
                {
                    let wrong = C::random_scalar(&mut self.rng);
                    let aad = ShareAad {
                        session_id: d.session,
                        dealer: d.dealer,
                        recipient: d.player,
                        commitment_hash: hash,
                    };
                    let pk = &self.ceremony.players()[d.player as usize].encryption;
                    let ct = encrypt::seal(pk, &aad, &C::encode_scalar(&wrong), &mut self.rng);
                    let deal = Direct::Deal(Deal {
                        ciphertext: ct.to_bytes(),
                        ..d
                    });
                    out.push(Routed::Now(Action::Send {
                        to: to.clone(),
                        payload: deal.encode(),
                    }));
                    return;
                }
                out.push(Routed::Now(action));
            }
            AdversaryKind::WrongReveal => {
                if let Action::Post(bytes) = &action
                    && let Ok(signed) = SignedPost::<C>::decode(bytes, self.ceremony.n())
                    && let Post::Publication(mut p) = signed.post.clone()
                    && !p.reveals.is_empty()
                {
                    p.reveals[0].1 += C::Scalar::ONE;
                    out.push(Routed::Now(Action::Post(self.sign(Post::Publication(p)))));
                    return;
                }
                out.push(Routed::Now(action));
            }
            AdversaryKind::Spoof => {
                match &action {
                    Action::Send { to, payload } => {
                        if let Some(forged) = self.forge(payload) {
                            out.push(Routed::Now(Action::Send {
                                to: to.clone(),
                                payload: forged,
                            }));
                        }
                    }
                    Action::Post(bytes) => {
                        for forged in self.forge_posts(bytes) {
                            out.push(Routed::Now(Action::Post(forged)));
                        }
                    }
                    _ => {}
                }
                out.push(Routed::Now(action));
            }
            AdversaryKind::Garbage
            | AdversaryKind::Crash
            | AdversaryKind::LostStorage
            | AdversaryKind::Silent => out.push(Routed::Now(action)),
        }
    }

    /// `Spoof`: a message between two other participants that this adversary overheard on the
    /// network. It replays some of them to the same recipient under its own identity.
    pub fn overhear(&mut self, to: &IdentityPublicKey, payload: &[u8]) -> Vec<Routed<C>> {
        // A few per participant and ceremony are enough to race real messages; the cap keeps
        // large committees' runs from growing by a factor.
        let cap = 2 * self.ceremony.n();
        if self.kind != AdversaryKind::Spoof
            || self.replays >= cap
            || !self.rng.next_u32().is_multiple_of(4)
        {
            return Vec::new();
        }
        self.replays += 1;
        vec![Routed::Now(Action::Send {
            to: to.clone(),
            payload: payload.to_vec(),
        })]
    }

    /// `Spoof`: a copy of one of its own deals or acks that claims another dealer or player as
    /// its author.
    fn forge(&mut self, payload: &[u8]) -> Option<Vec<u8>> {
        if self.board.is_some() {
            let mut deal = ComplaintDeal::<C>::decode(payload, self.ceremony.n()).ok()?;
            deal.dealer = self.someone_else(self.ceremony.dealer_count(), self.my_dealer())?;
            let hash = deal.statement().hash;
            deal.signature = self.keys.sign(Purpose::Message, &deal.share_payload(&hash));
            return Some(deal.encode());
        }
        match Direct::decode(payload).ok()? {
            Direct::Deal(d) => {
                let dealer = self.someone_else(self.ceremony.dealer_count(), self.my_dealer())?;
                Some(Direct::Deal(Deal { dealer, ..d }).encode())
            }
            Direct::Ack(a) => {
                let player = self.someone_else(self.ceremony.n(), self.my_player())?;
                Some(Direct::Ack(Ack { player, ..a }).encode())
            }
        }
    }

    /// `Spoof`: copies of one of its own board posts that claim another member as their author,
    /// signed with its own key: commitments, logs with acks and reveals (ack-or-reveal), reports,
    /// justifications, disputes, Feldman values and disclosures (complaint). A reconstruction post
    /// is copied in every other player's name: the complaint board keeps a player's first one and
    /// checks those signatures only at the deadline, so each copy races its player's real post
    /// for the slot. The chain must refuse them all, as it takes a post only from its author's
    /// own transaction.
    fn forge_posts(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        if self.board.is_none() {
            let Ok(signed) = SignedPost::<C>::decode(bytes, self.ceremony.n()) else {
                return Vec::new();
            };
            let me = Some(signed.post.dealer());
            let Some(other) = self.someone_else(self.ceremony.dealer_count(), me) else {
                return Vec::new();
            };
            let post = match signed.post {
                Post::Contribution(c) => Post::Contribution(Contribution { dealer: other, ..c }),
                Post::Publication(p) => Post::Publication(Publication { dealer: other, ..p }),
            };
            return vec![self.sign(post)];
        }
        let Some(post) = self.decode_post(bytes) else {
            return Vec::new();
        };
        let (role, me) = post.author();
        let count = match role {
            Role::Dealer => self.ceremony.dealer_count(),
            Role::Player => self.ceremony.n(),
        };
        let victims: Vec<u32> = if matches!(post, ComplaintPost::Reconstruction(_)) {
            (0..count as u32).filter(|i| *i != me).collect()
        } else {
            self.someone_else(count, Some(me)).into_iter().collect()
        };
        victims
            .into_iter()
            .map(|v| self.sign_complaint(claimed_by(post.clone(), v)))
            .collect()
    }

    /// `Spoof`: now and then, a post of another member that just reached the board, submitted
    /// again from this adversary's own account (a replay with the real author's signature).
    fn replay_post(&mut self, input: &Input) -> Option<Vec<u8>> {
        let Input::BoardPost(bytes) = input else {
            return None;
        };
        // A few per participant and ceremony; decided before decoding, which is the cost.
        if self.replays >= 2 * self.ceremony.n() || !self.rng.next_u32().is_multiple_of(4) {
            return None;
        }
        let foreign = if self.board.is_some() {
            self.decode_post(bytes).map(|p| match p.author() {
                (Role::Dealer, d) => Some(d) != self.my_dealer(),
                (Role::Player, j) => Some(j) != self.my_player(),
            })
        } else {
            SignedPost::<C>::decode(bytes, self.ceremony.n())
                .ok()
                .map(|s| Some(s.post.dealer()) != self.my_dealer())
        };
        if foreign != Some(true) {
            return None;
        }
        self.replays += 1;
        Some(bytes.clone())
    }

    /// A random position below `count` other than `me`, if there is one.
    fn someone_else(&mut self, count: usize, me: Option<u32>) -> Option<u32> {
        let others: Vec<u32> = (0..count as u32).filter(|i| Some(*i) != me).collect();
        if others.is_empty() {
            return None;
        }
        Some(others[self.rng.next_u64() as usize % others.len()])
    }

    fn sign(&self, post: Post<C>) -> Vec<u8> {
        let signature: IdentitySignature = self.keys.sign(Purpose::Post, &post.signed_payload());
        SignedPost { post, signature }.encode()
    }
}

/// `post` with its author field set to `author` (the role stays the same).
fn claimed_by<C: Curve>(post: ComplaintPost<C>, author: u32) -> ComplaintPost<C> {
    match post {
        ComplaintPost::Report(r) => ComplaintPost::Report(Report {
            player: author,
            ..r
        }),
        ComplaintPost::Justification(j) => ComplaintPost::Justification(Justification {
            dealer: author,
            ..j
        }),
        ComplaintPost::Dispute(d) => ComplaintPost::Dispute(Dispute {
            player: author,
            ..d
        }),
        ComplaintPost::Feldman(f) => ComplaintPost::Feldman(FeldmanPost {
            dealer: author,
            ..f
        }),
        ComplaintPost::Complaint(d) => ComplaintPost::Complaint(Disclosure {
            player: author,
            ..d
        }),
        ComplaintPost::Reconstruction(d) => ComplaintPost::Reconstruction(Disclosure {
            player: author,
            ..d
        }),
    }
}

/// The complaint variant's behaviours (see the module docs).
impl<C: Curve> Adversary<C> {
    fn my_player(&self) -> Option<u32> {
        self.ceremony.player_position(self.keys.public())
    }

    fn my_dealer(&self) -> Option<u32> {
        self.ceremony.dealer_position(self.keys.public())
    }

    /// Dealers a `FalseComplaint` adversary accuses: the even ones other than itself.
    fn accused(&self, dealer: u32) -> bool {
        dealer.is_multiple_of(2) && Some(dealer) != self.my_dealer()
    }

    fn handle_complaint(&mut self, input: Input) -> Vec<Routed<C>> {
        let board = self.board.as_mut().expect("complaint variant");
        let before = board.phase();
        match &input {
            Input::BoardPost(bytes) => {
                if let Ok(s) = SignedComplaintPost::<C>::decode(
                    bytes,
                    self.ceremony.n(),
                    self.ceremony.dealer_count(),
                ) {
                    let _ = board.apply(&s);
                }
            }
            Input::Deadline => board.advance(),
            Input::Message { payload, .. } => {
                if let Ok(d) = ComplaintDeal::<C>::decode(payload, self.ceremony.n())
                    && Some(d.player) == self.ceremony.player_position(self.keys.public())
                {
                    self.received.entry(d.dealer).or_insert(d);
                }
            }
            Input::Start => {}
        }
        let entered_dispute =
            before != ComplaintBoardPhase::Dispute && board.phase() == ComplaintBoardPhase::Dispute;
        let actions = self.inner.handle(input);
        let rejected = rejected(&actions);
        let mut out = Vec::new();
        let mut complained = false;
        for a in actions {
            self.tamper_complaint(a, &mut out, &mut complained);
        }
        if self.kind == AdversaryKind::FalseComplaint
            && entered_dispute
            && !complained
            && let Some(post) = self.false_reveals(None)
        {
            out.push(Routed::Now(Action::Post(post)));
        }
        self.add_garbage(rejected, &mut out);
        out
    }

    fn decode_post(&self, bytes: &[u8]) -> Option<ComplaintPost<C>> {
        SignedComplaintPost::<C>::decode(bytes, self.ceremony.n(), self.ceremony.dealer_count())
            .ok()
            .map(|s| s.post)
    }

    fn sign_complaint(&self, post: ComplaintPost<C>) -> Vec<u8> {
        SignedComplaintPost::sign(&self.keys, post).encode()
    }

    fn tamper_complaint(
        &mut self,
        action: Action<C>,
        out: &mut Vec<Routed<C>>,
        complained: &mut bool,
    ) {
        let deal = match &action {
            Action::Send { payload, .. } => {
                ComplaintDeal::<C>::decode(payload, self.ceremony.n()).ok()
            }
            _ => None,
        };
        let post = match &action {
            Action::Post(bytes) => self.decode_post(bytes),
            _ => None,
        };
        let me = self.my_player();
        let replaced: Option<Option<Vec<u8>>> = match self.kind {
            AdversaryKind::Late
            | AdversaryKind::InvalidSignature
            | AdversaryKind::Garbage
            | AdversaryKind::Spoof
            | AdversaryKind::Crash
            | AdversaryKind::LostStorage
            | AdversaryKind::Silent => return self.tamper(action, out),
            AdversaryKind::Equivocate => deal
                .filter(|d| !d.player.is_multiple_of(2) && Some(d.player) != me)
                .map(|d| Some(self.equivocating_deal(d))),
            AdversaryKind::BadShare => match (deal, post) {
                (Some(d), _) if self.is_victim(d.player) => Some(Some(self.wrong_deal(d))),
                // Complaints stay unanswered.
                (_, Some(ComplaintPost::Justification(_))) => Some(None),
                _ => None,
            },
            AdversaryKind::WrongReveal => match (deal, post) {
                // The target misses the deal, and the justification sends it a wrong pair.
                (Some(d), _) if !self.alternate && Some(d.player) == self.wrong_reveal_target() => {
                    Some(None)
                }
                (_, Some(ComplaintPost::Justification(j))) if !j.deals.is_empty() => {
                    Some(Some(self.wrong_justification(j)))
                }
                (_, Some(ComplaintPost::Feldman(f))) if self.alternate => {
                    Some(Some(self.wrong_feldman(f)))
                }
                (_, Some(ComplaintPost::Reconstruction(mut d))) => {
                    for (_, s, _) in &mut d.shares {
                        *s += C::Scalar::ONE;
                    }
                    Some(Some(self.sign_complaint(ComplaintPost::Reconstruction(d))))
                }
                _ => None,
            },
            AdversaryKind::FalseComplaint => match post {
                Some(ComplaintPost::Report(r)) => self.false_report(r).map(Some),
                Some(ComplaintPost::Dispute(d)) => {
                    *complained = true;
                    self.false_reveals(Some(d)).map(Some)
                }
                _ => None,
            },
            AdversaryKind::WithholdAcks => match post {
                Some(ComplaintPost::Report(_)) if self.alternate => Some(None),
                Some(ComplaintPost::Report(mut r)) => {
                    let mine = self.my_dealer();
                    r.valid.retain(|d| Some(*d) == mine);
                    Some(Some(self.sign_complaint(ComplaintPost::Report(r))))
                }
                _ => None,
            },
        };
        match (replaced, action) {
            (None, a) => out.push(Routed::Now(a)),
            (Some(None), _) => {}
            (Some(Some(bytes)), Action::Send { to, .. }) => {
                out.push(Routed::Now(Action::Send { to, payload: bytes }))
            }
            (Some(Some(bytes)), _) => out.push(Routed::Now(Action::Post(bytes))),
        }
    }

    /// `BadShare`: odd players other than itself (any number: each complaint is checked by
    /// the board and reveals only the victim's wrong pair).
    fn is_victim(&mut self, player: u32) -> bool {
        !player.is_multiple_of(2) && Some(player) != self.my_player()
    }

    /// `WrongReveal` (first behaviour): the justification with a wrong pair, well encrypted,
    /// for the first player it sends a pair again.
    fn wrong_justification(&mut self, mut j: Justification<C>) -> Vec<u8> {
        let signed = SignedPedersen {
            dealer: j.dealer,
            hash: pedersen_hash::<C>(&j.session, j.dealer, &j.commitment),
            commitment: j.commitment.clone(),
            signature: IdentitySignature([0; keyquorum_dkg::identity::SIGNATURE_LEN]),
        };
        let player = j.deals[0].0;
        if let Some(pk) = self.ceremony.verifiable_key(player) {
            let s = C::random_scalar(&mut self.rng);
            let b = C::random_scalar(&mut self.rng);
            j.deals[0].1 = seal_pair(&j.session, &signed, (player, pk), &s, &b, &mut self.rng);
        }
        self.sign_complaint(ComplaintPost::Justification(j))
    }

    /// `FalseComplaint`, report: the accused dealers' valid pairs turned into complaints with a
    /// valid reveal (first behaviour) or into claimed lost deals (second). `None` if nobody is
    /// accused.
    fn false_report(&mut self, mut r: Report<C>) -> Option<Vec<u8>> {
        let accused: Vec<u32> = r
            .valid
            .iter()
            .copied()
            .filter(|d| self.accused(*d))
            .collect();
        if accused.is_empty() {
            return None;
        }
        r.valid.retain(|d| !accused.contains(d));
        if !self.alternate {
            for dealer in accused {
                let Some(deal) = self.received.get(&dealer).cloned() else {
                    continue;
                };
                let hash = deal.statement().hash;
                let aad = pair_aad(&deal.session, dealer, deal.player, &hash);
                let reveal = VerifiableCiphertext::from_bytes(&deal.ciphertext, PAIR_LEN)
                    .ok()
                    .and_then(|ct| {
                        verifiable_encrypt::reveal_key(&self.verifiable, &aad, &ct, &mut self.rng)
                            .ok()
                    });
                r.complaints.push(DealComplaint {
                    dealer,
                    commitment: deal.commitment,
                    ciphertext: deal.ciphertext,
                    signature: deal.signature,
                    reveal,
                });
            }
            r.complaints.sort_by_key(|c| c.dealer);
        }
        Some(self.sign_complaint(ComplaintPost::Report(r)))
    }

    /// `WrongReveal` (first behaviour): the player that gets a wrong pair, so that it complains.
    fn wrong_reveal_target(&self) -> Option<u32> {
        let me = self.my_player();
        (0..self.ceremony.n() as u32).find(|j| Some(*j) != me)
    }

    /// The deal re-encrypted with a random pair (same commitment, correctly signed).
    fn wrong_deal(&mut self, deal: ComplaintDeal<C>) -> Vec<u8> {
        let ceremony = self.ceremony.clone();
        let signed = SignedPedersen {
            dealer: deal.dealer,
            hash: pedersen_hash::<C>(&deal.session, deal.dealer, &deal.commitment),
            commitment: deal.commitment,
            signature: deal.commitment_signature,
        };
        let s = C::random_scalar(&mut self.rng);
        let b = C::random_scalar(&mut self.rng);
        // The inner, honest participant only deals to the ceremony's players.
        let pk = ceremony
            .verifiable_key(deal.player)
            .expect("a player of the ceremony");
        seal_deal(
            &self.keys,
            &deal.session,
            &signed,
            (deal.player, pk),
            &s,
            &b,
            &mut self.rng,
        )
        .encode()
    }

    /// `Equivocate`: the deal of a second polynomial pair under a second signed commitment.
    fn equivocating_deal(&mut self, deal: ComplaintDeal<C>) -> Vec<u8> {
        let ceremony = self.ceremony.clone();
        let xs = ceremony.player_indices();
        let second = match self.second_deal.take() {
            Some(s) => s,
            None => {
                let degree = ceremony.t() - 1;
                let f = Polynomial::random(degree, None, &mut self.rng);
                let blind = Polynomial::random(degree, None, &mut self.rng);
                let commitment = EvalCommitment::pedersen(&f, &blind, xs);
                let signed =
                    SignedPedersen::new(&self.keys, &deal.session, deal.dealer, commitment);
                SecondDeal { f, blind, signed }
            }
        };
        let x = &xs[deal.player as usize];
        let pk = ceremony
            .verifiable_key(deal.player)
            .expect("a player of the ceremony");
        let bytes = seal_deal(
            &self.keys,
            &deal.session,
            &second.signed,
            (deal.player, pk),
            &second.f.evaluate(x),
            &second.blind.evaluate(x),
            &mut self.rng,
        )
        .encode();
        self.second_deal = Some(second);
        bytes
    }

    /// `WrongReveal` (second behaviour): Feldman values of `f + d` for a random `d` of the same
    /// degree with `d(0) = 0`: low degree, the right constant, wrong at every player.
    fn wrong_feldman(&mut self, mut f: FeldmanPost<C>) -> Vec<u8> {
        let degree = self.ceremony.t() - 1;
        let d = Polynomial::random(degree, Some(C::Scalar::ZERO), &mut self.rng);
        let mut sums: Vec<C::Point> = f.commitment.points().iter().map(|p| p.to_curve()).collect();
        // d(x_j) G added point by point: a Feldman commitment of d would hold the identity at
        // zero, which secp256k1's batch normalization does not accept.
        for (sum, x) in sums[1..].iter_mut().zip(self.ceremony.player_indices()) {
            *sum += C::mul_generator(&d.evaluate(x));
        }
        if let Ok(c) = EvalCommitment::from_points(C::batch_normalize(&sums)) {
            f.commitment = c;
        }
        self.sign_complaint(ComplaintPost::Feldman(f))
    }

    /// `FalseComplaint`, dispute phase: a dispute (added to `existing`, the honest one, if any)
    /// with reveals of the pairs accused dealers sent it again, which are valid. `None` if there
    /// is nothing to add.
    fn false_reveals(&mut self, existing: Option<Dispute>) -> Option<Vec<u8>> {
        let board = self.board.as_ref()?;
        let me = self.my_player()?;
        let mut d = existing.unwrap_or_else(|| Dispute {
            session: *self.ceremony.id(),
            player: me,
            reveals: Vec::new(),
        });
        let before = d.reveals.len();
        for dealer in 0..self.ceremony.dealer_count() as u32 {
            let dealer = &dealer;
            if !self.accused(*dealer)
                || board.is_disqualified(*dealer)
                || d.reveals.iter().any(|(x, _)| x == dealer)
            {
                continue;
            }
            let (Some(ct), Some(hash)) =
                (board.resent_deal(*dealer, me), board.signed_hash(*dealer))
            else {
                continue;
            };
            let aad = pair_aad(self.ceremony.id(), *dealer, me, hash);
            let reveal = VerifiableCiphertext::from_bytes(ct, PAIR_LEN)
                .ok()
                .and_then(|ct| {
                    verifiable_encrypt::reveal_key(&self.verifiable, &aad, &ct, &mut self.rng).ok()
                });
            if let Some(reveal) = reveal {
                d.reveals.push((*dealer, reveal));
            }
        }
        if d.reveals.len() == before {
            return None;
        }
        d.reveals.sort_by_key(|(x, _)| *x);
        Some(self.sign_complaint(ComplaintPost::Dispute(d)))
    }
}
