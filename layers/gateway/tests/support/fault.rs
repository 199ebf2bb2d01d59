//! One row of the fault matrix: what a fault cost the clients of the
//! composed stack, measured from a [`Load`](super::load::Load) run, printed,
//! and written to `$FORESIGHT_RELIABILITY_OUT/<order>-<slug>.md` when that
//! variable names a directory (`layers/gateway/tests/reliability.sh`
//! assembles the rows into `RELIABILITY.md`).

use std::time::Duration;

use tokio::time::Instant;

use super::load::SessionRun;

/// The directory rows are written to, when set.
pub const OUT_ENV: &str = "FORESIGHT_RELIABILITY_OUT";

/// What one fault cost.
#[derive(Debug, Clone)]
pub struct Row {
    /// Position in the table.
    pub order: u8,
    /// The fault, as the table names it.
    pub fault: &'static str,
    /// Requests sent by the load (each session: a write, then a read).
    pub requests: usize,
    /// Requests answered with an error or not at all, as the client saw them.
    pub client_errors: usize,
    /// Sessions whose last acknowledged write did not read back.
    pub acknowledged_lost: usize,
    pub sessions: usize,
    /// From the fault (or its end, for a fault that is lifted) until every
    /// session finished a write and a read without error; `None` when some
    /// session had not by the end of the run.
    pub recovery: Option<Duration>,
    /// What else the reader needs: the store's setting, the cause of errors.
    pub notes: String,
}

impl Row {
    /// The row as a Markdown table line.
    pub fn line(&self) -> String {
        format!(
            "| {} | {} | {} | {} of {} sessions | {} | {} |",
            self.fault,
            self.requests,
            self.client_errors,
            self.acknowledged_lost,
            self.sessions,
            self.recovery
                .map_or("not within the run".to_owned(), |d| format!(
                    "{:.2} s",
                    d.as_secs_f64()
                )),
            self.notes
        )
    }

    /// Prints the row and, with [`OUT_ENV`] set, writes it to that
    /// directory.
    pub fn emit(&self) {
        let line = self.line();
        eprintln!("fault matrix row: {line}");
        if let Ok(dir) = std::env::var(OUT_ENV) {
            let slug: String = self
                .fault
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect();
            let path = std::path::Path::new(&dir).join(format!("{:02}-{slug}.md", self.order));
            std::fs::write(&path, format!("{line}\n")).unwrap();
        }
    }
}

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
