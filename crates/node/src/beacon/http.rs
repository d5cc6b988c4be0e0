//! The beacon's HTTP API on the node's status server, in drand's format (HTTP API v1):
//! `GET /info` (chain info), `GET /public/latest` and `GET /public/{round}` (rounds, as the
//! beacon crate's JSON types write them) serve the active view's chain.
//!
//! A fresh-key view change ends a chain and starts another. As drand does for a node that
//! runs several beacons, every chain this node has recorded, the ended ones and the current
//! one, is also served under its hash (64 hex digits): `GET /{chainhash}/info`,
//! `GET /{chainhash}/public/latest` and `GET /{chainhash}/public/{round}`, and
//! `GET /chains` lists the hashes (hex, in byte order). An ended chain's rounds are the ones
//! this node stored while the chain was current, and those it fetched afterwards from the
//! nodes that ran it, up to the chain's last possible round ([`super::ended`]).
//!
//! A round not produced yet, a chain this node does not know, or a node without a beacon
//! (before the first view) answers 404; a round or chain hash that does not parse, 400; a
//! storage failure, 500 (its cause in the node's log). On a node whose beacon is turned off (`beacon.enabled = false`) every
//! beacon path answers 503. Every such answer is JSON, `{"error": "…"}`, as the node's other
//! paths answer.

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

    /// Serves nothing from now on, for a node that stops: the server's connection tasks can
    /// outlive the node by a moment, and the beacon store's file must be free to open again
    /// as soon as the node returns.
    pub fn clear(&self) {
        if let Ok(mut s) = self.0.write() {
            *s = None;
        }
    }

    fn get(&self) -> Option<Serving> {
        self.0.read().ok().and_then(|s| s.clone())
    }
}

fn json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// An answer that is not what the path names: `{"error": message}`.
fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

fn not_found(what: &str) -> Response {
    error(StatusCode::NOT_FOUND, what)
}

/// A storage failure: logged here, and not detailed to the client (the path may be public).
fn storage_failed(e: super::store::BeaconStoreError) -> Response {
    tracing::warn!(error = %e, "beacon HTTP: the store failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the beacon store failed (see the node's log)",
    )
}

async fn disabled() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, DISABLED)
}

async fn info(State(h): State<BeaconHttp>) -> Response {
    match h.get() {
        Some(s) => json(s.info.to_json()),
        None => not_found("no beacon chain yet"),
    }
}

fn round_answer(s: &Serving, round: Option<u64>) -> Response {
    rounds_of(&s.store, &s.info.hash(), round)
}

/// Round `round` (`None`: the latest) of `chain`.
fn rounds_of(store: &BeaconStore, chain: &[u8; 32], round: Option<u64>) -> Response {
    let s = store;
    let round = match round {
        Some(r) => r,
        None => match s.last_round(chain) {
            Ok(r) => r,
            Err(e) => return storage_failed(e),
        },
    };
    match s.round(chain, round) {
        Ok(Some(r)) => json(r.to_json()),
        Ok(None) => not_found("round not produced"),
        Err(e) => storage_failed(e),
    }
}

async fn latest(State(h): State<BeaconHttp>) -> Response {
    match h.get() {
        Some(s) => round_answer(&s, None),
        None => not_found("no beacon chain yet"),
    }
}

/// Why a beacon path is not answered with what it names.
#[derive(Debug)]
enum Refused {
    /// The round is neither a number nor `latest` (400).
    BadRound,
    /// The chain hash is not 64 hex digits (400).
    BadHash,
    /// No chain is served yet (404).
    NoChain,
    /// This node has not recorded the chain (404).
    UnknownChain,
    /// Storage failed (500).
    Internal(super::store::BeaconStoreError),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::BadRound => error(
                StatusCode::BAD_REQUEST,
                "round must be a number or \"latest\"",
            ),
            Refused::BadHash => error(StatusCode::BAD_REQUEST, "chain hash must be 64 hex digits"),
            Refused::NoChain => not_found("no beacon chain yet"),
            Refused::UnknownChain => not_found("unknown chain"),
            Refused::Internal(e) => storage_failed(e),
        }
    }
}

fn parse_round(round: &str) -> Result<Option<u64>, Refused> {
    if round == "latest" {
        return Ok(None);
    }
    round
        .parse::<u64>()
        .map(Some)
        .map_err(|_| Refused::BadRound)
}

async fn public(State(h): State<BeaconHttp>, Path(round): Path<String>) -> Response {
    let round = match parse_round(&round) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match h.get() {
        Some(s) => round_answer(&s, round),
        None => not_found("no beacon chain yet"),
    }
}

/// A recorded chain named by its hash, and the store holding it.
fn chain_named(h: &BeaconHttp, hash: &str) -> Result<(Serving, ChainInfo), Refused> {
    let mut chain = [0u8; 32];
    if hash.len() != 64 || hex::decode_to_slice(hash, &mut chain).is_err() {
        return Err(Refused::BadHash);
    }
    let s = h.get().ok_or(Refused::NoChain)?;
    match s.store.chain(&chain) {
        Ok(Some(info)) => Ok((s, info)),
        Ok(None) => Err(Refused::UnknownChain),
        Err(e) => Err(Refused::Internal(e)),
    }
}

async fn chain_info(State(h): State<BeaconHttp>, Path(hash): Path<String>) -> Response {
    match chain_named(&h, &hash) {
        Ok((_, info)) => json(info.to_json()),
        Err(e) => e.into_response(),
    }
}

async fn chain_public(
    State(h): State<BeaconHttp>,
    Path((hash, round)): Path<(String, String)>,
) -> Response {
    let round = match parse_round(&round) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match chain_named(&h, &hash) {
        Ok((s, info)) => rounds_of(&s.store, &info.hash(), round),
        Err(e) => e.into_response(),
    }
}

async fn chains(State(h): State<BeaconHttp>) -> Response {
    let Some(s) = h.get() else {
        return not_found("no beacon chain yet");
    };
    match s.store.chains() {
        Ok(hashes) => json(
            serde_json::to_string(&hashes.iter().map(hex::encode).collect::<Vec<_>>())
                .expect("strings serialise"),
        ),
        Err(e) => storage_failed(e),
    }
}

/// The beacon's routes (drand's, and keyquorum's [`super::rounds`]).
pub fn routes(handle: BeaconHttp) -> Router {
    if handle.is_disabled() {
        return Router::new()
            .route("/info", get(disabled))
            .route("/public/{*rest}", get(disabled))
            .route("/chains", get(disabled))
            .route("/{chain}/info", get(disabled))
            .route("/{chain}/public/{*rest}", get(disabled))
            .merge(super::rounds::routes(handle));
    }
    Router::new()
        .route("/info", get(info))
        .route("/public/latest", get(latest))
        .route("/public/{round}", get(public))
        .route("/chains", get(chains))
        .route("/{chain}/info", get(chain_info))
        .route("/{chain}/public/{round}", get(chain_public))
        .with_state(handle.clone())
        .merge(super::rounds::routes(handle))
}
