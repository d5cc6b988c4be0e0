//! A signing key that lives as long as the chain (`[dkg.signing_key] lifetime = "chain"`), in
//! one process: view 1's committee makes the key, and each later view's ceremony reshares it
//! from the holders recorded with the last key to the new committee, which keeps the group key.
//! The committee changes between the views (a member leaves, another joins), so the member that
//! leaves deals without playing and the one that joins plays without dealing; the new shares
//! sign by FROST under the first view's group key. A chain that names another key's holders
//! in the reshare gets no participant.

use keyquorum_contract::config::{KeyMode, SigningKeyConfig};
use keyquorum_contract::hex::Hex;
use keyquorum_contract::signing_key::{
    SigningCurve, SigningKeyRecord, SigningKeyReshare, signing_ceremony,
};
use keyquorum_contract::tx::TxBody;
use keyquorum_contract::{ContractConfig, Event};
use keyquorum_crypto::Curve;
use keyquorum_crypto::frost::{self, Mode};
use keyquorum_node::sign::frost::{FrostView, NonceDb, Scheme, Session, answer};

use crate::common;

use common::Harness;

/// Five nodes for four seats: the fifth joins in view 2 by adding stake, the fourth leaves.
const STAKES: [u64; 5] = [100, 99, 98, 97, 10];
const LEAVER: usize = 3;
const JOINER: usize = 4;

/// The members' clock for the nonce store (Unix ms).
const NOW_MS: u64 = 1_800_000_000_000;

fn config() -> ContractConfig {
    let mut c = common::small_network("signing-key-reshare", 4, 3, KeyMode::Reshare);
    c.committee.keep_previous_percent = 0;
    c.view_length = 40;
    c.dkg.signing_key = Some(SigningKeyConfig::SECP256K1_FROST_RESHARED);
    c
}

fn created(h: &Harness, view: u64) -> Option<SigningKeyRecord> {
    h.events().find_map(|e| match e {
        Event::SigningKeyCreated { view: v, key } if *v == view => Some(key.clone()),
        _ => None,
    })
}

fn started(h: &Harness, view: u64) -> Option<Option<SigningKeyReshare>> {
    h.events().find_map(|e| match e {
        Event::SigningKeyStarted {
            view: v, reshare, ..
        } if *v == view => Some(reshare.clone()),
        _ => None,
    })
}

/// The harness index of each member of `key`, in the key's member order.
fn holders(h: &Harness, key: &SigningKeyRecord) -> Vec<usize> {
    key.members
        .iter()
        .map(|m| h.index_of(&m.identity.0))
        .collect()
}

/// A FROST signature on `message` by the first `threshold` holders of `view`'s key.
fn sign(h: &Harness, view: u64, scheme: Scheme, message: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let key = created(h, view).unwrap();
    let nodes = holders(h, &key);
    let mut views = Vec::new();
    let mut dbs = Vec::new();
    for &i in &nodes {
        let (held, share) = h.driver(i).signing_key(view).unwrap().unwrap();
        views.push(FrostView::new(view, &held.key, held.own_position.zip(share)).unwrap());
        dbs.push(NonceDb::open(&dir.path().join(format!("n{i}.redb")), h.keys[i].clone()).unwrap());
    }
    let coordinator = &views[0];
    let from = h.keys[nodes[0]].identity().public().to_bytes().to_vec();
    let ask = |p: usize, payload: &[u8]| {
        answer(
            Some(&views[p]),
            Some(&dbs[p]),
            &views[p].session(),
            Some(&from),
            payload,
            &[p as u8 + 1; 64],
            NOW_MS,
        )
    };
    let mut session = Session::new(coordinator, scheme, message.to_vec(), [view as u8; 32]);
    let commit = session.commit_request(coordinator);
    for p in 0..coordinator.threshold() {
        session
            .take_commitment(coordinator, p, &ask(p, &commit))
            .unwrap();
    }
    let request = session.sign_request(coordinator).unwrap();
    for p in 0..coordinator.threshold() {
        session
            .take_share(coordinator, p, &ask(p, &request))
            .unwrap();
    }
    session.finish(coordinator).unwrap().signature
}

fn in_key(h: &Harness, key: &SigningKeyRecord, i: usize) -> bool {
    holders(h, key).contains(&i)
}

