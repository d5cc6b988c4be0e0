//! Gas of every coordinator transaction, measured in revm (Prague) with a 30M block gas limit
//! (a transaction needing more halts, and the test fails): registration, committee selection,
//! each phase's post, activation of the first view and of a later one (which adds the handover
//! check), for a deployment that makes every view a fresh key and for one that reshares from
//! view 2 on (whose first activation also stores what a reshare binds, and whose second view is
//! dealt by the first view's members), and the three fraud proofs (equivocation; a bad ack aggregate acked by all `n`; a
//! bad reveal, whose proof carries the dealer's whole contribution).
//!
//! Posts are full size (a contribution carries `n + 1` uncompressed points, a publication an
//! ack bitmap and an aggregate signature) but synthetic: the contract does not verify a post's
//! signature or points beyond `f(0) G` (every node's board does), so its gas does not depend on
//! them. The activation is real: the group key is the sum of the dealers' `f(0) G` and the
//! magic block is signed under it.
//!
//! `cargo test -p keyquorum-evm --release --test integration gas:: -- --nocapture` prints the table for
//! n = 16, 64, 256 (docs/performance.md).

use crate::common;

use alloy_primitives::{Address, Bytes, U256};
use blstrs::{G1Affine, G1Projective, Scalar};
use common::*;
use group::prime::PrimeCurveAffine;
use group::{Curve as _, Group as _};
use keyquorum_contract::hex::{Bytes as HexBytes, Hex};
use keyquorum_contract::magic::{MagicBlockMember, signing_message};
use keyquorum_contract::select::select_committee;
use keyquorum_contract::{BeaconConfig, KeyMode, MagicBlock, SignerRole, genesis_seed};
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_dkg::identity::Purpose;
use keyquorum_evm::{Coordinator, g1_point, g2_point};
use std::collections::BTreeSet;

const STAKE: u64 = 1_000;

#[derive(Default, Debug)]
struct Gas {
    register: u64,
    start: [u64; 2],
    contribution: [u64; 2],
    contribution_bytes: usize,
    publication: [u64; 2],
    publication_bytes: usize,
    activate: [u64; 2],
    equivocation: u64,
    bad_ack_aggregate: u64,
    bad_reveal: u64,
    /// Each view's committee, as sets of identity keys.
    committees: Vec<BTreeSet<Hex<96>>>,
}

fn uncompressed(p: &G1Affine) -> [u8; 96] {
    p.to_uncompressed()
}

