//! Schnorr signing that survives faulty signers: the attempt logic on its own ([`Signing`],
//! [`Session`] with the members' answers from [`frost::answer`]), and `POST /sign` over
//! loopback libp2p with members that send invalid shares (the `bad-signature-share` fault) or
//! do not answer round two.

use std::collections::BTreeSet;
use std::sync::Mutex as StdMutex;

use keyquorum_contract::signing_key::{SigningCurve, SigningKeyMember, SigningKeyRecord};
use keyquorum_contract::state::IdentityKey;
use keyquorum_crypto::Curve;
use keyquorum_crypto::frost::{self as schnorr, Mode};
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::secret::Secret;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::Value;

use super::frost::{
    AttemptError, Culprit, FrostRefusal, FrostRequest, FrostView, NonceDb, Scheme, Session,
    SignerFault, Signing, TakeError, answer, frost_session, parse_answer, with_wrong_share,
};
use super::tests::{TOKEN, code, net_node, post, serve};
use super::*;
use crate::keys::NodeKeys;

type SigningScalar = <SigningCurve as Curve>::Scalar;

/// Members' clock for the nonce store (Unix ms).
const NOW_MS: u64 = 1_800_000_000_000;

fn node_keys(n: usize) -> Vec<Arc<NodeKeys>> {
    (0..n)
        .map(|i| Arc::new(NodeKeys::from_master(&[i as u8 + 60; 32])))
        .collect()
}

fn identity(keys: &NodeKeys) -> Vec<u8> {
    keys.identity().public().to_bytes().to_vec()
}

/// A signing key of `t` of the members with `keys`, indices 1..=n, and every member's share.
fn signing_key(keys: &[Arc<NodeKeys>], t: usize) -> (SigningKeyRecord, Vec<SigningScalar>) {
    let poly = Polynomial::<SigningScalar>::random(t - 1, None, &mut ChaCha20Rng::seed_from_u64(3));
    let point = |s: &SigningScalar| {
        let p = (k256::ProjectivePoint::GENERATOR * s).to_affine();
        Hex(SigningCurve::point_bytes(&p).try_into().unwrap())
    };
    let mut members = Vec::new();
    let mut shares = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let x = SigningScalar::from(i as u64 + 1);
        let share = poly.evaluate(&x);
        members.push(SigningKeyMember {
            identity: IdentityKey::from_slice(&identity(k)).unwrap(),
            index: Hex(SigningCurve::encode_scalar(&x)),
            public_share: point(&share),
        });
        shares.push(share);
    }
    let record = SigningKeyRecord {
        session_id: Hex([5; 32]),
        threshold: t as u32,
        group_key: point(&poly.constant()),
        members,
        qualified: (0..keys.len() as u32).collect(),
        dealers: Vec::new(),
        excluded: Vec::new(),
    };
    (record, shares)
}

use keyquorum_contract::hex::Hex;

fn frost_views(record: &SigningKeyRecord, shares: &[SigningScalar]) -> Vec<FrostView> {
    (0..shares.len())
        .map(|i| FrostView::new(1, record, Some((i as u32, Secret::new(shares[i])))).unwrap())
        .collect()
}

fn group_key(record: &SigningKeyRecord) -> <SigningCurve as Curve>::Affine {
    SigningCurve::decode_point_nonzero(&record.group_key.0).unwrap()
}

