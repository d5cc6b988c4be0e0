//! Node configuration: defaults, a TOML file, then per-field overrides (the CLI's flags).
//!
//! ```toml
//! data_dir = "node-1"                      # redb database and nothing else
//! chain_url = "http://127.0.0.1:7450"      # the chain's HTTP API
//! verify_chain = true                      # re-execute every block with the node's own contract
//! chain_config_digest = "9f2c..."          # pin the chain's contract configuration (SHA-256 of
//!                                          #   its JSON, printed by `keyquorum chain`); optional
//! listen = "/ip4/127.0.0.1/tcp/9001"       # libp2p listen address (flag: --p2p-listen)
//! bootstrap = ["/ip4/127.0.0.1/tcp/9000/p2p/12D3Koo..."]
//! key_file = "node-1.key"                  # written by `keyquorum keys new`
//! passphrase_file = "node-1.pass"          # or passphrase_env = "KEYQUORUM_PASSPHRASE"
//! stake = 100                              # stake registered with
//! status_listen = "127.0.0.1:9101"         # /status and /metrics (flag: --http-listen)
//! fault = "none"                           # demo only: silent | bad-share | equivocate | crash | bad-beacon
//!                                          #   | bad-signature-share | signing-key-equivocate
//!                                          #   | signing-key-withhold | signing-key-skip-feldman
//! threads = 0                              # cryptography's threads; 0: one per core
//! io_threads = 2                           # async runtime's workers (network, chain, HTTP)
//!
//! [sign]                                   # POST /sign (see crate::sign); off without a token
//! token_file = "sign.token"                # bearer token (flag: --sign-token-file)
//! rate_per_sec = 5.0                       # per caller (remote IP), sustained
//! burst = 10                               # per caller, at once
//! max_pending = 16                         # requests signing at once; more get 503
//! timeout_ms = 5000                        # wait for t valid partials (Schnorr: per round)
//! [beacon]
//! enabled = true                           # false (flag: --no-beacon): no partials, no rounds
//! sync_rate_per_sec = 2.0                  # requests for rounds answered per asking peer, sustained
//! sync_burst = 20                          # per asking peer, at once
//! ```
//!
//! Against the coordinator contract on an EVM chain instead of the embedded chain
//! (`chain_url` is then unused):
//!
//! ```toml
//! chain = "evm"                            # flag: --chain evm (default "devchain")
//! stake = 1000                             # in wei, sent with the registration
//! [evm]
//! rpc = "http://127.0.0.1:8545"            # JSON-RPC endpoint (flag: --rpc)
//! contract = "0x5FbDB2315678afecb367f032d93F642f64180aa3"   # flag: --contract
//! chain_key_file = "node-1.chain-key"      # hex secp256k1 key of the sending account (flag: --chain-key-file)
//! chain_name = "keyquorum-evm"             # optional: the chain name the contract must have been deployed with (default: the contract's own)
//! from_block = 0                           # the deployment block or earlier (a later one is refused: its logs would be missed)
//! confirmations = 2                        # blocks built on a block before it is acted on
//! fee_bump_after_secs = 180                # a send pending this long is replaced with higher fees (0: never)
//! max_fee_per_gas_gwei = 500               # the most a replacement offers per gas
//! ```
//!
//! Unknown keys are an error (a typo must not silently fall back to a default).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use crate::keystore::{DEFAULT_PASSPHRASE_ENV, PassphraseSource};

