//! The shared [`Forecaster`] handle.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use foresight_core::instance::InstanceId;
use foresight_core::signal::Forecast;

use crate::builder::ForecasterBuilder;
use crate::instances::Instances;
use crate::model::{ModelConfig, SeasonalConfig, Times, choose, train};
use crate::series::{SeasonalShape, Series, Shape, Status};
use crate::signal::{COUNT, Signal};
use crate::{ForecastError, RelativeSignal, RequestGuard, SignalHandle};

/// Wall-clock seconds derived from Tokio's clock, so that paused-time tests
/// see consistent sample times.
#[derive(Debug)]
struct Clock {
    start: tokio::time::Instant,
    start_unix: f64,
}

impl Clock {
    fn new() -> Self {
        Self {
            start: tokio::time::Instant::now(),
            start_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }

    fn now(&self) -> f64 {
        self.start_unix + self.start.elapsed().as_secs_f64()
    }
}

pub(crate) struct Inner {
    pub(crate) shape: Shape,
    pub(crate) model: ModelConfig,
    seasonal: Option<SeasonalConfig>,
    pub(crate) retrain_every: Duration,
    pub(crate) system: bool,
    series: [Series; COUNT],
    instances: Instances,
    pub(crate) health_signal: Signal,
    health_threshold: f64,
    clock: Clock,
}

/// A shared load forecaster.
///
/// Layers [`record`](Self::record) what they see (requests, latencies,
/// sessions, errors); the background tasks started by
/// [`ForecasterBuilder::spawn`] sample the host and close a step every
/// `step`, and retrain the models every `retrain_every` in
/// `spawn_blocking`. Reads ([`forecast`](Self::forecast),
/// [`will_exceed`](Self::will_exceed)) come from a snapshot published with
/// `arc-swap`: no lock, no allocation.
///
/// The handle is an `Arc`: cloning it is cheap and **shares** the
/// histories and models, so every layer given a clone sees the same
/// forecasts. Histories are rings of a fixed capacity, so memory stays
/// bounded however long the process runs.
///
/// See the [crate docs](crate) for an example.
#[derive(Clone)]
pub struct Forecaster {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Forecaster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Forecaster")
            .field("step", &self.inner.shape.step)
            .field("capacity", &self.inner.shape.capacity)
            .field("horizons", &self.inner.shape.horizons)
            .field("instances", &self.inner.instances.len())
            .finish_non_exhaustive()
    }
}

impl Forecaster {
    /// Starts configuring a forecaster.
    pub fn builder() -> ForecasterBuilder {
        ForecasterBuilder::default()
    }

    pub(crate) fn from_builder(b: ForecasterBuilder) -> Self {
        let step = b.step.as_secs_f64();
        let shape = Shape {
            step: b.step,
            capacity: b.capacity,
            horizons: b.model.horizons(),
            coverage: b.model.coverage,
            seasonal: b.seasonal.as_ref().map(|c| {
                let bucket = c.bucket.as_secs_f64().max(step);
                SeasonalShape {
                    bucket,
                    capacity: c.history_samples(bucket),
                    refit_every: (c.refit_every.as_secs_f64() / bucket).ceil() as usize,
                    max_horizon: c.horizon,
                }
            }),
        };
        let series = Signal::ALL.map(|s| Series::new(s.name(), s.aggregation(), shape));
        Self {
            inner: Arc::new(Inner {
                shape,
                retrain_every: b.retrain_every,
                system: b.system,
                series,
                instances: Instances::new(b.max_instances, b.health_signal.aggregation()),
                health_signal: b.health_signal,
                health_threshold: b.health_threshold,
                clock: Clock::new(),
                model: b.model,
                seasonal: b.seasonal,
            }),
        }
    }

    /// Records one value of `signal` in the current step (lock-free; see
    /// [`Signal`] for what to record for each).
    pub fn record(&self, signal: Signal, value: f64) {
        self.inner.series[signal.index()].record(value);
    }

    /// Records one value of the per-instance health signal (latency by
    /// default) for `instance`. At most `max_instances` instances are
    /// tracked; samples of further ones are dropped and counted.
    pub fn record_instance(&self, instance: &InstanceId, value: f64) {
        self.inner
            .instances
            .record(instance, value, self.inner.shape);
    }

    /// A guard that records a request when dropped (see [`RequestGuard`]),
    /// against `instance` when given.
    pub fn track_request(&self, instance: Option<InstanceId>) -> RequestGuard {
        RequestGuard::new(self.clone(), instance)
    }

    /// Stops tracking `instance` and frees its history.
    pub fn forget_instance(&self, instance: &InstanceId) {
        self.inner.instances.remove(instance);
    }

    /// Samples dropped because `max_instances` instances were tracked.
    pub fn dropped_instance_samples(&self) -> u64 {
        self.inner.instances.dropped()
    }

    /// The forecast of `signal` `horizon` ahead (interpolated between
    /// steps), or `None` before the first step closes or beyond
    /// [`max_horizon`](Self::max_horizon). Before a model is trained, or when
    /// the series cannot support one, it is the naive forecast (see
    /// [`status`](Self::status)).
    pub fn forecast(&self, signal: Signal, horizon: Duration) -> Option<Forecast> {
        self.inner.series[signal.index()]
            .snapshot()
            .forecast(horizon)
    }

    /// How long until the point forecast of `signal` passes `threshold`,
    /// if it does within `within` (checked at step boundaries);
    /// `Some(Duration::ZERO)` when the newest sample is already above.
    pub fn will_exceed(
        &self,
        signal: Signal,
        threshold: f64,
        within: Duration,
    ) -> Option<Duration> {
        self.inner.series[signal.index()]
            .snapshot()
            .will_exceed(threshold, within)
    }

