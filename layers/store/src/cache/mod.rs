//! `CachedStore`: a moka cache in front of any store.

mod bus;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use moka::sync::Cache;
use tokio::sync::broadcast::error::RecvError;

pub use self::bus::{BusEvent, Invalidation, InvalidationBus, LocalBus};
use crate::store::StoreFuture;
use crate::{Expiry, SessionData, SessionId, SessionStore, StoreError, Version, Versioned};

/// A [`SessionStore`] that answers loads from an in-process moka cache and
/// writes through to the store behind it.
///
/// # Consistency
/// - **Writes are never stale.** Every save, delete and touch goes to the
///   inner store with its compare-and-set version, so a cache holding an old
///   version cannot overwrite a newer one: the writer gets a conflict, and
///   the entry is dropped.
/// - **Reads across instances.** After a successful write, the new version is
///   published on an [`InvalidationBus`] (Redis pub/sub with
///   `RedisStore::invalidation_bus`)
///   before the write is acknowledged; every other instance's cache drops
///   its older entry when the announcement arrives. While the bus is not
///   connected the cache is bypassed, and when it (re)connects or lags,
///   everything cached is forgotten, so a missed announcement cannot keep a
///   stale entry alive. Entries also expire after a time to live (default
///   5 minutes), a bound on staleness in any case.
/// - A load that raced with an announcement does not fill the cache.
///
/// Without a bus ([`CachedStore::new`]) the cache is only right when this
/// instance is the only writer.
///
/// Cloning shares the cache.
///
/// ```
/// use foresight_store::{CachedStore, Expiry, LocalBus, MemoryStore, SessionData, SessionStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let shared = MemoryStore::new();
/// let bus = LocalBus::new();
/// let a = CachedStore::new(shared.clone()).with_bus(bus.clone());
/// let b = CachedStore::new(shared).with_bus(bus);
///
/// let id = a.create(&SessionData::new(), Expiry::default()).await.unwrap();
/// let seen_by_b = b.load(id).await.unwrap().unwrap(); // cached in b
/// let mut data = SessionData::new();
/// data.insert("moved", &true).unwrap();
/// a.save(id, &data, seen_by_b.version).await.unwrap();
/// tokio::task::yield_now().await; // let b receive the announcement
/// assert_eq!(b.load(id).await.unwrap().unwrap().value, data);
/// # });
/// ```
#[derive(Debug)]
pub struct CachedStore<S> {
    inner: S,
    state: Arc<State>,
    bus: Option<Arc<dyn InvalidationBus>>,
    ttl: Duration,
    capacity: u64,
}

impl<S: Clone> Clone for CachedStore<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            state: self.state.clone(),
            bus: self.bus.clone(),
            ttl: self.ttl,
            capacity: self.capacity,
        }
    }
}

#[derive(Debug)]
struct State {
    cache: Cache<SessionId, Arc<Versioned<SessionData>>>,
    origin: u64,
    /// Bumped by every announcement received; a load fills the cache only
    /// if no announcement arrived while it was reading.
    epoch: AtomicU64,
}

const DEFAULT_TTL: Duration = Duration::from_secs(300);
const DEFAULT_CAPACITY: u64 = 100_000;

impl<S: SessionStore> CachedStore<S> {
    /// A cache in front of `inner`, without cross-instance invalidation.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            state: Arc::new(State::new(DEFAULT_CAPACITY, DEFAULT_TTL)),
            bus: None,
            ttl: DEFAULT_TTL,
            capacity: DEFAULT_CAPACITY,
        }
    }

    /// Most sessions kept (default 100 000).
    #[must_use]
    pub fn with_capacity(mut self, sessions: u64) -> Self {
        self.capacity = sessions;
        self.state = Arc::new(State::new(sessions, self.ttl));
        self.resubscribe()
    }

    /// Time an entry may be served after it was cached (default 5 min).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self.state = Arc::new(State::new(self.capacity, ttl));
        self.resubscribe()
    }

    /// Publishes this cache's writes on `bus` and drops entries announced
    /// by others. Spawns a listener task on the current tokio runtime; it
    /// ends when every clone of this store is dropped.
    #[must_use]
    pub fn with_bus(mut self, bus: impl InvalidationBus) -> Self {
        self.bus = Some(Arc::new(bus));
        self.resubscribe()
    }

    fn resubscribe(self) -> Self {
        if let Some(bus) = &self.bus {
            spawn_listener(bus.as_ref(), Arc::downgrade(&self.state));
        }
        self
    }

    /// The store behind the cache.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Whether `id` is cached now.
    pub fn is_cached(&self, id: SessionId) -> bool {
        self.state.cache.contains_key(&id)
    }

    /// Forgets `id`.
    pub fn evict(&self, id: SessionId) {
        self.state.cache.invalidate(&id);
    }

    fn usable(&self) -> bool {
        self.bus.as_ref().is_none_or(|bus| bus.is_connected())
    }

    async fn announce(&self, id: SessionId, version: Option<Version>) {
        if let Some(bus) = &self.bus {
            let invalidation = Invalidation {
                origin: self.state.origin,
                id,
                version,
            };
            if let Err(e) = bus.publish(invalidation).await {
                // The write stands; other caches fall back on their TTL and on
                // the reset that follows a broken subscription.
                tracing::warn!(error = %e, "session invalidation not published");
                metrics::counter!("foresight_store_invalidation_publish_errors_total").increment(1);
            }
        }
    }
}

