//! The coordinator's logs as the node's chain events: [`Translator`] turns the follower's
//! [`BoardInput`]s into the [`keyquorum_contract::Event`]s the embedded chain's contract
//! publishes, so the node's event follower (`keyquorum_contract::follow`) and driver take part in
//! ceremonies coordinated by the Solidity contract exactly as by the Rust one.
//!
//! The Solidity contract keeps only what it must (post hashes, the committee, the phase ends)
//! and leaves the board to the nodes. So the translator keeps a replica of each ceremony's board,
//! with the same Rust board code every node runs:
//! - a `PostAccepted` log is applied to it: accepted, it is `PostAccepted`; refused as a fault
//!   of its author (a bad signature, a malformed commitment), it is `PostRejected`, because it
//!   changed the board all the same; refused for any other reason, it never reached the board
//!   (the contract's own checks let through only what the board may refuse) and is dropped.
//!   A fault the contract can check (a forged ack aggregate, a bad reveal) also gets its proof
//!   ([`crate::proofs`]), which the node submits ([`Translator::fault_proof`]) when its turn
//!   comes ([`crate::stagger`], [`Translator::proof_turn`]);
//! - the end of the contribute, share and publish phases (by block number) is `BoardDeadline`;
//! - after the publish deadline, a successful board gives `MagicBlockCreated` with the magic
//!   block built by `MagicBlock::from_board`, the same construction the Rust contract and every
//!   signer repeats; a failed one gives `CeremonyFailed` naming its culprits.
//!
//! The committee and spec of `CommitteeSelected` come from the registrations the translator has
//! seen (identity, encryption key, network identity by account), its domain from the
//! [`Deployment`] (chain id, contract address, chain name); a spec that does not build the
//! ceremony whose session id the contract computed is refused by the node's follower, so a
//! wrong deployment or a missed registration cannot make a node take part in another ceremony.
//!
//! A reshare (`CommitteeSelected.keyMode` 2) is dealt by the active view's members in its magic
//! block's order, with their indices and public key shares: the translator takes them from the
//! block its own board replica defined and saw activated (same hash), as the contract took its
//! reshare digest from that block's bytes. A translator that did not define the active block
//! (it followed from a later block, or its replica disagreed) follows no reshare of it, and
//! logs a warning saying so.

use std::collections::{HashMap, VecDeque};

use alloy_primitives::{Address, U256};
use keyquorum_contract::hex::{Bytes as HexBytes, Hex};
use keyquorum_contract::magic::MagicBlockPlace;
use keyquorum_contract::state::{CeremonySpec, SpecParticipant, SpecReshare};
use keyquorum_contract::{
    CommitteeEntry, Event, KeyMode, MagicBlock, NetworkIdentity, ViewChangePhase,
};
use keyquorum_crypto::Bls12381G1;
use keyquorum_dkg::board::{Board, BoardError, Outcome};
use keyquorum_dkg::messages::{Post, SignedPost};

use crate::Deployment;
use crate::client::{BoardInput, ConfirmedBlock, Phase};
use crate::proofs::{FaultProof, ProofContext, fault_proof};
use crate::stagger::{ActivationSchedule, Held, ProofSchedule, Turn, activation_turn, proof_turn};

/// Most fraud proofs kept for sending (a few ceremonies' worth: each names a dealer once).
const MAX_PROOFS: usize = 1_024;

/// The fraud proofs the board replicas built, by the refused post's hash, at most
/// [`MAX_PROOFS`]: a proof is marked settled once its culprit is slashed in its ceremony, and
/// when the cache is full the oldest proof makes room for the new one. A node sends a proof
/// within a few turns of seeing the refused post, so the oldest is the one least likely still
/// wanted; a proof the contract refused is never settled by a `Slashed` log, and without this
/// eviction enough of them would keep every later proof out.
#[derive(Debug, Default)]
struct ProofCache {
    proofs: HashMap<[u8; 32], CachedProof>,
    /// Keys in insertion order, oldest first; exactly the keys of `proofs`.
    order: VecDeque<[u8; 32]>,
}

