//! Foresight inside an axum gateway.
//!
//! The gateway is an axum `Router` that answers `/healthz` itself and hands
//! everything under `/api` to the Foresight stack (`foresight::edge()` →
//! `ShardLayer` → `Pool` of `Forward` services), nested with
//! `Router::nest_service`. Three axum instance servers run in the same
//! process on loopback ports. The client key is the `sub` claim of the bearer
//! token, or else the `sid` cookie; the example mints unsigned demo tokens,
//! which is enough because routing reads `sub` without verifying it.
//!
//! A few users send requests through the gateway; the example prints which
//! instance served whom, shows that a request without a key gets a 400, and
//! exits.
//!
//! Run with `cargo run --example axum`.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use foresight::core::INSTANCE_HEADER;
use foresight::forward::{Forward, http_client};
use foresight::prelude::*;
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::net::TcpListener;
use tower::ServiceBuilder;

const INSTANCES: [&str; 3] = ["alpha", "beta", "gamma"];
const REQUESTS_PER_USER: usize = 3;

/// An unsigned JWT (`alg: none`, empty signature) carrying `sub`.
///
/// Routing only needs the subject and never trusts it, so the demo does not
/// sign; a real deployment verifies the token in the instance (or in an
/// authentication layer in front of the shard layer).
fn demo_token(sub: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"{sub}"}}"#));
    format!("{header}.{claims}.")
}

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

/// The gateway: local routes plus the Foresight stack under `/api`.
async fn start_gateway(topology: Topology) -> SocketAddr {
    // The pool forwards axum's request body as it is: no buffering, no
    // conversion.
    let client = http_client::<Body>();
    let pool = Pool::new(topology.clone(), move |instance| {
        Forward::new(client.clone(), instance)
    })
    .with_instance_header(true);
    let foresight = ServiceBuilder::new()
        .layer(foresight::edge())
        .layer(ShardLayer::new(
            topology,
            JwtSubjectKey::new().or(CookieKey::new("sid")),
        ))
        .service(pool);

    // `nest_service` strips the `/api` prefix, so `/api/whoami` reaches the
    // instances as `/whoami`. `fallback_service(foresight)` would forward
    // every unmatched path unchanged instead.
    let app = Router::new()
        .route("/healthz", get(|| async { "gateway ok" }))
        .nest_service("/api", foresight);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("gateway server");
    });
    addr
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
    let gateway = start_gateway(topology).await;
    println!("gateway on http://{gateway}; /api/* is sharded by JWT sub, else cookie `sid`");

    let client = http_client::<Empty<Bytes>>();
    let (status, _, body) = send(&client, gateway, "/healthz", HeaderMap::new()).await;
    println!("GET /healthz → {status} {body:?} (answered by the gateway itself)");

    // Users with a bearer token, then browsers that only carry a session
    // cookie. `carol` appears both ways: the JWT subject and the cookie are
    // the same key, so both land on the same instance.
    let mut clients: Vec<(String, HeaderMap)> = Vec::new();
    for user in ["alice", "bob", "carol", "erin", "ivan", "mallory", "oscar"] {
        let mut headers = HeaderMap::new();
        let bearer = format!("Bearer {}", demo_token(user));
        headers.insert(AUTHORIZATION, bearer.parse().expect("header value"));
        clients.push((format!("{user} (jwt)"), headers));
    }
    for sid in ["carol", "guest-7f3a"] {
        let mut headers = HeaderMap::new();
        let cookie = format!("theme=dark; sid={sid}");
        headers.insert(COOKIE, cookie.parse().expect("header value"));
        clients.push((format!("{sid} (cookie)"), headers));
    }

    println!("\n{:<20} {:<10} requests", "client", "instance");
    for (label, headers) in &clients {
        let mut served = Vec::new();
        for _ in 0..REQUESTS_PER_USER {
            let (status, served_by, body) =
                send(&client, gateway, "/api/whoami", headers.clone()).await;
            assert_eq!(status, StatusCode::OK, "{label}: {body}");
            // The header is the pool's record; the body is the instance's own
            // word. They must agree.
            assert_eq!(served_by.as_deref(), Some(body.as_str()));
            served.push(body);
        }
        assert!(
            served.windows(2).all(|w| w[0] == w[1]),
            "{label} moved between instances: {served:?}"
        );
        println!("{label:<20} {:<10} {}", served[0], served.len());
    }

    let (status, _, body) = send(&client, gateway, "/api/whoami", HeaderMap::new()).await;
    println!("\nno token, no cookie → {status}: {body}");
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
