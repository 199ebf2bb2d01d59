use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use foresight_core::Topology;
use foresight_core::signal::{HealthRecorder, HealthSignal};
use http::HeaderName;
use tower_layer::Layer;

use crate::config::Config;
use crate::failure::FailureStatus;
use crate::health::Tracker;
use crate::policy::{AttemptTimeout, Hedging};
use crate::service::HealthFailover;
use crate::stats::FailoverStats;

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
/// instances the same way. The setters only change the settings: the
/// health state is built once, when the layer first makes a service or
/// reports its figures, and is shared from then on. A setter called on a
/// configured layer starts a fresh health state for that layer.
#[derive(Clone)]
#[must_use]
pub struct HealthFailoverLayer {
    topology: Topology,
    config: Config,
    pub(crate) shared: Arc<OnceLock<Arc<Tracker>>>,
}

impl fmt::Debug for HealthFailoverLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthFailoverLayer")
            .field("config", &self.config)
            .finish()
    }
}

impl HealthFailoverLayer {
    /// Fails over between the instances of `topology` with the documented
    /// defaults.
    pub fn new(topology: Topology) -> Self {
        Self {
            topology,
            config: Config::default(),
            shared: Arc::default(),
        }
    }

    fn with(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self.shared = Arc::default();
        self
    }

    /// The health state shared by this layer and its clones, built on first
    /// use.
    fn tracker(&self) -> &Arc<Tracker> {
        self.shared
            .get_or_init(|| Arc::new(Tracker::new(self.topology.clone(), self.config.clone())))
    }

    /// Consecutive failures that eject an instance (default
    /// [`DEFAULT_CONSECUTIVE_FAILURES`](crate::DEFAULT_CONSECUTIVE_FAILURES), at least 1).
    pub fn with_consecutive_failures(self, failures: u32) -> Self {
        self.with(|c| c.consecutive_failures = failures.max(1))
    }

    /// Two failures this far apart with no success between eject an
    /// instance (default [`DEFAULT_FAILURE_WINDOW`](crate::DEFAULT_FAILURE_WINDOW)).
    pub fn with_failure_window(self, window: Duration) -> Self {
        self.with(|c| c.failure_window = window)
    }

    /// Ejects an instance whose error ratio over `window` reaches `ratio`
    /// once the window holds `min_requests` (defaults
    /// [`DEFAULT_ERROR_RATIO`](crate::DEFAULT_ERROR_RATIO), [`DEFAULT_ERROR_WINDOW`](crate::DEFAULT_ERROR_WINDOW),
    /// [`DEFAULT_MIN_REQUESTS`](crate::DEFAULT_MIN_REQUESTS)).
    pub fn with_error_ratio(self, ratio: f64, window: Duration, min_requests: u32) -> Self {
        self.with(|c| {
            c.error_ratio = ratio.clamp(0.0, 1.0);
            c.error_window = window.max(Duration::from_millis(10));
            c.min_requests = min_requests.max(1);
        })
    }

    /// Ejection backoff: `base` for the first ejection, doubling up to `max`
    /// (defaults [`DEFAULT_BASE_EJECTION`](crate::DEFAULT_BASE_EJECTION), [`DEFAULT_MAX_EJECTION`](crate::DEFAULT_MAX_EJECTION)).
    pub fn with_ejection_backoff(self, base: Duration, max: Duration) -> Self {
        self.with(|c| {
            c.base_ejection = base;
            c.max_ejection = max.max(base);
        })
    }

    /// Largest share of the instances ejected at once; at least one
    /// instance can always be ejected (default
    /// [`DEFAULT_MAX_EJECTED_SHARE`](crate::DEFAULT_MAX_EJECTED_SHARE)).
    pub fn with_max_ejected_share(self, share: f64) -> Self {
        self.with(|c| c.max_ejected_share = share.clamp(0.0, 1.0))
    }

    /// Latency degradation: a response slower than `degrade` times the
    /// fleet baseline (the lowest median latency of the Healthy instances,
    /// while it is also over half that multiple of their lowest peak-EWMA
    /// latency)
    /// is slow, `samples` slow responses in a row degrade the instance, and a
    /// probe must be faster than `recover` times the baseline to readmit it.
    /// Nothing under `floor` is slow. Defaults [`DEFAULT_DEGRADE_RATIO`](crate::DEFAULT_DEGRADE_RATIO),
    /// [`DEFAULT_RECOVER_RATIO`](crate::DEFAULT_RECOVER_RATIO), [`DEFAULT_SLOW_SAMPLES`](crate::DEFAULT_SLOW_SAMPLES),
    /// [`DEFAULT_LATENCY_FLOOR`](crate::DEFAULT_LATENCY_FLOOR).
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

    /// The slow responses in a row that degrade an instance must also span
    /// at least `span`, from the first to the last (default
    /// [`DEFAULT_SLOW_SPAN`](crate::DEFAULT_SLOW_SPAN)): a bunch of late
    /// answers after a short stall does not degrade it.
    pub fn with_slow_span(self, span: Duration) -> Self {
        self.with(|c| c.slow_span = span)
    }

    /// Time constant of the peak-EWMA latency (default
    /// [`DEFAULT_EWMA_DECAY`](crate::DEFAULT_EWMA_DECAY)).
    pub fn with_ewma_decay(self, decay: Duration) -> Self {
        self.with(|c| c.ewma_decay = decay)
    }

    /// How long keys take to leave a Degraded instance, and how long after
    /// degrading it is probed (defaults [`DEFAULT_DRAIN`](crate::DEFAULT_DRAIN),
    /// [`DEFAULT_DEGRADED_PROBE_INTERVAL`](crate::DEFAULT_DEGRADED_PROBE_INTERVAL)).
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
    /// [`DEFAULT_BODY_CAP`](crate::DEFAULT_BODY_CAP)).
    pub fn with_body_cap(self, bytes: usize) -> Self {
        self.with(|c| c.body_cap = bytes)
    }

    /// Header whose presence makes any request replayable, or `None` to
    /// replay idempotent methods only (default
    /// [`DEFAULT_IDEMPOTENCY_HEADER`](crate::DEFAULT_IDEMPOTENCY_HEADER)).
    pub fn with_idempotency_header(self, header: Option<HeaderName>) -> Self {
        self.with(|c| c.idempotency_header = header)
    }

    /// Which response statuses count as failures, for health and replay: a
    /// [`FailureStatus`] hook, a closure or a function pointer (default
    /// [`ServerErrors`](crate::ServerErrors): every 5xx).
    pub fn with_failure_status<F: FailureStatus>(self, is_failure: F) -> Self {
        let is_failure: Arc<dyn FailureStatus> = Arc::new(is_failure);
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
    /// (default: none; [`DEFAULT_SIGNAL_LEAD`](crate::DEFAULT_SIGNAL_LEAD)). The signal is asked at most
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
    /// [`DEFAULT_SIGNAL_HOLD`](crate::DEFAULT_SIGNAL_HOLD)). Set it to at least one step of the
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
        &self.topology
    }

    /// Counters since the layer was built, shared by its clones.
    pub fn stats(&self) -> FailoverStats {
        self.tracker().stats()
    }

    /// Requests in flight to `instance` through this layer (and its
    /// clones), or `None` for a non-member.
    pub fn in_flight(&self, instance: &foresight_core::InstanceId) -> Option<u32> {
        self.tracker().instance(instance).map(|s| s.in_flight())
    }
}

impl<S> Layer<S> for HealthFailoverLayer {
    type Service = HealthFailover<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HealthFailover {
            inner,
            shared: self.tracker().clone(),
        }
    }
}
