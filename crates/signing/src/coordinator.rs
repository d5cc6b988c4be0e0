//! The coordinator role: collects commitments, fixes the signing request, collects shares,
//! aggregates and verifies (RFC 9591 sections 5.2 to 5.4).
//!
//! Every package comes with the sender the transport authenticated; a package whose signer field
//! is another participant, whose session is another one, or from someone without a verifying
//! share is rejected with a typed reason and changes nothing. Each signer counts once per round,
//! and no more than the group's participants can be collected, so memory is bounded by the group.

use std::collections::BTreeMap;

use keyquorum_crypto::frost::{
    self, CommitmentList, FrostError, Identifier, Mode, PublicKeyPackage, Signature,
    SignatureShare, SigningCommitments, SigningContext,
};
use thiserror::Error;

use crate::messages::{CommitmentPackage, SessionId, SharePackage, SigningRequest};

/// Why a package was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Rejected {
    /// The package is for another session.
    #[error("package for another session")]
    WrongSession,
    /// The package names a signer other than its authenticated sender.
    #[error("package names {claimed:?} but came from {sender:?}")]
    SenderMismatch {
        /// The signer field.
        claimed: Identifier,
        /// The authenticated sender.
        sender: Identifier,
    },
    /// The sender holds no share of this group key.
    #[error("{0:?} is not a participant")]
    UnknownSigner(Identifier),
    /// The sender already sent this round's package.
    #[error("{0:?} already sent this round's package")]
    Duplicate(Identifier),
    /// The sender is not in the commitment list of the request.
    #[error("{0:?} is not a signer of this request")]
    NotListed(Identifier),
    /// The package belongs to a round that is not running.
    #[error("package for a round that is not running")]
    WrongRound,
}

/// Why the coordinator cannot move on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CoordinatorError {
    /// Fewer commitments than the threshold.
    #[error("{got} commitments, threshold {needed}")]
    NotEnoughCommitments {
        /// Threshold.
        needed: usize,
        /// Collected.
        got: usize,
    },
    /// The step does not belong to the current round.
    #[error("not in the round this step belongs to")]
    WrongRound,
    /// Listed signers whose shares have not arrived.
    #[error("shares missing from {0:?}")]
    MissingShares(Vec<Identifier>),
    /// FROST refused; `InvalidSignatureShares` names the culprits.
    #[error(transparent)]
    Frost(#[from] FrostError),
}

enum Round {
    Commitments(BTreeMap<Identifier, SigningCommitments>),
    Shares {
        ctx: Box<SigningContext>,
        shares: BTreeMap<Identifier, SignatureShare>,
    },
}

/// The coordinator of one signing session.
pub struct Coordinator {
    session: SessionId,
    mode: Mode,
    public: PublicKeyPackage,
    message: Vec<u8>,
    round: Round,
}

impl Coordinator {
    /// A session signing `message` under `public`'s group key in `mode`.
    pub fn new(session: SessionId, mode: Mode, public: PublicKeyPackage, message: Vec<u8>) -> Self {
        Coordinator {
            session,
            mode,
            public,
            message,
            round: Round::Commitments(BTreeMap::new()),
        }
    }

    fn check_sender(
        &self,
        sender: Identifier,
        session: SessionId,
        signer: Identifier,
    ) -> Result<(), Rejected> {
        if session != self.session {
            return Err(Rejected::WrongSession);
        }
        if signer != sender {
            return Err(Rejected::SenderMismatch {
                claimed: signer,
                sender,
            });
        }
        self.public
            .verifying_share(&sender)
            .map_err(|_| Rejected::UnknownSigner(sender))?;
        Ok(())
    }

    /// Round one: a signer's commitments, from the authenticated `sender`.
    pub fn on_commitment(
        &mut self,
        sender: Identifier,
        package: &CommitmentPackage,
    ) -> Result<(), Rejected> {
        self.check_sender(sender, package.session, package.signer)?;
        let Round::Commitments(collected) = &mut self.round else {
            return Err(Rejected::WrongRound);
        };
        if collected.contains_key(&sender) {
            return Err(Rejected::Duplicate(sender));
        }
        collected.insert(sender, package.commitments);
        Ok(())
    }

    /// Number of commitments collected so far.
    pub fn commitments_collected(&self) -> usize {
        match &self.round {
            Round::Commitments(c) => c.len(),
            Round::Shares { ctx, .. } => ctx.commitment_list().len(),
        }
    }

    /// Ends round one with every commitment collected (at least the threshold) and returns the
    /// request to send to the listed signers.
    pub fn signing_request(&mut self) -> Result<SigningRequest, CoordinatorError> {
        let Round::Commitments(collected) = &self.round else {
            return Err(CoordinatorError::WrongRound);
        };
        if collected.len() < self.public.threshold() {
            return Err(CoordinatorError::NotEnoughCommitments {
                needed: self.public.threshold(),
                got: collected.len(),
            });
        }
        let list = CommitmentList::new(
            collected.iter().map(|(id, c)| (*id, *c)).collect(),
            self.public.participants(),
        )?;
        let ctx = SigningContext::new(self.mode, self.public.group_key(), &list, &self.message)?;
        self.round = Round::Shares {
            ctx: Box::new(ctx),
            shares: BTreeMap::new(),
        };
        Ok(SigningRequest {
            session: self.session,
            mode: self.mode,
            message: self.message.clone(),
            commitments: list,
        })
    }

    /// Round two: a signer's share, from the authenticated `sender`.
    pub fn on_share(&mut self, sender: Identifier, package: &SharePackage) -> Result<(), Rejected> {
        self.check_sender(sender, package.session, package.signer)?;
        let Round::Shares { ctx, shares } = &mut self.round else {
            return Err(Rejected::WrongRound);
        };
        if ctx.commitment_list().position(&sender).is_none() {
            return Err(Rejected::NotListed(sender));
        }
        if shares.contains_key(&sender) {
            return Err(Rejected::Duplicate(sender));
        }
        shares.insert(sender, package.share);
        Ok(())
    }

    /// Once every listed signer's share is in: the verified signature, or the signers whose
    /// shares are invalid.
    pub fn finish(&self) -> Result<Signature, CoordinatorError> {
        let Round::Shares { ctx, shares } = &self.round else {
            return Err(CoordinatorError::WrongRound);
        };
        let missing: Vec<Identifier> = ctx
            .commitment_list()
            .participants()
            .into_iter()
            .filter(|id| !shares.contains_key(id))
            .collect();
        if !missing.is_empty() {
            return Err(CoordinatorError::MissingShares(missing));
        }
        let shares: Vec<(Identifier, SignatureShare)> =
            shares.iter().map(|(id, s)| (*id, *s)).collect();
        Ok(frost::aggregate_verified(ctx, &self.public, &shares)?)
    }
}
