//! Messages of the complaint-and-reconstruct variant and their canonical encodings.
//!
//! - [`Deal`]: the one direct message, dealer to player: the dealer's Pedersen commitment in
//!   evaluation form, the dealer's signature on its hash ([`statement_payload`]), and the pair
//!   `(f(x_j), f'(x_j))` encrypted to the player's verifiable-encryption key
//!   ([`keyquorum_crypto::verifiable_encrypt`]), with the dealer's signature on the ciphertext
//!   ([`share_payload`]), which makes the ciphertext evidence a complaint can carry.
//! - [`ComplaintPost`]: board posts, each signed by its author ([`SignedComplaintPost`]):
//!   [`Report`] (with its [`DealComplaint`]s), [`Dispute`] and the two kinds of [`Disclosure`]
//!   by players,
//!   [`Justification`] and [`FeldmanPost`] by dealers.
//! - [`CommitmentStatement`]: a dealer's signature on one commitment hash, lifted out of a report;
//!   two of them with different hashes prove equivocation.
//!
//! As in [`crate::messages`], every message has exactly one encoding ([`crate::wire`]): lists are
//! strictly ascending, bitmaps have no trailing zero byte, every count and length is checked
//! against a bound before anything is allocated, and decoding never panics. Decoding checks what
//! needs no context (bounds, canonical scalars, points on the curve); [`super::board`] checks the
//! rest. Commitments travel as uncompressed points (no square roots for `n + 1` points); their
//! subgroup membership is handled as in [`crate::board`].

use keyquorum_crypto::Curve;
use keyquorum_crypto::commit::EvalCommitment;
use keyquorum_crypto::encrypt::ShareAad;
use keyquorum_crypto::hash::tagged_hash;
use keyquorum_crypto::verifiable_encrypt::{
    self, KeyReveal, REVEAL_LEN, VerifiableCiphertext, VerifiableEncryptionPublicKey,
};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::board::Role;
use crate::ceremony::SessionId;
use crate::identity::{
    IdentityKeypair, IdentityPublicKey, IdentitySignature, Purpose, SIGNATURE_LEN,
};
use crate::params::MAX_PARTICIPANTS;
use crate::wire::{Reader, WireError, Writer};

/// Plaintext of an encrypted deal: the share then the blinding share, 32 bytes each.
pub const PAIR_LEN: usize = 64;
/// Length of an encrypted pair (ephemeral key and its proof, plaintext, tag).
pub const PAIR_CIPHERTEXT_LEN: usize = VerifiableCiphertext::encoded_len(PAIR_LEN);

const TAG_REPORT: u8 = 0x41;
const TAG_JUSTIFICATION: u8 = 0x42;
const TAG_FELDMAN: u8 = 0x43;
const TAG_COMPLAINT: u8 = 0x44;
const TAG_RECONSTRUCTION: u8 = 0x45;
const TAG_DISPUTE: u8 = 0x46;
const TAG_DEAL: u8 = 0x50;
const TAG_STATEMENT: u8 = 0x60;

/// Prefix of the statement a dealer signs for its commitment.
const STATEMENT_DOMAIN: &[u8] = b"keyquorum/complaint/commitment/v1";
/// Prefix of the statement a dealer signs for one encrypted pair. The two domains differ in
/// their first bytes, so the two signed payloads never coincide.
const SHARE_DOMAIN: &[u8] = b"keyquorum/complaint/share/v1";

fn eval_hash<C: Curve>(
    tag: &str,
    session: &SessionId,
    dealer: u32,
    commitment: &EvalCommitment<C>,
) -> [u8; 32] {
    // The points enter through their digest, which a decoded commitment already has.
    tagged_hash(
        tag,
        &[
            session,
            &dealer.to_be_bytes(),
            C::NAME.as_bytes(),
            &commitment.digest(),
        ],
    )
}

/// Hash of a dealer's Pedersen commitment (what the dealer signs and players report).
pub fn pedersen_hash<C: Curve>(
    session: &SessionId,
    dealer: u32,
    commitment: &EvalCommitment<C>,
) -> [u8; 32] {
    eval_hash(
        "keyquorum/complaint/pedersen/v2",
        session,
        dealer,
        commitment,
    )
}

/// Hash of a dealer's Feldman commitment (seeds its degree check).
pub fn feldman_hash<C: Curve>(
    session: &SessionId,
    dealer: u32,
    commitment: &EvalCommitment<C>,
) -> [u8; 32] {
    eval_hash(
        "keyquorum/complaint/feldman/v2",
        session,
        dealer,
        commitment,
    )
}

/// The payload a dealer signs (for [`Purpose::Message`]) to commit to one Pedersen commitment.
pub fn statement_payload(session: &SessionId, dealer: u32, hash: &[u8; 32]) -> Vec<u8> {
    let mut w = Writer::new();
    w.fixed(STATEMENT_DOMAIN)
        .fixed(session)
        .u32(dealer)
        .fixed(hash);
    w.finish()
}

/// The payload a dealer signs (for [`Purpose::Message`]) for the ciphertext of `player`'s pair,
/// bound to the commitment hash. Signed apart from the commitment so that a complaint carries
/// the ciphertext and this signature, not the whole deal.
pub fn share_payload(
    session: &SessionId,
    dealer: u32,
    player: u32,
    hash: &[u8; 32],
    ciphertext: &[u8],
) -> Vec<u8> {
    let mut w = Writer::new();
    w.fixed(SHARE_DOMAIN)
        .fixed(session)
        .u32(dealer)
        .u32(player)
        .fixed(hash)
        .bytes(ciphertext);
    w.finish()
}

