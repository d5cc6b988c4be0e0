//! The status and metrics HTTP server: `GET /status` (JSON) and `GET /metrics` (Prometheus).
//!
//! Both are read-only views of state the driver updates; nothing secret is ever put in them
//! (shares and seeds never leave the driver and the store).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;

use crate::metrics::Metrics;
use crate::store::OutputRecord;

/// The view change in progress, as this node takes part in it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PendingStatus {
    /// View being created.
    pub view: u64,
    /// Session number.
    pub session: u32,
    /// Board attempt.
    pub attempt: u32,
    /// `fresh` or `reshare`.
    pub key_mode: String,
    /// The new committee (identity hex), in index order.
    pub committee: Vec<String>,
    /// The dealers when resharing (identity hex).
    pub dealers: Vec<String>,
    /// `dealer`, `player`, `dealer+player` or `observer`.
    pub role: String,
    /// Own player position (0-based) in the new committee.
    pub own_index: Option<u32>,
}

/// What `/status` answers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// Own identity key (hex).
    pub identity: String,
    /// libp2p peer id.
    pub peer_id: String,
    /// Configured deviation (`none` for an honest node).
    pub fault: String,
    /// Registered on chain.
    pub registered: bool,
    /// Last block processed.
    pub height: u64,
    /// The active view.
    pub view: u64,
    /// The contract's phase (`idle`, `contribute`, `share`, `publish`, `wait`).
    pub phase: String,
    /// Last block of the phase.
    pub phase_deadline: Option<u64>,
    /// Members of the active view (identity hex), in index order.
    pub committee: Vec<String>,
    /// Own index (1-based share index) in the active view, if a member.
    pub own_index: Option<u64>,
    /// Group key of the active view (compressed G1, hex).
    pub group_key: Option<String>,
    /// Qualified dealers of the last ceremony this node finished (identity hex).
    pub qualified: Vec<String>,
    /// The last ceremony this node finished.
    pub last_outcome: Option<OutputRecord>,
    /// The view change in progress.
    pub pending: Option<PendingStatus>,
}

/// Shared state of the server.
#[derive(Clone)]
pub struct StatusHandle {
    /// Status snapshot.
    pub status: Arc<Mutex<Status>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

async fn status(State(h): State<StatusHandle>) -> impl IntoResponse {
    let s = h.status.lock().map(|s| s.clone()).unwrap_or_default();
    axum::Json(s)
}

async fn metrics(State(h): State<StatusHandle>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        h.metrics.render(),
    )
}

/// Binds the server; returns the bound address and the serving future's task.
pub async fn serve(
    addr: SocketAddr,
    handle: StatusHandle,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .with_state(handle);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "status server stopped");
        }
    });
    Ok((local, task))
}
