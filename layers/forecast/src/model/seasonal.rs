//! The seasonal model: a seasonal-naive anchor plus a learned correction.
//!
//! For each horizon `h` (in steps of the series), ridge regression through
//! the origin predicts the change `y[t+h] − y[t]` from level-free features:
//!
//! - the mean, over the previous `days` days, of the change from the time
//!   of `t` to the time of `t + h` on that day (the daily profile);
//! - the gap from `y[t]` to the mean of those days at the time of `t + h`
//!   (the seasonal-naive anchor);
//! - once two weeks of history exist, the same two for the same time a
//!   week earlier;
//! - the last `lags` first differences (the short-term dynamics).
//!
//! A weight of one on the anchor is the seasonal-naive forecast; a weight
//! of one on the profile keeps today's level and adds yesterday's shape;
//! the fit mixes the two and corrects with the recent changes.

use smartcore::error::Failed;

use super::features::clean;
use super::ridge::Moments;
use super::seasonal_config::SeasonalConfig;
use super::trained::Fitted;
use crate::Forecast;
use crate::error::FallbackReason;
use crate::stats::{mean_abs_diff, quantile};

const DAY_SECS: f64 = 86_400.0;
/// Fewest training rows per feature.
const ROWS_PER_FEATURE: usize = 8;

/// Which samples the features of one origin read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Layout {
    /// Steps per day.
    pub(crate) day: usize,
    /// Previous days averaged.
    pub(crate) days: usize,
    /// Weekly features present.
    pub(crate) week: bool,
    /// Previous weeks averaged.
    pub(crate) weeks: usize,
    pub(crate) lags: usize,
    /// Horizons, in steps.
    pub(crate) horizons: usize,
}

impl Layout {
    /// Steps per day and horizons for a series sampled every `step_secs`,
    /// or `None` when a day is not at least four steps.
    pub(crate) fn for_step(step_secs: f64, config: &SeasonalConfig) -> Option<Self> {
        if !(step_secs.is_finite() && step_secs > 0.0) {
            return None;
        }
        let day = (DAY_SECS / step_secs).round() as usize;
        if day < 4 {
            return None;
        }
        let horizons = ((config.horizon.as_secs_f64() / step_secs).ceil() as usize).clamp(1, day);
        Some(Self {
            day,
            days: config.days,
            week: config.weeks > 0,
            weeks: config.weeks.max(1),
            lags: config.lags,
            horizons,
        })
    }

    pub(crate) fn width(&self) -> usize {
        self.lags + 4 + if self.week { 2 } else { 0 }
    }

    /// The first index that can be an origin.
    pub(crate) fn warmup(&self) -> usize {
        let season = if self.week { 7 * self.day } else { self.day };
        season.max(self.lags)
    }

    /// Fewest training rows.
    fn min_rows(&self) -> usize {
        (ROWS_PER_FEATURE * (self.width() + 1)).max(self.day)
    }

    /// Samples [`train_seasonal`] needs with this layout.
    pub(crate) fn min_samples(&self) -> usize {
        self.warmup() + self.horizons + self.min_rows()
    }

    /// Writes the features of origin `t`, horizon `h` (1-based) into `out`.
    pub(crate) fn write(&self, y: &[f64], t: usize, h: usize, out: &mut [f64]) {
        let lags = self.lags;
        for (i, o) in out[..lags].iter_mut().enumerate() {
            *o = y[t - i] - y[t - i - 1];
        }
        // Yesterday alone, then the mean of the previous days.
        let then = y[t + h - self.day];
        out[lags] = then - y[t - self.day];
        out[lags + 1] = then - y[t];
        let (a, b) = self.mean_pair(y, t, h, self.day, self.days);
        out[lags + 2] = a - b;
        out[lags + 3] = a - y[t];
        if self.week {
            let (a, b) = self.mean_pair(y, t, h, 7 * self.day, self.weeks);
            out[lags + 4] = a - b;
            out[lags + 5] = a - y[t];
        }
    }

    /// Means over the previous `count` periods (as many as `t` allows) of
    /// the samples at the times of `t + h` and of `t`.
    fn mean_pair(&self, y: &[f64], t: usize, h: usize, period: usize, count: usize) -> (f64, f64) {
        let k_max = count.min(t / period).max(1);
        let (mut then, mut now) = (0.0, 0.0);
        for k in 1..=k_max {
            then += y[t + h - k * period];
            now += y[t - k * period];
        }
        let k = k_max as f64;
        (then / k, now / k)
    }
}

/// A seasonal model trained on one series: weights per horizon and
/// residual-quantile intervals. Produced by [`train_seasonal`].
#[derive(Debug, Clone)]
pub struct SeasonalModel {
    pub(crate) layout: Layout,
    /// Fitted on `ln(1 + y)` (a series without negative values).
    log: bool,
    /// Added to each horizon's prediction on the model's scale.
    shifts: Box<[f64]>,
    /// `horizons × width`, row-major, on raw features.
    weights: Box<[f64]>,
    pub(crate) lower: Box<[f64]>,
    pub(crate) upper: Box<[f64]>,
}

