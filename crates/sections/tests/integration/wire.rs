//! The sections wire encoding: golden vectors of every message, round trips, typed rejections
//! of non-canonical input, and a fuzz harness (decoding arbitrary or mutated bytes never panics,
//! and whatever decodes encodes back to the same bytes).

use blstrs::Scalar;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_dkg::testing::fuzzing;
use keyquorum_dkg::testing::golden::Vectors;
use keyquorum_dkg::wire::WireError;
use keyquorum_sections::Prefix;
use keyquorum_sections::dkg::DkgMessage;
use keyquorum_sections::elders::Peer;
use keyquorum_sections::keys::key_bytes;
use keyquorum_sections::sap::{KeyShare, Sap, SignedSap, index_at, sign_link, sign_sap};
use keyquorum_sections::session::{DkgStart, FailureObservation};
use keyquorum_sections::wire::Message;
use proptest::prelude::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");

fn secret(seed: u64) -> Secret<Scalar> {
    Secret::new(Scalar::from(seed + 2000))
}

fn peers(count: u64) -> Vec<Peer> {
    let mut peers: Vec<Peer> = (0..count)
        .map(|i| Peer::new(&secret(i), format!("192.0.2.{i}:7000")))
        .collect();
    peers.sort_by_key(Peer::name);
    peers
}

/// One message of every kind, built from fixed keys, with a name for its vector.
fn messages() -> Vec<(&'static str, &'static str, Message)> {
    let prefix = Prefix::ROOT.child(1).unwrap().child(0).unwrap();
    let candidates: Vec<Peer> = peers(12)
        .into_iter()
        .filter(|p| prefix.matches(&p.name()))
        .collect();
    assert!(candidates.len() >= 2);
    let start = DkgStart::new(prefix, candidates.clone(), 4);
    let observation = FailureObservation {
        session: start.session,
        non_participants: candidates.iter().take(2).map(Peer::name).collect(),
    };
    let share = KeyShare {
        index: index_at(1),
        share: secret(90),
        section_key: tbls::public_key::<MinPk>(&secret(91)),
    };
    let sap = Sap {
        prefix,
        elders: candidates.clone(),
        section_key: share.section_key,
    };
    let signed = SignedSap {
        sap: sap.clone(),
        sap_signature: tbls::sign::<MinPk>(&secret(91), &sap.signing_bytes()),
        parent_key: tbls::public_key::<MinPk>(&secret(92)),
        parent_signature: tbls::sign::<MinPk>(&secret(92), &key_bytes(&sap.section_key)),
    };
    vec![
        (
            "start",
            "an elder's signature on a start of two or more candidates under prefix 10",
            Message::Start {
                start: start.clone(),
                signature: start.sign(&secret(50)),
            },
        ),
        (
            "failure",
            "a candidate's signed observation naming two non-participants",
            Message::Failure {
                observation: observation.clone(),
                signature: observation.sign(&secret(0)),
            },
        ),
        (
            "failure_agreement",
            "three signatures on one observation",
            Message::FailureAgreement {
                session: start.session,
                excluded: observation.non_participants.clone(),
                signatures: (0..3).map(|i| observation.sign(&secret(i))).collect(),
            },
        ),
        (
            "dkg_direct",
            "an engine message to one candidate",
            Message::Dkg(DkgMessage::Direct {
                session: start.session,
                payload: vec![1, 2, 3, 4, 5],
            }),
        ),
        (
            "dkg_post",
            "a board post forwarded between candidates",
            Message::Dkg(DkgMessage::Post {
                session: start.session,
                post: vec![9; 20],
            }),
        ),
        (
            "dkg_vote",
            "a vote on two posts of round 2",
            Message::Dkg(DkgMessage::Vote {
                session: start.session,
                round: 2,
                posts: vec![vec![7; 3], vec![8; 5]],
            }),
        ),
        (
            "dkg_behind",
            "a restarted candidate asking for the votes from round 3",
            Message::Dkg(DkgMessage::Behind {
                session: start.session,
                round: 3,
            }),
        ),
        (
            "sap_share",
            "a new elder's partial signature on the new SAP",
            Message::SapShare {
                session: start.session,
                sap: sap.clone(),
                partial: sign_sap(&share, &sap),
            },
        ),
        (
            "link_share",
            "a current elder's partial signature on the new key",
            Message::LinkShare {
                session: start.session,
                new_key: sap.section_key,
                partial: sign_link(&share, &sap.section_key),
            },
        ),
        (
            "new_elders",
            "a SAP with its own and its parent's signature",
            Message::NewElders(signed),
        ),
    ]
}

