//! A member that finds the view's signing-key ceremony started while it was catching up with the
//! chain: it follows the ceremony's board until caught up, then takes part unless it may have
//! dealt with a seed it no longer has. Down while the ceremony started, on its own database, it
//! did not deal: it joins, its deals and posts count and it holds a share of the key. With a
//! new database in the deal phase, whose deals leave no trace on the board yet, it may have
//! dealt before its database was lost: it sits out and nobody is slashed for misbehaviour (its
//! report, made at once since every deal verified, is lost with it).

use keyquorum_contract::config::{KeyMode, SigningKeyConfig};
use keyquorum_contract::signing_key::{SigningCurve, SigningKeyRecord};
use keyquorum_contract::state::FaultCeremony;
use keyquorum_contract::tx::TxBody;
use keyquorum_contract::{ContractConfig, Event};
use keyquorum_dkg::complaint::ComplaintBoardPhase;
use keyquorum_dkg::complaint::messages::{ComplaintPost, SignedComplaintPost};
use keyquorum_node::report::Reporter;
use keyquorum_node::status::{SAT_OUT_NO_RECORD, SAT_OUT_SIGNING_KEY, SittingOutStatus};
use keyquorum_node::store::Seat;

use crate::common;

use common::Harness;

const N: usize = 4;
const AWAY: usize = 2;

fn config() -> ContractConfig {
    let mut c = common::small_network("signing-key-catch-up", N as u32, 3, KeyMode::Reshare);
    c.view_length = 200;
    c.dkg.signing_key = Some(SigningKeyConfig::SECP256K1_FROST);
    c
}

fn started(h: &Harness) -> bool {
    h.events()
        .any(|e| matches!(e, Event::SigningKeyStarted { .. }))
}

fn created(h: &Harness) -> Option<SigningKeyRecord> {
    h.events().find_map(|e| match e {
        Event::SigningKeyCreated { view: 1, key } => Some(key.clone()),
        _ => None,
    })
}

fn signing_posts(h: &Harness, i: usize) -> usize {
    h.submitted[i]
        .iter()
        .filter(|b| matches!(b, TxBody::SigningKeyPost { .. }))
        .count()
}

/// A network whose view-1 signing-key ceremony just started, in which the member dealt; and how
/// many messages it sent.
fn dealt_as_it_started() -> (Harness, usize) {
    let stakes: Vec<u64> = (0..N as u64).map(|i| 100 - i).collect();
    let mut h = Harness::new(config(), &stakes);
    h.set_verifiable_keys();
    h.run_until(150, started);
    let sent = h.sent[AWAY].len();
    assert!(sent >= N - 1, "it dealt");
    (h, sent)
}

/// The crash takes the member's one signing-key post that has not gone out yet, which must be
/// of the kind `kind` names.
fn lose_unsent_post(h: &mut Harness, kind: fn(&ComplaintPost<SigningCurve>) -> bool) {
    let unsent: Vec<&TxBody> = h
        .pending
        .iter()
        .filter(|(i, _)| *i == AWAY)
        .map(|(_, tx)| tx)
        .collect();
    let [TxBody::SigningKeyPost { post }] = &unsent[..] else {
        panic!("{unsent:?}")
    };
    let post = SignedComplaintPost::<SigningCurve>::decode(post, N, N).unwrap();
    assert!(kind(&post.post), "{:?}", post.post);
    h.pending.retain(|(i, _)| *i != AWAY);
}

fn position(h: &Harness, key: &SigningKeyRecord, i: usize) -> u32 {
    let id = h.keys[i].identity().public().to_bytes();
    key.members.iter().position(|m| m.identity.0 == id).unwrap() as u32
}

/// The chain's signing-key slashings, as (node identity, misbehaviour).
fn signing_slashings(h: &Harness) -> Vec<(Vec<u8>, bool)> {
    h.contract
        .state()
        .slashings
        .iter()
        .filter(|r| r.ceremony == FaultCeremony::SigningKey)
        .map(|r| (r.identity.0.to_vec(), r.misbehaviour))
        .collect()
}

