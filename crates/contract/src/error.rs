//! Typed rejections. A rejected transaction changes nothing: not the state, not the nonce. (A
//! `DkgPost` refused for a reason in [`Rejection::charges_sender`] is applied as refused
//! instead.)

use keyquorum_dkg::board::BoardError;
use keyquorum_dkg::complaint::ComplaintBoardError;
use keyquorum_dkg::wire::WireError;
use thiserror::Error;

use crate::state::ViewChangePhase;
use crate::tx::{SignerRole, TxDecodeError};

/// Why a transaction was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Rejection {
    /// The bytes are not a transaction (garbage, oversized, bad encodings).
    #[error("malformed transaction: {0}")]
    Malformed(#[from] TxDecodeError),
    /// The signature is not the sender's over this transaction on this chain.
    #[error("bad transaction signature")]
    BadSignature,
    /// The nonce is not the sender's next one (replay, or out of order).
    #[error("bad nonce: expected {expected}, got {got}")]
    BadNonce {
        /// Next nonce of the sender.
        expected: u64,
        /// Nonce in the transaction.
        got: u64,
    },
    /// The sender is not a registered node, which registry and ceremony transactions need
    /// (an account that holds nothing is refused by what it lacks: `InsufficientBalance` for a
    /// registration or a transfer, `NothingUnbonding` for a claim).
    #[error("the sender is not a registered node")]
    NotRegistered,
    /// The heights of blocks must increase.
    #[error("block height {got} is not after the last ended block {last}")]
    WrongHeight {
        /// Last ended block.
        last: u64,
        /// Height given.
        got: u64,
    },
    /// `Register` from a key that is already registered.
    #[error("identity already registered")]
    AlreadyRegistered,
    /// `Deregister` from a node whose deregistration is already scheduled.
    #[error("the node already leaves: it is deregistered once its stake is free")]
    AlreadyLeaving,
    /// `CancelLeave` from a node with no scheduled deregistration.
    #[error("the node has no scheduled deregistration to cancel")]
    NotLeaving,
    /// The proof of possession does not verify.
    #[error("invalid proof of possession of the identity key")]
    BadProofOfPossession,
    /// Another node registered this encryption key.
    #[error("encryption key already registered by another node")]
    DuplicateEncryptionKey,
    /// Another node registered this verifiable-encryption key.
    #[error("verifiable-encryption key already registered by another node")]
    DuplicateVerifiableKey,
    /// The sender's verifiable-encryption key is set already (it is set once: a running
    /// ceremony's spec may list it).
    #[error("verifiable-encryption key already set")]
    VerifiableKeyAlreadySet,
    /// Another node registered this peer id.
    #[error("peer id already registered by another node")]
    DuplicatePeerId,
    /// A stake amount of zero.
    #[error("amount must be positive")]
    ZeroAmount,
    /// The stake would overflow.
    #[error("stake overflow")]
    StakeOverflow,
    /// Withdrawing more than the stake.
    #[error("cannot withdraw {requested}: stake is {stake}")]
    InsufficientStake {
        /// Stake.
        stake: u64,
        /// Requested.
        requested: u64,
    },
    /// The node is in the active committee or the view change in progress.
    #[error("stake is locked while the node is in a committee or a view change")]
    StakeLocked,
    /// Locking or transferring more than the sender's free balance.
    #[error("insufficient balance: {requested} requested, {balance} free")]
    InsufficientBalance {
        /// Free balance.
        balance: u64,
        /// Requested.
        requested: u64,
    },
    /// The recipient's balance would overflow (impossible with a valid genesis supply;
    /// refused rather than assumed).
    #[error("balance overflow")]
    BalanceOverflow,
    /// `ClaimUnbonded` with nothing unbonding.
    #[error("nothing is unbonding")]
    NothingUnbonding,
    /// `ClaimUnbonded` before the earliest unbonding period is over.
    #[error("unbonding until view {release_view} is active (the active view is {current_view})")]
    StillUnbonding {
        /// First view at which something can be claimed.
        release_view: u64,
        /// The active view.
        current_view: u64,
    },
    /// No view change is in progress.
    #[error("no view change in progress")]
    NoViewChange,
    /// No signing-key ceremony is in progress.
    #[error("no signing-key ceremony in progress")]
    NoSigningKeyCeremony,
    /// The transaction does not belong in the current phase.
    #[error("not allowed in phase {phase:?}")]
    WrongPhase {
        /// Current phase.
        phase: ViewChangePhase,
    },
    /// The phase's last block has passed (blocks were skipped).
    #[error("the deadline of the phase (block {deadline}) has passed")]
    DeadlinePassed {
        /// Last block of the phase.
        deadline: u64,
    },
    /// The DKG post does not decode (and does not name another session, which is
    /// [`Rejection::WrongSession`]).
    #[error("malformed DKG post: {0}")]
    MalformedPost(WireError),
    /// The post is for another ceremony (its session id differs).
    #[error("post for another session")]
    WrongSession,
    /// The sender is not the dealer that signed the post.
    #[error("sender is not the author of the post")]
    NotPostAuthor,
    /// The board refused the post without it being a fault of its author (duplicate, wrong
    /// phase or attempt, bad post signature, ...): nothing changes.
    #[error("board refused the post: {0}")]
    Board(BoardError),
    /// The complaint variant's board refused the post without it being a fault of its author:
    /// nothing changes.
    #[error("board refused the post: {0}")]
    ComplaintBoard(ComplaintBoardError),
    /// The signature is for another view.
    #[error("signature for view {got}, the pending magic block is for view {expected}")]
    WrongView {
        /// Pending view.
        expected: u64,
        /// Given.
        got: u64,
    },
    /// The signature is for another magic block.
    #[error("signature for another magic block")]
    WrongMagicBlock,
    /// The sender is not in the committee that signs in that role.
    #[error("sender is not a {0:?} signer of this magic block")]
    NotASigner(SignerRole),
    /// The partial's index is not the sender's.
    #[error("partial signature index is not the sender's index")]
    WrongIndex,
    /// The partial does not verify against the sender's public key share.
    #[error("partial signature does not verify")]
    BadPartialSignature,
    /// The sender already signed in that role.
    #[error("duplicate partial signature")]
    DuplicatePartial,
    /// That role's signature is already combined.
    #[error("the {0:?} signature is already complete")]
    SignatureComplete(SignerRole),
    /// Combining verified partials failed (cannot happen with verified partials and distinct
    /// indices; reported instead of panicking).
    #[error("combining partial signatures failed")]
    CombineFailed,
}

