//! The `SessionStore` trait.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::{SessionData, SessionId, StoreError, Version, Versioned};

/// Boxed future returned by [`SessionStore`] methods, so that the trait stays
/// usable as `Arc<dyn SessionStore>`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// How long a session lives.
///
/// A session expires `idle` after its last save or touch, and at the latest
/// `absolute` after its creation, whatever happens in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiry {
    /// Idle timeout, restarted by every save and touch.
    pub idle: Duration,
    /// Absolute lifetime, counted from creation.
    pub absolute: Duration,
}

impl Expiry {
    /// An expiry with both timeouts.
    pub const fn new(idle: Duration, absolute: Duration) -> Self {
        Self { idle, absolute }
    }
}

impl Default for Expiry {
    /// 30 minutes idle, 12 hours absolute.
    fn default() -> Self {
        Self::new(Duration::from_secs(30 * 60), Duration::from_secs(12 * 3600))
    }
}

/// Versioned storage of sessions.
///
/// Every write is a compare-and-set on the session's [`Version`]: a writer
/// that read version `v` saves with `expected = v`; it gets `v + 1` back, or
/// [`StoreError::Conflict`] if anyone else saved (or deleted the session) in
/// between. The store itself never overwrites a version its writer did not
/// name. (A layer above it may choose to re-apply a write on top of a newer
/// version, as `foresight-mirror` does for blind writes under its
/// `BlindWritePolicy::Reapply`; that is a decision of the layer, counted,
/// not of the store.)
///
/// Ids are issued by the store ([`create`](Self::create)); loading an id the
/// store never issued (or that expired) answers `None`.
///
/// The trait is object safe: share a store as `Arc<dyn SessionStore>`
/// ([`SharedStore`]).
pub trait SessionStore: Send + Sync + fmt::Debug + 'static {
    /// Stores new data under a fresh random id, at [`Version::FIRST`].
    fn create<'a>(&'a self, data: &'a SessionData, expiry: Expiry) -> StoreFuture<'a, SessionId>;

    /// The data and version of a live session, `None` if there is none.
    fn load(&self, id: SessionId) -> StoreFuture<'_, Option<Versioned<SessionData>>>;

    /// Replaces the data if the stored version is `expected`, restarts the
    /// idle timeout and returns the new version.
    fn save<'a>(
        &'a self,
        id: SessionId,
        data: &'a SessionData,
        expected: Version,
    ) -> StoreFuture<'a, Version>;

    /// Deletes the session; with `expected`, only at that version (a
    /// mismatch is a conflict). Returns whether a session was deleted.
    fn delete(&self, id: SessionId, expected: Option<Version>) -> StoreFuture<'_, bool>;

    /// Sets a new idle timeout and restarts it, without changing the data or
    /// the version. The absolute deadline still applies. Returns whether the
    /// session exists.
    fn touch(&self, id: SessionId, idle: Duration) -> StoreFuture<'_, bool>;

    /// Like [`load`](Self::load), and also how long the session has left
    /// before it expires if nothing touches it (the earlier of its idle and
    /// absolute deadlines), as the store sees it when it answers.
    ///
    /// A cache keeps an entry no longer than that. The default answers
    /// `ttl: None` (unknown), which a `CachedStore`
    /// never caches; `MemoryStore` and `RedisStore` report it.
    fn load_with_ttl(&self, id: SessionId) -> StoreFuture<'_, Option<Loaded>> {
        Box::pin(async move {
            Ok(self
                .load(id)
                .await?
                .map(|session| Loaded { session, ttl: None }))
        })
    }

    /// The version of a live session, `None` if there is none: a cheap
    /// check that a copy is current. The default loads the session.
    fn version(&self, id: SessionId) -> StoreFuture<'_, Option<Version>> {
        Box::pin(async move { Ok(self.load(id).await?.map(|s| s.version)) })
    }
}

/// A session as [`SessionStore::load_with_ttl`] answers it.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    /// The data and its version.
    pub session: Versioned<SessionData>,
    /// Time left before the session expires unless saved or touched;
    /// `None` when the store does not tell.
    pub ttl: Option<Duration>,
}

/// A store shared behind an `Arc`.
pub type SharedStore = Arc<dyn SessionStore>;

impl<S: SessionStore + ?Sized> SessionStore for Arc<S> {
    fn create<'a>(&'a self, data: &'a SessionData, expiry: Expiry) -> StoreFuture<'a, SessionId> {
        (**self).create(data, expiry)
    }

    fn load(&self, id: SessionId) -> StoreFuture<'_, Option<Versioned<SessionData>>> {
        (**self).load(id)
    }

    fn save<'a>(
        &'a self,
        id: SessionId,
        data: &'a SessionData,
        expected: Version,
    ) -> StoreFuture<'a, Version> {
        (**self).save(id, data, expected)
    }

    fn delete(&self, id: SessionId, expected: Option<Version>) -> StoreFuture<'_, bool> {
        (**self).delete(id, expected)
    }

    fn touch(&self, id: SessionId, idle: Duration) -> StoreFuture<'_, bool> {
        (**self).touch(id, idle)
    }

    fn load_with_ttl(&self, id: SessionId) -> StoreFuture<'_, Option<Loaded>> {
        (**self).load_with_ttl(id)
    }

    fn version(&self, id: SessionId) -> StoreFuture<'_, Option<Version>> {
        (**self).version(id)
    }
}
