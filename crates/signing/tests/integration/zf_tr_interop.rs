//! Interoperability of the BIP-340 mode with ZcashFoundation's `frost-secp256k1-tr`: shares dealt
//! by keyquorum are imported into its key packages, keyquorum and ZF signers share one commitment
//! list and message, and both coordinators produce the same 64-byte BIP-340 signature, which
//! both libraries and `k256`'s BIP-340 verifier accept. Group keys and group commitments of both
//! `y` parities occur.

use crate::common;

use std::collections::BTreeMap;

use common::{Dealt, deal};
use elliptic_curve::point::AffineCoordinates;
use frost_secp256k1_tr as zf;
use keyquorum_crypto::frost::{
    self, CommitmentList, Identifier, Mode, SignatureShare, SigningCommitments, SigningContext,
};
use keyquorum_crypto::{Curve, Secp256k1};
use rand_core::SeedableRng;

fn zf_identifier(id: &Identifier) -> zf::Identifier {
    zf::Identifier::deserialize(&id.to_bytes()).unwrap()
}

fn zf_verifying_key(dealt: &Dealt) -> zf::VerifyingKey {
    zf::VerifyingKey::deserialize(&Secp256k1::point_bytes(dealt.public.group_key())).unwrap()
}

fn zf_verifying_share(dealt: &Dealt, i: usize) -> zf::keys::VerifyingShare {
    zf::keys::VerifyingShare::deserialize(&Secp256k1::point_bytes(
        dealt.key_package(i).verifying_share(),
    ))
    .unwrap()
}

fn zf_key_package(dealt: &Dealt, i: usize) -> zf::keys::KeyPackage {
    zf::keys::KeyPackage::new(
        zf_identifier(&dealt.key_package(i).identifier()),
        zf::keys::SigningShare::deserialize(&Secp256k1::encode_scalar(&dealt.shares[i])).unwrap(),
        zf_verifying_share(dealt, i),
        zf_verifying_key(dealt),
        dealt.threshold as u16,
    )
}

fn zf_public_key_package(dealt: &Dealt) -> zf::keys::PublicKeyPackage {
    let shares = (0..dealt.shares.len())
        .map(|i| {
            (
                zf_identifier(&dealt.key_package(i).identifier()),
                zf_verifying_share(dealt, i),
            )
        })
        .collect();
    zf::keys::PublicKeyPackage::new(
        shares,
        zf_verifying_key(dealt),
        Some(dealt.threshold as u16),
    )
}

fn commitments_to_zf(c: &SigningCommitments) -> zf::round1::SigningCommitments {
    zf::round1::SigningCommitments::new(
        zf::round1::NonceCommitment::deserialize(&Secp256k1::point_bytes(c.hiding())).unwrap(),
        zf::round1::NonceCommitment::deserialize(&Secp256k1::point_bytes(c.binding())).unwrap(),
    )
}

fn commitments_from_zf(c: &zf::round1::SigningCommitments) -> SigningCommitments {
    let mut bytes = c.hiding().serialize().unwrap();
    bytes.extend(c.binding().serialize().unwrap());
    SigningCommitments::from_bytes(&bytes).unwrap()
}

/// One mixed session; returns whether the group commitment had odd `y` before normalisation.
fn mixed_session(dealt: &Dealt, msg: &[u8], seed: u64) -> bool {
    let n = dealt.shares.len();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    // Signers (0-based): 0 and 2 run keyquorum, 1 runs ZF.
    let mut kq_nonces = BTreeMap::new();
    let mut entries = Vec::new();
    for i in [0usize, 2] {
        let key = dealt.key_package(i);
        let nonces = frost::commit_with_rng(key.signing_share(), &mut rng).unwrap();
        entries.push((key.identifier(), *nonces.commitments()));
        kq_nonces.insert(i, nonces);
    }
    let zf_key = zf_key_package(dealt, 1);
    let (zf_nonces, zf_c) = zf::round1::commit(zf_key.signing_share(), &mut rng);
    let zf_id = dealt.key_package(1).identifier();
    entries.push((zf_id, commitments_from_zf(&zf_c)));

    let list = CommitmentList::new(entries, n).unwrap();
    let zf_package = zf::SigningPackage::new(
        list.entries()
            .iter()
            .map(|(id, c)| (zf_identifier(id), commitments_to_zf(c)))
            .collect(),
        msg,
    );
    let ctx = SigningContext::new(Mode::Bip340, dealt.public.group_key(), &list, msg).unwrap();
    let raw_r = frost::binding::compute_group_commitment(&list, ctx.binding_factors());
    let r_was_odd = bool::from(group::Curve::to_affine(&raw_r).y_is_odd());

    let mut shares = Vec::new();
    for (i, nonces) in kq_nonces {
        let key = dealt.key_package(i);
        shares.push((key.identifier(), frost::sign(&key, nonces, &ctx).unwrap()));
    }
    let zf_share = zf::round2::sign(&zf_package, &zf_nonces, &zf_key).unwrap();
    let zf_share = SignatureShare::from_bytes(&zf_share.serialize()).unwrap();
    frost::verify_signature_share(
        &ctx,
        &zf_id,
        dealt.public.verifying_share(&zf_id).unwrap(),
        &zf_share,
    )
    .unwrap();
    shares.push((zf_id, zf_share));

    let signature = frost::aggregate_verified(&ctx, &dealt.public, &shares).unwrap();
    let bytes = signature.to_bip340_bytes();
    let zf_shares: BTreeMap<_, _> = shares
        .iter()
        .map(|(id, s)| {
            (
                zf_identifier(id),
                zf::round2::SignatureShare::deserialize(&s.to_bytes()).unwrap(),
            )
        })
        .collect();
    let zf_signature =
        zf::aggregate(&zf_package, &zf_shares, &zf_public_key_package(dealt)).unwrap();
    assert_eq!(zf_signature.serialize().unwrap(), bytes.to_vec());

    zf_verifying_key(dealt)
        .verify(msg, &zf::Signature::deserialize(&bytes).unwrap())
        .unwrap();
    frost::verify(Mode::Bip340, dealt.public.group_key(), msg, &signature).unwrap();
    let k256_key = k256::schnorr::VerifyingKey::from_bytes(&dealt.public.group_key().x()).unwrap();
    k256_key
        .verify_raw(
            msg,
            &k256::schnorr::Signature::try_from(&bytes[..]).unwrap(),
        )
        .unwrap();
    assert!(
        zf_verifying_key(dealt)
            .verify(b"other", &zf_signature)
            .is_err()
    );
    r_was_odd
}

#[test]
fn mixed_keyquorum_and_zf_tr_signers_produce_one_bip340_signature() {
    let mut key_parities = [0usize; 2];
    let mut r_parities = [0usize; 2];
    for seed in 0..8u64 {
        let dealt = deal(3, 4, 500 + seed);
        key_parities[usize::from(bool::from(dealt.public.group_key().y_is_odd()))] += 1;
        for nonce_seed in 0..2 {
            let odd = mixed_session(&dealt, format!("taproot {seed}").as_bytes(), nonce_seed);
            r_parities[usize::from(odd)] += 1;
        }
    }
    assert!(key_parities.iter().all(|c| *c > 0), "{key_parities:?}");
    assert!(r_parities.iter().all(|c| *c > 0), "{r_parities:?}");
}