#[test]
fn signing_leaves_culprits_out_and_bounds_its_attempts() {
    let keys = node_keys(5);
    let (record, shares) = signing_key(&keys, 2);
    let views = frost_views(&record, &shares);
    let v = &views[0];
    let culprit = |position: usize, fault| Culprit {
        position,
        identity: identity(&keys[position]),
        fault,
    };
    let mut signing = Signing::new(Scheme::Frost, b"m".to_vec(), 0, 3);
    let first = signing.next_attempt(v, [1; 32]).unwrap();
    assert_eq!(first.asked(v), vec![0, 1, 2, 3, 4]);
    signing.attempt_failed(
        2,
        1,
        vec![culprit(1, SignerFault::InvalidShare)],
        &BTreeSet::new(),
    );
    let mut second = signing.next_attempt(v, [2; 32]).unwrap();
    assert_eq!(second.asked(v), vec![0, 2, 3, 4]);
    // The culprit's commitment is not taken, even a good one for this very session.
    assert_eq!(second.id, [2; 32]);
    let commitment = {
        let dir = tempfile::tempdir().unwrap();
        let db = NonceDb::open(&dir.path().join("n.redb"), keys[1].clone()).unwrap();
        let request = second.commit_request(v);
        answer(
            Some(&views[1]),
            Some(&db),
            &views[1].session(),
            Some(&identity(&keys[0])),
            &request,
            &[1; 64],
            NOW_MS,
        )
    };
    assert!(parse_answer(&commitment).is_ok());
    assert_eq!(
        second.take_commitment(v, 1, &commitment),
        Err(TakeError::Excluded)
    );
    // A member named twice counts once, with its first fault.
    signing.attempt_failed(
        2,
        1,
        vec![
            culprit(1, SignerFault::Unresponsive),
            culprit(2, SignerFault::Refused),
        ],
        &BTreeSet::new(),
    );
    let third = signing.next_attempt(v, [3; 32]).unwrap();
    assert_eq!(third.asked(v), vec![0, 3, 4]);
    signing.attempt_failed(
        2,
        1,
        vec![culprit(3, SignerFault::Malformed)],
        &BTreeSet::new(),
    );
    // Three attempts made: over, although two members (t) remain.
    assert!(signing.next_attempt(v, [4; 32]).is_none());
    let failure = signing.failure(v);
    assert_eq!(failure.attempts, 3);
    assert_eq!(
        (failure.round, failure.signers, failure.threshold),
        (2, 1, 2)
    );
    let named: Vec<(usize, SignerFault)> = failure
        .culprits
        .iter()
        .map(|c| (c.position, c.fault))
        .collect();
    assert_eq!(
        named,
        vec![
            (1, SignerFault::InvalidShare),
            (2, SignerFault::Refused),
            (3, SignerFault::Malformed)
        ]
    );
    assert!(failure.invalid_shares());

    // Fewer than t members left: over before the attempts run out.
    let mut signing = Signing::new(Scheme::Frost, b"m".to_vec(), 0, 3);
    signing.next_attempt(v, [1; 32]).unwrap();
    let all_but_one = (1..4)
        .map(|i| culprit(i, SignerFault::InvalidShare))
        .collect();
    signing.attempt_failed(2, 1, all_but_one, &BTreeSet::new());
    assert!(signing.next_attempt(v, [2; 32]).is_some(), "0 and 4 remain");
    signing.attempt_failed(
        2,
        1,
        vec![culprit(4, SignerFault::InvalidShare)],
        &BTreeSet::new(),
    );
    assert!(signing.next_attempt(v, [3; 32]).is_none());
    assert_eq!(signing.attempts(), 2);
    // The coordinator named (its own answer failed): over.
    let mut signing = Signing::new(Scheme::Frost, b"m".to_vec(), 0, 3);
    signing.next_attempt(v, [1; 32]).unwrap();
    signing.attempt_failed(
        2,
        1,
        vec![culprit(0, SignerFault::Malformed)],
        &BTreeSet::new(),
    );
    assert!(signing.next_attempt(v, [2; 32]).is_none());
    // A round one that fell short: over, fewer members cannot give more commitments.
    let mut signing = Signing::new(Scheme::Frost, b"m".to_vec(), 0, 3);
    signing.next_attempt(v, [1; 32]).unwrap();
    signing.attempt_failed(
        1,
        1,
        vec![culprit(4, SignerFault::Unresponsive)],
        &BTreeSet::new(),
    );
    assert!(signing.next_attempt(v, [2; 32]).is_none());
    assert!(!signing.failure(v).invalid_shares());
}

/// Member `i`'s stores and answers, with member 0 coordinating.
struct Members {
    keys: Vec<Arc<NodeKeys>>,
    views: Vec<FrostView>,
    dbs: Vec<NonceDb>,
    _dir: tempfile::TempDir,
}

impl Members {
    fn new(n: usize, t: usize) -> (Self, SigningKeyRecord) {
        let keys = node_keys(n);
        let (record, shares) = signing_key(&keys, t);
        let views = frost_views(&record, &shares);
        let dir = tempfile::tempdir().unwrap();
        let dbs = (0..n)
            .map(|i| NonceDb::open(&dir.path().join(format!("{i}.redb")), keys[i].clone()).unwrap())
            .collect();
        (
            Members {
                keys,
                views,
                dbs,
                _dir: dir,
            },
            record,
        )
    }

    fn ask(&self, i: usize, from: usize, payload: &[u8]) -> Vec<u8> {
        answer(
            Some(&self.views[i]),
            Some(&self.dbs[i]),
            &self.views[i].session(),
            Some(&identity(&self.keys[from])),
            payload,
            &[i as u8 + 1; 64],
            NOW_MS,
        )
    }

    /// An attempt among `signers`, round one done.
    fn committed(&self, id: [u8; 32], signers: &[usize]) -> (Session, Vec<u8>) {
        let v = &self.views[0];
        let mut session = Session::new(v, Scheme::Frost, b"signed message".to_vec(), id);
        let commit = session.commit_request(v);
        for &i in signers {
            session
                .take_commitment(v, i, &self.ask(i, 0, &commit))
                .unwrap();
        }
        let request = session.sign_request(v).unwrap();
        (session, request)
    }
}

