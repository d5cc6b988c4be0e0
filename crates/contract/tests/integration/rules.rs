//! One test per rule of the contract, and every rejection checked to leave the state (and the
//! board) exactly as it was; a post its sender could not honestly have sent is checked to be
//! refused at admission and, in a block, to cost only its sender's nonce.

use crate::common;

use common::*;
use std::collections::BTreeSet;

use keyquorum_contract::config::ConfigError;
use keyquorum_contract::hex::Hex;
use keyquorum_contract::magic::signing_message;
use keyquorum_contract::state::{EvidenceRecord, FaultRole};
use keyquorum_contract::tx::{SignerRole, TxBody};
use keyquorum_contract::{
    Contract, ContractConfig, Event, Group, Rejection, SignedMagicBlock, Size, Transaction,
    ViewChangePhase,
};
use keyquorum_crypto::encrypt::EncryptionSecretKey;
use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_dkg::identity::Purpose;
use keyquorum_dkg::messages::{Post, Publication, SignedPost};
use sha2::{Digest, Sha256};

/// What the board holds, for before/after comparisons.
fn board_fingerprint(c: &Contract) -> Option<String> {
    let b = c.board()?;
    let dealers = b.ceremony().dealer_count() as u32;
    let per_dealer: Vec<_> = (0..dealers)
        .map(|d| {
            (
                b.contribution(d).map(|(_, h)| *h),
                b.publication(d).cloned(),
                b.is_active_dealer(d),
            )
        })
        .collect();
    Some(format!(
        "{:?} {} {:?} {:?}",
        b.phase(),
        b.attempt(),
        per_dealer,
        b.active_players()
    ))
}

/// Applies `bytes` at `height`, expects rejection `code`, and checks nothing changed.
fn rejected(c: &mut Contract, bytes: &[u8], height: u64, code: &str) -> Rejection {
    let state = c.state().clone();
    let board = board_fingerprint(c);
    let err = c.apply_tx(bytes, height).unwrap_err();
    assert_eq!(err.code(), code, "got {err}");
    assert_eq!(c.state(), &state, "state changed by a rejected transaction");
    assert_eq!(
        board_fingerprint(c),
        board,
        "board changed by a rejected transaction"
    );
    err
}

