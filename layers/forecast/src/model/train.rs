//! Training: build the lag-feature matrix, fit one smartcore regressor per
//! horizon, and measure residual quantiles on a held-back window.

use smartcore::ensemble::random_forest_regressor::RandomForestRegressorParameters;
use smartcore::error::Failed;
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::ridge_regression::{
    RidgeRegression, RidgeRegressionParameters, RidgeRegressionSolverName,
};

use super::config::{ModelConfig, ModelKind};
use super::features::{FeatureSpec, Times, clean, prefix_sums};
use super::trained::{Fitted, Forest, Model};
use crate::error::FallbackReason;
use crate::stats::{mean_abs_diff, quantile};

/// Fewest training rows per feature before a model is fitted.
const ROWS_PER_FEATURE: usize = 8;
/// Fewest training rows in any case.
const MIN_ROWS: usize = 64;

/// Samples a series needs before [`train`] fits a model under `config`.
pub fn min_samples(config: &ModelConfig) -> usize {
    let spec = spec(config, 1.0);
    let rows = (ROWS_PER_FEATURE * (spec.width() + 1)).max(MIN_ROWS);
    spec.warmup() + config.horizons + rows
}

fn spec(config: &ModelConfig, clip: f64) -> FeatureSpec {
    FeatureSpec {
        lags: config.lags,
        windows: config.windows.clone(),
        calendar: config.calendar,
        clip,
    }
}

/// Trains a model on `values` (oldest first; NaN marks a gap).
///
/// Returns the reason instead when the series cannot support a model: too
/// short, constant, without a finite value, or a failed fit. The caller then
/// forecasts naively.
pub fn train(values: &[f64], times: Times<'_>, config: &ModelConfig) -> Result<Model, FallbackReason> {
    let mut y = Vec::with_capacity(values.len());
    clean(values, &mut y)?;
    let need = min_samples(config);
    if y.len() < need {
        return Err(FallbackReason::TooShort { have: y.len(), need });
    }
    let scale = mean_abs_diff(&y);
    if !(scale > 0.0) || !scale.is_finite() {
        return Err(FallbackReason::Constant);
    }
    let clip = config.clip.map_or(f64::INFINITY, |k| k * scale);
    let spec = spec(config, clip);
    let hs = config.horizons;
    let width = spec.width();
    let first = spec.warmup();
    let rows = y.len() - hs - first;

    let prefix = prefix_sums(&y);
    let mut x = vec![0.0; rows * width];
    let mut targets = vec![vec![0.0; rows]; hs];
    for r in 0..rows {
        let t = first + r;
        spec.write(&y, Some(&prefix), t, times.at(t), &mut x[r * width..(r + 1) * width]);
        for (h, target) in targets.iter_mut().enumerate() {
            let bound = clip * (h + 1) as f64;
            target[r] = (y[t + h + 1] - y[t]).clamp(-bound, bound);
        }
    }

    let held = ((rows as f64 * config.holdout).round() as usize).clamp(1, rows / 2);
    let split = rows - held;
    let early = fit(config, &x[..split * width], split, width, &targets, 0..split)?;
    let predicted = predict_rows(&early, &x[split * width..], held, width)?;
    let tail = (1.0 - config.coverage) / 2.0;
    let mut lower = Vec::with_capacity(hs);
    let mut upper = Vec::with_capacity(hs);
    let mut residuals = vec![0.0; held];
    for (h, target) in targets.iter().enumerate() {
        for (i, res) in residuals.iter_mut().enumerate() {
            let t = first + split + i;
            *res = (y[t + h + 1] - y[t]) - predicted[h][i];
        }
        lower.push(quantile(&mut residuals, tail));
        upper.push(quantile(&mut residuals, 1.0 - tail));
        debug_assert_eq!(target.len(), rows);
    }
    let fitted = fit(config, &x, rows, width, &targets, 0..rows)?;
    Ok(Model {
        spec,
        fitted,
        lower: lower.into_boxed_slice(),
        upper: upper.into_boxed_slice(),
    })
}

