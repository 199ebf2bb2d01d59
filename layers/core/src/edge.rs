//! The edge of a stack: typed errors become HTTP responses.
//!
//! [`ErrorResponseLayer`] wraps a service whose error is a `BoxError` and
//! answers every error with a response: it walks the error's source chain
//! for an error type it was told about (every [`HttpError`]) and writes its
//! status, `retry-after`, `www-authenticate` and message. An error of no
//! known type becomes a bare `500 Internal Server Error` (its text is logged,
//! not sent: it may carry internal detail). The service's error type becomes
//! [`Infallible`], so the stack plugs straight into hyper or axum.
//!
//! ```
//! use foresight_core::edge::ErrorResponseLayer;
//! use foresight_core::{BoxError, KeyError};
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let inner = service_fn(|_req: http::Request<()>| async {
//!     Err::<http::Response<http_body_util::Empty<bytes::Bytes>>, BoxError>(
//!         KeyError::Missing { what: "header x-account-id".into() }.into(),
//!     )
//! });
//! let service = ErrorResponseLayer::new().layer(inner);
//! let response = service.oneshot(http::Request::new(())).await.unwrap();
//! assert_eq!(response.status(), 400);
//! # }
//! ```

use std::convert::Infallible;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{BoxError, ErrorResponse, HttpError};
use crate::key::KeyError;
use crate::pool::PoolError;
use crate::topology::TopologyError;

type Classifier = fn(&(dyn StdError + 'static)) -> Option<ErrorResponse>;

fn classify_as<E: HttpError>(error: &(dyn StdError + 'static)) -> Option<ErrorResponse> {
    error.downcast_ref::<E>().map(ErrorResponse::from_error)
}

/// The body of a response that passed through [`ErrorResponseLayer`]: the
/// inner body, or the error message.
pub type EdgeBody<B> = Either<B, Full<Bytes>>;

/// Maps errors to responses; see the [module docs](self).
///
/// Knows [`KeyError`] and [`PoolError`] from the start; add the error types
/// of other layers with [`classify`](Self::classify).
#[derive(Clone)]
#[must_use]
pub struct ErrorResponseLayer {
    classifiers: Arc<[Classifier]>,
}

impl fmt::Debug for ErrorResponseLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorResponseLayer")
            .field("classifiers", &self.classifiers.len())
            .finish()
    }
}

impl Default for ErrorResponseLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ErrorResponseLayer {
    /// A layer that knows the errors of `foresight-core`.
    pub fn new() -> Self {
        Self {
            classifiers: Arc::from([
                classify_as::<KeyError> as Classifier,
                classify_as::<PoolError>,
            ]),
        }
    }

    /// Also recognises errors of type `E`.
    pub fn classify<E: HttpError>(self) -> Self {
        let mut classifiers = self.classifiers.to_vec();
        classifiers.push(classify_as::<E>);
        Self {
            classifiers: classifiers.into(),
        }
    }

    /// The response the first error of a known type in `error`'s source
    /// chain asks for, or `None` when no error in the chain is known.
    pub fn lookup(&self, error: &BoxError) -> Option<ErrorResponse> {
        let mut current: Option<&(dyn StdError + 'static)> = Some(error.as_ref());
        while let Some(e) = current {
            if let Some(response) = self.classifiers.iter().find_map(|c| c(e)) {
                return Some(response);
            }
            current = e.source();
        }
        None
    }

    /// The response for `error`: [`lookup`](Self::lookup), or a bare 500
    /// for an error of no known type.
    pub fn response_for(&self, error: &BoxError) -> ErrorResponse {
        if let Some(response) = self.lookup(error) {
            return response;
        }
        tracing::error!(error = %DisplayChain(error.as_ref()), "unclassified error");
        ErrorResponse {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            retry_after: None,
            www_authenticate: None,
            message: "internal error".to_owned(),
        }
    }
}

struct DisplayChain<'a>(&'a (dyn StdError + 'static));

impl fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// Builds the HTTP response of an [`ErrorResponse`].
pub fn into_response(error: ErrorResponse) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(error.message + "\n")));
    *response.status_mut() = error.status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Some(after) = error.retry_after {
        let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
    if let Some(value) = error.www_authenticate {
        headers.insert(WWW_AUTHENTICATE, value);
    }
    response
}

impl<S> Layer<S> for ErrorResponseLayer {
    type Service = ErrorResponseService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ErrorResponseService {
            inner,
            layer: self.clone(),
            readiness_error: None,
        }
    }
}

/// Service of [`ErrorResponseLayer`].
///
/// An inner readiness error is kept, not dropped: `poll_ready` reports the
/// service ready, and the next `call` answers with that error's response
/// without touching the inner service (which is not ready and must not be
/// called). The call after that polls the inner service again.
pub struct ErrorResponseService<S> {
    inner: S,
    layer: ErrorResponseLayer,
    readiness_error: Option<BoxError>,
}

impl<S: fmt::Debug> fmt::Debug for ErrorResponseService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorResponseService")
            .field("inner", &self.inner)
            .field("readiness_error", &self.readiness_error)
            .finish_non_exhaustive()
    }
}

