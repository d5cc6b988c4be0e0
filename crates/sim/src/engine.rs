//! The event loop: virtual time, board blocks, deadlines, network delays, crashes and restarts.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::sync::Arc;

use keyquorum_crypto::Curve;
use keyquorum_crypto::encrypt::EncryptionSecretKey;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::verifiable_encrypt::VerifiableEncryptionSecretKey;
use keyquorum_dkg::ackreveal::AckRevealParticipant;
use keyquorum_dkg::complaint::board::author_key;
use keyquorum_dkg::complaint::messages::SignedComplaintPost;
use keyquorum_dkg::identity::{IdentityKeypair, IdentityPublicKey};
use keyquorum_dkg::messages::SignedPost;
use keyquorum_dkg::participant::{Action, DkgOutput, Failure, Input, Observation, Participant};
use keyquorum_dkg::{Ceremony, CeremonyConfig, Member, Params, Reshare, Variant};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::adversary::{Adversary, AdversaryKind, Routed};
use crate::checks::{self, CeremonyResult, MemberResult};
use crate::{RunReport, SimConfig};

/// Deadlines after which a ceremony is abandoned.
const MAX_DEADLINES: u32 = 14;

/// Keys of one simulated validator.
pub struct Keys {
    seed: [u8; 32],
    identity: IdentityKeypair,
}

impl Keys {
    fn new(run_seed: u64, member: usize) -> Self {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&run_seed.to_be_bytes());
        seed[8..16].copy_from_slice(&(member as u64).to_be_bytes());
        seed[16] = 0x4b;
        Keys {
            identity: IdentityKeypair::from_seed(&seed).expect("32-byte seed"),
            seed,
        }
    }

    /// Identity key (deterministic from the seed, so a restart gets the same one).
    pub fn identity(&self) -> IdentityKeypair {
        self.identity.clone()
    }

    /// Encryption key.
    pub fn encryption(&self) -> EncryptionSecretKey {
        let mut s = self.seed;
        s[17] = 0x45;
        EncryptionSecretKey::from_seed(&s)
    }

    /// Verifiable-encryption key (complaint variant).
    pub fn verifiable(&self) -> VerifiableEncryptionSecretKey {
        let mut s = self.seed;
        s[17] = 0x56;
        VerifiableEncryptionSecretKey::generate(&mut ChaCha20Rng::from_seed(s))
    }

    /// The participant's protocol randomness for one ceremony.
    pub fn protocol_seed(&self, ceremony: &[u8; 32]) -> [u8; 32] {
        keyquorum_crypto::hash::tagged_hash("keyquorum/sim/protocol-seed", &[&self.seed, ceremony])
    }

    /// Public registration data.
    pub fn member(&self) -> Member {
        Member {
            identity: self.identity().public().clone(),
            encryption: self.encryption().public_key(),
        }
    }
}

/// Builds the honest participant for a ceremony.
pub fn make_node<C: Curve>(
    ceremony: &Arc<Ceremony<C>>,
    keys: &Keys,
    old_share: Option<Secret<C::Scalar>>,
) -> Box<dyn Participant<C>> {
    let seed = keys.protocol_seed(ceremony.id());
    match ceremony.config().variant {
        Variant::AckReveal => Box::new(
            AckRevealParticipant::new(
                ceremony.clone(),
                keys.identity(),
                keys.encryption(),
                old_share,
                seed,
            )
            .expect("member of the ceremony"),
        ),
        Variant::Complaint => crate::checks::complaint_node(ceremony, keys, old_share, seed),
    }
}

/// Whether `kind` is an honest participant's that crashes and restarts (its inputs are
/// persisted until the crash).
fn restarts(kind: Option<AdversaryKind>) -> bool {
    matches!(
        kind,
        None | Some(AdversaryKind::Crash | AdversaryKind::LostStorage)
    )
}

enum Slot<C: Curve> {
    Honest(Box<dyn Participant<C>>),
    Adversary(Box<Adversary<C>>),
    Down,
}

struct NodeState<C: Curve> {
    member: usize,
    kind: Option<AdversaryKind>,
    slot: Slot<C>,
    /// Persisted inputs (honest and crash-faulty participants).
    log: Vec<Input>,
    /// Payloads emitted, in order (for the replay check).
    emitted: Vec<Vec<u8>>,
    crash_at: Option<usize>,
    crashed: bool,
    buffered: Vec<Input>,
    result: Option<Result<Box<DkgOutput<C>>, Failure>>,
    old_share: Option<Secret<C::Scalar>>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Deliver {
        node: usize,
        /// The sender as the transport knows it (an adversary's own position when it spoofs).
        from: usize,
        kind: u8,
        payload: Vec<u8>,
    },
    Block,
    Restart {
        node: usize,
    },
}