/// A proof with its turns, and whether a `Slashed` log settled it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CachedProof {
    proof: FaultProof,
    schedule: ProofSchedule,
    settled: bool,
}

impl ProofCache {
    fn get(&self, key: &[u8; 32]) -> Option<&CachedProof> {
        self.proofs.get(key)
    }

    fn insert(&mut self, key: [u8; 32], proof: FaultProof, schedule: ProofSchedule) {
        if self.proofs.contains_key(&key) {
            return;
        }
        while self.proofs.len() >= MAX_PROOFS {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.proofs.remove(&oldest);
        }
        self.order.push_back(key);
        self.proofs.insert(
            key,
            CachedProof {
                proof,
                schedule,
                settled: false,
            },
        );
    }

    /// Marks the proofs against `culprit` in `ceremony` settled: it is slashed there.
    fn settle(&mut self, ceremony: U256, culprit: Address) {
        for p in self.proofs.values_mut() {
            if p.proof.ceremony == ceremony && p.proof.culprit == culprit {
                p.settled = true;
            }
        }
    }
}

/// A registered node as its `Registered` log names it.
#[derive(Debug, Clone)]
struct Registration {
    identity: [u8; 96],
    encryption_key: [u8; 32],
    network: NetworkIdentity,
    stake: u64,
}

/// `ViewChangeAbandoned.reason` (contracts/src/Coordinator.sol, `_abandon`): fewer dealers of
/// the active view in good standing than its threshold, for a reshare.
const ABANDONED_TOO_FEW_DEALERS: u8 = 1;
/// `ViewChangeAbandoned.reason`: fewer candidates than `minSize`.
const ABANDONED_TOO_FEW_CANDIDATES: u8 = 2;

/// The ceremony running on chain, with its board replica.
struct Live {
    id: U256,
    /// The session id the contract computed (the DKG's ceremony id).
    session: [u8; 32],
    view: u64,
    ceremony_number: u32,
    n: u32,
    wait_end: u64,
    /// The last block of the contribute, share and publish phases.
    ends: [u64; 3],
    board: Option<Board<Bls12381G1>>,
    /// The committee's identity keys, in seat order.
    identities: Vec<[u8; 96]>,
    /// The dealers' accounts by dealer position: the committee in seat order, or for a reshare
    /// the active view's members in their magic block's order.
    dealers: Vec<Address>,
    key_mode: KeyMode,
    /// The contributions the board accepted, by dealer, as logged (a bad reveal's proof names
    /// the dealer's contribution).
    contributions: HashMap<u32, Vec<u8>>,
}

/// The magic block the live ceremony's board defines, with what activating it takes besides
/// the signatures.
#[derive(Debug, Clone)]
pub struct CreatedBlock {
    /// The block.
    pub block: MagicBlock,
    /// Its hash.
    pub hash: [u8; 32],
    /// The dealers the board qualified (0-based, ascending), whose contributions add up to the
    /// group key.
    pub qualified: Vec<u32>,
}

/// Turns the coordinator's board inputs into the node's chain events; see the module docs.
pub struct Translator {
    deployment: Deployment,
    nodes: HashMap<Address, Registration>,
    live: Option<Live>,
    /// The active view's magic block hash (the next block's `previous_hash`).
    magic_block_hash: [u8; 32],
    /// The active view's magic block, the one this translator's board replica defined and the
    /// contract activated (same hash): a reshare's dealers, their keys and shares. `None` if the
    /// activated block is not the replica's, so no reshare of it is followed.
    active: Option<MagicBlock>,
    /// The live ceremony's magic block, once its board defines one.
    created: Option<CreatedBlock>,
    /// The fraud proofs of the faults the board replicas found ([`ProofCache`]).
    proofs: ProofCache,
    /// The block whose inputs are being translated ([`Translator::translate_block`]).
    block: u64,
}