    /// The forecast of `instance`'s health signal `horizon` ahead.
    pub fn instance_forecast(&self, instance: &InstanceId, horizon: Duration) -> Option<Forecast> {
        self.inner
            .instances
            .get(instance)?
            .snapshot()
            .forecast(horizon)
    }

    /// How long until `instance`'s health signal is predicted above the
    /// health threshold, if within `within`.
    pub fn instance_will_degrade(
        &self,
        instance: &InstanceId,
        within: Duration,
    ) -> Option<Duration> {
        self.inner
            .instances
            .get(instance)?
            .snapshot()
            .will_exceed(self.inner.health_threshold, within)
    }

    /// The reference level of `signal`: the 99th percentile of the history
    /// it keeps (up to 22 days of 5-minute buckets with the seasonal model,
    /// else the steps), as of the last retrain; `None` before one. It says
    /// what "high" means for this deployment without a threshold set by
    /// hand (see [`relative_signal`](Self::relative_signal)).
    pub fn reference_level(&self, signal: Signal) -> Option<f64> {
        self.inner.series[signal.index()].level()
    }

    /// A handle on `signal` whose forecasts are fractions of its
    /// [`reference_level`](Self::reference_level) (`1.0` is the 99th
    /// percentile of the kept history), for a layer whose threshold must
    /// hold across deployments of any size. It forecasts nothing until the
    /// level is known and positive.
    pub fn relative_signal(&self, signal: Signal) -> RelativeSignal {
        RelativeSignal::new(self.clone(), signal)
    }

    /// A handle on one signal that implements
    /// [`LoadSignal`](foresight_core::signal::LoadSignal).
    pub fn signal(&self, signal: Signal) -> SignalHandle {
        SignalHandle::new(self.clone(), signal)
    }

    /// The step length.
    pub fn step(&self) -> Duration {
        self.inner.shape.step
    }

    /// The furthest horizon answered: horizons × step, or the seasonal
    /// horizon (8 hours by default) when the seasonal model is on and that
    /// is further. Past the horizons a model answers, the last forecast is
    /// held.
    pub fn max_horizon(&self) -> Duration {
        self.inner.shape.max_horizon()
    }

    /// The condition of `signal`'s series.
    pub fn status(&self, signal: Signal) -> Status {
        self.inner.series[signal.index()].status()
    }

    /// The condition of `instance`'s series, if it is tracked.
    pub fn instance_status(&self, instance: &InstanceId) -> Option<Status> {
        Some(self.inner.instances.get(instance)?.status())
    }

    /// Closes the current step of every series: aggregates what was
    /// recorded into one sample and republishes the forecasts with the
    /// current models. The background task calls this every `step`.
    pub fn tick(&self) {
        let now = self.inner.clock.now();
        for s in &self.inner.series {
            s.tick(self.inner.shape, now);
        }
        for s in self.inner.instances.all() {
            s.tick(self.inner.shape, now);
        }
    }

    /// Appends one sample of `signal` directly, bypassing per-step
    /// aggregation, and republishes its forecasts (for importing history or
    /// replaying a series).
    pub fn push(&self, signal: Signal, value: f64) {
        self.inner.series[signal.index()].push(value, self.inner.shape, self.inner.clock.now());
    }

    /// Appends one sample of `signal` taken at `unix_secs` (seconds since
    /// the Unix epoch), bypassing per-step aggregation and the forecaster's
    /// clock: for importing history or replaying a recorded trace whose
    /// timestamps are not now.
    pub fn push_at(&self, signal: Signal, unix_secs: f64, value: f64) {
        self.inner.series[signal.index()].push(value, self.inner.shape, unix_secs);
    }

    /// Retrains every series in `spawn_blocking` and publishes the models;
    /// reads keep being answered from the previous snapshot meanwhile.
    pub async fn retrain(&self) -> Result<(), ForecastError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.retrain_blocking())
            .await
            .map_err(ForecastError::Join)
    }

    /// Retrains every series on the current thread (what [`retrain`]
    /// runs in `spawn_blocking`). Never call it on an async worker.
    ///
    /// [`retrain`]: Self::retrain
    pub fn retrain_blocking(&self) {
        let inner = &*self.inner;
        let _span = tracing::debug_span!("forecaster_retrain").entered();
        let instances = inner.instances.all();
        for s in inner.series.iter().chain(instances.iter().map(|s| &**s)) {
            let Some(input) = s.training_input(inner.shape.step) else {
                continue;
            };
            let times = Times::Regular {
                start: input.start,
                step: inner.shape.step.as_secs_f64(),
            };
            let result = train(&input.values, times, &inner.model);
            s.install(result, &input, inner.shape);
            let seasonal = inner
                .shape
                .seasonal
                .and_then(|_| s.seasonal_input(inner.shape));
            // The level comes from the longest history kept: the seasonal
            // buckets when they reach further back than the steps.
            match &seasonal {
                Some(values)
                    if values.len() as f64 * inner.shape.seasonal.map_or(0.0, |sh| sh.bucket)
                        > input.values.len() as f64 * inner.shape.step.as_secs_f64() =>
                {
                    s.set_level(values)
                }
                _ => s.set_level(&input.values),
            }
            if let (Some(config), Some(shape), Some(values)) =
                (&inner.seasonal, inner.shape.seasonal, seasonal)
            {
                let choice = choose(&values, shape.bucket, &inner.model, config);
                s.install_seasonal(choice, inner.shape);
            }
        }
    }
}
