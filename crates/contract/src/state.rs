//! The contract's state: plain data, comparable and serializable.
//!
//! The running ceremony's [`Board`](keyquorum_dkg::board::Board) is not part of it: the state
//! keeps the ceremony's definition ([`CeremonySpec`]) and the board's inputs in chain order
//! ([`BoardInput`]), and the contract derives the board from them (incrementally while running,
//! by replay in [`Contract::from_state`](crate::Contract::from_state)). So two states are equal
//! exactly when everything that matters is equal, which is what the "a rejected transaction
//! changes nothing" tests compare.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use keyquorum_crypto::Bls12381G1;
use keyquorum_crypto::Curve;
use keyquorum_crypto::encrypt::EncryptionPublicKey;
use keyquorum_crypto::index::IndexScheme;
use keyquorum_crypto::verifiable_encrypt::VerifiableEncryptionPublicKey;
use keyquorum_dkg::ceremony::CeremonyError;
use keyquorum_dkg::identity::IdentityPublicKey;
use keyquorum_dkg::{Ceremony, CeremonyConfig, Member, Params, Reshare};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::{ContractConfig, DkgVariant, KeyMode};
use crate::hex::{Bytes, Hex};
use crate::magic::SignedMagicBlock;
use crate::tx::NetworkIdentity;

/// An identity key as stored (compressed G2).
pub type IdentityKey = Hex<96>;

/// A registered node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Identity key (proof of possession verified at registration).
    pub identity: IdentityKey,
    /// Share-encryption key.
    pub encryption_key: Hex<32>,
    /// Network identity.
    pub network: NetworkIdentity,
    /// Stake locked from the node's balance: its weight in committee selection and what
    /// slashing takes from.
    pub stake: u64,
    /// Height of registration.
    pub registered_at: u64,
    /// `DkgPost` transactions of this node refused for a post it could not honestly have sent
    /// ([`Rejection::charges_sender`](crate::Rejection::charges_sender)): each consumed a nonce.
    /// A count, so a flood of them keeps one number per node, not a record per post.
    #[serde(default)]
    pub refused_posts: u64,
    /// Key for verifiable share encryption (compressed secp256k1 point), which the complaint
    /// variant encrypts this node's shares to so that a complaint about them can be checked by
    /// anyone; set by `SetVerifiableKey`. A node without one is not selected for
    /// complaint-variant committees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifiable_key: Option<Hex<33>>,
    /// The node asked to deregister while its stake was locked: it is no longer selected, and
    /// it is deregistered at the end of the first block in which its stake is free.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub leaving: bool,
}

/// The contract's phase (seed 000: start, contribute, share, publish, wait; start is the instant
/// the committee is selected, `Idle` is the time between view changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewChangePhase {
    /// No view change in progress.
    Idle,
    /// Commitments on chain.
    Contribute,
    /// Shares and acks off chain.
    Share,
    /// Logs on chain.
    Publish,
    /// Magic block signatures.
    Wait,
}

impl ViewChangePhase {
    /// Every phase, in order.
    pub const ALL: [ViewChangePhase; 5] = [
        ViewChangePhase::Idle,
        ViewChangePhase::Contribute,
        ViewChangePhase::Share,
        ViewChangePhase::Publish,
        ViewChangePhase::Wait,
    ];

    /// Stable snake_case name (the same as its serialized form), as `/status`, the metrics'
    /// `phase` label and the demo's report spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ViewChangePhase::Idle => "idle",
            ViewChangePhase::Contribute => "contribute",
            ViewChangePhase::Share => "share",
            ViewChangePhase::Publish => "publish",
            ViewChangePhase::Wait => "wait",
        }
    }
}

/// A participant of a session as the session id binds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecParticipant {
    /// Identity key.
    pub identity: IdentityKey,
    /// Share-encryption key.
    pub encryption_key: Hex<32>,
}

/// The previous committee and key of a resharing ceremony.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecReshare {
    /// Dealers: the previous committee's members in good standing, by index.
    pub dealers: Vec<SpecParticipant>,
    /// Their indices in the previous committee.
    pub dealer_indices: Vec<u64>,
    /// The previous threshold.
    pub old_threshold: u32,
    /// The group key (unchanged by the reshare).
    pub group_key: Hex<48>,
    /// The dealers' public key shares, in dealer order.
    pub public_shares: Vec<Hex<48>>,
}

