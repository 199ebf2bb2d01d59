use std::fmt;
use std::future::poll_fn;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use foresight_core::body::PendingCopy;
use foresight_core::{BoxError, InstanceId, ROLE_HEADER, Role, Route, RouteBody};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode, Version};
use http_body::{Body, SizeHint};
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::layer::Shared;
use crate::policy::Decision;

/// Service of [`ShadowWriteLayer`](crate::ShadowWriteLayer); see the
/// [crate docs](crate) for the examples.
pub struct ShadowWrite<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
}

impl<S: Clone> Clone for ShadowWrite<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for ShadowWrite<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShadowWrite")
            .field("inner", &self.inner)
            .field("config", &self.shared.config)
            .finish()
    }
}

impl<S> ShadowWrite<S> {
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

/// A shadow that passed every check.
struct Plan {
    secondary: InstanceId,
    permit: OwnedSemaphorePermit,
    runtime: Handle,
}

/// Where the shadow's body comes from.
enum Source {
    Ready,
    Pending(PendingCopy),
}

static SHADOW: HeaderValue = HeaderValue::from_static("shadow");

impl<S> ShadowWrite<S> {
    /// Whether and where to shadow `request`; counts the drops.
    fn plan<B: Body>(&self, request: &Request<B>) -> Option<Plan> {
        let shared = &self.shared;
        let config = &shared.config;
        let route = request.extensions().get::<Route>()?;
        // Only first attempts are shadowed: never a replay, never a shadow.
        if route.role == Role::Shadow || !route.is_first_attempt() {
            return None;
        }
        let Decision::Shadow {
            write,
            sample,
            coalesce,
        } = config.policy.decide(request.method(), request.uri().path())
        else {
            shared.counters.skipped_by_policy.bump();
            return None;
        };
        // A write goes to a shadow-aware instance or nowhere.
        if write && !config.policy.any_shadow_aware() {
            shared.counters.skipped_by_policy.bump();
            return None;
        }
        let sampling = config.sampling * sample;
        if sampling < 1.0 && rand::random::<f64>() >= sampling {
            return None;
        }
        let at = route.ranked.iter().position(|c| *c == route.target)?;
        let after = &route.ranked[at + 1..];
        if after.is_empty() {
            return None;
        }
        let secondary = {
            let members = shared.topology.load();
            after
                .iter()
                .find(|id| {
                    members
                        .get(id)
                        .is_some_and(|i| i.health().state().is_healthy())
                })
                .cloned()
        };
        let Some(secondary) = secondary else {
            shared.counters.dropped_unhealthy.bump();
            return None;
        };
        if write && !config.policy.is_shadow_aware(&secondary) {
            shared.counters.skipped_by_policy.bump();
            return None;
        }
        let hint = request.body().size_hint();
        if hint.lower() > config.body_cap as u64 {
            shared.counters.dropped_body.bump();
            return None;
        }
        // A warm-up dropped below for want of room still counts as the
        // session's for the interval: under overload, fewer copies.
        if !coalesce.is_zero() && !shared.coalescer.admit(&route.key, &secondary, coalesce) {
            shared.counters.coalesced.bump();
            return None;
        }
        let Some(semaphore) = shared.semaphore(&secondary) else {
            shared.counters.dropped_unhealthy.bump();
            return None;
        };
        let Ok(permit) = semaphore.try_acquire_owned() else {
            shared.counters.dropped_full.bump();
            return None;
        };
        let Ok(runtime) = Handle::try_current() else {
            shared.counters.dropped_no_runtime.bump();
            return None;
        };
        Some(Plan {
            secondary,
            permit,
            runtime,
        })
    }
}

/// The body's length as its request declares it: the body's exact size
/// hint, else its `content-length`, else, in HTTP/1 without
/// `transfer-encoding`, zero (RFC 9112 §6.3). Body wrappers (timeouts,
/// limits) may hide the hint, so the head is read too.
fn declared_length(parts: &Parts, hint: SizeHint) -> Option<u64> {
    if let Some(exact) = hint.exact() {
        return Some(exact);
    }
    if parts.headers.contains_key(TRANSFER_ENCODING) {
        return None;
    }
    match parts.headers.get(CONTENT_LENGTH) {
        Some(value) => value.to_str().ok()?.trim().parse().ok(),
        None if parts.version < Version::HTTP_2 => Some(0),
        None => None,
    }
}

fn copy_head(parts: &Parts, route: Option<&Route>, secondary: InstanceId) -> Parts {
    let (mut copy, ()) = Request::new(()).into_parts();
    copy.method = parts.method.clone();
    copy.uri = parts.uri.clone();
    copy.version = parts.version;
    copy.headers = parts.headers.clone();
    copy.headers.insert(ROLE_HEADER.clone(), SHADOW.clone());
    if let Some(route) = route {
        copy.extensions
            .insert(route.retarget(secondary, Role::Shadow));
    }
    copy
}

impl<S, B, RB> Service<Request<B>> for ShadowWrite<S>
where
    S: Service<Request<RouteBody>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    RB: Body + Send + 'static,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let config = &self.shared.config;
        if config.trusted {
            // Compared as the instance compares it: any case, surrounding
            // whitespace trimmed.
            if Role::of_headers(request.headers()) == Some(Role::Shadow) {
                return ResponseFuture::new(self.inner.call(request.map(RouteBody::new)), None);
            }
        } else if Role::strip(request.headers_mut()) {
            // A client must not be able to forge shadow requests (the
            // routing tier's ShardLayer strips them first; this holds in a
            // stack without one too).
            self.shared.counters.stripped.bump();
        }
        let plan = if config.sampling > 0.0 {
            self.plan(&request)
        } else {
            None
        };
        let Some(plan) = plan else {
            return ResponseFuture::new(self.inner.call(request.map(RouteBody::new)), None);
        };

