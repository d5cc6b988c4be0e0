//! Configuration of the contract: committee size and thresholds, phase lengths, schedule, key
//! mode per view, the stake effect of faults, the unbonding period and the genesis balances.
//!
//! Every field is part of consensus: all nodes running the contract must use the same
//! configuration (the chain's genesis parameters).

use keyquorum_dkg::Params;
use keyquorum_dkg::identity::IdentityPublicKey;
use keyquorum_dkg::params::{MAX_PARTICIPANTS, ParamsError};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::hex::Hex;

/// A threshold given as an absolute number or as a percentage of the committee size `n`
/// (rounded up, at least 1), as Züs configures `T` and `K` (protocol lessons: `K = ceil(0.75
/// N)`, `T = ceil(0.66 N)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Size {
    /// Exactly this many.
    Count(u32),
    /// This percentage of `n`, rounded up.
    Percent(u8),
}

impl Size {
    /// The value for a committee of `n`.
    pub fn resolve(self, n: usize) -> usize {
        match self {
            Size::Count(c) => c as usize,
            Size::Percent(p) => (n * p as usize).div_ceil(100).max(1),
        }
    }
}

/// Whether a view change creates a new group key or reshares the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyMode {
    /// A fresh DKG: the new committee deals to itself and the group key changes.
    Fresh,
    /// Resharing: the previous committee deals shares of its shares, the group key stays.
    Reshare,
}

impl KeyMode {
    /// Both modes.
    pub const ALL: [KeyMode; 2] = [KeyMode::Fresh, KeyMode::Reshare];

    /// Stable snake_case name (the same as its serialized form).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyMode::Fresh => "fresh",
            KeyMode::Reshare => "reshare",
        }
    }

    pub(crate) fn tag(self) -> u8 {
        match self {
            KeyMode::Fresh => 1,
            KeyMode::Reshare => 2,
        }
    }
}

/// The random beacon's scheme: drand's schemes with keys in G1 and signatures in G2, the layout
/// of the group key the ceremonies make.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum BeaconScheme {
    /// `pedersen-bls-chained` (drand's default): round `r` signs `sha256(sig(r - 1) || r)`.
    #[default]
    #[serde(rename = "pedersen-bls-chained")]
    PedersenBlsChained,
    /// `pedersen-bls-unchained`: round `r` signs `sha256(r)`, so rounds verify on their own.
    #[serde(rename = "pedersen-bls-unchained")]
    PedersenBlsUnchained,
}

impl BeaconScheme {
    /// Both schemes, default first.
    pub const ALL: [BeaconScheme; 2] = [
        BeaconScheme::PedersenBlsChained,
        BeaconScheme::PedersenBlsUnchained,
    ];

    /// drand's scheme id.
    pub fn as_str(self) -> &'static str {
        match self {
            BeaconScheme::PedersenBlsChained => "pedersen-bls-chained",
            BeaconScheme::PedersenBlsUnchained => "pedersen-bls-unchained",
        }
    }

    /// The scheme with drand's id `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The byte that stands for the scheme in a magic block's encoding (and in the EVM
    /// coordinator's configuration).
    pub fn tag(self) -> u8 {
        match self {
            BeaconScheme::PedersenBlsChained => 1,
            BeaconScheme::PedersenBlsUnchained => 2,
        }
    }

    /// The scheme whose [`tag`](Self::tag) is `tag`.
    pub fn from_tag(tag: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.tag() == tag)
    }
}

impl std::fmt::Display for BeaconScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest beacon period: an hour between rounds.
pub const MAX_BEACON_PERIOD_SECS: u32 = 3600;

/// The random beacon every view runs: scheme and seconds between rounds. Part of each magic
/// block, so that every node runs the chain the block names; a reshare continues the previous
/// view's chain and so keeps its values ([`BeaconConfig::for_view`]). Absent from a
/// configuration file, it is drand's default: chained, 3 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeaconConfig {
    /// The scheme.
    pub scheme: BeaconScheme,
    /// Seconds between rounds, `1..=`[`MAX_BEACON_PERIOD_SECS`].
    pub period_secs: u32,
}

impl Default for BeaconConfig {
    fn default() -> Self {
        BeaconConfig {
            scheme: BeaconScheme::PedersenBlsChained,
            period_secs: 3,
        }
    }
}

impl BeaconConfig {
    /// Checks the period's bounds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.period_secs == 0 {
            return Err(ConfigError::Zero("beacon.period_secs"));
        }
        if self.period_secs > MAX_BEACON_PERIOD_SECS {
            return Err(ConfigError::BeaconPeriod(self.period_secs));
        }
        Ok(())
    }

    /// The beacon of the view a ceremony in `key_mode` creates, `configured` being the chain's
    /// configuration and `previous` the active view's beacon (none before view 1). A reshare
    /// keeps the group key and so continues the previous view's chain: it keeps that chain's
    /// scheme and period whatever the configuration says now (a configuration changed on a
    /// restart takes effect at the next fresh key). A fresh key starts a new chain with the
    /// configured values. The contract and every node that checks a magic block use this rule.
    pub fn for_view(
        key_mode: KeyMode,
        configured: BeaconConfig,
        previous: Option<BeaconConfig>,
    ) -> BeaconConfig {
        match (key_mode, previous) {
            (KeyMode::Reshare, Some(previous)) => previous,
            _ => configured,
        }
    }
}

