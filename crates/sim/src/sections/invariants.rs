//! What a sections run must never break, as typed violations, and the checks over a snapshot of
//! the honest nodes (pure functions, so a test can feed a forged chain and see it refused).
//!
//! The checks that need the whole run's history (two keys for one session, a spam start that
//! started, an honest node excluded, conflicting signed SAPs, too many restarts) are recorded by
//! the simulated network as the outputs happen; the snapshot checks here run whenever it is
//! quiet.

use std::collections::BTreeMap;
use std::fmt;

use keyquorum_sections::chain::ChainError;
use keyquorum_sections::keys::{KEY_LEN, PublicKey, key_bytes};
use keyquorum_sections::sap::Sap;
use keyquorum_sections::{KeyChain, Name, Prefix, SessionId};

/// The first bytes of a name, for messages.
pub struct Short<'a>(pub &'a [u8]);

impl fmt::Display for Short<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.iter().take(4) {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A broken invariant of a sections run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// An honest node's key chain does not verify from the genesis key.
    #[error("the key chain of {} does not verify from the genesis key: {error}", Short(&.node.0))]
    ChainDoesNotVerify {
        /// The node.
        node: Name,
        /// What the verifier refused.
        error: ChainError,
    },
    /// An honest node's chain does not end in its SAP's section key.
    #[error("the key chain of {} does not end in its section key", Short(&.node.0))]
    ChainNotAtSectionKey {
        /// The node.
        node: Name,
    },
    /// Two honest nodes of one section hold different chains or SAPs once the network is quiet.
    #[error("honest nodes of section {prefix} hold different chains or SAPs when quiet")]
    SectionDisagrees {
        /// The section.
        prefix: Prefix,
    },
    /// Two honest nodes of one section hold chains of which neither extends the other (a run
    /// beyond the bound, where a node may lag its section but must not leave its history).
    #[error(
        "honest nodes of section {prefix} hold chains that diverge (neither extends the other)"
    )]
    ChainsDiverge {
        /// The section.
        prefix: Prefix,
    },
    /// Within the fault bound, honest nodes sit in nested sections once the network is quiet:
    /// a split completed for one half only.
    #[error("honest nodes in nested sections {outer} and {inner} when quiet")]
    NestedSections {
        /// The shorter prefix.
        outer: Prefix,
        /// The longer prefix.
        inner: Prefix,
    },
    /// A section key was handed over to two different keys for one prefix (a fork), or to a
    /// prefix that is neither its own nor one of its halves, or to its own prefix and a half.
    #[error("key {} has a second or misplaced child for section {prefix}", Short(.parent))]
    Fork {
        /// The parent key.
        parent: [u8; KEY_LEN],
        /// The child's prefix.
        prefix: Prefix,
    },
    /// Honest elders emitted different signed SAPs for one parent key and prefix.
    #[error("honest elders handed section {prefix} over to different SAPs")]
    ConflictingSap {
        /// The section.
        prefix: Prefix,
    },
    /// An honest node holds a share and is not an elder of its SAP, or is an elder without one.
    #[error("{} holds a share: {holds}, is an elder: {elder}", Short(&.node.0))]
    ShareMismatch {
        /// The node.
        node: Name,
        /// Whether it holds a share of its SAP's key (or of another key).
        holds: bool,
        /// Whether its SAP lists it.
        elder: bool,
    },
    /// An honest node took shares of two different keys in one session.
    #[error("{} took shares of two different keys in session {}", Short(&.node.0), Short(&.session.0))]
    TwoKeysOneSession {
        /// The node.
        node: Name,
        /// The session.
        session: SessionId,
    },
    /// An honest node started the DKG of a start fewer than a supermajority of elders signed.
    #[error("{} started the DKG of spam start {}", Short(&.node.0), Short(&.session.0))]
    SpamStarted {
        /// The node.
        node: Name,
        /// The spam session.
        session: SessionId,
    },
    /// A checked failure agreement named an honest node although the session had at most
    /// `n - supermajority(n)` faulty candidates (so fewer than enough observations could be
    /// false).
    #[error("a failure agreement of session {} excluded honest {}", Short(&.session.0), Short(&.node.0))]
    HonestExcluded {
        /// The failed session.
        session: SessionId,
        /// The honest node named.
        node: Name,
    },
    /// An honest node sent bytes that do not decode.
    #[error("{} sent a message that does not decode", Short(&.node.0))]
    HonestBadEncoding {
        /// The sender.
        node: Name,
    },
    /// A node restarted from its store sent a message an honest node refused as conflicting
    /// with one it sent before the crash (a second vote, observation or key for a session).
    #[error("{} restarted and sent a message conflicting with one sent before", Short(&.node.0))]
    RestartConflicts {
        /// The restarted node.
        node: Name,
    },
    /// An honest node took a faulty peer's forged section answer (a newer SAP on a key no
    /// section key signed).
    #[error("{} caught up to a forged SAP", Short(&.node.0))]
    ForgedSapAdopted {
        /// The node.
        node: Name,
    },
    /// Within the fault bound, a generation of a section needed more restarts than it had
    /// faulty candidates.
    #[error(
        "section {prefix} generation {generation}: {restarts} restarts with {faulty} faulty candidates"
    )]
    TooManyRestarts {
        /// The section.
        prefix: Prefix,
        /// The generation.
        generation: u64,
        /// Sessions started beyond the first.
        restarts: usize,
        /// Distinct faulty candidates of those sessions.
        faulty: usize,
    },
    /// Within the fault bound, a section did not reach the elders (or the split) its members
    /// call for once the network was quiet.
    #[error("section {prefix} did not reach the elders its members call for: {detail}")]
    NotLive {
        /// The section.
        prefix: Prefix,
        /// What is missing.
        detail: String,
    },
    /// The network did not go quiet within the event budget.
    #[error("the network did not go quiet within {events} events")]
    NoQuiet {
        /// Events processed.
        events: u64,
    },
}

