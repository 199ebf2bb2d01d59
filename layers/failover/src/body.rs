//! A request body that can be sent again.
//!
//! The first attempt streams the client's body as it arrives; every data
//! frame is also kept, up to a cap, so that a replay can send the same bytes
//! to another instance. A replay first yields the kept frames, then goes on
//! reading the client's body where the previous attempt stopped, so a
//! primary that failed before reading the whole body loses nothing. Above the
//! cap the kept frames are freed and no replay is possible.
//!
//! An error of the client's body reaches the instance's service marked as
//! the client's (a `ClientBodyError` in its source chain), so that an
//! aborted upload or bad chunking is answered to the client (400 / 408)
//! and never counted against the instance; see
//! [`FailoverError::ClientBodyAborted`](crate::FailoverError::ClientBodyAborted).
//!
//! Only one attempt reads at a time: starting a replay supersedes the
//! previous reader, whose next poll fails (its connection is being abandoned
//! anyway). The shared state sits behind a mutex that is only ever taken by
//! that one reader and by the layer when it starts a replay, so it is never
//! contended; requests without a body (most `GET`s) skip it entirely.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use foresight_core::BoxError;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::error::ClientBodyError;

/// The body of a superseded attempt was polled after a replay started.
#[derive(Debug, thiserror::Error)]
#[error("request body superseded by a replay")]
pub struct Superseded;

pub(crate) struct Buffered<B> {
    body: Option<Pin<Box<B>>>,
    chunks: Vec<Bytes>,
    len: usize,
    cap: usize,
    capped: bool,
    ended: bool,
    trailers: Option<HeaderMap>,
    active: u32,
    exact: Option<u64>,
    /// The last read of the client's body found nothing yet: the instance
    /// is waiting on the client.
    waiting: bool,
}

type SharedBody<B> = Arc<Mutex<Buffered<B>>>;

fn lock<B>(shared: &SharedBody<B>) -> MutexGuard<'_, Buffered<B>> {
    // Every mutation leaves the state consistent, so a poisoned lock (a
    // panicking body) is safe to reuse.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

struct Reader<B> {
    shared: SharedBody<B>,
    generation: u32,
    pos: usize,
    read: u64,
    trailers_sent: bool,
    exact: Option<u64>,
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Empty,
        Passthrough { #[pin] body: B },
        Shared { reader: Reader<B> },
    }
}

pin_project! {
    /// The request body [`HealthFailover`](crate::HealthFailover) passes on:
    /// the client's body, read through a replay buffer when the request may
    /// be replayed.
    ///
    /// An error of the client's body comes out of it marked as the
    /// client's, so that whatever service forwards it can fail as it likes:
    /// the layer still finds the mark in the error's source chain, answers
    /// [`FailoverError::ClientBodyAborted`](crate::FailoverError::ClientBodyAborted)
    /// (400), `ClientBodyMalformed` (400) or `ClientBodyTimedOut` (408), and
    /// counts nothing against the instance.
    pub struct ReplayBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

impl<B> fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Empty => "empty",
            Kind::Passthrough { .. } => "passthrough",
            Kind::Shared { .. } => "replayable",
        };
        f.debug_tuple("ReplayBody").field(&kind).finish()
    }
}

impl<B> ReplayBody<B> {
    /// The body as it is, with no replay buffer.
    pub fn passthrough(body: B) -> Self {
        Self {
            kind: Kind::Passthrough { body },
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self { kind: Kind::Empty }
    }
}

/// What the response future keeps to build the body of a replay.
pub(crate) enum ReplaySource<B> {
    Empty,
    Shared(SharedBody<B>),
}

impl<B> ReplaySource<B> {
    /// Whether the attempt reading the body is waiting for the client to
    /// send more of it: a slow attempt is then the client's doing, not the
    /// instance's.
    pub(crate) fn awaiting_client(&self) -> bool {
        match self {
            ReplaySource::Empty => false,
            ReplaySource::Shared(shared) => {
                let state = lock(shared);
                state.waiting && state.body.is_some()
            }
        }
    }
}

impl<B: Body> ReplaySource<B> {
    /// The first attempt's body and the source of its replays. An empty body
    /// needs no buffer.
    pub(crate) fn new(body: B, cap: usize) -> (ReplayBody<B>, Self) {
        if body.is_end_stream() {
            return (ReplayBody::empty(), ReplaySource::Empty);
        }
        let exact = body.size_hint().exact();
        let shared = Arc::new(Mutex::new(Buffered {
            body: Some(Box::pin(body)),
            chunks: Vec::new(),
            len: 0,
            cap,
            capped: exact.is_some_and(|n| n > cap as u64),
            ended: false,
            trailers: None,
            active: 0,
            exact,
            waiting: false,
        }));
        let first = ReplayBody {
            kind: Kind::Shared {
                reader: Reader {
                    shared: shared.clone(),
                    generation: 0,
                    pos: 0,
                    read: 0,
                    trailers_sent: false,
                    exact,
                },
            },
        };
        (first, ReplaySource::Shared(shared))
    }