/// Samples a series sampled every `step_secs` needs before
/// [`train_seasonal`] fits a model (about 2.3 days at a 5-minute step:
/// a day of warm-up, the horizon, and a day of rows), or `None` when the
/// step is too long for a daily cycle (more than 6 hours).
pub fn seasonal_min_samples(step_secs: f64, config: &SeasonalConfig) -> Option<usize> {
    let mut layout = Layout::for_step(step_secs, config)?;
    layout.week = false;
    Some(layout.min_samples())
}

/// Trains the seasonal model on `values` (oldest first, one sample every
/// `step_secs`; NaN marks a gap). Weekly features are used when the
/// series holds two weeks plus the horizon.
pub fn train_seasonal(
    values: &[f64],
    step_secs: f64,
    config: &SeasonalConfig,
) -> Result<SeasonalModel, FallbackReason> {
    let mut y = Vec::with_capacity(values.len());
    clean(values, &mut y)?;
    let mut layout = Layout::for_step(step_secs, config).ok_or(FallbackReason::Training(
        Failed::fit("step too long for a daily cycle"),
    ))?;
    layout.week = config.weeks > 0 && y.len() >= 14 * layout.day + layout.horizons;
    let need = layout.min_samples();
    if y.len() < need {
        return Err(FallbackReason::TooShort {
            have: y.len(),
            need,
        });
    }
    let scale = mean_abs_diff(&y);
    if scale.is_nan() || scale <= 0.0 || scale.is_infinite() {
        return Err(FallbackReason::Constant);
    }
    let log = config.log && y.iter().all(|v| *v >= 0.0);
    let z: Vec<f64> = if log {
        y.iter().map(|v| v.ln_1p()).collect()
    } else {
        y.clone()
    };
    let back = |v: f64| if log { v.exp_m1() } else { v };
    let hs = layout.horizons;
    let width = layout.width();
    let first = layout.warmup();
    let rows = y.len() - hs - first;
    let columns: Vec<usize> = (0..width).collect();
    let mut weights = Vec::with_capacity(hs * width);
    let mut x = vec![0.0; rows * width];
    let mut targets = vec![0.0; rows];
    let mut lower = Vec::with_capacity(hs);
    let mut upper = Vec::with_capacity(hs);
    let mut shifts = Vec::with_capacity(hs);
    let tail = (1.0 - config.coverage) / 2.0;
    for h in 1..=hs {
        for r in 0..rows {
            let t = first + r;
            layout.write(&z, t, h, &mut x[r * width..(r + 1) * width]);
            targets[r] = z[t + h] - z[t];
        }
        let w = fit_horizon(&x, &targets, width, &columns, config)?;
        // On logs, the mean rather than the median: the smearing estimate
        // ln(mean(exp(residual))) added before transforming back.
        let shift = if log && config.log_mean {
            let sum: f64 = x
                .chunks_exact(width)
                .zip(&targets)
                .map(|(row, t)| (t - dot(&w, row)).exp())
                .sum();
            (sum / rows as f64).ln()
        } else {
            0.0
        };
        shifts.push(shift);
        // In-sample residuals until a held-back window replaces them.
        let mut residuals: Vec<f64> = x
            .chunks_exact(width)
            .enumerate()
            .map(|(r, row)| y[first + r + h] - back(z[first + r] + dot(&w, row) + shift))
            .collect();
        lower.push(quantile(&mut residuals, tail));
        upper.push(quantile(&mut residuals, 1.0 - tail));
        weights.extend_from_slice(&w);
    }
    Ok(SeasonalModel {
        layout,
        log,
        shifts: shifts.into_boxed_slice(),
        weights: weights.into_boxed_slice(),
        lower: lower.into_boxed_slice(),
        upper: upper.into_boxed_slice(),
    })
}

