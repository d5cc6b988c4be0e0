//! What the coordinator contract computes to judge each fallback item of the complaint variant
//! (seed 003 steps 3.3, 4.1, 4.2 and 7), timed through the board the contract runs
//! (`keyquorum_dkg::complaint::board::ComplaintBoard`): its `apply` of the post that carries the
//! item and, for the items it decides at a phase deadline, its `advance`. Nothing is
//! re-implemented here; the posts are built with the message types and signed by the members.
//!
//! Committee of `n` members, each a dealer and a player, `t` and `k` the contract's defaults
//! (66 % and 75 % of `n`, rounded up), dealer 0 the faulty one, player 1 the one it wronged:
//!
//! - `complaint`: player 1's report (a signed hash for each of the `n` dealers) with one
//!   verifiable complaint about dealer 0's pair. The board checks the post's signature, the
//!   dealer's signature on the ciphertext, the carried Pedersen commitment against the signed
//!   hash and its degree (the board has not seen the commitment before: deals are off chain),
//!   the ciphertext's proof of knowledge, the reveal's Chaum-Pedersen proof, decrypts and checks
//!   the pair against the commitment. The other reports' hashes were checked before.
//! - `justification`: dealer 0 answers one missed deal on chain with its Pedersen commitment and
//!   the pair encrypted again: post signature, commitment hash and degree, the ciphertext's proof.
//! - `dispute`: player 1 proves the pair sent again bad with a reveal: post signature, the
//!   ciphertext's proof, the reveal's proof, decryption and the Pedersen check (the commitment's
//!   degree was checked with the justification and is remembered, as in the contract).
//! - `bad_feldman`: in the complain phase, player 1 discloses its pair, which opens dealer 0's
//!   Pedersen commitment (carried in the post) but not its Feldman commitment; timed with the
//!   phase's deadline, where the board checks the commitment's hash and degree and both
//!   openings. No other dealer posted Feldman values, so the deadline sums no commitment.
//! - `reconstruction`: dealer 0 posted no Feldman values and is reconstructed: `t` players'
//!   reconstruction posts (the designated ones carry the commitment) and the deadline, where
//!   the board checks the `t` posts' signatures in one batch (deferred from their arrival),
//!   checks `t` pairs against the Pedersen commitment, interpolates, and finishes the outcome
//!   (the reconstructed values times the generator added to the sums of the others' Feldman
//!   commitments, which the previous deadline computed). The identity keys' Miller-loop lines,
//!   which the ceremony computes at its first batch check and keeps, are computed by the
//!   warm-up and not timed here but by `reconstruction_key_lines`: a fresh ceremony's batch
//!   check of one post, what the contract pays once per ceremony on top.
//!
//! Every remembered check result is forgotten before each timed run (`Ceremony::forget_checks`),
//! except for `dispute`, whose posts carry a fresh reveal each time: each item is timed as
//! the first sight of its inputs. One thread (the contract runs on one). `KQ_BENCH_NS`
//! (comma-separated) selects the committee sizes, default `16,64,256`; both curves run:
//! secp256k1 (the view's signing key, seed 003) and BLS12-381 G1 (view ceremonies).

use std::sync::Arc;

use criterion::{BatchSize, BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use ff::Field;
use keyquorum_crypto::commit::EvalCommitment;
use keyquorum_crypto::index::IndexScheme;
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::verifiable_encrypt::{self, VerifiableCiphertext};
use keyquorum_crypto::{Bls12381G1, Curve, Secp256k1};
use keyquorum_dkg::board::{FaultKind, Outcome};
use keyquorum_dkg::complaint::board::{ComplaintBoard, ComplaintBoardPhase};
use keyquorum_dkg::complaint::messages::{
    CommitmentStatement, ComplaintPost, DealComplaint, Disclosure, Dispute, FeldmanPost,
    HeardEntry, Justification, PAIR_LEN, Report, SignedComplaintPost, SignedPedersen, pair_aad,
    seal_deal,
};
use keyquorum_dkg::complaint::{PostToCheck, post_signatures};
use keyquorum_dkg::testing::ceremony::{MemberKeys, complaint_variant, fresh_config, member};
use keyquorum_dkg::{Ceremony, Params};
use rand_chacha_03::ChaCha20Rng;
use rand_core_06::SeedableRng;

const DEALER: u32 = 0;
const PLAYER: u32 = 1;

fn sizes() -> Vec<usize> {
    std::env::var("KQ_BENCH_NS")
        .unwrap_or_else(|_| "16,64,256".to_string())
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("KQ_BENCH_NS: bad size {s:?}"))
        })
        .collect()
}

