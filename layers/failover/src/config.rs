//! The layer's settings, with the documented `DEFAULT_*` values.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use foresight_core::signal::{HealthRecorder, HealthSignal};
use http::{HeaderName, Method, Request};

use crate::failure::{FailureStatus, ServerErrors};
use crate::policy::{AttemptTimeout, Hedging};

/// Consecutive failures that eject an instance.
pub const DEFAULT_CONSECUTIVE_FAILURES: u32 = 3;
/// Two failures at least this far apart with no success between eject an
/// instance, so a dead instance under light traffic is out within this time.
pub const DEFAULT_FAILURE_WINDOW: Duration = Duration::from_millis(100);
/// Error ratio over [`DEFAULT_ERROR_WINDOW`] that ejects an instance…
pub const DEFAULT_ERROR_RATIO: f64 = 0.5;
/// …over this sliding window…
pub const DEFAULT_ERROR_WINDOW: Duration = Duration::from_secs(10);
/// …once it holds at least this many requests.
pub const DEFAULT_MIN_REQUESTS: u32 = 20;
/// An instance that answers again after an outage, however long, is
/// readmitted within this long while requests for its keys come in: the
/// longest ejection backoff ([`DEFAULT_MAX_EJECTION`]), plus one base
/// backoff when only non-replayable requests come, plus one degraded probe
/// interval when its first probe answers slowly. Probes are real requests,
/// so a key space that sends nothing to the instance does not probe it.
pub const READMISSION_BOUND: Duration = Duration::from_secs(5);
/// First ejection lasts this long; each further one doubles it…
pub const DEFAULT_BASE_EJECTION: Duration = Duration::from_secs(1);
/// …up to this. Staying healthy this long resets the doubling.
pub const DEFAULT_MAX_EJECTION: Duration = Duration::from_secs(2);
/// At most this share of the instances is ejected at once (at least one).
pub const DEFAULT_MAX_EJECTED_SHARE: f64 = 0.5;
/// A response slower than this multiple of the fleet baseline counts as
/// slow…
pub const DEFAULT_DEGRADE_RATIO: f64 = 4.0;
/// …and a probe must be faster than this multiple to readmit (hysteresis).
pub const DEFAULT_RECOVER_RATIO: f64 = 2.0;
/// Latencies under this never count as slow, whatever the baseline.
pub const DEFAULT_LATENCY_FLOOR: Duration = Duration::from_millis(5);
/// Consecutive slow responses that move an instance to Degraded.
pub const DEFAULT_SLOW_SAMPLES: u32 = 5;
/// …over at least this long: a stall of the host or of the instance's
/// process ends every response in flight late at once, a bunch of slow
/// responses within a few milliseconds followed by fast ones; a slowed
/// instance keeps answering slowly.
pub const DEFAULT_SLOW_SPAN: Duration = Duration::from_millis(100);
/// Time constant of the peak-EWMA latency.
pub const DEFAULT_EWMA_DECAY: Duration = Duration::from_millis(500);
/// Keys leave a Degraded instance over this period, a growing share at a
/// time.
pub const DEFAULT_DRAIN: Duration = Duration::from_millis(250);
/// A Degraded instance is probed this long after it degraded.
pub const DEFAULT_DEGRADED_PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Bytes of request body kept for a replay.
pub const DEFAULT_BODY_CAP: usize = 64 * 1024;
/// Header that makes a non-idempotent request replayable.
pub const DEFAULT_IDEMPOTENCY_HEADER: HeaderName = HeaderName::from_static("idempotency-key");
/// How far ahead a [`HealthSignal`] prediction moves an instance to
/// Degraded.
pub const DEFAULT_SIGNAL_LEAD: Duration = Duration::from_secs(1);
/// An instance moved out on a prediction is readmitted only once the
/// prediction has stayed clear this long (and a probe then passes).
pub const DEFAULT_SIGNAL_HOLD: Duration = Duration::from_secs(1);
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) consecutive_failures: u32,
    pub(crate) failure_window: Duration,
    pub(crate) error_ratio: f64,
    pub(crate) error_window: Duration,
    pub(crate) min_requests: u32,
    pub(crate) base_ejection: Duration,
    pub(crate) max_ejection: Duration,
    pub(crate) max_ejected_share: f64,
    pub(crate) degrade_ratio: f64,
    pub(crate) recover_ratio: f64,
    pub(crate) latency_floor: Duration,
    pub(crate) slow_samples: u32,
    pub(crate) slow_span: Duration,
    pub(crate) ewma_decay: Duration,
    pub(crate) drain: Duration,
    pub(crate) degraded_probe_interval: Duration,
    pub(crate) attempt_timeout: AttemptTimeout,
    pub(crate) hedging: Option<Hedging>,
    pub(crate) body_cap: usize,
    pub(crate) idempotency_header: Option<HeaderName>,
    pub(crate) failure_status: Arc<dyn FailureStatus>,
    pub(crate) budget_ttl: Duration,
    pub(crate) budget_min_per_sec: u32,
    pub(crate) budget_percent: f32,
    pub(crate) signal: Option<Arc<dyn HealthSignal>>,
    pub(crate) signal_lead: Duration,
    pub(crate) signal_interval: Duration,
    pub(crate) signal_hold: Duration,
    pub(crate) recorder: Option<Arc<dyn HealthRecorder>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            consecutive_failures: DEFAULT_CONSECUTIVE_FAILURES,
            failure_window: DEFAULT_FAILURE_WINDOW,
            error_ratio: DEFAULT_ERROR_RATIO,
            error_window: DEFAULT_ERROR_WINDOW,
            min_requests: DEFAULT_MIN_REQUESTS,
            base_ejection: DEFAULT_BASE_EJECTION,
            max_ejection: DEFAULT_MAX_EJECTION,
            max_ejected_share: DEFAULT_MAX_EJECTED_SHARE,
            degrade_ratio: DEFAULT_DEGRADE_RATIO,
            recover_ratio: DEFAULT_RECOVER_RATIO,
            latency_floor: DEFAULT_LATENCY_FLOOR,
            slow_samples: DEFAULT_SLOW_SAMPLES,
            slow_span: DEFAULT_SLOW_SPAN,
            ewma_decay: DEFAULT_EWMA_DECAY,
            drain: DEFAULT_DRAIN,
            degraded_probe_interval: DEFAULT_DEGRADED_PROBE_INTERVAL,
            attempt_timeout: AttemptTimeout::DEFAULT,
            hedging: None,
            body_cap: DEFAULT_BODY_CAP,
            idempotency_header: Some(DEFAULT_IDEMPOTENCY_HEADER),
            failure_status: Arc::new(ServerErrors),
            budget_ttl: Duration::from_secs(10),
            budget_min_per_sec: 10,
            budget_percent: 0.2,
            signal: None,
            signal_lead: DEFAULT_SIGNAL_LEAD,
            signal_interval: Duration::from_millis(50),
            signal_hold: DEFAULT_SIGNAL_HOLD,
            recorder: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("consecutive_failures", &self.consecutive_failures)
            .field("failure_window", &self.failure_window)
            .field("error_ratio", &self.error_ratio)
            .field("error_window", &self.error_window)
            .field("base_ejection", &self.base_ejection)
            .field("max_ejection", &self.max_ejection)
            .field("max_ejected_share", &self.max_ejected_share)
            .field("degrade_ratio", &self.degrade_ratio)
            .field("recover_ratio", &self.recover_ratio)
            .field("latency_floor", &self.latency_floor)
            .field("slow_samples", &self.slow_samples)
            .field("slow_span", &self.slow_span)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("hedging", &self.hedging)
            .field("body_cap", &self.body_cap)
            .field("signal", &self.signal.is_some())
            .field("signal_lead", &self.signal_lead)
            .field("signal_hold", &self.signal_hold)
            .field("recorder", &self.recorder.is_some())
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Idempotent methods, or any request carrying the idempotency header.
    pub(crate) fn is_replayable<B>(&self, request: &Request<B>) -> bool {
        matches!(
            *request.method(),
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::TRACE
                | Method::PUT
                | Method::DELETE
        ) || self
            .idempotency_header
            .as_ref()
            .is_some_and(|h| request.headers().contains_key(h))
    }
}
