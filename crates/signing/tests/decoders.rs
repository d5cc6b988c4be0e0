//! Hostile bytes: every decoder of the signing session returns a value or a typed error, never
//! panics, and whatever it accepts re-encodes to the same bytes (one encoding per value).

use keyquorum_crypto::frost::{CommitmentList, Signature};
use keyquorum_signing::{CommitmentPackage, SharePackage, SigningRequest};
use proptest::prelude::*;

fn valid_request() -> Vec<u8> {
    // A request in the wire layout built by hand: session, mode 1, message "m", one entry whose
    // identifier is 1 and whose commitments are G and 2G.
    let g = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    let g2 = "02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5";
    let mut v = vec![2u8];
    v.extend([9u8; 32]);
    v.push(1);
    v.extend(1u32.to_be_bytes());
    v.push(b'm');
    let mut id = [0u8; 32];
    id[31] = 1;
    v.extend(id);
    v.extend(hex::decode(g).unwrap());
    v.extend(hex::decode(g2).unwrap());
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(p) = CommitmentPackage::from_bytes(&bytes) {
            prop_assert_eq!(p.to_bytes(), bytes.clone());
        }
        if let Ok(p) = SharePackage::from_bytes(&bytes) {
            prop_assert_eq!(p.to_bytes(), bytes.clone());
        }
        if let Ok(r) = SigningRequest::from_bytes(&bytes, 64, 4) {
            prop_assert_eq!(r.to_bytes(), bytes.clone());
        }
        if let Ok(l) = CommitmentList::from_bytes(&bytes, 4) {
            prop_assert_eq!(l.encode(), bytes.clone());
        }
        if let Ok(s) = Signature::from_bytes(&bytes) {
            prop_assert_eq!(s.to_bytes().unwrap().to_vec(), bytes.clone());
        }
    }

    #[test]
    fn mutated_requests_decode_canonically_or_fail(
        position in 0usize..170,
        value in any::<u8>(),
        cut in 0usize..200,
    ) {
        let mut bytes = valid_request();
        prop_assert!(SigningRequest::from_bytes(&bytes, 64, 4).is_ok());
        let position = position % bytes.len();
        bytes[position] = value;
        bytes.truncate(cut.max(1));
        if let Ok(r) = SigningRequest::from_bytes(&bytes, 64, 4) {
            prop_assert_eq!(r.to_bytes(), bytes);
        }
    }
}
