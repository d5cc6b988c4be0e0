//! Fetching rounds in batches: the request and answer encodings refuse what is out of bounds,
//! and a fetched round is taken only when it is the next one, chains to the stored one and
//! verifies.

use crate::common;

use common::{deal, first_chain, nodes, tick};
use keyquorum_beacon::sync::{
    MAX_SYNC_ANSWER_LEN, MAX_SYNC_ROUNDS, RATE_LIMITED_LEN, SYNC_REQUEST_LEN, SyncAnswer,
    SyncError, SyncRequest, check_link, decode_answer, decode_rounds, encode_rate_limited,
    encode_rounds,
};
use keyquorum_beacon::{ChainInfo, PedersenBlsChained, PedersenBlsUnchained, Round, verify_round};

/// `rounds` rounds of a 2-of-3 chain of scheme `S`, as a member stored them.
fn chain<S: keyquorum_beacon::DrandScheme>(rounds: u64, mb: u8) -> (ChainInfo, Vec<Round>)
where
    S::Public: keyquorum_crypto::Curve<Scalar = blstrs::Scalar>,
{
    let dealt = deal::<S>(3, 2, None, u64::from(mb));
    let info = first_chain(&dealt.group, mb);
    let mut nodes = nodes(&dealt, &info);
    for r in 1..=rounds {
        tick(&mut nodes, &[true; 3], r);
    }
    let stored: Vec<Round> = nodes[0].store.0.values().cloned().collect();
    assert_eq!(stored.len() as u64, rounds);
    (info, stored)
}

fn request(from: u64, count: u32) -> SyncRequest {
    SyncRequest {
        chain: [9; 32],
        from,
        count,
    }
}

#[test]
fn requests_round_trip_and_out_of_range_ones_are_refused() {
    let r = request(17, 40);
    assert_eq!(SyncRequest::from_bytes(&r.to_bytes()), Ok(r));
    assert_eq!(r.last(), 56);
    let bytes = r.to_bytes();
    assert_eq!(
        SyncRequest::from_bytes(&bytes[..SYNC_REQUEST_LEN - 1]),
        Err(SyncError::RequestLength(SYNC_REQUEST_LEN - 1))
    );
    assert_eq!(
        SyncRequest::from_bytes(&[bytes.as_slice(), &[0]].concat()),
        Err(SyncError::RequestLength(SYNC_REQUEST_LEN + 1))
    );
    for (from, count) in [(0, 1), (1, 0), (1, MAX_SYNC_ROUNDS + 1), (u64::MAX, 2)] {
        assert_eq!(
            SyncRequest::from_bytes(&request(from, count).to_bytes()),
            Err(SyncError::BadRange { from, count }),
            "{from} {count}"
        );
    }
    assert!(SyncRequest::from_bytes(&request(1, MAX_SYNC_ROUNDS).to_bytes()).is_ok());
}

#[test]
fn a_lagging_node_asks_for_bounded_batches() {
    assert_eq!(SyncRequest::after([1; 32], 5, 5), None);
    assert_eq!(SyncRequest::after([1; 32], 6, 5), None);
    assert_eq!(
        SyncRequest::after([1; 32], 5, 7),
        Some(SyncRequest {
            chain: [1; 32],
            from: 6,
            count: 2
        })
    );
    let far = SyncRequest::after([1; 32], 0, 100_000).unwrap();
    assert_eq!((far.from, far.count), (1, MAX_SYNC_ROUNDS));
}

#[test]
fn a_refusal_is_told_apart_from_rounds_and_bounded() {
    let asked = request(1, MAX_SYNC_ROUNDS);
    let refusal = encode_rate_limited(1500);
    assert_eq!(refusal.len(), RATE_LIMITED_LEN);
    assert_eq!(
        decode_answer(&asked, &refusal),
        Ok(SyncAnswer::RateLimited {
            retry_after_ms: 1500
        })
    );
    // Rounds still decode as rounds.
    let (_, rounds) = chain::<PedersenBlsChained>(2, 4);
    assert_eq!(
        decode_answer(&asked, &encode_rounds(&rounds)),
        Ok(SyncAnswer::Rounds(rounds))
    );
    assert_eq!(
        decode_answer(&asked, &encode_rounds(&[])),
        Ok(SyncAnswer::Rounds(Vec::new()))
    );
    // A refusal of any other length is malformed, not a wait of some other size.
    for bad in [
        &refusal[..5],
        &[refusal.as_slice(), &[0]].concat()[..],
        &refusal[..2],
    ] {
        assert_eq!(
            decode_answer(&asked, bad),
            Err(SyncError::Malformed("refusal length"))
        );
    }
    // Read as rounds (by a node that does not know refusals), it is too many for any request.
    assert!(matches!(
        decode_rounds(&asked, &refusal),
        Err(SyncError::TooMany { .. })
    ));
}

