//! `CachedStoreBuilder`: every setting of a [`CachedStore`] that shapes its
//! shared state, applied once by [`CachedStoreBuilder::build`].
//!
//! The cache, its listener and its heartbeat task are created in `build`
//! and nowhere else, so no setter can leave a clone on a cache of its own
//! or start a second set of tasks.

use std::sync::Arc;
use std::time::Duration;

use super::bus::InvalidationBus;
use super::state::{State, spawn_heartbeat, spawn_listener};
use super::store::CachedStore;
use crate::SessionStore;

const DEFAULT_TTL: Duration = Duration::from_secs(300);
const DEFAULT_CAPACITY: u64 = 100_000;
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);
const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(3);

/// Builds a [`CachedStore`]; made by [`CachedStore::builder`].
///
/// Defaults: 100 000 sessions; an entry kept at most 5 minutes (never
/// beyond the session's own expiry); no bus; a heartbeat every second,
/// trusted for 3 seconds; no version check and no read barrier.
///
/// ```
/// use std::time::Duration;
/// use foresight_store::{CachedStore, LocalBus, MemoryStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let cached = CachedStore::builder(MemoryStore::new())
///     .with_capacity(10_000)
///     .with_ttl(Duration::from_secs(60))
///     .with_bus(LocalBus::new())
///     .with_heartbeat(Duration::from_millis(500), Duration::from_secs(2))
///     .with_version_check(true)
///     .build();
/// assert!(cached.is_trusted());
/// # });
/// ```
#[must_use]
#[derive(Debug)]
pub struct CachedStoreBuilder<S> {
    inner: S,
    bus: Option<Arc<dyn InvalidationBus>>,
    ttl: Duration,
    capacity: u64,
    heartbeat: Duration,
    heartbeat_timeout: Duration,
    version_check: bool,
    read_barrier: bool,
}

impl<S: SessionStore> CachedStoreBuilder<S> {
    pub(super) fn new(inner: S) -> Self {
        Self {
            inner,
            bus: None,
            ttl: DEFAULT_TTL,
            capacity: DEFAULT_CAPACITY,
            heartbeat: DEFAULT_HEARTBEAT,
            heartbeat_timeout: DEFAULT_HEARTBEAT_TIMEOUT,
            version_check: false,
            read_barrier: false,
        }
    }

    /// Most sessions kept (default 100 000).
    pub fn with_capacity(mut self, sessions: u64) -> Self {
        self.capacity = sessions;
        self
    }

    /// Longest time an entry may be served after it was cached (default
    /// 5 min), even if the session lives longer.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Publishes a heartbeat every `interval` and answers from memory only
    /// while one came back within `timeout` (defaults 1 s and 3 s). Keep
    /// `timeout` a few intervals long.
    pub fn with_heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.heartbeat = interval;
        self.heartbeat_timeout = timeout;
        self
    }

    /// Publishes this cache's writes on `bus` and drops entries announced
    /// by others (default: no bus, right only for a single writer).
    pub fn with_bus(mut self, bus: impl InvalidationBus) -> Self {
        self.bus = Some(Arc::new(bus));
        self
    }

    /// The version check of the handle `build` returns; see
    /// [`CachedStore::with_version_check`].
    pub fn with_version_check(mut self, on: bool) -> Self {
        self.version_check = on;
        self
    }

    /// Read-your-writes across instances without a store read per hit
    /// (default false): every read waits for a heartbeat sent after it
    /// began to come back through the bus, and writes are acknowledged only
    /// once announced. See "the read barrier" on [`CachedStore`]. Needs a
    /// bus that [orders heartbeats](InvalidationBus::orders_heartbeats);
    /// on any other (or without a bus) `build` turns the version check on
    /// instead, which gives the same guarantee for a round trip per hit.
    pub fn with_read_barrier(mut self, on: bool) -> Self {
        self.read_barrier = on;
        self
    }

    /// The cache. With a bus, spawns its listener and heartbeat tasks on
    /// the current tokio runtime (so it must be called inside one); they
    /// end when every clone of the store is dropped.
    pub fn build(self) -> CachedStore<S> {
        let state = Arc::new(State::new(self.capacity, self.ttl, self.heartbeat_timeout));
        if let Some(bus) = &self.bus {
            spawn_listener(bus.as_ref(), Arc::downgrade(&state));
            if bus.is_connected() {
                // Subscribed now, on the bus's word; heartbeats must
                // confirm it within the timeout.
                state.proven();
            }
            spawn_heartbeat(bus.clone(), Arc::downgrade(&state), self.heartbeat);
        }
        let ordered = self.bus.as_ref().is_some_and(|bus| bus.orders_heartbeats());
        let read_barrier = self.read_barrier && ordered;
        if self.read_barrier && !ordered {
            tracing::info!(
                "session cache bus does not order heartbeats; checking versions instead of a read barrier"
            );
        }
        CachedStore {
            inner: self.inner,
            state,
            bus: self.bus,
            version_check: self.version_check || (self.read_barrier && !ordered),
            read_barrier,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{CachedStore, Expiry, LocalBus, MemoryStore, SessionData, SessionStore};

    #[tokio::test]
    async fn a_handle_with_its_own_version_check_shares_the_cache() {
        let cached = CachedStore::builder(MemoryStore::new())
            .with_bus(LocalBus::new())
            .build();
        let checked = cached.clone().with_version_check(true);
        let id = cached
            .create(&SessionData::new(), Expiry::default())
            .await
            .unwrap();
        cached.load(id).await.unwrap().unwrap();
        assert!(cached.is_cached(id));
        assert!(checked.is_cached(id), "the handle lost the shared cache");
        checked.evict(id);
        assert!(!cached.is_cached(id));
    }
}