/// A deliberate deviation from the protocol, for demonstrations and tests. Each is a real
/// behaviour of the node, not a simulation: the chain and the peers see exactly what a faulty
/// validator would do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// Honest.
    #[default]
    None,
    /// Registers, then takes no part in any ceremony (no posts, messages, acks or signatures).
    Silent,
    /// As a dealer, encrypts wrong shares to more players than it may reveal for, so it cannot
    /// complete its publication.
    BadShare,
    /// As a dealer, posts a second, different contribution (signed: provable equivocation).
    Equivocate,
    /// Aborts the process when the share phase of its first ceremony begins (once: a restarted
    /// node then behaves honestly).
    Crash,
    /// Takes part in view changes honestly but sends beacon partials, and answers to other
    /// members' on-demand signing requests, that do not verify: the G2 generator (a valid
    /// point) in place of its partial signature, under its own share index. Its own rounds
    /// are right (it combines its good partial). Honest nodes find the bad partial when a
    /// combined signature fails, drop it, combine from the others and name the member in the
    /// log and in `keyquorum_beacon_partials_total{member, result="bad"}` (on-demand:
    /// `keyquorum_sign_partials_total{member, result="invalid"}`); rounds and signatures go on
    /// while `t` honest members are up.
    BadBeacon,
    /// Honest in view changes; in the view's signing-key ceremony, as a dealer, sends the next
    /// member in committee order a deal under a second commitment, signed like the first (two
    /// signed commitments from one dealer, seed 003's inconsistent commitments), with a pair
    /// that opens it.
    SigningKeyEquivocate,
    /// Honest in view changes; in the view's signing-key ceremony, as a dealer, withholds its
    /// deal from the next member in committee order, and again when that member's report asks
    /// for it on the board (no justification for it).
    SigningKeyWithhold,
    /// Honest in view changes; in the view's signing-key ceremony, qualifies as a dealer, then
    /// posts no Feldman commitment (seed 003 step 7: its contribution is reconstructed).
    SigningKeySkipFeldman,
    /// Takes part in view changes, the beacon and BLS signing honestly but answers other
    /// members' FROST round-two requests (`POST /sign` with a Schnorr scheme) with the scalar 1
    /// in place of its signature share: a package that decodes and names it, whose share fails
    /// RFC 9591's share verification. Its own requests are right (it signs with its good
    /// share). A coordinator whose signature fails checks the shares, names the member (log,
    /// `keyquorum_sign_frost_culprits_total{member, fault="invalid_share"}`) and retries
    /// without it, so Schnorr signatures go on while `t` honest members are up.
    BadSignatureShare,
    /// As a dealer, posts its publication with a forged ack aggregate: its players' aggregate
    /// plus a signature of its own on another message (a valid point that does not verify),
    /// signed by it like an honest post. Every board names it `bad_ack_signature` and
    /// disqualifies the dealer; on the EVM coordinator an honest node proves it
    /// (`proveBadAckAggregate`) from the post on chain, which slashes the dealer.
    ForgeAckAggregate,
}

impl Fault {
    /// The name used in configuration and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Silent => "silent",
            Fault::BadShare => "bad-share",
            Fault::Equivocate => "equivocate",
            Fault::Crash => "crash",
            Fault::BadBeacon => "bad-beacon",
            Fault::SigningKeyEquivocate => "signing-key-equivocate",
            Fault::SigningKeyWithhold => "signing-key-withhold",
            Fault::SigningKeySkipFeldman => "signing-key-skip-feldman",
            Fault::BadSignatureShare => "bad-signature-share",
            Fault::ForgeAckAggregate => "forge-ack-aggregate",
        }
    }
}

impl std::str::FromStr for Fault {
    type Err = String;
    /// The command line's names ([`clap::ValueEnum`]), which are also the file's.
    fn from_str(s: &str) -> Result<Self, String> {
        <Fault as clap::ValueEnum>::from_str(s, false).map_err(|_| {
            let names: Vec<&str> = Fault::value_variants().iter().map(|f| f.name()).collect();
            format!("unknown fault {s:?} ({})", names.join(", "))
        })
    }
}

/// Most threads `threads` and `io_threads` may ask for: far above any core count a node runs
/// on, far below what makes spawning them a problem.
pub const MAX_THREADS: usize = 1024;

