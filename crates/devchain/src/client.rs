//! A typed client for the HTTP API ([`http`](crate::http)), on `reqwest`.
//!
//! One [`Client`] per process, cloned where needed: clones share one connection pool, so a
//! node's follower, submitter and queries reuse the same few kept-alive HTTP/1.1 connections
//! instead of connecting for every request. [`Client::at`] points a clone at another server (a
//! node's status server, say) over the same pool.
//!
//! Every call decodes the answer into the API's types ([`api`](crate::api)) and fails with a
//! [`ClientError`] that says what went wrong: the request did not get an answer
//! ([`Transport`](ClientError::Transport), timeouts included), the server answered an error
//! ([`Api`](ClientError::Api), with the HTTP status and the API's code and reason), or the
//! answer is not what the API defines ([`Decode`](ClientError::Decode)). Nothing the server
//! sends can make the client panic: answers are bounded in size and decoded by serde.
//!
//! ```no_run
//! # async fn f() -> Result<(), keyquorum_devchain::ClientError> {
//! use keyquorum_devchain::Client;
//! use keyquorum_devchain::api::EventsQuery;
//! let chain = Client::new("http://127.0.0.1:7450")?;
//! let status = chain.status::<serde_json::Value>().await?;
//! let page = chain
//!     .events(EventsQuery { from: Some(status.height), wait_ms: Some(1000), limit: None })
//!     .await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::api::{Block, ErrorBody, EventsPage, EventsQuery, Status, Submitted, TxHash, TxLookup};

/// How long a request may take when the caller does not say (a long poll adds its wait).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read. The server bounds an events page to about `max_events_bytes`
/// (4 MiB by default) but always sends at least one block, which may be larger; a block's
/// transactions are bounded by `max_block_bytes` (8 MiB), hex-encoded twice in the JSON.
pub const MAX_ANSWER_BYTES: usize = 64 << 20;

/// A client of one server. Cheap to clone; clones share the connection pool.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not `http://host:port`.
    #[error("{0:?} is not a server URL of the form http://host:port")]
    Url(String),
    /// No answer: connecting, sending or receiving failed, or the request timed out.
    #[error("{path}: {}", chain(source))]
    Transport {
        /// The request's path.
        path: String,
        /// What failed.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered an error with the API's error body.
    #[error("{path}: HTTP {status} {code}: {reason}")]
    Api {
        /// The request's path.
        path: String,
        /// The HTTP status (4xx or 5xx).
        status: u16,
        /// The API's stable code (`not_found`, `duplicate_tx`, a rejection code, ...).
        code: String,
        /// The server's explanation.
        reason: String,
    },
    /// The answer is not what the API defines (not JSON, wrong shape, too large, or an error
    /// status without the error body).
    #[error("{path}: HTTP {status}: unexpected answer: {detail}")]
    Decode {
        /// The request's path.
        path: String,
        /// The HTTP status of the answer.
        status: u16,
        /// What did not decode.
        detail: String,
    },
}

impl ClientError {
    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::Decode { status, .. } => Some(*status),
            Self::Url(_) | Self::Transport { .. } => None,
        }
    }

    /// The API's error code, if the server answered one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the request timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Transport { source, .. } if source.is_timeout())
    }
}

