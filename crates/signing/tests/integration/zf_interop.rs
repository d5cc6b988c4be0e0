//! Interoperability with ZcashFoundation's `frost-secp256k1`: the same shares, dealt by
//! keyquorum's polynomial code, are imported into ZF key packages, and one signing operation
//! mixes keyquorum signers and ZF signers over one commitment list and one message. Both
//! libraries' coordinators produce the same signature, and both libraries verify it.

use crate::common;

use std::collections::BTreeMap;

use common::{Dealt, deal};
use frost_secp256k1 as zf;
use keyquorum_crypto::frost::{
    self, CommitmentList, Identifier, Mode, SignatureShare, SigningCommitments, SigningContext,
};
use keyquorum_crypto::{Curve, Secp256k1};
use rand_core::SeedableRng;

fn zf_identifier(id: &Identifier) -> zf::Identifier {
    zf::Identifier::deserialize(&id.to_bytes()).unwrap()
}

fn zf_key_package(dealt: &Dealt, i: usize) -> zf::keys::KeyPackage {
    let kq = dealt.key_package(i);
    zf::keys::KeyPackage::new(
        zf_identifier(&kq.identifier()),
        zf::keys::SigningShare::deserialize(&Secp256k1::encode_scalar(&dealt.shares[i])).unwrap(),
        zf::keys::VerifyingShare::deserialize(&Secp256k1::point_bytes(kq.verifying_share()))
            .unwrap(),
        zf_verifying_key(dealt),
        dealt.threshold as u16,
    )
}

fn zf_verifying_key(dealt: &Dealt) -> zf::VerifyingKey {
    zf::VerifyingKey::deserialize(&Secp256k1::point_bytes(dealt.public.group_key())).unwrap()
}

