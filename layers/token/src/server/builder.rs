//! The builder of an [`AuthServer`]: every setting before the one shared
//! server exists.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::authenticator::Authenticator;
use super::error::BuildError;
use super::login_sessions::LoginSessions;
use super::rate_limit::{KeyedLimiter, RateLimit};
use super::secret::ClientSecret;
use super::stats::RateRecorder;
use super::{AuthServer, Inner};
use crate::clock::SharedClock;
use crate::issuer::LocalIssuer;
use crate::revoke::MemoryRevocations;

/// Settings of an [`AuthServer`]; [`build`](Self::build) makes the server
/// once, so no setting can be lost on a server already shared.
///
/// | setting | default |
/// |---|---|
/// | [`with_client_secret`](Self::with_client_secret) | none: required |
/// | [`with_max_sessions`](Self::with_max_sessions) | 100,000 |
/// | [`with_login_lifetime`](Self::with_login_lifetime) | 5 min |
/// | [`with_session_idle_lifetime`](Self::with_session_idle_lifetime) | 30 min after the newest token's expiry |
/// | [`with_session_absolute_lifetime`](Self::with_session_absolute_lifetime) | 12 h |
/// | [`with_login_limit`](Self::with_login_limit) (per subject) | 5, then 1 per 12 s |
/// | [`with_login_limit_per_address`](Self::with_login_limit_per_address) | 30, then 1 per s |
/// | [`with_refresh_limit`](Self::with_refresh_limit) (per subject) | 10, then 1 per 2 s |
/// | [`with_max_rate_limited_keys`](Self::with_max_rate_limited_keys) (per table) | 100,000 |
/// | [`with_max_concurrent_logins`](Self::with_max_concurrent_logins) | 4 |
/// | [`with_max_body_bytes`](Self::with_max_body_bytes) | 8 KiB |
/// | [`with_rate_history`](Self::with_rate_history) | 1 day |
#[must_use]
pub struct AuthServerBuilder {
    issuer: LocalIssuer,
    clock: SharedClock,
    authenticator: Arc<dyn Authenticator>,
    client_secret: Option<String>,
    max_sessions: usize,
    login_lifetime: Duration,
    session_idle: Duration,
    session_absolute: Duration,
    login_limit: RateLimit,
    login_limit_per_address: RateLimit,
    refresh_limit: RateLimit,
    max_rate_limited_keys: usize,
    max_concurrent_logins: usize,
    max_body_bytes: usize,
    rate_history: Duration,
}

impl fmt::Debug for AuthServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthServerBuilder")
            .field("issuer", &self.issuer)
            .field("client_secret", &self.client_secret.as_ref().map(|_| ".."))
            .field("max_sessions", &self.max_sessions)
            .field("login_lifetime", &self.login_lifetime)
            .field("session_idle", &self.session_idle)
            .field("session_absolute", &self.session_absolute)
            .field("login_limit", &self.login_limit)
            .field("login_limit_per_address", &self.login_limit_per_address)
            .field("refresh_limit", &self.refresh_limit)
            .finish_non_exhaustive()
    }
}

impl AuthServerBuilder {
    pub(super) fn new(
        issuer: LocalIssuer,
        clock: SharedClock,
        authenticator: Arc<dyn Authenticator>,
    ) -> Self {
        Self {
            issuer,
            clock,
            authenticator,
            client_secret: None,
            max_sessions: 100_000,
            login_lifetime: Duration::from_secs(300),
            session_idle: Duration::from_secs(30 * 60),
            session_absolute: Duration::from_secs(12 * 3600),
            login_limit: RateLimit::new(5, 1.0 / 12.0),
            login_limit_per_address: RateLimit::new(30, 1.0),
            refresh_limit: RateLimit::new(10, 0.5),
            max_rate_limited_keys: 100_000,
            max_concurrent_logins: 4,
            max_body_bytes: 8 * 1024,
            rate_history: Duration::from_secs(24 * 3600),
        }
    }