impl Rejection {
    /// Whether a `DkgPost` refused for this reason is applied as refused rather than rejected:
    /// the sender's nonce is consumed and the refusal counted
    /// ([`NodeRecord::refused_posts`](crate::state::NodeRecord::refused_posts)), with a
    /// `PostRefused` event. These are the refusals an honest node's own post never gets, whatever
    /// the timing: a post that does not decode (for this session), names no dealer, is not the sender's, or whose
    /// signature is bad. The sender's chain key signed the transaction, so the refusal is its
    /// own; without a cost, one registered key could have a block carry any number of them at the
    /// same nonce. Refusals that timing alone explains (late, duplicate, wrong phase, attempt or
    /// session) stay rejections that cost nothing, as a node that retries after a restart or
    /// posts near a deadline meets them.
    pub fn charges_sender(&self) -> bool {
        matches!(
            self,
            Rejection::MalformedPost(_)
                | Rejection::NotPostAuthor
                | Rejection::Board(BoardError::NotADealer(_) | BoardError::BadSignature)
                | Rejection::ComplaintBoard(
                    ComplaintBoardError::UnknownAuthor(..) | ComplaintBoardError::BadSignature
                )
        )
    }

    /// A stable machine-readable code (the chain's HTTP API returns it as `error`).
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Malformed(TxDecodeError::TooLarge { .. }) => "oversized",
            Rejection::Malformed(_) => "malformed",
            Rejection::BadSignature => "bad_signature",
            Rejection::BadNonce { expected, got } if got < expected => "stale_nonce",
            Rejection::BadNonce { .. } => "bad_nonce",
            Rejection::NotRegistered => "not_registered",
            Rejection::WrongHeight { .. } => "wrong_height",
            Rejection::AlreadyRegistered => "already_registered",
            Rejection::AlreadyLeaving => "already_leaving",
            Rejection::NotLeaving => "not_leaving",
            Rejection::BadProofOfPossession => "bad_proof_of_possession",
            Rejection::DuplicateEncryptionKey => "duplicate_encryption_key",
            Rejection::DuplicatePeerId => "duplicate_peer_id",
            Rejection::DuplicateVerifiableKey => "duplicate_verifiable_key",
            Rejection::VerifiableKeyAlreadySet => "verifiable_key_already_set",
            Rejection::ZeroAmount => "zero_amount",
            Rejection::StakeOverflow => "stake_overflow",
            Rejection::InsufficientStake { .. } => "insufficient_stake",
            Rejection::StakeLocked => "stake_locked",
            Rejection::InsufficientBalance { .. } => "insufficient_balance",
            Rejection::BalanceOverflow => "balance_overflow",
            Rejection::NothingUnbonding => "nothing_unbonding",
            Rejection::StillUnbonding { .. } => "still_unbonding",
            Rejection::NoViewChange => "no_view_change",
            Rejection::NoSigningKeyCeremony => "no_signing_key_ceremony",
            Rejection::WrongPhase { .. } => "wrong_phase",
            Rejection::DeadlinePassed { .. } => "deadline_passed",
            Rejection::MalformedPost(_) => "malformed_post",
            Rejection::WrongSession | Rejection::Board(BoardError::WrongSession) => "wrong_session",
            Rejection::NotPostAuthor => "not_post_author",
            Rejection::Board(e) => match e {
                BoardError::WrongPhase(_) => "wrong_phase",
                BoardError::NotADealer(_) => "not_a_dealer",
                BoardError::BadSignature => "bad_post_signature",
                BoardError::Duplicate => "duplicate_post",
                BoardError::Disqualified(_) => "disqualified",
                BoardError::WrongAttempt { .. } => "wrong_attempt",
                BoardError::NoContribution => "no_contribution",
                BoardError::WrongSession => "wrong_session",
                BoardError::Fault { .. } => "invalid_post",
            },
            Rejection::ComplaintBoard(e) => match e {
                ComplaintBoardError::WrongSession => "wrong_session",
                ComplaintBoardError::WrongPhase(_) => "wrong_phase",
                ComplaintBoardError::UnknownAuthor(..) => "unknown_author",
                ComplaintBoardError::BadSignature => "bad_post_signature",
                ComplaintBoardError::Duplicate => "duplicate_post",
                ComplaintBoardError::Excluded(..) => "disqualified",
                ComplaintBoardError::Unexpected(_) => "unexpected_post",
                ComplaintBoardError::Fault { .. } => "invalid_post",
            },
            Rejection::WrongView { .. } => "wrong_view",
            Rejection::WrongMagicBlock => "wrong_magic_block",
            Rejection::NotASigner(_) => "not_a_signer",
            Rejection::WrongIndex => "wrong_index",
            Rejection::BadPartialSignature => "bad_partial_signature",
            Rejection::DuplicatePartial => "duplicate_partial",
            Rejection::SignatureComplete(_) => "signature_complete",
            Rejection::CombineFailed => "combine_failed",
        }
    }
}
