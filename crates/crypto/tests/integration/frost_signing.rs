//! FROST signing end to end with shares dealt by keyquorum's polynomial code: any `t` of `n`
//! sign, in both modes, and BIP-340 signatures pass `k256`'s BIP-340 verifier whatever the
//! parity of the group key and of the group commitment.

use elliptic_curve::point::AffineCoordinates;
use k256::{AffinePoint, ProjectivePoint, Scalar};
use keyquorum_crypto::frost::{
    self, CommitmentList, FrostError, Identifier, KeyPackage, Mode, PublicKeyPackage,
    SigningContext,
};
use keyquorum_crypto::poly::Polynomial;
use keyquorum_crypto::secret::Secret;
use rand_core::SeedableRng;

struct Dealt {
    keys: Vec<KeyPackage>,
    public: PublicKeyPackage,
}

fn deal(t: usize, n: usize, seed: u64) -> Dealt {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let f = Polynomial::<Scalar>::random(t - 1, None, &mut rng);
    let group_key = group::Curve::to_affine(&(ProjectivePoint::GENERATOR * f.constant()));
    let keys: Vec<KeyPackage> = (1..=n as u64)
        .map(|i| {
            KeyPackage::new(
                Identifier::from_u64(i).unwrap(),
                Secret::new(f.evaluate(&Scalar::from(i))),
                group_key,
            )
            .unwrap()
        })
        .collect();
    let public = PublicKeyPackage::new(
        group_key,
        t,
        keys.iter().map(|k| (k.identifier(), *k.verifying_share())),
    )
    .unwrap();
    Dealt { keys, public }
}

fn sign_with(
    dealt: &Dealt,
    signers: &[usize],
    mode: Mode,
    msg: &[u8],
    seed: u64,
) -> Result<frost::Signature, FrostError> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let nonces: Vec<_> = signers
        .iter()
        .map(|i| frost::commit_with_rng(dealt.keys[*i].signing_share(), &mut rng).unwrap())
        .collect();
    let list = CommitmentList::new(
        signers
            .iter()
            .zip(&nonces)
            .map(|(i, n)| (dealt.keys[*i].identifier(), *n.commitments()))
            .collect(),
        dealt.keys.len(),
    )?;
    let ctx = SigningContext::new(mode, dealt.public.group_key(), &list, msg)?;
    let shares: Vec<_> = signers
        .iter()
        .zip(nonces)
        .map(|(i, n)| {
            let key = &dealt.keys[*i];
            (key.identifier(), frost::sign(key, n, &ctx).unwrap())
        })
        .collect();
    frost::aggregate_verified(&ctx, &dealt.public, &shares)
}

fn k256_verify(group_key: &AffinePoint, msg: &[u8], sig: &[u8; 64]) -> bool {
    let key = k256::schnorr::VerifyingKey::from_bytes(&group_key.x()).unwrap();
    let sig = k256::schnorr::Signature::try_from(&sig[..]).unwrap();
    key.verify_raw(msg, &sig).is_ok()
}

#[test]
fn any_threshold_subset_signs_in_rfc_mode() {
    let dealt = deal(3, 5, 1);
    for (k, signers) in [[0usize, 1, 2], [4, 2, 0], [1, 3, 4]].iter().enumerate() {
        let sig = sign_with(&dealt, signers, Mode::Rfc9591, b"rfc mode", k as u64).unwrap();
        frost::verify(Mode::Rfc9591, dealt.public.group_key(), b"rfc mode", &sig).unwrap();
        assert!(frost::verify(Mode::Rfc9591, dealt.public.group_key(), b"other", &sig).is_err());
    }
    // Fewer than t signers give a signature that does not verify; every share is then valid for
    // the (wrong) interpolation, so no one is named, and the failure is still reported.
    assert!(sign_with(&dealt, &[0, 1], Mode::Rfc9591, b"rfc mode", 9).is_err());
}

