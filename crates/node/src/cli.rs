//! The `keyquorum node` and `keyquorum keys` subcommands (argument parsing and entry points;
//! the binary lives in `crates/cli`), and the exit-code scheme every subcommand follows
//! ([`CliError`], [`EXIT_CODES`]).
//!
//! Flags are spelled alike across subcommands: `--data-dir`, `--p2p-listen` (libp2p
//! multiaddr), `--http-listen` (the HTTP server: the node's `/status` and `/metrics`, the
//! chain's API), `--key-file`, `--fault KIND` (a closed set: `--help` lists it).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::chain::DevchainClient;
use crate::chain::evm::{EvmChainClient, EvmSettings};
use crate::config::{ChainKind, ConfigError, Fault, NodeConfig, NodeConfigOverrides};
use crate::keys::NodeKeys;
use crate::keystore::{self, DEFAULT_PASSPHRASE_ENV, KdfParams, PassphraseSource};

/// How every `keyquorum` subcommand exits, shown at the end of each `--help`.
pub const EXIT_CODES: &str = "Exit status: 0 success; 1 the run failed (a ceremony or check \
failed, a file or port could not be used, the node stopped on an error); 2 usage error (an \
unknown flag or value, or values that contradict each other).";

/// Why a subcommand stopped; the variant decides the exit status ([`EXIT_CODES`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// The arguments (or the configuration they name) are invalid or inconsistent: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The run itself failed: exit 1.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// The process exit status: 2 for usage errors, 1 for failed runs.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed(_) => 1,
        }
    }

    /// A usage error from anything printable.
    pub fn usage(e: impl std::fmt::Display) -> Self {
        CliError::Usage(e.to_string())
    }

    /// A run failure from anything printable.
    pub fn failed(e: impl std::fmt::Display) -> Self {
        CliError::Failed(e.to_string())
    }
}

/// Arguments of `keyquorum node`. Every flag overrides the same field of `--config`.
#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    /// Configuration file (TOML).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory (the node's database) [default: keyquorum-node]; `data_dir` in the
    /// file. It belongs to one identity and one chain: another keystore or chain is refused.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The chain's HTTP API [default: http://127.0.0.1:7450]; `chain_url` in the file.
    #[arg(long)]
    pub chain_url: Option<String>,
    /// The embedded chain's contract configuration this node expects (SHA-256 of its JSON,
    /// hex, as `keyquorum chain` prints it); `chain_config_digest` in the file.
    #[arg(long, value_name = "HEX")]
    pub chain_config_digest: Option<String>,
    /// Take the embedded chain's blocks as served instead of re-executing each with the
    /// node's own contract (`verify_chain = false` in the file): for a chain this operator
    /// runs itself. The node's checks of ceremony specs and magic blocks still run.
    #[arg(long)]
    pub trust_chain: bool,
    /// libp2p listen address [default: /ip4/127.0.0.1/tcp/0, a free port], e.g.
    /// /ip4/127.0.0.1/tcp/9000; `listen` in the file.
    #[arg(long, value_name = "MULTIADDR")]
    pub p2p_listen: Option<String>,
    /// Bootstrap peer (multiaddr ending in /p2p/PEER_ID); repeat for several.
    #[arg(long)]
    pub bootstrap: Vec<String>,
    /// Encrypted keystore (see `keyquorum keys new`) [default: node.key]; `key_file` in the
    /// file.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// File holding the keystore passphrase.
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// Environment variable holding the passphrase (default KEYQUORUM_PASSPHRASE).
    #[arg(long)]
    pub passphrase_env: Option<String>,
    /// Stake locked from the account's balance when the node registers [default: 100];
    /// `stake` in the file. Once registered, the stake changes with `keyquorum account stake`
    /// and `unbond`, not with this setting.
    #[arg(long)]
    pub stake: Option<u64>,
    /// HTTP address of /status and /metrics [default: 127.0.0.1:7460]; `status_listen` in the
    /// file.
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<std::net::SocketAddr>,
    /// Deviate from the protocol (demonstrations and tests).
    #[arg(long, value_enum, value_name = "KIND")]
    pub fault: Option<Fault>,
    /// Threads for the protocol's cryptography; 0 (the default) means one per core.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Worker threads of the async runtime (network, chain, HTTP); default 2.
    #[arg(long)]
    pub io_threads: Option<usize>,
    /// File holding the bearer token of `POST /sign` (on-demand threshold signatures), which is
    /// off without one; `sign.token_file` in the file.
    #[arg(long, value_name = "FILE")]
    pub sign_token_file: Option<PathBuf>,
    /// Run no random beacon (`beacon.enabled = false` in the file): no partials, no rounds,
    /// the beacon's HTTP paths answer 503.
    #[arg(long)]
    pub no_beacon: bool,
    /// Which chain coordinates the view changes: the embedded chain at --chain-url, or the
    /// coordinator contract on an EVM chain (--rpc, --contract, --chain-key-file); `chain` in
    /// the file.
    #[arg(long, value_enum, value_name = "KIND")]
    pub chain: Option<ChainKind>,
    /// The EVM chain's JSON-RPC endpoint [default: http://127.0.0.1:8545]; `evm.rpc` in the
    /// file.
    #[arg(long, value_name = "URL")]
    pub rpc: Option<String>,
    /// The coordinator contract's address; `evm.contract` in the file.
    #[arg(long, value_name = "ADDRESS")]
    pub contract: Option<String>,
    /// File holding the hex secp256k1 key the node sends EVM transactions from;
    /// `evm.chain_key_file` in the file.
    #[arg(long, value_name = "FILE")]
    pub chain_key_file: Option<PathBuf>,
    /// The database in --data-dir was restored from a backup: pass it on the first start after
    /// restoring (and after moving a database between machines). A restored database cannot
    /// tell whether the node dealt in a ceremony that started after the backup was taken, so
    /// the node sits out every ceremony started before it has caught up with the chain again,
    /// instead of dealing a second time, which would be slashed as equivocation. It also drops
    /// the Schnorr nonces waiting for a second round: one may have been used since the backup.
    #[arg(long)]
    pub restored_from_backup: bool,
    /// Register again after this node was deregistered (`keyquorum account deregister`): a
    /// node that saw its own deregistration on chain does not register by itself. Pass it on
    /// one start; a later deregistration is recorded again.
    #[arg(long)]
    pub rejoin: bool,
}

