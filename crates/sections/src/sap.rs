//! The section authority provider (SAP) and the handover to a new section key (seed 002, "Post
//! successful DKG").
//!
//! 1. Each new elder signs the new SAP's canonical bytes with its new key share
//!    ([`sign_sap`]); the current elders collect these partials ([`ThresholdAccumulator`]) and
//!    combine them into a signature under the new section key, which proves a supermajority of
//!    the new elders holds shares of that key.
//! 2. The current elders then sign the new key's 48 bytes with their current key shares
//!    ([`sign_link`]); combined, that is the chain link from the current key to the new one.
//! 3. A [`SignedSap`] carries both signatures; [`apply`] accepts it only if both verify and the
//!    link's parent is the newest key of the receiver's chain, and then extends the chain.
//!
//! The genesis node has no DKG: it draws the genesis key alone ([`genesis`]) and holds it as the
//! only share of a 1-of-1 key, so every later handover runs the same steps.
//! It signs the genesis SAP with that key ([`SignedSap::genesis`]), so a joiner checks who the
//! genesis elder is from the genesis key alone, as it checks every later SAP.

use std::collections::BTreeMap;

use blstrs::Scalar;
use keyquorum_crypto::hash::tagged_hash;
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk, PartialSignature};
use keyquorum_crypto::{Bls12381G1, Curve};
use rand_core::{CryptoRng, RngCore};

use crate::chain::{ChainError, KeyChain, Link};
use crate::elders::{MAX_ADDR_LEN, Peer};
use crate::keys::{PublicKey, Signature, key_bytes};
use crate::name::{Name, Prefix};
use crate::session::{MAX_CANDIDATES, supermajority};

const SAP_TAG: &str = "keyquorum-sections/sap/v1";

/// A section's authority: its prefix, its elders (sorted by name) and its section key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sap {
    /// The names the section is responsible for.
    pub prefix: Prefix,
    /// The elders, sorted by name; an elder's share index is its position plus one.
    pub elders: Vec<Peer>,
    /// The section key the elders hold shares of.
    pub section_key: PublicKey,
}

impl Sap {
    /// Canonical encoding: prefix, the elder count as u32 big-endian, each elder, the key.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.prefix.encode(&mut out);
        out.extend_from_slice(&(self.elders.len() as u32).to_be_bytes());
        for e in &self.elders {
            e.encode(&mut out);
        }
        out.extend_from_slice(&key_bytes(&self.section_key));
        out
    }

    /// The bytes the new key signs.
    pub fn signing_bytes(&self) -> [u8; 32] {
        tagged_hash(SAP_TAG, &[&self.encode()])
    }

    /// How many elder shares a signature under the section key needs.
    pub fn threshold(&self) -> usize {
        supermajority(self.elders.len())
    }

    /// The elders' names, in share-index order.
    pub fn names(&self) -> Vec<Name> {
        self.elders.iter().map(Peer::name).collect()
    }

    /// Checks what [`Sap::encode`] relies on to be unambiguous, and what share indices rely on:
    /// between one and [`MAX_CANDIDATES`] elders, strictly sorted by name, all under the prefix,
    /// addresses at most [`MAX_ADDR_LEN`] bytes.
    pub fn check(&self) -> Result<(), HandoverError> {
        let n = self.elders.len();
        if n == 0 || n > MAX_CANDIDATES {
            return Err(HandoverError::BadElders);
        }
        if self.elders.iter().any(|e| e.addr.len() > MAX_ADDR_LEN) {
            return Err(HandoverError::BadElders);
        }
        let names = self.names();
        if !names.windows(2).all(|w| w[0] < w[1]) || !names.iter().all(|n| self.prefix.matches(n)) {
            return Err(HandoverError::BadElders);
        }
        Ok(())
    }
}

