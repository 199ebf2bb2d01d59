//! A copy of a body read in full, as a shadow request sends it, and the
//! handle that waits for it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Frame, SizeHint};
use tokio::sync::oneshot;

use super::RouteBody;

/// The frames of a body read in full.
#[derive(Debug)]
pub(super) struct Snapshot {
    chunks: std::vec::IntoIter<Bytes>,
    trailers: Option<HeaderMap>,
    remaining: u64,
}

impl Snapshot {
    pub(super) fn new(chunks: Vec<Bytes>, trailers: Option<HeaderMap>) -> Self {
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        Self {
            chunks: chunks.into_iter(),
            trailers,
            remaining,
        }
    }

    /// The frames not sent yet.
    pub(super) fn into_parts(self) -> (Vec<Bytes>, Option<HeaderMap>) {
        (self.chunks.collect(), self.trailers)
    }

    pub(super) fn next_frame(&mut self) -> Option<Frame<Bytes>> {
        match self.chunks.next() {
            Some(chunk) => {
                self.remaining -= chunk.len() as u64;
                Some(Frame::data(chunk))
            }
            None => self.trailers.take().map(Frame::trailers),
        }
    }

    pub(super) fn is_end_stream(&self) -> bool {
        self.chunks.len() == 0 && self.trailers.is_none()
    }

    pub(super) fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// A copy of a request's body, handed over once the attempt reading it has
/// read all of it; made by [`RouteBody::copy_once_read`].
///
/// Resolves to `None` when there will be no copy: the body outgrew the cap,
/// failed, was superseded by a replay, or was dropped before its end.
#[derive(Debug)]
#[must_use = "the copy arrives only through this future"]
pub struct PendingCopy {
    rx: oneshot::Receiver<RouteBody>,
}

impl PendingCopy {
    pub(super) fn new(rx: oneshot::Receiver<RouteBody>) -> Self {
        Self { rx }
    }
}

impl Future for PendingCopy {
    type Output = Option<RouteBody>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(Result::ok)
    }
}
