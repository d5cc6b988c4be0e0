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
    /// Sections mode: nodes joining after the genesis node (default: twice --min-section-size
    /// and a third more; names are random, so the halves are uneven and most runs split, not
    /// all; with a --min-section-size below --elders, at least enough to fill the elder set and
    /// draw the default faulty joiners and leaves after it).
    #[arg(long)]
    joins: Option<usize>,
    /// Sections mode: honest members that leave, elders included, each after a joiner that
    /// comes after the first elder set, so at most --joins minus --elders (default: 2, or
    /// that many if fewer).
    #[arg(long)]
    leaves: Option<usize>,
    /// Sections mode: faulty joiners, drawn among those that come after the first elder set, so
    /// at most --joins minus --elders (default: what a full elder set tolerates,
    /// n - supermajority(n), or that many if fewer).
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

/// The most joins a run simulates (`--joins`, or its default from `--min-section-size`).
pub const MAX_JOINS: usize = 1024;

fn config(args: &SectionsSimArgs) -> Result<SectionsConfig, CliError> {
    if args.elders < 1 {
        return Err(CliError::usage("--elders must be at least 1"));
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
    if min > MAX_JOINS {
        return Err(CliError::Usage(format!(
            "--min-section-size {min}: at most {MAX_JOINS}, the most joins a run simulates"
        )));
    }
    let mut cfg = SectionsConfig::sized(0, args.elders, min);
    if let Some(joins) = args.joins {
        cfg.joins = joins;
    }
    if cfg.joins > MAX_JOINS {
        return Err(CliError::Usage(format!(
            "--joins {}{}: at most {MAX_JOINS} (a run's work grows with the square of its \
             members)",
            cfg.joins,
            if args.joins.is_none() {
                format!(" (the default for --min-section-size {min})")
            } else {
                String::new()
            }
        )));
    }
    // Faulty joiners and leaves come after the first elder set has joined (growth starts from
    // honest elders); a count given that does not fit is refused rather than cut.
    let room = cfg.joins - cfg.elder_count.min(cfg.joins);
    let fits = |flag: &str, count: usize| {
        if count > room && room == 0 {
            return Err(CliError::Usage(format!(
                "--{flag} {count}: no joiner comes after the first elder set (--joins {} is not \
                 above --elders {}), and only those can be drawn for it; raise --joins above {}",
                cfg.joins, cfg.elder_count, cfg.elder_count
            )));
        }
        if count > room {
            return Err(CliError::Usage(format!(
                "--{flag} {count}: only the {room} joiners after the first {} (--joins {} minus \
                 --elders) can be drawn for it; raise --joins or lower --{flag}",
                cfg.elder_count.min(cfg.joins),
                cfg.joins
            )));
        }
        Ok(count)
    };
    cfg.leaves = match args.leaves {
        Some(leaves) => fits("leaves", leaves)?,
        None => cfg.leaves.min(room),
    };
    cfg.faulty = match args.section_faulty {
        Some(faulty) => fits("section-faulty", faulty)?,
        None => cfg.faulty.min(room),
    };
    if !args.section_fault.is_empty() {
        if cfg.faulty == 0 {
            return Err(CliError::usage(format!(
                "--section-fault with no faulty joiner (--section-faulty {}): nobody would \
                 commit it",
                if args.section_faulty.is_some() {
                    "0".to_string()
                } else {
                    let n = cfg.elder_count;
                    format!(
                        "resolves to 0 here: the smaller of the faults {n} elders tolerate, \
                         n - supermajority(n) = {n} - {} = {}, and the {room} joiners after \
                         the first elder set (--joins {} minus --elders)",
                        keyquorum_sections::supermajority(n),
                        n - keyquorum_sections::supermajority(n),
                        cfg.joins
                    )
                }
            )));
        }
        cfg.faults = args.section_fault.clone();
    }
    if args.beyond_bound && cfg.faulty == 0 {
        return Err(CliError::usage(
            "--beyond-bound with no faulty joiner (--section-faulty 0, given or by default): \
             no fault goes beyond the bound",
        ));
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

/// A fault-kind count as JSON: `{"silent": 2, ...}`.
fn counts_json(map: &std::collections::BTreeMap<SectionFault, u64>) -> serde_json::Value {
    map.iter()
        .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// One run as `--format json` lists it under `results`: its progress line's fields.
fn run_json(report: &SectionsReport, ms: f64) -> serde_json::Value {
    let result = match (&report.violation, report.beyond_bound) {
        (Some(_), _) => "failed",
        (None, true) if report.did_not_settle => "beyond_fault_bound_not_settled",
        (None, true) => "beyond_fault_bound",
        (None, false) => "ok",
    };
    serde_json::json!({
        "seed": report.seed,
        "result": result,
        "ms": (ms * 1000.0).round() / 1000.0,
        "sessions": report.sessions,
        "restarts": report.restarts,
        "handovers": report.handovers,
        "splits": report.splits,
        "sections": report.sections,
        "unsettled_steps": report.unsettled_steps,
        "crash_restarts": {
            "restarted": report.restarted_nodes,
            "members_checked": report.restarted_checked,
            "shares_after_restart": report.shares_after_restart,
            "elders_without_share": report.restarted_without_share,
        },
        "faults_placed": counts_json(&report.placed),
        "refused": counts_json(&report.refused),
        "failed_combinations": report.failed_combinations,
        "violation": report.violation.as_ref().map(|v| v.to_string()),
    })
}

fn line(run: u64, report: &SectionsReport, ms: f64) -> String {
    format!(
        "run {:>4} seed {:<20} {} {:>8.1} ms  sessions {:>3}  restarts {:>2}  handovers {:>3}  splits {}  sections {}  unsettled {}  crash restarts {} (checked {}, shares after {}, elders without a share {})  faults [{}]  refused [{}]  failed combinations {}{}",
        run + 1,
        report.seed,
        match (&report.violation, report.beyond_bound) {
            (Some(_), _) => "FAIL  ",
            (None, true) if report.did_not_settle => "UNSETTLED",
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
    // The parameters in effect, defaults resolved, so that a run can be read and repeated.
    let parameters = serde_json::json!({
        "elders": base.elder_count,
        "min_section_size": base.min_section_size,
        "joins": base.joins,
        "leaves": base.leaves,
        "faulty": base.faulty,
        "faults": base.faults.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
        "beyond_bound": base.beyond_bound,
        "unsettled_per_mille": base.unsettled_per_mille,
        "seed": seed,
        "runs": runs,
    });
    if !json {
        println!(
            "elders {} · min section size {} · joins {} · leaves {} · faulty {} ({}){} · unsettled {}‰",
            base.elder_count,
            base.min_section_size,
            base.joins,
            base.leaves,
            base.faulty,
            base.faults
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join(","),
            if base.beyond_bound {
                " beyond the bound"
            } else {
                ""
            },
            base.unsettled_per_mille,
        );
    }
    let mut failures = Vec::new();
    let (mut passed, mut beyond, mut splits, mut restarts) = (0u64, 0u64, 0u64, 0u64);
    // Beyond the bound: runs that ended without the network going quiet (liveness).
    let mut unsettled = 0u64;
    // Crash faults: restarted, of those still members once quiet (checked), the shares they
    // took after their restart, and of them the elders without a share (their DKG ran while
    // they were down).
    let (mut restarted, mut checked, mut shareless) = (0u64, 0u64, 0u64);
    let mut shares_after = 0u64;
    let stderr = std::io::stderr();
    let mut results = Vec::new();
    for r in 0..runs {
        let cfg = base.with_seed(seed.wrapping_add(r));
        let start = std::time::Instant::now();
        let report = run_sections(&cfg);
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let text = line(r, &report, ms);
        if json {
            let _ = writeln!(stderr.lock(), "{text}");
            results.push(run_json(&report, ms));
        } else {
            println!("{text}");
        }
        splits += report.splits;
        restarts += report.restarts;
        restarted += report.restarted_nodes;
        checked += report.restarted_checked;
        shares_after += report.shares_after_restart;
        shareless += report.restarted_without_share;
        match report.violation {
            Some(v) => failures.push((report.seed, v.to_string())),
            None if report.beyond_bound => {
                beyond += 1;
                unsettled += u64::from(report.did_not_settle);
            }
            None => passed += 1,
        }
    }
    if json {
        let summary = serde_json::json!({
            "mode": "sections",
            "parameters": parameters,
            "runs": runs,
            "passed": passed,
            "beyond_fault_bound": beyond,
            "beyond_fault_bound_not_settled": unsettled,
            "failed": failures.len(),
            "splits": splits,
            "restarts": restarts,
            "crash_restarts": {
                "restarted": restarted,
                "members_checked": checked,
                "shares_after_restart": shares_after,
                "elders_without_share": shareless,
            },
            "failures": failures
                .iter()
                .map(|(seed, reason)| serde_json::json!({ "seed": seed, "reason": reason }))
                .collect::<Vec<_>>(),
            "results": results,
        });
        println!("{summary}");
    } else {
        println!(
            "{passed}/{runs} runs passed, {beyond} beyond the fault bound (safety only; {unsettled} of them did not settle), {} failed; {splits} splits, {restarts} restarts; crash restarts {restarted} (checked {checked}, shares after {shares_after}, elders without a share {shareless})",
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
