//! Magic blocks: checked against this node's own board before anything is signed, signed with the
//! new share and the previous view's share, and the view's share promoted when the view is
//! activated (module docs of [`super`]).

use super::*;

impl Driver {
    pub(super) fn on_magic_block(
        &mut self,
        view: u64,
        ceremony_number: u32,
        hash: &[u8; 32],
        block: &MagicBlock,
        index: Option<u64>,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        let signs_handover = self.state.shares.iter().any(|s| s.view + 1 == view);
        let signs = self.fault != Fault::Silent && (index.is_some() || signs_handover);
        if signs && let Err(what) = self.check_magic_block(view, ceremony_number, hash, block) {
            self.reject_magic_block(view, ceremony_number, hash, what);
            return Ok(());
        }
        self.state.pending_magic = Some(PendingMagic {
            view,
            ceremony_number,
            hash: hex::encode(hash),
            index,
            group_key: hex::encode(block.group_key.0),
            members: block
                .members
                .iter()
                .map(|m| hex::encode(m.identity.0))
                .collect(),
            block: Some(block.clone()),
        });
        info!(view, ceremony_number, hash = %hex::encode(hash), member = index.is_some(), "magic block created");
        if self.fault != Fault::Silent {
            self.sign_magic_block(view, ceremony_number, hash, index, effects)?;
        }
        Ok(())
    }

    /// Rebuilds the magic block of `(view, ceremony_number)` from this node's own board, previous view
    /// and registry with the contract's construction, and compares it with the chain's block
    /// and hash. `Err` names the first difference.
    pub(super) fn check_magic_block(
        &self,
        view: u64,
        ceremony_number: u32,
        hash: &[u8; 32],
        block: &MagicBlock,
    ) -> Result<(), String> {
        let Some(live) = self
            .live
            .as_ref()
            .filter(|_| self.is_ceremony(view, ceremony_number))
        else {
            return Err("no board of this ceremony to check it against".into());
        };
        let previous_hash = if view <= 1 {
            [0u8; 32]
        } else {
            let mut h = [0u8; 32];
            match &self.state.current_hash {
                Some(x) if self.state.current_view + 1 == view => {
                    hex::decode_to_slice(x, &mut h)
                        .map_err(|_| "stored previous hash does not decode".to_string())?;
                }
                _ => return Err(format!("view {} is not the active view", view - 1)),
            }
            h
        };
        let key_mode = if live.ceremony.reshare().is_some() {
            KeyMode::Reshare
        } else {
            KeyMode::Fresh
        };
        let place = MagicBlockPlace {
            // Not derived from the board: where the chain puts the view (the hash still binds
            // them, and every committee signs the same bytes).
            chain_id: block.chain_id.clone(),
            first_round: block.first_round,
            view,
            ceremony_number,
            key_mode,
            previous_hash,
            // The contract's rule on what this node knows: the configured beacon for a fresh
            // key, the active view's (its chain goes on) for a reshare.
            beacon: BeaconConfig::for_view(
                key_mode,
                self.configured_beacon,
                self.active_block.as_ref().map(|b| b.beacon),
            ),
        };
        let registry = &self.state.registry;
        let expected = live
            .node
            .magic_block(&place, |id| registry.get(&hex::encode(id.0)).cloned())
            .map_err(|e| e.to_string())?;
        if let Some(what) = expected.first_difference(block) {
            return Err(what.to_string());
        }
        if &expected.hash() != hash {
            return Err("hash".into());
        }
        Ok(())
    }

    /// A magic block that is not the one this node's board defines: nothing is signed.
    pub(super) fn reject_magic_block(
        &mut self,
        view: u64,
        ceremony_number: u32,
        hash: &[u8; 32],
        what: String,
    ) {
        error!(
            view,
            ceremony_number,
            hash = %hex::encode(hash),
            differs_in = %what,
            "the chain's magic block is not the one this node's board defines; not signing it"
        );
        self.observe(Observation::MagicBlockMismatch(MagicBlockMismatch {
            view,
            ceremony_number,
            hash: hex::encode(hash),
            what,
        }));
    }

