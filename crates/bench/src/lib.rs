//! Per-participant cost of one DKG ceremony in two peer implementations.
//!
//! Each module offers a `setup(n, t, seed)` that plays every *other* participant's part of an
//! honest ceremony ahead of time, and a `run_one_participant(&setup)` that performs only what a
//! single participant has to do once those messages arrive. Benchmarks time the latter.
//!
//! Neither module models transport: no encryption or authentication of the point-to-point
//! channels, no (de)serialization and no broadcast/consensus layer is included in the timings.

use std::{num::NonZeroUsize, thread};

/// Maps `f` over `items` on all available cores (setup-only helper; never used while timing).
fn par_map<I, O, F>(items: Vec<I>, f: F) -> Vec<O>
where
    I: Send,
    O: Send,
    F: Fn(I) -> O + Sync,
{
    let workers = thread::available_parallelism()
        .map(NonZeroUsize::get)
        .unwrap_or(1)
        .min(items.len().max(1));
    let chunk = items.len().div_ceil(workers).max(1);
    let mut chunks: Vec<Vec<I>> = Vec::with_capacity(workers);
    let mut iter = items.into_iter().peekable();
    while iter.peek().is_some() {
        chunks.push(iter.by_ref().take(chunk).collect());
    }
    let f = &f;
    thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|part| scope.spawn(move || part.into_iter().map(f).collect::<Vec<O>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("setup worker panicked"))
            .collect()
    })
}

/// The threshold used throughout: `floor(2n/3) + 1`.
pub fn default_threshold(n: usize) -> usize {
    2 * n / 3 + 1
}

/// commonware-cryptography's Joint-Feldman DKG (`bls12381::dkg::feldman_desmedt`), MinPk variant
/// (G1 commitments / public keys), with ed25519 identity keys for acks and dealer-log signatures.
pub mod commonware_dkg {
    use super::par_map;
    use commonware_codec::{DecodeExt, Encode, Mode as CodecMode, Modes};
    use commonware_cryptography::{
        Signer,
        bls12381::{
            dkg::feldman_desmedt::{
                Dealer, DealerPrivMsg, DealerPubMsg, Info, Logs, Output, Player, PlayerAck, Reveal,
                SignedDealerLog, observe,
            },
            primitives::{group::Share, sharing::Mode, variant::MinPk},
        },
        ed25519::{PrivateKey, PublicKey},
        transcript::{Summary, Transcript, Version},
    };
    use commonware_math::algebra::Random;
    use commonware_parallel::Sequential;
    use commonware_utils::{Faults, N3f1, TryCollect, ordered::Set};
    use rand_chacha_010::ChaCha20Rng;
    use rand_core_010::{Rng, SeedableRng};

    const NAMESPACE: &[u8] = b"keyquorum-peer-bench";

    /// Produces the ack a player sends for a dealer's public commitment, i.e. the ed25519
    /// signature over the round's ack transcript, exactly as `Player::dealer_message` does after
    /// its share check passes. Only used to stand in for the *other* players during setup.
    pub(crate) struct AckSigner {
        round: Summary,
    }

    impl AckSigner {
        /// Mirrors the round summary that `Info::new` computes for an initial DKG (no previous
        /// output) with `Mode::NonZeroCounter` and `Reveal::V1`.
        pub(crate) fn new(
            info: &Info<MinPk, PublicKey>,
            namespace: &[u8],
            pks: &[PublicKey],
        ) -> Self {
            let set: Set<PublicKey> = pks.iter().cloned().try_collect().expect("distinct keys");
            let mut transcript =
                Transcript::new(b"_COMMONWARE_CRYPTOGRAPHY_BLS12381_DKG", Version::V0);
            transcript
                .commit(namespace)
                .commit(info.round().encode())
                .commit(None::<Output<MinPk, PublicKey>>.encode())
                .commit(set.encode())
                .commit(set.encode());
            if let Some(modes) = Modes::new([
                CodecMode::from(Mode::NonZeroCounter),
                CodecMode::from(Reveal::V1),
            ]) {
                transcript.commit(modes.encode());
            }
            Self {
                round: transcript.summarize(),
            }
        }

