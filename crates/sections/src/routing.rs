//! Where each [`Output`] of a [`Coordinator`] goes: the one routing rule the node runtime and
//! the simulator both send by (seed 002: starts to the candidates, failures among the
//! candidates, the agreement and the new elders' partials to the current elders, the handover
//! to the section).
//!
//! | Output | Message | Recipients |
//! |---|---|---|
//! | [`Output::DkgStarted`], [`Output::FailureAgreed`], [`Output::ReplacedStartFailed`] | none | the driver's own bookkeeping |
//! | [`Output::Dkg`] | [`Message::Dkg`] | the candidate it names |
//! | [`Output::StartSigned`] | [`Message::Start`] | the start's candidates |
//! | [`Output::BroadcastFailure`] | [`Message::Failure`] | the session's other candidates |
//! | [`Output::Restart`] | [`Message::FailureAgreement`] | the elders of our SAP |
//! | [`Output::AgreementAgain`] | [`Message::FailureAgreement`] | the elder it names |
//! | [`Output::SapShare`] | [`Message::SapShare`] | the elders of our SAP |
//! | [`Output::LinkShare`] | [`Message::LinkShare`] | the other elders the handover is from |
//! | [`Output::NewElders`] | [`Message::NewElders`] | the members under its prefix, its elders and us |
//!
//! "The elders the handover is from" are [`Coordinator::handover_parent`]'s: at a split a parent
//! elder that applied its own half's SAP still signs the other half's key with the parent's
//! elders; without a handover, our SAP's elders. A failure goes to the candidates of the session
//! as the coordinator holds it (it emits the failure while the session is still held). Messages
//! to ourselves are listed like any other: the driver takes them as inputs.

use std::collections::BTreeSet;

use crate::coordinator::{Coordinator, Output};
use crate::elders::Member;
use crate::name::Name;
use crate::wire::Message;

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Recipient.
    pub to: Name,
    /// The message.
    pub message: Message,
}

