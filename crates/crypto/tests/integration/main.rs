//! The crate's integration tests, one module per file, in one test binary (one link instead
//! of one per file).

mod encoding;
mod frost_signing;
mod kat_bls;
mod kat_frost;
mod kat_hash_to_curve;
mod kat_hpke;
mod secret_paths;
mod tbls;
mod verifiable_encrypt;
