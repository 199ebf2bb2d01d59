//! A client's broken request body is the client's error, never the
//! instance's.
//!
//! Real sockets end to end: hyper instances on loopback ports, a gateway
//! (hyper server, `ErrorResponseLayer → ShardLayer → HealthFailoverLayer →
//! ShadowWriteLayer → Pool` of hyper-util clients, as the gateway example
//! runs) on another, a
//! malicious client that aborts uploads and sends bad chunk sizes over raw
//! TCP, and an honest client beside it. The instances must stay Healthy,
//! the honest client must see no error, and the malicious one gets `400`.
//!
//! Beside them, the classification alone, over an in-process leaf: an
//! error of the client's body is the client's, an error of the leaf's own
//! is the instance's. And a client cannot forge the shadow role: whatever
//! routing layers a stack holds, a client-sent `x-foresight-role` never
//! reaches an instance.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use foresight_core::edge::ErrorResponseLayer;
use foresight_core::key::HeaderKey;
use foresight_core::{
    BoxError, ClientKey, HealthState, HttpError, InstanceSpec, Pool, ROLE_HEADER, Ranked, Role,
    Route, Topology,
};
use foresight_failover::{FailoverError, HealthFailoverLayer, ReplayBody};
use foresight_shadow::{ShadowBody, ShadowWriteLayer};
use foresight_shard::{ShardError, ShardLayer};
use foresight_testkit::http::serve_gateway;
use http::{Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

/// Malicious requests of each kind per run.
const ROUNDS: usize = 40;

/// An instance that reads the whole request body and answers with its
/// length.
async fn instance(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request: Request<Incoming>| async move {
                        let response = match request.into_body().collect().await {
                            Ok(body) => Response::new(Full::new(Bytes::from(format!(
                                "{name}:{}",
                                body.to_bytes().len()
                            )))),
                            Err(_) => {
                                let mut response = Response::new(Full::default());
                                *response.status_mut() = StatusCode::BAD_REQUEST;
                                response
                            }
                        };
                        Ok::<_, Infallible>(response)
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A gateway over `instances` on a loopback port, and its failover layer.
async fn gateway(
    instances: &[(&'static str, SocketAddr)],
) -> (SocketAddr, Topology, HealthFailoverLayer) {
    let topology = Topology::from_instances(
        instances
            .iter()
            .map(|(name, addr)| InstanceSpec::new(*name).with_addr(*addr)),
    )
    .unwrap();
    let client: Client<HttpConnector, ShadowBody<ReplayBody<Incoming>>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let pool = Pool::new(topology.clone(), move |instance| {
        let addr = instance.spec().addr.expect("instances have addresses");
        let client = client.clone();
        service_fn(
            move |mut request: Request<ShadowBody<ReplayBody<Incoming>>>| {
                let path = request.uri().path().to_owned();
                *request.uri_mut() = format!("http://{addr}{path}").parse().unwrap();
                client.request(request)
            },
        )
    });
    let failover = HealthFailoverLayer::new(topology.clone());
    let stack = ServiceBuilder::new()
        .layer(
            ErrorResponseLayer::new()
                .classify::<ShardError>()
                .classify::<FailoverError>(),
        )
        .layer(
            ShardLayer::new(topology.clone(), HeaderKey::new("x-session"))
                .with_replicas(instances.len()),
        )
        .layer(failover.clone())
        .layer(ShadowWriteLayer::new(topology.clone()))
        .service(pool);
    (serve_gateway(stack).await, topology, failover)
}

/// The status line and body of a raw HTTP/1.1 response read to EOF.
async fn read_response(stream: &mut TcpStream) -> (Option<u16>, String) {
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    (status, text)
}

fn head(method: &str, framing: &str) -> String {
    format!("{method} /upload HTTP/1.1\r\nhost: gateway\r\nx-session: mallory\r\n{framing}\r\n\r\n")
}

/// Sends half of a declared body, then closes the socket.
async fn abort_upload(gateway: SocketAddr, method: &str) {
    let mut stream = TcpStream::connect(gateway).await.unwrap();
    stream
        .write_all(head(method, "content-length: 100000").as_bytes())
        .await
        .unwrap();
    stream.write_all(&[b'x'; 50_000]).await.unwrap();
    // Let the gateway start forwarding before the upload stops.
    tokio::time::sleep(Duration::from_millis(2)).await;
    drop(stream);
}

/// Sends a valid chunk, then a chunk size that is not hexadecimal; returns
/// the gateway's answer.
async fn bad_chunk(gateway: SocketAddr, method: &str) -> (Option<u16>, String) {
    let mut stream = TcpStream::connect(gateway).await.unwrap();
    stream
        .write_all(head(method, "transfer-encoding: chunked").as_bytes())
        .await
        .unwrap();
    stream.write_all(b"5\r\nhello\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(2)).await;
    stream.write_all(b"zz\r\nhello\r\n").await.unwrap();
    read_response(&mut stream).await
}

/// An honest client: small uploads and reads, each checked, until `stop`.
async fn honest(gateway: SocketAddr, stop: Arc<AtomicBool>) -> (u64, Vec<String>) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut sent = 0u64;
    let mut errors = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let method = if sent.is_multiple_of(2) {
            Method::POST
        } else {
            Method::GET
        };
        let body = if method == Method::POST { "hello" } else { "" };
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{gateway}/echo"))
            .header("x-session", format!("alice-{}", sent % 16))
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap();
        sent += 1;
        match client.request(request).await {
            Ok(response) if response.status() == StatusCode::OK => {
                let _ = response.into_body().collect().await;
            }
            Ok(response) => errors.push(format!("status {}", response.status())),
            Err(error) => errors.push(format!("transport: {error}")),
        }
    }
    (sent, errors)
}

/// Runs the malicious and the honest client together against `instances`
/// and checks that nothing counts against the instances.
async fn run(names: &[&'static str], method: &'static str) {
    let mut instances = Vec::new();
    for name in names {
        instances.push((*name, instance(name).await));
    }
    let (gateway, topology, failover) = gateway(&instances).await;

    let stop = Arc::new(AtomicBool::new(false));
    let honest = tokio::spawn(honest(gateway, stop.clone()));
    let answered = AtomicU64::new(0);
    for round in 0..ROUNDS {
        abort_upload(gateway, method).await;
        let (status, text) = bad_chunk(gateway, method).await;
        if let Some(status) = status {
            answered.fetch_add(1, Ordering::Relaxed);
            assert_eq!(status, 400, "round {round}: bad chunking answered {text:?}");
            for name in names {
                assert!(
                    !text.contains(name),
                    "the answer names instance {name}: {text:?}"
                );
            }
        }
        for name in names {
            let slot = topology.health(&(*name).into()).unwrap();
            assert_eq!(slot.state(), HealthState::Healthy, "round {round}: {name}");
            // Not one failure was recorded against the instance.
            assert_eq!(
                slot.error_ratio(),
                0.0,
                "round {round}: {name}'s error ratio"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (sent, errors) = honest.await.unwrap();

    let stats = failover.stats();
    println!(
        "{method} over {} instance(s): {ROUNDS} aborted uploads, {ROUNDS} bad chunk sizes \
         ({} answered 400), {sent} honest requests, {} honest errors; {stats:?}",
        names.len(),
        answered.load(Ordering::Relaxed),
        errors.len()
    );
    assert!(
        errors.is_empty(),
        "the honest client saw errors: {errors:?}"
    );
    assert!(sent > 0, "the honest client sent nothing");
    assert_eq!(stats.ejections, 0);
    assert_eq!(stats.ejections_suppressed, 0);
    assert_eq!(stats.replays, 0, "a broken client body was replayed");
    // Every bad chunk size still read by the client was answered 400.
    assert_eq!(answered.load(Ordering::Relaxed), ROUNDS as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_uploads_through_one_instance_do_not_eject_it() {
    run(&["alpha"], "POST").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_replayable_uploads_do_not_eject_or_fail_over() {
    // A PUT is idempotent: its body goes through the replay buffer, and a
    // failure of the instance would be replayed on the other one.
    run(&["alpha", "beta"], "PUT").await;
}

/// A client body that sends one chunk, then fails with `kind`, as hyper's
/// server body does on an aborted upload or a bad chunk size.
struct BrokenBody {
    sent: bool,
    kind: io::ErrorKind,
}

impl http_body::Body for BrokenBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.sent {
            return Poll::Ready(Some(Err(io::Error::new(self.kind, "client body"))));
        }
        self.sent = true;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"abc")))))
    }
}

/// The leaf's own error around the body error, as hyper-util's client
/// reports a failed request body.
#[derive(Debug, thiserror::Error)]
#[error("request failed")]
struct LeafError(#[source] BoxError);

/// Sends a `method` request with `body` through the layer to a leaf that
/// reads the body (and, if `leaf_fails`, fails on its own instead).
/// Returns the error, the number of leaf calls and the topology.
async fn classify<B>(method: Method, body: B, leaf_fails: bool) -> (BoxError, usize, Topology)
where
    B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static,
{
    let topology = Topology::from_instances(["a", "b"].map(InstanceSpec::new)).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let leaf = service_fn({
        let calls = calls.clone();
        move |request: Request<ReplayBody<B>>| {
            calls.fetch_add(1, Ordering::Relaxed);
            async move {
                if leaf_fails {
                    return Err(LeafError("connection reset by the instance".into()));
                }
                match request.into_body().collect().await {
                    Ok(_) => Ok(Response::new(())),
                    Err(error) => Err(LeafError(error)),
                }
            }
        }
    });
    let service = HealthFailoverLayer::new(topology.clone()).layer(leaf);
    let ranked: Ranked = ["a", "b"].map(Into::into).into_iter().collect();
    let mut request = Request::builder().method(method).body(body).unwrap();
    request
        .extensions_mut()
        .insert(Route::primary(ClientKey::from("k"), ranked).unwrap());
    let error = service.oneshot(request).await.unwrap_err();
    (error, calls.load(Ordering::Relaxed), topology)
}

fn failover_error(error: &BoxError) -> &FailoverError {
    error
        .downcast_ref::<FailoverError>()
        .expect("a FailoverError")
}

fn error_ratio(topology: &Topology, id: &str) -> f64 {
    topology.health(&id.into()).unwrap().error_ratio()
}

#[tokio::test]
async fn a_client_body_error_is_the_clients_and_blames_no_instance() {
    let cases = [
        (
            Method::POST,
            io::ErrorKind::InvalidData,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            io::ErrorKind::UnexpectedEof,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            io::ErrorKind::TimedOut,
            StatusCode::REQUEST_TIMEOUT,
        ),
        // Replayable: the body goes through the replay buffer.
        (
            Method::PUT,
            io::ErrorKind::InvalidInput,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            io::ErrorKind::UnexpectedEof,
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (method, kind, status) in cases {
        let body = BrokenBody { sent: false, kind };
        let (error, calls, topology) = classify(method.clone(), body, false).await;
        let error = failover_error(&error);
        assert!(error.is_client_error(), "{method} {kind:?}: {error}");
        assert_eq!(error.status(), status, "{method} {kind:?}");
        assert_eq!(calls, 1, "{method} {kind:?}: replayed");
        assert_eq!(error_ratio(&topology, "a"), 0.0, "{method} {kind:?}");
    }
}

#[tokio::test]
async fn a_body_over_a_limit_blames_no_instance() {
    // A body limit at the edge (tower-http, axum) fails the body midway
    // with `LengthLimitError`; it reaches the client as a 400.
    for method in [Method::POST, Method::PUT] {
        let body = http_body_util::Limited::new(Full::new(Bytes::from_static(b"0123456789")), 4);
        let (error, calls, topology) = classify(method.clone(), body, false).await;
        let error = failover_error(&error);
        assert!(
            matches!(error, FailoverError::ClientBodyAborted { .. }),
            "{method}: {error}"
        );
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert_eq!(calls, 1, "{method}: replayed");
        assert_eq!(error_ratio(&topology, "a"), 0.0, "{method}");
    }
}

#[tokio::test]
async fn an_error_of_the_leaf_itself_is_the_instances() {
    let body = BrokenBody {
        sent: false,
        kind: io::ErrorKind::InvalidData,
    };
    let (error, calls, topology) = classify(Method::POST, body, true).await;
    let error = failover_error(&error);
    assert!(
        matches!(error, FailoverError::Failed { instance, .. } if instance.as_str() == "a"),
        "{error}"
    );
    assert_eq!(error.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(calls, 1);
    assert_eq!(error_ratio(&topology, "a"), 1.0);
}

/// What each request that reached an instance carried: its route's role
/// and its role header values.
type Seen = Arc<Mutex<Vec<(Option<Role>, Vec<String>)>>>;

/// A pool whose instances record what reached them.
fn recording_pool<B: Send + 'static>(
    topology: &Topology,
    seen: &Seen,
) -> Pool<
    impl Service<Request<B>, Response = Response<Full<Bytes>>, Error = Infallible, Future: Send>
    + Clone
    + Send
    + 'static,
> {
    let seen = seen.clone();
    Pool::new(topology.clone(), move |_instance| {
        let seen = seen.clone();
        service_fn(move |request: Request<B>| {
            let role = request.extensions().get::<Route>().map(|r| r.role);
            let values = request
                .headers()
                .get_all(&ROLE_HEADER)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect();
            seen.lock().unwrap().push((role, values));
            async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok")))) }
        })
    })
}

/// Forged role header values a client might send, one request each.
const FORGED: [&[&str]; 6] = [
    &["shadow"],
    &["Shadow"],
    &["SHADOW"],
    &[" shadow"],
    &["primary", "shadow"],
    &["secondary"],
];

/// Sends one request per entry of [`FORGED`] through `service` and checks
/// that none reached an instance with a role header; shadow copies the
/// stack made itself (route role `Shadow`) must carry exactly `shadow`.
async fn forged_roles_never_reach_an_instance<S>(service: S, seen: &Seen)
where
    S: Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = BoxError> + Clone,
{
    for (i, values) in FORGED.iter().enumerate() {
        let mut request = Request::builder()
            .uri("/")
            .header("x-session", format!("client-{i}"))
            .body(Full::new(Bytes::from_static(b"")))
            .unwrap();
        for value in *values {
            request
                .headers_mut()
                .append(&ROLE_HEADER, http::HeaderValue::from_static(value));
        }
        let response = service.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    // Shadow copies run on tasks of their own.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    let seen = seen.lock().unwrap().clone();
    let (copies, requests): (Vec<_>, Vec<_>) = seen
        .into_iter()
        .partition(|(role, _)| *role == Some(Role::Shadow));
    assert_eq!(requests.len(), FORGED.len(), "{requests:?}");
    for (role, values) in &requests {
        assert!(values.is_empty(), "a {role:?} request carried {values:?}");
    }
    for (_, values) in &copies {
        assert_eq!(values, &["shadow"]);
    }
}

fn two_instances() -> Topology {
    Topology::from_instances(["a", "b"].map(InstanceSpec::new)).unwrap()
}

fn shard(topology: &Topology) -> ShardLayer<HeaderKey> {
    ShardLayer::new(topology.clone(), HeaderKey::new("x-session"))
}

#[tokio::test]
async fn a_forged_role_never_reaches_an_instance_through_shard_alone() {
    let topology = two_instances();
    let seen = Seen::default();
    let service = ServiceBuilder::new()
        .layer(shard(&topology))
        .service(recording_pool::<Full<Bytes>>(&topology, &seen));
    forged_roles_never_reach_an_instance(service, &seen).await;
}

#[tokio::test]
async fn a_forged_role_never_reaches_an_instance_through_shard_and_failover() {
    let topology = two_instances();
    let seen = Seen::default();
    let service = ServiceBuilder::new()
        .layer(shard(&topology))
        .layer(HealthFailoverLayer::new(topology.clone()))
        .service(recording_pool::<ReplayBody<Full<Bytes>>>(&topology, &seen));
    forged_roles_never_reach_an_instance(service, &seen).await;
}

#[tokio::test]
async fn a_forged_role_never_reaches_an_instance_through_shard_failover_and_shadow() {
    let topology = two_instances();
    let seen = Seen::default();
    let shadow = ShadowWriteLayer::new(topology.clone());
    let service = ServiceBuilder::new()
        .layer(shard(&topology))
        .layer(HealthFailoverLayer::new(topology.clone()))
        .layer(shadow.clone())
        .service(recording_pool::<
            foresight_shadow::ShadowBody<ReplayBody<Full<Bytes>>>,
        >(&topology, &seen));
    forged_roles_never_reach_an_instance(service, &seen).await;
    // Every request was shadowed, as a first attempt, and the stack's own
    // copies were marked.
    assert_eq!(shadow.stats().sent, FORGED.len() as u64);
    assert_eq!(shadow.stats().completed, FORGED.len() as u64);
    // The entry stripped the forged headers before the shadow layer saw
    // them.
    assert_eq!(shadow.stats().stripped, 0);
}

/// A client body fed by a channel: each message is a chunk, and the body
/// ends when the sender is dropped.
struct ChannelBody(tokio::sync::mpsc::UnboundedReceiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

fn put(
    chunks: &[&'static str],
    delay_ms: u64,
) -> (
    Request<ChannelBody>,
    tokio::sync::mpsc::UnboundedSender<Bytes>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for chunk in chunks {
        tx.send(Bytes::from_static(chunk.as_bytes())).unwrap();
    }
    let ranked: Ranked = ["a", "b"].map(Into::into).into_iter().collect();
    let mut request = Request::builder()
        .method(Method::PUT)
        .header("x-delay-ms", delay_ms)
        .body(ChannelBody(rx))
        .unwrap();
    request
        .extensions_mut()
        .insert(Route::primary(ClientKey::from("k"), ranked).unwrap());
    (request, tx)
}

#[tokio::test(start_paused = true)]
async fn a_client_slow_to_send_its_body_does_not_time_the_instance_out() {
    let topology = two_instances();
    let calls = Arc::new(Mutex::new(Vec::new()));
    // Reads the whole body after `x-delay-ms`, then names its instance.
    let leaf = service_fn({
        let calls = calls.clone();
        move |request: Request<ReplayBody<ChannelBody>>| {
            let target = request.extensions().get::<Route>().unwrap().target.clone();
            calls.lock().unwrap().push(target.to_string());
            let delay: u64 = request.headers()["x-delay-ms"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let body = request.into_body().collect().await?.to_bytes();
                Ok::<_, BoxError>(Response::new(format!("{target}:{}", body.len())))
            }
        }
    });
    let layer = HealthFailoverLayer::new(topology.clone()).with_attempt_timeout(
        foresight_failover::AttemptTimeout::Fixed(Duration::from_millis(100)),
    );
    let service = layer.layer(leaf);

    // `a` answers once, so that a timeout on it would count as a failure.
    let (request, tx) = put(&["abc"], 1);
    drop(tx);
    assert_eq!(
        service.clone().oneshot(request).await.unwrap().body(),
        "a:3"
    );

    // A client that sends a chunk, then nothing for a second.
    let (request, tx) = put(&["abc"], 0);
    let slow = tokio::spawn(service.clone().oneshot(request));
    tokio::time::sleep(Duration::from_secs(1)).await;
    tx.send(Bytes::from_static(b"def")).unwrap();
    drop(tx);
    assert_eq!(slow.await.unwrap().unwrap().body(), "a:6");
    assert_eq!(
        *calls.lock().unwrap(),
        ["a", "a"],
        "the slow upload was replayed"
    );
    assert_eq!(layer.stats().timeouts, 0);
    assert_eq!(error_ratio(&topology, "a"), 0.0);

    // The timeout still holds the instance to account once it has the
    // whole body: a slow answer is replayed on `b`.
    let (request, tx) = put(&["abc"], 1_000);
    drop(tx);
    assert_eq!(service.oneshot(request).await.unwrap().body(), "b:3");
    assert_eq!(layer.stats().timeouts, 1);
}

#[tokio::test(start_paused = true)]
async fn a_client_leaving_mid_upload_adds_nothing_to_the_instances_latency() {
    let topology = two_instances();
    let leaf = service_fn(|request: Request<ReplayBody<ChannelBody>>| async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let body = request.into_body().collect().await?.to_bytes();
        Ok::<_, BoxError>(Response::new(body.len()))
    });
    let service = HealthFailoverLayer::new(topology.clone()).layer(leaf);
    let (request, tx) = put(&["abc"], 0);
    drop(tx);
    assert_eq!(*service.clone().oneshot(request).await.unwrap().body(), 3);
    let slot = topology.health(&"a".into()).unwrap();
    let before = slot.latency_ewma();
    assert!(before > 0.0);

    // A client that sends a chunk, then nothing for a second, then leaves.
    let (request, tx) = put(&["abc"], 0);
    let upload = tokio::spawn(service.oneshot(request));
    tokio::time::sleep(Duration::from_secs(1)).await;
    upload.abort();
    assert!(upload.await.unwrap_err().is_cancelled());
    drop(tx);
    assert_eq!(slot.latency_ewma(), before);
    assert_eq!(slot.error_ratio(), 0.0);
}
