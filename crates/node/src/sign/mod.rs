//! Threshold signatures on demand: `POST /sign` on every committee member of the active view
//! ([`http`]), signed by `t` members' shares of the view's key.
//!
//! # What happens
//! - The member asked over HTTP checks the caller (bearer token, per-caller rate limit
//!   ([`limit`]), a bounded number of requests pending at once) and the request
//!   (`keyquorum_beacon::sign::SignRequest`), then coordinates: it signs with its own share and
//!   sends the request, for the active view, to every other committee member at once over
//!   `keyquorum-net` (kind [`keyquorum_net::SIGN_REQUEST_KIND`] in the view's beacon session,
//!   whose allow-list is the committee, so only members ask and only members answer).
//! - Each member signs only a well-formed request for its own active view
//!   (`keyquorum_beacon::sign::answer_partial`) and answers at once with its partial, or a
//!   refusal, keeping nothing of a BLS request: a request the coordinator gave up on leaves no
//!   state at the members, so there is nothing to cancel. (A Schnorr request is two rounds
//!   with stored nonces between them, released or expired afterwards, and up to
//!   [`frost::MAX_ATTEMPTS`] attempts: see [`frost`].) A member answers at most
//!   [`MAX_ANSWERING`] requests at once; it leaves more unanswered (the coordinator counts it
//!   unreachable for them), so a member flooding the others with requests cannot queue
//!   unbounded work on them.
//! - The coordinator's `Collector` verifies every partial against the sender's public key
//!   share, takes one per member, names a member whose partial fails (log and
//!   `keyquorum_sign_partials_total{result="invalid"}`) and never asks it again for that
//!   request; at `t` valid partials it combines and verifies the signature under the group
//!   key. Each member is asked once for a BLS request: no blind retries. If `t` valid partials
//!   are not in by the timeout, the answer names how many of `t` arrived.
//!
//! A BLS signature is in the IETF proof-of-possession ciphersuite with keys in G1
//! (`BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`) on
//! `keyquorum_beacon::sign::signing_bytes(domain, message)`; a Schnorr one (FROST or BIP-340,
//! on the view's secp256k1 signing key) is made as [`frost`] describes.
//!
//! # Metrics
//! `keyquorum_sign_requests_total{result}` (`signed`, `rejected`),
//! `keyquorum_sign_rejections_total{reason}` (the error codes of [`http`]),
//! `keyquorum_sign_partials_total{member, result}` (partials this node collected as
//! coordinator: `valid`, `invalid`, `refused`, `unreachable`; `other_view` when the member is
//! at another view, which is no fault: a view change is under way or this node is behind;
//! `coordinator_full` when this node has its share of the member's nonce store waiting),
//! `keyquorum_sign_answers_total{result}` (requests this node answered as a member: `signed`,
//! `other_view`, `no_share`, `malformed`; `refused` when the network refused a non-member,
//! `busy` when [`MAX_ANSWERING`] requests were being answered; for FROST rounds ([`frost`])
//! `frost_answered`, `frost_released` (a coordinator released nonces it did not use),
//! `frost_busy`, or `frost_` and the refusal),
//! `keyquorum_sign_frost_attempts_total{result}` (FROST attempts this node coordinated:
//! `signed`, `culprits`, `no_commitments`, `failed`, `other_view` for a round two short only
//! of signers that moved to another view),
//! `keyquorum_sign_frost_culprits_total{member, fault}` (FROST signers an attempt named and left
//! out: `invalid_share`, `unresponsive`, `refused`, `malformed`),
//! `keyquorum_sign_combine_seconds` (the collector call that combined: combine and verify) and
//! `keyquorum_sign_request_seconds` (from the request to the signature).

pub mod frost;
#[cfg(test)]
mod frost_tests;
pub mod http;
pub mod limit;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use group::prime::PrimeCurveAffine;
use keyquorum_beacon::sign::{
    Collector, NoQuorum, PartialAnswer, PartialRejected, PartialRequest, Progress, SignGroup,
    SignRequest, SignerShare, answer_partial,
};
use keyquorum_crypto::secret::Secret;
use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_net::{NetworkHandle, SessionId};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};
use zeroize::Zeroizing;

use crate::config::Fault;
use crate::metrics::Metrics;
use crate::store::BeaconViewRecord;
use limit::RateLimiter;

type Scalar = blstrs::Scalar;

/// Signing requests a member answers at once (each a hash to G2 and a scalar multiplication
/// on a blocking thread); more are left unanswered.
pub const MAX_ANSWERING: usize = 64;

/// The `[sign]` section of the node's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignConfig {
    /// File holding the bearer token callers must present (surrounding whitespace ignored).
    /// Without it, `POST /sign` is off and answers 404 `sign_disabled`.
    pub token_file: Option<PathBuf>,
    /// Requests a second each caller (remote IP address) may make, sustained.
    pub rate_per_sec: f64,
    /// Requests a caller may make at once before the rate applies.
    pub burst: u32,
    /// Requests signing at once on this node; more are refused with 503 `queue_full`.
    pub max_pending: usize,
    /// How long to wait for `t` valid partials, in milliseconds (for a Schnorr scheme: for
    /// each round of each attempt).
    pub timeout_ms: u64,
}

impl Default for SignConfig {
    fn default() -> Self {
        SignConfig {
            token_file: None,
            rate_per_sec: 5.0,
            burst: 10,
            max_pending: 16,
            timeout_ms: 5000,
        }
    }
}

