//! Fuzz harnesses of `Board::apply` and `ComplaintBoard::apply`, the rules every node and the
//! contract run on posts from the chain.
//!
//! Each case replays the transcript of an honest ceremony (posts and phase deadlines, recorded
//! once) and interleaves hostile posts: random bytes, transcript posts with mutated bytes, and
//! mutated posts signed again by the author they name, which gets them past the signature check
//! into the rules. Properties: neither decoding nor `apply` nor `advance` panics; a refusal
//! other than a fault leaves the board equal to what it was; a fault disqualifies exactly the
//! author it names; and the board ends with an outcome. `KQ_FUZZ_CASES=<n>` sets the number of
//! cases (see `docs/testing.md`).

use keyquorum_dkg::testing::fuzzing;

use std::sync::{Arc, OnceLock};

use keyquorum_crypto::Bls12381G1;
use keyquorum_dkg::ackreveal::AckRevealParticipant;
use keyquorum_dkg::board::{Board, BoardError, Role};
use keyquorum_dkg::complaint::messages::{ComplaintPost, SignedComplaintPost};
use keyquorum_dkg::complaint::{ComplaintBoard, ComplaintBoardError, ComplaintParticipant};
use keyquorum_dkg::identity::{IdentityKeypair, Purpose, SIGNATURE_LEN};
use keyquorum_dkg::messages::{Post, SignedPost};
use keyquorum_dkg::participant::{Action, Participant as Node};
use keyquorum_dkg::testing::ceremony::*;
use keyquorum_dkg::{Ceremony, Params, Variant};
use proptest::prelude::*;

type C = Bls12381G1;
const N: usize = 4;

struct Transcript {
    ceremony: Arc<Ceremony<C>>,
    keys: Vec<IdentityKeypair>,
    events: Vec<BoardEvent>,
}

impl Transcript {
    fn posts(&self) -> Vec<Vec<u8>> {
        self.events
            .iter()
            .filter_map(|e| match e {
                BoardEvent::Post(p) => Some(p.clone()),
                BoardEvent::Deadline => None,
            })
            .collect()
    }
}

/// An honest ceremony of four on BLS12-381 G1 in `variant`, recorded once per process.
fn transcript(variant: Variant) -> &'static Transcript {
    static ACKREVEAL: OnceLock<Transcript> = OnceLock::new();
    static COMPLAINT: OnceLock<Transcript> = OnceLock::new();
    let cell = match variant {
        Variant::AckReveal => &ACKREVEAL,
        Variant::Complaint => &COMPLAINT,
    };
    cell.get_or_init(|| {
        let members: Vec<MemberKeys> = (0..N as u32).map(member).collect();
        let mut config = fresh_config::<C>(&members, Params::new(N, 2, 4).unwrap());
        if variant == Variant::Complaint {
            config = complaint_variant(config, &members);
        }
        let ceremony = Ceremony::new(config).unwrap();
        let keys = members.iter().map(|m| m.identity.clone()).collect();
        let nodes: Vec<Box<dyn Node<C>>> = members
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                let seed = [i as u8 + 1; 32];
                match variant {
                    Variant::AckReveal => Box::new(
                        AckRevealParticipant::new(
                            ceremony.clone(),
                            m.identity,
                            m.encryption,
                            None,
                            seed,
                        )
                        .unwrap(),
                    ) as Box<dyn Node<C>>,
                    Variant::Complaint => Box::new(
                        ComplaintParticipant::new(
                            ceremony.clone(),
                            m.identity,
                            m.verifiable,
                            None,
                            seed,
                        )
                        .unwrap(),
                    ),
                }
            })
            .collect();
        let (results, events) = run_nodes(nodes, &[], &mut |_, a: Action<C>| vec![a]);
        assert!(results.iter().all(|r| matches!(r, RunResult::Ok(_))));
        Transcript {
            ceremony,
            keys,
            events,
        }
    })
}

/// One step of a case.
#[derive(Debug, Clone)]
enum Step {
    /// The next event of the honest transcript.
    Replay,
    /// Random bytes as a signed post.
    Random(Vec<u8>),
    /// A transcript post with mutated bytes, signature and all.
    Mutated(usize, Vec<fuzzing::Mutation>),
    /// A transcript post with its post bytes mutated, signed again by the author it names.
    Resigned(usize, Vec<fuzzing::Mutation>),
    /// An early phase deadline.
    Advance,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        6 => Just(Step::Replay),
        1 => proptest::collection::vec(any::<u8>(), 0..400).prop_map(Step::Random),
        2 => (any::<usize>(), proptest::collection::vec(fuzzing::mutation(), 1..4))
            .prop_map(|(i, m)| Step::Mutated(i, m)),
        4 => (any::<usize>(), proptest::collection::vec(fuzzing::mutation(), 1..4))
            .prop_map(|(i, m)| Step::Resigned(i, m)),
        1 => Just(Step::Advance),
    ];
    proptest::collection::vec(step, 1..40)
}

/// The bytes of a step's post, if it is one: `None` for replay and advance.
fn step_bytes(
    step: &Step,
    posts: &[Vec<u8>],
    resign: impl Fn(&[u8]) -> Option<Vec<u8>>,
) -> Option<Vec<u8>> {
    match step {
        Step::Random(b) => Some(b.clone()),
        Step::Mutated(i, m) => Some(fuzzing::mutate(&posts[i % posts.len()], m)),
        Step::Resigned(i, m) => {
            let signed = &posts[i % posts.len()];
            let body = fuzzing::mutate(&signed[SIGNATURE_LEN..], m);
            Some(resign(&body).unwrap_or(body))
        }
        Step::Replay | Step::Advance => None,
    }
}

