//! The node's event loop: chain follower, peer messages, transaction queue, status server.
//!
//! One task owns the [`Driver`] and handles, one at a time: a committed block from the follower
//! task, a batch of peer messages, the outcome of a submission. Whatever the driver returns is
//! carried out afterwards (its inputs are durable by then):
//! - direct messages are delivered by one task each, retried with capped backoff until the
//!   peer answers or the ceremony ends (a restarting peer is reached when it is back);
//! - transactions go through a queue with a few in flight at once, because the contract
//!   applies nonces strictly in order: a refused transaction must not strand the ones after it
//!   (they are signed again with fresh nonces). The nonce is the chain's count of our applied
//!   transactions, which the driver tracks from the blocks (and persists).
//!   A chain whose submission waits for the receipt (the EVM coordinator) answers with the
//!   outcome; one sent and not yet seen mined is submitted again every two seconds with the
//!   handle the adapter answered (`retry_of`), so the adapter looks that send up rather than
//!   send it again.
//!
//! Peers that send a message for a ceremony this node has not seen start yet get no answer, so
//! they retry; messages are acknowledged only once durable.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use keyquorum_contract::hex::Bytes;
use keyquorum_contract::tx::{NetworkIdentity, SignerRole, TxBody};
use keyquorum_dkg::identity::Purpose;
use keyquorum_net::libp2p::PeerId;
use keyquorum_net::libp2p::multiaddr::Protocol;
use keyquorum_net::{
    BEACON_PARTIAL_KIND, BEACON_SYNC_KIND, Multiaddr, NetEvent, Network, NetworkHandle,
    SIGN_REQUEST_KIND, SessionId, Target,
};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

use crate::activation::{Collected, Collector, KIND_MAGIC_PARTIAL, PartialMessage};
use crate::beacon::ended::EndedChain;
use crate::beacon::http::{BeaconHttp, Serving};
use crate::beacon::store::BeaconStore;
use crate::beacon::sync::{SyncAsk, SyncGate};
use crate::beacon::{Beacon, NOT_RUNNING, Outgoing, SendOutcome};
use keyquorum_contract::magic::MagicBlock;

use crate::chain::{
    ChainAction, ChainBlock, ChainClient, ChainStatus, Due, FaultReport, Sender, SignatureRoute,
    SubmitOutcome,
};
use crate::config::NodeConfig;
use crate::driver::{
    Driver, DriverError, Effect, Incoming, KIND_DIRECT, KIND_PULL, OwnTx, Submission, Verdict,
};
use crate::keys::NodeKeys;
use crate::metrics::Metrics;
use crate::network::net_config;
use crate::report::{Observation, Reporter};
use crate::sign::{SignService, SignView};
use crate::status::{BeaconStatus, RefusedPartials, Status, StatusHandle};
use crate::store::Store;

/// Runtime errors.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Bad configuration.
    #[error("{0}")]
    Config(String),
    /// The driver (database) failed.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// Networking failed to start.
    #[error("network: {0}")]
    Net(String),
    /// I/O.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The status and metrics server could not listen.
    #[error(transparent)]
    StatusListen(#[from] crate::status::ListenError),
}

/// Longest a direct message is retried.
const DELIVERY_PATIENCE: Duration = Duration::from_secs(600);
/// Blocks to wait for a submitted transaction before submitting it again.
const INCLUSION_PATIENCE: u64 = 20;
/// How long a transaction sent and not yet seen in a block ([`SubmitOutcome::Unconfirmed`])
/// waits before the adapter is asked about it again.
const UNCONFIRMED_RETRY: Duration = Duration::from_secs(2);

enum Follow {
    Block(Box<ChainBlock>),
    Head(u64),
    /// The chain is refused: another chain under this node, or the adapter's refusal
    /// ([`ChainClient::chain_refused`]); nothing follows until [`Follow::Resumed`].
    Refused(crate::status::ChainRefusedStatus),
    /// The chain this node followed is back after a refusal.
    Resumed,
    /// Every read of the chain has failed for [`UNREACHABLE_AFTER`] (`Some`), or one succeeded
    /// again after that (`None`).
    Unreachable(Option<crate::status::ChainUnreachableStatus>),
}

/// How long every read of the chain must fail before the node says the chain is unreachable
/// (a restart of the chain's node or a short network fault stays quiet).
const UNREACHABLE_AFTER: Duration = Duration::from_secs(10);

/// The first pause before a refused chain is tried again; it doubles up to
/// [`REFUSED_RETRY_MAX`].
const REFUSED_RETRY_FIRST: Duration = Duration::from_secs(1);
/// The most sends, pulls and transactions held while the chain is refused.
const MAX_HELD_WHILE_REFUSED: usize = 10_000;
/// The longest pause before a refused chain is tried again.
const REFUSED_RETRY_MAX: Duration = Duration::from_secs(10);

/// The pause before a refused chain is tried again; `refusal` holds the last one (`None`
/// until the chain is refused).
fn refusal_pause(refusal: &mut Option<Duration>) -> Duration {
    let pause = refusal.map_or(REFUSED_RETRY_FIRST, |p| (p * 2).min(REFUSED_RETRY_MAX));
    *refusal = Some(pause);
    pause
}

/// Says that the follower refuses the chain from `refused.height` on (once: when the refusal
/// `begins`), and tells the runtime; `false` once the runtime has stopped. The chain is tried
/// again after a pause; a refusal that cannot be lifted is said then.
async fn refuse_following(
    follow_tx: &mpsc::Sender<Follow>,
    refused: crate::status::ChainRefusedStatus,
    begins: bool,
) -> bool {
    if !begins {
        debug!(height = refused.height, reason = %refused.reason, "the chain is still refused");
    } else if refused.height == 0 {
        // Before any block: the configuration, usually the operator's pinned digest or chain
        // URL.
        error!(
            reason = %refused.reason,
            "refusing the chain before its first block: check --chain-config-digest and \
             --chain-url; following nothing (shown on /status as chain_refused)"
        );
    } else {
        error!(
            height = refused.height,
            reason = %refused.reason,
            "refusing the chain: following nothing until it serves blocks that follow on from \
             this node's (tried again every few seconds; shown on /status as chain_refused)"
        );
    }
    follow_tx.send(Follow::Refused(refused)).await.is_ok()
}

/// Says that the chain this node followed is back after a refusal, and tells the runtime;
/// `false` once the runtime has stopped.
async fn resume_following(follow_tx: &mpsc::Sender<Follow>) -> bool {
    info!("the chain this node followed is back: following it again");
    follow_tx.send(Follow::Resumed).await.is_ok()
}

/// What a chain whose head is below the blocks this node followed is.
enum LostBlocks {
    /// Another chain (its genesis differs from the one the node's data is bound to): refused.
    Replaced(crate::status::ChainRefusedStatus),
    /// The same chain, behind (restored from an older copy, say), or one whose genesis could
    /// not be read: why the node waits.
    Behind(String),
}

/// Tells apart a chain that was replaced under this node from one that is only behind, by its
/// genesis (`head` is its height, `from` the next block this node asks for).
async fn lost_blocks<C: ChainClient>(chain: &C, genesis: &str, head: u64, from: u64) -> LostBlocks {
    let followed = from - 1;
    match chain.status().await {
        Ok(status) if status.genesis != genesis => {
            LostBlocks::Replaced(crate::status::ChainRefusedStatus {
                height: followed,
                reason: format!(
                    "the chain was replaced: its head is block {head}, below block {followed} this \
                 node followed, and its genesis differs from the one this node's data follows \
                 (was its data directory wiped?); restore that chain, or start this node on a new \
                 data directory for the new chain"
                ),
            })
        }
        Ok(_) => LostBlocks::Behind(format!(
            "the chain's head is block {head}, below block {followed} this node followed: it \
             lost blocks (restored from an older copy?); following again once it is past them"
        )),
        Err(e) => LostBlocks::Behind(format!(
            "the chain's head is block {head}, below block {followed} this node followed, and \
             its genesis could not be read: {e}"
        )),
    }
}

struct Inflight {
    hash: [u8; 32],
    sub: Submission,
    /// The height at which the chain took it ([`SubmitOutcome::Accepted`] or `Duplicate`), from
    /// which its inclusion is waited for; `None` while the adapter has not answered. A chain
    /// whose submission waits for the receipt answers with the outcome itself, so no patience
    /// runs out while it waits, and no copy is sent meanwhile.
    accepted_at: Option<u64>,
    /// Its place in the order transactions were first handed to the submitter, kept when it
    /// is requeued.
    seq: u64,
    /// Handed to the submitter, which has not answered yet: it will submit it, so it is not
    /// requeued (its own answer settles it).
    held: bool,
    /// The handle of its earlier submission's send, answered [`SubmitOutcome::Unconfirmed`]:
    /// submitted with it, it is that send's retry, not a new one ([`ChainClient::submit`]).
    retry_of: Option<[u8; 32]>,
}

/// What the submitter task submits: the answer's key ([`Inflight::hash`]), the transaction and
/// [`Inflight::retry_of`].
type ToSubmit<Tx> = ([u8; 32], Tx, Option<[u8; 32]>);

/// A submission taken back from flight, to go again.
struct Requeued {
    sub: Submission,
    /// As [`Inflight::retry_of`].
    retry_of: Option<[u8; 32]>,
}

/// Transactions in nonce order, a few in flight at once (see the module docs).
///
/// In-flight transactions carry consecutive nonces from the chain's count. When one is refused
/// without consuming its nonce, every later one in flight is bound to fail on its nonce, so they
/// all go back to the front of the queue, in order, to be signed again with fresh nonces (a
/// copy that lands anyway is refused as a duplicate by the contract: posts, partial signatures
/// and registrations are idempotent). Those the submitter still holds are left in flight, to
/// be requeued by their own answer: requeued at once, they would be handed over a second time.
#[derive(Default)]
struct TxQueue {
    queue: VecDeque<Submission>,
    /// Submissions taken back from flight, by [`Inflight::seq`]: they go again, in their first
    /// order, before the queue's.
    requeued: BTreeMap<u64, Requeued>,
    inflight: VecDeque<Inflight>,
    not_before: Option<Instant>,
    /// The next [`Inflight::seq`].
    next_seq: u64,
    /// Rounds of busy answers in a row ([`TxQueue::on_busy`]); any other answer ends the
    /// streak.
    busy_streak: u32,
}

/// The first retry after a busy answer.
const BUSY_RETRY: Duration = Duration::from_millis(300);
/// The longest retry after busy answers in a row.
const BUSY_RETRY_MAX: Duration = Duration::from_secs(5);

/// Most transactions submitted and not yet seen in a block.
const MAX_IN_FLIGHT: usize = 4;

impl TxQueue {
    /// Puts in-flight transactions from position `from` on back before the queue, but those
    /// the submitter still holds ([`Inflight::held`]).
    fn requeue_from(&mut self, from: usize, delay: Duration) {
        let mut pos = from;
        while pos < self.inflight.len() {
            if self.inflight[pos].held {
                pos += 1;
                continue;
            }
            let f = self.inflight.remove(pos).expect("position in range");
            self.requeued.insert(
                f.seq,
                Requeued {
                    sub: f.sub,
                    retry_of: f.retry_of,
                },
            );
        }
        self.hold_off(delay);
    }

    /// Submits nothing for `delay`, or longer if an earlier back-off lasts longer (a busy
    /// answer's is not cut short by a requeue that needs none).
    fn hold_off(&mut self, delay: Duration) {
        let until = Instant::now() + delay;
        self.not_before = Some(self.not_before.map_or(until, |t| t.max(until)));
    }

    /// Drops the submissions of `kind` not handed to the submitter (queued, or back from
    /// flight): no longer needed.
    fn drop_unsent(&mut self, kind: &str) {
        self.queue.retain(|s| s.kind != kind);
        self.requeued.retain(|_, r| r.sub.kind != kind);
    }

    /// Whether a submission of `kind` is queued, requeued or in flight: not in a block yet.
    fn holds(&self, kind: &str) -> bool {
        self.queue.iter().any(|s| s.kind == kind)
            || self.requeued.values().any(|r| r.sub.kind == kind)
            || self.inflight.iter().any(|f| f.sub.kind == kind)
    }

