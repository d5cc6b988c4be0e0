//! # keyquorum-signing
//!
//! Threshold Schnorr signing sessions with the secp256k1 shares of a keyquorum DKG: FROST as
//! RFC 9591 specifies it, or its BIP-340 mode (see `keyquorum_crypto::frost`). Deterministic and
//! free of I/O: randomness comes in as bytes, nonces go to a [`NonceStore`] the caller provides,
//! and round packages come in with the sender the transport authenticated.
//!
//! # Steps (RFC 9591 section 5)
//! 1. Round one (section 5.1): [`Signer::round1`] draws the hiding and binding nonces from the
//!    caller's randomness and the share (section 4.1), persists them in the store and only then
//!    returns the [`CommitmentPackage`]. A commitment is never out before its nonces are safe.
//! 2. The coordinator ([`Coordinator`]) collects commitments from known signers, one each, and
//!    once it has at least the threshold fixes the commitment list and the message in a
//!    [`SigningRequest`] (sections 4.3 and 5.2).
//! 3. Round two (section 5.2): [`Signer::round2`] checks the request's mode, that the list
//!    carries its commitment and reaches the threshold, then takes its nonces out of the store
//!    (they are gone from then on, whatever happens next) and returns its [`SharePackage`].
//! 4. The coordinator collects one share per listed signer, aggregates and verifies the signature
//!    (section 5.3); if it fails, it verifies every share and names the signers whose shares are
//!    invalid (section 5.4).
//!
//! # Modules
//! - [`keys`]: key packages from the output of a keyquorum DKG on secp256k1.
//! - [`messages`]: the round packages and their canonical, bounded encodings.
//! - [`store`]: the nonce store contract and an in-memory store.
//! - [`signer`]: the signer role.
//! - [`coordinator`]: the coordinator role.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod coordinator;
pub mod keys;
pub mod messages;
pub mod signer;
pub mod store;

pub use coordinator::{Coordinator, CoordinatorError, Rejected};
pub use messages::{CommitmentPackage, SessionId, SharePackage, SigningRequest, WireError};
pub use signer::{Signer, SignerError};
pub use store::{MemoryNonceStore, NonceStore, NonceStoreError};
