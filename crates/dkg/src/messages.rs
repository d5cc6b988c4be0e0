//! Protocol messages of the ack-or-reveal variant and their canonical encodings.
//!
//! Board posts ([`Post`]) go to the bulletin board (the chain) and are signed by their author's
//! identity key ([`SignedPost`]); direct messages ([`Direct`]) go from one participant to another
//! over the network. Decoding validates everything it can without context (lengths, bounds,
//! canonical encodings, points on the curve, canonical scalars); the board and the state machines
//! check the rest (membership, phase, commitments, signatures).

use keyquorum_crypto::Curve;
use keyquorum_crypto::commit::EvalCommitment;
use keyquorum_crypto::hash::tagged_hash;

use crate::ceremony::SessionId;
use crate::identity::{IdentitySignature, SIGNATURE_LEN};
use crate::params::MAX_PARTICIPANTS;
use crate::wire::{Reader, WireError, Writer};

/// Largest encrypted share accepted (HPKE encapsulation + one scalar + tag, with headroom).
pub const MAX_CIPHERTEXT_LEN: usize = 32 + 64 + 16;

const TAG_CONTRIBUTION: u8 = 1;
const TAG_PUBLICATION: u8 = 2;
/// First byte of a contribution's signed payload ([`Post::signed_payload`]): no post's encoding
/// starts with it, so the payload of a contribution is never the encoding of a post.
const TAG_CONTRIBUTION_SIGNED: u8 = 0x81;
const TAG_DEAL: u8 = 16;
const TAG_ACK: u8 = 17;

/// Contribute phase: a dealer's Feldman commitment in evaluation form (`n + 1` points).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contribution<C: Curve> {
    /// Session.
    pub session: SessionId,
    /// Dealer position.
    pub dealer: u32,
    /// `f(0) G, f(x_1) G, ..., f(x_n) G`.
    pub commitment: EvalCommitment<C>,
}

impl<C: Curve> Contribution<C> {
    /// The hash acks and ciphertexts are bound to.
    pub fn commitment_hash(&self) -> [u8; 32] {
        commitment_hash::<C>(&self.session, self.dealer, &self.commitment)
    }
}

/// Hash of a dealer's commitment, bound to the session and dealer.
pub fn commitment_hash<C: Curve>(
    session: &SessionId,
    dealer: u32,
    commitment: &EvalCommitment<C>,
) -> [u8; 32] {
    // The points enter through their digest, which a decoded commitment already has.
    tagged_hash(
        "keyquorum/commitment/v2",
        &[
            session,
            &dealer.to_be_bytes(),
            C::NAME.as_bytes(),
            &commitment.digest(),
        ],
    )
}

/// Publish phase: a dealer's log. Players in `acks` acknowledged their shares (one aggregate
/// signature); `reveals` holds the plaintext shares of the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication<C: Curve> {
    /// Session.
    pub session: SessionId,
    /// Attempt number (a failed attempt is retried without its culprits).
    pub attempt: u32,
    /// Dealer position.
    pub dealer: u32,
    /// Hash of the dealer's contribution.
    pub commitment_hash: [u8; 32],
    /// Player positions that acked, ascending (encoded as a bitmap).
    pub acks: Vec<u32>,
    /// Aggregate of the ackers' signatures on the ack payload; absent iff `acks` is empty.
    pub ack_signature: Option<IdentitySignature>,
    /// `(player, share)` for players that did not ack, ascending by player.
    pub reveals: Vec<(u32, C::Scalar)>,
}

/// A board post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Post<C: Curve> {
    /// Contribute phase.
    Contribution(Contribution<C>),
    /// Publish phase.
    Publication(Publication<C>),
}

impl<C: Curve> Post<C> {
    /// Session of the post.
    pub fn session(&self) -> &SessionId {
        match self {
            Post::Contribution(c) => &c.session,
            Post::Publication(p) => &p.session,
        }
    }

