//! The published forecast table that request-path reads use.

use std::time::Duration;

use crate::Forecast;

/// Forecasts for every step of the horizon, computed when the last step
/// closed. Readers get it through `arc-swap`: no lock and no allocation.
///
/// Beyond `table`, the seasonal model's coarser table (`far`) answers when
/// the forecaster's step is shorter than its buckets; past both, up to
/// `max_steps`, the last forecast is held flat.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// `table[k]` is the forecast `k + 1` steps ahead; empty without data.
    table: Box<[Forecast]>,
    /// The newest sample.
    last: f64,
    step_secs: f64,
    /// Whether a trained model (not the naive forecast) produced `table`.
    modelled: bool,
    /// The furthest horizon answered, in steps.
    max_steps: f64,
    far: Option<Far>,
}

/// The seasonal model's forecasts at its bucket step.
#[derive(Debug)]
pub(crate) struct Far {
    /// `table[j]` is the forecast `j + 1` buckets after the newest closed
    /// bucket; a NaN mean where the seasonal model is not chosen.
    pub(crate) table: Box<[Forecast]>,
    /// Seconds from the newest closed bucket to the newest sample.
    pub(crate) lag: f64,
    pub(crate) bucket_secs: f64,
}

impl Far {
    /// The forecast `secs` after the newest sample, if the seasonal model
    /// answers there.
    fn at(&self, secs: f64) -> Option<Forecast> {
        let pos = ((self.lag + secs) / self.bucket_secs - 1.0).max(0.0);
        let last = self.table.len().checked_sub(1)?;
        let k = (pos.floor() as usize).min(last);
        let frac = if k == last { 0.0 } else { pos - k as f64 };
        let a = self.table[k];
        let b = self.table[(k + 1).min(last)];
        if !a.mean.is_finite() || !b.mean.is_finite() {
            return None;
        }
        let mix = |x: f64, y: f64| x + (y - x) * frac;
        Some(Forecast {
            mean: mix(a.mean, b.mean),
            lower: mix(a.lower, b.lower),
            upper: mix(a.upper, b.upper),
        })
    }
}

impl Snapshot {
    pub(crate) fn empty(step: Duration) -> Self {
        Self {
            table: Box::new([]),
            last: f64::NAN,
            step_secs: step.as_secs_f64(),
            modelled: false,
            max_steps: 0.0,
            far: None,
        }
    }

    pub(crate) fn new(table: Box<[Forecast]>, last: f64, step: Duration, modelled: bool) -> Self {
        Self {
            max_steps: table.len() as f64,
            table,
            last,
            step_secs: step.as_secs_f64(),
            modelled,
            far: None,
        }
    }

    /// Answers up to `max_horizon`, from `far` beyond the table.
    pub(crate) fn with_far(mut self, far: Option<Far>, max_horizon: Duration) -> Self {
        self.far = far;
        self.max_steps = self
            .max_steps
            .max(max_horizon.as_secs_f64() / self.step_secs);
        self
    }

    pub(crate) fn modelled(&self) -> bool {
        self.modelled
    }

    fn at(&self, steps: usize) -> Forecast {
        match steps {
            0 => Forecast {
                mean: self.last,
                lower: self.last,
                upper: self.last,
            },
            k => self.table[k - 1],
        }
    }

    /// The forecast `horizon` ahead, interpolated linearly between steps;
    /// `None` without data or beyond the furthest horizon.
    pub(crate) fn forecast(&self, horizon: Duration) -> Option<Forecast> {
        if self.table.is_empty() {
            return None;
        }
        let steps = horizon.as_secs_f64() / self.step_secs;
        let max = self.table.len() as f64;
        if steps > self.max_steps * (1.0 + 1e-9) {
            return None;
        }
        if steps > max * (1.0 + 1e-9) {
            let far = self.far.as_ref().and_then(|f| f.at(horizon.as_secs_f64()));
            return Some(far.unwrap_or(self.table[self.table.len() - 1]));
        }
        let steps = steps.min(max);
        let k = steps.floor() as usize;
        let frac = steps - k as f64;
        let a = self.at(k);
        if frac <= 0.0 || k >= self.table.len() {
            return Some(a);
        }
        let b = self.at(k + 1);
        let mix = |x: f64, y: f64| x + (y - x) * frac;
        Some(Forecast {
            mean: mix(a.mean, b.mean),
            lower: mix(a.lower, b.lower),
            upper: mix(a.upper, b.upper),
        })
    }