impl SignConfig {
    /// Why the section is unusable, if it is.
    pub fn problem(&self) -> Option<String> {
        if !(self.rate_per_sec.is_finite() && self.rate_per_sec > 0.0) {
            return Some("sign.rate_per_sec must be a positive number".into());
        }
        if self.burst == 0 {
            return Some("sign.burst must be at least 1".into());
        }
        if self.max_pending == 0 {
            return Some("sign.max_pending must be at least 1".into());
        }
        if self.timeout_ms == 0 {
            return Some("sign.timeout_ms must be positive".into());
        }
        None
    }

    /// Reads the token file, if one is configured.
    pub fn read_token(&self) -> Result<Option<Token>, String> {
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| format!("sign token file {}: {e}", path.display()))?,
        );
        let token = text.trim();
        if token.is_empty() {
            return Err(format!("sign token file {} is empty", path.display()));
        }
        Ok(Some(Token(Zeroizing::new(token.as_bytes().to_vec()))))
    }
}

/// The bearer token: wiped on drop, redacted in `Debug`, compared in constant time.
pub struct Token(Zeroizing<Vec<u8>>);

impl Token {
    /// A token from its bytes.
    pub fn new(bytes: &[u8]) -> Self {
        Token(Zeroizing::new(bytes.to_vec()))
    }

    /// Whether `presented` is the token, in time independent of where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        if presented.len() != self.0.len() {
            return false;
        }
        presented
            .iter()
            .zip(self.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The active view as the signing service sees it.
#[derive(Debug)]
pub struct SignView {
    view: u64,
    session: SessionId,
    group: SignGroup,
    identities: Vec<Vec<u8>>,
    own: Option<usize>,
    share: Option<SignerShare>,
}

impl SignView {
    /// The view `record` describes, with this node's `(index, share)` if it holds one.
    pub fn new(
        record: &BeaconViewRecord,
        share: Option<(u64, Secret<Scalar>)>,
    ) -> Result<Self, String> {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&record.magic_block_hash, &mut hash)
            .map_err(|_| "magic block hash".to_string())?;
        let info = keyquorum_beacon::ChainInfo::from_json(record.chain_info.as_bytes())
            .map_err(|e| e.to_string())?;
        let group_key =
            tbls::decode_public_key::<MinPk>(info.public_key()).map_err(|e| e.to_string())?;
        let mut members = Vec::with_capacity(record.members.len());
        let mut identities = Vec::with_capacity(record.members.len());
        for m in &record.members {
            let bytes = hex::decode(&m.public_share).map_err(|_| "public share".to_string())?;
            let pk = tbls::decode_public_key::<MinPk>(&bytes).map_err(|e| e.to_string())?;
            members.push((Scalar::from(m.index), pk));
            identities.push(hex::decode(&m.identity).map_err(|_| "identity".to_string())?);
        }
        let group = SignGroup::new(record.threshold as usize, members, group_key)
            .map_err(|e| e.to_string())?;
        let own = match (record.own_index, &share) {
            (Some(index), Some((held, _))) if index == *held => {
                record.members.iter().position(|m| m.index == index)
            }
            _ => None,
        };
        let share = own.and(share).map(|(index, share)| SignerShare {
            index: Scalar::from(index),
            share,
        });
        Ok(SignView {
            view: record.view,
            session: keyquorum_net::beacon_session(&hash),
            group,
            identities,
            own,
            share,
        })
    }

    /// The view.
    pub fn view(&self) -> u64 {
        self.view
    }

    /// The session signing requests of this view travel in (the beacon's).
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The committee's identities, in order.
    pub fn committee(&self) -> &[Vec<u8>] {
        &self.identities
    }
}

/// A signature, as `POST /sign` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    /// The compressed G2 signature (96 bytes, hex).
    pub signature: String,
    /// The view's group key (compressed G1, 48 bytes, hex).
    pub public_key: String,
    /// The view whose key signed.
    pub view: u64,
    /// The domain.
    pub domain: String,
    /// The message (hex).
    pub message: String,
}

/// Why no signature was made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// No view is active on this node.
    #[error("no active view on this node")]
    NoActiveView,
    /// This node holds no share of the active view.
    #[error("this node is not a member of view {view}'s committee")]
    NotAMember {
        /// The active view.
        view: u64,
    },
    /// Too few valid partials by the timeout.
    #[error(transparent)]
    NoQuorum(#[from] NoQuorum),
    /// Verified partials did not combine to a valid signature (a group the node accepted
    /// cannot get here).
    #[error("the combined signature does not verify under the group key")]
    Combine,
    /// The active view has no signing key on this node.
    #[error("the active view ({view}) has no secp256k1 signing key on this node")]
    NoSigningKey {
        /// The active view.
        view: u64,
    },
    /// The active view has a signing key, and this node holds no share of it: it was left out
    /// of the key's ceremony (a committee member may be), or is not in the committee.
    #[error(
        "this node holds no share of view {view}'s secp256k1 signing key (a member left out \
         of the key's ceremony holds none): ask a member that holds one"
    )]
    NoSigningKeyShare {
        /// The active view.
        view: u64,
    },
    /// The nonce store is not open.
    #[error("the FROST nonce store is not open")]
    NoNonceStore,
    /// A Schnorr request failed after its attempts (too few commitments or shares, or
    /// invalid shares), naming the culprits.
    #[error("{0}")]
    SchnorrFailed(frost::Failure),
    /// This node could not make its own commitment or share (its nonce store full or
    /// failing); members named in earlier attempts are kept.
    #[error("this node cannot take part in a Schnorr signature now: {reason}")]
    SchnorrUnavailable {
        /// What failed here.
        reason: String,
        /// Members named in earlier attempts of the request.
        culprits: Vec<frost::Culprit>,
    },
    /// Aggregation or verification failed for a reason other signers cannot fix; members named
    /// in earlier attempts are kept.
    #[error("Schnorr signature failed: {reason}")]
    Schnorr {
        /// What failed.
        reason: String,
        /// Members named in earlier attempts of the request.
        culprits: Vec<frost::Culprit>,
    },
}

