//! The status and metrics HTTP server: `GET /status` (JSON, [`Status`]), `GET /metrics`
//! (OpenMetrics text, see [`crate::metrics`]), the beacon's drand API
//! ([`crate::beacon::http`]) and on-demand signatures (`POST /sign`, [`crate::sign::http`]).
//!
//! `/status` and `/metrics` are read-only views of state the node's [`Reporter`](crate::report::Reporter) writes
//! from what the driver observes; nothing secret is ever put in them
//! (shares and seeds never leave the driver and the store).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::metrics::{self, Metrics, Traffic};
use crate::store::OutputRecord;

/// The view change in progress, as this node takes part in it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingStatus {
    /// View being created.
    pub view: u64,
    /// Ceremony number within the view change (0 for the first; serialised as `session`).
    #[serde(rename = "session")]
    pub ceremony_number: u32,
    /// Board attempt.
    pub attempt: u32,
    /// `fresh` or `reshare`.
    pub key_mode: String,
    /// The new committee (identity hex), in index order.
    pub committee: Vec<String>,
    /// The dealers when resharing (identity hex).
    pub dealers: Vec<String>,
    /// `dealer`, `player`, `dealer+player` or `observer`: the committee's choice at selection,
    /// then the part this node's seat gives it once settled (a node that caught up past the
    /// deal window plays only, or only follows the board).
    pub role: String,
    /// Own share index in the new committee, if a member: 1-based, the evaluation point of the
    /// member's share and its `index` in the view's magic block (as [`Status::share_index`]).
    pub share_index: Option<u64>,
}

/// A magic block the chain asked this node to sign that differs from the one its own board
/// defines; the node did not sign it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MagicBlockMismatch {
    /// View of the block.
    pub view: u64,
    /// Ceremony number within the view change (0 for the first; serialised as `session`).
    #[serde(rename = "session")]
    pub ceremony_number: u32,
    /// The hash the chain gave (hex).
    pub hash: String,
    /// The first difference found (a field name, `hash`, or why nothing could be compared).
    pub what: String,
}

/// A ceremony this node follows without taking part: it may have dealt in it with state it no
/// longer has (a new database, or one restored from a backup), and dealing again would be
/// equivocation.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SittingOutStatus {
    /// Which ceremony: [`SAT_OUT_VIEW`] (a view change's) or [`SAT_OUT_SIGNING_KEY`] (the view's
    /// signing-key ceremony).
    #[serde(default)]
    pub ceremony: String,
    /// Its DKG variant: `ack-reveal` or `complaint`.
    #[serde(default)]
    pub variant: String,
    /// View being created (for a signing key: the view whose committee makes it).
    pub view: u64,
    /// Ceremony number within the view change (0 for the first, and for a signing key;
    /// serialised as `session`).
    #[serde(rename = "session")]
    pub ceremony_number: u32,
    /// Its session id (hex).
    #[serde(default)]
    pub session_id: String,
    /// Why: [`SAT_OUT_CONTRIBUTION_ON_BOARD`], [`SAT_OUT_DISQUALIFIED`] or
    /// [`SAT_OUT_NO_RECORD`].
    pub reason: String,
    /// Whether this node is still a member for the next ceremony of this kind. A view
    /// ceremony's: while it is registered (a candidate, taking part from this database, which
    /// is now its record). A signing key's: it stays a member of the view (its share of the
    /// view is not concerned) and of the next view's signing-key ceremony, unless a slashing in
    /// this one names it, which leaves it out of the next view's
    /// (`keyquorum_contract::signing_key::sitting_out`).
    #[serde(default)]
    pub member_of_next: bool,
}

/// [`SittingOutStatus::ceremony`] of a view change's ceremony.
pub const SAT_OUT_VIEW: &str = "view";
/// [`SittingOutStatus::ceremony`] of a view's signing-key ceremony.
pub const SAT_OUT_SIGNING_KEY: &str = "signing_key";
/// [`SittingOutStatus::reason`]: its contribution (or its report) is on the board, and this
/// database has no seed behind it.
pub const SAT_OUT_CONTRIBUTION_ON_BOARD: &str = "contribution_on_board";
/// [`SittingOutStatus::reason`]: the board cannot show yet whether it dealt (the complaint
/// variant's deals before the reports), and this database was not the node's record when the
/// ceremony started (new, or restored with `--restored-from-backup`).
pub const SAT_OUT_NO_RECORD: &str = "no_record_of_dealing";
/// [`SittingOutStatus::reason`]: nothing of its own is on the complaint variant's board, but
/// the board disqualified it as a dealer (it was away while the ceremony ran, or its database
/// lost the record of deals that no player reported).
pub const SAT_OUT_DISQUALIFIED: &str = "disqualified_on_board";

