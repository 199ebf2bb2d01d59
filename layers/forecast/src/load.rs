//! The forecaster seen through the small traits of `foresight-core`.

use std::time::Duration;

use foresight_core::instance::InstanceId;
use foresight_core::signal::{Forecast, HealthRecorder, HealthSignal, LoadSignal};

use crate::{Forecaster, Signal};

/// One signal of a [`Forecaster`] as a
/// [`LoadSignal`](foresight_core::signal::LoadSignal), for a layer that
/// needs "the load" without knowing the forecaster (TokenPrefetchLayer
/// takes the request rate this way). Cloning shares the forecaster.
#[derive(Debug, Clone)]
pub struct SignalHandle {
    forecaster: Forecaster,
    signal: Signal,
}

impl SignalHandle {
    pub(crate) fn new(forecaster: Forecaster, signal: Signal) -> Self {
        Self { forecaster, signal }
    }

    /// The signal this handle reads.
    pub fn signal(&self) -> Signal {
        self.signal
    }
}

impl LoadSignal for SignalHandle {
    fn forecast(&self, horizon: Duration) -> Option<Forecast> {
        self.forecaster.forecast(self.signal, horizon)
    }

    fn will_exceed(&self, threshold: f64, within: Duration) -> Option<Duration> {
        self.forecaster.will_exceed(self.signal, threshold, within)
    }
}

/// One signal of a [`Forecaster`] relative to its reference level (see
/// [`Forecaster::relative_signal`]): a forecast of `0.5` is half the 99th
/// percentile of the kept history. Cloning shares the forecaster.
#[derive(Debug, Clone)]
pub struct RelativeSignal {
    forecaster: Forecaster,
    signal: Signal,
}

impl RelativeSignal {
    pub(crate) fn new(forecaster: Forecaster, signal: Signal) -> Self {
        Self { forecaster, signal }
    }

    fn level(&self) -> Option<f64> {
        self.forecaster
            .reference_level(self.signal)
            .filter(|level| *level > 0.0)
    }
}

impl LoadSignal for RelativeSignal {
    fn forecast(&self, horizon: Duration) -> Option<Forecast> {
        let level = self.level()?;
        let f = self.forecaster.forecast(self.signal, horizon)?;
        Some(Forecast {
            mean: f.mean / level,
            lower: f.lower / level,
            upper: f.upper / level,
        })
    }

    fn will_exceed(&self, threshold: f64, within: Duration) -> Option<Duration> {
        let level = self.level()?;
        self.forecaster
            .will_exceed(self.signal, threshold * level, within)
    }
}

/// Degradation predicted from each instance's health signal (recorded with
/// [`Forecaster::record_instance`]) passing the health threshold set by
/// [`ForecasterBuilder::with_health`](crate::ForecasterBuilder::with_health).
impl HealthSignal for Forecaster {
    fn predicted_degradation(&self, instance: &InstanceId, within: Duration) -> Option<Duration> {
        self.instance_will_degrade(instance, within)
    }
}

/// Live attempts as the per-instance health signal: latency in seconds by
/// default, or one error per failed attempt when the health signal is
/// [`Signal::Errors`] (see
/// [`ForecasterBuilder::with_health`](crate::ForecasterBuilder::with_health)).
impl HealthRecorder for Forecaster {
    fn record_attempt(&self, instance: &InstanceId, latency: Duration, failed: bool) {
        match self.inner.health_signal {
            Signal::Errors if failed => self.record_instance(instance, 1.0),
            Signal::Errors => {}
            _ => self.record_instance(instance, latency.as_secs_f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forecaster(health: Signal, threshold: f64) -> Forecaster {
        Forecaster::builder()
            .with_step(Duration::from_secs(1))
            .with_system_sampler(false)
            .with_health(health, threshold)
            .build()
            .expect("valid settings")
    }

    #[test]
    fn a_relative_signal_reads_fractions_of_the_reference_level() {
        let f = forecaster(Signal::Latency, 0.05);
        let relative = f.relative_signal(Signal::RequestRate);
        for i in 0..200 {
            f.push(Signal::RequestRate, f64::from(i % 100));
        }
        assert_eq!(
            relative.forecast(Duration::ZERO),
            None,
            "no level before a retrain"
        );
        f.retrain_blocking();
        let level = f.reference_level(Signal::RequestRate).expect("a level");
        assert_eq!(level, 98.0);
        let now = relative.forecast(Duration::ZERO).expect("a forecast");
        let absolute = f.forecast(Signal::RequestRate, Duration::ZERO).unwrap();
        assert!((now.mean - absolute.mean / 98.0).abs() < 1e-12);
        assert_eq!(
            relative.will_exceed(0.5, Duration::from_secs(1)),
            f.will_exceed(Signal::RequestRate, 49.0, Duration::from_secs(1))
        );
    }

    #[test]
    fn attempts_feed_the_instance_latency() {
        let f = forecaster(Signal::Latency, 0.05);
        let a = InstanceId::from("a");
        f.record_attempt(&a, Duration::from_millis(40), false);
        f.record_attempt(&a, Duration::from_millis(60), true);
        f.tick();
        let now = f.instance_forecast(&a, Duration::ZERO).expect("a sample");
        assert!((now.mean - 0.05).abs() < 1e-9, "{now:?}");
        assert_eq!(f.predicted_degradation(&a, Duration::from_secs(1)), None);
    }

    #[test]
    fn with_errors_as_health_only_failed_attempts_count() {
        let f = forecaster(Signal::Errors, 0.5);
        let a = InstanceId::from("a");
        f.record_attempt(&a, Duration::from_millis(40), true);
        f.tick();
        assert_eq!(
            f.instance_forecast(&a, Duration::ZERO).map(|x| x.mean),
            Some(1.0)
        );
        f.record_attempt(&a, Duration::from_millis(40), false);
        f.tick();
        assert_eq!(
            f.instance_forecast(&a, Duration::ZERO).map(|x| x.mean),
            Some(0.0)
        );
    }
}
