use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{IssueFuture, IssuedToken, TokenIssuer, TokenRequest};
use crate::error::IssueError;
use crate::transport::{Transport, TransportError};

/// Largest accepted answer of the token endpoint.
const MAX_RESPONSE: usize = 64 * 1024;

type SharedIssue = Shared<BoxFuture<'static, Result<IssuedToken, Arc<IssueError>>>>;

struct Config {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    refresh_uri: Uri,
    client_secret: Option<String>,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
}

struct Inner {
    config: Arc<Config>,
    in_flight: Mutex<HashMap<String, (u64, SharedIssue)>>,
    max_in_flight: usize,
    generation: std::sync::atomic::AtomicU64,
}

/// Asks an authentication server's refresh endpoint for tokens, over a
/// hyper-util client: HTTPS (rustls, system roots or a configured CA), plain
/// HTTP only to loopback or after an explicit opt-in (see
/// [`Transport`]).
///
/// `POST {base}/token/refresh` with `{"sub", "sid", "lifetime_secs"}` and, if
/// configured, `Authorization: Bearer <client secret>`; the answer is an
/// [`IssuedToken`] as JSON (the endpoint of `examples/auth_server.rs`).
/// Each attempt has a timeout (2 s by default); connection failures,
/// timeouts, 429 and 5xx are retried up to 2 times with exponential backoff
/// and full jitter (from 50 ms); other 4xx answers are final. Concurrent
/// refreshes of one session share one request; at most 1,024 sessions are
/// refreshed at once, beyond that [`IssueError::Overloaded`] is returned
/// without a request. Clones share the client and the in-flight table.
#[derive(Clone)]
pub struct RemoteIssuer {
    inner: Arc<Inner>,
}

impl fmt::Debug for RemoteIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteIssuer")
            .field("refresh_uri", &self.inner.config.refresh_uri)
            .field("timeout", &self.inner.config.timeout)
            .field("retries", &self.inner.config.retries)
            .finish_non_exhaustive()
    }
}

/// Builder of a [`RemoteIssuer`].
#[must_use]
#[derive(Debug)]
pub struct RemoteIssuerBuilder {
    base: String,
    client_secret: Option<String>,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
    max_in_flight: usize,
    pool_max_idle: usize,
    transport: Transport,
}

/// Why a [`RemoteIssuer`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteIssuerError {
    /// The base is not an absolute URI.
    #[error("invalid authentication server URI")]
    Uri(#[from] http::Error),
    /// The transport policy refuses the URI, or TLS cannot be set up.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

impl RemoteIssuerBuilder {
    /// Sends `Authorization: Bearer <secret>` with every request.
    pub fn with_client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// Timeout of one attempt (default 2 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Retries after the first attempt (default 2).
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// First backoff; doubles per retry, with full jitter (default 50 ms).
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// Most sessions refreshed at once (default 1,024).
    pub fn with_max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max;
        self
    }

    /// Most idle pooled connections per host (default 32).
    pub fn with_pool_max_idle(mut self, max: usize) -> Self {
        self.pool_max_idle = max;
        self
    }

    /// TLS roots and the plaintext policy (default [`Transport::new`]:
    /// system roots, plain HTTP to loopback only).
    pub fn with_transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Builds the issuer. Fails if `base` is not an absolute URI, or is
    /// plain HTTP to a host that is not loopback without
    /// [`Transport::with_plaintext_http`].
    pub fn build(self) -> Result<RemoteIssuer, RemoteIssuerError> {
        let refresh_uri: Uri = format!("{}/token/refresh", self.base.trim_end_matches('/'))
            .parse::<Uri>()
            .map_err(http::Error::from)?;
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        let connector = self.transport.connector(&refresh_uri, tcp)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(self.pool_max_idle)
            .build(connector);
        Ok(RemoteIssuer {
            inner: Arc::new(Inner {
                config: Arc::new(Config {
                    client,
                    refresh_uri,
                    client_secret: self.client_secret,
                    timeout: self.timeout,
                    retries: self.retries,
                    backoff: self.backoff,
                }),
                in_flight: Mutex::new(HashMap::new()),
                max_in_flight: self.max_in_flight,
                generation: Default::default(),
            }),
        })
    }
}

#[derive(serde::Serialize)]
struct RefreshBody<'a> {
    sub: &'a str,
    sid: &'a str,
    lifetime_secs: u64,
}

