//! Known-answer tests against real drand networks: mainnet `default` (chained, 30 s), mainnet
//! `quicknet` (`bls-unchained-g1-rfc9380`, 3 s), the retired `fastnet` (`bls-unchained-on-g1`)
//! and the `testnet-unchained-3s` testnet (`pedersen-bls-unchained`). Where each vector comes
//! from is recorded in `tests/vectors/SOURCES.md`.
//!
//! Every published chain hash must equal the one recomputed from the info, every published
//! round must verify, and every tampering must fail.

use keyquorum_beacon::hexfield::HexError;
use keyquorum_beacon::scheme::SignatureError;
use keyquorum_beacon::{
    ChainInfo, InfoError, Round, RoundDecodeError, SchemeId, VerifyError, verify_round,
    verify_round_number,
};

fn vector(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn info(name: &str) -> ChainInfo {
    ChainInfo::from_json(&vector(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn round(name: &str) -> Round {
    Round::from_json(&vector(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const DEFAULT_HASH: &str = "8990e7a9aaed2ffed73dbd7092123d6f289930540d7651336225dc172e51b2ce";
const QUICKNET_HASH: &str = "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971";

#[test]
fn published_chain_hashes_are_recomputed() {
    for (file, scheme, hash, period, genesis) in [
        (
            "default-info.json",
            SchemeId::PedersenBlsChained,
            DEFAULT_HASH,
            30,
            1595431050,
        ),
        (
            "quicknet-info.json",
            SchemeId::BlsUnchainedG1Rfc9380,
            QUICKNET_HASH,
            3,
            1692803367,
        ),
        (
            "fastnet-info.json",
            SchemeId::BlsUnchainedOnG1,
            "dbd506d6ef76e5f386f41c651dcb808c5bcbd75471cc4eafa3f4df7ad4e4c493",
            3,
            1677685200,
        ),
        (
            "testnet-unchained-info.json",
            SchemeId::PedersenBlsUnchained,
            "7672797f548f3f4748ac4bf3352fc6c6b6468c9ad40ad456a397545c6e2df5bf",
            3,
            1651677099,
        ),
    ] {
        let i = info(file);
        assert_eq!(i.scheme(), scheme, "{file}");
        assert_eq!(hex::encode(i.hash()), hash, "{file}");
        assert_eq!(i.period_secs(), period, "{file}");
        assert_eq!(i.genesis_time(), genesis, "{file}");
        // Our encoding decodes to the same info (and so carries the same hash).
        assert_eq!(ChainInfo::from_json(i.to_json().as_bytes()).unwrap(), i);
    }
}

#[test]
fn published_rounds_verify() {
    for (info_file, rounds) in [
        (
            "default-info.json",
            &["default-1.json", "default-1000.json", "default-72785.json"][..],
        ),
        (
            "quicknet-info.json",
            &["quicknet-1000.json", "quicknet-657413.json"][..],
        ),
        ("fastnet-info.json", &["fastnet-3.json"][..]),
        (
            "testnet-unchained-info.json",
            &[
                "testnet-unchained-19369534.json",
                "testnet-unchained-223344.json",
            ][..],
        ),
    ] {
        let i = info(info_file);
        for file in rounds {
            let r = round(file);
            let randomness = verify_round_number(&i, &r, r.round)
                .unwrap_or_else(|e| panic!("{file} under {info_file}: {e}"));
            assert_eq!(randomness, r.randomness());
            // Our encoding decodes to the same round and still verifies.
            let again = Round::from_json(r.to_json().as_bytes()).unwrap();
            assert_eq!(again, r);
        }
    }
}

#[test]
fn published_randomness_values_are_the_signature_hashes() {
    let r = round("default-1.json");
    assert_eq!(
        hex::encode(verify_round(&info("default-info.json"), &r).unwrap()),
        "101297f1ca7dc44ef6088d94ad5fb7ba03455dc33d53ddb412bbc4564ed986ec"
    );
    let q = round("quicknet-1000.json");
    assert_eq!(
        hex::encode(verify_round(&info("quicknet-info.json"), &q).unwrap()),
        "fe290beca10872ef2fb164d2aa4442de4566183ec51c56ff3cd603d930e54fdd"
    );
}

#[test]
fn round_times_follow_the_published_schedules() {
    let q = info("quicknet-info.json");
    assert_eq!(q.time_of_round(1), Some(1692803367));
    assert_eq!(q.time_of_round(1000), Some(1692803367 + 999 * 3));
    assert_eq!(q.current_round(1692803367 + 999 * 3 + 2), 1000);
    let d = info("default-info.json");
    assert_eq!(d.time_of_round(72785), Some(1595431050 + 72784 * 30));
    assert_eq!(d.current_round(1595431049), 0);
}

/// Flips one bit of a signature: the result either fails to decode as a point or verifies as
/// a different point; both must be refused.
fn tampered(mut r: Round, byte: usize) -> Round {
    r.signature[byte] ^= 0x01;
    r
}

#[test]
fn tampered_rounds_fail() {
    let d = info("default-info.json");
    let q = info("quicknet-info.json");
    let r1000 = round("default-1000.json");
    let q1000 = round("quicknet-1000.json");
    for byte in [0usize, 10, 47] {
        assert!(verify_round(&d, &tampered(r1000.clone(), byte)).is_err());
        assert!(verify_round(&q, &tampered(q1000.clone(), byte)).is_err());
    }
    // A valid point that is another round's signature.
    let mut swapped = r1000.clone();
    swapped.signature = round("default-72785.json").signature;
    assert_eq!(
        verify_round(&d, &swapped),
        Err(VerifyError::Signature(SignatureError::DoesNotVerify))
    );
    // Wrong round number.
    let mut wrong_round = q1000.clone();
    wrong_round.round = 1001;
    assert_eq!(
        verify_round(&q, &wrong_round),
        Err(VerifyError::Signature(SignatureError::DoesNotVerify))
    );
    assert_eq!(
        verify_round_number(&q, &q1000, 999),
        Err(VerifyError::WrongRound {
            expected: 999,
            actual: 1000
        })
    );
    // Wrong previous signature (chained).
    let mut wrong_prev = r1000.clone();
    wrong_prev.previous_signature.as_mut().unwrap()[5] ^= 0x80;
    assert_eq!(
        verify_round(&d, &wrong_prev),
        Err(VerifyError::Signature(SignatureError::DoesNotVerify))
    );
    let mut no_prev = r1000.clone();
    no_prev.previous_signature = None;
    assert_eq!(
        verify_round(&d, &no_prev),
        Err(VerifyError::MissingPreviousSignature(1000))
    );
    // Round 1 must chain to the genesis seed.
    let mut r1 = round("default-1.json");
    r1.previous_signature = Some(vec![0u8; 96]);
    assert_eq!(
        verify_round(&d, &r1),
        Err(VerifyError::BadPreviousSignature(1))
    );
    // An unchained round with a previous signature is refused (drand's clients do the same).
    let mut with_prev = q1000.clone();
    with_prev.previous_signature = Some(vec![1u8; 48]);
    assert_eq!(
        verify_round(&q, &with_prev),
        Err(VerifyError::UnexpectedPreviousSignature(1000))
    );
    // Round 0 and wrong lengths.
    let mut zero = q1000.clone();
    zero.round = 0;
    assert_eq!(verify_round(&q, &zero), Err(VerifyError::RoundZero));
    assert_eq!(
        verify_round(&q, &r1000),
        Err(VerifyError::SignatureLength {
            scheme: SchemeId::BlsUnchainedG1Rfc9380,
            expected: 48,
            actual: 96
        })
    );
}

#[test]
fn the_hash_to_curve_tag_is_part_of_the_scheme() {
    // The same key and round under the other G1-signature scheme: only the tag differs, and
    // the published signatures verify under their own scheme only.
    let q = info("quicknet-info.json");
    let f = info("fastnet-info.json");
    let relabel = |i: &ChainInfo, scheme| {
        ChainInfo::new(
            scheme,
            i.public_key(),
            i.period_secs(),
            i.genesis_time(),
            *i.group_hash(),
            i.beacon_id(),
        )
        .unwrap()
    };
    let q_as_legacy = relabel(&q, SchemeId::BlsUnchainedOnG1);
    let f_as_rfc = relabel(&f, SchemeId::BlsUnchainedG1Rfc9380);
    assert!(verify_round(&q_as_legacy, &round("quicknet-1000.json")).is_err());
    assert!(verify_round(&f_as_rfc, &round("fastnet-3.json")).is_err());
    // And a chained round read as unchained (same key, same groups) fails.
    let d = info("default-info.json");
    let d_unchained = relabel(&d, SchemeId::PedersenBlsUnchained);
    let mut r = round("default-1000.json");
    r.previous_signature = None;
    assert!(verify_round(&d_unchained, &r).is_err());
}

fn edit_info(file: &str, f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&vector(file)).unwrap();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn tampered_chain_info_is_refused() {
    let bad = edit_info("default-info.json", |v| v["period"] = 31.into());
    assert!(matches!(
        ChainInfo::from_json(&bad),
        Err(InfoError::ChainHashMismatch { .. })
    ));
    let bad = edit_info("quicknet-info.json", |v| {
        v["metadata"]["beaconID"] = "default".into()
    });
    assert!(matches!(
        ChainInfo::from_json(&bad),
        Err(InfoError::ChainHashMismatch { .. })
    ));
    let bad = edit_info("default-info.json", |v| v["public_key"] = "868f".into());
    assert_eq!(
        ChainInfo::from_json(&bad),
        Err(InfoError::Hex {
            field: "public_key",
            error: HexError::Length {
                expected: 48,
                actual: 4
            }
        })
    );
    let bad = edit_info("default-info.json", |v| {
        v["public_key"] = "zz".repeat(48).into()
    });
    assert!(matches!(
        ChainInfo::from_json(&bad),
        Err(InfoError::Hex {
            error: HexError::NotHex,
            ..
        })
    ));
    // A compressed encoding with x = 5: off the curve or outside the subgroup, refused either way.
    let bad = edit_info("default-info.json", |v| {
        let mut k = vec![0u8; 48];
        k[0] = 0x80;
        k[47] = 0x05;
        v["public_key"] = hex::encode(k).into()
    });
    assert!(matches!(
        ChainInfo::from_json(&bad),
        Err(InfoError::PublicKey(_))
    ));
    let bad = edit_info("default-info.json", |v| {
        v["schemeID"] = "bls-bn254-unchained-on-g1".into()
    });
    assert!(matches!(
        ChainInfo::from_json(&bad),
        Err(InfoError::UnknownScheme(_))
    ));
    let bad = edit_info("default-info.json", |v| {
        v.as_object_mut().unwrap().remove("hash");
    });
    assert_eq!(ChainInfo::from_json(&bad), Err(InfoError::Missing("hash")));
    let bad = edit_info("default-info.json", |v| v["period"] = 0.into());
    assert_eq!(ChainInfo::from_json(&bad), Err(InfoError::ZeroPeriod));
    let huge = vec![b' '; keyquorum_beacon::info::MAX_INFO_JSON + 1];
    assert!(matches!(
        ChainInfo::from_json(&huge),
        Err(InfoError::TooLarge { .. })
    ));
    assert!(matches!(
        ChainInfo::from_json(b"[1,2]"),
        Err(InfoError::Json(_))
    ));
}

#[test]
fn drand_v2_field_names_decode_to_the_same_chain() {
    // drand's v2 API renames groupHash, hash, schemeID and metadata.beaconID.
    let v2 = br#"{"public_key":"83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a","period":3,"genesis_time":1692803367,"genesis_seed":"f477d5c89f21a17c863a7f937c6a6d15859414d2be09cd448d4279af331c5d3e","chain_hash":"52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971","scheme":"bls-unchained-g1-rfc9380","beacon_id":"quicknet"}"#;
    assert_eq!(
        ChainInfo::from_json(v2).unwrap(),
        info("quicknet-info.json")
    );
}

#[test]
fn tampered_round_json_is_refused() {
    let q = String::from_utf8(vector("quicknet-1000.json")).unwrap();
    let wrong_randomness = q.replace("fe290bec", "fe290bed");
    assert_eq!(
        Round::from_json(wrong_randomness.as_bytes()),
        Err(RoundDecodeError::RandomnessMismatch)
    );
    let long_sig = format!(
        r#"{{"round":1,"signature":"{}"}}"#,
        "ab".repeat(keyquorum_beacon::round::MAX_SIGNATURE_LEN + 1)
    );
    assert!(matches!(
        Round::from_json(long_sig.as_bytes()),
        Err(RoundDecodeError::Hex {
            field: "signature",
            error: HexError::TooLong { .. }
        })
    ));
    assert!(matches!(
        Round::from_json(br#"{"round":-1,"signature":"ab"}"#),
        Err(RoundDecodeError::Json(_))
    ));
    assert!(matches!(
        Round::from_json(br#"{"round":1,"signature":"xyz1"}"#),
        Err(RoundDecodeError::Hex {
            error: HexError::NotHex,
            ..
        })
    ));
}