/// Configuration of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Directory of the node's database (`node.redb`); created if missing.
    pub data_dir: PathBuf,
    /// Base URL of the chain's HTTP API.
    pub chain_url: String,
    /// Re-execute every block of the embedded chain with the node's own contract before acting
    /// on it, and refuse the chain from the first block that differs
    /// ([`crate::chain::replica`]). Off, the node takes the chain's events as they are served
    /// (its checks of ceremony specs and magic blocks still run).
    pub verify_chain: bool,
    /// The embedded chain's contract configuration the node expects: SHA-256 of its JSON, hex
    /// (`keyquorum chain` prints it). When set, a chain serving another configuration is
    /// refused; when not, the node re-executes from whichever configuration the chain serves.
    pub chain_config_digest: Option<String>,
    /// libp2p listen multiaddr.
    pub listen: String,
    /// Bootstrap peers (multiaddrs ending in `/p2p/<peer id>`).
    pub bootstrap: Vec<String>,
    /// Encrypted keystore.
    pub key_file: PathBuf,
    /// File holding the keystore passphrase; when absent, `passphrase_env` is read.
    pub passphrase_file: Option<PathBuf>,
    /// Environment variable holding the passphrase.
    pub passphrase_env: String,
    /// Stake to register with.
    pub stake: u64,
    /// Address of the status and metrics HTTP server.
    pub status_listen: SocketAddr,
    /// Protocol deviation (demo and tests only).
    pub fault: Fault,
    /// Threads for the protocol's cryptography (batched checks, commitments, sums); 0 means
    /// one per core, at most [`MAX_THREADS`]. The outcome never depends on it, only the time.
    pub threads: usize,
    /// Worker threads of the async runtime, which runs the network, the chain follower, the
    /// status server and the driver between cryptographic batches; at least 1. Two keep the
    /// network answering while the driver processes a block; one (a current-thread runtime,
    /// the network waiting while the driver works) suits many nodes on few cores, where every
    /// extra thread is scheduling overhead. At most [`MAX_THREADS`].
    pub io_threads: usize,
    /// On-demand threshold signatures (`POST /sign`).
    pub sign: crate::sign::SignConfig,
    /// The random beacon.
    pub beacon: BeaconConfig,
    /// Which chain coordinates the view changes.
    pub chain: ChainKind,
    /// The coordinator contract on an EVM chain (with `chain = "evm"`).
    pub evm: EvmConfig,
    /// The database was restored from a backup (`--restored-from-backup`): it forgets having
    /// caught up with the chain before anything is processed
    /// ([`crate::store::Store::mark_restored_from_backup`]) and drops the FROST nonces waiting
    /// for a round two ([`crate::sign::frost::NonceDb::forget_pending`]). A flag of one start, never read
    /// from the file.
    #[serde(skip)]
    pub restored_from_backup: bool,
    /// Register again after a deregistration (`--rejoin`): a node that saw its own
    /// `Deregister` on chain does not register by itself
    /// ([`crate::store::NodeState::deregistered_at`]). A flag of one start, never read from the
    /// file.
    #[serde(skip)]
    pub rejoin: bool,
}

/// Which chain coordinates the view changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ChainKind {
    /// keyquorum's embedded chain (`keyquorum chain`) at `chain_url`.
    #[default]
    Devchain,
    /// The coordinator contract on an EVM chain (the `[evm]` table).
    Evm,
}

/// The `[evm]` table.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvmConfig {
    /// JSON-RPC endpoint (`http://` or `https://`).
    pub rpc: String,
    /// The coordinator's address (hex).
    pub contract: String,
    /// File holding the hex secp256k1 private key the node sends its transactions from.
    pub chain_key_file: Option<PathBuf>,
    /// The chain name the contract was deployed with, if the operator pins it: the node reads
    /// the contract's own and refuses to start if they differ. Unset (the default), it uses the
    /// contract's.
    pub chain_name: Option<String>,
    /// The block the node follows the contract from: its deployment block or an earlier one.
    /// A later one is refused at connect (the logs before it would be missed), where the
    /// endpoint keeps the state to tell.
    pub from_block: u64,
    /// Blocks built on a block before the node acts on it.
    pub confirmations: u64,
    /// Seconds a send (or its last replacement) stays pending before it is replaced with the
    /// same nonce and higher fees; 0: never.
    pub fee_bump_after_secs: u64,
    /// The most `maxFeePerGas` a replacement offers, in gwei.
    pub max_fee_per_gas_gwei: u64,
}

/// The least `fee_bump_after_secs` (but 0): a replacement sent before the chain has had a
/// few blocks to mine the send it replaces would only churn the node's pool.
pub const MIN_FEE_BUMP_AFTER_SECS: u64 = 30;

