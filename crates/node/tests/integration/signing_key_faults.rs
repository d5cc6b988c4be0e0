//! Seed 003's dealer faults in a view's signing-key ceremony, in one process: seven drivers
//! follow a contract with `[dkg.signing_key]` (t = k = 5), honest in the view change; in the
//! signing-key ceremony one sends a member a deal under a second signed commitment
//! (`signing-key-equivocate`), one withholds its deal from a member and does not send it again
//! on the board (`signing-key-withhold`), one posts no Feldman commitment
//! (`signing-key-skip-feldman`). The record names each with the board's fault (equivocation,
//! missing justification, missed Feldman), the first two are not qualified and hold no share,
//! the third stays qualified (its contribution reconstructed) and holds one, and the honest
//! members' shares sign a BIP-340 signature that verifies under the key. Each of the three is
//! slashed, on proof the chain holds (the equivocator at the misbehaviour rate, the other two
//! at the absence rate), the record names the penalty, every node computes the same record,
//! and no honest stake changes.

use keyquorum_contract::config::{KeyMode, SigningKeyConfig};
use keyquorum_contract::signing_key::{SigningCurve, SigningKeyPenalty, SigningKeyRecord};
use keyquorum_contract::state::{FaultCeremony, FaultRole};
use keyquorum_contract::{Event, Size};
use keyquorum_crypto::Curve;
use keyquorum_crypto::frost;
use keyquorum_node::Fault;
use keyquorum_node::sign::frost::{FrostView, NonceDb, Scheme, Session, answer};

use crate::common;

use common::Harness;

const N: usize = 7;
const NOW_MS: u64 = 1_800_000_000_000;

fn created(h: &Harness) -> Option<SigningKeyRecord> {
    h.events().find_map(|e| match e {
        Event::SigningKeyCreated { view: 1, key } => Some(key.clone()),
        _ => None,
    })
}

#[test]
fn each_seed_003_dealer_fault_is_excluded_with_its_reason_and_the_key_still_signs() {
    let mut c = common::small_network("signing-key-faults", N as u32, 5, KeyMode::Reshare);
    c.committee.min_size = N as u32;
    c.committee.threshold = Size::Count(5);
    c.view_length = 200;
    c.dkg.signing_key = Some(SigningKeyConfig::SECP256K1_FROST);
    c.slashing.misbehaviour_percent = 10;
    c.slashing.absence_percent = 5;
    let stakes: Vec<u64> = (0..N as u64).map(|i| 1000 - i).collect();
    let mut h = Harness::new(c, &stakes);
    let faults = [
        (2, Fault::SigningKeyEquivocate, "equivocation"),
        (4, Fault::SigningKeyWithhold, "missing_justification"),
        (6, Fault::SigningKeySkipFeldman, "missed_feldman"),
    ];
    for (i, fault, _) in faults {
        h.set_fault(i, fault);
    }
    h.set_verifiable_keys();
    h.run_until(250, |h| created(h).is_some());
    let key = created(&h).unwrap();
    let position = |i: usize| {
        let id = h.keys[i].identity().public().to_bytes();
        key.members.iter().position(|m| m.identity.0 == id).unwrap() as u32
    };
    for (i, _, code) in faults {
        let p = position(i);
        let excluded = key
            .excluded
            .iter()
            .find(|e| e.role == FaultRole::Dealer && e.position == p)
            .unwrap_or_else(|| panic!("node {i} not excluded as a dealer: {:?}", key.excluded));
        assert_eq!(excluded.fault, code, "node {i}: {}", excluded.detail);
        assert_eq!(excluded.identity, key.members[p as usize].identity);
    }
    // Each culprit is slashed once, at its fault's rate, from its stake; nobody else is.
    let state = h.contract.state();
    let slashed: Vec<_> = state
        .slashings
        .iter()
        .filter(|r| r.ceremony == FaultCeremony::SigningKey)
        .collect();
    assert_eq!(slashed.len(), faults.len(), "{slashed:?}");
    for (i, _, code) in faults {
        let id = h.keys[i].identity().public().to_bytes();
        let r = slashed
            .iter()
            .find(|r| r.identity.0 == id)
            .unwrap_or_else(|| panic!("node {i} not slashed: {slashed:?}"));
        let (misbehaviour, percent, penalty) = match code {
            "equivocation" => (true, 10, SigningKeyPenalty::Misbehaviour),
            _ => (false, 5, SigningKeyPenalty::Absence),
        };
        assert_eq!(
            (r.view, r.role, r.fault.as_str(), r.misbehaviour),
            (1, FaultRole::Dealer, code, misbehaviour),
            "node {i}"
        );
        assert_eq!(r.amount, stakes[i] * percent / 100, "node {i}");
        assert_eq!(
            state.nodes[&r.identity].stake,
            stakes[i] - r.amount,
            "node {i}"
        );
        let p = position(i);
        let excluded = key
            .excluded
            .iter()
            .find(|e| e.role == FaultRole::Dealer && e.position == p)
            .unwrap();
        assert_eq!(excluded.penalty, Some(penalty), "node {i}");
    }
    for i in (0..N).filter(|i| !faults.iter().any(|f| f.0 == *i)) {
        let id = h.keys[i].identity().public().to_bytes();
        let node = state.nodes.values().find(|n| n.identity.0 == id).unwrap();
        assert_eq!(node.stake, stakes[i], "honest node {i}");
    }
    assert!(
        key.excluded
            .iter()
            .filter(|e| e.role == FaultRole::Player)
            .all(|e| e.penalty.is_none()),
        "{:?}",
        key.excluded
    );
    // The two disqualified dealers are left out of the clique as players too.
    for i in [2, 4] {
        let p = position(i);
        assert!(
            key.excluded.iter().any(|e| e.role == FaultRole::Player
                && e.position == p
                && e.fault == "not_in_clique"),
            "node {i}: {:?}",
            key.excluded
        );
    }
    assert_eq!(
        key.excluded
            .iter()
            .filter(|e| e.role == FaultRole::Player)
            .count(),
        2
    );
    // Only the faulty dealers are excluded as dealers.
    let dealers: Vec<u32> = key
        .excluded
        .iter()
        .filter(|e| e.role == FaultRole::Dealer)
        .map(|e| e.position)
        .collect();
    let mut expected: Vec<u32> = faults.iter().map(|(i, _, _)| position(*i)).collect();
    expected.sort();
    assert_eq!(dealers, expected);
    // The equivocator and the withholder are out; the dealer that skipped its Feldman values
    // stays in, reconstructed.
    let qualified = |i: usize| key.qualified.contains(&position(i));
    assert!(
        !qualified(2) && !qualified(4) && qualified(6),
        "{:?}",
        key.qualified
    );
    assert_eq!(key.qualified.len(), N - 2);

    // Every node keeps the chain's record; the qualified ones hold shares.
    let dir = tempfile::tempdir().unwrap();
    let mut views = Vec::new();
    let mut dbs = Vec::new();
    for i in 0..N {
        let (held, share) = h.driver(i).signing_key(1).unwrap().unwrap();
        assert_eq!(held.key, key, "node {i}");
        assert_eq!(share.is_some(), qualified(i), "node {i}");
        views.push(FrostView::new(1, &held.key, held.own_position.zip(share)).unwrap());
        dbs.push(NonceDb::open(&dir.path().join(format!("n{i}.redb")), h.keys[i].clone()).unwrap());
    }

    // t of the share holders, the reconstructed dealer among them, sign a BIP-340 signature.
    let signers: Vec<usize> = (0..N).filter(|i| qualified(*i)).collect();
    let coordinator = signers[0];
    let v = &views[coordinator];
    let message = b"signed despite three faulty dealers";
    let mut session = Session::new(v, Scheme::Bip340, message.to_vec(), [7; 32]);
    let from = h.keys[coordinator].identity().public().to_bytes().to_vec();
    let ask = |i: usize, payload: &[u8]| {
        answer(
            Some(&views[i]),
            Some(&dbs[i]),
            &views[i].session(),
            Some(&from),
            payload,
            &[i as u8 + 1; 64],
            NOW_MS,
        )
    };
    let commit = session.commit_request(v);
    let chosen: Vec<usize> = signers.iter().rev().take(v.threshold()).copied().collect();
    assert!(chosen.contains(&6));
    for &i in &chosen {
        session
            .take_commitment(v, position(i) as usize, &ask(i, &commit))
            .unwrap();
    }
    let request = session.sign_request(v).unwrap();
    for &i in &chosen {
        session
            .take_share(v, position(i) as usize, &ask(i, &request))
            .unwrap();
    }
    let sig = session.finish(v).unwrap().signature;
    let group_key = SigningCurve::decode_point(&key.group_key.0).unwrap();
    let x_only = frost::bip340::x_only(&group_key).unwrap();
    let vk = k256::schnorr::VerifyingKey::from_bytes(&x_only).unwrap();
    let sig = k256::schnorr::Signature::try_from(&sig[..]).unwrap();
    vk.verify_raw(message, &sig).unwrap();
}