#[test]
fn answers_round_trip_within_their_bound_and_malformed_ones_are_refused() {
    let (_, rounds) = chain::<PedersenBlsChained>(4, 1);
    let asked = request(1, 4);
    let bytes = encode_rounds(&rounds);
    assert_eq!(decode_rounds(&asked, &bytes).unwrap(), rounds);
    assert_eq!(decode_rounds(&asked, &encode_rounds(&[])).unwrap(), []);

    // The largest answer fits the bound the network enforces.
    let big = Round {
        round: 1,
        signature: vec![1; 96],
        previous_signature: Some(vec![2; 96]),
    };
    let full = encode_rounds(&vec![big; MAX_SYNC_ROUNDS as usize + 5]);
    assert_eq!(full.len(), MAX_SYNC_ANSWER_LEN);
    assert_eq!(
        decode_rounds(&request(1, MAX_SYNC_ROUNDS), &full)
            .unwrap()
            .len(),
        MAX_SYNC_ROUNDS as usize
    );

    // More rounds than asked for.
    assert_eq!(
        decode_rounds(&request(1, 3), &bytes),
        Err(SyncError::TooMany {
            asked: 3,
            actual: 4
        })
    );
    // Truncated anywhere, or with a byte after the last round.
    for cut in [1, 9, 10, bytes.len() - 1] {
        assert_eq!(
            decode_rounds(&asked, &bytes[..cut]),
            Err(SyncError::Malformed("truncated")),
            "{cut}"
        );
    }
    assert_eq!(
        decode_rounds(&asked, &[bytes.as_slice(), &[0]].concat()),
        Err(SyncError::Malformed("bytes after the last round"))
    );
    // A signature length past the longest signature.
    let mut long = encode_rounds(&rounds[..1]);
    long[2 + 8] = 97;
    assert_eq!(
        decode_rounds(&asked, &long),
        Err(SyncError::Malformed("signature length"))
    );
    // An empty previous signature reads as none, as in drand's JSON.
    let unchained = Round {
        round: 3,
        signature: vec![5; 96],
        previous_signature: None,
    };
    assert_eq!(
        decode_rounds(&asked, &encode_rounds(std::slice::from_ref(&unchained))).unwrap(),
        [unchained]
    );
}

#[test]
fn a_fetched_round_must_be_the_next_one_and_chain_to_the_stored_one() {
    let (info, rounds) = chain::<PedersenBlsChained>(4, 2);
    // From nothing: round 1 first, then each round after its predecessor.
    check_link(&info, None, &rounds[0]).unwrap();
    for pair in rounds.windows(2) {
        check_link(&info, Some(&pair[0]), &pair[1]).unwrap();
        verify_round(&info, &pair[1]).unwrap();
    }
    assert_eq!(
        check_link(&info, None, &rounds[1]),
        Err(SyncError::NotNext {
            expected: 1,
            actual: 2
        })
    );
    assert_eq!(
        check_link(&info, Some(&rounds[0]), &rounds[2]),
        Err(SyncError::NotNext {
            expected: 2,
            actual: 3
        })
    );

    // Another chain's round 2 verifies under that chain, not this one, and its previous
    // signature is not this chain's round 1.
    let (other_info, other) = chain::<PedersenBlsChained>(2, 3);
    verify_round(&other_info, &other[1]).unwrap();
    assert_eq!(
        check_link(&info, Some(&rounds[0]), &other[1]),
        Err(SyncError::Unlinked(2))
    );
    assert!(verify_round(&info, &other[1]).is_err());

    // A round that names the right previous signature but whose own signature was changed
    // passes the link and fails verification: both checks are needed, and both are made.
    let mut tampered = rounds[2].clone();
    tampered.signature = rounds[3].signature.clone();
    check_link(&info, Some(&rounds[1]), &tampered).unwrap();
    assert!(verify_round(&info, &tampered).is_err());
    // A round re-pointed at a made-up previous signature verifies under nothing.
    let mut repointed = rounds[2].clone();
    repointed.previous_signature = Some(rounds[0].signature.clone());
    assert_eq!(
        check_link(&info, Some(&rounds[1]), &repointed),
        Err(SyncError::Unlinked(3))
    );
}

#[test]
fn unchained_rounds_need_only_be_the_next_ones() {
    let (info, rounds) = chain::<PedersenBlsUnchained>(3, 4);
    check_link(&info, None, &rounds[0]).unwrap();
    check_link(&info, Some(&rounds[0]), &rounds[1]).unwrap();
    check_link(&info, Some(&rounds[1]), &rounds[2]).unwrap();
    assert!(check_link(&info, Some(&rounds[0]), &rounds[2]).is_err());
}
