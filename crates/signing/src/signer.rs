//! The signer role: round one (commit, RFC 9591 section 5.1) and round two (sign, section 5.2).

use keyquorum_crypto::frost::{self, FrostError, KeyPackage, Mode, SigningContext, SigningNonces};
use thiserror::Error;

use crate::messages::{CommitmentPackage, SessionId, SharePackage, SigningRequest};
use crate::store::NonceStore;

/// Why a signer refused or failed a round.
#[derive(Debug, Error)]
pub enum SignerError<E: std::error::Error + 'static> {
    /// The nonce store failed; in round one nothing was released.
    #[error("nonce store: {0}")]
    Store(#[source] E),
    /// No stored nonces for the session: never committed, or already used.
    #[error("no unused nonces for this session")]
    NoncesUnavailable,
    /// The request asks for another signature mode than this signer's.
    #[error("request mode {requested:?}, signer mode {configured:?}")]
    ModeMismatch {
        /// The request's.
        requested: Mode,
        /// The signer's.
        configured: Mode,
    },
    /// The request lists fewer signers than the threshold.
    #[error("request lists {got} signers, threshold {needed}")]
    BelowThreshold {
        /// Threshold.
        needed: usize,
        /// Listed.
        got: usize,
    },
    /// FROST refused (own commitment missing or altered, bad list, ...).
    #[error(transparent)]
    Frost(#[from] FrostError),
}

/// One participant's signing role.
#[derive(Debug)]
pub struct Signer {
    key: KeyPackage,
    mode: Mode,
    threshold: usize,
}

impl Signer {
    /// A signer with its key package, the mode it signs in, and the group's threshold.
    pub fn new(key: KeyPackage, mode: Mode, threshold: usize) -> Self {
        Signer {
            key,
            mode,
            threshold,
        }
    }

    /// The key package.
    pub fn key(&self) -> &KeyPackage {
        &self.key
    }

    /// Round one: nonces from 64 bytes of caller randomness (hiding, then binding) mixed with
    /// the share, persisted in `store` before the commitments are returned.
    pub fn round1<S: NonceStore>(
        &self,
        session: SessionId,
        randomness: &[u8; 64],
        store: &mut S,
    ) -> Result<CommitmentPackage, SignerError<S::Error>> {
        let (hiding, binding) = randomness.split_at(32);
        let nonces = frost::commit(
            self.key.signing_share(),
            hiding.try_into().expect("32 of 64 bytes"),
            binding.try_into().expect("32 of 64 bytes"),
        )?;
        store
            .persist(&session, &nonces.to_secret_bytes())
            .map_err(SignerError::Store)?;
        Ok(CommitmentPackage {
            session,
            signer: self.key.identifier(),
            commitments: *nonces.commitments(),
        })
    }

    /// Round two: the share for `request`. A request refused on its face (another mode, a list
    /// without this signer's commitment or below the threshold) leaves the nonces in the store:
    /// nothing was computed with them. Past those checks the nonces are taken out before
    /// anything else, so they are spent even if the request then turns out to be invalid (a
    /// coordinator must not get to try two requests against one nonce pair that produced a
    /// share).
    pub fn round2<S: NonceStore>(
        &self,
        request: &SigningRequest,
        store: &mut S,
    ) -> Result<SharePackage, SignerError<S::Error>> {
        if request.mode != self.mode {
            return Err(SignerError::ModeMismatch {
                requested: request.mode,
                configured: self.mode,
            });
        }
        let id = self.key.identifier();
        if request.commitments.position(&id).is_none() {
            return Err(SignerError::Frost(FrostError::MissingCommitment(id)));
        }
        if request.commitments.len() < self.threshold {
            return Err(SignerError::BelowThreshold {
                needed: self.threshold,
                got: request.commitments.len(),
            });
        }
        let encoded = store
            .take(&request.session)
            .map_err(SignerError::Store)?
            .ok_or(SignerError::NoncesUnavailable)?;
        let nonces = SigningNonces::from_secret_bytes(encoded.expose())?;
        let ctx = SigningContext::new(
            self.mode,
            self.key.group_key(),
            &request.commitments,
            &request.message,
        )?;
        let share = frost::sign(&self.key, nonces, &ctx)?;
        Ok(SharePackage {
            session: request.session,
            signer: id,
            share,
        })
    }
}