    /// Puts the in-flight transaction at `pos` alone back before the queue, for a chain whose
    /// adapter numbers the transactions itself: those after it keep their place.
    fn requeue_one(&mut self, pos: usize, delay: Duration) {
        if let Some(f) = self.inflight.remove(pos) {
            self.requeued.insert(
                f.seq,
                Requeued {
                    sub: f.sub,
                    retry_of: f.retry_of,
                },
            );
        }
        self.hold_off(delay);
    }

    /// The next submission to hand to the submitter, its [`Inflight::seq`] and
    /// [`Inflight::retry_of`]: a requeued one first, once no transaction after it is still in
    /// flight (it goes before them, and on a chain the node numbers, it takes the first of
    /// their nonces); then the queue's.
    fn next(&mut self) -> Option<(u64, Submission, Option<[u8; 32]>)> {
        if let Some(first) = self.requeued.keys().next() {
            if self.inflight.iter().any(|f| f.seq > *first) {
                return None;
            }
            return self
                .requeued
                .pop_first()
                .map(|(seq, r)| (seq, r.sub, r.retry_of));
        }
        let sub = self.queue.pop_front()?;
        self.next_seq += 1;
        Some((self.next_seq - 1, sub, None))
    }

    /// The adapter answered the transaction at `pos` [`SubmitOutcome::Unconfirmed`]: it goes
    /// back alone, to be submitted again shortly as the retry of `handle`.
    fn on_unconfirmed(&mut self, pos: usize, handle: [u8; 32]) {
        self.inflight[pos].retry_of = Some(handle);
        self.requeue_one(pos, UNCONFIRMED_RETRY);
    }

    /// The in-flight transaction the submitter answered for `hash`, no longer held: its
    /// position, or `None` when no held one has that hash (an answer that comes after a
    /// block settled it, or a second answer for one hash).
    fn take_answer(&mut self, hash: [u8; 32]) -> Option<usize> {
        let pos = self
            .inflight
            .iter()
            .position(|f| f.hash == hash && f.held)?;
        self.inflight[pos].held = false;
        Some(pos)
    }

    /// The chain took the transaction at `pos` at `height`. If one handed over before it went
    /// back meanwhile (busy), its nonce is free and this one cannot be mined before it: it
    /// goes back too, rather than hold the earlier one back until the inclusion patience runs
    /// out.
    fn on_accepted(&mut self, pos: usize, height: u64) {
        let seq = self.inflight[pos].seq;
        if self
            .requeued
            .keys()
            .next()
            .is_some_and(|first| *first < seq)
        {
            self.requeue_from(pos, Duration::ZERO);
        } else {
            self.inflight[pos].accepted_at = Some(height);
        }
    }

    /// The submitter answered the transaction at `pos` busy (or failed to reach the chain):
    /// it and those after it that the submitter no longer holds go again shortly, after
    /// [`BUSY_RETRY`] doubled for each busy answer in a row up to [`BUSY_RETRY_MAX`] (a send
    /// that keeps failing, such as an unfunded account's, costs the chain's endpoint a few
    /// calls a second at most).
    fn on_busy(&mut self, pos: usize) {
        // The answers for the other transactions in flight come within the same wait: one
        // round of retries counts once.
        if self.not_before.is_none_or(|t| Instant::now() >= t) {
            self.busy_streak = self.busy_streak.saturating_add(1);
        }
        let delay = BUSY_RETRY
            .saturating_mul(1 << self.busy_streak.saturating_sub(1).min(8))
            .min(BUSY_RETRY_MAX);
        self.requeue_from(pos, delay);
    }

    fn on_own_tx(&mut self, own: &OwnTx) {
        let Some(pos) = self.inflight.iter().position(|f| f.hash == own.hash) else {
            return;
        };
        // In a block: whatever the submitter answers for it comes too late to matter.
        self.inflight[pos].held = false;
        match own.rejected.as_deref() {
            None => {
                self.inflight.remove(pos);
            }
            Some("bad_nonce" | "stale_nonce") => self.requeue_from(pos, Duration::ZERO),
            Some(code) => {
                let f = self.inflight.remove(pos).expect("position found");
                // Enough partial signatures were in before ours (the view may even have
                // activated on them already, phases closing early): expected, not a problem.
                if code == "signature_complete"
                    || code == "duplicate_partial"
                    || (code == "no_view_change" && f.sub.kind == "magic_block_signature")
                {
                    debug!(kind = f.sub.kind, %code, "transaction not needed");
                } else {
                    warn!(kind = f.sub.kind, %code, "transaction refused by the contract");
                }
                self.requeue_from(pos, Duration::ZERO);
            }
        }
    }

    fn on_height(&mut self, height: u64) {
        if self
            .inflight
            .front()
            .and_then(|f| f.accepted_at)
            .is_some_and(|at| height > at + INCLUSION_PATIENCE)
        {
            debug!("transaction not included in time; submitting again");
            self.requeue_from(0, Duration::ZERO);
        }
    }
}

/// The beacon's part of the runtime: the active view's [`Beacon`] and what it needs.
struct BeaconRuntime {
    /// `None` when the beacon is turned off (`beacon.enabled = false`): nothing starts.
    store: Option<Arc<BeaconStore>>,
    status: Arc<Mutex<Status>>,
    http: BeaconHttp,
    metrics: Arc<Metrics>,
    corrupt_partials: bool,
    beacon: Option<Beacon>,
    /// A view was activated since the beacon was last (re)started.
    due: bool,
    /// The round the clock was in at the last tick, and when that tick was.
    last_tick: Option<(u64, Instant)>,
    /// What became of each partial sent, with the session it was sent in.
    sent: mpsc::Sender<SentPartial>,
    /// Answers to requests for missing rounds.
    synced: mpsc::Sender<(SyncAsk, Result<Vec<u8>, String>)>,
    /// On-demand signatures, which sign with the same view's shares.
    sign: SignService,
    /// Per-peer limit on the requests for rounds this node answers.
    sync_gate: SyncGate,
    /// Chains earlier views ended whose rounds this node still fetches.
    ended: Vec<EndedChain>,
    /// This node's identity (bytes), left out of the nodes it asks.
    me: Vec<u8>,
    /// The partials earlier views' beacons refused as their sender's fault, by identity; at
    /// most one entry per member of a view this node ran.
    refused_earlier: BTreeMap<Vec<u8>, u64>,
}

/// How often the engine is ticked within a round: each tick sends this node's partial of a
/// round in progress again to the members that have not taken it (members that were down get
/// it; see the engine's `tick` and `beacon::delivery`).
const BEACON_RESEND: Duration = Duration::from_secs(1);

/// A beacon partial sent, and what became of it.
type SentPartial = (SessionId, Outgoing, SendOutcome);

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl BeaconRuntime {
    /// Signs Schnorr signatures with view `view`'s signing key, if this node recorded one and
    /// `view` is the active view.
    async fn start_signing_key(&mut self, driver: &Driver, net: &NetworkHandle, view: u64) {
        if view != driver.state().current_view {
            return;
        }
        let held = match driver.signing_key(view) {
            Ok(Some(h)) => h,
            Ok(None) => return,
            Err(e) => {
                error!(view, error = %e, "cannot read the view's signing key share");
                return;
            }
        };
        let (held, share) = held;
        let share = held.own_position.zip(share);
        match crate::sign::frost::FrostView::new(view, &held.key, share) {
            Ok(v) => {
                if let Err(e) = net.set_session_members(v.session(), v.committee()).await {
                    warn!(error = %e, "cannot set the Schnorr signing session's members");
                }
                let x_only = <keyquorum_contract::signing_key::SigningCurve as keyquorum_crypto::Curve>::decode_point(
                    &held.key.group_key.0,
                )
                .ok()
                .and_then(|p| keyquorum_crypto::frost::bip340::x_only(&p).ok())
                .map(hex::encode)
                .unwrap_or_default();
                let status = crate::status::SigningKeyStatus {
                    view,
                    group_key: hex::encode(held.key.group_key.0),
                    x_only_key: x_only,
                    threshold: held.key.threshold,
                    members: held
                        .key
                        .members
                        .iter()
                        .map(|m| hex::encode(m.identity.0))
                        .collect(),
                    member: v.is_member(),
                };
                self.status
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .signing_key = Some(status);
                self.sign.set_frost_view(Some(v));
            }
            Err(e) => error!(view, error = %e, "Schnorr signing not started"),
        }
    }

    /// Stops Schnorr signing with a key of a view other than `view`.
    fn stop_signing_key_unless(&mut self, view: u64) {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if status.signing_key.as_ref().is_some_and(|k| k.view != view) {
            status.signing_key = None;
            self.sign.set_frost_view(None);
        }
    }

    /// Starts the beacon of the active view (after an activation or a restart).
    async fn start(&mut self, driver: &Driver, net: &NetworkHandle) {
        self.due = false;
        // The previous view's beacon stops either way: its shares sign for a view that is over.
        if let Some(ended) = self.beacon.take() {
            for (identity, count) in ended.refused_partials() {
                *self.refused_earlier.entry(identity.to_vec()).or_default() += count;
            }
        }
        self.ended.clear();
        self.publish_status();
        // On-demand signing keeps the previous view until the next one is ready to replace it:
        // cleared first, a request in between would be told this node has no view at all.
        let Some(record) = driver.state().beacon.clone() else {
            self.sign.set_view(None);
            return;
        };
        let share = match driver.beacon_share() {
            Ok(s) => s,
            Err(e) => {
                error!(error = %e, "cannot read the view's share for the beacon");
                None
            }
        };
        let sign_share = share
            .as_ref()
            .map(|(index, s)| (*index, keyquorum_crypto::secret::Secret::new(*s.expose())));
        match SignView::new(&record, sign_share) {
            Ok(view) => {
                // The beacon sets the same allow-list; signing must not depend on it.
                if let Err(e) = net
                    .set_session_members(view.session(), view.committee().to_vec())
                    .await
                {
                    warn!(error = %e, "cannot set the signing session's members");
                }
                self.sign.set_view(Some(view));
            }
            Err(e) => {
                self.sign.set_view(None);
                error!(view = record.view, error = %e, "on-demand signing not started");
            }
        }
        // With the beacon off there is no store: signing on demand still runs, the beacon not.
        let Some(store) = self.store.clone() else {
            return;
        };
        let beacon = match Beacon::new(
            &record,
            share,
            store.clone(),
            self.metrics.clone(),
            self.corrupt_partials,
        ) {
            Ok(b) => b,
            Err(e) => {
                error!(error = %e, "beacon not started");
                return;
            }
        };
        if let Err(e) = net
            .set_session_members(beacon.session(), beacon.committee().to_vec())
            .await
        {
            warn!(error = %e, "cannot set the beacon session's members");
        }
        for record in &record.ended {
            match EndedChain::new(
                record,
                beacon.committee(),
                &self.me,
                store.clone(),
                self.metrics.clone(),
            ) {
                Ok(e) if e.finished() => {}
                Ok(e) => self.ended.push(e),
                Err(e) => warn!(error = %e, "an ended beacon chain's rounds are not fetched"),
            }
        }
        self.http.set(Serving {
            info: beacon.info().clone(),
            store,
        });
        self.beacon = Some(beacon);
        self.last_tick = None;
        self.tick(net, true);
    }

    /// Writes the beacon's state into the `/status` snapshot.
    fn publish_status(&self) {
        let mut status = BeaconStatus {
            enabled: self.store.is_some(),
            ..Default::default()
        };
        if let Some(b) = &self.beacon {
            let now = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
            status = BeaconStatus {
                view: Some(b.view()),
                scheme: Some(b.info().scheme().as_str().to_owned()),
                chain_hash: Some(hex::encode(b.info().hash())),
                member: b.is_member(),
                last_synced: b.last_synced(),
                ..status
            }
            .with_progress(b.info().current_round(now), b.last_round());
        }
        let mut refused = self.refused_earlier.clone();
        if let Some(b) = &self.beacon {
            for (identity, count) in b.refused_partials() {
                *refused.entry(identity.to_vec()).or_default() += count;
            }
        }
        status.refused_partials = refused
            .into_iter()
            .map(|(identity, count)| RefusedPartials {
                identity: hex::encode(identity),
                count,
            })
            .collect();
        let mut guard = self.status.lock().unwrap_or_else(|e| e.into_inner());
        guard.beacon = status;
    }

    /// When the next round starts (the loop also ticks every 100 ms, for the resends).
    fn next_round_start(&self) -> Option<tokio::time::Instant> {
        let info = self.beacon.as_ref()?.info();
        let now = now_ms();
        let round = info.current_round(i64::try_from(now / 1000).unwrap_or(i64::MAX));
        let start_ms = u64::try_from(info.time_of_round(round.checked_add(1)?)?)
            .ok()?
            .checked_mul(1000)?;
        Some(tokio::time::Instant::now() + Duration::from_millis(start_ms.saturating_sub(now)))
    }

    /// Ticks the engine when a new round starts, and every [`BEACON_RESEND`] within one.
    fn tick(&mut self, net: &NetworkHandle, force: bool) {
        self.publish_status();
        let Some(beacon) = self.beacon.as_mut() else {
            return;
        };
        let now = now_ms();
        let asks = beacon
            .sync_due(now)
            .into_iter()
            .chain(self.ended.iter_mut().filter_map(|e| e.sync_due(now)));
        for ask in asks {
            let net = net.clone();
            let synced = self.synced.clone();
            tokio::spawn(async move {
                let answer = net
                    .send_beacon_sync(ask.to.clone(), ask.request.to_bytes().to_vec())
                    .await
                    .map_err(|e| e.to_string());
                let _ = synced.send((ask, answer)).await;
            });
        }
        let round = beacon
            .info()
            .current_round(i64::try_from(now / 1000).unwrap_or(i64::MAX));
        let due = force
            || self
                .last_tick
                .is_none_or(|(r, at)| r != round || at.elapsed() >= BEACON_RESEND);
        if !due {
            return;
        }
        self.last_tick = Some((round, Instant::now()));
        let out = in_place(|| beacon.tick(now));
        self.send(net, out);
    }

    fn on_partial(
        &mut self,
        net: &NetworkHandle,
        session: &[u8; 32],
        from: Option<&[u8]>,
        payload: &[u8],
    ) {
        let Some(beacon) = self.beacon.as_mut() else {
            return;
        };
        match in_place(|| beacon.on_partial(session, from, payload, now_ms())) {
            Ok(out) => self.send(net, out),
            Err(e) => debug!(error = %e, "beacon partial dropped"),
        }
    }

    /// What became of a partial sent: whether its member took it, and the round it may have
    /// answered with.
    fn on_sent(&mut self, net: &NetworkHandle, (session, sent, outcome): SentPartial) {
        let Some(beacon) = self.beacon.as_mut() else {
            return;
        };
        // Only an answer holding a round is work (its signature is checked); the others,
        // one per member and round, are bookkeeping and skip the worker hand-off.
        let holds_round =
            matches!(&outcome, SendOutcome::Answered(a) if !a.is_empty() && a != NOT_RUNNING);
        let out = if holds_round {
            in_place(|| beacon.on_sent(&session, &sent, outcome, now_ms()))
        } else {
            beacon.on_sent(&session, &sent, outcome, now_ms())
        };
        self.send(net, out);
    }

    /// The answer to a request for missing rounds.
    fn on_synced(&mut self, net: &NetworkHandle, ask: SyncAsk, answer: Result<Vec<u8>, String>) {
        if let Some(e) = self
            .ended
            .iter_mut()
            .find(|e| e.info().hash() == ask.request.chain)
        {
            in_place(|| e.on_sync_answer(&ask, answer, now_ms()));
            self.ended.retain(|e| !e.finished());
            return;
        }
        let Some(beacon) = self.beacon.as_mut() else {
            return;
        };
        let out = in_place(|| beacon.on_sync_answer(&ask, answer, now_ms()));
        self.send(net, out);
        self.publish_status();
    }

    fn send(&self, net: &NetworkHandle, out: Vec<Outgoing>) {
        let Some(beacon) = &self.beacon else {
            return;
        };
        let session = beacon.session();
        for o in out {
            let net = net.clone();
            let metrics = self.metrics.clone();
            let sent = self.sent.clone();
            tokio::spawn(async move {
                let bytes = o.payload.len();
                let outcome = match net
                    .send_beacon_partial(o.to.clone(), session, o.payload.clone())
                    .await
                {
                    Ok(answer) => {
                        metrics.sent("beacon_partial", bytes);
                        SendOutcome::Answered(answer)
                    }
                    Err(e) => {
                        debug!(error = %e, "beacon partial not delivered");
                        SendOutcome::Failed
                    }
                };
                // Waits for room rather than dropping the outcome: a send whose outcome is
                // lost would count as waiting for good and never be repeated.
                let _ = sent.send((session, o, outcome)).await;
            });
        }
    }
}

