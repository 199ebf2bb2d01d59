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
use crate::error::{FailoverError, NoReplay};
use crate::health::{InstanceStats, Outcome, Pick, Tracker};

/// One attempt on one instance. Recorded when it ends, or, if it is
/// dropped first (client gone, timed out), as cancelled from `Drop`, so no
/// attempt goes uncounted.
pub(crate) struct Attempt {
    tracker: Arc<Tracker>,
    stats: Arc<InstanceStats>,
    probe: bool,
    started: u64,
    done: bool,
}

impl Attempt {
    pub(crate) fn start(tracker: Arc<Tracker>, pick: Pick, now: u64) -> Self {
        tracker.start(&pick.stats);
        Self {
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
    fn to_parts(&self, route: Option<Route>) -> Parts {
        let (mut parts, ()) = Request::new(()).into_parts();
        parts.method = self.method.clone();
        parts.uri = self.uri.clone();
        parts.version = self.version;
        parts.headers = self.headers.clone();
        if let Some(extensions) = &self.extensions {
            parts.extensions = extensions.clone();
        }
        if let Some(route) = route {
            parts.extensions.insert(route);
        }
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

    /// Prepares the next attempt, or says why there is none.
    fn prepare(&mut self, tracker: &Arc<Tracker>) -> Result<(), NoReplay> {
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
        let mut parts = self.head.to_parts(Some(route));
        parts.extensions.insert(Replayed {
            attempt: self.attempts,
        });
        tracker.counters.replays.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("foresight_failover_replays_total").increment(1);
        tracing::debug!(instance = %next.stats.id, attempt = self.attempts, "replaying");
        self.next = Some((Request::from_parts(parts, body), next, tracker.clone()));
        Ok(())
    }

    fn more_candidates(&self) -> bool {
        (self.tried.count_ones() as usize) < self.candidates
    }
}

pin_project! {
    #[project = TimerProj]
    enum Timer {
        Off,
        // Armed on the first pending poll, so an attempt that completes at
        // once never touches the timer wheel.
        Idle { after: Duration },
        Armed { #[pin] sleep: Sleep, after: Duration },
    }
}

impl Timer {
    fn new(after: Option<Duration>) -> Self {
        match after {
            Some(after) => Timer::Idle { after },
            None => Timer::Off,
        }
    }

    fn poll_expired(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Duration> {
        loop {
            match self.as_mut().project() {
                TimerProj::Off => return Poll::Pending,
                TimerProj::Idle { after } => {
                    let after = *after;
                    self.set(Timer::Armed {
                        sleep: tokio::time::sleep(after),
                        after,
                    });
                }
                TimerProj::Armed { sleep, after } => {
                    ready!(sleep.poll(cx));
                    return Poll::Ready(*after);
                }
            }
        }
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Calling { #[pin] future: F, #[pin] timer: Timer },
        Readying,
        Failed { error: Option<FailoverError> },
        Done,
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
            state: State::Calling {
                future,
                timer: Timer::Off,
            },
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
            state: State::Calling {
                future,
                timer: Timer::new(timeout),
            },
            attempt: Some(attempt),
            replay: None,
            no_replay,
        }
    }

    pub(crate) fn replayable(
        future: S::Future,
        attempt: Attempt,
        timeout: Option<Duration>,
        replay: Replay<S, B>,
    ) -> Self {
        Self {
            state: State::Calling {
                future,
                timer: Timer::new(timeout),
            },
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
            .prepare(&tracker)
            .map_err(|reason| (reason, Some(instance))),
        _ => Err((no_replay, Some(instance))),
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
                StateProj::Calling { future, mut timer } => {
                    let result = match future.poll(cx) {
                        Poll::Ready(result) => result,
                        Poll::Pending => {
                            let after = ready!(timer.as_mut().poll_expired(cx));
                            let Some(attempt) = this.attempt.as_ref() else {
                                return Poll::Pending;
                            };
                            let instance = attempt.stats.id.clone();
                            let tracker = attempt.tracker.clone();
                            tracker.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                            metrics::counter!("foresight_failover_timeouts_total").increment(1);
                            // A slow answer beats an error: the attempt is
                            // abandoned only for a replay that can start; with
                            // no candidate left, no budget or a body past the
                            // cap, the attempt goes on (its latency is still
                            // recorded, which is what degrades a slow
                            // instance).
                            let replay_ready = this
                                .replay
                                .as_mut()
                                .is_some_and(|replay| replay.prepare(&tracker).is_ok());
                            if !replay_ready {
                                tracing::debug!(%instance, ?after, "attempt slow, nowhere to replay: waiting");
                                timer.set(Timer::Off);
                                return Poll::Pending;
                            }
                            tracing::debug!(%instance, ?after, "attempt timed out, replaying");
                            if let Some(attempt) = this.attempt.take() {
                                // Dropping the attempt's future abandons it.
                                attempt.finish(Outcome::Failure);
                            }
                            this.state.set(State::Readying);
                            continue;
                        }
                    };
                    let failed = match (&result, this.attempt.as_ref()) {
                        (_, None) => {
                            this.state.set(State::Done);
                            return Poll::Ready(result.map_err(Into::into));
                        }
                        (Ok(response), Some(attempt)) => {
                            (attempt.tracker.config.failure_status)(response.status())
                        }
                        (Err(_), Some(_)) => true,
                    };
                    if !failed {
                        if let Some(attempt) = this.attempt.take() {
                            attempt.finish(Outcome::Success);
                        }
                        this.state.set(State::Done);
                        return Poll::Ready(result.map_err(Into::into));
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
                                (Err(error), Some(instance)) => Err(FailoverError::Failed {
                                    instance,
                                    reason,
                                    source: error.into(),
                                }
                                .into()),
                                (Err(error), None) => Err(error.into()),
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
                    this.state.set(State::Calling {
                        future,
                        timer: Timer::new(timeout),
                    });
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