/// A committee, its ceremony, and dealer 0's polynomials and signed Pedersen commitment.
struct Scenario<C: Curve> {
    members: Vec<MemberKeys>,
    ceremony: Arc<Ceremony<C>>,
    f: Polynomial<C::Scalar>,
    blind: Polynomial<C::Scalar>,
    signed: SignedPedersen<C>,
    /// Every dealer's signed commitment hash, as players report them (only dealer 0's hash is
    /// of a real commitment: no other dealer's commitment reaches the board).
    heard: Vec<HeardEntry>,
    rng: ChaCha20Rng,
}

impl<C: Curve> Scenario<C> {
    fn new(n: usize, index_scheme: IndexScheme) -> Self {
        let members: Vec<MemberKeys> = (0..n as u32).map(member).collect();
        let params = Params::from_percent(n, 66, 75).expect("default parameters");
        let mut config = complaint_variant(fresh_config::<C>(&members, params), &members);
        config.index_scheme = index_scheme;
        let ceremony = Ceremony::new(config).expect("ceremony");
        let session = *ceremony.id();
        let mut rng = ChaCha20Rng::seed_from_u64(n as u64);
        let t = ceremony.t();
        let f = Polynomial::random(t - 1, None, &mut rng);
        let blind = Polynomial::random(t - 1, None, &mut rng);
        let commitment = EvalCommitment::pedersen(&f, &blind, ceremony.player_indices());
        let signed = SignedPedersen::new(&members[0].identity, &session, DEALER, commitment);
        let heard = (0..n as u32)
            .map(|dealer| {
                let hash = if dealer == DEALER {
                    signed.hash
                } else {
                    [dealer as u8 ^ 0x5a; 32]
                };
                let s = CommitmentStatement::sign(
                    &members[dealer as usize].identity,
                    session,
                    dealer,
                    hash,
                );
                HeardEntry {
                    dealer,
                    hash,
                    signature: s.signature,
                }
            })
            .collect();
        Scenario {
            members,
            ceremony,
            f,
            blind,
            signed,
            heard,
            rng,
        }
    }

    fn n(&self) -> usize {
        self.ceremony.n()
    }

    fn pair(&self, player: u32) -> (C::Scalar, C::Scalar) {
        let x = &self.ceremony.player_indices()[player as usize];
        (self.f.evaluate(x), self.blind.evaluate(x))
    }

    fn sign(&self, author: u32, post: ComplaintPost<C>) -> SignedComplaintPost<C> {
        SignedComplaintPost::sign(&self.members[author as usize].identity, post)
    }

    /// Dealer 0's signed deal to player 1 with a share that does not open the commitment.
    fn bad_deal(&mut self) -> (Vec<u8>, keyquorum_dkg::identity::IdentitySignature) {
        let (s, b) = self.pair(PLAYER);
        let key = *self.ceremony.verifiable_key(PLAYER).expect("key");
        let deal = seal_deal(
            &self.members[DEALER as usize].identity,
            self.ceremony.id(),
            &self.signed,
            (PLAYER, &key),
            &(s + C::Scalar::ONE),
            &b,
            &mut self.rng,
        );
        (deal.ciphertext, deal.signature)
    }

    /// Player 1's proven reveal of the key of `ciphertext`, dealer 0's pair for it.
    fn reveal(&mut self, ciphertext: &[u8]) -> verifiable_encrypt::KeyReveal {
        let aad = pair_aad(self.ceremony.id(), DEALER, PLAYER, &self.signed.hash);
        let ct = VerifiableCiphertext::from_bytes(ciphertext, PAIR_LEN).expect("ciphertext");
        verifiable_encrypt::reveal_key(
            &self.members[PLAYER as usize].verifiable,
            &aad,
            &ct,
            &mut self.rng,
        )
        .expect("reveal")
    }

    /// `player`'s report: every dealer heard, all valid except `except`.
    fn report(
        &self,
        player: u32,
        except: Option<u32>,
        complaints: Vec<DealComplaint<C>>,
    ) -> SignedComplaintPost<C> {
        let heard = self
            .heard
            .iter()
            .filter(|e| complaints.iter().any(|c| c.dealer == e.dealer) || Some(e.dealer) != except)
            .cloned()
            .collect();
        let valid = (0..self.n() as u32)
            .filter(|d| Some(*d) != except)
            .collect();
        self.sign(
            player,
            ComplaintPost::Report(Report {
                session: *self.ceremony.id(),
                player,
                heard,
                valid,
                complaints,
                conflicting: None,
            }),
        )
    }

