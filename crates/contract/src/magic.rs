//! Magic blocks: the record of a view that the next committee and every light client follow.
//!
//! As in 0chain (protocol lessons; seed 000, "Wait"), the magic block of view `v` names the
//! members with their indices and network identities, `n`, `t`, `k`, the group public key, the
//! public commitment (every member's public key share), the hash of the previous magic block and
//! the first round of the view, and the random beacon the view runs (drand scheme and period,
//! [`BeaconConfig`]). Its hash is SHA-256 of a canonical binary encoding
//! ([`MagicBlock::encode`]).
//!
//! Two threshold-BLS signatures (MinPk layout, ciphersuite
//! `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`) are stored with it, each on its own message
//! ([`signing_message`]): the block hash behind a domain tag that names the signing committee's
//! role, so that the group's signatures on magic blocks can never be confused with its
//! signatures on anything else, nor one committee's signature with the other's:
//! - `signature`, by the new committee under the new group key, on
//!   [`NEW_COMMITTEE_SIGNATURE_TAG`] and the hash: key confirmation, proof that at least `t`
//!   members hold working shares;
//! - `previous_signature`, by the previous committee under the previous group key, on
//!   [`HANDOVER_SIGNATURE_TAG`] and the hash: the link. This is MaidSafe's handover (seed 002:
//!   the new key signs the new section info and the old elders sign it), and it is what lets
//!   anyone holding the genesis key verify the whole chain ([`verify_magic_block_chain`]).
//!
//! For a reshare the group key does not change. Without the role in the message the two
//! signatures would be the same value (BLS signatures are unique), so the new committee's
//! signature alone would also pass as the handover; with it, the handover can only come from
//! `t` shares of the previous view, and the verifier also checks that a reshare kept the key.

use keyquorum_crypto::Curve;
use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_crypto::{Bls12381G1, Bls12381G2};
use keyquorum_dkg::Ceremony;
use keyquorum_dkg::board::{Board, Outcome, Penalty};
use keyquorum_dkg::complaint::ComplaintBoard;
use keyquorum_dkg::wire::Writer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::config::{BeaconConfig, KeyMode};
use crate::hex::{Bytes, Hex};
use crate::tx::{NetworkIdentity, SignerRole};

/// Domain tag at the start of every magic block encoding.
/// `v2` added the beacon's scheme and period at the end.
pub const MAGIC_BLOCK_TAG: &[u8] = b"keyquorum/magic-block/v2";
/// Domain tag of the message the new committee signs (key confirmation).
pub const NEW_COMMITTEE_SIGNATURE_TAG: &[u8] = b"keyquorum/magic-block-signature/new-committee/v1";
/// Domain tag of the message the previous committee signs (the handover).
pub const HANDOVER_SIGNATURE_TAG: &[u8] = b"keyquorum/magic-block-signature/handover/v1";

/// A member of a view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MagicBlockMember {
    /// Share index `x` (1-based position in the ceremony's committee order).
    pub index: u64,
    /// Identity key (compressed G2).
    pub identity: Hex<96>,
    /// Share-encryption key.
    pub encryption_key: Hex<32>,
    /// libp2p peer id.
    pub peer_id: Bytes,
    /// Network addresses.
    pub addresses: Vec<String>,
    /// Public key share `x_i G` (compressed G1), what partial signatures are checked against.
    pub public_share: Hex<48>,
}

/// The unsigned magic block of one view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MagicBlock {
    /// Chain id.
    pub chain_id: String,
    /// View number (1 for the first view).
    pub view: u64,
    /// Ceremony number within the view change (0 for the first; serialised as `session`).
    #[serde(rename = "session")]
    pub ceremony_number: u32,
    /// Fresh key or reshare.
    pub key_mode: KeyMode,
    /// Session id of the ceremony (binds the block to its DKG transcript on chain).
    pub session_id: Hex<32>,
    /// Committee size of the ceremony.
    pub n: u32,
    /// Signing threshold.
    pub t: u32,
    /// Dealer quorum.
    pub k: u32,
    /// Group public key (compressed G1).
    pub group_key: Hex<48>,
    /// Members in good standing, ascending by index.
    pub members: Vec<MagicBlockMember>,
    /// Hash of the previous view's magic block (zero for the first).
    pub previous_hash: Hex<32>,
    /// First block height of the view at the latest: the block after the signing deadline.
    /// The view starts earlier, in the block after the one that completes its signatures, when
    /// they are all in before the deadline (`ViewRecord::activated_at` has the height).
    pub first_round: u64,
    /// The random beacon of the view: a reshare keeps the previous view's
    /// ([`BeaconConfig::for_view`]).
    pub beacon: BeaconConfig,
}