fn ackreveal_case(steps: &[Step]) -> Result<(), TestCaseError> {
    let t = transcript(Variant::AckReveal);
    let posts = t.posts();
    let mut board = Board::new(t.ceremony.clone());
    let resign = |body: &[u8]| {
        let post = Post::<C>::decode(body, N).ok()?;
        let key = t.keys.get(post.dealer() as usize)?;
        let signature = key.sign(Purpose::Post, &post.signed_payload());
        Some(SignedPost { post, signature }.encode())
    };
    let mut replay = t.events.iter();
    let apply = |board: &mut Board<C>, bytes: &[u8]| -> Result<(), TestCaseError> {
        let Ok(signed) = SignedPost::<C>::decode(bytes, N) else {
            return Ok(());
        };
        let before = board.clone();
        match board.apply(&signed) {
            Ok(()) => {}
            Err(BoardError::Fault { dealer, .. }) => {
                prop_assert_eq!(dealer, signed.post.dealer());
                prop_assert!(board.faults().any(|(d, _)| d == dealer));
                prop_assert!(!board.is_active_dealer(dealer));
            }
            Err(e) => prop_assert!(*board == before, "refusal {e:?} changed the board"),
        }
        Ok(())
    };
    for step in steps {
        match step {
            Step::Replay => match replay.next() {
                Some(BoardEvent::Post(p)) => apply(&mut board, p)?,
                Some(BoardEvent::Deadline) => board.advance(),
                None => board.advance(),
            },
            Step::Advance => board.advance(),
            other => {
                let bytes = step_bytes(other, &posts, resign).unwrap();
                apply(&mut board, &bytes)?;
            }
        }
    }
    for event in replay {
        match event {
            BoardEvent::Post(p) => apply(&mut board, p)?,
            BoardEvent::Deadline => board.advance(),
        }
    }
    // Every attempt ends at a deadline; a few more reach the end of the retries.
    for _ in 0..12 {
        board.advance();
    }
    prop_assert!(board.outcome().is_some());
    Ok(())
}

fn complaint_case(steps: &[Step]) -> Result<(), TestCaseError> {
    let t = transcript(Variant::Complaint);
    let posts = t.posts();
    let mut board = ComplaintBoard::new(t.ceremony.clone());
    let resign = |body: &[u8]| {
        let post = ComplaintPost::<C>::decode(body, N, N).ok()?;
        // A fresh key: dealers and players are the same members.
        let key = t.keys.get(post.author().1 as usize)?;
        Some(SignedComplaintPost::sign(key, post).encode())
    };
    let mut replay = t.events.iter();
    let apply = |board: &mut ComplaintBoard<C>, bytes: &[u8]| -> Result<(), TestCaseError> {
        let Ok(signed) = SignedComplaintPost::<C>::decode(bytes, N, N) else {
            return Ok(());
        };
        let before = board.clone();
        match board.apply(&signed) {
            Ok(()) => {}
            Err(ComplaintBoardError::Fault { role, index, .. }) => {
                prop_assert_eq!((role, index), signed.post.author());
                if role == Role::Dealer {
                    prop_assert!(
                        board.is_disqualified(index) || board.failed().any(|(d, _)| d == index)
                    );
                }
            }
            Err(e) => prop_assert!(*board == before, "refusal {e:?} changed the board"),
        }
        Ok(())
    };
    for step in steps {
        match step {
            Step::Replay => match replay.next() {
                Some(BoardEvent::Post(p)) => apply(&mut board, p)?,
                Some(BoardEvent::Deadline) | None => board.advance(),
            },
            Step::Advance => board.advance(),
            other => {
                let bytes = step_bytes(other, &posts, resign).unwrap();
                apply(&mut board, &bytes)?;
            }
        }
    }
    for event in replay {
        match event {
            BoardEvent::Post(p) => apply(&mut board, p)?,
            BoardEvent::Deadline => board.advance(),
        }
    }
    for _ in 0..8 {
        board.advance();
    }
    prop_assert!(board.outcome().is_some());
    Ok(())
}

proptest! {
    #![proptest_config(fuzzing::config(256))]

    #[test]
    fn ackreveal_board_apply(steps in steps()) {
        ackreveal_case(&steps)?;
    }

    #[test]
    fn complaint_board_apply(steps in steps()) {
        complaint_case(&steps)?;
    }
}

/// The honest transcripts succeed on a fresh board (the harness starts from real posts).
#[test]
fn transcripts_replay_to_success() {
    for variant in [Variant::AckReveal, Variant::Complaint] {
        let t = transcript(variant);
        assert!(t.posts().len() >= N, "{variant:?}: too few posts");
    }
    ackreveal_case(&[]).unwrap();
    complaint_case(&[]).unwrap();
    let t = transcript(Variant::AckReveal);
    let mut board = Board::new(t.ceremony.clone());
    for e in &t.events {
        match e {
            BoardEvent::Post(p) => board.apply(&SignedPost::decode(p, N).unwrap()).unwrap(),
            BoardEvent::Deadline => board.advance(),
        }
    }
    board.advance();
    assert!(matches!(
        board.outcome(),
        Some(keyquorum_dkg::board::Outcome::Success { .. })
    ));
}