/// The context a pair's ciphertext is bound to.
pub fn pair_aad(session: &SessionId, dealer: u32, player: u32, hash: &[u8; 32]) -> ShareAad {
    ShareAad {
        session_id: *session,
        dealer,
        recipient: player,
        commitment_hash: *hash,
    }
}

/// A dealer's signature on the hash of its Pedersen commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentStatement {
    /// Session.
    pub session: SessionId,
    /// Dealer position.
    pub dealer: u32,
    /// [`pedersen_hash`] of the commitment.
    pub hash: [u8; 32],
    /// Dealer's signature on [`statement_payload`].
    pub signature: IdentitySignature,
}

impl CommitmentStatement {
    /// Signs a statement.
    pub fn sign(
        identity: &IdentityKeypair,
        session: SessionId,
        dealer: u32,
        hash: [u8; 32],
    ) -> Self {
        let signature = identity.sign(
            Purpose::Message,
            &statement_payload(&session, dealer, &hash),
        );
        CommitmentStatement {
            session,
            dealer,
            hash,
            signature,
        }
    }

    /// Whether the signature is the dealer's.
    pub fn verify(&self, dealer_key: &IdentityPublicKey) -> bool {
        dealer_key.verify(
            Purpose::Message,
            &statement_payload(&self.session, self.dealer, &self.hash),
            &self.signature,
        )
    }

    /// Canonical encoding (an evidence item).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(TAG_STATEMENT)
            .fixed(&self.session)
            .u32(self.dealer)
            .fixed(&self.hash)
            .fixed(&self.signature.0);
        w.finish()
    }

    /// Decodes [`CommitmentStatement::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let tag = r.u8()?;
        if tag != TAG_STATEMENT {
            return Err(WireError::UnknownTag {
                what: "statement",
                tag,
            });
        }
        let s = CommitmentStatement {
            session: r.array()?,
            dealer: r.u32()?,
            hash: r.array()?,
            signature: IdentitySignature(r.array()?),
        };
        r.finish()?;
        Ok(s)
    }
}

fn write_commitment<C: Curve>(w: &mut Writer, c: &EvalCommitment<C>) {
    w.u32(c.points().len() as u32);
    for p in c.points() {
        w.point_uncompressed::<C>(p);
    }
}

fn read_commitment<C: Curve>(
    r: &mut Reader<'_>,
    max_players: usize,
) -> Result<EvalCommitment<C>, WireError> {
    let count = r.count("commitment points", max_players + 1)?;
    if count < 2 {
        return Err(WireError::NonCanonical(
            "commitment shorter than two points",
        ));
    }
    // The bytes are checked to be there before anything is allocated for them.
    r.eval_commitment::<C>(count)
}

/// `(index, share, blinding share)` triples, strictly ascending by index.
pub type Pairs<C> = Vec<(u32, <C as Curve>::Scalar, <C as Curve>::Scalar)>;

fn write_pairs<C: Curve>(w: &mut Writer, pairs: &Pairs<C>) {
    w.u32(pairs.len() as u32);
    for (i, s, b) in pairs {
        w.u32(*i).scalar::<C>(s).scalar::<C>(b);
    }
}

fn read_pairs<C: Curve>(
    r: &mut Reader<'_>,
    what: &'static str,
    max: usize,
) -> Result<Pairs<C>, WireError> {
    let count = r.count(what, max)?;
    let mut out: Pairs<C> = Vec::with_capacity(count.min(r.remaining() / 68));
    for _ in 0..count {
        let i = r.u32()?;
        if out.last().is_some_and(|(prev, _, _)| *prev >= i) {
            return Err(WireError::NonCanonical("pairs not strictly ascending"));
        }
        let s = r.scalar::<C>()?;
        let b = r.scalar::<C>()?;
        out.push((i, s, b));
    }
    Ok(out)
}

fn read_reveal(r: &mut Reader<'_>) -> Result<KeyReveal, WireError> {
    let bytes: [u8; REVEAL_LEN] = r.array()?;
    KeyReveal::from_bytes(&bytes).map_err(|_| WireError::NonCanonical("key reveal"))
}

fn write_bitmap(w: &mut Writer, members: &[u32]) {
    let width = members.iter().max().map(|m| *m as usize + 1).unwrap_or(0);
    let mut bitmap = vec![0u8; width.div_ceil(8)];
    for m in members {
        bitmap[*m as usize / 8] |= 1 << (*m % 8);
    }
    w.bytes(&bitmap);
}

fn read_bitmap(r: &mut Reader<'_>, what: &'static str, max: usize) -> Result<Vec<u32>, WireError> {
    let bitmap = r.bytes(what, max.div_ceil(8))?;
    if bitmap.last() == Some(&0) {
        return Err(WireError::NonCanonical("bitmap has a trailing zero byte"));
    }
    let mut out = Vec::new();
    for (byte_i, b) in bitmap.iter().enumerate() {
        for bit in 0..8 {
            if b & (1 << bit) != 0 {
                out.push((byte_i * 8 + bit) as u32);
            }
        }
    }
    Ok(out)
}

