//! Response future of [`HealthFailover`](crate::HealthFailover).
//!
//! One request is a small state machine: an attempt runs (`Calling`), and a
//! failed or timed-out one is followed by a replay once the service is
//! ready again (`Readying`). A slow attempt may be raced by a hedge, which
//! runs beside the state as its own machine (`Hedge`); when the first
//! attempt fails first, the request waits for the hedge alone
//! (`AwaitingHedge`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use foresight_core::{BoxError, RouteBody};
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use self::hedge::Hedge;
use self::timer::{Expiry, Timer};
use self::verdict::{Verdict, client_body_error, untracked, verdict};
use crate::error::{FailoverError, NoReplay};
use crate::health::Outcome;
use crate::metrics::Counter;

pub(crate) use self::attempt::Attempt;
pub(crate) use self::replay::{Replay, ReplayHead};

mod attempt;
mod header_block;
mod hedge;
mod replay;
mod timer;
mod verdict;

pin_project! {
    #[project = StateProj]
    enum State<F> {
        /// The current attempt runs, under its timer.
        Calling { #[pin] future: F, #[pin] timer: Timer },
        /// The first attempt failed while its hedge runs on: the hedge's
        /// answer is the request's.
        AwaitingHedge,
        /// A replay is prepared and waits for the service to be ready.
        Readying,
        Failed { error: Option<FailoverError> },
        Done,
    }
}

impl<F> State<F> {
    fn calling(future: F, timer: Timer) -> Self {
        State::Calling { future, timer }
    }
}

type Answer<RB> = Result<Response<RB>, BoxError>;

/// What the loop of [`ResponseFuture::poll`] does next.
enum Next<RB> {
    /// Poll the new state.
    Again,
    /// Answer the request.
    Answer(Answer<RB>),
    /// Wait to be woken.
    Wait,
}

pin_project! {
    /// Response future of [`HealthFailover`](crate::HealthFailover): an
    /// attempt, the hedge that may race it, and the replays that follow a
    /// failed one.
    pub struct ResponseFuture<S>
    where
        S: Service<Request<RouteBody>>,
    {
        #[pin]
        state: State<S::Future>,
        #[pin]
        hedge: Hedge<S::Future>,
        attempt: Option<Attempt>,
        replay: Option<Replay<S>>,
        no_replay: NoReplay,
    }

    impl<S> PinnedDrop for ResponseFuture<S>
    where
        S: Service<Request<RouteBody>>,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Dropped while the instance waits for the client's body (the
            // client left mid-upload, or the edge gave up on its body): the
            // wait is the client's, so it is not recorded as the instance's
            // latency. Otherwise the attempt records itself as cancelled.
            if let Some(replay) = this.replay.as_ref()
                && replay.source.awaiting_client()
                && let Some(attempt) = this.attempt.take()
            {
                attempt.finish(Outcome::ClientError);
            }
        }
    }
}

impl<S> fmt::Debug for ResponseFuture<S>
where
    S: Service<Request<RouteBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempt", &self.attempt.as_ref().map(|a| &a.stats.id))
            .field("replayable", &self.replay.is_some())
            .field("hedged", &!self.hedge.is_off())
            .finish()
    }
}

impl<S> ResponseFuture<S>
where
    S: Service<Request<RouteBody>>,
{
    pub(crate) fn passthrough(future: S::Future) -> Self {
        Self::new(
            State::calling(future, Timer::Off),
            None,
            None,
            NoReplay::NotReplayable,
        )
    }

    pub(crate) fn failed(error: FailoverError) -> Self {
        let state = State::Failed { error: Some(error) };
        Self::new(state, None, None, NoReplay::Exhausted)
    }

    pub(crate) fn single(
        future: S::Future,
        attempt: Attempt,
        timeout: Option<Duration>,
        no_replay: NoReplay,
    ) -> Self {
        let state = State::calling(future, Timer::new(timeout, None));
        Self::new(state, Some(attempt), None, no_replay)
    }

    pub(crate) fn replayable(
        future: S::Future,
        attempt: Attempt,
        timeout: Option<Duration>,
        hedge: Option<Duration>,
        replay: Replay<S>,
    ) -> Self {
        let state = State::calling(future, Timer::new(timeout, hedge));
        Self::new(state, Some(attempt), Some(replay), NoReplay::Exhausted)
    }

    fn new(
        state: State<S::Future>,
        attempt: Option<Attempt>,
        replay: Option<Replay<S>>,
        no_replay: NoReplay,
    ) -> Self {
        Self {
            state,
            hedge: Hedge::Off,
            attempt,
            replay,
            no_replay,
        }
    }
}

