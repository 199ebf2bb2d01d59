//! The `CachedStore` type and its `SessionStore` implementation.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::builder::CachedStoreBuilder;
use super::bus::{Invalidation, InvalidationBus};
use super::state::{Entry, State};
use crate::store::StoreFuture;
use crate::{Expiry, Loaded, SessionData, SessionId, SessionStore, StoreError, Version, Versioned};

/// A [`SessionStore`] that answers loads from an in-process moka cache,
/// only while it can show them current, and writes through to the store
/// behind it.
///
/// Its settings and their defaults are on [`CachedStoreBuilder`], which
/// creates the shared state once.
///
/// Cloning shares the cache.
///
/// # How a cache stays right
/// - **Expiry.** An entry keeps the session's time left as the store told
///   it ([`SessionStore::load_with_ttl`](crate::SessionStore::load_with_ttl):
///   the earlier of the idle and the absolute deadline), measured from
///   before the request was sent, so the entry never outlives the session.
///   A save or touch through the cache never extends it (the store's idle
///   timer restarts, the entry keeps the earlier deadline: at worst one
///   extra load per idle period). An expired entry is a miss and is
///   evicted. A store that does not report a ttl is never cached.
/// - **Writes go through** with their compare-and-set version, so a stale
///   entry can never overwrite a newer version: the writer gets a conflict
///   and the entry is dropped.
/// - **Announcements.** After a write, the new version is published on the
///   [`InvalidationBus`] before the write is acknowledged, and every other
///   instance drops its older entry when the announcement arrives.
/// - **Fail closed: the heartbeat.** A subscriber can look connected and
///   hear nothing (a half-open connection). So each cache publishes its own
///   heartbeat on the bus every interval (default 1 s) and answers from
///   memory only while the bus says it is connected *and* its own heartbeat
///   came back within the timeout (default 3 s). Otherwise every read goes
///   to the store, and when heartbeats come back everything cached is
///   forgotten (announcements may have been lost meanwhile). A
///   (re)subscription or a lagging subscriber forgets everything as well.
/// - **Read-your-writes across instances, by default.** A read on any
///   instance after a write was acknowledged returns it, and a cache that
///   cannot show an entry current reads through. How, depends on the bus
///   ([`CachedStoreBuilder`] picks it; "Consistency" there):
///   - **Acknowledged writes**, on a bus that
///     [orders heartbeats](InvalidationBus::orders_heartbeats)
///     ([`LocalBus`](crate::LocalBus), one Redis server): a write returns
///     only once every other cache on the bus has applied its
///     announcement, or can no longer answer from memory. After
///     publishing, the writer sends a heartbeat and waits for it to come
///     back: by then it has heard every cache that heartbeated before the
///     announcement. Each such cache acknowledges the heartbeat once it
///     has applied everything before it; a cache that stays silent is
///     waited for until its lease ends (the heartbeat timeout after its
///     last heartbeat that the writer heard), since a cache counts its own
///     trust from when its heartbeat was *sent*, and a new (or
///     resubscribed) cache trusts itself only once a heartbeat it sent
///     since came back. Reads need no round trip at all; a write costs
///     about two more (one alone on the bus), and a peer that died
///     silently holds writes back for at most one heartbeat timeout.
///     Every instance sharing the store must use it.
///   - **The version check**, on a bus that does not order heartbeats (a
///     Redis Cluster, an etcd watch) or without a bus: a hit is served only
///     after a cheap version read ([`SessionStore::version`](crate::SessionStore::version):
///     `HMGET v a` on Redis, no data) shows it current, whatever happened
///     to the announcement; a hit costs one small round trip instead of
///     none. [`CachedStore::with_version_check`] sets it per handle.
/// - **A failed announcement** (publish error): the writer's cache drops
///   the session and stops answering from memory until its next heartbeat
///   comes back. With acknowledged writes (the default on an ordering
///   bus), the write then returns [`StoreError::Unavailable`] with an
///   [`UnannouncedWrite`] cause: it **was applied** in the store, but it is
///   not acknowledged, since other instances may still serve the previous
///   version (retrying the same compare-and-set gets a conflict: the
///   version moved). With the version check the write is acknowledged
///   (`Ok`): every reader checks versions.
/// - **Bus-only consistency (opt-out).** With
///   [`CachedStoreBuilder::with_acknowledged_writes`]`(false)` and no
///   version check, hits are answered from memory on the bus's word alone:
///   staleness is bounded by the announcement's delivery (microseconds on
///   a healthy bus; at worst the heartbeat timeout plus interval), and a
///   failed announcement leaves the write applied and acknowledged (`Ok`).
///   Other instances stop answering from memory within the heartbeat
///   timeout if the channel is down for them too; if only the writer could
///   not publish, they may serve the previous version until their entry
///   expires.
/// - **Fills cannot go stale.** A load fills the cache only if no event
///   about its session (an announcement of it, or of a session sharing its
///   stripe: 1 in 1,024) or about the whole cache (a reset, trust withdrawn
///   or restored) arrived while it read, and checks again after the insert,
///   dropping the entry if one arrived meanwhile: an announcement can never
///   land between the check and the insert unnoticed. Announcements about
///   other sessions leave the fill alone, so a write load spread over many
///   sessions does not keep the cache empty.
///
/// Without a bus ([`CachedStore::new`]) the cache checks versions by
/// default; opted out, it is only right when this instance is the only
/// writer.
///
/// ```
/// use std::time::Duration;
/// use foresight_store::{CachedStore, Expiry, LocalBus, MemoryStore, SessionData, SessionStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let shared = MemoryStore::new();
/// let bus = LocalBus::new();
/// // The defaults: acknowledged writes on this bus.
/// let a = CachedStore::builder(shared.clone()).with_bus(bus.clone()).build();
/// let b = CachedStore::builder(shared).with_bus(bus).build();
/// // Each answers from memory once its first heartbeat came back.
/// while !(a.is_trusted() && b.is_trusted()) {
///     tokio::time::sleep(Duration::from_millis(1)).await;
/// }
///
/// let id = a.create(&SessionData::new(), Expiry::default()).await.unwrap();
/// let seen_by_b = b.load(id).await.unwrap().unwrap(); // cached in b
/// assert!(b.is_cached(id));
/// let mut data = SessionData::new();
/// data.insert("moved", &true).unwrap();
/// // Returns once b has dropped its copy.
/// a.save(id, &data, seen_by_b.version).await.unwrap();
/// assert_eq!(b.load(id).await.unwrap().unwrap().value, data);
/// # });
/// ```
#[derive(Debug)]
pub struct CachedStore<S> {
    pub(super) inner: S,
    pub(super) state: Arc<State>,
    pub(super) bus: Option<Arc<dyn InvalidationBus>>,
    pub(super) version_check: bool,
    pub(super) acknowledged: bool,
}

