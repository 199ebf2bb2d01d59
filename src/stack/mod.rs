//! `Foresight::builder()`: both tiers from one [`Topology`], with a default
//! for every part.
//!
//! [`Foresight::builder`] composes the routing tier (load recording → edge
//! → TokenPrefetch → Shard → HealthFailover → ShadowWrite, as one
//! [`RoutingLayer`] in front of a [`Pool`](foresight_core::Pool)) and the
//! instance tier ([`SessionMirrorLayer`] over a store). By default one
//! [`Forecaster`] is shared by the layers that read it: TokenPrefetchLayer
//! refreshes tokens ahead of the predicted request rate, HealthFailoverLayer
//! moves sessions off an instance predicted to degrade, and the routing tier
//! records every request into it. Prediction is on unless turned off with
//! [`without_prediction`](ForesightBuilder::without_prediction).
//!
//! The default setup (tokens signed by a generated key, sessions in memory,
//! the built-in forecaster):
//!
//! ```
//! use std::convert::Infallible;
//!
//! use bytes::Bytes;
//! use foresight::prelude::*;
//! use foresight::stack::Foresight;
//! use foresight::token::TokenRequest;
//! use foresight::ServiceBuilderExt;
//! use http_body_util::Full;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let topology = Topology::from_instances(["a", "b", "c"].map(InstanceSpec::new))?;
//! let foresight = Foresight::builder(topology.clone()).build()?;
//!
//! // The leaf: one service per instance (a `Forward` over HTTP in a gateway).
//! let pool = Pool::new(topology, |instance| {
//!     let name = instance.id().to_string();
//!     service_fn(move |_req| {
//!         let name = name.clone();
//!         async move { Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(name)))) }
//!     })
//! });
//! let gateway = ServiceBuilder::new()
//!     .foresight(&foresight)
//!     .service(pool);
//!
//! // Tokens come from the issuer (an authentication server in production).
//! let token = foresight.issuer().expect("tokens are on")
//!     .issue(TokenRequest::new("alice", "session-1", std::time::Duration::from_secs(300)))
//!     .await?;
//! let request = http::Request::builder()
//!     .header("authorization", format!("Bearer {}", token.token))
//!     .body(Full::new(Bytes::new()))?;
//! assert_eq!(gateway.clone().oneshot(request).await?.status(), 200);
//!
//! // Without a token the routing tier answers 401.
//! let anonymous = http::Request::new(Full::new(Bytes::new()));
//! assert_eq!(gateway.oneshot(anonymous).await?.status(), 401);
//! # Ok(())
//! # }
//! ```
//!
//! A customised setup: the routing key from a header, no tokens, no
//! prediction, a given store for the instances:
//!
//! ```
//! use foresight::prelude::*;
//! use foresight::stack::Foresight;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let topology = Topology::from_instances(["a", "b"].map(InstanceSpec::new))?;
//! let foresight = Foresight::builder(topology)
//!     .with_key(HeaderKey::new("x-account-id"))
//!     .with_missing_key(MissingKeyPolicy::Reject)
//!     .with_store(MemoryStore::new())
//!     .without_tokens()
//!     .without_prediction()
//!     .without_shadow()
//!     .build()?;
//! assert!(foresight.forecaster().is_none());
//! // Each instance puts the instance layer in front of its handlers.
//! let app: axum::Router = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "hello" }))
//!     .layer(foresight.instance_layer());
//! // The same on a ServiceBuilder, with a store of its own:
//! use foresight::ServiceBuilderExt;
//! let instance = tower::ServiceBuilder::new().session_mirror(MemoryStore::new());
//! # let _ = instance;
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use foresight_core::{KeyExtractor, Topology};
use foresight_forecast::Forecaster;
use foresight_mirror::SessionMirrorLayer;
use foresight_store::SharedStore;
use foresight_token::{LocalIssuer, TokenIssuer, TokenPrefetchLayer, Verifier};

mod builder;
mod record;
mod routing;

