//! Foresight inside an axum gateway.
//!
//! The gateway is an axum `Router` that answers `/healthz` itself and hands
//! everything under `/api` to the routing tier of `Foresight::builder()`
//! (token verification and prefetch, `ShardLayer`, `HealthFailoverLayer`,
//! `ShadowWriteLayer`, with one shared forecaster) in front of a `Pool` of
//! `Forward` services, nested with `Router::nest_service`. Three axum
//! instance servers run in the same process on loopback ports. The client
//! key is the `sub` claim of the verified bearer token; tokens come from the
//! stack's own issuer (an authentication server's login in production).
//!
//! A few users send requests through the gateway; the example prints which
//! instance served whom, shows that a request without a token and one with
//! a forged token get 401, and exits.
//!
//! Run with `cargo run --example axum`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use bytes::Bytes;
use foresight::ServiceBuilderExt;
use foresight::core::INSTANCE_HEADER;
use foresight::forward::{Forward, Upstream, http_client};
use foresight::prelude::*;
use foresight::stack::{DefaultKey, Foresight};
use foresight::token::{TokenIssuer as _, TokenRequest};
use http::header::AUTHORIZATION;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::net::TcpListener;
use tower::ServiceBuilder;

const INSTANCES: [&str; 3] = ["alpha", "beta", "gamma"];
const REQUESTS_PER_USER: usize = 3;

/// An instance: an ordinary axum app that knows nothing of Foresight.
async fn start_instance(name: &'static str) -> SocketAddr {
    let app = Router::new()
        .route(
            "/whoami",
            get(|State(name): State<&'static str>| async move { name }),
        )
        .with_state(name);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("instance server");
    });
    addr
}

/// The gateway: local routes plus the Foresight routing tier under `/api`.
async fn start_gateway(foresight: &Foresight<DefaultKey>) -> SocketAddr {
    let upstream = Upstream::http();
    let pool = Pool::new(foresight.topology().clone(), move |instance| {
        Forward::<RouteBody>::new(&upstream, instance)
    })
    .with_instance_header(true);
    let routing = ServiceBuilder::new().foresight(foresight).service(pool);

    // `nest_service` strips the `/api` prefix, so `/api/whoami` reaches the
    // instances as `/whoami`. `fallback_service(routing)` would forward
    // every unmatched path unchanged instead.
    let app = Router::new()
        .route("/healthz", get(|| async { "gateway ok" }))
        .nest_service("/api", routing);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("gateway server");
    });
    addr
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let value = format!("Bearer {token}");
    headers.insert(AUTHORIZATION, value.parse().expect("header value"));
    headers
}

/// Sends one request through the gateway; returns the status, the instance
/// the gateway says served it and the body.
async fn send(
    client: &Client<HttpConnector, Empty<Bytes>>,
    gateway: SocketAddr,
    path: &str,
    headers: HeaderMap,
) -> (StatusCode, Option<String>, String) {
    let mut request = http::Request::get(format!("http://{gateway}{path}"))
        .body(Empty::new())
        .expect("request");
    *request.headers_mut() = headers;
    let response = client.request(request).await.expect("gateway reachable");
    let status = response.status();
    let served_by = response
        .headers()
        .get(&INSTANCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        served_by,
        String::from_utf8_lossy(&body).trim().to_owned(),
    )
}

#[tokio::main]
async fn main() {
    let mut specs = Vec::new();
    for name in INSTANCES {
        specs.push(InstanceSpec::new(name).with_addr(start_instance(name).await));
    }
    let topology = Topology::from_instances(specs).expect("valid topology");
    let foresight = Foresight::builder(topology)
        .build()
        .expect("the stack builds");
    let issuer = foresight
        .issuer()
        .expect("tokens are on by default")
        .clone();
    let gateway = start_gateway(&foresight).await;
    println!(
        "gateway on http://{gateway}; /api/* needs a bearer token and is sharded by its subject"
    );

    let client = http_client::<Empty<Bytes>>();
    let (status, _, body) = send(&client, gateway, "/healthz", HeaderMap::new()).await;
    println!("GET /healthz → {status} {body:?} (answered by the gateway itself)");

    println!("\n{:<10} {:<10} requests", "user", "instance");
    for user in ["alice", "bob", "carol", "erin", "ivan", "mallory", "oscar"] {
        let login = TokenRequest::new(user, format!("session-{user}"), Duration::from_secs(300));
        let token = issuer.issue(login).await.expect("token issued");
        let mut served = Vec::new();
        for _ in 0..REQUESTS_PER_USER {
            let (status, served_by, body) =
                send(&client, gateway, "/api/whoami", bearer(&token.token)).await;
            assert_eq!(status, StatusCode::OK, "{user}: {body}");
            // The header is the pool's record; the body is the instance's own
            // word. They must agree.
            assert_eq!(served_by.as_deref(), Some(body.as_str()));
            served.push(body);
        }
        assert!(
            served.windows(2).all(|w| w[0] == w[1]),
            "{user} moved between instances: {served:?}"
        );
        println!("{user:<10} {:<10} {}", served[0], served.len());
    }

    let (status, _, body) = send(&client, gateway, "/api/whoami", HeaderMap::new()).await;
    println!("\nno token → {status}: {body}");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let forged = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSJ9.";
    let (status, _, body) = send(&client, gateway, "/api/whoami", bearer(forged)).await;
    println!("unsigned token → {status}: {body}");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