/// Deal phase, dealer to player: commitment, signed hash, encrypted pair; signed as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deal<C: Curve> {
    /// Session.
    pub session: SessionId,
    /// Dealer position.
    pub dealer: u32,
    /// Player position.
    pub player: u32,
    /// Pedersen commitment in evaluation form: `f(0) G + f'(0) H`, then one point per player.
    pub commitment: EvalCommitment<C>,
    /// Dealer's signature on [`statement_payload`] for [`pedersen_hash`] of `commitment`.
    pub commitment_signature: IdentitySignature,
    /// Verifiable-encryption ciphertext of `f(x_j) || f'(x_j)`, bound to (session, dealer,
    /// player, hash).
    pub ciphertext: Vec<u8>,
    /// Dealer's signature (for [`Purpose::Message`]) on [`share_payload`] of the ciphertext.
    pub signature: IdentitySignature,
}

/// A dealer's commitment with its hash and signed statement, as the dealer keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPedersen<C: Curve> {
    /// Dealer position.
    pub dealer: u32,
    /// The Pedersen commitment in evaluation form.
    pub commitment: EvalCommitment<C>,
    /// Its [`pedersen_hash`].
    pub hash: [u8; 32],
    /// The dealer's signature on [`statement_payload`].
    pub signature: IdentitySignature,
}

impl<C: Curve> SignedPedersen<C> {
    /// Hashes and signs a commitment.
    pub fn new(
        identity: &IdentityKeypair,
        session: &SessionId,
        dealer: u32,
        commitment: EvalCommitment<C>,
    ) -> Self {
        let hash = pedersen_hash::<C>(session, dealer, &commitment);
        let signature = CommitmentStatement::sign(identity, *session, dealer, hash).signature;
        SignedPedersen {
            dealer,
            commitment,
            hash,
            signature,
        }
    }
}

/// Encrypts `(share, blind)` to `player` under the context of the dealer's signed commitment.
pub fn seal_pair<C: Curve>(
    session: &SessionId,
    signed: &SignedPedersen<C>,
    player: (u32, &VerifiableEncryptionPublicKey),
    share: &C::Scalar,
    blind: &C::Scalar,
    rng: &mut (impl RngCore + CryptoRng),
) -> Vec<u8> {
    let aad = pair_aad(session, signed.dealer, player.0, &signed.hash);
    let mut plaintext = Zeroizing::new([0u8; PAIR_LEN]);
    plaintext[..32].copy_from_slice(&C::encode_scalar(share));
    plaintext[32..].copy_from_slice(&C::encode_scalar(blind));
    verifiable_encrypt::seal(player.1, &aad, plaintext.as_slice(), rng).to_bytes()
}

/// Encrypts `(share, blind)` to `player` ([`seal_pair`]) and signs the ciphertext.
pub fn seal_deal<C: Curve>(
    identity: &IdentityKeypair,
    session: &SessionId,
    signed: &SignedPedersen<C>,
    player: (u32, &VerifiableEncryptionPublicKey),
    share: &C::Scalar,
    blind: &C::Scalar,
    rng: &mut (impl RngCore + CryptoRng),
) -> Deal<C> {
    let ciphertext = seal_pair(session, signed, player, share, blind, rng);
    let payload = share_payload(session, signed.dealer, player.0, &signed.hash, &ciphertext);
    Deal {
        session: *session,
        dealer: signed.dealer,
        player: player.0,
        commitment: signed.commitment.clone(),
        commitment_signature: signed.signature,
        ciphertext,
        signature: identity.sign(Purpose::Message, &payload),
    }
}

impl<C: Curve> Deal<C> {
    /// The signed part: the encoding without the final signature.
    pub fn body(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(TAG_DEAL)
            .fixed(&self.session)
            .u32(self.dealer)
            .u32(self.player);
        write_commitment::<C>(&mut w, &self.commitment);
        w.fixed(&self.commitment_signature.0)
            .bytes(&self.ciphertext);
        w.finish()
    }

    /// Canonical encoding: body then signature.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.body();
        out.extend_from_slice(&self.signature.0);
        out
    }

    /// Decodes a deal for a committee of at most `max_players` players.
    pub fn decode(bytes: &[u8], max_players: usize) -> Result<Self, WireError> {
        let max_players = max_players.min(MAX_PARTICIPANTS);
        let mut r = Reader::new(bytes);
        let tag = r.u8()?;
        if tag != TAG_DEAL {
            return Err(WireError::UnknownTag {
                what: "message",
                tag,
            });
        }
        let deal = Deal {
            session: r.array()?,
            dealer: r.u32()?,
            player: r.u32()?,
            commitment: read_commitment::<C>(&mut r, max_players)?,
            commitment_signature: IdentitySignature(r.array()?),
            ciphertext: r.bytes("ciphertext", PAIR_CIPHERTEXT_LEN)?.to_vec(),
            signature: IdentitySignature(r.array()?),
        };
        r.finish()?;
        Ok(deal)
    }

    /// What [`Deal::signature`] signs: [`share_payload`] of the ciphertext under `hash`, the
    /// commitment's [`pedersen_hash`].
    pub fn share_payload(&self, hash: &[u8; 32]) -> Vec<u8> {
        share_payload(
            &self.session,
            self.dealer,
            self.player,
            hash,
            &self.ciphertext,
        )
    }

    /// The statement inside the deal.
    pub fn statement(&self) -> CommitmentStatement {
        CommitmentStatement {
            session: self.session,
            dealer: self.dealer,
            hash: pedersen_hash::<C>(&self.session, self.dealer, &self.commitment),
            signature: self.commitment_signature,
        }
    }
}