fn zf_public_key_package(dealt: &Dealt) -> zf::keys::PublicKeyPackage {
    let shares = (0..dealt.shares.len())
        .map(|i| {
            let kq = dealt.key_package(i);
            (
                zf_identifier(&kq.identifier()),
                zf::keys::VerifyingShare::deserialize(&Secp256k1::point_bytes(
                    kq.verifying_share(),
                ))
                .unwrap(),
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

#[test]
fn mixed_keyquorum_and_zf_signers_produce_one_signature() {
    let (t, n) = (3, 5);
    let dealt = deal(t, n, 2024);
    let msg = b"one message, two implementations";
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2024);
    // Signers (0-based): 0 and 3 run keyquorum, 1 and 4 run ZF frost.
    let keyquorum_signers = [0usize, 3];
    let zf_signers = [1usize, 4];

    // Round one.
    let mut kq_nonces = BTreeMap::new();
    let mut entries = Vec::new();
    for &i in &keyquorum_signers {
        let key = dealt.key_package(i);
        let nonces = frost::commit_with_rng(key.signing_share(), &mut rng).unwrap();
        entries.push((key.identifier(), *nonces.commitments()));
        kq_nonces.insert(i, nonces);
    }
    let mut zf_nonces = BTreeMap::new();
    for &i in &zf_signers {
        let key = zf_key_package(&dealt, i);
        let (nonces, commitments) = zf::round1::commit(key.signing_share(), &mut rng);
        entries.push((
            dealt.key_package(i).identifier(),
            commitments_from_zf(&commitments),
        ));
        zf_nonces.insert(i, nonces);
    }

    // The one commitment list, in each library's form.
    let list = CommitmentList::new(entries, n).unwrap();
    let zf_commitments: BTreeMap<_, _> = list
        .entries()
        .iter()
        .map(|(id, c)| (zf_identifier(id), commitments_to_zf(c)))
        .collect();
    let zf_package = zf::SigningPackage::new(zf_commitments, msg);
    let ctx = SigningContext::new(Mode::Rfc9591, dealt.public.group_key(), &list, msg).unwrap();

    // Round two.
    let mut shares = Vec::new();
    for (i, nonces) in kq_nonces {
        let key = dealt.key_package(i);
        shares.push((key.identifier(), frost::sign(&key, nonces, &ctx).unwrap()));
    }
    for (i, nonces) in &zf_nonces {
        let share = zf::round2::sign(&zf_package, nonces, &zf_key_package(&dealt, *i)).unwrap();
        let id = dealt.key_package(*i).identifier();
        let share = SignatureShare::from_bytes(&share.serialize()).unwrap();
        // keyquorum verifies the ZF signer's share.
        frost::verify_signature_share(
            &ctx,
            &id,
            dealt.public.verifying_share(&id).unwrap(),
            &share,
        )
        .unwrap();
        shares.push((id, share));
    }

    // keyquorum's coordinator.
    let signature = frost::aggregate_verified(&ctx, &dealt.public, &shares).unwrap();
    let bytes = signature.to_bytes().unwrap();

    // ZF's coordinator over the same shares gives the same signature.
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
        zf::aggregate(&zf_package, &zf_shares, &zf_public_key_package(&dealt)).unwrap();
    assert_eq!(zf_signature.serialize().unwrap(), bytes.to_vec());

    // Both libraries verify it; neither accepts it for another message.
    let zf_key = zf_verifying_key(&dealt);
    zf_key
        .verify(msg, &zf::Signature::deserialize(&bytes).unwrap())
        .unwrap();
    frost::verify(Mode::Rfc9591, dealt.public.group_key(), msg, &signature).unwrap();
    assert!(zf_key.verify(b"other", &zf_signature).is_err());
    assert!(
        frost::verify(
            Mode::Rfc9591,
            dealt.public.group_key(),
            b"other",
            &signature
        )
        .is_err()
    );
}

#[test]
fn zf_names_a_bad_keyquorum_share_as_keyquorum_does() {
    let (t, n) = (2, 3);
    let dealt = deal(t, n, 7);
    let msg = b"cheater";
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let kq_key = dealt.key_package(0);
    let kq_nonces = frost::commit_with_rng(kq_key.signing_share(), &mut rng).unwrap();
    let zf_key = zf_key_package(&dealt, 2);
    let (zf_nonces, zf_c) = zf::round1::commit(zf_key.signing_share(), &mut rng);
    let zf_id = dealt.key_package(2).identifier();
    let list = CommitmentList::new(
        vec![
            (kq_key.identifier(), *kq_nonces.commitments()),
            (zf_id, commitments_from_zf(&zf_c)),
        ],
        n,
    )
    .unwrap();
    let ctx = SigningContext::new(Mode::Rfc9591, dealt.public.group_key(), &list, msg).unwrap();
    let good = frost::sign(&kq_key, kq_nonces, &ctx).unwrap();
    // The keyquorum signer's share, off by one.
    let mut z = good.to_bytes();
    z[31] ^= 1;
    let bad = SignatureShare::from_bytes(&z).unwrap();
    let zf_commitments: BTreeMap<_, _> = list
        .entries()
        .iter()
        .map(|(id, c)| (zf_identifier(id), commitments_to_zf(c)))
        .collect();
    let zf_package = zf::SigningPackage::new(zf_commitments, msg);
    let zf_share = zf::round2::sign(&zf_package, &zf_nonces, &zf_key).unwrap();
    let shares = vec![
        (kq_key.identifier(), bad),
        (
            zf_id,
            SignatureShare::from_bytes(&zf_share.serialize()).unwrap(),
        ),
    ];
    assert_eq!(
        frost::aggregate_verified(&ctx, &dealt.public, &shares),
        Err(frost::FrostError::InvalidSignatureShares(vec![
            kq_key.identifier()
        ]))
    );
    let zf_shares: BTreeMap<_, _> = shares
        .iter()
        .map(|(id, s)| {
            (
                zf_identifier(id),
                zf::round2::SignatureShare::deserialize(&s.to_bytes()).unwrap(),
            )
        })
        .collect();
    match zf::aggregate(&zf_package, &zf_shares, &zf_public_key_package(&dealt)) {
        Err(zf::Error::InvalidSignatureShare { culprits }) => {
            assert_eq!(culprits, vec![zf_identifier(&kq_key.identifier())])
        }
        other => panic!("ZF accepted or failed otherwise: {other:?}"),
    }
}