#[test]
fn an_attempt_names_invalid_refused_and_missing_shares() {
    let (m, record) = Members::new(4, 3);
    let v = &m.views[0];

    // All good: the signature verifies under RFC 9591.
    let (mut session, request) = m.committed([1; 32], &[0, 1, 2]);
    for i in [0, 1, 2] {
        session.take_share(v, i, &m.ask(i, 0, &request)).unwrap();
    }
    let signed = session.finish(v).unwrap();
    let sig = schnorr::Signature::from_bytes(&signed.signature).unwrap();
    schnorr::verify(Mode::Rfc9591, &group_key(&record), b"signed message", &sig).unwrap();

    // Member 1's share replaced by the fault's: it decodes and is taken, the sum fails, and
    // the share check (RFC 9591 section 5.4) names member 1 alone.
    let (mut session, request) = m.committed([2; 32], &[0, 1, 2]);
    for i in [0, 2] {
        session.take_share(v, i, &m.ask(i, 0, &request)).unwrap();
    }
    let wrong = with_wrong_share(m.ask(1, 0, &request));
    session.take_share(v, 1, &wrong).unwrap();
    assert!(session.awaiting_shares().is_empty());
    let failed = session.finish(v).unwrap_err();
    assert_eq!(
        failed,
        AttemptError::Culprits(vec![Culprit {
            position: 1,
            identity: identity(&m.keys[1]),
            fault: SignerFault::InvalidShare,
        }])
    );
    assert_eq!(session.valid_shares(&failed), 2);

    // Member 1 does not honour its commitment (its nonces are gone: a refusal), member 3 never
    // answers: both named, without aggregating.
    let (mut session, request) = m.committed([3; 32], &[0, 1, 3]);
    session.take_share(v, 0, &m.ask(0, 0, &request)).unwrap();
    let spent = m.ask(1, 0, &request);
    assert!(parse_answer(&spent).is_ok());
    let refused = m.ask(1, 0, &request);
    assert_eq!(parse_answer(&refused), Err(Some(FrostRefusal::NoNonces)));
    assert_eq!(
        session.take_share(v, 1, &refused),
        Err(TakeError::Refused(Some(FrostRefusal::NoNonces)))
    );
    // A later good answer from a signer already named changes nothing.
    assert!(session.take_share(v, 1, &spent).is_ok());
    assert_eq!(session.awaiting_shares(), vec![3]);
    let named: Vec<(usize, SignerFault)> = match session.finish(v).unwrap_err() {
        AttemptError::Culprits(c) => c.iter().map(|c| (c.position, c.fault)).collect(),
        e => panic!("{e}"),
    };
    assert_eq!(
        named,
        vec![(1, SignerFault::Refused), (3, SignerFault::Unresponsive)]
    );

    // The fault leaves every other answer as it is.
    let commit = Session::new(v, Scheme::Frost, b"x".to_vec(), [4; 32]).commit_request(v);
    let commitment = m.ask(2, 0, &commit);
    assert_eq!(with_wrong_share(commitment.clone()), commitment);
    let refusal = m.ask(2, 0, b"junk");
    assert_eq!(with_wrong_share(refusal.clone()), refusal);
}

#[test]
fn a_round_one_that_falls_short_names_the_members_without_a_commitment() {
    let (m, _) = Members::new(4, 3);
    let v = &m.views[0];
    let mut session = Session::new(v, Scheme::Bip340, b"m".to_vec(), [9; 32]);
    let commit = session.commit_request(v);
    assert!(
        !session
            .take_commitment(v, 0, &m.ask(0, 0, &commit))
            .unwrap()
    );
    // Member 1 sends a commitment for another session; member 2 refuses; member 3 is silent.
    let other = Session::new(v, Scheme::Bip340, b"m".to_vec(), [8; 32]).commit_request(v);
    let foreign = m.ask(1, 0, &other);
    assert!(matches!(
        session.take_commitment(v, 1, &foreign),
        Err(TakeError::Rejected(_))
    ));
    assert_eq!(
        session.take_commitment(v, 2, &answer_refused_bytes()),
        Err(TakeError::Refused(Some(FrostRefusal::Store)))
    );
    let named: Vec<(usize, SignerFault)> = session
        .commitment_culprits(v)
        .iter()
        .map(|c| (c.position, c.fault))
        .collect();
    assert_eq!(
        named,
        vec![
            (1, SignerFault::Malformed),
            (2, SignerFault::Refused),
            (3, SignerFault::Unresponsive)
        ]
    );
}

