//! Forecasts in trace time, seen by the layer in simulated time.
//!
//! The forecaster works in the trace's own time: its samples carry the
//! trace's timestamps ([`Forecaster::push_at`]) and its step is
//! [`Scenario::forecast_step`](super::Scenario::forecast_step). The layer
//! lives in simulated (compressed) time: [`Compressed`] turns each horizon it
//! asks for into trace time. [`Feeder`] gives the forecaster only what has
//! already happened: a step's mean is pushed once the step has ended.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use foresight_core::signal::{Forecast, LoadSignal};
use foresight_forecast::model::{ModelConfig, SeasonalConfig};
use foresight_forecast::{Forecaster, Signal};

use super::replay::Replay;
use super::trace::Trace;
use crate::clock::{Clock, ManualClock};

/// A forecast of a trace's value at a trace time.
pub trait TraceForecast: Send + Sync + fmt::Debug + 'static {
    /// The forecast for trace time `at` (Unix seconds), `None` beyond reach.
    fn forecast_at(&self, at: f64) -> Option<Forecast>;
}

/// The trace read ahead of time: an upper bound, never a result.
#[derive(Debug, Clone)]
pub struct Oracle(pub Arc<Trace>);

impl TraceForecast for Oracle {
    fn forecast_at(&self, at: f64) -> Option<Forecast> {
        let mean = self.0.value_at(at);
        Some(Forecast {
            mean,
            lower: mean,
            upper: mean,
        })
    }
}

/// The forecaster's answer, anchored at its newest sample.
#[derive(Debug, Clone)]
pub struct Learned {
    forecaster: Forecaster,
    /// Trace time of the newest sample pushed (`f64` bits; NaN: none).
    newest: Arc<AtomicU64>,
}

impl Learned {
    /// The forecaster.
    pub fn forecaster(&self) -> &Forecaster {
        &self.forecaster
    }
}

impl TraceForecast for Learned {
    fn forecast_at(&self, at: f64) -> Option<Forecast> {
        let newest = f64::from_bits(self.newest.load(Relaxed));
        if newest.is_nan() {
            return None;
        }
        let h = Duration::from_secs_f64((at - newest).max(0.0));
        self.forecaster.forecast(Signal::RequestRate, h)
    }
}

/// Feeds a forecaster the trace as time passes: each step's mean, stamped
/// with the step's start, once the step has ended; retraining is the
/// caller's.
#[derive(Debug)]
pub struct Feeder {
    learned: Learned,
    trace: Arc<Trace>,
    step: f64,
    next: usize,
    block: Option<(f64, f64, u32)>,
}

impl Feeder {
    /// A forecaster for `replay`'s trace and its feeder, nothing pushed
    /// yet: [`Scenario::forecast_step`] steps; the short-term model (ridge
    /// per horizon with time-of-day and day-of-week features) and the
    /// seasonal model (daily and weekly anchors and a learned correction),
    /// both up to [`Scenario::forecast_reach`], the forecaster choosing per
    /// horizon on held-back data.
    ///
    /// [`Scenario::forecast_step`]: super::Scenario::forecast_step
    /// [`Scenario::forecast_reach`]: super::Scenario::forecast_reach
    pub fn new(replay: &Replay) -> Self {
        let s = replay.scenario();
        let step = s.forecast_step.max(replay.trace().step());
        let horizons = (s.forecast_reach / step).round().max(1.0) as usize;
        let capacity = ((f64::from(s.train_days + s.replay_days + 1) * 86_400.0) / step) as usize;
        let forecaster = Forecaster::builder()
            .with_step(Duration::from_secs_f64(step))
            .with_capacity(capacity.max(64))
            .with_model(
                ModelConfig::default()
                    .with_horizons(horizons)
                    .with_calendar(true),
            )
            .with_seasonal(Some(
                SeasonalConfig::default().with_horizon(Duration::from_secs_f64(s.forecast_reach)),
            ))
            .with_system_sampler(false)
            .build()
            .expect("valid forecaster settings");
        Self {
            learned: Learned {
                forecaster,
                newest: Arc::new(AtomicU64::new(f64::NAN.to_bits())),
            },
            trace: replay.trace().clone(),
            step,
            next: 0,
            block: None,
        }
    }

    /// The forecast side, to hand to the layer through [`Compressed`].
    pub fn learned(&self) -> Learned {
        self.learned.clone()
    }

    /// Pushes every step that has ended by trace time `now`; returns how
    /// many.
    pub fn advance(&mut self, now: f64) -> usize {
        let trace = self.trace.clone();
        let (times, values) = (trace.times(), trace.values());
        let sample = trace.step();
        let mut pushed = 0;
        // A sample stamped `t` covers [t, t + sample): known at its end.
        while self.next < times.len() && times[self.next] + sample <= now {
            let (t, v) = (times[self.next], values[self.next]);
            let start = (t / self.step).floor() * self.step;
            match &mut self.block {
                Some((s, sum, n)) if *s == start => {
                    *sum += v;
                    *n += 1;
                }
                _ => {
                    pushed += self.flush();
                    self.block = Some((start, v, 1));
                }
            }
            self.next += 1;
        }
        if self.block.is_some_and(|(s, _, _)| s + self.step <= now) {
            pushed += self.flush();
        }
        pushed
    }

