//! What every participant state machine shares: inputs, actions, results, and the trait the
//! simulator and the node daemon drive.

use keyquorum_crypto::Curve;
use keyquorum_crypto::secret::Secret;
use thiserror::Error;

use crate::board::{Exclusion, PublicOutput};
use crate::identity::IdentityPublicKey;
use crate::session::SessionId;

/// An input to the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Begin: a dealer posts its contribution and sends its shares.
    Start,
    /// A direct message from another participant (encoded [`Direct`]).
    Message(Vec<u8>),
    /// A post as ordered by the board (encoded [`SignedPost`]), valid or not: the board's rules
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
        /// Encoded [`Direct`] message.
        payload: Vec<u8>,
    },
    /// Submit an encoded [`SignedPost`] to the board.
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
    /// Dealers that did qualify.
    pub qualified: Vec<u32>,
    /// Culprits with evidence.
    pub exclusions: Vec<Exclusion>,
}

/// Errors constructing a participant.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NodeError {
    /// The identity is neither a dealer nor a player of the ceremony.
    #[error("identity is not a participant of this ceremony")]
    NotAParticipant,
    /// A resharing dealer needs its old share.
    #[error("resharing dealer needs its previous secret share")]
    MissingOldShare,
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