#[test]
fn a_member_down_when_the_signing_key_ceremony_started_joins_once_caught_up() {
    let stakes: Vec<u64> = (0..N as u64).map(|i| 100 - i).collect();
    let mut h = Harness::new(config(), &stakes);
    h.set_verifiable_keys();
    // Live and caught up (the runtime reports the head) until it has signed view 1's magic
    // block, then down while the view activates and its signing-key ceremony starts, and one
    // block more.
    h.run_until(100, |h| {
        h.events()
            .any(|e| matches!(e, Event::MagicBlockCreated { view: 1, .. }))
    });
    let head = h.height;
    h.drivers[AWAY].as_mut().unwrap().set_head(head).unwrap();
    h.drivers[AWAY] = None;
    h.run_until(50, started);
    h.step();
    assert!(created(&h).is_none());
    assert_eq!(signing_posts(&h, AWAY), 0);
    // Back on its own database: the ceremony's start is history it catches up on.
    let effects = h.reopen(AWAY);
    h.catch_up_to_head(AWAY, effects);
    h.step();
    let rec = h.driver(AWAY).state().signing_ceremony.clone();
    assert_eq!(rec.map(|r| r.seat), Some(Seat::Participant));

    h.run_until(100, |h| created(h).is_some());
    let key = created(&h).unwrap();
    assert!(signing_posts(&h, AWAY) > 0, "it posted nothing");
    assert!(h.events().all(|e| !matches!(
        e,
        Event::SigningKeyBoardPost {
            accepted: false,
            ..
        }
    )));
    // Its deals and report counted: it qualified, holds a share, and nobody was slashed.
    assert!(
        key.qualified.contains(&position(&h, &key, AWAY)),
        "{:?}",
        key.excluded
    );
    assert!(key.excluded.is_empty(), "{:?}", key.excluded);
    let (held, share) = h.driver(AWAY).signing_key(1).unwrap().unwrap();
    assert_eq!(held.key, key);
    assert!(held.own_position.is_some() && share.is_some());
    assert!(signing_slashings(&h).is_empty());
}

#[test]
fn a_member_with_a_new_database_in_the_signing_key_deal_phase_sits_it_out() {
    // It dealt as the ceremony started; its database is lost before any report names it.
    let (mut h, sent) = dealt_as_it_started();
    // Every deal to it verified, so it reported at once; the crash takes that report with it
    // before it reaches the chain.
    lose_unsent_post(&mut h, |p| matches!(p, ComplaintPost::Report(_)));
    let posted = signing_posts(&h, AWAY);
    h.restart_with_lost_database(AWAY);
    let rec = h.driver(AWAY).state().signing_ceremony.clone();
    assert_eq!(rec.map(|r| r.seat), Some(Seat::SittingOut));
    // `/status` says which ceremony it sits out and why, beside the view's (none here), and
    // that it stays a member for the next one; so does a restart.
    let session_id = h
        .events()
        .find_map(|e| match e {
            Event::SigningKeyStarted { session_id, .. } => Some(hex::encode(session_id.0)),
            _ => None,
        })
        .unwrap();
    let expected = SittingOutStatus {
        ceremony: SAT_OUT_SIGNING_KEY.into(),
        variant: "complaint".into(),
        view: 1,
        ceremony_number: 0,
        session_id,
        reason: SAT_OUT_NO_RECORD.into(),
        member_of_next: true,
    };
    let shown = |h: &Harness| {
        let s = h.status[AWAY].lock().unwrap();
        (s.sitting_out.clone(), s.signing_key_sitting_out.clone())
    };
    assert_eq!(shown(&h), (None, Some(expected.clone())));
    h.drivers[AWAY] = None;
    h.status[AWAY] = Default::default();
    h.reporters[AWAY] = Reporter::new(h.status[AWAY].clone(), h.metrics[AWAY].clone());
    let effects = h.reopen(AWAY);
    h.apply(AWAY, effects);
    assert_eq!(shown(&h), (None, Some(expected.clone())));

    h.run_until(100, |h| created(h).is_some());
    let key = created(&h).unwrap();
    // No second deal with another commitment (that would be equivocation), no more posts.
    assert_eq!(h.sent[AWAY].len(), sent, "it dealt again");
    assert_eq!(signing_posts(&h, AWAY), posted);
    assert!(!key.qualified.contains(&position(&h, &key, AWAY)));
    // It checked the chain's key against the board it followed and holds no share.
    let (held, share) = h.driver(AWAY).signing_key(1).unwrap().unwrap();
    assert_eq!(held.key, key);
    assert!(held.own_position.is_none() && share.is_none());
    // Its absence (the report it did not make) is recorded, no misbehaviour: it sits out the
    // next view's signing-key ceremony, which `/status` now says.
    let away = h.keys[AWAY].identity().public().to_bytes().to_vec();
    assert_eq!(signing_slashings(&h), vec![(away, false)]);
    let next = SittingOutStatus {
        member_of_next: false,
        ..expected
    };
    assert_eq!(shown(&h), (None, Some(next)));
}

