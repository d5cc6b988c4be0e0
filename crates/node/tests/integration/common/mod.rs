//! Drivers following an in-process contract block by block, as the runtime would drive them
//! against the chain, with their direct messages routed between them in memory.
//!
//! The chain is the contract itself, except that [`Harness::tamper`] may rewrite the events the
//! nodes are served: a chain that lies to its nodes while its own state stays honest.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use keyquorum_contract::config::KeyMode;
use keyquorum_contract::hex::Bytes;
use keyquorum_contract::tx::{NetworkIdentity, SignerRole, TxBody};
use keyquorum_contract::{Contract, ContractConfig, Event, Size, Transaction};
use keyquorum_node::chain::{ChainAction, ChainBlock, ChainTx};
use keyquorum_node::driver::{Driver, Effect, Incoming, Verdict};
use keyquorum_node::metrics::Metrics;
use keyquorum_node::report::Reporter;
use keyquorum_node::status::Status;
use keyquorum_node::store::Store;
use keyquorum_node::{Fault, NodeKeys};
use sha2::{Digest, Sha256};

/// Rewrites one event before the nodes see it.
pub type Tamper = Box<dyn FnMut(&mut Event)>;

pub struct Harness {
    pub contract: Contract,
    chain_id: String,
    pub height: u64,
    dirs: Vec<tempfile::TempDir>,
    /// Each node's data file.
    pub paths: Vec<PathBuf>,
    pub keys: Vec<Arc<NodeKeys>>,
    pub drivers: Vec<Option<Driver>>,
    pub status: Vec<Arc<Mutex<Status>>>,
    pub metrics: Vec<Arc<Metrics>>,
    /// Each node's reporter: writes its status and metrics from its driver's observations.
    pub reporters: Vec<Reporter>,
    /// Transactions for the next block: (node, body).
    pub pending: Vec<(usize, TxBody)>,
    /// Messages for a node that is down, delivered when it is back (senders retry).
    parked: VecDeque<(usize, Incoming)>,
    /// Every transaction each node asked to submit, in order.
    pub submitted: Vec<Vec<TxBody>>,
    /// Every message each node sent, in order: (recipient, payload).
    pub sent: Vec<Vec<(Vec<u8>, Vec<u8>)>>,
    /// Every fault proof each node asked for (the runtime drops them on the embedded chain).
    pub fault_reports: Vec<Vec<keyquorum_node::chain::FaultReport>>,
    /// Every block as the nodes were served it.
    pub blocks: Vec<ChainBlock>,
    pub tamper: Option<Tamper>,
}

/// Opens a driver and reports what it observed on opening, as the runtime does.
fn open_driver(
    path: &std::path::Path,
    keys: Arc<NodeKeys>,
    reporter: &Reporter,
) -> (Driver, Vec<Effect>) {
    open_driver_with(path, keys, reporter, Fault::None)
}

fn open_driver_with(
    path: &std::path::Path,
    keys: Arc<NodeKeys>,
    reporter: &Reporter,
    fault: Fault,
) -> (Driver, Vec<Effect>) {
    let store = Store::open(path).unwrap();
    let (mut d, effects) = Driver::open(store, keys, fault).unwrap();
    reporter.apply(d.drain_observations());
    (d, effects)
}

/// The contract the harness's small networks run: committees of 4 up to `max_size` members,
/// threshold 3 and dealer quorum `quorum`, short phases (contribute 2, share 3, publish 2, wait
/// 3 blocks), the first view change at block 2 and a new view every 2 blocks, keys made as
/// `key_mode` says.
pub fn small_network(
    chain_id: &str,
    max_size: u32,
    quorum: u32,
    key_mode: KeyMode,
) -> ContractConfig {
    let mut c = ContractConfig::defaults(chain_id, max_size);
    c.committee.min_size = 4;
    c.committee.threshold = Size::Count(3);
    c.committee.quorum = Size::Count(quorum);
    c.phases.contribute = 2;
    c.phases.share = 3;
    c.phases.publish = 2;
    c.phases.wait = 3;
    c.first_view_change = 2;
    c.view_length = 2;
    c.key_mode = key_mode;
    c
}

/// Free balance each node keeps beside its stake.
pub const SPARE: u64 = 10_000;