/// This node off the chain's candidate list after an eviction: registered with its stake, but
/// never selected until it is listed again (chains that cap the list: the EVM coordinator).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct EvictedStatus {
    /// The block whose log evicted it.
    pub block: u64,
    /// The account whose higher stake took its place.
    pub by: String,
    /// Its stake (wei, decimal), as the chain last said.
    pub stake: String,
    /// The least stake (wei, decimal) that lists it again while the list stays as it is; none
    /// when the chain named no bar (a place is free, or no candidate can be evicted now).
    pub needed_stake: Option<String>,
    /// Where re-entry stands: `list_full` (its stake is at most the lowest evictable
    /// candidate's), `none_evictable` (every listed candidate serves), `re_entering` (a place
    /// is free or its stake outranks that candidate: the node adds itself back), `below_minimum`
    /// (it must add stake), `unchecked` or `refused`.
    pub state: String,
}

/// This node's registration, refused because the chain's candidate list is full (chains that
/// cap the list: the EVM coordinator), or, on the embedded chain, because the account's free
/// balance is below the stake: it is not registered and its stake is not taken; the node
/// registers as soon as the chain would take it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RegistrationRefusedStatus {
    /// The confirmed block at which the refusal was first seen.
    pub block: u64,
    /// The stake (wei, decimal) the registration carries (the `stake` setting).
    pub stake: String,
    /// The least stake (wei, decimal) that registers it while the list stays as it is; none
    /// when the chain named no bar.
    pub needed_stake: Option<String>,
    /// Where it stands, in the states of [`EvictedStatus::state`]: `list_full`,
    /// `none_evictable`, `re_entering` (the registration is being sent), `refused`,
    /// `unchecked`; or `insufficient_balance` (fund the account or lower the stake), or
    /// `account_taken` (an EVM chain: the node's chain account is registered with another
    /// identity key; give each node its own account).
    pub state: String,
}

/// This node's stake below the chain's minimum (the EVM coordinator): the contract never lists
/// it, so it is never selected. Unregistered, its registration is not sent; registered, it
/// must add stake.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StakeBelowMinimumStatus {
    /// The confirmed block at which it was first seen.
    pub block: u64,
    /// The stake (wei, decimal): the `stake` setting while unregistered, else the chain's.
    pub stake: String,
    /// The contract's minimum stake (wei, decimal).
    pub minimum: String,
    /// Whether the node is registered (it must add stake), or its registration was held back
    /// (the `stake` setting must be raised to the minimum and the node restarted).
    pub registered: bool,
}

/// The chain adapter's checks of this node's candidacy failing (the EVM coordinator): retried
/// at each confirmed block until one succeeds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CandidacyCheckFailingStatus {
    /// The confirmed block of the first failure.
    pub since: u64,
    /// The confirmed block of the last failure.
    pub last: u64,
    /// Failures so far.
    pub failures: u64,
    /// The last error.
    pub error: String,
}

/// The chain this node follows, refused: a block that the node's own execution of the contract
/// does not reproduce (or a genesis configuration other than the pinned one). The node follows
/// nothing after it and submits nothing more to that chain.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChainRefusedStatus {
    /// The refused block's height (0 for the configuration).
    pub height: u64,
    /// What differed.
    pub reason: String,
}

/// The chain not usable for following: every read failing for a while (the embedded chain's
/// API down, the EVM endpoint unreachable), or the same chain behind the blocks this node
/// already followed (restored from an older copy, say). The node follows nothing meanwhile and
/// retries.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChainUnreachableStatus {
    /// When the reads started failing (Unix seconds).
    pub since_unix_secs: u64,
    /// The first failure's error.
    pub error: String,
}

/// This node's transactions still pending on the chain after their receipt wait (the EVM
/// coordinator): sent, known to the chain's node, and not mined (a fee too low for the chain,
/// say). None is sent again while it is pending, and the account's later transactions wait
/// behind its nonce.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SendPendingStatus {
    /// The oldest one's hash (`0x` hex).
    pub tx_hash: String,
    /// The contract function it calls (`register`, `post`, `activate`, ...).
    pub kind: String,
    /// How long ago it was sent (seconds), when last looked up.
    pub pending_secs: u64,
    /// How many sends are pending.
    pub sends: u64,
    /// How many replacements with higher fees were sent for the pending sends (each left
    /// pending long enough is replaced, up to the configured fee cap).
    #[serde(default)]
    pub fee_bumps: u64,
}

