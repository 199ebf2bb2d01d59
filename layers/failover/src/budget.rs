//! A lock-free retry budget with the semantics of tower's `TpsBudget`.
//!
//! tower's `TpsBudget` takes a mutex on every deposit; this one keeps the
//! same accounting (a fixed reserve plus a share of the requests of the last
//! `ttl`) in a lock-free [`SlidingWindow`], and takes the caller's clock reading so
//! that the hot path reads the clock once per request.

use std::time::Duration;

use crate::window::SlidingWindow;

/// Replays allowed: `min_per_sec` per second of `ttl` as a standing reserve,
/// plus `percent` of the requests deposited over the last `ttl`.
#[derive(Debug)]
pub(crate) struct ReplayBudget {
    reserve: i64,
    deposit: i64,
    withdraw: i64,
    window: SlidingWindow<1>,
}

impl ReplayBudget {
    /// `ttl` is clamped to 1–60 s and `percent` to 0–1000 %, as tower does.
    pub(crate) fn new(ttl: Duration, min_per_sec: u32, percent: f32) -> Self {
        let ttl = ttl.clamp(Duration::from_secs(1), Duration::from_secs(60));
        let percent = if percent.is_finite() {
            percent.clamp(0.0, 1000.0)
        } else {
            0.0
        };
        let (deposit, withdraw) = if percent == 0.0 {
            (0, 1)
        } else if percent <= 1.0 {
            (1, (1.0 / percent) as i64)
        } else {
            (1000, (1000.0 / percent) as i64)
        };
        let reserve = i64::from(min_per_sec)
            .saturating_mul(ttl.as_secs() as i64)
            .saturating_mul(withdraw);
        Self {
            reserve,
            deposit,
            withdraw,
            window: SlidingWindow::new(ttl),
        }
    }

    /// Records one request.
    pub(crate) fn deposit(&self, now: u64) {
        if self.deposit > 0 {
            self.window.add(now, 0, self.deposit);
        }
    }

    /// Takes one replay from the budget, if there is one.
    pub(crate) fn withdraw(&self, now: u64) -> bool {
        if self.balance(now) >= self.withdraw {
            self.window.add(now, 0, -self.withdraw);
            true
        } else {
            false
        }
    }

    fn balance(&self, now: u64) -> i64 {
        let [amount] = self.window.sums(now);
        self.reserve.saturating_add(amount)
    }

    /// Replays available now.
    #[cfg(test)]
    pub(crate) fn available(&self, now: u64) -> i64 {
        self.balance(now) / self.withdraw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn reserve_then_share_of_requests() {
        // 10 s, 1/s reserve, 20 %: 10 replays standing, plus 1 per 5 requests.
        let budget = ReplayBudget::new(Duration::from_secs(10), 1, 0.2);
        let now = 5 * SEC;
        assert_eq!(budget.available(now), 10);
        for _ in 0..50 {
            budget.deposit(now);
        }
        assert_eq!(budget.available(now), 20);
        let mut granted = 0;
        while budget.withdraw(now) {
            granted += 1;
            assert!(granted <= 20);
        }
        assert_eq!(granted, 20);
    }

    #[test]
    fn deposits_and_withdrawals_expire_after_ttl() {
        let budget = ReplayBudget::new(Duration::from_secs(10), 1, 0.2);
        for _ in 0..100 {
            budget.deposit(SEC);
        }
        assert_eq!(budget.available(SEC), 30);
        while budget.withdraw(2 * SEC) {}
        assert_eq!(budget.available(2 * SEC), 0);
        // Eleven seconds later both the deposits and the withdrawals are out
        // of the window: only the reserve is left.
        assert_eq!(budget.available(13 * SEC), 10);
    }

    #[test]
    fn zero_percent_leaves_only_the_reserve() {
        let budget = ReplayBudget::new(Duration::from_secs(1), 3, 0.0);
        for _ in 0..1000 {
            budget.deposit(SEC);
        }
        assert_eq!(budget.available(SEC), 3);
    }
}