impl std::fmt::Debug for Translator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Translator")
            .field("deployment", &self.deployment)
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

fn stake_u64(stake: U256) -> u64 {
    u64::try_from(stake).unwrap_or(u64::MAX)
}

impl Translator {
    /// A translator for the contract `deployment`, fed from its deployment block on.
    pub fn new(deployment: Deployment) -> Self {
        Translator {
            deployment,
            nodes: HashMap::new(),
            live: None,
            magic_block_hash: [0; 32],
            active: None,
            created: None,
            proofs: ProofCache::default(),
            block: 0,
        }
    }

    /// The proof of the fault the board found in `post` (a post this translator turned into
    /// `PostRejected`), while the contract can still take it: `None` when the fault has no
    /// proof on the contract or the culprit was slashed in that ceremony already.
    pub fn fault_proof(&self, post: &[u8]) -> Option<&FaultProof> {
        self.proofs
            .get(&proof_key(post))
            .filter(|p| !p.settled)
            .map(|p| &p.proof)
    }

    /// Whether `me` sends the proof of the fault in `post` now that block `confirmed` is
    /// confirmed, following `confirmations` blocks behind the head, with `clock`
    /// ([`crate::stagger`]): `None`
    /// when this translator holds no proof of that post (no fault the contract can check, or
    /// the proof made room for newer ones).
    pub fn proof_turn(
        &self,
        post: &[u8],
        me: Address,
        confirmed: u64,
        confirmations: u64,
        clock: Held,
    ) -> Option<Turn> {
        let p = self.proofs.get(&proof_key(post))?;
        Some(proof_turn(
            &p.schedule,
            me,
            p.settled,
            confirmed,
            confirmations,
            clock,
        ))
    }

    /// Whether `me` sends the activation of the magic block `block_hash`, whose signatures it
    /// held at confirmed block `collected_at`, now that block `confirmed` is confirmed, with
    /// `clock` ([`crate::stagger`]): settled once this translator saw the
    /// block's view activated, too late once its ceremony's wait deadline is past; `None` when
    /// the block is neither active nor the last one a board replica defined.
    pub fn activation_turn(
        &self,
        block_hash: &[u8; 32],
        me: Address,
        collected_at: u64,
        confirmed: u64,
        confirmations: u64,
        clock: Held,
    ) -> Option<Turn> {
        if &self.magic_block_hash == block_hash {
            return Some(Turn::Settled);
        }
        let created = self.created(block_hash)?;
        let schedule = ActivationSchedule {
            block_hash: *block_hash,
            activators: self.member_accounts(&created.block),
            collected_at,
            // The translator's blocks start their view in the block after the wait deadline.
            last_block: created.block.first_round.saturating_sub(1),
        };
        Some(activation_turn(
            &schedule,
            me,
            false,
            confirmed,
            confirmations,
            clock,
        ))
    }

    /// The events of a confirmed block's inputs, in order; the block's number is when the
    /// faults it carries were found ([`ProofSchedule::found_at`]).
    pub fn translate_block(&mut self, block: ConfirmedBlock) -> Vec<Event> {
        self.block = block.number;
        block
            .inputs
            .into_iter()
            .flat_map(|i| self.translate(i))
            .collect()
    }

    /// The magic block with hash `hash`, if it is the one the live ceremony's board defines.
    pub fn created(&self, hash: &[u8; 32]) -> Option<&CreatedBlock> {
        self.created.as_ref().filter(|c| &c.hash == hash)
    }

    /// Who starts a view change first ([`crate::stagger::start_turn`]): the accounts of the
    /// active view's members, as this translator's replica defined them, or every registered
    /// account before the first view (or when the active block is not the replica's).
    pub fn starters(&self) -> Vec<Address> {
        match &self.active {
            Some(block) => self.member_accounts(block),
            None => self.nodes.keys().copied().collect(),
        }
    }

