//! The offline evaluation protocol of the development data (NAB format):
//! train on the first 80%, forecast from every origin of the last 20% at
//! horizons 1, 6 and 12, and score against the naive forecast.
//!
//! The `evaluate` example runs it on CSV files; the functions are public so
//! that the protocol is tested like the rest of the crate.

use std::path::Path;
use std::time::Instant;

use thiserror::Error;

use crate::model::{ModelConfig, Times, train};
use crate::stats::{mean_abs_diff, quantile};

/// Horizons scored by the protocol, in steps.
pub const HORIZONS: [usize; 3] = [1, 6, 12];
/// Horizon of the threshold alarm, in steps.
pub const ALARM_HORIZON: usize = 6;
/// Share of each series used for training.
pub const TRAIN_SHARE: f64 = 0.8;

/// Errors reading a series.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `timestamp,value`.
    #[error("{path}:{line}: expected `YYYY-MM-DD HH:MM:SS,value`")]
    Parse {
        /// The file.
        path: String,
        /// One-based line number.
        line: usize,
    },
}

/// One series: values and their times (seconds since the Unix epoch).
#[derive(Debug, Clone)]
pub struct Series {
    /// A name for reports (the file stem).
    pub name: String,
    /// Sample values, oldest first.
    pub values: Vec<f64>,
    /// Sample times, seconds since the Unix epoch, UTC.
    pub times: Vec<f64>,
}

/// Reads a NAB CSV file (`timestamp,value` with a header line).
pub fn read_csv(path: &Path) -> Result<Series, EvalError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: shown.clone(),
        source,
    })?;
    let mut values = Vec::new();
    let mut times = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || EvalError::Parse {
            path: shown.clone(),
            line: i + 1,
        };
        let (ts, v) = line.split_once(',').ok_or_else(bad)?;
        times.push(parse_timestamp(ts.trim()).ok_or_else(bad)?);
        values.push(v.trim().parse::<f64>().map_err(|_| bad())?);
    }
    let name = path
        .file_stem()
        .map_or_else(|| shown.clone(), |s| s.to_string_lossy().into_owned());
    Ok(Series {
        name,
        values,
        times,
    })
}

/// Parses `YYYY-MM-DD HH:MM:SS` (UTC) into seconds since the Unix epoch.
pub fn parse_timestamp(s: &str) -> Option<f64> {
    let (date, time) = s.split_once([' ', 'T'])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':').map(|p| p.parse::<f64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next().flatten().unwrap_or(0.0));
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), after H. Hinnant.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + hh * 3600.0 + mm * 60.0 + ss)
}

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
    fn add(&mut self, o: &AlarmCounts) {
        self.true_positive += o.true_positive;
        self.false_positive += o.false_positive;
        self.false_negative += o.false_negative;
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
        if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 }
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

/// Runs the protocol on one series with `config` (which must forecast at
/// least 12 horizons).
pub fn evaluate(series: &Series, config: &ModelConfig) -> SeriesReport {
    let y = &series.values;
    let n = y.len();
    let n_train = ((n as f64) * TRAIN_SHARE).round() as usize;
    let train_part = &y[..n_train];
    let scale = mean_abs_diff(train_part);
    let threshold = quantile(&mut train_part.to_vec(), 0.9);
    let hs = config.horizons();
    let max_h = HORIZONS[HORIZONS.len() - 1];

    let started = Instant::now();
    let times = Times::Explicit(&series.times);
    // Origins: every step whose forecasts land in the test part.
    let origins = n_train.saturating_sub(1)..n;
    let (preds, fallback) = match train(train_part, Times::Explicit(&series.times[..n_train]), config) {
        Ok(model) => match model.backtest(y, times, origins.clone()) {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e.to_string())),
        },
        Err(e) => (None, Some(e.to_string())),
    };
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
                count_alarm(&mut alarm, forecast > threshold, event);
                count_alarm(&mut naive_alarm, naive > threshold, event);
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

fn count_alarm(c: &mut AlarmCounts, alarm: bool, event: bool) {
    match (alarm, event) {
        (true, true) => c.true_positive += 1,
        (true, false) => c.false_positive += 1,
        (false, true) => c.false_negative += 1,
        (false, false) => {}
    }
}

/// Aggregate figures over several series, as in the baselines table.
#[derive(Debug, Clone, Default)]
pub struct Aggregate {
    /// Mean MASE per horizon.
    pub mase_mean: [f64; 3],
    /// Median MASE per horizon.
    pub mase_median: [f64; 3],
    /// Geometric mean of MAE / naive MAE per horizon.
    pub rel_mae: [f64; 3],
    /// Series where the model's MAE is below the naive MAE, per horizon.
    pub wins: [usize; 3],
    /// Naive mean MASE per horizon (a check of the protocol).
    pub naive_mase_mean: [f64; 3],
    /// Pooled model alarms.
    pub alarm: AlarmCounts,
    /// Pooled naive alarms.
    pub naive_alarm: AlarmCounts,
    /// Mean seconds per series.
    pub seconds_mean: f64,
    /// Number of series.
    pub series: usize,
}

/// Aggregates per-series reports (means, medians, geometric means, pooled
/// alarm counts).
pub fn aggregate(reports: &[SeriesReport]) -> Aggregate {
    let mut a = Aggregate {
        series: reports.len(),
        ..Aggregate::default()
    };
    if reports.is_empty() {
        return a;
    }
    let n = reports.len() as f64;
    for k in 0..HORIZONS.len() {
        let mut mase: Vec<f64> = reports.iter().map(|r| r.horizons[k].mase).collect();
        a.mase_mean[k] = mase.iter().sum::<f64>() / n;
        a.mase_median[k] = quantile(&mut mase, 0.5);
        a.naive_mase_mean[k] = reports.iter().map(|r| r.horizons[k].naive_mase).sum::<f64>() / n;
        let log_sum: f64 = reports
            .iter()
            .map(|r| {
                let s = r.horizons[k];
                if s.naive_mae > 0.0 && s.mae > 0.0 { (s.mae / s.naive_mae).ln() } else { 0.0 }
            })
            .sum();
        a.rel_mae[k] = (log_sum / n).exp();
        a.wins[k] = reports
            .iter()
            .filter(|r| r.horizons[k].mae < r.horizons[k].naive_mae)
            .count();
    }
    for r in reports {
        a.alarm.add(&r.alarm);
        a.naive_alarm.add(&r.naive_alarm);
    }
    a.seconds_mean = reports.iter().map(|r| r.seconds).sum::<f64>() / n;
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01 00:00:00"), Some(0.0));
        assert_eq!(parse_timestamp("2014-02-14 14:30:00"), Some(1_392_388_200.0));
        assert_eq!(parse_timestamp("2000-03-01 00:00:01"), Some(951_868_801.0));
        assert_eq!(parse_timestamp("garbage"), None);
    }

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
