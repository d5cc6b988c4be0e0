//! The DKG of a section session: keyquorum's ack-or-reveal engine
//! ([`keyquorum_dkg::ackreveal`]) run among the session's candidates, with no chain.
//!
//! # The board without a chain
//! The engine expects a board: one sequence of signed posts and phase deadlines that every
//! participant replays identically, so all of them compute the same qualified set, group key and
//! exclusions ([`keyquorum_dkg::board`]). A section has no chain, so the candidates agree on the
//! board themselves, round by round, as seed 002 has its candidates agree on the messages they saw
//! ("we don't rely on a single node to report the outcome"):
//!
//! 1. A post the engine emits is sent to every other candidate ([`DkgMessage::Post`]). A
//!    candidate that receives a post it has not seen checks it (it decodes, names this
//!    ceremony, and its author's identity signature verifies) and forwards it once to every
//!    other candidate, so a post that reaches one honest candidate reaches all of them.
//! 2. Round `r` ends at the driver's `r`-th deadline ([`DkgRun::deadline`]): the candidate votes
//!    ([`DkgMessage::Vote`]) for the set of posts it holds that no earlier round delivered,
//!    sending the posts themselves, so a voter cannot name a post the others lack.
//! 3. Round `r` is decided when [`supermajority`]`(n)` distinct candidates voted for the same
//!    set. The candidate then feeds those posts, sorted by their digest, and one deadline into its
//!    engine, and votes that set itself if it had not voted yet (so a late candidate helps the
//!    others decide). Posts the engine emits in reaction belong to the next round.
//!
//! # Why it is safe
//! Each candidate votes once per round (a second, different vote from the same sender is
//! refused), so two different sets cannot both gather `s = supermajority(n)` votes while at most
//! `n - s` candidates are faulty: two quorums of `s` share `2s - n > n - s` voters, one of them
//! honest. So every candidate that decides round `r` feeds the same posts in the same order and
//! the same deadline to its engine: the engines' boards are identical, hence their outcomes. A
//! faulty candidate can only vote, post and deal as a faulty participant of the engine can on a
//! chain; the engine's own rules (equivocation, invalid commitments, missing acks) deal with it.
//!
//! # What it assumes, and its limits
//! - Messages are authenticated by the transport: `from` is the sender's name, as a node's
//!   connection proves with its node key. Votes and direct messages are not signed again.
//! - Liveness needs at least `s` honest, responsive candidates and a network that delivers a post
//!   to every honest candidate before their deadline, so that their votes match. Candidates do
//!   not start at the same instant (each starts when the elders' signatures reach it), so round
//!   0 waits up to [`START_GRACE`] extra deadlines for every candidate's contribution before
//!   voting without it: a candidate that starts late by less than that is not excluded for it,
//!   and a silent one is excluded that many deadlines later. Likewise a round left undecided
//!   past its deadline because a vote is missing (not because the votes differ) is given up
//!   to [`VOTE_SLACK`] more deadlines over the whole run. A post that
//!   reaches some honest candidates only after they voted (a dealer sending it just before the
//!   deadline) splits the votes: the round is not decided, and at the next deadline the run fails
//!   naming the candidates it holds no vote from, or, if all voted, the authors of the posts some
//!   votes lack. Honest candidates can then name different sets, and no failure agreement forms;
//!   the elders' next start (a later membership change) supersedes the session. This is the
//!   price of deciding by matching votes instead of running a consensus protocol.
//! - A section accepts the DKG only if nobody was excluded: the engine can finish with a key
//!   while excluding a dealer or a player, but every elder of the new SAP must hold a share. An
//!   exclusion therefore ends the run as a failure naming the excluded candidates, which every
//!   honest candidate computes identically from the agreed board, so their observations match
//!   and the failure agreement restarts the session without them (seed 002, "Handling a
//!   failure").
//!
//! # A candidate back from a crash
//! A candidate that crashes and restarts from its log ([`crate::store`]) replays its run to where
//! it stopped, but the others may have decided rounds meanwhile, each voting once, and may even
//! have finished and handed over to a SAP that names it. Its restored run therefore asks every
//! other candidate for their votes on its current round and the next ([`DkgMessage::Behind`],
//! [`DkgRun::resume`]), and asks again for the following rounds whenever those votes move it on,
//! and again at each deadline that finds it no further on (the answers may have been lost). A
//! candidate answers with its own votes on those rounds, if it voted on them, each at most
//! [`MAX_ANSWERS`] times per asker, also after its run ended: the coordinator keeps the finished
//! run that gave it its share until the next SAP applies. The restarted candidate decides a round
//! only on a supermajority of matching votes, as before, so the answers cannot lead it anywhere the
//! others did not go; it ends with the share the section's SAP names it for. A run that never
//! restarted sends none of these messages.
//!
//! # Determinism
//! A run is a function of its inputs: the node key, the start, the messages and the deadlines.
//! Its randomness is derived from the node key's secret and the session id
//! ([`dkg_secrets`]): a node that crashes and replays the same session deals the same
//! polynomial instead of equivocating, and different sessions draw independent polynomials.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use blstrs::Scalar;
use keyquorum_crypto::Bls12381G1;
use keyquorum_crypto::encrypt::{EncryptionPublicKey, EncryptionSecretKey};
use keyquorum_crypto::hash::tagged_hash;
use keyquorum_crypto::index::IndexScheme;
use keyquorum_crypto::secret::Secret;
use keyquorum_dkg::ackreveal::AckRevealParticipant;
use keyquorum_dkg::identity::{IdentityKeypair, IdentityPublicKey, IdentitySignature, Purpose};
use keyquorum_dkg::messages::SignedPost;
use keyquorum_dkg::participant::{Action, Input};
use keyquorum_dkg::{Ceremony, CeremonyConfig, Member, Params, Variant};
use zeroize::Zeroizing;

