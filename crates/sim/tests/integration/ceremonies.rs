//! Hundreds of seeded adversarial ceremonies (more with `KQ_SIM_RUNS`): both variants, both
//! curves, the three index schemes, fresh and reshared (to a committee of the same size, a
//! larger or a smaller one), every adversary kind, committees from 1 to 64, and parameters from
//! BFT, Züs-style and, for most runs, the whole space `Params::new` accepts. Every run checks agreement, share correctness,
//! threshold signing, that no honest participant is excluded, and success whenever the honest
//! dealers reach the quorum (see the crate docs).

use keyquorum_dkg::Variant;
use keyquorum_sim::{AdversaryKind, CurveChoice, IndicesChoice, SimConfig, run};
use rayon::prelude::*;

/// Committee size for run `i`: mostly small committees (cheap), some medium, a few up to 64.
fn committee_size(i: u64) -> usize {
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33;
    // The largest committee, once per variant.
    if i == 1 || i == 2 {
        return 64;
    }
    // Drawn by a hash of i so that sizes are independent of the other choices made from i.
    match h % 200 {
        0 => 25 + ((h >> 8) % 40) as usize,     // 0.5%: 25..=64
        1..=9 => 11 + ((h >> 8) % 14) as usize, // 4.5%: 11..=24
        _ => 4 + ((h >> 8) % 7) as usize,       // 95%: 4..=10
    }
}

fn config(i: u64) -> SimConfig {
    let n = committee_size(i);
    let mut cfg = SimConfig::bft(n, 10_000 + i);
    // Rotate through every adversary kind alone, then the full mix.
    let kinds = AdversaryKind::ALL;
    let slot = (i / 4) % (kinds.len() as u64 + 1);
    cfg.faults = if slot == kinds.len() as u64 {
        kinds.to_vec()
    } else {
        vec![kinds[slot as usize]]
    };
    cfg.curve = if i.is_multiple_of(2) {
        CurveChoice::Bls12381
    } else {
        CurveChoice::Secp256k1
    };
    cfg.variant = if i % 4 < 2 {
        Variant::AckReveal
    } else {
        Variant::Complaint
    };
    cfg.reshare = i.is_multiple_of(5);
    match i % 7 {
        // Züs-style parameters (t = 66%, k = 75%) where they are valid.
        3 if n >= 8 => {
            let t = (n * 66).div_ceil(100);
            let k = (n * 75).div_ceil(100);
            if t + k > n {
                cfg.threshold = t;
                cfg.quorum = k;
                cfg.byzantine = n - k;
            }
        }
        // Anything `Params::new` accepts, with any tolerated number of adversaries: four runs
        // in seven, since that is where parameter-dependent bugs live.
        1 | 4 | 5 | 6 => any_valid_parameters(&mut cfg, i),
        _ => {}
    }
    // Drawn by hashes of i, independent of the choices above.
    let h = i.wrapping_mul(0xA076_1D64_78BD_642F) >> 29;
    cfg.indices = match h % 4 {
        0 | 1 => IndicesChoice::Sequential,
        2 => IndicesChoice::KeyHash,
        _ => IndicesChoice::RootsOfUnity,
    };
    if cfg.reshare {
        let n = cfg.nodes;
        // Half the same size, a quarter larger (at most 64: secp256k1 has roots of unity of
        // order 64 at most), a quarter smaller.
        let m = match (h >> 8) % 4 {
            0 => (n + 1 + ((h >> 16) % 4) as usize).min(64).max(n),
            1 => n.saturating_sub(1 + ((h >> 16) % 3) as usize).max(1),
            _ => n,
        };
        cfg.reshare_committee = Some(m);
        // Adversaries sit on members of both committees; a committee of another size takes
        // BFT parameters, so its bound is BFT's.
        cfg.byzantine = cfg.byzantine.min(cfg.max_adversaries());
        if m != n {
            cfg.byzantine = cfg.byzantine.min(keyquorum_dkg::Params::bft_faults(m));
        }
    }
    cfg
}

