//! Target selection: which candidate of a route serves a first attempt, a
//! replay or a hedge, given the health of each; the drain of a Degraded
//! instance's keys; and when a probe goes out.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use foresight_core::{HealthState, Route};

use super::instance::InstanceStats;
use super::transition::Event;
use super::{Pick, Reason, Tracker};
use crate::clock::nanos;
use crate::metrics::Counter;

/// Seed of the key hash that orders keys during a drain.
const DRAIN_SEED: u64 = 0x6472_6169_6e21;

impl Tracker {
    /// The target of a first attempt: the first Healthy candidate; a
    /// Degraded one whose keys are not drained yet; a due probe (only for a
    /// replayable request, so a failed probe is replayed); else the fastest
    /// (lowest latency average) Degraded candidate, so that a key whose
    /// candidates are all degraded is not left on the slowest. `None` when
    /// every candidate is out of rotation.
    pub(crate) fn choose(&self, route: &Route, replayable: bool, now: u64) -> Option<Pick> {
        let table = self.table();
        let mut fallback = Fastest::default();
        for (index, id) in route.ranked.iter().enumerate() {
            let Some(stats) = table.map.get(id) else {
                continue;
            };
            let pick = |probe| {
                Some(Pick {
                    index,
                    stats: stats.clone(),
                    probe,
                })
            };
            let mut state = stats.state();
            if state == HealthState::Healthy {
                if !self.predicted(stats, now) {
                    return pick(false);
                }
                state = HealthState::Degraded;
            }
            match state {
                HealthState::Healthy => unreachable!("handled above"),
                HealthState::Degraded => {
                    self.poll_while_out(stats, now);
                    // A Degraded instance still serves, so any request may
                    // probe it.
                    if self.try_probe_degraded(stats, now) {
                        return pick(true);
                    }
                    if !self.drained(stats, route, now) {
                        return pick(false);
                    }
                    fallback.offer(index, stats);
                }
                HealthState::Ejected => {
                    if self.try_probe_ejected(stats, replayable, now) {
                        return pick(true);
                    }
                }
                HealthState::Probing => {
                    self.poll_while_out(stats, now);
                    // A probe whose request was cancelled freed its turn.
                    if replayable
                        && stats
                            .probe
                            .compare_exchange(false, true, Relaxed, Relaxed)
                            .is_ok()
                    {
                        self.counters.add(Counter::Probes);
                        return pick(true);
                    }
                    // A Degraded instance under probe still serves.
                    if stats.probing_degraded.load(Relaxed) {
                        fallback.offer(index, stats);
                    }
                }
            }
        }
        fallback.index.map(|index| Pick {
            index,
            stats: table.map[&route.ranked[index]].clone(),
            probe: false,
        })
    }

    /// The target of a replay: the first Healthy candidate not tried yet,
    /// else the fastest Degraded one.
    pub(crate) fn next_candidate(&self, route: &Route, tried: u32) -> Option<Pick> {
        let table = self.table();
        let mut degraded = Fastest::default();
        for (index, id) in route.ranked.iter().enumerate() {
            if index >= 32 || tried & (1 << index) != 0 {
                continue;
            }
            let Some(stats) = table.map.get(id) else {
                continue;
            };
            match stats.state() {
                HealthState::Healthy => {
                    return Some(Pick {
                        index,
                        stats: stats.clone(),
                        probe: false,
                    });
                }
                HealthState::Degraded => degraded.offer(index, stats),
                HealthState::Probing if stats.probing_degraded.load(Relaxed) => {
                    degraded.offer(index, stats)
                }
                _ => {}
            }
        }
        degraded.index.map(|index| Pick {
            index,
            stats: table.map[&route.ranked[index]].clone(),
            probe: false,
        })
    }

    /// How long until the first candidate of `route` may be probed.
    pub(crate) fn retry_after(&self, route: &Route, now: u64) -> Duration {
        let table = self.table();
        route
            .ranked
            .iter()
            .filter_map(|id| table.map.get(id))
            .map(|s| Duration::from_nanos(s.until.load(Relaxed).saturating_sub(now)))
            .min()
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_millis(1))
    }

    /// During a drain, keys leave a Degraded instance in a fixed order, a
    /// growing share over the drain period, so the secondary warms up
    /// instead of taking every session at once.
    fn drained(&self, stats: &InstanceStats, route: &Route, now: u64) -> bool {
        let drain = nanos(self.config.drain);
        let elapsed = now.saturating_sub(stats.drain_from.load(Relaxed));
        if elapsed >= drain {
            return true;
        }
        let share = elapsed as f64 / drain as f64;
        let position = route.key.hash_with_seed(DRAIN_SEED) as f64 / u64::MAX as f64;
        position < share
    }

    fn try_probe_degraded(&self, stats: &InstanceStats, now: u64) -> bool {
        let since = stats.since.load(Relaxed);
        if now.saturating_sub(since) < nanos(self.config.degraded_probe_interval) {
            return false;
        }
        self.apply(stats, Event::ProbeDue, now, Reason::Latency)
    }

    /// A replayable request probes as soon as the backoff is over (its
    /// failure is replayed). A non-replayable one only after one more base
    /// backoff without a replayable request, so that an instance behind
    /// non-idempotent traffic only (gRPC, say) is still readmitted.
    fn try_probe_ejected(&self, stats: &InstanceStats, replayable: bool, now: u64) -> bool {
        let mut due = stats.until.load(Relaxed);
        if !replayable {
            due = due.saturating_add(nanos(self.config.base_ejection));
        }
        if now < due {
            return false;
        }
        self.apply(stats, Event::ProbeDue, now, Reason::ProbeFailed)
    }
}

/// The candidate with the lowest latency average among those offered; the
/// first offered on ties (rank order).
#[derive(Default)]
struct Fastest {
    index: Option<usize>,
    latency: f64,
}

impl Fastest {
    fn offer(&mut self, index: usize, stats: &InstanceStats) {
        let latency = stats.latency();
        if self.index.is_none() || latency < self.latency {
            self.index = Some(index);
            self.latency = latency;
        }
    }
}