/// Ridge through the origin for one horizon; with `robust` rounds, Huber
/// weights from the previous round's residuals (iteratively reweighted
/// least squares), so that bursts do not dominate the squared loss.
fn fit_horizon(
    x: &[f64],
    targets: &[f64],
    width: usize,
    columns: &[usize],
    config: &SeasonalConfig,
) -> Result<Vec<f64>, FallbackReason> {
    let solve = |x: &[f64], t: &[f64]| -> Result<Vec<f64>, FallbackReason> {
        let mut m = Moments::new(x, t, width, 1, false);
        m.add_rows(x, t);
        match m.solve(config.alpha, columns)? {
            Fitted::Linear { weights, .. } => Ok(weights.into_vec()),
            Fitted::Forest(_) => unreachable!("ridge gives a linear fit"),
        }
    };
    let mut w = solve(x, targets)?;
    if config.robust == 0 {
        return Ok(w);
    }
    let mut wx = x.to_vec();
    let mut wt = targets.to_vec();
    let mut abs: Vec<f64> = Vec::with_capacity(targets.len());
    for _ in 0..config.robust {
        abs.clear();
        abs.extend(
            x.chunks_exact(width)
                .zip(targets)
                .map(|(row, t)| (t - dot(&w, row)).abs()),
        );
        let mut sorted = abs.clone();
        // 1.345 × the MAD scale (1.4826 × median |r|): Huber's constant.
        let k = 1.345 * 1.4826 * quantile(&mut sorted, 0.5);
        if !(k > 0.0 && k.is_finite()) {
            break;
        }
        for (r, a) in abs.iter().enumerate() {
            let s = if *a > k { (k / a).sqrt() } else { 1.0 };
            wt[r] = targets[r] * s;
            for (o, v) in wx[r * width..(r + 1) * width]
                .iter_mut()
                .zip(&x[r * width..(r + 1) * width])
            {
                *o = v * s;
            }
        }
        w = solve(&wx, &wt)?;
    }
    Ok(w)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

impl SeasonalModel {
    /// Number of horizons, in steps of the series it was trained on.
    pub fn horizons(&self) -> usize {
        self.layout.horizons
    }

    /// Samples a prediction needs: a day (two weeks with weekly features)
    /// plus the origin.
    pub fn context(&self) -> usize {
        self.layout.warmup() + 1
    }

    /// Whether the weekly features are in use.
    pub fn weekly(&self) -> bool {
        self.layout.week
    }

    /// Predicted change over horizon `h` (1-based) at origin `t` of `y`.
    fn change(&self, y: &[f64], t: usize, h: usize, x: &mut [f64]) -> f64 {
        let width = self.layout.width();
        self.layout.write(y, t, h, x);
        dot(&self.weights[(h - 1) * width..h * width], x)
    }

    /// Forecasts every horizon from the newest samples: `recent` holds at
    /// least [`context`](Self::context) samples, oldest first (NaN gaps
    /// are filled). Writes `min(out.len(), horizons)` forecasts.
    pub fn predict(&self, recent: &[f64], out: &mut [Forecast]) -> Result<(), FallbackReason> {
        let mut y = Vec::with_capacity(recent.len());
        clean(recent, &mut y)?;
        let need = self.context();
        if y.len() < need {
            return Err(FallbackReason::TooShort {
                have: y.len(),
                need,
            });
        }
        self.to_model_scale(&mut y);
        let t = y.len() - 1;
        let mut x = vec![0.0; self.layout.width()];
        for (i, f) in out.iter_mut().take(self.horizons()).enumerate() {
            let mean =
                self.to_original_scale(y[t] + self.change(&y, t, i + 1, &mut x) + self.shifts[i]);
            *f = Forecast {
                mean,
                lower: (mean + self.lower[i]).min(mean),
                upper: (mean + self.upper[i]).max(mean),
            };
        }
        Ok(())
    }

    /// Rolling-origin point forecasts: for every origin `t` in `origins`,
    /// each horizon's forecast from samples up to `t` only; NaN where an
    /// origin has too little history. Returns `origins.len() × horizons`
    /// values, row-major.
    pub fn backtest(
        &self,
        values: &[f64],
        origins: std::ops::Range<usize>,
    ) -> Result<Vec<f64>, FallbackReason> {
        let mut y = Vec::with_capacity(values.len());
        clean(values, &mut y)?;
        self.to_model_scale(&mut y);
        let hs = self.horizons();
        let mut out = vec![f64::NAN; origins.len() * hs];
        let start = origins.start.max(self.layout.warmup());
        let end = origins.end.min(y.len());
        let mut x = vec![0.0; self.layout.width()];
        for t in start..end {
            let row = &mut out[(t - origins.start) * hs..(t - origins.start + 1) * hs];
            for (i, o) in row.iter_mut().enumerate() {
                *o = self
                    .to_original_scale(y[t] + self.change(&y, t, i + 1, &mut x) + self.shifts[i]);
            }
        }
        Ok(out)
    }

    /// The scale the model was fitted on (`ln(1 + y)`, negative values
    /// read as zero, when fitted on logs).
    fn to_model_scale(&self, y: &mut [f64]) {
        if self.log {
            y.iter_mut().for_each(|v| *v = v.max(0.0).ln_1p());
        }
    }

    fn to_original_scale(&self, v: f64) -> f64 {
        if self.log { v.exp_m1() } else { v }
    }

    /// Replaces the interval by residual quantiles measured elsewhere (on
    /// a held-back window), one pair per horizon.
    pub(crate) fn set_interval(&mut self, lower: Vec<f64>, upper: Vec<f64>) {
        if lower.len() == self.horizons() && upper.len() == self.horizons() {
            self.lower = lower.into_boxed_slice();
            self.upper = upper.into_boxed_slice();
        }
    }
}
