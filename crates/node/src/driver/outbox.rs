//! What the core reports: typed [`Observation`]s of what happened, kept in an outbox the caller
//! drains ([`Driver::drain_observations`]) and hands to the node's one
//! [`Reporter`](crate::report::Reporter), which writes `/status` and the metrics. The core holds
//! neither the status lock nor a metric handle.

use super::*;

impl Driver {
    /// The observations since the last call, oldest first.
    pub fn drain_observations(&mut self) -> Vec<Observation> {
        std::mem::take(&mut self.observations)
    }

    pub(super) fn observe(&mut self, o: Observation) {
        self.observations.push(o);
    }

    pub(super) fn fault_seen(&mut self, fault: &str) {
        self.observe(Observation::FaultSeen {
            fault: fault.into(),
        });
    }

    /// On opening, what the stored state says about this node: who it is, whether it is
    /// registered, the active view and its last outcome.
    pub(super) fn observe_opened(&mut self) {
        self.observe(Observation::Opened {
            identity: hex_id(&self.me),
            peer_id: self.keys.peer_id().to_string(),
            fault: self.fault.name().into(),
        });
        self.observe(Observation::Registration {
            registered: self.state.registered,
        });
        let view = self.state.current_view;
        if view > 0 {
            let share = self.state.shares.iter().find(|x| x.view == view);
            let committee = self
                .active_block
                .as_ref()
                .filter(|b| b.view == view)
                .map(|b| {
                    let members = b
                        .members
                        .iter()
                        .map(|m| hex::encode(m.identity.0))
                        .collect();
                    (members, b.t)
                });
            self.observe(Observation::ViewResumed {
                view,
                share_index: share.map(|s| s.index),
                group_key: share.map(|s| s.group_key.clone()),
                committee,
            });
        }
        if let Some(o) = self.state.outputs.last() {
            self.observe(Observation::OutcomeRecorded {
                record: o.clone(),
                replayed: true,
            });
        }
        // The view change under way, as its selection showed it before the restart, with the
        // part the seat now gives this node.
        if let Some(rec) = &self.state.ceremony
            && let Ok(ceremony) = rec.spec.ceremony()
        {
            let role = seat_role(&ceremony, &self.me, rec.seat);
            let pending = pending_status(rec.view, rec.ceremony_number, &ceremony, &self.me, role);
            self.observe(Observation::CeremonySelected(pending));
        }
        // The board's phase as the last block before the restart left it (not timed: it began
        // before this process).
        if let Some(p) = &self.state.phase {
            self.observe(Observation::PhaseChanged {
                phase: p.name.clone(),
                deadline: p.deadline,
                attempt: p.attempt,
                replayed: true,
            });
        }
    }

    /// The part this node's seat gives it, once settled after catching up.
    pub(super) fn observe_seat(&mut self, ceremony: &Ceremony<G>, seat: Seat) {
        let role = seat_role(ceremony, &self.me, seat).to_string();
        self.observe(Observation::SeatSettled { role });
    }
}

/// `/status`'s record of a ceremony this node is selected for, `role` its part in it.
pub(super) fn pending_status(
    view: u64,
    ceremony_number: u32,
    ceremony: &Ceremony<G>,
    me: &IdentityPublicKey,
    role: &str,
) -> PendingStatus {
    let hexes = |m: &[Member]| -> Vec<String> {
        m.iter()
            .map(|p| hex::encode(p.identity.to_bytes()))
            .collect()
    };
    let reshare = ceremony.reshare().is_some();
    PendingStatus {
        view,
        ceremony_number,
        attempt: 0,
        key_mode: if reshare { "reshare" } else { "fresh" }.into(),
        committee: hexes(ceremony.players()),
        dealers: if reshare {
            hexes(ceremony.dealers())
        } else {
            Vec::new()
        },
        role: role.into(),
        share_index: ceremony.player_position(me).map(|p| p as u64 + 1),
    }
}

/// The part a seat gives this node in `ceremony`, as `/status` names it: a node seated as a
/// player only (caught up past the deal window) or as an observer no longer deals, whatever
/// its selection made it.
pub(super) fn seat_role(
    ceremony: &Ceremony<G>,
    me: &IdentityPublicKey,
    seat: Seat,
) -> &'static str {
    match (seat, SeatRole::of(ceremony, Some(me))) {
        (Seat::Observer, _) => SeatRole::Outside.as_str(),
        (Seat::Player, SeatRole::DealerAndPlayer) => SeatRole::Player.as_str(),
        (_, selected) => selected.as_str(),
    }
}
