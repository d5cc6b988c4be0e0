//! The threshold round engine of one view, without I/O.
//!
//! Each member of the active view holds a Shamir share of the group key. In round `r` it signs
//! the scheme's message for `r` with its share and sends the partial signature, with its share
//! index, to the other members ([`Action::Broadcast`]). Every member collects partials from the
//! network, each with the sender the transport authenticated, combines `t` of them by Lagrange
//! interpolation in the exponent (`keyquorum_crypto::tbls::combine`), verifies the result under
//! the group key, and hands the round to its caller to store ([`Action::Store`]). This is
//! drand's randomness generation phase (drand specification, "Randomness Generation Phase";
//! the partial signature "is created over the same input as the beacon signature, prefixed with
//! the node's index").
//!
//! # Checks
//! - A partial is accepted only from a member of the view (the caller maps the authenticated
//!   peer to its position, [`MemberId`]), only with that member's own share index, at most one
//!   per member and round, and only for rounds from the next unstored one to
//!   `max_catch_up` rounds ahead: memory is bounded by `max_catch_up * n` partials.
//! - Partials are combined optimistically: `t` of them, then one signature check under the group
//!   key. BLS signatures are unique, so a combined signature that verifies is *the* round's
//!   signature whatever the partials were. If it does not verify, the `t` partials are checked
//!   against their senders' public key shares in one randomised batch
//!   (`tbls::batch_partial_verify`, bisection names the failures; the weights are derived by
//!   hashing the partials, so the engine stays deterministic and they are fixed only after the
//!   partials are), each failing member is named ([`Action::Culprit`]) and ignored for that
//!   round, and the engine combines again from the remaining partials. Partials that arrive
//!   after their round is complete are not checked: they cannot change it.
//!
//! # Order, catch-up and uniqueness
//! Rounds are produced in order, each once. The next round is the one after the last stored
//! round ([`RoundStore`], the caller's storage, which the engine only reads); it is signed once
//! the caller's clock has reached it ([`Engine::tick`]). In the chained scheme round `r` signs
//! round `r - 1`'s signature, so rounds missed while fewer than `t` members were up are caught
//! up in order when they return: each completed round lets every member sign the next one at
//! once, as long as the clock has passed it. An engine never outputs a round that is already
//! stored or that it has output before.
//!
//! # View changes
//! One engine serves one view. A reshare keeps the group key, so the next view's engine
//! continues the same chain (same [`ChainInfo`]) with the new shares; a fresh key starts a new
//! chain ([`ChainInfo::for_view`]) whose first round is 1.

use std::collections::{BTreeMap, BTreeSet};

use blstrs::Scalar;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, PartialSignature, PublicKey, Signature};
use keyquorum_crypto::{CryptoError, Curve, DecodeError};
use rand_core::SeedableRng;
use sha2::{Digest, Sha256};

use crate::info::ChainInfo;
use crate::round::Round;
use crate::scheme::{self, DrandScheme};

/// A member's position in the view's committee (0-based), as the caller derives it from the
/// authenticated sender of a message.
pub type MemberId = u32;

/// Domain tag of the batch-verification weights' seed.
const BATCH_SEED_TAG: &[u8] = b"keyquorum/beacon/batch-weights/v1";

/// What the caller has stored (the engine's only view of storage).
pub trait RoundStore {
    /// The highest stored round, 0 when none is.
    fn last_round(&self) -> u64;
    /// The stored round `round`, if any.
    fn get(&self, round: u64) -> Option<Round>;
}

/// One member of the view: its share index and public key share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<S: DrandScheme> {
    /// Evaluation point of the member's share.
    pub share_index: Scalar,
    /// `share * G` in the scheme's key group.
    pub public_share: PublicKey<S>,
}

/// The signing group of one view.
#[derive(Debug, Clone)]
pub struct ViewGroup<S: DrandScheme> {
    threshold: usize,
    members: Vec<Member<S>>,
    group_key: PublicKey<S>,
}

