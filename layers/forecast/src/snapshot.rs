//! The published forecast table that request-path reads use.

use std::time::Duration;

use crate::Forecast;

/// Forecasts for every step of the horizon, computed when the last step
/// closed. Readers get it through `arc-swap`: no lock and no allocation.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// `table[k]` is the forecast `k + 1` steps ahead; empty without data.
    table: Box<[Forecast]>,
    /// The newest sample.
    last: f64,
    step_secs: f64,
    /// Whether a trained model (not the naive forecast) produced `table`.
    modelled: bool,
}

impl Snapshot {
    pub(crate) fn empty(step: Duration) -> Self {
        Self {
            table: Box::new([]),
            last: f64::NAN,
            step_secs: step.as_secs_f64(),
            modelled: false,
        }
    }

    pub(crate) fn new(table: Box<[Forecast]>, last: f64, step: Duration, modelled: bool) -> Self {
        Self {
            table,
            last,
            step_secs: step.as_secs_f64(),
            modelled,
        }
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
        if steps > max * (1.0 + 1e-9) {
            return None;
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
        let within = within.as_secs_f64();
        for (k, f) in self.table.iter().enumerate() {
            let at = self.step_secs * (k + 1) as f64;
            if at > within {
                break;
            }
            if f.mean > threshold {
                return Some(Duration::from_secs_f64(at));
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
}
