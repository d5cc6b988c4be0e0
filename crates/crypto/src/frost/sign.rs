//! Round two: the signature share and its verification (RFC 9591 sections 5.2 and 5.4).
//!
//! A [`SigningContext`] holds what every party derives from the public inputs of one signing
//! operation (group key, commitment list, message): the binding factors, the group commitment
//! `R` and the challenge `c`. Signer `i` then answers with
//! `z_i = d_i + e_i rho_i + lambda_i s_i c`, and anyone holding its verifying share `Y_i` checks
//! `z_i G == D_i + rho_i E_i + (c lambda_i) Y_i`.
//!
//! In the BIP-340 mode the key and the group commitment are taken with even `y`: when the group
//! key has odd `y` every share and verifying share is negated (the key `-PK` has the shares
//! `-s_i`), and when `R` has odd `y` every signer negates its nonces, so the signature is made
//! under `-R`. Both flags are public and the same for every signer.

use elliptic_curve::ops::LinearCombination;
use elliptic_curve::point::AffineCoordinates;
use k256::{AffinePoint, ProjectivePoint, Scalar};

use super::binding::{compute_binding_factors, compute_group_commitment};
use super::challenge::{compute_challenge, derive_interpolating_value};
use super::ciphersuite::{Mode, deserialize_scalar, serialize_scalar};
use super::commitment::CommitmentList;
use super::error::FrostError;
use super::keys::{Identifier, KeyPackage};
use super::nonce::SigningNonces;
use crate::secret::Secret;

/// Length of an encoded signature share.
pub const SIGNATURE_SHARE_LEN: usize = 32;

/// A signer's response `z_i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureShare(Scalar);

impl SignatureShare {
    /// The scalar `z_i`.
    pub fn scalar(&self) -> &Scalar {
        &self.0
    }

    /// `SerializeScalar(z_i)`.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_SHARE_LEN] {
        serialize_scalar(&self.0)
    }

    /// `DeserializeScalar`: canonical 32 bytes (RFC 9591 section 5.3).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FrostError> {
        Ok(SignatureShare(deserialize_scalar(bytes)?))
    }
}

/// What signers and the coordinator derive from the public inputs of one signing operation.
#[derive(Debug, Clone)]
pub struct SigningContext {
    mode: Mode,
    dealt_group_key: AffinePoint,
    group_key: AffinePoint,
    negate_key: bool,
    list: CommitmentList,
    participants: Vec<Identifier>,
    message: Vec<u8>,
    binding_factors: Vec<Scalar>,
    group_commitment: AffinePoint,
    negate_nonces: bool,
    challenge: Scalar,
}

fn is_odd(p: &AffinePoint) -> bool {
    bool::from(p.y_is_odd())
}

