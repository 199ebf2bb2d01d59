//! Settings of the seasonal model and of the choice between it and the
//! short-term model.

use std::time::Duration;

use crate::error::ForecastError;

/// Settings of the seasonal model (daily and weekly cycles) and of the
/// per-signal choice between it and the short-term model.
///
/// The defaults are the global settings that did best on the development
/// series (see the crate's README); none is tuned per series.
///
/// ```
/// use std::time::Duration;
///
/// use foresight_forecast::model::SeasonalConfig;
///
/// let config = SeasonalConfig::default()
///     .with_horizon(Duration::from_secs(6 * 3600))
///     .with_days(5);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct SeasonalConfig {
    pub(crate) horizon: Duration,
    pub(crate) bucket: Duration,
    pub(crate) history_days: usize,
    pub(crate) refit_every: Duration,
    pub(crate) days: usize,
    pub(crate) weeks: usize,
    pub(crate) lags: usize,
    pub(crate) alpha: f64,
    pub(crate) robust: usize,
    pub(crate) log: bool,
    pub(crate) log_mean: bool,
    pub(crate) significance: f64,
    pub(crate) margin: f64,
    pub(crate) holdout: f64,
    pub(crate) coverage: f64,
}

impl Default for SeasonalConfig {
    /// Forecasts to 8 hours; 5-minute buckets at run time, 22 days kept,
    /// refitted after each hour of new buckets;
    /// the mean of the 7 previous days and the same time a week earlier
    /// as anchors; 6 lagged differences; penalty 0.01 per row; a daily
    /// cycle three standard errors above zero and a 2% lower held-back
    /// error at a horizon before it replaces the short-term model there;
    /// fitted on `ln(1 + y)` when no value is negative; the newest 20% held
    /// back;
    /// 90% intervals.
    fn default() -> Self {
        Self {
            horizon: Duration::from_secs(8 * 3600),
            bucket: Duration::from_secs(300),
            history_days: 22,
            refit_every: Duration::from_secs(3600),
            days: 7,
            weeks: 1,
            lags: 6,
            alpha: 0.01,
            robust: 0,
            log: true,
            log_mean: false,
            significance: 3.0,
            margin: 0.02,
            holdout: 0.2,
            coverage: 0.9,
        }
    }
}

impl SeasonalConfig {
    /// The furthest horizon forecast (default 8 hours, at most a day).
    pub fn with_horizon(mut self, horizon: Duration) -> Self {
        self.horizon = horizon;
        self
    }

    /// At run time, the length of the buckets the seasonal history keeps
    /// when the forecaster's step is shorter (default 5 minutes; the step
    /// itself when it is longer).
    pub fn with_bucket(mut self, bucket: Duration) -> Self {
        self.bucket = bucket;
        self
    }

    /// Days of buckets kept per signal at run time (default 22: a week of
    /// warm-up for the weekly anchor, two weeks of rows and a day; 6,336
    /// buckets of 5 minutes, 50 KiB).
    pub fn with_history_days(mut self, days: usize) -> Self {
        self.history_days = days;
        self
    }

    /// At run time, how much new history (in closed buckets' time) a
    /// retrain waits for before it fits the seasonal model again (default
    /// 1 hour); retrains in between keep the chosen model and only feed
    /// it new buckets.
    pub fn with_refit_every(mut self, every: Duration) -> Self {
        self.refit_every = every;
        self
    }

    /// Previous days averaged into the daily anchor (default 7).
    pub fn with_days(mut self, days: usize) -> Self {
        self.days = days;
        self
    }

    /// Previous weeks averaged into the weekly anchor, used once two
    /// weeks of history exist (default 1; 0 for no weekly features).
    pub fn with_weeks(mut self, weeks: usize) -> Self {
        self.weeks = weeks;
        self
    }

    /// Lagged first differences among the features (default 6).
    pub fn with_lags(mut self, lags: usize) -> Self {
        self.lags = lags;
        self
    }

