//! `keyquorum chain`: the embedded chain running the view-change contract.
//!
//! The chain (`keyquorum-devchain`) is generic over a deterministic state machine; this module
//! runs the coordinator contract (`keyquorum-contract`) in it through the node crate's adapter,
//! [`keyquorum_node::ContractMachine`]. Chain settings come from `--config` (devchain's TOML)
//! and flags; contract settings from `--contract` (TOML, the contract's `ContractConfig`) or
//! Züs-like defaults. The genesis balances come from the contract file's `[[genesis]]` list and
//! `--fund IDENTITY=AMOUNT` flags: stake is locked from balances, so the nodes must be funded.

use std::path::PathBuf;

use clap::Args;
use keyquorum_contract::config::GenesisAccount;
use keyquorum_contract::hex::Hex;
use keyquorum_contract::{BeaconConfig, BeaconScheme, Contract, ContractConfig};
use keyquorum_devchain::{Chain, ChainConfig, ChainConfigOverrides};
use keyquorum_node::ContractMachine;
use keyquorum_node::cli::CliError;

/// Arguments of `keyquorum chain`.
#[derive(Args, Debug, Clone)]
pub struct ChainArgs {
    /// Data directory (blocks and pending transactions, in redb) (default: the --config file's,
    /// else keyquorum-chain).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// HTTP API address (loopback unless the --config file sets `allow_non_loopback = true`)
    /// (default: the --config file's `listen`, else 127.0.0.1:7450).
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<std::net::SocketAddr>,
    /// Milliseconds between blocks (default: the --config file's, else 1000).
    #[arg(long)]
    pub block_ms: Option<u64>,
    /// Chain settings (TOML: `data_dir`, `listen`, `block_ms`, the transaction, block, mempool
    /// and `/events` bounds, `allow_non_loopback`; each optional, described in
    /// docs/architecture.md, "The chain's settings"); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Contract settings (TOML: chain id, committee, thresholds, phases, retries, slashing,
    /// staking, genesis accounts, DKG, beacon; `--print-contract` prints every key, each
    /// described in docs/architecture.md, "The contract configuration").
    #[arg(long)]
    pub contract: Option<PathBuf>,
    /// Largest committee when no contract file is given (with `--contract`, the file's
    /// `committee.max_size`).
    #[arg(long, default_value_t = 7, conflicts_with = "contract")]
    pub committee: u32,
    /// Smallest committee when no contract file is given: with fewer eligible nodes the view
    /// change is postponed and retried. Default: the smaller of `--committee` and 4, the
    /// smallest committee that tolerates a faulty member; a committee of one would hold the
    /// group secret alone.
    #[arg(long, value_name = "N", conflicts_with = "contract")]
    pub min_committee: Option<u32>,
    /// Chain id when no contract file is given (with `--contract`, the file's `chain_id`).
    #[arg(long, default_value = "keyquorum-dev", conflicts_with = "contract")]
    pub chain_id: String,
    /// Genesis balance for an identity key (hex, as `keyquorum keys` prints it):
    /// `IDENTITY=AMOUNT`, repeatable; added to the contract file's `[[genesis]]` accounts.
    /// Nodes lock their stake from their balance, so each must be funded to register.
    #[arg(long = "fund", value_name = "IDENTITY=AMOUNT")]
    pub fund: Vec<String>,
    #[command(flatten)]
    pub beacon: BeaconArgs,
    /// Print the contract configuration these arguments give (TOML, the `--contract` file's
    /// format, every field) and its digest, then exit without starting the chain.
    #[arg(long)]
    pub print_contract: bool,
}

