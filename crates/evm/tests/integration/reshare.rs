//! A resharing view change on the Solidity coordinator in revm: view 1 makes a fresh key, view 2
//! reshares it. Every step goes the way a node's goes: the translator (`keyquorum_evm::events`)
//! builds each ceremony's spec from the logs alone (for the reshare, from the view-1 magic block
//! it saw activated), the DKG runs among the members with their real shares, its posts go
//! through the contract and back into the translator's board replica, which defines the magic
//! block; the new committee signs it with its new shares, the old one with its old shares.

use std::collections::HashMap;

use crate::common::*;

use alloy_primitives::{Address, U256};
use blstrs::Scalar;
use group::prime::PrimeCurveAffine as _;
use keyquorum_contract::hex::Hex;
use keyquorum_contract::magic::signing_message;
use keyquorum_contract::state::CeremonySpec;
use keyquorum_contract::{
    Event, KeyMode, MagicBlock, SignedMagicBlock, SignerRole, ViewChangePhase,
};
use keyquorum_crypto::Bls12381G1;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_dkg::ackreveal::AckRevealParticipant;
use keyquorum_dkg::messages::{Post, SignedPost};
use keyquorum_dkg::participant::Participant;
use keyquorum_dkg::testing::ceremony::{BoardEvent, RunResult, member, run_nodes};
use keyquorum_evm::client::{BoardInput, ConfirmedBlock, Phase};
use keyquorum_evm::events::Translator;
use keyquorum_evm::stagger::{Held, Turn};
use keyquorum_evm::{Coordinator, g1_point, g2_point};

const STAKE: u64 = 1_000;

/// A coordinator that reshares from view 2 on, nodes `0..count` funded and the first
/// `registered` of them registered (node `i` staking `STAKE + i`).
fn resharing(n: u32, count: u32, registered: u32) -> (Chain, Vec<Node>, Translator) {
    let mut cfg = config(n);
    cfg.keyMode = 2;
    let nodes: Vec<Node> = (0..count).map(Node::new).collect();
    let accounts: Vec<Address> = nodes.iter().map(|n| n.account).collect();
    let mut chain = Chain::new(cfg, &accounts);
    let mut translator = Translator::new(deployment(chain.contract));
    for node in &nodes[..registered as usize] {
        register(&mut chain, &mut translator, node, STAKE + node.index as u64);
    }
    (chain, nodes, translator)
}

fn register(chain: &mut Chain, translator: &mut Translator, node: &Node, stake: u64) {
    let r = chain
        .send(node.account, stake, node.register_call(chain.contract))
        .ok();
    for e in r.events::<Coordinator::Registered>() {
        translator.translate(BoardInput::Registered(e));
    }
}

/// One activated view: its block, the committee's signature and each member's share.
struct View {
    signed: SignedMagicBlock,
    /// Share index and secret share by node index.
    shares: HashMap<u32, (u64, Secret<Scalar>)>,
}

/// What a view change's start gave: the selection, the translator's spec and its key mode.
struct Start {
    sel: Coordinator::CommitteeSelected,
    spec: CeremonySpec,
    key_mode: KeyMode,
}

fn start_view_change(chain: &mut Chain, nodes: &[Node], translator: &mut Translator) -> Start {
    let r = chain
        .send(nodes[0].account, 0, Coordinator::startViewChangeCall {})
        .ok();
    let sel = r.events::<Coordinator::CommitteeSelected>().remove(0);
    let events = translator.translate(BoardInput::CommitteeSelected(sel.clone()));
    let Some(Event::CommitteeSelected { spec, key_mode, .. }) = events.into_iter().next() else {
        panic!("the translator follows no ceremony")
    };
    Start {
        sel,
        spec,
        key_mode,
    }
}

fn node_of<'a>(nodes: &'a [Node], identity: &[u8; 96]) -> &'a Node {
    nodes.iter().find(|n| &n.identity == identity).unwrap()
}

/// Feeds the translator one confirmed block's inputs and returns its events.
fn confirm(translator: &mut Translator, number: u64, inputs: Vec<BoardInput>) -> Vec<Event> {
    translator.translate_block(ConfirmedBlock { number, inputs })
}

