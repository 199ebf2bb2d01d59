//! Response future of [`ShadowWrite`](crate::ShadowWrite).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Response, StatusCode};
use pin_project_lite::pin_project;
use tokio::sync::oneshot;

pin_project! {
    /// The primary's response future; when statuses are compared, it hands
    /// the primary's status to the shadow.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        status: Option<oneshot::Sender<StatusCode>>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, status: Option<oneshot::Sender<StatusCode>>) -> Self {
        Self { inner, status }
    }
}

impl<F, RB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let (Some(tx), Ok(response)) = (this.status.take(), &result) {
            let _ = tx.send(response.status());
        }
        Poll::Ready(result)
    }
}
