//! Per-instance health learned from live traffic, and the state machine
//! Healthy → Degraded → Ejected → Probing → Healthy.
//!
//! The state itself lives in the topology's [`HealthSlot`] so that every
//! layer of the router reads the same answer; the figures it is derived from
//! (streaks, windows, backoff) live here, one [`InstanceStats`] per member,
//! in a table rebuilt when the membership changes. All figures are relaxed
//! atomics; rare decisions that must count the whole set (ejections, under
//! the maximum ejected share) take a mutex.
//!
//! What an event does to the state is the pure function of
//! [`transition`]; this module decides which events happen and applies
//! their actions. Target selection is in `select.rs`, predictions in
//! `predict.rs`.
//!
//! [`HealthSlot`]: foresight_core::HealthSlot

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};
use foresight_core::{HealthState, InstanceId, Topology};
use tokio::time::Instant;

use self::baseline::{Baseline, SharedBaseline};
use self::instance::IdMap;
pub(crate) use self::instance::InstanceStats;
use self::transition::{Action, Event, step};
use crate::budget::ReplayBudget;
use crate::clock::{claim_refresh, nanos};
use crate::config::Config;
use crate::metrics::{Counter, Counters};
use crate::stats::FailoverStats;

/// How often (ns) an instance's hedge delay is recomputed from its latency
/// histogram.
const HEDGE_REFRESH: u64 = 20_000_000;

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failure,
    /// The attempt was dropped before it finished (client gone, or the
    /// layer moved on).
    Cancelled,
    /// The client's request body failed: nothing counts against the
    /// instance.
    ClientError,
}

/// Why an instance changed state; logged.
#[derive(Clone, Copy, Debug)]
enum Reason {
    ConsecutiveFailures,
    FailingForWindow,
    ErrorRatio,
    Probation,
    ProbeFailed,
    Latency,
    Predicted,
}

struct Table {
    epoch: u64,
    map: IdMap<Arc<InstanceStats>>,
}

/// A candidate chosen for an attempt.
pub(crate) struct Pick {
    pub(crate) index: usize,
    pub(crate) stats: Arc<InstanceStats>,
    pub(crate) probe: bool,
}

/// Health of every instance of a topology, shared by all clones of a layer.
pub(crate) struct Tracker {
    topology: Topology,
    pub(crate) config: Config,
    table: ArcSwap<Table>,
    rebuild: Mutex<()>,
    eject: Mutex<()>,
    origin: Instant,
    baseline: SharedBaseline,
    pub(crate) budget: ReplayBudget,
    pub(crate) counters: Counters,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("instances", &self.table.load().map.len())
            .field("stats", &self.counters.snapshot())
            .finish()
    }
}

