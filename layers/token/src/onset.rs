//! Where the next peak begins, read from a load forecast.
//!
//! The planner prefetches ahead of a peak's onset. A peak already under way
//! is not planned for again: its sessions were given long tokens with spread
//! expiries before it began (or, when the gateway started inside it, keep
//! refreshing reactively), and planning it anew would put every session
//! whose token ends before the newly forecast end into one burst at `now`,
//! the opposite of spreading. So the planner looks past the current peak for
//! the next onset within its horizon.

use std::time::Duration;

use foresight_core::signal::LoadSignal;

/// How long until the next onset (the forecast rising to `threshold`)
/// within `within`, scanning the forecast in `step`s past a peak that is on
/// now; `None` if the forecast shows none.
pub(crate) fn next_onset(
    signal: &dyn LoadSignal,
    threshold: f64,
    within: Duration,
    step: Duration,
) -> Option<Duration> {
    let until = signal.will_exceed(threshold, within)?;
    if !until.is_zero() {
        return Some(until);
    }
    let step = step.max(Duration::from_secs(1));
    let mut ahead = Duration::ZERO;
    let mut below = false;
    while ahead < within {
        ahead = (ahead + step).min(within);
        let high = signal.forecast(ahead)?.mean >= threshold;
        if below && high {
            return Some(ahead);
        }
        below |= !high;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use foresight_core::signal::Forecast;

    /// Load 1.0 over the given `[from, to)` minute ranges, 0.0 elsewhere.
    #[derive(Debug)]
    struct Minutes(Vec<(u64, u64)>);

    impl Minutes {
        fn at(&self, h: Duration) -> f64 {
            let m = h.as_secs() / 60;
            if self.0.iter().any(|&(from, to)| (from..to).contains(&m)) {
                1.0
            } else {
                0.0
            }
        }
    }

    impl LoadSignal for Minutes {
        fn forecast(&self, horizon: Duration) -> Option<Forecast> {
            (horizon <= Duration::from_secs(6 * 3600)).then(|| {
                let mean = self.at(horizon);
                Forecast {
                    mean,
                    lower: mean,
                    upper: mean,
                }
            })
        }

        fn will_exceed(&self, threshold: f64, within: Duration) -> Option<Duration> {
            (0..=within.as_secs() / 60)
                .map(|m| Duration::from_secs(m * 60))
                .find(|h| self.at(*h) >= threshold)
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_peak_ahead_is_its_own_onset() {
        let signal = Minutes(vec![(30, 90)]);
        assert_eq!(
            next_onset(&signal, 0.5, 120 * MINUTE, MINUTE),
            Some(30 * MINUTE)
        );
        assert_eq!(next_onset(&signal, 0.5, 20 * MINUTE, MINUTE), None);
    }

    #[test]
    fn a_peak_under_way_is_skipped_for_the_next_onset() {
        let signal = Minutes(vec![(0, 40), (100, 160)]);
        assert_eq!(
            next_onset(&signal, 0.5, 180 * MINUTE, MINUTE),
            Some(100 * MINUTE)
        );
        // Only the current peak within reach: nothing to plan.
        assert_eq!(next_onset(&signal, 0.5, 90 * MINUTE, MINUTE), None);
        // A peak that lasts past the forecast's reach: nothing to plan.
        let long = Minutes(vec![(0, 1000)]);
        assert_eq!(next_onset(&long, 0.5, 180 * MINUTE, 10 * MINUTE), None);
    }
}
