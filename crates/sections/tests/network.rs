//! A deterministic in-process network of section nodes: every message crosses the wire encoding,
//! every node runs through its persistent coordinator (so a crash is a restart from its store),
//! and DKG deadlines are passed in lock step once nothing is in flight.
//!
//! The scenario grows a section from the genesis node to `ELDER_COUNT` elders, lets an elder
//! leave, runs a DKG with a silent candidate (failure agreement, restart without it), crashes
//! and restarts an elder, sends spoofed and under-quorum starts, and splits the section. After
//! every step it checks: all honest nodes of a section hold the same key chain, it verifies from
//! the genesis key (each key signed by its predecessor), it ends in the section's key, and no node
//! started a DKG that fewer than a supermajority of its section's elders signed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use blstrs::Scalar;
use keyquorum_crypto::secret::Secret;
use keyquorum_sections::coordinator::{Dropped, Output};
use keyquorum_sections::elders::{ELDER_COUNT, Member, Peer, elder_change, select_elders, split};
use keyquorum_sections::keys::PublicKey;
use keyquorum_sections::sap::genesis;
use keyquorum_sections::session::{DkgStart, SessionId, supermajority};
use keyquorum_sections::store::{LoggedInput, MemoryStore, PersistError, PersistentCoordinator};
use keyquorum_sections::wire::Message;
use keyquorum_sections::{KeyChain, Name, Prefix};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn secret(seed: u64) -> Secret<Scalar> {
    Secret::new(Scalar::from(seed * 7919 + 31))
}

struct Node {
    seed: u64,
    member: Member,
    coordinator: Option<PersistentCoordinator<MemoryStore>>,
}

struct Network {
    genesis_key: PublicKey,
    nodes: BTreeMap<Name, Node>,
    /// Nodes that neither send nor receive.
    silent: BTreeSet<Name>,
    /// Nodes that left.
    gone: BTreeSet<Name>,
    queue: VecDeque<(Name, Name, Vec<u8>)>,
    /// Starts sent, with the elders that signed them and the elders of the section they were
    /// signed in (who hand over).
    starts: BTreeMap<SessionId, (DkgStart, BTreeSet<Name>, Vec<Name>)>,
    /// Failure agreements checked by elders: the exclusions, by session.
    agreed: BTreeMap<SessionId, BTreeSet<Name>>,
    next_seed: u64,
}

