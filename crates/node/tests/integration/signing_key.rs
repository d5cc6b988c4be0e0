//! A view's secp256k1 signing key, in one process: drivers follow a contract configured with
//! `[dkg.signing_key]`; after view 1 activates, its committee runs the complaint ceremony on
//! secp256k1 with key-hash indices (deals point to point, posts through the contract), the
//! contract records the key, and every driver holds the same record, checked against its own
//! board, with a share that matches its public key share. The shares then sign by FROST
//! through the node's round functions (no network): an RFC 9591 signature and a BIP-340
//! signature that verify, and bad round inputs (another session, a spoofed sender, a tampered
//! share package, named as the culprit; a round two from a coordinator that did not ask) are
//! refused.

use keyquorum_contract::config::{KeyMode, SigningKeyConfig};
use keyquorum_contract::signing_key::{SigningCurve, SigningKeyRecord};
use keyquorum_contract::{ContractConfig, Event};
use keyquorum_crypto::Curve;
use keyquorum_crypto::frost::{self, Mode};
use keyquorum_crypto::index;
use keyquorum_node::sign::frost::{
    AttemptError, FrostRefusal, FrostView, NONCE_TTL_MS, NonceDb, Scheme, Session, SignerFault,
    TakeError, answer, parse_answer,
};

use crate::common;

use common::Harness;

const N: usize = 4;

/// The members' clock for the nonce store (Unix ms).
const NOW_MS: u64 = 1_800_000_000_000;

fn config() -> ContractConfig {
    let mut c = common::small_network("signing-key-test", N as u32, 3, KeyMode::Reshare);
    c.view_length = 200;
    c.dkg.signing_key = Some(SigningKeyConfig::SECP256K1_FROST);
    c
}

fn created(h: &Harness) -> Option<SigningKeyRecord> {
    h.events().find_map(|e| match e {
        Event::SigningKeyCreated { view: 1, key } => Some(key.clone()),
        _ => None,
    })
}

/// Each node's view of the key, with its share, and a nonce store per node.
fn views(h: &Harness) -> (Vec<FrostView>, Vec<NonceDb>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut views = Vec::new();
    let mut dbs = Vec::new();
    for i in 0..N {
        let (held, share) = h.driver(i).signing_key(1).unwrap().unwrap();
        let share = held.own_position.zip(share);
        views.push(FrostView::new(1, &held.key, share).unwrap());
        let path = dir.path().join(format!("nonces{i}.redb"));
        dbs.push(NonceDb::open(&path, h.keys[i].clone()).unwrap());
    }
    (views, dbs, dir)
}

fn identity(h: &Harness, i: usize) -> Vec<u8> {
    h.keys[i].identity().public().to_bytes().to_vec()
}

/// Member `i`'s answer to `payload` sent by member `from`.
fn ask(
    h: &Harness,
    views: &[FrostView],
    dbs: &[NonceDb],
    i: usize,
    from: usize,
    payload: &[u8],
) -> Vec<u8> {
    let randomness = [i as u8 + 1; 64];
    answer(
        Some(&views[i]),
        Some(&dbs[i]),
        &views[i].session(),
        Some(&identity(h, from)),
        payload,
        &randomness,
        NOW_MS,
    )
}

/// Member 0 coordinates with members 0..t: the signature.
fn sign(
    h: &Harness,
    views: &[FrostView],
    dbs: &[NonceDb],
    scheme: Scheme,
    message: &[u8],
    id: [u8; 32],
) -> Vec<u8> {
    let v = &views[0];
    let mut session = Session::new(v, scheme, message.to_vec(), id);
    let commit = session.commit_request(v);
    for i in 0..v.threshold() {
        let a = ask(h, views, dbs, i, 0, &commit);
        session.take_commitment(v, i, &a).unwrap();
    }
    let request = session.sign_request(v).unwrap();
    for i in 0..v.threshold() {
        let a = ask(h, views, dbs, i, 0, &request);
        session.take_share(v, i, &a).unwrap();
    }
    session.finish(v).unwrap().signature
}

