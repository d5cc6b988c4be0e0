//! FROST key material from the output of a keyquorum DKG on secp256k1.
//!
//! A DKG leaves every player with its secret share at its index, and everyone with the group key
//! and each player's public key share in committee order. FROST's identifiers are those indices
//! (RFC 9591 section 5), so the translation is direct: the index becomes the identifier, the
//! share the signing share, the public key shares the verifying shares, and the ceremony's
//! threshold the minimum number of signers.

use keyquorum_crypto::Secp256k1;
use keyquorum_crypto::frost::{FrostError, Identifier, KeyPackage, PublicKeyPackage};
use keyquorum_dkg::Ceremony;
use keyquorum_dkg::participant::DkgOutput;

/// The public key package of a finished ceremony: group key, threshold, and every player's
/// verifying share under its index.
pub fn public_key_package(
    ceremony: &Ceremony<Secp256k1>,
    output: &DkgOutput<Secp256k1>,
) -> Result<PublicKeyPackage, FrostError> {
    let indices = ceremony.player_indices();
    if indices.len() != output.public.public_shares.len() {
        return Err(FrostError::ShareSetMismatch);
    }
    let shares = indices
        .iter()
        .zip(&output.public.public_shares)
        .map(|(x, share)| Ok((Identifier::new(*x)?, *share)))
        .collect::<Result<Vec<_>, FrostError>>()?;
    PublicKeyPackage::new(output.public.group_key, ceremony.t(), shares)
}

/// This participant's key package, if the ceremony made it a player with a share.
pub fn key_package(
    ceremony: &Ceremony<Secp256k1>,
    output: &DkgOutput<Secp256k1>,
) -> Result<Option<KeyPackage>, FrostError> {
    let (Some(position), Some(share)) = (output.player_index, output.secret_share.as_ref()) else {
        return Ok(None);
    };
    let index = ceremony
        .player_indices()
        .get(position as usize)
        .ok_or(FrostError::ShareSetMismatch)?;
    KeyPackage::new(
        Identifier::new(*index)?,
        share.clone(),
        output.public.group_key,
    )
    .map(Some)
}
