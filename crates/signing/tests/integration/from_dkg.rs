//! Signing with the output of a real keyquorum DKG on secp256k1: a 3-of-5 ack-or-reveal
//! ceremony, its outputs turned into FROST key packages, and sessions among different subsets
//! of the players in both modes.

use elliptic_curve::point::AffineCoordinates;
use keyquorum_crypto::Secp256k1;
use keyquorum_crypto::frost::{self, Mode};
use keyquorum_dkg::testing::ceremony::{MemberKeys, RunResult, fresh_config, member, run};
use keyquorum_dkg::{Ceremony, Params};
use keyquorum_signing::keys::{key_package, public_key_package};
use keyquorum_signing::{Coordinator, MemoryNonceStore, SessionId, Signer};

#[test]
fn dkg_output_signs_in_both_modes() {
    let (n, t) = (5, 3);
    let members: Vec<MemberKeys> = (0..n as u32).map(member).collect();
    let ceremony = Ceremony::new(fresh_config::<Secp256k1>(
        &members,
        Params::new(n, t, 4).unwrap(),
    ))
    .unwrap();
    let outputs: Vec<_> = run(ceremony.clone(), members, vec![None; n], &[])
        .into_iter()
        .map(|r| match r {
            RunResult::Ok(o) => o,
            _ => panic!("the ceremony must succeed"),
        })
        .collect();
    let public = public_key_package(&ceremony, &outputs[0]).unwrap();
    assert_eq!(public.threshold(), t);
    for o in &outputs[1..] {
        assert_eq!(public_key_package(&ceremony, o).unwrap(), public);
    }
    let keys: Vec<_> = outputs
        .iter()
        .map(|o| key_package(&ceremony, o).unwrap().unwrap())
        .collect();
    for k in &keys {
        assert_eq!(
            public.verifying_share(&k.identifier()).unwrap(),
            k.verifying_share()
        );
    }

    let mut session_number = 0u8;
    for mode in [Mode::Rfc9591, Mode::Bip340] {
        for members in [[0usize, 1, 2], [4, 3, 1], [2, 4, 0]] {
            session_number += 1;
            let session = SessionId([session_number; 32]);
            let msg = format!("dkg output, session {session_number}");
            let mut coordinator =
                Coordinator::new(session, mode, public.clone(), msg.as_bytes().to_vec());
            let signers: Vec<Signer> = members
                .iter()
                .map(|i| {
                    Signer::new(
                        key_package(&ceremony, &outputs[*i]).unwrap().unwrap(),
                        mode,
                        t,
                    )
                })
                .collect();
            let mut stores: Vec<_> = members.iter().map(|_| MemoryNonceStore::new()).collect();
            for (s, store) in signers.iter().zip(&mut stores) {
                let randomness = [session_number ^ s.key().identifier().to_bytes()[31]; 64];
                let p = s.round1(session, &randomness, store).unwrap();
                coordinator.on_commitment(s.key().identifier(), &p).unwrap();
            }
            let request = coordinator.signing_request().unwrap();
            for (s, store) in signers.iter().zip(&mut stores) {
                let p = s.round2(&request, store).unwrap();
                coordinator.on_share(s.key().identifier(), &p).unwrap();
            }
            let signature = coordinator.finish().unwrap();
            frost::verify(mode, public.group_key(), msg.as_bytes(), &signature).unwrap();
            if mode == Mode::Bip340 {
                let key = k256::schnorr::VerifyingKey::from_bytes(&public.group_key().x()).unwrap();
                let sig =
                    k256::schnorr::Signature::try_from(&signature.to_bip340_bytes()[..]).unwrap();
                key.verify_raw(msg.as_bytes(), &sig).unwrap();
            }
        }
    }
}
