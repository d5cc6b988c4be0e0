//! Known-answer tests of the FROST module: RFC 9591's FROST(secp256k1, SHA-256) vectors
//! (Appendix E.5) step by step, and BIP-340's test vectors through the BIP-340 mode's verifier and
//! challenge. Sources in `tests/vectors/SOURCES.md`.

use elliptic_curve::point::AffineCoordinates;
use k256::{AffinePoint, ProjectivePoint, Scalar};
use keyquorum_crypto::frost::binding::{binding_factor_input_prefix, compute_binding_factors};
use keyquorum_crypto::frost::challenge::{bip340_tagged_hash, compute_challenge};
use keyquorum_crypto::frost::{
    self, CommitmentList, FrostError, Identifier, KeyPackage, Mode, PublicKeyPackage, Signature,
    SignatureShare, SigningContext, bip340,
};
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::{Curve, Secp256k1};
use serde_json::Value;

fn scalar(hex_str: &str) -> Scalar {
    Secp256k1::decode_scalar(&hex::decode(hex_str).unwrap()).unwrap()
}

fn point_hex(p: &AffinePoint) -> String {
    hex::encode(Secp256k1::point_bytes(p))
}

fn mul_g(s: &Scalar) -> AffinePoint {
    group::Curve::to_affine(&(ProjectivePoint::GENERATOR * s))
}

fn bytes32(hex_str: &str) -> [u8; 32] {
    hex::decode(hex_str).unwrap().try_into().unwrap()
}

fn rfc_vectors() -> Value {
    serde_json::from_str(include_str!("../vectors/frost_secp256k1_sha256.json")).unwrap()
}

#[test]
fn rfc9591_secp256k1_vectors() {
    let v = rfc_vectors();
    let inputs = &v["inputs"];
    let secret = scalar(inputs["group_secret_key"].as_str().unwrap());
    let group_key = mul_g(&secret);
    assert_eq!(
        point_hex(&group_key),
        inputs["group_public_key"].as_str().unwrap()
    );
    let msg = hex::decode(inputs["message"].as_str().unwrap()).unwrap();

    // The shares are f(i) for f(x) = secret + a_1 x (Appendix C).
    let coefficient = scalar(inputs["share_polynomial_coefficients"][0].as_str().unwrap());
    let mut shares = std::collections::BTreeMap::new();
    for s in inputs["participant_shares"].as_array().unwrap() {
        let i = s["identifier"].as_u64().unwrap();
        let share = scalar(s["participant_share"].as_str().unwrap());
        assert_eq!(share, secret + coefficient * Scalar::from(i));
        shares.insert(i, share);
    }
    let public = PublicKeyPackage::new(
        group_key,
        2,
        shares
            .iter()
            .map(|(i, s)| (Identifier::from_u64(*i).unwrap(), mul_g(s))),
    )
    .unwrap();

    // Round one: nonces from the given randomness, and their commitments.
    let round_one = v["round_one_outputs"]["outputs"].as_array().unwrap();
    let mut nonces = Vec::new();
    let mut entries = Vec::new();
    for out in round_one {
        let i = out["identifier"].as_u64().unwrap();
        let share = Secret::new(shares[&i]);
        let n = frost::commit(
            &share,
            &bytes32(out["hiding_nonce_randomness"].as_str().unwrap()),
            &bytes32(out["binding_nonce_randomness"].as_str().unwrap()),
        )
        .unwrap();
        assert_eq!(
            *n.hiding().expose(),
            scalar(out["hiding_nonce"].as_str().unwrap())
        );
        assert_eq!(
            *n.binding().expose(),
            scalar(out["binding_nonce"].as_str().unwrap())
        );
        assert_eq!(
            point_hex(n.commitments().hiding()),
            out["hiding_nonce_commitment"].as_str().unwrap()
        );
        assert_eq!(
            point_hex(n.commitments().binding()),
            out["binding_nonce_commitment"].as_str().unwrap()
        );
        let id = Identifier::from_u64(i).unwrap();
        entries.push((id, *n.commitments()));
        nonces.push((i, n));
    }
    let list = CommitmentList::new(entries, 3).unwrap();

    // Binding factor inputs and binding factors.
    let prefix = binding_factor_input_prefix(Mode::Rfc9591, &group_key, &list, &msg).unwrap();
    let factors = compute_binding_factors(Mode::Rfc9591, &group_key, &list, &msg).unwrap();
    for (k, out) in round_one.iter().enumerate() {
        let id = Identifier::from_u64(out["identifier"].as_u64().unwrap()).unwrap();
        let mut input = prefix.clone();
        input.extend_from_slice(&id.to_bytes());
        assert_eq!(
            hex::encode(&input),
            out["binding_factor_input"].as_str().unwrap()
        );
        assert_eq!(factors[k], scalar(out["binding_factor"].as_str().unwrap()));
    }

    // Round two: signature shares, each verified.
    let ctx = SigningContext::new(Mode::Rfc9591, &group_key, &list, &msg).unwrap();
    let round_two = v["round_two_outputs"]["outputs"].as_array().unwrap();
    let mut sig_shares = Vec::new();
    for ((i, n), out) in nonces.into_iter().zip(round_two) {
        assert_eq!(out["identifier"].as_u64().unwrap(), i);
        let id = Identifier::from_u64(i).unwrap();
        let key = KeyPackage::new(id, Secret::new(shares[&i]), group_key).unwrap();
        let share = frost::sign(&key, n, &ctx).unwrap();
        assert_eq!(
            hex::encode(share.to_bytes()),
            out["sig_share"].as_str().unwrap()
        );
        frost::verify_signature_share(&ctx, &id, key.verifying_share(), &share).unwrap();
        sig_shares.push((id, share));
    }

    // Aggregation and verification.
    let signature = frost::aggregate_verified(&ctx, &public, &sig_shares).unwrap();
    let expected = v["final_output"]["sig"].as_str().unwrap();
    assert_eq!(hex::encode(signature.to_bytes().unwrap()), expected);
    let decoded = Signature::from_bytes(&hex::decode(expected).unwrap()).unwrap();
    frost::verify(Mode::Rfc9591, &group_key, &msg, &decoded).unwrap();
    assert_eq!(
        frost::verify(Mode::Rfc9591, &group_key, b"other", &decoded),
        Err(FrostError::InvalidSignature)
    );

    // A corrupted share is caught and its sender named.
    let mut bad = sig_shares.clone();
    bad[1].1 = SignatureShare::from_bytes(&Secp256k1::encode_scalar(
        &(*bad[1].1.scalar() + Scalar::ONE),
    ))
    .unwrap();
    assert_eq!(
        frost::aggregate_verified(&ctx, &public, &bad),
        Err(FrostError::InvalidSignatureShares(vec![bad[1].0]))
    );
    assert_eq!(
        frost::verify_signature_share(
            &ctx,
            &bad[1].0,
            public.verifying_share(&bad[1].0).unwrap(),
            &bad[1].1
        ),
        Err(FrostError::InvalidSignatureShares(vec![bad[1].0]))
    );
    // A share set that is not the list's is refused.
    assert_eq!(
        frost::aggregate(&ctx, &sig_shares[..1]),
        Err(FrostError::ShareSetMismatch)
    );
}

