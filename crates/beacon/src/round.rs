//! One round of a chain in drand's JSON format, and its verification.
//!
//! drand's `/public/{round}` and `/public/latest` answer
//! `{"round": r, "randomness": hex, "signature": hex, "previous_signature": hex}`; unchained
//! schemes leave out `previous_signature`, and drand's v2 API leaves out `randomness` (it is
//! `sha256(signature)`, so nothing is lost). Decoding bounds every field; when `randomness` is
//! present it must be `sha256(signature)`.
//!
//! [`verify_round`] verifies drand's published rounds and every round keyquorum takes from
//! another node. The round engine checks a round it combines with the same message
//! ([`scheme::round_message`]) and signature check under the chain's key before it outputs it.

use serde::{Deserialize, Serialize};

use crate::error::{RoundDecodeError, VerifyError};
use crate::hexfield::{decode_bounded, decode_exact};
use crate::info::ChainInfo;
use crate::scheme::{
    self, BlsUnchainedG1Rfc9380, BlsUnchainedOnG1, DrandScheme, PedersenBlsChained,
    PedersenBlsUnchained, SchemeId,
};

/// Upper bound on the size of a round's JSON accepted by [`Round::from_json`].
pub const MAX_ROUND_JSON: usize = 4 * 1024;
/// Longest signature of any scheme (a compressed G2 point).
pub const MAX_SIGNATURE_LEN: usize = 96;

/// A round as stored and served: its number, its signature and, in a chained scheme, the
/// signature it chains to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    /// Round number (1 is the first signed round).
    pub round: u64,
    /// The group's signature (compressed).
    pub signature: Vec<u8>,
    /// Chained scheme: round `r - 1`'s signature, or the genesis seed for round 1.
    pub previous_signature: Option<Vec<u8>>,
}

impl Round {
    /// `sha256(signature)`.
    pub fn randomness(&self) -> [u8; 32] {
        scheme::randomness(&self.signature)
    }

    /// Encodes as drand's v1 JSON (with `randomness`; `previous_signature` only when present).
    pub fn to_json(&self) -> String {
        let wire = RoundJson {
            round: self.round,
            randomness: Some(hex::encode(self.randomness())),
            signature: hex::encode(&self.signature),
            previous_signature: self.previous_signature.as_ref().map(hex::encode),
        };
        serde_json::to_string(&wire).expect("round serialises")
    }

    /// Decodes drand round JSON (v1 or v2), bounded and checked as the module describes. An
    /// empty `previous_signature` is read as absent.
    pub fn from_json(bytes: &[u8]) -> Result<Self, RoundDecodeError> {
        if bytes.len() > MAX_ROUND_JSON {
            return Err(RoundDecodeError::TooLarge {
                max: MAX_ROUND_JSON,
                actual: bytes.len(),
            });
        }
        let wire: RoundJson =
            serde_json::from_slice(bytes).map_err(|e| RoundDecodeError::Json(e.to_string()))?;
        let signature = decode_bounded(&wire.signature, MAX_SIGNATURE_LEN).map_err(|error| {
            RoundDecodeError::Hex {
                field: "signature",
                error,
            }
        })?;
        let previous_signature = match wire.previous_signature.as_deref() {
            None | Some("") => None,
            Some(s) => Some(decode_bounded(s, MAX_SIGNATURE_LEN).map_err(|error| {
                RoundDecodeError::Hex {
                    field: "previous_signature",
                    error,
                }
            })?),
        };
        let round = Round {
            round: wire.round,
            signature,
            previous_signature,
        };
        if let Some(r) = wire.randomness.as_deref() {
            let published = decode_exact(r, 32).map_err(|error| RoundDecodeError::Hex {
                field: "randomness",
                error,
            })?;
            if published != round.randomness() {
                return Err(RoundDecodeError::RandomnessMismatch);
            }
        }
        Ok(round)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct RoundJson {
    round: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    randomness: Option<String>,
    signature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_signature: Option<String>,
}

/// Verifies `round` against `info` under the info's scheme and returns its randomness.
///
/// Checks: the round is not 0; the signature has the scheme's length, decodes canonically into
/// the subgroup and verifies under the group key on the scheme's message; a chained round
/// carries the previous signature (the genesis seed for round 1, a signature's length after
/// that), an unchained one carries none.
pub fn verify_round(info: &ChainInfo, round: &Round) -> Result<[u8; 32], VerifyError> {
    match info.scheme() {
        SchemeId::PedersenBlsChained => verify_as::<PedersenBlsChained>(info, round),
        SchemeId::PedersenBlsUnchained => verify_as::<PedersenBlsUnchained>(info, round),
        SchemeId::BlsUnchainedG1Rfc9380 => verify_as::<BlsUnchainedG1Rfc9380>(info, round),
        SchemeId::BlsUnchainedOnG1 => verify_as::<BlsUnchainedOnG1>(info, round),
    }
}

/// [`verify_round`] for a round that must be round `expected` (what a client asked for).
pub fn verify_round_number(
    info: &ChainInfo,
    round: &Round,
    expected: u64,
) -> Result<[u8; 32], VerifyError> {
    if round.round != expected {
        return Err(VerifyError::WrongRound {
            expected,
            actual: round.round,
        });
    }
    verify_round(info, round)
}

fn verify_as<S: DrandScheme>(info: &ChainInfo, round: &Round) -> Result<[u8; 32], VerifyError> {
    let scheme = S::ID;
    debug_assert_eq!(scheme, info.scheme());
    if round.round == 0 {
        return Err(VerifyError::RoundZero);
    }
    if round.signature.len() != scheme.signature_len() {
        return Err(VerifyError::SignatureLength {
            scheme,
            expected: scheme.signature_len(),
            actual: round.signature.len(),
        });
    }
    let previous: &[u8] = if scheme.is_chained() {
        let prev = round
            .previous_signature
            .as_deref()
            .ok_or(VerifyError::MissingPreviousSignature(round.round))?;
        let possible = if round.round == 1 {
            prev == info.group_hash()
        } else {
            prev.len() == scheme.signature_len()
        };
        if !possible {
            return Err(VerifyError::BadPreviousSignature(round.round));
        }
        prev
    } else {
        if round.previous_signature.is_some() {
            return Err(VerifyError::UnexpectedPreviousSignature(round.round));
        }
        &[]
    };
    let message = scheme::round_message(scheme, previous, round.round);
    scheme::verify_bytes::<S>(info.public_key(), &message, &round.signature)?;
    Ok(round.randomness())
}