/// Draws `(n, t, k, f)` uniformly over the space `Params::new` accepts: `1 <= t <= k <= n`,
/// `t >= 2 (n - k) + 1` (which implies `t + k > n`), and `f <= n - k` adversaries (the most the
/// parameters tolerate; `n - k` itself half of the time, since the bound is where bugs live).
/// Tiny committees (1 to 3 members) are included: the parameters accept them, so they must
/// work.
fn any_valid_parameters(cfg: &mut SimConfig, i: u64) {
    let mut h = i.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ 0x2545_F491_4F6C_DD1D;
    let mut draw = |bound: usize| {
        h ^= h >> 29;
        h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 32;
        (h % bound as u64) as usize
    };
    if draw(8) == 0 {
        cfg.nodes = 1 + draw(3);
    }
    let n = cfg.nodes;
    // t >= 2 (n - k) + 1 with t <= k needs 3k > 2n.
    let k_min = 2 * n / 3 + 1;
    let k = k_min + draw(n - k_min + 1);
    let t_min = 2 * (n - k) + 1;
    let t = t_min + draw(k - t_min + 1);
    let most = n - k;
    let f = if draw(2) == 0 { most } else { draw(most + 1) };
    cfg.threshold = t;
    cfg.quorum = k;
    // A reshare keeps member 0 honest (it leaves), so at most n - 1 adversaries fit.
    cfg.byzantine = if cfg.reshare { f.min(n - 1) } else { f };
    keyquorum_dkg::Params::new(n, t, k).expect("drawn inside the valid space");
}

/// Runs in CI: about a minute of CPU (two n = 64 runs included), so the test stays
/// near a minute on a loaded two-core machine. The long run is in docs/testing.md.
const CI_RUNS: u64 = 400;