        /// `pub_msg` is the dealer's encoded `DealerPubMsg` (encode once per dealer: compressing
        /// t G1 points is the expensive part).
        pub(crate) fn sign(
            &self,
            player: &PrivateKey,
            dealer: &PublicKey,
            pub_msg: &[u8],
        ) -> PlayerAck<PublicKey> {
            let mut transcript = Transcript::resume(self.round, Version::V0).fork(b"ack");
            transcript.commit(dealer.encode()).commit(pub_msg);
            PlayerAck::decode(transcript.sign(player).encode()).expect("64-byte signature")
        }
    }

    /// Everything the measured participant receives from the others, computed up front.
    pub struct Setup {
        pub n: usize,
        pub t: usize,
        info: Info<MinPk, PublicKey>,
        me: PrivateKey,
        /// Seed of the participant's own dealing (the other players' acks were made over it).
        dealer_seed: u64,
        /// Seed for the randomness `Player::finalize` uses (batch-verification coefficients).
        finalize_seed: u64,
        /// `(dealer, public commitment, private share for me)` from each other dealer.
        inbound: Vec<(PublicKey, DealerPubMsg<MinPk>, DealerPrivMsg)>,
        /// Acks that the other players return for my dealing.
        acks_for_me: Vec<(PublicKey, PlayerAck<PublicKey>)>,
        /// Signed logs published by the other dealers.
        other_logs: Vec<SignedDealerLog<MinPk, PublicKey>>,
        /// The public output of the whole ceremony, as computed by an observer.
        pub expected: Output<MinPk, PublicKey>,
    }

    /// What one participant ends up with (plus the acks it sends out, so nothing is elided).
    pub struct ParticipantResult {
        pub output: Output<MinPk, PublicKey>,
        pub share: Share,
        pub acks_sent: Vec<(PublicKey, PlayerAck<PublicKey>)>,
    }