    /// The registered accounts of `block`'s members, in its order (a member whose
    /// registration this translator has not seen is left out).
    fn member_accounts(&self, block: &MagicBlock) -> Vec<Address> {
        // Asked at every block and, while an activation is held, every tenth of a second: one
        // pass over the registrations rather than one per member.
        let by_identity: HashMap<&[u8; 96], Address> =
            self.nodes.iter().map(|(a, r)| (&r.identity, *a)).collect();
        block
            .members
            .iter()
            .filter_map(|m| by_identity.get(&m.identity.0).copied())
            .collect()
    }

    /// Every registered account with its identity key.
    pub fn registered(&self) -> Vec<(Address, [u8; 96])> {
        self.nodes.iter().map(|(a, r)| (*a, r.identity)).collect()
    }

    /// The chain name the contract binds ceremonies and magic blocks to.
    pub fn chain_name(&self) -> &str {
        &self.deployment.chain_name
    }

    /// The account that registered `identity`, if one did.
    fn account_of(&self, identity: &[u8; 96]) -> Option<Address> {
        self.nodes
            .iter()
            .find(|(_, r)| &r.identity == identity)
            .map(|(a, _)| *a)
    }

    /// The identity an account registered, if it did.
    pub fn identity_of(&self, account: &Address) -> Option<[u8; 96]> {
        self.nodes.get(account).map(|r| r.identity)
    }

    /// The events of one input, in order. A fault's proof found here counts as found in the
    /// block last given to [`Translator::translate_block`] (0 before any).
    pub fn translate(&mut self, input: BoardInput) -> Vec<Event> {
        match input {
            BoardInput::Registered(r) => {
                let Ok(identity) = <[u8; 96]>::try_from(r.identity.as_ref()) else {
                    // The contract checked the key against its point: cannot happen.
                    return Vec::new();
                };
                let network = NetworkIdentity {
                    peer_id: HexBytes(r.peerId.to_vec()),
                    addresses: r.addresses.clone(),
                };
                let reg = Registration {
                    identity,
                    encryption_key: r.encryptionKey.0,
                    network: network.clone(),
                    stake: stake_u64(r.stake),
                };
                self.nodes.insert(r.account, reg);
                vec![Event::Registered {
                    identity: Hex(identity),
                    stake: stake_u64(r.stake),
                    network,
                    encryption_key: Hex(r.encryptionKey.0),
                }]
            }
            BoardInput::StakeChanged { account, stake } => {
                let Some(reg) = self.nodes.get_mut(&account) else {
                    return Vec::new();
                };
                match stake {
                    Some(s) => {
                        reg.stake = stake_u64(s);
                        vec![Event::StakeChanged {
                            identity: Hex(reg.identity),
                            stake: reg.stake,
                        }]
                    }
                    None => Vec::new(),
                }
            }
            BoardInput::CommitteeSelected(sel) => self.committee_selected(sel),
            BoardInput::PostAccepted { ceremony, post, .. } => self.post(ceremony, post.to_vec()),
            BoardInput::Deadline { ceremony, phase } => self.deadline(ceremony, phase),
            BoardInput::ViewActivated(a) => {
                self.active = self
                    .created
                    .as_ref()
                    .filter(|c| c.hash == a.magicBlockHash.0)
                    .map(|c| c.block.clone());
                let live = self.live.take_if(|l| l.id == a.ceremony);
                let first_round = live.as_ref().map_or(0, |l| l.wait_end + 1);
                self.magic_block_hash = a.magicBlockHash.0;
                let mut events = vec![Event::ViewActivated {
                    view: a.viewNumber,
                    first_round,
                    hash: Hex(a.magicBlockHash.0),
                }];
                // As the embedded chain's contract announces it: idle until the next view
                // change may start (the contract's `nextStart`). A ceremony this translator did
                // not follow has no known first round, so no deadline to give.
                if let Some(l) = live {
                    events.push(Event::PhaseChanged {
                        view: a.viewNumber,
                        ceremony_number: l.ceremony_number,
                        attempt: 0,
                        phase: ViewChangePhase::Idle,
                        deadline: first_round.saturating_add(self.deployment.view_length),
                    });
                }
                events
            }
            BoardInput::Slashed(s) => {
                self.proofs.settle(s.ceremony, s.culprit);
                self.slashed(s)
            }
            // The contract selects committees itself: who is a candidate concerns no board.
            BoardInput::Evicted(_) => Vec::new(),
            BoardInput::ViewChangeAbandoned(a) => self.abandoned(a),
        }
    }

