//! `HealthFailoverLayer`: sends each request to a live instance of its
//! route, and replays a failed request on the next one within the same
//! client request.
//!
//! The layer sits between a [`ShardLayer`] (which stores a
//! [`Route`](foresight_core::Route) with the ranked candidates of the
//! request's key) and a [`Pool`](foresight_core::Pool) (which dispatches by
//! `Route.target`). For every request it:
//!
//! 1. re-aims the route at the **first Healthy candidate** in rank order (a
//!    Degraded candidate keeps the keys it has not drained yet; when no
//!    candidate is Healthy, the one with the lowest latency average serves;
//!    when every
//!    candidate is out, the request is answered at once with
//!    [`FailoverError::NoLiveInstance`]: `503` with `retry-after` at the
//!    edge, without touching any instance);
//! 2. forwards it with the body read through a [`ReplayBody`]: streamed to
//!    the target as it arrives, and kept up to a cap (64 KiB) for a replay;
//! 3. when the attempt fails (an error, a 5xx, or its [`AttemptTimeout`]),
//!    and the request is **replayable** (idempotent method, or an
//!    `idempotency-key` header), the body stayed within the cap, and the
//!    **retry budget** allows it, replays it on the next live candidate. The
//!    client sees one response. A replay carries a [`Replayed`] extension so
//!    the layers below (shadowing) can tell it from a first attempt. A slow
//!    attempt is abandoned at its timeout only for a replay that can start:
//!    with no live candidate left, no budget or a body past the cap, it goes
//!    on, and its late answer beats an error.
//!
//! # Hedging
//!
//! Optional ([`HealthFailoverLayer::with_hedging`]): when a replayable
//! attempt has run longer than a latency quantile of its instance (say the
//! p95 over the last 10–20 s, kept in a lock-free histogram per instance),
//! the request also goes to the next live candidate; both race and the
//! first success answers, the other attempt is cancelled. A failure of
//! either waits for the other; if both fail, the request is replayed on the
//! next candidate as usual. Hedges spend the retry budget, so an overloaded
//! fleet is not hedged into an outage, and are never shadowed.
//!
//! # Health
//!
//! Every attempt is recorded when it ends, or from a drop guard when it is
//! dropped first (client gone, attempt abandoned), so cancelled requests
//! count. The figures per instance: peak-EWMA latency (published on the
//! topology's [`HealthSlot`](foresight_core::HealthSlot)), error ratio over a
//! sliding window (published too), consecutive failures, in-flight requests.
//! The state lives on the `HealthSlot`, where every layer reads it:
//!
//! | from | to | when (defaults) |
//! |---|---|---|
//! | Healthy, Degraded | Ejected | 3 consecutive failures; or 2 failures 100 ms apart with no success between; or ≥ 50 % errors over 10 s with ≥ 20 requests; or any failure within 1 s of a readmission |
//! | Healthy | Degraded | 5 responses in a row slower than 4 × the fleet baseline (the lowest peak-EWMA latency of the Healthy instances) and than 5 ms; or a [`HealthSignal`](foresight_core::signal::HealthSignal) predicts degradation within 1 s |
//! | Ejected | Probing | the ejection backoff (1 s, doubling per ejection up to 30 s) has passed: the next replayable request is the probe (a non-replayable one only after one more base backoff, so non-idempotent traffic alone still readmits) |
//! | Degraded | Probing | 1 s after degrading: the next request is the probe (the instance still serves) |
//! | Probing | Healthy | the probe succeeds faster than 2 × the baseline, and no degradation is predicted |
//! | Probing | Degraded | the probe succeeds, but slowly or with degradation predicted |
//! | Probing | Ejected | the probe fails (with a doubled backoff) |
//!
//! Hysteresis keeps a flapping instance from oscillating: the recovery
//! threshold (2 ×) is below the degradation one (4 ×), a readmitted instance
//! is on probation for one base backoff, and backoff doubles with every
//! ejection until the instance stays healthy for the longest backoff.
//! At most half the instances (and at least one) are ejected at once; an
//! ejection beyond that is counted and refused, as Envoy's
//! `max_ejection_percent` does (Envoy: 10 %; ours is higher because a
//! router usually has few instances and `k = 2` candidates per key).
//!
//! A Degraded instance still serves, but its keys leave it over a 250 ms
//! drain, a growing share at a time, so the secondaries warm up instead of
//! taking every session at once. Probes are real requests; a replayable
//! probe that fails is replayed, so its client does not see the failure.
//! While a Degraded instance is being probed it is still a last resort for
//! its keys.
//!
//! # Default setup
//!
//! ```
//! use bytes::Bytes;
//! use foresight_core::key::HeaderKey;
//! use foresight_core::{InstanceSpec, Pool, ServedBy, Topology};
//! use foresight_failover::{HealthFailoverLayer, ReplayBody};
//! use foresight_shard::ShardLayer;
//! use http_body_util::Empty;
//! use std::convert::Infallible;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let topology = Topology::from_instances(["a", "b", "c"].map(InstanceSpec::new)).unwrap();
//! let pool = Pool::new(topology.clone(), |_instance| {
//!     service_fn(|_req: http::Request<ReplayBody<Empty<Bytes>>>| async {
//!         Ok::<_, Infallible>(http::Response::new("hello"))
//!     })
//! });
//! let service = ServiceBuilder::new()
//!     .layer(ShardLayer::new(topology.clone(), HeaderKey::new("x-account-id")))
//!     .layer(HealthFailoverLayer::new(topology))
//!     .service(pool);
//!
//! let request = http::Request::builder()
//!     .header("x-account-id", "42")
//!     .body(Empty::<Bytes>::new())
//!     .unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert!(response.extensions().get::<ServedBy>().is_some());
//! # }
//! ```
//!
//! # Customised setup
//!
//! Ejection after two failures, a fixed 50 ms attempt timeout, a tighter
//! budget, and no replay of non-idempotent requests even with an
//! idempotency key. Instance `a` fails every request; a `GET` whose primary
//! is `a` is replayed on its secondary and succeeds:
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use foresight_core::key::HeaderKey;
//! use foresight_core::{BoxError, ClientKey, InstanceSpec, Pool, ServedBy, Topology};
//! use foresight_failover::{AttemptTimeout, HealthFailoverLayer, ReplayBody};
//! use foresight_shard::ShardLayer;
//! use http_body_util::Empty;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let topology = Topology::from_instances(["a", "b", "c"].map(InstanceSpec::new)).unwrap();
//! let pool = Pool::new(topology.clone(), |instance| {
//!     let down = instance.id().as_str() == "a";
//!     service_fn(move |_req: http::Request<ReplayBody<Empty<Bytes>>>| async move {
//!         if down {
//!             Err::<http::Response<&str>, BoxError>("connection refused".into())
//!         } else {
//!             Ok(http::Response::new("ok"))
//!         }
//!     })
//! });
//! let failover = HealthFailoverLayer::new(topology.clone())
//!     .with_consecutive_failures(2)
//!     .with_attempt_timeout(AttemptTimeout::Fixed(Duration::from_millis(50)))
//!     .with_replay_budget(Duration::from_secs(10), 5, 0.1)
//!     .with_idempotency_header(None);
//! let service = ServiceBuilder::new()
//!     .layer(ShardLayer::new(topology.clone(), HeaderKey::new("x-account-id")))
//!     .layer(failover.clone())
//!     .service(pool);
//!
//! // A key whose primary is `a`.
//! let key = (0..)
//!     .map(|i| i.to_string())
//!     .find(|k| topology.rank(&ClientKey::from(k.as_str()), 0, 2)[0].as_str() == "a")
//!     .unwrap();
//! let request = http::Request::builder()
//!     .header("x-account-id", key)
//!     .body(Empty::<Bytes>::new())
//!     .unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert_ne!(response.extensions().get::<ServedBy>().unwrap().0.as_str(), "a");
//! assert_eq!(failover.stats().replays, 1);
//! # }
//! ```
//!
//! [`ShardLayer`]: https://docs.rs/foresight-shard