/// A view's secp256k1 signing key, as `/status` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SigningKeyStatus {
    /// The view.
    pub view: u64,
    /// Group key, compressed SEC1 (33 bytes, hex).
    pub group_key: String,
    /// Its BIP-340 x-only form (32 bytes, hex).
    pub x_only_key: String,
    /// Shares needed to sign.
    pub threshold: u32,
    /// Members (identity hex) in committee order.
    pub members: Vec<String>,
    /// Whether this node holds a share.
    pub member: bool,
}

/// The random beacon on this node, as `/status` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct BeaconStatus {
    /// `beacon.enabled` in the configuration.
    pub enabled: bool,
    /// The view whose beacon runs (none before the first view, or when disabled).
    pub view: Option<u64>,
    /// The chain's scheme (`pedersen-bls-chained`).
    pub scheme: Option<String>,
    /// The chain's hash (hex).
    pub chain_hash: Option<String>,
    /// Whether this node holds a share of the view and signs partials.
    pub member: bool,
    /// The highest round this node stored (0: none).
    pub latest_round: u64,
    /// The round in progress by this node's clock (0 before genesis).
    pub due_round: u64,
    /// Rounds whose period is over but which this node has not stored.
    pub missing: u64,
    /// Whether rounds are missing: the committee lacked partials, or this node is learning
    /// rounds it missed from the members.
    pub catching_up: bool,
    /// The highest round of the running view's chain this node stored from another node
    /// (fetched, or a member's answer) rather than combined; 0 until it has one in this view.
    pub last_synced: u64,
    /// The members whose partials this node refused as their fault (malformed, under another
    /// member's index, or not verifying) since it started, across views, with how many;
    /// empty when none was.
    pub refused_partials: Vec<RefusedPartials>,
}

/// A member's beacon partials refused by this node ([`BeaconStatus::refused_partials`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RefusedPartials {
    /// Its identity key (hex).
    pub identity: String,
    /// How many of its partials this node refused.
    pub count: u64,
}

impl BeaconStatus {
    /// `missing` and `catching_up` from the due and latest rounds.
    pub fn with_progress(mut self, due_round: u64, latest_round: u64) -> Self {
        self.due_round = due_round;
        self.latest_round = latest_round;
        // The round in progress is not missing yet.
        self.missing = due_round.saturating_sub(1).saturating_sub(latest_round);
        self.catching_up = self.missing > 0;
        self
    }
}

/// What `/status` answers (read back by `keyquorum demo` and the tests with the same type).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
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
    /// The chain's head as this node last read it.
    #[serde(default)]
    pub chain_head: Option<u64>,
    /// Processing blocks more than one below the chain's head (after a restart, from a new
    /// database, or after the chain was unreachable):
    /// `height`, `view`, `phase` and the committee are those of the block processed, not the
    /// chain's now, and what those blocks held is logged at debug level until the node has
    /// caught up.
    #[serde(default)]
    pub catching_up: bool,
    /// The active view.
    pub view: u64,
    /// The contract's phase (`idle`, `contribute`, `share`, `publish`, `wait`).
    pub phase: String,
    /// Last block of the phase.
    pub phase_deadline: Option<u64>,
    /// Members of the active view (identity hex), in index order.
    pub committee: Vec<String>,
    /// Own share index in the active view, if a member: 1-based, the member's `index` in the
    /// view's magic block.
    pub share_index: Option<u64>,
    /// Group key of the active view (compressed G1, hex).
    pub group_key: Option<String>,
    /// Shares needed to sign in the active view (its magic block's `t`): with `t` equal to
    /// the committee's size, any member down stops its threshold signatures and beacon.
    #[serde(default)]
    pub threshold: Option<u32>,
    /// Qualified dealers of the last ceremony this node finished (identity hex).
    pub qualified: Vec<String>,
    /// The last ceremony this node finished.
    pub last_outcome: Option<OutputRecord>,
    /// The view change in progress.
    pub pending: Option<PendingStatus>,
    /// The last magic block this node refused to sign.
    pub magic_block_mismatch: Option<MagicBlockMismatch>,
    /// The running view ceremony, when this node sits it out.
    pub sitting_out: Option<SittingOutStatus>,
    /// The running signing-key ceremony, when this node sits it out.
    #[serde(default)]
    pub signing_key_sitting_out: Option<SittingOutStatus>,
    /// Off the candidate list after an eviction, until it is listed again.
    #[serde(default)]
    pub evicted: Option<EvictedStatus>,
    /// Its registration refused for a full candidate list, until it registers.
    #[serde(default)]
    pub registration_refused: Option<RegistrationRefusedStatus>,
    /// Its stake below the chain's minimum, until it reaches it.
    #[serde(default)]
    pub stake_below_minimum: Option<StakeBelowMinimumStatus>,
    /// The chain adapter's candidacy checks failing, until one succeeds.
    #[serde(default)]
    pub candidacy_check_failing: Option<CandidacyCheckFailingStatus>,
    /// This node's transactions still pending after their receipt wait, while there are any.
    #[serde(default)]
    pub send_pending: Option<SendPendingStatus>,
    /// The chain refused (another chain under this node, or a block its contract does not
    /// reproduce), while the refusal lasts.
    #[serde(default)]
    pub chain_refused: Option<ChainRefusedStatus>,
    /// Every read of the chain failing for 10 s or more, until one succeeds; or, from the first
    /// read that shows it, the same chain's head below the blocks this node followed, until it
    /// passes them again.
    #[serde(default)]
    pub chain_unreachable: Option<ChainUnreachableStatus>,
    /// Traffic counters (the same numbers as `/metrics`), filled in when `/status` is served.
    pub traffic: Traffic,
    /// The random beacon.
    #[serde(default)]
    pub beacon: BeaconStatus,
    /// The active view's secp256k1 signing key, once the chain recorded it and this node
    /// checked it against its own board (absent without `[dkg.signing_key]`).
    #[serde(default)]
    pub signing_key: Option<SigningKeyStatus>,
}

