//! The demo's view of the random beacon: after each view change it fetches, over drand's HTTP
//! API on the nodes (`/info`, `/public/latest`, `/public/R`), the chain info and the rounds
//! produced since the previous fetch, and verifies every round with `keyquorum-beacon` under
//! the chain info it was served with.
//!
//! Nodes are asked in order (committee members of the active view first): a member that joined
//! in a reshare stores only the rounds from its joining on, so an older round is taken from
//! whichever node serves it. A node's claim of a latest round later than the chain's schedule
//! allows is refused, so one fetch is bounded by the rounds due since the previous one.
//!
//! The node that served the latest round is also asked for its timing of the rounds fetched
//! (`/beacon/rounds`, keyquorum's own path): when it stored each one. The latency is computed
//! here, from that time and the round's schedule under the verified chain info; a node that
//! does not serve timings leaves the rounds without one.
//!
//! Rounds are attributed to the view active when they were scheduled (the round's start time
//! by the chain info against the block time of each view's activation): that is the committee
//! that produced them. A reshare keeps the group key, so its view continues the same chain
//! (same chain hash, round numbers going on without a gap); a fresh key starts a new chain
//! whose info names the previous chain's hash.

use std::collections::BTreeMap;
use std::time::Duration;

use keyquorum_beacon::info::MAX_INFO_JSON;
use keyquorum_beacon::round::MAX_ROUND_JSON;
use keyquorum_beacon::{ChainInfo, Round, verify_round, verify_round_number};
use keyquorum_node::beacon::rounds::RoundsJson;
use keyquorum_node::beacon::store::MAX_TIMINGS;
use keyquorum_node::cli::CliError;
use serde_json::Value;

use crate::demo_latency::LatencyPoint;

/// Largest `/beacon/rounds` answer read: [`MAX_TIMINGS`] rounds of a few hundred bytes.
const MAX_ROUNDS_JSON: usize = 512 * 1024;

/// Per-request timeout: the demo's nodes are on this machine.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One chain seen, with its info as the node served it.
struct Chain {
    info: ChainInfo,
    served: Value,
    /// Highest round fetched (0: none yet).
    last: u64,
}

/// Every chain and round fetched so far.
#[derive(Default)]
pub struct BeaconLog {
    /// In the order first seen.
    chains: Vec<Chain>,
    /// (chain index, round), verified, in the order fetched; no round twice per chain.
    rounds: Vec<(usize, Round)>,
    /// (chain index, round) to when a node stored it, as that node said.
    timings: BTreeMap<(usize, u64), Timing>,
}

/// When a node stored a round, as it served it.
#[derive(Debug, Clone, Copy)]
struct Timing {
    stored_ms: u64,
    synced: bool,
}

fn message(e: CliError) -> String {
    match e {
        CliError::Usage(s) | CliError::Failed(s) => s,
    }
}