/// Runs two view changes with `n` seats among `candidates` registered nodes, up to `keep`
/// percent of the seats kept for the previous view's members, the second a reshare if
/// `reshare`, and returns the gas of each step. Each committee is checked against
/// `keyquorum_contract::select::select_committee`.
fn measure_with(n: u32, candidates: u32, keep: u8, reshare: bool) -> Gas {
    let mut gas = Gas::default();
    let nodes: Vec<Node> = (0..candidates).map(Node::new).collect();
    let accounts: Vec<Address> = nodes.iter().map(|x| x.account).collect();
    let mut config = config(n);
    config.keepPreviousPercent = keep;
    config.keyMode = if reshare { 2 } else { 1 };
    let mut chain = Chain::new(config, &accounts);
    for node in &nodes {
        let call = node.register_call(chain.contract);
        let r = chain.send(node.account, STAKE, call).ok();
        gas.register = gas.register.max(r.gas_used);
    }
    assert_eq!(
        genesis_seed(CHAIN_NAME),
        chain.read(Coordinator::currentSeedCall {}).0
    );

    let mut previous: Option<(Scalar, [u8; 32])> = None;
    let mut first_contribution = None;
    let mut forged_publication = None;
    let mut lying_contribution = None;
    let mut lying_publication = None;
    let mut previous_members = BTreeSet::new();
    // The first view's members in its block's order: a reshare's dealers.
    let mut first_members: Vec<Address> = Vec::new();
    for round in 0..2 {
        let resharing = reshare && round == 1;
        let next = chain.read(Coordinator::nextStartCall {});
        chain.set_block(next);
        let seed = chain.read(Coordinator::currentSeedCall {}).0;
        let r = chain
            .send(nodes[0].account, 0, Coordinator::startViewChangeCall {})
            .ok();
        gas.start[round] = r.gas_used;
        let sel = r.events::<Coordinator::CommitteeSelected>().remove(0);
        let member = |pos: usize| {
            nodes
                .iter()
                .find(|x| x.account == sel.committee[pos])
                .unwrap()
        };
        let identities: Vec<Hex<96>> = (0..sel.n as usize)
            .map(|p| Hex(member(p).identity))
            .collect();
        let expected = select_committee(
            &nodes
                .iter()
                .map(|x| (Hex(x.identity), STAKE))
                .collect::<Vec<_>>(),
            &previous_members,
            &seed,
            n as usize,
            keep,
        );
        assert_eq!(identities, expected, "view {}", sel.viewNumber);
        previous_members = identities.into_iter().collect();
        gas.committees.push(previous_members.clone());
        if round == 0 {
            first_members = sel.committee.clone();
        }
        let dealer_account = |d: usize| {
            if resharing {
                first_members[d]
            } else {
                member(d).account
            }
        };

        // Contributions: dealer d's f(0) G = (d + 1 + 1000 round) G; the other points repeat it.
        let mut secrets = Vec::new();
        for d in 0..n as usize {
            let a = Scalar::from(d as u64 + 1 + 1000 * round as u64);
            secrets.push(a);
            let f0 = uncompressed(&(G1Projective::generator() * a).to_affine());
            let mut post = vec![0xaa; 48];
            post.push(1);
            post.extend_from_slice(&sel.sessionId.0);
            post.extend_from_slice(&(d as u32).to_be_bytes());
            post.extend_from_slice(&(n + 1).to_be_bytes());
            for _ in 0..=n {
                post.extend_from_slice(&f0);
            }
            gas.contribution_bytes = post.len();
            if round == 0 && d == 2 {
                lying_contribution = Some(post.clone());
            }
            let r = chain
                .send(
                    dealer_account(d),
                    0,
                    Coordinator::postCall {
                        signedPost: post.into(),
                    },
                )
                .ok();
            gas.contribution[round] = gas.contribution[round].max(r.gas_used);
        }
        if first_contribution.is_none() {
            first_contribution = Some((sel.ceremony, sel.sessionId.0));
        }

        // Publications: every player acked (full bitmap, one aggregate signature, no reveals).
        chain.set_block(sel.shareEnd + 1);
        for d in 0..n as usize {
            let mut post = vec![0xaa; 48];
            post.push(2);
            post.extend_from_slice(&sel.sessionId.0);
            post.extend_from_slice(&0u32.to_be_bytes());
            post.extend_from_slice(&(d as u32).to_be_bytes());
            post.extend_from_slice(&[0x5c; 32]);
            let mut bitmap = vec![0u8; (n as usize).div_ceil(8)];
            // The first ceremony's dealer 2 reveals a wrong share for the last player.
            let lies = round == 0 && d == 2;
            let acked = if lies { n as usize - 1 } else { n as usize };
            for j in 0..acked {
                bitmap[j / 8] |= 1 << (j % 8);
            }
            post.extend_from_slice(&(bitmap.len() as u32).to_be_bytes());
            post.extend_from_slice(&bitmap);
            post.push(1);
            // A point, but no aggregate of the acks: the bad-ack proof below shows it.
            post.extend_from_slice(&G1Affine::generator().to_compressed());
            if lies {
                post.extend_from_slice(&1u32.to_be_bytes());
                post.extend_from_slice(&(n - 1).to_be_bytes());
                post.extend_from_slice(&Scalar::from(5u64).to_bytes_be());
                lying_publication = Some(post.clone());
            } else {
                post.extend_from_slice(&0u32.to_be_bytes());
                gas.publication_bytes = post.len();
            }
            if round == 0 && d == 1 {
                forged_publication = Some(post.clone());
            }
            let r = chain
                .send(
                    dealer_account(d),
                    0,
                    Coordinator::postCall {
                        signedPost: post.into(),
                    },
                )
                .ok();
            gas.publication[round] = gas.publication[round].max(r.gas_used);
        }

        // Activation: every dealer qualified, the key their sum (a reshare keeps the first's).
        chain.set_block(sel.publishEnd + 1);
        let secret: Scalar = match previous {
            Some((previous_secret, _)) if resharing => previous_secret,
            _ => secrets.iter().sum(),
        };
        let group_key = (G1Projective::generator() * secret)
            .to_affine()
            .to_compressed();
        let seats: Vec<&Node> = (0..n as usize).map(member).collect();
        let key_mode = if resharing {
            KeyMode::Reshare
        } else {
            KeyMode::Fresh
        };
        let previous_hash = previous.map(|p| p.1).unwrap_or_default();
        let block = synthetic_block(&sel, &seats, key_mode, group_key, previous_hash);
        let hash = block.hash();
        let sign = |sk: Scalar, role| {
            tbls::sign::<MinPk>(&Secret::new(sk), &signing_message(role, &hash)).to_compressed()
        };
        let previous_signature = previous
            .map(|(sk, _)| Bytes::from(g2_point(&sign(sk, SignerRole::Old)).unwrap().to_vec()))
            .unwrap_or_default();
        let call = synthetic_activation(&block, secret, &seats);
        let activation = |previous_signature: Bytes| {
            let mut c = call.clone();
            c.a.previousSignaturePoint = previous_signature;
            c
        };
        if round == 1 && !resharing {
            // The handover must come from the previous key: the new committee signing the
            // handover message under its own key, or nothing at all, does not do.
            let own = g2_point(&sign(secret, SignerRole::Old)).unwrap().to_vec();
            for bad in [Bytes::from(own), Bytes::new()] {
                chain
                    .send(nodes[0].account, 0, activation(bad))
                    .reverts_with::<Coordinator::BadHandoverSignature>();
            }
        }
        let r = chain
            .send(nodes[0].account, 0, activation(previous_signature))
            .ok();
        gas.activate[round] = r.gas_used;
        previous = Some((secret, hash));
    }

    // Equivocation by the first ceremony's dealer 0.
    let (ceremony, session) = first_contribution.unwrap();
    let committee = chain.read(Coordinator::committeeOfCall { id: ceremony });
    let culprit = nodes.iter().find(|x| x.account == committee[0]).unwrap();
    let payload = |digest: u8| {
        let mut p = vec![0x81];
        p.extend_from_slice(&session);
        p.extend_from_slice(&0u32.to_be_bytes());
        p.extend_from_slice(&(n + 1).to_be_bytes());
        p.extend_from_slice(&[digest; 32]);
        p
    };
    let sig = |p: &[u8]| {
        Bytes::from(
            g1_point(&culprit.keys.identity.sign(Purpose::Post, p).0)
                .unwrap()
                .to_vec(),
        )
    };
    let (a, b) = (payload(1), payload(2));
    let r = chain
        .send(
            nodes[1].account,
            0,
            Coordinator::proveEquivocationCall {
                id: ceremony,
                sigA: sig(&a),
                sigB: sig(&b),
                payloadA: a.into(),
                payloadB: b.into(),
                identityPoint: g2_point(&culprit.identity).unwrap().to_vec().into(),
            },
        )
        .ok();
    gas.equivocation = r.gas_used;

    // A bad ack aggregate by the first ceremony's dealer 1, acked by every player.
    let r = chain
        .send(
            nodes[1].account,
            0,
            Coordinator::proveBadAckAggregateCall {
                id: ceremony,
                signedPost: forged_publication.unwrap().into(),
                aggregatePoint: g1_point(&G1Affine::generator().to_compressed())
                    .unwrap()
                    .to_vec()
                    .into(),
                ackerPoints: committee
                    .iter()
                    .map(|a| {
                        let m = nodes.iter().find(|x| x.account == *a).unwrap();
                        Bytes::from(g2_point(&m.identity).unwrap().to_vec())
                    })
                    .collect(),
            },
        )
        .ok();
    gas.bad_ack_aggregate = r.gas_used;

    let r = chain
        .send(
            nodes[1].account,
            0,
            Coordinator::proveBadRevealCall {
                id: ceremony,
                contribution: lying_contribution.unwrap().into(),
                publication: lying_publication.unwrap().into(),
                player: n - 1,
            },
        )
        .ok();
    gas.bad_reveal = r.gas_used;
    gas
}

