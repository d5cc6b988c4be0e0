//! Golden vectors of the signing session's wire packages and of the signatures it produces:
//! a commitment package, signing requests in both modes, a share package, and the RFC 9591 and
//! BIP-340 signatures of one session each.
//!
//! Built from fixed seeds, compared with `tests/vectors/signing_packages.json`, decoded again and
//! re-encoded to the same bytes. After an intentional change of encoding, rewrite the file with
//!
//! ```text
//! KQ_UPDATE_VECTORS=1 cargo test -p keyquorum-signing --release --test integration vectors::
//! ```

use crate::common;

use common::deal;
use keyquorum_crypto::frost::{Mode, Signature, bip340};
use keyquorum_dkg::testing::golden::Vectors;
use keyquorum_signing::{
    CommitmentPackage, Coordinator, MemoryNonceStore, SessionId, SharePackage, Signer,
    SigningRequest,
};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");

fn session_vectors(v: &mut Vectors, mode: Mode, label: &str) {
    let dealt = deal(2, 3, 0x5167);
    let session = SessionId([0x51; 32]);
    let msg = b"keyquorum signing vectors".to_vec();
    let mut coordinator = Coordinator::new(session, mode, dealt.public.clone(), msg.clone());
    let signers: Vec<Signer> = [0usize, 2]
        .iter()
        .map(|i| Signer::new(dealt.key_package(*i), mode, 2))
        .collect();
    let mut stores = [MemoryNonceStore::new(), MemoryNonceStore::new()];
    for (k, (s, store)) in signers.iter().zip(&mut stores).enumerate() {
        let randomness: [u8; 64] = core::array::from_fn(|j| (64 * k + j) as u8);
        let p = s.round1(session, &randomness, store).unwrap();
        if k == 0 {
            let bytes = p.to_bytes();
            assert_eq!(CommitmentPackage::from_bytes(&bytes).unwrap(), p);
            v.add(
                &format!("{label}/commitment_package"),
                "round one: tag, session, signer 1, hiding and binding commitments",
                &bytes,
            );
        }
        coordinator.on_commitment(s.key().identifier(), &p).unwrap();
    }
    let request = coordinator.signing_request().unwrap();
    let bytes = request.to_bytes();
    assert_eq!(SigningRequest::from_bytes(&bytes, 64, 3).unwrap(), request);
    v.add(
        &format!("{label}/signing_request"),
        "tag, session, mode, message length and message, commitment list of signers 1 and 3",
        &bytes,
    );
    for (k, (s, store)) in signers.iter().zip(&mut stores).enumerate() {
        let p = s.round2(&request, store).unwrap();
        if k == 0 {
            let bytes = p.to_bytes();
            assert_eq!(SharePackage::from_bytes(&bytes).unwrap(), p);
            v.add(
                &format!("{label}/share_package"),
                "round two: tag, session, signer 1, signature share",
                &bytes,
            );
        }
        coordinator.on_share(s.key().identifier(), &p).unwrap();
    }
    let signature = coordinator.finish().unwrap();
    match mode {
        Mode::Rfc9591 => {
            let bytes = signature.to_bytes().unwrap();
            assert_eq!(Signature::from_bytes(&bytes).unwrap(), signature);
            v.add(
                &format!("{label}/signature"),
                "RFC 9591 signature: compressed R, z",
                &bytes,
            );
        }
        Mode::Bip340 => {
            let bytes = signature.to_bip340_bytes();
            let key = bip340::x_only(dealt.public.group_key()).unwrap();
            bip340::verify(&key, &msg, &bytes).unwrap();
            v.add(
                &format!("{label}/signature"),
                "BIP-340 signature: x(R), z",
                &bytes,
            );
            v.add(
                &format!("{label}/x_only_key"),
                "the group key, x-only",
                &key,
            );
        }
    }
}

#[test]
fn signing_package_vectors() {
    let mut v = Vectors::new(DIR, "signing_packages.json");
    session_vectors(&mut v, Mode::Rfc9591, "rfc9591");
    session_vectors(&mut v, Mode::Bip340, "bip340");
    v.check();
}
