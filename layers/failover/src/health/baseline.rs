//! The fleet latency baseline that the slow-response rule measures against.
//!
//! Two figures over the Healthy instances, recomputed at most every
//! 100 ms:
//!
//! - the lowest **median** latency over each instance's last two latency
//!   windows: what a response is compared with;
//! - the lowest **peak-EWMA** latency: a guard against the host's stalls.
//!
//! The median, because the peak average jumps to every slow response and
//! decays over its time constant: on a busy host, where every instance now
//! and then answers late for reasons of the host, the lowest peak average
//! sits at the host's stalls. On the fault test's loopback fleet under a
//! load average of 10, healthy instances doing 5 ms of work showed peak
//! averages of 18 to 27 ms, so an instance slowed to 50 ms of work (62 ms
//! seen) stayed under 4 × that baseline and was never degraded; their
//! medians stay near their work.
//!
//! The peak guard, because the median alone singles out healthy instances
//! when the host stalls: every response in flight then ends late, on every
//! instance, well over 4 × the median (a healthy instance was degraded at
//! 26 to 50 ms against a 6 ms median in that test). While the whole fleet
//! answers late its lowest peak average is high too, so a response counts
//! as slow only when it is also slower than half the ratio times that.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use foresight_core::HealthState;

use super::Tracker;
use crate::clock::{claim_refresh, nanos};

/// How often (ns) the baseline is recomputed.
const REFRESH: u64 = 100_000_000;
/// Length (ns) of each of the two latency windows the medians are read
/// from when hedging, which sets its own, is off: the medians cover the
/// last 2 to 4 seconds.
const LATENCY_WINDOW: u64 = 2_000_000_000;

impl Tracker {
    /// Length (ns) of each latency window of the histograms.
    pub(super) fn latency_window(&self) -> u64 {
        self.config
            .hedging
            .as_ref()
            .map_or(LATENCY_WINDOW, |h| nanos(h.window))
    }

    /// The fleet's latency baseline (see `baseline.rs`) over the Healthy
    /// instances, recomputed at most every 100 ms.
    pub(super) fn baseline(&self, now: u64) -> Baseline {
        self.baseline.get(now, || {
            let table = self.table();
            let healthy = || {
                table
                    .map
                    .values()
                    .filter(|s| s.state() == HealthState::Healthy)
            };
            Baseline {
                median: lowest(
                    healthy()
                        .filter_map(|s| s.latencies.quantile(0.5))
                        .map(|(median, _)| median as f64 / 1e9),
                ),
                peak: lowest(healthy().map(|s| s.latency())),
            }
        })
    }
}

/// The fleet's latency figures (seconds; 0 when unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Baseline {
    /// Lowest median latency of the Healthy instances.
    pub(crate) median: f64,
    /// Lowest peak-EWMA latency of the Healthy instances.
    pub(crate) peak: f64,
}

impl Baseline {
    /// A baseline of the median alone, with no stall guard.
    pub(crate) fn of_median(median: f64) -> Self {
        Self { median, peak: 0.0 }
    }

    /// Whether a response of `seconds` is slow: slower than `floor`, than
    /// `ratio` times the median, and than `ratio / 2` times the lowest
    /// peak average. Nothing is slow before a median is known.
    pub(crate) fn is_slow(&self, seconds: f64, ratio: f64, floor: f64) -> bool {
        self.median > 0.0
            && seconds > (self.median * ratio).max(floor)
            && seconds > self.peak * ratio / 2.0
    }
}

/// The baseline shared by every clone of a layer, recomputed by whichever
/// caller first finds it older than [`REFRESH`].
#[derive(Debug, Default)]
pub(crate) struct SharedBaseline {
    median_bits: AtomicU64,
    peak_bits: AtomicU64,
    at: AtomicU64,
}

impl SharedBaseline {
    /// The baseline at `now`, recomputed with `compute` when due.
    pub(crate) fn get(&self, now: u64, compute: impl FnOnce() -> Baseline) -> Baseline {
        if claim_refresh(&self.at, now, REFRESH) {
            let fresh = compute();
            self.median_bits.store(fresh.median.to_bits(), Relaxed);
            self.peak_bits.store(fresh.peak.to_bits(), Relaxed);
        }
        Baseline {
            median: f64::from_bits(self.median_bits.load(Relaxed)),
            peak: f64::from_bits(self.peak_bits.load(Relaxed)),
        }
    }
}

/// The lowest of `values` above zero; 0 when there is none.
pub(crate) fn lowest(values: impl Iterator<Item = f64>) -> f64 {
    let lowest = values.filter(|&v| v > 0.0).fold(f64::INFINITY, f64::min);
    if lowest.is_finite() { lowest } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: f64 = 1e-3;

    #[test]
    fn a_response_is_slow_only_past_the_median_the_floor_and_the_stall_guard() {
        let quiet = Baseline {
            median: 5.0 * MS,
            peak: 6.0 * MS,
        };
        assert!(quiet.is_slow(21.0 * MS, 4.0, 5.0 * MS));
        assert!(!quiet.is_slow(19.0 * MS, 4.0, 5.0 * MS));
        // The floor wins over a tiny median.
        let tiny = Baseline::of_median(0.1 * MS);
        assert!(!tiny.is_slow(4.0 * MS, 4.0, 5.0 * MS));
        assert!(tiny.is_slow(6.0 * MS, 4.0, 5.0 * MS));
        // The host stalls: the lowest peak average is 30 ms, so a 50 ms
        // response is not singled out, a 62 ms one is.
        let stalled = Baseline {
            median: 6.0 * MS,
            peak: 30.0 * MS,
        };
        assert!(!stalled.is_slow(50.0 * MS, 4.0, 5.0 * MS));
        assert!(stalled.is_slow(62.0 * MS, 4.0, 5.0 * MS));
        // No median yet: nothing is slow.
        assert!(!Baseline::default().is_slow(1.0, 4.0, 5.0 * MS));
    }

    #[test]
    fn the_shared_baseline_is_recomputed_at_most_every_refresh() {
        let shared = SharedBaseline::default();
        let first = shared.get(1, || Baseline::of_median(1.0));
        assert_eq!(first.median, 1.0);
        let cached = shared.get(1 + REFRESH / 2, || Baseline::of_median(2.0));
        assert_eq!(cached.median, 1.0);
        let fresh = shared.get(1 + REFRESH, || Baseline::of_median(3.0));
        assert_eq!(fresh.median, 3.0);
        assert_eq!(lowest([0.0, 3.0, 2.0].into_iter()), 2.0);
        assert_eq!(lowest(std::iter::empty()), 0.0);
    }
}