/// Members at another view refuse both rounds; that names nobody (a view change is no fault).
#[test]
fn members_at_another_view_are_counted_apart_from_culprits() {
    let (m, _) = Members::new(4, 3);
    let v = &m.views[0];
    // Round one: members 1 and 2 answer a request of view 2 (they are at view 1 here, as a
    // member answers a coordinator one view ahead), member 3 is silent.
    let mut session = Session::new(v, Scheme::Bip340, b"m".to_vec(), [7; 32]);
    let commit = session.commit_request(v);
    session
        .take_commitment(v, 0, &m.ask(0, 0, &commit))
        .unwrap();
    let ahead = FrostRequest::Commit {
        view: 2,
        session: [7; 32],
    }
    .to_bytes();
    for i in [1, 2] {
        assert_eq!(
            session.take_commitment(v, i, &m.ask(i, 0, &ahead)),
            Err(TakeError::Refused(Some(FrostRefusal::OtherView)))
        );
    }
    assert_eq!(session.other_view(), &BTreeSet::from([1, 2]));
    // As the coordinator counts them: no fault, unlike a refusal or a bad package.
    assert_eq!(
        TakeError::Refused(Some(FrostRefusal::OtherView)).result(),
        "other_view"
    );
    assert_eq!(
        TakeError::Refused(Some(FrostRefusal::Store)).result(),
        "refused"
    );
    assert_eq!(TakeError::Malformed.result(), "invalid");
    let named: Vec<(usize, SignerFault)> = session
        .commitment_culprits(v)
        .iter()
        .map(|c| (c.position, c.fault))
        .collect();
    assert_eq!(named, vec![(3, SignerFault::Unresponsive)]);

    // Round two: member 1 committed, then moved on before its share was asked for.
    let (mut session, request) = m.committed([6; 32], &[0, 1, 2]);
    for i in [0, 2] {
        session.take_share(v, i, &m.ask(i, 0, &request)).unwrap();
    }
    let moved = vec![1, FrostRefusal::OtherView as u8];
    assert!(session.take_share(v, 1, &moved).is_err());
    assert!(session.awaiting_shares().is_empty());
    let failed = session.finish(v).unwrap_err();
    assert_eq!(failed, AttemptError::OtherView(vec![1]));
    assert_eq!(session.valid_shares(&failed), 2);

    // The request's failure names nobody and lists the member apart; it is not asked again
    // (a faulty member that commits and then claims another view cannot hold every attempt).
    let mut signing = Signing::new(Scheme::Bip340, b"m".to_vec(), 0, super::frost::MAX_ATTEMPTS);
    assert!(signing.next_attempt(v, [5; 32]).is_some());
    signing.attempt_failed(2, 2, Vec::new(), session.other_view());
    let next = signing.next_attempt(v, [4; 32]).unwrap();
    assert_eq!(next.asked(v), vec![0, 2, 3]);
    let failure = signing.failure(v);
    assert!(failure.culprits.is_empty());
    assert_eq!(failure.other_view, vec![identity(&m.keys[1])]);
    // Two short of t = 3 with one at another view: the view change explains it.
    assert!(failure.view_changing());
    assert!(
        failure.to_string().ends_with("; 1 members at another view"),
        "{failure}"
    );
}

#[test]
fn a_release_drops_only_its_coordinators_unused_nonces_and_refuses_a_late_commit() {
    let keys = node_keys(3);
    let (record, shares) = signing_key(&keys, 2);
    let views = frost_views(&record, &shares);
    let dir = tempfile::tempdir().unwrap();
    let db = NonceDb::open(&dir.path().join("n.redb"), keys[1].clone()).unwrap();
    let ask =
        |from: usize, request: FrostRequest| member_answer(&views[1], &db, &keys[from], request);
    let commit = |session| FrostRequest::Commit { view: 1, session };
    let release = |session| FrostRequest::Release { view: 1, session };
    assert!(parse_answer(&ask(0, commit([1; 32]))).is_ok());
    assert!(parse_answer(&ask(2, commit([1; 32]))).is_ok());
    assert_eq!(db.pending().unwrap(), 2);
    // Member 2 cannot release coordinator 0's pair: the entry is keyed by who asked.
    assert!(parse_answer(&ask(2, release([1; 32]))).is_ok());
    assert_eq!(db.pending().unwrap(), 1);
    assert!(parse_answer(&ask(0, release([1; 32]))).is_ok());
    assert_eq!(db.pending().unwrap(), 0);
    // Released before its commit request arrived: the commit is refused, nothing is stored.
    assert!(parse_answer(&ask(0, release([2; 32]))).is_ok());
    assert_eq!(
        parse_answer(&ask(0, commit([2; 32]))),
        Err(Some(FrostRefusal::SessionUsed))
    );
    assert_eq!(db.pending().unwrap(), 0);
    // A release is harmless in any view, and its answer carries nothing.
    assert_eq!(
        parse_answer(&ask(
            0,
            FrostRequest::Release {
                view: 7,
                session: [3; 32]
            }
        )),
        Ok(&[][..])
    );
}

/// One member that asks for commitments and never signs fills only its own share of another
/// member's nonce store: the others still get commitments, and its own refusal names no
/// culprit at the coordinator.
#[test]
fn a_member_that_floods_commit_requests_fills_only_its_own_share_of_the_nonce_store() {
    let keys = node_keys(4);
    let (record, shares) = signing_key(&keys, 3);
    let views = frost_views(&record, &shares);
    let dir = tempfile::tempdir().unwrap();
    let db = NonceDb::open(&dir.path().join("n.redb"), keys[1].clone())
        .unwrap()
        .with_limits(2, 4);
    let ask =
        |from: usize, request: FrostRequest| member_answer(&views[1], &db, &keys[from], request);
    let commit = |session| FrostRequest::Commit { view: 1, session };
    let release = |session| FrostRequest::Release { view: 1, session };
    // Member 2 holds its two pairs, and is refused a third.
    for i in 0..2 {
        assert!(parse_answer(&ask(2, commit([i; 32]))).is_ok());
    }
    let refused = ask(2, commit([2; 32]));
    assert_eq!(
        parse_answer(&refused),
        Err(Some(FrostRefusal::CoordinatorFull))
    );
    // Commit-and-release cycles past its share of used marks push out its own oldest marks.
    for i in 10..20 {
        assert!(parse_answer(&ask(3, commit([i; 32]))).is_ok());
        assert!(parse_answer(&ask(3, release([i; 32]))).is_ok());
    }
    // Member 0 is not affected by either.
    for i in 0..2 {
        assert!(parse_answer(&ask(0, commit([i; 32]))).is_ok());
    }
    assert_eq!(db.pending().unwrap(), 4);
    // The coordinator refused so names nobody for it.
    let v = &views[2];
    let mut session = Session::new(v, Scheme::Bip340, b"m".to_vec(), [2; 32]);
    let taken = session.take_commitment(v, 1, &refused);
    assert_eq!(
        taken,
        Err(TakeError::Refused(Some(FrostRefusal::CoordinatorFull)))
    );
    assert_eq!(taken.unwrap_err().result(), "coordinator_full");
    assert!(
        session
            .commitment_culprits(v)
            .iter()
            .all(|c| c.position != 1),
        "{:?}",
        session.commitment_culprits(v)
    );
}

