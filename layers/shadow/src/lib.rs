//! `ShadowWriteLayer`: keeps the secondary warm by copying each request to
//! it, so it can take over when the primary fails.
//!
//! The layer sits below [`HealthFailoverLayer`](https://docs.rs/foresight-failover) and
//! above the [`Pool`](foresight_core::Pool). For each first attempt whose
//! [`Route`](foresight_core::Route) has a candidate after its target, it
//! sends a copy to the next **Healthy** candidate, with
//! `x-foresight-role: shadow` and `Route.role = Shadow`, on a task of its
//! own. The primary's request is forwarded at once and its response never
//! waits for the copy. A read's copy goes at once; a write's copy (a method
//! that is not safe) goes once the primary has answered, so that the
//! secondary warms up with the session the write saved rather than the one
//! it replaces (a primary that fails or goes away still releases it). The
//! copy's response is read and discarded
//! (optionally its status is compared with the primary's and mismatches
//! counted: a sign that the secondary is not ready to take over).
//!
//! Bounds, each counted in [`ShadowStats`] when it drops a copy:
//! - at most `N` shadows in flight per instance (a semaphore tried without
//!   waiting: beyond `N` the copy is dropped, never queued);
//! - a timeout over the whole copy (body, readiness, response);
//! - bodies up to a cap, copied while the primary reads them (from the
//!   request's body capture, which a failover layer above shares: see
//!   [`foresight_core::body`]); the copy is sent once the body is complete,
//!   and abandoned if the body outgrows the cap, fails, or the client goes
//!   away first;
//! - no copy to an instance that is not Healthy; an optional sampling
//!   fraction;
//! - never a copy of a failover replay or hedge (a
//!   [`Route`](foresight_core::Route) whose `attempt` is not 0) or of a
//!   shadow.
//!
//! What is copied, to which instance and how often is the layer's
//! [`ShadowPolicy`], safe and cheap by default:
//! - a request that is not safe (`POST`, `PATCH`, `PUT`, `DELETE`, …) is
//!   copied only to an instance declared shadow-aware (one running
//!   `SessionMirrorLayer`, which skips the handler on a shadow). No
//!   instance is shadow-aware by default, so by default no write ever runs
//!   twice;
//! - reads are coalesced per session: one copy per client key and secondary
//!   per interval (30 s by default), in a bounded map;
//! - [`ShadowRule`]s skip, sample or coalesce per method and path prefix.
//!
//! An incoming `x-foresight-role` header is stripped, so a client cannot
//! forge shadow requests, unless the hop is configured as trusted.
//!
//! The copy runs on a spawned Tokio task (one allocation per shadow, off the
//! primary's path). A request that is not copied costs a header lookup and
//! the policy's decision (a method check, the rules if any), and a read
//! also a lookup in the coalescing map (one hash, one uncontended lock of
//! one of its shards). The counters of each outcome are in [`ShadowStats`]
//! and, under the names in [`metrics`], in the `metrics` registry.
//!
//! # Default setup
//!
//! ```
//! use bytes::Bytes;
//! use foresight_core::key::HeaderKey;
//! use foresight_core::{InstanceSpec, Pool, RouteBody, Topology};
//! use foresight_failover::HealthFailoverLayer;
//! use foresight_shadow::ShadowWriteLayer;
//! use foresight_shard::ShardLayer;
//! use http_body_util::{Empty, Full};
//! use std::convert::Infallible;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let topology = Topology::from_instances(["a", "b", "c"].map(InstanceSpec::new)).unwrap();
//! let pool = Pool::new(topology.clone(), |_instance| {
//!     service_fn(|_req: http::Request<RouteBody>| async {
//!         Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from("ok"))))
//!     })
//! });
//! let shadow = ShadowWriteLayer::new(topology.clone());
//! let service = ServiceBuilder::new()
//!     .layer(ShardLayer::new(topology.clone(), HeaderKey::new("x-account-id")))
//!     .layer(HealthFailoverLayer::new(topology))
//!     .layer(shadow.clone())
//!     .service(pool);
//!
//! let request = http::Request::builder()
//!     .header("x-account-id", "42")
//!     .body(Empty::<Bytes>::new())
//!     .unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! assert_eq!(shadow.stats().sent, 1);
//! # }
//! ```
//!
//! # Customised setup
//!
//! Copy writes to `a` and `b`, which run `SessionMirrorLayer`; warm each
//! session at most every 10 s, never for static assets; shadow one request
//! in ten, at most 8 in flight per instance, each within 200 ms; compare
//! statuses, and trust the role header because the hop in front is another
//! router of ours:
//!
//! ```
//! use std::time::Duration;
//! use foresight_core::{InstanceSpec, Topology};
//! use foresight_shadow::{ShadowPolicy, ShadowRule, ShadowWriteLayer};
//!
//! # fn main() -> Result<(), foresight_shadow::ShadowPolicyError> {
//! let topology = Topology::from_instances(["a", "b"].map(InstanceSpec::new)).unwrap();
//! let policy = ShadowPolicy::new()
//!     .with_shadow_aware(["a", "b"])
//!     .with_coalesce_interval(Duration::from_secs(10))
//!     .with_rule(ShadowRule::skip().with_path_prefix("/assets")?);
//! let shadow = ShadowWriteLayer::new(topology)
//!     .with_policy(policy)
//!     .with_sampling(0.1)
//!     .with_max_in_flight(8)
//!     .with_timeout(Duration::from_millis(200))
//!     .with_comparison(true)
//!     .with_trusted_hop(true);
//! assert!(shadow.policy().is_shadow_aware(&"a".into()));
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]
#![forbid(unsafe_code)]

mod coalesce;
mod error;
pub mod future;
mod layer;
pub mod metrics;
mod policy;
mod service;
mod stats;

pub use error::ShadowPolicyError;
pub use layer::{DEFAULT_BODY_CAP, DEFAULT_MAX_IN_FLIGHT, DEFAULT_TIMEOUT, ShadowWriteLayer};
pub use policy::{
    DEFAULT_COALESCE_CAPACITY, DEFAULT_COALESCE_INTERVAL, ShadowAction, ShadowPolicy, ShadowRule,
};
pub use service::ShadowWrite;
pub use stats::ShadowStats;

#[cfg(test)]
mod tests;
