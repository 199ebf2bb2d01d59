//! The response future of [`SessionMirror`](crate::SessionMirror).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body_util::{Either, Full};

/// Body of a response through the session layer: the inner service's, or
/// the layer's own error / shadow answer.
pub type MirrorBody<B> = Either<B, Full<Bytes>>;

type Boxed<B, E> = Pin<Box<dyn Future<Output = Result<Response<MirrorBody<B>>, E>> + Send>>;

/// Response future of [`SessionMirror`](crate::SessionMirror). Boxed: it
/// awaits the store after the inner service.
pub struct ResponseFuture<B, E> {
    inner: Boxed<B, E>,
}

impl<B, E> ResponseFuture<B, E> {
    pub(crate) fn new(
        future: impl Future<Output = Result<Response<MirrorBody<B>>, E>> + Send + 'static,
    ) -> Self {
        Self {
            inner: Box::pin(future),
        }
    }
}

impl<B, E> Future for ResponseFuture<B, E> {
    type Output = Result<Response<MirrorBody<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<B, E> fmt::Debug for ResponseFuture<B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