    /// A board past the report phase in which every player validated every dealer (qualified:
    /// everyone), in the Feldman phase.
    fn board_in_feldman_phase(&self) -> ComplaintBoard<C> {
        let mut board = ComplaintBoard::new(self.ceremony.clone());
        board.advance();
        for p in 0..self.n() as u32 {
            board
                .apply(&self.report(p, None, Vec::new()))
                .expect("report");
        }
        board.advance();
        assert_eq!(board.phase(), ComplaintBoardPhase::Feldman);
        board
    }

    fn disclosure(&self, player: u32, carry: bool) -> Disclosure<C> {
        let (s, b) = self.pair(player);
        Disclosure {
            session: *self.ceremony.id(),
            player,
            shares: vec![(DEALER, s, b)],
            commitments: if carry {
                vec![(DEALER, self.signed.commitment.clone())]
            } else {
                Vec::new()
            },
        }
    }

    fn feldman(&self, dealer: u32, commitment: EvalCommitment<C>) -> SignedComplaintPost<C> {
        self.sign(
            dealer,
            ComplaintPost::Feldman(FeldmanPost {
                session: *self.ceremony.id(),
                dealer,
                commitment,
            }),
        )
    }

    /// A Feldman commitment to a polynomial of the right degree that is not dealer 0's.
    fn other_feldman(&mut self) -> EvalCommitment<C> {
        let g = Polynomial::random(self.ceremony.t() - 1, None, &mut self.rng);
        EvalCommitment::feldman(&g, self.ceremony.player_indices())
    }
}

/// Times `run` on a clone of `board` with the ceremony's remembered checks forgotten.
fn time_cold<C: Curve, T>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: BenchmarkId,
    board: &ComplaintBoard<C>,
    run: impl Fn(&mut ComplaintBoard<C>) -> T,
) {
    g.bench_function(id, |b| {
        b.iter_batched(
            || {
                let copy = board.clone();
                copy.ceremony().forget_checks();
                copy
            },
            |mut copy| {
                let out = run(&mut copy);
                (copy, out)
            },
            BatchSize::PerIteration,
        )
    });
}