#[test]
fn a_chain_lifetime_signing_key_is_reshared_to_each_new_committee() {
    let mut h = Harness::new(config(), &STAKES);
    h.set_verifiable_keys();
    h.run_until(120, |h| created(h, 1).is_some());
    let first = created(&h, 1).unwrap();
    assert_eq!(started(&h, 1), Some(None), "view 1 makes a new key");
    assert!(in_key(&h, &first, LEAVER) && !in_key(&h, &first, JOINER));

    h.pending.push((JOINER, TxBody::AddStake { amount: 1000 }));
    // The member that left deals in view 2's reshare: its stake stays locked until the
    // ceremony ends, so it cannot deregister to escape a fault it commits there. Its
    // deregistration is only scheduled.
    h.run_until(200, |h| started(h, 2).is_some());
    h.pending.push((LEAVER, TxBody::Deregister));
    h.step();
    let refused = h
        .blocks
        .last()
        .unwrap()
        .txs
        .iter()
        .find_map(|t| t.rejected.clone());
    assert_eq!(refused, None);
    let leaver = Hex(h.keys[LEAVER].identity().public().to_bytes());
    let account = h.contract.account(&leaver);
    assert!(account.registered && account.leaving && account.stake > 0);
    h.run_until(200, |h| created(h, 2).is_some());
    let second = created(&h, 2).unwrap();
    // The committee changed, and the key did not.
    assert!(!in_key(&h, &second, LEAVER) && in_key(&h, &second, JOINER));
    assert_eq!(second.group_key, first.group_key);
    assert_ne!(second.session_id, first.session_id);
    // The reshare named view 1's holders, with their public key shares; the one that left
    // dealt (every holder qualified) and holds no share of the new key.
    let reshare = started(&h, 2).unwrap().expect("view 2 reshares");
    assert_eq!(reshare.from_view, 1);
    assert_eq!(reshare.old_threshold, first.threshold);
    assert_eq!(
        reshare
            .dealers
            .iter()
            .map(|d| d.identity)
            .collect::<Vec<_>>(),
        first.members.iter().map(|m| m.identity).collect::<Vec<_>>()
    );
    assert_eq!(
        second.dealers,
        reshare
            .dealers
            .iter()
            .map(|d| d.identity)
            .collect::<Vec<_>>()
    );
    assert_eq!(second.qualified, vec![0, 1, 2, 3]);
    assert!(second.excluded.is_empty(), "{:?}", second.excluded);
    let (held, share) = h.driver(LEAVER).signing_key(2).unwrap().unwrap();
    assert_eq!(held.key, second);
    assert!(held.own_position.is_none() && share.is_none());
    // Every new member holds the share its public key share names.
    for (m, i) in second.members.iter().zip(holders(&h, &second)) {
        let (held, share) = h.driver(i).signing_key(2).unwrap().unwrap();
        assert_eq!(held.key, second, "node {i}");
        let share = share.unwrap_or_else(|| panic!("node {i} holds no share"));
        let public = SigningCurve::mul_generator(share.expose()).to_affine();
        assert_eq!(
            SigningCurve::point_bytes(&public),
            m.public_share.0.to_vec()
        );
    }

    // The new committee signs under the first view's key, in both schemes.
    let group_key = SigningCurve::decode_point(&first.group_key.0).unwrap();
    let message = b"the same key after the committee changed";
    let sig = frost::Signature::from_bytes(&sign(&h, 2, Scheme::Frost, message)).unwrap();
    frost::verify(Mode::Rfc9591, &group_key, message, &sig).unwrap();
    let sig = sign(&h, 2, Scheme::Bip340, message);
    let x_only = frost::bip340::x_only(&group_key).unwrap();
    let vk = k256::schnorr::VerifyingKey::from_bytes(&x_only).unwrap();
    vk.verify_raw(
        message,
        &k256::schnorr::Signature::try_from(&sig[..]).unwrap(),
    )
    .unwrap();

    // And the next view reshares view 2's key, not view 1's.
    h.run_until(200, |h| created(h, 3).is_some());
    assert_eq!(started(&h, 3).unwrap().unwrap().from_view, 2);
    assert_eq!(created(&h, 3).unwrap().group_key, first.group_key);
    // Its stake free since view 2's reshare ended, the member that left is deregistered.
    assert!(!h.contract.account(&leaver).registered);
}

/// A chain that names holders of another key in the reshare (here one public key share
/// swapped for another point, the session id made to match) gets no deal and no post from
/// anyone: every node checks the reshare against the key it recorded itself.
#[test]
fn a_reshare_of_a_key_the_nodes_did_not_record_is_refused() {
    let mut h = Harness::new(config(), &STAKES);
    h.set_verifiable_keys();
    h.run_until(120, |h| created(h, 1).is_some());
    let posts_before: Vec<usize> = (0..STAKES.len()).map(|i| signing_posts(&h, i)).collect();
    h.tamper = Some(Box::new(|e: &mut Event| {
        if let Event::SigningKeyStarted {
            session_id,
            spec,
            reshare: Some(r),
            ..
        } = e
        {
            let forged = SigningCurve::mul_generator(&<SigningCurve as Curve>::Scalar::from(7u64));
            r.public_shares[0] = Hex(SigningCurve::point_bytes(&forged.to_affine())
                .try_into()
                .unwrap());
            *session_id = Hex(*signing_ceremony(spec, Some(r)).unwrap().id());
        }
    }));
    h.run_until(200, |h| started(h, 2).is_some());
    for _ in 0..30 {
        h.step();
    }
    for (i, before) in posts_before.into_iter().enumerate() {
        assert_eq!(signing_posts(&h, i), before, "node {i} took part");
        assert!(h.driver(i).signing_key(2).unwrap().is_none(), "node {i}");
    }
}