#[test]
fn a_views_committee_makes_a_secp256k1_key_with_key_hash_indices_and_signs_with_frost() {
    let stakes: Vec<u64> = (0..N as u64).map(|i| 100 - i).collect();
    let mut h = Harness::new(config(), &stakes);
    h.set_verifiable_keys();
    h.run_until(150, |h| created(h).is_some());
    let key = created(&h).unwrap();
    // On chain with the view, from the contract's board.
    assert_eq!(h.contract.view(1).unwrap().signing_key.as_ref(), Some(&key));
    assert_eq!(key.members.len(), N);
    assert_eq!(key.threshold, 3);
    // Key-hash indices: Keccak-256 of each identity key, below the secp256k1 order.
    for m in &key.members {
        let x = index::from_public_key::<SigningCurve>(&m.identity.0);
        assert_eq!(m.index.0, SigningCurve::encode_scalar(&x));
    }
    // Only reports and Feldman values went on chain: nobody misbehaved, nobody is excluded.
    assert!(key.excluded.is_empty(), "{:?}", key.excluded);
    assert_eq!(key.qualified, (0..N as u32).collect::<Vec<_>>());
    assert!(h.events().all(|e| !matches!(
        e,
        Event::SigningKeyBoardPost {
            accepted: false,
            ..
        }
    )));
    for i in 0..N {
        let held = h.driver(i).signing_key(1).unwrap().unwrap();
        assert_eq!(held.0.key, key, "node {i}");
        assert!(
            held.0.own_position.is_some() && held.1.is_some(),
            "node {i}"
        );
    }
    let (views, dbs, _dir) = views(&h);
    for v in &views {
        assert!(v.is_member());
        assert_eq!(hex::encode(v.group_key()), hex::encode(key.group_key.0));
    }
    let group_key = SigningCurve::decode_point(&key.group_key.0).unwrap();

    let message = b"keyquorum signs with its secp256k1 key";
    let sig = sign(&h, &views, &dbs, Scheme::Frost, message, [1; 32]);
    let sig = frost::Signature::from_bytes(&sig).unwrap();
    frost::verify(Mode::Rfc9591, &group_key, message, &sig).unwrap();
    assert!(frost::verify(Mode::Rfc9591, &group_key, b"another message", &sig).is_err());

    let sig = sign(&h, &views, &dbs, Scheme::Bip340, message, [2; 32]);
    let x_only = frost::bip340::x_only(&group_key).unwrap();
    let vk = k256::schnorr::VerifyingKey::from_bytes(&x_only).unwrap();
    let sig = k256::schnorr::Signature::try_from(&sig[..]).unwrap();
    vk.verify_raw(message, &sig).unwrap();
    // Every nonce pair was spent.
    for db in &dbs {
        assert_eq!(db.pending().unwrap(), 0);
    }

    // Refusals.
    let v = &views[0];
    let mut session = Session::new(v, Scheme::Frost, message.to_vec(), [3; 32]);
    let commit = session.commit_request(v);
    // Another network session, and a sender outside the committee.
    let outsider = answer(
        Some(&views[1]),
        Some(&dbs[1]),
        &[9; 32],
        Some(&identity(&h, 0)),
        &commit,
        &[0; 64],
        NOW_MS,
    );
    assert_eq!(parse_answer(&outsider), Err(Some(FrostRefusal::OtherView)));
    let stranger = answer(
        Some(&views[1]),
        Some(&dbs[1]),
        &views[1].session(),
        Some(&[7; 96]),
        &commit,
        &[0; 64],
        NOW_MS,
    );
    assert_eq!(parse_answer(&stranger), Err(Some(FrostRefusal::OtherView)));
    // Garbage.
    let garbage = ask(&h, &views, &dbs, 1, 0, &[2, 0, 0]);
    assert_eq!(parse_answer(&garbage), Err(Some(FrostRefusal::Malformed)));
    // A commitment of member 1 presented as member 2's: the signer field is not the sender.
    let a1 = ask(&h, &views, &dbs, 1, 0, &commit);
    assert!(matches!(
        session.take_commitment(v, 2, &a1),
        Err(TakeError::Rejected(_))
    ));
    session.take_commitment(v, 1, &a1).unwrap();
    // A commitment for another signing session.
    let other = Session::new(v, Scheme::Frost, message.to_vec(), [4; 32]);
    let a2_other = ask(&h, &views, &dbs, 2, 0, &other.commit_request(v));
    assert!(matches!(
        session.take_commitment(v, 2, &a2_other),
        Err(TakeError::Rejected(_))
    ));
    let a0 = ask(&h, &views, &dbs, 0, 0, &commit);
    session.take_commitment(v, 0, &a0).unwrap();
    let a2 = ask(&h, &views, &dbs, 2, 0, &commit);
    assert!(session.take_commitment(v, 2, &a2).unwrap());
    let request = session.sign_request(v).unwrap();
    // Round two from a member that did not ask for the nonces finds none (and spends none).
    let hijack = ask(&h, &views, &dbs, 1, 3, &request);
    assert_eq!(parse_answer(&hijack), Err(Some(FrostRefusal::NoNonces)));
    for i in [0, 1] {
        let a = ask(&h, &views, &dbs, i, 0, &request);
        session.take_share(v, i, &a).unwrap();
    }
    // A tampered share package: taken (it decodes and names its sender), then the signature
    // fails and names the culprit.
    let mut a = ask(&h, &views, &dbs, 2, 0, &request);
    let last = a.len() - 1;
    a[last] ^= 1;
    let fault = match session.take_share(v, 2, &a) {
        Err(TakeError::Malformed) => SignerFault::Malformed,
        Ok(()) => SignerFault::InvalidShare,
        Err(e) => panic!("{e}"),
    };
    match session.finish(v).unwrap_err() {
        AttemptError::Culprits(c) => {
            assert_eq!(c.len(), 1);
            assert_eq!((c[0].position, c[0].fault), (2, fault));
            assert_eq!(c[0].identity, identity(&h, 2));
        }
        e => panic!("{e}"),
    }
    // A second round two on the same nonces finds none.
    let again = ask(&h, &views, &dbs, 0, 0, &request);
    assert_eq!(parse_answer(&again), Err(Some(FrostRefusal::NoNonces)));

    // The nonce store's bounds. Nonces kept past their time are not used: a late round two
    // finds none.
    let small_dir = tempfile::tempdir().unwrap();
    let small = NonceDb::open(&small_dir.path().join("small.redb"), h.keys[1].clone())
        .unwrap()
        .with_limits(2, 8);
    let member1 = |payload: &[u8], at: u64| {
        answer(
            Some(&views[1]),
            Some(&small),
            &views[1].session(),
            Some(&identity(&h, 0)),
            payload,
            &[5; 64],
            at,
        )
    };
    let mut late = Session::new(v, Scheme::Frost, message.to_vec(), [5; 32]);
    let commit = late.commit_request(v);
    for i in [0, 2] {
        let a = ask(&h, &views, &dbs, i, 0, &commit);
        late.take_commitment(v, i, &a).unwrap();
    }
    late.take_commitment(v, 1, &member1(&commit, NOW_MS))
        .unwrap();
    let request = late.sign_request(v).unwrap();
    let expired = member1(&request, NOW_MS + NONCE_TTL_MS);
    assert_eq!(parse_answer(&expired), Err(Some(FrostRefusal::NoNonces)));
    // A full store refuses commitments until its entries age out.
    let commit_for =
        |id: u8| Session::new(v, Scheme::Frost, message.to_vec(), [id; 32]).commit_request(v);
    assert!(parse_answer(&member1(&commit_for(10), NOW_MS)).is_ok());
    assert!(parse_answer(&member1(&commit_for(11), NOW_MS)).is_ok());
    let full = member1(&commit_for(12), NOW_MS);
    assert_eq!(
        parse_answer(&full),
        Err(Some(FrostRefusal::CoordinatorFull))
    );
    assert_eq!(small.pending().unwrap(), 2);
    let later = member1(&commit_for(12), NOW_MS + NONCE_TTL_MS);
    assert!(parse_answer(&later).is_ok());
    assert_eq!(small.pending().unwrap(), 1, "the old entries are gone");
    // The used sessions are bounded per coordinator too.
    let used_dir = tempfile::tempdir().unwrap();
    let few = NonceDb::open(&used_dir.path().join("few.redb"), h.keys[1].clone())
        .unwrap()
        .with_limits(8, 2);
    let member1_few = |payload: &[u8]| {
        answer(
            Some(&views[1]),
            Some(&few),
            &views[1].session(),
            Some(&identity(&h, 0)),
            payload,
            &[6; 64],
            NOW_MS,
        )
    };
    assert!(parse_answer(&member1_few(&commit_for(20))).is_ok());
    assert!(parse_answer(&member1_few(&commit_for(21))).is_ok());
    // Past its share of used marks, the coordinator's oldest mark makes room; the pair still
    // waiting for that session refuses a second commit for it all the same.
    assert!(parse_answer(&member1_few(&commit_for(22))).is_ok());
    assert_eq!(few.pending().unwrap(), 3);
    assert_eq!(
        parse_answer(&member1_few(&commit_for(20))),
        Err(Some(FrostRefusal::SessionUsed))
    );
    // A store restored from a backup forgets the nonces waiting for a round two: one of them
    // may have been used since the backup, and a second use with another binding factor
    // reveals the share.
    let restored_dir = tempfile::tempdir().unwrap();
    let restored = NonceDb::open(
        &restored_dir.path().join("restored.redb"),
        h.keys[1].clone(),
    )
    .unwrap();
    let member1_restored = |payload: &[u8]| {
        answer(
            Some(&views[1]),
            Some(&restored),
            &views[1].session(),
            Some(&identity(&h, 0)),
            payload,
            &[7; 64],
            NOW_MS,
        )
    };
    let mut pending = Session::new(v, Scheme::Frost, message.to_vec(), [30; 32]);
    let commit = pending.commit_request(v);
    for i in [0, 2] {
        let a = ask(&h, &views, &dbs, i, 0, &commit);
        pending.take_commitment(v, i, &a).unwrap();
    }
    pending
        .take_commitment(v, 1, &member1_restored(&commit))
        .unwrap();
    assert_eq!(restored.pending().unwrap(), 1);
    assert_eq!(restored.forget_pending().unwrap(), 1);
    let request = pending.sign_request(v).unwrap();
    let after_restore = member1_restored(&request);
    assert_eq!(
        parse_answer(&after_restore),
        Err(Some(FrostRefusal::NoNonces))
    );
}