impl NodeArgs {
    /// The configuration these arguments describe: a configuration file that cannot be read
    /// fails the run (exit 1), an invalid value is a usage error (exit 2).
    pub fn load(&self) -> Result<NodeConfig, CliError> {
        let o = NodeConfigOverrides {
            data_dir: self.data_dir.clone(),
            chain_url: self.chain_url.clone(),
            chain_config_digest: self.chain_config_digest.clone(),
            verify_chain: self.trust_chain.then_some(false),
            listen: self.p2p_listen.clone(),
            bootstrap: (!self.bootstrap.is_empty()).then(|| self.bootstrap.clone()),
            key_file: self.key_file.clone(),
            passphrase_file: self.passphrase_file.clone(),
            passphrase_env: self.passphrase_env.clone(),
            stake: self.stake,
            status_listen: self.http_listen,
            fault: self.fault,
            threads: self.threads,
            io_threads: self.io_threads,
            sign_token_file: self.sign_token_file.clone(),
            beacon_enabled: self.no_beacon.then_some(false),
            chain: self.chain,
            evm_rpc: self.rpc.clone(),
            evm_contract: self.contract.clone(),
            evm_chain_key_file: self.chain_key_file.clone(),
            restored_from_backup: self.restored_from_backup,
            rejoin: self.rejoin,
        };
        // An explicit --chain is checked first: its contradiction is what the operator needs
        // to hear, before whatever the other kind's settings lack.
        if let Some(chain) = self.chain {
            self.check_chain_flags(chain)?;
        }
        let config = load_config(self.config.as_deref(), &o)?;
        self.check_chain_flags(config.chain)?;
        Ok(config)
    }