impl std::fmt::Debug for EvmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The endpoint's path, query and user info may carry an access key.
        f.debug_struct("EvmConfig")
            .field("rpc", &keyquorum_evm::client::rpc_origin(&self.rpc))
            .field("contract", &self.contract)
            .field("chain_key_file", &self.chain_key_file)
            .field("chain_name", &self.chain_name)
            .field("from_block", &self.from_block)
            .field("confirmations", &self.confirmations)
            .field("fee_bump_after_secs", &self.fee_bump_after_secs)
            .field("max_fee_per_gas_gwei", &self.max_fee_per_gas_gwei)
            .finish()
    }
}

impl EvmConfig {
    /// When a pending send is replaced with higher fees, as configured.
    pub fn fee_bump(&self) -> Option<keyquorum_evm::client::FeeBump> {
        (self.fee_bump_after_secs > 0).then(|| keyquorum_evm::client::FeeBump {
            after: std::time::Duration::from_secs(self.fee_bump_after_secs),
            max_fee_per_gas: u128::from(self.max_fee_per_gas_gwei) * 1_000_000_000,
        })
    }
}

impl Default for EvmConfig {
    fn default() -> Self {
        EvmConfig {
            rpc: "http://127.0.0.1:8545".into(),
            contract: String::new(),
            chain_key_file: None,
            chain_name: None,
            from_block: 0,
            confirmations: 2,
            fee_bump_after_secs: 180,
            max_fee_per_gas_gwei: 500,
        }
    }
}

/// The `[beacon]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeaconConfig {
    /// Run the beacon of each view this node is in (the default). When false the node signs no
    /// partials, stores and serves no rounds (its beacon paths answer 503), and refuses the
    /// members' partials; view changes are unaffected.
    pub enabled: bool,
    /// Requests for rounds ([`crate::beacon::sync`]) this node answers a second for each
    /// asking peer, sustained; more are refused with a wait.
    pub sync_rate_per_sec: f64,
    /// Requests for rounds an asking peer may make at once before the rate applies.
    pub sync_burst: u32,
}

impl Default for BeaconConfig {
    fn default() -> Self {
        // A node catching up asks one batch at a time: 20 batches (2000 rounds) at once,
        // then 200 rounds a second, far ahead of any chain's period.
        BeaconConfig {
            enabled: true,
            sync_rate_per_sec: 2.0,
            sync_burst: 20,
        }
    }
}

impl BeaconConfig {
    /// Why the table is unusable, if it is.
    pub fn problem(&self) -> Option<String> {
        if !(self.sync_rate_per_sec.is_finite() && self.sync_rate_per_sec > 0.0) {
            return Some("beacon.sync_rate_per_sec must be a positive number".into());
        }
        if self.sync_burst == 0 {
            return Some("beacon.sync_burst must be at least 1".into());
        }
        None
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            data_dir: PathBuf::from("keyquorum-node"),
            chain_url: "http://127.0.0.1:7450".into(),
            verify_chain: true,
            chain_config_digest: None,
            listen: "/ip4/127.0.0.1/tcp/0".into(),
            bootstrap: Vec::new(),
            key_file: PathBuf::from("node.key"),
            passphrase_file: None,
            passphrase_env: DEFAULT_PASSPHRASE_ENV.into(),
            stake: 100,
            status_listen: SocketAddr::from(([127, 0, 0, 1], 7460)),
            fault: Fault::None,
            threads: 0,
            io_threads: 2,
            sign: crate::sign::SignConfig::default(),
            beacon: BeaconConfig::default(),
            chain: ChainKind::default(),
            evm: EvmConfig::default(),
            restored_from_backup: false,
            rejoin: false,
        }
    }
}

