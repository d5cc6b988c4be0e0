//! The public async API over the swarm task.
//!
//! Policy that involves waiting (retries, backoff, timeouts, falling back
//! from a binding to the DHT and from the DHT to address hints) lives here
//! rather than in the swarm task:
//! it runs on the caller's task, so a slow peer or a long backoff never
//! stalls the event loop that every other request depends on.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use libp2p::{Multiaddr, PeerId};
use rand_core::{OsRng, RngCore};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use crate::config::{NetConfig, RetryPolicy};
use crate::error::NetError;
use crate::identity::SharedVerifier;
use crate::record::{AddressRecord, Expect, split_p2p, verify_record_bytes};
use crate::stats::{Counters, NetStats};
use crate::task::{Command, Outbound, Route, Task};
use crate::wire::{SessionId, Status, WireResponse, short_hex};
use crate::{NetEvent, Target};

const COMMAND_BUFFER: usize = 256;
/// Slack on top of the libp2p-level timeouts so that they, with their more
/// precise errors, normally fire first.
const TIMEOUT_SLACK: Duration = Duration::from_millis(500);

/// Entry point: builds the swarm and spawns its task.
#[derive(Debug)]
pub struct Network;

impl Network {
    /// Starts listening, dials the bootstrap nodes and spawns the swarm task
    /// on the current tokio runtime. The task stops when every handle is
    /// dropped or [`NetworkHandle::shutdown`] is called.
    // `Network` is only a namespace; `new` is the documented entry point.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(config: NetConfig) -> Result<(NetworkHandle, mpsc::Receiver<NetEvent>), NetError> {
        validate(&config)?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| NetError::Config("Network::new must run inside a tokio runtime".into()))?;
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_BUFFER);
        let (ev_tx, ev_rx) = mpsc::channel(config.event_buffer);
        let counters = Arc::new(Counters::default());
        let handle = NetworkHandle {
            inner: Arc::new(Inner {
                commands: cmd_tx,
                local_peer: config.keypair.public().to_peer_id(),
                identity: config.signer.public_key(),
                verifier: config.verifier.clone(),
                retry: config.retry,
                request_timeout: config.request_timeout,
                dht_timeout: config.dht_query_timeout,
                counters: counters.clone(),
            }),
        };
        let task = Task::new(config, cmd_rx, ev_tx, counters)?;
        runtime.spawn(task.run());
        Ok((handle, ev_rx))
    }
}

fn validate(c: &NetConfig) -> Result<(), NetError> {
    if c.max_request_size == 0 || c.max_request_size > u32::MAX as usize {
        return Err(NetError::Config("max_request_size out of range".into()));
    }
    if c.max_response_size == 0 || c.max_response_size > u32::MAX as usize {
        return Err(NetError::Config("max_response_size out of range".into()));
    }
    if c.event_buffer == 0 {
        return Err(NetError::Config("event_buffer must be positive".into()));
    }
    if c.request_timeout.is_zero() || c.dht_query_timeout.is_zero() {
        return Err(NetError::Config("timeouts must be positive".into()));
    }
    Ok(())
}

struct Inner {
    commands: mpsc::Sender<Command>,
    local_peer: PeerId,
    identity: Vec<u8>,
    verifier: SharedVerifier,
    retry: RetryPolicy,
    request_timeout: Duration,
    dht_timeout: Duration,
    counters: Arc<Counters>,
}

/// Cheap-to-clone handle to a running [`Network`].
#[derive(Clone)]
pub struct NetworkHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for NetworkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkHandle")
            .field("local_peer", &self.inner.local_peer)
            .finish_non_exhaustive()
    }
}

impl NetworkHandle {
    /// libp2p peer id of this node.
    pub fn local_peer_id(&self) -> PeerId {
        self.inner.local_peer
    }

    /// Identity public key this node signs its record with.
    pub fn identity_public_key(&self) -> &[u8] {
        &self.inner.identity
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .commands
            .send(make(tx))
            .await
            .map_err(|_| NetError::Shutdown)?;
        rx.await.map_err(|_| NetError::Shutdown)
    }

    async fn command(&self, cmd: Command) -> Result<(), NetError> {
        self.inner
            .commands
            .send(cmd)
            .await
            .map_err(|_| NetError::Shutdown)
    }