impl<S: DrandScheme> ViewGroup<S> {
    /// Validates a view's group: `1 <= t <= n`, distinct non-zero share indices, valid public
    /// shares and group key, and the first `t` public shares interpolate to the group key (a
    /// mismatch would make every round fail to combine).
    pub fn new(
        threshold: usize,
        members: Vec<Member<S>>,
        group_key: PublicKey<S>,
    ) -> Result<Self, EngineError> {
        let n = members.len();
        if threshold == 0 || threshold > n || n > MemberId::MAX as usize {
            return Err(EngineError::BadThreshold { threshold, n });
        }
        let indices: Vec<Scalar> = members.iter().map(|m| m.share_index).collect();
        keyquorum_crypto::index::check_distinct(&indices).map_err(EngineError::Crypto)?;
        for m in &members {
            tbls::validate_public_key::<S>(&m.public_share).map_err(EngineError::Crypto)?;
        }
        tbls::validate_public_key::<S>(&group_key).map_err(EngineError::Crypto)?;
        let recovered = keyquorum_crypto::poly::interpolate_in_exponent::<S::Public>(
            &indices[..threshold],
            &members[..threshold]
                .iter()
                .map(|m| m.public_share)
                .collect::<Vec<_>>(),
        )
        .map_err(EngineError::Crypto)?;
        if group::Curve::to_affine(&recovered) != group_key {
            return Err(EngineError::SharesDoNotMatchGroupKey);
        }
        Ok(ViewGroup {
            threshold,
            members,
            group_key,
        })
    }

    /// Signing threshold `t`.
    pub fn threshold(&self) -> usize {
        self.threshold
    }
    /// The members in committee order.
    pub fn members(&self) -> &[Member<S>] {
        &self.members
    }
    /// The group public key.
    pub fn group_key(&self) -> &PublicKey<S> {
        &self.group_key
    }
}

/// This node's seat in the view: its position and secret share.
pub struct SigningShare {
    /// Position in the committee.
    pub member: MemberId,
    /// The secret share (zeroized on drop, redacted in `Debug`).
    pub share: Secret<Scalar>,
}

impl core::fmt::Debug for SigningShare {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SigningShare")
            .field("member", &self.member)
            .field("share", &self.share)
            .finish()
    }
}

/// Engine settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// How many rounds, from the next unstored one, partials are accepted for (at least 1).
    pub max_catch_up: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig { max_catch_up: 64 }
    }
}

/// A partial signature for one round, as members send it to each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialBeacon {
    /// The round signed.
    pub round: u64,
    /// `tbls::PartialSignature::to_bytes`: 32-byte share index, then the compressed partial.
    pub partial: Vec<u8>,
}

impl PartialBeacon {
    /// Wire encoding: round (8 bytes big-endian), then the partial.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.partial.len());
        out.extend_from_slice(&self.round.to_be_bytes());
        out.extend_from_slice(&self.partial);
        out
    }

    /// Decodes [`PartialBeacon::to_bytes`] for scheme `S`: the partial must have exactly the
    /// scheme's length (its contents are decoded and checked by [`Engine::on_partial`]).
    pub fn from_bytes<S: DrandScheme>(bytes: &[u8]) -> Result<Self, DecodeError> {
        let expected = 8 + PartialSignature::<S>::ENCODED_LEN;
        if bytes.len() != expected {
            return Err(DecodeError::Length {
                expected,
                actual: bytes.len(),
            });
        }
        let mut round = [0u8; 8];
        round.copy_from_slice(&bytes[..8]);
        Ok(PartialBeacon {
            round: u64::from_be_bytes(round),
            partial: bytes[8..].to_vec(),
        })
    }
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this node's partial to every other member of the view.
    Broadcast(PartialBeacon),
    /// Store this verified round; later calls must see it through [`RoundStore`].
    Store(Round),
    /// `member` sent a partial for `round` that does not verify under its public key share.
    Culprit {
        /// The member.
        member: MemberId,
        /// The round.
        round: u64,
    },
}