async fn get(http: &reqwest::Client, port: u16, path: &str, max: usize) -> Result<Vec<u8>, String> {
    crate::beacon::fetch(http, &format!("http://127.0.0.1:{port}"), path, max)
        .await
        .map_err(message)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl BeaconLog {
    /// A client for [`BeaconLog::fetch`].
    pub fn client() -> Result<reqwest::Client, String> {
        reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())
    }

    /// Fetches the chain the first reachable node of `ports` serves and every round of it
    /// after the last one fetched, up to its latest, trying the nodes in order for each round.
    /// Each round is verified under the chain's info; a round that does not verify, or a
    /// second value for a round, is an error.
    pub async fn fetch(&mut self, http: &reqwest::Client, ports: &[u16]) -> Result<(), String> {
        let mut errors = Vec::new();
        for (i, &port) in ports.iter().enumerate() {
            match self.fetch_from(http, port, &ports[i + 1..]).await {
                Ok(()) => return Ok(()),
                Err(e) => errors.push(e),
            }
        }
        Err(format!(
            "no node served the beacon: {}",
            errors.last().map_or("no nodes", String::as_str)
        ))
    }

    async fn fetch_from(
        &mut self,
        http: &reqwest::Client,
        port: u16,
        others: &[u16],
    ) -> Result<(), String> {
        let body = get(http, port, "/info", MAX_INFO_JSON).await?;
        let info = ChainInfo::from_json(&body).map_err(|e| format!("node :{port} /info: {e}"))?;
        let served: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let latest = get(http, port, "/public/latest", MAX_ROUND_JSON).await?;
        let latest = Round::from_json(&latest).map_err(|e| format!("node :{port}: {e}"))?;
        verify_round(&info, &latest).map_err(|e| {
            format!(
                "round {} from node :{port} does not verify: {e}",
                latest.round
            )
        })?;
        // The schedule bounds what an honest node can have (one round of slack for clocks).
        let due = info.current_round(unix_now()) + 1;
        if latest.round > due {
            return Err(format!(
                "node :{port} claims round {} but only {due} are due",
                latest.round
            ));
        }
        let c = match self
            .chains
            .iter()
            .position(|c| c.info.hash() == info.hash())
        {
            Some(c) => c,
            None => {
                self.chains.push(Chain {
                    info,
                    served,
                    last: 0,
                });
                self.chains.len() - 1
            }
        };
        let from = self.chains[c].last + 1;
        for r in from..=latest.round {
            let round = if r == latest.round {
                latest.clone()
            } else {
                self.round_from_any(http, c, r, port, others).await?
            };
            self.rounds.push((c, round));
            self.chains[c].last = r;
        }
        if from <= latest.round {
            self.fetch_timings(http, port, c, from, latest.round).await;
        }
        Ok(())
    }

    /// The timings node `port` serves for rounds `from..=to` of chain `c`, kept for the rounds
    /// fetched; anything unusable is skipped (timings are reported, never relied on).
    async fn fetch_timings(
        &mut self,
        http: &reqwest::Client,
        port: u16,
        c: usize,
        from: u64,
        to: u64,
    ) {
        let chain = hex::encode(self.chains[c].info.hash());
        let mut start = from;
        while start <= to {
            let end = to.min(start.saturating_add(MAX_TIMINGS - 1));
            let path = format!("/beacon/rounds?from={start}&to={end}");
            let Ok(body) = get(http, port, &path, MAX_ROUNDS_JSON).await else {
                return;
            };
            let Ok(answer) = serde_json::from_slice::<RoundsJson>(&body) else {
                return;
            };
            if answer.chain_hash != chain {
                return;
            }
            for r in answer.rounds {
                if !(start..=end).contains(&r.round) {
                    continue;
                }
                if let Some(stored_ms) = r.stored_ms {
                    let synced = r.origin.as_deref() == Some("synced");
                    self.timings
                        .insert((c, r.round), Timing { stored_ms, synced });
                }
            }
            match end.checked_add(1) {
                Some(next) => start = next,
                None => return,
            }
        }
    }

    /// Latency of round `round` of chain `c` (ms from its scheduled start to its storage), if
    /// a node served its timing.
    fn latency_ms(&self, c: usize, round: u64) -> Option<(i64, Timing)> {
        let timing = *self.timings.get(&(c, round))?;
        let start_ms = self.chains[c]
            .info
            .time_of_round(round)?
            .checked_mul(1000)?;
        let latency = i64::try_from(timing.stored_ms)
            .ok()?
            .checked_sub(start_ms)?;
        Some((latency, timing))
    }

    /// Every fetched round with a timing, for the report's plot.
    pub fn latency_points(&self) -> Vec<LatencyPoint> {
        self.rounds
            .iter()
            .filter_map(|(c, r)| {
                let (latency_ms, timing) = self.latency_ms(*c, r.round)?;
                Some(LatencyPoint {
                    round: r.round,
                    scheduled_ms: self.chains[*c].info.time_of_round(r.round)? * 1000,
                    latency_ms,
                    synced: timing.synced,
                })
            })
            .collect()
    }

    /// Round `r` of chain `c`, verified, from the first of `port`, `others` that serves it.
    async fn round_from_any(
        &self,
        http: &reqwest::Client,
        c: usize,
        r: u64,
        port: u16,
        others: &[u16],
    ) -> Result<Round, String> {
        let info = &self.chains[c].info;
        let mut last_error = String::new();
        for &p in std::iter::once(&port).chain(others) {
            let body = match get(http, p, &format!("/public/{r}"), MAX_ROUND_JSON).await {
                Ok(b) => b,
                Err(e) => {
                    last_error = e;
                    continue;
                }
            };
            let round = Round::from_json(&body).map_err(|e| format!("node :{p}: {e}"))?;
            verify_round_number(info, &round, r)
                .map_err(|e| format!("round {r} from node :{p} does not verify: {e}"))?;
            return Ok(round);
        }
        Err(format!("no node serves round {r}: {last_error}"))
    }

    /// The view whose committee was to produce `round` of chain `c`: the last one activated
    /// (block time, Unix ms) at or before the round's start.
    fn view_of(&self, c: usize, round: u64, activations: &BTreeMap<u64, u64>) -> u64 {
        let start_ms = self.chains[c]
            .info
            .time_of_round(round)
            .map_or(i64::MAX, |s| s.saturating_mul(1000));
        activations
            .iter()
            .filter(|(_, at)| i64::try_from(**at).is_ok_and(|at| at <= start_ms))
            .map(|(v, _)| *v)
            .max()
            .unwrap_or(0)
    }

    /// Rounds fetched that were scheduled in `view`.
    pub fn rounds_in(&self, view: u64, activations: &BTreeMap<u64, u64>) -> usize {
        self.rounds
            .iter()
            .filter(|(c, r)| self.view_of(*c, r.round, activations) == view)
            .count()
    }

    /// One line per activated view: the chain, the rounds produced in it, and whether it
    /// continued the previous view's chain or started a new one.
    pub fn lines(&self, activations: &BTreeMap<u64, u64>) -> Vec<String> {
        let mut out = Vec::new();
        let mut previous: Option<(usize, u64)> = None;
        for &view in activations.keys() {
            let rounds: Vec<&(usize, Round)> = self
                .rounds
                .iter()
                .filter(|(c, r)| self.view_of(*c, r.round, activations) == view)
                .collect();
            let Some(&(c, _)) = rounds.first().copied() else {
                out.push(format!("  view {view}: no beacon rounds fetched"));
                continue;
            };
            let first = rounds.iter().map(|(_, r)| r.round).min().unwrap_or(0);
            let last = rounds.iter().map(|(_, r)| r.round).max().unwrap_or(0);
            let info = &self.chains[c].info;
            let how = match previous {
                Some((pc, plast)) if pc == c && first == plast + 1 => {
                    "continued the chain (same chain hash, no gap)".to_owned()
                }
                Some((pc, plast)) if pc == c => {
                    format!(
                        "same chain, but rounds {}..{} missing",
                        plast + 1,
                        first - 1
                    )
                }
                Some((pc, _))
                    if info.link().and_then(|l| l.previous_chain_hash)
                        == Some(self.chains[pc].info.hash()) =>
                {
                    "new chain (fresh key) linked to the previous one".to_owned()
                }
                Some(_) => "new chain, NOT linked to the previous one".to_owned(),
                None => "the first chain fetched".to_owned(),
            };
            out.push(format!(
                "  view {view}: chain {}… {} round{}, {first}..{last}, {how}",
                &hex::encode(info.hash())[..12],
                rounds.len(),
                if rounds.len() == 1 { "" } else { "s" }
            ));
            previous = Some((c, last));
        }
        out
    }

    /// `{chains: [info as served], rounds: [{round, randomness, signature, previous_signature,
    /// chain_hash, view, latency_ms?, stored_ms?, synced?}]}`: the last three only for rounds
    /// whose timing a node served.
    pub fn json(&self, activations: &BTreeMap<u64, u64>) -> Value {
        let chains: Vec<Value> = self.chains.iter().map(|c| c.served.clone()).collect();
        let rounds: Vec<Value> = self
            .rounds
            .iter()
            .map(|(c, r)| {
                let mut v: Value =
                    serde_json::from_str(&r.to_json()).expect("a round's JSON parses");
                v["chain_hash"] = Value::from(hex::encode(self.chains[*c].info.hash()));
                v["view"] = Value::from(self.view_of(*c, r.round, activations));
                if let Some((latency, timing)) = self.latency_ms(*c, r.round) {
                    v["latency_ms"] = Value::from(latency);
                    v["stored_ms"] = Value::from(timing.stored_ms);
                    v["synced"] = Value::from(timing.synced);
                }
                v
            })
            .collect();
        serde_json::json!({ "chains": chains, "rounds": rounds })
    }
}