/// Checks that `bytes`, a `DkgPost` whose post its sender could not honestly have sent, is
/// refused at admission with `code` and, if a block carries it anyway, applied as refused:
/// only the sender's nonce and refusal count change, with one fixed-size `PostRefused` event.
fn refused(c: &mut Contract, bytes: &[u8], height: u64, code: &str) {
    let err = c.check_tx(bytes).unwrap_err();
    assert_eq!(err.code(), code, "admission: got {err}");
    let tx = Transaction::decode(bytes, c.max_tx_len()).unwrap();
    let sender = Hex(tx.sender.to_bytes());
    let mut expected = c.state().clone();
    *expected.nonces.get_mut(&sender).unwrap() += 1;
    expected.nodes.get_mut(&sender).unwrap().refused_posts += 1;
    let board = board_fingerprint(c);
    let events = c.apply_tx(bytes, height).unwrap();
    match &events[..] {
        [
            Event::PostRefused {
                identity,
                code: got,
            },
        ] => {
            assert_eq!(identity, &sender);
            assert_eq!(got, code);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.state(), &expected, "only the nonce and the count change");
    assert_eq!(
        board_fingerprint(c),
        board,
        "board changed by a refused post"
    );
}

/// `rejected` with the bytes computed first (they may borrow the contract).
macro_rules! rej {
    ($c:expr, $bytes:expr, $h:expr, $code:expr $(,)?) => {{
        let bytes: Vec<u8> = ($bytes).to_vec();
        rejected(&mut $c, &bytes, $h, $code)
    }};
}

fn sign(c: &Contract, i: usize, body: TxBody) -> Vec<u8> {
    let key = identity(i);
    Transaction::sign(CHAIN, &key, c.next_nonce(key.public()), body).encode()
}

fn hexkey(i: usize) -> Hex<96> {
    Hex(identity(i).public().to_bytes())
}

#[test]
fn registration() {
    let mut c = Contract::new(config()).unwrap();
    let reg0 = sign(&c, 0, register_body(0, 50));
    let ev = c.apply_tx(&reg0, 1).unwrap();
    assert!(matches!(&ev[..], [Event::Registered { stake: 50, .. }]));
    assert_eq!(c.state().nodes[&hexkey(0)].stake, 50);
    assert_eq!(c.next_nonce(identity(0).public()), 1);

    // Registering twice.
    let again = sign(&c, 0, register_body(0, 50));
    rej!(c, &again, 1, "already_registered");
    // Replaying the first registration.
    rej!(c, &reg0, 1, "stale_nonce");
    // A nonce from the future.
    let future = Transaction::sign(CHAIN, &identity(0), 7, TxBody::AddStake { amount: 1 });
    let err = rej!(c, &future.encode(), 1, "bad_nonce");
    assert_eq!(
        err,
        Rejection::BadNonce {
            expected: 1,
            got: 7
        }
    );
    // A proof of possession for another key.
    let mut body = register_body(1, 10);
    if let TxBody::Register { pop, .. } = &mut body {
        *pop = identity(2).proof_of_possession();
    }
    rej!(c, &sign(&c, 1, body), 1, "bad_proof_of_possession");
    // A signature over the identity key that is not a POP (plain transaction signature).
    let mut body = register_body(1, 10);
    if let TxBody::Register { pop, .. } = &mut body {
        *pop = identity(1).sign(Purpose::Transaction, &identity(1).public().to_bytes());
    }
    rej!(c, &sign(&c, 1, body), 1, "bad_proof_of_possession");
    // Someone else's encryption key or peer id.
    let mut body = register_body(1, 10);
    if let TxBody::Register { encryption_key, .. } = &mut body {
        *encryption_key = EncryptionSecretKey::from_seed(&enc_seed(0)).public_key();
    }
    rej!(c, &sign(&c, 1, body), 1, "duplicate_encryption_key");
    let mut body = register_body(1, 10);
    if let TxBody::Register { network, .. } = &mut body {
        *network = common::network(0);
    }
    rej!(c, &sign(&c, 1, body), 1, "duplicate_peer_id");
    // Anything but Register from a key that is not registered: named so.
    for body in [
        TxBody::AddStake { amount: 1 },
        TxBody::Unbond { amount: 1 },
        TxBody::Deregister,
        TxBody::UpdateNetwork {
            network: common::network(5),
        },
        TxBody::DkgPost { post: vec![1] },
    ] {
        rej!(c, &sign(&c, 5, body), 1, "not_registered");
    }
    // Signed for another chain, or with a damaged signature.
    let other = Transaction::sign("other-chain", &identity(1), 0, register_body(1, 10));
    rej!(c, &other.encode(), 1, "bad_signature");
    let mut bytes = sign(&c, 1, register_body(1, 10));
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    rej!(c, &bytes, 1, "bad_signature");
    // Signed by someone else than the sender it names.
    let mut forged = Transaction::sign(CHAIN, &identity(1), 0, register_body(1, 10));
    forged.signature = identity(2).sign(Purpose::Transaction, b"x");
    rej!(c, &forged.encode(), 1, "bad_signature");
    // Garbage and oversized input.
    rej!(c, &[], 1, "malformed");
    rej!(c, b"definitely not a transaction", 1, "malformed");
    rej!(c, &vec![1u8; c.max_tx_len() + 1], 1, "oversized");
    let mut trailing = sign(&c, 1, register_body(1, 10));
    trailing.push(0);
    rej!(c, &trailing, 1, "malformed");

    // Heights only move forward.
    c.end_block(1);
    rej!(c, &sign(&c, 1, register_body(1, 10)), 1, "wrong_height");

    // Deregister, then register again with the next nonce; the old registration cannot replay.
    let ev = c.apply_tx(&sign(&c, 0, TxBody::Deregister), 2).unwrap();
    assert!(matches!(
        &ev[..],
        [
            Event::Deregistered { stake: 50, .. },
            Event::UnbondingStarted { amount: 50, .. }
        ]
    ));
    assert!(c.state().nodes.is_empty());
    rej!(c, &reg0, 2, "stale_nonce");
    rej!(c, &sign(&c, 0, TxBody::Deregister), 2, "not_registered");
    c.apply_tx(&sign(&c, 0, register_body(0, 5)), 2).unwrap();
    assert_eq!(c.state().nodes[&hexkey(0)].stake, 5);
    assert_eq!(c.next_nonce(identity(0).public()), 3);
}

#[test]
fn stake() {
    let mut c = Contract::new(config()).unwrap();
    c.apply_tx(&sign(&c, 0, register_body(0, 10)), 1).unwrap();
    rej!(
        c,
        &sign(&c, 0, TxBody::AddStake { amount: 0 }),
        1,
        "zero_amount"
    );
    rej!(
        c,
        &sign(&c, 0, TxBody::Unbond { amount: 0 }),
        1,
        "zero_amount",
    );
    let err = rej!(
        c,
        &sign(&c, 0, TxBody::Unbond { amount: 11 }),
        1,
        "insufficient_stake",
    );
    assert_eq!(
        err,
        Rejection::InsufficientStake {
            stake: 10,
            requested: 11
        }
    );
    rej!(
        c,
        &sign(&c, 0, TxBody::AddStake { amount: u64::MAX }),
        1,
        "stake_overflow",
    );
    let ev = c
        .apply_tx(&sign(&c, 0, TxBody::AddStake { amount: 5 }), 1)
        .unwrap();
    assert_eq!(
        ev,
        vec![Event::StakeChanged {
            identity: hexkey(0),
            stake: 15
        }]
    );
    c.apply_tx(&sign(&c, 0, TxBody::Unbond { amount: 15 }), 1)
        .unwrap();
    assert_eq!(c.state().nodes[&hexkey(0)].stake, 0);

    // Network identity updates, but not to someone else's peer id.
    c.apply_tx(&sign(&c, 1, register_body(1, 10)), 1).unwrap();
    rej!(
        c,
        &sign(
            &c,
            0,
            TxBody::UpdateNetwork {
                network: common::network(1),
            },
        ),
        1,
        "duplicate_peer_id",
    );
    let ev = c
        .apply_tx(
            &sign(
                &c,
                0,
                TxBody::UpdateNetwork {
                    network: common::network(9),
                },
            ),
            1,
        )
        .unwrap();
    assert!(matches!(&ev[..], [Event::NetworkUpdated { .. }]));
    assert_eq!(c.state().nodes[&hexkey(0)].network, common::network(9));
}

#[test]
fn stake_is_locked_during_a_view_change() {
    // Seven nodes, committees of six: node 6 is a standby.
    let mut sim = Sim::new(config(), &[70, 60, 50, 40, 30, 20, 10]);
    sim.run_until(5, |s| {
        s.contract.state().phase() == ViewChangePhase::Contribute
    });
    let h = sim.height + 1;
    let bytes = sim.tx(0, TxBody::Unbond { amount: 1 });
    rejected(&mut sim.contract, &bytes, h, "stake_locked");
    // The standby may leave; adding stake is always allowed.
    sim.submit_now((6, TxBody::Unbond { amount: 5 })).unwrap();
    sim.submit_now((0, TxBody::AddStake { amount: 5 })).unwrap();
    sim.submit_now((6, TxBody::Deregister)).unwrap();
    // Members of the active view stay locked after the view change.
    sim.run_until(40, |s| s.contract.state().current_view == 1);
    let h = sim.height + 1;
    let bytes = sim.tx(1, TxBody::Unbond { amount: 1 });
    rejected(&mut sim.contract, &bytes, h, "stake_locked");
}

/// The view that activates in block `at`, if one does.
fn activated_in(sim: &Sim, at: u64) -> Option<u64> {
    sim.events.iter().find_map(|(h, e)| match e {
        Event::ViewActivated { view, .. } if *h == at => Some(*view),
        _ => None,
    })
}

#[test]
fn a_locked_member_that_deregisters_leaves_once_its_stake_is_free() {
    // As many nodes as seats: every node sits in every committee, so refusing a member's
    // deregistration while its stake is locked would keep it in for good.
    let mut sim = Sim::new(config(), &[60, 50, 40, 30, 20]);
    sim.run_until(60, |s| s.contract.state().current_view == 1);
    let view1 = sim.contract.view(1).unwrap().magic_block.block.clone();
    assert!(view1.member_by_identity(&hexkey(0).0).is_some());

    let ev = sim.submit_now((0, TxBody::Deregister)).unwrap();
    assert_eq!(
        ev,
        vec![Event::LeaveScheduled {
            identity: hexkey(0)
        }]
    );
    let account = sim.contract.account(&hexkey(0));
    assert!(account.registered && account.leaving && account.stake == 60);
    // Scheduled once; its stake stays locked and at risk meanwhile.
    let h = sim.height + 1;
    let again = sim.tx(0, TxBody::Deregister);
    rejected(&mut sim.contract, &again, h, "already_leaving");
    let unbond = sim.tx(0, TxBody::Unbond { amount: 1 });
    rejected(&mut sim.contract, &unbond, h, "stake_locked");
    // Cancelled, it is selected again; with nothing scheduled, a cancel is refused.
    let ev = sim.submit_now((0, TxBody::CancelLeave)).unwrap();
    assert_eq!(
        ev,
        vec![Event::LeaveCancelled {
            identity: hexkey(0)
        }]
    );
    assert!(!sim.contract.account(&hexkey(0)).leaving);
    let h = sim.height + 1;
    let cancel = sim.tx(0, TxBody::CancelLeave);
    rejected(&mut sim.contract, &cancel, h, "not_leaving");
    let stranger = sim.add_node();
    let cancel = sim.tx(stranger, TxBody::CancelLeave);
    rejected(&mut sim.contract, &cancel, h, "not_registered");
    sim.submit_now((0, TxBody::Deregister)).unwrap();

    // It keeps serving view 1 and is left out of view 2, then deregistered in the block that
    // activates view 2, its whole stake unbonding.
    sim.run_until(80, |s| s.contract.state().current_view == 2);
    let view2 = &sim.contract.view(2).unwrap().magic_block.block;
    assert_eq!(view2.members.len(), 4);
    assert!(view2.member_by_identity(&hexkey(0).0).is_none());
    assert!(!sim.contract.state().nodes.contains_key(&hexkey(0)));
    let (at, _) = sim
        .events
        .iter()
        .find(|(_, e)| matches!(e, Event::Deregistered { identity, stake: 60 } if *identity == hexkey(0)))
        .expect("deregistered");
    assert_eq!(
        activated_in(&sim, *at),
        Some(2),
        "deregistered as view 2 activates"
    );
    assert!(sim.events.iter().any(|(h, e)| *h == *at
        && matches!(e, Event::UnbondingStarted { identity, amount: 60, .. } if *identity == hexkey(0))));
    let account = sim.contract.account(&hexkey(0));
    assert!(!account.registered && !account.leaving && account.stake == 0);
}

#[test]
fn a_leaving_member_that_the_committee_still_needs_stays_until_a_node_replaces_it() {
    // Four nodes and a minimum committee of four: without the leaving member there is no
    // committee, so it stays in the active view, serving, until a fifth node registers.
    let mut sim = Sim::new(config(), &[60, 50, 40, 30]);
    sim.run_until(60, |s| s.contract.state().current_view == 1);
    sim.submit_now((0, TxBody::Deregister)).unwrap();
    sim.run_until(60, |s| {
        s.events_where(|e| matches!(e, Event::ViewChangeAborted { view: 2, .. }))
            .len()
            >= 2
    });
    let aborted = sim.events_where(|e| matches!(e, Event::ViewChangeAborted { view: 2, .. }));
    let Event::ViewChangeAborted { reason, .. } = aborted[0] else {
        unreachable!()
    };
    assert_eq!(reason, "3 eligible nodes, at least 4 needed");
    assert_eq!(sim.contract.state().current_view, 1);
    assert!(sim.contract.account(&hexkey(0)).leaving);

    let joiner = sim.add_node();
    sim.pending.push((joiner, register_body(joiner, 10)));
    sim.run_until(80, |s| s.contract.state().current_view == 2);
    let view2 = &sim.contract.view(2).unwrap().magic_block.block;
    assert!(view2.member_by_identity(&hexkey(0).0).is_none());
    assert!(view2.member_by_identity(&hexkey(joiner).0).is_some());
    assert!(!sim.contract.state().nodes.contains_key(&hexkey(0)));
}

#[test]
fn start_selects_the_committee_at_the_configured_block() {
    let stakes = [10, 80, 30, 80, 50, 60, 70, 20];
    let mut sim = Sim::new(config(), &stakes);
    assert_eq!(sim.contract.state().phase(), ViewChangePhase::Idle);
    sim.step(); // height 2 = first_view_change
    let (h, e) = sim
        .events
        .iter()
        .find(|(_, e)| matches!(e, Event::CommitteeSelected { .. }))
        .unwrap();
    assert_eq!(*h, 2);
    let Event::CommitteeSelected {
        view,
        ceremony_number,
        committee,
        spec,
        ..
    } = e
    else {
        unreachable!()
    };
    assert_eq!((*view, *ceremony_number), (1, 0));
    // Top six by stake, in rank order; the two 80s in tie-break order.
    let stakes_in_order: Vec<u64> = committee.iter().map(|m| m.stake).collect();
    assert_eq!(stakes_in_order, vec![80, 80, 70, 60, 50, 30]);
    assert_eq!(
        committee.iter().map(|m| m.index).collect::<Vec<_>>(),
        (1..=6).collect::<Vec<_>>()
    );
    // Züs percentages: t = ceil(0.66 * 6) = 4, k = ceil(0.75 * 6) = 5.
    assert_eq!((spec.n, spec.t, spec.k), (6, 4, 5));
    assert!(spec.reshare.is_none());
    assert_eq!(sim.contract.state().change.as_ref().unwrap().deadline, 4);
    // Nodes outside the committee can fetch the list.
    let v = sim.contract.query("views/1").unwrap();
    assert_eq!(v["status"], "in_progress");
    assert_eq!(v["committee"].as_array().unwrap().len(), 6);
    assert_eq!(v["committee"][0]["stake"], 80);
    let typed: keyquorum_contract::query::ViewAnswer = serde_json::from_value(v.clone()).unwrap();
    assert!(
        matches!(typed, keyquorum_contract::query::ViewAnswer::InProgress(ref c) if c.committee.len() == 6)
    );
    let status = sim.contract.query("status").unwrap();
    let typed: keyquorum_contract::query::ContractStatus =
        serde_json::from_value(status.clone()).unwrap();
    assert_eq!(typed, sim.contract.query_status());
    assert_eq!(status["phase"], "contribute");
    assert_eq!(status["phase_deadline"], 4);
    assert_eq!(status["pending_view"], 1);
}

#[test]
fn too_few_eligible_nodes_postpones_the_view_change() {
    let mut sim = Sim::new(config(), &[10, 10, 10]);
    sim.step();
    let aborted = sim.events_where(|e| matches!(e, Event::ViewChangeAborted { .. }));
    assert!(matches!(
        aborted[..],
        [Event::ViewChangeAborted {
            view: 1,
            retry_at: 7,
            ..
        }]
    ));
    assert_eq!(sim.contract.state().next_start, 7);
    // Stake below the minimum does not count.
    let mut cfg = config();
    cfg.committee.min_stake = 20;
    let mut sim2 = Sim::new(cfg, &[30, 30, 30, 10]);
    sim2.step();
    assert_eq!(
        sim2.events_where(|e| matches!(e, Event::ViewChangeAborted { .. }))
            .len(),
        1
    );
    // A fourth node registers; the retry starts the view change.
    let i = sim.add_node();
    sim.pending.push((i, register_body(i, 10)));
    sim.run_until(10, |s| {
        s.contract.state().phase() == ViewChangePhase::Contribute
    });
    assert_eq!(sim.height, 7);
}

/// Thresholds given as counts fit a narrow range of committee sizes; a configuration whose
/// smallest committee they do not fit is refused at genesis, naming that size, rather than
/// abandoning every view change that seats fewer.
#[test]
fn absolute_thresholds_that_do_not_fit_the_smallest_committee_are_refused() {
    let mut cfg = config();
    cfg.committee.threshold = Size::Count(4);
    cfg.committee.quorum = Size::Count(5);
    cfg.committee.min_size = 4;
    // k = 5 > n = 4.
    match cfg.validate() {
        Err(e @ ConfigError::Params { n: 4, .. }) => {
            assert!(e.to_string().contains("committee of 4"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert!(Contract::new(cfg.clone()).is_err());
    cfg.committee.min_size = 5;
    assert_eq!(cfg.validate(), Ok(()));
}

#[test]
fn dkg_posts() {
    let mut sim = Sim::new(config(), &[60, 50, 40, 30, 20, 10]);
    // No view change yet.
    let bytes = sim.tx(0, TxBody::DkgPost { post: vec![0; 10] });
    rejected(&mut sim.contract, &bytes, 2, "no_view_change");
    sim.step(); // start at height 2; the nodes' contributions wait in `pending`.
    let posts: Vec<(usize, TxBody)> = std::mem::take(&mut sim.pending);
    assert_eq!(posts.len(), 6);
    let node_post = |i: usize| match &posts.iter().find(|(j, _)| *j == i).unwrap().1 {
        TxBody::DkgPost { post } => post.clone(),
        _ => unreachable!(),
    };
    let ceremony = sim.contract.ceremony().unwrap().clone();
    let dealer_of = |i: usize| ceremony.dealer_position(identity(i).public()).unwrap() as usize;
    let (a, b) = (
        (0..6).find(|i| dealer_of(*i) == 0).unwrap(),
        (0..6).find(|i| dealer_of(*i) == 1).unwrap(),
    );
    let h = sim.height + 1;
    let signed_a = SignedPost::<Group>::decode(&node_post(a), 6).unwrap();
    let resign = |i: usize, post: Post<Group>| {
        let signature = identity(i).sign(Purpose::Post, &post.signed_payload());
        SignedPost { post, signature }.encode()
    };

    // Garbage inside a well-formed transaction.
    let bytes = sim.tx(a, TxBody::DkgPost { post: vec![7; 80] });
    refused(&mut sim.contract, &bytes, h, "malformed_post");
    // Someone else's post.
    let bytes = sim.tx(b, TxBody::DkgPost { post: node_post(a) });
    refused(&mut sim.contract, &bytes, h, "not_post_author");
    // A post for another session.
    let mut other = signed_a.post.clone();
    if let Post::Contribution(c) = &mut other {
        c.session = [9; 32];
    }
    let bytes = sim.tx(
        a,
        TxBody::DkgPost {
            post: resign(a, other),
        },
    );
    rejected(&mut sim.contract, &bytes, h, "wrong_session");
    // A post of another session that does not decode for this committee (one of an earlier
    // ceremony's, with more players, sent again by a restarted node) is that too, and free;
    // before, it was charged as malformed.
    // (Here its count of commitment points is past this committee's bound.)
    let mut other = signed_a.post.clone();
    if let Post::Contribution(c) = &mut other {
        c.session = [9; 32];
    }
    let mut post = resign(a, other);
    // Signature, tag, session, dealer, then the count.
    let count = keyquorum_dkg::identity::SIGNATURE_LEN + 1 + 32 + 4;
    post[count..count + 4].copy_from_slice(&[0xff; 4]);
    assert!(SignedPost::<Group>::decode(&post, 6).is_err());
    let bytes = sim.tx(a, TxBody::DkgPost { post });
    rejected(&mut sim.contract, &bytes, h, "wrong_session");
    // A dealer position outside the committee.
    let mut other = signed_a.post.clone();
    if let Post::Contribution(c) = &mut other {
        c.dealer = 99;
    }
    let bytes = sim.tx(
        a,
        TxBody::DkgPost {
            post: resign(a, other),
        },
    );
    refused(&mut sim.contract, &bytes, h, "not_a_dealer");
    // The post's own signature is bad (the transaction's is fine).
    let mut bad = signed_a.clone();
    bad.signature = identity(a).sign(Purpose::Post, b"something else");
    let bytes = sim.tx(a, TxBody::DkgPost { post: bad.encode() });
    refused(&mut sim.contract, &bytes, h, "bad_post_signature");
    // A publication in the contribute phase.
    let publication = Post::Publication(Publication {
        session: *ceremony.id(),
        attempt: 0,
        dealer: 0,
        commitment_hash: [0; 32],
        acks: vec![],
        ack_signature: None,
        reveals: vec![],
    });
    let bytes = sim.tx(
        a,
        TxBody::DkgPost {
            post: resign(a, publication),
        },
    );
    rejected(&mut sim.contract, &bytes, h, "wrong_phase");
    // A post after the phase's last block (blocks skipped without ending them).
    let bytes = sim.tx(a, TxBody::DkgPost { post: node_post(a) });
    rejected(&mut sim.contract, &bytes, 5, "deadline_passed");

    // The real contribution is accepted once; the same post again is a duplicate.
    let ev = sim
        .submit_now((a, TxBody::DkgPost { post: node_post(a) }))
        .unwrap();
    assert!(matches!(&ev[..], [Event::PostAccepted { dealer: 0, .. }]));
    let bytes = sim.tx(a, TxBody::DkgPost { post: node_post(a) });
    rejected(&mut sim.contract, &bytes, h, "duplicate_post");

    // Equivocation: a second, different contribution signed by the same dealer is accepted as
    // evidence (the board disqualifies the author) and costs stake at the outcome.
    let mut other = signed_a.post.clone();
    let theirs = SignedPost::<Group>::decode(&node_post(b), 6).unwrap().post;
    if let (Post::Contribution(mine), Post::Contribution(t)) = (&mut other, theirs) {
        mine.commitment = t.commitment;
    }
    let stake_before = sim.contract.state().nodes[&hexkey(a)].stake;
    let ev = sim
        .submit_now((
            a,
            TxBody::DkgPost {
                post: resign(a, other),
            },
        ))
        .unwrap();
    match &ev[..] {
        [Event::PostRejected { reason, .. }] => {
            assert_eq!(reason, "equivocation: two different signed commitments")
        }
        _ => panic!("{ev:?}"),
    }
    // The other dealers go on; the ceremony succeeds without `a` (5 of 6 qualify, k = 5).
    sim.pending = posts.iter().filter(|(i, _)| *i != a).cloned().collect();
    sim.run_until(20, |s| s.contract.state().phase() == ViewChangePhase::Wait);
    let r: Vec<_> = sim
        .contract
        .state()
        .slashings
        .iter()
        .filter(|r| r.identity == hexkey(a))
        .cloned()
        .collect();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].fault, "equivocation");
    assert!(r[0].misbehaviour);
    assert_eq!(r[0].amount, stake_before / 10);
    let magic = &sim.contract.state().change.as_ref().unwrap().magic;
    let block = &magic.as_ref().unwrap().signed.block;
    assert_eq!(block.members.len(), 5);
    assert!(block.member_by_identity(&hexkey(a).0).is_none());
    // Posts are refused once the ceremony is over.
    let h = sim.height + 1;
    let bytes = sim.tx(b, TxBody::DkgPost { post: node_post(b) });
    rejected(&mut sim.contract, &bytes, h, "wrong_phase");
}

#[test]
fn magic_block_signatures() {
    let mut sim = Sim::new(config(), &[60, 50, 40, 30, 20, 10, 5]);
    let everyone = set(&[0, 1, 2, 3, 4, 5, 6]);
    sim.faults.insert(
        (1, 0),
        FaultPlan {
            no_new_signature: everyone,
            ..Default::default()
        },
    );
    sim.run_until(5, |s| {
        s.contract.state().phase() == ViewChangePhase::Contribute
    });
    let dummy = tbls::partial_sign::<MinPk>(
        &keyquorum_crypto::secret::Secret::new(Scalar::from(3u64)),
        Scalar::from(1u64),
        b"m",
    );
    let body = |view, hash, role, partial| TxBody::MagicBlockSignature {
        view,
        block_hash: hash,
        role,
        partial,
    };
    let h = sim.height + 1;
    let bytes = sim.tx(0, body(1, [0; 32], SignerRole::New, dummy));
    rejected(&mut sim.contract, &bytes, h, "wrong_phase");

    sim.run_until(20, |s| s.contract.state().phase() == ViewChangePhase::Wait);
    let pending = sim
        .contract
        .state()
        .change
        .as_ref()
        .unwrap()
        .magic
        .clone()
        .unwrap();
    let hash = pending.signed.hash.0;
    let block = pending.signed.block.clone();
    let message = signing_message(SignerRole::New, &hash);
    let partial_of = |sim: &Sim, i: usize, index: u64, msg: &[u8]| {
        let (_, _, out) = sim.nodes[i].finished.as_ref().unwrap();
        tbls::partial_sign::<MinPk>(out.secret_share.as_ref().unwrap(), Scalar::from(index), msg)
    };
    let member = |i: usize| block.member_by_identity(&hexkey(i).0).unwrap().index;
    let h = sim.height + 1;
    let good0 = partial_of(&sim, 0, member(0), &message);

    let bytes = sim.tx(0, body(2, hash, SignerRole::New, good0));
    rejected(&mut sim.contract, &bytes, h, "wrong_view");
    let bytes = sim.tx(0, body(1, [1; 32], SignerRole::New, good0));
    rejected(&mut sim.contract, &bytes, h, "wrong_magic_block");
    // Node 6 is registered but not in the committee.
    let bytes = sim.tx(6, body(1, hash, SignerRole::New, good0));
    rejected(&mut sim.contract, &bytes, h, "not_a_signer");
    // The first view has no previous committee.
    let bytes = sim.tx(0, body(1, hash, SignerRole::Old, good0));
    rejected(&mut sim.contract, &bytes, h, "not_a_signer");
    // Someone else's index, and a partial over another message.
    let bytes = sim.tx(1, body(1, hash, SignerRole::New, good0));
    rejected(&mut sim.contract, &bytes, h, "wrong_index");
    let wrong_msg = partial_of(&sim, 0, member(0), b"another message");
    let bytes = sim.tx(0, body(1, hash, SignerRole::New, wrong_msg));
    rejected(&mut sim.contract, &bytes, h, "bad_partial_signature");
    // A partial made with another member's share under the right index.
    let stolen = partial_of(&sim, 1, member(0), &message);
    let bytes = sim.tx(0, body(1, hash, SignerRole::New, stolen));
    rejected(&mut sim.contract, &bytes, h, "bad_partial_signature");

    // Valid partials are stored; a second one from the same member is refused.
    let ev = sim
        .submit_now((0, body(1, hash, SignerRole::New, good0)))
        .unwrap();
    assert!(matches!(
        &ev[..],
        [Event::PartialSignatureAccepted {
            have: 1,
            need: 4,
            ..
        }]
    ));
    let bytes = sim.tx(0, body(1, hash, SignerRole::New, good0));
    rejected(&mut sim.contract, &bytes, h, "duplicate_partial");
    let mut last = Vec::new();
    for i in [1, 2, 3] {
        let p = partial_of(&sim, i, member(i), &message);
        last = sim
            .submit_now((i, body(1, hash, SignerRole::New, p)))
            .unwrap();
    }
    // The t-th partial combines them; the result verifies under the group key.
    let sig = match &last[..] {
        [
            Event::PartialSignatureAccepted { have: 4, .. },
            Event::MagicBlockSigned {
                role: SignerRole::New,
                signature,
                complete: true,
                ..
            },
        ] => *signature,
        _ => panic!("{last:?}"),
    };
    let key = tbls::decode_public_key::<MinPk>(&block.group_key.0).unwrap();
    let point = tbls::decode_signature::<MinPk>(&sig.0).unwrap();
    tbls::verify::<MinPk>(&key, &message, &point).unwrap();
    let p4 = partial_of(&sim, 4, member(4), &message);
    let bytes = sim.tx(4, body(1, hash, SignerRole::New, p4));
    rejected(&mut sim.contract, &bytes, h, "signature_complete");

    // The view starts at the wait deadline; afterwards there is nothing to sign.
    sim.run_until(10, |s| s.contract.state().current_view == 1);
    let served: SignedMagicBlock =
        serde_json::from_value(sim.contract.query("views/1/magic-block").unwrap()).unwrap();
    assert_eq!(served.signature, Some(sig));
    let h = sim.height + 1;
    let bytes = sim.tx(4, body(1, hash, SignerRole::New, p4));
    rejected(&mut sim.contract, &bytes, h, "no_view_change");
}

#[test]
fn a_silent_member_is_removed_and_the_ceremony_still_succeeds() {
    let mut sim = Sim::new(config(), &[60, 50, 40, 30, 20, 10]);
    sim.faults.insert(
        (1, 0),
        FaultPlan {
            silent: set(&[5]),
            ..Default::default()
        },
    );
    sim.run_until(40, |s| s.contract.state().current_view == 1);
    let block = &sim.contract.view(1).unwrap().magic_block.block;
    // Its shares were revealed (1 <= t - 1 - (n - k) = 2), so the five others qualified.
    assert_eq!(block.members.len(), 5);
    assert!(block.member_by_identity(&hexkey(5).0).is_none());
    let r = &sim.contract.state().slashings;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].fault, "missed_contribution");
    assert_eq!(r[0].role, FaultRole::Dealer);
    assert_eq!(r[0].amount, 0);
    assert!(
        sim.events_where(|e| matches!(e, Event::CeremonyFailed { .. }))
            .is_empty()
    );
}

#[test]
fn a_dealer_whose_players_withheld_acks_is_not_slashed_and_the_withholders_are_named() {
    // n = 7, t = k = 5: f = 2, at most 2 reveals. Nodes 1 and 2 never ack dealer 0 and node
    // 3's ack to it is lost: three uncovered players, so dealer 0 can only publish its acks and
    // is excluded from the attempt. Nothing on the board says whose fault that was.
    let mut cfg = config();
    cfg.committee.max_size = 7;
    cfg.committee.min_size = 7;
    cfg.committee.threshold = Size::Count(5);
    cfg.committee.quorum = Size::Count(5);
    let mut sim = Sim::new(cfg, &[70, 60, 50, 40, 30, 20, 10]);
    sim.faults.insert(
        (1, 0),
        FaultPlan {
            drop_acks_to: BTreeSet::from([(1, 0), (2, 0), (3, 0)]),
            ..Default::default()
        },
    );
    sim.run_until(40, |s| s.contract.state().current_view == 1);
    let committee = match &sim.events_where(|e| matches!(e, Event::CommitteeSelected { .. }))[..] {
        [Event::CommitteeSelected { committee, .. }] => committee.clone(),
        other => panic!("{other:?}"),
    };
    let position = |node: usize| {
        committee
            .iter()
            .position(|c| c.identity == hexkey(node))
            .unwrap() as u32
    };
    assert_eq!(position(0), 0, "node 0 is dealer 0");

    // No penalty for anyone: no slashing record at all, and dealer 0 keeps its seat.
    assert!(
        sim.contract.state().slashings.is_empty(),
        "{:?}",
        sim.contract.state().slashings
    );
    let block = &sim.contract.view(1).unwrap().magic_block.block;
    assert_eq!(block.members.len(), 7);
    assert!(block.member_by_identity(&hexkey(0).0).is_some());

    // Dealer 0 is named for its incomplete publication, and the three players it reports for
    // not acking are named with that publication as evidence.
    let named = &sim.contract.state().named;
    let dealer0: Vec<_> = named
        .iter()
        .filter(|r| r.role == FaultRole::Dealer)
        .collect();
    assert_eq!(dealer0.len(), 1, "{named:?}");
    assert_eq!(dealer0[0].identity, hexkey(0));
    assert_eq!(dealer0[0].fault, "incomplete_publication");
    let withheld: BTreeSet<_> = named
        .iter()
        .filter(|r| r.role == FaultRole::Player && r.fault == "withheld_ack")
        .map(|r| r.identity)
        .collect();
    assert_eq!(withheld, BTreeSet::from([hexkey(1), hexkey(2), hexkey(3)]));
    for r in named.iter().filter(|r| r.role == FaultRole::Player) {
        let EvidenceRecord::Reports { posts } = &r.evidence else {
            panic!("{r:?}")
        };
        assert_eq!(posts.len(), 1);
        let signed = SignedPost::<Group>::decode(&posts[0].0, 7).unwrap();
        let Post::Publication(p) = &signed.post else {
            panic!("not a publication")
        };
        assert_eq!(p.dealer, 0);
        let player = committee
            .iter()
            .position(|c| c.identity == r.identity)
            .unwrap() as u32;
        assert!(!p.acks.contains(&player));
        assert!(identity(0).public().verify(
            Purpose::Post,
            &signed.post.encode(),
            &signed.signature
        ));
    }
    assert_eq!(
        sim.events_where(|e| matches!(e, Event::Named { .. })).len(),
        named.len()
    );
    let queried = sim.contract.query("named").unwrap();
    assert_eq!(queried.as_array().unwrap().len(), named.len());
    let queried = sim.contract.query(&format!("named/{}", hexkey(0))).unwrap();
    assert_eq!(queried[0]["fault"], "incomplete_publication");
    assert_eq!(queried[0]["role"], "dealer");
}

/// Two members down through two rounds of a view change: each round seats them again once
/// the abandoned view change lifts its bans, and each finds them absent, as dealers and as
/// players. Each round costs them `absence_percent` of their stake once, not once per role
/// and ceremony (which took about 19% a ceremony), and every absence is still on record.
#[test]
fn an_outage_is_charged_once_per_round_of_the_view_change() {
    let mut cfg = config();
    cfg.committee.max_size = 5;
    cfg.slashing.absence_percent = 10;
    let stakes = [500, 400, 300, 200, 100];
    let mut sim = Sim::new(cfg, &stakes);
    for ceremony_number in [0, 2] {
        sim.faults.insert(
            (1, ceremony_number),
            FaultPlan {
                silent: set(&[3, 4]),
                ..Default::default()
            },
        );
    }
    sim.run_until(120, |s| s.contract.state().current_view == 1);
    let aborted = sim.events_where(|e| matches!(e, Event::ViewChangeAborted { .. }));
    assert_eq!(aborted.len(), 2, "{aborted:?}");
    for node in [3, 4] {
        let records: Vec<_> = sim
            .contract
            .state()
            .slashings
            .iter()
            .filter(|r| r.identity == hexkey(node) && r.view == 1)
            .collect();
        assert!(records.iter().all(|r| !r.misbehaviour), "{records:?}");
        let ceremonies: BTreeSet<u32> = records.iter().map(|r| r.ceremony_number).collect();
        assert_eq!(ceremonies, BTreeSet::from([0, 2]), "{records:?}");
        // One charge in each round: ceremony 0, then ceremony 2 after the abandoned round.
        let charged: Vec<(u32, u64)> = records
            .iter()
            .filter(|r| r.amount > 0)
            .map(|r| (r.ceremony_number, r.amount))
            .collect();
        let first = stakes[node] / 10;
        let second = (stakes[node] - first) / 10;
        assert_eq!(charged, vec![(0, first), (2, second)], "{records:?}");
        assert!(records.len() > 2, "{records:?}");
        assert_eq!(
            sim.contract.state().nodes[&hexkey(node)].stake,
            stakes[node] - first - second
        );
    }
}

#[test]
fn failed_sessions_retry_then_the_view_change_is_abandoned_and_retried_later() {
    // Five nodes, committees of five: t = 4, k = 4. Two silent nodes: 3 dealers qualify.
    let mut cfg = config();
    cfg.committee.max_size = 5;
    let mut sim = Sim::new(cfg.clone(), &[50, 40, 30, 20, 10]);
    sim.faults.insert(
        (1, 0),
        FaultPlan {
            silent: set(&[3, 4]),
            ..Default::default()
        },
    );
    sim.run_until(40, |s| {
        !s.events_where(|e| matches!(e, Event::ViewChangeAborted { .. }))
            .is_empty()
    });
    // The failed session's culprits are banned: three nodes are left, below min_size = 4.
    let failed = sim.events_where(|e| matches!(e, Event::CeremonyFailed { .. }));
    match failed[..] {
        [
            Event::CeremonyFailed {
                culprits,
                next_ceremony_number: Some(1),
                ..
            },
        ] => assert_eq!(
            culprits.iter().copied().collect::<BTreeSet<_>>(),
            BTreeSet::from([hexkey(3), hexkey(4)])
        ),
        _ => panic!("{failed:?}"),
    }
    let (h, aborted) = sim
        .events
        .iter()
        .find(|(_, e)| matches!(e, Event::ViewChangeAborted { .. }))
        .cloned()
        .unwrap();
    let Event::ViewChangeAborted {
        ceremony_number,
        retry_at,
        ..
    } = aborted
    else {
        unreachable!()
    };
    assert_eq!(ceremony_number, 1);
    assert_eq!(retry_at, h + cfg.retry_delay);
    assert_eq!(sim.contract.state().phase(), ViewChangePhase::Idle);
    // Later, with the bans lifted and everyone online, the view change succeeds, in a session
    // with a new number (so a new session id).
    sim.run_until(60, |s| s.contract.state().current_view == 1);
    let b = &sim.contract.view(1).unwrap().magic_block.block;
    assert_eq!(b.members.len(), 5);
    assert_eq!(b.ceremony_number, 2);

    // With one session per view, a failure abandons the view change at once.
    let mut cfg1 = config();
    cfg1.committee.max_size = 5;
    cfg1.max_ceremonies_per_view = 1;
    let mut sim = Sim::new(cfg1, &[50, 40, 30, 20, 10]);
    sim.faults.insert(
        (1, 0),
        FaultPlan {
            silent: set(&[3, 4]),
            ..Default::default()
        },
    );
    sim.run_until(40, |s| {
        !s.events_where(|e| matches!(e, Event::ViewChangeAborted { .. }))
            .is_empty()
    });
    assert!(matches!(
        sim.events_where(|e| matches!(e, Event::CeremonyFailed { .. }))[..],
        [Event::CeremonyFailed {
            next_ceremony_number: None,
            ..
        }]
    ));
}

#[test]
fn check_tx_is_a_pure_precheck() {
    let mut c = Contract::new(config()).unwrap();
    let reg = sign(&c, 0, register_body(0, 10));
    let before = c.state().clone();
    let hash = c.check_tx(&reg).unwrap();
    assert_eq!(hash, <[u8; 32]>::from(Sha256::digest(&reg)));
    assert_eq!(c.state(), &before);
    c.apply_tx(&reg, 1).unwrap();
    assert_eq!(c.check_tx(&reg).unwrap_err().code(), "stale_nonce");
    // A queued transaction a few nonces ahead is admitted, one far ahead is not.
    let ahead = Transaction::sign(CHAIN, &identity(0), 3, TxBody::AddStake { amount: 1 });
    assert!(c.check_tx(&ahead.encode()).is_ok());
    let far = Transaction::sign(CHAIN, &identity(0), 1000, TxBody::AddStake { amount: 1 });
    assert_eq!(c.check_tx(&far.encode()).unwrap_err().code(), "bad_nonce");
    assert_eq!(
        c.check_tx(&sign(&c, 1, TxBody::AddStake { amount: 1 }))
            .unwrap_err()
            .code(),
        "not_registered"
    );
    assert_eq!(c.check_tx(b"junk").unwrap_err().code(), "malformed");
    let other = Transaction::sign("other", &identity(1), 0, register_body(1, 1));
    assert_eq!(
        c.check_tx(&other.encode()).unwrap_err().code(),
        "bad_signature"
    );
}

#[test]
fn queries() {
    let mut sim = Sim::new(config(), &[60, 50, 40, 30, 20, 10]);
    let c = &sim.contract;
    assert!(c.query("nope").is_none());
    assert!(c.query("views/1").is_none());
    assert!(c.query("views/x").is_none());
    assert!(c.query("views/1/magic-block").is_none());
    assert_eq!(c.query("nodes").unwrap().as_array().unwrap().len(), 6);
    let one = c.query(&format!("nodes/{}", hexkey(2))).unwrap();
    assert_eq!(one["stake"], 40);
    assert!(c.query(&format!("nodes/{}", Hex([1u8; 96]))).is_none());
    assert_eq!(c.query("config").unwrap()["chain_id"], CHAIN);
    assert_eq!(c.query("status").unwrap()["phase"], "idle");
    assert_eq!(c.query("views/current").unwrap()["view"], 0);
    sim.run_until(40, |s| s.contract.state().current_view == 1);
    let c = &sim.contract;
    let st = c.query("status").unwrap();
    assert_eq!(st["view"], 1);
    assert_eq!(st["next_view_change"], c.state().next_start);
    let v = c.query("views/1").unwrap();
    assert_eq!(v["committee"].as_array().unwrap().len(), 6);
    assert_eq!(v["t"], 4);
    assert_eq!(c.query("slashings").unwrap().as_array().unwrap().len(), 0);
    assert_eq!(
        c.query(&format!("slashings/{}", hexkey(0)))
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // The state itself round-trips through JSON (it is plain data).
    let json = serde_json::to_string(c.state()).unwrap();
    let back: keyquorum_contract::ContractState = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, c.state());
    let restored = Contract::from_state(c.config().clone(), back).unwrap();
    assert_eq!(restored.state(), c.state());
}

#[test]
fn invalid_configuration_is_refused() {
    let mut cfg: ContractConfig = config();
    cfg.phases.wait = 0;
    assert!(Contract::new(cfg).is_err());
}

/// A contract in the contribute phase of view 1 with one node's contribution transaction.
fn fixture() -> &'static (Contract, Vec<u8>) {
    static FIXTURE: std::sync::OnceLock<(Contract, Vec<u8>)> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut sim = Sim::new(config(), &[60, 50, 40, 30, 20, 10]);
        sim.step();
        let (i, body) = sim.pending[0].clone();
        let tx = sim.tx(i, body);
        (sim.contract, tx)
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    #[test]
    fn random_bytes_never_change_the_state(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096),
    ) {
        let (c, _) = fixture();
        let mut c = c.clone();
        let h = c.state().last_block.unwrap() + 1;
        proptest::prop_assert!(c.apply_tx(&bytes, h).is_err());
        proptest::prop_assert_eq!(c.state(), fixture().0.state());
    }

    #[test]
    fn damaged_transactions_never_change_the_state(
        flips in proptest::collection::vec(
            (proptest::prelude::any::<usize>(), 1u8..=255),
            1..6,
        ),
    ) {
        let (c, tx) = fixture();
        let mut c = c.clone();
        let mut bytes = tx.clone();
        for (pos, v) in flips {
            let len = bytes.len();
            bytes[pos % len] ^= v;
        }
        let h = c.state().last_block.unwrap() + 1;
        // The signature covers every byte but its own: any change is refused.
        proptest::prop_assert!(c.apply_tx(&bytes, h).is_err());
        proptest::prop_assert_eq!(c.state(), fixture().0.state());
        // The intact transaction is accepted.
        proptest::prop_assert!(c.apply_tx(tx, h).is_ok());
    }
}