/// Why a partial was refused (the engine's state is unchanged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// The sender is not a member of the view.
    #[error("sender is not a member of the view")]
    NotAMember,
    /// The partial carries another member's share index.
    #[error("member {member} sent a partial under another member's index")]
    SpoofedIndex {
        /// The authenticated sender.
        member: MemberId,
    },
    /// The partial does not decode (length, index, point encoding, subgroup).
    #[error("member {member} sent a malformed partial: {error}")]
    Malformed {
        /// The authenticated sender.
        member: MemberId,
        /// What is wrong.
        error: DecodeError,
    },
    /// A second partial from the same member for the same round.
    #[error("member {member} already sent a partial for round {round}")]
    Duplicate {
        /// The sender.
        member: MemberId,
        /// The round.
        round: u64,
    },
    /// The member's partial for this round already failed verification.
    #[error("member {member} already sent a bad partial for round {round}")]
    KnownBad {
        /// The sender.
        member: MemberId,
        /// The round.
        round: u64,
    },
    /// The round is already stored.
    #[error("round {round} is already stored")]
    Stale {
        /// The round.
        round: u64,
    },
    /// The round is beyond the catch-up window.
    #[error("round {round} is beyond the catch-up window (rounds below {limit})")]
    TooFarAhead {
        /// The round.
        round: u64,
        /// First round not accepted.
        limit: u64,
    },
}

/// Why an engine cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// Threshold out of `1..=n`, or too many members.
    #[error("invalid threshold {threshold} for {n} members")]
    BadThreshold {
        /// Threshold.
        threshold: usize,
        /// Members.
        n: usize,
    },
    /// A key or index is invalid.
    #[error(transparent)]
    Crypto(CryptoError),
    /// The public key shares do not interpolate to the group key.
    #[error("public key shares do not interpolate to the group key")]
    SharesDoNotMatchGroupKey,
    /// The chain info is for another scheme or another key.
    #[error("chain info does not match the view's scheme and group key")]
    ChainMismatch,
    /// This node's member position is outside the committee.
    #[error("member {0} is not in the committee")]
    NotAMember(MemberId),
    /// This node's share does not match its public key share.
    #[error("the secret share does not match member {0}'s public key share")]
    ShareMismatch(MemberId),
    /// A catch-up window of zero rounds.
    #[error("max_catch_up must be at least 1")]
    ZeroWindow,
}

/// Partials collected for one round.
#[derive(Debug)]
struct RoundState<S: DrandScheme> {
    partials: BTreeMap<MemberId, PartialSignature<S>>,
    bad: BTreeSet<MemberId>,
    signed: bool,
}

impl<S: DrandScheme> Default for RoundState<S> {
    fn default() -> Self {
        RoundState {
            partials: BTreeMap::new(),
            bad: BTreeSet::new(),
            signed: false,
        }
    }
}

/// The round engine of one view (see the module documentation).
#[derive(Debug)]
pub struct Engine<S: DrandScheme> {
    chain: ChainInfo,
    group: ViewGroup<S>,
    me: Option<SigningShare>,
    config: EngineConfig,
    /// The latest round the caller's clock has reached.
    clock_round: u64,
    /// The highest round this engine has output.
    produced: u64,
    pending: BTreeMap<u64, RoundState<S>>,
}

impl<S: DrandScheme> Engine<S> {
    /// An engine for `group` signing on `chain`; `me` is this node's share if it is a member
    /// (an observer without one still combines and verifies).
    pub fn new(
        chain: ChainInfo,
        group: ViewGroup<S>,
        me: Option<SigningShare>,
        config: EngineConfig,
    ) -> Result<Self, EngineError> {
        if chain.scheme() != S::ID || chain.public_key() != S::Public::point_bytes(&group.group_key)
        {
            return Err(EngineError::ChainMismatch);
        }
        if config.max_catch_up == 0 {
            return Err(EngineError::ZeroWindow);
        }
        if let Some(me) = &me {
            let member = group
                .members
                .get(me.member as usize)
                .ok_or(EngineError::NotAMember(me.member))?;
            if tbls::public_key::<S>(&me.share) != member.public_share {
                return Err(EngineError::ShareMismatch(me.member));
            }
        }
        Ok(Engine {
            chain,
            group,
            me,
            config,
            clock_round: 0,
            produced: 0,
            pending: BTreeMap::new(),
        })
    }

