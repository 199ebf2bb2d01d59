//! Ridge regression for all horizons at once, from sufficient statistics.

use smartcore::error::Failed;
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linalg::traits::cholesky::CholeskyDecomposable;
use smartcore::linalg::traits::svd::SVDDecomposable;

use super::trained::Fitted;
use crate::error::FallbackReason;

/// Sufficient statistics of a ridge fit over a set of rows: sums of the
/// features, of their products, and of their products with each target.
///
/// One pass over the rows serves every horizon and both fits (the early
/// rows for the interval, all rows for the model), and the normal equations
/// of all horizons are solved with a single smartcore Cholesky
/// factorisation: the same estimate as `smartcore::linear::RidgeRegression`
/// on standardised features, which would build and factor the system once
/// per horizon.
///
/// With an intercept (a drift: the mean change over each horizon), the
/// sums are taken around the column means of all rows, so that a feature
/// with a large mean and a small spread keeps its precision. Without one,
/// the fit goes through the origin: no change is predicted when the recent
/// differences are all zero, as in an ARIMA(p, 1, q) without constant.
#[derive(Debug, Clone)]
pub(super) struct Moments {
    width: usize,
    hs: usize,
    intercept: bool,
    shift_x: Vec<f64>,
    shift_y: Vec<f64>,
    n: f64,
    sx: Vec<f64>,
    /// Upper triangle used, `width × width`.
    sxx: Vec<f64>,
    /// `width × hs`.
    sxy: Vec<f64>,
    sy: Vec<f64>,
}

impl Moments {
    /// Empty moments for rows of `x` and `targets`; with an `intercept`,
    /// centred on their column means.
    pub(super) fn new(
        x: &[f64],
        targets: &[f64],
        width: usize,
        hs: usize,
        intercept: bool,
    ) -> Self {
        let column_means = |data: &[f64], cols: usize| {
            let mut m = vec![0.0; cols];
            if !intercept {
                return m;
            }
            for row in data.chunks_exact(cols) {
                m.iter_mut().zip(row).for_each(|(m, v)| *m += v);
            }
            let rows = (data.len() / cols).max(1) as f64;
            m.iter_mut().for_each(|m| *m /= rows);
            m
        };
        Self {
            width,
            hs,
            intercept,
            shift_x: column_means(x, width),
            shift_y: column_means(targets, hs),
            n: 0.0,
            sx: vec![0.0; width],
            sxx: vec![0.0; width * width],
            sxy: vec![0.0; width * hs],
            sy: vec![0.0; hs],
        }
    }

    pub(super) fn add_rows(&mut self, x: &[f64], targets: &[f64]) {
        let (p, hs) = (self.width, self.hs);
        let mut row = vec![0.0; p];
        let mut t = vec![0.0; hs];
        for (raw_x, raw_t) in x.chunks_exact(p).zip(targets.chunks_exact(hs)) {
            row.iter_mut()
                .zip(raw_x)
                .zip(&self.shift_x)
                .for_each(|((r, v), s)| *r = v - s);
            t.iter_mut()
                .zip(raw_t)
                .zip(&self.shift_y)
                .for_each(|((r, v), s)| *r = v - s);
            self.n += 1.0;
            for (i, &xi) in row.iter().enumerate() {
                self.sx[i] += xi;
                let sxx = &mut self.sxx[i * p..(i + 1) * p];
                for (acc, &xj) in sxx[i..].iter_mut().zip(&row[i..]) {
                    *acc += xi * xj;
                }
                let sxy = &mut self.sxy[i * hs..(i + 1) * hs];
                for (acc, &th) in sxy.iter_mut().zip(&t) {
                    *acc += xi * th;
                }
            }
            for (acc, &th) in self.sy.iter_mut().zip(&t) {
                *acc += th;
            }
        }
    }

