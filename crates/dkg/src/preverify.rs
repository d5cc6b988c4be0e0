//! Batch pre-verification of board posts: every post's signature and every publication's
//! aggregate ack signature in a batch (one block's posts, or a whole board being replayed) are
//! checked with one multi-pairing, and the answers are stored in the ceremony's check cache
//! ([`Ceremony::check_once`]) under the keys the [`Board`](crate::board::Board) looks up. Applying
//! the posts one by one afterwards then finds every answer there.
//!
//! The board's result cannot change: the cache holds, for each check, the answer the board's own
//! per-item check gives. When the batch passes every item is valid (up to `2^-128`, see
//! `keyquorum_crypto::batch`); when it fails, each item is checked one by one with the board's
//! own functions, which names the culprits exactly as if there had been no batch. A signature
//! that does not decode to a subgroup point is recorded as invalid without entering the batch,
//! as the per-item check refuses it.
//!
//! Cost per post: hashing the post to the curve (not for an ack message this process signed
//! itself: [`Ceremony::signed_hashes`]) and one multiplication by a batch weight (two 64-bit
//! halves through the GLV endomorphism; a term of one MSM for an ack set of every player); per
//! batch: one multi-Miller loop with one term per identity key (not per post: a dealer's posts
//! and every ack set containing a key share its term) and one final exponentiation. The keys'
//! Miller-loop lines are computed once per ceremony, by its first batch, and evaluated by every
//! batch after.

use keyquorum_crypto::Curve;
use keyquorum_crypto::batch::{self, Item, Signers};
use rayon::prelude::*;

use crate::board::{ack_check_key, post_id, post_signature_check_key};
use crate::ceremony::Ceremony;
use crate::identity::{self, IdentityPublicKey, IdentitySignature, Purpose, SIG_DST};
use crate::messages::{Post, SignedPost, ack_payload};

/// One check to make: the cache key, what is signed, by whom, and the signature.
struct Check<'a> {
    key: [u8; 32],
    digest: [u8; 32],
    signers: CheckSigners<'a>,
    sig: &'a IdentitySignature,
}

enum CheckSigners<'a> {
    /// A dealer's post.
    Dealer(u32),
    /// Players acking a dealer (strictly ascending, all below `n`).
    Players(&'a [u32]),
}

/// Verifies the signatures of `posts` in one batch and records the answers in the ceremony's
/// check cache (see the module docs). Posts of another session or by a non-dealer are skipped
/// (the board refuses them before checking anything). Returns the number of checks recorded.
pub fn preverify_posts<C: Curve>(ceremony: &Ceremony<C>, posts: &[&SignedPost<C>]) -> usize {
    let n = ceremony.n();
    let dealers = ceremony.dealer_count();
    let checks: Vec<Check<'_>> = posts
        .par_iter()
        .flat_map_iter(|signed| {
            let post = &signed.post;
            let mut out = Vec::new();
            let dealer = post.dealer();
            if post.session() != ceremony.id() || dealer as usize >= dealers {
                return out;
            }
            let digest = Purpose::Post.digest(&post.signed_payload());
            out.push(Check {
                key: post_signature_check_key(dealer, &post_id(post), &signed.signature),
                digest,
                signers: CheckSigners::Dealer(dealer),
                sig: &signed.signature,
            });
            if let Post::Publication(p) = post
                && let Some(sig) = &p.ack_signature
                && !p.acks.is_empty()
                && p.acks.windows(2).all(|w| w[0] < w[1])
                && p.acks.last().is_some_and(|j| (*j as usize) < n)
            {
                let payload = ack_payload(&p.session, p.dealer, &p.commitment_hash);
                out.push(Check {
                    key: ack_check_key(&payload, sig, &p.acks),
                    digest: Purpose::Ack.digest(&payload),
                    signers: CheckSigners::Players(&p.acks),
                    sig,
                });
            }
            out
        })
        .collect();
    if checks.is_empty() {
        return 0;
    }
    let decoded: Vec<Option<blst::blst_p1_affine>> = checks
        .par_iter()
        .map(|c| identity::decode_signature_checked(c.sig))
        .collect();

    // Key slots (players first, then dealers that are not players) with their Miller-loop
    // lines, prepared once per ceremony.
    let slots = ceremony.batch_keys();
    let dealer_slot = &slots.dealer_slot;

    let mut items = Vec::with_capacity(checks.len());
    let mut in_batch = Vec::with_capacity(checks.len());
    for (c, sig) in checks.iter().zip(&decoded) {
        let Some(sig) = sig else {
            // The per-item check refuses a signature that does not decode; so does the cache.
            ceremony.check_once(c.key, || false);
            continue;
        };
        items.push(Item {
            signers: match c.signers {
                CheckSigners::Dealer(d) => Signers::One(dealer_slot[d as usize]),
                CheckSigners::Players(set) => Signers::Set(set),
            },
            msg: &c.digest,
            sig: *sig,
        });
        in_batch.push(c);
    }
    let all_valid = matches!(
        batch::verify_grouped(
            &slots.prepared,
            n,
            &items,
            SIG_DST,
            Some(ceremony.signed_hashes())
        ),
        Ok(true)
    );
    if all_valid {
        for c in &in_batch {
            ceremony.check_once(c.key, || true);
        }
    } else {
        // Find the culprits with the board's own per-item checks.
        let answers: Vec<bool> = in_batch.par_iter().map(|c| per_item(ceremony, c)).collect();
        for (c, ok) in in_batch.iter().zip(answers) {
            ceremony.check_once(c.key, || ok);
        }
    }
    checks.len()
}

/// The check the board makes for one item.
fn per_item<C: Curve>(ceremony: &Ceremony<C>, c: &Check<'_>) -> bool {
    match c.signers {
        CheckSigners::Dealer(d) => ceremony.dealers()[d as usize]
            .identity
            .verify_digest(&c.digest, c.sig),
        CheckSigners::Players(set) => {
            let players = ceremony.players();
            let keys: Vec<&IdentityPublicKey> =
                set.iter().map(|j| &players[*j as usize].identity).collect();
            identity::verify_aggregate_digest(&keys, &c.digest, c.sig)
        }
    }
}
