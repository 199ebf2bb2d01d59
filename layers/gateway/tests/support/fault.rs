//! The figures of a fault matrix row (`foresight_testkit::reliability`)
//! taken from a [`Load`](super::load::Load) run over the composed stack.

use std::time::Duration;

use tokio::time::Instant;

use super::load::SessionRun;

/// Requests the load sent: answered ones and failed ones.
pub fn requests(runs: &[SessionRun]) -> usize {
    runs.iter().map(|r| r.served.len() + r.errors.len()).sum()
}

/// Client-visible errors of `runs`.
pub fn client_errors(runs: &[SessionRun]) -> usize {
    runs.iter().map(|r| r.errors.len()).sum()
}

/// From `since` until every session of `runs` finished a write and a read
/// (two answers) after its last error or stale read, or after `since` if
/// it had none; `None` when a session has no such two answers.
pub fn recovery(runs: &[SessionRun], since: Instant) -> Option<Duration> {
    let mut worst = Duration::ZERO;
    for run in runs {
        let last_failure = run
            .errors
            .iter()
            .chain(&run.stale)
            .map(|(at, _)| *at)
            .filter(|at| *at >= since)
            .max()
            .unwrap_or(since);
        let after: Vec<_> = run.served.iter().filter(|s| s.at > last_failure).collect();
        worst = worst.max(after.get(1)?.at - since);
    }
    Some(worst)
}
