use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::pool::Lease;

/// The body of a response from an instance: hyper's body, and the
/// connection it arrives on, which goes back to the instance's pool once
/// the body has been read to its end. Dropped before its end, the body
/// takes the connection with it (hyper closes it): nothing half-read is
/// ever reused.
pub struct ResponseBody<B: Send + 'static> {
    inner: Incoming,
    lease: Option<Lease<B>>,
}

impl<B: Send + 'static> ResponseBody<B> {
    pub(super) fn new(inner: Incoming, lease: Lease<B>) -> Self {
        let mut body = Self {
            inner,
            lease: Some(lease),
        };
        if body.inner.is_end_stream() {
            // No body (a 204, an answer to HEAD, `content-length: 0`).
            body.end(true);
        }
        body
    }

    fn end(&mut self, reusable: bool) {
        if let Some(lease) = self.lease.take() {
            lease.end(reusable);
        }
    }
}

impl<B: Send + 'static> Body for ResponseBody<B> {
    type Data = <Incoming as Body>::Data;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            None => this.end(true),
            Some(Err(_)) => this.end(false),
            // A body of known length ends with its last byte: the reader
            // may not poll again.
            Some(Ok(_)) if this.inner.is_end_stream() => this.end(true),
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: Send + 'static> Drop for ResponseBody<B> {
    fn drop(&mut self) {
        let complete = self.inner.is_end_stream();
        self.end(complete);
    }
}

impl<B: Send + 'static> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("inner", &self.inner)
            .field("pooled", &self.lease.is_some())
            .finish()
    }
}