/// Per-field replacements (from flags), applied over the defaults or the file.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct NodeConfigOverrides {
    pub data_dir: Option<PathBuf>,
    pub chain_url: Option<String>,
    /// `chain_config_digest`.
    pub chain_config_digest: Option<String>,
    /// `verify_chain`.
    pub verify_chain: Option<bool>,
    pub listen: Option<String>,
    pub bootstrap: Option<Vec<String>>,
    pub key_file: Option<PathBuf>,
    pub passphrase_file: Option<PathBuf>,
    pub passphrase_env: Option<String>,
    pub stake: Option<u64>,
    pub status_listen: Option<SocketAddr>,
    pub fault: Option<Fault>,
    pub threads: Option<usize>,
    pub io_threads: Option<usize>,
    pub sign_token_file: Option<PathBuf>,
    /// `beacon.enabled`.
    pub beacon_enabled: Option<bool>,
    pub chain: Option<ChainKind>,
    /// `evm.rpc`.
    pub evm_rpc: Option<String>,
    /// `evm.contract`.
    pub evm_contract: Option<String>,
    /// `evm.chain_key_file`.
    pub evm_chain_key_file: Option<PathBuf>,
    /// Sets `restored_from_backup`.
    pub restored_from_backup: bool,
    /// Sets `rejoin`.
    pub rejoin: bool,
}

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// The TOML is invalid or has unknown fields.
    #[error("invalid configuration: {0}")]
    Parse(#[from] toml::de::Error),
    /// A value is unusable.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl NodeConfig {
    /// `chain_config_digest`, decoded.
    pub fn pinned_chain_config(&self) -> Result<Option<[u8; 32]>, ConfigError> {
        let Some(hex_digest) = &self.chain_config_digest else {
            return Ok(None);
        };
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex_digest.trim_start_matches("0x"), &mut digest).map_err(|e| {
            ConfigError::Invalid(format!(
                "chain_config_digest must be 64 hex digits (SHA-256), got {hex_digest:?}: {e}"
            ))
        })?;
        Ok(Some(digest))
    }

    /// Parses TOML; missing fields take their defaults.
    pub fn from_toml_str(s: &str) -> Result<Self, ConfigError> {
        Ok(toml::from_str(s)?)
    }

    /// Defaults, then `file`, then `overrides`; validated.
    pub fn load(file: Option<&Path>, o: &NodeConfigOverrides) -> Result<Self, ConfigError> {
        let mut c = match file {
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|e| ConfigError::Read(p.to_owned(), e))?;
                Self::from_toml_str(&text)?
            }
            None => Self::default(),
        };
        keyquorum_devchain::override_fields!(
            c <- o;
            data_dir,
            chain_url,
            listen,
            bootstrap,
            key_file,
            passphrase_env,
            stake,
            status_listen,
            fault,
            threads,
            io_threads,
            chain
        );
        if let Some(verify) = o.verify_chain {
            c.verify_chain = verify;
        }
        if o.chain_config_digest.is_some() {
            c.chain_config_digest = o.chain_config_digest.clone();
        }
        if let Some(rpc) = &o.evm_rpc {
            c.evm.rpc = rpc.clone();
        }
        if let Some(contract) = &o.evm_contract {
            c.evm.contract = contract.clone();
        }
        if o.evm_chain_key_file.is_some() {
            c.evm.chain_key_file = o.evm_chain_key_file.clone();
        }
        if o.sign_token_file.is_some() {
            c.sign.token_file = o.sign_token_file.clone();
        }
        if o.passphrase_file.is_some() {
            c.passphrase_file = o.passphrase_file.clone();
        }
        c.restored_from_backup |= o.restored_from_backup;
        c.rejoin |= o.rejoin;
        if let Some(enabled) = o.beacon_enabled {
            c.beacon.enabled = enabled;
        }
        c.validate()?;
        Ok(c)
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.chain == ChainKind::Evm {
            let e = &self.evm;
            if !(e.rpc.starts_with("http://") || e.rpc.starts_with("https://")) {
                // Not quoted: whatever it is, it may carry an access key.
                return bad("evm.rpc must be an http:// or https:// URL".into());
            }
            if e.fee_bump_after_secs != 0 && e.fee_bump_after_secs < MIN_FEE_BUMP_AFTER_SECS {
                return bad(format!(
                    "evm.fee_bump_after_secs is {}: 0 (never replace a pending send) or at least \
                     {MIN_FEE_BUMP_AFTER_SECS} (the chain needs a few blocks to mine a send before \
                     it is replaced)",
                    e.fee_bump_after_secs
                ));
            }
            if e.fee_bump_after_secs != 0 && e.max_fee_per_gas_gwei == 0 {
                return bad(
                    "evm.max_fee_per_gas_gwei must be positive when evm.fee_bump_after_secs \
                     is set (a replacement must offer more than the send it replaces)"
                        .into(),
                );
            }
            if e.contract.is_empty() {
                return bad(
                    "evm.contract (--contract) is required: the coordinator's address, as \
                     `keyquorum deploy` printed it"
                        .into(),
                );
            }
            if e.contract
                .parse::<keyquorum_evm::alloy_primitives::Address>()
                .is_err()
            {
                return bad(format!("evm.contract {:?} is not an address", e.contract));
            }
            if !eip55_checksum_holds(&e.contract) {
                return bad(format!(
                    "evm.contract {:?} has upper and lower case letters that are not its EIP-55 \
                     checksum: a mistyped character? (in lower case the checksum is not checked)",
                    e.contract
                ));
            }
            if e.chain_key_file.is_none() {
                return bad("evm.chain_key_file (--chain-key-file) is required".into());
            }
        }
        if !self.chain_url.starts_with("http://") {
            return bad(format!(
                "chain_url {:?} must be an http:// URL",
                self.chain_url
            ));
        }
        if self.listen.parse::<keyquorum_net::Multiaddr>().is_err() {
            return bad(format!("listen {:?} is not a multiaddr", self.listen));
        }
        for b in &self.bootstrap {
            let Ok(addr) = b.parse::<keyquorum_net::Multiaddr>() else {
                return bad(format!("bootstrap {b:?} is not a multiaddr"));
            };
            // The peer id is what the connection authenticates: without it anyone at the
            // address could stand in for the bootstrap peer.
            if !matches!(
                addr.iter().last(),
                Some(keyquorum_net::libp2p::multiaddr::Protocol::P2p(_))
            ) {
                return bad(format!(
                    "bootstrap {b:?} lacks the peer's id: end it in /p2p/<peer id> (its node \
                     prints it at start, as `keyquorum keys new` does)"
                ));
            }
        }
        if self.stake == 0 {
            return bad("stake must be positive".into());
        }
        if self.data_dir.as_os_str().is_empty() {
            return bad("data_dir must not be empty".into());
        }
        self.pinned_chain_config()?;
        if self.io_threads == 0 {
            return bad("io_threads must be at least 1".into());
        }
        // Each thread is spawned at start; a mistyped count would spawn thousands and never
        // start, with nothing said.
        for (key, value) in [("threads", self.threads), ("io_threads", self.io_threads)] {
            if value > MAX_THREADS {
                return bad(format!(
                    "{key} must be at most {MAX_THREADS} (it is {value}; threads = 0 means one per core)"
                ));
            }
        }
        if let Some(problem) = self.sign.problem() {
            return bad(problem);
        }
        if let Some(problem) = self.beacon.problem() {
            return bad(problem);
        }
        if self.passphrase_env.is_empty() && self.passphrase_file.is_none() {
            return bad("set passphrase_file or passphrase_env".into());
        }
        Ok(())
    }

    /// Where the passphrase comes from.
    pub fn passphrase_source(&self) -> PassphraseSource {
        match &self.passphrase_file {
            Some(p) => PassphraseSource::File(p.clone()),
            None => PassphraseSource::Env(self.passphrase_env.clone()),
        }
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("node.redb")
    }

    /// The FROST nonce pairs this node committed to and has not yet used.
    pub fn frost_nonces_path(&self) -> PathBuf {
        self.data_dir.join("frost-nonces.redb")
    }

    /// The beacon's rounds.
    pub fn beacon_db_path(&self) -> PathBuf {
        self.data_dir.join("beacon.redb")
    }
}