impl Network {
    /// The genesis node alone: the genesis key, no DKG.
    fn new() -> Self {
        let seed = 1;
        let peer = Peer::new(&secret(seed), "genesis:1".into());
        let (sap, share) = genesis(peer.clone(), &mut ChaCha20Rng::seed_from_u64(0));
        let genesis_key = sap.section_key;
        let coordinator = keyquorum_sections::coordinator::Coordinator::new(
            secret(seed),
            genesis_key,
            KeyChain::genesis(),
            sap,
            Some(share),
        )
        .unwrap();
        let name = peer.name();
        let mut nodes = BTreeMap::new();
        nodes.insert(
            name,
            Node {
                seed,
                member: Member { peer, age: 255 },
                coordinator: Some(
                    PersistentCoordinator::create(coordinator, MemoryStore::default()).unwrap(),
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
            next_seed: 2,
        }
    }

    fn honest(&self, name: &Name) -> bool {
        !self.silent.contains(name) && !self.gone.contains(name)
    }

    fn node(&self, name: &Name) -> &keyquorum_sections::coordinator::Coordinator {
        self.nodes[name].coordinator.as_ref().unwrap().coordinator()
    }

    /// The section prefixes honest nodes are in.
    fn prefixes(&self) -> BTreeSet<Prefix> {
        self.nodes
            .keys()
            .filter(|n| self.honest(n))
            .map(|n| self.node(n).sap().prefix)
            .collect()
    }

    /// The members (not gone) of the section under `prefix`.
    fn members(&self, prefix: &Prefix) -> Vec<Member> {
        self.nodes
            .iter()
            .filter(|(n, _)| !self.gone.contains(*n) && prefix.matches(n))
            .map(|(_, node)| node.member.clone())
            .collect()
    }

    /// An honest node of the section under `prefix`, and the section's SAP as it sees it.
    fn reference(&self, prefix: &Prefix) -> Name {
        *self
            .nodes
            .keys()
            .find(|n| self.honest(n) && self.node(n).sap().prefix == *prefix)
            .unwrap()
    }

    /// A node joins the section its name falls in, learning the SAP and chain from an honest
    /// member (the join response, which it checks against the genesis key).
    fn join(&mut self, age: u8) -> Name {
        let seed = self.next_seed;
        self.next_seed += 1;
        let peer = Peer::new(&secret(seed), format!("node:{seed}"));
        let name = peer.name();
        let prefix = *self.prefixes().iter().find(|p| p.matches(&name)).unwrap();
        let reference = self.node(&self.reference(&prefix));
        let coordinator = keyquorum_sections::coordinator::Coordinator::new(
            secret(seed),
            self.genesis_key,
            reference.chain().clone(),
            reference.sap().clone(),
            None,
        )
        .unwrap();
        self.nodes.insert(
            name,
            Node {
                seed,
                member: Member { peer, age },
                coordinator: Some(
                    PersistentCoordinator::create(coordinator, MemoryStore::default()).unwrap(),
                ),
            },
        );
        name
    }

    fn send(&mut self, from: Name, to: Name, message: &Message) {
        self.queue.push_back((from, to, message.encode()));
    }

    /// `to` takes an input; refusals are the protocol's business and ignored here.
    fn take(&mut self, to: Name, input: LoggedInput) {
        if !self.honest(&to) {
            return;
        }
        let Some(node) = self.nodes.get_mut(&to).and_then(|n| n.coordinator.as_mut()) else {
            return;
        };
        let outputs = match node.take(&input) {
            Ok(out) => out,
            Err(PersistError::Dropped(_)) => return,
            Err(e) => panic!("{e:?}"),
        };
        for output in outputs {
            self.route(to, output);
        }
    }

    /// Sends a node's output where the protocol says.
    fn route(&mut self, from: Name, output: Output) {
        let section_elders = |net: &Network, session: &SessionId| net.starts[session].2.clone();
        match output {
            Output::DkgStarted { session, .. } => {
                // No start below a supermajority of the section's elders.
                let (_, signers, elders) = &self.starts[&session];
                let valid = signers.iter().filter(|s| elders.contains(s)).count();
                assert!(valid >= supermajority(elders.len()), "start below quorum");
            }
            Output::Dkg { to, message } => self.send(from, to, &Message::Dkg(message)),
            Output::StartSigned { start, signature } => {
                for to in start.names() {
                    self.send(
                        from,
                        to,
                        &Message::Start {
                            start: start.clone(),
                            signature,
                        },
                    );
                }
            }
            Output::BroadcastFailure {
                observation,
                signature,
            } => {
                let (start, _, _) = self.starts[&observation.session].clone();
                for to in start.names() {
                    if to != from {
                        self.send(
                            from,
                            to,
                            &Message::Failure {
                                observation: observation.clone(),
                                signature,
                            },
                        );
                    }
                }
            }
            Output::Restart {
                session,
                excluded,
                signatures,
                ..
            } => {
                for to in section_elders(self, &session) {
                    self.send(
                        from,
                        to,
                        &Message::FailureAgreement {
                            session,
                            excluded: excluded.clone(),
                            signatures: signatures.clone(),
                        },
                    );
                }
            }
            Output::FailureAgreed { session, excluded } => {
                self.agreed.insert(session, excluded);
            }
            Output::SapShare {
                session,
                sap,
                partial,
            } => {
                for to in section_elders(self, &session) {
                    self.send(
                        from,
                        to,
                        &Message::SapShare {
                            session,
                            sap: sap.clone(),
                            partial,
                        },
                    );
                }
            }
            Output::LinkShare {
                session,
                new_key,
                partial,
            } => {
                for to in section_elders(self, &session) {
                    if to != from {
                        self.send(
                            from,
                            to,
                            &Message::LinkShare {
                                session,
                                new_key,
                                partial,
                            },
                        );
                    }
                }
            }
            Output::NewElders(signed) => {
                let to: Vec<Name> = self
                    .nodes
                    .keys()
                    .filter(|n| signed.sap.prefix.matches(n))
                    .copied()
                    .collect();
                for to in to {
                    self.send(from, to, &Message::NewElders((*signed).clone()));
                }
            }
        }
    }

    /// Delivers everything in flight, decoding each message from its bytes.
    fn deliver(&mut self) {
        while let Some((from, to, bytes)) = self.queue.pop_front() {
            if !self.honest(&from) {
                continue;
            }
            let message = Message::decode(&bytes).expect("honest nodes send valid encodings");
            self.take(to, LoggedInput::Message { from, message });
        }
    }

    /// The honest elders of the section under `prefix` sign `start` and send it to its
    /// candidates.
    fn sign_and_send(&mut self, prefix: &Prefix, start: &DkgStart) {
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
    fn run(&mut self, start: &DkgStart, max: usize) {
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
    fn elect(&mut self, prefix: &Prefix) {
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
            self.run(&start, 6);
            match self.agreed.get(&start.session) {
                Some(agreed) => excluded.extend(agreed.iter().copied()),
                None => return,
            }
        }
    }

    /// The invariants, checked after every step.
    fn check(&self) {
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
                assert_eq!(node.chain(), first.chain(), "chains differ in {prefix:?}");
                assert_eq!(node.sap(), first.sap());
                node.chain().verify_from(&self.genesis_key).unwrap();
                assert_eq!(
                    node.chain().last_key(&self.genesis_key),
                    node.sap().section_key
                );
                // Exactly the elders hold a share of the section key.
                assert_eq!(
                    node.our_share().map(|s| s.section_key),
                    node.sap()
                        .names()
                        .contains(n)
                        .then_some(node.sap().section_key)
                );
            }
            // Each key is signed by its predecessor, from the genesis key on.
            let mut parent = self.genesis_key;
            for link in first.chain().links() {
                assert_eq!(link.parent_key, parent);
                link.verify().unwrap();
                parent = link.key;
            }
        }
    }

    fn crash_and_restart(&mut self, name: Name) {
        let node = self.nodes.get_mut(&name).unwrap();
        let store = node.coordinator.take().unwrap().into_store();
        let (restored, outputs) = PersistentCoordinator::restore(secret(node.seed), store).unwrap();
        node.coordinator = Some(restored);
        for output in outputs {
            self.route(name, output);
        }
        self.deliver();
    }
}

#[test]
fn a_network_grows_loses_elders_splits_and_keeps_one_verifiable_chain_per_section() {
    let mut net = Network::new();
    net.check();
    let root = Prefix::ROOT;

    // Growth: each older joiner changes the elders, up to ELDER_COUNT.
    for i in 0..ELDER_COUNT as u8 {
        net.join(200 - i);
        net.elect(&root);
        net.check();
    }
    let elders = net.node(&net.reference(&root)).sap().names();
    assert_eq!(elders.len(), ELDER_COUNT);
    let chain_len = net.node(&elders[0]).chain().key_count();
    assert!(chain_len >= ELDER_COUNT as u64);

    // Spoofed starts: signed by non-elders, and by fewer than a supermajority of the elders.
    let young = net.join(1);
    let mut candidates: Vec<Peer> = elders
        .iter()
        .map(|n| net.nodes[n].member.peer.clone())
        .collect();
    candidates[0] = net.nodes[&young].member.peer.clone();
    let spoof = DkgStart::new(root, candidates, chain_len);
    for n in 0..3 {
        let signature = spoof.sign(&secret(net.nodes[&young].seed + n * 1000));
        for to in spoof.names() {
            net.send(
                young,
                to,
                &Message::Start {
                    start: spoof.clone(),
                    signature,
                },
            );
        }
    }
    let few: Vec<Name> = elders[..supermajority(ELDER_COUNT) - 1].to_vec();
    net.starts.insert(
        spoof.session,
        (spoof.clone(), few.iter().copied().collect(), elders.clone()),
    );
    for e in &few {
        net.take(*e, LoggedInput::SignStart(spoof.clone()));
    }
    net.deliver();
    for n in spoof.names() {
        assert!(net.node(&n).knows(&spoof.session) || !net.honest(&n));
    }
    assert_eq!(net.node(&elders[1]).chain().key_count(), chain_len);
    net.check();

    // An elder leaves: the elders change without it.
    let leaver = elders[2];
    net.gone.insert(leaver);
    net.elect(&root);
    net.check();
    assert!(
        !net.node(&net.reference(&root))
            .sap()
            .names()
            .contains(&leaver)
    );

    // An elder goes silent, then an old node joins: the DKG fails, the candidates agree on the
    // silent one, and the restart runs without it.
    let quiet = net.node(&net.reference(&root)).sap().names()[0];
    net.silent.insert(quiet);
    let failures_before = net.agreed.len();
    net.join(250);
    net.elect(&root);
    net.check();
    assert!(net.agreed.len() > failures_before, "no failure agreement");
    assert!(net.agreed.values().any(|set| set.contains(&quiet)));
    assert!(
        !net.node(&net.reference(&root))
            .sap()
            .names()
            .contains(&quiet)
    );

    // An elder crashes and restarts from its store.
    let elder = net.node(&net.reference(&root)).sap().names()[1];
    net.crash_and_restart(elder);
    net.check();
    assert!(net.node(&elder).our_share().is_some());

    // Growth until both halves can hold ELDER_COUNT members, then a split, each half authorised
    // by the parent's elders.
    let halves = loop {
        let members = net.members(&root);
        let live: Vec<Member> = members
            .into_iter()
            .filter(|m| net.honest(&m.peer.name()))
            .collect();
        if let Some(halves) = split(&root, &live, ELDER_COUNT) {
            break halves;
        }
        net.join(5);
    };
    net.check();
    let generation = net.node(&net.reference(&root)).chain().key_count();
    let mut starts = Vec::new();
    for (prefix, members) in &halves {
        let start = DkgStart::new(
            *prefix,
            select_elders(members, ELDER_COUNT, &BTreeSet::new()),
            generation,
        );
        net.sign_and_send(&root, &start);
        starts.push(start);
    }
    for start in &starts {
        net.run(start, 6);
    }
    net.check();
    let prefixes = net.prefixes();
    assert_eq!(prefixes, halves.iter().map(|(p, _)| *p).collect());
    // Both halves' chains share every link up to the split.
    let a = net.node(&net.reference(&halves[0].0)).chain().clone();
    let b = net.node(&net.reference(&halves[1].0)).chain().clone();
    assert_eq!(
        a.links()[..a.links().len() - 1],
        b.links()[..b.links().len() - 1]
    );
    assert_ne!(a.links().last(), b.links().last());

    // A refused input is refused with a reason, not a panic: a late message of a superseded or
    // finished session.
    let late = Message::Dkg(keyquorum_sections::dkg::DkgMessage::Vote {
        session: starts[0].session,
        round: 0,
        posts: vec![],
    });
    let n = net.reference(&halves[0].0);
    let result = net
        .nodes
        .get_mut(&n)
        .unwrap()
        .coordinator
        .as_mut()
        .unwrap()
        .take(&LoggedInput::Message {
            from: starts[0].names()[0],
            message: late,
        });
    assert!(matches!(
        result,
        Err(PersistError::Dropped(Dropped::UnknownSession))
    ));
}