/// The signing service of a node: configuration, the active view and the network.
#[derive(Clone, Debug)]
pub struct SignService(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    token: Option<Token>,
    config: SignConfig,
    limiter: Mutex<RateLimiter>,
    pending: Semaphore,
    answering: Arc<Semaphore>,
    view: RwLock<Option<Arc<SignView>>>,
    net: OnceLock<NetworkHandle>,
    metrics: Arc<Metrics>,
    /// The `bad-beacon` fault: this node's partials do not verify.
    corrupt_partials: bool,
    /// The `bad-signature-share` fault: this node's FROST shares to other members do not
    /// verify.
    corrupt_frost_shares: bool,
    /// The active view's secp256k1 signing key, if it has one ([`frost`]).
    frost: RwLock<Option<Arc<frost::FrostView>>>,
    /// Where this member's FROST nonces wait between rounds; `None` before the node opened
    /// it and after [`SignService::release_stores`].
    nonces: RwLock<Option<Arc<frost::NonceDb>>>,
}

impl SignService {
    /// The service; `token` `None` turns `POST /sign` off. Of the node's `fault`s,
    /// `bad-beacon` makes the partials it sends other members fail verification, and
    /// `bad-signature-share` the FROST signature shares it sends them.
    pub fn new(
        config: SignConfig,
        token: Option<Token>,
        metrics: Arc<Metrics>,
        fault: Fault,
    ) -> Self {
        SignService(Arc::new(Inner {
            limiter: Mutex::new(RateLimiter::new(config.rate_per_sec, config.burst)),
            pending: Semaphore::new(config.max_pending),
            answering: Arc::new(Semaphore::new(MAX_ANSWERING)),
            token,
            config,
            view: RwLock::new(None),
            net: OnceLock::new(),
            metrics,
            corrupt_partials: fault == Fault::BadBeacon,
            corrupt_frost_shares: fault == Fault::BadSignatureShare,
            frost: RwLock::new(None),
            nonces: RwLock::new(None),
        }))
    }

    /// A service that is off (no token), for embedders and tests that do not sign.
    pub fn disabled(metrics: Arc<Metrics>) -> Self {
        Self::new(SignConfig::default(), None, metrics, Fault::None)
    }

    /// The network to reach the committee through (once it is up).
    pub fn set_network(&self, net: NetworkHandle) {
        let _ = self.0.net.set(net);
    }

    /// The store of this member's FROST nonces (set at start).
    pub fn set_nonce_db(&self, db: Arc<frost::NonceDb>) {
        if let Ok(mut n) = self.0.nonces.write() {
            *n = Some(db);
        }
    }

    /// Lets go of the FROST nonce store, for a node that stops: clones of the service can
    /// outlive the node (a status connection's task ends a moment after the server that
    /// spawned it), and the store's file must be free to open again as soon as the node
    /// returns. An answer already running keeps the store until it ends; later ones find
    /// none and refuse.
    pub fn release_stores(&self) {
        if let Ok(mut n) = self.0.nonces.write() {
            *n = None;
        }
    }

    fn nonce_db(&self) -> Option<Arc<frost::NonceDb>> {
        self.0.nonces.read().ok().and_then(|n| n.clone())
    }

    /// Signs Schnorr signatures with `view`'s signing key from now on (`None`: none).
    pub fn set_frost_view(&self, view: Option<frost::FrostView>) {
        if let Some(v) = &view {
            info!(
                view = v.view(),
                member = v.is_member(),
                threshold = v.threshold(),
                group_key = %hex::encode(v.group_key()),
                "Schnorr signing follows the view's signing key"
            );
        }
        if let Ok(mut w) = self.0.frost.write() {
            *w = view.map(Arc::new);
        }
    }

    fn active_frost(&self) -> Option<Arc<frost::FrostView>> {
        self.0.frost.read().ok().and_then(|v| v.clone())
    }

    /// The member side of a FROST round (kind [`keyquorum_net::FROST_KIND`]) from `from` in
    /// `session`. Blocking (the nonce store writes durably): call it off the event loop.
    pub fn answer_frost(
        &self,
        session: &SessionId,
        from: Option<&[u8]>,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut randomness = Zeroizing::new([0u8; 64]);
        rand_core::OsRng.fill_bytes(randomness.as_mut());
        let view = self.active_frost();
        let nonces = self.nonce_db();
        let answer = frost::answer(
            view.as_deref(),
            nonces.as_deref(),
            session,
            from,
            payload,
            &randomness,
            unix_ms(),
        );
        let answer = if self.0.corrupt_frost_shares {
            frost::with_wrong_share(answer)
        } else {
            answer
        };
        let result = match frost::parse_answer(&answer) {
            Ok(_) if frost::FrostRequest::is_release(payload) => "frost_released".to_string(),
            Ok(_) => "frost_answered".to_string(),
            Err(Some(r)) => format!("frost_{}", r.as_str()),
            Err(None) => "frost_malformed".to_string(),
        };
        self.0.metrics.sign.outcome_member(&result);
        answer
    }

