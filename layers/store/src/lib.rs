//! Versioned session storage for Foresight.
//!
//! A [`SessionStore`] maps a [`SessionId`] to [`Versioned`]`<`[`SessionData`]`>`
//! and writes only by compare-and-set: a writer names the version it read,
//! and a stale writer gets [`StoreError::Conflict`] instead of silently
//! overwriting someone else's update.
//!
//! # What is guaranteed, and what is not
//! - A store applies a save or a versioned delete only if the stored
//!   version is the one the writer named; otherwise nothing is written and
//!   the writer gets [`StoreError::Conflict`]. No store ever lays a write
//!   over a version its writer did not name.
//! - A layer above may decide to write again on top of the newer version:
//!   `foresight-mirror` does so for *blind* writes (keys set without being
//!   read) under its `BlindWritePolicy::Reapply`, the default, counted by
//!   `foresight_mirror_blind_writes_reapplied_total`; its
//!   `BlindWritePolicy::Conflict` answers 409 instead. That write is a new
//!   compare-and-set on the newer version, so it still never overwrites a
//!   version it did not see, but it does replace the values of the keys it
//!   writes.
//! - `foresight-mirror` also fences late attempts: a write from an attempt
//!   of a request that another attempt (a hedge, a replay) already wrote
//!   is skipped, so a slow attempt never lays an older write over a newer
//!   request's.
//! - A write that fails with [`StoreError::Unavailable`] may or may not
//!   have been applied. [`StoreError::NotReplicated`] means it was applied
//!   on the primary and may be lost on a failover.
//! - A `CachedStore` built with its defaults gives read-your-writes across
//!   instances: a read anywhere after an acknowledged write returns it, and
//!   a cache that cannot show an entry current reads through. Opted out
//!   to bus-only consistency, it may answer with an older version: see
//!   `CachedStore` for the bounds.
//! - `MemoryStore` lives in one process and is lost with it.
//!
//! Stores:
//! - `MemoryStore` (feature `memory`, default): in-process, sharded,
//!   bounded (`with_capacity`).
//! - `RedisStore` (feature `redis`): standalone Redis or Redis Cluster,
//!   each write one Lua script, optional `WAIT` for replicas.
//! - `EtcdStore` (feature `etcd`): etcd v3 (Raft), linearizable reads by
//!   default, each write one transaction on the key's revision, expiry
//!   by leases shared per time bucket.
//! - `CachedStore` (feature `cache`): a moka cache in front of any store,
//!   version-aware and expiry-aware, with cross-instance invalidation
//!   checked by a heartbeat; read-your-writes across instances by default
//!   (acknowledged writes, or a per-hit version check where the bus cannot
//!   order heartbeats).
//! - `tower_sessions::TowerSessionStore` (feature `tower-sessions`): any
//!   of them behind tower-sessions' `SessionStore` trait.
//!
//! ```
//! use foresight_store::{Expiry, MemoryStore, SessionData, SessionStore, SharedStore};
//! use std::sync::Arc;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let store: SharedStore = Arc::new(MemoryStore::new());
//! let id = store.create(&SessionData::new(), Expiry::default()).await?;
//!
//! // Two writers read the same version…
//! let a = store.load(id).await?.unwrap();
//! let b = store.load(id).await?.unwrap();
//! let mut data = a.value.clone();
//! data.insert("cart", &["apple"])?;
//! store.save(id, &data, a.version).await?;
//! // …the second one is told, instead of erasing the first one's cart.
//! let err = store.save(id, &b.value, b.version).await.unwrap_err();
//! assert!(err.is_conflict());
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]
#![forbid(unsafe_code)]

#[cfg(feature = "cache")]
mod cache;
mod data;
mod error;
#[cfg(feature = "etcd")]
mod etcd;
mod id;
#[cfg(feature = "memory")]
mod memory;
#[cfg(feature = "redis")]
mod redis;
mod store;
#[cfg(feature = "tower-sessions")]
pub mod tower_sessions;
mod version;

/// Decoders of stored bytes, public only for the fuzz targets.
#[doc(hidden)]
pub mod decode {
    /// Decodes the data field of a Redis session record, as `RedisStore`
    /// reads it.
    #[cfg(feature = "redis")]
    pub fn redis_data(bytes: &[u8], limit: usize) -> Result<crate::SessionData, crate::StoreError> {
        crate::redis::codec::decode(bytes, limit)
    }
}

#[cfg(feature = "cache")]
pub use cache::{
    Beat, BusEvent, CachedStore, CachedStoreBuilder, Invalidation, InvalidationBus, LocalBus,
    UnannouncedWrite,
};
pub use data::{DEFAULT_SIZE_LIMIT, DataError, SessionData};
pub use error::{BoxError, StoreError};
#[cfg(all(feature = "etcd", feature = "cache"))]
pub use etcd::EtcdBus;
#[cfg(feature = "etcd")]
pub use etcd::{DEFAULT_ETCD_PREFIX, DEFAULT_LEASE_BUCKET, EtcdError, EtcdStore};
pub use id::{ParseSessionIdError, SessionId};
#[cfg(feature = "memory")]
pub use memory::{DEFAULT_MEMORY_CAPACITY, MemoryStore};
#[cfg(all(feature = "redis", feature = "cache"))]
pub use redis::RedisBus;
#[cfg(feature = "redis")]
pub use redis::{DEFAULT_KEY_PREFIX, RedisStore, Unconfirmed};
pub use store::{Expiry, Loaded, SessionStore, SharedStore, StoreFuture};
pub use version::{Version, Versioned};