        let (parts, body) = request.into_parts();
        let mut body = RouteBody::new(body);
        let head = copy_head(&parts, parts.extensions.get::<Route>(), plan.secondary);
        let expected = declared_length(&parts, body.size_hint());
        // An empty body may never be polled at all (hyper's client sends no
        // body for a GET of unknown length): nothing to wait for.
        let source = if body.is_end_stream() || expected == Some(0) {
            Source::Ready
        } else {
            // The copy comes from the request's body capture, shared with a
            // failover layer above when there is one.
            Source::Pending(body.copy_once_read(config.body_cap, expected))
        };
        // A write's copy waits for the primary's answer: the primary has
        // then saved the session, and the secondary warms up with the new
        // version instead of caching the one the write replaces.
        let after_primary = !parts.method.is_safe();
        let (status_tx, status_rx) = if config.compare || after_primary {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        self.shared.counters.sent.bump();
        // The copy readies its own clone of the service inside the task;
        // the primary keeps the readiness reserved by `poll_ready`.
        plan.runtime.spawn(shadow(
            self.inner.clone(),
            head,
            source,
            Primary {
                status: status_rx,
                wait: after_primary,
            },
            self.shared.clone(),
            plan.permit,
        ));
        ResponseFuture::new(self.inner.call(Request::from_parts(parts, body)), status_tx)
    }
}

enum End {
    Completed,
    Failed,
    BodyDropped,
}

/// What the copy learns of the primary: its status (when compared, or
/// waited for), and whether the copy is sent only once it is known.
struct Primary {
    status: Option<oneshot::Receiver<StatusCode>>,
    wait: bool,
}

