//! Rows of the fault matrix in `RELIABILITY.md`.
//!
//! Each fault test measures one [`Row`] and calls [`Row::emit`], which
//! prints it and, when [`OUT_ENV`] names a directory, writes it there as
//! `<order>-<fault>.md`; `layers/gateway/tests/reliability.sh` runs the
//! tests with that variable set and assembles the rows into the table.

use std::time::Duration;

/// The directory rows are written to, when set.
pub const OUT_ENV: &str = "FORESIGHT_RELIABILITY_OUT";

/// How long the clients took to be served without error again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// From the fault (or from lifting it, where the notes say so) until
    /// every client was served without error again.
    After(Duration),
    /// Some client was not by the end of the run.
    NotWithinRun,
    /// The fault has no onset to recover from (a standing condition).
    NotApplicable,
}

/// What one fault cost the clients.
#[derive(Debug, Clone)]
pub struct Row {
    /// Position in the table.
    pub order: u8,
    /// The fault, as the table names it.
    pub fault: &'static str,
    /// Requests the clients sent.
    pub requests: usize,
    /// Requests answered with an error or not at all, as the clients saw
    /// them.
    pub client_errors: usize,
    /// Sessions whose last acknowledged write did not read back, and the
    /// sessions checked; `None` where the fault test writes nothing.
    pub acknowledged_lost: Option<(usize, usize)>,
    /// Time to recovery.
    pub recovery: Recovery,
    /// What else the reader needs: settings, the cause of errors.
    pub notes: String,
}

impl Row {
    /// The row as a Markdown table line.
    pub fn line(&self) -> String {
        let lost = match self.acknowledged_lost {
            Some((lost, sessions)) => format!("{lost} of {sessions} sessions"),
            None => "n/a".to_owned(),
        };
        let recovery = match self.recovery {
            Recovery::After(d) => format!("{:.2} s", d.as_secs_f64()),
            Recovery::NotWithinRun => "not within the run".to_owned(),
            Recovery::NotApplicable => "n/a".to_owned(),
        };
        format!(
            "| {} | {} | {} | {lost} | {recovery} | {} |",
            self.fault, self.requests, self.client_errors, self.notes
        )
    }

    /// Prints the row and, with [`OUT_ENV`] set, writes it to that
    /// directory.
    ///
    /// # Panics
    ///
    /// When the row cannot be written there.
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
            std::fs::write(&path, format!("{line}\n"))
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_reads_as_a_table_line() {
        let row = Row {
            order: 1,
            fault: "Primary SIGKILL",
            requests: 10,
            client_errors: 0,
            acknowledged_lost: Some((0, 5)),
            recovery: Recovery::After(Duration::from_millis(1250)),
            notes: "n".into(),
        };
        assert_eq!(
            row.line(),
            "| Primary SIGKILL | 10 | 0 | 0 of 5 sessions | 1.25 s | n |"
        );
        let row = Row {
            acknowledged_lost: None,
            recovery: Recovery::NotWithinRun,
            ..row
        };
        assert_eq!(
            row.line(),
            "| Primary SIGKILL | 10 | 0 | n/a | not within the run | n |"
        );
        let row = Row {
            recovery: Recovery::NotApplicable,
            ..row
        };
        assert_eq!(row.line(), "| Primary SIGKILL | 10 | 0 | n/a | n/a | n |");
    }
}
