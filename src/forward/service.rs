use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use foresight_core::BoxError;
use foresight_core::topology::Instance;
use http::header::HOST;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Method, Request, Response, Uri, Version};
use hyper::body::Body;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::PollSemaphore;
use tower::Service;

use super::body::ResponseBody;
use super::error::ForwardError;
use super::pool::Conns;
use super::upstream::Upstream;

/// Sends requests to one instance over its own pool of HTTP/1.1
/// connections, keeping the request's path and query.
///
/// `poll_ready` reserves one of the instance's
/// [`max_connections`](Upstream::with_max_connections) slots (pending
/// while all are taken), `call` uses it: an idle connection, or a new one.
/// The slot is released when the response body has been read to its end
/// or dropped, or when the response future is dropped. Clones share the
/// pool; a clone holds no slot.
///
/// The upstream leg is HTTP/1.1 whatever the client spoke; a request with
/// no `Host` (an HTTP/2 request) gets the instance's address as its host.
pub struct Forward<B: Send + 'static, C = HttpConnector> {
    target: Result<Target<C, B>, Arc<str>>,
    permit: Option<OwnedSemaphorePermit>,
}

struct Target<C, B> {
    conns: Arc<Conns<C, B>>,
    permits: PollSemaphore,
}

impl<B: Send + 'static, C> Clone for Forward<B, C> {
    fn clone(&self) -> Self {
        Self {
            target: match &self.target {
                Ok(target) => Ok(Target {
                    conns: target.conns.clone(),
                    permits: target.permits.clone(),
                }),
                Err(id) => Err(id.clone()),
            },
            permit: None,
        }
    }
}

impl<B: Send + 'static, C> fmt::Debug for Forward<B, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Forward");
        match &self.target {
            Ok(target) => debug.field("target", &target.conns.host),
            Err(id) => debug.field("no_address", id),
        };
        debug.field("reserved", &self.permit.is_some()).finish()
    }
}

impl<B: Send + 'static, C: Clone> Forward<B, C> {
    /// Forwards to `instance`'s address with the connector and limits of
    /// `upstream`, over a pool of connections of its own.
    pub fn new(upstream: &Upstream<C>, instance: &Instance) -> Self {
        let target = match instance.spec().addr {
            Some(addr) => {
                let authority = Authority::try_from(addr.to_string())
                    .expect("a socket address is a valid authority");
                let uri = Uri::builder()
                    .scheme(upstream.scheme.clone())
                    .authority(authority.clone())
                    .path_and_query("/")
                    .build()
                    .expect("scheme, authority and path make a URI");
                let default_port = if upstream.scheme == Scheme::HTTPS {
                    443
                } else {
                    80
                };
                let host = if addr.port() == default_port {
                    authority.host()
                } else {
                    authority.as_str()
                };
                let host = HeaderValue::from_str(host).expect("an authority is a valid header");
                let conns = Arc::new(Conns::new(
                    upstream.connector.clone(),
                    uri,
                    host,
                    upstream.max_connections,
                    upstream.idle_timeout,
                ));
                let permits = PollSemaphore::new(conns.permits.clone());
                Ok(Target { conns, permits })
            }
            None => Err(instance.id().as_str().into()),
        };
        Self {
            target,
            permit: None,
        }
    }
}

#[cfg(test)]
impl<B: Send + 'static, C> Forward<B, C> {
    pub(super) fn conns(&self) -> &Conns<C, B> {
        &self
            .target
            .as_ref()
            .expect("an instance with an address")
            .conns
    }
}

/// Response future of [`Forward`].
pub type ForwardFuture<B> =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, BoxError>> + Send>>;

impl<B, C> Service<Request<B>> for Forward<B, C>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    C: Service<Uri, Error: Into<BoxError>, Future: Send> + Clone + Send + Sync + 'static,
    C::Response: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    type Response = Response<ResponseBody<B>>;
    type Error = BoxError;
    type Future = ForwardFuture<B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.permit.is_some() {
            return Poll::Ready(Ok(()));
        }
        // Without an address `call` fails at once: nothing to reserve.
        if let Ok(target) = &mut self.target {
            let permit = ready!(target.permits.poll_acquire(cx));
            self.permit = Some(permit.expect("the semaphore is never closed"));
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let conns = match &self.target {
            Ok(target) => target.conns.clone(),
            Err(id) => {
                let error = ForwardError::NoAddress(id.to_string()).into();
                return Box::pin(std::future::ready(Err(error)));
            }
        };
        let permit = self
            .permit
            .take()
            .expect("poll_ready reserves a connection before call");
        *request.version_mut() = Version::HTTP_11;
        if request.method() == Method::CONNECT {
            *request.uri_mut() = Uri::from(conns.authority());
        } else if request.uri().scheme().is_some() || request.uri().authority().is_some() {
            *request.uri_mut() = origin_form(request.uri());
        }
        if !request.headers().contains_key(HOST) {
            request.headers_mut().insert(HOST, conns.host.clone());
        }
        Box::pin(conns.send(request, permit))
    }
}

/// `uri`'s path and query alone, as a request line to an origin server
/// carries it.
fn origin_form(uri: &Uri) -> Uri {
    match uri.path_and_query() {
        Some(path) if path.as_str() != "/" => Uri::from(path.clone()),
        _ => Uri::from_static("/"),
    }
}