    /// A view change the contract abandoned, said as the embedded chain's contract says it
    /// (`ViewChangeAborted`, then idle until the retry), with the same reasons.
    fn abandoned(&mut self, a: crate::Coordinator::ViewChangeAbandoned) -> Vec<Event> {
        let view = a.viewNumber;
        let ceremony_number = self
            .live
            .take_if(|l| l.view == view)
            .map_or(0, |l| l.ceremony_number);
        let reason = match a.reason {
            ABANDONED_TOO_FEW_DEALERS => format!(
                "{} previous members in good standing, resharing needs {}",
                a.have, a.needed
            ),
            ABANDONED_TOO_FEW_CANDIDATES => {
                format!("{} eligible nodes, at least {} needed", a.have, a.needed)
            }
            other => format!("reason {other} ({} of {} needed)", a.have, a.needed),
        };
        vec![
            Event::ViewChangeAborted {
                view,
                ceremony_number,
                reason,
                retry_at: a.nextStart,
            },
            Event::PhaseChanged {
                view,
                ceremony_number,
                attempt: 0,
                phase: ViewChangePhase::Idle,
                deadline: a.nextStart,
            },
        ]
    }

    fn slashed(&mut self, s: crate::Coordinator::Slashed) -> Vec<Event> {
        match self.nodes.get_mut(&s.culprit) {
            Some(reg) => {
                reg.stake = reg.stake.saturating_sub(stake_u64(s.amount));
                vec![Event::StakeChanged {
                    identity: Hex(reg.identity),
                    stake: reg.stake,
                }]
            }
            None => Vec::new(),
        }
    }