use crate::keys::{PublicKey, key_bytes};
use crate::name::Name;
use crate::sap::{KeyShare, index_at};
use crate::session::{DkgStart, SessionId, supermajority};

const IDENTITY_TAG: &str = "keyquorum-sections/dkg-identity/v1";
const ENCRYPTION_TAG: &str = "keyquorum-sections/dkg-encryption/v1";
const SEED_TAG: &str = "keyquorum-sections/dkg-seed/v1";
const POST_TAG: &str = "keyquorum-sections/dkg-post/v1";
const DOMAIN: &[u8] = b"keyquorum-sections";

/// Most rounds a run takes before it fails: success takes three (contribute, share, publish),
/// each engine retry one more.
pub const MAX_ROUNDS: u32 = 16;

/// Most deadlines round 0 waits, beyond its own, for a contribution from every candidate
/// before voting without the missing ones. Candidates start when the elders' signatures reach
/// them, so their clocks differ by that delivery time; a candidate reached later (one just
/// admitted, still being dialled) would otherwise miss round 0 and fail the session for that
/// lag alone, and at two or three candidates one observation is enough to exclude it.
pub const START_GRACE: u32 = 3;

/// Most deadlines, over the whole run, that a round may stay undecided past its own while some
/// candidate's vote on it is missing. A vote that is only late (a loaded machine, a slow
/// link) is waited for; votes that are all in but differ are not, since waiting cannot
/// reconcile them.
pub const VOTE_SLACK: u32 = 2;

/// Most times a run sends its vote on one round again to one restarted candidate that asks for
/// it ([`DkgMessage::Behind`]): the first answer, and one more for a candidate that asked again
/// at its next deadline because the first was lost. Bounded because a vote carries every post
/// it names, tens of kilobytes each.
pub const MAX_ANSWERS: u32 = 2;

/// Most distinct valid posts a run keeps from one author over the whole session: an honest
/// dealer posts one contribution and one publication per engine attempt, and one more is
/// enough to prove equivocation.
pub const MAX_POSTS_PER_AUTHOR: usize = 8;

/// Longest post accepted: a contribution of [`crate::session::MAX_CANDIDATES`] + 1 compressed
/// points (about 49 KB) or a publication revealing fewer shares (about 37 KB), with room for
/// the headers.
pub const MAX_POST_LEN: usize = 128 * 1024;

