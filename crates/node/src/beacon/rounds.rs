//! keyquorum's own view of the beacon's rounds, beside drand's API: `GET /beacon/rounds`
//! answers, for a bounded range of the active chain's stored rounds, when each round was
//! scheduled, when this node stored it, the latency between the two and how the node got it.
//! drand's `/public/...` answers stay exactly drand's; this is a separate path and format.
//!
//! # Query
//! `from` and `to` (both optional, inclusive round numbers): by default the last
//! [`DEFAULT_ROUNDS`] stored rounds. A range wider than [`MAX_TIMINGS`] rounds is refused (400)
//! rather than cut, so a client never mistakes a truncated answer for a complete one.
//!
//! # Answer
//! ```json
//! {"chain_hash": "…", "genesis_time": 1700000000, "period": 3, "latest_round": 42,
//!  "rounds": [{"round": 41, "scheduled_ms": 1700000120000, "stored_ms": 1700000120031,
//!              "latency_ms": 31, "origin": "combined"}]}
//! ```
//! `stored_ms` is this node's clock (Unix ms) when it wrote the round; `latency_ms` is
//! `stored_ms - scheduled_ms`, where `scheduled_ms` is `(genesis + (round - 1) * period) *
//! 1000`. Rounds stored before the store kept timings have `null` timing fields. Only stored
//! rounds are listed: a gap in `round` is a round this node does not have.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::http::BeaconHttp;
use super::store::{MAX_TIMINGS, StoredRound};
use keyquorum_beacon::ChainInfo;

/// Rounds listed when the query names no range.
pub const DEFAULT_ROUNDS: u64 = 100;

/// The query string.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundsQuery {
    /// First round (inclusive).
    pub from: Option<u64>,
    /// Last round (inclusive).
    pub to: Option<u64>,
}

/// One round's timing, as served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundTimingJson {
    /// Round number.
    pub round: u64,
    /// The round's scheduled start (Unix ms).
    pub scheduled_ms: Option<i64>,
    /// When this node stored it (Unix ms, the node's clock).
    pub stored_ms: Option<u64>,
    /// `stored_ms - scheduled_ms`.
    pub latency_ms: Option<i64>,
    /// `combined` (here, from partials) or `synced` (from a member's answer).
    pub origin: Option<String>,
}

/// The answer to `GET /beacon/rounds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundsJson {
    /// The active chain's hash (hex).
    pub chain_hash: String,
    /// The chain's genesis time (Unix seconds).
    pub genesis_time: i64,
    /// The chain's period (seconds).
    pub period: u32,
    /// The highest stored round (0 when none is).
    pub latest_round: u64,
    /// The stored rounds in the range, in order.
    pub rounds: Vec<RoundTimingJson>,
}

/// Why a range is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// `from` after `to`.
    #[error("from ({from}) is after to ({to})")]
    Reversed {
        /// First round asked for.
        from: u64,
        /// Last round asked for.
        to: u64,
    },
    /// More rounds than one answer holds.
    #[error("at most {MAX_TIMINGS} rounds per request")]
    TooWide,
}

/// The inclusive range a query asks for, given the latest stored round. Without `from`, the
/// range ends at `to` (default: `latest`) and is empty when that is round 0.
pub fn range(query: &RoundsQuery, latest: u64) -> Result<(u64, u64), RangeError> {
    let to = query.to.unwrap_or(latest);
    let Some(from) = query.from else {
        return Ok((to.saturating_sub(DEFAULT_ROUNDS - 1).max(1), to));
    };
    if from > to {
        return Err(RangeError::Reversed { from, to });
    }
    if to - from >= MAX_TIMINGS {
        return Err(RangeError::TooWide);
    }
    Ok((from, to))
}

/// One stored round as served, its latency under `info`.
pub fn round_json(info: &ChainInfo, stored: &StoredRound) -> RoundTimingJson {
    RoundTimingJson {
        round: stored.round,
        scheduled_ms: info
            .time_of_round(stored.round)
            .and_then(|s| s.checked_mul(1000)),
        stored_ms: stored.timing.map(|t| t.stored_ms),
        latency_ms: stored.timing.and_then(|t| t.latency_ms(info, stored.round)),
        origin: stored.timing.map(|t| t.origin.name().to_owned()),
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

async fn rounds(
    State(h): State<BeaconHttp>,
    query: Result<Query<RoundsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "query: {}; the query takes from and to, round numbers, both optional",
                    e.body_text()
                ),
            );
        }
    };
    if h.is_disabled() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            super::http::DISABLED.into(),
        );
    }
    let Some(s) = h.serving() else {
        return error(StatusCode::NOT_FOUND, "no beacon chain yet".into());
    };
    let chain = s.info.hash();
    let internal =
        |e: super::store::BeaconStoreError| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let latest = match s.store.last_round(&chain) {
        Ok(l) => l,
        Err(e) => return internal(e),
    };
    let (from, to) = match range(&query, latest) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    // Round 0 does not exist; a default range on an empty chain is (1, 0) and lists nothing.
    let stored = match s.store.timings(&chain, from.max(1), to) {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    axum::Json(RoundsJson {
        chain_hash: hex::encode(chain),
        genesis_time: s.info.genesis_time(),
        period: s.info.period_secs(),
        latest_round: latest,
        rounds: stored.iter().map(|r| round_json(&s.info, r)).collect(),
    })
    .into_response()
}

/// The route of `GET /beacon/rounds`.
pub fn routes(handle: BeaconHttp) -> Router {
    Router::new()
        .route("/beacon/rounds", get(rounds))
        .with_state(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(from: Option<u64>, to: Option<u64>) -> RoundsQuery {
        RoundsQuery { from, to }
    }

    #[test]
    fn ranges_default_to_the_last_rounds_and_are_bounded() {
        assert_eq!(range(&q(None, None), 0), Ok((1, 0)));
        assert_eq!(range(&q(None, None), 5), Ok((1, 5)));
        assert_eq!(range(&q(None, None), 500), Ok((401, 500)));
        assert_eq!(range(&q(Some(10), None), 500), Ok((10, 500)));
        assert_eq!(range(&q(None, Some(50)), 500), Ok((1, 50)));
        assert_eq!(range(&q(Some(1), Some(1000)), 5), Ok((1, 1000)));
        assert_eq!(range(&q(Some(1), Some(1001)), 5), Err(RangeError::TooWide));
        assert_eq!(
            range(&q(Some(0), Some(u64::MAX)), 5),
            Err(RangeError::TooWide)
        );
        assert_eq!(
            range(&q(Some(7), Some(6)), 5),
            Err(RangeError::Reversed { from: 7, to: 6 })
        );
    }
}