    /// The secret that refresh and revoke require as
    /// `Authorization: Bearer <secret>` (required; compared in constant
    /// time).
    pub fn with_client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// Most sessions at once; a login beyond answers `503 sessions_full`.
    pub fn with_max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max;
        self
    }

    /// Lifetime of the token issued at login.
    pub fn with_login_lifetime(mut self, lifetime: Duration) -> Self {
        self.login_lifetime = lifetime;
        self
    }

    /// How long a session lasts after its newest token expired without a
    /// refresh.
    pub fn with_session_idle_lifetime(mut self, idle: Duration) -> Self {
        self.session_idle = idle;
        self
    }

    /// How long a session lasts after its login, whatever its refreshes;
    /// no token outlives it.
    pub fn with_session_absolute_lifetime(mut self, absolute: Duration) -> Self {
        self.session_absolute = absolute;
        self
    }

    /// Logins per claimed subject (guessing one user's password from many
    /// addresses).
    pub fn with_login_limit(mut self, limit: RateLimit) -> Self {
        self.login_limit = limit;
        self
    }

    /// Logins per client address, when the server is served with
    /// `into_make_service_with_connect_info::<SocketAddr>()` (without it
    /// the address is unknown and only the other limits apply).
    pub fn with_login_limit_per_address(mut self, limit: RateLimit) -> Self {
        self.login_limit_per_address = limit;
        self
    }

    /// Refreshes per subject.
    pub fn with_refresh_limit(mut self, limit: RateLimit) -> Self {
        self.refresh_limit = limit;
        self
    }

    /// Most keys in each rate-limit table.
    pub fn with_max_rate_limited_keys(mut self, max: usize) -> Self {
        self.max_rate_limited_keys = max;
        self
    }

    /// Most logins checked by the authenticator at once; a login beyond
    /// answers `503 temporarily_unavailable`.
    pub fn with_max_concurrent_logins(mut self, max: usize) -> Self {
        self.max_concurrent_logins = max;
        self
    }

    /// Largest request body; a larger one answers `413`.
    pub fn with_max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// How many seconds of per-second request counts
    /// [`RateRecorder::series`](super::RateRecorder::series) keeps (memory
    /// is 16 bytes a second, allocated at build; at most 31 days are kept).
    pub fn with_rate_history(mut self, history: Duration) -> Self {
        self.rate_history = history;
        self
    }

    /// The server, or why these settings are refused.
    pub fn build(self) -> Result<AuthServer, BuildError> {
        let secret = self.client_secret.ok_or(BuildError::MissingClientSecret)?;
        if secret.is_empty() {
            return Err(BuildError::EmptyClientSecret);
        }
        for (value, name) in [
            (self.max_sessions, "max_sessions"),
            (self.max_rate_limited_keys, "max_rate_limited_keys"),
            (self.max_concurrent_logins, "max_concurrent_logins"),
            (self.max_body_bytes, "max_body_bytes"),
        ] {
            if value == 0 {
                return Err(BuildError::Zero(name));
            }
        }
        for (value, name) in [
            (self.login_lifetime, "login_lifetime"),
            (self.session_idle, "session_idle_lifetime"),
            (self.session_absolute, "session_absolute_lifetime"),
            (self.rate_history, "rate_history"),
        ] {
            if value.as_secs() == 0 {
                return Err(BuildError::Zero(name));
            }
        }
        let keys = self.max_rate_limited_keys;
        let history = self.rate_history.as_secs().min(31 * 24 * 3600) as usize;
        Ok(AuthServer {
            inner: Arc::new(Inner {
                revocations: MemoryRevocations::new(100_000, self.clock.clone()),
                rates: RateRecorder::new(history, self.clock.clone()),
                sessions: LoginSessions::new(
                    self.max_sessions,
                    self.session_idle,
                    self.session_absolute,
                ),
                login_limit: KeyedLimiter::new(self.login_limit, keys),
                login_limit_per_address: KeyedLimiter::new(self.login_limit_per_address, keys),
                refresh_limit: KeyedLimiter::new(self.refresh_limit, keys),
                logins: Arc::new(Semaphore::new(self.max_concurrent_logins)),
                secret: ClientSecret::new(secret.as_bytes()),
                authenticator: self.authenticator,
                issuer: self.issuer,
                clock: self.clock,
                login_lifetime: self.login_lifetime,
                max_sessions: self.max_sessions,
                max_body_bytes: self.max_body_bytes,
            }),
        })
    }
}
