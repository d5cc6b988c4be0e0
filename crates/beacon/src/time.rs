//! Rounds and time, as drand maps them (drand's `chain/time.go`, `TimeOfRound` and
//! `CurrentRound`): round 1 starts at the genesis time, round `r` at
//! `genesis + (r - 1) * period`, and at time `now >= genesis` the current round is
//! `floor((now - genesis) / period) + 1`. Times are Unix seconds; periods whole seconds.
//!
//! Nothing here reads a clock: the caller passes `now`.

/// When round `round` starts, or `None` for round 0 (no such round) and times past `i64`.
pub fn time_of_round(genesis_time: i64, period_secs: u32, round: u64) -> Option<i64> {
    let elapsed = round.checked_sub(1)?.checked_mul(u64::from(period_secs))?;
    genesis_time.checked_add(i64::try_from(elapsed).ok()?)
}

/// The round in progress at `now`: 0 before genesis (no round has started yet), else
/// `floor((now - genesis) / period) + 1`. A zero period is treated as one second, the
/// smallest drand allows; chain info decoding refuses zero anyway.
pub fn current_round(now: i64, genesis_time: i64, period_secs: u32) -> u64 {
    if now < genesis_time {
        return 0;
    }
    // In i128 the difference of two i64 values cannot overflow, and it is non-negative here.
    let elapsed = (i128::from(now) - i128::from(genesis_time)) as u128;
    let period = u128::from(period_secs.max(1));
    u64::try_from(elapsed / period + 1).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn drand_mainnet_default_and_quicknet_schedules() {
        // drand `default`: genesis 1595431050, 30 s. quicknet: genesis 1692803367, 3 s.
        assert_eq!(time_of_round(1595431050, 30, 1), Some(1595431050));
        assert_eq!(
            time_of_round(1595431050, 30, 1000),
            Some(1595431050 + 999 * 30)
        );
        assert_eq!(time_of_round(1692803367, 3, 1000), Some(1692806364));
        assert_eq!(current_round(1692806364, 1692803367, 3), 1000);
        assert_eq!(current_round(1692806366, 1692803367, 3), 1000);
        assert_eq!(current_round(1692806367, 1692803367, 3), 1001);
        assert_eq!(current_round(1692803366, 1692803367, 3), 0);
        assert_eq!(current_round(1692803367, 1692803367, 3), 1);
        assert_eq!(time_of_round(0, 3, 0), None);
        assert_eq!(time_of_round(i64::MAX, 3, 2), None);
        assert_eq!(time_of_round(0, u32::MAX, u64::MAX), None);
        assert_eq!(current_round(i64::MAX, i64::MIN, 1), u64::MAX);
    }

    proptest! {
        #[test]
        fn a_round_is_current_from_its_start_until_the_next(
            genesis in -1_000_000_000i64..2_000_000_000,
            period in 1u32..100_000,
            round in 1u64..10_000_000,
        ) {
            let start = time_of_round(genesis, period, round).unwrap();
            prop_assert_eq!(current_round(start, genesis, period), round);
            prop_assert_eq!(current_round(start + i64::from(period) - 1, genesis, period), round);
            prop_assert_eq!(current_round(start + i64::from(period), genesis, period), round + 1);
        }
    }
}