    /// The dealer that authored the post.
    pub fn dealer(&self) -> u32 {
        match self {
            Post::Contribution(c) => c.dealer,
            Post::Publication(p) => p.dealer,
        }
    }

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_after(&[])
    }

    /// What the author signs for [`Purpose::Post`](crate::identity::Purpose::Post). A
    /// publication signs its encoding. A contribution signs a fixed-size payload: a tag of its
    /// own (`0x81`, which starts no post), the session, the dealer, the number of points and the
    /// commitment's digest (SHA-256 of the points' encoding, [`EvalCommitment::digest`]), 73
    /// bytes whatever `n`. The digest is collision resistant, so the signature binds every byte
    /// the post carries: two contributions with one signature are the same post, and two signed
    /// contributions of one dealer that differ are equivocation. The digest is taken once when a
    /// commitment is decoded, so the ~100 KB of points at `n = 1024` are hashed once, not once
    /// for the digest and again for the signature.
    pub fn signed_payload(&self) -> Vec<u8> {
        match self {
            Post::Contribution(c) => {
                let mut w = Writer::new();
                w.u8(TAG_CONTRIBUTION_SIGNED)
                    .fixed(&c.session)
                    .u32(c.dealer)
                    .u32(c.commitment.points().len() as u32)
                    .fixed(&c.commitment.digest());
                w.finish()
            }
            Post::Publication(_) => self.encode(),
        }
    }

    /// `prefix` followed by the canonical encoding, in one buffer (a contribution's commitment
    /// is copied once, not once into the encoding and again behind the prefix).
    fn encode_after(&self, prefix: &[u8]) -> Vec<u8> {
        let body = match self {
            Post::Contribution(c) => 1 + 32 + 4 + 4 + c.commitment.encoded_uncompressed().len(),
            Post::Publication(p) => 128 + p.acks.len() / 8 + 36 * p.reveals.len(),
        };
        let mut w = Writer::with_prefix(prefix, prefix.len() + body);
        match self {
            Post::Contribution(c) => {
                w.u8(TAG_CONTRIBUTION).fixed(&c.session).u32(c.dealer);
                w.u32(c.commitment.points().len() as u32);
                w.fixed(c.commitment.encoded_uncompressed());
            }
            Post::Publication(p) => {
                w.u8(TAG_PUBLICATION)
                    .fixed(&p.session)
                    .u32(p.attempt)
                    .u32(p.dealer)
                    .fixed(&p.commitment_hash);
                let width = p.acks.last().map(|a| *a as usize + 1).unwrap_or(0);
                let mut bitmap = vec![0u8; width.div_ceil(8)];
                for a in &p.acks {
                    bitmap[*a as usize / 8] |= 1 << (*a % 8);
                }
                w.bytes(&bitmap);
                match &p.ack_signature {
                    Some(s) => w.u8(1).fixed(&s.0),
                    None => w.u8(0),
                };
                w.u32(p.reveals.len() as u32);
                for (j, s) in &p.reveals {
                    w.u32(*j).scalar::<C>(s);
                }
            }
        }
        w.finish()
    }

    /// Decodes a post for a committee of at most `max_players` players.
    pub fn decode(bytes: &[u8], max_players: usize) -> Result<Self, WireError> {
        let max_players = max_players.min(MAX_PARTICIPANTS);
        let mut r = Reader::new(bytes);
        let post = match r.u8()? {
            TAG_CONTRIBUTION => {
                let session = r.array()?;
                let dealer = r.u32()?;
                let count = r.count("commitment points", max_players + 1)?;
                let commitment = r.eval_commitment::<C>(count)?;
                Post::Contribution(Contribution {
                    session,
                    dealer,
                    commitment,
                })
            }
            TAG_PUBLICATION => {
                let session = r.array()?;
                let attempt = r.u32()?;
                let dealer = r.u32()?;
                let commitment_hash = r.array()?;
                let bitmap = r.bytes("ack bitmap", max_players.div_ceil(8))?;
                if bitmap.last() == Some(&0) {
                    return Err(WireError::NonCanonical(
                        "ack bitmap has a trailing zero byte",
                    ));
                }
                let mut acks = Vec::new();
                for (byte_i, b) in bitmap.iter().enumerate() {
                    for bit in 0..8 {
                        if b & (1 << bit) != 0 {
                            acks.push((byte_i * 8 + bit) as u32);
                        }
                    }
                }
                let ack_signature = match r.u8()? {
                    0 => None,
                    1 => Some(
                        IdentitySignature::from_slice(r.fixed(SIGNATURE_LEN)?)
                            .map_err(|_| WireError::NonCanonical("signature"))?,
                    ),
                    tag => {
                        return Err(WireError::UnknownTag {
                            what: "option",
                            tag,
                        });
                    }
                };
                if acks.is_empty() != ack_signature.is_none() {
                    return Err(WireError::NonCanonical("ack signature presence"));
                }
                let count = r.count("reveals", max_players)?;
                let mut reveals: Vec<(u32, C::Scalar)> = Vec::with_capacity(count);
                for _ in 0..count {
                    let j = r.u32()?;
                    if reveals.last().is_some_and(|(prev, _)| *prev >= j) {
                        return Err(WireError::NonCanonical("reveals not strictly ascending"));
                    }
                    reveals.push((j, r.scalar::<C>()?));
                }
                Post::Publication(Publication {
                    session,
                    attempt,
                    dealer,
                    commitment_hash,
                    acks,
                    ack_signature,
                    reveals,
                })
            }
            tag => return Err(WireError::UnknownTag { what: "post", tag }),
        };
        r.finish()?;
        Ok(post)
    }
}

