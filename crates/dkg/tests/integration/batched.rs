//! The batched paths decide exactly what the one-by-one paths decide: post signatures and
//! aggregate acks checked in one multi-pairing per phase ([`preverify`]), shares checked in one
//! batch per block of contributions (`AckRevealParticipant::handle_board_posts`), with a bad item at
//! every position; and a participant's outputs do not depend on the number of threads.

use keyquorum_crypto::Bls12381G1;
use keyquorum_crypto::Curve;
use keyquorum_crypto::encrypt::{self, ShareAad};
use keyquorum_dkg::ackreveal::AckRevealParticipant;
use keyquorum_dkg::board::{Board, BoardError, Outcome};
use keyquorum_dkg::identity::{self, IdentitySignature, Purpose};
use keyquorum_dkg::messages::{Direct, Post, SignedPost, ack_payload};
use keyquorum_dkg::participant::{Action, Input, Observation};
use keyquorum_dkg::preverify::preverify_posts;
use keyquorum_dkg::testing::ceremony::*;
use keyquorum_dkg::{Ceremony, CeremonyConfig, Params};
use rand_core::SeedableRng;

type C = Bls12381G1;
const N: usize = 7;

fn members() -> Vec<MemberKeys> {
    (0..N as u32).map(member).collect()
}

fn config(members: &[MemberKeys]) -> CeremonyConfig<C> {
    fresh_config::<C>(members, Params::new(N, 5, 5).unwrap())
}

/// An honest ceremony's board: posts and deadlines in order.
fn honest_board(members: &[MemberKeys]) -> Vec<BoardEvent> {
    let ceremony = Ceremony::new(config(members)).unwrap();
    let nodes: Vec<Box<dyn keyquorum_dkg::participant::Participant<C>>> = members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            Box::new(
                AckRevealParticipant::<C>::new(
                    ceremony.clone(),
                    m.identity.clone(),
                    keyquorum_crypto::encrypt::EncryptionSecretKey::from_seed(&seed(i as u32)),
                    None,
                    [i as u8; 32],
                )
                .unwrap(),
            ) as Box<dyn keyquorum_dkg::participant::Participant<C>>
        })
        .collect();
    let (_, events) = run_nodes(nodes, &[], &mut |_, a| vec![a]);
    events
}

fn seed(i: u32) -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_be_bytes());
    seed[31] = 0xaa;
    seed
}

fn resign(members: &[MemberKeys], dealer: usize, post: Post<C>) -> Vec<u8> {
    let signature = members[dealer]
        .identity
        .sign(Purpose::Post, &post.signed_payload());
    SignedPost { post, signature }.encode()
}

/// Replays a board; with `batched`, each run of posts between deadlines is pre-verified in one
/// batch first (on a pool of `threads`). Returns every post's result and the outcome.
fn replay(
    members: &[MemberKeys],
    events: &[BoardEvent],
    batched: bool,
    threads: usize,
) -> (Vec<Result<(), BoardError>>, Option<Outcome<C>>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let ceremony = Ceremony::new(config(members)).unwrap();
        let mut board = Board::new(ceremony.clone());
        let mut results = Vec::new();
        let mut run: Vec<SignedPost<C>> = Vec::new();
        let flush = |run: &mut Vec<SignedPost<C>>,
                     board: &mut Board<C>,
                     results: &mut Vec<Result<(), BoardError>>| {
            if batched {
                let refs: Vec<&SignedPost<C>> = run.iter().collect();
                preverify_posts(&ceremony, &refs);
            }
            for p in run.drain(..) {
                results.push(board.apply(&p));
            }
        };
        for e in events {
            match e {
                BoardEvent::Post(bytes) => run.push(SignedPost::decode(bytes, N).unwrap()),
                BoardEvent::Deadline => {
                    flush(&mut run, &mut board, &mut results);
                    board.advance();
                }
            }
        }
        flush(&mut run, &mut board, &mut results);
        (results, board.outcome().cloned())
    })
}

