//! Validator identity abstraction.
//!
//! A validator is known on chain by its identity key (BLS in keyquorum), not
//! by its libp2p key. The network layer only needs to sign its own address
//! record and check other nodes' records, so it takes the scheme as two small
//! traits instead of depending on a concrete signature crate: the crypto
//! stays in `keyquorum-crypto`, and tests can plug in a cheap scheme.

use std::sync::Arc;

/// Signs address records on behalf of the local validator.
pub trait IdentitySigner: Send + Sync + 'static {
    /// Encoded identity public key, as other validators know it from the chain.
    fn public_key(&self) -> Vec<u8>;
    /// Signature over `msg` that [`IdentityVerifier::verify`] accepts for
    /// [`IdentitySigner::public_key`].
    fn sign(&self, msg: &[u8]) -> Vec<u8>;
}

/// Checks signatures made by some validator's [`IdentitySigner`].
///
/// Implementations must return `false` (never panic) on malformed keys or
/// signatures: both come straight from the network.
pub trait IdentityVerifier: Send + Sync + 'static {
    fn verify(&self, public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool;
}

impl<F> IdentityVerifier for F
where
    F: Fn(&[u8], &[u8], &[u8]) -> bool + Send + Sync + 'static,
{
    fn verify(&self, public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        self(public_key, msg, sig)
    }
}

/// Shared signer, as stored in the configuration.
pub type SharedSigner = Arc<dyn IdentitySigner>;
/// Shared verifier, as stored in the configuration.
pub type SharedVerifier = Arc<dyn IdentityVerifier>;
