//! `keyquorum deploy`: the coordinator contract (`contracts/src/Coordinator.sol`, the committed
//! artifact `keyquorum-evm` embeds) deployed on an EVM chain over JSON-RPC; its constructor
//! creates the `Bls12381Verifier` contract it calls.
//!
//! The contract's parameters are its constructor's `Config`, read from `--config` (TOML, the
//! fields below in snake case; every one has a default); the deploying account pays the gas and
//! has no further role (the contract has no owner). Prints the address, and the block it was
//! created in, where nodes start following its logs.

use std::path::PathBuf;

use clap::Args;
use keyquorum_contract::{BeaconConfig, BeaconScheme, KeyMode};
use keyquorum_dkg::Params;
use keyquorum_evm::Coordinator;
use keyquorum_evm::Coordinator::CoordinatorErrors;
use keyquorum_evm::alloy_primitives::{Bytes, U256};
use keyquorum_evm::client::{ClientError, Revert, deploy};
use keyquorum_node::cli::CliError;
use serde::Deserialize;

/// Arguments of `keyquorum deploy`.
#[derive(Args, Debug, Clone)]
pub struct DeployArgs {
    /// The chain's JSON-RPC endpoint (http:// or https://).
    #[arg(long, value_name = "URL")]
    pub rpc: String,
    /// File holding the deploying account's secp256k1 private key (hex).
    #[arg(long, value_name = "FILE", conflicts_with = "key")]
    pub key_file: Option<PathBuf>,
    /// The deploying account's secp256k1 private key (hex). Visible to other local users in
    /// the process list: for development chains; prefer --key-file.
    #[arg(long, value_name = "HEX")]
    pub key: Option<String>,
    /// The contract's parameters (TOML, every field optional): chain_name, max_size,
    /// min_size, threshold_percent, quorum_percent, keep_previous_percent, min_stake (wei),
    /// contribute_blocks, share_blocks, publish_blocks, wait_blocks (phase lengths in blocks),
    /// first_view_change, view_length, unbonding_blocks, misbehaviour_percent,
    /// reporter_percent, beacon_scheme, beacon_period, key_mode (reshare or fresh).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override the file's `beacon_scheme` and `beacon_period`.
    #[command(flatten)]
    pub beacon: crate::chain::BeaconArgs,
}

/// The constructor's `Config`, with defaults for a small test network.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeployConfig {
    /// The chain name every ceremony and magic block binds (the devchain's chain id).
    pub chain_name: String,
    /// Largest committee.
    pub max_size: u32,
    /// Smallest committee a view change starts with.
    pub min_size: u32,
    /// Threshold, percent of the committee (rounded up).
    pub threshold_percent: u8,
    /// Dealer quorum, percent of the committee (rounded up).
    pub quorum_percent: u8,
    /// Seats kept for members of the active view, percent.
    pub keep_previous_percent: u8,
    /// Least stake (wei) to be eligible.
    pub min_stake: u128,
    /// Phase lengths in blocks.
    pub contribute_blocks: u64,
    /// See `contribute_blocks`.
    pub share_blocks: u64,
    /// See `contribute_blocks`.
    pub publish_blocks: u64,
    /// See `contribute_blocks`.
    pub wait_blocks: u64,
    /// First block at which the first view change may start.
    pub first_view_change: u64,
    /// Blocks from a view's first round to the next view change.
    pub view_length: u64,
    /// Blocks before unbonded stake can be withdrawn.
    pub unbonding_blocks: u64,
    /// Share of a culprit's stake slashed on a fraud proof, percent.
    pub misbehaviour_percent: u8,
    /// Share of the slashed amount paid to the reporter, percent.
    pub reporter_percent: u8,
    /// The random beacon's scheme (drand's id), which every magic block names.
    pub beacon_scheme: BeaconScheme,
    /// Seconds between beacon rounds, 1 to 3600.
    pub beacon_period: u32,
    /// `reshare` (the default, as on the embedded chain): view 1 makes a fresh key and every
    /// later view reshares it; `fresh`: every view makes a new key.
    pub key_mode: KeyMode,
}

impl Default for DeployConfig {
    fn default() -> Self {
        DeployConfig {
            chain_name: "keyquorum-evm".into(),
            max_size: 7,
            min_size: 4,
            threshold_percent: 67,
            quorum_percent: 75,
            keep_previous_percent: 50,
            min_stake: 1,
            contribute_blocks: 20,
            share_blocks: 20,
            publish_blocks: 20,
            wait_blocks: 20,
            first_view_change: 0,
            view_length: 200,
            unbonding_blocks: 100,
            misbehaviour_percent: 50,
            reporter_percent: 10,
            beacon_scheme: BeaconConfig::default().scheme,
            beacon_period: BeaconConfig::default().period_secs,
            key_mode: KeyMode::Reshare,
        }
    }
}

