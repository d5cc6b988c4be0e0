//! Feeding a block of board posts through `AckRevealParticipant::handle_board_posts` is the same as
//! feeding each post as `Input::BoardPost`: every participant runs twice, one copy fed post by
//! post and one fed block by block, and after every input the two copies must have produced the
//! same actions, byte for byte and in the same order, and at the end the same outcome and
//! share. Fresh and reshare ceremonies, with a player that never acks (or with every log
//! posted early, in the share phase), a dealer that never publishes, deals that arrive before their contributions, and bad posts mixed into the blocks
//! at random places: wrong signatures, posts claiming another dealer, posts of another session,
//! garbage, replays and an equivocating second contribution in the same block as the first.

use std::collections::VecDeque;
use std::sync::Arc;

use keyquorum_crypto::Bls12381G1;
use keyquorum_crypto::Curve;
use keyquorum_crypto::commit::EvalCommitment;
use keyquorum_crypto::poly::Polynomial;
use keyquorum_dkg::ackreveal::AckRevealParticipant;
use keyquorum_dkg::identity::{IdentityPublicKey, Purpose};
use keyquorum_dkg::messages::{Contribution, Post, SignedPost};
use keyquorum_dkg::participant::{Action, Input};
use keyquorum_dkg::testing::ceremony::*;
use keyquorum_dkg::{Ceremony, CeremonyConfig, Params};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

type C = Bls12381G1;
type Scalar = <C as Curve>::Scalar;

/// The same participant twice: fed post by post, and fed block by block.
struct Twin {
    one: AckRevealParticipant<C>,
    batch: AckRevealParticipant<C>,
}

/// What a list of actions says, comparable (secret shares by value: their `Debug` is redacted).
fn fingerprint(actions: &[Action<C>]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Finished(out) => format!(
                "{a:?} share={:?}",
                out.secret_share
                    .as_ref()
                    .map(|s| C::encode_scalar(s.expose()))
            ),
            _ => format!("{a:?}"),
        })
        .collect()
}

/// A ceremony under test: its participants' keys and old shares.
struct Setup {
    ceremony: Arc<Ceremony<C>>,
    /// Members (indexing `member(i)`) that take part, with their old shares when resharing.
    parts: Vec<(u32, Option<keyquorum_crypto::secret::Secret<Scalar>>)>,
    /// Member numbers of the dealers, in dealer order.
    dealers: Vec<u32>,
}

fn fresh() -> Setup {
    let members: Vec<MemberKeys> = (0..7).map(member).collect();
    let ceremony =
        Ceremony::new(fresh_config::<C>(&members, Params::new(7, 5, 5).unwrap())).unwrap();
    Setup {
        ceremony,
        parts: (0..7).map(|i| (i, None)).collect(),
        dealers: (0..7).collect(),
    }
}

/// Members 0..5 hold a key (t = 3); they reshare it to members 2..8 (t = 4).
fn reshare() -> Setup {
    let old: Vec<MemberKeys> = (0..5).map(member).collect();
    let old_ceremony =
        Ceremony::new(fresh_config::<C>(&old, Params::new(5, 3, 4).unwrap())).unwrap();
    let results = run(
        old_ceremony.clone(),
        (0..5).map(member).collect(),
        vec![None; 5],
        &[],
    );
    let outputs: Vec<_> = results
        .into_iter()
        .map(|r| match r {
            RunResult::Ok(o) => o,
            _ => panic!("the old ceremony succeeds"),
        })
        .collect();
    let new: Vec<MemberKeys> = (2..8).map(member).collect();
    let mut config: CeremonyConfig<C> = fresh_config(&new, Params::new(6, 4, 5).unwrap());
    config.epoch = 2;
    config.reshare = Some(reshare_of(&old, &old_ceremony, &outputs[0]));
    let ceremony = Ceremony::new(config).unwrap();
    let mut parts: Vec<(u32, Option<_>)> = (0..5)
        .map(|i| (i, outputs[i as usize].secret_share.clone()))
        .collect();
    parts.extend((5..8).map(|i| (i, None)));
    Setup {
        ceremony,
        parts,
        dealers: (0..5).collect(),
    }
}

