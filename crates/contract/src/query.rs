//! Read-only queries for the chain's HTTP API, as JSON values.
//!
//! Paths (what [`Contract::query`] routes):
//! - `status`: height, view, phase, phase deadline, the view change in progress;
//! - `views/current`: the active view with its committee (stakes and network identities) and
//!   the view change in progress with its committee: the list that nodes outside the committee
//!   fetch (seed 000, Start);
//! - `views/{v}`: a completed view, or the one being created;
//! - `views/{v}/magic-block`: its (signed) magic block; for the view being created, the block
//!   with the signatures collected so far;
//! - `nodes`, `nodes/{identity hex}`: the registry;
//! - `accounts`: every account that holds something (free balance, stake, unbonding);
//! - `accounts/{identity hex}`: one account (all zero for an unknown key) with its next nonce;
//! - `supply`: where the genesis supply is (balances, stake, unbonding, burned);
//! - `slashings`, `slashings/{identity hex}`: recorded faults;
//! - `named`, `named/{identity hex}`: participants named without a penalty;
//! - `config`: the configuration.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::contract::Contract;
use crate::hex;
use crate::magic::MagicBlock;
use crate::state::{IdentityKey, ViewChange, ViewRecord};

impl Contract {
    /// Routes a query path (see the module docs); `None` is "not found".
    pub fn query(&self, path: &str) -> Option<Value> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            ["status"] => Some(self.query_status()),
            ["views", "current"] => Some(self.query_current_view()),
            ["views", v] => self.query_view(v.parse().ok()?),
            ["views", v, "magic-block"] => self.query_magic_block(v.parse().ok()?),
            ["nodes"] => {
                Some(serde_json::to_value(self.state().nodes.values().collect::<Vec<_>>()).ok()?)
            }
            ["nodes", id] => {
                let key = parse_identity(id)?;
                serde_json::to_value(self.state().nodes.get(&key)?).ok()
            }
            ["accounts"] => {
                let s = self.state();
                let ids: BTreeSet<&IdentityKey> = s
                    .balances
                    .keys()
                    .chain(s.nodes.keys())
                    .chain(s.unbonding.keys())
                    .collect();
                Some(Value::Array(
                    ids.into_iter().map(|id| self.account_json(id)).collect(),
                ))
            }
            ["accounts", id] => Some(self.account_json(&parse_identity(id)?)),
            ["supply"] => {
                // Every part is at most the genesis supply, which a valid configuration keeps
                // within a u64.
                let n = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
                let supply = self.state().supply();
                Some(json!({
                    "genesis": n(self.config().total_supply()),
                    "balances": n(supply.balances),
                    "staked": n(supply.staked),
                    "unbonding": n(supply.unbonding),
                    "burned": n(supply.burned),
                }))
            }
            ["slashings"] => serde_json::to_value(&self.state().slashings).ok(),
            ["slashings", id] => {
                let key = parse_identity(id)?;
                let records: Vec<_> = self
                    .state()
                    .slashings
                    .iter()
                    .filter(|r| r.identity == key)
                    .collect();
                serde_json::to_value(records).ok()
            }
            ["named"] => serde_json::to_value(&self.state().named).ok(),
            ["named", id] => {
                let key = parse_identity(id)?;
                let records: Vec<_> = self
                    .state()
                    .named
                    .iter()
                    .filter(|r| r.identity == key)
                    .collect();
                serde_json::to_value(records).ok()
            }
            ["config"] => serde_json::to_value(self.config()).ok(),
            _ => None,
        }
    }

    /// `status`.
    pub fn query_status(&self) -> Value {
        let s = self.state();
        let change = s.change.as_ref();
        json!({
            "chain_id": self.config().chain_id,
            "height": s.last_block,
            "view": s.current_view,
            "phase": s.phase(),
            "phase_deadline": change.map(|c| c.deadline),
            "pending_view": change.map(|c| c.view),
            "session": change.map(|c| c.ceremony_number),
            "attempt": change.map(|c| c.attempt),
            "next_view_change": if change.is_none() { Some(s.next_start) } else { None },
            "registered_nodes": s.nodes.len(),
            "burned": s.burned,
        })
    }

    /// `views/current`.
    pub fn query_current_view(&self) -> Value {
        let s = self.state();
        let mut v = match s.views.get(&s.current_view) {
            Some(r) => self.view_json(r),
            None => json!({ "view": 0, "committee": [] }),
        };
        v["phase"] = json!(s.phase());
        v["phase_deadline"] = json!(s.change.as_ref().map(|c| c.deadline));
        v["next_view_change"] = json!(if s.change.is_none() {
            Some(s.next_start)
        } else {
            None
        });
        v["pending"] = s
            .change
            .as_ref()
            .map(|c| self.change_json(c))
            .unwrap_or(Value::Null);
        v
    }

    /// `views/{v}`.
    pub fn query_view(&self, view: u64) -> Option<Value> {
        let s = self.state();
        if let Some(r) = s.views.get(&view) {
            return Some(self.view_json(r));
        }
        s.change
            .as_ref()
            .filter(|c| c.view == view)
            .map(|c| self.change_json(c))
    }

    /// `views/{v}/magic-block`.
    pub fn query_magic_block(&self, view: u64) -> Option<Value> {
        let s = self.state();
        if let Some(r) = s.views.get(&view) {
            return serde_json::to_value(&r.magic_block).ok();
        }
        let pending = s
            .change
            .as_ref()
            .filter(|c| c.view == view)?
            .magic
            .as_ref()?;
        serde_json::to_value(&pending.signed).ok()
    }

    /// One account: free balance, locked stake, unbonding amounts and next nonce.
    fn account_json(&self, id: &IdentityKey) -> Value {
        let s = self.state();
        json!({
            "identity": id,
            "balance": s.balance(id),
            "stake": s.nodes.get(id).map(|n| n.stake).unwrap_or(0),
            "registered": s.nodes.contains_key(id),
            "unbonding": s.unbonding.get(id).cloned().unwrap_or_default(),
            "nonce": s.nonces.get(id).copied().unwrap_or(0),
        })
    }

    fn members_json(&self, block: &MagicBlock) -> Value {
        let members: Vec<Value> = block
            .members
            .iter()
            .map(|m| {
                json!({
                    "index": m.index,
                    "identity": m.identity,
                    "stake": self.state().nodes.get(&m.identity).map(|n| n.stake).unwrap_or(0),
                    "peer_id": m.peer_id,
                    "addresses": m.addresses,
                    "public_share": m.public_share,
                })
            })
            .collect();
        Value::Array(members)
    }

    fn view_json(&self, r: &ViewRecord) -> Value {
        let b = &r.magic_block.block;
        json!({
            "view": r.view,
            "status": "active_or_past",
            "key_mode": b.key_mode,
            "first_round": b.first_round,
            "n": b.n,
            "t": b.t,
            "k": b.k,
            "group_key": b.group_key,
            "magic_block_hash": r.magic_block.hash,
            "seed": r.seed,
            "committee": self.members_json(b),
        })
    }

    fn change_json(&self, c: &ViewChange) -> Value {
        let committee: Vec<IdentityKey> = c.spec.players.iter().map(|p| p.identity).collect();
        json!({
            "view": c.view,
            "status": "in_progress",
            "session": c.ceremony_number,
            "attempt": c.attempt,
            "key_mode": c.key_mode,
            "phase": c.phase,
            "phase_deadline": c.deadline,
            "session_id": c.session_id,
            "n": c.spec.n,
            "t": c.spec.t,
            "k": c.spec.k,
            "committee": self.committee_entries(&committee),
            "dealers": c.spec.reshare.as_ref().map(|r| r.dealers.iter().map(|d| d.identity).collect::<Vec<_>>()),
            "banned": c.banned,
            "magic_block_hash": c.magic.as_ref().map(|m| m.signed.hash),
        })
    }
}

fn parse_identity(s: &str) -> Option<IdentityKey> {
    hex::decode(s).and_then(|b| crate::hex::Hex::from_slice(&b))
}
