//! Registry and stake: registration (with the identity key's proof of possession), stake added,
//! unbonded and claimed back, transfers of the free balance, network identities, and the
//! balance and nonce bookkeeping every transaction relies on. A node's stake is locked from its
//! own balance (funded at genesis or by transfers), never declared; stake that leaves unbonds for
//! `staking.unbonding_views` views, and stake at risk in a running view change cannot leave
//! (`ContractState::is_locked`).

use keyquorum_crypto::encrypt::EncryptionPublicKey;
use keyquorum_crypto::verifiable_encrypt::VerifiableEncryptionPublicKey;
use keyquorum_dkg::identity::{IdentityPublicKey, IdentitySignature};

use crate::error::Rejection;
use crate::events::Event;
use crate::hex::Hex;
use crate::state::{IdentityKey, NodeRecord, Unbonding};
use crate::tx::{NetworkIdentity, TxBody};

use super::{Contract, key_of};

impl Contract {
    /// `Register`: a new node with its proof of possession, encryption key, network identity and
    /// first stake, locked from its balance.
    pub(super) fn register(
        &mut self,
        identity: &IdentityPublicKey,
        pop: &IdentitySignature,
        encryption_key: &EncryptionPublicKey,
        network: &NetworkIdentity,
        stake: u64,
        height: u64,
    ) -> Result<Vec<Event>, Rejection> {
        let sender = key_of(identity);
        let registered = self.state.nodes.contains_key(&sender);
        if registered {
            return Err(Rejection::AlreadyRegistered);
        }
        if stake == 0 {
            return Err(Rejection::ZeroAmount);
        }
        self.check_balance(&sender, stake)?;
        if !identity.verify_pop(pop) {
            return Err(Rejection::BadProofOfPossession);
        }
        let enc = Hex(encryption_key.to_bytes());
        if self.state.nodes.values().any(|n| n.encryption_key == enc) {
            return Err(Rejection::DuplicateEncryptionKey);
        }
        self.check_peer_id(&sender, network)?;
        self.debit(&sender, stake);
        self.state.nodes.insert(
            sender,
            NodeRecord {
                identity: sender,
                encryption_key: enc,
                network: network.clone(),
                stake,
                registered_at: height,
                refused_posts: 0,
                verifiable_key: None,
                leaving: false,
            },
        );
        Ok(vec![Event::Registered {
            identity: sender,
            stake,
            network: network.clone(),
            encryption_key: enc,
        }])
    }

    /// `AddStake`: locks more of the sender's balance as stake.
    pub(super) fn add_stake(
        &mut self,
        sender: IdentityKey,
        amount: u64,
    ) -> Result<Vec<Event>, Rejection> {
        if amount == 0 {
            return Err(Rejection::ZeroAmount);
        }
        let node = &self.state.nodes[&sender];
        let stake = node
            .stake
            .checked_add(amount)
            .ok_or(Rejection::StakeOverflow)?;
        self.check_balance(&sender, amount)?;
        self.debit(&sender, amount);
        self.set_stake(&sender, stake);
        Ok(vec![Event::StakeChanged {
            identity: sender,
            stake,
        }])
    }

    /// `Unbond`: moves stake into unbonding, released `unbonding_views` views later.
    pub(super) fn unbond(
        &mut self,
        sender: IdentityKey,
        amount: u64,
    ) -> Result<Vec<Event>, Rejection> {
        if amount == 0 {
            return Err(Rejection::ZeroAmount);
        }
        let have = self.state.nodes[&sender].stake;
        if amount > have {
            return Err(Rejection::InsufficientStake {
                stake: have,
                requested: amount,
            });
        }
        if self.state.is_locked(&sender) {
            return Err(Rejection::StakeLocked);
        }
        self.set_stake(&sender, have - amount);
        let release_view = self.start_unbonding(&sender, amount);
        Ok(vec![
            Event::StakeChanged {
                identity: sender,
                stake: have - amount,
            },
            Event::UnbondingStarted {
                identity: sender,
                amount,
                release_view,
            },
        ])
    }

    /// `Deregister`: removes the node; all of its stake starts unbonding. A node whose stake is
    /// locked leaves instead: it is no longer selected, and [`Self::complete_leaves`]
    /// deregisters it once the stake is free. Refusing it, as `Unbond` is, would keep a member
    /// of a network with no more nodes than seats in every committee for good.
    pub(super) fn deregister(&mut self, sender: IdentityKey) -> Result<Vec<Event>, Rejection> {
        let node = self
            .state
            .nodes
            .get(&sender)
            .ok_or(Rejection::NotRegistered)?;
        if node.leaving {
            return Err(Rejection::AlreadyLeaving);
        }
        if self.state.is_locked(&sender) {
            if let Some(node) = self.state.nodes.get_mut(&sender) {
                node.leaving = true;
            }
            return Ok(vec![Event::LeaveScheduled { identity: sender }]);
        }
        Ok(self.remove_node(sender))
    }

