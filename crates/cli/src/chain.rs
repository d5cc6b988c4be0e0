//! `keyquorum chain`: the embedded chain running the view-change contract.
//!
//! The chain (`keyquorum-devchain`) is generic over a deterministic state machine; this module
//! runs the coordinator contract (`keyquorum-contract`) in it through the node crate's adapter,
//! [`keyquorum_node::ContractMachine`]. Chain settings come from `--config` (devchain's TOML)
//! and flags; contract settings from `--contract` (TOML, the contract's `ContractConfig`) or
//! Züs-like defaults.

use std::path::PathBuf;

use clap::Args;
use keyquorum_contract::{Contract, ContractConfig};
use keyquorum_devchain::{ChainConfig, ChainConfigOverrides};
use keyquorum_node::ContractMachine;

/// Arguments of `keyquorum chain`.
#[derive(Args, Debug, Clone)]
pub struct ChainArgs {
    /// Data directory (blocks and pending transactions, in redb).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// HTTP API address (loopback).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Milliseconds between blocks.
    #[arg(long)]
    pub block_ms: Option<u64>,
    /// Chain settings (TOML); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Contract settings (TOML: chain id, committee size, thresholds, phase lengths, slashing).
    #[arg(long)]
    pub contract: Option<PathBuf>,
    /// Largest committee when no contract file is given.
    #[arg(long, default_value_t = 7)]
    pub committee: u32,
    /// Chain id when no contract file is given.
    #[arg(long, default_value = "keyquorum-dev")]
    pub chain_id: String,
}

/// Loads the chain and contract configuration from the arguments.
pub fn load(args: &ChainArgs) -> Result<(ChainConfig, ContractConfig), String> {
    let overrides = ChainConfigOverrides {
        data_dir: args.data.clone(),
        listen: args.listen,
        block_ms: args.block_ms,
        ..Default::default()
    };
    let chain = ChainConfig::load(args.config.as_deref(), &overrides).map_err(|e| e.to_string())?;
    let contract = match &args.contract {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            toml::from_str::<ContractConfig>(&text)
                .map_err(|e| format!("parsing {}: {e}", path.display()))?
        }
        None => ContractConfig::defaults(&args.chain_id, args.committee),
    };
    contract.validate().map_err(|e| e.to_string())?;
    Ok((chain, contract))
}

/// Runs the chain until Ctrl-C / SIGTERM.
pub fn run(args: ChainArgs) -> Result<(), String> {
    let (chain, contract) = load(&args)?;
    let machine = ContractMachine(Contract::new(contract).map_err(|e| e.to_string())?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        eprintln!(
            "keyquorum chain: data {} listening on http://{} block every {} ms",
            chain.data_dir.display(),
            chain.listen,
            chain.block_ms
        );
        keyquorum_devchain::run_until_ctrl_c(chain, machine)
            .await
            .map_err(|e| e.to_string())
    })
}
