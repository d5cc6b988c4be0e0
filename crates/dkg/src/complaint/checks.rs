//! The complaint variant's pure, expensive checks (signatures, degree checks, openings of
//! public pairs), each run at most once per ceremony.
//!
//! Every check goes through [`Ceremony::check_once`] under a key that is a tagged hash of all of
//! its inputs, so the components that share a [`Ceremony`] (a node's participant and its replica
//! of the board, or all simulated nodes of one process) check each statement once: a dealer's
//! commitment statement is verified once although every player receives it and every report
//! repeats it; a commitment's degree check is done once per distinct commitment; a post's
//! signature once although every replica of the board applies the post. The answers are the
//! same as without the cache: the checks are deterministic functions of the hashed inputs and the
//! ceremony.
//!
//! Secret values never enter a key: only public posts' pairs are checked here, players check
//! their own deals directly.

use keyquorum_crypto::Curve;
use keyquorum_crypto::commit::EvalCommitment;
use keyquorum_crypto::hash::tagged_hash;

use super::messages::{CommitmentStatement, share_payload};
use crate::board::{Role, commitment_is_valid};
use crate::ceremony::Ceremony;
use crate::identity::{IdentityPublicKey, IdentitySignature, Purpose};

/// Whether the dealer named in `s` signed it (`false` for an unknown dealer).
pub(crate) fn statement<C: Curve>(ceremony: &Ceremony<C>, s: &CommitmentStatement) -> bool {
    let Some(key) = ceremony
        .dealers()
        .get(s.dealer as usize)
        .map(|p| &p.identity)
    else {
        return false;
    };
    let cache_key = tagged_hash(
        "keyquorum/check/complaint-statement",
        &[key.as_bytes(), &s.encode()],
    );
    ceremony.check_once(cache_key, || s.verify(key))
}

/// Whether `signature` is `key`'s signature (for [`Purpose::Post`]) on the encoded post of the
/// participant `(role, index)`.
pub(crate) fn post_signature<C: Curve>(
    ceremony: &Ceremony<C>,
    (role, index): (Role, u32),
    key: &IdentityPublicKey,
    encoded_post: &[u8],
    signature: &IdentitySignature,
) -> bool {
    let role_tag = [match role {
        Role::Dealer => 1u8,
        Role::Player => 2u8,
    }];
    let cache_key = tagged_hash(
        "keyquorum/check/complaint-post-signature",
        &[
            &role_tag,
            &index.to_be_bytes(),
            key.as_bytes(),
            &signature.0,
            encoded_post,
        ],
    );
    ceremony.check_once(cache_key, || {
        key.verify(Purpose::Post, encoded_post, signature)
    })
}

/// Whether `signature` is the dealer's signature on [`share_payload`] of `ciphertext` for
/// `player` under the commitment hash `hash` (`false` for an unknown dealer).
pub(crate) fn share_signature<C: Curve>(
    ceremony: &Ceremony<C>,
    (dealer, player, hash): (u32, u32, &[u8; 32]),
    ciphertext: &[u8],
    signature: &IdentitySignature,
) -> bool {
    let Some(key) = ceremony.dealers().get(dealer as usize).map(|p| &p.identity) else {
        return false;
    };
    let payload = share_payload(ceremony.id(), dealer, player, hash, ciphertext);
    let cache_key = tagged_hash(
        "keyquorum/check/complaint-share-signature",
        &[key.as_bytes(), &signature.0, &payload],
    );
    ceremony.check_once(cache_key, || {
        key.verify(Purpose::Message, &payload, signature)
    })
}

/// Whether `commitment` has `n + 1` points on a polynomial of degree `< t`
/// ([`commitment_is_valid`]). `hash` must be the commitment's hash as the caller computed it from
/// `commitment` ([`pedersen_hash`](super::messages::pedersen_hash) or
/// [`feldman_hash`](super::messages::feldman_hash)): it binds the points, and with the session and
/// the dealer it seeds the check, so it keys the cache.
pub(crate) fn degree<C: Curve>(
    ceremony: &Ceremony<C>,
    dealer: u32,
    commitment: &EvalCommitment<C>,
    hash: &[u8; 32],
) -> bool {
    let seed = ceremony.degree_check_seed(dealer, hash);
    let cache_key = tagged_hash(
        "keyquorum/check/complaint-degree",
        &[&seed, &(commitment.points().len() as u64).to_be_bytes()],
    );
    ceremony.check_once(cache_key, || {
        commitment_is_valid(ceremony, dealer, commitment, hash)
    })
}

/// Whether the public pair `(s, b)` of `player` opens the dealer's Pedersen commitment, whose
/// hash (computed from `commitment`) is `hash`.
pub(crate) fn pedersen_share<C: Curve>(
    ceremony: &Ceremony<C>,
    (dealer, commitment, hash): (u32, &EvalCommitment<C>, &[u8; 32]),
    player: u32,
    s: &C::Scalar,
    b: &C::Scalar,
) -> bool {
    let cache_key = tagged_hash(
        "keyquorum/check/complaint-pedersen-share",
        &[
            &dealer.to_be_bytes(),
            hash,
            &player.to_be_bytes(),
            &C::encode_scalar(s),
            &C::encode_scalar(b),
        ],
    );
    ceremony.check_once(cache_key, || {
        commitment.verify_pedersen_share(player as usize, s, b)
    })
}

/// Whether the public share `s` of `player` matches the dealer's Feldman commitment, whose hash
/// (computed from `commitment`) is `hash`.
pub(crate) fn feldman_share<C: Curve>(
    ceremony: &Ceremony<C>,
    (dealer, commitment, hash): (u32, &EvalCommitment<C>, &[u8; 32]),
    player: u32,
    s: &C::Scalar,
) -> bool {
    let cache_key = tagged_hash(
        "keyquorum/check/complaint-feldman-share",
        &[
            &dealer.to_be_bytes(),
            hash,
            &player.to_be_bytes(),
            &C::encode_scalar(s),
        ],
    );
    ceremony.check_once(cache_key, || commitment.verify_share(player as usize, s))
}
