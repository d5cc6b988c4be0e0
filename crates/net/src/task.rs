//! The swarm task: sole owner of the libp2p `Swarm`.
//!
//! libp2p's `Swarm` is a single-threaded state machine, so all network state
//! lives in one task and the rest of the process talks to it through
//! [`Command`]s with oneshot replies. The task never awaits anything but its
//! `select!`: work that has to wait (the application's reply to an incoming
//! request) is parked in a `FuturesUnordered`, and a full event queue is
//! answered with a "busy" status instead of blocking the swarm.
//!
//! Trust model, in short:
//! - DHT contents are untrusted. Records stored on our behalf are filtered
//!   (`StoreInserts::FilterBoth`) so this node only serves records that verify
//!   and never lets an older sequence replace a newer one; records read back
//!   are verified again because other nodes may not filter.
//! - An incoming request is attributed to an identity only through the
//!   record that the sending peer attaches itself. A record fetched from the
//!   DHT proves only that the identity *claims* a peer id; the peer presenting
//!   it over its Noise-authenticated connection proves the other direction.
//!   Without that, a validator could name an honest node's peer id in its own
//!   record and have that node's messages attributed to itself.
//! - A binding (identity -> peer id, from chain data the validator signed) is
//!   used for outbound requests only. Its addresses are dial hints: the Noise
//!   handshake proves the remote holds the bound peer id's key, whatever
//!   address answered, so a wrong address fails the dial instead of reaching
//!   someone else.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use libp2p::kad::store::{MemoryStore, MemoryStoreConfig, RecordStore};
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, identify, kad, noise, tcp, yamux};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, trace, warn};

use crate::beacon::{
    BEACON_PARTIAL_KIND, BEACON_SYNC_KIND, MAX_BEACON_PAYLOAD, MAX_SIGN_PAYLOAD, MAX_SYNC_REQUEST,
    SIGN_REQUEST_KIND,
};
use crate::config::NetConfig;
use crate::error::{NetError, RemoteError};
use crate::identity::{SharedSigner, SharedVerifier};
use crate::record::{
    AddressRecord, Expect, MAX_ADDRESSES, MAX_RECORD_BYTES, dht_key, split_p2p, strip_p2p,
    verify_record_bytes,
};
use crate::sections::{
    MAX_SECTIONS_JOIN_PAYLOAD, MAX_SECTIONS_PAYLOAD, SECTIONS_JOIN_KIND, SECTIONS_MESSAGE_KIND,
};
use crate::stats::Counters;
use crate::wire::{DKG_PROTOCOL, DkgCodec, SessionId, WireRequest, WireResponse, short_hex};
use crate::{NetEvent, Target};

/// Protocol name of the keyquorum Kademlia DHT (kept apart from the public
/// IPFS DHT so the two never mix routing tables).
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/keyquorum/kad/1.0.0");
const IDENTIFY_PROTOCOL_VERSION: &str = "/keyquorum/1.0.0";
/// Bound on the peer -> identity attribution cache.
const MAX_ATTRIBUTIONS: usize = 8192;
/// Bound on stored address hints per peer or identity.
const MAX_HINTS: usize = 16;
const MAX_DHT_RECORDS: usize = 8192;
/// Bound on identity -> peer bindings (one per registered validator).
const MAX_BINDINGS: usize = 8192;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    identify: identify::Behaviour,
    kad: kad::Behaviour<MemoryStore>,
    rr: request_response::Behaviour<DkgCodec>,
}