/// One dealer a player heard from: the commitment hash and the dealer's signature on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeardEntry {
    /// Dealer position.
    pub dealer: u32,
    /// [`pedersen_hash`] of the commitment the player received.
    pub hash: [u8; 32],
    /// The dealer's signature on [`statement_payload`].
    pub signature: IdentitySignature,
}

/// A verifiable complaint about one deal: the dealer-signed ciphertext of the complainer's pair
/// with the commitment it is bound to, and the complainer's proven reveal of that ciphertext's
/// key, so that anyone can decrypt it and check the pair against the commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealComplaint<C: Curve> {
    /// Dealer complained about (must be among the report's `heard`, not among its `valid`).
    pub dealer: u32,
    /// The Pedersen commitment the deal carried (its hash is the report's heard hash).
    pub commitment: EvalCommitment<C>,
    /// The deal's ciphertext.
    pub ciphertext: Vec<u8>,
    /// The dealer's signature on [`share_payload`] of the ciphertext.
    pub signature: IdentitySignature,
    /// The key of the ciphertext with its proof; `None` only when the ciphertext's own proof of
    /// knowledge fails, which convicts the dealer without a reveal.
    pub reveal: Option<KeyReveal>,
}

/// Report phase (or the deal phase, once every deal verified): what a player received and which
/// dealers' pairs verified. A dealer heard from
/// whose pair did not verify is complained about with a [`DealComplaint`]; a dealer not heard
/// from is asked to send the pair again on the board (its [`Justification`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report<C: Curve> {
    /// Session.
    pub session: SessionId,
    /// Player position.
    pub player: u32,
    /// Dealers heard from, strictly ascending by dealer.
    pub heard: Vec<HeardEntry>,
    /// Dealers whose pairs verified, ascending (a subset of `heard`; encoded as a bitmap).
    pub valid: Vec<u32>,
    /// Complaints about dealers heard from whose pairs did not verify, strictly ascending by
    /// dealer.
    pub complaints: Vec<DealComplaint<C>>,
    /// A second commitment statement of a dealer in `heard`, signed by that dealer for another
    /// hash than the heard one: the dealer sent this player two different signed commitments
    /// (equivocation evidence; a player keeps the first such statement only). Encoded after the
    /// complaints only when present, so a report without it keeps its encoding.
    pub conflicting: Option<HeardEntry>,
}

impl<C: Curve> Report<C> {
    /// The statements inside the report.
    pub fn statements(&self) -> impl Iterator<Item = CommitmentStatement> + '_ {
        self.heard.iter().map(|e| self.statement(e))
    }

    /// The conflicting statement, if the report carries one.
    pub fn conflicting_statement(&self) -> Option<CommitmentStatement> {
        self.conflicting.as_ref().map(|e| self.statement(e))
    }

    fn statement(&self, e: &HeardEntry) -> CommitmentStatement {
        CommitmentStatement {
            session: self.session,
            dealer: e.dealer,
            hash: e.hash,
            signature: e.signature,
        }
    }

    /// Whether the player validated `dealer`.
    pub fn validates(&self, dealer: u32) -> bool {
        self.valid.binary_search(&dealer).is_ok()
    }

    /// The player's complaint about `dealer`, if any.
    pub fn complaint(&self, dealer: u32) -> Option<&DealComplaint<C>> {
        self.complaints
            .binary_search_by_key(&dealer, |c| c.dealer)
            .ok()
            .map(|i| &self.complaints[i])
    }

    /// Whether the player neither validated nor complained about `dealer`: it did not receive a
    /// usable deal, and the dealer must send the pair again on the board.
    pub fn misses(&self, dealer: u32) -> bool {
        !self.validates(dealer) && self.complaint(dealer).is_none()
    }
}

/// Justify phase: a dealer's answer to the players that did not receive its deal: its full
/// commitment and their pairs encrypted again, now on the board (nothing is revealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Justification<C: Curve> {
    /// Session.
    pub session: SessionId,
    /// Dealer position.
    pub dealer: u32,
    /// The Pedersen commitment (its hash must match every signed hash of this dealer).
    pub commitment: EvalCommitment<C>,
    /// `(player, ciphertext of its pair)` for exactly the players that missed the deal,
    /// strictly ascending.
    pub deals: Vec<(u32, Vec<u8>)>,
}

/// Feldman phase: a qualified dealer's Feldman commitment in evaluation form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeldmanPost<C: Curve> {
    /// Session.
    pub session: SessionId,
    /// Dealer position.
    pub dealer: u32,
    /// `f(0) G, f(x_1) G, ..., f(x_n) G`.
    pub commitment: EvalCommitment<C>,
}

/// A player's pairs in the clear: a complaint against Feldman values (complain phase; every
/// qualified player posts one, empty when its pairs agree with every Feldman post) or its
/// pairs for dealers being reconstructed (reconstruct phase). Carries the Pedersen commitments
/// the board does not have yet, which the board accepts when they hash to the dealer's signed hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disclosure<C: Curve> {
    /// Session.
    pub session: SessionId,
    /// Player position.
    pub player: u32,
    /// `(dealer, f(x_j), f'(x_j))`, ascending by dealer.
    pub shares: Pairs<C>,
    /// `(dealer, Pedersen commitment)`, strictly ascending by dealer.
    pub commitments: Vec<(u32, EvalCommitment<C>)>,
}

