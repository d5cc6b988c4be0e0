//! `keyquorum`: command-line entry point.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod chain;
mod demo;
mod demo_report;
use keyquorum_sim::{AdversaryKind, CurveChoice, NetModel, SimConfig};

/// Distributed key generation and validator-set view changes for blockchains.
#[derive(Parser, Debug)]
#[command(name = "keyquorum", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Simulate ceremonies in one process with adversaries, and check every invariant.
    Sim(SimArgs),
    /// Run the embedded chain with the view-change contract and its HTTP API.
    Chain(chain::ChainArgs),
    /// Run a validator node: follows the chain and takes part in view changes with its peers.
    Node(keyquorum_node::cli::NodeArgs),
    /// Manage node keys (encrypted keystores).
    Keys(keyquorum_node::cli::KeysArgs),
    /// Run a whole validator network on this machine: chain, node processes, view changes.
    Demo(demo::DemoArgs),
}

#[derive(Args, Debug)]
struct SimArgs {
    /// Committee size n.
    #[arg(long, default_value_t = 16)]
    nodes: usize,
    /// Threshold t (default: n - floor((n - 1) / 3)).
    #[arg(long)]
    threshold: Option<usize>,
    /// Dealer quorum k (default: n - floor((n - 1) / 3)).
    #[arg(long)]
    quorum: Option<usize>,
    /// Number of adversarial participants (default: floor((n - 1) / 3)).
    #[arg(long)]
    byzantine: Option<usize>,
    /// Comma-separated adversary kinds, or `all` for a random mix of every kind.
    #[arg(long, default_value = "all")]
    faults: String,
    /// Seed of the first run; run r uses seed + r.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of runs.
    #[arg(long, default_value_t = 1)]
    runs: u64,
    /// Protocol variant: ack-reveal | complaint.
    #[arg(long, default_value = "ack-reveal")]
    variant: String,
    /// Curve: bls12-381 | secp256k1.
    #[arg(long, default_value = "bls12-381")]
    curve: String,
    /// Run a fresh ceremony, then reshare the key to a changed committee under the adversaries.
    #[arg(long)]
    reshare: bool,
    /// Print a JSON summary instead of the human summary line.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Sim(args) => match sim(args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Chain(args) => match chain::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Node(args) => exit_code(keyquorum_node::cli::node(args)),
        Command::Keys(args) => exit_code(keyquorum_node::cli::keys(args)),
        Command::Demo(args) => match demo::run(args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
}

fn exit_code(r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn sim(args: SimArgs) -> Result<ExitCode, String> {
    let n = args.nodes;
    if n == 0 {
        return Err("--nodes must be at least 1".into());
    }
    let f = keyquorum_dkg::Params::bft_faults(n);
    let base = SimConfig {
        nodes: n,
        threshold: args.threshold.unwrap_or(n - f),
        quorum: args.quorum.unwrap_or(n - f),
        byzantine: args.byzantine.unwrap_or(f),
        faults: AdversaryKind::parse_list(&args.faults)?,
        seed: args.seed,
        variant: keyquorum_sim::parse_variant(&args.variant)?,
        curve: args.curve.parse::<CurveChoice>()?,
        reshare: args.reshare,
        reshare_grow: 0,
        net: NetModel::default(),
    };
    keyquorum_dkg::Params::new(base.nodes, base.threshold, base.quorum)
        .map_err(|e| e.to_string())?;
    let mut passed = 0u64;
    let mut failures = Vec::new();
    let mut total_ms = 0.0;
    let stderr = std::io::stderr();
    for r in 0..args.runs {
        let cfg = SimConfig {
            seed: args.seed.wrapping_add(r),
            ..base.clone()
        };
        let report = keyquorum_sim::run(&cfg);
        total_ms += report.elapsed_ms;
        let adversaries: Vec<String> = report
            .adversaries
            .iter()
            .map(|(m, k)| format!("{m}:{k}"))
            .collect();
        let line = format!(
            "run {:>4} seed {:<20} {} {:>8.1} ms  qualified {:>3}/{}  attempts {}  adversaries [{}]{}",
            r + 1,
            cfg.seed,
            if report.passed { "ok  " } else { "FAIL" },
            report.elapsed_ms,
            report.qualified.len(),
            n,
            report.attempts,
            adversaries.join(" "),
            report
                .failure
                .as_ref()
                .map(|f| format!("  reason: {f}"))
                .unwrap_or_default()
        );
        // Progress lines go to stderr with --json so stdout stays one JSON object.
        if args.json {
            let _ = writeln!(stderr.lock(), "{line}");
        } else {
            println!("{line}");
        }
        if report.passed {
            passed += 1;
        } else {
            failures.push((cfg.seed, report.failure.unwrap_or_default()));
        }
    }
    let runs = args.runs;
    let mean = if runs > 0 {
        total_ms / runs as f64
    } else {
        0.0
    };
    if args.json {
        let summary = serde_json::json!({
            "runs": runs,
            "passed": passed,
            "failed": failures.len(),
            "failures": failures
                .iter()
                .map(|(seed, reason)| serde_json::json!({ "seed": seed, "reason": reason }))
                .collect::<Vec<_>>(),
            "mean_ms": (mean * 1000.0).round() / 1000.0,
        });
        println!("{summary}");
    } else {
        println!(
            "{passed}/{runs} runs passed, {} failed, mean {mean:.1} ms per run",
            failures.len()
        );
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
