//! Catching up with a section after missed handovers.
//!
//! A node learns a new SAP from the `NewElders` message the elders send at a handover
//! ([`crate::sap`]). A node that was down or cut off during one or more handovers keeps an older
//! SAP and key chain: to move on, it asks peers for their section record ([`SectionAnswer`], the
//! answer to the join protocol's query) and takes an answer only if, checked from what it
//! already holds and from nothing the answerer says about itself ([`extension`]):
//! 1. the answer starts from the node's genesis key, and its chain is longer than the node's (a
//!    shorter or equal chain has nothing to teach and is ignored);
//! 2. the answer's chain holds the node's own chain as its first links (otherwise it forked);
//! 3. every further link is signed by the key before it, the first by the node's newest key
//!    ([`KeyChain::push`]), so every new key is vouched for by a key the node already trusts;
//! 4. the answer's signed SAP is the SAP of its record, its link is the chain's last one, the
//!    SAP is well formed ([`Sap::check`]) and carries the signature of the chain's last key
//!    ([`sap::extend`], the code a handover's apply runs);
//! 5. the SAP's prefix holds the node's name and lies under the node's prefix: at a split the
//!    chain branches into one child per half (seed 002, "Section Split"), and a node follows the
//!    child its name falls in, so an answer from the other half is refused.
//!
//! The SAPs between the node's and the answer's are not needed: each key on the way is vouched
//! for by its parent's signature, and only the last SAP names elders that hold shares today.
//! The coordinator then takes the new chain and SAP as it takes a handed-over SAP
//! ([`crate::coordinator::Coordinator::catch_up`]): sessions of older generations are dropped,
//! and the node keeps a share only if it holds one of the new key (from a DKG it ran before it
//! missed the handover).
//!
//! When and whom to ask is shared by the node runtime and the simulator: a node asks the
//! next [`CATCH_UP_FAN_OUT`] peers in turn ([`catch_up_targets`]), periodically and sooner when
//! a known peer's ([`may_hasten`]) message shows the section moved on
//! ([`shows_section_ahead`]).
//!
//! An answer whose first bytes show the node's genesis key and a chain no longer than the
//! node's is dropped unread ([`not_ahead`]): rule 1 would drop it after decoding, which checks
//! every key and signature.
//!
//! The answer's encoding is canonical and bounded ([`SectionAnswer::decode`]): at most
//! [`MAX_ANSWER_LEN`] bytes, no trailing bytes, and no superseded sessions or signed links (they
//! are the answerer's own state, which a query answer leaves out).

use std::collections::BTreeSet;

use keyquorum_dkg::wire::{Reader, WireError, Writer};

use crate::chain::{ChainError, KeyChain, MAX_CHAIN_LINKS};
use crate::coordinator::Dropped;
use crate::elders::{Member, Peer};
use crate::keys::{KEY_LEN, PublicKey, key_bytes};
use crate::name::Name;
use crate::sap::{self, HandoverError, Sap, SignedSap};
use crate::store::ElderRecord;
use crate::wire::Message;

/// Longest answer accepted, checked before anything is decoded: the chain at 192 bytes a link
/// (about 5,000 links), the SAP and its signatures.
pub const MAX_ANSWER_LEN: usize = 1 << 20;

/// Most peers asked for their section record at once.
pub const CATCH_UP_FAN_OUT: usize = 4;

/// The peers to ask for their section record on ask number `turn`: the elders of `sap`, then the
/// members under its prefix (the other half's after a split would answer with their branch),
/// without us; [`CATCH_UP_FAN_OUT`] of them, the next ones in turn each time, so a node whose
/// old elders are gone still reaches the others.
pub fn catch_up_targets(sap: &Sap, members: &[Member], us: &Name, turn: usize) -> Vec<Peer> {
    let mut seen = BTreeSet::from([*us]);
    let all: Vec<&Peer> = sap
        .elders
        .iter()
        .chain(
            members
                .iter()
                .map(|m| &m.peer)
                .filter(|p| sap.prefix.matches(&p.name())),
        )
        .filter(|p| seen.insert(p.name()))
        .collect();
    if all.len() <= CATCH_UP_FAN_OUT {
        return all.into_iter().cloned().collect();
    }
    let first = turn.wrapping_mul(CATCH_UP_FAN_OUT) % all.len();
    (0..CATCH_UP_FAN_OUT)
        .map(|i| all[(first + i) % all.len()].clone())
        .collect()
}