impl MagicBlock {
    /// Canonical encoding (length-prefixed fields in a fixed order, after [`MAGIC_BLOCK_TAG`];
    /// the beacon last, as its scheme's tag byte and the period as a big-endian u32).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(MAGIC_BLOCK_TAG)
            .bytes(self.chain_id.as_bytes())
            .u64(self.view)
            .u32(self.ceremony_number)
            .u8(self.key_mode.tag())
            .fixed(&self.session_id.0)
            .u32(self.n)
            .u32(self.t)
            .u32(self.k)
            .fixed(&self.group_key.0)
            .u32(self.members.len() as u32);
        for m in &self.members {
            w.u64(m.index)
                .fixed(&m.identity.0)
                .fixed(&m.encryption_key.0)
                .bytes(&m.peer_id.0)
                .u32(m.addresses.len() as u32);
            for a in &m.addresses {
                w.bytes(a.as_bytes());
            }
            w.fixed(&m.public_share.0);
        }
        w.fixed(&self.previous_hash.0)
            .u64(self.first_round)
            .u8(self.beacon.scheme.tag())
            .u32(self.beacon.period_secs);
        w.finish()
    }

    /// SHA-256 of the encoding.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.encode()).into()
    }

    /// The message the committee in `role` signs (see [`signing_message`]).
    pub fn signing_message(&self, role: SignerRole) -> Vec<u8> {
        signing_message(role, &self.hash())
    }

    /// A member by index.
    pub fn member(&self, index: u64) -> Option<&MagicBlockMember> {
        self.members.iter().find(|m| m.index == index)
    }

    /// A member by identity key.
    pub fn member_by_identity(&self, identity: &[u8; 96]) -> Option<&MagicBlockMember> {
        self.members.iter().find(|m| &m.identity.0 == identity)
    }
}

/// Where a magic block sits: everything in it that does not come from the ceremony's board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MagicBlockPlace {
    /// Chain id.
    pub chain_id: String,
    /// View number.
    pub view: u64,
    /// Ceremony number within the view change (0 for the first; serialised as `session`).
    pub ceremony_number: u32,
    /// Fresh key or reshare.
    pub key_mode: KeyMode,
    /// Hash of the previous view's magic block (zero for the first view).
    pub previous_hash: [u8; 32],
    /// First block height of the view.
    pub first_round: u64,
    /// The view's beacon: [`BeaconConfig::for_view`] of the configuration and the active view.
    pub beacon: BeaconConfig,
}

/// Why a board defines no magic block.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BuildError {
    /// The board has not finished successfully.
    #[error("the ceremony has no successful outcome")]
    NoOutcome,
    /// Too few members remain to sign.
    #[error("{have} members in good standing, at least k = {need} needed")]
    TooFewMembers {
        /// Members in good standing.
        have: usize,
        /// The dealer quorum `k`.
        need: usize,
    },
}

impl MagicBlock {
    /// The magic block that a finished board defines. The contract creates the block with it and
    /// every node recomputes the block with it from its own board before signing, so there is
    /// one rule for both.
    ///
    /// Members are the active players not named in any exclusion that carries a penalty (a node
    /// that missed a phase as a dealer is removed from the committee too, as Züs removes miners
    /// that miss the contribute or publish phase; a dealer excluded only because players did not
    /// ack it keeps its seat), with index `position + 1`, their encryption key from the
    /// session, their public key share from the board's output and the network identity that
    /// `network` returns for them (the registry; empty if unknown). Fewer than `k` members is an
    /// error: such a committee could not reshare its key.
    pub fn from_board(
        place: &MagicBlockPlace,
        board: &Board<Bls12381G1>,
        network: impl Fn(&Hex<96>) -> Option<NetworkIdentity>,
    ) -> Result<MagicBlock, BuildError> {
        Self::from_outcome(
            place,
            board.ceremony(),
            board.outcome(),
            |p| board.is_active_player(p),
            network,
        )
    }

    /// [`MagicBlock::from_board`] for a complaint-variant board: the active players are the
    /// qualified ones (the others hold no share).
    pub fn from_complaint_board(
        place: &MagicBlockPlace,
        board: &ComplaintBoard<Bls12381G1>,
        network: impl Fn(&Hex<96>) -> Option<NetworkIdentity>,
    ) -> Result<MagicBlock, BuildError> {
        let qualified = board.qualification().map(|q| q.players.as_slice());
        Self::from_outcome(
            place,
            board.ceremony(),
            board.outcome(),
            |p| qualified.is_some_and(|q| q.binary_search(&p).is_ok()),
            network,
        )
    }

