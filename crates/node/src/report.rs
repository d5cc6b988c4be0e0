//! What the node reports about itself, kept out of the deterministic core: the driver records
//! typed [`Observation`]s of what happened in an outbox ([`crate::driver::Driver::drain_observations`]),
//! and one [`Reporter`] applies them, and the runtime's traffic, to the `/status` snapshot
//! ([`Status`]) and the metrics ([`Metrics`]).
//!
//! The reporter is the only writer of both. It also keeps the one piece of wall time the
//! reports need (how long each contract phase lasted as this node saw it), so the core reads no
//! clock for them.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::metrics::Metrics;
use crate::status::{
    CandidacyCheckFailingStatus, ChainRefusedStatus, ChainUnreachableStatus, EvictedStatus,
    MagicBlockMismatch, PendingStatus, RegistrationRefusedStatus, SAT_OUT_SIGNING_KEY,
    SendPendingStatus, SittingOutStatus, StakeBelowMinimumStatus, Status,
};
use crate::store::OutputRecord;

/// Something that happened in the node, as far as its reports are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// The chain evicted this node from its candidate list (`Some`), or listed it again
    /// (`None`).
    Eviction(Option<EvictedStatus>),
    /// The chain refused this node's registration for a full candidate list (`Some`), or it
    /// registered (`None`).
    RegistrationRefused(Option<RegistrationRefusedStatus>),
    /// This node's stake is below the chain's minimum (`Some`), or reached it (`None`).
    StakeBelowMinimum(Option<StakeBelowMinimumStatus>),
    /// The chain adapter's candidacy checks fail (`Some`), or one succeeded (`None`).
    CandidacyCheckFailing(Option<CandidacyCheckFailingStatus>),
    /// This node's transactions pending on the chain after their receipt wait (`Some`), or
    /// none any more (`None`).
    SendPending(Option<SendPendingStatus>),
    /// The chain refused (another chain under the node, or a block the node's contract does
    /// not reproduce), or `None` once the chain the node followed is back.
    ChainRefused(Option<ChainRefusedStatus>),
    /// Every read of the chain failing for a while (`Some`), or reading again (`None`).
    ChainUnreachable(Option<ChainUnreachableStatus>),
    /// The driver opened: who this node is.
    Opened {
        /// Identity key (hex).
        identity: String,
        /// libp2p peer id.
        peer_id: String,
        /// The configured deviation's name (`none` for an honest node).
        fault: String,
    },
    /// The chain registered or deregistered this node (also reported on opening).
    Registration {
        /// Whether the chain has this node's registration now.
        registered: bool,
    },
    /// A block was processed.
    BlockProcessed {
        /// Its height.
        height: u64,
    },
    /// The chain's head, as the runtime read it.
    ChainHead {
        /// Its height.
        height: u64,
    },
    /// The contract entered a phase.
    PhaseChanged {
        /// `idle`, `contribute`, `share`, `publish` or `wait`.
        phase: String,
        /// Last block of the phase.
        deadline: u64,
        /// Board attempt of the ceremony in progress.
        attempt: u32,
        /// Seen in a block the node replays while catching up: it ended, or began, at no
        /// time the node can measure, so no phase duration is recorded for it.
        replayed: bool,
    },
    /// A ceremony was selected, and how this node sits in it.
    CeremonySelected(PendingStatus),
    /// This node's part in the selected ceremony, settled once it caught up with the chain:
    /// a node back past the deal window plays only, or follows the board.
    SeatSettled {
        /// As [`PendingStatus::role`].
        role: String,
    },
    /// The view change in progress was aborted.
    ViewChangeAborted,
    /// This node's record of a finished ceremony (its own outcome, success or failure).
    OutcomeRecorded {
        /// The record.
        record: OutputRecord,
        /// True when the ceremony is not newly finished (rebuilt on opening, or replayed): it
        /// is shown but not counted again.
        replayed: bool,
    },
    /// A view became active.
    ViewActivated {
        /// The view.
        view: u64,
        /// Its members (identity hex), in index order.
        committee: Vec<String>,
        /// Its group key (compressed G1, hex), if this node knows it.
        group_key: Option<String>,
        /// This node's 1-based share index in it, if a member.
        share_index: Option<u64>,
        /// Shares needed to sign in it, if this node knows its magic block.
        threshold: Option<u32>,
    },
    /// On opening, the active view as stored.
    ViewResumed {
        /// The view.
        view: u64,
        /// This node's share index in it, if it holds a share.
        share_index: Option<u64>,
        /// Its group key, if this node holds a share.
        group_key: Option<String>,
        /// Its members (identity hex) in index order and its threshold, from its stored magic
        /// block, if this node has it.
        committee: Option<(Vec<String>, u32)>,
    },
    /// A magic block differed from the one this node's board defines and was not signed.
    MagicBlockMismatch(MagicBlockMismatch),
    /// This node sits a running ceremony out, a view's or a signing key's
    /// ([`SittingOutStatus::ceremony`]): it may have dealt in it with state it no longer has
    /// (also reported on opening; the fault itself is a [`Observation::FaultSeen`] when it is
    /// found).
    CeremonySatOut(SittingOutStatus),
    /// A view's signing-key ceremony started: one this node sat out is over.
    SigningKeyCeremonyStarted {
        /// The view whose committee makes the key.
        view: u64,
    },
    /// The chain slashed this node in view `view`'s signing-key ceremony: it sits out the next
    /// view's.
    SigningKeySlashed {
        /// The view whose signing-key ceremony recorded the slashing.
        view: u64,
    },
    /// A fault was seen (recorded on chain, refused by the contract, or found by the
    /// participant); `fault` is the metric's label.
    FaultSeen {
        /// What kind of fault.
        fault: String,
    },
    /// What became of a fraud proof this node held (`crate::metrics::FAULT_PROOF_RESULTS`).
    FaultProof {
        /// `proved`, `settled` or `refused`.
        result: &'static str,
    },
    /// One of this node's transactions was mined and reverted (its fee paid for nothing).
    Reverted {
        /// Transaction kind (`activate`, `fault_proof`, ..., `start_view_change`).
        kind: &'static str,
    },
    /// A message was delivered to a peer or a transaction submitted.
    Sent {
        /// Message or transaction kind.
        kind: &'static str,
        /// Payload bytes.
        bytes: usize,
    },
    /// A message was received from a peer.
    Received {
        /// Message kind.
        kind: &'static str,
        /// Payload bytes.
        bytes: usize,
    },
}

