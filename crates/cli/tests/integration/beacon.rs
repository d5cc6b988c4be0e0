//! `keyquorum beacon verify` against a local HTTP server that serves real drand chain info and
//! rounds (the known-answer vectors of `keyquorum-beacon`, recorded in its
//! `tests/vectors/SOURCES.md`): real rounds exit 0, tampered ones and failed fetches exit 1,
//! usage errors exit 2.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Output};

use keyquorum_beacon::ChainInfo;

use crate::common::drand_js;

const BIN: &str = env!("CARGO_BIN_EXE_keyquorum");

fn vector(name: &str) -> String {
    let path = format!(
        "{}/../beacon/tests/vectors/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .to_owned()
}

/// Serves `routes` (path -> JSON body; anything else 404) on 127.0.0.1 from a background
/// thread, one request per connection; returns the base URL.
fn serve(routes: HashMap<String, String>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // Skip the headers.
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line == "\r\n" => break,
                    Ok(_) => {}
                }
            }
            // The query is ignored, as drand's relays do (clients add one to bypass caches).
            let target = request_line.split_whitespace().nth(1).unwrap_or("");
            let path = target.split('?').next().unwrap_or("");
            let (status, body) = match routes.get(path) {
                Some(b) => ("200 OK", b.clone()),
                None => ("404 Not Found", "{\"error\":\"not found\"}".to_owned()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .output()
        .expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A chain served under `/<chain hash>` as drand's relays do.
fn chain(hash: &str, info: &str, rounds: &[(&str, String)]) -> String {
    let mut routes = HashMap::new();
    routes.insert(format!("/{hash}/info"), vector(info));
    for (path, body) in rounds {
        routes.insert(format!("/{hash}{path}"), body.clone());
    }
    format!("{}/{hash}", serve(routes))
}

const QUICKNET: &str = "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971";
const DEFAULT: &str = "8990e7a9aaed2ffed73dbd7092123d6f289930540d7651336225dc172e51b2ce";

#[test]
fn real_drand_rounds_verify_and_a_tampered_one_does_not() {
    let real = vector("quicknet-1000.json");
    let url = chain(
        QUICKNET,
        "quicknet-info.json",
        &[("/public/1000", real.clone())],
    );
    let o = run(&["beacon", "verify", "--url", &url, "--round", "1000"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("round      1000"), "{out}");
    assert!(
        out.contains("fe290beca10872ef2fb164d2aa4442de4566183ec51c56ff3cd603d930e54fdd"),
        "{out}"
    );
    assert!(out.contains(QUICKNET), "{out}");

    // The same round with one signature byte changed (and no randomness to give it away).
    let mut round: serde_json::Value = serde_json::from_str(&real).unwrap();
    let sig = round["signature"].as_str().unwrap().to_owned();
    let flipped = format!(
        "{}{}",
        &sig[..20],
        if &sig[20..21] == "0" { "1" } else { "0" }
    );
    round["signature"] = format!("{flipped}{}", &sig[21..]).into();
    round.as_object_mut().unwrap().remove("randomness");
    let url = chain(
        QUICKNET,
        "quicknet-info.json",
        &[("/public/1000", round.to_string())],
    );
    let o = run(&["beacon", "verify", "--url", &url, "--round", "1000"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("round 1000 does not verify"),
        "{}",
        text(&o)
    );
}

#[test]
fn every_scheme_verifies_through_the_command() {
    let cases = [
        (DEFAULT, "default-info.json", "default-72785.json", "72785"),
        (
            QUICKNET,
            "quicknet-info.json",
            "quicknet-657413.json",
            "657413",
        ),
        (
            "dbd506d6ef76e5f386f41c651dcb808c5bcbd75471cc4eafa3f4df7ad4e4c493",
            "fastnet-info.json",
            "fastnet-3.json",
            "3",
        ),
        (
            "7672797f548f3f4748ac4bf3352fc6c6b6468c9ad40ad456a397545c6e2df5bf",
            "testnet-unchained-info.json",
            "testnet-unchained-223344.json",
            "223344",
        ),
    ];
    for (hash, info, round, number) in cases {
        // Served as the latest round, checked against the pinned chain hash.
        let url = chain(hash, info, &[("/public/latest", vector(round))]);
        let o = run(&["beacon", "verify", "--url", &url, "--chain-hash", hash]);
        assert_eq!(o.status.code(), Some(0), "{info}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(&format!("round      {number}")),
            "{}",
            text(&o)
        );
    }
}

#[test]
fn a_wrong_round_a_bad_chain_hash_or_a_failed_fetch_exits_1() {
    // The server answers round 1000 when asked for 999.
    let url = chain(
        QUICKNET,
        "quicknet-info.json",
        &[("/public/999", vector("quicknet-1000.json"))],
    );
    let o = run(&["beacon", "verify", "--url", &url, "--round", "999"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // Info whose published hash is not its hash.
    let mut info: serde_json::Value = serde_json::from_str(&vector("default-info.json")).unwrap();
    info["genesis_time"] = 1595431051.into();
    let mut routes = HashMap::new();
    routes.insert("/info".to_owned(), info.to_string());
    routes.insert("/public/1".to_owned(), vector("default-1.json"));
    let url = serve(routes);
    let o = run(&["beacon", "verify", "--url", &url, "--round", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("chain hash"),
        "{}",
        text(&o)
    );

    // A pinned chain hash that is another chain's.
    let url = chain(
        QUICKNET,
        "quicknet-info.json",
        &[("/public/1000", vector("quicknet-1000.json"))],
    );
    let o = run(&[
        "beacon",
        "verify",
        "--url",
        &url,
        "--round",
        "1000",
        "--chain-hash",
        DEFAULT,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // 404 (the server's own words shown, a JSON `error` as its text), and nobody listening.
    let o = run(&["beacon", "verify", "--url", &url, "--round", "5"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("HTTP 404 Not Found: not found"),
        "{}",
        text(&o)
    );
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let o = run(&[
        "beacon",
        "verify",
        "--url",
        &format!("http://127.0.0.1:{port}"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

/// An https URL is fetched over TLS: the server sees a TLS handshake record (content type 22,
/// then a ClientHello) where a plain-HTTP client would send `GET`. It then hangs up, so the fetch
/// fails and the exit code is 1, not the usage error an unsupported scheme would give.
#[test]
fn https_urls_are_fetched_over_tls() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Poll so that a client that never connects fails the test instead of hanging it.
    listener.set_nonblocking(true).unwrap();
    let first_bytes = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    let mut head = [0u8; 6];
                    std::io::Read::read_exact(&mut stream, &mut head).unwrap();
                    return Some(head);
                }
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(_) => return None,
            }
        }
    });
    let o = run(&[
        "beacon",
        "verify",
        "--url",
        &format!("https://127.0.0.1:{port}"),
    ]);
    let head = first_bytes
        .join()
        .unwrap()
        .unwrap_or_else(|| panic!("no connection: {}", text(&o)));
    assert_eq!(head[0], 22, "TLS handshake record expected, got {head:?}");
    assert_eq!(head[5], 1, "ClientHello expected, got {head:?}");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["beacon", "verify"][..],
        &["beacon", "verify", "--url", "not a url"],
        &[
            "beacon",
            "verify",
            "--url",
            "http://127.0.0.1:1",
            "--round",
            "0",
        ],
        &[
            "beacon",
            "verify",
            "--url",
            "http://127.0.0.1:1",
            "--round",
            "x",
        ],
        &[
            "beacon",
            "verify",
            "--url",
            "http://127.0.0.1:1",
            "--chain-hash",
            "abcd",
        ],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    }
}

/// drand's own JavaScript client (`common::drand_js`, the check the process tests run on
/// keyquorum's rounds) accepts real `pedersen-bls-chained` rounds served here, and refuses a
/// round whose previous signature was changed (its randomness still matches its signature, so
/// only the BLS check can catch it) and a chain whose key is not the one it was told to trust.
#[test]
fn drands_javascript_client_verifies_real_rounds_and_refuses_a_tampered_one() {
    let trusted = ChainInfo::from_json(vector("default-info.json").as_bytes()).unwrap();
    let real = vector("default-1000.json");
    let url = chain(
        DEFAULT,
        "default-info.json",
        &[
            ("/public/1", vector("default-1.json")),
            ("/public/1000", real.clone()),
            ("/public/latest", real.clone()),
        ],
    );
    let rounds = ["1", "1000", "latest"].map(String::from);
    let (verified, out) = drand_js::verify(&url, &trusted, &rounds);
    assert!(verified, "{out}");
    assert_eq!(out.matches(r#""verified":true"#).count(), 3, "{out}");

    let mut round: serde_json::Value = serde_json::from_str(&real).unwrap();
    let previous = round["previous_signature"].as_str().unwrap().to_owned();
    let changed = if &previous[10..11] == "0" { "1" } else { "0" };
    round["previous_signature"] = format!("{}{changed}{}", &previous[..10], &previous[11..]).into();
    let tampered = chain(
        DEFAULT,
        "default-info.json",
        &[("/public/1000", round.to_string())],
    );
    let (verified, out) = drand_js::verify(&tampered, &trusted, &["1000".into()]);
    assert!(!verified, "{out}");
    assert!(out.contains("not valid"), "{out}");

    let other = ChainInfo::from_json(vector("testnet-unchained-info.json").as_bytes()).unwrap();
    let (verified, out) = drand_js::verify(&url, &other, &["1000".into()]);
    assert!(!verified, "{out}");
    assert!(
        out.contains("did not match the verification params"),
        "{out}"
    );
}
