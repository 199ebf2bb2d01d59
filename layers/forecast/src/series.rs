//! One tracked series: the step accumulator, the bounded history, the
//! current model and the published forecast table.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::Forecast;
use crate::accumulator::Accumulator;
use crate::buckets::Buckets;
use crate::error::FallbackReason;
use crate::history::History;
use crate::model::{Choice, Model, SeasonalModel, clean, naive_band};
use crate::signal::Aggregation;
use crate::snapshot::{Far, Snapshot};

/// Settings every series of a forecaster shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub(crate) step: Duration,
    pub(crate) capacity: usize,
    pub(crate) horizons: usize,
    pub(crate) coverage: f64,
    /// The seasonal history, when the seasonal model is on.
    pub(crate) seasonal: Option<SeasonalShape>,
}

/// The seasonal history's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeasonalShape {
    /// Seconds per bucket (at least the step).
    pub(crate) bucket: f64,
    /// Buckets kept.
    pub(crate) capacity: usize,
    /// Closed buckets between two seasonal fits.
    pub(crate) refit_every: usize,
    /// The furthest horizon answered.
    pub(crate) max_horizon: Duration,
}

impl Shape {
    /// The furthest horizon answered: the short-term model's, or the
    /// seasonal one's when longer.
    pub(crate) fn max_horizon(&self) -> Duration {
        let near = self.step * self.horizons as u32;
        self.seasonal.map_or(near, |s| near.max(s.max_horizon))
    }
}

/// A chosen seasonal model and the horizons it answers.
#[derive(Debug)]
struct SeasonalFit {
    model: SeasonalModel,
    use_seasonal: Vec<bool>,
}

#[derive(Debug)]
struct State {
    history: History,
    model: Option<Arc<Model>>,
    reason: Option<Arc<FallbackReason>>,
    naive_lower: Box<[f64]>,
    naive_upper: Box<[f64]>,
    /// The previous sample, repeated by a gauge on an empty step.
    previous: f64,
    /// Seconds since the Unix epoch of the newest sample.
    last_time: f64,
    scratch: Vec<f64>,
    buckets: Option<Buckets>,
    seasonal: Option<Arc<SeasonalFit>>,
    seasonal_reason: Option<Arc<FallbackReason>>,
    /// Buckets closed when the seasonal model was last fitted.
    fitted_at: Option<usize>,
    closed: usize,
}

/// A series' bookkeeping. `record` and `snapshot` are the request-path
/// operations (lock-free); the mutex guards state that only the step task
/// and the trainer touch.
#[derive(Debug)]
pub(crate) struct Series {
    /// Metric label.
    name: &'static str,
    aggregation: Aggregation,
    acc: Accumulator,
    state: Mutex<State>,
    snapshot: ArcSwap<Snapshot>,
    /// The reference level of the kept history (see
    /// [`Forecaster::reference_level`](crate::Forecaster::reference_level)),
    /// as `f64` bits; NaN until the first retrain.
    level: std::sync::atomic::AtomicU64,
}

/// The quantile of the kept history that is a signal's reference level.
pub(crate) const REFERENCE_QUANTILE: f64 = 0.99;

/// What a trainer needs from a series.
#[derive(Debug)]
pub(crate) struct TrainingInput {
    pub(crate) values: Vec<f64>,
    /// Time of `values[0]`, in seconds since the Unix epoch.
    pub(crate) start: f64,
}

/// A series' condition, for operators.
#[derive(Debug, Clone)]
pub struct Status {
    /// Samples in the history (never more than its capacity).
    pub samples: usize,
    /// The history's capacity.
    pub capacity: usize,
    /// Whether forecasts come from a trained model.
    pub modelled: bool,
    /// Why the forecast is naive, when it is and a retrain has run.
    pub fallback: Option<Arc<FallbackReason>>,
    /// Whether the seasonal model answers some horizons.
    pub seasonal: bool,
    /// Why the seasonal model is not used, when it is not and a seasonal
    /// fit has run (too little history, a weak cycle, not better on the
    /// held-back window).
    pub seasonal_fallback: Option<Arc<FallbackReason>>,
}

