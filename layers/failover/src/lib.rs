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
//! 2. forwards it with its body as a
//!    [`RouteBody`](foresight_core::RouteBody): streamed to the target
//!    as it arrives, and, for a replayable request, kept up to a cap
//!    (64 KiB) in the request's body capture, for a replay;
//! 3. when the attempt fails (an error, a 5xx, or its [`AttemptTimeout`]),
//!    and the request is **replayable** (idempotent method, or an
//!    `idempotency-key` header), the body stayed within the cap, and the
//!    **retry budget** allows it, replays it on the next live candidate. The
//!    client sees one response. A replay's [`Route`](foresight_core::Route)
//!    carries its attempt number (`Route.attempt`, 0 for a first attempt),
//!    so the layers below (shadowing) can tell it from a first attempt. A slow
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
//! | Healthy | Degraded | 5 responses in a row, over at least 100 ms, slower than 4 × the fleet baseline (the lowest median latency of the Healthy instances over the last seconds), than 2 × their lowest peak-EWMA latency (a stall of the whole host is nobody's fault) and than 5 ms; or a [`HealthSignal`](foresight_core::signal::HealthSignal) predicts degradation within 1 s |
//! | Ejected | Probing | the ejection backoff (1 s, doubling per ejection up to 2 s) has passed: the next replayable request is the probe (a non-replayable one only after one more base backoff, so non-idempotent traffic alone still readmits) |
//! | Degraded | Probing | 1 s after degrading: the next request is the probe (the instance still serves) |
//! | Probing | Healthy | the probe succeeds (an Ejected instance's probe tests that it is back, so any answer will do, even one that waited out an outage; a Degraded instance's must be faster than 2 × the baseline), no degradation is predicted, and (for an instance a prediction moved out) none was for the hold (1 s) and the probe is also faster than 2 × the baseline of when it was moved out and than its own latency average then |
//! | Probing | Degraded | the probe of a Degraded instance succeeds, but slowly; any probe succeeds with degradation predicted, or within the hold of the last prediction |
//! | Probing | Ejected | the probe fails (with a doubled backoff) |
//!
//! Hysteresis keeps a flapping instance from oscillating: the recovery
//! threshold (2 ×) is below the degradation one (4 ×), a readmitted instance
//! is on probation for one base backoff, and backoff doubles with every
//! ejection until the instance stays healthy for the longest backoff.
//! An instance that answers again after an outage, however long, is probed
//! and readmitted within [`READMISSION_BOUND`] (5 s) while requests for its
//! keys come in: the longest backoff (2 s), one more base backoff (1 s)
//! when only non-replayable requests come, and one degraded probe interval
//! (1 s) when its first probe answers slowly.
//! At most half the instances (and at least one) are ejected at once; an
//! ejection beyond that is counted and refused, as Envoy's
//! `max_ejection_percent` does (Envoy: 10 %; ours is higher because a
//! router usually has few instances and `k = 2` candidates per key).
//!
//! A Degraded instance still serves, but its keys leave it over a 250 ms
//! drain, a growing share at a time, so the secondaries warm up instead of
//! taking every session at once. The drain runs once per episode: a probe
//! that finds the instance still degraded does not bring its keys back. Probes are real requests; a replayable
//! probe that fails is replayed, so its client does not see the failure.
//! While a Degraded instance is being probed it is still a last resort for
//! its keys.
//!
//! # Prediction
//!
//! [`HealthFailoverLayer::with_forecast`] hands the layer a forecaster (a
//! [`foresight_forecast::Forecaster`](https://docs.rs/foresight-forecast),
//! or anything that is both a
//! [`HealthSignal`](foresight_core::signal::HealthSignal) and a
//! [`HealthRecorder`](foresight_core::signal::HealthRecorder)) and a lead:
//!
//! - **Feed.** Every attempt, when it ends or from the drop guard when it
//!   is dropped first (a cancelled attempt with the time it waited), is
//!   recorded with its instance, latency, and whether the instance failed
//!   it. The `Forecaster` aggregates per instance and per step, lock-free.
//! - **Act.** While an instance is Healthy the signal is asked at most
//!   every 50 ms; when it predicts the instance to pass its threshold (say a
//!   latency SLO) within the lead, the instance moves to Degraded before it
//!   slows down, and its keys drain to their secondaries once.
//! - **Hold.** While Degraded or under probe the signal is still asked.
//!   An instance a prediction moved out is readmitted only by a probe that
//!   is fast (under 2 × the baseline of now and of when it was moved out,
//!   and under its own latency average of then),
//!   with no prediction now and none for the hold
//!   ([`HealthFailoverLayer::with_signal_hold`], 1 s; set it to at least
//!   one step of the forecaster, so that the forecaster has seen a probe's
//!   latency before the next probe can readmit). A prediction that flips on
//!   and off around its threshold faster than the hold keeps the instance
//!   out: its sessions move once, not with every flip. The probe's own
//!   latency matters because a drained instance gets no traffic but its
//!   probes: a forecaster fed by live attempts soon has nothing new to
//!   predict from, and a prediction that clears for lack of data is not a
//!   recovery. The baseline of when it was moved out matters because a busy
//!   host raises the baseline of now.
//! - **Cap.** A prediction moves an instance only while fewer instances
//!   than the ejection cap (half, at least one) are out on a prediction: a
//!   slowdown predicted for most of the fleet is the host's, and moving
//!   sessions would not avoid it.
//!
//! Nothing reads the future: the forecaster learns only from attempts that
//! have ended. The fault test `tests/predictive.rs` runs an instance whose
//! latency climbs by 1 ms every 200 ms past a 50 ms SLO, with and without
//! the forecast; the figures are in `benches/README.md`.
//!
//! # Default setup
//!
//! ```
//! use bytes::Bytes;
//! use foresight_core::key::HeaderKey;
//! use foresight_core::{InstanceSpec, Pool, RouteBody, ServedBy, Topology};
//! use foresight_failover::HealthFailoverLayer;
//! use foresight_shard::ShardLayer;
//! use http_body_util::Empty;
//! use std::convert::Infallible;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let topology = Topology::from_instances(["a", "b", "c"].map(InstanceSpec::new)).unwrap();
//! let pool = Pool::new(topology.clone(), |_instance| {
//!     service_fn(|_req: http::Request<RouteBody>| async {
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
//! use foresight_core::{BoxError, ClientKey, InstanceSpec, Pool, RouteBody, ServedBy, Topology};
//! use foresight_failover::{AttemptTimeout, HealthFailoverLayer};
//! use foresight_shard::ShardLayer;
//! use http_body_util::Empty;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let topology = Topology::from_instances(["a", "b", "c"].map(InstanceSpec::new)).unwrap();
//! let pool = Pool::new(topology.clone(), |instance| {
//!     let down = instance.id().as_str() == "a";
//!     service_fn(move |_req: http::Request<RouteBody>| async move {
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