    /// The one construction behind both boards' magic blocks.
    fn from_outcome(
        place: &MagicBlockPlace,
        ceremony: &Ceremony<Bls12381G1>,
        outcome: Option<&Outcome<Bls12381G1>>,
        is_active_player: impl Fn(u32) -> bool,
        network: impl Fn(&Hex<96>) -> Option<NetworkIdentity>,
    ) -> Result<MagicBlock, BuildError> {
        let Some(Outcome::Success { output, exclusions }) = outcome else {
            return Err(BuildError::NoOutcome);
        };
        let removed: Vec<Hex<96>> = exclusions
            .iter()
            .filter(|e| e.fault.penalty() != Penalty::None)
            .map(|e| Hex(e.identity.to_bytes()))
            .collect();
        let mut members = Vec::new();
        for (pos, p) in ceremony.players().iter().enumerate() {
            let identity = Hex(p.identity.to_bytes());
            if removed.contains(&identity) || !is_active_player(pos as u32) {
                continue;
            }
            let Some(share) = output.public_shares.get(pos) else {
                return Err(BuildError::NoOutcome);
            };
            let net = network(&identity).unwrap_or(NetworkIdentity {
                peer_id: Bytes(Vec::new()),
                addresses: Vec::new(),
            });
            members.push(MagicBlockMember {
                index: pos as u64 + 1,
                identity,
                encryption_key: Hex(p.encryption.to_bytes()),
                peer_id: net.peer_id,
                addresses: net.addresses,
                public_share: point48(share),
            });
        }
        let params = ceremony.params();
        if members.len() < params.k() {
            return Err(BuildError::TooFewMembers {
                have: members.len(),
                need: params.k(),
            });
        }
        Ok(MagicBlock {
            chain_id: place.chain_id.clone(),
            view: place.view,
            ceremony_number: place.ceremony_number,
            key_mode: place.key_mode,
            session_id: Hex(*ceremony.id()),
            n: params.n() as u32,
            t: params.t() as u32,
            k: params.k() as u32,
            group_key: point48(&output.group_key),
            members,
            previous_hash: Hex(place.previous_hash),
            first_round: place.first_round,
            beacon: place.beacon,
        })
    }

    /// The first field, in encoding order, in which `other` differs from this block (`None`
    /// when they are equal), for reporting a magic block that is not the expected one.
    pub fn first_difference(&self, other: &MagicBlock) -> Option<&'static str> {
        let member_ids = |b: &MagicBlock| -> Vec<(u64, Hex<96>)> {
            b.members.iter().map(|m| (m.index, m.identity)).collect()
        };
        let checks: [(&'static str, bool); 15] = [
            ("chain id", self.chain_id == other.chain_id),
            ("view", self.view == other.view),
            ("session", self.ceremony_number == other.ceremony_number),
            ("key mode", self.key_mode == other.key_mode),
            ("session id", self.session_id == other.session_id),
            (
                "n/t/k",
                (self.n, self.t, self.k) == (other.n, other.t, other.k),
            ),
            ("group key", self.group_key == other.group_key),
            ("members", member_ids(self) == member_ids(other)),
            (
                "encryption keys",
                self.members
                    .iter()
                    .map(|m| m.encryption_key)
                    .eq(other.members.iter().map(|m| m.encryption_key)),
            ),
            (
                "network identities",
                self.members
                    .iter()
                    .map(|m| (&m.peer_id, &m.addresses))
                    .eq(other.members.iter().map(|m| (&m.peer_id, &m.addresses))),
            ),
            (
                "public key shares",
                self.members
                    .iter()
                    .map(|m| m.public_share)
                    .eq(other.members.iter().map(|m| m.public_share)),
            ),
            ("previous hash", self.previous_hash == other.previous_hash),
            ("first round", self.first_round == other.first_round),
            ("beacon", self.beacon == other.beacon),
            ("encoding", self.encode() == other.encode()),
        ];
        checks.iter().find(|(_, same)| !same).map(|(what, _)| *what)
    }
}

fn point48(p: &<Bls12381G1 as Curve>::Affine) -> Hex<48> {
    let mut out = [0u8; 48];
    out.copy_from_slice(&Bls12381G1::point_bytes(p));
    Hex(out)
}

