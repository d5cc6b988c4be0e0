//! HTTP/1 serving with the bounds an endpoint open to anyone needs, shared by the chain's API
//! and a node's status, beacon, signing and sections endpoints.
//!
//! `axum::serve` accepts every connection and waits on each for as long as the peer likes: a
//! client that sends half a request head, or announces a body and sends a few bytes of it,
//! holds a connection and a file descriptor for good, and a few thousand of them leave the
//! process without descriptors (so the endpoints stop answering) while no rate limit or
//! pending-request bound is ever reached. [`serve`] bounds all three:
//!
//! - at most [`Limits::max_connections`] connections at once: further ones wait in the
//!   kernel's backlog, not in the process;
//! - a request head must arrive within [`Limits::header_timeout`] (hyper's header read
//!   timeout, which also closes a kept-alive connection that starts no next request);
//! - a request body must keep coming: [`Limits::body_timeout`] without a frame ends it with an
//!   error, which the handlers answer as an unreadable body.
//!
//! A handler may take as long as it needs once the request is in (a signing request waits for
//! its members). Each request carries the peer's address as [`ConnectInfo`], as
//! `into_make_service_with_connect_info` gives it. On shutdown the listener closes, idle
//! connections close, and requests in flight finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// The bounds of one server (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time for a request head to arrive.
    pub header_timeout: Duration,
    /// Longest wait for the next part of a request body.
    pub body_timeout: Duration,
}

impl Default for Limits {
    /// 1024 connections, 10 s for a head, 10 s between body frames.
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
        }
    }
}

/// How long to wait before accepting again after `accept` failed (out of descriptors, most
/// likely): retrying at once would spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then lets the
/// requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let app = app.layer(RequestBodyTimeoutLayer::new(limits.body_timeout));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::debug!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = app
            .clone()
            .map_request(move |mut req: axum::extract::Request<_>| {
                req.extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(remote));
                req
            });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout);
        let connection = graceful
            .watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        tokio::spawn(async move {
            // An error here is the peer's (it went away, or was too slow): nothing to report.
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    const SHORT: Duration = Duration::from_millis(300);

    async fn server(max_connections: usize) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route(
                "/peer",
                get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
            )
            .route(
                "/echo",
                post(|body: axum::body::Bytes| async move { body.len().to_string() }),
            );
        let limits = Limits {
            max_connections,
            header_timeout: SHORT,
            body_timeout: SHORT,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, app, limits, async move {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    /// Everything the server sends until it closes the connection, within `within`.
    async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Option<String> {
        let mut out = Vec::new();
        tokio::time::timeout(within, stream.read_to_end(&mut out))
            .await
            .ok()?
            .ok()?;
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    async fn get_peer(addr: SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        read_to_close(&mut s, Duration::from_secs(5)).await.unwrap()
    }

    #[tokio::test]
    async fn a_request_head_that_never_ends_is_closed_at_the_header_timeout() {
        let (addr, _stop) = server(8).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        // Closed (with or without a 408) well before this bound; before, never.
        assert!(
            read_to_close(&mut s, Duration::from_secs(5))
                .await
                .is_some()
        );
        // The peer's address reaches the handler.
        let answer = get_peer(addr).await;
        assert!(answer.contains("127.0.0.1:"), "{answer}");
    }

    #[tokio::test]
    async fn a_body_that_stops_coming_ends_the_request() {
        let (addr, _stop) = server(8).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabcde")
            .await
            .unwrap();
        let answer = read_to_close(&mut s, Duration::from_secs(5)).await;
        let answer = answer.expect("the connection was held open");
        assert!(!answer.contains("200 OK"), "{answer}");
    }

    #[tokio::test]
    async fn connections_beyond_the_bound_wait_until_one_closes() {
        let (addr, _stop) = server(1).await;
        // One connection holds the only slot, sending nothing, until its head times out.
        let mut held = TcpStream::connect(addr).await.unwrap();
        let started = tokio::time::Instant::now();
        let answer = get_peer(addr).await;
        assert!(answer.contains("200 OK"), "{answer}");
        // Served only once the held connection's head timed out.
        assert!(started.elapsed() >= SHORT, "{:?}", started.elapsed());
        assert!(
            read_to_close(&mut held, Duration::from_secs(5))
                .await
                .is_some()
        );
    }

    #[tokio::test]
    async fn shutdown_closes_the_listener_and_idle_connections() {
        let (addr, stop) = server(8).await;
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut first = [0u8; 12];
        idle.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        stop.send(()).unwrap();
        assert!(
            read_to_close(&mut idle, Duration::from_secs(5))
                .await
                .is_some()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