/// Everything that defines one ceremony; [`CeremonySpec::config`] turns it into the
/// engine's [`CeremonyConfig`] (the spec's variant on BLS12-381, sequential indices). Nodes build
/// their ceremony from the spec in the `CommitteeSelected` event, so they derive the same session
/// id and run the variant the chain chose, not one of their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CeremonySpec {
    /// Domain: chain id, view and ceremony number, so each ceremony has its own session id even when
    /// its committee repeats.
    pub domain: Bytes,
    /// View number (the engine's epoch).
    pub view: u64,
    /// Ceremony number within the view change (0 for the first; serialised as `session`).
    #[serde(rename = "session")]
    pub ceremony_number: u32,
    /// Committee size.
    pub n: u32,
    /// Threshold.
    pub t: u32,
    /// Dealer quorum.
    pub k: u32,
    /// The committee (players) in index order.
    pub players: Vec<SpecParticipant>,
    /// Present for a resharing ceremony.
    pub reshare: Option<SpecReshare>,
    /// The protocol variant (absent: ack-or-reveal, so older specs read as they were).
    #[serde(default, skip_serializing_if = "is_ack_reveal")]
    pub variant: DkgVariant,
    /// Complaint variant: each player's verifiable-encryption key, in player order (empty for
    /// ack-or-reveal).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verifiable_keys: Vec<Hex<33>>,
}

fn is_ack_reveal(v: &DkgVariant) -> bool {
    *v == DkgVariant::AckReveal
}

/// A spec that does not make a valid ceremony.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SpecError {
    /// A key or point does not decode.
    #[error("invalid key material in ceremony spec: {0}")]
    Key(&'static str),
    /// The engine refused the configuration.
    #[error(transparent)]
    Session(#[from] CeremonyError),
}

/// The engine's member of a spec participant (its keys decoded and checked).
pub fn spec_member(p: &SpecParticipant) -> Result<Member, SpecError> {
    Ok(Member {
        identity: IdentityPublicKey::from_bytes(&p.identity.0)
            .map_err(|_| SpecError::Key("identity key"))?,
        encryption: EncryptionPublicKey::from_bytes(&p.encryption_key.0)
            .map_err(|_| SpecError::Key("encryption key"))?,
    })
}

impl CeremonySpec {
    /// The engine configuration.
    pub fn config(&self) -> Result<CeremonyConfig<Bls12381G1>, SpecError> {
        self.config_on::<Bls12381G1>(IndexScheme::Sequential)
    }

    /// The engine configuration on curve `C` with `indices` (the views' ceremonies use
    /// [`CeremonySpec::config`]; a view's signing key uses secp256k1 and key-hash indices).
    pub fn config_on<C: Curve>(
        &self,
        indices: IndexScheme,
    ) -> Result<CeremonyConfig<C>, SpecError> {
        let params = Params::new(self.n as usize, self.t as usize, self.k as usize)
            .map_err(CeremonyError::from)?;
        let players = self
            .players
            .iter()
            .map(spec_member)
            .collect::<Result<Vec<_>, _>>()?;
        let reshare = match &self.reshare {
            None => None,
            Some(r) => Some(Reshare {
                dealers: r
                    .dealers
                    .iter()
                    .map(spec_member)
                    .collect::<Result<Vec<_>, _>>()?,
                dealer_indices: r
                    .dealer_indices
                    .iter()
                    .map(|x| C::Scalar::from(*x))
                    .collect(),
                old_threshold: r.old_threshold as usize,
                group_key: C::decode_point_nonzero(&r.group_key.0)
                    .map_err(|_| SpecError::Key("group key"))?,
                public_shares: r
                    .public_shares
                    .iter()
                    .map(|p| C::decode_point(&p.0))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| SpecError::Key("public share"))?,
            }),
        };
        let verifiable_keys = self
            .verifiable_keys
            .iter()
            .map(|k| VerifiableEncryptionPublicKey::from_bytes(&k.0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| SpecError::Key("verifiable-encryption key"))?;
        Ok(CeremonyConfig {
            domain: self.domain.0.clone(),
            epoch: self.view,
            variant: self.variant.engine(),
            params,
            index_scheme: indices,
            players,
            verifiable_keys,
            reshare,
        })
    }

    /// The validated ceremony.
    pub fn ceremony(&self) -> Result<Arc<Ceremony<Bls12381G1>>, SpecError> {
        Ok(Ceremony::new(self.config()?)?)
    }
}

/// One input of the ceremony's board, in chain order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum BoardInput {
    /// A post the board took (accepted, or refused as a fault of its author).
    Post {
        /// The encoded signed post.
        post: Bytes,
    },
    /// A phase deadline.
    Deadline,
}