    /// A FROST round from the network, as the node's event loop takes it: answered off the loop
    /// (the nonce store writes durably) within the [`MAX_ANSWERING`] bound, the answer sent on
    /// `reply`. Returns `false` when the bound is reached: the request is dropped unanswered,
    /// so the coordinator counts this member unreachable for it.
    pub fn spawn_frost_answer(
        &self,
        session: SessionId,
        from: Option<Vec<u8>>,
        payload: Vec<u8>,
        reply: tokio::sync::oneshot::Sender<Vec<u8>>,
    ) -> bool {
        let Some(slot) = self.answer_slot() else {
            self.0.metrics.sign.outcome_member("frost_busy");
            return false;
        };
        let sign = self.clone();
        tokio::task::spawn_blocking(move || {
            let answer = sign.answer_frost(&session, from.as_deref(), &payload);
            drop(slot);
            let _ = reply.send(answer);
        });
        true
    }

    /// The view's signing key and this node's membership, before a Schnorr request waits.
    pub(crate) fn check_frost_member(&self) -> Result<Arc<frost::FrostView>, SignError> {
        let view = self.active_frost().ok_or_else(|| match self.active() {
            Some(v) => SignError::NoSigningKey { view: v.view() },
            None => SignError::NoActiveView,
        })?;
        if !view.is_member() {
            // Outside the view's committee altogether: the answer a BLS request gets.
            if self
                .active()
                .is_some_and(|v| v.view == view.view() && v.own.is_none())
            {
                return Err(SignError::NotAMember { view: view.view() });
            }
            return Err(SignError::NoSigningKeyShare { view: view.view() });
        }
        Ok(view)
    }

    /// The coordinator side of a Schnorr signature: attempts with fresh signer sets until one
    /// signs or the request is over (see [`frost`]).
    pub(crate) async fn sign_schnorr(
        &self,
        view: Arc<frost::FrostView>,
        scheme: frost::Scheme,
        message: Vec<u8>,
    ) -> Result<frost::SchnorrSignature, SignError> {
        let started = Instant::now();
        let nonces = self.nonce_db().ok_or(SignError::NoNonceStore)?;
        // Before the network is up no other member can be asked.
        let Some(net) = self.0.net.get() else {
            return Err(SignError::SchnorrFailed(frost::Failure {
                round: 1,
                signers: 0,
                threshold: view.threshold(),
                attempts: 0,
                culprits: Vec::new(),
                other_view: Vec::new(),
            }));
        };
        let own_identity = net.identity_public_key().to_vec();
        let own = view
            .committee()
            .iter()
            .position(|m| *m == own_identity)
            .ok_or(SignError::NotAMember { view: view.view() })?;
        let mut signing = frost::Signing::new(scheme, message, own, frost::MAX_ATTEMPTS);
        let m = &self.0.metrics.sign;
        loop {
            let mut id = [0u8; 32];
            rand_core::OsRng.fill_bytes(&mut id);
            let Some(mut session) = signing.next_attempt(&view, id) else {
                let failure = signing.failure(&view);
                warn!(view = view.view(), %failure, "Schnorr signature failed");
                return Err(SignError::SchnorrFailed(failure));
            };
            let attempt = Attempt {
                view: &view,
                net,
                nonces: &nonces,
                own,
                own_identity: &own_identity,
            };
            let ended = self.attempt(&attempt, &mut session).await;
            Self::release_unused(&attempt, &session);
            match ended {
                Ok(signature) => {
                    m.frost_attempt("signed");
                    m.request.observe(started.elapsed().as_secs_f64());
                    return Ok(signature);
                }
                Err(AttemptEnd::OwnFailed(reason)) => {
                    m.frost_attempt("failed");
                    warn!(view = view.view(), %reason, "Schnorr signature failed here");
                    return Err(SignError::SchnorrUnavailable {
                        reason,
                        culprits: signing.culprits().to_vec(),
                    });
                }
                Err(AttemptEnd::Failed(reason)) => {
                    m.frost_attempt("failed");
                    return Err(SignError::Schnorr {
                        reason,
                        culprits: signing.culprits().to_vec(),
                    });
                }
                Err(AttemptEnd::ShortOf {
                    round,
                    signers,
                    culprits,
                    other_view,
                }) => {
                    m.frost_attempt(if round == 1 {
                        "no_commitments"
                    } else if culprits.is_empty() {
                        "other_view"
                    } else {
                        "culprits"
                    });
                    if !other_view.is_empty() {
                        info!(
                            view = view.view(),
                            round,
                            members = ?other_view,
                            "FROST members answered for another view (a view change under way, or this node is behind)"
                        );
                    }
                    for c in &culprits {
                        warn!(
                            view = view.view(),
                            round,
                            member = c.position,
                            identity = %hex::encode(&c.identity),
                            fault = c.fault.as_str(),
                            "FROST signer named and left out of the request's later attempts"
                        );
                        m.frost_culprit(c.position, c.fault.as_str());
                    }
                    signing.attempt_failed(round, signers, culprits, &other_view);
                }
            }
        }
    }

