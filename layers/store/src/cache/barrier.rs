//! The barrier: proof that every message published on the bus before a
//! point in time has been applied by this cache's listener, shared by every
//! write waiting at the same time, and the send instants that date this
//! cache's trust.
//!
//! A waiter registers and gets the number of the heartbeat it needs: the
//! next one not yet sent. The heartbeat task sends that heartbeat after the
//! registration (the number is taken and the counter bumped under one
//! lock), and on a bus that [orders heartbeats](super::InvalidationBus::orders_heartbeats)
//! every message published before it reaches the listener first. When the
//! listener applies the heartbeat, the waiter is released.
//!
//! The waiters that register while a heartbeat is being sent all share the
//! next one, so a busy instance sends about one heartbeat per round trip,
//! whatever its write rate.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// Send instants remembered, for heartbeats still in flight.
const STAMPS: usize = 64;

#[derive(Debug)]
pub(super) struct Barrier {
    rounds: Mutex<Rounds>,
    /// The highest heartbeat number that came back.
    arrived: watch::Sender<u64>,
    /// Wakes the heartbeat task when a read is waiting.
    demand: Notify,
}

#[derive(Debug, Default)]
struct Rounds {
    /// The number of the last heartbeat sent (or about to be).
    sent: u64,
    /// The highest number a waiter needs.
    wanted: u64,
    /// When the last few heartbeats were sent.
    stamps: VecDeque<(u64, Instant)>,
}

impl Barrier {
    pub(super) fn new() -> Self {
        Self {
            rounds: Mutex::new(Rounds::default()),
            arrived: watch::Sender::new(0),
            demand: Notify::new(),
        }
    }

    /// Registers a waiter: the number of the heartbeat it must see come
    /// back.
    pub(super) fn register(&self) -> u64 {
        let want = {
            let mut rounds = self.rounds.lock().unwrap_or_else(|e| e.into_inner());
            let want = rounds.sent + 1;
            rounds.wanted = rounds.wanted.max(want);
            want
        };
        self.demand.notify_one();
        want
    }

    /// Numbers the next heartbeat; the caller sends it.
    pub(super) fn next(&self) -> u64 {
        let mut rounds = self.rounds.lock().unwrap_or_else(|e| e.into_inner());
        rounds.sent += 1;
        let seq = rounds.sent;
        if rounds.stamps.len() == STAMPS {
            rounds.stamps.pop_front();
        }
        rounds.stamps.push_back((seq, Instant::now()));
        seq
    }

    /// When heartbeat `seq` was numbered (just before it was sent), if it
    /// is recent enough to be remembered.
    pub(super) fn sent_at(&self, seq: u64) -> Option<Instant> {
        let rounds = self.rounds.lock().unwrap_or_else(|e| e.into_inner());
        rounds
            .stamps
            .iter()
            .find(|(s, _)| *s == seq)
            .map(|(_, at)| *at)
    }

    /// Whether a waiter needs a heartbeat not sent yet.
    pub(super) fn is_wanted(&self) -> bool {
        let rounds = self.rounds.lock().unwrap_or_else(|e| e.into_inner());
        rounds.wanted > rounds.sent
    }

    /// Resolves when a waiter registers (or at once if one did since the
    /// last call).
    pub(super) async fn demanded(&self) {
        self.demand.notified().await;
    }

    /// Heartbeat `seq` came back through the listener.
    pub(super) fn arrived(&self, seq: u64) {
        self.arrived.send_if_modified(|highest| {
            let newer = seq > *highest;
            if newer {
                *highest = seq;
            }
            newer
        });
    }

    /// Waits until heartbeat `want` (or a later one) came back, at most
    /// `timeout`. Returns whether it did.
    pub(super) async fn reached(&self, want: u64, timeout: Duration) -> bool {
        let mut arrived = self.arrived.subscribe();
        matches!(
            tokio::time::timeout(timeout, arrived.wait_for(|&highest| highest >= want)).await,
            Ok(Ok(_))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_waiter_needs_a_heartbeat_sent_after_it_registered() {
        let barrier = Barrier::new();
        let in_flight = barrier.next();
        let want = barrier.register();
        assert_eq!(
            want,
            in_flight + 1,
            "the heartbeat in flight predates the read"
        );
        assert!(barrier.is_wanted());
        barrier.arrived(in_flight);
        assert!(!barrier.reached(want, Duration::from_millis(10)).await);
        let next = barrier.next();
        assert_eq!(next, want);
        assert!(!barrier.is_wanted());
        barrier.arrived(next);
        assert!(barrier.reached(want, Duration::from_millis(10)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_that_register_together_share_one_heartbeat() {
        let barrier = Barrier::new();
        let wants: Vec<u64> = (0..5).map(|_| barrier.register()).collect();
        assert!(wants.iter().all(|&w| w == 1));
        let seq = barrier.next();
        barrier.arrived(seq);
        for want in wants {
            assert!(barrier.reached(want, Duration::from_millis(10)).await);
        }
        // An old heartbeat coming back late changes nothing.
        barrier.arrived(0);
        assert!(barrier.reached(1, Duration::ZERO).await);
    }
}