/// An elder's share of a section key.
#[derive(Debug)]
pub struct KeyShare {
    /// The share's evaluation point: the elder's position in the SAP plus one.
    pub index: Scalar,
    /// The secret share.
    pub share: Secret<Scalar>,
    /// The section key.
    pub section_key: PublicKey,
}

/// The share index of the elder at `position` in a sorted elder list.
pub fn index_at(position: usize) -> Scalar {
    Scalar::from(position as u64 + 1)
}

/// The genesis section: one node, a key it draws alone, held as the single share of a 1-of-1
/// key (any index of a degree-zero polynomial carries the secret itself).
pub fn genesis<R: RngCore + CryptoRng>(founder: Peer, rng: &mut R) -> (Sap, KeyShare) {
    let secret = Secret::new(Bls12381G1::random_scalar(rng));
    let section_key = tbls::public_key::<MinPk>(&secret);
    let sap = Sap {
        prefix: Prefix::ROOT,
        elders: vec![founder],
        section_key,
    };
    let share = KeyShare {
        index: index_at(0),
        share: secret,
        section_key,
    };
    (sap, share)
}

/// A new elder's partial signature on the new SAP with its new key share.
pub fn sign_sap(share: &KeyShare, sap: &Sap) -> PartialSignature<MinPk> {
    tbls::partial_sign::<MinPk>(&share.share, share.index, &sap.signing_bytes())
}

/// A current elder's partial signature on the new section key with its current key share.
pub fn sign_link(current: &KeyShare, new_key: &PublicKey) -> PartialSignature<MinPk> {
    tbls::partial_sign::<MinPk>(&current.share, current.index, &key_bytes(new_key))
}

/// Why a handover step refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandoverError {
    /// The sender is not one of the expected signers.
    #[error("sender is not an expected signer")]
    NotASigner,
    /// The partial's index is not the sender's position plus one.
    #[error("partial signature carries another signer's index")]
    WrongIndex,
    /// The sender already gave a partial.
    #[error("duplicate partial")]
    Duplicate,
    /// Enough partials, but no set of `threshold` of them combines to a signature that
    /// verifies: some partial is bad. The partial is kept and later ones are combined with the
    /// good ones ([`ThresholdAccumulator::add`]); without the signers' public shares the bad
    /// one is not named.
    #[error("combined signature does not verify")]
    CombinedInvalid,
    /// The SAP's signature does not verify under its own section key.
    #[error("SAP not signed by its section key")]
    BadSapSignature,
    /// The SAP's elder list is empty, too long, unsorted, repeats a name, holds a name outside
    /// the prefix or an over-long address.
    #[error("malformed elder list")]
    BadElders,
    /// The SAP's prefix is neither the current prefix nor a child of it.
    #[error("SAP prefix does not descend from the current one")]
    WrongPrefix,
    /// The chain link is refused.
    #[error("chain link: {0}")]
    Chain(#[from] ChainError),
}

/// Most sets of `threshold` partials one [`ThresholdAccumulator`] combines and verifies. Every
/// set is tried once, so this covers every set for up to 12 signers (`C(12, 9) = 220`; seven
/// elders give 21): there, bad partials never keep the good ones from combining. Beyond that,
/// it bounds what bad partials cost a receiver (a pairing check a set).
pub const MAX_COMBINATIONS: usize = 256;

/// Most elders a section may select: the largest count whose handovers try every set of
/// `supermajority` partials within [`MAX_COMBINATIONS`] (`C(12, 9) = 220`; thirteen elders
/// would have `C(13, 9) = 715` sets). Above it, bad partials from faulty new or current elders
/// can use up the budget before a good set is tried and stall the handover; the fix, carrying
/// the elders' public key shares so that each partial is checked alone, is not made.
pub const MAX_ELDERS: usize = 12;