/// A candidate's public DKG keys, as its [`crate::elders::Peer`] lists them: the identity key
/// that signs its posts and acks (with its proof of possession, which makes aggregate acks
/// sound against rogue keys) and the key shares are encrypted to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DkgKeys {
    /// Identity key (BLS, G2).
    pub identity: IdentityPublicKey,
    /// Proof of possession of the identity key.
    pub pop: IdentitySignature,
    /// Share-encryption key (X25519).
    pub encryption: EncryptionPublicKey,
}

impl DkgKeys {
    /// The DKG keys of the node holding `node_key`.
    pub fn of(node_key: &Secret<Scalar>) -> Self {
        let (identity, encryption) = dkg_secrets(node_key);
        DkgKeys {
            identity: identity.public().clone(),
            pop: identity.proof_of_possession(),
            encryption: encryption.public_key(),
        }
    }

    /// Canonical encoding: identity key (96 bytes), proof of possession (48), encryption key
    /// (32).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.identity.as_bytes());
        out.extend_from_slice(&self.pop.0);
        out.extend_from_slice(&self.encryption.to_bytes());
    }

    /// Whether the proof of possession verifies.
    pub fn verify_pop(&self) -> bool {
        self.identity.verify_pop(&self.pop)
    }

    fn member(&self) -> Member {
        Member {
            identity: self.identity.clone(),
            encryption: self.encryption,
        }
    }
}

/// The DKG identity and encryption secrets of the node holding `node_key`, derived from it with
/// domain-separated hashes: the node key is the one secret a node keeps, and anyone knowing the
/// public side of one cannot learn the others.
pub fn dkg_secrets(node_key: &Secret<Scalar>) -> (IdentityKeypair, EncryptionSecretKey) {
    let sk = Zeroizing::new(node_key.expose().to_bytes_be());
    let identity_seed = Zeroizing::new(tagged_hash(IDENTITY_TAG, &[sk.as_slice()]));
    let encryption_seed = Zeroizing::new(tagged_hash(ENCRYPTION_TAG, &[sk.as_slice()]));
    let identity = IdentityKeypair::from_seed(identity_seed.as_slice())
        .expect("a 32-byte seed is long enough");
    (identity, EncryptionSecretKey::from_seed(&encryption_seed))
}

/// A DKG message between the candidates of one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DkgMessage {
    /// An engine message to one candidate (an encrypted share or an ack).
    Direct {
        /// The session.
        session: SessionId,
        /// The engine's encoded message.
        payload: Vec<u8>,
    },
    /// A signed board post, from its author or forwarded by a candidate that first saw it.
    Post {
        /// The session.
        session: SessionId,
        /// The engine's encoded signed post.
        post: Vec<u8>,
    },
    /// A candidate's vote on the posts of one round: the posts themselves, sorted by digest.
    Vote {
        /// The session.
        session: SessionId,
        /// The round.
        round: u32,
        /// The posts.
        posts: Vec<Vec<u8>>,
    },
    /// A restarted candidate has not decided `round` and asks for the votes on it and on the
    /// round after ([`DkgRun::resume`]).
    Behind {
        /// The session.
        session: SessionId,
        /// The first round the sender has not decided.
        round: u32,
    },
}

impl DkgMessage {
    /// The session the message belongs to.
    pub fn session(&self) -> SessionId {
        match self {
            DkgMessage::Direct { session, .. }
            | DkgMessage::Post { session, .. }
            | DkgMessage::Vote { session, .. }
            | DkgMessage::Behind { session, .. } => *session,
        }
    }
}

/// Why a DKG message was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DkgDrop {
    /// The sender is not a candidate of the session.
    #[error("sender is not a candidate")]
    NotACandidate,
    /// A post that does not decode, names another ceremony or author, or whose signature fails.
    #[error("bad post: {0}")]
    BadPost(&'static str),
    /// The author already has [`MAX_POSTS_PER_AUTHOR`] posts.
    #[error("too many posts from one author")]
    TooManyPosts,
    /// A vote for a round more than one ahead, or beyond [`MAX_ROUNDS`].
    #[error("vote for round {0} is too far ahead")]
    FutureRound(u32),
    /// The candidate already voted another set in this round.
    #[error("conflicting vote")]
    Equivocation,
    /// The same vote again.
    #[error("duplicate vote")]
    Duplicate,
    /// The ceremony could not be built from the start (duplicate DKG keys, bad parameters).
    #[error("cannot run a ceremony for this start")]
    BadCeremony,
}