    /// Plays an honest ceremony for `n` participants (all dealers and players) and keeps what
    /// the first participant needs. The other players' acks are signed directly rather than
    /// re-running their share checks (see `AckSigner`). The quorum is fixed by commonware's
    /// `N3f1` fault model (`n - floor((n-1)/3)`), which equals `floor(2n/3) + 1`; `t` must
    /// match it.
    pub fn setup(n: usize, t: usize, seed: u64) -> Setup {
        assert!(n >= 2, "need at least two participants");
        let quorum = N3f1::quorum(n) as usize;
        assert_eq!(
            t, quorum,
            "commonware's N3f1 fault model fixes the threshold at {quorum} for n = {n}"
        );
        let mut rng = ChaCha20Rng::seed_from_u64(seed);

        let me = PrivateKey::random(&mut rng);
        let mut keys: Vec<PrivateKey> = vec![me.clone()];
        keys.extend((1..n).map(|_| PrivateKey::random(&mut rng)));
        // Order keys like the round's participant set so that index i == set position i.
        keys.sort_by_key(|k| k.public_key());
        let pks: Vec<PublicKey> = keys.iter().map(|k| k.public_key()).collect();
        let me_pk = me.public_key();
        let me_idx = pks
            .iter()
            .position(|pk| pk == &me_pk)
            .expect("me is present");
        let set: Set<PublicKey> = pks.iter().cloned().try_collect().expect("distinct keys");
        let info = Info::<MinPk, PublicKey>::new::<N3f1>(
            NAMESPACE,
            0,
            None,
            Mode::NonZeroCounter,
            Reveal::V1,
            set.clone(),
            set,
        )
        .expect("valid round info");

        // Round 1: every dealer deals.
        let dealer_seeds: Vec<u64> = (0..n).map(|_| rng.next_u64()).collect();
        let finalize_seed = rng.next_u64();
        let dealt = {
            let info = &info;
            par_map(
                keys.iter().cloned().zip(dealer_seeds.clone()).collect(),
                |(key, ds)| {
                    Dealer::<MinPk, PrivateKey>::start::<N3f1>(
                        ChaCha20Rng::seed_from_u64(ds),
                        info.clone(),
                        key,
                        None,
                    )
                    .expect("dealer belongs to round")
                },
            )
        };
        let mut dealers = Vec::with_capacity(n);
        let mut pub_msgs = Vec::with_capacity(n);
        let mut priv_msgs = Vec::with_capacity(n);
        for (dealer, pub_msg, privs) in dealt {
            for (j, (pk, _)) in privs.iter().enumerate() {
                assert_eq!(pk, &pks[j], "private messages follow the player order");
            }
            dealers.push(dealer);
            pub_msgs.push(pub_msg);
            priv_msgs.push(privs.into_iter().map(|(_, m)| m).collect::<Vec<_>>());
        }

        // Acks: acks[j][k] = player j's ack for dealer k. The other players' share checks are
        // their own work, so they are not re-run here; their (deterministic ed25519) acks are
        // signed directly, and every one of them is verified by `Dealer::receive_player_ack`
        // below, so a mismatch with the library's ack format fails setup loudly.
        let ack_signer = AckSigner::new(&info, NAMESPACE, &pks);
        let encoded_pub_msgs: Vec<_> = pub_msgs.iter().map(|m| m.encode()).collect();
        let acks: Vec<Vec<PlayerAck<PublicKey>>> = {
            let (ack_signer, pks, encoded) = (&ack_signer, &pks, &encoded_pub_msgs);
            par_map(keys.clone(), |key| {
                (0..n)
                    .map(|k| ack_signer.sign(&key, &pks[k], &encoded[k]))
                    .collect()
            })
        };
        let acks_for_me: Vec<(PublicKey, PlayerAck<PublicKey>)> = (0..n)
            .filter(|&j| j != me_idx)
            .map(|j| (pks[j].clone(), acks[j][me_idx].clone()))
            .collect();
        let inbound: Vec<_> = (0..n)
            .filter(|&k| k != me_idx)
            .map(|k| {
                (
                    pks[k].clone(),
                    pub_msgs[k].clone(),
                    priv_msgs[k][me_idx].clone(),
                )
            })
            .collect();

        // Every dealer collects its acks and publishes a signed log.
        let signed_logs: Vec<SignedDealerLog<MinPk, PublicKey>> = {
            let (pks, acks) = (&pks, &acks);
            par_map(
                dealers.into_iter().enumerate().collect(),
                |(k, mut dealer)| {
                    for (j, pk) in pks.iter().enumerate() {
                        dealer
                            .receive_player_ack(pk.clone(), acks[j][k].clone())
                            .expect("honest ack verifies");
                    }
                    dealer.finalize::<N3f1>()
                },
            )
        };

        // The agreed public output, as any observer would compute it from all logs.
        let mut logs = Logs::<MinPk, PublicKey, N3f1>::new(info.clone());
        for signed in signed_logs.iter().cloned() {
            let (dealer, log) = signed.check(&info).expect("dealer log signature");
            logs.record(dealer, log);
        }
        let expected = observe::<MinPk, PublicKey, N3f1>(&mut rng, logs, &Sequential)
            .expect("honest ceremony succeeds");

        let other_logs = signed_logs
            .into_iter()
            .enumerate()
            .filter(|(k, _)| *k != me_idx)
            .map(|(_, l)| l)
            .collect();

        Setup {
            n,
            t,
            info,
            me,
            dealer_seed: dealer_seeds[me_idx],
            finalize_seed,
            inbound,
            acks_for_me,
            other_logs,
            expected,
        }
    }

    /// Everything one participant does in the ceremony:
    /// 1. `Dealer::start`: sample its polynomial, commit to it (G1) and evaluate n shares;
    /// 2. `Player::dealer_message` for each of the n dealings (its own included): check the
    ///    received share against the dealer's commitment (one G1 MSM of size t each) and sign an
    ///    ed25519 ack;
    /// 3. as a dealer, `receive_player_ack` for the n acks (ed25519 verifications) and
    ///    `Dealer::finalize` (sign its log);
    /// 4. `SignedDealerLog::check` on all n published logs, then `Player::finalize`, which
    ///    verifies the acks inside the quorum of selected logs (batched ed25519), sums the
    ///    selected commitments into the public polynomial and sums its own share.
    pub fn run_one_participant(setup: &Setup) -> ParticipantResult {
        run_one_participant_with(setup, &Sequential)
    }

