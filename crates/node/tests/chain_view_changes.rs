//! A simulated committee driving two view changes through the embedded chain.
//!
//! The view-change contract runs inside the devchain (`Chain::start` with
//! [`ContractMachine`]), on a real HTTP port. Eight validators with different stakes are
//! simulated in this process, each as its own task holding the engine's `AckRevealParticipant`, and
//! each talks to the chain only over HTTP with [`DevchainClient`]: it registers with a signed
//! transaction, follows the committed blocks (`/events`), turns the contract's events into the
//! participant's inputs with the contract's [`Follower`] (as the node's driver does: `Start`,
//! each run of board posts as one batch, `Deadline`) and submits its posts and magic-block
//! partial signatures as transactions, with nonces it counts itself from its applied
//! transactions. Only deals and acks, which are off chain by design, go from task to task in
//! memory.
//!
//! What it proves, with every outcome read back from the chain's API:
//! - view 1 (fresh key): a node whose contribution arrives after the contribute deadline is
//!   refused in its block with the board's `wrong_phase`, and a node that publishes a forged ack
//!   aggregate is rejected with the post as evidence and slashed. Too few dealers qualify, so
//!   session 0 fails with exactly those two as culprits and session 1, without them, succeeds;
//! - view 2 (reshare) completes although a new member never acks (its shares are revealed on
//!   chain) and an old member misses the publish deadline, and it keeps the group key;
//! - every member's own DKG output matches its view on chain (group key, its public key share,
//!   its secret share), and the two magic blocks served over HTTP verify as a chain from the
//!   first group key;
//! - malformed, wrongly signed, replayed or stale transactions are refused at `POST /tx` with
//!   the contract's code and a reason, and change nothing: the sender's next nonce and stake are
//!   the same afterwards;
//! - a node's own execution of the contract reproduces every block the chain made
//!   ([`keyquorum_node::chain::replica`]).
//!
//! Timeouts only guard against hangs; nothing here depends on how fast a step runs, as long as
//! a few HTTP round trips fit in a phase of several blocks.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keyquorum_contract::config::KeyMode;
use keyquorum_contract::follow::{Follower, SeatRole, Step};
use keyquorum_contract::hex::{self, Bytes, Hex};
use keyquorum_contract::magic::signing_message;
use keyquorum_contract::query::{ContractStatus, ViewAnswer};
use keyquorum_contract::state::{EvidenceRecord, FaultRole, NodeRecord};
use keyquorum_contract::tx::{MAX_TX_LEN, NetworkIdentity, SignerRole, TxBody};
use keyquorum_contract::{
    Contract, ContractConfig, Event, Group, SignedMagicBlock, Size, SlashingRecord, Transaction,
    ViewChangePhase, verify_magic_block_chain,
};
use keyquorum_crypto::Curve;
use keyquorum_crypto::encrypt::EncryptionSecretKey;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_devchain::api::TxLookup;
use keyquorum_devchain::{Chain, ChainConfig};
use keyquorum_dkg::Ceremony;
use keyquorum_dkg::ackreveal::AckRevealParticipant;
use keyquorum_dkg::identity::{IdentityKeypair, IdentityPublicKey, Purpose};
use keyquorum_dkg::messages::{Direct, Post, SignedPost};
use keyquorum_dkg::params::MAX_PARTICIPANTS;
use keyquorum_dkg::participant::{Action, DkgOutput, Input};
use keyquorum_node::chain::replica::config_digest;
use keyquorum_node::chain::{ChainBlock, ChainClient, SubmitOutcome};
use keyquorum_node::{ContractMachine, DevchainClient};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};

type Scalar = <Group as Curve>::Scalar;

const CHAIN_ID: &str = "chain-view-changes";
const STAKES: [u64; 8] = [100, 90, 90, 80, 70, 60, 50, 40];
const BLOCK_MS: u64 = 100;
/// Every node registers well before this height, so the first committee is chosen from all.
const FIRST_VIEW_CHANGE: u64 = 15;
/// Blocks per phase: several HTTP round trips (follow, submit, inclusion) fit in one.
const PHASE_BLOCKS: u64 = 10;
/// Failure guard for the whole run to view 2 (about 130 blocks are needed).
const RUN_LIMIT: Duration = Duration::from_secs(90);
/// Refusals at `POST /tx` that say only that the chain moved past a transaction's session
/// while the transaction was on its way (its node a block or two behind the chain, as a
/// loaded machine makes it): it was built right for what its node had seen. (The other
/// checks that the chain moved on, of phase, deadline and signatures, run in the block.) Any
/// other refusal means a transaction built wrong, and fails the test.
const OVERTAKEN: [&str; 1] = ["wrong_session"];

/// Committees of up to 6 among 8 nodes, t = 66%, k = 75% (n = 6: t = 4, k = 5), view 2
/// reshares, misbehaviour costs 10% of the stake and absence nothing.
fn contract_config() -> ContractConfig {
    let mut c = ContractConfig::defaults(CHAIN_ID, 6);
    c.committee.min_size = 4;
    c.committee.threshold = Size::Percent(66);
    c.committee.quorum = Size::Percent(75);
    c.committee.keep_previous_percent = 70;
    c.phases.contribute = PHASE_BLOCKS;
    c.phases.share = PHASE_BLOCKS;
    c.phases.publish = PHASE_BLOCKS;
    c.phases.wait = PHASE_BLOCKS;
    c.first_view_change = FIRST_VIEW_CHANGE;
    c.view_length = 3;
    c.retry_delay = 5;
    c.max_ceremonies_per_view = 3;
    c.key_mode = KeyMode::Reshare;
    c.slashing.misbehaviour_percent = 10;
    c.slashing.absence_percent = 0;
    // Every node is funded at genesis with more than it stakes.
    (0..STAKES.len()).fold(c, |c, i| c.fund(identity(i).public(), 1000))
}

