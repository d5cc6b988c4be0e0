//! Magic-block signatures combined off chain, for chains that verify one threshold signature
//! per committee instead of collecting partials (the EVM coordinator:
//! [`crate::chain::SignatureRoute::OffChain`]).
//!
//! The driver signs a magic block as on any chain, after checking it against its own board:
//! with its new share (new committee) and with the previous view's share (handover). Instead of
//! going to the chain, each partial is sent to every member of the new committee over
//! `keyquorum-net` (kind [`KIND_MAGIC_PARTIAL`], in the ceremony's session), as the beacon's
//! partials are. Each member of the new committee keeps a [`Collector`] for the block it signs:
//! it checks every partial with the same rule the embedded chain's contract applies
//! ([`check_partial`]: a member of the signing committee, its own index, a valid partial under
//! its public share), and once it holds `t` of the new committee (and, after the first view,
//! `t` of the previous one) it combines and verifies them ([`combine_partials`]) and submits the
//! activation. A new member's partial carries its endorsement: its identity key's signature
//! ([`Purpose::Endorsement`]) on the block's hash, which it too gives only after checking the
//! block against its own board. The contract wants `t` of them besides the group signature,
//! because the qualified set it is handed could be one in which a dealer chose its `f(0) G` to
//! make the group key its own; honest players endorse only the block their boards define. Any
//! member may activate; the contract takes the first and refuses the others. The runtime holds
//! the activation until the chain's adapter says it is this member's turn
//! ([`crate::chain::ChainClient::activation_due`]; on an EVM chain the members take turns, so
//! copies do not revert at their senders' cost), and drops it once the view is activated. A partial for a block this node has not
//! reached yet is not answered, so its sender retries.

use std::collections::BTreeMap;

use keyquorum_contract::magic::{MagicBlock, PartialError, check_partial, combine_partials};
use keyquorum_contract::tx::{PARTIAL_LEN, SignerRole};
use keyquorum_crypto::tbls::{MinPk, PartialSignature};
use keyquorum_dkg::identity::{IdentityPublicKey, IdentitySignature, Purpose, SIGNATURE_LEN};

use crate::chain::{Activation, Endorsement};

/// Network message kind: a partial signature on a magic block (the response is empty).
pub const KIND_MAGIC_PARTIAL: u8 = 8;

/// Length of an encoded partial message of the previous committee: view, block hash, role,
/// partial; a new member's adds its endorsement.
const MESSAGE_LEN: usize = 8 + 32 + 1 + PARTIAL_LEN;

/// A partial signature on a magic block as sent between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialMessage {
    /// The view of the block.
    pub view: u64,
    /// The block's hash.
    pub block_hash: [u8; 32],
    /// The signing committee.
    pub role: SignerRole,
    /// The partial signature.
    pub partial: PartialSignature<MinPk>,
    /// The sender's endorsement of the block (its identity signature on the hash): present
    /// exactly for the new committee.
    pub endorsement: Option<IdentitySignature>,
}

/// Why a partial message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollectError {
    /// Not a partial message (length, role tag, partial encoding).
    #[error("malformed partial signature message")]
    Malformed,
    /// A message with no authenticated sender.
    #[error("partial signature from an unknown sender")]
    NoSender,
    /// Not for the block being collected, nor the next one.
    #[error("partial signature for another magic block")]
    OtherBlock,
    /// The previous committee's block is not known, so the handover cannot be checked.
    #[error("the previous view's magic block is not known here")]
    NoPreviousBlock,
    /// Refused by the signing rule.
    #[error(transparent)]
    Partial(#[from] PartialError),
    /// A new member's endorsement that does not verify under its identity key.
    #[error("endorsement of the magic block does not verify")]
    BadEndorsement,
}

