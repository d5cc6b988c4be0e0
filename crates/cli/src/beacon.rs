//! `keyquorum beacon verify`: fetch a drand-compatible chain's info and one round over HTTP and
//! verify the round (`keyquorum-beacon`).
//!
//! `URL` is the chain's base, as drand's HTTP API lays it out: `URL/info` answers the chain
//! info, `URL/public/R` round `R`, `URL/public/latest` the latest round. The chain hash in the
//! info must be the hash of the info; with `--chain-hash` it must also be the one given. The
//! round is verified under the scheme the info names (all four BLS12-381 schemes of drand).
//! Exit 0 when the round verifies, 1 when it does not or a fetch fails, 2 on usage errors.

use std::time::Duration;

use clap::{Args, Subcommand};
use keyquorum_beacon::info::MAX_INFO_JSON;
use keyquorum_beacon::round::MAX_ROUND_JSON;
use keyquorum_beacon::{ChainInfo, Round, verify_round, verify_round_number};
use keyquorum_node::cli::CliError;

/// Per-request timeout (connect, send, read).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `keyquorum beacon`.
#[derive(Args, Debug)]
pub struct BeaconArgs {
    #[command(subcommand)]
    command: BeaconCommand,
}

#[derive(Subcommand, Debug)]
enum BeaconCommand {
    /// Fetch a chain's info and a round, and verify the round: print round and randomness.
    #[command(after_help = keyquorum_node::cli::EXIT_CODES)]
    Verify(VerifyArgs),
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// Base URL of the chain (http or https): URL/info, URL/public/ROUND, URL/public/latest.
    #[arg(long)]
    url: String,
    /// Round to verify (default: the latest).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    round: Option<u64>,
    /// Chain hash (hex) the info must have.
    #[arg(long, value_name = "HEX")]
    chain_hash: Option<String>,
}

/// Runs `keyquorum beacon`.
pub fn run(args: BeaconArgs) -> Result<(), CliError> {
    match args.command {
        BeaconCommand::Verify(a) => verify(a),
    }
}

fn verify(args: VerifyArgs) -> Result<(), CliError> {
    let base = base_url(&args.url)?;
    let pinned: Option<[u8; 32]> = match &args.chain_hash {
        None => None,
        Some(h) => Some(
            hex::decode(h)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| CliError::usage("--chain-hash must be 64 hex characters"))?,
        ),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::failed)?;
    let round_path = match args.round {
        Some(r) => format!("/public/{r}"),
        None => "/public/latest".to_owned(),
    };
    let (info_body, round_body) = runtime.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(CliError::failed)?;
        let info = fetch(&http, &base, "/info", MAX_INFO_JSON).await?;
        let round = fetch(&http, &base, &round_path, MAX_ROUND_JSON).await?;
        Ok::<_, CliError>((info, round))
    })?;
    let info = ChainInfo::from_json(&info_body)
        .map_err(|e| CliError::Failed(format!("{base}/info: {e}")))?;
    if let Some(pin) = pinned
        && pin != info.hash()
    {
        return Err(CliError::Failed(format!(
            "chain hash {} is not the one given with --chain-hash",
            hex::encode(info.hash())
        )));
    }
    let round = Round::from_json(&round_body)
        .map_err(|e| CliError::Failed(format!("{base}{round_path}: {e}")))?;
    let randomness = match args.round {
        Some(r) => verify_round_number(&info, &round, r),
        None => verify_round(&info, &round),
    }
    .map_err(|e| {
        CliError::Failed(format!(
            "round {} does not verify on chain {} ({}): {e}",
            round.round,
            hex::encode(info.hash()),
            info.scheme()
        ))
    })?;
    println!("chain      {}", hex::encode(info.hash()));
    println!("scheme     {}", info.scheme());
    println!("round      {}", round.round);
    println!("randomness {}", hex::encode(randomness));
    Ok(())
}

/// Checks the URL: `http[s]://host[:port][/path]`, no query, fragment or credentials. https
/// uses rustls with the webpki root certificates, so drand's public relays verify as they are.
fn base_url(url: &str) -> Result<String, CliError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| CliError::Usage(format!("--url {url:?} is not a URL: {e}")))?;
    let plain = matches!(parsed.scheme(), "http" | "https")
        && parsed.host_str().is_some()
        && parsed.query().is_none()
        && parsed.fragment().is_none()
        && parsed.username().is_empty()
        && parsed.password().is_none();
    if !plain {
        return Err(CliError::Usage(format!(
            "--url {url:?}: expected http[s]://host[:port][/path]"
        )));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

/// A request's failure as a reader needs it: a timeout named as one (with the bound), and
/// otherwise the error with its causes (reqwest's own text says only that sending failed).
fn transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!(
            "no answer within {} s (timed out)",
            REQUEST_TIMEOUT.as_secs()
        );
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// `GET base + path`: a 2xx answer of at most `max` bytes, or a run failure.
pub(crate) async fn fetch(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    max: usize,
) -> Result<Vec<u8>, CliError> {
    let url = format!("{base}{path}");
    let failed = |e: reqwest::Error| CliError::Failed(format!("GET {url}: {}", transport(&e)));
    let mut response = http.get(&url).send().await.map_err(failed)?;
    let status = response.status();
    if !status.is_success() {
        // The server's own words, if it gave any: the start of its answer, printable only.
        let said = match response.chunk().await {
            Ok(Some(chunk)) => String::from_utf8_lossy(&chunk[..chunk.len().min(200)])
                .chars()
                .filter(|c| !c.is_control())
                .collect::<String>(),
            _ => String::new(),
        };
        // A keyquorum node says why as `{"error": "…"}`.
        let said = serde_json::from_str::<serde_json::Value>(&said)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
            .unwrap_or(said);
        let said = said.trim();
        return Err(CliError::Failed(if said.is_empty() {
            format!("GET {url}: HTTP {status}")
        } else {
            format!("GET {url}: HTTP {status}: {said}")
        }));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > max {
            return Err(CliError::Failed(format!(
                "GET {url}: answer larger than {max} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that accepts and never answers is reported as a timeout, not as a failure to
    /// send with no reason.
    #[tokio::test]
    async fn a_server_that_never_answers_is_named_a_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(stream);
        });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let Err(CliError::Failed(text)) = fetch(&http, &base, "/info", 1024).await else {
            panic!("a fetch from a silent server succeeded");
        };
        assert!(text.contains("timed out"), "{text}");
        held.abort();
    }

    /// A refusal is reported with the server's reason: a keyquorum node's JSON `error`, or
    /// another server's text as it came.
    #[tokio::test]
    async fn a_refusal_names_the_servers_reason() {
        for (body, expected) in [
            (
                r#"{"error":"round not produced"}"#,
                "HTTP 404 Not Found: round not produced",
            ),
            ("no such round", "HTTP 404 Not Found: no such round"),
            ("", "HTTP 404 Not Found"),
        ] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let server = tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request).await.unwrap();
                let answer = format!(
                    "HTTP/1.1 404 Not Found\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(answer.as_bytes()).await.unwrap();
            });
            let Err(CliError::Failed(text)) =
                fetch(&reqwest::Client::new(), &base, "/public/9", 1024).await
            else {
                panic!("a refused fetch succeeded");
            };
            assert!(text.ends_with(expected), "{text}");
            server.await.unwrap();
        }
    }
}
