//! What a model is trained on and how.

use crate::error::ForecastError;

/// Which smartcore estimator regresses the future change of the series.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum ModelKind {
    /// Ridge regression (`smartcore::linear::ridge_regression`), one model
    /// per horizon. Trains in milliseconds; the default.
    Ridge,
    /// Random forest (`smartcore::ensemble::random_forest_regressor`), one
    /// forest per horizon. Much slower to train, kept for comparison.
    Forest {
        /// Trees per forest.
        trees: usize,
        /// Maximum depth of a tree.
        max_depth: u16,
    },
}

/// Model settings: features, horizons, regularisation and intervals.
///
/// Every model regresses the change `y[t+h] − y[t]` on features that do not
/// depend on the level of the series (lagged first differences, distance
/// from recent means, time of day), so a level shift moves the forecast with
/// it instead of breaking it. The defaults are the settings that did best on
/// the development series (see the crate's README).
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct ModelConfig {
    pub(crate) kind: ModelKind,
    pub(crate) lags: usize,
    pub(crate) lag_choices: Vec<usize>,
    pub(crate) horizons: usize,
    pub(crate) alpha: f64,
    pub(crate) alpha_choices: Vec<f64>,
    pub(crate) windows: Vec<usize>,
    pub(crate) calendar: bool,
    pub(crate) clip: Option<f64>,
    pub(crate) drift: bool,
    pub(crate) holdout: f64,
    pub(crate) coverage: f64,
}

impl Default for ModelConfig {
    /// Ridge on 12 lagged differences without drift, 12 horizons, penalty
    /// 0.01 per row, no clipping, no window or calendar features, a 20%
    /// held-back window and 90% intervals.
    fn default() -> Self {
        Self {
            kind: ModelKind::Ridge,
            lags: 12,
            lag_choices: Vec::new(),
            horizons: 12,
            alpha: 0.01,
            alpha_choices: Vec::new(),
            windows: Vec::new(),
            calendar: false,
            clip: None,
            drift: false,
            holdout: 0.2,
            coverage: 0.9,
        }
    }
}

impl ModelConfig {
    /// The estimator.
    pub fn with_kind(mut self, kind: ModelKind) -> Self {
        self.kind = kind;
        self
    }

    /// Number of lagged first differences used as features (at least 1).
    pub fn with_lags(mut self, lags: usize) -> Self {
        self.lags = lags;
        self
    }

    /// Lag counts to choose from on the held-back window (with the
    /// penalties of [`with_alpha_choices`](Self::with_alpha_choices));
    /// empty to always use [`with_lags`](Self::with_lags).
    pub fn with_lag_choices(mut self, choices: Vec<usize>) -> Self {
        self.lag_choices = choices;
        self
    }

    /// Ridge penalties to choose from on the held-back window; empty to
    /// always use [`with_alpha`](Self::with_alpha).
    pub fn with_alpha_choices(mut self, choices: Vec<f64>) -> Self {
        self.alpha_choices = choices;
        self
    }

    /// Number of horizons, in steps: one model each for 1..=`horizons`.
    pub fn with_horizons(mut self, horizons: usize) -> Self {
        self.horizons = horizons;
        self
    }

    /// Ridge penalty, per training row, on standardised features.
    pub fn with_alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Windows (in steps) of the "distance from the recent mean" features
    /// `y[t] − mean(y[t−w+1..=t])`; empty for none.
    pub fn with_windows(mut self, windows: Vec<usize>) -> Self {
        self.windows = windows;
        self
    }

    /// Adds time-of-day and day-of-week features (sine and cosine of each
    /// phase). Needs sample times.
    pub fn with_calendar(mut self, calendar: bool) -> Self {
        self.calendar = calendar;
        self
    }

    /// Clips differences and targets at `k` times the median absolute first
    /// difference before fitting, so that a few level shifts do not dominate
    /// the squared loss; `None` to fit on raw values.
    pub fn with_clip(mut self, k: Option<f64>) -> Self {
        self.clip = k;
        self
    }

    /// Fits an intercept per horizon (a drift: the mean change seen in
    /// training) for ridge models. Off by default: the fit goes through the
    /// origin, like an ARIMA(p, 1, q) without constant, because a drift
    /// measured over a few weeks mostly records past level shifts.
    pub fn with_drift(mut self, drift: bool) -> Self {
        self.drift = drift;
        self
    }

    /// Share of the newest training rows held back to measure residuals for
    /// the prediction intervals.
    pub fn with_holdout(mut self, share: f64) -> Self {
        self.holdout = share;
        self
    }

    /// Nominal coverage of the prediction interval (0.9 gives the 5% and 95%
    /// residual quantiles).
    pub fn with_coverage(mut self, coverage: f64) -> Self {
        self.coverage = coverage;
        self
    }

    /// Number of horizons, in steps.
    pub fn horizons(&self) -> usize {
        self.horizons
    }

    /// Checks every value's range.
    pub fn validate(&self) -> Result<(), ForecastError> {
        if self.lags == 0 || self.lags > 288 {
            return Err(ForecastError::Config("lags must be in 1..=288"));
        }
        if self.lag_choices.iter().any(|l| !(1..=288).contains(l)) {
            return Err(ForecastError::Config("lag choices must be in 1..=288"));
        }
        if self
            .alpha_choices
            .iter()
            .any(|a| !(a.is_finite() && *a > 0.0))
        {
            return Err(ForecastError::Config(
                "alpha choices must be finite and positive",
            ));
        }
        if self.horizons == 0 || self.horizons > 1024 {
            return Err(ForecastError::Config("horizons must be in 1..=1024"));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(ForecastError::Config("alpha must be finite and positive"));
        }
        if self.windows.iter().any(|w| !(2..=100_000).contains(w)) {
            return Err(ForecastError::Config("windows must be in 2..=100000"));
        }
        if self.clip.is_some_and(|k| !(k.is_finite() && k > 0.0)) {
            return Err(ForecastError::Config("clip must be finite and positive"));
        }
        if !(self.holdout > 0.0 && self.holdout < 0.9) {
            return Err(ForecastError::Config("holdout must be in (0, 0.9)"));
        }
        if !(self.coverage > 0.0 && self.coverage < 1.0) {
            return Err(ForecastError::Config("coverage must be in (0, 1)"));
        }
        if let ModelKind::Forest { trees, max_depth } = self.kind
            && (trees == 0 || max_depth == 0)
        {
            return Err(ForecastError::Config("a forest needs trees and depth"));
        }
        Ok(())
    }
}
