//! The background tasks: one closes a step every `step`, the other
//! retrains every `retrain_every`. Both hold only a weak reference, so they
//! end when the last [`Forecaster`] handle is dropped.

use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::time::{Instant, MissedTickBehavior, interval_at};

use crate::forecaster::Forecaster;
use crate::sampler::SystemSampler;
use crate::signal::Signal;

pub(crate) fn spawn(forecaster: &Forecaster, handle: &Handle) {
    let inner = &forecaster.inner;
    let weak = Arc::downgrade(inner);
    let step = inner.shape.step;
    let system = inner.system;
    handle.spawn(async move {
        let mut ticks = interval_at(Instant::now() + step, step);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut sampler = None;
        if system {
            sampler = tokio::task::spawn_blocking(SystemSampler::new).await.ok();
        }
        loop {
            ticks.tick().await;
            if let Some(mut s) = sampler.take() {
                let secs = step.as_secs_f64();
                if let Ok((s, reading)) = tokio::task::spawn_blocking(move || {
                    let r = s.sample(secs);
                    (s, r)
                })
                .await
                {
                    sampler = Some(s);
                    let Some(inner) = weak.upgrade() else { break };
                    let f = Forecaster { inner };
                    f.record(Signal::Cpu, reading.cpu);
                    f.record(Signal::Memory, reading.memory);
                    f.record(Signal::NetworkIn, reading.network_in);
                    f.record(Signal::NetworkOut, reading.network_out);
                }
            }
            let Some(inner) = weak.upgrade() else { break };
            Forecaster { inner }.tick();
        }
    });

    let weak = Arc::downgrade(inner);
    let every = inner.retrain_every;
    handle.spawn(async move {
        let mut ticks = interval_at(Instant::now() + every, every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(inner) = weak.upgrade() else { break };
            let forecaster = Forecaster { inner };
            if let Err(e) = forecaster.retrain().await {
                tracing::warn!(error = %e, "forecaster retraining failed");
            }
        }
    });
}