/// What the snapshot checks see of one honest, running node.
#[derive(Debug, Clone)]
pub struct NodeView {
    /// Its name.
    pub name: Name,
    /// Its key chain.
    pub chain: KeyChain,
    /// Its SAP.
    pub sap: Sap,
    /// The section key its share is of, if it holds one.
    pub share_key: Option<PublicKey>,
    /// It crashed while the DKG of its SAP's key ran (started before it came back, the honest
    /// candidates' shares taken after it went down) and its run gave it no share: nothing
    /// gives a share of a key whose DKG a node missed the end of (docs/protocol.md,
    /// "Catch-up"), so it may be an elder without one. It must still not hold a share of
    /// another key.
    pub missed_dkg: bool,
}

/// One chain: verifies from `genesis` (each link signed by the key before it) and ends in
/// `section_key`.
pub fn check_chain(
    node: Name,
    genesis: &PublicKey,
    chain: &KeyChain,
    section_key: &PublicKey,
) -> Result<(), Violation> {
    ChainChecks::new(genesis).check(node, chain, section_key)
}

/// [`check_chain`] over many nodes' chains, each link's signature verified once: the nodes of a
/// section hold the same chain, or one a prefix of another's, so a chain's links shared with a
/// chain verified before are known good ([`KeyChain::verify_extending`]). The answers are those
/// of checking each chain alone.
struct ChainChecks<'a> {
    genesis: &'a PublicKey,
    verified: Vec<&'a KeyChain>,
}

impl<'a> ChainChecks<'a> {
    fn new(genesis: &'a PublicKey) -> Self {
        ChainChecks {
            genesis,
            verified: Vec::new(),
        }
    }