/// Dispute phase: a player's complaints about pairs that dealers sent again in their
/// justifications and that do not open their commitments: the key of each such ciphertext with
/// its proof, so that the board can decrypt and check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispute {
    /// Session.
    pub session: SessionId,
    /// Player position.
    pub player: u32,
    /// `(dealer, reveal)`, strictly ascending by dealer.
    pub reveals: Vec<(u32, KeyReveal)>,
}

/// A board post of the complaint variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComplaintPost<C: Curve> {
    /// Report phase (or the deal phase, once every deal verified), by a player.
    Report(Report<C>),
    /// Justify phase, by a dealer.
    Justification(Justification<C>),
    /// Dispute phase, by a player: reveals of bad pairs sent again.
    Dispute(Dispute),
    /// Feldman phase, by a qualified dealer.
    Feldman(FeldmanPost<C>),
    /// Complain phase, by a qualified player: pairs that contradict Feldman values (none: it
    /// has no complaint).
    Complaint(Disclosure<C>),
    /// Reconstruct phase, by a player: pairs for failed dealers.
    Reconstruction(Disclosure<C>),
}

impl<C: Curve> ComplaintPost<C> {
    /// Session of the post.
    pub fn session(&self) -> &SessionId {
        match self {
            ComplaintPost::Report(r) => &r.session,
            ComplaintPost::Justification(j) => &j.session,
            ComplaintPost::Dispute(d) => &d.session,
            ComplaintPost::Feldman(f) => &f.session,
            ComplaintPost::Complaint(d) | ComplaintPost::Reconstruction(d) => &d.session,
        }
    }