    fn committee_selected(&mut self, sel: crate::Coordinator::CommitteeSelected) -> Vec<Event> {
        let mut committee = Vec::with_capacity(sel.committee.len());
        let mut players = Vec::with_capacity(sel.committee.len());
        let mut identities = Vec::with_capacity(sel.committee.len());
        for (i, account) in sel.committee.iter().enumerate() {
            let Some(reg) = self.nodes.get(account) else {
                // Only registered nodes can be selected: a log this translator missed.
                self.live = None;
                return Vec::new();
            };
            committee.push(CommitteeEntry {
                index: i as u64 + 1,
                identity: Hex(reg.identity),
                stake: reg.stake,
                network: reg.network.clone(),
            });
            identities.push(reg.identity);
            players.push(SpecParticipant {
                identity: Hex(reg.identity),
                encryption_key: Hex(reg.encryption_key),
            });
        }
        let key_mode = crate::key_mode_of(sel.keyMode);
        // A reshare's dealers are every member of the active view, in its block's order, as
        // the contract binds them (`reshareDigest`); it refuses posts of those sitting out.
        let dealing = match (key_mode, &self.active) {
            (Some(KeyMode::Fresh), _) => Some((sel.committee.clone(), None)),
            (Some(KeyMode::Reshare), Some(active)) => active
                .members
                .iter()
                .map(|m| self.account_of(&m.identity.0))
                .collect::<Option<Vec<Address>>>()
                .map(|accounts| (accounts, Some(reshare_spec(active)))),
            _ => None,
        };
        let Some((dealers, reshare)) = dealing else {
            // A reshare of a view this translator did not see activate, or an unknown mode: no
            // ceremony it could follow. Said once per selection, so an operator learns why the
            // node sits the view change out.
            match key_mode {
                Some(KeyMode::Reshare) => tracing::warn!(
                    view = sel.viewNumber,
                    ceremony_number = sel.number,
                    "a reshare was selected, but this node did not define the active view's magic block (it follows the chain from after that activation, or its board disagreed with the block the contract activated): not following this view change"
                ),
                _ => tracing::warn!(
                    view = sel.viewNumber,
                    ceremony_number = sel.number,
                    key_mode = sel.keyMode,
                    "a committee was selected with a key mode this node does not know: not following this view change"
                ),
            }
            self.live = None;
            return Vec::new();
        };
        let key_mode = key_mode.unwrap_or(KeyMode::Fresh);
        let spec = CeremonySpec {
            domain: HexBytes(self.deployment.session_domain(sel.viewNumber, sel.number)),
            view: sel.viewNumber,
            ceremony_number: sel.number,
            n: sel.n,
            t: sel.t,
            k: sel.k,
            players,
            reshare,
            variant: keyquorum_contract::config::DkgVariant::AckReveal,
            verifiable_keys: Vec::new(),
        };
        // A spec that builds no ceremony, or another one, is refused by the node's follower;
        // the replica then has no board and the ceremony's posts are not translated.
        let board = spec
            .ceremony()
            .ok()
            .filter(|c| *c.id() == sel.sessionId.0)
            .map(Board::new);
        self.live = Some(Live {
            id: sel.ceremony,
            session: sel.sessionId.0,
            view: sel.viewNumber,
            ceremony_number: sel.number,
            n: sel.n,
            wait_end: sel.waitEnd,
            ends: [sel.contributeEnd, sel.shareEnd, sel.publishEnd],
            board,
            identities,
            dealers,
            key_mode,
            contributions: HashMap::new(),
        });
        self.created = None;
        let phase = Event::PhaseChanged {
            view: sel.viewNumber,
            ceremony_number: sel.number,
            attempt: 0,
            phase: ViewChangePhase::Contribute,
            deadline: sel.contributeEnd,
        };
        vec![
            Event::CommitteeSelected {
                view: sel.viewNumber,
                ceremony_number: sel.number,
                key_mode,
                session_id: Hex(sel.sessionId.0),
                committee,
                dealers: spec
                    .reshare
                    .as_ref()
                    .map(|r| r.dealers.iter().map(|d| d.identity).collect())
                    .unwrap_or_default(),
                spec,
            },
            phase,
        ]
    }

    fn post(&mut self, ceremony: U256, post: Vec<u8>) -> Vec<Event> {
        let Some(live) = self.live.as_mut().filter(|l| l.id == ceremony) else {
            return Vec::new();
        };
        let Some(board) = live.board.as_mut() else {
            return Vec::new();
        };
        let Ok(signed) = SignedPost::<Bls12381G1>::decode(&post, live.n as usize) else {
            return Vec::new();
        };
        let dealer = signed.post.dealer();
        let kind = match &signed.post {
            Post::Contribution(_) => "contribution",
            Post::Publication(_) => "publication",
        };
        match board.apply(&signed) {
            Ok(()) => {
                if let Post::Contribution(_) = &signed.post {
                    live.contributions.insert(dealer, post.clone());
                }
                vec![Event::PostAccepted {
                    view: live.view,
                    ceremony_number: live.ceremony_number,
                    dealer,
                    kind: kind.into(),
                    post: HexBytes(post),
                }]
            }
            Err(BoardError::Fault { fault, .. }) => {
                let ctx = ProofContext {
                    ceremony: live.id,
                    dealers: &live.dealers,
                    identities: &live.identities,
                    contribution: live.contributions.get(&dealer).map(Vec::as_slice),
                };
                if let Some(proof) = fault_proof(&ctx, &post, &fault) {
                    // The board now holds the fault: its active dealers are the members that
                    // look honest, the culprit no longer among them.
                    let provers = (0..live.dealers.len() as u32)
                        .filter(|&d| board.is_active_dealer(d))
                        .filter_map(|d| live.dealers.get(d as usize).copied())
                        .filter(|a| *a != proof.culprit)
                        .collect();
                    let schedule = ProofSchedule {
                        session: live.session,
                        culprit: proof.culprit,
                        provers,
                        found_at: self.block,
                    };
                    self.proofs.insert(proof_key(&post), proof, schedule);
                }
                vec![Event::PostRejected {
                    view: live.view,
                    ceremony_number: live.ceremony_number,
                    dealer,
                    reason: format!("{}: {fault}", fault.code()),
                    post: HexBytes(post),
                }]
            }
            Err(_) => Vec::new(),
        }
    }

