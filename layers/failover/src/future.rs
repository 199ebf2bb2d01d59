//! Response future of [`HealthFailover`](crate::HealthFailover).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use foresight_core::{BoxError, Role, Route};
use http::request::Parts;
use http::{Extensions, HeaderMap, Method, Request, Response, Uri, Version};
use http_body::Body;
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use crate::Replayed;
use crate::body::{ReplayBody, ReplaySource};
use crate::error::{BodyFault, ClientBodyError, FailoverError, NoReplay};
use crate::health::{InstanceStats, Outcome, Pick, Tracker};

/// One attempt on one instance. Recorded when it ends, or, if it is
/// dropped first (client gone, timed out), as cancelled from `Drop`, so no
/// attempt goes uncounted.
pub(crate) struct Attempt {
    tracker: Arc<Tracker>,
    stats: Arc<InstanceStats>,
    probe: bool,
    /// The instance had answered before this attempt started.
    warm: bool,
    started: u64,
    done: bool,
}

impl Attempt {
    pub(crate) fn start(tracker: Arc<Tracker>, pick: Pick, now: u64) -> Self {
        tracker.start(&pick.stats);
        Self {
            warm: pick.stats.latency() > 0.0,
            tracker,
            stats: pick.stats,
            probe: pick.probe,
            started: now,
            done: false,
        }
    }

    pub(crate) fn stats(&self) -> &InstanceStats {
        &self.stats
    }

    fn finish(mut self, outcome: Outcome) {
        self.done = true;
        let now = self.tracker.now();
        self.tracker
            .finish(&self.stats, outcome, self.probe, self.started, now);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.done {
            let now = self.tracker.now();
            self.tracker.finish(
                &self.stats,
                Outcome::Cancelled,
                self.probe,
                self.started,
                now,
            );
        }
    }
}

/// The request head a replay is rebuilt from.
///
/// Copied for every replayable request, so it avoids what a plain
/// `Parts::clone` pays for: the [`Route`] is kept as a value rather than
/// inside a cloned extension map, and the other extensions are cloned only
/// when there are any (behind a gateway's `ShardLayer` the route is usually
/// the only one).
pub(crate) struct ReplayHead {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    route: Option<Route>,
    extensions: Option<Extensions>,
}

impl ReplayHead {
    pub(crate) fn copy(parts: &Parts) -> Self {
        let route = parts.extensions.get::<Route>().cloned();
        let others = parts.extensions.len() - usize::from(route.is_some());
        Self {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            headers: parts.headers.clone(),
            route,
            extensions: (others > 0).then(|| parts.extensions.clone()),
        }
    }

    /// The head of a new attempt: the original request's, with `route`.
    fn to_parts(&self, route: Route) -> Parts {
        let (mut parts, ()) = Request::new(()).into_parts();
        parts.method = self.method.clone();
        parts.uri = self.uri.clone();
        parts.version = self.version;
        parts.headers = self.headers.clone();
        if let Some(extensions) = &self.extensions {
            parts.extensions = extensions.clone();
        }
        parts.extensions.insert(route);
        parts
    }
}

/// What a replayable request keeps for its next attempts.
pub(crate) struct Replay<S, B> {
    service: S,
    head: ReplayHead,
    source: ReplaySource<B>,
    tried: u32,
    candidates: usize,
    attempts: u8,
    next: Option<(Request<ReplayBody<B>>, Pick, Arc<Tracker>)>,
}

impl<S, B: Body> Replay<S, B> {
    pub(crate) fn new(
        service: S,
        head: ReplayHead,
        source: ReplaySource<B>,
        first: usize,
        candidates: usize,
    ) -> Self {
        Self {
            service,
            head,
            source,
            tried: 1u32.checked_shl(first as u32).unwrap_or(0),
            candidates,
            attempts: 0,
            next: None,
        }
    }

