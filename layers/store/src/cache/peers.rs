//! The other caches on the bus, as one cache sees them, and which of its
//! heartbeats each has acknowledged: what a write waits for under
//! [acknowledged writes](super::CachedStoreBuilder::with_acknowledged_writes).
//!
//! A peer is known from its heartbeats and acknowledgements. A cache
//! answers from memory only while one of its own heartbeats, *sent* within
//! the lease (the heartbeat timeout), has come back. So a peer last heard
//! at `x` answers from memory on news older than `x` until `x + lease` at
//! the latest: a writer that has not heard its acknowledgement by then need
//! not wait any longer. Any later heartbeat of the peer came back after the
//! writer's announcement, which the peer has then applied.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// Peers tracked at most. Beyond it a writer cannot know every peer, so it
/// waits out the whole lease.
const MAX_PEERS: usize = 4096;

/// How long after a lease's nominal end a writer still waits: the proof is
/// kept in whole milliseconds, and two hosts' clocks do not tick at quite
/// the same rate.
pub(super) fn lease_end(from: Instant, lease: Duration) -> Instant {
    from + lease + lease / 100 + Duration::from_millis(2)
}

#[derive(Debug)]
pub(super) struct Peers {
    inner: Mutex<Known>,
    /// Bumped by every acknowledgement, to wake waiting writers.
    acks: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Known {
    peers: HashMap<u64, Peer>,
    /// Set when a peer could not be tracked (the map was full).
    overflowed_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Peer {
    last_heard: Instant,
    acked: u64,
}

impl Peers {
    pub(super) fn new() -> Self {
        Self {
            inner: Mutex::new(Known::default()),
            acks: watch::Sender::new(0),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `origin` was heard now (a heartbeat or an acknowledgement).
    pub(super) fn heard(&self, origin: u64, lease: Duration) {
        let now = Instant::now();
        let mut known = self.known();
        if let Some(peer) = known.peers.get_mut(&origin) {
            peer.last_heard = now;
            return;
        }
        if known.peers.len() >= MAX_PEERS {
            // Peers silent for a lease no longer answer from memory.
            known.peers.retain(|_, p| p.last_heard + lease > now);
        }
        if known.peers.len() >= MAX_PEERS {
            known.overflowed_at = Some(now);
            return;
        }
        known.peers.insert(
            origin,
            Peer {
                last_heard: now,
                acked: 0,
            },
        );
    }

    /// `from` has applied everything before this cache's heartbeat `seq`.
    pub(super) fn acked(&self, from: u64, seq: u64, lease: Duration) {
        self.heard(from, lease);
        if let Some(peer) = self.known().peers.get_mut(&from) {
            peer.acked = peer.acked.max(seq);
        }
        self.acks.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The peers that have not acknowledged heartbeat `seq`, each with the
    /// instant it stops answering from memory on what it last heard, and
    /// the end of an overflow's lease; only those still to come.
    fn unacknowledged(
        &self,
        seq: u64,
        lease: Duration,
        now: Instant,
    ) -> Vec<(Option<u64>, Instant)> {
        let known = self.known();
        let overflow = known.overflowed_at.map(|at| (None, lease_end(at, lease)));
        known
            .peers
            .iter()
            .filter(|(_, p)| p.acked < seq)
            .map(|(&origin, p)| (Some(origin), lease_end(p.last_heard, lease)))
            .chain(overflow)
            .filter(|&(_, end)| end > now)
            .collect()
    }

    /// Waits until every peer known now has acknowledged heartbeat `seq`
    /// or can no longer answer from memory on what it heard before. To be
    /// called once heartbeat `seq` came back: a peer first heard, or heard
    /// again, after that sent its heartbeat after `seq`, and so after
    /// everything `seq` follows; its lease does not extend the wait.
    pub(super) async fn wait_acknowledged(&self, seq: u64, lease: Duration) {
        let mut acks = self.acks.subscribe();
        let mut waiting = self.unacknowledged(seq, lease, Instant::now());
        loop {
            acks.borrow_and_update();
            let now = Instant::now();
            {
                let known = self.known();
                waiting.retain(|&(origin, end)| {
                    end > now
                        && origin.is_none_or(|o| known.peers.get(&o).is_none_or(|p| p.acked < seq))
                });
            }
            let Some(deadline) = waiting.iter().map(|&(_, end)| end).max() else {
                return;
            };
            tokio::select! {
                _ = acks.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(3);

    #[tokio::test(start_paused = true)]
    async fn a_write_waits_for_every_peer_heard_within_the_lease() {
        let peers = Peers::new();
        peers.heard(1, LEASE);
        peers.heard(2, LEASE);
        let start = Instant::now();
        let wait = tokio::spawn(async move {
            // Both acknowledge after 10 ms.
            let peers = std::sync::Arc::new(peers);
            let acking = peers.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                acking.acked(1, 5, LEASE);
                acking.acked(2, 7, LEASE);
            });
            peers.wait_acknowledged(5, LEASE).await;
        });
        wait.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_is_waited_for_until_its_lease_ends() {
        let peers = Peers::new();
        peers.heard(1, LEASE);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let start = Instant::now();
        peers.wait_acknowledged(1, LEASE).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(2) + LEASE / 100 + Duration::from_millis(2)
        );
        // Long gone: not waited for at all.
        let start = Instant::now();
        peers.wait_acknowledged(2, LEASE).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn an_older_acknowledgement_does_not_count() {
        let peers = Peers::new();
        peers.acked(1, 4, LEASE);
        assert!(peers.unacknowledged(4, LEASE, Instant::now()).is_empty());
        assert_eq!(peers.unacknowledged(5, LEASE, Instant::now()).len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_heard_again_while_a_write_waits_does_not_extend_the_wait() {
        let peers = std::sync::Arc::new(Peers::new());
        peers.heard(1, LEASE);
        let chatty = peers.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                chatty.heard(1, LEASE);
            }
        });
        let start = Instant::now();
        peers.wait_acknowledged(1, LEASE).await;
        assert_eq!(start.elapsed(), lease_end(start, LEASE) - start);
    }
}
