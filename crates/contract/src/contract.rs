//! The state machine: transactions and block ends in, state changes and events out.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use keyquorum_crypto::tbls::{self, MinPk, PartialSignature};
use keyquorum_crypto::{Bls12381G1, Bls12381G2, Curve};
use keyquorum_dkg::Ceremony;
use keyquorum_dkg::board::{
    Board, BoardError, BoardPhase, Evidence, Exclusion, FaultKind, Outcome, Penalty, Role,
    check_authentic,
};
use keyquorum_dkg::identity::IdentityPublicKey;
use keyquorum_dkg::messages::{Post, SignedPost};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::config::{ConfigError, ContractConfig, KeyMode};
use crate::error::Rejection;
use crate::events::{CommitteeEntry, Event};
use crate::hex::{Bytes, Hex};
use crate::magic::{
    MagicBlock, MagicBlockMember, MagicBlockPlace, SignedMagicBlock, signing_message,
};
use crate::select::select_committee;
use crate::state::{
    BoardInput, CeremonySpec, ContractState, EvidenceRecord, FaultRole, IdentityKey, NamedRecord,
    NodeRecord, PendingMagicBlock, SlashingRecord, SpecError, SpecParticipant, SpecReshare,
    Unbonding, ViewChange, ViewChangePhase, ViewRecord,
};
use crate::tx::{NetworkIdentity, SignerRole, Transaction, TxBody, max_tx_len, tx_hash};

/// The curve of the group keys: commitments and public keys in G1, signatures in G2 (MinPk).
pub type Group = Bls12381G1;

/// Most nonces beyond the next one that [`Contract::check_tx`] admits, so a node can queue a
/// few transactions in a mempool; [`Contract::apply_tx`] takes nonces strictly in order.
pub const MAX_NONCE_GAP: u64 = 64;

/// The running ceremony, derived from the state (spec and board log).
#[derive(Clone)]
struct Live {
    ceremony: Arc<Ceremony<Group>>,
    board: Board<Group>,
}

/// Restoring a contract from a saved state failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RestoreError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The saved ceremony definition does not make a ceremony.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A logged post no longer decodes.
    #[error("board log entry does not decode")]
    BoardLog,
}

/// The view-change coordinator. See the crate documentation for the rules.
#[derive(Clone)]
pub struct Contract {
    config: ContractConfig,
    state: ContractState,
    live: Option<Live>,
    max_tx_len: usize,
}

impl fmt::Debug for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contract")
            .field("chain_id", &self.config.chain_id)
            .field("last_block", &self.state.last_block)
            .field("current_view", &self.state.current_view)
            .field("phase", &self.state.phase())
            .finish_non_exhaustive()
    }
}

/// The seed that breaks stake ties when selecting the first committee.
pub fn genesis_seed(chain_id: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"keyquorum/genesis-seed/v1");
    h.update(chain_id.as_bytes());
    h.finalize().into()
}

/// The random seed of a view: SHA-256 of its committee's signature on its magic block.
pub fn view_seed(signature: &[u8; 96]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"keyquorum/view-seed/v1");
    h.update(signature);
    h.finalize().into()
}

/// The domain bound into the session id: chain id, view and ceremony number.
fn session_domain(chain_id: &str, view: u64, ceremony_number: u32) -> Vec<u8> {
    format!("keyquorum-contract/{chain_id}/view/{view}/session/{ceremony_number}").into_bytes()
}

/// The on-chain name of an engine fault (`FaultKind::code`, e.g. `bad_ack_signature`).
pub fn fault_name(fault: &FaultKind) -> String {
    fault.code().to_string()
}

/// The fault's name and description (`bad_reveal: revealed share of player 2 does not match
/// the commitment`).
fn fault_reason(fault: &FaultKind) -> String {
    format!("{}: {fault}", fault_name(fault))
}

fn evidence_record(e: &Evidence) -> EvidenceRecord {
    let posts = |v: &Vec<Vec<u8>>| v.iter().cloned().map(Bytes).collect();
    match e {
        Evidence::SignedPosts(v) => EvidenceRecord::SignedPosts { posts: posts(v) },
        Evidence::Absence { phase, attempt } => EvidenceRecord::Absence {
            phase: phase.as_str().to_string(),
            attempt: *attempt,
        },
        Evidence::Reports(v) => EvidenceRecord::Reports { posts: posts(v) },
    }
}

/// The identities of the exclusions that carry a penalty: the culprits banned from the rest of
/// a view change and left out of the new committee.
fn penalised(exclusions: &[Exclusion]) -> BTreeSet<IdentityKey> {
    exclusions
        .iter()
        .filter(|e| e.fault.penalty() != Penalty::None)
        .map(|e| key_of(&e.identity))
        .collect()
}

/// A `DkgPost`'s post as `sender` may post it to the running ceremony: it decodes, belongs to
/// the session, names a dealer, that dealer is the sender, and its signature is the dealer's
/// ([`check_authentic`], the board's own check). Shared by [`Contract::check_tx`] and the block.
fn authentic_post(
    live: &Live,
    sender: &IdentityPublicKey,
    post: &[u8],
) -> Result<SignedPost<Group>, Rejection> {
    let signed =
        SignedPost::<Group>::decode(post, live.ceremony.n()).map_err(Rejection::MalformedPost)?;
    if signed.post.session() != live.ceremony.id() {
        return Err(Rejection::WrongSession);
    }
    let dealer = signed.post.dealer();
    let author = live
        .ceremony
        .dealers()
        .get(dealer as usize)
        .ok_or(Rejection::Board(BoardError::NotADealer(dealer)))?;
    if &author.identity != sender {
        return Err(Rejection::NotPostAuthor);
    }
    check_authentic(&live.ceremony, &signed).map_err(Rejection::Board)?;
    Ok(signed)
}

