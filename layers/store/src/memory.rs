//! `MemoryStore`: the embedded, in-process store.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::store::StoreFuture;
use crate::{Expiry, SessionData, SessionId, SessionStore, StoreError, Version, Versioned};

const SHARDS: usize = 32;

/// An in-process [`SessionStore`]: sessions live in sharded hash maps behind
/// read-write locks, so readers of different sessions never contend.
///
/// Expiry (idle and absolute, see [`Expiry`]) is checked on every access
/// against [`tokio::time::Instant`], so paused-time tests see it; expired
/// entries are dropped when touched and by [`purge_expired`](Self::purge_expired),
/// which [`spawn_sweeper`](Self::spawn_sweeper) runs periodically.
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
    shards: Arc<[RwLock<HashMap<SessionId, Entry>>; SHARDS]>,
    max_size: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            shards: Arc::default(),
            max_size: crate::DEFAULT_SIZE_LIMIT,
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
}

impl MemoryStore {
    /// An empty store.
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

    fn shard(&self, id: &SessionId) -> &RwLock<HashMap<SessionId, Entry>> {
        &self.shards[(id.as_u128() as usize) % SHARDS]
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.shards
            .iter()
            .map(|s| read(s).values().filter(|e| e.live(now)).count())
            .sum()
    }

    /// Number of stored entries, expired ones not purged yet included.
    pub fn stored(&self) -> usize {
        self.shards.iter().map(|s| read(s).len()).sum()
    }

    /// Whether there is no live session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every expired session.
    pub fn purge_expired(&self) {
        let now = Instant::now();
        for shard in self.shards.iter() {
            write(shard).retain(|_, e| e.live(now));
        }
    }

    /// Spawns a task that purges expired sessions every `period`. The task
    /// ends when every clone of the store is dropped.
    pub fn spawn_sweeper(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.shards);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(shards) = weak.upgrade() else { return };
                MemoryStore {
                    shards,
                    max_size: 0,
                }
                .purge_expired();
            }
        })
    }

    fn create_now(&self, data: &SessionData, expiry: Expiry) -> Result<SessionId, StoreError> {
        check_size(data, self.max_size)?;
        let now = Instant::now();
        loop {
            let id = SessionId::random();
            let mut shard = write(self.shard(&id));
            if shard.get(&id).is_some_and(|e| e.live(now)) {
                continue;
            }
            shard.insert(
                id,
                Entry {
                    data: data.clone(),
                    version: Version::FIRST,
                    idle: expiry.idle,
                    idle_deadline: now + expiry.idle,
                    absolute_deadline: now + expiry.absolute,
                },
            );
            return Ok(id);
        }
    }

    fn load_now(&self, id: SessionId) -> Option<Versioned<SessionData>> {
        let now = Instant::now();
        let shard = read(self.shard(&id));
        let entry = shard.get(&id).filter(|e| e.live(now))?;
        Some(Versioned::new(entry.data.clone(), entry.version))
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
        let Some(entry) = live_entry(&mut shard, id, now) else {
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
        let Some(entry) = live_entry(&mut shard, id, now) else {
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
        Ok(true)
    }

    fn touch_now(&self, id: SessionId, idle: Duration) -> bool {
        let now = Instant::now();
        let mut shard = write(self.shard(&id));
        match live_entry(&mut shard, id, now) {
            Some(entry) => {
                entry.idle = idle;
                entry.restart_idle(now);
                true
            }
            None => false,
        }
    }
}

/// The live entry for `id`, dropping it if it expired.
fn live_entry(
    shard: &mut HashMap<SessionId, Entry>,
    id: SessionId,
    now: Instant,
) -> Option<&mut Entry> {
    if shard.get(&id).is_some_and(|e| !e.live(now)) {
        shard.remove(&id);
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
        let result = self.load_now(id);
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