/// How a run ended.
#[derive(Debug)]
pub enum DkgResult {
    /// The agreed board succeeded with nobody excluded; our share of the new key.
    Share(KeyShare),
    /// The run failed; the candidates to blame (empty if it cannot name anyone).
    Failed(BTreeSet<Name>),
}

/// What a run asks its coordinator to do.
#[derive(Debug)]
pub enum DkgEvent {
    /// Send `message` to the candidate named `to`.
    Send {
        /// Recipient.
        to: Name,
        /// The message.
        message: DkgMessage,
    },
    /// The run ended.
    Done(DkgResult),
}

/// One node's run of the DKG of one session.
pub struct DkgRun {
    session: SessionId,
    names: Vec<Name>,
    identities: Vec<IdentityPublicKey>,
    our: usize,
    ceremony: Arc<Ceremony<Bls12381G1>>,
    engine: AckRevealParticipant<Bls12381G1>,
    /// The round being agreed on; every earlier round is decided.
    round: u32,
    /// Deadlines seen: deadline `k + waited` ends round `k`.
    deadlines: u32,
    /// Deadlines round 0 let pass waiting for every candidate's contribution.
    waited: u32,
    /// Every valid post seen, by digest, with its author's position.
    posts: BTreeMap<[u8; 32], (u32, Vec<u8>)>,
    /// Digests fed to the engine.
    delivered: BTreeSet<[u8; 32]>,
    /// Votes of the current and the next round, by voter.
    votes: BTreeMap<u32, BTreeMap<Name, Vec<[u8; 32]>>>,
    voted: BTreeSet<u32>,
    /// Our own vote of every round we voted on, kept to send again to a candidate that fell
    /// behind (`help_behind`).
    our_votes: BTreeMap<u32, Vec<[u8; 32]>>,
    /// How often we sent our vote on a round again to a candidate, by (its position, round):
    /// at most [`MAX_ANSWERS`] times each, so a candidate asking again and again cannot make
    /// us send more than `MAX_ANSWERS * MAX_ROUNDS` votes.
    resent: BTreeMap<(usize, u32), u32>,
    /// Restarted from the log: we ask for the votes of each round we reach
    /// ([`DkgRun::resume`]).
    behind: bool,
    done: bool,
}