/// The magic block being signed in the wait phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingMagicBlock {
    /// The block and the signatures combined so far.
    pub signed: SignedMagicBlock,
    /// Verified partials of the new committee, by index.
    pub new_partials: BTreeMap<u64, Hex<128>>,
    /// Verified partials of the previous committee, by index (previous indices).
    pub old_partials: BTreeMap<u64, Hex<128>>,
}

impl PendingMagicBlock {
    /// Whether every signature the block needs is in.
    pub fn is_complete(&self) -> bool {
        self.signed.signature.is_some()
            && (self.signed.block.view <= 1 || self.signed.previous_signature.is_some())
    }
}

/// A view change in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewChange {
    /// The view being created.
    pub view: u64,
    /// Session number (a failed session is followed by a new one without its culprits).
    /// Numbers keep increasing when an abandoned view change is tried again, so no two
    /// Ceremony number within the view change (0 for the first; serialised as `session`).
    #[serde(rename = "session")]
    pub ceremony_number: u32,
    /// The ceremony number this round of the view change started with (`max_ceremonies_per_view` counts
    /// from it).
    #[serde(rename = "first_session")]
    pub first_ceremony_number: u32,
    /// Fresh key or reshare.
    pub key_mode: KeyMode,
    /// Phase.
    pub phase: ViewChangePhase,
    /// Last block height of the phase.
    pub deadline: u64,
    /// The board's attempt (publish-phase retries within the ceremony).
    pub attempt: u32,
    /// Height at which the ceremony started.
    pub started_at: u64,
    /// Tie-break seed used for the selection.
    pub seed: Hex<32>,
    /// Session id.
    pub session_id: Hex<32>,
    /// The session.
    pub spec: CeremonySpec,
    /// The board's inputs so far.
    pub board_log: Vec<BoardInput>,
    /// Nodes excluded from later ceremonies of this view change (culprits of failed ones).
    pub banned: BTreeSet<IdentityKey>,
    /// The magic block, in the wait phase.
    pub magic: Option<PendingMagicBlock>,
}

impl ViewChange {
    /// Whether `id` takes part in the ceremony (as player or dealer).
    pub fn involves(&self, id: &IdentityKey) -> bool {
        self.spec.players.iter().any(|p| &p.identity == id)
            || self
                .spec
                .reshare
                .as_ref()
                .is_some_and(|r| r.dealers.iter().any(|d| &d.identity == id))
    }
}

/// A completed view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewRecord {
    /// View number.
    pub view: u64,
    /// The signed magic block.
    pub magic_block: SignedMagicBlock,
    /// The view's random seed: SHA-256 of the new committee's signature on its magic block (a
    /// unique threshold signature nobody could predict before the ceremony ended). It breaks
    /// stake ties when the next committee is selected.
    pub seed: Hex<32>,
    /// Height at which the view started.
    pub activated_at: u64,
    /// The view's secp256k1 signing key, once its ceremony made it
    /// ([`crate::signing_key`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<crate::signing_key::SigningKeyRecord>,
}

/// In which role a fault happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultRole {
    /// Dealer of a ceremony.
    Dealer,
    /// Player of a ceremony.
    Player,
    /// Member of the new committee asked to sign the magic block.
    Signer,
    /// Member of the previous committee asked to sign the magic block.
    PreviousSigner,
}

impl FaultRole {
    /// Stable snake_case name (the same as its serialized form).
    pub fn as_str(self) -> &'static str {
        match self {
            FaultRole::Dealer => "dealer",
            FaultRole::Player => "player",
            FaultRole::Signer => "signer",
            FaultRole::PreviousSigner => "previous_signer",
        }
    }
}