    /// One attempt: round one among the members `session` asks, round two among the first `t`
    /// that committed, each round within `sign.timeout_ms` (so a signer has the whole timeout
    /// for its share however long round one took).
    async fn attempt(
        &self,
        a: &Attempt<'_>,
        session: &mut frost::Session,
    ) -> Result<frost::SchnorrSignature, AttemptEnd> {
        let view = a.view;
        let timeout = Duration::from_millis(self.0.config.timeout_ms);
        // Round one: our own commitment, then the others' as they come. Each round's deadline
        // starts once our own answer is made (the requests leave only when polled below), so
        // a slow answer here never comes out of a signer's time and gets it named.
        let commit = session.commit_request(view);
        let mine = self.answer_locally(a, commit.clone()).await;
        let mut done = session
            .take_commitment(view, a.own, &mine)
            .map_err(|e| AttemptEnd::OwnFailed(format!("own commitment: {e}")))?;
        let deadline = tokio::time::Instant::now() + timeout;
        let committee = view.committee();
        let mut asks: FuturesUnordered<_> = session
            .asked(view)
            .into_iter()
            .filter(|i| *i != a.own)
            .map(|i| {
                let (net, id, payload, s) = (
                    a.net.clone(),
                    committee[i].clone(),
                    commit.clone(),
                    view.session(),
                );
                async move { (i, net.send_frost(id, s, payload).await) }
            })
            .collect();
        while !done {
            match tokio::time::timeout_at(deadline, asks.next()).await {
                Ok(Some((member, Ok(answer)))) => {
                    done = self.take_commitment(session, view, member, &answer);
                }
                Ok(Some((member, Err(e)))) => {
                    debug!(member, error = %e, "FROST commitment not answered");
                    self.0.metrics.sign.partial(member, "unreachable");
                }
                Ok(None) | Err(_) => break,
            }
        }
        drop(asks);
        if !done {
            return Err(AttemptEnd::ShortOf {
                round: 1,
                signers: session.signers.len(),
                culprits: session.commitment_culprits(view),
                other_view: session.other_view().clone(),
            });
        }
        // Round two with the signers whose commitments were taken.
        let request = session
            .sign_request(view)
            .map_err(|e| AttemptEnd::Failed(e.to_string()))?;
        let signers: Vec<usize> = session.signers.keys().copied().collect();
        let mut shares: FuturesUnordered<_> = signers
            .iter()
            .filter(|i| **i != a.own)
            .map(|i| {
                let (net, id, payload, s) = (
                    a.net.clone(),
                    committee[*i].clone(),
                    request.clone(),
                    view.session(),
                );
                let i = *i;
                async move { (i, net.send_frost(id, s, payload).await) }
            })
            .collect();
        let mine = self.answer_locally(a, request.clone()).await;
        session
            .take_share(view, a.own, &mine)
            .map_err(|e| AttemptEnd::OwnFailed(format!("own share: {e}")))?;
        let deadline = tokio::time::Instant::now() + timeout;
        while !session.awaiting_shares().is_empty() {
            match tokio::time::timeout_at(deadline, shares.next()).await {
                Ok(Some((member, Ok(answer)))) => match session.take_share(view, member, &answer) {
                    Err(e) if e.other_view() => {
                        debug!(member, "FROST share refused: the member is at another view");
                    }
                    Err(e) => warn!(member, error = %e, "FROST share not taken"),
                    Ok(()) => {}
                },
                Ok(Some((member, Err(e)))) => {
                    debug!(member, error = %e, "FROST share not answered");
                    session.share_unanswered(member);
                }
                Ok(None) | Err(_) => break,
            }
        }
        let finished = session.finish(view);
        // Each other signer's share, counted once its verdict is known.
        let culprits = match &finished {
            Err(frost::AttemptError::Culprits(c)) => c.clone(),
            _ => Vec::new(),
        };
        for i in signers.iter().filter(|i| **i != a.own) {
            let result = match culprits.iter().find(|c| c.position == *i).map(|c| c.fault) {
                None if session.other_view().contains(i) => "other_view",
                None => "valid",
                Some(frost::SignerFault::InvalidShare | frost::SignerFault::Malformed) => "invalid",
                Some(frost::SignerFault::Refused) => "refused",
                Some(frost::SignerFault::Unresponsive) => "unreachable",
            };
            self.0.metrics.sign.partial(*i, result);
        }
        match finished {
            Ok(signature) => Ok(signature),
            Err(e @ (frost::AttemptError::Culprits(_) | frost::AttemptError::OtherView(_))) => {
                Err(AttemptEnd::ShortOf {
                    round: 2,
                    signers: session.valid_shares(&e),
                    culprits,
                    other_view: session.other_view().clone(),
                })
            }
            Err(frost::AttemptError::Failed(e)) => Err(AttemptEnd::Failed(e)),
        }
    }

