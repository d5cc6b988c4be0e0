//! Adversaries: wrappers around an honest participant that tamper with what goes in and out.
//!
//! Wrapping the honest state machine keeps each adversary small and makes it as capable as an
//! honest participant everywhere it does not deviate. Deviations that need protocol knowledge
//! (a wrong share, a second commitment, a wrong reveal) decode the honest messages, change them,
//! and re-sign with the adversary's own key, which it legitimately holds.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use ff::Field;
use keyquorum_crypto::Curve;
use keyquorum_crypto::commit::EvalCommitment;
use keyquorum_crypto::encrypt::{self, ShareAad};
use keyquorum_crypto::poly::Polynomial;
use keyquorum_dkg::Ceremony;
use keyquorum_dkg::identity::{IdentityKeypair, IdentitySignature, Purpose};
use keyquorum_dkg::messages::{Contribution, Deal, Direct, Post, SignedPost};
use keyquorum_dkg::node::{Action, Input, Participant};
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

/// Kinds of adversarial behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AdversaryKind {
    /// Never sends or posts anything.
    Silent,
    /// Crashes at a random step and restarts later from its persisted inputs (an honest
    /// participant with a crash fault).
    Crash,
    /// Posts two different commitments (ack-or-reveal) / shows different commitments to
    /// different players (complaint).
    Equivocate,
    /// Sends validly encrypted but wrong shares to some players.
    BadShare,
    /// Reveals a wrong share in its published log.
    WrongReveal,
    /// Accuses honest dealers: withholds acks from them (ack-or-reveal) / complains about valid
    /// shares (complaint).
    FalseComplaint,
    /// Never acks anyone.
    WithholdAcks,
    /// Everything it sends arrives after the deadline that needed it.
    Late,
    /// Corrupts the signatures on its acks and posts.
    InvalidSignature,
    /// Behaves honestly but also sends random bytes to peers and the board.
    Garbage,
}

impl AdversaryKind {
    /// Every kind (the `all` mix).
    pub const ALL: [AdversaryKind; 10] = [
        AdversaryKind::Silent,
        AdversaryKind::Crash,
        AdversaryKind::Equivocate,
        AdversaryKind::BadShare,
        AdversaryKind::WrongReveal,
        AdversaryKind::FalseComplaint,
        AdversaryKind::WithholdAcks,
        AdversaryKind::Late,
        AdversaryKind::InvalidSignature,
        AdversaryKind::Garbage,
    ];

    /// Parses a comma-separated list, or `all`.
    pub fn parse_list(s: &str) -> Result<Vec<AdversaryKind>, String> {
        if s.trim() == "all" {
            return Ok(Self::ALL.to_vec());
        }
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| p.trim().parse())
            .collect()
    }
}

impl FromStr for AdversaryKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "silent" => AdversaryKind::Silent,
            "crash" => AdversaryKind::Crash,
            "equivocate" => AdversaryKind::Equivocate,
            "bad-share" | "bad-shares" => AdversaryKind::BadShare,
            "wrong-reveal" => AdversaryKind::WrongReveal,
            "false-complaint" => AdversaryKind::FalseComplaint,
            "withhold-acks" => AdversaryKind::WithholdAcks,
            "late" => AdversaryKind::Late,
            "invalid-signature" | "invalid-signatures" => AdversaryKind::InvalidSignature,
            "garbage" => AdversaryKind::Garbage,
            other => {
                return Err(format!(
                    "unknown fault {other:?}; one of silent, crash, equivocate, bad-share, \
                     wrong-reveal, false-complaint, withhold-acks, late, invalid-signature, \
                     garbage, or all"
                ));
            }
        })
    }
}

