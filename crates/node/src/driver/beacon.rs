//! The beacon of each view: when a view is activated, the driver fixes the chain it signs on
//! from the view's magic block and the activation block, durably with the rest of the state,
//! and tells the runtime to run it ([`Effect::StartBeacon`]). The rounds themselves are the
//! runtime's ([`crate::beacon`]): this file only decides which chain and which group.
//!
//! # Scheme, genesis time and period
//! All follow from data every node sees identically, so no node needs anyone's word for
//! them: the scheme and the period are the magic block's (the chain's configuration for a fresh
//! key, the previous view's for a reshare, checked by every signer before it signed the block),
//! and a new chain's genesis (round 1) is
//! the activation block's production time rounded up to the next whole second, plus one
//! period, so that every node has followed the activation block before round 1 starts. The
//! block time is hashed into the block, so the rule is as deterministic as the chain.
//! A reshare continues the previous chain (same genesis, period and chain hash); a fresh key
//! starts a new chain linked to the previous one ([`ChainInfo::for_view`]).
//!
//! # Ended chains
//! A fresh key ends the previous chain. The view's record names the chains ended so far
//! (the [`MAX_ENDED_CHAINS`] latest, [`ended_chains`]) with their committees and the last
//! round each can have: the round in progress on it when the new chain's round 1 starts, since
//! by then the old committee has followed the activation and stopped signing it. A node that
//! followed the view changes without running those chains (one that joined later and followed
//! the chain's history) fetches their rounds from those committees up to that bound.

use keyquorum_beacon::info::DEFAULT_BEACON_ID;
use keyquorum_beacon::{ChainInfo, SchemeId};
use keyquorum_contract::BeaconScheme;

use super::*;
use crate::store::{BeaconMemberRecord, BeaconViewRecord, EndedChainRecord};

/// Most ended chains a view's record names (the latest ones).
pub const MAX_ENDED_CHAINS: usize = 8;

/// The ended chains the record of a view signing on `info` names, `previous` being the
/// record of the view before it (see the module docs): the previous record's, plus its chain
/// when `info` is another chain.
pub fn ended_chains(
    previous: Option<&BeaconViewRecord>,
    info: &ChainInfo,
) -> Vec<EndedChainRecord> {
    let Some(previous) = previous else {
        return Vec::new();
    };
    let mut ended = previous.ended.clone();
    let Ok(old) = ChainInfo::from_json(previous.chain_info.as_bytes()) else {
        return ended;
    };
    if old.hash() != info.hash() && !ended.iter().any(|e| e.chain_info == previous.chain_info) {
        ended.push(EndedChainRecord {
            chain_info: previous.chain_info.clone(),
            last_round: old.current_round(info.genesis_time()),
            committee: previous
                .members
                .iter()
                .map(|m| m.identity.clone())
                .collect(),
        });
    }
    let excess = ended.len().saturating_sub(MAX_ENDED_CHAINS);
    ended.drain(..excess);
    ended
}

/// The genesis time of a chain started by a view activated in a block produced at
/// `activation_time_ms` (see the module docs).
pub fn beacon_genesis_time(activation_time_ms: u64, period_secs: u32) -> i64 {
    let secs = activation_time_ms.div_ceil(1000);
    i64::try_from(secs)
        .unwrap_or(i64::MAX)
        .saturating_add(i64::from(period_secs))
}

/// drand's scheme for a magic block's beacon scheme.
pub fn scheme_id(scheme: BeaconScheme) -> SchemeId {
    match scheme {
        BeaconScheme::PedersenBlsChained => SchemeId::PedersenBlsChained,
        BeaconScheme::PedersenBlsUnchained => SchemeId::PedersenBlsUnchained,
    }
}

impl Driver {
    /// The beacon of the view just activated, from its magic block (`None` when this node did
    /// not record the block, e.g. one it refused): its chain, continuing or following the
    /// previous view's, its group and this node's seat.
    pub(super) fn beacon_for_view(
        &self,
        view: u64,
        hash: &[u8; 32],
        block: Option<&MagicBlock>,
        own_index: Option<u64>,
    ) -> Option<BeaconViewRecord> {
        let block = block?;
        let previous_record = self.state.beacon.as_ref();
        let previous =
            previous_record.and_then(|b| ChainInfo::from_json(b.chain_info.as_bytes()).ok());
        let period = block.beacon.period_secs;
        let info = match ChainInfo::for_view(
            previous.as_ref(),
            scheme_id(block.beacon.scheme),
            &block.group_key.0,
            *hash,
            beacon_genesis_time(self.block_time_ms, period),
            period,
            DEFAULT_BEACON_ID,
        ) {
            Ok(info) => info,
            Err(e) => {
                warn!(view, error = %e, "no beacon chain for this view");
                return None;
            }
        };
        let ended = ended_chains(previous_record, &info);
        Some(BeaconViewRecord {
            view,
            ended,
            magic_block_hash: hex::encode(hash),
            chain_info: info.to_json(),
            threshold: block.t,
            members: block
                .members
                .iter()
                .map(|m| BeaconMemberRecord {
                    identity: hex::encode(m.identity.0),
                    index: m.index,
                    public_share: hex::encode(m.public_share.0),
                })
                .collect(),
            own_index,
        })
    }

    /// This node's share of the active view and its index, for the beacon (`None` when it holds
    /// none).
    pub fn beacon_share(&self) -> Result<Option<(u64, Secret<Scalar>)>, DriverError> {
        let view = self.state.current_view;
        let Some(rec) = self.state.shares.iter().find(|s| s.view == view) else {
            return Ok(None);
        };
        Ok(self
            .scalar(&format!("share/{view}"))?
            .map(|share| (rec.index, share)))
    }
}
