use super::*;
use ff::Field;
use group::Curve as _;
use group::prime::PrimeCurveAffine;
use keyquorum_crypto::poly::Polynomial;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// A dealt group of `n` members with threshold `t` and every member's share.
fn deal(n: usize, t: usize, seed: u64) -> (SignGroup, Vec<SignerShare>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let poly = Polynomial::random(t - 1, None, &mut rng);
    let secret = Secret::new(poly.constant());
    let mut members = Vec::new();
    let mut shares = Vec::new();
    for i in 1..=n as u64 {
        let index = Scalar::from(i);
        let share = Secret::new(poly.evaluate(&index));
        members.push((index, tbls::public_key::<MinPk>(&share)));
        shares.push(SignerShare { index, share });
    }
    let group = SignGroup::new(t, members, tbls::public_key::<MinPk>(&secret)).unwrap();
    (group, shares)
}

fn request() -> SignRequest {
    SignRequest::new("example.org/v1", &[0xde, 0xad, 0xbe, 0xef]).unwrap()
}

fn partial_request(view: u64) -> Vec<u8> {
    PartialRequest {
        view,
        request: request(),
    }
    .to_bytes()
}

#[test]
fn signing_bytes_golden_vector() {
    // "keyquorum/sign/v1" || 0x0e || "example.org/v1" || de ad be ef
    let expect = "6b657971756f72756d2f7369676e2f76310e6578616d706c652e6f72672f7631deadbeef";
    assert_eq!(
        hex::encode(signing_bytes(b"example.org/v1", &[0xde, 0xad, 0xbe, 0xef]).unwrap()),
        expect
    );
    assert_eq!(hex::encode(request().signing_bytes()), expect);
    // Empty message, longest domain.
    let d = [b'a'; MAX_DOMAIN_LEN];
    let got = signing_bytes(&d, &[]).unwrap();
    assert_eq!(got.len(), SIGNING_TAG.len() + 1 + MAX_DOMAIN_LEN);
    assert_eq!(got[SIGNING_TAG.len()], 64);
}

#[test]
fn the_length_prefix_separates_domain_and_message() {
    let a = signing_bytes(b"ab", b"c").unwrap();
    let b = signing_bytes(b"a", b"bc").unwrap();
    assert_ne!(a, b);
}

#[test]
fn every_bad_domain_is_refused() {
    for (bad, first_unprintable) in [
        (&b""[..], None),
        (&[b'a'; 65][..], None),
        (b"tab\there", Some(3)),
        (b"new\nline", Some(3)),
        (b"\x7f", Some(0)),
        ("é".as_bytes(), Some(0)),
    ] {
        assert_eq!(
            signing_bytes(bad, b"m"),
            Err(RequestError::BadDomain {
                len: bad.len(),
                first_unprintable
            }),
            "{bad:?}"
        );
    }
    // The message says which byte, where the length is not what is wrong.
    let e = check_domain(b"tab\there").unwrap_err().to_string();
    assert!(e.ends_with("got 8 bytes, byte 3 not printable"), "{e}");
    assert!(check_domain(b" ~").is_ok());
}

#[test]
fn messages_longer_than_the_bound_are_refused() {
    assert!(signing_bytes(b"d", &vec![0; MAX_MESSAGE_LEN]).is_ok());
    assert_eq!(
        signing_bytes(b"d", &vec![0; MAX_MESSAGE_LEN + 1]),
        Err(RequestError::MessageTooLong {
            len: MAX_MESSAGE_LEN + 1
        })
    );
}

