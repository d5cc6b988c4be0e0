//! `keyquorum sections demo`: a section grown in one process from the genesis node to its
//! elders (`keyquorum_sections::simulation`: real DKGs among the candidates, every message over
//! the wire encoding), then its key chain printed as JSON and verified from the genesis key.
//! Exit 0 when every step's invariants held and the chain verifies, 1 otherwise, 2 on usage
//! errors.

use clap::{Args, Subcommand};
use keyquorum_node::cli::CliError;
use keyquorum_sections::Prefix;
use keyquorum_sections::keys::key_bytes;
use keyquorum_sections::simulation::Network;

use crate::OutputFormat;

/// Most nodes the demo grows the section to.
const MAX_NODES: usize = 64;

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
    }
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
