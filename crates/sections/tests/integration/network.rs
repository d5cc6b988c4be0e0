//! A deterministic in-process network of section nodes: every message crosses the wire encoding,
//! every node runs through its persistent coordinator (so a crash is a restart from its store),
//! and DKG deadlines are passed in lock step once nothing is in flight.
//!
//! The scenario grows a section from the genesis node to `ELDER_COUNT` elders, lets an elder
//! leave, runs a DKG with a silent candidate (failure agreement, restart without it), crashes
//! and restarts an elder, sends spoofed and under-quorum starts, and splits the section. After
//! every step it checks: all honest nodes of a section hold the same key chain, it verifies from
//! the genesis key (each key signed by its predecessor), it ends in the section's key, and no node
//! started a DKG that fewer than a supermajority of its section's elders signed.

use std::collections::BTreeSet;

use keyquorum_sections::dkg::DkgMessage;
use keyquorum_sections::elders::{ELDER_COUNT, Member, Peer, select_elders, split};
use keyquorum_sections::session::{DkgStart, supermajority};
use keyquorum_sections::simulation::{Network, secret};
use keyquorum_sections::store::LoggedInput;
use keyquorum_sections::wire::Message;
use keyquorum_sections::{Name, Prefix};

#[test]
fn a_network_grows_loses_elders_splits_and_keeps_one_verifiable_chain_per_section() {
    let mut net = Network::new(0);
    net.check().unwrap();
    let root = Prefix::ROOT;

    // Growth: each older joiner changes the elders, up to ELDER_COUNT.
    for i in 0..ELDER_COUNT as u8 {
        net.join(200 - i);
        net.elect(&root);
        net.check().unwrap();
    }
    let elders = net.node(&net.reference(&root)).sap().names();
    assert_eq!(elders.len(), ELDER_COUNT);
    let chain_len = net.node(&elders[0]).chain().key_count();
    assert!(chain_len >= ELDER_COUNT as u64);

    // Spoofed starts: signed by non-elders, and by fewer than a supermajority of the elders.
    let young = net.join(1);
    let mut candidates: Vec<Peer> = elders
        .iter()
        .map(|n| net.nodes[n].member.peer.clone())
        .collect();
    candidates[0] = net.nodes[&young].member.peer.clone();
    let spoof = DkgStart::new(root, candidates, chain_len);
    for n in 0..3 {
        let signature = spoof.sign(&secret(net.nodes[&young].seed + n * 1000));
        for to in spoof.names() {
            net.send(
                young,
                to,
                &Message::Start {
                    start: spoof.clone(),
                    signature,
                },
            );
        }
    }
    let few: Vec<Name> = elders[..supermajority(ELDER_COUNT) - 1].to_vec();
    net.starts.insert(
        spoof.session,
        (spoof.clone(), few.iter().copied().collect(), elders.clone()),
    );
    for e in &few {
        net.take(*e, LoggedInput::SignStart(spoof.clone()));
    }
    net.deliver();
    for n in spoof.names() {
        assert!(net.node(&n).knows(&spoof.session) || !net.honest(&n));
    }
    assert_eq!(net.node(&elders[1]).chain().key_count(), chain_len);
    net.check().unwrap();

    // An elder leaves: the elders change without it.
    let leaver = elders[2];
    net.gone.insert(leaver);
    net.elect(&root);
    net.check().unwrap();
    assert!(
        !net.node(&net.reference(&root))
            .sap()
            .names()
            .contains(&leaver)
    );

    // An elder goes silent, then an old node joins: the DKG fails, the candidates agree on the
    // silent one, and the restart runs without it.
    // The oldest elder, which every selection keeps as a candidate.
    let quiet = net
        .node(&net.reference(&root))
        .sap()
        .names()
        .into_iter()
        .max_by_key(|n| net.nodes[n].member.age)
        .unwrap();
    net.silent.insert(quiet);
    let failures_before = net.agreed.len();
    net.join(250);
    net.elect(&root);
    net.check().unwrap();
    assert!(net.agreed.len() > failures_before, "no failure agreement");
    assert!(net.agreed.values().any(|set| set.contains(&quiet)));
    assert!(
        !net.node(&net.reference(&root))
            .sap()
            .names()
            .contains(&quiet)
    );

    // An elder crashes and restarts from its store.
    let elder = net.node(&net.reference(&root)).sap().names()[1];
    net.crash_and_restart(elder);
    net.check().unwrap();
    assert!(net.node(&elder).our_share().is_some());

    // Growth until both halves can hold ELDER_COUNT members, then a split, each half authorised
    // by the parent's elders.
    let halves = loop {
        let members = net.members(&root);
        let live: Vec<Member> = members
            .into_iter()
            .filter(|m| net.honest(&m.peer.name()))
            .collect();
        if let Some(halves) = split(&root, &live, ELDER_COUNT) {
            break halves;
        }
        net.join(5);
    };
    net.check().unwrap();
    let generation = net.node(&net.reference(&root)).chain().key_count();
    let mut starts = Vec::new();
    for (prefix, members) in &halves {
        let start = DkgStart::new(
            *prefix,
            select_elders(members, ELDER_COUNT, &BTreeSet::new()),
            generation,
        );
        net.sign_and_send(&root, &start);
        starts.push(start);
    }
    for start in &starts {
        net.run(start, 6 + keyquorum_sections::dkg::START_GRACE as usize);
    }
    net.check().unwrap();
    let prefixes = net.prefixes();
    assert_eq!(prefixes, halves.iter().map(|(p, _)| *p).collect());
    // Both halves' chains share every link up to the split.
    let a = net.node(&net.reference(&halves[0].0)).chain().clone();
    let b = net.node(&net.reference(&halves[1].0)).chain().clone();
    assert_eq!(
        a.links()[..a.links().len() - 1],
        b.links()[..b.links().len() - 1]
    );
    assert_ne!(a.links().last(), b.links().last());

    // A refused input is refused with a reason, not a panic: a late message of a superseded or
    // finished session.
    let late = Message::Dkg(keyquorum_sections::dkg::DkgMessage::Vote {
        session: starts[0].session,
        round: 0,
        posts: vec![],
    });
    let n = net.reference(&halves[0].0);
    let result = net
        .nodes
        .get_mut(&n)
        .unwrap()
        .coordinator
        .as_mut()
        .unwrap()
        .take(&LoggedInput::Message {
            from: starts[0].names()[0],
            message: late,
        });
    // The finished run that gave the node its share is kept until the next start or SAP, to
    // answer a candidate that restarted from its log: a late vote on it changes nothing.
    assert!(matches!(&result, Ok(out) if out.is_empty()), "{result:?}");
}

