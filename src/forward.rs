//! Forwarding to an instance over HTTP with a hyper-util client: the
//! per-instance service a gateway's [`Pool`](foresight_core::Pool) is made
//! of.
//!
//! The client's connector is a type parameter, [`HttpConnector`] by default;
//! a TLS connector (hyper-rustls' `HttpsConnector`, say) with
//! [`Forward::with_scheme`]`(Scheme::HTTPS)` forwards over HTTPS.

use std::task::{Context, Poll};

use std::time::Duration;

use foresight_core::topology::Instance;
use foresight_core::{BoxError, HttpError};
use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode, Uri};
use hyper::body::{Body, Incoming};
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::TokioExecutor;
use tower::Service;

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// The instance has no socket address in the topology.
    #[error("instance {0} has no address")]
    NoAddress(String),
    /// The request URI cannot be re-aimed at the instance.
    #[error("cannot build the upstream URI")]
    Uri(#[source] http::Error),
    /// The instance could not be reached or answered with a broken response.
    #[error("instance unreachable or broke the exchange")]
    Upstream(#[source] hyper_util::client::legacy::Error),
}

impl HttpError for ForwardError {
    fn status(&self) -> StatusCode {
        match self {
            ForwardError::NoAddress(_) | ForwardError::Uri(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ForwardError::Upstream(_) => StatusCode::BAD_GATEWAY,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        matches!(self, ForwardError::Upstream(_)).then_some(Duration::from_secs(1))
    }
}

/// A hyper-util HTTP/1 client with the connection pool shared by every
/// instance service built from it.
pub fn http_client<B>() -> Client<HttpConnector, B>
where
    B: Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends requests to one instance, re-aiming the request URI at its address
/// and keeping path and query.
///
/// The upstream URI's scheme is `http` unless [`Forward::with_scheme`] says
/// otherwise; `C` is the client's connector.
#[derive(Debug)]
pub struct Forward<B, C = HttpConnector> {
    client: Client<C, B>,
    authority: Result<Authority, String>,
    scheme: Scheme,
}

impl<B, C: Clone> Clone for Forward<B, C> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            authority: self.authority.clone(),
            scheme: self.scheme.clone(),
        }
    }
}

impl<B, C> Forward<B, C> {
    /// Forwards to `instance`'s address through `client`, over `http`.
    pub fn new(client: Client<C, B>, instance: &Instance) -> Self {
        let authority = instance
            .spec()
            .addr
            .and_then(|addr| Authority::try_from(addr.to_string()).ok())
            .ok_or_else(|| instance.id().to_string());
        Self {
            client,
            authority,
            scheme: Scheme::HTTP,
        }
    }

    /// The scheme of the upstream URI: [`Scheme::HTTPS`] makes a TLS
    /// connector such as hyper-rustls' `HttpsConnector` connect over TLS
    /// (the client's plain [`HttpConnector`] refuses it).
    pub fn with_scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = scheme;
        self
    }
}

fn upstream_uri(uri: &Uri, scheme: &Scheme, authority: &Authority) -> Result<Uri, http::Error> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    Uri::builder()
        .scheme(scheme.clone())
        .authority(authority.clone())
        .path_and_query(path)
        .build()
}

/// Response future of [`Forward`].
pub type ForwardFuture = futures_util::future::Either<
    futures_util::future::MapErr<ResponseFuture, fn(hyper_util::client::legacy::Error) -> BoxError>,
    futures_util::future::Ready<Result<Response<Incoming>, BoxError>>,
>;

fn upstream(error: hyper_util::client::legacy::Error) -> BoxError {
    Box::new(ForwardError::Upstream(error))
}

impl<B, C> Service<Request<B>> for Forward<B, C>
where
    B: Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
    C: Connect + Clone + Send + Sync + 'static,
{
    type Response = Response<Incoming>;
    type Error = BoxError;
    type Future = ForwardFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The legacy client is always ready; its pool bounds connections.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        use futures_util::future::{Either, TryFutureExt, ready};
        let authority = match &self.authority {
            Ok(authority) => authority,
            Err(id) => {
                return Either::Right(ready(Err(ForwardError::NoAddress(id.clone()).into())));
            }
        };
        // The upstream leg is HTTP/1.1 whatever the client spoke to the
        // gateway; hyper's HTTP/1 client refuses other versions.
        *request.version_mut() = http::Version::HTTP_11;
        match upstream_uri(request.uri(), &self.scheme, authority) {
            Ok(uri) => *request.uri_mut() = uri,
            Err(error) => return Either::Right(ready(Err(ForwardError::Uri(error).into()))),
        }
        Either::Left(
            self.client
                .request(request)
                .map_err(upstream as fn(hyper_util::client::legacy::Error) -> BoxError),
        )
    }
}