impl<S: Clone> Clone for CachedStore<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            state: self.state.clone(),
            bus: self.bus.clone(),
            version_check: self.version_check,
            acknowledged: self.acknowledged,
        }
    }
}

impl<S: SessionStore> CachedStore<S> {
    /// A cache in front of `inner` with the defaults and no bus: every hit
    /// is checked against the store's version, so it stays right whoever
    /// else writes. [`CachedStore::builder`] sets the rest (a bus, or
    /// `with_acknowledged_writes(false)` for a cache that answers from
    /// memory unchecked, right only while this instance is the only
    /// writer).
    pub fn new(inner: S) -> Self {
        Self::builder(inner).build()
    }

    /// A builder for a cache in front of `inner`: capacity, entry ttl,
    /// heartbeat and the invalidation bus are set on it, and
    /// [`CachedStoreBuilder::build`] creates the cache (and its tasks) once.
    pub fn builder(inner: S) -> CachedStoreBuilder<S> {
        CachedStoreBuilder::new(inner)
    }

    /// Whether a hit is served only after the store's version of the
    /// session matches it: read-your-writes across instances every time,
    /// for one small round trip per hit. By default `build` turns it on
    /// where acknowledged writes are not possible (a bus that does not
    /// order heartbeats, or no bus); `false` here then leaves this handle
    /// with bus-only consistency.
    ///
    /// It is a setting of this handle only: the cache stays shared with
    /// the clones it was made from, which keep their own setting.
    #[must_use]
    pub fn with_version_check(mut self, on: bool) -> Self {
        self.version_check = on;
        self
    }

