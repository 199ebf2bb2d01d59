//! Small traits through which predictions reach the layers, so that a layer
//! depends on a signal, not on a forecasting engine.

use std::time::Duration;

use crate::instance::InstanceId;

/// A point forecast with a prediction interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Forecast {
    /// Expected value.
    pub mean: f64,
    /// Lower bound of the prediction interval.
    pub lower: f64,
    /// Upper bound of the prediction interval.
    pub upper: f64,
}

/// A predicted load signal (request rate, CPU, active sessions…).
///
/// Implementations answer from a precomputed snapshot: these methods run on
/// the request path and must not block or allocate.
pub trait LoadSignal: Send + Sync + 'static {
    /// The forecast `horizon` ahead, or `None` when there is no model yet.
    fn forecast(&self, horizon: Duration) -> Option<Forecast>;

    /// How long until the load is predicted to pass `threshold`, if it does
    /// within `within`.
    fn will_exceed(&self, threshold: f64, within: Duration) -> Option<Duration>;
}

/// A per-instance degradation signal, so a failover layer can act before an
/// instance fails.
pub trait HealthSignal: Send + Sync + 'static {
    /// How long until `instance` is predicted to degrade, if it is within
    /// `within`. `Some(Duration::ZERO)` means it is degraded now.
    fn predicted_degradation(&self, instance: &InstanceId, within: Duration) -> Option<Duration>;
}

/// Where a layer reports what it observed of each instance, so that a
/// forecaster can learn from live traffic what it later predicts through
/// [`HealthSignal`].
///
/// Implementations run on the request path: they must not block and should
/// not allocate.
pub trait HealthRecorder: Send + Sync + 'static {
    /// One attempt on `instance` finished after `latency`; `failed` is true
    /// only when the instance caused the failure (connect error, reset,
    /// timeout, 5xx), never for a client's bad request.
    fn record_attempt(&self, instance: &InstanceId, latency: Duration, failed: bool);
}

impl<T: HealthRecorder + ?Sized> HealthRecorder for std::sync::Arc<T> {
    fn record_attempt(&self, instance: &InstanceId, latency: Duration, failed: bool) {
        (**self).record_attempt(instance, latency, failed)
    }
}

impl<T: LoadSignal + ?Sized> LoadSignal for std::sync::Arc<T> {
    fn forecast(&self, horizon: Duration) -> Option<Forecast> {
        (**self).forecast(horizon)
    }

    fn will_exceed(&self, threshold: f64, within: Duration) -> Option<Duration> {
        (**self).will_exceed(threshold, within)
    }
}

impl<T: HealthSignal + ?Sized> HealthSignal for std::sync::Arc<T> {
    fn predicted_degradation(&self, instance: &InstanceId, within: Duration) -> Option<Duration> {
        (**self).predicted_degradation(instance, within)
    }
}