impl core::fmt::Debug for DkgRun {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DkgRun")
            .field("session", &self.session)
            .field("round", &self.round)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl DkgRun {
    /// Starts our run of `start`'s DKG: `n` candidates, threshold and quorum
    /// `supermajority(n)`, share indices `1..=n` in candidate order (the SAP's), the ceremony
    /// bound to the section session id. Returns the run and its first messages.
    ///
    /// The ceremony's domain and our dealing's seed also bind `genesis_key`, the network's: a
    /// session id names only the prefix, generation, attempt and candidates, so without it two
    /// networks of the same node keys (a test network rebuilt as a new one, say) would deal
    /// the same polynomials and make the same section keys, and a signature of one would
    /// verify in the other.
    pub fn start(
        node_key: &Secret<Scalar>,
        our_name: Name,
        start: &DkgStart,
        genesis_key: &PublicKey,
    ) -> Result<(Self, Vec<DkgEvent>), DkgDrop> {
        let names = start.names();
        let our = names
            .iter()
            .position(|n| *n == our_name)
            .ok_or(DkgDrop::NotACandidate)?;
        let n = names.len();
        let s = supermajority(n);
        let params = Params::new(n, s, s).map_err(|_| DkgDrop::BadCeremony)?;
        let network = key_bytes(genesis_key);
        let mut domain = DOMAIN.to_vec();
        domain.extend_from_slice(&start.session.0);
        domain.extend_from_slice(&network);
        let config = CeremonyConfig {
            domain,
            epoch: start.generation,
            variant: Variant::AckReveal,
            params,
            index_scheme: IndexScheme::Sequential,
            players: start.candidates.iter().map(|c| c.dkg.member()).collect(),
            reshare: None,
            // Only the complaint variant encrypts deals verifiably.
            verifiable_keys: Vec::new(),
        };
        let ceremony = Ceremony::new(config).map_err(|_| DkgDrop::BadCeremony)?;
        let (identity, encryption) = dkg_secrets(node_key);
        let sk = Zeroizing::new(node_key.expose().to_bytes_be());
        let seed = tagged_hash(SEED_TAG, &[sk.as_slice(), &start.session.0, &network]);
        let engine = AckRevealParticipant::new(ceremony.clone(), identity, encryption, None, seed)
            .map_err(|_| DkgDrop::NotACandidate)?;
        let mut run = DkgRun {
            session: start.session,
            names,
            identities: start
                .candidates
                .iter()
                .map(|c| c.dkg.identity.clone())
                .collect(),
            our,
            ceremony,
            engine,
            round: 0,
            deadlines: 0,
            waited: 0,
            posts: BTreeMap::new(),
            delivered: BTreeSet::new(),
            votes: BTreeMap::new(),
            voted: BTreeSet::new(),
            our_votes: BTreeMap::new(),
            resent: BTreeMap::new(),
            behind: false,
            done: false,
        };
        let actions = run.engine.handle(Input::Start);
        let events = run.absorb(actions);
        Ok((run, events))
    }

    /// Whether the run ended.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The round being agreed on.
    pub fn round(&self) -> u32 {
        self.round
    }

    /// A message from candidate `from` (as the transport authenticated it).
    pub fn handle(&mut self, from: Name, message: &DkgMessage) -> Result<Vec<DkgEvent>, DkgDrop> {
        let sender = self
            .names
            .iter()
            .position(|n| *n == from)
            .ok_or(DkgDrop::NotACandidate)?;
        if let DkgMessage::Behind { round, .. } = message {
            // Answered also after our run ended: the restarted sender may be the last
            // candidate without a share of the key the others hold.
            return Ok(self.help_behind(sender, *round));
        }
        if self.done {
            return Ok(Vec::new());
        }
        match message {
            DkgMessage::Direct { payload, .. } => {
                let actions = self.engine.handle(Input::Message {
                    from: self.identities[sender].clone(),
                    payload: payload.clone(),
                });
                Ok(self.absorb(actions))
            }
            DkgMessage::Post { post, .. } => {
                let mut events = Vec::new();
                if let Some(digest) = self.take_post(post)? {
                    // First sight: forward once, so it reaches every honest candidate.
                    events.extend(self.broadcast_except(sender, |session| DkgMessage::Post {
                        session,
                        post: self.posts[&digest].1.clone(),
                    }));
                }
                Ok(events)
            }
            DkgMessage::Vote { round, posts, .. } => self.handle_vote(from, *round, posts),
            DkgMessage::Behind { .. } => Ok(Vec::new()),
        }
    }

    fn handle_vote(
        &mut self,
        from: Name,
        round: u32,
        posts: &[Vec<u8>],
    ) -> Result<Vec<DkgEvent>, DkgDrop> {
        if round < self.round {
            // Decided already; nothing it says can change that.
            return Ok(Vec::new());
        }
        if round > self.round + 1 || round >= MAX_ROUNDS {
            return Err(DkgDrop::FutureRound(round));
        }
        if posts.len() > self.names.len() * MAX_POSTS_PER_AUTHOR {
            return Err(DkgDrop::TooManyPosts);
        }
        let mut set = Vec::with_capacity(posts.len());
        for post in posts {
            let digest = post_digest(post);
            if !self.posts.contains_key(&digest) {
                self.take_post(post)?;
            }
            set.push(digest);
        }
        set.sort_unstable();
        set.dedup();
        let votes = self.votes.entry(round).or_default();
        match votes.get(&from) {
            Some(earlier) if *earlier == set => return Err(DkgDrop::Duplicate),
            Some(_) => return Err(DkgDrop::Equivocation),
            None => {}
        }
        votes.insert(from, set);
        Ok(self.decide())
    }

    /// The driver's next deadline: ends the current round with our vote, or, if the round
    /// whose deadline passed earlier is still undecided, fails the run, unless a vote on it is
    /// still missing and the run has not used up its [`VOTE_SLACK`]. Round 0 first waits up to
    /// [`START_GRACE`] deadlines for a contribution from every candidate.
    pub fn deadline(&mut self) -> Vec<DkgEvent> {
        if self.done {
            return Vec::new();
        }
        self.deadlines += 1;
        if self.round == 0
            && !self.voted.contains(&0)
            && self.waited < START_GRACE
            && !self.every_candidate_posted()
        {
            self.waited += 1;
            return Vec::new();
        }
        let k = self.deadlines - 1 - self.waited;
        if k < self.round {
            return self.ask_again();
        }
        let overdue = k > self.round && !(self.a_vote_is_missing() && k <= self.round + VOTE_SLACK);
        if overdue || self.round >= MAX_ROUNDS {
            let blamed = self.blame();
            self.done = true;
            return vec![DkgEvent::Done(DkgResult::Failed(blamed))];
        }
        let mut events = Vec::new();
        if self.voted.insert(self.round) {
            let set: Vec<[u8; 32]> = self
                .posts
                .keys()
                .filter(|d| !self.delivered.contains(*d))
                .copied()
                .collect();
            events.extend(self.vote(set));
        }
        let from_round = self.round;
        events.extend(self.decide());
        if self.round == from_round {
            events.extend(self.ask_again());
        }
        events
    }

    /// At a deadline of a restarted run that did not move on since it last asked: the answers
    /// may have been lost (a connection still being re-established), so it asks again. A run
    /// that moved on asked already, for its new round ([`Self::decide`]).
    fn ask_again(&self) -> Vec<DkgEvent> {
        if self.behind && !self.done {
            self.ask_for_votes()
        } else {
            Vec::new()
        }
    }

    /// After a restart from the log ([`crate::store::PersistentCoordinator::restore`]): the
    /// other candidates may have decided rounds while we were down, and each voted on them
    /// once, so we would never gather the votes to decide them. Asks every other candidate for
    /// its votes on our current round and the next ([`DkgMessage::Behind`]), and from now on
    /// asks again for the following ones whenever their votes moved us on: one exchange per
    /// two rounds brings the run to where the others' runs are, or to its end, with the share
    /// the SAP they handed over to names us for. A run that never restarted sends none of
    /// this, so the rounds of a run without crashes cost what they did.
    pub fn resume(&mut self) -> Vec<DkgEvent> {
        if self.done {
            return Vec::new();
        }
        self.behind = true;
        self.ask_for_votes()
    }

    fn ask_for_votes(&self) -> Vec<DkgEvent> {
        let round = self.round;
        self.broadcast_except(self.our, |session| DkgMessage::Behind { session, round })
    }

    /// The candidate at `sender` has not decided `round`. We send it our votes on that round
    /// and the next, if we voted on them, each at most [`MAX_ANSWERS`] times per candidate.
    /// Our vote on the round we have not decided yet counts too: the others may be waiting in
    /// it for the asker's vote, and went on voting while it was down.
    fn help_behind(&mut self, sender: usize, round: u32) -> Vec<DkgEvent> {
        if sender == self.our {
            return Vec::new();
        }
        let to = self.names[sender];
        let mut events = Vec::new();
        for r in round..round.saturating_add(2).min(self.round.saturating_add(1)) {
            let Some(set) = self.our_votes.get(&r) else {
                continue;
            };
            let answers = self.resent.entry((sender, r)).or_default();
            if *answers >= MAX_ANSWERS {
                continue;
            }
            *answers += 1;
            let posts = set.iter().map(|d| self.posts[d].1.clone()).collect();
            events.push(DkgEvent::Send {
                to,
                message: DkgMessage::Vote {
                    session: self.session,
                    round: r,
                    posts,
                },
            });
        }
        events
    }

    /// Whether some candidate has not voted on the current round (as far as we know).
    fn a_vote_is_missing(&self) -> bool {
        let votes = self.votes.get(&self.round).map_or(0, BTreeMap::len);
        votes < self.names.len()
    }

    /// Whether we hold a post from every candidate (in round 0: each one's contribution).
    fn every_candidate_posted(&self) -> bool {
        let authors: BTreeSet<u32> = self.posts.values().map(|(author, _)| *author).collect();
        authors.len() == self.names.len()
    }

    /// Records our vote on `set` for the current round and sends it.
    fn vote(&mut self, set: Vec<[u8; 32]>) -> Vec<DkgEvent> {
        let round = self.round;
        let posts: Vec<Vec<u8>> = set.iter().map(|d| self.posts[d].1.clone()).collect();
        let our_name = self.names[self.our];
        self.our_votes.insert(round, set.clone());
        self.votes.entry(round).or_default().insert(our_name, set);
        self.broadcast_except(self.our, |session| DkgMessage::Vote {
            session,
            round,
            posts: posts.clone(),
        })
    }

    /// Decides every round a supermajority agrees on, feeding its posts and deadline to the
    /// engine.
    fn decide(&mut self) -> Vec<DkgEvent> {
        let mut events = Vec::new();
        let from_round = self.round;
        let quorum = supermajority(self.names.len());
        while !self.done {
            let Some(votes) = self.votes.get(&self.round) else {
                break;
            };
            let mut tally: BTreeMap<&Vec<[u8; 32]>, usize> = BTreeMap::new();
            for set in votes.values() {
                *tally.entry(set).or_default() += 1;
            }
            let Some(set) = tally
                .into_iter()
                .find(|(_, count)| *count >= quorum)
                .map(|(set, _)| set.clone())
            else {
                break;
            };
            if self.voted.insert(self.round) {
                events.extend(self.vote(set.clone()));
            }
            let posts: Vec<Vec<u8>> = set.iter().map(|d| self.posts[d].1.clone()).collect();
            self.delivered.extend(set.iter().copied());
            self.votes.remove(&self.round);
            self.round += 1;
            let mut actions = self.engine.handle_board_posts(&posts);
            actions.extend(self.engine.handle(Input::Deadline));
            events.extend(self.absorb(actions));
        }
        if self.behind && !self.done && self.round > from_round {
            events.extend(self.ask_for_votes());
        }
        events
    }

    /// Who to name when a round went undecided past its deadline: the candidates we hold no
    /// vote from; if everyone voted, the authors of posts some votes lack.
    fn blame(&self) -> BTreeSet<Name> {
        let empty = BTreeMap::new();
        let votes = self.votes.get(&self.round).unwrap_or(&empty);
        let silent: BTreeSet<Name> = self
            .names
            .iter()
            .filter(|n| !votes.contains_key(*n))
            .copied()
            .collect();
        if !silent.is_empty() {
            return silent;
        }
        let all: BTreeSet<&[u8; 32]> = votes.values().flatten().collect();
        all.into_iter()
            .filter(|d| !votes.values().all(|set| set.contains(d)))
            .filter_map(|d| self.posts.get(d))
            .map(|(author, _)| self.names[*author as usize])
            .collect()
    }

    /// Checks a post and keeps it; `Some(digest)` if it was new.
    fn take_post(&mut self, post: &[u8]) -> Result<Option<[u8; 32]>, DkgDrop> {
        let digest = post_digest(post);
        if self.posts.contains_key(&digest) {
            return Ok(None);
        }
        if post.len() > MAX_POST_LEN {
            return Err(DkgDrop::BadPost("too long"));
        }
        let signed = SignedPost::<Bls12381G1>::decode(post, self.names.len())
            .map_err(|_| DkgDrop::BadPost("does not decode"))?;
        if signed.post.session() != self.ceremony.id() {
            return Err(DkgDrop::BadPost("another ceremony"));
        }
        let author = signed.post.dealer();
        let identity = self
            .identities
            .get(author as usize)
            .ok_or(DkgDrop::BadPost("no such author"))?;
        if !identity.verify(
            Purpose::Post,
            &signed.post.signed_payload(),
            &signed.signature,
        ) {
            return Err(DkgDrop::BadPost("bad signature"));
        }
        if self.posts.values().filter(|(a, _)| *a == author).count() >= MAX_POSTS_PER_AUTHOR {
            return Err(DkgDrop::TooManyPosts);
        }
        self.posts.insert(digest, (author, post.to_vec()));
        Ok(Some(digest))
    }

    fn broadcast_except(
        &self,
        skip: usize,
        message: impl Fn(SessionId) -> DkgMessage,
    ) -> Vec<DkgEvent> {
        self.names
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip && *i != self.our)
            .map(|(_, name)| DkgEvent::Send {
                to: *name,
                message: message(self.session),
            })
            .collect()
    }