impl Harness {
    /// One node per stake, each funded at genesis with its stake plus [`SPARE`] (for later
    /// stake increases) and registering in the first block.
    pub fn new(config: ContractConfig, stakes: &[u64]) -> Self {
        let config = stakes.iter().enumerate().fold(config, |c, (i, stake)| {
            let keys = NodeKeys::from_master(&[i as u8 + 1; 32]);
            c.fund(keys.identity().public(), stake + SPARE)
        });
        let chain_id = config.chain_id.clone();
        let mut h = Harness {
            contract: Contract::new(config).unwrap(),
            chain_id,
            height: 0,
            dirs: Vec::new(),
            paths: Vec::new(),
            keys: Vec::new(),
            drivers: Vec::new(),
            status: Vec::new(),
            metrics: Vec::new(),
            reporters: Vec::new(),
            pending: Vec::new(),
            parked: VecDeque::new(),
            submitted: vec![Vec::new(); stakes.len()],
            sent: vec![Vec::new(); stakes.len()],
            fault_reports: vec![Vec::new(); stakes.len()],
            blocks: Vec::new(),
            tamper: None,
        };
        for (i, stake) in stakes.iter().enumerate() {
            let keys = Arc::new(NodeKeys::from_master(&[i as u8 + 1; 32]));
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("node.redb");
            let status = Arc::new(Mutex::new(Status::default()));
            let metrics = Arc::new(Metrics::new());
            let reporter = Reporter::new(status.clone(), metrics.clone());
            let (d, effects) = open_driver(&path, keys.clone(), &reporter);
            assert!(effects.is_empty());
            h.pending.push((
                i,
                TxBody::Register {
                    pop: keys.identity().proof_of_possession(),
                    encryption_key: keys.encryption().public_key(),
                    network: NetworkIdentity {
                        peer_id: Bytes(keys.peer_id().to_bytes()),
                        addresses: vec![format!("/ip4/127.0.0.1/tcp/{}", 7000 + i)],
                    },
                    stake: *stake,
                },
            ));
            h.dirs.push(dir);
            h.paths.push(path);
            h.keys.push(keys);
            h.drivers.push(Some(d));
            h.status.push(status);
            h.metrics.push(metrics);
            h.reporters.push(reporter);
        }
        h
    }

    pub fn index_of(&self, identity: &[u8]) -> usize {
        self.keys
            .iter()
            .position(|k| k.identity().public().as_bytes()[..] == identity[..])
            .unwrap()
    }