/// The error and its causes on one line (reqwest's own message hides the cause).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Checks `http://host:port` (a trailing slash allowed) and returns it without the slash.
fn base_url(url: &str) -> Result<String, ClientError> {
    let bad = || ClientError::Url(url.to_owned());
    let parsed = reqwest::Url::parse(url).map_err(|_| bad())?;
    let plain = parsed.scheme() == "http"
        && parsed.host_str().is_some()
        && parsed.path() == "/"
        && parsed.query().is_none()
        && parsed.fragment().is_none()
        && parsed.username().is_empty()
        && parsed.password().is_none();
    if !plain {
        return Err(bad());
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

/// Decodes an answer: a 2xx body as `T`, any other status as the API's error body.
///
/// Public so that the decoders can be tested on arbitrary bytes without a server.
pub fn decode<T: DeserializeOwned>(path: &str, status: u16, body: &[u8]) -> Result<T, ClientError> {
    let decode_error = |detail: String| ClientError::Decode {
        path: path.to_owned(),
        status,
        detail,
    };
    if (200..300).contains(&status) {
        return serde_json::from_slice(body).map_err(|e| decode_error(e.to_string()));
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error, reason }) => Err(ClientError::Api {
            path: path.to_owned(),
            status,
            code: error,
            reason,
        }),
        Err(e) => Err(decode_error(format!(
            "error answer without the API's error body ({e}): {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ))),
    }
}

/// How long a pooled connection may stay idle: below the server's header timeout.
const POOL_IDLE: std::time::Duration = std::time::Duration::from_secs(5);

impl Client {
    /// A client for the server at `http://host:port`, with its own connection pool.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let base = base_url(url)?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            // Loopback API: never through a proxy named in the environment.
            .no_proxy()
            // The server closes a connection idle for its header timeout (10 s,
            // `crate::serve`): a pooled one is dropped here well before, so a request is not
            // sent on a connection the server is closing.
            .pool_idle_timeout(POOL_IDLE)
            .build()
            .map_err(|e| ClientError::Transport {
                path: String::new(),
                source: e,
            })?;
        Ok(Client {
            http,
            base,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same client (same connection pool and timeout) for another server.
    pub fn at(&self, url: &str) -> Result<Self, ClientError> {
        Ok(Client {
            http: self.http.clone(),
            base: base_url(url)?,
            timeout: self.timeout,
        })
    }

    /// The same client with another per-request timeout (a long poll adds its wait to it).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The server's URL, `http://host:port`.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Sends a request and reads the answer, bounded in size.
    async fn send(
        &self,
        path: &str,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let transport = |source| ClientError::Transport {
            path: path.to_owned(),
            source,
        };
        let mut response = request.timeout(timeout).send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(ClientError::Decode {
                    path: path.to_owned(),
                    status,
                    detail: format!("answer larger than {MAX_ANSWER_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }

    fn url_of(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `GET path` answered with JSON, decoded as `T`: the state machine's queries
    /// (`/views/current`, `/views/{v}`, `/views/{v}/magic-block`, `/query/...`), or any JSON
    /// route of another server reached with [`at`](Self::at).
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let request = self.http.get(self.url_of(path));
        let (status, body) = self.send(path, request, self.timeout).await?;
        decode(path, status, &body)
    }

    /// `GET path` answered with text (a node's Prometheus `/metrics`).
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let request = self.http.get(self.url_of(path));
        let (status, body) = self.send(path, request, self.timeout).await?;
        if !(200..300).contains(&status) {
            return Err(decode::<()>(path, status, &body).unwrap_err());
        }
        String::from_utf8(body).map_err(|e| ClientError::Decode {
            path: path.to_owned(),
            status,
            detail: e.to_string(),
        })
    }

    /// `GET /status`, with the state machine's status decoded as `S`.
    pub async fn status<S: DeserializeOwned>(&self) -> Result<Status<S>, ClientError> {
        self.get("/status").await
    }

    /// `GET /events`: the committed blocks from `query.from`, waiting up to `query.wait_ms`
    /// for the first if it does not exist yet.
    pub async fn events(&self, query: EventsQuery) -> Result<EventsPage, ClientError> {
        let path = "/events";
        let request = self.http.get(self.url_of(path)).query(&query);
        let timeout = self.timeout + Duration::from_millis(query.wait_ms.unwrap_or(0));
        let (status, body) = self.send(path, request, timeout).await?;
        decode(path, status, &body)
    }

    /// `GET /blocks/{height}` (404 `not_found` until it is committed).
    pub async fn block(&self, height: u64) -> Result<Block, ClientError> {
        self.get(&format!("/blocks/{height}")).await
    }

    /// `GET /tx/{hash}` (404 `not_found` for a transaction the chain never accepted).
    pub async fn tx(&self, hash: &TxHash) -> Result<TxLookup, ClientError> {
        self.get(&format!("/tx/{}", hex::encode(hash))).await
    }

    /// `POST /tx`: submits raw transaction bytes. `Ok` means durably queued; a refusal is an
    /// [`Api`](ClientError::Api) error with the code (`duplicate_tx` 409, `tx_too_large` 413,
    /// `mempool_full`/`busy`/`halted` 503, the state machine's rejection code 400).
    pub async fn submit(&self, tx: Vec<u8>) -> Result<Submitted, ClientError> {
        let path = "/tx";
        let request = self
            .http
            .post(self.url_of(path))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(tx);
        let (status, body) = self.send(path, request, self.timeout).await?;
        decode(path, status, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let c = Client::new("http://127.0.0.1:7450/").unwrap();
        assert_eq!(c.url(), "http://127.0.0.1:7450");
        assert_eq!(
            c.at("http://localhost:9").unwrap().url(),
            "http://localhost:9"
        );
        for bad in [
            "https://x:1",
            "http://x:1/api",
            "http://",
            "127.0.0.1:7450",
            "http://x:1/?a=b",
            "http://u:p@x:1",
        ] {
            assert!(
                matches!(Client::new(bad), Err(ClientError::Url(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn error_answers_are_typed() {
        let e = decode::<Submitted>("/tx", 409, br#"{"error":"duplicate_tx","reason":"again"}"#)
            .unwrap_err();
        assert_eq!(e.status(), Some(409));
        assert_eq!(e.code(), Some("duplicate_tx"));
        assert!(e.to_string().contains("again"), "{e}");
        let e = decode::<Submitted>("/tx", 502, b"<html>bad gateway</html>").unwrap_err();
        assert!(
            matches!(e, ClientError::Decode { status: 502, .. }),
            "{e:?}"
        );
        let e = decode::<Submitted>("/tx", 200, br#"{"hash":"00"}"#).unwrap_err();
        assert!(
            matches!(e, ClientError::Decode { status: 200, .. }),
            "{e:?}"
        );
    }
}