const KIND_MESSAGE: u8 = 0;

struct World<'a, C: Curve> {
    cfg: &'a SimConfig,
    rng: ChaCha20Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, Event)>>,
    nodes: Vec<NodeState<C>>,
    ids: Vec<IdentityPublicKey>,
    pending_posts: Vec<(u64, Vec<u8>)>,
    late: Vec<Action<C>>,
    late_from: Vec<usize>,
    deadlines: u32,
    partition: Option<(BTreeSet<usize>, u64, u64)>,
    replay_mismatch: Option<String>,
    /// Positions of `Spoof` adversaries (they overhear other participants' messages).
    spoofers: Vec<usize>,
    /// Direct messages that honest participants dropped for a wrong sender.
    wrong_sender: u64,
    /// Posts refused because their sender was not their author.
    foreign_posts: u64,
    ceremony: Arc<Ceremony<C>>,
    keys: &'a [Keys],
}

impl<'a, C: Curve> World<'a, C> {
    fn schedule(&mut self, at: u64, e: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, e)));
    }

    fn delay(&mut self, from: usize, to: usize) -> u64 {
        let net = &self.cfg.net;
        let mut d = net.min_delay + self.rng.next_u64() % (net.max_delay - net.min_delay + 1);
        for _ in 0..3 {
            if (self.rng.next_u32() % 1000) < net.drop_per_mille {
                d += net.rto;
            } else {
                break;
            }
        }
        if let Some((set, start, end)) = &self.partition {
            let t = self.now + d;
            if set.contains(&from) != set.contains(&to) && t >= *start && self.now < *end {
                d += end.saturating_sub(self.now);
            }
        }
        d
    }

    fn route(&mut self, from: usize, actions: Vec<Routed<C>>) {
        for r in actions {
            match r {
                Routed::Now(a) => self.act(from, a),
                Routed::Late(a) => {
                    self.late.push(a);
                    self.late_from.push(from);
                }
                Routed::GarbageMessage(bytes) => {
                    let to = (self.rng.next_u64() % self.nodes.len() as u64) as usize;
                    let at = self.now + self.delay(from, to);
                    self.schedule(
                        at,
                        Event::Deliver {
                            node: to,
                            from,
                            kind: KIND_MESSAGE,
                            payload: bytes,
                        },
                    );
                }
            }
        }
    }

    fn act(&mut self, from: usize, a: Action<C>) {
        match a {
            Action::Send { to, payload } => {
                if self.nodes[from].kind == Some(AdversaryKind::Crash)
                    || self.nodes[from].kind.is_none()
                {
                    self.nodes[from].emitted.push(payload.clone());
                }
                let Some(j) = self.ids.iter().position(|x| *x == to) else {
                    return;
                };
                let at = self.now + self.delay(from, j);
                let overheard = (!self.spoofers.is_empty()
                    && !self.spoofers.contains(&from)
                    && !self.spoofers.contains(&j))
                .then(|| payload.clone());
                self.schedule(
                    at,
                    Event::Deliver {
                        node: j,
                        from,
                        kind: KIND_MESSAGE,
                        payload,
                    },
                );
                // One spoofer overhears the message and may replay it under its own identity.
                if let Some(payload) = overheard {
                    let s = self.spoofers[self.rng.next_u64() as usize % self.spoofers.len()];
                    let replay = match &mut self.nodes[s].slot {
                        Slot::Adversary(a) => a.overhear(&to, &payload),
                        _ => Vec::new(),
                    };
                    self.route(s, replay);
                }
            }
            Action::Post(bytes) => {
                if !self.posted_by_its_author(from, &bytes) {
                    self.foreign_posts += 1;
                    return;
                }
                if self.nodes[from].kind == Some(AdversaryKind::Crash)
                    || self.nodes[from].kind.is_none()
                {
                    self.nodes[from].emitted.push(bytes.clone());
                }
                let at = self.now + self.delay(from, from);
                self.pending_posts.push((at, bytes));
            }
            Action::Finished(o) => self.nodes[from].result = Some(Ok(o)),
            Action::Failed(f) => self.nodes[from].result = Some(Err(f)),
            Action::Observed(Observation::WrongSender { .. })
                if self.nodes[from].kind.is_none() =>
            {
                self.wrong_sender += 1
            }
            Action::Observed(_) => {}
        }
    }

    /// Whether node `from` may post `bytes`: the chain takes a post only in its author's own
    /// transaction (the contract's `authentic_post`), so a post naming another author never
    /// reaches the board. The complaint board checks reconstruction posts' signatures only at
    /// the deadline and counts a player's first one, so without this a post in another's name
    /// could take its slot. Posts that do not decode go on, for the board to refuse.
    fn posted_by_its_author(&self, from: usize, bytes: &[u8]) -> bool {
        let c = &self.ceremony;
        let author = match c.config().variant {
            Variant::AckReveal => SignedPost::<C>::decode(bytes, c.n())
                .ok()
                .and_then(|s| c.dealers().get(s.post.dealer() as usize))
                .map(|d| &d.identity),
            Variant::Complaint => SignedComplaintPost::<C>::decode(bytes, c.n(), c.dealer_count())
                .ok()
                .and_then(|s| {
                    let (role, index) = s.post.author();
                    author_key(c, role, index)
                }),
        };
        author.is_none_or(|a| *a == self.ids[from])
    }

    fn deliver(&mut self, node: usize, input: Input) {
        let n = &mut self.nodes[node];
        if matches!(n.slot, Slot::Down) {
            n.buffered.push(input);
            return;
        }
        if restarts(n.kind) {
            n.log.push(input.clone());
            if n.crash_at == Some(n.log.len()) && !n.crashed {
                // Crash after persisting the input, before acting on it: its actions are lost.
                n.crashed = true;
                n.slot = Slot::Down;
                let downtime = 100 + self.rng.next_u64() % 1_400;
                let at = self.now + downtime;
                self.schedule(at, Event::Restart { node });
                return;
            }
        }
        let routed: Vec<Routed<C>> = match &mut self.nodes[node].slot {
            Slot::Honest(p) => p.handle(input).into_iter().map(Routed::Now).collect(),
            Slot::Adversary(a) => a.handle(input),
            Slot::Down => Vec::new(),
        };
        self.route(node, routed);
    }

    /// A lost-storage node back: its seed, received messages and old share are gone. It plays
    /// on as a player only, fed what the board shows (posts and deadlines, in order), if the
    /// ceremony seats it as a player; otherwise it sits the rest out.
    fn restart_without_storage(&mut self, node: usize) {
        let member = self.nodes[node].member;
        let keys = &self.keys[member];
        // A fresh seed: the one it dealt from is lost with its storage.
        let seed = keyquorum_crypto::hash::tagged_hash(
            "keyquorum/sim/lost-storage-seed",
            &[&keys.protocol_seed(self.ceremony.id())],
        );
        let c = self.ceremony.clone();
        let player: Option<Box<dyn Participant<C>>> = match c.config().variant {
            Variant::AckReveal => {
                AckRevealParticipant::new_player(c, keys.identity(), keys.encryption(), seed)
                    .ok()
                    .map(|p| Box::new(p) as Box<dyn Participant<C>>)
            }
            Variant::Complaint => keyquorum_dkg::complaint::ComplaintParticipant::new_player(
                c,
                keys.identity(),
                keys.verifiable(),
                seed,
            )
            .ok()
            .map(|p| Box::new(p) as Box<dyn Participant<C>>),
        };
        self.nodes[node].old_share = None;
        let Some(mut player) = player else {
            // No player: nothing left to do (its inputs stay buffered, unread).
            return;
        };
        let log = std::mem::take(&mut self.nodes[node].log);
        let mut actions = Vec::new();
        if !log.iter().any(|i| matches!(i, Input::Start)) {
            actions.extend(player.handle(Input::Start));
        }
        for input in log {
            if !matches!(input, Input::Message { .. }) {
                actions.extend(player.handle(input));
            }
        }
        self.nodes[node].slot = Slot::Honest(player);
        for a in actions {
            self.act(node, a);
        }
        for input in std::mem::take(&mut self.nodes[node].buffered) {
            self.deliver(node, input);
        }
    }

    fn restart(&mut self, node: usize) {
        if self.nodes[node].kind == Some(AdversaryKind::LostStorage) {
            self.restart_without_storage(node);
            return;
        }
        let member = self.nodes[node].member;
        let mut fresh = make_node(
            &self.ceremony,
            &self.keys[member],
            self.nodes[node].old_share.clone(),
        );
        // Replay the persisted inputs; the replay must reproduce exactly what was sent before.
        let log = std::mem::take(&mut self.nodes[node].log);
        let mut replayed = Vec::new();
        let mut actions = Vec::new();
        for input in &log {
            for a in fresh.handle(input.clone()) {
                match &a {
                    Action::Send { payload, .. } => replayed.push(payload.clone()),
                    Action::Post(p) => replayed.push(p.clone()),
                    _ => {}
                }
                actions.push(a);
            }
        }
        let before = &self.nodes[node].emitted;
        if before.len() > replayed.len() || before[..] != replayed[..before.len()] {
            self.replay_mismatch = Some(format!(
                "node {node}: replay after crash sent different messages than before"
            ));
        }
        self.nodes[node].emitted.clear();
        self.nodes[node].log = log;
        self.nodes[node].slot = Slot::Honest(fresh);
        // Resend everything (receivers and the board ignore exact duplicates), then catch up.
        for a in actions {
            self.act(node, a);
        }
        for input in std::mem::take(&mut self.nodes[node].buffered) {
            self.deliver(node, input);
        }
    }

    fn block(&mut self) {
        let now = self.now;
        let (ready, waiting): (Vec<_>, Vec<_>) =
            self.pending_posts.drain(..).partition(|(at, _)| *at <= now);
        self.pending_posts = waiting;
        for (_, post) in ready {
            for i in 0..self.nodes.len() {
                self.deliver(i, Input::BoardPost(post.clone()));
            }
        }
        let phase_len = self.cfg.net.phase_length;
        if now > 0 && now.is_multiple_of(phase_len) {
            self.deadlines += 1;
            for i in 0..self.nodes.len() {
                self.deliver(i, Input::Deadline);
            }
            // Late messages are released after the deadline that needed them.
            let late = std::mem::take(&mut self.late);
            let from = std::mem::take(&mut self.late_from);
            for (a, f) in late.into_iter().zip(from) {
                self.act(f, a);
            }
        }
    }

    fn all_done(&self) -> bool {
        self.nodes.iter().all(|n| {
            !restarts(n.kind)
                || n.kind == Some(AdversaryKind::LostStorage)
                || (n.result.is_some() && !matches!(n.slot, Slot::Down))
        })
    }
}

