//! The seasonal protocol (demand series with daily and weekly cycles):
//! horizons of one step, one hour and six hours, a peak alarm one hour
//! ahead and the onsets of peaks caught one and six hours ahead.

use tokio::time::Instant;

use super::TRAIN_SHARE;
use super::csv::Series;
use super::score::{AlarmCounts, HorizonScore};
use crate::model::{ModelConfig, SeasonalConfig, Times, choose, train, train_seasonal};
use crate::stats::{mean_abs_diff, quantile};

/// Horizons of the seasonal protocol, in seconds (the first, zero, means
/// one step).
pub const SEASONAL_HORIZONS: [u64; 3] = [0, 3600, 6 * 3600];

/// Which forecasts the seasonal protocol scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidate {
    /// The model the forecaster chooses per series on the held-back
    /// window (the default).
    Chosen,
    /// The short-term model alone, held flat beyond its last horizon.
    Short,
    /// The seasonal model alone.
    Seasonal,
}

/// The seasonal-protocol evaluation of one series.
#[derive(Debug, Clone)]
pub struct SeasonalReport {
    /// Series name.
    pub name: String,
    /// Seconds between samples (the median spacing).
    pub step_secs: f64,
    /// The horizons in steps: one step, one hour, six hours.
    pub steps: [usize; 3],
    /// One score per horizon.
    pub horizons: [HorizonScore; 3],
    /// Model alarms one hour ahead.
    pub alarm: AlarmCounts,
    /// Naive alarms one hour ahead.
    pub naive_alarm: AlarmCounts,
    /// Onsets of peaks in the test part.
    pub onsets: usize,
    /// Onsets caught one hour and six hours ahead.
    pub caught: [usize; 2],
    /// Seconds to fit (and choose) and produce every rolling forecast.
    pub seconds: f64,
    /// Which model forecast the test part.
    pub model: &'static str,
    /// Why the short-term model was kept or a fallback used, if so.
    pub note: Option<String>,
}

/// The median spacing of `times`, in seconds.
pub fn median_step(times: &[f64]) -> f64 {
    let mut d: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    quantile(&mut d, 0.5)
}

/// Runs the seasonal protocol on one series: fitted (and the model
/// chosen) once on the first 80%, then fed every new observation of the
/// last 20% without refitting. With `bounded`, the fits see only the
/// newest [`SeasonalConfig::history_samples`] of the training part, as
/// the run-time forecaster does.
pub fn evaluate_seasonal(
    series: &Series,
    short: &ModelConfig,
    seasonal: &SeasonalConfig,
    candidate: Candidate,
    bounded: bool,
) -> SeasonalReport {
    let y = &series.values;
    let n = y.len();
    let step_secs = median_step(&series.times);
    let steps = SEASONAL_HORIZONS.map(|s| ((s as f64 / step_secs).round() as usize).max(1));
    let n_train = ((n as f64) * TRAIN_SHARE).round() as usize;
    let train_part = &y[..n_train];
    let scale = mean_abs_diff(train_part);
    let threshold = quantile(&mut train_part.to_vec(), 0.9);
    let origins = n_train.saturating_sub(1)..n;
    let from = if bounded {
        n_train.saturating_sub(seasonal.history_samples(step_secs))
    } else {
        0
    };
    let fit_part = &y[from..n_train];

    let started = Instant::now();
    let mut note = None;
    let times = Times::Explicit(&series.times);
    let short_hs = short.horizons();
    let short_preds = match candidate {
        Candidate::Seasonal => None,
        _ => train(
            fit_part,
            Times::Explicit(&series.times[from..n_train]),
            short,
        )
        .and_then(|m| m.backtest(y, times, origins.clone()))
        .map_err(|e| note = Some(e.to_string()))
        .ok(),
    };
    let mut use_seasonal = Vec::new();
    let seasonal_model = match candidate {
        Candidate::Short => None,
        Candidate::Seasonal => train_seasonal(fit_part, step_secs, seasonal)
            .map_err(|e| note = Some(e.to_string()))
            .ok(),
        Candidate::Chosen => {
            let choice = choose(fit_part, step_secs, short, seasonal);
            note = Some(match choice.kept_short {
                Some(reason) => reason.to_string(),
                None => format!(
                    "strength {:.3}, held-back MAE {:.4} vs {:.4}",
                    choice.strength, choice.errors.0, choice.errors.1
                ),
            });
            use_seasonal = choice.use_seasonal;
            choice.seasonal
        }
    };
    let seasonal_preds = seasonal_model
        .as_ref()
        .and_then(|m| m.backtest(y, origins.clone()).ok());
    let seconds = started.elapsed().as_secs_f64();
    let model = if seasonal_preds.is_some() {
        "seasonal"
    } else if short_preds.is_some() {
        "short-term"
    } else {
        "naive"
    };
    let season_hs = seasonal_model.as_ref().map_or(1, |m| m.horizons());
    // The forecast made at origin `t` for `h` steps ahead.
    let forecast = |t: usize, h: usize| -> f64 {
        let r = t - origins.start;
        let value = match (&seasonal_preds, &short_preds) {
            (Some(p), _) if h <= season_hs && use_seasonal.get(h - 1).copied().unwrap_or(true) => {
                p[r * season_hs + h - 1]
            }
            (_, Some(p)) => p[r * short_hs + h.min(short_hs) - 1],
            _ => f64::NAN,
        };
        if value.is_finite() { value } else { y[t] }
    };

    let mut scores = [HorizonScore::default(); 3];
    let mut alarm = AlarmCounts::default();
    let mut naive_alarm = AlarmCounts::default();
    for (k, &h) in steps.iter().enumerate() {
        let (mut err, mut naive_err, mut count) = (0.0, 0.0, 0usize);
        for t in origins.clone() {
            if t + h >= n {
                break;
            }
            let (actual, naive, f) = (y[t + h], y[t], forecast(t, h));
            if actual.is_finite() && naive.is_finite() {
                err += (f - actual).abs();
                naive_err += (naive - actual).abs();
                count += 1;
            }
            if k == 1 {
                let event = actual > threshold;
                alarm.count(f > threshold, event);
                naive_alarm.count(naive > threshold, event);
            }
        }
        let c = count.max(1) as f64;
        scores[k] = HorizonScore {
            mae: err / c,
            naive_mae: naive_err / c,
            mase: err / c / scale,
            naive_mase: naive_err / c / scale,
        };
    }

    // An onset: above the threshold after at least an hour at or below.
    let hour = steps[1];
    let (mut onsets, mut caught) = (0, [0, 0]);
    for j in n_train.max(hour)..n {
        if !(y[j] > threshold && y[j - hour..j].iter().all(|v| *v <= threshold)) {
            continue;
        }
        onsets += 1;
        for (c, &h) in caught.iter_mut().zip(&steps[1..]) {
            // Only origins in the test part count; earlier ones are missed.
            if j >= h && j - h >= origins.start && forecast(j - h, h) > threshold {
                *c += 1;
            }
        }
    }
    SeasonalReport {
        name: series.name.clone(),
        step_secs,
        steps,
        horizons: scores,
        alarm,
        naive_alarm,
        onsets,
        caught,
        seconds,
        model,
        note,
    }
}
