//! One attempt on one instance, recorded when it ends or, from its drop
//! guard, when it is dropped first.

use std::sync::Arc;

use crate::health::{InstanceStats, Outcome, Pick, Tracker};

/// One attempt on one instance. Recorded when it ends, or, if it is
/// dropped first (client gone, timed out), as cancelled from `Drop`, so no
/// attempt goes uncounted.
pub(crate) struct Attempt {
    pub(crate) tracker: Arc<Tracker>,
    pub(crate) stats: Arc<InstanceStats>,
    probe: bool,
    /// The instance had answered before this attempt started.
    pub(crate) warm: bool,
    started: u64,
    done: bool,
}

impl Attempt {
    pub(crate) fn start(tracker: Arc<Tracker>, pick: Pick, now: u64) -> Self {
        tracker.start(&pick.stats);
        Self {
            warm: pick.stats.latency() > 0.0,
            tracker,
            stats: pick.stats,
            probe: pick.probe,
            started: now,
            done: false,
        }
    }

    pub(crate) fn stats(&self) -> &InstanceStats {
        &self.stats
    }

    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.done = true;
        let now = self.tracker.now();
        self.tracker
            .finish(&self.stats, outcome, self.probe, self.started, now);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.done {
            let now = self.tracker.now();
            self.tracker.finish(
                &self.stats,
                Outcome::Cancelled,
                self.probe,
                self.started,
                now,
            );
        }
    }
}
