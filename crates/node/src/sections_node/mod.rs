//! A sections node on the network: the I/O around [`keyquorum_sections`]'s coordinator.
//!
//! The protocol (signed starts, the DKG among candidates, failure agreement, handover, the key
//! chain) is all in `keyquorum-sections`; this module only feeds it and carries what it emits:
//! - **Transport.** Section messages ([`Message`]) travel as requests of kind
//!   [`keyquorum_net::SECTIONS_MESSAGE_KIND`] over `keyquorum-net` (libp2p, Noise). A node's
//!   network identity is its section node key ([`identity`]), so the transport proves the
//!   sender's node key, and its [`Name`] is the authenticated `from` the coordinator takes. A
//!   request from a peer that proved no identity is not answered; a start or a failure
//!   observation whose signer is not the sender is dropped here. Sizes are bounded by the
//!   network layer, encodings by [`Message::decode`], everything else by the coordinator
//!   (superseded sessions included).
//! - **Storage.** Every input goes through [`PersistentCoordinator`] over the node's redb
//!   [`SectionsStore`] (logged before it is taken), so a restarted node replays its sessions and
//!   sends again what they emitted. The members it knows and the last signed SAP are stored
//!   beside.
//! - **Time.** A DKG round ends at a deadline this module passes in: every `round` after the
//!   session started here, at most [`MAX_ROUNDS`] + [`START_GRACE`] + [`VOTE_SLACK`] + 2
//!   times.
//! - **Order.** A message for a session this node does not know yet (a candidate's first DKG
//!   messages can overtake the elders' signed starts), or for the next generation, is kept
//!   ([`MAX_EARLY`] at most) and offered again when a session starts or a SAP applies.
//! - **Membership.** A node joins by asking a bootstrap peer for the section ([`join`]),
//!   checking the key chain from the genesis key it was given, and asking each elder to admit
//!   it; it leaves by asking each elder to remove it ([`leave`]). An elder that admits or
//!   removes a member, applies a SAP, or checks a failure agreement computes the starts its
//!   members call for ([`next_starts`](keyquorum_sections::elders::next_starts): one per half at a split, one if the elders change) and
//!   signs and sends each once. Every member has the same age ([`MEMBER_AGE`]), so the
//!   selection is by name among the members an elder knows. An elder admits at most
//!   [`SectionsNodeConfig::max_members`] members under its prefix
//!   ([`admit`]). A node learns members from the SAPs it applies and the joiners that ask it;
//!   so that every elder selects from the members the others know, a node that applies a SAP
//!   listing it as an elder, or that restarts as an elder, asks each other elder of the SAP
//!   for its members ([`join::Request::Members`], answered only to an elder of the answerer's
//!   SAP, by an elder or by an elder of the SAP before it). It takes a record once more elders
//!   listed it than the SAP tolerates faulty ([`MemberTally`]); after applying a SAP that
//!   directly succeeds the one it held, it also asks the outgoing SAP's elders under its
//!   prefix, once, and takes a record once more of them listed it than their SAP tolerated
//!   faulty (members only they admitted are known to no current elder);
//!   it adds a record if it is under its prefix with a valid proof of
//!   possession, of a name it did not know and not of a member that left through it (its
//!   `"departed"` names). It drops its members that as many elders report departed (a leave
//!   it missed), but for the members it admitted within the last 30 s; then it selects again
//!   (`Runtime::on_members`).
//! - **Absent members.** The non-participants of a failure agreement, as an elder checked it or
//!   a candidate formed it (unless, as an elder, it signed another start at the same attempt
//!   naming them: [`StartSigner::observe`]), are recorded ([`keyquorum_sections::absence`]), stored
//!   (`"absentees"`) and skipped by every later selection until each sends the elders its own
//!   statement that it runs at a later generation ([`join::Request::Alive`]). A node sends it
//!   at start after a restart, at every SAP it applies, and every [`ALIVE_EVERY`] while it is
//!   not an elder; an elder keeps one statement per member for a generation it has not reached
//!   and applies it when it does, takes one per member per [`ALIVE_MIN_GAP`], and stores the
//!   record only when it changed.
//! - **Splits.** A parent elder exchanges link partials with the parent's elders
//!   ([`Coordinator::handover_parent`]) even after it applied its own half's SAP, and sends
//!   each half's signed SAP to that half's members; each node applies the half its name is in.
//!   While the split is open ([`Coordinator::open_split`]), it keeps the other half's members,
//!   from which it signs that half's start, also across SAPs of its own half.
//! - **Catch-up.** A node that missed handovers (down, or cut off) learns the section moved on
//!   by asking: at start and every [`CATCH_UP_EVERY`] (sooner, at most every [`CATCH_UP_SOON`],
//!   when a message of a newer generation or a SAP on a key it does not hold arrives from an
//!   elder of its SAP or a member under its prefix, each such peer at most once per
//!   [`CATCH_UP_EVERY`]), it sends
//!   the join protocol's query ([`join::Request::Query`]) to [`CATCH_UP_FAN_OUT`] peers in turn
//!   ([`catch_up_targets`]: its SAP's elders, then the members it knows under its prefix), and
//!   to its `--bootstrap` peers (after a split it missed, the peers it knows may all be of the
//!   other half, whose answers it cannot take: it warns once, and a bootstrap peer of its own
//!   half brings it on).
//!   Answers are bounded by the network layer and decoded canonically
//!   ([`join::QueryAnswer::decode`]); the coordinator takes one only if its chain extends ours,
//!   checked link by link from our newest key, and its signed SAP verifies under the last key
//!   and holds our name ([`Coordinator::catch_up`]). It is then stored and served like a
//!   handed-over SAP: the record and the signed SAP in one write, once the coordinator has
//!   verified the SAP's two signatures ([`ElderStore::save_section`]).
//!
//! What this runtime does not do (see "Sections on the network" in `docs/protocol.md`): no
//! member agreement beyond each elder's own list and the lists a new elder asks for (elders
//! with different lists sign different starts, and none starts until their lists agree again,
//! which the exchange brings about at a SAP, a restart or the periodic ask), and no detection of members gone
//! without leaving until a DKG needs them: only a failure agreement makes a member absent, and
//! only the elders and candidates that saw it hold it (a later elder that did not selects the
//! member and signs a start the others do not; none starts until their records agree). A node that caught up learns the current SAP and key chain, not the
//! members that joined meanwhile unless that SAP lists it as an elder, nor a share of a key
//! whose DKG it missed.

pub mod http;
pub mod identity;
pub mod join;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use blstrs::Scalar;
use keyquorum_crypto::secret::Secret;
pub use keyquorum_net::Multiaddr;
use keyquorum_net::libp2p::PeerId;
pub use keyquorum_net::libp2p::multiaddr::Protocol;
use keyquorum_net::{NetConfig, NetEvent, Network, NetworkHandle, RetryPolicy, Target};
use keyquorum_sections::absence::{Absentees, AliveStatement, Taken};
use keyquorum_sections::catch_up::CatchUpError;
use keyquorum_sections::catch_up::{self, SectionAnswer};
pub use keyquorum_sections::catch_up::{CATCH_UP_FAN_OUT, catch_up_targets};
use keyquorum_sections::coordinator::{Coordinator, Dropped, OpenSplit, Output};
use keyquorum_sections::dkg::{MAX_ROUNDS, START_GRACE, VOTE_SLACK};
use keyquorum_sections::elders::{
    AdmitError, Member, Peer, SectionParams, StartSigner, admit, admit_all,
};
use keyquorum_sections::keys::{PublicKey, key_bytes};
use keyquorum_sections::member_lists::MemberTally;
use keyquorum_sections::routing::{self, Delivery};
use keyquorum_sections::sap::{self, Sap, SignedSap};
use keyquorum_sections::session::SessionId;
use keyquorum_sections::store::{ElderStore, LoggedInput, PersistError, PersistentCoordinator};
use keyquorum_sections::wire::Message;
use keyquorum_sections::{KeyChain, Name, Prefix};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::keys::NodeKeys;
use crate::repeat_log::RepeatLog;
use crate::sections_store::{MAX_DEPARTED, SectionsStore, SectionsStoreError};
use http::SectionView;
use identity::{SectionRecordSigner, SectionRecordVerifier, name_of_identity, section_node_key};

/// The age every member gets: ages are not agreed on the network yet, so all are equal and
/// elders are chosen by name.
pub const MEMBER_AGE: u8 = 1;

/// Most early messages kept for sessions not known yet.
pub const MAX_EARLY: usize = 1024;

/// How often a node asks peers for their section record, to catch up with handovers it missed
/// (it also asks at start).
pub const CATCH_UP_EVERY: Duration = Duration::from_secs(20);

/// Shortest time between two asks for the section record when messages from a newer generation
/// call for one sooner than [`CATCH_UP_EVERY`].
pub const CATCH_UP_SOON: Duration = Duration::from_secs(2);

/// How long after a handover's partials went out a node sends again its SAP and link partials
/// of handovers not complete here
/// ([`Coordinator::partials_to_resend`](keyquorum_sections::coordinator::Coordinator::partials_to_resend)):
/// the network gives up on a peer after its retries, and a handover short of a lost partial
/// would otherwise wait for the next elder change. The wait doubles after each time, up to
/// [`RESEND_PARTIALS_AT_MOST_EVERY`], and starts again once nothing is left to send: every
/// receiver logs what it takes, duplicates included, so a handover that stays stuck must not
/// grow the logs at this pace.
pub const RESEND_PARTIALS_EVERY: Duration = Duration::from_secs(10);

/// The longest wait between two sends of the same partials ([`RESEND_PARTIALS_EVERY`]).
pub const RESEND_PARTIALS_AT_MOST_EVERY: Duration = Duration::from_secs(600);

/// How often a member that is not an elder sends its alive statement again (it also sends it
/// at every SAP it applies): an elder that refused it, or missed it, or has not reached its
/// generation yet takes it then.
pub const ALIVE_EVERY: Duration = Duration::from_secs(5);

/// Shortest time between two alive statements an elder takes from one member; sooner ones
/// are refused before any signature check or write.
pub const ALIVE_MIN_GAP: Duration = Duration::from_secs(1);

/// Configuration of a sections node.
#[derive(Clone, Debug)]
pub struct SectionsNodeConfig {
    /// Where the node's database and `key_chain.json` live.
    pub data_dir: PathBuf,
    /// libp2p listen address; also the address the node advertises in its SAP entry, so it
    /// must be reachable by the other nodes (not `0.0.0.0`).
    pub listen: Multiaddr,
    /// Bootstrap peers (multiaddrs ending in `/p2p/<peer id>`); none for the genesis node.
    pub bootstrap: Vec<Multiaddr>,
    /// The genesis key a joining node checks the section's key chain from (required to join;
    /// the genesis node draws it, a restarted node has it stored).
    pub genesis_key: Option<PublicKey>,
    /// Address of `GET /sections`.
    pub http_listen: SocketAddr,
    /// Length of one DKG round.
    pub round: Duration,
    /// Elder count and minimum split size; the same at every node of the network.
    pub params: SectionParams,
    /// Most members this node, as an elder, admits to its section
    /// ([`keyquorum_sections::elders::admit`]).
    pub max_members: usize,
}