/// Which DKG protocol a ceremony runs ([`keyquorum_dkg::Variant`]).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum DkgVariant {
    /// Ack-or-reveal with the board as broadcast (seeds 000, 001): commitments and publications
    /// on chain, shares and acks point to point.
    #[default]
    #[serde(alias = "ack_reveal")]
    AckReveal,
    /// Complaint-and-reconstruct (seed 003): commitments and shares point to point, signed so
    /// that equivocation is provable; reports, Feldman values and the fallback steps on chain.
    /// Every committee member needs a registered verifiable-encryption key
    /// ([`TxBody::SetVerifiableKey`](crate::tx::TxBody::SetVerifiableKey)).
    Complaint,
}

impl DkgVariant {
    /// The engine's variant.
    pub fn engine(self) -> keyquorum_dkg::Variant {
        match self {
            DkgVariant::AckReveal => keyquorum_dkg::Variant::AckReveal,
            DkgVariant::Complaint => keyquorum_dkg::Variant::Complaint,
        }
    }

    /// Stable name (the configuration's spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            DkgVariant::AckReveal => "ack-reveal",
            DkgVariant::Complaint => "complaint",
        }
    }
}

/// The curve of a ceremony's group key.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum DkgCurve {
    /// BLS12-381 (keys in G1, signatures in G2): the committee signs magic blocks and beacon
    /// rounds with threshold BLS.
    #[default]
    #[serde(rename = "bls12-381", alias = "bls12_381")]
    Bls12381,
    /// secp256k1.
    Secp256k1,
}

/// How a ceremony assigns share indices ([`keyquorum_crypto::index::IndexScheme`]).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum DkgIndices {
    /// `1..=n` in committee order.
    #[default]
    Sequential,
    /// The hash of each member's public key reduced below the group order (seed 003, step 1).
    #[serde(alias = "key_hash")]
    KeyHash,
}

/// The DKG every ceremony of the chain runs: protocol variant, curve and index scheme. Absent
/// from a configuration file, it is ack-or-reveal on BLS12-381 with sequential indices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkgConfig {
    /// Protocol variant.
    #[serde(default)]
    pub variant: DkgVariant,
    /// Curve of the group key.
    #[serde(default)]
    pub curve: DkgCurve,
    /// Share indices.
    #[serde(default)]
    pub indices: DkgIndices,
    /// A second group key per view (or, with `lifetime = "chain"`, one reshared to every
    /// view), for Schnorr signatures: absent, views hold their BLS key only.
    #[serde(default)]
    pub signing_key: Option<SigningKeyConfig>,
}

/// The `[dkg.signing_key]` table: after each view activates, its committee makes a second group
/// key by a ceremony of its own ([`crate::signing_key`]), which signs with FROST. The only
/// combination that runs is `variant = "complaint"`, `curve = "secp256k1"`, `indices =
/// "key-hash"`; the fields are spelled out so that a configuration says what it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyConfig {
    /// Protocol variant (must be `complaint`).
    pub variant: DkgVariant,
    /// Curve (must be `secp256k1`).
    pub curve: DkgCurve,
    /// Share indices (must be `key-hash`).
    pub indices: DkgIndices,
    /// How long a key lives (absent: `view`, as configurations written before it read).
    #[serde(default)]
    pub lifetime: SigningKeyLifetime,
}

/// How long a signing key lives ([`crate::signing_key`], "Lifetime").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SigningKeyLifetime {
    /// Each view's committee makes a key of its own: a new group key every view.
    #[default]
    View,
    /// The key is made once and reshared to every later committee: one group key for the
    /// chain's life (an address or a verifier set up once keeps working).
    Chain,
}

impl SigningKeyConfig {
    /// What the contract runs: a key per view.
    pub const SECP256K1_FROST: SigningKeyConfig = SigningKeyConfig {
        variant: DkgVariant::Complaint,
        curve: DkgCurve::Secp256k1,
        indices: DkgIndices::KeyHash,
        lifetime: SigningKeyLifetime::View,
    };

    /// The same key reshared to every view's committee.
    pub const SECP256K1_FROST_RESHARED: SigningKeyConfig = SigningKeyConfig {
        lifetime: SigningKeyLifetime::Chain,
        ..SigningKeyConfig::SECP256K1_FROST
    };
}

