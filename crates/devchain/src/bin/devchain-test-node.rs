//! Test helper, not a product: runs a chain with the toy [`KvMachine`] so that integration tests
//! can kill a real process. Flags are spelled as in the `keyquorum` command (`--data-dir`,
//! `--http-listen`), and it exits as `keyquorum` does: 0 success, 1 the run failed, 2 usage
//! error (`--help` says so).
//!
//! Prints `listening on ADDR` on stdout once the API is up, then runs until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use keyquorum_devchain::testkit::KvMachine;
use keyquorum_devchain::{Chain, ChainConfig, ChainConfigOverrides};

/// The exit-code scheme of the `keyquorum` command, shown at the end of `--help`.
const EXIT_CODES: &str = "Exit status: 0 success; 1 the run failed (the data directory or port \
could not be used, the chain stopped on an error); 2 usage error (an unknown flag or value, or a \
configuration file that cannot be read or is invalid).";

/// Runs a development chain with the toy key-value state machine (for integration tests).
#[derive(Parser, Debug)]
#[command(name = "devchain-test-node", long_about = None, after_help = EXIT_CODES)]
struct Args {
    /// Data directory (blocks and pending transactions, in redb).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// HTTP API address (loopback), e.g. 127.0.0.1:0 for a free port.
    #[arg(long, value_name = "ADDR")]
    http_listen: Option<SocketAddr>,
    /// Milliseconds between blocks.
    #[arg(long)]
    block_ms: Option<u64>,
    /// Blocks per phase of the toy state machine.
    #[arg(long, default_value_t = 5)]
    phase_len: u64,
    /// Chain settings (TOML); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    // clap exits with 2 on a usage error and 0 after `--help`.
    let args = Args::parse();
    let overrides = ChainConfigOverrides {
        data_dir: args.data_dir,
        listen: args.http_listen,
        block_ms: args.block_ms,
        ..Default::default()
    };
    let config = match ChainConfig::load(args.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("devchain-test-node: {e}");
            return ExitCode::from(2);
        }
    };
    let result = async {
        let chain = Chain::start(config, KvMachine::new(args.phase_len)).await?;
        println!("listening on {}", chain.local_addr());
        chain.run_until_ctrl_c().await
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("devchain-test-node: {e}");
            ExitCode::FAILURE
        }
    }
}
