//! A simulated chain for contract tests: the contract, and one `AckRevealParticipant` per simulated
//! validator that follows the contract's events through its [`Follower`]. Direct messages go straight from node to node;
//! posts and partial signatures become transactions in the next block; faults are injected per
//! (view, session) by a [`FaultPlan`].

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use keyquorum_contract::config::{KeyMode, ViewKeyMode};
use keyquorum_contract::follow::{Follower, Step};
use keyquorum_contract::hex::Bytes;
use keyquorum_contract::magic::signing_message;
use keyquorum_contract::tx::{NetworkIdentity, SignerRole, TxBody};
use keyquorum_contract::{Contract, ContractConfig, Event, Group, Rejection, Size, Transaction};
use keyquorum_crypto::Curve;
use keyquorum_crypto::encrypt::EncryptionSecretKey;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_dkg::ackreveal::AckRevealParticipant;
use keyquorum_dkg::identity::{IdentityKeypair, Purpose};
use keyquorum_dkg::messages::{Direct, Post, SignedPost};
use keyquorum_dkg::params::MAX_PARTICIPANTS;
use keyquorum_dkg::participant::{Action, DkgOutput, Input};

pub const CHAIN: &str = "test-chain";

pub type Scalar = <Group as Curve>::Scalar;

pub fn identity(i: usize) -> IdentityKeypair {
    let mut seed = [0x5a; 32];
    seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
    IdentityKeypair::from_seed(&seed).unwrap()
}

pub fn enc_seed(i: usize) -> [u8; 32] {
    let mut seed = [0xe5; 32];
    seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
    seed
}

pub fn network(i: usize) -> NetworkIdentity {
    NetworkIdentity {
        peer_id: Bytes(vec![0x00, 0x24, 0x08, 0x01, 0x12, 0x20, i as u8]),
        addresses: vec![format!("/ip4/127.0.0.1/tcp/{}", 4000 + i)],
    }
}

pub fn register_body(i: usize, stake: u64) -> TxBody {
    let key = identity(i);
    TxBody::Register {
        pop: key.proof_of_possession(),
        encryption_key: EncryptionSecretKey::from_seed(&enc_seed(i)).public_key(),
        network: network(i),
        stake,
    }
}

/// Genesis balance of each of the first [`FUNDED`] test identities.
pub const FUND: u64 = 1_000_000;
/// Test identities funded at genesis.
pub const FUNDED: usize = 16;

/// The test configuration: committees of up to 6, t = 66%, k = 75% (Züs), short phases;
/// identities `0..FUNDED` hold [`FUND`] each at genesis.
pub fn config() -> ContractConfig {
    let mut c = (0..FUNDED).fold(ContractConfig::defaults(CHAIN, 6), |c, i| {
        c.fund(identity(i).public(), FUND)
    });
    c.committee.min_size = 4;
    c.committee.threshold = Size::Percent(66);
    c.committee.quorum = Size::Percent(75);
    c.committee.keep_previous_percent = 70;
    c.phases.contribute = 2;
    c.phases.share = 2;
    c.phases.publish = 2;
    c.phases.wait = 3;
    c.first_view_change = 2;
    c.view_length = 3;
    c.retry_delay = 5;
    c.max_ceremonies_per_view = 3;
    c.key_mode = KeyMode::Reshare;
    c.key_mode_overrides = vec![ViewKeyMode {
        view: 3,
        mode: KeyMode::Fresh,
    }];
    c.slashing.misbehaviour_percent = 10;
    c.slashing.absence_percent = 0;
    c
}

/// Faults injected into one session.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// Do nothing at all.
    pub silent: BTreeSet<usize>,
    /// Submit the contribution only after the contribute deadline.
    pub late_contribution: BTreeSet<usize>,
    /// Never send acks (miss the share phase as a player).
    pub drop_acks: BTreeSet<usize>,
    /// Acks from a player to one dealer that never arrive, as `(player, dealer)` nodes.
    pub drop_acks_to: BTreeSet<(usize, usize)>,
    /// Never publish (miss the publish deadline).
    pub drop_publication: BTreeSet<usize>,
    /// Publish a log with a forged ack aggregate.
    pub invalid_log: BTreeSet<usize>,
    /// Do not sign the new magic block.
    pub no_new_signature: BTreeSet<usize>,
    /// Do not sign the new magic block under the previous key.
    pub no_old_signature: BTreeSet<usize>,
}

