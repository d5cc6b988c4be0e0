//! The round packages of a signing session and their wire encodings.
//!
//! Every package names its session and, where a signer sends it, the signer; the receiving role
//! checks both against the session it runs and the sender the transport authenticated. The
//! encodings are fixed-layout and canonical (one encoding per value) and the decoders take
//! explicit bounds on the message length and the number of signers.
//!
//! Layouts (big-endian integers):
//! - commitment package: `0x01 || session (32) || signer (32) || D (33) || E (33)`;
//! - signing request: `0x02 || session (32) || mode (1) || message length (u32) || message ||
//!   encode_group_commitment_list(L)` (RFC 9591 section 4.3);
//! - share package: `0x03 || session (32) || signer (32) || z_i (32)`.

use keyquorum_crypto::error::DecodeError;
use keyquorum_crypto::frost::commitment::COMMITMENTS_LEN;
use keyquorum_crypto::frost::{
    CommitmentList, FrostError, Identifier, Mode, SignatureShare, SigningCommitments,
};
use thiserror::Error;

const COMMITMENT_TAG: u8 = 1;
const REQUEST_TAG: u8 = 2;
const SHARE_TAG: u8 = 3;

/// Length of an encoded [`CommitmentPackage`].
pub const COMMITMENT_PACKAGE_LEN: usize = 1 + 32 + 32 + COMMITMENTS_LEN;
/// Length of an encoded [`SharePackage`].
pub const SHARE_PACKAGE_LEN: usize = 1 + 32 + 32 + 32;

/// Identifies one signing operation; the nonces of a session sign in that session only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub [u8; 32]);

/// Why bytes are not a valid round package.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// The first byte does not name this package type.
    #[error("unexpected package tag {0}")]
    Tag(u8),
    /// Wrong total length.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The mode byte names no mode.
    #[error("unknown mode {0}")]
    Mode(u8),
    /// A field failed FROST's validation (identifier, points, scalars, list order and bounds).
    #[error(transparent)]
    Frost(#[from] FrostError),
}

fn expect_len(bytes: &[u8], expected: usize) -> Result<(), WireError> {
    if bytes.len() != expected {
        return Err(WireError::Decode(DecodeError::Length {
            expected,
            actual: bytes.len(),
        }));
    }
    Ok(())
}

fn expect_tag(bytes: &[u8], tag: u8) -> Result<(), WireError> {
    match bytes.first() {
        Some(t) if *t == tag => Ok(()),
        Some(t) => Err(WireError::Tag(*t)),
        None => Err(WireError::Decode(DecodeError::Length {
            expected: 1,
            actual: 0,
        })),
    }
}

fn session_from(bytes: &[u8]) -> SessionId {
    let mut s = [0u8; 32];
    s.copy_from_slice(&bytes[..32]);
    SessionId(s)
}

/// Round one, signer to coordinator: the signer's nonce commitments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitmentPackage {
    /// The session.
    pub session: SessionId,
    /// The signer.
    pub signer: Identifier,
    /// `(D_i, E_i)`.
    pub commitments: SigningCommitments,
}

impl CommitmentPackage {
    /// The wire encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(COMMITMENT_PACKAGE_LEN);
        out.push(COMMITMENT_TAG);
        out.extend_from_slice(&self.session.0);
        out.extend_from_slice(&self.signer.to_bytes());
        out.extend_from_slice(&self.commitments.to_bytes());
        out
    }

    /// Decodes and validates the wire encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        expect_tag(bytes, COMMITMENT_TAG)?;
        expect_len(bytes, COMMITMENT_PACKAGE_LEN)?;
        Ok(CommitmentPackage {
            session: session_from(&bytes[1..]),
            signer: Identifier::from_bytes(&bytes[33..65])?,
            commitments: SigningCommitments::from_bytes(&bytes[65..])?,
        })
    }
}

/// Coordinator to signers: what to sign, in which mode, with which commitments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningRequest {
    /// The session.
    pub session: SessionId,
    /// The signature to produce.
    pub mode: Mode,
    /// The message.
    pub message: Vec<u8>,
    /// The commitment list: the signers and their commitments.
    pub commitments: CommitmentList,
}

fn mode_byte(mode: Mode) -> u8 {
    match mode {
        Mode::Rfc9591 => 1,
        Mode::Bip340 => 2,
    }
}

impl SigningRequest {
    /// The wire encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let list = self.commitments.encode();
        let mut out = Vec::with_capacity(1 + 32 + 1 + 4 + self.message.len() + list.len());
        out.push(REQUEST_TAG);
        out.extend_from_slice(&self.session.0);
        out.push(mode_byte(self.mode));
        // Messages longer than u32::MAX cannot be sent; the decoder's bound is far below it.
        out.extend_from_slice(&(self.message.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.message);
        out.extend_from_slice(&list);
        out
    }

    /// Decodes and validates the wire encoding: a message of at most `max_message_len` bytes
    /// and a canonical commitment list of at most `max_signers` entries.
    pub fn from_bytes(
        bytes: &[u8],
        max_message_len: usize,
        max_signers: usize,
    ) -> Result<Self, WireError> {
        expect_tag(bytes, REQUEST_TAG)?;
        if bytes.len() < 1 + 32 + 1 + 4 {
            return Err(WireError::Decode(DecodeError::Length {
                expected: 38,
                actual: bytes.len(),
            }));
        }
        let session = session_from(&bytes[1..]);
        let mode = match bytes[33] {
            1 => Mode::Rfc9591,
            2 => Mode::Bip340,
            other => return Err(WireError::Mode(other)),
        };
        let mut len = [0u8; 4];
        len.copy_from_slice(&bytes[34..38]);
        let message_len = u32::from_be_bytes(len) as usize;
        if message_len > max_message_len {
            return Err(WireError::Decode(DecodeError::TooLong {
                what: "message",
                max: max_message_len,
                actual: message_len,
            }));
        }
        let rest = &bytes[38..];
        if rest.len() < message_len {
            return Err(WireError::Decode(DecodeError::Length {
                expected: 38 + message_len,
                actual: bytes.len(),
            }));
        }
        let (message, list) = rest.split_at(message_len);
        Ok(SigningRequest {
            session,
            mode,
            message: message.to_vec(),
            commitments: CommitmentList::from_bytes(list, max_signers)?,
        })
    }
}

/// Round two, signer to coordinator: the signer's signature share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharePackage {
    /// The session.
    pub session: SessionId,
    /// The signer.
    pub signer: Identifier,
    /// `z_i`.
    pub share: SignatureShare,
}

impl SharePackage {
    /// The wire encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SHARE_PACKAGE_LEN);
        out.push(SHARE_TAG);
        out.extend_from_slice(&self.session.0);
        out.extend_from_slice(&self.signer.to_bytes());
        out.extend_from_slice(&self.share.to_bytes());
        out
    }

    /// Decodes and validates the wire encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        expect_tag(bytes, SHARE_TAG)?;
        expect_len(bytes, SHARE_PACKAGE_LEN)?;
        Ok(SharePackage {
            session: session_from(&bytes[1..]),
            signer: Identifier::from_bytes(&bytes[33..65])?,
            share: SignatureShare::from_bytes(&bytes[65..])?,
        })
    }
}
