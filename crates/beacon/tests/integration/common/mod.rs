//! Shared set-up of the engine tests: dealing a group, an in-memory store, and a network that
//! delivers every broadcast to every member that is up.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};

use blstrs::Scalar;
use keyquorum_beacon::{
    Action, ChainInfo, ChainLink, DrandScheme, Engine, EngineConfig, Member, MemberId,
    PartialBeacon, Rejected, Round, RoundStore, SigningShare, ViewGroup,
};
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::{Curve, tbls};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub const GENESIS: i64 = 1_700_000_000;
pub const BEACON_ID: &str = "keyquorum-test";

pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// The rounds a node has stored.
#[derive(Debug, Default, Clone)]
pub struct MemStore(pub BTreeMap<u64, Round>);

impl RoundStore for MemStore {
    fn last_round(&self) -> u64 {
        self.0.keys().next_back().copied().unwrap_or(0)
    }
    fn get(&self, round: u64) -> Option<Round> {
        self.0.get(&round).cloned()
    }
}

/// A dealt group: shares at indices `1..=n` of a random polynomial of degree `t - 1`.
pub struct Dealt<S: DrandScheme> {
    pub group: ViewGroup<S>,
    pub shares: Vec<Scalar>,
    pub secret: Scalar,
}

pub fn deal<S: DrandScheme>(n: usize, t: usize, secret: Option<Scalar>, seed: u64) -> Dealt<S>
where
    S::Public: Curve<Scalar = Scalar>,
{
    let poly = Polynomial::<Scalar>::random(t - 1, secret, &mut rng(seed));
    let mut members = Vec::new();
    let mut shares = Vec::new();
    for i in 1..=n as u64 {
        let x = Scalar::from(i);
        let share = poly.evaluate(&x);
        members.push(Member {
            share_index: x,
            public_share: tbls::public_key::<S>(&Secret::new(share)),
        });
        shares.push(share);
    }
    let group_key = tbls::public_key::<S>(&Secret::new(poly.constant()));
    Dealt {
        group: ViewGroup::new(t, members, group_key).expect("a valid group"),
        shares,
        secret: poly.constant(),
    }
}

pub fn group_key_bytes<S: DrandScheme>(group: &ViewGroup<S>) -> Vec<u8> {
    S::Public::point_bytes(group.group_key())
}

/// The info of a network's first chain started by a magic block with hash `[mb; 32]`.
pub fn first_chain<S: DrandScheme>(group: &ViewGroup<S>, mb: u8) -> ChainInfo {
    ChainInfo::keyquorum(
        S::ID,
        &group_key_bytes(group),
        3,
        GENESIS,
        BEACON_ID,
        ChainLink {
            magic_block_hash: [mb; 32],
            previous_chain_hash: None,
        },
    )
    .unwrap()
}

/// One member (or observer) with its engine, store and the culprits it named.
pub struct Node<S: DrandScheme> {
    pub engine: Engine<S>,
    pub store: MemStore,
    pub culprits: Vec<(MemberId, u64)>,
}

pub fn nodes<S: DrandScheme>(dealt: &Dealt<S>, chain: &ChainInfo) -> Vec<Node<S>> {
    (0..dealt.shares.len())
        .map(|i| Node {
            engine: Engine::new(
                chain.clone(),
                dealt.group.clone(),
                Some(SigningShare {
                    member: i as MemberId,
                    share: Secret::new(dealt.shares[i]),
                }),
                EngineConfig::default(),
            )
            .unwrap(),
            store: MemStore::default(),
            culprits: Vec::new(),
        })
        .collect()
}

/// Carries out a node's actions: stores rounds (never two values for one round), records
/// culprits, queues broadcasts.
pub fn apply<S: DrandScheme>(
    node: &mut Node<S>,
    from: usize,
    actions: Vec<Action>,
    queue: &mut VecDeque<(usize, PartialBeacon)>,
) {
    for a in actions {
        match a {
            Action::Broadcast(p) => queue.push_back((from, p)),
            Action::Store(r) => {
                assert!(
                    node.store.0.insert(r.round, r.clone()).is_none(),
                    "round {} produced twice",
                    r.round
                );
            }
            Action::Culprit { member, round } => node.culprits.push((member, round)),
        }
    }
}

/// Delivers queued partials to every other node that is up until nothing is left.
pub fn deliver<S: DrandScheme>(
    nodes: &mut [Node<S>],
    up: &[bool],
    mut queue: VecDeque<(usize, PartialBeacon)>,
) {
    while let Some((from, p)) = queue.pop_front() {
        for j in 0..nodes.len() {
            if j == from || !up[j] {
                continue;
            }
            let node = &mut nodes[j];
            match node
                .engine
                .on_partial(Some(from as MemberId), &p, &node.store)
            {
                Ok(actions) => apply(node, j, actions, &mut queue),
                // A round the receiver already has, or a partial sent again: harmless.
                Err(Rejected::Stale { .. } | Rejected::Duplicate { .. }) => {}
                Err(e) => panic!("node {j} refused node {from}'s partial: {e}"),
            }
        }
    }
}

/// Every node that is up reaches `now_round`; then the network settles.
pub fn tick<S: DrandScheme>(nodes: &mut [Node<S>], up: &[bool], now_round: u64) {
    let mut queue = VecDeque::new();
    for i in 0..nodes.len() {
        if up[i] {
            let node = &mut nodes[i];
            let actions = node.engine.tick(now_round, &node.store);
            apply(node, i, actions, &mut queue);
        }
    }
    deliver(nodes, up, queue);
}