/// The DKG of a started ceremony, run off chain: who took part, their results, and the posts
/// with their authors' accounts.
struct Dealt<'a> {
    players: Vec<&'a Node>,
    taking_part: Vec<&'a Node>,
    results: Vec<RunResult<Bls12381G1>>,
    contributions: Vec<(Address, Vec<u8>)>,
    publications: Vec<(Address, Vec<u8>)>,
}

/// Runs the DKG among the started ceremony's dealers and players, dealers holding their
/// `previous` shares, on a perfect network; the nodes `silent` (by index) do nothing.
fn deal<'a>(nodes: &'a [Node], s: &Start, previous: Option<&View>, silent: &[u32]) -> Dealt<'a> {
    let ceremony = s.spec.ceremony().unwrap();
    let players: Vec<&Node> = s
        .spec
        .players
        .iter()
        .map(|p| node_of(nodes, &p.identity.0))
        .collect();
    let dealers: Vec<&Node> = match &s.spec.reshare {
        Some(r) => r
            .dealers
            .iter()
            .map(|d| node_of(nodes, &d.identity.0))
            .collect(),
        None => players.clone(),
    };
    let mut taking_part: Vec<&Node> = players.clone();
    for d in &dealers {
        if !taking_part.iter().any(|p| p.index == d.index) {
            taking_part.push(d);
        }
    }
    let participants: Vec<Box<dyn Participant<Bls12381G1>>> = taking_part
        .iter()
        .map(|n| {
            let m = member(n.index);
            let old = previous
                .and_then(|v| v.shares.get(&n.index))
                .map(|(_, share)| Secret::new(*share.expose()));
            let mut seed = [5u8; 32];
            seed[..4].copy_from_slice(&n.index.to_be_bytes());
            seed[4..12].copy_from_slice(&s.sel.viewNumber.to_be_bytes());
            Box::new(
                AckRevealParticipant::new(ceremony.clone(), m.identity, m.encryption, old, seed)
                    .unwrap(),
            ) as Box<dyn Participant<Bls12381G1>>
        })
        .collect();
    let silent_at: Vec<usize> = taking_part
        .iter()
        .enumerate()
        .filter(|(_, n)| silent.contains(&n.index))
        .map(|(i, _)| i)
        .collect();
    let (results, events) = run_nodes(participants, &silent_at, &mut |_, a| vec![a]);
    let (mut contributions, mut publications) = (Vec::new(), Vec::new());
    for e in events {
        if let BoardEvent::Post(p) = e {
            let post = SignedPost::<Bls12381G1>::decode(&p, s.sel.n as usize).unwrap();
            let author = dealers[post.post.dealer() as usize].account;
            match post.post {
                Post::Contribution(_) => contributions.push((author, p)),
                Post::Publication(_) => publications.push((author, p)),
            }
        }
    }
    let speaking = dealers.iter().filter(|d| !silent.contains(&d.index));
    assert_eq!(contributions.len(), speaking.count());
    Dealt {
        players,
        taking_part,
        results,
        contributions,
        publications,
    }
}