/// A dealer slashed in view 1's signing-key ceremony sits out view 2's: the chain leaves it
/// out of the spec, and every other member, having recomputed the sit-out from the slashings
/// it saw on chain, takes part, so view 2's key is made by the six others.
#[test]
fn a_slashed_dealer_sits_out_the_next_signing_key_and_the_others_make_it() {
    let mut c = common::small_network("signing-key-sit-out", N as u32, 5, KeyMode::Reshare);
    c.committee.min_size = N as u32;
    c.committee.threshold = Size::Percent(67);
    c.committee.quorum = Size::Percent(84);
    c.view_length = 120;
    c.dkg.signing_key = Some(SigningKeyConfig::SECP256K1_FROST);
    c.slashing.misbehaviour_percent = 10;
    let stakes: Vec<u64> = (0..N as u64).map(|i| 1000 - i).collect();
    let mut h = Harness::new(c, &stakes);
    h.set_fault(2, Fault::SigningKeyEquivocate);
    h.set_verifiable_keys();
    let view2 = |h: &Harness| {
        h.events().find_map(|e| match e {
            Event::SigningKeyCreated { view: 2, key } => Some(key.clone()),
            _ => None,
        })
    };
    h.run_until(600, |h| {
        view2(h).is_some()
            || h.events()
                .any(|e| matches!(e, Event::SigningKeyFailed { view: 2, .. }))
    });
    let key = view2(&h).expect("view 2's signing key");
    let culprit = h.keys[2].identity().public().to_bytes();
    assert_eq!(key.members.len(), N - 1);
    assert!(key.members.iter().all(|m| m.identity.0 != culprit));
    assert!(key.excluded.is_empty(), "{:?}", key.excluded);
    for i in (0..N).filter(|i| *i != 2) {
        let (held, share) = h.driver(i).signing_key(2).unwrap().unwrap();
        assert_eq!(held.key, key, "node {i}");
        assert!(share.is_some(), "node {i}");
    }
}