/// The answer of the member holding `view` and nonce store `db` to `request` from the member
/// whose keys are `from`, at [`NOW_MS`].
fn member_answer(
    view: &FrostView,
    db: &NonceDb,
    from: &NodeKeys,
    request: FrostRequest,
) -> Vec<u8> {
    answer(
        Some(view),
        Some(db),
        &view.session(),
        Some(&identity(from)),
        &request.to_bytes(),
        &[9; 64],
        NOW_MS,
    )
}

fn answer_refused_bytes() -> Vec<u8> {
    vec![1, FrostRefusal::Store as u8]
}

/// The FROST requests the members got: (member, round, signing session).
type RequestLog = Arc<StdMutex<Vec<(usize, u8, [u8; 32])>>>;

/// How long a [`Behaviour::HonestAfterFaulty`] member waits after the faulty one committed:
/// long enough for that commitment to reach the coordinator first on a loaded machine.
const HONEST_AFTER_FAULTY_DELAY: Duration = Duration::from_millis(1000);

/// How a test member answers FROST rounds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Honest, but its round-one answers wait until the first member that is not honest has
    /// committed (and [`HONEST_AFTER_FAULTY_DELAY`] more), so that member is among the first `t`
    /// of the first attempt.
    HonestAfterFaulty,
    /// Honest and prompt.
    Honest,
    /// The `bad-signature-share` fault.
    BadShares,
    /// Commits, then holds every round two unanswered.
    SilentInRoundTwo,
    /// Honest, at the next view already (its key's view is 2, the coordinator's 1).
    AtNextView,
}

/// A committee on loopback libp2p (see [`committee`]).
struct Committee {
    service: SignService,
    /// Every member's service, the coordinator's first.
    members: Vec<SignService>,
    addr: std::net::SocketAddr,
    record: SigningKeyRecord,
    identities: Vec<Vec<u8>>,
    seen: RequestLog,
    _nets: Vec<keyquorum_net::NetworkHandle>,
    _dir: tempfile::TempDir,
}

/// A committee of `behaviours.len()` members with a signing key of threshold `t`; member 0
/// coordinates over HTTP with `timeout_ms` per attempt, the others answer as told.
async fn committee(t: usize, behaviours: &[Behaviour], timeout_ms: u64) -> Committee {
    let n = behaviours.len();
    let keys = node_keys(n);
    let (record, shares) = signing_key(&keys, t);
    let identities: Vec<Vec<u8>> = keys.iter().map(|k| identity(k)).collect();
    let session = frost_session(&record);
    let dir = tempfile::tempdir().unwrap();
    let config = SignConfig {
        timeout_ms,
        rate_per_sec: 100.0,
        burst: 100,
        ..SignConfig::default()
    };
    let services: Vec<SignService> = behaviours
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let fault = if *b == Behaviour::BadShares {
                Fault::BadSignatureShare
            } else {
                Fault::None
            };
            let token = (i == 0).then_some(TOKEN);
            let s = SignService::new(
                config.clone(),
                token.map(|t| Token::new(t.as_bytes())),
                Arc::new(Metrics::new()),
                fault,
            );
            let at = if *b == Behaviour::AtNextView { 2 } else { 1 };
            let view =
                FrostView::new(at, &record, Some((i as u32, Secret::new(shares[i])))).unwrap();
            s.set_frost_view(Some(view));
            let db = NonceDb::open(&dir.path().join(format!("{i}.redb")), keys[i].clone()).unwrap();
            s.set_nonce_db(Arc::new(db));
            s
        })
        .collect();
    let (coordinator, _events, _) = net_node(&keys[0]).await;
    services[0].set_network(coordinator.clone());
    let (faulty_committed, _) = tokio::sync::watch::channel(false);
    let faulty_committed = Arc::new(faulty_committed);
    let seen = Arc::new(StdMutex::new(Vec::new()));
    let mut nets = vec![coordinator.clone()];
    for i in 1..n {
        let (net, mut events, addrs) = net_node(&keys[i]).await;
        net.set_session_members(session, identities.clone())
            .await
            .unwrap();
        coordinator
            .bind_identity(identities[i].clone(), keys[i].peer_id(), addrs)
            .await
            .unwrap();
        let (service, behaviour) = (services[i].clone(), behaviours[i]);
        let (gate, seen) = (faulty_committed.clone(), seen.clone());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some(event) = events.recv().await {
                let keyquorum_net::NetEvent::Request {
                    kind,
                    from_identity,
                    session,
                    payload,
                    reply,
                    ..
                } = event
                else {
                    continue;
                };
                assert_eq!(kind, keyquorum_net::FROST_KIND);
                let (round, id) = match FrostRequest::from_bytes(&payload, n) {
                    Some(FrostRequest::Commit { session, .. }) => (1, session),
                    Some(FrostRequest::Sign { request, .. }) => (2, request.session.0),
                    Some(FrostRequest::Release { session, .. }) => (3, session),
                    None => (0, [0; 32]),
                };
                seen.lock().unwrap().push((i, round, id));
                if round == 2 && behaviour == Behaviour::SilentInRoundTwo {
                    held.push(reply);
                    continue;
                }
                let (service, gate) = (service.clone(), gate.clone());
                tokio::spawn(async move {
                    if round == 1 && behaviour == Behaviour::HonestAfterFaulty {
                        let _ = gate.subscribe().wait_for(|committed| *committed).await;
                        tokio::time::sleep(HONEST_AFTER_FAULTY_DELAY).await;
                    }
                    let answer = tokio::task::spawn_blocking(move || {
                        service.answer_frost(&session, from_identity.as_deref(), &payload)
                    })
                    .await
                    .unwrap();
                    let _ = reply.send(answer);
                    if round == 1
                        && matches!(
                            behaviour,
                            Behaviour::BadShares | Behaviour::SilentInRoundTwo
                        )
                    {
                        gate.send_replace(true);
                    }
                });
            }
        });
        nets.push(net);
    }
    let addr = serve(services[0].clone()).await;
    Committee {
        service: services[0].clone(),
        members: services.clone(),
        addr,
        record,
        identities,
        seen,
        _nets: nets,
        _dir: dir,
    }
}

