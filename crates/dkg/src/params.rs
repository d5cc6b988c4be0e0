//! Ceremony parameters `n`, `t`, `k` and the bounds derived from them.
//!
//! - `n`: players (members of the committee that receives shares).
//! - `t`: shares needed to sign or reconstruct; dealers' polynomials have degree `t - 1`.
//! - `k`: the fewest qualified dealers for the ceremony to succeed (Züs' K).
//!
//! The adversary the protocol is parameterised for controls at most `f = n - k` participants:
//! that is the most that may fail while `k` honest dealers still qualify. Secrecy requires that
//! `f` corrupt players together with everything made public never reach `t` shares of an honest
//! dealer. In the ack-or-reveal variant a dealer reveals the shares of players that did not ack;
//! those reveals may belong to honest (slow) players, so
//!
//! ```text
//!     f + reveals <= t - 1      i.e.  reveals <= t - 1 - (n - k)
//! ```
//!
//! is the bound on reveals per dealer ([`Params::max_reveals`]), `t + k - n - 1`, non-negative
//! exactly when `t + k > n`, which [`Params::new`] requires. With `n = 3f + 1`, `t = k = 2f + 1`
//! this is the familiar "at most `f` reveals"; with Züs' defaults (`t` = 66%, `k` = 75% of `n`)
//! it is 41% of `n` less one: 40 reveals at `n = 100`, while the `n - k = 25` tolerated corrupt
//! players plus 40 reveals stay below `t = 66`.
//!
//! Liveness needs more. In the ack-or-reveal variant the `f` corrupt players can refuse to ack
//! every honest dealer, so each honest dealer must be able to absorb `f` reveals and stay
//! qualified: `max_reveals >= n - k`, that is
//!
//! ```text
//!     t >= 2 (n - k) + 1
//! ```
//!
//! Below it, `n - k` members acting together exclude every honest dealer of an attempt, and the
//! ceremony cannot finish with the adversary the parameters claim to tolerate. (The complaint
//! variant reveals no shares to answer complaints, so the bound does not constrain it; one set of
//! parameters serves both variants.)
//! [`Params::new`] refuses such sets ([`ParamsError::Unlive`]); `t >= 2 (n - k) + 1` with
//! `t <= k` implies `k > 2n / 3` and `t + k > n`. BFT parameters meet it with equality, Züs'
//! 66% / 75% with room (`t = 66 >= 51` at `n = 100`).

use thiserror::Error;

/// Largest committee supported (bounds every length on the wire).
pub const MAX_PARTICIPANTS: usize = 4096;

/// Invalid parameters.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParamsError {
    /// `n` is zero or above [`MAX_PARTICIPANTS`].
    #[error("committee size n = {0} must be between 1 and {MAX_PARTICIPANTS}")]
    BadSize(usize),
    /// `t` must be at least 1.
    #[error("threshold t must be at least 1")]
    ZeroThreshold,
    /// `t <= k <= n` violated.
    #[error("need t <= k <= n, got t = {t}, k = {k}, n = {n}")]
    Order {
        /// Committee size.
        n: usize,
        /// Threshold.
        t: usize,
        /// Quorum.
        k: usize,
    },
    /// `t + k > n` violated: the tolerated faults `n - k` could reach the threshold alone.
    #[error(
        "need t + k > n so that n - k tolerated faults stay below t (t = {t}, k = {k}, n = {n})"
    )]
    Insecure {
        /// Committee size.
        n: usize,
        /// Threshold.
        t: usize,
        /// Quorum.
        k: usize,
    },
    /// `t >= 2 (n - k) + 1` violated: the `n - k` tolerated faults could withhold acks from
    /// every honest dealer beyond the reveal bound `t - 1 - (n - k)`.
    #[error(
        "need t >= 2(n - k) + 1 so that n - k = {faults} members withholding acks cannot push an honest dealer past the reveal bound (t = {t}, k = {k}, n = {n}: t must be at least {min_t}); this is the ack-or-reveal variant's liveness bound, and one parameter set is checked for both variants",
        faults = n - k,
        min_t = 2 * (n - k) + 1
    )]
    Unlive {
        /// Committee size.
        n: usize,
        /// Threshold.
        t: usize,
        /// Quorum.
        k: usize,
    },
}

/// Validated `(n, t, k)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Params {
    n: usize,
    t: usize,
    k: usize,
}

impl Params {
    /// Validates `1 <= t <= k <= n <= MAX_PARTICIPANTS`, `t + k > n` (secrecy) and
    /// `t >= 2 (n - k) + 1` (liveness against `n - k` faults; see the module docs).
    pub fn new(n: usize, t: usize, k: usize) -> Result<Self, ParamsError> {
        if n == 0 || n > MAX_PARTICIPANTS {
            return Err(ParamsError::BadSize(n));
        }
        if t == 0 {
            return Err(ParamsError::ZeroThreshold);
        }
        if t > k || k > n {
            return Err(ParamsError::Order { n, t, k });
        }
        if t + k <= n {
            return Err(ParamsError::Insecure { n, t, k });
        }
        if t < 2 * (n - k) + 1 {
            return Err(ParamsError::Unlive { n, t, k });
        }
        Ok(Params { n, t, k })
    }

