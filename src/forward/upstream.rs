use std::fmt;
use std::time::Duration;

use http::uri::Scheme;
use hyper_util::client::legacy::connect::HttpConnector;

/// Most connections open to one instance at once, by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// How long an unused connection stays open, by default (hyper-util's
/// client keeps the same).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// How [`Forward`](super::Forward) services reach their instances: a
/// connector, the scheme of the instances' URIs, and the limits of each
/// instance's connection pool.
///
/// Every [`Forward::new`](super::Forward::new) builds the pool of one
/// instance from these settings; the pools share nothing but the
/// connector's clones.
///
/// ```
/// use std::time::Duration;
/// use foresight::forward::Upstream;
///
/// // Plain HTTP, the default limits.
/// let upstream = Upstream::http();
/// assert_eq!(upstream.max_connections(), 1024);
///
/// // At most 64 connections per instance, idle ones closed after 30 s.
/// let upstream = Upstream::http()
///     .with_max_connections(64)
///     .with_idle_timeout(Duration::from_secs(30));
/// assert_eq!(upstream.max_connections(), 64);
/// ```
#[derive(Clone)]
#[must_use]
pub struct Upstream<C = HttpConnector> {
    pub(super) connector: C,
    pub(super) scheme: Scheme,
    pub(super) max_connections: usize,
    pub(super) idle_timeout: Duration,
}

impl<C> fmt::Debug for Upstream<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("scheme", &self.scheme)
            .field("max_connections", &self.max_connections)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl Upstream<HttpConnector> {
    /// Plain HTTP over TCP (`TCP_NODELAY` set, no connect timeout), with
    /// [`DEFAULT_MAX_CONNECTIONS`] and [`DEFAULT_IDLE_TIMEOUT`].
    pub fn http() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self::new(connector)
    }
}

impl<C> Upstream<C> {
    /// Connections made by `connector` (a `tower::Service<Uri>` such as
    /// hyper-util's [`HttpConnector`] or hyper-rustls' `HttpsConnector`),
    /// over `http`, with [`DEFAULT_MAX_CONNECTIONS`] and
    /// [`DEFAULT_IDLE_TIMEOUT`].
    pub fn new(connector: C) -> Self {
        Self {
            connector,
            scheme: Scheme::HTTP,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }

    /// The scheme of the instances' URIs, which the connector is called
    /// with: [`Scheme::HTTPS`] makes a TLS connector connect over TLS (the
    /// plain [`HttpConnector`] refuses it).
    pub fn with_scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = scheme;
        self
    }

    /// Most connections open to one instance at once, in use or idle (at
    /// least 1). A request to an instance at its limit waits in
    /// `poll_ready` for one of them to come back.
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// How long a connection may stay unused before it is closed.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Most connections open to one instance at once.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// How long a connection may stay unused.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }
}
