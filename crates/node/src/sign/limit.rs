//! Per-caller rate limiting: one token bucket per caller key, refilled at a steady rate up to
//! a burst. `POST /sign` keys callers by remote IP address, the answers to requests for
//! beacon rounds (`crate::beacon::sync::SyncGate`) by asking peer. Deterministic: the caller
//! passes the time in milliseconds.
//!
//! The number of buckets is bounded: when the table is full, buckets that have refilled
//! completely (they hold no information a fresh bucket would not) are dropped, and if none
//! has, the least recently used one is, so many distinct callers cannot grow memory without
//! bound.

use std::collections::HashMap;

/// Most callers tracked at once.
pub const MAX_CALLERS: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: u64,
}

/// Token buckets by caller.
#[derive(Debug)]
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: HashMap<String, Bucket>,
}

impl RateLimiter {
    /// Buckets refilled at `per_sec` tokens a second, holding at most `burst` tokens.
    pub fn new(per_sec: f64, burst: u32) -> Self {
        RateLimiter {
            per_sec,
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
        }
    }

    fn refilled(&self, b: Bucket, now_ms: u64) -> f64 {
        let secs = now_ms.saturating_sub(b.at_ms) as f64 / 1000.0;
        (b.tokens + secs * self.per_sec).min(self.burst)
    }

    /// Takes one token from `caller`'s bucket at `now_ms`; when it is empty, returns how many
    /// whole seconds until it holds one again (at least 1).
    pub fn check(&mut self, caller: &str, now_ms: u64) -> Result<(), u64> {
        if !self.buckets.contains_key(caller) && self.buckets.len() >= MAX_CALLERS {
            self.evict(now_ms);
        }
        let fresh = Bucket {
            tokens: self.burst,
            at_ms: now_ms,
        };
        let b = self.buckets.get(caller).copied().unwrap_or(fresh);
        let tokens = self.refilled(b, now_ms);
        if tokens >= 1.0 {
            self.buckets.insert(
                caller.to_owned(),
                Bucket {
                    tokens: tokens - 1.0,
                    at_ms: now_ms,
                },
            );
            Ok(())
        } else {
            self.buckets.insert(
                caller.to_owned(),
                Bucket {
                    tokens,
                    at_ms: now_ms,
                },
            );
            let wait = (1.0 - tokens) / self.per_sec;
            Err((wait.ceil() as u64).max(1))
        }
    }

    fn evict(&mut self, now_ms: u64) {
        let burst = self.burst;
        let per_sec = self.per_sec;
        self.buckets.retain(|_, b| {
            let secs = now_ms.saturating_sub(b.at_ms) as f64 / 1000.0;
            b.tokens + secs * per_sec < burst
        });
        if self.buckets.len() >= MAX_CALLERS
            && let Some(oldest) = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.at_ms)
                .map(|(k, _)| k.clone())
        {
            self.buckets.remove(&oldest);
        }
    }

    /// Callers tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no caller is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_applies() {
        let mut l = RateLimiter::new(2.0, 3);
        for _ in 0..3 {
            assert_eq!(l.check("a", 1000), Ok(()));
        }
        assert_eq!(l.check("a", 1000), Err(1));
        // Another caller has its own bucket.
        assert_eq!(l.check("b", 1000), Ok(()));
        // Half a second refills one token at 2 per second.
        assert_eq!(l.check("a", 1500), Ok(()));
        assert_eq!(l.check("a", 1500), Err(1));
        // Never more than the burst, however long the wait.
        for _ in 0..3 {
            assert_eq!(l.check("a", 100_000), Ok(()));
        }
        assert!(l.check("a", 100_000).is_err());
    }

    #[test]
    fn a_slow_rate_names_the_wait() {
        let mut l = RateLimiter::new(0.1, 1);
        assert_eq!(l.check("a", 0), Ok(()));
        assert_eq!(l.check("a", 0), Err(10));
        assert_eq!(l.check("a", 5000), Err(5));
        assert_eq!(l.check("a", 10_000), Ok(()));
    }

    #[test]
    fn the_table_of_callers_is_bounded() {
        let mut l = RateLimiter::new(1.0, 2);
        for i in 0..MAX_CALLERS + 10 {
            assert_eq!(l.check(&i.to_string(), i as u64), Ok(()));
            assert!(l.len() <= MAX_CALLERS);
        }
        // Full buckets go first: a caller still limited keeps its state.
        let mut l = RateLimiter::new(1.0, 1);
        for i in 0..MAX_CALLERS - 1 {
            assert_eq!(l.check(&i.to_string(), 0), Ok(()));
        }
        assert_eq!(l.check("busy", 10_000), Ok(()));
        assert_eq!(l.len(), MAX_CALLERS);
        assert_eq!(l.check("new", 10_000), Ok(()));
        assert_eq!(l.len(), 2, "the refilled buckets were dropped");
        assert_eq!(
            l.check("busy", 10_000),
            Err(1),
            "a limited caller was forgotten"
        );
    }
}