/// Why a sections node stopped.
#[derive(Debug, thiserror::Error)]
pub enum SectionsNodeError {
    /// The store failed.
    #[error("sections store: {0}")]
    Store(#[from] SectionsStoreError),
    /// The network failed to start.
    #[error("network: {0}")]
    Net(#[from] keyquorum_net::NetError),
    /// The HTTP endpoint could not listen.
    #[error("{0}")]
    Listen(#[from] crate::status::ListenError),
    /// The configuration cannot work.
    #[error("configuration: {0}")]
    Config(String),
    /// The flags contradict each other or the data directory (a usage error).
    #[error("{0}")]
    Usage(String),
    /// Joining failed.
    #[error("join: {0}")]
    Join(String),
    /// Leaving was refused (no section to leave, or a leave that would stall it).
    #[error("leave: {0}")]
    Leave(String),
    /// No elder admitted the joiner: what they answered ([`join::Admission::failure`]).
    #[error("join: {}", .0.failure().unwrap_or_default())]
    NotAdmitted(join::Admission),
    /// The stored state does not restore.
    #[error("restore: {0}")]
    Restore(String),
}

/// Runs a sections node until `shutdown` resolves.
///
/// A start that fails before the node recorded a section (a usage error, a refused or failed
/// join), or a joiner that no elder admitted, leaves no store behind in a data directory that had none: the directory is as it was,
/// or removed again if this start created it and it is empty.
pub async fn run(
    config: SectionsNodeConfig,
    keys: Arc<NodeKeys>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), SectionsNodeError> {
    let db = config.data_dir.join("sections.redb");
    let dir_existed = config.data_dir.exists();
    let db_existed = db.exists();
    let data_dir = config.data_dir.clone();
    let result = run_in(config, keys.clone(), shutdown).await;
    // A joiner no elder admitted, and none selected, recorded the section it asked but is no
    // member of it: its state is of no use, whoever created the store.
    let not_admitted = matches!(result, Err(SectionsNodeError::NotAdmitted(_)));
    if result.is_err() && (not_admitted || !db_existed) && db.exists() {
        let recorded = !not_admitted
            && SectionsStore::open(&db, keys)
                .and_then(|s| s.load().map(|r| r.is_some()))
                .unwrap_or(true);
        if !recorded {
            let _ = std::fs::remove_file(&db);
            let _ = std::fs::remove_file(data_dir.join("key_chain.json"));
            if !dir_existed {
                // Only if empty: anything else in it is not this start's to remove.
                let _ = std::fs::remove_dir(&data_dir);
            }
        }
    }
    result
}

/// Refuses a data directory whose `key_chain.json` outlived its `sections.redb`: the database
/// of an earlier run was lost or moved, and starting without it would draw a new genesis key
/// (or join as a new member) under the same identity, beside the old network's chain file.
fn refuse_lost_database(data_dir: &std::path::Path) -> Result<(), SectionsNodeError> {
    let chain_file = data_dir.join("key_chain.json");
    if chain_file.exists() && !data_dir.join("sections.redb").exists() {
        return Err(SectionsNodeError::Config(format!(
            "{} holds key_chain.json of an earlier run but no sections.redb: its database was \
             lost or moved. Restore sections.redb, or start the node in a new data directory \
             (it then joins again as a new member)",
            data_dir.display()
        )));
    }
    Ok(())
}

async fn run_in(
    config: SectionsNodeConfig,
    keys: Arc<NodeKeys>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), SectionsNodeError> {
    keyquorum_devchain::data_dir::create(&config.data_dir)
        .map_err(|reason| SectionsNodeError::Config(format!("data directory: {reason}")))?;
    refuse_lost_database(&config.data_dir)?;
    let node_key = section_node_key(&keys);
    let store = SectionsStore::open(&config.data_dir.join("sections.redb"), keys.clone())?;
    if store.has_left()? {
        return Err(SectionsNodeError::Usage(
            "this node left its section (`keyquorum sections leave`): its data directory is of \
             no further use; start a new node in a new data directory"
                .into(),
        ));
    }
    let peer_id = keys.peer_id();
    let addr = advertised(&config.listen, peer_id)?;
    let our_peer = Peer::new(&node_key, addr.to_string());
    let (net, events) = Network::new(net_config(&keys, node_key.clone(), &config))?;

    let stored = match store.load()? {
        Some((record, ..)) => {
            if let Some(given) = &config.genesis_key
                && *given != record.genesis_key
            {
                return Err(SectionsNodeError::Usage(format!(
                    "--genesis-key {} is not the genesis key of this data directory's network \
                     ({}); restart without it, or give this node another data directory",
                    hex::encode(key_bytes(given)),
                    hex::encode(key_bytes(&record.genesis_key))
                )));
            }
            true
        }
        None if config.bootstrap.is_empty() && config.genesis_key.is_some() => {
            return Err(SectionsNodeError::Usage(
                "--genesis-key without --bootstrap: a new node without --bootstrap starts a new \
                 network under a genesis key of its own; to join the network of that key, give \
                 --bootstrap with a peer of it"
                    .into(),
            ));
        }
        None => false,
    };
    // Recorded below, once the node has a section: a failed join records nothing.
    store.check_params(&join::NetworkParams::new(config.params, config.round))?;
    let mut join_to = Vec::new();
    let (coordinator, replay, members, signed) = if stored {
        let members = store.members()?;
        let signed = store.signed_sap()?;
        // Stopped while it asked to be admitted, and admitted by none: it asks again.
        let asking = store.admission_pending()?;
        let (coordinator, replay) = PersistentCoordinator::restore(node_key.clone(), store)
            .map_err(|e| SectionsNodeError::Restore(format!("{e:?}")))?;
        info!(
            generation = coordinator.coordinator().chain().key_count(),
            replayed = replay.len(),
            "sections state restored"
        );
        if asking {
            join_to = coordinator.coordinator().sap().elders.clone();
        }
        (coordinator, replay, members, signed)
    } else if config.bootstrap.is_empty() {
        let (sap, share) = sap::genesis(our_peer.clone(), &mut rand_core::OsRng);
        let genesis_key = sap.section_key;
        let signed = SignedSap::genesis(&sap, &share);
        let coordinator = Coordinator::new(
            node_key.clone(),
            genesis_key,
            KeyChain::genesis(),
            sap,
            Some(share),
        )
        .map_err(|e| SectionsNodeError::Config(e.to_string()))?;
        let members = vec![Member {
            peer: our_peer.clone(),
            age: MEMBER_AGE,
        }];
        store.save_members(&members)?;
        store.save_signed_sap(&signed)?;
        let coordinator = PersistentCoordinator::create(coordinator, store)
            .map_err(|e| SectionsNodeError::Restore(format!("{e:?}")))?;
        info!(genesis_key = %hex::encode(key_bytes(&genesis_key)), "genesis section key drawn");
        (coordinator, Vec::new(), members, Some(signed))
    } else {
        let genesis_key = config.genesis_key.ok_or_else(|| {
            SectionsNodeError::Usage(
                "--bootstrap needs --genesis-key to join: a joiner accepts only the network of \
                 that key (a node restarted on its data directory has it stored)"
                    .into(),
            )
        })?;
        let (record, signed) = join::query_section(
            &net,
            &config.bootstrap,
            &genesis_key,
            &join::NetworkParams::new(config.params, config.round),
            &our_peer.name(),
        )
        .await?;
        let coordinator = Coordinator::new(
            node_key.clone(),
            genesis_key,
            record.chain,
            record.sap,
            None,
        )
        .map_err(|e| SectionsNodeError::Join(e.to_string()))?;
        // After a split the bootstrap peer may serve the other half: its elders would refuse
        // us, so say so instead of waiting on them.
        if !coordinator.sap().prefix.matches(&our_peer.name()) {
            return Err(SectionsNodeError::Join(
                "the bootstrap peer's section does not hold our name: bootstrap from a node of \
                 our own section"
                    .into(),
            ));
        }
        let mut members: Vec<Member> = coordinator
            .sap()
            .elders
            .iter()
            .map(|p| Member {
                peer: p.clone(),
                age: MEMBER_AGE,
            })
            .collect();
        members.push(Member {
            peer: our_peer.clone(),
            age: MEMBER_AGE,
        });
        store.save_members(&members)?;
        if let Some(s) = &signed {
            store.save_signed_sap(s)?;
        }
        join_to = coordinator.sap().elders.clone();
        store.set_admission_pending(true)?;
        let coordinator = PersistentCoordinator::create(coordinator, store)
            .map_err(|e| SectionsNodeError::Restore(format!("{e:?}")))?;
        (coordinator, Vec::new(), members, signed)
    };

    coordinator
        .store()
        .bind_params(&join::NetworkParams::new(config.params, config.round))?;
    let absentees = coordinator.store().absentees()?;
    let departed = coordinator.store().departed()?;
    let mut rt = Runtime::new(
        coordinator,
        members,
        signed,
        (absentees, departed),
        net.clone(),
        (node_key.clone(), our_peer.clone()),
        &config,
    );
    let (bound, _http) = http::serve(config.http_listen, rt.view.subscribe()).await?;
    info!(name = %hex::encode(rt.our_name.0), http = %bound, p2p = %addr, "sections node running");
    for output in replay {
        rt.route(output)?;
    }
    // A run rebuilt from the log's late-run entry announced no start: arm its deadlines too,
    // so that it asks again if the answers to its requests are lost.
    if let Some(session) = rt.coordinator.coordinator().late_run().map(|s| s.session) {
        rt.deadlines
            .entry(session)
            .or_insert((Instant::now() + rt.round, 0));
    }
    rt.drain()?;
    // A restarted node may have been named by a failure agreement while it was down: it says
    // it runs, so that the elders select it again once it has caught up.
    if stored {
        rt.announce_alive(true);
        // An elder stopped before the other elders' member lists reached it asks again.
        rt.ask_members();
    }
    let admission = (!join_to.is_empty()).then(|| {
        tokio::spawn(join::ask_admission(
            net.clone(),
            our_peer,
            join::NetworkParams::new(config.params, config.round),
            join_to,
        ))
    });
    // An elder after a restart: re-sign and resend the start its members call for.
    rt.elect()?;
    rt.publish();
    let result = rt.run(events, admission, shutdown).await;
    net.shutdown().await;
    result
}

/// What [`leave`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Left {
    /// The other elders of the stored SAP, all asked.
    pub asked: usize,
    /// What they answered.
    pub removal: join::Removal,
    /// The data directory had left before: this was a second ask.
    pub again: bool,
}

/// Leaves the section of the node whose stored state is in `data_dir` (the node itself must be
/// stopped): asks every other elder of its SAP to remove it from the members, from an ephemeral
/// loopback port under the node's identity. Returns what they answered ([`Left`]).
/// The data directory is of no further use: a restarted node would not be a member.
///
/// An elder whose departure leaves its SAP's other elders fewer than the supermajority a start
/// needs (a section of three elders or fewer) is refused unless `force`: those elders could
/// sign no start again, so the section would stall for good.
pub async fn leave(
    data_dir: &std::path::Path,
    keys: Arc<NodeKeys>,
    force: bool,
) -> Result<Left, SectionsNodeError> {
    let node_key = section_node_key(&keys);
    let our_name = Name::of(&keyquorum_crypto::tbls::public_key::<
        keyquorum_crypto::tbls::MinPk,
    >(&node_key));
    let path = data_dir.join("sections.redb");
    if !path.exists() {
        return Err(SectionsNodeError::Config(format!(
            "no section state in {} (no sections.redb): is it a sections node's data directory?",
            data_dir.display()
        )));
    }
    let store = SectionsStore::open(&path, keys.clone())?;
    let Some((record, ..)) = store.load()? else {
        return Err(SectionsNodeError::Leave(
            "no section state in the data directory".into(),
        ));
    };
    let again = store.has_left()?;
    let all_elders = record.sap.elders.len();
    let elders: Vec<Peer> = record
        .sap
        .elders
        .into_iter()
        .filter(|p| p.name() != our_name)
        .collect();
    let needed = keyquorum_sections::session::supermajority(all_elders);
    if elders.len() < all_elders && elders.len() < needed && !force {
        return Err(SectionsNodeError::Leave(format!(
            "this node is one of its section's {all_elders} elders: without it the other {} \
             cannot sign a start (a supermajority of {all_elders} is {needed}), so the section \
             would stall for good. Run the node until the section has handed over to elders \
             without it (elders are the members with the lowest names, so that takes members \
             whose names sort below this node's), or leave with --force and accept the stall",
            elders.len()
        )));
    }
    let listen: Multiaddr = "/ip4/127.0.0.1/tcp/0"
        .parse()
        .map_err(|e| SectionsNodeError::Config(format!("{e}")))?;
    let mut c = NetConfig::new(
        keys.p2p().clone(),
        SectionRecordSigner(node_key),
        SectionRecordVerifier,
        listen,
    );
    c.request_timeout = Duration::from_secs(5);
    let (net, _events) = Network::new(c)?;
    let removal = join::ask_removal(&net, &elders).await;
    net.shutdown().await;
    if removal.removed > 0 || elders.is_empty() {
        store.mark_left()?;
    }
    Ok(Left {
        asked: elders.len(),
        removal,
        again,
    })
}

/// `listen` with `/p2p/<peer id>`: how the others dial this node.
fn advertised(listen: &Multiaddr, peer: PeerId) -> Result<Multiaddr, SectionsNodeError> {
    let unspecified = listen.iter().any(|p| match p {
        Protocol::Ip4(a) => a.is_unspecified(),
        Protocol::Ip6(a) => a.is_unspecified(),
        _ => false,
    });
    if unspecified || listen.iter().any(|p| matches!(p, Protocol::Tcp(0))) {
        return Err(SectionsNodeError::Config(
            "the listen address is advertised in the SAP: give a reachable IP and a fixed port"
                .into(),
        ));
    }
    Ok(listen.clone().with(Protocol::P2p(peer)))
}

fn net_config(keys: &NodeKeys, node_key: Secret<Scalar>, c: &SectionsNodeConfig) -> NetConfig {
    let mut n = NetConfig::new(
        keys.p2p().clone(),
        SectionRecordSigner(node_key),
        SectionRecordVerifier,
        c.listen.clone(),
    );
    n.bootstrap = c.bootstrap.clone();
    // A query's answer carries the key chain: 192 bytes a key.
    n.max_response_size = catch_up::MAX_ANSWER_LEN;
    n.request_timeout = Duration::from_secs(5);
    n.dht_query_timeout = Duration::from_secs(5);
    n.retry = RetryPolicy {
        attempts: 6,
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(2),
    };
    n
}

/// The peer id an address names (`/p2p/...`), if any.
pub fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

/// A peer's answer to a section query, decoded and checked against `ours` (genesis key, chain,
/// SAP and name when asked): the answer if it extends that chain ([`catch_up::extension`]),
/// `None` (logged) otherwise. Pure and possibly heavy (a long chain's links are verified one by
/// one), so it runs off the event loop.
fn screen_answer(
    ours: &(PublicKey, KeyChain, Sap, Name),
    peer: &str,
    bytes: &[u8],
    quiet: bool,
) -> Option<Screened> {
    let (genesis, chain, sap, name) = ours;
    // Most answers show a section no further than ours: seen from their first bytes, they are
    // not decoded (which checks every key and signature in them).
    if join::QueryAnswer::section_bytes(bytes)
        .is_ok_and(|section| catch_up::not_ahead(section, genesis, chain))
    {
        debug!(%peer, "section answer not ahead of ours (unread)");
        return None;
    }
    // The answering member's parameters are its own business here: catching up takes only
    // what the section key signed.
    let answer = match join::QueryAnswer::decode(bytes) {
        Ok(a) => a.section,
        Err(e) => {
            warn!(%peer, error = %e, "undecodable section answer refused");
            return None;
        }
    };
    match catch_up::extension(genesis, chain, sap, name, &answer) {
        Ok(Some(_)) => Some(Screened::Ahead(Box::new(answer))),
        Ok(None) => {
            debug!(%peer, "section answer not ahead of ours");
            None
        }
        // After a split, a member of the other half answers with its own branch.
        Err(CatchUpError::OtherBranch) => Some(Screened::OtherHalf(answer.record.sap.prefix)),
        Err(e) if quiet => {
            debug!(%peer, reason = %e, "section answer refused");
            None
        }
        Err(e) => {
            warn!(%peer, reason = %e, "section answer refused");
            None
        }
    }
}

/// A peer's answer to our catch-up query worth the runtime's attention.
#[derive(Debug)]
enum Screened {
    /// It extends our chain: for the coordinator to take.
    Ahead(Box<SectionAnswer>),
    /// It is of the other half of a split of our section (its prefix): we are behind, and
    /// this peer cannot bring us forward.
    OtherHalf(Prefix),
}

/// The peers of an elder's member list worth merging: under `prefix`, not `us`, not in
/// `known`, and with a valid proof of possession of their DKG keys (as an admission checks).
/// Pure and heavy (a pairing check per new peer), so it runs off the event loop.
fn screen_members(
    peers: Vec<Peer>,
    prefix: &Prefix,
    us: &Name,
    known: &BTreeSet<Name>,
) -> Vec<Peer> {
    peers
        .into_iter()
        .filter(|p| {
            let name = p.name();
            name != *us && prefix.matches(&name) && !known.contains(&name)
        })
        .filter(|p| {
            let valid = p.dkg.verify_pop();
            if !valid {
                warn!(name = %hex::encode(p.name().0), "member with an invalid proof of possession refused");
            }
            valid
        })
        .collect()
}

/// Whether a dropped message may be taken later: it is for a session not started here yet, or
/// for the next generation.
fn may_come_later(d: &Dropped) -> bool {
    matches!(
        d,
        Dropped::UnknownSession | Dropped::FutureGeneration { .. }
    )
}

/// The node key a message claims as its sender's, where it claims one.
fn claimed_signer(message: &Message) -> Option<&PublicKey> {
    match message {
        Message::Start { signature, .. } | Message::Failure { signature, .. } => {
            Some(&signature.signer)
        }
        _ => None,
    }
}

/// Whether `message` from the authenticated `from` may be taken: a start or a failure
/// observation must come from its signer (the others carry no claimed sender, or, as a
/// signed SAP, are checked by their signatures alone).
pub fn sender_matches(from: &Name, message: &Message) -> bool {
    claimed_signer(message).is_none_or(|k| Name::of(k) == *from)
}

/// Whether a node named `us` whose SAP is `sap`, having last sent its alive statement at
/// `last`, should send it again at `now`: every [`ALIVE_EVERY`] while it is not an elder (an
/// elder is selected already; a member held absent never is, and it cannot know which elders
/// hold it absent).
/// The wait before the next send of the partials after sending `partials` (none: the
/// handovers completed, and the next starts from the shortest wait).
fn next_resend_wait(wait: Duration, partials: &[Output]) -> Duration {
    if partials.is_empty() {
        RESEND_PARTIALS_EVERY
    } else {
        (wait * 2).min(RESEND_PARTIALS_AT_MOST_EVERY)
    }
}

fn alive_resend_due(sap: &Sap, us: &Name, last: Option<Instant>, now: Instant) -> bool {
    !sap.names().contains(us) && last.is_none_or(|at| now >= at + ALIVE_EVERY)
}

/// Drops the members not under `prefix` ([`members_prefix`]); returns whether any were.
fn keep_under(members: &mut Vec<Member>, prefix: &Prefix) -> bool {
    let before = members.len();
    members.retain(|m| prefix.matches(&m.peer.name()));
    members.len() != before
}

/// The prefix whose members a node keeps once a SAP replaced one of prefix `previous`: that
/// one, so the other half's members stay known through a split (a parent elder sends that half
/// its handover) and go at the next SAP, or, while a split of a key this node still signs for
/// is open (`open`, [`Coordinator::open_split`]), that key's, whose other half's start a parent
/// elder selects from them however many SAPs of its own half applied meanwhile. Either way the
/// list stays within the members of one parent section.
fn members_prefix(previous: Prefix, open: Option<&OpenSplit>) -> Prefix {
    match open {
        Some(open) if previous.is_self_or_descendant_of(&open.parent.prefix) => open.parent.prefix,
        _ => previous,
    }
}

/// How many of `members` the section of `sap` holds (after a split, a node still knows the
/// other half's members until the next SAP once the split is closed, to send them the handover
/// it signed).
/// The names (hex, ascending) of the members under `sap`'s prefix.
fn in_section(members: &[Member], sap: &keyquorum_sections::sap::Sap) -> Vec<String> {
    let names: BTreeSet<Name> = members
        .iter()
        .map(|m| m.peer.name())
        .filter(|name| sap.prefix.matches(name))
        .collect();
    names.iter().map(|name| hex::encode(name.0)).collect()
}

struct Runtime {
    our_name: Name,
    /// Signs our alive statements.
    node_key: Secret<Scalar>,
    /// When we last sent our alive statement, and the task sending it (one at a time).
    alive_sent: Option<Instant>,
    alive_task: Option<tokio::task::JoinHandle<()>>,
    /// When each member's alive statement was last taken ([`ALIVE_MIN_GAP`]).
    alive_limit: PeerRateLimit,
    coordinator: PersistentCoordinator<SectionsStore>,
    members: Vec<Member>,
    signed: Option<SignedSap>,
    /// Every peer known by name: members, elders, candidates.
    peers: BTreeMap<Name, Peer>,
    net: NetworkHandle,
    round: Duration,
    params: SectionParams,
    max_members: usize,
    /// Running sessions: next deadline and deadlines passed.
    deadlines: BTreeMap<SessionId, (Instant, u32)>,
    /// The members held absent, and the starts signed (each once).
    start_signer: StartSigner,
    early: VecDeque<(Name, Message)>,
    retry_early: bool,
    /// A failure agreement asks for a new selection.
    reselect: bool,
    local: VecDeque<Message>,
    view: watch::Sender<SectionView>,
    chain_file: PathBuf,
    /// Peers' answers to our queries for their section record, by the peer asked (its name,
    /// or the bootstrap address it was asked at).
    answers_tx: mpsc::Sender<(String, Screened)>,
    answers_rx: Option<mpsc::Receiver<(String, Screened)>>,
    /// The `--bootstrap` peers, asked besides the section's at the first catch-up and at the
    /// next one after an answer of the other half of a split (`catch_up_bootstrap_due`):
    /// after a split a member missed, every peer it knows may be of the other half. Not at
    /// every catch-up, which would have every node of the network ask one node for good.
    catch_up_bootstrap: Vec<Multiaddr>,
    catch_up_bootstrap_due: bool,
    /// The other half's prefix last warned about (once per prefix until we catch up).
    other_half_log: RepeatLog<Prefix>,
    /// Other elders' member lists, screened ([`screen_members`]), by the generation of the
    /// ask and the elder asked.
    members_tx: mpsc::Sender<MemberList>,
    members_rx: Option<mpsc::Receiver<MemberList>>,
    /// The listings of our last ask for member lists, and its tasks (aborted by the next ask).
    member_tally: Option<MemberTally>,
    /// The elders of the SAP before the current one, when this node applied the current one
    /// as its direct successor (empty after a restart or a catch-up over several SAPs): a new
    /// elder asks those under its prefix once, at its first ask after the SAP, since members
    /// only they admitted are known to none of the current elders ([`Runtime::ask_members`]);
    /// and one of them answers the new elders.
    outgoing_elders: Vec<Peer>,
    /// Whether [`Runtime::outgoing_elders`] was asked already for the current SAP.
    outgoing_asked: bool,
    /// The tally of the outgoing elders' lists, by their own fault bound.
    outgoing_tally: Option<MemberTally>,
    member_asks: Vec<tokio::task::JoinHandle<()>>,
    /// When to ask again even without a new SAP ([`MEMBERS_REFRESH_ROUNDS`]).
    members_ask_at: Instant,
    /// When we last admitted each member ([`ADMISSION_GRACE`]).
    admitted_at: BTreeMap<Name, Instant>,
    /// Members that left through us, oldest first (at most [`MAX_DEPARTED`]): another elder's
    /// list that still holds one does not bring it back.
    departed: VecDeque<Name>,
    /// When to ask peers for their section record next, when we last did, and how many times
    /// (which peers are next in turn).
    catch_up_at: Instant,
    catch_up_asked: Option<Instant>,
    catch_up_turn: usize,
    /// Who hastened an ask last, and when.
    catch_up_triggers: PeerRateLimit,
    /// When to send our unfinished handovers' partials again, and the wait after that
    /// ([`RESEND_PARTIALS_EVERY`]).
    resend_partials_at: Instant,
    resend_partials_wait: Duration,
}

/// Records `name` as the newest departed member, once, dropping the oldest past
/// [`MAX_DEPARTED`].
fn push_departed(departed: &mut VecDeque<Name>, name: Name) {
    departed.retain(|n| *n != name);
    if departed.len() >= MAX_DEPARTED {
        departed.pop_front();
    }
    departed.push_back(name);
}

/// An elder's answer, screened: the generation of the ask, the elder, the peers of its list new
/// to us and valid ([`screen_members`]), and the members it reports departed.
type MemberList = (u64, Name, Vec<Peer>, Vec<Name>);

/// How many DKG rounds an elder waits between two asks for the other elders' member lists
/// when no SAP made it ask (a minute at the default one-second round), and never less than
/// [`CATCH_UP_EVERY`]: the lists of elders that missed a join or a leave converge within that
/// even if the section cannot hand over. The floor bounds what a faulty elder's list costs
/// the others (a proof-of-possession check per unknown record) at short rounds.
const MEMBERS_REFRESH_ROUNDS: u32 = 60;

/// The wait between two periodic member-list asks for DKG rounds of `round`.
fn members_refresh(round: Duration) -> Duration {
    (round * MEMBERS_REFRESH_ROUNDS).max(CATCH_UP_EVERY)
}

/// How long a member this node admitted is kept even if the other elders' lists lack it: their
/// answers to an ask may predate the admissions the same joiner asked of them.
const ADMISSION_GRACE: Duration = Duration::from_secs(30);

/// Per known peer, when it last did something allowed once per `period` (hasten a catch-up,
/// have an alive statement taken); unknown peers never may.
#[derive(Debug)]
struct PeerRateLimit {
    period: Duration,
    last: BTreeMap<Name, Instant>,
}

impl PeerRateLimit {
    fn new(period: Duration) -> Self {
        PeerRateLimit {
            period,
            last: BTreeMap::new(),
        }
    }

    /// Whether `from` (`known`: in our section) may act at `now`; if so, remembers it.
    fn allow(&mut self, from: Name, known: bool, now: Instant) -> bool {
        if !known {
            return false;
        }
        if self
            .last
            .get(&from)
            .is_some_and(|at| now < *at + self.period)
        {
            return false;
        }
        // Known peers are bounded by the members; older entries no longer limit anyone.
        let period = self.period;
        self.last.retain(|_, at| now < *at + period);
        self.last.insert(from, now);
        true
    }
}

impl Runtime {
    fn new(
        coordinator: PersistentCoordinator<SectionsStore>,
        members: Vec<Member>,
        signed: Option<SignedSap>,
        (absentees, departed): (Absentees, Vec<Name>),
        net: NetworkHandle,
        (node_key, our_peer): (Secret<Scalar>, Peer),
        config: &SectionsNodeConfig,
    ) -> Self {
        let c = coordinator.coordinator();
        let view = SectionView::new(
            &our_peer.name(),
            c.our_share().is_some(),
            &c.record(),
            signed.as_ref(),
            in_section(&members, c.sap()),
        );
        let (answers_tx, answers_rx) = mpsc::channel(4 * CATCH_UP_FAN_OUT);
        // One list per other elder of a SAP, and a few SAPs' worth of asks.
        let (members_tx, members_rx) = mpsc::channel(4 * config.params.elder_count.max(1));
        let mut rt = Runtime {
            our_name: our_peer.name(),
            node_key,
            alive_sent: None,
            alive_task: None,
            alive_limit: PeerRateLimit::new(ALIVE_MIN_GAP),
            coordinator,
            members,
            signed,
            peers: BTreeMap::new(),
            net,
            round: config.round,
            params: config.params,
            max_members: config.max_members,
            deadlines: BTreeMap::new(),
            start_signer: StartSigner::with_absentees(absentees),
            early: VecDeque::new(),
            retry_early: false,
            reselect: false,
            local: VecDeque::new(),
            view: watch::channel(view).0,
            chain_file: config.data_dir.join("key_chain.json"),
            answers_tx,
            answers_rx: Some(answers_rx),
            catch_up_bootstrap: config.bootstrap.clone(),
            catch_up_bootstrap_due: true,
            other_half_log: RepeatLog::default(),
            members_tx,
            members_rx: Some(members_rx),
            member_tally: None,
            outgoing_elders: Vec::new(),
            outgoing_asked: false,
            outgoing_tally: None,
            member_asks: Vec::new(),
            members_ask_at: Instant::now() + members_refresh(config.round),
            admitted_at: BTreeMap::new(),
            departed: departed.into(),
            catch_up_at: Instant::now(),
            catch_up_asked: None,
            catch_up_turn: 0,
            catch_up_triggers: PeerRateLimit::new(CATCH_UP_EVERY),
            resend_partials_at: Instant::now() + RESEND_PARTIALS_EVERY,
            resend_partials_wait: RESEND_PARTIALS_EVERY,
        };
        rt.learn(our_peer);
        for m in rt.members.clone() {
            rt.learn(m.peer);
        }
        for p in rt.coordinator.coordinator().sap().elders.clone() {
            rt.learn(p);
        }
        rt
    }

    fn learn(&mut self, peer: Peer) {
        self.peers.insert(peer.name(), peer);
    }

    /// Runs until `shutdown`, or until `admission` (a joiner's requests to be admitted) ends
    /// with no elder that admitted it.
    async fn run(
        &mut self,
        mut events: mpsc::Receiver<NetEvent>,
        mut admission: Option<tokio::task::JoinHandle<join::Admission>>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), SectionsNodeError> {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let mut answers = self.answers_rx.take().expect("the runtime runs once");
        let mut member_lists = self.members_rx.take().expect("the runtime runs once");
        // The chain file holds what `/sections` serves from the start, not only after the
        // first change (a genesis node that never handed over would have none).
        self.write_chain_file();
        tokio::pin!(shutdown);
        loop {
            // A shutdown already asked for wins over whatever else is ready (select! picks
            // among ready branches at random): a joiner stopped while it asks must stop, not
            // take the answer that came in meanwhile.
            if futures::FutureExt::now_or_never(shutdown.as_mut()).is_some() {
                return Ok(());
            }
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                asked = async { admission.as_mut().expect("guarded").await }, if admission.is_some() => {
                    admission = None;
                    match asked {
                        // An elder may have admitted us and its answers been lost: being
                        // selected (a start naming us, a share) is an admission too.
                        Ok(asked)
                            if asked.failure().is_some()
                                && !self.coordinator.coordinator().selected() =>
                        {
                            return Err(SectionsNodeError::NotAdmitted(asked));
                        }
                        Ok(asked) => {
                            if asked.refusals() > 0 {
                                warn!(
                                    admitted = asked.admitted,
                                    refused = asked.refusals(),
                                    full = asked.full,
                                    "admitted by some elders and refused by others: their \
                                     member lists differ, and no start may promote this node \
                                     until they agree (every node must run the same \
                                     --max-members, --elder-count and --min-section-size)"
                                );
                            }
                            self.coordinator.store().set_admission_pending(false)?;
                        }
                        Err(e) => warn!(error = %e, "the admission task failed"),
                    }
                }
                event = events.recv() => match event {
                    Some(event) => self.on_event(event)?,
                    None => return Ok(()),
                },
                Some((from, answer)) = answers.recv() => self.on_screened(&from, answer)?,
                Some((generation, from, peers, departed)) = member_lists.recv() => {
                    self.on_members(generation, from, peers, &departed)?
                }
                _ = tick.tick() => self.on_tick()?,
            }
            self.drain()?;
            self.publish();
        }
    }

    fn on_event(&mut self, event: NetEvent) -> Result<(), SectionsNodeError> {
        let NetEvent::Request {
            from,
            from_identity,
            kind,
            payload,
            reply,
            ..
        } = event
        else {
            return Ok(());
        };
        // No proven identity: no answer (the peer sees "no reply").
        let Some(sender) = from_identity.as_deref().and_then(name_of_identity) else {
            return Ok(());
        };
        match kind {
            keyquorum_net::SECTIONS_MESSAGE_KIND => {
                let _ = reply.send(Vec::new());
                match Message::decode(&payload) {
                    Ok(message) if sender_matches(&sender, &message) => {
                        self.take_message(sender, message)?;
                    }
                    Ok(_) => debug!("message signed by another node than its sender dropped"),
                    Err(e) => debug!(error = %e, "undecodable section message dropped"),
                }
            }
            keyquorum_net::SECTIONS_JOIN_KIND => {
                let answer = self.on_join(from, sender, &payload)?;
                let _ = reply.send(answer);
            }
            _ => {}
        }
        Ok(())
    }

    /// What a joiner must run to be admitted, and what we answer a query with.
    fn network_params(&self) -> join::NetworkParams {
        join::NetworkParams::new(self.params, self.round)
    }

    fn on_join(
        &mut self,
        from: PeerId,
        sender: Name,
        payload: &[u8],
    ) -> Result<Vec<u8>, SectionsNodeError> {
        match join::Request::decode(payload) {
            Ok(join::Request::Query) => {
                let record = self.coordinator.coordinator().record();
                Ok(join::QueryAnswer {
                    section: SectionAnswer::new(record, self.signed.clone()),
                    params: self.network_params(),
                }
                .encode())
            }
            Ok(join::Request::Admit(peer, params)) => {
                let c = self.coordinator.coordinator();
                if c.our_share().is_none() {
                    return Ok(vec![join::REFUSED_NOT_ELDER]);
                }
                if let Some(code) = join::refusal(
                    &peer,
                    &params,
                    &self.network_params(),
                    &sender,
                    &from,
                    &c.sap().prefix,
                ) {
                    return Ok(vec![code]);
                }
                let peer = *peer;
                let prefix = c.sap().prefix;
                let member = Member {
                    peer: peer.clone(),
                    age: MEMBER_AGE,
                };
                match admit(&mut self.members, member, &prefix, self.max_members) {
                    Ok(true) => {
                        info!(name = %hex::encode(sender.0), "member admitted");
                        self.note_admitted(sender);
                        self.coordinator.store().save_members(&self.members)?;
                        self.set_departed(sender, false)?;
                        self.learn(peer);
                        self.elect()?;
                    }
                    Ok(false) => {
                        self.note_admitted(sender);
                    }
                    Err(e @ AdmitError::SectionFull { .. }) => {
                        warn!(name = %hex::encode(sender.0), reason = %e, "member not admitted");
                        return Ok(vec![join::REFUSED_FULL]);
                    }
                }
                Ok(vec![join::ADMITTED])
            }
            Ok(join::Request::Leave) => {
                if self.coordinator.coordinator().our_share().is_none() {
                    return Ok(vec![join::REFUSED]);
                }
                // A node of the other half asks from a SAP older than our split: saying it is
                // removed would tell it it left while its own half's elders still list it.
                if !self.coordinator.coordinator().sap().prefix.matches(&sender) {
                    return Ok(vec![join::REFUSED_OTHER_SECTION]);
                }
                if self.members.iter().any(|m| m.peer.name() == sender) {
                    info!(name = %hex::encode(sender.0), "member left");
                    self.members.retain(|m| m.peer.name() != sender);
                    self.coordinator.store().save_members(&self.members)?;
                    self.set_departed(sender, true)?;
                    self.start_signer.retain_members(&self.members);
                    self.save_absentees()?;
                    self.elect()?;
                }
                Ok(vec![join::ADMITTED])
            }
            Ok(join::Request::Members) => {
                let c = self.coordinator.coordinator();
                // An elder of the SAP before this one answers the new elders too: members only
                // it admitted are known to none of them.
                let outgoing = self
                    .outgoing_elders
                    .iter()
                    .any(|p| p.name() == self.our_name);
                if c.our_share().is_none() && !outgoing {
                    return Ok(vec![join::REFUSED_NOT_ELDER]);
                }
                // Only another elder selects from the list; nobody else learns the members.
                if sender == self.our_name || !c.sap().names().contains(&sender) {
                    return Ok(vec![join::REFUSED]);
                }
                let prefix = c.sap().prefix;
                Ok(join::encode_members_answer(
                    self.members
                        .iter()
                        .map(|m| &m.peer)
                        .filter(|p| prefix.matches(&p.name())),
                    &self.departed,
                ))
            }
            Ok(join::Request::Alive(statement)) => {
                let known = self.members.iter().any(|m| m.peer.name() == sender);
                if self.coordinator.coordinator().our_share().is_none()
                    || statement.member() != sender
                    || !self.alive_limit.allow(sender, known, Instant::now())
                {
                    return Ok(vec![join::REFUSED]);
                }
                let generation = self.coordinator.coordinator().chain().key_count();
                match self.start_signer.alive(&statement, generation) {
                    Ok(taken) => {
                        self.after_alive(taken)?;
                        Ok(vec![join::ADMITTED])
                    }
                    Err(e) => {
                        debug!(name = %hex::encode(sender.0), reason = %e, "alive statement refused");
                        Ok(vec![join::REFUSED])
                    }
                }
            }
            Err(_) => Ok(vec![join::REFUSED]),
        }
    }

    fn on_tick(&mut self) -> Result<(), SectionsNodeError> {
        let now = Instant::now();
        if now >= self.catch_up_at {
            self.ask_for_section(now);
        }
        if alive_resend_due(
            self.coordinator.coordinator().sap(),
            &self.our_name,
            self.alive_sent,
            now,
        ) {
            self.announce_alive(false);
        }
        if now >= self.members_ask_at {
            if self.member_asks.iter().all(|t| t.is_finished()) {
                self.ask_members();
            } else {
                // An ask still waits for a slow elder: let it finish rather than start over.
                self.members_ask_at = now + self.members_refresh();
            }
        }
        if now >= self.resend_partials_at {
            let partials = self.coordinator.coordinator().partials_to_resend();
            self.resend_partials_wait = next_resend_wait(self.resend_partials_wait, &partials);
            self.resend_partials_at = now + self.resend_partials_wait;
            for output in partials {
                self.route(output)?;
            }
        }
        let due: Vec<SessionId> = self
            .deadlines
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(s, _)| *s)
            .collect();
        for session in due {
            if !self.coordinator.coordinator().knows(&session) {
                self.deadlines.remove(&session);
                continue;
            }
            if let Some((at, passed)) = self.deadlines.get_mut(&session) {
                *at += self.round;
                *passed += 1;
                if *passed > MAX_ROUNDS + START_GRACE + VOTE_SLACK + 2 {
                    self.deadlines.remove(&session);
                }
            }
            debug!(session = %hex::encode(&session.0[..4]), "DKG deadline");
            self.take(LoggedInput::Deadline(session))?;
        }
        Ok(())
    }