struct Runtime<C: ChainClient> {
    chain: C,
    chain_id: String,
    keys: Arc<NodeKeys>,
    net: NetworkHandle,
    reporter: Arc<Reporter>,
    sessions: HashMap<[u8; 32], watch::Sender<bool>>,
    txq: TxQueue,
    height: u64,
    submitter: mpsc::Sender<ToSubmit<C::Tx>>,
    pulled_tx: mpsc::Sender<Incoming>,
    beacon: BeaconRuntime,
    /// Magic-block partials of peers, where they are combined off chain.
    collector: Collector,
    /// The magic block awaiting signatures, as last seen.
    signing: Option<([u8; 32], MagicBlock)>,
    /// Fault proofs and activations waiting for this node's turn ([`Runtime::release_held`]).
    held: Vec<Held>,
    /// When the processed chain height last grew.
    height_advanced_at: Instant,
    /// The follower refuses the chain (another chain under this node, or the adapter's
    /// refusal, [`ChainClient::chain_refused`]), until the chain it followed is back.
    follow_refused: bool,
    /// Sends, pulls and transactions of this node while the chain was refused, for when it is
    /// back (at most [`MAX_HELD_WHILE_REFUSED`]).
    held_while_refused: Vec<Effect>,
    /// The chain refused this node's registration for want of balance (the adapter's own
    /// refusals, a full candidate list on EVM, are [`ChainClient::registration_refused`]);
    /// cleared once it is registered.
    balance_refusal: Option<crate::status::RegistrationRefusedStatus>,
    /// The height at which a registration of this node was last refused because its chain
    /// account is already registered (an EVM coordinator keys nodes by account); cleared once
    /// this node is registered.
    account_registered_at: Option<u64>,
    /// This node's registration refused because its account holds another node's
    /// registration: still refused so a round of retries later, while this node is not
    /// registered. Cleared once it is.
    account_refusal: Option<crate::status::RegistrationRefusedStatus>,
}

/// A fault proof or an activation the runtime holds until the chain's adapter says it is this
/// node's turn ([`ChainClient::proof_due`], [`ChainClient::activation_due`]).
struct Held {
    sub: Submission,
    /// It was not due when first asked: this node waited its turn.
    waited: bool,
    /// The chain height this node had processed when it began to hold it.
    since: u64,
    /// When it began to hold it.
    held_at: Instant,
}

impl<C: ChainClient> Runtime<C> {
    /// Whether this node follows nothing from the chain: its follower or its adapter refused
    /// it.
    fn refused(&self) -> bool {
        self.follow_refused || self.chain.chain_refused().is_some()
    }

    async fn apply(&mut self, driver: &Driver, effects: Vec<Effect>) {
        // A refused chain gets nothing more from this node: no transaction, no deal, ack or
        // pull for its ceremonies.
        let refused = self.refused();
        for e in effects {
            match e {
                // Held, not sent: they go out if the chain this node followed is back
                // ([`Follow::Resumed`]). Bounded: a long refusal keeps the first ones.
                e @ (Effect::Send { .. } | Effect::Pull { .. } | Effect::Submit(_)) if refused => {
                    if self.held_while_refused.len() < MAX_HELD_WHILE_REFUSED {
                        self.held_while_refused.push(e);
                    }
                }
                Effect::Crash => {
                    // The state (including "crashed once") is durable: die like kill -9.
                    std::process::abort();
                }
                Effect::Send {
                    session,
                    to,
                    kind,
                    payload,
                } => {
                    let cancel = self
                        .sessions
                        .entry(session)
                        .or_insert_with(|| watch::channel(false).0)
                        .subscribe();
                    tokio::spawn(deliver(
                        self.net.clone(),
                        session,
                        to,
                        KIND_DIRECT,
                        kind,
                        payload,
                        cancel,
                        self.reporter.clone(),
                    ));
                }
                Effect::Pull { session, from } => {
                    let net = self.net.clone();
                    let tx = self.pulled_tx.clone();
                    let reporter = self.reporter.clone();
                    tokio::spawn(async move {
                        match net
                            .send(
                                Target::Identity(from.clone()),
                                session,
                                KIND_PULL,
                                Vec::new(),
                            )
                            .await
                        {
                            Ok(deal) if !deal.is_empty() => {
                                reporter.observe(Observation::Sent {
                                    kind: "pull",
                                    bytes: 0,
                                });
                                reporter.observe(Observation::Received {
                                    kind: "deal",
                                    bytes: deal.len(),
                                });
                                let _ = tx
                                    .send(Incoming {
                                        session,
                                        from: Some(from),
                                        payload: deal,
                                    })
                                    .await;
                            }
                            Ok(_) => {}
                            Err(e) => debug!(error = %e, "pull failed"),
                        }
                    });
                }
                Effect::Submit(s) => match &s.action {
                    ChainAction::Tx(TxBody::MagicBlockSignature {
                        view,
                        block_hash,
                        role,
                        partial,
                    }) if self.chain.signature_route() == SignatureRoute::OffChain => {
                        // The driver signs only a block it rebuilt from its own board, so the
                        // new member endorses the same block here.
                        let endorsement = (*role == SignerRole::New)
                            .then(|| self.keys.identity().sign(Purpose::Endorsement, block_hash));
                        let message = PartialMessage {
                            view: *view,
                            block_hash: *block_hash,
                            role: *role,
                            partial: *partial,
                            endorsement,
                        };
                        self.share_partial(driver, message);
                    }
                    // The embedded chain's contract slashes from its own board.
                    ChainAction::ProveFault(_) if !self.chain.takes_fault_proofs() => {}
                    ChainAction::ProveFault(_) => {
                        self.held.push(Held {
                            sub: *s,
                            waited: false,
                            since: self.height,
                            held_at: Instant::now(),
                        });
                        self.release_held();
                    }
                    _ => self.txq.queue.push_back(*s),
                },
                Effect::EnterSession {
                    session,
                    mut members,
                    networks,
                } => {
                    // The active committee signs the handover: where partials are combined off
                    // chain, its members outside the new ceremony send theirs in its session.
                    if self.chain.signature_route() == SignatureRoute::OffChain
                        && let Some(active) = driver.active_block()
                    {
                        for m in &active.members {
                            if !members.iter().any(|x| x[..] == m.identity.0[..]) {
                                members.push(m.identity.0.to_vec());
                            }
                        }
                    }
                    self.sessions
                        .entry(session)
                        .or_insert_with(|| watch::channel(false).0);
                    if let Err(e) = self.net.set_session_members(session, members).await {
                        warn!(error = %e, "cannot set the session's members");
                    }
                    // Again at each session: a restarted node has not seen the registrations.
                    for (identity, network) in networks {
                        self.bind(identity, &network).await;
                    }
                }
                Effect::Learn { identity, network } => self.bind(identity, &network).await,
                Effect::StartBeacon { view } => {
                    self.beacon.due = true;
                    // The previous view's signing key signs no more.
                    self.beacon.stop_signing_key_unless(view);
                }
                Effect::StartSigningKey { view } => {
                    self.beacon.start_signing_key(driver, &self.net, view).await;
                }
                Effect::LeaveSession { session } => {
                    // Dropping the sender cancels the ceremony's deliveries.
                    self.sessions.remove(&session);
                }
            }
        }
    }