    /// The author: its role and its position in that role's list.
    pub fn author(&self) -> (Role, u32) {
        match self {
            ComplaintPost::Report(r) => (Role::Player, r.player),
            ComplaintPost::Justification(j) => (Role::Dealer, j.dealer),
            ComplaintPost::Dispute(d) => (Role::Player, d.player),
            ComplaintPost::Feldman(f) => (Role::Dealer, f.dealer),
            ComplaintPost::Complaint(d) | ComplaintPost::Reconstruction(d) => {
                (Role::Player, d.player)
            }
        }
    }

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            ComplaintPost::Report(r) => {
                w.u8(TAG_REPORT).fixed(&r.session).u32(r.player);
                w.u32(r.heard.len() as u32);
                for e in &r.heard {
                    w.u32(e.dealer).fixed(&e.hash).fixed(&e.signature.0);
                }
                write_bitmap(&mut w, &r.valid);
                w.u32(r.complaints.len() as u32);
                for c in &r.complaints {
                    w.u32(c.dealer);
                    write_commitment::<C>(&mut w, &c.commitment);
                    w.bytes(&c.ciphertext).fixed(&c.signature.0);
                    match &c.reveal {
                        None => {
                            w.u8(0);
                        }
                        Some(k) => {
                            w.u8(1).fixed(&k.to_bytes());
                        }
                    }
                }
                if let Some(e) = &r.conflicting {
                    w.u8(1).u32(e.dealer).fixed(&e.hash).fixed(&e.signature.0);
                }
            }
            ComplaintPost::Justification(j) => {
                w.u8(TAG_JUSTIFICATION).fixed(&j.session).u32(j.dealer);
                write_commitment::<C>(&mut w, &j.commitment);
                w.u32(j.deals.len() as u32);
                for (p, ct) in &j.deals {
                    w.u32(*p).bytes(ct);
                }
            }
            ComplaintPost::Feldman(f) => {
                w.u8(TAG_FELDMAN).fixed(&f.session).u32(f.dealer);
                write_commitment::<C>(&mut w, &f.commitment);
            }
            ComplaintPost::Complaint(d) | ComplaintPost::Reconstruction(d) => {
                let tag = if matches!(self, ComplaintPost::Complaint(_)) {
                    TAG_COMPLAINT
                } else {
                    TAG_RECONSTRUCTION
                };
                w.u8(tag).fixed(&d.session).u32(d.player);
                write_pairs::<C>(&mut w, &d.shares);
                w.u32(d.commitments.len() as u32);
                for (dealer, c) in &d.commitments {
                    w.u32(*dealer);
                    write_commitment::<C>(&mut w, c);
                }
            }
            ComplaintPost::Dispute(d) => {
                w.u8(TAG_DISPUTE).fixed(&d.session).u32(d.player);
                w.u32(d.reveals.len() as u32);
                for (dealer, k) in &d.reveals {
                    w.u32(*dealer).fixed(&k.to_bytes());
                }
            }
        }
        w.finish()
    }

    /// Decodes a post for at most `max_players` players and `max_dealers` dealers.
    pub fn decode(bytes: &[u8], max_players: usize, max_dealers: usize) -> Result<Self, WireError> {
        let max_players = max_players.min(MAX_PARTICIPANTS);
        let max_dealers = max_dealers.min(MAX_PARTICIPANTS);
        let mut r = Reader::new(bytes);
        let post = match r.u8()? {
            TAG_REPORT => {
                let session = r.array()?;
                let player = r.u32()?;
                let count = r.count("heard entries", max_dealers)?;
                let mut heard: Vec<HeardEntry> =
                    Vec::with_capacity(count.min(r.remaining() / (4 + 32 + SIGNATURE_LEN)));
                for _ in 0..count {
                    let dealer = r.u32()?;
                    if heard.last().is_some_and(|e| e.dealer >= dealer) {
                        return Err(WireError::NonCanonical("heard entries not ascending"));
                    }
                    heard.push(HeardEntry {
                        dealer,
                        hash: r.array()?,
                        signature: IdentitySignature(r.array()?),
                    });
                }
                let valid = read_bitmap(&mut r, "valid bitmap", max_dealers)?;
                let count = r.count("complaints", max_dealers)?;
                let mut complaints: Vec<DealComplaint<C>> = Vec::with_capacity(
                    count.min(r.remaining() / (4 + PAIR_CIPHERTEXT_LEN + SIGNATURE_LEN)),
                );
                for _ in 0..count {
                    let dealer = r.u32()?;
                    if complaints.last().is_some_and(|c| c.dealer >= dealer) {
                        return Err(WireError::NonCanonical("complaints not ascending"));
                    }
                    let commitment = read_commitment::<C>(&mut r, max_players)?;
                    let ciphertext = r.bytes("ciphertext", PAIR_CIPHERTEXT_LEN)?.to_vec();
                    let signature = IdentitySignature(r.array()?);
                    let reveal = match r.u8()? {
                        0 => None,
                        1 => Some(read_reveal(&mut r)?),
                        _ => return Err(WireError::NonCanonical("reveal flag")),
                    };
                    complaints.push(DealComplaint {
                        dealer,
                        commitment,
                        ciphertext,
                        signature,
                        reveal,
                    });
                }
                let conflicting = if r.remaining() == 0 {
                    None
                } else {
                    if r.u8()? != 1 {
                        return Err(WireError::NonCanonical("conflicting statement flag"));
                    }
                    Some(HeardEntry {
                        dealer: r.u32()?,
                        hash: r.array()?,
                        signature: IdentitySignature(r.array()?),
                    })
                };
                ComplaintPost::Report(Report {
                    session,
                    player,
                    heard,
                    valid,
                    complaints,
                    conflicting,
                })
            }
            TAG_JUSTIFICATION => {
                let session = r.array()?;
                let dealer = r.u32()?;
                let commitment = read_commitment::<C>(&mut r, max_players)?;
                let count = r.count("justified deals", max_players)?;
                let mut deals: Vec<(u32, Vec<u8>)> =
                    Vec::with_capacity(count.min(r.remaining() / (8 + PAIR_CIPHERTEXT_LEN)));
                for _ in 0..count {
                    let p = r.u32()?;
                    if deals.last().is_some_and(|(prev, _)| *prev >= p) {
                        return Err(WireError::NonCanonical("justified deals not ascending"));
                    }
                    deals.push((p, r.bytes("ciphertext", PAIR_CIPHERTEXT_LEN)?.to_vec()));
                }
                ComplaintPost::Justification(Justification {
                    session,
                    dealer,
                    commitment,
                    deals,
                })
            }
            TAG_FELDMAN => ComplaintPost::Feldman(FeldmanPost {
                session: r.array()?,
                dealer: r.u32()?,
                commitment: read_commitment::<C>(&mut r, max_players)?,
            }),
            tag @ (TAG_COMPLAINT | TAG_RECONSTRUCTION) => {
                let session = r.array()?;
                let player = r.u32()?;
                let shares = read_pairs::<C>(&mut r, "disclosed shares", max_dealers)?;
                let count = r.count("disclosed commitments", max_dealers)?;
                let mut commitments: Vec<(u32, EvalCommitment<C>)> =
                    Vec::with_capacity(count.min(r.remaining() / (8 + 2 * C::UNCOMPRESSED_LEN)));
                for _ in 0..count {
                    let dealer = r.u32()?;
                    if commitments.last().is_some_and(|(prev, _)| *prev >= dealer) {
                        return Err(WireError::NonCanonical("commitments not ascending"));
                    }
                    commitments.push((dealer, read_commitment::<C>(&mut r, max_players)?));
                }
                let d = Disclosure {
                    session,
                    player,
                    shares,
                    commitments,
                };
                if tag == TAG_COMPLAINT {
                    ComplaintPost::Complaint(d)
                } else {
                    ComplaintPost::Reconstruction(d)
                }
            }
            TAG_DISPUTE => {
                let session = r.array()?;
                let player = r.u32()?;
                let count = r.count("reveals", max_dealers)?;
                let mut reveals: Vec<(u32, KeyReveal)> =
                    Vec::with_capacity(count.min(r.remaining() / (4 + REVEAL_LEN)));
                for _ in 0..count {
                    let dealer = r.u32()?;
                    if reveals.last().is_some_and(|(prev, _)| *prev >= dealer) {
                        return Err(WireError::NonCanonical("reveals not ascending"));
                    }
                    reveals.push((dealer, read_reveal(&mut r)?));
                }
                ComplaintPost::Dispute(Dispute {
                    session,
                    player,
                    reveals,
                })
            }
            tag => return Err(WireError::UnknownTag { what: "post", tag }),
        };
        r.finish()?;
        Ok(post)
    }
}

/// A post with its author's identity signature (for [`Purpose::Post`]) on the post's encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedComplaintPost<C: Curve> {
    /// The post.
    pub post: ComplaintPost<C>,
    /// Signature by the author.
    pub signature: IdentitySignature,
}

impl<C: Curve> SignedComplaintPost<C> {
    /// Signs a post.
    pub fn sign(identity: &IdentityKeypair, post: ComplaintPost<C>) -> Self {
        let signature = identity.sign(Purpose::Post, &post.encode());
        SignedComplaintPost { post, signature }
    }