/// Collects partial signatures of known signers on one message until `threshold` of them combine
/// to a signature that verifies under `key`.
///
/// The receiver does not hold the signers' public shares, so it cannot check a partial alone,
/// only whether a set of `threshold` of them combines to a valid signature. A bad partial must
/// not block the good ones, so when one set fails the others are tried as partials come in.
#[derive(Debug)]
pub struct ThresholdAccumulator {
    message: Vec<u8>,
    key: PublicKey,
    signers: Vec<Name>,
    threshold: usize,
    partials: BTreeMap<Name, PartialSignature<MinPk>>,
    combined: Option<Signature>,
    /// Sets combined and verified so far, at most [`MAX_COMBINATIONS`].
    tried: usize,
}

impl ThresholdAccumulator {
    /// Partials on the new SAP by its elders, under its key.
    pub fn for_sap(sap: &Sap) -> Self {
        Self::new(
            sap.signing_bytes().to_vec(),
            sap.section_key,
            sap.names(),
            sap.threshold(),
        )
    }

    /// Partials on `new_key` by the elders of `current`, under the current key.
    pub fn for_link(current: &Sap, new_key: &PublicKey) -> Self {
        Self::new(
            key_bytes(new_key).to_vec(),
            current.section_key,
            current.names(),
            current.threshold(),
        )
    }

    fn new(message: Vec<u8>, key: PublicKey, signers: Vec<Name>, threshold: usize) -> Self {
        ThresholdAccumulator {
            message,
            key,
            signers,
            threshold,
            partials: BTreeMap::new(),
            combined: None,
            tried: 0,
        }
    }

    /// Takes `from`'s partial; returns the combined signature once some `threshold` of the
    /// partials taken combine to one that verifies. Fails with
    /// [`HandoverError::CombinedInvalid`] (keeping the partial) while no such set exists among
    /// `threshold` or more of them.
    pub fn add(
        &mut self,
        from: Name,
        partial: PartialSignature<MinPk>,
    ) -> Result<Option<Signature>, HandoverError> {
        if let Some(sig) = self.combined {
            return Ok(Some(sig));
        }
        let position = self
            .signers
            .binary_search(&from)
            .map_err(|_| HandoverError::NotASigner)?;
        if partial.index != index_at(position) {
            return Err(HandoverError::WrongIndex);
        }
        if self.partials.contains_key(&from) {
            return Err(HandoverError::Duplicate);
        }
        self.partials.insert(from, partial);
        if self.partials.len() < self.threshold {
            return Ok(None);
        }
        // Every set without the new partial was tried when an earlier one came, so only the
        // sets holding it are new: over the accumulator's life each set is tried once.
        let others: Vec<PartialSignature<MinPk>> = self
            .partials
            .iter()
            .filter(|(name, _)| **name != from)
            .map(|(_, p)| *p)
            .collect();
        let mut chosen: Vec<usize> = (0..self.threshold - 1).collect();
        while self.tried < MAX_COMBINATIONS {
            self.tried += 1;
            let mut set: Vec<PartialSignature<MinPk>> = chosen.iter().map(|&i| others[i]).collect();
            set.push(partial);
            if let Ok(sig) = tbls::combine::<MinPk>(self.threshold, &set)
                && tbls::verify::<MinPk>(&self.key, &self.message, &sig).is_ok()
            {
                self.combined = Some(sig);
                return Ok(Some(sig));
            }
            if !next_combination(&mut chosen, others.len()) {
                break;
            }
        }
        Err(HandoverError::CombinedInvalid)
    }
}

/// Moves `chosen`, a strictly increasing choice of indices below `n`, to the next such choice
/// in lexicographic order; `false` after the last.
fn next_combination(chosen: &mut [usize], n: usize) -> bool {
    let k = chosen.len();
    for i in (0..k).rev() {
        if chosen[i] < n - k + i {
            chosen[i] += 1;
            for j in i + 1..k {
                chosen[j] = chosen[j - 1] + 1;
            }
            return true;
        }
    }
    false
}