#[test]
fn every_message_matches_its_golden_vector_and_round_trips() {
    let mut vectors = Vectors::new(DIR, "messages.json");
    for (name, note, message) in messages() {
        let bytes = message.encode();
        assert_eq!(Message::decode(&bytes).as_ref(), Ok(&message), "{name}");
        vectors.add(name, note, &bytes);
    }
    vectors.check();
}

#[test]
fn non_canonical_encodings_are_refused_with_a_typed_error() {
    let all = messages();
    let start = all[0].2.encode();
    // Trailing bytes.
    let mut trailing = start.clone();
    trailing.push(0);
    assert_eq!(Message::decode(&trailing), Err(WireError::Trailing(1)));
    // Unknown tag.
    assert!(matches!(
        Message::decode(&[0xee]),
        Err(WireError::UnknownTag { tag: 0xee, .. })
    ));
    // A prefix of 2 bits whose third bit is set: two encodings of one prefix are not allowed.
    let mut loose = start.clone();
    loose[3] |= 0b0010_0000;
    assert_eq!(
        Message::decode(&loose),
        Err(WireError::NonCanonical("prefix bits"))
    );
    // Candidates out of order.
    let Message::Start {
        start: s,
        signature,
    } = &all[0].2
    else {
        unreachable!()
    };
    let mut swapped = s.clone();
    swapped.candidates.swap(0, 1);
    let bytes = Message::Start {
        start: swapped,
        signature: *signature,
    }
    .encode();
    assert_eq!(
        Message::decode(&bytes),
        Err(WireError::NonCanonical("candidate order"))
    );
    // Names of an observation out of order: the set is written sorted, so flip the two names.
    let failure = all[1].2.encode();
    let mut unsorted = failure.clone();
    let names = 1 + 32 + 4;
    let (a, b) = (
        failure[names..names + 32].to_vec(),
        failure[names + 32..names + 64].to_vec(),
    );
    unsorted[names..names + 32].copy_from_slice(&b);
    unsorted[names + 32..names + 64].copy_from_slice(&a);
    assert_eq!(
        Message::decode(&unsorted),
        Err(WireError::NonCanonical("name order"))
    );
    // A count beyond its bound is refused before anything is allocated.
    let mut huge = failure.clone();
    huge[names - 4..names].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        Message::decode(&huge),
        Err(WireError::TooLong { what: "names", .. })
    ));
    // A node key that is not a point.
    let mut bad_key = all[1].2.encode();
    let sig_at = bad_key.len() - 96 - 48;
    bad_key[sig_at..sig_at + 48].fill(0xff);
    assert_eq!(
        Message::decode(&bad_key),
        Err(WireError::NonCanonical("public key"))
    );
}

fn corpus() -> Vec<Vec<u8>> {
    fuzzing::vectors(&format!("{DIR}/messages.json"))
        .into_values()
        .collect()
}

proptest! {
    #![proptest_config(fuzzing::config(512))]

    /// Decoding never panics, and whatever decodes is canonical: it encodes back to the input.
    #[test]
    fn decoding_arbitrary_bytes_never_panics_and_round_trips(
        bytes in fuzzing::input(corpus(), 2000)
    ) {
        if let Ok(message) = Message::decode(&bytes) {
            prop_assert_eq!(message.encode(), bytes);
        }
    }
}
