//! The HTTP JSON API (axum). Every answer is one of the types of [`api`](crate::api), which
//! the [`Client`](crate::Client) decodes.
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /tx` | body = the raw transaction bytes (any content type). 200 [`Submitted`] `{"hash"}` once durably queued |
//! | `GET /tx/{hash}` | [`TxLookup`]: `{"status": "pending", "hash"}` or `{"status": "included", "hash", "height", "index", "events", "rejected"?}`; 404 if unknown |
//! | `GET /status` | [`Status`]: `{"height", "block_hash", "pending_txs", "state"}`, `state` being the state machine's answer to its `"status"` query (or `null`) |
//! | `GET /views/current`, `/views/{v}`, `/views/{v}/magic-block` | the state machine's query of the same path; 404 when it has none; 400 if `v` is not a number |
//! | `GET /query/{*path}` | any other state machine query |
//! | `GET /blocks/{h}` | one [`Block`] |
//! | `GET /events?from=H&limit=N&wait_ms=W` ([`EventsQuery`]) | [`EventsPage`] `{"from", "next", "height", "blocks"}` with the committed blocks from height `H` (default 1); if none exists yet, waits up to `W` ms (capped by `max_wait_ms`) for one. At most `limit` (at least 1) or `max_events_blocks` blocks and about `max_events_bytes` bytes; poll again with `from = next` |
//!
//! Errors are always [`ErrorBody`] `{"error": code, "reason": text}`: 400 malformed input or a
//! state-machine rejection (its code), 404 `not_found`, 405 `method_not_allowed`,
//! 409 `duplicate_tx`, 413 `tx_too_large`, 500 `storage`/`internal`,
//! 503 `mempool_full`/`busy`/`halted`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::api::{ErrorBody, EventsPage, EventsQuery, Status, Submitted, TxLookup};
use crate::block::{Block, parse_hash};
use crate::chain::ChainHandle;
use crate::engine::TxStatus;
use crate::error::{ChainError, SubmitError};

/// An error answer: status plus `{"error": code, "reason": reason}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: String,
    reason: String,
}

impl ApiError {
    fn new(status: StatusCode, code: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            reason: reason.into(),
        }
    }

    fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    fn bad_request(code: &str, reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, reason)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            reason: self.reason,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<ChainError> for ApiError {
    fn from(e: ChainError) -> Self {
        match e {
            ChainError::Halted => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "halted", e.to_string())
            }
            other => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                other.to_string(),
            ),
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        let status = match &e {
            SubmitError::Empty | SubmitError::Rejected(_) => StatusCode::BAD_REQUEST,
            SubmitError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            SubmitError::Duplicate(_) => StatusCode::CONFLICT,
            SubmitError::MempoolFull | SubmitError::Busy | SubmitError::Halted => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            SubmitError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.code(), e.reason())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::bad_request("bad_path", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request("bad_query", r.body_text())
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The API's routes over a chain handle.
pub fn router(handle: ChainHandle) -> Router {
    let max_body = handle.config().max_tx_bytes;
    Router::new()
        .route("/tx", post(post_tx))
        .route("/tx/{hash}", get(get_tx))
        .route("/status", get(status))
        .route("/views/current", get(view_current))
        .route("/views/{v}", get(view))
        .route("/views/{v}/magic-block", get(magic_block))
        .route("/query/{*path}", get(query))
        .route("/blocks/{height}", get(block))
        .route("/events", get(events))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(handle)
}

async fn post_tx(
    State(h): State<ChainHandle>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Submitted>> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                r.status(),
                "tx_too_large",
                format!(
                    "transaction exceeds the limit of {} bytes",
                    h.config().max_tx_bytes
                ),
            )
        } else {
            ApiError::new(r.status(), "bad_body", r.body_text())
        }
    })?;
    let hash = h.submit(body.to_vec()).await?;
    Ok(Json(Submitted { hash }))
}