/// The messages `output` of `coordinator` (as it is right after emitting it) calls for, with
/// their recipients; `members` are the members the driver knows (the section's, and at a split
/// both halves').
pub fn deliveries(coordinator: &Coordinator, members: &[Member], output: &Output) -> Vec<Delivery> {
    let us = coordinator.name();
    let sap_elders = || coordinator.sap().names();
    let each = |to: Vec<Name>, message: Message| -> Vec<Delivery> {
        to.into_iter()
            .map(|to| Delivery {
                to,
                message: message.clone(),
            })
            .collect()
    };
    match output {
        Output::DkgStarted { .. }
        | Output::FailureAgreed { .. }
        | Output::ReplacedStartFailed { .. } => Vec::new(),
        Output::Dkg { to, message } => vec![Delivery {
            to: *to,
            message: Message::Dkg(message.clone()),
        }],
        Output::StartSigned { start, signature } => each(
            start.names(),
            Message::Start {
                start: start.clone(),
                signature: *signature,
            },
        ),
        Output::BroadcastFailure {
            observation,
            signature,
        } => {
            let to = coordinator
                .candidates_of(&observation.session)
                .unwrap_or_default()
                .into_iter()
                .filter(|n| *n != us)
                .collect();
            each(
                to,
                Message::Failure {
                    observation: observation.clone(),
                    signature: *signature,
                },
            )
        }
        Output::Restart {
            session,
            excluded,
            signatures,
            ..
        } => each(
            sap_elders(),
            Message::FailureAgreement {
                session: *session,
                excluded: excluded.clone(),
                signatures: signatures.clone(),
            },
        ),
        Output::AgreementAgain {
            to,
            session,
            excluded,
            signatures,
        } => vec![Delivery {
            to: *to,
            message: Message::FailureAgreement {
                session: *session,
                excluded: excluded.clone(),
                signatures: signatures.clone(),
            },
        }],
        Output::SapShare {
            session,
            sap,
            partial,
        } => each(
            sap_elders(),
            Message::SapShare {
                session: *session,
                sap: sap.clone(),
                partial: *partial,
            },
        ),
        Output::LinkShare {
            session,
            new_key,
            partial,
        } => {
            let parent = coordinator
                .handover_parent(session)
                .map_or_else(sap_elders, |p| p.names());
            each(
                parent.into_iter().filter(|n| *n != us).collect(),
                Message::LinkShare {
                    session: *session,
                    new_key: *new_key,
                    partial: *partial,
                },
            )
        }
        Output::NewElders(signed) => {
            let mut to: BTreeSet<Name> = members
                .iter()
                .map(|m| m.peer.name())
                .filter(|n| signed.sap.prefix.matches(n))
                .collect();
            to.extend(signed.sap.names());
            to.insert(us);
            each(
                to.into_iter().collect(),
                Message::NewElders((**signed).clone()),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use blstrs::Scalar;
    use keyquorum_crypto::secret::Secret;

    use super::*;
    use crate::chain::KeyChain;
    use crate::chain::tests::key;
    use crate::dkg::DkgMessage;
    use crate::elders::Peer;
    use crate::name::Prefix;
    use crate::sap::{self, KeyShare, Sap, SignedSap};
    use crate::session::{DkgStart, FailureObservation};

    fn node_key(i: u64) -> Secret<Scalar> {
        Secret::new(Scalar::from(i + 1))
    }

    fn names(deliveries: &[Delivery]) -> BTreeSet<Name> {
        deliveries.iter().map(|d| d.to).collect()
    }

    /// Node 0 (us) is one of three elders (nodes 0..3) of a section of six members; a start
    /// with us and two non-elders (3, 4) is authorised here, so its session is running.
    struct Setup {
        us: Coordinator,
        members: Vec<Member>,
        start: DkgStart,
        elders: BTreeSet<Name>,
    }

    fn setup() -> Setup {
        let peers: Vec<Peer> = (0..6)
            .map(|i| Peer::new(&node_key(i), format!("10.0.0.{i}:4000")))
            .collect();
        let mut elders = peers[..3].to_vec();
        elders.sort_by_key(Peer::name);
        let (_, section_key) = key(99);
        let sap = Sap {
            prefix: Prefix::ROOT,
            elders,
            section_key,
        };
        let index = sap
            .names()
            .iter()
            .position(|n| *n == peers[0].name())
            .unwrap();
        let share = KeyShare {
            index: sap::index_at(index),
            share: Secret::new(Scalar::from(7)),
            section_key,
        };
        let mut us = Coordinator::new(
            node_key(0),
            section_key,
            KeyChain::genesis(),
            sap.clone(),
            Some(share),
        )
        .unwrap();
        let mut candidates = vec![peers[0].clone(), peers[3].clone(), peers[4].clone()];
        candidates.sort_by_key(Peer::name);
        let start = DkgStart::new(Prefix::ROOT, candidates, 1);
        us.sign_start(&start).unwrap();
        for i in 0..3 {
            us.handle_start(&start, &start.sign(&node_key(i))).unwrap();
        }
        assert!(us.candidates_of(&start.session).is_some());
        let members = peers
            .into_iter()
            .map(|peer| Member { peer, age: 1 })
            .collect();
        Setup {
            us,
            members,
            start,
            elders: sap.names().into_iter().collect(),
        }
    }

    #[test]
    fn each_output_goes_to_the_recipients_its_rule_names() {
        let Setup {
            us,
            members,
            start,
            elders,
        } = setup();
        let me = us.name();
        let route = |output: &Output| deliveries(&us, &members, output);
        let others = |set: &BTreeSet<Name>| -> BTreeSet<Name> {
            set.iter().copied().filter(|n| *n != me).collect()
        };
        let candidates: BTreeSet<Name> = start.names().into_iter().collect();

        // Bookkeeping only.
        let started = Output::DkgStarted {
            session: start.session,
            candidates: start.candidates.clone(),
        };
        assert!(route(&started).is_empty());
        let agreed = Output::FailureAgreed {
            session: start.session,
            prefix: start.prefix,
            generation: 1,
            attempt: 0,
            excluded: BTreeSet::new(),
        };
        assert!(route(&agreed).is_empty());

        // A DKG message: the one candidate it names.
        let dkg = Output::Dkg {
            to: start.names()[1],
            message: DkgMessage::Direct {
                session: start.session,
                payload: vec![1],
            },
        };
        let sent = route(&dkg);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, start.names()[1]);
        assert!(matches!(sent[0].message, Message::Dkg(_)));

        // A signed start: every candidate, us included.
        let signed = Output::StartSigned {
            start: start.clone(),
            signature: start.sign(&node_key(0)),
        };
        let sent = route(&signed);
        assert_eq!(names(&sent), candidates);
        assert!(
            sent.iter()
                .all(|d| matches!(&d.message, Message::Start { start: s, .. } if *s == start))
        );

        // A failure: the session's other candidates (not the elders, not us); for a session
        // not held here, nobody.
        let observation = FailureObservation {
            session: start.session,
            non_participants: BTreeSet::from([start.names()[1]]),
        };
        let failure = Output::BroadcastFailure {
            signature: observation.sign(&node_key(0)),
            observation: observation.clone(),
        };
        let sent = route(&failure);
        assert_eq!(names(&sent), others(&candidates));
        assert!(
            sent.iter()
                .all(|d| matches!(d.message, Message::Failure { .. }))
        );
        let unknown = Output::BroadcastFailure {
            observation: FailureObservation {
                session: crate::session::SessionId([9; 32]),
                non_participants: observation.non_participants.clone(),
            },
            signature: observation.sign(&node_key(0)),
        };
        assert!(route(&unknown).is_empty());

        // A restart and a SAP partial: the elders of our SAP, us included.
        let restart = Output::Restart {
            session: start.session,
            prefix: Prefix::ROOT,
            generation: 1,
            excluded: observation.non_participants.clone(),
            signatures: vec![],
        };
        let sent = route(&restart);
        assert_eq!(names(&sent), elders);
        assert!(
            sent.iter()
                .all(|d| matches!(d.message, Message::FailureAgreement { .. }))
        );
        let (new_secret, new_key) = key(5);
        let new_share = KeyShare {
            index: sap::index_at(0),
            share: new_secret,
            section_key: new_key,
        };
        let new_sap = Sap {
            prefix: Prefix::ROOT,
            elders: start.candidates.clone(),
            section_key: new_key,
        };
        let sap_share = Output::SapShare {
            session: start.session,
            sap: new_sap.clone(),
            partial: sap::sign_sap(&new_share, &new_sap),
        };
        let sent = route(&sap_share);
        assert_eq!(names(&sent), elders);
        assert!(
            sent.iter()
                .all(|d| matches!(d.message, Message::SapShare { .. }))
        );

        // A link partial: the other elders the handover is from (ours, here), for a session
        // with or without a handover.
        let partial = sap::sign_link(&new_share, &new_key);
        for session in [start.session, crate::session::SessionId([9; 32])] {
            let link = Output::LinkShare {
                session,
                new_key,
                partial,
            };
            let sent = route(&link);
            assert_eq!(names(&sent), others(&elders));
            assert!(
                sent.iter()
                    .all(|d| matches!(d.message, Message::LinkShare { .. }))
            );
        }

        // A new SAP for one half: the members under its prefix, its elders, and us (wherever
        // our name falls), nobody else.
        let outsider = members
            .iter()
            .map(|m| m.peer.name())
            .find(|n| n.bit(0) != me.bit(0))
            .expect("six names are not all on one side");
        let half = Prefix::ROOT.child(outsider.bit(0)).unwrap();
        let half_elders: Vec<Peer> = start.candidates.clone();
        let signed_sap = SignedSap::genesis(
            &Sap {
                prefix: half,
                elders: half_elders.clone(),
                section_key: new_key,
            },
            &new_share,
        );
        let sent = route(&Output::NewElders(Box::new(signed_sap)));
        let mut expected: BTreeSet<Name> = members
            .iter()
            .map(|m| m.peer.name())
            .filter(|n| half.matches(n))
            .collect();
        expected.extend(half_elders.iter().map(Peer::name));
        expected.insert(me);
        assert!(expected.contains(&outsider));
        assert_eq!(names(&sent), expected);
        assert!(
            sent.iter()
                .all(|d| matches!(d.message, Message::NewElders(_)))
        );
    }
}
