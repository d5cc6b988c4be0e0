//! `keyquorum`: command-line entry point.

use std::io::Write;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

/// `println!` that ignores a closed stdout: a demo whose reader went away (`| head`) runs to
/// its end and stops its nodes, instead of panicking at its next line.
macro_rules! out {
    () => {
        out!("")
    };
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` that ignores a closed stdout, as [`out!`].
macro_rules! out_text {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

mod beacon;
mod chain;
mod demo;
mod demo_anvil;
mod demo_beacon;
mod demo_latency;
mod demo_report;
mod demo_sections;
mod demo_sign;
mod demo_signing_key;
mod deploy;
mod sections;
mod sim_sections;
use keyquorum_contract::Size;
use keyquorum_node::cli::{CliError, EXIT_CODES};
use keyquorum_sim::{
    AdversaryKind, CurveChoice, IndicesChoice, NetModel, SimConfig, VariantChoice,
};

/// Distributed key generation and validator-set view changes for blockchains.
#[derive(Parser, Debug)]
#[command(name = "keyquorum", version, about, long_about = None, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Simulate ceremonies in one process with adversaries, and check every invariant.
    #[command(after_help = EXIT_CODES)]
    Sim(SimArgs),
    /// Run the embedded chain with the view-change contract and its HTTP API.
    #[command(after_help = EXIT_CODES)]
    Chain(chain::ChainArgs),
    /// Run a validator node: follows the chain and takes part in view changes with its peers.
    #[command(after_help = EXIT_CODES)]
    Node(keyquorum_node::cli::NodeArgs),
    /// Manage node keys (encrypted keystores).
    #[command(after_help = EXIT_CODES)]
    Keys(keyquorum_node::cli::KeysArgs),
    /// A node's account on the embedded chain: show it, transfer, stake, unbond, deregister,
    /// cancel a scheduled deregistration, claim unbonded stake.
    #[command(after_help = EXIT_CODES)]
    Account(keyquorum_node::account::AccountArgs),
    /// Run a whole validator network on this machine: chain, node processes, view changes.
    #[command(
        after_help = EXIT_CODES,
        mut_arg("beacon_period", |a| a.help(
            "Seconds between beacon rounds, 1 to 3600 [default on the embedded chain: 3 up to 64 \
             members, then growing with n (n - 1), the partials a round sends across this one \
             machine: 13 at 128]"
        ))
    )]
    Demo(demo::DemoArgs),
    /// Verify rounds of a drand-compatible random beacon.
    #[command(after_help = EXIT_CODES)]
    Beacon(beacon::BeaconArgs),
    /// Deploy the coordinator contract on an EVM chain (JSON-RPC) and print its address.
    #[command(after_help = EXIT_CODES)]
    Deploy(deploy::DeployArgs),
    /// Sections without a chain: elders hand a section key over through DKGs among candidates
    /// (also `keyquorum section`).
    #[command(after_help = EXIT_CODES, visible_alias = "section")]
    Sections(sections::SectionsArgs),
}

/// What `keyquorum sim` simulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SimMode {
    /// DKG and resharing ceremonies on a simulated chain.
    Ceremonies,
    /// Sections of elders: joins, leaves, splits, failure agreements and handovers.
    Sections,
}

/// How a subcommand prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Lines for a person.
    Text,
    /// One JSON object on stdout (progress, if any, on stderr).
    Json,
}

#[derive(Args, Debug)]
struct SimArgs {
    /// Committee size n (participants of each ceremony). Every simulated participant keeps
    /// its own copy of every commitment in this process, about n^3 points: a committee whose run
    /// cannot fit in the memory available is refused (see docs/performance.md).
    #[arg(long, default_value_t = 16)]
    committee: usize,
    /// Threshold t: a count, or a percentage of n rounded up as the chain's configuration
    /// takes it (`67%`) (default: n - floor((n - 1) / 3)).
    #[arg(long, value_parser = parse_size)]
    threshold: Option<Size>,
    /// Dealer quorum k: a count, or a percentage of n rounded up (`75%`) (default:
    /// n - floor((n - 1) / 3)).
    #[arg(long, value_parser = parse_size)]
    quorum: Option<Size>,
    /// Number of faulty (adversarial) participants (default: the most the parameters tolerate,
    /// min(floor((n - 1) / 3), n - k); with --reshare-committee M of another size, at most
    /// floor((M - 1) / 3) too).
    #[arg(long)]
    faulty: Option<usize>,
    /// What the faulty participants do, drawn at random per participant; repeat or separate
    /// with commas for several (default: every kind).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "KIND")]
    fault: Vec<AdversaryKind>,
    /// Seed of the first run; run r uses seed + r.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of runs (seeds).
    #[arg(long, alias = "seeds", default_value_t = 1)]
    runs: u64,
    /// What to simulate: the contract-driven ceremonies, or sections of elders (their own
    /// options below, marked "Sections mode"). An option of the other mode is a usage error.
    #[arg(long, value_enum, default_value_t = SimMode::Ceremonies)]
    mode: SimMode,
    #[command(flatten)]
    sections: sim_sections::SectionsSimArgs,
    /// Protocol variant.
    #[arg(long, value_enum, default_value_t = VariantChoice::AckReveal)]
    variant: VariantChoice,
    /// Curve.
    #[arg(long, value_enum, default_value_t = CurveChoice::Bls12381)]
    curve: CurveChoice,
    /// Share indices: 1..n, hashes of the members' public keys (seed 003), or roots of unity
    /// (secp256k1: committees of at most 64).
    #[arg(long, value_enum, default_value_t = IndicesChoice::Sequential)]
    indices: IndicesChoice,
    /// Run a fresh ceremony, then reshare the key to a changed committee under the adversaries:
    /// the first member leaves, one joins.
    #[arg(long)]
    reshare: bool,
    /// With --reshare, the new committee's size (default: --committee): the first member
    /// leaves, newcomers fill a larger committee, and a smaller one also loses the old members
    /// past its size. A size other than --committee takes BFT parameters for it.
    #[arg(long, value_name = "M")]
    reshare_committee: Option<usize>,
    /// Output: a line per run and a summary, or (json) one JSON object on stdout (the summary,
    /// and every run under `results`: seed, result, ms, key_made, qualified, attempts, excluded,
    /// adversaries, reason, spoofed_messages_dropped, foreign_posts_refused) with the progress
    /// lines on stderr; an exclusion reads `role seat fault` with the member after the seat,
    /// as in `player 9 (member 10) false_complaint`. In sections mode a run's fields are seed, result, ms, sessions,
    /// handovers, splits, sections, restarts, crash_restarts, refused, failed_combinations,
    /// faults_placed, unsettled_steps and violation.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let prints_and_exits = match &cli.command {
        Command::Sim(_)
        | Command::Keys(_)
        | Command::Account(_)
        | Command::Beacon(_)
        | Command::Deploy(_) => true,
        Command::Sections(_) => {
            matches
                .subcommand_matches("sections")
                .and_then(|m| m.subcommand_name())
                == Some("demo")
        }
        // `chain --print-contract` prints and exits without starting the chain.
        Command::Chain(args) => args.print_contract,
        _ => false,
    };
    if prints_and_exits {
        end_on_closed_stdout();
    }
    let result = match cli.command {
        Command::Sim(args) => match matches.subcommand_matches("sim") {
            Some(given) => refuse_other_mode_options(args.mode, given).and_then(|()| sim(args)),
            None => unreachable!("clap parsed the sim subcommand from these matches"),
        },
        Command::Chain(args) => chain::run(args),
        Command::Node(args) => keyquorum_node::cli::node(args),
        Command::Keys(args) => keyquorum_node::cli::keys(args),
        Command::Account(args) => keyquorum_node::account::run(args),
        Command::Demo(args) => match matches.subcommand_matches("demo") {
            Some(given) => {
                refuse_contract_demo_options(args.mode, given).and_then(|()| demo::run(args))
            }
            None => unreachable!("clap parsed the demo subcommand from these matches"),
        },
        Command::Beacon(args) => beacon::run(args),
        Command::Deploy(args) => deploy::run(args),
        Command::Sections(args) => sections::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match &e {
                CliError::Usage(m) => {
                    eprintln!("error: {m}\n\nFor more information, try '--help'.")
                }
                CliError::Failed(m) => eprintln!("error: {m}"),
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// Lets a command that only prints and exits end as any Unix filter does when its reader goes
/// away (`keyquorum sim ... | head`): by SIGPIPE, instead of a panic in `println!` (Rust ignores
/// the signal, so a write to a closed pipe fails). Not for the commands that run a node, a
/// chain or child processes: those outlive a closed pipe, or clean up before they exit.
fn end_on_closed_stdout() {
    // SAFETY: `signal` with the default disposition, before any other thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Options of `sim` that both modes use; every other option belongs to one mode.
const SIM_SHARED_OPTIONS: [&str; 4] = ["seed", "runs", "mode", "format"];

/// Refuses an option typed on the command line that the chosen mode would not read: a run that
/// silently dropped `--faulty` or `--elders` would report on parameters the user did not ask for.
/// The sections options are those of [`sim_sections::SectionsSimArgs`]; every other option not in
/// [`SIM_SHARED_OPTIONS`] is a ceremonies option, so a new option is covered when it is added.
fn refuse_other_mode_options(mode: SimMode, given: &ArgMatches) -> Result<(), CliError> {
    let sections = sim_sections::SectionsSimArgs::augment_args(clap::Command::new("sections"));
    let sim = SimArgs::augment_args(clap::Command::new("sim"));
    for arg in sim.get_arguments() {
        let id = arg.get_id().as_str();
        if SIM_SHARED_OPTIONS.contains(&id)
            || given.value_source(id) != Some(ValueSource::CommandLine)
        {
            continue;
        }
        let name = arg.get_long().unwrap_or(id);
        let of_sections = sections.get_arguments().any(|a| a.get_id() == arg.get_id());
        match (mode, of_sections) {
            (SimMode::Sections, false) => {
                return Err(CliError::Usage(format!(
                    "--{name} is an option of the ceremonies mode; --mode sections does not use it"
                )));
            }
            (SimMode::Ceremonies, true) => {
                return Err(CliError::Usage(format!(
                    "--{name} is an option of --mode sections; the ceremonies mode (the default) \
                     does not use it"
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Options of `demo --mode sections`; every other option is the contract demo's.
const SECTIONS_DEMO_OPTIONS: [&str; 5] = ["mode", "seed", "format", "json", "report"];

/// Refuses, with `--mode sections`, an option of the contract demo typed on the command line:
/// the sections demo would not read it.
fn refuse_contract_demo_options(mode: demo::DemoMode, given: &ArgMatches) -> Result<(), CliError> {
    if mode != demo::DemoMode::Sections {
        return Ok(());
    }
    let demo = demo::DemoArgs::augment_args(clap::Command::new("demo"));
    for arg in demo.get_arguments() {
        let id = arg.get_id().as_str();
        if SECTIONS_DEMO_OPTIONS.contains(&id)
            || given.value_source(id) != Some(ValueSource::CommandLine)
        {
            continue;
        }
        return Err(CliError::Usage(format!(
            "--{} is an option of the contract demo; --mode sections does not use it",
            arg.get_long().unwrap_or(id)
        )));
    }
    Ok(())
}

/// A `--threshold` or `--quorum`: a count (`11`) or a percentage of the committee (`67%`, 1 to
/// 100), resolved as the chain's configuration resolves it ([`Size::resolve`]).
fn parse_size(s: &str) -> Result<Size, String> {
    match s.strip_suffix('%') {
        Some(p) => match p.trim().parse::<u8>() {
            Ok(p) if (1..=100).contains(&p) => Ok(Size::Percent(p)),
            _ => Err(format!("{s}: a percentage must be 1% to 100%")),
        },
        None => s
            .parse::<u32>()
            .map(Size::Count)
            .map_err(|_| format!("{s}: a count (11) or a percentage of the committee (67%)")),
    }
}

/// The simulation's parameters from the arguments; every contradiction is a usage error.
fn sim_config(args: &SimArgs) -> Result<SimConfig, CliError> {
    let n = args.committee;
    if n == 0 {
        return Err(CliError::usage("--committee must be at least 1"));
    }
    let most = keyquorum_dkg::params::MAX_PARTICIPANTS;
    if n > most {
        return Err(CliError::Usage(format!(
            "--committee {n}: at most {most} participants"
        )));
    }
    if args.quorum == Some(Size::Count(0)) {
        return Err(CliError::usage("--quorum must be at least 1"));
    }
    if args.threshold == Some(Size::Count(0)) {
        return Err(CliError::usage("--threshold must be at least 1"));
    }
    let f = keyquorum_dkg::Params::bft_faults(n);
    let threshold = args.threshold.map_or(n - f, |t| t.resolve(n));
    // By default as many faulty members as the chosen parameters tolerate (`n - k`, within
    // the BFT bound), so that a run with a larger quorum is not beyond its bound by default.
    let quorum = args.quorum.map_or(n - f, |k| k.resolve(n));
    let faulty = args.faulty.unwrap_or(f.min(n.saturating_sub(quorum)));
    if faulty > n {
        return Err(CliError::Usage(format!(
            "--faulty {faulty} is larger than the committee (--committee {n})"
        )));
    }
    // A quorum above the committee is refused below, by the parameters' own check.
    if faulty == 0 && !args.fault.is_empty() && quorum <= n {
        return Err(CliError::Usage(format!(
            "--fault with no faulty participant (--faulty {}): nobody would commit it",
            if args.faulty.is_some() {
                "0".to_string()
            } else {
                format!(
                    "resolves to the fault bound min(floor((n - 1) / 3), n - k) = 0 for a \
                     committee of {n} and quorum {quorum}"
                )
            }
        )));
    }
    if args.runs == 0 {
        return Err(CliError::usage("--runs must be at least 1"));
    }
    match args.reshare_committee {
        Some(_) if !args.reshare => {
            return Err(CliError::usage(
                "--reshare-committee is the size of the committee --reshare hands the key to; \
                 add --reshare",
            ));
        }
        Some(0) => return Err(CliError::usage("--reshare-committee must be at least 1")),
        _ => {}
    }
    let cfg = SimConfig {
        nodes: n,
        threshold,
        quorum,
        byzantine: faulty,
        faults: if args.fault.is_empty() {
            AdversaryKind::ALL.to_vec()
        } else {
            args.fault.clone()
        },
        seed: args.seed,
        variant: args.variant.into(),
        curve: args.curve,
        indices: args.indices,
        reshare: args.reshare,
        reshare_committee: args.reshare_committee,
        net: NetModel::default(),
    };
    let mut cfg = cfg;
    if args.faulty.is_none() && cfg.reshare {
        // The default is the most both committees tolerate: a resized committee takes BFT
        // parameters for its size, and adversaries sit on members of both.
        let m = cfg.new_committee();
        let mut most = cfg.byzantine.min(cfg.max_adversaries());
        if m != n {
            most = most.min(keyquorum_dkg::Params::bft_faults(m));
        }
        cfg.byzantine = most;
        if most == 0 && faulty > 0 && !args.fault.is_empty() {
            let m = cfg.new_committee();
            return Err(CliError::Usage(format!(
                "--fault with no faulty participant (--faulty resolves to 0 with --reshare: \
                 the most both committees tolerate, with {n} members handing the key to {m} \
                 of whom at most floor(({m} - 1) / 3) = {} may fail, and adversaries only on \
                 members of both): nobody would commit it; set --faulty or a larger \
                 --reshare-committee",
                keyquorum_dkg::Params::bft_faults(m)
            )));
        }
    }
    let faulty = cfg.byzantine;
    if faulty > cfg.max_adversaries() {
        let smaller = match args.reshare_committee {
            Some(m) if m < n - 1 => format!(" (and members past --reshare-committee {m})"),
            _ => String::new(),
        };
        return Err(CliError::Usage(format!(
            "--faulty {faulty} with --reshare and --committee {n}: adversaries sit on members of \
             both committees and member 0 leaves{smaller}, so at most {} fit",
            cfg.max_adversaries()
        )));
    }
    keyquorum_dkg::Params::new(cfg.nodes, cfg.threshold, cfg.quorum).map_err(|e| {
        // A value the user did not give is the default for the committee, one given as a
        // percentage is that share of it: said so.
        let given = |set: Option<Size>| match set {
            Some(Size::Count(_)) => String::new(),
            Some(Size::Percent(p)) => format!(" ({p}% of {n}, rounded up)"),
            None => " (the default)".into(),
        };
        CliError::Usage(format!(
            "--threshold {}{} with --quorum {}{} and --committee {n}: {e}",
            cfg.threshold,
            given(args.threshold),
            cfg.quorum,
            given(args.quorum),
        ))
    })?;
    if cfg.reshare {
        // The new committee takes BFT parameters for its size.
        let m = cfg.new_committee();
        let bft = m - keyquorum_dkg::Params::bft_faults(m);
        keyquorum_dkg::Params::new(m, bft, bft)
            .map_err(|e| CliError::Usage(format!("--reshare-committee {m}: {e}")))?;
    }
    refuse_missing_index_domain(&cfg)?;
    refuse_beyond_memory(&cfg, available_memory())?;
    Ok(cfg)
}

/// The memory a simulated run holds, estimated, and how. Every simulated participant keeps its
/// own copy of every dealer's commitment, as each node does, all in this one process: `n^3`
/// points for a fresh key of `n` members, `n (m + 1) max(n, m + 1)` for a reshare from `n`
/// dealers to `m` players. In the complaint variant adversaries add to that what every board
/// keeps of their faults ([`complaint_bytes_per_adversary`]); their kinds are drawn from
/// `--fault`, so the expected mix counts. Measured with `/usr/bin/time` (docs/performance.md):
/// ack-or-reveal 475 bytes per point at `n = 128`, 429 at `n = 256`; complaint 1,120 to 1,220
/// at `n = 64` and 96 without faults.
fn sim_memory_estimate(cfg: &SimConfig) -> (u64, String) {
    let n = cfg.nodes as u64;
    let points = if cfg.reshare {
        let m1 = cfg.new_committee() as u64 + 1;
        (n * n * n).max(n * m1 * n.max(m1))
    } else {
        n * n * n
    };
    match cfg.variant {
        keyquorum_dkg::Variant::AckReveal => (
            480u64.saturating_mul(points),
            "480 bytes a point for the ack-or-reveal variant".into(),
        ),
        keyquorum_dkg::Variant::Complaint => {
            let kinds = cfg.faults.len().max(1) as u64;
            let per_draw: u64 = cfg
                .faults
                .iter()
                .map(|k| complaint_bytes_per_adversary(*k))
                .sum();
            // The adversaries' expected share, rounded up.
            let faults = (cfg.byzantine as u64 * per_draw).div_ceil(kinds);
            (
                (1_250 + faults).saturating_mul(points),
                format!(
                    "1250 bytes a point for the complaint variant, and {faults} more for the \
                     faults the {} adversaries are expected to commit",
                    cfg.byzantine
                ),
            )
        }
    }
}

/// The bytes per point of `n^3` that one adversary of `kind` adds to a complaint-variant run:
/// what every simulated board keeps of its fault. Complaints and disclosures carry the
/// complained-of dealer's whole commitment (bad-share, wrong-reveal, false-complaint), and the
/// evidence of a missing justification holds every report that asked for it (silent). Measured
/// at `n = 64` and 96 (docs/performance.md, "Simulator"), the larger figure rounded up; the
/// match has no catch-all, so a new kind needs its own measurement.
fn complaint_bytes_per_adversary(kind: AdversaryKind) -> u64 {
    match kind {
        AdversaryKind::WrongReveal => 320,
        AdversaryKind::BadShare => 280,
        AdversaryKind::FalseComplaint => 140,
        AdversaryKind::Silent => 70,
        AdversaryKind::WithholdAcks => 40,
        AdversaryKind::Late => 25,
        AdversaryKind::LostStorage => 20,
        AdversaryKind::Crash
        | AdversaryKind::Equivocate
        | AdversaryKind::Garbage
        | AdversaryKind::Spoof => 10,
        AdversaryKind::InvalidSignature => 0,
    }
}

/// The memory this process may still take: Linux's `MemAvailable`, or less under a cgroup
/// (v2) limit; the physical memory where `/proc/meminfo` is not there.
fn available_memory() -> Option<u64> {
    let from_meminfo = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let kib: u64 = info
                .lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()?;
            Some(kib.saturating_mul(1024))
        });
    let read = |f: &str| -> Option<u64> { std::fs::read_to_string(f).ok()?.trim().parse().ok() };
    // `max` (no limit) does not parse, as intended.
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .map(|max| max.saturating_sub(read("/sys/fs/cgroup/memory.current").unwrap_or(0)));
    let physical = || {
        // SAFETY: sysconf takes no pointers; a failure is -1, refused by try_from.
        let (pages, size) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        Some(
            u64::try_from(pages)
                .ok()?
                .saturating_mul(u64::try_from(size).ok()?),
        )
    };
    match (from_meminfo.or_else(physical), cgroup) {
        (Some(a), Some(c)) => Some(a.min(c)),
        (a, c) => a.or(c),
    }
}

/// Refuses a run whose estimated memory ([`sim_memory_estimate`]) is more than `available`,
/// which would otherwise run for minutes and then be killed; says on stderr when one run needs
/// more than a GiB.
fn refuse_beyond_memory(cfg: &SimConfig, available: Option<u64>) -> Result<(), CliError> {
    const GIB: f64 = (1u64 << 30) as f64;
    let (needed, how) = sim_memory_estimate(cfg);
    let committees = if cfg.reshare {
        format!(
            "a committee of {} resharing to {}",
            cfg.nodes,
            cfg.new_committee()
        )
    } else {
        format!("a committee of {}", cfg.nodes)
    };
    if let Some(available) = available
        && needed > available
    {
        // The largest fresh committee with the same faults under the same estimate.
        let mut fits = 0;
        while fits < cfg.nodes {
            let mut smaller = cfg.clone();
            smaller.nodes = fits + 1;
            // Adversaries in the same proportion.
            smaller.byzantine = cfg.byzantine * (fits + 1) / cfg.nodes;
            smaller.reshare = false;
            if sim_memory_estimate(&smaller).0 > available {
                break;
            }
            fits += 1;
        }
        return Err(CliError::Usage(format!(
            "{committees} does not fit in one simulation: every simulated participant keeps \
             its own copy of every commitment in this one process, about {how}, {:.1} GiB in \
             all, more than the {:.1} GiB of memory available here; a fresh key with these \
             faults fits committees up to about {fits} (a node holds only its own copy)",
            needed as f64 / GIB,
            available as f64 / GIB,
        )));
    }
    if needed as f64 > GIB {
        eprintln!(
            "keyquorum sim: a run of {committees} holds about {:.1} GiB ({how}); it prints its \
             line when it ends",
            needed as f64 / GIB,
        );
    }
    Ok(())
}

/// Refuses roots-of-unity indices for a committee larger than the curve's largest power-of-two
/// subgroup of scalars: the ceremony could not assign them, and every run would fail alike.
fn refuse_missing_index_domain(cfg: &SimConfig) -> Result<(), CliError> {
    use keyquorum_crypto::poly::Domain;
    use keyquorum_crypto::{Bls12381G1, Curve, Secp256k1};
    if cfg.indices != IndicesChoice::RootsOfUnity {
        return Ok(());
    }
    let largest = if cfg.reshare {
        cfg.nodes.max(cfg.new_committee())
    } else {
        cfg.nodes
    };
    fn domain<C: Curve>(n: usize) -> Result<(), String> {
        Domain::<C::Scalar>::new(n)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
    let found = match cfg.curve {
        CurveChoice::Bls12381 => domain::<Bls12381G1>(largest),
        CurveChoice::Secp256k1 => domain::<Secp256k1>(largest),
    };
    // The largest domain each curve has below the committee limit (secp256k1's scalar group
    // has a power-of-two subgroup of order 64 only).
    let most = match cfg.curve {
        CurveChoice::Bls12381 => keyquorum_dkg::params::MAX_PARTICIPANTS,
        CurveChoice::Secp256k1 => 64,
    };
    found.map_err(|e| {
        CliError::Usage(format!(
            "--indices roots-of-unity on {} for a committee of {largest}: {e}; use \
             --indices sequential or key-hash, or a committee of at most {most}",
            cfg.curve
        ))
    })
}

/// `keyquorum sim`: exit 1 when any run fails a check. Runs whose adversaries exceed the fault
/// bound are counted apart: they are neither ok nor failed.
fn sim(args: SimArgs) -> Result<(), CliError> {
    if args.seed.checked_add(args.runs.saturating_sub(1)).is_none() {
        return Err(CliError::Usage(format!(
            "--seed {} with --runs {}: run r uses seed + r, which would pass {}",
            args.seed,
            args.runs,
            u64::MAX
        )));
    }
    if args.mode == SimMode::Sections {
        return sim_sections::run(&args.sections, args.seed, args.runs, args.format);
    }
    let base = sim_config(&args)?;
    let n = base.nodes;
    let json = args.format == OutputFormat::Json;
    // The parameters in effect, defaults resolved, so that a run can be read and repeated.
    let parameters = serde_json::json!({
        "committee": base.nodes,
        "threshold": base.threshold,
        "quorum": base.quorum,
        "faulty": base.byzantine,
        "variant": args.variant.to_string(),
        "curve": base.curve.to_string(),
        "indices": base.indices.to_string(),
        "reshare_committee": base.reshare.then(|| base.new_committee()),
        "faults": base.faults.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
        "seed": args.seed,
        "runs": args.runs,
    });
    if !json {
        println!(
            "committee {} threshold {} quorum {} faulty {}{} · {} on {}, {} indices{}",
            base.nodes,
            base.threshold,
            base.quorum,
            base.byzantine,
            if base.byzantine > 0 {
                format!(
                    " ({})",
                    base.faults
                        .iter()
                        .map(|k| k.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                )
            } else {
                String::new()
            },
            args.variant,
            base.curve,
            base.indices,
            if base.reshare {
                format!(
                    " · then reshared to a committee of {}",
                    base.new_committee()
                )
            } else {
                String::new()
            }
        );
    }
    let mut passed = 0u64;
    let mut beyond = Vec::new();
    let mut failures = Vec::new();
    let mut results = Vec::new();
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
            "run {:>4} seed {:<20} {} {:>8.1} ms  {}  adversaries [{}]{}{}",
            r + 1,
            cfg.seed,
            match (report.passed, &report.beyond_fault_bound) {
                (false, _) => "FAIL  ",
                (true, Some(_)) => "BEYOND",
                (true, None) => "ok    ",
            },
            report.elapsed_ms,
            outcome_column(report.qualified.len(), n, report.attempts),
            adversaries.join(" "),
            spoofing_column(&report),
            report
                .failure
                .as_ref()
                .or(report.beyond_fault_bound.as_ref())
                .map(|f| format!("  reason: {f}"))
                .unwrap_or_default()
        );
        // Progress lines go to stderr with --format json so stdout stays one JSON object.
        if json {
            let _ = writeln!(stderr.lock(), "{line}");
            results.push(run_json(&report, cfg.seed));
        } else {
            println!("{line}");
        }
        // Beyond the fault bound the protocol promises no liveness: neither ok nor failed.
        match (report.passed, report.beyond_fault_bound) {
            (false, _) => failures.push((cfg.seed, report.failure.unwrap_or_default())),
            (true, Some(note)) => beyond.push((cfg.seed, note)),
            (true, None) => passed += 1,
        }
    }
    let runs = args.runs;
    let mean = if runs > 0 {
        total_ms / runs as f64
    } else {
        0.0
    };
    if json {
        let summary = serde_json::json!({
            "parameters": parameters,
            "runs": runs,
            "passed": passed,
            "beyond_fault_bound": beyond.len(),
            "failed": failures.len(),
            "failures": failures
                .iter()
                .map(|(seed, reason)| serde_json::json!({ "seed": seed, "reason": reason }))
                .collect::<Vec<_>>(),
            "beyond": beyond
                .iter()
                .map(|(seed, note)| serde_json::json!({ "seed": seed, "reason": note }))
                .collect::<Vec<_>>(),
            "mean_ms": (mean * 1000.0).round() / 1000.0,
            "results": results,
        });
        println!("{summary}");
    } else {
        println!(
            "{passed}/{runs} runs passed, {} beyond the fault bound (no guarantee), {} failed, mean {mean:.1} ms per run",
            beyond.len(),
            failures.len()
        );
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{} of {runs} runs failed a check",
            failures.len()
        )))
    }
}

/// One simulator run as `--format json` lists it under `results`: what the progress line
/// says, as fields.
fn run_json(report: &keyquorum_sim::RunReport, seed: u64) -> serde_json::Value {
    let result = match (report.passed, &report.beyond_fault_bound) {
        (false, _) => "failed",
        (true, Some(_)) => "beyond_fault_bound",
        (true, None) => "ok",
    };
    serde_json::json!({
        "seed": seed,
        "result": result,
        "ms": (report.elapsed_ms * 1000.0).round() / 1000.0,
        "key_made": !report.qualified.is_empty(),
        "qualified": report.qualified,
        "attempts": report.attempts,
        "excluded": report.excluded,
        "adversaries": report
            .adversaries
            .iter()
            .map(|(member, kind)| serde_json::json!({ "member": member, "kind": kind.to_string() }))
            .collect::<Vec<_>>(),
        "reason": report.failure.as_ref().or(report.beyond_fault_bound.as_ref()),
        "spoofed_messages_dropped": report.wrong_sender,
        "foreign_posts_refused": report.foreign_posts,
    })
}

/// What spoofing the run saw, if any: forged direct messages the honest members dropped and
/// posts in another member's name the board refused (so a `spoof` run shows it forged).
fn spoofing_column(report: &keyquorum_sim::RunReport) -> String {
    if report.wrong_sender == 0 && report.foreign_posts == 0 {
        return String::new();
    }
    format!(
        "  spoofed: {} messages dropped, {} posts refused",
        report.wrong_sender, report.foreign_posts
    )
}

/// A simulator run's key in its progress line: the last ceremony's qualified dealers of `n`
/// and the attempt it took, or that no key was made (a run that failed, or went beyond the
/// fault bound without a key, has no qualified set to count).
fn outcome_column(qualified: usize, n: usize, attempts: u32) -> String {
    if qualified == 0 {
        format!("{:<27}", "no key made")
    } else {
        format!("qualified {qualified:>3}/{n}  attempts {attempts}")
    }
}

#[cfg(test)]
mod tests {
    use super::{outcome_column, run_json};

    /// `--format json` lists every run with its outcome, key and adversaries.
    #[test]
    fn a_run_is_listed_with_its_outcome_in_json() {
        let mut cfg = keyquorum_sim::SimConfig::bft(4, 3);
        cfg.byzantine = 1;
        cfg.faults = vec![keyquorum_sim::AdversaryKind::Silent];
        let report = keyquorum_sim::run(&cfg);
        let v = run_json(&report, 3);
        assert_eq!(v["seed"], 3);
        assert_eq!(v["result"], "ok", "{v}");
        assert_eq!(v["key_made"], true);
        assert_eq!(
            v["qualified"].as_array().unwrap().len(),
            report.qualified.len()
        );
        assert_eq!(v["adversaries"][0]["kind"], "silent");
        assert_eq!(v["adversaries"][0]["member"], report.adversaries[0].0);
        assert!(v["reason"].is_null());
        assert_eq!(v["spoofed_messages_dropped"], 0);
        assert_eq!(v["foreign_posts_refused"], 0);
        assert_eq!(super::spoofing_column(&report), "");

        // A spoofer's forgeries are counted where a user can see them.
        cfg.faults = vec![keyquorum_sim::AdversaryKind::Spoof];
        let report = keyquorum_sim::run(&cfg);
        let v = run_json(&report, 3);
        let forged = v["spoofed_messages_dropped"].as_u64().unwrap()
            + v["foreign_posts_refused"].as_u64().unwrap();
        assert!(forged > 0, "{v}");
        assert!(super::spoofing_column(&report).starts_with("  spoofed: "));

        cfg.byzantine = 3;
        let report = keyquorum_sim::run(&cfg);
        let v = run_json(&report, 3);
        assert_eq!(v["result"], "beyond_fault_bound", "{v}");
        assert!(
            v["reason"]
                .as_str()
                .unwrap()
                .starts_with("beyond the fault bound")
        );
    }

    /// A committee whose simulation cannot fit in the memory available is refused with the
    /// largest that fits; an unknown amount refuses nothing; a reshare counts its larger committee.
    #[test]
    fn a_simulation_beyond_the_memory_available_is_refused() {
        const GIB: u64 = 1 << 30;
        let refusal = |cfg: &keyquorum_sim::SimConfig, gib: u64| {
            super::refuse_beyond_memory(cfg, Some(gib * GIB))
                .err()
                .map(|e| e.to_string())
        };
        let cfg = keyquorum_sim::SimConfig::bft(256, 1);
        // 480 bytes x 256^3 = 7.5 GiB; 4 GiB / 480 bytes is 207.5^3.
        let msg = refusal(&cfg, 4).expect("refused");
        assert!(msg.contains("a committee of 256 does not fit"), "{msg}");
        assert!(msg.contains("480 bytes a point"), "{msg}");
        assert!(
            msg.contains("7.5 GiB in all, more than the 4.0 GiB"),
            "{msg}"
        );
        assert!(msg.contains("committees up to about 207 "), "{msg}");
        assert_eq!(refusal(&cfg, 8), None);
        assert!(super::refuse_beyond_memory(&cfg, None).is_ok());
        // The complaint variant without faults: 1250 bytes a point, 19.5 GiB.
        let mut complaint = cfg.clone();
        complaint.variant = keyquorum_dkg::Variant::Complaint;
        complaint.byzantine = 0;
        assert!(refusal(&complaint, 16).is_some());
        assert_eq!(refusal(&complaint, 20), None);
        // 31 bad-share dealers at n = 96 (measured 7.5 GiB): (1250 + 31 x 280) x 96^3 = 8.2 GiB.
        let mut faulty = keyquorum_sim::SimConfig::bft(96, 1);
        faulty.variant = keyquorum_dkg::Variant::Complaint;
        faulty.faults = vec![keyquorum_sim::AdversaryKind::BadShare];
        let msg = refusal(&faulty, 8).expect("refused");
        assert!(
            msg.contains("8680 more for the faults the 31 adversaries"),
            "{msg}"
        );
        assert!(msg.contains("8.2 GiB in all"), "{msg}");
        assert_eq!(refusal(&faulty, 9), None);
        // 31 silent members (measured 2.5 GiB, twice a run without faults: the evidence of
        // each missing justification holds the reports that asked for it): 2.8 GiB.
        faulty.faults = vec![keyquorum_sim::AdversaryKind::Silent];
        let msg = refusal(&faulty, 2).expect("refused");
        assert!(msg.contains("2.8 GiB in all"), "{msg}");
        assert_eq!(refusal(&faulty, 3), None);
        // The default mix: 31 x 935 / 12 bytes, rounded up, for the faults.
        faulty.faults = keyquorum_sim::AdversaryKind::ALL.to_vec();
        let msg = refusal(&faulty, 3).expect("refused");
        assert!(msg.contains("2416 more"), "{msg}");
        assert_eq!(refusal(&faulty, 4), None);
        // A reshare from 64 dealers to 256 players: 64 x 257 x 257 points, 1.9 GiB.
        let mut reshare = keyquorum_sim::SimConfig::bft(64, 1);
        reshare.reshare = true;
        reshare.reshare_committee = Some(256);
        let msg = refusal(&reshare, 1).expect("refused");
        assert!(msg.contains("a committee of 64 resharing to 256"), "{msg}");
        assert!(msg.contains("1.9 GiB in all"), "{msg}");
        assert_eq!(refusal(&reshare, 2), None);
    }

    /// `--threshold` and `--quorum` take a count or a percentage of the committee, rounded up
    /// as the chain's configuration rounds it; anything else is refused naming both forms.
    #[test]
    fn the_simulators_threshold_and_quorum_take_a_percentage_as_the_chain_does() {
        use super::{Cli, Command, Size, parse_size, sim_config};
        use clap::Parser;
        assert_eq!(parse_size("11"), Ok(Size::Count(11)));
        assert_eq!(parse_size("67%"), Ok(Size::Percent(67)));
        for bad in ["0%", "101%", "-1", "two", "%", "6.5%"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        let config = |extra: &[&str]| {
            let argv = [&["keyquorum", "sim", "--committee", "16"][..], extra].concat();
            let Command::Sim(args) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("a sim command")
            };
            sim_config(&args)
        };
        let cfg = config(&["--threshold", "67%", "--quorum", "75%"]).unwrap();
        assert_eq!((cfg.threshold, cfg.quorum), (11, 12));
        assert_eq!(
            (cfg.threshold, cfg.quorum),
            (Size::Percent(67).resolve(16), Size::Percent(75).resolve(16))
        );
        let e = config(&["--threshold", "10%", "--quorum", "10%"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--threshold 2 (10% of 16, rounded up)"), "{e}");
        assert!(config(&["--quorum", "0"]).is_err());
    }

    /// A run without a key says so instead of "qualified 0/n attempts 0", in the same width.
    #[test]
    fn a_run_without_a_key_says_so_in_its_progress_line() {
        let made = outcome_column(5, 7, 1);
        assert_eq!(made, "qualified   5/7  attempts 1");
        let none = outcome_column(0, 7, 0);
        assert_eq!(none.trim_end(), "no key made");
        assert_eq!(none.len(), made.len());
    }
}