pub use builder::{
    DEFAULT_PREFETCH_THRESHOLD, DEFAULT_TOKEN_DRIVER_PERIOD, DEFAULT_TOKEN_ISSUER, DefaultKey,
    ForesightBuilder, ShadowSetting,
};
pub use record::{RecordLoad, RecordLoadFuture, RecordLoadLayer};
pub use routing::RoutingLayer;

/// Both tiers of a Foresight deployment, built by [`Foresight::builder`];
/// see the [module docs](self) for examples.
///
/// Cloning shares everything: topology, health, sessions, forecaster.
#[derive(Clone)]
pub struct Foresight<K> {
    topology: Topology,
    routing: RoutingLayer<K>,
    instance: SessionMirrorLayer,
    store: SharedStore,
    forecaster: Option<Forecaster>,
    tokens: Option<Tokens>,
}

/// The token parts of a [`Foresight`].
#[derive(Clone)]
struct Tokens {
    layer: TokenPrefetchLayer,
    issuer: Arc<dyn TokenIssuer>,
    local: Option<Arc<LocalIssuer>>,
    verifier: Verifier,
}

impl<K> fmt::Debug for Foresight<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Foresight")
            .field("topology", &self.topology)
            .field("store", &self.store)
            .field("forecaster", &self.forecaster)
            .field("tokens", &self.tokens.is_some())
            .finish_non_exhaustive()
    }
}

impl Foresight<DefaultKey> {
    /// Starts building both tiers over `topology`, with the defaults listed
    /// on [`ForesightBuilder`].
    pub fn builder(topology: Topology) -> ForesightBuilder<DefaultKey> {
        ForesightBuilder::new(topology)
    }
}

impl<K: KeyExtractor + Clone> Foresight<K> {
    /// The routing tier as one layer, to put in front of a
    /// [`Pool`](foresight_core::Pool).
    pub fn routing_layer(&self) -> RoutingLayer<K> {
        self.routing.clone()
    }
}

impl<K> Foresight<K> {
    /// The instance tier's layer: sessions loaded from and persisted to the
    /// store with compare-and-set.
    pub fn instance_layer(&self) -> SessionMirrorLayer {
        self.instance.clone()
    }

    /// The topology both tiers share.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The session store of the instance tier.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// The shared forecaster, unless prediction is off.
    pub fn forecaster(&self) -> Option<&Forecaster> {
        self.forecaster.as_ref()
    }

    /// TokenPrefetchLayer, unless tokens are off: its
    /// [`handle`](TokenPrefetchLayer::handle) serves the WebSocket endpoint
    /// and revokes sessions.
    pub fn token_layer(&self) -> Option<&TokenPrefetchLayer> {
        self.tokens.as_ref().map(|t| &t.layer)
    }

    /// The issuer that refreshes tokens, unless tokens are off: a login
    /// endpoint issues a session's first token with it.
    pub fn issuer(&self) -> Option<&Arc<dyn TokenIssuer>> {
        self.tokens.as_ref().map(|t| &t.issuer)
    }

    /// The default local issuer, when the builder generated it (its key ring
    /// publishes the JWKS).
    pub fn local_issuer(&self) -> Option<&LocalIssuer> {
        self.tokens.as_ref()?.local.as_deref()
    }

    /// The verifier the routing tier authenticates tokens with.
    pub fn verifier(&self) -> Option<&Verifier> {
        self.tokens.as_ref().map(|t| &t.verifier)
    }
}

/// Why [`ForesightBuilder::build`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The forecaster could not start.
    #[error("the forecaster could not start")]
    Forecast(#[from] foresight_forecast::ForecastError),
    /// No signing key could be generated for the default issuer.
    #[error("no signing key for the default token issuer")]
    Key(#[from] foresight_token::KeyError),
    /// `build` was called outside a Tokio runtime, which the background
    /// tasks need.
    #[error("build() needs a Tokio runtime for its background tasks")]
    NoRuntime(#[source] tokio::runtime::TryCurrentError),
}