    /// Time until the point forecast passes `threshold`, if it does within
    /// `within` (checked at step boundaries); zero when it already has.
    pub(crate) fn will_exceed(&self, threshold: f64, within: Duration) -> Option<Duration> {
        if self.table.is_empty() {
            return None;
        }
        if self.last > threshold {
            return Some(Duration::ZERO);
        }
        let within = within.as_secs_f64().min(self.max_steps * self.step_secs);
        for (k, f) in self.table.iter().enumerate() {
            let at = self.step_secs * (k + 1) as f64;
            if at > within {
                return None;
            }
            if f.mean > threshold {
                return Some(Duration::from_secs_f64(at));
            }
        }
        let near = self.step_secs * self.table.len() as f64;
        if let Some(far) = &self.far {
            for j in 0..far.table.len() {
                let at = far.bucket_secs * (j + 1) as f64 - far.lag;
                if at <= near {
                    continue;
                }
                if at > within {
                    break;
                }
                if far.table[j].mean > threshold {
                    return Some(Duration::from_secs_f64(at));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(v: f64) -> Forecast {
        Forecast {
            mean: v,
            lower: v - 1.0,
            upper: v + 1.0,
        }
    }

    #[test]
    fn interpolates_and_bounds() {
        let s = Snapshot::new(
            vec![flat(2.0), flat(4.0)].into_boxed_slice(),
            0.0,
            Duration::from_secs(10),
            true,
        );
        assert_eq!(s.forecast(Duration::ZERO).unwrap().mean, 0.0);
        assert_eq!(s.forecast(Duration::from_secs(5)).unwrap().mean, 1.0);
        assert_eq!(s.forecast(Duration::from_secs(15)).unwrap().mean, 3.0);
        assert_eq!(s.forecast(Duration::from_secs(20)).unwrap(), flat(4.0));
        assert_eq!(s.forecast(Duration::from_secs(21)), None);
        assert_eq!(
            s.will_exceed(3.0, Duration::from_secs(60)),
            Some(Duration::from_secs(20))
        );
        assert_eq!(s.will_exceed(3.0, Duration::from_secs(19)), None);
        assert_eq!(s.will_exceed(-1.0, Duration::ZERO), Some(Duration::ZERO));
        assert_eq!(
            Snapshot::empty(Duration::from_secs(1)).forecast(Duration::ZERO),
            None
        );
    }

    /// Past the fine table, the seasonal table answers at its own step,
    /// measured from the newest closed bucket; where it is not chosen, the
    /// last fine forecast is held.
    #[test]
    fn far_table_extends_the_horizon() {
        let far = Far {
            table: vec![flat(100.0), flat(200.0), flat(f64::NAN), flat(400.0)].into_boxed_slice(),
            lag: 30.0,
            bucket_secs: 300.0,
        };
        let s = Snapshot::new(
            vec![flat(2.0), flat(4.0)].into_boxed_slice(),
            0.0,
            Duration::from_secs(10),
            true,
        )
        .with_far(Some(far), Duration::from_secs(1_500));
        assert_eq!(s.forecast(Duration::from_secs(20)).unwrap(), flat(4.0));
        // 270 s after the newest sample is 300 s after the bucket: entry 0.
        assert_eq!(s.forecast(Duration::from_secs(270)).unwrap().mean, 100.0);
        assert_eq!(s.forecast(Duration::from_secs(420)).unwrap().mean, 150.0);
        // Entry 2 is not chosen: the last fine forecast is held.
        assert_eq!(s.forecast(Duration::from_secs(870)).unwrap().mean, 4.0);
        assert_eq!(s.forecast(Duration::from_secs(1_170)).unwrap().mean, 400.0);
        assert_eq!(s.forecast(Duration::from_secs(1_501)), None);
        assert_eq!(
            s.will_exceed(150.0, Duration::from_secs(1_000)),
            Some(Duration::from_secs(570))
        );
        assert_eq!(s.will_exceed(300.0, Duration::from_secs(1_000)), None);
        assert_eq!(
            s.will_exceed(300.0, Duration::from_secs(1_500)),
            Some(Duration::from_secs(1_170))
        );
    }
}
