//! The kinds of this node's outgoing messages and posts, for logs, metrics and the deals kept
//! for pulls. They are read from the first byte of the engine's encoding (see
//! `keyquorum_dkg::messages`) instead of decoding the whole message again; the tags are named
//! here once, and the tests pin them to the engine's encodings.

use keyquorum_dkg::identity::SIGNATURE_LEN;

/// First byte of an encoded `Direct::Deal`.
const DEAL_TAG: u8 = 16;
/// First byte of an encoded `Direct::Ack`.
const ACK_TAG: u8 = 17;
/// Byte of an encoded `SignedPost` after its signature that says which post it is: a
/// contribution (anything else is a publication).
const CONTRIBUTION_TAG: u8 = 1;

/// First byte of an encoded complaint-variant `Deal`.
const COMPLAINT_DEAL_TAG: u8 = 0x50;
/// Byte of an encoded `SignedComplaintPost` after its signature, per kind of post.
const COMPLAINT_POST_TAGS: [(u8, &str); 6] = [
    (0x41, "report"),
    (0x42, "justification"),
    (0x43, "feldman"),
    (0x44, "complaint"),
    (0x45, "reconstruction"),
    (0x46, "dispute"),
];

/// `deal`, `ack` or (not one of ours) `direct`.
pub(super) fn direct_kind(payload: &[u8]) -> &'static str {
    match payload.first() {
        Some(&DEAL_TAG) | Some(&COMPLAINT_DEAL_TAG) => "deal",
        Some(&ACK_TAG) => "ack",
        _ => "direct",
    }
}

/// `contribution` or `publication` for an encoded signed post, or the kind of a
/// complaint-variant post.
pub(super) fn post_kind(signed_post: &[u8]) -> &'static str {
    match signed_post.get(SIGNATURE_LEN) {
        Some(&CONTRIBUTION_TAG) => "contribution",
        Some(tag) => COMPLAINT_POST_TAGS
            .iter()
            .find(|(t, _)| t == tag)
            .map_or("publication", |(_, name)| *name),
        None => "publication",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::G;
    use keyquorum_dkg::identity::{IdentityKeypair, Purpose};
    use keyquorum_dkg::messages::{Ack, Deal, Direct, Post, Publication, SignedPost};

    #[test]
    fn kinds_match_the_engines_encodings() {
        let key = IdentityKeypair::from_seed(&[7; 32]).unwrap();
        let deal = Direct::Deal(Deal {
            session: [1; 32],
            dealer: 0,
            player: 1,
            ciphertext: vec![0; 8],
        });
        assert_eq!(direct_kind(&deal.encode()), "deal");
        let ack = Direct::Ack(Ack {
            session: [1; 32],
            dealer: 0,
            player: 1,
            commitment_hash: [2; 32],
            signature: key.sign(Purpose::Ack, b"ack"),
        });
        assert_eq!(direct_kind(&ack.encode()), "ack");
        assert_eq!(direct_kind(&[]), "direct");
        let post = Post::<G>::Publication(Publication {
            session: [1; 32],
            attempt: 0,
            dealer: 0,
            commitment_hash: [2; 32],
            acks: Vec::new(),
            ack_signature: None,
            reveals: Vec::new(),
        });
        let signature = key.sign(Purpose::Post, &post.signed_payload());
        let bytes = SignedPost { post, signature }.encode();
        assert_eq!(post_kind(&bytes), "publication");
        assert_ne!(bytes[SIGNATURE_LEN], CONTRIBUTION_TAG);
    }
}
