//! The naive forecast's interval, used while no model is trained.

use crate::stats::quantile;

/// Residual quantiles of the naive forecast per horizon: the empirical
/// `(1 − coverage) / 2` and `1 − (1 − coverage) / 2` quantiles of the
/// h-step changes of the cleaned series `y`. Zero where there are none.
pub(crate) fn naive_band(y: &[f64], horizons: usize, coverage: f64) -> (Box<[f64]>, Box<[f64]>) {
    let tail = (1.0 - coverage) / 2.0;
    let mut lower = vec![0.0; horizons];
    let mut upper = vec![0.0; horizons];
    let mut changes = Vec::with_capacity(y.len());
    for h in 1..=horizons {
        if y.len() <= h {
            break;
        }
        changes.clear();
        changes.extend(y.windows(h + 1).map(|w| w[h] - w[0]));
        lower[h - 1] = quantile(&mut changes, tail).min(0.0);
        upper[h - 1] = quantile(&mut changes, 1.0 - tail).max(0.0);
    }
    (lower.into_boxed_slice(), upper.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_brackets_zero() {
        let y: Vec<f64> = (0..100).map(|i| f64::from(i % 7)).collect();
        let (lo, hi) = naive_band(&y, 3, 0.9);
        for h in 0..3 {
            assert!(lo[h] <= 0.0 && hi[h] >= 0.0);
        }
        let (lo, hi) = naive_band(&[1.0], 2, 0.9);
        assert_eq!((&*lo, &*hi), (&[0.0, 0.0][..], &[0.0, 0.0][..]));
    }
}
