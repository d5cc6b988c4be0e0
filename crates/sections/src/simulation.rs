//! A deterministic in-process network of section nodes, for tests and demonstrations: every
//! message crosses the wire encoding ([`crate::wire`]), every node runs through a persistent
//! coordinator over an in-memory store (so a crash is a restart from its store), and DKG
//! deadlines are passed in lock step once nothing is in flight.
//!
//! Node keys are derived from small seeds so that runs are reproducible; a simulation's keys
//! protect nothing. [`Network::check`] states what must hold after every step: all honest nodes
//! of a section hold the same key chain, it verifies from the genesis key (each key signed by its
//! predecessor) and ends in the section's key, exactly the elders hold shares of it, and no node
//! started a DKG that fewer than a supermajority of its section's elders signed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use blstrs::Scalar;
use keyquorum_crypto::hash::tagged_hash;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::{Bls12381G1, Curve};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::chain::KeyChain;
use crate::coordinator::{Coordinator, Output};
use crate::elders::{ELDER_COUNT, Member, Peer, elder_change};
use crate::keys::PublicKey;
use crate::name::{Name, Prefix};
use crate::sap::genesis;
use crate::session::{DkgStart, SessionId, supermajority};
use crate::store::{LoggedInput, MemoryStore, PersistError, PersistentCoordinator};
use crate::wire::Message;

/// The node key of simulated node `seed`.
pub fn secret(seed: u64) -> Secret<Scalar> {
    let seed = tagged_hash(
        "keyquorum-sections/simulation-node/v1",
        &[&seed.to_be_bytes()],
    );
    Secret::new(Bls12381G1::random_scalar(&mut ChaCha20Rng::from_seed(seed)))
}

/// One simulated node.
pub struct Node {
    /// The seed its node key comes from.
    pub seed: u64,
    /// Its membership record.
    pub member: Member,
    /// Its coordinator; `None` only while crashed.
    pub coordinator: Option<PersistentCoordinator<MemoryStore>>,
}

/// The simulated network.
pub struct Network {
    /// The genesis key.
    pub genesis_key: PublicKey,
    /// Every node that ever joined.
    pub nodes: BTreeMap<Name, Node>,
    /// Nodes that neither send nor receive.
    pub silent: BTreeSet<Name>,
    /// Nodes that left.
    pub gone: BTreeSet<Name>,
    /// Encoded messages in flight: sender, recipient, bytes.
    pub queue: VecDeque<(Name, Name, Vec<u8>)>,
    /// Starts sent, with the elders that signed them and the elders of the section they were
    /// signed in (who hand over).
    pub starts: BTreeMap<SessionId, (DkgStart, BTreeSet<Name>, Vec<Name>)>,
    /// Failure agreements checked by elders: the exclusions, by session.
    pub agreed: BTreeMap<SessionId, BTreeSet<Name>>,
    /// Broken invariants seen while routing (a DKG started below quorum).
    pub violations: Vec<String>,
    next_seed: u64,
}

impl Network {
    /// The genesis node alone: the genesis key, drawn from `seed`, and no DKG.
    pub fn new(seed: u64) -> Self {
        let rng_seed = seed;
        let seed = 1;
        let peer = Peer::new(&secret(seed), "genesis:1".into());
        let (sap, share) = genesis(peer.clone(), &mut ChaCha20Rng::seed_from_u64(rng_seed));
        let genesis_key = sap.section_key;
        let coordinator = Coordinator::new(
            secret(seed),
            genesis_key,
            KeyChain::genesis(),
            sap,
            Some(share),
        )
        .expect("the genesis chain ends in the genesis key");
        let name = peer.name();
        let mut nodes = BTreeMap::new();
        nodes.insert(
            name,
            Node {
                seed,
                member: Member { peer, age: 255 },
                coordinator: Some(
                    PersistentCoordinator::create(coordinator, MemoryStore::default())
                        .expect("an in-memory store does not fail"),
                ),
            },
        );
        Network {
            genesis_key,
            nodes,
            silent: BTreeSet::new(),
            gone: BTreeSet::new(),
            queue: VecDeque::new(),
            starts: BTreeMap::new(),
            agreed: BTreeMap::new(),
            violations: Vec::new(),
            next_seed: 2,
        }
    }

    /// Whether `name` is neither silent nor gone.
    pub fn honest(&self, name: &Name) -> bool {
        !self.silent.contains(name) && !self.gone.contains(name)
    }

