//! `SessionMirrorLayer`: sessions that are never silently lost.
//!
//! Each request gets a [`Session`] handle in its extensions. The session is
//! loaded from the [`SessionStore`] only when the handler first touches it,
//! and saved after the handler only if it changed, as a compare-and-set on
//! the version it was loaded at. A concurrent writer (another request, or
//! an old primary after a failover) makes the save fail with **409**
//! instead of overwriting, unless a [`MergePolicy`] reconciles both. A
//! *blind* write (the handler set keys without reading any of the data) does
//! not depend on the version it loaded, so on a lost compare-and-set its keys
//! are set again over the newer version, if their [`BlindWritePolicy`] is
//! `Reapply` (the default; counted), or refused with 409 if `Conflict`:
//! reapplying is what lets a failover replay succeed when the dead
//! primary's first attempt was applied. A write that read first keeps the
//! 409: it may rest on a stale value.
//!
//! - **Late attempts are fenced.** A request the routing tier sent more
//!   than once (a hedge, a replay after a timeout) carries its id and
//!   attempt number in `x-foresight-attempt`
//!   ([`foresight_core::attempt`]). Each write records its attempt in the
//!   session (the last 32, under a key handlers never see); the write of an
//!   attempt whose request another attempt already wrote is skipped and
//!   counted (`foresight_mirror_fenced_writes_total`). So a request's
//!   session effect is applied once, and a slow attempt that finishes after
//!   the client's next request never lays its older write over it, even as
//!   a reapplied blind write. Requests without the header are not fenced.
//! - **Idempotency keys.** A POST (or any method that is not idempotent)
//!   with an `Idempotency-Key` header and a session runs its handler once:
//!   a retry with the same key gets the stored answer (marked
//!   `idempotent-replayed`), a copy still running is a 409, a key reused
//!   for another request a 422. See [`idempotency`].
//! - A read never fails because the idle-timeout `touch` that follows it
//!   failed: the failure is counted (`foresight_mirror_touch_errors_total`)
//!   and logged.
//!
//! - A session that is only read has its idle timeout restarted with a
//!   store `touch` at most once per interval per instance (default 60 s).
//! - Ids: 128 random bits issued by the store; an id the store does not know
//!   is never adopted (no fixation); [`Session::rotate_id`] on privilege
//!   changes kills the old id.
//! - Shadow requests (`x-foresight-role: shadow`, sent by the routing tier
//!   to the standby instance): the id is validated, the session loaded
//!   (warming a `CachedStore` in front of the store) and its idle
//!   timeout restarted; the handler is skipped and the answer is 204 (404
//!   when the store does not know the id or the session has expired).
//! - Store unreachable, or full (`StoreError::Full`): **503** with
//!   `retry-after`, bounded by the store's timeout; requests succeed again when it is back. Oversize data:
//!   **413**; a malformed id on a shadow request: **400**. The errors are
//!   [`SessionError`], which implements [`foresight_core::HttpError`].
//!
//! # Default setup
//! ```
//! use axum::{Router, routing::get, Extension};
//! use foresight_mirror::{Session, SessionMirrorLayer};
//! use foresight_store::MemoryStore;
//!
//! async fn visits(Extension(session): Extension<Session>) -> String {
//!     let n: u64 = session.get("visits").await.ok().flatten().unwrap_or(0);
//!     session.insert("visits", &(n + 1)).await.ok();
//!     format!("visit {}", n + 1)
//! }
//!
//! let app: Router = Router::new()
//!     .route("/", get(visits))
//!     .layer(SessionMirrorLayer::new(MemoryStore::new()));
//! ```
//!
//! # Customised setup
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use foresight_mirror::{DisjointKeys, SameSite, SessionMirrorLayer};
//! use foresight_store::{CachedStore, MemoryStore};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let layer = SessionMirrorLayer::new(CachedStore::new(MemoryStore::new()))
//!     .with_cookie_name("sid")
//!     .with_same_site(SameSite::Lax)
//!     .with_idle_timeout(Duration::from_secs(15 * 60))
//!     .with_absolute_timeout(Duration::from_secs(8 * 3600))
//!     .with_merge_policy(DisjointKeys);
//! let app: Router = Router::new().route("/", get(|| async { "ok" })).layer(layer);
//! # drop(app);
//! # });
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]
#![forbid(unsafe_code)]

mod blind;
mod carrier;
mod config;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod fence;
pub mod future;
pub mod idempotency;
mod keyed;
mod layer;
mod merge;
mod persist;
mod service;
mod session;
mod touch;

pub use blind::BlindWritePolicy;
pub use carrier::SameSite;
pub use error::SessionError;
pub use foresight_store::{SessionStore, SharedStore};
pub use layer::SessionMirrorLayer;
pub use merge::{DisjointKeys, MergePolicy};
pub use service::SessionMirror;
pub use session::Session;
