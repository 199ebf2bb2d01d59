//! The prefetch driver: every tick it plans when `plan_interval` has
//! passed, then runs the scheduled refreshes that are due, at most
//! `max_issue_rate` per second (a [`TokenBucket`](crate::TokenBucket)).

use std::cmp::Reverse;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt as _;

use super::state::{InFlight, Shared, TokenHandle};
use crate::bucket::micros;
use crate::issuer::TokenRequest;
use crate::metrics::REFRESHES;
use crate::policy::RefreshMode;
use crate::sessions::PrefetchTurn;

impl TokenHandle {
    /// Runs the prefetches that are due (at most `max_issue_rate` per
    /// second, 64 at once) and waits for them; returns how many ran.
    pub async fn run_due(&self) -> usize {
        let now = self.shared.verifier.clock().unix();
        if let RefreshMode::Reactive { .. } = &self.shared.mode {
            return 0;
        }
        let due = {
            let mut bucket = self.shared.bucket.lock().unwrap_or_else(|e| e.into_inner());
            bucket.refill(now);
            let now_micros = micros(now);
            let mut schedule = self
                .shared
                .schedule
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let mut due = Vec::new();
            let mut later = Vec::new();
            while bucket.has_token() {
                match schedule.peek() {
                    Some(Reverse(s)) if s.due_micros <= now_micros => {}
                    _ => break,
                }
                let Some(Reverse(s)) = schedule.pop() else {
                    break;
                };
                match self.shared.sessions.prefetch_turn(&s.sid, s.cutoff) {
                    PrefetchTurn::Run => {
                        bucket.take();
                        due.push(s);
                    }
                    PrefetchTurn::Skip => {}
                    PrefetchTurn::Later => later.push(s),
                }
            }
            // Asked again a second from now, after the session's reactive
            // refresh has likely landed.
            for mut s in later {
                s.due_micros = now_micros + 1_000_000;
                schedule.push(Reverse(s));
            }
            due
        };
        let n = due.len();
        if n == 0 {
            return 0;
        }
        let runs: Vec<_> = due
            .into_iter()
            .map(|s| (s, InFlight::enter(&self.shared)))
            .collect();
        metrics::counter!(REFRESHES, "kind" => "prefetch").increment(n as u64);
        futures_util::stream::iter(runs)
            .for_each_concurrent(64, |(s, in_flight)| async move {
                let request = TokenRequest {
                    subject: s.subject.to_string(),
                    session: s.sid,
                    lifetime: Duration::from_secs(s.lifetime_secs),
                };
                self.refresh(request, true).await;
                drop(in_flight);
            })
            .await;
        n
    }

    /// One step of the driver: plan if `plan_interval` has passed, then run
    /// what is due.
    pub async fn tick(&self) -> usize {
        if let RefreshMode::Predictive(policy) = &self.shared.mode {
            let now = self.shared.verifier.clock().unix_secs();
            let last = *self
                .shared
                .last_plan
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|last| last + policy.plan_interval.as_secs() <= now) {
                self.plan();
            }
        }
        self.run_due().await
    }

    /// Spawns the prefetch driver: a [`tick`](Self::tick) every `period`
    /// (1 s is a good value). It stops when every other handle, layer and
    /// service is dropped.
    pub fn spawn_driver(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        self.shared.driver_tick_micros.store(
            u64::try_from(period.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(shared) = weak.upgrade() else { break };
                TokenHandle { shared }.tick().await;
            }
        })
    }
}
