//! Time as the layer reads it: nanoseconds since a tracker's origin, and
//! figures recomputed at most once per period by whichever caller comes
//! first.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// `d` in nanoseconds, saturating.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Whether the caller should recompute a figure stamped `stamp` (0: never
/// computed): true for exactly one caller once `every` has passed since the
/// stamp, which moves to `now`. Readers of the figure never wait.
pub(crate) fn claim_refresh(stamp: &AtomicU64, now: u64, every: u64) -> bool {
    let at = stamp.load(Relaxed);
    (at == 0 || now.saturating_sub(at) >= every)
        && stamp.compare_exchange(at, now, Relaxed, Relaxed).is_ok()
}
