//! Signing sessions end to end through the wire encodings: both modes, single-use nonces,
//! persist-before-use, sender and session matching, and culprits named for bad shares.

use crate::common;

use common::deal;
use elliptic_curve::point::AffineCoordinates;
use keyquorum_crypto::frost::{self, FrostError, Identifier, Mode, SignatureShare};
use keyquorum_crypto::secret::SecretBytes;
use keyquorum_signing::{
    CommitmentPackage, Coordinator, CoordinatorError, MemoryNonceStore, NonceStore, Rejected,
    SessionId, SharePackage, Signer, SignerError, SigningRequest, WireError,
};
use rand_core::{RngCore, SeedableRng};

const MAX_MESSAGE: usize = 1 << 16;

fn randomness(rng: &mut impl RngCore) -> [u8; 64] {
    let mut r = [0u8; 64];
    rng.fill_bytes(&mut r);
    r
}

fn id(i: usize) -> Identifier {
    Identifier::from_u64(i as u64 + 1).unwrap()
}

/// Runs a session with signers `members` (indices into the dealing) through the wire encodings.
fn run_session(mode: Mode, members: &[usize], msg: &[u8], seed: u64) -> frost::Signature {
    let dealt = deal(3, 5, seed);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let session = SessionId([seed as u8; 32]);
    let signers: Vec<Signer> = members
        .iter()
        .map(|i| Signer::new(dealt.key_package(*i), mode, dealt.threshold))
        .collect();
    let mut stores: Vec<MemoryNonceStore> =
        members.iter().map(|_| MemoryNonceStore::new()).collect();
    let mut coordinator = Coordinator::new(session, mode, dealt.public.clone(), msg.to_vec());
    for ((s, store), i) in signers.iter().zip(&mut stores).zip(members) {
        let package = s.round1(session, &randomness(&mut rng), store).unwrap();
        assert_eq!(store.pending(), 1);
        let received = CommitmentPackage::from_bytes(&package.to_bytes()).unwrap();
        coordinator.on_commitment(id(*i), &received).unwrap();
    }
    let request = coordinator.signing_request().unwrap();
    let request = SigningRequest::from_bytes(&request.to_bytes(), MAX_MESSAGE, 5).unwrap();
    for ((s, store), i) in signers.iter().zip(&mut stores).zip(members) {
        let share = s.round2(&request, store).unwrap();
        assert_eq!(store.pending(), 0);
        let received = SharePackage::from_bytes(&share.to_bytes()).unwrap();
        coordinator.on_share(id(*i), &received).unwrap();
    }
    let signature = coordinator.finish().unwrap();
    frost::verify(mode, dealt.public.group_key(), msg, &signature).unwrap();
    if mode == Mode::Bip340 {
        let key = k256::schnorr::VerifyingKey::from_bytes(&dealt.public.group_key().x()).unwrap();
        let sig = k256::schnorr::Signature::try_from(&signature.to_bip340_bytes()[..]).unwrap();
        key.verify_raw(msg, &sig).unwrap();
    }
    signature
}

#[test]
fn sessions_sign_in_both_modes() {
    run_session(Mode::Rfc9591, &[0, 2, 4], b"rfc 9591 session", 1);
    run_session(Mode::Rfc9591, &[1, 2, 3, 4], b"more than t", 2);
    for seed in 3..9 {
        run_session(Mode::Bip340, &[4, 0, 1], b"bip-340 session", seed);
    }
}

struct Fixture {
    dealt: common::Dealt,
    signers: Vec<Signer>,
    stores: Vec<MemoryNonceStore>,
    coordinator: Coordinator,
    session: SessionId,
    request: SigningRequest,
}

/// Signers 0, 1, 2 of a 3-of-5 group, after round one.
fn after_round_one() -> Fixture {
    let dealt = deal(3, 5, 42);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(42);
    let session = SessionId([7u8; 32]);
    let signers: Vec<Signer> = (0..3)
        .map(|i| Signer::new(dealt.key_package(i), Mode::Rfc9591, 3))
        .collect();
    let mut stores: Vec<MemoryNonceStore> = (0..3).map(|_| MemoryNonceStore::new()).collect();
    let mut coordinator =
        Coordinator::new(session, Mode::Rfc9591, dealt.public.clone(), b"m".to_vec());
    for (i, (s, store)) in signers.iter().zip(&mut stores).enumerate() {
        let package = s.round1(session, &randomness(&mut rng), store).unwrap();
        coordinator.on_commitment(id(i), &package).unwrap();
    }
    let request = coordinator.signing_request().unwrap();
    Fixture {
        dealt,
        signers,
        stores,
        coordinator,
        session,
        request,
    }
}

