//! `ShardLayer`: maps a client key to its ranked instances.
//!
//! For every request the layer reads the client key with a
//! [`KeyExtractor`](foresight_core::KeyExtractor), ranks the instances of a
//! [`Topology`](foresight_core::Topology) for that key by weighted rendezvous
//! hashing, and stores the decision as a [`Route`](foresight_core::Route) in
//! the request extensions: `ranked` holds the best `k` distinct instances
//! (primary, secondary, …), `target` the first. The layers below act on it:
//! failover picks a live target, shadowing copies to the secondary, and a
//! [`Pool`](foresight_core::Pool) dispatches to the target.
//!
//! The layer is the entry of the routing tier, so it also removes any
//! [`ROLE_HEADER`](foresight_core::ROLE_HEADER) (`x-foresight-role`) a
//! client sent, before routing: only the tier's own `ShadowWriteLayer` may
//! mark a request as a shadow copy, whichever layers the stack holds. A
//! router behind another router of the fleet can keep the header with
//! [`with_trusted_hop`](ShardLayer::with_trusted_hop).
//!
//! Counters `foresight_shard_routed_total`,
//! `foresight_shard_rejected_total{reason}` and
//! `foresight_shard_role_stripped_total` are recorded through `metrics`.
//!
//! A request without a usable key is rejected with a
//! [`ShardError::Key`] (400 at the edge) or spread by a random key, as the
//! [`MissingKeyPolicy`](foresight_core::key::MissingKeyPolicy) says.
//!
//! # Default setup
//!
//! ```
//! use std::convert::Infallible;
//! use foresight_core::key::HeaderKey;
//! use foresight_core::{InstanceSpec, Route, Topology};
//! use foresight_shard::ShardLayer;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let topology = Topology::from_instances(["a", "b", "c"].map(InstanceSpec::new)).unwrap();
//! let service = ServiceBuilder::new()
//!     .layer(ShardLayer::new(topology, HeaderKey::new("x-account-id")))
//!     .service(service_fn(|req: http::Request<()>| async move {
//!         let route = req.extensions().get::<Route>().unwrap();
//!         Ok::<_, Infallible>(http::Response::new(route.target.to_string()))
//!     }));
//!
//! let request = http::Request::builder().header("x-account-id", "42").body(()).unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert!(["a", "b", "c"].contains(&response.body().as_str()));
//! # }
//! ```
//!
//! # Customised setup
//!
//! Three candidates per key, the JWT subject or else a cookie as the key,
//! keyless requests spread randomly, and a seed shared by every router of the
//! fleet so that they all agree:
//!
//! ```
//! use foresight_core::key::{CookieKey, JwtSubjectKey, KeyExtractorExt, MissingKeyPolicy};
//! use foresight_core::{InstanceSpec, Topology};
//! use foresight_shard::ShardLayer;
//!
//! let topology = Topology::from_instances([
//!     InstanceSpec::new("a").with_weight(2.0),
//!     InstanceSpec::new("b"),
//!     InstanceSpec::new("c"),
//! ])
//! .unwrap();
//! let layer = ShardLayer::new(topology, JwtSubjectKey::new().or(CookieKey::new("sid")))
//!     .with_replicas(3)
//!     .with_missing_key(MissingKeyPolicy::SpreadRandomly)
//!     .with_seed(0x6f72_6573_6967_6874);
//! # let _ = layer;
//! ```

#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]
#![forbid(unsafe_code)]

mod error;
pub mod future;
mod layer;
mod metrics;
mod order;
mod service;

pub use error::ShardError;
pub use layer::{DEFAULT_REPLICAS, DEFAULT_SEED, ShardLayer};
pub use service::Shard;
