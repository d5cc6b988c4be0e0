//! Round one: nonce generation and commitment (RFC 9591 sections 4.1 and 5.1).
//!
//! `nonce_generate(secret) = H3(random_bytes || SerializeScalar(secret))` with 32 fresh random
//! bytes: the share is mixed in so that a weak random source alone does not expose the nonce.
//! `commit` draws a hiding nonce `d` and a binding nonce `e` this way and publishes
//! `(D, E) = (d G, e G)`.
//!
//! The randomness is an input, so the caller decides where it comes from (and tests can replay
//! the RFC's vectors). Nonces are single-use: [`super::sign::sign`] takes them by value and they
//! are wiped on drop; keeping a nonce out of a second signature once it has been persisted is
//! the job of the protocol layer's nonce store.

use core::fmt;

use k256::Scalar;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroize;

use super::ciphersuite::{Mode, h3, serialize_scalar};
use super::commitment::SigningCommitments;
use super::error::FrostError;
use crate::error::DecodeError;
use crate::group::Curve;
use crate::secp256k1::Secp256k1;
use crate::secret::{Secret, SecretBytes};

/// Length of [`SigningNonces::to_secret_bytes`].
pub const NONCES_LEN: usize = 64;

/// `nonce_generate` with the random bytes given.
pub fn nonce_generate(secret: &Secret<Scalar>, random_bytes: &[u8; 32]) -> Secret<Scalar> {
    let mut secret_enc = serialize_scalar(secret.expose());
    // H3 is the RFC ciphersuite's for both modes: a nonce is a uniform scalar either way.
    let nonce = h3(Mode::Rfc9591, &[random_bytes, &secret_enc]);
    secret_enc.zeroize();
    Secret::new(nonce)
}

/// A signer's hiding and binding nonces with their commitments. Not `Clone`: a nonce pair
/// signs once.
pub struct SigningNonces {
    hiding: Secret<Scalar>,
    binding: Secret<Scalar>,
    commitments: SigningCommitments,
}

impl fmt::Debug for SigningNonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningNonces")
            .field("hiding", &self.hiding)
            .field("binding", &self.binding)
            .field("commitments", &self.commitments)
            .finish()
    }
}

impl SigningNonces {
    /// Nonces from two scalars; zero nonces are refused (their commitment is the identity).
    pub fn from_scalars(
        hiding: Secret<Scalar>,
        binding: Secret<Scalar>,
    ) -> Result<Self, FrostError> {
        let commitments = SigningCommitments::new(
            group::Curve::to_affine(&Secp256k1::mul_generator_secret(hiding.expose())),
            group::Curve::to_affine(&Secp256k1::mul_generator_secret(binding.expose())),
        )
        .map_err(|_| FrostError::Decode(DecodeError::ZeroScalar))?;
        Ok(SigningNonces {
            hiding,
            binding,
            commitments,
        })
    }

    /// `d`.
    pub fn hiding(&self) -> &Secret<Scalar> {
        &self.hiding
    }

    /// `e`.
    pub fn binding(&self) -> &Secret<Scalar> {
        &self.binding
    }

    /// `(D, E)`.
    pub fn commitments(&self) -> &SigningCommitments {
        &self.commitments
    }

    /// `SerializeScalar(d) || SerializeScalar(e)`, for a nonce store.
    pub fn to_secret_bytes(&self) -> SecretBytes {
        let mut v = Vec::with_capacity(NONCES_LEN);
        v.extend_from_slice(&serialize_scalar(self.hiding.expose()));
        v.extend_from_slice(&serialize_scalar(self.binding.expose()));
        SecretBytes::new(v)
    }

    /// Reads [`SigningNonces::to_secret_bytes`] back (canonical, non-zero scalars).
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, FrostError> {
        crate::group::expect_len(bytes, NONCES_LEN)?;
        let hiding = Secret::new(Secp256k1::decode_scalar(&bytes[..32])?);
        let binding = Secret::new(Secp256k1::decode_scalar(&bytes[32..])?);
        Self::from_scalars(hiding, binding)
    }
}

/// `commit(sk_i)` with the two 32-byte random strings given: hiding then binding.
pub fn commit(
    signing_share: &Secret<Scalar>,
    hiding_randomness: &[u8; 32],
    binding_randomness: &[u8; 32],
) -> Result<SigningNonces, FrostError> {
    SigningNonces::from_scalars(
        nonce_generate(signing_share, hiding_randomness),
        nonce_generate(signing_share, binding_randomness),
    )
}

/// `commit(sk_i)` drawing the random strings from `rng`.
pub fn commit_with_rng<R: RngCore + CryptoRng>(
    signing_share: &Secret<Scalar>,
    rng: &mut R,
) -> Result<SigningNonces, FrostError> {
    let mut randomness = [0u8; 64];
    rng.fill_bytes(&mut randomness);
    let mut hiding = [0u8; 32];
    let mut binding = [0u8; 32];
    hiding.copy_from_slice(&randomness[..32]);
    binding.copy_from_slice(&randomness[32..]);
    let nonces = commit(signing_share, &hiding, &binding);
    randomness.zeroize();
    hiding.zeroize();
    binding.zeroize();
    nonces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_round_trip_through_bytes_and_stay_redacted() {
        let share = Secret::new(Scalar::from(77u64));
        let nonces = commit(&share, &[1u8; 32], &[2u8; 32]).unwrap();
        let bytes = nonces.to_secret_bytes();
        let back = SigningNonces::from_secret_bytes(bytes.expose()).unwrap();
        assert_eq!(back.commitments(), nonces.commitments());
        assert_eq!(back.hiding(), nonces.hiding());
        let text = format!("{nonces:?}");
        assert!(text.contains("<redacted>"));
        assert!(!text.contains(&hex::encode(serialize_scalar(nonces.hiding().expose()))));
        assert!(SigningNonces::from_secret_bytes(&[0u8; 64]).is_err());
        assert!(SigningNonces::from_secret_bytes(&bytes.expose()[..63]).is_err());
    }

    #[test]
    fn different_randomness_gives_different_nonces() {
        let share = Secret::new(Scalar::from(77u64));
        let a = commit(&share, &[1u8; 32], &[2u8; 32]).unwrap();
        let b = commit(&share, &[3u8; 32], &[2u8; 32]).unwrap();
        assert_ne!(a.hiding(), b.hiding());
        assert_eq!(a.binding(), b.binding());
    }
}