enum Attempt {
    Retry(IssueError),
    Final(IssueError),
}

impl Config {
    async fn attempt(&self, request: &TokenRequest) -> Result<IssuedToken, Attempt> {
        let body = serde_json::to_vec(&RefreshBody {
            sub: &request.subject,
            sid: &request.session,
            lifetime_secs: request.lifetime.as_secs(),
        })
        .map_err(|e| Attempt::Final(IssueError::InvalidResponse { source: e.into() }))?;
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(self.refresh_uri.clone())
            .header(CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.client_secret {
            builder = builder.header(AUTHORIZATION, format!("Bearer {secret}"));
        }
        let http_request = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Attempt::Final(IssueError::InvalidResponse { source: e.into() }))?;
        let exchange = async {
            let response = self
                .client
                .request(http_request)
                .await
                .map_err(|e| Attempt::Retry(IssueError::Unavailable { source: e.into() }))?;
            let status = response.status();
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                return Err(Attempt::Retry(IssueError::Unavailable {
                    source: format!("status {status}").into(),
                }));
            }
            if !status.is_success() {
                return Err(Attempt::Final(IssueError::Refused { status }));
            }
            let body = Limited::new(response.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| Attempt::Retry(IssueError::Unavailable { source: e }))?
                .to_bytes();
            serde_json::from_slice::<IssuedToken>(&body)
                .map_err(|e| Attempt::Final(IssueError::InvalidResponse { source: e.into() }))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(elapsed) => Err(Attempt::Retry(IssueError::Unavailable {
                source: elapsed.into(),
            })),
        }
    }

    async fn fetch(self: Arc<Self>, request: TokenRequest) -> Result<IssuedToken, IssueError> {
        let mut attempt = 0;
        loop {
            match self.attempt(&request).await {
                Ok(token) => {
                    metrics::counter!(crate::metrics::ISSUED, "issuer" => "remote").increment(1);
                    return Ok(token);
                }
                Err(Attempt::Final(error)) => return Err(error),
                Err(Attempt::Retry(error)) if attempt >= self.retries => return Err(error),
                Err(Attempt::Retry(error)) => {
                    tracing::debug!(%error, attempt, "token refresh failed, retrying");
                    let cap = self.backoff.saturating_mul(1 << attempt.min(16));
                    let wait = cap.mul_f64(rand::random::<f64>());
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }
}

impl RemoteIssuer {
    /// A builder for the authentication server at `base` (e.g.
    /// `http://127.0.0.1:8080`).
    pub fn builder(base: impl Into<String>) -> RemoteIssuerBuilder {
        RemoteIssuerBuilder {
            base: base.into(),
            client_secret: None,
            timeout: Duration::from_secs(2),
            retries: 2,
            backoff: Duration::from_millis(50),
            max_in_flight: 1024,
            pool_max_idle: 32,
            transport: Transport::new(),
        }
    }

    /// Sessions with a refresh in flight.
    pub fn in_flight(&self) -> usize {
        self.inner
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    async fn issue_shared(&self, request: TokenRequest) -> Result<IssuedToken, IssueError> {
        let session = request.session.clone();
        let (generation, shared, leader) = {
            let mut map = self
                .inner
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some((generation, shared)) = map.get(&session) {
                (*generation, shared.clone(), false)
            } else {
                if map.len() >= self.inner.max_in_flight {
                    return Err(IssueError::Overloaded);
                }
                let generation = self
                    .inner
                    .generation
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let config = self.inner.config.clone();
                let shared = async move { config.fetch(request).await.map_err(Arc::new) }
                    .boxed()
                    .shared();
                map.insert(session.clone(), (generation, shared.clone()));
                (generation, shared, true)
            }
        };
        let result = shared.await;
        {
            let mut map = self
                .inner
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if map.get(&session).is_some_and(|(g, _)| *g == generation) {
                map.remove(&session);
            }
        }
        if !leader {
            metrics::counter!(crate::metrics::REFRESH_COALESCED).increment(1);
        }
        result.map_err(|source| match Arc::try_unwrap(source) {
            Ok(error) => error,
            Err(source) => IssueError::Coalesced { source },
        })
    }
}

impl TokenIssuer for RemoteIssuer {
    fn issue(&self, request: TokenRequest) -> IssueFuture<'_> {
        Box::pin(self.issue_shared(request))
    }
}