impl Committee {
    async fn sign(&self, scheme: &str, message: &[u8]) -> (u16, Value) {
        let body = format!(
            r#"{{"scheme":"{scheme}","message":"{}"}}"#,
            hex::encode(message)
        );
        post(self.addr, Some(TOKEN), &body).await
    }

    /// The FROST requests member `i` got, as (round, session).
    fn seen_by(&self, i: usize) -> Vec<(u8, [u8; 32])> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|(m, ..)| *m == i)
            .map(|(_, r, s)| (*r, *s))
            .collect()
    }
}

fn culprits(body: &Value) -> BTreeSet<String> {
    body["culprits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_sending_invalid_shares_is_named_and_the_request_signs_without_it() {
    use Behaviour::*;
    let c = committee(
        3,
        &[Honest, HonestAfterFaulty, HonestAfterFaulty, BadShares],
        5000,
    )
    .await;
    let message = b"signed although member 3 lies";
    let (status, body) = c.sign("frost-secp256k1", message).await;
    assert_eq!(status, 200, "{body}");
    let sig =
        schnorr::Signature::from_bytes(&hex::decode(body["signature"].as_str().unwrap()).unwrap())
            .unwrap();
    schnorr::verify(Mode::Rfc9591, &group_key(&c.record), message, &sig).unwrap();
    let m = &c.service.metrics().sign;
    // The first attempt took member 3's commitment, failed on its share and named it; the
    // second, without it, signed.
    assert_eq!(m.frost_culprits(3, "invalid_share"), 1);
    assert_eq!(m.partials(3, "invalid"), 1);
    assert_eq!(m.frost_attempts("culprits"), 1);
    assert_eq!(m.frost_attempts("signed"), 1);
    for i in [1, 2] {
        assert_eq!(m.frost_culprits(i, "invalid_share"), 0);
    }
    // Fresh nonces for the second attempt: a new session, and member 3 not asked in it.
    let commits = |i: usize| -> Vec<[u8; 32]> {
        c.seen_by(i)
            .into_iter()
            .filter(|(r, _)| *r == 1)
            .map(|(_, s)| s)
            .collect()
    };
    let (member1, member3) = (commits(1), commits(3));
    assert_eq!(member1.len(), 2, "{member1:?}");
    assert_ne!(member1[0], member1[1]);
    assert_eq!(member3, vec![member1[0]]);

    // BIP-340 alike: the signature verifies with k256's BIP-340 verifier.
    let (status, body) = c.sign("bip340", message).await;
    assert_eq!(status, 200, "{body}");
    let public = hex::decode(body["public_key"].as_str().unwrap()).unwrap();
    let sig = hex::decode(body["signature"].as_str().unwrap()).unwrap();
    let vk = k256::schnorr::VerifyingKey::from_bytes(&public).unwrap();
    vk.verify_raw(
        message,
        &k256::schnorr::Signature::try_from(&sig[..]).unwrap(),
    )
    .unwrap();
    assert_eq!(m.frost_culprits(3, "invalid_share"), 2);
    assert_eq!(m.frost_attempts("signed"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonces_no_round_two_took_are_released_after_each_request() {
    // Five members, t = 2: each request uses two commitments, so three members commit for
    // nothing. Before releases those pairs waited out their ten minutes, and under sustained
    // load a member's store filled and it refused every round one.
    let c = committee(2, &[Behaviour::Honest; 5], 5000).await;
    for m in [&b"one"[..], b"two", b"three"] {
        let (status, body) = c.sign("bip340", m).await;
        assert_eq!(status, 200, "{body}");
    }
    let pending = || -> Vec<u64> {
        c.members
            .iter()
            .map(|s| s.nonce_db().unwrap().pending().unwrap())
            .collect()
    };
    let count = |round: u8| -> usize {
        (1..5)
            .map(|i| c.seen_by(i).iter().filter(|(r, _)| *r == round).count())
            .sum()
    };
    // Releases go out in the background after each answer: wait for them to arrive, then to
    // be applied.
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(3) < 9 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while pending().iter().any(|p| *p > 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pending(), vec![0; 5]);
    // Only the members left without a round two were sent one: three per request.
    assert_eq!((count(3), count(2)), (9, 3), "{:?}", c.seen.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_members_sending_invalid_shares_fail_the_request_naming_them() {
    use Behaviour::*;
    let c = committee(3, &[Honest, Honest, BadShares, BadShares], 5000).await;
    let (status, body) = c.sign("frost-secp256k1", b"m").await;
    assert_eq!((status, code(&body)), (502, "invalid_shares"), "{body}");
    let expected: BTreeSet<String> = [2, 3]
        .iter()
        .map(|i| hex::encode(&c.identities[*i]))
        .collect();
    assert_eq!(culprits(&body), expected);
    for id in &expected {
        assert_eq!(body["faults"][id], "invalid_share");
    }
    // One attempt named both, or two attempts one each; then two members are left of t = 3.
    let attempts = body["attempts"].as_u64().unwrap();
    assert!((1..=2).contains(&attempts), "{body}");
    assert_eq!(body["threshold"], 3);
    assert_eq!(body["round"], 2);
    let m = &c.service.metrics().sign;
    assert_eq!(m.frost_culprits(2, "invalid_share"), 1);
    assert_eq!(m.frost_culprits(3, "invalid_share"), 1);
    assert_eq!(m.frost_attempts("signed"), 0);
    assert_eq!(m.rejections("invalid_shares"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signer_silent_in_round_two_is_named_unresponsive_and_left_out() {
    use Behaviour::*;
    let c = committee(
        3,
        &[
            Honest,
            HonestAfterFaulty,
            HonestAfterFaulty,
            SilentInRoundTwo,
        ],
        3000,
    )
    .await;
    let message = b"signed after a timeout";
    let (status, body) = c.sign("frost-secp256k1", message).await;
    assert_eq!(status, 200, "{body}");
    let sig =
        schnorr::Signature::from_bytes(&hex::decode(body["signature"].as_str().unwrap()).unwrap())
            .unwrap();
    schnorr::verify(Mode::Rfc9591, &group_key(&c.record), message, &sig).unwrap();
    let m = &c.service.metrics().sign;
    assert_eq!(m.frost_culprits(3, "unresponsive"), 1);
    assert_eq!(m.partials(3, "unreachable"), 1);
    assert_eq!(m.frost_attempts("culprits"), 1);
    // Member 3 got a round two in the first attempt only, then that attempt's release (its
    // nonces were never taken as far as the coordinator knows), which goes out in the
    // background.
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.seen_by(3).len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rounds: Vec<u8> = c.seen_by(3).iter().map(|(r, _)| *r).collect();
    assert_eq!(rounds, vec![1, 2, 3]);
    let sessions: BTreeSet<[u8; 32]> = c.seen_by(3).iter().map(|(_, s)| *s).collect();
    assert_eq!(sessions.len(), 1);
}

/// A request made while the members move to the next view fails as a view change under way
/// (503, retry), naming no culprit: the alert metric stays at zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_at_the_next_view_make_a_retryable_failure_not_culprits() {
    use Behaviour::*;
    let c = committee(3, &[Honest, Honest, AtNextView, AtNextView], 5000).await;
    let (status, body) = c.sign("bip340", b"during a view change").await;
    assert_eq!((status, code(&body)), (503, "view_changing"), "{body}");
    assert!(culprits(&body).is_empty(), "{body}");
    let moved: BTreeSet<String> = body["other_view"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = [2, 3]
        .iter()
        .map(|i| hex::encode(&c.identities[*i]))
        .collect();
    assert_eq!(moved, expected);
    assert!(
        body["message"].as_str().unwrap().contains("retry"),
        "{body}"
    );
    let m = &c.service.metrics().sign;
    for i in 1..4 {
        for fault in ["refused", "unresponsive", "malformed", "invalid_share"] {
            assert_eq!(m.frost_culprits(i, fault), 0, "member {i} {fault}");
        }
    }
    for i in [2, 3] {
        assert_eq!(m.partials(i, "other_view"), 1, "member {i}");
        assert_eq!(m.partials(i, "invalid"), 0, "member {i}");
    }
    assert_eq!(m.rejections("view_changing"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_commitments_is_no_quorum_naming_the_silent_members() {
    // No network for the coordinator's peers: a committee of 3 with t = 2 whose other two
    // members are out of reach.
    let keys = node_keys(3);
    let (record, shares) = signing_key(&keys, 2);
    let config = SignConfig {
        timeout_ms: 300,
        ..SignConfig::default()
    };
    let s = SignService::new(
        config,
        Some(Token::new(TOKEN.as_bytes())),
        Arc::new(Metrics::new()),
        Fault::None,
    );
    s.set_frost_view(Some(
        FrostView::new(1, &record, Some((0, Secret::new(shares[0])))).unwrap(),
    ));
    let dir = tempfile::tempdir().unwrap();
    s.set_nonce_db(Arc::new(
        NonceDb::open(&dir.path().join("n.redb"), keys[0].clone()).unwrap(),
    ));
    let (net, _events, _) = net_node(&keys[0]).await;
    s.set_network(net);
    let addr = serve(s.clone()).await;
    let body = r#"{"scheme":"bip340","message":"00"}"#;
    let (status, body) = post(addr, Some(TOKEN), body).await;
    assert_eq!((status, code(&body)), (504, "no_quorum"), "{body}");
    assert_eq!(
        (body["round"].as_u64(), body["signers"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(body["attempts"], 1);
    let expected: BTreeSet<String> = [1, 2]
        .iter()
        .map(|i| hex::encode(identity(&keys[*i])))
        .collect();
    assert_eq!(culprits(&body), expected);
    for id in &expected {
        assert_eq!(body["faults"][id], "unresponsive");
    }
}

/// A node with the view's signing key and no share of it says why: a member left out of the
/// key's ceremony holds none (`no_signing_key`), a node outside the view's committee is no
/// member, as a BLS request is told.
#[tokio::test]
async fn a_node_without_a_share_of_the_signing_key_says_why() {
    let keys = node_keys(3);
    let (record, _) = signing_key(&keys, 2);
    let s = SignService::new(
        SignConfig::default(),
        Some(Token::new(TOKEN.as_bytes())),
        Arc::new(Metrics::new()),
        Fault::None,
    );
    s.set_frost_view(Some(FrostView::new(4, &record, None).unwrap()));
    let addr = serve(s.clone()).await;
    let ask = async || post(addr, Some(TOKEN), r#"{"scheme":"bip340","message":"00"}"#).await;
    // In the committee (a share of the view's BLS key), left out of the signing key's.
    s.set_view(Some(super::tests::sign_view(3, 2, Some(1))));
    let (status, body) = ask().await;
    assert_eq!((status, code(&body)), (409, "no_signing_key"), "{body}");
    assert_eq!(body["view"], 4);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("holds no share of view 4's")),
        "{body}"
    );
    // Outside the committee.
    s.set_view(Some(super::tests::sign_view(3, 2, None)));
    let (status, body) = ask().await;
    assert_eq!((status, code(&body)), (409, "not_a_member"), "{body}");
    assert_eq!(body["view"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_whose_nonce_store_is_full_answers_signer_unavailable() {
    // The coordinator's own store holds no room for a pair: its own commitment fails, which
    // is a condition of this node (503), not a fault of the signers or a failed combination.
    let keys = node_keys(3);
    let (record, shares) = signing_key(&keys, 2);
    let s = SignService::new(
        SignConfig {
            timeout_ms: 300,
            ..SignConfig::default()
        },
        Some(Token::new(TOKEN.as_bytes())),
        Arc::new(Metrics::new()),
        Fault::None,
    );
    s.set_frost_view(Some(
        FrostView::new(1, &record, Some((0, Secret::new(shares[0])))).unwrap(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let full = NonceDb::open(&dir.path().join("n.redb"), keys[0].clone())
        .unwrap()
        .with_limits(0, 0);
    s.set_nonce_db(Arc::new(full));
    let (net, _events, _) = net_node(&keys[0]).await;
    s.set_network(net);
    let addr = serve(s.clone()).await;
    let (status, body) = post(addr, Some(TOKEN), r#"{"scheme":"bip340","message":"00"}"#).await;
    assert_eq!((status, code(&body)), (503, "signer_unavailable"), "{body}");
    assert!(body["culprits"].as_array().unwrap().is_empty(), "{body}");
}

#[test]
fn released_stores_free_the_nonce_file_while_clones_of_the_service_live() {
    // A status connection's task can hold a clone of the service a moment after the node
    // stopped; the nonce store's file must be free to open again all the same.
    let keys = node_keys(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.redb");
    let s = SignService::disabled(Arc::new(Metrics::new()));
    s.set_nonce_db(Arc::new(NonceDb::open(&path, keys[0].clone()).unwrap()));
    let lingering = s.clone();
    assert!(
        NonceDb::open(&path, keys[0].clone()).is_err(),
        "redb refuses a second open"
    );
    s.release_stores();
    NonceDb::open(&path, keys[0].clone()).expect("released");
    // The clone answers, without a store, with a refusal.
    let answer = lingering.answer_frost(&[0u8; 32], None, b"");
    assert!(!answer.is_empty());
}

#[test]
fn an_empty_nonce_file_is_refused_not_started_over() {
    let keys = node_keys(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frost-nonces.redb");
    drop(NonceDb::open(&path, keys[0].clone()).unwrap());
    std::fs::File::create(&path).unwrap(); // truncates to 0 bytes
    let err = NonceDb::open(&path, keys[0].clone()).unwrap_err();
    assert!(
        matches!(
            &err,
            super::frost::NonceDbError::File(crate::data_file::DataFileError::Empty { .. })
        ),
        "{err}"
    );
}