#[test]
fn bip340_mode_signatures_pass_k256_for_every_parity() {
    let mut odd_key = 0;
    let mut even_key = 0;
    let mut odd_r = 0;
    let mut signatures = 0;
    for seed in 0..12u64 {
        let dealt = deal(3, 4, 100 + seed);
        let msg = format!("bip340 message {seed}");
        if bool::from(dealt.public.group_key().y_is_odd()) {
            odd_key += 1;
        } else {
            even_key += 1;
        }
        for nonce_seed in 0..4u64 {
            let sig =
                sign_with(&dealt, &[0, 2, 3], Mode::Bip340, msg.as_bytes(), nonce_seed).unwrap();
            let bytes = sig.to_bip340_bytes();
            assert!(k256_verify(
                dealt.public.group_key(),
                msg.as_bytes(),
                &bytes
            ));
            assert!(!k256_verify(dealt.public.group_key(), b"other", &bytes));
            assert!(!bool::from(sig.r().y_is_odd()));
            // Whether the signers had to negate their nonces.
            odd_r += usize::from(raw_group_commitment_is_odd(
                &dealt,
                &[0, 2, 3],
                msg.as_bytes(),
                nonce_seed,
            ));
            signatures += 1;
        }
    }
    assert!(
        odd_key > 0 && even_key > 0,
        "both key parities must be exercised"
    );
    assert!(
        odd_r > 0 && odd_r < signatures,
        "both nonce parities must be exercised"
    );
}

/// Whether the group commitment of `sign_with`'s nonces has odd `y` before normalisation.
fn raw_group_commitment_is_odd(dealt: &Dealt, signers: &[usize], msg: &[u8], seed: u64) -> bool {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let nonces: Vec<_> = signers
        .iter()
        .map(|i| frost::commit_with_rng(dealt.keys[*i].signing_share(), &mut rng).unwrap())
        .collect();
    let list = CommitmentList::new(
        signers
            .iter()
            .zip(&nonces)
            .map(|(i, n)| (dealt.keys[*i].identifier(), *n.commitments()))
            .collect(),
        dealt.keys.len(),
    )
    .unwrap();
    let ctx = SigningContext::new(Mode::Bip340, dealt.public.group_key(), &list, msg).unwrap();
    let factors = ctx.binding_factors();
    let r = frost::binding::compute_group_commitment(&list, factors);
    bool::from(group::Curve::to_affine(&r).y_is_odd())
}

#[test]
fn a_signer_refuses_a_list_without_its_commitment_or_with_another() {
    let dealt = deal(2, 3, 7);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let mine = frost::commit_with_rng(dealt.keys[0].signing_share(), &mut rng).unwrap();
    let other = frost::commit_with_rng(dealt.keys[1].signing_share(), &mut rng).unwrap();
    let forged = frost::commit_with_rng(dealt.keys[0].signing_share(), &mut rng).unwrap();
    let id0 = dealt.keys[0].identifier();
    let id1 = dealt.keys[1].identifier();
    let without = CommitmentList::new(vec![(id1, *other.commitments())], 3).unwrap();
    let ctx = SigningContext::new(Mode::Rfc9591, dealt.public.group_key(), &without, b"m").unwrap();
    assert_eq!(
        frost::sign(&dealt.keys[0], mine, &ctx),
        Err(FrostError::MissingCommitment(id0))
    );
    let mine = frost::commit_with_rng(dealt.keys[0].signing_share(), &mut rng).unwrap();
    let swapped = CommitmentList::new(
        vec![(id0, *forged.commitments()), (id1, *other.commitments())],
        3,
    )
    .unwrap();
    let ctx = SigningContext::new(Mode::Rfc9591, dealt.public.group_key(), &swapped, b"m").unwrap();
    assert_eq!(
        frost::sign(&dealt.keys[0], mine, &ctx),
        Err(FrostError::CommitmentMismatch(id0))
    );
}
