//! The crate's integration tests, one module per file, in one test binary (one link instead
//! of one per file).

mod beacon_views;
mod chain_view_changes;
mod common;
mod complaint_view_changes;
mod fuzz_store;
mod lost_database;
mod magic_block_checks;
mod replay;
mod signing_key;
mod status_and_metrics;
