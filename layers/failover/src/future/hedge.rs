//! The second attempt of a hedged request, racing the first: its own
//! small state machine beside the response future's.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use foresight_core::{BoxError, RouteBody};
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::attempt::Attempt;
use super::replay::Replay;

pin_project! {
    /// The hedge of an attempt.
    #[project = HedgeProj]
    pub(crate) enum Hedge<F> {
        /// No hedge: none was sent, or it ended.
        Off,
        /// Prepared (the request waits in `Replay::next`), waiting for the
        /// service to be ready.
        Readying,
        /// Sent, and racing the first attempt. Boxed: hedges are rare, and
        /// a second inline attempt would double the size of every request's
        /// response future, which each layer above moves when it wraps it.
        Running { future: Pin<Box<F>>, attempt: Option<Attempt> },
    }
}

impl<F> Hedge<F> {
    pub(crate) fn is_off(&self) -> bool {
        matches!(self, Hedge::Off)
    }

    pub(crate) fn is_running(&self) -> bool {
        matches!(self, Hedge::Running { .. })
    }

    /// Drives the hedge: sends the prepared request once the service is
    /// ready, then waits for its answer. Ready with the answer and its
    /// attempt when the hedge ends; the hedge is then off. Pending while it
    /// runs, and while there is none (a service that fails to get ready
    /// drops the hedge: the first attempt goes on alone).
    pub(crate) fn poll_answer<S, RB>(
        mut self: Pin<&mut Self>,
        replay: &mut Option<Replay<S>>,
        cx: &mut Context<'_>,
    ) -> Poll<(Result<Response<RB>, BoxError>, Attempt)>
    where
        S: Service<Request<RouteBody>, Response = Response<RB>, Future = F>,
        S::Error: Into<BoxError>,
        F: Future<Output = Result<Response<RB>, S::Error>>,
    {
        loop {
            match self.as_mut().project() {
                HedgeProj::Off => return Poll::Pending,
                HedgeProj::Readying => {
                    let replay = replay.as_mut().expect("hedging without a replay");
                    match replay.service.poll_ready(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(_)) => {
                            replay.next = None;
                            self.set(Hedge::Off);
                            return Poll::Pending;
                        }
                        Poll::Ready(Ok(())) => {
                            let (request, pick, tracker) =
                                *replay.next.take().expect("hedging without a request");
                            let future = replay.service.call(request);
                            let now = tracker.now();
                            self.set(Hedge::Running {
                                future: Box::pin(future),
                                attempt: Some(Attempt::start(tracker, pick, now)),
                            });
                        }
                    }
                }
                HedgeProj::Running { future, attempt } => {
                    let result = match future.as_mut().poll(cx) {
                        Poll::Ready(result) => result.map_err(Into::into),
                        Poll::Pending => return Poll::Pending,
                    };
                    let attempt = attempt.take().expect("a running hedge");
                    self.set(Hedge::Off);
                    return Poll::Ready((result, attempt));
                }
            }
        }
    }
}