/// The message the committee in `role` signs for a magic block with hash `hash`: the role's
/// tag ([`NEW_COMMITTEE_SIGNATURE_TAG`] or [`HANDOVER_SIGNATURE_TAG`]) followed by the hash.
pub fn signing_message(role: SignerRole, hash: &[u8; 32]) -> Vec<u8> {
    let tag = match role {
        SignerRole::New => NEW_COMMITTEE_SIGNATURE_TAG,
        SignerRole::Old => HANDOVER_SIGNATURE_TAG,
    };
    let mut m = Vec::with_capacity(tag.len() + 32);
    m.extend_from_slice(tag);
    m.extend_from_slice(hash);
    m
}

/// A magic block with its signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedMagicBlock {
    /// The block.
    pub block: MagicBlock,
    /// Its hash (recomputed and compared by the verifier).
    pub hash: Hex<32>,
    /// The new committee's signature under `block.group_key`, on
    /// `signing_message(SignerRole::New, hash)`.
    pub signature: Option<Hex<96>>,
    /// The previous committee's signature under the previous group key, on
    /// `signing_message(SignerRole::Old, hash)` (none for the first view).
    pub previous_signature: Option<Hex<96>>,
}

/// Why a chain of magic blocks does not verify. `position` is the index into the slice.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChainError {
    /// No blocks.
    #[error("empty chain")]
    Empty,
    /// The stored hash is not the hash of the block.
    #[error("block {position}: stored hash does not match the block")]
    HashMismatch {
        /// Position.
        position: usize,
    },
    /// The first block's group key is not the genesis key.
    #[error("block {position}: group key is not the genesis key")]
    GenesisKey {
        /// Position.
        position: usize,
    },
    /// A group key does not decode.
    #[error("block {position}: invalid group key")]
    BadGroupKey {
        /// Position.
        position: usize,
    },
    /// A required signature is absent.
    #[error("block {position}: {which} signature missing")]
    MissingSignature {
        /// Position.
        position: usize,
        /// `"new"` or `"previous"`.
        which: &'static str,
    },
    /// A signature does not verify.
    #[error("block {position}: {which} signature does not verify")]
    BadSignature {
        /// Position.
        position: usize,
        /// `"new"` or `"previous"`.
        which: &'static str,
    },
    /// The block does not follow the previous one (view number, previous hash, chain id,
    /// first round).
    #[error("block {position}: does not follow the previous block ({what})")]
    Broken {
        /// Position.
        position: usize,
        /// Which link failed.
        what: &'static str,
    },
    /// A reshare changed the group key.
    #[error("block {position}: a reshare must keep the group key")]
    ReshareKeyChanged {
        /// Position.
        position: usize,
    },
    /// A reshare changed the beacon's scheme or period (it continues the previous chain).
    #[error("block {position}: a reshare must keep the beacon's scheme and period")]
    ReshareBeaconChanged {
        /// Position.
        position: usize,
    },
    /// Structure: thresholds, member indices, shares.
    #[error("block {position}: malformed ({what})")]
    Malformed {
        /// Position.
        position: usize,
        /// What is wrong.
        what: &'static str,
    },
}

fn decode_group_key(
    b: &Hex<48>,
    position: usize,
) -> Result<<Bls12381G1 as Curve>::Affine, ChainError> {
    tbls::decode_public_key::<MinPk>(&b.0).map_err(|_| ChainError::BadGroupKey { position })
}

fn check_signature(
    key: &<Bls12381G1 as Curve>::Affine,
    message: &[u8],
    sig: Option<&Hex<96>>,
    position: usize,
    which: &'static str,
) -> Result<(), ChainError> {
    let sig = sig.ok_or(ChainError::MissingSignature { position, which })?;
    let point = Bls12381G2::decode_point(&sig.0)
        .map_err(|_| ChainError::BadSignature { position, which })?;
    tbls::verify::<MinPk>(key, message, &point)
        .map_err(|_| ChainError::BadSignature { position, which })
}

fn check_structure(b: &MagicBlock, position: usize) -> Result<(), ChainError> {
    let malformed = |what| ChainError::Malformed { position, what };
    if b.t == 0 || b.t > b.k || b.k > b.n {
        return Err(malformed("thresholds"));
    }
    if b.members.len() < b.t as usize || b.members.len() > b.n as usize {
        return Err(malformed("member count"));
    }
    if b.members
        .windows(2)
        .any(|w| w[0].index >= w[1].index || w[0].identity == w[1].identity)
        || b.members.iter().any(|m| m.index == 0)
    {
        return Err(malformed("member indices"));
    }
    if b.beacon.validate().is_err() {
        return Err(malformed("beacon period"));
    }
    Ok(())
}

