//! Foresight's stores behind tower-sessions' `SessionStore` trait.
//!
//! [`TowerSessionStore`] lets an app built on tower-sessions (its
//! `SessionManagerLayer` and `Session` extractor) keep its handlers and
//! store its sessions in any Foresight [`SessionStore`]: `MemoryStore`,
//! `RedisStore` on standalone Redis or Redis Cluster, or a `CachedStore`
//! with cross-instance invalidation.
//!
//! # What survives the adapter
//! tower-sessions' API has no versions, so the adapter carries one inside
//! the record: [`load`](tower_sessions_core::SessionStore::load) adds the
//! key [`VERSION_KEY`] to the record's data, and `save` writes by
//! compare-and-set on that version. So:
//! - **No lost update.** Two requests that loaded the same version and both
//!   save: the second gets an error (tower-sessions answers it with a 500)
//!   instead of erasing the first one's change. The same holds for one
//!   record saved twice in a request (an explicit `Session::save` followed
//!   by more changes): the second save is the conflict.
//! - **Ids are issued by the store.** `create` ignores the id tower-sessions
//!   proposed and takes a fresh one from the store, so an id never collides
//!   and a client can never choose its session id.
//! - **Expiry.** A session is created with the record's expiry as its idle
//!   timeout and [`with_absolute_lifetime`](TowerSessionStore::with_absolute_lifetime)
//!   as its absolute one; every save restarts the idle timeout, and a save
//!   whose expiry moved sets the new one. A loaded record's expiry is the
//!   store's (idle or absolute, whichever comes first).
//! - **What does not survive:** a handler that removes [`VERSION_KEY`]
//!   (for example with `Session::clear`) turns its next save into a write
//!   on whatever version is current (last writer wins, counted by
//!   `foresight_store_tower_sessions_unversioned_saves_total`). A save of a
//!   session that expired or was deleted in the meantime is an error, not a
//!   silent re-creation under the old id.
//!
//! ```
//! use foresight_store::MemoryStore;
//! use foresight_store::tower_sessions::TowerSessionStore;
//! use tower_sessions::SessionManagerLayer;
//!
//! let store = TowerSessionStore::new(MemoryStore::new());
//! let layer = SessionManagerLayer::new(store).with_secure(true);
//! # drop(layer);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use time::OffsetDateTime;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{self, Error};

use crate::{
    DEFAULT_SIZE_LIMIT, Expiry, SessionData, SessionId, SessionStore, StoreError, Version,
};

/// The data key under which a loaded record carries its store version.
pub const VERSION_KEY: &str = "__foresight_version";

/// Counted when a save finds no [`VERSION_KEY`] in the record.
pub const UNVERSIONED_SAVES: &str = "foresight_store_tower_sessions_unversioned_saves_total";

/// A Foresight [`SessionStore`] as a `tower_sessions::SessionStore`. See
/// the [module docs](self) for which guarantees hold through it.
#[derive(Clone)]
pub struct TowerSessionStore<S> {
    store: S,
    absolute: Duration,
    size_limit: usize,
}

impl<S: fmt::Debug> fmt::Debug for TowerSessionStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TowerSessionStore")
            .field("store", &self.store)
            .field("absolute", &self.absolute)
            .finish()
    }
}

impl<S: SessionStore + Clone> TowerSessionStore<S> {
    /// Wraps `store`; sessions live at most 12 hours (see
    /// [`with_absolute_lifetime`](Self::with_absolute_lifetime)).
    pub fn new(store: S) -> Self {
        Self {
            store,
            absolute: Expiry::default().absolute,
            size_limit: DEFAULT_SIZE_LIMIT,
        }
    }

    /// The absolute lifetime of a session, counted from its creation,
    /// whatever its saves do. Default 12 hours.
    pub fn with_absolute_lifetime(mut self, lifetime: Duration) -> Self {
        self.absolute = lifetime;
        self
    }

    /// The largest session data accepted, in bytes (default
    /// [`DEFAULT_SIZE_LIMIT`]).
    pub fn with_size_limit(mut self, limit: usize) -> Self {
        self.size_limit = limit;
        self
    }

    /// The wrapped store.
    pub fn get_ref(&self) -> &S {
        &self.store
    }

    fn encode(&self, record: &Record) -> Result<(SessionData, Option<Version>), Error> {
        let mut entries = BTreeMap::new();
        let mut version = None;
        for (key, value) in &record.data {
            if key == VERSION_KEY {
                version = value.as_u64().map(Version::new);
            } else {
                entries.insert(key.clone(), value.clone());
            }
        }
        let data = SessionData::from_entries(entries, self.size_limit)
            .map_err(|e| Error::Encode(e.to_string()))?;
        Ok((data, version))
    }
}

fn idle_until(expiry: OffsetDateTime) -> Duration {
    let left = expiry - OffsetDateTime::now_utc();
    Duration::try_from(left)
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(1))
}

fn session_id(id: &Id) -> SessionId {
    SessionId::from_u128(id.0 as u128)
}

fn backend(error: StoreError) -> Error {
    // tower-sessions' errors carry text only; the cause chain is flattened.
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::Backend(text)
}

fn set_version(record: &mut Record, version: Version) {
    record
        .data
        .insert(VERSION_KEY.to_owned(), Value::from(version.get()));
}

#[async_trait]
impl<S: SessionStore + Clone> session_store::SessionStore for TowerSessionStore<S> {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let (data, _) = self.encode(record)?;
        let expiry = Expiry::new(idle_until(record.expiry_date), self.absolute);
        let id = self.store.create(&data, expiry).await.map_err(backend)?;
        record.id = Id(id.as_u128() as i128);
        set_version(record, Version::FIRST);
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let id = session_id(&record.id);
        let (data, version) = self.encode(record)?;
        let expected = match version {
            Some(v) => v,
            None => {
                metrics::counter!(UNVERSIONED_SAVES).increment(1);
                match self.store.version(id).await.map_err(backend)? {
                    Some(v) => v,
                    None => {
                        return Err(Error::Backend(format!("session {id:?} no longer exists")));
                    }
                }
            }
        };
        self.store
            .save(id, &data, expected)
            .await
            .map_err(backend)?;
        // A save restarts the idle timeout the session was created with;
        // an expiry that moved (tower-sessions' `set_expiry`) is applied.
        self.store
            .touch(id, idle_until(record.expiry_date))
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let sid = session_id(id);
        let Some(loaded) = self.store.load_with_ttl(sid).await.map_err(backend)? else {
            return Ok(None);
        };
        let ttl = loaded.ttl.unwrap_or(self.absolute);
        let expiry_date = OffsetDateTime::now_utc() + ttl;
        let version = loaded.session.version;
        let data: HashMap<String, Value> =
            loaded.session.value.into_entries().into_iter().collect();
        let mut record = Record {
            id: *id,
            data,
            expiry_date,
        };
        set_version(&mut record, version);
        Ok(Some(record))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.store
            .delete(session_id(id), None)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
