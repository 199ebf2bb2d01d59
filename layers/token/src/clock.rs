//! Wall-clock time as the token code sees it.
//!
//! Every timestamp in a token is Unix time, but scheduling, expiry checks and
//! the tests that drive them with `tokio::time::pause` need one notion of
//! "now". [`TokioClock`] (the default) reads the Unix time once and then
//! advances with `tokio::time::Instant`, so paused-time tests see tokens
//! expire; [`ManualClock`] is set by hand (simulations, unit tests).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// A source of Unix time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Time since the Unix epoch.
    fn unix(&self) -> Duration;

    /// Whole seconds since the Unix epoch, as JWT `NumericDate`s count.
    fn unix_secs(&self) -> u64 {
        self.unix().as_secs()
    }
}

/// A clock shared between the issuer, the verifier and the layer.
pub type SharedClock = Arc<dyn Clock>;

/// Unix time read once, then advanced by `tokio::time::Instant` (monotonic,
/// and paused with the tokio clock in tests).
#[derive(Clone, Debug)]
pub struct TokioClock {
    base_unix: Duration,
    base: Instant,
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl TokioClock {
    /// Anchors the clock at the current system time.
    pub fn new() -> Self {
        Self {
            base_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
            base: Instant::now(),
        }
    }

    /// A shared handle to a new clock.
    pub fn shared() -> SharedClock {
        Arc::new(Self::new())
    }
}

impl Clock for TokioClock {
    fn unix(&self) -> Duration {
        self.base_unix + self.base.elapsed()
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    micros: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock showing `unix` since the epoch.
    pub fn new(unix: Duration) -> Self {
        Self {
            micros: Arc::new(AtomicU64::new(unix.as_micros() as u64)),
        }
    }

    /// Sets the time.
    pub fn set(&self, unix: Duration) {
        self.micros
            .store(unix.as_micros() as u64, Ordering::Relaxed);
    }

    /// Moves the time forward.
    pub fn advance(&self, by: Duration) {
        self.micros
            .fetch_add(by.as_micros() as u64, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn unix(&self) -> Duration {
        Duration::from_micros(self.micros.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = TokioClock::new();
        let before = clock.unix();
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_eq!(clock.unix() - before, Duration::from_secs(600));
    }

    #[test]
    fn manual_clock_clones_share_time() {
        let a = ManualClock::new(Duration::from_secs(10));
        let b = a.clone();
        a.advance(Duration::from_secs(5));
        assert_eq!(b.unix_secs(), 15);
    }
}