struct Bip340Vector {
    index: usize,
    secret_key: Option<Scalar>,
    public_key: [u8; 32],
    aux_rand: Option<[u8; 32]>,
    message: Vec<u8>,
    signature: [u8; 64],
    valid: bool,
}

fn bip340_vectors() -> Vec<Bip340Vector> {
    include_str!("../vectors/bip340_test_vectors.csv")
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            Bip340Vector {
                index: f[0].parse().unwrap(),
                secret_key: (!f[1].is_empty()).then(|| scalar(&f[1].to_lowercase())),
                public_key: bytes32(f[2]),
                aux_rand: (!f[3].is_empty()).then(|| bytes32(f[3])),
                message: hex::decode(f[4]).unwrap(),
                signature: hex::decode(f[5]).unwrap().try_into().unwrap(),
                valid: f[6] == "TRUE",
            }
        })
        .collect()
}

#[test]
fn bip340_vectors_through_the_verifier() {
    let vectors = bip340_vectors();
    assert_eq!(vectors.len(), 15);
    for v in &vectors {
        let result = bip340::verify(&v.public_key, &v.message, &v.signature);
        assert_eq!(result.is_ok(), v.valid, "vector {}", v.index);
    }
}

/// BIP-340's single-signer signing (its default nonce derivation from `aux_rand`), with the key
/// and nonce negated to even `y` and the challenge computed by the BIP-340 mode's challenge code.
fn bip340_sign(secret: &Scalar, aux: &[u8; 32], msg: &[u8]) -> [u8; 64] {
    let p = mul_g(secret);
    let d = if bool::from(p.y_is_odd()) {
        -*secret
    } else {
        *secret
    };
    let even_p = mul_g(&d);
    let masked: Vec<u8> = Secp256k1::encode_scalar(&d)
        .iter()
        .zip(bip340_tagged_hash(b"BIP0340/aux", &[aux]))
        .map(|(a, b)| a ^ b)
        .collect();
    let rand = bip340_tagged_hash(b"BIP0340/nonce", &[&masked, &even_p.x(), msg]);
    let k0 = <Scalar as elliptic_curve::ops::Reduce<k256::U256>>::reduce_bytes(&rand.into());
    let r = mul_g(&k0);
    let k = if bool::from(r.y_is_odd()) { -k0 } else { k0 };
    let even_r = mul_g(&k);
    let e = compute_challenge(Mode::Bip340, &even_r, &even_p, msg).unwrap();
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&even_r.x());
    sig[32..].copy_from_slice(&Secp256k1::encode_scalar(&(k + e * d)));
    sig
}

#[test]
fn bip340_vectors_through_the_challenge() {
    let mut signed = 0;
    for v in bip340_vectors() {
        let (Some(secret), Some(aux)) = (v.secret_key, v.aux_rand) else {
            continue;
        };
        assert_eq!(
            mul_g(&secret).x().as_slice(),
            v.public_key,
            "vector {}",
            v.index
        );
        assert_eq!(
            bip340_sign(&secret, &aux, &v.message),
            v.signature,
            "vector {}",
            v.index
        );
        signed += 1;
    }
    // Vectors 0-3 carry secret keys.
    assert_eq!(signed, 4);
}