impl DeployConfig {
    /// The constructor's argument.
    pub fn contract_config(&self) -> Coordinator::Config {
        Coordinator::Config {
            chainId: Bytes::from(self.chain_name.clone().into_bytes()),
            maxSize: self.max_size,
            minSize: self.min_size,
            thresholdPercent: self.threshold_percent,
            quorumPercent: self.quorum_percent,
            keepPreviousPercent: self.keep_previous_percent,
            minStake: U256::from(self.min_stake),
            contributeBlocks: self.contribute_blocks,
            shareBlocks: self.share_blocks,
            publishBlocks: self.publish_blocks,
            waitBlocks: self.wait_blocks,
            firstViewChange: self.first_view_change,
            viewLength: self.view_length,
            unbondingBlocks: self.unbonding_blocks,
            misbehaviourPercent: self.misbehaviour_percent,
            reporterPercent: self.reporter_percent,
            beaconScheme: self.beacon_scheme.tag(),
            beaconPeriod: self.beacon_period,
            keyMode: keyquorum_evm::key_mode_tag(self.key_mode),
        }
    }

    /// Refuses what the constructor refuses (`BadConfig`), by the key's name, before anything
    /// is sent, and a `min_stake` of 0 (as the embedded chain does: a seat held without stake
    /// risks nothing); then [`DeployConfig::check_thresholds`].
    pub fn check(&self) -> Result<(), String> {
        if self.chain_name.is_empty() || self.chain_name.len() > 64 {
            return Err(format!(
                "chain_name must be 1 to 64 bytes, not {}",
                self.chain_name.len()
            ));
        }
        if self.min_size == 0 || self.min_size > self.max_size || self.max_size > 256 {
            return Err(format!(
                "committee sizes must satisfy 1 <= min_size <= max_size <= 256, not min_size {} \
                 and max_size {}",
                self.min_size, self.max_size
            ));
        }
        for (key, value) in [
            ("threshold_percent", self.threshold_percent),
            ("quorum_percent", self.quorum_percent),
        ] {
            if value == 0 || value > 100 {
                return Err(format!("{key} must be 1 to 100, not {value}"));
            }
        }
        for (key, value) in [
            ("keep_previous_percent", self.keep_previous_percent),
            ("misbehaviour_percent", self.misbehaviour_percent),
            ("reporter_percent", self.reporter_percent),
        ] {
            if value > 100 {
                return Err(format!("{key} must be 0 to 100, not {value}"));
            }
        }
        for (key, value) in [
            ("contribute_blocks", self.contribute_blocks),
            ("share_blocks", self.share_blocks),
            ("publish_blocks", self.publish_blocks),
            ("wait_blocks", self.wait_blocks),
            ("view_length", self.view_length),
        ] {
            if value == 0 {
                return Err(format!("{key} must be at least 1"));
            }
        }
        if self.unbonding_blocks == 0 {
            return Err(
                "unbonding_blocks must be at least 1: a fault proof against a member \
                 that left must land before its stake is withdrawn, and with 0 it could be \
                 withdrawn in the block that ends its service"
                    .into(),
            );
        }
        if self.beacon_period == 0 || self.beacon_period > 3600 {
            return Err(format!(
                "beacon_period must be 1 to 3600 seconds, not {}",
                self.beacon_period
            ));
        }
        if self.min_stake == 0 {
            return Err(
                "min_stake must be at least 1 wei, so that no seat is held without stake".into(),
            );
        }
        self.check_thresholds()
    }

    /// Refuses thresholds that some committee size the contract may seat (`min_size` to
    /// `max_size`) cannot use: the contract takes `t` and `k` as these percentages of the seats
    /// (rounded up) and reverts every view change whose `(n, t, k)` [`Params::new`] refuses,
    /// and its configuration is fixed at deployment. The constructor refuses the same.
    pub fn check_thresholds(&self) -> Result<(), String> {
        if self.min_size == 0 || self.min_size > self.max_size || self.max_size > 256 {
            return Ok(()); // The contract names this one ("committee size").
        }
        for n in self.min_size..=self.max_size {
            Params::from_percent(
                n as usize,
                self.threshold_percent.into(),
                self.quorum_percent.into(),
            )
            .map_err(|e| {
                format!(
                    "threshold_percent {} and quorum_percent {} do not work for a committee \
                         of {n} (between min_size {} and max_size {}): {e}; every view change \
                         that seats {n} would fail",
                    self.threshold_percent, self.quorum_percent, self.min_size, self.max_size
                )
            })?;
        }
        Ok(())
    }

    /// The configured beacon.
    pub fn beacon(&self) -> BeaconConfig {
        BeaconConfig {
            scheme: self.beacon_scheme,
            period_secs: self.beacon_period,
        }
    }