/// Whether a hex address in mixed case is its EIP-55 checksum (one in a single case carries
/// none, and holds).
fn eip55_checksum_holds(address: &str) -> bool {
    let digits = address.trim_start_matches("0x");
    let mixed = digits.chars().any(|c| c.is_ascii_uppercase())
        && digits.chars().any(|c| c.is_ascii_lowercase());
    !mixed
        || keyquorum_evm::alloy_primitives::Address::parse_checksummed(format!("0x{digits}"), None)
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contract_address_in_mixed_case_must_be_its_checksum() {
        let evm = |contract: &str| {
            NodeConfig::from_toml_str(&format!(
                "chain = \"evm\"\n[evm]\ncontract = \"{contract}\"\nchain_key_file = \"k\"\n"
            ))
            .and_then(|c| c.validate().map(|()| c))
        };
        // Anvil's first deployment, as `keyquorum deploy` prints it.
        let good = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
        assert!(evm(good).is_ok());
        assert!(evm(&good.to_lowercase()).is_ok());
        assert!(evm(&good.to_uppercase().replace("0X", "0x")).is_ok());
        // One letter's case changed: the checksum no longer holds.
        let typo = good.replacen("FbDB", "FbdB", 1);
        let e = evm(&typo).unwrap_err().to_string();
        assert!(e.contains("EIP-55"), "{e}");
    }

    #[test]
    fn the_beacon_is_on_by_default_and_can_be_turned_off_in_the_file_or_by_flag() {
        assert!(NodeConfig::default().beacon.enabled);
        assert!(NodeConfig::from_toml_str("").unwrap().beacon.enabled);
        let off = NodeConfig::from_toml_str("[beacon]\nenabled = false\n").unwrap();
        assert!(!off.beacon.enabled);
        assert!(NodeConfig::from_toml_str("[beacon]\nenable = false\n").is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "[beacon]\nenabled = false\n").unwrap();
        let flag = |enabled| NodeConfigOverrides {
            beacon_enabled: enabled,
            ..Default::default()
        };
        assert!(
            !NodeConfig::load(Some(&path), &flag(None))
                .unwrap()
                .beacon
                .enabled
        );
        assert!(
            NodeConfig::load(Some(&path), &flag(Some(true)))
                .unwrap()
                .beacon
                .enabled
        );
        assert!(
            !NodeConfig::load(None, &flag(Some(false)))
                .unwrap()
                .beacon
                .enabled
        );
    }

    #[test]
    fn the_fee_bump_is_off_or_waits_long_enough_under_a_positive_cap_and_no_error_shows_the_rpc() {
        let evm = |lines: &str| {
            NodeConfig::from_toml_str(&format!(
                "chain = \"evm\"\n[evm]\ncontract = \"0x{}\"\nchain_key_file = \"k\"\n{lines}",
                "11".repeat(20)
            ))
            .and_then(|c| c.validate().map(|()| c))
        };
        let bump = evm("").unwrap().evm.fee_bump().unwrap();
        assert_eq!(bump.after.as_secs(), 180);
        assert_eq!(bump.max_fee_per_gas, 500 * 1_000_000_000);
        assert_eq!(evm("fee_bump_after_secs = 0").unwrap().evm.fee_bump(), None);
        assert!(evm("fee_bump_after_secs = 30").is_ok());
        let early = evm("fee_bump_after_secs = 29").unwrap_err().to_string();
        assert!(early.contains("at least 30"), "{early}");
        let uncapped = evm("max_fee_per_gas_gwei = 0").unwrap_err().to_string();
        assert!(uncapped.contains("max_fee_per_gas_gwei"), "{uncapped}");
        assert!(evm("fee_bump_after_secs = 0\nmax_fee_per_gas_gwei = 0").is_ok());

        let secret = "https://user:pw-secret@rpc.example/v3/key-secret?token=query-secret";
        let c = evm(&format!("rpc = \"{secret}\"")).unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("https://rpc.example"), "{shown}");
        let bad = evm("rpc = \"wss://rpc.example/v3/key-secret\"")
            .unwrap_err()
            .to_string();
        for text in [shown, bad] {
            for part in ["pw-secret", "key-secret", "query-secret"] {
                assert!(!text.contains(part), "{text}");
            }
        }
    }

    #[test]
    fn thread_count_defaults_to_every_core_and_can_be_set() {
        assert_eq!(NodeConfig::default().threads, 0);
        let c = NodeConfig::from_toml_str("threads = 1").unwrap();
        assert_eq!(c.threads, 1);
        let o = NodeConfigOverrides {
            threads: Some(2),
            ..Default::default()
        };
        assert_eq!(NodeConfig::load(None, &o).unwrap().threads, 2);
    }

    #[test]
    fn thread_counts_above_the_cap_are_refused_by_name() {
        for (threads, io_threads, key) in [
            (Some(MAX_THREADS + 1), None, "threads"),
            (None, Some(100_000), "io_threads"),
        ] {
            let o = NodeConfigOverrides {
                threads,
                io_threads,
                ..Default::default()
            };
            let e = NodeConfig::load(None, &o).unwrap_err().to_string();
            assert!(
                e.contains(&format!("{key} must be at most {MAX_THREADS}")),
                "{e}"
            );
        }
        let o = NodeConfigOverrides {
            threads: Some(MAX_THREADS),
            io_threads: Some(MAX_THREADS),
            ..Default::default()
        };
        assert!(NodeConfig::load(None, &o).is_ok());
    }

    #[test]
    fn io_threads_default_to_two_can_be_set_and_are_never_zero() {
        assert_eq!(NodeConfig::default().io_threads, 2);
        let c = NodeConfig::from_toml_str("io_threads = 1").unwrap();
        assert_eq!(c.io_threads, 1);
        let o = NodeConfigOverrides {
            io_threads: Some(3),
            ..Default::default()
        };
        assert_eq!(NodeConfig::load(None, &o).unwrap().io_threads, 3);
        let o = NodeConfigOverrides {
            io_threads: Some(0),
            ..Default::default()
        };
        assert!(NodeConfig::load(None, &o).is_err());
    }

    #[test]
    fn file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            r#"