impl<S, RB> Future for ResponseFuture<S>
where
    S: Service<Request<RouteBody>, Response = Response<RB>>,
    S::Error: Into<BoxError>,
{
    type Output = Answer<RB>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let running = match &*self.as_mut().project().state {
                State::Calling { .. } | State::AwaitingHedge => Some(true),
                State::Readying => Some(false),
                State::Failed { .. } => None,
                State::Done => panic!("ResponseFuture polled after completion"),
            };
            let next = match running {
                Some(true) => self.as_mut().poll_attempts(cx),
                Some(false) => ready!(self.as_mut().poll_replay(cx)),
                None => match self.as_mut().project().state.project() {
                    StateProj::Failed { error } => {
                        let error = error.take().expect("polled after completion");
                        Next::Answer(Err(error.into()))
                    }
                    _ => unreachable!("matched above"),
                },
            };
            match next {
                Next::Again => {}
                Next::Wait => return Poll::Pending,
                Next::Answer(answer) => {
                    let mut this = self.as_mut().project();
                    this.state.set(State::Done);
                    // A hedge still running is cancelled (and recorded so).
                    this.hedge.set(Hedge::Off);
                    return Poll::Ready(answer);
                }
            }
        }
    }
}

impl<S, RB> ResponseFuture<S>
where
    S: Service<Request<RouteBody>, Response = Response<RB>>,
    S::Error: Into<BoxError>,
{
    /// `Calling` and `AwaitingHedge`: the hedge first (its answer may end
    /// the request), then the current attempt and its timer.
    fn poll_attempts(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Next<RB> {
        let this = self.as_mut().project();
        if let Poll::Ready((result, hedge)) = this.hedge.poll_answer(this.replay, cx) {
            return self.hedge_answered(result, hedge);
        }
        let this = self.as_mut().project();
        let StateProj::Calling { future, timer } = this.state.project() else {
            // The first attempt failed; its hedge runs on.
            return Next::Wait;
        };
        match future.poll(cx) {
            Poll::Ready(result) => self.attempt_answered(result.map_err(Into::into)),
            // No timer while a hedge races the attempt.
            Poll::Pending if !this.hedge.is_off() => Next::Wait,
            Poll::Pending => match timer.poll_expired(cx) {
                Poll::Ready((after, expiry)) => self.expired(after, expiry),
                Poll::Pending => Next::Wait,
            },
        }
    }

    /// The hedge ended with `result`.
    fn hedge_answered(mut self: Pin<&mut Self>, result: Answer<RB>, hedge: Attempt) -> Next<RB> {
        let this = self.as_mut().project();
        match verdict(&result, &hedge) {
            Verdict::Client(fault) => {
                // Both attempts read the same client body; neither instance
                // is to blame.
                hedge.finish(Outcome::ClientError);
                if let Some(first) = this.attempt.take() {
                    first.finish(Outcome::ClientError);
                }
                match result {
                    Err(error) => Next::Answer(Err(client_body_error(fault, error))),
                    Ok(response) => Next::Answer(Ok(response)),
                }
            }
            Verdict::Success => {
                let tracker = hedge.tracker.clone();
                hedge.finish(Outcome::Success);
                tracker.counters.add(Counter::HedgeWins);
                // The first attempt, if it still runs, is cancelled (and
                // recorded so).
                this.attempt.take();
                Next::Answer(result)
            }
            Verdict::Failure if matches!(*this.state, State::AwaitingHedge) => {
                // Both failed: the hedge's failure is handled as the last
                // attempt's.
                *this.attempt = Some(hedge);
                self.attempt_failed(result)
            }
            Verdict::Failure => {
                // The first attempt goes on alone, under a fresh timeout.
                let timeout = hedge.tracker.attempt_timeout(&hedge.stats);
                hedge.finish(Outcome::Failure);
                if let StateProj::Calling { mut timer, .. } = this.state.project() {
                    timer.set(Timer::new(timeout, None));
                }
                Next::Again
            }
        }
    }

    /// The current attempt ended with `result`.
    fn attempt_answered(mut self: Pin<&mut Self>, result: Answer<RB>) -> Next<RB> {
        let this = self.as_mut().project();
        let Some(attempt) = this.attempt.as_ref() else {
            return Next::Answer(result.map_err(untracked));
        };
        match (verdict(&result, attempt), result) {
            (Verdict::Success, result) => {
                if let Some(attempt) = this.attempt.take() {
                    attempt.finish(Outcome::Success);
                }
                Next::Answer(result)
            }
            (Verdict::Client(fault), Err(error)) => {
                // The client's body broke the attempt: the instance is
                // neither blamed nor named, and a replay could only fail the
                // same way.
                if let Some(attempt) = this.attempt.take() {
                    attempt.finish(Outcome::ClientError);
                }
                Next::Answer(Err(client_body_error(fault, error)))
            }
            (_, result) => self.attempt_failed(result),
        }
    }

    /// The current attempt failed with `result`: wait for a running hedge,
    /// turn a prepared one into the replay, or replay if possible.
    fn attempt_failed(self: Pin<&mut Self>, result: Answer<RB>) -> Next<RB> {
        let mut this = self.project();
        if this.hedge.is_running() {
            // The hedge may still answer.
            if let Some(attempt) = this.attempt.take() {
                attempt.finish(Outcome::Failure);
            }
            this.state.set(State::AwaitingHedge);
            return Next::Wait;
        }
        if !this.hedge.is_off() {
            // The prepared hedge becomes the replay.
            this.hedge.set(Hedge::Off);
            if let Some(attempt) = this.attempt.take() {
                attempt.finish(Outcome::Failure);
            }
            this.state.set(State::Readying);
            return Next::Again;
        }
        let Some(current) = this.attempt.take() else {
            return Next::Answer(result);
        };
        let tracker = current.tracker.clone();
        let instance = current.stats.id.clone();
        current.finish(Outcome::Failure);
        let prepared = match this.replay.as_mut() {
            Some(replay) => replay.prepare(&tracker, false),
            None => Err(*this.no_replay),
        };
        match (prepared, result) {
            (Ok(()), _) => {
                this.state.set(State::Readying);
                Next::Again
            }
            (Err(_), Ok(response)) => Next::Answer(Ok(response)),
            (Err(reason), Err(source)) => Next::Answer(Err(FailoverError::Failed {
                instance,
                reason,
                source,
            }
            .into())),
        }
    }

    /// The timer of the current attempt expired after `after`: hedge it, or
    /// abandon it for a replay.
    fn expired(self: Pin<&mut Self>, after: Duration, expiry: Expiry) -> Next<RB> {
        let mut this = self.project();
        let StateProj::Calling { mut timer, .. } = this.state.as_mut().project() else {
            return Next::Wait;
        };
        let Some(attempt) = this.attempt.as_ref() else {
            return Next::Wait;
        };
        let instance = attempt.stats.id.clone();
        let tracker = attempt.tracker.clone();
        if let Expiry::Hedge { then } = expiry {
            let hedged = this.replay.as_mut().is_some_and(|replay| {
                replay.source.complete() && replay.prepare(&tracker, true).is_ok()
            });
            if hedged {
                tracing::debug!(%instance, ?after, "attempt slow: hedging");
                timer.set(Timer::Off);
                this.hedge.set(Hedge::Readying);
            } else {
                timer.set(Timer::new(then, None));
            }
            return Next::Again;
        }
        if this
            .replay
            .as_ref()
            .is_some_and(|replay| replay.source.awaiting_client())
        {
            // The instance is waiting for the client's body, not the other
            // way round: no timeout of the instance's, and a replay would
            // wait the same. Check again after another timeout.
            tracing::debug!(%instance, ?after, "attempt slow on the client's body: waiting");
            timer.set(Timer::new(Some(after), None));
            return Next::Again;
        }
        tracker.counters.add(Counter::Timeouts);
        // A slow answer beats an error: the attempt is abandoned only for a
        // replay that can start; with no candidate left, no budget or a body
        // past the cap, the attempt goes on (its latency is still recorded,
        // which is what degrades a slow instance).
        let replay_ready = this
            .replay
            .as_mut()
            .is_some_and(|replay| replay.prepare(&tracker, false).is_ok());
        if !replay_ready {
            tracing::debug!(%instance, ?after, "attempt slow, nowhere to replay: waiting");
            timer.set(Timer::Off);
            return Next::Wait;
        }
        tracing::debug!(%instance, ?after, "attempt timed out, replaying");
        if let Some(attempt) = this.attempt.take() {
            // Dropping the attempt's future abandons it. On an instance that
            // had not answered once when the attempt started (a cold start
            // under a burst) the attempt had only the timeout's floor to
            // meet: its wait is recorded as latency, which lengthens its next
            // timeouts, not as a failure that could eject it.
            let outcome = if attempt.warm {
                Outcome::Failure
            } else {
                Outcome::Cancelled
            };
            attempt.finish(outcome);
        }
        this.state.set(State::Readying);
        Next::Again
    }

    /// `Readying`: the prepared replay goes out once the service is ready.
    fn poll_replay(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Next<RB>> {
        let mut this = self.project();
        let replay = this.replay.as_mut().expect("readying without a replay");
        if let Err(error) = ready!(replay.service.poll_ready(cx)) {
            return Poll::Ready(Next::Answer(Err(error.into())));
        }
        let (request, pick, tracker) = *replay.next.take().expect("readying without a request");
        let timeout = if replay.more_candidates() {
            tracker.attempt_timeout(&pick.stats)
        } else {
            None
        };
        let future = replay.service.call(request);
        let now = tracker.now();
        *this.attempt = Some(Attempt::start(tracker, pick, now));
        this.state
            .set(State::calling(future, Timer::new(timeout, None)));
        Poll::Ready(Next::Again)
    }
}