    /// Sends messages for `identity` straight to the peer id its registration names, dialed at
    /// the registered addresses (the DHT is asked only when that dial fails). The peer id comes
    /// from the registration transaction, which the validator signed with `identity`; the
    /// addresses are only where to dial, since Noise refuses a remote with another key.
    async fn bind(&self, identity: Vec<u8>, network: &NetworkIdentity) {
        let Ok(peer) = PeerId::from_bytes(&network.peer_id.0) else {
            debug!("registered peer id does not decode; the DHT will be asked");
            return;
        };
        let addrs: Vec<Multiaddr> = network
            .addresses
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect();
        if let Err(e) = self.net.bind_identity(identity, peer, addrs).await {
            warn!(error = %e, "cannot bind a registered identity");
        }
    }

    /// Sends this node's partial on a magic block to every member of the new committee, over
    /// the ceremony's session, and offers it to its own collector (module docs of
    /// [`crate::activation`]).
    fn share_partial(&mut self, driver: &Driver, message: PartialMessage) {
        let state = driver.state();
        let Some(pending) = state.pending_magic.as_ref() else {
            return;
        };
        let mut session = [0u8; 32];
        if state
            .ceremony
            .as_ref()
            .is_none_or(|c| hex::decode_to_slice(&c.session_id, &mut session).is_err())
        {
            return;
        }
        let me = self.keys.identity().public().to_bytes();
        if pending.index.is_some() {
            self.collect_for(driver);
            self.offer_partial(Some(&me[..]), &message);
        }
        let payload = message.encode();
        let cancel = self
            .sessions
            .entry(session)
            .or_insert_with(|| watch::channel(false).0)
            .subscribe();
        for member in &pending.members {
            let Ok(to) = hex::decode(member) else {
                continue;
            };
            if to == me {
                continue;
            }
            tokio::spawn(deliver(
                self.net.clone(),
                session,
                to,
                KIND_MAGIC_PARTIAL,
                "magic_partial",
                payload.clone(),
                cancel.clone(),
                self.reporter.clone(),
            ));
        }
    }

    /// A peer's partial on a magic block; `false` leaves it unanswered (so the peer retries:
    /// this node has not reached that block yet).
    fn on_partial(&mut self, from: Option<&[u8]>, payload: &[u8]) -> bool {
        match PartialMessage::decode(payload) {
            Ok(message) => self.offer_partial(from, &message),
            Err(e) => {
                debug!(error = %e, "magic block partial dropped");
                true
            }
        }
    }

    fn offer_partial(&mut self, from: Option<&[u8]>, message: &PartialMessage) -> bool {
        match self.collector.offer(from, message) {
            Ok(Collected::Later) => false,
            Ok(Collected::Kept) => true,
            Ok(Collected::Complete(activation)) => {
                info!(
                    view = activation.view,
                    "magic block signatures combined; activating"
                );
                self.held.push(Held {
                    sub: Submission {
                        action: ChainAction::Activate(*activation),
                        kind: "activate",
                        expires: None,
                    },
                    waited: false,
                    since: self.height,
                    held_at: Instant::now(),
                });
                self.release_held();
                true
            }
            Err(e) => {
                warn!(error = %e, "magic block partial refused");
                true
            }
        }
    }

    /// Keeps the collector on the magic block this node signs as a member of the new committee,
    /// with the active view's block (the handover's committee; the driver stores it, so it
    /// survives a restart) as the committee of the previous key.
    fn collect_for(&mut self, driver: &Driver) {
        if self.chain.signature_route() != SignatureRoute::OffChain {
            return;
        }
        let state = driver.state();
        if let Some((hash, _)) = &self.signing
            && state.current_hash.as_deref() == Some(hex::encode(hash).as_str())
        {
            self.signing = None;
            self.collector.clear();
        }
        let Some(pending) = state.pending_magic.as_ref() else {
            return;
        };
        let (Some(block), Ok(hash)) = (
            pending.block.clone(),
            <[u8; 32]>::try_from(hex::decode(&pending.hash).unwrap_or_default()),
        ) else {
            return;
        };
        self.signing = Some((hash, block.clone()));
        if pending.index.is_some() {
            let previous = driver
                .active_block()
                .filter(|b| b.view + 1 == block.view)
                .cloned();
            self.collector.set_target(hash, block, previous);
        }
    }

    /// Queues the held fault proofs and activations whose turn has come and drops those
    /// another node's transaction settled or this node does not send
    /// ([`ChainClient::proof_due`], [`ChainClient::activation_due`]); the rest wait for a later
    /// block.
    fn release_held(&mut self) {
        for mut held in std::mem::take(&mut self.held) {
            // How long the chain has shown no new block while this node held it.
            let idle = held.held_at.max(self.height_advanced_at).elapsed();
            let due = match &held.sub.action {
                ChainAction::ProveFault(r) => self.chain.proof_due(r, held.held_at.elapsed(), idle),
                ChainAction::Activate(a) => {
                    self.chain
                        .activation_due(a, held.since, held.held_at.elapsed(), idle)
                }
                _ => Due::Now,
            };
            match (due, &held.sub.action) {
                (Due::Now, _) => self.txq.queue.push_back(held.sub),
                (Due::Later, _) => {
                    held.waited = true;
                    self.held.push(held);
                }
                // Settled at the first ask is a fault proven before this node got to it (a
                // replay after a restart): nothing this node held back, nothing to count.
                (Due::Settled, ChainAction::ProveFault(r)) if held.waited => self.proof_outcome(
                    r,
                    "settled",
                    "fault proven by another member before this node's turn",
                ),
                (Due::Settled | Due::Never, ChainAction::ProveFault(r)) => debug!(
                    view = r.view,
                    ceremony = r.ceremony_number,
                    dealer = r.dealer,
                    "no fault proof for this node to send"
                ),
                (Due::Settled, ChainAction::Activate(a)) => info!(
                    view = a.view,
                    waited = held.waited,
                    "view activated by another member before this node's turn"
                ),
                (Due::Never, ChainAction::Activate(a)) => debug!(
                    view = a.view,
                    "not activating: the chain no longer awaits this magic block"
                ),
                (Due::Settled | Due::Never, _) => {}
            }
        }
    }

    /// Logs what became of this node's proof of the fault `r` reports and counts it in
    /// `keyquorum_fault_proofs_total{result}`.
    fn proof_outcome(&self, r: &FaultReport, result: &'static str, what: &str) {
        info!(
            view = r.view,
            ceremony = r.ceremony_number,
            dealer = r.dealer,
            "{what}"
        );
        self.reporter.observe(Observation::FaultProof { result });
    }

    /// Submits queued transactions while fewer than [`MAX_IN_FLIGHT`] are in flight.
    fn pump(&mut self, driver: &Driver) {
        // A refused chain gets no transaction from this node, queued or sent back.
        if self.refused() || self.txq.not_before.is_some_and(|t| Instant::now() < t) {
            return;
        }
        while self.txq.inflight.len() < MAX_IN_FLIGHT {
            let Some((seq, sub, retry_of)) = self.txq.next() else {
                return;
            };
            // It would land in the next block at the earliest.
            if sub.expires.is_some_and(|e| e <= self.height) {
                debug!(
                    kind = sub.kind,
                    "dropping a transaction whose phase is over"
                );
                continue;
            }
            let nonce = driver.nonce() + self.txq.inflight.len() as u64;
            let sender = Sender {
                chain_id: &self.chain_id,
                identity: self.keys.identity(),
                nonce,
            };
            let prepared = match self.chain.prepare(&sub.action, sender) {
                Ok(p) => p,
                // A refused post whose fault the chain has no proof for: nothing to send.
                Err(e) if matches!(sub.action, ChainAction::ProveFault(_)) => {
                    debug!(error = %e, "no fault proof");
                    continue;
                }
                Err(e) => {
                    warn!(error = %e, "transaction dropped");
                    continue;
                }
            };
            let hash = prepared.id;
            self.reporter.observe(Observation::Sent {
                kind: sub.kind,
                bytes: prepared.len,
            });
            debug!(kind = sub.kind, nonce, "submitting transaction");
            self.txq.inflight.push_back(Inflight {
                hash,
                sub,
                accepted_at: None,
                seq,
                held: true,
                retry_of,
            });
            // One submitter posts them in queue order: transactions that reach the mempool out
            // of nonce order are refused in the block and cost a round trip each.
            if self
                .submitter
                .try_send((hash, prepared.tx, retry_of))
                .is_err()
            {
                // Not handed over; those before it are.
                let last = self.txq.inflight.len() - 1;
                self.txq.inflight[last].held = false;
                self.txq.requeue_one(last, Duration::from_millis(300));
                return;
            }
        }
    }

    fn on_submitted(&mut self, hash: [u8; 32], outcome: SubmitOutcome) {
        let Some(pos) = self.txq.take_answer(hash) else {
            return;
        };
        if !matches!(outcome, SubmitOutcome::Busy) {
            self.txq.busy_streak = 0;
        }
        match outcome {
            SubmitOutcome::Accepted | SubmitOutcome::Duplicate => {
                self.txq.on_accepted(pos, self.height);
            }
            SubmitOutcome::Included => {
                let f = self.txq.inflight.remove(pos).expect("position found");
                if let ChainAction::ProveFault(r) = &f.sub.action {
                    self.proof_outcome(r, "proved", "proved a dealer's fault on chain");
                }
            }
            SubmitOutcome::Reverted {
                code,
                reason,
                mined,
            } => {
                let f = self.txq.inflight.remove(pos).expect("position found");
                if mined {
                    // Its fee is paid for nothing: counted, so an operator sees what the turns
                    // did not prevent.
                    self.reporter
                        .observe(Observation::Reverted { kind: f.sub.kind });
                }
                if let ChainAction::ProveFault(r) = &f.sub.action {
                    // `AlreadySlashed`: another member's proof came first, refused at
                    // estimation for free or, mined in the same block, reverted (the adapter
                    // names a mined revert's reason by replaying the call).
                    if code == "AlreadySlashed" {
                        self.proof_outcome(
                            r,
                            "settled",
                            if mined {
                                "fault already proven by another member's proof in the same \
                                 block; this proof was mined and reverted, its fee spent"
                            } else {
                                "fault already proven by another member; proof not needed"
                            },
                        );
                    } else {
                        warn!(kind = f.sub.kind, %code, %reason, mined, "fault proof refused by the contract");
                        self.reporter
                            .observe(Observation::FaultProof { result: "refused" });
                    }
                } else if matches!(
                    code.as_str(),
                    "NoViewChange" | "AlreadyPosted" | "AlreadyRegistered"
                ) {
                    // Another member's activation or a post already on chain: expected, and
                    // free when refused at estimation. A registration refused so is this
                    // node's own, not yet confirmed, or another node's on the same account
                    // (told apart a round of retries later).
                    if code == "AlreadyRegistered" && f.sub.kind == "register" {
                        self.account_registered_at = Some(self.height);
                    }
                    if mined {
                        info!(
                            kind = f.sub.kind,
                            %code,
                            "transaction mined and reverted: another member's came first in the \
                             same block; its fee is spent"
                        );
                    } else {
                        debug!(kind = f.sub.kind, %code, "transaction not needed");
                    }
                } else if code == "StakeBelowMinimum" {
                    // Held back before sending: the chain adapter warns with what to raise.
                    debug!(kind = f.sub.kind, %code, "registration held back");
                } else {
                    warn!(kind = f.sub.kind, %code, %reason, mined, "transaction refused by the contract");
                }
            }
            SubmitOutcome::Busy => self.txq.on_busy(pos),
            // Submitted again, it is looked up, not sent again: the adapter answers with its
            // outcome once mined. The adapter numbers its sends itself, so those after it in
            // flight stay (on the chain they wait behind its nonce).
            SubmitOutcome::Unconfirmed { handle } => self.txq.on_unconfirmed(pos, handle),
            SubmitOutcome::Rejected { code, reason } => {
                if code == "stale_nonce" || code == "bad_nonce" {
                    // Our view of the chain lags; retry once more blocks are processed.
                    self.txq.requeue_from(pos, Duration::from_millis(200));
                } else {
                    let f = self.txq.inflight.remove(pos).expect("position found");
                    if let ChainAction::Tx(TxBody::Register { stake, .. }) = &f.sub.action
                        && code == "insufficient_balance"
                    {
                        // Stake is locked from the account's balance: the configured stake
                        // must be funded (at genesis or by a transfer) before registering. Said
                        // once; the registration is tried again at every block meanwhile, and
                        // `/status` shows the refusal until it goes through.
                        if self.balance_refusal.is_none() {
                            error!(
                                stake,
                                %reason,
                                "cannot register: the configured stake is more than this \
                                 node's free balance on chain; fund the account or lower the \
                                 stake"
                            );
                        } else {
                            debug!(stake, %reason, "registration refused again for want of balance");
                        }
                        self.balance_refusal.get_or_insert(
                            crate::status::RegistrationRefusedStatus {
                                block: self.height,
                                stake: stake.to_string(),
                                needed_stake: None,
                                state: "insufficient_balance".into(),
                            },
                        );
                    } else {
                        warn!(kind = f.sub.kind, %code, %reason, "transaction refused");
                    }
                    self.txq.requeue_from(pos, Duration::ZERO);
                }
            }
        }
    }
}

