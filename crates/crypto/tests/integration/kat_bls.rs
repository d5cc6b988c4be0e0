//! Known-answer tests for the ciphersuite `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_` (the
//! Ethereum consensus one, our `MinPk` layout), with the `sign`, `verify` and
//! `fast_aggregate_verify` vectors of ethereum/bls12-381-tests (the `bls` vectors of the
//! consensus spec tests), transcribed as published.

use keyquorum_crypto::aggregate::{self, PopVerifiedKey};
use keyquorum_crypto::tbls::{self, MinPk, Variant};
use keyquorum_crypto::{Bls12381G1, Bls12381G2, CryptoError, Curve, DecodeError};

const SK: [&str; 3] = [
    "263dbd792f5b1be47ed85f8938c0f29586af0d3ac7b977f21c278fe1462040e3",
    "47b8192d77bf871b62e87859d653922725724a5c031afeabc60bcef5ff665138",
    "328388aff0d4a5b7dc9205abd374e7e98f3cd9f3418edb4eafda5fb16473d216",
];

const PK: [&str; 3] = [
    "a491d1b0ecd9bb917989f0e74f0dea0422eac4a873e5e2644f368dffb9a6e20fd6e10c1b77654d067c0618f6e5a7f79a",
    "b301803f8b5ac4a1133581fc676dfedc60d891dd5fa99028805e5ea5b08d3491af75d0707adab3b70c6a6a580217bf81",
    "b53d21a4cfd562c469cc81514d4ce5a6b577d8403d32a394dc265dd190b47fa9f829fdd7963afdf972e5e77854051f6f",
];

const MSG_00: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const MSG_56: &str = "5656565656565656565656565656565656565656565656565656565656565656";
const MSG_AB: &str = "abababababababababababababababababababababababababababababababab";
const MSG_12: &str = "1212121212121212121212121212121212121212121212121212121212121212";

/// `sign` vectors: (key index, message, expected signature).
const SIGN: &[(usize, &str, &str)] = &[
    // sign_case_c82df61aa3ee60fb
    (
        0,
        MSG_00,
        "b6ed936746e01f8ecf281f020953fbf1f01debd5657c4a383940b020b26507f6076334f91e2366c96e9ab279fb5158090352ea1c5b0c9274504f4f0e7053af24802e51e4568d164fe986834f41e55c8e850ce1f98458c0cfc9ab380b55285a55",
    ),
    // sign_case_d0e28d7e76eb6e9c
    (
        0,
        MSG_56,
        "882730e5d03f6b42c3abc26d3372625034e1d871b65a8a6b900a56dae22da98abbe1b68f85e49fe7652a55ec3d0591c20767677e33e5cbb1207315c41a9ac03be39c2e7668edc043d6cb1d9fd93033caa8a1c5b0e84bedaeb6c64972503a43eb",
    ),
    // sign_case_f2ae1097e7d0e18b
    (
        0,
        MSG_AB,
        "91347bccf740d859038fcdcaf233eeceb2a436bcaaee9b2aa3bfb70efe29dfb2677562ccbea1c8e061fb9971b0753c240622fab78489ce96768259fc01360346da5b9f579e5da0d941e4c6ba18a0e64906082375394f337fa1af2b7127b0d121",
    ),
    // sign_case_11b8c7cad5238946
    (
        1,
        MSG_00,
        "b23c46be3a001c63ca711f87a005c200cc550b9429d5f4eb38d74322144f1b63926da3388979e5321012fb1a0526bcd100b5ef5fe72628ce4cd5e904aeaa3279527843fae5ca9ca675f4f51ed8f83bbf7155da9ecc9663100a885d5dc6df96d9",
    ),
    // sign_case_142f678a8d05fcd1
    (
        1,
        MSG_56,
        "af1390c3c47acdb37131a51216da683c509fce0e954328a59f93aebda7e4ff974ba208d9a4a2a2389f892a9d418d618418dd7f7a6bc7aa0da999a9d3a5b815bc085e14fd001f6a1948768a3f4afefc8b8240dda329f984cb345c6363272ba4fe",
    ),
    // sign_case_37286e1a6d1f6eb3
    (
        1,
        MSG_AB,
        "9674e2228034527f4c083206032b020310face156d4a4685e2fcaec2f6f3665aa635d90347b6ce124eb879266b1e801d185de36a0a289b85e9039662634f2eea1e02e670bc7ab849d006a70b2f93b84597558a05b879c8d445f387a5d5b653df",
    ),
    // sign_case_7055381f640f2c1d
    (
        2,
        MSG_00,
        "948a7cb99f76d616c2c564ce9bf4a519f1bea6b0a624a02276443c245854219fabb8d4ce061d255af5330b078d5380681751aa7053da2c98bae898edc218c75f07e24d8802a17cd1f6833b71e58f5eb5b94208b4d0bb3848cecb075ea21be115",
    ),
    // sign_case_8cd3d4d0d9a5b265
    (
        2,
        MSG_56,
        "a4efa926610b8bd1c8330c918b7a5e9bf374e53435ef8b7ec186abf62e1b1f65aeaaeb365677ac1d1172a1f5b44b4e6d022c252c58486c0a759fbdc7de15a756acc4d343064035667a594b4c2a6f0b0b421975977f297dba63ee2f63ffe47bb6",
    ),
    // sign_case_84d45c9c7cca6b92
    (
        2,
        MSG_AB,
        "ae82747ddeefe4fd64cf9cedb9b04ae3e8a43420cd255e3c7cd06a8d88b7c7f8638543719981c5d16fa3527c468c25f0026704a6951bde891360c7e8d12ddee0559004ccdbe6046b55bae1b257ee97f7cdb955773d7cf29adf3ccbb9975e4eb9",
    ),
];

