//! How the node talks to the chain: the [`ChainClient`] trait, and its implementation over the
//! embedded chain's HTTP API ([`HttpChainClient`]).
//!
//! The node needs only three things from a chain, so other chains can be added behind the same
//! trait: its status (the chain id, which every transaction signature binds), the committed
//! blocks in order with the contract's events (long-polled), and a way to submit a transaction.
//! Everything the node knows about ceremonies comes from the events, in block order: the
//! contract publishes exactly the inputs of the board (`PostAccepted`, `PostRejected`,
//! `BoardDeadline`) in the order it applied them, so the node's participant sees the same board
//! as the contract without deriving any deadline itself.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use keyquorum_contract::Event;
use serde_json::Value;

/// A transaction as committed in a block.
#[derive(Debug, Clone)]
pub struct ChainTx {
    /// SHA-256 of the bytes.
    pub hash: [u8; 32],
    /// The raw transaction.
    pub tx: Vec<u8>,
    /// Events it produced (none if rejected).
    pub events: Vec<Event>,
    /// `(code, reason)` if the contract refused it when applying it.
    pub rejected: Option<(String, String)>,
}

/// A committed block.
#[derive(Debug, Clone)]
pub struct ChainBlock {
    /// Height.
    pub height: u64,
    /// Production time (Unix ms), informational.
    pub time_ms: u64,
    /// Transactions in order.
    pub txs: Vec<ChainTx>,
    /// Events of the end of the block (deadlines, phase changes, view activation).
    pub end_block_events: Vec<Event>,
}

/// One long-poll answer.
#[derive(Debug, Clone)]
pub struct Blocks {
    /// Consecutive blocks from the requested height (possibly none).
    pub blocks: Vec<ChainBlock>,
    /// The chain's height when it answered.
    pub height: u64,
}

/// What became of a submitted transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Durably queued; it will be in a block.
    Accepted,
    /// Already pending or included (same bytes).
    Duplicate,
    /// Refused by the pre-check (`code` is the contract's rejection code).
    Rejected {
        /// Machine-readable code.
        code: String,
        /// Explanation.
        reason: String,
    },
    /// The chain is overloaded; try again later.
    Busy,
}

/// Chain access errors (transport, not rejections).
#[derive(Debug, thiserror::Error)]
pub enum ChainClientError {
    /// Connecting or talking to the chain failed.
    #[error("chain unreachable: {0}")]
    Transport(String),
    /// The chain answered something unexpected.
    #[error("unexpected chain answer: {0}")]
    Protocol(String),
}

/// A chain the node can follow and submit to.
pub trait ChainClient: Clone + Send + Sync + 'static {
    /// The chain's status object (must contain `chain_id` and `height`).
    fn status(&self) -> impl Future<Output = Result<Value, ChainClientError>> + Send;
    /// Committed blocks from `from`, waiting up to `wait_ms` for one if none exists yet.
    fn blocks(
        &self,
        from: u64,
        wait_ms: u64,
    ) -> impl Future<Output = Result<Blocks, ChainClientError>> + Send;
    /// Submits a raw transaction.
    fn submit(
        &self,
        tx: Vec<u8>,
    ) -> impl Future<Output = Result<SubmitOutcome, ChainClientError>> + Send;
}

/// The embedded chain's HTTP API (`keyquorum chain`), over plain HTTP/1.1 on loopback.
#[derive(Debug, Clone)]
pub struct HttpChainClient {
    authority: String,
}

