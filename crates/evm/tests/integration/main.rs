//! The crate's integration tests, one module per file, in one test binary (one link instead
//! of one per file).

mod anvil;
mod common;
mod consumer;
mod coordinator;
mod gas;
mod reshare;
