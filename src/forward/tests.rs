use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use foresight_core::body::{BodyFault, ClientBodyError};
use foresight_core::{BoxError, HttpError, InstanceSpec, Topology};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tower::{Layer, Service, ServiceExt};

use super::*;

type Body = Empty<Bytes>;

/// An instance on loopback that answers every request with the `Host` it
/// was sent, but `/hang`, which it never answers, and counts the
/// connections it accepted and saw closed and the requests to `/hang`.
struct TestInstance {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    hanging: Arc<AtomicUsize>,
    close: broadcast::Sender<()>,
}

impl TestInstance {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let hanging = Arc::new(AtomicUsize::new(0));
        let (close, _) = broadcast::channel(1);
        let instance = Self {
            addr,
            accepted: accepted.clone(),
            closed: closed.clone(),
            hanging: hanging.clone(),
            close: close.clone(),
        };
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                accepted.fetch_add(1, SeqCst);
                let mut close = close.subscribe();
                let (closed, hanging) = (closed.clone(), hanging.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let hanging = hanging.clone();
                        async move {
                            if request.uri().path() == "/hang" {
                                hanging.fetch_add(1, SeqCst);
                                std::future::pending::<()>().await;
                            }
                            let host = request.headers()[http::header::HOST].clone();
                            let body = Full::new(Bytes::copy_from_slice(host.as_bytes()));
                            Ok::<_, Infallible>(Response::new(body))
                        }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    let mut connection = std::pin::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => {}
                        _ = close.recv() => {
                            connection.as_mut().graceful_shutdown();
                            let _ = connection.await;
                        }
                    }
                    closed.fetch_add(1, SeqCst);
                });
            }
        });
        instance
    }

    /// Closes the connections open now, as a server whose keep-alive
    /// timeout passed does.
    fn close_open_connections(&self) {
        let _ = self.close.send(());
    }
}

/// Waits, for at most 10 s, until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "never: {what}");
}

fn forward_to<B: Send + 'static>(upstream: &Upstream, addr: Option<SocketAddr>) -> Forward<B> {
    let spec = InstanceSpec::new("a");
    let spec = match addr {
        Some(addr) => spec.with_addr(addr),
        None => spec,
    };
    let topology = Topology::from_instances([spec]).unwrap();
    let members = topology.snapshot();
    Forward::new(upstream, members.iter().next().unwrap())
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Empty::new()).unwrap()
}

async fn text(response: Response<ResponseBody<Body>>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Whether `service` is ready now.
fn ready_now(service: &mut Forward<Body>) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    matches!(service.poll_ready(&mut cx), Poll::Ready(Ok(())))
}