    /// Takes a message; keeps it for later if it may become acceptable.
    fn take_message(&mut self, from: Name, message: Message) -> Result<(), SectionsNodeError> {
        match self.take_input(LoggedInput::Message {
            from,
            message: message.clone(),
        })? {
            Some(d) if may_come_later(&d) => {
                if catch_up::shows_section_ahead(&d) {
                    self.catch_up_soon(from);
                }
                if self.early.len() >= MAX_EARLY {
                    self.early.pop_front();
                }
                self.early.push_back((from, message));
            }
            Some(d) => {
                // A SAP whose parent is not our newest key: the section may have moved on
                // past a handover we missed.
                if catch_up::shows_section_ahead(&d) {
                    self.catch_up_soon(from);
                }
                debug!(reason = %d, "section message dropped");
            }
            None => {}
        }
        Ok(())
    }

    /// Asks the next [`CATCH_UP_FAN_OUT`] peers in turn ([`catch_up_targets`]) for their section
    /// record. Each answer is decoded and checked against our state as of now off the event
    /// loop ([`screen_answer`]), so that a peer's junk (up to [`catch_up::MAX_ANSWER_LEN`]) costs
    /// the loop nothing; only answers that extend our chain come back, through
    /// [`Runtime::on_answer`], where the coordinator checks them again against its state then.
    fn ask_for_section(&mut self, now: Instant) {
        self.catch_up_at = now + CATCH_UP_EVERY;
        self.catch_up_asked = Some(now);
        let c = self.coordinator.coordinator();
        let ours = Arc::new((
            *c.genesis_key(),
            c.chain().clone(),
            c.sap().clone(),
            self.our_name,
        ));
        let targets = catch_up_targets(c.sap(), &self.members, &self.our_name, self.catch_up_turn);
        self.catch_up_turn = self.catch_up_turn.wrapping_add(1);
        for peer in targets {
            let name = peer.name();
            let identity = key_bytes(&peer.node_key).to_vec();
            let addr: Option<Multiaddr> = peer.addr.parse().ok();
            let net = self.net.clone();
            let answers = self.answers_tx.clone();
            let ours = ours.clone();
            tokio::spawn(async move {
                if let Some(addr) = addr
                    && let Some(peer) = peer_of(&addr)
                {
                    let _ = net.bind_identity(identity.clone(), peer, vec![addr]).await;
                }
                let query = join::Request::Query.encode();
                match net
                    .send_section_join(Target::Identity(identity), query)
                    .await
                {
                    Ok(bytes) => {
                        let peer = hex::encode(name.0);
                        let screened = tokio::task::spawn_blocking(move || {
                            screen_answer(&ours, &peer, &bytes, false).map(|s| (peer, s))
                        })
                        .await;
                        // A full queue drops the answer: the next ask brings another.
                        if let Ok(Some(answer)) = screened {
                            let _ = answers.try_send(answer);
                        }
                    }
                    Err(e) => {
                        debug!(peer = %hex::encode(name.0), error = %e, "section query failed")
                    }
                }
            });
        }
        // The bootstrap peers too: the peers a member knows are its SAP's elders and the
        // members it learnt from SAPs, and after a split it missed they can all be of the
        // other half. An operator who restarts it with --bootstrap at a node of its own half
        // gets it going; the answers are checked like any other.
        let bootstrap = if std::mem::take(&mut self.catch_up_bootstrap_due) {
            self.catch_up_bootstrap.clone()
        } else {
            Vec::new()
        };
        for addr in bootstrap {
            let Some(peer) = peer_of(&addr) else {
                continue;
            };
            let net = self.net.clone();
            let answers = self.answers_tx.clone();
            let ours = ours.clone();
            tokio::spawn(async move {
                let query = join::Request::Query.encode();
                match net.send_section_join(Target::Peer(peer), query).await {
                    Ok(bytes) => {
                        let label = addr.to_string();
                        // A bootstrap peer may serve any section of the network: its answer
                        // not fitting ours is no news.
                        let screened = tokio::task::spawn_blocking(move || {
                            screen_answer(&ours, &label, &bytes, true).map(|s| (label, s))
                        })
                        .await;
                        if let Ok(Some(answer)) = screened {
                            let _ = answers.try_send(answer);
                        }
                    }
                    Err(e) => debug!(%addr, error = %e, "section query to a bootstrap peer failed"),
                }
            });
        }
    }

