//! `CachedStoreBuilder`: every setting of a [`CachedStore`] that shapes its
//! shared state, applied once by [`CachedStoreBuilder::build`].
//!
//! The cache, its listener and its heartbeat task are created in `build`
//! and nowhere else, so no setter can leave a clone on a cache of its own
//! or start a second set of tasks.

use std::sync::Arc;
use std::time::Duration;

use super::bus::InvalidationBus;
use super::state::{State, spawn_acknowledger, spawn_heartbeat, spawn_listener};
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
/// trusted for 3 seconds; no version check and no acknowledged writes.
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
    acknowledged_writes: bool,
}

/// Acknowledgements waiting to be sent, at most.
const ACK_QUEUE: usize = 1024;

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
            acknowledged_writes: false,
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

    /// Read-your-writes across instances with reads answered from memory
    /// (default false): a write is acknowledged only once every other cache
    /// on the bus has applied its announcement, or can no longer answer from
    /// memory. See "acknowledged writes" on [`CachedStore`]. Every instance
    /// writing to the store must use it. Needs a bus that
    /// [orders heartbeats](InvalidationBus::orders_heartbeats) and carries
    /// [acknowledgements](InvalidationBus::acknowledge); on any other (or
    /// without a bus) `build` turns the version check on instead.
    pub fn with_acknowledged_writes(mut self, on: bool) -> Self {
        self.acknowledged_writes = on;
        self
    }

    /// The cache. With a bus, spawns its listener and heartbeat tasks on
    /// the current tokio runtime (so it must be called inside one); they
    /// end when every clone of the store is dropped.
    pub fn build(self) -> CachedStore<S> {
        let ordered = self.bus.as_ref().is_some_and(|bus| bus.orders_heartbeats());
        let acknowledged = self.acknowledged_writes && ordered;
        let (acks_out, acks_in) = match acknowledged {
            true => {
                let (out, queue) = tokio::sync::mpsc::channel(ACK_QUEUE);
                (Some(out), Some(queue))
            }
            false => (None, None),
        };
        let state = Arc::new(State::new(
            self.capacity,
            self.ttl,
            self.heartbeat_timeout,
            acks_out,
        ));
        if let Some(bus) = &self.bus {
            spawn_listener(bus.as_ref(), Arc::downgrade(&state));
            if let Some(queue) = acks_in {
                spawn_acknowledger(bus.clone(), state.origin, queue);
            }
            // Peers count on this cache's lease: only a heartbeat that came
            // back may start it.
            if bus.is_connected() && !acknowledged {
                // Subscribed now, on the bus's word; heartbeats must
                // confirm it within the timeout.
                state.proven();
            }
            spawn_heartbeat(bus.clone(), Arc::downgrade(&state), self.heartbeat);
        }
        let wanted = self.acknowledged_writes;
        if wanted && !ordered {
            tracing::info!(
                "session cache bus does not order heartbeats; checking versions instead"
            );
        }
        CachedStore {
            inner: self.inner,
            state,
            bus: self.bus,
            version_check: self.version_check || (wanted && !ordered),
            acknowledged,
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
