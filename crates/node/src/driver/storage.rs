//! Secrets sealed with the node's storage key and the commit of each batch: what the core reads and
//! writes besides the participant's input log.

use super::*;

impl Driver {
    pub(super) fn secret(&self, label: &str) -> Result<Option<Zeroizing<Vec<u8>>>, DriverError> {
        let sealed = match self.fresh_secrets.get(label) {
            Some(s) => Some(s.clone()),
            None => self.store.secret(label)?,
        };
        match sealed {
            None => Ok(None),
            Some(s) => self
                .keys
                .open(label, &s)
                .map(Some)
                .map_err(|_| DriverError::Secret(label.into())),
        }
    }

    pub(super) fn scalar(&self, label: &str) -> Result<Option<Secret<Scalar>>, DriverError> {
        Ok(match self.secret(label)? {
            None => None,
            Some(b) => Some(Secret::new(
                G::decode_scalar(&b).map_err(|_| DriverError::Secret(label.into()))?,
            )),
        })
    }

    pub(super) fn put_secret(
        &mut self,
        batch: &mut Batch,
        label: &str,
        plain: &[u8],
    ) -> Result<(), DriverError> {
        let sealed = self.keys.seal(label, plain);
        batch.put_secret(label, &sealed)?;
        self.fresh_secrets.insert(label.to_string(), sealed);
        Ok(())
    }

    pub(super) fn delete_secret(
        &mut self,
        batch: &mut Batch,
        label: &str,
    ) -> Result<(), DriverError> {
        batch.delete_secret(label)?;
        self.fresh_secrets.remove(label);
        Ok(())
    }

    pub(super) fn commit(&mut self, mut batch: Batch) -> Result<(), DriverError> {
        self.state.follower = self.follower.position();
        batch.put_state(&self.state)?;
        batch.commit()?;
        self.stored_cursor = self.state.cursor;
        self.fresh_secrets.clear();
        Ok(())
    }
}
