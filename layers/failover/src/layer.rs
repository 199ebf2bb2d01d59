use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use foresight_core::Topology;
use foresight_core::signal::{HealthRecorder, HealthSignal};
use http::{HeaderName, Method, Request, StatusCode};
use tower_layer::Layer;

use crate::health::Tracker;
use crate::service::HealthFailover;
use crate::stats::FailoverStats;

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
/// First ejection lasts this long; each further one doubles it…
pub const DEFAULT_BASE_EJECTION: Duration = Duration::from_secs(1);
/// …up to this. Staying healthy this long resets the doubling.
pub const DEFAULT_MAX_EJECTION: Duration = Duration::from_secs(30);
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

fn default_failure_status(status: StatusCode) -> bool {
    status.is_server_error()
}

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
    pub(crate) ewma_decay: Duration,
    pub(crate) drain: Duration,
    pub(crate) degraded_probe_interval: Duration,
    pub(crate) attempt_timeout: AttemptTimeout,
    pub(crate) hedging: Option<Hedging>,
    pub(crate) body_cap: usize,
    pub(crate) idempotency_header: Option<HeaderName>,
    pub(crate) failure_status: fn(StatusCode) -> bool,
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
            ewma_decay: DEFAULT_EWMA_DECAY,
            drain: DEFAULT_DRAIN,
            degraded_probe_interval: DEFAULT_DEGRADED_PROBE_INTERVAL,
            attempt_timeout: AttemptTimeout::DEFAULT,
            hedging: None,
            body_cap: DEFAULT_BODY_CAP,
            idempotency_header: Some(DEFAULT_IDEMPOTENCY_HEADER),
            failure_status: default_failure_status,
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

/// Sends each request to a live candidate of its
/// [`Route`](foresight_core::Route) and replays it on the next one when the
/// attempt fails.
///
/// See the [crate docs](crate) for the health model, the defaults, and a
/// default and a customised setup. Every setter documents its default (the
/// `DEFAULT_*` constants of this crate).
///
/// Cloning the layer shares its health figures, budget and counters: every
/// service it makes, and every service a clone makes, sees the same
/// instances the same way. A setter called on a configured layer starts a
/// fresh health state for that layer.
#[derive(Clone)]
#[must_use]
pub struct HealthFailoverLayer {
    pub(crate) shared: Arc<Tracker>,
}

