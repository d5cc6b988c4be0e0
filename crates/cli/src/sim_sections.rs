//! `keyquorum sim --mode sections`: seeded runs of simulated section networks
//! ([`keyquorum_sim::sections`]), a line per run and a summary; a failed run prints its seed and
//! the invariant it broke.

use std::io::Write;

use clap::Args;
use keyquorum_node::cli::CliError;
use keyquorum_sim::sections::{SectionFault, SectionsConfig, SectionsReport, run_sections};

use crate::OutputFormat;

/// The options of `--mode sections`.
#[derive(Args, Debug)]
pub struct SectionsSimArgs {
    /// Sections mode: elders a section selects.
    #[arg(long, default_value_t = keyquorum_sections::elders::ELDER_COUNT)]
    elders: usize,
    /// Sections mode: fewest members each half of a split holds (default: the elder count).
    #[arg(long)]
    min_section_size: Option<usize>,
    /// Sections mode: nodes joining after the genesis node (default: enough for a split).
    #[arg(long)]
    joins: Option<usize>,
    /// Sections mode: honest members that leave, elders included.
    #[arg(long, default_value_t = 2)]
    leaves: usize,
    /// Sections mode: faulty joiners (default: what a full elder set tolerates,
    /// n - supermajority(n)).
    #[arg(long)]
    section_faulty: Option<usize>,
    /// Sections mode: what the faulty joiners do, drawn per node; repeat or separate with
    /// commas (default: every kind).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "KIND")]
    section_fault: Vec<SectionFault>,
    /// Sections mode: let the faults act beyond the bound the protocol tolerates (only safety
    /// is checked).
    #[arg(long)]
    beyond_bound: bool,
    /// Sections mode: chance per mille that a join or leave comes before the network is quiet
    /// (members change while sessions run).
    #[arg(long, default_value_t = 0, value_name = "PER_MILLE")]
    unsettled_per_mille: u32,
}

fn config(args: &SectionsSimArgs) -> Result<SectionsConfig, CliError> {
    if args.elders < 2 {
        return Err(CliError::usage("--elders must be at least 2"));
    }
    let most = keyquorum_sections::sap::MAX_ELDERS;
    if args.elders > most {
        return Err(CliError::Usage(format!(
            "--elders must be at most {most}, as on `keyquorum sections node`: handover partials are checked in sets of a supermajority, and above {most} elders a faulty elder's bad partials could keep a handover from ever completing"
        )));
    }
    let min = args.min_section_size.unwrap_or(args.elders);
    if min == 0 {
        return Err(CliError::usage("--min-section-size must be at least 1"));
    }
    let mut cfg = SectionsConfig::sized(0, args.elders, min);
    if let Some(joins) = args.joins {
        cfg.joins = joins;
    }
    cfg.leaves = args.leaves;
    if let Some(faulty) = args.section_faulty {
        cfg.faulty = faulty;
    }
    if !args.section_fault.is_empty() {
        cfg.faults = args.section_fault.clone();
    }
    cfg.beyond_bound = args.beyond_bound;
    if args.unsettled_per_mille > 1000 {
        return Err(CliError::usage(
            "--unsettled-per-mille must be at most 1000",
        ));
    }
    cfg.unsettled_per_mille = args.unsettled_per_mille;
    Ok(cfg)
}

fn counts(map: &std::collections::BTreeMap<SectionFault, u64>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn line(run: u64, report: &SectionsReport, ms: f64) -> String {
    format!(
        "run {:>4} seed {:<20} {} {:>8.1} ms  sessions {:>3}  restarts {:>2}  handovers {:>3}  splits {}  sections {}  unsettled {}  crash restarts {} (checked {}, shares after {}, elders without a share {})  faults [{}]  refused [{}]  failed combinations {}{}",
        run + 1,
        report.seed,
        match (&report.violation, report.beyond_bound) {
            (Some(_), _) => "FAIL  ",
            (None, true) => "BEYOND",
            (None, false) => "ok    ",
        },
        ms,
        report.sessions,
        report.restarts,
        report.handovers,
        report.splits,
        report.sections,
        report.unsettled_steps,
        report.restarted_nodes,
        report.restarted_checked,
        report.shares_after_restart,
        report.restarted_without_share,
        counts(&report.placed),
        counts(&report.refused),
        report.failed_combinations,
        report
            .violation
            .as_ref()
            .map(|v| format!("  violated: {v}"))
            .unwrap_or_default()
    )
}

/// Runs `runs` seeds from `seed`; exit 1 when any breaks an invariant.
pub fn run(
    args: &SectionsSimArgs,
    seed: u64,
    runs: u64,
    format: OutputFormat,
) -> Result<(), CliError> {
    let base = config(args)?;
    if runs == 0 {
        return Err(CliError::usage("--runs must be at least 1"));
    }
    let json = format == OutputFormat::Json;
    let mut failures = Vec::new();
    let (mut passed, mut beyond, mut splits, mut restarts) = (0u64, 0u64, 0u64, 0u64);
    // Crash faults: restarted, of those still members once quiet (checked), and of those the
    // elders without a share (their DKG ran while they were down).
    let (mut restarted, mut checked, mut shareless) = (0u64, 0u64, 0u64);
    let stderr = std::io::stderr();
    for r in 0..runs {
        let cfg = base.with_seed(seed.wrapping_add(r));
        let start = std::time::Instant::now();
        let report = run_sections(&cfg);
        let text = line(r, &report, start.elapsed().as_secs_f64() * 1e3);
        if json {
            let _ = writeln!(stderr.lock(), "{text}");
        } else {
            println!("{text}");
        }
        splits += report.splits;
        restarts += report.restarts;
        restarted += report.restarted_nodes;
        checked += report.restarted_checked;
        shareless += report.restarted_without_share;
        match report.violation {
            Some(v) => failures.push((report.seed, v.to_string())),
            None if report.beyond_bound => beyond += 1,
            None => passed += 1,
        }
    }
    if json {
        let summary = serde_json::json!({
            "mode": "sections",
            "runs": runs,
            "passed": passed,
            "beyond_fault_bound": beyond,
            "failed": failures.len(),
            "splits": splits,
            "restarts": restarts,
            "crash_restarts": {
                "restarted": restarted,
                "members_checked": checked,
                "elders_without_share": shareless,
            },
            "failures": failures
                .iter()
                .map(|(seed, reason)| serde_json::json!({ "seed": seed, "reason": reason }))
                .collect::<Vec<_>>(),
        });
        println!("{summary}");
    } else {
        println!(
            "{passed}/{runs} runs passed, {beyond} beyond the fault bound (safety only), {} failed; {splits} splits, {restarts} restarts",
            failures.len()
        );
        for (seed, reason) in &failures {
            println!("failed: seed {seed}: {reason}");
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{} of {runs} runs broke an invariant",
            failures.len()
        )))
    }
}
