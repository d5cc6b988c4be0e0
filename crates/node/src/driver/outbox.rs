//! What the core shows on `/status`: the writes that only report (the view, the registration, the
//! last outcome, a ceremony sat out).

use super::*;

impl Driver {
    pub(super) fn refresh_status(&self) {
        let mut s = self.status.lock().expect("status lock");
        s.registered = self.state.registered;
        if s.view == 0 && self.state.current_view > 0 {
            s.view = self.state.current_view;
            if let Some(sh) = self
                .state
                .shares
                .iter()
                .find(|x| x.view == self.state.current_view)
            {
                s.share_index = Some(sh.index);
                s.group_key = Some(sh.group_key.clone());
            }
        }
        if let Some(o) = self.state.outputs.last() {
            s.qualified = o.qualified_identities.clone();
            s.last_outcome = Some(o.clone());
        }
    }

    pub(super) fn show_sitting_out(&self, view: u64, ceremony_number: u32) {
        self.status.lock().expect("status lock").sitting_out = Some(SittingOutStatus {
            view,
            ceremony_number,
            reason: "own contribution is on the board but its state is lost".into(),
        });
    }
}
