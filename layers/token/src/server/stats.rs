//! The request rate of the authentication server, answered in O(1).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::clock::SharedClock;

/// One second of the ring: which second it holds, and its requests.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    second: u64,
    requests: u64,
}

struct Ring {
    slots: Box<[Slot]>,
    peak: u64,
}

/// Requests per second of the server, by the second of its clock.
///
/// A ring of `capacity` per-second counters (slot `second % capacity`), a
/// running total and a running peak: [`record`](Self::record),
/// [`total`](Self::total), [`last_second`](Self::last_second) and
/// [`peak`](Self::peak) are O(1) whatever the traffic; only
/// [`series`](Self::series), for benches, walks the ring. Memory is fixed
/// at construction (16 bytes per second kept). Clones share the counts.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use foresight_token::ManualClock;
/// use foresight_token::server::RateRecorder;
///
/// let clock = ManualClock::new(Duration::from_secs(1_000));
/// let rates = RateRecorder::new(60, Arc::new(clock.clone()));
/// rates.record();
/// rates.record();
/// clock.advance(Duration::from_secs(1));
/// rates.record();
/// assert_eq!((rates.total(), rates.last_second(), rates.peak()), (3, 2, 2));
/// assert_eq!(rates.series(), vec![(1_000, 2), (1_001, 1)]);
/// ```
#[derive(Clone)]
pub struct RateRecorder {
    ring: Arc<Mutex<Ring>>,
    total: Arc<AtomicU64>,
    clock: SharedClock,
}

impl fmt::Debug for RateRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateRecorder")
            .field("total", &self.total())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl RateRecorder {
    /// A recorder of the last `capacity` seconds (at least one).
    pub fn new(capacity: usize, clock: SharedClock) -> Self {
        Self {
            ring: Arc::new(Mutex::new(Ring {
                slots: vec![Slot::default(); capacity.max(1)].into_boxed_slice(),
                peak: 0,
            })),
            total: Arc::default(),
            clock,
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn capacity(&self) -> usize {
        self.ring().slots.len()
    }

    /// Counts one request now.
    pub fn record(&self) {
        let second = self.clock.unix_secs();
        self.total.fetch_add(1, Relaxed);
        let mut ring = self.ring();
        let len = ring.slots.len() as u64;
        let slot = &mut ring.slots[(second % len) as usize];
        if slot.second != second || slot.requests == 0 {
            if slot.requests > 0 && slot.second > second {
                // A clock set back into a second the ring has already
                // overwritten: counted in the total only.
                return;
            }
            *slot = Slot {
                second,
                requests: 0,
            };
        }
        slot.requests += 1;
        let requests = slot.requests;
        ring.peak = ring.peak.max(requests);
    }

    /// Requests since the start.
    pub fn total(&self) -> u64 {
        self.total.load(Relaxed)
    }

    /// `(unix second, requests)` for every second with requests still in
    /// the ring, in order. O(capacity): for benches and reports, not for a
    /// request path.
    pub fn series(&self) -> Vec<(u64, u64)> {
        let mut series: Vec<_> = self
            .ring()
            .slots
            .iter()
            .filter(|s| s.requests > 0)
            .map(|s| (s.second, s.requests))
            .collect();
        series.sort_unstable();
        series
    }

    /// The busiest second since the start.
    pub fn peak(&self) -> u64 {
        self.ring().peak
    }

    /// Requests in the last complete second.
    pub fn last_second(&self) -> u64 {
        let previous = self.clock.unix_secs().saturating_sub(1);
        let ring = self.ring();
        let slot = ring.slots[(previous % ring.slots.len() as u64) as usize];
        if slot.second == previous {
            slot.requests
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ManualClock;

    #[test]
    fn the_ring_overwrites_old_seconds_and_keeps_the_peak() {
        let clock = ManualClock::new(Duration::from_secs(100));
        let rates = RateRecorder::new(4, Arc::new(clock.clone()));
        for _ in 0..5 {
            rates.record();
        }
        for _ in 0..6 {
            clock.advance(Duration::from_secs(1));
            rates.record();
        }
        assert_eq!(rates.total(), 11);
        assert_eq!(rates.peak(), 5);
        assert_eq!(rates.last_second(), 1);
        assert_eq!(rates.series(), vec![(103, 1), (104, 1), (105, 1), (106, 1)]);
        clock.advance(Duration::from_secs(10));
        assert_eq!(rates.last_second(), 0);
    }
}