/// Outbound request bodies; the task adds the local record itself.
pub(crate) enum Outbound {
    Data {
        session: SessionId,
        kind: u8,
        payload: Bytes,
    },
    Hello,
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, NetError>>;

/// Where to reach an identity without a DHT lookup.
pub(crate) struct Route {
    pub(crate) peer: PeerId,
    pub(crate) addrs: Vec<Multiaddr>,
    /// From a binding rather than a verified record: a failed dial falls back to the DHT.
    pub(crate) bound: bool,
}

pub(crate) enum Command {
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    ConnectedPeers(oneshot::Sender<Vec<PeerId>>),
    AddHint {
        target: Target,
        addrs: Vec<Multiaddr>,
    },
    IdentityHints {
        identity: Vec<u8>,
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    Publish(Reply<()>),
    Lookup {
        identity: Vec<u8>,
        reply: Reply<AddressRecord>,
    },
    Route {
        identity: Vec<u8>,
        reply: oneshot::Sender<Option<Route>>,
    },
    Bind {
        identity: Vec<u8>,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
    },
    Unbind {
        identity: Vec<u8>,
    },
    Learned(AddressRecord),
    Request {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        body: Outbound,
        reply: Reply<WireResponse>,
    },
    DialAddress {
        addr: Multiaddr,
        reply: Reply<PeerId>,
    },
    SetMembers {
        session: SessionId,
        members: Option<Vec<Vec<u8>>>,
        /// Answered once the list is in place, so a request handled after it sees it.
        applied: oneshot::Sender<()>,
    },
    SetKnownValidators(Option<Vec<Vec<u8>>>),
    Shutdown,
}

struct Lookup {
    identity: Vec<u8>,
    best: Option<AddressRecord>,
    waiters: Vec<Reply<AddressRecord>>,
}

type PendingReply = BoxFuture<
    'static,
    (
        request_response::ResponseChannel<WireResponse>,
        PeerId,
        Option<Vec<u8>>,
    ),
>;

pub(crate) struct Task {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    signer: SharedSigner,
    verifier: SharedVerifier,
    local_peer: PeerId,
    local_dht_key: [u8; 32],
    max_request: usize,
    max_response: usize,
    request_timeout: Duration,
    reject_unlisted: bool,
    external: Vec<Multiaddr>,
    listen_addrs: Vec<Multiaddr>,
    listen_waiters: Vec<oneshot::Sender<Vec<Multiaddr>>>,
    local_record: Option<(AddressRecord, Bytes)>,
    published: bool,
    /// Verified records of identities we looked up or greeted.
    known: HashMap<Vec<u8>, AddressRecord>,
    /// Identity of a peer, as proven by the record it presented itself.
    attributed: HashMap<PeerId, (Bytes, Vec<u8>)>,
    sessions: HashMap<SessionId, HashSet<Vec<u8>>>,
    known_validators: Option<HashSet<Vec<u8>>>,
    peer_hints: HashMap<PeerId, Vec<Multiaddr>>,
    identity_hints: HashMap<Vec<u8>, Vec<Multiaddr>>,
    /// Peer ids (and addresses to dial them at) that identities bound themselves to in data
    /// the application authenticated, e.g. their registration on chain.
    bindings: HashMap<Vec<u8>, (PeerId, Vec<Multiaddr>)>,
    counters: Arc<Counters>,
    lookups: HashMap<kad::QueryId, Lookup>,
    lookup_by_identity: HashMap<Vec<u8>, kad::QueryId>,
    puts: HashMap<kad::QueryId, Reply<()>>,
    requests: HashMap<OutboundRequestId, (PeerId, Reply<WireResponse>)>,
    dials: HashMap<ConnectionId, Reply<PeerId>>,
    replies: FuturesUnordered<PendingReply>,
}

impl Task {
    /// Builds the swarm, starts listening and dials the bootstrap nodes.
    pub(crate) fn new(
        cfg: NetConfig,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<NetEvent>,
        counters: Arc<Counters>,
    ) -> Result<Self, NetError> {
        let bootstrap = cfg
            .bootstrap
            .iter()
            .map(|a| {
                split_p2p(a).ok_or_else(|| {
                    NetError::Config(format!("bootstrap address {a} lacks a /p2p/ peer id"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let local_peer = cfg.keypair.public().to_peer_id();
        let codec = DkgCodec {
            max_request: cfg.max_request_size,
            max_response: cfg.max_response_size,
        };
        let request_timeout = cfg.request_timeout;
        let dht_timeout = cfg.dht_query_timeout;

        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(cfg.keypair.clone())
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| NetError::Transport(e.to_string()))?
            .with_behaviour(|key| {
                let identify = identify::Behaviour::new(
                    identify::Config::new(IDENTIFY_PROTOCOL_VERSION.to_string(), key.public())
                        .with_agent_version(format!("keyquorum-net/{}", env!("CARGO_PKG_VERSION"))),
                );
                let mut kad_cfg = kad::Config::new(KAD_PROTOCOL);
                kad_cfg.set_query_timeout(dht_timeout);
                kad_cfg.set_record_filtering(kad::StoreInserts::FilterBoth);
                let store = MemoryStore::with_config(
                    local_peer,
                    MemoryStoreConfig {
                        max_records: MAX_DHT_RECORDS,
                        max_value_bytes: MAX_RECORD_BYTES + 1,
                        ..MemoryStoreConfig::default()
                    },
                );
                let mut kad = kad::Behaviour::with_config(local_peer, store, kad_cfg);
                // Validators are servers by definition; kad would otherwise
                // stay a client until an external address is confirmed.
                kad.set_mode(Some(kad::Mode::Server));
                let rr = request_response::Behaviour::with_codec(
                    codec,
                    [(DKG_PROTOCOL, ProtocolSupport::Full)],
                    request_response::Config::default().with_request_timeout(request_timeout),
                );
                Behaviour { identify, kad, rr }
            })
            .map_err(|e| NetError::Transport(e.to_string()))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(cfg.idle_connection_timeout))
            .build();

        refuse_shared_port(&cfg.listen)?;
        swarm
            .listen_on(cfg.listen.clone())
            .map_err(|e| NetError::Listen {
                addr: cfg.listen.to_string(),
                reason: error_chain(&e),
            })?;

        let mut peer_hints: HashMap<PeerId, Vec<Multiaddr>> = HashMap::new();
        let mut dialed_any = false;
        for (peer, addr) in bootstrap {
            if peer == local_peer {
                continue;
            }
            swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
            peer_hints.entry(peer).or_default().push(addr.clone());
            let opts = DialOpts::peer_id(peer)
                .addresses(vec![addr.clone()])
                .build();
            if let Err(e) = swarm.dial(opts) {
                warn!(%peer, %addr, error = %e, "cannot dial bootstrap node");
            }
            dialed_any = true;
        }
        if dialed_any {
            // Populates the routing table beyond the bootstrap nodes.
            let _ = swarm.behaviour_mut().kad.bootstrap();
        }

        let identity = cfg.signer.public_key();
        info!(peer = %local_peer, listen = %cfg.listen, "network started");
        Ok(Task {
            swarm,
            commands,
            events,
            local_dht_key: dht_key(&identity),
            signer: cfg.signer,
            verifier: cfg.verifier,
            local_peer,
            max_request: cfg.max_request_size,
            max_response: cfg.max_response_size,
            request_timeout,
            reject_unlisted: cfg.reject_unlisted_sessions,
            external: cfg.external_addresses,
            listen_addrs: Vec::new(),
            listen_waiters: Vec::new(),
            local_record: None,
            published: false,
            known: HashMap::new(),
            attributed: HashMap::new(),
            sessions: HashMap::new(),
            known_validators: None,
            peer_hints,
            identity_hints: HashMap::new(),
            bindings: HashMap::new(),
            counters,
            lookups: HashMap::new(),
            lookup_by_identity: HashMap::new(),
            puts: HashMap::new(),
            requests: HashMap::new(),
            dials: HashMap::new(),
            replies: FuturesUnordered::new(),
        })
    }

    pub(crate) async fn run(mut self) {
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Shutdown) | None => break,
                    Some(cmd) => self.on_command(cmd),
                },
                Some((channel, peer, reply)) = self.replies.next(), if !self.replies.is_empty() => {
                    self.on_app_reply(channel, peer, reply);
                }
            }
        }
        info!(peer = %self.local_peer, "network stopped");
    }