/// The supply invariant: free balances, locked stakes, unbonding stake and the burned amount
/// add up to the genesis supply.
pub fn assert_supply(c: &Contract) {
    let supply = c.state().supply();
    assert_eq!(
        supply.total(),
        c.config().total_supply(),
        "supply does not add up: {supply:?}"
    );
}

pub fn set(v: &[usize]) -> BTreeSet<usize> {
    v.iter().copied().collect()
}

pub struct SimNode {
    pub key: IdentityKeypair,
    pub enc: [u8; 32],
    /// Turns the contract's events into this node's steps.
    pub follower: Follower,
    pub dkg: Option<(u64, u32, AckRevealParticipant<Group>)>,
    pub finished: Option<(u64, u32, Box<DkgOutput<Group>>)>,
    /// Share and index per view the node is a member of.
    pub shares: BTreeMap<u64, (Secret<Scalar>, u64)>,
}

pub struct Sim {
    pub contract: Contract,
    pub nodes: Vec<SimNode>,
    pub height: u64,
    pub pending: Vec<(usize, TxBody)>,
    pub delayed: Vec<(u64, usize, TxBody)>,
    pub events: Vec<(u64, Event)>,
    pub rejections: Vec<(u64, usize, &'static str, Rejection)>,
    pub faults: BTreeMap<(u64, u32), FaultPlan>,
}

impl Sim {
    /// A chain with one registered node per stake (registered in block 1).
    pub fn new(config: ContractConfig, stakes: &[u64]) -> Self {
        let nodes = (0..stakes.len())
            .map(|i| SimNode {
                key: identity(i),
                enc: enc_seed(i),
                follower: Follower::new(Some(identity(i).public().clone())),
                dkg: None,
                finished: None,
                shares: BTreeMap::new(),
            })
            .collect();
        let mut sim = Sim {
            contract: Contract::new(config).unwrap(),
            nodes,
            height: 0,
            pending: Vec::new(),
            delayed: Vec::new(),
            events: Vec::new(),
            rejections: Vec::new(),
            faults: BTreeMap::new(),
        };
        for (i, s) in stakes.iter().enumerate() {
            sim.pending.push((i, register_body(i, *s)));
        }
        sim.step();
        assert!(sim.rejections.is_empty(), "{:?}", sim.rejections);
        sim
    }

    /// Adds a simulated node (not registered).
    pub fn add_node(&mut self) -> usize {
        let i = self.nodes.len();
        self.nodes.push(SimNode {
            key: identity(i),
            enc: enc_seed(i),
            follower: Follower::new(Some(identity(i).public().clone())),
            dkg: None,
            finished: None,
            shares: BTreeMap::new(),
        });
        i
    }

    pub fn plan(&self, view: u64, ceremony_number: u32) -> FaultPlan {
        self.faults
            .get(&(view, ceremony_number))
            .cloned()
            .unwrap_or_default()
    }

    /// Signs `body` from node `i` with its next nonce.
    pub fn tx(&self, i: usize, body: TxBody) -> Vec<u8> {
        let key = &self.nodes[i].key;
        Transaction::sign(CHAIN, key, self.contract.next_nonce(key.public()), body).encode()
    }

    /// One block: due and pending transactions, then the end of the block.
    pub fn step(&mut self) {
        self.height += 1;
        let h = self.height;
        let mut due = Vec::new();
        self.delayed.retain(|(at, i, b)| {
            if *at <= h {
                due.push((*i, b.clone()));
                false
            } else {
                true
            }
        });
        let txs: Vec<_> = due
            .into_iter()
            .chain(std::mem::take(&mut self.pending))
            .collect();
        for (i, body) in txs {
            let kind = body.kind();
            let bytes = self.tx(i, body);
            match self.contract.apply_tx(&bytes, h) {
                Ok(events) => self.handle_events(h, events),
                Err(r) => self.rejections.push((h, i, kind, r)),
            }
        }
        let events = self.contract.end_block(h);
        self.handle_events(h, events);
        assert_supply(&self.contract);
    }

