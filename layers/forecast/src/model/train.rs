//! Training: build the lag-feature matrix, fit one regressor per horizon,
//! and measure residual quantiles on a held-back window.

use smartcore::linalg::basic::matrix::DenseMatrix;

use super::config::{ModelConfig, ModelKind};
use super::features::{FeatureSpec, Times, clean, prefix_sums};
use super::forest::fit_forest;
use super::ridge::Moments;
use super::trained::{Fitted, Model};
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
        lags: config
            .lag_choices
            .iter()
            .copied()
            .fold(config.lags, usize::max),
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
pub fn train(
    values: &[f64],
    times: Times<'_>,
    config: &ModelConfig,
) -> Result<Model, FallbackReason> {
    let mut y = Vec::with_capacity(values.len());
    clean(values, &mut y)?;
    let need = min_samples(config);
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
    let clip = config.clip.map_or(f64::INFINITY, |k| k * scale);
    let mut spec = spec(config, clip);
    let hs = config.horizons;
    let width = spec.width();
    let first = spec.warmup();
    let rows = y.len() - hs - first;

    let prefix = prefix_sums(&y);
    let mut x = vec![0.0; rows * width];
    // Targets are row-major: `targets[r * hs + h]` is the change h + 1 steps
    // after origin r.
    let mut targets = vec![0.0; rows * hs];
    for r in 0..rows {
        let t = first + r;
        spec.write(
            &y,
            Some(&prefix),
            t,
            times.at(t),
            &mut x[r * width..(r + 1) * width],
        );
        for h in 0..hs {
            let bound = clip * (h + 1) as f64;
            targets[r * hs + h] = (y[t + h + 1] - y[t]).clamp(-bound, bound);
        }
    }

    let held = ((rows as f64 * config.holdout).round() as usize).clamp(1, rows / 2);
    let split = rows - held;
    let all_columns: Vec<usize> = (0..width).collect();
    let (early, fitted, columns) = match config.kind {
        ModelKind::Ridge => {
            let mut early = Moments::new(&x, &targets, width, hs, config.drift);
            early.add_rows(&x[..split * width], &targets[..split * hs]);
            let mut all = early.clone();
            all.add_rows(&x[split * width..], &targets[split * hs..]);
            let (lags, alpha, columns, fitted_early) = select(
                config,
                &spec,
                &early,
                &x[split * width..],
                &targets[split * hs..],
            )?;
            let fitted = all.solve(alpha, &columns)?;
            spec.lags = lags;
            (fitted_early, fitted, columns)
        }
        ModelKind::Forest { trees, max_depth } => (
            fit_forest(
                &x[..split * width],
                split,
                width,
                &targets[..split * hs],
                hs,
                trees,
                max_depth,
            )?,
            fit_forest(&x, rows, width, &targets, hs, trees, max_depth)?,
            all_columns,
        ),
    };
    let predicted = predict_rows(&early, &x[split * width..], held, width, &columns)?;
    let tail = (1.0 - config.coverage) / 2.0;
    let mut lower = Vec::with_capacity(hs);
    let mut upper = Vec::with_capacity(hs);
    let mut residuals = vec![0.0; held];
    for h in 0..hs {
        for (i, res) in residuals.iter_mut().enumerate() {
            let t = first + split + i;
            *res = (y[t + h + 1] - y[t]) - predicted[h][i];
        }
        lower.push(quantile(&mut residuals, tail));
        upper.push(quantile(&mut residuals, 1.0 - tail));
    }
    Ok(Model {
        spec,
        fitted,
        lower: lower.into_boxed_slice(),
        upper: upper.into_boxed_slice(),
    })
}

/// Picks the number of lags and the penalty with the smallest absolute
/// error, over all horizons, on the held-back rows (`x`, `targets`), from
/// fits on the earlier rows only. Without choices configured this is the
/// configured pair.
fn select(
    config: &ModelConfig,
    spec: &FeatureSpec,
    early: &Moments,
    x: &[f64],
    targets: &[f64],
) -> Result<(usize, f64, Vec<usize>, Fitted), FallbackReason> {
    let width = spec.width();
    let hs = config.horizons;
    let lag_choices = if config.lag_choices.is_empty() {
        std::slice::from_ref(&config.lags)
    } else {
        &config.lag_choices[..]
    };
    let alpha_choices = if config.alpha_choices.is_empty() {
        std::slice::from_ref(&config.alpha)
    } else {
        &config.alpha_choices[..]
    };
    let single = lag_choices.len() * alpha_choices.len() == 1;
    let mut best: Option<(f64, usize, f64, Vec<usize>, Fitted)> = None;
    for &lags in lag_choices {
        // The first `lags` lag columns, then every non-lag column.
        let columns: Vec<usize> = (0..lags).chain(spec.lags..width).collect();
        for &alpha in alpha_choices {
            let fitted = early.solve(alpha, &columns)?;
            let error = if single {
                0.0
            } else {
                let rows = x.len() / width;
                let predicted = predict_rows(&fitted, x, rows, width, &columns)?;
                predicted
                    .iter()
                    .enumerate()
                    .map(|(h, p)| {
                        p.iter()
                            .enumerate()
                            .map(|(r, v)| (targets[r * hs + h] - v).abs())
                            .sum::<f64>()
                    })
                    .sum()
            };
            if best.as_ref().is_none_or(|b| error < b.0) {
                best = Some((error, lags, alpha, columns.clone(), fitted));
            }
        }
    }
    let (_, lags, alpha, columns, fitted) = best.expect("at least one candidate");
    Ok((lags, alpha, columns, fitted))
}

/// Predicted changes, per horizon, for each of `rows` feature rows.
/// A linear model uses the feature `columns` of each row.
fn predict_rows(
    fitted: &Fitted,
    x: &[f64],
    rows: usize,
    width: usize,
    columns: &[usize],
) -> Result<Vec<Vec<f64>>, FallbackReason> {
    match fitted {
        Fitted::Linear {
            weights,
            intercepts,
        } => Ok(intercepts
            .iter()
            .zip(weights.chunks_exact(columns.len()))
            .map(|(b, w)| {
                x.chunks_exact(width)
                    .map(|row| b + columns.iter().zip(w).map(|(&c, w)| row[c] * w).sum::<f64>())
                    .collect()
            })
            .collect()),
        Fitted::Forest(forests) => {
            let m = DenseMatrix::new(rows, width, x.to_vec(), false)
                .map_err(FallbackReason::Training)?;
            forests
                .iter()
                .map(|f| f.predict(&m).map_err(FallbackReason::Training))
                .collect()
        }
    }
}
