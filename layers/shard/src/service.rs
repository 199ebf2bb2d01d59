use std::fmt;
use std::task::{Context, Poll};

use foresight_core::attempt::Attempt;
use foresight_core::key::{KeyExtractor, RequestHead};
use foresight_core::{BoxError, MembersCache, Role, Route};
use http::Request;
use tower_service::Service;

use crate::error::ShardError;
use crate::future::ResponseFuture;
use crate::layer::ShardLayer;

/// Service of [`ShardLayer`]: strips a client-sent
/// [`ROLE_HEADER`](foresight_core::ROLE_HEADER), stores a [`Route`] in each
/// request and passes it on.
pub struct Shard<S, K> {
    pub(crate) inner: S,
    pub(crate) layer: ShardLayer<K>,
    pub(crate) members: MembersCache,
}

impl<S: Clone, K> Clone for Shard<S, K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
            members: self.members.clone(),
        }
    }
}

impl<S: fmt::Debug, K> fmt::Debug for Shard<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shard")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, K> Shard<S, K> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes the router, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, K> Shard<S, K>
where
    K: KeyExtractor,
{
    /// The route of a request: key, ranked candidates, primary target.
    pub fn route<B>(&mut self, request: &Request<B>) -> Result<Route, ShardError> {
        let layer = &self.layer;
        let key = layer
            .missing_key
            .resolve(layer.extractor.extract(&RequestHead::of(request)))
            .map_err(ShardError::Key)?;
        let members = self.members.load();
        let hash = key.hash_with_seed(layer.seed);
        let (ranked, moved) = crate::order::rank(members, hash, layer.replicas, layer.order);
        if moved {
            layer.metrics.bounded_moves.increment(1);
        }
        Route::primary(key, ranked).ok_or(ShardError::NoInstances)
    }
}

impl<S, K, B> Service<Request<B>> for Shard<S, K>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
    K: KeyExtractor,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The tier's entry: only a router of ours may mark a shadow copy
        // or tag an attempt.
        if !self.layer.trusted_hop {
            if Role::strip(request.headers_mut()) {
                self.layer.metrics.role_stripped.increment(1);
                tracing::debug!("client-sent role header stripped");
            }
            Attempt::strip(request.headers_mut());
        }
        match self.route(&request) {
            Ok(route) => {
                self.layer.metrics.routed.increment(1);
                tracing::trace!(target_instance = %route.target, "routed");
                request.extensions_mut().insert(route);
                ResponseFuture::inner(self.inner.call(request))
            }
            Err(error) => {
                let metrics = &self.layer.metrics;
                match &error {
                    ShardError::Key(key) if key.is_missing() => metrics.no_key.increment(1),
                    ShardError::Key(_) => metrics.bad_key.increment(1),
                    _ => metrics.no_instances.increment(1),
                }
                tracing::debug!(%error, "request not routed");
                ResponseFuture::failed(error)
            }
        }
    }
}

#[cfg(test)]
mod tests;