    fn deadline(&mut self, ceremony: U256, phase: Phase) -> Vec<Event> {
        let Some(live) = self.live.as_mut().filter(|l| l.id == ceremony) else {
            return Vec::new();
        };
        let (view, ceremony_number) = (live.view, live.ceremony_number);
        // The phase that starts, as the embedded chain's contract announces it (nodes drop
        // their posts of a phase once it is over).
        let next = match phase {
            Phase::Contribute => Some((ViewChangePhase::Share, live.ends[1])),
            Phase::Share => Some((ViewChangePhase::Publish, live.ends[2])),
            Phase::Publish => Some((ViewChangePhase::Wait, live.wait_end)),
            Phase::Wait => None,
        };
        if phase == Phase::Wait {
            // No activation in time: the next ceremony may be started from the next block;
            // nothing for the board.
            let wait_end = live.wait_end;
            self.live = None;
            return vec![Event::PhaseChanged {
                view,
                ceremony_number,
                attempt: 0,
                phase: ViewChangePhase::Idle,
                deadline: wait_end.saturating_add(1),
            }];
        }
        let Some(board) = live.board.as_mut() else {
            return Vec::new();
        };
        let attempt = board.attempt();
        board.advance();
        let mut events = vec![Event::BoardDeadline {
            view,
            ceremony_number,
            attempt,
        }];
        if let Some((phase, deadline)) = next {
            events.push(Event::PhaseChanged {
                view,
                ceremony_number,
                attempt: 0,
                phase,
                deadline,
            });
        }
        if phase != Phase::Publish {
            return events;
        }
        // The contract takes one publish attempt: the board's outcome is final here.
        match board.outcome() {
            Some(Outcome::Success { output, .. }) => {
                let qualified = output.qualified.clone();
                let place = MagicBlockPlace {
                    chain_id: self.deployment.chain_name.clone(),
                    view,
                    ceremony_number,
                    key_mode: live.key_mode,
                    previous_hash: self.magic_block_hash,
                    first_round: live.wait_end + 1,
                    // The contract's beacon is fixed at deployment: a reshare keeps the
                    // previous view's, which is this one.
                    beacon: self.deployment.beacon,
                };
                let nodes = &self.nodes;
                match MagicBlock::from_board(&place, board, |id| {
                    nodes
                        .values()
                        .find(|r| r.identity == id.0)
                        .map(|r| r.network.clone())
                }) {
                    Ok(block) => {
                        let hash = block.hash();
                        self.created = Some(CreatedBlock {
                            block: block.clone(),
                            hash,
                            qualified,
                        });
                        events.push(Event::MagicBlockCreated {
                            view,
                            ceremony_number,
                            hash: Hex(hash),
                            magic_block: block,
                        });
                    }
                    Err(e) => events.push(Event::CeremonyFailed {
                        view,
                        ceremony_number,
                        reason: e.to_string(),
                        culprits: Vec::new(),
                        next_ceremony_number: None,
                    }),
                }
            }
            _ => {
                let culprits = board
                    .named()
                    .iter()
                    .map(|e| Hex(e.identity.to_bytes()))
                    .collect();
                let reason = board
                    .failure_reason()
                    .map(|r| format!("{r:?}"))
                    .unwrap_or_else(|| "no outcome after the publish phase".into());
                events.push(Event::CeremonyFailed {
                    view,
                    ceremony_number,
                    reason,
                    culprits,
                    next_ceremony_number: None,
                });
            }
        }
        events
    }
}