impl Series {
    pub(crate) fn new(name: &'static str, aggregation: Aggregation, shape: Shape) -> Self {
        Self {
            name,
            aggregation,
            acc: Accumulator::default(),
            state: Mutex::new(State {
                history: History::new(shape.capacity),
                model: None,
                reason: None,
                naive_lower: vec![0.0; shape.horizons].into_boxed_slice(),
                naive_upper: vec![0.0; shape.horizons].into_boxed_slice(),
                previous: f64::NAN,
                last_time: 0.0,
                scratch: Vec::new(),
                buckets: shape
                    .seasonal
                    .map(|s| Buckets::new(s.bucket, shape.step.as_secs_f64(), s.capacity)),
                seasonal: None,
                seasonal_reason: None,
                fitted_at: None,
                closed: 0,
            }),
            snapshot: ArcSwap::from_pointee(Snapshot::empty(shape.step)),
            level: std::sync::atomic::AtomicU64::new(f64::NAN.to_bits()),
        }
    }

    pub(crate) fn record(&self, value: f64) {
        self.acc.record(value);
    }

    pub(crate) fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every
        // update is a single assignment), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes the current step at `now` (seconds since the Unix epoch) and
    /// republishes the forecasts.
    pub(crate) fn tick(&self, shape: Shape, now: f64) {
        let (sum, count) = self.acc.take();
        let mut state = self.lock();
        let value = match self.aggregation {
            Aggregation::Rate => sum / shape.step.as_secs_f64(),
            Aggregation::Mean if count > 0 => sum / count as f64,
            Aggregation::Mean => f64::NAN,
            Aggregation::Gauge if count > 0 => sum / count as f64,
            Aggregation::Gauge => state.previous,
        };
        if value.is_finite() {
            state.previous = value;
            // How far the one-step forecast published a step ago missed.
            if let Some(f) = self.snapshot.load().forecast(shape.step) {
                metrics::histogram!("foresight_forecast_abs_error", "signal" => self.name)
                    .record((value - f.mean).abs());
            }
        }
        state.history.push(value);
        state.last_time = now;
        // The step's sample stands for the step that just ended.
        Self::bucket(&mut state, now - shape.step.as_secs_f64(), value);
        self.publish(&mut state, shape);
    }

    fn bucket(state: &mut State, time: f64, value: f64) {
        if let Some(b) = state.buckets.as_mut() {
            let last = b.last_time();
            b.push(time, value);
            if b.last_time() != last {
                state.closed += 1;
            }
        }
    }

    /// Pushes one sample directly (no aggregation) and republishes.
    pub(crate) fn push(&self, value: f64, shape: Shape, now: f64) {
        let mut state = self.lock();
        if value.is_finite() {
            state.previous = value;
        }
        state.history.push(value);
        state.last_time = now;
        Self::bucket(&mut state, now, value);
        self.publish(&mut state, shape);
    }

    /// The closed buckets, when the seasonal model is on and due for a
    /// fit (never fitted, or `refit_every` buckets closed since).
    /// Sets the reference level from `values` (the longest history the
    /// series keeps): their [`REFERENCE_QUANTILE`] quantile, ignoring gaps.
    pub(crate) fn set_level(&self, values: &[f64]) {
        let mut finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if finite.is_empty() {
            return;
        }
        let rank = ((finite.len() - 1) as f64 * REFERENCE_QUANTILE).round() as usize;
        let (_, level, _) = finite.select_nth_unstable_by(rank, f64::total_cmp);
        self.level
            .store(level.to_bits(), std::sync::atomic::Ordering::Relaxed);
    }

    /// The reference level, once known.
    pub(crate) fn level(&self) -> Option<f64> {
        let level = f64::from_bits(self.level.load(std::sync::atomic::Ordering::Relaxed));
        level.is_finite().then_some(level)
    }

