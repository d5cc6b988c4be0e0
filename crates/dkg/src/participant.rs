//! What every participant state machine shares: inputs, actions, results, and the trait the
//! simulator and the node daemon drive.

use keyquorum_crypto::Curve;
use keyquorum_crypto::secret::Secret;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use thiserror::Error;

use crate::board::{Exclusion, PublicOutput, Role};
use crate::ceremony::{Ceremony, SessionId};
use crate::identity::IdentityPublicKey;

/// An input to the state machine.
// Like actions, inputs are short-lived values moved once from the driver to the state machine;
// boxing the sender key would add an allocation per message for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Begin: a dealer posts its contribution and sends its shares.
    Start,
    /// A direct message from another participant.
    Message {
        /// The sender as the transport authenticated it, not as the message claims: a
        /// participant drops a message whose claimed dealer or player is someone else
        /// ([`Observation::WrongSender`]).
        from: IdentityPublicKey,
        /// The encoded message ([`Direct`](crate::messages::Direct) or, in the complaint variant, its
        /// [`Deal`](crate::complaint::messages::Deal)).
        payload: Vec<u8>,
    },
    /// A post as ordered by the board (encoded [`SignedPost`](crate::messages::SignedPost)), valid or not: the board's rules
    /// decide, identically everywhere.
    BoardPost(Vec<u8>),
    /// The deadline of the board's current phase passed (in board order).
    Deadline,
}

/// What the state machine asks its driver to do.
// Actions are short-lived values moved once from the state machine to its driver; boxing the
// recipient key would add an allocation per message for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Action<C: Curve> {
    /// Send `payload` to the participant with identity `to`.
    Send {
        /// Recipient.
        to: IdentityPublicKey,
        /// Encoded [`Direct`](crate::messages::Direct) message.
        payload: Vec<u8>,
    },
    /// Submit an encoded [`SignedPost`](crate::messages::SignedPost) to the board.
    Post(Vec<u8>),
    /// The ceremony succeeded.
    Finished(Box<DkgOutput<C>>),
    /// The ceremony failed for good (after its retries).
    Failed(Failure),
    /// Something was rejected; for logs and metrics. Never contains secrets.
    Observed(Observation),
}

/// Things a participant noticed that do not change its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// A message could not be decoded or was for another session or recipient.
    Malformed(String),
    /// A dealer's share failed to decrypt or to match its commitment (no ack was sent).
    BadShare {
        /// Dealer.
        dealer: u32,
    },
    /// An ack failed to verify.
    BadAck {
        /// Player.
        player: u32,
    },
    /// The board refused a post.
    Refused(String),
    /// A direct message claims an author (dealer or player `index`) other than the sender the
    /// transport authenticated; dropped unread.
    WrongSender {
        /// The role the message claims its author has.
        role: Role,
        /// The claimed dealer or player position.
        index: u32,
    },
}

/// The result for one participant.
#[derive(Debug, Clone)]
pub struct DkgOutput<C: Curve> {
    /// Session.
    pub session: SessionId,
    /// The attempt that succeeded.
    pub attempt: u32,
    /// Group key, public key shares, qualified dealers.
    pub public: PublicOutput<C>,
    /// This participant's player position, if it is a (still active) player.
    pub player_index: Option<u32>,
    /// This participant's secret share, if it is a player.
    pub secret_share: Option<Secret<C::Scalar>>,
    /// Everyone excluded, with evidence.
    pub exclusions: Vec<Exclusion>,
}

/// Final failure.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Why.
    pub reason: FailureReason,
    /// Dealers that did qualify.
    pub qualified: Vec<u32>,
    /// Culprits with evidence.
    pub exclusions: Vec<Exclusion>,
}

/// Why a ceremony failed for one participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// The board's outcome is a failure (too few qualified dealers or players, after retries).
    Board,
    /// The board succeeded but this player holds no share from a qualified dealer: neither a
    /// verified deal nor a reveal on the board.
    MissingShare {
        /// The dealer.
        dealer: u32,
    },
    /// The board succeeded but this player's share does not match its public key share; the
    /// share is not released.
    ShareMismatch,
}

impl FailureReason {
    /// A stable name, for logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            FailureReason::Board => "board",
            FailureReason::MissingShare { .. } => "missing_share",
            FailureReason::ShareMismatch => "share_mismatch",
        }
    }
}