    // ----- commands -------------------------------------------------------

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::ListenAddrs(reply) => {
                if self.listen_addrs.is_empty() {
                    self.listen_waiters.push(reply);
                } else {
                    let _ = reply.send(self.listen_addrs.clone());
                }
            }
            Command::ConnectedPeers(reply) => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::AddHint { target, addrs } => self.add_hint(target, addrs),
            Command::IdentityHints { identity, reply } => {
                let hints = self
                    .identity_hints
                    .get(&identity)
                    .cloned()
                    .unwrap_or_default();
                let _ = reply.send(hints);
            }
            Command::Publish(reply) => self.publish(Some(reply)),
            Command::Lookup { identity, reply } => self.start_lookup(identity, reply),
            Command::Route { identity, reply } => {
                let _ = reply.send(self.route(&identity));
            }
            Command::Bind {
                identity,
                peer,
                addrs,
            } => self.bind(identity, peer, addrs),
            Command::Unbind { identity } => {
                self.bindings.remove(&identity);
            }
            Command::Learned(record) => self.learn(record),
            Command::Request {
                peer,
                addrs,
                body,
                reply,
            } => self.send_request(peer, addrs, body, reply),
            Command::DialAddress { addr, reply } => {
                let opts = DialOpts::unknown_peer_id().address(addr.clone()).build();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dials.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NetError::Dial {
                            target: addr.to_string(),
                            reason: e.to_string(),
                        }));
                    }
                }
            }
            Command::SetMembers {
                session,
                members,
                applied,
            } => {
                match members {
                    Some(m) => {
                        debug!(session = %short_hex(&session), members = m.len(), "session allow-list set");
                        self.sessions.insert(session, m.into_iter().collect());
                    }
                    None => {
                        self.sessions.remove(&session);
                    }
                }
                let _ = applied.send(());
            }
            Command::SetKnownValidators(set) => {
                self.known_validators = set.map(|v| v.into_iter().collect());
            }
            Command::Shutdown => {}
        }
    }

    fn add_hint(&mut self, target: Target, addrs: Vec<Multiaddr>) {
        match target {
            Target::Peer(peer) => {
                for addr in addrs {
                    let addr = match split_p2p(&addr) {
                        Some((p, _)) if p != peer => {
                            warn!(%peer, %addr, "address hint names another peer; ignored");
                            continue;
                        }
                        Some((_, a)) => a,
                        None => addr,
                    };
                    self.add_peer_hint(peer, addr);
                }
            }
            Target::Identity(identity) => {
                for addr in addrs {
                    if let Some((peer, a)) = split_p2p(&addr) {
                        self.add_peer_hint(peer, a);
                    }
                    let list = self.identity_hints.entry(identity.clone()).or_default();
                    if !list.contains(&addr) && list.len() < MAX_HINTS {
                        list.push(addr);
                    }
                }
            }
        }
    }

    /// A verified record learnt earlier, else the identity's binding.
    fn route(&self, identity: &[u8]) -> Option<Route> {
        if let Some(rec) = self.known.get(identity) {
            return Some(Route {
                peer: rec.peer_id,
                addrs: rec.addresses.clone(),
                bound: false,
            });
        }
        self.bindings.get(identity).map(|(peer, addrs)| Route {
            peer: *peer,
            addrs: addrs.clone(),
            bound: true,
        })
    }

    fn bind(&mut self, identity: Vec<u8>, peer: PeerId, addrs: Vec<Multiaddr>) {
        if peer == self.local_peer {
            return;
        }
        let mut dial: Vec<Multiaddr> = Vec::new();
        for addr in addrs {
            let addr = match split_p2p(&addr) {
                Some((p, _)) if p != peer => {
                    debug!(%peer, %addr, "bound address names another peer; ignored");
                    continue;
                }
                Some((_, a)) => a,
                None => addr,
            };
            if !dial.contains(&addr) && dial.len() < MAX_HINTS {
                dial.push(addr);
            }
        }
        let binding = (peer, dial);
        if self.bindings.get(&identity) == Some(&binding) {
            return;
        }
        // New data from the binding's source supersedes a record found before it (the
        // validator may have moved); the record is found again if the binding fails.
        if self
            .known
            .get(&identity)
            .is_some_and(|r| r.peer_id != binding.0 || r.addresses != binding.1)
        {
            self.known.remove(&identity);
        }
        if self.bindings.len() >= MAX_BINDINGS
            && !self.bindings.contains_key(&identity)
            && let Some(victim) = self.bindings.keys().next().cloned()
        {
            self.bindings.remove(&victim);
        }
        self.bindings.insert(identity, binding);
    }

    fn add_peer_hint(&mut self, peer: PeerId, addr: Multiaddr) {
        if peer == self.local_peer {
            return;
        }
        let list = self.peer_hints.entry(peer).or_default();
        if list.contains(&addr) || list.len() >= MAX_HINTS {
            return;
        }
        list.push(addr.clone());
        self.swarm.add_peer_address(peer, addr.clone());
        self.swarm.behaviour_mut().kad.add_address(&peer, addr);
    }

    /// Addresses we advertise: configured external ones, then listen ones.
    fn advertised(&self) -> Vec<Multiaddr> {
        let mut out: Vec<Multiaddr> = Vec::new();
        for a in self.external.iter().chain(&self.listen_addrs) {
            let a = strip_p2p(a.clone());
            if !out.contains(&a) && out.len() < MAX_ADDRESSES {
                out.push(a);
            }
        }
        out
    }

    /// Current signed local record, re-signed when the addresses changed.
    fn local_record(&mut self) -> Option<Bytes> {
        let addrs = self.advertised();
        if let Some((rec, bytes)) = &self.local_record
            && rec.addresses == addrs
        {
            return Some(bytes.clone());
        }
        // Wall-clock based so that a restarted node outranks its old records.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let prev = self.local_record.as_ref().map_or(0, |(r, _)| r.sequence);
        let seq = now.max(prev.saturating_add(1));
        let built = AddressRecord::new_signed(self.signer.as_ref(), self.local_peer, addrs, seq)
            .and_then(|r| r.encode().map(|b| (r, Bytes::from(b))));
        match built {
            Ok((rec, bytes)) => {
                debug!(
                    sequence = seq,
                    addrs = rec.addresses.len(),
                    "signed local address record"
                );
                self.local_record = Some((rec, bytes.clone()));
                Some(bytes)
            }
            Err(e) => {
                warn!(error = %e, "cannot build local address record");
                None
            }
        }
    }

    fn publish(&mut self, reply: Option<Reply<()>>) {
        let Some(bytes) = self.local_record() else {
            if let Some(r) = reply {
                let _ = r.send(Err(NetError::Dht("cannot build local record".into())));
            }
            return;
        };
        self.published = true;
        let record = kad::Record::new(kad::RecordKey::new(&self.local_dht_key), bytes.to_vec());
        match self
            .swarm
            .behaviour_mut()
            .kad
            .put_record(record, kad::Quorum::One)
        {
            Ok(qid) => {
                if let Some(r) = reply {
                    self.puts.insert(qid, r);
                }
            }
            Err(e) => {
                warn!(error = %e, "cannot store local record");
                if let Some(r) = reply {
                    let _ = r.send(Err(NetError::Dht(e.to_string())));
                }
            }
        }
    }

    fn start_lookup(&mut self, identity: Vec<u8>, reply: Reply<AddressRecord>) {
        if let Some(qid) = self.lookup_by_identity.get(&identity)
            && let Some(state) = self.lookups.get_mut(qid)
        {
            state.waiters.push(reply);
            return;
        }
        let key = kad::RecordKey::new(&dht_key(&identity));
        let qid = self.swarm.behaviour_mut().kad.get_record(key);
        self.counters.dht_lookup();
        self.lookup_by_identity.insert(identity.clone(), qid);
        self.lookups.insert(
            qid,
            Lookup {
                identity,
                best: None,
                waiters: vec![reply],
            },
        );
    }

    /// Remembers a verified record and its addresses for dialing.
    fn learn(&mut self, record: AddressRecord) {
        if record.peer_id == self.local_peer {
            return;
        }
        if let Some(old) = self.known.get(&record.identity_public_key)
            && old.sequence > record.sequence
        {
            return;
        }
        for addr in &record.addresses {
            self.swarm.add_peer_address(record.peer_id, addr.clone());
        }
        self.known
            .insert(record.identity_public_key.clone(), record);
    }

    fn send_request(
        &mut self,
        peer: PeerId,
        mut addrs: Vec<Multiaddr>,
        body: Outbound,
        reply: Reply<WireResponse>,
    ) {
        if peer == self.local_peer {
            let _ = reply.send(Err(NetError::SelfTarget));
            return;
        }
        let sender_record = self.local_record();
        let request = match body {
            Outbound::Data {
                session,
                kind,
                payload,
            } => WireRequest::Data {
                session,
                kind,
                sender_record,
                payload,
            },
            Outbound::Hello => WireRequest::Hello { sender_record },
        };
        let size = request.encoded_len();
        if size > self.max_request {
            let _ = reply.send(Err(NetError::MessageTooLarge {
                size,
                max: self.max_request,
            }));
            return;
        }
        if let Some(hints) = self.peer_hints.get(&peer) {
            for h in hints {
                if !addrs.contains(h) {
                    addrs.push(h.clone());
                }
            }
        }
        let id = self
            .swarm
            .behaviour_mut()
            .rr
            .send_request_with_addresses(&peer, request, addrs);
        trace!(%peer, size, "request queued");
        self.requests.insert(id, (peer, reply));
    }

    // ----- inbound requests ----------------------------------------------

    /// Verifies a record presented by `peer` itself; returns its identity.
    fn attribute(&mut self, peer: PeerId, record: &Bytes) -> Option<Vec<u8>> {
        if let Some((bytes, identity)) = self.attributed.get(&peer)
            && bytes == record
        {
            return Some(identity.clone());
        }
        let expect = Expect {
            peer: Some(&peer),
            ..Expect::default()
        };
        match verify_record_bytes(record, expect, self.verifier.as_ref()) {
            Ok(rec) => {
                if self.attributed.len() >= MAX_ATTRIBUTIONS
                    && !self.attributed.contains_key(&peer)
                    && let Some(victim) = self.attributed.keys().next().copied()
                {
                    self.attributed.remove(&victim);
                }
                self.attributed
                    .insert(peer, (record.clone(), rec.identity_public_key.clone()));
                Some(rec.identity_public_key)
            }
            Err(e) => {
                debug!(%peer, error = %e, "ignoring invalid sender record");
                None
            }
        }
    }

    fn admission(&self, session: &SessionId, identity: Option<&[u8]>) -> Option<RemoteError> {
        match self.sessions.get(session) {
            Some(members) => match identity {
                Some(id) if members.contains(id) => None,
                _ => Some(RemoteError::NotMember),
            },
            None if self.reject_unlisted => Some(RemoteError::UnknownSession),
            None => None,
        }
    }

    fn respond(
        &mut self,
        channel: request_response::ResponseChannel<WireResponse>,
        response: WireResponse,
    ) {
        if self
            .swarm
            .behaviour_mut()
            .rr
            .send_response(channel, response)
            .is_err()
        {
            debug!("response dropped: inbound stream already closed");
        }
    }

    fn on_inbound(
        &mut self,
        peer: PeerId,
        request: WireRequest,
        channel: request_response::ResponseChannel<WireResponse>,
    ) {
        match request {
            WireRequest::Hello { sender_record } => {
                if let Some(r) = &sender_record {
                    self.attribute(peer, r);
                }
                let response = match self.local_record() {
                    Some(bytes) => WireResponse::ok(bytes.to_vec()),
                    None => WireResponse::error(RemoteError::NoReply),
                };
                self.respond(channel, response);
            }
            WireRequest::Data {
                session,
                kind,
                sender_record,
                payload,
            } => {
                let from_identity = sender_record.and_then(|r| self.attribute(peer, &r));
                let oversized = match kind {
                    BEACON_PARTIAL_KIND => payload.len() > MAX_BEACON_PAYLOAD,
                    SIGN_REQUEST_KIND => payload.len() > MAX_SIGN_PAYLOAD,
                    SECTIONS_MESSAGE_KIND => payload.len() > MAX_SECTIONS_PAYLOAD,
                    SECTIONS_JOIN_KIND => payload.len() > MAX_SECTIONS_JOIN_PAYLOAD,
                    BEACON_SYNC_KIND => payload.len() > MAX_SYNC_REQUEST,
                    crate::FROST_KIND => payload.len() > crate::MAX_FROST_PAYLOAD,
                    _ => false,
                };
                let reason = if oversized {
                    Some(RemoteError::Malformed)
                } else {
                    self.admission(&session, from_identity.as_deref())
                };
                if let Some(reason) = reason {
                    info!(
                        %peer,
                        session = %short_hex(&session),
                        kind,
                        identified = from_identity.is_some(),
                        %reason,
                        "request rejected"
                    );
                    self.respond(channel, WireResponse::error(reason));
                    let _ = self.events.try_send(NetEvent::Rejected {
                        from: peer,
                        from_identity,
                        session,
                        kind,
                        reason,
                    });
                    return;
                }
                debug!(%peer, session = %short_hex(&session), kind, len = payload.len(), "request received");
                let (tx, rx) = oneshot::channel();
                let event = NetEvent::Request {
                    from: peer,
                    from_identity,
                    session,
                    kind,
                    payload: Vec::from(payload),
                    reply: tx,
                };
                match self.events.try_send(event) {
                    Ok(()) => {
                        let timeout = self.request_timeout;
                        self.replies.push(Box::pin(async move {
                            let reply = tokio::time::timeout(timeout, rx)
                                .await
                                .ok()
                                .and_then(Result::ok);
                            (channel, peer, reply)
                        }));
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        warn!(%peer, "event queue full; answering busy");
                        self.respond(channel, WireResponse::error(RemoteError::Busy));
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        self.respond(channel, WireResponse::error(RemoteError::NoReply));
                    }
                }
            }
        }
    }

    fn on_app_reply(
        &mut self,
        channel: request_response::ResponseChannel<WireResponse>,
        peer: PeerId,
        reply: Option<Vec<u8>>,
    ) {
        let response = match reply {
            Some(bytes) if 1 + bytes.len() > self.max_response => {
                warn!(%peer, len = bytes.len(), max = self.max_response, "reply exceeds response limit");
                WireResponse::error(RemoteError::ResponseTooLarge)
            }
            Some(bytes) => WireResponse::ok(bytes),
            None => WireResponse::error(RemoteError::NoReply),
        };
        self.respond(channel, response);
    }

    // ----- swarm events ---------------------------------------------------

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => self.on_identify(e),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => self.on_kad(e),
            SwarmEvent::Behaviour(BehaviourEvent::Rr(e)) => self.on_rr(e),
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                if !self.listen_addrs.contains(&address) {
                    self.listen_addrs.push(address);
                }
                for w in self.listen_waiters.drain(..) {
                    let _ = w.send(self.listen_addrs.clone());
                }
                if self.published {
                    self.publish(None);
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| *a != address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
                if let Some(reply) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, cause, .. } => {
                debug!(peer = %peer_id, cause = ?cause, "connection closed");
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                debug!(peer = ?peer_id, error = %error, "dial failed");
                if let Some(reply) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Err(NetError::Dial {
                        target: peer_id.map_or_else(|| "unknown peer".into(), |p| p.to_string()),
                        reason: error.to_string(),
                    }));
                }
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                debug!(error = %error, "incoming connection failed");
            }
            _ => {}
        }
    }

    fn on_identify(&mut self, event: identify::Event) {
        if let identify::Event::Received { peer_id, info, .. } = event
            && info.protocols.contains(&KAD_PROTOCOL)
        {
            for addr in info.listen_addrs {
                self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
            }
        }
    }

    fn on_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::PutRecord {
                        source,
                        record: Some(record),
                        ..
                    },
            } => self.on_inbound_put(source, record),
            kad::Event::OutboundQueryProgressed {
                id, result, step, ..
            } => match result {
                kad::QueryResult::GetRecord(res) => self.on_get_record(id, res, step.last),
                kad::QueryResult::PutRecord(res) => {
                    let outcome = res.map(|_| ()).map_err(|e| NetError::Dht(e.to_string()));
                    match &outcome {
                        Ok(()) => debug!("address record published"),
                        Err(e) => debug!(error = %e, "address record publication failed"),
                    }
                    if let Some(reply) = self.puts.remove(&id) {
                        let _ = reply.send(outcome);
                    }
                }
                kad::QueryResult::RepublishRecord(Err(e)) => {
                    debug!(error = %e, "record republication failed");
                }
                kad::QueryResult::Bootstrap(res) => {
                    trace!(ok = res.is_ok(), "kad bootstrap step");
                }
                _ => {}
            },
            kad::Event::RoutingUpdated { peer, .. } => trace!(%peer, "routing table updated"),
            _ => {}
        }
    }

    /// DHT storage filter: only valid, non-stale records are kept.
    fn on_inbound_put(&mut self, source: PeerId, record: kad::Record) {
        let parsed = match verify_record_bytes(
            &record.value,
            Expect {
                dht_key: Some(record.key.as_ref()),
                ..Expect::default()
            },
            self.verifier.as_ref(),
        ) {
            Ok(r) => r,
            Err(e) => {
                debug!(%source, error = %e, "refusing to store invalid address record");
                return;
            }
        };
        if let Some(allowed) = &self.known_validators
            && !allowed.contains(&parsed.identity_public_key)
        {
            debug!(%source, "refusing to store record of an unknown validator");
            return;
        }
        let store = self.swarm.behaviour_mut().kad.store_mut();
        if let Some(existing) = store.get(&record.key)
            && let Ok(old) = AddressRecord::decode(&existing.value)
            && old.sequence >= parsed.sequence
        {
            trace!(%source, "ignoring stale address record");
            return;
        }
        if let Err(e) = store.put(record) {
            warn!(%source, error = %e, "cannot store address record");
        }
    }

    fn on_get_record(&mut self, id: kad::QueryId, res: kad::GetRecordResult, last: bool) {
        let Some(state) = self.lookups.get_mut(&id) else {
            return;
        };
        let mut timed_out = false;
        match res {
            Ok(kad::GetRecordOk::FoundRecord(found)) => {
                let key = dht_key(&state.identity);
                let expect = Expect {
                    dht_key: Some(&key),
                    identity: Some(&state.identity),
                    peer: None,
                };
                if found.record.key.as_ref() != key.as_slice() {
                    debug!(source = ?found.peer, "dht returned a record for another key");
                } else {
                    match verify_record_bytes(&found.record.value, expect, self.verifier.as_ref()) {
                        Ok(rec) => {
                            if state
                                .best
                                .as_ref()
                                .is_none_or(|b| rec.sequence > b.sequence)
                            {
                                state.best = Some(rec);
                            }
                        }
                        Err(e) => {
                            debug!(source = ?found.peer, error = %e, "ignoring invalid address record");
                        }
                    }
                }
            }
            Ok(kad::GetRecordOk::FinishedWithNoAdditionalRecord { .. }) => {}
            Err(kad::GetRecordError::Timeout { .. }) => timed_out = true,
            Err(_) => {}
        }
        if !last {
            return;
        }
        let Some(state) = self.lookups.remove(&id) else {
            return;
        };
        self.lookup_by_identity.remove(&state.identity);
        let outcome = match state.best {
            Some(rec) => {
                debug!(peer = %rec.peer_id, sequence = rec.sequence, "identity resolved");
                self.learn(rec.clone());
                Ok(rec)
            }
            None if timed_out => Err(NetError::Dht("lookup timed out".into())),
            None => Err(NetError::NotFound),
        };
        for w in state.waiters {
            let _ = w.send(outcome.clone());
        }
    }

    fn on_rr(&mut self, event: request_response::Event<WireRequest, WireResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.on_inbound(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((_, reply)) = self.requests.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                debug!(%peer, error = %error, "request failed");
                if let Some((_, reply)) = self.requests.remove(&request_id) {
                    let _ = reply.send(Err(map_outbound(peer, error)));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, error = %error, "inbound request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}

fn map_outbound(peer: PeerId, error: OutboundFailure) -> NetError {
    match error {
        OutboundFailure::DialFailure => NetError::Dial {
            target: peer.to_string(),
            reason: "no address could be dialed".into(),
        },
        OutboundFailure::Timeout => NetError::Timeout,
        OutboundFailure::ConnectionClosed => NetError::ConnectionClosed { peer },
        OutboundFailure::UnsupportedProtocols => NetError::UnsupportedProtocol { peer },
        OutboundFailure::Io(e) => NetError::Stream {
            peer,
            reason: e.to_string(),
        },
    }
}

/// Fails when another socket listens on `listen`'s TCP port already. libp2p's TCP transport
/// binds its listeners with `SO_REUSEPORT` (so that outgoing connections can use the listening
/// port), and the kernel then lets a second node of the same user listen on the same port and
/// splits the incoming connections between the two. A plain bind first, which no listener
/// shares its port with, turns that into the "address in use" it is. A port of 0 (any free
/// port) and addresses that are not plain TCP (`/dns`) are left to libp2p. Two nodes started at
/// the same instant can still both pass the check before either listens.
fn refuse_shared_port(listen: &Multiaddr) -> Result<(), NetError> {
    use libp2p::multiaddr::Protocol;
    let mut ip = None;
    let mut port = None;
    for p in listen.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(std::net::IpAddr::V6(a)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    let (Some(ip), Some(port)) = (ip, port) else {
        return Ok(());
    };
    if port == 0 {
        return Ok(());
    }
    // As libp2p binds it (address reuse, IPv6 only for an IPv6 address, so that a dual-stack
    // `::` does not collide with an IPv4 listener), less the port reuse.
    let probe = || -> std::io::Result<()> {
        use socket2::{Domain, Socket, Type};
        let addr = std::net::SocketAddr::new(ip, port);
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())
    };
    probe().map_err(|e| NetError::Listen {
        addr: listen.to_string(),
        reason: e.to_string(),
    })
}

/// An error's message followed by those of its sources, skipping empty ones: libp2p's
/// `TransportError::Other` displays as nothing and keeps the OS error (such as "Address
/// already in use") only as its source.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    if parts.is_empty() {
        format!("{e:?}")
    } else {
        parts.join(": ")
    }
}