fn guard(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Tracker {
    pub(crate) fn new(topology: Topology, config: Config) -> Self {
        let budget = ReplayBudget::new(
            config.budget_ttl,
            config.budget_min_per_sec,
            config.budget_percent,
        );
        let tracker = Self {
            table: ArcSwap::from_pointee(Table {
                epoch: u64::MAX,
                map: IdMap::default(),
            }),
            topology,
            config,
            rebuild: Mutex::new(()),
            eject: Mutex::new(()),
            origin: Instant::now(),
            baseline: SharedBaseline::default(),
            budget,
            counters: Counters::default(),
        };
        tracker.sync();
        tracker
    }

    /// Nanoseconds since the tracker was made, never 0.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        nanos(Instant::now().saturating_duration_since(self.origin)) + 1
    }

    pub(crate) fn stats(&self) -> FailoverStats {
        self.counters.snapshot()
    }

    #[inline]
    fn table(&self) -> Guard<Arc<Table>> {
        let table = self.table.load();
        if table.epoch == self.topology.load().epoch() {
            return table;
        }
        drop(table);
        self.sync();
        self.table.load()
    }

    /// Rebuilds the table after a membership change, keeping the figures of
    /// instances that stayed.
    fn sync(&self) {
        let _rebuilding = guard(&self.rebuild);
        let members = self.topology.snapshot();
        let current = self.table.load_full();
        if current.epoch == members.epoch() {
            return;
        }
        let map = members
            .iter()
            .map(|i| {
                let stats = match current.map.get(i.id()) {
                    Some(s) if Arc::ptr_eq(&s.slot, i.health()) => s.clone(),
                    _ => Arc::new(InstanceStats::new(
                        i.id().clone(),
                        i.health().clone(),
                        self.config.error_window,
                    )),
                };
                (i.id().clone(), stats)
            })
            .collect();
        self.table.store(Arc::new(Table {
            epoch: members.epoch(),
            map,
        }));
    }

    /// The figures of `id`, while it is a member.
    pub(crate) fn instance(&self, id: &InstanceId) -> Option<Arc<InstanceStats>> {
        self.table().map.get(id).cloned()
    }

    /// Timeout of an attempt on `stats`, if the policy sets one.
    pub(crate) fn attempt_timeout(&self, stats: &InstanceStats) -> Option<Duration> {
        self.config.attempt_timeout.for_latency(stats.latency())
    }

    /// How long an attempt on `stats` runs before it is hedged, when
    /// hedging is on and the instance has enough latency samples. Read from
    /// a figure recomputed at most every [`HEDGE_REFRESH`].
    pub(crate) fn hedge_delay(&self, stats: &InstanceStats, now: u64) -> Option<Duration> {
        let hedging = self.config.hedging.as_ref()?;
        if claim_refresh(&stats.hedge_at, now, HEDGE_REFRESH) {
            let delay = match stats.latencies.quantile(hedging.quantile) {
                Some((quantile, samples)) if samples >= hedging.min_samples => {
                    quantile.max(nanos(hedging.min_delay)).max(1)
                }
                _ => 0,
            };
            stats.hedge_nanos.store(delay, Relaxed);
        }
        match stats.hedge_nanos.load(Relaxed) {
            0 => None,
            delay => Some(Duration::from_nanos(delay)),
        }
    }

    pub(crate) fn start(&self, stats: &InstanceStats) {
        stats.in_flight.fetch_add(1, Relaxed);
    }

    /// Records the end of an attempt started at `started` (see [`Outcome`]).
    pub(crate) fn finish(
        &self,
        stats: &InstanceStats,
        outcome: Outcome,
        probe: bool,
        started: u64,
        now: u64,
    ) {
        stats.in_flight.fetch_sub(1, Relaxed);
        let latency = now.saturating_sub(started);
        if matches!(outcome, Outcome::Success | Outcome::Cancelled) {
            // A cancelled attempt (a hedge won, or the client left) adds
            // what it had waited: a lower bound, which keeps the quantile
            // from drifting down as hedges cancel the slow attempts.
            stats.latencies.record(latency, now, self.latency_window());
        }
        self.record_attempt(stats, outcome, latency);
        let seconds = latency as f64 / 1e9;
        if probe && outcome != Outcome::Success {
            stats.probe.store(false, Relaxed);
        }
        match outcome {
            Outcome::Success => self.succeeded(stats, probe, seconds, now),
            Outcome::Failure => {
                stats.count(now, true);
                let failures = stats.failures.fetch_add(1, Relaxed) + 1;
                let _ = stats
                    .streak_start
                    .compare_exchange(0, now, Relaxed, Relaxed);
                if probe {
                    self.eject(stats, now, Reason::ProbeFailed, true);
                } else if let Some(reason) = self.ejection_reason(stats, failures, now) {
                    self.eject(stats, now, reason, false);
                }
            }
            Outcome::ClientError => {}
            Outcome::Cancelled => {
                // A cancelled attempt still tells how long it had waited.
                if seconds > stats.latency() {
                    stats.observe(seconds, now, nanos(self.config.ewma_decay));
                }
            }
        }
    }

    fn succeeded(&self, stats: &InstanceStats, probe: bool, seconds: f64, now: u64) {
        // Loads before stores: on the common path nothing changes, and
        // cores serving the same instance need not pass its cache line back
        // and forth.
        if stats.failures.load(Relaxed) != 0 {
            stats.failures.store(0, Relaxed);
        }
        if stats.streak_start.load(Relaxed) != 0 {
            stats.streak_start.store(0, Relaxed);
        }
        stats.count(now, false);
        stats.observe(seconds, now, nanos(self.config.ewma_decay));
        let baseline = self.baseline(now);
        if probe {
            stats.probe.store(false, Relaxed);
            if stats.state() != HealthState::Probing {
                return;
            }
            // The probe of an Ejected instance tests that it is back: it
            // was put out for failing, and its answer may have waited out
            // the outage (an instance stopped, then resumed). Its latency
            // is judged once it serves again, by the slow-response rule.
            // The probe of a Degraded instance tests that it is fast again.
            let slow = stats.probing_degraded.load(Relaxed)
                && self.is_slow(seconds, &baseline, self.config.recover_ratio);
            let event = if self.prediction_holds(stats, seconds, now) || slow {
                tracing::debug!(instance = %stats.id, "probe answered, still degraded");
                Event::ProbeSlow
            } else {
                Event::ProbePassed
            };
            let _ = self.apply(stats, event, now, Reason::Latency);
        } else if self.is_slow(seconds, &baseline, self.config.degrade_ratio) {
            let slow = stats.slow.fetch_add(1, Relaxed) + 1;
            if slow == 1 {
                stats.slow_since.store(now, Relaxed);
            }
            let since = stats.slow_since.load(Relaxed);
            let span = if since == 0 {
                0
            } else {
                now.saturating_sub(since)
            };
            if slow >= self.config.slow_samples && span >= nanos(self.config.slow_span) {
                let _ = self.apply(stats, Event::Slowed, now, Reason::Latency);
            }
        } else if stats.slow.load(Relaxed) != 0 {
            stats.slow.store(0, Relaxed);
            stats.slow_since.store(0, Relaxed);
        }
    }

    pub(super) fn is_slow(&self, seconds: f64, baseline: &Baseline, ratio: f64) -> bool {
        baseline.is_slow(seconds, ratio, self.config.latency_floor.as_secs_f64())
    }

    fn ejection_reason(&self, stats: &InstanceStats, failures: u32, now: u64) -> Option<Reason> {
        let config = &self.config;
        let state = stats.state();
        if !matches!(state, HealthState::Healthy | HealthState::Degraded) {
            return None;
        }
        if failures >= config.consecutive_failures {
            return Some(Reason::ConsecutiveFailures);
        }
        let streak = now.saturating_sub(stats.streak_start.load(Relaxed));
        if failures >= 2 && streak >= nanos(config.failure_window) {
            return Some(Reason::FailingForWindow);
        }
        if state == HealthState::Healthy
            && stats.ejections.load(Relaxed) > 0
            && now.saturating_sub(stats.since.load(Relaxed)) < nanos(config.base_ejection)
        {
            return Some(Reason::Probation);
        }
        let (requests, failed) = stats.totals(now);
        if requests >= config.min_requests
            && f64::from(failed) >= config.error_ratio * f64::from(requests)
        {
            return Some(Reason::ErrorRatio);
        }
        None
    }

    /// Moves `stats` out of rotation on a failure (`probe`: its probe
    /// failed), unless that would put more than the maximum share of the set
    /// out of rotation.
    fn eject(&self, stats: &InstanceStats, now: u64, reason: Reason, probe: bool) {
        let _deciding = guard(&self.eject);
        let table = self.table();
        let limit =
            ((table.map.len() as f64 * self.config.max_ejected_share).floor() as usize).max(1);
        let out = table
            .map
            .values()
            .filter(|s| s.id != stats.id)
            .filter(|s| matches!(s.state(), HealthState::Ejected | HealthState::Probing))
            .count();
        let room = out < limit;
        let event = if probe {
            Event::ProbeFailed { room }
        } else {
            Event::Failing { room }
        };
        if !room && stats.state() != HealthState::Ejected {
            tracing::debug!(instance = %stats.id, out, limit, "ejection suppressed");
        }
        let _ = self.apply(stats, event, now, reason);
    }

    /// Applies `event` to `stats`: the next state and action from
    /// [`step`]. A slowdown or a due probe may be seen by many requests at
    /// once, so it moves the state with a compare-and-set and only the
    /// winner acts; the other events have one owner (the probe's attempt,
    /// or the ejection mutex), which prepares the figures readers of the new
    /// state need before it sets it.
    /// Returns whether the event applied (and the caller won the race).
    fn apply(&self, stats: &InstanceStats, event: Event, now: u64, reason: Reason) -> bool {
        let from = stats.state();
        let Some(next) = step(from, event) else {
            return false;
        };
        let moved = next.to != from;
        if matches!(event, Event::Slowed | Event::ProbeDue) {
            if !stats.slot.transition(from, next.to) {
                return false;
            }
            if next.to != HealthState::Probing {
                stats.since.store(now, Relaxed);
            }
        } else {
            self.prepare(stats, from, next.action, now, reason);
            if moved {
                stats.since.store(now, Relaxed);
                stats.slot.set_state(next.to);
            }
        }
        self.act(stats, next.action, now, reason);
        true
    }

    /// What must be in place before the state changes: the backoff of an
    /// ejection (no reader may see an Ejected instance with the backoff of
    /// its last episode), the cleared figures of a readmission. Backoff
    /// doubles with each ejection, and starts over after an instance stayed
    /// healthy for the longest backoff.
    fn prepare(
        &self,
        stats: &InstanceStats,
        from: HealthState,
        action: Action,
        now: u64,
        reason: Reason,
    ) {
        let config = &self.config;
        match action {
            Action::Eject => {
                let mut ejections = stats.ejections.load(Relaxed);
                if from == HealthState::Healthy
                    && now.saturating_sub(stats.since.load(Relaxed)) >= nanos(config.max_ejection)
                {
                    ejections = 0;
                }
                let backoff = config
                    .base_ejection
                    .saturating_mul(1u32 << ejections.min(16))
                    .min(config.max_ejection);
                stats.ejections.store(ejections + 1, Relaxed);
                stats
                    .until
                    .store(now.saturating_add(nanos(backoff)), Relaxed);
                stats.probe.store(false, Relaxed);
                stats.slow.store(0, Relaxed);
                tracing::warn!(instance = %stats.id, ?reason, ?backoff, "instance ejected");
            }
            Action::Readmit => {
                stats.clear_failures();
                stats.predicted_out.store(false, Relaxed);
            }
            _ => {}
        }
    }

    fn act(&self, stats: &InstanceStats, action: Action, now: u64, reason: Reason) {
        match action {
            Action::None => {}
            Action::Drain => {
                stats.drain_from.store(now, Relaxed);
                stats.slow.store(0, Relaxed);
                self.counters.add(Counter::Degradations);
                tracing::info!(instance = %stats.id, ?reason, "instance degraded");
            }
            Action::Probe { serving } => {
                stats.probing_degraded.store(serving, Relaxed);
                stats.probe.store(true, Relaxed);
                self.counters.add(Counter::Probes);
                tracing::debug!(instance = %stats.id, serving, "instance probed");
            }
            Action::Readmit => {
                self.counters.add(Counter::Readmissions);
                tracing::info!(instance = %stats.id, "instance readmitted");
            }
            Action::Eject => self.counters.add(Counter::Ejections),
            Action::Suppress => self.counters.add(Counter::EjectionsSuppressed),
        }
    }
}

mod baseline;
mod instance;
mod predict;
mod quantile;
mod select;
mod transition;

#[cfg(test)]
mod tests;