#[test]
fn the_contract_can_move_to_a_chain_engine_thread() {
    fn is_send<T: Send + 'static>() {}
    is_send::<Contract>();
}

fn verifiable_key(i: usize) -> keyquorum_crypto::verifiable_encrypt::VerifiableEncryptionPublicKey {
    keyquorum_crypto::verifiable_encrypt::VerifiableEncryptionSecretKey::from_bytes(
        &[i as u8 + 1; 32],
    )
    .unwrap()
    .public_key()
}

#[test]
fn verifiable_keys_are_set_once_and_unique() {
    let mut c = Contract::new(config()).unwrap();
    let unknown = sign(
        &c,
        0,
        TxBody::SetVerifiableKey {
            key: verifiable_key(0),
        },
    );
    rej!(c, &unknown, 1, "not_registered");
    for i in 0..2 {
        let reg = sign(&c, i, register_body(i, 50));
        c.apply_tx(&reg, 1).unwrap();
    }
    let set = sign(
        &c,
        0,
        TxBody::SetVerifiableKey {
            key: verifiable_key(0),
        },
    );
    let ev = c.apply_tx(&set, 2).unwrap();
    assert!(matches!(&ev[..], [Event::VerifiableKeySet { .. }]));
    assert_eq!(
        c.state().nodes[&hexkey(0)].verifiable_key,
        Some(Hex(verifiable_key(0).to_bytes()))
    );
    let again = sign(
        &c,
        0,
        TxBody::SetVerifiableKey {
            key: verifiable_key(5),
        },
    );
    rej!(c, &again, 3, "verifiable_key_already_set");
    let copied = sign(
        &c,
        1,
        TxBody::SetVerifiableKey {
            key: verifiable_key(0),
        },
    );
    rej!(c, &copied, 3, "duplicate_verifiable_key");
}

