//! One prefetch refresh waiting in the schedule.

use std::sync::Arc;

/// One prefetch refresh waiting in the schedule, earliest `due` first.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Scheduled {
    pub(super) due_micros: u64,
    pub(super) seq: u64,
    pub(super) sid: String,
    pub(super) subject: Arc<str>,
    pub(super) lifetime_secs: u64,
    pub(super) cutoff: u64,
}
