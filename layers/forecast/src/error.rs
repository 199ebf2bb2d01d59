//! Typed errors and the reasons a series falls back to the naive forecast.

use thiserror::Error;

/// Why a series is forecast naively (last value carried forward) instead of
/// by a trained model.
///
/// A fallback is not a failure: the forecaster keeps answering, and the
/// reason is visible through [`Forecaster::status`](crate::Forecaster::status)
/// so that an operator can tell a cold start from a broken input.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FallbackReason {
    /// Nothing has been recorded yet.
    #[error("no samples recorded yet")]
    NoData,
    /// Every recorded sample is NaN or infinite.
    #[error("no finite sample among {samples} recorded")]
    NonFinite {
        /// How many samples the history held.
        samples: usize,
    },
    /// The history is shorter than the lag window plus the horizons and the
    /// held-back window need.
    #[error("history too short: {have} samples, a model needs {need}")]
    TooShort {
        /// Samples in the history.
        have: usize,
        /// Samples needed before a model is trained.
        need: usize,
    },
    /// The series never changes, so the naive forecast is exact.
    #[error("constant series")]
    Constant,
    /// The seasonal model was not considered: the daily cycle is too weak
    /// (see [`SeasonalConfig::with_significance`](crate::model::SeasonalConfig::with_significance)).
    #[error("daily cycle too weak: strength {strength:.3}")]
    WeakCycle {
        /// The measured strength (NaN when it could not be measured).
        strength: f64,
    },
    /// The seasonal model did not forecast the held-back window enough
    /// better than the short-term model.
    #[error("seasonal model not better on the held-back window: MAE {seasonal:.4} vs {short:.4}")]
    NotBetter {
        /// Held-back mean absolute error of the seasonal model.
        seasonal: f64,
        /// Held-back mean absolute error of the short-term model.
        short: f64,
    },
    /// The regression itself failed (a singular system, for instance).
    #[error("model training failed")]
    Training(#[source] smartcore::error::Failed),
}

/// Errors returned by the forecaster's fallible operations.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ForecastError {
    /// Background tasks need a Tokio runtime and none is running.
    #[error("the forecaster's background tasks need a Tokio runtime")]
    NoRuntime(#[source] tokio::runtime::TryCurrentError),
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// A background training job panicked or was cancelled.
    #[error("background training job did not complete")]
    Join(#[source] tokio::task::JoinError),
}
