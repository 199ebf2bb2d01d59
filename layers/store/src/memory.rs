//! `MemoryStore`: the embedded, in-process store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::store::StoreFuture;
use crate::{Expiry, Loaded, SessionData, SessionId, SessionStore, StoreError, Version, Versioned};

const SHARDS: usize = 32;

/// An in-process [`SessionStore`]: sessions live in sharded hash maps behind
/// read-write locks, so readers of different sessions never contend.
///
/// Expiry (idle and absolute, see [`Expiry`]) is checked on every access
/// against [`tokio::time::Instant`], so paused-time tests see it. Expired
/// entries go away without any task running: an access drops the entry it
/// finds expired, every 64th create sweeps one of the 32 shards in turn
/// (bounded work per call: one shard), and a create that finds the store
/// full sweeps all shards before refusing (at most once a second while
/// such sweeps free nothing, so that a store full of live sessions refuses
/// at once). [`spawn_sweeper`](Self::spawn_sweeper)
/// adds a periodic sweep for stores that see few creates.
///
/// The store holds at most [`with_capacity`](Self::with_capacity) sessions
/// (default one million); a create beyond that is [`StoreError::Full`],
/// which `foresight-mirror` answers with 503 and `retry-after`.
///
/// Cloning shares the sessions.
///
/// ```
/// use foresight_store::{Expiry, MemoryStore, SessionData, SessionStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let mut data = SessionData::new();
/// data.insert("n", &1).unwrap();
/// let id = store.create(&data, Expiry::default()).await.unwrap();
/// let loaded = store.load(id).await.unwrap().unwrap();
/// data.insert("n", &2).unwrap();
/// let v2 = store.save(id, &data, loaded.version).await.unwrap();
/// // A writer still holding the first version loses.
/// assert!(store.save(id, &data, loaded.version).await.unwrap_err().is_conflict());
/// assert_eq!(v2.get(), 2);
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct MemoryStore {
    shared: Arc<Shared>,
    max_size: usize,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Shared {
    shards: [RwLock<HashMap<SessionId, Entry>>; SHARDS],
    /// Entries stored, expired ones not swept yet included; changed only
    /// under the write lock of the shard concerned.
    stored: AtomicUsize,
    /// Creates so far, which pace the amortised sweep.
    creates: AtomicUsize,
    /// After a full sweep that freed nothing, no other before this instant:
    /// a store full of live sessions refuses at once instead of scanning
    /// every entry on every create.
    full_sweep_after: std::sync::Mutex<Option<Instant>>,
}

/// Default [`MemoryStore::with_capacity`]: one million sessions.
pub const DEFAULT_MEMORY_CAPACITY: usize = 1_000_000;
/// One shard is swept every this many creates, so that every shard is swept
/// once per `SWEEP_EVERY * SHARDS` creates.
const SWEEP_EVERY: usize = 64;
/// Least time between two full sweeps of a full store that freed nothing.
const FULL_SWEEP_BACKOFF: Duration = Duration::from_secs(1);

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            shared: Arc::default(),
            max_size: crate::DEFAULT_SIZE_LIMIT,
            capacity: DEFAULT_MEMORY_CAPACITY,
        }
    }
}

#[derive(Debug)]
struct Entry {
    data: SessionData,
    version: Version,
    idle: Duration,
    idle_deadline: Instant,
    absolute_deadline: Instant,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        now < self.idle_deadline && now < self.absolute_deadline
    }

    fn restart_idle(&mut self, now: Instant) {
        self.idle_deadline = now + self.idle;
    }

    fn ttl(&self, now: Instant) -> Duration {
        self.idle_deadline.min(self.absolute_deadline) - now
    }
}

