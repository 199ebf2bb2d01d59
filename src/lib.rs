//! Foresight: Tower layers that route each client to its instances, keep a
//! warm standby, and act before failure.
//!
//! This facade re-exports the layer crates, one feature per layer:
//! - [`core`]: client keys, topology, rendezvous ranking, routes, the pool
//!   and the edge error mapping;
//! - [`shard`] (feature `shard`): `ShardLayer`;
//! - [`forward`] (feature `client`): the per-instance HTTP service of a
//!   gateway's pool, over a hyper-util client;
//! - [`grpc`] (feature `grpc`): errors of the layers as `tonic::Status`.

#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]
#![forbid(unsafe_code)]

pub use foresight_core as core;
#[cfg(feature = "client")]
pub mod forward;
#[cfg(feature = "grpc")]
pub mod grpc;
#[cfg(feature = "shard")]
pub use foresight_shard as shard;

/// An [`ErrorResponseLayer`](foresight_core::edge::ErrorResponseLayer) that
/// knows the errors of every enabled layer: put it outermost.
pub fn edge() -> foresight_core::edge::ErrorResponseLayer {
    let layer = foresight_core::edge::ErrorResponseLayer::new();
    #[cfg(feature = "shard")]
    let layer = layer.classify::<foresight_shard::ShardError>();
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
    pub use foresight_core::{InstanceId, InstanceSpec, Pool, Role, Route, ServedBy, Topology};
    #[cfg(feature = "shard")]
    pub use foresight_shard::{ShardError, ShardLayer};
}