fn measure(n: u32, reshare: bool) -> Gas {
    measure_with(n, n, 0, reshare)
}

/// With more candidates than seats, the second view keeps previous members as the Rust
/// selection does (checked inside): with every seat reserved the committee stays, without a
/// reservation the new seed picks another one.
#[test]
fn selection_keeps_previous_members_like_the_rust_contract() {
    for keep in [0, 50, 100] {
        let g = measure_with(4, 9, keep, false);
        check(&g);
        let overlap = g.committees[0].intersection(&g.committees[1]).count();
        match keep {
            0 => assert!(overlap < 4),
            50 => assert!(overlap >= 2),
            _ => assert_eq!(overlap, 4),
        }
    }
}

fn check(g: &Gas) {
    for v in [
        g.register,
        g.start[0],
        g.start[1],
        g.contribution[0],
        g.publication[0],
        g.activate[0],
        g.activate[1],
        g.equivocation,
        g.bad_ack_aggregate,
        g.bad_reveal,
    ] {
        assert!(v > 0 && v < BLOCK_GAS_LIMIT, "{g:?}");
    }
}

/// Every step of two view changes fits in a 30M block at n = 16, 64 and 256; with
/// `--nocapture` this prints the table of docs/performance.md.
#[test]
fn gas_table() {
    println!(
        "| n | register | select (view 1 / 2) | contribution (bytes) | publication (bytes) | activate view 1 | activate view 2 | equivocation proof | bad-ack proof | bad-reveal proof | per member per view change |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut resharing = Vec::new();
    for n in [16u32, 64, 256] {
        let g = measure(n, false);
        check(&g);
        let r = measure(n, true);
        check(&r);
        resharing.push((n, r));
        let per_member =
            (g.start[1] + g.activate[1]) / n as u64 + g.contribution[1] + g.publication[1];
        println!(
            "| {n} | {} | {} / {} | {} ({}) | {} ({}) | {} | {} | {} | {} | {} | {} |",
            g.register,
            g.start[0],
            g.start[1],
            g.contribution[1],
            g.contribution_bytes,
            g.publication[1],
            g.publication_bytes,
            g.activate[0],
            g.activate[1],
            g.equivocation,
            g.bad_ack_aggregate,
            g.bad_reveal,
            per_member
        );
    }
    println!();
    println!(
        "| n (reshare from view 2) | activate view 1 | select view 2 | contribution | publication | activate view 2 | per member per view change |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (n, g) in resharing {
        let per_member =
            (g.start[1] + g.activate[1]) / n as u64 + g.contribution[1] + g.publication[1];
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} |",
            g.activate[0],
            g.start[1],
            g.contribution[1],
            g.publication[1],
            g.activate[1],
            per_member
        );
    }
}