impl HttpChainClient {
    /// A client for `http://host:port` (a trailing slash is allowed).
    pub fn new(url: &str) -> Result<Self, ChainClientError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| ChainClientError::Protocol(format!("{url:?} is not an http:// URL")))?;
        let authority = rest.trim_end_matches('/').to_string();
        if authority.is_empty() || authority.contains('/') {
            return Err(ChainClientError::Protocol(format!(
                "{url:?} must be http://host:port"
            )));
        }
        Ok(HttpChainClient { authority })
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), ChainClientError> {
        let t = |e: &dyn std::fmt::Display| ChainClientError::Transport(e.to_string());
        let work = async {
            let stream = tokio::net::TcpStream::connect(&self.authority)
                .await
                .map_err(|e| t(&e))?;
            stream.set_nodelay(true).ok();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| t(&e))?;
            // The connection future drives the socket; it ends with the exchange.
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header(header::HOST, &self.authority)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| t(&e))?;
            let resp = sender.send_request(req).await.map_err(|e| t(&e))?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| t(&e))?
                .to_bytes();
            Ok((status, bytes))
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| ChainClientError::Transport("request timed out".into()))?
    }

    /// `GET path` answered with text (a node's `/metrics`).
    pub async fn get_text(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<String, ChainClientError> {
        let (status, body) = self.request(Method::GET, path, Vec::new(), timeout).await?;
        if !status.is_success() {
            return Err(ChainClientError::Protocol(format!("GET {path}: {status}")));
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// `GET path` answered with JSON (any endpoint of the chain, or of a node's status server).
    pub async fn get_json(&self, path: &str, timeout: Duration) -> Result<Value, ChainClientError> {
        let (status, body) = self.request(Method::GET, path, Vec::new(), timeout).await?;
        if !status.is_success() {
            return Err(ChainClientError::Protocol(format!(
                "GET {path}: {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        serde_json::from_slice(&body)
            .map_err(|e| ChainClientError::Protocol(format!("GET {path}: {e}")))
    }
}

fn parse_events(values: Vec<Value>) -> Vec<Event> {
    values
        .into_iter()
        .filter_map(|v| match serde_json::from_value::<Event>(v) {
            Ok(e) => Some(e),
            Err(e) => {
                // A newer contract may emit events this node does not know; they cannot be
                // board inputs (those are fixed), so skipping them is safe.
                tracing::warn!(error = %e, "skipping an event this node does not understand");
                None
            }
        })
        .collect()
}

/// Converts the devchain's block JSON into [`ChainBlock`]s.
pub fn parse_block(block: keyquorum_devchain::Block) -> ChainBlock {
    ChainBlock {
        height: block.height,
        time_ms: block.time_ms,
        txs: block
            .txs
            .into_iter()
            .map(|r| ChainTx {
                hash: r.hash,
                tx: r.tx,
                events: parse_events(r.events),
                rejected: r.rejected.map(|x| (x.code, x.reason)),
            })
            .collect(),
        end_block_events: parse_events(block.end_block_events),
    }
}

impl ChainClient for HttpChainClient {
    async fn status(&self) -> Result<Value, ChainClientError> {
        self.get_json("/status", Duration::from_secs(10)).await
    }

    async fn blocks(&self, from: u64, wait_ms: u64) -> Result<Blocks, ChainClientError> {
        let path = format!("/events?from={from}&wait_ms={wait_ms}&limit=200");
        let timeout = Duration::from_millis(wait_ms) + Duration::from_secs(30);
        let mut v = self.get_json(&path, timeout).await?;
        let height = v["height"].as_u64().unwrap_or(0);
        let raw = v["blocks"].take();
        let blocks: Vec<keyquorum_devchain::Block> = serde_json::from_value(raw)
            .map_err(|e| ChainClientError::Protocol(format!("blocks: {e}")))?;
        Ok(Blocks {
            blocks: blocks.into_iter().map(parse_block).collect(),
            height,
        })
    }

    async fn submit(&self, tx: Vec<u8>) -> Result<SubmitOutcome, ChainClientError> {
        let (status, body) = self
            .request(Method::POST, "/tx", tx, Duration::from_secs(30))
            .await?;
        if status.is_success() {
            return Ok(SubmitOutcome::Accepted);
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let code = v["error"].as_str().unwrap_or("").to_string();
        let reason = v["reason"].as_str().unwrap_or("").to_string();
        Ok(match (status, code.as_str()) {
            (StatusCode::CONFLICT, _) | (_, "duplicate_tx") => SubmitOutcome::Duplicate,
            (StatusCode::SERVICE_UNAVAILABLE, _) => SubmitOutcome::Busy,
            _ => SubmitOutcome::Rejected { code, reason },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            HttpChainClient::new("http://127.0.0.1:7450/")
                .unwrap()
                .authority,
            "127.0.0.1:7450"
        );
        assert!(HttpChainClient::new("https://x:1").is_err());
        assert!(HttpChainClient::new("http://x:1/api").is_err());
        assert!(HttpChainClient::new("http://").is_err());
    }
}
