//! Slashing: the board's exclusions become slashing records (provable misbehaviour and absence,
//! with their evidence and explicit on-chain names) or named records (faults nobody can be proven
//! to have committed, which cost nothing); a slash is burned except the reporter's share, paid
//! to the member the board names as having proven the fault (`Exclusion::reporter`).

use keyquorum_dkg::board::{Evidence, Exclusion, FaultKind, Penalty, Role};

use crate::events::Event;
use crate::hex::Bytes;
use crate::state::{
    EvidenceRecord, FaultCeremony, FaultRole, IdentityKey, NamedRecord, SlashingRecord,
};

use super::{Contract, key_of};

/// The on-chain name of an engine fault (`FaultKind::code`, e.g. `bad_ack_signature`).
pub fn fault_name(fault: &FaultKind) -> String {
    fault.code().to_string()
}

/// The fault's name and description (`bad_reveal: revealed share of player 2 does not match
/// the commitment`).
pub(super) fn fault_reason(fault: &FaultKind) -> String {
    format!("{}: {fault}", fault_name(fault))
}

pub(super) fn evidence_record(e: &Evidence) -> EvidenceRecord {
    let posts = |v: &Vec<Vec<u8>>| v.iter().cloned().map(Bytes).collect();
    match e {
        Evidence::SignedPosts(v) => EvidenceRecord::SignedPosts { posts: posts(v) },
        Evidence::Absence { phase, attempt } => EvidenceRecord::Absence {
            phase: phase.as_str().to_string(),
            attempt: *attempt,
        },
        Evidence::Reports(v) => EvidenceRecord::Reports { posts: posts(v) },
    }
}

impl Contract {
    /// Records the board's exclusions and names after an attempt. Faults with a penalty
    /// become slashing records, once per node, role and ceremony; faults without one
    /// ([`Penalty::None`]: a dealer whose players did not ack it, players reported for
    /// missing acks) become [`NamedRecord`]s and cost nothing.
    pub(super) fn record_exclusions(
        &mut self,
        exclusions: &[Exclusion],
        named: &[Exclusion],
        at: u64,
        events: &mut Vec<Event>,
    ) {
        let Some(change) = self.state.change.as_ref() else {
            return;
        };
        let (view, ceremony_number, attempt) =
            (change.view, change.ceremony_number, change.attempt);
        for e in exclusions.iter().chain(named) {
            let role = match e.role {
                Role::Dealer => FaultRole::Dealer,
                Role::Player => FaultRole::Player,
            };
            let attempt = match &e.evidence {
                Evidence::Absence { attempt, .. } => *attempt,
                _ => attempt,
            };
            let penalty = e.fault.penalty();
            if penalty == Penalty::None {
                self.record_named(
                    NamedRecord {
                        height: at,
                        view,
                        ceremony_number,
                        attempt,
                        identity: key_of(&e.identity),
                        role,
                        fault: fault_name(&e.fault),
                        detail: e.fault.to_string(),
                        evidence: evidence_record(&e.evidence),
                    },
                    events,
                );
                continue;
            }
            self.record_fault(
                FaultInfo {
                    view,
                    ceremony: FaultCeremony::ViewChange,
                    ceremony_number,
                    attempt,
                    identity: key_of(&e.identity),
                    role,
                    fault: fault_name(&e.fault),
                    detail: e.fault.to_string(),
                    misbehaviour: penalty == Penalty::Misbehaviour,
                    evidence: evidence_record(&e.evidence),
                    reporter: e.reporter.as_ref().map(key_of),
                },
                at,
                events,
            );
        }
    }

    /// Stores a name once per node, role, fault and attempt.
    pub(super) fn record_named(&mut self, record: NamedRecord, events: &mut Vec<Event>) {
        if self.state.named.iter().any(|r| {
            r.view == record.view
                && r.ceremony_number == record.ceremony_number
                && r.attempt == record.attempt
                && r.role == record.role
                && r.identity == record.identity
                && r.fault == record.fault
        }) {
            return;
        }
        self.state.named.push(record.clone());
        events.push(Event::Named { record });
    }