    /// The coordinator of node `name`.
    pub fn node(&self, name: &Name) -> &Coordinator {
        self.nodes[name]
            .coordinator
            .as_ref()
            .expect("the node is up")
            .coordinator()
    }

    /// The section prefixes honest nodes are in.
    pub fn prefixes(&self) -> BTreeSet<Prefix> {
        self.nodes
            .keys()
            .filter(|n| self.honest(n))
            .map(|n| self.node(n).sap().prefix)
            .collect()
    }

    /// The members (not gone) of the section under `prefix`.
    pub fn members(&self, prefix: &Prefix) -> Vec<Member> {
        self.nodes
            .iter()
            .filter(|(n, _)| !self.gone.contains(*n) && prefix.matches(n))
            .map(|(_, node)| node.member.clone())
            .collect()
    }

    /// An honest node of the section under `prefix`, and the section's SAP as it sees it.
    pub fn reference(&self, prefix: &Prefix) -> Name {
        *self
            .nodes
            .keys()
            .find(|n| self.honest(n) && self.node(n).sap().prefix == *prefix)
            .unwrap()
    }

    /// A node joins the section its name falls in, learning the SAP and chain from an honest
    /// member (the join response, which it checks against the genesis key).
    pub fn join(&mut self, age: u8) -> Name {
        let seed = self.next_seed;
        self.next_seed += 1;
        let peer = Peer::new(&secret(seed), format!("node:{seed}"));
        let name = peer.name();
        let prefix = *self.prefixes().iter().find(|p| p.matches(&name)).unwrap();
        let reference = self.node(&self.reference(&prefix));
        let coordinator = Coordinator::new(
            secret(seed),
            self.genesis_key,
            reference.chain().clone(),
            reference.sap().clone(),
            None,
        )
        .expect("an honest member's chain verifies and ends in its SAP's key");
        self.nodes.insert(
            name,
            Node {
                seed,
                member: Member { peer, age },
                coordinator: Some(
                    PersistentCoordinator::create(coordinator, MemoryStore::default())
                        .expect("an in-memory store does not fail"),
                ),
            },
        );
        name
    }

    /// Puts `message` in flight from `from` to `to`.
    pub fn send(&mut self, from: Name, to: Name, message: &Message) {
        self.queue.push_back((from, to, message.encode()));
    }

    /// `to` takes an input; refusals are the protocol's business and ignored here.
    pub fn take(&mut self, to: Name, input: LoggedInput) {
        if !self.honest(&to) {
            return;
        }
        let Some(node) = self.nodes.get_mut(&to).and_then(|n| n.coordinator.as_mut()) else {
            return;
        };
        let outputs = match node.take(&input) {
            Ok(out) => out,
            Err(PersistError::Dropped(_)) => return,
            Err(e) => {
                self.violations.push(format!("store: {e:?}"));
                return;
            }
        };
        for output in outputs {
            self.route(to, output);
        }
    }

    /// Sends a node's output where the protocol says ([`crate::routing::deliveries`], the
    /// rule the node runtime sends by), after checking it: no DKG starts below a supermajority
    /// of the section's elders.
    pub fn route(&mut self, from: Name, output: Output) {
        match &output {
            Output::DkgStarted { session, .. } => {
                let (_, signers, elders) = &self.starts[session];
                let valid = signers.iter().filter(|s| elders.contains(s)).count();
                if valid < supermajority(elders.len()) {
                    self.violations.push(format!(
                        "{} started a DKG below quorum",
                        hex::encode(from.0)
                    ));
                }
            }
            Output::FailureAgreed {
                session, excluded, ..
            } => {
                self.agreed.insert(*session, excluded.clone());
            }
            _ => {}
        }
        let Some(coordinator) = self.nodes.get(&from).and_then(|n| n.coordinator.as_ref()) else {
            return;
        };
        // Every node knows every member, of both halves after a split.
        let members: Vec<Member> = self.nodes.values().map(|n| n.member.clone()).collect();
        for delivery in crate::routing::deliveries(coordinator.coordinator(), &members, &output) {
            self.send(from, delivery.to, &delivery.message);
        }
    }

    /// Delivers everything in flight, decoding each message from its bytes.
    pub fn deliver(&mut self) {
        while let Some((from, to, bytes)) = self.queue.pop_front() {
            if !self.honest(&from) {
                continue;
            }
            let Ok(message) = Message::decode(&bytes) else {
                self.violations
                    .push("an honest node sent an invalid encoding".into());
                continue;
            };
            self.take(to, LoggedInput::Message { from, message });
        }
    }