fn identity(i: usize) -> IdentityKeypair {
    let mut seed = [0xc3; 32];
    seed[24..].copy_from_slice(&(i as u64).to_le_bytes());
    IdentityKeypair::from_seed(&seed).expect("valid identity seed")
}

fn encryption_key(i: usize) -> EncryptionSecretKey {
    let mut seed = [0x3c; 32];
    seed[24..].copy_from_slice(&(i as u64).to_le_bytes());
    EncryptionSecretKey::from_seed(&seed)
}

/// A distinct network identity per node (registration requires unique peer ids; nobody dials
/// them here).
fn network(i: usize) -> NetworkIdentity {
    let mut peer_id = vec![0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
    peer_id.push(0xa0 + i as u8);
    NetworkIdentity {
        peer_id: Bytes(peer_id),
        addresses: vec![format!("/ip4/127.0.0.1/tcp/{}", 9100 + i)],
    }
}

fn key_hex(i: usize) -> String {
    hex::encode(&identity(i).public().to_bytes())
}

fn key(i: usize) -> Hex<96> {
    Hex(identity(i).public().to_bytes())
}

fn keys(v: &[usize]) -> BTreeSet<Hex<96>> {
    v.iter().map(|i| key(*i)).collect()
}

/// Which node an identity belongs to.
fn node_of(id: &Hex<96>) -> usize {
    (0..STAKES.len())
        .find(|i| &key(*i) == id)
        .unwrap_or_else(|| panic!("identity {} is not a simulated node", hex::encode(&id.0)))
}

/// Faults of one (view, session).
#[derive(Debug, Clone, Default)]
struct FaultPlan {
    /// Submit the contribution only once the contribute phase is over.
    late_contribution: BTreeSet<usize>,
    /// Publish a log whose ack aggregate is a valid signature on something else.
    forged_log: BTreeSet<usize>,
    /// Never publish.
    drop_publication: BTreeSet<usize>,
    /// Never send an ack.
    drop_acks: BTreeSet<usize>,
    /// Do not sign the new magic block.
    no_new_signature: BTreeSet<usize>,
}

fn set(v: &[usize]) -> BTreeSet<usize> {
    v.iter().copied().collect()
}

fn fault_plans() -> BTreeMap<(u64, u32), FaultPlan> {
    BTreeMap::from([
        (
            (1, 0),
            FaultPlan {
                late_contribution: set(&[1]),
                forged_log: set(&[3]),
                ..Default::default()
            },
        ),
        (
            (2, 0),
            FaultPlan {
                drop_publication: set(&[7]),
                drop_acks: set(&[1]),
                no_new_signature: set(&[5]),
                ..Default::default()
            },
        ),
    ])
}

/// A direct message (deal or ack) between simulated nodes, tagged with its session so that a
/// node that has not processed the session's start yet can hold it back.
struct Delivery {
    session: [u8; 32],
    /// The sending node's identity (what an authenticated transport reports).
    from: IdentityPublicKey,
    payload: Vec<u8>,
}

/// In-memory delivery of direct messages, by recipient identity.
type Router = HashMap<Vec<u8>, mpsc::UnboundedSender<Delivery>>;

/// The running ceremony of a node.
struct Live {
    view: u64,
    ceremony_number: u32,
    id: [u8; 32],
    participant: AckRevealParticipant<Group>,
}

/// What a node hands back when stopped.
#[derive(Default)]
struct Report {
    /// Its next nonce, counted from its applied transactions.
    nonce: u64,
    /// DKG outputs by (view, session).
    outputs: BTreeMap<(u64, u32), Box<DkgOutput<Group>>>,
    /// Own transactions refused at `POST /tx` for anything but [`OVERTAKEN`] (none expected):
    /// kind, code, reason.
    refused: Vec<(&'static str, String, String)>,
    /// Own transactions the chain had moved past when they arrived: kind, code.
    overtaken: Vec<(&'static str, String)>,
    /// Magic-block partial signatures it submitted: (view, role).
    signed: Vec<(u64, SignerRole)>,
}

struct SimNode {
    i: usize,
    key: IdentityKeypair,
    chain: DevchainClient,
    plans: Arc<BTreeMap<(u64, u32), FaultPlan>>,
    router: Arc<Router>,
    /// Transactions to submit, one at a time: the contract takes nonces strictly in order, so
    /// the next one is signed only once the previous one is in a block.
    queue: VecDeque<TxBody>,
    in_flight: Option<[u8; 32]>,
    live: Option<Live>,
    /// Sessions whose start this node has processed (taking part or not).
    seen: HashSet<[u8; 32]>,
    /// Messages for sessions not started yet.
    early: Vec<Delivery>,
    /// A contribution held back until the contribute phase is over: (view, session, post).
    late: Option<(u64, u32, Vec<u8>)>,
    /// Turns the chain's events into this node's steps.
    follower: Follower,
    /// Secret share and member index for each view this node is a member of.
    shares: BTreeMap<u64, (Secret<Scalar>, u64)>,
    /// Last block processed.
    height: u64,
    report: Report,
}

impl SimNode {
    fn plan(&self, view: u64, ceremony_number: u32) -> FaultPlan {
        self.plans
            .get(&(view, ceremony_number))
            .cloned()
            .unwrap_or_default()
    }

    /// Runs until it has processed the block at the height `stop` names: blocks from the
    /// follower, messages from peers, one transaction in flight.
    async fn run(
        mut self,
        mut blocks: mpsc::Receiver<ChainBlock>,
        mut inbox: mpsc::UnboundedReceiver<Delivery>,
        mut stop: watch::Receiver<Option<u64>>,
    ) -> Report {
        self.queue.push_back(TxBody::Register {
            pop: self.key.proof_of_possession(),
            encryption_key: encryption_key(self.i).public_key(),
            network: network(self.i),
            stake: STAKES[self.i],
        });
        loop {
            if stop.borrow().is_some_and(|h| self.height >= h) {
                break;
            }
            self.pump().await;
            tokio::select! {
                r = stop.changed() => {
                    if r.is_err() {
                        break;
                    }
                }
                Some(block) = blocks.recv() => self.on_block(&block),
                Some(d) = inbox.recv() => self.on_delivery(d),
            }
        }
        self.report
    }

    /// Submits the next queued transaction if none is in flight.
    async fn pump(&mut self) {
        while self.in_flight.is_none() {
            let Some(body) = self.queue.pop_front() else {
                return;
            };
            let kind = body.kind();
            let tx = Transaction::sign(CHAIN_ID, &self.key, self.report.nonce, body.clone());
            let bytes = tx.encode();
            match self.chain.submit(bytes.clone(), None).await {
                Ok(SubmitOutcome::Accepted | SubmitOutcome::Duplicate) => {
                    self.in_flight = Some(keyquorum_contract::tx::tx_hash(&bytes));
                }
                Ok(SubmitOutcome::Rejected { code, .. }) if OVERTAKEN.contains(&code.as_str()) => {
                    self.report.overtaken.push((kind, code));
                }
                Ok(SubmitOutcome::Rejected { code, reason }) => {
                    self.report.refused.push((kind, code, reason));
                }
                // Busy or unreachable: try again after the next block or message.
                Ok(SubmitOutcome::Busy) | Err(_) => {
                    self.queue.push_front(body);
                    return;
                }
                Ok(other) => panic!("the embedded chain does not answer {other:?}"),
            }
        }
    }

    fn on_block(&mut self, block: &ChainBlock) {
        self.height = block.height;
        let me = self.key.public().to_bytes();
        for tx in &block.txs {
            if Some(tx.hash) == self.in_flight {
                self.in_flight = None;
            }
            // The nonce is the count of this node's applied transactions.
            if tx.rejected.is_none()
                && let Ok(t) = Transaction::decode(&tx.tx, MAX_TX_LEN)
                && t.sender.to_bytes() == me
            {
                self.report.nonce = self.report.nonce.max(t.nonce + 1);
            }
            for e in &tx.events {
                self.on_event(e);
            }
        }
        for e in &block.end_block_events {
            self.on_event(e);
        }
        for step in self.follower.end_block() {
            self.on_step(step);
        }
    }

    fn on_delivery(&mut self, d: Delivery) {
        match &self.live {
            Some(l) if l.id == d.session => self.feed(Input::Message {
                from: d.from,
                payload: d.payload,
            }),
            _ if !self.seen.contains(&d.session) => self.early.push(d),
            // A session this node is done with or does not take part in.
            _ => {}
        }
    }

    fn on_event(&mut self, e: &Event) {
        for step in self.follower.event(e) {
            self.on_step(step);
        }
        // A held-back contribution goes out once the contribute phase is over.
        if let Event::PhaseChanged {
            view,
            ceremony_number,
            phase: ViewChangePhase::Share,
            ..
        } = e
            && let Some((v, s, post)) = self.late.take()
        {
            if (v, s) == (*view, *ceremony_number) {
                self.queue.push_back(TxBody::DkgPost { post });
            } else {
                self.late = Some((v, s, post));
            }
        }
    }

    fn on_step(&mut self, step: Step) {
        match step {
            Step::CeremonyStarted {
                view,
                ceremony_number,
                ceremony,
                role,
                ..
            } => self.start_ceremony(view, ceremony_number, ceremony, role),
            Step::CeremonyRefused { reason, .. } => {
                panic!("the contract's spec is refused: {reason}")
            }
            Step::Posts(posts) => {
                if let Some(live) = self.live.as_mut() {
                    let actions = live.participant.handle_board_posts(&posts);
                    self.carry_out(actions);
                }
            }
            Step::Deadline => self.feed(Input::Deadline),
            Step::CeremonyEnded { .. } => self.live = None,
            Step::MagicBlock {
                view,
                ceremony_number,
                hash,
                index,
                ..
            } => self.sign_magic_block(view, ceremony_number, hash, index),
            Step::ViewActivated { view, member, .. } => {
                if let Some((ceremony_number, index)) = member
                    && let Some(out) = self.report.outputs.get(&(view, ceremony_number))
                    && let Some(share) = &out.secret_share
                {
                    self.shares.insert(view, (share.clone(), index));
                }
            }
        }
    }

    fn start_ceremony(
        &mut self,
        view: u64,
        ceremony_number: u32,
        ceremony: Arc<Ceremony<Group>>,
        role: SeatRole,
    ) {
        let id = *ceremony.id();
        self.seen.insert(id);
        if !role.takes_part() {
            return;
        }
        let old_share = match (ceremony.reshare(), role.deals()) {
            (Some(_), true) => Some(
                self.shares
                    .get(&(view - 1))
                    .map(|(s, _)| s.clone())
                    .expect("a resharing dealer holds a share of the previous view"),
            ),
            _ => None,
        };
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(self.i as u64).to_le_bytes());
        seed[8..16].copy_from_slice(&view.to_le_bytes());
        seed[16..20].copy_from_slice(&ceremony_number.to_le_bytes());
        seed[20..].fill(0x77);
        let participant = AckRevealParticipant::new(
            ceremony,
            self.key.clone(),
            encryption_key(self.i),
            old_share,
            seed,
        )
        .expect("a participant of the ceremony");
        self.live = Some(Live {
            view,
            ceremony_number,
            id,
            participant,
        });
        self.feed(Input::Start);
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.early)
            .into_iter()
            .partition(|d| d.session == id);
        self.early = later;
        for d in now {
            self.feed(Input::Message {
                from: d.from,
                payload: d.payload,
            });
        }
    }

    /// Feeds the running participant and carries out its actions.
    fn feed(&mut self, input: Input) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        let actions = live.participant.handle(input);
        self.carry_out(actions);
    }

    /// Carries out the running participant's actions.
    fn carry_out(&mut self, actions: Vec<Action<Group>>) {
        let Some(live) = self.live.as_ref() else {
            return;
        };
        let (view, ceremony_number, id) = (live.view, live.ceremony_number, live.id);
        let plan = self.plan(view, ceremony_number);
        for a in actions {
            match a {
                Action::Send { to, payload } => {
                    if plan.drop_acks.contains(&self.i)
                        && matches!(Direct::decode(&payload), Ok(Direct::Ack(_)))
                    {
                        continue;
                    }
                    if let Some(peer) = self.router.get(&to.to_bytes()[..]) {
                        // A stopped peer is simply gone.
                        let _ = peer.send(Delivery {
                            session: id,
                            from: self.key.public().clone(),
                            payload,
                        });
                    }
                }
                Action::Post(bytes) => self.on_post(view, ceremony_number, &plan, bytes),
                Action::Finished(out) => {
                    self.report.outputs.insert((view, ceremony_number), out);
                }
                Action::Failed(_) | Action::Observed(_) => {}
            }
        }
    }

    fn on_post(&mut self, view: u64, ceremony_number: u32, plan: &FaultPlan, bytes: Vec<u8>) {
        let signed = SignedPost::<Group>::decode(&bytes, MAX_PARTICIPANTS).expect("own post");
        match signed.post {
            Post::Contribution(_) if plan.late_contribution.contains(&self.i) => {
                self.late = Some((view, ceremony_number, bytes));
            }
            Post::Publication(_) if plan.drop_publication.contains(&self.i) => {}
            Post::Publication(mut p) if plan.forged_log.contains(&self.i) => {
                // Correctly signed by its author, so it is attributable evidence, but the ack
                // aggregate signs something else.
                p.ack_signature = Some(self.key.sign(Purpose::Ack, b"something else"));
                if p.acks.is_empty() {
                    p.acks.push(0);
                }
                let post = Post::Publication(p);
                let signature = self.key.sign(Purpose::Post, &post.signed_payload());
                let forged = SignedPost { post, signature }.encode();
                self.queue.push_back(TxBody::DkgPost { post: forged });
            }
            _ => self.queue.push_back(TxBody::DkgPost { post: bytes }),
        }
    }

    /// Partial signatures on a new magic block: as a new member with the share just made, and,
    /// for a view after the first, as a member of the previous committee with its old share.
    fn sign_magic_block(
        &mut self,
        view: u64,
        ceremony_number: u32,
        hash: [u8; 32],
        index: Option<u64>,
    ) {
        let message = signing_message(SignerRole::New, &hash);
        let handover = signing_message(SignerRole::Old, &hash);
        if let Some(index) = index
            && !self
                .plan(view, ceremony_number)
                .no_new_signature
                .contains(&self.i)
            && let Some(out) = self.report.outputs.get(&(view, ceremony_number))
            && let Some(share) = &out.secret_share
        {
            let partial = tbls::partial_sign::<MinPk>(share, Scalar::from(index), &message);
            self.queue.push_back(TxBody::MagicBlockSignature {
                view,
                block_hash: hash,
                role: SignerRole::New,
                partial,
            });
            self.report.signed.push((view, SignerRole::New));
        }
        if let Some((share, index)) = self.shares.get(&(view - 1)) {
            let partial = tbls::partial_sign::<MinPk>(share, Scalar::from(*index), &handover);
            self.queue.push_back(TxBody::MagicBlockSignature {
                view,
                block_hash: hash,
                role: SignerRole::Old,
                partial,
            });
            self.report.signed.push((view, SignerRole::Old));
        }
    }
}