    /// Turns engine actions into events.
    fn absorb(&mut self, actions: Vec<Action<Bls12381G1>>) -> Vec<DkgEvent> {
        let mut events = Vec::new();
        for action in actions {
            match action {
                Action::Send { to, payload } => {
                    if let Some(i) = self.identities.iter().position(|id| *id == to) {
                        events.push(DkgEvent::Send {
                            to: self.names[i],
                            message: DkgMessage::Direct {
                                session: self.session,
                                payload,
                            },
                        });
                    }
                }
                Action::Post(post) => {
                    // Our own post: kept like anyone's, and sent to every other candidate.
                    if let Ok(Some(digest)) = self.take_post(&post) {
                        events.extend(self.broadcast_except(self.our, |session| {
                            DkgMessage::Post {
                                session,
                                post: self.posts[&digest].1.clone(),
                            }
                        }));
                    }
                }
                Action::Finished(out) => {
                    self.done = true;
                    let excluded = self.names_of(out.exclusions.iter().map(|e| &e.identity));
                    let result = match (out.player_index, out.secret_share) {
                        _ if !excluded.is_empty() => DkgResult::Failed(excluded),
                        (Some(p), Some(share)) if p as usize == self.our => {
                            DkgResult::Share(KeyShare {
                                index: index_at(self.our),
                                share,
                                section_key: out.public.group_key,
                            })
                        }
                        _ => DkgResult::Failed(BTreeSet::new()),
                    };
                    events.push(DkgEvent::Done(result));
                }
                Action::Failed(failure) => {
                    self.done = true;
                    let excluded = self.names_of(failure.exclusions.iter().map(|e| &e.identity));
                    events.push(DkgEvent::Done(DkgResult::Failed(excluded)));
                }
                Action::Observed(_) => {}
            }
        }
        events
    }