#[test]
fn batched_post_checks_decide_as_one_by_one_with_a_bad_item_anywhere() {
    let members = members();
    let honest = honest_board(&members);
    let posts: Vec<usize> = (0..honest.len())
        .filter(|i| matches!(honest[*i], BoardEvent::Post(_)))
        .collect();
    assert_eq!(posts.len(), 2 * N);
    let mut cases: Vec<(String, Vec<BoardEvent>)> = vec![("honest".into(), honest.clone())];
    for &at in &posts {
        let BoardEvent::Post(bytes) = &honest[at] else {
            unreachable!()
        };
        let signed = SignedPost::<C>::decode(bytes, N).unwrap();
        let dealer = signed.post.dealer() as usize;
        // Signed by another member: refused as a bad signature.
        let mut forged = honest.clone();
        let wrong = members[(dealer + 1) % N]
            .identity
            .sign(Purpose::Post, &signed.post.signed_payload());
        forged[at] = BoardEvent::Post(
            SignedPost {
                post: signed.post.clone(),
                signature: wrong,
            }
            .encode(),
        );
        cases.push((format!("foreign signature at {at}"), forged));
        // A signature that is not a curve point.
        let mut garbage = honest.clone();
        garbage[at] = BoardEvent::Post(
            SignedPost {
                post: signed.post.clone(),
                signature: IdentitySignature([0x9a; 48]),
            }
            .encode(),
        );
        cases.push((format!("undecodable signature at {at}"), garbage));
        if let Post::Publication(p) = &signed.post {
            // Aggregate ack missing one acker's signature, the post itself validly signed.
            let payload = ack_payload(&p.session, p.dealer, &p.commitment_hash);
            let sigs: Vec<IdentitySignature> = p.acks[1..]
                .iter()
                .map(|j| members[*j as usize].identity.sign(Purpose::Ack, &payload))
                .collect();
            let mut short = p.clone();
            short.ack_signature = identity::aggregate(&sigs);
            let mut bad_ack = honest.clone();
            bad_ack[at] = BoardEvent::Post(resign(&members, dealer, Post::Publication(short)));
            cases.push((format!("bad aggregate ack at {at}"), bad_ack));
        }
    }
    // Two bad items at once, in different phases.
    let mut two = cases[1].1.clone();
    two[*posts.last().unwrap()] = cases.last().unwrap().1[*posts.last().unwrap()].clone();
    cases.push(("two bad items".into(), two));

    for (name, events) in &cases {
        let one_by_one = replay(&members, events, false, 1);
        assert!(
            one_by_one.1.is_some(),
            "{name}: the board reaches an outcome"
        );
        if name != "honest" {
            assert!(
                one_by_one.0.iter().any(|r| r.is_err())
                    || matches!(
                        &one_by_one.1,
                        Some(Outcome::Success { exclusions, .. }) if !exclusions.is_empty()
                    )
                    || matches!(&one_by_one.1, Some(Outcome::Failure { .. })),
                "{name}: the bad item is noticed"
            );
        }
        for threads in [1, 3] {
            assert_eq!(
                replay(&members, events, true, threads),
                one_by_one,
                "{name}, {threads} threads"
            );
        }
    }
}

/// Node 0's view: every dealer's deal to it and the board, from an honest ceremony.
struct View {
    deals: Vec<Direct>,
    contributions: Vec<Vec<u8>>,
    events: Vec<BoardEvent>,
}

fn node0_view(members: &[MemberKeys]) -> View {
    let ceremony = Ceremony::new(config(members)).unwrap();
    let events = honest_board(members);
    let mut deals = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let mut node = AckRevealParticipant::<C>::new(
            ceremony.clone(),
            m.identity.clone(),
            keyquorum_crypto::encrypt::EncryptionSecretKey::from_seed(&seed(i as u32)),
            None,
            [i as u8; 32],
        )
        .unwrap();
        for a in node.handle(Input::Start) {
            if let Action::Send { to, payload } = a
                && &to == members[0].identity.public()
            {
                deals.push(Direct::decode(&payload).unwrap());
            }
        }
    }
    // Node 0's own deal to itself never leaves it (it handles it at once).
    let contributions = events
        .iter()
        .take_while(|e| matches!(e, BoardEvent::Post(_)))
        .map(|e| match e {
            BoardEvent::Post(p) => p.clone(),
            BoardEvent::Deadline => unreachable!(),
        })
        .collect();
    View {
        deals,
        contributions,
        events,
    }
}

fn node0(members: &[MemberKeys]) -> AckRevealParticipant<C> {
    AckRevealParticipant::<C>::new(
        Ceremony::new(config(members)).unwrap(),
        members[0].identity.clone(),
        keyquorum_crypto::encrypt::EncryptionSecretKey::from_seed(&seed(0)),
        None,
        [0u8; 32],
    )
    .unwrap()
}