/// Follows the chain over HTTP (long polls) and hands each block to its node, in order.
async fn follow(chain: DevchainClient, tx: mpsc::Sender<ChainBlock>) {
    let mut from = 1;
    loop {
        match chain.blocks(from, 1000).await {
            Ok(b) => {
                for block in b.blocks {
                    from = block.height + 1;
                    if tx.send(block).await.is_err() {
                        return;
                    }
                }
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Every committed block, over HTTP.
async fn all_blocks(chain: &DevchainClient) -> Vec<ChainBlock> {
    let mut out: Vec<ChainBlock> = Vec::new();
    loop {
        let from = out.last().map_or(1, |b| b.height + 1);
        let got = chain.blocks(from, 0).await.expect("GET /events");
        if got.blocks.is_empty() {
            return out;
        }
        out.extend(got.blocks);
    }
}

async fn get<T: DeserializeOwned>(chain: &DevchainClient, path: &str) -> T {
    chain
        .api()
        .get(path)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// A view activated, as `/views/{v}` answers it.
async fn active_view(chain: &DevchainClient, view: u64) -> keyquorum_contract::query::ActiveView {
    match get(chain, &format!("/views/{view}")).await {
        ViewAnswer::ActiveOrPast(v) => v,
        other => panic!("view {view} is not active: {other:?}"),
    }
}

fn events(blocks: &[ChainBlock]) -> impl Iterator<Item = (u64, &Event)> {
    blocks.iter().flat_map(|b| {
        b.txs
            .iter()
            .flat_map(|t| t.events.iter())
            .chain(&b.end_block_events)
            .map(move |e| (b.height, e))
    })
}

fn committee(blocks: &[ChainBlock], view: u64, ceremony_number: u32) -> BTreeSet<Hex<96>> {
    events(blocks)
        .find_map(|(_, e)| match e {
            Event::CommitteeSelected {
                view: v,
                ceremony_number: s,
                committee,
                ..
            } if (*v, *s) == (view, ceremony_number) => {
                Some(committee.iter().map(|c| c.identity).collect())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no committee for view {view} ceremony {ceremony_number}"))
}

/// Every member's own output agrees with the magic block served by the chain: its player
/// index, the group key, its public key share, and its secret share signs under that share.
fn check_members(reports: &[Report], mb: &SignedMagicBlock) {
    let b = &mb.block;
    let message = signing_message(SignerRole::New, &mb.hash.0);
    for m in &b.members {
        let i = node_of(&m.identity);
        let out = reports[i]
            .outputs
            .get(&(b.view, b.ceremony_number))
            .unwrap_or_else(|| panic!("member {i} has no output for view {}", b.view));
        assert_eq!(out.player_index.map(|p| p as u64 + 1), Some(m.index));
        assert_eq!(
            Group::point_bytes(&out.public.group_key),
            b.group_key.0,
            "node {i}'s group key in view {}",
            b.view
        );
        let pos = (m.index - 1) as usize;
        assert_eq!(
            Group::point_bytes(&out.public.public_shares[pos]),
            m.public_share.0
        );
        let share = out.secret_share.as_ref().expect("a member holds a share");
        let partial = tbls::partial_sign::<MinPk>(share, Scalar::from(m.index), &message);
        let public = tbls::decode_public_key::<MinPk>(&m.public_share.0).unwrap();
        tbls::partial_verify::<MinPk>(&public, &message, &partial)
            .unwrap_or_else(|_| panic!("node {i}'s share does not match its public share"));
    }
}

fn slashings_of(all: &[SlashingRecord], view: u64, i: usize) -> Vec<SlashingRecord> {
    all.iter()
        .filter(|r| r.view == view && r.identity == key(i))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_committee_through_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let chain_config = ChainConfig {
        data_dir: dir.path().join("chain"),
        listen: ([127, 0, 0, 1], 0).into(),
        block_ms: BLOCK_MS,
        ..ChainConfig::default()
    };
    let contract = Contract::new(contract_config()).unwrap();
    let chain = Chain::start(chain_config, ContractMachine(contract))
        .await
        .unwrap();
    let url = format!("http://{}", chain.local_addr());
    let api = DevchainClient::new(&url).unwrap();

    // ------------------------------------------------------------------ the simulated nodes
    let n = STAKES.len();
    let plans = Arc::new(fault_plans());
    let mut inboxes = Vec::new();
    let mut router = Router::new();
    for i in 0..n {
        let (tx, rx) = mpsc::unbounded_channel();
        router.insert(identity(i).public().to_bytes().to_vec(), tx);
        inboxes.push(rx);
    }
    let router = Arc::new(router);
    let (stop_tx, stop_rx) = watch::channel(None);
    let mut followers = Vec::new();
    let mut nodes = Vec::new();
    for (i, inbox) in inboxes.into_iter().enumerate() {
        let client = DevchainClient::new(&url).unwrap();
        let (block_tx, block_rx) = mpsc::channel(256);
        followers.push(tokio::spawn(follow(client.clone(), block_tx)));
        let node = SimNode {
            i,
            key: identity(i),
            chain: client,
            plans: plans.clone(),
            router: router.clone(),
            queue: VecDeque::new(),
            in_flight: None,
            live: None,
            seen: HashSet::new(),
            early: Vec::new(),
            late: None,
            follower: Follower::new(Some(identity(i).public().clone())),
            shares: BTreeMap::new(),
            height: 0,
            report: Report::default(),
        };
        nodes.push(tokio::spawn(node.run(block_rx, inbox, stop_rx.clone())));
    }

    // Until view 2 is active (a failure guard, not a speed requirement); the nodes then stop
    // once they have processed that block too, so their nonce counts are complete.
    let started = Instant::now();
    let active_at = loop {
        let status = api
            .api()
            .status::<ContractStatus>()
            .await
            .expect("GET /status");
        let contract = status.state.expect("the contract's status");
        if contract.view >= 2 {
            break status.height;
        }
        assert!(
            started.elapsed() < RUN_LIMIT,
            "view 2 not active after {RUN_LIMIT:?}: {contract:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop_tx.send_replace(Some(active_at));
    let mut reports = Vec::new();
    for node in nodes {
        reports.push(node.await.expect("node task"));
    }
    for f in followers {
        f.abort();
    }
    for (i, r) in reports.iter().enumerate() {
        assert!(
            r.refused.is_empty(),
            "node {i}: transactions refused at submission: {:?}",
            r.refused
        );
        // Only a ceremony's transactions can be overtaken by the ceremony moving on.
        assert!(
            r.overtaken
                .iter()
                .all(|(kind, _)| ["dkg_post", "magic_block_signature"].contains(kind)),
            "node {i}: {:?}",
            r.overtaken
        );
    }

    // ------------------------------------------------------------------ what the chain recorded
    // Read by a client that re-executes every block with its own contract, from the genesis
    // configuration pinned here: the honest chain's blocks, faults and refusals included, are
    // reproduced exactly (a difference would fail the read).
    let verifying =
        DevchainClient::verifying(&url, Some(config_digest(&contract_config()))).unwrap();
    let blocks = all_blocks(&verifying).await;
    let registered: Vec<(u64, Hex<96>)> = events(&blocks)
        .filter_map(|(h, e)| match e {
            Event::Registered { identity, .. } => Some((h, *identity)),
            _ => None,
        })
        .collect();
    assert_eq!(
        registered
            .iter()
            .map(|(_, id)| *id)
            .collect::<BTreeSet<_>>(),
        keys(&[0, 1, 2, 3, 4, 5, 6, 7])
    );
    assert!(
        registered.iter().all(|(h, _)| *h < FIRST_VIEW_CHANGE),
        "registration must precede the first view change: {:?}",
        registered.iter().map(|(h, _)| h).collect::<Vec<_>>()
    );
    // Each node's own count of applied transactions is the chain's.
    for (i, r) in reports.iter().enumerate() {
        let applied = blocks
            .iter()
            .flat_map(|b| &b.txs)
            .filter(|t| t.rejected.is_none())
            .filter(|t| {
                Transaction::decode(&t.tx, MAX_TX_LEN)
                    .is_ok_and(|t| t.sender == *identity(i).public())
            })
            .count() as u64;
        assert_eq!(r.nonce, applied, "node {i}'s nonce");
    }

    // ------------------------------------------------------------------ view 1: fresh key
    assert_eq!(committee(&blocks, 1, 0), keys(&[0, 1, 2, 3, 4, 5]));
    // The late contribution was accepted into the mempool (it is well formed and signed) and
    // refused in its block by the board's phase rule.
    let late: Vec<_> = blocks
        .iter()
        .flat_map(|b| b.txs.iter().map(move |t| (b.height, t)))
        .filter_map(|(h, t)| {
            let tx = Transaction::decode(&t.tx, MAX_TX_LEN).ok()?;
            let TxBody::DkgPost { post } = &tx.body else {
                return None;
            };
            let post = SignedPost::<Group>::decode(post, MAX_PARTICIPANTS).ok()?;
            (tx.sender == *identity(1).public() && matches!(post.post, Post::Contribution(_)))
                .then(|| (h, t.rejected.clone()))
        })
        .collect();
    assert_eq!(late.len(), 1, "node 1 submitted one contribution: {late:?}");
    let (late_height, late_rejection) = &late[0];
    let (code, reason) = late_rejection
        .as_ref()
        .expect("the late contribution is refused");
    assert_eq!(code, "wrong_phase", "{reason}");
    let contribute_deadline = events(&blocks)
        .find_map(|(_, e)| match e {
            Event::PhaseChanged {
                view: 1,
                ceremony_number: 0,
                phase: ViewChangePhase::Contribute,
                deadline,
                ..
            } => Some(*deadline),
            _ => None,
        })
        .unwrap();
    assert!(*late_height > contribute_deadline);
    // The forged log was rejected as a fault of its author, with the post on chain.
    let dealer3 = events(&blocks)
        .find_map(|(_, e)| match e {
            Event::CommitteeSelected {
                view: 1,
                ceremony_number: 0,
                committee,
                ..
            } => committee.iter().position(|c| c.identity == key(3)),
            _ => None,
        })
        .unwrap() as u32;
    let forged: Vec<_> = events(&blocks)
        .filter_map(|(_, e)| match e {
            Event::PostRejected {
                view: 1,
                ceremony_number: 0,
                dealer,
                reason,
                ..
            } => Some((*dealer, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(forged.len(), 1, "{forged:?}");
    assert_eq!(forged[0].0, dealer3);
    assert!(forged[0].1.starts_with("bad_ack_signature"), "{forged:?}");
    // Four dealers qualify where k = 5 are needed, also after the board's publish retry without
    // the culprits: session 0 fails, and session 1 runs without them, standbys filling the seats.
    assert!(events(&blocks).any(|(_, e)| matches!(
        e,
        Event::PhaseChanged {
            view: 1,
            ceremony_number: 0,
            attempt: 1,
            phase: ViewChangePhase::Publish,
            ..
        }
    )));
    let failed: Vec<_> = events(&blocks)
        .filter_map(|(_, e)| match e {
            Event::CeremonyFailed {
                view,
                ceremony_number,
                culprits,
                next_ceremony_number,
                reason,
            } => Some((
                *view,
                *ceremony_number,
                culprits.iter().copied().collect::<BTreeSet<_>>(),
                *next_ceremony_number,
                reason.clone(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1, "only view 1 session 0 fails: {failed:?}");
    let (view, ceremony_number, culprits, next, reason) = &failed[0];
    assert_eq!((*view, *ceremony_number, *next), (1, 0, Some(1)));
    assert_eq!(culprits, &keys(&[1, 3]));
    assert!(reason.contains("4 dealers qualified, 5 needed"), "{reason}");
    assert_eq!(committee(&blocks, 1, 1), keys(&[0, 2, 4, 5, 6, 7]));

    let slashings: Vec<SlashingRecord> = get(&api, "/query/slashings").await;
    let r3 = slashings_of(&slashings, 1, 3);
    assert_eq!(r3.len(), 1, "{r3:?}");
    assert_eq!(r3[0].fault, "bad_ack_signature");
    assert!(r3[0].misbehaviour);
    assert_eq!(r3[0].role, FaultRole::Dealer);
    assert_eq!((r3[0].amount, r3[0].stake_after), (8, 72));
    // The evidence holds the author's signed posts, the forged publication among them.
    match &r3[0].evidence {
        EvidenceRecord::SignedPosts { posts } => {
            assert!(posts.iter().any(|p| {
                SignedPost::<Group>::decode(&p.0, MAX_PARTICIPANTS)
                    .is_ok_and(|s| matches!(s.post, Post::Publication(_)))
            }));
        }
        other => panic!("evidence for node 3: {other:?}"),
    }
    let node3: NodeRecord = get(&api, &format!("/query/nodes/{}", key_hex(3))).await;
    assert_eq!(node3.stake, 72);
    let r1 = slashings_of(&slashings, 1, 1);
    assert_eq!(r1.len(), 1, "{r1:?}");
    assert_eq!(r1[0].fault, "missed_contribution");
    assert!(!r1[0].misbehaviour && r1[0].amount == 0);
    assert!(
        matches!(&r1[0].evidence, EvidenceRecord::Absence { phase, .. } if phase == "contribute")
    );

    let view1 = active_view(&api, 1).await;
    let mb1: SignedMagicBlock = get(&api, "/views/1/magic-block").await;
    assert_eq!(mb1.block.key_mode, KeyMode::Fresh);
    assert_eq!(mb1.block.ceremony_number, 1);
    assert_eq!((mb1.block.n, mb1.block.t, mb1.block.k), (6, 4, 5));
    assert_eq!(
        mb1.block
            .members
            .iter()
            .map(|m| m.identity)
            .collect::<BTreeSet<_>>(),
        keys(&[0, 2, 4, 5, 6, 7])
    );
    assert_eq!(view1.group_key, mb1.block.group_key);
    assert_eq!(view1.magic_block_hash, mb1.hash);
    check_members(&reports, &mb1);

    // ------------------------------------------------------------------ view 2: reshare
    assert_eq!(committee(&blocks, 2, 0), keys(&[0, 1, 2, 3, 4, 5]));
    let mb2: SignedMagicBlock = get(&api, "/views/2/magic-block").await;
    assert_eq!(mb2.block.key_mode, KeyMode::Reshare);
    assert_eq!(mb2.block.ceremony_number, 0);
    assert_eq!(
        mb2.block.group_key, mb1.block.group_key,
        "a reshare keeps the group key"
    );
    assert_eq!(mb2.block.previous_hash, mb1.hash);
    // Node 1 never acked and is still a member: every qualified dealer revealed its share.
    assert_eq!(
        mb2.block
            .members
            .iter()
            .map(|m| m.identity)
            .collect::<BTreeSet<_>>(),
        keys(&[0, 1, 2, 3, 4, 5])
    );
    let pos1 = mb2.block.member_by_identity(&key(1).0).unwrap().index as u32 - 1;
    let publications: Vec<_> = events(&blocks)
        .filter_map(|(_, e)| match e {
            Event::PostAccepted {
                view: 2,
                kind,
                post,
                ..
            } if kind == "publication" => {
                match SignedPost::<Group>::decode(&post.0, MAX_PARTICIPANTS)
                    .unwrap()
                    .post
                {
                    Post::Publication(p) => Some(p),
                    Post::Contribution(_) => None,
                }
            }
            _ => None,
        })
        .collect();
    assert_eq!(publications.len(), 5, "all old members but node 7 publish");
    assert!(
        publications
            .iter()
            .all(|p| p.reveals.iter().any(|(j, _)| *j == pos1))
    );
    let r7 = slashings_of(&slashings, 2, 7);
    assert_eq!(r7.len(), 1, "{r7:?}");
    assert_eq!(r7[0].fault, "missed_publication");
    assert_eq!(r7[0].role, FaultRole::Dealer);
    // Node 5 did not sign: t of the 6 signatures were enough, and nothing is recorded.
    assert!(!reports[5].signed.contains(&(2, SignerRole::New)));
    assert!(slashings_of(&slashings, 2, 5).is_empty());
    // Same key, two role-tagged messages: the old and the new committee's signatures differ.
    assert!(mb2.signature.is_some() && mb2.previous_signature.is_some());
    assert_ne!(mb2.signature, mb2.previous_signature);
    check_members(&reports, &mb2);
    let view2 = active_view(&api, 2).await;
    assert_eq!(view2.group_key, view1.group_key);

    // ------------------------------------------------------------------ the chain of magic blocks
    let genesis = mb1.block.group_key.0;
    verify_magic_block_chain(&genesis, &[mb1.clone(), mb2.clone()]).unwrap();
    assert!(verify_magic_block_chain(&genesis, &[mb2.clone(), mb1.clone()]).is_err());

    // ------------------------------------------------------------------ bad input over HTTP
    // Node 6 is stopped; the test signs for it from here, with the nonce it counted.
    let six = identity(6);
    let nonce = reports[6].nonce;
    let node6 = format!("/query/nodes/{}", key_hex(6));
    let before: NodeRecord = get(&api, &node6).await;
    let refused = |outcome: SubmitOutcome, want: &str| match outcome {
        SubmitOutcome::Rejected { code, reason } => {
            assert_eq!(code, want, "{reason}");
            assert!(!reason.is_empty(), "a refusal explains itself");
        }
        other => panic!("expected {want}, got {other:?}"),
    };
    let add = |amount| TxBody::AddStake { amount };
    refused(
        api.submit(vec![0xde, 0xad, 0xbe, 0xef], None)
            .await
            .unwrap(),
        "malformed",
    );
    refused(api.submit(Vec::new(), None).await.unwrap(), "empty_tx");
    let other_chain = Transaction::sign("another-chain", &six, nonce, add(1000)).encode();
    refused(
        api.submit(other_chain.clone(), None).await.unwrap(),
        "bad_signature",
    );
    let mut tampered = Transaction::sign(CHAIN_ID, &six, nonce, add(1000));
    tampered.body = add(1_000_000);
    refused(
        api.submit(tampered.encode(), None).await.unwrap(),
        "bad_signature",
    );
    let stale = Transaction::sign(CHAIN_ID, &six, nonce - 1, add(1000)).encode();
    refused(api.submit(stale, None).await.unwrap(), "stale_nonce");
    let stranger = IdentityKeypair::from_seed(&[0x99; 32]).unwrap();
    let unknown = Transaction::sign(CHAIN_ID, &stranger, 0, add(1000)).encode();
    refused(api.submit(unknown, None).await.unwrap(), "not_registered");
    // An applied transaction replayed byte for byte: its nonce is spent.
    let applied = blocks
        .iter()
        .flat_map(|b| &b.txs)
        .find(|t| {
            t.rejected.is_none()
                && Transaction::decode(&t.tx, MAX_TX_LEN).is_ok_and(|t| t.sender == *six.public())
        })
        .unwrap();
    refused(
        api.submit(applied.tx.clone(), None).await.unwrap(),
        "stale_nonce",
    );
    // None of them entered the mempool or changed the sender.
    let hash = keyquorum_contract::tx::tx_hash(&other_chain);
    let unknown_tx = api.api().tx(&hash).await;
    assert!(
        matches!(&unknown_tx, Err(e) if e.status() == Some(404) && e.code() == Some("not_found")),
        "{unknown_tx:?}"
    );
    let after: NodeRecord = get(&api, &node6).await;
    assert_eq!(after, before);
    // The nonce was not consumed: the next valid transaction takes exactly it.
    let good = Transaction::sign(CHAIN_ID, &six, nonce, add(5)).encode();
    assert_eq!(
        api.submit(good.clone(), None).await.unwrap(),
        SubmitOutcome::Accepted
    );
    // Submitted again, it is a duplicate while pending and a spent nonce once applied; either
    // way it is applied once.
    match api.submit(good.clone(), None).await.unwrap() {
        SubmitOutcome::Duplicate => {}
        other => refused(other, "stale_nonce"),
    }
    let hash = keyquorum_contract::tx::tx_hash(&good);
    let included = Instant::now();
    let rejected = loop {
        let found = api.api().tx(&hash).await.expect("GET /tx");
        if let TxLookup::Included { rejected, .. } = found {
            break rejected;
        }
        assert!(included.elapsed() < Duration::from_secs(10), "{found:?}");
        tokio::time::sleep(Duration::from_millis(BLOCK_MS)).await;
    };
    assert!(rejected.is_none(), "{rejected:?}");
    let after: NodeRecord = get(&api, &node6).await;
    assert_eq!(after.stake, before.stake + 5);

    chain.stop().await.unwrap();
}
