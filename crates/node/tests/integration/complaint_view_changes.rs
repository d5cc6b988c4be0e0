//! The complaint variant through the contract, in one process: drivers follow a contract whose
//! configuration says `variant = complaint`, take the variant from the ceremony spec in the
//! chain's events, deal point to point, and complete a fresh and then a resharing view change
//! whose magic blocks verify under the group key. A dealer that sends one player a bad pair is
//! excluded and slashed on the evidence of its own signed deal, which the evidence check
//! accepts from the session alone. The chain bytes of both variants' ceremonies are printed
//! side by side.

use keyquorum_contract::config::{DkgVariant, KeyMode};
use keyquorum_contract::state::EvidenceRecord;
use keyquorum_contract::{ContractConfig, Event, SignedMagicBlock, verify_magic_block_chain};
use keyquorum_dkg::board::{Evidence, Exclusion, FaultKind, Role};
use keyquorum_dkg::complaint::messages::{ComplaintPost, SignedComplaintPost};
use keyquorum_dkg::complaint::verify_exclusion;
use keyquorum_dkg::identity::IdentityPublicKey;
use keyquorum_node::Fault;

use crate::common;

use common::Harness;

fn config(chain_id: &str, n: u32, quorum: u32, variant: DkgVariant) -> ContractConfig {
    let mut c = common::small_network(chain_id, n, quorum, KeyMode::Reshare);
    // Exactly `n` members: a count threshold fits only committees near that size.
    c.committee.min_size = n;
    c.dkg.variant = variant;
    c
}

fn harness(config: ContractConfig, n: usize) -> Harness {
    let stakes: Vec<u64> = (0..n as u64).map(|i| 100 - i).collect();
    let mut h = Harness::new(config, &stakes);
    h.set_verifiable_keys();
    h
}

fn magic_blocks(h: &Harness, views: u64) -> Vec<SignedMagicBlock> {
    (1..=views)
        .map(|v| h.contract.view(v).unwrap().magic_block.clone())
        .collect()
}