impl SigningContext {
    /// Binding factors, group commitment and challenge for `msg` under `group_key` (the key as
    /// the DKG dealt it; the BIP-340 mode normalises it) and the commitment list.
    pub fn new(
        mode: Mode,
        group_key: &AffinePoint,
        list: &CommitmentList,
        msg: &[u8],
    ) -> Result<Self, FrostError> {
        if bool::from(group::prime::PrimeCurveAffine::is_identity(group_key)) {
            return Err(FrostError::IdentityGroupKey);
        }
        let negate_key = mode == Mode::Bip340 && is_odd(group_key);
        let effective_key = if negate_key { -*group_key } else { *group_key };
        let binding_factors = compute_binding_factors(mode, &effective_key, list, msg)?;
        let r = group::Curve::to_affine(&compute_group_commitment(list, &binding_factors));
        if bool::from(group::prime::PrimeCurveAffine::is_identity(&r)) {
            return Err(FrostError::IdentityGroupCommitment);
        }
        let negate_nonces = mode == Mode::Bip340 && is_odd(&r);
        let group_commitment = if negate_nonces { -r } else { r };
        let challenge = compute_challenge(mode, &group_commitment, &effective_key, msg)?;
        Ok(SigningContext {
            mode,
            dealt_group_key: *group_key,
            group_key: effective_key,
            negate_key,
            participants: list.participants(),
            list: list.clone(),
            message: msg.to_vec(),
            binding_factors,
            group_commitment,
            negate_nonces,
            challenge,
        })
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The group key as dealt, before any normalisation.
    pub fn dealt_group_key(&self) -> &AffinePoint {
        &self.dealt_group_key
    }

    /// The key signatures verify under: the dealt key, or its even-`y` form in the BIP-340 mode.
    pub fn group_key(&self) -> &AffinePoint {
        &self.group_key
    }

    /// The commitment list.
    pub fn commitment_list(&self) -> &CommitmentList {
        &self.list
    }

    /// The message.
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// The binding factors in list order.
    pub fn binding_factors(&self) -> &[Scalar] {
        &self.binding_factors
    }

    /// The group commitment the signature carries (even `y` in the BIP-340 mode).
    pub fn group_commitment(&self) -> &AffinePoint {
        &self.group_commitment
    }

    /// The challenge `c`.
    pub fn challenge(&self) -> &Scalar {
        &self.challenge
    }

    fn entry(&self, id: &Identifier) -> Result<usize, FrostError> {
        self.list
            .position(id)
            .ok_or(FrostError::MissingCommitment(*id))
    }
}

/// `sign`: signer `key`'s share of the signature, consuming its nonces (RFC 9591 section 5.2).
/// The list must hold this signer's commitment, equal to the one its nonces make, and the
/// context must be for the signer's group key.
pub fn sign(
    key: &KeyPackage,
    nonces: SigningNonces,
    ctx: &SigningContext,
) -> Result<SignatureShare, FrostError> {
    if key.group_key() != &ctx.dealt_group_key {
        return Err(FrostError::GroupKeyMismatch);
    }
    let id = key.identifier();
    let pos = ctx.entry(&id)?;
    if ctx.list.entries()[pos].1 != *nonces.commitments() {
        return Err(FrostError::CommitmentMismatch(id));
    }
    let lambda = derive_interpolating_value(&ctx.participants, &id)?;
    let rho = ctx.binding_factors[pos];
    let mut nonce_part = Secret::new(*nonces.hiding().expose() + *nonces.binding().expose() * rho);
    if ctx.negate_nonces {
        nonce_part = Secret::new(-*nonce_part.expose());
    }
    let share = if ctx.negate_key {
        Secret::new(-*key.signing_share().expose())
    } else {
        Secret::new(*key.signing_share().expose())
    };
    Ok(SignatureShare(
        *nonce_part.expose() + lambda * *share.expose() * ctx.challenge,
    ))
}

/// `verify_signature_share` (RFC 9591 section 5.4) against the verifying share `Y_i` as dealt;
/// a failure names `id` as the culprit.
pub fn verify_signature_share(
    ctx: &SigningContext,
    id: &Identifier,
    verifying_share: &AffinePoint,
    share: &SignatureShare,
) -> Result<(), FrostError> {
    let pos = ctx.entry(id)?;
    let commitments = &ctx.list.entries()[pos].1;
    let rho = ctx.binding_factors[pos];
    let lambda = derive_interpolating_value(&ctx.participants, id)?;
    // Public values only from here on, so variable-time arithmetic is fine.
    let mut commitment_share = ProjectivePoint::lincomb(
        &ProjectivePoint::from(*commitments.hiding()),
        &Scalar::ONE,
        &ProjectivePoint::from(*commitments.binding()),
        &rho,
    );
    if ctx.negate_nonces {
        commitment_share = -commitment_share;
    }
    let mut key_scalar = ctx.challenge * lambda;
    if ctx.negate_key {
        key_scalar = -key_scalar;
    }
    // z_i G - (c lambda_i) Y_i must equal the commitment share.
    let lhs = ProjectivePoint::lincomb(
        &ProjectivePoint::GENERATOR,
        share.scalar(),
        &ProjectivePoint::from(*verifying_share),
        &-key_scalar,
    );
    if lhs == commitment_share {
        Ok(())
    } else {
        Err(FrostError::InvalidSignatureShares(vec![*id]))
    }
}
