//! The beacon's HTTP API on the node's status server, in drand's format (HTTP API v1):
//! `GET /info` (chain info), `GET /public/latest` and `GET /public/{round}` (rounds, as the
//! beacon crate's JSON types write them). A round not produced yet, or a node without a beacon
//! (before the first view), answers 404.

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
pub struct BeaconHttp(Arc<RwLock<Option<Serving>>>);

impl BeaconHttp {
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

/// The beacon's routes.
pub fn routes(handle: BeaconHttp) -> Router {
    Router::new()
        .route("/info", get(info))
        .route("/public/latest", get(latest))
        .route("/public/{round}", get(public))
        .with_state(handle)
}