/// A post with its author's identity signature over [`Post::signed_payload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPost<C: Curve> {
    /// The post.
    pub post: Post<C>,
    /// Signature by the author (the dealer named in the post) for `Purpose::Post`.
    pub signature: IdentitySignature,
}

impl<C: Curve> SignedPost<C> {
    /// Canonical encoding: signature then post.
    pub fn encode(&self) -> Vec<u8> {
        self.post.encode_after(&self.signature.0)
    }

    /// The session a signed post's bytes name, read without decoding the rest; `None` unless
    /// they start as a post does. A post of another ceremony may not decode for this one (its
    /// committee can be larger), and this tells it apart from one that is malformed.
    pub fn claimed_session(bytes: &[u8]) -> Option<SessionId> {
        let post = bytes.get(SIGNATURE_LEN..)?;
        if !matches!(*post.first()?, TAG_CONTRIBUTION | TAG_PUBLICATION) {
            return None;
        }
        post.get(1..33)?.try_into().ok()
    }

    /// Decodes a signed post.
    pub fn decode(bytes: &[u8], max_players: usize) -> Result<Self, WireError> {
        if bytes.len() < SIGNATURE_LEN {
            return Err(WireError::Truncated {
                needed: SIGNATURE_LEN - bytes.len(),
            });
        }
        let signature = IdentitySignature::from_slice(&bytes[..SIGNATURE_LEN])
            .map_err(|_| WireError::NonCanonical("signature"))?;
        Ok(SignedPost {
            post: Post::decode(&bytes[SIGNATURE_LEN..], max_players)?,
            signature,
        })
    }
}

/// Share phase: a dealer's encrypted share for one player.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deal {
    /// Session.
    pub session: SessionId,
    /// Dealer position.
    pub dealer: u32,
    /// Player position.
    pub player: u32,
    /// HPKE ciphertext of the 32-byte share, bound to (session, dealer, player, commitment hash).
    pub ciphertext: Vec<u8>,
}

/// Share phase: a player's acknowledgement of a valid share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// Session.
    pub session: SessionId,
    /// Dealer position.
    pub dealer: u32,
    /// Player position.
    pub player: u32,
    /// The commitment the share was checked against.
    pub commitment_hash: [u8; 32],
    /// Player's signature on [`ack_payload`].
    pub signature: IdentitySignature,
}

/// The message every player signs to ack one dealer: the same for all players of that dealer,
/// so the acks aggregate.
pub fn ack_payload(session: &SessionId, dealer: u32, commitment_hash: &[u8; 32]) -> Vec<u8> {
    let mut w = Writer::new();
    w.fixed(session).u32(dealer).fixed(commitment_hash);
    w.finish()
}

/// A direct (point-to-point) message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Direct {
    /// Dealer to player.
    Deal(Deal),
    /// Player to dealer.
    Ack(Ack),
}