impl MemoryStore {
    /// An empty store holding at most [`DEFAULT_MEMORY_CAPACITY`] sessions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Largest session accepted, as counted by [`SessionData::size`]
    /// (default 64 KiB).
    #[must_use]
    pub fn with_max_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }

    /// Most sessions held (default [`DEFAULT_MEMORY_CAPACITY`]). A create
    /// beyond it first sweeps expired sessions, then fails with
    /// [`StoreError::Full`]. Clones share the sessions and each keeps the
    /// capacity it was given.
    #[must_use]
    pub fn with_capacity(mut self, sessions: usize) -> Self {
        self.capacity = sessions;
        self
    }

    fn shard(&self, id: &SessionId) -> &RwLock<HashMap<SessionId, Entry>> {
        &self.shared.shards[(id.as_u128() as usize) % SHARDS]
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.shared
            .shards
            .iter()
            .map(|s| read(s).values().filter(|e| e.live(now)).count())
            .sum()
    }

    /// Number of stored entries, expired ones not purged yet included.
    pub fn stored(&self) -> usize {
        self.shared.stored.load(Ordering::Relaxed)
    }

    /// Whether there is no live session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every expired session. Creates also do this, a shard at a
    /// time, so that expired sessions go away without any task running.
    pub fn purge_expired(&self) {
        self.shared.purge_expired();
    }

    /// Spawns a task that purges expired sessions every `period`, for
    /// stores that see few creates. The task ends when every clone of the
    /// store is dropped.
    pub fn spawn_sweeper(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(shared) = weak.upgrade() else { return };
                shared.purge_expired();
            }
        })
    }

    fn create_now(&self, data: &SessionData, expiry: Expiry) -> Result<SessionId, StoreError> {
        check_size(data, self.max_size)?;
        let now = Instant::now();
        let creates = self.shared.creates.fetch_add(1, Ordering::Relaxed);
        if creates.is_multiple_of(SWEEP_EVERY) {
            self.shared
                .sweep_shard((creates / SWEEP_EVERY) % SHARDS, now);
        }
        if self.stored() >= self.capacity {
            // Full: make room from expired sessions before refusing.
            self.shared.sweep_when_full(now);
            if self.stored() >= self.capacity {
                metrics::counter!("foresight_store_memory_full_total").increment(1);
                return Err(StoreError::Full {
                    capacity: self.capacity,
                    retry_after: Duration::from_secs(1),
                });
            }
        }
        loop {
            let id = SessionId::random();
            let mut shard = write(self.shard(&id));
            if shard.get(&id).is_some_and(|e| e.live(now)) {
                continue;
            }
            let replaced = shard.insert(
                id,
                Entry {
                    data: data.clone(),
                    version: Version::FIRST,
                    idle: expiry.idle,
                    idle_deadline: now + expiry.idle,
                    absolute_deadline: now + expiry.absolute,
                },
            );
            if replaced.is_none() {
                self.shared.stored.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(id);
        }
    }

    fn load_now(&self, id: SessionId) -> Option<Loaded> {
        let now = Instant::now();
        let shard = read(self.shard(&id));
        let entry = shard.get(&id).filter(|e| e.live(now))?;
        Some(Loaded {
            session: Versioned::new(entry.data.clone(), entry.version),
            ttl: Some(entry.ttl(now)),
        })
    }

    fn version_now(&self, id: SessionId) -> Option<Version> {
        let now = Instant::now();
        let shard = read(self.shard(&id));
        shard.get(&id).filter(|e| e.live(now)).map(|e| e.version)
    }

    fn save_now(
        &self,
        id: SessionId,
        data: &SessionData,
        expected: Version,
    ) -> Result<Version, StoreError> {
        check_size(data, self.max_size)?;
        let now = Instant::now();
        let mut shard = write(self.shard(&id));
        let Some(entry) = live_entry(&mut shard, &self.shared.stored, id, now) else {
            return Err(StoreError::Conflict {
                expected,
                actual: None,
            });
        };
        if entry.version != expected {
            return Err(StoreError::Conflict {
                expected,
                actual: Some(entry.version),
            });
        }
        entry.data = data.clone();
        entry.version = expected.next();
        entry.restart_idle(now);
        Ok(entry.version)
    }

    fn delete_now(&self, id: SessionId, expected: Option<Version>) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut shard = write(self.shard(&id));
        let Some(entry) = live_entry(&mut shard, &self.shared.stored, id, now) else {
            return match expected {
                Some(expected) => Err(StoreError::Conflict {
                    expected,
                    actual: None,
                }),
                None => Ok(false),
            };
        };
        if let Some(expected) = expected
            && entry.version != expected
        {
            return Err(StoreError::Conflict {
                expected,
                actual: Some(entry.version),
            });
        }
        shard.remove(&id);
        self.shared.stored.fetch_sub(1, Ordering::Relaxed);
        Ok(true)
    }

    fn touch_now(&self, id: SessionId, idle: Duration) -> bool {
        let now = Instant::now();
        let mut shard = write(self.shard(&id));
        match live_entry(&mut shard, &self.shared.stored, id, now) {
            Some(entry) => {
                entry.idle = idle;
                entry.restart_idle(now);
                true
            }
            None => false,
        }
    }
}

