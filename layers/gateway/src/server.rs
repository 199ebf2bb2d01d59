//! The public listener: a connection limit, HTTP/1.1 and HTTP/2, the
//! header-read timeout (answered with a 408) and the idle timeout, and a graceful
//! drain.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use foresight::core::key::PeerAddr;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::{Service, ServiceExt};

use crate::conn::{ConnState, SharedStream, Verdict};

/// The answer to a client whose request head is late.
const REQUEST_TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// How the listener treats connections.
#[derive(Clone, Copy, Debug)]
pub struct ListenerLimits {
    /// Most connections open at once; further ones wait in the accept queue.
    pub max_connections: usize,
    /// Time to receive a request head (408 after it).
    pub header_read_timeout: Duration,
    /// How long an idle keep-alive connection stays open.
    pub idle_timeout: Duration,
    /// How long open connections may finish once a drain starts.
    pub drain_timeout: Duration,
}

/// Serves `service` on `listener` until `shutdown` turns true, then stops
/// accepting, asks every connection to finish its current requests, and
/// waits up to the drain timeout for them.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    limits: ListenerLimits,
    mut shutdown: watch::Receiver<bool>,
) where
    S: Service<Request<Incoming>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<axum::BoxError>,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("never closed"),
            () = stopped(&mut shutdown) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors and the like: back off a little.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut shutdown) => break,
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            serve_connection(stream, peer, service, limits, shutdown).await;
            drop(permit);
        });
        // Reap finished connection tasks so the set stays small.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let drained = tokio::time::timeout(limits.drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = connections.len(),
            "drain timeout: closing the remaining connections"
        );
        connections.abort_all();
    }
}

async fn serve_connection<S>(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    service: S,
    limits: ListenerLimits,
    mut shutdown: watch::Receiver<bool>,
) where
    S: Service<Request<Incoming>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<axum::BoxError>,
{
    let state = Arc::new(ConnState::new());
    let shared = SharedStream::new(stream, state.clone());
    let per_request = PerRequest {
        service,
        state: state.clone(),
        peer,
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Some(limits.idle_timeout / 2));
    let connection =
        builder.serve_connection_with_upgrades(TokioIo::new(shared.clone()), per_request);
    let mut connection = std::pin::pin!(connection);
    let mut draining = false;
    loop {
        let wake = match state.verdict(limits.header_read_timeout, limits.idle_timeout) {
            Verdict::Wait(at) => at,
            Verdict::HeaderTimeout => {
                metrics::counter!("foresight_gateway_header_timeouts_total").increment(1);
                shared.answer_and_close(REQUEST_TIMEOUT).await;
                return;
            }
            Verdict::Idle => {
                if !draining {
                    draining = true;
                    connection.as_mut().graceful_shutdown();
                }
                tokio::time::Instant::now() + limits.drain_timeout
            }
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
                return;
            }
            _ = tokio::time::sleep_until(wake) => {
                if draining && tokio::time::Instant::now() >= wake {
                    return;
                }
            }
            () = stopped(&mut shutdown), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Resolves once `shutdown` is true (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// An error of the public service, which hyper answers by closing the
/// connection.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ServiceError(axum::BoxError);

/// The connection's hyper service: each request gets the peer address and
/// an in-flight count, and is served by one clone of the public service
/// (readied, then called).
struct PerRequest<S> {
    service: S,
    state: Arc<ConnState>,
    peer: SocketAddr,
}

impl<S> hyper::service::Service<Request<Incoming>> for PerRequest<S>
where
    S: Service<Request<Incoming>, Response = Response<Body>> + Clone,
    S::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = ServiceError;
    type Future = PerRequestFuture<tower::util::Oneshot<S, Request<Incoming>>>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(PeerAddr(self.peer));
        PerRequestFuture {
            guard: Some(InFlight::start(self.state.clone())),
            call: self.service.clone().oneshot(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// Response future of [`PerRequest`]: the call, and its in-flight
    /// count, released when the call ends or the future is dropped.
    struct PerRequestFuture<F> {
        #[pin]
        call: F,
        guard: Option<InFlight>,
    }
}

impl<F, E> std::future::Future for PerRequestFuture<F>
where
    F: std::future::Future<Output = Result<Response<Body>, E>>,
    E: Into<axum::BoxError>,
{
    type Output = Result<Response<Body>, ServiceError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.call.poll(cx));
        this.guard.take();
        std::task::Poll::Ready(response.map_err(|e| ServiceError(e.into())))
    }
}

/// Counts a request as in flight on its connection until dropped, so a
/// cancelled request is counted out too.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn start(state: Arc<ConnState>) -> Self {
        state.request_started();
        Self(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// Resolves when the process gets SIGTERM or SIGINT.
pub async fn termination() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