    fn check(
        &mut self,
        node: Name,
        chain: &'a KeyChain,
        section_key: &PublicKey,
    ) -> Result<(), Violation> {
        let closest = self
            .verified
            .iter()
            .copied()
            .max_by_key(|v| v.shared_links(chain));
        let genesis_only = KeyChain::genesis();
        chain
            .verify_extending(self.genesis, closest.unwrap_or(&genesis_only))
            .map_err(|error| Violation::ChainDoesNotVerify { node, error })?;
        if closest.is_none_or(|v| v.shared_links(chain) < chain.links().len()) {
            self.verified.push(chain);
        }
        if chain.last_key(self.genesis) != *section_key {
            return Err(Violation::ChainNotAtSectionKey { node });
        }
        Ok(())
    }
}

/// Checks the honest running nodes of a quiet network: every chain verifies from genesis and
/// ends in its SAP's key; a section's nodes agree on chain and SAP; shares are held by exactly
/// the elders (an elder whose DKG ended while it was down, [`NodeView::missed_dkg`], may
/// lack one).
pub fn check_quiet(genesis: &PublicKey, views: &[NodeView]) -> Result<(), Violation> {
    let mut sections: BTreeMap<Prefix, &NodeView> = BTreeMap::new();
    let mut chains = ChainChecks::new(genesis);
    for v in views {
        chains.check(v.name, &v.chain, &v.sap.section_key)?;
        let expected = v.sap.names().contains(&v.name).then_some(v.sap.section_key);
        let missed = v.missed_dkg && v.share_key.is_none();
        if v.share_key != expected && !missed {
            return Err(Violation::ShareMismatch {
                node: v.name,
                holds: v.share_key.is_some(),
                elder: expected.is_some(),
            });
        }
        match sections.get(&v.sap.prefix) {
            Some(first) if first.chain != v.chain || first.sap != v.sap => {
                return Err(Violation::SectionDisagrees {
                    prefix: v.sap.prefix,
                });
            }
            Some(_) => {}
            None => {
                sections.insert(v.sap.prefix, v);
            }
        }
    }
    Ok(())
}

/// What [`check_quiet`] keeps of its checks beyond the fault bound, where more candidates than
/// a DKG tolerates may vote for different posts (so an honest node's share need not match its
/// SAP: an elder may lack one, a candidate may hold one of a key not handed over,
/// `keyquorum_sections::dkg`) and a failure agreement may exclude an honest node (which then
/// stops following its section): every chain verifies from genesis and ends in its SAP's key,
/// and the chains of two nodes whose sections are the same or one within the other never
/// diverge, one extending the other (a node that lags behind a split holds a prefix of its
/// half's chain).
pub fn check_quiet_beyond_bound(genesis: &PublicKey, views: &[NodeView]) -> Result<(), Violation> {
    let mut chains = ChainChecks::new(genesis);
    for v in views {
        chains.check(v.name, &v.chain, &v.sap.section_key)?;
    }
    for (i, a) in views.iter().enumerate() {
        for b in &views[i + 1..] {
            let (pa, pb) = (a.sap.prefix, b.sap.prefix);
            if !pa.is_self_or_descendant_of(&pb) && !pb.is_self_or_descendant_of(&pa) {
                continue;
            }
            let (short, long) = if a.chain.links().len() <= b.chain.links().len() {
                (&a.chain, &b.chain)
            } else {
                (&b.chain, &a.chain)
            };
            if long.shared_links(short) < short.links().len() {
                return Err(Violation::ChainsDiverge {
                    prefix: if pa.bit_count() <= pb.bit_count() {
                        pa
                    } else {
                        pb
                    },
                });
            }
        }
    }
    Ok(())
}

/// What a run beyond the fault bound let happen that [`check_quiet`] would refuse and
/// [`check_quiet_beyond_bound`] allows, counted over the honest running nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BeyondBound {
    /// Elders of their SAP without a share of its key (not explained by a crash during the
    /// DKG, [`NodeView::missed_dkg`]).
    pub elders_without_share: u64,
    /// Nodes whose chain is shorter than that of a node of the same section or of one within
    /// the other: left behind (excluded by a failure agreement, say).
    pub lagging: u64,
}

