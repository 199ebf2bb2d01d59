//! Per-instance health learned from live traffic, and the state machine
//! Healthy → Degraded → Ejected → Probing → Healthy.
//!
//! The state itself lives in the topology's [`HealthSlot`] so that every
//! layer of the router reads the same answer; the figures it is derived from
//! (streaks, windows, backoff) live here, one [`InstanceStats`] per member,
//! in a table rebuilt when the membership changes. All figures are relaxed
//! atomics; rare decisions that must count the whole set (ejections, under
//! the maximum ejected share) take a mutex.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};
use foresight_core::{HealthSlot, HealthState, InstanceId, Route, Topology};
use tokio::time::Instant;

use self::quantile::LatencyQuantiles;
use crate::budget::ReplayBudget;
use crate::layer::Config;
use crate::stats::{Counters, FailoverStats};

const R: Ordering = Ordering::Relaxed;
const ERROR_SLOTS: usize = 10;
/// How often the fleet latency baseline is recomputed.
const BASELINE_REFRESH: u64 = 100_000_000;
/// How often (ns) an instance's hedge delay is recomputed from its latency
/// histogram.
const HEDGE_REFRESH: u64 = 20_000_000;
/// Seed of the key hash that orders keys during a drain.
const DRAIN_SEED: u64 = 0x6472_6169_6e21;

/// A small FNV-1a hasher for instance ids: short strings, trusted input.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type IdMap<V> = HashMap<InstanceId, V, BuildHasherDefault<IdHasher>>;

