//! # keyquorum-crypto
//!
//! The cryptographic core of keyquorum, usable on its own: prime-order groups (BLS12-381 G1/G2 on
//! `blst`, secp256k1 on `k256`) behind one [`Curve`] trait, polynomials and Lagrange interpolation,
//! Feldman and Pedersen commitments with batched share verification, participant indices, threshold
//! BLS signatures in both layouts, FROST threshold Schnorr signatures on secp256k1 (RFC 9591 and
//! BIP-340), proof-of-possession aggregate signatures, and HPKE share
//! encryption.
//!
//! Nothing here knows about protocols: the DKG state machines live in `keyquorum-dkg`.

#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod aggregate;
pub mod batch;
pub mod bls12381;
pub mod commit;
pub mod encrypt;
pub mod error;
mod fixed_base;
pub mod frost;
pub mod group;
pub mod hash;
pub mod index;
pub mod msm;
pub mod pairing;
pub mod poly;
pub mod secp256k1;
pub mod secret;
pub mod tbls;
pub mod verifiable_encrypt;

pub use bls12381::{Bls12381G1, Bls12381G2};
pub use error::{CryptoError, DecodeError};
pub use group::Curve;
pub use secp256k1::Secp256k1;