    fn names_of<'a>(
        &self,
        identities: impl Iterator<Item = &'a IdentityPublicKey>,
    ) -> BTreeSet<Name> {
        identities
            .filter_map(|id| self.identities.iter().position(|x| x == id))
            .map(|i| self.names[i])
            .collect()
    }
}

/// The digest a post is known by.
pub fn post_digest(post: &[u8]) -> [u8; 32] {
    tagged_hash(POST_TAG, &[post])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::tests::key;
    use crate::elders::Peer;
    use crate::name::Prefix;

    /// The posts our run sends first (the contribution, with its commitment).
    fn first_posts(run: &[DkgEvent]) -> Vec<Vec<u8>> {
        run.iter()
            .filter_map(|e| match e {
                DkgEvent::Send {
                    message: DkgMessage::Post { post, .. },
                    ..
                } => Some(post.clone()),
                _ => None,
            })
            .collect()
    }

    /// One node, one start, two networks: the dealing differs, so the section keys do. Before,
    /// the seed was the node key and the session id alone, and networks rebuilt from the same
    /// keystores made byte-identical keys. The same network deals the same again (what a
    /// restarted candidate relies on).
    #[test]
    fn the_same_start_deals_differently_in_another_network() {
        let nodes: Vec<_> = (0..4).map(key).collect();
        let candidates: Vec<Peer> = {
            let mut c: Vec<Peer> = nodes
                .iter()
                .enumerate()
                .map(|(i, (sk, _))| Peer::new(sk, format!("/ip4/127.0.0.1/tcp/{}", 9000 + i)))
                .collect();
            c.sort_by_key(Peer::name);
            c
        };
        let start = DkgStart::new(Prefix::ROOT, candidates, 1);
        let (sk, _) = &nodes[0];
        let name = Peer::new(sk, String::new()).name();
        let deal = |genesis: &PublicKey| {
            let (_, events) = DkgRun::start(sk, name, &start, genesis).unwrap();
            first_posts(&events)
        };
        let (network_a, network_b) = (key(100).1, key(200).1);
        let a = deal(&network_a);
        assert!(!a.is_empty());
        assert_eq!(a, deal(&network_a));
        assert_ne!(a, deal(&network_b));
    }
}
