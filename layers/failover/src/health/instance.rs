//! What the layer knows about one instance beyond its state: in-flight
//! requests, failure streaks, the error window, the latency average, the
//! ejection backoff and the probe in progress.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::time::Duration;

use foresight_core::{HealthSlot, HealthState, InstanceId};

use super::quantile::LatencyQuantiles;
use crate::window::SlidingWindow;

/// A small FNV-1a hasher for instance ids: short strings, trusted input.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// A map keyed by instance id.
pub(crate) type IdMap<V> = HashMap<InstanceId, V, BuildHasherDefault<IdHasher>>;

/// Lanes of the error window.
const OK: usize = 0;
const FAILED: usize = 1;

/// What the layer knows about one instance beyond its state.
#[derive(Debug)]
pub(crate) struct InstanceStats {
    pub(crate) id: InstanceId,
    pub(crate) slot: Arc<HealthSlot>,
    pub(crate) in_flight: AtomicU32,
    pub(crate) failures: AtomicU32,
    pub(crate) streak_start: AtomicU64,
    pub(crate) slow: AtomicU32,
    /// When the current run of slow responses began (0: none).
    pub(crate) slow_since: AtomicU64,
    ewma_bits: AtomicU64,
    ewma_at: AtomicU64,
    /// Successes and failures over the error window.
    window: SlidingWindow<2>,
    /// When the state last changed (entering Probing aside).
    pub(crate) since: AtomicU64,
    /// When the current Degraded episode began (Healthy → Degraded): the
    /// drain runs from here, and a probe that finds the instance still
    /// degraded does not start it over.
    pub(crate) drain_from: AtomicU64,
    /// When the ejection backoff ends.
    pub(crate) until: AtomicU64,
    pub(crate) ejections: AtomicU32,
    /// A probe is in flight.
    pub(crate) probe: AtomicBool,
    /// Probing a Degraded (still serving) instance, not an Ejected one.
    pub(crate) probing_degraded: AtomicBool,
    pub(crate) signal_at: AtomicU64,
    /// Out of rotation on a prediction that has not been followed by a
    /// readmission yet.
    pub(crate) predicted_out: AtomicBool,
    /// When the signal last predicted a degradation (0: never).
    pub(crate) predicted_seen: AtomicU64,
    /// The fleet baseline and its own latency average (f64 seconds) when
    /// the prediction moved it out: a readmitting probe must beat both.
    pub(crate) predicted_baseline: AtomicU64,
    pub(crate) predicted_latency: AtomicU64,
    /// Latency histogram, filled only when hedging is on.
    pub(crate) latencies: LatencyQuantiles,
    /// The hedge delay last computed (ns, 0 = none) and when.
    pub(crate) hedge_nanos: AtomicU64,
    pub(crate) hedge_at: AtomicU64,
}

impl InstanceStats {
    pub(crate) fn new(id: InstanceId, slot: Arc<HealthSlot>, error_window: Duration) -> Self {
        Self {
            id,
            slot,
            in_flight: AtomicU32::new(0),
            failures: AtomicU32::new(0),
            streak_start: AtomicU64::new(0),
            slow: AtomicU32::new(0),
            slow_since: AtomicU64::new(0),
            ewma_bits: AtomicU64::new(0f64.to_bits()),
            ewma_at: AtomicU64::new(0),
            window: SlidingWindow::new(error_window),
            since: AtomicU64::new(0),
            drain_from: AtomicU64::new(0),
            until: AtomicU64::new(0),
            ejections: AtomicU32::new(0),
            probe: AtomicBool::new(false),
            probing_degraded: AtomicBool::new(false),
            signal_at: AtomicU64::new(0),
            predicted_out: AtomicBool::new(false),
            predicted_seen: AtomicU64::new(0),
            predicted_baseline: AtomicU64::new(0f64.to_bits()),
            predicted_latency: AtomicU64::new(0f64.to_bits()),
            latencies: LatencyQuantiles::default(),
            hedge_nanos: AtomicU64::new(0),
            hedge_at: AtomicU64::new(0),
        }
    }

    pub(crate) fn state(&self) -> HealthState {
        self.slot.state()
    }

    /// Peak-EWMA latency in seconds (0 before the first sample).
    pub(crate) fn latency(&self) -> f64 {
        f64::from_bits(self.ewma_bits.load(Relaxed))
    }

    /// Requests in flight to this instance through this layer.
    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }

    /// Peak EWMA: a sample above the average replaces it at once; below, it
    /// decays toward the sample with time constant `tau`.
    pub(crate) fn observe(&self, seconds: f64, now: u64, tau: u64) {
        let prev = self.latency();
        let at = self.ewma_at.swap(now, Relaxed);
        let next = if prev == 0.0 || seconds >= prev {
            seconds
        } else {
            let w = (-(now.saturating_sub(at) as f64) / tau.max(1) as f64).exp();
            prev * w + seconds * (1.0 - w)
        };
        self.ewma_bits.store(next.to_bits(), Relaxed);
        self.slot.set_latency_ewma(next);
    }

    /// Records one outcome in the error window, and publishes the error
    /// ratio when it may have changed (on a failure, or while it is not
    /// zero).
    pub(crate) fn count(&self, now: u64, failed: bool) {
        self.window.add(now, if failed { FAILED } else { OK }, 1);
        if failed || self.slot.error_ratio() > 0.0 {
            let (requests, failures) = self.totals(now);
            let ratio = if requests == 0 {
                0.0
            } else {
                f64::from(failures) / f64::from(requests)
            };
            self.slot.set_error_ratio(ratio);
        }
    }

    /// `(requests, failures)` in the error window ending at `now`.
    pub(crate) fn totals(&self, now: u64) -> (u32, u32) {
        let [ok, failed] = self.window.sums(now);
        let clamp = |v: i64| u32::try_from(v.max(0)).unwrap_or(u32::MAX);
        (clamp(ok.saturating_add(failed)), clamp(failed))
    }

    /// Forgets the failure figures (on readmission).
    pub(crate) fn clear_failures(&self) {
        self.failures.store(0, Relaxed);
        self.streak_start.store(0, Relaxed);
        self.slow.store(0, Relaxed);
        self.slow_since.store(0, Relaxed);
        self.window.clear();
        self.slot.set_error_ratio(0.0);
    }
}