    pub(super) fn sign_magic_block(
        &mut self,
        view: u64,
        ceremony_number: u32,
        hash: &[u8; 32],
        index: Option<u64>,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        // With the new share, as a member of the new committee.
        if let Some(index) = index
            && let Some(out) = self
                .state
                .outputs
                .iter()
                .find(|o| o.view == view && o.ceremony_number == ceremony_number && o.has_share)
            && let Some(share) = self.scalar(&format!("output/{}", out.session_id))?
        {
            let message = signing_message(SignerRole::New, hash);
            let partial = tbls::partial_sign::<MinPk>(&share, Scalar::from(index), &message);
            effects.push(Effect::Submit(Box::new(Submission {
                action: ChainAction::Tx(TxBody::MagicBlockSignature {
                    view,
                    block_hash: *hash,
                    role: SignerRole::New,
                    partial,
                }),
                kind: "magic_block_signature",
                expires: None,
            })));
        }
        // With the previous share, as a member of the previous committee (the handover).
        if view > 1
            && let Some(prev) = self
                .state
                .shares
                .iter()
                .find(|s| s.view == view - 1)
                .cloned()
            && let Some(share) = self.scalar(&format!("share/{}", prev.view))?
        {
            let message = signing_message(SignerRole::Old, hash);
            let partial = tbls::partial_sign::<MinPk>(&share, Scalar::from(prev.index), &message);
            effects.push(Effect::Submit(Box::new(Submission {
                action: ChainAction::Tx(TxBody::MagicBlockSignature {
                    view,
                    block_hash: *hash,
                    role: SignerRole::Old,
                    partial,
                }),
                kind: "magic_block_signature",
                expires: None,
            })));
        }
        Ok(())
    }

    /// A view is active: the new share (if this node signed its magic block as a member)
    /// becomes the view's share. The ceremony ends with the follower's next step.
    pub(super) fn on_view_activated(
        &mut self,
        view: u64,
        hash: &[u8; 32],
        height: u64,
        batch: &mut Batch,
        effects: &mut Vec<Effect>,
    ) -> Result<(), DriverError> {
        let pm = self.state.pending_magic.take();
        // This node's share index in the activated view: set when it is a member holding its share.
        let mut own_share_index = None;
        let mut committee = Vec::new();
        let mut group_key = None;
        let pm = pm.filter(|p| p.view == view && p.hash == hex::encode(hash));
        let block = pm.as_ref().and_then(|p| p.block.clone());
        let listed = pm.as_ref().is_some_and(|p| p.index.is_some());
        if let Some(pm) = pm {
            committee = pm.members.clone();
            group_key = Some(pm.group_key.clone());
            if let Some(index) = pm.index
                && let Some(out) = self
                    .state
                    .outputs
                    .iter()
                    .find(|o| {
                        o.view == view && o.ceremony_number == pm.ceremony_number && o.has_share
                    })
                    .cloned()
                && let Some(share) = self.secret(&format!("output/{}", out.session_id))?
            {
                self.put_secret(batch, &format!("share/{view}"), &share)?;
                self.delete_secret(batch, &format!("output/{}", out.session_id))?;
                self.state.shares.retain(|s| s.view != view);
                self.state.shares.push(ShareRecord {
                    view,
                    ceremony_number: pm.ceremony_number,
                    index,
                    group_key: pm.group_key.clone(),
                });
                own_share_index = Some(index);
            }
        }
        // Keep the current and the previous view's shares (the previous one signs the next
        // magic block and deals the next reshare); wipe older ones.
        let old: Vec<u64> = self
            .state
            .shares
            .iter()
            .filter(|s| s.view + 1 < view)
            .map(|s| s.view)
            .collect();
        for v in old {
            self.delete_secret(batch, &format!("share/{v}"))?;
        }
        self.state.shares.retain(|s| s.view + 1 >= view);
        self.state.beacon = self.beacon_for_view(view, hash, block.as_ref(), own_share_index);
        let threshold = block.as_ref().map(|b| b.t);
        // Said for the view now active, not for each one replayed while catching up (the
        // view active when the head is reached is said then).
        if self.head_reached
            && let Some(b) = &block
        {
            warn_if_every_share_needed(b);
        }
        batch.put_active_block(block.as_ref())?;
        self.active_block = block;
        effects.push(Effect::StartBeacon { view });
        self.state.current_view = view;
        self.state.current_hash = Some(hex::encode(hash));
        let holds_share = own_share_index.is_some();
        info!(view, member = listed, holds_share, hash = %hex::encode(hash), "view activated");
        if listed && !holds_share && self.head_reached && !self.behind(height) {
            self.warn_no_share(view);
        }
        self.observe(Observation::ViewActivated {
            view,
            committee,
            group_key,
            share_index: own_share_index,
            threshold,
        });
        Ok(())
    }
}

/// Warns when `block`'s view needs every member's share (`t = n`, as when a committee at its
/// bound excluded a player): any member down then stops its threshold signatures and beacon.
pub(super) fn warn_if_every_share_needed(block: &MagicBlock) {
    if block.t >= block.n && block.n > 1 {
        warn!(
            view = block.view,
            threshold = block.t,
            members = block.n,
            "the view needs every member's share: any member down stops its threshold \
             signatures and beacon until the next view change"
        );
    }
}
