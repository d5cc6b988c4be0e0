//! Warn once, then quietly: a condition the node retries on a timer (a view change abandoned
//! for want of candidates, a start the coordinator keeps refusing) would otherwise put the same
//! warning in the log at every retry. [`RepeatLog`] remembers the last key warned about; the
//! caller warns when [`RepeatLog::is_news`] says so and logs the repeats at debug level.

/// The last key warned about.
#[derive(Debug)]
pub struct RepeatLog<K>(Option<K>);

impl<K> Default for RepeatLog<K> {
    fn default() -> Self {
        RepeatLog(None)
    }
}

impl<K: PartialEq> RepeatLog<K> {
    /// Records `key`; true when it is news (another key than the last).
    pub fn is_news(&mut self, key: K) -> bool {
        if self.0.as_ref() == Some(&key) {
            return false;
        }
        self.0 = Some(key);
        true
    }

    /// The condition ended: the next key is news whatever it is.
    pub fn reset(&mut self) {
        self.0 = None;
    }
}
