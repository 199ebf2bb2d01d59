//! A lock-free sliding window of counters: the error window of each
//! instance and the retry budget are both one of these.
//!
//! The window is ten slots of `span / 10` each; a slot holds `LANES`
//! counters and the epoch it was last written in. Adding to a slot of a
//! past epoch resets it first; summing skips slots older than the window.
//! All operations take the caller's clock reading (nanoseconds since some
//! origin), so the hot path reads the clock once per request.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Slots per window.
pub(crate) const SLOTS: usize = 10;

#[derive(Debug)]
struct Slot<const LANES: usize> {
    epoch: AtomicU64,
    lanes: [AtomicI64; LANES],
}

impl<const LANES: usize> Default for Slot<LANES> {
    fn default() -> Self {
        Self {
            epoch: AtomicU64::new(0),
            lanes: std::array::from_fn(|_| AtomicI64::new(0)),
        }
    }
}

/// `LANES` counters summed over the last `span`, in [`SLOTS`] slots.
#[derive(Debug)]
pub(crate) struct SlidingWindow<const LANES: usize> {
    slot_nanos: u64,
    slots: [Slot<LANES>; SLOTS],
}

impl<const LANES: usize> SlidingWindow<LANES> {
    pub(crate) fn new(span: Duration) -> Self {
        let span = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
        Self {
            slot_nanos: (span / SLOTS as u64).max(1),
            slots: std::array::from_fn(|_| Slot::default()),
        }
    }

    fn epoch(&self, now: u64) -> u64 {
        // Epoch 0 marks a slot that was never used.
        now / self.slot_nanos + 1
    }

    /// Adds `amount` to counter `lane` at `now`.
    pub(crate) fn add(&self, now: u64, lane: usize, amount: i64) {
        let epoch = self.epoch(now);
        let slot = &self.slots[(epoch % SLOTS as u64) as usize];
        let seen = slot.epoch.load(Ordering::Acquire);
        if seen != epoch
            && slot
                .epoch
                .compare_exchange(seen, epoch, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // An add racing with this reset may be lost: both users are
            // advisory, and the loss is one request's share.
            for lane in &slot.lanes {
                lane.store(0, Ordering::Release);
            }
        }
        slot.lanes[lane].fetch_add(amount, Ordering::Relaxed);
    }

    /// Every counter summed over the window ending at `now`.
    pub(crate) fn sums(&self, now: u64) -> [i64; LANES] {
        let epoch = self.epoch(now);
        let mut sums = [0i64; LANES];
        for slot in &self.slots {
            if slot.epoch.load(Ordering::Acquire) + SLOTS as u64 > epoch {
                for (sum, lane) in sums.iter_mut().zip(&slot.lanes) {
                    *sum = sum.saturating_add(lane.load(Ordering::Relaxed));
                }
            }
        }
        sums
    }

    /// Forgets everything.
    pub(crate) fn clear(&self) {
        for slot in &self.slots {
            slot.epoch.store(0, Ordering::Relaxed);
            for lane in &slot.lanes {
                lane.store(0, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn sums_the_last_span_only() {
        let window = SlidingWindow::<2>::new(Duration::from_secs(10));
        window.add(SEC, 0, 3);
        window.add(5 * SEC, 1, 2);
        assert_eq!(window.sums(5 * SEC), [3, 2]);
        // 10.5 s later the first slot has left the window, the second not.
        assert_eq!(window.sums(11 * SEC + SEC / 2), [0, 2]);
        assert_eq!(window.sums(16 * SEC), [0, 0]);
    }

    #[test]
    fn a_reused_slot_starts_from_zero() {
        let window = SlidingWindow::<1>::new(Duration::from_secs(1));
        window.add(SEC / 20, 0, 5);
        // One span later the same slot index is reused by a new epoch.
        window.add(SEC + SEC / 20, 0, 1);
        assert_eq!(window.sums(SEC + SEC / 20), [1]);
    }

    #[test]
    fn clear_forgets_everything() {
        let window = SlidingWindow::<2>::new(Duration::from_secs(1));
        window.add(SEC, 0, 4);
        window.add(SEC, 1, 4);
        window.clear();
        assert_eq!(window.sums(SEC), [0, 0]);
    }
}
