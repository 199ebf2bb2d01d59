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
/// trusted for 3 seconds; and **read-your-writes across instances**: a
/// read on any instance after a write was acknowledged returns it.
///
/// # Consistency: the default, and the opt-out
/// - On a bus that [orders heartbeats](InvalidationBus::orders_heartbeats)
///   ([`LocalBus`](crate::LocalBus), a `RedisBus` on one Redis server):
///   **acknowledged writes** ([`with_acknowledged_writes`](Self::with_acknowledged_writes)).
///   Reads are answered from memory; a write returns once every other
///   cache on the bus has applied its announcement (about two more round
///   trips), and a write whose announcement cannot be published returns
///   [`StoreError::Unavailable`](crate::StoreError::Unavailable) caused by
///   an [`UnannouncedWrite`](crate::UnannouncedWrite): applied in the
///   store, but not acknowledged.
/// - On any other bus (a Redis Cluster, an etcd watch), or without a bus:
///   the **version check** ([`CachedStore::with_version_check`]): each hit
///   costs one small round trip to the store.
/// - **Bus-only consistency, opt-in:** `with_acknowledged_writes(false)`
///   turns both off (unless [`with_version_check(true)`](Self::with_version_check)
///   asks for the check). Hits are then answered from memory on the bus's
///   word alone: a read on another instance may return the previous
///   version until the announcement arrives (microseconds on a healthy
///   bus, at worst the heartbeat timeout plus an interval, or the entry's
///   ttl if only the writer failed to publish), and a failed announcement
///   is logged, not returned. Without a bus, it is right only while this
///   instance is the only writer.
///
/// Every instance sharing the store must build its cache the same way:
/// a writer without acknowledged writes does not wait for the others.
///
/// ```
/// use std::time::Duration;
/// use foresight_store::{CachedStore, LocalBus, MemoryStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // The default: read-your-writes across instances, hits from memory.
/// let bus = LocalBus::new();
/// let cached = CachedStore::builder(MemoryStore::new())
///     .with_bus(bus.clone())
///     .build();
/// assert!(cached.has_acknowledged_writes());
///
/// // Customised, and opted out: bus-only consistency.
/// let weaker = CachedStore::builder(MemoryStore::new())
///     .with_capacity(10_000)
///     .with_ttl(Duration::from_secs(60))
///     .with_bus(bus)
///     .with_heartbeat(Duration::from_millis(500), Duration::from_secs(2))
///     .with_acknowledged_writes(false)
///     .build();
/// assert!(!weaker.has_acknowledged_writes());
/// assert!(weaker.is_trusted());
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
            acknowledged_writes: true,
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
    /// by others (default: no bus, where every hit is checked against the
    /// store's version unless acknowledged writes are turned off).
    pub fn with_bus(mut self, bus: impl InvalidationBus) -> Self {
        self.bus = Some(Arc::new(bus));
        self
    }

    /// The version check of the handle `build` returns; see
    /// [`CachedStore::with_version_check`]. `true` checks versions whatever
    /// the bus; `false` (the default) leaves it to `build`, which turns it
    /// on where acknowledged writes are wanted but not possible (turn that
    /// off with [`with_acknowledged_writes(false)`](Self::with_acknowledged_writes)).
    pub fn with_version_check(mut self, on: bool) -> Self {
        self.version_check = on;
        self
    }

    /// Read-your-writes across instances with reads answered from memory
    /// (default **true**): a write is acknowledged only once every other
    /// cache on the bus has applied its announcement, or can no longer
    /// answer from memory. See "acknowledged writes" on [`CachedStore`].
    /// Every instance writing to the store must use it. Needs a bus that
    /// [orders heartbeats](InvalidationBus::orders_heartbeats) and carries
    /// [acknowledgements](InvalidationBus::acknowledge); on any other (or
    /// without a bus) `build` turns the version check on instead.
    ///
    /// `false` opts out of read-your-writes across instances: **bus-only
    /// consistency** (see the type's docs), where a read elsewhere may
    /// return the previous version for as long as the announcement takes,
    /// and writes neither wait nor fail for their announcement.
    pub fn with_acknowledged_writes(mut self, on: bool) -> Self {
        self.acknowledged_writes = on;
        self
    }

    /// The cache. With a bus, spawns its listener and heartbeat tasks on
    /// the current tokio runtime (so it must be called inside one); they
    /// end when every clone of the store is dropped. With acknowledged
    /// writes, the cache answers from memory only once its first heartbeat
    /// has come back (a round trip on the bus): until then, reads go to the
    /// store.
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
            match &self.bus {
                Some(_) => tracing::info!(
                    "session cache bus does not order heartbeats; checking versions instead of acknowledging writes"
                ),
                None => tracing::info!(
                    "session cache without a bus; checking versions instead of acknowledging writes"
                ),
            }
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
        // Acknowledged writes: trusted once its first heartbeat came back.
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while !cached.is_trusted() {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the first heartbeat came back");
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