/// Runs one ceremony on `members` (indices into `keys`) with adversaries at `adversaries`.
fn run_ceremony<C: Curve>(
    cfg: &SimConfig,
    ceremony: Arc<Ceremony<C>>,
    keys: &[Keys],
    members: &[usize],
    adversaries: &[(usize, AdversaryKind)],
    old_shares: &dyn Fn(usize) -> Option<Secret<C::Scalar>>,
    seed: u64,
) -> Result<CeremonyResult<C>, String> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut nodes = Vec::new();
    for &m in members {
        let kind = adversaries.iter().find(|(p, _)| *p == m).map(|(_, k)| *k);
        let old = old_shares(m);
        let honest = make_node(&ceremony, &keys[m], old.clone());
        let slot = match kind {
            None | Some(AdversaryKind::Crash | AdversaryKind::LostStorage) => Slot::Honest(honest),
            Some(k) => Slot::Adversary(Box::new(Adversary::new(
                k,
                honest,
                keys[m].identity(),
                keys[m].verifiable(),
                ceremony.clone(),
                ChaCha20Rng::seed_from_u64(rng.next_u64()),
            ))),
        };
        let crash_at = matches!(
            kind,
            Some(AdversaryKind::Crash | AdversaryKind::LostStorage)
        )
        .then(|| 1 + (rng.next_u64() % (4 * members.len() as u64 + 4)) as usize);
        nodes.push(NodeState {
            member: m,
            kind,
            slot,
            log: Vec::new(),
            emitted: Vec::new(),
            crash_at,
            crashed: false,
            buffered: Vec::new(),
            result: None,
            old_share: old,
        });
    }
    let ids: Vec<IdentityPublicKey> = members
        .iter()
        .map(|m| keys[*m].identity().public().clone())
        .collect();
    let partition = ((rng.next_u32() % 1000) < cfg.net.partition_per_mille).then(|| {
        let size = 1 + (rng.next_u64() as usize % members.len().div_ceil(3).max(1));
        let mut set = BTreeSet::new();
        while set.len() < size.min(members.len()) {
            set.insert((rng.next_u64() % members.len() as u64) as usize);
        }
        let start = cfg.net.phase_length + rng.next_u64() % (cfg.net.phase_length / 4);
        let end = start + 100 + rng.next_u64() % (cfg.net.phase_length / 4);
        (set, start, end)
    });
    let spoofers = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.kind == Some(AdversaryKind::Spoof))
        .map(|(i, _)| i)
        .collect();
    let mut w = World {
        cfg,
        rng,
        now: 0,
        seq: 0,
        queue: BinaryHeap::new(),
        nodes,
        ids,
        pending_posts: Vec::new(),
        late: Vec::new(),
        late_from: Vec::new(),
        deadlines: 0,
        partition,
        replay_mismatch: None,
        spoofers,
        wrong_sender: 0,
        foreign_posts: 0,
        ceremony: ceremony.clone(),
        keys,
    };
    for i in 0..w.nodes.len() {
        w.deliver(i, Input::Start);
    }
    w.schedule(cfg.net.block_interval, Event::Block);
    while let Some(Reverse((at, _, e))) = w.queue.pop() {
        w.now = at;
        match e {
            Event::Deliver {
                node,
                from,
                payload,
                ..
            } => {
                let from = w.ids[from].clone();
                w.deliver(node, Input::Message { from, payload })
            }
            Event::Restart { node } => w.restart(node),
            Event::Block => {
                w.block();
                if w.deadlines >= MAX_DEADLINES || (w.deadlines >= 3 && w.all_done()) {
                    break;
                }
                let next = w.now + cfg.net.block_interval;
                w.schedule(next, Event::Block);
            }
        }
    }
    if let Some(m) = w.replay_mismatch {
        return Err(m);
    }
    Ok(CeremonyResult {
        ceremony,
        wrong_sender: w.wrong_sender,
        foreign_posts: w.foreign_posts,
        results: w
            .nodes
            .into_iter()
            .zip(w.ids)
            .map(|(n, identity)| MemberResult {
                member: n.member,
                identity,
                kind: n.kind,
                result: n.result,
            })
            .collect(),
    })
}