/// Whether a message refused with `dropped` shows the section may have moved on without us:
/// it is for a later generation, or it is a SAP whose parent is not our newest key (a handover
/// we missed).
pub fn shows_section_ahead(dropped: &Dropped) -> bool {
    matches!(
        dropped,
        Dropped::FutureGeneration { .. }
            | Dropped::Handover(HandoverError::Chain(ChainError::WrongParent { .. }))
    )
}

/// Whether `from` may make a node with `sap` and `members` ask for the section record sooner:
/// an elder of its SAP, or a member it knows under the SAP's prefix (strangers may not make it
/// query at will).
pub fn may_hasten(sap: &Sap, members: &[Member], from: &Name) -> bool {
    sap.names().contains(from)
        || members
            .iter()
            .any(|m| m.peer.name() == *from && sap.prefix.matches(from))
}

/// A node's answer to a query for its section: its record (genesis key, key chain, SAP) and the
/// signed SAP it last applied (none before it applied one: a joiner's first record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionAnswer {
    /// The answerer's record, without superseded sessions, signed links and open splits.
    pub record: ElderRecord,
    /// The answerer's last signed SAP.
    pub signed: Option<SignedSap>,
}

impl SectionAnswer {
    /// The answer a node holding `record` and `signed` gives: its superseded sessions, signed
    /// links and open splits left out.
    pub fn new(mut record: ElderRecord, signed: Option<SignedSap>) -> Self {
        record.superseded.clear();
        record.linked.clear();
        record.open_splits.clear();
        SectionAnswer { record, signed }
    }

    /// The record ([`ElderRecord::encode`]), then a flag and the signed SAP as a
    /// [`Message::NewElders`], each length-prefixed.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(&self.record.encode());
        match &self.signed {
            Some(s) => w.u8(1).bytes(&Message::NewElders(s.clone()).encode()),
            None => w.u8(0),
        };
        w.finish()
    }

    /// Decodes [`SectionAnswer::encode`]: canonical encodings only, at most [`MAX_ANSWER_LEN`]
    /// bytes, no superseded sessions, signed links or open splits, nothing after the end.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_ANSWER_LEN {
            return Err(WireError::TooLong {
                what: "section answer",
                max: MAX_ANSWER_LEN,
                actual: bytes.len(),
            });
        }
        let mut r = Reader::new(bytes);
        let record = ElderRecord::decode(r.bytes("record", MAX_ANSWER_LEN)?)?;
        if !record.superseded.is_empty() {
            return Err(WireError::NonCanonical("superseded sessions in an answer"));
        }
        if !record.linked.is_empty() {
            return Err(WireError::NonCanonical("signed links in an answer"));
        }
        if !record.open_splits.is_empty() {
            return Err(WireError::NonCanonical("open splits in an answer"));
        }
        let signed = match r.u8()? {
            0 => None,
            1 => match Message::decode(r.bytes("signed SAP", MAX_ANSWER_LEN)?)? {
                Message::NewElders(s) => Some(s),
                _ => return Err(WireError::NonCanonical("signed SAP")),
            },
            tag => {
                return Err(WireError::UnknownTag {
                    what: "signed SAP flag",
                    tag,
                });
            }
        };
        r.finish()?;
        Ok(SectionAnswer { record, signed })
    }
}