    /// Tells the members whose nonces an attempt did not use (this node included) to drop them
    /// ([`frost::FrostRequest::Release`]), in the background: the request's answer does not
    /// wait for it, and a member the release misses drops the pair at its time to live. Without
    /// it, every member a coordinator does not pick holds a pair for ten minutes, and under
    /// sustained load its store fills and it refuses every round one.
    fn release_unused(a: &Attempt<'_>, session: &frost::Session) {
        let members = session.unused_commitments(a.view);
        if members.is_empty() {
            return;
        }
        let payload = session.release_request(a.view);
        let committee = a.view.committee();
        let remote: Vec<Vec<u8>> = members
            .iter()
            .filter(|i| **i != a.own)
            .map(|i| committee[*i].clone())
            .collect();
        let own = members.contains(&a.own).then(|| {
            (
                a.view.clone(),
                a.nonces.clone(),
                a.own_identity.to_vec(),
                payload.clone(),
            )
        });
        let (net, net_session) = (a.net.clone(), a.view.session());
        tokio::spawn(async move {
            if let Some((view, nonces, me, payload)) = own {
                own_answer(view, nonces, me, payload).await;
            }
            let sends: FuturesUnordered<_> = remote
                .into_iter()
                .map(|id| net.send_frost(id, net_session, payload.clone()))
                .collect();
            sends.for_each(|_| async {}).await;
        });
    }

    /// This node's own answer to a round of its attempt (honest whatever the node's fault).
    async fn answer_locally(&self, a: &Attempt<'_>, payload: Vec<u8>) -> Vec<u8> {
        let (view, nonces, me) = (a.view.clone(), a.nonces.clone(), a.own_identity.to_vec());
        own_answer(view, nonces, me, payload).await
    }

    fn take_commitment(
        &self,
        session: &mut frost::Session,
        view: &frost::FrostView,
        member: usize,
        answer: &[u8],
    ) -> bool {
        match session.take_commitment(view, member, answer) {
            Ok(done) => {
                self.0.metrics.sign.partial(member, "valid");
                done
            }
            Err(e) => {
                let result = e.result();
                if e.other_view() {
                    debug!(
                        member,
                        "FROST commitment refused: the member is at another view"
                    );
                } else if e.coordinator_full() {
                    debug!(
                        member,
                        "FROST commitment refused: this node has its share of the member's nonces waiting"
                    );
                } else {
                    warn!(member, error = %e, "FROST commitment not taken");
                }
                self.0.metrics.sign.partial(member, result);
                false
            }
        }
    }

    /// Signs for `view` from now on (`None`: no active view).
    pub fn set_view(&self, view: Option<SignView>) {
        if let Some(v) = &view {
            info!(
                view = v.view,
                member = v.own.is_some(),
                threshold = v.group.threshold(),
                "on-demand signing follows the view"
            );
        }
        if let Ok(mut w) = self.0.view.write() {
            *w = view.map(Arc::new);
        }
    }

    fn active(&self) -> Option<Arc<SignView>> {
        self.0.view.read().ok().and_then(|v| v.clone())
    }

    /// Whether a token is configured.
    pub fn enabled(&self) -> bool {
        self.0.token.is_some()
    }

    pub(crate) fn token(&self) -> Option<&Token> {
        self.0.token.as_ref()
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Takes one request from `caller`'s bucket now.
    pub(crate) fn rate_check(&self, caller: &str) -> Result<(), u64> {
        let now = unix_ms();
        match self.0.limiter.lock() {
            Ok(mut l) => l.check(caller, now),
            Err(_) => Err(1),
        }
    }

    /// A pending-request slot, if one is free.
    pub(crate) fn try_slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.0.pending.try_acquire().ok()
    }

