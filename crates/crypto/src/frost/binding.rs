//! Binding factors and the group commitment (RFC 9591 sections 4.4 and 4.5).
//!
//! Each signer's binding factor ties its binding nonce to the whole signing operation:
//! `rho_i = H1(SerializeElement(PK) || H4(msg) || H5(encode_group_commitment_list(L)) ||
//! SerializeScalar(i))`. The group commitment is `R = sum_i (D_i + rho_i E_i)`.

use k256::{AffinePoint, ProjectivePoint, Scalar};

use super::ciphersuite::{Mode, h1, h4, h5, serialize_element};
use super::commitment::CommitmentList;
use super::error::FrostError;
use crate::group::Curve;
use crate::secp256k1::Secp256k1;

/// The part of every binding factor input shared by all signers:
/// `SerializeElement(PK) || H4(msg) || H5(encode_group_commitment_list(L))`.
pub fn binding_factor_input_prefix(
    mode: Mode,
    group_key: &AffinePoint,
    list: &CommitmentList,
    msg: &[u8],
) -> Result<Vec<u8>, FrostError> {
    let key = serialize_element(group_key).map_err(|_| FrostError::IdentityGroupKey)?;
    let mut prefix = Vec::with_capacity(33 + 64);
    prefix.extend_from_slice(&key);
    prefix.extend_from_slice(&h4(mode, msg));
    prefix.extend_from_slice(&h5(mode, &list.encode()));
    Ok(prefix)
}

/// `compute_binding_factors`: one `rho_i` per list entry, in list order.
pub fn compute_binding_factors(
    mode: Mode,
    group_key: &AffinePoint,
    list: &CommitmentList,
    msg: &[u8],
) -> Result<Vec<Scalar>, FrostError> {
    let prefix = binding_factor_input_prefix(mode, group_key, list, msg)?;
    Ok(list
        .entries()
        .iter()
        .map(|(id, _)| h1(mode, &[&prefix, &id.to_bytes()]))
        .collect())
}

/// `compute_group_commitment`: `sum_i D_i + sum_i rho_i E_i`, the second sum as one MSM.
pub fn compute_group_commitment(
    list: &CommitmentList,
    binding_factors: &[Scalar],
) -> ProjectivePoint {
    let hiding: Vec<AffinePoint> = list.entries().iter().map(|e| *e.1.hiding()).collect();
    let binding: Vec<AffinePoint> = list.entries().iter().map(|e| *e.1.binding()).collect();
    Secp256k1::sum(&hiding) + Secp256k1::msm(&binding, binding_factors)
}