mod budget;
mod clock;
mod config;
mod error;
mod failure;
pub mod future;
mod health;
mod layer;
mod metrics;
mod policy;
mod service;
mod stats;
mod window;

pub use config::{
    DEFAULT_BASE_EJECTION, DEFAULT_BODY_CAP, DEFAULT_CONSECUTIVE_FAILURES, DEFAULT_DEGRADE_RATIO,
    DEFAULT_DEGRADED_PROBE_INTERVAL, DEFAULT_DRAIN, DEFAULT_ERROR_RATIO, DEFAULT_ERROR_WINDOW,
    DEFAULT_EWMA_DECAY, DEFAULT_FAILURE_WINDOW, DEFAULT_IDEMPOTENCY_HEADER, DEFAULT_LATENCY_FLOOR,
    DEFAULT_MAX_EJECTED_SHARE, DEFAULT_MAX_EJECTION, DEFAULT_MIN_REQUESTS, DEFAULT_RECOVER_RATIO,
    DEFAULT_SIGNAL_HOLD, DEFAULT_SIGNAL_LEAD, DEFAULT_SLOW_SAMPLES, DEFAULT_SLOW_SPAN,
    READMISSION_BOUND,
};
pub use error::{FailoverError, NoReplay};
pub use failure::{FailureStatus, ServerErrors};
pub use foresight_core::body::Superseded;
pub use layer::HealthFailoverLayer;
pub use policy::{AttemptTimeout, Hedging};
pub use service::HealthFailover;
pub use stats::FailoverStats;

#[cfg(test)]
mod tests;
