//! Response future of [`TokenPrefetch`](crate::TokenPrefetch).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use foresight_core::BoxError;
use http::header::{CACHE_CONTROL, PRAGMA};
use http::{HeaderName, HeaderValue, Response};
use pin_project_lite::pin_project;

use crate::error::TokenError;
use crate::layer::NEXT_TOKEN_HEADER;

pin_project! {
    /// Response future of [`TokenPrefetch`](crate::TokenPrefetch).
    #[project = StateProj]
    enum State<F> {
        Rejected { error: Option<TokenError> },
        Inner { #[pin] future: F, next_token: Option<Arc<str>> },
    }
}

pin_project! {
    /// Response future of [`TokenPrefetch`](crate::TokenPrefetch): the
    /// inner response with `x-foresight-next-token` (and `Cache-Control:
    /// no-store`, `Pragma: no-cache`) added when a pre-fetched token is
    /// waiting, or the authentication error.
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(future: F, next_token: Option<Arc<str>>) -> Self {
        Self {
            state: State::Inner { future, next_token },
        }
    }

    pub(crate) fn rejected(error: TokenError) -> Self {
        Self {
            state: State::Rejected { error: Some(error) },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<B>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Rejected { error } => Poll::Ready(Err(error.take().map_or_else(
                || "response future polled after completion".into(),
                Into::into,
            ))),
            StateProj::Inner { future, next_token } => {
                let mut response = ready!(future.poll(cx)).map_err(Into::into)?;
                if let Some(token) = next_token.take()
                    && let Ok(value) = HeaderValue::from_str(&token)
                {
                    let headers = response.headers_mut();
                    headers.insert(HeaderName::from_static(NEXT_TOKEN_HEADER), value);
                    // A response that carries a token is never cached.
                    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}