/// `verify` vectors: (public key, message, signature, expected validity).
const VERIFY: &[(&str, &str, &str, bool)] = &[
    // verifycase_one_privkey_47117849458281be: the key is the G1 generator (secret key 1).
    (
        "97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb",
        MSG_12,
        "a42ae16f1c2a5fa69c04cb5998d2add790764ce8dd45bf25b29b4700829232052b52352dcff1cf255b3a7810ad7269601810f03b2bc8b68cf289cf295b206770605a190b6842583e47c3d1c0f73c54907bfb2a602157d46a4353a20283018763",
        true,
    ),
    // verify_wrong_pubkey_case_195246ee3bd3b6ec
    (
        PK[2],
        MSG_AB,
        "9674e2228034527f4c083206032b020310face156d4a4685e2fcaec2f6f3665aa635d90347b6ce124eb879266b1e801d185de36a0a289b85e9039662634f2eea1e02e670bc7ab849d006a70b2f93b84597558a05b879c8d445f387a5d5b653df",
        false,
    ),
    // verify_wrong_pubkey_case_2ea479adf8c40300
    (
        PK[0],
        MSG_56,
        "a4efa926610b8bd1c8330c918b7a5e9bf374e53435ef8b7ec186abf62e1b1f65aeaaeb365677ac1d1172a1f5b44b4e6d022c252c58486c0a759fbdc7de15a756acc4d343064035667a594b4c2a6f0b0b421975977f297dba63ee2f63ffe47bb6",
        false,
    ),
    // verify_wrong_pubkey_case_2f09d443ab8a3ac2
    (
        PK[1],
        MSG_00,
        "b6ed936746e01f8ecf281f020953fbf1f01debd5657c4a383940b020b26507f6076334f91e2366c96e9ab279fb5158090352ea1c5b0c9274504f4f0e7053af24802e51e4568d164fe986834f41e55c8e850ce1f98458c0cfc9ab380b55285a55",
        false,
    ),
    // verify_wrong_pubkey_case_d34885d766d5f705
    (
        PK[2],
        MSG_00,
        "b23c46be3a001c63ca711f87a005c200cc550b9429d5f4eb38d74322144f1b63926da3388979e5321012fb1a0526bcd100b5ef5fe72628ce4cd5e904aeaa3279527843fae5ca9ca675f4f51ed8f83bbf7155da9ecc9663100a885d5dc6df96d9",
        false,
    ),
    // verify_tampered_signature_case_e8a50c445c855360
    (
        PK[0],
        MSG_00,
        "b6ed936746e01f8ecf281f020953fbf1f01debd5657c4a383940b020b26507f6076334f91e2366c96e9ab279fb5158090352ea1c5b0c9274504f4f0e7053af24802e51e4568d164fe986834f41e55c8e850ce1f98458c0cfc9ab380bffffffff",
        false,
    ),
    // verify_tampered_signature_case_195246ee3bd3b6ec
    (
        PK[2],
        MSG_AB,
        "ae82747ddeefe4fd64cf9cedb9b04ae3e8a43420cd255e3c7cd06a8d88b7c7f8638543719981c5d16fa3527c468c25f0026704a6951bde891360c7e8d12ddee0559004ccdbe6046b55bae1b257ee97f7cdb955773d7cf29adf3ccbb9ffffffff",
        false,
    ),
    // verify_infinity_pubkey_and_infinity_signature
    (
        "c00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        MSG_12,
        "c00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        false,
    ),
];

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("vector is valid hex")
}

fn secret(i: usize) -> keyquorum_crypto::secret::Secret<blstrs::Scalar> {
    tbls::secret_key_from_bytes(&unhex(SK[i])).expect("vector key is valid")
}

/// The full IETF `Verify` from bytes: decode (encoding, curve and subgroup checks, the identity
/// admitted so that `verify` is the one to refuse it), then verify.
fn verify_bytes(pk: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
    let pk = Bls12381G1::decode_point(pk)?;
    let sig = Bls12381G2::decode_point(sig)?;
    tbls::verify::<MinPk>(&pk, msg, &sig)
}

#[test]
fn ciphersuite_tags() {
    assert_eq!(
        MinPk::SIG_DST,
        b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
    );
    assert_eq!(
        MinPk::POP_DST,
        b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
    );
}