    /// Asks for the section record soon: a message from `from` showed the section may be ahead
    /// of us. Only a peer we know in our section (an elder of our SAP, or a member under its
    /// prefix) can hasten the ask, each at most once per [`CATCH_UP_EVERY`]
    /// ([`CatchUpTriggers`]), so that strangers cannot make us query every
    /// [`CATCH_UP_SOON`].
    fn catch_up_soon(&mut self, from: Name) {
        let sap = self.coordinator.coordinator().sap();
        let known = catch_up::may_hasten(sap, &self.members, &from);
        if !self.catch_up_triggers.allow(from, known, Instant::now()) {
            debug!(peer = %hex::encode(from.0), "catch-up trigger ignored");
            return;
        }
        let soon = self
            .catch_up_asked
            .map_or_else(Instant::now, |at| at + CATCH_UP_SOON);
        self.catch_up_at = self.catch_up_at.min(soon);
    }

    /// A screened answer to our query: one ahead goes to the coordinator; one of the other
    /// half of a split is said once per half, since the node is stuck until it asks a peer of
    /// its own half.
    fn on_screened(&mut self, from: &str, screened: Screened) -> Result<(), SectionsNodeError> {
        match screened {
            Screened::Ahead(answer) => self.on_answer(from, *answer),
            Screened::OtherHalf(theirs) => {
                // Our bootstrap peers may be of our half: asked at the next catch-up.
                self.catch_up_bootstrap_due = true;
                if self.other_half_log.is_news(theirs) {
                    let ours = self.coordinator.coordinator().sap().prefix;
                    warn!(
                        peer = %from,
                        their_prefix = %theirs,
                        our_prefix = %ours,
                        "our section split while this node was away, and the peers it asked \
                         are of the other half: if it does not catch up, restart it with \
                         --bootstrap at a node of its own half"
                    );
                }
                Ok(())
            }
        }
    }

    /// A peer's answer to our query: the coordinator takes it if it extends our chain
    /// ([`Coordinator::catch_up`]); anything else changes nothing.
    fn on_answer(&mut self, peer: &str, answer: SectionAnswer) -> Result<(), SectionsNodeError> {
        let before = self.coordinator.coordinator().chain().key_count();
        match self.take_input(LoggedInput::CatchUp(answer))? {
            // After a split, a member of the other half answers with its own branch.
            Some(Dropped::CatchUp(CatchUpError::OtherBranch)) => {
                debug!(%peer, "section answer from the other half of a split");
            }
            Some(d) => warn!(%peer, reason = %d, "section answer refused"),
            None => {
                let after = self.coordinator.coordinator().chain().key_count();
                if after > before {
                    self.other_half_log.reset();
                    info!(%peer, from = before, to = after, "caught up with the section");
                }
            }
        }
        Ok(())
    }

    fn take(&mut self, input: LoggedInput) -> Result<(), SectionsNodeError> {
        if let Some(d) = self.take_input(input)? {
            debug!(reason = %d, "input refused");
        }
        Ok(())
    }

    /// One input through the persistent coordinator; routes its outputs. Returns why it was
    /// refused, if it was.
    fn take_input(&mut self, input: LoggedInput) -> Result<Option<Dropped>, SectionsNodeError> {
        let c = self.coordinator.coordinator();
        let generation = c.chain().key_count();
        let previous_prefix = c.sap().prefix;
        let previous_elders = c.sap().elders.clone();
        let signed = input.signed_sap().cloned();
        let had_share = c.our_share().is_some();
        let result = self.coordinator.take(&input);
        let c = self.coordinator.coordinator();
        if c.chain().key_count() != generation {
            // Only a direct successor's: the elders of a SAP several links back (a catch-up)
            // are no authority on the current members.
            self.outgoing_elders = if c.chain().key_count() == generation + 1 {
                previous_elders
            } else {
                Vec::new()
            };
            self.outgoing_asked = false;
            self.applied(signed, previous_prefix)?;
        } else if !had_share && c.our_share().is_some() {
            // A listed elder that missed its handover's DKG (down, or caught up onto the SAP)
            // gets its share from its late run, after the SAP applied without one.
            info!(generation, "share of the section key taken");
        }
        match result {
            Ok(outputs) => {
                for output in outputs {
                    self.route(output)?;
                }
                Ok(None)
            }
            Err(PersistError::Dropped(d)) => Ok(Some(d)),
            Err(PersistError::Store(e)) => Err(e.into()),
            Err(PersistError::Empty) => Err(SectionsNodeError::Restore("empty store".into())),
        }
    }

