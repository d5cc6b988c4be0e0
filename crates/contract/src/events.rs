//! Events: what nodes follow to take part in view changes without reading contract state.
//!
//! A node drives its `keyquorum_dkg` participant from events alone:
//! - `CommitteeSelected` carries the [`CeremonySpec`]; members build the ceremony from it and
//!   feed `Input::Start`;
//! - `PostAccepted` and `PostRejected` carry the post bytes in chain order; both go to the
//!   participant as `Input::BoardPost` (a rejected post is one the board refused as a fault of
//!   its author, which changes the board: every replica must see it);
//! - `BoardDeadline` is one `Input::Deadline`;
//! - `MagicBlockCreated` carries the block to sign.

use serde::{Deserialize, Serialize};

use crate::config::KeyMode;
use crate::hex::{Bytes, Hex};
use crate::magic::MagicBlock;
use crate::signing_key::SigningKeyRecord;
use crate::state::{
    CeremonySpec, FaultCeremony, IdentityKey, NamedRecord, SlashingRecord, ViewChangePhase,
};
use crate::tx::{NetworkIdentity, SignerRole};

/// A committee member as listed in events and queries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitteeEntry {
    /// Share index (1-based).
    pub index: u64,
    /// Identity key.
    pub identity: IdentityKey,
    /// Stake (current, when queried).
    pub stake: u64,
    /// Network identity.
    pub network: NetworkIdentity,
}