    /// Whether a replay is still possible (the body stayed within the cap).
    pub(crate) fn replayable(&self) -> bool {
        match self {
            ReplaySource::Empty => true,
            ReplaySource::Shared(shared) => !lock(shared).capped,
        }
    }

    /// Whether the whole body is held (or there is none), so that a second
    /// attempt can send it while the first one goes on: a hedge.
    pub(crate) fn complete(&self) -> bool {
        match self {
            ReplaySource::Empty => true,
            ReplaySource::Shared(shared) => {
                let state = lock(shared);
                state.ended && !state.capped
            }
        }
    }

    /// A body for the next attempt, superseding the previous one; `None`
    /// when the body outgrew the cap.
    pub(crate) fn replay(&self) -> Option<ReplayBody<B>> {
        match self {
            ReplaySource::Empty => Some(ReplayBody::empty()),
            ReplaySource::Shared(shared) => {
                let mut state = lock(shared);
                if state.capped {
                    return None;
                }
                state.active += 1;
                Some(ReplayBody {
                    kind: Kind::Shared {
                        reader: Reader {
                            shared: shared.clone(),
                            generation: state.active,
                            pos: 0,
                            read: 0,
                            trailers_sent: false,
                            exact: state.exact,
                        },
                    },
                })
            }
        }
    }
}

/// Marks an error of the client's body as the client's, so that whoever
/// classifies the attempt's outcome finds it in the source chain.
fn client_error<E: Into<BoxError>>(error: E) -> BoxError {
    Box::new(ClientBodyError::new(error.into()))
}

impl<B> Reader<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut state = lock(&self.shared);
        if state.ended && self.trailers_sent && self.pos >= state.chunks.len() {
            // A reader that has sent everything has nothing to supersede
            // (a hedge may have started beside it).
            return Poll::Ready(None);
        }
        if self.generation != state.active {
            return Poll::Ready(Some(Err(Superseded.into())));
        }
        if let Some(chunk) = state.chunks.get(self.pos) {
            let chunk = chunk.clone();
            self.pos += 1;
            self.read += chunk.len() as u64;
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if state.ended {
            if !self.trailers_sent {
                self.trailers_sent = true;
                if let Some(trailers) = state.trailers.clone() {
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
            }
            return Poll::Ready(None);
        }
        let Some(body) = state.body.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = body.as_mut().poll_frame(cx);
        state.waiting = frame.is_pending();
        match frame {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                state.ended = true;
                state.body = None;
                self.trailers_sent = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                // A body that failed cannot be sent again.
                state.capped = true;
                state.chunks = Vec::new();
                state.body = None;
                Poll::Ready(Some(Err(client_error(error))))
            }
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    state.len += data.len();
                    if !state.capped && state.len <= state.cap {
                        state.chunks.push(data.clone());
                        self.pos = state.chunks.len();
                    } else if !state.capped {
                        state.capped = true;
                        state.chunks = Vec::new();
                    }
                    self.read += data.len() as u64;
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => {
                        state.trailers = Some(trailers.clone());
                        state.ended = true;
                        state.body = None;
                        self.trailers_sent = true;
                        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                    }
                    // Frames of unknown kinds are not replayed.
                    Err(_) => {
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                },
            },
        }
    }
}

impl<B> Body for ReplayBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Empty => Poll::Ready(None),
            KindProj::Passthrough { body } => body.poll_frame(cx).map_err(client_error),
            KindProj::Shared { reader } => reader.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Passthrough { body } => body.is_end_stream(),
            Kind::Shared { reader } => reader.exact == Some(reader.read) && reader.read > 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Passthrough { body } => body.size_hint(),
            Kind::Shared { reader } => match reader.exact {
                Some(n) => SizeHint::with_exact(n.saturating_sub(reader.read)),
                None => SizeHint::default(),
            },
        }
    }
}

#[cfg(test)]
mod tests;