    /// A SAP applied: store it, learn its elders and offer the kept messages again; if it lists
    /// us, ask the other elders for their members, and as an elder holding a share of the new
    /// key, select again. A member admitted while the DKG ran usually made the elders sign a
    /// start that superseded it; but two starts signed close together (two admissions, or two
    /// members back at once) race at the candidates, and when the earlier, smaller one gathers
    /// its supermajority first it supersedes the later one, which then never runs: without a
    /// selection here, the member it would have added waits for the next admission or removal.
    /// Selecting signs nothing when the members call for the elders the SAP has.
    fn applied(
        &mut self,
        signed: Option<SignedSap>,
        previous_prefix: Prefix,
    ) -> Result<(), SectionsNodeError> {
        let c = self.coordinator.coordinator();
        info!(
            generation = c.chain().key_count(),
            section_key = %hex::encode(key_bytes(&c.sap().section_key)),
            elder = c.sap().names().contains(&self.our_name),
            // A node that caught up onto a SAP listing it gets its share from its late run.
            share = c.our_share().is_some(),
            "new SAP applied"
        );
        // The store wrote it with the record ([`ElderStore::save_section`]).
        if let Some(s) = signed.filter(|s| s.sap == *c.sap()) {
            self.signed = Some(s);
        }
        let elders = self.coordinator.coordinator().sap().elders.clone();
        // The other half of an earlier split: its handover was sent with the SAP that
        // followed it at the latest, unless the split is still open.
        let open = self.coordinator.coordinator().open_split();
        let keep = members_prefix(previous_prefix, open.as_ref());
        let mut changed = keep_under(&mut self.members, &keep);
        if changed {
            self.start_signer.retain_members(&self.members);
            self.save_absentees()?;
        }
        for p in elders {
            if !self.members.iter().any(|m| m.peer.name() == p.name()) {
                self.members.push(Member {
                    peer: p.clone(),
                    age: MEMBER_AGE,
                });
                changed = true;
            }
            self.learn(p);
        }
        if changed {
            self.coordinator.store().save_members(&self.members)?;
        }
        let coordinator = self.coordinator.coordinator();
        self.deadlines.retain(|s, _| coordinator.knows(s));
        let generation = coordinator.chain().key_count();
        // Statements members sent before we reached their generation.
        let taken = self.start_signer.reached(generation);
        self.after_alive(taken)?;
        // We may have been named absent meanwhile (slow, down, or cut off): say we run at
        // this generation, which answers any agreement of an earlier one.
        self.announce_alive(true);
        // Every SAP that lists us: as a new elder, or one that missed admissions while it
        // was down or cut off, we may lack members the others know.
        self.ask_members();
        if self.coordinator.coordinator().our_share().is_some() {
            self.reselect = true;
        }
        self.retry_early = true;
        self.write_chain_file();
        Ok(())
    }

    fn members_refresh(&self) -> Duration {
        members_refresh(self.round)
    }

    /// If our SAP lists us, asks each other elder of it for the members it knows
    /// ([`join::Request::Members`]), each on its own task: we learn members only from the
    /// SAPs we apply and the joiners that ask us, so as a new elder, or one that was down or
    /// cut off while members joined, we may not know members the others know, and would
    /// select other elders than they do. Each list is screened off the event loop
    /// ([`screen_members`]) and counted in [`Runtime::on_members`]: a member is taken once
    /// more elders list it than the SAP tolerates faulty ([`MemberTally`]). A new ask
    /// replaces the last one and aborts its tasks. An elder also asks every
    /// [`MEMBERS_REFRESH_ROUNDS`] rounds: one cut off while a member left (or joined) keeps a
    /// list the others do not, and if that keeps the supermajority from signing one start, no
    /// new SAP comes to make it ask.
    fn ask_members(&mut self) {
        self.members_ask_at = Instant::now() + self.members_refresh();
        for task in self.member_asks.drain(..) {
            task.abort();
        }
        self.member_tally = None;
        self.outgoing_tally = None;
        let c = self.coordinator.coordinator();
        let sap = c.sap();
        if !sap.names().contains(&self.our_name) {
            return;
        }
        let generation = c.chain().key_count();
        let prefix = sap.prefix;
        let mut elders: Vec<Peer> = sap
            .elders
            .iter()
            .filter(|p| p.name() != self.our_name)
            .cloned()
            .collect();
        self.member_tally = Some(MemberTally::new(
            generation,
            elders.iter().map(Peer::name).collect(),
            sap.elders.len(),
        ));
        // The outgoing elders too, counted by their own SAP's fault bound: a member only they
        // admitted (one that joined through a lone elder just replaced, say) is known to none
        // of the current elders. Those also in the current SAP are asked once; their answer
        // counts in both tallies.
        // Asked once: their lists freeze once they step down (they refuse joins and leaves),
        // so a later ask could bring back a member that left since. Only those under our
        // prefix (after a split the other half's refuse); the bound stays their SAP's.
        let outgoing: Vec<Peer> = if std::mem::replace(&mut self.outgoing_asked, true) {
            Vec::new()
        } else {
            self.outgoing_elders
                .iter()
                .filter(|p| p.name() != self.our_name && prefix.matches(&p.name()))
                .cloned()
                .collect()
        };
        if !outgoing.is_empty() {
            self.outgoing_tally = Some(MemberTally::new(
                generation,
                outgoing.iter().map(Peer::name).collect(),
                self.outgoing_elders.len(),
            ));
            let current: BTreeSet<Name> = elders.iter().map(Peer::name).collect();
            elders.extend(
                outgoing
                    .into_iter()
                    .filter(|p| !current.contains(&p.name())),
            );
        }
        let known: Arc<BTreeSet<Name>> =
            Arc::new(self.members.iter().map(|m| m.peer.name()).collect());
        debug!(
            elders = elders.len(),
            generation, "asking the other elders for their members"
        );
        for elder in elders {
            let name = elder.name();
            let net = self.net.clone();
            let lists = self.members_tx.clone();
            let known = known.clone();
            let us = self.our_name;
            self.member_asks.push(tokio::spawn(async move {
                let Some((peers, departed)) = join::ask_members(net, elder).await else {
                    return;
                };
                let screened = tokio::task::spawn_blocking(move || {
                    screen_members(peers, &prefix, &us, &known)
                })
                .await;
                // A full queue drops the list, which then counts for nothing: the next ask
                // (a SAP, a restart or the periodic one) asks again.
                if let Ok(peers) = screened {
                    let _ = lists.try_send((generation, name, peers, departed));
                }
            }));
        }
    }

    /// An elder's member list, screened, for the ask of `generation`: counted if that ask is
    /// still ours and we are still an elder of its SAP. Each record that reaches enough
    /// listings is added if its name is still unknown, under our prefix and not of a member
    /// that left through us (up to [`SectionsNodeConfig::max_members`], as an admission); then
    /// the members are stored and we select again, so that we sign the start they call for.
    fn on_members(
        &mut self,
        generation: u64,
        from: Name,
        peers: Vec<Peer>,
        departed: &[Name],
    ) -> Result<(), SectionsNodeError> {
        let c = self.coordinator.coordinator();
        let current =
            c.chain().key_count() == generation && c.sap().names().contains(&self.our_name);
        let prefix = c.sap().prefix;
        // The current elders' tally and the outgoing elders': an elder of both counts in both.
        let tallies: Vec<&mut MemberTally> =
            [self.member_tally.as_mut(), self.outgoing_tally.as_mut()]
                .into_iter()
                .flatten()
                .filter(|t| current && t.generation() == generation)
                .collect();
        if tallies.is_empty() {
            debug!(elder = %hex::encode(from.0), generation, "member list of an earlier ask dropped");
            return Ok(());
        }
        let mut reached: BTreeMap<Name, Peer> = BTreeMap::new();
        let mut counted = false;
        for tally in tallies {
            match tally.count(from, peers.clone(), departed) {
                Ok(records) => {
                    counted = true;
                    for peer in records {
                        reached.entry(peer.name()).or_insert(peer);
                    }
                }
                Err(e) => {
                    debug!(elder = %hex::encode(from.0), reason = %e, "member list not counted in a tally")
                }
            }
        }
        if !counted {
            return Ok(());
        }
        let reached: Vec<Peer> = reached.into_values().collect();
        let dropped = self.drop_departed()?;
        let known: BTreeSet<Name> = self.members.iter().map(|m| m.peer.name()).collect();
        let learnt: Vec<Member> = reached
            .into_iter()
            .filter(|peer| {
                let name = peer.name();
                name != self.our_name
                    && prefix.matches(&name)
                    && !known.contains(&name)
                    && !self.departed.contains(&name)
            })
            .map(|peer| Member {
                peer,
                age: MEMBER_AGE,
            })
            .collect();
        let (added, refused) =
            admit_all(&mut self.members, learnt.clone(), &prefix, self.max_members);
        if let Some(e) = refused {
            warn!(elder = %hex::encode(from.0), reason = %e, "members not all learnt");
        }
        // No member had these names: an address we held for one is older than the record.
        for m in learnt.into_iter().take(added) {
            self.peers.insert(m.peer.name(), m.peer);
        }
        if added > 0 {
            info!(elder = %hex::encode(from.0), added, "members learnt from the elders' lists");
        }
        if added > 0 || dropped > 0 {
            self.coordinator.store().save_members(&self.members)?;
            self.elect()?;
        }
        Ok(())
    }

    /// Remembers that we admitted `name` now (kept [`ADMISSION_GRACE`]; older entries go, so
    /// that the map holds at most the members admitted within it).
    fn note_admitted(&mut self, name: Name) {
        let now = Instant::now();
        self.admitted_at.retain(|_, at| now < *at + ADMISSION_GRACE);
        self.admitted_at.insert(name, now);
    }

    /// Drops our members that enough elders reported departed ([`MemberTally::departed`]),
    /// but ourselves and the members we admitted within [`ADMISSION_GRACE`] (the reports may
    /// predate the same member's return through them), and records them departed, so that we
    /// report them too and no stale list brings them back. Returns how many.
    fn drop_departed(&mut self) -> Result<usize, SectionsNodeError> {
        let now = Instant::now();
        self.admitted_at.retain(|_, at| now < *at + ADMISSION_GRACE);
        let ours: Vec<Name> = self
            .members
            .iter()
            .map(|m| m.peer.name())
            .filter(|name| *name != self.our_name && !self.admitted_at.contains_key(name))
            .collect();
        let departed: BTreeSet<Name> = [self.member_tally.as_ref(), self.outgoing_tally.as_ref()]
            .into_iter()
            .flatten()
            .flat_map(|t| t.departed(ours.iter().copied()))
            .collect();
        if departed.is_empty() {
            return Ok(0);
        }
        self.members.retain(|m| !departed.contains(&m.peer.name()));
        for name in &departed {
            push_departed(&mut self.departed, *name);
        }
        self.coordinator
            .store()
            .save_departed(self.departed.make_contiguous())?;
        info!(
            dropped = departed.len(),
            "members the other elders report departed dropped"
        );
        self.start_signer.retain_members(&self.members);
        self.save_absentees()?;
        Ok(departed.len())
    }

    /// Records that `name` left through us (`departed`), or that it was admitted again.
    fn set_departed(&mut self, name: Name, departed: bool) -> Result<(), SectionsNodeError> {
        let had = self.departed.contains(&name);
        if had == departed {
            return Ok(());
        }
        if departed {
            push_departed(&mut self.departed, name);
        } else {
            self.departed.retain(|n| *n != name);
        }
        self.coordinator
            .store()
            .save_departed(self.departed.make_contiguous())?;
        Ok(())
    }

    /// Stores the record if a statement changed it; selects again if a member came back.
    fn after_alive(&mut self, taken: Taken) -> Result<(), SectionsNodeError> {
        if taken >= Taken::Recorded {
            self.save_absentees()?;
        }
        if taken == Taken::Back {
            info!("absent member back");
            self.reselect = true;
        }
        Ok(())
    }

    /// States to the elders of our SAP that we run at our generation, and takes our own
    /// statement too, so that an absence we hold for ourselves ends. At most one sending task
    /// runs: a new SAP's replaces the previous one, a periodic resend waits for it.
    fn announce_alive(&mut self, replace: bool) {
        let running = self.alive_task.as_ref().is_some_and(|t| !t.is_finished());
        if running && !replace {
            return;
        }
        self.alive_sent = Some(Instant::now());
        let c = self.coordinator.coordinator();
        let generation = c.chain().key_count();
        let statement = AliveStatement::sign(&self.node_key, generation);
        let elders: Vec<Peer> = c
            .sap()
            .elders
            .iter()
            .filter(|p| p.name() != self.our_name)
            .cloned()
            .collect();
        let taken = self
            .start_signer
            .alive(&statement, generation)
            .unwrap_or(Taken::Unchanged);
        if let Err(e) = self.after_alive(taken) {
            warn!(error = %e, "absentees not stored");
        }
        if elders.is_empty() {
            return;
        }
        if let Some(task) = self.alive_task.take() {
            task.abort();
        }
        debug!(generation, elders = elders.len(), "stating that we run");
        self.alive_task = Some(tokio::spawn(join::announce_alive(
            self.net.clone(),
            statement,
            elders,
        )));
    }

    fn save_absentees(&self) -> Result<(), SectionsNodeError> {
        self.coordinator
            .store()
            .save_absentees(self.start_signer.absentees())?;
        Ok(())
    }

    /// Stores the absentee record if it changed.
    fn absentees_recorded(
        &mut self,
        recorded: Result<bool, keyquorum_sections::absence::AbsenceError>,
    ) -> Result<(), SectionsNodeError> {
        match recorded {
            Ok(true) => self.save_absentees(),
            Ok(false) => Ok(()),
            Err(e) => {
                warn!(reason = %e, "absent members not recorded");
                Ok(())
            }
        }
    }

