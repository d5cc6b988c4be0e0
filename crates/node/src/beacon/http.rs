//! The beacon's HTTP API on the node's status server, in drand's format (HTTP API v1):
//! `GET /info` (chain info), `GET /public/latest` and `GET /public/{round}` (rounds, as the
//! beacon crate's JSON types write them). A round not produced yet, or a node without a beacon
//! (before the first view), answers 404. On a node whose beacon is turned off
//! (`beacon.enabled = false`) every beacon path answers 503 with `{"error": "…"}`.

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use keyquorum_beacon::ChainInfo;

use super::store::BeaconStore;

/// What the HTTP handlers serve: the active chain and its rounds.
#[derive(Debug, Clone)]
pub struct Serving {
    /// The chain of the active view.
    pub info: ChainInfo,
    /// The node's rounds.
    pub store: Arc<BeaconStore>,
}

/// Shared between the runtime, which sets the chain when a view's beacon starts, and the
/// server.
#[derive(Debug, Clone, Default)]
pub struct BeaconHttp(Arc<RwLock<Option<Serving>>>, Disabled);

/// Whether the node runs no beacon at all (fixed at start).
#[derive(Debug, Clone, Copy, Default)]
struct Disabled(bool);

/// The error message of every beacon path on a node whose beacon is off.
pub const DISABLED: &str = "the random beacon is disabled on this node (beacon.enabled = false)";

impl BeaconHttp {
    /// A handle for a node whose beacon is off: every beacon path answers 503.
    pub fn disabled() -> Self {
        BeaconHttp(Arc::default(), Disabled(true))
    }

    /// Whether the beacon is off on this node.
    pub fn is_disabled(&self) -> bool {
        self.1.0
    }

    /// What is served now (`None` before the first view's beacon, or when disabled).
    pub fn serving(&self) -> Option<Serving> {
        self.get()
    }

    /// Serves `serving` from now on.
    pub fn set(&self, serving: Serving) {
        if let Ok(mut s) = self.0.write() {
            *s = Some(serving);
        }
    }

    fn get(&self) -> Option<Serving> {
        self.0.read().ok().and_then(|s| s.clone())
    }
}

fn json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn not_found(what: &'static str) -> Response {
    (StatusCode::NOT_FOUND, what).into_response()
}

async fn disabled() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({ "error": DISABLED })),
    )
        .into_response()
}

async fn info(State(h): State<BeaconHttp>) -> Response {
    match h.get() {
        Some(s) => json(s.info.to_json()),
        None => not_found("no beacon chain yet"),
    }
}

fn round_answer(s: &Serving, round: Option<u64>) -> Response {
    let chain = s.info.hash();
    let round = match round {
        Some(r) => r,
        None => match s.store.last_round(&chain) {
            Ok(r) => r,
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
    };
    match s.store.round(&chain, round) {
        Ok(Some(r)) => json(r.to_json()),
        Ok(None) => not_found("round not produced"),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn latest(State(h): State<BeaconHttp>) -> Response {
    match h.get() {
        Some(s) => round_answer(&s, None),
        None => not_found("no beacon chain yet"),
    }
}

async fn public(State(h): State<BeaconHttp>, Path(round): Path<String>) -> Response {
    let Ok(round) = round.parse::<u64>() else {
        return (StatusCode::BAD_REQUEST, "round must be a number").into_response();
    };
    match h.get() {
        Some(s) => round_answer(&s, Some(round)),
        None => not_found("no beacon chain yet"),
    }
}

/// The beacon's routes (drand's, and keyquorum's [`super::rounds`]).
pub fn routes(handle: BeaconHttp) -> Router {
    if handle.is_disabled() {
        return Router::new()
            .route("/info", get(disabled))
            .route("/public/{*rest}", get(disabled))
            .merge(super::rounds::routes(handle));
    }
    Router::new()
        .route("/info", get(info))
        .route("/public/latest", get(latest))
        .route("/public/{round}", get(public))
        .with_state(handle.clone())
        .merge(super::rounds::routes(handle))
}
