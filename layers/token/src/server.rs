//! A token endpoint: issue, refresh, revoke and JWKS, counting its request
//! rate.
//!
//! | method and path              | body                                   | answer |
//! |------------------------------|----------------------------------------|--------|
//! | `POST /token/login`          | `{"sub"}`                              | a new session and its first token ([`IssuedToken`]) |
//! | `POST /token/refresh`        | `{"sub","sid","lifetime_secs"}`        | a new token of a live session (what [`RemoteIssuer`](crate::RemoteIssuer) calls) |
//! | `POST /token/revoke`         | `{"sid"}` or `{"jti","exp"}`           | `204` |
//! | `GET /.well-known/jwks.json` |                                        | the JWKS document |
//! | `GET /stats`                 |                                        | `{"total","last_second","peak_per_second"}` |
//!
//! With a client secret configured, refresh and revoke require
//! `Authorization: Bearer <secret>`. Sessions are bounded (100,000 by
//! default; login answers 503 when full). `examples/auth_server.rs` serves
//! this router; tests and benches bind it to a loopback port.
//!
//! ```
//! use foresight_token::server::AuthServer;
//! use foresight_token::{KeyRing, LocalIssuer, SigningKey, TokioClock};
//!
//! let clock = TokioClock::shared();
//! let ring = KeyRing::new(SigningKey::generate_ed25519("k1").unwrap(), clock.clone());
//! let issuer = LocalIssuer::new(ring, "https://auth.example", "api", clock.clone());
//! // Default: no client secret, 100,000 sessions.
//! let router: axum::Router = AuthServer::new(issuer.clone(), clock.clone()).router();
//! // Customised: a client secret and 1,000 sessions.
//! let server = AuthServer::new(issuer, clock).client_secret("s3cret").max_sessions(1_000);
//! let stats = server.rates();
//! let router: axum::Router = server.router();
//! assert_eq!(stats.total(), 0);
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{HeaderMap, StatusCode};

use crate::clock::SharedClock;
use crate::handle::bearer;
use crate::issuer::{IssuedToken, LocalIssuer, TokenRequest, random_id};
use crate::revoke::{MemoryRevocations, Revocation};

/// Requests per second of the server, by the second of its clock.
///
/// Keeps the last `capacity` seconds (a bounded ring). Clones share the
/// counts.
#[derive(Clone)]
pub struct RateRecorder {
    buckets: Arc<Mutex<VecDeque<(u64, u64)>>>,
    total: Arc<AtomicU64>,
    capacity: usize,
    clock: SharedClock,
}

impl fmt::Debug for RateRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateRecorder")
            .field("total", &self.total())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl RateRecorder {
    /// A recorder of the last `capacity` seconds.
    pub fn new(capacity: usize, clock: SharedClock) -> Self {
        Self {
            buckets: Arc::default(),
            total: Arc::default(),
            capacity: capacity.max(1),
            clock,
        }
    }

    /// Counts one request now.
    pub fn record(&self) {
        let second = self.clock.unix_secs();
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        match buckets.back_mut() {
            Some((s, n)) if *s == second => *n += 1,
            _ => {
                // Out-of-order arrivals (a late response) go to their second.
                if let Some(bucket) = buckets.iter_mut().rev().find(|(s, _)| *s == second) {
                    bucket.1 += 1;
                } else {
                    buckets.push_back((second, 1));
                    if buckets.len() > self.capacity {
                        buckets.pop_front();
                    }
                }
            }
        }
    }

    /// Requests since the start.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// `(unix second, requests)` for every second with requests.
    pub fn series(&self) -> Vec<(u64, u64)> {
        let mut series: Vec<_> = self
            .buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        series.sort_unstable();
        series
    }

    /// The busiest second kept.
    pub fn peak(&self) -> u64 {
        self.series().iter().map(|(_, n)| *n).max().unwrap_or(0)
    }

    /// Requests in the last complete second.
    pub fn last_second(&self) -> u64 {
        let previous = self.clock.unix_secs().saturating_sub(1);
        self.series()
            .iter()
            .find(|(s, _)| *s == previous)
            .map_or(0, |(_, n)| *n)
    }
}

struct Inner {
    issuer: LocalIssuer,
    clock: SharedClock,
    secret: Option<String>,
    sessions: Mutex<HashMap<String, String>>,
    max_sessions: usize,
    revocations: MemoryRevocations,
    rates: RateRecorder,
    login_lifetime: Duration,
}

/// The authentication server; see the [module docs](self).
#[derive(Clone)]
#[must_use]
pub struct AuthServer {
    inner: Arc<Inner>,
}

impl fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthServer")
            .field("issuer", &self.inner.issuer)
            .field("max_sessions", &self.inner.max_sessions)
            .finish_non_exhaustive()
    }
}

