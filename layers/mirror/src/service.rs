//! The [`SessionMirror`] service.

use std::sync::Arc;
use std::task::{Context, Poll};

use foresight_core::BoxError;
use foresight_core::Role;
use foresight_core::attempt::Attempt;
use foresight_core::error::ErrorResponse;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{Either, Full};
use tower_service::Service;

use crate::carrier::Presented;
use crate::config::Config;
use crate::error::SessionError;
use crate::future::{MirrorBody, ResponseFuture};
use crate::idempotency::{self, KeyHeader};
use crate::keyed;
use crate::persist::{Outcome, persist, warm};
use crate::session::Session;

/// Service made by [`SessionMirrorLayer`](crate::SessionMirrorLayer): see
/// the [crate docs](crate) for what it does and for examples.
#[derive(Clone, Debug)]
pub struct SessionMirror<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> SessionMirror<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Gives up the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// Whether the routing tier marked `req` as a shadow copy: read as the
/// routing tier reads it ([`Role::of_headers`]: any case, surrounding
/// whitespace trimmed, any of several values).
fn is_shadow<B>(req: &Request<B>) -> bool {
    Role::of_headers(req.headers()) == Some(Role::Shadow)
}

fn error_response<B>(err: &SessionError) -> Response<MirrorBody<B>> {
    tracing::debug!(error = %err, "session failure answered");
    foresight_core::edge::into_response(ErrorResponse::from_error(err)).map(Either::Right)
}

fn empty<B>(status: StatusCode) -> Response<MirrorBody<B>> {
    let mut response = Response::new(Either::Right(Full::default()));
    *response.status_mut() = status;
    response
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionMirror<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<MirrorBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let config = self.config.clone();
        let presented = config.carrier.read(req.headers());
        let shadow = is_shadow(&req);

        if shadow && !config.shadow_runs_handler {
            // The primary already applied the request: only warm up here.
            return ResponseFuture::new(async move {
                Ok(match warm(&config, presented).await {
                    Ok(true) => empty(StatusCode::NO_CONTENT),
                    Ok(false) if presented == Presented::None => empty(StatusCode::NO_CONTENT),
                    Ok(false) => empty(StatusCode::NOT_FOUND),
                    Err(e) => error_response(&e),
                })
            });
        }

        let id = match presented {
            Presented::Id(id) => Some(id),
            Presented::None | Presented::Malformed => None,
        };
        let attempt = Attempt::of_headers(req.headers());
        let key = match idempotency::key_of(req.method(), req.headers()) {
            KeyHeader::Invalid => {
                let err = SessionError::InvalidIdempotencyKey;
                return ResponseFuture::new(async move { Ok(error_response(&err)) });
            }
            KeyHeader::Key(key) if config.idempotency && id.is_some() => Some(key),
            KeyHeader::Key(_) | KeyHeader::Absent => None,
        };
        let session = Session::new(config.clone(), id, attempt);
        let state = session.shares();
        req.extensions_mut().insert(session);

        // Take the service that was driven to readiness; leave a clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if let Some(key) = key {
            return ResponseFuture::new(async move {
                Ok(match keyed::call(config, state, inner, req, key).await? {
                    Ok(response) => response,
                    Err(e) => error_response(&e),
                })
            });
        }
        ResponseFuture::new(async move {
            let response = inner.call(req).await?;
            if shadow {
                // The handler ran for a shadow copy: its session changes are
                // not applied a second time.
                return Ok(response.map(Either::Left));
            }
            let mut state = state.lock().await;
            match persist(&config, &mut state).await {
                Ok(outcome) => {
                    let mut response = response.map(Either::Left);
                    match outcome {
                        Outcome::Nothing => {}
                        Outcome::SetId(id) => {
                            config.carrier.write(response.headers_mut(), Some(id))
                        }
                        Outcome::ClearId => config.carrier.write(response.headers_mut(), None),
                    }
                    Ok(response)
                }
                Err(e) => Ok(error_response(&e)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use foresight_core::ROLE_HEADER;
    use foresight_store::MemoryStore;
    use http::HeaderValue;
    use tower::{Layer, ServiceExt, service_fn};

    use super::*;
    use crate::SessionMirrorLayer;

    /// The status of a request carrying the role header `values`, and
    /// whether it reached the handler.
    async fn send(values: &[&'static str]) -> (StatusCode, bool) {
        let calls = Arc::new(AtomicUsize::new(0));
        let handler = service_fn({
            let calls = calls.clone();
            move |_: Request<()>| {
                calls.fetch_add(1, Ordering::Relaxed);
                async { Ok::<_, Infallible>(Response::new(Full::<bytes::Bytes>::default())) }
            }
        });
        let service = SessionMirrorLayer::new(MemoryStore::new()).layer(handler);
        let mut request = Request::new(());
        for value in values {
            request
                .headers_mut()
                .append(&ROLE_HEADER, HeaderValue::from_static(value));
        }
        let response = service.oneshot(request).await.unwrap();
        (response.status(), calls.load(Ordering::Relaxed) == 1)
    }

    #[tokio::test]
    async fn a_shadow_mark_in_any_case_skips_the_handler() {
        for role in ["shadow", "Shadow", "SHADOW", " shadow", "shadow\t"] {
            assert_eq!(
                send(&[role]).await,
                (StatusCode::NO_CONTENT, false),
                "{role:?}"
            );
        }
        assert_eq!(
            send(&["primary", "Shadow"]).await,
            (StatusCode::NO_CONTENT, false)
        );
    }

    #[tokio::test]
    async fn other_roles_reach_the_handler() {
        for values in [&[][..], &["primary"], &["shadows"], &["sha dow"]] {
            assert_eq!(send(values).await, (StatusCode::OK, true), "{values:?}");
        }
    }
}