/// The reshare of `active`'s key with every member dealing, in the block's order.
fn reshare_spec(active: &MagicBlock) -> SpecReshare {
    SpecReshare {
        dealers: active
            .members
            .iter()
            .map(|m| SpecParticipant {
                identity: m.identity,
                encryption_key: m.encryption_key,
            })
            .collect(),
        dealer_indices: active.members.iter().map(|m| m.index).collect(),
        old_threshold: active.t,
        group_key: active.group_key,
        public_shares: active.members.iter().map(|m| m.public_share).collect(),
    }
}

/// The key of a post's proof: its keccak-256, as the contract stores posts.
fn proof_key(post: &[u8]) -> [u8; 32] {
    alloy_primitives::keccak256(post).0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proof(ceremony: u64, culprit: u8) -> FaultProof {
        FaultProof {
            ceremony: U256::from(ceremony),
            culprit: Address::repeat_byte(culprit),
            fault: "bad_ack_signature",
            calldata: vec![culprit],
        }
    }

    fn key(i: usize) -> [u8; 32] {
        proof_key(&i.to_be_bytes())
    }

    fn schedule(p: &FaultProof) -> ProofSchedule {
        ProofSchedule {
            session: [1; 32],
            culprit: p.culprit,
            provers: vec![Address::repeat_byte(0xaa)],
            found_at: 5,
        }
    }

    fn insert(cache: &mut ProofCache, key: [u8; 32], p: FaultProof) {
        let s = schedule(&p);
        cache.insert(key, p, s);
    }

    fn proof_of(cache: &ProofCache, key: &[u8; 32]) -> Option<FaultProof> {
        cache.get(key).map(|c| c.proof.clone())
    }

    /// Proofs the contract refused are never settled by a slash: once the cache is full of
    /// them, a new proof still gets in, in place of the oldest.
    #[test]
    fn a_full_cache_of_refused_proofs_still_takes_new_ones() {
        let mut cache = ProofCache::default();
        for i in 0..MAX_PROOFS {
            insert(&mut cache, key(i), proof(i as u64, 1));
        }
        insert(&mut cache, key(MAX_PROOFS), proof(MAX_PROOFS as u64, 2));
        assert_eq!(
            proof_of(&cache, &key(MAX_PROOFS)),
            Some(proof(MAX_PROOFS as u64, 2))
        );
        assert_eq!(proof_of(&cache, &key(0)), None, "the oldest made room");
        assert!(cache.get(&key(1)).is_some());
        assert_eq!(cache.proofs.len(), MAX_PROOFS);
        assert_eq!(cache.order.len(), MAX_PROOFS);
        // The same post again changes nothing.
        insert(&mut cache, key(1), proof(7, 7));
        assert_eq!(proof_of(&cache, &key(1)), Some(proof(1, 1)));
    }

    /// A slash settles exactly its culprit's proofs in its ceremony.
    #[test]
    fn a_slash_settles_its_culprits_proofs_in_its_ceremony() {
        let mut cache = ProofCache::default();
        insert(&mut cache, key(0), proof(1, 1));
        insert(&mut cache, key(1), proof(1, 2));
        insert(&mut cache, key(2), proof(2, 1));
        cache.settle(U256::from(1), Address::repeat_byte(1));
        let settled = |k: usize| cache.get(&key(k)).unwrap().settled;
        assert!(settled(0));
        assert!(!settled(1) && !settled(2));
        assert_eq!(
            cache.order.len(),
            3,
            "a settled proof stays known as settled"
        );
    }
}