/// A new SAP with its two signatures: by its own key over the SAP, and by the parent key over
/// the new key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedSap {
    /// The new authority.
    pub sap: Sap,
    /// The new section key's signature over [`Sap::signing_bytes`].
    pub sap_signature: Signature,
    /// The parent section key.
    pub parent_key: PublicKey,
    /// The parent key's signature over the new key's 48 bytes.
    pub parent_signature: Signature,
}

impl SignedSap {
    /// The genesis SAP, signed by the genesis key it names, in both places: over the SAP, and
    /// over its own 48 bytes as its parent. A joiner checks it with [`SignedSap::verify_genesis`]
    /// before it asks the genesis elder to admit it; it adds no link to the chain.
    pub fn genesis(sap: &Sap, share: &KeyShare) -> Self {
        SignedSap {
            sap: sap.clone(),
            sap_signature: tbls::sign::<MinPk>(&share.share, &sap.signing_bytes()),
            parent_key: sap.section_key,
            parent_signature: tbls::sign::<MinPk>(&share.share, &key_bytes(&sap.section_key)),
        }
    }

    /// Checks a genesis SAP signed as [`SignedSap::genesis`] makes it under `genesis_key`: the
    /// root prefix, a well-formed elder list, the genesis key as section and parent key, and
    /// both signatures.
    pub fn verify_genesis(&self, genesis_key: &PublicKey) -> Result<(), HandoverError> {
        self.sap.check()?;
        if self.sap.prefix != Prefix::ROOT {
            return Err(HandoverError::WrongPrefix);
        }
        if self.sap.section_key != *genesis_key || self.parent_key != *genesis_key {
            return Err(HandoverError::BadSapSignature);
        }
        tbls::verify::<MinPk>(genesis_key, &self.sap.signing_bytes(), &self.sap_signature)
            .map_err(|_| HandoverError::BadSapSignature)?;
        self.link().verify()?;
        Ok(())
    }

    /// The chain link this SAP adds.
    pub fn link(&self) -> Link {
        Link {
            key: self.sap.section_key,
            parent_key: self.parent_key,
            signature: self.parent_signature,
        }
    }
}

/// Applies `signed` on top of a section whose authority is `current` and whose key chain from
/// `genesis` is `chain`: both signatures must verify, the parent must be the chain's newest key
/// and the prefix the current one or a child. Extends `chain` and returns the new authority.
pub fn apply(
    current: &Sap,
    chain: &mut KeyChain,
    genesis: &PublicKey,
    signed: &SignedSap,
) -> Result<Sap, HandoverError> {
    signed.sap.check()?;
    if !signed.sap.prefix.is_self_or_child_of(&current.prefix) {
        return Err(HandoverError::WrongPrefix);
    }
    extend(chain, genesis, signed)
}

