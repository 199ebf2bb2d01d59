//! Choosing, per series, between the short-term and the seasonal model on
//! a held-back window.
//!
//! The seasonal model is considered when the series has a daily cycle:
//! the autocorrelation at a lag of one day of the series (of `ln(1 + y)`
//! for a model fitted on logs) minus its trailing daily mean is at least
//! [`SeasonalConfig::with_significance`] standard errors (`1/√n`) above
//! zero. White noise, a random walk and a level shift all score near zero.
//!
//! Both models are then fitted on the older part of the history and
//! forecast the newest part (the held-back window). At each horizon, the
//! seasonal model is used when its mean absolute error there is at least
//! [`SeasonalConfig::with_margin`] below the short-term model's, whose
//! forecast beyond its own last horizon is held flat. The seasonal model
//! is then refitted on the whole history, with the held-back residuals as
//! its interval.

use super::config::ModelConfig;
use super::features::{Times, clean};
use super::seasonal::{Layout, SeasonalModel, train_seasonal};
use super::seasonal_config::SeasonalConfig;
use super::train::train;
use crate::error::FallbackReason;
use crate::stats::quantile;

/// The outcome of a choice: the seasonal model, or why the short-term
/// model is kept.
#[derive(Debug)]
pub struct Choice {
    /// The seasonal model, when chosen.
    pub seasonal: Option<SeasonalModel>,
    /// Why the short-term model is kept, when it is.
    pub kept_short: Option<FallbackReason>,
    /// Strength of the daily cycle (NaN when not measured).
    pub strength: f64,
    /// Held-back mean absolute error, over every horizon, of the seasonal
    /// model and of the short-term model (NaN when not measured).
    pub errors: (f64, f64),
    /// Per horizon of the seasonal model (1, 2, … steps), whether its
    /// forecast is used; empty when it is not chosen.
    pub use_seasonal: Vec<bool>,
}

impl Choice {
    fn keep(reason: FallbackReason, strength: f64, errors: (f64, f64)) -> Self {
        Self {
            seasonal: None,
            kept_short: Some(reason),
            strength,
            errors,
            use_seasonal: Vec::new(),
        }
    }
}

/// Day-lag autocorrelation of `y` minus its trailing mean over a day:
/// near 1 for a clean daily cycle, near 0 without one.
pub fn cycle_strength(y: &[f64], day: usize) -> f64 {
    if day < 2 || y.len() < 3 * day {
        return f64::NAN;
    }
    let mut sum: f64 = y[..day].iter().sum();
    let mut z = Vec::with_capacity(y.len() - day + 1);
    z.push(y[day - 1] - sum / day as f64);
    for t in day..y.len() {
        sum += y[t] - y[t - day];
        z.push(y[t] - sum / day as f64);
    }
    let mean = z.iter().sum::<f64>() / z.len() as f64;
    let var: f64 = z.iter().map(|v| (v - mean) * (v - mean)).sum();
    if var <= 0.0 {
        return 0.0;
    }
    let cov: f64 = z
        .windows(day + 1)
        .map(|w| (w[0] - mean) * (w[day] - mean))
        .sum();
    cov / var
}

/// Samples a series sampled every `step_secs` needs before [`choose`]
/// considers the seasonal model (1,056 at a 5-minute step, 3.7 days; 216
/// at a 30-minute step, 4.5 days): enough for a fit on the older part and
/// a day plus the horizon of held-back origins. `None` when the step is
/// too long for a daily cycle.
pub fn choice_min_samples(step_secs: f64, config: &SeasonalConfig) -> Option<usize> {
    let layout = Layout::for_step(step_secs, config)?;
    (1..=100 * layout.day).find(|&n| n >= choice_need(n, &layout, config))
}

/// Samples a choice on `n` samples needs.
fn choice_need(n: usize, layout: &Layout, config: &SeasonalConfig) -> usize {
    let held = ((n as f64) * config.holdout).round() as usize;
    let mut daily = *layout;
    daily.week = false;
    (daily.min_samples() + held.max(layout.day + layout.horizons))
        .max(((daily.min_samples() as f64) / (1.0 - config.holdout)).ceil() as usize)
}