impl fmt::Display for AdversaryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AdversaryKind::Silent => "silent",
            AdversaryKind::Crash => "crash",
            AdversaryKind::Equivocate => "equivocate",
            AdversaryKind::BadShare => "bad-share",
            AdversaryKind::WrongReveal => "wrong-reveal",
            AdversaryKind::FalseComplaint => "false-complaint",
            AdversaryKind::WithholdAcks => "withhold-acks",
            AdversaryKind::Late => "late",
            AdversaryKind::InvalidSignature => "invalid-signature",
            AdversaryKind::Garbage => "garbage",
        })
    }
}

/// What the engine should do with one action of a wrapped participant.
pub enum Routed<C: Curve> {
    /// Deliver normally.
    Now(Action<C>),
    /// Deliver after the next phase deadline.
    Late(Action<C>),
    /// Send random bytes to a random participant.
    GarbageMessage(Vec<u8>),
}

/// An adversary wrapped around an honest participant (crash faults are handled by the engine).
pub struct Adversary<C: Curve> {
    kind: AdversaryKind,
    inner: Box<dyn Participant<C>>,
    keys: IdentityKeypair,
    ceremony: Arc<Ceremony<C>>,
    rng: ChaCha20Rng,
    contribution_hash: Option<[u8; 32]>,
    /// Player whose acks are hidden from the inner dealer (so it reveals, then we corrupt it).
    hidden_player: Option<u32>,
}

impl<C: Curve> Adversary<C> {
    /// Wraps `inner`; `keys` is a copy of the participant's own identity key.
    pub fn new(
        kind: AdversaryKind,
        inner: Box<dyn Participant<C>>,
        keys: IdentityKeypair,
        ceremony: Arc<Ceremony<C>>,
        rng: ChaCha20Rng,
    ) -> Self {
        Adversary {
            kind,
            inner,
            keys,
            ceremony,
            rng,
            contribution_hash: None,
            hidden_player: None,
        }
    }

    /// The kind.
    pub fn kind(&self) -> AdversaryKind {
        self.kind
    }

    /// Handles one input and returns its (tampered) actions with routing.
    pub fn handle(&mut self, input: Input) -> Vec<Routed<C>> {
        if self.kind == AdversaryKind::Silent {
            return Vec::new();
        }
        let input = match self.filter_input(input) {
            Some(i) => i,
            None => return Vec::new(),
        };
        let actions = self.inner.handle(input);
        let mut out = Vec::new();
        for a in actions {
            self.tamper(a, &mut out);
        }
        if self.kind == AdversaryKind::Garbage && self.rng.next_u32().is_multiple_of(4) {
            let len = (self.rng.next_u32() % 200) as usize;
            let mut junk = vec![0u8; len];
            self.rng.fill_bytes(&mut junk);
            if self.rng.next_u32().is_multiple_of(2) {
                out.push(Routed::Now(Action::Post(junk)));
            } else {
                out.push(Routed::GarbageMessage(junk));
            }
        }
        out
    }

    fn filter_input(&mut self, input: Input) -> Option<Input> {
        if self.kind == AdversaryKind::WrongReveal
            && let Input::Message(bytes) = &input
            && let Ok(Direct::Ack(a)) = Direct::decode(bytes)
        {
            // Hide one other player's ack so the honest logic reveals that share.
            let me = self.ceremony.player_position(self.keys.public());
            if Some(a.player) != me {
                let hidden = *self.hidden_player.get_or_insert(a.player);
                if a.player == hidden {
                    return None;
                }
            }
        }
        Some(input)
    }

