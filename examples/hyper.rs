//! Foresight served directly by a hyper 1 server, keyed by a fingerprint.
//!
//! The gateway accepts connections itself and serves each with hyper-util's
//! `auto::Builder` (HTTP/1 or HTTP/2) through `TowerToHyperService`. Per
//! connection it inserts the peer's socket address as a
//! `foresight::core::key::PeerAddr` request extension, which is what
//! `FingerprintKey` hashes together with `user-agent` and `accept-language`:
//! clients that carry no identifier still stick to one instance. The stack
//! is `foresight::edge()` → `ShardLayer` → `Pool` of `Forward` services, in
//! front of three hyper instance servers on loopback ports.
//!
//! Every request goes over a fresh connection, so the client port changes
//! each time; the fingerprint leaves the port out, and the route holds.
//!
//! Run with `cargo run --example hyper`.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use foresight::core::INSTANCE_HEADER;
use foresight::core::key::PeerAddr;
use foresight::forward::{Forward, Upstream};
use foresight::prelude::*;
use http::header::{ACCEPT_LANGUAGE, USER_AGENT};
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceBuilder;

const INSTANCES: [&str; 3] = ["alpha", "beta", "gamma"];
const REQUESTS_PER_CLIENT: usize = 3;

/// An instance: a bare hyper server that answers with its name.
async fn start_instance(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = service_fn(move |_request: Request<Incoming>| async move {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                    name.as_bytes(),
                ))))
            });
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// The gateway: a hyper server whose every connection is served by the
/// Foresight stack, with the peer address attached to each request.
async fn start_gateway(topology: Topology) -> SocketAddr {
    let upstream = Upstream::http();
    let pool = Pool::new(topology.clone(), move |instance| {
        Forward::<Incoming>::new(&upstream, instance)
    })
    .with_instance_header(true);
    let stack = ServiceBuilder::new()
        .layer(foresight::edge())
        .layer(ShardLayer::new(topology, FingerprintKey::new()))
        .service(pool);

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            // hyper knows nothing of the socket, so the connection loop is
            // where the peer address enters the request.
            let service = ServiceBuilder::new()
                .map_request(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(PeerAddr(peer));
                    request
                })
                .service(stack.clone());
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .await;
            });
        }
    });
    addr
}

#[tokio::main]
async fn main() {
    let mut specs = Vec::new();
    for name in INSTANCES {
        specs.push(InstanceSpec::new(name).with_addr(start_instance(name).await));
    }
    let topology = Topology::from_instances(specs).expect("valid topology");
    let gateway = start_gateway(topology).await;
    println!(
        "gateway on http://{gateway}; keyed by a fingerprint of user-agent, accept-language and peer IP"
    );

    // No idle connections are kept, so each request opens a new one from a
    // new client port. The last client speaks HTTP/2 (prior knowledge),
    // which `auto::Builder` serves as well.
    let http1: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http();
    let http2: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .http2_only(true)
        .build_http();
    let browsers = [
        (
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
            "en-GB",
            &http1,
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
            "fr-FR",
            &http1,
        ),
        ("Mozilla/5.0 (Macintosh) Safari/605.1.15", "en-US", &http1),
        (
            "Mozilla/5.0 (Windows NT 10.0) Chrome/131.0",
            "de-DE",
            &http1,
        ),
        ("curl/8.11.0 (HTTP/2)", "en", &http2),
    ];
    println!(
        "\n{:<48} {:<6} {:<8} requests",
        "user-agent", "lang", "instance"
    );
    for (agent, language, client) in browsers {
        let mut served = Vec::new();
        for _ in 0..REQUESTS_PER_CLIENT {
            let request = Request::get(format!("http://{gateway}/whoami"))
                .header(USER_AGENT, agent)
                .header(ACCEPT_LANGUAGE, language)
                .body(Empty::new())
                .expect("request");
            let response = client.request(request).await.expect("gateway reachable");
            assert!(response.status().is_success(), "{}", response.status());
            let header = response.headers()[&INSTANCE_HEADER].clone();
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            // The pool's record and the instance's own answer agree.
            assert_eq!(header.as_bytes(), &body[..]);
            served.push(String::from_utf8_lossy(&body).into_owned());
        }
        assert!(
            served.windows(2).all(|w| w[0] == w[1]),
            "{agent} moved between instances: {served:?}"
        );
        println!(
            "{agent:<48} {language:<6} {:<8} {}",
            served[0],
            served.len()
        );
    }
}
