//! The forecaster seen through the small traits of `foresight-core`.

use std::time::Duration;

use foresight_core::instance::InstanceId;
use foresight_core::signal::{Forecast, HealthSignal, LoadSignal};

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

/// Degradation predicted from each instance's health signal (recorded with
/// [`Forecaster::record_instance`]) passing the health threshold set by
/// [`ForecasterBuilder::with_health`](crate::ForecasterBuilder::with_health).
impl HealthSignal for Forecaster {
    fn predicted_degradation(&self, instance: &InstanceId, within: Duration) -> Option<Duration> {
        self.instance_will_degrade(instance, within)
    }
}
