//! Scoring one series: rolling-origin errors and threshold alarms.

use tokio::time::Instant;

use super::csv::Series;
use super::seasonal::median_step;
use super::{ALARM_HORIZON, HORIZONS, TRAIN_SHARE};
use crate::model::{ModelConfig, SeasonalConfig, Times, choose, train};
use crate::stats::{mean_abs_diff, quantile};

/// Errors of one horizon over one series.
#[derive(Debug, Clone, Copy, Default)]
pub struct HorizonScore {
    /// Mean absolute error of the model.
    pub mae: f64,
    /// Mean absolute error of the naive (last value) forecast.
    pub naive_mae: f64,
    /// MAE over the in-sample one-step naive MAE of the training part.
    pub mase: f64,
    /// The naive forecast's MASE.
    pub naive_mase: f64,
}

/// Threshold-alarm counts at [`ALARM_HORIZON`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AlarmCounts {
    /// Alarm raised and the value passed the threshold.
    pub true_positive: u64,
    /// Alarm raised, value stayed below.
    pub false_positive: u64,
    /// No alarm, value passed the threshold.
    pub false_negative: u64,
}

impl AlarmCounts {
    pub(super) fn add(&mut self, o: &AlarmCounts) {
        self.true_positive += o.true_positive;
        self.false_positive += o.false_positive;
        self.false_negative += o.false_negative;
    }

    /// Counts one origin: whether an alarm was raised and whether the
    /// event happened.
    pub(super) fn count(&mut self, alarm: bool, event: bool) {
        match (alarm, event) {
            (true, true) => self.true_positive += 1,
            (true, false) => self.false_positive += 1,
            (false, true) => self.false_negative += 1,
            (false, false) => {}
        }
    }

    /// Share of alarms that were right.
    pub fn precision(&self) -> f64 {
        ratio(self.true_positive, self.true_positive + self.false_positive)
    }

    /// Share of events that were alarmed.
    pub fn recall(&self) -> f64 {
        ratio(self.true_positive, self.true_positive + self.false_negative)
    }

    /// Harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The evaluation of one series.
#[derive(Debug, Clone)]
pub struct SeriesReport {
    /// Series name.
    pub name: String,
    /// One score per entry of [`HORIZONS`].
    pub horizons: [HorizonScore; 3],
    /// Model alarms.
    pub alarm: AlarmCounts,
    /// Naive-forecast alarms.
    pub naive_alarm: AlarmCounts,
    /// Seconds to fit the model and produce every rolling forecast.
    pub seconds: f64,
    /// Why the model fell back to the naive forecast, if it did.
    pub fallback: Option<String>,
}

/// How the model is kept current over the test part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refit {
    /// Fitted once on the training part; later origins only feed new
    /// observations into the features.
    Never,
    /// Refitted every `every` origins on the newest `window` samples up to
    /// the origin, as the forecaster's background retraining does.
    Every {
        /// Origins between refits.
        every: usize,
        /// Most samples a refit sees (the history capacity).
        window: usize,
    },
}

/// Runs the protocol on one series with the short-term model of `config`
/// alone (which must forecast at least 12 horizons).
pub fn evaluate(series: &Series, config: &ModelConfig, refit: Refit) -> SeriesReport {
    evaluate_with_seasonal(series, config, None, refit)
}