/// Verifies a chain of magic blocks from a trusted genesis key: `blocks[0]` must carry that
/// group key and its new committee's signature; every later block must name the hash of the
/// one before, have the next view number, carry the handover signature of the previous
/// committee under the previous group key and the key-confirmation signature of its own
/// committee under its own key (two messages, so neither stands for the other), and keep the
/// group key and the beacon (scheme and period) when it is a reshare. The first block's `previous_signature`, if any, is not
/// checked: it is by a committee before the trusted key (so that a chain can also be verified
/// from a later view's key), and nothing should rely on it.
pub fn verify_magic_block_chain(
    genesis_key: &[u8; 48],
    blocks: &[SignedMagicBlock],
) -> Result<(), ChainError> {
    let first = blocks.first().ok_or(ChainError::Empty)?;
    if &first.block.group_key.0 != genesis_key {
        return Err(ChainError::GenesisKey { position: 0 });
    }
    let mut previous: Option<(&SignedMagicBlock, [u8; 32])> = None;
    for (position, signed) in blocks.iter().enumerate() {
        let b = &signed.block;
        let hash = b.hash();
        if hash != signed.hash.0 {
            return Err(ChainError::HashMismatch { position });
        }
        check_structure(b, position)?;
        let key = decode_group_key(&b.group_key, position)?;
        let message = signing_message(SignerRole::New, &hash);
        check_signature(&key, &message, signed.signature.as_ref(), position, "new")?;
        if let Some((prev, prev_hash)) = previous {
            let broken = |what| ChainError::Broken { position, what };
            // Checked: a block after view `u64::MAX` must not pass as view 0's successor.
            if prev.block.view.checked_add(1) != Some(b.view) {
                return Err(broken("view number"));
            }
            if b.previous_hash.0 != prev_hash {
                return Err(broken("previous hash"));
            }
            if b.chain_id != prev.block.chain_id {
                return Err(broken("chain id"));
            }
            if b.first_round <= prev.block.first_round {
                return Err(broken("first round"));
            }
            if b.key_mode == KeyMode::Reshare && b.group_key != prev.block.group_key {
                return Err(ChainError::ReshareKeyChanged { position });
            }
            if b.key_mode == KeyMode::Reshare && b.beacon != prev.block.beacon {
                return Err(ChainError::ReshareBeaconChanged { position });
            }
            let prev_key = decode_group_key(&prev.block.group_key, position - 1)?;
            check_signature(
                &prev_key,
                &signing_message(SignerRole::Old, &hash),
                signed.previous_signature.as_ref(),
                position,
                "previous",
            )?;
        }
        previous = Some((signed, hash));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BeaconScheme;
    use keyquorum_crypto::secret::Secret;

    type Scalar = <Bls12381G1 as Curve>::Scalar;

    fn key(i: u64) -> Secret<Scalar> {
        Secret::new(Scalar::from(1000 + i))
    }

    fn public(sk: &Secret<Scalar>) -> Hex<48> {
        Hex::from_slice(&Bls12381G1::point_bytes(&tbls::public_key::<MinPk>(sk))).unwrap()
    }

    fn block(view: u64, sk: &Secret<Scalar>, previous: Option<&SignedMagicBlock>) -> MagicBlock {
        MagicBlock {
            chain_id: "c".into(),
            view,
            ceremony_number: 0,
            key_mode: KeyMode::Fresh,
            session_id: Hex([view as u8; 32]),
            n: 1,
            t: 1,
            k: 1,
            group_key: public(sk),
            members: vec![MagicBlockMember {
                index: 1,
                identity: Hex([7; 96]),
                encryption_key: Hex([8; 32]),
                peer_id: Bytes(vec![1, 2]),
                addresses: vec!["/ip4/1.2.3.4/tcp/1".into()],
                public_share: public(sk),
            }],
            previous_hash: previous.map(|p| p.hash).unwrap_or_default(),
            first_round: view * 100,
            beacon: BeaconConfig::default(),
        }
    }

    fn sig(sk: &Secret<Scalar>, role: SignerRole, hash: &[u8; 32]) -> Hex<96> {
        let s = tbls::sign::<MinPk>(sk, &signing_message(role, hash));
        Hex::from_slice(&Bls12381G2::point_bytes(&s)).unwrap()
    }

    fn sign(
        b: MagicBlock,
        new: &Secret<Scalar>,
        prev: Option<&Secret<Scalar>>,
    ) -> SignedMagicBlock {
        let hash = b.hash();
        SignedMagicBlock {
            block: b,
            hash: Hex(hash),
            signature: Some(sig(new, SignerRole::New, &hash)),
            previous_signature: prev.map(|p| sig(p, SignerRole::Old, &hash)),
        }
    }

    /// Fresh key 1, reshare (key 1 again), fresh key 2.
    fn chain() -> Vec<SignedMagicBlock> {
        let b1 = sign(block(1, &key(1), None), &key(1), None);
        let mut raw2 = block(2, &key(1), Some(&b1));
        raw2.key_mode = KeyMode::Reshare;
        let b2 = sign(raw2, &key(1), Some(&key(1)));
        let b3 = sign(block(3, &key(2), Some(&b2)), &key(2), Some(&key(1)));
        vec![b1, b2, b3]
    }

    #[test]
    fn a_signed_chain_verifies_from_the_genesis_key() {
        let c = chain();
        let genesis = c[0].block.group_key.0;
        assert_eq!(verify_magic_block_chain(&genesis, &c), Ok(()));
        assert_eq!(verify_magic_block_chain(&genesis, &c[..1]), Ok(()));
        // The reshare's two signatures are under the same key but on different messages.
        assert_ne!(c[1].signature, c[1].previous_signature);
    }

    /// A block cannot follow view `u64::MAX` by wrapping around to view 0 (it panicked with
    /// overflow checks and was accepted without them).
    #[test]
    fn view_numbers_do_not_wrap() {
        let mut raw1 = block(1, &key(1), None);
        raw1.view = u64::MAX;
        let b1 = sign(raw1, &key(1), None);
        let mut raw2 = block(0, &key(2), Some(&b1));
        raw2.first_round = b1.block.first_round + 1;
        let b2 = sign(raw2, &key(2), Some(&key(1)));
        let genesis = b1.block.group_key.0;
        assert_eq!(
            verify_magic_block_chain(&genesis, std::slice::from_ref(&b1)),
            Ok(())
        );
        assert_eq!(
            verify_magic_block_chain(&genesis, &[b1, b2]),
            Err(ChainError::Broken {
                position: 1,
                what: "view number"
            })
        );
    }

    #[test]
    fn the_two_roles_sign_different_messages() {
        let hash = [0x5a; 32];
        let new = signing_message(SignerRole::New, &hash);
        let old = signing_message(SignerRole::Old, &hash);
        assert_ne!(new, old);
        assert_eq!(
            new,
            [
                &b"keyquorum/magic-block-signature/new-committee/v1"[..],
                &hash
            ]
            .concat()
        );
        assert_eq!(
            old,
            [&b"keyquorum/magic-block-signature/handover/v1"[..], &hash].concat()
        );
        // Neither tag is a prefix of the other, so no hash makes the messages collide.
        assert!(!NEW_COMMITTEE_SIGNATURE_TAG.starts_with(HANDOVER_SIGNATURE_TAG));
        assert!(!HANDOVER_SIGNATURE_TAG.starts_with(NEW_COMMITTEE_SIGNATURE_TAG));
    }

    #[test]
    fn a_reshare_handover_signed_only_by_the_new_committee_fails() {
        let c = chain();
        let genesis = c[0].block.group_key.0;
        // The new committee's key confirmation copied into the handover slot: same key, but
        // not a signature on the handover message.
        let mut bad = c.clone();
        bad[1].previous_signature = bad[1].signature;
        assert_eq!(
            verify_magic_block_chain(&genesis, &bad[..2]),
            Err(ChainError::BadSignature {
                position: 1,
                which: "previous"
            })
        );
        // The new committee signing the handover message as well is no better when it holds
        // another key: only the previous key's holders can sign the link.
        let mut raw = block(2, &key(1), Some(&c[0]));
        raw.key_mode = KeyMode::Reshare;
        let forged = sign(raw, &key(1), Some(&key(9)));
        assert_eq!(
            verify_magic_block_chain(&genesis, &[c[0].clone(), forged]),
            Err(ChainError::BadSignature {
                position: 1,
                which: "previous"
            })
        );
    }

    #[test]
    fn the_hash_covers_every_field() {
        let b = block(1, &key(1), None);
        let h = b.hash();
        let mut changes: Vec<MagicBlock> = Vec::new();
        let mut x = b.clone();
        x.first_round += 1;
        changes.push(x);
        let mut x = b.clone();
        x.members[0].addresses[0].push('0');
        changes.push(x);
        let mut x = b.clone();
        x.members[0].public_share = public(&key(5));
        changes.push(x);
        let mut x = b.clone();
        x.t = 2;
        changes.push(x);
        let mut x = b.clone();
        x.key_mode = KeyMode::Reshare;
        changes.push(x);
        let mut x = b.clone();
        x.chain_id.push('x');
        changes.push(x);
        let mut x = b.clone();
        x.beacon.period_secs = 2;
        changes.push(x);
        let mut x = b.clone();
        x.beacon.scheme = BeaconScheme::PedersenBlsUnchained;
        changes.push(x);
        for x in changes {
            assert_ne!(x.hash(), h);
            assert!(b.first_difference(&x).is_some());
        }
        assert_eq!(b.clone().hash(), h);
        assert!(
            b.encode()
                .starts_with(&[0, 0, 0, MAGIC_BLOCK_TAG.len() as u8])
        );
    }

    /// The beacon closes the encoding: its scheme's tag and the period, big-endian.
    #[test]
    fn the_encoding_ends_with_the_beacon() {
        let mut b = block(1, &key(1), None);
        b.beacon = BeaconConfig {
            scheme: BeaconScheme::PedersenBlsUnchained,
            period_secs: 0x0102_0304,
        };
        let e = b.encode();
        assert!(e.ends_with(&[&(100u64).to_be_bytes()[..], &[2, 1, 2, 3, 4]].concat()));
        b.beacon.scheme = BeaconScheme::PedersenBlsChained;
        assert_eq!(b.encode()[e.len() - 5], 1);
        assert_eq!(b.first_difference(&block(1, &key(1), None)), Some("beacon"));
    }

    /// A reshare continues its chain of rounds: a block that changes the scheme or the period
    /// does not follow, even signed by both committees; a fresh key may change them.
    #[test]
    fn a_reshare_that_changes_the_beacon_does_not_follow() {
        let c = chain();
        let genesis = c[0].block.group_key.0;
        for change in [
            BeaconConfig {
                scheme: BeaconScheme::PedersenBlsUnchained,
                period_secs: 3,
            },
            BeaconConfig {
                scheme: BeaconScheme::PedersenBlsChained,
                period_secs: 2,
            },
        ] {
            let mut raw = block(2, &key(1), Some(&c[0]));
            raw.key_mode = KeyMode::Reshare;
            raw.beacon = change;
            let bad = vec![c[0].clone(), sign(raw, &key(1), Some(&key(1)))];
            assert_eq!(
                verify_magic_block_chain(&genesis, &bad),
                Err(ChainError::ReshareBeaconChanged { position: 1 })
            );
            let mut raw = block(2, &key(2), Some(&c[0]));
            raw.beacon = change;
            let fresh = vec![c[0].clone(), sign(raw, &key(2), Some(&key(1)))];
            assert_eq!(verify_magic_block_chain(&genesis, &fresh), Ok(()));
        }
        let mut raw = block(1, &key(1), None);
        raw.beacon.period_secs = 0;
        assert!(matches!(
            verify_magic_block_chain(&genesis, &[sign(raw, &key(1), None)]),
            Err(ChainError::Malformed {
                what: "beacon period",
                ..
            })
        ));
    }

    #[test]
    fn broken_chains_fail() {
        let c = chain();
        let genesis = c[0].block.group_key.0;
        // A "reshare" that changed the key, even if both committees signed it.
        let mut raw = block(2, &key(3), Some(&c[0]));
        raw.key_mode = KeyMode::Reshare;
        let bad = vec![c[0].clone(), sign(raw, &key(3), Some(&key(1)))];
        assert_eq!(
            verify_magic_block_chain(&genesis, &bad),
            Err(ChainError::ReshareKeyChanged { position: 1 })
        );
        // A block signed only by its own committee cannot follow.
        let bad = vec![
            c[0].clone(),
            sign(block(2, &key(3), Some(&c[0])), &key(3), Some(&key(3))),
        ];
        assert_eq!(
            verify_magic_block_chain(&genesis, &bad),
            Err(ChainError::BadSignature {
                position: 1,
                which: "previous"
            })
        );
        // Wrong previous hash, chain id, first round.
        let mut raw = block(2, &key(1), Some(&c[0]));
        raw.previous_hash = Hex([1; 32]);
        let bad = vec![c[0].clone(), sign(raw, &key(1), Some(&key(1)))];
        assert_eq!(
            verify_magic_block_chain(&genesis, &bad),
            Err(ChainError::Broken {
                position: 1,
                what: "previous hash"
            })
        );
        let mut raw = block(2, &key(1), Some(&c[0]));
        raw.chain_id = "other".into();
        let bad = vec![c[0].clone(), sign(raw, &key(1), Some(&key(1)))];
        assert!(matches!(
            verify_magic_block_chain(&genesis, &bad),
            Err(ChainError::Broken {
                what: "chain id",
                ..
            })
        ));
        let mut raw = block(2, &key(1), Some(&c[0]));
        raw.first_round = 50;
        let bad = vec![c[0].clone(), sign(raw, &key(1), Some(&key(1)))];
        assert!(matches!(
            verify_magic_block_chain(&genesis, &bad),
            Err(ChainError::Broken {
                what: "first round",
                ..
            })
        ));
        // Malformed thresholds and members, missing and garbage signatures, bad keys.
        let mut raw = block(1, &key(1), None);
        raw.t = 0;
        assert!(matches!(
            verify_magic_block_chain(&genesis, &[sign(raw, &key(1), None)]),
            Err(ChainError::Malformed { .. })
        ));
        let mut raw = block(1, &key(1), None);
        raw.members.clear();
        assert!(matches!(
            verify_magic_block_chain(&genesis, &[sign(raw, &key(1), None)]),
            Err(ChainError::Malformed { .. })
        ));
        let mut b = c[0].clone();
        b.signature = None;
        assert_eq!(
            verify_magic_block_chain(&genesis, &[b]),
            Err(ChainError::MissingSignature {
                position: 0,
                which: "new"
            })
        );
        let mut b = c[0].clone();
        b.signature = Some(Hex([0xff; 96]));
        assert!(matches!(
            verify_magic_block_chain(&genesis, &[b]),
            Err(ChainError::BadSignature { .. })
        ));
        let mut raw = block(1, &key(1), None);
        raw.group_key = Hex([0; 48]);
        let b = sign(raw, &key(1), None);
        assert_eq!(
            verify_magic_block_chain(&[0; 48], &[b]),
            Err(ChainError::BadGroupKey { position: 0 })
        );
    }
}

/// Why a partial signature on a magic block is refused ([`check_partial`], [`combine_partials`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PartialError {
    /// The signer is not a member of the signing committee.
    #[error("not a member of the signing committee")]
    NotASigner,
    /// The partial's index is not the signer's index in the committee.
    #[error("the partial's index is not the signer's")]
    WrongIndex,
    /// The partial does not verify under the signer's public share.
    #[error("the partial signature does not verify")]
    BadPartial,
    /// The partials do not combine into a signature under the committee's group key.
    #[error("the partials do not combine into a valid signature")]
    CombineFailed,
}