/// Errors constructing a participant.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParticipantError {
    /// The identity is neither a dealer nor a player of the ceremony.
    #[error("identity is not a participant of this ceremony")]
    NotAParticipant,
    /// A resharing dealer needs its old share.
    #[error("resharing dealer needs its previous secret share")]
    MissingOldShare,
    /// A participant seated as a player only must be a player of the ceremony.
    #[error("identity is not a player of this ceremony")]
    NotAPlayer,
}

/// Where a participant of either variant sits in its ceremony, and the source of all its
/// randomness: what both variants' constructors derive before building their own roles.
pub(crate) struct Seating<C: Curve> {
    /// Dealer position, if it deals.
    pub dealer: Option<u32>,
    /// Player position, if it plays.
    pub player: Option<u32>,
    /// A resharing dealer's old share, the fixed constant term of its polynomial (so that the
    /// Lagrange-weighted sum of the constants is the old secret); `None` for a fresh key, whose
    /// constants are random, and for a member that does not deal.
    pub old_share: Option<Secret<C::Scalar>>,
    /// The generator of every random value the participant uses, seeded by the caller's secret
    /// seed, so replaying the inputs reproduces the outputs.
    pub rng: ChaCha20Rng,
}

impl<C: Curve> Seating<C> {
    /// Finds `identity`'s seats. Fails if it has none, or if it deals in a reshare without its
    /// old share.
    pub fn new(
        ceremony: &Ceremony<C>,
        identity: &IdentityPublicKey,
        old_share: Option<Secret<C::Scalar>>,
        seed: [u8; 32],
    ) -> Result<Self, ParticipantError> {
        let dealer = ceremony.dealer_position(identity);
        let player = ceremony.player_position(identity);
        if dealer.is_none() && player.is_none() {
            return Err(ParticipantError::NotAParticipant);
        }
        let old_share = match (dealer, ceremony.reshare()) {
            (Some(_), Some(_)) => Some(old_share.ok_or(ParticipantError::MissingOldShare)?),
            _ => None,
        };
        Ok(Seating {
            dealer,
            player,
            old_share,
            rng: ChaCha20Rng::from_seed(seed),
        })
    }

    /// Seats `identity` as a player only, whether or not it also deals in the ceremony: for a
    /// member joining after the deal window closed, whose deals could no longer count and,
    /// drawn from a fresh seed, could contradict deals it made before it lost its state. Fails
    /// if it does not play.
    pub fn player_only(
        ceremony: &Ceremony<C>,
        identity: &IdentityPublicKey,
        seed: [u8; 32],
    ) -> Result<Self, ParticipantError> {
        let player = ceremony
            .player_position(identity)
            .ok_or(ParticipantError::NotAPlayer)?;
        Ok(Seating {
            dealer: None,
            player: Some(player),
            old_share: None,
            rng: ChaCha20Rng::from_seed(seed),
        })
    }
}

/// Checks that `from`, the sender the transport authenticated, is the dealer or player at
/// `index` that a direct message claims as its author. Both variants run it before looking at
/// anything else in the message, so a forged or replayed message changes no state and cannot
/// crowd out the real one.
pub(crate) fn check_sender<C: Curve>(
    ceremony: &Ceremony<C>,
    from: &IdentityPublicKey,
    role: Role,
    index: u32,
) -> Result<(), Observation> {
    let members = match role {
        Role::Dealer => ceremony.dealers(),
        Role::Player => ceremony.players(),
    };
    match members.get(index as usize) {
        Some(m) if m.identity == *from => Ok(()),
        Some(_) => Err(Observation::WrongSender { role, index }),
        None => Err(Observation::Malformed(format!(
            "no {} at position {index}",
            match role {
                Role::Dealer => "dealer",
                Role::Player => "player",
            }
        ))),
    }
}

/// A participant state machine of either variant.
pub trait Participant<C: Curve> {
    /// Feeds one input; returns the actions to take, in order.
    fn handle(&mut self, input: Input) -> Vec<Action<C>>;
    /// The participant's identity key (how peers address it).
    fn identity(&self) -> &IdentityPublicKey;
    /// Whether the ceremony ended for this participant.
    fn is_done(&self) -> bool;
}