/// The contract's bound on eligible nodes (`MAX_CANDIDATES` in Coordinator.sol).
const MAX_CANDIDATES: u32 = 300;
/// The seats of the worst-case selection below.
const WORST_SEATS: u32 = 256;

/// The candidate bound: with `MAX_CANDIDATES` eligible nodes, all at one stake (every candidate's
/// tie-break is computed: the most expensive eviction), a registration or stake addition at
/// that stake is refused (`CandidateListFull`) and a registration with more evicts one, in a
/// 30M block; and the selection's worst cases fit in a 30M block with
/// `WORST_SEATS` seats: the first ceremony of a view change, and the next one after a failed
/// ceremony. That one costs most when exactly `MAX_CANDIDATES - WORST_SEATS` members were
/// silent: each silent member is banned (a new storage slot, about 22,000 gas), and with more
/// of them the next committee has fewer seats (about 68,000 gas each).
#[test]
fn the_selection_at_the_candidate_bound_fits_in_a_block() {
    let nodes: Vec<Node> = (0..MAX_CANDIDATES + 2).map(Node::new).collect();
    let accounts: Vec<Address> = nodes.iter().map(|x| x.account).collect();
    let mut chain = Chain::new(config(WORST_SEATS), &accounts);
    for node in &nodes[..MAX_CANDIDATES as usize] {
        let call = node.register_call(chain.contract);
        chain.send(node.account, STAKE, call).ok();
    }
    let extra = &nodes[MAX_CANDIDATES as usize];
    let call = extra.register_call(chain.contract);
    let refused = chain.send(extra.account, STAKE, call.clone());
    refused.reverts_with::<Coordinator::CandidateListFull>();
    let evicting = chain.send(extra.account, STAKE + 1, call).ok();
    assert_eq!(evicting.events::<Coordinator::Evicted>().len(), 1);
    // Registered below the minimum stake it is no candidate, and becomes one only by outbidding
    // the lowest.
    let late = &nodes[MAX_CANDIDATES as usize + 1];
    let call = late.register_call(chain.contract);
    chain.send(late.account, 10, call).ok();
    chain
        .send(late.account, STAKE - 10, Coordinator::addStakeCall {})
        .reverts_with::<Coordinator::CandidateListFull>();
    assert_eq!(
        chain.read(Coordinator::eligibleCountCall {}),
        U256::from(MAX_CANDIDATES)
    );

    let first = chain.start_next_view_change(nodes[0].account);
    let sel = first.events::<Coordinator::CommitteeSelected>().remove(0);
    assert_eq!(sel.n, WORST_SEATS);
    // The first `posting` members post both their contribution and publication (synthetic:
    // the contract checks neither signature); the rest are silent.
    let posting = (2 * WORST_SEATS - MAX_CANDIDATES) as usize;
    let n = sel.n;
    let f0 = G1Affine::generator().to_uncompressed();
    for (d, account) in sel.committee.iter().enumerate().take(posting) {
        let post = synthetic_contribution(&sel.sessionId.0, d as u32, n, &f0);
        chain.send(*account, 0, post_call(&post)).ok();
    }
    chain.set_block(sel.shareEnd + 1);
    for (d, account) in sel.committee.iter().enumerate().take(posting) {
        let post = synthetic_publication(&sel.sessionId.0, d as u32);
        chain.send(*account, 0, post_call(&post)).ok();
    }
    chain.set_block(sel.waitEnd + 1);
    let retry = chain
        .send(nodes[0].account, 0, Coordinator::startViewChangeCall {})
        .ok();
    let again = retry.events::<Coordinator::CommitteeSelected>().remove(0);
    assert_eq!((again.number, again.n), (1, WORST_SEATS));
    let silent = &sel.committee[posting..];
    assert!(again.committee.iter().all(|a| !silent.contains(a)));
    println!(
        "registration evicting one of {MAX_CANDIDATES} equal stakes: {} gas (refused at that stake: {})",
        evicting.gas_used, refused.gas_used
    );
    println!(
        "selection of {WORST_SEATS} among {MAX_CANDIDATES} candidates: {} gas (first ceremony), {} gas (after one with {} silent members)",
        first.gas_used,
        retry.gas_used,
        silent.len()
    );
    assert!(evicting.gas_used < BLOCK_GAS_LIMIT);
    assert!(first.gas_used < BLOCK_GAS_LIMIT && retry.gas_used < BLOCK_GAS_LIMIT);
}