/// A member killed during the signing-key ceremony's deal phase and reopened on its database
/// replays it from its sealed seed and logged inputs: it sends the same deals again, byte for
/// byte, and ends with the same key and a share of it.
#[test]
fn a_member_killed_during_the_signing_key_ceremony_resumes_by_replay() {
    use keyquorum_node::driver::Effect;
    const CRASH: usize = 2;
    let stakes: Vec<u64> = (0..N as u64).map(|i| 100 - i).collect();
    let mut h = Harness::new(config(), &stakes);
    h.set_verifiable_keys();
    h.run_until(100, |h| {
        h.events()
            .any(|e| matches!(e, Event::SigningKeyStarted { .. }))
    });
    let before = h.sent[CRASH].clone();
    h.drivers[CRASH] = None;
    h.step();
    let effects = h.reopen(CRASH);
    let resent: Vec<(Vec<u8>, Vec<u8>)> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { to, payload, .. } => Some((to.clone(), payload.clone())),
            _ => None,
        })
        .collect();
    // Its signing-key deals, sent before the crash, are sent again unchanged.
    let signing_deals: Vec<_> = before.iter().filter(|m| resent.contains(m)).collect();
    assert_eq!(signing_deals.len(), N - 1, "{} resent", resent.len());
    h.apply(CRASH, effects);
    h.run_until(150, |h| created(h).is_some());
    let key = created(&h).unwrap();
    for i in 0..N {
        let (held, share) = h.driver(i).signing_key(1).unwrap().unwrap();
        assert_eq!(held.key, key, "node {i}");
        assert!(share.is_some(), "node {i}");
    }
}

