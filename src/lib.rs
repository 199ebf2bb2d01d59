//! Foresight: Tower layers that route each client to its instances, keep a
//! warm standby, and act before failure.
//!
//! This facade re-exports the layer crates, one feature per layer:
//! - [`core`]: client keys, topology, rendezvous ranking, routes, the pool
//!   and the edge error mapping;
//! - [`shard`] (feature `shard`): `ShardLayer`.

#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]
#![forbid(unsafe_code)]

pub use foresight_core as core;
#[cfg(feature = "shard")]
pub use foresight_shard as shard;

/// The names most stacks need.
pub mod prelude {
    pub use foresight_core::edge::ErrorResponseLayer;
    pub use foresight_core::key::{
        ClientKey, CookieKey, FingerprintKey, HeaderKey, JwtSubjectKey, KeyExtractor,
        KeyExtractorExt, MissingKeyPolicy,
    };
    pub use foresight_core::{
        InstanceId, InstanceSpec, Pool, Role, Route, ServedBy, Topology,
    };
    #[cfg(feature = "shard")]
    pub use foresight_shard::{ShardError, ShardLayer};
}