/// The evidence of a recorded fault, as the board gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EvidenceRecord {
    /// The culprit's own signed posts (context posts first).
    SignedPosts {
        /// Encoded signed posts.
        posts: Vec<Bytes>,
    },
    /// No post before the phase deadline (the chain shows it).
    Absence {
        /// The board phase missed.
        phase: String,
        /// The board attempt.
        attempt: u32,
    },
    /// Publications reporting the player as not acking.
    Reports {
        /// Encoded signed posts.
        posts: Vec<Bytes>,
    },
    /// No partial signature on the magic block by the wait deadline.
    MissingSignature {
        /// The magic block.
        magic_block_hash: Hex<32>,
    },
}

/// Which kind of ceremony a fault happened in.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FaultCeremony {
    /// A view change's ceremony (the view's BLS key) or its magic block.
    #[default]
    ViewChange,
    /// The view's signing-key ceremony ([`crate::signing_key`]), run while the view is active.
    SigningKey,
}

impl FaultCeremony {
    fn is_view_change(&self) -> bool {
        *self == FaultCeremony::ViewChange
    }
}

/// A fault recorded against a node, with its stake effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlashingRecord {
    /// Height at which it was recorded.
    pub height: u64,
    /// View: the view being created for a view-change fault, the active view whose key was
    /// being made for a signing-key fault.
    pub view: u64,
    /// The ceremony the fault happened in (absent in older records: a view change).
    #[serde(default, skip_serializing_if = "FaultCeremony::is_view_change")]
    pub ceremony: FaultCeremony,
    /// Ceremony number within the view change (0 for the first; serialised as `session`).
    #[serde(rename = "session")]
    pub ceremony_number: u32,
    /// Board attempt.
    pub attempt: u32,
    /// The node.
    pub identity: IdentityKey,
    /// Role.
    pub role: FaultRole,
    /// Fault code (`FaultKind::code`, or `missed_magic_block_signature`).
    pub fault: String,
    /// The fault with its details.
    pub detail: String,
    /// Provable misbehaviour (true) or absence (false).
    pub misbehaviour: bool,
    /// Evidence.
    pub evidence: EvidenceRecord,
    /// Stake taken.
    pub amount: u64,
    /// Stake left.
    pub stake_after: u64,
    /// The account paid a share of `amount` for carrying the evidence, if any.
    #[serde(default)]
    pub reporter: Option<IdentityKey>,
    /// What the reporter was paid.
    #[serde(default)]
    pub reporter_reward: u64,
    /// What was burned (`amount - reporter_reward`).
    #[serde(default)]
    pub burned: u64,
}

/// Stake on its way back to the balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unbonding {
    /// Amount.
    pub amount: u64,
    /// Claimable once this view is active (`current_view` at the request plus
    /// `staking.unbonding_views`).
    pub release_view: u64,
}

/// Where the supply is; the parts always add up to the genesis supply
/// ([`ContractState::supply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supply {
    /// Sum of free balances.
    pub balances: u128,
    /// Sum of locked stakes.
    pub staked: u128,
    /// Sum of unbonding amounts.
    pub unbonding: u128,
    /// Burned by slashing.
    pub burned: u128,
}

impl Supply {
    /// Everything together.
    pub fn total(&self) -> u128 {
        self.balances + self.staked + self.unbonding + self.burned
    }
}

/// A participant named for a fault that carries no penalty (`FaultKind::penalty` is
/// `Penalty::None`): a dealer excluded from an attempt because players did not ack it, or a
/// player that publications report as not acking. Recorded so that the pattern is visible
/// on chain; stake and membership are untouched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedRecord {
    /// Height at which it was recorded.
    pub height: u64,
    /// View change.
    pub view: u64,
    /// Ceremony number within the view change (0 for the first; serialised as `session`).
    #[serde(rename = "session")]
    pub ceremony_number: u32,
    /// Board attempt.
    pub attempt: u32,
    /// The node.
    pub identity: IdentityKey,
    /// Role.
    pub role: FaultRole,
    /// Fault code (`FaultKind::code`).
    pub fault: String,
    /// The fault with its details.
    pub detail: String,
    /// Evidence.
    pub evidence: EvidenceRecord,
}