fn key_of(id: &IdentityPublicKey) -> IdentityKey {
    Hex(id.to_bytes())
}

impl Contract {
    /// A contract at genesis.
    pub fn new(config: ContractConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let state = ContractState::genesis(&config);
        Ok(Contract {
            max_tx_len: max_tx_len(config.committee.max_size as usize),
            config,
            state,
            live: None,
        })
    }

    /// A contract from a saved state: the running ceremony's board is rebuilt by replaying its
    /// logged inputs.
    pub fn from_state(config: ContractConfig, state: ContractState) -> Result<Self, RestoreError> {
        config.validate()?;
        let mut live = None;
        if let Some(c) = &state.change
            && matches!(
                c.phase,
                ViewChangePhase::Contribute | ViewChangePhase::Share | ViewChangePhase::Publish
            )
        {
            let ceremony = c.spec.ceremony()?;
            let mut board = Board::new(ceremony.clone());
            for input in &c.board_log {
                match input {
                    BoardInput::Post { post } => {
                        let signed = SignedPost::<Group>::decode(&post.0, ceremony.n())
                            .map_err(|_| RestoreError::BoardLog)?;
                        // Logged posts were accepted or refused as faults; replay gives the
                        // same result, which the board records either way.
                        let _ = board.apply(&signed);
                    }
                    BoardInput::Deadline => board.advance(),
                }
            }
            live = Some(Live { ceremony, board });
        }
        Ok(Contract {
            max_tx_len: max_tx_len(config.committee.max_size as usize),
            config,
            state,
            live,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ContractConfig {
        &self.config
    }

    /// The state.
    pub fn state(&self) -> &ContractState {
        &self.state
    }

    /// The running ceremony (contribute, share and publish phases).
    pub fn ceremony(&self) -> Option<&Arc<Ceremony<Group>>> {
        self.live.as_ref().map(|l| &l.ceremony)
    }

    /// The running ceremony's board.
    pub fn board(&self) -> Option<&Board<Group>> {
        self.live.as_ref().map(|l| &l.board)
    }

    /// Longest transaction accepted under this configuration.
    pub fn max_tx_len(&self) -> usize {
        self.max_tx_len
    }

    /// The next nonce of `identity`.
    pub fn next_nonce(&self, identity: &IdentityPublicKey) -> u64 {
        self.state
            .nonces
            .get(&key_of(identity))
            .copied()
            .unwrap_or(0)
    }

    /// A completed view.
    pub fn view(&self, view: u64) -> Option<&ViewRecord> {
        self.state.views.get(&view)
    }

    /// Cheap admission check for a mempool: decoding, signature, known sender, a nonce no
    /// older than the sender's next one (and at most [`MAX_NONCE_GAP`] ahead), and amounts to
    /// lock or transfer within the free balance. Changes nothing.
    /// Returns the transaction hash (SHA-256 of the bytes).
    pub fn check_tx(&self, bytes: &[u8]) -> Result<[u8; 32], Rejection> {
        let tx = Transaction::decode(bytes, self.max_tx_len)?;
        if !tx.verify_signature(&self.config.chain_id) {
            return Err(Rejection::BadSignature);
        }
        let expected = self.next_nonce(&tx.sender);
        if tx.nonce < expected || tx.nonce > expected.saturating_add(MAX_NONCE_GAP) {
            return Err(Rejection::BadNonce {
                expected,
                got: tx.nonce,
            });
        }
        let sender = key_of(&tx.sender);
        self.check_sender(&sender, &tx.body)?;
        // Amounts above the free balance cannot become valid unless funds arrive first: refused
        // here already, so the sender hears why at once and no block carries them.
        match &tx.body {
            TxBody::Register { stake: amount, .. }
            | TxBody::AddStake { amount }
            | TxBody::Transfer { amount, .. } => self.check_balance(&sender, *amount)?,
            // A post that is not the sender's own, validly signed post of the running ceremony
            // is refused before it can reach a mempool or a block (the same checks as in the
            // block; the signature check's answer is remembered for the block).
            TxBody::DkgPost { post } => {
                if let Some(live) = &self.live {
                    authentic_post(live, &tx.sender, post)?;
                }
            }
            _ => {}
        }
        Ok(tx_hash(bytes))
    }

    /// Applies a transaction in the block at `height`. On `Err` nothing changed.
    pub fn apply_tx(&mut self, bytes: &[u8], height: u64) -> Result<Vec<Event>, Rejection> {
        let tx = Transaction::decode(bytes, self.max_tx_len)?;
        self.apply_transaction(&tx, height)
    }

    /// Applies a decoded transaction in the block at `height`. On `Err` nothing changed.
    pub fn apply_transaction(
        &mut self,
        tx: &Transaction,
        height: u64,
    ) -> Result<Vec<Event>, Rejection> {
        if let Some(last) = self.state.last_block
            && height <= last
        {
            return Err(Rejection::WrongHeight { last, got: height });
        }
        if !tx.verify_signature(&self.config.chain_id) {
            return Err(Rejection::BadSignature);
        }
        let sender = key_of(&tx.sender);
        let expected = self.state.nonces.get(&sender).copied().unwrap_or(0);
        if tx.nonce != expected {
            return Err(Rejection::BadNonce {
                expected,
                got: tx.nonce,
            });
        }
        self.check_sender(&sender, &tx.body)?;
        let registered = self.state.nodes.contains_key(&sender);
        // Each handler validates everything before it changes anything.
        let events = match &tx.body {
            TxBody::Register {
                pop,
                encryption_key,
                network,
                stake,
            } => {
                if registered {
                    return Err(Rejection::AlreadyRegistered);
                }
                if *stake == 0 {
                    return Err(Rejection::ZeroAmount);
                }
                self.check_balance(&sender, *stake)?;
                if !tx.sender.verify_pop(pop) {
                    return Err(Rejection::BadProofOfPossession);
                }
                let enc = Hex(encryption_key.to_bytes());
                if self.state.nodes.values().any(|n| n.encryption_key == enc) {
                    return Err(Rejection::DuplicateEncryptionKey);
                }
                self.check_peer_id(&sender, network)?;
                self.debit(&sender, *stake);
                self.state.nodes.insert(
                    sender,
                    NodeRecord {
                        identity: sender,
                        encryption_key: enc,
                        network: network.clone(),
                        stake: *stake,
                        registered_at: height,
                        refused_posts: 0,
                    },
                );
                vec![Event::Registered {
                    identity: sender,
                    stake: *stake,
                    network: network.clone(),
                }]
            }
            TxBody::AddStake { amount } => {
                if *amount == 0 {
                    return Err(Rejection::ZeroAmount);
                }
                let node = &self.state.nodes[&sender];
                let stake = node
                    .stake
                    .checked_add(*amount)
                    .ok_or(Rejection::StakeOverflow)?;
                self.check_balance(&sender, *amount)?;
                self.debit(&sender, *amount);
                self.set_stake(&sender, stake);
                vec![Event::StakeChanged {
                    identity: sender,
                    stake,
                }]
            }
            TxBody::Unbond { amount } => {
                if *amount == 0 {
                    return Err(Rejection::ZeroAmount);
                }
                let have = self.state.nodes[&sender].stake;
                if *amount > have {
                    return Err(Rejection::InsufficientStake {
                        stake: have,
                        requested: *amount,
                    });
                }
                if self.state.is_locked(&sender) {
                    return Err(Rejection::StakeLocked);
                }
                self.set_stake(&sender, have - amount);
                let release_view = self.start_unbonding(&sender, *amount);
                vec![
                    Event::StakeChanged {
                        identity: sender,
                        stake: have - amount,
                    },
                    Event::UnbondingStarted {
                        identity: sender,
                        amount: *amount,
                        release_view,
                    },
                ]
            }
            TxBody::Deregister => {
                if self.state.is_locked(&sender) {
                    return Err(Rejection::StakeLocked);
                }
                let node = self
                    .state
                    .nodes
                    .remove(&sender)
                    .ok_or(Rejection::UnknownSender)?;
                let mut events = vec![Event::Deregistered {
                    identity: sender,
                    stake: node.stake,
                }];
                if node.stake > 0 {
                    let release_view = self.start_unbonding(&sender, node.stake);
                    events.push(Event::UnbondingStarted {
                        identity: sender,
                        amount: node.stake,
                        release_view,
                    });
                }
                events
            }
            TxBody::Transfer { to, amount } => {
                if *amount == 0 {
                    return Err(Rejection::ZeroAmount);
                }
                self.check_balance(&sender, *amount)?;
                let to = key_of(to);
                if to != sender && self.state.balance(&to).checked_add(*amount).is_none() {
                    return Err(Rejection::BalanceOverflow);
                }
                self.debit(&sender, *amount);
                self.credit(&to, *amount);
                vec![Event::Transferred {
                    from: sender,
                    to,
                    amount: *amount,
                }]
            }
            TxBody::ClaimUnbonded => {
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
                vec![Event::UnbondedClaimed {
                    identity: sender,
                    amount,
                    balance: self.state.balance(&sender),
                }]
            }
            TxBody::UpdateNetwork { network } => {
                self.check_peer_id(&sender, network)?;
                if let Some(n) = self.state.nodes.get_mut(&sender) {
                    n.network = network.clone();
                }
                vec![Event::NetworkUpdated {
                    identity: sender,
                    network: network.clone(),
                }]
            }
            TxBody::DkgPost { post } => match self.dkg_post(&tx.sender, post, height) {
                Ok(events) => events,
                // Signed by the sender's chain key, so attributable: the transaction is applied
                // as refused (nonce consumed, counted) instead of leaving no cost.
                Err(r) if r.charges_sender() => {
                    if let Some(n) = self.state.nodes.get_mut(&sender) {
                        n.refused_posts = n.refused_posts.saturating_add(1);
                    }
                    vec![Event::PostRefused {
                        identity: sender,
                        code: r.code().to_string(),
                    }]
                }
                Err(r) => return Err(r),
            },
            TxBody::MagicBlockSignature {
                view,
                block_hash,
                role,
                partial,
            } => self.magic_block_signature(&sender, *view, block_hash, *role, partial, height)?,
        };
        *self.state.nonces.entry(sender).or_insert(0) += 1;
        Ok(events)
    }

    fn check_peer_id(
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
    fn check_sender(&self, sender: &IdentityKey, body: &TxBody) -> Result<(), Rejection> {
        let known = match body {
            TxBody::Register { .. } | TxBody::Transfer { .. } | TxBody::ClaimUnbonded => {
                self.state.has_account(sender)
            }
            _ => self.state.nodes.contains_key(sender),
        };
        if known {
            Ok(())
        } else {
            Err(Rejection::UnknownSender)
        }
    }

    fn check_balance(&self, id: &IdentityKey, amount: u64) -> Result<(), Rejection> {
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
    fn debit(&mut self, id: &IdentityKey, amount: u64) {
        if let Some(b) = self.state.balances.get_mut(id) {
            *b = b.saturating_sub(amount);
            if *b == 0 {
                self.state.balances.remove(id);
            }
        }
    }

    /// Adds `amount` to a balance (no overflow: every balance is a part of the supply, which
    /// fits in a u64; callers that cannot rely on it check first).
    fn credit(&mut self, id: &IdentityKey, amount: u64) {
        if amount > 0 {
            let b = self.state.balances.entry(*id).or_insert(0);
            *b = b.saturating_add(amount);
        }
    }

    /// Moves `amount` (already taken from the stake) into unbonding until
    /// `unbonding_views` more views have been activated; returns that view.
    fn start_unbonding(&mut self, id: &IdentityKey, amount: u64) -> u64 {
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

    fn set_stake(&mut self, id: &IdentityKey, stake: u64) {
        if let Some(n) = self.state.nodes.get_mut(id) {
            n.stake = stake;
        }
    }

    /// A `DkgPost`: the contract checks that the post belongs here (phase, ceremony, author) and
    /// hands it to the board, which alone decides what it means.
    fn dkg_post(
        &mut self,
        sender: &IdentityPublicKey,
        post: &[u8],
        height: u64,
    ) -> Result<Vec<Event>, Rejection> {
        let change = self.state.change.as_ref().ok_or(Rejection::NoViewChange)?;
        if !matches!(
            change.phase,
            ViewChangePhase::Contribute | ViewChangePhase::Share | ViewChangePhase::Publish
        ) {
            return Err(Rejection::WrongPhase {
                phase: change.phase,
            });
        }
        if height > change.deadline {
            return Err(Rejection::DeadlinePassed {
                deadline: change.deadline,
            });
        }
        let (view, ceremony_number) = (change.view, change.ceremony_number);
        let live = self.live.as_mut().ok_or(Rejection::NoViewChange)?;
        let signed = authentic_post(live, sender, post)?;
        let dealer = signed.post.dealer();
        let kind = match &signed.post {
            Post::Contribution(_) => "contribution",
            Post::Publication(_) => "publication",
        };
        // The board changes only on success or on a fault of the author (documented by
        // `Board::apply`); every other refusal leaves it as it was, so it is a rejection here.
        let event = match live.board.apply(&signed) {
            Ok(()) => Event::PostAccepted {
                view,
                ceremony_number,
                dealer,
                kind: kind.to_string(),
                post: Bytes(post.to_vec()),
            },
            Err(BoardError::Fault { fault, .. }) => Event::PostRejected {
                view,
                ceremony_number,
                dealer,
                reason: fault_reason(&fault),
                post: Bytes(post.to_vec()),
            },
            Err(e) => return Err(Rejection::Board(e)),
        };
        if let Some(c) = self.state.change.as_mut() {
            c.board_log.push(BoardInput::Post {
                post: Bytes(post.to_vec()),
            });
        }
        Ok(vec![event])
    }

    fn magic_block_signature(
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
        let member = committee
            .member_by_identity(&sender.0)
            .ok_or(Rejection::NotASigner(role))?;
        if partial.index != <Group as Curve>::Scalar::from(member.index) {
            return Err(Rejection::WrongIndex);
        }
        if partials.contains_key(&member.index) {
            return Err(Rejection::DuplicatePartial);
        }
        let message = signing_message(role, block_hash);
        let share = tbls::decode_public_key::<MinPk>(&member.public_share.0)
            .map_err(|_| Rejection::BadPartialSignature)?;
        tbls::partial_verify::<MinPk>(&share, &message, partial)
            .map_err(|_| Rejection::BadPartialSignature)?;
        let threshold = committee.t as usize;
        let have = partials.len() + 1;
        let combined = if have == threshold {
            // All partials were verified on the way in; the result is verified anyway before
            // it is stored.
            let mut all = partials
                .values()
                .map(|p| PartialSignature::<MinPk>::from_bytes(&p.0))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| Rejection::CombineFailed)?;
            all.push(*partial);
            let sig =
                tbls::combine::<MinPk>(threshold, &all).map_err(|_| Rejection::CombineFailed)?;
            let key = tbls::decode_public_key::<MinPk>(&committee.group_key.0)
                .map_err(|_| Rejection::CombineFailed)?;
            tbls::verify::<MinPk>(&key, &message, &sig).map_err(|_| Rejection::CombineFailed)?;
            let mut b = [0u8; 96];
            b.copy_from_slice(&Bls12381G2::point_bytes(&sig));
            Some(Hex(b))
        } else {
            None
        };
        let index = member.index;
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

    /// Ends the block at `height`: runs every deadline that is due (phase changes, the board's
    /// publish retries, outcomes, magic block creation, view activation) and starts a view
    /// change when one is scheduled. Heights that do not increase are ignored.
    ///
    /// With [`PhaseLengths::close_early`](crate::config::PhaseLengths::close_early), a phase
    /// whose expected posts are all in ends here, at the block where the last one landed, as if
    /// its deadline were this block: the contribute, share and publish phases when the board
    /// says so ([`Board::all_posts_in`]: every dealer's contribution; every dealer's final log
    /// posted early; every dealer's log), the wait phase once the magic block has every
    /// signature it needs. Nothing a later post in the phase could do changes the outcome
    /// then, and a phase with a silent member still runs to its deadline.
    pub fn end_block(&mut self, height: u64) -> Vec<Event> {
        if let Some(last) = self.state.last_block
            && height <= last
        {
            return Vec::new();
        }
        self.state.last_block = Some(height);
        let mut events = Vec::new();
        // Each step moves a deadline or the next start strictly forward, so this terminates.
        // Steps run at their scheduled height, not at `height`, so skipped blocks give the
        // same result as empty ones.
        loop {
            match &self.state.change {
                None if self.state.next_start <= height => {
                    let at = self.state.next_start;
                    let view = self.state.current_view + 1;
                    let ceremony_number = self.state.next_ceremony_number;
                    self.start_ceremony(
                        view,
                        ceremony_number,
                        ceremony_number,
                        BTreeSet::new(),
                        at,
                        &mut events,
                    );
                }
                Some(c) if c.deadline <= height => {
                    let at = c.deadline;
                    self.on_deadline(at, &mut events);
                }
                // A phase can only complete through a transaction of this block (or through
                // the phase change just made in it), so it closes at `height`.
                Some(_) if self.config.phases.close_early && self.phase_complete() => {
                    self.on_deadline(height, &mut events);
                }
                _ => break,
            }
        }
        events
    }

    fn start_ceremony(
        &mut self,
        view: u64,
        ceremony_number: u32,
        first_ceremony_number: u32,
        banned: BTreeSet<IdentityKey>,
        at: u64,
        events: &mut Vec<Event>,
    ) {
        self.live = None;
        self.state.change = None;
        self.state.next_ceremony_number = ceremony_number + 1;
        let previous = self.state.views.get(&(view - 1)).cloned();
        let key_mode = match &previous {
            Some(_) => self.config.key_mode_for(view),
            None => KeyMode::Fresh,
        };
        let seed = previous
            .as_ref()
            .map(|p| p.seed.0)
            .unwrap_or_else(|| genesis_seed(&self.config.chain_id));
        let c = &self.config.committee;
        let candidates: Vec<(IdentityKey, u64)> = self
            .state
            .nodes
            .values()
            .filter(|n| n.stake >= c.min_stake && !banned.contains(&n.identity))
            .map(|n| (n.identity, n.stake))
            .collect();
        let previous_members: BTreeSet<IdentityKey> = previous
            .as_ref()
            .map(|p| {
                p.magic_block
                    .block
                    .members
                    .iter()
                    .map(|m| m.identity)
                    .collect()
            })
            .unwrap_or_default();
        let committee = select_committee(
            &candidates,
            &previous_members,
            &seed,
            c.max_size as usize,
            c.keep_previous_percent,
        );
        if committee.len() < c.min_size as usize {
            let reason = format!(
                "{} eligible nodes, at least {} needed",
                committee.len(),
                c.min_size
            );
            return self.abort(view, ceremony_number, at, reason, events);
        }
        let params = match self.config.params_for(committee.len()) {
            Ok(p) => p,
            Err(e) => return self.abort(view, ceremony_number, at, e.to_string(), events),
        };
        let players: Vec<SpecParticipant> = committee
            .iter()
            .map(|id| SpecParticipant {
                identity: *id,
                encryption_key: self.state.nodes[id].encryption_key,
            })
            .collect();
        let reshare = match (key_mode, &previous) {
            (KeyMode::Reshare, Some(prev)) => {
                let block = &prev.magic_block.block;
                let dealers: Vec<&MagicBlockMember> = block
                    .members
                    .iter()
                    .filter(|m| !banned.contains(&m.identity))
                    .collect();
                if dealers.len() < block.t as usize {
                    let reason = format!(
                        "{} previous members in good standing, resharing needs {}",
                        dealers.len(),
                        block.t
                    );
                    return self.abort(view, ceremony_number, at, reason, events);
                }
                Some(SpecReshare {
                    dealers: dealers
                        .iter()
                        .map(|m| SpecParticipant {
                            identity: m.identity,
                            encryption_key: m.encryption_key,
                        })
                        .collect(),
                    dealer_indices: dealers.iter().map(|m| m.index).collect(),
                    old_threshold: block.t,
                    group_key: block.group_key,
                    public_shares: dealers.iter().map(|m| m.public_share).collect(),
                })
            }
            _ => None,
        };
        let spec = CeremonySpec {
            domain: Bytes(session_domain(&self.config.chain_id, view, ceremony_number)),
            view,
            ceremony_number,
            n: params.n() as u32,
            t: params.t() as u32,
            k: params.k() as u32,
            players,
            reshare,
        };
        let ceremony = match spec.ceremony() {
            Ok(c) => c,
            Err(e) => return self.abort(view, ceremony_number, at, e.to_string(), events),
        };
        let session_id = Hex(*ceremony.id());
        let deadline = at.saturating_add(self.config.phases.contribute);
        events.push(Event::CommitteeSelected {
            view,
            ceremony_number,
            key_mode,
            session_id,
            committee: self.committee_entries(&committee),
            dealers: spec
                .reshare
                .as_ref()
                .map(|r| r.dealers.iter().map(|d| d.identity).collect())
                .unwrap_or_default(),
            spec: spec.clone(),
        });
        events.push(Event::PhaseChanged {
            view,
            ceremony_number,
            attempt: 0,
            phase: ViewChangePhase::Contribute,
            deadline,
        });
        self.live = Some(Live {
            board: Board::new(ceremony.clone()),
            ceremony,
        });
        self.state.change = Some(ViewChange {
            view,
            ceremony_number,
            first_ceremony_number,
            key_mode,
            phase: ViewChangePhase::Contribute,
            deadline,
            attempt: 0,
            started_at: at,
            seed: Hex(seed),
            session_id,
            spec,
            board_log: Vec::new(),
            banned,
            magic: None,
        });
    }

    pub(crate) fn committee_entries(&self, committee: &[IdentityKey]) -> Vec<CommitteeEntry> {
        committee
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let node = self.state.nodes.get(id);
                CommitteeEntry {
                    index: i as u64 + 1,
                    identity: *id,
                    stake: node.map(|n| n.stake).unwrap_or(0),
                    network: node.map(|n| n.network.clone()).unwrap_or(NetworkIdentity {
                        peer_id: Bytes(Vec::new()),
                        addresses: Vec::new(),
                    }),
                }
            })
            .collect()
    }

    fn abort(
        &mut self,
        view: u64,
        ceremony_number: u32,
        at: u64,
        reason: String,
        events: &mut Vec<Event>,
    ) {
        self.live = None;
        self.state.change = None;
        let retry_at = at.saturating_add(self.config.retry_delay);
        self.state.next_start = retry_at;
        events.push(Event::ViewChangeAborted {
            view,
            ceremony_number,
            reason,
            retry_at,
        });
        events.push(Event::PhaseChanged {
            view,
            ceremony_number,
            attempt: 0,
            phase: ViewChangePhase::Idle,
            deadline: retry_at,
        });
    }

    /// Whether every post the current phase expects is in (see [`Contract::end_block`]).
    fn phase_complete(&self) -> bool {
        let Some(change) = self.state.change.as_ref() else {
            return false;
        };
        match change.phase {
            ViewChangePhase::Idle => false,
            ViewChangePhase::Contribute | ViewChangePhase::Share | ViewChangePhase::Publish => {
                self.live.as_ref().is_some_and(|l| l.board.all_posts_in())
            }
            ViewChangePhase::Wait => change.magic.as_ref().is_some_and(|m| m.is_complete()),
        }
    }

    /// Ends the current phase at height `at`: its deadline, or the block where its last
    /// expected post landed.
    fn on_deadline(&mut self, at: u64, events: &mut Vec<Event>) {
        let Some(change) = self.state.change.as_ref() else {
            return;
        };
        let (view, ceremony_number, attempt, phase) = (
            change.view,
            change.ceremony_number,
            change.attempt,
            change.phase,
        );
        let phases = self.config.phases.clone();
        if phase == ViewChangePhase::Wait {
            return self.wait_deadline(at, events);
        }
        // Contribute, share or publish: one board deadline, exactly as every node sees it.
        let Some(live) = self.live.as_mut() else {
            // Cannot happen (the board exists in these phases); end the ceremony rather than
            // loop.
            return self.fail_session(at, BTreeSet::new(), "board missing".into(), events);
        };
        live.board.advance();
        let board_phase = live.board.phase();
        let board_attempt = live.board.attempt();
        let outcome = live.board.outcome().cloned();
        let named = live.board.named().to_vec();
        let failure = live.board.failure_reason();
        if let Some(c) = self.state.change.as_mut() {
            c.board_log.push(BoardInput::Deadline);
        }
        events.push(Event::BoardDeadline {
            view,
            ceremony_number,
            attempt,
        });
        let (next, length) = match (phase, board_phase) {
            (ViewChangePhase::Contribute, _) => (ViewChangePhase::Share, phases.share),
            (ViewChangePhase::Share, _) => (ViewChangePhase::Publish, phases.publish),
            (_, BoardPhase::Publish) => {
                // The attempt failed with culprits and the board retries the publish phase
                // without them, keeping every honest contribution, share and ack.
                if let Some(Outcome::Failure { exclusions, .. }) = &outcome {
                    self.record_exclusions(exclusions, &named, at, events);
                }
                (ViewChangePhase::Publish, phases.publish)
            }
            _ => {
                return match outcome {
                    Some(Outcome::Success { exclusions, .. }) => {
                        self.record_exclusions(&exclusions, &named, at, events);
                        self.create_magic_block(at, &exclusions, events)
                    }
                    Some(Outcome::Failure {
                        qualified,
                        exclusions,
                        ..
                    }) => {
                        self.record_exclusions(&exclusions, &named, at, events);
                        let culprits = penalised(&exclusions);
                        let reason = match failure {
                            Some(r) => r.to_string(),
                            None => format!("{} dealers qualified", qualified.len()),
                        };
                        self.fail_session(at, culprits, reason, events)
                    }
                    None => self.fail_session(at, BTreeSet::new(), "no outcome".into(), events),
                };
            }
        };
        let deadline = at.saturating_add(length);
        if let Some(c) = self.state.change.as_mut() {
            c.phase = next;
            c.deadline = deadline;
            c.attempt = board_attempt;
        }
        events.push(Event::PhaseChanged {
            view,
            ceremony_number,
            attempt: board_attempt,
            phase: next,
            deadline,
        });
    }

    /// Records the board's exclusions and names after an attempt. Faults with a penalty
    /// become slashing records, once per node, role and ceremony; faults without one
    /// ([`Penalty::None`]: a dealer whose players did not ack it, players reported for
    /// missing acks) become [`NamedRecord`]s and cost nothing.
    fn record_exclusions(
        &mut self,
        exclusions: &[Exclusion],
        named: &[Exclusion],
        at: u64,
        events: &mut Vec<Event>,
    ) {
        let Some(change) = self.state.change.as_ref() else {
            return;
        };
        let (view, ceremony_number, attempt) =
            (change.view, change.ceremony_number, change.attempt);
        for e in exclusions.iter().chain(named) {
            let role = match e.role {
                Role::Dealer => FaultRole::Dealer,
                Role::Player => FaultRole::Player,
            };
            let attempt = match &e.evidence {
                Evidence::Absence { attempt, .. } => *attempt,
                _ => attempt,
            };
            let penalty = e.fault.penalty();
            if penalty == Penalty::None {
                self.record_named(
                    NamedRecord {
                        height: at,
                        view,
                        ceremony_number,
                        attempt,
                        identity: key_of(&e.identity),
                        role,
                        fault: fault_name(&e.fault),
                        detail: e.fault.to_string(),
                        evidence: evidence_record(&e.evidence),
                    },
                    events,
                );
                continue;
            }
            self.record_fault(
                FaultInfo {
                    view,
                    ceremony_number,
                    attempt,
                    identity: key_of(&e.identity),
                    role,
                    fault: fault_name(&e.fault),
                    detail: e.fault.to_string(),
                    misbehaviour: penalty == Penalty::Misbehaviour,
                    evidence: evidence_record(&e.evidence),
                },
                at,
                events,
            );
        }
    }

    /// Stores a name once per node, role, fault and attempt.
    fn record_named(&mut self, record: NamedRecord, events: &mut Vec<Event>) {
        if self.state.named.iter().any(|r| {
            r.view == record.view
                && r.ceremony_number == record.ceremony_number
                && r.attempt == record.attempt
                && r.role == record.role
                && r.identity == record.identity
                && r.fault == record.fault
        }) {
            return;
        }
        self.state.named.push(record.clone());
        events.push(Event::Named { record });
    }

    fn record_fault(&mut self, f: FaultInfo, at: u64, events: &mut Vec<Event>) {
        if self.state.slashings.iter().any(|r| {
            r.view == f.view
                && r.ceremony_number == f.ceremony_number
                && r.role == f.role
                && r.identity == f.identity
        }) {
            return;
        }
        let percent = if f.misbehaviour {
            self.config.slashing.misbehaviour_percent
        } else {
            self.config.slashing.absence_percent
        };
        let stake = self
            .state
            .nodes
            .get(&f.identity)
            .map(|n| n.stake)
            .unwrap_or(0);
        let amount = (stake as u128 * percent as u128 / 100) as u64;
        self.set_stake(&f.identity, stake - amount);
        let reporter = self.reporter(&f);
        let (reporter_reward, burned) = self.settle_slash(amount, reporter.as_ref());
        let record = SlashingRecord {
            height: at,
            view: f.view,
            ceremony_number: f.ceremony_number,
            attempt: f.attempt,
            identity: f.identity,
            role: f.role,
            fault: f.fault,
            detail: f.detail,
            misbehaviour: f.misbehaviour,
            evidence: f.evidence,
            amount,
            stake_after: stake - amount,
            reporter,
            reporter_reward,
            burned,
        };
        self.state.slashings.push(record.clone());
        events.push(Event::Slashed { record });
    }

    /// Disposes of `amount` just taken from a stake: `reporter_percent` of it to the reporter's
    /// balance if there is one, the rest burned. Returns (reward, burned); they add up to
    /// `amount`, so the supply is conserved.
    fn settle_slash(&mut self, amount: u64, reporter: Option<&IdentityKey>) -> (u64, u64) {
        let reward = match reporter {
            Some(r) => {
                let reward =
                    (amount as u128 * self.config.slashing.reporter_percent as u128 / 100) as u64;
                self.credit(r, reward);
                reward
            }
            None => 0,
        };
        let burned = amount - reward;
        self.state.burned = self.state.burned.saturating_add(burned);
        (reward, burned)
    }

    /// The account whose transaction carried a fault's evidence, when it is not the culprit:
    /// posts reach the chain only in their author's own `DkgPost`, so that is the author of the
    /// last evidence post (the one that completed the evidence). Absence and missing signatures
    /// have no carrier. `None` means the whole slashed amount is burned.
    fn reporter(&self, f: &FaultInfo) -> Option<IdentityKey> {
        let posts = match &f.evidence {
            EvidenceRecord::SignedPosts { posts } | EvidenceRecord::Reports { posts } => posts,
            EvidenceRecord::Absence { .. } | EvidenceRecord::MissingSignature { .. } => {
                return None;
            }
        };
        let ceremony = &self.live.as_ref()?.ceremony;
        let last = SignedPost::<Group>::decode(&posts.last()?.0, ceremony.n()).ok()?;
        let author = key_of(
            &ceremony
                .dealers()
                .get(last.post.dealer() as usize)?
                .identity,
        );
        (author != f.identity).then_some(author)
    }

    /// A ceremony failed: its culprits are banned from the rest of this view change and a new
    /// ceremony starts at once (without going back to a full restart), or, after the configured
    /// number of ceremonies, the view change is abandoned until `retry_delay` later.
    fn fail_session(
        &mut self,
        at: u64,
        culprits: BTreeSet<IdentityKey>,
        reason: String,
        events: &mut Vec<Event>,
    ) {
        let Some(change) = self.state.change.take() else {
            return;
        };
        self.live = None;
        let next = change.ceremony_number + 1;
        let more = next - change.first_ceremony_number < self.config.max_ceremonies_per_view;
        events.push(Event::CeremonyFailed {
            view: change.view,
            ceremony_number: change.ceremony_number,
            reason: reason.clone(),
            culprits: culprits.iter().copied().collect(),
            next_ceremony_number: more.then_some(next),
        });
        if more {
            let mut banned = change.banned;
            banned.extend(culprits);
            self.start_ceremony(
                change.view,
                next,
                change.first_ceremony_number,
                banned,
                at,
                events,
            );
        } else {
            self.abort(change.view, change.ceremony_number, at, reason, events);
        }
    }

    fn create_magic_block(&mut self, at: u64, exclusions: &[Exclusion], events: &mut Vec<Event>) {
        let (Some(change), Some(live)) = (self.state.change.as_ref(), self.live.as_ref()) else {
            return;
        };
        let previous_hash = self
            .state
            .views
            .get(&(change.view - 1))
            .map(|v| v.magic_block.hash.0)
            .unwrap_or_default();
        let deadline = at.saturating_add(self.config.phases.wait);
        let place = MagicBlockPlace {
            chain_id: self.config.chain_id.clone(),
            view: change.view,
            ceremony_number: change.ceremony_number,
            key_mode: change.key_mode,
            previous_hash,
            first_round: deadline.saturating_add(1),
        };
        // The same construction every node repeats from its own board before it signs.
        let nodes = &self.state.nodes;
        let block = match MagicBlock::from_board(&place, &live.board, |id| {
            nodes.get(id).map(|n| n.network.clone())
        }) {
            Ok(b) => b,
            Err(e) => return self.fail_session(at, penalised(exclusions), e.to_string(), events),
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
    fn wait_deadline(&mut self, at: u64, events: &mut Vec<Event>) {
        let Some(change) = self.state.change.as_ref() else {
            return;
        };
        let Some(pending) = change.magic.clone() else {
            return self.fail_session(at, BTreeSet::new(), "no magic block".into(), events);
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
                },
                at,
                events,
            );
        }
        self.fail_session(
            at,
            culprits,
            "magic block not signed by the deadline".into(),
            events,
        );
    }
}

struct FaultInfo {
    view: u64,
    ceremony_number: u32,
    attempt: u32,
    identity: IdentityKey,
    role: FaultRole,
    fault: String,
    detail: String,
    misbehaviour: bool,
    evidence: EvidenceRecord,
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyquorum_dkg::identity::IdentityKeypair;

    #[test]
    fn a_slash_is_burned_or_split_with_the_reporter() {
        let culprit = IdentityKeypair::from_seed(&[1; 32]).unwrap();
        let reporter = IdentityKeypair::from_seed(&[2; 32]).unwrap();
        let mut config = ContractConfig::defaults("c", 4)
            .fund(culprit.public(), 1000)
            .fund(reporter.public(), 5);
        config.slashing.reporter_percent = 30;
        let mut c = Contract::new(config).unwrap();
        let (culprit, reporter) = (key_of(culprit.public()), key_of(reporter.public()));
        // 107 of its 1000 were locked as stake and taken by two slashes (as record_fault does
        // before settling them).
        c.state.balances.insert(culprit, 893);
        c.state.nodes.insert(
            culprit,
            NodeRecord {
                identity: culprit,
                encryption_key: Hex([9; 32]),
                network: NetworkIdentity {
                    peer_id: Bytes(vec![1]),
                    addresses: Vec::new(),
                },
                stake: 0,
                registered_at: 1,
                refused_posts: 0,
            },
        );
        assert_eq!(c.settle_slash(100, Some(&reporter)), (30, 70));
        assert_eq!(c.state.balance(&reporter), 35);
        assert_eq!(c.state.burned, 70);
        // Without a reporter everything is burned.
        assert_eq!(c.settle_slash(7, None), (0, 7));
        assert_eq!(c.state.burned, 77);
        assert_eq!(c.state.supply().total(), c.config.total_supply());
    }

    #[test]
    fn stored_names_come_from_explicit_codes() {
        for fault in [
            FaultKind::BadAckSignature,
            FaultKind::CommitmentSize {
                expected: 5,
                actual: 3,
            },
            FaultKind::IncompletePublication { missing: 3 },
            FaultKind::WithheldAck {
                reports: 1,
                revealed: 1,
            },
        ] {
            assert_eq!(fault_name(&fault), fault.code());
            assert_eq!(fault_reason(&fault), format!("{}: {fault}", fault.code()));
        }
        assert_eq!(fault_name(&FaultKind::Equivocation), "equivocation");
        for (phase, name) in [
            (BoardPhase::Contribute, "contribute"),
            (BoardPhase::Share, "share"),
            (BoardPhase::Publish, "publish"),
            (BoardPhase::Done, "done"),
        ] {
            assert_eq!(
                evidence_record(&Evidence::Absence { phase, attempt: 1 }),
                EvidenceRecord::Absence {
                    phase: name.into(),
                    attempt: 1
                }
            );
        }
        assert_eq!(
            [
                FaultRole::Dealer,
                FaultRole::Player,
                FaultRole::Signer,
                FaultRole::PreviousSigner
            ]
            .map(|r| (r.as_str(), serde_json::to_string(&r).unwrap())),
            [
                ("dealer", "\"dealer\"".to_string()),
                ("player", "\"player\"".to_string()),
                ("signer", "\"signer\"".to_string()),
                ("previous_signer", "\"previous_signer\"".to_string())
            ]
        );
    }
}