    /// Applies the beacon flags given.
    pub fn apply(&mut self, flags: &crate::chain::BeaconArgs) {
        let mut beacon = self.beacon();
        flags.apply(&mut beacon);
        self.beacon_scheme = beacon.scheme;
        self.beacon_period = beacon.period_secs;
    }
}

fn signer(args: &DeployArgs) -> Result<keyquorum_evm::PrivateKeySigner, CliError> {
    let text = match (&args.key_file, &args.key) {
        (Some(path), None) => std::fs::read_to_string(path)
            .map_err(|e| CliError::Failed(format!("--key-file {}: {e}", path.display())))?,
        (None, Some(k)) => k.clone(),
        _ => {
            return Err(CliError::usage(
                "give the deploying key with --key-file or --key",
            ));
        }
    };
    let text = text.trim();
    let bytes = hex::decode(text.strip_prefix("0x").unwrap_or(text))
        .map_err(|_| CliError::usage("the deploying key is not hex"))?;
    keyquorum_evm::PrivateKeySigner::from_slice(&bytes)
        .map_err(|_| CliError::usage("the deploying key is not a secp256k1 private key"))
}

/// Deploys the coordinator configured by `config` from `key`'s account over `rpc`: its address
/// and the block it was created in, or why not (the contract's refusal named). `keyquorum demo
/// --chain anvil` deploys with it too.
pub async fn deploy_configured(
    rpc: &str,
    key: keyquorum_evm::PrivateKeySigner,
    config: &DeployConfig,
) -> Result<(keyquorum_evm::alloy_primitives::Address, u64), String> {
    config.check()?;
    deploy(rpc, key, config.contract_config())
        .await
        .map_err(|e| match e {
            ClientError::Refused(Revert::Contract(CoordinatorErrors::BadConfig(bad))) => {
                format!(
                    "the contract refused the configuration (BadConfig): invalid {}{}",
                    bad.what,
                    config_fields(&bad.what)
                        .map(|f| format!(" ({f})"))
                        .unwrap_or_default()
                )
            }
            ClientError::Refused(r) => {
                format!("the contract refused the configuration: {}", r.name())
            }
            // The client's errors show no part of the URL that may carry an access key.
            other => format!(
                "deploying to {}: {other}",
                keyquorum_evm::client::rpc_origin(rpc)
            ),
        })
}

/// The configuration fields behind the coordinator's `BadConfig` reason `what`
/// (`contracts/src/Coordinator.sol`, its constructor's checks).
fn config_fields(what: &str) -> Option<&'static str> {
    Some(match what {
        "chain id" => "chain_name: 1 to 64 bytes",
        "committee size" => "min_size at least 1 and at most max_size, max_size at most 256",
        "thresholds" => {
            "threshold_percent and quorum_percent: 1 to 100, valid for every committee size from \
             min_size to max_size"
        }
        "percent" => {
            "keep_previous_percent, misbehaviour_percent and reporter_percent: at most 100"
        }
        "phase length" => {
            "contribute_blocks, share_blocks, publish_blocks and wait_blocks: at least 1 each"
        }
        "view length" => "view_length: at least 1",
        "key mode" => "key_mode",
        "beacon" => "beacon_scheme and beacon_period",
        _ => return None,
    })
}

/// Where a value [`DeployConfig::check`] refused came from: the beacon flags override the
/// file's beacon keys, so a refused `beacon_period` given by `--beacon-period` is that flag's.
fn refused_source(args: &DeployArgs, refusal: &str) -> &'static str {
    if args.beacon.beacon_period.is_some() && refusal.starts_with("beacon_period ") {
        "--beacon-period"
    } else {
        "--config"
    }
}