    /// The store behind the cache.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Whether `id` is cached now (expired or not).
    pub fn is_cached(&self, id: SessionId) -> bool {
        self.state.cache.contains_key(&id)
    }

    /// Forgets `id`.
    pub fn evict(&self, id: SessionId) {
        self.state.cache.invalidate(&id);
    }

    /// Whether the cache answers from memory now: no bus, or a connected
    /// bus whose heartbeat came back within the timeout.
    pub fn is_trusted(&self) -> bool {
        match &self.bus {
            None => true,
            Some(bus) => bus.is_connected() && self.state.proven_recently(),
        }
    }

    /// A current, unexpired entry for `id`, if there is one.
    async fn hit(&self, id: SessionId) -> Result<Option<Arc<Entry>>, StoreError> {
        let Some(entry) = self.state.cache.get(&id) else {
            return Ok(None);
        };
        if entry.expires_at <= Instant::now() {
            self.state.cache.invalidate(&id);
            metrics::counter!("foresight_store_cache_expired_total").increment(1);
            return Ok(None);
        }
        if self.version_check && self.inner.version(id).await? != Some(entry.session.version) {
            self.state.cache.invalidate(&id);
            metrics::counter!("foresight_store_cache_version_mismatches_total").increment(1);
            return Ok(None);
        }
        Ok(Some(entry))
    }

    /// Whether this cache's writes wait until every other cache applied
    /// their announcement (acknowledged writes).
    pub fn has_acknowledged_writes(&self) -> bool {
        self.acknowledged
    }

    /// After an announcement was published: waits until every other cache
    /// has applied it, or can no longer answer from memory. A heartbeat sent
    /// now comes back after the announcement, so once it has, this cache
    /// has heard of every peer that could hold an older entry.
    async fn wait_until_applied(&self) {
        let published = Instant::now();
        let lease = self.state.proof_timeout;
        let seq = self.state.barrier.register();
        if self.state.barrier.reached(seq, lease).await {
            self.state.peers.wait_acknowledged(seq, lease).await;
        } else {
            // Deaf to the bus: every peer's lease on older news ends within
            // a lease of the announcement.
            metrics::counter!("foresight_store_cache_ack_timeouts_total").increment(1);
            tokio::time::sleep_until(super::peers::lease_end(published, lease)).await;
        }
    }

    async fn load_through(&self, id: SessionId) -> Result<Option<Loaded>, StoreError> {
        let trusted = self.is_trusted();
        if trusted && let Some(entry) = self.hit(id).await? {
            metrics::counter!("foresight_store_cache_hits_total").increment(1);
            return Ok(Some(Loaded {
                session: entry.session.clone(),
                ttl: Some(entry.expires_at.saturating_duration_since(Instant::now())),
            }));
        }
        metrics::counter!("foresight_store_cache_misses_total").increment(1);
        let epoch = self.state.epoch(id);
        let sent = Instant::now();
        let loaded = self.inner.load_with_ttl(id).await?;
        if let Some(found) = &loaded
            && let Some(ttl) = found.ttl
            && trusted
        {
            let entry = Entry {
                session: found.session.clone(),
                // Counted from before the request: never later than the
                // store's deadline.
                expires_at: sent + ttl,
            };
            self.state.fill(id, entry, epoch);
        }
        Ok(loaded)
    }

    /// Announces a write. On failure, this cache forgets the session and
    /// stops answering from memory until its heartbeat comes back; with
    /// acknowledged writes, the write is not acknowledged either.
    async fn announce(&self, id: SessionId, version: Option<Version>) -> Result<(), StoreError> {
        if let Some(bus) = &self.bus {
            let invalidation = Invalidation {
                origin: self.state.origin,
                id,
                version,
            };
            if let Err(e) = bus.publish(invalidation).await {
                self.state.distrust();
                self.state.cache.invalidate(&id);
                tracing::warn!(error = %e, %id, "session invalidation not published; cache bypassed until the heartbeat returns");
                metrics::counter!("foresight_store_invalidation_publish_errors_total").increment(1);
                if self.acknowledged {
                    return Err(StoreError::unavailable(UnannouncedWrite {
                        version,
                        source: e,
                    }));
                }
                return Ok(());
            }
            if self.acknowledged {
                self.wait_until_applied().await;
            }
        }
        Ok(())
    }
}

