//! [`RecordLoadLayer`]: every request through the routing tier becomes a
//! sample of the shared [`Forecaster`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use foresight_forecast::{Forecaster, RequestGuard};
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

/// Records each request in the forecaster's request rate, latency and error
/// signals (a 5xx or an error counts as an error), so that the forecasts
/// that TokenPrefetchLayer and HealthFailoverLayer read learn from live
/// traffic.
///
/// The sample is taken by a drop guard, so a request whose client gave up
/// still counts, with the latency it had when it was dropped. Cloning the
/// layer shares the forecaster.
///
/// ```
/// use foresight::forecast::{Forecaster, Signal};
/// use foresight::stack::RecordLoadLayer;
/// use tower::{service_fn, Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let forecaster = Forecaster::builder().with_system_sampler(false).build().unwrap();
/// let service = RecordLoadLayer::new(forecaster.clone()).layer(service_fn(|_req: http::Request<()>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(()))
/// }));
/// service.oneshot(http::Request::new(())).await.unwrap();
/// forecaster.tick();
/// let rate = forecaster.forecast(Signal::RequestRate, std::time::Duration::ZERO).unwrap();
/// assert!(rate.mean > 0.0);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RecordLoadLayer {
    forecaster: Forecaster,
}

impl RecordLoadLayer {
    /// Records into `forecaster`.
    pub fn new(forecaster: Forecaster) -> Self {
        Self { forecaster }
    }
}

impl<S> Layer<S> for RecordLoadLayer {
    type Service = RecordLoad<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RecordLoad {
            inner,
            forecaster: self.forecaster.clone(),
        }
    }
}

/// Service of [`RecordLoadLayer`].
#[derive(Clone, Debug)]
pub struct RecordLoad<S> {
    inner: S,
    forecaster: Forecaster,
}

impl<S, B, RB> Service<Request<B>> for RecordLoad<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = RecordLoadFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        RecordLoadFuture {
            guard: Some(self.forecaster.track_request(None)),
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    /// Response future of [`RecordLoad`].
    #[derive(Debug)]
    pub struct RecordLoadFuture<F> {
        #[pin]
        inner: F,
        guard: Option<RequestGuard>,
    }
}

impl<F, RB, E> Future for RecordLoadFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = ready!(this.inner.poll(cx));
        if let Some(mut guard) = this.guard.take() {
            let failed = match &output {
                Ok(response) => response.status().is_server_error(),
                Err(_) => true,
            };
            if failed {
                guard.fail();
            }
        }
        Poll::Ready(output)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use foresight_forecast::Signal;
    use tower::{ServiceExt, service_fn};

    use super::*;

    fn forecaster() -> Forecaster {
        Forecaster::builder()
            .with_step(Duration::from_secs(1))
            .with_system_sampler(false)
            .build()
            .expect("valid settings")
    }

    fn now(f: &Forecaster, signal: Signal) -> f64 {
        f.forecast(signal, Duration::ZERO).expect("a sample").mean
    }

    #[tokio::test]
    async fn requests_and_server_errors_are_recorded() {
        let f = forecaster();
        let service =
            RecordLoadLayer::new(f.clone()).layer(service_fn(|req: Request<u16>| async move {
                let mut response = Response::new(());
                *response.status_mut() = http::StatusCode::from_u16(*req.body()).unwrap();
                Ok::<_, Infallible>(response)
            }));
        for status in [200, 404, 503, 500] {
            service.clone().oneshot(Request::new(status)).await.unwrap();
        }
        f.tick();
        assert_eq!(now(&f, Signal::RequestRate), 4.0);
        assert_eq!(now(&f, Signal::Errors), 2.0);
    }

    #[tokio::test]
    async fn a_dropped_request_still_counts() {
        let f = forecaster();
        let mut service = RecordLoadLayer::new(f.clone()).layer(service_fn(|_req: Request<()>| {
            std::future::pending::<Result<Response<()>, Infallible>>()
        }));
        let future = service.call(Request::new(()));
        drop(future);
        f.tick();
        assert_eq!(now(&f, Signal::RequestRate), 1.0);
        assert_eq!(now(&f, Signal::Errors), 0.0);
    }
}