impl State {
    fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            origin: rand::random(),
            epoch: AtomicU64::new(0),
        }
    }

    fn apply(&self, event: BusEvent) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        match event {
            BusEvent::Invalidate(inv) if inv.origin == self.origin => {}
            BusEvent::Invalidate(inv) => {
                let newer = match (self.cache.get(&inv.id), inv.version) {
                    (None, _) => false,
                    (Some(cached), Some(v)) => cached.version >= v,
                    (Some(_), None) => false,
                };
                if !newer {
                    self.cache.invalidate(&inv.id);
                    metrics::counter!("foresight_store_cache_invalidations_total").increment(1);
                }
            }
            BusEvent::Reset => self.cache.invalidate_all(),
        }
    }
}

fn spawn_listener(bus: &dyn InvalidationBus, state: Weak<State>) {
    let mut events = bus.subscribe();
    tokio::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(RecvError::Lagged(_)) => BusEvent::Reset,
                Err(RecvError::Closed) => return,
            };
            let Some(state) = state.upgrade() else { return };
            state.apply(event);
        }
    });
}

impl<S: SessionStore> SessionStore for CachedStore<S> {
    fn create<'a>(&'a self, data: &'a SessionData, expiry: Expiry) -> StoreFuture<'a, SessionId> {
        Box::pin(async move {
            let id = self.inner.create(data, expiry).await?;
            if self.usable() {
                self.state
                    .cache
                    .insert(id, Arc::new(Versioned::new(data.clone(), Version::FIRST)));
            }
            Ok(id)
        })
    }

    fn load(&self, id: SessionId) -> StoreFuture<'_, Option<Versioned<SessionData>>> {
        Box::pin(async move {
            let usable = self.usable();
            if usable && let Some(hit) = self.state.cache.get(&id) {
                metrics::counter!("foresight_store_cache_hits_total").increment(1);
                return Ok(Some((*hit).clone()));
            }
            metrics::counter!("foresight_store_cache_misses_total").increment(1);
            let epoch = self.state.epoch.load(Ordering::SeqCst);
            let loaded = self.inner.load(id).await?;
            if let Some(found) = &loaded
                && usable
                && self.state.epoch.load(Ordering::SeqCst) == epoch
            {
                self.state.cache.insert(id, Arc::new(found.clone()));
            }
            Ok(loaded)
        })
    }

    fn save<'a>(
        &'a self,
        id: SessionId,
        data: &'a SessionData,
        expected: Version,
    ) -> StoreFuture<'a, Version> {
        Box::pin(async move {
            match self.inner.save(id, data, expected).await {
                Ok(version) => {
                    if self.usable() {
                        self.state
                            .cache
                            .insert(id, Arc::new(Versioned::new(data.clone(), version)));
                    }
                    self.announce(id, Some(version)).await;
                    Ok(version)
                }
                Err(e) => {
                    // A conflict means the entry is stale; any other failure
                    // leaves the outcome unknown.
                    self.state.cache.invalidate(&id);
                    if let StoreError::NotReplicated { version, .. } = &e {
                        self.announce(id, Some(*version)).await;
                    }
                    Err(e)
                }
            }
        })
    }

    fn delete(&self, id: SessionId, expected: Option<Version>) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let result = self.inner.delete(id, expected).await;
            self.state.cache.invalidate(&id);
            if matches!(result, Ok(true)) {
                self.announce(id, None).await;
            }
            result
        })
    }

    fn touch(&self, id: SessionId, idle: Duration) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let alive = self.inner.touch(id, idle).await?;
            if !alive {
                self.state.cache.invalidate(&id);
            }
            Ok(alive)
        })
    }
}