/// A DKG configuration the contract cannot run, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DkgConfigError {
    /// Every view's committee signs its magic block (and its successor's) with a threshold BLS
    /// signature under its group key, so the group key must be a BLS12-381 key; keyquorum has no
    /// threshold signature scheme for secp256k1 keys.
    #[error(
        "curve secp256k1 is not supported: magic blocks are signed with threshold BLS signatures under the group key, which must be on bls12-381"
    )]
    CurveCannotSignMagicBlocks,
    /// A magic block records each member's share index as its position `1..=n`, at which the
    /// magic block's threshold signatures and the next view's reshare interpolate; hashed
    /// indices do not fit that record.
    #[error(
        "indices key-hash is not supported: magic blocks record share indices as committee positions 1..n, which threshold signatures and resharing interpolate at"
    )]
    IndicesNotPositions,
    /// The signing key's ceremony posts its deals' evidence on chain for anyone to judge, which
    /// only the complaint variant's board does for a key that is not the view's.
    #[error("signing_key.variant must be complaint")]
    SigningKeyVariant,
    /// The signing key exists for Schnorr signatures (FROST, BIP-340): its curve is secp256k1.
    #[error("signing_key.curve must be secp256k1")]
    SigningKeyCurve,
    /// The signing key's shares are at key-hash indices (seed 003, step 1); sequential indices
    /// are not implemented for it.
    #[error("signing_key.indices must be key-hash")]
    SigningKeyIndices,
}

impl DkgConfig {
    /// Whether the contract can run ceremonies of this kind; every variant runs on BLS12-381
    /// with sequential indices.
    pub fn validate(&self) -> Result<(), DkgConfigError> {
        if self.curve != DkgCurve::Bls12381 {
            return Err(DkgConfigError::CurveCannotSignMagicBlocks);
        }
        if self.indices != DkgIndices::Sequential {
            return Err(DkgConfigError::IndicesNotPositions);
        }
        if let Some(k) = &self.signing_key {
            if k.variant != DkgVariant::Complaint {
                return Err(DkgConfigError::SigningKeyVariant);
            }
            if k.curve != DkgCurve::Secp256k1 {
                return Err(DkgConfigError::SigningKeyCurve);
            }
            if k.indices != DkgIndices::KeyHash {
                return Err(DkgConfigError::SigningKeyIndices);
            }
        }
        Ok(())
    }
}

/// The committee: how many, how chosen, which thresholds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitteeConfig {
    /// `n` is the smaller of this and the number of eligible registered nodes.
    pub max_size: u32,
    /// Fewer eligible nodes than this: the view change is postponed.
    pub min_size: u32,
    /// `t`, shares needed to sign (Züs default 66%).
    pub threshold: Size,
    /// `k`, fewest qualified dealers (Züs default 75%).
    pub quorum: Size,
    /// Share of the seats reserved for members of the previous committee, by stake (0chain keeps
    /// up to 70%); 0 disables it.
    pub keep_previous_percent: u8,
    /// Stake needed to be eligible.
    pub min_stake: u64,
}

/// Phase lengths in blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseLengths {
    /// Contribute: commitments on chain.
    pub contribute: u64,
    /// Share: encrypted shares and acks off chain.
    pub share: u64,
    /// Publish: logs on chain (each board retry gets another publish phase).
    pub publish: u64,
    /// Wait: magic block signatures; the new view starts after it.
    pub wait: u64,
    /// End a phase at the block where the last post it expects lands instead of at its
    /// deadline (the lengths above stay the bound when someone is silent), in view ceremonies of
    /// both variants and in the signing-key ceremony. The outcome is the same either way; see
    /// [`Contract::end_block`](crate::Contract::end_block).
    #[serde(default = "close_early_default")]
    pub close_early: bool,
}

fn close_early_default() -> bool {
    true
}

/// What a recorded fault costs, in percent of the node's locked stake at the time, and where
/// the slashed amount goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlashingConfig {
    /// Provable misbehaviour (equivocation, invalid commitment or log, bad reveal).
    pub misbehaviour_percent: u8,
    /// Absence (missed phase, unresponsive, missing signature), charged once per round of a
    /// view change (until it is abandoned) and per signing-key ceremony, however many roles
    /// and ceremonies the absence shows up in.
    pub absence_percent: u8,
    /// Share of a slashed amount paid to the reporter: the member whose signed post proved the
    /// fault (`Exclusion::reporter`), never the culprit itself. The rest, and everything when
    /// there is no reporter (the culprit's own posts, an absence), is burned.
    #[serde(default)]
    pub reporter_percent: u8,
}

/// Stake withdrawal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StakingConfig {
    /// View activations between a request to unbond stake (or a deregistration) and the moment
    /// the stake can be claimed back to the balance. Meanwhile it counts for nothing.
    pub unbonding_views: u64,
}

impl Default for StakingConfig {
    fn default() -> Self {
        StakingConfig { unbonding_views: 2 }
    }
}

/// An account funded at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// The account's identity key (compressed G2, hex): the key that signs its transactions.
    pub identity: Hex<96>,
    /// Its balance at genesis.
    pub balance: u64,
}

/// A key mode for one view, overriding the default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewKeyMode {
    /// View number.
    pub view: u64,
    /// Mode for that view's change.
    pub mode: KeyMode,
}