/// A chain that leaves an honest member out of the signing-key ceremony, and announces the
/// session its shortened spec makes, gets nobody to take part: each member checks the players
/// against the view's magic block (less those a signing-key slashing makes sit out) before it
/// deals. Untampered, the same run makes the key (the tests above).
#[test]
fn a_signing_key_spec_without_a_member_of_the_view_is_refused() {
    use keyquorum_contract::hex::Hex;
    use keyquorum_contract::signing_key::signing_ceremony;
    use keyquorum_contract::tx::TxBody;
    let stakes: Vec<u64> = (0..N as u64).map(|i| 100 - i).collect();
    let mut h = Harness::new(config(), &stakes);
    h.set_verifiable_keys();
    h.tamper = Some(Box::new(|e: &mut Event| {
        if let Event::SigningKeyStarted {
            session_id, spec, ..
        } = e
        {
            spec.players.pop();
            spec.verifiable_keys.pop();
            let params = config().params_for(spec.players.len()).unwrap();
            (spec.n, spec.t, spec.k) = (params.n() as u32, params.t() as u32, params.k() as u32);
            *session_id = Hex(*signing_ceremony(spec, None).unwrap().id());
        }
    }));
    h.run_until(100, |h| {
        h.events()
            .any(|e| matches!(e, Event::SigningKeyStarted { .. }))
    });
    for _ in 0..20 {
        h.step();
    }
    for i in 0..N {
        assert!(
            !h.submitted[i]
                .iter()
                .any(|b| matches!(b, TxBody::SigningKeyPost { .. })),
            "node {i} took part"
        );
        assert!(h.driver(i).signing_key(1).unwrap().is_none(), "node {i}");
    }
}
