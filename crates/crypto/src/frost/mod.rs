//! Threshold Schnorr signatures with keyquorum's secp256k1 keys: FROST(secp256k1, SHA-256) as
//! RFC 9591 specifies it, and a BIP-340 mode.
//!
//! The shares come from keyquorum's DKG (any `t` of the `n` participants can sign); signing
//! takes two rounds with a coordinator (RFC 9591 section 5):
//! 1. every signer draws a hiding and a binding nonce and publishes their commitments
//!    ([`nonce::commit`], section 5.1);
//! 2. the coordinator fixes the commitment list ([`commitment::CommitmentList`], section 4.3) and
//!    the message; each signer derives the binding factors ([`binding`], section 4.4), the group
//!    commitment (section 4.5) and the challenge ([`challenge`], section 4.6) into a
//!    [`sign::SigningContext`] and answers with its signature share ([`sign::sign`], section 5.2);
//! 3. the coordinator aggregates the shares and verifies the signature, checking each share and
//!    naming culprits when it fails ([`aggregate::aggregate_verified`], sections 5.3 and 5.4).
//!
//! [`ciphersuite`] holds the suite's hash functions and encodings (section 6.5). [`Mode`] selects
//! between RFC 9591's signature and BIP-340's (even-`y` key and nonce, tagged-hash challenge,
//! 64-byte signatures under a 32-byte x-only key, [`bip340`]).
//!
//! This module computes; it keeps no state and sends nothing. Keeping nonces single-use across
//! restarts and matching messages to senders is the protocol layer's job.

pub mod aggregate;
pub mod binding;
pub mod bip340;
pub mod challenge;
pub mod ciphersuite;
pub mod commitment;
pub mod error;
pub mod keys;
pub mod nonce;
pub mod sign;

pub use aggregate::{Signature, aggregate, aggregate_verified, verify};
pub use ciphersuite::Mode;
pub use commitment::{CommitmentList, SigningCommitments};
pub use error::FrostError;
pub use keys::{Identifier, KeyPackage, PublicKeyPackage};
pub use nonce::{SigningNonces, commit, commit_with_rng};
pub use sign::{SignatureShare, SigningContext, sign, verify_signature_share};
