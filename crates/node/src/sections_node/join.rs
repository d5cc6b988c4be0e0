//! Joining a section over the network (requests of kind [`keyquorum_net::SECTIONS_JOIN_KIND`]).
//!
//! 1. The joiner asks a bootstrap peer for the section ([`Request::Query`]); the answer
//!    ([`QueryAnswer`]) is the peer's record (genesis key, key chain, SAP) and its last signed
//!    SAP ([`SectionAnswer`]: the same answer a member that missed handovers catches up from),
//!    with the section parameters the peer runs. The joiner accepts the section only if the
//!    chain verifies from the genesis key it was configured with and ends in the SAP's key,
//!    and if the SAP carries the section key's signature. At genesis that is the genesis key's
//!    own signature on the genesis SAP ([`SignedSap::verify_genesis`]), so a bootstrap peer
//!    cannot name another genesis elder either. A joiner whose section parameters no
//!    answering bootstrap peer shares stops there, before it records anything (one peer with
//!    others is that peer's failure: the joiner asks the next): every node of a network must
//!    select elders alike, or no start gathers a supermajority.
//! 2. The joiner asks every elder of that SAP at once to admit it ([`Request::Admit`] with its own
//!    peer entry and section parameters). An elder admits a peer only if the entry's node key
//!    is the identity the transport proved, its DKG keys come with a valid proof of
//!    possession, its address names the libp2p peer the request came from, its name falls
//!    under the section's prefix, and it runs the elder's section parameters (the answer's
//!    parameters are the bootstrap peer's word; this check is the elders', answered
//!    [`REFUSED_PARAMS`]), and only while its section holds fewer members than its cap
//!    (`--max-members`, else [`REFUSED_FULL`]). A node that holds no share answers
//!    [`REFUSED_NOT_ELDER`].
//! 3. A joiner that no elder admitted, and that no start names, is no member: no elder selects
//!    it or sends it a session. It stops with an error that counts the answers by reason and
//!    says what to do ([`Admission::failure`]), and removes its section state, so the same
//!    command can be run again. Being selected counts as an admission whose answers were lost.
//!    A joiner stopped while it asked asks again at its next start (the store records that it
//!    waits for an admission).
//!
//! A member tells the elders of its SAP it is alive ([`Request::Alive`], its own signed
//! statement) at start, at every SAP it applies and periodically while it is not an elder, so
//! that elders holding it absent select it again ([`keyquorum_sections::absence`]).
//!
//! An elder promoted, or caught up onto a SAP that lists it, asks the other elders of that SAP
//! for the members they know ([`Request::Members`]): a joiner knows only the elders it joined
//! and the members that asked it since, and elders select from their own lists, so one that
//! never heard of a plain member signs other starts than the rest. An elder answers only an
//! elder of its own SAP, with its members under its prefix ([`encode_members`]).
//!
//! A member leaves by asking every elder of its SAP to remove it ([`Request::Leave`], no
//! payload: the member to remove is the sender the transport proved, so nobody can remove
//! another). An elder that removes a member selects its elders again, as after an admission.

use keyquorum_crypto::tbls::{self, MinPk};
use keyquorum_dkg::wire::{Reader, WireError, Writer};
use keyquorum_net::libp2p::PeerId;
use keyquorum_net::{Multiaddr, NetworkHandle, Target};
use keyquorum_sections::absence::AliveStatement;
use keyquorum_sections::catch_up::SectionAnswer;
use keyquorum_sections::elders::{MAX_MEMBERS, Peer, SectionParams};
use keyquorum_sections::keys::{PublicKey, key_bytes};
use keyquorum_sections::sap::SignedSap;
use keyquorum_sections::store::ElderRecord;
use keyquorum_sections::wire::decode_peer;
use keyquorum_sections::{Name, Prefix};
use std::time::Duration;
use tracing::{debug, error, info, warn};

use super::{SectionsNodeError, peer_of};

/// Answer of an elder that admitted the peer (or had already), or removed it (or had already).
pub const ADMITTED: u8 = 1;
/// Answer of a node that did not admit the peer.
pub const REFUSED: u8 = 0;
/// Answer of an elder that did not admit the peer because it runs other network parameters
/// ([`NetworkParams`]).
pub const REFUSED_PARAMS: u8 = 2;
/// Answer of an elder that did not admit the peer because its section holds its cap of
/// members (`--max-members`).
pub const REFUSED_FULL: u8 = 3;
/// Answer of a node asked to admit a peer that holds no share of its section's key: it is no
/// elder (any more), so the joiner's view of the section is out of date.
pub const REFUSED_NOT_ELDER: u8 = 4;
/// Answer of an elder asked to remove a node whose name is not under its section's prefix:
/// the leaving node's SAP predates a split, and it asked the other half's elders.
pub const REFUSED_OTHER_SECTION: u8 = 5;

const TAG_QUERY: u8 = 0;
const TAG_ADMIT: u8 = 1;
const TAG_LEAVE: u8 = 2;
const TAG_ALIVE: u8 = 3;
const TAG_MEMBERS: u8 = 4;

/// A join request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Ask for the section's record and signed SAP.
    Query,
    /// Ask an elder to admit the sender, described by its peer entry, which runs the network
    /// parameters given.
    Admit(Box<Peer>, NetworkParams),
    /// Ask an elder to remove the sender from the section's members.
    Leave,
    /// Tell an elder the sender runs at a generation, so that an absence it holds for the
    /// sender ends ([`keyquorum_sections::absence`]); the statement must be the sender's.
    Alive(Box<AliveStatement>),
    /// Ask an elder, as another elder of its SAP, for the members it knows under its prefix
    /// (answered with [`encode_members`]).
    Members,
}