/// Shared state of the server.
#[derive(Clone)]
pub struct StatusHandle {
    /// Status snapshot.
    pub status: Arc<Mutex<Status>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The beacon's chain and rounds (`/info`, `/public/...`).
    pub beacon: crate::beacon::http::BeaconHttp,
    /// On-demand signatures (`POST /sign`).
    pub sign: crate::sign::SignService,
}

async fn status(State(h): State<StatusHandle>) -> impl IntoResponse {
    let mut s = h.status.lock().map(|s| s.clone()).unwrap_or_default();
    s.traffic = h.metrics.traffic();
    axum::Json(s)
}

async fn metrics(State(h): State<StatusHandle>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        h.metrics.render(),
    )
}

/// The status server could not listen.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for {serves} on {addr}: {source}")]
pub struct ListenError {
    /// What the server serves (`/status and /metrics`, or a sections node's `/sections`).
    pub serves: &'static str,
    /// The configured address.
    pub addr: SocketAddr,
    /// The operating system's reason (for example "Address already in use").
    #[source]
    pub source: std::io::Error,
}

/// The running status server (see [`serve`]). Dropping it leaves the server running.
pub struct StatusServer {
    task: tokio::task::JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl StatusServer {
    /// Stops accepting, closes idle connections (a keep-alive scrape of `/metrics`) and waits up
    /// to `grace` for the requests under way; then stops the rest. A connection whose request
    /// is still running by then (a `POST /sign` waiting for its quorum) is left to finish on
    /// its own and keeps what it uses until it does.
    pub async fn stop(mut self, grace: std::time::Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(grace, &mut self.task).await.is_err() {
            self.task.abort();
            let _ = (&mut self.task).await;
        }
    }
}

/// Binds the server; returns the bound address and the running server.
pub async fn serve(
    addr: SocketAddr,
    handle: StatusHandle,
) -> Result<(SocketAddr, StatusServer), ListenError> {
    let listen_error = |source| ListenError {
        serves: "/status and /metrics",
        addr,
        source,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(listen_error)?;
    let local = listener.local_addr().map_err(listen_error)?;
    let app = Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .with_state(handle.clone())
        .merge(crate::beacon::http::routes(handle.beacon))
        .merge(crate::sign::http::routes(handle.sign));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // Only `StatusServer::stop` stops it, not dropping the handle.
    let signal = async move {
        if stopped.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    // The remote address, which keys `POST /sign`'s rate limit, comes with each request.
    let task = tokio::spawn(keyquorum_devchain::serve::serve(
        listener,
        app,
        keyquorum_devchain::serve::Limits::default(),
        signal,
    ));
    Ok((
        local,
        StatusServer {
            task,
            stop: Some(stop),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_port_in_use_is_named_with_the_os_reason() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let handle = StatusHandle {
            status: Arc::new(Mutex::new(Status::default())),
            metrics: Arc::new(Metrics::new()),
            beacon: Default::default(),
            sign: crate::sign::SignService::disabled(Arc::new(Metrics::new())),
        };
        let err = match serve(addr, handle).await {
            Ok(_) => panic!("listening on a taken port succeeded"),
            Err(e) => e,
        };
        let text = err.to_string();
        assert!(text.contains(&addr.to_string()), "{text}");
        // The OS's own words ("Address already in use (os error 98)" on Linux).
        assert!(text.to_lowercase().contains("in use"), "{text}");
        assert_eq!(err.source.kind(), std::io::ErrorKind::AddrInUse);
    }
}
