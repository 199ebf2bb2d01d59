//! A trace prepared for replay: the training part, the replayed window, the
//! mapping from trace values to active sessions and from trace time to
//! simulated time.

use std::sync::Arc;
use std::time::Duration;

use super::trace::{Trace, TraceError, quantile};

const DAY: f64 = 86_400.0;

/// The global settings of a replay, the same for every trace.
///
/// Defaults: 4,000 sessions; 28 days fast-forwarded into the forecaster,
/// then one day replayed, 30 trace seconds per simulated second (a day in
/// 48 simulated minutes); 60 s tokens, refreshed by the gateway within 10 s
/// of expiry; an active session sends a request every 60 s on average; at
/// trace value `v` a share `0.02 + 0.98 min(1, v / p99)` of the sessions is
/// active (`p99`: the 99th percentile of the training part); a peak is a
/// value at or above a quarter of that `p99`; prefetches spread over 480 s
/// (4 trace hours) before a predicted onset, lifetimes extended by up to one
/// trace day; the forecaster works on 30-minute steps (finer traces are
/// averaged into them) and forecasts one day ahead; 240 simulated seconds
/// (2 trace hours) of warm-up before the replay, played but not measured.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Sessions simulated.
    pub sessions: usize,
    /// Days of the trace fast-forwarded into the forecaster before the
    /// replay.
    pub train_days: u32,
    /// Days replayed.
    pub replay_days: u32,
    /// Trace seconds per simulated second.
    pub compression: f64,
    /// Base token lifetime (simulated).
    pub lifetime: Duration,
    /// Gateway refresh margin before expiry (reactive refreshes).
    pub margin: Duration,
    /// Mean simulated seconds between two requests of an active session.
    pub request_every: f64,
    /// Share of sessions active at zero load.
    pub floor: f64,
    /// A peak is a trace value at or above this share of the training
    /// part's 99th percentile.
    pub peak_share: f64,
    /// Spreading window before a predicted onset (simulated).
    pub lead: Duration,
    /// Longest lifetime extension of a prefetched token (simulated).
    pub max_extension: Duration,
    /// Margin after the predicted end of a peak, and jitter of the
    /// prefetched expiries after it (simulated).
    pub after_peak: (Duration, Duration),
    /// The forecaster's step, trace seconds.
    pub forecast_step: f64,
    /// The forecaster's reach, trace seconds.
    pub forecast_reach: f64,
    /// Share of its lifetime, at the end, within which a session of the
    /// jittered row refreshes early (uniformly).
    pub jitter_share: f64,
    /// Simulated time played before the replay's start and not measured,
    /// so that the replay starts in a steady state.
    pub warmup: Duration,
}

impl Default for Scenario {
    fn default() -> Self {
        let compression = 30.0;
        Self {
            sessions: 4_000,
            train_days: 28,
            replay_days: 1,
            compression,
            lifetime: Duration::from_secs(60),
            margin: Duration::from_secs(10),
            request_every: 60.0,
            floor: 0.02,
            peak_share: 0.25,
            lead: Duration::from_secs(600),
            max_extension: Duration::from_secs_f64(DAY / compression),
            after_peak: (Duration::from_secs(60), Duration::from_secs(240)),
            forecast_step: 1800.0,
            forecast_reach: DAY,
            jitter_share: 0.3,
            warmup: Duration::from_secs(300),
        }
    }
}

/// A trace under a [`Scenario`]: where the replay starts and ends, what the
/// load means in sessions, what counts as a peak. Everything here is derived
/// from the training part (before the replay) and the global settings.
#[derive(Debug, Clone)]
pub struct Replay {
    trace: Arc<Trace>,
    scenario: Scenario,
    start: f64,
    end: f64,
    scale: f64,
    threshold: f64,
}

/// Simulated Unix time of the replay's start.
pub const SIM_T0: u64 = 1_767_225_600;

impl Replay {
    /// Prepares `trace`: the first `train_days` days train; the replay
    /// starts on the next day at the hour the training part's mean daily
    /// profile first falls below the peak threshold for its longest quiet
    /// stretch (its quietest hour when there is none), so that the day's
    /// first rush has its whole spreading window inside the replay.
    pub fn new(trace: Arc<Trace>, scenario: Scenario) -> Result<Self, TraceError> {
        let first = trace.times()[0];
        let train_end = first + f64::from(scenario.train_days) * DAY;
        let history: Vec<f64> = trace
            .times()
            .iter()
            .zip(trace.values())
            .filter(|(t, _)| **t < train_end)
            .map(|(_, v)| *v)
            .collect();
        if history.len() < 2 {
            return Err(TraceError::TooShort);
        }
        let scale = quantile(history.iter().copied(), 0.99).max(f64::MIN_POSITIVE);
        let threshold = scenario.peak_share * scale;
        let hour = quiet_hour(&trace, train_end, threshold);
        let start = (train_end / DAY).ceil() * DAY + f64::from(hour) * 3600.0;
        let end = start + f64::from(scenario.replay_days) * DAY;
        if end > *trace.times().last().unwrap_or(&0.0) {
            return Err(TraceError::TooShort);
        }
        Ok(Self {
            trace,
            scenario,
            start,
            end,
            scale,
            threshold,
        })
    }