data_dir = "/tmp/n1"
chain_url = "http://127.0.0.1:9999"
bootstrap = ["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"]
stake = 42
fault = "bad-share"
"#,
        )
        .unwrap();
        let c = NodeConfig::load(Some(&path), &NodeConfigOverrides::default()).unwrap();
        assert_eq!(c.stake, 42);
        assert_eq!(c.fault, Fault::BadShare);
        assert_eq!(c.listen, NodeConfig::default().listen);
        let o = NodeConfigOverrides {
            stake: Some(7),
            fault: Some(Fault::None),
            passphrase_file: Some("/tmp/p".into()),
            bootstrap: Some(vec![]),
            ..Default::default()
        };
        let c = NodeConfig::load(Some(&path), &o).unwrap();
        assert_eq!(c.stake, 7);
        assert_eq!(c.fault, Fault::None);
        assert!(c.bootstrap.is_empty());
        assert_eq!(c.data_dir, PathBuf::from("/tmp/n1"));
        assert_eq!(
            c.passphrase_source(),
            PassphraseSource::File("/tmp/p".into())
        );
    }

    #[test]
    fn rejects_bad_values() {
        assert!(NodeConfig::from_toml_str("stake = \"lots\"").is_err());
        assert!(NodeConfig::from_toml_str("unknown = 1").is_err());
        assert!(NodeConfig::from_toml_str("fault = \"evil\"").is_err());
        for bad in [
            "stake = 0",
            "chain_url = \"ftp://x\"",
            "listen = \"not a multiaddr\"",
            "bootstrap = [\"nope\"]",
            "bootstrap = [\"/ip4/127.0.0.1/tcp/4001\"]",
        ] {
            let c = NodeConfig::from_toml_str(bad).unwrap();
            assert!(c.validate().is_err(), "{bad}");
        }
        assert_eq!("equivocate".parse::<Fault>(), Ok(Fault::Equivocate));
        assert_eq!(
            "forge-ack-aggregate".parse::<Fault>(),
            Ok(Fault::ForgeAckAggregate)
        );
        assert!("x".parse::<Fault>().is_err());
        // The command line's names are the ones the node reports and the file uses.
        for f in Fault::value_variants() {
            assert_eq!(f.name().parse::<Fault>(), Ok(*f));
            let toml = format!("fault = \"{}\"", f.name());
            assert_eq!(NodeConfig::from_toml_str(&toml).unwrap().fault, *f);
        }
    }
}
