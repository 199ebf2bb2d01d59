//! The counters a layer reports from [`stats`](crate::HealthFailoverLayer::stats).

/// Counters of a [`HealthFailoverLayer`](crate::HealthFailoverLayer) and all
/// its clones, from [`stats`](crate::HealthFailoverLayer::stats).
///
/// The same events are also emitted as `metrics` counters named
/// `foresight_failover_<field>_total`, recorded at the same place.
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
