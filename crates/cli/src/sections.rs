//! `keyquorum sections demo`: a section grown in one process from the genesis node to its
//! elders (`keyquorum_sections::simulation`: real DKGs among the candidates, every message over
//! the wire encoding), then its key chain printed as JSON and verified from the genesis key.
//! Exit 0 when every step's invariants held and the chain verifies, 1 otherwise, 2 on usage
//! errors.
//!
//! `keyquorum sections node`: one sections node as its own process, talking to the others over
//! libp2p (`keyquorum_node::sections_node`), with `GET /sections` serving its key chain and SAP.
//!
//! `keyquorum sections leave`: a stopped node asks the elders of its section to remove it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use keyquorum_node::cli::CliError;
use keyquorum_node::keystore::{self, PassphraseSource};
use keyquorum_node::sections_node::{self, SectionsNodeConfig};
use keyquorum_node::sections_node::{Multiaddr, Protocol};
use keyquorum_sections::Prefix;
use keyquorum_sections::elders::SectionParams;
use keyquorum_sections::keys::decode_key;
use keyquorum_sections::keys::key_bytes;
use keyquorum_sections::simulation::Network;

use crate::OutputFormat;

/// Most nodes the demo grows the section to.
const MAX_NODES: usize = 64;

/// Most elders a section may select ([`keyquorum_sections::sap::MAX_ELDERS`]: above it a faulty
/// elder's bad handover partials can stall a handover).
const MAX_ELDER_COUNT: usize = keyquorum_sections::sap::MAX_ELDERS;

/// Arguments of `keyquorum sections`.
#[derive(Args, Debug)]
pub struct SectionsArgs {
    #[command(subcommand)]
    command: SectionsCommand,
}

#[derive(Subcommand, Debug)]
enum SectionsCommand {
    /// Grow a section in this process from the genesis node, one handover per elder change,
    /// and print and verify its key chain.
    #[command(after_help = keyquorum_node::cli::EXIT_CODES)]
    Demo(DemoArgs),
    /// Run one sections node on the network: the genesis node (no --bootstrap) or a joiner
    /// (--bootstrap and --genesis-key); restarted with the same data directory, it resumes from
    /// its store. Runs until Ctrl-C or SIGTERM.
    #[command(after_help = keyquorum_node::cli::EXIT_CODES)]
    Node(NodeArgs),
    /// Leave the section: with the node stopped, ask the elders of its stored SAP to remove it
    /// from the members (the elders then select again, and hand over if the elders change).
    /// Succeeds once any elder confirmed; the data directory is of no further use. An elder of
    /// a section of three elders or fewer is refused (the others could sign no start without
    /// it) unless --force.
    #[command(after_help = keyquorum_node::cli::EXIT_CODES)]
    Leave(LeaveArgs),
}