/// A contract event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A node registered.
    Registered {
        /// Identity.
        identity: IdentityKey,
        /// Stake.
        stake: u64,
        /// Network identity.
        network: NetworkIdentity,
        /// Share-encryption key: what a ceremony spec must name for this node as a player
        /// (nodes check it before they encrypt a share to it).
        encryption_key: Hex<32>,
    },
    /// A node's stake changed by its own transaction.
    StakeChanged {
        /// Identity.
        identity: IdentityKey,
        /// New stake.
        stake: u64,
    },
    /// A node whose stake is locked (a member of the active view or of a running ceremony)
    /// asked to deregister: it is no longer selected, and it is deregistered (`Deregistered`,
    /// then `UnbondingStarted`) at the end of the first block in which its stake is free.
    LeaveScheduled {
        /// Identity.
        identity: IdentityKey,
    },
    /// A node cancelled its scheduled deregistration (`CancelLeave`): it is selected again.
    LeaveCancelled {
        /// Identity.
        identity: IdentityKey,
    },
    /// A node left the registry.
    Deregistered {
        /// Identity.
        identity: IdentityKey,
        /// Stake it had.
        stake: u64,
    },
    /// Balance moved between accounts.
    Transferred {
        /// Sender.
        from: IdentityKey,
        /// Recipient.
        to: IdentityKey,
        /// Amount.
        amount: u64,
    },
    /// Stake left the node's locked stake (by `Unbond` or `Deregister`) and can be claimed
    /// once `release_view` is active.
    UnbondingStarted {
        /// Identity.
        identity: IdentityKey,
        /// Amount.
        amount: u64,
        /// First view at which it can be claimed.
        release_view: u64,
    },
    /// Unbonded stake went back to the balance.
    UnbondedClaimed {
        /// Identity.
        identity: IdentityKey,
        /// Amount claimed.
        amount: u64,
        /// Free balance after the claim.
        balance: u64,
    },
    /// A node changed its network identity.
    NetworkUpdated {
        /// Identity.
        identity: IdentityKey,
        /// New network identity.
        network: NetworkIdentity,
    },
    /// A node set its verifiable-encryption key (complaint-variant ceremonies encrypt its
    /// shares to it).
    VerifiableKeySet {
        /// Identity.
        identity: IdentityKey,
        /// The key (compressed secp256k1 point).
        key: Hex<33>,
    },
    /// A ceremony started (seed 000, Start): the committee and the ceremony's definition.
    CommitteeSelected {
        /// View being created.
        view: u64,
        /// Ceremony number within the view change (0 for the first; serialised as `session`).
        #[serde(rename = "session")]
        ceremony_number: u32,
        /// Fresh or reshare.
        key_mode: KeyMode,
        /// Session id.
        session_id: Hex<32>,
        /// The committee in index order.
        committee: Vec<CommitteeEntry>,
        /// Dealers when resharing (previous members in good standing).
        dealers: Vec<IdentityKey>,
        /// The ceremony's definition; build it with [`CeremonySpec::ceremony`].
        spec: CeremonySpec,
    },
    /// The contract's phase changed.
    PhaseChanged {
        /// View being created.
        view: u64,
        /// Ceremony number within the view change (0 for the first; serialised as `session`).
        #[serde(rename = "session")]
        ceremony_number: u32,
        /// Board attempt.
        attempt: u32,
        /// New phase.
        phase: ViewChangePhase,
        /// Its last block.
        deadline: u64,
    },
    /// A board phase deadline passed: participants get one `Input::Deadline`.
    BoardDeadline {
        /// View.
        view: u64,
        /// Ceremony number within the view change (0 for the first; serialised as `session`).
        #[serde(rename = "session")]
        ceremony_number: u32,
        /// Board attempt before the deadline.
        attempt: u32,
    },
    /// The board accepted a post.
    PostAccepted {
        /// View.
        view: u64,
        /// Ceremony number within the view change (0 for the first; serialised as `session`).
        #[serde(rename = "session")]
        ceremony_number: u32,
        /// Author's position: its dealer position, or for a complaint-variant post by a player
        /// (report, dispute, complaint, reconstruction) its player position.
        dealer: u32,
        /// `contribution` or `publication`; in the complaint variant `report`,
        /// `justification`, `dispute`, `feldman`, `complaint` or `reconstruction`.
        kind: String,
        /// The encoded signed post.
        post: Bytes,
    },
    /// The board refused an authentic post as a fault of its author (the author is
    /// disqualified; the post is evidence).
    PostRejected {
        /// View.
        view: u64,
        /// Ceremony number within the view change (0 for the first; serialised as `session`).
        #[serde(rename = "session")]
        ceremony_number: u32,
        /// Author's position (as in `PostAccepted`).
        dealer: u32,
        /// Why.
        reason: String,
        /// The encoded signed post.
        post: Bytes,
    },
    /// A post the board took on arrival and dropped at a deadline: a complaint-variant
    /// reconstruction post, whose signature the board checks only at the reconstruct deadline,
    /// in one batch, and which is not its author's. It counts as never posted (the
    /// `PostAccepted` or `SigningKeyBoardPost` that reported it taken is void) and in its
    /// author's `refused_posts`. Not a board input: every replica of the board drops it by
    /// itself.
    PostDropped {
        /// The ceremony: a view change's, or the view's signing key's.
        ceremony: FaultCeremony,
        /// View.
        view: u64,
        /// Ceremony number within the view change (0 for the first and for a signing key;
        /// serialised as `session`).
        #[serde(rename = "session")]
        ceremony_number: u32,
        /// The author's player position.
        player: u32,
        /// The author.
        identity: IdentityKey,
        /// Why (`bad_post_signature`).
        reason: String,
    },
    /// A `DkgPost` refused for a post its sender could not honestly have sent
    /// ([`Rejection::charges_sender`](crate::Rejection::charges_sender)): the transaction
    /// consumed the sender's nonce and counts in its `refused_posts`. The post itself is not
    /// kept (nor fed to any board), so the event has a fixed size.
    PostRefused {
        /// The sender.
        identity: IdentityKey,
        /// The refusal's code (`malformed_post`, `not_a_dealer`, `not_post_author`,
        /// `bad_post_signature`).
        code: String,
    },
    /// A ceremony failed; its culprits are left out of the next one.
    CeremonyFailed {
        /// View.
        view: u64,
        /// Ceremony number within the view change (0 for the first; serialised as `session`).
        #[serde(rename = "session")]
        ceremony_number: u32,
        /// Why.
        reason: String,
        /// Culprits (excluded from later ceremonies of this view change).
        culprits: Vec<IdentityKey>,
        /// The number of the ceremony that follows, if any (serialised as `next_session`).
        #[serde(rename = "next_session")]
        next_ceremony_number: Option<u32>,
    },
    /// The view change was abandoned for now.
    ViewChangeAborted {
        /// View.
        view: u64,
        /// Ceremony number within the view change (0 for the first; serialised as `session`).
        #[serde(rename = "session")]
        ceremony_number: u32,
        /// Why.
        reason: String,
        /// Height whose end starts the next try.
        retry_at: u64,
    },
    /// The ceremony succeeded and the magic block awaits signatures.
    MagicBlockCreated {
        /// View.
        view: u64,
        /// Ceremony number within the view change (0 for the first; serialised as `session`).
        #[serde(rename = "session")]
        ceremony_number: u32,
        /// Its hash.
        hash: Hex<32>,
        /// The block.
        magic_block: MagicBlock,
    },
    /// A verified partial signature was stored.
    PartialSignatureAccepted {
        /// View.
        view: u64,
        /// Signer.
        signer: IdentityKey,
        /// New or previous committee.
        role: SignerRole,
        /// Partials in for that role.
        have: u32,
        /// Threshold of that role.
        need: u32,
    },
    /// A combined signature was verified and stored.
    MagicBlockSigned {
        /// View.
        view: u64,
        /// Which committee's signature.
        role: SignerRole,
        /// Block hash.
        hash: Hex<32>,
        /// The signature (compressed G2).
        signature: Hex<96>,
        /// Whether the block now has every signature it needs.
        complete: bool,
    },
    /// The new view is active.
    ViewActivated {
        /// View.
        view: u64,
        /// Its first block.
        first_round: u64,
        /// Magic block hash.
        hash: Hex<32>,
    },
    /// A fault was recorded (`record.amount` may be 0 when the configured effect is none).
    Slashed {
        /// The record.
        record: SlashingRecord,
    },
    /// A participant was named for a fault that carries no penalty.
    Named {
        /// The record.
        record: NamedRecord,
    },
    /// A view's signing-key ceremony started ([`crate::signing_key`]): its members build the
    /// ceremony from the spec and the reshare with
    /// [`signing_ceremony`](crate::signing_key::signing_ceremony),
    /// feed `Input::Start` and deal point to point.
    SigningKeyStarted {
        /// The view whose committee makes the key.
        view: u64,
        /// Session id.
        session_id: Hex<32>,
        /// The ceremony's definition.
        spec: CeremonySpec,
        /// The key it reshares (lifetime `chain`); absent for a new key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reshare: Option<crate::signing_key::SigningKeyReshare>,
        /// The deal phase's deadline (it ends earlier once every member has reported).
        deadline: u64,
    },
    /// A post the signing-key ceremony's board took, in chain order (`accepted` false: refused
    /// as a fault of its author, which changes the board too): one `Input::BoardPost`.
    SigningKeyBoardPost {
        /// View.
        view: u64,
        /// The signed post.
        post: Bytes,
        /// Whether the board accepted it.
        accepted: bool,
    },
    /// A board phase of the signing-key ceremony ended: one `Input::Deadline`.
    SigningKeyDeadline {
        /// View.
        view: u64,
        /// Last block of the next board phase, if the ceremony goes on.
        next_deadline: Option<u64>,
    },
    /// A view's signing key is made and recorded with the view.
    SigningKeyCreated {
        /// View.
        view: u64,
        /// The key ([`SigningKeyRecord::from_board`]).
        key: SigningKeyRecord,
    },
    /// A view's signing-key ceremony ended without a key (or did not start).
    SigningKeyFailed {
        /// View.
        view: u64,
        /// Why.
        reason: String,
    },
}

impl Event {
    /// The board input this event carries, as `(view, ceremony number, signed post)`: a post the board
    /// took, accepted or rejected as a fault of its author (both change the board, so every
    /// replica of it must apply both, in chain order).
    pub fn board_post(&self) -> Option<(u64, u32, &[u8])> {
        match self {
            Event::PostAccepted {
                view,
                ceremony_number,
                post,
                ..
            }
            | Event::PostRejected {
                view,
                ceremony_number,
                post,
                ..
            } => Some((*view, *ceremony_number, &post.0)),
            _ => None,
        }
    }
}
