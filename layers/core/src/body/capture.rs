//! The capture: one buffer per request that keeps the client's body while
//! the first attempt streams it, so that a replay can send it again and a
//! shadow can have a copy.
//!
//! Every data frame read from the client is kept, up to a cap; above it the
//! kept frames are freed and neither a replay nor a copy is possible. Only
//! one reader reads at a time: starting a replay supersedes the previous
//! reader, whose next poll fails with [`Superseded`]. The state sits behind
//! a mutex that only that one reader and the layer starting a replay ever
//! take, so it is never contended.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;

use super::error::Superseded;
use super::route_body::{Boxed, RouteBody};
use crate::error::BoxError;

/// What a capture holds.
pub(super) struct Buffer {
    /// The rest of the client's body, until it ends or fails.
    body: Option<Boxed>,
    chunks: Vec<Bytes>,
    /// Bytes read from the client so far, kept or not.
    len: u64,
    cap: usize,
    /// Something was not kept: the body outgrew the cap, or failed.
    capped: bool,
    ended: bool,
    trailers: Option<HeaderMap>,
    /// The generation of the one reader allowed to read.
    active: u32,
    exact: Option<u64>,
    /// The last read of the client's body found nothing yet: the instance
    /// is waiting on the client.
    waiting: bool,
}