    /// The chain this engine signs on.
    pub fn chain(&self) -> &ChainInfo {
        &self.chain
    }

    /// The view's group.
    pub fn group(&self) -> &ViewGroup<S> {
        &self.group
    }

    /// The caller's clock has reached round `now_round` (from [`ChainInfo::current_round`]):
    /// sign what is due and complete what can be.
    ///
    /// Also sends this node's partial for the round in progress again: members that were down
    /// when it was first sent get it, and a round stalled for want of partials resumes once
    /// `t` members are up. Peers drop the copies as [`Rejected::Duplicate`].
    ///
    /// The clock is the one given now, even behind an earlier one: a clock that jumped ahead
    /// once and was set right must not leave this node signing rounds before their time.
    pub fn tick(&mut self, now_round: u64, store: &impl RoundStore) -> Vec<Action> {
        self.clock_round = now_round;
        self.advance(store, true)
    }

    /// A partial from the network, with the member the transport authenticated as its sender
    /// (`None` for a peer that is not in the view).
    pub fn on_partial(
        &mut self,
        sender: Option<MemberId>,
        message: &PartialBeacon,
        store: &impl RoundStore,
    ) -> Result<Vec<Action>, Rejected> {
        let member = sender
            .filter(|m| (*m as usize) < self.group.members.len())
            .ok_or(Rejected::NotAMember)?;
        // Everything that needs no decoding first: most partials arrive after their round is
        // complete (all n members send, t suffice), and decompressing and subgroup-checking a
        // G2 point is most of what a partial costs.
        let next = self.last_round(store) + 1;
        let round = message.round;
        if round < next {
            return Err(Rejected::Stale { round });
        }
        let limit = next.saturating_add(self.config.max_catch_up);
        if round >= limit {
            return Err(Rejected::TooFarAhead { round, limit });
        }
        if let Some(state) = self.pending.get(&round) {
            if state.bad.contains(&member) {
                return Err(Rejected::KnownBad { member, round });
            }
            if state.partials.contains_key(&member) {
                return Err(Rejected::Duplicate { member, round });
            }
        }
        let partial = PartialSignature::<S>::from_bytes(&message.partial)
            .map_err(|error| Rejected::Malformed { member, error })?;
        if partial.index != self.group.members[member as usize].share_index {
            return Err(Rejected::SpoofedIndex { member });
        }
        self.pending
            .entry(round)
            .or_default()
            .partials
            .insert(member, partial);
        Ok(self.advance(store, false))
    }

    /// The next round to produce: one after the last stored or output round.
    pub fn next_round(&self, store: &impl RoundStore) -> u64 {
        self.last_round(store) + 1
    }

    fn last_round(&self, store: &impl RoundStore) -> u64 {
        store.last_round().max(self.produced)
    }