/// The random beacon's flags (`keyquorum chain`, `keyquorum demo`): they override the contract
/// file's `[beacon]` table, and a fresh key's view runs what they set (a reshare continues its
/// chain unchanged).
#[derive(Args, Debug, Clone, Default)]
pub struct BeaconArgs {
    /// The random beacon's scheme (drand's): pedersen-bls-chained or pedersen-bls-unchained
    /// [default: pedersen-bls-chained].
    #[arg(long, value_name = "SCHEME", value_parser = parse_beacon_scheme)]
    pub beacon_scheme: Option<BeaconScheme>,
    /// Seconds between beacon rounds, 1 to 3600 [default: 3].
    #[arg(long, value_name = "SECS")]
    pub beacon_period: Option<u32>,
}

impl BeaconArgs {
    /// `beacon` with the flags given applied (bounds are the configuration's to check).
    pub fn apply(&self, beacon: &mut BeaconConfig) {
        if let Some(scheme) = self.beacon_scheme {
            beacon.scheme = scheme;
        }
        if let Some(period) = self.beacon_period {
            beacon.period_secs = period;
        }
    }
}

/// Parses a `--beacon-scheme`.
fn parse_beacon_scheme(s: &str) -> Result<BeaconScheme, String> {
    BeaconScheme::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = BeaconScheme::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown beacon scheme {s:?}: use {}", names.join(" or "))
    })
}

/// Parses `IDENTITY=AMOUNT`.
fn parse_fund(s: &str) -> Result<GenesisAccount, String> {
    let bad = || format!("--fund {s:?}: expected IDENTITY=AMOUNT (identity key in hex)");
    let (id, amount) = s.split_once('=').ok_or_else(bad)?;
    let identity = keyquorum_contract::hex::decode(id.trim())
        .and_then(|b| Hex::from_slice(&b))
        .ok_or_else(bad)?;
    let balance = amount.trim().parse().map_err(|e| {
        format!(
            "--fund {s:?}: the amount {:?} is not a balance (a whole number up to {}): {e}",
            amount.trim(),
            u64::MAX
        )
    })?;
    Ok(GenesisAccount { identity, balance })
}

/// Loads the chain and contract configuration from the arguments: a file that cannot be read
/// fails the run (exit 1), a value that is invalid is a usage error (exit 2).
pub fn load(args: &ChainArgs) -> Result<(ChainConfig, ContractConfig), CliError> {
    load_config(args).map_err(|e| match e {
        Loading::Unreadable(m) => CliError::Failed(m),
        Loading::Invalid(m) => CliError::Usage(m),
    })
}

/// Why the configuration did not load.
enum Loading {
    /// A file could not be read.
    Unreadable(String),
    /// A value is invalid.
    Invalid(String),
}

impl From<String> for Loading {
    fn from(m: String) -> Self {
        Loading::Invalid(m)
    }
}

fn load_config(args: &ChainArgs) -> Result<(ChainConfig, ContractConfig), Loading> {
    let overrides = ChainConfigOverrides {
        data_dir: args.data_dir.clone(),
        listen: args.http_listen,
        block_ms: args.block_ms,
        ..Default::default()
    };
    let chain = ChainConfig::load(args.config.as_deref(), &overrides).map_err(|e| match e {
        keyquorum_devchain::ConfigError::Read { .. } => Loading::Unreadable(e.to_string()),
        other => Loading::Invalid(other.to_string()),
    })?;
    let contract = match &args.contract {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Loading::Unreadable(format!("reading {}: {e}", path.display())))?;
            toml::from_str::<ContractConfig>(&text)
                .map_err(|e| format!("parsing {}: {e}", path.display()))?
        }
        None => {
            let mut c = ContractConfig::defaults(&args.chain_id, args.committee);
            c.committee.min_size = args.min_committee.unwrap_or(args.committee.min(4));
            c
        }
    };
    let mut contract = contract;
    for f in &args.fund {
        contract.genesis.push(parse_fund(f)?);
    }
    args.beacon.apply(&mut contract.beacon);
    contract.validate().map_err(|e| e.to_string())?;
    if contract.genesis.is_empty() {
        eprintln!(
            "keyquorum chain: warning: no genesis accounts (--fund or [[genesis]]): nobody can \
             stake, so no committee can be chosen"
        );
    }
    Ok((chain, contract))
}