/// Applies observations to the status snapshot and the metrics (module docs).
#[derive(Debug)]
pub struct Reporter {
    status: Arc<Mutex<Status>>,
    metrics: Arc<Metrics>,
    /// The phase in progress and when this reporter learnt of it.
    phase: Mutex<Option<(String, Instant)>>,
}

impl Reporter {
    /// A reporter writing to `status` and `metrics` (the status server reads both).
    pub fn new(status: Arc<Mutex<Status>>, metrics: Arc<Metrics>) -> Self {
        Reporter {
            status,
            metrics,
            phase: Mutex::new(None),
        }
    }

    /// Applies observations in order.
    pub fn apply(&self, observations: impl IntoIterator<Item = Observation>) {
        for o in observations {
            self.observe(o);
        }
    }

    /// Applies one observation.
    pub fn observe(&self, o: Observation) {
        let m = &self.metrics;
        match o {
            Observation::Sent { kind, bytes } => return m.sent(kind, bytes),
            Observation::Received { kind, bytes } => return m.received(kind, bytes),
            Observation::FaultSeen { fault } => return m.fault(&fault),
            Observation::FaultProof { result } => return m.fault_proof(result),
            Observation::Reverted { kind } => return m.reverted(kind),
            _ => {}
        }
        // A poisoned lock means a panic elsewhere while writing: the snapshot is still the
        // best there is.
        let mut guard = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let s = &mut *guard;
        match o {
            Observation::Opened {
                identity,
                peer_id,
                fault,
            } => {
                s.identity = identity;
                s.peer_id = peer_id;
                s.fault = fault;
            }
            Observation::Registration { registered } => {
                s.registered = registered;
                if let Some(out) = &mut s.sitting_out {
                    out.member_of_next = registered;
                }
            }
            Observation::Eviction(evicted) => {
                m.set("keyquorum_evicted", &[], evicted.is_some() as u8 as f64);
                s.evicted = evicted;
            }
            Observation::RegistrationRefused(refused) => {
                m.set(
                    "keyquorum_registration_refused",
                    &[],
                    refused.is_some() as u8 as f64,
                );
                s.registration_refused = refused;
            }
            Observation::StakeBelowMinimum(short) => {
                m.set(
                    "keyquorum_stake_below_minimum",
                    &[],
                    short.is_some() as u8 as f64,
                );
                s.stake_below_minimum = short;
            }
            Observation::CandidacyCheckFailing(failing) => s.candidacy_check_failing = failing,
            Observation::SendPending(pending) => {
                m.set(
                    "keyquorum_sends_pending",
                    &[],
                    pending.as_ref().map_or(0, |p| p.sends) as f64,
                );
                m.set(
                    "keyquorum_send_fee_bumps",
                    &[],
                    pending.as_ref().map_or(0, |p| p.fee_bumps) as f64,
                );
                s.send_pending = pending;
            }
            Observation::ChainRefused(refused) => {
                m.set(
                    "keyquorum_chain_refused",
                    &[],
                    refused.is_some() as u8 as f64,
                );
                s.chain_refused = refused;
            }
            Observation::ChainUnreachable(unreachable) => {
                m.set(
                    "keyquorum_chain_unreachable",
                    &[],
                    unreachable.is_some() as u8 as f64,
                );
                s.chain_unreachable = unreachable;
            }
            Observation::BlockProcessed { height } => {
                m.set("keyquorum_chain_height", &[], height as f64);
                s.height = height;
                // The head is told before each batch: one block below it is the next to come,
                // not a backlog.
                s.catching_up = s.chain_head.is_some_and(|head| head > height + 1);
            }
            Observation::ChainHead { height } => {
                m.set("keyquorum_chain_head", &[], height as f64);
                s.chain_head = Some(height);
                s.catching_up = height > s.height + 1;
            }
            Observation::PhaseChanged {
                phase,
                deadline,
                attempt,
                replayed,
            } => {
                let now = Instant::now();
                let mut current = self.phase.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((previous, since)) = current.take()
                    && previous != "idle"
                    && !replayed
                {
                    m.phase(&previous, now.duration_since(since).as_secs_f64());
                }
                // A replayed phase's start is not its time: it is not timed when it ends.
                *current = (!replayed).then(|| (phase.clone(), now));
                s.phase = phase;
                s.phase_deadline = Some(deadline);
                if let Some(p) = &mut s.pending {
                    p.attempt = attempt;
                }
            }
            Observation::CeremonySelected(pending) => {
                s.pending = Some(pending);
                s.sitting_out = None;
            }
            Observation::SeatSettled { role } => {
                if let Some(p) = &mut s.pending {
                    p.role = role;
                }
            }
            Observation::ViewChangeAborted => s.pending = None,
            Observation::OutcomeRecorded { record, replayed } => {
                if !replayed {
                    let result = if record.success { "success" } else { "failure" };
                    m.add("keyquorum_ceremonies_total", &[("result", result)], 1.0);
                }
                s.qualified = record.qualified_identities.clone();
                s.last_outcome = Some(record);
            }
            Observation::ViewActivated {
                view,
                committee,
                group_key,
                share_index,
                threshold,
            } => {
                m.set("keyquorum_view", &[], view as f64);
                s.view = view;
                s.committee = committee;
                s.group_key = group_key;
                s.share_index = share_index;
                s.threshold = threshold;
                s.pending = None;
            }
            Observation::ViewResumed {
                view,
                share_index,
                group_key,
                committee,
            } => {
                // Only a status that has not seen a view yet takes the stored one.
                if s.view == 0 {
                    s.view = view;
                    s.share_index = share_index;
                    s.group_key = group_key;
                    if let Some((members, threshold)) = committee {
                        s.committee = members;
                        s.threshold = Some(threshold);
                    }
                }
            }
            Observation::MagicBlockMismatch(mismatch) => {
                m.add(
                    "keyquorum_magic_block_mismatches_total",
                    &[("what", &mismatch.what)],
                    1.0,
                );
                s.magic_block_mismatch = Some(mismatch);
            }
            Observation::CeremonySatOut(out) if out.ceremony == SAT_OUT_SIGNING_KEY => {
                s.signing_key_sitting_out = Some(out);
            }
            Observation::CeremonySatOut(out) => s.sitting_out = Some(out),
            Observation::SigningKeyCeremonyStarted { .. } => s.signing_key_sitting_out = None,
            Observation::SigningKeySlashed { view } => {
                if let Some(out) = s
                    .signing_key_sitting_out
                    .as_mut()
                    .filter(|o| o.view == view)
                {
                    out.member_of_next = false;
                }
            }
            Observation::Sent { .. }
            | Observation::Received { .. }
            | Observation::FaultSeen { .. }
            | Observation::FaultProof { .. }
            | Observation::Reverted { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{SAT_OUT_NO_RECORD, SAT_OUT_VIEW};

    fn outcome(success: bool, qualified: &[&str]) -> OutputRecord {
        OutputRecord {
            view: 1,
            ceremony_number: 0,
            session_id: "ab".repeat(32),
            success,
            player_index: Some(0),
            group_key: success.then(|| "cd".repeat(48)),
            qualified: (0..qualified.len() as u32).collect(),
            qualified_identities: qualified.iter().map(|q| q.to_string()).collect(),
            exclusions: Vec::new(),
            has_share: success,
        }
    }

    fn pending(view: u64) -> PendingStatus {
        PendingStatus {
            view,
            ceremony_number: 0,
            attempt: 0,
            key_mode: "fresh".into(),
            committee: vec!["aa".into(), "bb".into()],
            dealers: Vec::new(),
            role: "dealer+player".into(),
            share_index: Some(2),
        }
    }

    #[test]
    fn a_run_of_observations_shows_on_status_and_metrics() {
        let status = Arc::new(Mutex::new(Status::default()));
        let metrics = Arc::new(Metrics::new());
        let r = Reporter::new(status.clone(), metrics.clone());
        let fault = |f: &str| Observation::FaultSeen { fault: f.into() };
        r.apply([
            Observation::Opened {
                identity: "aa".into(),
                peer_id: "12D3".into(),
                fault: "none".into(),
            },
            Observation::Registration { registered: true },
            Observation::BlockProcessed { height: 3 },
            Observation::CeremonySelected(pending(1)),
            Observation::PhaseChanged {
                phase: "contribute".into(),
                deadline: 5,
                attempt: 1,
                replayed: false,
            },
            Observation::PhaseChanged {
                phase: "share".into(),
                deadline: 8,
                attempt: 1,
                replayed: false,
            },
            Observation::Sent {
                kind: "deal",
                bytes: 100,
            },
            Observation::Received {
                kind: "ack",
                bytes: 40,
            },
            fault("bad_share_received"),
            fault("bad_share_received"),
            Observation::OutcomeRecorded {
                record: outcome(true, &["aa", "bb"]),
                replayed: false,
            },
            // Replayed after a restart: shown, not counted again.
            Observation::OutcomeRecorded {
                record: outcome(true, &["aa", "bb"]),
                replayed: true,
            },
            Observation::MagicBlockMismatch(MagicBlockMismatch {
                view: 1,
                ceremony_number: 0,
                hash: "ee".repeat(32),
                what: "members".into(),
            }),
            Observation::ViewActivated {
                view: 1,
                committee: vec!["aa".into(), "bb".into()],
                group_key: Some("cd".repeat(48)),
                share_index: Some(2),
                threshold: Some(2),
            },
            Observation::BlockProcessed { height: 9 },
            // Told a head above what it processed: catching up until it gets there.
            Observation::ChainHead { height: 12 },
        ]);
        let s = status.lock().unwrap().clone();
        assert_eq!((s.height, s.chain_head, s.catching_up), (9, Some(12), true));
        r.apply([Observation::BlockProcessed { height: 12 }]);
        assert!(!status.lock().unwrap().catching_up);
        r.apply([Observation::BlockProcessed { height: 9 }]);
        let s = status.lock().unwrap().clone();
        assert_eq!(s.identity, "aa");
        assert_eq!(s.peer_id, "12D3");
        assert_eq!(s.fault, "none");
        assert!(s.registered);
        assert_eq!(s.height, 9);
        assert_eq!((s.phase.as_str(), s.phase_deadline), ("share", Some(8)));
        assert_eq!(s.view, 1);
        assert_eq!(s.committee, ["aa", "bb"]);
        assert_eq!(s.share_index, Some(2));
        assert_eq!(s.threshold, Some(2));
        assert_eq!(s.group_key, Some("cd".repeat(48)));
        // The view's activation ends the pending view change.
        assert_eq!(s.pending, None);
        assert_eq!(s.qualified, ["aa", "bb"]);
        assert_eq!(s.last_outcome, Some(outcome(true, &["aa", "bb"])));
        assert_eq!(s.magic_block_mismatch.as_ref().unwrap().what, "members");
        assert_eq!(s.sitting_out, None);

        let get = |name: &str, l: &[(&str, &str)]| metrics.get(name, l);
        assert_eq!(get("keyquorum_chain_height", &[]), 9.0);
        assert_eq!(get("keyquorum_view", &[]), 1.0);
        let ceremonies = "keyquorum_ceremonies_total";
        assert_eq!(get(ceremonies, &[("result", "success")]), 1.0);
        assert_eq!(get(ceremonies, &[("result", "failure")]), 0.0);
        let faults = "keyquorum_faults_seen_total";
        assert_eq!(get(faults, &[("fault", "bad_share_received")]), 2.0);
        let mismatches = "keyquorum_magic_block_mismatches_total";
        assert_eq!(get(mismatches, &[("what", "members")]), 1.0);
        let t = metrics.traffic();
        assert_eq!((t.total.bytes_sent, t.total.bytes_received), (100, 40));
        // The contribute phase ended when the share phase began: one duration recorded.
        let text = metrics.render();
        assert!(
            text.contains("keyquorum_phase_duration_seconds_count{phase=\"contribute\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("phase_duration_seconds_count{phase=\"share\"}"));
    }

    #[test]
    fn phases_replayed_while_catching_up_are_not_timed() {
        let metrics = Arc::new(Metrics::new());
        let r = Reporter::new(Arc::new(Mutex::new(Status::default())), metrics.clone());
        let phase = |name: &str, replayed| Observation::PhaseChanged {
            phase: name.into(),
            deadline: 0,
            attempt: 1,
            replayed,
        };
        // Replayed: a ceremony's phases in a moment, none timed, and the next ceremony's
        // first phase, which ends live but began at no time the node saw.
        for name in [
            "contribute",
            "share",
            "publish",
            "wait",
            "idle",
            "contribute",
        ] {
            r.observe(phase(name, true));
        }
        r.observe(phase("share", false));
        r.observe(phase("publish", false));
        let text = metrics.render();
        assert!(
            text.contains("keyquorum_phase_duration_seconds_count{phase=\"share\"} 1\n"),
            "{text}"
        );
        for name in ["contribute", "publish", "wait"] {
            assert!(
                !text.contains(&format!("phase_duration_seconds_count{{phase=\"{name}\"}}")),
                "{text}"
            );
        }
    }

    #[test]
    fn pending_ceremony_follows_selection_attempts_and_aborts() {
        let status = Arc::new(Mutex::new(Status::default()));
        let r = Reporter::new(status.clone(), Arc::new(Metrics::new()));
        r.observe(Observation::CeremonySatOut(sat_out(SAT_OUT_VIEW, 2)));
        assert_eq!(
            status.lock().unwrap().sitting_out.as_ref().map(|s| s.view),
            Some(2)
        );
        // A new ceremony clears the sat-out one; a new board attempt shows on it.
        r.observe(Observation::CeremonySelected(pending(2)));
        r.observe(Observation::PhaseChanged {
            phase: "contribute".into(),
            deadline: 20,
            attempt: 3,
            replayed: false,
        });
        {
            let s = status.lock().unwrap();
            assert_eq!(s.sitting_out, None);
            assert_eq!(s.pending.as_ref().map(|p| p.attempt), Some(3));
        }
        r.observe(Observation::ViewChangeAborted);
        assert_eq!(status.lock().unwrap().pending, None);
        // On opening, the stored view shows only on a status that has none yet.
        r.observe(Observation::ViewResumed {
            view: 4,
            share_index: Some(1),
            group_key: None,
            committee: Some((vec!["aa".into(), "cc".into(), "dd".into()], 2)),
        });
        r.observe(Observation::ViewResumed {
            view: 3,
            share_index: None,
            group_key: None,
            committee: None,
        });
        let s = status.lock().unwrap().clone();
        assert_eq!((s.view, s.share_index), (4, Some(1)));
        assert_eq!((s.committee.len(), s.threshold), (3, Some(2)));
    }

    fn sat_out(ceremony: &str, view: u64) -> SittingOutStatus {
        SittingOutStatus {
            ceremony: ceremony.into(),
            variant: "complaint".into(),
            view,
            ceremony_number: 0,
            session_id: "ab".repeat(32),
            reason: SAT_OUT_NO_RECORD.into(),
            member_of_next: true,
        }
    }

    #[test]
    fn a_sat_out_signing_key_ceremony_shows_beside_the_view_one_until_the_next_starts() {
        let status = Arc::new(Mutex::new(Status::default()));
        let r = Reporter::new(status.clone(), Arc::new(Metrics::new()));
        r.observe(Observation::CeremonySatOut(sat_out(SAT_OUT_VIEW, 2)));
        r.observe(Observation::CeremonySatOut(sat_out(SAT_OUT_SIGNING_KEY, 1)));
        {
            let s = status.lock().unwrap();
            assert_eq!(s.sitting_out, Some(sat_out(SAT_OUT_VIEW, 2)));
            assert_eq!(
                s.signing_key_sitting_out,
                Some(sat_out(SAT_OUT_SIGNING_KEY, 1))
            );
        }
        // A slashing of another view's signing key leaves it a member of the next one; one of
        // this ceremony does not.
        r.observe(Observation::SigningKeySlashed { view: 0 });
        let next = |s: &Mutex<Status>| {
            let s = s.lock().unwrap();
            s.signing_key_sitting_out.as_ref().map(|o| o.member_of_next)
        };
        assert_eq!(next(&status), Some(true));
        r.observe(Observation::SigningKeySlashed { view: 1 });
        assert_eq!(next(&status), Some(false));
        // Deregistered: no longer a candidate for the next view ceremony.
        r.observe(Observation::Registration { registered: false });
        let view_next = status.lock().unwrap().sitting_out.clone().unwrap();
        assert!(!view_next.member_of_next);
        // The next signing-key ceremony ends the sat-out one; the view's stays.
        r.observe(Observation::SigningKeyCeremonyStarted { view: 2 });
        let s = status.lock().unwrap().clone();
        assert_eq!(s.signing_key_sitting_out, None);
        assert_eq!(s.sitting_out.map(|o| o.view), Some(2));
    }

    #[test]
    fn an_eviction_shows_on_status_and_metrics_until_listed_again() {
        let status = Arc::new(Mutex::new(Status::default()));
        let metrics = Arc::new(Metrics::new());
        let r = Reporter::new(status.clone(), metrics.clone());
        let evicted = EvictedStatus {
            block: 7,
            by: "0x01".into(),
            stake: "150".into(),
            needed_stake: Some("201".into()),
            state: "list_full".into(),
        };
        r.observe(Observation::Eviction(Some(evicted.clone())));
        assert_eq!(status.lock().unwrap().evicted, Some(evicted));
        assert_eq!(metrics.get("keyquorum_evicted", &[]), 1.0);
        assert!(metrics.render().contains("keyquorum_evicted 1\n"));
        r.observe(Observation::Eviction(None));
        assert_eq!(status.lock().unwrap().evicted, None);
        assert_eq!(metrics.get("keyquorum_evicted", &[]), 0.0);
    }

    #[test]
    fn a_refused_registration_shows_on_status_and_metrics_until_registered() {
        let status = Arc::new(Mutex::new(Status::default()));
        let metrics = Arc::new(Metrics::new());
        let r = Reporter::new(status.clone(), metrics.clone());
        let refused = RegistrationRefusedStatus {
            block: 7,
            stake: "150".into(),
            needed_stake: Some("201".into()),
            state: "list_full".into(),
        };
        r.observe(Observation::RegistrationRefused(Some(refused.clone())));
        assert_eq!(status.lock().unwrap().registration_refused, Some(refused));
        assert!(
            metrics
                .render()
                .contains("keyquorum_registration_refused 1\n")
        );
        r.observe(Observation::RegistrationRefused(None));
        assert_eq!(status.lock().unwrap().registration_refused, None);
        assert_eq!(metrics.get("keyquorum_registration_refused", &[]), 0.0);
    }

    #[test]
    fn a_stake_below_the_minimum_shows_on_status_and_metrics_until_it_reaches_it() {
        let status = Arc::new(Mutex::new(Status::default()));
        let metrics = Arc::new(Metrics::new());
        let r = Reporter::new(status.clone(), metrics.clone());
        let short = StakeBelowMinimumStatus {
            block: 7,
            stake: "50".into(),
            minimum: "100".into(),
            registered: false,
        };
        r.observe(Observation::StakeBelowMinimum(Some(short.clone())));
        assert_eq!(status.lock().unwrap().stake_below_minimum, Some(short));
        assert!(
            metrics
                .render()
                .contains("keyquorum_stake_below_minimum 1\n")
        );
        r.observe(Observation::StakeBelowMinimum(None));
        assert_eq!(status.lock().unwrap().stake_below_minimum, None);
        assert_eq!(metrics.get("keyquorum_stake_below_minimum", &[]), 0.0);
    }

    #[test]
    fn a_pending_send_shows_on_status_and_metrics_until_none_is_left() {
        let status = Arc::new(Mutex::new(Status::default()));
        let metrics = Arc::new(Metrics::new());
        let r = Reporter::new(status.clone(), metrics.clone());
        assert!(metrics.render().contains("keyquorum_sends_pending 0\n"));
        let pending = SendPendingStatus {
            tx_hash: format!("0x{}", "ab".repeat(32)),
            kind: "post".into(),
            pending_secs: 300,
            sends: 2,
            fee_bumps: 3,
        };
        r.observe(Observation::SendPending(Some(pending.clone())));
        assert_eq!(status.lock().unwrap().send_pending, Some(pending));
        assert!(metrics.render().contains("keyquorum_sends_pending 2\n"));
        assert!(metrics.render().contains("keyquorum_send_fee_bumps 3\n"));
        r.observe(Observation::SendPending(None));
        assert_eq!(status.lock().unwrap().send_pending, None);
        assert_eq!(metrics.get("keyquorum_sends_pending", &[]), 0.0);
        assert_eq!(metrics.get("keyquorum_send_fee_bumps", &[]), 0.0);
    }
}