    /// Prepares the next attempt (a replay, or a `hedge` racing the current
    /// one), or says why there is none.
    fn prepare(&mut self, tracker: &Arc<Tracker>, hedge: bool) -> Result<(), NoReplay> {
        let route = self.head.route.as_ref().ok_or(NoReplay::Exhausted)?;
        let next = tracker
            .next_candidate(route, self.tried)
            .ok_or(NoReplay::Exhausted)?;
        if !self.source.replayable() {
            tracker
                .counters
                .body_too_large
                .fetch_add(1, Ordering::Relaxed);
            metrics::counter!("foresight_failover_body_too_large_total").increment(1);
            return Err(NoReplay::BodyTooLarge);
        }
        if !tracker.budget.withdraw(tracker.now()) {
            tracker
                .counters
                .budget_denied
                .fetch_add(1, Ordering::Relaxed);
            metrics::counter!("foresight_failover_budget_denied_total").increment(1);
            return Err(NoReplay::Budget);
        }
        let body = self.source.replay().ok_or(NoReplay::BodyTooLarge)?;
        self.tried |= 1u32.checked_shl(next.index as u32).unwrap_or(0);
        self.attempts = self.attempts.saturating_add(1);
        let role = if next.index == 0 {
            Role::Primary
        } else {
            Role::Secondary
        };
        let route = route.retarget(next.stats.id.clone(), role);
        let mut parts = self.head.to_parts(route);
        parts.extensions.insert(Replayed {
            attempt: self.attempts,
        });
        if hedge {
            tracker.counters.hedges.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("foresight_failover_hedges_total").increment(1);
            tracing::debug!(instance = %next.stats.id, attempt = self.attempts, "hedging");
        } else {
            tracker.counters.replays.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("foresight_failover_replays_total").increment(1);
            tracing::debug!(instance = %next.stats.id, attempt = self.attempts, "replaying");
        }
        self.next = Some((Request::from_parts(parts, body), next, tracker.clone()));
        Ok(())
    }

    fn more_candidates(&self) -> bool {
        (self.tried.count_ones() as usize) < self.candidates
    }
}

/// What a timer's expiry means.
#[derive(Clone, Copy, Debug)]
enum Expiry {
    /// Time to hedge; the attempt timeout, if any, is `then` later.
    Hedge { then: Option<Duration> },
    /// The attempt timed out.
    Timeout,
}