    /// [`run_one_participant`] with `strategy` for the steps commonware parallelizes (the
    /// player's `finalize`: checking the dealer logs and summing the commitments); the dealer
    /// and the per-dealer share checks run on the calling thread as the library does them.
    pub fn run_one_participant_with(
        setup: &Setup,
        strategy: &impl commonware_parallel::Strategy,
    ) -> ParticipantResult {
        let me_pk = setup.me.public_key();

        let (mut dealer, my_pub, my_privs) = Dealer::<MinPk, PrivateKey>::start::<N3f1>(
            ChaCha20Rng::seed_from_u64(setup.dealer_seed),
            setup.info.clone(),
            setup.me.clone(),
            None,
        )
        .expect("dealer belongs to round");
        let my_priv = my_privs
            .into_iter()
            .find_map(|(pk, m)| (pk == me_pk).then_some(m))
            .expect("dealing to self");

        let mut player = Player::<MinPk, PrivateKey>::new(setup.info.clone(), setup.me.clone())
            .expect("player in round");
        let mut acks_sent = Vec::with_capacity(setup.n - 1);
        for (dealer_pk, pub_msg, priv_msg) in &setup.inbound {
            let ack = player
                .dealer_message::<N3f1>(dealer_pk.clone(), pub_msg.clone(), priv_msg.clone())
                .expect("dealing verifies")
                .expect("first message from this dealer");
            acks_sent.push((dealer_pk.clone(), ack));
        }
        let self_ack = player
            .dealer_message::<N3f1>(me_pk.clone(), my_pub, my_priv)
            .expect("own dealing verifies")
            .expect("first message from self");

        dealer
            .receive_player_ack(me_pk, self_ack)
            .expect("own ack verifies");
        for (pk, ack) in &setup.acks_for_me {
            dealer
                .receive_player_ack(pk.clone(), ack.clone())
                .expect("ack verifies");
        }
        let my_log = dealer.finalize::<N3f1>();

        let mut logs = Logs::<MinPk, PublicKey, N3f1>::new(setup.info.clone());
        for signed in setup
            .other_logs
            .iter()
            .cloned()
            .chain(std::iter::once(my_log))
        {
            let (dealer_pk, log) = signed.check(&setup.info).expect("dealer log signature");
            logs.record(dealer_pk, log);
        }
        let mut rng = ChaCha20Rng::seed_from_u64(setup.finalize_seed);
        let (output, share) = player
            .finalize::<N3f1>(&mut rng, logs, strategy)
            .expect("ceremony succeeds");
        ParticipantResult {
            output,
            share,
            acks_sent,
        }
    }

    /// Test helper: give the participant dealer 0's commitment with dealer 1's share.
    #[cfg(test)]
    pub(crate) fn corrupt_first_share(setup: &mut Setup) {
        setup.inbound[0].2 = setup.inbound[1].2.clone();
    }