    /// Applies raw transaction bytes in the block being built (height + 1), handling the
    /// events as the nodes would.
    pub fn apply_now(&mut self, bytes: &[u8]) -> Result<Vec<Event>, Rejection> {
        let h = self.height + 1;
        let events = self.contract.apply_tx(bytes, h)?;
        self.handle_events(h, events.clone());
        Ok(events)
    }

    /// Signs `body` from node `i` and applies it in the block being built.
    pub fn submit_now(&mut self, (i, body): (usize, TxBody)) -> Result<Vec<Event>, Rejection> {
        let bytes = self.tx(i, body);
        self.apply_now(&bytes)
    }

    /// Steps until `done` or `max` blocks.
    pub fn run_until(&mut self, max: u64, mut done: impl FnMut(&Sim) -> bool) {
        for _ in 0..max {
            if done(self) {
                return;
            }
            self.step();
        }
        assert!(
            done(self),
            "condition not reached by height {}",
            self.height
        );
    }

    pub fn events_where(&self, f: impl Fn(&Event) -> bool) -> Vec<&Event> {
        self.events
            .iter()
            .map(|(_, e)| e)
            .filter(|e| f(e))
            .collect()
    }

    fn handle_events(&mut self, h: u64, events: Vec<Event>) {
        for e in events {
            self.events.push((h, e.clone()));
            // Every node follows the event; posts are fed at once (one-post batches), as if
            // each transaction ended a block, which the participant cannot tell apart.
            let steps: Vec<Vec<Step>> = self
                .nodes
                .iter_mut()
                .map(|n| {
                    let mut s = n.follower.event(&e);
                    s.extend(n.follower.end_block());
                    s
                })
                .collect();
            // Every participant of a new session exists before any of them starts dealing.
            let mut started = Vec::new();
            for (i, steps) in steps.into_iter().enumerate() {
                for step in steps {
                    self.on_step(i, step, &mut started);
                }
            }
            for i in started {
                self.feed(i, Input::Start);
            }
        }
    }

    fn on_step(&mut self, i: usize, step: Step, started: &mut Vec<usize>) {
        match step {
            Step::CeremonyStarted {
                view,
                ceremony_number,
                ceremony,
                role,
                ..
            } => {
                if !role.takes_part() || self.plan(view, ceremony_number).silent.contains(&i) {
                    return;
                }
                let old = if ceremony.reshare().is_some() && role.deals() {
                    self.nodes[i]
                        .shares
                        .get(&(view - 1))
                        .map(|(s, _)| s.clone())
                } else {
                    None
                };
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
                seed[8..16].copy_from_slice(&view.to_be_bytes());
                seed[16..20].copy_from_slice(&ceremony_number.to_be_bytes());
                let node = AckRevealParticipant::new(
                    ceremony,
                    self.nodes[i].key.clone(),
                    EncryptionSecretKey::from_seed(&self.nodes[i].enc),
                    old,
                    seed,
                )
                .unwrap();
                self.nodes[i].dkg = Some((view, ceremony_number, node));
                self.nodes[i].finished = None;
                started.push(i);
            }
            Step::CeremonyRefused { reason, .. } => {
                panic!("the contract's spec is refused: {reason}")
            }
            Step::Posts(posts) => {
                for post in posts {
                    self.feed(i, Input::BoardPost(post));
                }
            }
            Step::Deadline => self.feed(i, Input::Deadline),
            Step::CeremonyEnded { .. } => self.nodes[i].dkg = None,
            Step::MagicBlock {
                view,
                ceremony_number,
                hash,
                index,
                ..
            } => {
                let plan = self.plan(view, ceremony_number);
                if let Some(index) = index
                    && !plan.no_new_signature.contains(&i)
                    && let Some((v, s, out)) = &self.nodes[i].finished
                    && *v == view
                    && *s == ceremony_number
                {
                    let share = out.secret_share.clone().unwrap();
                    assert_eq!(out.player_index.unwrap() as u64 + 1, index);
                    let message = signing_message(SignerRole::New, &hash);
                    let partial =
                        tbls::partial_sign::<MinPk>(&share, Scalar::from(index), &message);
                    self.pending.push((
                        i,
                        TxBody::MagicBlockSignature {
                            view,
                            block_hash: hash,
                            role: SignerRole::New,
                            partial,
                        },
                    ));
                }
                if view > 1
                    && !plan.no_old_signature.contains(&i)
                    && let Some((share, index)) = self.nodes[i].shares.get(&(view - 1))
                {
                    let handover = signing_message(SignerRole::Old, &hash);
                    let partial =
                        tbls::partial_sign::<MinPk>(share, Scalar::from(*index), &handover);
                    self.pending.push((
                        i,
                        TxBody::MagicBlockSignature {
                            view,
                            block_hash: hash,
                            role: SignerRole::Old,
                            partial,
                        },
                    ));
                }
            }
            Step::ViewActivated { view, member, .. } => {
                let node = &mut self.nodes[i];
                if let Some((ceremony_number, index)) = member
                    && let Some((v, s, out)) = &node.finished
                    && (*v, *s) == (view, ceremony_number)
                {
                    node.shares
                        .insert(view, (out.secret_share.clone().unwrap(), index));
                }
            }
        }
    }