#[test]
fn secret_to_public_key() {
    for (i, expected) in PK.iter().enumerate() {
        let pk = tbls::public_key::<MinPk>(&secret(i));
        assert_eq!(hex::encode(Bls12381G1::point_bytes(&pk)), *expected);
    }
}

#[test]
fn sign_vectors() {
    for (i, msg, expected) in SIGN {
        let sig = tbls::sign::<MinPk>(&secret(*i), &unhex(msg));
        assert_eq!(
            hex::encode(Bls12381G2::point_bytes(&sig)),
            *expected,
            "key {i}, message {msg}"
        );
    }
}

#[test]
fn sign_case_zero_privkey_is_refused() {
    assert_eq!(
        tbls::secret_key_from_bytes(&[0u8; 32]).map(|_| ()),
        Err(CryptoError::Decode(DecodeError::ZeroScalar))
    );
}

#[test]
fn every_sign_vector_verifies_under_its_key() {
    // verify_valid_case_*: the sign outputs under the matching public keys.
    for (i, msg, sig) in SIGN {
        assert_eq!(
            verify_bytes(&unhex(PK[*i]), &unhex(msg), &unhex(sig)),
            Ok(()),
            "key {i}, message {msg}"
        );
    }
}

#[test]
fn verify_vectors() {
    for (pk, msg, sig, valid) in VERIFY {
        let result = verify_bytes(&unhex(pk), &unhex(msg), &unhex(sig));
        assert_eq!(result.is_ok(), *valid, "pk {pk}, msg {msg}: {result:?}");
    }
}

#[test]
fn infinity_public_key_is_refused_as_such() {
    let inf_pk = unhex(VERIFY[7].0);
    let inf_sig = unhex(VERIFY[7].2);
    assert_eq!(
        verify_bytes(&inf_pk, &unhex(MSG_12), &inf_sig),
        Err(CryptoError::Decode(DecodeError::Identity))
    );
    assert_eq!(
        tbls::decode_public_key::<MinPk>(&inf_pk),
        Err(CryptoError::Decode(DecodeError::Identity))
    );
}

/// `fast_aggregate_verify` vectors: our aggregate of the `sign` outputs must equal the published
/// aggregate signature, and verify against the keys (registered from their secrets, the vectors
/// carry no proofs of possession).
#[test]
fn fast_aggregate_verify_vectors() {
    let cases: &[(&[usize], &str, &str)] = &[
        // fast_aggregate_verify_valid_3d7576f3c0e3570a
        (
            &[0, 1, 2],
            MSG_AB,
            "9712c3edd73a209c742b8250759db12549b3eaf43b5ca61376d9f30e2747dbcf842d8b2ac0901d2a093713e20284a7670fcf6954e9ab93de991bb9b313e664785a075fc285806fa5224c82bde146561b446ccfc706a64b8579513cfc4ff1d930",
        ),
        // fast_aggregate_verify_valid_652ce62f09290811
        (
            &[0, 1],
            MSG_56,
            "912c3615f69575407db9392eb21fee18fff797eeb2fbe1816366ca2a08ae574d8824dbfafb4c9eaa1cf61b63c6f9b69911f269b664c42947dd1b53ef1081926c1e82bb2a465f927124b08391a5249036146d6f3f1e17ff5f162f779746d830d1",
        ),
        // fast_aggregate_verify_valid_5e745ad0c6199a6c
        (
            &[0],
            MSG_00,
            "b6ed936746e01f8ecf281f020953fbf1f01debd5657c4a383940b020b26507f6076334f91e2366c96e9ab279fb5158090352ea1c5b0c9274504f4f0e7053af24802e51e4568d164fe986834f41e55c8e850ce1f98458c0cfc9ab380b55285a55",
        ),
    ];
    for (signers, msg, expected) in cases {
        let msg = unhex(msg);
        let sigs: Vec<_> = signers
            .iter()
            .map(|&i| tbls::sign::<MinPk>(&secret(i), &msg))
            .collect();
        let agg = aggregate::aggregate_signatures::<MinPk>(&sigs).unwrap();
        assert_eq!(hex::encode(Bls12381G2::point_bytes(&agg)), *expected);
        let keys: Vec<PopVerifiedKey<MinPk>> = signers
            .iter()
            .map(|&i| PopVerifiedKey::from_secret(&secret(i)).unwrap())
            .collect();
        let published = tbls::decode_signature::<MinPk>(&unhex(expected)).unwrap();
        assert_eq!(
            aggregate::fast_aggregate_verify(&keys, &msg, &published),
            Ok(())
        );
    }
    // fast_aggregate_verify_extra_pubkey_4f079f946446fabf: keys 0, 1, 2 but only 0 and 1 signed.
    let keys: Vec<PopVerifiedKey<MinPk>> = (0..3)
        .map(|i| PopVerifiedKey::from_secret(&secret(i)).unwrap())
        .collect();
    let sig = tbls::decode_signature::<MinPk>(&unhex(cases[1].2)).unwrap();
    assert_eq!(
        aggregate::fast_aggregate_verify(&keys, &unhex(MSG_56), &sig),
        Err(CryptoError::BadSignature)
    );
}
