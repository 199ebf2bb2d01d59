//! Cleaning a series and turning it into level-free features.

use crate::error::FallbackReason;

/// When the samples of a series were taken, for the calendar features.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub enum Times<'a> {
    /// Unknown: calendar features are zero.
    #[default]
    Unknown,
    /// Evenly spaced: sample `i` at `start + i * step` (seconds since the
    /// Unix epoch, UTC).
    Regular {
        /// Time of sample 0, in seconds since the Unix epoch.
        start: f64,
        /// Seconds between samples.
        step: f64,
    },
    /// One time per sample, in seconds since the Unix epoch.
    Explicit(&'a [f64]),
}

impl Times<'_> {
    /// Time of sample `i`, if known.
    pub(crate) fn at(&self, i: usize) -> Option<f64> {
        match *self {
            Times::Unknown => None,
            Times::Regular { start, step } => Some(start + step * i as f64),
            Times::Explicit(times) => times.get(i).copied().filter(|t| t.is_finite()),
        }
    }
}

/// Replaces NaN and infinite samples (gaps) by the previous finite value,
/// and leading ones by the first finite value.
pub(crate) fn clean(values: &[f64], out: &mut Vec<f64>) -> Result<(), FallbackReason> {
    out.clear();
    if values.is_empty() {
        return Err(FallbackReason::NoData);
    }
    let first =
        values
            .iter()
            .copied()
            .find(|v| v.is_finite())
            .ok_or(FallbackReason::NonFinite {
                samples: values.len(),
            })?;
    let mut last = first;
    out.extend(values.iter().map(|&v| {
        if v.is_finite() {
            last = v;
        }
        last
    }));
    Ok(())
}

/// The feature layout of a model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FeatureSpec {
    pub(crate) lags: usize,
    pub(crate) windows: Vec<usize>,
    pub(crate) calendar: bool,
    /// Differences are clipped to `±clip` (absolute units).
    pub(crate) clip: f64,
}

const DAY: f64 = 86_400.0;
const WEEK: f64 = 7.0 * DAY;

impl FeatureSpec {
    /// Number of features.
    pub(crate) fn width(&self) -> usize {
        self.lags + self.windows.len() + if self.calendar { 4 } else { 0 }
    }

    /// The first index that can be a forecast origin.
    pub(crate) fn warmup(&self) -> usize {
        let w = self.windows.iter().copied().max().unwrap_or(0);
        self.lags.max(w.saturating_sub(1))
    }

    /// Writes the features of origin `t` into `out` (`width()` long).
    /// `prefix[i]` is the sum of `y[..i]`; without it, window means are
    /// summed directly.
    pub(crate) fn write(
        &self,
        y: &[f64],
        prefix: Option<&[f64]>,
        t: usize,
        time: Option<f64>,
        out: &mut [f64],
    ) {
        let c = self.clip;
        for i in 0..self.lags {
            out[i] = (y[t - i] - y[t - i - 1]).clamp(-c, c);
        }
        for (j, &w) in self.windows.iter().enumerate() {
            let sum = match prefix {
                Some(p) => p[t + 1] - p[t + 1 - w],
                None => y[t + 1 - w..=t].iter().sum(),
            };
            out[self.lags + j] = y[t] - sum / w as f64;
        }
        if self.calendar {
            let k = self.lags + self.windows.len();
            let (day, week) = match time {
                Some(s) => (
                    std::f64::consts::TAU * s.rem_euclid(DAY) / DAY,
                    std::f64::consts::TAU * s.rem_euclid(WEEK) / WEEK,
                ),
                None => (0.0, 0.0),
            };
            out[k] = day.sin();
            out[k + 1] = day.cos();
            out[k + 2] = week.sin();
            out[k + 3] = week.cos();
        }
    }
}

/// `prefix[i]` = sum of `y[..i]`.
pub(crate) fn prefix_sums(y: &[f64]) -> Vec<f64> {
    let mut p = Vec::with_capacity(y.len() + 1);
    let mut s = 0.0;
    p.push(s);
    for &v in y {
        s += v;
        p.push(s);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_fills_gaps() {
        let mut out = Vec::new();
        clean(&[f64::NAN, 1.0, f64::INFINITY, 3.0, f64::NAN], &mut out).unwrap();
        assert_eq!(out, [1.0, 1.0, 1.0, 3.0, 3.0]);
        assert!(matches!(
            clean(&[f64::NAN; 3], &mut out),
            Err(FallbackReason::NonFinite { samples: 3 })
        ));
        assert!(matches!(clean(&[], &mut out), Err(FallbackReason::NoData)));
    }

    #[test]
    fn features_match_with_and_without_prefix() {
        let spec = FeatureSpec {
            lags: 3,
            windows: vec![4],
            calendar: true,
            clip: 100.0,
        };
        let y: Vec<f64> = (0..10).map(|i| f64::from(i * i)).collect();
        let p = prefix_sums(&y);
        let mut a = vec![0.0; spec.width()];
        let mut b = vec![0.0; spec.width()];
        spec.write(&y, Some(&p), 6, Some(3600.0), &mut a);
        spec.write(&y, None, 6, Some(3600.0), &mut b);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-9);
        }
        assert_eq!(&a[..3], &[11.0, 9.0, 7.0]);
        assert_eq!(a[3], 36.0 - (9.0 + 16.0 + 25.0 + 36.0) / 4.0);
        assert_eq!(spec.warmup(), 3);
    }
}