    /// Checks a participant's result against the ceremony (not part of the timed work).
    pub fn check(setup: &Setup, result: &ParticipantResult) {
        assert!(
            result.output == setup.expected,
            "participant output differs from observer output"
        );
        let from_poly = result
            .output
            .public()
            .partial_public(result.share.index)
            .expect("index in range");
        assert!(
            result.share.public::<MinPk>() == from_poly,
            "share does not match the public polynomial"
        );
        assert_eq!(result.acks_sent.len(), setup.n - 1);
        assert_eq!(result.output.quorum::<N3f1>() as usize, setup.t);
        assert_eq!(result.output.dealers().len(), setup.t);
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// The setup's directly-signed acks must be byte-identical to what real players send.
        #[test]
        fn ack_signer_matches_player() {
            let mut rng = ChaCha20Rng::seed_from_u64(5);
            let mut keys: Vec<PrivateKey> = (0..7).map(|_| PrivateKey::random(&mut rng)).collect();
            keys.sort_by_key(|k| k.public_key());
            let pks: Vec<PublicKey> = keys.iter().map(|k| k.public_key()).collect();
            let set: Set<PublicKey> = pks.iter().cloned().try_collect().unwrap();
            let info = Info::<MinPk, PublicKey>::new::<N3f1>(
                NAMESPACE,
                0,
                None,
                Mode::NonZeroCounter,
                Reveal::V1,
                set.clone(),
                set,
            )
            .unwrap();
            let signer = AckSigner::new(&info, NAMESPACE, &pks);
            for (k, dealer_key) in keys.iter().enumerate() {
                let (_, pub_msg, privs) = Dealer::<MinPk, PrivateKey>::start::<N3f1>(
                    &mut rng,
                    info.clone(),
                    dealer_key.clone(),
                    None,
                )
                .unwrap();
                for (j, (player_pk, priv_msg)) in privs.into_iter().enumerate() {
                    let mut player =
                        Player::<MinPk, PrivateKey>::new(info.clone(), keys[j].clone()).unwrap();
                    let real = player
                        .dealer_message::<N3f1>(pks[k].clone(), pub_msg.clone(), priv_msg)
                        .unwrap()
                        .unwrap();
                    assert_eq!(player_pk, pks[j]);
                    let fast = signer.sign(&keys[j], &pks[k], &pub_msg.encode());
                    assert_eq!(real.encode(), fast.encode(), "dealer {k}, player {j}");
                }
            }
        }
    }
}

/// ZcashFoundation's FROST DKG over secp256k1 (`frost_secp256k1::keys::dkg`).
pub mod frost_dkg {
    use super::par_map;
    use frost_secp256k1::{
        Group, Identifier, Secp256K1Group, VerifyingKey,
        keys::{
            KeyPackage, PublicKeyPackage,
            dkg::{part1, part2, part3, round1, round2},
        },
    };
    use rand_chacha_03::ChaCha20Rng;
    use rand_core_06::{RngCore, SeedableRng};
    use std::collections::BTreeMap;

    /// Everything the measured participant receives from the others, computed up front.
    pub struct Setup {
        pub n: usize,
        pub t: usize,
        me: Identifier,
        /// Seed of the participant's own `part1` (its commitment enters the group key).
        part1_seed: u64,
        /// Round-1 broadcasts of the other n-1 participants.
        round1_from_others: BTreeMap<Identifier, round1::Package>,
        /// Round-2 shares the other n-1 participants sent to me.
        round2_to_me: BTreeMap<Identifier, round2::Package>,
        /// Group key = sum of the constant-term commitments of all n round-1 packages.
        pub expected_group_key: VerifyingKey,
    }

    /// What one participant ends up with (plus what it sends out, so nothing is elided).
    pub struct ParticipantResult {
        pub key_package: KeyPackage,
        pub public_key_package: PublicKeyPackage,
        pub round1_sent: round1::Package,
        pub round2_sent: BTreeMap<Identifier, round2::Package>,
    }

    pub(crate) fn ident(i: usize) -> Identifier {
        Identifier::try_from(u16::try_from(i).expect("n fits in u16")).expect("non-zero id")
    }

