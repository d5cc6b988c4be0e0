//! Test helper, not a product: runs a chain with the toy [`KvMachine`] so that integration tests
//! can kill a real process. Usage:
//!
//! `devchain-test-node --data DIR [--listen ADDR] [--block-ms MS] [--phase-len N] [--config FILE]`
//!
//! Prints `listening on ADDR` on stdout once the API is up, then runs until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use keyquorum_devchain::testkit::KvMachine;
use keyquorum_devchain::{Chain, ChainConfig, ChainConfigOverrides};

fn parse() -> Result<(Option<PathBuf>, ChainConfigOverrides, u64), String> {
    let mut args = std::env::args().skip(1);
    let mut file = None;
    let mut o = ChainConfigOverrides::default();
    let mut phase_len = 5;
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--data" => o.data_dir = Some(value.into()),
            "--config" => file = Some(value.into()),
            "--listen" => o.listen = Some(value.parse().map_err(|e| bad(&e))?),
            "--block-ms" => o.block_ms = Some(value.parse().map_err(|e| bad(&e))?),
            "--phase-len" => phase_len = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok((file, o, phase_len))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (file, overrides, phase_len) = match parse() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("usage error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = async {
        let config = ChainConfig::load(file.as_deref(), &overrides)?;
        let chain = Chain::start(config, KvMachine::new(phase_len)).await?;
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