fn fit(
    config: &ModelConfig,
    x: &[f64],
    rows: usize,
    width: usize,
    targets: &[Vec<f64>],
    range: std::ops::Range<usize>,
) -> Result<Fitted, FallbackReason> {
    match config.kind {
        ModelKind::Ridge => fit_ridge(x, rows, width, targets, range, config.alpha),
        ModelKind::Forest { trees, max_depth } => {
            let m = DenseMatrix::new(rows, width, x.to_vec(), false).map_err(FallbackReason::Training)?;
            let params = RandomForestRegressorParameters::default()
                .with_n_trees(trees)
                .with_max_depth(max_depth)
                .with_min_samples_leaf(5)
                .with_seed(7);
            let forests = targets
                .iter()
                .map(|t| Forest::fit(&m, &t[range.clone()].to_vec(), params.clone()))
                .collect::<Result<Vec<_>, Failed>>()
                .map_err(FallbackReason::Training)?;
            Ok(Fitted::Forest(forests))
        }
    }
}

/// Ridge on standardised features; the scaling is folded back into the
/// weights so that prediction is one dot product on raw features.
fn fit_ridge(
    x: &[f64],
    rows: usize,
    width: usize,
    targets: &[Vec<f64>],
    range: std::ops::Range<usize>,
    alpha: f64,
) -> Result<Fitted, FallbackReason> {
    let n = rows as f64;
    let mut mean = vec![0.0; width];
    let mut sd = vec![0.0; width];
    for row in x.chunks_exact(width) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    for row in x.chunks_exact(width) {
        for ((s, v), m) in sd.iter_mut().zip(row).zip(&mean) {
            *s += (v - m) * (v - m);
        }
    }
    // A constant column (all-zero after centring) keeps a unit scale: the
    // penalty then holds its weight at zero.
    sd.iter_mut().for_each(|s| {
        *s = (*s / n).sqrt();
        if !(*s > 1e-12) {
            *s = 1.0;
        }
    });
    let scaled: Vec<f64> = x
        .chunks_exact(width)
        .flat_map(|row| row.iter().zip(&mean).zip(&sd).map(|((v, m), s)| (v - m) / s))
        .collect();
    let m = DenseMatrix::new(rows, width, scaled, false).map_err(FallbackReason::Training)?;
    let params = RidgeRegressionParameters::default()
        .with_alpha(alpha * n)
        .with_normalize(false)
        .with_solver(RidgeRegressionSolverName::Cholesky);
    let mut weights = Vec::with_capacity(targets.len() * width);
    let mut intercepts = Vec::with_capacity(targets.len());
    let mut centred = vec![0.0; rows];
    for target in targets {
        let t = &target[range.clone()];
        let t_mean = t.iter().sum::<f64>() / n;
        centred.iter_mut().zip(t).for_each(|(c, v)| *c = v - t_mean);
        let model = RidgeRegression::fit(&m, &centred, params.clone()).map_err(FallbackReason::Training)?;
        let coef = model.coefficients();
        let mut b = t_mean;
        for j in 0..width {
            let w = *coef.get((j, 0)) / sd[j];
            b -= w * mean[j];
            weights.push(w);
        }
        intercepts.push(b);
    }
    if weights.iter().chain(&intercepts).any(|w| !w.is_finite()) {
        return Err(FallbackReason::Training(Failed::fit("non-finite coefficients")));
    }
    Ok(Fitted::Linear {
        weights: weights.into_boxed_slice(),
        intercepts: intercepts.into_boxed_slice(),
    })
}

/// Predicted changes, per horizon, for each of `rows` feature rows.
fn predict_rows(fitted: &Fitted, x: &[f64], rows: usize, width: usize) -> Result<Vec<Vec<f64>>, FallbackReason> {
    match fitted {
        Fitted::Linear {
            weights,
            intercepts,
        } => Ok(intercepts
            .iter()
            .zip(weights.chunks_exact(width))
            .map(|(b, w)| {
                x.chunks_exact(width)
                    .map(|row| b + row.iter().zip(w).map(|(a, c)| a * c).sum::<f64>())
                    .collect()
            })
            .collect()),
        Fitted::Forest(forests) => {
            let m = DenseMatrix::new(rows, width, x.to_vec(), false).map_err(FallbackReason::Training)?;
            forests
                .iter()
                .map(|f| f.predict(&m).map_err(FallbackReason::Training))
                .collect()
        }
    }
}
