//! Persistence and replay, in one process: four drivers follow a contract run block by block
//! (the same events the chain serves), their direct messages routed between them. One driver is
//! dropped in the middle of the share phase, as if killed, and reopened on its database: it
//! must come back with exactly the deals and acks it had produced (byte for byte, so it can
//! never send two different shares), its commitment must not be posted twice, and the view
//! change must then complete, fresh and then resharing, with everyone agreeing on the key.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use keyquorum_contract::config::KeyMode;
use keyquorum_contract::hex::Bytes;
use keyquorum_contract::tx::NetworkIdentity;
use keyquorum_contract::tx::TxBody;
use keyquorum_contract::{Contract, ContractConfig, Event, Size, Transaction};
use keyquorum_node::chain::{ChainBlock, ChainTx};
use keyquorum_node::driver::{Driver, Effect, Incoming, Verdict};
use keyquorum_node::metrics::Metrics;
use keyquorum_node::status::Status;
use keyquorum_node::store::Store;
use keyquorum_node::{Fault, NodeKeys};
use sha2::{Digest, Sha256};

const N: usize = 4;
const CRASH: usize = 1;

fn config() -> ContractConfig {
    let mut c = ContractConfig::defaults("replay-test", N as u32);
    c.committee.min_size = N as u32;
    c.committee.threshold = Size::Count(3);
    c.committee.quorum = Size::Count(3);
    c.phases.contribute = 2;
    c.phases.share = 3;
    c.phases.publish = 2;
    c.phases.wait = 3;
    c.first_view_change = 2;
    c.view_length = 2;
    c.key_mode = KeyMode::Reshare;
    // Each node is funded at genesis with what it stakes.
    (0..N).fold(c, |c, i| {
        let keys = NodeKeys::from_master(&[i as u8 + 1; 32]);
        c.fund(keys.identity().public(), 100)
    })
}

struct Harness {
    contract: Contract,
    height: u64,
    dirs: Vec<tempfile::TempDir>,
    keys: Vec<Arc<NodeKeys>>,
    drivers: Vec<Option<Driver>>,
    /// Transactions for the next block: (node, body).
    pending: Vec<(usize, TxBody)>,
    /// Messages for a node that is down, delivered when it is back (senders retry).
    parked: VecDeque<(usize, Incoming)>,
    /// Every Send effect of each node, in order.
    sent: Vec<Vec<(Vec<u8>, Vec<u8>)>>,
    /// Every DkgPost a node submitted.
    posts: Vec<Vec<Vec<u8>>>,
    events: Vec<Event>,
    /// Every block, from height 1.
    blocks: Vec<ChainBlock>,
}

fn open(dir: &std::path::Path, keys: Arc<NodeKeys>) -> (Driver, Vec<Effect>) {
    let store = Store::open(&dir.join("node.redb")).unwrap();
    Driver::open(
        store,
        keys,
        Fault::None,
        Arc::new(Metrics::new()),
        Arc::new(Mutex::new(Status::default())),
    )
    .unwrap()
}

impl Harness {
    fn new() -> Self {
        Harness::with_config(config())
    }

    fn with_config(config: ContractConfig) -> Self {
        let mut h = Harness {
            contract: Contract::new(config).unwrap(),
            height: 0,
            dirs: Vec::new(),
            keys: Vec::new(),
            drivers: Vec::new(),
            pending: Vec::new(),
            parked: VecDeque::new(),
            sent: vec![Vec::new(); N],
            posts: vec![Vec::new(); N],
            events: Vec::new(),
            blocks: Vec::new(),
        };
        for i in 0..N {
            let keys = Arc::new(NodeKeys::from_master(&[i as u8 + 1; 32]));
            let dir = tempfile::tempdir().unwrap();
            let (d, effects) = open(dir.path(), keys.clone());
            assert!(effects.is_empty());
            h.pending.push((
                i,
                TxBody::Register {
                    pop: keys.identity().proof_of_possession(),
                    encryption_key: keys.encryption().public_key(),
                    network: NetworkIdentity {
                        peer_id: Bytes(keys.peer_id().to_bytes()),
                        addresses: vec![],
                    },
                    stake: 100 - i as u64,
                },
            ));
            h.dirs.push(dir);
            h.keys.push(keys);
            h.drivers.push(Some(d));
        }
        h
    }

    fn index_of(&self, identity: &[u8]) -> usize {
        self.keys
            .iter()
            .position(|k| k.identity().public().as_bytes()[..] == identity[..])
            .unwrap()
    }

