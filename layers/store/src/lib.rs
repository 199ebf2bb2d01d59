//! Versioned session storage for Foresight.
//!
//! A [`SessionStore`] maps a [`SessionId`] to [`Versioned`]`<`[`SessionData`]`>`
//! and writes only by compare-and-set: a writer names the version it read,
//! and a stale writer gets [`StoreError::Conflict`] instead of silently
//! overwriting someone else's update.
//!
//! Stores:
//! - `MemoryStore` (feature `memory`, default): in-process, sharded.
//! - `RedisStore` (feature `redis`): standalone Redis or Redis Cluster,
//!   each write one Lua script, optional `WAIT` for replicas.
//! - `CachedStore` (feature `cache`): a moka cache in front of any store,
//!   version-aware, with cross-instance invalidation.
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
mod id;
#[cfg(feature = "memory")]
mod memory;
#[cfg(feature = "redis")]
mod redis;
mod store;
mod version;

#[cfg(feature = "cache")]
pub use cache::{BusEvent, CachedStore, Invalidation, InvalidationBus, LocalBus};
pub use data::{DEFAULT_SIZE_LIMIT, DataError, SessionData};
pub use error::{BoxError, StoreError};
pub use id::{ParseSessionIdError, SessionId};
#[cfg(feature = "memory")]
pub use memory::{DEFAULT_MEMORY_CAPACITY, MemoryStore};
#[cfg(all(feature = "redis", feature = "cache"))]
pub use redis::RedisBus;
#[cfg(feature = "redis")]
pub use redis::{DEFAULT_KEY_PREFIX, RedisStore, Unconfirmed};
pub use store::{Expiry, Loaded, SessionStore, SharedStore, StoreFuture};
pub use version::{Version, Versioned};
