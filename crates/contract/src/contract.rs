//! The state machine: transactions and block ends in, state changes and events out.
//!
//! This file holds the contract's entry points ([`Contract::check_tx`],
//! [`Contract::apply_transaction`], [`Contract::end_block`]) and their dispatch; the rules live
//! in one file per concern:
//! - `registry`: accounts, balances, registration, bonding and unbonding;
//! - `ceremonies`: committee selection, phases and deadlines, posts, failed ceremonies;
//! - `slashing`: exclusions and their evidence, penalties and the reporter's share;
//! - `magic_blocks`: the next view's magic block, its signatures and the view's activation.

mod ceremonies;
mod magic_blocks;
mod registry;
mod signing_keys;
mod slashing;

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::sync::Arc;

use keyquorum_crypto::Bls12381G1;
use keyquorum_dkg::Ceremony;
use keyquorum_dkg::Variant;
use keyquorum_dkg::board::{Board, Outcome};
use keyquorum_dkg::complaint::ComplaintBoard;
use keyquorum_dkg::complaint::messages::SignedComplaintPost;
use keyquorum_dkg::identity::{self, IdentityPublicKey};
use keyquorum_dkg::messages::SignedPost;
use keyquorum_dkg::preverify::preverify_posts;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::config::{ConfigError, ContractConfig};
use crate::error::Rejection;
use crate::events::Event;
use crate::hex::Hex;
use crate::state::{
    BoardInput, ContractState, IdentityKey, SpecError, ViewChangePhase, ViewRecord,
};
use crate::tx::{Transaction, TxBody, max_tx_len_for, tx_hash};

use ceremonies::authentic_post;
pub use slashing::fault_name;

/// The curve of the group keys: commitments and public keys in G1, signatures in G2 (MinPk).
pub type Group = Bls12381G1;

/// Most nonces beyond the next one that [`Contract::check_tx`] admits, so a node can queue a
/// few transactions in a mempool; [`Contract::apply_tx`] takes nonces strictly in order.
pub const MAX_NONCE_GAP: u64 = 64;

/// The running ceremony, derived from the state (spec and board log).
#[derive(Clone)]
struct Live {
    ceremony: Arc<Ceremony<Group>>,
    board: LiveBoard,
}

/// The running ceremony's board, of the variant its spec names: the same board code every node
/// runs for its replica.
#[derive(Clone)]
enum LiveBoard {
    AckReveal(Box<Board<Group>>),
    Complaint(Box<ComplaintBoard<Group>>),
}

impl LiveBoard {
    fn new(ceremony: &Arc<Ceremony<Group>>) -> Self {
        match ceremony.config().variant {
            Variant::AckReveal => LiveBoard::AckReveal(Box::new(Board::new(ceremony.clone()))),
            Variant::Complaint => {
                LiveBoard::Complaint(Box::new(ComplaintBoard::new(ceremony.clone())))
            }
        }
    }

    /// Applies a logged input again (restoring from a saved state).
    fn replay(
        &mut self,
        input: &BoardInput,
        ceremony: &Ceremony<Group>,
    ) -> Result<(), RestoreError> {
        // Logged posts were accepted or refused as faults; replay gives the same result, which
        // the board records either way.
        match (self, input) {
            (LiveBoard::AckReveal(board), BoardInput::Post { post }) => {
                let signed = SignedPost::<Group>::decode(&post.0, ceremony.n())
                    .map_err(|_| RestoreError::BoardLog)?;
                let _ = board.apply(&signed);
            }
            (LiveBoard::Complaint(board), BoardInput::Post { post }) => {
                let signed = SignedComplaintPost::<Group>::decode(
                    &post.0,
                    ceremony.n(),
                    ceremony.dealer_count(),
                )
                .map_err(|_| RestoreError::BoardLog)?;
                let _ = board.apply(&signed);
            }
            (b, BoardInput::Deadline) => b.advance(),
        }
        Ok(())
    }

    fn advance(&mut self) {
        match self {
            LiveBoard::AckReveal(b) => b.advance(),
            LiveBoard::Complaint(b) => b.advance(),
        }
    }