    /// A slot to answer one signing request as a member, if one of the [`MAX_ANSWERING`] is
    /// free; held until the answer is made.
    pub fn answer_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.0.answering.clone().try_acquire_owned().ok()
    }

    /// The view and membership check of a request, before it waits for anything.
    pub(crate) fn check_member(&self) -> Result<Arc<SignView>, SignError> {
        let view = self.active().ok_or(SignError::NoActiveView)?;
        if view.share.is_none() || view.own.is_none() {
            return Err(SignError::NotAMember { view: view.view });
        }
        Ok(view)
    }

    /// The member side: the answer to a signing request from committee member `from` in
    /// `session` (as the network authenticated them).
    pub fn answer(&self, session: &SessionId, from: Option<&[u8]>, payload: &[u8]) -> Vec<u8> {
        let view = self.active();
        let answer = match &view {
            Some(v)
                if v.session == *session
                    && from.is_some_and(|f| v.identities.iter().any(|i| i == f)) =>
            {
                answer_partial(v.view, v.share.as_ref(), payload)
            }
            // Another view's session, or a sender the allow-list should have stopped.
            _ => PartialAnswer::Refused(keyquorum_beacon::sign::Refusal::OtherView),
        };
        let result = match &answer {
            PartialAnswer::Partial(_) => "signed",
            PartialAnswer::Refused(keyquorum_beacon::sign::Refusal::OtherView) => "other_view",
            PartialAnswer::Refused(keyquorum_beacon::sign::Refusal::NoShare) => "no_share",
            PartialAnswer::Refused(keyquorum_beacon::sign::Refusal::Malformed) => "malformed",
        };
        self.0.metrics.sign.outcome_member(result);
        match answer {
            PartialAnswer::Partial(mut p) if self.0.corrupt_partials => {
                // The `bad-beacon` fault: a valid point that is not the partial signature.
                p.sig = blstrs::G2Affine::generator();
                PartialAnswer::Partial(p).to_bytes()
            }
            a => a.to_bytes(),
        }
    }

    /// The coordinator side: signs `request` with `view`'s committee (see the module docs).
    pub(crate) async fn sign(
        &self,
        view: &SignView,
        request: &SignRequest,
    ) -> Result<Signed, SignError> {
        let started = Instant::now();
        // Before the network is up the other members are out of reach, like members that do
        // not answer.
        let net = self.0.net.get();
        let own = view.own.ok_or(SignError::NotAMember { view: view.view })?;
        let payload = PartialRequest {
            view: view.view,
            request: request.clone(),
        }
        .to_bytes();
        let mut collector = Collector::new(&view.group, request);
        let mut asks: FuturesUnordered<_> = view
            .identities
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != own)
            .filter_map(|(i, id)| Some((i, id, net?)))
            .map(|(i, id, net)| {
                let (net, id, payload) = (net.clone(), id.clone(), payload.clone());
                async move { (i, net.send_sign_request(id, view.session, payload).await) }
            })
            .collect();
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.0.config.timeout_ms);
        let mine = answer_partial(view.view, view.share.as_ref(), &payload).to_bytes();
        let mut outcome = self.take(view, &mut collector, own, Ok(mine));

        while outcome.is_none() {
            match tokio::time::timeout_at(deadline, asks.next()).await {
                Ok(Some((member, answer))) => {
                    outcome = self.take(view, &mut collector, member, answer);
                }
                // Every member answered, or the time is up.
                Ok(None) | Err(_) => break,
            }
        }
        match outcome {
            Some(Ok(sig)) => {
                self.0
                    .metrics
                    .sign
                    .request
                    .observe(started.elapsed().as_secs_f64());
                Ok(Signed {
                    signature: hex::encode(sig.to_compressed()),
                    public_key: hex::encode(view.group.group_key().to_compressed()),
                    view: view.view,
                    domain: request.domain.clone(),
                    message: hex::encode(&request.message),
                })
            }
            Some(Err(e)) => Err(e),
            None => {
                let no = collector.no_quorum();
                warn!(view = view.view, valid = no.valid, threshold = no.threshold, culprits = ?no.culprits, "on-demand signature: no quorum");
                Err(no.into())
            }
        }
    }

    /// Takes one member's answer; `Some` when the collection is over.
    fn take(
        &self,
        view: &SignView,
        collector: &mut Collector<'_>,
        member: usize,
        answer: Result<Vec<u8>, keyquorum_net::NetError>,
    ) -> Option<Result<blstrs::G2Affine, SignError>> {
        let m = &self.0.metrics.sign;
        let count = |result: &str| m.partial(member, result);
        let bytes = match answer {
            Ok(b) => b,
            Err(e) => {
                debug!(view = view.view, member, error = %e, "sign request not answered");
                count("unreachable");
                return None;
            }
        };
        let started = Instant::now();
        match collector.add_answer(member, &bytes) {
            Ok(Progress::NeedMore { .. }) => {
                count("valid");
                None
            }
            Ok(Progress::Done(sig)) => {
                count("valid");
                m.combine.observe(started.elapsed().as_secs_f64());
                Some(Ok(sig))
            }
            Err(PartialRejected::Invalid { member }) => {
                warn!(view = view.view, member, "bad on-demand partial signature");
                count("invalid");
                None
            }
            Err(PartialRejected::NoPartial {
                refusal: keyquorum_beacon::sign::Refusal::OtherView,
                ..
            }) => {
                count("other_view");
                None
            }
            Err(PartialRejected::NoPartial { .. }) => {
                count("refused");
                None
            }
            Err(PartialRejected::CombinedInvalid) => Some(Err(SignError::Combine)),
            Err(PartialRejected::UnknownMember { .. } | PartialRejected::Duplicate { .. }) => None,
        }
    }
}

/// The coordinator's own answer to a FROST request of its attempt (`me`: its identity), off
/// the event loop (the nonce store writes durably); empty if that task failed.
async fn own_answer(
    view: Arc<frost::FrostView>,
    nonces: Arc<frost::NonceDb>,
    me: Vec<u8>,
    payload: Vec<u8>,
) -> Vec<u8> {
    tokio::task::spawn_blocking(move || {
        let mut randomness = Zeroizing::new([0u8; 64]);
        rand_core::OsRng.fill_bytes(randomness.as_mut());
        frost::answer(
            Some(&view),
            Some(&nonces),
            &view.session(),
            Some(&me),
            &payload,
            &randomness,
            unix_ms(),
        )
    })
    .await
    .unwrap_or_default()
}

/// What one attempt of a Schnorr request works with.
struct Attempt<'a> {
    view: &'a Arc<frost::FrostView>,
    net: &'a NetworkHandle,
    nonces: &'a Arc<frost::NonceDb>,
    own: usize,
    own_identity: &'a [u8],
}

/// How an attempt ended without a signature.
enum AttemptEnd {
    /// Fewer than `t` commitments (round 1) or valid shares (round 2), naming the culprits
    /// and the members that answered for another view.
    ShortOf {
        round: u8,
        signers: usize,
        culprits: Vec<frost::Culprit>,
        other_view: std::collections::BTreeSet<usize>,
    },
    /// This node could not make its own commitment or share (its nonce store full or
    /// failing): a condition of this node, not of the signers.
    OwnFailed(String),
    /// A failure other signers cannot fix.
    Failed(String),
}