impl<S: SessionStore> SessionStore for CachedStore<S> {
    fn create<'a>(&'a self, data: &'a SessionData, expiry: Expiry) -> StoreFuture<'a, SessionId> {
        Box::pin(async move {
            // A new id has no announcement before it exists: only the whole
            // cache's epoch is taken from before the call.
            let all = self.state.epoch_of_all();
            let sent = Instant::now();
            let id = self.inner.create(data, expiry).await?;
            let epoch = self.state.epoch_since(all, id);
            if self.is_trusted() {
                let entry = Entry {
                    session: Versioned::new(data.clone(), Version::FIRST),
                    expires_at: sent + expiry.idle.min(expiry.absolute),
                };
                self.state.fill(id, entry, epoch);
            }
            Ok(id)
        })
    }

    fn load(&self, id: SessionId) -> StoreFuture<'_, Option<Versioned<SessionData>>> {
        Box::pin(async move { Ok(self.load_through(id).await?.map(|l| l.session)) })
    }

    fn load_with_ttl(&self, id: SessionId) -> StoreFuture<'_, Option<Loaded>> {
        Box::pin(self.load_through(id))
    }

    fn version(&self, id: SessionId) -> StoreFuture<'_, Option<Version>> {
        self.inner.version(id)
    }

    fn save<'a>(
        &'a self,
        id: SessionId,
        data: &'a SessionData,
        expected: Version,
    ) -> StoreFuture<'a, Version> {
        Box::pin(async move {
            let epoch = self.state.epoch(id);
            match self.inner.save(id, data, expected).await {
                Ok(version) => {
                    // The store restarted the idle timer; the entry keeps
                    // its earlier deadline, which stays on the safe side.
                    match self.state.cache.get(&id) {
                        Some(old) if self.is_trusted() => {
                            let entry = Entry {
                                session: Versioned::new(data.clone(), version),
                                expires_at: old.expires_at,
                            };
                            self.state.fill(id, entry, epoch);
                        }
                        _ => self.state.cache.invalidate(&id),
                    }
                    self.announce(id, Some(version)).await?;
                    Ok(version)
                }
                Err(e) => {
                    // A conflict means the entry is stale; any other failure
                    // leaves the outcome unknown.
                    self.state.cache.invalidate(&id);
                    if let StoreError::NotReplicated { version, .. } = &e {
                        // The outcome is already an error; it stays this one.
                        let _ = self.announce(id, Some(*version)).await;
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
                self.announce(id, None).await?;
            }
            result
        })
    }

    fn touch(&self, id: SessionId, idle: Duration) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let sent = Instant::now();
            let alive = self.inner.touch(id, idle).await?;
            match self.state.cache.get(&id) {
                Some(_) if !alive => self.state.cache.invalidate(&id),
                // A shorter idle timeout shortens the entry too.
                Some(old) if sent + idle < old.expires_at => {
                    let epoch = self.state.epoch(id);
                    let entry = Entry {
                        session: old.session.clone(),
                        expires_at: sent + idle,
                    };
                    self.state.fill(id, entry, epoch);
                }
                _ => {}
            }
            Ok(alive)
        })
    }
}

/// A write applied in the store whose announcement could not be published,
/// by a cache with acknowledged writes: other instances may still hold the
/// previous version, so the write is not acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("session write applied (version {}) but not announced to other instances", version.map_or_else(|| "deleted".to_owned(), |v| v.to_string()))]
pub struct UnannouncedWrite {
    /// The version written, `None` for a deletion.
    pub version: Option<Version>,
    /// Why the announcement failed.
    #[source]
    pub source: StoreError,
}