/// The part of [`apply`] that does not depend on the receiver's SAP: checks the SAP's signature
/// under its own key, appends its link to `chain` (the link's parent must be the chain's newest
/// key, and its signature verify) and returns the new authority. The caller has checked the SAP
/// ([`Sap::check`]) and its prefix; a node catching up ([`crate::catch_up`]) uses it for the
/// last link of the chain it learns.
pub fn extend(
    chain: &mut KeyChain,
    genesis: &PublicKey,
    signed: &SignedSap,
) -> Result<Sap, HandoverError> {
    tbls::verify::<MinPk>(
        &signed.sap.section_key,
        &signed.sap.signing_bytes(),
        &signed.sap_signature,
    )
    .map_err(|_| HandoverError::BadSapSignature)?;
    chain.push(genesis, signed.link())?;
    Ok(signed.sap.clone())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::elders::tests::member;
    use keyquorum_crypto::poly::Polynomial;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// TEST ONLY: a trusted dealer, for the unit tests of this module, which are about combining
    /// and checking the handover's signatures, not about how the shares came to be (the
    /// coordinator's tests run the real DKG). It knows the secret key; no deployment may use it.
    pub(crate) fn trusted_dealer_for_tests(
        n: usize,
        rng: &mut ChaCha20Rng,
    ) -> (PublicKey, Vec<KeyShare>) {
        let t = supermajority(n);
        let poly = Polynomial::<Scalar>::random(t - 1, None, rng);
        let key = tbls::public_key::<MinPk>(&Secret::new(poly.constant()));
        let shares = (0..n)
            .map(|i| KeyShare {
                index: index_at(i),
                share: Secret::new(poly.evaluate(&index_at(i))),
                section_key: key,
            })
            .collect();
        (key, shares)
    }

    pub(crate) fn sorted_peers(seeds: core::ops::Range<u64>) -> Vec<Peer> {
        let mut peers: Vec<Peer> = seeds.map(|i| member(i, 0).peer).collect();
        peers.sort_by_key(Peer::name);
        peers
    }

    /// Runs steps 1 and 2 of the handover with the given signers and returns the signed SAP.
    fn handover(
        current: &Sap,
        current_shares: &[KeyShare],
        new: &Sap,
        new_shares: &[KeyShare],
    ) -> SignedSap {
        let mut sap_acc = ThresholdAccumulator::for_sap(new);
        let mut sap_sig = None;
        for (peer, share) in new.elders.iter().zip(new_shares) {
            sap_sig = sap_acc.add(peer.name(), sign_sap(share, new)).unwrap();
        }
        let mut link_acc = ThresholdAccumulator::for_link(current, &new.section_key);
        let mut link_sig = None;
        for (peer, share) in current.elders.iter().zip(current_shares) {
            link_sig = link_acc
                .add(peer.name(), sign_link(share, &new.section_key))
                .unwrap();
        }
        SignedSap {
            sap: new.clone(),
            sap_signature: sap_sig.unwrap(),
            parent_key: current.section_key,
            parent_signature: link_sig.unwrap(),
        }
    }

    /// What `docs/protocol.md` tells a client the section key signs, computed from the
    /// description: `SHA-256(u64be(len(tag)) || tag || u64be(len(sap)) || sap)`.
    #[test]
    fn the_signed_sap_bytes_are_the_documented_hash_of_the_encoding() {
        use sha2::{Digest, Sha256};
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let founder = Secret::new(Scalar::from(11u64));
        let (sap, _) = genesis(Peer::new(&founder, "node:1".into()), &mut rng);
        let tag = b"keyquorum-sections/sap/v1";
        let encoded = sap.encode();
        let mut h = Sha256::new();
        h.update((tag.len() as u64).to_be_bytes());
        h.update(tag);
        h.update((encoded.len() as u64).to_be_bytes());
        h.update(&encoded);
        assert_eq!(sap.signing_bytes(), <[u8; 32]>::from(h.finalize()));
    }

    #[test]
    fn genesis_then_two_handovers_extend_a_verifiable_chain() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let (sap0, share0) = genesis(member(100, 0).peer, &mut rng);
        let genesis_key = sap0.section_key;
        let mut chain = KeyChain::genesis();

        let (key1, shares1) = trusted_dealer_for_tests(7, &mut rng);
        let sap1 = Sap {
            prefix: Prefix::ROOT,
            elders: sorted_peers(0..7),
            section_key: key1,
        };
        let signed1 = handover(&sap0, &[share0], &sap1, &shares1);
        let applied = apply(&sap0, &mut chain, &genesis_key, &signed1).unwrap();
        assert_eq!(applied, sap1);

        let (key2, shares2) = trusted_dealer_for_tests(7, &mut rng);
        let sap2 = Sap {
            prefix: Prefix::ROOT,
            elders: sorted_peers(1..8),
            section_key: key2,
        };
        let signed2 = handover(&sap1, &shares1, &sap2, &shares2);
        apply(&sap1, &mut chain, &genesis_key, &signed2).unwrap();
        assert_eq!(chain.key_count(), 3);
        chain.verify_from(&genesis_key).unwrap();
        // Replaying the first SAP on the longer chain fails: its parent is no longer the newest.
        assert!(matches!(
            apply(&sap2, &mut chain, &genesis_key, &signed1),
            Err(HandoverError::Chain(ChainError::WrongParent { .. }))
        ));
    }

    #[test]
    fn a_sap_applies_only_with_both_signatures() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let (sap0, share0) = genesis(member(100, 0).peer, &mut rng);
        let g = sap0.section_key;
        let (key1, shares1) = trusted_dealer_for_tests(4, &mut rng);
        let sap1 = Sap {
            prefix: Prefix::ROOT,
            elders: sorted_peers(0..4),
            section_key: key1,
        };
        let good = handover(&sap0, &[share0], &sap1, &shares1);

        // Link signed by someone else than the parent key.
        let mut forged = good.clone();
        let outsider = Secret::new(Scalar::from(77u64));
        forged.parent_signature = tbls::sign::<MinPk>(&outsider, &key_bytes(&key1));
        assert_eq!(
            apply(&sap0, &mut KeyChain::genesis(), &g, &forged),
            Err(HandoverError::Chain(ChainError::BadSignature))
        );
        // Elders out of order, or an address too long to encode unambiguously: refused before
        // any signature is checked.
        let mut unsorted = good.clone();
        unsorted.sap.elders.swap(0, 1);
        assert_eq!(
            apply(&sap0, &mut KeyChain::genesis(), &g, &unsorted),
            Err(HandoverError::BadElders)
        );
        let mut long = good.clone();
        long.sap.elders[0].addr = "x".repeat(MAX_ADDR_LEN + 1);
        assert_eq!(
            apply(&sap0, &mut KeyChain::genesis(), &g, &long),
            Err(HandoverError::BadElders)
        );
        // SAP altered after the new key signed it (an elder's address swapped).
        let mut altered = good.clone();
        altered.sap.elders[0].addr = "6.6.6.6:1".into();
        assert_eq!(
            apply(&sap0, &mut KeyChain::genesis(), &g, &altered),
            Err(HandoverError::BadSapSignature)
        );
        apply(&sap0, &mut KeyChain::genesis(), &g, &good).unwrap();
    }

    #[test]
    fn accumulator_refuses_outsiders_wrong_indices_duplicates_and_bad_partials() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let (key, shares) = trusted_dealer_for_tests(4, &mut rng);
        let sap = Sap {
            prefix: Prefix::ROOT,
            elders: sorted_peers(0..4),
            section_key: key,
        };
        let names = sap.names();
        let mut acc = ThresholdAccumulator::for_sap(&sap);
        assert_eq!(
            acc.add(member(50, 0).peer.name(), sign_sap(&shares[0], &sap)),
            Err(HandoverError::NotASigner)
        );
        assert_eq!(
            acc.add(names[1], sign_sap(&shares[0], &sap)),
            Err(HandoverError::WrongIndex)
        );
        assert_eq!(acc.add(names[0], sign_sap(&shares[0], &sap)), Ok(None));
        assert_eq!(
            acc.add(names[0], sign_sap(&shares[0], &sap)),
            Err(HandoverError::Duplicate)
        );
        // A partial with the right index but a wrong share: the threshold (3) is reached, the
        // combination does not verify.
        let bad = KeyShare {
            index: index_at(1),
            share: Secret::new(Scalar::from(5u64)),
            section_key: key,
        };
        assert_eq!(acc.add(names[1], sign_sap(&bad, &sap)), Ok(None));
        assert_eq!(
            acc.add(names[2], sign_sap(&shares[2], &sap)),
            Err(HandoverError::CombinedInvalid)
        );
    }

    #[test]
    fn bad_partials_among_the_first_do_not_keep_the_good_ones_from_combining() {
        // Seven signers, threshold five, the two bad partials first (and first by name, where
        // a combination of the first five would always hold them): the five good ones combine.
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let (key, shares) = trusted_dealer_for_tests(7, &mut rng);
        let sap = Sap {
            prefix: Prefix::ROOT,
            elders: sorted_peers(0..7),
            section_key: key,
        };
        let names = sap.names();
        let mut acc = ThresholdAccumulator::for_sap(&sap);
        for (i, name) in names.iter().enumerate().take(2) {
            let bad = KeyShare {
                index: index_at(i),
                share: Secret::new(Scalar::from(5u64 + i as u64)),
                section_key: key,
            };
            assert_eq!(acc.add(*name, sign_sap(&bad, &sap)), Ok(None));
        }
        for (name, share) in names.iter().zip(&shares).skip(2).take(2) {
            assert_eq!(acc.add(*name, sign_sap(share, &sap)), Ok(None));
        }
        assert_eq!(
            acc.add(names[4], sign_sap(&shares[4], &sap)),
            Err(HandoverError::CombinedInvalid)
        );
        assert_eq!(
            acc.add(names[5], sign_sap(&shares[5], &sap)),
            Err(HandoverError::CombinedInvalid)
        );
        let sig = acc
            .add(names[6], sign_sap(&shares[6], &sap))
            .unwrap()
            .expect("the five good partials combine");
        tbls::verify::<MinPk>(&key, &sap.signing_bytes(), &sig).unwrap();
        // All C(7, 5) = 21 sets at most, within the budget.
        assert!(acc.tried <= 21, "{}", acc.tried);
    }

    #[test]
    fn every_set_of_partials_fits_the_budget_up_to_the_most_elders() {
        let sets = |n: usize| {
            let k = supermajority(n);
            (0..k).fold(1usize, |c, i| c * (n - i) / (i + 1))
        };
        assert!((1..=MAX_ELDERS).all(|n| sets(n) <= MAX_COMBINATIONS));
        assert!(sets(MAX_ELDERS + 1) > MAX_COMBINATIONS);
    }

    #[test]
    fn combinations_run_through_every_choice_once() {
        let mut chosen = vec![0, 1, 2];
        let mut seen = vec![chosen.clone()];
        while next_combination(&mut chosen, 5) {
            seen.push(chosen.clone());
        }
        assert_eq!(seen.len(), 10);
        assert_eq!(seen.last(), Some(&vec![2, 3, 4]));
        let mut none: Vec<usize> = Vec::new();
        assert!(!next_combination(&mut none, 3));
    }

    #[test]
    fn the_genesis_sap_is_signed_by_the_genesis_key_and_checked_against_it() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let (sap0, share0) = genesis(member(100, 0).peer, &mut rng);
        let g = sap0.section_key;
        let signed = SignedSap::genesis(&sap0, &share0);
        signed.verify_genesis(&g).unwrap();
        // Under another genesis key, with another elder, or a signature from another key: refused.
        let (other, other_share) = genesis(member(101, 0).peer, &mut rng);
        assert!(signed.verify_genesis(&other.section_key).is_err());
        let mut swapped = signed.clone();
        swapped.sap.elders = vec![member(101, 0).peer];
        assert_eq!(
            swapped.verify_genesis(&g),
            Err(HandoverError::BadSapSignature)
        );
        let mut forged = SignedSap::genesis(&sap0, &other_share);
        assert!(forged.verify_genesis(&g).is_err());
        forged.parent_signature = signed.parent_signature;
        assert_eq!(
            forged.verify_genesis(&g),
            Err(HandoverError::BadSapSignature)
        );
        let mut bad_parent = signed.clone();
        bad_parent.parent_signature = forged.sap_signature;
        assert!(matches!(
            bad_parent.verify_genesis(&g),
            Err(HandoverError::Chain(_))
        ));
        let mut child = signed.clone();
        child.sap.prefix = Prefix::ROOT.child(0).unwrap();
        child
            .sap
            .elders
            .retain(|e| child.sap.prefix.matches(&e.name()));
        assert!(child.verify_genesis(&g).is_err());
    }
}
