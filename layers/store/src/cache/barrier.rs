//! The read barrier: proof that every announcement published before a read
//! began has been applied to the cache, shared by all the reads waiting at
//! the same time.
//!
//! A read registers and gets the number of the heartbeat it needs: the next
//! one not yet sent. The heartbeat task sends that heartbeat after the
//! registration (the number is taken and the counter bumped under one
//! lock), and on a bus that [orders heartbeats](super::InvalidationBus::orders_heartbeats)
//! every announcement published before it (so every write acknowledged
//! before the read began) reaches the cache's listener first. When the
//! listener applies the heartbeat, the read may consult the cache.
//!
//! One heartbeat is in flight at a time: the reads that register meanwhile
//! all wait for the next one, so a busy instance sends one heartbeat per
//! round trip, whatever its request rate.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Notify, watch};

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
    /// The highest number a read waits for.
    wanted: u64,
}

impl Barrier {
    pub(super) fn new() -> Self {
        Self {
            rounds: Mutex::new(Rounds::default()),
            arrived: watch::Sender::new(0),
            demand: Notify::new(),
        }
    }

    /// Registers a read: the number of the heartbeat it must see come back.
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
        rounds.sent
    }

    /// Whether a read waits for a heartbeat not sent yet.
    pub(super) fn is_wanted(&self) -> bool {
        let rounds = self.rounds.lock().unwrap_or_else(|e| e.into_inner());
        rounds.wanted > rounds.sent
    }

    /// Resolves when a read registers (or at once if one did since the
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
    async fn a_read_waits_for_a_heartbeat_sent_after_it_registered() {
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
    async fn reads_that_register_together_share_one_heartbeat() {
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