/// Counts [`BeyondBound`] over `views`.
pub fn beyond_bound_counts(views: &[NodeView]) -> BeyondBound {
    let elders_without_share = views
        .iter()
        .filter(|v| {
            v.sap.names().contains(&v.name)
                && v.share_key != Some(v.sap.section_key)
                && !v.missed_dkg
        })
        .count() as u64;
    let lagging = views
        .iter()
        .filter(|v| {
            views.iter().any(|w| {
                let (pv, pw) = (v.sap.prefix, w.sap.prefix);
                (pv.is_self_or_descendant_of(&pw) || pw.is_self_or_descendant_of(&pv))
                    && w.chain.links().len() > v.chain.links().len()
            })
        })
        .count() as u64;
    BeyondBound {
        elders_without_share,
        lagging,
    }
}

/// Liveness of splits: once quiet, no honest node is left in a section whose split another
/// half completed.
pub fn check_not_nested(views: &[NodeView]) -> Result<(), Violation> {
    let prefixes: std::collections::BTreeSet<Prefix> = views.iter().map(|v| v.sap.prefix).collect();
    for a in &prefixes {
        for b in &prefixes {
            if a != b && b.is_self_or_descendant_of(a) {
                return Err(Violation::NestedSections {
                    outer: *a,
                    inner: *b,
                });
            }
        }
    }
    Ok(())
}

/// The key tree the honest elders handed over, as `(parent key, new SAP)` pairs: each parent
/// key has one child for its own prefix (an elder change), or one for each of its halves (a
/// split), never both, never two for one prefix, never anything else. A fork shows here even
/// when every chain verifies on its own. Only the children of parent keys for which `checked`
/// holds are checked (beyond the fault bound, faulty elders may fork a key they control); every
/// handover still places its key in the tree. The handovers in `placed` (made by nodes the
/// checks do not hold to agree, such as a faulty elder that had to act honestly) place their
/// keys too, so that the honest handovers from those keys are checked, and count as children of
/// checked keys; a key `handed` places wins over the same key in `placed`.
pub fn check_key_tree(
    genesis: &PublicKey,
    handed: &[(PublicKey, Sap)],
    placed: &[(PublicKey, Sap)],
    checked: impl Fn(&PublicKey) -> bool,
) -> Result<(), Violation> {
    let mut prefix_of: BTreeMap<[u8; KEY_LEN], Prefix> = BTreeMap::new();
    for (_, sap) in placed.iter().chain(handed) {
        prefix_of.insert(key_bytes(&sap.section_key), sap.prefix);
    }
    prefix_of.insert(key_bytes(genesis), Prefix::ROOT);
    let mut children: BTreeMap<[u8; KEY_LEN], BTreeMap<Prefix, [u8; KEY_LEN]>> = BTreeMap::new();
    // The handovers of other nodes count as children of a checked key too: faulty nodes run
    // the honest coordinator, so they never hand a checked key over to a second key either.
    let all = handed.iter().chain(placed);
    for (parent, sap) in all.filter(|(parent, _)| checked(parent)) {
        let parent = key_bytes(parent);
        let fork = Violation::Fork {
            parent,
            prefix: sap.prefix,
        };
        let Some(parent_prefix) = prefix_of.get(&parent) else {
            return Err(fork);
        };
        if !sap.prefix.is_self_or_child_of(parent_prefix) {
            return Err(fork);
        }
        let kids = children.entry(parent).or_default();
        let key = key_bytes(&sap.section_key);
        if kids.insert(sap.prefix, key).is_some_and(|k| k != key) {
            return Err(fork);
        }
        // Its own prefix and a half at once: an elder change and a split of one key.
        if kids.contains_key(parent_prefix) && kids.len() > 1 {
            return Err(fork);
        }
    }
    Ok(())
}
