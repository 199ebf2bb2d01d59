//! The layer's own recent request rate, to tell a surge the forecast did
//! not announce from ordinary load.
//!
//! A refresh issued at a client's request follows the request rate, so an
//! unforeseen burst multiplies such refreshes. [`RecentRequests`] counts
//! requests per second over the last [`WINDOW_SECS`] seconds in a fixed
//! ring of atomics (no lock and no allocation on the request path; a
//! sliding-window counter this small is not worth a dependency), and
//! [`RecentRequests::surging`] says whether the last [`SHORT_SECS`]
//! seconds run well above the window's mean.

use std::sync::atomic::{AtomicU64, Ordering};

/// Seconds of history kept.
pub(crate) const WINDOW_SECS: u64 = 120;
/// Seconds compared with the whole window.
pub(crate) const SHORT_SECS: u64 = 10;
/// How far above the window's mean rate the short rate must run to count
/// as a surge.
const SURGE_RATIO: f64 = 1.5;
/// Bits of a slot that hold the count; the rest hold the second.
const COUNT_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// Requests per second over the last [`WINDOW_SECS`] seconds.
#[derive(Debug)]
pub(crate) struct RecentRequests {
    /// Per slot: the second it counts (upper bits) and its count.
    slots: Box<[AtomicU64]>,
}

impl Default for RecentRequests {
    fn default() -> Self {
        Self {
            slots: (0..WINDOW_SECS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl RecentRequests {
    /// Counts one request at Unix second `now`.
    pub(crate) fn record(&self, now: u64) {
        let slot = &self.slots[(now % WINDOW_SECS) as usize];
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            let next = if current >> COUNT_BITS == now {
                if current & COUNT_MASK == COUNT_MASK {
                    return;
                }
                current + 1
            } else {
                (now << COUNT_BITS) | 1
            };
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    /// Requests counted in the `secs` seconds up to and including `now`.
    fn count(&self, now: u64, secs: u64) -> u64 {
        let from = now.saturating_sub(secs - 1);
        self.slots
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .filter(|v| (from..=now).contains(&(v >> COUNT_BITS)))
            .map(|v| v & COUNT_MASK)
            .sum()
    }

    /// Whether the last [`SHORT_SECS`] seconds ran at more than 1.5 times
    /// the mean rate of the last [`WINDOW_SECS`].
    pub(crate) fn surging(&self, now: u64) -> bool {
        let short = self.count(now, SHORT_SECS) as f64 / SHORT_SECS as f64;
        let long = self.count(now, WINDOW_SECS) as f64 / WINDOW_SECS as f64;
        short > SURGE_RATIO * long
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_load_is_no_surge_and_a_jump_is() {
        let rate = RecentRequests::default();
        for s in 1_000..1_200 {
            for _ in 0..10 {
                rate.record(s);
            }
        }
        assert!(!rate.surging(1_199));
        // Three times the rate for 10 s.
        for s in 1_200..1_210 {
            for _ in 0..30 {
                rate.record(s);
            }
        }
        assert!(rate.surging(1_209));
        // Falling load is no surge either.
        for s in 1_210..1_240 {
            rate.record(s);
        }
        assert!(!rate.surging(1_239));
    }

    #[test]
    fn old_seconds_are_not_counted() {
        let rate = RecentRequests::default();
        for _ in 0..100 {
            rate.record(10);
        }
        // The slot of second 10 is reused by second 130.
        rate.record(130);
        assert_eq!(rate.count(130, WINDOW_SECS), 1);
        assert_eq!(rate.count(10, 1), 0);
    }
}