    /// `CancelLeave`: a leaving node stays registered, and is selected again from the next
    /// committee on. Its stake was locked all along, so nothing else changes.
    pub(super) fn cancel_leave(&mut self, sender: IdentityKey) -> Result<Vec<Event>, Rejection> {
        let node = self
            .state
            .nodes
            .get_mut(&sender)
            .ok_or(Rejection::NotRegistered)?;
        if !node.leaving {
            return Err(Rejection::NotLeaving);
        }
        node.leaving = false;
        Ok(vec![Event::LeaveCancelled { identity: sender }])
    }

    /// Deregisters every leaving node whose stake is now free (at the end of each block, in
    /// identity order).
    pub(super) fn complete_leaves(&mut self, events: &mut Vec<Event>) {
        let free: Vec<IdentityKey> = self
            .state
            .nodes
            .values()
            .filter(|n| n.leaving && !self.state.is_locked(&n.identity))
            .map(|n| n.identity)
            .collect();
        for id in free {
            events.extend(self.remove_node(id));
        }
    }

    /// Removes a registered node; its whole stake starts unbonding.
    fn remove_node(&mut self, id: IdentityKey) -> Vec<Event> {
        let Some(node) = self.state.nodes.remove(&id) else {
            return Vec::new();
        };
        let mut events = vec![Event::Deregistered {
            identity: id,
            stake: node.stake,
        }];
        if node.stake > 0 {
            let release_view = self.start_unbonding(&id, node.stake);
            events.push(Event::UnbondingStarted {
                identity: id,
                amount: node.stake,
                release_view,
            });
        }
        events
    }

    /// `Transfer`: moves free balance to another account.
    pub(super) fn transfer(
        &mut self,
        sender: IdentityKey,
        to: &IdentityPublicKey,
        amount: u64,
    ) -> Result<Vec<Event>, Rejection> {
        if amount == 0 {
            return Err(Rejection::ZeroAmount);
        }
        self.check_balance(&sender, amount)?;
        let to = key_of(to);
        if to != sender && self.state.balance(&to).checked_add(amount).is_none() {
            return Err(Rejection::BalanceOverflow);
        }
        self.debit(&sender, amount);
        self.credit(&to, amount);
        Ok(vec![Event::Transferred {
            from: sender,
            to,
            amount,
        }])
    }

    /// `ClaimUnbonded`: returns the unbonding entries that are due to the free balance.
    pub(super) fn claim_unbonded(&mut self, sender: IdentityKey) -> Result<Vec<Event>, Rejection> {
        let current_view = self.state.current_view;
        let entries = self
            .state
            .unbonding
            .get(&sender)
            .ok_or(Rejection::NothingUnbonding)?;
        let (due, rest): (Vec<_>, Vec<_>) = entries
            .iter()
            .cloned()
            .partition(|u| u.release_view <= current_view);
        if due.is_empty() {
            return Err(Rejection::StillUnbonding {
                release_view: rest.iter().map(|u| u.release_view).min().unwrap_or(0),
                current_view,
            });
        }
        // Parts of the supply: the sum fits in a u64, and so does the balance after.
        let amount: u64 = due.iter().map(|u| u.amount).sum();
        if self.state.balance(&sender).checked_add(amount).is_none() {
            return Err(Rejection::BalanceOverflow);
        }
        if rest.is_empty() {
            self.state.unbonding.remove(&sender);
        } else {
            self.state.unbonding.insert(sender, rest);
        }
        self.credit(&sender, amount);
        Ok(vec![Event::UnbondedClaimed {
            identity: sender,
            amount,
            balance: self.state.balance(&sender),
        }])
    }

    /// `UpdateNetwork`: replaces the node's network identity.
    pub(super) fn update_network(
        &mut self,
        sender: IdentityKey,
        network: &NetworkIdentity,
    ) -> Result<Vec<Event>, Rejection> {
        self.check_peer_id(&sender, network)?;
        if let Some(n) = self.state.nodes.get_mut(&sender) {
            n.network = network.clone();
        }
        Ok(vec![Event::NetworkUpdated {
            identity: sender,
            network: network.clone(),
        }])
    }

