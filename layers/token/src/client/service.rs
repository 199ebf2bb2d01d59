use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{Request, Response};
use tower_service::Service;

use super::future::DualTokenFuture;
use super::slots::TokenSlots;

/// Service of [`DualTokenLayer`](super::DualTokenLayer).
///
/// Request bodies must be `Clone` for the one transparent retry (use a
/// buffered body such as `Full<Bytes>` or `String`).
#[derive(Clone, Debug)]
pub struct DualToken<S> {
    inner: S,
    slots: TokenSlots,
}

impl<S> DualToken<S> {
    pub(crate) fn new(inner: S, slots: TokenSlots) -> Self {
        Self { inner, slots }
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

    /// The token slots.
    pub fn slots(&self) -> &TokenSlots {
        &self.slots
    }
}

pub(crate) fn copy_request<B: Clone>(request: &Request<B>) -> Request<B> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

impl<S, B, RB> Service<Request<B>> for DualToken<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone,
    B: Clone,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = DualTokenFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let used = self.slots.authorization();
        if let Some(value) = &used {
            request.headers_mut().insert(AUTHORIZATION, value.clone());
        }
        let retry = used.as_ref().map(|_| copy_request(&request));
        // The ready service answers this request; a clone waits for the
        // retry, if there is one.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let future = ready.call(request);
        DualTokenFuture::new(future, ready, retry, used, self.slots.clone())
    }
}
