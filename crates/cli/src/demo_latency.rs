//! The demo report's beacon latency plot: one point per round whose timing a node served
//! (`GET /beacon/rounds`), at the round's scheduled time (x) and its latency, from the scheduled
//! start to the node storing it (y), with each view's activation marked as a vertical line. An
//! inline SVG built here: the report stays one file, no scripts, nothing fetched.

use std::fmt::Write;

/// One round's latency as the plot takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyPoint {
    /// Round number.
    pub round: u64,
    /// The round's scheduled start (Unix ms).
    pub scheduled_ms: i64,
    /// From the scheduled start to storage (ms).
    pub latency_ms: i64,
    /// Learnt from a member's answer rather than combined by the node that served the timing
    /// (drawn hollow: its latency is how long that node waited, not the committee's).
    pub synced: bool,
}

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 36.0;

/// The report section: a heading, the plot (or why there is none) and a legend line.
/// `activations` are `(view, activation time in Unix ms)`.
pub fn section(points: &[LatencyPoint], activations: &[(u64, u64)]) -> String {
    let mut h = String::from("<h2>Random beacon: round latency</h2>");
    if points.is_empty() {
        h.push_str("<p>No round timings were served by the nodes.</p>");
        return h;
    }
    h.push_str(&svg(points, activations));
    let combined = points.iter().filter(|p| !p.synced).count();
    let _ = write!(
        h,
        "<p>{} rounds: time from each round's scheduled start to a node storing it (filled: combined there from partials, {combined}; hollow: learnt from a member's answer, {}). Dashed lines: view activations.</p>",
        points.len(),
        points.len() - combined
    );
    h
}