/// Everything the contract stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractState {
    /// Height of the last block ended.
    pub last_block: Option<u64>,
    /// Registered nodes.
    pub nodes: BTreeMap<IdentityKey, NodeRecord>,
    /// Next nonce of every sender ever seen (kept after deregistration, so nothing replays).
    pub nonces: BTreeMap<IdentityKey, u64>,
    /// The active view (0 before the first view change completes).
    pub current_view: u64,
    /// Completed views.
    pub views: BTreeMap<u64, ViewRecord>,
    /// The view change in progress.
    pub change: Option<ViewChange>,
    /// When no view change is in progress: the height whose end starts the next one.
    pub next_start: u64,
    /// Number of the next ceremony of the view being created (serialised as `next_session`).
    #[serde(rename = "next_session")]
    pub next_ceremony_number: u32,
    /// Faults recorded, in order.
    pub slashings: Vec<SlashingRecord>,
    /// Participants named without a penalty, in order.
    #[serde(default)]
    pub named: Vec<NamedRecord>,
    /// Free balances; an account without an entry holds nothing (entries at zero are removed,
    /// so this grows only with funded accounts, at most one per unit of supply).
    pub balances: BTreeMap<IdentityKey, u64>,
    /// Unbonding stake per account, in release order, at most one entry per release view.
    pub unbonding: BTreeMap<IdentityKey, Vec<Unbonding>>,
    /// Slashed stake that was burned.
    pub burned: u64,
    /// The signing-key ceremony in progress ([`crate::signing_key`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing: Option<crate::signing_key::SigningKeyRun>,
}

impl ContractState {
    /// The state at genesis: the configured balances, nothing else.
    pub fn genesis(config: &ContractConfig) -> Self {
        ContractState {
            last_block: None,
            nodes: BTreeMap::new(),
            nonces: BTreeMap::new(),
            current_view: 0,
            views: BTreeMap::new(),
            change: None,
            next_start: config.first_view_change,
            next_ceremony_number: 0,
            slashings: Vec::new(),
            named: Vec::new(),
            balances: config
                .genesis
                .iter()
                .map(|a| (a.identity, a.balance))
                .collect(),
            unbonding: BTreeMap::new(),
            burned: 0,
            signing: None,
        }
    }

    /// The free balance of an account.
    pub fn balance(&self, id: &IdentityKey) -> u64 {
        self.balances.get(id).copied().unwrap_or(0)
    }

    /// Whether the account holds anything: a balance, a registration or unbonding stake.
    pub fn has_account(&self, id: &IdentityKey) -> bool {
        self.balances.contains_key(id)
            || self.nodes.contains_key(id)
            || self.unbonding.contains_key(id)
    }

    /// Where the supply is.
    pub fn supply(&self) -> Supply {
        Supply {
            balances: self.balances.values().map(|b| *b as u128).sum(),
            staked: self.nodes.values().map(|n| n.stake as u128).sum(),
            unbonding: self
                .unbonding
                .values()
                .flatten()
                .map(|u| u.amount as u128)
                .sum(),
            burned: self.burned as u128,
        }
    }

    /// The phase.
    pub fn phase(&self) -> ViewChangePhase {
        self.change
            .as_ref()
            .map(|c| c.phase)
            .unwrap_or(ViewChangePhase::Idle)
    }

    /// Whether a node's stake is locked: it is a member of the active view, takes part in
    /// the view change in progress, or deals in the signing-key reshare in progress (its stake
    /// must stay at risk while it can commit faults).
    pub fn is_locked(&self, id: &IdentityKey) -> bool {
        let in_view = self
            .views
            .get(&self.current_view)
            .is_some_and(|v| v.magic_block.block.member_by_identity(&id.0).is_some());
        let deals_reshare = self
            .signing
            .as_ref()
            .and_then(|s| s.reshare.as_ref())
            .is_some_and(|r| r.dealers.iter().any(|d| d.identity == *id));
        in_view || deals_reshare || self.change.as_ref().is_some_and(|c| c.involves(id))
    }
}