    /// Produces rounds in order while the clock allows and partials suffice; with `resend`,
    /// sends this node's partial for the round in progress again.
    fn advance(&mut self, store: &impl RoundStore, resend: bool) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut last = self.last_round(store);
        self.pending.retain(|r, _| *r > last);
        // The previous signature of the next round, for the chained scheme.
        let mut previous: Option<Vec<u8>> = None;
        loop {
            let round = last + 1;
            if round > self.clock_round {
                break;
            }
            let prev: Vec<u8> = if !S::ID.is_chained() {
                Vec::new()
            } else if round == 1 {
                self.chain.group_hash().to_vec()
            } else {
                match previous
                    .take()
                    .or_else(|| store.get(last).map(|r| r.signature))
                {
                    Some(sig) => sig,
                    // The previous round is neither stored nor just produced: the caller has
                    // not stored what it was given. Nothing can be signed until it does.
                    None => break,
                }
            };
            let message = scheme::round_message(S::ID, &prev, round);
            if let Some(me) = &self.me {
                let state = self.pending.entry(round).or_default();
                if !state.signed {
                    state.signed = true;
                    let index = self.group.members[me.member as usize].share_index;
                    let partial = tbls::partial_sign::<S>(&me.share, index, &message);
                    state.partials.insert(me.member, partial);
                    actions.push(Action::Broadcast(PartialBeacon {
                        round,
                        partial: partial.to_bytes(),
                    }));
                } else if resend && let Some(partial) = state.partials.get(&me.member) {
                    actions.push(Action::Broadcast(PartialBeacon {
                        round,
                        partial: partial.to_bytes(),
                    }));
                }
            }
            let Some(signature) = self.combine(round, &message, &mut actions) else {
                break;
            };
            if store.get(round).is_some() || round <= self.produced {
                // Never a second value for a round (unreachable while the store is monotone:
                // `last` already accounts for both).
                break;
            }
            let signature = S::Signature::point_bytes(&signature);
            actions.push(Action::Store(Round {
                round,
                signature: signature.clone(),
                previous_signature: S::ID.is_chained().then_some(prev),
            }));
            self.produced = round;
            self.pending.remove(&round);
            previous = Some(signature);
            last = round;
        }
        actions
    }

    /// Combines `t` partials of `round` into a signature that verifies under the group key,
    /// naming and dropping bad partials on the way; `None` while fewer than `t` good ones are
    /// known.
    fn combine(
        &mut self,
        round: u64,
        message: &[u8],
        actions: &mut Vec<Action>,
    ) -> Option<Signature<S>> {
        let t = self.group.threshold;
        let state = self.pending.get_mut(&round)?;
        loop {
            if state.partials.len() < t {
                return None;
            }
            let used: Vec<(MemberId, PartialSignature<S>)> = state
                .partials
                .iter()
                .take(t)
                .map(|(m, p)| (*m, *p))
                .collect();
            let partials: Vec<PartialSignature<S>> = used.iter().map(|(_, p)| *p).collect();
            // Indices are distinct: each is its sender's, and senders are distinct members.
            let combined = tbls::combine::<S>(t, &partials).ok()?;
            if tbls::verify::<S>(&self.group.group_key, message, &combined).is_ok() {
                return Some(combined);
            }
            let shares: Vec<PublicKey<S>> = used
                .iter()
                .map(|(m, _)| self.group.members[*m as usize].public_share)
                .collect();
            let mut bad = find_bad_partials::<S>(&shares, message, &partials);
            if bad.is_empty() {
                // Every partial verifies yet the combination does not: impossible for shares
                // that interpolate to the group key (checked in `ViewGroup::new`). Stop rather
                // than loop.
                return None;
            }
            bad.sort_unstable();
            for position in bad {
                let member = used[position].0;
                state.partials.remove(&member);
                state.bad.insert(member);
                actions.push(Action::Culprit { member, round });
            }
        }
    }
}

/// Positions of the partials that fail verification under their public shares: one batch
/// check with weights derived from the inputs, and one check per partial should the batch
/// find nothing (so a failed combination always ends with its culprits named).
fn find_bad_partials<S: DrandScheme>(
    shares: &[PublicKey<S>],
    message: &[u8],
    partials: &[PartialSignature<S>],
) -> Vec<usize> {
    let mut seed = Sha256::new();
    seed.update(BATCH_SEED_TAG);
    seed.update(message);
    for p in partials {
        seed.update(p.to_bytes());
    }
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed.finalize().into());
    match tbls::batch_partial_verify::<S, _>(shares, message, partials, &mut rng) {
        Err(bad) => bad,
        Ok(()) => partials
            .iter()
            .zip(shares)
            .enumerate()
            .filter(|(_, (p, pk))| tbls::partial_verify::<S>(pk, message, p).is_err())
            .map(|(i, _)| i)
            .collect(),
    }
}