    /// Sends an output where the protocol says ([`routing::deliveries`]), after the runtime's
    /// own bookkeeping.
    fn route(&mut self, output: Output) -> Result<(), SectionsNodeError> {
        let deliveries =
            routing::deliveries(self.coordinator.coordinator(), &self.members, &output);
        match output {
            Output::DkgStarted {
                session,
                candidates,
            } => {
                info!(session = %hex::encode(&session.0[..4]), candidates = candidates.len(), "DKG started");
                for c in candidates {
                    self.learn(c);
                }
                // Hold absent whom the authorising elders skipped, as they do.
                if let Some(start) = self.coordinator.coordinator().start_of(&session).cloned() {
                    match self.start_signer.started(&start, &self.members) {
                        Ok(true) => self.save_absentees()?,
                        Ok(false) => {}
                        Err(e) => warn!(reason = %e, "skipped members not recorded"),
                    }
                }
                self.deadlines
                    .insert(session, (Instant::now() + self.round, 0));
                self.retry_early = true;
            }
            Output::StartSigned { start, .. } => {
                for c in &start.candidates {
                    self.learn(c.clone());
                }
                self.retry_early = true;
            }
            Output::BroadcastFailure { observation, .. } => {
                self.deadlines.remove(&observation.session);
                warn!(session = %hex::encode(&observation.session.0[..4]), blamed = observation.non_participants.len(), "DKG failed here");
            }
            Output::FailureAgreed { ref excluded, .. } => {
                info!(excluded = excluded.len(), "failure agreement checked");
                let recorded = self
                    .start_signer
                    .observe(self.coordinator.coordinator(), &output);
                self.absentees_recorded(recorded)?;
                self.reselect = true;
            }
            Output::ReplacedStartFailed { session, .. } => {
                info!(
                    session = %hex::encode(&session.0[..4]),
                    "failure agreement of a start we replaced: its absentees not taken, our next start at its next attempt"
                );
                let recorded = self
                    .start_signer
                    .observe(self.coordinator.coordinator(), &output);
                self.absentees_recorded(recorded)?;
                self.reselect = true;
            }
            Output::Restart { .. } => {
                // The restart's elders come from these candidates: they carry the record (but
                // for a start we signed as an elder, where our own check decides).
                let recorded = self
                    .start_signer
                    .observe(self.coordinator.coordinator(), &output);
                self.absentees_recorded(recorded)?;
            }
            Output::SapShare { session, .. } => {
                self.deadlines.remove(&session);
            }
            Output::AgreementAgain { to, session, .. } => {
                info!(
                    session = %hex::encode(&session.0[..4]),
                    elder = %hex::encode(&to.0[..4]),
                    "failure agreement sent again to an elder that signed the failed start"
                );
            }
            Output::Dkg { .. } | Output::LinkShare { .. } | Output::NewElders(_) => {}
        }
        for Delivery { to, message } in deliveries {
            self.send(to, message);
        }
        Ok(())
    }

    /// Queues `message` for `to`: ours are taken in this loop, the others' sent on their own
    /// task (the network retries; the protocol's deadlines cover what is lost).
    fn send(&mut self, to: Name, message: Message) {
        if to == self.our_name {
            self.local.push_back(message);
            return;
        }
        let Some(peer) = self.peers.get(&to) else {
            debug!(to = %hex::encode(to.0), "no address for a recipient");
            return;
        };
        let identity = key_bytes(&peer.node_key).to_vec();
        let addr: Option<Multiaddr> = peer.addr.parse().ok();
        let session = message.session().map(|s| s.0).unwrap_or([0; 32]);
        let payload = message.encode();
        let net = self.net.clone();
        tokio::spawn(async move {
            // The peer named its address in the entry its node key signed into the section;
            // Noise refuses any other key at it.
            if let Some(addr) = addr
                && let Some(peer) = peer_of(&addr)
            {
                let _ = net.bind_identity(identity.clone(), peer, vec![addr]).await;
            }
            if let Err(e) = net.send_section_message(identity, session, payload).await {
                debug!(error = %e, "section message not delivered");
            }
        });
    }

    /// Takes the messages this node sent itself, and what they lead to; offers the kept early
    /// messages again when a session started or a SAP applied; selects again after a failure
    /// agreement.
    fn drain(&mut self) -> Result<(), SectionsNodeError> {
        loop {
            if let Some(message) = self.local.pop_front() {
                self.take_message(self.our_name, message)?;
                continue;
            }
            if self.retry_early {
                self.retry_early = false;
                let early: Vec<_> = self.early.drain(..).collect();
                for (from, message) in early {
                    self.take_message(from, message)?;
                }
                if !self.local.is_empty() || self.retry_early {
                    continue;
                }
            }
            if self.reselect {
                self.reselect = false;
                self.elect()?;
                continue;
            }
            return Ok(());
        }
    }

    /// As an elder: if the members this node knows call for other elders, or for a split,
    /// sign the starts ([`next_starts`](keyquorum_sections::elders::next_starts): one, or one per half) once each and send them to their
    /// candidates.
    fn elect(&mut self) -> Result<(), SectionsNodeError> {
        let c = self.coordinator.coordinator();
        let generation = c.chain().key_count();
        let starts = self
            .start_signer
            .starts_to_sign(c, &self.members, &self.params);
        for start in starts {
            info!(session = %hex::encode(&start.session.0[..4]), candidates = start.candidates.len(), prefix_bits = start.prefix.bit_count(), generation, "signing a start");
            self.take(LoggedInput::SignStart(start))?;
        }
        Ok(())
    }

    /// Publishes the current view to the HTTP endpoint.
    fn publish(&mut self) {
        let view = self.current_view();
        self.view.send_if_modified(|v| {
            if *v == view {
                false
            } else {
                *v = view;
                true
            }
        });
    }

    fn current_view(&self) -> SectionView {
        let c = self.coordinator.coordinator();
        SectionView::new(
            &self.our_name,
            c.our_share().is_some(),
            &c.record(),
            self.signed.as_ref(),
            in_section(&self.members, c.sap()),
        )
    }

