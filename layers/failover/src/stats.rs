use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of a [`HealthFailoverLayer`](crate::HealthFailoverLayer) and all
/// its clones, from [`stats`](crate::HealthFailoverLayer::stats).
///
/// The same events are also emitted as `metrics` counters named
/// `foresight_failover_<field>_total`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailoverStats {
    /// Requests whose first attempt went to another candidate than the
    /// first ranked one, because it was out of rotation or draining.
    pub rerouted: u64,
    /// Replays started after a failed or timed-out attempt.
    pub replays: u64,
    /// Replays refused because the retry budget was spent.
    pub budget_denied: u64,
    /// Replays impossible because the body outgrew the replay cap.
    pub body_too_large: u64,
    /// Attempts that timed out.
    pub timeouts: u64,
    /// Requests answered at once because every candidate was out.
    pub no_live_instance: u64,
    /// Instances ejected.
    pub ejections: u64,
    /// Ejections refused by the maximum ejected share.
    pub ejections_suppressed: u64,
    /// Instances moved to Degraded (latency or predicted degradation).
    pub degradations: u64,
    /// Probes sent to Ejected or Degraded instances.
    pub probes: u64,
    /// Instances readmitted after a successful probe.
    pub readmissions: u64,
    /// Hedges sent: a second attempt racing a slow first one (see
    /// [`Hedging`](crate::Hedging)).
    pub hedges: u64,
    /// Requests answered by their hedge rather than their first attempt.
    pub hedge_wins: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) rerouted: AtomicU64,
    pub(crate) replays: AtomicU64,
    pub(crate) budget_denied: AtomicU64,
    pub(crate) body_too_large: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) no_live_instance: AtomicU64,
    pub(crate) ejections: AtomicU64,
    pub(crate) ejections_suppressed: AtomicU64,
    pub(crate) degradations: AtomicU64,
    pub(crate) probes: AtomicU64,
    pub(crate) readmissions: AtomicU64,
    pub(crate) hedges: AtomicU64,
    pub(crate) hedge_wins: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> FailoverStats {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FailoverStats {
            rerouted: r(&self.rerouted),
            replays: r(&self.replays),
            budget_denied: r(&self.budget_denied),
            body_too_large: r(&self.body_too_large),
            timeouts: r(&self.timeouts),
            no_live_instance: r(&self.no_live_instance),
            ejections: r(&self.ejections),
            ejections_suppressed: r(&self.ejections_suppressed),
            degradations: r(&self.degradations),
            probes: r(&self.probes),
            readmissions: r(&self.readmissions),
            hedges: r(&self.hedges),
            hedge_wins: r(&self.hedge_wins),
        }
    }
}