    fn apply(&mut self, i: usize, effects: Vec<Effect>) {
        let mut queue: VecDeque<(usize, Effect)> = effects.into_iter().map(|e| (i, e)).collect();
        while let Some((from, e)) = queue.pop_front() {
            match e {
                Effect::Send {
                    session,
                    to,
                    payload,
                    ..
                } => {
                    self.sent[from].push((to.clone(), payload.clone()));
                    let j = self.index_of(&to);
                    let msg = Incoming {
                        session,
                        from: Some(self.keys[from].identity().public().to_bytes().to_vec()),
                        payload,
                    };
                    match self.drivers[j].as_mut() {
                        None => self.parked.push_back((j, msg)),
                        Some(d) => {
                            let (v, more) = d.process_messages(vec![msg.clone()]).unwrap();
                            // Not answered: the sender retries later (the runtime does).
                            if v[0] == Verdict::Later {
                                self.parked.push_back((j, msg));
                            }
                            queue.extend(more.into_iter().map(|e| (j, e)));
                        }
                    }
                }
                Effect::Submit(s) => {
                    if let TxBody::DkgPost { post } = &s.body {
                        self.posts[from].push(post.clone());
                    }
                    self.pending.push((from, s.body));
                }
                _ => {}
            }
        }
    }

    fn step(&mut self) {
        self.height += 1;
        let h = self.height;
        let mut nonces: BTreeMap<usize, u64> = BTreeMap::new();
        let mut txs = Vec::new();
        for (i, body) in std::mem::take(&mut self.pending) {
            let key = &self.keys[i];
            let nonce = nonces
                .entry(i)
                .or_insert_with(|| self.contract.next_nonce(key.identity().public()));
            let bytes = Transaction::sign("replay-test", key.identity(), *nonce, body).encode();
            *nonce += 1;
            let (events, rejected) = match self.contract.apply_tx(&bytes, h) {
                Ok(e) => (e, None),
                Err(r) => (Vec::new(), Some((r.code().to_string(), r.to_string()))),
            };
            txs.push(ChainTx {
                hash: Sha256::digest(&bytes).into(),
                tx: bytes,
                events,
                rejected,
            });
        }
        let end = self.contract.end_block(h);
        for t in &txs {
            self.events.extend(t.events.iter().cloned());
        }
        self.events.extend(end.iter().cloned());
        let block = ChainBlock {
            height: h,
            time_ms: h * 100,
            txs,
            end_block_events: end,
        };
        self.blocks.push(block);
        for i in 0..N {
            // A driver that was down catches up from its cursor, as the runtime's follower does.
            let missed: Vec<ChainBlock> = match self.drivers[i].as_ref() {
                Some(d) => self.blocks[(d.cursor().max(1) - 1) as usize..].to_vec(),
                None => continue,
            };
            for b in &missed {
                let out = self.drivers[i].as_mut().unwrap().process_block(b).unwrap();
                self.apply(i, out.effects);
            }
        }
        self.redeliver();
    }

    /// Retries parked messages to nodes that are up.
    fn redeliver(&mut self) {
        let parked = std::mem::take(&mut self.parked);
        for (j, msg) in parked {
            let Some(d) = self.drivers[j].as_mut() else {
                self.parked.push_back((j, msg));
                continue;
            };
            let (v, more) = d.process_messages(vec![msg.clone()]).unwrap();
            if v[0] == Verdict::Later {
                self.parked.push_back((j, msg));
            }
            self.apply(j, more);
        }
    }

    fn share_phase(&self) -> bool {
        self.contract
            .state()
            .change
            .as_ref()
            .is_some_and(|c| c.phase == keyquorum_contract::ViewChangePhase::Share)
    }
}