/// The signing service's metrics (see the module docs).
pub struct SignMetrics {
    pub(crate) requests: Family<Vec<(&'static str, String)>, Counter>,
    pub(crate) rejections: Family<Vec<(&'static str, String)>, Counter>,
    pub(crate) partials: Family<Vec<(&'static str, String)>, Counter>,
    pub(crate) answers: Family<Vec<(&'static str, String)>, Counter>,
    pub(crate) frost_attempts: Family<Vec<(&'static str, String)>, Counter>,
    pub(crate) frost_culprits: Family<Vec<(&'static str, String)>, Counter>,
    pub(crate) combine: Histogram,
    pub(crate) request: Histogram,
}

impl SignMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = SignMetrics {
            requests: Family::default(),
            rejections: Family::default(),
            partials: Family::default(),
            answers: Family::default(),
            frost_attempts: Family::default(),
            frost_culprits: Family::default(),
            // Half a millisecond to about 8 s, doubling.
            combine: Histogram::new(exponential_buckets(0.0005, 2.0, 15)),
            request: Histogram::new(exponential_buckets(0.0005, 2.0, 15)),
        };
        registry.register(
            "keyquorum_sign_requests",
            "On-demand signing requests over HTTP, by result",
            m.requests.clone(),
        );
        registry.register(
            "keyquorum_sign_rejections",
            "On-demand signing requests refused, by reason",
            m.rejections.clone(),
        );
        registry.register(
            "keyquorum_sign_partials",
            "On-demand partial signatures collected as coordinator, by sender's committee position and result",
            m.partials.clone(),
        );
        registry.register(
            "keyquorum_sign_answers",
            "On-demand signing requests answered as a committee member, by result",
            m.answers.clone(),
        );
        registry.register(
            "keyquorum_sign_frost_attempts",
            "FROST signing attempts this node coordinated, by how they ended",
            m.frost_attempts.clone(),
        );
        registry.register(
            "keyquorum_sign_frost_culprits",
            "FROST signers an attempt this node coordinated named and left out, by committee position and fault",
            m.frost_culprits.clone(),
        );
        registry.register_with_unit(
            "keyquorum_sign_combine",
            "Time of the collector call that combined an on-demand signature (combine and verify)",
            Unit::Seconds,
            m.combine.clone(),
        );
        registry.register_with_unit(
            "keyquorum_sign_request",
            "Time from an on-demand signing request to its signature",
            Unit::Seconds,
            m.request.clone(),
        );
        m
    }

    /// Counts a request's outcome: signed, or rejected for `reason`.
    pub fn outcome(&self, reason: Option<&str>) {
        match reason {
            None => {
                self.requests
                    .get_or_create(&vec![("result", "signed".into())])
                    .inc();
            }
            Some(r) => {
                self.requests
                    .get_or_create(&vec![("result", "rejected".into())])
                    .inc();
                self.rejections
                    .get_or_create(&vec![("reason", r.into())])
                    .inc();
            }
        };
    }

    /// Counts a signing request this node answered (or the network refused) as a member.
    pub fn outcome_member(&self, result: &str) {
        self.answers
            .get_or_create(&vec![("result", result.into())])
            .inc();
    }

    /// Counts a partial from committee position `member` collected as coordinator.
    pub fn partial(&self, member: usize, result: &str) {
        self.partials
            .get_or_create(&vec![
                ("member", member.to_string()),
                ("result", result.into()),
            ])
            .inc();
    }

    /// Counts a FROST attempt this node coordinated: `signed`, `culprits` (round two named
    /// signers), `no_commitments` (round one fell short) or `failed`.
    pub fn frost_attempt(&self, result: &str) {
        self.frost_attempts
            .get_or_create(&vec![("result", result.into())])
            .inc();
    }

    /// Counts a FROST signer at committee position `member` named for `fault`.
    pub fn frost_culprit(&self, member: usize, fault: &str) {
        self.frost_culprits
            .get_or_create(&vec![
                ("member", member.to_string()),
                ("fault", fault.into()),
            ])
            .inc();
    }

    /// FROST attempts counted with `result`.
    pub fn frost_attempts(&self, result: &str) -> u64 {
        self.frost_attempts
            .get(&vec![("result", result.into())])
            .map(|c| c.get())
            .unwrap_or(0)
    }

    /// FROST signers at `member` named for `fault`.
    pub fn frost_culprits(&self, member: usize, fault: &str) -> u64 {
        self.frost_culprits
            .get(&vec![
                ("member", member.to_string()),
                ("fault", fault.into()),
            ])
            .map(|c| c.get())
            .unwrap_or(0)
    }

    /// Requests rejected for `reason` so far.
    pub fn rejections(&self, reason: &str) -> u64 {
        self.rejections
            .get(&vec![("reason", reason.into())])
            .map(|c| c.get())
            .unwrap_or(0)
    }

    /// Partials from `member` counted with `result`.
    pub fn partials(&self, member: usize, result: &str) -> u64 {
        self.partials
            .get(&vec![
                ("member", member.to_string()),
                ("result", result.into()),
            ])
            .map(|c| c.get())
            .unwrap_or(0)
    }
}

/// The wall clock, in Unix milliseconds (0 before 1970).
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