async fn get_tx(
    State(h): State<ChainHandle>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<TxLookup>> {
    let Path(text) = path?;
    let hash = parse_hash(&text)
        .ok_or_else(|| ApiError::bad_request("bad_hash", "expected 64 hex characters"))?;
    match h.tx_status(hash).await? {
        TxStatus::Pending => Ok(Json(TxLookup::Pending { hash })),
        TxStatus::Included { height, index } => {
            let block = h.block(height)?.ok_or_else(|| {
                ApiError::from(ChainError::Corrupt("indexed block missing".into()))
            })?;
            let r =
                block.txs.into_iter().nth(index as usize).ok_or_else(|| {
                    ApiError::from(ChainError::Corrupt("indexed tx missing".into()))
                })?;
            Ok(Json(TxLookup::Included {
                hash,
                height,
                index,
                events: r.events,
                rejected: r.rejected,
            }))
        }
        TxStatus::Unknown => Err(ApiError::not_found(format!("transaction {text} unknown"))),
    }
}

async fn status(State(h): State<ChainHandle>) -> ApiResult<Json<Status>> {
    Ok(Json(h.status().await?))
}

async fn state_query(h: &ChainHandle, path: &str) -> ApiResult<Json<Value>> {
    h.query(path)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("{path} not found")))
}

fn parse_view(path: Result<Path<String>, PathRejection>) -> ApiResult<u64> {
    let Path(v) = path?;
    v.parse()
        .map_err(|_| ApiError::bad_request("bad_view", format!("view {v:?} is not a number")))
}

async fn view_current(State(h): State<ChainHandle>) -> ApiResult<Json<Value>> {
    state_query(&h, "views/current").await
}

async fn view(
    State(h): State<ChainHandle>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let v = parse_view(path)?;
    state_query(&h, &format!("views/{v}")).await
}

async fn magic_block(
    State(h): State<ChainHandle>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let v = parse_view(path)?;
    state_query(&h, &format!("views/{v}/magic-block")).await
}

async fn query(
    State(h): State<ChainHandle>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let Path(p) = path?;
    state_query(&h, &p).await
}

async fn block(
    State(h): State<ChainHandle>,
    path: Result<Path<u64>, PathRejection>,
) -> ApiResult<Json<Block>> {
    let Path(height) = path?;
    h.block(height)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("block {height} not committed")))
}

async fn events(
    State(h): State<ChainHandle>,
    params: Result<Query<EventsQuery>, QueryRejection>,
) -> ApiResult<Json<EventsPage<Box<RawValue>>>> {
    let Query(p) = params?;
    if p.limit == Some(0) {
        return Err(ApiError::bad_request(
            "bad_query",
            "limit must be at least 1 (it bounds the blocks of one page)",
        ));
    }
    let from = p.from.unwrap_or(1).max(1);
    let wait_ms = p.wait_ms.unwrap_or(0).min(h.config().max_wait_ms);
    if wait_ms > 0 && h.height() < from {
        h.wait_for_height(from, std::time::Duration::from_millis(wait_ms))
            .await;
    }
    let stored = h.blocks_json_from(from, p.limit.unwrap_or(usize::MAX))?;
    let next = from + stored.len() as u64;
    // The chain's height, never one derived from the request: a block read from the store may
    // be committed a moment before the height is published, so the blocks returned count too,
    // but an empty answer past the head reports the head.
    let height = if stored.is_empty() {
        h.height()
    } else {
        h.height().max(next - 1)
    };
    // Stored blocks are already JSON: they are passed through rather than decoded and encoded
    // again (checked to be one JSON value each, which the store wrote).
    let blocks = stored
        .into_iter()
        .map(|b| {
            String::from_utf8(b)
                .ok()
                .and_then(|s| RawValue::from_string(s).ok())
                .ok_or_else(|| ApiError::from(ChainError::Corrupt("stored block JSON".into())))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(EventsPage {
        from,
        next,
        height,
        blocks,
    }))
}
