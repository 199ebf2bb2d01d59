//! Predicted degradation: what a [`HealthSignal`] (a forecaster) says about
//! an instance, with the hold that keeps an oscillating prediction from
//! moving sessions back and forth, and the feed of every attempt to a
//! [`HealthRecorder`](foresight_core::signal::HealthRecorder).
//!
//! An episode opens when the signal predicts a degradation within the lead
//! for a Healthy instance: it moves to Degraded and its keys drain to their
//! secondaries, each key once. The episode closes only on a probe that
//! passes (faster than the recovery ratio times the baseline) while the
//! signal predicts nothing and has predicted nothing for the hold. The
//! signal is asked at most once per interval per instance while the
//! instance is Healthy, Degraded or under probe, and once more at each
//! probe's end; a prediction that flips on and off faster than the hold
//! keeps the instance out instead of readmitting it between flips.

use std::time::Duration;

use foresight_core::HealthState;
use foresight_core::signal::HealthSignal;

use std::sync::atomic::Ordering::Relaxed;

use super::baseline::Baseline;
use super::instance::InstanceStats;
use super::transition::Event;
use super::{Outcome, Reason, Tracker};
use crate::clock::{claim_refresh, nanos};
use crate::metrics::Counter;

impl Tracker {
    /// Whether the signal predicts `stats` to degrade, asked at most once
    /// per interval; moves a Healthy instance to Degraded if so, unless as
    /// many instances as may be ejected at once are already out on a
    /// prediction: a slowdown predicted for most of the fleet is the
    /// fleet's (a host under load), and moving sessions would not avoid it.
    pub(super) fn predicted(&self, stats: &InstanceStats, now: u64) -> bool {
        if !self.poll_signal(stats, now) {
            return false;
        }
        let table = self.table();
        let limit =
            ((table.map.len() as f64 * self.config.max_ejected_share).floor() as usize).max(1);
        let out = table
            .map
            .values()
            .filter(|s| {
                s.id != stats.id
                    && s.predicted_out.load(Relaxed)
                    && s.state() != HealthState::Healthy
            })
            .count();
        if out >= limit {
            self.counters.add(Counter::PredictionsSuppressed);
            tracing::debug!(instance = %stats.id, out, limit, "prediction not acted on");
            return false;
        }
        self.mark_predicted_out(stats, now);
        let _ = self.apply(stats, Event::Slowed, now, Reason::Predicted);
        true
    }

    /// Opens a predicted episode for `stats`, if none is open: notes the
    /// fleet baseline and its own latency, which a readmitting probe must
    /// beat.
    fn mark_predicted_out(&self, stats: &InstanceStats, now: u64) {
        if !stats.predicted_out.swap(true, Relaxed) {
            let baseline = self.baseline(now).median;
            stats.predicted_baseline.store(baseline.to_bits(), Relaxed);
            stats
                .predicted_latency
                .store(stats.latency().to_bits(), Relaxed);
        }
    }

    /// While `stats` is out of rotation: asks the signal at most once per
    /// interval, and a prediction opens an episode if none is open.
    pub(super) fn poll_while_out(&self, stats: &InstanceStats, now: u64) {
        if self.poll_signal(stats, now) {
            self.mark_predicted_out(stats, now);
        }
    }

    /// Asks the signal about `stats` unless it was asked less than an
    /// interval ago; true when it predicts a degradation.
    pub(super) fn poll_signal(&self, stats: &InstanceStats, now: u64) -> bool {
        let Some(signal) = &self.config.signal else {
            return false;
        };
        claim_refresh(&stats.signal_at, now, nanos(self.config.signal_interval))
            && self.ask(&**signal, stats, now)
    }

    fn ask(&self, signal: &dyn HealthSignal, stats: &InstanceStats, now: u64) -> bool {
        let predicted = signal
            .predicted_degradation(&stats.id, self.config.signal_lead)
            .is_some();
        if predicted {
            stats.predicted_seen.store(now, Relaxed);
        }
        predicted
    }

    /// Whether a prediction still keeps `stats` out of rotation at the end
    /// of a probe that took `seconds`: the signal predicts a degradation
    /// now; or, during an episode a prediction opened, it did less than the
    /// hold ago, or the probe is slower than the recovery ratio times the
    /// fleet baseline of when the episode began, or slower than the
    /// instance's own latency average then (a latency still climbing has
    /// not recovered). A drained instance gets no traffic but its probes,
    /// so a forecaster fed by live attempts soon has nothing new to predict
    /// from: a cleared prediction alone does not show a recovery, the
    /// probe's own latency does.
    pub(super) fn prediction_holds(&self, stats: &InstanceStats, seconds: f64, now: u64) -> bool {
        let Some(signal) = &self.config.signal else {
            return false;
        };
        if self.ask(&**signal, stats, now) {
            self.mark_predicted_out(stats, now);
            return true;
        }
        if !stats.predicted_out.load(Relaxed) {
            return false;
        }
        let before = f64::from_bits(stats.predicted_baseline.load(Relaxed));
        let own = f64::from_bits(stats.predicted_latency.load(Relaxed));
        now.saturating_sub(stats.predicted_seen.load(Relaxed)) < nanos(self.config.signal_hold)
            || (own > 0.0 && seconds > own)
            || self.is_slow(
                seconds,
                &Baseline::of_median(before),
                self.config.recover_ratio,
            )
    }

    /// Reports a finished (or cancelled) attempt to the recorder, if any:
    /// its latency, and whether the instance failed it.
    #[inline]
    pub(super) fn record_attempt(&self, stats: &InstanceStats, outcome: Outcome, latency: u64) {
        if let Some(recorder) = &self.config.recorder {
            recorder.record_attempt(
                &stats.id,
                Duration::from_nanos(latency),
                outcome == Outcome::Failure,
            );
        }
    }
}