    /// The honest elders of the section under `prefix` sign `start` and send it to its
    /// candidates.
    pub fn sign_and_send(&mut self, prefix: &Prefix, start: &DkgStart) {
        let elders = self.node(&self.reference(prefix)).sap().names();
        let mut signers = BTreeSet::new();
        for e in &elders {
            if !self.honest(e) {
                continue;
            }
            signers.insert(*e);
        }
        self.starts.insert(
            start.session,
            (start.clone(), signers.clone(), elders.clone()),
        );
        for e in signers {
            self.take(e, LoggedInput::SignStart(start.clone()));
        }
    }

    /// Runs a session to its end: messages until quiet, then a deadline at every honest
    /// candidate, until its SAP applies at every honest candidate or `max` deadlines pass.
    pub fn run(&mut self, start: &DkgStart, max: usize) {
        self.deliver();
        for _ in 0..max {
            if start
                .names()
                .iter()
                .filter(|n| self.honest(n))
                .all(|n| self.node(n).sap().elders == start.candidates)
            {
                return;
            }
            for name in start.names() {
                self.take(name, LoggedInput::Deadline(start.session));
            }
            self.deliver();
        }
    }

    /// Elects the section under `prefix` anew if its elders should change, restarting after
    /// agreed failures without the agreed nodes.
    pub fn elect(&mut self, prefix: &Prefix) {
        let mut excluded = BTreeSet::new();
        for _attempt in 0..ELDER_COUNT {
            let current: BTreeSet<Name> = self
                .node(&self.reference(prefix))
                .sap()
                .names()
                .into_iter()
                .collect();
            let members = self.members(prefix);
            let Some(candidates) = elder_change(&current, &members, ELDER_COUNT, &excluded) else {
                return;
            };
            let generation = self.node(&self.reference(prefix)).chain().key_count();
            let start = DkgStart::new(*prefix, candidates, generation);
            self.sign_and_send(prefix, &start);
            self.run(&start, 6 + crate::dkg::START_GRACE as usize);
            match self.agreed.get(&start.session) {
                Some(agreed) => excluded.extend(agreed.iter().copied()),
                None => return,
            }
        }
    }

    /// The invariants, checked after every step (see the module docs); the first broken one.
    pub fn check(&self) -> Result<(), String> {
        if let Some(v) = self.violations.first() {
            return Err(v.clone());
        }
        for prefix in self.prefixes() {
            let honest: Vec<Name> = self
                .nodes
                .keys()
                .filter(|n| self.honest(n) && self.node(n).sap().prefix == prefix)
                .copied()
                .collect();
            let first = self.node(&honest[0]);
            for n in &honest {
                let node = self.node(n);
                if node.chain() != first.chain() || node.sap() != first.sap() {
                    return Err(format!("nodes of section {prefix:?} disagree"));
                }
                node.chain()
                    .verify_from(&self.genesis_key)
                    .map_err(|e| format!("chain does not verify: {e}"))?;
                if node.chain().last_key(&self.genesis_key) != node.sap().section_key {
                    return Err("chain does not end in the section key".into());
                }
                let expected = node
                    .sap()
                    .names()
                    .contains(n)
                    .then_some(node.sap().section_key);
                if node.our_share().map(|s| s.section_key) != expected {
                    return Err("a share held by a non-elder, or an elder without one".into());
                }
            }
            // Each key is signed by its predecessor, from the genesis key on.
            let mut parent = self.genesis_key;
            for link in first.chain().links() {
                if link.parent_key != parent || link.verify().is_err() {
                    return Err("a key not signed by its predecessor".into());
                }
                parent = link.key;
            }
        }
        Ok(())
    }

    /// Crashes node `name` and restarts it from its store, sending what the replay emits.
    pub fn crash_and_restart(&mut self, name: Name) {
        let node = self.nodes.get_mut(&name).expect("a node of the network");
        let store = node
            .coordinator
            .take()
            .expect("the node is up")
            .into_store();
        let (restored, outputs) = PersistentCoordinator::restore(secret(node.seed), store)
            .expect("an in-memory store holds what was saved");
        node.coordinator = Some(restored);
        for output in outputs {
            self.route(name, output);
        }
        self.deliver();
    }
}