impl Direct {
    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Direct::Deal(d) => {
                w.u8(TAG_DEAL)
                    .fixed(&d.session)
                    .u32(d.dealer)
                    .u32(d.player)
                    .bytes(&d.ciphertext);
            }
            Direct::Ack(a) => {
                w.u8(TAG_ACK)
                    .fixed(&a.session)
                    .u32(a.dealer)
                    .u32(a.player)
                    .fixed(&a.commitment_hash)
                    .fixed(&a.signature.0);
            }
        }
        w.finish()
    }

    /// Decodes a direct message.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let msg = match r.u8()? {
            TAG_DEAL => Direct::Deal(Deal {
                session: r.array()?,
                dealer: r.u32()?,
                player: r.u32()?,
                ciphertext: r.bytes("ciphertext", MAX_CIPHERTEXT_LEN)?.to_vec(),
            }),
            TAG_ACK => Direct::Ack(Ack {
                session: r.array()?,
                dealer: r.u32()?,
                player: r.u32()?,
                commitment_hash: r.array()?,
                signature: IdentitySignature(r.array()?),
            }),
            tag => {
                return Err(WireError::UnknownTag {
                    what: "message",
                    tag,
                });
            }
        };
        r.finish()?;
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use keyquorum_crypto::Bls12381G1;
    use keyquorum_crypto::index;
    use keyquorum_crypto::poly::Polynomial;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::identity::{IdentityKeypair, Purpose};

    fn contribution(n: usize, seed: u64) -> Post<Bls12381G1> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let f = Polynomial::random(1, None, &mut rng);
        Post::Contribution(Contribution {
            session: [7; 32],
            dealer: 3,
            commitment: EvalCommitment::feldman(&f, &index::sequential(n)),
        })
    }

    /// A contribution's signed payload has one size whatever `n`, and a signature on it is a
    /// signature on every point: changing any point (or the dealer) makes it fail.
    #[test]
    fn a_contribution_signature_binds_every_point() {
        let key = IdentityKeypair::from_seed(&[9; 32]).unwrap();
        let small = contribution(4, 1);
        let large = contribution(64, 1);
        assert_eq!(small.signed_payload().len(), 73);
        assert_eq!(large.signed_payload().len(), 73);
        assert_ne!(small.signed_payload()[0], small.encode()[0]);
        let sig = key.sign(Purpose::Post, &large.signed_payload());
        assert!(
            key.public()
                .verify(Purpose::Post, &large.signed_payload(), &sig)
        );
        let Post::Contribution(c) = &large else {
            unreachable!()
        };
        for j in [0, 1, 64] {
            let mut points = c.commitment.points().to_vec();
            points[j] = points[(j + 1) % points.len()];
            let changed = Post::<Bls12381G1>::Contribution(Contribution {
                commitment: EvalCommitment::from_points(points).unwrap(),
                ..c.clone()
            });
            assert!(
                !key.public()
                    .verify(Purpose::Post, &changed.signed_payload(), &sig)
            );
        }
        let other_dealer = Post::<Bls12381G1>::Contribution(Contribution {
            dealer: 4,
            ..c.clone()
        });
        assert!(
            !key.public()
                .verify(Purpose::Post, &other_dealer.signed_payload(), &sig)
        );
        // A decoded copy (digest from the received bytes) signs the same payload.
        let decoded = Post::<Bls12381G1>::decode(&large.encode(), 64).unwrap();
        assert_eq!(decoded.signed_payload(), large.signed_payload());
    }

    /// The session is read from a signed post that does not decode for a smaller committee,
    /// and from nothing that is not a post.
    #[test]
    fn a_posts_session_is_read_without_decoding_it() {
        let key = IdentityKeypair::from_seed(&[9; 32]).unwrap();
        let post = contribution(64, 1);
        let signature = key.sign(Purpose::Post, &post.signed_payload());
        let bytes = SignedPost { post, signature }.encode();
        assert!(SignedPost::<Bls12381G1>::decode(&bytes, 4).is_err());
        assert_eq!(
            SignedPost::<Bls12381G1>::claimed_session(&bytes),
            Some([7; 32])
        );
        assert_eq!(
            SignedPost::<Bls12381G1>::claimed_session(&bytes[..SIGNATURE_LEN + 32]),
            None
        );
        let deal = Direct::Deal(Deal {
            session: [7; 32],
            dealer: 0,
            player: 1,
            ciphertext: vec![1; 80],
        });
        let mut as_post = vec![0; SIGNATURE_LEN];
        as_post.extend_from_slice(&deal.encode());
        assert_eq!(SignedPost::<Bls12381G1>::claimed_session(&as_post), None);
    }
}