impl Request {
    /// Tag 0; tag 1, the parameters ([`encode_params`]) and the peer ([`Peer::encode`]);
    /// tag 2; tag 3 and the statement ([`AliveStatement::encode`]); or tag 4.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Request::Query => vec![TAG_QUERY],
            Request::Leave => vec![TAG_LEAVE],
            Request::Members => vec![TAG_MEMBERS],
            Request::Admit(peer, params) => {
                let mut out = vec![TAG_ADMIT];
                out.extend_from_slice(&encode_params(params));
                peer.encode(&mut out);
                out
            }
            Request::Alive(statement) => {
                let mut out = vec![TAG_ALIVE];
                out.extend_from_slice(&statement.encode());
                out
            }
        }
    }

    /// Decodes [`Request::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        match bytes.split_first() {
            Some((&TAG_QUERY, [])) => Ok(Request::Query),
            Some((&TAG_LEAVE, [])) => Ok(Request::Leave),
            Some((&TAG_MEMBERS, [])) => Ok(Request::Members),
            Some((&TAG_ADMIT, rest)) => {
                let (params, peer) = split_params(rest)?;
                Ok(Request::Admit(Box::new(decode_peer(peer)?), params))
            }
            Some((&TAG_ALIVE, rest)) => Ok(Request::Alive(Box::new(AliveStatement::decode(rest)?))),
            Some((&tag, _)) => Err(WireError::UnknownTag {
                what: "join request",
                tag,
            }),
            None => Err(WireError::Truncated { needed: 1 }),
        }
    }
}

/// The settings every node of a network must run alike, which a joiner and the nodes it asks
/// compare: the section parameters, and the DKG round. A node whose rounds are shorter than
/// the others' ends each round before their votes arrive, so it observes them all failing and
/// can cost the section its DKGs; one whose rounds are longer holds the others up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkParams {
    /// Elder count and minimum section size.
    pub section: SectionParams,
    /// The DKG round (`--round-ms`), in milliseconds.
    pub round_ms: u32,
}

impl NetworkParams {
    /// The parameters of a node running `section` with rounds of `round`.
    pub fn new(section: SectionParams, round: Duration) -> Self {
        NetworkParams {
            section,
            round_ms: u32::try_from(round.as_millis()).unwrap_or(u32::MAX),
        }
    }

    /// The flags that set them, as a user gives them.
    pub fn flags(&self) -> String {
        format!(
            "--elder-count {} --min-section-size {} --round-ms {}",
            self.section.elder_count, self.section.min_section_size, self.round_ms
        )
    }
}

/// Length of [`encode_params`].
pub const PARAMS_LEN: usize = 12;

/// Network parameters on the wire: the elder count, the minimum section size and the round in
/// milliseconds, each a big-endian `u32` (a value past `u32::MAX` is written as `u32::MAX`,
/// which no node runs).
pub fn encode_params(params: &NetworkParams) -> [u8; PARAMS_LEN] {
    let word = |v: usize| u32::try_from(v).unwrap_or(u32::MAX).to_be_bytes();
    let mut out = [0; PARAMS_LEN];
    out[..4].copy_from_slice(&word(params.section.elder_count));
    out[4..8].copy_from_slice(&word(params.section.min_section_size));
    out[8..].copy_from_slice(&params.round_ms.to_be_bytes());
    out
}

/// Splits [`encode_params`] off the front of `bytes`.
fn split_params(bytes: &[u8]) -> Result<(NetworkParams, &[u8]), WireError> {
    if bytes.len() < PARAMS_LEN {
        return Err(WireError::Truncated { needed: PARAMS_LEN });
    }
    let (params, rest) = bytes.split_at(PARAMS_LEN);
    let word = |b: &[u8]| u32::from_be_bytes(b.try_into().expect("4 bytes"));
    Ok((
        NetworkParams {
            section: SectionParams {
                elder_count: word(&params[..4]) as usize,
                min_section_size: word(&params[4..8]) as usize,
            },
            round_ms: word(&params[8..]),
        },
        rest,
    ))
}

/// Longest peer entry in a member list ([`encode_members`]): above any [`Peer::encode`] (keys
/// and proof of possession, an address of at most
/// [`MAX_ADDR_LEN`](keyquorum_sections::elders::MAX_ADDR_LEN) bytes).
pub const MAX_PEER_LEN: usize = 1024;

/// A member list as an elder answers [`Request::Members`]: the count as a big-endian `u32`,
/// then each peer ([`Peer::encode`]) prefixed by its length as a `u32`, strictly ascending by
/// name. At most [`MAX_MEMBERS`] peers (the cap an elder admits at most), the first by name if
/// `peers` holds more; a name listed twice is written once.
pub fn encode_members<'a>(peers: impl IntoIterator<Item = &'a Peer>) -> Vec<u8> {
    let mut named: Vec<(Name, &Peer)> = peers.into_iter().map(|p| (p.name(), p)).collect();
    named.sort_by_key(|(name, _)| *name);
    named.dedup_by_key(|(name, _)| *name);
    named.truncate(MAX_MEMBERS);
    let mut w = Writer::new();
    w.u32(named.len() as u32);
    let mut entry = Vec::new();
    for (_, peer) in named {
        entry.clear();
        peer.encode(&mut entry);
        w.bytes(&entry);
    }
    w.finish()
}

/// Decodes [`encode_members`]: canonical encodings only (bounded count and lengths, checked
/// before anything is allocated; names strictly ascending; no trailing bytes). Whether a peer
/// may be a member (its proof of possession, its name's prefix) is the caller's to check.
pub fn decode_members(bytes: &[u8]) -> Result<Vec<Peer>, WireError> {
    let mut r = Reader::new(bytes);
    let peers = read_members(&mut r)?;
    r.finish()?;
    Ok(peers)
}

/// Most departed names in an answer to [`Request::Members`]: the most an elder keeps.
pub const MAX_DEPARTED_LISTED: usize = 1024;