    /// Addresses the node listens on; waits until at least one is bound.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.call(Command::ListenAddrs).await
    }

    /// Counters of this network since it started.
    pub fn stats(&self) -> NetStats {
        self.inner.counters.snapshot()
    }

    /// Peers with an open connection.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, NetError> {
        self.call(Command::ConnectedPeers).await
    }

    /// Records addresses learnt out of band (e.g. from the chain). They are
    /// used for dialing only: an identity hint is trusted only once the peer
    /// at that address presents a record signed by the identity.
    pub async fn add_address_hint(
        &self,
        target: impl Into<Target>,
        addrs: Vec<Multiaddr>,
    ) -> Result<(), NetError> {
        self.command(Command::AddHint {
            target: target.into(),
            addrs,
        })
        .await
    }

    /// Binds `identity` to `peer`, to be dialed at `addrs`: requests to the identity then go
    /// straight to that peer, without a DHT lookup, until a dial fails (then the DHT is asked).
    ///
    /// The caller vouches that the identity itself named `peer`, e.g. in a registration it
    /// signed on chain. The addresses need no such trust: they are only where to dial, and the
    /// Noise handshake refuses any remote that does not hold `peer`'s key, so a wrong or
    /// hostile address costs a failed dial, never a message to someone else. An address whose
    /// `/p2p/` suffix names another peer is dropped. Binding again with different data replaces
    /// the binding and any record of the identity found before.
    pub async fn bind_identity(
        &self,
        identity: Vec<u8>,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
    ) -> Result<(), NetError> {
        self.command(Command::Bind {
            identity,
            peer,
            addrs,
        })
        .await
    }

    /// Forgets the binding of `identity` (the DHT is asked from then on).
    pub async fn unbind_identity(&self, identity: Vec<u8>) -> Result<(), NetError> {
        self.command(Command::Unbind { identity }).await
    }

    /// Signs the current address record and stores it in the DHT. Succeeds
    /// once at least one remote node accepted it.
    pub async fn publish_address_record(&self) -> Result<(), NetError> {
        let fut = self.call(Command::Publish);
        match tokio::time::timeout(self.inner.dht_timeout + TIMEOUT_SLACK, fut).await {
            Ok(r) => r?,
            Err(_) => Err(NetError::Dht("publication timed out".into())),
        }
    }

    /// Fetches and verifies the freshest address record of `identity`.
    pub async fn lookup_record(&self, identity: &[u8]) -> Result<AddressRecord, NetError> {
        let fut = self.call(|reply| Command::Lookup {
            identity: identity.to_vec(),
            reply,
        });
        match tokio::time::timeout(self.inner.dht_timeout + TIMEOUT_SLACK, fut).await {
            Ok(r) => r?,
            Err(_) => Err(NetError::Dht("lookup timed out".into())),
        }
    }

    /// Addresses of `identity` from its verified DHT record.
    pub async fn lookup(&self, identity: &[u8]) -> Result<Vec<Multiaddr>, NetError> {
        Ok(self.lookup_record(identity).await?.addresses)
    }

    /// Restricts requests for `session` to the given identities. Others get
    /// an error response and raise [`NetEvent::Rejected`]. Returns once the
    /// list is in place: a request handled after the return is judged by it.
    pub async fn set_session_members(
        &self,
        session: SessionId,
        members: Vec<Vec<u8>>,
    ) -> Result<(), NetError> {
        self.call(|applied| Command::SetMembers {
            session,
            members: Some(members),
            applied,
        })
        .await
    }

    /// Forgets the allow-list of `session`, once applied (as
    /// [`set_session_members`](Self::set_session_members)).
    pub async fn clear_session(&self, session: SessionId) -> Result<(), NetError> {
        self.call(|applied| Command::SetMembers {
            session,
            members: None,
            applied,
        })
        .await
    }

    /// Limits which identities' records this node stores for the DHT
    /// (`None`: any validly signed record). With the validator set from the
    /// chain this keeps self-signed junk identities out of the store.
    pub async fn set_known_validators(
        &self,
        identities: Option<Vec<Vec<u8>>>,
    ) -> Result<(), NetError> {
        self.command(Command::SetKnownValidators(identities)).await
    }

    /// Stops the swarm task; pending calls fail with [`NetError::Shutdown`].
    pub async fn shutdown(&self) {
        let _ = self.inner.commands.send(Command::Shutdown).await;
    }

    /// Sends one opaque message and returns the peer's response payload,
    /// retrying transient failures with exponential backoff.
    pub async fn send(
        &self,
        to: impl Into<Target>,
        session: SessionId,
        kind: u8,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, NetError> {
        let to = to.into();
        if matches!(&to, Target::Identity(id) if *id == self.inner.identity)
            || matches!(&to, Target::Peer(p) if *p == self.inner.local_peer)
        {
            return Err(NetError::SelfTarget);
        }
        let payload = Bytes::from(payload);
        let policy = self.inner.retry;
        let attempts = policy.attempts.max(1);
        let mut last = NetError::Timeout;
        let mut refresh = false;
        for attempt in 1..=attempts {
            match self
                .send_once(&to, session, kind, payload.clone(), refresh)
                .await
            {
                Ok(response) => return Ok(response),
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) => {
                    // Resolve again only when the peer may have moved: a busy answer or a
                    // connection lost midway came from the right peer.
                    refresh = !matches!(
                        e,
                        NetError::Remote(_)
                            | NetError::ConnectionClosed { .. }
                            | NetError::Stream { .. }
                    );
                    debug!(
                        session = %short_hex(&session),
                        kind,
                        attempt,
                        error = %e,
                        "send attempt failed"
                    );
                    last = e;
                }
            }
            if attempt < attempts {
                tokio::time::sleep(jitter(policy.delay(attempt))).await;
            }
        }
        if attempts == 1 {
            Err(last)
        } else {
            Err(NetError::RetriesExhausted {
                attempts,
                last: Box::new(last),
            })
        }
    }

    /// One attempt of [`NetworkHandle::send`] to an identity, without retries.
    pub(crate) async fn send_single(
        &self,
        identity: Vec<u8>,
        session: SessionId,
        kind: u8,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, NetError> {
        if identity == self.inner.identity {
            return Err(NetError::SelfTarget);
        }
        let to = Target::Identity(identity);
        self.send_once(&to, session, kind, Bytes::from(payload), false)
            .await
    }

    async fn send_once(
        &self,
        to: &Target,
        session: SessionId,
        kind: u8,
        payload: Bytes,
        refresh: bool,
    ) -> Result<Vec<u8>, NetError> {
        let body = || Outbound::Data {
            session,
            kind,
            payload: payload.clone(),
        };
        let response = match to {
            Target::Peer(p) => self.request(*p, Vec::new(), body()).await?,
            Target::Identity(id) => {
                let route = if refresh { None } else { self.route(id).await? };
                let first = match route {
                    Some(Route { peer, addrs, bound }) => {
                        match self.request(peer, addrs, body()).await {
                            Err(e @ NetError::Dial { .. }) if bound => {
                                debug!(%peer, error = %e, "bound peer not reached; asking the DHT");
                                self.inner.counters.binding_fallback();
                                None
                            }
                            r => Some(r?),
                        }
                    }
                    None => None,
                };
                match first {
                    Some(response) => response,
                    None => {
                        let rec = self.resolve(id).await?;
                        self.request(rec.peer_id, rec.addresses, body()).await?
                    }
                }
            }
        };
        match response.status {
            Status::Ok => Ok(response.payload),
            Status::Err(e) => Err(NetError::Remote(e)),
        }
    }

    /// A verified record learnt before, else the identity's binding.
    async fn route(&self, identity: &[u8]) -> Result<Option<Route>, NetError> {
        self.call(|reply| Command::Route {
            identity: identity.to_vec(),
            reply,
        })
        .await
    }

    async fn request(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        body: Outbound,
    ) -> Result<WireResponse, NetError> {
        let fut = self.call(|reply| Command::Request {
            peer,
            addrs,
            body,
            reply,
        });
        match tokio::time::timeout(self.inner.request_timeout + TIMEOUT_SLACK, fut).await {
            Ok(r) => r?,
            Err(_) => Err(NetError::Timeout),
        }
    }

    /// Identity -> verified record: DHT, then address hints.
    async fn resolve(&self, identity: &[u8]) -> Result<AddressRecord, NetError> {
        let dht_err = match self.lookup_record(identity).await {
            Ok(rec) => return Ok(rec),
            Err(e) => e,
        };
        let hints = self
            .call(|reply| Command::IdentityHints {
                identity: identity.to_vec(),
                reply,
            })
            .await?;
        for addr in hints {
            match self.greet(identity, &addr).await {
                Ok(rec) => return Ok(rec),
                Err(e) => debug!(%addr, error = %e, "address hint did not lead to the identity"),
            }
        }
        Err(dht_err)
    }

    /// Asks whoever is at `addr` for its signed record and keeps it if it
    /// belongs to `identity`.
    async fn greet(&self, identity: &[u8], addr: &Multiaddr) -> Result<AddressRecord, NetError> {
        let (peer, addrs) = match split_p2p(addr) {
            Some((p, a)) => (p, vec![a]),
            None => {
                let fut = self.call(|reply| Command::DialAddress {
                    addr: addr.clone(),
                    reply,
                });
                let peer = match tokio::time::timeout(self.inner.request_timeout, fut).await {
                    Ok(r) => r??,
                    Err(_) => return Err(NetError::Timeout),
                };
                (peer, Vec::new())
            }
        };
        let response = self.request(peer, addrs, Outbound::Hello).await?;
        if let Status::Err(e) = response.status {
            return Err(NetError::Remote(e));
        }
        let expect = Expect {
            identity: Some(identity),
            peer: Some(&peer),
            dht_key: None,
        };
        let rec = verify_record_bytes(&response.payload, expect, self.inner.verifier.as_ref())
            .map_err(|e| NetError::Dial {
                target: addr.to_string(),
                reason: format!("peer presented an unusable record: {e}"),
            })?;
        self.command(Command::Learned(rec.clone())).await?;
        Ok(rec)
    }
}

/// "Equal jitter": half the delay fixed, half random, so that validators
/// retrying towards the same dealer spread out.
fn jitter(d: Duration) -> Duration {
    let half = d / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    let extra = if nanos == 0 {
        0
    } else {
        OsRng.next_u64() % nanos
    };
    half + Duration::from_nanos(extra)
}