fn config<C: Curve>(
    cfg: &SimConfig,
    keys: &[Keys],
    members: &[usize],
    epoch: u64,
    reshare: Option<Reshare<C>>,
) -> Result<Arc<Ceremony<C>>, String> {
    let params = if members.len() == cfg.nodes {
        Params::new(cfg.nodes, cfg.threshold, cfg.quorum)
    } else {
        Params::bft(members.len())
    }
    .map_err(|e| e.to_string())?;
    Ceremony::new(CeremonyConfig {
        domain: b"keyquorum-sim".to_vec(),
        epoch,
        variant: cfg.variant,
        params,
        index_scheme: cfg.indices.into(),
        players: members.iter().map(|m| keys[*m].member()).collect(),
        verifiable_keys: match cfg.variant {
            Variant::Complaint => members
                .iter()
                .map(|m| keys[*m].verifiable().public_key())
                .collect(),
            Variant::AckReveal => Vec::new(),
        },
        reshare,
    })
    .map_err(|e| e.to_string())
}

/// Lost-storage members of `r` that finished holding a share.
fn lost_storage_shares<C: Curve>(r: &CeremonyResult<C>) -> u64 {
    r.results
        .iter()
        .filter(|m| m.kind == Some(AdversaryKind::LostStorage))
        .filter(|m| matches!(&m.result, Some(Ok(o)) if o.secret_share.is_some()))
        .count() as u64
}

