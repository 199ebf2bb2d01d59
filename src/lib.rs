//! Foresight: Tower layers that route each client to its instances, keep a
//! warm standby, and act before failure.
//!
//! This facade re-exports the layer crates, one feature per layer (all on by
//! default but `redis`; `full` turns on everything):
//! - [`core`]: client keys, topology, rendezvous ranking, routes, the pool
//!   and the edge error mapping;
//! - [`shard`] (feature `shard`): `ShardLayer`;
//! - [`failover`] (feature `failover`): `HealthFailoverLayer`;
//! - [`shadow`] (feature `shadow`): `ShadowWriteLayer`;
//! - [`mirror`] and [`store`] (feature `mirror`; `cache` adds `CachedStore`,
//!   `redis` adds `RedisStore`): `SessionMirrorLayer` and the session stores;
//! - [`forecast`] (feature `forecast`): the shared load `Forecaster`;
//! - [`token`] (feature `token`): `TokenPrefetchLayer`, issuers, WebSocket
//!   delivery and the dual-token client;
//! - [`forward`] (feature `client`): the per-instance HTTP service of a
//!   gateway's pool, with a pool of HTTP/1.1 connections per instance;
//! - [`grpc`] (feature `grpc`): errors of the layers as `tonic::Status`.
//!
//! A routing tier stacks them in this order, outermost first:
//!
//! ```text
//! edge() → TokenPrefetchLayer → ShardLayer → HealthFailoverLayer → ShadowWriteLayer → Pool
//! ```
//!
//! and each instance runs `SessionMirrorLayer` in front of its handlers.
//! [`ServiceBuilderExt`] adds one `ServiceBuilder` method per layer
//! (`.foresight_edge().shard(…).failover(…).shadow(…)`).
//! `cargo run --release --example demo` runs the whole picture on loopback.

#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]
#![forbid(unsafe_code)]

pub use foresight_core as core;
#[cfg(feature = "failover")]
pub use foresight_failover as failover;
#[cfg(feature = "forecast")]
pub use foresight_forecast as forecast;
#[cfg(feature = "mirror")]
pub use foresight_mirror as mirror;
#[cfg(feature = "shadow")]
pub use foresight_shadow as shadow;
#[cfg(feature = "shard")]
pub use foresight_shard as shard;
#[cfg(feature = "mirror")]
pub use foresight_store as store;
#[cfg(feature = "token")]
pub use foresight_token as token;

mod builder;
#[cfg(feature = "client")]
pub mod forward;
#[cfg(feature = "grpc")]
pub mod grpc;
#[cfg(feature = "stack")]
pub mod stack;

pub use builder::ServiceBuilderExt;
#[cfg(feature = "stack")]
pub use stack::Foresight;

/// An [`ErrorResponseLayer`](foresight_core::edge::ErrorResponseLayer) that
/// knows the errors of every enabled layer: put it outermost, and every
/// failure becomes its HTTP status (400, 401, 409, 413, 502, 503 with
/// `retry-after`…) instead of a dropped connection.
pub fn edge() -> foresight_core::edge::ErrorResponseLayer {
    let layer = foresight_core::edge::ErrorResponseLayer::new();
    #[cfg(feature = "shard")]
    let layer = layer.classify::<foresight_shard::ShardError>();
    #[cfg(feature = "failover")]
    let layer = layer.classify::<foresight_failover::FailoverError>();
    #[cfg(feature = "mirror")]
    let layer = layer.classify::<foresight_mirror::SessionError>();
    #[cfg(feature = "token")]
    let layer = layer
        .classify::<foresight_token::TokenError>()
        .classify::<foresight_token::IssueError>()
        .classify::<foresight_token::RevocationError>();
    #[cfg(feature = "client")]
    let layer = layer.classify::<forward::ForwardError>();
    layer
}

/// The names most stacks need.
pub mod prelude {
    pub use foresight_core::edge::ErrorResponseLayer;
    pub use foresight_core::key::{
        ClientKey, CookieKey, FingerprintKey, HeaderKey, JwtSubjectKey, KeyExtractor,
        KeyExtractorExt, MissingKeyPolicy,
    };
    pub use foresight_core::{
        InstanceId, InstanceSpec, Pool, Role, Route, RouteBody, ServedBy, Topology,
    };
    #[cfg(feature = "failover")]
    pub use foresight_failover::{FailoverError, HealthFailoverLayer};
    #[cfg(feature = "forecast")]
    pub use foresight_forecast::{Forecaster, Signal};
    #[cfg(feature = "mirror")]
    pub use foresight_mirror::{Session, SessionError, SessionMirrorLayer};
    #[cfg(feature = "shadow")]
    pub use foresight_shadow::ShadowWriteLayer;
    #[cfg(feature = "shard")]
    pub use foresight_shard::{ShardError, ShardLayer};
    #[cfg(feature = "cache")]
    pub use foresight_store::CachedStore;
    #[cfg(feature = "redis")]
    pub use foresight_store::RedisStore;
    #[cfg(feature = "mirror")]
    pub use foresight_store::{MemoryStore, SessionStore};
    #[cfg(feature = "token")]
    pub use foresight_token::{TokenError, TokenPrefetchLayer};
}