/// Takes a dealt ceremony to its activation: posts through the contract, the magic block from
/// the translator, signatures, endorsement and `activate`, after `refused` has tried what it
/// wants with the activation call.
fn complete(
    chain: &mut Chain,
    nodes: &[Node],
    translator: &mut Translator,
    s: &Start,
    dealt: &Dealt<'_>,
    previous: Option<&View>,
    refused: impl FnOnce(&mut Chain, &Coordinator::activateCall, &MagicBlock),
) -> View {
    let Dealt {
        players,
        taking_part,
        results,
        contributions,
        publications,
    } = dealt;
    let id = s.sel.ceremony;
    for (author, p) in contributions {
        let r = chain.send(*author, 0, post_call(p)).ok();
        confirm(translator, chain.block(), r.posts());
    }
    chain.set_block(s.sel.shareEnd + 1);
    let deadline = |phase| BoardInput::Deadline {
        ceremony: id,
        phase,
    };
    confirm(
        translator,
        chain.block(),
        vec![deadline(Phase::Contribute), deadline(Phase::Share)],
    );
    for (author, p) in publications {
        let r = chain.send(*author, 0, post_call(p)).ok();
        confirm(translator, chain.block(), r.posts());
    }
    chain.set_block(s.sel.publishEnd + 1);
    let events = confirm(translator, chain.block(), vec![deadline(Phase::Publish)]);
    let block = events
        .into_iter()
        .find_map(|e| match e {
            Event::MagicBlockCreated { magic_block, .. } => Some(magic_block),
            _ => None,
        })
        .expect("the board defines a magic block");
    let hash = block.hash();
    let qualified = translator.created(&hash).unwrap().qualified.clone();
    // The turns, for signatures held early enough that every rank fits before the last call.
    let step = ACTIVATION_CONFIRMATIONS + 2;
    let last_block = s.sel.waitEnd;
    assert_eq!(block.first_round, last_block + 1);
    let ranks = players.len() as u64 + 1;
    let collected_at = last_block
        .checked_sub((ranks + 1) * step)
        .expect("block numbers leave room for the turns");
    assert_eq!(
        activation_turns(translator, &hash, players, collected_at),
        (0..ranks)
            .map(|rank| collected_at + rank * step)
            .collect::<Vec<_>>(),
        "one member per turn, an account outside the committee after all of them"
    );
    // Held two turns before the wait deadline: every member sends at once (its last call), and
    // from `waitEnd - confirmations` on none does.
    let last_call = last_block - 2 * step;
    assert_eq!(
        activation_turns(translator, &hash, players, last_call),
        vec![last_call; ranks as usize]
    );
    for p in players {
        assert_eq!(
            translator.activation_turn(
                &hash,
                p.account,
                last_call,
                last_block - ACTIVATION_CONFIRMATIONS,
                ACTIVATION_CONFIRMATIONS,
                LONG
            ),
            Some(Turn::TooLate)
        );
    }

    let mut shares = HashMap::new();
    for (n, r) in taking_part.iter().zip(results) {
        let RunResult::Ok(o) = r else {
            panic!("node {} did not finish", n.index)
        };
        if let (Some(i), Some(share)) = (o.player_index, o.secret_share.as_ref()) {
            shares.insert(n.index, (i as u64 + 1, Secret::new(*share.expose())));
        }
    }
    let signature = threshold_sign(&shares, block.t, &signing_message(SignerRole::New, &hash));
    let previous_signature = previous.map(|v| {
        threshold_sign(
            &v.shares,
            v.signed.block.t,
            &signing_message(SignerRole::Old, &hash),
        )
    });
    let (endorsers, endorser_points, endorsement_point) =
        endorsement(&hash, players, &(0..block.t as usize).collect::<Vec<_>>());
    let call = Coordinator::activateCall {
        a: Coordinator::Activation {
            magicBlock: block.encode().into(),
            groupKeyPoint: g1_point(&block.group_key.0).unwrap().to_vec().into(),
            qualified,
            signature: signature.to_vec().into(),
            signaturePoint: g2_point(&signature).unwrap().to_vec().into(),
            previousSignaturePoint: previous_signature
                .map(|p| g2_point(&p).unwrap().to_vec())
                .unwrap_or_default()
                .into(),
            endorsers,
            endorserPoints: endorser_points,
            endorsement: endorsement_point,
        },
    };
    refused(chain, &call, &block);
    let r = chain.send(nodes[0].account, 0, call).ok();
    let activated = r.events::<Coordinator::ViewActivated>().remove(0);
    assert_eq!(activated.magicBlockHash.0, hash);
    confirm(
        translator,
        chain.block(),
        vec![BoardInput::ViewActivated(activated)],
    );
    for p in players {
        assert_eq!(
            translator.activation_turn(&hash, p.account, 0, 0, 1, Held::default()),
            Some(Turn::Settled),
            "an activated view is not activated again"
        );
    }
    View {
        signed: SignedMagicBlock {
            hash: Hex(hash),
            block,
            signature: Some(Hex(signature)),
            previous_signature: previous_signature.map(Hex),
        },
        shares,
    }
}

/// The follower depth the activation turns are computed for.
const ACTIVATION_CONFIRMATIONS: u64 = 1;

/// A clock past every turn's floor, on a chain that keeps confirming blocks: the turns are the
/// blocks'.
const LONG: Held = Held {
    held_ms: u64::MAX,
    idle_ms: 0,
};

