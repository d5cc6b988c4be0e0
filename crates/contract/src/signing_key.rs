//! A view's signing key: a secp256k1 group key held by the view's committee besides its BLS key,
//! for threshold Schnorr signatures (FROST, RFC 9591, and its BIP-340 mode).
//!
//! # The ceremony
//! With `[dkg.signing_key]` configured ([`SigningKeyConfig`](crate::config::SigningKeyConfig)),
//! the contract starts one ceremony per view when the view activates: the complaint-and-reconstruct
//! DKG (seed 003) on secp256k1 among the members of the view's magic block, in its order, with
//! key-hash share indices (Keccak-256 of each member's identity key, re-hashed until it is a
//! non-zero scalar below the group order: seed 003, step 1, [`keyquorum_crypto::index`]).
//! Its [`CeremonySpec`] is built by [`signing_key_spec`]; [`signing_ceremony`] turns it into the
//! engine's ceremony, so the contract and every node derive the same session id and indices.
//!
//! Deals go point to point; the board is the chain: `SigningKeyPost` transactions carry the
//! ceremony's signed posts (reports, justifications, disputes, Feldman values, complaints,
//! reconstructions), which the contract checks for authenticity and hands to its
//! [`ComplaintBoard`], the same board every node replicates from the `SigningKeyBoardPost` and
//! `SigningKeyDeadline` events. The first phase (deals) lasts `phases.share` blocks, each later
//! board phase `phases.publish`.
//!
//! # The record
//! When the board is done, [`SigningKeyRecord::from_board`] turns its outcome into the record the
//! contract keeps with the view and announces (`SigningKeyCreated`): the group key, the threshold,
//! each member's index and public key share, the qualified dealers, and every member the board
//! excluded with its fault ([`SigningKeyExclusion`]). Nodes compute the same record from their own
//! replica of the board with the same function and use their share only if the two agree.
//!
//! # What is not done
//! Faults in this ceremony exclude the culprit from the signing key but are not slashed; a view
//! that ends before its signing key is made drops the ceremony (`SigningKeyFailed`); the key is
//! made fresh for every view (no resharing).

use std::sync::Arc;

use keyquorum_crypto::Curve;
use keyquorum_crypto::Secp256k1;
use keyquorum_crypto::index::IndexScheme;
use keyquorum_dkg::Ceremony;
use keyquorum_dkg::board::{Outcome, Role};
use keyquorum_dkg::complaint::ComplaintBoard;
use keyquorum_dkg::params::ParamsError;
use serde::{Deserialize, Serialize};

use crate::config::{ContractConfig, DkgVariant};
use crate::hex::{Bytes, Hex};
use crate::magic::MagicBlock;
use crate::state::{BoardInput, CeremonySpec, FaultRole, IdentityKey, SpecError, SpecParticipant};

/// The signing key's curve.
pub type SigningCurve = Secp256k1;

/// The domain of a view's signing-key ceremony (distinct from its view-change ceremonies').
pub fn signing_key_domain(chain_id: &str, view: u64) -> Vec<u8> {
    format!("keyquorum-contract/{chain_id}/view/{view}/signing-key").into_bytes()
}

/// The definition of `block`'s view's signing-key ceremony: its members in the block's order,
/// each with its registered verifiable-encryption key (`verifiable_key` of an identity), and the
/// configured thresholds for their number.
pub fn signing_key_spec(
    config: &ContractConfig,
    block: &MagicBlock,
    verifiable_key: impl Fn(&IdentityKey) -> Option<Hex<33>>,
) -> Result<CeremonySpec, SigningKeySpecError> {
    let n = block.members.len();
    let params = config.params_for(n).map_err(SigningKeySpecError::Params)?;
    let verifiable_keys = block
        .members
        .iter()
        .map(|m| {
            verifiable_key(&m.identity).ok_or(SigningKeySpecError::NoVerifiableKey(m.identity))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CeremonySpec {
        domain: Bytes(signing_key_domain(&config.chain_id, block.view)),
        view: block.view,
        ceremony_number: 0,
        n: params.n() as u32,
        t: params.t() as u32,
        k: params.k() as u32,
        players: block
            .members
            .iter()
            .map(|m| SpecParticipant {
                identity: m.identity,
                encryption_key: m.encryption_key,
            })
            .collect(),
        reshare: None,
        variant: DkgVariant::Complaint,
        verifiable_keys,
    })
}

/// Why a view gets no signing-key ceremony.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningKeySpecError {
    /// The thresholds do not fit the committee.
    #[error("thresholds: {0}")]
    Params(ParamsError),
    /// A member has no verifiable-encryption key to receive its shares.
    #[error("member {} has no verifiable-encryption key", hex::encode(&.0.0[..8]))]
    NoVerifiableKey(IdentityKey),
}

/// The engine's ceremony of a signing-key spec: complaint variant on secp256k1 with key-hash
/// indices.
pub fn signing_ceremony(spec: &CeremonySpec) -> Result<Arc<Ceremony<SigningCurve>>, SpecError> {
    Ok(Ceremony::new(
        spec.config_on::<SigningCurve>(IndexScheme::PublicKeyHash)?,
    )?)
}