pin_project! {
    #[project = TimerProj]
    enum Timer {
        Off,
        // Armed on the first pending poll, so an attempt that completes at
        // once never touches the timer wheel.
        Idle { after: Duration, expiry: Expiry },
        Armed { #[pin] sleep: Sleep, after: Duration, expiry: Expiry },
    }
}

impl Timer {
    /// A timer for an attempt with an optional `hedge` delay and an
    /// optional `timeout`: it first expires at whichever comes first.
    fn new(timeout: Option<Duration>, hedge: Option<Duration>) -> Self {
        match (hedge, timeout) {
            (Some(hedge), Some(timeout)) if hedge < timeout => Timer::Idle {
                after: hedge,
                expiry: Expiry::Hedge {
                    then: Some(timeout - hedge),
                },
            },
            (Some(hedge), None) => Timer::Idle {
                after: hedge,
                expiry: Expiry::Hedge { then: None },
            },
            (_, Some(timeout)) => Timer::Idle {
                after: timeout,
                expiry: Expiry::Timeout,
            },
            (_, None) => Timer::Off,
        }
    }

    fn poll_expired(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<(Duration, Expiry)> {
        loop {
            match self.as_mut().project() {
                TimerProj::Off => return Poll::Pending,
                TimerProj::Idle { after, expiry } => {
                    let (after, expiry) = (*after, *expiry);
                    self.set(Timer::Armed {
                        sleep: tokio::time::sleep(after),
                        after,
                        expiry,
                    });
                }
                TimerProj::Armed {
                    sleep,
                    after,
                    expiry,
                } => {
                    ready!(sleep.poll(cx));
                    return Poll::Ready((*after, *expiry));
                }
            }
        }
    }
}

pin_project! {
    /// The second attempt of a hedged request, racing the first.
    #[project = HedgeProj]
    enum Hedge<F> {
        Off,
        // Prepared (the request waits in `Replay::next`), waiting for the
        // service to be ready.
        Readying,
        Running { #[pin] future: F, attempt: Option<Attempt> },
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Calling {
            #[pin] future: F,
            #[pin] timer: Timer,
            #[pin] hedge: Hedge<F>,
            // The first attempt failed while its hedge runs on.
            first_failed: bool,
        },
        Readying,
        Failed { error: Option<FailoverError> },
        Done,
    }
}

impl<F> State<F> {
    fn calling(future: F, timer: Timer) -> Self {
        State::Calling {
            future,
            timer,
            hedge: Hedge::Off,
            first_failed: false,
        }
    }
}

pin_project! {
    /// Response future of [`HealthFailover`](crate::HealthFailover): an
    /// attempt, and the replays that follow a failed one.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<ReplayBody<B>>>,
    {
        #[pin]
        state: State<S::Future>,
        attempt: Option<Attempt>,
        replay: Option<Replay<S, B>>,
        no_replay: NoReplay,
    }

    impl<S, B> PinnedDrop for ResponseFuture<S, B>
    where
        S: Service<Request<ReplayBody<B>>>,
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

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<ReplayBody<B>>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempt", &self.attempt.as_ref().map(|a| &a.stats.id))
            .field("replayable", &self.replay.is_some())
            .finish()
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<ReplayBody<B>>>,
{
    pub(crate) fn passthrough(future: S::Future) -> Self {
        Self {
            state: State::calling(future, Timer::Off),
            attempt: None,
            replay: None,
            no_replay: NoReplay::NotReplayable,
        }
    }

    pub(crate) fn failed(error: FailoverError) -> Self {
        Self {
            state: State::Failed { error: Some(error) },
            attempt: None,
            replay: None,
            no_replay: NoReplay::Exhausted,
        }
    }

    pub(crate) fn single(
        future: S::Future,
        attempt: Attempt,
        timeout: Option<Duration>,
        no_replay: NoReplay,
    ) -> Self {
        Self {
            state: State::calling(future, Timer::new(timeout, None)),
            attempt: Some(attempt),
            replay: None,
            no_replay,
        }
    }

    pub(crate) fn replayable(
        future: S::Future,
        attempt: Attempt,
        timeout: Option<Duration>,
        hedge: Option<Duration>,
        replay: Replay<S, B>,
    ) -> Self {
        Self {
            state: State::calling(future, Timer::new(timeout, hedge)),
            attempt: Some(attempt),
            replay: Some(replay),
            no_replay: NoReplay::Exhausted,
        }
    }
}

/// Ends the current attempt with `outcome` and prepares a replay if one is
/// possible. `Ok(true)` means a replay is ready; `Err` says why not.
fn end_attempt<S, B: Body>(
    attempt: &mut Option<Attempt>,
    replay: &mut Option<Replay<S, B>>,
    no_replay: NoReplay,
    outcome: Outcome,
) -> Result<(), (NoReplay, Option<foresight_core::InstanceId>)> {
    let Some(current) = attempt.take() else {
        return Err((no_replay, None));
    };
    let tracker = (outcome != Outcome::Success).then(|| current.tracker.clone());
    let instance = current.stats.id.clone();
    current.finish(outcome);
    match (tracker, replay.as_mut()) {
        (Some(tracker), Some(replay)) => replay
            .prepare(&tracker, false)
            .map_err(|reason| (reason, Some(instance))),
        _ => Err((no_replay, Some(instance))),
    }
}

/// How an attempt's result counts, for health and replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Success,
    /// The instance failed: counted against it, and replayed if possible.
    Failure,
    /// The client's request body failed: answered to the client, never
    /// counted against the instance nor replayed.
    Client(BodyFault),
}

fn verdict<RB>(result: &Result<Response<RB>, BoxError>, attempt: &Attempt) -> Verdict {
    match result {
        Ok(response) if (attempt.tracker.config.failure_status)(response.status()) => {
            Verdict::Failure
        }
        Ok(_) => Verdict::Success,
        Err(error) => match ClientBodyError::find(error.as_ref()) {
            Some(fault) => Verdict::Client(fault),
            None => Verdict::Failure,
        },
    }
}

/// The error a request broken by its client's body ends with; counted.
fn client_body_error(fault: BodyFault, error: BoxError) -> BoxError {
    metrics::counter!("foresight_failover_client_body_errors_total", "fault" => fault.as_str())
        .increment(1);
    tracing::debug!(?fault, "request body failed on the client's side");
    FailoverError::client_body(fault, error).into()
}

/// The error a request ends with when no attempt is tracked: the client's
/// body fault if it caused it, else the error as it is.
fn untracked(error: BoxError) -> BoxError {
    match ClientBodyError::find(error.as_ref()) {
        Some(fault) => client_body_error(fault, error),
        None => error,
    }
}

impl<S, B, RB> Future for ResponseFuture<S, B>
where
    S: Service<Request<ReplayBody<B>>, Response = Response<RB>>,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<RB>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling {
                    future,
                    mut timer,
                    mut hedge,
                    first_failed,
                } => {
                    // The hedge, when one races the first attempt.
                    let mut both_failed = None;
                    match hedge.as_mut().project() {
                        HedgeProj::Off => {}
                        HedgeProj::Readying => {
                            let replay = this.replay.as_mut().expect("hedging without a replay");
                            match replay.service.poll_ready(cx) {
                                Poll::Pending => {}
                                Poll::Ready(Err(_)) => {
                                    // No hedge after all; the first attempt
                                    // goes on alone.
                                    replay.next = None;
                                    hedge.set(Hedge::Off);
                                }
                                Poll::Ready(Ok(())) => {
                                    let (request, pick, tracker) =
                                        replay.next.take().expect("hedging without a request");
                                    let future = replay.service.call(request);
                                    let now = tracker.now();
                                    hedge.set(Hedge::Running {
                                        future,
                                        attempt: Some(Attempt::start(tracker, pick, now)),
                                    });
                                    continue;
                                }
                            }
                        }
                        HedgeProj::Running {
                            future: hedged,
                            attempt: hedge_attempt,
                        } => {
                            if let Poll::Ready(result) = hedged.poll(cx) {
                                let result = result.map_err(Into::into);
                                let current = hedge_attempt.take().expect("a running hedge");
                                let verdict = verdict(&result, &current);
                                let result = match (verdict, result) {
                                    (Verdict::Client(fault), Err(error)) => {
                                        // Both attempts read the same client
                                        // body; neither instance is to blame.
                                        current.finish(Outcome::ClientError);
                                        if let Some(first) = this.attempt.take() {
                                            first.finish(Outcome::ClientError);
                                        }
                                        this.state.set(State::Done);
                                        return Poll::Ready(Err(client_body_error(fault, error)));
                                    }
                                    (_, result) => result,
                                };
                                if verdict == Verdict::Success {
                                    let tracker = current.tracker.clone();
                                    current.finish(Outcome::Success);
                                    tracker.counters.hedge_wins.fetch_add(1, Ordering::Relaxed);
                                    metrics::counter!("foresight_failover_hedge_wins_total")
                                        .increment(1);
                                    // The first attempt, if it still runs, is
                                    // cancelled (and recorded so) with it.
                                    this.attempt.take();
                                    this.state.set(State::Done);
                                    return Poll::Ready(result);
                                }
                                if *first_failed {
                                    // Both failed: the hedge's failure is
                                    // handled as the last attempt's.
                                    *this.attempt = Some(current);
                                    both_failed = Some(result);
                                } else {
                                    // The first attempt goes on alone, under
                                    // a fresh timeout.
                                    let timeout = current.tracker.attempt_timeout(&current.stats);
                                    current.finish(Outcome::Failure);
                                    hedge.set(Hedge::Off);
                                    timer.set(Timer::new(timeout, None));
                                }
                            }
                        }
                    }
                    let mut result = match both_failed {
                        Some(result) => result,
                        // The first attempt failed; its hedge runs on.
                        None if *first_failed => return Poll::Pending,
                        None => match future.poll(cx) {
                            Poll::Ready(result) => result.map_err(Into::into),
                            Poll::Pending => {
                                if !matches!(*hedge, Hedge::Off) {
                                    return Poll::Pending;
                                }
                                let (after, expiry) = ready!(timer.as_mut().poll_expired(cx));
                                let Some(attempt) = this.attempt.as_ref() else {
                                    return Poll::Pending;
                                };
                                let instance = attempt.stats.id.clone();
                                let tracker = attempt.tracker.clone();
                                if let Expiry::Hedge { then } = expiry {
                                    let hedged = this.replay.as_mut().is_some_and(|replay| {
                                        replay.source.complete()
                                            && replay.prepare(&tracker, true).is_ok()
                                    });
                                    if hedged {
                                        tracing::debug!(%instance, ?after, "attempt slow: hedging");
                                        timer.set(Timer::Off);
                                        hedge.set(Hedge::Readying);
                                    } else {
                                        timer.set(Timer::new(then, None));
                                    }
                                    continue;
                                }
                                if this
                                    .replay
                                    .as_ref()
                                    .is_some_and(|replay| replay.source.awaiting_client())
                                {
                                    // The instance is waiting for the
                                    // client's body, not the other way
                                    // round: no timeout of the instance's,
                                    // and a replay would wait the same. Check
                                    // again after another timeout.
                                    tracing::debug!(%instance, ?after, "attempt slow on the client's body: waiting");
                                    timer.set(Timer::new(Some(after), None));
                                    continue;
                                }
                                tracker.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                                metrics::counter!("foresight_failover_timeouts_total").increment(1);
                                // A slow answer beats an error: the attempt is
                                // abandoned only for a replay that can start;
                                // with no candidate left, no budget or a body
                                // past the cap, the attempt goes on (its
                                // latency is still recorded, which is what
                                // degrades a slow instance).
                                let replay_ready = this
                                    .replay
                                    .as_mut()
                                    .is_some_and(|replay| replay.prepare(&tracker, false).is_ok());
                                if !replay_ready {
                                    tracing::debug!(%instance, ?after, "attempt slow, nowhere to replay: waiting");
                                    timer.set(Timer::Off);
                                    return Poll::Pending;
                                }
                                tracing::debug!(%instance, ?after, "attempt timed out, replaying");
                                if let Some(attempt) = this.attempt.take() {
                                    // Dropping the attempt's future abandons
                                    // it. On an instance that had not answered
                                    // once when the attempt started (a cold
                                    // start under a burst) the attempt had
                                    // only the timeout's floor to meet:
                                    // its wait is recorded as latency, which
                                    // lengthens its next timeouts, not as a
                                    // failure that could eject it.
                                    let outcome = if attempt.warm {
                                        Outcome::Failure
                                    } else {
                                        Outcome::Cancelled
                                    };
                                    attempt.finish(outcome);
                                }
                                this.state.set(State::Readying);
                                continue;
                            }
                        },
                    };
                    let verdict = match this.attempt.as_ref() {
                        None => {
                            this.state.set(State::Done);
                            return Poll::Ready(result.map_err(untracked));
                        }
                        Some(attempt) => verdict(&result, attempt),
                    };
                    match (verdict, result) {
                        (Verdict::Success, result) => {
                            if let Some(attempt) = this.attempt.take() {
                                attempt.finish(Outcome::Success);
                            }
                            // A hedge still running is cancelled with the
                            // state.
                            this.state.set(State::Done);
                            return Poll::Ready(result);
                        }
                        (Verdict::Client(fault), Err(error)) => {
                            // The client's body broke the attempt: the
                            // instance is neither blamed nor named, and a
                            // replay could only fail the same way.
                            if let Some(attempt) = this.attempt.take() {
                                attempt.finish(Outcome::ClientError);
                            }
                            this.state.set(State::Done);
                            return Poll::Ready(Err(client_body_error(fault, error)));
                        }
                        (_, failed) => result = failed,
                    }
                    match hedge.as_mut().project() {
                        HedgeProj::Running { .. } => {
                            // The hedge may still answer.
                            if let Some(attempt) = this.attempt.take() {
                                attempt.finish(Outcome::Failure);
                            }
                            *first_failed = true;
                            return Poll::Pending;
                        }
                        HedgeProj::Readying => {
                            // The prepared hedge becomes the replay.
                            if let Some(attempt) = this.attempt.take() {
                                attempt.finish(Outcome::Failure);
                            }
                            this.state.set(State::Readying);
                            continue;
                        }
                        HedgeProj::Off => {}
                    }
                    match end_attempt(this.attempt, this.replay, *this.no_replay, Outcome::Failure)
                    {
                        Ok(()) => {
                            this.state.set(State::Readying);
                        }
                        Err((reason, instance)) => {
                            this.state.set(State::Done);
                            return Poll::Ready(match (result, instance) {
                                (Ok(response), _) => Ok(response),
                                (Err(source), Some(instance)) => Err(FailoverError::Failed {
                                    instance,
                                    reason,
                                    source,
                                }
                                .into()),
                                (Err(error), None) => Err(error),
                            });
                        }
                    }
                }
                StateProj::Readying => {
                    let replay = this.replay.as_mut().expect("readying without a replay");
                    if let Err(error) = ready!(replay.service.poll_ready(cx)) {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(error.into()));
                    }
                    let (request, pick, tracker) =
                        replay.next.take().expect("readying without a request");
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
                }
                StateProj::Failed { error } => {
                    let error = error.take().expect("polled after completion");
                    this.state.set(State::Done);
                    return Poll::Ready(Err(error.into()));
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}
