//! What a replayable request keeps for its next attempts: the head of the
//! request, the captured body, the service, and which candidates it tried.

use std::sync::Arc;

use foresight_core::attempt::{ATTEMPT_HEADER, Attempt as AttemptTag};
use foresight_core::body::Capture;
use foresight_core::{Role, Route, RouteBody};
use http::request::Parts;
use http::{Extensions, Method, Request, Uri, Version};

use super::header_block::HeaderBlock;
use crate::error::NoReplay;
use crate::health::{Pick, Tracker};
use crate::metrics::Counter;

/// The request head a replay is rebuilt from.
///
/// Copied for every replayable request, so it avoids what a plain
/// `Parts::clone` pays for: the headers are packed into one buffer rather
/// than cloned as a map ([`HeaderBlock`]), the [`Route`] is kept as a value
/// rather than inside a cloned extension map, and the other extensions are
/// cloned only when there are any (behind a gateway's `ShardLayer` the
/// route is usually the only one).
pub(crate) struct ReplayHead {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderBlock,
    route: Option<Route>,
    extensions: Option<Extensions>,
    /// The request's attempt tag; replays and hedges number their own.
    tag: AttemptTag,
}

impl ReplayHead {
    pub(crate) fn copy(parts: &Parts, tag: AttemptTag) -> Self {
        let route = parts.extensions.get::<Route>().cloned();
        let others = parts.extensions.len() - usize::from(route.is_some());
        Self {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            headers: HeaderBlock::copy(&parts.headers),
            route,
            extensions: (others > 0).then(|| parts.extensions.clone()),
            tag,
        }
    }

    /// The head of a new attempt: the original request's, with `route`.
    pub(crate) fn to_parts(&self, route: Route) -> Parts {
        let (mut parts, ()) = Request::new(()).into_parts();
        parts.method = self.method.clone();
        parts.uri = self.uri.clone();
        parts.version = self.version;
        parts.headers = self.headers.to_map();
        if let Some(extensions) = &self.extensions {
            parts.extensions = extensions.clone();
        }
        parts.extensions.insert(route);
        parts
    }
}

/// A prepared attempt: its request, its candidate and the tracker.
pub(crate) type Prepared = (Request<RouteBody>, Pick, Arc<Tracker>);

/// What a replayable request keeps for its next attempts.
pub(crate) struct Replay<S> {
    pub(crate) service: S,
    pub(crate) head: ReplayHead,
    pub(crate) source: Capture,
    pub(crate) tried: u32,
    pub(crate) candidates: usize,
    pub(crate) attempts: u8,
    /// The prepared next attempt; boxed, as most requests never have one
    /// and the response future that holds this is moved by every layer
    /// above.
    pub(crate) next: Option<Box<Prepared>>,
}

impl<S> Replay<S> {
    pub(crate) fn new(
        service: S,
        head: ReplayHead,
        source: Capture,
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
    pub(crate) fn prepare(&mut self, tracker: &Arc<Tracker>, hedge: bool) -> Result<(), NoReplay> {
        let route = self.head.route.as_ref().ok_or(NoReplay::Exhausted)?;
        let next = tracker
            .next_candidate(route, self.tried)
            .ok_or(NoReplay::Exhausted)?;
        if !self.source.kept_within(tracker.config.body_cap) {
            tracker.counters.add(Counter::BodyTooLarge);
            return Err(NoReplay::BodyTooLarge);
        }
        if !tracker.budget.withdraw(tracker.now()) {
            tracker.counters.add(Counter::BudgetDenied);
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
        let attempt = u16::from(self.attempts);
        // The attempt number tells the layers below (shadowing) a replay or
        // a hedge from a first attempt.
        let route = route
            .retarget(next.stats.id.clone(), role)
            .with_attempt(attempt);
        let mut parts = self.head.to_parts(route);
        let tag = self.head.tag.with_number(attempt);
        parts.headers.insert(&ATTEMPT_HEADER, tag.header_value());
        if hedge {
            tracker.counters.add(Counter::Hedges);
            tracing::debug!(instance = %next.stats.id, attempt = self.attempts, "hedging");
        } else {
            tracker.counters.add(Counter::Replays);
            tracing::debug!(instance = %next.stats.id, attempt = self.attempts, "replaying");
        }
        self.next = Some(Box::new((
            Request::from_parts(parts, body),
            next,
            tracker.clone(),
        )));
        Ok(())
    }

    pub(crate) fn more_candidates(&self) -> bool {
        (self.tried.count_ones() as usize) < self.candidates
    }
}
