//! [`RouteBody`]: the request body type every routing layer passes on.

use std::any::Any;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use tokio::sync::oneshot;

use super::capture::{Capture, Reader};
use super::copy::{PendingCopy, Snapshot};
use super::error::client_error;
use crate::error::BoxError;

/// The client's body, boxed once, its errors marked as the client's.
pub(super) type Boxed = UnsyncBoxBody<Bytes, BoxError>;

enum Kind {
    /// No body: nothing allocated.
    Empty,
    /// The client's body, streamed as it is.
    Streaming(Boxed),
    /// The client's body read through a capture, so that it can be sent
    /// again.
    Captured(Reader),
    /// A copy of a body read in full.
    Copy(Snapshot),
}

/// The request body that the routing layers (`ShardLayer`,
/// `HealthFailoverLayer`, `ShadowWriteLayer`) pass on, whichever of them
/// are present and in whatever order: the leaf service (a
/// [`Pool`](crate::Pool) of per-instance clients) always serves
/// `http::Request<RouteBody>`.
///
/// [`RouteBody::new`] turns any body into one, boxing a non-empty body of
/// another type once; a body that already is a `RouteBody` is returned as
/// it is, never wrapped again. A layer that needs to send the body twice
/// [captures](RouteBody::capture) it: one buffer per request, shared by
/// every layer that asks.
///
/// An error of the client's body comes out of it marked as the client's
/// (a [`ClientBodyError`](super::ClientBodyError) in its source chain), so
/// that whatever service forwards it can fail as it likes: a routing layer
/// still finds the mark and answers the client (400 / 408) without
/// blaming the instance.
pub struct RouteBody {
    kind: Kind,
}

impl fmt::Debug for RouteBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Empty => "empty",
            Kind::Streaming(_) => "streaming",
            Kind::Captured(_) => "captured",
            Kind::Copy(_) => "copy",
        };
        f.debug_tuple("RouteBody").field(&kind).finish()
    }
}

impl Default for RouteBody {
    fn default() -> Self {
        Self::empty()
    }
}

impl RouteBody {
    /// `body` as a `RouteBody`: the body itself when it already is one, an
    /// empty body (no allocation) when it has ended, else `body` boxed once.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use foresight_core::body::RouteBody;
    /// use http_body::Body;
    /// use http_body_util::Full;
    ///
    /// let body = RouteBody::new(Full::new(Bytes::from("hello")));
    /// // Converting again keeps the same body: no second wrapper.
    /// let again: RouteBody = RouteBody::new(body);
    /// assert_eq!(again.size_hint().exact(), Some(5));
    /// ```
    pub fn new<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let mut slot = Some(body);
        if let Some(route) = (&mut slot as &mut dyn Any).downcast_mut::<Option<RouteBody>>() {
            return route.take().unwrap_or_default();
        }
        match slot {
            Some(body) if !body.is_end_stream() => Self {
                kind: Kind::Streaming(body.map_err(client_error).boxed_unsync()),
            },
            _ => Self::empty(),
        }
    }

    /// An empty body.
    pub const fn empty() -> Self {
        Self { kind: Kind::Empty }
    }

    pub(super) fn captured(reader: Reader) -> Self {
        Self {
            kind: Kind::Captured(reader),
        }
    }

    pub(super) fn copy(chunks: Vec<Bytes>, trailers: Option<HeaderMap>) -> Self {
        Self {
            kind: Kind::Copy(Snapshot::new(chunks, trailers)),
        }
    }

    /// Reads this body through the request's capture from now on, and
    /// returns the capture: its frames are kept, up to `cap` bytes, while
    /// this body streams them, so that [`Capture::replay`] can send them
    /// again.
    ///
    /// A body that is already captured joins its capture (whose cap rises
    /// to `cap` if that is higher and nothing was dropped yet): every layer
    /// shares one buffer. An empty body needs none.
    pub fn capture(&mut self, cap: usize) -> Capture {
        match &mut self.kind {
            Kind::Empty => Capture::empty(),
            Kind::Captured(reader) => reader.join(cap),
            Kind::Streaming(_) | Kind::Copy(_) => {
                let (reader, capture) = match std::mem::replace(&mut self.kind, Kind::Empty) {
                    Kind::Streaming(body) => Reader::start(body, cap),
                    Kind::Copy(copy) => {
                        let (chunks, trailers) = copy.into_parts();
                        Reader::complete(chunks, trailers, cap)
                    }
                    Kind::Empty | Kind::Captured(_) => unreachable!("matched above"),
                };
                self.kind = Kind::Captured(reader);
                capture
            }
        }
    }

    /// A copy of this body, handed over once this body has been read in
    /// full within `cap` bytes: at its end, or once it has the `expected`
    /// length (a reader that knows the length stops at the last byte and
    /// never polls for the end). The copy is abandoned when the body
    /// outgrows `cap`, fails, is superseded by a replay, or is dropped
    /// first. Captures the body (see [`RouteBody::capture`]).
    pub fn copy_once_read(&mut self, cap: usize, expected: Option<u64>) -> PendingCopy {
        let (tx, rx) = oneshot::channel();
        let _capture = self.capture(cap);
        match &mut self.kind {
            Kind::Captured(reader) => reader.copy_to(tx, cap, expected),
            _ => {
                let _ = tx.send(RouteBody::empty());
            }
        }
        PendingCopy::new(rx)
    }
}

impl Body for RouteBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Streaming(body) => Pin::new(body).poll_frame(cx),
            Kind::Captured(reader) => reader.poll_frame(cx),
            Kind::Copy(copy) => Poll::Ready(copy.next_frame().map(Ok)),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Streaming(body) => body.is_end_stream(),
            Kind::Captured(reader) => reader.is_end_stream(),
            Kind::Copy(copy) => copy.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Streaming(body) => body.size_hint(),
            Kind::Captured(reader) => reader.size_hint(),
            Kind::Copy(copy) => copy.size_hint(),
        }
    }
}