impl Shared {
    fn purge_expired(&self) {
        let now = Instant::now();
        for index in 0..SHARDS {
            self.sweep_shard(index, now);
        }
    }

    fn sweep_when_full(&self, now: Instant) {
        let mut after = self
            .full_sweep_after
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if after.is_some_and(|after| now < after) {
            return;
        }
        let before = self.stored.load(Ordering::Relaxed);
        for index in 0..SHARDS {
            self.sweep_shard(index, now);
        }
        let freed = before > self.stored.load(Ordering::Relaxed);
        *after = (!freed).then(|| now + FULL_SWEEP_BACKOFF);
    }

    fn sweep_shard(&self, index: usize, now: Instant) {
        let mut shard = write(&self.shards[index]);
        let before = shard.len();
        shard.retain(|_, e| e.live(now));
        let swept = before - shard.len();
        if swept > 0 {
            self.stored.fetch_sub(swept, Ordering::Relaxed);
            metrics::counter!("foresight_store_memory_swept_total").increment(swept as u64);
        }
    }
}

/// The live entry for `id`, dropping it if it expired.
fn live_entry<'a>(
    shard: &'a mut HashMap<SessionId, Entry>,
    stored: &AtomicUsize,
    id: SessionId,
    now: Instant,
) -> Option<&'a mut Entry> {
    if shard.get(&id).is_some_and(|e| !e.live(now)) {
        shard.remove(&id);
        stored.fetch_sub(1, Ordering::Relaxed);
    }
    shard.get_mut(&id)
}

fn check_size(data: &SessionData, max_size: usize) -> Result<(), StoreError> {
    if data.size() > max_size {
        return Err(StoreError::TooLarge(crate::DataError::TooLarge {
            size: data.size(),
            limit: max_size,
        }));
    }
    Ok(())
}

// A panic while a lock is held cannot leave an entry half-written (every
// mutation is a single assignment), so a poisoned lock is still consistent.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl SessionStore for MemoryStore {
    fn create<'a>(&'a self, data: &'a SessionData, expiry: Expiry) -> StoreFuture<'a, SessionId> {
        let result = self.create_now(data, expiry);
        Box::pin(async move { result })
    }

    fn load(&self, id: SessionId) -> StoreFuture<'_, Option<Versioned<SessionData>>> {
        let result = self.load_now(id).map(|l| l.session);
        Box::pin(async move { Ok(result) })
    }

    fn load_with_ttl(&self, id: SessionId) -> StoreFuture<'_, Option<Loaded>> {
        let result = self.load_now(id);
        Box::pin(async move { Ok(result) })
    }

    fn version(&self, id: SessionId) -> StoreFuture<'_, Option<Version>> {
        let result = self.version_now(id);
        Box::pin(async move { Ok(result) })
    }

    fn save<'a>(
        &'a self,
        id: SessionId,
        data: &'a SessionData,
        expected: Version,
    ) -> StoreFuture<'a, Version> {
        let result = self.save_now(id, data, expected);
        Box::pin(async move { result })
    }

    fn delete(&self, id: SessionId, expected: Option<Version>) -> StoreFuture<'_, bool> {
        let result = self.delete_now(id, expected);
        Box::pin(async move { result })
    }

    fn touch(&self, id: SessionId, idle: Duration) -> StoreFuture<'_, bool> {
        let result = self.touch_now(id, idle);
        Box::pin(async move { Ok(result) })
    }
}