    pub(super) fn record_fault(&mut self, f: FaultInfo, at: u64, events: &mut Vec<Event>) {
        if self.state.slashings.iter().any(|r| {
            r.view == f.view
                && r.ceremony == f.ceremony
                && r.ceremony_number == f.ceremony_number
                && r.role == f.role
                && r.identity == f.identity
        }) {
            return;
        }
        // An absence is charged once per round of a view change (its ceremonies until it is
        // abandoned) and once per signing-key ceremony: one outage makes a node absent as
        // dealer and as player, and in every ceremony of the round that seats it, and charging
        // each would take most of an honest node's stake for one restart. A later round (the
        // abandoned view change tried again, its bans lifted) charges again, so a node that
        // never comes back still loses its stake round by round and leaves the selection. It
        // is recorded every time, with no amount after the first. Proven misbehaviour is
        // charged each time.
        let round_start = match f.ceremony {
            FaultCeremony::ViewChange => self
                .state
                .change
                .as_ref()
                .filter(|c| c.view == f.view)
                .map_or(f.ceremony_number, |c| c.first_ceremony_number),
            FaultCeremony::SigningKey => 0,
        };
        let absent_before = !f.misbehaviour
            && self.state.slashings.iter().any(|r| {
                !r.misbehaviour
                    && r.view == f.view
                    && r.ceremony == f.ceremony
                    && r.identity == f.identity
                    && r.ceremony_number >= round_start
            });
        let percent = if f.misbehaviour {
            self.config.slashing.misbehaviour_percent
        } else if absent_before {
            0
        } else {
            self.config.slashing.absence_percent
        };
        let stake = self
            .state
            .nodes
            .get(&f.identity)
            .map(|n| n.stake)
            .unwrap_or(0);
        let amount = (stake as u128 * percent as u128 / 100) as u64;
        self.set_stake(&f.identity, stake - amount);
        // The board never names the culprit as its own reporter; checked again here because
        // this is where stake changes hands.
        let reporter = f.reporter.filter(|r| *r != f.identity);
        let (reporter_reward, burned) = self.settle_slash(amount, reporter.as_ref());
        let record = SlashingRecord {
            height: at,
            view: f.view,
            ceremony: f.ceremony,
            ceremony_number: f.ceremony_number,
            attempt: f.attempt,
            identity: f.identity,
            role: f.role,
            fault: f.fault,
            detail: f.detail,
            misbehaviour: f.misbehaviour,
            evidence: f.evidence,
            amount,
            stake_after: stake - amount,
            reporter,
            reporter_reward,
            burned,
        };
        self.state.slashings.push(record.clone());
        events.push(Event::Slashed { record });
    }

    /// Disposes of `amount` just taken from a stake: `reporter_percent` of it to the reporter's
    /// balance if there is one, the rest burned. Returns (reward, burned); they add up to
    /// `amount`, so the supply is conserved.
    pub(super) fn settle_slash(
        &mut self,
        amount: u64,
        reporter: Option<&IdentityKey>,
    ) -> (u64, u64) {
        let reward = match reporter {
            Some(r) => {
                let reward =
                    (amount as u128 * self.config.slashing.reporter_percent as u128 / 100) as u64;
                self.credit(r, reward);
                reward
            }
            None => 0,
        };
        let burned = amount - reward;
        self.state.burned = self.state.burned.saturating_add(burned);
        (reward, burned)
    }
}

