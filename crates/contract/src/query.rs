//! Read-only queries for the chain's HTTP API: typed answers, serialised to JSON by
//! [`Contract::query`] and decoded by readers with the same types (a node, the CLI, tests).
//!
//! Paths (what [`Contract::query`] routes), with their answer types:
//! - `status` ([`ContractStatus`]): height, view, phase, phase deadline, the view change in progress;
//! - `views/current` ([`CurrentView`]): the active view with its committee (stakes and network identities) and
//!   the view change in progress with its committee: the list that nodes outside the committee
//!   fetch (seed 000, Start);
//! - `views/{v}` ([`ViewAnswer`]): a completed view, or the one being created;
//! - `views/{v}/magic-block` ([`SignedMagicBlock`]): its (signed) magic block; for the view being created, the block
//!   with the signatures collected so far;
//! - `nodes`, `nodes/{identity hex}`: the registry;
//! - `accounts` ([`Account`]s): every account that holds something (free balance, stake, unbonding);
//! - `accounts/{identity hex}` ([`Account`]): one account (all zero for an unknown key) with its next nonce;
//! - `supply` ([`SupplyAnswer`]): where the genesis supply is (balances, stake, unbonding, burned);
//! - `slashings`, `slashings/{identity hex}`: recorded faults;
//! - `named`, `named/{identity hex}`: participants named without a penalty;
//! - `config`: the configuration.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{BeaconConfig, KeyMode};
use crate::contract::Contract;
use crate::events::CommitteeEntry;
use crate::hex::{self, Bytes, Hex};
use crate::magic::{MagicBlock, SignedMagicBlock};
use crate::state::{IdentityKey, Unbonding, ViewChange, ViewChangePhase, ViewRecord};

/// `status`: where the contract is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractStatus {
    /// The chain id every transaction signature binds.
    pub chain_id: String,
    /// The last block the contract saw (`None` before the first).
    pub height: Option<u64>,
    /// The active view.
    pub view: u64,
    /// The phase of the view change in progress (`idle` between view changes).
    pub phase: ViewChangePhase,
    /// Last block of the phase.
    pub phase_deadline: Option<u64>,
    /// The view being created.
    pub pending_view: Option<u64>,
    /// Its session number.
    pub session: Option<u32>,
    /// Its board attempt.
    pub attempt: Option<u32>,
    /// When no view change runs: the height at which the next one starts.
    pub next_view_change: Option<u64>,
    /// Registered nodes.
    pub registered_nodes: u64,
    /// Burned by slashing so far.
    pub burned: u64,
    /// The configured beacon: what a fresh key's view runs (a reshare keeps its view's).
    #[serde(default)]
    pub beacon: BeaconConfig,
}

/// A member of an active or past view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewMember {
    /// Share index (1-based).
    pub index: u64,
    /// Identity key.
    pub identity: IdentityKey,
    /// Current stake (0 once it left).
    pub stake: u64,
    /// libp2p peer id.
    pub peer_id: Bytes,
    /// Network addresses.
    pub addresses: Vec<String>,
    /// Public key share (compressed G1).
    pub public_share: Hex<48>,
}

/// A view that was activated: its magic block's parameters and committee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveView {
    /// The view.
    pub view: u64,
    /// Fresh key or reshare.
    pub key_mode: KeyMode,
    /// The first block of the view: its activation height. The signed magic block's
    /// `first_round` is the latest it could have been (its wait deadline + 1); a view whose
    /// phases closed early starts before it.
    pub first_round: u64,
    /// The random beacon it runs.
    #[serde(default)]
    pub beacon: BeaconConfig,
    /// Committee size.
    pub n: u32,
    /// Threshold.
    pub t: u32,
    /// Qualification threshold.
    pub k: u32,
    /// The group key (compressed G1).
    pub group_key: Hex<48>,
    /// Its magic block's hash.
    pub magic_block_hash: Hex<32>,
    /// The seed its committee was chosen with.
    pub seed: Hex<32>,
    /// The members, in index order.
    pub committee: Vec<ViewMember>,
}