/// Runs the driver's synchronous work on this thread. On a multi-threaded runtime the other
/// tasks (the network above all) move to another worker meanwhile; a current-thread runtime
/// (one I/O thread) has nowhere to move them, so they wait, without a thread hand-off.
fn in_place<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => f(),
        _ => tokio::task::block_in_place(f),
    }
}

#[allow(clippy::too_many_arguments)]
async fn deliver(
    net: NetworkHandle,
    session: [u8; 32],
    to: Vec<u8>,
    net_kind: u8,
    kind: &'static str,
    payload: Vec<u8>,
    mut cancel: watch::Receiver<bool>,
    reporter: Arc<Reporter>,
) {
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        let attempt = net.send(
            Target::Identity(to.clone()),
            session,
            net_kind,
            payload.clone(),
        );
        tokio::select! {
            _ = cancel.changed() => return,
            r = attempt => match r {
                Ok(_) => {
                    reporter.observe(Observation::Sent {
                        kind,
                        bytes: payload.len(),
                    });
                    return;
                }
                Err(e) => debug!(kind, error = %e, "delivery attempt failed; will retry"),
            },
        }
        if started.elapsed() > DELIVERY_PATIENCE {
            warn!(kind, "giving up delivering a message");
            return;
        }
        tokio::select! {
            _ = cancel.changed() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// What a running node exposes to its embedder.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Status server address.
    pub status_addr: SocketAddr,
    /// libp2p listen addresses (with `/p2p/<peer id>`).
    pub p2p_addrs: Vec<Multiaddr>,
}

/// What `/status` shows of a chain whose reads have failed since `since` with `first_error`
/// (at the start, [`wait_for_chain`], or while following).
fn unreachable_since(
    since: std::time::SystemTime,
    first_error: &str,
) -> crate::status::ChainUnreachableStatus {
    crate::status::ChainUnreachableStatus {
        since_unix_secs: since
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        error: first_error.to_string(),
    }
}

/// The chain's status once it answers. A chain that has not answered for
/// [`UNREACHABLE_AFTER`] is reported as the follower reports one that stops answering (a
/// warning, `chain_unreachable` on `/status`, `keyquorum_chain_unreachable`): a wrong chain URL
/// at the first start is the commonest case, and monitoring should see it.
async fn wait_for_chain<C: ChainClient>(chain: &C, reporter: &Reporter) -> ChainStatus {
    // When the reads started failing, by the monotonic and the wall clock, and the first error.
    let mut failing: Option<(Instant, std::time::SystemTime, String)> = None;
    let mut reported = false;
    loop {
        // Taken before the read: a read that fails only at its timeout counts from its start.
        let asked = (Instant::now(), std::time::SystemTime::now());
        match chain.status().await {
            Ok(status) => {
                if reported {
                    info!("the chain answers");
                    reporter.observe(Observation::ChainUnreachable(None));
                }
                return status;
            }
            Err(e) => {
                let (since, since_wall, first) = failing.get_or_insert_with(|| {
                    info!(error = %e, "waiting for the chain");
                    (asked.0, asked.1, e.to_string())
                });
                if !reported && since.elapsed() >= UNREACHABLE_AFTER {
                    reported = true;
                    warn!(
                        for_secs = since.elapsed().as_secs(),
                        error = %first,
                        "the chain has not answered since the start: check its address \
                         (--chain-url, or --rpc with --chain evm; retrying)"
                    );
                    reporter.observe(Observation::ChainUnreachable(Some(unreachable_since(
                        *since_wall,
                        first,
                    ))));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The files of an earlier run (`earlier`: what a run leaves beside its database) that exist
/// while the database `db` does not: the database was lost or moved, not a first start.
fn missing_database(db: &std::path::Path, earlier: &[PathBuf]) -> Option<Vec<PathBuf>> {
    if db.exists() {
        return None;
    }
    let found: Vec<_> = earlier.iter().filter(|f| f.exists()).cloned().collect();
    (!found.is_empty()).then_some(found)
}

/// Runs a node until `shutdown` resolves. `ready` receives the node's addresses once it
/// listens.
///
/// When it returns (stopped, or failed), the stores it opened are closed again: the tasks it
/// spawned that outlive a block (the chain follower, the submitter and the address-record
/// publisher) are stopped and joined, the status server (which holds the FROST nonce and
/// beacon stores through `POST /sign` and the beacon's paths) stops accepting, closes idle
/// connections and is given [`STATUS_STOP_GRACE`] for the requests under way, its handles
/// then let go of those two stores (a connection's task ends a moment after the server, on
/// another worker thread, and must not be what keeps them), and everything else it holds goes
/// with its frame. The same process can then open the data directory
/// again (redb refuses a second open of a file that is still held), as a restart or an
/// embedding test does. Two things can still hold a store for a moment after `run` returns: a
/// `POST /sign` still waiting for its quorum after the grace period, and a short blocking
/// answer to a peer (a FROST round, a batch of beacon rounds) that was already running; each
/// releases it when it ends.
pub async fn run<C: ChainClient>(
    config: NodeConfig,
    keys: NodeKeys,
    chain: C,
    shutdown: impl Future<Output = ()>,
    ready: Option<tokio::sync::oneshot::Sender<NodeInfo>>,
) -> Result<(), NodeError> {
    let mut spawned = Spawned::default();
    let outcome = run_node(config, keys, chain, shutdown, ready, &mut spawned).await;
    if let Some(server) = spawned.status_server {
        server.stop(STATUS_STOP_GRACE).await;
    }
    if let Some(served) = spawned.served {
        served.sign.release_stores();
        served.beacon.clear();
    }
    for task in &spawned.tasks {
        task.abort();
    }
    for task in spawned.tasks {
        // Joined so that the task's future, and every handle it holds, is dropped before
        // `run` returns; its outcome (cancelled) says nothing more.
        let _ = task.await;
    }
    outcome
}

/// How long [`run`], when it returns, lets the status server finish the requests under way.
pub const STATUS_STOP_GRACE: Duration = Duration::from_secs(2);

/// What [`run_node`] spawns that outlives it, for [`run`] to stop.
#[derive(Default)]
struct Spawned {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    status_server: Option<crate::status::StatusServer>,
    /// The stores the status server's handlers reach, let go of explicitly: a connection
    /// task of the server ends a moment after the server itself, on another worker thread.
    served: Option<StatusHandle>,
}

/// Opens the node's database, bound to this identity, with what the start's flags record
/// (`--restored-from-backup`, `--rejoin`), and the FROST nonce store.
fn open_store(
    config: &NodeConfig,
    keys: &Arc<NodeKeys>,
    sign: &SignService,
) -> Result<Store, NodeError> {
    // A restored database forgets it caught up before anything else can happen, waiting for
    // the chain included: a process stopped in that wait and started again without the flag
    // (it is for one start) must still find the mark.
    let earlier_run = [config.beacon_db_path(), config.frost_nonces_path()];
    if let Some(earlier) = missing_database(&config.db_path(), &earlier_run) {
        warn!(
            database = %config.db_path().display(),
            found = ?earlier,
            "this node's database is missing from a data directory an earlier run used; \
             starting a new one. If it was lost, so are this node's shares: it reads the chain \
             again, sits out a ceremony it may have dealt in, and holds no share until a view \
             change seats it again. If a backup exists, stop the node, restore the file and \
             start with --restored-from-backup"
        );
    }
    let store = Store::open(&config.db_path()).map_err(DriverError::from)?;
    store.bind_identity(keys).map_err(DriverError::from)?;
    if config.restored_from_backup {
        store
            .mark_restored_from_backup()
            .map_err(DriverError::from)?;
        warn!(
            "database restored from a backup: a ceremony started before this node has caught \
             up with the chain again is sat out unless its board shows this node did not deal"
        );
    }
    if config.rejoin {
        store.forget_deregistration().map_err(DriverError::from)?;
    }
    match crate::sign::frost::NonceDb::open(&config.frost_nonces_path(), keys.clone()) {
        Ok(db) if config.restored_from_backup => match db.forget_pending() {
            Ok(dropped) => {
                warn!(
                    dropped,
                    "FROST nonce store restored from a backup: nonces waiting for a round two dropped"
                );
                sign.set_nonce_db(Arc::new(db));
            }
            Err(e) => {
                error!(error = %e, "FROST nonce store restored from a backup could not be cleared: this node cannot sign Schnorr signatures")
            }
        },
        Ok(db) => sign.set_nonce_db(Arc::new(db)),
        Err(e) => {
            error!(error = %e, "FROST nonce store not opened: the node runs on without Schnorr signing (it answers no FROST round and coordinates none) until the file is restored or moved aside and the node restarted")
        }
    }
    Ok(store)
}

/// [`run`]'s body; what it spawns goes into `spawned`, for [`run`] to stop.
async fn run_node<C: ChainClient>(
    config: NodeConfig,
    keys: NodeKeys,
    chain: C,
    shutdown: impl Future<Output = ()>,
    ready: Option<tokio::sync::oneshot::Sender<NodeInfo>>,
    spawned: &mut Spawned,
) -> Result<(), NodeError> {
    tokio::pin!(shutdown);
    let tasks = &mut spawned.tasks;
    let keys = Arc::new(keys);
    let metrics = Arc::new(Metrics::new());
    // Idle until the chain says a view change runs (a chain before its first says nothing).
    let status = Arc::new(Mutex::new(Status {
        phase: "idle".into(),
        ..Status::default()
    }));
    let sign_token = config.sign.read_token().map_err(NodeError::Config)?;
    let sign = SignService::new(
        config.sign.clone(),
        sign_token,
        metrics.clone(),
        config.fault,
    );
    // An existing database first, so that what this start's flags record (a restored
    // backup) is durable before anything can fail, and a second process on the directory is
    // told it is in use. A new one after the listeners: a start that fails on a port in use
    // then leaves no database behind, which would bind the directory to this identity for a
    // node that never ran.
    let store = if config.db_path().exists() {
        Some(open_store(&config, &keys, &sign)?)
    } else {
        None
    };
    let beacon_http = if config.beacon.enabled {
        BeaconHttp::default()
    } else {
        BeaconHttp::disabled()
    };
    let served = StatusHandle {
        status: status.clone(),
        metrics: metrics.clone(),
        beacon: beacon_http.clone(),
        sign: sign.clone(),
    };
    let (status_addr, server) = crate::status::serve(config.status_listen, served.clone()).await?;
    spawned.status_server = Some(server);
    spawned.served = Some(served);

    let listen: Multiaddr = config
        .listen
        .parse()
        .map_err(|e| NodeError::Config(format!("listen: {e}")))?;
    let bootstrap: Vec<Multiaddr> = config
        .bootstrap
        .iter()
        .map(|b| b.parse())
        .collect::<Result<_, _>>()
        .map_err(|e| NodeError::Config(format!("bootstrap: {e}")))?;
    let (net, mut net_rx) = Network::new(net_config(&keys, listen, bootstrap))
        .map_err(|e| NodeError::Net(e.to_string()))?;
    sign.set_network(net.clone());
    let p2p_addrs: Vec<Multiaddr> =
        tokio::time::timeout(Duration::from_secs(10), net.listen_addrs())
            .await
            .map_err(|_| NodeError::Net("not listening after 10 s".into()))?
            .map_err(|e| NodeError::Net(e.to_string()))?
            .into_iter()
            .map(|a| a.with(Protocol::P2p(keys.peer_id())))
            .collect();
    let store = match store {
        Some(store) => store,
        None => open_store(&config, &keys, &sign)?,
    };
    info!(
        identity = %hex::encode(&keys.identity().public().as_bytes()[..8]),
        peer_id = %keys.peer_id(),
        p2p = ?p2p_addrs,
        status = %status_addr,
        fault = config.fault.name(),
        "node started"
    );
    if let Some(r) = ready {
        let _ = r.send(NodeInfo {
            status_addr,
            p2p_addrs: p2p_addrs.clone(),
        });
    }
    // Keep our signed address record in the DHT: retry until it is stored, then refresh.
    {
        let net = net.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let wait = match net.publish_address_record().await {
                    Ok(()) => Duration::from_secs(30),
                    Err(e) => {
                        debug!(error = %e, "address record not published yet");
                        Duration::from_millis(500)
                    }
                };
                tokio::time::sleep(wait).await;
            }
        }));
    }

    let reporter = Arc::new(Reporter::new(status.clone(), metrics.clone()));
    // A node told to stop while its chain does not answer stops.
    let reached = tokio::select! {
        status = wait_for_chain(&chain, &reporter) => status,
        () = &mut shutdown => {
            info!("stopped while waiting for the chain");
            net.shutdown().await;
            return Ok(());
        }
    };
    let ChainStatus {
        chain_id,
        genesis,
        origin,
        height,
        beacon: configured_beacon,
    } = reached;
    store
        .bind_chain(&genesis, height)
        .map_err(DriverError::from)?;
    if let Some(origin) = &origin {
        store.bind_chain_origin(origin).map_err(DriverError::from)?;
    }
    info!(%chain_id, beacon_scheme = %configured_beacon.scheme, beacon_period = configured_beacon.period_secs, "connected to the chain");
    let (mut driver, effects) = Driver::open(store, keys.clone(), config.fault)?;
    driver.set_configured_beacon(configured_beacon);
    reporter.apply(driver.drain_observations());

    let (follow_tx, mut follow_rx) = mpsc::channel::<Follow>(16);
    {
        let chain = chain.clone();
        let mut from = driver.cursor();
        let genesis = genesis.clone();
        tasks.push(tokio::spawn(async move {
            // Since when, and with which first error, every read has failed; whether that
            // was reported.
            let mut failing: Option<(Instant, SystemTime, String)> = None;
            let mut reported = false;
            // Since when the chain's head has been below blocks this node followed.
            let mut behind: Option<SystemTime> = None;
            // While the chain is refused: the last pause before it was tried again.
            let mut refusal: Option<Duration> = None;
            loop {
                // A refused chain is tried again only once it is the chain this node's data
                // is bound to (its genesis); its blocks are then checked as any others.
                if refusal.is_some()
                    && !matches!(chain.status().await, Ok(s) if s.genesis == genesis)
                {
                    tokio::time::sleep(refusal_pause(&mut refusal)).await;
                    continue;
                }
                let asked = (Instant::now(), SystemTime::now());
                match chain.blocks(from, 2000).await {
                    Ok(b)
                        if b.blocks.is_empty()
                            && b.height + 1 < from
                            && chain.head_never_falls() =>
                    {
                        // A chain never loses blocks it served: this one was reset or
                        // replaced (another chain: refused until this node's chain is back),
                        // or restored from an older copy (the same chain: said, and followed
                        // once it is back where this node was).
                        match lost_blocks(&chain, &genesis, b.height, from).await {
                            LostBlocks::Replaced(refused) => {
                                let begins = refusal.is_none();
                                if !refuse_following(&follow_tx, refused, begins).await {
                                    return;
                                }
                                tokio::time::sleep(refusal_pause(&mut refusal)).await;
                            }
                            LostBlocks::Behind(error) => {
                                if refusal.take().is_some() && !resume_following(&follow_tx).await {
                                    return;
                                }
                                let since = *behind.get_or_insert_with(|| {
                                    warn!(%error, "the chain is behind this node; waiting for it");
                                    asked.1
                                });
                                let status = crate::status::ChainUnreachableStatus {
                                    since_unix_secs: since
                                        .duration_since(std::time::UNIX_EPOCH)
                                        .map_or(0, |d| d.as_secs()),
                                    error,
                                };
                                if follow_tx
                                    .send(Follow::Unreachable(Some(status)))
                                    .await
                                    .is_err()
                                {
                                    return;
                                }
                            }
                        }
                    }
                    Ok(b) => {
                        // Blocks the adapter served after a refusal follow on from this
                        // node's.
                        if !b.blocks.is_empty()
                            && refusal.take().is_some()
                            && !resume_following(&follow_tx).await
                        {
                            return;
                        }
                        if behind.take().is_some() {
                            info!("the chain has caught up with this node");
                            if follow_tx.send(Follow::Unreachable(None)).await.is_err() {
                                return;
                            }
                        }
                        if let Some((since, ..)) = failing.take()
                            && std::mem::take(&mut reported)
                        {
                            info!(
                                after_secs = since.elapsed().as_secs(),
                                "the chain is reachable again"
                            );
                            if follow_tx.send(Follow::Unreachable(None)).await.is_err() {
                                return;
                            }
                        }
                        // The head first, so the driver knows which of these blocks are
                        // history it is catching up on.
                        if !b.blocks.is_empty()
                            && follow_tx.send(Follow::Head(b.height)).await.is_err()
                        {
                            return;
                        }
                        for block in b.blocks {
                            from = block.height + 1;
                            if follow_tx
                                .send(Follow::Block(Box::new(block)))
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                        if follow_tx.send(Follow::Head(b.height)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        if let Some(refused) = chain.chain_refused() {
                            let begins = refusal.is_none();
                            if !refuse_following(&follow_tx, refused, begins).await {
                                return;
                            }
                            // Lifted only after the pause, once the runtime holds the refusal:
                            // the adapter's own refusal keeps sends back until then.
                            tokio::time::sleep(refusal_pause(&mut refusal)).await;
                            if !chain.retry_refused().await {
                                error!(
                                    "the chain's refusal stands: a block ran and differs from \
                                     what this node's contract makes of it; restart the node \
                                     once the chain runs this node's contract version"
                                );
                                return;
                            }
                            continue;
                        }
                        debug!(error = %e, "chain poll failed");
                        let (since, since_wall, first) =
                            failing.get_or_insert_with(|| (asked.0, asked.1, e.to_string()));
                        if !reported && since.elapsed() >= UNREACHABLE_AFTER {
                            reported = true;
                            warn!(
                                for_secs = since.elapsed().as_secs(),
                                error = %first,
                                "the chain is unreachable: every read has failed; following \
                                 nothing until it answers (retrying)"
                            );
                            let status = unreachable_since(*since_wall, first);
                            if follow_tx
                                .send(Follow::Unreachable(Some(status)))
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }));
    }

    let (submit_tx, mut submit_rx) = mpsc::channel(64);
    let (submitter, mut to_submit) = mpsc::channel::<ToSubmit<C::Tx>>(64);
    {
        let chain = chain.clone();
        tasks.push(tokio::spawn(async move {
            // A failing submission (an unfunded account, say) is retried for as long as it
            // fails; the operator is told once per new reason, not once per retry.
            let mut failing: Option<String> = None;
            while let Some((hash, bytes, retry_of)) = to_submit.recv().await {
                let outcome = match chain.submit(bytes, retry_of).await {
                    Ok(o) => {
                        failing = None;
                        o
                    }
                    Err(e) => {
                        let reason = e.to_string();
                        // Amounts, fees and nonces in a chain's answer change from one retry
                        // to the next; the reason does not.
                        let kind: String = reason.chars().filter(|c| !c.is_ascii_digit()).collect();
                        if failing.as_deref() == Some(kind.as_str()) {
                            debug!(error = %reason, "submission failed");
                        } else {
                            warn!(error = %reason, "submission failed; retrying");
                            failing = Some(kind);
                        }
                        SubmitOutcome::Busy
                    }
                };
                if submit_tx.send((hash, outcome)).await.is_err() {
                    return;
                }
            }
        }));
    }
    let (pulled_tx, mut pulled_rx) = mpsc::channel::<Incoming>(256);
    let (sent_tx, mut sent_rx) = mpsc::channel::<SentPartial>(256);
    let (synced_tx, mut synced_rx) = mpsc::channel(4);
    let beacon_store = if config.beacon.enabled {
        let store = BeaconStore::open(&config.beacon_db_path())
            .map_err(|e| NodeError::Config(e.to_string()))?;
        Some(Arc::new(store))
    } else {
        info!("random beacon disabled (beacon.enabled = false)");
        None
    };
    let mut rt = Runtime {
        chain: chain.clone(),
        chain_id,
        keys: keys.clone(),
        net: net.clone(),
        reporter: reporter.clone(),
        sessions: HashMap::new(),
        txq: TxQueue::default(),
        height: driver.cursor().saturating_sub(1),
        submitter,
        pulled_tx,
        beacon: BeaconRuntime {
            store: beacon_store,
            status: status.clone(),
            http: beacon_http,
            metrics: metrics.clone(),
            corrupt_partials: config.fault == crate::config::Fault::BadBeacon,
            beacon: None,
            due: false,
            last_tick: None,
            sent: sent_tx,
            synced: synced_tx,
            sign: sign.clone(),
            sync_gate: SyncGate::new(config.beacon.sync_rate_per_sec, config.beacon.sync_burst),
            ended: Vec::new(),
            me: keys.identity().public().to_bytes().to_vec(),
            refused_earlier: BTreeMap::new(),
        },
        collector: Collector::default(),
        signing: None,
        held: Vec::new(),
        height_advanced_at: Instant::now(),
        follow_refused: false,
        held_while_refused: Vec::new(),
        balance_refusal: None,
        account_registered_at: None,
        account_refusal: None,
    };
    rt.apply(&driver, effects).await;
    let registration = TxBody::Register {
        pop: keys.identity().proof_of_possession(),
        encryption_key: keys.encryption().public_key(),
        network: NetworkIdentity {
            peer_id: Bytes(keys.peer_id().to_bytes()),
            addresses: p2p_addrs.iter().take(8).map(|a| a.to_string()).collect(),
        },
        stake: config.stake,
    };
    let mut registration_sent: Option<u64> = None;
    // The view at which this node last sent a claim of its matured unbonding: one claim per
    // view (a claim applied leaves nothing due; one refused is tried again at the next view).
    let mut claim_sent_at_view: Option<u64> = None;
    let my_identity = keys.identity().public().to_bytes();
    // Every node sets its verifiable-encryption key once registered, whichever variant the
    // chain runs now: the chain's configuration, not this node's, decides the variant, and a
    // node without the key is never selected for a complaint-variant committee.
    let verifiable_key = TxBody::SetVerifiableKey {
        key: keys.verifiable_public(),
    };
    let mut verifiable_key_sent: Option<u64> = None;
    let mut shown_eviction = None;
    let mut shown_deregistered = None;
    let mut shown_refusal = None;
    let mut shown_shortfall = None;
    let mut shown_check_failing = None;
    let mut shown_send_pending = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));

    loop {
        let round_start = rt.beacon.next_round_start();
        tokio::select! {
            _ = &mut shutdown => break,
            _ = async {
                match round_start {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => rt.beacon.tick(&net, false),
            Some(f) = follow_rx.recv() => match f {
                Follow::Block(b) => {
                    let out = in_place(|| driver.process_block(&b))?;
                    reporter.apply(driver.drain_observations());
                    if b.height > rt.height {
                        rt.height_advanced_at = Instant::now();
                    }
                    rt.height = b.height;
                    for own in &out.own_txs {
                        rt.txq.on_own_tx(own);
                    }
                    rt.txq.on_height(b.height);
                    rt.apply(&driver, out.effects).await;
                    rt.collect_for(&driver);
                    rt.release_held();
                }
                Follow::Unreachable(unreachable) => {
                    reporter.observe(Observation::ChainUnreachable(unreachable));
                }
                Follow::Refused(refused) => {
                    rt.follow_refused = true;
                    reporter.observe(Observation::ChainUnreachable(None));
                    reporter.observe(Observation::ChainRefused(Some(refused)));
                }
                Follow::Resumed => {
                    rt.follow_refused = false;
                    reporter.observe(Observation::ChainRefused(None));
                    // What this node would have sent meanwhile goes out now, and its queued
                    // transactions with it (the queue waits while the chain is refused).
                    let held = std::mem::take(&mut rt.held_while_refused);
                    rt.apply(&driver, held).await;
                }
                Follow::Head(h) => {
                    let effects = in_place(|| driver.set_head(h))?;
                    reporter.apply(driver.drain_observations());
                    rt.apply(&driver, effects).await;
                    // The adapter follows this node's place on the candidate list itself;
                    // `/status` and the metrics show what it last confirmed.
                    let eviction = rt.chain.eviction();
                    if eviction != shown_eviction {
                        shown_eviction = eviction.clone();
                        reporter.observe(Observation::Eviction(eviction));
                    }
                    let adapter_registers = rt.chain.registration_refused().is_some();
                    if driver.registered() {
                        rt.balance_refusal = None;
                        rt.account_registered_at = None;
                        rt.account_refusal = None;
                    }
                    let refused = rt
                        .chain
                        .registration_refused()
                        .or_else(|| rt.balance_refusal.clone())
                        .or_else(|| rt.account_refusal.clone());
                    if refused != shown_refusal {
                        shown_refusal = refused.clone();
                        reporter.observe(Observation::RegistrationRefused(refused));
                    }
                    let shortfall = rt.chain.stake_below_minimum();
                    if shortfall != shown_shortfall {
                        shown_shortfall = shortfall.clone();
                        reporter.observe(Observation::StakeBelowMinimum(shortfall));
                    }
                    let failing = rt.chain.candidacy_check_failing();
                    if failing != shown_check_failing {
                        shown_check_failing = failing.clone();
                        reporter.observe(Observation::CandidacyCheckFailing(failing));
                    }
                    for kind in rt.chain.take_reverted() {
                        reporter.observe(Observation::Reverted { kind });
                    }
                    let send_pending = rt.chain.send_pending();
                    if send_pending != shown_send_pending {
                        shown_send_pending = send_pending.clone();
                        reporter.observe(Observation::SendPending(send_pending));
                    }
                    // Caught up with the chain: register if the chain does not know us (again
                    // after a while if it still does not), unless the adapter holds a
                    // registration the chain refused for a full list: it sends that one as
                    // soon as the chain would take it.
                    // Not after its operator deregistered it, which it would undo.
                    let deregistered_at = driver.state().deregistered_at;
                    if driver.cursor() > h
                        && !driver.registered()
                        && let Some(at) = deregistered_at
                        && shown_deregistered != Some(at)
                    {
                        shown_deregistered = Some(at);
                        warn!(
                            height = at,
                            "this node was deregistered (a Deregister signed with its key): \
                             it does not register again by itself; start it once with \
                             --rejoin to register again (a --rejoin given while the \
                             deregistration was only scheduled does not cancel it: \
                             `keyquorum account cancel-leave` does, before it takes effect)"
                        );
                    }
                    // One registration at a time: one still queued or in flight (sent again
                    // while the balance cannot pay it, say) is not joined by another, which
                    // the chain would refuse once the first is in.
                    if driver.registered() {
                        rt.txq.drop_unsent("register");
                    }
                    if driver.cursor() > h
                        && !driver.registered()
                        && deregistered_at.is_none()
                        && !adapter_registers
                        && !rt.txq.holds("register")
                        && registration_sent.is_none_or(|at| {
                            // Refused for want of balance: again at every block, so that it
                            // goes through as soon as the account is funded.
                            rt.height > at + 30 || (rt.balance_refusal.is_some() && rt.height > at)
                        })
                    {
                        if let Some(at) = rt.account_registered_at
                            && rt.account_refusal.is_none()
                        {
                            // Refused as already registered a round of retries ago, and this
                            // node's own registration would have been confirmed since.
                            error!(
                                since = at,
                                "cannot register: this node's chain account is already \
                                 registered with another identity key (does another node use \
                                 the same chain key?); give each node its own account \
                                 (chain_key_file)"
                            );
                            rt.account_refusal = Some(crate::status::RegistrationRefusedStatus {
                                block: at,
                                stake: config.stake.to_string(),
                                needed_stake: None,
                                state: "account_taken".into(),
                            });
                        }
                        if rt.balance_refusal.is_some() || rt.account_refusal.is_some() {
                            debug!(stake = config.stake, "registering again");
                        } else {
                            info!(stake = config.stake, "registering");
                        }
                        registration_sent = Some(rt.height);
                        rt.txq.queue.push_back(Submission {
                            action: ChainAction::Tx(registration.clone()),
                            kind: "register",
                            expires: None,
                        });
                    }
                    // Unbonded stake whose views have passed goes back to the balance by
                    // itself, so an operator's `unbond` needs no `claim` after it.
                    // A claim still on its way when the next view activates would be queued
                    // again, and refused in its block with nothing left to claim.
                    if driver.cursor() > h
                        && let Some(due) = rt.chain.matured_unbonding(&my_identity)
                        && claim_sent_at_view != Some(due.view)
                        && !rt.txq.holds("claim_unbonded")
                    {
                        info!(
                            amount = due.amount,
                            view = due.view,
                            "claiming unbonded stake back to the balance"
                        );
                        claim_sent_at_view = Some(due.view);
                        rt.txq.queue.push_back(Submission {
                            action: ChainAction::Tx(TxBody::ClaimUnbonded),
                            kind: "claim_unbonded",
                            expires: None,
                        });
                    }
                    // Where the chain has no such call, it is never sent (it was, and refused
                    // with a warning, every 30 blocks).
                    if driver.cursor() > h
                        && rt.chain.takes_verifiable_keys()
                        && driver.registered()
                        && !driver.verifiable_key_set()
                        && verifiable_key_sent.is_none_or(|at| rt.height > at + 30)
                    {
                        verifiable_key_sent = Some(rt.height);
                        rt.txq.queue.push_back(Submission {
                            action: ChainAction::Tx(verifiable_key.clone()),
                            kind: "set_verifiable_key",
                            expires: None,
                        });
                    }
                }
            },
            Some(ev) = net_rx.recv() => {
                let mut batch = Vec::new();
                let mut replies = Vec::new();
                let mut next = Some(ev);
                while let Some(ev) = next {
                    match ev {
                        NetEvent::Request { from, from_identity, session, kind, payload, reply } => {
                            match kind {
                                KIND_DIRECT => {
                                    let label = match payload.first() {
                                        // Ack-or-reveal and complaint-variant deals.
                                        Some(16) | Some(0x50) => "deal",
                                        Some(17) => "ack",
                                        _ => "direct",
                                    };
                                    reporter.observe(Observation::Received {
                                        kind: label,
                                        bytes: payload.len(),
                                    });
                                    batch.push(Incoming { session, from: from_identity, payload });
                                    replies.push(Some(reply));
                                }
                                KIND_PULL => {
                                    reporter.observe(Observation::Received {
                                        kind: "pull",
                                        bytes: payload.len(),
                                    });
                                    let deal = from_identity
                                        .as_deref()
                                        .and_then(|id| driver.deal_for(&session, id))
                                        .unwrap_or_default();
                                    if !deal.is_empty() {
                                        reporter.observe(Observation::Sent {
                                            kind: "deal",
                                            bytes: deal.len(),
                                        });
                                    }
                                    let _ = reply.send(deal);
                                }
                                BEACON_PARTIAL_KIND => {
                                    reporter.observe(Observation::Received {
                                        kind: "beacon_partial",
                                        bytes: payload.len(),
                                    });
                                    rt.beacon.on_partial(&net, &session, from_identity.as_deref(), &payload);
                                    // After the partial is taken: the round it just completed,
                                    // or stored earlier, if it is the last one here (else
                                    // empty); with no beacon running, that it was not taken.
                                    let answer = rt.beacon.beacon.as_ref()
                                        .map(|b| b.answer(&session, &payload))
                                        .unwrap_or_else(|| NOT_RUNNING.to_vec());
                                    let _ = reply.send(answer);
                                }
                                BEACON_SYNC_KIND => {
                                    reporter.observe(Observation::Received {
                                        kind: "beacon_sync",
                                        bytes: payload.len(),
                                    });
                                    // Anyone may ask: each asker has its share of this node.
                                    let asker = from_identity
                                        .as_deref()
                                        .map_or_else(|| from.to_string(), hex::encode);
                                    match rt.beacon.sync_gate.admit(&asker, now_ms()) {
                                        Err(refusal) => {
                                            debug!(%from, "request for beacon rounds rate limited");
                                            metrics.beacon_sync_answer("rate_limited");
                                            let _ = reply.send(refusal);
                                        }
                                        Ok(()) => {
                                            metrics.beacon_sync_answer("served");
                                            // Up to a batch of rounds read from redb: off the loop.
                                            let store = rt.beacon.store.clone();
                                            tokio::task::spawn_blocking(move || {
                                                let answer = crate::beacon::sync::answer(store.as_deref(), &payload);
                                                let _ = reply.send(answer);
                                            });
                                        }
                                    }
                                }
                                KIND_MAGIC_PARTIAL => {
                                    reporter.observe(Observation::Received {
                                        kind: "magic_partial",
                                        bytes: payload.len(),
                                    });
                                    if rt.on_partial(from_identity.as_deref(), &payload) {
                                        let _ = reply.send(Vec::new());
                                    }
                                }
                                keyquorum_net::FROST_KIND => {
                                    reporter.observe(Observation::Received {
                                        kind: "frost",
                                        bytes: payload.len(),
                                    });
                                    if !sign.spawn_frost_answer(session, from_identity, payload, reply) {
                                        debug!("too many signing requests being answered; a FROST round is not");
                                    }
                                }
                                SIGN_REQUEST_KIND => {
                                    reporter.observe(Observation::Received {
                                        kind: "sign_request",
                                        bytes: payload.len(),
                                    });
                                    match sign.answer_slot() {
                                        Some(slot) => {
                                            // Hashing to G2 and a scalar multiplication: off the loop.
                                            let sign = sign.clone();
                                            tokio::task::spawn_blocking(move || {
                                                let answer = sign.answer(&session, from_identity.as_deref(), &payload);
                                                drop(slot);
                                                let _ = reply.send(answer);
                                            });
                                        }
                                        None => {
                                            debug!("too many signing requests being answered; one is not");
                                            metrics.sign.outcome_member("busy");
                                            drop(reply);
                                        }
                                    }
                                }
                                _ => drop(reply),
                            }
                        }
                        NetEvent::Rejected { reason, kind: SIGN_REQUEST_KIND, .. } => {
                            debug!(?reason, "signing request refused by the session allow-list");
                            metrics.sign.outcome_member("refused");
                        }
                        NetEvent::Rejected { reason, kind: BEACON_PARTIAL_KIND, .. } => {
                            debug!(?reason, "beacon partial refused by the session allow-list");
                            metrics.beacon_partial("unknown", "refused");
                        }
                        NetEvent::Rejected { reason, .. } => {
                            debug!(?reason, "request refused by the session allow-list");
                            reporter.observe(Observation::FaultSeen {
                                fault: "rejected_request".into(),
                            });
                        }
                        _ => {}
                    }
                    next = if batch.len() < 256 { net_rx.try_recv().ok() } else { None };
                }
                while let Ok(inc) = pulled_rx.try_recv() {
                    batch.push(inc);
                    replies.push(None);
                }
                let (verdicts, effects) = in_place(|| driver.process_messages(batch))?;
                reporter.apply(driver.drain_observations());
                for (v, r) in verdicts.into_iter().zip(replies) {
                    if let Some(r) = r && v != Verdict::Later {
                        let _ = r.send(Vec::new());
                    }
                }
                rt.apply(&driver, effects).await;
            }
            Some(inc) = pulled_rx.recv() => {
                let (_, effects) = in_place(|| driver.process_messages(vec![inc]))?;
                reporter.apply(driver.drain_observations());
                rt.apply(&driver, effects).await;
            }
            Some((hash, outcome)) = submit_rx.recv() => rt.on_submitted(hash, outcome),
            _ = tick.tick() => {
                rt.beacon.tick(&net, false);
                // Turns that run on the clock: the minimum turn on fast blocks, and the
                // idle turns where the chain confirms no block ([`ChainClient::proof_due`],
                // [`ChainClient::activation_due`]).
                if !rt.held.is_empty() {
                    rt.release_held();
                }
            }
            Some(sent) = sent_rx.recv() => rt.beacon.on_sent(&net, sent),
            Some((ask, answer)) = synced_rx.recv() => rt.beacon.on_synced(&net, ask, answer),
        }
        if rt.beacon.due {
            rt.beacon.start(&driver, &net).await;
        }
        rt.pump(&driver);
    }
    info!("node stopping");
    // Empty blocks since the last write are not on disk yet; without this a clean restart
    // would process them again (harmless, only slower).
    if let Err(e) = driver.checkpoint() {
        warn!(error = %e, "state not written at stop");
    }
    net.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_database_missing_beside_an_earlier_runs_files_is_told_apart_from_a_first_start() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("node.redb");
        let earlier = [
            dir.path().join("beacon.redb"),
            dir.path().join("nonces.redb"),
        ];
        assert_eq!(
            super::missing_database(&db, &earlier),
            None,
            "a first start"
        );
        std::fs::write(&earlier[1], b"").unwrap();
        assert_eq!(
            super::missing_database(&db, &earlier),
            Some(vec![earlier[1].clone()])
        );
        std::fs::write(&db, b"").unwrap();
        assert_eq!(
            super::missing_database(&db, &earlier),
            None,
            "the database is there"
        );
    }

    use super::*;

    fn inflight(accepted_at: Option<u64>) -> Inflight {
        Inflight {
            seq: 0,
            held: accepted_at.is_none(),
            hash: [1; 32],
            sub: Submission {
                action: ChainAction::Tx(TxBody::ClaimUnbonded),
                kind: "claim_unbonded",
                expires: None,
            },
            accepted_at,
            retry_of: None,
        }
    }

    /// Hands the queue's next submission to the submitter under `hash`, as `pump` does (with
    /// its handle, if it is a retry): its seq, kind and handle.
    fn hand_over_next(q: &mut TxQueue, hash: u8) -> (u64, &'static str, Option<[u8; 32]>) {
        let (seq, sub, retry_of) = q.next().unwrap();
        let kind = sub.kind;
        q.inflight.push_back(Inflight {
            hash: [hash; 32],
            seq,
            sub,
            accepted_at: None,
            held: true,
            retry_of,
        });
        (seq, kind, retry_of)
    }

    /// Busy answers in a row back off, doubling up to [`BUSY_RETRY_MAX`]; another answer ends
    /// the streak. Before, every busy answer retried after 300 ms, and a send that kept failing
    /// (an unfunded account's) went out three times a second for good.
    #[test]
    fn busy_answers_in_a_row_back_off_up_to_a_bound() {
        let mut q = TxQueue::default();
        q.queue.push_back(inflight(None).sub);
        // The wait is `not_before` less the time `on_busy` read, which lies between the
        // instants taken around the call: exact bounds, however slow the machine.
        let waits_within = |q: &TxQueue, before: Instant, after: Instant, wait_ms: u64| {
            let not_before = q.not_before.unwrap();
            let wait = Duration::from_millis(wait_ms);
            not_before.saturating_duration_since(before) >= wait
                && not_before.saturating_duration_since(after) <= wait
        };
        for wait_ms in [300, 600, 1200, 2400, 4800, 5000, 5000] {
            q.not_before = None;
            hand_over_next(&mut q, 1);
            let pos = q.take_answer([1; 32]).unwrap();
            let before = Instant::now();
            q.on_busy(pos);
            let after = Instant::now();
            assert!(
                waits_within(&q, before, after, wait_ms),
                "expected a wait of {wait_ms} ms, streak {}",
                q.busy_streak
            );
        }
        // Busy answers for the other transactions in flight come within the same wait: a
        // round counts once, however many were in flight.
        q.busy_streak = 0;
        q.not_before = None;
        q.queue.push_back(inflight(None).sub);
        q.queue.push_back(inflight(None).sub);
        for hash in [2u8, 3, 4] {
            hand_over_next(&mut q, hash);
        }
        for hash in [4u8, 3, 2] {
            let pos = q.take_answer([hash; 32]).unwrap();
            q.on_busy(pos);
        }
        assert_eq!(q.busy_streak, 1);
        // Any other answer ends the streak (`Runtime::on_submitted`).
        q.busy_streak = 0;
        q.not_before = None;
        hand_over_next(&mut q, 1);
        let pos = q.take_answer([1; 32]).unwrap();
        let before = Instant::now();
        q.on_busy(pos);
        let after = Instant::now();
        assert!(waits_within(
            &q,
            before,
            after,
            BUSY_RETRY.as_millis() as u64
        ));
    }

    /// A submission no longer needed (a registration once registered) is dropped from the
    /// queue and from the submissions back from flight, not from those in flight.
    #[test]
    fn unsent_submissions_of_a_kind_are_dropped() {
        let mut q = TxQueue::default();
        for _ in 0..3 {
            q.queue.push_back(inflight(None).sub);
        }
        hand_over_next(&mut q, 1);
        hand_over_next(&mut q, 2);
        let pos = q.take_answer([2; 32]).unwrap();
        q.on_busy(pos);
        assert_eq!(
            (q.queue.len(), q.requeued.len(), q.inflight.len()),
            (1, 1, 1)
        );
        q.drop_unsent("claim_unbonded");
        assert_eq!(
            (q.queue.len(), q.requeued.len(), q.inflight.len()),
            (0, 0, 1)
        );
        assert!(q.holds("claim_unbonded"));
    }

    /// A submission counts as held from the queue until its block: queued, in flight and
    /// requeued alike.
    #[test]
    fn a_submission_is_held_until_it_leaves_the_queue_for_good() {
        let mut q = TxQueue::default();
        assert!(!q.holds("claim_unbonded"));
        q.queue.push_back(inflight(None).sub);
        assert!(q.holds("claim_unbonded") && !q.holds("register"));
        hand_over_next(&mut q, 1);
        assert!(q.queue.is_empty() && q.holds("claim_unbonded"));
        let pos = q.take_answer([1; 32]).unwrap();
        q.on_unconfirmed(pos, [9; 32]);
        assert!(q.inflight.is_empty() && q.holds("claim_unbonded"));
        q.requeued.clear();
        assert!(!q.holds("claim_unbonded"));
    }

    /// A submission whose adapter has not answered (an EVM send waiting for its receipt) is
    /// not submitted again however many blocks pass: the copy would go out with the next
    /// nonce. One the chain took is, once the patience runs out.
    #[test]
    fn only_a_taken_submission_is_submitted_again_when_not_included_in_time() {
        let mut q = TxQueue::default();
        q.inflight.push_back(inflight(None));
        q.on_height(100 + INCLUSION_PATIENCE + 1);
        assert_eq!((q.inflight.len(), q.requeued.len()), (1, 0));

        q.inflight[0].accepted_at = Some(100);
        q.inflight[0].held = false;
        q.on_height(100 + INCLUSION_PATIENCE);
        assert_eq!((q.inflight.len(), q.requeued.len()), (1, 0));
        q.on_height(100 + INCLUSION_PATIENCE + 1);
        assert_eq!((q.inflight.len(), q.requeued.len()), (0, 1));
    }

    /// A send not yet seen mined goes back to the queue alone: the one after it, already
    /// handed to the adapter, is not handed over a second time.
    #[test]
    fn an_unconfirmed_submission_is_requeued_alone() {
        let mut q = TxQueue::default();
        q.inflight.push_back(inflight(None));
        let mut next = inflight(None);
        next.hash = [2; 32];
        q.inflight.push_back(next);
        let pos = q.take_answer([1; 32]).unwrap();
        q.on_unconfirmed(pos, [9; 32]);
        assert_eq!(
            q.inflight.iter().map(|f| f.hash).collect::<Vec<_>>(),
            [[2; 32]]
        );
        assert_eq!(q.requeued.len(), 1);
        assert!(q.not_before.is_some_and(|t| t > Instant::now()));
    }

    /// A submission answered `Unconfirmed` goes again as the retry of the send it names, also
    /// after its retry was answered busy; a new submission of the same action is no retry
    /// (the adapter sends it).
    #[test]
    fn an_unconfirmed_submission_goes_again_as_its_sends_retry() {
        let mut q = TxQueue::default();
        q.queue.push_back(inflight(None).sub);
        let (_, _, retry_of) = hand_over_next(&mut q, 1);
        assert_eq!(retry_of, None);
        let pos = q.take_answer([1; 32]).unwrap();
        q.on_unconfirmed(pos, [9; 32]);
        let (seq, _, retry_of) = hand_over_next(&mut q, 1);
        assert_eq!((seq, retry_of), (0, Some([9; 32])));

        let pos = q.take_answer([1; 32]).unwrap();
        q.on_busy(pos);
        let (seq, _, retry_of) = q.next().unwrap();
        assert_eq!((seq, retry_of), (0, Some([9; 32])));

        q.queue.push_back(inflight(None).sub);
        let (seq, _, retry_of) = q.next().unwrap();
        assert_eq!((seq, retry_of), (1, None));
    }

    /// A busy answer takes back the transaction it answers, not those handed to the submitter
    /// after it: the submitter still holds them, and requeued at once they would be submitted
    /// a second time. Each goes back with its own answer; they go again once none after them
    /// is in flight, in their first order, each once.
    #[test]
    fn a_busy_answer_requeues_only_what_the_submitter_no_longer_holds() {
        let mut q = TxQueue::default();
        for i in 0..3u8 {
            q.queue.push_back(inflight(None).sub);
            let (seq, kind, _) = hand_over_next(&mut q, i);
            assert_eq!((seq, kind), (u64::from(i), "claim_unbonded"));
        }
        let hashes = |q: &TxQueue| q.inflight.iter().map(|f| f.hash[0]).collect::<Vec<_>>();
        // The submitter answers the first one busy, as the runtime takes the answer.
        let pos = q.take_answer([0; 32]).unwrap();
        q.on_busy(pos);
        assert_eq!(hashes(&q), [1, 2]);
        assert_eq!((q.requeued.len(), q.queue.len()), (1, 0));
        // A second answer for it settles nothing.
        assert_eq!(q.take_answer([0; 32]), None);
        // Not handed over again before the two after it, which the submitter holds.
        assert!(q.next().is_none());
        // Then it answers them busy too, the last first.
        for hash in [2u8, 1] {
            let pos = q.take_answer([hash; 32]).unwrap();
            q.on_busy(pos);
        }
        assert!(q.inflight.is_empty());
        let again: Vec<u64> = std::iter::from_fn(|| q.next().map(|(seq, _, _)| seq)).collect();
        assert_eq!(again, [0, 1, 2]);
    }

    /// On a chain the runtime numbers, a transaction the chain took after an earlier one went
    /// back busy waits behind a free nonce: it goes back too, and both go again in order at
    /// once, not after the inclusion patience.
    #[test]
    fn a_transaction_taken_behind_a_busy_one_goes_back_with_it() {
        let mut q = TxQueue::default();
        for i in 0..2u8 {
            q.queue.push_back(inflight(None).sub);
            hand_over_next(&mut q, i);
        }
        let pos = q.take_answer([0; 32]).unwrap();
        q.on_busy(pos);
        let pos = q.take_answer([1; 32]).unwrap();
        q.on_accepted(pos, 7);
        assert!(q.inflight.is_empty());
        let again: Vec<u64> = std::iter::from_fn(|| q.next().map(|(seq, _, _)| seq)).collect();
        assert_eq!(again, [0, 1]);

        // With nothing before it gone back, it waits for its block as before.
        q.queue.push_back(inflight(None).sub);
        hand_over_next(&mut q, 9);
        let pos = q.take_answer([9; 32]).unwrap();
        q.on_accepted(pos, 8);
        assert_eq!(q.inflight[0].accepted_at, Some(8));
    }
}
