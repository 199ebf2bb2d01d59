//! When each session was last warmed on each secondary, in bounded memory.
//!
//! The map is split into shards by hash, each behind its own mutex, so that
//! concurrent requests of different sessions rarely meet. Each shard keeps
//! two generations: new warm-ups go into the current one; when it holds half
//! the shard's room, or is older than the longest interval, it becomes the
//! previous one and the previous one is dropped whole. A lookup reads both.
//! So a shard holds at most its room, each warm-up is O(1), and what is
//! forgotten first is the oldest. A session forgotten early (more sessions
//! than the capacity within one interval) is warmed once more: an extra
//! copy, never extra memory.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::Duration;

use foresight_core::{ClientKey, InstanceId};
use std::collections::hash_map::RandomState;
use tokio::time::Instant;

const SHARDS: usize = 16;

#[derive(Debug)]
struct Shard {
    current: HashMap<u64, Instant>,
    previous: HashMap<u64, Instant>,
    since: Instant,
}

impl Shard {
    fn last(&self, hash: u64) -> Option<Instant> {
        self.current
            .get(&hash)
            .or_else(|| self.previous.get(&hash))
            .copied()
    }

    fn rotate(&mut self, now: Instant) {
        self.previous = std::mem::take(&mut self.current);
        self.since = now;
    }
}

/// Last warm-up per (client key, secondary); see the module docs.
#[derive(Debug)]
pub(crate) struct Coalescer {
    shards: Box<[Mutex<Shard>]>,
    /// Entries per generation of one shard.
    generation: usize,
    /// The longest interval asked: older entries are never needed.
    horizon: Duration,
    hasher: RandomState,
}

impl Coalescer {
    /// Remembers about `capacity` sessions (never more), for intervals up
    /// to `horizon`.
    pub(crate) fn new(capacity: usize, horizon: Duration) -> Self {
        let shards = (capacity / 1024).clamp(1, SHARDS);
        let generation = (capacity / shards / 2).max(1);
        let now = Instant::now();
        Self {
            shards: (0..shards)
                .map(|_| {
                    Mutex::new(Shard {
                        current: HashMap::new(),
                        previous: HashMap::new(),
                        since: now,
                    })
                })
                .collect(),
            generation,
            horizon,
            hasher: RandomState::new(),
        }
    }

    /// Whether `key` may be warmed on `secondary` now: true, and the time
    /// noted, unless it was within `interval`.
    pub(crate) fn admit(
        &self,
        key: &ClientKey,
        secondary: &InstanceId,
        interval: Duration,
    ) -> bool {
        let hash = self.hasher.hash_one((key, secondary));
        let shard = &self.shards[hash as usize % self.shards.len()];
        let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if now.duration_since(shard.since) >= self.horizon {
            shard.rotate(now);
        }
        if let Some(last) = shard.last(hash)
            && now.duration_since(last) < interval
        {
            return false;
        }
        if shard.current.len() >= self.generation {
            shard.rotate(now);
        }
        shard.current.insert(hash, now);
        true
    }

    /// Sessions remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap();
                s.current.len() + s.previous.len()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(30);

    fn key(i: usize) -> ClientKey {
        ClientKey::from(format!("session-{i}").as_str())
    }

    #[tokio::test(start_paused = true)]
    async fn one_warm_up_per_session_and_secondary_per_interval() {
        let coalescer = Coalescer::new(1024, INTERVAL);
        let (b, c) = (InstanceId::from("b"), InstanceId::from("c"));
        assert!(coalescer.admit(&key(1), &b, INTERVAL));
        assert!(!coalescer.admit(&key(1), &b, INTERVAL));
        // Another session, or another secondary, is warmed on its own.
        assert!(coalescer.admit(&key(2), &b, INTERVAL));
        assert!(coalescer.admit(&key(1), &c, INTERVAL));
        tokio::time::advance(INTERVAL - Duration::from_millis(1)).await;
        assert!(!coalescer.admit(&key(1), &b, INTERVAL));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(coalescer.admit(&key(1), &b, INTERVAL));
        // Zero: never coalesced.
        assert!(coalescer.admit(&key(3), &b, Duration::ZERO));
        assert!(coalescer.admit(&key(3), &b, Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn memory_stays_within_the_capacity_and_forgets_the_oldest_first() {
        let capacity = 4096;
        let coalescer = Coalescer::new(capacity, INTERVAL);
        let b = InstanceId::from("b");
        for i in 0..100_000 {
            coalescer.admit(&key(i), &b, INTERVAL);
            assert!(coalescer.len() <= capacity, "{} at {i}", coalescer.len());
        }
        // The newest are remembered, the oldest forgotten.
        assert!(!coalescer.admit(&key(99_999), &b, INTERVAL));
        assert!(coalescer.admit(&key(0), &b, INTERVAL));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_entries_go_after_two_horizons() {
        let coalescer = Coalescer::new(1024, INTERVAL);
        let b = InstanceId::from("b");
        for i in 0..10 {
            coalescer.admit(&key(i), &b, INTERVAL);
        }
        tokio::time::advance(INTERVAL * 2).await;
        coalescer.admit(&key(10), &b, INTERVAL);
        assert_eq!(coalescer.len(), 11);
        tokio::time::advance(INTERVAL).await;
        coalescer.admit(&key(11), &b, INTERVAL);
        // The first ten are gone; 10 and 11 are left.
        assert_eq!(coalescer.len(), 2);
    }
}
