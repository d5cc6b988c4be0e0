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
//! board phase `phases.publish`; with `phases.close_early` a phase whose expected posts are all
//! in ends at the block of the last one ([`ComplaintBoard::all_posts_in`]): the deal phase too,
//! once every member has reported, which it does as soon as every deal it got verified.
//!
//! # The record
//! When the board is done, [`SigningKeyRecord::from_board`] turns its outcome into the record the
//! contract keeps with the view and announces (`SigningKeyCreated`): the group key, the threshold,
//! each member's index and public key share, the qualified dealers, and every member the board
//! excluded with its fault and the penalty it carries ([`SigningKeyExclusion`]). Nodes compute
//! the same record from their own replica of the board with the same function and use their share
//! only if the two agree.
//!
//! # Slashing (seed 003, steps 3.2, 4.1 and 7)
//! When the board is done, successful or not, the contract slashes every excluded member whose
//! exclusion [`proven_penalty`] accepts, through the same code path as the view ceremonies'
//! faults (`SlashingRecord`s tagged [`FaultCeremony::SigningKey`](crate::state::FaultCeremony),
//! `Slashed` events, the configured misbehaviour or absence percentage of the stake, burned
//! except the reporter's share). Nobody is slashed without proof signed by the culprit or an
//! absence the chain itself witnessed, re-checked from the session and the evidence alone
//! ([`keyquorum_dkg::complaint::verify_exclusion`]), so no lost message can cost stake:
//! - **Equivocation** (step 3.2, misbehaviour): every player's report carries the dealer's
//!   signed commitment statement it received (and a second, conflicting one if the dealer sent
//!   that player two), so reports on chain hold the dealer's two signatures on different
//!   commitment hashes of this session; both signatures are verified again and the hashes must
//!   differ.
//! - **Missing justification** (step 4.1, absence): players' reports on chain named the deal as
//!   missing (the chain asked for the share) and the dealer posted no valid justification by the
//!   justify deadline. A deal lost on the way costs the dealer nothing: it answers on chain.
//! - **Missed Feldman** (step 7, absence): a qualified dealer posted no Feldman values by the
//!   deadline. Its contribution is reconstructed, so the key is unharmed and nobody could
//!   profit; what the chain witnessed is silence, which a crashed honest dealer shows too, so it
//!   costs the absence rate. Feldman values that are posted and wrong are signed proof and cost
//!   the misbehaviour rate (`bad_feldman`, `commitment_degree`, ...).
//! - The other faults the board proves (bad reports, false complaints, bad reconstruction pairs,
//!   missed reports) are slashed by the same rule; exclusion from the clique alone is not.
//!
//! "A dealer that fails repeatedly is dropped for the life of the key": the board drops a culprit
//! from this key at its first fault, and a member slashed in a view's signing-key ceremony (in
//! either role, whatever the configured percentage: it has a slashing record) also sits out the
//! next view's ([`sitting_out`]): it is left out of that ceremony's spec (it deals nothing and
//! holds no share of that key), whose thresholds are resolved for the members that remain, and
//! takes part again the view after.
//!
//! # Lifetime
//! With lifetime `view` ([`SigningKeyLifetime`]) each view's committee makes a new key. With
//! `chain`, the first key is reshared to every later committee: the ceremony's dealers are the
//! holders of the latest key on chain less those sitting out ([`signing_key_reshare`], carried
//! in `SigningKeyStarted` as a [`SigningKeyReshare`]), each dealing its old share, and the board
//! checks that the new shares give the same group key. Fewer holders than the key's threshold
//! refuse the ceremony ([`SigningKeySpecError::TooFewHolders`]) rather than replace the key.
//!
//! # What is not done
//! A view that ends before its signing key is made drops the ceremony (`SigningKeyFailed`).
//!
//! [`SigningKeyLifetime`]: crate::config::SigningKeyLifetime

use std::collections::BTreeSet;
use std::sync::Arc;

use keyquorum_crypto::Curve;
use keyquorum_crypto::Secp256k1;
use keyquorum_crypto::index::{self, IndexScheme};
use keyquorum_dkg::Ceremony;
use keyquorum_dkg::board::{Evidence, Exclusion, Outcome, Penalty, Role};
use keyquorum_dkg::ceremony::Reshare;
use keyquorum_dkg::complaint::{ComplaintBoard, verify_exclusion};
use keyquorum_dkg::params::ParamsError;
use serde::{Deserialize, Serialize};