#[test]
fn nonces_sign_once() {
    let mut f = after_round_one();
    f.signers[0].round2(&f.request, &mut f.stores[0]).unwrap();
    // The same request again: the nonces are gone.
    assert!(matches!(
        f.signers[0].round2(&f.request, &mut f.stores[0]),
        Err(SignerError::NoncesUnavailable)
    ));
    // Another request (another message) in the same session: refused all the same.
    let mut other = f.request.clone();
    other.message = b"another message".to_vec();
    assert!(matches!(
        f.signers[0].round2(&other, &mut f.stores[0]),
        Err(SignerError::NoncesUnavailable)
    ));
    // A second round one for the session cannot mint fresh nonces either.
    let again = f.signers[0].round1(f.session, &[9u8; 64], &mut f.stores[0]);
    assert!(matches!(again, Err(SignerError::Store(_))));
}

#[test]
fn a_spent_nonce_stays_spent_when_the_request_is_bad() {
    let mut f = after_round_one();
    // The coordinator swaps signer 0's commitment for signer 1's: signer 0 refuses, and its
    // nonces are consumed, so a corrected request cannot get a second share out of them.
    let mut entries: Vec<_> = f.request.commitments.entries().to_vec();
    entries[0].1 = entries[1].1;
    let mut forged = f.request.clone();
    forged.commitments = frost::CommitmentList::new(entries, 5).unwrap();
    assert!(matches!(
        f.signers[0].round2(&forged, &mut f.stores[0]),
        Err(SignerError::Frost(FrostError::CommitmentMismatch(_)))
    ));
    assert!(matches!(
        f.signers[0].round2(&f.request, &mut f.stores[0]),
        Err(SignerError::NoncesUnavailable)
    ));
}

/// A store that never manages to persist.
struct FailingStore;

#[derive(Debug, thiserror::Error)]
#[error("disk full")]
struct DiskFull;

impl NonceStore for FailingStore {
    type Error = DiskFull;
    fn persist(&mut self, _: &SessionId, _: &SecretBytes) -> Result<(), DiskFull> {
        Err(DiskFull)
    }
    fn take(&mut self, _: &SessionId) -> Result<Option<SecretBytes>, DiskFull> {
        Ok(None)
    }
}

#[test]
fn no_commitment_without_persisted_nonces() {
    let dealt = deal(2, 3, 5);
    let signer = Signer::new(dealt.key_package(0), Mode::Rfc9591, 2);
    assert!(matches!(
        signer.round1(SessionId([1; 32]), &[3u8; 64], &mut FailingStore),
        Err(SignerError::Store(DiskFull))
    ));
}

#[test]
fn coordinator_matches_sessions_and_senders() {
    let dealt = deal(3, 5, 11);
    let session = SessionId([1u8; 32]);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    let mut c = Coordinator::new(session, Mode::Rfc9591, dealt.public.clone(), b"m".to_vec());
    let s0 = Signer::new(dealt.key_package(0), Mode::Rfc9591, 3);
    let mut store = MemoryNonceStore::new();
    let p0 = s0
        .round1(session, &randomness(&mut rng), &mut store)
        .unwrap();
    assert_eq!(
        c.on_commitment(id(1), &p0),
        Err(Rejected::SenderMismatch {
            claimed: id(0),
            sender: id(1)
        })
    );
    let mut elsewhere = p0;
    elsewhere.session = SessionId([2u8; 32]);
    assert_eq!(
        c.on_commitment(id(0), &elsewhere),
        Err(Rejected::WrongSession)
    );
    let mut stranger = p0;
    stranger.signer = id(9);
    assert_eq!(
        c.on_commitment(id(9), &stranger),
        Err(Rejected::UnknownSigner(id(9)))
    );
    c.on_commitment(id(0), &p0).unwrap();
    assert_eq!(c.on_commitment(id(0), &p0), Err(Rejected::Duplicate(id(0))));
    assert_eq!(
        c.signing_request(),
        Err(CoordinatorError::NotEnoughCommitments { needed: 3, got: 1 })
    );
    let share = SharePackage {
        session,
        signer: id(0),
        share: SignatureShare::from_bytes(&[1u8; 32]).unwrap(),
    };
    assert_eq!(c.on_share(id(0), &share), Err(Rejected::WrongRound));
    assert_eq!(c.finish(), Err(CoordinatorError::WrongRound));
    // A signer refuses a request listing fewer than the threshold.
    let mut f = after_round_one();
    let short =
        frost::CommitmentList::new(f.request.commitments.entries()[..2].to_vec(), 5).unwrap();
    let mut request = f.request.clone();
    request.commitments = short;
    assert!(matches!(
        f.signers[0].round2(&request, &mut f.stores[0]),
        Err(SignerError::BelowThreshold { needed: 3, got: 2 })
    ));
}