/// The view change in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewChangeInProgress {
    /// The view being created.
    pub view: u64,
    /// Session number.
    pub session: u32,
    /// Board attempt.
    pub attempt: u32,
    /// Fresh key or reshare.
    pub key_mode: KeyMode,
    /// The phase.
    pub phase: ViewChangePhase,
    /// Last block of the phase.
    pub phase_deadline: u64,
    /// The session id the ceremony's messages bind.
    pub session_id: Hex<32>,
    /// Committee size.
    pub n: u32,
    /// Threshold.
    pub t: u32,
    /// Qualification threshold.
    pub k: u32,
    /// The committee, with stakes and network identities.
    pub committee: Vec<CommitteeEntry>,
    /// For a reshare: the previous committee's dealers.
    pub dealers: Option<Vec<IdentityKey>>,
    /// Excluded from this view change.
    pub banned: BTreeSet<IdentityKey>,
    /// The magic block being signed, once there is one.
    pub magic_block_hash: Option<Hex<32>>,
}

/// `views/{v}`: an active or past view, or the one being created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ViewAnswer {
    /// Activated (the current view or an earlier one).
    ActiveOrPast(ActiveView),
    /// Being created.
    InProgress(ViewChangeInProgress),
}

/// `views/current`: the active view (none before the first) and the view change in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentView {
    /// The active view's number (0 before the first).
    pub view: u64,
    /// The phase (`idle` between view changes).
    pub phase: ViewChangePhase,
    /// Last block of the phase.
    pub phase_deadline: Option<u64>,
    /// When no view change runs: the height at which the next one starts.
    pub next_view_change: Option<u64>,
    /// The active view.
    pub active: Option<ActiveView>,
    /// The view change in progress.
    pub pending: Option<ViewChangeInProgress>,
}

/// `accounts/{identity}`: what one key holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The key.
    pub identity: IdentityKey,
    /// Free balance.
    pub balance: u64,
    /// Locked stake.
    pub stake: u64,
    /// Registered as a node.
    pub registered: bool,
    /// Registered and leaving: it asked to deregister while its stake was locked, is no
    /// longer selected, and is deregistered once the stake is free.
    #[serde(default)]
    pub leaving: bool,
    /// Stake on its way back.
    pub unbonding: Vec<Unbonding>,
    /// The nonce its next transaction must carry.
    pub nonce: u64,
}

/// `supply`: where the genesis supply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupplyAnswer {
    /// The genesis supply.
    pub genesis: u64,
    /// Free balances.
    pub balances: u64,
    /// Locked stake.
    pub staked: u64,
    /// Unbonding.
    pub unbonding: u64,
    /// Burned by slashing.
    pub burned: u64,
}

fn json<T: Serialize>(answer: T) -> Option<Value> {
    serde_json::to_value(answer).ok()
}