impl fmt::Debug for HealthFailoverLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthFailoverLayer")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl HealthFailoverLayer {
    /// Fails over between the instances of `topology` with the documented
    /// defaults.
    pub fn new(topology: Topology) -> Self {
        Self {
            shared: Arc::new(Tracker::new(topology, Config::default())),
        }
    }

    fn with(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = self.shared.config.clone();
        change(&mut config);
        Self {
            shared: Arc::new(Tracker::new(self.shared.topology().clone(), config)),
        }
    }

    /// Consecutive failures that eject an instance (default
    /// [`DEFAULT_CONSECUTIVE_FAILURES`], at least 1).
    pub fn with_consecutive_failures(self, failures: u32) -> Self {
        self.with(|c| c.consecutive_failures = failures.max(1))
    }

    /// Two failures this far apart with no success between eject an
    /// instance (default [`DEFAULT_FAILURE_WINDOW`]).
    pub fn with_failure_window(self, window: Duration) -> Self {
        self.with(|c| c.failure_window = window)
    }

    /// Ejects an instance whose error ratio over `window` reaches `ratio`
    /// once the window holds `min_requests` (defaults
    /// [`DEFAULT_ERROR_RATIO`], [`DEFAULT_ERROR_WINDOW`],
    /// [`DEFAULT_MIN_REQUESTS`]).
    pub fn with_error_ratio(self, ratio: f64, window: Duration, min_requests: u32) -> Self {
        self.with(|c| {
            c.error_ratio = ratio.clamp(0.0, 1.0);
            c.error_window = window.max(Duration::from_millis(10));
            c.min_requests = min_requests.max(1);
        })
    }

    /// Ejection backoff: `base` for the first ejection, doubling up to `max`
    /// (defaults [`DEFAULT_BASE_EJECTION`], [`DEFAULT_MAX_EJECTION`]).
    pub fn with_ejection_backoff(self, base: Duration, max: Duration) -> Self {
        self.with(|c| {
            c.base_ejection = base;
            c.max_ejection = max.max(base);
        })
    }

    /// Largest share of the instances ejected at once; at least one
    /// instance can always be ejected (default
    /// [`DEFAULT_MAX_EJECTED_SHARE`]).
    pub fn with_max_ejected_share(self, share: f64) -> Self {
        self.with(|c| c.max_ejected_share = share.clamp(0.0, 1.0))
    }

    /// Latency degradation: a response slower than `degrade` times the
    /// fleet baseline (the lowest latency average of the Healthy instances)
    /// is slow, `samples` slow responses in a row degrade the instance, and a
    /// probe must be faster than `recover` times the baseline to readmit it.
    /// Nothing under `floor` is slow. Defaults [`DEFAULT_DEGRADE_RATIO`],
    /// [`DEFAULT_RECOVER_RATIO`], [`DEFAULT_SLOW_SAMPLES`],
    /// [`DEFAULT_LATENCY_FLOOR`].
    pub fn with_latency_degradation(
        self,
        degrade: f64,
        recover: f64,
        samples: u32,
        floor: Duration,
    ) -> Self {
        self.with(|c| {
            c.degrade_ratio = degrade.max(1.0);
            c.recover_ratio = recover.clamp(1.0, degrade.max(1.0));
            c.slow_samples = samples.max(1);
            c.latency_floor = floor;
        })
    }

    /// Time constant of the peak-EWMA latency (default
    /// [`DEFAULT_EWMA_DECAY`]).
    pub fn with_ewma_decay(self, decay: Duration) -> Self {
        self.with(|c| c.ewma_decay = decay)
    }

    /// How long keys take to leave a Degraded instance, and how long after
    /// degrading it is probed (defaults [`DEFAULT_DRAIN`],
    /// [`DEFAULT_DEGRADED_PROBE_INTERVAL`]).
    pub fn with_drain(self, drain: Duration, probe_after: Duration) -> Self {
        self.with(|c| {
            c.drain = drain;
            c.degraded_probe_interval = probe_after;
        })
    }

    /// Timeout of replayable attempts (default [`AttemptTimeout::DEFAULT`]).
    pub fn with_attempt_timeout(self, timeout: AttemptTimeout) -> Self {
        self.with(|c| c.attempt_timeout = timeout)
    }

    /// Hedges slow replayable attempts (default: off; see [`Hedging`]).
    pub fn with_hedging(self, hedging: Hedging) -> Self {
        self.with(|c| c.hedging = Some(hedging))
    }

    /// Bytes of request body kept for a replay; a larger body is streamed
    /// to its first target and never replayed (default
    /// [`DEFAULT_BODY_CAP`]).
    pub fn with_body_cap(self, bytes: usize) -> Self {
        self.with(|c| c.body_cap = bytes)
    }

    /// Header whose presence makes any request replayable, or `None` to
    /// replay idempotent methods only (default
    /// [`DEFAULT_IDEMPOTENCY_HEADER`]).
    pub fn with_idempotency_header(self, header: Option<HeaderName>) -> Self {
        self.with(|c| c.idempotency_header = header)
    }

    /// Which response statuses count as failures, for health and replay
    /// (default: every 5xx).
    pub fn with_failure_status(self, is_failure: fn(StatusCode) -> bool) -> Self {
        self.with(|c| c.failure_status = is_failure)
    }

    /// Retry budget: `min_per_sec` replays per second of `ttl` always
    /// available, plus `percent` of the requests of the last `ttl` (default
    /// 10 s, 10/s, 0.2, as tower's `TpsBudget`). `ttl` is clamped to 1–60 s.
    pub fn with_replay_budget(self, ttl: Duration, min_per_sec: u32, percent: f32) -> Self {
        self.with(|c| {
            c.budget_ttl = ttl;
            c.budget_min_per_sec = min_per_sec;
            c.budget_percent = percent;
        })
    }

    /// A predicted degradation signal (a forecaster): an instance predicted
    /// to degrade within `lead` moves to Degraded before it slows down, and
    /// is readmitted only by a probe that passes once the prediction has
    /// been gone for the hold ([`with_signal_hold`](Self::with_signal_hold))
    /// (default: none; [`DEFAULT_SIGNAL_LEAD`]). The signal is asked at most
    /// every 50 ms per instance. To also feed the forecaster from this
    /// layer's traffic, use [`with_forecast`](Self::with_forecast).
    pub fn with_health_signal<H: HealthSignal>(self, signal: H, lead: Duration) -> Self {
        let signal: Arc<dyn HealthSignal> = Arc::new(signal);
        self.with(|c| {
            c.signal = Some(signal);
            c.signal_lead = lead;
        })
    }

    /// How long a prediction must stay clear before an instance it moved
    /// out is readmitted by a passing probe (default
    /// [`DEFAULT_SIGNAL_HOLD`]). Set it to at least one step of the
    /// forecaster behind the signal, so that the forecaster has seen the
    /// latency of a probe before the next one can readmit.
    pub fn with_signal_hold(self, hold: Duration) -> Self {
        self.with(|c| c.signal_hold = hold)
    }

    /// Reports every attempt when it ends, or when it is dropped first
    /// (cancelled attempts count, with the time they had waited), to
    /// `recorder`: the instance, the latency, and whether the instance
    /// failed it (an error, a 5xx by [`with_failure_status`], a timeout).
    /// The call runs on the request path; a recorder must neither block nor
    /// allocate, as [`HealthRecorder`] requires (default: none).
    ///
    /// [`with_failure_status`]: Self::with_failure_status
    pub fn with_health_recorder<H: HealthRecorder>(self, recorder: H) -> Self {
        let recorder: Arc<dyn HealthRecorder> = Arc::new(recorder);
        self.with(|c| c.recorder = Some(recorder))
    }

    /// A forecaster that both learns from this layer's live traffic and
    /// predicts from it: every attempt is recorded into it (as
    /// [`with_health_recorder`]) and its predictions move instances to
    /// Degraded within `lead` (as [`with_health_signal`]). One handle
    /// serves both; nothing of the forecaster is copied or restarted.
    ///
    /// ```
    /// use std::time::Duration;
    /// use foresight_core::{InstanceSpec, Topology};
    /// use foresight_failover::HealthFailoverLayer;
    /// use foresight_forecast::{Forecaster, Signal};
    ///
    /// let topology = Topology::from_instances(["a", "b", "c"].map(InstanceSpec::new)).unwrap();
    /// // Degraded when the latency of an instance is predicted above 50 ms.
    /// let forecaster = Forecaster::builder()
    ///     .with_step(Duration::from_millis(200))
    ///     .with_system_sampler(false)
    ///     .with_health(Signal::Latency, 0.050)
    ///     .build()
    ///     .unwrap();
    /// let failover = HealthFailoverLayer::new(topology)
    ///     .with_forecast(forecaster, Duration::from_secs(1))
    ///     .with_signal_hold(Duration::from_millis(600));
    /// # let _ = failover;
    /// ```
    ///
    /// [`with_health_recorder`]: Self::with_health_recorder
    /// [`with_health_signal`]: Self::with_health_signal
    pub fn with_forecast<F>(self, forecaster: F, lead: Duration) -> Self
    where
        F: HealthSignal + HealthRecorder,
    {
        let forecaster = Arc::new(forecaster);
        let signal: Arc<dyn HealthSignal> = forecaster.clone();
        let recorder: Arc<dyn HealthRecorder> = forecaster;
        self.with(|c| {
            c.signal = Some(signal);
            c.signal_lead = lead;
            c.recorder = Some(recorder);
        })
    }

    /// The topology whose health this layer tracks.
    pub fn topology(&self) -> &Topology {
        self.shared.topology()
    }

    /// Counters since the layer was built, shared by its clones.
    pub fn stats(&self) -> FailoverStats {
        self.shared.stats()
    }

    /// Requests in flight to `instance` through this layer (and its
    /// clones), or `None` for a non-member.
    pub fn in_flight(&self, instance: &foresight_core::InstanceId) -> Option<u32> {
        self.shared.instance(instance).map(|s| s.in_flight())
    }
}

impl<S> Layer<S> for HealthFailoverLayer {
    type Service = HealthFailover<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HealthFailover {
            inner,
            shared: self.shared.clone(),
        }
    }
}
