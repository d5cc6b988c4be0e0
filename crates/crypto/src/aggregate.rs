//! Proof-of-possession aggregate signatures for acknowledgements: many signers sign ONE message,
//! their signatures add up to one signature, and it verifies against the sum of their public
//! keys (IETF `FastAggregateVerify`, POP scheme).
//!
//! # Rogue keys
//! Summing public keys is only sound if every key's owner knows its secret key. Otherwise an
//! attacker registers `pk_rogue = pk_attacker - pk_victim`, and `sk_attacker * H(m)` then
//! verifies as a signature "by victim and rogue", without the victim. The IETF POP scheme
//! demands a verified proof of possession for every key before aggregation; here that rule is a
//! type: [`fast_aggregate_verify`] takes only [`PopVerifiedKey`]s, and the only ways to obtain one
//! are to verify a proof of possession, to hold the secret key, or to take the key from a
//! registry that verified its proof at admission ([`PopVerifiedKey::registered`], how
//! `keyquorum-dkg` aggregates acks under its members' identity keys). The field is private, so
//! the type cannot be built around an unchecked key:
//!
//! ```compile_fail,E0451
//! use keyquorum_crypto::aggregate::PopVerifiedKey;
//! use keyquorum_crypto::tbls::{self, MinPk};
//! let sk = tbls::secret_key_from_bytes(&[1u8; 32]).unwrap();
//! let pk = tbls::public_key::<MinPk>(&sk);
//! let key = PopVerifiedKey::<MinPk> { pk }; // error: field `pk` is private
//! ```
//!
//! whereas the same key obtained through the API is fine:
//!
//! ```
//! use keyquorum_crypto::aggregate::PopVerifiedKey;
//! use keyquorum_crypto::tbls::{self, MinPk};
//! let sk = tbls::secret_key_from_bytes(&[1u8; 32]).unwrap();
//! let pop = tbls::proof_of_possession::<MinPk>(&sk);
//! let key = PopVerifiedKey::<MinPk>::new(tbls::public_key::<MinPk>(&sk), &pop).unwrap();
//! assert_eq!(key, PopVerifiedKey::<MinPk>::from_secret(&sk).unwrap());
//! ```

use blstrs::Scalar;
use group::Curve as _;
use group::prime::PrimeCurveAffine;

use crate::error::{CryptoError, DecodeError};
use crate::group::Curve;
use crate::secret::Secret;
use crate::tbls::{self, PublicKey, Signature, Variant};

/// A public key whose owner proved possession of the secret key (or that was derived from a
/// secret key held locally). Only such keys can be aggregated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PopVerifiedKey<V: Variant> {
    pk: PublicKey<V>,
}

impl<V: Variant> PopVerifiedKey<V> {
    /// Accepts `pk` if `pop` is a valid proof of possession for it (IETF `PopVerify`).
    pub fn new(pk: PublicKey<V>, pop: &Signature<V>) -> Result<Self, CryptoError> {
        tbls::verify_pop::<V>(&pk, pop)?;
        Ok(PopVerifiedKey { pk })
    }

    /// Decodes a compressed public key and its compressed proof of possession, and verifies the
    /// proof.
    pub fn from_bytes(pk: &[u8], pop: &[u8]) -> Result<Self, CryptoError> {
        let pk = tbls::decode_public_key::<V>(pk)?;
        let pop = tbls::decode_signature::<V>(pop)?;
        Self::new(pk, &pop)
    }

    /// The key of a locally held secret: possession is evident. Rejects the zero key.
    pub fn from_secret(sk: &Secret<Scalar>) -> Result<Self, CryptoError> {
        let pk = tbls::public_key::<V>(sk);
        if bool::from(pk.is_identity()) {
            return Err(DecodeError::ZeroScalar.into());
        }
        Ok(PopVerifiedKey { pk })
    }