/// Votes of the last round (success takes three: contribute, share, publish) held back from
/// a slow candidate.
type Held = Vec<(Name, Name, Vec<u8>)>;

/// An older joiner changes five elders, and its DKG is slow: the votes of the last round to it
/// are held back, and its own deadlines are late, while the others finish and hand over. It
/// ends with the new SAP applied and its run still going; the held votes are returned.
fn a_slow_candidate_after_the_handover() -> (Network, Name, DkgStart, Held) {
    let mut net = Network::new(7);
    let root = Prefix::ROOT;
    for i in 0..4u8 {
        net.join(200 - i);
        net.elect(&root);
        net.check().unwrap();
    }
    let slow = net.join(250);
    let current: BTreeSet<Name> = net
        .node(&net.reference(&root))
        .sap()
        .names()
        .into_iter()
        .collect();
    let members = net.members(&root);
    let candidates =
        keyquorum_sections::elders::elder_change(&current, &members, 5, &BTreeSet::new())
            .expect("the older joiner changes the elders");
    let generation = net.node(&net.reference(&root)).chain().key_count();
    let start = DkgStart::new(root, candidates, generation);
    assert!(start.names().contains(&slow));
    net.sign_and_send(&root, &start);

    let mut held = Vec::new();
    deliver_holding(&mut net, slow, &mut held);
    for _ in 0..12 {
        for name in start.names().into_iter().filter(|n| *n != slow) {
            net.take(name, LoggedInput::Deadline(start.session));
        }
        deliver_holding(&mut net, slow, &mut held);
    }
    let sap = net.node(&slow).sap().clone();
    assert_eq!(sap.elders, start.candidates, "the others handed over");
    assert!(net.node(&slow).our_share().is_none());
    (net, slow, start, held)
}

/// Delivers every queued message, holding back last-round votes to `slow`.
fn deliver_holding(net: &mut Network, slow: Name, held: &mut Held) {
    while let Some((from, to, bytes)) = net.queue.pop_front() {
        let message = Message::decode(&bytes).unwrap();
        if to == slow
            && matches!(message, Message::Dkg(DkgMessage::Vote { round, .. }) if round >= 2)
        {
            held.push((from, to, bytes));
            continue;
        }
        net.take(to, LoggedInput::Message { from, message });
    }
}

/// A candidate whose DKG messages are slow still finishes after the others handed the section
/// over to the new key: the SAP that lists it can arrive before its own run ends (the others
/// need only a supermajority of candidates), and it must then take its share of that key when
/// its run ends, not stay an elder without one.
#[test]
fn a_slow_candidate_takes_its_share_after_the_new_sap_applied() {
    let (mut net, slow, start, held) = a_slow_candidate_after_the_handover();
    let sap = net.node(&slow).sap().clone();
    // Its messages arrive, and its deadlines pass.
    for (from, to, bytes) in held {
        let message = Message::decode(&bytes).unwrap();
        net.take(to, LoggedInput::Message { from, message });
    }
    for _ in 0..12 {
        net.take(slow, LoggedInput::Deadline(start.session));
        deliver_holding(&mut net, slow, &mut Vec::new());
    }
    let share = net.node(&slow).our_share().expect("a share of the new key");
    assert_eq!(share.section_key, sap.section_key);
    net.check().unwrap();
}

/// The same slow candidate whose held votes never come: its run, kept past the handover only
/// to take a share, fails. The section has moved on, so it observes no failure: a failure
/// broadcast for a session that succeeded would blame honest candidates that stopped sending.
#[test]
fn a_run_kept_past_its_handover_that_fails_blames_nobody() {
    let (mut net, slow, start, _never) = a_slow_candidate_after_the_handover();
    for _ in 0..20 {
        net.take(slow, LoggedInput::Deadline(start.session));
        let sent: Vec<_> = net
            .queue
            .iter()
            .filter(|(from, ..)| *from == slow)
            .collect();
        assert!(
            !sent.iter().any(|(.., bytes)| matches!(
                Message::decode(bytes).unwrap(),
                Message::Failure { .. }
            )),
            "a failure observation for a handed-over session"
        );
        deliver_holding(&mut net, slow, &mut Vec::new());
    }
    assert!(net.node(&slow).our_share().is_none());
}