impl PartialMessage {
    /// `view (u64) || block hash (32) || role (0 new, 1 old) || partial (128)`, then for the new
    /// committee the endorsement (48).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MESSAGE_LEN + SIGNATURE_LEN);
        out.extend_from_slice(&self.view.to_be_bytes());
        out.extend_from_slice(&self.block_hash);
        out.push(match self.role {
            SignerRole::New => 0,
            SignerRole::Old => 1,
        });
        out.extend_from_slice(&self.partial.to_bytes());
        if let Some(e) = &self.endorsement {
            out.extend_from_slice(&e.0);
        }
        out
    }

    /// Decodes [`PartialMessage::encode`] (exact length, known role, valid partial encoding).
    pub fn decode(bytes: &[u8]) -> Result<Self, CollectError> {
        if bytes.len() < MESSAGE_LEN {
            return Err(CollectError::Malformed);
        }
        let view = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        let block_hash: [u8; 32] = bytes[8..40].try_into().expect("32 bytes");
        let role = match bytes[40] {
            0 => SignerRole::New,
            1 => SignerRole::Old,
            _ => return Err(CollectError::Malformed),
        };
        let endorsement = match (role, &bytes[MESSAGE_LEN..]) {
            (SignerRole::New, e) if e.len() == SIGNATURE_LEN => {
                Some(IdentitySignature(e.try_into().expect("signature length")))
            }
            (SignerRole::Old, []) => None,
            _ => return Err(CollectError::Malformed),
        };
        let partial = PartialSignature::<MinPk>::from_bytes(&bytes[41..MESSAGE_LEN])
            .map_err(|_| CollectError::Malformed)?;
        Ok(PartialMessage {
            view,
            block_hash,
            role,
            partial,
            endorsement,
        })
    }
}

/// What became of an offered partial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collected {
    /// Checked and kept (or a repeat of one kept).
    Kept,
    /// For a block this node does not collect yet: leave unanswered, the sender retries.
    Later,
    /// The last partial needed: the activation to submit.
    Complete(Box<Activation>),
}

struct Target {
    hash: [u8; 32],
    block: MagicBlock,
    previous: Option<MagicBlock>,
    new: BTreeMap<u64, PartialSignature<MinPk>>,
    old: BTreeMap<u64, PartialSignature<MinPk>>,
    endorsements: BTreeMap<u64, Endorsement>,
    signature: Option<[u8; 96]>,
    previous_signature: Option<[u8; 96]>,
    complete: bool,
}

/// The partials of the magic block this node signs as a member of the new committee; see the
/// module docs.
#[derive(Default)]
pub struct Collector {
    target: Option<Target>,
}

impl Collector {
    /// Collects for `block` (with hash `hash`); `previous` is the active view's magic block,
    /// whose committee signs the handover (none for the first view). Setting the same block
    /// again keeps what was collected.
    pub fn set_target(&mut self, hash: [u8; 32], block: MagicBlock, previous: Option<MagicBlock>) {
        if self.target.as_ref().is_some_and(|t| t.hash == hash) {
            return;
        }
        self.target = Some(Target {
            hash,
            block,
            previous,
            new: BTreeMap::new(),
            old: BTreeMap::new(),
            endorsements: BTreeMap::new(),
            signature: None,
            previous_signature: None,
            complete: false,
        });
    }

    /// Stops collecting (the view is active, or its ceremony ended).
    pub fn clear(&mut self) {
        self.target = None;
    }