impl<S: Clone> Clone for ErrorResponseService<S> {
    /// A clone has not been polled ready, so it holds no readiness error.
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
            readiness_error: None,
        }
    }
}

impl<S, Req, B> Service<Req> for ErrorResponseService<S>
where
    S: Service<Req, Response = Response<B>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<EdgeBody<B>>;
    type Error = Infallible;
    type Future = ErrorResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.readiness_error.is_some() {
            return Poll::Ready(Ok(()));
        }
        // An inner service that fails readiness is not usable: keep its
        // error for the next call, which answers with it.
        if let Err(error) = ready!(self.inner.poll_ready(cx)) {
            self.readiness_error = Some(error.into());
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let state = match self.readiness_error.take() {
            Some(error) => State::NotReady { error: Some(error) },
            None => State::Called {
                inner: self.inner.call(request),
            },
        };
        ErrorResponseFuture {
            state,
            layer: self.layer.clone(),
        }
    }
}

pin_project! {
    /// Response future of [`ErrorResponseService`].
    pub struct ErrorResponseFuture<F> {
        #[pin]
        state: State<F>,
        layer: ErrorResponseLayer,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Called { #[pin] inner: F },
        NotReady { error: Option<BoxError> },
    }
}

impl<F> fmt::Debug for ErrorResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorResponseFuture")
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ErrorResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<EdgeBody<B>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let error: BoxError = match this.state.project() {
            StateProj::Called { inner } => match ready!(inner.poll(cx)) {
                Ok(response) => return Poll::Ready(Ok(response.map(Either::Left))),
                Err(error) => error.into(),
            },
            StateProj::NotReady { error } => error
                .take()
                .unwrap_or_else(|| "response future polled after completion".into()),
        };
        Poll::Ready(Ok(
            into_response(this.layer.response_for(&error)).map(Either::Right)
        ))
    }
}

impl HttpError for TopologyError {
    fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("wrapped")]
    struct Wrapper(#[source] PoolError);

    #[test]
    fn finds_known_errors_in_the_source_chain() {
        let layer = ErrorResponseLayer::new();
        let error: BoxError = Box::new(Wrapper(PoolError::UnknownTarget("a".into())));
        let response = layer.response_for(&error);
        assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
        let http = into_response(response);
        assert_eq!(http.headers()[RETRY_AFTER], "1");
    }

    #[test]
    fn unknown_errors_are_500_without_detail() {
        let layer = ErrorResponseLayer::new();
        let error: BoxError = "secret database password in message".into();
        let response = layer.response_for(&error);
        assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!response.message.contains("secret"));
    }

    #[tokio::test]
    async fn a_readiness_error_answers_the_next_call_without_calling_the_inner_service() {
        use tower::limit::ConcurrencyLimit;
        use tower::{Layer as _, ServiceExt as _};
        use tower_test::mock;

        let (inner, mut handle) = mock::pair::<http::Request<()>, Response<Full<Bytes>>>();
        let service = ErrorResponseLayer::new()
            .classify::<PoolError>()
            .layer(ConcurrencyLimit::new(inner, 1));
        let mut service = tower_test::mock::Spawn::new(service);

        handle.send_error(PoolError::UnknownTarget("a".into()));
        assert!(service.poll_ready().is_ready());
        let response = service.call(http::Request::new(())).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
        // The inner service was not called: no request reached the mock.
        assert!(handle.poll_request().is_pending());

        // The next call polls the inner service again and reaches it, with
        // the concurrency permit still available.
        handle.allow(1);
        let mut service = service.into_inner();
        let ready = service.ready().await.unwrap();
        let pending = ready.call(http::Request::new(()));
        let (_, send) = handle
            .next_request()
            .await
            .expect("the request reaches the inner service");
        send.send_response(Response::new(Full::new(Bytes::from_static(b"ok"))));
        assert_eq!(pending.await.unwrap().status(), StatusCode::OK);
    }

    #[test]
    fn registered_types_are_recognised() {
        let layer = ErrorResponseLayer::new().classify::<TopologyError>();
        let error: BoxError = Box::new(TopologyError::DuplicateId("a".into()));
        assert_eq!(
            layer.response_for(&error).message,
            "instance a is listed twice"
        );
    }
}
