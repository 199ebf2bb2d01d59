//! A drop guard that records one request's samples, cancelled or not.

use std::fmt;

use foresight_core::instance::InstanceId;
use foresight_core::signal::HealthRecorder;
use tokio::time::Instant;

use crate::{Forecaster, Signal};

/// Records a request when dropped: one request in
/// [`Signal::RequestRate`], its latency in [`Signal::Latency`], an error in
/// [`Signal::Errors`] if [`fail`](Self::fail) was called, and the instance's
/// health signal when an instance was given.
///
/// Recording on drop counts requests whose future was cancelled too, so a
/// client that gives up on a slow instance still shows as latency.
#[must_use = "the request is recorded when the guard is dropped"]
pub struct RequestGuard {
    forecaster: Forecaster,
    instance: Option<InstanceId>,
    started: Instant,
    failed: bool,
}

impl fmt::Debug for RequestGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestGuard")
            .field("instance", &self.instance)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl RequestGuard {
    pub(crate) fn new(forecaster: Forecaster, instance: Option<InstanceId>) -> Self {
        Self {
            forecaster,
            instance,
            started: Instant::now(),
            failed: false,
        }
    }

    /// Marks the request as failed.
    pub fn fail(&mut self) {
        self.failed = true;
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let latency = self.started.elapsed().as_secs_f64();
        let f = &self.forecaster;
        f.record(Signal::RequestRate, 1.0);
        f.record(Signal::Latency, latency);
        if self.failed {
            f.record(Signal::Errors, 1.0);
        }
        if let Some(instance) = &self.instance {
            f.record_attempt(instance, self.started.elapsed(), self.failed);
        }
    }
}