impl Contract {
    /// Routes a query path (see the module docs) and serialises the answer; `None` is "not
    /// found".
    pub fn query(&self, path: &str) -> Option<Value> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            ["status"] => json(self.query_status()),
            ["views", "current"] => json(self.query_current_view()),
            ["views", v] => json(self.query_view(v.parse().ok()?)?),
            ["views", v, "magic-block"] => json(self.query_magic_block(v.parse().ok()?)?),
            ["nodes"] => json(self.state().nodes.values().collect::<Vec<_>>()),
            ["nodes", id] => json(self.state().nodes.get(&parse_identity(id)?)?),
            ["accounts"] => {
                let s = self.state();
                let ids: BTreeSet<&IdentityKey> = s
                    .balances
                    .keys()
                    .chain(s.nodes.keys())
                    .chain(s.unbonding.keys())
                    .collect();
                json(
                    ids.into_iter()
                        .map(|id| self.account(id))
                        .collect::<Vec<_>>(),
                )
            }
            ["accounts", id] => json(self.account(&parse_identity(id)?)),
            ["supply"] => json(self.query_supply()),
            ["slashings"] => json(&self.state().slashings),
            ["slashings", id] => {
                let key = parse_identity(id)?;
                let records: Vec<_> = self
                    .state()
                    .slashings
                    .iter()
                    .filter(|r| r.identity == key)
                    .collect();
                json(records)
            }
            ["named"] => json(&self.state().named),
            ["named", id] => {
                let key = parse_identity(id)?;
                let records: Vec<_> = self
                    .state()
                    .named
                    .iter()
                    .filter(|r| r.identity == key)
                    .collect();
                json(records)
            }
            ["config"] => json(self.config()),
            _ => None,
        }
    }

    /// `status`.
    pub fn query_status(&self) -> ContractStatus {
        let s = self.state();
        let change = s.change.as_ref();
        ContractStatus {
            chain_id: self.config().chain_id.clone(),
            height: s.last_block,
            view: s.current_view,
            phase: s.phase(),
            phase_deadline: change.map(|c| c.deadline),
            pending_view: change.map(|c| c.view),
            session: change.map(|c| c.ceremony_number),
            attempt: change.map(|c| c.attempt),
            next_view_change: change.is_none().then_some(s.next_start),
            registered_nodes: s.nodes.len() as u64,
            burned: s.burned,
            beacon: self.config().beacon,
        }
    }

    /// `views/current`.
    pub fn query_current_view(&self) -> CurrentView {
        let s = self.state();
        CurrentView {
            view: s.current_view,
            phase: s.phase(),
            phase_deadline: s.change.as_ref().map(|c| c.deadline),
            next_view_change: s.change.is_none().then_some(s.next_start),
            active: s.views.get(&s.current_view).map(|r| self.active_view(r)),
            pending: s.change.as_ref().map(|c| self.in_progress(c)),
        }
    }

    /// `views/{v}`.
    pub fn query_view(&self, view: u64) -> Option<ViewAnswer> {
        let s = self.state();
        if let Some(r) = s.views.get(&view) {
            return Some(ViewAnswer::ActiveOrPast(self.active_view(r)));
        }
        s.change
            .as_ref()
            .filter(|c| c.view == view)
            .map(|c| ViewAnswer::InProgress(self.in_progress(c)))
    }

    /// `views/{v}/magic-block`.
    pub fn query_magic_block(&self, view: u64) -> Option<SignedMagicBlock> {
        let s = self.state();
        if let Some(r) = s.views.get(&view) {
            return Some(r.magic_block.clone());
        }
        let pending = s
            .change
            .as_ref()
            .filter(|c| c.view == view)?
            .magic
            .as_ref()?;
        Some(pending.signed.clone())
    }

    /// `supply`.
    pub fn query_supply(&self) -> SupplyAnswer {
        // Every part is at most the genesis supply, which a valid configuration keeps within
        // a u64.
        let n = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
        let supply = self.state().supply();
        SupplyAnswer {
            genesis: n(self.config().total_supply()),
            balances: n(supply.balances),
            staked: n(supply.staked),
            unbonding: n(supply.unbonding),
            burned: n(supply.burned),
        }
    }

    /// `accounts/{identity}`: free balance, locked stake, unbonding amounts and next nonce.
    pub fn account(&self, id: &IdentityKey) -> Account {
        let s = self.state();
        Account {
            identity: *id,
            balance: s.balance(id),
            stake: s.nodes.get(id).map(|n| n.stake).unwrap_or(0),
            registered: s.nodes.contains_key(id),
            leaving: s.nodes.get(id).is_some_and(|n| n.leaving),
            unbonding: s.unbonding.get(id).cloned().unwrap_or_default(),
            nonce: s.nonces.get(id).copied().unwrap_or(0),
        }
    }

    fn members(&self, block: &MagicBlock) -> Vec<ViewMember> {
        let nodes = &self.state().nodes;
        block
            .members
            .iter()
            .map(|m| ViewMember {
                index: m.index,
                identity: m.identity,
                stake: nodes.get(&m.identity).map(|n| n.stake).unwrap_or(0),
                peer_id: m.peer_id.clone(),
                addresses: m.addresses.clone(),
                public_share: m.public_share,
            })
            .collect()
    }

    fn active_view(&self, r: &ViewRecord) -> ActiveView {
        let b = &r.magic_block.block;
        ActiveView {
            view: r.view,
            key_mode: b.key_mode,
            first_round: r.activated_at,
            beacon: b.beacon,
            n: b.n,
            t: b.t,
            k: b.k,
            group_key: b.group_key,
            magic_block_hash: r.magic_block.hash,
            seed: r.seed,
            committee: self.members(b),
        }
    }

    fn in_progress(&self, c: &ViewChange) -> ViewChangeInProgress {
        let committee: Vec<IdentityKey> = c.spec.players.iter().map(|p| p.identity).collect();
        ViewChangeInProgress {
            view: c.view,
            session: c.ceremony_number,
            attempt: c.attempt,
            key_mode: c.key_mode,
            phase: c.phase,
            phase_deadline: c.deadline,
            session_id: c.session_id,
            n: c.spec.n,
            t: c.spec.t,
            k: c.spec.k,
            committee: self.committee_entries(&committee),
            dealers: c
                .spec
                .reshare
                .as_ref()
                .map(|r| r.dealers.iter().map(|d| d.identity).collect()),
            banned: c.banned.clone(),
            magic_block_hash: c.magic.as_ref().map(|m| m.signed.hash),
        }
    }
}

fn parse_identity(s: &str) -> Option<IdentityKey> {
    hex::decode(s).and_then(|b| Hex::from_slice(&b))
}
