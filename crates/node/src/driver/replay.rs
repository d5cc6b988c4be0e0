//! Resuming after a restart: the running ceremony's participant is rebuilt from its sealed seed and
//! logged inputs, and the effects that resume it are returned again (module docs of [`super`],
//! "Crash safety").

use super::catch_up::DealTrace;
use super::*;
use crate::status::SAT_OUT_VIEW;

impl Driver {
    /// Rebuilds the running ceremony after a restart.
    pub(super) fn resume(&mut self) -> Result<Vec<Effect>, DriverError> {
        let mut effects = Vec::new();
        // A magic block we may not have signed before the crash: sign again (the contract
        // refuses duplicates without consuming a nonce).
        if let Some(pm) = self.state.pending_magic.clone() {
            let mut hash = [0u8; 32];
            if hex::decode_to_slice(&pm.hash, &mut hash).is_ok() {
                self.sign_magic_block(pm.view, pm.ceremony_number, &hash, pm.index, &mut effects)?;
            }
        }
        let Some(rec) = self.state.ceremony.clone() else {
            return Ok(effects);
        };
        if rec.done || self.fault == Fault::Silent {
            return Ok(effects);
        }
        let mut id = [0u8; 32];
        hex::decode_to_slice(&rec.session_id, &mut id)
            .map_err(|_| StoreError::Corrupt("session id".into()))?;
        let ceremony = match rec.spec.ceremony() {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "stored ceremony no longer builds; dropping it");
                self.state.ceremony = None;
                return Ok(effects);
            }
        };
        if !rec.seat.runs_participant() {
            // Following the board only: its logged posts and deadlines rebuild it.
            let mut runner = Runner::board_only(&ceremony);
            runner.replay(self.store.inputs(&id)?);
            let live = self.make_live(id, ceremony, runner, [0; 32]);
            if rec.seat == Seat::SittingOut {
                let trace = live.own_deal_trace(&self.me);
                let out = self.sat_out_status(
                    SAT_OUT_VIEW,
                    &rec.spec,
                    rec.ceremony_number,
                    &rec.session_id,
                    trace,
                );
                self.observe(Observation::CeremonySatOut(out));
            }
            self.live = Some(live);
            return Ok(effects);
        }
        let seed = self
            .secret(&format!("seed/{}", rec.session_id))?
            .ok_or_else(|| DriverError::Secret(format!("seed/{}", rec.session_id)))?;
        let seed: [u8; 32] = seed
            .as_slice()
            .try_into()
            .map_err(|_| DriverError::Secret("seed".into()))?;
        let Some((runner, taken)) = self.new_participant(&ceremony, rec.view, seed, rec.seat)?
        else {
            return Ok(effects);
        };
        if taken != rec.seat {
            self.observe_seat(&ceremony, taken);
            if let Some(stored) = self.state.ceremony.as_mut() {
                stored.seat = taken;
            }
        }
        self.live = Some(self.make_live(id, ceremony.clone(), runner, seed));
        effects.push(self.enter_effect(&ceremony, id));
        let inputs = self.store.inputs(&id)?;
        info!(
            view = rec.view,
            ceremony_number = rec.ceremony_number,
            inputs = inputs.len(),
            "resuming ceremony by replay"
        );
        let on_board: HashSet<Vec<u8>> = inputs
            .iter()
            .filter_map(|i| match i {
                Input::BoardPost(p) => Some(p.clone()),
                _ => None,
            })
            .collect();
        let actions = self.live.as_mut().expect("just set").node.replay(inputs);
        let mut batch = self.store.begin()?;
        self.carry_out(actions, &mut batch, &mut effects, Some(&on_board))?;
        self.commit(batch)?;
        self.pull_missing(&mut effects);
        Ok(effects)
    }

    /// Deals we may have missed while down or catching up: ask the dealers (they also keep
    /// retrying).
    pub(super) fn pull_missing(&self, effects: &mut Vec<Effect>) {
        if let Some(live) = &self.live
            && live.node.dealing()
            && live.ceremony.player_position(&self.me).is_some()
        {
            let have: BTreeSet<u32> = live.node.received_from().into_iter().collect();
            for (d, p) in live.ceremony.dealers().iter().enumerate() {
                if p.identity != self.me
                    && !have.contains(&(d as u32))
                    && live.node.deal_trace(d as u32, None) != DealTrace::Absent
                {
                    effects.push(Effect::Pull {
                        session: live.id,
                        from: p.identity.to_bytes().to_vec(),
                    });
                }
            }
        }
    }
}