/// As above, but the report it made at once (every deal verified) reaches the chain before its
/// database is lost, as it usually does (the crash takes only its Feldman values, made once the
/// reports closed). It still sits out: it deals nothing again and posts nothing more. Its
/// report puts it among the players and, with every member's edges, in the clique, so the
/// board waits for its Feldman values, which it cannot make: its contribution is reconstructed
/// from the others' pairs, the key is made, and it is charged with an absence, never with
/// misbehaviour.
#[test]
fn a_member_whose_early_report_landed_before_its_database_was_lost_sits_out() {
    let (mut h, sent) = dealt_as_it_started();
    assert_eq!(signing_posts(&h, AWAY), 1, "its report");
    // The report lands, with every other: the deal and report phases close, and it makes its
    // Feldman values at once. It crashes before they go out, losing its database.
    h.step();
    lose_unsent_post(&mut h, |p| matches!(p, ComplaintPost::Feldman(_)));
    let away_position = {
        let board = h.contract.signing_board().unwrap();
        let id = h.keys[AWAY].identity().public().clone();
        let position = board
            .ceremony()
            .players()
            .iter()
            .position(|p| p.identity == id)
            .unwrap() as u32;
        assert!(board.has_report(position));
        position
    };
    let posted = signing_posts(&h, AWAY);
    h.restart_with_lost_database(AWAY);
    let rec = h.driver(AWAY).state().signing_ceremony.clone();
    assert_eq!(rec.map(|r| r.seat), Some(Seat::SittingOut));

    h.run_until(100, |h| created(h).is_some());
    let key = created(&h).unwrap();
    assert_eq!(h.sent[AWAY].len(), sent, "it dealt again");
    assert_eq!(signing_posts(&h, AWAY), posted);
    // Its contribution stays in the key, reconstructed; it holds no share of it.
    assert!(key.qualified.contains(&away_position), "{:?}", key.excluded);
    let (held, share) = h.driver(AWAY).signing_key(1).unwrap().unwrap();
    assert_eq!(held.key, key);
    assert!(share.is_none());
    let away = h.keys[AWAY].identity().public().to_bytes().to_vec();
    assert_eq!(signing_slashings(&h), vec![(away, false)]);
}

/// Down on its own database from before the signing-key ceremony starts until its reports
/// are closed, a member has not dealt and its deals could no longer count: it plays only. It
/// sends no deal, the key is made without it (a fresh key's qualified set is a clique of mutual
/// deals), it holds no share, and `/status` does not call it sitting out.
#[test]
fn a_member_back_after_the_signing_key_reports_plays_without_dealing() {
    let stakes: Vec<u64> = (0..N as u64).map(|i| 100 - i).collect();
    let mut h = Harness::new(config(), &stakes);
    h.set_verifiable_keys();
    h.run_until(100, |h| {
        h.events()
            .any(|e| matches!(e, Event::MagicBlockCreated { view: 1, .. }))
    });
    let head = h.height;
    h.drivers[AWAY].as_mut().unwrap().set_head(head).unwrap();
    h.drivers[AWAY] = None;
    h.run_until(50, |h| {
        h.contract
            .signing_board()
            .is_some_and(|b| b.phase() > ComplaintBoardPhase::Report)
    });
    let sent = h.sent[AWAY].len();
    let effects = h.reopen(AWAY);
    h.catch_up_to_head(AWAY, effects);
    h.step();
    let rec = h.driver(AWAY).state().signing_ceremony.clone();
    assert_eq!(rec.map(|r| r.seat), Some(Seat::Player));
    let shown = h.status[AWAY]
        .lock()
        .unwrap()
        .signing_key_sitting_out
        .clone();
    assert_eq!(shown, None);

    h.run_until(100, |h| created(h).is_some());
    let key = created(&h).unwrap();
    assert_eq!(h.sent[AWAY].len(), sent, "it dealt");
    assert!(!key.qualified.contains(&position(&h, &key, AWAY)));
    let (held, share) = h.driver(AWAY).signing_key(1).unwrap().unwrap();
    assert_eq!(held.key, key);
    assert!(share.is_none());
    for (_, misbehaviour) in signing_slashings(&h) {
        assert!(!misbehaviour);
    }
}
