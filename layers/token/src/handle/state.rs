//! [`TokenHandle`] and the state its clones share; each concern adds its
//! methods from a file of its own.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use foresight_core::signal::LoadSignal;
use tokio::sync::{Notify, Semaphore};

use crate::bucket::TokenBucket;
use crate::issuer::TokenIssuer;
use crate::policy::{RefreshMode, SessionBinding};
use crate::sessions::SessionTable;
use crate::verify::Verifier;

use super::request_rate::RecentRequests;
use super::schedule::Scheduled;

/// Everything a [`TokenHandle`] is made of, gathered by the layer's
/// builder.
pub(crate) struct HandleConfig {
    pub(crate) verifier: Verifier,
    pub(crate) issuer: Arc<dyn TokenIssuer>,
    pub(crate) signal: Option<Arc<dyn LoadSignal>>,
    pub(crate) mode: RefreshMode,
    pub(crate) lifetime: Duration,
    pub(crate) binding: SessionBinding,
    pub(crate) max_sessions: usize,
    pub(crate) idle_ttl: Duration,
    pub(crate) max_reactive_in_flight: usize,
}

pub(crate) struct Shared {
    pub(crate) verifier: Verifier,
    pub(crate) issuer: Arc<dyn TokenIssuer>,
    pub(crate) signal: Option<Arc<dyn LoadSignal>>,
    pub(crate) mode: RefreshMode,
    pub(crate) lifetime: Duration,
    pub(crate) binding: SessionBinding,
    pub(crate) sessions: SessionTable,
    pub(super) schedule: Mutex<BinaryHeap<Reverse<Scheduled>>>,
    pub(super) seq: AtomicUsize,
    pub(super) in_flight: AtomicUsize,
    pub(super) idle: Notify,
    pub(super) reactive_permits: Arc<Semaphore>,
    /// Holds the prefetch driver to `max_issue_rate` per second.
    pub(super) bucket: Mutex<TokenBucket>,
    /// Requests seen in the last two minutes, per second.
    pub(super) recent_requests: RecentRequests,
    pub(super) last_plan: Mutex<Option<u64>>,
    /// Period of the prefetch driver, in microseconds (0: none started).
    pub(super) driver_tick_micros: AtomicU64,
}

/// Shared handle of a [`TokenPrefetchLayer`](crate::TokenPrefetchLayer):
/// planning, the prefetch driver, revocation and the WebSocket endpoint.
/// Clones share the state.
#[derive(Clone)]
pub struct TokenHandle {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for TokenHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenHandle")
            .field("mode", &self.shared.mode)
            .field("lifetime", &self.shared.lifetime)
            .field("sessions", &self.shared.sessions.len())
            .field("in_flight", &self.shared.in_flight.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl TokenHandle {
    pub(crate) fn new(config: HandleConfig) -> Self {
        // The burst is one second of the rate (at least one refresh).
        let bucket = match &config.mode {
            RefreshMode::Predictive(p) => {
                TokenBucket::new(p.max_issue_rate.max(1.0), p.max_issue_rate)
            }
            RefreshMode::Reactive { .. } => TokenBucket::new(0.0, 0.0),
        };
        Self {
            shared: Arc::new(Shared {
                verifier: config.verifier,
                issuer: config.issuer,
                signal: config.signal,
                mode: config.mode,
                lifetime: config.lifetime,
                binding: config.binding,
                sessions: SessionTable::new(config.max_sessions, config.idle_ttl.as_secs()),
                schedule: Mutex::default(),
                seq: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                idle: Notify::new(),
                reactive_permits: Arc::new(Semaphore::new(config.max_reactive_in_flight)),
                bucket: Mutex::new(bucket),
                recent_requests: RecentRequests::default(),
                last_plan: Mutex::new(None),
                driver_tick_micros: AtomicU64::new(0),
            }),
        }
    }

    /// The verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.shared.verifier
    }

    /// Sessions tracked.
    pub fn tracked_sessions(&self) -> usize {
        self.shared.sessions.len()
    }

    /// Prefetch refreshes scheduled and not run yet.
    pub fn scheduled(&self) -> usize {
        self.shared
            .schedule
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Refreshes running now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Acquire)
    }

    /// Waits until no refresh is running, for at most `limit`; returns
    /// whether it got there.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.shared.idle.notified();
            if self.in_flight() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.in_flight() == 0;
            }
        }
    }
}

/// One refresh counted in [`TokenHandle::in_flight`] for as long as it
/// lives: dropping it, when the refresh ends or its future is cancelled,
/// takes it off and wakes [`TokenHandle::wait_idle`] at zero.
pub(super) struct InFlight {
    shared: Arc<Shared>,
}

impl InFlight {
    pub(super) fn enter(shared: &Arc<Shared>) -> Self {
        shared.in_flight.fetch_add(1, Ordering::AcqRel);
        Self {
            shared: shared.clone(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.shared.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.idle.notify_waiters();
        }
    }
}