/// A magic block for `sel`'s ceremony with `seats` (seat order) as its members at indices
/// 1..=n, every public key share the generator (the contract checks the key and signatures,
/// not the shares), a 38-byte peer id each.
fn synthetic_block(
    sel: &Coordinator::CommitteeSelected,
    seats: &[&Node],
    key_mode: KeyMode,
    group_key: [u8; 48],
    previous_hash: [u8; 32],
) -> MagicBlock {
    MagicBlock {
        chain_id: CHAIN_NAME.into(),
        view: sel.viewNumber,
        ceremony_number: sel.number,
        key_mode,
        session_id: Hex(sel.sessionId.0),
        n: sel.n,
        t: sel.t,
        k: sel.k,
        group_key: Hex(group_key),
        members: seats
            .iter()
            .enumerate()
            .map(|(pos, m)| MagicBlockMember {
                index: pos as u64 + 1,
                identity: Hex(m.identity),
                encryption_key: Hex(m.encryption_key),
                peer_id: HexBytes(vec![0x77; 38]),
                addresses: m.addresses(),
                public_share: Hex(G1Affine::generator().to_compressed()),
            })
            .collect(),
        previous_hash: Hex(previous_hash),
        first_round: sel.waitEnd + 1,
        beacon: BeaconConfig::default(),
    }
}

/// A contribution as the contract checks it (synthetic: no signature or commitment a board would
/// take), dealer `dealer`'s `n + 1` points all `f0`.
fn synthetic_contribution(session: &[u8; 32], dealer: u32, n: u32, f0: &[u8; 96]) -> Vec<u8> {
    let mut post = vec![0xaa; 48];
    post.push(1);
    post.extend_from_slice(session);
    post.extend_from_slice(&dealer.to_be_bytes());
    post.extend_from_slice(&(n + 1).to_be_bytes());
    for _ in 0..=n {
        post.extend_from_slice(f0);
    }
    post
}

/// A publication as the contract checks it (synthetic): no acks, no aggregate, no reveals.
fn synthetic_publication(session: &[u8; 32], dealer: u32) -> Vec<u8> {
    synthetic_publication_acked(session, dealer, &[])
}

/// [`synthetic_publication`] naming the players whose bits `bitmap` sets as acking.
fn synthetic_publication_acked(session: &[u8; 32], dealer: u32, bitmap: &[u8]) -> Vec<u8> {
    let mut post = vec![0xaa; 48];
    post.push(2);
    post.extend_from_slice(session);
    post.extend_from_slice(&0u32.to_be_bytes());
    post.extend_from_slice(&dealer.to_be_bytes());
    post.extend_from_slice(&[0x5c; 32]);
    post.extend_from_slice(&(bitmap.len() as u32).to_be_bytes());
    post.extend_from_slice(bitmap);
    post.push(0);
    post.extend_from_slice(&0u32.to_be_bytes());
    post
}