    /// The usual BFT choice: `t = k = n - f` with `f =` [`Params::bft_faults`]`(n)`.
    pub fn bft(n: usize) -> Result<Self, ParamsError> {
        let f = Params::bft_faults(n);
        Params::new(n, n - f, n - f)
    }

    /// The most Byzantine members `n` members tolerate with a BFT threshold:
    /// `floor((n - 1) / 3)` (0 for `n = 0`).
    pub fn bft_faults(n: usize) -> usize {
        n.saturating_sub(1) / 3
    }

    /// Züs-style percentages of `n` (rounded up): `t = ceil(t_pct n / 100)`, `k = ceil(k_pct n / 100)`.
    pub fn from_percent(n: usize, t_pct: u32, k_pct: u32) -> Result<Self, ParamsError> {
        let pct = |p: u32| (n * p as usize).div_ceil(100).max(1);
        Params::new(n, pct(t_pct), pct(k_pct))
    }

    /// Committee size.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Threshold.
    pub fn t(&self) -> usize {
        self.t
    }

    /// Dealer quorum.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Faults tolerated: `n - k`.
    pub fn fault_bound(&self) -> usize {
        self.n - self.k
    }

    /// Most shares a dealer may reveal and stay qualified: `t - 1 - (n - k)`.
    pub fn max_reveals(&self) -> usize {
        self.t - 1 - self.fault_bound()
    }

    /// Fewest acks a qualified dealer has: `n - max_reveals`.
    pub fn min_acks(&self) -> usize {
        self.n - self.max_reveals()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert!(Params::new(4, 3, 3).is_ok());
        assert_eq!(Params::new(0, 1, 1), Err(ParamsError::BadSize(0)));
        assert_eq!(Params::new(4, 0, 3), Err(ParamsError::ZeroThreshold));
        assert!(matches!(
            Params::new(4, 4, 3),
            Err(ParamsError::Order { .. })
        ));
        assert!(matches!(
            Params::new(4, 2, 5),
            Err(ParamsError::Order { .. })
        ));
        assert!(matches!(
            Params::new(10, 3, 7),
            Err(ParamsError::Insecure { .. })
        ));
        assert!(Params::new(1, 1, 1).is_ok());
        // Secure but not live: two members withholding acks exceed the reveal bound 0.
        assert_eq!(
            Params::new(5, 3, 3),
            Err(ParamsError::Unlive { n: 5, t: 3, k: 3 })
        );
        assert_eq!(
            Params::new(4, 2, 3),
            Err(ParamsError::Unlive { n: 4, t: 2, k: 3 })
        );
        assert!(Params::new(4, 3, 3).is_ok());
        assert!(Params::new(5, 3, 4).is_ok());
    }

    #[test]
    fn accepted_sets_absorb_their_faults() {
        // Exhaustive up to 64: accepted exactly when secure and live, and then every
        // tolerated fault fits in the reveal bound with secrecy kept.
        for n in 1..=64 {
            for k in 1..=n {
                for t in 1..=k {
                    let want = t + k > n && t > 2 * (n - k);
                    let got = Params::new(n, t, k);
                    assert_eq!(got.is_ok(), want, "n = {n}, t = {t}, k = {k}: {got:?}");
                    if let Ok(p) = got {
                        assert!(p.max_reveals() >= p.fault_bound());
                        assert!(p.fault_bound() + p.max_reveals() < p.t());
                        assert!(3 * p.k() > 2 * n);
                    }
                }
            }
        }
        for (t_pct, k_pct) in [(66, 75), (67, 67), (67, 75), (75, 75)] {
            for n in 1..=crate::params::MAX_PARTICIPANTS {
                assert!(
                    Params::from_percent(n, t_pct, k_pct).is_ok(),
                    "{t_pct}/{k_pct} n = {n}"
                );
            }
        }
    }

    #[test]
    fn bounds() {
        let p = Params::bft(10).unwrap(); // f = 3, t = k = 7
        assert_eq!(
            (p.t(), p.k(), p.fault_bound(), p.max_reveals()),
            (7, 7, 3, 3)
        );
        let z = Params::from_percent(100, 66, 75).unwrap();
        assert_eq!((z.t(), z.k(), z.max_reveals()), (66, 75, 40));
        for n in 1..200 {
            let p = Params::bft(n).unwrap();
            // Secrecy: tolerated corrupt players plus reveals stay below t.
            assert!(p.fault_bound() + p.max_reveals() < p.t());
            assert_eq!(p.min_acks() + p.max_reveals(), n);
            // n >= 3f + 1: the largest f with that.
            let f = Params::bft_faults(n);
            assert!(n > 3 * f && n <= 3 * (f + 1));
        }
        assert_eq!(Params::bft_faults(0), 0);
    }
}