    pub(crate) fn seasonal_input(&self, shape: Shape) -> Option<Vec<f64>> {
        let season = shape.seasonal?;
        let state = self.lock();
        let buckets = state.buckets.as_ref()?;
        let due = state
            .fitted_at
            .is_none_or(|at| state.closed >= at + season.refit_every.max(1));
        if !due || buckets.len() == 0 {
            return None;
        }
        let mut values = Vec::with_capacity(buckets.len());
        buckets.copy_into(&mut values);
        Some(values)
    }

    /// Installs the outcome of a seasonal choice and republishes.
    pub(crate) fn install_seasonal(&self, choice: Choice, shape: Shape) {
        let mut state = self.lock();
        state.fitted_at = Some(state.closed);
        match choice.seasonal {
            Some(model) => {
                state.seasonal = Some(Arc::new(SeasonalFit {
                    model,
                    use_seasonal: choice.use_seasonal,
                }));
                state.seasonal_reason = None;
            }
            None => {
                state.seasonal = None;
                state.seasonal_reason = choice.kept_short.map(Arc::new);
            }
        }
        self.publish(&mut state, shape);
    }

    pub(crate) fn training_input(&self, step: Duration) -> Option<TrainingInput> {
        let state = self.lock();
        if state.history.len() == 0 {
            return None;
        }
        let mut values = Vec::with_capacity(state.history.len());
        state.history.copy_into(&mut values);
        let start = state.last_time - step.as_secs_f64() * (values.len() - 1) as f64;
        Some(TrainingInput { values, start })
    }

    /// Installs the result of a training run and republishes.
    pub(crate) fn install(
        &self,
        result: Result<Model, FallbackReason>,
        input: &TrainingInput,
        shape: Shape,
    ) {
        let mut state = self.lock();
        match result {
            Ok(model) => {
                state.model = Some(Arc::new(model));
                state.reason = None;
            }
            Err(reason) => {
                tracing::debug!(signal = self.name, %reason, "naive forecast");
                metrics::counter!("foresight_forecast_fallbacks", "signal" => self.name)
                    .increment(1);
                let mut y = Vec::new();
                if clean(&input.values, &mut y).is_ok() {
                    let (lo, hi) = naive_band(&y, shape.horizons, shape.coverage);
                    state.naive_lower = lo;
                    state.naive_upper = hi;
                }
                state.model = None;
                state.reason = Some(Arc::new(reason));
            }
        }
        self.publish(&mut state, shape);
    }

    pub(crate) fn status(&self) -> Status {
        let state = self.lock();
        Status {
            samples: state.history.len(),
            capacity: state.history.capacity(),
            modelled: self.snapshot.load().modelled(),
            fallback: state.reason.clone(),
            seasonal: state.seasonal.is_some(),
            seasonal_fallback: state.seasonal_reason.clone(),
        }
    }

    fn publish(&self, state: &mut State, shape: Shape) {
        let State {
            history,
            model,
            scratch,
            ..
        } = state;
        let mut table = vec![
            Forecast {
                mean: f64::NAN,
                lower: f64::NAN,
                upper: f64::NAN,
            };
            shape.horizons
        ];
        let mut modelled = false;
        if let Some(model) = model {
            history.copy_tail(model.context(), scratch);
            modelled = model
                .predict(scratch, Some(state.last_time), &mut table)
                .is_ok();
        }
        history.copy_tail(1, scratch);
        let last = scratch.first().copied().unwrap_or(f64::NAN);
        let last = if last.is_finite() {
            last
        } else {
            state.previous
        };
        if !last.is_finite() {
            self.snapshot.store(Arc::new(Snapshot::empty(shape.step)));
            return;
        }
        if !modelled {
            for (h, f) in table.iter_mut().enumerate() {
                *f = Forecast {
                    mean: last,
                    lower: last + state.naive_lower[h],
                    upper: last + state.naive_upper[h],
                };
            }
        }
        let far = Self::seasonal_table(state, shape, &mut table);
        self.snapshot.store(Arc::new(
            Snapshot::new(table.into_boxed_slice(), last, shape.step, modelled)
                .with_far(far, shape.max_horizon()),
        ));
    }