/// Starts the chain (database opened, state replayed, HTTP API bound); errors name what
/// failed, e.g. the address that could not be bound and why.
async fn start_chain(
    chain: ChainConfig,
    contract: ContractConfig,
) -> Result<Chain, keyquorum_devchain::ChainError> {
    let machine = ContractMachine(
        Contract::new(contract)
            .map_err(|e| keyquorum_devchain::ChainError::Corrupt(e.to_string()))?,
    );
    Chain::start(chain, machine).await
}

/// Runs the chain until Ctrl-C / SIGTERM. Invalid settings are a usage error, a chain that
/// cannot start or stops on an error a failed run.
pub fn run(args: ChainArgs) -> Result<(), CliError> {
    let (chain, contract) = load(&args)?;
    if args.print_contract {
        let text = toml::to_string(&contract).map_err(CliError::failed)?;
        let digest = keyquorum_node::chain::replica::config_digest(&contract);
        println!(
            "# keyquorum chain contract configuration, digest {} (a node's \
             chain_config_digest)\n# every key: docs/architecture.md, \"The contract \
             configuration\"\n{text}",
            hex::encode(digest)
        );
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::failed)?;
    rt.block_on(async move {
        let (data_dir, block_ms) = (chain.data_dir.clone(), chain.block_ms);
        let digest = keyquorum_node::chain::replica::config_digest(&contract);
        let running = start_chain(chain, contract).await.map_err(|e| {
            // A chain started without a contract file before the smallest committee's
            // default was 4 has another configuration now.
            let hint = matches!(e, keyquorum_devchain::ChainError::OtherGenesis { .. })
                && args.contract.is_none()
                && args.min_committee.is_none();
            CliError::Failed(if hint {
                format!(
                    "{e} (a chain started without --contract by a release whose smallest \
                     committee defaulted to 1 runs on with --min-committee 1)"
                )
            } else {
                e.to_string()
            })
        })?;
        // Printed only once the port is bound, with the address actually bound.
        eprintln!(
            "keyquorum chain: data {} listening on http://{} block every {} ms, contract \
             configuration {} (a node's chain_config_digest)",
            data_dir.display(),
            running.local_addr(),
            block_ms,
            hex::encode(digest)
        );
        running.run_until_ctrl_c().await.map_err(CliError::failed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fund_flags_add_genesis_accounts() {
        let key = keyquorum_dkg::identity::IdentityKeypair::from_seed(&[7; 32]).unwrap();
        let id = keyquorum_contract::hex::encode(&key.public().to_bytes());
        let args = ChainArgs {
            data_dir: None,
            http_listen: None,
            block_ms: None,
            config: None,
            contract: None,
            committee: 4,
            min_committee: None,
            chain_id: "fund-test".into(),
            fund: vec![format!("{id}=500")],
            beacon: BeaconArgs::default(),
            print_contract: false,
        };
        let (_, contract) = load(&args).unwrap();
        assert_eq!(contract.genesis.len(), 1);
        assert_eq!(contract.genesis[0].balance, 500);
        assert_eq!(contract.total_supply(), 500);
        for bad in ["nope", &format!("{id}=x"), "abcd=5"] {
            let args = ChainArgs {
                fund: vec![bad.to_string()],
                ..args.clone()
            };
            assert!(load(&args).is_err(), "{bad}");
        }
        // An amount past u64 is named as such, not as a malformed flag.
        let too_much = ChainArgs {
            fund: vec![format!("{id}=99999999999999999999999")],
            ..args.clone()
        };
        let e = load(&too_much).unwrap_err().to_string();
        assert!(e.contains("is not a balance (a whole number up to"), "{e}");
        // The same account twice is refused by the contract's validation.
        let args = ChainArgs {
            fund: vec![format!("{id}=1"), format!("{id}=2")],
            ..args.clone()
        };
        let e = load(&args).unwrap_err();
        assert!(
            matches!(&e, CliError::Usage(m) if m.contains("genesis account 1")),
            "{e}"
        );
    }

    /// `--beacon-scheme` and `--beacon-period` set the contract's beacon; a zero period is
    /// refused by name, an unknown scheme by the flag's parser.
    /// Without a contract file a committee is at least 4 members (or `--committee`, when
    /// smaller): nodes started one after another do not make a view whose single member holds
    /// the group secret. `--min-committee` sets it, within `--committee`.
    #[test]
    fn the_smallest_committee_defaults_to_four() {
        let key = keyquorum_dkg::identity::IdentityKeypair::from_seed(&[7; 32]).unwrap();
        let id = keyquorum_contract::hex::encode(&key.public().to_bytes());
        let args = |committee, min_committee| ChainArgs {
            data_dir: None,
            http_listen: None,
            block_ms: None,
            config: None,
            contract: None,
            committee,
            min_committee,
            chain_id: "min-test".into(),
            fund: vec![format!("{id}=500")],
            beacon: BeaconArgs::default(),
            print_contract: false,
        };
        let min = |committee, min_committee| {
            load(&args(committee, min_committee)).map(|(_, c)| c.committee.min_size)
        };
        assert_eq!(min(7, None).unwrap(), 4);
        assert_eq!(min(16, None).unwrap(), 4);
        assert_eq!(min(3, None).unwrap(), 3);
        assert_eq!(min(7, Some(7)).unwrap(), 7);
        assert_eq!(min(7, Some(1)).unwrap(), 1);
        assert!(matches!(min(7, Some(8)), Err(CliError::Usage(_))));
        assert!(matches!(min(7, Some(0)), Err(CliError::Usage(_))));
    }

    #[test]
    fn beacon_flags_configure_the_contract() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            chain: ChainArgs,
        }
        let parse = |flags: &[&str]| {
            Cli::try_parse_from([&["chain"], flags].concat()).map(|c| load(&c.chain))
        };
        let (_, c) = parse(&[]).unwrap().unwrap();
        assert_eq!(c.beacon, BeaconConfig::default());
        let (_, c) = parse(&[
            "--beacon-scheme",
            "pedersen-bls-unchained",
            "--beacon-period",
            "2",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            c.beacon,
            BeaconConfig {
                scheme: BeaconScheme::PedersenBlsUnchained,
                period_secs: 2
            }
        );
        let e = parse(&["--beacon-period", "0"]).unwrap().unwrap_err();
        assert!(
            e.to_string()
                .contains("beacon.period_secs must be at least 1"),
            "{e}"
        );
        let e = parse(&["--beacon-period", "3601"]).unwrap().unwrap_err();
        assert!(e.to_string().contains("at most 3600"), "{e}");
        assert!(parse(&["--beacon-scheme", "bls-unchained-g1-rfc9380"]).is_err());
    }

    #[test]
    fn a_port_in_use_is_named_with_the_reason() {
        let dir = std::env::temp_dir().join(format!("keyquorum-chain-bind-{}", std::process::id()));
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let args = ChainArgs {
            data_dir: Some(dir.clone()),
            http_listen: Some(addr),
            block_ms: Some(100),
            config: None,
            contract: None,
            committee: 4,
            min_committee: None,
            chain_id: "bind-test".into(),
            fund: Vec::new(),
            beacon: BeaconArgs::default(),
            print_contract: false,
        };
        let (chain, contract) = load(&args).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let e = match rt.block_on(start_chain(chain, contract)) {
            Ok(_) => panic!("started on a port in use"),
            Err(e) => e.to_string(),
        };
        let _ = std::fs::remove_dir_all(&dir);
        assert!(e.contains(&addr.to_string()), "{e}");
        assert!(e.to_lowercase().contains("in use"), "{e}");
    }
}