pub(super) struct FaultInfo {
    pub(super) view: u64,
    pub(super) ceremony: FaultCeremony,
    pub(super) ceremony_number: u32,
    pub(super) attempt: u32,
    pub(super) identity: IdentityKey,
    pub(super) role: FaultRole,
    pub(super) fault: String,
    pub(super) detail: String,
    pub(super) misbehaviour: bool,
    pub(super) evidence: EvidenceRecord,
    /// Who proved the fault (`Exclusion::reporter`), paid the reporter's share; `None` burns
    /// the whole slash.
    pub(super) reporter: Option<IdentityKey>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ContractConfig, KeyMode};
    use crate::hex::Hex;
    use crate::state::{NodeRecord, ViewChangePhase};
    use crate::tx::NetworkIdentity;
    use keyquorum_dkg::board::BoardPhase;
    use keyquorum_dkg::identity::IdentityKeypair;

    #[test]
    fn a_slash_is_burned_or_split_with_the_reporter() {
        let culprit = IdentityKeypair::from_seed(&[1; 32]).unwrap();
        let reporter = IdentityKeypair::from_seed(&[2; 32]).unwrap();
        let mut config = ContractConfig::defaults("c", 4)
            .fund(culprit.public(), 1000)
            .fund(reporter.public(), 5);
        config.slashing.reporter_percent = 30;
        let mut c = Contract::new(config).unwrap();
        let (culprit, reporter) = (key_of(culprit.public()), key_of(reporter.public()));
        // 107 of its 1000 were locked as stake and taken by two slashes (as record_fault does
        // before settling them).
        c.state.balances.insert(culprit, 893);
        c.state.nodes.insert(
            culprit,
            NodeRecord {
                identity: culprit,
                encryption_key: Hex([9; 32]),
                network: NetworkIdentity {
                    peer_id: Bytes(vec![1]),
                    addresses: Vec::new(),
                },
                stake: 0,
                registered_at: 1,
                refused_posts: 0,
                verifiable_key: None,
                leaving: false,
            },
        );
        assert_eq!(c.settle_slash(100, Some(&reporter)), (30, 70));
        assert_eq!(c.state.balance(&reporter), 35);
        assert_eq!(c.state.burned, 70);
        // Without a reporter everything is burned.
        assert_eq!(c.settle_slash(7, None), (0, 7));
        assert_eq!(c.state.burned, 77);
        assert_eq!(c.state.supply().total(), c.config.total_supply());
    }

    #[test]
    fn stored_names_come_from_explicit_codes() {
        for fault in [
            FaultKind::BadAckSignature,
            FaultKind::CommitmentSize {
                expected: 5,
                actual: 3,
            },
            FaultKind::IncompletePublication { missing: 3 },
            FaultKind::WithheldAck {
                reports: 1,
                revealed: 1,
            },
        ] {
            assert_eq!(fault_name(&fault), fault.code());
            assert_eq!(fault_reason(&fault), format!("{}: {fault}", fault.code()));
        }
        assert_eq!(fault_name(&FaultKind::Equivocation), "equivocation");
        for (phase, name) in [
            (BoardPhase::Contribute, "contribute"),
            (BoardPhase::Share, "share"),
            (BoardPhase::Publish, "publish"),
            (BoardPhase::Done, "done"),
        ] {
            assert_eq!(
                evidence_record(&Evidence::Absence { phase, attempt: 1 }),
                EvidenceRecord::Absence {
                    phase: name.into(),
                    attempt: 1
                }
            );
        }
        assert_eq!(
            [
                FaultRole::Dealer,
                FaultRole::Player,
                FaultRole::Signer,
                FaultRole::PreviousSigner
            ]
            .map(|r| (r.as_str(), serde_json::to_string(&r).unwrap())),
            [
                ("dealer", "\"dealer\"".to_string()),
                ("player", "\"player\"".to_string()),
                ("signer", "\"signer\"".to_string()),
                ("previous_signer", "\"previous_signer\"".to_string())
            ]
        );
        assert_eq!(
            ViewChangePhase::ALL.map(|p| (p.as_str(), serde_json::to_string(&p).unwrap())),
            ["idle", "contribute", "share", "publish", "wait"].map(|n| (n, format!("\"{n}\"")))
        );
        assert_eq!(
            KeyMode::ALL.map(|m| (m.as_str(), serde_json::to_string(&m).unwrap())),
            ["fresh", "reshare"].map(|n| (n, format!("\"{n}\"")))
        );
    }
}