    fn tamper(&mut self, action: Action<C>, out: &mut Vec<Routed<C>>) {
        match self.kind {
            AdversaryKind::Late => match action {
                a @ (Action::Send { .. } | Action::Post(_)) => out.push(Routed::Late(a)),
                a => out.push(Routed::Now(a)),
            },
            AdversaryKind::WithholdAcks | AdversaryKind::FalseComplaint => {
                if let Action::Send { payload, .. } = &action
                    && let Ok(Direct::Ack(a)) = Direct::decode(payload)
                {
                    // FalseComplaint accuses only some dealers; WithholdAcks nobody gets an ack.
                    let me = self.ceremony.dealer_position(self.keys.public());
                    if Some(a.dealer) != me
                        && (self.kind == AdversaryKind::WithholdAcks || a.dealer % 2 == 0)
                    {
                        return;
                    }
                }
                out.push(Routed::Now(action));
            }
            AdversaryKind::InvalidSignature => match action {
                Action::Send { to, mut payload } => {
                    if let Ok(Direct::Ack(_)) = Direct::decode(&payload) {
                        let last = payload.len() - 1;
                        payload[last - 5] ^= 0x01;
                    }
                    out.push(Routed::Now(Action::Send { to, payload }));
                }
                Action::Post(mut bytes) => {
                    if bytes.len() > 10 {
                        bytes[10] ^= 0x01;
                    }
                    out.push(Routed::Now(Action::Post(bytes)));
                }
                a => out.push(Routed::Now(a)),
            },
            AdversaryKind::Equivocate => {
                if let Action::Post(bytes) = &action
                    && let Ok(signed) = SignedPost::<C>::decode(bytes, self.ceremony.n())
                    && let Post::Contribution(c) = &signed.post
                {
                    let f = Polynomial::random(self.ceremony.t() - 1, None, &mut self.rng);
                    let other = Post::Contribution(Contribution {
                        session: c.session,
                        dealer: c.dealer,
                        commitment: EvalCommitment::feldman(&f, self.ceremony.player_indices()),
                    });
                    out.push(Routed::Now(action));
                    out.push(Routed::Now(Action::Post(self.sign(other))));
                    return;
                }
                out.push(Routed::Now(action));
            }
            AdversaryKind::BadShare => {
                if let Action::Post(bytes) = &action
                    && let Ok(signed) = SignedPost::<C>::decode(bytes, self.ceremony.n())
                    && let Post::Contribution(c) = &signed.post
                {
                    self.contribution_hash = Some(c.commitment_hash());
                }
                if let (Action::Send { to, payload }, Some(hash)) =
                    (&action, self.contribution_hash)
                    && let Ok(Direct::Deal(d)) = Direct::decode(payload)
                    && d.player % 2 == 1
                    && Some(d.player) != self.ceremony.player_position(self.keys.public())
                {
                    let wrong = C::random_scalar(&mut self.rng);
                    let aad = ShareAad {
                        session_id: d.session,
                        dealer: d.dealer,
                        recipient: d.player,
                        commitment_hash: hash,
                    };
                    let pk = &self.ceremony.players()[d.player as usize].encryption;
                    let ct = encrypt::seal(pk, &aad, &C::encode_scalar(&wrong), &mut self.rng);
                    let deal = Direct::Deal(Deal {
                        ciphertext: ct.to_bytes(),
                        ..d
                    });
                    out.push(Routed::Now(Action::Send {
                        to: to.clone(),
                        payload: deal.encode(),
                    }));
                    return;
                }
                out.push(Routed::Now(action));
            }
            AdversaryKind::WrongReveal => {
                if let Action::Post(bytes) = &action
                    && let Ok(signed) = SignedPost::<C>::decode(bytes, self.ceremony.n())
                    && let Post::Publication(mut p) = signed.post.clone()
                    && !p.reveals.is_empty()
                {
                    p.reveals[0].1 += C::Scalar::ONE;
                    out.push(Routed::Now(Action::Post(self.sign(Post::Publication(p)))));
                    return;
                }
                out.push(Routed::Now(action));
            }
            AdversaryKind::Garbage | AdversaryKind::Crash | AdversaryKind::Silent => {
                out.push(Routed::Now(action))
            }
        }
    }

    fn sign(&self, post: Post<C>) -> Vec<u8> {
        let signature: IdentitySignature = self.keys.sign(Purpose::Post, &post.encode());
        SignedPost { post, signature }.encode()
    }
}