fn bench_curve<C: Curve>(c: &mut Criterion, curve: &str, index_scheme: IndexScheme) {
    let mut g = c.benchmark_group(format!("fallback/{curve}"));
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    for n in sizes() {
        let mut s = Scenario::<C>::new(n, index_scheme);
        let t = s.ceremony.t();
        let label = format!("n={n},t={t}");

        // A report with a verifiable complaint about a bad pair.
        let (ciphertext, signature) = s.bad_deal();
        let reveal = s.reveal(&ciphertext);
        let complaint = DealComplaint {
            dealer: DEALER,
            commitment: s.signed.commitment.clone(),
            ciphertext: ciphertext.clone(),
            signature,
            reveal: Some(reveal),
        };
        let report = s.report(PLAYER, Some(DEALER), vec![complaint]);
        let mut in_report = ComplaintBoard::new(s.ceremony.clone());
        in_report.advance();
        in_report
            .apply(&s.report(2, None, Vec::new()))
            .expect("report");
        {
            let mut check = in_report.clone();
            check
                .apply(&report)
                .expect("the complaint convicts the dealer");
            assert!(check.is_disqualified(DEALER));
        }
        time_cold(
            &mut g,
            BenchmarkId::new("complaint", &label),
            &in_report,
            |b| b.apply(&report),
        );

        // A justification answering one missed deal, with a pair that is bad.
        let mut in_justify = ComplaintBoard::new(s.ceremony.clone());
        in_justify.advance();
        in_justify
            .apply(&s.report(PLAYER, Some(DEALER), Vec::new()))
            .expect("report");
        in_justify.advance();
        assert_eq!(in_justify.phase(), ComplaintBoardPhase::Justify);
        assert_eq!(in_justify.missed_deals(DEALER), [PLAYER]);
        let justification = s.sign(
            DEALER,
            ComplaintPost::Justification(Justification {
                session: *s.ceremony.id(),
                dealer: DEALER,
                commitment: s.signed.commitment.clone(),
                deals: vec![(PLAYER, ciphertext.clone())],
            }),
        );
        time_cold(
            &mut g,
            BenchmarkId::new("justification", &label),
            &in_justify,
            |b| b.apply(&justification).expect("justification"),
        );

        // A dispute proving the pair sent again bad.
        let mut in_dispute = in_justify.clone();
        in_dispute.apply(&justification).expect("justification");
        in_dispute.advance();
        assert_eq!(in_dispute.phase(), ComplaintBoardPhase::Dispute);
        g.bench_function(BenchmarkId::new("dispute", &label), |b| {
            b.iter_batched(
                || {
                    let reveal = s.reveal(&ciphertext);
                    let dispute = s.sign(
                        PLAYER,
                        ComplaintPost::Dispute(Dispute {
                            session: *s.ceremony.id(),
                            player: PLAYER,
                            reveals: vec![(DEALER, reveal)],
                        }),
                    );
                    (in_dispute.clone(), dispute)
                },
                |(mut board, dispute)| {
                    board.apply(&dispute).expect("dispute");
                    assert!(board.is_disqualified(DEALER));
                    board
                },
                BatchSize::PerIteration,
            )
        });

        // Feldman values that contradict the Pedersen commitment, proven by player 1's pair.
        let in_feldman = s.board_in_feldman_phase();
        let mut in_complain = in_feldman.clone();
        let wrong = s.other_feldman();
        in_complain
            .apply(&s.feldman(DEALER, wrong.clone()))
            .expect("feldman");
        in_complain.advance();
        assert_eq!(in_complain.phase(), ComplaintBoardPhase::Complain);
        let feldman_complaint =
            s.sign(PLAYER, ComplaintPost::Complaint(s.disclosure(PLAYER, true)));
        time_cold(
            &mut g,
            BenchmarkId::new("bad_feldman", &label),
            &in_complain,
            |b| {
                b.apply(&feldman_complaint).expect("complaint");
                b.advance();
                assert!(
                    b.failed()
                        .any(|(d, f)| d == DEALER && matches!(f, FaultKind::BadFeldman { .. }))
                );
            },
        );

        // Reconstruction of dealer 0, which posted no Feldman values, from `t` players' pairs.
        let mut in_reconstruct = in_feldman;
        for d in 1..n as u32 {
            in_reconstruct
                .apply(&s.feldman(d, wrong.clone()))
                .expect("feldman");
        }
        in_reconstruct.advance();
        in_reconstruct.advance();
        assert_eq!(in_reconstruct.phase(), ComplaintBoardPhase::Reconstruct);
        let pairs: Vec<SignedComplaintPost<C>> = (1..=t as u32)
            .map(|p| {
                let carry = in_reconstruct.is_designated_discloser(p);
                s.sign(p, ComplaintPost::Reconstruction(s.disclosure(p, carry)))
            })
            .collect();
        time_cold(
            &mut g,
            BenchmarkId::new("reconstruction", &label),
            &in_reconstruct,
            |b| {
                for p in &pairs {
                    b.apply(p).expect("reconstruction pair");
                }
                b.advance();
                assert!(matches!(b.outcome(), Some(Outcome::Success { .. })));
                assert!(b.reconstructed(DEALER).is_some());
            },
        );

        // What the first batch check of a ceremony adds: the identity keys' Miller-loop lines,
        // which the ceremony keeps (so the row above does not time them), with one post.
        let first = &pairs[0];
        let encoded = first.post.encode();
        let check = [PostToCheck {
            author: first.post.author(),
            encoded: &encoded,
            signature: &first.signature,
        }];
        let config = s.ceremony.config().clone();
        g.bench_function(BenchmarkId::new("reconstruction_key_lines", &label), |b| {
            b.iter_batched(
                || Ceremony::new(config.clone()).expect("ceremony"),
                |fresh| {
                    post_signatures(&fresh, &check).expect("signature");
                    fresh
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn fallback(c: &mut Criterion) {
    // The contract runs on one thread; the board's multi-scalar multiplications would use the
    // rayon pool.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global();
    bench_curve::<Secp256k1>(c, "secp256k1", IndexScheme::PublicKeyHash);
    bench_curve::<Bls12381G1>(c, "bls12-381", IndexScheme::Sequential);
}

criterion_group!(benches, fallback);
criterion_main!(benches);