type Shared = Arc<Mutex<Buffer>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Buffer> {
    // Every mutation leaves the state consistent, so a poisoned lock (a
    // panicking body) is safe to reuse.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where a reader hands a copy of the body once it has read all of it.
struct CopyTo {
    tx: oneshot::Sender<RouteBody>,
    cap: u64,
    /// The length the request declared, when it did: a reader that knows
    /// it (hyper's client with a `content-length`) stops at the last byte
    /// and never polls for the end.
    expected: Option<u64>,
}

/// One attempt's view of a capture.
pub(super) struct Reader {
    shared: Shared,
    generation: u32,
    pos: usize,
    read: u64,
    trailers_sent: bool,
    exact: Option<u64>,
    copy: Option<CopyTo>,
}

impl Reader {
    fn new(shared: Shared, generation: u32, exact: Option<u64>) -> Self {
        Self {
            shared,
            generation,
            pos: 0,
            read: 0,
            trailers_sent: false,
            exact,
            copy: None,
        }
    }

    /// A capture of `body`, with its first reader.
    pub(super) fn start(body: Boxed, cap: usize) -> (Self, Capture) {
        let exact = body.size_hint().exact();
        let buffer = Buffer {
            body: Some(body),
            chunks: Vec::new(),
            len: 0,
            cap,
            capped: exact.is_some_and(|n| n > cap as u64),
            ended: false,
            trailers: None,
            active: 0,
            exact,
            waiting: false,
        };
        Self::first(buffer)
    }

    /// A capture of a body already read in full, with its first reader.
    pub(super) fn complete(
        chunks: Vec<Bytes>,
        trailers: Option<HeaderMap>,
        cap: usize,
    ) -> (Self, Capture) {
        let len = chunks.iter().map(|c| c.len() as u64).sum();
        let buffer = Buffer {
            body: None,
            chunks,
            len,
            cap,
            capped: len > cap as u64,
            ended: true,
            trailers,
            active: 0,
            exact: Some(len),
            waiting: false,
        };
        Self::first(buffer)
    }

    fn first(buffer: Buffer) -> (Self, Capture) {
        let exact = buffer.exact;
        let shared = Arc::new(Mutex::new(buffer));
        let capture = Capture {
            shared: Some(shared.clone()),
        };
        (Self::new(shared, 0, exact), capture)
    }

    /// The capture this reader reads, its cap raised to `cap` if that is
    /// higher and nothing was dropped yet.
    pub(super) fn join(&self, cap: usize) -> Capture {
        let mut state = lock(&self.shared);
        if cap > state.cap {
            let untouched = state.len == 0 && state.body.is_some();
            if !state.capped || untouched {
                state.cap = cap;
                state.capped = state.exact.is_some_and(|n| n > cap as u64);
            }
        }
        Capture {
            shared: Some(self.shared.clone()),
        }
    }

    /// Hands a copy of the whole body to `tx` once this reader has read it
    /// within `cap` bytes; drops `tx` if it cannot.
    pub(super) fn copy_to(
        &mut self,
        tx: oneshot::Sender<RouteBody>,
        cap: usize,
        expected: Option<u64>,
    ) {
        self.copy = Some(CopyTo {
            tx,
            cap: cap as u64,
            expected,
        });
        let shared = self.shared.clone();
        self.hand_copy(&lock(&shared));
    }

    fn hand_copy(&mut self, state: &Buffer) {
        let Some(copy) = &self.copy else { return };
        if state.active != self.generation || state.capped || state.len > copy.cap {
            self.copy = None;
        } else if (state.ended || copy.expected == Some(state.len))
            && let Some(copy) = self.copy.take()
        {
            let body = RouteBody::copy(state.chunks.clone(), state.trailers.clone());
            let _ = copy.tx.send(body);
        }
    }

    pub(super) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let shared = self.shared.clone();
        let mut state = lock(&shared);
        let polled = self.poll_locked(&mut state, cx);
        if self.copy.is_some() {
            self.hand_copy(&state);
        }
        polled
    }

    fn poll_locked(
        &mut self,
        state: &mut Buffer,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
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
        let frame = Pin::new(body).poll_frame(cx);
        state.waiting = frame.is_pending();
        match frame {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.end(state);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                // A body that failed cannot be sent again.
                state.capped = true;
                state.chunks = Vec::new();
                state.body = None;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    state.len += data.len() as u64;
                    if !state.capped && state.len <= state.cap as u64 {
                        state.chunks.push(data.clone());
                        self.pos = state.chunks.len();
                    } else if !state.capped {
                        state.capped = true;
                        state.chunks = Vec::new();
                    }
                    self.read += data.len() as u64;
                    if state.body.as_ref().is_some_and(Body::is_end_stream) {
                        // Nothing follows, not even trailers: the body is
                        // whole, though its reader may never poll for the
                        // end.
                        self.end(state);
                    }
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => {
                        state.trailers = Some(trailers.clone());
                        self.end(state);
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

    fn end(&mut self, state: &mut Buffer) {
        state.ended = true;
        state.body = None;
        self.trailers_sent = true;
    }

    pub(super) fn is_end_stream(&self) -> bool {
        self.exact == Some(self.read) && self.read > 0
    }

    pub(super) fn size_hint(&self) -> SizeHint {
        match self.exact {
            Some(n) => SizeHint::with_exact(n.saturating_sub(self.read)),
            None => SizeHint::default(),
        }
    }
}

/// A request's body capture: the handle a routing layer keeps to start a
/// replay of the body, or to tell whether one is possible.
///
/// Made by [`RouteBody::capture`]; cloning shares it. The capture of an
/// empty body holds nothing.
#[derive(Clone)]
pub struct Capture {
    shared: Option<Shared>,
}

impl fmt::Debug for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Capture");
        if let Some(shared) = &self.shared {
            let state = lock(shared);
            debug
                .field("len", &state.len)
                .field("cap", &state.cap)
                .field("capped", &state.capped)
                .field("ended", &state.ended);
        }
        debug.finish()
    }
}

impl Capture {
    /// The capture of an empty body.
    pub(super) fn empty() -> Self {
        Self { shared: None }
    }

    /// A body for the next attempt, superseding the previous reader; `None`
    /// when the body outgrew the capture's cap or failed.
    pub fn replay(&self) -> Option<RouteBody> {
        let Some(shared) = &self.shared else {
            return Some(RouteBody::empty());
        };
        let mut state = lock(shared);
        if state.capped {
            return None;
        }
        state.active += 1;
        let reader = Reader::new(shared.clone(), state.active, state.exact);
        Some(RouteBody::captured(reader))
    }

    /// Whether all of the body read so far is kept and, as far as its
    /// declared length tells, all of it will fit in `cap` bytes: a replay
    /// is still possible.
    pub fn kept_within(&self, cap: usize) -> bool {
        let Some(shared) = &self.shared else {
            return true;
        };
        let state = lock(shared);
        let cap = cap as u64;
        !state.capped && state.len <= cap && state.exact.is_none_or(|n| n <= cap)
    }

    /// Whether the whole body is held (or there is none), so that a second
    /// attempt can send it while the first one goes on: a hedge.
    pub fn complete(&self) -> bool {
        let Some(shared) = &self.shared else {
            return true;
        };
        let state = lock(shared);
        state.ended && !state.capped
    }

    /// Whether the attempt reading the body is waiting for the client to
    /// send more of it: a slow attempt is then the client's doing, not the
    /// instance's.
    pub fn awaiting_client(&self) -> bool {
        let Some(shared) = &self.shared else {
            return false;
        };
        let state = lock(shared);
        state.waiting && state.body.is_some()
    }
}
