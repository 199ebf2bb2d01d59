use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use metrics::Counter;

use crate::metrics as names;

/// Counters of a [`ShadowWriteLayer`](crate::ShadowWriteLayer) and all its
/// clones, from [`stats`](crate::ShadowWriteLayer::stats).
///
/// The same events are emitted as `metrics` counters, named in
/// [`metrics`](crate::metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShadowStats {
    /// Shadow copies started.
    pub sent: u64,
    /// Shadows that got a response from the secondary.
    pub completed: u64,
    /// Shadows that failed at the secondary (an error, not a status).
    pub failed: u64,
    /// Shadows abandoned at their timeout.
    pub timed_out: u64,
    /// Not sent: the secondary already had the maximum in flight.
    pub dropped_full: u64,
    /// Not sent: the next candidate is not Healthy.
    pub dropped_unhealthy: u64,
    /// Not sent or abandoned: the body was over the cap, failed, or the
    /// client went away before the primary read it all.
    pub dropped_body: u64,
    /// Not sent: no Tokio runtime to run the copy on.
    pub dropped_no_runtime: u64,
    /// Shadow statuses that differed from the primary's (when comparing).
    pub mismatches: u64,
    /// Client requests that carried a role header, stripped.
    pub stripped: u64,
    /// Not sent: the session was warmed on that secondary within the
    /// coalescing interval.
    pub coalesced: u64,
    /// Not sent by the [`ShadowPolicy`](crate::ShadowPolicy): a rule skips
    /// the request, or it is not safe and its secondary is not shadow-aware.
    pub skipped_by_policy: u64,
}

/// One event: its count for [`ShadowStats`] and its `metrics` counter.
#[derive(Debug)]
pub(crate) struct Event {
    count: AtomicU64,
    counter: Counter,
}

impl Event {
    fn register(name: &'static str) -> Self {
        Self {
            count: AtomicU64::new(0),
            counter: metrics::counter!(name),
        }
    }

    pub(crate) fn bump(&self) {
        self.count.fetch_add(1, Relaxed);
        self.counter.increment(1);
    }

    fn get(&self) -> u64 {
        self.count.load(Relaxed)
    }
}

#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) sent: Event,
    pub(crate) completed: Event,
    pub(crate) failed: Event,
    pub(crate) timed_out: Event,
    pub(crate) dropped_full: Event,
    pub(crate) dropped_unhealthy: Event,
    pub(crate) dropped_body: Event,
    pub(crate) dropped_no_runtime: Event,
    pub(crate) mismatches: Event,
    pub(crate) stripped: Event,
    pub(crate) coalesced: Event,
    pub(crate) skipped_by_policy: Event,
}

impl Counters {
    pub(crate) fn register() -> Self {
        Self {
            sent: Event::register(names::SENT),
            completed: Event::register(names::COMPLETED),
            failed: Event::register(names::FAILED),
            timed_out: Event::register(names::TIMED_OUT),
            dropped_full: Event::register(names::DROPPED_FULL),
            dropped_unhealthy: Event::register(names::DROPPED_UNHEALTHY),
            dropped_body: Event::register(names::DROPPED_BODY),
            dropped_no_runtime: Event::register(names::DROPPED_NO_RUNTIME),
            mismatches: Event::register(names::MISMATCHES),
            stripped: Event::register(names::STRIPPED),
            coalesced: Event::register(names::COALESCED),
            skipped_by_policy: Event::register(names::SKIPPED_BY_POLICY),
        }
    }

    pub(crate) fn snapshot(&self) -> ShadowStats {
        ShadowStats {
            sent: self.sent.get(),
            completed: self.completed.get(),
            failed: self.failed.get(),
            timed_out: self.timed_out.get(),
            dropped_full: self.dropped_full.get(),
            dropped_unhealthy: self.dropped_unhealthy.get(),
            dropped_body: self.dropped_body.get(),
            dropped_no_runtime: self.dropped_no_runtime.get(),
            mismatches: self.mismatches.get(),
            stripped: self.stripped.get(),
            coalesced: self.coalesced.get(),
            skipped_by_policy: self.skipped_by_policy.get(),
        }
    }
}
