//! A token endpoint: login, refresh, revoke and JWKS, with its request
//! rate.
//!
//! | method and path              | body                                   | answer |
//! |------------------------------|----------------------------------------|--------|
//! | `POST /token/login`          | `{"sub","password"}`                   | a new session and its first token ([`IssuedToken`](crate::IssuedToken)) |
//! | `POST /token/refresh`        | `{"sub","sid","lifetime_secs"}`        | a new token of a live session (what [`RemoteIssuer`](crate::RemoteIssuer) calls) |
//! | `POST /token/revoke`         | `{"sid"}` or `{"jti","exp"}`           | `204` |
//! | `GET /.well-known/jwks.json` |                                        | the JWKS document |
//! | `GET /stats`                 |                                        | `{"total","last_second","peak_per_second"}`, in O(1) |
//!
//! Secure by default:
//! - **Login** needs an [`Authenticator`]: there is no anonymous default.
//!   It runs on the blocking pool, at most 4 at once. Unknown subject,
//!   wrong and missing password get the same `401 invalid_credentials`.
//! - **Refresh and revoke** need `Authorization: Bearer <client secret>`;
//!   the secret is required at build and compared in constant time
//!   (SHA-256 digests and [`subtle`]).
//! - **Sessions** end after an idle lifetime (30 min after their newest
//!   token expired) and an absolute lifetime (12 h; no token outlives it),
//!   and are swept as logins arrive; at most 100,000 at once, then
//!   `503 sessions_full` with `retry-after`.
//! - **Rate limits** ([`TokenBucket`] per key, bounded tables): login per
//!   subject and per client address, refresh per subject; `429
//!   rate_limited` with `retry-after`.
//! - **Bodies** over 8 KiB answer `413`; malformed JSON or missing fields
//!   `400 invalid_request`.
//! - Every `/token/*` answer carries `Cache-Control: no-store` and
//!   `Pragma: no-cache`.
//!
//! Every refusal is an [`AuthServerError`]: its status and a JSON body
//! `{"error","error_description"}`. `examples/auth_server.rs` serves this
//! router with Argon2-hashed passwords; tests and benches bind it to a
//! loopback port.
//!
//! ```
//! use foresight_token::server::{AuthServer, LoginAttempt, Password, RateLimit, Rejection};
//! use foresight_token::{KeyRing, LocalIssuer, SigningKey, TokioClock};
//! use std::time::Duration;
//!
//! let clock = TokioClock::shared();
//! let ring = KeyRing::new(SigningKey::generate_ed25519("k1").unwrap(), clock.clone());
//! let issuer = LocalIssuer::new(ring, "https://auth.example", "api", clock.clone());
//! // A real authenticator checks a password hash (see examples/auth_server.rs).
//! let authenticator = |attempt: &LoginAttempt| match attempt.password().map(Password::expose) {
//!     Some("correct horse battery staple") if attempt.sub() == "alice" => Ok("alice".to_owned()),
//!     _ => Err(Rejection::InvalidCredentials),
//! };
//!
//! // Default: every limit as documented on `AuthServerBuilder`.
//! let server = AuthServer::builder(issuer.clone(), clock.clone(), authenticator)
//!     .with_client_secret("a long random gateway secret")
//!     .build()
//!     .unwrap();
//! let router: axum::Router = server.router();
//!
//! // Customised: fewer sessions, shorter ones, a tighter login limit.
//! let server = AuthServer::builder(issuer.clone(), clock.clone(), authenticator)
//!     .with_client_secret("a long random gateway secret")
//!     .with_max_sessions(1_000)
//!     .with_session_absolute_lifetime(Duration::from_secs(8 * 3600))
//!     .with_login_limit(RateLimit::new(3, 1.0 / 60.0))
//!     .build()
//!     .unwrap();
//! assert_eq!(server.rates().total(), 0);
//!
//! // No client secret: refused, never silently open.
//! let open = AuthServer::builder(issuer, clock, authenticator).build();
//! assert!(open.is_err());
//! ```

mod authenticator;
mod builder;
mod error;
mod handlers;
mod login_sessions;
mod rate_limit;
mod secret;
mod stats;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use tokio::sync::Semaphore;

pub use crate::bucket::TokenBucket;
pub use authenticator::{Authenticator, LoginAttempt, Password, Rejection};
pub use builder::AuthServerBuilder;
pub use error::{AuthServerError, BuildError};
pub use rate_limit::RateLimit;
pub use stats::RateRecorder;

use crate::clock::SharedClock;
use crate::issuer::LocalIssuer;
use crate::revoke::MemoryRevocations;
use login_sessions::LoginSessions;
use rate_limit::KeyedLimiter;
use secret::ClientSecret;

struct Inner {
    issuer: LocalIssuer,
    clock: SharedClock,
    authenticator: Arc<dyn Authenticator>,
    secret: ClientSecret,
    sessions: LoginSessions,
    login_limit: KeyedLimiter,
    login_limit_per_address: KeyedLimiter,
    refresh_limit: KeyedLimiter,
    logins: Arc<Semaphore>,
    revocations: MemoryRevocations,
    rates: RateRecorder,
    login_lifetime: Duration,
    max_sessions: usize,
    max_body_bytes: usize,
}

/// The authentication server; see the [module docs](self).
///
/// Built once by [`AuthServer::builder`]; clones share the sessions, the
/// rate limits, the revocations and the counts.
#[derive(Clone)]
pub struct AuthServer {
    inner: Arc<Inner>,
}

impl fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthServer")
            .field("issuer", &self.inner.issuer)
            .field("max_sessions", &self.inner.max_sessions)
            .field("sessions", &self.inner.sessions.len())
            .finish_non_exhaustive()
    }
}

impl AuthServer {
    /// The settings of a server issuing with `issuer` and checking logins
    /// with `authenticator`.
    pub fn builder(
        issuer: LocalIssuer,
        clock: SharedClock,
        authenticator: impl Authenticator,
    ) -> AuthServerBuilder {
        AuthServerBuilder::new(issuer, clock, Arc::new(authenticator))
    }

    /// The request-rate recorder.
    pub fn rates(&self) -> RateRecorder {
        self.inner.rates.clone()
    }

    /// The server's own revocation list.
    pub fn revocations(&self) -> MemoryRevocations {
        self.inner.revocations.clone()
    }

    /// Sessions in the table (ended ones not yet swept included).
    pub fn session_count(&self) -> usize {
        self.inner.sessions.len()
    }

    /// The router.
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let tokens = Router::new()
            .route("/token/login", post(handlers::login))
            .route("/token/refresh", post(handlers::refresh))
            .route("/token/revoke", post(handlers::revoke))
            .layer(middleware::map_response(handlers::no_store));
        Router::new()
            .merge(tokens)
            .route("/.well-known/jwks.json", get(handlers::jwks))
            .route("/stats", get(handlers::stats))
            .layer(DefaultBodyLimit::max(self.inner.max_body_bytes))
            .layer(middleware::from_fn_with_state(
                self.clone(),
                handlers::count,
            ))
            .with_state(self.clone())
    }
}