#[tokio::test]
async fn a_dead_instance_is_a_502_with_retry_after() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let forward = forward_to(&Upstream::http(), Some(addr));

    let error = forward.clone().oneshot(get("/")).await.unwrap_err();
    let error = error
        .downcast_ref::<ForwardError>()
        .expect("a ForwardError");
    assert!(matches!(error, ForwardError::Upstream(_)), "{error:?}");
    assert_eq!(error.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));

    // At the edge: a 502 with `retry-after`, and the slot came back.
    let response = crate::edge()
        .layer(forward.clone())
        .oneshot(get("/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(response.headers()[http::header::RETRY_AFTER], "1");
    assert_eq!(
        forward.conns().permits.available_permits(),
        DEFAULT_MAX_CONNECTIONS
    );
}

#[tokio::test]
async fn an_instance_without_an_address_is_a_500() {
    let forward = forward_to::<Body>(&Upstream::http(), None);
    let error = forward.oneshot(get("/")).await.unwrap_err();
    let error = error
        .downcast_ref::<ForwardError>()
        .expect("a ForwardError");
    assert!(matches!(error, ForwardError::NoAddress(id) if id == "a"));
    assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn connections_are_reused_and_requests_get_the_instance_as_host() {
    let instance = TestInstance::start().await;
    let forward = forward_to(&Upstream::http(), Some(instance.addr));
    for _ in 0..3 {
        let response = forward.clone().oneshot(get("/")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(text(response).await, instance.addr.to_string());
    }
    assert_eq!(instance.accepted.load(SeqCst), 1);

    // A client's own `Host` is kept, and an absolute URI is sent in origin
    // form.
    let request = Request::get(format!("http://{}/x?y", instance.addr))
        .header(http::header::HOST, "app.example")
        .body(Empty::new())
        .unwrap();
    let response = forward.clone().oneshot(request).await.unwrap();
    assert_eq!(text(response).await, "app.example");
    assert_eq!(instance.accepted.load(SeqCst), 1);
}

#[tokio::test]
async fn a_connection_the_peer_closed_is_discarded() {
    let instance = TestInstance::start().await;
    let forward = forward_to(&Upstream::http(), Some(instance.addr));
    let response = forward.clone().oneshot(get("/")).await.unwrap();
    text(response).await;
    assert_eq!(forward.conns().idle().open(), 1);

    instance.close_open_connections();
    eventually("the instance closed the connection", || {
        instance.closed.load(SeqCst) == 1
    })
    .await;
    eventually("the pool saw it closed", || {
        forward.conns().idle().open() == 0
    })
    .await;

    let response = forward.clone().oneshot(get("/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    text(response).await;
    assert_eq!(instance.accepted.load(SeqCst), 2);
}

#[tokio::test]
async fn the_pool_is_bounded_and_a_half_read_connection_is_not_reused() {
    let instance = TestInstance::start().await;
    let forward = forward_to(
        &Upstream::http().with_max_connections(1),
        Some(instance.addr),
    );

    let mut first = forward.clone();
    first.ready().await.unwrap();
    let response = first.call(get("/")).await.unwrap();
    // Its body unread, the response holds the only connection.
    let mut second = forward.clone();
    assert!(!ready_now(&mut second));
    assert_eq!(text(response).await, instance.addr.to_string());
    // Read to its end, it gave the connection back.
    assert!(ready_now(&mut second));
    let response = second.call(get("/")).await.unwrap();
    assert_eq!(instance.accepted.load(SeqCst), 1);

    let mut third = forward.clone();
    assert!(!ready_now(&mut third));
    // Dropped unread: the slot comes back, the connection does not.
    drop(response);
    assert!(ready_now(&mut third));
    let response = third.call(get("/")).await.unwrap();
    text(response).await;
    assert_eq!(instance.accepted.load(SeqCst), 2);
    assert_eq!(forward.conns().idle().open(), 1);
}

#[tokio::test]
async fn dropping_the_response_future_releases_the_slot() {
    let instance = TestInstance::start().await;
    let forward = forward_to(
        &Upstream::http().with_max_connections(1),
        Some(instance.addr),
    );

    let mut first = forward.clone();
    first.ready().await.unwrap();
    let call = first.call(get("/hang"));
    fn send<T: Send>(value: T) -> T {
        value
    }
    let task = tokio::spawn(send(call));
    eventually("the request reached the instance", || {
        instance.hanging.load(SeqCst) == 1
    })
    .await;
    let mut second = forward.clone();
    assert!(!ready_now(&mut second));

    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(ready_now(&mut second));
    // The connection of the cancelled exchange was not reused.
    let response = second.call(get("/")).await.unwrap();
    text(response).await;
    assert_eq!(instance.accepted.load(SeqCst), 2);
}

#[tokio::test]
async fn idle_connections_expire() {
    let instance = TestInstance::start().await;
    let upstream = Upstream::http().with_idle_timeout(Duration::from_millis(200));
    let forward = forward_to(&upstream, Some(instance.addr));
    let response = forward.clone().oneshot(get("/")).await.unwrap();
    text(response).await;
    assert_eq!(forward.conns().idle().open(), 1);
    eventually("the idle connection was closed", || {
        instance.closed.load(SeqCst) == 1
    })
    .await;
    assert_eq!(forward.conns().idle().open(), 0);

    // And a new one serves the next request.
    let response = forward.clone().oneshot(get("/")).await.unwrap();
    text(response).await;
    assert_eq!(instance.accepted.load(SeqCst), 2);
}

/// A request body that fails at once, as a client's broken upload does,
/// marked as the client's (as `RouteBody` marks it).
struct BrokenUpload;

impl hyper::body::Body for BrokenUpload {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let broken = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "client went away");
        Poll::Ready(Some(Err(Box::new(ClientBodyError::new(Box::new(broken))))))
    }
}

#[tokio::test]
async fn a_broken_client_body_is_told_apart_and_its_connection_dropped() {
    let instance = TestInstance::start().await;
    let forward = forward_to::<BrokenUpload>(&Upstream::http(), Some(instance.addr));
    let request = Request::post("/").body(BrokenUpload).unwrap();

    let error = forward.clone().oneshot(request).await.unwrap_err();
    assert!(
        matches!(
            error.downcast_ref::<ForwardError>(),
            Some(ForwardError::Upstream(_))
        ),
        "{error:?}"
    );
    // Failover reads whose fault it was from the source chain.
    assert_eq!(
        ClientBodyError::find(error.as_ref()),
        Some(BodyFault::Aborted)
    );
    assert_eq!(forward.conns().idle().open(), 0);
    assert_eq!(
        forward.conns().permits.available_permits(),
        DEFAULT_MAX_CONNECTIONS
    );
}
