//! The crate's integration tests, one module per file, in one test binary (one link instead
//! of one per file).

mod common;
mod from_dkg;
mod fuzz_decoders;
mod session;
mod vectors;
mod zf_interop;
mod zf_tr_interop;