/// A view's signing-key ceremony in progress, as the contract stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyRun {
    /// The view whose committee makes the key.
    pub view: u64,
    /// Session id.
    pub session_id: Hex<32>,
    /// The ceremony's definition ([`signing_ceremony`]).
    pub spec: CeremonySpec,
    /// Last block of the current board phase.
    pub deadline: u64,
    /// The board's inputs in order (the board is rebuilt from them on restore).
    pub board_log: Vec<BoardInput>,
}

/// One member's place in a signing key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyMember {
    /// Identity key.
    pub identity: IdentityKey,
    /// Share index (big-endian scalar): the key hash of the identity key.
    pub index: Hex<32>,
    /// Public key share (compressed secp256k1 point).
    pub public_share: Hex<33>,
}

/// A view's signing key as recorded on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyRecord {
    /// Session id of the ceremony that made it.
    pub session_id: Hex<32>,
    /// Shares needed to sign.
    pub threshold: u32,
    /// Group key (compressed secp256k1 point).
    pub group_key: Hex<33>,
    /// Every member in committee order.
    pub members: Vec<SigningKeyMember>,
    /// Qualified dealers (committee positions).
    pub qualified: Vec<u32>,
    /// Everyone the ceremony excluded, dealers then players, ascending: a dealer excluded
    /// after qualifying (failed Feldman phase) is also in `qualified`, its contribution
    /// reconstructed into the key. Faults here are not slashed.
    #[serde(default)]
    pub excluded: Vec<SigningKeyExclusion>,
}

/// A member excluded from a signing key, with the board's reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyExclusion {
    /// The role it failed in.
    pub role: FaultRole,
    /// Committee position.
    pub position: u32,
    /// Identity key.
    pub identity: IdentityKey,
    /// Fault code (`FaultKind::code`, e.g. `equivocation`).
    pub fault: String,
    /// The fault with its details.
    pub detail: String,
}

impl SigningKeyRecord {
    /// The record of a board whose ceremony succeeded (`None` before the outcome or on
    /// failure). The one rule for contract and nodes.
    pub fn from_board(board: &ComplaintBoard<SigningCurve>) -> Option<Self> {
        let Some(Outcome::Success { output, exclusions }) = board.outcome() else {
            return None;
        };
        let ceremony = board.ceremony();
        let point = |p: &<SigningCurve as Curve>::Affine| -> Option<Hex<33>> {
            let mut out = Vec::with_capacity(33);
            SigningCurve::encode_point(p, &mut out);
            Some(Hex(out.try_into().ok()?))
        };
        let members = ceremony
            .players()
            .iter()
            .zip(ceremony.player_indices())
            .zip(&output.public_shares)
            .map(|((m, x), share)| {
                Some(SigningKeyMember {
                    identity: Hex(m.identity.to_bytes()),
                    index: Hex(SigningCurve::encode_scalar(x)),
                    public_share: point(share)?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(SigningKeyRecord {
            session_id: Hex(*ceremony.id()),
            threshold: ceremony.t() as u32,
            group_key: point(&output.group_key)?,
            members,
            qualified: output.qualified.clone(),
            excluded: exclusions
                .iter()
                .map(|e| SigningKeyExclusion {
                    role: match e.role {
                        Role::Dealer => FaultRole::Dealer,
                        Role::Player => FaultRole::Player,
                    },
                    position: e.index,
                    identity: Hex(e.identity.to_bytes()),
                    fault: e.fault.code().to_string(),
                    detail: e.fault.to_string(),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyquorum_crypto::index;

    #[test]
    fn the_signing_ceremony_uses_key_hash_indices_on_secp256k1() {
        use keyquorum_crypto::encrypt::EncryptionSecretKey;
        use keyquorum_crypto::verifiable_encrypt::VerifiableEncryptionSecretKey;
        use keyquorum_dkg::identity::IdentityKeypair;
        let ids: Vec<IdentityKeypair> = (1..=4u8)
            .map(|i| IdentityKeypair::from_seed(&[i; 32]).unwrap())
            .collect();
        let spec = CeremonySpec {
            domain: Bytes(signing_key_domain("c", 1)),
            view: 1,
            ceremony_number: 0,
            n: 4,
            t: 3,
            k: 3,
            players: ids
                .iter()
                .map(|k| SpecParticipant {
                    identity: Hex(k.public().to_bytes()),
                    encryption_key: Hex(EncryptionSecretKey::from_seed(&[9; 32])
                        .public_key()
                        .to_bytes()),
                })
                .collect(),
            reshare: None,
            variant: DkgVariant::Complaint,
            verifiable_keys: (1..=4u8)
                .map(|i| {
                    let key = VerifiableEncryptionSecretKey::from_bytes(&[i; 32]).unwrap();
                    Hex(key.public_key().to_bytes())
                })
                .collect(),
        };
        let ceremony = signing_ceremony(&spec).unwrap();
        for (m, x) in ceremony.players().iter().zip(ceremony.player_indices()) {
            assert_eq!(
                *x,
                index::from_public_key::<SigningCurve>(&m.identity.to_bytes())
            );
        }
        // The view's ceremony of the same committee is another session on another curve.
        let view = spec.ceremony().unwrap();
        assert_ne!(view.id(), ceremony.id());
    }
}
