//! Configuration of a [`Forecaster`](crate::Forecaster).

use std::time::Duration;

use crate::forecaster::Forecaster;
use crate::model::{ModelConfig, SeasonalConfig};
use crate::{ForecastError, Signal};

/// Builds a [`Forecaster`]. Every default is listed on its setter.
#[derive(Debug, Clone)]
#[must_use]
pub struct ForecasterBuilder {
    pub(crate) step: Duration,
    pub(crate) capacity: usize,
    pub(crate) model: ModelConfig,
    pub(crate) seasonal: Option<SeasonalConfig>,
    pub(crate) retrain_every: Duration,
    pub(crate) system: bool,
    pub(crate) max_instances: usize,
    pub(crate) health_signal: Signal,
    pub(crate) health_threshold: f64,
}

impl Default for ForecasterBuilder {
    fn default() -> Self {
        Self {
            step: Duration::from_secs(10),
            capacity: 4032,
            model: ModelConfig::default(),
            seasonal: Some(SeasonalConfig::default()),
            retrain_every: Duration::from_secs(60),
            system: true,
            max_instances: 256,
            health_signal: Signal::Latency,
            health_threshold: 1.0,
        }
    }
}

impl ForecasterBuilder {
    /// Length of one sample (default 10 s): recorded values are aggregated
    /// per step, and horizons are multiples of it.
    pub fn with_step(mut self, step: Duration) -> Self {
        self.step = step;
        self
    }

    /// Samples kept per series (default 4,032). The history is a ring of
    /// this size: memory stays fixed however long the forecaster runs.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Model settings (default [`ModelConfig::default`]); its horizon count
    /// times the step is the furthest forecast answered.
    pub fn with_model(mut self, model: ModelConfig) -> Self {
        self.model = model;
        self
    }

    /// The seasonal model (default [`SeasonalConfig::default`]: daily and
    /// weekly cycles, forecasts to 8 hours, 22 days of 5-minute buckets
    /// per signal); `None` for the short-term model alone, whose horizon
    /// count times the step is then the furthest forecast answered.
    ///
    /// Each signal keeps a second history of bucket means (the step when
    /// it is longer than the bucket), placed by sample time: the step's
    /// close for [`tick`](Forecaster::tick), the given time for
    /// [`push_at`](Forecaster::push_at). Once it holds enough of them
    /// (about 3 days; see [`choose`](crate::model::choose)), retraining
    /// also chooses, per signal and horizon, between the seasonal and the
    /// short-term model on a held-back window, at most once per hour of
    /// new buckets. Until then, and for a signal without a daily cycle,
    /// the short-term model answers and its last forecast is held out to
    /// the seasonal horizon.
    pub fn with_seasonal(mut self, seasonal: Option<SeasonalConfig>) -> Self {
        self.seasonal = seasonal;
        self
    }

    /// Interval of background retraining (default 60 s).
    pub fn with_retrain_every(mut self, every: Duration) -> Self {
        self.retrain_every = every;
        self
    }

    /// Whether the background task samples host CPU, memory and network
    /// through `sysinfo` every step (default `true`).
    pub fn with_system_sampler(mut self, enabled: bool) -> Self {
        self.system = enabled;
        self
    }

    /// Most instances tracked by
    /// [`record_instance`](Forecaster::record_instance) (default 256);
    /// samples of further instances are dropped.
    pub fn with_max_instances(mut self, max: usize) -> Self {
        self.max_instances = max;
        self
    }

    /// The per-instance signal and the level above which an instance counts
    /// as degraded (default: latency above 1.0 s). The signal sets how an
    /// instance's values are aggregated per step and what a
    /// [`RequestGuard`](crate::RequestGuard) records for the instance:
    /// latency by default, or 1.0 per failed request for
    /// [`Signal::Errors`] (a threshold in errors per second).
    pub fn with_health(mut self, signal: Signal, threshold: f64) -> Self {
        self.health_signal = signal;
        self.health_threshold = threshold;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ForecastError> {
        self.model.validate()?;
        if let Some(s) = &self.seasonal {
            s.validate()?;
        }
        if self.step.is_zero() {
            return Err(ForecastError::Config("step must be positive"));
        }
        if self.retrain_every.is_zero() {
            return Err(ForecastError::Config("retrain interval must be positive"));
        }
        if self.capacity < 2 || self.capacity > 10_000_000 {
            return Err(ForecastError::Config("capacity must be in 2..=10000000"));
        }
        if !self.health_threshold.is_finite() {
            return Err(ForecastError::Config("health threshold must be finite"));
        }
        Ok(())
    }

    /// A forecaster without background tasks: the caller drives it with
    /// [`Forecaster::tick`] and [`Forecaster::retrain`]. Needs no runtime.
    pub fn build(self) -> Result<Forecaster, ForecastError> {
        self.validate()?;
        Ok(Forecaster::from_builder(self))
    }

    /// A forecaster whose background tasks, on the current Tokio runtime,
    /// close a step every `step` (sampling the host first when enabled) and
    /// retrain every `retrain_every` in `spawn_blocking`. The tasks end
    /// when the last handle is dropped.
    pub fn spawn(self) -> Result<Forecaster, ForecastError> {
        let handle = tokio::runtime::Handle::try_current().map_err(ForecastError::NoRuntime)?;
        let forecaster = self.build()?;
        crate::tasks::spawn(&forecaster, &handle);
        Ok(forecaster)
    }
}