/// The bound of [`the_selection_at_the_candidate_bound_fits_in_a_block`] for a deployment that
/// reshares: view 1 activated with `WORST_SEATS` members among `MAX_CANDIDATES` candidates, then
/// view 2's first selection (a reshare, dealt by view 1's members) and its restart after a
/// reshare whose last `MAX_CANDIDATES - WORST_SEATS` dealers were silent: each is banned, and the
/// dealers left are still at least view 1's threshold.
#[test]
fn a_reshare_s_selection_at_the_candidate_bound_fits_in_a_block() {
    let nodes: Vec<Node> = (0..MAX_CANDIDATES).map(Node::new).collect();
    let accounts: Vec<Address> = nodes.iter().map(|x| x.account).collect();
    let mut cfg = config(WORST_SEATS);
    cfg.keyMode = 2;
    let mut chain = Chain::new(cfg, &accounts);
    for node in &nodes {
        let call = node.register_call(chain.contract);
        chain.send(node.account, STAKE, call).ok();
    }
    let r = chain.start_next_view_change(nodes[0].account);
    let sel = r.events::<Coordinator::CommitteeSelected>().remove(0);
    let n = sel.n;
    let member = |a: &Address| nodes.iter().find(|x| x.account == *a).unwrap();
    let mut secret = Scalar::from(0u64);
    for (d, account) in sel.committee.iter().enumerate() {
        let a = Scalar::from(d as u64 + 1);
        secret += a;
        let f0 = uncompressed(&(G1Projective::generator() * a).to_affine());
        let post = synthetic_contribution(&sel.sessionId.0, d as u32, n, &f0);
        chain.send(*account, 0, post_call(&post)).ok();
    }
    chain.set_block(sel.publishEnd + 1);
    let group_key = (G1Projective::generator() * secret)
        .to_affine()
        .to_compressed();
    let seats: Vec<&Node> = sel.committee.iter().map(member).collect();
    let block = synthetic_block(&sel, &seats, KeyMode::Fresh, group_key, [0; 32]);
    let activated = chain
        .send(
            nodes[0].account,
            0,
            synthetic_activation(&block, secret, &seats),
        )
        .ok();

    let first = chain.start_next_view_change(nodes[0].account);
    let reshare = first.events::<Coordinator::CommitteeSelected>().remove(0);
    assert_eq!((reshare.keyMode, reshare.n), (2, WORST_SEATS));
    // View 1's members deal, at their places in its block; the last ones are silent.
    let posting = (2 * WORST_SEATS - MAX_CANDIDATES) as usize;
    assert!(posting >= sel.t as usize);
    let f0 = G1Affine::generator().to_uncompressed();
    for (d, account) in sel.committee.iter().enumerate().take(posting) {
        let post = synthetic_contribution(&reshare.sessionId.0, d as u32, n, &f0);
        chain.send(*account, 0, post_call(&post)).ok();
    }
    // Their publications name every player as acking, so only the silent dealers are banned:
    // 44 bans and a full committee after them, the most the restart can cost (each further
    // ban, of a dealer or of a player no publication names, takes a seat away).
    chain.set_block(reshare.shareEnd + 1);
    let bitmap = vec![0xffu8; (n as usize).div_ceil(8)];
    for (d, account) in sel.committee.iter().enumerate().take(posting) {
        let post = synthetic_publication_acked(&reshare.sessionId.0, d as u32, &bitmap);
        chain.send(*account, 0, post_call(&post)).ok();
    }
    chain.set_block(reshare.waitEnd + 1);
    let retry = chain
        .send(nodes[0].account, 0, Coordinator::startViewChangeCall {})
        .ok();
    let again = retry.events::<Coordinator::CommitteeSelected>().remove(0);
    assert_eq!((again.number, again.keyMode), (1, 2));
    let silent = &sel.committee[posting..];
    assert!(again.committee.iter().all(|a| !silent.contains(a)));
    println!(
        "resharing deployment, {WORST_SEATS} seats among {MAX_CANDIDATES} candidates: activation of view 1 {} gas, selection of the reshare {} gas (first ceremony), {} gas (after one with {} silent dealers)",
        activated.gas_used,
        first.gas_used,
        retry.gas_used,
        silent.len()
    );
    for g in [activated.gas_used, first.gas_used, retry.gas_used] {
        assert!(g < BLOCK_GAS_LIMIT);
    }
}