#[test]
fn adversarial_ceremonies() {
    let runs: u64 = std::env::var("KQ_SIM_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CI_RUNS);
    let failures: Vec<String> = (0..runs)
        .into_par_iter()
        .filter_map(|i| {
            let cfg = config(i);
            let r = run(&cfg);
            // Every run is drawn within the fault bound, where nothing may be excused.
            let failure = match (r.passed, r.beyond_fault_bound) {
                (false, _) => r.failure,
                (true, Some(b)) => Some(format!("drawn within the bound, reported: {b}")),
                (true, None) => None,
            };
            failure.map(|failure| {
                format!(
                    "run {i} (n={} t={} k={} f={} {:?} {} {} reshare={} to={:?} faults={:?} seed={}): {}",
                    cfg.nodes,
                    cfg.threshold,
                    cfg.quorum,
                    cfg.byzantine,
                    cfg.variant,
                    cfg.curve,
                    cfg.indices,
                    cfg.reshare,
                    cfg.reshare_committee,
                    cfg.faults,
                    cfg.seed,
                    failure
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {runs} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_kind_is_caught_where_it_is_provable() {
    // Equivocation and wrong reveals are provable misbehaviour: the culprit must be excluded.
    for (kind, fault) in [
        (AdversaryKind::Equivocate, " equivocation"),
        (AdversaryKind::WrongReveal, " bad_reveal"),
    ] {
        let mut cfg = SimConfig::bft(7, 77);
        cfg.faults = vec![kind];
        cfg.net.partition_per_mille = 0;
        let r = run(&cfg);
        assert!(r.passed, "{kind}: {:?}", r.failure);
        assert!(
            r.excluded.iter().any(|e| e.contains(fault)),
            "{kind}: expected a {fault} exclusion, got {:?}",
            r.excluded
        );
    }
}

/// Beyond the fault bound success is not required, but nothing may panic or disagree; the note
/// says so, and a run with a fresh key and a reshare names the ceremony it is about (the
/// adversaries act in the reshare).
#[test]
fn too_many_faults_fail_cleanly_with_culprits() {
    for (reshare, place) in [(false, ""), (true, " in the reshare")] {
        let mut cfg = SimConfig::bft(7, 5);
        cfg.byzantine = 4;
        cfg.faults = vec![AdversaryKind::Silent];
        cfg.reshare = reshare;
        let r = run(&cfg);
        assert!(r.passed, "{:?}", r.failure);
        let note = r
            .beyond_fault_bound
            .expect("4 corrupt of 7 is beyond n - k = 2");
        let expected = format!(
            "beyond the fault bound{place}: no guarantee (4 corrupt players (tolerated: 2)"
        );
        assert!(note.starts_with(&expected), "{note}");
    }
}

#[test]
fn false_complaints_beyond_the_bound_exclude_no_honest_member() {
    // `keyquorum sim --variant complaint --committee 7 --threshold 1 --quorum 7
    // --fault false-complaint --seed 1`: k = n tolerates no corrupt member, so two false
    // complainers are beyond the fault bound and the run is reported as such. Complaints are
    // checked by the board and a missed deal is sent again encrypted, so they cannot get an honest
    // member excluded (under the old reveal bound t - 1 - (n - k) = 0 they disqualified all five
    // honest dealers). With k = n the ceremony still fails whenever a complainer is excluded.
    for seed in 1..5u64 {
        let mut cfg = SimConfig::bft(7, seed);
        cfg.threshold = 1;
        cfg.quorum = 7;
        cfg.byzantine = 2;
        cfg.faults = vec![AdversaryKind::FalseComplaint];
        cfg.variant = Variant::Complaint;
        let r = run(&cfg);
        assert!(r.passed, "seed {seed}: {:?}", r.failure);
        let note = r
            .beyond_fault_bound
            .expect("two corrupt members of 7 with k = 7 are beyond the fault bound");
        assert!(
            note.starts_with(
                "beyond the fault bound: no guarantee (2 corrupt players (tolerated: 0)"
            ),
            "{note}"
        );
        assert!(
            !note.contains("honest members excluded [m"),
            "seed {seed}: {note}"
        );
        let honest: Vec<usize> = (0..7)
            .filter(|m| !r.adversaries.iter().any(|(p, _)| p == m))
            .collect();
        for m in &honest {
            assert!(
                !r.excluded
                    .iter()
                    .any(|e| e.contains(&format!(" (member {m}) "))),
                "seed {seed}: honest {m} excluded: {:?}",
                r.excluded
            );
        }
    }

    // The same parameters without an adversary are within the bound: every dealer qualifies.
    let mut cfg = SimConfig::bft(7, 1);
    cfg.threshold = 1;
    cfg.quorum = 7;
    cfg.byzantine = 0;
    cfg.variant = Variant::Complaint;
    let r = run(&cfg);
    assert!(r.passed, "{:?}", r.failure);
    assert_eq!(r.beyond_fault_bound, None);
    assert_eq!(r.qualified, (0..7).collect::<Vec<u32>>());
}

/// n = 256 with floor((n - 1) / 3) adversaries of mixed kinds. Minutes of CPU: run on demand with
/// `cargo test --release -p keyquorum-sim -- --ignored`.
#[test]
#[ignore]
fn large_committee_with_mixed_adversaries() {
    let mut cfg = SimConfig::bft(256, 256);
    cfg.faults = AdversaryKind::ALL.to_vec();
    let r = run(&cfg);
    assert!(r.passed, "{:?}", r.failure);
}

#[test]
fn complaint_variant_provable_kinds_are_excluded_with_evidence() {
    // In the complaint variant: an equivocating dealer is caught by its two signed statements; a
    // dealer that sends bad pairs by its victims' complaints, which reveal the pairs' keys; a
    // wrong pair sent again in a justification by its recipient's reveal, or wrong Feldman values
    // by a complaint whose pair opens its Pedersen commitment. Every run's checks also verify each exclusion's
    // evidence from the session alone (`keyquorum_dkg::complaint::verify_exclusion`).
    let cases: [(AdversaryKind, &[&str]); 3] = [
        // When resharing, the second commitment cannot start at the old public share, which its
        // recipients' complaints may prove first.
        (AdversaryKind::Equivocate, &["equivocation", "bad_deal"]),
        (AdversaryKind::BadShare, &["bad_deal"]),
        (AdversaryKind::WrongReveal, &["bad_deal", "bad_feldman"]),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (kind, faults) in cases {
        for seed in 0..8u64 {
            let mut cfg = SimConfig::bft(7, 300 + seed);
            cfg.variant = Variant::Complaint;
            cfg.faults = vec![kind];
            cfg.net.partition_per_mille = 0;
            cfg.curve = if seed % 2 == 0 {
                CurveChoice::Bls12381
            } else {
                CurveChoice::Secp256k1
            };
            cfg.reshare = seed % 4 == 3;
            let r = run(&cfg);
            assert!(r.passed, "{kind} seed {}: {:?}", cfg.seed, r.failure);
            for (pos, _) in &r.adversaries {
                let found = r.excluded.iter().find(|e| {
                    e.starts_with(&format!("dealer {pos} "))
                        && faults.iter().any(|f| e.ends_with(&format!(" {f}")))
                });
                let Some(found) = found else {
                    panic!(
                        "{kind} seed {}: dealer {pos} not excluded for {faults:?}: {:?}",
                        cfg.seed, r.excluded
                    );
                };
                seen.insert(found.rsplit(' ').next().unwrap_or_default().to_string());
            }
        }
    }
    // Both behaviours of each two-way kind occurred.
    for f in ["bad_deal", "bad_feldman"] {
        assert!(seen.contains(f), "no {f} among {seen:?}");
    }
}

#[test]
fn reshare_to_a_larger_committee_survives_a_silent_old_member() {
    // Four old members (t = k = 3: one may fail) reshare to seven (t = k = 5). One old member,
    // also a member of the new committee, is silent throughout. The old dealers' quorum is the
    // old threshold, so the three others carry the reshare and the key survives.
    for seed in 0..8u64 {
        let mut cfg = SimConfig::bft(4, 900 + seed);
        cfg.byzantine = 1;
        cfg.faults = vec![AdversaryKind::Silent];
        cfg.reshare = true;
        cfg.reshare_committee = Some(7);
        cfg.variant = if seed % 2 == 0 {
            Variant::AckReveal
        } else {
            Variant::Complaint
        };
        cfg.curve = if seed % 4 < 2 {
            CurveChoice::Bls12381
        } else {
            CurveChoice::Secp256k1
        };
        let r = run(&cfg);
        assert!(r.passed, "seed {}: {:?}", cfg.seed, r.failure);
        let (silent, _) = r.adversaries[0];
        assert!(
            !r.qualified.contains(&(silent as u32)),
            "seed {}: {:?}",
            cfg.seed,
            r.qualified
        );
        assert_eq!(r.qualified.len(), 3, "seed {}", cfg.seed);
    }
}

#[test]
fn spoofers_are_dropped_and_block_nobody() {
    // Spoofers deal, ack and post honestly, so nobody at all may be excluded and every dealer
    // qualifies; everything they send in others' names must have reached honest participants
    // and been dropped there.
    for seed in 0..8u64 {
        let mut cfg = SimConfig::bft(7, 500 + seed);
        cfg.faults = vec![AdversaryKind::Spoof];
        cfg.variant = if seed % 2 == 0 {
            Variant::AckReveal
        } else {
            Variant::Complaint
        };
        cfg.curve = if seed % 4 < 2 {
            CurveChoice::Bls12381
        } else {
            CurveChoice::Secp256k1
        };
        cfg.reshare = seed % 4 == 3;
        let r = run(&cfg);
        assert!(r.passed, "seed {}: {:?}", cfg.seed, r.failure);
        assert!(r.excluded.is_empty(), "seed {}: {:?}", cfg.seed, r.excluded);
        assert_eq!(r.qualified.len(), 7, "seed {}", cfg.seed);
        assert!(
            r.wrong_sender > 0,
            "seed {}: no spoofed message arrived",
            cfg.seed
        );
        assert!(
            r.foreign_posts > 0,
            "seed {}: no post in another's name was submitted",
            cfg.seed
        );
    }
}

#[test]
fn a_key_made_by_corrupt_members_alone_is_reported_not_hidden() {
    // Every member is a spoofer or crashes and recovers: all run the protocol, none is honest.
    // The run is beyond the bound (no guarantee), but the key they made is reported as made,
    // with the note that no honest member vouches for it.
    for (seed, fault) in [(1u64, AdversaryKind::Spoof), (2, AdversaryKind::Crash)] {
        let mut cfg = SimConfig::bft(4, seed);
        cfg.byzantine = 4;
        cfg.faults = vec![fault];
        let r = run(&cfg);
        let note = r.beyond_fault_bound.as_deref().unwrap_or_default();
        assert!(r.failure.is_none(), "{fault:?}: {:?}", r.failure);
        assert_eq!(r.qualified.len(), 4, "{fault:?}: {note}");
        assert_eq!(r.attempts, 1, "{fault:?}");
        assert!(
            note.contains("no honest member finished; 4 corrupt members finished"),
            "{fault:?}: {note}"
        );
    }
}

#[test]
fn posts_in_another_members_name_never_reach_the_board() {
    // A spoofer forges a copy of each of its board posts in another member's name and replays
    // others' posts from its own account; the chain takes a post only from its author's own
    // transaction. Here a second adversary fails the Feldman phase, so its dealing is
    // reconstructed from the players' pairs: the spoofer copies its reconstruction post in every
    // other player's name, and a forgery that took a player's slot (the board keeps a player's
    // first post and checks these signatures only at the deadline) would leave too few pairs,
    // failing the ceremony and naming honest players.
    let mut reconstructed = 0;
    for seed in 0..12u64 {
        let mut cfg = SimConfig::bft(7, 700 + seed);
        cfg.variant = Variant::Complaint;
        cfg.faults = vec![AdversaryKind::Spoof, AdversaryKind::WrongReveal];
        cfg.curve = if seed % 2 == 0 {
            CurveChoice::Bls12381
        } else {
            CurveChoice::Secp256k1
        };
        let r = run(&cfg);
        assert!(r.passed, "seed {}: {:?}", cfg.seed, r.failure);
        assert_eq!(r.beyond_fault_bound, None, "seed {}", cfg.seed);
        assert!(r.foreign_posts > 0, "seed {}: no forged post", cfg.seed);
        if r.excluded.iter().any(|e| e.ends_with(" bad_feldman")) {
            reconstructed += 1;
        }
    }
    assert!(
        reconstructed >= 3,
        "only {reconstructed} runs reconstructed"
    );
}

#[test]
fn members_that_lost_their_storage_come_back_as_players_and_block_nobody() {
    // A member that crashes and loses its storage plays on from the board alone: the
    // ceremony still succeeds for the honest members, and where it comes back in time to
    // finish, its share is checked like any restarted member's. Over these seeds some do.
    let mut shares = 0;
    for seed in 0..16u64 {
        let mut cfg = SimConfig::bft(7, 900 + seed);
        cfg.faults = vec![AdversaryKind::LostStorage];
        cfg.variant = if seed % 2 == 0 {
            Variant::AckReveal
        } else {
            Variant::Complaint
        };
        cfg.reshare = seed % 4 >= 2;
        let r = run(&cfg);
        assert!(r.passed, "seed {}: {:?}", cfg.seed, r.failure);
        assert_eq!(r.beyond_fault_bound, None, "seed {}", cfg.seed);
        shares += r.lost_storage_shares;
    }
    assert!(
        shares > 0,
        "no member that lost its storage finished with a share"
    );
}