    /// Ridge with penalty `alpha · n` on standardised features; the scaling
    /// is folded back into the weights so that a prediction is one dot
    /// product on raw features.
    pub(super) fn solve(&self, alpha: f64, columns: &[usize]) -> Result<Fitted, FallbackReason> {
        let (width, hs, n) = (self.width, self.hs, self.n);
        let p = columns.len();
        let sx: Vec<f64> = columns.iter().map(|&c| self.sx[c]).collect();
        let shift_x: Vec<f64> = columns.iter().map(|&c| self.shift_x[c]).collect();
        // Without an intercept, nothing is centred: `k` removes the means.
        let k = if self.intercept { 1.0 } else { 0.0 };
        let mean: Vec<f64> = sx.iter().map(|s| k * s / n).collect();
        let cov = |i: usize, j: usize| {
            let (a, b) = (columns[i], columns[j]);
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            self.sxx[a * width + b] - k * self.sx[a] * self.sx[b] / n
        };
        // A constant column keeps a unit scale: the penalty then holds its
        // weight at zero.
        let sd: Vec<f64> = (0..p)
            .map(|i| {
                let v = (cov(i, i) / n).max(0.0).sqrt();
                if v > 1e-12 { v } else { 1.0 }
            })
            .collect();
        let mut a = Vec::with_capacity(p * p);
        for (i, sd_i) in sd.iter().enumerate() {
            for (j, sd_j) in sd.iter().enumerate() {
                let ridge = if i == j { alpha * n } else { 0.0 };
                a.push(cov(i, j) / (sd_i * sd_j) + ridge);
            }
        }
        let mut b = Vec::with_capacity(p * hs);
        for (i, sd_i) in sd.iter().enumerate() {
            for (h, sy) in self.sy.iter().enumerate() {
                b.push((self.sxy[columns[i] * hs + h] - k * sx[i] * sy / n) / sd_i);
            }
        }
        let a = DenseMatrix::new(p, p, a, false).map_err(FallbackReason::Training)?;
        let b = DenseMatrix::new(p, hs, b, false).map_err(FallbackReason::Training)?;
        // Cholesky first; SVD if rounding left the system indefinite.
        let w = match a.clone().cholesky_solve_mut(b.clone()) {
            Ok(w) => w,
            Err(_) => a.svd_solve_mut(b).map_err(FallbackReason::Training)?,
        };
        let mut weights = vec![0.0; hs * p];
        let mut intercepts = vec![0.0; hs];
        for h in 0..hs {
            // In the original coordinates: y = c + w·x, with the shifts
            // added back.
            let mut c = k * self.sy[h] / n + self.shift_y[h];
            for i in 0..p {
                let wi = *w.get((i, h)) / sd[i];
                weights[h * p + i] = wi;
                c -= wi * (mean[i] + shift_x[i]);
            }
            intercepts[h] = c;
        }
        if weights.iter().chain(&intercepts).any(|w| !w.is_finite()) {
            return Err(FallbackReason::Training(Failed::fit(
                "non-finite coefficients",
            )));
        }
        Ok(Fitted::Linear {
            weights: weights.into_boxed_slice(),
            intercepts: intercepts.into_boxed_slice(),
        })
    }
}

#[cfg(test)]
mod tests {
    use smartcore::linear::ridge_regression::{RidgeRegression, RidgeRegressionParameters};

    use smartcore::linalg::basic::arrays::Array;
    use smartcore::linalg::basic::matrix::DenseMatrix;

    use super::*;

    /// The one-pass solve gives smartcore's RidgeRegression estimate.
    #[test]
    fn matches_smartcore_ridge() {
        let (rows, p, hs) = (200, 4, 2);
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let x: Vec<f64> = (0..rows * p).map(|_| next()).collect();
        let targets: Vec<f64> = x
            .chunks_exact(p)
            .flat_map(|r| {
                let a = 1.0 + 2.0 * r[0] - r[3];
                [a, -0.5 * r[1] + 3.0]
            })
            .map(|v| v + 0.1 * next())
            .collect();
        let mut m = Moments::new(&x, &targets, p, hs, true);
        m.add_rows(&x, &targets);
        let Fitted::Linear {
            weights,
            intercepts,
        } = m.solve(0.01, &[0, 1, 2, 3]).unwrap()
        else {
            unreachable!()
        };
        let matrix = DenseMatrix::new(rows, p, x.clone(), false).unwrap();
        for h in 0..hs {
            let y: Vec<f64> = targets.iter().skip(h).step_by(hs).copied().collect();
            let params = RidgeRegressionParameters::default()
                .with_alpha(0.01 * rows as f64)
                .with_normalize(true);
            let reference = RidgeRegression::fit(&matrix, &y, params).unwrap();
            for i in 0..p {
                let expected = *reference.coefficients().get((i, 0));
                assert!((weights[h * p + i] - expected).abs() < 1e-9, "{h} {i}");
            }
            assert!((intercepts[h] - *reference.intercept()).abs() < 1e-9);
        }
    }

    /// Without an intercept, no change is predicted from zero differences.
    #[test]
    fn through_the_origin() {
        let x = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 0.0, 0.0, 2.0];
        let targets: Vec<f64> = x.chunks_exact(2).map(|r| 5.0 + r[0] - r[1]).collect();
        let mut m = Moments::new(&x, &targets, 2, 1, false);
        m.add_rows(&x, &targets);
        let Fitted::Linear { intercepts, .. } = m.solve(0.001, &[0, 1]).unwrap() else {
            unreachable!()
        };
        assert_eq!(intercepts[0], 0.0);
    }
}