use crate::config::{ContractConfig, DkgVariant};
use crate::hex::{Bytes, Hex};
use crate::magic::MagicBlock;
use crate::state::{
    BoardInput, CeremonySpec, FaultCeremony, FaultRole, IdentityKey, SlashingRecord, SpecError,
    SpecParticipant, spec_member,
};

/// The signing key's curve.
pub type SigningCurve = Secp256k1;

/// The domain of a view's signing-key ceremony (distinct from its view-change ceremonies').
pub fn signing_key_domain(chain_id: &str, view: u64) -> Vec<u8> {
    format!("keyquorum-contract/{chain_id}/view/{view}/signing-key").into_bytes()
}

/// Members that sit out `view`'s signing-key ceremony: those slashed in the previous view's
/// (see the module docs), from the contract's slashing records.
pub fn sitting_out(slashings: &[SlashingRecord], view: u64) -> BTreeSet<IdentityKey> {
    slashings
        .iter()
        .filter(|r| r.ceremony == FaultCeremony::SigningKey && r.view.checked_add(1) == Some(view))
        .map(|r| r.identity)
        .collect()
}

/// The definition of `block`'s view's signing-key ceremony: its members in the block's order
/// except those `sitting_out` ([`sitting_out`]), each with its registered verifiable-encryption
/// key (`verifiable_key` of an identity), and the configured thresholds for their number.
pub fn signing_key_spec(
    config: &ContractConfig,
    block: &MagicBlock,
    sitting_out: &BTreeSet<IdentityKey>,
    verifiable_key: impl Fn(&IdentityKey) -> Option<Hex<33>>,
) -> Result<CeremonySpec, SigningKeySpecError> {
    let members: Vec<_> = block
        .members
        .iter()
        .filter(|m| !sitting_out.contains(&m.identity))
        .collect();
    let n = members.len();
    let params = config.params_for(n).map_err(SigningKeySpecError::Params)?;
    let verifiable_keys = members
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
        players: members
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
    /// Fewer holders of the key to reshare are left than its threshold: the key cannot be
    /// reshared (and is not replaced by a new one).
    #[error(
        "the signing key of view {from_view} has {holders} holders left, fewer than its threshold {threshold}"
    )]
    TooFewHolders {
        /// The view whose key it is.
        from_view: u64,
        /// Holders that may deal.
        holders: usize,
        /// Shares needed.
        threshold: u32,
    },
    /// A holder of the key is not a member of the magic block of the view that made it.
    #[error("holder {} is not in view {from_view}'s magic block", hex::encode(&.identity.0[..8]))]
    HolderNotInBlock {
        /// The view whose key it is.
        from_view: u64,
        /// The holder.
        identity: IdentityKey,
    },
}

/// A signing key's reshare (lifetime `chain`, [`SigningKeyLifetime`]): the holders of the key as
/// `from_view`'s record has it deal their shares to the new committee, which keeps the group
/// key. Carried beside the ceremony's [`CeremonySpec`] (whose own `reshare` is the views'
/// BLS12-381 kind and stays empty).
///
/// [`SigningKeyLifetime`]: crate::config::SigningKeyLifetime
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyReshare {
    /// The view whose record holds the key.
    pub from_view: u64,
    /// The dealers: the record's members less those sitting out, in record order, each with
    /// its encryption key from that view's magic block. Their share indices are their
    /// key-hash indices, as in the record.
    pub dealers: Vec<SpecParticipant>,
    /// The record's threshold: at least this many dealers must qualify.
    pub old_threshold: u32,
    /// The group key, which the new committee keeps (compressed).
    pub group_key: Hex<33>,
    /// The dealers' public key shares, in dealer order (compressed).
    pub public_shares: Vec<Hex<33>>,
}

/// The reshare of `key`, `from_view`'s signing key (made in `from_block`'s view), to a
/// ceremony that `sitting_out` members are left out of. The one rule for contract and nodes
/// (a node checks a reshare the chain announces with [`SigningKeyReshare::reshares`]).
pub fn signing_key_reshare(
    from_view: u64,
    key: &SigningKeyRecord,
    from_block: &MagicBlock,
    sitting_out: &BTreeSet<IdentityKey>,
) -> Result<SigningKeyReshare, SigningKeySpecError> {
    reshare_with(from_view, key, sitting_out, |id| {
        from_block
            .members
            .iter()
            .find(|b| b.identity == *id)
            .map(|b| b.encryption_key)
    })
}

