//! Magic blocks: the next view's magic block built from the board's outcome, the signatures of
//! the new committee (and of the old one for a handover) collected in the wait phase, and the
//! view activated once both are in, or the ceremony failed when they are not by the deadline.

use std::collections::{BTreeMap, BTreeSet};

use keyquorum_crypto::tbls::{MinPk, PartialSignature};
use keyquorum_dkg::board::Exclusion;

use crate::config::BeaconConfig;
use crate::error::Rejection;
use crate::events::Event;
use crate::hex::Hex;
use crate::magic::{
    MagicBlock, MagicBlockPlace, PartialError, SignedMagicBlock, check_partial, combine_partials,
};
use crate::state::{
    EvidenceRecord, FaultCeremony, FaultRole, IdentityKey, PendingMagicBlock, ViewChangePhase,
    ViewRecord,
};
use crate::tx::SignerRole;

use super::ceremonies::penalised;
use super::slashing::FaultInfo;
use super::{Contract, LiveBoard, view_seed};

impl Contract {
    pub(super) fn magic_block_signature(
        &mut self,
        sender: &IdentityKey,
        view: u64,
        block_hash: &[u8; 32],
        role: SignerRole,
        partial: &PartialSignature<MinPk>,
        height: u64,
    ) -> Result<Vec<Event>, Rejection> {
        let change = self.state.change.as_ref().ok_or(Rejection::NoViewChange)?;
        if change.phase != ViewChangePhase::Wait {
            return Err(Rejection::WrongPhase {
                phase: change.phase,
            });
        }
        if height > change.deadline {
            return Err(Rejection::DeadlinePassed {
                deadline: change.deadline,
            });
        }
        if view != change.view {
            return Err(Rejection::WrongView {
                expected: change.view,
                got: view,
            });
        }
        let pending = change.magic.as_ref().ok_or(Rejection::NoViewChange)?;
        if &pending.signed.hash.0 != block_hash {
            return Err(Rejection::WrongMagicBlock);
        }
        // The committee signing in this role, its threshold and key, and what is in so far.
        let (committee, partials, done) = match role {
            SignerRole::New => (
                &pending.signed.block,
                &pending.new_partials,
                pending.signed.signature.is_some(),
            ),
            SignerRole::Old => {
                let prev = self
                    .state
                    .views
                    .get(&(view - 1))
                    .ok_or(Rejection::NotASigner(role))?;
                (
                    &prev.magic_block.block,
                    &pending.old_partials,
                    pending.signed.previous_signature.is_some(),
                )
            }
        };
        if done {
            return Err(Rejection::SignatureComplete(role));
        }
        let index = check_partial(committee, role, block_hash, &sender.0, partial).map_err(
            |e| match e {
                PartialError::NotASigner => Rejection::NotASigner(role),
                PartialError::WrongIndex => Rejection::WrongIndex,
                _ => Rejection::BadPartialSignature,
            },
        )?;
        if partials.contains_key(&index) {
            return Err(Rejection::DuplicatePartial);
        }
        let threshold = committee.t as usize;
        let have = partials.len() + 1;
        let combined = if have == threshold {
            // All partials were checked on the way in; the result is verified anyway before
            // it is stored.
            let mut all = partials
                .values()
                .map(|p| PartialSignature::<MinPk>::from_bytes(&p.0))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| Rejection::CombineFailed)?;
            all.push(*partial);
            let sig = combine_partials(committee, role, block_hash, &all)
                .map_err(|_| Rejection::CombineFailed)?;
            Some(Hex(sig))
        } else {
            None
        };
        // Everything checked: store.
        let change = self.state.change.as_mut().ok_or(Rejection::NoViewChange)?;
        let pending = change.magic.as_mut().ok_or(Rejection::NoViewChange)?;
        let mut raw = [0u8; 128];
        raw.copy_from_slice(&partial.to_bytes());
        match role {
            SignerRole::New => pending.new_partials.insert(index, Hex(raw)),
            SignerRole::Old => pending.old_partials.insert(index, Hex(raw)),
        };
        let mut events = vec![Event::PartialSignatureAccepted {
            view,
            signer: *sender,
            role,
            have: have as u32,
            need: threshold as u32,
        }];
        if let Some(sig) = combined {
            match role {
                SignerRole::New => pending.signed.signature = Some(sig),
                SignerRole::Old => pending.signed.previous_signature = Some(sig),
            }
            events.push(Event::MagicBlockSigned {
                view,
                role,
                hash: pending.signed.hash,
                signature: sig,
                complete: pending.is_complete(),
            });
        }
        Ok(events)
    }

    pub(super) fn create_magic_block(
        &mut self,
        at: u64,
        exclusions: &[Exclusion],
        events: &mut Vec<Event>,
    ) {
        let (Some(change), Some(live)) = (self.state.change.as_ref(), self.live.as_ref()) else {
            return;
        };
        let previous = self.state.views.get(&(change.view - 1));
        let previous_hash = previous.map(|v| v.magic_block.hash.0).unwrap_or_default();
        let deadline = at.saturating_add(self.config.phases.wait);
        let place = MagicBlockPlace {
            chain_id: self.config.chain_id.clone(),
            view: change.view,
            ceremony_number: change.ceremony_number,
            key_mode: change.key_mode,
            previous_hash,
            first_round: deadline.saturating_add(1),
            beacon: BeaconConfig::for_view(
                change.key_mode,
                self.config.beacon,
                previous.map(|v| v.magic_block.block.beacon),
            ),
        };
        // The same construction every node repeats from its own board before it signs.
        let nodes = &self.state.nodes;
        let network = |id: &Hex<96>| nodes.get(id).map(|n| n.network.clone());
        let built = match &live.board {
            LiveBoard::AckReveal(b) => MagicBlock::from_board(&place, b, network),
            LiveBoard::Complaint(b) => MagicBlock::from_complaint_board(&place, b, network),
        };
        let block = match built {
            Ok(b) => b,
            Err(e) => return self.fail_ceremony(at, penalised(exclusions), e.to_string(), events),
        };
        let hash = Hex(block.hash());
        let (view, ceremony_number, attempt) =
            (change.view, change.ceremony_number, change.attempt);
        events.push(Event::MagicBlockCreated {
            view,
            ceremony_number,
            hash,
            magic_block: block.clone(),
        });
        events.push(Event::PhaseChanged {
            view,
            ceremony_number,
            attempt,
            phase: ViewChangePhase::Wait,
            deadline,
        });
        self.live = None;
        if let Some(c) = self.state.change.as_mut() {
            c.phase = ViewChangePhase::Wait;
            c.deadline = deadline;
            c.magic = Some(PendingMagicBlock {
                signed: SignedMagicBlock {
                    block,
                    hash,
                    signature: None,
                    previous_signature: None,
                },
                new_partials: BTreeMap::new(),
                old_partials: BTreeMap::new(),
            });
        }
    }

    /// End of the wait phase: the new view starts if its magic block is signed by both
    /// committees; otherwise the members that did not sign are recorded (absence) and the new
    /// committee's non-signers are left out of a new ceremony.
    pub(super) fn wait_deadline(&mut self, at: u64, events: &mut Vec<Event>) {
        let Some(change) = self.state.change.as_ref() else {
            return;
        };
        let Some(pending) = change.magic.clone() else {
            return self.fail_ceremony(at, BTreeSet::new(), "no magic block".into(), events);
        };
        let (view, ceremony_number, attempt) =
            (change.view, change.ceremony_number, change.attempt);
        if pending.is_complete() {
            let signed = pending.signed;
            let sig = signed.signature.map(|s| s.0).unwrap_or([0u8; 96]);
            // The block after the one that completed the signatures: the block's
            // `first_round` when the wait phase ran to its deadline, earlier when it closed
            // early.
            let first_round = at.saturating_add(1).min(signed.block.first_round);
            let hash = signed.hash;
            self.state.views.insert(
                view,
                ViewRecord {
                    view,
                    magic_block: signed,
                    seed: Hex(view_seed(&sig)),
                    activated_at: first_round,
                    signing_key: None,
                },
            );
            self.state.current_view = view;
            self.state.next_ceremony_number = 0;
            self.state.change = None;
            self.live = None;
            self.state.next_start = first_round.saturating_add(self.config.view_length);
            events.push(Event::ViewActivated {
                view,
                first_round,
                hash,
            });
            events.push(Event::PhaseChanged {
                view,
                ceremony_number,
                attempt,
                phase: ViewChangePhase::Idle,
                deadline: self.state.next_start,
            });
            self.start_signing_key(view, first_round, events);
            return;
        }
        let mut culprits = BTreeSet::new();
        let missing = |partials: &BTreeMap<u64, Hex<128>>, block: &MagicBlock| {
            block
                .members
                .iter()
                .filter(|m| !partials.contains_key(&m.index))
                .map(|m| m.identity)
                .collect::<Vec<_>>()
        };
        let mut faults = Vec::new();
        if pending.signed.signature.is_none() {
            for id in missing(&pending.new_partials, &pending.signed.block) {
                culprits.insert(id);
                faults.push((id, FaultRole::Signer));
            }
        }
        if pending.signed.previous_signature.is_none()
            && let Some(prev) = self.state.views.get(&(view - 1))
        {
            // Previous members cannot be replaced (only they hold the old key): recorded, not
            // banned.
            for id in missing(&pending.old_partials, &prev.magic_block.block) {
                faults.push((id, FaultRole::PreviousSigner));
            }
        }
        for (identity, role) in faults {
            self.record_fault(
                FaultInfo {
                    view,
                    ceremony: FaultCeremony::ViewChange,
                    ceremony_number,
                    attempt,
                    identity,
                    role,
                    fault: "missed_magic_block_signature".into(),
                    detail: format!("no partial signature as {} by block {at}", role.as_str()),
                    misbehaviour: false,
                    evidence: EvidenceRecord::MissingSignature {
                        magic_block_hash: pending.signed.hash,
                    },
                    reporter: None,
                },
                at,
                events,
            );
        }
        self.fail_ceremony(
            at,
            culprits,
            "magic block not signed by the deadline".into(),
            events,
        );
    }
}
