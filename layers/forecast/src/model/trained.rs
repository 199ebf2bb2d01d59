//! A trained model: coefficients per horizon and residual quantiles.

use smartcore::ensemble::random_forest_regressor::RandomForestRegressor;
use smartcore::linalg::basic::matrix::DenseMatrix;

use super::features::{FeatureSpec, Times, clean, prefix_sums};
use crate::error::FallbackReason;
use foresight_core::signal::Forecast;

pub(crate) type Forest = RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;

#[derive(Debug)]
pub(crate) enum Fitted {
    /// `weights` is horizons × width, row-major, on raw (unscaled) features.
    Linear {
        weights: Box<[f64]>,
        intercepts: Box<[f64]>,
    },
    Forest(Vec<Forest>),
}

/// A model trained on one series: predicts the change over each horizon
/// from level-free features, with residual-quantile intervals.
///
/// Produced by [`train`](crate::model::train); immutable and shared
/// (`Arc`) between the trainer and the readers.
#[derive(Debug)]
pub struct Model {
    pub(crate) spec: FeatureSpec,
    pub(crate) fitted: Fitted,
    /// Residual quantiles per horizon, added to the point forecast.
    pub(crate) lower: Box<[f64]>,
    pub(crate) upper: Box<[f64]>,
}

impl Model {
    /// Number of horizons (steps 1..=horizons).
    pub fn horizons(&self) -> usize {
        self.lower.len()
    }

    /// Samples a prediction needs: the lag and window span plus the origin.
    pub fn context(&self) -> usize {
        self.spec.warmup() + 1
    }

    /// Predicted change over each horizon at origin `t` of the cleaned `y`.
    fn changes(
        &self,
        y: &[f64],
        prefix: Option<&[f64]>,
        t: usize,
        time: Option<f64>,
        x: &mut [f64],
        out: &mut [f64],
    ) {
        self.spec.write(y, prefix, t, time, x);
        match &self.fitted {
            Fitted::Linear {
                weights,
                intercepts,
            } => {
                let w = self.spec.width();
                for (h, o) in out.iter_mut().enumerate() {
                    let row = &weights[h * w..(h + 1) * w];
                    *o = intercepts[h] + row.iter().zip(x.iter()).map(|(a, b)| a * b).sum::<f64>();
                }
            }
            Fitted::Forest(forests) => {
                let m = DenseMatrix::new(1, x.len(), x.to_vec(), false);
                for (o, f) in out.iter_mut().zip(forests) {
                    *o = m
                        .as_ref()
                        .ok()
                        .and_then(|m| f.predict(m).ok())
                        .and_then(|p| p.first().copied())
                        .unwrap_or(0.0);
                }
            }
        }
    }

    /// Forecasts every horizon from the newest samples of a series.
    ///
    /// `recent` holds at least [`context`](Self::context) samples, oldest
    /// first (NaN gaps are filled); `time` is the time of its last sample.
    /// Writes `min(out.len(), horizons)` forecasts.
    pub fn predict(
        &self,
        recent: &[f64],
        time: Option<f64>,
        out: &mut [Forecast],
    ) -> Result<(), FallbackReason> {
        let mut y = Vec::with_capacity(recent.len());
        clean(recent, &mut y)?;
        let need = self.context();
        if y.len() < need {
            return Err(FallbackReason::TooShort {
                have: y.len(),
                need,
            });
        }
        let t = y.len() - 1;
        let mut x = vec![0.0; self.spec.width()];
        let mut d = vec![0.0; self.horizons()];
        self.changes(&y, None, t, time, &mut x, &mut d);
        for (h, (f, change)) in out.iter_mut().zip(&d).enumerate() {
            *f = self.forecast(y[t], *change, h);
        }
        Ok(())
    }

    fn forecast(&self, last: f64, change: f64, h: usize) -> Forecast {
        let mean = last + change;
        Forecast {
            mean,
            lower: (mean + self.lower[h]).min(mean),
            upper: (mean + self.upper[h]).max(mean),
        }
    }

    /// Rolling-origin forecasts: for every origin `t` in `origins`, the
    /// point forecast of each horizon, using only samples up to `t`.
    /// Returns `origins.len() × horizons` values, row-major.
    pub fn backtest(
        &self,
        values: &[f64],
        times: Times<'_>,
        origins: std::ops::Range<usize>,
    ) -> Result<Vec<f64>, FallbackReason> {
        let mut y = Vec::with_capacity(values.len());
        clean(values, &mut y)?;
        let hs = self.horizons();
        let start = origins.start.max(self.spec.warmup());
        let end = origins.end.min(y.len());
        let mut out = vec![f64::NAN; origins.len() * hs];
        if start >= end {
            return Ok(out);
        }
        let prefix = prefix_sums(&y);
        let width = self.spec.width();
        if let Fitted::Forest(forests) = &self.fitted {
            // One matrix for all origins: a forest predicts in batches.
            let rows = end - start;
            let mut data = vec![0.0; rows * width];
            for (r, t) in (start..end).enumerate() {
                self.spec.write(
                    &y,
                    Some(&prefix),
                    t,
                    times.at(t),
                    &mut data[r * width..(r + 1) * width],
                );
            }
            let m = DenseMatrix::new(rows, width, data, false).map_err(FallbackReason::Training)?;
            for (h, f) in forests.iter().enumerate() {
                let p = f.predict(&m).map_err(FallbackReason::Training)?;
                for (r, t) in (start..end).enumerate() {
                    out[(t - origins.start) * hs + h] = y[t] + p[r];
                }
            }
            return Ok(out);
        }
        let mut x = vec![0.0; width];
        let mut d = vec![0.0; hs];
        for t in start..end {
            self.changes(&y, Some(&prefix), t, times.at(t), &mut x, &mut d);
            let row = &mut out[(t - origins.start) * hs..(t - origins.start + 1) * hs];
            for (o, c) in row.iter_mut().zip(&d) {
                *o = y[t] + c;
            }
        }
        Ok(out)
    }
}