/// When each member of the new committee (then an account outside it) activates the block
/// `hash` by the translator's staggering rule, all having held the signatures at
/// `collected_at`: the first confirmed height at which each sends, sorted.
fn activation_turns(
    translator: &Translator,
    hash: &[u8; 32],
    players: &[&Node],
    collected_at: u64,
) -> Vec<u64> {
    let outsider = Address::repeat_byte(0x42);
    let mut starts: Vec<u64> = players
        .iter()
        .map(|p| p.account)
        .chain([outsider])
        .map(|account| {
            let turn = |confirmed| {
                translator.activation_turn(
                    hash,
                    account,
                    collected_at,
                    confirmed,
                    ACTIVATION_CONFIRMATIONS,
                    LONG,
                )
            };
            match turn(collected_at) {
                Some(Turn::Send) => collected_at,
                Some(Turn::Wait { at }) => {
                    assert_eq!(turn(at - 1), Some(Turn::Wait { at }));
                    assert_eq!(turn(at), Some(Turn::Send));
                    at
                }
                other => panic!("{account}: {other:?}"),
            }
        })
        .collect();
    starts.sort_unstable();
    assert_eq!(
        translator.activation_turn(&[0x5a; 32], outsider, collected_at, u64::MAX, 1, LONG),
        None,
        "a block the chain does not await is not activated"
    );
    starts
}

/// Starts view 1 and takes it to its activation: a fresh key.
fn first_view(chain: &mut Chain, nodes: &[Node], translator: &mut Translator) -> View {
    chain.set_block(10);
    let first = start_view_change(chain, nodes, translator);
    assert_eq!(first.sel.keyMode, 1, "view 1 makes a fresh key");
    assert_eq!(first.key_mode, KeyMode::Fresh);
    assert_eq!(*first.spec.ceremony().unwrap().id(), first.sel.sessionId.0);
    let dealt = deal(nodes, &first, None, &[]);
    complete(chain, nodes, translator, &first, &dealt, None, |_, _, _| {})
}

/// Moves to the active view's next start and starts the view change there.
fn next_view_change(chain: &mut Chain, nodes: &[Node], translator: &mut Translator) -> Start {
    let next_start = chain.read(Coordinator::nextStartCall {});
    chain.set_block(next_start);
    start_view_change(chain, nodes, translator)
}

/// The threshold signature of `t` of `shares` (the lowest indices) on `message`.
fn threshold_sign(
    shares: &HashMap<u32, (u64, Secret<Scalar>)>,
    t: u32,
    message: &[u8],
) -> [u8; 96] {
    let mut held: Vec<&(u64, Secret<Scalar>)> = shares.values().collect();
    held.sort_by_key(|(i, _)| *i);
    let partials: Vec<_> = held
        .iter()
        .take(t as usize)
        .map(|(i, s)| tbls::partial_sign::<MinPk>(s, Scalar::from(*i), message))
        .collect();
    tbls::combine::<MinPk>(t as usize, &partials)
        .unwrap()
        .to_compressed()
}