#[test]
fn coordinator_names_the_signer_of_a_bad_share() {
    let mut f = after_round_one();
    let mut shares = Vec::new();
    for (s, store) in f.signers.iter().zip(&mut f.stores) {
        shares.push(s.round2(&f.request, store).unwrap());
    }
    // Signer 1's share, altered in transit or by signer 1.
    let mut bad = shares[1];
    let z = bad.share.to_bytes();
    let mut z2 = z;
    z2[31] ^= 1;
    bad.share = SignatureShare::from_bytes(&z2).unwrap();
    // Shares from outside the list are refused.
    let outsider = SharePackage {
        session: f.session,
        signer: id(4),
        share: shares[0].share,
    };
    assert_eq!(
        f.coordinator.on_share(id(4), &outsider),
        Err(Rejected::NotListed(id(4)))
    );
    f.coordinator.on_share(id(0), &shares[0]).unwrap();
    assert_eq!(
        f.coordinator.finish(),
        Err(CoordinatorError::MissingShares(vec![id(1), id(2)]))
    );
    f.coordinator.on_share(id(1), &bad).unwrap();
    f.coordinator.on_share(id(2), &shares[2]).unwrap();
    assert_eq!(
        f.coordinator.finish(),
        Err(CoordinatorError::Frost(FrostError::InvalidSignatureShares(
            vec![id(1)]
        )))
    );
    let _ = &f.dealt;
}

#[test]
fn wire_decoders_refuse_malformed_packages() {
    let f = after_round_one();
    let request = f.request.to_bytes();
    // Bounds: message length and number of signers.
    assert!(matches!(
        SigningRequest::from_bytes(&request, 0, 5),
        Err(WireError::Decode(_))
    ));
    assert!(matches!(
        SigningRequest::from_bytes(&request, MAX_MESSAGE, 2),
        Err(WireError::Frost(FrostError::TooManySigners {
            max: 2,
            actual: 3
        }))
    ));
    // Truncated, trailing bytes, wrong tag, unknown mode.
    assert!(SigningRequest::from_bytes(&request[..request.len() - 1], MAX_MESSAGE, 5).is_err());
    let mut longer = request.clone();
    longer.push(0);
    assert!(SigningRequest::from_bytes(&longer, MAX_MESSAGE, 5).is_err());
    let mut tag = request.clone();
    tag[0] = 3;
    assert_eq!(
        SigningRequest::from_bytes(&tag, MAX_MESSAGE, 5),
        Err(WireError::Tag(3))
    );
    let mut mode = request.clone();
    mode[33] = 9;
    assert_eq!(
        SigningRequest::from_bytes(&mode, MAX_MESSAGE, 5),
        Err(WireError::Mode(9))
    );
    assert!(SigningRequest::from_bytes(&[], MAX_MESSAGE, 5).is_err());
    // Share packages: z at the group order is not canonical; identifier zero is refused.
    let share = SharePackage {
        session: f.session,
        signer: id(0),
        share: SignatureShare::from_bytes(&[1u8; 32]).unwrap(),
    };
    let mut bytes = share.to_bytes();
    assert_eq!(SharePackage::from_bytes(&bytes).unwrap(), share);
    bytes[65..].copy_from_slice(
        &hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141").unwrap(),
    );
    assert!(SharePackage::from_bytes(&bytes).is_err());
    let mut zero_id = share.to_bytes();
    zero_id[33..65].fill(0);
    assert_eq!(
        SharePackage::from_bytes(&zero_id),
        Err(WireError::Frost(FrostError::ZeroIdentifier))
    );
    // Commitment packages: an identity commitment is refused.
    let package = CommitmentPackage {
        session: f.session,
        signer: id(0),
        commitments: f.request.commitments.entries()[0].1,
    };
    let mut bytes = package.to_bytes();
    bytes[65..98].fill(0);
    assert!(CommitmentPackage::from_bytes(&bytes).is_err());
    assert!(CommitmentPackage::from_bytes(&package.to_bytes()[..130]).is_err());
}
