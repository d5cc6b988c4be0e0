//! Direct messages from peers: which ones the running participant consumes, and the deals this node
//! answers pulls with (module docs of [`super`], "Peers").

use super::*;

impl Driver {
    /// Handles a batch of direct messages; returns one verdict per message and the effects.
    pub fn process_messages(
        &mut self,
        msgs: Vec<Incoming>,
    ) -> Result<(Vec<Verdict>, Vec<Effect>), DriverError> {
        let mut verdicts = Vec::with_capacity(msgs.len());
        let mut effects = Vec::new();
        let mut batch: Option<Batch> = None;
        for m in msgs {
            if let Some(checked) = self.check_signing_message(&m) {
                match checked {
                    Ok(from) => {
                        if batch.is_none() {
                            batch = Some(self.store.begin()?);
                        }
                        let b = batch.as_mut().expect("just set");
                        let input = Input::Message {
                            from,
                            payload: m.payload,
                        };
                        self.feed_signing(input, b, &mut effects)?;
                        verdicts.push(Verdict::Accepted);
                    }
                    Err(v) => verdicts.push(v),
                }
                continue;
            }
            let from = match self.check_message(&m) {
                Ok(from) => from,
                Err(v) => {
                    verdicts.push(v);
                    continue;
                }
            };
            if batch.is_none() {
                batch = Some(self.store.begin()?);
            }
            let b = batch.as_mut().expect("just set");
            let input = Input::Message {
                from,
                payload: m.payload,
            };
            self.feed(input, b, &mut effects)?;
            verdicts.push(Verdict::Accepted);
        }
        if let Some(b) = batch {
            self.commit(b)?;
        }
        Ok((verdicts, effects))
    }

    /// Whether a message goes to the live participant and, if so, the sender the network layer
    /// authenticated. Whether that sender is the author the message claims is the participant's
    /// rule (`Observation::WrongSender`), not checked here.
    pub(super) fn check_message(&self, m: &Incoming) -> Result<IdentityPublicKey, Verdict> {
        let Some(live) = &self.live else {
            return Err(if self.recent.contains(&m.session) {
                Verdict::Ignored
            } else {
                Verdict::Later
            });
        };
        if live.id != m.session {
            return Err(if self.recent.contains(&m.session) {
                Verdict::Ignored
            } else {
                Verdict::Later
            });
        }
        if self.state.ceremony.as_ref().is_none_or(|s| s.done) {
            return Err(Verdict::Ignored);
        }
        // Without an authenticated sender a message cannot be attributed to anyone.
        let Some(from) = &m.from else {
            debug!("dropping a message without an authenticated sender");
            return Err(Verdict::Ignored);
        };
        // Members' keys are already validated; only an outsider's is decoded (and checked).
        let known = live
            .ceremony
            .dealers()
            .iter()
            .chain(live.ceremony.players())
            .find(|p| p.identity.as_bytes()[..] == from[..])
            .map(|p| p.identity.clone());
        match known {
            Some(id) => Ok(id),
            None => IdentityPublicKey::from_bytes(from).map_err(|_| Verdict::Ignored),
        }
    }

    /// The deal this node (as a dealer) sent to `requester` in the ceremony of session id `session`, for a pull.
    pub fn deal_for(&self, session: &[u8; 32], requester: &[u8]) -> Option<Vec<u8>> {
        let live = self.live.as_ref()?;
        if &live.id != session {
            return None;
        }
        live.outbox.get(requester).cloned()
    }
}