#[test]
fn complaint_variant_fresh_then_reshare_through_the_contract() {
    const N: usize = 4;
    let mut h = harness(
        config("complaint-test", N as u32, 3, DkgVariant::Complaint),
        N,
    );
    h.run_until(120, |h| h.contract.state().current_view >= 2);
    // Both ceremonies ran the complaint variant: the spec says so, and no ack-or-reveal post
    // (contribution or publication) was ever made.
    let specs: Vec<_> = h
        .events()
        .filter_map(|e| match e {
            Event::CommitteeSelected { spec, .. } => Some(spec.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(specs.len(), 2);
    for spec in &specs {
        assert_eq!(spec.variant, DkgVariant::Complaint);
        assert_eq!(spec.verifiable_keys.len(), N);
    }
    let kinds: Vec<String> = h
        .events()
        .filter_map(|e| match e {
            Event::PostAccepted { kind, .. } => Some(kind.clone()),
            _ => None,
        })
        .collect();
    assert!(
        kinds
            .iter()
            .all(|k| k == "report" || k == "feldman" || k == "complaint"),
        "{kinds:?}"
    );
    assert_eq!(kinds.iter().filter(|k| *k == "report").count(), 2 * N);
    // Every qualified player says it has no complaint, so the complain phase closes early.
    assert_eq!(kinds.iter().filter(|k| *k == "complaint").count(), 2 * N);
    assert!(h.contract.state().slashings.is_empty());
    let blocks = magic_blocks(&h, 2);
    let genesis = blocks[0].block.group_key;
    assert_eq!(
        blocks[1].block.group_key, genesis,
        "a reshare keeps the key"
    );
    assert_eq!(blocks[0].block.members.len(), N);
    verify_magic_block_chain(&genesis.0, &blocks).unwrap();
    for (i, d) in h.drivers.iter().enumerate() {
        let d = d.as_ref().unwrap();
        assert_eq!(d.state().current_view, 2, "node {i}");
        let share = d.state().shares.iter().find(|s| s.view == 2).unwrap();
        assert_eq!(share.group_key, hex::encode(genesis.0), "node {i}");
    }
}

#[test]
fn a_complaint_variant_dealer_sending_a_bad_pair_is_excluded_and_slashed_on_its_own_signed_deal() {
    const N: usize = 5;
    const FAULTY: usize = 4;
    let mut h = harness(
        config("complaint-fault-test", N as u32, 4, DkgVariant::Complaint),
        N,
    );
    h.set_fault(FAULTY, Fault::BadShare);
    h.run_until(120, |h| h.contract.state().current_view >= 1);
    let faulty_id = h.keys[FAULTY].identity().public().to_bytes();
    let records = &h.contract.state().slashings;
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r.identity.0, faulty_id);
    assert_eq!(r.fault, "bad_deal");
    assert!(r.misbehaviour && r.amount > 0);
    // The evidence is the complaining player's report, which carries the dealer's signed
    // ciphertext and commitment: it proves the fault against the session alone.
    let EvidenceRecord::SignedPosts { posts } = &r.evidence else {
        panic!("{:?}", r.evidence);
    };
    let spec = h
        .events()
        .find_map(|e| match e {
            Event::CommitteeSelected { spec, view: 1, .. } => Some(spec.clone()),
            _ => None,
        })
        .unwrap();
    let ceremony = spec.ceremony().unwrap();
    let report =
        SignedComplaintPost::<keyquorum_contract::Group>::decode(&posts[0].0, N, N).unwrap();
    let ComplaintPost::Report(report) = report.post else {
        panic!("evidence is not a report");
    };
    let identity = IdentityPublicKey::from_bytes(&faulty_id).unwrap();
    let exclusion = |evidence: Vec<Vec<u8>>| Exclusion {
        role: Role::Dealer,
        index: ceremony.dealer_position(&identity).unwrap(),
        identity: identity.clone(),
        fault: FaultKind::BadDeal {
            player: report.player,
        },
        evidence: Evidence::SignedPosts(evidence),
        reporter: None,
    };
    let evidence: Vec<Vec<u8>> = posts.iter().map(|p| p.0.clone()).collect();
    assert_eq!(
        verify_exclusion(&ceremony, &exclusion(evidence.clone())),
        Some(true)
    );
    let mut forged = evidence;
    let last = forged[0].len() - 1;
    forged[0][last] ^= 1;
    assert_ne!(verify_exclusion(&ceremony, &exclusion(forged)), Some(true));
    // The view started without it, and its key verifies its magic block.
    let block = &h.contract.view(1).unwrap().magic_block;
    assert_eq!(block.block.members.len(), N - 1);
    assert!(
        block
            .block
            .members
            .iter()
            .all(|m| m.identity.0 != faulty_id)
    );
    verify_magic_block_chain(&block.block.group_key.0, std::slice::from_ref(block)).unwrap();
}

/// The `DkgPost` (or, for the signing key, `SigningKeyPost`) transactions of one fresh ceremony
/// of `n` in which nobody misbehaves, built from the real message types and encoded as the
/// chain stores them: every member signs a transaction (fixed header, sender key, nonce,
/// signature) holding one signed post per board phase. Ack-or-reveal: a contribution (`n + 1`
/// uncompressed points) and a publication (full ack bitmap, one aggregate signature, no reveal)
/// per dealer. Complaint variant: a report per player (the dealer-signed hash of each of the
/// `n` deals, the bitmap of valid pairs, no complaint), a Feldman commitment (`n + 1`
/// uncompressed points) per dealer and an empty complaint per player. Point values and signed contents do not change an
/// encoding's length; the lengths are those of the encoders the drivers use.
fn no_fault_post_bytes(n: usize, variant: DkgVariant, signing_key: bool) -> usize {
    use keyquorum_contract::tx::{Transaction, TxBody};
    use keyquorum_crypto::commit::EvalCommitment;
    use keyquorum_crypto::{Bls12381G1, Curve, Secp256k1};
    use keyquorum_dkg::complaint::messages::{Disclosure, FeldmanPost, HeardEntry, Report};
    use keyquorum_dkg::identity::{IdentityKeypair, Purpose};
    use keyquorum_dkg::messages::{Contribution, Post, Publication, SignedPost};

    fn commitment<C: Curve>(n: usize) -> EvalCommitment<C> {
        let g = <C::Affine as group::prime::PrimeCurveAffine>::generator();
        EvalCommitment::from_points(vec![g; n + 1]).unwrap()
    }
    fn complaint_posts<C: Curve>(
        n: usize,
        key: &IdentityKeypair,
        session: [u8; 32],
    ) -> Vec<Vec<u8>> {
        let signature = key.sign(Purpose::Message, b"statement");
        let report = ComplaintPost::<C>::Report(Report {
            session,
            player: 0,
            heard: (0..n as u32)
                .map(|dealer| HeardEntry {
                    dealer,
                    hash: [7; 32],
                    signature,
                })
                .collect(),
            valid: (0..n as u32).collect(),
            complaints: Vec::new(),
            conflicting: None,
        });
        let feldman = ComplaintPost::<C>::Feldman(FeldmanPost {
            session,
            dealer: 0,
            commitment: commitment::<C>(n),
        });
        // The complaint each qualified player posts, empty as it has none.
        let complaint = ComplaintPost::<C>::Complaint(Disclosure {
            session,
            player: 0,
            shares: Vec::new(),
            commitments: Vec::new(),
        });
        [report, feldman, complaint]
            .into_iter()
            .map(|p| SignedComplaintPost::sign(key, p).encode())
            .collect()
    }

    let key = IdentityKeypair::from_seed(&[1; 32]).unwrap();
    let session = [3; 32];
    let posts: Vec<Vec<u8>> = match (variant, signing_key) {
        (DkgVariant::AckReveal, false) => {
            let contribution = Post::<Bls12381G1>::Contribution(Contribution {
                session,
                dealer: 0,
                commitment: commitment::<Bls12381G1>(n),
            });
            let publication = Post::<Bls12381G1>::Publication(Publication {
                session,
                attempt: 0,
                dealer: 0,
                commitment_hash: [5; 32],
                acks: (0..n as u32).collect(),
                ack_signature: Some(key.sign(Purpose::Message, b"ack")),
                reveals: Vec::new(),
            });
            [contribution, publication]
                .into_iter()
                .map(|post| {
                    let signature = key.sign(Purpose::Post, &post.signed_payload());
                    SignedPost { post, signature }.encode()
                })
                .collect()
        }
        (DkgVariant::Complaint, false) => complaint_posts::<Bls12381G1>(n, &key, session),
        (DkgVariant::Complaint, true) => complaint_posts::<Secp256k1>(n, &key, session),
        (DkgVariant::AckReveal, true) => unreachable!("a signing key runs the complaint variant"),
    };
    // Every member posts one of each: `n` transactions per post kind, all of the same length.
    posts
        .into_iter()
        .map(|post| {
            let body = if signing_key {
                TxBody::SigningKeyPost { post }
            } else {
                TxBody::DkgPost { post }
            };
            n * Transaction::sign("bytes-test", &key, 1, body)
                .encode()
                .len()
        })
        .sum()
}

/// Chain bytes of one fresh ceremony's DKG posts (the `DkgPost` transactions), both variants.
/// Small committees run through the contract and drivers, and their measured bytes must equal
/// [`no_fault_post_bytes`]; the larger sizes are then computed with it. Printed for
/// docs/performance.md (`cargo test -p keyquorum-node --release --test integration
/// complaint_view_changes::chain_bytes -- --nocapture`). The complaint variant keeps deals and
/// Pedersen commitments off chain but posts a report per player with a signed hash per dealer
/// (the evidence that makes equivocation provable), a Feldman commitment per dealer and an
/// empty complaint per player (which lets the complain phase close early).
#[test]
fn chain_bytes_per_ceremony_of_both_variants() {
    for n in [4usize, 7] {
        let quorum = (n * 3).div_ceil(4) as u32;
        for variant in [DkgVariant::AckReveal, DkgVariant::Complaint] {
            let mut h = harness(config("bytes-test", n as u32, quorum, variant), n);
            h.run_until(120, |h| h.contract.state().current_view >= 1);
            assert!(h.contract.state().slashings.is_empty());
            assert_eq!(
                h.dkg_post_bytes(),
                no_fault_post_bytes(n, variant, false),
                "n = {n}, {variant:?}"
            );
        }
    }
    println!(
        "| n | ack-or-reveal (BLS12-381) | complaint (BLS12-381) | complaint (secp256k1 signing key) | complaint / ack-or-reveal |"
    );
    for n in [4usize, 7, 16, 64, 256] {
        let ack = no_fault_post_bytes(n, DkgVariant::AckReveal, false);
        let complaint = no_fault_post_bytes(n, DkgVariant::Complaint, false);
        let signing = no_fault_post_bytes(n, DkgVariant::Complaint, true);
        println!(
            "| {n} | {ack} | {complaint} | {signing} | {:.2} |",
            complaint as f64 / ack as f64
        );
    }
}

/// A complaint-variant reconstruction post's signature is checked only at the reconstruct
/// deadline, in one batch; one that fails there was reported taken on arrival, so the deadline
/// says it was dropped (`PostDropped`, naming the view ceremony, the author's player position
/// and the reason) and counts it in the author's `refused_posts`. Here a qualified dealer's
/// Feldman post never reaches the chain, so its contribution is reconstructed, and one player's
/// reconstruction post reaches it with a signature byte flipped.
#[test]
fn a_view_ceremony_reconstruction_post_dropped_at_the_deadline_is_reported_and_counted() {
    use keyquorum_contract::Group;
    use keyquorum_contract::state::FaultCeremony;
    use keyquorum_contract::tx::TxBody;
    use keyquorum_dkg::identity::SIGNATURE_LEN;

    const N: usize = 5;
    const SKIPS_FELDMAN: usize = 4;
    const MISSIGNS: usize = 1;
    let mut h = harness(
        config("complaint-dropped-test", N as u32, 4, DkgVariant::Complaint),
        N,
    );
    let is_post = |body: &TxBody, what: fn(&ComplaintPost<Group>) -> bool| match body {
        TxBody::DkgPost { post } => {
            SignedComplaintPost::<Group>::decode(post, N, N).is_ok_and(|p| what(&p.post))
        }
        _ => false,
    };
    let mut missigned = 0;
    while h.contract.state().current_view < 1 {
        assert!(h.height < 120, "view 1 not made");
        // What the chain receives: no Feldman post from one dealer, a reconstruction post
        // with a signature that is not its author's from one player.
        h.pending.retain(|(i, body)| {
            *i != SKIPS_FELDMAN || !is_post(body, |p| matches!(p, ComplaintPost::Feldman(_)))
        });
        for (i, body) in h.pending.iter_mut() {
            if *i == MISSIGNS
                && is_post(body, |p| matches!(p, ComplaintPost::Reconstruction(_)))
                && let TxBody::DkgPost { post } = body
            {
                post[SIGNATURE_LEN - 1] ^= 1;
                missigned += 1;
            }
        }
        h.step();
    }
    assert_eq!(missigned, 1);
    let spec = h
        .events()
        .find_map(|e| match e {
            Event::CommitteeSelected { spec, view: 1, .. } => Some(spec.clone()),
            _ => None,
        })
        .unwrap();
    let ceremony = spec.ceremony().unwrap();
    let identity = |i: usize| h.keys[i].identity().public().clone();
    let player = ceremony.player_position(&identity(MISSIGNS)).unwrap();
    let dropped: Vec<&Event> = h
        .events()
        .filter(|e| matches!(e, Event::PostDropped { .. }))
        .collect();
    assert_eq!(
        dropped,
        vec![&Event::PostDropped {
            ceremony: FaultCeremony::ViewChange,
            view: 1,
            ceremony_number: 0,
            player,
            identity: keyquorum_contract::hex::Hex(identity(MISSIGNS).to_bytes()),
            reason: "bad_post_signature".into(),
        }]
    );
    for i in 0..N {
        let id = keyquorum_contract::hex::Hex(identity(i).to_bytes());
        let expected = u64::from(i == MISSIGNS);
        assert_eq!(
            h.contract.state().nodes[&id].refused_posts,
            expected,
            "member {i}"
        );
    }
    // Dropped, it counts as never posted: the silent dealer's contribution is reconstructed
    // from the other players' pairs and the view is made, without that dealer, whose absence
    // is slashed; the view's key verifies its magic block.
    let block = &h.contract.view(1).unwrap().magic_block;
    let missing: Vec<usize> = (0..N)
        .filter(|&i| {
            block
                .block
                .member_by_identity(&identity(i).to_bytes())
                .is_none()
        })
        .collect();
    assert_eq!(missing, vec![SKIPS_FELDMAN]);
    let slashed: Vec<(&str, bool)> = h
        .contract
        .state()
        .slashings
        .iter()
        .map(|r| {
            (
                r.fault.as_str(),
                r.identity.0 == identity(SKIPS_FELDMAN).to_bytes(),
            )
        })
        .collect();
    assert_eq!(slashed, vec![("missed_feldman", true)]);
    verify_magic_block_chain(&block.block.group_key.0, std::slice::from_ref(block)).unwrap();
}