    /// Canonical encoding: signature then post.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.signature.0.to_vec();
        out.extend_from_slice(&self.post.encode());
        out
    }

    /// The session a signed post's bytes name, read without decoding the rest; `None` unless
    /// they start as a post does (as [`crate::messages::SignedPost::claimed_session`]).
    pub fn claimed_session(bytes: &[u8]) -> Option<SessionId> {
        let post = bytes.get(SIGNATURE_LEN..)?;
        if !matches!(
            *post.first()?,
            TAG_REPORT
                | TAG_JUSTIFICATION
                | TAG_FELDMAN
                | TAG_COMPLAINT
                | TAG_RECONSTRUCTION
                | TAG_DISPUTE
        ) {
            return None;
        }
        post.get(1..33)?.try_into().ok()
    }

    /// Decodes a signed post (bounds as in [`ComplaintPost::decode`]).
    pub fn decode(bytes: &[u8], max_players: usize, max_dealers: usize) -> Result<Self, WireError> {
        if bytes.len() < SIGNATURE_LEN {
            return Err(WireError::Truncated {
                needed: SIGNATURE_LEN - bytes.len(),
            });
        }
        let (sig, rest) = bytes.split_at(SIGNATURE_LEN);
        Ok(SignedComplaintPost {
            signature: IdentitySignature::from_slice(sig)
                .map_err(|_| WireError::NonCanonical("signature"))?,
            post: ComplaintPost::decode(rest, max_players, max_dealers)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ff::Field;
    use keyquorum_crypto::index;
    use keyquorum_crypto::poly::Polynomial;
    use keyquorum_crypto::verifiable_encrypt::VerifiableEncryptionSecretKey;
    use keyquorum_crypto::{Bls12381G1, Secp256k1};
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    const N: usize = 4;

    fn samples<C: Curve>() -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let id = IdentityKeypair::from_seed(&[9; 32]).unwrap();
        let enc = VerifiableEncryptionSecretKey::generate(&mut rng);
        let xs = index::sequential::<C::Scalar>(N);
        let f = Polynomial::<C::Scalar>::random(2, None, &mut rng);
        let b = Polynomial::<C::Scalar>::random(2, None, &mut rng);
        let session = [5u8; 32];
        let signed = SignedPedersen::new(&id, &session, 1, EvalCommitment::pedersen(&f, &b, &xs));
        let deal = seal_deal(
            &id,
            &session,
            &signed,
            (2, &enc.public_key()),
            &f.evaluate(&xs[2]),
            &b.evaluate(&xs[2]),
            &mut rng,
        );
        let pair = |j: usize| (j as u32, f.evaluate(&xs[j]), b.evaluate(&xs[j]));
        let aad = pair_aad(&session, 1, 2, &signed.hash);
        let reveal = verifiable_encrypt::reveal_key(
            &enc,
            &aad,
            &VerifiableCiphertext::from_bytes(&deal.ciphertext, PAIR_LEN).unwrap(),
            &mut rng,
        )
        .unwrap();
        let complaint = |reveal| DealComplaint {
            dealer: 1,
            commitment: signed.commitment.clone(),
            ciphertext: deal.ciphertext.clone(),
            signature: deal.signature,
            reveal,
        };
        let posts = vec![
            ComplaintPost::<C>::Report(Report {
                session,
                player: 3,
                heard: vec![HeardEntry {
                    dealer: 1,
                    hash: signed.hash,
                    signature: signed.signature,
                }],
                valid: vec![1],
                complaints: vec![],
                conflicting: Some(HeardEntry {
                    dealer: 1,
                    hash: [4; 32],
                    signature: signed.signature,
                }),
            }),
            ComplaintPost::Report(Report {
                session,
                player: 0,
                heard: vec![],
                valid: vec![],
                complaints: vec![],
                conflicting: None,
            }),
            ComplaintPost::Justification(Justification {
                session,
                dealer: 1,
                commitment: signed.commitment.clone(),
                deals: vec![(0, deal.ciphertext.clone()), (3, deal.ciphertext.clone())],
            }),
            ComplaintPost::Feldman(FeldmanPost {
                session,
                dealer: 1,
                commitment: EvalCommitment::feldman(&f, &xs),
            }),
            ComplaintPost::Complaint(Disclosure {
                session,
                player: 2,
                shares: vec![(1, C::Scalar::ONE, C::Scalar::ZERO)],
                commitments: vec![(1, signed.commitment.clone())],
            }),
            ComplaintPost::Reconstruction(Disclosure {
                session,
                player: 2,
                shares: vec![pair(2)],
                commitments: vec![],
            }),
            ComplaintPost::Dispute(Dispute {
                session,
                player: 2,
                reveals: vec![(1, reveal)],
            }),
            ComplaintPost::Report(Report {
                session,
                player: 2,
                heard: vec![HeardEntry {
                    dealer: 1,
                    hash: signed.hash,
                    signature: signed.signature,
                }],
                valid: vec![],
                complaints: vec![complaint(Some(reveal))],
                conflicting: None,
            }),
            ComplaintPost::Report(Report {
                session,
                player: 2,
                heard: vec![HeardEntry {
                    dealer: 1,
                    hash: signed.hash,
                    signature: signed.signature,
                }],
                valid: vec![],
                complaints: vec![complaint(None)],
                conflicting: None,
            }),
        ];
        let signed_posts = posts
            .into_iter()
            .map(|p| SignedComplaintPost::sign(&id, p).encode())
            .collect();
        (deal.encode(), signed_posts)
    }

    fn round_trips<C: Curve>() {
        let (deal, posts) = samples::<C>();
        let d = Deal::<C>::decode(&deal, N).unwrap();
        assert_eq!(d.encode(), deal);
        assert!(
            d.statement()
                .verify(IdentityKeypair::from_seed(&[9; 32]).unwrap().public())
        );
        assert!(Deal::<C>::decode(&deal, N - 1).is_err());
        for p in &posts {
            let s = SignedComplaintPost::<C>::decode(p, N, N).unwrap();
            assert_eq!(&s.encode(), p);
            for cut in 0..p.len() {
                if let Ok(s) = SignedComplaintPost::<C>::decode(&p[..cut], N, N) {
                    // A report's conflicting statement is optional and last: the bytes before
                    // it are a report of their own (which the signature no longer covers).
                    let conflicting_len = 1 + 4 + 32 + SIGNATURE_LEN;
                    assert!(
                        matches!(&s.post, ComplaintPost::Report(r) if r.conflicting.is_none())
                            && cut == p.len() - conflicting_len
                    );
                }
            }
            let mut longer = p.clone();
            longer.push(0);
            assert!(SignedComplaintPost::<C>::decode(&longer, N, N).is_err());
        }
        for cut in 0..deal.len() {
            assert!(Deal::<C>::decode(&deal[..cut], N).is_err());
        }
        let st = d.statement();
        assert_eq!(CommitmentStatement::decode(&st.encode()).unwrap(), st);
    }

    #[test]
    fn encodings_round_trip_and_truncations_fail() {
        round_trips::<Bls12381G1>();
        round_trips::<Secp256k1>();
    }

    #[test]
    fn non_canonical_lists_are_rejected() {
        let (_, posts) = samples::<Secp256k1>();
        // The report with one heard entry: duplicate the entry (not strictly ascending).
        let mut r = SignedComplaintPost::<Secp256k1>::decode(&posts[0], N, N).unwrap();
        if let ComplaintPost::Report(rep) = &mut r.post {
            rep.heard.push(rep.heard[0].clone());
        }
        assert!(SignedComplaintPost::<Secp256k1>::decode(&r.encode(), N, N).is_err());
        // A bitmap with a trailing zero byte.
        // (The report ends with the bitmap's length, then the complaint count.)
        let mut bytes = posts[1].clone();
        let len = bytes.len();
        bytes.truncate(len - 8);
        bytes.extend_from_slice(&1u32.to_be_bytes());
        bytes.push(0);
        bytes.extend_from_slice(&0u32.to_be_bytes());
        assert!(matches!(
            SignedComplaintPost::<Secp256k1>::decode(&bytes, N, N),
            Err(WireError::NonCanonical(_))
        ));
        // A complaint's reveal flag other than 0 or 1 (the last report sample has no reveal, so
        // its flag is its last byte).
        let mut bytes = posts[posts.len() - 1].clone();
        *bytes.last_mut().unwrap() = 2;
        assert!(matches!(
            SignedComplaintPost::<Secp256k1>::decode(&bytes, N, N),
            Err(WireError::NonCanonical(_))
        ));
        // Two complaints about one dealer.
        let mut r =
            SignedComplaintPost::<Secp256k1>::decode(&posts[posts.len() - 2], N, N).unwrap();
        if let ComplaintPost::Report(rep) = &mut r.post {
            rep.complaints.push(rep.complaints[0].clone());
        }
        assert!(SignedComplaintPost::<Secp256k1>::decode(&r.encode(), N, N).is_err());
    }

    fn mutate(bytes: &[u8], pos: usize, val: u8, cut: usize) -> Vec<u8> {
        let mut m = bytes.to_vec();
        if !m.is_empty() {
            let i = pos % m.len();
            m[i] ^= val;
        }
        m.truncate(cut.min(m.len()));
        m
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = Deal::<Bls12381G1>::decode(&bytes, N);
            let _ = Deal::<Secp256k1>::decode(&bytes, N);
            let _ = SignedComplaintPost::<Bls12381G1>::decode(&bytes, N, N);
            let _ = SignedComplaintPost::<Secp256k1>::decode(&bytes, N, N);
            let _ = CommitmentStatement::decode(&bytes);
            // The same bytes behind each tag, to get past the first byte.
            for tag in [TAG_REPORT, TAG_JUSTIFICATION, TAG_FELDMAN, TAG_COMPLAINT, TAG_RECONSTRUCTION, TAG_DISPUTE] {
                let mut b = vec![0u8; SIGNATURE_LEN];
                b.push(tag);
                b.extend_from_slice(&bytes);
                let _ = SignedComplaintPost::<Secp256k1>::decode(&b, N, N);
                let _ = SignedComplaintPost::<Bls12381G1>::decode(&b, N, N);
            }
        }

        #[test]
        fn mutated_messages_never_panic(which in 0usize..10, pos in any::<usize>(), val in 1u8..=255, cut in any::<usize>()) {
            let (deal, posts) = samples::<Secp256k1>();
            let src = if which == 0 { &deal } else { &posts[which - 1] };
            let m = mutate(src, pos, val, cut);
            if let Ok(d) = Deal::<Secp256k1>::decode(&m, N) {
                prop_assert_eq!(d.encode(), m.clone());
            }
            if let Ok(p) = SignedComplaintPost::<Secp256k1>::decode(&m, N, N) {
                prop_assert_eq!(p.encode(), m);
            }
        }
    }
}