    fn write_chain_file(&self) {
        let json = match serde_json::to_vec_pretty(&self.current_view()) {
            Ok(j) => j,
            Err(e) => {
                warn!(error = %e, "key chain not encoded");
                return;
            }
        };
        let tmp = self.chain_file.with_extension("json.tmp");
        if let Err(e) =
            std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, &self.chain_file))
        {
            warn!(error = %e, "key chain file not written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyquorum_crypto::tbls::{self, MinPk};

    #[test]
    fn a_chain_file_without_its_database_is_refused_naming_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        refuse_lost_database(dir.path()).unwrap();
        std::fs::write(dir.path().join("key_chain.json"), b"{}").unwrap();
        let e = refuse_lost_database(dir.path()).unwrap_err().to_string();
        assert!(e.contains("no sections.redb"), "{e}");
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
        std::fs::write(dir.path().join("sections.redb"), b"").unwrap();
        refuse_lost_database(dir.path()).unwrap();
    }
    use keyquorum_sections::session::{DkgStart, FailureObservation};

    fn key(i: u64) -> Secret<Scalar> {
        Secret::new(Scalar::from(i))
    }

    #[test]
    fn a_section_answer_that_does_not_decode_is_screened_out() {
        let peer = Peer::new(&key(1), "/ip4/127.0.0.1/tcp/1".into());
        let sap = Sap {
            prefix: Prefix::ROOT,
            elders: vec![peer.clone()],
            section_key: tbls::public_key::<MinPk>(&key(1)),
        };
        let ours = (sap.section_key, KeyChain::genesis(), sap, peer.name());
        let from = hex::encode(Name::of(&tbls::public_key::<MinPk>(&key(2))).0);
        assert!(screen_answer(&ours, &from, b"junk", false).is_none());
        let over_long = vec![0u8; catch_up::MAX_ANSWER_LEN + 1];
        assert!(screen_answer(&ours, &from, &over_long, false).is_none());
    }

    /// An answer one handover ahead is taken; the same answer to a node that holds its chain
    /// is screened out unread, whole or broken after its first bytes (neither teaches it
    /// anything); broken, it is refused by a node it would move on.
    #[test]
    fn only_an_answer_ahead_of_ours_gets_through_the_screen() {
        let (genesis, next) = (key(1), key(3));
        let peer = Peer::new(&key(1), "/ip4/127.0.0.1/tcp/1".into());
        let sap0 = Sap {
            prefix: Prefix::ROOT,
            elders: vec![peer.clone()],
            section_key: tbls::public_key::<MinPk>(&genesis),
        };
        let sap1 = Sap {
            section_key: tbls::public_key::<MinPk>(&next),
            ..sap0.clone()
        };
        let signed = SignedSap {
            sap_signature: tbls::sign::<MinPk>(&next, &sap1.signing_bytes()),
            sap: sap1.clone(),
            parent_key: sap0.section_key,
            parent_signature: tbls::sign::<MinPk>(&genesis, &key_bytes(&sap1.section_key)),
        };
        let chain1 = KeyChain::from_links(vec![signed.link()]).unwrap();
        let record = keyquorum_sections::store::ElderRecord {
            genesis_key: sap0.section_key,
            chain: chain1.clone(),
            sap: sap1.clone(),
            superseded: Vec::new(),
            linked: Vec::new(),
            open_splits: Vec::new(),
        };
        let answer = join::QueryAnswer {
            section: SectionAnswer::new(record, Some(signed)),
            params: join::NetworkParams::new(SectionParams::default(), Duration::from_secs(1)),
        }
        .encode();
        let mut broken = answer.clone();
        *broken.last_mut().unwrap() ^= 1;
        let from = hex::encode(Name::of(&tbls::public_key::<MinPk>(&key(2))).0);

        let behind = (
            sap0.section_key,
            KeyChain::genesis(),
            sap0.clone(),
            peer.name(),
        );
        assert!(matches!(
            screen_answer(&behind, &from, &answer, false),
            Some(Screened::Ahead(a)) if a.record.sap == sap1
        ));
        assert!(screen_answer(&behind, &from, &broken, false).is_none());
        let level = (sap0.section_key, chain1.clone(), sap1, peer.name());
        assert!(screen_answer(&level, &from, &answer, false).is_none());
        assert!(screen_answer(&level, &from, &broken, false).is_none());
        // Both are screened out before decoding: their section's first bytes show a chain
        // no longer than ours.
        for bytes in [&answer, &broken] {
            let section = join::QueryAnswer::section_bytes(bytes).unwrap();
            assert!(catch_up::not_ahead(section, &sap0.section_key, &chain1));
            assert!(!catch_up::not_ahead(
                section,
                &sap0.section_key,
                &KeyChain::genesis()
            ));
        }
    }

    #[test]
    fn a_signed_message_is_taken_only_from_its_signer() {
        let start = DkgStart::new(Prefix::ROOT, vec![Peer::new(&key(1), "a".into())], 1);
        let signed = Message::Start {
            signature: start.sign(&key(2)),
            start: start.clone(),
        };
        let signer = Name::of(&tbls::public_key::<MinPk>(&key(2)));
        let other = Name::of(&tbls::public_key::<MinPk>(&key(3)));
        assert!(sender_matches(&signer, &signed));
        assert!(!sender_matches(&other, &signed));
        let observation = FailureObservation {
            session: start.session,
            non_participants: [other].into(),
        };
        let failure = Message::Failure {
            signature: observation.sign(&key(2)),
            observation,
        };
        assert!(sender_matches(&signer, &failure));
        assert!(!sender_matches(&other, &failure));
    }

    #[test]
    fn catch_up_asks_a_bounded_rotating_set_of_peers_never_itself() {
        use keyquorum_sections::sap::Sap;
        let peers: Vec<Peer> = (1..=10)
            .map(|i| Peer::new(&key(i), format!("/ip4/127.0.0.1/tcp/{i}")))
            .collect();
        let us = peers[0].name();
        let sap = Sap {
            prefix: Prefix::ROOT,
            elders: peers[..3].to_vec(),
            section_key: tbls::public_key::<MinPk>(&key(99)),
        };
        // Members repeat the elders and us; every name is asked once.
        let members: Vec<Member> = peers
            .iter()
            .map(|p| Member {
                peer: p.clone(),
                age: MEMBER_AGE,
            })
            .collect();
        let mut asked = BTreeSet::new();
        for turn in 0..3 {
            let targets = catch_up_targets(&sap, &members, &us, turn);
            assert_eq!(targets.len(), CATCH_UP_FAN_OUT);
            assert!(targets.iter().all(|p| p.name() != us));
            asked.extend(targets.iter().map(Peer::name));
        }
        // Three turns of four cover the nine others.
        assert_eq!(asked.len(), 9);
        // The elders come first.
        let first = catch_up_targets(&sap, &members, &us, 0);
        assert_eq!(first[0].name(), peers[1].name());
        assert_eq!(first[1].name(), peers[2].name());
        // Few peers: all of them, every turn; members outside the prefix are not asked.
        let half = Prefix::ROOT.child(us.bit(0)).unwrap();
        let small = Sap {
            prefix: half,
            elders: vec![peers[0].clone()],
            ..sap
        };
        let targets = catch_up_targets(&small, &members, &us, 5);
        assert!(targets.iter().all(|p| half.matches(&p.name())));
        let under = peers[1..]
            .iter()
            .filter(|p| half.matches(&p.name()))
            .count();
        assert_eq!(targets.len(), under.min(CATCH_UP_FAN_OUT));
    }

    #[test]
    fn only_known_peers_hasten_a_catch_up_each_once_per_period() {
        let name = |i: u64| Name::of(&tbls::public_key::<MinPk>(&key(i)));
        let (a, b, stranger) = (name(1), name(2), name(3));
        let mut triggers = PeerRateLimit::new(CATCH_UP_EVERY);
        let t0 = Instant::now();
        assert!(!triggers.allow(stranger, false, t0));
        assert!(triggers.allow(a, true, t0));
        // The same peer again within the period: ignored, however often it sends.
        for s in 1..20 {
            assert!(!triggers.allow(a, true, t0 + Duration::from_secs(s)));
        }
        // Another known peer is not held back by the first.
        assert!(triggers.allow(b, true, t0 + Duration::from_secs(1)));
        // After the period, once more.
        assert!(triggers.allow(a, true, t0 + CATCH_UP_EVERY));
        assert!(!triggers.allow(stranger, false, t0 + 10 * CATCH_UP_EVERY));
    }

    #[test]
    fn partials_are_sent_again_ever_less_often_and_from_the_start_once_none_is_left() {
        // What is sent does not matter here, only whether anything is.
        let some = [Output::Dkg {
            to: Name([1; 32]),
            message: keyquorum_sections::dkg::DkgMessage::Behind {
                session: SessionId([2; 32]),
                round: 0,
            },
        }];
        let mut wait = RESEND_PARTIALS_EVERY;
        let mut waits = Vec::new();
        for _ in 0..8 {
            wait = next_resend_wait(wait, &some);
            waits.push(wait.as_secs());
        }
        assert_eq!(waits, [20, 40, 80, 160, 320, 600, 600, 600]);
        assert_eq!(next_resend_wait(wait, &[]), RESEND_PARTIALS_EVERY);
    }

    #[test]
    fn a_member_that_is_not_an_elder_sends_its_alive_statement_periodically() {
        let peers: Vec<Peer> = (1..=4)
            .map(|i| Peer::new(&key(i), format!("/ip4/127.0.0.1/tcp/{i}")))
            .collect();
        let sap = Sap {
            prefix: Prefix::ROOT,
            elders: peers[..3].to_vec(),
            section_key: tbls::public_key::<MinPk>(&key(99)),
        };
        let (elder, member) = (peers[0].name(), peers[3].name());
        let t0 = Instant::now();
        assert!(alive_resend_due(&sap, &member, None, t0));
        assert!(!alive_resend_due(
            &sap,
            &member,
            Some(t0),
            t0 + ALIVE_EVERY / 2
        ));
        assert!(alive_resend_due(&sap, &member, Some(t0), t0 + ALIVE_EVERY));
        // It keeps doing so, not once per generation.
        assert!(alive_resend_due(
            &sap,
            &member,
            Some(t0 + ALIVE_EVERY),
            t0 + 2 * ALIVE_EVERY
        ));
        assert!(!alive_resend_due(&sap, &elder, None, t0 + ALIVE_EVERY));
        // An elder takes one statement per member per gap.
        let mut limit = PeerRateLimit::new(ALIVE_MIN_GAP);
        assert!(limit.allow(member, true, t0));
        assert!(!limit.allow(member, true, t0 + ALIVE_MIN_GAP / 2));
        assert!(limit.allow(member, true, t0 + ALIVE_MIN_GAP));
        assert!(!limit.allow(elder, false, t0));
    }

    #[test]
    fn the_other_half_of_a_split_is_forgotten_at_the_next_sap_once_the_split_is_closed() {
        let members: Vec<Member> = (1..=40)
            .map(|i| Member {
                peer: Peer::new(&key(i), format!("/ip4/127.0.0.1/tcp/{i}")),
                age: MEMBER_AGE,
            })
            .collect();
        let ours = members[0].peer.name();
        let half = Prefix::ROOT.child(ours.bit(0)).unwrap();
        let quarter = half.child(ours.bit(1)).unwrap();
        let forget = |list: &mut Vec<Member>, previous: Prefix, open: Option<&OpenSplit>| {
            keep_under(list, &members_prefix(previous, open))
        };
        // Our half's SAP applied: the parent's prefix is kept, nobody is dropped.
        let mut list = members.clone();
        assert!(!forget(&mut list, Prefix::ROOT, None));
        assert_eq!(list, members);
        // An elder change of our half while the root key's split waits for the other half:
        // its members stay, for the start of that half.
        let root = Sap {
            prefix: Prefix::ROOT,
            elders: members[..7].iter().map(|m| m.peer.clone()).collect(),
            section_key: tbls::public_key::<MinPk>(&key(99)),
        };
        let open = OpenSplit {
            parent: root,
            generation: 3,
            halves: vec![Prefix::ROOT.child(1 - ours.bit(0)).unwrap()],
            attempt: 0,
        };
        assert!(!forget(&mut list, half, Some(&open)));
        assert_eq!(list, members);
        // The split closed: the next SAP (a second split here) replaces our half's, and the
        // first split's other half goes, the second's stays until the SAP after.
        assert!(forget(&mut list, half, None));
        assert!(list.iter().all(|m| half.matches(&m.peer.name())));
        assert!(list.len() < members.len());
        let in_half = list.len();
        assert!(forget(&mut list, quarter, None) || list.len() == in_half);
        assert!(list.iter().all(|m| quarter.matches(&m.peer.name())));
        assert!(list.iter().any(|m| m.peer.name() == ours));
    }

    #[test]
    fn only_a_reachable_fixed_address_is_advertised() {
        let peer = NodeKeys::from_master(&[1; 32]).peer_id();
        let ok: Multiaddr = "/ip4/127.0.0.1/tcp/9000".parse().unwrap();
        assert_eq!(peer_of(&advertised(&ok, peer).unwrap()), Some(peer));
        for bad in ["/ip4/0.0.0.0/tcp/9000", "/ip4/127.0.0.1/tcp/0"] {
            assert!(advertised(&bad.parse().unwrap(), peer).is_err());
        }
    }

    /// A port below the ephemeral range: between its choice and a node's bind (or a node's
    /// second start on it) no outgoing connection can take it.
    fn free_port() -> u16 {
        crate::ports::free_loopback_port(&mut Default::default()).unwrap()
    }

    /// Runs a node on `dir` that stops as soon as it has started; its error if it refused.
    async fn start_and_stop(
        dir: &std::path::Path,
        genesis_key: Option<PublicKey>,
        elder_count: usize,
    ) -> Result<(), SectionsNodeError> {
        start_with(dir, genesis_key, elder_count, Vec::new()).await
    }

    async fn start_with(
        dir: &std::path::Path,
        genesis_key: Option<PublicKey>,
        elder_count: usize,
        bootstrap: Vec<Multiaddr>,
    ) -> Result<(), SectionsNodeError> {
        let config = node_config(dir, free_port(), genesis_key, elder_count, bootstrap);
        run(config, Arc::new(NodeKeys::from_master(&[5; 32])), async {}).await
    }

    fn node_config(
        dir: &std::path::Path,
        port: u16,
        genesis_key: Option<PublicKey>,
        elder_count: usize,
        bootstrap: Vec<Multiaddr>,
    ) -> SectionsNodeConfig {
        SectionsNodeConfig {
            data_dir: dir.to_path_buf(),
            listen: format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap(),
            bootstrap,
            genesis_key,
            http_listen: "127.0.0.1:0".parse().unwrap(),
            round: Duration::from_millis(100),
            params: SectionParams {
                elder_count,
                ..SectionParams::default()
            },
            max_members: 16,
        }
    }

    /// Creates the genesis section of the node of master seed `[seed; 32]` with `config` (the
    /// node starts and stops at once) and returns its genesis key.
    async fn create_genesis(seed: u8, config: &SectionsNodeConfig) -> PublicKey {
        let keys = Arc::new(NodeKeys::from_master(&[seed; 32]));
        run(config.clone(), keys.clone(), async {}).await.unwrap();
        SectionsStore::open(&config.data_dir.join("sections.redb"), keys)
            .unwrap()
            .load()
            .unwrap()
            .unwrap()
            .0
            .genesis_key
    }

    /// A genesis node on `dir` (keys from master seed `[seed; 32]`, default parameters, at
    /// most `max_members` members), running until `stop` is sent: its genesis key, its address
    /// to bootstrap from and its `GET /sections` address.
    async fn founder(dir: &std::path::Path, seed: u8, max_members: usize) -> Founder {
        founder_of(dir, seed, SectionParams::default().elder_count, max_members).await
    }

    /// [`founder`] with `elder_count` elders.
    async fn founder_of(
        dir: &std::path::Path,
        seed: u8,
        elder_count: usize,
        max_members: usize,
    ) -> Founder {
        let mut config = node_config(dir, free_port(), None, elder_count, Vec::new());
        config.max_members = max_members;
        let genesis = create_genesis(seed, &config).await;
        let (bootstrap, http, stop, running) = spawn_node(seed, config);
        (genesis, bootstrap, http, stop, running)
    }

    /// A running genesis node: its genesis key, its address to bootstrap from, its
    /// `GET /sections` address, the sender that stops it and its task.
    type Founder = (
        PublicKey,
        Multiaddr,
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), SectionsNodeError>>,
    );

    /// A node of master seed `[seed; 32]` joining the network of `genesis` through
    /// `bootstrap` (`elder_count` elders) in a directory of its own: the directory and what
    /// [`spawn_node`] returns.
    fn spawn_joiner(
        seed: u8,
        genesis: PublicKey,
        bootstrap: &Multiaddr,
        elder_count: usize,
    ) -> (tempfile::TempDir, Node) {
        let dir = tempfile::tempdir().unwrap();
        let config = node_config(
            dir.path(),
            free_port(),
            Some(genesis),
            elder_count,
            vec![bootstrap.clone()],
        );
        (dir, spawn_node(seed, config))
    }

    /// A running node: its address to bootstrap from, its `GET /sections` address, the
    /// sender that stops it and its task.
    type Node = (
        Multiaddr,
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), SectionsNodeError>>,
    );

    /// Runs the node of master seed `[seed; 32]` with `config` (its `GET /sections` on a port
    /// of its own) until the sender is used or dropped: its address to bootstrap from, its
    /// `GET /sections` address, the sender and the task.
    fn spawn_node(
        seed: u8,
        mut config: SectionsNodeConfig,
    ) -> (
        Multiaddr,
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), SectionsNodeError>>,
    ) {
        let keys = Arc::new(NodeKeys::from_master(&[seed; 32]));
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        config.http_listen = http;
        let addr = config.listen.clone().with(Protocol::P2p(keys.peer_id()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(run(config, keys, async move {
            let _ = stopped.await;
        }));
        (addr, http, stop, running)
    }

    /// `GET /sections` of the node at `http`, if it answers.
    async fn view_of(http: SocketAddr) -> Option<SectionView> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(http).await.ok()?;
        stream
            .write_all(b"GET /sections HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.ok()?;
        let text = String::from_utf8(out).ok()?;
        serde_json::from_str(text.split("\r\n\r\n").nth(1)?).ok()
    }

    /// Polls `http`'s view until `done` holds (panics after `secs` seconds, naming `what`).
    async fn wait_view(
        what: &str,
        http: SocketAddr,
        secs: u64,
        done: impl Fn(&SectionView) -> bool,
    ) -> SectionView {
        let until = Instant::now() + Duration::from_secs(secs);
        let mut last = None;
        while Instant::now() < until {
            if let Some(v) = view_of(http).await {
                if done(&v) {
                    return v;
                }
                last = Some(v);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let last = last.map(|v| (v.elder, v.generation, v.elders.len(), v.members));
        panic!("{what}: not within {secs} s; last (elder, generation, elders, members): {last:?}");
    }

    /// The section peer record of the node of master seed `[seed; 32]` at `addr`.
    fn peer_of_seed(seed: u8, addr: impl ToString) -> Peer {
        Peer::new(
            &section_node_key(&NodeKeys::from_master(&[seed; 32])),
            addr.to_string(),
        )
    }

    /// A network of its own, on a fresh loopback port, for the node of master seed
    /// `[seed; 32]` (as `sections leave` starts one), and its peer record there.
    fn side_network(seed: u8) -> (keyquorum_net::NetworkHandle, Peer) {
        let keys = NodeKeys::from_master(&[seed; 32]);
        let config = node_config(
            std::path::Path::new("unused"),
            free_port(),
            None,
            SectionParams::default().elder_count,
            Vec::new(),
        );
        let (net, _events) =
            Network::new(net_config(&keys, section_node_key(&keys), &config)).unwrap();
        let addr = advertised(&config.listen, keys.peer_id()).unwrap();
        (net, peer_of_seed(seed, addr))
    }

    /// The name of the node whose keys come from master seed `[seed; 32]`.
    fn name_of_seed(seed: u8) -> Name {
        Name::of(&tbls::public_key::<MinPk>(&section_node_key(
            &NodeKeys::from_master(&[seed; 32]),
        )))
    }

    /// The elders of the section as the node at `http` sees it, by name.
    fn elder_names(view: &SectionView) -> BTreeSet<String> {
        view.elders.iter().map(|e| e.name.clone()).collect()
    }

    /// Four elders, one of them promoted after a plain member joined; two elders leave one
    /// after the other. Each leave calls for the next members by name, the second for the
    /// plain member the promoted elder never saw join: without the member lists it learns from
    /// the other elders, its starts named other candidates than theirs and the section stalled
    /// at the second leave.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn four_elders_hand_over_through_two_leaves_after_a_promotion() {
        let mut seeds: Vec<u8> = (40..47).collect();
        seeds.sort_by_key(|s| name_of_seed(*s));
        // By name: the promoted joiner, the founder, two leavers, the kept elder, the demoted
        // elder, the plain member.
        let [
            promoted,
            founder_seed,
            leaver1,
            leaver2,
            kept,
            demoted,
            plain,
        ] = seeds[..]
        else {
            unreachable!()
        };
        let names = |seeds: &[u8]| -> BTreeSet<String> {
            seeds
                .iter()
                .map(|s| hex::encode(name_of_seed(*s).0))
                .collect()
        };
        let founder_dir = tempfile::tempdir().unwrap();
        let (genesis, bootstrap, founder_http, stop_founder, run_founder) =
            founder_of(founder_dir.path(), founder_seed, 4, 16).await;
        let mut dirs = BTreeMap::new();
        let mut nodes = BTreeMap::new();
        let mut join = |seed: u8| {
            let (dir, (_, http, stop, running)) = spawn_joiner(seed, genesis, &bootstrap, 4);
            dirs.insert(seed, dir);
            nodes.insert(seed, (http, stop, running));
            http
        };
        // Four elders, then the plain member, then the joiner whose name makes it an elder.
        for seed in [leaver1, leaver2, demoted] {
            join(seed);
        }
        wait_view("four elders", founder_http, 90, |v| {
            elder_names(v) == names(&[founder_seed, leaver1, leaver2, demoted])
        })
        .await;
        join(kept);
        // The kept elder's name comes before the demoted elder's.
        wait_view("the kept elder promoted", founder_http, 90, |v| {
            elder_names(v) == names(&[founder_seed, leaver1, leaver2, kept])
        })
        .await;
        join(plain);
        wait_view("the plain member admitted", founder_http, 60, |v| {
            v.members == 6
        })
        .await;
        let promoted_http = join(promoted);
        wait_view("the joiner promoted", promoted_http, 90, |v| {
            v.elder && elder_names(v) == names(&[promoted, founder_seed, leaver1, leaver2])
        })
        .await;

        // Two elders leave, one after the other.
        let kept_http = nodes[&kept].0;
        for (leaver, elders_after) in [
            (leaver1, [promoted, founder_seed, leaver2, kept]),
            (leaver2, [promoted, founder_seed, kept, demoted]),
        ] {
            let (_, stop, running) = nodes.remove(&leaver).unwrap();
            let _ = stop.send(());
            running.await.unwrap().unwrap();
            let keys = Arc::new(NodeKeys::from_master(&[leaver; 32]));
            let left = leave(dirs[&leaver].path(), keys, false).await.unwrap();
            assert_eq!(left.removal.removed, left.asked);
            for http in [promoted_http, kept_http, founder_http] {
                wait_view("the elders after the leave", http, 90, |v| {
                    elder_names(v) == names(&elders_after)
                })
                .await;
            }
        }
        // And a third change: the founder leaves, so that the plain member is an elder.
        let _ = stop_founder.send(());
        run_founder.await.unwrap().unwrap();
        let keys = Arc::new(NodeKeys::from_master(&[founder_seed; 32]));
        leave(founder_dir.path(), keys, false).await.unwrap();
        for http in [promoted_http, kept_http] {
            wait_view("the plain member an elder", http, 90, |v| {
                v.elder && elder_names(v) == names(&[promoted, kept, demoted, plain])
            })
            .await;
        }
        for (_, (_, stop, running)) in nodes {
            let _ = stop.send(());
            running.await.unwrap().unwrap();
        }
    }

    /// A node promoted to elder learns from the other elders the plain members that joined
    /// before it: as a joiner it knew only the elders of its SAP, and an elder that selects
    /// from a shorter list than the others signs other starts than they do. A member that
    /// left through it does not come back through another elder's stale list.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_promoted_elder_learns_the_members_that_joined_before_it() {
        // Two elders, chosen by name: sorted by name, the seeds are the founder, the joiner
        // that promotes itself last, the founder's first fellow elder, and a plain member.
        let name_of = name_of_seed;
        let mut seeds: Vec<u8> = (20..24).collect();
        seeds.sort_by_key(|s| name_of(*s));
        let [first, second, third, fourth] = seeds[..] else {
            unreachable!()
        };
        let config = |dir: &std::path::Path, genesis, bootstrap: &Multiaddr| {
            node_config(dir, free_port(), genesis, 2, vec![bootstrap.clone()])
        };

        let founder_dir = tempfile::tempdir().unwrap();
        let founder_config = node_config(founder_dir.path(), free_port(), None, 2, Vec::new());
        let genesis = create_genesis(first, &founder_config).await;
        let (bootstrap, founder_http, stop0, run0) = spawn_node(first, founder_config.clone());

        // The founder's fellow elder.
        let dir1 = tempfile::tempdir().unwrap();
        let (_, http1, stop1, run1) =
            spawn_node(third, config(dir1.path(), Some(genesis), &bootstrap));
        wait_view("two elders", founder_http, 60, |v| {
            v.elders.len() == 2 && v.generation == 2
        })
        .await;
        // A plain member: its name comes after both elders'; both admit it.
        let dir2 = tempfile::tempdir().unwrap();
        let (_, _, stop2, run2) =
            spawn_node(fourth, config(dir2.path(), Some(genesis), &bootstrap));
        for http in [founder_http, http1] {
            wait_view("the plain member admitted", http, 60, |v| v.members == 3).await;
        }
        // A joiner whose name comes before the fellow elder's replaces it: it knows the
        // founder, the elder it replaces and itself, not the plain member.
        let dir3 = tempfile::tempdir().unwrap();
        let config3 = config(dir3.path(), Some(genesis), &bootstrap);
        let (_, http3, stop3, run3) = spawn_node(second, config3.clone());
        let promoted = wait_view("the joiner promoted", http3, 60, |v| {
            v.elder && v.generation == 3
        })
        .await;
        let elders: BTreeSet<String> = promoted.elders.iter().map(|e| e.name.clone()).collect();
        assert_eq!(
            elders,
            [first, second]
                .map(|s| hex::encode(name_of(s).0))
                .into_iter()
                .collect()
        );
        wait_view("the promoted elder knows every member", http3, 30, |v| {
            v.members == 4
        })
        .await;

        // The plain member leaves while the founder is down: only the promoted elder removes
        // it. The founder restarts while the promoted elder is down, and its ask for members
        // finds nobody to answer until its retries give up: it still lists the member.
        let _ = stop2.send(());
        run2.await.unwrap().unwrap();
        let _ = stop0.send(());
        run0.await.unwrap().unwrap();
        let leaver = Arc::new(NodeKeys::from_master(&[fourth; 32]));
        let left = leave(dir2.path(), leaver, false).await.unwrap();
        assert_eq!((left.removal.removed, left.asked), (1, 2));
        wait_view("the leave taken", http3, 30, |v| v.members == 3).await;
        let _ = stop3.send(());
        run3.await.unwrap().unwrap();
        let (_, founder_http, stop0, run0) = spawn_node(first, founder_config.clone());
        wait_view("the founder back", founder_http, 60, |v| {
            v.elder && v.members == 4
        })
        .await;
        tokio::time::sleep(Duration::from_secs(25)).await;
        // Restarted, the promoted elder asks the founder for its members: the stale listing
        // does not bring back the member that left through it.
        let (_, http3, stop3, run3) = spawn_node(second, config3);
        wait_view("the promoted elder back", http3, 60, |v| v.elder).await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        wait_view("the member that left still gone", http3, 1, |v| {
            v.members == 3
        })
        .await;
        // Restarted again, the founder hears every other elder and drops the member no other
        // lists.
        let _ = stop0.send(());
        run0.await.unwrap().unwrap();
        let (_, founder_http, stop0, run0) = spawn_node(first, founder_config);
        wait_view("the founder's list agreeing", founder_http, 60, |v| {
            v.elder && v.members == 3
        })
        .await;

        for stop in [stop3, stop1, stop0] {
            let _ = stop.send(());
        }
        for running in [run3, run1, run0] {
            running.await.unwrap().unwrap();
        }
    }

    /// A joiner started with other section parameters than its network's stops with a usage
    /// error naming both, before it records anything; with the network's it joins.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_joiner_with_other_section_parameters_is_refused_before_it_records_anything() {
        let elders = SectionParams::default().elder_count;
        let founder_dir = tempfile::tempdir().unwrap();
        let (genesis, bootstrap, _, stop, running) = founder(founder_dir.path(), 7, 16).await;

        let joiner = tempfile::tempdir().unwrap();
        let err = start_with(
            joiner.path(),
            Some(genesis),
            elders + 2,
            vec![bootstrap.clone()],
        )
        .await
        .unwrap_err();
        let SectionsNodeError::Usage(message) = &err else {
            panic!("not a usage error: {err}");
        };
        assert!(
            message.contains(&format!("runs --elder-count {elders} --min-section-size"))
                && message.contains(&format!("started with --elder-count {}", elders + 2)),
            "{message}"
        );
        // Nothing recorded: the same directory joins with the network's parameters.
        start_with(joiner.path(), Some(genesis), elders, vec![bootstrap])
            .await
            .expect("a joiner with the network's parameters");
        let _ = stop.send(());
        running.await.unwrap().unwrap();
    }

    /// A plain member's leave that reached only two of the four elders (the other two cut
    /// off) is no handover: no SAP follows it, so nothing made the two that missed it ask the
    /// others for their lists, and they kept the member for good, and with it other starts
    /// than the others' once it mattered. The periodic exchange makes them drop it (two of
    /// the four, `f + 1`, report it departed) at the same generation.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn elders_that_missed_a_leave_drop_the_member_without_a_new_sap() {
        let mut seeds: Vec<u8> = (50..55).collect();
        seeds.sort_by_key(|s| name_of_seed(*s));
        // Elders are chosen by name: the first four; the last is the plain member.
        let [founder, second, third, fourth, plain] = seeds[..] else {
            unreachable!()
        };
        let founder_dir = tempfile::tempdir().unwrap();
        let (genesis, bootstrap, founder_http, stop_founder, run_founder) =
            founder_of(founder_dir.path(), founder, 4, 16).await;
        let mut dirs = Vec::new();
        let mut nodes = BTreeMap::new();
        for seed in [second, third, fourth, plain] {
            let (dir, node) = spawn_joiner(seed, genesis, &bootstrap, 4);
            dirs.push(dir);
            nodes.insert(seed, node);
            if seed == fourth {
                wait_view("four elders", founder_http, 90, |v| v.elders.len() == 4).await;
            }
        }
        let [second_http, third_http, fourth_http] =
            [nodes[&second].1, nodes[&third].1, nodes[&fourth].1];
        let mut generation = 0;
        for http in [founder_http, second_http, third_http, fourth_http] {
            generation = wait_view("the plain member admitted", http, 60, |v| v.members == 5)
                .await
                .generation;
        }

        // The plain member stops and leaves through the founder and the second elder only.
        let (_, _, stop, running) = nodes.remove(&plain).unwrap();
        let _ = stop.send(());
        running.await.unwrap().unwrap();
        let (net, _) = side_network(plain);
        let reached = [
            peer_of_seed(founder, &bootstrap),
            peer_of_seed(second, &nodes[&second].0),
        ];
        assert_eq!(join::ask_removal(&net, &reached).await.removed, 2);
        net.shutdown().await;
        wait_view("the leave taken", founder_http, 30, |v| v.members == 4).await;

        for http in [third_http, fourth_http] {
            let view = wait_view(
                "the member dropped by the elders that missed its leave",
                http,
                90,
                |v| v.members == 4,
            )
            .await;
            assert!(
                !view
                    .member_names
                    .contains(&hex::encode(name_of_seed(plain).0))
            );
            assert_eq!(view.generation, generation, "no SAP came in between");
        }
        for (_, (_, _, stop, running)) in nodes {
            let _ = stop.send(());
            running.await.unwrap().unwrap();
        }
        let _ = stop_founder.send(());
        run_founder.await.unwrap().unwrap();
    }

    /// A joiner asks the elders of its SAP at once: an elder that is gone (nothing listens at
    /// its address) does not hold up the admission by the others, and is counted unreachable.
    /// Asked one after the other with the gone elder first, the founder saw the request only
    /// once every attempt at the gone one had failed, a few seconds a send.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_elder_that_is_gone_does_not_hold_up_the_admission_by_the_others() {
        let founder_dir = tempfile::tempdir().unwrap();
        let (_, founder_addr, http, stop, running) = founder(founder_dir.path(), 40, 16).await;
        wait_view("the founder runs", http, 30, |v| v.elder).await;
        let founder = peer_of_seed(40, &founder_addr);
        let gone_keys = NodeKeys::from_master(&[41; 32]);
        let gone = peer_of_seed(
            41,
            format!(
                "/ip4/127.0.0.1/tcp/{}/p2p/{}",
                free_port(),
                gone_keys.peer_id()
            ),
        );
        let (net, us) = side_network(42);
        let asking = tokio::spawn(join::ask_admission(
            net.clone(),
            us,
            join::NetworkParams::new(SectionParams::default(), Duration::from_millis(100)),
            vec![gone, founder],
        ));
        wait_view("the founder admits the joiner", http, 30, |v| {
            v.members == 2
        })
        .await;
        assert!(
            !asking.is_finished(),
            "the founder admitted the joiner only after the gone elder was given up"
        );
        let admission = asking.await.unwrap();
        assert_eq!(
            admission,
            join::Admission {
                admitted: 1,
                unreachable: 1,
                ..Default::default()
            }
        );
        net.shutdown().await;
        let _ = stop.send(());
        running.await.unwrap().unwrap();
    }

    /// A joiner that every elder refuses because the section holds its cap of members stops
    /// with an error saying so, and leaves no section state behind: the same command runs
    /// again. One stopped while it asked asks again at its next start.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_joiner_refused_by_a_full_section_stops_and_leaves_no_store() {
        let elders = SectionParams::default().elder_count;
        let founder_dir = tempfile::tempdir().unwrap();
        let (genesis, bootstrap, _, stop, running) = founder(founder_dir.path(), 8, 1).await;

        let parent = tempfile::tempdir().unwrap();
        let joiner = parent.path().join("joiner");
        let config = node_config(&joiner, free_port(), Some(genesis), elders, vec![bootstrap]);
        // Stopped at once, while it asks to be admitted: its next start asks again.
        run(
            config.clone(),
            Arc::new(NodeKeys::from_master(&[5; 32])),
            async {},
        )
        .await
        .expect("a joiner stopped while it asks");
        assert!(joiner.join("sections.redb").exists());
        let err = tokio::time::timeout(
            Duration::from_secs(60),
            run(
                config.clone(),
                Arc::new(NodeKeys::from_master(&[5; 32])),
                std::future::pending(),
            ),
        )
        .await
        .expect("the joiner stops on its own")
        .unwrap_err();
        let SectionsNodeError::NotAdmitted(admission) = &err else {
            panic!("not a refused admission: {err}");
        };
        assert_eq!(
            *admission,
            join::Admission {
                full: 1,
                ..Default::default()
            }
        );
        let message = err.to_string();
        assert!(
            message.contains("no elder admitted this node")
                && message.contains("1 said the section holds its cap of members"),
            "{message}"
        );
        assert!(
            !joiner.join("sections.redb").exists() && !joiner.join("key_chain.json").exists(),
            "no section state is left"
        );
        // A start that creates the directory removes it again.
        let created = parent.path().join("created");
        let mut config = config;
        config.data_dir = created.clone();
        let err = tokio::time::timeout(
            Duration::from_secs(60),
            run(
                config,
                Arc::new(NodeKeys::from_master(&[5; 32])),
                std::future::pending(),
            ),
        )
        .await
        .expect("the joiner stops on its own")
        .unwrap_err();
        assert!(matches!(err, SectionsNodeError::NotAdmitted(_)), "{err}");
        assert!(
            !created.exists(),
            "the directory this start created is gone"
        );
        let _ = stop.send(());
        running.await.unwrap().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restart_is_refused_another_genesis_key_and_other_section_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let elders = SectionParams::default().elder_count;
        // A new node given a genesis key but no peer to join through would found a network
        // of its own under another key.
        let someone_elses = tbls::public_key::<MinPk>(&key(42));
        let err = start_and_stop(dir.path(), Some(someone_elses), elders)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("--genesis-key without --bootstrap"), "{err}");
        assert!(
            !dir.path().join("sections.redb").exists() || {
                let store = SectionsStore::open(
                    &dir.path().join("sections.redb"),
                    Arc::new(NodeKeys::from_master(&[5; 32])),
                )
                .unwrap();
                store.load().unwrap().is_none()
            }
        );

        start_and_stop(dir.path(), None, elders).await.unwrap();
        let genesis = {
            let store = SectionsStore::open(
                &dir.path().join("sections.redb"),
                Arc::new(NodeKeys::from_master(&[5; 32])),
            )
            .unwrap();
            store.load().unwrap().unwrap().0.genesis_key
        };
        start_and_stop(dir.path(), Some(genesis), elders)
            .await
            .expect("its own genesis key");
        let err = start_and_stop(dir.path(), Some(someone_elses), elders)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is not the genesis key of this data directory's network"),
            "{err}"
        );
        let err = start_and_stop(dir.path(), None, elders + 1)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("was started with --elder-count {elders}")),
            "{err}"
        );
        start_and_stop(dir.path(), None, elders).await.unwrap();
        // A restart keeps the flags it joined with, less the genesis key it has stored.
        let peer: Multiaddr = format!(
            "/ip4/127.0.0.1/tcp/{}/p2p/{}",
            free_port(),
            NodeKeys::from_master(&[6; 32]).peer_id()
        )
        .parse()
        .unwrap();
        start_with(dir.path(), None, elders, vec![peer.clone()])
            .await
            .expect("a restart with --bootstrap alone");
        // A new node cannot join without the genesis key, and a usage error says so; it
        // leaves no store behind, and no directory it created.
        let new = tempfile::tempdir().unwrap();
        let err = start_with(new.path(), None, elders, vec![peer.clone()])
            .await
            .unwrap_err();
        assert!(
            matches!(&err, SectionsNodeError::Usage(m) if m.contains("--bootstrap needs --genesis-key")),
            "{err}"
        );
        assert!(!new.path().join("sections.redb").exists());
        let created = new.path().join("created");
        let err = start_with(&created, None, elders, vec![peer])
            .await
            .unwrap_err();
        assert!(matches!(err, SectionsNodeError::Usage(_)), "{err}");
        assert!(
            !created.exists(),
            "the directory this start created is gone"
        );
        // The refused join recorded no section parameters: others still start there.
        start_and_stop(new.path(), None, elders + 1).await.unwrap();
        // A node that left is not started again on its data directory.
        SectionsStore::open(
            &dir.path().join("sections.redb"),
            Arc::new(NodeKeys::from_master(&[5; 32])),
        )
        .unwrap()
        .mark_left()
        .unwrap();
        let err = start_and_stop(dir.path(), None, elders).await.unwrap_err();
        assert!(
            matches!(&err, SectionsNodeError::Usage(m) if m.contains("left its section")),
            "{err}"
        );
    }
}