/// Checks a partial signature by `signer` on the message of `role` for the block with hash
/// `hash`, where `committee` is the magic block of the committee signing in that role (the new
/// block for [`SignerRole::New`], the previous view's for [`SignerRole::Old`]). Returns the
/// signer's index. The embedded chain's contract and nodes that combine off chain both use it.
pub fn check_partial(
    committee: &MagicBlock,
    role: SignerRole,
    hash: &[u8; 32],
    signer: &[u8; 96],
    partial: &tbls::PartialSignature<MinPk>,
) -> Result<u64, PartialError> {
    let member = committee
        .member_by_identity(signer)
        .ok_or(PartialError::NotASigner)?;
    if partial.index != <Bls12381G1 as Curve>::Scalar::from(member.index) {
        return Err(PartialError::WrongIndex);
    }
    let share = tbls::decode_public_key::<MinPk>(&member.public_share.0)
        .map_err(|_| PartialError::BadPartial)?;
    tbls::partial_verify::<MinPk>(&share, &signing_message(role, hash), partial)
        .map_err(|_| PartialError::BadPartial)?;
    Ok(member.index)
}

/// Combines `committee.t` checked partials of `role` on the block with hash `hash` and verifies
/// the result under the committee's group key; returns the compressed signature.
pub fn combine_partials(
    committee: &MagicBlock,
    role: SignerRole,
    hash: &[u8; 32],
    partials: &[tbls::PartialSignature<MinPk>],
) -> Result<[u8; 96], PartialError> {
    let threshold = committee.t as usize;
    let sig =
        tbls::combine::<MinPk>(threshold, partials).map_err(|_| PartialError::CombineFailed)?;
    let key = tbls::decode_public_key::<MinPk>(&committee.group_key.0)
        .map_err(|_| PartialError::CombineFailed)?;
    tbls::verify::<MinPk>(&key, &signing_message(role, hash), &sig)
        .map_err(|_| PartialError::CombineFailed)?;
    let mut b = [0u8; 96];
    b.copy_from_slice(&Bls12381G2::point_bytes(&sig));
    Ok(b)
}