    /// `SetVerifiableKey`: the key complaint-variant ceremonies encrypt the sender's shares to.
    /// Set once, and no two nodes share one.
    pub(super) fn set_verifiable_key(
        &mut self,
        sender: IdentityKey,
        key: &VerifiableEncryptionPublicKey,
    ) -> Result<Vec<Event>, Rejection> {
        let key = Hex(key.to_bytes());
        if self.state.nodes[&sender].verifiable_key.is_some() {
            return Err(Rejection::VerifiableKeyAlreadySet);
        }
        if self
            .state
            .nodes
            .values()
            .any(|n| n.verifiable_key == Some(key))
        {
            return Err(Rejection::DuplicateVerifiableKey);
        }
        if let Some(n) = self.state.nodes.get_mut(&sender) {
            n.verifiable_key = Some(key);
        }
        Ok(vec![Event::VerifiableKeySet {
            identity: sender,
            key,
        }])
    }

    pub(super) fn check_peer_id(
        &self,
        sender: &IdentityKey,
        network: &NetworkIdentity,
    ) -> Result<(), Rejection> {
        if self
            .state
            .nodes
            .values()
            .any(|n| &n.identity != sender && n.network.peer_id == network.peer_id)
        {
            return Err(Rejection::DuplicatePeerId);
        }
        Ok(())
    }

    /// Who may send what: registry and ceremony transactions need a registered node,
    /// `Register`, `Transfer` and `ClaimUnbonded` an account that holds something. A key that
    /// holds nothing can do nothing, so a flood from fresh keys is refused before any block
    /// and leaves no trace in the state.
    pub(super) fn check_sender(
        &self,
        sender: &IdentityKey,
        body: &TxBody,
    ) -> Result<(), Rejection> {
        // Each refusal names what is missing: the funds for a registration or a transfer,
        // anything to claim, or the registration itself.
        match body {
            TxBody::Register { stake: amount, .. } | TxBody::Transfer { amount, .. }
                if !self.state.has_account(sender) =>
            {
                Err(if *amount == 0 {
                    Rejection::ZeroAmount
                } else {
                    Rejection::InsufficientBalance {
                        balance: 0,
                        requested: *amount,
                    }
                })
            }
            TxBody::ClaimUnbonded if !self.state.has_account(sender) => {
                Err(Rejection::NothingUnbonding)
            }
            TxBody::Register { .. } | TxBody::Transfer { .. } | TxBody::ClaimUnbonded => Ok(()),
            _ if !self.state.nodes.contains_key(sender) => Err(Rejection::NotRegistered),
            _ => Ok(()),
        }
    }

    pub(super) fn check_balance(&self, id: &IdentityKey, amount: u64) -> Result<(), Rejection> {
        let balance = self.state.balance(id);
        if amount > balance {
            return Err(Rejection::InsufficientBalance {
                balance,
                requested: amount,
            });
        }
        Ok(())
    }

    /// Takes `amount` from a balance already checked to hold it.
    pub(super) fn debit(&mut self, id: &IdentityKey, amount: u64) {
        if let Some(b) = self.state.balances.get_mut(id) {
            *b = b.saturating_sub(amount);
            if *b == 0 {
                self.state.balances.remove(id);
            }
        }
    }

    /// Adds `amount` to a balance (no overflow: every balance is a part of the supply, which
    /// fits in a u64; callers that cannot rely on it check first).
    pub(super) fn credit(&mut self, id: &IdentityKey, amount: u64) {
        if amount > 0 {
            let b = self.state.balances.entry(*id).or_insert(0);
            *b = b.saturating_add(amount);
        }
    }

    /// Moves `amount` (already taken from the stake) into unbonding until
    /// `unbonding_views` more views have been activated; returns that view.
    pub(super) fn start_unbonding(&mut self, id: &IdentityKey, amount: u64) -> u64 {
        let release_view = self
            .state
            .current_view
            .saturating_add(self.config.staking.unbonding_views);
        let entries = self.state.unbonding.entry(*id).or_default();
        match entries.iter_mut().find(|u| u.release_view == release_view) {
            Some(u) => u.amount = u.amount.saturating_add(amount),
            None => entries.push(Unbonding {
                amount,
                release_view,
            }),
        }
        release_view
    }

    pub(super) fn set_stake(&mut self, id: &IdentityKey, stake: u64) {
        if let Some(n) = self.state.nodes.get_mut(id) {
            n.stake = stake;
        }
    }
}
