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
//! activation. Any member may do so; the contract takes the first and refuses the others, which
//! then see the view activated in the chain's events. A partial for a block this node has not
//! reached yet is not answered, so its sender retries.

use std::collections::BTreeMap;

use keyquorum_contract::magic::{MagicBlock, PartialError, check_partial, combine_partials};
use keyquorum_contract::tx::{PARTIAL_LEN, SignerRole};
use keyquorum_crypto::tbls::{MinPk, PartialSignature};

use crate::chain::Activation;

/// Network message kind: a partial signature on a magic block (the response is empty).
pub const KIND_MAGIC_PARTIAL: u8 = 8;

/// Length of an encoded partial message: view, block hash, role, partial.
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
}

impl PartialMessage {
    /// `view (u64) || block hash (32) || role (0 new, 1 old) || partial (128)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MESSAGE_LEN);
        out.extend_from_slice(&self.view.to_be_bytes());
        out.extend_from_slice(&self.block_hash);
        out.push(match self.role {
            SignerRole::New => 0,
            SignerRole::Old => 1,
        });
        out.extend_from_slice(&self.partial.to_bytes());
        out
    }

    /// Decodes [`PartialMessage::encode`] (exact length, known role, valid partial encoding).
    pub fn decode(bytes: &[u8]) -> Result<Self, CollectError> {
        if bytes.len() != MESSAGE_LEN {
            return Err(CollectError::Malformed);
        }
        let view = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        let block_hash: [u8; 32] = bytes[8..40].try_into().expect("32 bytes");
        let role = match bytes[40] {
            0 => SignerRole::New,
            1 => SignerRole::Old,
            _ => return Err(CollectError::Malformed),
        };
        let partial = PartialSignature::<MinPk>::from_bytes(&bytes[41..])
            .map_err(|_| CollectError::Malformed)?;
        Ok(PartialMessage {
            view,
            block_hash,
            role,
            partial,
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
                })))
            }
            _ => Ok(Collected::Kept),
        }
    }
}
