//! Attempt policies: how long an attempt may run before it is abandoned
//! ([`AttemptTimeout`]), and when a slow one is raced by a hedge
//! ([`Hedging`]).

use std::time::Duration;

/// How long an attempt that could be replayed may take before it is
/// abandoned, counted as a failure, and replayed on the next candidate.
///
/// Attempts that cannot be replayed (non-idempotent requests, the last
/// candidate) are never timed out by the layer.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum AttemptTimeout {
    /// No timeout.
    Off,
    /// The same timeout for every attempt.
    Fixed(Duration),
    /// `factor` times the instance's peak-EWMA latency, within
    /// `[floor, ceiling]`.
    Adaptive {
        /// Multiple of the latency average.
        factor: f64,
        /// Shortest timeout.
        floor: Duration,
        /// Longest timeout.
        ceiling: Duration,
    },
}

impl AttemptTimeout {
    /// The default: ten times the latency average, between 100 ms and 10 s.
    pub const DEFAULT: Self = AttemptTimeout::Adaptive {
        factor: 10.0,
        floor: Duration::from_millis(100),
        ceiling: Duration::from_secs(10),
    };

    pub(crate) fn for_latency(&self, seconds: f64) -> Option<Duration> {
        match *self {
            AttemptTimeout::Off => None,
            AttemptTimeout::Fixed(d) => Some(d),
            AttemptTimeout::Adaptive {
                factor,
                floor,
                ceiling,
            } => {
                let scaled = Duration::try_from_secs_f64(seconds * factor).unwrap_or(ceiling);
                Some(scaled.clamp(floor, ceiling.max(floor)))
            }
        }
    }
}

impl Default for AttemptTimeout {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Hedging: when an attempt has taken longer than a latency quantile of its
/// instance, the same request also goes to the next live candidate, both
/// race, and the first success answers (the other is cancelled). Off by
/// default.
///
/// Only replayable requests are hedged, and only once their body has been
/// read in full (a `GET` has none), so both attempts send the same bytes.
/// Hedges are replays for the retry budget: under an outage they stop with
/// the replays. A hedge is not shadowed.
///
/// ```
/// use std::time::Duration;
/// use foresight_failover::Hedging;
///
/// // Hedge past each instance's p95, never before 2 ms, once 200 responses
/// // of the last 10–20 s are known.
/// let hedging = Hedging::after_quantile(0.95)
///     .with_min_delay(Duration::from_millis(2))
///     .with_min_samples(200);
/// # let _ = hedging;
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Hedging {
    /// Latency quantile of the attempt's instance after which a hedge goes
    /// out (say 0.95).
    pub quantile: f64,
    /// Never hedge before this (default 1 ms).
    pub min_delay: Duration,
    /// Responses an instance must have in its latency window before its
    /// quantile is trusted; no hedge before that (default 100).
    pub min_samples: u64,
    /// Length of each of the two latency windows the quantile is read from
    /// (default 10 s).
    pub window: Duration,
}

impl Hedging {
    /// Hedges past the `quantile` latency of each instance (clamped to
    /// 0.5–0.999; NaN means 0.95), with the defaults above.
    pub fn after_quantile(quantile: f64) -> Self {
        let quantile = if quantile.is_nan() { 0.95 } else { quantile };
        Self {
            quantile: quantile.clamp(0.5, 0.999),
            min_delay: Duration::from_millis(1),
            min_samples: 100,
            window: Duration::from_secs(10),
        }
    }

    /// Never hedge before `delay`.
    pub fn with_min_delay(mut self, delay: Duration) -> Self {
        self.min_delay = delay;
        self
    }

    /// Responses needed before an instance's quantile is trusted (at least
    /// 1).
    pub fn with_min_samples(mut self, samples: u64) -> Self {
        self.min_samples = samples.max(1);
        self
    }

    /// Length of each latency window (at least 100 ms).
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window.max(Duration::from_millis(100));
        self
    }
}
