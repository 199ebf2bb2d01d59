//! The primary's body, copied for the shadow as it streams by.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use foresight_core::BoxError;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::sync::oneshot;

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Passthrough { #[pin] body: B },
        Tee {
            #[pin]
            body: B,
            chunks: Vec<Bytes>,
            len: usize,
            cap: usize,
            // The length the request declared, when it did.
            expected: Option<u64>,
            tx: Option<oneshot::Sender<Vec<Bytes>>>,
        },
        Copy { chunks: std::vec::IntoIter<Bytes> },
    }
}

pin_project! {
    /// The request body [`ShadowWrite`](crate::ShadowWrite) passes on: the
    /// client's body (copied for a shadow while the primary reads it), or
    /// the copy sent to the secondary.
    pub struct ShadowBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

impl<B> fmt::Debug for ShadowBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Passthrough { .. } => "passthrough",
            Kind::Tee { .. } => "tee",
            Kind::Copy { .. } => "copy",
        };
        f.debug_tuple("ShadowBody").field(&kind).finish()
    }
}

impl<B> ShadowBody<B> {
    /// The body as it is.
    pub fn passthrough(body: B) -> Self {
        Self {
            kind: Kind::Passthrough { body },
        }
    }

    /// Streams `body` and hands its frames to `tx` once it ended within
    /// `cap` bytes: at its end, or once it has the `expected` length. Above
    /// the cap, or if the body fails or is dropped early, `tx` is dropped
    /// and the shadow is abandoned.
    pub(crate) fn tee(
        body: B,
        cap: usize,
        expected: Option<u64>,
        tx: oneshot::Sender<Vec<Bytes>>,
    ) -> Self {
        Self {
            kind: Kind::Tee {
                body,
                chunks: Vec::new(),
                len: 0,
                cap,
                expected,
                tx: Some(tx),
            },
        }
    }

    /// The copy of a body, for the shadow request.
    pub(crate) fn copy(chunks: Vec<Bytes>) -> Self {
        Self {
            kind: Kind::Copy {
                chunks: chunks.into_iter(),
            },
        }
    }
}

impl<B> Body for ShadowBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            KindProj::Passthrough { body } => body.poll_frame(cx).map_err(Into::into),
            KindProj::Copy { chunks } => Poll::Ready(chunks.next().map(|c| Ok(Frame::data(c)))),
            KindProj::Tee {
                mut body,
                chunks,
                len,
                cap,
                expected,
                tx,
            } => match ready!(body.as_mut().poll_frame(cx)) {
                None => {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(std::mem::take(chunks));
                    }
                    Poll::Ready(None)
                }
                Some(Err(error)) => {
                    tx.take();
                    Poll::Ready(Some(Err(error.into())))
                }
                Some(Ok(frame)) => {
                    if let (Some(_), Some(data)) = (tx.as_ref(), frame.data_ref()) {
                        *len += data.len();
                        if *len <= *cap {
                            chunks.push(data.clone());
                        } else {
                            tx.take();
                            *chunks = Vec::new();
                        }
                    }
                    // A reader that knows the length (hyper's client with a
                    // content-length) stops at the last byte and never
                    // polls for the end.
                    if (*expected == Some(*len as u64) || body.is_end_stream())
                        && let Some(tx) = tx.take()
                    {
                        let _ = tx.send(std::mem::take(chunks));
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Passthrough { body } | Kind::Tee { body, .. } => body.is_end_stream(),
            Kind::Copy { chunks } => chunks.len() == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Passthrough { body } | Kind::Tee { body, .. } => body.size_hint(),
            Kind::Copy { chunks } => {
                SizeHint::with_exact(chunks.as_slice().iter().map(|c| c.len() as u64).sum())
            }
        }
    }
}