/// Runs a configured simulation on curve `C` and checks it.
pub fn run<C: Curve + checks::SimCurve>(cfg: &SimConfig) -> RunReport {
    let mut report = RunReport {
        seed: cfg.seed,
        passed: false,
        failure: None,
        elapsed_ms: 0.0,
        qualified: Vec::new(),
        excluded: Vec::new(),
        adversaries: Vec::new(),
        attempts: 0,
        wrong_sender: 0,
        foreign_posts: 0,
        beyond_fault_bound: None,
        lost_storage_shares: 0,
    };
    match run_inner::<C>(cfg, &mut report) {
        Ok(()) => report.passed = true,
        Err(e) => report.failure = Some(e),
    }
    report
}

fn run_inner<C: Curve + checks::SimCurve>(
    cfg: &SimConfig,
    report: &mut RunReport,
) -> Result<(), String> {
    let n = cfg.nodes;
    let total = if cfg.reshare {
        n.max(cfg.new_committee() + 1)
    } else {
        n
    };
    let keys: Vec<Keys> = (0..total).map(|m| Keys::new(cfg.seed, m)).collect();
    let mut rng = ChaCha20Rng::seed_from_u64(cfg.seed ^ 0x5eed_5eed);
    // Adversaries sit on members present in every ceremony of the run: when resharing,
    // members 1 up to the last old member that stays.
    let eligible: Vec<usize> = if cfg.reshare {
        (1..=cfg.max_adversaries()).collect()
    } else {
        (0..n).collect()
    };
    if cfg.byzantine > eligible.len() {
        return Err(format!(
            "{} adversaries do not fit in {} members",
            cfg.byzantine,
            eligible.len()
        ));
    }
    let kinds = if cfg.faults.is_empty() {
        vec![AdversaryKind::Silent]
    } else {
        cfg.faults.clone()
    };
    let mut pool = eligible.clone();
    let mut adversaries = Vec::new();
    for i in 0..cfg.byzantine {
        let pos = (rng.next_u64() % pool.len() as u64) as usize;
        let member = pool.swap_remove(pos);
        let kind = if kinds.len() == 1 {
            kinds[0]
        } else if i < kinds.len() && cfg.byzantine >= kinds.len() {
            kinds[i]
        } else {
            kinds[(rng.next_u64() % kinds.len() as u64) as usize]
        };
        adversaries.push((member, kind));
    }
    adversaries.sort();
    report.adversaries = adversaries.clone();

    let first_members: Vec<usize> = (0..n).collect();
    let c1 = config::<C>(cfg, &keys, &first_members, 1, None)?;
    let first_adv: &[(usize, AdversaryKind)] = if cfg.reshare { &[] } else { &adversaries };
    let r1 = run_ceremony(
        cfg,
        c1.clone(),
        &keys,
        &first_members,
        first_adv,
        &|_| None,
        rng.next_u64(),
    )?;
    report.wrong_sender = r1.wrong_sender;
    report.foreign_posts = r1.foreign_posts;
    report.lost_storage_shares = lost_storage_shares(&r1);
    // Every ceremony's dealers are the first committee, whose parameters are the configured ones.
    let dealer_bound = cfg.nodes - cfg.quorum;
    let first_stage = if cfg.reshare { "fresh key" } else { "" };
    let summary = checks::check(&r1, dealer_bound, first_stage)?;
    if !cfg.reshare {
        report.qualified = summary.qualified;
        report.excluded = summary.excluded;
        report.attempts = summary.attempts;
        report.beyond_fault_bound = summary.beyond_fault_bound;
        return Ok(());
    }
    // Reshare to `cfg.new_members()`: member 0 leaves, and members past `n - 1` join or members
    // past a smaller committee leave too; the group key must survive.
    let out = summary.output.ok_or("fresh ceremony produced no output")?;
    let shares: Vec<Option<Secret<C::Scalar>>> = {
        let mut v = vec![None; total];
        for m in &r1.results {
            if let Some(Ok(o)) = &m.result {
                v[m.member] = o.secret_share.clone();
            }
        }
        v
    };
    let reshare = Reshare {
        dealers: first_members.iter().map(|m| keys[*m].member()).collect(),
        dealer_indices: c1.player_indices().to_vec(),
        old_threshold: c1.t(),
        group_key: out.public.group_key,
        public_shares: out.public.public_shares.clone(),
    };
    let second_members: Vec<usize> = cfg.new_members().collect();
    let c2 = config::<C>(cfg, &keys, &second_members, 2, Some(reshare))?;
    let all: Vec<usize> = (0..total).collect();
    let r2 = run_ceremony(
        cfg,
        c2,
        &keys,
        &all,
        &adversaries,
        &|m| shares[m].clone(),
        rng.next_u64(),
    )?;
    report.wrong_sender += r2.wrong_sender;
    report.foreign_posts += r2.foreign_posts;
    report.lost_storage_shares += lost_storage_shares(&r2);
    let s2 = checks::check(&r2, dealer_bound, "reshare")?;
    match &s2.output {
        Some(o) if o.public.group_key != out.public.group_key => {
            return Err("reshare: changed the group key".into());
        }
        Some(_) => {}
        // Beyond the fault bound the reshare may fail; within it `check` demands an output.
        None if s2.beyond_fault_bound.is_some() => {}
        None => return Err("reshare: produced no output".into()),
    }
    report.qualified = s2.qualified;
    report.excluded = s2.excluded;
    report.attempts = s2.attempts;
    report.beyond_fault_bound = s2.beyond_fault_bound;
    Ok(())
}