/// Whether the caller should recompute a figure stamped `stamp` (0: never
/// computed): true for exactly one caller once `every` has passed since the
/// stamp, which moves to `now`. Readers of the figure never wait.
fn claim_refresh(stamp: &AtomicU64, now: u64, every: u64) -> bool {
    let at = stamp.load(R);
    (at == 0 || now.saturating_sub(at) >= every) && stamp.compare_exchange(at, now, R, R).is_ok()
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

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

/// Why an instance changed state; logged and counted.
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

#[derive(Debug, Default)]
struct ErrorSlot {
    epoch: AtomicU64,
    ok: AtomicU32,
    failed: AtomicU32,
}

/// Successes and failures over a sliding window of ten slots.
#[derive(Debug, Default)]
struct ErrorWindow {
    slots: [ErrorSlot; ERROR_SLOTS],
}

impl ErrorWindow {
    fn record(&self, epoch: u64, failed: bool) {
        let slot = &self.slots[(epoch % ERROR_SLOTS as u64) as usize];
        let seen = slot.epoch.load(Ordering::Acquire);
        if seen != epoch
            && slot
                .epoch
                .compare_exchange(seen, epoch, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            slot.ok.store(0, R);
            slot.failed.store(0, R);
        }
        if failed {
            slot.failed.fetch_add(1, R);
        } else {
            slot.ok.fetch_add(1, R);
        }
    }

    /// `(requests, failures)` in the window ending at `epoch`.
    fn totals(&self, epoch: u64) -> (u32, u32) {
        self.slots
            .iter()
            .filter(|s| s.epoch.load(Ordering::Acquire) + ERROR_SLOTS as u64 > epoch)
            .fold((0, 0), |(n, f), s| {
                let failed = s.failed.load(R);
                (n + s.ok.load(R) + failed, f + failed)
            })
    }

    fn clear(&self) {
        for slot in &self.slots {
            slot.epoch.store(0, R);
            slot.ok.store(0, R);
            slot.failed.store(0, R);
        }
    }
}

/// What the layer knows about one instance beyond its state.
#[derive(Debug)]
pub(crate) struct InstanceStats {
    pub(crate) id: InstanceId,
    slot: Arc<HealthSlot>,
    in_flight: AtomicU32,
    failures: AtomicU32,
    streak_start: AtomicU64,
    slow: AtomicU32,
    ewma_bits: AtomicU64,
    ewma_at: AtomicU64,
    window: ErrorWindow,
    since: AtomicU64,
    /// When the current Degraded episode began (Healthy → Degraded): the
    /// drain runs from here, and a probe that finds the instance still
    /// degraded does not start it over.
    drain_from: AtomicU64,
    until: AtomicU64,
    ejections: AtomicU32,
    probe: AtomicBool,
    /// Probing a Degraded (still serving) instance, not an Ejected one.
    probing_degraded: AtomicBool,
    signal_at: AtomicU64,
    /// Out of rotation on a prediction that has not been followed by a
    /// readmission yet.
    predicted_out: AtomicBool,
    /// When the signal last predicted a degradation (0: never).
    predicted_seen: AtomicU64,
    /// The fleet baseline and its own latency average (f64 seconds) when
    /// the prediction moved it out: a readmitting probe must beat both.
    predicted_baseline: AtomicU64,
    predicted_latency: AtomicU64,
    /// Latency histogram, filled only when hedging is on.
    latencies: LatencyQuantiles,
    /// The hedge delay last computed (ns, 0 = none) and when.
    hedge_nanos: AtomicU64,
    hedge_at: AtomicU64,
}

impl InstanceStats {
    fn new(id: InstanceId, slot: Arc<HealthSlot>) -> Self {
        Self {
            id,
            slot,
            in_flight: AtomicU32::new(0),
            failures: AtomicU32::new(0),
            streak_start: AtomicU64::new(0),
            slow: AtomicU32::new(0),
            ewma_bits: AtomicU64::new(0f64.to_bits()),
            ewma_at: AtomicU64::new(0),
            window: ErrorWindow::default(),
            since: AtomicU64::new(0),
            drain_from: AtomicU64::new(0),
            until: AtomicU64::new(0),
            ejections: AtomicU32::new(0),
            probe: AtomicBool::new(false),
            probing_degraded: AtomicBool::new(false),
            signal_at: AtomicU64::new(0),
            predicted_out: AtomicBool::new(false),
            predicted_seen: AtomicU64::new(0),
            predicted_baseline: AtomicU64::new(0f64.to_bits()),
            predicted_latency: AtomicU64::new(0f64.to_bits()),
            latencies: LatencyQuantiles::default(),
            hedge_nanos: AtomicU64::new(0),
            hedge_at: AtomicU64::new(0),
        }
    }

    pub(crate) fn state(&self) -> HealthState {
        self.slot.state()
    }

    /// Peak-EWMA latency in seconds (0 before the first sample).
    pub(crate) fn latency(&self) -> f64 {
        f64::from_bits(self.ewma_bits.load(R))
    }

    /// Requests in flight to this instance through this layer.
    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(R)
    }

    /// Peak EWMA: a sample above the average replaces it at once; below, it
    /// decays toward the sample with time constant `tau`.
    fn observe(&self, seconds: f64, now: u64, tau: u64) {
        let prev = self.latency();
        let at = self.ewma_at.swap(now, R);
        let next = if prev == 0.0 || seconds >= prev {
            seconds
        } else {
            let w = (-(now.saturating_sub(at) as f64) / tau.max(1) as f64).exp();
            prev * w + seconds * (1.0 - w)
        };
        self.ewma_bits.store(next.to_bits(), R);
        self.slot.set_latency_ewma(next);
    }
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
    baseline_bits: AtomicU64,
    baseline_at: AtomicU64,
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
            baseline_bits: AtomicU64::new(0f64.to_bits()),
            baseline_at: AtomicU64::new(0),
            budget,
            counters: Counters::default(),
        };
        tracker.sync();
        tracker
    }

    pub(crate) fn topology(&self) -> &Topology {
        &self.topology
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
                    _ => Arc::new(InstanceStats::new(i.id().clone(), i.health().clone())),
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
                    if replayable && stats.probe.compare_exchange(false, true, R, R).is_ok() {
                        self.counters.probes.fetch_add(1, R);
                        return pick(true);
                    }
                    // A Degraded instance under probe still serves.
                    if stats.probing_degraded.load(R) {
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
                HealthState::Probing if stats.probing_degraded.load(R) => {
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
            .map(|s| Duration::from_nanos(s.until.load(R).saturating_sub(now)))
            .min()
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_millis(1))
    }

    /// During a drain, keys leave a Degraded instance in a fixed order, a
    /// growing share over the drain period, so the secondary warms up
    /// instead of taking every session at once.
    fn drained(&self, stats: &InstanceStats, route: &Route, now: u64) -> bool {
        let drain = nanos(self.config.drain);
        let elapsed = now.saturating_sub(stats.drain_from.load(R));
        if elapsed >= drain {
            return true;
        }
        let share = elapsed as f64 / drain as f64;
        let position = route.key.hash_with_seed(DRAIN_SEED) as f64 / u64::MAX as f64;
        position < share
    }

    fn try_probe_degraded(&self, stats: &InstanceStats, now: u64) -> bool {
        let since = stats.since.load(R);
        if now.saturating_sub(since) < nanos(self.config.degraded_probe_interval) {
            return false;
        }
        if stats
            .slot
            .transition(HealthState::Degraded, HealthState::Probing)
        {
            stats.probing_degraded.store(true, R);
            stats.probe.store(true, R);
            self.counters.probes.fetch_add(1, R);
            tracing::debug!(instance = %stats.id, "degraded instance probed");
            return true;
        }
        false
    }

    /// A replayable request probes as soon as the backoff is over (its
    /// failure is replayed). A non-replayable one only after one more base
    /// backoff without a replayable request, so that an instance behind
    /// non-idempotent traffic only (gRPC, say) is still readmitted.
    fn try_probe_ejected(&self, stats: &InstanceStats, replayable: bool, now: u64) -> bool {
        let mut due = stats.until.load(R);
        if !replayable {
            due = due.saturating_add(nanos(self.config.base_ejection));
        }
        if now < due {
            return false;
        }
        if stats
            .slot
            .transition(HealthState::Ejected, HealthState::Probing)
        {
            stats.probing_degraded.store(false, R);
            stats.probe.store(true, R);
            self.counters.probes.fetch_add(1, R);
            tracing::debug!(instance = %stats.id, "ejected instance probed");
            return true;
        }
        false
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
            stats.hedge_nanos.store(delay, R);
        }
        match stats.hedge_nanos.load(R) {
            0 => None,
            delay => Some(Duration::from_nanos(delay)),
        }
    }

    pub(crate) fn start(&self, stats: &InstanceStats) {
        stats.in_flight.fetch_add(1, R);
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
        stats.in_flight.fetch_sub(1, R);
        let latency = now.saturating_sub(started);
        if let Some(hedging) = &self.config.hedging
            && matches!(outcome, Outcome::Success | Outcome::Cancelled)
        {
            // A cancelled attempt (a hedge won, or the client left) adds
            // what it had waited: a lower bound, which keeps the quantile
            // from drifting down as hedges cancel the slow attempts.
            stats.latencies.record(latency, now, nanos(hedging.window));
        }
        self.record_attempt(stats, outcome, latency);
        let seconds = latency as f64 / 1e9;
        let epoch = now / (nanos(self.config.error_window) / ERROR_SLOTS as u64).max(1) + 1;
        match outcome {
            Outcome::Success => {
                // Loads before stores: on the common path nothing changes,
                // and cores serving the same instance need not pass its
                // cache line back and forth.
                if stats.failures.load(R) != 0 {
                    stats.failures.store(0, R);
                }
                if stats.streak_start.load(R) != 0 {
                    stats.streak_start.store(0, R);
                }
                stats.window.record(epoch, false);
                if stats.slot.error_ratio() > 0.0 {
                    self.publish_error_ratio(stats, epoch);
                }
                stats.observe(seconds, now, nanos(self.config.ewma_decay));
                let baseline = self.baseline(now);
                if probe {
                    self.probe_succeeded(stats, seconds, baseline, now);
                } else if self.is_slow(seconds, baseline, self.config.degrade_ratio) {
                    let slow = stats.slow.fetch_add(1, R) + 1;
                    if slow >= self.config.slow_samples {
                        self.degrade(stats, now, Reason::Latency);
                    }
                } else if stats.slow.load(R) != 0 {
                    stats.slow.store(0, R);
                }
            }
            Outcome::Failure => {
                stats.window.record(epoch, true);
                self.publish_error_ratio(stats, epoch);
                let failures = stats.failures.fetch_add(1, R) + 1;
                let _ = stats.streak_start.compare_exchange(0, now, R, R);
                if probe {
                    stats.probe.store(false, R);
                    if !self.eject_instance(stats, now, Reason::ProbeFailed) {
                        self.set(stats, HealthState::Degraded, now);
                    }
                    return;
                }
                if let Some(reason) = self.ejection_reason(stats, failures, epoch, now) {
                    self.eject_instance(stats, now, reason);
                }
            }
            Outcome::ClientError => {
                if probe {
                    stats.probe.store(false, R);
                }
            }
            Outcome::Cancelled => {
                if probe {
                    stats.probe.store(false, R);
                }
                // A cancelled attempt still tells how long it had waited.
                if seconds > stats.latency() {
                    stats.observe(seconds, now, nanos(self.config.ewma_decay));
                }
            }
        }
    }

    fn is_slow(&self, seconds: f64, baseline: Option<f64>, ratio: f64) -> bool {
        match baseline {
            Some(b) => seconds > (b * ratio).max(self.config.latency_floor.as_secs_f64()),
            None => false,
        }
    }

    fn ejection_reason(
        &self,
        stats: &InstanceStats,
        failures: u32,
        epoch: u64,
        now: u64,
    ) -> Option<Reason> {
        let config = &self.config;
        let state = stats.state();
        if !matches!(state, HealthState::Healthy | HealthState::Degraded) {
            return None;
        }
        if failures >= config.consecutive_failures {
            return Some(Reason::ConsecutiveFailures);
        }
        let streak = now.saturating_sub(stats.streak_start.load(R));
        if failures >= 2 && streak >= nanos(config.failure_window) {
            return Some(Reason::FailingForWindow);
        }
        if state == HealthState::Healthy
            && stats.ejections.load(R) > 0
            && now.saturating_sub(stats.since.load(R)) < nanos(config.base_ejection)
        {
            return Some(Reason::Probation);
        }
        let (requests, failed) = stats.window.totals(epoch);
        if requests >= config.min_requests
            && f64::from(failed) >= config.error_ratio * f64::from(requests)
        {
            return Some(Reason::ErrorRatio);
        }
        None
    }

    fn publish_error_ratio(&self, stats: &InstanceStats, epoch: u64) {
        let (requests, failed) = stats.window.totals(epoch);
        let ratio = if requests == 0 {
            0.0
        } else {
            f64::from(failed) / f64::from(requests)
        };
        stats.slot.set_error_ratio(ratio);
    }

    /// The fleet's latency baseline: the lowest peak-EWMA latency of the
    /// Healthy instances that have one, refreshed every 100 ms.
    fn baseline(&self, now: u64) -> Option<f64> {
        if claim_refresh(&self.baseline_at, now, BASELINE_REFRESH) {
            let baseline = self
                .table()
                .map
                .values()
                .filter(|s| s.state() == HealthState::Healthy)
                .map(|s| s.latency())
                .filter(|&l| l > 0.0)
                .fold(f64::INFINITY, f64::min);
            let baseline = if baseline.is_finite() { baseline } else { 0.0 };
            self.baseline_bits.store(baseline.to_bits(), R);
        }
        let baseline = f64::from_bits(self.baseline_bits.load(R));
        (baseline > 0.0).then_some(baseline)
    }

    fn set(&self, stats: &InstanceStats, state: HealthState, now: u64) -> HealthState {
        stats.since.store(now, R);
        stats.slot.set_state(state)
    }

    fn degrade(&self, stats: &InstanceStats, now: u64, reason: Reason) {
        if stats
            .slot
            .transition(HealthState::Healthy, HealthState::Degraded)
        {
            stats.since.store(now, R);
            stats.drain_from.store(now, R);
            stats.slow.store(0, R);
            self.counters.degradations.fetch_add(1, R);
            metrics::counter!("foresight_failover_degradations_total").increment(1);
            tracing::info!(instance = %stats.id, ?reason, "instance degraded");
        }
    }

    fn probe_succeeded(
        &self,
        stats: &InstanceStats,
        seconds: f64,
        baseline: Option<f64>,
        now: u64,
    ) {
        stats.probe.store(false, R);
        if stats.state() != HealthState::Probing {
            return;
        }
        if self.prediction_holds(stats, seconds, now)
            || self.is_slow(seconds, baseline, self.config.recover_ratio)
        {
            self.set(stats, HealthState::Degraded, now);
            tracing::debug!(instance = %stats.id, "probe answered, still degraded");
            return;
        }
        stats.failures.store(0, R);
        stats.streak_start.store(0, R);
        stats.slow.store(0, R);
        stats.window.clear();
        stats.slot.set_error_ratio(0.0);
        stats.predicted_out.store(false, R);
        self.set(stats, HealthState::Healthy, now);
        self.counters.readmissions.fetch_add(1, R);
        metrics::counter!("foresight_failover_readmissions_total").increment(1);
        tracing::info!(instance = %stats.id, "instance readmitted");
    }

    /// Ejects `stats` unless that would put more than the maximum share of
    /// the set out of rotation. Returns whether it was ejected.
    fn eject_instance(&self, stats: &InstanceStats, now: u64, reason: Reason) -> bool {
        let config = &self.config;
        let _deciding = guard(&self.eject);
        let state = stats.state();
        if state == HealthState::Ejected {
            return false;
        }
        let table = self.table();
        let limit = ((table.map.len() as f64 * config.max_ejected_share).floor() as usize).max(1);
        let out = table
            .map
            .values()
            .filter(|s| s.id != stats.id)
            .filter(|s| matches!(s.state(), HealthState::Ejected | HealthState::Probing))
            .count();
        if out >= limit {
            self.counters.ejections_suppressed.fetch_add(1, R);
            tracing::debug!(instance = %stats.id, out, limit, "ejection suppressed");
            return false;
        }
        // Backoff doubles with each ejection, and starts over after an
        // instance stayed healthy for the longest backoff.
        if state == HealthState::Healthy
            && now.saturating_sub(stats.since.load(R)) >= nanos(config.max_ejection)
        {
            stats.ejections.store(0, R);
        }
        let ejections = stats.ejections.fetch_add(1, R) + 1;
        let backoff = config
            .base_ejection
            .saturating_mul(1u32 << (ejections - 1).min(16))
            .min(config.max_ejection);
        stats.until.store(now.saturating_add(nanos(backoff)), R);
        stats.probe.store(false, R);
        stats.slow.store(0, R);
        self.set(stats, HealthState::Ejected, now);
        self.counters.ejections.fetch_add(1, R);
        metrics::counter!("foresight_failover_ejections_total").increment(1);
        tracing::warn!(instance = %stats.id, ?reason, ?backoff, "instance ejected");
        true
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
mod predict;
mod quantile;

#[cfg(test)]
mod tests;
