use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::slots::TokenSlots;
use crate::layer::NEXT_TOKEN_HEADER;

type Wait = Pin<Box<dyn Future<Output = ()> + Send>>;

pin_project! {
    #[project = StateProj]
    enum State<S, B, F, R> {
        First { #[pin] future: F, service: Option<S>, retry: Option<Request<B>> },
        Waiting { wait: Wait, service: Option<S>, retry: Option<Request<B>>, response: Option<R> },
        Ready { service: S, request: Option<Request<B>> },
        Retry { #[pin] future: F },
    }
}

pin_project! {
    /// Response future of [`DualToken`](super::DualToken): the first
    /// attempt, then at most one retry with the pre-fetched token.
    pub struct DualTokenFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B, S::Future, S::Response>,
        used: Option<HeaderValue>,
        slots: TokenSlots,
    }
}

impl<S, B> std::fmt::Debug for DualTokenFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DualTokenFuture").finish_non_exhaustive()
    }
}

impl<S, B> DualTokenFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn new(
        future: S::Future,
        service: S,
        retry: Option<Request<B>>,
        used: Option<HeaderValue>,
        slots: TokenSlots,
    ) -> Self {
        Self {
            state: State::First {
                future,
                service: Some(service),
                retry,
            },
            used,
            slots,
        }
    }
}

fn take_delivery<RB>(slots: &TokenSlots, response: &Response<RB>) {
    if let Some(token) = response
        .headers()
        .get(NEXT_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        slots.deliver(token);
    }
}

fn invalid_token<RB>(response: &Response<RB>) -> bool {
    response.status() == StatusCode::UNAUTHORIZED
        && response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .any(|v| v.as_bytes().windows(13).any(|w| w == b"invalid_token"))
}

fn ready_state<S, B, F, R>(
    service: S,
    mut request: Request<B>,
    next: HeaderValue,
) -> State<S, B, F, R> {
    metrics::counter!(crate::metrics::CLIENT_RETRIES).increment(1);
    request.headers_mut().insert(AUTHORIZATION, next);
    State::Ready {
        service,
        request: Some(request),
    }
}

impl<S, B, RB> Future for DualTokenFuture<S, B>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type Output = Result<Response<RB>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::First {
                    future,
                    service,
                    retry,
                } => {
                    let response = ready!(future.poll(cx))?;
                    take_delivery(this.slots, &response);
                    let Some(used) = this.used.as_ref().filter(|_| invalid_token(&response)) else {
                        return Poll::Ready(Ok(response));
                    };
                    if let Some(next) = this.slots.rejected(used) {
                        let (Some(request), Some(service)) = (retry.take(), service.take()) else {
                            return Poll::Ready(Ok(response));
                        };
                        this.state.set(ready_state(service, request, next));
                    } else if let Some(wait) = this.slots.wait_for_delivery() {
                        // The replacement may still be on its way over the
                        // WebSocket.
                        let (service, retry) = (service.take(), retry.take());
                        this.state.set(State::Waiting {
                            wait,
                            service,
                            retry,
                            response: Some(response),
                        });
                    } else {
                        return Poll::Ready(Ok(response));
                    }
                }
                StateProj::Waiting {
                    wait,
                    service,
                    retry,
                    response,
                } => {
                    ready!(wait.as_mut().poll(cx));
                    let next = this
                        .used
                        .as_ref()
                        .and_then(|used| this.slots.rejected(used));
                    match (next, retry.take(), service.take()) {
                        (Some(next), Some(request), Some(service)) => {
                            this.state.set(ready_state(service, request, next));
                        }
                        _ => {
                            let Some(response) = response.take() else {
                                unreachable!("the first response is kept until the wait ends");
                            };
                            return Poll::Ready(Ok(response));
                        }
                    }
                }
                StateProj::Ready { service, request } => {
                    ready!(service.poll_ready(cx))?;
                    let Some(request) = request.take() else {
                        unreachable!("the retry request is taken once");
                    };
                    let future = service.call(request);
                    this.state.set(State::Retry { future });
                }
                StateProj::Retry { future } => {
                    let response = ready!(future.poll(cx))?;
                    take_delivery(this.slots, &response);
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}