    fn flush(&mut self) -> usize {
        let Some((start, sum, n)) = self.block.take() else {
            return 0;
        };
        self.learned
            .forecaster
            .push_at(Signal::RequestRate, start, sum / f64::from(n));
        self.learned.newest.store(start.to_bits(), Relaxed);
        1
    }
}

/// A trace-time forecast as a [`LoadSignal`] in simulated time: a horizon
/// of `h` simulated seconds is `h × compression` trace seconds.
#[derive(Debug)]
pub struct Compressed<F> {
    inner: F,
    clock: ManualClock,
    replay: Arc<Replay>,
    scan: Duration,
}

impl<F: TraceForecast> Compressed<F> {
    /// `inner` read at the simulated time of `clock`; `will_exceed` checks
    /// every forecaster step.
    pub fn new(inner: F, clock: ManualClock, replay: Arc<Replay>) -> Self {
        let s = replay.scenario();
        let scan =
            Duration::from_secs_f64(s.forecast_step / s.compression).max(Duration::from_secs(1));
        Self {
            inner,
            clock,
            replay,
            scan,
        }
    }

    fn at(&self, horizon: Duration) -> f64 {
        let now = self.clock.unix().as_secs_f64();
        self.replay.to_trace(now) + horizon.as_secs_f64() * self.replay.scenario().compression
    }
}

impl<F: TraceForecast> LoadSignal for Compressed<F> {
    fn forecast(&self, horizon: Duration) -> Option<Forecast> {
        self.inner.forecast_at(self.at(horizon))
    }

    fn will_exceed(&self, threshold: f64, within: Duration) -> Option<Duration> {
        let mut h = Duration::ZERO;
        while h <= within {
            if self.forecast(h)?.mean >= threshold {
                return Some(h);
            }
            h += self.scan;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Scenario;

    fn replay() -> Arc<Replay> {
        let mut csv = String::from("timestamp,value\n");
        for d in 0..31 {
            for h in 0..24 {
                let v = if (8..20).contains(&h) { 100 } else { 10 };
                csv.push_str(&format!("2015-01-{:02} {h:02}:00:00,{v}\n", d + 1));
            }
        }
        let trace = Arc::new(Trace::parse("daily", &csv).unwrap());
        Arc::new(Replay::new(trace, Scenario::default()).unwrap())
    }

    #[test]
    fn the_feeder_pushes_only_ended_steps() {
        let r = replay();
        let mut feeder = Feeder::new(&r);
        let first = r.trace().times()[0];
        // Hourly samples into 1-hour steps: the first is known at +1 h.
        assert_eq!(feeder.advance(first + 3599.0), 0);
        assert_eq!(feeder.advance(first + 3600.0), 1);
        assert_eq!(feeder.advance(first + 3.0 * 3600.0), 2);
        let newest = f64::from_bits(feeder.learned().newest.load(Relaxed));
        assert_eq!(newest, first + 2.0 * 3600.0);
    }

    #[test]
    fn finer_samples_are_averaged_into_a_step_once_it_has_ended() {
        // 10-minute samples (value = minute of the day / 10) into 30-minute
        // steps.
        let mut csv = String::from("timestamp,value\n");
        for d in 0..31 {
            for k in 0..144 {
                let (h, m) = (k / 6, (k % 6) * 10);
                csv.push_str(&format!("2015-01-{:02} {h:02}:{m:02}:00,{k}\n", d + 1));
            }
        }
        let trace = Arc::new(Trace::parse("fine", &csv).unwrap());
        let r = Replay::new(trace, Scenario::default()).unwrap();
        let mut feeder = Feeder::new(&r);
        let first = r.trace().times()[0];
        // Two of the first step's three samples have ended: nothing yet.
        assert_eq!(feeder.advance(first + 1200.0), 0);
        assert_eq!(feeder.advance(first + 1799.0), 0);
        assert_eq!(feeder.advance(first + 1800.0), 1);
        let newest = f64::from_bits(feeder.learned().newest.load(Relaxed));
        assert_eq!(newest, first);
        // The step's value is the mean of its samples (0, 1, 2).
        let forecast = feeder
            .learned()
            .forecaster()
            .forecast(Signal::RequestRate, Duration::ZERO);
        assert_eq!(forecast.map(|f| f.mean), Some(1.0));
    }

    #[test]
    fn compressed_horizons_read_trace_time() {
        let r = replay();
        let clock = ManualClock::new(Duration::from_secs(super::super::replay::SIM_T0));
        let (start, _) = r.window();
        let signal = Compressed::new(Oracle(r.trace().clone()), clock, r.clone());
        // The replay starts at 20:00; the load rises at 08:00, 12 trace
        // hours (1,440 simulated seconds) later.
        assert_eq!(start.rem_euclid(86_400.0), 20.0 * 3600.0);
        let onset = signal.will_exceed(50.0, Duration::from_secs(2000));
        assert_eq!(onset, Some(Duration::from_secs(1380)));
        assert_eq!(signal.will_exceed(50.0, Duration::from_secs(1000)), None);
        assert_eq!(
            signal.forecast(Duration::from_secs(1500)).unwrap().mean,
            100.0
        );
    }
}
