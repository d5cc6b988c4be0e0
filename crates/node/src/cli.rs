//! The `keyquorum node` and `keyquorum keys` subcommands (argument parsing and entry points;
//! the binary lives in `crates/cli`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::chain::HttpChainClient;
use crate::config::{Fault, NodeConfig, NodeConfigOverrides};
use crate::keys::NodeKeys;
use crate::keystore::{self, DEFAULT_PASSPHRASE_ENV, KdfParams, PassphraseSource};

/// Arguments of `keyquorum node`. Every flag overrides the same field of `--config`.
#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    /// Configuration file (TOML).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory (the node's database).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The chain's HTTP API, e.g. http://127.0.0.1:7450.
    #[arg(long)]
    pub chain_url: Option<String>,
    /// libp2p listen address, e.g. /ip4/127.0.0.1/tcp/9000.
    #[arg(long)]
    pub listen: Option<String>,
    /// Bootstrap peer (multiaddr ending in /p2p/PEER_ID); repeat for several.
    #[arg(long)]
    pub bootstrap: Vec<String>,
    /// Encrypted keystore (see `keyquorum keys new`).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// File holding the keystore passphrase.
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// Environment variable holding the passphrase (default KEYQUORUM_PASSPHRASE).
    #[arg(long)]
    pub passphrase_env: Option<String>,
    /// Stake to register with.
    #[arg(long)]
    pub stake: Option<u64>,
    /// Status and metrics HTTP address, e.g. 127.0.0.1:7460.
    #[arg(long)]
    pub status_listen: Option<std::net::SocketAddr>,
    /// Deviate from the protocol (demonstrations and tests): none, silent, bad-share,
    /// equivocate, crash.
    #[arg(long)]
    pub fault: Option<Fault>,
    /// Threads for the protocol's cryptography; 0 (the default) means one per core.
    #[arg(long)]
    pub threads: Option<usize>,
}

impl NodeArgs {
    /// The configuration these arguments describe.
    pub fn load(&self) -> Result<NodeConfig, String> {
        let o = NodeConfigOverrides {
            data_dir: self.data_dir.clone(),
            chain_url: self.chain_url.clone(),
            listen: self.listen.clone(),
            bootstrap: (!self.bootstrap.is_empty()).then(|| self.bootstrap.clone()),
            key_file: self.key_file.clone(),
            passphrase_file: self.passphrase_file.clone(),
            passphrase_env: self.passphrase_env.clone(),
            stake: self.stake,
            status_listen: self.status_listen,
            fault: self.fault,
            threads: self.threads,
        };
        NodeConfig::load(self.config.as_deref(), &o).map_err(|e| e.to_string())
    }
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
    New(KeysNewArgs),
}

/// Arguments of `keyquorum keys new`. The passphrase is read from a file or an environment
/// variable, never from the command line.
#[derive(Args, Debug, Clone)]
pub struct KeysNewArgs {
    /// Keystore file to create (must not exist).
    #[arg(long)]
    pub out: PathBuf,
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
        .try_init();
}

/// `keyquorum keys new`.
pub fn keys(args: KeysArgs) -> Result<(), String> {
    match args.command {
        KeysCommand::New(a) => {
            let source = match &a.passphrase_file {
                Some(p) => PassphraseSource::File(p.clone()),
                None => PassphraseSource::Env(a.passphrase_env.clone()),
            };
            let pass = source.read().map_err(|e| e.to_string())?;
            let d = KdfParams::default();
            let params = KdfParams {
                m_cost_kib: a.kdf_memory_kib.unwrap_or(d.m_cost_kib),
                t_cost: a.kdf_passes.unwrap_or(d.t_cost),
                p_cost: d.p_cost,
            };
            let keys = NodeKeys::generate();
            keystore::write(&a.out, &keys, &pass, params).map_err(|e| e.to_string())?;
            println!("wrote {}", a.out.display());
            println!(
                "identity {}",
                hex::encode(keys.identity().public().as_bytes())
            );
            println!("peer_id  {}", keys.peer_id());
            Ok(())
        }
    }
}

/// `keyquorum node`: runs until Ctrl-C or SIGTERM.
pub fn node(args: NodeArgs) -> Result<(), String> {
    init_logging();
    let config = args.load()?;
    let pass = config
        .passphrase_source()
        .read()
        .map_err(|e| e.to_string())?;
    let keys = keystore::read(&config.key_file, &pass).map_err(|e| e.to_string())?;
    drop(pass);
    // The protocol code parallelises on rayon's global pool; its size only changes the time.
    rayon::ThreadPoolBuilder::new()
        .num_threads(config.threads)
        .build_global()
        .map_err(|e| format!("cannot start {} worker threads: {e}", config.threads))?;
    let chain = HttpChainClient::new(&config.chain_url).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        crate::runtime::run(config, keys, chain, shutdown_signal(), None)
            .await
            .map_err(|e| e.to_string())
    })
}

async fn shutdown_signal() {
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