impl AuthServer {
    /// A server issuing with `issuer`.
    pub fn new(issuer: LocalIssuer, clock: SharedClock) -> Self {
        Self {
            inner: Arc::new(Inner {
                revocations: MemoryRevocations::new(100_000, clock.clone()),
                rates: RateRecorder::new(7 * 24 * 3600, clock.clone()),
                issuer,
                clock,
                secret: None,
                sessions: Mutex::default(),
                max_sessions: 100_000,
                login_lifetime: Duration::from_secs(300),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            f(inner);
        }
        self
    }

    /// Requires `Authorization: Bearer <secret>` on refresh and revoke.
    pub fn client_secret(self, secret: impl Into<String>) -> Self {
        let secret = secret.into();
        self.edit(|i| i.secret = Some(secret))
    }

    /// Most live sessions.
    pub fn max_sessions(self, max: usize) -> Self {
        self.edit(|i| i.max_sessions = max)
    }

    /// Lifetime of the tokens issued at login (default 5 min).
    pub fn login_lifetime(self, lifetime: Duration) -> Self {
        self.edit(|i| i.login_lifetime = lifetime)
    }

    /// The request-rate recorder.
    pub fn rates(&self) -> RateRecorder {
        self.inner.rates.clone()
    }

    /// The server's own revocation list.
    pub fn revocations(&self) -> MemoryRevocations {
        self.inner.revocations.clone()
    }

    /// The router.
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        Router::new()
            .route("/token/login", post(login))
            .route("/token/refresh", post(refresh))
            .route("/token/revoke", post(revoke))
            .route("/.well-known/jwks.json", get(jwks))
            .route("/stats", get(stats))
            .layer(middleware::from_fn_with_state(self.clone(), count))
            .with_state(self.clone())
    }

    fn authorised(&self, headers: &HeaderMap) -> bool {
        let Some(secret) = &self.inner.secret else {
            return true;
        };
        headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| bearer(v.as_bytes()))
            .is_some_and(|t| t == secret)
    }
}

async fn count(State(server): State<AuthServer>, request: Request, next: Next) -> Response {
    if request.uri().path() != "/stats" {
        server.inner.rates.record();
    }
    next.run(request).await
}

#[derive(serde::Deserialize)]
struct LoginBody {
    sub: String,
}

async fn login(State(server): State<AuthServer>, Json(body): Json<LoginBody>) -> Response {
    let sid = random_id();
    {
        let mut sessions = server
            .inner
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if sessions.len() >= server.inner.max_sessions {
            return (StatusCode::SERVICE_UNAVAILABLE, "too many sessions\n").into_response();
        }
        sessions.insert(sid.clone(), body.sub.clone());
    }
    let request = TokenRequest::new(body.sub, sid, server.inner.login_lifetime);
    match server.inner.issuer.sign(&request) {
        Ok(token) => Json(token).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct RefreshBody {
    sub: String,
    sid: String,
    lifetime_secs: u64,
}

async fn refresh(
    State(server): State<AuthServer>,
    headers: HeaderMap,
    Json(body): Json<RefreshBody>,
) -> Response {
    if !server.authorised(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let live = server
        .inner
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&body.sid)
        .is_some_and(|sub| *sub == body.sub);
    if !live || crate::revoke::Revocations::is_session_revoked(&server.inner.revocations, &body.sid)
    {
        return (StatusCode::FORBIDDEN, "unknown or revoked session\n").into_response();
    }
    let request = TokenRequest::new(body.sub, body.sid, Duration::from_secs(body.lifetime_secs));
    match server.inner.issuer.sign(&request) {
        Ok(token) => Json::<IssuedToken>(token).into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct RevokeBody {
    sid: Option<String>,
    jti: Option<String>,
    exp: Option<u64>,
}

async fn revoke(
    State(server): State<AuthServer>,
    headers: HeaderMap,
    Json(body): Json<RevokeBody>,
) -> Response {
    if !server.authorised(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let now = server.inner.clock.unix_secs();
    let result = match (body.sid, body.jti) {
        (Some(sid), _) => {
            server
                .inner
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&sid);
            server
                .inner
                .revocations
                .insert(Revocation::Session(sid), now + 12 * 3600)
        }
        (None, Some(jti)) => server
            .inner
            .revocations
            .insert(Revocation::Token(jti), body.exp.unwrap_or(now + 12 * 3600)),
        (None, None) => return (StatusCode::BAD_REQUEST, "sid or jti required\n").into_response(),
    };
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response(),
    }
}

async fn jwks(State(server): State<AuthServer>) -> Response {
    Json(server.inner.issuer.key_ring().jwks()).into_response()
}

async fn stats(State(server): State<AuthServer>) -> Response {
    let rates = &server.inner.rates;
    Json(serde_json::json!({
        "total": rates.total(),
        "last_second": rates.last_second(),
        "peak_per_second": rates.peak(),
    }))
    .into_response()
}
