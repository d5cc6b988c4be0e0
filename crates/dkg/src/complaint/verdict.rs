//! Judging a verifiable complaint about one encrypted pair: whose fault is it, the dealer's or
//! the complainer's?
//!
//! The inputs are public: the dealer's Pedersen commitment (authenticated by the caller through
//! its dealer-signed hash), the ciphertext of the complainer's pair (authenticated by the caller
//! as the dealer's: signed in a deal, or posted in a justification), and the complainer's
//! [`KeyReveal`] of that one ciphertext ([`keyquorum_crypto::verifiable_encrypt`]). Anyone can
//! decrypt the ciphertext with a valid reveal, and there is only one key for which a reveal
//! verifies, so every verifier reaches the same verdict: the board when it applies the
//! complaint, and a third party checking the evidence later.

use keyquorum_crypto::Curve;
use keyquorum_crypto::commit::EvalCommitment;
use keyquorum_crypto::verifiable_encrypt::{
    self, KeyReveal, VerifiableCiphertext, VerifiableEncryptionError,
};

use super::checks;
use super::messages::{PAIR_LEN, pair_aad};
use crate::ceremony::Ceremony;

/// Who a complaint about an encrypted pair convicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The deal is bad: malformed commitment, ciphertext without a valid proof of its
    /// ephemeral key, undecryptable ciphertext, or a pair that does not open the commitment.
    Dealer,
    /// The complaint is false or unproven: no reveal, a reveal whose proof fails, or a pair that
    /// opens the commitment.
    Complainer,
}

/// Judges `player`'s complaint about `dealer`'s `ciphertext` under the commitment `commitment`
/// with hash `hash` (computed by the caller from `commitment`).
pub(crate) fn judge<C: Curve>(
    ceremony: &Ceremony<C>,
    (dealer, commitment, hash): (u32, &EvalCommitment<C>, &[u8; 32]),
    player: u32,
    ciphertext: &[u8],
    reveal: Option<&KeyReveal>,
) -> Verdict {
    let Some(key) = ceremony.verifiable_key(player) else {
        return Verdict::Complainer;
    };
    if commitment.points().len() != ceremony.n() + 1
        || !checks::degree(ceremony, dealer, commitment, hash)
        || ceremony
            .reshare()
            .is_some_and(|r| r.public_shares.get(dealer as usize) != Some(commitment.constant()))
    {
        return Verdict::Dealer;
    }
    let aad = pair_aad(ceremony.id(), dealer, player, hash);
    // The dealer signed these bytes: if they are not a well-formed ciphertext with a valid proof
    // of its ephemeral key, the dealer is at fault whatever the complainer sent.
    let Ok(ct) = VerifiableCiphertext::from_bytes(ciphertext, PAIR_LEN) else {
        return Verdict::Dealer;
    };
    if verifiable_encrypt::check_ciphertext(key, &aad, &ct).is_err() {
        return Verdict::Dealer;
    }
    let Some(reveal) = reveal else {
        return Verdict::Complainer;
    };
    let plaintext = match verifiable_encrypt::open_revealed(key, &aad, &ct, reveal) {
        Ok(p) => p,
        Err(VerifiableEncryptionError::BadRevealProof) => return Verdict::Complainer,
        Err(_) => return Verdict::Dealer,
    };
    let bytes = plaintext.expose();
    if bytes.len() != PAIR_LEN {
        return Verdict::Dealer;
    }
    let (Ok(s), Ok(b)) = (
        C::decode_scalar(&bytes[..32]),
        C::decode_scalar(&bytes[32..]),
    ) else {
        return Verdict::Dealer;
    };
    if commitment.verify_pedersen_share(player as usize, &s, &b) {
        Verdict::Complainer
    } else {
        Verdict::Dealer
    }
}

/// The reveal a player posts about a ciphertext it received: `None` when the ciphertext's own
/// proof fails (then no reveal is needed, nor safe to give; see
/// [`verifiable_encrypt::reveal_key`]).
pub(crate) fn reveal_for(
    key: &verifiable_encrypt::VerifiableEncryptionSecretKey,
    aad: &keyquorum_crypto::encrypt::ShareAad,
    ciphertext: &[u8],
    rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
) -> Option<KeyReveal> {
    let ct = VerifiableCiphertext::from_bytes(ciphertext, PAIR_LEN).ok()?;
    verifiable_encrypt::reveal_key(key, aad, &ct, rng).ok()
}
