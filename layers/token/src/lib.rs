//! Access tokens refreshed ahead of predicted load peaks.
//!
//! Token libraries refresh on a fixed margin before expiry, so when load
//! rises every client refreshes at once and the authentication server takes
//! its heaviest load exactly when the system is busiest. This crate moves
//! the refreshes ahead of the peak a [`LoadSignal`](foresight_core::signal::LoadSignal)
//! predicts, and pushes the next token to each client before it needs it.
//!
//! - [`TokenIssuer`]: [`LocalIssuer`] signs in process (EdDSA by default,
//!   ES256 or HS256) with a [`KeyRing`] that rotates by `kid` with an
//!   overlap window and publishes a JWKS document; [`RemoteIssuer`] asks an
//!   authentication server (timeout, retries with backoff, one request per
//!   session however many ask).
//! - [`Verifier`]: validation following RFC 8725 (see [`verify`]), with
//!   revocation by `jti` and by session ([`Revocations`]).
//! - [`TokenPrefetchLayer`]: authenticates `Authorization: Bearer` with the
//!   session's active or pre-fetched token, tracks sessions, refreshes ahead
//!   of predicted peaks and delivers new tokens in `x-foresight-next-token`
//!   and over the WebSocket endpoint ([`ws`]).
//! - [`client::DualTokenLayer`]: the client side, holding the active and the
//!   pre-fetched token. A browser version is in `web/foresight-token.js`.
//! - [`server`]: a token endpoint (issue, refresh, revoke, JWKS) that
//!   counts its request rate, used by `examples/auth_server.rs`.
//!
//! # Features
//!
//! Verification, keys and JWKS parsing, [`LocalIssuer`] and
//! [`TokenPrefetchLayer`] need no feature, and pull in no HTTP server,
//! HTTP client or WebSocket stack. The default features are all of these:
//!
//! - `server`: the authentication server ([`server`]) and the WebSocket
//!   delivery of pre-fetched tokens ([`ws`]), on axum.
//! - `client`: [`client::DualTokenLayer`] and its WebSocket client
//!   (tokio-tungstenite).
//! - `remote`: [`RemoteIssuer`], the JWKS fetch ([`jwks`]) and its
//!   [`transport`] policy, on a hyper client with rustls.
//!
//! And off by default: `store` (revocations shared through a
//! `foresight_store::SessionStore`) and `sim` (the simulation of the
//! `prefetch_sim` bench and the demo).
//!
//! # Default setup
//!
//! Reactive refreshes 60 s before expiry, 5-minute tokens:
//!
//! ```
//! use std::time::Duration;
//! use foresight_token::{KeyRing, LocalIssuer, SigningKey, TokenIssuer, TokenPrefetchLayer,
//!     TokenRequest, TokioClock, Verifier, NEXT_TOKEN_HEADER};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let clock = TokioClock::shared();
//! let ring = KeyRing::new(SigningKey::generate_ed25519("k1").unwrap(), clock.clone());
//! let issuer = LocalIssuer::new(ring.clone(), "https://auth.example", "api", clock.clone());
//! let verifier = Verifier::builder(ring, "https://auth.example", "api").with_clock(clock).build();
//! let layer = TokenPrefetchLayer::builder(verifier, issuer.clone()).build();
//! let app = layer.layer(service_fn(|_req: http::Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(()))
//! }));
//!
//! let token = issuer.issue(TokenRequest::new("alice", "s1", Duration::from_secs(300))).await.unwrap();
//! let request = http::Request::builder()
//!     .header("authorization", format!("Bearer {}", token.token))
//!     .body(())
//!     .unwrap();
//! let response = app.clone().oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! assert!(response.headers().get(NEXT_TOKEN_HEADER).is_none());
//!
//! // No token: a TokenError, a 401 behind ErrorResponseLayer.
//! let error = app.oneshot(http::Request::new(())).await.unwrap_err();
//! assert!(error.is::<foresight_token::TokenError>());
//! # }
//! ```
//!
//! # Customised setup
//!
//! Predictive prefetch from a load signal, spread over 20 minutes before the
//! peak, at most 50 refreshes per second:
//!
//! ```
//! use std::time::Duration;
//! use foresight_core::signal::{Forecast, LoadSignal};
//! use foresight_token::{KeyRing, LocalIssuer, SigningKey, TokenPrefetchLayer, TokioClock, Verifier};
//!
//! #[derive(Debug)]
//! struct PeakInTenMinutes;
//! impl LoadSignal for PeakInTenMinutes {
//!     fn forecast(&self, h: Duration) -> Option<Forecast> {
//!         let mean = if h >= Duration::from_secs(600) && h < Duration::from_secs(1800) { 1.0 } else { 0.2 };
//!         Some(Forecast { mean, lower: mean, upper: mean })
//!     }
//!     fn will_exceed(&self, threshold: f64, within: Duration) -> Option<Duration> {
//!         (threshold <= 1.0 && within >= Duration::from_secs(600)).then_some(Duration::from_secs(600))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let clock = TokioClock::shared();
//! let ring = KeyRing::new(SigningKey::generate_es256("k1").unwrap(), clock.clone());
//! let issuer = LocalIssuer::new(ring.clone(), "https://auth.example", "api", clock.clone());
//! let verifier = Verifier::builder(ring, "https://auth.example", "api").with_clock(clock).build();
//! let layer = TokenPrefetchLayer::builder(verifier, issuer)
//!     .with_load_signal(PeakInTenMinutes)
//!     .with_threshold(0.8)
//!     .with_horizon(Duration::from_secs(3600))
//!     .with_lead(Duration::from_secs(20 * 60))
//!     .with_max_extension(Duration::from_secs(3600))
//!     .with_max_issue_rate(50.0)
//!     .build();
//! let driver = layer.handle().spawn_driver(Duration::from_secs(1));
//! # driver.abort();
//! # }
//! ```

#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]
#![forbid(unsafe_code)]

mod bucket;
pub mod claims;
#[cfg(feature = "client")]
pub mod client;
pub mod clock;
pub mod error;
mod future;
mod handle;
pub mod issuer;
#[cfg(feature = "remote")]
pub mod jwks;
pub mod keys;
mod layer;
mod metrics;
mod onset;
mod policy;
pub mod revoke;
#[cfg(feature = "server")]
pub mod server;
mod service;
mod sessions;
#[cfg(feature = "sim")]
pub mod sim;
mod spread;
#[cfg(feature = "store")]
pub mod store;
#[cfg(feature = "remote")]
pub mod transport;
pub mod verify;
#[cfg(feature = "server")]
pub mod ws;

pub use bucket::TokenBucket;
pub use claims::Claims;
pub use clock::{Clock, ManualClock, SharedClock, TokioClock};
pub use error::{IssueError, KeyError, RevocationError, TokenError};
pub use future::ResponseFuture;
pub use handle::{Authenticated, Subscription, TokenHandle};
pub use issuer::{IssuedToken, LocalIssuer, TokenIssuer, TokenRequest};
#[cfg(feature = "remote")]
pub use issuer::{RemoteIssuer, RemoteIssuerError};
pub use keys::{KeyRing, KeySource, SigningKey, StaticKeys, VerificationKey};
pub use layer::{NEXT_TOKEN_HEADER, SESSION_HEADER, TokenPrefetchLayer, TokenPrefetchLayerBuilder};
pub use policy::{PrefetchPolicy, RefreshMode, SessionBinding};
pub use revoke::{MemoryRevocations, Revocation, Revocations};
pub use service::TokenPrefetch;
pub use sessions::Push;
pub use verify::Verifier;
