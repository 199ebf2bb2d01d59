//! Small statistics shared by training and evaluation.

/// The `p` quantile of `sorted` (ascending, non-empty) with linear
/// interpolation between order statistics (numpy's default method).
pub(crate) fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    debug_assert!(!sorted.is_empty());
    let pos = p.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// The `p` quantile of `values` (sorted in place), or NaN when empty.
pub(crate) fn quantile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_unstable_by(f64::total_cmp);
    quantile_sorted(values, p)
}

/// Mean of `|y[t] − y[t−1]|`: the one-step naive error, the MASE scale.
pub(crate) fn mean_abs_diff(y: &[f64]) -> f64 {
    if y.len() < 2 {
        return 0.0;
    }
    y.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / (y.len() - 1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates() {
        let mut v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&mut v, 0.0), 1.0);
        assert_eq!(quantile(&mut v, 1.0), 4.0);
        assert!((quantile(&mut v, 0.5) - 2.5).abs() < 1e-12);
        assert!((quantile(&mut v, 0.9) - 3.7).abs() < 1e-12);
        assert!(quantile(&mut [], 0.5).is_nan());
    }

    #[test]
    fn naive_scale() {
        assert_eq!(mean_abs_diff(&[1.0, 3.0, 2.0]), 1.5);
        assert_eq!(mean_abs_diff(&[1.0]), 0.0);
    }
}