    /// Carries out a node's effects: messages to peers (and their answers), transactions for
    /// the next block.
    pub fn apply(&mut self, i: usize, effects: Vec<Effect>) {
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
                            self.reporters[j].apply(d.drain_observations());
                            if v[0] == Verdict::Later {
                                self.parked.push_back((j, msg));
                            }
                            queue.extend(more.into_iter().map(|e| (j, e)));
                        }
                    }
                }
                Effect::Submit(s) => {
                    let body = match s.action {
                        ChainAction::Tx(body) => body,
                        // The embedded chain judges faults from its own board: the runtime
                        // sends it no proofs.
                        ChainAction::ProveFault(r) => {
                            self.fault_reports[from].push(r);
                            continue;
                        }
                        other => panic!("the embedded chain takes no {}", other.kind()),
                    };
                    self.submitted[from].push(body.clone());
                    self.pending.push((from, body));
                }
                _ => {}
            }
        }
    }

    /// One block: the pending transactions, the contract's end of block, every node.
    pub fn step(&mut self) {
        self.height += 1;
        let h = self.height;
        let mut nonces: BTreeMap<usize, u64> = BTreeMap::new();
        let mut txs = Vec::new();
        // A transaction refused for its nonce (one before it in the block was refused, and
        // took no nonce) goes in the next block, as the runtime sends it again.
        let mut again = Vec::new();
        for (i, body) in std::mem::take(&mut self.pending) {
            let key = &self.keys[i];
            let nonce = nonces
                .entry(i)
                .or_insert_with(|| self.contract.next_nonce(key.identity().public()));
            let bytes =
                Transaction::sign(&self.chain_id, key.identity(), *nonce, body.clone()).encode();
            *nonce += 1;
            let (events, rejected) = match self.contract.apply_tx(&bytes, h) {
                Ok(e) => (e, None),
                Err(r) => {
                    if r.code() == "bad_nonce" {
                        again.push((i, body));
                    }
                    (Vec::new(), Some((r.code().to_string(), r.to_string())))
                }
            };
            txs.push(ChainTx {
                hash: Sha256::digest(&bytes).into(),
                tx: bytes,
                events,
                rejected,
            });
        }
        self.pending = again;
        let end = self.contract.end_block(h);
        let mut block = ChainBlock {
            height: h,
            time_ms: h * 100,
            txs,
            end_block_events: end,
        };
        if let Some(t) = self.tamper.as_mut() {
            for e in block
                .txs
                .iter_mut()
                .flat_map(|t| t.events.iter_mut())
                .chain(block.end_block_events.iter_mut())
            {
                t(e);
            }
        }
        self.blocks.push(block);
        for i in 0..self.drivers.len() {
            // A driver that was down catches up from its cursor, as the runtime's follower does.
            let missed: Vec<ChainBlock> = match self.drivers[i].as_ref() {
                Some(d) => self.blocks[(d.cursor().max(1) - 1) as usize..].to_vec(),
                None => continue,
            };
            for b in &missed {
                let d = self.drivers[i].as_mut().unwrap();
                let out = d.process_block(b).unwrap();
                self.reporters[i].apply(d.drain_observations());
                self.apply(i, out.effects);
            }
        }
        self.redeliver();
    }

    /// Steps until `done` holds, at most `limit` more blocks.
    pub fn run_until(&mut self, limit: u64, done: impl Fn(&Harness) -> bool) {
        let stop = self.height + limit;
        while !done(self) {
            assert!(self.height < stop, "not reached by height {stop}");
            self.step();
        }
    }

    /// Retries parked messages to nodes that are up.
    pub fn redeliver(&mut self) {
        let parked = std::mem::take(&mut self.parked);
        for (j, msg) in parked {
            let Some(d) = self.drivers[j].as_mut() else {
                self.parked.push_back((j, msg));
                continue;
            };
            let (v, more) = d.process_messages(vec![msg.clone()]).unwrap();
            self.reporters[j].apply(d.drain_observations());
            if v[0] == Verdict::Later {
                self.parked.push_back((j, msg));
            }
            self.apply(j, more);
        }
    }

    /// Node `i` comes back on a new, empty data file (its database is lost) and catches up
    /// with the chain from the first block, told the chain's height first as the runtime does.
    pub fn restart_with_lost_database(&mut self, i: usize) {
        self.drivers[i] = None;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        self.fresh_status(i);
        let reporter = &self.reporters[i];
        let (mut d, effects) = open_driver(&path, self.keys[i].clone(), reporter);
        assert!(effects.is_empty());
        let mut effects = d.set_head(self.height).unwrap();
        for b in &self.blocks {
            effects.extend(d.process_block(b).unwrap().effects);
            reporter.apply(d.drain_observations());
        }
        effects.extend(d.set_head(self.height).unwrap());
        reporter.apply(d.drain_observations());
        self.dirs[i] = dir;
        self.paths[i] = path;
        self.drivers[i] = Some(d);
        self.apply(i, effects);
        self.redeliver();
    }

    /// Node `i`'s `/status` and metrics start empty, as a restarted process's do.
    pub fn fresh_status(&mut self, i: usize) {
        self.status[i] = Arc::new(Mutex::new(Status::default()));
        self.metrics[i] = Arc::new(Metrics::new());
        self.reporters[i] = Reporter::new(self.status[i].clone(), self.metrics[i].clone());
    }

    /// Node `i` comes back on its own data file after it was dropped (killed): returns the
    /// effects the reopened driver resumes with, not carried out yet.
    pub fn reopen(&mut self, i: usize) -> Vec<Effect> {
        let (d, effects) = open_driver(&self.paths[i], self.keys[i].clone(), &self.reporters[i]);
        self.drivers[i] = Some(d);
        effects
    }

    /// Node `i` comes back on its data file as a database restored from a backup is started
    /// (`--restored-from-backup`): returns the effects the reopened driver resumes with.
    pub fn reopen_restored_from_backup(&mut self, i: usize) -> Vec<Effect> {
        Store::open(&self.paths[i])
            .unwrap()
            .mark_restored_from_backup()
            .unwrap();
        self.reopen(i)
    }

    /// Node `i`, reopened with `effects`, carries them out and then follows the chain up to
    /// its head, as the runtime tells a driver once it has caught up (`Driver::set_head`).
    pub fn catch_up_to_head(&mut self, i: usize, effects: Vec<Effect>) {
        self.apply(i, effects);
        let effects = self.drivers[i]
            .as_mut()
            .unwrap()
            .set_head(self.height)
            .unwrap();
        self.apply(i, effects);
    }

    /// The DKG posts node `i` submitted, in order.
    pub fn posts(&self, i: usize) -> Vec<Vec<u8>> {
        self.submitted[i]
            .iter()
            .filter_map(|b| match b {
                TxBody::DkgPost { post } => Some(post.clone()),
                _ => None,
            })
            .collect()
    }

    /// Every event the nodes were served, in chain order.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.blocks.iter().flat_map(|b| {
            b.txs
                .iter()
                .flat_map(|t| t.events.iter())
                .chain(&b.end_block_events)
        })
    }

    /// The magic-block partial signatures node `i` submitted for `view`.
    pub fn signatures(&self, i: usize, view: u64) -> Vec<SignerRole> {
        self.submitted[i]
            .iter()
            .filter_map(|b| match b {
                TxBody::MagicBlockSignature { view: v, role, .. } if *v == view => Some(*role),
                _ => None,
            })
            .collect()
    }

    /// Node `i` runs with `fault` injected from now on (its driver reopened on its database).
    pub fn set_fault(&mut self, i: usize, fault: Fault) {
        self.drivers[i] = None;
        let (d, effects) = open_driver_with(
            &self.paths[i],
            self.keys[i].clone(),
            &self.reporters[i],
            fault,
        );
        self.drivers[i] = Some(d);
        self.apply(i, effects);
    }

    /// Every node sets its verifiable-encryption key in the next block, as the runtime does once
    /// registered (complaint-variant committees need it).
    pub fn set_verifiable_keys(&mut self) {
        for i in 0..self.keys.len() {
            let key = self.keys[i].verifiable_public();
            self.pending.push((i, TxBody::SetVerifiableKey { key }));
        }
    }

    /// Bytes of the `DkgPost` transactions in the blocks served so far.
    pub fn dkg_post_bytes(&self) -> usize {
        self.blocks
            .iter()
            .flat_map(|b| &b.txs)
            .filter(|t| {
                Transaction::decode(&t.tx, usize::MAX)
                    .is_ok_and(|tx| matches!(tx.body, TxBody::DkgPost { .. }))
            })
            .map(|t| t.tx.len())
            .sum()
    }

    pub fn driver(&self, i: usize) -> &Driver {
        self.drivers[i].as_ref().unwrap()
    }
}