/// Whether an encoded answer ([`SectionAnswer::encode`]) is, by its first bytes alone, of our
/// genesis key and holds a chain no longer than ours: [`extension`] finds nothing in such an
/// answer (its first rule), so a node need not decode it, which checks every key and signature
/// of its chain and SAPs. Most answers to the periodic ask are of this kind: the asker is not
/// behind. `false` when the bytes say otherwise or do not parse that far; the caller then
/// decodes the answer and checks it whole.
pub fn not_ahead(bytes: &[u8], genesis: &PublicKey, chain: &KeyChain) -> bool {
    let peek = || -> Result<bool, WireError> {
        if bytes.len() > MAX_ANSWER_LEN {
            return Ok(false);
        }
        let mut answer = Reader::new(bytes);
        let mut record = Reader::new(answer.bytes("record", MAX_ANSWER_LEN)?);
        // Keys have one encoding, so equal bytes are the same key.
        let same_genesis = record.fixed(KEY_LEN)? == key_bytes(genesis).as_slice();
        let links = record.count("chain links", MAX_CHAIN_LINKS)?;
        Ok(same_genesis && links <= chain.links().len())
    };
    peek().unwrap_or(false)
}

/// Why an answer was refused. A refused answer changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatchUpError {
    /// The answer's chain starts from another genesis key.
    #[error("another genesis key")]
    OtherGenesis,
    /// The answer's chain differs from ours at `position`: a fork, not an extension.
    #[error("the chain forks from ours at link {position}")]
    Forked {
        /// The first link that differs.
        position: usize,
    },
    /// A longer chain without the signed SAP of its last key.
    #[error("no signed SAP")]
    MissingSap,
    /// The signed SAP is not the record's, or its link is not the chain's last.
    #[error("the signed SAP is not the one the chain ends in")]
    SapNotAtChainEnd,
    /// The SAP's prefix does not hold our name: the other half of a split, its links and SAP
    /// signature verified.
    #[error("the SAP's prefix does not hold our name")]
    OtherBranch,
    /// A new link is refused (wrong parent, bad signature, chain too long).
    #[error("chain: {0}")]
    Chain(ChainError),
    /// The SAP is refused (malformed, not signed by its key, prefix not under ours).
    #[error("SAP: {0}")]
    Sap(HandoverError),
}

impl From<ChainError> for CatchUpError {
    fn from(e: ChainError) -> Self {
        CatchUpError::Chain(e)
    }
}

impl From<HandoverError> for CatchUpError {
    fn from(e: HandoverError) -> Self {
        match e {
            // The last link is pushed by the handover code: report it as any other link.
            HandoverError::Chain(e) => CatchUpError::Chain(e),
            e => CatchUpError::Sap(e),
        }
    }
}