    /// Offers a partial from `from` (the identity the network layer authenticated).
    pub fn offer(
        &mut self,
        from: Option<&[u8]>,
        message: &PartialMessage,
    ) -> Result<Collected, CollectError> {
        let from: &[u8; 96] = from
            .and_then(|f| f.try_into().ok())
            .ok_or(CollectError::NoSender)?;
        let Some(target) = self.target.as_mut() else {
            return Ok(Collected::Later);
        };
        if target.hash != message.block_hash || target.block.view != message.view {
            // A later view's block this node has not reached yet, or a stale one.
            return if message.view > target.block.view {
                Ok(Collected::Later)
            } else {
                Err(CollectError::OtherBlock)
            };
        }
        let (committee, kept, done) = match message.role {
            SignerRole::New => (&target.block, &mut target.new, target.signature.is_some()),
            SignerRole::Old => (
                target
                    .previous
                    .as_ref()
                    .ok_or(CollectError::NoPreviousBlock)?,
                &mut target.old,
                target.previous_signature.is_some(),
            ),
        };
        let index = check_partial(
            committee,
            message.role,
            &target.hash,
            from,
            &message.partial,
        )?;
        if done || kept.contains_key(&index) {
            return Ok(Collected::Kept);
        }
        if message.role == SignerRole::New {
            let signature = message.endorsement.ok_or(CollectError::Malformed)?;
            let key = IdentityPublicKey::from_bytes(from).map_err(|_| CollectError::NoSender)?;
            if !key.verify(Purpose::Endorsement, &target.hash, &signature) {
                return Err(CollectError::BadEndorsement);
            }
            target.endorsements.insert(
                index,
                Endorsement {
                    index,
                    identity: *from,
                    signature,
                },
            );
        }
        kept.insert(index, message.partial);
        if kept.len() >= committee.t as usize {
            let partials: Vec<_> = kept.values().copied().collect();
            let signature = combine_partials(committee, message.role, &target.hash, &partials)?;
            match message.role {
                SignerRole::New => target.signature = Some(signature),
                SignerRole::Old => target.previous_signature = Some(signature),
            }
        }
        let handover_done = target.previous.is_none() || target.previous_signature.is_some();
        match target.signature {
            Some(signature) if handover_done && !target.complete => {
                target.complete = true;
                Ok(Collected::Complete(Box::new(Activation {
                    view: target.block.view,
                    block_hash: target.hash,
                    signature,
                    previous_signature: target.previous_signature,
                    endorsements: target.endorsements.values().cloned().collect(),
                })))
            }
            _ => Ok(Collected::Kept),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyquorum_contract::config::KeyMode;
    use keyquorum_contract::hex::{Bytes, Hex};
    use keyquorum_contract::magic::MagicBlockMember;
    use keyquorum_crypto::secret::Secret;
    use keyquorum_crypto::tbls;
    use keyquorum_crypto::{Bls12381G1, Curve};
    use keyquorum_dkg::identity::IdentityKeypair;

    type Scalar = <Bls12381G1 as Curve>::Scalar;

    /// A committee of three with threshold two: `f(x) = 7 + 5x`, member `i`'s share `f(i)`.
    struct Committee {
        block: MagicBlock,
        shares: Vec<Scalar>,
        keys: Vec<IdentityKeypair>,
        identities: Vec<[u8; 96]>,
    }

    fn key(s: Scalar) -> Hex<48> {
        let pk = tbls::public_key::<MinPk>(&Secret::new(s));
        Hex(Bls12381G1::point_bytes(&pk).try_into().unwrap())
    }

    fn committee(view: u64, seed: u8) -> Committee {
        let f = |x: u64| Scalar::from(7u64 + seed as u64) + Scalar::from(5u64) * Scalar::from(x);
        let keys: Vec<IdentityKeypair> = (1..=3u8)
            .map(|i| {
                let mut bytes = [0u8; 32];
                bytes[0] = seed;
                bytes[1] = i;
                IdentityKeypair::from_seed(&bytes).unwrap()
            })
            .collect();
        let identities: Vec<[u8; 96]> = keys.iter().map(|k| *k.public().as_bytes()).collect();
        let members = (1..=3u64)
            .map(|i| MagicBlockMember {
                index: i,
                identity: Hex(identities[i as usize - 1]),
                encryption_key: Hex([i as u8; 32]),
                peer_id: Bytes(vec![i as u8]),
                addresses: Vec::new(),
                public_share: key(f(i)),
            })
            .collect();
        let block = MagicBlock {
            chain_id: "test".into(),
            view,
            ceremony_number: 0,
            key_mode: KeyMode::Fresh,
            session_id: Hex([seed; 32]),
            n: 3,
            t: 2,
            k: 2,
            group_key: key(f(0)),
            members,
            previous_hash: Hex([0; 32]),
            first_round: 10,
            beacon: Default::default(),
        };
        Committee {
            block,
            shares: (1..=3).map(f).collect(),
            keys,
            identities,
        }
    }

    fn partial(c: &Committee, i: usize, role: SignerRole, hash: &[u8; 32]) -> PartialMessage {
        let message = keyquorum_contract::magic::signing_message(role, hash);
        PartialMessage {
            view: 2,
            block_hash: *hash,
            role,
            partial: tbls::partial_sign::<MinPk>(
                &Secret::new(c.shares[i]),
                Scalar::from(i as u64 + 1),
                &message,
            ),
            endorsement: (role == SignerRole::New)
                .then(|| c.keys[i].sign(Purpose::Endorsement, hash)),
        }
    }

    /// A new member's partial comes with its endorsement of the block, and one that is missing,
    /// made by another key or for another block is refused before its partial is kept.
    #[test]
    fn new_members_partials_need_their_endorsement() {
        let new = committee(2, 1);
        let hash = new.block.hash();
        let mut collector = Collector::default();
        collector.set_target(hash, new.block.clone(), None);
        let honest = partial(&new, 0, SignerRole::New, &hash);
        for endorsement in [
            Some(new.keys[1].sign(Purpose::Endorsement, &hash)),
            Some(new.keys[0].sign(Purpose::Endorsement, &[1; 32])),
            Some(new.keys[0].sign(Purpose::Post, &hash)),
        ] {
            let m = PartialMessage {
                endorsement,
                ..honest.clone()
            };
            assert_eq!(
                collector.offer(Some(&new.identities[0]), &m),
                Err(CollectError::BadEndorsement)
            );
        }
        let bare = PartialMessage {
            endorsement: None,
            ..honest.clone()
        };
        assert_eq!(
            PartialMessage::decode(&bare.encode()),
            Err(CollectError::Malformed)
        );
        assert_eq!(
            collector.offer(Some(&new.identities[0]), &bare),
            Err(CollectError::Malformed)
        );
        assert_eq!(
            collector.offer(Some(&new.identities[0]), &honest),
            Ok(Collected::Kept)
        );
    }

    #[test]
    fn a_partial_message_round_trips_and_garbage_is_refused() {
        let c = committee(2, 1);
        let m = partial(&c, 0, SignerRole::Old, &[9; 32]);
        assert_eq!(PartialMessage::decode(&m.encode()).unwrap(), m);
        let endorsed = partial(&c, 0, SignerRole::New, &[9; 32]);
        assert_eq!(
            PartialMessage::decode(&endorsed.encode()).unwrap(),
            endorsed
        );
        // An old member's message with an endorsement appended is malformed.
        let mut long = m.encode();
        long.extend_from_slice(&[0; 48]);
        assert_eq!(PartialMessage::decode(&long), Err(CollectError::Malformed));
        let mut bad = m.encode();
        bad[40] = 2;
        assert_eq!(PartialMessage::decode(&bad), Err(CollectError::Malformed));
        assert_eq!(
            PartialMessage::decode(&bad[1..]),
            Err(CollectError::Malformed)
        );
    }

    /// The activation comes with the `t`-th valid partial of each committee, once, and its
    /// signatures verify under each committee's group key; forged, misattributed and unknown
    /// partials are refused or deferred.
    #[test]
    fn both_committees_combine_at_their_threshold() {
        let new = committee(2, 1);
        let old = committee(1, 2);
        let hash = new.block.hash();
        let mut collector = Collector::default();
        // No block yet: the sender is asked to retry.
        let first = partial(&new, 0, SignerRole::New, &hash);
        assert_eq!(
            collector.offer(Some(&new.identities[0]), &first),
            Ok(Collected::Later)
        );
        collector.set_target(hash, new.block.clone(), Some(old.block.clone()));
        // Member 2's partial presented as member 1's.
        let second = partial(&new, 1, SignerRole::New, &hash);
        assert_eq!(
            collector.offer(Some(&new.identities[0]), &second),
            Err(CollectError::Partial(PartialError::WrongIndex))
        );
        // A stranger, and a partial on another message.
        assert_eq!(
            collector.offer(Some(&old.identities[0]), &first),
            Err(CollectError::Partial(PartialError::NotASigner))
        );
        let other = partial(&new, 0, SignerRole::New, &[1; 32]);
        let forged = PartialMessage {
            block_hash: hash,
            ..other
        };
        assert_eq!(
            collector.offer(Some(&new.identities[0]), &forged),
            Err(CollectError::Partial(PartialError::BadPartial))
        );
        for (i, m) in [first.clone(), first, second].iter().enumerate() {
            let from = &new.identities[if i < 2 { 0 } else { 1 }];
            assert_eq!(collector.offer(Some(from), m), Ok(Collected::Kept));
        }
        // The handover is still missing.
        let old_first = partial(&old, 2, SignerRole::Old, &hash);
        assert_eq!(
            collector.offer(Some(&old.identities[2]), &old_first),
            Ok(Collected::Kept)
        );
        let old_second = partial(&old, 0, SignerRole::Old, &hash);
        let Ok(Collected::Complete(a)) = collector.offer(Some(&old.identities[0]), &old_second)
        else {
            panic!("no activation at the threshold");
        };
        assert_eq!((a.view, a.block_hash), (2, hash));
        for (committee, role, sig) in [
            (&new.block, SignerRole::New, a.signature),
            (&old.block, SignerRole::Old, a.previous_signature.unwrap()),
        ] {
            let pk = tbls::decode_public_key::<MinPk>(&committee.group_key.0).unwrap();
            let sig = tbls::decode_signature::<MinPk>(&sig).unwrap();
            let message = keyquorum_contract::magic::signing_message(role, &hash);
            tbls::verify::<MinPk>(&pk, &message, &sig).unwrap();
        }
        // The endorsements of the new members whose partials were combined, each verifying.
        assert_eq!(
            a.endorsements.iter().map(|e| e.index).collect::<Vec<_>>(),
            vec![1, 2]
        );
        for e in &a.endorsements {
            let key = IdentityPublicKey::from_bytes(&e.identity).unwrap();
            assert!(key.verify(Purpose::Endorsement, &hash, &e.signature));
        }
        // Only once.
        let third = partial(&new, 2, SignerRole::New, &hash);
        assert_eq!(
            collector.offer(Some(&new.identities[2]), &third),
            Ok(Collected::Kept)
        );
    }
}