    /// Flags of the other chain kind than the one the node runs contradict it: they would be
    /// ignored, and the operator who gave them meant something else.
    fn check_chain_flags(&self, chain: ChainKind) -> Result<(), CliError> {
        let (given, kind): (Vec<&str>, &str) = match chain {
            ChainKind::Evm => (
                [
                    (self.chain_url.is_some(), "--chain-url"),
                    (self.chain_config_digest.is_some(), "--chain-config-digest"),
                    (self.trust_chain, "--trust-chain"),
                ]
                .into_iter()
                .filter_map(|(set, flag)| set.then_some(flag))
                .collect(),
                "the embedded chain",
            ),
            ChainKind::Devchain => (
                [
                    (self.rpc.is_some(), "--rpc"),
                    (self.contract.is_some(), "--contract"),
                    (self.chain_key_file.is_some(), "--chain-key-file"),
                ]
                .into_iter()
                .filter_map(|(set, flag)| set.then_some(flag))
                .collect(),
                "an EVM chain (--chain evm)",
            ),
        };
        if given.is_empty() {
            return Ok(());
        }
        let running = match chain {
            ChainKind::Evm => "an EVM chain",
            ChainKind::Devchain => "the embedded chain",
        };
        Err(CliError::Usage(format!(
            "{} {} for {kind}, and this node runs on {running}",
            given.join(", "),
            if given.len() == 1 { "is" } else { "are" },
        )))
    }
}

/// The node configuration from `file` (if any) with `overrides` applied, for the commands that
/// take the node's settings (`keyquorum node`, `keyquorum account`).
pub fn load_config(
    file: Option<&std::path::Path>,
    overrides: &NodeConfigOverrides,
) -> Result<NodeConfig, CliError> {
    NodeConfig::load(file, overrides).map_err(|e| match e {
        // A file that cannot be read fails the run; what it says, if wrong, is a usage error.
        ConfigError::Read(..) => CliError::Failed(e.to_string()),
        other => CliError::Usage(other.to_string()),
    })
}

/// Arguments of `keyquorum keys`.
#[derive(Args, Debug, Clone)]
pub struct KeysArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// `keyquorum keys` subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum KeysCommand {
    /// Generate a node key and write it to an encrypted keystore.
    #[command(after_help = EXIT_CODES)]
    New(KeysNewArgs),
}

/// Arguments of `keyquorum keys new`. The passphrase is read from a file or an environment
/// variable, never from the command line.
#[derive(Args, Debug, Clone)]
pub struct KeysNewArgs {
    /// Keystore file to create (must not exist); `keyquorum node --key-file` reads it.
    #[arg(long)]
    pub key_file: PathBuf,
    /// File holding the passphrase.
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// Environment variable holding the passphrase.
    #[arg(long, default_value = DEFAULT_PASSPHRASE_ENV)]
    pub passphrase_env: String,
    /// Argon2id memory cost in KiB (default 65536).
    #[arg(long)]
    pub kdf_memory_kib: Option<u32>,
    /// Argon2id passes (default 3).
    #[arg(long)]
    pub kdf_passes: Option<u32>,
}

/// Sets up `tracing` on stderr (`KEYQUORUM_LOG` or `RUST_LOG` filter, `info` by default).
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("KEYQUORUM_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,libp2p=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A failed write is reported on stderr by default, and `eprintln!` panics when stderr
        // is a closed pipe: a node whose log reader went away would stop. It keeps running,
        // its log lines lost.
        .log_internal_errors(false)
        .try_init();
}

/// `keyquorum keys new`.
pub fn keys(args: KeysArgs) -> Result<(), CliError> {
    match args.command {
        KeysCommand::New(a) => {
            let source = match &a.passphrase_file {
                Some(p) => PassphraseSource::File(p.clone()),
                None => PassphraseSource::Env(a.passphrase_env.clone()),
            };
            let d = KdfParams::default();
            let params = KdfParams {
                m_cost_kib: a.kdf_memory_kib.unwrap_or(d.m_cost_kib),
                t_cost: a.kdf_passes.unwrap_or(d.t_cost),
                p_cost: d.p_cost,
            };
            params
                .check()
                .map_err(|e| CliError::Usage(format!("--kdf-memory-kib / --kdf-passes: {e}")))?;
            let pass = source.read().map_err(CliError::failed)?;
            let keys = NodeKeys::generate();
            keystore::write(&a.key_file, &keys, &pass, params).map_err(CliError::failed)?;
            println!("wrote {}", a.key_file.display());
            println!(
                "identity {}",
                hex::encode(keys.identity().public().as_bytes())
            );
            println!("peer_id  {}", keys.peer_id());
            Ok(())
        }
    }
}

