//! The crate's integration tests, one module per file, in one test binary (one link instead
//! of one per file).

mod common;
mod crash;
mod fuzz_client;
mod http_api;
mod persistence;
mod replay;
mod resubmit;
mod test_node_cli;