    fn outcome(&self) -> Option<&Outcome<Group>> {
        match self {
            LiveBoard::AckReveal(b) => b.outcome(),
            LiveBoard::Complaint(b) => b.outcome(),
        }
    }
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
    /// The running signing-key ceremony's board, derived from `state.signing`.
    signing_live: Option<signing_keys::SigningLive>,
    max_tx_len: usize,
    /// Transactions of the block being applied whose signatures [`Contract::prepare_block`]
    /// verified in one batch, by [`presigned_key`]; emptied at the end of every block.
    presigned: HashSet<[u8; 32]>,
}

/// What identifies a transaction's signature check: the sender, the signed digest and the
/// signature.
fn presigned_key(tx: &Transaction, digest: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"keyquorum/presigned-tx/v1");
    h.update(tx.sender.as_bytes());
    h.update(digest);
    h.update(tx.signature.0);
    h.finalize().into()
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

fn key_of(id: &IdentityPublicKey) -> IdentityKey {
    Hex(id.to_bytes())
}

impl Contract {
    /// A contract at genesis.
    pub fn new(config: ContractConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let state = ContractState::genesis(&config);
        Ok(Contract {
            max_tx_len: max_tx_len_for(
                config.committee.max_size as usize,
                config.dkg.variant,
                config.dkg.signing_key.is_some(),
            ),
            config,
            state,
            live: None,
            signing_live: None,
            presigned: HashSet::new(),
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
            let mut board = LiveBoard::new(&ceremony);
            for input in &c.board_log {
                board.replay(input, &ceremony)?;
            }
            live = Some(Live { ceremony, board });
        }
        let signing_live = match &state.signing {
            Some(run) => Some(signing_keys::SigningLive::restore(run)?),
            None => None,
        };
        Ok(Contract {
            max_tx_len: max_tx_len_for(
                config.committee.max_size as usize,
                config.dkg.variant,
                config.dkg.signing_key.is_some(),
            ),
            config,
            state,
            live,
            signing_live,
            presigned: HashSet::new(),
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

    /// The running ceremony's board, when it runs the ack-or-reveal variant.
    pub fn board(&self) -> Option<&Board<Group>> {
        match &self.live.as_ref()?.board {
            LiveBoard::AckReveal(b) => Some(b),
            LiveBoard::Complaint(_) => None,
        }
    }

    /// The running ceremony's board, when it runs the complaint variant.
    pub fn complaint_board(&self) -> Option<&ComplaintBoard<Group>> {
        match &self.live.as_ref()?.board {
            LiveBoard::Complaint(b) => Some(b),
            LiveBoard::AckReveal(_) => None,
        }
    }

    /// The running signing-key ceremony's board ([`crate::signing_key`]).
    pub fn signing_board(&self) -> Option<&ComplaintBoard<crate::signing_key::SigningCurve>> {
        self.signing_live.as_ref().map(|l| &l.board)
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
            TxBody::SigningKeyPost { post } => {
                let live = self
                    .signing_live
                    .as_ref()
                    .ok_or(Rejection::NoSigningKeyCeremony)?;
                live.authentic(&tx.sender, post)?;
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
        let digest = tx.signed_digest(&self.config.chain_id);
        if !self.presigned.contains(&presigned_key(tx, &digest))
            && !tx.sender.verify_digest(&digest, &tx.signature)
        {
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
        // Each handler validates everything before it changes anything.
        let events = match &tx.body {
            TxBody::Register {
                pop,
                encryption_key,
                network,
                stake,
            } => self.register(&tx.sender, pop, encryption_key, network, *stake, height)?,
            TxBody::AddStake { amount } => self.add_stake(sender, *amount)?,
            TxBody::Unbond { amount } => self.unbond(sender, *amount)?,
            TxBody::Deregister => self.deregister(sender)?,
            TxBody::CancelLeave => self.cancel_leave(sender)?,
            TxBody::Transfer { to, amount } => self.transfer(sender, to, *amount)?,
            TxBody::ClaimUnbonded => self.claim_unbonded(sender)?,
            TxBody::UpdateNetwork { network } => self.update_network(sender, network)?,
            TxBody::SetVerifiableKey { key } => self.set_verifiable_key(sender, key)?,
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
            TxBody::SigningKeyPost { post } => self.signing_key_post(&tx.sender, post, height)?,
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

    /// Verifies the signatures of a block's transactions before they are applied, in batches:
    /// the transactions' own (one multi-pairing, [`identity::verify_batch`]) and the board
    /// posts' of the running ack-or-reveal ceremony (with their aggregate acks, into the
    /// ceremony's check cache, [`preverify_posts`]). Applying the transactions then finds the
    /// answers instead of verifying one signature at a time. Nothing else changes, and what
    /// [`Contract::apply_tx`] answers is the same with or without it: a batch that fails
    /// records nothing (each transaction is then checked alone), and a post's cached answer is
    /// the board's own per-item answer.
    pub fn prepare_block(&mut self, txs: &[&[u8]]) {
        self.presigned.clear();
        let decoded: Vec<Transaction> = txs
            .iter()
            .filter_map(|b| Transaction::decode(b, self.max_tx_len).ok())
            .collect();
        let digests: Vec<[u8; 32]> = decoded
            .iter()
            .map(|t| t.signed_digest(&self.config.chain_id))
            .collect();
        let items: Vec<_> = decoded
            .iter()
            .zip(&digests)
            .map(|(t, d)| (&t.sender, *d, &t.signature))
            .collect();
        if identity::verify_batch(&items) {
            for (t, d) in decoded.iter().zip(&digests) {
                self.presigned.insert(presigned_key(t, d));
            }
        }
        if let Some(Live {
            ceremony,
            board: LiveBoard::AckReveal(_),
        }) = &self.live
        {
            let n = ceremony.n();
            let posts: Vec<SignedPost<Group>> = decoded
                .iter()
                .filter_map(|t| match &t.body {
                    TxBody::DkgPost { post } => SignedPost::decode(post, n).ok(),
                    _ => None,
                })
                .collect();
            if !posts.is_empty() {
                let refs: Vec<&SignedPost<Group>> = posts.iter().collect();
                preverify_posts(ceremony, &refs);
            }
        }
    }

    /// Ends the block at `height`: runs every deadline that is due (phase changes, the board's
    /// publish retries, outcomes, magic block creation, view activation) and starts a view
    /// change when one is scheduled. Heights that do not increase are ignored.
    ///
    /// With [`PhaseLengths::close_early`](crate::config::PhaseLengths::close_early), a phase
    /// whose expected posts are all in ends here, at the block where the last one landed, as if
    /// its deadline were this block: the contribute, share and publish phases when the board
    /// says so (ack-or-reveal, [`Board::all_posts_in`]: every dealer's contribution; every
    /// dealer's final log posted early; every dealer's log; the complaint variant and the
    /// signing-key ceremony, [`ComplaintBoard::all_posts_in`]: every player's report, in the
    /// deal phase (a player reports as soon as every deal verified) and the report phase,
    /// every justification owed, every qualified dealer's Feldman values, every qualified
    /// player's complaint (empty for none) and reconstruction post), the wait phase once the
    /// magic block has every signature it needs. Nothing a later post in the phase could do
    /// changes the outcome then, and a phase with a silent member runs to its deadline, and so
    /// does the complaint variant's dispute phase (posts come only from players whose check of
    /// a pair sent again failed).
    pub fn end_block(&mut self, height: u64) -> Vec<Event> {
        self.presigned.clear();
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
        // The signing-key ceremony runs beside view changes, on its own deadlines, and closes
        // a phase early as a view's ceremony does. Each step advances its board by a phase
        // (towards done, when the run ends), so this terminates.
        while let Some(run) = &self.state.signing {
            let at = if run.deadline <= height {
                run.deadline
            } else if self.config.phases.close_early && self.signing_phase_complete() {
                height
            } else {
                break;
            };
            self.signing_key_deadline(at, &mut events);
        }
        self.complete_leaves(&mut events);
        events
    }
}