/// An elder's answer to [`Request::Members`]: its member list ([`encode_members`]), then the
/// names of the members that left through it, as a big-endian `u32` count and the 32-byte
/// names strictly ascending (at most [`MAX_DEPARTED_LISTED`], the first by name).
pub fn encode_members_answer<'a>(
    peers: impl IntoIterator<Item = &'a Peer>,
    departed: impl IntoIterator<Item = &'a Name>,
) -> Vec<u8> {
    let mut out = encode_members(peers);
    let mut names: Vec<&Name> = departed.into_iter().collect();
    names.sort();
    names.dedup();
    names.truncate(MAX_DEPARTED_LISTED);
    out.extend_from_slice(&(names.len() as u32).to_be_bytes());
    for name in names {
        out.extend_from_slice(&name.0);
    }
    out
}

/// Decodes [`encode_members_answer`], canonically as [`decode_members`]: the peers and the
/// departed names.
pub fn decode_members_answer(bytes: &[u8]) -> Result<(Vec<Peer>, Vec<Name>), WireError> {
    let mut r = Reader::new(bytes);
    let peers = read_members(&mut r)?;
    let n = r.count("departed", MAX_DEPARTED_LISTED)?;
    let mut departed: Vec<Name> = Vec::with_capacity(n);
    for _ in 0..n {
        let name = Name(r.array::<32>()?);
        if departed.last().is_some_and(|last| *last >= name) {
            return Err(WireError::NonCanonical("departed order"));
        }
        departed.push(name);
    }
    r.finish()?;
    Ok((peers, departed))
}

fn read_members(r: &mut Reader<'_>) -> Result<Vec<Peer>, WireError> {
    let n = r.count("members", MAX_MEMBERS)?;
    let mut peers: Vec<Peer> = Vec::with_capacity(n);
    for _ in 0..n {
        let peer = decode_peer(r.bytes("member", MAX_PEER_LEN)?)?;
        if peers.last().is_some_and(|last| last.name() >= peer.name()) {
            return Err(WireError::NonCanonical("member order"));
        }
        peers.push(peer);
    }
    Ok(peers)
}

/// The answer to [`Request::Query`]: the section as the answering node holds it and the
/// section parameters it runs.
#[derive(Clone, Debug)]
pub struct QueryAnswer {
    /// The record and signed SAP.
    pub section: SectionAnswer,
    /// The answering node's network parameters (its own word: nothing signs them).
    pub params: NetworkParams,
}

impl QueryAnswer {
    /// The parameters ([`encode_params`]), then the section ([`SectionAnswer::encode`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = encode_params(&self.params).to_vec();
        out.extend_from_slice(&self.section.encode());
        out
    }

    /// The encoded section of an encoded answer ([`SectionAnswer::encode`]), undecoded: for
    /// [`keyquorum_sections::catch_up::not_ahead`].
    pub fn section_bytes(bytes: &[u8]) -> Result<&[u8], WireError> {
        split_params(bytes).map(|(_, section)| section)
    }

    /// Decodes [`QueryAnswer::encode`], with [`SectionAnswer::decode`]'s checks.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let (params, section) = split_params(bytes)?;
        Ok(QueryAnswer {
            section: SectionAnswer::decode(section)?,
            params,
        })
    }
}

/// Whether an answer describes a section a joiner holding `genesis_key` may accept (see the
/// module docs).
pub fn check_answer(
    record: &ElderRecord,
    signed: Option<&SignedSap>,
    genesis_key: &PublicKey,
) -> Result<(), String> {
    if record.genesis_key != *genesis_key {
        return Err("another genesis key".into());
    }
    record
        .chain
        .verify_from(genesis_key)
        .map_err(|e| format!("the key chain does not verify: {e}"))?;
    if record.chain.last_key(genesis_key) != record.sap.section_key {
        return Err("the chain does not end in the SAP's key".into());
    }
    let Some(signed) = signed.filter(|s| s.sap == record.sap) else {
        return Err("the SAP comes without its signature".into());
    };
    if record.chain.key_count() == 1 {
        return signed
            .verify_genesis(genesis_key)
            .map_err(|e| format!("the genesis SAP is not signed by the genesis key: {e}"));
    }
    tbls::verify::<MinPk>(
        &signed.sap.section_key,
        &signed.sap.signing_bytes(),
        &signed.sap_signature,
    )
    .map_err(|_| "the SAP's signature does not verify".to_string())?;
    // The parent key's signature, which the node stores and serves with the SAP, must be the
    // chain's last link (verified above), not whatever the peer put beside it.
    if record.chain.links().last() != Some(&signed.link()) {
        return Err("the SAP's parent signature is not the chain's last link".into());
    }
    Ok(())
}

/// Why an elder of the section under `prefix`, running `ours`, does not admit `peer`, which
/// runs `theirs`, asked by the node the transport proved to be `sender` over a connection from
/// `from`: its answer code ([`REFUSED_PARAMS`] or [`REFUSED`]), or `None` to admit it.
pub fn refusal(
    peer: &Peer,
    theirs: &NetworkParams,
    ours: &NetworkParams,
    sender: &Name,
    from: &PeerId,
    prefix: &Prefix,
) -> Option<u8> {
    let addr_names_sender = peer
        .addr
        .parse::<Multiaddr>()
        .ok()
        .and_then(|a| peer_of(&a))
        .is_some_and(|p| p == *from);
    if !(peer.name() == *sender
        && prefix.matches(sender)
        && addr_names_sender
        && peer.dkg.verify_pop())
    {
        return Some(REFUSED);
    }
    if theirs != ours {
        warn!(
            name = %hex::encode(sender.0),
            theirs = %theirs.flags(),
            ours = %ours.flags(),
            "a joiner with other network parameters refused"
        );
        return Some(REFUSED_PARAMS);
    }
    None
}

/// How many times [`query_section`] asks each bootstrap peer before the join fails.
pub const QUERY_ROUNDS: u32 = 10;

