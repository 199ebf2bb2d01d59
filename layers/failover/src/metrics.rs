//! Every metric this crate emits, and the one way it records them.
//!
//! Each event is a [`Counter`]: [`Counters::add`] bumps the atomic behind
//! [`FailoverStats`] (when the event has a field there) and the `metrics`
//! counter named by one of the constants below, so the two never disagree
//! and every name can be found with grep.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::error::BodyFault;
use crate::stats::FailoverStats;

/// First attempts sent to another candidate than the first ranked one.
pub(crate) const REROUTED: &str = "foresight_failover_rerouted_total";
/// Replays started after a failed or timed-out attempt.
pub(crate) const REPLAYS: &str = "foresight_failover_replays_total";
/// Replays refused by the retry budget.
pub(crate) const BUDGET_DENIED: &str = "foresight_failover_budget_denied_total";
/// Replays impossible because the body outgrew the replay cap.
pub(crate) const BODY_TOO_LARGE: &str = "foresight_failover_body_too_large_total";
/// Attempts that timed out.
pub(crate) const TIMEOUTS: &str = "foresight_failover_timeouts_total";
/// Requests answered at once because every candidate was out.
pub(crate) const NO_LIVE_INSTANCE: &str = "foresight_failover_no_live_instance_total";
/// Instances ejected.
pub(crate) const EJECTIONS: &str = "foresight_failover_ejections_total";
/// Ejections refused by the maximum ejected share.
pub(crate) const EJECTIONS_SUPPRESSED: &str = "foresight_failover_ejections_suppressed_total";
/// Instances moved to Degraded.
pub(crate) const DEGRADATIONS: &str = "foresight_failover_degradations_total";
/// Probes sent to Ejected or Degraded instances.
pub(crate) const PROBES: &str = "foresight_failover_probes_total";
/// Instances readmitted by a probe.
pub(crate) const READMISSIONS: &str = "foresight_failover_readmissions_total";
/// Hedges sent.
pub(crate) const HEDGES: &str = "foresight_failover_hedges_total";
/// Requests answered by their hedge.
pub(crate) const HEDGE_WINS: &str = "foresight_failover_hedge_wins_total";
/// Predictions not acted on because too many instances were out on one.
pub(crate) const PREDICTIONS_SUPPRESSED: &str = "foresight_failover_predictions_suppressed_total";
/// Requests broken by their client's body, labelled `fault`.
pub(crate) const CLIENT_BODY_ERRORS: &str = "foresight_failover_client_body_errors_total";

/// An event counted by the layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counter {
    Rerouted,
    Replays,
    BudgetDenied,
    BodyTooLarge,
    Timeouts,
    NoLiveInstance,
    Ejections,
    EjectionsSuppressed,
    Degradations,
    Probes,
    Readmissions,
    Hedges,
    HedgeWins,
    PredictionsSuppressed,
}

impl Counter {
    /// The `metrics` name of the event.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Counter::Rerouted => REROUTED,
            Counter::Replays => REPLAYS,
            Counter::BudgetDenied => BUDGET_DENIED,
            Counter::BodyTooLarge => BODY_TOO_LARGE,
            Counter::Timeouts => TIMEOUTS,
            Counter::NoLiveInstance => NO_LIVE_INSTANCE,
            Counter::Ejections => EJECTIONS,
            Counter::EjectionsSuppressed => EJECTIONS_SUPPRESSED,
            Counter::Degradations => DEGRADATIONS,
            Counter::Probes => PROBES,
            Counter::Readmissions => READMISSIONS,
            Counter::Hedges => HEDGES,
            Counter::HedgeWins => HEDGE_WINS,
            Counter::PredictionsSuppressed => PREDICTIONS_SUPPRESSED,
        }
    }
}

/// The counters behind [`FailoverStats`], shared by the clones of a layer.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    rerouted: AtomicU64,
    replays: AtomicU64,
    budget_denied: AtomicU64,
    body_too_large: AtomicU64,
    timeouts: AtomicU64,
    no_live_instance: AtomicU64,
    ejections: AtomicU64,
    ejections_suppressed: AtomicU64,
    degradations: AtomicU64,
    probes: AtomicU64,
    readmissions: AtomicU64,
    hedges: AtomicU64,
    hedge_wins: AtomicU64,
}

impl Counters {
    /// Counts one `event`, in [`FailoverStats`] and in `metrics`.
    pub(crate) fn add(&self, event: Counter) {
        if let Some(stat) = self.stat(event) {
            stat.fetch_add(1, Relaxed);
        }
        metrics::counter!(event.name()).increment(1);
    }

    fn stat(&self, event: Counter) -> Option<&AtomicU64> {
        Some(match event {
            Counter::Rerouted => &self.rerouted,
            Counter::Replays => &self.replays,
            Counter::BudgetDenied => &self.budget_denied,
            Counter::BodyTooLarge => &self.body_too_large,
            Counter::Timeouts => &self.timeouts,
            Counter::NoLiveInstance => &self.no_live_instance,
            Counter::Ejections => &self.ejections,
            Counter::EjectionsSuppressed => &self.ejections_suppressed,
            Counter::Degradations => &self.degradations,
            Counter::Probes => &self.probes,
            Counter::Readmissions => &self.readmissions,
            Counter::Hedges => &self.hedges,
            Counter::HedgeWins => &self.hedge_wins,
            Counter::PredictionsSuppressed => return None,
        })
    }

    pub(crate) fn snapshot(&self) -> FailoverStats {
        let r = |c: &AtomicU64| c.load(Relaxed);
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

/// Counts a request broken by its client's body (not an event of any
/// instance, so it has no field in [`FailoverStats`]).
pub(crate) fn client_body_error(fault: BodyFault) {
    metrics::counter!(CLIENT_BODY_ERRORS, "fault" => fault.as_str()).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_distinct_and_prefixed() {
        let all = [
            REROUTED,
            REPLAYS,
            BUDGET_DENIED,
            BODY_TOO_LARGE,
            TIMEOUTS,
            NO_LIVE_INSTANCE,
            EJECTIONS,
            EJECTIONS_SUPPRESSED,
            DEGRADATIONS,
            PROBES,
            READMISSIONS,
            HEDGES,
            HEDGE_WINS,
            PREDICTIONS_SUPPRESSED,
            CLIENT_BODY_ERRORS,
        ];
        let mut seen = std::collections::HashSet::new();
        for name in all {
            assert!(name.starts_with("foresight_failover_") && name.ends_with("_total"));
            assert!(seen.insert(name), "{name} twice");
        }
    }
}
