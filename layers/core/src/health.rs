//! The per-instance health slot that the failover and shadow layers fill and
//! every router reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

/// The health state of one instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum HealthState {
    /// Serving normally.
    Healthy = 0,
    /// Still serving, but degrading (or predicted to): no new sessions.
    Degraded = 1,
    /// Out of rotation.
    Ejected = 2,
    /// Half-open: one probe request decides whether it comes back.
    Probing = 3,
}

impl HealthState {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Healthy,
            1 => Self::Degraded,
            2 => Self::Ejected,
            _ => Self::Probing,
        }
    }

    /// Whether requests may be sent to an instance in this state as a first
    /// choice.
    pub fn is_healthy(self) -> bool {
        self == Self::Healthy
    }
}

/// Lock-free health figures of one instance.
///
/// A topology keeps one slot per instance id; the slot survives membership
/// updates that keep the id, so health learned from traffic is not lost when
/// a weight changes. All reads and writes are relaxed atomics: the figures are
/// advisory and a reader may see one update late.
#[derive(Debug)]
pub struct HealthSlot {
    state: AtomicU8,
    in_flight: AtomicU32,
    latency_ewma_bits: AtomicU64,
    error_ratio_bits: AtomicU64,
}

impl Default for HealthSlot {
    fn default() -> Self {
        Self {
            state: AtomicU8::new(HealthState::Healthy as u8),
            in_flight: AtomicU32::new(0),
            latency_ewma_bits: AtomicU64::new(0f64.to_bits()),
            error_ratio_bits: AtomicU64::new(0f64.to_bits()),
        }
    }
}

impl HealthSlot {
    /// The current state.
    pub fn state(&self) -> HealthState {
        HealthState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// Replaces the state, returning the previous one.
    pub fn set_state(&self, state: HealthState) -> HealthState {
        HealthState::from_u8(self.state.swap(state as u8, Ordering::Relaxed))
    }

    /// Moves from `from` to `to` only if the state is still `from`.
    pub fn transition(&self, from: HealthState, to: HealthState) -> bool {
        self.state
            .compare_exchange(from as u8, to as u8, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Requests currently in flight to this instance.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Marks one more request in flight; the guard unmarks it when dropped,
    /// so cancelled requests are counted too.
    pub fn start_request(&self) -> InFlightGuard<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlightGuard { slot: self }
    }

    /// Like [`start_request`](Self::start_request), with a guard that owns
    /// the slot, for a response future to hold.
    pub fn track(self: &Arc<Self>) -> OwnedInFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        OwnedInFlight { slot: self.clone() }
    }

    /// The published latency average, in seconds.
    pub fn latency_ewma(&self) -> f64 {
        f64::from_bits(self.latency_ewma_bits.load(Ordering::Relaxed))
    }

    /// Publishes a latency average, in seconds.
    pub fn set_latency_ewma(&self, seconds: f64) {
        self.latency_ewma_bits
            .store(seconds.to_bits(), Ordering::Relaxed);
    }

    /// The published error ratio in `[0, 1]`.
    pub fn error_ratio(&self) -> f64 {
        f64::from_bits(self.error_ratio_bits.load(Ordering::Relaxed))
    }

    /// Publishes an error ratio in `[0, 1]`.
    pub fn set_error_ratio(&self, ratio: f64) {
        self.error_ratio_bits
            .store(ratio.to_bits(), Ordering::Relaxed);
    }
}

/// Keeps one request counted as in flight until dropped.
#[derive(Debug)]
pub struct InFlightGuard<'a> {
    slot: &'a HealthSlot,
}

/// Unmarks a request in flight when dropped; see [`HealthSlot::track`].
#[derive(Debug)]
#[must_use = "the request is counted until the guard is dropped"]
pub struct OwnedInFlight {
    slot: Arc<HealthSlot>,
}

impl Drop for OwnedInFlight {
    fn drop(&mut self) {
        self.slot.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.slot.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_only_from_the_expected_state() {
        let slot = HealthSlot::default();
        assert_eq!(slot.state(), HealthState::Healthy);
        assert!(!slot.transition(HealthState::Ejected, HealthState::Probing));
        assert!(slot.transition(HealthState::Healthy, HealthState::Ejected));
        assert_eq!(slot.set_state(HealthState::Probing), HealthState::Ejected);
        assert_eq!(slot.state(), HealthState::Probing);
    }

    #[test]
    fn owned_guards_count_until_dropped() {
        let slot = Arc::new(HealthSlot::default());
        let a = slot.track();
        let b = slot.track();
        assert_eq!(slot.in_flight(), 2);
        drop(a);
        assert_eq!(slot.in_flight(), 1);
        drop(b);
        assert_eq!(slot.in_flight(), 0);
    }

    #[test]
    fn in_flight_guard_counts_until_dropped() {
        let slot = HealthSlot::default();
        let a = slot.start_request();
        let b = slot.start_request();
        assert_eq!(slot.in_flight(), 2);
        drop(a);
        assert_eq!(slot.in_flight(), 1);
        drop(b);
        assert_eq!(slot.in_flight(), 0);
    }
}
