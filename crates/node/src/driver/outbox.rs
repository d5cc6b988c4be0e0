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
            self.observe(Observation::ViewResumed {
                view,
                share_index: share.map(|s| s.index),
                group_key: share.map(|s| s.group_key.clone()),
            });
        }
        if let Some(o) = self.state.outputs.last() {
            self.observe(Observation::OutcomeRecorded {
                record: o.clone(),
                replayed: true,
            });
        }
    }
}