/// Asks the bootstrap peers, in turn, for the section until one answer checks out.
pub async fn query_section(
    net: &NetworkHandle,
    bootstrap: &[Multiaddr],
    genesis_key: &PublicKey,
    params: &NetworkParams,
    our_name: &Name,
) -> Result<(ElderRecord, Option<SignedSap>), SectionsNodeError> {
    let mut last = String::from("no bootstrap peer");
    // A peer's parameters are its own word: one that differs from ours stops the join only if
    // no other bootstrap peer runs ours.
    let mut other_params = None;
    // After a split a peer serves its own half, whose elders would refuse us: the join stops
    // on it only if no other bootstrap peer serves our section.
    let mut other_section = None;
    for round in 1..=QUERY_ROUNDS {
        // A peer not reached this round may be the one that serves our section.
        let mut unreached = false;
        for addr in bootstrap {
            let Some(peer) = peer_of(addr) else {
                last = format!("{addr} names no peer");
                continue;
            };
            let answer = match net
                .send_section_join(Target::Peer(peer), Request::Query.encode())
                .await
            {
                Ok(a) => a,
                Err(e) => {
                    // Each ask takes the network's retries (seconds): said as it happens, so a
                    // wrong or stopped bootstrap peer is not a silent wait.
                    warn!(%addr, round, of = QUERY_ROUNDS, error = %e, "bootstrap peer not reachable");
                    last = format!("{addr}: {e}");
                    unreached = true;
                    continue;
                }
            };
            match QueryAnswer::decode(&answer)
                .map_err(|e| e.to_string())
                .and_then(|a| {
                    check_answer(&a.section.record, a.section.signed.as_ref(), genesis_key)
                        .map(|()| a)
                }) {
                Ok(a) if a.params != *params => {
                    warn!(
                        %addr,
                        theirs = %a.params.flags(),
                        "a bootstrap peer runs other network parameters"
                    );
                    other_params.get_or_insert((addr.clone(), a.params));
                    last = format!("{addr}: other network parameters");
                }
                Ok(a) if !a.section.record.sap.prefix.matches(our_name) => {
                    let prefix = a.section.record.sap.prefix;
                    warn!(
                        %addr,
                        %prefix,
                        "a bootstrap peer serves a section that does not hold this node's name"
                    );
                    other_section.get_or_insert((addr.clone(), prefix));
                    last = format!("{addr}: section {prefix}, which does not hold our name");
                }
                Ok(a) => {
                    let found = (a.section.record, a.section.signed);
                    info!(
                        generation = found.0.chain.key_count(),
                        elders = found.0.sap.elders.len(),
                        "section learnt from a bootstrap peer"
                    );
                    return Ok(found);
                }
                Err(e) => {
                    warn!(%addr, round, of = QUERY_ROUNDS, error = %e, "bootstrap peer's answer refused");
                    last = format!("{addr}: {e}");
                }
            }
        }
        if let Some((addr, theirs)) = &other_params {
            return Err(SectionsNodeError::Usage(format!(
                "the section at {addr} runs {}, and this node was started with {}, and no \
                 bootstrap peer runs this node's: every node of a network must run the same \
                 (start it with the section's values)",
                theirs.flags(),
                params.flags()
            )));
        }
        if let Some((addr, prefix)) = other_section
            .as_ref()
            .filter(|_| !unreached || round == QUERY_ROUNDS)
        {
            return Err(SectionsNodeError::Join(format!(
                "the section at {addr} ({prefix}) does not hold this node's name {}, and no \
                 bootstrap peer serves one that does: bootstrap from a node of this node's own \
                 section",
                hex::encode(&our_name.0[..4])
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(SectionsNodeError::Join(last))
}

/// Tells each of `elders` that we run ([`Request::Alive`]), once each: the node sends it again
/// at its next SAP and periodically while it is not an elder, and an elder that has not reached
/// the statement's generation keeps it until it does.
pub async fn announce_alive(net: NetworkHandle, statement: AliveStatement, elders: Vec<Peer>) {
    let request = Request::Alive(Box::new(statement)).encode();
    for elder in &elders {
        let identity = key_bytes(&elder.node_key).to_vec();
        if let Some(addr) = elder.addr.parse::<Multiaddr>().ok()
            && let Some(peer) = peer_of(&addr)
        {
            let _ = net.bind_identity(identity.clone(), peer, vec![addr]).await;
        }
        if let Err(e) = net
            .send_section_join(Target::Identity(identity.clone()), request.clone())
            .await
        {
            debug!(elder = %hex::encode(elder.name().0), error = %e, "alive statement not delivered");
        }
    }
}

/// Asks `elder`, as another elder of its SAP, for the members it knows ([`Request::Members`]):
/// the list it answered, or `None` if it never answered with one. An elder that has not applied
/// the SAP that made us one yet refuses us, so each refusal or failure is retried, at waits
/// doubling from half a second to past a catch-up period ([`super::CATCH_UP_EVERY`]).
pub async fn ask_members(net: NetworkHandle, elder: Peer) -> Option<(Vec<Peer>, Vec<Name>)> {
    let identity = key_bytes(&elder.node_key).to_vec();
    if let Some(addr) = elder.addr.parse::<Multiaddr>().ok()
        && let Some(peer) = peer_of(&addr)
    {
        let _ = net.bind_identity(identity.clone(), peer, vec![addr]).await;
    }
    let request = Request::Members.encode();
    let name = hex::encode(elder.name().0);
    let mut wait = Duration::from_millis(500);
    for attempt in 0..7 {
        if attempt > 0 {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(8));
        }
        match net
            .send_section_join(Target::Identity(identity.clone()), request.clone())
            .await
        {
            Ok(answer) => match decode_members_answer(&answer) {
                Ok(list) => return Some(list),
                Err(e) => debug!(elder = %name, error = %e, "no member list"),
            },
            Err(e) => debug!(elder = %name, error = %e, "member list request failed"),
        }
    }
    warn!(elder = %name, "no member list from an elder");
    None
}

/// What the elders a joiner asked answered ([`ask_admission`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Admission {
    /// Elders that admitted us.
    pub admitted: usize,
    /// Elders whose section holds its cap of members ([`REFUSED_FULL`]).
    pub full: usize,
    /// Elders that run other network parameters ([`REFUSED_PARAMS`]).
    pub other_params: usize,
    /// Nodes that are no elders any more ([`REFUSED_NOT_ELDER`]).
    pub not_elders: usize,
    /// Elders that refused us for another reason: our entry did not check.
    pub refused: usize,
    /// Elders that answered none of our requests.
    pub unreachable: usize,
}

impl Admission {
    fn count(&mut self, answer: &[u8]) {
        match answer {
            [ADMITTED] => self.admitted += 1,
            [REFUSED_FULL] => self.full += 1,
            [REFUSED_PARAMS] => self.other_params += 1,
            [REFUSED_NOT_ELDER] => self.not_elders += 1,
            _ => self.refused += 1,
        }
    }

    /// Elders that answered with a refusal, whatever the reason.
    pub fn refusals(&self) -> usize {
        self.full + self.other_params + self.not_elders + self.refused
    }

    /// Whether every elder asked answered, and each with the same other section parameters:
    /// the node was started with the wrong flags (a usage error).
    pub fn only_other_params(&self) -> bool {
        self.other_params > 0
            && self.admitted + self.full + self.not_elders + self.refused + self.unreachable == 0
    }

    /// Why no elder admitted us, and what to do; `None` if one did. A node no elder admitted
    /// is no member: no elder selects it or sends it a session, so it must not run as one.
    pub fn failure(&self) -> Option<String> {
        if self.admitted > 0 {
            return None;
        }
        let mut reasons = Vec::new();
        let mut said = |n: usize, what: &str| {
            if n > 0 {
                reasons.push(format!("{n} {what}"));
            }
        };
        said(
            self.full,
            "said the section holds its cap of members (their --max-members)",
        );
        said(self.other_params, "run other network parameters");
        said(
            self.not_elders,
            "are no elders any more (the section handed over since the bootstrap peer answered)",
        );
        said(self.refused, "refused this node's entry");
        said(self.unreachable, "did not answer");
        let advice = if self.other_params > 0 {
            "start it with the section's --elder-count, --min-section-size and --round-ms"
        } else if self.full > 0 {
            "the section takes new members again once members leave or it splits; start this \
             node again then"
        } else {
            "start this node again to ask the section's current elders"
        };
        Some(format!(
            "no elder admitted this node: of the {} asked, {}; {advice}",
            self.admitted
                + self.full
                + self.other_params
                + self.not_elders
                + self.refused
                + self.unreachable,
            reasons.join(", ")
        ))
    }
}

/// Sends `request` to `elder` until it answers, at most `attempts` times half a second apart
/// (the network layer retries each send itself, with backoff): its answer, or the last error
/// if it never answered.
async fn ask_elder(
    net: &NetworkHandle,
    elder: &Peer,
    request: &[u8],
    attempts: usize,
) -> Result<Vec<u8>, String> {
    let identity = key_bytes(&elder.node_key).to_vec();
    if let Some(addr) = elder.addr.parse::<Multiaddr>().ok()
        && let Some(peer) = peer_of(&addr)
    {
        let _ = net.bind_identity(identity.clone(), peer, vec![addr]).await;
    }
    let mut last = String::new();
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        match net
            .send_section_join(Target::Identity(identity.clone()), request.to_vec())
            .await
        {
            Ok(answer) => return Ok(answer),
            Err(e) => {
                debug!(elder = %hex::encode(elder.name().0), error = %e, attempt, "request to an elder failed");
                last = e.to_string();
            }
        }
    }
    Err(last)
}

/// How many times a joiner sends its admission request to an elder that does not answer. Each
/// send already dials and looks the elder up several times, so an elder that is gone costs a
/// few seconds a send; the elders are asked at once, so one gone elder does not delay the
/// others, and one that is down for a while still gets the request once it is back.
const ADMISSION_ATTEMPTS: usize = 5;

/// How many times a leaving node sends its request to an elder that does not answer (it
/// waits for them all before it stops).
const REMOVAL_ATTEMPTS: usize = 3;

/// Asks every elder at once to admit `us` and returns what they answered.
pub async fn ask_admission(
    net: NetworkHandle,
    us: Peer,
    params: NetworkParams,
    elders: Vec<Peer>,
) -> Admission {
    let request = Request::Admit(Box::new(us), params).encode();
    let answers = futures::future::join_all(
        elders
            .iter()
            .map(|elder| ask_elder(&net, elder, &request, ADMISSION_ATTEMPTS)),
    )
    .await;
    let mut admission = Admission::default();
    for (elder, answer) in elders.iter().zip(answers) {
        let elder_name = hex::encode(elder.name().0);
        match answer {
            Err(e) => {
                warn!(elder = %elder_name, error = %e, "an elder did not answer the admission request");
                admission.unreachable += 1;
            }
            Ok(answer) => {
                admission.count(&answer);
                match answer.as_slice() {
                    [ADMITTED] => {}
                    [REFUSED_PARAMS] => error!(
                        elder = %elder_name,
                        ours = %params.flags(),
                        "admission refused: the elder runs other network parameters than this \
                         node (its bootstrap peer said otherwise)"
                    ),
                    [REFUSED_FULL] => warn!(
                        elder = %elder_name,
                        "admission refused: the section holds its cap of members"
                    ),
                    [REFUSED_NOT_ELDER] => warn!(
                        elder = %elder_name,
                        "admission refused: the node asked is no elder any more"
                    ),
                    _ => warn!(elder = %elder_name, "admission refused"),
                }
            }
        }
    }
    info!(
        admitted = admission.admitted,
        elders = elders.len(),
        "admission asked of the elders"
    );
    admission
}

/// What the elders asked to remove a node answered ([`ask_removal`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Removal {
    /// Elders that removed it (or did not list it).
    pub removed: usize,
    /// Elders of another section ([`REFUSED_OTHER_SECTION`]).
    pub other_section: usize,
}

/// Asks every elder at once to remove us from the section's members; returns what they
/// answered.
pub async fn ask_removal(net: &NetworkHandle, elders: &[Peer]) -> Removal {
    let request = Request::Leave.encode();
    let answers = futures::future::join_all(
        elders
            .iter()
            .map(|elder| ask_elder(net, elder, &request, REMOVAL_ATTEMPTS)),
    )
    .await;
    let mut removal = Removal::default();
    for (elder, answer) in elders.iter().zip(answers) {
        let elder_name = hex::encode(elder.name().0);
        match answer {
            Ok(a) if a == [ADMITTED] => removal.removed += 1,
            Ok(a) if a == [REFUSED_OTHER_SECTION] => {
                removal.other_section += 1;
                warn!(elder = %elder_name, "removal refused: the elder serves another section (this node missed a split)");
            }
            Ok(_) => warn!(elder = %elder_name, "removal refused"),
            Err(e) => {
                warn!(elder = %elder_name, error = %e, "an elder did not answer the removal request")
            }
        }
    }
    removal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admission_fails_only_if_no_elder_admitted_and_says_why() {
        let admitted = Admission {
            admitted: 1,
            full: 3,
            unreachable: 2,
            ..Default::default()
        };
        assert_eq!(admitted.failure(), None);
        let mut answers = Admission::default();
        for answer in [
            [REFUSED_FULL],
            [REFUSED_PARAMS],
            [REFUSED_NOT_ELDER],
            [REFUSED],
            [9],
        ] {
            answers.count(&answer);
        }
        answers.unreachable = 1;
        assert_eq!(
            answers,
            Admission {
                admitted: 0,
                full: 1,
                other_params: 1,
                not_elders: 1,
                refused: 2,
                unreachable: 1,
            }
        );
        let why = answers.failure().unwrap();
        for part in [
            "of the 6 asked",
            "1 said the section holds its cap",
            "1 run other network parameters",
            "1 are no elders any more",
            "2 refused this node's entry",
            "1 did not answer",
            // Other parameters at one elder: the flags are the first thing to mend.
            "start it with the section's --elder-count",
        ] {
            assert!(why.contains(part), "{part}: {why}");
        }
        assert!(!answers.only_other_params());
        // Every elder with other parameters: the flags are wrong, and the advice says which.
        let params = Admission {
            other_params: 3,
            ..Default::default()
        };
        assert!(params.only_other_params());
        assert!(params.failure().unwrap().contains("--elder-count"));
        // A full section: wait for it to take members again.
        let full = Admission {
            full: 2,
            unreachable: 1,
            ..Default::default()
        };
        assert!(
            full.failure()
                .unwrap()
                .contains("once members leave or it splits")
        );
        // No answer at all: ask again.
        let silent = Admission {
            unreachable: 3,
            ..Default::default()
        };
        assert!(!silent.only_other_params());
        assert!(silent.failure().unwrap().contains("start this node again"));
    }

    #[test]
    fn requests_decode_exactly_what_encodes() {
        let key = keyquorum_crypto::secret::Secret::new(blstrs::Scalar::from(77u64));
        let peer = Peer::new(&key, "/ip4/127.0.0.1/tcp/1".into());
        for r in [
            Request::Query,
            Request::Leave,
            Request::Members,
            Request::Admit(
                Box::new(peer),
                NetworkParams {
                    section: SectionParams::default(),
                    round_ms: 1000,
                },
            ),
            Request::Alive(Box::new(AliveStatement::sign(&key, 4))),
        ] {
            let bytes = r.encode();
            assert_eq!(Request::decode(&bytes).unwrap(), r);
            assert!(Request::decode(&[bytes.as_slice(), &[0]].concat()).is_err());
            assert!(Request::decode(&bytes[..bytes.len() - 1]).is_err() || bytes.len() == 1);
        }
        assert!(Request::decode(&[]).is_err());
        assert!(Request::decode(&[9]).is_err());
    }

    #[test]
    fn member_lists_decode_exactly_what_encodes_sorted_and_bounded() {
        let peers: Vec<Peer> = (1..=5u64)
            .map(|i| {
                let key = keyquorum_crypto::secret::Secret::new(blstrs::Scalar::from(i));
                Peer::new(&key, format!("/ip4/127.0.0.1/tcp/{i}"))
            })
            .collect();
        // Any order, duplicates included: one canonical list, by name.
        let doubled: Vec<&Peer> = peers.iter().rev().chain(&peers).collect();
        let bytes = encode_members(doubled);
        let back = decode_members(&bytes).unwrap();
        let mut sorted = peers.clone();
        sorted.sort_by_key(Peer::name);
        assert_eq!(back, sorted);
        assert_eq!(encode_members(&back), bytes);
        assert_eq!(decode_members(&encode_members([])).unwrap(), Vec::new());
        assert!(decode_members(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_members(&[bytes.as_slice(), &[0]].concat()).is_err());
        // A refusal code is no list.
        assert!(decode_members(&[REFUSED_NOT_ELDER]).is_err());
        // Out of order, or a name twice: not canonical.
        let entry = |p: &Peer| {
            let mut e = Vec::new();
            p.encode(&mut e);
            e
        };
        for pair in [[&sorted[1], &sorted[0]], [&sorted[0], &sorted[0]]] {
            let mut w = Writer::new();
            w.u32(2);
            for p in pair {
                w.bytes(&entry(p));
            }
            assert!(decode_members(&w.finish()).is_err());
        }
        // Counts and lengths past their bounds are refused before anything is read.
        let mut many = Writer::new();
        many.u32(MAX_MEMBERS as u32 + 1);
        assert!(matches!(
            decode_members(&many.finish()),
            Err(WireError::TooLong { .. })
        ));
        let mut long = Writer::new();
        long.u32(1).u32(MAX_PEER_LEN as u32 + 1);
        assert!(matches!(
            decode_members(&long.finish()),
            Err(WireError::TooLong { .. })
        ));
        // The longest address fits the bound on an entry.
        let key = keyquorum_crypto::secret::Secret::new(blstrs::Scalar::from(9u64));
        let widest = Peer::new(&key, "x".repeat(keyquorum_sections::elders::MAX_ADDR_LEN));
        assert!(entry(&widest).len() <= MAX_PEER_LEN);
        // Past the cap, the first names only (the name is the node key's alone).
        let many: Vec<Peer> = (0..MAX_MEMBERS as u64 + 3)
            .map(|i| Peer {
                node_key: tbls::public_key::<MinPk>(&keyquorum_crypto::secret::Secret::new(
                    blstrs::Scalar::from(1000 + i),
                )),
                ..widest.clone()
            })
            .collect();
        let kept = decode_members(&encode_members(&many)).unwrap();
        assert_eq!(kept.len(), MAX_MEMBERS);
        let mut names: Vec<Name> = many.iter().map(Peer::name).collect();
        names.sort();
        assert_eq!(
            kept.iter().map(Peer::name).collect::<Vec<_>>(),
            names[..MAX_MEMBERS]
        );
    }

    /// Three peers, in no particular order, for the member list properties.
    fn listed_peers() -> Vec<Peer> {
        (0..3u64)
            .map(|i| {
                let key = keyquorum_crypto::secret::Secret::new(blstrs::Scalar::from(70 + i));
                Peer::new(&key, format!("/ip4/127.0.0.1/tcp/{}", 4000 + i))
            })
            .collect()
    }

    #[test]
    fn departed_names_in_a_member_answer_decode_exactly_what_encodes() {
        let peers = listed_peers();
        let names = [Name([7; 32]), Name([1; 32]), Name([1; 32])];
        let bytes = encode_members_answer(&peers, &names);
        let (decoded, departed) = decode_members_answer(&bytes).unwrap();
        assert_eq!(decoded.len(), 3);
        // Ascending, once each.
        assert_eq!(departed, vec![Name([1; 32]), Name([7; 32])]);
        let list = encode_members(&peers);
        let answer = |names: &[[u8; 32]]| {
            let mut out = list.clone();
            out.extend_from_slice(&(names.len() as u32).to_be_bytes());
            for n in names {
                out.extend_from_slice(n);
            }
            out
        };
        assert!(decode_members_answer(&answer(&[[1; 32], [7; 32]])).is_ok());
        // Out of order, twice, trailing, cut short, or missing: refused.
        for bad in [
            answer(&[[7; 32], [1; 32]]),
            answer(&[[1; 32], [1; 32]]),
            [answer(&[[1; 32]]), vec![0]].concat(),
            answer(&[[1; 32]])[..list.len() + 4 + 31].to_vec(),
            list.clone(),
        ] {
            assert!(decode_members_answer(&bad).is_err());
        }
        let mut many = list.clone();
        many.extend_from_slice(&(MAX_DEPARTED_LISTED as u32 + 1).to_be_bytes());
        assert!(matches!(
            decode_members_answer(&many),
            Err(WireError::TooLong { .. })
        ));
    }

    proptest::proptest! {
        /// A member answer comes from another elder: a valid one with one byte changed, one
        /// inserted, or cut short never panics the decoder, and whatever still decodes is
        /// canonical (encodes back to the same bytes).
        #[test]
        fn mutated_member_lists_never_panic_and_whatever_decodes_round_trips(
            listed in 0..4usize,
            mutation in 0..3u8,
            at in proptest::prelude::any::<usize>(),
            byte in proptest::prelude::any::<u8>(),
        ) {
            let peers = listed_peers();
            let departed = [Name([3; 32]), Name([9; 32])];
            let valid = encode_members_answer(&peers[..listed], &departed[..listed.min(2)]);
            let (decoded, names) = decode_members_answer(&valid).unwrap();
            proptest::prop_assert_eq!(encode_members_answer(&decoded, &names), valid.clone());
            let mut bytes = valid.clone();
            let at = at % (bytes.len() + 1);
            match mutation {
                0 if at < bytes.len() => bytes[at] ^= byte.max(1),
                0 | 1 => bytes.insert(at, byte),
                _ => bytes.truncate(at),
            }
            if let Ok((peers, names)) = decode_members_answer(&bytes) {
                proptest::prop_assert_eq!(encode_members_answer(&peers, &names), bytes);
            }
        }
    }

    #[test]
    fn query_answers_decode_exactly_what_encodes_and_carry_the_parameters() {
        use keyquorum_sections::KeyChain;
        use keyquorum_sections::sap;
        let founder = keyquorum_crypto::secret::Secret::new(blstrs::Scalar::from(5u64));
        let (sap0, share0) = sap::genesis(
            Peer::new(&founder, "/ip4/127.0.0.1/tcp/1".into()),
            &mut rand_core::OsRng,
        );
        let record = ElderRecord {
            genesis_key: sap0.section_key,
            chain: KeyChain::genesis(),
            sap: sap0.clone(),
            superseded: Vec::new(),
            linked: Vec::new(),
            open_splits: Vec::new(),
        };
        let answer = QueryAnswer {
            section: SectionAnswer::new(record.clone(), Some(SignedSap::genesis(&sap0, &share0))),
            params: NetworkParams {
                section: SectionParams {
                    elder_count: 5,
                    min_section_size: 9,
                },
                round_ms: 750,
            },
        };
        let bytes = answer.encode();
        let back = QueryAnswer::decode(&bytes).unwrap();
        assert_eq!(back.section.encode(), answer.section.encode());
        assert_eq!((back.params, back.section.record), (answer.params, record));
        assert!(QueryAnswer::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(QueryAnswer::decode(&[bytes.as_slice(), &[0]].concat()).is_err());
        assert!(QueryAnswer::decode(&bytes[..PARAMS_LEN - 1]).is_err());
        // Without the parameters in front, a bare section answer is refused.
        assert!(QueryAnswer::decode(&answer.section.encode()).is_err());
    }

    #[test]
    fn an_elder_admits_only_a_joiner_running_its_network_parameters() {
        let key = keyquorum_crypto::secret::Secret::new(blstrs::Scalar::from(77u64));
        let from = PeerId::random();
        let peer = Peer::new(&key, format!("/ip4/127.0.0.1/tcp/1/p2p/{from}"));
        let ours = NetworkParams::new(SectionParams::default(), Duration::from_millis(1000));
        let name = peer.name();
        assert_eq!(
            refusal(&peer, &ours, &ours, &name, &from, &Prefix::ROOT),
            None
        );
        // A shorter round than the section's was admitted before.
        for theirs in [
            NetworkParams {
                section: SectionParams {
                    elder_count: ours.section.elder_count + 1,
                    ..ours.section
                },
                ..ours
            },
            NetworkParams {
                section: SectionParams {
                    min_section_size: ours.section.min_section_size - 1,
                    ..ours.section
                },
                ..ours
            },
            NetworkParams {
                round_ms: 50,
                ..ours
            },
        ] {
            assert_eq!(
                refusal(&peer, &theirs, &ours, &name, &from, &Prefix::ROOT),
                Some(REFUSED_PARAMS)
            );
        }
        // The other conditions still hold: another sender, or another connection, is refused.
        assert_eq!(
            refusal(&peer, &ours, &ours, &name, &PeerId::random(), &Prefix::ROOT),
            Some(REFUSED)
        );
    }

    proptest::proptest! {
        /// A join request comes from any peer: decoding never panics, and whatever decodes is
        /// canonical (it encodes back to the input), the alive statement's tag included.
        #[test]
        fn decoding_arbitrary_requests_never_panics_and_round_trips(
            tag in 0u8..6,
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        ) {
            let bytes = [&[tag][..], &body].concat();
            if let Ok(request) = Request::decode(&bytes) {
                proptest::prop_assert_eq!(request.encode(), bytes);
            }
        }
    }

    #[test]
    fn a_genesis_answer_is_accepted_only_with_the_genesis_key_signature() {
        use keyquorum_sections::KeyChain;
        use keyquorum_sections::sap;
        let founder = keyquorum_crypto::secret::Secret::new(blstrs::Scalar::from(5u64));
        let peer = Peer::new(&founder, "/ip4/127.0.0.1/tcp/1".into());
        let (sap0, share0) = sap::genesis(peer, &mut rand_core::OsRng);
        let g = sap0.section_key;
        let record = ElderRecord {
            genesis_key: g,
            chain: KeyChain::genesis(),
            sap: sap0.clone(),
            superseded: Vec::new(),
            linked: Vec::new(),
            open_splits: Vec::new(),
        };
        let signed = SignedSap::genesis(&sap0, &share0);
        assert_eq!(check_answer(&record, Some(&signed), &g), Ok(()));
        assert!(check_answer(&record, None, &g).is_err());
        // A bootstrap peer naming another genesis elder cannot sign for it.
        let liar = keyquorum_crypto::secret::Secret::new(blstrs::Scalar::from(6u64));
        let mut other = record.clone();
        other.sap.elders = vec![Peer::new(&liar, "/ip4/127.0.0.1/tcp/2".into())];
        let (_, liar_share) = sap::genesis(other.sap.elders[0].clone(), &mut rand_core::OsRng);
        let forged = SignedSap::genesis(&other.sap, &liar_share);
        assert!(check_answer(&other, Some(&forged), &g).is_err());
        assert!(check_answer(&other, Some(&signed), &g).is_err());
        // The answer survives its encoding.
        let answer = SectionAnswer::new(record.clone(), Some(signed.clone()));
        let back = SectionAnswer::decode(&answer.encode()).unwrap();
        assert_eq!((back.record, back.signed), (record, Some(signed)));
    }

    #[test]
    fn a_later_answer_is_accepted_only_with_both_signatures_of_its_sap() {
        use keyquorum_sections::KeyChain;
        use keyquorum_sections::chain::Link;
        use keyquorum_sections::sap::{self, KeyShare};
        let founder = keyquorum_crypto::secret::Secret::new(blstrs::Scalar::from(5u64));
        let peer = Peer::new(&founder, "/ip4/127.0.0.1/tcp/1".into());
        let (sap0, share0) = sap::genesis(peer.clone(), &mut rand_core::OsRng);
        let g = sap0.section_key;
        let (mut sap1, share1) = sap::genesis(peer, &mut rand_core::OsRng);
        let child = KeyShare {
            index: share1.index,
            share: share1.share,
            section_key: sap1.section_key,
        };
        sap1.prefix = sap0.prefix;
        let k1 = sap1.section_key;
        let link = Link {
            key: k1,
            parent_key: g,
            signature: tbls::sign::<MinPk>(&share0.share, &key_bytes(&k1)),
        };
        let record = ElderRecord {
            genesis_key: g,
            chain: KeyChain::from_links(vec![link]).unwrap(),
            sap: sap1.clone(),
            superseded: Vec::new(),
            linked: Vec::new(),
            open_splits: Vec::new(),
        };
        let signed = SignedSap {
            sap: sap1.clone(),
            sap_signature: tbls::sign::<MinPk>(&child.share, &sap1.signing_bytes()),
            parent_key: g,
            parent_signature: link.signature,
        };
        assert_eq!(check_answer(&record, Some(&signed), &g), Ok(()));
        // A valid SAP signature beside a parent signature that is not the chain's link (here
        // the new key's own signature over itself): refused, so it is never stored or served.
        let mut junk = signed.clone();
        junk.parent_signature = tbls::sign::<MinPk>(&child.share, &key_bytes(&k1));
        assert!(check_answer(&record, Some(&junk), &g).is_err());
        let mut other_parent = signed.clone();
        other_parent.parent_key = k1;
        assert!(check_answer(&record, Some(&other_parent), &g).is_err());
        // And without a valid SAP signature.
        let mut unsigned = signed;
        unsigned.sap_signature = junk.parent_signature;
        assert!(check_answer(&record, Some(&unsigned), &g).is_err());
    }
}