#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]
#![forbid(unsafe_code)]

mod body;
mod budget;
mod error;
pub mod future;
mod health;
mod layer;
mod service;
mod stats;

pub use body::{ReplayBody, Superseded};
pub use error::{FailoverError, NoReplay};
pub use layer::{
    AttemptTimeout, DEFAULT_BASE_EJECTION, DEFAULT_BODY_CAP, DEFAULT_CONSECUTIVE_FAILURES,
    DEFAULT_DEGRADE_RATIO, DEFAULT_DEGRADED_PROBE_INTERVAL, DEFAULT_DRAIN, DEFAULT_ERROR_RATIO,
    DEFAULT_ERROR_WINDOW, DEFAULT_EWMA_DECAY, DEFAULT_FAILURE_WINDOW, DEFAULT_IDEMPOTENCY_HEADER,
    DEFAULT_LATENCY_FLOOR, DEFAULT_MAX_EJECTED_SHARE, DEFAULT_MAX_EJECTION, DEFAULT_MIN_REQUESTS,
    DEFAULT_RECOVER_RATIO, DEFAULT_SIGNAL_LEAD, DEFAULT_SLOW_SAMPLES, HealthFailoverLayer, Hedging,
};
pub use service::HealthFailover;
pub use stats::FailoverStats;

/// Request extension carried by every replay (and absent from first
/// attempts), so the layers below can tell them apart: a replay is never
/// shadowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replayed {
    /// 1 for the first replay, 2 for the second…
    pub attempt: u8,
}

#[cfg(test)]
mod tests;