fn reshare_with(
    from_view: u64,
    key: &SigningKeyRecord,
    sitting_out: &BTreeSet<IdentityKey>,
    encryption_key: impl Fn(&IdentityKey) -> Option<Hex<32>>,
) -> Result<SigningKeyReshare, SigningKeySpecError> {
    let holders: Vec<&SigningKeyMember> = key
        .members
        .iter()
        .filter(|m| !sitting_out.contains(&m.identity))
        .collect();
    if holders.len() < key.threshold as usize {
        return Err(SigningKeySpecError::TooFewHolders {
            from_view,
            holders: holders.len(),
            threshold: key.threshold,
        });
    }
    let dealers = holders
        .iter()
        .map(|m| {
            encryption_key(&m.identity)
                .map(|encryption_key| SpecParticipant {
                    identity: m.identity,
                    encryption_key,
                })
                .ok_or(SigningKeySpecError::HolderNotInBlock {
                    from_view,
                    identity: m.identity,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SigningKeyReshare {
        from_view,
        dealers,
        old_threshold: key.threshold,
        group_key: key.group_key,
        public_shares: holders.iter().map(|m| m.public_share).collect(),
    })
}

impl SigningKeyReshare {
    /// Whether this reshares `key`, `from_view`'s signing key as the caller holds it, to a
    /// ceremony that `sitting_out` members are left out of: the dealers, their order, their
    /// public key shares, the threshold and the group key [`signing_key_reshare`] gives. The
    /// dealers' encryption keys are taken as given (the complaint variant encrypts to the
    /// players' verifiable keys alone).
    pub fn reshares(
        &self,
        from_view: u64,
        key: &SigningKeyRecord,
        sitting_out: &BTreeSet<IdentityKey>,
    ) -> bool {
        let given = |id: &IdentityKey| {
            self.dealers
                .iter()
                .find(|d| d.identity == *id)
                .map(|d| d.encryption_key)
        };
        reshare_with(from_view, key, sitting_out, given).is_ok_and(|expected| expected == *self)
    }

    /// The engine's reshare: dealer indices are the dealers' key-hash indices.
    fn engine(&self) -> Result<Reshare<SigningCurve>, SpecError> {
        let point = |p: &Hex<33>, what| {
            SigningCurve::decode_point_nonzero(&p.0).map_err(|_| SpecError::Key(what))
        };
        Ok(Reshare {
            dealers: self
                .dealers
                .iter()
                .map(spec_member)
                .collect::<Result<Vec<_>, _>>()?,
            dealer_indices: self
                .dealers
                .iter()
                .map(|d| index::from_public_key::<SigningCurve>(&d.identity.0))
                .collect(),
            old_threshold: self.old_threshold as usize,
            group_key: point(&self.group_key, "group key")?,
            public_shares: self
                .public_shares
                .iter()
                .map(|p| point(p, "public share"))
                .collect::<Result<Vec<_>, _>>()?,
        })
    }
}

/// The engine's ceremony of a signing-key spec: complaint variant on secp256k1 with key-hash
/// indices, resharing the key `reshare` names if there is one.
pub fn signing_ceremony(
    spec: &CeremonySpec,
    reshare: Option<&SigningKeyReshare>,
) -> Result<Arc<Ceremony<SigningCurve>>, SpecError> {
    let mut config = spec.config_on::<SigningCurve>(IndexScheme::PublicKeyHash)?;
    if let Some(r) = reshare {
        config.reshare = Some(r.engine()?);
    }
    Ok(Ceremony::new(config)?)
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
    /// The key it reshares, if any (absent in runs stored before reshares).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reshare: Option<SigningKeyReshare>,
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
    /// Qualified dealers (positions in `dealers`, or in `members` for a new key).
    pub qualified: Vec<u32>,
    /// The dealers of a reshare, in order: the holders of the key it reshared. Empty for a new
    /// key, whose dealers are its members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dealers: Vec<IdentityKey>,
    /// Everyone the ceremony excluded, dealers then players, ascending: a dealer of a new key
    /// excluded after qualifying (failed Feldman phase) is also in `qualified`, its contribution
    /// reconstructed into the key (a reshare drops such a dealer from `qualified` instead).
    /// Those with a `penalty` are slashed by the contract (its
    /// `SlashingRecord`s and `Slashed` events carry the amounts) and sit out the next view's
    /// signing-key ceremony.
    #[serde(default)]
    pub excluded: Vec<SigningKeyExclusion>,
}

/// The stake penalty of a proven signing-key fault: which of the configured percentages
/// ([`SlashingConfig`](crate::config::SlashingConfig)) the contract takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SigningKeyPenalty {
    /// Provable misbehaviour, signed by the culprit: `misbehaviour_percent`.
    Misbehaviour,
    /// An absence the chain witnessed (asked, and no answer by the deadline):
    /// `absence_percent`.
    Absence,
}

/// Why an exclusion's evidence does not justify a slash ([`proven_penalty`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnprovenFault {
    /// The evidence does not authenticate (another session, a signature that is not the
    /// culprit's, another member than the one named) or does not show the fault (two
    /// statements of the same commitment are no equivocation).
    #[error("the evidence does not prove {fault}")]
    Refuted {
        /// The fault code (`FaultKind::code`).
        fault: &'static str,
    },
    /// The fault is neither provable from its evidence nor an absence the chain witnessed.
    #[error("{fault} cannot be proven from its evidence")]
    NotProvable {
        /// The fault code.
        fault: &'static str,
    },
}

/// The penalty a signing-key exclusion carries, if its evidence proves it: `Ok(None)` for a
/// fault without a penalty (outside the clique, which a lost message can cause), the fault's
/// penalty (`FaultKind::penalty`) when the evidence, checked again against the session alone
/// ([`verify_exclusion`]), proves it or is an absence the chain witnessed (a missing post by a
/// phase deadline), and a typed refusal otherwise. The one rule for contract and nodes.
pub fn proven_penalty(
    ceremony: &Ceremony<SigningCurve>,
    e: &Exclusion,
) -> Result<Option<SigningKeyPenalty>, UnprovenFault> {
    let fault = e.fault.code();
    let penalty = match e.fault.penalty() {
        Penalty::None => return Ok(None),
        Penalty::Misbehaviour => SigningKeyPenalty::Misbehaviour,
        Penalty::Absence => SigningKeyPenalty::Absence,
    };
    match verify_exclusion(ceremony, e) {
        Some(true) => Ok(Some(penalty)),
        Some(false) => Err(UnprovenFault::Refuted { fault }),
        None if penalty == SigningKeyPenalty::Absence
            && matches!(e.evidence, Evidence::Absence { .. }) =>
        {
            Ok(Some(penalty))
        }
        None => Err(UnprovenFault::NotProvable { fault }),
    }
}

/// Every member the finished board excluded (whether the ceremony succeeded or failed), with
/// the penalty [`proven_penalty`] gives it (`None` also when its evidence is refused). `None`
/// before the outcome.
pub fn judged_exclusions(
    board: &ComplaintBoard<SigningCurve>,
) -> Option<Vec<(&Exclusion, Option<SigningKeyPenalty>)>> {
    let exclusions = match board.outcome()? {
        Outcome::Success { exclusions, .. } | Outcome::Failure { exclusions, .. } => exclusions,
    };
    Some(
        exclusions
            .iter()
            .map(|e| (e, proven_penalty(board.ceremony(), e).ok().flatten()))
            .collect(),
    )
}

/// A member excluded from a signing key, with the board's reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyExclusion {
    /// The role it failed in.
    pub role: FaultRole,
    /// Position in its role: in `members` for a player; for a dealer, in the record's
    /// `dealers` (a reshare) or `members` (a new key).
    pub position: u32,
    /// Identity key.
    pub identity: IdentityKey,
    /// Fault code (`FaultKind::code`, e.g. `equivocation`).
    pub fault: String,
    /// The fault with its details.
    pub detail: String,
    /// The stake penalty the contract applied, when the evidence proves the fault
    /// ([`proven_penalty`]); absent for a fault without one (and in records made before
    /// signing-key faults were slashed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub penalty: Option<SigningKeyPenalty>,
}

