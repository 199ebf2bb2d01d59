use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{HeaderValue, Response};
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use super::error::PoolError;
use crate::error::BoxError;
use crate::health::OwnedInFlight;
use crate::instance::InstanceId;
use crate::route::{INSTANCE_HEADER, ServedBy};

pin_project! {
    #[project = StateProj]
    enum State<S, Req, F> {
        // Readying the instance's service. The timer is created only if the
        // service is not ready at the first poll, so the common path sets no
        // timer; it is boxed because it is the rare path.
        Readying {
            service: S,
            request: Option<Req>,
            deadline: Option<Pin<Box<Sleep>>>,
        },
        Calling {
            #[pin]
            future: F,
        },
        Failed {
            error: Option<PoolError>,
        },
    }
}

pin_project! {
    /// Response future of [`Pool`](super::Pool): readies the target's
    /// service, calls it, and records the serving instance on the response.
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S, Req, S::Future>,
        target: Option<InstanceId>,
        // Counts the request in its instance's in-flight load until the
        // response head arrives or the future is dropped.
        in_flight: Option<OwnedInFlight>,
        ready_timeout: Duration,
        instance_header: bool,
    }
}

impl<S: Service<Req>, Req> ResponseFuture<S, Req> {
    pub(super) fn new(
        service: S,
        request: Req,
        target: InstanceId,
        in_flight: OwnedInFlight,
        ready_timeout: Duration,
        instance_header: bool,
    ) -> Self {
        Self {
            state: State::Readying {
                service,
                request: Some(request),
                deadline: None,
            },
            target: Some(target),
            in_flight: Some(in_flight),
            ready_timeout,
            instance_header,
        }
    }

    pub(super) fn failed(error: PoolError) -> Self {
        Self {
            state: State::Failed { error: Some(error) },
            target: None,
            in_flight: None,
            ready_timeout: Duration::ZERO,
            instance_header: false,
        }
    }
}

impl<S, Req, RB> Future for ResponseFuture<S, Req>
where
    S: Service<Req, Response = Response<RB>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<Response<RB>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Failed { error } => {
                    let error = error.take().expect("polled after completion");
                    return Poll::Ready(Err(error.into()));
                }
                StateProj::Readying {
                    service,
                    request,
                    deadline,
                } => match service.poll_ready(cx) {
                    Poll::Ready(Ok(())) => {
                        let request = request.take().expect("polled after completion");
                        let future = service.call(request);
                        this.state.set(State::Calling { future });
                    }
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error.into())),
                    Poll::Pending => {
                        let timeout = *this.ready_timeout;
                        let sleep =
                            deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                        ready!(sleep.as_mut().poll(cx));
                        let instance = this.target.take().expect("polled after completion");
                        metrics::counter!("foresight_pool_errors_total", "kind" => "not_ready")
                            .increment(1);
                        return Poll::Ready(Err(PoolError::NotReady {
                            instance,
                            waited: timeout,
                        }
                        .into()));
                    }
                },
                StateProj::Calling { future } => {
                    let result = ready!(future.poll(cx));
                    this.in_flight.take();
                    let mut response = result.map_err(Into::into)?;
                    let target = this.target.take().expect("polled after completion");
                    if *this.instance_header
                        && let Ok(value) = HeaderValue::from_str(target.as_str())
                    {
                        response
                            .headers_mut()
                            .insert(INSTANCE_HEADER.clone(), value);
                    }
                    response.extensions_mut().insert(ServedBy(target));
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}