/// One line on the rounds combined by the node that timed them (synced rounds measure that
/// node's wait, not the committee): count, median, 90th percentile and maximum latency.
/// `which` names the rounds summarised, as in "rounds combined by the serving node".
pub fn summary(points: &[LatencyPoint], which: &str) -> Option<String> {
    let mut latencies: Vec<i64> = points
        .iter()
        .filter(|p| !p.synced)
        .map(|p| p.latency_ms)
        .collect();
    if latencies.is_empty() {
        return None;
    }
    latencies.sort_unstable();
    // Nearest rank: the smallest value with at least q of the values at or below it.
    let rank = |q: f64| {
        latencies[((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    Some(format!(
        "round latency, {} {which}: median {} ms, 90th percentile {} ms, max {} ms",
        latencies.len(),
        rank(0.5),
        rank(0.9),
        latencies[latencies.len() - 1]
    ))
}

/// The summary lines of the demo's text output: every round combined by the node that timed
/// it, then, if the rounds also began before it, those whose scheduled start came after the
/// last view activation (`last_activation_ms`). With `--beacon-rounds` the demo ends before
/// another view change starts, so no ceremony was running during those.
pub fn summaries(points: &[LatencyPoint], last_activation_ms: Option<u64>) -> Vec<String> {
    let mut lines: Vec<String> = summary(points, "rounds combined by the serving node")
        .into_iter()
        .collect();
    let Some(since) = last_activation_ms.and_then(|at| i64::try_from(at).ok()) else {
        return lines;
    };
    let after: Vec<LatencyPoint> = points
        .iter()
        .filter(|p| p.scheduled_ms >= since)
        .cloned()
        .collect();
    let combined = |ps: &[LatencyPoint]| ps.iter().filter(|p| !p.synced).count();
    if combined(&after) < combined(points)
        && let Some(line) = summary(&after, "of them after the last view activation")
    {
        lines.push(line);
    }
    lines
}

/// The plot alone (see the module docs).
pub fn svg(points: &[LatencyPoint], activations: &[(u64, u64)]) -> String {
    let t0 = points.iter().map(|p| p.scheduled_ms).min().unwrap_or(0);
    let t1 = points
        .iter()
        .map(|p| p.scheduled_ms)
        .chain(
            activations
                .iter()
                .filter_map(|(_, at)| i64::try_from(*at).ok()),
        )
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    // A view activated before the first plotted round is drawn at the left edge.
    let t0 = activations
        .iter()
        .filter_map(|(_, at)| i64::try_from(*at).ok())
        .min()
        .map_or(t0, |a| a.min(t0));
    let ymax = points
        .iter()
        .map(|p| p.latency_ms)
        .max()
        .unwrap_or(0)
        .max(1);
    let ymax = nice_ceiling(ymax);
    let x = |ms: i64| LEFT + (ms - t0) as f64 / (t1 - t0) as f64 * (WIDTH - LEFT - RIGHT);
    let y = |latency: i64| {
        let l = latency.clamp(0, ymax) as f64;
        HEIGHT - BOTTOM - l / ymax as f64 * (HEIGHT - TOP - BOTTOM)
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="beacon round latency" style="font:11px system-ui,sans-serif">"#
    );
    // Axes, and gridlines at quarters of the latency range.
    let _ = write!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}" fill="#fafafa" stroke="#999"/>"##,
        w = WIDTH - LEFT - RIGHT,
        h = HEIGHT - TOP - BOTTOM
    );
    for q in 0..=4 {
        let value = ymax * q / 4;
        let yy = y(value);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e4e4e4"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{value} ms</text>"##,
            x2 = WIDTH - RIGHT,
            tx = LEFT - 4.0,
            ty = yy + 4.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{LEFT}" y="{ty}">0 s</text><text x="{tx}" y="{ty}" text-anchor="end">{secs:.0} s (scheduled time of the round)</text>"#,
        ty = HEIGHT - BOTTOM + 16.0,
        tx = WIDTH - RIGHT,
        secs = (t1 - t0) as f64 / 1000.0
    );
    for (view, at) in activations {
        let Ok(at) = i64::try_from(*at) else { continue };
        let xx = x(at);
        let _ = write!(
            s,
            r##"<line class="view-change" x1="{xx:.1}" x2="{xx:.1}" y1="{TOP}" y2="{y2}" stroke="#b07aa1" stroke-dasharray="4 3"/><text x="{tx:.1}" y="{ty}" fill="#b07aa1">view {view}</text>"##,
            y2 = HEIGHT - BOTTOM,
            tx = xx + 3.0,
            ty = TOP + 12.0
        );
    }
    for p in points {
        let (fill, stroke) = if p.synced {
            ("none", "#f28e2b")
        } else {
            ("#4e79a7", "#4e79a7")
        };
        let _ = write!(
            s,
            r#"<circle class="round" cx="{cx:.1}" cy="{cy:.1}" r="3" fill="{fill}" stroke="{stroke}"><title>round {r}: {l} ms{how}</title></circle>"#,
            cx = x(p.scheduled_ms),
            cy = y(p.latency_ms),
            r = p.round,
            l = p.latency_ms,
            how = if p.synced {
                " (learnt from a member)"
            } else {
                ""
            }
        );
    }
    s.push_str("</svg>");
    s
}

/// The smallest of 1, 2, 5 times a power of ten at or above `v` (a readable axis top).
fn nice_ceiling(v: i64) -> i64 {
    let mut step = 1i64;
    loop {
        for m in [1, 2, 5] {
            if let Some(c) = step.checked_mul(m)
                && c >= v
            {
                return c;
            }
        }
        match step.checked_mul(10) {
            Some(s) => step = s,
            None => return v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(round: u64, latency_ms: i64, synced: bool) -> LatencyPoint {
        LatencyPoint {
            round,
            scheduled_ms: 1_700_000_000_000 + (round as i64 - 1) * 3000,
            latency_ms,
            synced,
        }
    }

    #[test]
    fn the_plot_has_one_point_per_round_and_one_marker_per_view_change() {
        let points = [
            point(1, 40, false),
            point(2, 35, false),
            point(3, 3100, true),
            point(4, 50, false),
        ];
        let activations = [(1, 1_699_999_997_000), (2, 1_700_000_005_000)];
        let s = svg(&points, &activations);
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert_eq!(s.matches("<circle class=\"round\"").count(), 4);
        assert_eq!(s.matches("class=\"view-change\"").count(), 2);
        assert!(s.contains(">view 1<") && s.contains(">view 2<"));
        assert!(s.contains("round 3: 3100 ms (learnt from a member)"));
        // Self-contained: no scripts, no links to fetch.
        assert!(!s.contains("<script") && !s.contains("href"));
        // The axis top covers the largest latency: 3100 ms rounds up to 5000.
        assert!(s.contains(">5000 ms<"));
        // Points stay inside the plot area.
        for c in s.split("<circle").skip(1) {
            let cx: f64 = c
                .split("cx=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let cy: f64 = c
                .split("cy=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!((LEFT..=WIDTH - RIGHT).contains(&cx), "{cx}");
            assert!((TOP..=HEIGHT - BOTTOM).contains(&cy), "{cy}");
        }
        // The view 2 marker lies between rounds 2 and 3 (scheduled at +3 s and +6 s).
        let marker_x = |view: u64| -> f64 {
            let at = s.find(&format!(">view {view}<")).unwrap();
            let line = s[..at].rfind("<line class=\"view-change\"").unwrap();
            s[line..]
                .split("x1=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let round_x = |round: u64| -> f64 {
            let at = s.find(&format!("round {round}:")).unwrap();
            let c = s[..at].rfind("<circle").unwrap();
            s[c..]
                .split("cx=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        assert!(round_x(2) < marker_x(2) && marker_x(2) < round_x(3));
        assert!(marker_x(1) <= round_x(1));
    }

    #[test]
    fn the_summary_leaves_out_synced_rounds() {
        let mut points: Vec<LatencyPoint> =
            (1..=10).map(|r| point(r, r as i64 * 10, false)).collect();
        points.push(point(11, 9000, true));
        assert_eq!(
            summary(&points, "rounds combined by the serving node").unwrap(),
            "round latency, 10 rounds combined by the serving node: median 50 ms, 90th percentile 90 ms, max 100 ms"
        );
        assert_eq!(summary(&points[10..], "rounds"), None);
    }

    #[test]
    fn the_rounds_after_the_last_activation_get_a_line_of_their_own() {
        let points: Vec<LatencyPoint> = (1..=10)
            .map(|r| point(r, if r <= 4 { 2000 } else { r as i64 * 10 }, false))
            .collect();
        let last = points[4].scheduled_ms as u64;
        assert_eq!(
            summaries(&points, Some(last)),
            [
                "round latency, 10 rounds combined by the serving node: median 90 ms, 90th percentile 2000 ms, max 2000 ms",
                "round latency, 6 of them after the last view activation: median 70 ms, 90th percentile 100 ms, max 100 ms",
            ]
        );
        // Every round after it, or no activation known: one line.
        assert_eq!(summaries(&points, Some(0)).len(), 1);
        assert_eq!(summaries(&points, None).len(), 1);
    }

    #[test]
    fn no_timings_say_so_instead_of_an_empty_plot() {
        let s = section(&[], &[(1, 0)]);
        assert!(!s.contains("<svg"));
        assert!(s.contains("No round timings"));
    }

    #[test]
    fn axis_tops_are_readable() {
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(40), 50);
        assert_eq!(nice_ceiling(101), 200);
        assert_eq!(nice_ceiling(i64::MAX), i64::MAX);
    }
}