/// A valid post of another session by member `m`.
fn foreign_post(m: u32) -> Vec<u8> {
    let members: Vec<MemberKeys> = (0..6).map(member).collect();
    let mut config = fresh_config::<C>(&members, Params::new(6, 4, 5).unwrap());
    config.domain = b"another-chain".to_vec();
    let ceremony = Ceremony::new(config).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(m));
    let poly = Polynomial::random(3, None, &mut rng);
    let post = Post::Contribution(Contribution::<C> {
        session: *ceremony.id(),
        dealer: m,
        commitment: EvalCommitment::feldman(&poly, ceremony.player_indices()),
    });
    let signature = members[m as usize]
        .identity
        .sign(Purpose::Post, &post.signed_payload());
    SignedPost { post, signature }.encode()
}

/// Runs `setup` with the twins and checks them after every input. Returns how many bad posts
/// went on the board.
fn check_equivalence(setup: &Setup, seed: u64) -> usize {
    let ceremony = &setup.ceremony;
    let n = ceremony.n();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut twins: Vec<Twin> = setup
        .parts
        .iter()
        .map(|(i, old)| {
            let node = || {
                let m = member(*i);
                AckRevealParticipant::<C>::new(
                    ceremony.clone(),
                    m.identity,
                    m.encryption,
                    old.clone(),
                    [*i as u8 + 1; 32],
                )
                .unwrap()
            };
            Twin {
                one: node(),
                batch: node(),
            }
        })
        .collect();
    let ids: Vec<IdentityPublicKey> = twins.iter().map(|t| t.one.identity().clone()).collect();
    let player_member = |j: u32| -> u32 { setup.parts[setup.parts.len() - n + j as usize].0 };
    // A player that never acks (in half the runs; in the others every dealer is acked by all
    // and posts its log early, in the share phase) and a dealer that never publishes.
    let silent_player = if seed.is_multiple_of(2) {
        player_member(n as u32 - 1)
    } else {
        u32::MAX
    };
    let no_publication = setup.dealers[1];
    // A dealer whose second, different contribution follows its first in the same block.
    let equivocator = setup.dealers[setup.dealers.len() - 1];
    let member_of = |k: usize| setup.parts[k].0;

    let mut inbox: VecDeque<(usize, Input)> = (0..twins.len()).map(|k| (k, Input::Start)).collect();
    let mut board: Vec<Vec<u8>> = Vec::new();
    let mut on_board: Vec<Vec<u8>> = Vec::new();
    let mut bad_posts = 0;
    let mut finished = vec![false; twins.len()];

    // Carries out the actions of twin `k` (the one-by-one copy's, which the other matched).
    let route = |k: usize,
                 actions: Vec<Action<C>>,
                 inbox: &mut VecDeque<(usize, Input)>,
                 board: &mut Vec<Vec<u8>>,
                 finished: &mut Vec<bool>| {
        for a in actions {
            match a {
                Action::Send { to, payload } => {
                    let is_ack = matches!(
                        keyquorum_dkg::messages::Direct::decode(&payload),
                        Ok(keyquorum_dkg::messages::Direct::Ack(_))
                    );
                    if is_ack && member_of(k) == silent_player {
                        continue;
                    }
                    let j = ids.iter().position(|x| *x == to).unwrap();
                    inbox.push_back((
                        j,
                        Input::Message {
                            from: ids[k].clone(),
                            payload,
                        },
                    ));
                }
                Action::Post(p) => {
                    let is_publication = matches!(
                        SignedPost::<C>::decode(&p, n).map(|s| s.post),
                        Ok(Post::Publication(_))
                    );
                    if !(is_publication && member_of(k) == no_publication) {
                        board.push(p);
                    }
                }
                Action::Finished(_) | Action::Failed(_) => finished[k] = true,
                Action::Observed(_) => {}
            }
        }
    };

    for _round in 0..16 {
        loop {
            while let Some((k, input)) = inbox.pop_front() {
                let a = twins[k].one.handle(input.clone());
                let b = twins[k].batch.handle(input);
                assert_eq!(fingerprint(&a), fingerprint(&b), "a message or Start");
                route(k, a, &mut inbox, &mut board, &mut finished);
            }
            if board.is_empty() {
                break;
            }
            // The chain orders the posts, with bad ones at random places, into blocks.
            let mut chain: Vec<Vec<u8>> = Vec::new();
            for p in std::mem::take(&mut board) {
                let signed = SignedPost::<C>::decode(&p, n).unwrap();
                chain.push(p.clone());
                if let Post::Contribution(c) = &signed.post
                    && setup.dealers[c.dealer as usize] == equivocator
                {
                    let mut poly_rng = ChaCha20Rng::seed_from_u64(seed ^ 0xe0);
                    let poly = Polynomial::random(ceremony.t() - 1, None, &mut poly_rng);
                    let post = Post::Contribution(Contribution::<C> {
                        session: c.session,
                        dealer: c.dealer,
                        commitment: EvalCommitment::feldman(&poly, ceremony.player_indices()),
                    });
                    let signature = member(equivocator)
                        .identity
                        .sign(Purpose::Post, &post.signed_payload());
                    chain.push(SignedPost { post, signature }.encode());
                    bad_posts += 1;
                }
                for _ in 0..(rng.next_u32() % 3) {
                    let bad = match rng.next_u32() % 6 {
                        // The signature of another post: a valid point, the wrong message.
                        0 => {
                            let other = &on_board.last().unwrap_or(&p)[..];
                            let mut b = p.clone();
                            if other != &p[..] && other.len() >= 48 {
                                b[..48].copy_from_slice(&other[..48]);
                            } else {
                                b[47] ^= 1;
                            }
                            b
                        }
                        // The post claims another dealer and is signed by its real author.
                        1 => {
                            let mut s = signed.clone();
                            let claimed = (s.post.dealer() + 1) % setup.dealers.len() as u32;
                            match &mut s.post {
                                Post::Contribution(c) => c.dealer = claimed,
                                Post::Publication(pb) => pb.dealer = claimed,
                            }
                            let author = setup.dealers[signed.post.dealer() as usize];
                            s.signature = member(author)
                                .identity
                                .sign(Purpose::Post, &s.post.signed_payload());
                            s.encode()
                        }
                        2 => foreign_post(rng.next_u32() % 6),
                        3 => {
                            let mut g = vec![0u8; 1 + (rng.next_u32() % 200) as usize];
                            rng.fill_bytes(&mut g);
                            g
                        }
                        // A replay of an earlier post (a duplicate or in the wrong phase).
                        4 => on_board
                            .get(rng.next_u32() as usize % on_board.len().max(1))
                            .cloned()
                            .unwrap_or_else(|| p.clone()),
                        // A flipped bit in the signature (often not a curve point).
                        _ => {
                            let mut b = p.clone();
                            b[(rng.next_u32() % 48) as usize] ^= 0x10;
                            b
                        }
                    };
                    let at = rng.next_u32() as usize % (chain.len() + 1);
                    chain.insert(at, bad);
                    bad_posts += 1;
                }
            }
            let mut rest = &chain[..];
            while !rest.is_empty() {
                let take = 1 + rng.next_u32() as usize % rest.len().min(5);
                let (block, tail) = rest.split_at(take);
                rest = tail;
                for (k, twin) in twins.iter_mut().enumerate() {
                    let mut a = Vec::new();
                    for p in block {
                        a.extend(twin.one.handle(Input::BoardPost(p.clone())));
                    }
                    let b = twin.batch.handle_board_posts(block);
                    assert_eq!(
                        fingerprint(&a),
                        fingerprint(&b),
                        "node {k}, a block of {} posts",
                        block.len()
                    );
                    route(k, a, &mut inbox, &mut board, &mut finished);
                }
                on_board.extend(block.iter().cloned());
            }
        }
        if finished.iter().all(|f| *f) {
            break;
        }
        for k in 0..twins.len() {
            inbox.push_back((k, Input::Deadline));
        }
    }
    assert!(finished.iter().all(|f| *f), "every participant finishes");
    for t in &twins {
        assert_eq!(
            format!("{:?}", t.one.board().outcome()),
            format!("{:?}", t.batch.board().outcome())
        );
        assert_eq!(t.one.received_from(), t.batch.received_from());
        assert_eq!(t.one.acked_by(), t.batch.acked_by());
        assert!(
            matches!(
                t.one.board().outcome(),
                Some(keyquorum_dkg::board::Outcome::Success { .. })
            ),
            "the ceremony succeeds despite the bad posts"
        );
    }
    bad_posts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn a_fresh_ceremony_fed_in_blocks_acts_as_fed_post_by_post(seed in any::<u64>()) {
        let bad = check_equivalence(&fresh(), seed);
        prop_assert!(bad > 0);
    }

    #[test]
    fn a_reshare_fed_in_blocks_acts_as_fed_post_by_post(seed in any::<u64>()) {
        let bad = check_equivalence(&reshare(), seed);
        prop_assert!(bad > 0);
    }
}
