use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use foresight_core::attempt::{ATTEMPT_HEADER, Attempt as AttemptTag};
use foresight_core::{BoxError, Role, Route, RouteBody};
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::error::{FailoverError, NoReplay};
use crate::future::{Attempt, Replay, ReplayHead, ResponseFuture};
use crate::health::Tracker;
use crate::metrics::Counter;

/// Service of [`HealthFailoverLayer`](crate::HealthFailoverLayer).
///
/// Reads the request's [`Route`], re-aims it at a live candidate, and
/// replays a failed replayable request on the next candidate; see the
/// [crate docs](crate) for the examples.
pub struct HealthFailover<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Tracker>,
}

impl<S: Clone> Clone for HealthFailover<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for HealthFailover<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthFailover")
            .field("inner", &self.inner)
            .field("shared", &self.shared)
            .finish()
    }
}

impl<S> HealthFailover<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes the service, returning the inner one.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, RB> Service<Request<B>> for HealthFailover<S>
where
    S: Service<Request<RouteBody>, Response = Response<RB>> + Clone,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<RB>;
    type Error = BoxError;
    type Future = ResponseFuture<S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let shared = &self.shared;
        let replayable = shared.config.is_replayable(&request);
        let Some(route) = request.extensions_mut().get_mut::<Route>() else {
            // Nothing to fail over between; the pool reports the missing
            // route.
            return ResponseFuture::passthrough(self.inner.call(request.map(RouteBody::new)));
        };
        let now = shared.now();
        let Some(pick) = shared.choose(route, replayable, now) else {
            shared.counters.add(Counter::NoLiveInstance);
            tracing::debug!(candidates = route.ranked.len(), "no live instance");
            return ResponseFuture::failed(FailoverError::NoLiveInstance {
                candidates: route.ranked.len(),
                retry_after: shared.retry_after(route, now),
            });
        };
        if route.target != pick.stats.id {
            route.target = pick.stats.id.clone();
            route.role = if pick.index == 0 {
                Role::Primary
            } else {
                Role::Secondary
            };
            shared.counters.add(Counter::Rerouted);
        }
        let candidates = route.ranked.len();
        shared.budget.deposit(now);
        let index = pick.index;
        let attempt = Attempt::start(shared.clone(), pick, now);
        if replayable && candidates > 1 {
            let timeout = shared.attempt_timeout(attempt.stats());
            let hedge = shared.hedge_delay(attempt.stats(), now);
            let (mut parts, body) = request.into_parts();
            // Every attempt carries the request's id, so an instance can
            // fence a late one (see `foresight_core::attempt`).
            let tag = AttemptTag::random();
            parts.headers.insert(&ATTEMPT_HEADER, tag.header_value());
            let mut first = RouteBody::new(body);
            let source = first.capture(shared.config.body_cap);
            let head = ReplayHead::copy(&parts, tag);
            // The readied service serves this attempt and is kept for the
            // replays; a fresh clone takes its place for the next call.
            let mut service = self.inner.clone();
            std::mem::swap(&mut service, &mut self.inner);
            let future = service.call(Request::from_parts(parts, first));
            let replay = Replay::new(service, head, source, index, candidates);
            ResponseFuture::replayable(future, attempt, timeout, hedge, replay)
        } else {
            let reason = if replayable {
                NoReplay::Exhausted
            } else {
                NoReplay::NotReplayable
            };
            // No other attempt can follow, so the layer never cuts this one
            // short.
            let timeout = None;
            let future = self.inner.call(request.map(RouteBody::new));
            ResponseFuture::single(future, attempt, timeout, reason)
        }
    }
}
