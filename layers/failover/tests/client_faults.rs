//! Clients that misbehave cannot steer the health of instances.
//!
//! - Here, over real sockets end to end: hyper instances on loopback
//!   ports, a gateway (hyper server, `ErrorResponseLayer → ShardLayer →
//!   HealthFailoverLayer → ShadowWriteLayer → Pool` of hyper-util clients,
//!   as the gateway example runs) on another, a malicious client that
//!   aborts uploads and sends bad chunk sizes over raw TCP, and an honest
//!   client beside it. The instances must stay Healthy, the honest client
//!   must see no error, and the malicious one gets `400`.
//! - [`body_errors`]: the classification alone, over an in-process leaf:
//!   an error of the client's body is the client's, an error of the leaf's
//!   own is the instance's.
//! - [`slow_bodies`]: a client slow to send its body, or leaving midway,
//!   neither times the instance out nor adds to its latency.
//! - [`roles`]: a client cannot forge the shadow role: whatever routing
//!   layers a stack holds, a client-sent `x-foresight-role` never reaches
//!   an instance.

#[path = "client_faults/body_errors.rs"]
mod body_errors;
#[path = "client_faults/roles.rs"]
mod roles;
#[path = "client_faults/slow_bodies.rs"]
mod slow_bodies;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use foresight_core::edge::ErrorResponseLayer;
use foresight_core::key::HeaderKey;
use foresight_core::{BoxError, HealthState, InstanceSpec, Pool, RouteBody, Topology};
use foresight_failover::{FailoverError, HealthFailoverLayer};
use foresight_shadow::ShadowWriteLayer;
use foresight_shard::{ShardError, ShardLayer};
use foresight_testkit::http::serve_gateway;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::{ServiceBuilder, service_fn};

fn two_instances() -> Topology {
    Topology::from_instances(["a", "b"].map(InstanceSpec::new)).unwrap()
}

fn failover_error(error: &BoxError) -> &FailoverError {
    error
        .downcast_ref::<FailoverError>()
        .expect("a FailoverError")
}

fn error_ratio(topology: &Topology, id: &str) -> f64 {
    topology.health(&id.into()).unwrap().error_ratio()
}

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
    let client: Client<HttpConnector, RouteBody> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let pool = Pool::new(topology.clone(), move |instance| {
        let addr = instance.spec().addr.expect("instances have addresses");
        let client = client.clone();
        service_fn(move |mut request: Request<RouteBody>| {
            let path = request.uri().path().to_owned();
            *request.uri_mut() = format!("http://{addr}{path}").parse().unwrap();
            client.request(request)
        })
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

/// An honest client: small uploads and reads, each checked, one every
/// 5 ms or so, until `stop`.
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
        // Paced, so that broken uploads outnumber honest requests: before
        // client body errors were told apart, that ejected the instance.
        tokio::time::sleep(Duration::from_millis(5)).await;
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