/// The contract's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractConfig {
    /// Chain id: bound into every transaction signature, session id and magic block.
    pub chain_id: String,
    /// Committee selection and thresholds.
    pub committee: CommitteeConfig,
    /// Phase lengths.
    pub phases: PhaseLengths,
    /// At the end of this block the first view change (to view 1) starts.
    pub first_view_change: u64,
    /// Blocks from a view's first round to the start of the next view change.
    pub view_length: u64,
    /// Blocks to wait before trying again when a view change had to be abandoned.
    pub retry_delay: u64,
    /// Ceremonies per view change before it is abandoned (and retried after `retry_delay`).
    /// Configuration files written before the rename spell it `max_sessions_per_view`, which is
    /// still read.
    #[serde(alias = "max_sessions_per_view")]
    pub max_ceremonies_per_view: u32,
    /// Key mode of view changes after the first (which is always fresh).
    pub key_mode: KeyMode,
    /// Per-view exceptions to `key_mode` (none when left out).
    #[serde(default)]
    pub key_mode_overrides: Vec<ViewKeyMode>,
    /// Stake effect of faults.
    pub slashing: SlashingConfig,
    /// Stake withdrawal.
    #[serde(default)]
    pub staking: StakingConfig,
    /// Balances at genesis: the whole supply. Stake can only be locked from a balance, so a
    /// chain without genesis accounts has no stake and no committee.
    #[serde(default)]
    pub genesis: Vec<GenesisAccount>,
    /// The DKG the ceremonies run (default: ack-or-reveal on BLS12-381, sequential indices).
    #[serde(default)]
    pub dkg: DkgConfig,
    /// The random beacon of every view (default: `pedersen-bls-chained`, 3 s).
    #[serde(default)]
    pub beacon: BeaconConfig,
}

