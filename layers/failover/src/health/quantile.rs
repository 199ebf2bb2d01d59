//! Latency quantiles per instance, for the fleet baseline and for hedging.
//!
//! A fixed log-scale histogram of atomic counters, in two windows that take
//! turns: recording is one relaxed `fetch_add`, and a quantile reads the
//! current and the previous window, so it always covers between one and two
//! window lengths of traffic. Written here rather than taken from
//! `hdrhistogram` (which tower's `hedge` keeps behind a mutex) because every
//! successful response records into it and the hot path takes no lock.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// Four buckets per octave: bucket bounds are 19 % apart.
const PER_OCTAVE: u32 = 4;
/// Latencies are bucketed in units of 1024 ns (about a microsecond)…
const UNIT_SHIFT: u32 = 10;
/// …across 26 octaves: up to about 68 s.
const BUCKETS: usize = 26 * PER_OCTAVE as usize;

struct Window {
    counts: [AtomicU32; BUCKETS],
}

impl Default for Window {
    fn default() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }
}

/// Latency histogram of one instance (see the module docs).
#[derive(Default)]
pub(crate) struct LatencyQuantiles {
    windows: [Window; 2],
    /// Which window records now (0 or 1)…
    current: AtomicU64,
    /// …and when it started (0: no sample yet). Whoever moves `started`
    /// forward rotates.
    started: AtomicU64,
}

impl std::fmt::Debug for LatencyQuantiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyQuantiles")
            .field("samples", &self.samples())
            .finish()
    }
}

fn bucket_of(nanos: u64) -> usize {
    let units = (nanos >> UNIT_SHIFT).max(1);
    let octave = 63 - units.leading_zeros();
    let fraction = if octave >= 2 {
        (units >> (octave - 2)) & 0b11
    } else {
        // Below 4 units an octave has fewer than four distinct values.
        (units << (2 - octave)) & 0b11
    };
    ((octave * PER_OCTAVE) as usize + fraction as usize).min(BUCKETS - 1)
}

/// The upper bound of `bucket`, in nanoseconds.
fn upper_bound(bucket: usize) -> u64 {
    let octave = bucket as u32 / PER_OCTAVE;
    let fraction = u64::from(bucket as u32 % PER_OCTAVE);
    // Bucket (octave, f) holds units in [2^o (4+f)/4, 2^o (5+f)/4); below
    // octave 2 the bound is rounded up to a whole unit.
    let units = ((5 + fraction) << octave).div_ceil(4);
    units << UNIT_SHIFT
}

impl LatencyQuantiles {
    /// Records one latency at `now`, starting a new window when the current
    /// one is older than `window` (all in nanoseconds).
    pub(crate) fn record(&self, nanos: u64, now: u64, window: u64) {
        let started = self.started.load(Relaxed);
        if started == 0 {
            let _ = self.started.compare_exchange(0, now, Relaxed, Relaxed);
        } else if now.saturating_sub(started) >= window
            && self
                .started
                .compare_exchange(started, now, Relaxed, Relaxed)
                .is_ok()
        {
            // This caller won the rotation: the older window is cleared and
            // becomes the current one. Samples racing with the clear may be
            // lost; a quantile does not need them.
            let next = (self.current.load(Relaxed) + 1) % 2;
            for count in &self.windows[next as usize].counts {
                count.store(0, Relaxed);
            }
            self.current.store(next, Relaxed);
        }
        let current = self.current.load(Relaxed) as usize % 2;
        self.windows[current].counts[bucket_of(nanos)].fetch_add(1, Relaxed);
    }

    /// Samples in both windows.
    pub(crate) fn samples(&self) -> u64 {
        self.windows
            .iter()
            .flat_map(|w| w.counts.iter())
            .map(|c| u64::from(c.load(Relaxed)))
            .sum()
    }

    /// The `q` quantile (0 < q < 1) over both windows, as the upper bound of
    /// its bucket in nanoseconds, with the number of samples it rests on;
    /// `None` with no samples.
    pub(crate) fn quantile(&self, q: f64) -> Option<(u64, u64)> {
        let counts: [u64; BUCKETS] = std::array::from_fn(|b| {
            u64::from(self.windows[0].counts[b].load(Relaxed))
                + u64::from(self.windows[1].counts[b].load(Relaxed))
        });
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (bucket, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some((upper_bound(bucket), total));
            }
        }
        Some((upper_bound(BUCKETS - 1), total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const WINDOW: u64 = 10_000 * MS;

    #[test]
    fn buckets_grow_monotonically_and_bound_their_values() {
        let mut previous = 0;
        for nanos in (0..40)
            .map(|shift| 1u64 << shift)
            .chain([1_500, 7_777, 123 * MS])
        {
            let bucket = bucket_of(nanos);
            assert!(
                upper_bound(bucket) >= nanos.min(upper_bound(BUCKETS - 1)),
                "{nanos}"
            );
            if nanos.is_power_of_two() {
                assert!(bucket >= previous);
                previous = bucket;
            }
        }
        // Neighbouring bounds are at most ~25 % apart above a few units.
        for bucket in 12..BUCKETS {
            let (low, high) = (upper_bound(bucket - 1), upper_bound(bucket));
            assert!(high > low && high as f64 <= low as f64 * 1.26, "{bucket}");
        }
    }

    #[test]
    fn the_quantile_lands_within_a_bucket_of_the_truth() {
        let h = LatencyQuantiles::default();
        // 1..=1000 ms, uniformly.
        for ms in 1..=1000 {
            h.record(ms * MS, 1, WINDOW);
        }
        let (p95, samples) = h.quantile(0.95).unwrap();
        assert_eq!(samples, 1000);
        assert!((950 * MS..=1200 * MS).contains(&p95), "{p95}");
        let (p50, _) = h.quantile(0.5).unwrap();
        assert!((500 * MS..=625 * MS).contains(&p50), "{p50}");
        assert!(LatencyQuantiles::default().quantile(0.5).is_none());
    }

    #[test]
    fn old_windows_are_forgotten() {
        let h = LatencyQuantiles::default();
        for _ in 0..100 {
            h.record(500 * MS, 1, WINDOW);
        }
        // A new window: the old samples still count…
        h.record(MS, WINDOW + 1, WINDOW);
        assert_eq!(h.samples(), 101);
        // …until the next rotation clears them.
        for _ in 0..100 {
            h.record(MS, 2 * WINDOW + 2, WINDOW);
        }
        assert_eq!(h.samples(), 101);
        let (p99, _) = h.quantile(0.99).unwrap();
        assert!(p99 < 2 * MS, "{p99}");
    }
}