    /// Per-participant `part1` seeds (participant i+1 uses entry i).
    pub(crate) fn participant_seeds(n: usize, seed: u64) -> Vec<u64> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.next_u64()).collect()
    }

    /// Runs part1 for all n participants and part2 for the n-1 others, keeping participant 1's
    /// inputs. `t` is FROST's `min_signers`.
    pub fn setup(n: usize, t: usize, seed: u64) -> Setup {
        assert!(n >= 2 && t >= 2 && t <= n, "invalid (n, t)");
        let (n16, t16) = (
            u16::try_from(n).expect("n fits in u16"),
            u16::try_from(t).expect("t fits in u16"),
        );
        let seeds = participant_seeds(n, seed);
        let me = ident(1);

        let mut secrets = Vec::with_capacity(n);
        let mut round1_all = BTreeMap::new();
        for (i, &s) in seeds.iter().enumerate() {
            let id = ident(i + 1);
            let (secret, package) =
                part1(id, n16, t16, ChaCha20Rng::seed_from_u64(s)).expect("valid parameters");
            secrets.push((id, secret));
            round1_all.insert(id, package);
        }

        let mut constant_sum = Secp256K1Group::identity();
        for package in round1_all.values() {
            let encoded = package
                .commitment()
                .serialize()
                .expect("non-identity commitment");
            let bytes = <Secp256K1Group as Group>::Serialization::try_from(&encoded[0][..])
                .expect("compressed point");
            constant_sum += Secp256K1Group::deserialize(&bytes).expect("valid point");
        }
        let expected_group_key = VerifyingKey::deserialize(
            Secp256K1Group::serialize(&constant_sum)
                .expect("non-identity group key")
                .as_ref(),
        )
        .expect("valid group key");

        let round1_from_others: BTreeMap<_, _> = round1_all
            .iter()
            .filter(|(id, _)| **id != me)
            .map(|(id, p)| (*id, p.clone()))
            .collect();
        let others: Vec<_> = secrets.into_iter().filter(|(id, _)| *id != me).collect();
        let round2_to_me: BTreeMap<_, _> = {
            let round1_all = &round1_all;
            par_map(others, |(id, secret)| {
                let inbox: BTreeMap<_, _> = round1_all
                    .iter()
                    .filter(|(other, _)| **other != id)
                    .map(|(other, p)| (*other, p.clone()))
                    .collect();
                let (_, mut outgoing) = part2(secret, &inbox).expect("honest round 1");
                (id, outgoing.remove(&me).expect("package for me"))
            })
            .into_iter()
            .collect()
        };

        Setup {
            n,
            t,
            me,
            part1_seed: seeds[0],
            round1_from_others,
            round2_to_me,
            expected_group_key,
        }
    }

    /// Everything one participant does: `part1` (sample polynomial, commit, proof of
    /// knowledge), `part2` over the n-1 round-1 packages (verify n-1 proofs of knowledge,
    /// evaluate n-1 outgoing shares) and `part3` (verify the n-1 received shares against
    /// their commitments, sum its signing share, and derive the group key plus all n
    /// verifying shares).
    pub fn run_one_participant(setup: &Setup) -> ParticipantResult {
        let (n16, t16) = (setup.n as u16, setup.t as u16);
        let (secret1, round1_sent) = part1(
            setup.me,
            n16,
            t16,
            ChaCha20Rng::seed_from_u64(setup.part1_seed),
        )
        .expect("valid parameters");
        let (secret2, round2_sent) =
            part2(secret1, &setup.round1_from_others).expect("round-1 packages verify");
        let (key_package, public_key_package) =
            part3(&secret2, &setup.round1_from_others, &setup.round2_to_me)
                .expect("round-2 shares verify");
        ParticipantResult {
            key_package,
            public_key_package,
            round1_sent,
            round2_sent,
        }
    }

    /// Checks a participant's result against the ceremony (not part of the timed work).
    pub fn check(setup: &Setup, result: &ParticipantResult) {
        let kp = &result.key_package;
        let pkp = &result.public_key_package;
        assert_eq!(kp.verifying_key(), &setup.expected_group_key);
        assert_eq!(pkp.verifying_key(), &setup.expected_group_key);
        assert_eq!(
            pkp.verifying_shares().get(&setup.me),
            Some(kp.verifying_share()),
            "verifying share from commitments != g^signing_share"
        );
        assert_eq!(pkp.verifying_shares().len(), setup.n);
        assert_eq!(usize::from(*kp.min_signers()), setup.t);
        assert_eq!(result.round2_sent.len(), setup.n - 1);
    }

    #[cfg(test)]
    pub(crate) fn round2_to_me_len(setup: &Setup) -> usize {
        setup.round2_to_me.len()
    }

    /// Test helper: swap the round-2 shares received from the first two senders.
    #[cfg(test)]
    pub(crate) fn swap_first_two_shares(setup: &mut Setup) {
        let ids: Vec<_> = setup.round2_to_me.keys().take(2).copied().collect();
        let a = setup.round2_to_me.remove(&ids[0]).expect("sender");
        let b = setup.round2_to_me.insert(ids[1], a).expect("sender");
        setup.round2_to_me.insert(ids[0], b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_matches_commonware_quorum() {
        use commonware_utils::{Faults, N3f1};
        for n in [4, 7, 64, 100, 256, 1000, 1024] {
            assert_eq!(default_threshold(n), N3f1::quorum(n) as usize, "n = {n}");
        }
    }

    #[test]
    fn commonware_participant_is_consistent() {
        let (n, t) = (7, 5);
        assert_eq!(default_threshold(n), t);
        let setup = commonware_dkg::setup(n, t, 42);
        let result = commonware_dkg::run_one_participant(&setup);
        commonware_dkg::check(&setup, &result);
        // Deterministic: a second run yields the same output and share.
        let again = commonware_dkg::run_one_participant(&setup);
        assert!(again.output == result.output);
        assert!(again.share == result.share);
    }

    #[test]
    #[should_panic(expected = "dealing verifies")]
    fn commonware_rejects_bad_share() {
        let mut setup = commonware_dkg::setup(7, 5, 3);
        commonware_dkg::corrupt_first_share(&mut setup);
        commonware_dkg::run_one_participant(&setup);
    }

    #[test]
    #[should_panic(expected = "round-2 shares verify")]
    fn frost_rejects_bad_share() {
        let mut setup = frost_dkg::setup(7, 5, 3);
        frost_dkg::swap_first_two_shares(&mut setup);
        frost_dkg::run_one_participant(&setup);
    }

    #[test]
    fn frost_participant_is_consistent() {
        let (n, t) = (7, 5);
        let setup = frost_dkg::setup(n, t, 42);
        assert_eq!(frost_dkg::round2_to_me_len(&setup), n - 1);
        let result = frost_dkg::run_one_participant(&setup);
        frost_dkg::check(&setup, &result);
        assert_eq!(
            frost_dkg::run_one_participant(&setup).public_key_package,
            result.public_key_package
        );
    }

    /// Cross-check the FROST participant against a full ceremony, re-run from the same seeds, in
    /// which every participant derives its keys: all must agree with the measured participant.
    #[test]
    fn frost_participant_agrees_with_everyone() {
        use frost_secp256k1::keys::dkg::{part1, part2, part3};
        use frost_secp256k1::rand_core::SeedableRng;
        use std::collections::BTreeMap;

        let (n, t, seed) = (7usize, 5usize, 9u64);
        let setup = frost_dkg::setup(n, t, seed);
        let mine = frost_dkg::run_one_participant(&setup);
        frost_dkg::check(&setup, &mine);

        let ids: Vec<_> = (1..=n).map(frost_dkg::ident).collect();
        let mut secrets1 = BTreeMap::new();
        let mut round1 = BTreeMap::new();
        for (id, s) in ids.iter().zip(frost_dkg::participant_seeds(n, seed)) {
            let rng = rand_chacha_03::ChaCha20Rng::seed_from_u64(s);
            let (secret, package) = part1(*id, n as u16, t as u16, rng).unwrap();
            secrets1.insert(*id, secret);
            round1.insert(*id, package);
        }
        let inbox = |me| -> BTreeMap<_, _> {
            round1
                .iter()
                .filter(|(id, _)| **id != me)
                .map(|(id, p)| (*id, p.clone()))
                .collect()
        };
        let mut secrets2 = BTreeMap::new();
        let mut round2: BTreeMap<_, BTreeMap<_, _>> = BTreeMap::new();
        for id in &ids {
            let (secret, out) = part2(secrets1.remove(id).unwrap(), &inbox(*id)).unwrap();
            secrets2.insert(*id, secret);
            for (to, package) in out {
                round2.entry(to).or_default().insert(*id, package);
            }
        }
        for id in &ids {
            let (key_package, public_key_package) =
                part3(&secrets2[id], &inbox(*id), &round2[id]).unwrap();
            assert_eq!(
                public_key_package, mine.public_key_package,
                "participant {id:?}"
            );
            if *id == ids[0] {
                assert_eq!(key_package, mine.key_package);
            }
        }
    }
}