/// Invalid configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// The chain id is empty or longer than [`MAX_CHAIN_ID_LEN`] bytes.
    #[error("chain id must be 1 to {MAX_CHAIN_ID_LEN} bytes")]
    ChainId,
    /// Committee size bounds.
    #[error("committee sizes must satisfy 1 <= min_size <= max_size <= {MAX_PARTICIPANTS}")]
    CommitteeSize,
    /// A percentage above 100 (or a zero percentage threshold).
    #[error("{0} must be a percentage between 0 and 100 (1 and 100 for thresholds)")]
    Percent(&'static str),
    /// Lengths that must be at least one block.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// The thresholds are invalid for a committee size between `min_size` and `max_size`.
    #[error(
        "thresholds invalid for a committee of {n} (committees of min_size to max_size members can be selected): {source}"
    )]
    Params {
        /// The committee size.
        n: usize,
        /// Why.
        source: ParamsError,
    },
    /// A key-mode override for view 0 (views start at 1) or a second one for a view.
    #[error("key_mode_overrides: {0}")]
    KeyModeOverride(&'static str),
    /// A length, height or count above [`MAX_BLOCKS`] (its unit is the key's: blocks, views
    /// or ceremonies).
    #[error("{0} must be at most {MAX_BLOCKS}")]
    TooLong(&'static str),
    /// The first view cannot be a reshare.
    #[error("view 1 has no previous key to reshare")]
    ReshareFirstView,
    /// A beacon period above [`MAX_BEACON_PERIOD_SECS`].
    #[error("beacon.period_secs must be at most {MAX_BEACON_PERIOD_SECS} s, not {0}")]
    BeaconPeriod(u32),
    /// The DKG configuration cannot run.
    #[error("dkg: {0}")]
    Dkg(#[from] DkgConfigError),
    /// A genesis account is invalid, repeated, or the supply overflows.
    #[error("genesis account {index}: {problem}")]
    Genesis {
        /// Position in the list.
        index: usize,
        /// What is wrong.
        problem: &'static str,
    },
}

/// Largest phase length, view length, retry delay and first view change height.
pub const MAX_BLOCKS: u64 = 1 << 32;

/// Longest chain id.
pub const MAX_CHAIN_ID_LEN: usize = 64;

impl ContractConfig {
    /// A configuration with Züs-like defaults for a chain id: up to `max_size` members,
    /// `t` = 66%, `k` = 75%, 70% of seats kept for previous members, reshare every view after
    /// the first, 10% slashed for misbehaviour, nothing for absence.
    pub fn defaults(chain_id: &str, max_size: u32) -> Self {
        ContractConfig {
            chain_id: chain_id.to_string(),
            committee: CommitteeConfig {
                max_size,
                min_size: 1,
                threshold: Size::Percent(66),
                quorum: Size::Percent(75),
                keep_previous_percent: 70,
                min_stake: 1,
            },
            phases: PhaseLengths {
                contribute: 10,
                share: 10,
                publish: 10,
                wait: 10,
                close_early: true,
            },
            first_view_change: 1,
            view_length: 100,
            retry_delay: 10,
            max_ceremonies_per_view: 3,
            key_mode: KeyMode::Reshare,
            key_mode_overrides: Vec::new(),
            slashing: SlashingConfig {
                misbehaviour_percent: 10,
                absence_percent: 0,
                reporter_percent: 0,
            },
            staking: StakingConfig::default(),
            genesis: Vec::new(),
            dkg: DkgConfig::default(),
            beacon: BeaconConfig::default(),
        }
    }

    /// Adds a genesis account (builder style).
    pub fn fund(mut self, identity: &IdentityPublicKey, balance: u64) -> Self {
        self.genesis.push(GenesisAccount {
            identity: Hex(identity.to_bytes()),
            balance,
        });
        self
    }

    /// The total supply: the sum of the genesis balances (bounded by `u64::MAX` by
    /// [`validate`](Self::validate)).
    pub fn total_supply(&self) -> u128 {
        self.genesis.iter().map(|a| a.balance as u128).sum()
    }

    /// Checks every bound; the contract refuses to start with an invalid configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.chain_id.is_empty() || self.chain_id.len() > MAX_CHAIN_ID_LEN {
            return Err(ConfigError::ChainId);
        }
        let c = &self.committee;
        if c.min_size == 0 || c.min_size > c.max_size || c.max_size as usize > MAX_PARTICIPANTS {
            return Err(ConfigError::CommitteeSize);
        }
        for (name, size) in [("threshold", c.threshold), ("quorum", c.quorum)] {
            if let Size::Percent(p) = size
                && (p == 0 || p > 100)
            {
                return Err(ConfigError::Percent(name));
            }
        }
        for (name, p) in [
            ("keep_previous_percent", c.keep_previous_percent),
            (
                "slashing.misbehaviour_percent",
                self.slashing.misbehaviour_percent,
            ),
            ("slashing.absence_percent", self.slashing.absence_percent),
            ("slashing.reporter_percent", self.slashing.reporter_percent),
        ] {
            if p > 100 {
                return Err(ConfigError::Percent(name));
            }
        }
        for (name, v) in [
            ("phases.contribute", self.phases.contribute),
            ("phases.share", self.phases.share),
            ("phases.publish", self.phases.publish),
            ("phases.wait", self.phases.wait),
            ("view_length", self.view_length),
            ("retry_delay", self.retry_delay),
            (
                "max_ceremonies_per_view",
                self.max_ceremonies_per_view as u64,
            ),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(name));
            }
            // Bounded so that deadlines (height + lengths) can never overflow.
            if v > MAX_BLOCKS {
                return Err(ConfigError::TooLong(name));
            }
        }
        if self.first_view_change > MAX_BLOCKS {
            return Err(ConfigError::TooLong("first_view_change"));
        }
        if self.staking.unbonding_views > MAX_BLOCKS {
            return Err(ConfigError::TooLong("staking.unbonding_views"));
        }
        // Every amount is a part of the supply, so no sum of amounts can overflow a u64 once
        // the supply fits in one.
        let mut seen = std::collections::BTreeSet::new();
        let mut supply: u64 = 0;
        for (index, a) in self.genesis.iter().enumerate() {
            let problem = |problem| ConfigError::Genesis { index, problem };
            if IdentityPublicKey::from_bytes(&a.identity.0).is_err() {
                return Err(problem("not a valid identity key"));
            }
            if !seen.insert(a.identity) {
                return Err(problem("identity listed twice"));
            }
            if a.balance == 0 {
                return Err(problem("balance must be positive"));
            }
            supply = supply
                .checked_add(a.balance)
                .ok_or(problem("total supply exceeds 2^64 - 1"))?;
        }
        if self
            .key_mode_overrides
            .iter()
            .any(|o| o.view <= 1 && o.mode == KeyMode::Reshare)
        {
            return Err(ConfigError::ReshareFirstView);
        }
        let mut overridden = std::collections::BTreeSet::new();
        for o in &self.key_mode_overrides {
            if o.view == 0 {
                return Err(ConfigError::KeyModeOverride(
                    "view 0 has no view change (views start at 1)",
                ));
            }
            if !overridden.insert(o.view) {
                return Err(ConfigError::KeyModeOverride("a view is listed twice"));
            }
        }
        if c.min_stake == 0 {
            // A node that unbonded everything would still be eligible: a seat without stake.
            return Err(ConfigError::Zero("committee.min_stake"));
        }
        self.dkg.validate()?;
        self.beacon.validate()?;
        // Every committee size the selection may give must work: a threshold given as a count
        // above `min_size` would postpone every view change that seats fewer.
        for n in c.min_size as usize..=c.max_size as usize {
            self.params_for(n)
                .map_err(|source| ConfigError::Params { n, source })?;
        }
        Ok(())
    }

    /// `(n, t, k)` for a committee of `n`, validated by [`Params::new`].
    pub fn params_for(&self, n: usize) -> Result<Params, ParamsError> {
        Params::new(
            n,
            self.committee.threshold.resolve(n),
            self.committee.quorum.resolve(n),
        )
    }

    /// The key mode of the change to `view` (view 1 is always fresh).
    pub fn key_mode_for(&self, view: u64) -> KeyMode {
        if view <= 1 {
            return KeyMode::Fresh;
        }
        self.key_mode_overrides
            .iter()
            .rev()
            .find(|o| o.view == view)
            .map(|o| o.mode)
            .unwrap_or(self.key_mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyquorum_dkg::identity::IdentityKeypair;

    #[test]
    fn percentages_round_up_like_zus() {
        assert_eq!(Size::Percent(66).resolve(100), 66);
        assert_eq!(Size::Percent(75).resolve(6), 5);
        assert_eq!(Size::Percent(66).resolve(6), 4);
        assert_eq!(Size::Percent(1).resolve(1), 1);
        assert_eq!(Size::Count(7).resolve(3), 7);
    }

    #[test]
    fn validation() {
        let ok = ContractConfig::defaults("c", 10);
        assert_eq!(ok.validate(), Ok(()));
        let mut c = ok.clone();
        c.chain_id.clear();
        assert_eq!(c.validate(), Err(ConfigError::ChainId));
        let mut c = ok.clone();
        c.committee.min_size = 11;
        assert_eq!(c.validate(), Err(ConfigError::CommitteeSize));
        let mut c = ok.clone();
        c.committee.threshold = Size::Percent(0);
        assert_eq!(c.validate(), Err(ConfigError::Percent("threshold")));
        let mut c = ok.clone();
        c.slashing.absence_percent = 101;
        assert!(matches!(c.validate(), Err(ConfigError::Percent(_))));
        let mut c = ok.clone();
        c.phases.share = 0;
        assert_eq!(c.validate(), Err(ConfigError::Zero("phases.share")));
        let mut c = ok.clone();
        c.view_length = MAX_BLOCKS + 1;
        assert_eq!(c.validate(), Err(ConfigError::TooLong("view_length")));
        // A count of views is not said to be of blocks.
        let mut c = ok.clone();
        c.staking.unbonding_views = MAX_BLOCKS + 1;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            format!("staking.unbonding_views must be at most {MAX_BLOCKS}")
        );
        let mut c = ok.clone();
        c.committee.min_size = 10;
        c.committee.threshold = Size::Count(3);
        c.committee.quorum = Size::Count(3);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Params { n: 10, .. })
        ));
        // A count above the smallest committee that may be selected.
        let mut c = ContractConfig::defaults("c", 7);
        c.committee.min_size = 4;
        c.committee.threshold = Size::Count(5);
        c.committee.quorum = Size::Count(6);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Params { n: 4, .. })
        ));
        c.committee.min_size = 6;
        assert_eq!(c.validate(), Ok(()));
        let mut c = ok.clone();
        c.committee.min_stake = 0;
        assert_eq!(c.validate(), Err(ConfigError::Zero("committee.min_stake")));
        for overrides in [
            vec![(0, KeyMode::Fresh)],
            vec![(3, KeyMode::Fresh), (3, KeyMode::Reshare)],
        ] {
            let mut c = ok.clone();
            c.key_mode_overrides = overrides
                .into_iter()
                .map(|(view, mode)| ViewKeyMode { view, mode })
                .collect();
            assert!(matches!(c.validate(), Err(ConfigError::KeyModeOverride(_))));
        }
        let mut c = ok.clone();
        c.key_mode_overrides.push(ViewKeyMode {
            view: 1,
            mode: KeyMode::Reshare,
        });
        assert_eq!(c.validate(), Err(ConfigError::ReshareFirstView));
        let mut c = ok.clone();
        c.slashing.reporter_percent = 101;
        assert_eq!(
            c.validate(),
            Err(ConfigError::Percent("slashing.reporter_percent"))
        );
    }

    /// The configuration is fixed at genesis, so a misspelt key must not pass as a default.
    #[test]
    fn an_unknown_key_at_any_depth_is_refused() {
        let ok = serde_json::to_value(ContractConfig::defaults("c", 10)).unwrap();
        assert!(serde_json::from_value::<ContractConfig>(ok.clone()).is_ok());
        for (table, key) in [
            (None, "retry_dealy"),
            (Some("phases"), "close_earl"),
            (Some("committee"), "max_sise"),
            (Some("slashing"), "reporter_percnt"),
            (Some("staking"), "unbonding"),
            (Some("dkg"), "signing-key"),
            (Some("beacon"), "period"),
        ] {
            let mut v = ok.clone();
            let object = match table {
                None => v.as_object_mut().unwrap(),
                Some(t) => v[t].as_object_mut().unwrap(),
            };
            object.insert(key.into(), serde_json::json!(1));
            let err = serde_json::from_value::<ContractConfig>(v).unwrap_err();
            assert!(err.to_string().contains("unknown field"), "{key}: {err}");
        }
        // The old spelling of `max_ceremonies_per_view` is still read.
        let mut v = ok.clone();
        let object = v.as_object_mut().unwrap();
        let value = object.remove("max_ceremonies_per_view").unwrap();
        object.insert("max_sessions_per_view".into(), value);
        assert!(serde_json::from_value::<ContractConfig>(v).is_ok());
    }

    #[test]
    fn dkg_settings_parse_and_unworkable_ones_are_refused_by_name() {
        let ok = ContractConfig::defaults("c", 10);
        assert_eq!(ok.dkg, DkgConfig::default());
        // A file written before the setting existed runs ack-or-reveal.
        let mut v = serde_json::to_value(&ok).unwrap();
        v.as_object_mut().unwrap().remove("dkg");
        let old: ContractConfig = serde_json::from_value(v).unwrap();
        assert_eq!(old.dkg.variant, DkgVariant::AckReveal);
        let complaint: DkgConfig = serde_json::from_str(r#"{"variant":"complaint"}"#).unwrap();
        assert_eq!(complaint.variant, DkgVariant::Complaint);
        assert_eq!(complaint.curve, DkgCurve::Bls12381);
        assert_eq!(complaint.indices, DkgIndices::Sequential);
        let c = ContractConfig {
            dkg: complaint,
            ..ok.clone()
        };
        assert_eq!(c.validate(), Ok(()));
        let secp: DkgConfig =
            serde_json::from_str(r#"{"variant":"complaint","curve":"secp256k1"}"#).unwrap();
        let c = ContractConfig {
            dkg: secp,
            ..ok.clone()
        };
        assert_eq!(
            c.validate(),
            Err(ConfigError::Dkg(DkgConfigError::CurveCannotSignMagicBlocks))
        );
        let hashed: DkgConfig =
            serde_json::from_str(r#"{"variant":"complaint","indices":"key-hash"}"#).unwrap();
        let c = ContractConfig {
            dkg: hashed,
            ..ok.clone()
        };
        assert_eq!(
            c.validate(),
            Err(ConfigError::Dkg(DkgConfigError::IndicesNotPositions))
        );
        assert!(serde_json::from_str::<DkgConfig>(r#"{"variant":"frost"}"#).is_err());
    }

    #[test]
    fn the_signing_key_runs_only_as_complaint_on_secp256k1_with_key_hash_indices() {
        let ok = ContractConfig::defaults("c", 10);
        let with = |json: &str| ContractConfig {
            dkg: serde_json::from_str(json).unwrap(),
            ..ok.clone()
        };
        let c = with(
            r#"{"signing_key":{"variant":"complaint","curve":"secp256k1","indices":"key-hash"}}"#,
        );
        assert_eq!(c.dkg.signing_key, Some(SigningKeyConfig::SECP256K1_FROST));
        assert_eq!(c.validate(), Ok(()));
        // The lifetime: absent reads as a key per view; "chain" reshares it.
        let reshared = with(
            r#"{"signing_key":{"variant":"complaint","curve":"secp256k1","indices":"key-hash","lifetime":"chain"}}"#,
        );
        assert_eq!(
            reshared.dkg.signing_key,
            Some(SigningKeyConfig::SECP256K1_FROST_RESHARED)
        );
        assert_eq!(reshared.validate(), Ok(()));
        let bad = serde_json::from_str::<SigningKeyConfig>(
            r#"{"variant":"complaint","curve":"secp256k1","indices":"key-hash","lifetime":"epoch"}"#,
        );
        assert!(bad.is_err());
        for (json, refusal) in [
            (
                r#"{"signing_key":{"variant":"ack-reveal","curve":"secp256k1","indices":"key-hash"}}"#,
                DkgConfigError::SigningKeyVariant,
            ),
            (
                r#"{"signing_key":{"variant":"complaint","curve":"bls12-381","indices":"key-hash"}}"#,
                DkgConfigError::SigningKeyCurve,
            ),
            (
                r#"{"signing_key":{"variant":"complaint","curve":"secp256k1","indices":"sequential"}}"#,
                DkgConfigError::SigningKeyIndices,
            ),
        ] {
            assert_eq!(with(json).validate(), Err(ConfigError::Dkg(refusal)));
        }
        // The view's own key stays on BLS12-381 with positional indices.
        let secp_view = with(
            r#"{"curve":"secp256k1","signing_key":{"variant":"complaint","curve":"secp256k1","indices":"key-hash"}}"#,
        );
        assert_eq!(
            secp_view.validate(),
            Err(ConfigError::Dkg(DkgConfigError::CurveCannotSignMagicBlocks))
        );
    }

    #[test]
    fn genesis_accounts_are_checked() {
        let key = |i: u8| IdentityKeypair::from_seed(&[i; 32]).unwrap();
        let ok = ContractConfig::defaults("c", 4)
            .fund(key(1).public(), 10)
            .fund(key(2).public(), u64::MAX - 10);
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.total_supply(), u64::MAX as u128);
        let over = ok.clone().fund(key(3).public(), 1);
        assert_eq!(
            over.validate(),
            Err(ConfigError::Genesis {
                index: 2,
                problem: "total supply exceeds 2^64 - 1"
            })
        );
        let twice = ContractConfig::defaults("c", 4)
            .fund(key(1).public(), 1)
            .fund(key(1).public(), 1);
        assert!(matches!(
            twice.validate(),
            Err(ConfigError::Genesis { index: 1, .. })
        ));
        let zero = ContractConfig::defaults("c", 4).fund(key(1).public(), 0);
        assert!(matches!(zero.validate(), Err(ConfigError::Genesis { .. })));
        let mut bad = ContractConfig::defaults("c", 4).fund(key(1).public(), 1);
        bad.genesis[0].identity = Hex([0; 96]);
        assert!(matches!(bad.validate(), Err(ConfigError::Genesis { .. })));
    }

    #[test]
    fn configurations_without_the_new_sections_still_parse() {
        let mut j = serde_json::to_value(ContractConfig::defaults("c", 4)).unwrap();
        let o = j.as_object_mut().unwrap();
        o.remove("staking");
        o.remove("genesis");
        o.remove("beacon");
        o.remove("key_mode_overrides");
        o["slashing"]
            .as_object_mut()
            .unwrap()
            .remove("reporter_percent");
        let c: ContractConfig = serde_json::from_value(j).unwrap();
        assert_eq!(c, ContractConfig::defaults("c", 4));
    }

    #[test]
    fn the_ceremony_limit_is_written_under_its_name_and_read_under_both() {
        let mut j = serde_json::to_value(ContractConfig::defaults("c", 4)).unwrap();
        let o = j.as_object_mut().unwrap();
        let limit = o
            .remove("max_ceremonies_per_view")
            .expect("written as max_ceremonies_per_view");
        assert_eq!(limit, 3);
        o.insert("max_sessions_per_view".into(), 5.into());
        let c: ContractConfig = serde_json::from_value(j).unwrap();
        assert_eq!(c.max_ceremonies_per_view, 5);
    }

    #[test]
    fn key_mode_per_view() {
        let mut c = ContractConfig::defaults("c", 4);
        c.key_mode_overrides.push(ViewKeyMode {
            view: 3,
            mode: KeyMode::Fresh,
        });
        assert_eq!(c.key_mode_for(1), KeyMode::Fresh);
        assert_eq!(c.key_mode_for(2), KeyMode::Reshare);
        assert_eq!(c.key_mode_for(3), KeyMode::Fresh);
        assert_eq!(c.key_mode_for(4), KeyMode::Reshare);
    }

    #[test]
    fn the_beacon_period_is_bounded_and_zero_is_refused() {
        let mut c = ContractConfig::defaults("c", 4);
        assert_eq!(c.beacon.scheme, BeaconScheme::PedersenBlsChained);
        assert_eq!(c.beacon.period_secs, 3);
        for ok in [1, 2, MAX_BEACON_PERIOD_SECS] {
            c.beacon.period_secs = ok;
            assert_eq!(c.validate(), Ok(()));
        }
        c.beacon.period_secs = 0;
        assert_eq!(c.validate(), Err(ConfigError::Zero("beacon.period_secs")));
        c.beacon.period_secs = MAX_BEACON_PERIOD_SECS + 1;
        assert_eq!(
            c.validate(),
            Err(ConfigError::BeaconPeriod(MAX_BEACON_PERIOD_SECS + 1))
        );
    }

    #[test]
    fn the_beacon_is_written_with_drands_scheme_ids() {
        let j = serde_json::json!({"scheme": "pedersen-bls-unchained", "period_secs": 2});
        let b: BeaconConfig = serde_json::from_value(j.clone()).unwrap();
        assert_eq!(
            b,
            BeaconConfig {
                scheme: BeaconScheme::PedersenBlsUnchained,
                period_secs: 2
            }
        );
        assert_eq!(serde_json::to_value(b).unwrap(), j);
        for s in BeaconScheme::ALL {
            assert_eq!(BeaconScheme::from_name(s.as_str()), Some(s));
        }
        assert!(
            serde_json::from_value::<BeaconConfig>(serde_json::json!({"scheme": "bls"})).is_err()
        );
    }

    #[test]
    fn a_reshare_keeps_the_previous_views_beacon() {
        let old = BeaconConfig::default();
        let new = BeaconConfig {
            scheme: BeaconScheme::PedersenBlsUnchained,
            period_secs: 1,
        };
        assert_eq!(
            BeaconConfig::for_view(KeyMode::Reshare, new, Some(old)),
            old
        );
        assert_eq!(BeaconConfig::for_view(KeyMode::Fresh, new, Some(old)), new);
        assert_eq!(BeaconConfig::for_view(KeyMode::Fresh, new, None), new);
    }

    #[test]
    fn config_json_roundtrip() {
        let c = ContractConfig::defaults("chain", 10);
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<ContractConfig>(&j).unwrap(), c);
    }
}