/// Runs `keyquorum deploy`.
pub fn run(args: DeployArgs) -> Result<(), CliError> {
    let config: DeployConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::Failed(format!("--config {}: {e}", path.display())))?;
            toml::from_str(&text)
                .map_err(|e| CliError::Usage(format!("--config {}: {e}", path.display())))?
        }
        None => DeployConfig::default(),
    };
    let mut config = config;
    config.apply(&args.beacon);
    // The contract refuses the same; checked here to name the key.
    config.check().map_err(|e| {
        CliError::Usage(format!(
            "{}: {e}; the deployed configuration cannot change, so it is checked first",
            refused_source(&args, &e)
        ))
    })?;
    if !(args.rpc.starts_with("http://") || args.rpc.starts_with("https://")) {
        // Only the scheme is shown: the rest of an endpoint may carry an access key.
        let given = match args.rpc.split_once("://") {
            Some((scheme, _)) => format!("a {scheme}:// URL"),
            None => "no URL".into(),
        };
        return Err(CliError::Usage(format!(
            "--rpc: the endpoint must be an http:// or https:// URL, not {given}"
        )));
    }
    let key = signer(&args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let (address, block) = runtime
        .block_on(deploy_configured(&args.rpc, key, &config))
        .map_err(CliError::Failed)?;
    println!("contract {address}");
    println!("block {block}");
    println!("chain_name {}", config.chain_name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Percentages that some committee size the contract may seat cannot use are refused
    /// before anything is sent, naming that size; the defaults and sizes that fit pass.
    #[test]
    fn thresholds_are_checked_for_every_committee_size() {
        assert_eq!(DeployConfig::default().check_thresholds(), Ok(()));
        let bricked = DeployConfig {
            threshold_percent: 10,
            min_size: 4,
            max_size: 4,
            ..DeployConfig::default()
        };
        let e = bricked.check_thresholds().unwrap_err();
        assert!(e.contains("for a committee of 4"), "{e}");
        // A range: the first size that fails is named.
        let wide = DeployConfig {
            threshold_percent: 34,
            quorum_percent: 67,
            min_size: 1,
            max_size: 12,
            ..DeployConfig::default()
        };
        let failing = (1..=12)
            .find(|&n| Params::from_percent(n, 34, 67).is_err())
            .expect("34% / 67% fails at some size up to 12");
        let e = wide.check_thresholds().unwrap_err();
        assert!(e.contains(&format!("for a committee of {failing} ")), "{e}");
    }

    /// What the constructor would refuse on chain (exit 1, "BadConfig") is refused first, by
    /// the key's name; so is a `min_stake` of 0, which the constructor takes.
    #[test]
    fn the_constructor_refusals_and_a_zero_min_stake_are_named_before_sending() {
        assert_eq!(DeployConfig::default().check(), Ok(()));
        let d = DeployConfig::default;
        for (config, key) in [
            (
                DeployConfig {
                    min_stake: 0,
                    ..d()
                },
                "min_stake must be at least 1 wei",
            ),
            (
                DeployConfig {
                    max_size: 300,
                    ..d()
                },
                "not min_size 4 and max_size 300",
            ),
            (
                DeployConfig {
                    min_size: 8,
                    max_size: 7,
                    ..d()
                },
                "not min_size 8 and max_size 7",
            ),
            (
                DeployConfig {
                    share_blocks: 0,
                    ..d()
                },
                "share_blocks must be at least 1",
            ),
            (
                DeployConfig {
                    view_length: 0,
                    ..d()
                },
                "view_length must be at least 1",
            ),
            (
                DeployConfig {
                    unbonding_blocks: 0,
                    ..d()
                },
                "unbonding_blocks must be at least 1",
            ),
            (
                DeployConfig {
                    quorum_percent: 200,
                    ..d()
                },
                "quorum_percent must be 1 to 100, not 200",
            ),
            (
                DeployConfig {
                    reporter_percent: 101,
                    ..d()
                },
                "reporter_percent must be 0 to 100, not 101",
            ),
            (
                DeployConfig {
                    chain_name: String::new(),
                    ..d()
                },
                "chain_name must be 1 to 64 bytes, not 0",
            ),
            (
                DeployConfig {
                    beacon_period: 0,
                    ..d()
                },
                "beacon_period must be 1 to 3600 seconds, not 0",
            ),
        ] {
            let e = config.check().unwrap_err();
            assert!(e.contains(key), "{key}: {e}");
        }
    }

    /// `--config`'s help lists every field of the file, and only fields of it.
    #[test]
    fn the_config_help_names_every_field() {
        use clap::CommandFactory;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            deploy: DeployArgs,
        }
        let help = Cli::command()
            .get_arguments()
            .find(|a| a.get_id() == "config")
            .and_then(|a| a.get_help().map(|h| h.to_string()))
            .unwrap();
        let listed: Vec<&str> = help
            .split(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .filter(|w| w.contains('_'))
            .collect();
        for name in &listed {
            let value = match *name {
                "chain_name" => "\"x\"",
                "beacon_scheme" => "\"pedersen-bls-chained\"",
                "key_mode" => "\"fresh\"",
                _ => "1",
            };
            toml::from_str::<DeployConfig>(&format!("{name} = {value}"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // As many as the struct has: its Debug form names each field once.
        let fields = format!("{:?}", DeployConfig::default())
            .matches(": ")
            .count();
        assert_eq!(listed.len(), fields, "{listed:?}");
        // The table in docs/architecture.md ("Running against an EVM chain") names each too,
        // with its default.
        let docs = include_str!("../../../docs/architecture.md");
        let section = docs
            .split("## Running against an EVM chain")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .unwrap();
        for name in &listed {
            assert!(
                section
                    .lines()
                    .any(|l| l.starts_with("  | `") && l.contains(&format!("`{name}`"))),
                "docs/architecture.md's deploy table lacks {name}"
            );
        }
    }
}