/// Sends one shadow and discards its response. Bounded by the timeout; the
/// permit is held until it ends.
async fn shadow<S, RB>(
    mut service: S,
    head: Parts,
    source: Source,
    primary: Primary,
    shared: Arc<Shared>,
    permit: OwnedSemaphorePermit,
) where
    S: Service<Request<RouteBody>, Response = Response<RB>>,
    RB: Body,
{
    let counters = &shared.counters;
    let work = async {
        let body = match source {
            Source::Ready => RouteBody::empty(),
            Source::Pending(copy) => match copy.await {
                Some(body) => body,
                None => return End::BodyDropped,
            },
        };
        let Primary {
            status: mut primary_status,
            wait,
        } = primary;
        // A primary that fails or goes away still leaves the copy useful:
        // it only warms the secondary.
        let mut known = None;
        if wait && let Some(rx) = primary_status.take() {
            known = rx.await.ok();
        }
        let request = Request::from_parts(head, body);
        if poll_fn(|cx| service.poll_ready(cx)).await.is_err() {
            return End::Failed;
        }
        let Ok(response) = service.call(request).await else {
            return End::Failed;
        };
        let status = response.status();
        // Read the body to its end so the connection can be reused.
        let mut body = pin!(response.into_body());
        while let Some(frame) = poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            if frame.is_err() {
                break;
            }
        }
        let primary = match primary_status {
            Some(rx) => rx.await.ok(),
            None => known,
        };
        if shared.config.compare
            && let Some(primary) = primary
            && primary != status
        {
            counters.mismatches.bump();
            tracing::debug!(%primary, shadow = %status, "shadow status differs");
        }
        End::Completed
    };
    match tokio::time::timeout(shared.config.timeout, work).await {
        Ok(End::Completed) => counters.completed.bump(),
        Ok(End::Failed) => counters.failed.bump(),
        Ok(End::BodyDropped) => counters.dropped_body.bump(),
        Err(_) => counters.timed_out.bump(),
    }
    drop(permit);
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use foresight_core::{ClientKey, InstanceSpec, Topology};
    use http_body_util::Empty;
    use tower::{Layer, ServiceExt, service_fn};

    use super::*;
    use crate::ShadowWriteLayer;

    /// Sends a first attempt routed to `a` then `b` and carrying `role`
    /// through `layer`; returns the role header values each request that
    /// reached the leaf carried, and the layer's shadow count.
    async fn send(layer: &ShadowWriteLayer, role: &'static str) -> (Vec<Vec<String>>, u64) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let leaf = service_fn({
            let seen = seen.clone();
            move |request: Request<RouteBody>| {
                let values = request
                    .headers()
                    .get_all(&ROLE_HEADER)
                    .iter()
                    .map(|v| v.to_str().unwrap().to_owned())
                    .collect::<Vec<_>>();
                seen.lock().unwrap().push(values);
                async { Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new())) }
            }
        });
        let ranked = ["a", "b"].map(InstanceId::from).into_iter().collect();
        let mut request = Request::new(Empty::<Bytes>::new());
        request
            .headers_mut()
            .insert(&ROLE_HEADER, HeaderValue::from_static(role));
        request
            .extensions_mut()
            .insert(Route::primary(ClientKey::from("k"), ranked).unwrap());
        layer.layer(leaf).oneshot(request).await.unwrap();
        let sent = layer.stats().sent;
        let seen = seen.lock().unwrap().clone();
        (seen, sent)
    }

    fn topology() -> Topology {
        Topology::from_instances(["a", "b"].map(InstanceSpec::new)).unwrap()
    }

    #[tokio::test]
    async fn a_trusted_hop_reads_the_role_in_any_case() {
        for role in ["shadow", "Shadow", "SHADOW", " shadow"] {
            let layer = ShadowWriteLayer::new(topology()).with_trusted_hop(true);
            let (seen, sent) = send(&layer, role).await;
            // Passed through as a shadow: forwarded once, never copied.
            assert_eq!(seen, vec![vec![role.to_owned()]], "{role:?}");
            assert_eq!(sent, 0, "{role:?} was shadowed again");
        }
    }

    #[tokio::test]
    async fn an_untrusted_hop_strips_the_role_in_any_case() {
        for role in ["shadow", "Shadow", "SHADOW", " shadow", "primary"] {
            let layer = ShadowWriteLayer::new(topology()).with_sampling(0.0);
            let (seen, sent) = send(&layer, role).await;
            assert_eq!(seen, vec![Vec::<String>::new()], "{role:?}");
            assert_eq!(sent, 0);
            assert_eq!(layer.stats().stripped, 1, "{role:?}");
        }
    }
}