    /// The seasonal model's forecasts from the newest closed buckets.
    /// When a bucket is one step, they replace the short-term forecasts in
    /// `table` at the horizons where the model was chosen (and extend it,
    /// holding the short-term model's last forecast where it was not);
    /// otherwise they form the far table read beyond `table`.
    fn seasonal_table(state: &mut State, shape: Shape, table: &mut Vec<Forecast>) -> Option<Far> {
        let fit = state.seasonal.as_ref()?;
        let buckets = state.buckets.as_ref()?;
        let origin = buckets.last_time()?;
        let bucket = buckets.bucket();
        buckets.copy_tail(fit.model.context(), &mut state.scratch);
        let nan = Forecast {
            mean: f64::NAN,
            lower: f64::NAN,
            upper: f64::NAN,
        };
        let mut far = vec![nan; fit.model.horizons()];
        fit.model.predict(&state.scratch, &mut far).ok()?;
        for (f, used) in far.iter_mut().zip(&fit.use_seasonal) {
            if !used {
                *f = nan;
            }
        }
        let step = shape.step.as_secs_f64();
        let lag = state.last_time - origin;
        if (bucket - step).abs() > 1e-9 || !buckets.fresh() || table.is_empty() {
            return Some(Far {
                table: far.into_boxed_slice(),
                lag,
                bucket_secs: bucket,
            });
        }
        let held = table[table.len() - 1];
        table.resize(table.len().max(far.len()), held);
        for (t, f) in table.iter_mut().zip(&far) {
            if f.mean.is_finite() {
                *t = *f;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    fn shape() -> Shape {
        Shape {
            step: Duration::from_secs(1),
            capacity: 16,
            horizons: 4,
            coverage: 0.9,
            seasonal: None,
        }
    }

    /// Reads and records never wait for the state a trainer or the step
    /// task holds.
    #[test]
    fn reads_do_not_take_the_state_lock() {
        let series = Arc::new(Series::new("test", Aggregation::Gauge, shape()));
        series.push(3.0, shape(), 0.0);
        let held = series.lock();
        let (tx, rx) = mpsc::channel();
        let reader = {
            let series = series.clone();
            std::thread::spawn(move || {
                series.record(1.0);
                let f = series.snapshot().forecast(Duration::from_secs(2));
                tx.send(f).expect("receiver alive");
            })
        };
        // Bounded wait so that a regression fails instead of hanging.
        let f = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("read completed while the lock was held");
        assert_eq!(f.map(|f| f.mean), Some(3.0));
        drop(held);
        reader.join().expect("reader");
    }

    #[test]
    fn aggregations() {
        let s = shape();
        let rate = Series::new("rate", Aggregation::Rate, s);
        let mean = Series::new("mean", Aggregation::Mean, s);
        let gauge = Series::new("gauge", Aggregation::Gauge, s);
        for v in [1.0, 3.0] {
            rate.record(v);
            mean.record(v);
            gauge.record(v);
        }
        for series in [&rate, &mean, &gauge] {
            series.tick(s, 0.0);
        }
        let now = |series: &Series| series.snapshot().forecast(Duration::ZERO).map(|f| f.mean);
        assert_eq!(now(&rate), Some(4.0));
        assert_eq!(now(&mean), Some(2.0));
        assert_eq!(now(&gauge), Some(2.0));
        for series in [&rate, &mean, &gauge] {
            series.tick(s, 1.0);
        }
        // An empty step: no events, a gap (last value kept), an unmoved gauge.
        assert_eq!(now(&rate), Some(0.0));
        assert_eq!(now(&mean), Some(2.0));
        assert_eq!(now(&gauge), Some(2.0));
        assert_eq!(mean.status().samples, 2);
    }
}