/// Runs the protocol on one series as the forecaster does: the short-term
/// model of `config`, and, with `seasonal`, the seasonal model at every
/// horizon where [`choose`] picks it on the held-back window of each fit.
pub fn evaluate_with_seasonal(
    series: &Series,
    config: &ModelConfig,
    seasonal: Option<&SeasonalConfig>,
    refit: Refit,
) -> SeriesReport {
    let y = &series.values;
    let n = y.len();
    let n_train = ((n as f64) * TRAIN_SHARE).round() as usize;
    let train_part = &y[..n_train];
    let scale = mean_abs_diff(train_part);
    let threshold = quantile(&mut train_part.to_vec(), 0.9);
    let hs = config.horizons();
    let max_h = HORIZONS[HORIZONS.len() - 1];

    let step_secs = median_step(&series.times);
    let started = Instant::now();
    let times = Times::Explicit(&series.times);
    // Origins: every step whose forecasts land in the test part.
    let origins = n_train.saturating_sub(1)..n;
    let (every, window) = match refit {
        Refit::Never => (origins.len().max(1), n_train),
        Refit::Every { every, window } => (every.max(1), window.max(1)),
    };
    let mut preds = Some(vec![f64::NAN; origins.len() * hs]);
    let mut fallback = None;
    for chunk in (origins.start..origins.end).step_by(every) {
        let end = (chunk + every).min(origins.end);
        let from = (chunk + 1).saturating_sub(window);
        let fitted = train(
            &y[from..=chunk],
            Times::Explicit(&series.times[from..=chunk]),
            config,
        )
        .and_then(|model| model.backtest(y, times, chunk..end));
        match (fitted, preds.as_mut()) {
            (Ok(p), Some(all)) => {
                let at = (chunk - origins.start) * hs;
                all[at..at + p.len()].copy_from_slice(&p);
                if let Some(season) = seasonal {
                    overlay_seasonal(
                        &y[..=chunk],
                        y,
                        step_secs,
                        config,
                        season,
                        chunk..end,
                        &mut all[at..at + p.len()],
                    );
                }
            }
            (Err(e), _) => {
                fallback = Some(e.to_string());
                preds = None;
                break;
            }
            (Ok(_), None) => {}
        }
    }
    let seconds = started.elapsed().as_secs_f64();

    let mut scores = [HorizonScore::default(); 3];
    let mut alarm = AlarmCounts::default();
    let mut naive_alarm = AlarmCounts::default();
    for (k, &h) in HORIZONS.iter().enumerate() {
        let (mut err, mut naive_err, mut count) = (0.0, 0.0, 0usize);
        for t in origins.clone() {
            if t + h >= n || h > hs.max(max_h) {
                break;
            }
            let actual = y[t + h];
            let naive = y[t];
            let forecast = preds
                .as_ref()
                .map(|p| p[(t - origins.start) * hs + (h - 1).min(hs - 1)])
                .filter(|f| f.is_finite())
                .unwrap_or(naive);
            if actual.is_finite() && naive.is_finite() {
                err += (forecast - actual).abs();
                naive_err += (naive - actual).abs();
                count += 1;
            }
            if h == ALARM_HORIZON {
                let event = actual > threshold;
                alarm.count(forecast > threshold, event);
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
    SeriesReport {
        name: series.name.clone(),
        horizons: scores,
        alarm,
        naive_alarm,
        seconds,
        fallback,
    }
}

/// Replaces the short-term forecasts in `preds` (origins × horizons of
/// `config`) by the seasonal model's at the horizons where [`choose`],
/// run on `history`, picks it.
fn overlay_seasonal(
    history: &[f64],
    y: &[f64],
    step_secs: f64,
    config: &ModelConfig,
    season: &SeasonalConfig,
    origins: std::ops::Range<usize>,
    preds: &mut [f64],
) {
    let hs = config.horizons();
    let window = history
        .len()
        .saturating_sub(season.history_samples(step_secs));
    let choice = choose(&history[window..], step_secs, config, season);
    let Some(model) = choice.seasonal else { return };
    let Ok(p) = model.backtest(y, origins.clone()) else {
        return;
    };
    let shs = model.horizons();
    for r in 0..origins.len() {
        for h in 1..=hs.min(shs) {
            let s = p[r * shs + h - 1];
            if choice.use_seasonal[h - 1] && s.is_finite() {
                preds[r * hs + h - 1] = s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_ratios() {
        let c = AlarmCounts {
            true_positive: 3,
            false_positive: 1,
            false_negative: 2,
        };
        assert_eq!(c.precision(), 0.75);
        assert_eq!(c.recall(), 0.6);
        assert!((c.f1() - 2.0 * 0.75 * 0.6 / 1.35).abs() < 1e-12);
        assert_eq!(AlarmCounts::default().f1(), 0.0);
    }
}