    /// Ridge penalty per training row on standardised features (default
    /// 0.01).
    pub fn with_alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Rounds of Huber reweighting after the least-squares fit (default
    /// 0: plain ridge), so that bursts weigh less.
    pub fn with_robust(mut self, rounds: usize) -> Self {
        self.robust = rounds;
        self
    }

    /// Fits on `ln(1 + y)` when the series has no negative value (default
    /// `true`): changes then scale with the level, and bursts weigh less.
    pub fn with_log(mut self, log: bool) -> Self {
        self.log = log;
        self
    }

    /// With a fit on logs, forecasts the mean (the median times the mean
    /// of the exponentiated residuals) instead of the median (default
    /// `false`).
    pub fn with_log_mean(mut self, mean: bool) -> Self {
        self.log_mean = mean;
        self
    }

    /// Standard errors by which the strength of the daily cycle (the
    /// day-lag autocorrelation of the series minus its trailing daily
    /// mean) must exceed zero before the seasonal model is considered
    /// (default 3).
    pub fn with_significance(mut self, z: f64) -> Self {
        self.significance = z;
        self
    }

    /// Share by which the seasonal model's held-back error must undercut
    /// the short-term model's to be chosen (default 0.02).
    pub fn with_margin(mut self, margin: f64) -> Self {
        self.margin = margin;
        self
    }

    /// Share of the newest samples held back to choose the model and to
    /// measure the interval (default 0.2).
    pub fn with_holdout(mut self, share: f64) -> Self {
        self.holdout = share;
        self
    }

    /// Nominal coverage of the prediction interval (default 0.9).
    pub fn with_coverage(mut self, coverage: f64) -> Self {
        self.coverage = coverage;
        self
    }

    /// The furthest horizon forecast.
    pub fn horizon(&self) -> Duration {
        self.horizon
    }

    /// Samples of `step_secs` that the run-time seasonal history keeps:
    /// [`with_history_days`](Self::with_history_days) days.
    pub fn history_samples(&self, step_secs: f64) -> usize {
        ((self.history_days as f64 * 86_400.0) / step_secs).ceil() as usize
    }

    /// Checks every value's range.
    pub fn validate(&self) -> Result<(), ForecastError> {
        if self.horizon.is_zero() || self.horizon > Duration::from_secs(86_400) {
            return Err(ForecastError::Config(
                "seasonal horizon must be in (0, 1 day]",
            ));
        }
        if self.bucket.is_zero() || self.bucket > Duration::from_secs(3 * 3600) {
            return Err(ForecastError::Config(
                "seasonal bucket must be in (0, 3 hours]",
            ));
        }
        if !(3..=60).contains(&self.history_days) {
            return Err(ForecastError::Config(
                "seasonal history must be 3..=60 days",
            ));
        }
        if !(1..=28).contains(&self.days) {
            return Err(ForecastError::Config("seasonal days must be in 1..=28"));
        }
        if self.weeks > 8 {
            return Err(ForecastError::Config("seasonal weeks must be at most 8"));
        }
        if self.robust > 10 {
            return Err(ForecastError::Config("robust rounds must be at most 10"));
        }
        if self.lags > 288 {
            return Err(ForecastError::Config("seasonal lags must be at most 288"));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(ForecastError::Config(
                "seasonal alpha must be finite and positive",
            ));
        }
        if !(self.significance.is_finite() && self.significance >= 0.0) {
            return Err(ForecastError::Config(
                "significance must be finite and not negative",
            ));
        }
        if !(0.0..1.0).contains(&self.margin) {
            return Err(ForecastError::Config("margin must be in [0, 1)"));
        }
        if !(self.holdout > 0.0 && self.holdout < 0.9) {
            return Err(ForecastError::Config("holdout must be in (0, 0.9)"));
        }
        if !(self.coverage > 0.0 && self.coverage < 1.0) {
            return Err(ForecastError::Config("coverage must be in (0, 1)"));
        }
        Ok(())
    }
}
