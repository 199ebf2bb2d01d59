//! The per-instance health slot that the failover and shadow layers fill and
//! every router reads.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Microseconds on the Tokio clock (so paused-time tests see them move)
/// since the first call in the process, plus one, so that zero means "never".
fn clock_micros() -> u64 {
    static BASE: OnceLock<tokio::time::Instant> = OnceLock::new();
    let base = *BASE.get_or_init(tokio::time::Instant::now);
    let since = tokio::time::Instant::now().saturating_duration_since(base);
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX - 1) + 1
}

/// When any slot of the process was last admitted: lets a router skip the
/// slow-start check of every candidate once no ramp can still be running.
static LAST_ADMISSION: AtomicU64 = AtomicU64::new(0);

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
    /// When the instance joined or was readmitted (`clock_micros`), 0 if
    /// it has been a member from the start.
    admitted_micros: AtomicU64,
}

impl Default for HealthSlot {
    fn default() -> Self {
        Self {
            state: AtomicU8::new(HealthState::Healthy as u8),
            in_flight: AtomicU32::new(0),
            latency_ewma_bits: AtomicU64::new(0f64.to_bits()),
            error_ratio_bits: AtomicU64::new(0f64.to_bits()),
            admitted_micros: AtomicU64::new(0),
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
        let old = HealthState::from_u8(self.state.swap(state as u8, Ordering::Relaxed));
        self.admit_on(old, state);
        old
    }

    /// Moves from `from` to `to` only if the state is still `from`.
    pub fn transition(&self, from: HealthState, to: HealthState) -> bool {
        let done = self
            .state
            .compare_exchange(from as u8, to as u8, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
        if done {
            self.admit_on(from, to);
        }
        done
    }

    /// A return to service (from ejected or probing to healthy) starts a
    /// slow start.
    fn admit_on(&self, from: HealthState, to: HealthState) {
        if to == HealthState::Healthy && matches!(from, HealthState::Ejected | HealthState::Probing)
        {
            self.mark_admitted();
        }
    }

    /// Records that the instance joins (or rejoins) the rotation now: a
    /// router with a slow start ramps its share of new sessions up from
    /// here. A topology marks instances that join after it was built;
    /// a readmission to [`HealthState::Healthy`] marks itself.
    pub fn mark_admitted(&self) {
        let now = clock_micros();
        self.admitted_micros.store(now, Ordering::Relaxed);
        LAST_ADMISSION.fetch_max(now, Ordering::Relaxed);
    }

    /// The share of its full weight an instance has `ramp` into a slow
    /// start: `elapsed / ramp`, 1.0 once the ramp is over or when the
    /// instance was a member from the start.
    pub fn ramp(&self, ramp: Duration) -> f64 {
        let admitted = self.admitted_micros.load(Ordering::Relaxed);
        ramp_share(admitted, clock_micros(), ramp)
    }

    /// Whether some instance of the process may still be in a slow start
    /// of length `ramp`: one atomic load and a clock read, for routers to
    /// skip per-candidate checks.
    pub fn any_ramping(ramp: Duration) -> bool {
        let last = LAST_ADMISSION.load(Ordering::Relaxed);
        ramp_share(last, clock_micros(), ramp) < 1.0
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

fn ramp_share(admitted: u64, now: u64, ramp: Duration) -> f64 {
    let ramp = ramp.as_micros() as f64;
    if admitted == 0 || ramp <= 0.0 {
        return 1.0;
    }
    (now.saturating_sub(admitted) as f64 / ramp).min(1.0)
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

    #[tokio::test(start_paused = true)]
    async fn readmission_starts_a_ramp_and_a_founding_member_has_none() {
        let ramp = Duration::from_secs(10);
        let slot = HealthSlot::default();
        assert_eq!(slot.ramp(ramp), 1.0, "a founding member is not ramping");
        slot.set_state(HealthState::Ejected);
        assert_eq!(slot.ramp(ramp), 1.0, "ejection alone starts nothing");
        assert!(slot.transition(HealthState::Ejected, HealthState::Probing));
        assert!(slot.transition(HealthState::Probing, HealthState::Healthy));
        assert_eq!(slot.ramp(ramp), 0.0);
        assert!(HealthSlot::any_ramping(ramp));
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!((slot.ramp(ramp) - 0.4).abs() < 1e-6, "{}", slot.ramp(ramp));
        tokio::time::advance(Duration::from_secs(7)).await;
        assert_eq!(slot.ramp(ramp), 1.0);
        // Degraded back to healthy is no readmission.
        slot.set_state(HealthState::Degraded);
        slot.set_state(HealthState::Healthy);
        assert_eq!(slot.ramp(ramp), 1.0);
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
