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

use keyquorum_sections::coordinator::Dropped;
use keyquorum_sections::elders::{ELDER_COUNT, Member, Peer, select_elders, split};
use keyquorum_sections::session::{DkgStart, supermajority};
use keyquorum_sections::simulation::{Network, secret};
use keyquorum_sections::store::{LoggedInput, PersistError};
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
    assert!(matches!(
        result,
        Err(PersistError::Dropped(Dropped::UnknownSession))
    ));
}