#[test]
fn a_resharing_view_change_keeps_the_key_and_is_dealt_by_the_previous_view() {
    // Four seats, six candidates: view 1 seats nodes 5..2. Before view 2 node 6 registers with
    // the highest stake and takes a seat, so view 1's members deal to a changed committee.
    let (mut chain, nodes, mut translator) = resharing(4, 7, 6);
    let view1 = first_view(&mut chain, &nodes, &mut translator);
    let group_key = view1.signed.block.group_key.0;

    register(&mut chain, &mut translator, &nodes[6], 10 * STAKE);
    let second = next_view_change(&mut chain, &nodes, &mut translator);
    assert_eq!(second.sel.keyMode, 2);
    assert_eq!(second.key_mode, KeyMode::Reshare);
    assert!(second.sel.committee.contains(&nodes[6].account));
    let reshare = second.spec.reshare.as_ref().expect("a reshare spec");
    // The dealers are view 1's members in its block's order, and the session id the contract
    // computed from its stored digest is the one the DKG derives from the whole spec.
    let old_members: Vec<[u8; 96]> = view1
        .signed
        .block
        .members
        .iter()
        .map(|m| m.identity.0)
        .collect();
    let dealers: Vec<[u8; 96]> = reshare.dealers.iter().map(|d| d.identity.0).collect();
    assert_eq!(dealers, old_members);
    assert_eq!(reshare.group_key.0, group_key);
    assert_eq!(reshare.old_threshold, view1.signed.block.t);
    assert_eq!(
        *second.spec.ceremony().unwrap().id(),
        second.sel.sessionId.0
    );

    let dealt = deal(&nodes, &second, Some(&view1), &[]);
    // Only a dealer posts, and only at its own position: the newcomer plays but deals
    // nothing, and a dealer cannot post another's contribution.
    let (author, contribution) = &dealt.contributions[0];
    chain
        .send(nodes[6].account, 0, post_call(contribution))
        .reverts_with::<Coordinator::NotMember>();
    let other = dealt
        .contributions
        .iter()
        .map(|(a, _)| *a)
        .find(|a| a != author)
        .unwrap();
    chain
        .send(other, 0, post_call(contribution))
        .reverts_with::<Coordinator::NotMember>();

    let caller = nodes[0].account;
    let view2 = complete(
        &mut chain,
        &nodes,
        &mut translator,
        &second,
        &dealt,
        Some(&view1),
        |chain, call, block| {
            // Fewer qualified dealers than view 1's threshold.
            let mut few = call.clone();
            few.a.qualified.truncate(view1.signed.block.t as usize - 1);
            chain
                .send(caller, 0, few)
                .reverts_with::<Coordinator::BadQualifiedSet>();
            // Another group key, however it is signed.
            let mut other_key = call.clone();
            let generator = blstrs::G1Affine::generator().to_compressed();
            let mut moved = block.clone();
            moved.group_key = Hex(generator);
            other_key.a.magicBlock = moved.encode().into();
            other_key.a.groupKeyPoint = g1_point(&generator).unwrap().to_vec().into();
            chain
                .send(caller, 0, other_key)
                .reverts_with::<Coordinator::GroupKeyMismatch>();
            // A block that calls itself a fresh key.
            let mut fresh = call.clone();
            let mut relabelled = block.clone();
            relabelled.key_mode = KeyMode::Fresh;
            fresh.a.magicBlock = relabelled.encode().into();
            chain
                .send(caller, 0, fresh)
                .reverts_with::<Coordinator::BadMagicBlock>();
            // Without the previous committee's handover signature.
            let mut unhanded = call.clone();
            unhanded.a.previousSignaturePoint = call.a.signaturePoint.clone();
            chain
                .send(caller, 0, unhanded)
                .reverts_with::<Coordinator::BadHandoverSignature>();
        },
    );
    assert_eq!(view2.signed.block.key_mode, KeyMode::Reshare);
    assert_eq!(view2.signed.block.group_key.0, group_key, "the key stays");
    assert_eq!(chain.read(Coordinator::currentViewCall {}), 2);
    assert_eq!(
        chain.read(Coordinator::groupKeyCall {}).to_vec(),
        g1_point(&group_key).unwrap().to_vec()
    );
    // The two blocks the contract accepted verify as a chain from the first group key.
    assert_eq!(
        keyquorum_contract::verify_magic_block_chain(&group_key, &[view1.signed, view2.signed]),
        Ok(())
    );
}

/// The contribution of the dealer at position `dealer`, with its author's account.
fn contribution_of<'d>(dealt: &'d Dealt<'_>, dealer: usize, n: u32) -> &'d (Address, Vec<u8>) {
    dealt
        .contributions
        .iter()
        .find(|(_, p)| dealer_of(p, n) == dealer)
        .unwrap()
}

/// Posts the contributions and first-attempt publications of the dealers at `posting` (dealer
/// positions).
fn post_dealers(chain: &mut Chain, s: &Start, dealt: &Dealt<'_>, posting: &[usize]) {
    let dealer_of_post = |p: &[u8]| dealer_of(p, s.sel.n);
    for (author, p) in &dealt.contributions {
        if posting.contains(&dealer_of_post(p)) {
            chain.send(*author, 0, post_call(p)).ok();
        }
    }
    chain.set_block(s.sel.shareEnd + 1);
    // The contract takes a publication's first attempt only (bytes 33..37 after the
    // signature and kind hold the attempt).
    for (author, p) in &dealt.publications {
        if posting.contains(&dealer_of_post(p)) && p[81..85] == [0; 4] {
            chain.send(*author, 0, post_call(p)).ok();
        }
    }
}