#[derive(Args, Debug)]
struct LeaveArgs {
    /// The node's encrypted keystore.
    #[arg(long)]
    key_file: PathBuf,
    /// File holding the keystore passphrase.
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    /// Environment variable holding the passphrase.
    #[arg(long, default_value = "KEYQUORUM_PASSPHRASE")]
    passphrase_env: String,
    /// The node's data directory.
    #[arg(long)]
    data_dir: PathBuf,
    /// Leave even as an elder whose section could then sign no start (it stalls for good).
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
struct NodeArgs {
    /// Encrypted keystore (see `keyquorum keys new`); the section node key derives from it.
    #[arg(long)]
    key_file: PathBuf,
    /// File holding the keystore passphrase.
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    /// Environment variable holding the passphrase.
    #[arg(long, default_value = "KEYQUORUM_PASSPHRASE")]
    passphrase_env: String,
    /// Data directory (`sections.redb`, `key_chain.json`).
    #[arg(long)]
    data_dir: PathBuf,
    /// libp2p listen address, also advertised to the section, e.g. /ip4/127.0.0.1/tcp/9000.
    #[arg(long, value_name = "MULTIADDR")]
    p2p_listen: String,
    /// Bootstrap peer (multiaddr ending in /p2p/PEER_ID) to join through; repeat for several.
    #[arg(long)]
    bootstrap: Vec<String>,
    /// The network's genesis key (96 hex digits); required to join.
    #[arg(long)]
    genesis_key: Option<String>,
    /// HTTP address of `GET /sections`.
    #[arg(long, value_name = "ADDR")]
    http_listen: std::net::SocketAddr,
    /// Length of one DKG round, in milliseconds (50 to 60000).
    #[arg(long, default_value_t = 1000)]
    round_ms: u64,
    /// Elders a section selects (1 to 12); every node of the network must use the same.
    #[arg(long, default_value_t = keyquorum_sections::elders::ELDER_COUNT)]
    elder_count: usize,
    /// Fewest members each half of a split must hold; every node of the network must use the
    /// same.
    #[arg(long, default_value_t = keyquorum_sections::elders::MIN_SECTION_SIZE)]
    min_section_size: usize,
    /// Most members this node, as an elder, admits to its section; a join past it is refused.
    /// Every node of the network should use the same: elders with different caps admit
    /// differently, their member lists differ, and none of their starts may gather a
    /// supermajority until the lists agree again.
    #[arg(long, default_value_t = keyquorum_sections::elders::MAX_MEMBERS)]
    max_members: usize,
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Nodes in the section at the end, the genesis node included (2 to 64).
    #[arg(long, default_value_t = 7)]
    nodes: usize,
    /// Seed of the genesis key.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output: lines then the chain's JSON, or one JSON object.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

/// Runs `keyquorum sections`.
pub fn run(args: SectionsArgs) -> Result<(), CliError> {
    match args.command {
        SectionsCommand::Demo(args) => demo(args),
        SectionsCommand::Node(args) => node(args),
        SectionsCommand::Leave(args) => leave(args),
    }
}

/// What `sections leave` prints, and why it failed if it did.
fn leave_report(left: &sections_node::Left) -> (String, Option<String>) {
    let again = if left.again {
        " (this node had left before; the elders were asked again)"
    } else {
        ""
    };
    let (removed, asked) = (left.removal.removed, left.asked);
    if asked == 0 {
        return (
            format!(
                "no other elder to ask: this node was its section's only elder, and the section \
                 has none left{again}"
            ),
            None,
        );
    }
    let report = format!("removed by {removed} of {asked} elders{again}");
    let failure = if removed > 0 {
        None
    } else if left.removal.other_section == asked {
        Some(
            "every elder asked serves another section: this node's state predates a split of \
             its section; start the node to catch up (with --bootstrap at a node of its half if \
             needed), stop it, and leave again"
                .to_string(),
        )
    } else {
        Some("no elder confirmed the removal".to_string())
    };
    (report, failure)
}

fn leave(args: LeaveArgs) -> Result<(), CliError> {
    keyquorum_node::cli::init_logging();
    let source = match &args.passphrase_file {
        Some(p) => PassphraseSource::File(p.clone()),
        None => PassphraseSource::Env(args.passphrase_env.clone()),
    };
    let pass = source.read().map_err(CliError::failed)?;
    let keys = keystore::read(&args.key_file, &pass).map_err(CliError::failed)?;
    drop(pass);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::failed)?;
    let left = rt
        .block_on(sections_node::leave(
            &args.data_dir,
            Arc::new(keys),
            args.force,
        ))
        .map_err(CliError::failed)?;
    let (report, failure) = leave_report(&left);
    println!("{report}");
    if let Some(f) = failure {
        return Err(CliError::failed(f));
    }
    // Elders of another section never listed this node: only the others may still.
    let (removed, elders) = (
        left.removal.removed,
        left.asked - left.removal.other_section,
    );
    if removed < elders {
        eprintln!(
            "keyquorum sections leave: warning: {} elder(s) did not confirm and still list this \
             node; each drops it at its next SAP or restart if enough of the elders that \
             confirmed are still elders then and report it departed",
            elders - removed
        );
    }
    Ok(())
}

fn node(args: NodeArgs) -> Result<(), CliError> {
    keyquorum_node::cli::init_logging();
    let usage = |what: &str, e: &dyn std::fmt::Display| CliError::Usage(format!("{what}: {e}"));
    let listen: Multiaddr = args
        .p2p_listen
        .parse()
        .map_err(|e| usage("--p2p-listen", &e))?;
    let bootstrap = args
        .bootstrap
        .iter()
        .map(|b| b.parse::<Multiaddr>().map_err(|e| usage("--bootstrap", &e)))
        .collect::<Result<Vec<_>, _>>()?;
    let genesis_key = match &args.genesis_key {
        None => None,
        Some(h) => {
            let bytes = hex::decode(h).map_err(|e| usage("--genesis-key", &e))?;
            Some(decode_key(&bytes).map_err(|e| usage("--genesis-key", &e))?)
        }
    };
    if let Some(b) = bootstrap
        .iter()
        .find(|b| !matches!(b.iter().last(), Some(Protocol::P2p(_))))
    {
        return Err(CliError::Usage(format!(
            "--bootstrap {b} lacks the peer's id: end it in /p2p/<peer id>"
        )));
    }
    if !(50..=60_000).contains(&args.round_ms) {
        return Err(CliError::Usage(
            "--round-ms must be between 50 and 60000".into(),
        ));
    }
    if !(1..=MAX_ELDER_COUNT).contains(&args.elder_count) {
        return Err(CliError::Usage(format!(
            "--elder-count must be between 1 and {MAX_ELDER_COUNT}: handover partials are checked in sets of a supermajority, and above {MAX_ELDER_COUNT} elders a faulty elder's bad partials could keep a handover from ever completing"
        )));
    }
    if args.min_section_size == 0 {
        return Err(CliError::Usage(
            "--min-section-size must be at least 1".into(),
        ));
    }
    // A node still lists the other half's members after a split, until its next SAP; a cap
    // of at most half the store's bound leaves room for them.
    let stored = keyquorum_node::sections_store::MAX_STORED_MEMBERS / 2;
    if !(1..=stored).contains(&args.max_members) {
        return Err(CliError::Usage(format!(
            "--max-members must be between 1 and {stored}"
        )));
    }
    let source = match &args.passphrase_file {
        Some(p) => PassphraseSource::File(p.clone()),
        None => PassphraseSource::Env(args.passphrase_env.clone()),
    };
    let pass = source.read().map_err(CliError::failed)?;
    let keys = keystore::read(&args.key_file, &pass).map_err(CliError::failed)?;
    drop(pass);
    let config = SectionsNodeConfig {
        data_dir: args.data_dir,
        listen,
        bootstrap,
        genesis_key,
        http_listen: args.http_listen,
        round: Duration::from_millis(args.round_ms),
        params: SectionParams {
            elder_count: args.elder_count,
            min_section_size: args.min_section_size,
        },
        max_members: args.max_members,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::failed)?;
    rt.block_on(async move {
        sections_node::run(
            config,
            Arc::new(keys),
            keyquorum_node::cli::shutdown_signal(),
        )
        .await
        .map_err(|e| match e {
            sections_node::SectionsNodeError::Usage(m) => CliError::Usage(m),
            // The flags contradict the data directory, as at a join they contradict the
            // network: a usage error either way.
            sections_node::SectionsNodeError::Store(
                e @ (keyquorum_node::sections_store::SectionsStoreError::OtherParams { .. }
                | keyquorum_node::sections_store::SectionsStoreError::OtherRound { .. }),
            ) => CliError::Usage(e.to_string()),
            e @ sections_node::SectionsNodeError::NotAdmitted(a) if a.only_other_params() => {
                CliError::Usage(e.to_string())
            }
            e => CliError::failed(e),
        })
    })
}

fn demo(args: DemoArgs) -> Result<(), CliError> {
    if !(2..=MAX_NODES).contains(&args.nodes) {
        return Err(CliError::Usage(format!(
            "--nodes must be between 2 and {MAX_NODES}, not {}",
            args.nodes
        )));
    }
    let root = Prefix::ROOT;
    let mut net = Network::new(args.seed);
    for i in 1..args.nodes {
        // Each joiner is older than the last, so each changes the elders.
        net.join(200 - i as u8);
        net.elect(&root);
        net.check().map_err(CliError::failed)?;
        if args.format == OutputFormat::Text {
            let node = net.node(&net.reference(&root));
            eprintln!(
                "{} nodes: {} elders, {} keys in the chain",
                i + 1,
                node.sap().elders.len(),
                node.chain().key_count()
            );
        }
    }
    let node = net.node(&net.reference(&root));
    let chain = node.chain();
    chain
        .verify_from(&net.genesis_key)
        .map_err(|e| CliError::failed(format!("the key chain does not verify: {e}")))?;
    let genesis = hex::encode(key_bytes(&net.genesis_key));
    let section = hex::encode(key_bytes(&node.sap().section_key));
    let chain_json = serde_json::to_value(chain).map_err(CliError::failed)?;
    match args.format {
        OutputFormat::Json => {
            let out = serde_json::json!({
                "genesis_key": genesis,
                "section_key": section,
                "elders": node.sap().names().iter().map(|n| hex::encode(n.0)).collect::<Vec<_>>(),
                "chain": chain_json,
                "verified": true,
            });
            println!("{out}");
        }
        OutputFormat::Text => {
            println!("genesis key {genesis}");
            println!("section key {section}");
            println!(
                "{} elders; the chain of {} keys verifies from the genesis key",
                node.sap().elders.len(),
                chain.key_count()
            );
            println!(
                "{}",
                serde_json::to_string_pretty(&chain_json).map_err(CliError::failed)?
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod leave_tests {
    use super::leave_report;
    use keyquorum_node::sections_node::{Left, join::Removal};

    fn left(asked: usize, removed: usize, other_section: usize, again: bool) -> Left {
        Left {
            asked,
            removal: Removal {
                removed,
                other_section,
            },
            again,
        }
    }

    /// A lone elder is not told it was "removed by 0 of 0 elders"; a node whose SAP predates
    /// a split is told why every elder refused; a second leave says so.
    #[test]
    fn the_leave_report_says_what_happened() {
        let (lone, failure) = leave_report(&left(0, 0, 0, false));
        assert!(lone.contains("only elder"), "{lone}");
        assert_eq!(failure, None);
        let (report, failure) = leave_report(&left(3, 0, 3, false));
        assert_eq!(report, "removed by 0 of 3 elders");
        assert!(failure.unwrap().contains("predates a split"));
        let (_, failure) = leave_report(&left(3, 0, 1, false));
        assert_eq!(failure.as_deref(), Some("no elder confirmed the removal"));
        let (again, failure) = leave_report(&left(3, 2, 0, true));
        assert!(
            again.starts_with("removed by 2 of 3 elders (this node had left before"),
            "{again}"
        );
        assert_eq!(failure, None);
    }
}
