//! The crate's integration tests, one module per file, in one test binary (one link instead
//! of one per file). `tests/chain_view_changes.rs` is a binary of its own: it runs the chain
//! in real time (100 ms blocks), so it must not share the CPU with this suite's heavy tests.

mod account;
mod ack_view_catch_up;
mod activation_turns;
mod beacon_views;
mod chain_replica;
mod chain_unreachable;
mod common;
mod complaint_early_close;
mod complaint_view_changes;
mod data_dir_binding;
mod deregistration;
mod eviction;
mod evm_chain_name;
mod fault_proofs;
mod fuzz_store;
mod lost_database;
mod magic_block_checks;
mod replay;
mod replay_logs;
mod restored_from_backup;
mod signing_key;
mod signing_key_catch_up;
mod signing_key_faults;
mod signing_key_reshare;
mod spec_checks;
mod status_and_metrics;
mod unbonding_claim;
mod unconfirmed_send;
mod view_catch_up;
