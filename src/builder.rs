//! `ServiceBuilder` methods for the Foresight layers, so that a stack reads
//! as one sentence.
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use foresight::ServiceBuilderExt;
//! use foresight::prelude::*;
//! use http_body_util::{Empty, Full};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let topology = Topology::from_instances(["a", "b", "c"].map(InstanceSpec::new)).unwrap();
//! let pool = Pool::new(topology.clone(), |instance| {
//!     let name = instance.id().to_string();
//!     service_fn(move |_req: http::Request<RouteBody>| {
//!         let name = name.clone();
//!         async move { Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(name)))) }
//!     })
//! });
//! let gateway = ServiceBuilder::new()
//!     .foresight_edge()
//!     .shard(topology.clone(), HeaderKey::new("x-account-id"))
//!     .failover(topology.clone())
//!     .shadow(topology)
//!     .service(pool);
//!
//! let request = http::Request::builder()
//!     .header("x-account-id", "42")
//!     .body(Empty::<Bytes>::new())
//!     .unwrap();
//! assert_eq!(gateway.clone().oneshot(request).await.unwrap().status(), 200);
//! // No key: the edge answers 400 instead of failing the connection.
//! let keyless = http::Request::new(Empty::<Bytes>::new());
//! assert_eq!(gateway.oneshot(keyless).await.unwrap().status(), 400);
//! # }
//! ```

#[cfg(any(feature = "shard", feature = "failover", feature = "shadow"))]
use foresight_core::Topology;
use foresight_core::edge::ErrorResponseLayer;
use tower::ServiceBuilder;
use tower::layer::util::Stack;

mod sealed {
    pub trait Sealed {}
    impl<L> Sealed for tower::ServiceBuilder<L> {}
}

/// One method per Foresight layer on [`ServiceBuilder`], each with the
/// layer's documented defaults; build the layer yourself and use `.layer(…)`
/// to customise it.
pub trait ServiceBuilderExt<L>: sealed::Sealed + Sized {
    /// [`crate::edge()`]: every layer's typed errors as HTTP responses.
    fn foresight_edge(self) -> ServiceBuilder<Stack<ErrorResponseLayer, L>>;

    /// [`ShardLayer::new`](foresight_shard::ShardLayer::new): route by the
    /// key `extractor` reads.
    #[cfg(feature = "shard")]
    fn shard<K: foresight_core::KeyExtractor>(
        self,
        topology: Topology,
        extractor: K,
    ) -> ServiceBuilder<Stack<foresight_shard::ShardLayer<K>, L>>;

    /// [`HealthFailoverLayer::new`](foresight_failover::HealthFailoverLayer::new):
    /// live targets and replays on the next candidate.
    #[cfg(feature = "failover")]
    fn failover(
        self,
        topology: Topology,
    ) -> ServiceBuilder<Stack<foresight_failover::HealthFailoverLayer, L>>;

    /// [`ShadowWriteLayer::new`](foresight_shadow::ShadowWriteLayer::new):
    /// copies to the secondary.
    #[cfg(feature = "shadow")]
    fn shadow(
        self,
        topology: Topology,
    ) -> ServiceBuilder<Stack<foresight_shadow::ShadowWriteLayer, L>>;

    /// [`TokenPrefetchLayer::builder`](foresight_token::TokenPrefetchLayer::builder)
    /// with its defaults (reactive refresh): `verifier` authenticates,
    /// `issuer` refreshes. Build the layer yourself for a load signal.
    #[cfg(feature = "token")]
    fn token_prefetch(
        self,
        verifier: foresight_token::Verifier,
        issuer: impl foresight_token::TokenIssuer,
    ) -> ServiceBuilder<Stack<foresight_token::TokenPrefetchLayer, L>>;

    /// [`SessionMirrorLayer::new`](foresight_mirror::SessionMirrorLayer::new):
    /// an instance's sessions in `store`.
    #[cfg(feature = "mirror")]
    fn session_mirror(
        self,
        store: impl foresight_store::SessionStore,
    ) -> ServiceBuilder<Stack<foresight_mirror::SessionMirrorLayer, L>>;

    /// The whole routing tier of a [`Foresight`](crate::stack::Foresight)
    /// (see [`crate::stack`]).
    #[cfg(feature = "stack")]
    fn foresight<K: foresight_core::KeyExtractor + Clone>(
        self,
        foresight: &crate::stack::Foresight<K>,
    ) -> ServiceBuilder<Stack<crate::stack::RoutingLayer<K>, L>>;
}

impl<L> ServiceBuilderExt<L> for ServiceBuilder<L> {
    fn foresight_edge(self) -> ServiceBuilder<Stack<ErrorResponseLayer, L>> {
        self.layer(crate::edge())
    }

    #[cfg(feature = "shard")]
    fn shard<K: foresight_core::KeyExtractor>(
        self,
        topology: Topology,
        extractor: K,
    ) -> ServiceBuilder<Stack<foresight_shard::ShardLayer<K>, L>> {
        self.layer(foresight_shard::ShardLayer::new(topology, extractor))
    }

    #[cfg(feature = "failover")]
    fn failover(
        self,
        topology: Topology,
    ) -> ServiceBuilder<Stack<foresight_failover::HealthFailoverLayer, L>> {
        self.layer(foresight_failover::HealthFailoverLayer::new(topology))
    }

    #[cfg(feature = "shadow")]
    fn shadow(
        self,
        topology: Topology,
    ) -> ServiceBuilder<Stack<foresight_shadow::ShadowWriteLayer, L>> {
        self.layer(foresight_shadow::ShadowWriteLayer::new(topology))
    }

    #[cfg(feature = "token")]
    fn token_prefetch(
        self,
        verifier: foresight_token::Verifier,
        issuer: impl foresight_token::TokenIssuer,
    ) -> ServiceBuilder<Stack<foresight_token::TokenPrefetchLayer, L>> {
        self.layer(foresight_token::TokenPrefetchLayer::builder(verifier, issuer).build())
    }

    #[cfg(feature = "mirror")]
    fn session_mirror(
        self,
        store: impl foresight_store::SessionStore,
    ) -> ServiceBuilder<Stack<foresight_mirror::SessionMirrorLayer, L>> {
        self.layer(foresight_mirror::SessionMirrorLayer::new(store))
    }

    #[cfg(feature = "stack")]
    fn foresight<K: foresight_core::KeyExtractor + Clone>(
        self,
        foresight: &crate::stack::Foresight<K>,
    ) -> ServiceBuilder<Stack<crate::stack::RoutingLayer<K>, L>> {
        self.layer(foresight.routing_layer())
    }
}