/// Chooses between the short-term model (`short`) and the seasonal model
/// for `values`, one sample every `step_secs` (NaN marks a gap).
pub fn choose(
    values: &[f64],
    step_secs: f64,
    short: &ModelConfig,
    config: &SeasonalConfig,
) -> Choice {
    let nan = (f64::NAN, f64::NAN);
    let mut y = Vec::with_capacity(values.len());
    if let Err(e) = clean(values, &mut y) {
        return Choice::keep(e, f64::NAN, nan);
    }
    let Some(layout) = Layout::for_step(step_secs, config) else {
        return Choice::keep(
            FallbackReason::Training(smartcore::error::Failed::fit(
                "step too long for a daily cycle",
            )),
            f64::NAN,
            nan,
        );
    };
    let held = ((y.len() as f64) * config.holdout).round() as usize;
    // The older part must train the model and the held-back part must
    // hold a day of origins.
    let need = choice_need(y.len(), &layout, config);
    if y.len() < need {
        return Choice::keep(
            FallbackReason::TooShort {
                have: y.len(),
                need,
            },
            f64::NAN,
            nan,
        );
    }
    let strength = if config.log && y.iter().all(|v| *v >= 0.0) {
        let z: Vec<f64> = y.iter().map(|v| v.ln_1p()).collect();
        cycle_strength(&z, layout.day)
    } else {
        cycle_strength(&y, layout.day)
    };
    let standard_error = 1.0 / ((y.len() - layout.day) as f64).sqrt();
    // A NaN strength (no spread) counts as no cycle.
    if strength.is_nan() || strength < config.significance * standard_error {
        return Choice::keep(FallbackReason::WeakCycle { strength }, strength, nan);
    }
    let split = y.len() - held;
    let seasonal = match train_seasonal(&y[..split], step_secs, config) {
        Ok(m) => m,
        Err(e) => return Choice::keep(e, strength, nan),
    };
    let hs = seasonal.horizons();
    let origins = split - 1..y.len() - 1;
    let Ok(s_pred) = seasonal.backtest(&y, origins.clone()) else {
        return Choice::keep(FallbackReason::NoData, strength, nan);
    };
    let times = Times::Regular {
        start: 0.0,
        step: step_secs,
    };
    let short_model = train(&y[..split], times, short);
    let short_hs = short.horizons();
    let b_pred = short_model
        .as_ref()
        .ok()
        .and_then(|m| m.backtest(&y, times, origins.clone()).ok());
    let mut residuals = vec![Vec::new(); hs];
    let mut per_h = vec![(0.0, 0.0); hs];
    let (mut s_err, mut b_err, mut count) = (0.0, 0.0, 0usize);
    for (r, t) in origins.clone().enumerate() {
        for h in 1..=hs {
            let Some(&actual) = y.get(t + h) else { break };
            let s = s_pred[r * hs + h - 1];
            let b = b_pred
                .as_ref()
                .map(|p| p[r * short_hs + h.min(short_hs) - 1])
                .filter(|v| v.is_finite())
                .unwrap_or(y[t]);
            if !s.is_finite() {
                continue;
            }
            residuals[h - 1].push(actual - s);
            s_err += (s - actual).abs();
            b_err += (b - actual).abs();
            per_h[h - 1].0 += (s - actual).abs();
            per_h[h - 1].1 += (b - actual).abs();
            count += 1;
        }
    }
    let c = count.max(1) as f64;
    let errors = (s_err / c, b_err / c);
    let use_seasonal: Vec<bool> = per_h
        .iter()
        .map(|(s, b)| *s <= (1.0 - config.margin) * b)
        .collect();
    if count == 0 || !use_seasonal.contains(&true) {
        return Choice::keep(
            FallbackReason::NotBetter {
                seasonal: errors.0,
                short: errors.1,
            },
            strength,
            errors,
        );
    }
    let mut model = match train_seasonal(&y, step_secs, config) {
        Ok(m) => m,
        Err(e) => return Choice::keep(e, strength, errors),
    };
    let tail = (1.0 - config.coverage) / 2.0;
    let mut lower = Vec::with_capacity(hs.min(model.horizons()));
    let mut upper = Vec::with_capacity(hs.min(model.horizons()));
    for r in residuals.iter_mut().take(model.horizons()) {
        lower.push(quantile(r, tail).min(0.0));
        upper.push(quantile(r, 1.0 - tail).max(0.0));
    }
    if lower.iter().chain(&upper).all(|v| v.is_finite()) {
        model.set_interval(lower, upper);
    }
    Choice {
        seasonal: Some(model),
        kept_short: None,
        strength,
        errors,
        use_seasonal,
    }
}