    /// Feeds an input to node `i` and carries out the actions, delivering direct messages
    /// at once.
    pub fn feed(&mut self, i: usize, input: Input) {
        let mut queue = VecDeque::from([(i, input)]);
        while let Some((j, input)) = queue.pop_front() {
            let Some((view, ceremony_number, node)) = self.nodes[j].dkg.as_mut() else {
                continue;
            };
            let (view, ceremony_number) = (*view, *ceremony_number);
            let actions = node.handle(input);
            let plan = self.plan(view, ceremony_number);
            for a in actions {
                match a {
                    Action::Send { to, payload } => {
                        let is_ack = matches!(Direct::decode(&payload), Ok(Direct::Ack(_)));
                        if plan.drop_acks.contains(&j) && is_ack {
                            continue;
                        }
                        if let Some(k) = self.nodes.iter().position(|n| n.key.public() == &to) {
                            if is_ack && plan.drop_acks_to.contains(&(j, k)) {
                                continue;
                            }
                            let from = self.nodes[j].key.public().clone();
                            queue.push_back((k, Input::Message { from, payload }));
                        }
                    }
                    Action::Post(bytes) => self.on_post(j, &plan, bytes),
                    Action::Finished(out) => {
                        self.nodes[j].finished = Some((view, ceremony_number, out))
                    }
                    Action::Failed(_) | Action::Observed(_) => {}
                }
            }
        }
    }

    fn on_post(&mut self, j: usize, plan: &FaultPlan, bytes: Vec<u8>) {
        let signed = SignedPost::<Group>::decode(&bytes, MAX_PARTICIPANTS).unwrap();
        match signed.post {
            Post::Contribution(_) if plan.late_contribution.contains(&j) => {
                let deadline = self.contract.state().change.as_ref().unwrap().deadline;
                self.delayed
                    .push((deadline + 1, j, TxBody::DkgPost { post: bytes }));
            }
            Post::Publication(_) if plan.drop_publication.contains(&j) => {}
            Post::Publication(mut p) if plan.invalid_log.contains(&j) => {
                // A forged aggregate: a valid signature on something else.
                let key = &self.nodes[j].key;
                p.ack_signature = Some(key.sign(Purpose::Ack, b"not the ack payload"));
                if p.acks.is_empty() {
                    p.acks.push(0);
                }
                let post = Post::Publication(p);
                let signature = key.sign(Purpose::Post, &post.signed_payload());
                let forged = SignedPost { post, signature }.encode();
                self.pending.push((j, TxBody::DkgPost { post: forged }));
            }
            _ => self.pending.push((j, TxBody::DkgPost { post: bytes })),
        }
    }
}