/// What `answer` adds to a node named `our_name` with `chain` from `genesis` and authority
/// `current`: the longer chain and the new authority, `None` if the answer's chain is not
/// longer, or why it is refused (see the module docs). Works on a copy: `chain` is untouched.
pub fn extension(
    genesis: &PublicKey,
    chain: &KeyChain,
    current: &Sap,
    our_name: &Name,
    answer: &SectionAnswer,
) -> Result<Option<(KeyChain, Sap)>, CatchUpError> {
    if answer.record.genesis_key != *genesis {
        return Err(CatchUpError::OtherGenesis);
    }
    let ours = chain.links();
    let theirs = answer.record.chain.links();
    if theirs.len() <= ours.len() {
        return Ok(None);
    }
    let position = chain.shared_links(&answer.record.chain);
    if position < ours.len() {
        return Err(CatchUpError::Forked { position });
    }
    let signed = answer.signed.as_ref().ok_or(CatchUpError::MissingSap)?;
    if signed.sap != answer.record.sap || theirs.last() != Some(&signed.link()) {
        return Err(CatchUpError::SapNotAtChainEnd);
    }
    signed.sap.check()?;
    if !signed.sap.prefix.is_self_or_descendant_of(&current.prefix) {
        return Err(HandoverError::WrongPrefix.into());
    }
    let mut extended = chain.clone();
    for link in &theirs[ours.len()..theirs.len() - 1] {
        extended.push(genesis, *link)?;
    }
    let sap = sap::extend(&mut extended, genesis, signed)?;
    // Only once its links and signature verify: a caller tells its operator that the section
    // split while it was away, which no forged answer may make it say.
    if !sap.prefix.matches(our_name) {
        return Err(CatchUpError::OtherBranch);
    }
    Ok(Some((extended, sap)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Link;
    use crate::chain::tests::key;
    use crate::elders::Peer;
    use crate::elders::tests::member;
    use crate::keys::key_bytes;
    use crate::name::Prefix;
    use crate::session::SessionId;
    use blstrs::Scalar;
    use keyquorum_crypto::secret::Secret;
    use keyquorum_crypto::tbls::{self, MinPk};

    type Key = (Secret<Scalar>, PublicKey);

    /// A SAP of `prefix` whose key is held by one secret (these tests are about the chain, not
    /// about how a key's shares came to be), with the elders of seeds 0..24 under the prefix.
    fn sap_of(prefix: Prefix, key: &Key) -> Sap {
        let mut elders: Vec<Peer> = (0..24)
            .map(|i| member(i, 0).peer)
            .filter(|p| prefix.matches(&p.name()))
            .collect();
        elders.sort_by_key(Peer::name);
        elders.truncate(7);
        Sap {
            prefix,
            elders,
            section_key: key.1,
        }
    }

    /// `child` handed over from `parent`: the SAP signed by its key, the key by the parent's.
    fn handed_over(parent: &Key, child: &Key, prefix: Prefix) -> SignedSap {
        let sap = sap_of(prefix, child);
        SignedSap {
            sap_signature: tbls::sign::<MinPk>(&child.0, &sap.signing_bytes()),
            sap,
            parent_key: parent.1,
            parent_signature: tbls::sign::<MinPk>(&parent.0, &key_bytes(&child.1)),
        }
    }

    /// The answer of a node whose chain from `genesis` holds the links of `signed`, in order.
    fn answer(genesis: &Key, signed: &[&SignedSap]) -> SectionAnswer {
        let links: Vec<Link> = signed.iter().map(|s| s.link()).collect();
        let last = signed.last().unwrap();
        SectionAnswer::new(
            ElderRecord {
                genesis_key: genesis.1,
                chain: KeyChain::from_links(links).unwrap(),
                sap: last.sap.clone(),
                superseded: vec![(SessionId([7; 32]), 3)],
                linked: Vec::new(),
                open_splits: Vec::new(),
            },
            Some((*last).clone()),
        )
    }

    /// A name under `bits` (the first name bits), among seeds 0..24.
    fn name_under(bits: &[u8]) -> Name {
        (0..24)
            .map(|i| member(i, 0).peer.name())
            .find(|n| bits.iter().enumerate().all(|(i, b)| n.bit(i as u16) == *b))
            .unwrap()
    }

    #[test]
    fn across_splits_a_node_follows_the_child_that_holds_its_name() {
        let (g, k1, low, high, high_deeper) = (key(0), key(1), key(2), key(3), key(4));
        let root = Prefix::ROOT;
        let (zero, one) = (root.child(0).unwrap(), root.child(1).unwrap());
        let ours = name_under(&[1]);
        // Our quarter after a second split of our half.
        let one_x = one.child(ours.bit(1)).unwrap();
        let s1 = handed_over(&g, &k1, root);
        let to_low = handed_over(&k1, &low, zero);
        let to_high = handed_over(&k1, &high, one);
        let deeper = handed_over(&high, &high_deeper, one_x);
        let genesis_sap = sap_of(root, &g);
        let start = KeyChain::genesis();

        // From the genesis SAP: the other half's answer is refused, ours applies, and so does
        // an answer two splits down.
        assert_eq!(
            extension(
                &g.1,
                &start,
                &genesis_sap,
                &ours,
                &answer(&g, &[&s1, &to_low])
            ),
            Err(CatchUpError::OtherBranch)
        );
        // The other half's answer with a signature its key did not make is refused as such,
        // not taken for the other half's.
        let mut forged = to_low.clone();
        forged.sap_signature = to_high.sap_signature;
        assert_eq!(
            extension(
                &g.1,
                &start,
                &genesis_sap,
                &ours,
                &answer(&g, &[&s1, &forged])
            ),
            Err(CatchUpError::Sap(HandoverError::BadSapSignature))
        );
        let (chain, sap) = extension(
            &g.1,
            &start,
            &genesis_sap,
            &ours,
            &answer(&g, &[&s1, &to_high]),
        )
        .unwrap()
        .unwrap();
        assert_eq!((chain.key_count(), sap), (3, to_high.sap.clone()));
        let (chain, sap) = extension(
            &g.1,
            &start,
            &genesis_sap,
            &ours,
            &answer(&g, &[&s1, &to_high, &deeper]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(sap, deeper.sap);
        chain.verify_from(&g.1).unwrap();
        assert_eq!(chain.last_key(&g.1), high_deeper.1);

        // From our half, the other half's chain is a fork (its last link differs), and the
        // parent's shorter chain has nothing to teach.
        let mut at_high = KeyChain::genesis();
        at_high.push(&g.1, s1.link()).unwrap();
        at_high.push(&g.1, to_high.link()).unwrap();
        let low_chain = answer(&g, &[&s1, &to_low, &handed_over(&low, &key(5), zero)]);
        assert_eq!(
            extension(&g.1, &at_high, &to_high.sap, &ours, &low_chain),
            Err(CatchUpError::Forked { position: 1 })
        );
        assert_eq!(
            extension(&g.1, &at_high, &to_high.sap, &ours, &answer(&g, &[&s1])),
            Ok(None)
        );
        // A longer chain back to the whole name space is not a descendant of our half.
        let merged = handed_over(&high, &key(6), root);
        assert_eq!(
            extension(
                &g.1,
                &at_high,
                &to_high.sap,
                &ours,
                &answer(&g, &[&s1, &to_high, &merged])
            ),
            Err(CatchUpError::Sap(HandoverError::WrongPrefix))
        );
    }

    #[test]
    fn an_answer_not_ahead_of_us_is_known_from_its_first_bytes() {
        let (g, k1, k2) = (key(0), key(1), key(2));
        let s1 = handed_over(&g, &k1, Prefix::ROOT);
        let s2 = handed_over(&k1, &k2, Prefix::ROOT);
        let mut ours = KeyChain::genesis();
        ours.push(&g.1, s1.link()).unwrap();
        let us = name_under(&[]);
        let equal = answer(&g, &[&s1]).encode();
        let shorter = SectionAnswer::new(
            ElderRecord {
                genesis_key: g.1,
                chain: KeyChain::genesis(),
                sap: sap_of(Prefix::ROOT, &g),
                superseded: Vec::new(),
                linked: Vec::new(),
                open_splits: Vec::new(),
            },
            None,
        )
        .encode();
        for bytes in [&equal, &shorter] {
            assert!(not_ahead(bytes, &g.1, &ours));
            // What the whole check makes of it: nothing to take.
            let decoded = SectionAnswer::decode(bytes).unwrap();
            assert_eq!(extension(&g.1, &ours, &s1.sap, &us, &decoded), Ok(None));
        }
        // A longer chain, another genesis key, and bytes that do not parse that far are
        // decoded and checked whole.
        assert!(!not_ahead(&answer(&g, &[&s1, &s2]).encode(), &g.1, &ours));
        let other_genesis = answer(&k2, &[&handed_over(&k2, &k1, Prefix::ROOT)]).encode();
        assert!(!not_ahead(&other_genesis, &g.1, &ours));
        assert_eq!(
            extension(
                &g.1,
                &ours,
                &s1.sap,
                &us,
                &SectionAnswer::decode(&other_genesis).unwrap()
            ),
            Err(CatchUpError::OtherGenesis)
        );
        for cut in [0, 3, 20, 4 + KEY_LEN + 2] {
            assert!(!not_ahead(&equal[..cut], &g.1, &ours), "cut at {cut}");
        }
        // A record whose own length is consistent but which ends inside the genesis key or
        // the link count.
        let record = &equal[4..];
        for end in [KEY_LEN - 1, KEY_LEN + 3] {
            let mut w = Writer::new();
            w.bytes(&record[..end]);
            assert!(!not_ahead(&w.finish(), &g.1, &ours), "record cut at {end}");
        }
        // Only the first bytes are read: a level answer broken after its link count is
        // dropped as not ahead (decoding would refuse it; neither changes anything).
        let mut broken = equal.clone();
        *broken.last_mut().unwrap() ^= 1;
        assert!(SectionAnswer::decode(&broken).is_err());
        assert!(not_ahead(&broken, &g.1, &ours));
        // Past the bound an answer goes to the full check, which refuses it for its length.
        let mut over_long = equal.clone();
        over_long.resize(MAX_ANSWER_LEN + 1, 0);
        assert!(!not_ahead(&over_long, &g.1, &ours));
    }

    #[test]
    fn an_answer_decodes_only_from_its_canonical_bounded_encoding() {
        let (g, k1) = (key(0), key(1));
        let good = answer(&g, &[&handed_over(&g, &k1, Prefix::ROOT)]);
        // The answer leaves the answerer's superseded sessions out.
        assert!(good.record.superseded.is_empty());
        let bytes = good.encode();
        assert_eq!(SectionAnswer::decode(&bytes).unwrap(), good);

        let too_long = vec![0; MAX_ANSWER_LEN + 1];
        assert!(matches!(
            SectionAnswer::decode(&too_long),
            Err(WireError::TooLong { .. })
        ));
        // A part whose length claims more than an answer may hold.
        let mut claim = Vec::new();
        claim.extend_from_slice(&((MAX_ANSWER_LEN + 1) as u32).to_be_bytes());
        assert!(SectionAnswer::decode(&claim).is_err());
        // Trailing bytes, a cut answer, an unknown flag.
        assert!(SectionAnswer::decode(&[bytes.as_slice(), &[0]].concat()).is_err());
        assert!(SectionAnswer::decode(&bytes[..bytes.len() - 1]).is_err());
        let record = good.record.encode();
        let with_flag = |flag: u8, rest: &[u8]| {
            let mut w = Writer::new();
            w.bytes(&record).u8(flag).fixed(rest);
            w.finish()
        };
        assert!(matches!(
            SectionAnswer::decode(&with_flag(2, &[])),
            Err(WireError::UnknownTag { .. })
        ));
        // Another message in the signed SAP's place.
        let mut w = Writer::new();
        w.bytes(&record).u8(1).bytes(
            &Message::Dkg(crate::dkg::DkgMessage::Post {
                session: SessionId([1; 32]),
                post: vec![1],
            })
            .encode(),
        );
        assert_eq!(
            SectionAnswer::decode(&w.finish()),
            Err(WireError::NonCanonical("signed SAP"))
        );
        // Superseded sessions in the record.
        let mut with_superseded = good.record.clone();
        with_superseded.superseded = vec![(SessionId([7; 32]), 3)];
        let mut w = Writer::new();
        w.bytes(&with_superseded.encode()).u8(0);
        assert_eq!(
            SectionAnswer::decode(&w.finish()),
            Err(WireError::NonCanonical("superseded sessions in an answer"))
        );
        // A link key that is no point (flag bits of an infinity encoding with data set).
        let mut off_curve = record.clone();
        off_curve[48 + 4] = 0xff;
        let mut w = Writer::new();
        w.bytes(&off_curve).u8(0);
        assert!(SectionAnswer::decode(&w.finish()).is_err());
        // More links than a chain may hold.
        let mut many = record[..48].to_vec();
        many.extend_from_slice(&((crate::chain::MAX_CHAIN_LINKS + 1) as u32).to_be_bytes());
        many.extend_from_slice(&record[52..]);
        let mut w = Writer::new();
        w.bytes(&many).u8(0);
        assert!(SectionAnswer::decode(&w.finish()).is_err());
    }
}
