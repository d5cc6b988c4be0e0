//! The crate's integration tests, one module per file, in one test binary (one link instead
//! of one per file).

mod accounts;
mod common;
mod config_docs;
mod early_close;
mod flood;
mod follow;
mod fuzz_contract;
mod fuzz_magic_block;
mod rules;
mod vectors;
mod view_changes;
