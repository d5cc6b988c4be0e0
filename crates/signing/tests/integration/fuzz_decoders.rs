//! Fuzzing the signing session's decoders: random bytes and mutated golden vectors
//! (`tests/vectors/signing_packages.json`) never panic, and whatever decodes re-encodes to the
//! same bytes (one encoding per value). `KQ_FUZZ_CASES` sets the number of cases.

use keyquorum_crypto::frost::{CommitmentList, Signature};
use keyquorum_dkg::testing::fuzzing::{config, input, vectors};
use keyquorum_signing::{CommitmentPackage, SharePackage, SigningRequest};
use proptest::prelude::*;

fn corpus() -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = vectors(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/signing_packages.json"
    ))
    .into_values()
    .collect();
    // The commitment lists inside the requests, on their own.
    let lists: Vec<Vec<u8>> = all
        .iter()
        .filter_map(|b| SigningRequest::from_bytes(b, 64, 3).ok())
        .map(|r| r.commitments.encode())
        .collect();
    assert_eq!(lists.len(), 2);
    all.extend(lists);
    all
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn decoders_never_panic_and_are_canonical(bytes in input(corpus(), 300)) {
        if let Ok(p) = CommitmentPackage::from_bytes(&bytes) {
            prop_assert_eq!(p.to_bytes(), bytes.clone());
        }
        if let Ok(p) = SharePackage::from_bytes(&bytes) {
            prop_assert_eq!(p.to_bytes(), bytes.clone());
        }
        if let Ok(r) = SigningRequest::from_bytes(&bytes, 64, 3) {
            prop_assert_eq!(r.to_bytes(), bytes.clone());
        }
        if let Ok(l) = CommitmentList::from_bytes(&bytes, 3) {
            prop_assert_eq!(l.encode(), bytes.clone());
        }
        if let Ok(s) = Signature::from_bytes(&bytes) {
            prop_assert_eq!(s.to_bytes().unwrap().to_vec(), bytes.clone());
        }
    }
}
