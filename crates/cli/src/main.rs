//! `keyquorum`: command-line entry point.

use clap::Parser;

/// Distributed key generation and validator-set view changes for blockchains.
#[derive(Parser, Debug)]
#[command(name = "keyquorum", version, about, long_about = None)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
