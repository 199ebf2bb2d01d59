//! [`TokenPrefetch`], the service of [`TokenPrefetchLayer`](crate::TokenPrefetchLayer).

use std::sync::Arc;
use std::task::{Context, Poll};

use foresight_core::BoxError;
use http::{Request, Response};
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::handle::{Authenticated, TokenHandle};

/// Authenticates each request, tracks its session and delivers pre-fetched
/// tokens in `x-foresight-next-token`; see the [crate docs](crate).
///
/// A request without a valid token fails with a
/// [`TokenError`](crate::TokenError) (a 401 behind
/// [`ErrorResponseLayer`](foresight_core::edge::ErrorResponseLayer)) and
/// never reaches the inner service. Readiness is the inner service's.
#[derive(Clone, Debug)]
pub struct TokenPrefetch<S> {
    inner: S,
    handle: TokenHandle,
}

impl<S> TokenPrefetch<S> {
    pub(crate) fn new(inner: S, handle: TokenHandle) -> Self {
        Self { inner, handle }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The shared handle.
    pub fn handle(&self) -> &TokenHandle {
        &self.handle
    }
}

impl<S, B, RB> Service<Request<B>> for TokenPrefetch<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<RB>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        match self.handle.authenticate(request.headers()) {
            Err(error) => {
                metrics::counter!(crate::metrics::REJECTED).increment(1);
                ResponseFuture::rejected(error)
            }
            Ok(claims) => {
                let observation = self.handle.observe(&claims);
                if observation.reuse {
                    metrics::counter!(crate::metrics::REJECTED).increment(1);
                    return ResponseFuture::rejected(crate::TokenError::TokenReuse);
                }
                request
                    .extensions_mut()
                    .insert(Authenticated(Arc::new(claims)));
                ResponseFuture::new(self.inner.call(request), observation.next_token)
            }
        }
    }
}
