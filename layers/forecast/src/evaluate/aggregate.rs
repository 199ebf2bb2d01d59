//! Aggregating per-series reports as the baselines table does.

use super::HORIZONS;
use super::score::{AlarmCounts, SeriesReport};
use super::seasonal::SeasonalReport;
use crate::stats::quantile;

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
        a.naive_mase_mean[k] = reports
            .iter()
            .map(|r| r.horizons[k].naive_mase)
            .sum::<f64>()
            / n;
        let log_sum: f64 = reports
            .iter()
            .map(|r| {
                let s = r.horizons[k];
                if s.naive_mae > 0.0 && s.mae > 0.0 {
                    (s.mae / s.naive_mae).ln()
                } else {
                    0.0
                }
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

/// Aggregate figures of the seasonal protocol over several series.
#[derive(Debug, Clone, Default)]
pub struct SeasonalAggregate {
    /// Mean MASE per horizon (one step, one hour, six hours).
    pub mase_mean: [f64; 3],
    /// Geometric mean of MAE / naive MAE per horizon.
    pub rel_mae: [f64; 3],
    /// Pooled alarms one hour ahead.
    pub alarm: AlarmCounts,
    /// Onsets over all series.
    pub onsets: usize,
    /// Onsets caught one and six hours ahead, over all series.
    pub caught: [usize; 2],
    /// Mean seconds per series.
    pub seconds_mean: f64,
    /// Number of series.
    pub series: usize,
}

/// Aggregates seasonal-protocol reports as BASELINES.md does.
pub fn aggregate_seasonal(reports: &[SeasonalReport]) -> SeasonalAggregate {
    let mut a = SeasonalAggregate {
        series: reports.len(),
        ..SeasonalAggregate::default()
    };
    if reports.is_empty() {
        return a;
    }
    let n = reports.len() as f64;
    for k in 0..3 {
        a.mase_mean[k] = reports.iter().map(|r| r.horizons[k].mase).sum::<f64>() / n;
        let log_sum: f64 = reports
            .iter()
            .map(|r| {
                let s = r.horizons[k];
                if s.naive_mae > 0.0 && s.mae > 0.0 {
                    (s.mae / s.naive_mae).ln()
                } else {
                    0.0
                }
            })
            .sum();
        a.rel_mae[k] = (log_sum / n).exp();
    }
    for r in reports {
        a.alarm.add(&r.alarm);
        a.onsets += r.onsets;
        a.caught[0] += r.caught[0];
        a.caught[1] += r.caught[1];
    }
    a.seconds_mean = reports.iter().map(|r| r.seconds).sum::<f64>() / n;
    a
}