/// Acks sent and dealers named for bad shares.
/// A direct message as the transport delivers it: with its author as the sender.
fn from_author(members: &[MemberKeys], d: &Direct) -> Input {
    let author = match d {
        Direct::Deal(deal) => deal.dealer,
        Direct::Ack(ack) => ack.player,
    };
    Input::Message {
        from: members[author as usize].identity.public().clone(),
        payload: d.encode(),
    }
}

fn verdicts(actions: &[Action<C>]) -> (Vec<Vec<u8>>, Vec<u32>) {
    let mut acks = Vec::new();
    let mut bad = Vec::new();
    for a in actions {
        match a {
            Action::Send { payload, .. } => {
                if let Ok(Direct::Ack(_)) = Direct::decode(payload) {
                    acks.push(payload.clone());
                }
            }
            Action::Observed(Observation::BadShare { dealer }) => bad.push(*dealer),
            _ => {}
        }
    }
    acks.sort();
    bad.sort();
    (acks, bad)
}

#[test]
fn batched_share_checks_name_the_same_dealers_as_one_by_one() {
    let members = members();
    let view = node0_view(&members);
    let ceremony = Ceremony::new(config(&members)).unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    for bad in 1..N {
        for kind in 0..2 {
            let deals: Vec<Direct> = view
                .deals
                .iter()
                .map(|d| match d {
                    Direct::Deal(deal) if deal.dealer as usize == bad => {
                        let mut deal = deal.clone();
                        if kind == 0 {
                            // Does not decrypt.
                            let last = deal.ciphertext.len() - 1;
                            deal.ciphertext[last] ^= 1;
                        } else {
                            // Decrypts to a share that does not match the commitment.
                            let Post::Contribution(c) =
                                SignedPost::<C>::decode(&view.contributions[bad], N)
                                    .unwrap()
                                    .post
                            else {
                                panic!("contributions come first")
                            };
                            let aad = ShareAad {
                                session_id: *ceremony.id(),
                                dealer: bad as u32,
                                recipient: 0,
                                commitment_hash: c.commitment_hash(),
                            };
                            let wrong = C::encode_scalar(&blstrs::Scalar::from(12345u64));
                            deal.ciphertext = encrypt::seal(
                                &ceremony.players()[0].encryption,
                                &aad,
                                &wrong,
                                &mut rng,
                            )
                            .to_bytes();
                        }
                        Direct::Deal(deal)
                    }
                    other => other.clone(),
                })
                .collect();
            // One by one: deals first (held), then each contribution as its own input.
            let mut a = node0(&members);
            let mut out_a = a.handle(Input::Start);
            for d in &deals {
                out_a.extend(a.handle(from_author(&members, d)));
            }
            for p in &view.contributions {
                out_a.extend(a.handle(Input::BoardPost(p.clone())));
            }
            // Batched: the same deals, the contributions as one batch.
            let mut b = node0(&members);
            let mut out_b = b.handle(Input::Start);
            for d in &deals {
                out_b.extend(b.handle(from_author(&members, d)));
            }
            out_b.extend(b.handle_board_posts(&view.contributions));
            let (va, vb) = (verdicts(&out_a), verdicts(&out_b));
            assert_eq!(va.1, vec![bad as u32], "one by one names dealer {bad}");
            assert_eq!(va, vb, "dealer {bad}, kind {kind}");
            assert_eq!(a.received_from(), b.received_from());
        }
    }
}

#[test]
fn a_participants_outputs_do_not_depend_on_the_thread_count() {
    let members = members();
    let view = node0_view(&members);
    let run = |threads: usize| -> Vec<String> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut node = node0(&members);
            let mut out = node.handle(Input::Start);
            for d in &view.deals {
                out.extend(node.handle(from_author(&members, d)));
            }
            let mut run: Vec<Vec<u8>> = Vec::new();
            for e in &view.events {
                match e {
                    BoardEvent::Post(p) => run.push(p.clone()),
                    BoardEvent::Deadline => {
                        out.extend(node.handle_board_posts(&run));
                        run.clear();
                        out.extend(node.handle(Input::Deadline));
                    }
                }
            }
            out.extend(node.handle_board_posts(&run));
            assert!(
                out.iter().any(|a| matches!(a, Action::Finished(_))),
                "the ceremony completes"
            );
            out.iter().map(|a| format!("{a:?}")).collect()
        })
    };
    let one = run(1);
    assert_eq!(run(2), one);
    assert_eq!(run(4), one);
}
