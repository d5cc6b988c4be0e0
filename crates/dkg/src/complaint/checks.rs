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
//!
//! Post signatures can also be checked many at once ([`post_signatures`], used for the
//! reconstruction posts at their deadline): one batch through `keyquorum_crypto::batch`, whose
//! weights are derived from a hash of every batched item (messages, signers, signatures), as for
//! the ack-or-reveal board's batches ([`crate::preverify`]), so the answer is a deterministic
//! function of the posts. Each answer is recorded under [`post_signature`]'s cache key; when the
//! batch fails every item is checked on its own, so the answers are exactly the per-item ones.

use keyquorum_crypto::Curve;
use keyquorum_crypto::batch::{self, Item, Signers};
use keyquorum_crypto::commit::EvalCommitment;
use keyquorum_crypto::hash::tagged_hash;
use rayon::prelude::*;
use thiserror::Error;

use super::messages::{CommitmentStatement, share_payload};
use crate::board::{Role, commitment_is_valid};
use crate::ceremony::Ceremony;
use crate::identity::{
    IdentityPublicKey, IdentitySignature, Purpose, SIG_DST, decode_signature_checked,
};

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
    author: (Role, u32),
    key: &IdentityPublicKey,
    encoded_post: &[u8],
    signature: &IdentitySignature,
) -> bool {
    let cache_key = post_signature_key(author, key, encoded_post, signature);
    ceremony.check_once(cache_key, || {
        key.verify(Purpose::Post, encoded_post, signature)
    })
}

fn post_signature_key(
    (role, index): (Role, u32),
    key: &IdentityPublicKey,
    encoded_post: &[u8],
    signature: &IdentitySignature,
) -> [u8; 32] {
    let role_tag = [match role {
        Role::Dealer => 1u8,
        Role::Player => 2u8,
    }];
    tagged_hash(
        "keyquorum/check/complaint-post-signature",
        &[
            &role_tag,
            &index.to_be_bytes(),
            key.as_bytes(),
            &signature.0,
            encoded_post,
        ],
    )
}

/// One post whose signature [`post_signatures`] checks: its author, the encoded post and the
/// signature.
#[derive(Debug, Clone, Copy)]
pub struct PostToCheck<'a> {
    /// The author's role and position.
    pub author: (Role, u32),
    /// The encoded post (what the author signed, for [`Purpose::Post`]).
    pub encoded: &'a [u8],
    /// The claimed signature.
    pub signature: &'a IdentitySignature,
}

/// Posts of a batch whose signature is not their author's ([`post_signatures`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("post signatures that do not verify: items {items:?}")]
pub struct BadPostSignatures {
    /// Positions in the batch, ascending.
    pub items: Vec<usize>,
}

/// Checks the signatures of `posts` (each by an author of the ceremony) in one batch, as the
/// board's check of a single post's signature would one by one, and records each answer in the
/// ceremony's check cache under that check's key, where the single check finds it. `Err` names
/// every item whose signature fails (an unknown author fails too).
///
/// Cost: one hash to the curve and one multiplication by a batch weight per post, then one
/// multi-Miller loop with a term per distinct author and one final exponentiation, instead of
/// two pairings per post. When the batch fails, every item is checked on its own to name the
/// bad ones.
pub fn post_signatures<C: Curve>(
    ceremony: &Ceremony<C>,
    posts: &[PostToCheck<'_>],
) -> Result<(), BadPostSignatures> {
    let slots = ceremony.batch_keys();
    let key_of = |(role, index): (Role, u32)| -> Option<(usize, &IdentityPublicKey)> {
        let i = index as usize;
        match role {
            // Players hold the first slots, in order.
            Role::Player => ceremony.players().get(i).map(|p| (i, &p.identity)),
            Role::Dealer => ceremony
                .dealers()
                .get(i)
                .map(|d| (slots.dealer_slot[i], &d.identity)),
        }
    };
    let digests: Vec<[u8; 32]> = posts
        .par_iter()
        .map(|p| Purpose::Post.digest(p.encoded))
        .collect();
    let decoded: Vec<_> = posts
        .par_iter()
        .map(|p| decode_signature_checked(p.signature))
        .collect();
    // A signature that does not decode, or an unknown author, fails without entering the batch.
    let keys: Vec<_> = posts.iter().map(|p| key_of(p.author)).collect();
    let mut items = Vec::with_capacity(posts.len());
    let mut in_batch = vec![false; posts.len()];
    for (i, ((key, digest), sig)) in keys.iter().zip(&digests).zip(&decoded).enumerate() {
        if let (Some((slot, _)), Some(sig)) = (key, sig) {
            items.push(Item {
                signers: Signers::One(*slot),
                msg: digest,
                sig: *sig,
            });
            in_batch[i] = true;
        }
    }
    let batch_valid = matches!(
        batch::verify_grouped(
            &slots.prepared,
            ceremony.n(),
            &items,
            SIG_DST,
            Some(ceremony.signed_hashes())
        ),
        Ok(true)
    );
    // On a failed batch, each item on its own names the bad ones.
    let answers: Vec<bool> = posts
        .par_iter()
        .zip(&keys)
        .zip(&digests)
        .zip(&in_batch)
        .map(|(((p, key), digest), in_batch)| match key {
            Some(_) if *in_batch && batch_valid => true,
            Some((_, key)) if *in_batch => key.verify_digest(digest, p.signature),
            _ => false,
        })
        .collect();
    let mut bad = Vec::new();
    for (i, ((p, key), ok)) in posts.iter().zip(&keys).zip(answers).enumerate() {
        let ok = match key {
            Some((_, key)) => ceremony.check_once(
                post_signature_key(p.author, key, p.encoded, p.signature),
                || ok,
            ),
            None => false,
        };
        if !ok {
            bad.push(i);
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(BadPostSignatures { items: bad })
    }
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