/// A reshare that fails is restarted without the dealers that did not post both their
/// contribution and their publication. Once fewer than the active view's threshold of them are
/// left, the view change is abandoned with its bans, and started over later with every member
/// dealing again, which completes: the key is kept however long its holders were away.
#[test]
fn a_failed_reshare_restarts_without_its_silent_dealers_and_starts_over_when_too_few_are_left() {
    let (mut chain, nodes, mut translator) = resharing(4, 6, 6);
    let view1 = first_view(&mut chain, &nodes, &mut translator);
    assert_eq!(
        (view1.signed.block.members.len(), view1.signed.block.t),
        (4, 3)
    );
    let second = next_view_change(&mut chain, &nodes, &mut translator);
    let dealt = deal(&nodes, &second, Some(&view1), &[]);
    let dealer_account = |d: usize| {
        let id = &view1.signed.block.members[d].identity.0;
        node_of(&nodes, id).account
    };

    // Dealer 3 is silent and nobody activates: the restart bans it, and it deals no more.
    post_dealers(&mut chain, &second, &dealt, &[0, 1, 2]);
    chain.set_block(second.sel.waitEnd + 1);
    let retry = start_view_change(&mut chain, &nodes, &mut translator);
    assert_eq!(retry.sel.number, 1);
    assert_eq!(retry.key_mode, KeyMode::Reshare);
    assert_eq!(*retry.spec.ceremony().unwrap().id(), retry.sel.sessionId.0);
    assert!(!retry.sel.committee.contains(&dealer_account(3)));
    chain.set_block(chain.block() + 1);
    let silent = contribution_of(&dealt, 3, second.sel.n);
    chain
        .send(silent.0, 0, post_call(&silent.1))
        .reverts_with::<Coordinator::NotMember>();
    // The others still deal (this post is of the failed session).
    let speaking = contribution_of(&dealt, 0, second.sel.n);
    chain
        .send(speaking.0, 0, post_call(&speaking.1))
        .reverts_with::<Coordinator::WrongSession>();

    // The retry fails too, with dealer 2 silent as well: two dealers are left, and view 1's
    // threshold is three.
    let dealt = deal(&nodes, &retry, Some(&view1), &[]);
    post_dealers(&mut chain, &retry, &dealt, &[0, 1]);
    chain.set_block(retry.sel.waitEnd + 1);
    let r = chain
        .send(nodes[0].account, 0, Coordinator::startViewChangeCall {})
        .ok();
    assert!(r.events::<Coordinator::CommitteeSelected>().is_empty());
    let abandoned = r.events::<Coordinator::ViewChangeAbandoned>().remove(0);
    assert_eq!(
        (
            abandoned.viewNumber,
            abandoned.reason,
            abandoned.have,
            abandoned.needed
        ),
        (2, 1, U256::from(2), U256::from(3))
    );
    // Nodes hear of it as on the embedded chain, in the same words: before, the translator
    // dropped it, and an operator saw only failed ceremonies, abandoned again and again.
    let events = translator.translate(BoardInput::ViewChangeAbandoned(abandoned.clone()));
    assert_eq!(
        events,
        vec![
            Event::ViewChangeAborted {
                view: 2,
                ceremony_number: 1,
                reason: "2 previous members in good standing, resharing needs 3".into(),
                retry_at: abandoned.nextStart,
            },
            Event::PhaseChanged {
                view: 2,
                ceremony_number: 1,
                attempt: 0,
                phase: ViewChangePhase::Idle,
                deadline: abandoned.nextStart,
            },
        ]
    );
    assert_eq!(
        chain.read(Coordinator::currentViewCall {}),
        1,
        "view 1 serves on"
    );
    assert_eq!(chain.read(Coordinator::runningCall {}), U256::ZERO);
    chain
        .send(nodes[0].account, 0, Coordinator::startViewChangeCall {})
        .reverts_with::<Coordinator::TooEarly>();

    // Later, every member of view 1 deals again, the silent ones included, and the reshare
    // completes with the key kept.
    chain.set_block(abandoned.nextStart);
    let over = start_view_change(&mut chain, &nodes, &mut translator);
    assert_eq!((over.sel.viewNumber, over.sel.number), (2, 2));
    assert_eq!(over.key_mode, KeyMode::Reshare);
    assert_eq!(*over.spec.ceremony().unwrap().id(), over.sel.sessionId.0);
    assert!(over.sel.committee.contains(&dealer_account(3)));
    let dealt = deal(&nodes, &over, Some(&view1), &[]);
    let view2 = complete(
        &mut chain,
        &nodes,
        &mut translator,
        &over,
        &dealt,
        Some(&view1),
        |_, _, _| {},
    );
    assert_eq!(view2.signed.block.group_key, view1.signed.block.group_key);
    assert_eq!(chain.read(Coordinator::currentViewCall {}), 2);
}

