//! Ceremony builders for tests: deterministic member keys, configurations, and a minimal
//! lock-step driver (perfect network, every message delivered before the next deadline).

use std::collections::VecDeque;
use std::sync::Arc;

use crate::ackreveal::AckRevealParticipant;
use crate::identity::IdentityKeypair;
use crate::participant::{Action, DkgOutput, Failure, Input, Participant};
use crate::{Ceremony, CeremonyConfig, Member, Params, Reshare, Variant};
use keyquorum_crypto::Curve;
use keyquorum_crypto::encrypt::EncryptionSecretKey;
use keyquorum_crypto::index::IndexScheme;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::verifiable_encrypt::{
    VerifiableEncryptionPublicKey, VerifiableEncryptionSecretKey,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The secret keys of a test member.
pub struct MemberKeys {
    /// Identity (signing) key.
    pub identity: IdentityKeypair,
    /// Share-encryption key.
    pub encryption: EncryptionSecretKey,
    /// Verifiable share-encryption key (complaint variant).
    pub verifiable: VerifiableEncryptionSecretKey,
}

/// Member `i`'s keys, derived from `i` (the same in every run).
pub fn member(i: u32) -> MemberKeys {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_be_bytes());
    seed[31] = 0xaa;
    MemberKeys {
        identity: IdentityKeypair::from_seed(&seed).unwrap(),
        encryption: EncryptionSecretKey::from_seed(&seed),
        verifiable: VerifiableEncryptionSecretKey::generate(&mut ChaCha20Rng::from_seed(seed)),
    }
}

/// The members' verifiable-encryption public keys, in order (a complaint-variant
/// configuration's [`CeremonyConfig::verifiable_keys`]).
pub fn verifiable_keys(members: &[MemberKeys]) -> Vec<VerifiableEncryptionPublicKey> {
    members.iter().map(|m| m.verifiable.public_key()).collect()
}

/// Turns a configuration into a complaint-variant one for the same members.
pub fn complaint_variant<C: Curve>(
    mut config: CeremonyConfig<C>,
    members: &[MemberKeys],
) -> CeremonyConfig<C> {
    config.variant = Variant::Complaint;
    config.verifiable_keys = verifiable_keys(members);
    config
}

/// The public side of a member's keys, as a ceremony lists it.
pub fn participant(m: &MemberKeys) -> Member {
    Member {
        identity: m.identity.public().clone(),
        encryption: m.encryption.public_key(),
    }
}

/// A fresh-key, ack-or-reveal configuration with sequential indices and every member as dealer
/// and player.
pub fn fresh_config<C: Curve>(members: &[MemberKeys], params: Params) -> CeremonyConfig<C> {
    CeremonyConfig {
        domain: b"test-chain".to_vec(),
        epoch: 1,
        variant: Variant::AckReveal,
        params,
        index_scheme: IndexScheme::Sequential,
        players: members.iter().map(participant).collect(),
        verifiable_keys: Vec::new(),
        reshare: None,
    }
}

/// How a participant's run ended.
pub enum RunResult<C: Curve> {
    /// It finished with an output.
    Ok(Box<DkgOutput<C>>),
    /// It failed for good.
    Failed(Failure),
    /// It had not ended when the driver stopped.
    Pending,
}

/// Runs ack-or-reveal participants, one per member, in lock step ([`run_nodes`], nothing
/// tampered). `silent` nodes do nothing.
pub fn run<C: Curve>(
    ceremony: Arc<Ceremony<C>>,
    members: Vec<MemberKeys>,
    old_shares: Vec<Option<Secret<C::Scalar>>>,
    silent: &[usize],
) -> Vec<RunResult<C>> {
    let nodes: Vec<Box<dyn Participant<C>>> = members
        .into_iter()
        .zip(old_shares)
        .enumerate()
        .map(|(i, (m, old))| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let node =
                AckRevealParticipant::new(ceremony.clone(), m.identity, m.encryption, old, seed)
                    .unwrap();
            Box::new(node) as Box<dyn Participant<C>>
        })
        .collect();
    run_nodes(nodes, silent, &mut |_, a| vec![a]).0
}

/// The resharing data that hands `out`, the result of `old_ceremony` among `old`, to a new
/// committee.
pub fn reshare_of<C: Curve>(
    old: &[MemberKeys],
    old_ceremony: &Ceremony<C>,
    out: &DkgOutput<C>,
) -> Reshare<C> {
    Reshare {
        dealers: old.iter().map(participant).collect(),
        dealer_indices: old_ceremony.player_indices().to_vec(),
        old_threshold: old_ceremony.t(),
        group_key: out.public.group_key,
        public_shares: out.public.public_shares.clone(),
    }
}

/// What the board saw, in order: posts and phase deadlines (enough to replay a board).
#[derive(Debug, Clone)]
pub enum BoardEvent {
    /// A post, in board order.
    Post(Vec<u8>),
    /// A phase deadline.
    Deadline,
}

/// Runs any participants in lock step: every message and post is delivered, until nothing moves,
/// before the next deadline, for at most 16 deadlines or until every node that is not `silent`
/// has ended. `tamper(i, action)` sees every `Send` and `Post` of node `i` and returns what is
/// actually sent or posted (possibly nothing). Returns the results and the board's events.
pub fn run_nodes<C: Curve>(
    mut nodes: Vec<Box<dyn Participant<C>>>,
    silent: &[usize],
    tamper: &mut dyn FnMut(usize, Action<C>) -> Vec<Action<C>>,
) -> (Vec<RunResult<C>>, Vec<BoardEvent>) {
    let mut results: Vec<RunResult<C>> = (0..nodes.len()).map(|_| RunResult::Pending).collect();
    let mut events = Vec::new();
    let mut board_log: Vec<Vec<u8>> = Vec::new();
    let mut inbox: VecDeque<(usize, Input)> = (0..nodes.len()).map(|i| (i, Input::Start)).collect();
    let ids: Vec<_> = nodes.iter().map(|n| n.identity().clone()).collect();
    for _round in 0..16 {
        // Drain messages and posts until quiet, then a deadline.
        loop {
            let mut progressed = false;
            while let Some((i, input)) = inbox.pop_front() {
                progressed = true;
                if silent.contains(&i) {
                    continue;
                }
                for a in nodes[i].handle(input) {
                    let actions = match a {
                        a @ (Action::Send { .. } | Action::Post(_)) => tamper(i, a),
                        other => vec![other],
                    };
                    for a in actions {
                        match a {
                            Action::Send { to, payload } => {
                                let j = ids.iter().position(|x| *x == to).unwrap();
                                let from = ids[i].clone();
                                inbox.push_back((j, Input::Message { from, payload }));
                            }
                            Action::Post(p) => board_log.push(p),
                            Action::Finished(o) => results[i] = RunResult::Ok(o),
                            Action::Failed(f) => results[i] = RunResult::Failed(f),
                            Action::Observed(_) => {}
                        }
                    }
                }
            }
            for p in board_log.drain(..) {
                events.push(BoardEvent::Post(p.clone()));
                for i in 0..nodes.len() {
                    inbox.push_back((i, Input::BoardPost(p.clone())));
                }
            }
            if !progressed && inbox.is_empty() {
                break;
            }
        }
        if results
            .iter()
            .enumerate()
            .all(|(i, r)| silent.contains(&i) || !matches!(r, RunResult::Pending))
        {
            break;
        }
        events.push(BoardEvent::Deadline);
        for i in 0..nodes.len() {
            inbox.push_back((i, Input::Deadline));
        }
    }
    (results, events)
}
