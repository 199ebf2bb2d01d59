use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of a [`ShadowWriteLayer`](crate::ShadowWriteLayer) and all its
/// clones, from [`stats`](crate::ShadowWriteLayer::stats).
///
/// The same events are emitted as `metrics` counters named
/// `foresight_shadow_<field>_total`.
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
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) sent: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) timed_out: AtomicU64,
    pub(crate) dropped_full: AtomicU64,
    pub(crate) dropped_unhealthy: AtomicU64,
    pub(crate) dropped_body: AtomicU64,
    pub(crate) dropped_no_runtime: AtomicU64,
    pub(crate) mismatches: AtomicU64,
    pub(crate) stripped: AtomicU64,
}

macro_rules! bump {
    ($counters:expr, $field:ident) => {{
        $counters
            .$field
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics::counter!(concat!("foresight_shadow_", stringify!($field), "_total")).increment(1);
    }};
}
pub(crate) use bump;

impl Counters {
    pub(crate) fn snapshot(&self) -> ShadowStats {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ShadowStats {
            sent: r(&self.sent),
            completed: r(&self.completed),
            failed: r(&self.failed),
            timed_out: r(&self.timed_out),
            dropped_full: r(&self.dropped_full),
            dropped_unhealthy: r(&self.dropped_unhealthy),
            dropped_body: r(&self.dropped_body),
            dropped_no_runtime: r(&self.dropped_no_runtime),
            mismatches: r(&self.mismatches),
            stripped: r(&self.stripped),
        }
    }
}