/// A reshare's players post nothing on chain: the contract sees them only in the dealers' ack
/// bitmaps. A restart sits out the committee members no accepted publication names as acking,
/// as it does a fresh ceremony's silent dealers; the dealers, who acked, stay.
#[test]
fn a_failed_reshare_restarts_without_the_players_no_publication_saw_ack() {
    let (mut chain, nodes, mut translator) = resharing(4, 7, 6);
    let view1 = first_view(&mut chain, &nodes, &mut translator);
    register(&mut chain, &mut translator, &nodes[6], 10 * STAKE);
    let second = next_view_change(&mut chain, &nodes, &mut translator);
    let newcomer = nodes[6].account;
    assert!(second.sel.committee.contains(&newcomer));

    // The newcomer, a player only, never acks; every dealer posts, and nobody activates.
    let dealt = deal(&nodes, &second, Some(&view1), &[6]);
    let all: Vec<usize> = (0..dealt.contributions.len()).collect();
    post_dealers(&mut chain, &second, &dealt, &all);
    chain.set_block(second.sel.waitEnd + 1);
    let retry = start_view_change(&mut chain, &nodes, &mut translator);
    assert_eq!(retry.sel.number, 1);
    assert!(
        !retry.sel.committee.contains(&newcomer),
        "the silent player sits out"
    );
    for m in &view1.signed.block.members {
        let dealer = node_of(&nodes, &m.identity.0).account;
        assert!(
            retry.sel.committee.contains(&dealer),
            "a dealer that acked stays"
        );
    }
}

/// A restart whose bans leave fewer candidates than the smallest committee abandons the view
/// change too, rather than refusing every later start while the bans stand; the start-over
/// seats the banned nodes again.
#[test]
fn a_restart_left_without_enough_candidates_is_abandoned_and_started_over() {
    // Nodes 0..3 make view 1; nodes 4 and 5 join with the highest stakes and take two of view
    // 2's four seats.
    let (mut chain, nodes, mut translator) = resharing(4, 6, 4);
    let view1 = first_view(&mut chain, &nodes, &mut translator);
    register(&mut chain, &mut translator, &nodes[4], 10 * STAKE);
    register(&mut chain, &mut translator, &nodes[5], 10 * STAKE);
    let second = next_view_change(&mut chain, &nodes, &mut translator);
    for newcomer in [4, 5] {
        assert!(second.sel.committee.contains(&nodes[newcomer].account));
    }

    // The newcomers never ack, and node 1, a dealer without a seat, posts nothing: three of
    // the six sit out, below the four seats the contract needs. View 1's threshold of three
    // dealers still posts, so it is the candidates that are short.
    let dealt = deal(&nodes, &second, Some(&view1), &[1, 4, 5]);
    let dealer_position = |i: u32| {
        view1
            .signed
            .block
            .members
            .iter()
            .position(|m| m.identity.0 == nodes[i as usize].identity)
            .unwrap()
    };
    let posting: Vec<usize> = [0, 2, 3].into_iter().map(dealer_position).collect();
    post_dealers(&mut chain, &second, &dealt, &posting);
    chain.set_block(second.sel.waitEnd + 1);
    let r = chain
        .send(nodes[0].account, 0, Coordinator::startViewChangeCall {})
        .ok();
    assert!(r.events::<Coordinator::CommitteeSelected>().is_empty());
    let abandoned = r.events::<Coordinator::ViewChangeAbandoned>().remove(0);
    assert_eq!(
        (abandoned.reason, abandoned.have, abandoned.needed),
        (2, U256::from(3), U256::from(4))
    );
    chain.set_block(abandoned.nextStart);
    let over = start_view_change(&mut chain, &nodes, &mut translator);
    assert_eq!(over.key_mode, KeyMode::Reshare);
    assert_eq!(
        over.sel.committee, second.sel.committee,
        "nobody sits out any more"
    );
}