    /// A key that a registry admitted only after verifying its proof of possession (as
    /// [`PopVerifiedKey::new`] does), for callers that hold the registered key but not the proof:
    /// keyquorum's ceremonies take their members' identity keys from the coordinator contract,
    /// which runs `PopVerify` at registration. The caller vouches for that check, which includes
    /// `KeyValidate` (subgroup membership is not checked again here: at about 100 us a key it
    /// would dominate verifying the aggregates of a large ceremony); everything else should use
    /// [`PopVerifiedKey::new`]. Rejects the identity.
    pub fn registered(pk: PublicKey<V>) -> Result<Self, CryptoError> {
        if bool::from(pk.is_identity()) {
            return Err(DecodeError::Identity.into());
        }
        Ok(PopVerifiedKey { pk })
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey<V> {
        &self.pk
    }
}

/// IETF `Aggregate`: the sum of the signatures. Fails on an empty list.
pub fn aggregate_signatures<V: Variant>(
    sigs: &[Signature<V>],
) -> Result<Signature<V>, CryptoError> {
    if sigs.is_empty() {
        return Err(CryptoError::NotEnough { needed: 1, got: 0 });
    }
    Ok(V::Signature::sum(sigs).to_affine())
}

/// The sum of proof-of-possession-verified public keys. Fails on an empty list.
pub fn aggregate_public_keys<V: Variant>(
    keys: &[PopVerifiedKey<V>],
) -> Result<PublicKey<V>, CryptoError> {
    if keys.is_empty() {
        return Err(CryptoError::NotEnough { needed: 1, got: 0 });
    }
    let pks: Vec<PublicKey<V>> = keys.iter().map(|k| k.pk).collect();
    Ok(V::Public::sum(&pks).to_affine())
}

/// IETF `FastAggregateVerify`: checks that `sig` aggregates signatures on `msg` by every key in
/// `keys` (a key listed twice must have signed twice).
///
/// One pairing check against the sum of the keys. Fails with `NotEnough` for no keys and
/// `BadSignature` if the signature does not verify or the keys sum to the identity.
pub fn fast_aggregate_verify<V: Variant>(
    keys: &[PopVerifiedKey<V>],
    msg: &[u8],
    sig: &Signature<V>,
) -> Result<(), CryptoError> {
    let agg = aggregate_public_keys(keys)?;
    // Every summand is a validated subgroup point, so only the identity needs excluding here.
    if bool::from(agg.is_identity()) || !V::Signature::in_subgroup(sig) {
        return Err(CryptoError::BadSignature);
    }
    if V::pairing_check(&agg, &tbls::hash_message::<V>(msg), sig) {
        Ok(())
    } else {
        Err(CryptoError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tbls::{MinPk, MinSig};
    use group::Group;
    use rand_core::SeedableRng;

    fn keys<V: Variant>(n: usize, seed: u64) -> Vec<Secret<Scalar>> {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| Secret::new(V::Public::random_scalar(&mut rng)))
            .collect()
    }

    fn acks_aggregate<V: Variant>() {
        let sks = keys::<V>(7, 1);
        let msg = b"ack: dealing 3, round 2";
        let registered: Vec<PopVerifiedKey<V>> = sks
            .iter()
            .map(|sk| {
                PopVerifiedKey::new(
                    tbls::public_key::<V>(sk),
                    &tbls::proof_of_possession::<V>(sk),
                )
                .unwrap()
            })
            .collect();
        let sigs: Vec<Signature<V>> = sks.iter().map(|sk| tbls::sign::<V>(sk, msg)).collect();
        let agg = aggregate_signatures::<V>(&sigs).unwrap();
        assert_eq!(fast_aggregate_verify(&registered, msg, &agg), Ok(()));
        // Missing signer, wrong message, extra key: all rejected.
        let partial = aggregate_signatures::<V>(&sigs[1..]).unwrap();
        assert_eq!(
            fast_aggregate_verify(&registered, msg, &partial),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            fast_aggregate_verify(&registered, b"other", &agg),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            fast_aggregate_verify(&registered[1..], msg, &agg),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            fast_aggregate_verify::<V>(&[], msg, &agg),
            Err(CryptoError::NotEnough { needed: 1, got: 0 })
        );
        // Round trip through bytes.
        let sk = &sks[0];
        let k = PopVerifiedKey::<V>::from_bytes(
            &V::Public::point_bytes(&tbls::public_key::<V>(sk)),
            &V::Signature::point_bytes(&tbls::proof_of_possession::<V>(sk)),
        )
        .unwrap();
        assert_eq!(k, registered[0]);
        assert_eq!(PopVerifiedKey::<V>::from_secret(sk).unwrap(), registered[0]);
    }

    /// A registered key is taken as is, except what `KeyValidate` refuses.
    #[test]
    fn registered_keys_are_validated() {
        let sk = &keys::<MinSig>(1, 3)[0];
        let pk = tbls::public_key::<MinSig>(sk);
        assert_eq!(
            PopVerifiedKey::<MinSig>::registered(pk),
            PopVerifiedKey::<MinSig>::from_secret(sk)
        );
        assert!(PopVerifiedKey::<MinSig>::registered(blstrs::G2Affine::identity()).is_err());
        assert!(PopVerifiedKey::<MinPk>::registered(blstrs::G1Affine::identity()).is_err());
    }

    #[test]
    fn acks_aggregate_both_layouts() {
        acks_aggregate::<MinPk>();
        acks_aggregate::<MinSig>();
    }

    /// The rogue-key attack succeeds against plain key summation and fails against the API.
    fn rogue_key_attack<V: Variant>() {
        let sks = keys::<V>(2, 2);
        let (victim_sk, attacker_sk) = (&sks[0], &sks[1]);
        let pk_victim = tbls::public_key::<V>(victim_sk);
        let victim =
            PopVerifiedKey::<V>::new(pk_victim, &tbls::proof_of_possession::<V>(victim_sk))
                .unwrap();
        // pk_rogue = pk_attacker - pk_victim; nobody knows its discrete logarithm.
        let pk_attacker = tbls::public_key::<V>(attacker_sk);
        let pk_rogue = (pk_attacker.to_curve() - pk_victim.to_curve()).to_affine();
        let msg = b"ack: the victim approves";
        // The forgery "by victim and rogue" is the attacker's own signature.
        let forged = tbls::sign::<V>(attacker_sk, msg);

        // Without proofs of possession it verifies under the plain sum of the keys.
        let plain_sum = (pk_victim.to_curve() + pk_rogue.to_curve()).to_affine();
        assert_eq!(tbls::verify::<V>(&plain_sum, msg, &forged), Ok(()));

        // Registration of the rogue key is refused: the attacker can offer a proof for its own
        // key, or the POP-style hash of the rogue key under its own secret, and neither verifies.
        let own_pop = tbls::proof_of_possession::<V>(attacker_sk);
        assert_eq!(
            PopVerifiedKey::<V>::new(pk_rogue, &own_pop),
            Err(CryptoError::BadProofOfPossession)
        );
        let guessed_pop =
            (V::Signature::hash_to_point(&V::Public::point_bytes(&pk_rogue), V::POP_DST)
                * attacker_sk.expose())
            .to_affine();
        assert_eq!(
            PopVerifiedKey::<V>::new(pk_rogue, &guessed_pop),
            Err(CryptoError::BadProofOfPossession)
        );
        assert_eq!(
            PopVerifiedKey::<V>::new(pk_rogue, &Signature::<V>::identity()),
            Err(CryptoError::BadProofOfPossession)
        );
        // With only keys the API accepts, the forgery does not verify: the victim alone, or the
        // victim with the attacker's genuine key.
        let attacker = PopVerifiedKey::<V>::new(pk_attacker, &own_pop).unwrap();
        assert_eq!(
            fast_aggregate_verify(&[victim], msg, &forged),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            fast_aggregate_verify(&[victim, attacker], msg, &forged),
            Err(CryptoError::BadSignature)
        );
        // Sanity of the group arithmetic behind the attack.
        assert!(bool::from(
            (plain_sum.to_curve() - pk_attacker.to_curve()).is_identity()
        ));
    }

    #[test]
    fn rogue_key_attack_is_refused_both_layouts() {
        rogue_key_attack::<MinPk>();
        rogue_key_attack::<MinSig>();
    }

    #[test]
    fn empty_inputs_and_identity_sum_are_rejected() {
        assert_eq!(
            aggregate_signatures::<MinPk>(&[]),
            Err(CryptoError::NotEnough { needed: 1, got: 0 })
        );
        // A key and its negation are both legitimately possessed, and sum to the identity.
        let sk = &keys::<MinPk>(1, 3)[0];
        let neg = Secret::new(-*sk.expose());
        let k1 = PopVerifiedKey::<MinPk>::from_secret(sk).unwrap();
        let k2 = PopVerifiedKey::<MinPk>::from_secret(&neg).unwrap();
        let sig = aggregate_signatures::<MinPk>(&[
            tbls::sign::<MinPk>(sk, b"m"),
            tbls::sign::<MinPk>(&neg, b"m"),
        ])
        .unwrap();
        assert!(bool::from(sig.is_identity()));
        assert_eq!(
            fast_aggregate_verify(&[k1, k2], b"m", &sig),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            PopVerifiedKey::<MinPk>::from_secret(&Secret::new(Scalar::from(0u64))),
            Err(CryptoError::Decode(DecodeError::ZeroScalar))
        );
    }
}