/// A complaint-variant contract selects only nodes with a verifiable key, names the variant and
/// the keys in the spec, starts in the share phase (deals), and a contract restored from its
/// state mid-ceremony is the same contract.
#[test]
fn complaint_variant_committees_need_verifiable_keys() {
    let mut cfg = config();
    cfg.dkg.variant = keyquorum_contract::config::DkgVariant::Complaint;
    cfg.committee.min_size = 4;
    let mut c = Contract::new(cfg.clone()).unwrap();
    for i in 0..5 {
        let reg = sign(&c, i, register_body(i, 50 - i as u64));
        c.apply_tx(&reg, 1).unwrap();
        // Node 2 never sets its key.
        if i != 2 {
            let set = sign(
                &c,
                i,
                TxBody::SetVerifiableKey {
                    key: verifiable_key(i),
                },
            );
            c.apply_tx(&set, 1).unwrap();
        }
    }
    let events = c.end_block(1);
    let events: Vec<Event> = events.into_iter().chain(c.end_block(2)).collect();
    let spec = events
        .iter()
        .find_map(|e| match e {
            Event::CommitteeSelected { spec, .. } => Some(spec.clone()),
            _ => None,
        })
        .expect("a committee without node 2");
    assert_eq!(
        spec.variant,
        keyquorum_contract::config::DkgVariant::Complaint
    );
    assert_eq!(spec.n, 4);
    assert!(spec.players.iter().all(|p| p.identity != hexkey(2)));
    let keys: Vec<_> = [0usize, 1, 3, 4]
        .iter()
        .map(|i| Hex(verifiable_key(*i).to_bytes()))
        .collect();
    assert_eq!(spec.verifiable_keys, keys);
    assert_eq!(c.state().phase(), ViewChangePhase::Share);
    assert!(c.complaint_board().is_some() && c.board().is_none());
    let restored = Contract::from_state(cfg, c.state().clone()).unwrap();
    assert_eq!(
        restored.complaint_board().map(|b| b.phase()),
        c.complaint_board().map(|b| b.phase())
    );
}