fn signing_posts(h: &Harness, i: usize) -> usize {
    h.submitted[i]
        .iter()
        .filter(|b| matches!(b, TxBody::SigningKeyPost { .. }))
        .count()
}

/// A chain that lowers the signing key's threshold (so that each dealer's constant term
/// would reach a single player nearly in the clear), or that swaps two players'
/// verifiable-encryption keys (so that pairs are encrypted to keys of its choosing), gets no
/// deal and no post: every node checks the thresholds against the view's and each player's
/// key against the one it set on chain.
#[test]
fn a_signing_key_spec_with_a_lower_threshold_or_other_keys_is_refused() {
    type Tamper = fn(&mut keyquorum_contract::state::CeremonySpec);
    // Valid parameters (`t + k > n` holds with every dealer needed), and each dealer's
    // polynomial a constant.
    let lower: Tamper = |spec| (spec.t, spec.k) = (1, spec.n);
    let swap: Tamper = |spec| spec.verifiable_keys.swap(0, 1);
    for (what, tamper) in [("threshold", lower), ("verifiable keys", swap)] {
        let mut h = Harness::new(config(), &STAKES);
        h.set_verifiable_keys();
        h.tamper = Some(Box::new(move |e: &mut Event| {
            if let Event::SigningKeyStarted {
                session_id,
                spec,
                reshare,
                ..
            } = e
            {
                tamper(spec);
                *session_id = Hex(*signing_ceremony(spec, reshare.as_ref()).unwrap().id());
            }
        }));
        h.run_until(120, |h| started(h, 1).is_some());
        for _ in 0..30 {
            h.step();
        }
        for i in 0..STAKES.len() {
            assert_eq!(signing_posts(&h, i), 0, "{what}: node {i} took part");
            assert!(
                h.driver(i).signing_key(1).unwrap().is_none(),
                "{what}: node {i}"
            );
        }
    }
}

/// A holder whose share of the key is gone (here deleted from its database between the
/// views) does not deal another constant term, which would be a proven fault: it plays only.
/// The other holders reshare the key, and the one that lost its share holds a share of it
/// again, one that matches its public key share.
#[test]
fn a_holder_that_lost_its_share_plays_only_and_receives_a_new_one() {
    use keyquorum_node::store::Store;
    const LOST: usize = 0;
    let mut h = Harness::new(config(), &STAKES);
    h.set_verifiable_keys();
    h.run_until(120, |h| created(h, 1).is_some());
    let first = created(&h, 1).unwrap();
    assert!(in_key(&h, &first, LOST));
    h.drivers[LOST] = None;
    {
        let store = Store::open(&h.paths[LOST]).unwrap();
        let mut batch = store.begin().unwrap();
        batch.delete_secret("signing-share/1").unwrap();
        batch.commit().unwrap();
    }
    let effects = h.reopen(LOST);
    h.apply(LOST, effects);
    assert!(h.driver(LOST).signing_key(1).unwrap().unwrap().1.is_none());

    h.run_until(200, |h| created(h, 2).is_some());
    let second = created(&h, 2).unwrap();
    assert_eq!(second.group_key, first.group_key);
    let lost = h.keys[LOST].identity().public().to_bytes();
    let position = second.dealers.iter().position(|d| d.0 == lost).unwrap() as u32;
    assert!(!second.qualified.contains(&position), "{second:?}");
    // It dealt nothing: no commitment of its own reached any player.
    assert!(
        !second
            .excluded
            .iter()
            .any(|e| e.identity.0 == lost && e.fault == "equivocation"),
        "{:?}",
        second.excluded
    );
    let (held, share) = h.driver(LOST).signing_key(2).unwrap().unwrap();
    let share = share.expect("a share of the reshared key");
    let member = held.own_position.unwrap() as usize;
    let public = SigningCurve::mul_generator(share.expose()).to_affine();
    assert_eq!(
        SigningCurve::point_bytes(&public),
        second.members[member].public_share.0.to_vec()
    );
}