impl SigningKeyExclusion {
    fn new(e: &Exclusion, penalty: Option<SigningKeyPenalty>) -> Self {
        SigningKeyExclusion {
            role: match e.role {
                Role::Dealer => FaultRole::Dealer,
                Role::Player => FaultRole::Player,
            },
            position: e.index,
            identity: Hex(e.identity.to_bytes()),
            fault: e.fault.code().to_string(),
            detail: e.fault.to_string(),
            penalty,
        }
    }
}

impl SigningKeyRecord {
    /// The record of a board whose ceremony succeeded (`None` before the outcome or on
    /// failure). The one rule for contract and nodes.
    pub fn from_board(board: &ComplaintBoard<SigningCurve>) -> Option<Self> {
        let Some(Outcome::Success { output, .. }) = board.outcome() else {
            return None;
        };
        let excluded = judged_exclusions(board)?
            .into_iter()
            .map(|(e, penalty)| SigningKeyExclusion::new(e, penalty))
            .collect();
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
            dealers: match ceremony.reshare() {
                Some(r) => r
                    .dealers
                    .iter()
                    .map(|d| Hex(d.identity.to_bytes()))
                    .collect(),
                None => Vec::new(),
            },
            excluded,
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
        let ceremony = signing_ceremony(&spec, None).unwrap();
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

    /// The reshare a contract announces and the check a node applies to it agree, and every
    /// change to the dealers, their shares or the view is caught; too few holders refuse it.
    #[test]
    fn a_reshare_names_the_holders_not_sitting_out_and_nodes_check_it_field_by_field() {
        let member = |i: u8| SigningKeyMember {
            identity: Hex([i; 96]),
            index: Hex([i; 32]),
            public_share: Hex([i; 33]),
        };
        let key = SigningKeyRecord {
            session_id: Hex([9; 32]),
            threshold: 3,
            group_key: Hex([7; 33]),
            members: (1..=4).map(member).collect(),
            qualified: vec![0, 1, 2, 3],
            dealers: Vec::new(),
            excluded: Vec::new(),
        };
        let encryption = |id: &IdentityKey| Some(Hex([id.0[0]; 32]));
        let out = BTreeSet::from([Hex([2; 96])]);
        let r = reshare_with(5, &key, &out, encryption).unwrap();
        assert_eq!(r.from_view, 5);
        assert_eq!(
            r.dealers
                .iter()
                .map(|d| d.identity.0[0])
                .collect::<Vec<_>>(),
            [1, 3, 4]
        );
        assert_eq!(r.public_shares, [Hex([1; 33]), Hex([3; 33]), Hex([4; 33])]);
        assert_eq!((r.old_threshold, r.group_key), (3, Hex([7; 33])));
        assert!(r.reshares(5, &key, &out));
        assert!(!r.reshares(4, &key, &out), "another view's key");
        assert!(!r.reshares(5, &key, &BTreeSet::new()), "a holder left out");
        let mut other = r.clone();
        other.public_shares[1] = Hex([8; 33]);
        assert!(!other.reshares(5, &key, &out), "another public key share");
        let mut other = r.clone();
        other.dealers.swap(0, 1);
        other.public_shares.swap(0, 1);
        assert!(!other.reshares(5, &key, &out), "dealers reordered");
        let mut other = r.clone();
        other.group_key = Hex([6; 33]);
        assert!(!other.reshares(5, &key, &out), "another group key");
        let two_out = BTreeSet::from([Hex([2; 96]), Hex([3; 96])]);
        assert_eq!(
            reshare_with(5, &key, &two_out, encryption),
            Err(SigningKeySpecError::TooFewHolders {
                from_view: 5,
                holders: 2,
                threshold: 3
            })
        );
    }

    #[test]
    fn older_records_read_as_unslashed_view_change_faults() {
        let exclusion: SigningKeyExclusion = serde_json::from_value(serde_json::json!({
            "role": "dealer",
            "position": 2,
            "identity": hex::encode([1u8; 96]),
            "fault": "equivocation",
            "detail": "two different signed commitments",
        }))
        .unwrap();
        assert_eq!(exclusion.penalty, None);
        let record = serde_json::json!({
            "height": 9, "view": 1, "session": 0, "attempt": 0,
            "identity": hex::encode([1u8; 96]), "role": "dealer", "fault": "missed_contribution",
            "detail": "", "misbehaviour": false,
            "evidence": {"kind": "absence", "phase": "contribute", "attempt": 0},
            "amount": 0, "stake_after": 5,
        });
        let read: SlashingRecord = serde_json::from_value(record.clone()).unwrap();
        assert_eq!(read.ceremony, FaultCeremony::ViewChange);
        // A view-change record is written as before; a signing-key one says so.
        let written = serde_json::to_value(&read).unwrap();
        assert!(written.get("ceremony").is_none(), "{written}");
        let signing = SlashingRecord {
            ceremony: FaultCeremony::SigningKey,
            ..read
        };
        assert_eq!(
            serde_json::to_value(&signing).unwrap()["ceremony"],
            "signing_key"
        );
        let with_penalty = SigningKeyExclusion {
            penalty: Some(SigningKeyPenalty::Absence),
            ..exclusion
        };
        assert_eq!(
            serde_json::to_value(&with_penalty).unwrap()["penalty"],
            "absence"
        );
    }
}