    /// The trace.
    pub fn trace(&self) -> &Arc<Trace> {
        &self.trace
    }

    /// The settings.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Trace time of the replay's start and end, Unix seconds.
    pub fn window(&self) -> (f64, f64) {
        (self.start, self.end)
    }

    /// The peak threshold, in trace units.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// The 99th percentile of the training part (full activity).
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Simulated seconds replayed.
    pub fn sim_seconds(&self) -> u64 {
        ((self.end - self.start) / self.scenario.compression).round() as u64
    }

    /// Trace time at simulated Unix time `sim`.
    pub fn to_trace(&self, sim: f64) -> f64 {
        self.start + (sim - SIM_T0 as f64) * self.scenario.compression
    }

    /// Simulated Unix time at trace time `t`.
    pub fn to_sim(&self, t: f64) -> f64 {
        SIM_T0 as f64 + (t - self.start) / self.scenario.compression
    }

    /// Share of sessions active at trace time `t`.
    pub fn activity(&self, t: f64) -> f64 {
        let f = self.scenario.floor;
        f + (1.0 - f) * (self.trace.value_at(t) / self.scale).clamp(0.0, 1.0)
    }

    /// Whether trace time `t` is inside a peak.
    pub fn in_peak(&self, t: f64) -> bool {
        self.trace.value_at(t) >= self.threshold
    }

    /// Onsets inside the replay: trace times where the value rises to the
    /// threshold after at least an hour below it.
    pub fn onsets(&self) -> Vec<f64> {
        let mut out = Vec::new();
        let mut below_since = None;
        for (&t, &v) in self.trace.times().iter().zip(self.trace.values()) {
            if v < self.threshold {
                below_since.get_or_insert(t);
            } else {
                if let Some(since) = below_since
                    && t - since >= 3600.0
                    && (self.start..self.end).contains(&t)
                {
                    out.push(t);
                }
                below_since = None;
            }
        }
        out
    }
}

/// The hour of day (UTC) that starts the longest run of hours whose mean
/// training value is below `threshold`; the quietest hour when none is.
fn quiet_hour(trace: &Trace, train_end: f64, threshold: f64) -> u32 {
    let mut sums = [(0.0, 0u32); 24];
    for (&t, &v) in trace.times().iter().zip(trace.values()) {
        if t < train_end {
            let h = ((t.rem_euclid(DAY)) / 3600.0) as usize % 24;
            sums[h].0 += v;
            sums[h].1 += 1;
        }
    }
    let mean: Vec<f64> = sums
        .iter()
        .map(|(s, n)| {
            if *n == 0 {
                f64::INFINITY
            } else {
                s / f64::from(*n)
            }
        })
        .collect();
    let quiet: Vec<bool> = mean.iter().map(|m| *m < threshold).collect();
    if quiet.iter().all(|q| *q) || !quiet.iter().any(|q| *q) {
        return (0..24)
            .min_by(|a, b| mean[*a].total_cmp(&mean[*b]))
            .unwrap_or(0) as u32;
    }
    let mut best = (0, 0);
    for h in 0..24 {
        if quiet[h] && !quiet[(h + 23) % 24] {
            let len = (0..24).take_while(|k| quiet[(h + k) % 24]).count();
            if len > best.1 {
                best = (h, len);
            }
        }
    }
    best.0 as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 40 days of hourly samples: 100 from 08:00 to 20:00, 10 otherwise.
    fn daily() -> Arc<Trace> {
        let mut csv = String::from("timestamp,value\n");
        for d in 0..40 {
            for h in 0..24 {
                let v = if (8..20).contains(&h) { 100 } else { 10 };
                let (month, day) = if d < 31 { (1, d + 1) } else { (2, d - 30) };
                csv.push_str(&format!("2015-{month:02}-{day:02} {h:02}:00:00,{v}\n"));
            }
        }
        Arc::new(Trace::parse("daily", &csv).unwrap())
    }

    #[test]
    fn the_replay_starts_at_the_quiet_stretch_after_training() {
        let r = Replay::new(daily(), Scenario::default()).unwrap();
        let (start, end) = r.window();
        // The quiet stretch runs from 20:00 to 08:00.
        assert_eq!(start.rem_euclid(DAY), 20.0 * 3600.0);
        assert_eq!(end - start, DAY);
        assert_eq!(r.scale(), 100.0);
        assert_eq!(r.threshold(), 25.0);
        assert_eq!(r.onsets().len(), 1);
        assert_eq!(r.onsets()[0].rem_euclid(DAY), 8.0 * 3600.0);
        assert!((r.activity(r.onsets()[0]) - 1.0).abs() < 1e-9);
        assert_eq!(r.to_trace(r.to_sim(start + 3600.0)), start + 3600.0);
        assert_eq!(r.sim_seconds(), 2880);
    }

    #[test]
    fn a_short_trace_is_refused() {
        let short = Scenario {
            train_days: 39,
            ..Scenario::default()
        };
        assert!(matches!(
            Replay::new(daily(), short),
            Err(TraceError::TooShort)
        ));
    }
}