#[test]
fn json_requests_are_validated() {
    let ok = SignRequest::from_json(br#"{"domain":"example.org/v1","message":"deadbeef"}"#);
    assert_eq!(ok, Ok(request()));
    let code = |body: &[u8]| SignRequest::from_json(body).unwrap_err().code();
    assert_eq!(code(b"not json"), "bad_json");
    assert_eq!(code(br#"{"domain":"d"}"#), "bad_json");
    assert_eq!(
        code(br#"{"domain":"d","message":"00","extra":1}"#),
        "bad_json"
    );
    assert_eq!(code(br#"{"domain":"","message":"00"}"#), "bad_domain");
    assert_eq!(code(br#"{"domain":"d","message":"0x00"}"#), "bad_message");
    assert_eq!(code(br#"{"domain":"d","message":"abc"}"#), "bad_message");
    let long = format!(
        r#"{{"domain":"d","message":"{}"}}"#,
        "00".repeat(MAX_MESSAGE_LEN + 1)
    );
    assert_eq!(code(long.as_bytes()), "message_too_long");
    assert_eq!(code(&vec![b' '; MAX_REQUEST_JSON + 1]), "too_large");
}

#[test]
fn partial_requests_roundtrip_and_are_bounded() {
    let bytes = partial_request(7);
    assert_eq!(
        PartialRequest::from_bytes(&bytes),
        Ok(PartialRequest {
            view: 7,
            request: request()
        })
    );
    for cut in [0, 5, 8, 9, 12] {
        assert_eq!(
            PartialRequest::from_bytes(&bytes[..cut]),
            Err(RequestError::Truncated),
            "{cut}"
        );
    }
    let mut bad = bytes.clone();
    bad[9] = 0x01;
    assert!(matches!(
        PartialRequest::from_bytes(&bad),
        Err(RequestError::BadDomain { .. })
    ));
    let mut zero = bytes.clone();
    zero[8] = 0;
    assert!(PartialRequest::from_bytes(&zero).is_err());
    let mut huge = bytes[..9 + 14].to_vec();
    huge.extend(vec![0u8; MAX_MESSAGE_LEN + 1]);
    assert!(PartialRequest::from_bytes(&huge).is_err());
}

#[test]
fn members_sign_only_well_formed_requests_for_the_active_view() {
    let (group, shares) = deal(4, 3, 1);
    let good = answer_partial(5, Some(&shares[0]), &partial_request(5));
    let PartialAnswer::Partial(p) = good else {
        panic!("{good:?}")
    };
    assert_eq!(p.index, group.index_of(0).unwrap());
    assert_eq!(
        answer_partial(5, Some(&shares[0]), &partial_request(4)),
        PartialAnswer::Refused(Refusal::OtherView)
    );
    assert_eq!(
        answer_partial(5, None, &partial_request(5)),
        PartialAnswer::Refused(Refusal::NoShare)
    );
    assert_eq!(
        answer_partial(5, Some(&shares[0]), b"junk"),
        PartialAnswer::Refused(Refusal::Malformed)
    );
    for a in [
        good,
        PartialAnswer::Refused(Refusal::OtherView),
        PartialAnswer::Refused(Refusal::NoShare),
        PartialAnswer::Refused(Refusal::Malformed),
    ] {
        let bytes = a.to_bytes();
        assert!(bytes.len() <= MAX_PARTIAL_ANSWER_LEN);
        assert_eq!(PartialAnswer::from_bytes(&bytes), Some(a));
    }
    assert_eq!(PartialAnswer::from_bytes(&[1, 9]), None);
    assert_eq!(PartialAnswer::from_bytes(&[]), None);
    assert_eq!(PartialAnswer::from_bytes(&[0; 129]), None);
}

fn answer(shares: &[SignerShare], member: usize) -> Vec<u8> {
    answer_partial(1, Some(&shares[member]), &partial_request(1)).to_bytes()
}

#[test]
fn t_valid_partials_combine_to_a_signature_blst_verifies() {
    let (group, shares) = deal(5, 3, 2);
    let req = request();
    let mut c = Collector::new(&group, &req);
    assert_eq!(
        c.add_answer(4, &answer(&shares, 4)),
        Ok(Progress::NeedMore {
            valid: 1,
            threshold: 3
        })
    );
    c.add_answer(1, &answer(&shares, 1)).unwrap();
    let Ok(Progress::Done(sig)) = c.add_answer(2, &answer(&shares, 2)) else {
        panic!("t partials")
    };
    assert!(c.culprits().is_empty());
    // An independent implementation of the ciphersuite, on the bytes the API returns.
    let pk = blst::min_pk::PublicKey::from_bytes(&group.group_key().to_compressed()).unwrap();
    let sig = blst::min_pk::Signature::from_bytes(&sig.to_compressed()).unwrap();
    let msg = req.signing_bytes();
    assert_eq!(
        sig.verify(true, &msg, tbls::MIN_PK_POP_DST, &[], &pk, true),
        blst::BLST_ERROR::BLST_SUCCESS
    );
    assert_ne!(
        sig.verify(
            true,
            &msg,
            b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_",
            &[],
            &pk,
            true
        ),
        blst::BLST_ERROR::BLST_SUCCESS
    );
}

#[test]
fn a_bad_partial_names_its_sender_and_the_rest_still_combine() {
    let (group, shares) = deal(4, 3, 3);
    let req = request();
    let mut c = Collector::new(&group, &req);
    // Member 0 signs another message.
    let other = PartialRequest {
        view: 1,
        request: SignRequest::new("other", b"x").unwrap(),
    };
    let wrong = answer_partial(1, Some(&shares[0]), &other.to_bytes()).to_bytes();
    assert_eq!(
        c.add_answer(0, &wrong),
        Err(PartialRejected::Invalid { member: 0 })
    );
    // It is not asked again: a second answer is a duplicate, even a good one.
    assert_eq!(
        c.add_answer(0, &answer(&shares, 0)),
        Err(PartialRejected::Duplicate { member: 0 })
    );
    // Member 1 replays member 2's partial (a valid partial under another index).
    let PartialAnswer::Partial(p2) = PartialAnswer::from_bytes(&answer(&shares, 2)).unwrap() else {
        panic!()
    };
    assert_eq!(c.add(1, p2), Err(PartialRejected::Invalid { member: 1 }));
    // Member 3 answers bytes that are no answer.
    assert_eq!(
        c.add_answer(3, &[0, 1, 2]),
        Err(PartialRejected::Invalid { member: 3 })
    );
    assert_eq!(c.culprits(), &[0, 1, 3]);
    c.add_answer(2, &answer(&shares, 2)).unwrap();
    assert_eq!(
        c.no_quorum(),
        NoQuorum {
            valid: 1,
            threshold: 3,
            culprits: vec![0, 1, 3],
            other_view: Vec::new(),
        }
    );
    assert_eq!(
        c.no_quorum().to_string(),
        "no quorum: 1 valid partials of 3 needed (3 bad)"
    );
}

#[test]
fn refusals_unknown_members_and_duplicates_do_not_count() {
    let (group, shares) = deal(3, 2, 4);
    let req = request();
    let mut c = Collector::new(&group, &req);
    let refused = PartialAnswer::Refused(Refusal::OtherView).to_bytes();
    assert_eq!(
        c.add_answer(0, &refused),
        Err(PartialRejected::NoPartial {
            member: 0,
            refusal: Refusal::OtherView
        })
    );
    assert_eq!(
        c.add_answer(9, &answer(&shares, 0)),
        Err(PartialRejected::UnknownMember { member: 9 })
    );
    c.add_answer(1, &answer(&shares, 1)).unwrap();
    assert_eq!(
        c.add_answer(1, &answer(&shares, 1)),
        Err(PartialRejected::Duplicate { member: 1 })
    );
    assert_eq!(c.valid(), 1);
    assert!(c.culprits().is_empty());
    assert!(matches!(
        c.add_answer(2, &answer(&shares, 2)),
        Ok(Progress::Done(_))
    ));
}

#[test]
fn a_collection_short_of_t_names_the_members_at_another_view_apart_from_culprits() {
    let (group, shares) = deal(4, 3, 6);
    let req = request();
    let mut c = Collector::new(&group, &req);
    c.add_answer(0, &answer(&shares, 0)).unwrap();
    for member in [1, 2] {
        c.add_answer(
            member,
            &PartialAnswer::Refused(Refusal::OtherView).to_bytes(),
        )
        .unwrap_err();
    }
    c.add_answer(3, &PartialAnswer::Refused(Refusal::NoShare).to_bytes())
        .unwrap_err();
    // A refusal for another member's position outside the group names nobody.
    c.add_answer(9, &PartialAnswer::Refused(Refusal::OtherView).to_bytes())
        .unwrap_err();
    let no = c.no_quorum();
    assert_eq!((no.valid, no.threshold), (1, 3));
    assert!(no.culprits.is_empty());
    assert_eq!(no.other_view, vec![1, 2]);
    assert_eq!(
        no.to_string(),
        "no quorum: 1 valid partials of 3 needed (0 bad, 2 members at another view)"
    );
    assert!(no.view_changing());
    // Not when the members at another view could not have made up the difference, nor with a
    // bad partial.
    let short = NoQuorum {
        other_view: vec![1],
        ..no.clone()
    };
    assert!(!short.view_changing());
    let bad = NoQuorum {
        culprits: vec![3],
        ..no
    };
    assert!(!bad.view_changing());
}

#[test]
fn groups_whose_shares_do_not_match_the_key_are_refused() {
    let (group, _) = deal(3, 2, 5);
    let members: Vec<_> = (0..3)
        .map(|i| (group.index_of(i).unwrap(), group.members[i].1))
        .collect();
    let other = (blstrs::G1Affine::generator() * Scalar::ONE.double()).to_affine();
    assert_eq!(
        SignGroup::new(2, members.clone(), other).unwrap_err(),
        GroupError::SharesDoNotMatchGroupKey
    );
    assert_eq!(
        SignGroup::new(4, members.clone(), *group.group_key()).unwrap_err(),
        GroupError::BadThreshold { threshold: 4, n: 3 }
    );
    assert_eq!(
        SignGroup::new(0, members, *group.group_key()).unwrap_err(),
        GroupError::BadThreshold { threshold: 0, n: 3 }
    );
}
