//! The crate's integration tests, one module per file, in one test binary (one link instead
//! of one per file).

mod account_processes;
mod beacon;
mod beacon_processes;
mod beacon_status;
mod beacon_sync;
mod cli;
mod common;
mod complaint_processes;
mod demo;
mod demo_anvil;
mod dependency_features;
mod deploy;
mod msrv;
mod node_processes;
mod sections;
mod sections_catch_up_processes;
mod sections_processes;
mod sections_restart_processes;
mod sections_split_processes;
mod signing_key_processes;