/// One HTTP/1.0 GET on loopback: (content type, body).
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    (content_type, body.to_string())
}

/// A node of master seed `[master; 32]` run in this process against the embedded chain at
/// `url` (re-executing its blocks), with its status server on a free loopback port and no
/// beacon; `stake` is its registration's. Returns its status address and the sender that
/// stops it (dropping it stops the node too). A node that fails panics its task.
pub async fn spawn_node(
    url: &str,
    master: [u8; 32],
    stake: u64,
    data_dir: &std::path::Path,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let mut node = keyquorum_node::NodeConfig {
        data_dir: data_dir.to_path_buf(),
        status_listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        stake,
        ..keyquorum_node::NodeConfig::default()
    };
    node.beacon.enabled = false;
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let client = keyquorum_node::DevchainClient::verifying(url, None).unwrap();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) = keyquorum_node::runtime::run(
            node,
            keyquorum_node::NodeKeys::from_master(&master),
            client,
            shutdown,
            Some(ready_tx),
        )
        .await
        {
            panic!("node: {e}");
        }
    });
    (ready.await.unwrap().status_addr, stop)
}

/// `GET /status` of the node at `addr`, decoded.
pub async fn status_of(addr: std::net::SocketAddr) -> keyquorum_node::status::Status {
    let body = tokio::task::spawn_blocking(move || http_get(addr, "/status").1)
        .await
        .unwrap();
    serde_json::from_str(&body).unwrap()
}