#[test]
fn a_killed_driver_replays_to_the_same_messages_and_the_view_changes_complete() {
    let mut h = Harness::new();
    while !h.share_phase() {
        h.step();
        assert!(h.height < 50);
    }
    // Kill it: drop the driver without any shutdown; whatever it committed is all there is.
    let before = h.sent[CRASH].clone();
    assert!(!before.is_empty(), "it had dealt and acked");
    h.drivers[CRASH] = None;
    // The chain moves on for a block while it is down.
    h.step();
    let (d, effects) = open(h.dirs[CRASH].path(), h.keys[CRASH].clone());
    h.drivers[CRASH] = Some(d);
    let resent: Vec<(Vec<u8>, Vec<u8>)> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { to, payload, .. } => Some((to.clone(), payload.clone())),
            _ => None,
        })
        .collect();
    // Replay produced exactly the messages it had sent, byte for byte (deals carry HPKE
    // ciphertexts drawn from the seeded RNG: a different seed or order would differ).
    assert_eq!(resent, before);
    // Its contribution is on the board already: not submitted again (signature 48 bytes, then
    // tag 1). Its log, which it posted early in the share phase, may be submitted again, byte
    // for byte.
    for e in &effects {
        if let Effect::Submit(s) = e
            && let TxBody::DkgPost { post } = &s.body
        {
            assert_ne!(post.get(48), Some(&1), "contribution submitted again");
            assert!(h.posts[CRASH].contains(post), "a post it had not made");
        }
    }
    h.apply(CRASH, effects);
    h.redeliver();
    while h.contract.state().current_view < 2 {
        h.step();
        assert!(h.height < 200, "view changes did not complete");
    }
    // No fault was recorded against anyone, in particular no equivocation by the restarted node.
    assert!(
        h.contract.state().slashings.is_empty(),
        "{:?}",
        h.contract.state().slashings
    );
    // One contribution per session (signature 48 bytes, tag 1, then the session id).
    let mut contributions: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for p in h.posts[CRASH].iter().filter(|p| p.get(48) == Some(&1)) {
        let previous = contributions.insert(p[49..81].to_vec(), p.clone());
        assert!(previous.is_none_or(|q| &q == p));
    }
    assert_eq!(contributions.len(), 2);
    let v1 = h.contract.view(1).unwrap().magic_block.block.clone();
    let v2 = h.contract.view(2).unwrap().magic_block.block.clone();
    assert_eq!(v1.group_key, v2.group_key);
    assert_eq!(v1.members.len(), N);
    for (i, d) in h.drivers.iter().enumerate() {
        let d = d.as_ref().unwrap();
        assert_eq!(d.state().current_view, 2, "node {i}");
        let share = d.state().shares.iter().find(|s| s.view == 2).unwrap();
        assert_eq!(share.group_key, hex::encode(v2.group_key.0), "node {i}");
        // The previous view's share is kept for the handover, older ones are not.
        assert!(d.state().shares.iter().all(|s| s.view >= 1));
        assert!(d.state().session.is_none());
    }
    // Both view changes were signed by both committees.
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::MagicBlockSigned {
            view: 2,
            role: keyquorum_contract::SignerRole::Old,
            ..
        }
    )));
}

/// Drivers follow phases that the contract closes before their deadlines (the end of a phase
/// reaches them as a `BoardDeadline` event, early or not): both view changes complete in a
/// handful of blocks where the deadlines alone would take over a hundred, and every driver ends
/// with the same key and shares as when every deadline is waited out.
#[test]
fn drivers_follow_phases_that_close_early() {
    const LEN: u64 = 30;
    let run = |close_early: bool| {
        let mut c = config();
        c.phases.contribute = LEN;
        c.phases.share = LEN;
        c.phases.publish = LEN;
        c.phases.wait = LEN;
        c.phases.close_early = close_early;
        let mut h = Harness::with_config(c);
        while h.contract.state().current_view < 2 {
            h.step();
            assert!(h.height < 20 * LEN, "view changes did not complete");
        }
        assert!(h.contract.state().slashings.is_empty());
        let v1 = h.contract.view(1).unwrap().magic_block.block.clone();
        let v2 = h.contract.view(2).unwrap().magic_block.block.clone();
        assert_eq!(v1.group_key, v2.group_key);
        let mut shares = Vec::new();
        for (i, d) in h.drivers.iter().enumerate() {
            let d = d.as_ref().unwrap();
            assert_eq!(d.state().current_view, 2, "node {i}");
            assert!(d.state().session.is_none(), "node {i}");
            let mut own: Vec<_> = d
                .state()
                .shares
                .iter()
                .map(|s| {
                    assert_eq!(s.group_key, hex::encode(v2.group_key.0), "node {i}");
                    (s.view, s.index)
                })
                .collect();
            own.sort();
            shares.push(own);
        }
        // Who is in the view, at which index (keys differ between runs: nodes draw their
        // polynomials from the OS).
        let members: Vec<_> = v2.members.iter().map(|m| (m.index, m.identity)).collect();
        (h.height, shares, members)
    };
    let (early_height, early_shares, early_members) = run(true);
    let (waited_height, waited_shares, waited_members) = run(false);
    // Start at block 2, then two view changes of a few blocks each, two blocks apart.
    assert!(early_height < LEN, "{early_height} blocks");
    assert!(waited_height > 7 * LEN, "{waited_height} blocks");
    assert_eq!(early_shares, waited_shares);
    assert_eq!(early_members, waited_members);
}