/// `keyquorum node`: runs until Ctrl-C or SIGTERM. An invalid configuration is a usage
/// error; anything after it (keystore, ports, the chain) a failed run.
pub fn node(args: NodeArgs) -> Result<(), CliError> {
    init_logging();
    let config = args.load()?;
    // The keystore before its passphrase: without it, asking for the passphrase first names
    // the wrong problem.
    if !config.key_file.exists() {
        return Err(CliError::Failed(format!(
            "no keystore at {}: give --key-file, or create one with `keyquorum keys new \
             --key-file {}`",
            config.key_file.display(),
            config.key_file.display()
        )));
    }
    let pass = config
        .passphrase_source()
        .read()
        .map_err(CliError::failed)?;
    let keys = keystore::read(&config.key_file, &pass).map_err(CliError::failed)?;
    drop(pass);
    // The protocol code parallelises on rayon's global pool; its size only changes the time.
    rayon::ThreadPoolBuilder::new()
        .num_threads(config.threads)
        .build_global()
        .map_err(|e| {
            CliError::Failed(format!(
                "cannot start {} worker threads: {e}",
                config.threads
            ))
        })?;
    // One I/O thread: the runtime runs on this thread and the driver's work in place, with no
    // worker threads to hand tasks to.
    let rt = if config.io_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.io_threads)
            .enable_all()
            .build()
    }
    .map_err(CliError::failed)?;
    match config.chain {
        ChainKind::Devchain => {
            let chain = if config.verify_chain {
                let pinned = config.pinned_chain_config().map_err(CliError::usage)?;
                DevchainClient::verifying(&config.chain_url, pinned)
            } else {
                DevchainClient::new(&config.chain_url)
            }
            .map_err(CliError::usage)?;
            rt.block_on(async move {
                crate::runtime::run(config, keys, chain, shutdown_signal(), None)
                    .await
                    .map_err(CliError::failed)
            })
        }
        ChainKind::Evm => {
            let key = read_chain_key(config.evm.chain_key_file.as_deref())?;
            let e = &config.evm;
            let settings = EvmSettings {
                rpc: e.rpc.clone(),
                contract: e.contract.parse().map_err(CliError::usage)?,
                chain_name: e.chain_name.clone(),
                from_block: e.from_block,
                confirmations: e.confirmations,
            };
            let fee_bump = e.fee_bump();
            // The origin only: the rest of the URL may carry an access key.
            let origin = keyquorum_evm::client::rpc_origin(&e.rpc);
            rt.block_on(async move {
                let chain = EvmChainClient::connect(settings, key)
                    .await
                    .map_err(|e| {
                        CliError::Failed(format!(
                            "cannot follow the coordinator on the EVM chain at {origin}: {e}"
                        ))
                    })?
                    .with_fee_bump(fee_bump);
                tracing::info!(account = %chain.account(), "sending EVM transactions from this account");
                crate::runtime::run(config, keys, chain, shutdown_signal(), None)
                    .await
                    .map_err(CliError::failed)
            })
        }
    }
}

/// The secp256k1 key in `file` (hex, with or without `0x`, surrounding whitespace ignored).
fn read_chain_key(
    file: Option<&std::path::Path>,
) -> Result<keyquorum_evm::PrivateKeySigner, CliError> {
    let file = file.ok_or_else(|| CliError::Usage("--chain-key-file is required".into()))?;
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(file)
            .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", file.display())))?,
    );
    text.trim()
        .parse()
        .map_err(|_| CliError::Failed(format!("{} holds no secp256k1 key in hex", file.display())))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults `keyquorum node --help` states are the configuration's.
    #[test]
    fn the_help_states_the_configurations_defaults() {
        use clap::CommandFactory;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            node: NodeArgs,
        }
        let d = NodeConfig::default();
        let help = |id: &str| {
            Cli::command()
                .get_arguments()
                .find(|a| a.get_id() == id)
                .and_then(|a| a.get_help().map(|h| h.to_string()))
                .unwrap_or_else(|| panic!("no help for {id}"))
        };
        for (id, default) in [
            ("data_dir", d.data_dir.display().to_string()),
            ("chain_url", d.chain_url.clone()),
            ("p2p_listen", d.listen.clone()),
            ("key_file", d.key_file.display().to_string()),
            ("stake", d.stake.to_string()),
            ("http_listen", d.status_listen.to_string()),
        ] {
            let text = help(id);
            assert!(
                text.contains(&format!("[default: {default}")),
                "{id}: {text}"
            );
        }
    }
}
